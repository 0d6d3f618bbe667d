package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestProgressMovesInsideABatch extracts a one-schema SQLite file of 2,000 tables, one batch, on
// the real server, and watches the run as `secure-agent run` does: the pending extraction's
// heartbeats carry the entities written so far (activities.Cursor.Running), sent at the
// agent's progress interval, so counts move before the batch commits.
func TestProgressMovesInsideABatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wide.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := tx.Exec(fmt.Sprintf(`CREATE TABLE t%04d (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER REFERENCES t%04d(id))`, i, max(i-1, 0))); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	t.Setenv("E2E_WIDE_DB", path)
	h := newHarness(t, func(s *worker.Settings) {
		s.EnvAllow = []string{"E2E_WIDE_*"}
		s.ProgressInterval = 20 * time.Millisecond
	})
	run := h.start(workflows.ExtractionWorkflowName, envInput("E2E_WIDE_DB"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var sum workflows.Summary
	go func() { done <- run.Get(ctx, &sum) }()
	dc := converter.GetDefaultDataConverter()
	var moving []int64 // tables counted by a pending extraction, as seen
	for watching := true; watching; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			watching = false
		case <-time.After(5 * time.Millisecond):
			desc, err := h.client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
			if err != nil {
				continue
			}
			for _, pa := range desc.GetPendingActivities() {
				if pa.GetActivityType().GetName() != "ExtractSchemas" || pa.GetState() != enums.PENDING_ACTIVITY_STATE_STARTED || pa.GetHeartbeatDetails() == nil {
					continue
				}
				var cur activities.Cursor
				if err := dc.FromPayloads(pa.GetHeartbeatDetails(), &cur); err != nil {
					t.Fatal(err)
				}
				if n := cur.Running["tables"]; n > 0 && (len(moving) == 0 || moving[len(moving)-1] != n) {
					moving = append(moving, n)
				}
			}
		}
	}
	if sum.Schemas != 1 || sum.Counts["tables"] != 2000 {
		t.Fatalf("summary: %d schemas, counts %v", sum.Schemas, sum.Counts)
	}
	if len(moving) == 0 {
		t.Fatal("no heartbeat of the running batch carried a count: progress would not move inside the batch")
	}
	for i, n := range moving {
		if n > 2000 || (i > 0 && n < moving[i-1]) {
			t.Errorf("running table counts %v: more than the run wrote, or going back", moving)
		}
	}
	t.Logf("running table counts seen while the batch ran: %v", moving)
}
