package main

import (
	"context"
	"flag"
	"io"

	"github.com/secure-agent/secure-agent/worker"
)

func runWorker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	settings, err := worker.LoadSettings()
	if err != nil {
		return err
	}
	logger := settings.NewLogger()
	c, err := worker.Dial(ctx, settings, logger)
	if err != nil {
		return err
	}
	defer c.Close()
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
