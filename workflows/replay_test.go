package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/secure-agent/secure-agent/workflows"
)

// TestReplayRecordedHistories replays every history in testdata/histories (recorded from real
// runs by internal/e2e TestRecordHistories, in `temporal workflow show --output json` form)
// against today's workflow code. A failure means a change altered the command sequence of runs
// already in flight: gate it with workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("../testdata/histories/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.ExtractionWorkflow, workflow.RegisterOptions{Name: workflows.ExtractionWorkflowName})
			r.RegisterWorkflowWithOptions(workflows.TestConnectionWorkflow, workflow.RegisterOptions{Name: workflows.TestConnectionWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("replaying %s: %v", file, err)
			}
		})
	}
}
