package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/secure-agent/secure-agent/worker"
)

// TestRunShowsProgressWithoutQueries runs extractions with `run` on a real embedded server and
// reads what the Web UI shows without the progress query: the static summary and details set at
// start (DescribeWorkflow) and the current details the workflow sets at each phase (the
// __temporal_workflow_metadata query). None of them holds the secret (the database path, a
// canary) or a connection value. It also checks --quiet (only the summary) and the progress
// lines (tables counted, a last line whose phase is done).
func TestRunShowsProgressWithoutQueries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	settings, err := worker.LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	dbDir := filepath.Join(t.TempDir(), "meta-canary-dir")
	if err := os.Mkdir(dbDir, 0o700); err != nil {
		t.Fatal(err)
	}
	settings.OutputDir, settings.EnvAllow, settings.TaskQueue, settings.Audit = t.TempDir(), []string{"META_TEST_*"}, "meta-test", "off"
	settings.SQLiteDirs = []string{dbDir}
	d, err := startDev(ctx, portZeroConfig(t), settings, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	t.Setenv("TEMPORAL_ADDRESS", d.server.FrontendAddress())
	t.Setenv("TEMPORAL_NAMESPACE", d.server.Namespace())
	db := filepath.Join(dbDir, "shop.db")
	if err := writeSampleDB(ctx, db); err != nil {
		t.Fatal(err)
	}
	t.Setenv("META_TEST_DB", db)
	write := func(v any) string {
		p := filepath.Join(t.TempDir(), "input.json")
		b, _ := json.Marshal(v)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	input := func(pathVar string) string {
		return write(map[string]any{"connector": "sqlite", "connection": map[string]any{"path": pathVar},
			"secretStore": map[string]any{"type": "env"}, "source": "shop_[demo]", "output": map[string]any{"prefix": "team-a"}})
	}
	canaries := []string{"meta-canary-dir", "META_TEST_DB", "META_TEST_MISSING"}

	// metadata returns what the UI shows of a run: static summary, static details, current details.
	metadata := func(id string) (string, string, string) {
		t.Helper()
		desc, err := d.client.DescribeWorkflow(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		summary, err1 := desc.GetStaticSummary()
		details, err2 := desc.GetStaticDetails()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		v, err := d.client.QueryWorkflow(ctx, id, "", "__temporal_workflow_metadata") // no exported name in SDK v1.50's client package
		if err != nil {
			t.Fatal(err)
		}
		var md sdkpb.WorkflowMetadata
		if err := v.Get(&md); err != nil {
			t.Fatal(err)
		}
		raw, _ := protojson.Marshal(&md)
		for _, c := range canaries {
			if strings.Contains(summary+details+string(raw), c) {
				t.Errorf("the UI metadata of %s holds %q:\n%s\n%s\n%s", id, c, summary, details, raw)
			}
		}
		return summary, details, md.GetCurrentDetails()
	}

	// A run that succeeds, with progress lines (stderr is not a terminal here: one line each).
	var stdout, stderr bytes.Buffer
	id := fmt.Sprintf("meta-ok-%d", time.Now().UnixNano())
	if code := mainWith(ctx, []string{"run", "--input", input("META_TEST_DB"), "--task-queue", "meta-test", "--workflow-id", id}, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d: %s", code, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "done ") || !strings.Contains(last, "1/1 schemas  7 tables") {
		t.Errorf("the last progress line is %q, want phase done with 7 tables:\n%s", last, &stderr)
	}
	summary, details, current := metadata(id)
	if summary != `sqlite extraction of shop\_\[demo\] → local output` {
		t.Errorf("static summary %q", summary)
	}
	for _, want := range []string{"**connector** sqlite", "**source** shop\\_\\[demo\\]", "**secret store** env", "**output** local, prefix team-a"} {
		if !strings.Contains(details, want) {
			t.Errorf("static details %q do not hold %q", details, want)
		}
	}
	if !strings.HasPrefix(current, "**done** · schemas 1/1 · tables 7 · columns ") {
		t.Errorf("current details of a finished run: %q", current)
	}

	// A run that fails: the details say so.
	id = fmt.Sprintf("meta-failed-%d", time.Now().UnixNano())
	if code := mainWith(ctx, []string{"run", "--quiet", "--input", input("META_TEST_MISSING"), "--task-queue", "meta-test", "--workflow-id", id}, &stdout, &stderr); code != 1 {
		t.Fatalf("a failed run exited %d", code)
	}
	if _, _, current := metadata(id); !strings.HasPrefix(current, "**failed** · schemas 0/0") {
		t.Errorf("current details of a failed run: %q", current)
	}

	// --quiet: the summary on stdout, nothing at all on stderr.
	stdout.Reset()
	stderr.Reset()
	if code := mainWith(ctx, []string{"run", "--quiet", "--input", input("META_TEST_DB"), "--task-queue", "meta-test"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run --quiet exited %d: %s", code, &stderr)
	}
	if !strings.Contains(stdout.String(), "extraction complete") || stderr.Len() != 0 {
		t.Errorf("run --quiet: stdout %q, stderr %q (want the summary only)", &stdout, &stderr)
	}

	// Ctrl-C while following: this command stops, says the run goes on and how to follow or
	// stop it, and exits 130. (A queue no worker polls, so the run is surely still going.)
	stderr.Reset()
	id = fmt.Sprintf("meta-interrupted-%d", time.Now().UnixNano())
	ictx, interrupt := context.WithCancel(ctx)
	time.AfterFunc(time.Second, interrupt)
	if code := mainWith(ictx, []string{"run", "--input", input("META_TEST_DB"), "--task-queue", "meta-nobody", "--workflow-id", id}, &stdout, &stderr); code != 130 {
		t.Errorf("an interrupted run exited %d, want 130: %s", code, &stderr)
	}
	for _, want := range []string{"interrupted: stopped following " + id, "the run goes on in Temporal", "temporal workflow cancel --workflow-id " + shellQuote(id)} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("after Ctrl-C, stderr does not say %q:\n%s", want, &stderr)
		}
	}
	if err := d.client.TerminateWorkflow(ctx, id, "", "test over"); err != nil {
		t.Error(err)
	}
}
