package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..." (the Dockerfile does). Left
// at "dev", `secure-agent version` reports what the Go toolchain recorded in the binary instead.
var version = "dev"

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version")
	if err := parseFlags(fs, args, versionHelp, stdout, stderr); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionString(version, bi))
	return nil
}

var versionHelp = helpText{
	usage: "secure-agent version",
	about: "Print the version of this binary: the one set at build time (-ldflags \"-X main.version=v1.2.3\"), or " +
		"the module version Go recorded, with the commit, its time and \"(modified)\" for a build from a changed tree " +
		"when the build recorded them (go build -buildvcs=true in a git checkout).",
}

// versionString formats the version line: "secure-agent v1.2.3", or for a build without
// -ldflags what bi holds, e.g. "secure-agent (devel) 1a2b3c4d5e6f 2026-12-05T10:00:00Z (modified)".
// The commit, its time and "(modified)" appear when the build recorded them (vcs.revision,
// vcs.time, vcs.modified; -buildvcs=false records none). bi may be nil.
func versionString(ldflagsVersion string, bi *debug.BuildInfo) string {
	v := ldflagsVersion
	if v == "" || v == "dev" {
		v = "(devel)"
		if bi != nil && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	parts := []string{"secure-agent", v}
	if bi == nil {
		return strings.Join(parts, " ")
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	// A pseudo-version (v0.0.0-20261205100000-1a2b3c4d5e6f) already holds the commit's prefix.
	if rev != "" && !strings.Contains(v, rev) {
		parts = append(parts, rev)
	}
	if at != "" && rev != "" {
		parts = append(parts, at)
	}
	if modified {
		parts = append(parts, "(modified)")
	}
	return strings.Join(parts, " ")
}
