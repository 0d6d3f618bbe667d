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

func runDev(context.Context, []string, io.Writer, io.Writer) error  { return errNoServer }
func runDemo(context.Context, []string, io.Writer, io.Writer) error { return errNoServer }
