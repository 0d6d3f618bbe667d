//go:build !noserver

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/internal/devserver"
	"github.com/secure-agent/secure-agent/worker"
)

// devEnv is an embedded Temporal server with the agent attached.
type devEnv struct {
	server *devserver.Server
	client client.Client
	agent  *worker.Agent
	logger *slog.Logger
	tls    bool // the frontend serves TLS
}

// startDev starts the embedded server from the config file, then the agent on it.
func startDev(ctx context.Context, configPath string, settings worker.Settings, stderr io.Writer) (*devEnv, error) {
	cfg, err := devserver.LoadConfig(configPath)
	if err != nil {
		return nil, err
	}
	logger := settings.NewLogger()
	srv, err := devserver.Start(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	d := &devEnv{server: srv, logger: logger, tls: cfg.TLS.Enabled()}
	d.client, err = worker.DialWith(ctx, settings, client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(),
		ConnectionOptions: client.ConnectionOptions{TLS: srv.ClientTLS()}}, logger)
	if err != nil {
		d.stop()
		return nil, err
	}
	d.agent, err = worker.New(d.client, settings, logger)
	if err == nil {
		err = d.agent.Start()
	}
	if err != nil {
		d.agent = nil
		d.stop()
		return nil, err
	}
	fmt.Fprintf(stderr, "Temporal server  %s (namespace %s)\n", srv.FrontendAddress(), srv.Namespace())
	if ui := srv.UIAddress(); ui != "" {
		fmt.Fprintf(stderr, "Web UI           http://%s\n", ui)
	}
	fmt.Fprintf(stderr, "agent            task queue %s, output %s\n", settings.TaskQueue, settings.OutputDir)
	return d, nil
}

func (d *devEnv) stop() {
	if d.agent != nil {
		d.agent.Stop()
	}
	if d.client != nil {
		d.client.Close()
	}
	if err := d.server.Stop(); err != nil {
		d.logger.Warn("stopping the embedded Temporal server", "error", err)
	}
}

// devSettings reads the agent settings for dev and demo, where a person watches the terminal:
// readable text logs at warn level unless SECURE_AGENT_LOG_FORMAT / _LEVEL say otherwise.
func devSettings(level string) (worker.Settings, error) {
	settings, err := worker.LoadSettings()
	if err != nil {
		return settings, err
	}
	if _, set := os.LookupEnv(worker.EnvPrefix + "_LOG_FORMAT"); !set {
		settings.LogFormat = "text"
	}
	if _, set := os.LookupEnv(worker.EnvPrefix + "_LOG_LEVEL"); !set {
		settings.LogLevel = level
	}
	if _, set := os.LookupEnv(worker.EnvPrefix + "_AUDIT"); !set {
		settings.Audit = "stderr" // stdout carries the demo's summary
	}
	return settings, nil
}

var devHelp = helpText{
	usage: "secure-agent dev [--config FILE]",
	about: "Start a real Temporal server (SQLite, in this process) and its Web UI, plus the agent on it, with a " +
		"sample SQLite database to try. It prints the export lines that point the temporal CLI and " +
		"`secure-agent run` in another shell at it. Ctrl-C stops everything. The TEMPORAL_* settings are not read: " +
		"the server's addresses come from --config.",
	settings: settingsOf(agentSettings(), cloudSettings),
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev")
	configPath := fs.String("config", "temporal-dev.yaml", "embedded server configuration (defaults apply when the file is missing)")
	if err := parseFlags(fs, args, devHelp, stdout, stderr); err != nil {
		return err
	}
	settings, err := devSettings("info")
	if err != nil {
		return err
	}
	cleanup, err := prepareSample(ctx, &settings)
	if err != nil {
		return err
	}
	defer cleanup()
	d, err := startDev(ctx, *configPath, settings, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stderr, exportLines(d.server.FrontendAddress(), d.server.Namespace(), d.tls))
	fmt.Fprintf(stderr, "ready: start workflows from the Web UI or the temporal CLI; Ctrl-C stops everything\n"+
		"a sample database to try: {\"connector\": \"sqlite\", \"connection\": {\"path\": %q}, \"secretStore\": {\"type\": \"env\"}}\n", demoPathVar)
	<-ctx.Done()
	fmt.Fprintln(stderr, "stopping...")
	d.stop()
	return nil
}

// exportLines are the shell lines that point the temporal CLI, `secure-agent run` and `check` in
// another shell at the dev server: TEMPORAL_ADDRESS, and TEMPORAL_NAMESPACE when it is not
// "default". A TLS frontend also needs TEMPORAL_TLS and the CA that issued its certificate.
func exportLines(address, namespace string, tls bool) string {
	var b strings.Builder
	b.WriteString("in another shell:\n")
	fmt.Fprintf(&b, "  export TEMPORAL_ADDRESS=%s\n", shellQuote(address))
	if namespace != "" && namespace != client.DefaultNamespace {
		fmt.Fprintf(&b, "  export TEMPORAL_NAMESPACE=%s\n", shellQuote(namespace))
	}
	if tls {
		b.WriteString("  export TEMPORAL_TLS=true\n" +
			"  # and TEMPORAL_TLS_SERVER_CA_CERT_PATH (the CA of tls.certFile), TEMPORAL_TLS_SERVER_NAME (one of its names),\n" +
			"  # TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH when tls.requireClientCert is set\n")
	}
	return b.String()
}
