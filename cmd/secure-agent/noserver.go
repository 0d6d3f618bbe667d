//go:build noserver

package main

import (
	"context"
	"errors"
	"io"
)

// This build (-tags noserver) leaves the embedded Temporal server out of the binary: it is the
// production build, which only needs `worker`, `run` and `version`.
var errNoServer = errors.New("this build has no embedded Temporal server (built with -tags noserver); use the full build for dev and demo")

func runDev(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return noServer("dev", args, stdout, stderr)
}

func runDemo(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return noServer("demo", args, stdout, stderr)
}

// noServer answers --help as the full build's dev and demo would, minus what they cannot do here.
func noServer(name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name)
	fs.String("config", "temporal-dev.yaml", "embedded server configuration (not in this build)")
	h := helpText{usage: "secure-agent " + name + " [--config FILE]", about: errNoServer.Error() + "."}
	if err := parseFlags(fs, args, h, stdout, stderr); err != nil {
		return err
	}
	return errNoServer
}
