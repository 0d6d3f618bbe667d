package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/worker"
)

// TestVersionedWorkerNeedsABuildID: with SECURE_AGENT_DEPLOYMENT_NAME set, a binary without a
// version stamp (as this test binary is) and no SECURE_AGENT_BUILD_ID refuses to start, before
// it connects to anything, and says which variable to set.
func TestVersionedWorkerNeedsABuildID(t *testing.T) {
	if bi, _ := debug.ReadBuildInfo(); worker.BuildIDFromStamp(version, bi) != "" {
		testenv.RequireOrSkip(t, fmt.Sprintf("this test binary carries a version stamp (%q), so it has a build id", worker.BuildIDFromStamp(version, bi)))
	}
	t.Setenv("SECURE_AGENT_DEPLOYMENT_NAME", "secure-agent")
	t.Setenv("SECURE_AGENT_OUTPUT_DIR", t.TempDir())
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing listens: reaching the dial would say so
	var stdout, stderr bytes.Buffer
	code := mainWith(context.Background(), []string{"worker"}, &stdout, &stderr)
	msg := stderr.String()
	if code != 1 || !strings.Contains(msg, "no version stamp") || !strings.Contains(msg, "Set SECURE_AGENT_BUILD_ID") ||
		strings.Contains(msg, "connecting to Temporal") {
		t.Fatalf("exit %d, stderr %q: want exit 1 and a refusal asking for SECURE_AGENT_BUILD_ID", code, msg)
	}
}
