package e2e

import (
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/secure-agent/secure-agent/internal/proctest"
)

// history returns every event of a run.
func history(t *testing.T, c client.Client, run client.WorkflowRun) *historypb.History {
	t.Helper()
	return proctest.History(t, c, run.GetID(), run.GetRunID())
}

// haystack renders a proto message for a leak search (see proctest.Haystack).
func haystack(t *testing.T, m proto.Message) string { return proctest.Haystack(t, m) }

// outputText returns every file under dir, gzip files decompressed (see proctest.OutputText).
func outputText(t *testing.T, dir string) string { return proctest.OutputText(t, dir) }
