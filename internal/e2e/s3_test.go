package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestPublishToS3 runs an extraction whose output is an S3-compatible store (gofakes3, reached by
// the real AWS SDK), with the sink's keys resolved from the secret store like connection fields,
// and checks the published objects against the manifest, and that the keys never reach history.
func TestPublishToS3(t *testing.T) {
	backend := s3mem.New()
	fake := gofakes3.New(backend)
	srv := httptest.NewServer(fake.Server())
	defer srv.Close()
	if err := backend.CreateBucket("catalog"); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "shop.db")
	tables, _ := makeShop(t, db)
	secret := "canary-s3-" + randomHex(t)
	t.Setenv("E2E_S3_DB", db)
	t.Setenv("E2E_S3_KEY_ID", "AKIDE2ETEST")
	t.Setenv("E2E_S3_SECRET", secret)
	t.Setenv("AWS_CA_BUNDLE", "") // the machine's bundle would only matter for TLS
	h := newHarness(t, func(s *worker.Settings) { s.EnvAllow = []string{"E2E_S3_*"} })

	in := workflows.Input{
		Connector:   "sqlite",
		Connection:  map[string]workflows.FieldValue{"path": "E2E_S3_DB"},
		SecretStore: &stores.Spec{Type: stores.TypeEnv},
		Output: workflows.OutputSpec{Type: "s3", Bucket: "catalog", Region: "us-east-1", Endpoint: srv.URL, PathStyle: true,
			Prefix: "team-a", Credentials: map[string]workflows.FieldValue{"accessKeyId": "E2E_S3_KEY_ID", "secretAccessKey": "E2E_S3_SECRET"}},
	}
	run := h.start(workflows.ExtractionWorkflowName, in)
	var sum workflows.Summary
	if err := run.Get(context.Background(), &sum); err != nil {
		t.Fatal(err)
	}
	prefix := "team-a/sqlite/" + output.SafeComponent(run.GetID()) + "/" + output.SafeComponent(run.GetRunID()) + "/"
	if sum.Published != "s3://catalog/"+prefix+"manifest.json" {
		t.Fatalf("published = %q", sum.Published)
	}
	obj, err := backend.GetObject("catalog", prefix+"manifest.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(obj.Contents)
	var m output.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Counts["tables"] != int64(tables) || len(m.Files) == 0 {
		t.Fatalf("manifest = %+v", m)
	}
	for _, f := range m.Files {
		o, err := backend.HeadObject("catalog", prefix+f.Name)
		if err != nil || o.Size != f.Bytes {
			t.Errorf("%s: %v (size %d, manifest %d)", f.Name, err, o.Size, f.Bytes)
		}
	}
	if hist := haystack(t, history(t, h.client, run)); strings.Contains(hist, secret) {
		t.Fatal("the sink's secret key reached workflow history")
	}
	if strings.Contains(h.logs.String(), secret) {
		t.Fatal("the sink's secret key reached the logs")
	}

	// Incremental runs to S3: the state stays on the agent's disk, the second run reuses the
	// staged first one, and its removed.jsonl.gz is published with the data files.
	in.Options.Incremental = "auto"
	first := h.start(workflows.ExtractionWorkflowName, in)
	if err := first.Get(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlDB.Exec(`ALTER TABLE customers DROP COLUMN name`); err != nil {
		t.Fatal(err)
	}
	_ = sqlDB.Close()
	second := h.start(workflows.ExtractionWorkflowName, in)
	var incSum workflows.Summary
	if err := second.Get(context.Background(), &incSum); err != nil {
		t.Fatal(err)
	}
	if incSum.Changes == nil || incSum.Changes.RemovedObjects != 1 {
		t.Fatalf("changes of the second run: %+v", incSum.Changes)
	}
	incPrefix := "team-a/sqlite/" + output.SafeComponent(second.GetID()) + "/" + output.SafeComponent(second.GetRunID()) + "/"
	if o, err := backend.HeadObject("catalog", incPrefix+output.RemovedName); err != nil || o.Size == 0 {
		t.Errorf("%s was not published: %v", output.RemovedName, err)
	}
	for _, local := range []string{"fingerprints.json"} {
		if _, err := backend.HeadObject("catalog", incPrefix+local); err == nil {
			t.Errorf("%s, the agent's own state, was published", local)
		}
	}
}
