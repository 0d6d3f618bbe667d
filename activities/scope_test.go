package activities

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// TestSourceActivitiesNeverSeeSinkCredentials leases source and sink fields together, then runs
// Preflight: the source is opened with the source's fields only.
func TestSourceActivitiesNeverSeeSinkCredentials(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	leases := NewLeaseStore(time.Hour, 0, nil)
	var seen []string
	a := &Activities{Leases: leases, OpenSource: func(ctx context.Context, connector string, creds connectors.Credentials, _ connectors.OpenOptions) (connectors.Source, error) {
		for name := range creds {
			seen = append(seen, name)
		}
		return nil, errors.New("stop here")
	}}
	env.RegisterActivity(a.Preflight)
	// The test environment's default workflow execution.
	id, _, err := leases.Put(LeaseGrant{WorkflowID: "default-test-workflow-id", RunID: "default-test-run-id", Connector: "sqlite",
		Creds: connectors.Credentials{"path": secrets.Value("/db"), SinkFieldPrefix + "secretAccessKey": secrets.Value("sink-secret")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.ExecuteActivity(a.Preflight, PreflightInput{LeaseInput: LeaseInput{Connector: "sqlite", Lease: Lease{ID: id, Fields: []string{"path", SinkFieldPrefix + "secretAccessKey"}}}})
	if err == nil {
		t.Fatal("expected the staged failure")
	}
	if !slices.Equal(seen, []string{"path"}) {
		t.Fatalf("the source was opened with fields %v, want only [path]", seen)
	}
}
