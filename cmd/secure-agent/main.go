// Command secure-agent is the customer-side Temporal worker that resolves data-source credentials
// from the customer's secret store and extracts metadata without any secret leaving the customer.
//
//	secure-agent worker                 run the agent against any Temporal service
//	secure-agent dev                    an embedded Temporal server and Web UI, plus the agent
//	secure-agent demo                   dev, plus a sample database and one extraction
//	secure-agent run --input FILE       start an extraction and follow it
//	secure-agent check --input FILE     check a connection and print a checklist
//	secure-agent codec-server           decrypt payloads for the Web UI and the temporal CLI
//	secure-agent version                print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"worker", "run the agent against the Temporal service named by TEMPORAL_ADDRESS", runWorker},
		{"dev", "start an embedded Temporal server (SQLite) and Web UI, plus the agent", runDev},
		{"demo", "dev, plus a bundled sample database: runs one extraction and exits", runDemo},
		{"run", "start an ExtractionWorkflow from an input file and follow it to the end", runRun},
		{"schedule", "create, list, describe, trigger, pause and delete schedules of extractions", runSchedule},
		{"check", "check a connection step by step (TestConnectionWorkflow, or --local) and print a checklist", runCheck},
		{"codec-server", "serve Temporal's remote codec protocol so the Web UI and CLI can decrypt payloads", runCodecServer},
		{"version", "print the version", runVersion},
	}
}

// exitError carries a process exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(mainWith(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func mainWith(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "help" {
		args = []string{args[1], "--help"} // `secure-agent help run` is `secure-agent run --help`
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			usage(stderr)
			return 2
		}
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.code
		default:
			fmt.Fprintf(stderr, "secure-agent %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "secure-agent: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: secure-agent <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'secure-agent <command> --help' for a command's flags and the settings (environment variables) it reads.")
}
