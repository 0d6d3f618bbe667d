package main

import (
	"context"
	"io"
	"runtime/debug"

	"github.com/secure-agent/secure-agent/worker"
)

var workerHelp = helpText{
	usage: "secure-agent worker",
	about: "Run the agent against the Temporal service the TEMPORAL_* settings name: it polls the task queue, " +
		"resolves secrets from the customer's stores, extracts metadata and writes the output. Ctrl-C (SIGINT) or " +
		"SIGTERM lets running activities finish (SECURE_AGENT_STOP_TIMEOUT), then stops.",
	settings: settingsOf(temporalSettings, agentSettings(), cloudSettings),
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlagSet("worker"), args, workerHelp, stdout, stderr); err != nil {
		return err
	}
	settings, err := worker.LoadSettings()
	if err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	if settings, err = settings.WithVersionStamp(version, bi); err != nil {
		return err
	}
	logger := settings.NewLogger()
	c, err := worker.Dial(ctx, settings, logger)
	if err != nil {
		return err
	}
	defer func() { _ = worker.Close(c) }()
	agent, err := worker.New(c, settings, logger)
	if err != nil {
		return err
	}
	if err := agent.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down: finishing running activities", "stopTimeout", settings.StopTimeout)
	agent.Stop()
	return nil
}
