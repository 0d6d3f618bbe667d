package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"go.temporal.io/sdk/client"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// historiesDir is where replay tests (workflows/replay_test.go) read recorded histories.
const historiesDir = "../../testdata/histories"

// TestRecordHistories records one history per workflow branch from real runs, written by the real
// temporal CLI (`temporal workflow show --output json`). It only runs when asked:
//
//	SECURE_AGENT_RECORD_HISTORIES=1 go test ./internal/e2e -run TestRecordHistories
//
// Files that exist are kept, never overwritten: they were recorded by older code, and replaying
// them proves that runs in flight survive a change. When a workflow changes shape, add a branch
// below with a new file name (the next -vN) and run the command again.
func TestRecordHistories(t *testing.T) {
	if !recording() {
		t.Skip("set SECURE_AGENT_RECORD_HISTORIES=1 to record replay histories")
	}
	testenv.TemporalCLI(t)
	db := filepath.Join(t.TempDir(), "shop.db")
	makeShop(t, db)
	locked := filepath.Join(t.TempDir(), "locked.db")
	makeShop(t, locked)
	t.Setenv("REC_SHOP_DB", db)
	t.Setenv("REC_LOCKED_DB", locked)
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"REC_*"} })

	record := func(name string, run client.WorkflowRun) { recordHistory(t, h, name, run) }
	record("extraction-success-v1", h.start(workflows.ExtractionWorkflowName, envInput("REC_SHOP_DB")))
	record("extraction-invalid-input-v1", h.start(workflows.ExtractionWorkflowName, map[string]any{"connector": "oracle"}))
	record("extraction-secret-not-found-v1", h.start(workflows.ExtractionWorkflowName, envInput("REC_NOT_SET")))
	record("testconnection-success-v1", h.start(workflows.TestConnectionWorkflowName, envInput("REC_SHOP_DB")))

	// v2: s3 output adds Publish after Finalize (change id "publish-to-s3").
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	if err := backend.CreateBucket("catalog"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REC_S3_KEY_ID", "AKIDRECORD")
	t.Setenv("REC_S3_SECRET", "record-secret")
	t.Setenv("AWS_CA_BUNDLE", "")
	s3Input := envInput("REC_SHOP_DB")
	s3Input.Output = workflows.OutputSpec{Type: "s3", Bucket: "catalog", Region: "us-east-1", Endpoint: srv.URL, PathStyle: true,
		Credentials: map[string]workflows.FieldValue{"accessKeyId": "REC_S3_KEY_ID", "secretAccessKey": "REC_S3_SECRET"}}
	record("extraction-s3-v2", h.start(workflows.ExtractionWorkflowName, s3Input))

	// v4: Preflight lists the schemas, and Finalize releases a local output's lease (change id
	// "fewer-round-trips"); an s3 output still releases after Publish.
	record("extraction-success-v4", h.start(workflows.ExtractionWorkflowName, envInput("REC_SHOP_DB")))
	record("extraction-s3-v4", h.start(workflows.ExtractionWorkflowName, s3Input))

	// v3: validation starts with a version marker (change id "refuse-unknown-fields"); an
	// unknown field or a wrongly typed one fails the run with InvalidInput.
	record("extraction-success-v3", h.start(workflows.ExtractionWorkflowName, envInput("REC_SHOP_DB")))
	record("testconnection-success-v3", h.start(workflows.TestConnectionWorkflowName, envInput("REC_SHOP_DB")))
	record("extraction-unknown-field-v3", h.start(workflows.ExtractionWorkflowName,
		map[string]any{"connector": "sqlite", "connection": map[string]any{"path": "REC_SHOP_DB"}, "secretStore": map[string]any{"type": "env"}, "filter": map[string]any{}}))
	record("extraction-wrong-type-v3", h.start(workflows.ExtractionWorkflowName, map[string]any{"connector": 5}))

	// v6: Finalize is told which parts the batches committed (change id "check-parts").
	record("extraction-success-v6", h.start(workflows.ExtractionWorkflowName, envInput("REC_SHOP_DB")))
	record("extraction-s3-v6", h.start(workflows.ExtractionWorkflowName, s3Input))

	// v7: validation accepts secretStore.fields behind a version marker (change id
	// "store-fields"); a refused login reads the secrets again (change id
	// "rotate-on-auth-failure", recorded by TestRotationDuringRun).
	record("extraction-success-v7", h.start(workflows.ExtractionWorkflowName, envInput("REC_SHOP_DB")))
	record("testconnection-success-v7", h.start(workflows.TestConnectionWorkflowName, envInput("REC_SHOP_DB")))
	record("extraction-store-fields-v7", h.start(workflows.ExtractionWorkflowName, workflows.Input{
		Connector: "sqlite", SecretStore: &stores.Spec{Type: stores.TypeEnv, Fields: map[string]stores.SecretField{"path": {Secret: "REC_SHOP_DB"}}}}))

	// v8: validation accepts the source label behind a version marker (change id
	// "source-label"), and every entity carries it.
	labelled := envInput("REC_SHOP_DB")
	labelled.Source = "shop-sample"
	record("extraction-source-v8", h.start(workflows.ExtractionWorkflowName, labelled))
	record("testconnection-success-v8", h.start(workflows.TestConnectionWorkflowName, envInput("REC_SHOP_DB")))

	// v9: without options.schemasPerBatch the schemas are split evenly over the batch slots
	// (change id "even-batches").
	record("extraction-success-v9", h.start(workflows.ExtractionWorkflowName, labelled))

	// v10: validation accepts options.incremental behind a version marker (change id
	// "incremental"); an incremental run extracts only the schemas Preflight did not find
	// unchanged (here: none the first time, every one the second).
	incremental := labelled
	incremental.Options.Incremental = "auto"
	record("extraction-success-v10", h.start(workflows.ExtractionWorkflowName, labelled))
	record("extraction-incremental-base-v10", h.start(workflows.ExtractionWorkflowName, incremental))
	record("extraction-incremental-reused-v10", h.start(workflows.ExtractionWorkflowName, incremental))

	// v11: validation accepts output.formats behind a version marker (change id "formats");
	// Finalize also writes the catalog formats.
	formats := labelled
	formats.Output.Formats = []string{"openlineage", "datahub"}
	record("extraction-success-v11", h.start(workflows.ExtractionWorkflowName, labelled))
	record("extraction-formats-v11", h.start(workflows.ExtractionWorkflowName, formats))

	// v12: validation accepts output.push behind a version marker (change id "catalog-push");
	// a run that has it sends its formats with PushCatalog after Finalize.
	catalog := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer catalog.Close()
	t.Setenv("REC_OL_URL", catalog.URL)
	pushed := labelled
	pushed.Output.Push = &workflows.PushSpec{OpenLineage: map[string]workflows.FieldValue{"url": "REC_OL_URL"}}
	record("extraction-success-v12", h.start(workflows.ExtractionWorkflowName, labelled))
	record("extraction-push-v12", h.start(workflows.ExtractionWorkflowName, pushed))

	// v13: validation accepts the vault store type behind a version marker (change id
	// "vault-store").
	record("extraction-success-v13", h.start(workflows.ExtractionWorkflowName, labelled))

	// v14: validation accepts the postgres connector's authMethod and awsRegion behind a version
	// marker (change id "iam-auth").
	record("extraction-success-v14", h.start(workflows.ExtractionWorkflowName, labelled))

	unlock := lockExclusively(t, locked)
	run := h.start(workflows.ExtractionWorkflowName, envInput("REC_LOCKED_DB"))
	waitPhase(t, h, run.GetID(), workflows.PhasePreflight)
	if err := h.client.CancelWorkflow(context.Background(), run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	_ = run.Get(context.Background(), nil)
	unlock()
	record("extraction-cancelled-v1", run)
	record("extraction-cancelled-v4", run) // the same run; v1 is kept, v4 is what this code records
}

// recording reports whether this run records replay histories (SECURE_AGENT_RECORD_HISTORIES=1).
func recording() bool { return os.Getenv("SECURE_AGENT_RECORD_HISTORIES") == "1" }

// recordHistory waits for run to end and writes its history to testdata/histories/<name>.json
// with the real temporal CLI, unless that file exists: recorded files are never overwritten.
func recordHistory(t *testing.T, h *harness, name string, run client.WorkflowRun) {
	t.Helper()
	_ = run.Get(context.Background(), nil)
	file := filepath.Join(historiesDir, name+".json")
	if _, err := os.Stat(file); err == nil {
		t.Logf("%s exists: kept", file)
		return
	}
	out, err := exec.Command(testenv.TemporalCLI(t), "workflow", "show", "--address", server.GetFrontendHostPort(),
		"--namespace", server.GetDefaultNamespace(), "--workflow-id", run.GetID(), "--run-id", run.GetRunID(),
		"--output", "json").Output()
	if err != nil {
		t.Fatalf("temporal workflow show: %v", err)
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s", file)
}
