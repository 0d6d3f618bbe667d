package output

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
)

func tbl(schema, name string) connectors.Table {
	n := int64(len(name))
	return connectors.Table{Schema: schema, Name: name, Type: "table", RowCount: &n}
}

func col(schema, table, name string, pos int) connectors.Column {
	return connectors.Column{Schema: schema, Table: table, Name: name, Position: pos, DataType: "TEXT", Nullable: true, Default: `'it''s'`}
}

// writePart writes entities as part id and commits.
func writePart(t *testing.T, dir, id string, entities ...connectors.Entity) {
	t.Helper()
	w, err := NewPartWriter(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entities {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// readLines decompresses a gzip JSON Lines file (all members) into its lines.
func readLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	var lines []string
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func readTables(t *testing.T, name string) []connectors.Table {
	t.Helper()
	var out []connectors.Table
	for _, l := range readLines(t, name) {
		var tb connectors.Table
		if err := json.Unmarshal([]byte(l), &tb); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, tb)
	}
	return out
}

func names(ts []connectors.Table) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// checkManifest verifies every file the manifest lists against the file itself.
func checkManifest(t *testing.T, dir string, m *Manifest) {
	t.Helper()
	total := map[string]int64{}
	for _, f := range m.Files {
		p := filepath.Join(dir, f.Name)
		sum, err := FileSHA256(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(p)
		if sum != f.SHA256 || st.Size() != f.Bytes || int64(len(readLines(t, p))) != f.Count || f.Name != f.Entity+".jsonl.gz" {
			t.Errorf("%s: manifest %+v, file sha256 %s, %d bytes, %d lines", f.Name, f, sum, st.Size(), len(readLines(t, p)))
		}
		total[f.Entity] += f.Count
	}
	if !reflect.DeepEqual(total, m.Counts) {
		t.Errorf("counts %v, files say %v", m.Counts, total)
	}
	onDisk, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, m) {
		t.Errorf("manifest on disk %+v, returned %+v", onDisk, m)
	}
}

var meta = ManifestMeta{
	Connector: "sqlite", WorkflowID: "wf-1", RunID: "run-1", Identity: "sqlite 3.x",
	StartedAt:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	FinishedAt: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC),
}

func TestRoundTrip(t *testing.T) {
	root := t.TempDir()
	dir := RunDir(root, "", "sqlite", "wf-1", "run-1")
	if dir != filepath.Join(root, "sqlite", "wf-1", "run-1") {
		t.Fatalf("RunDir = %s", dir)
	}
	// Parts committed out of order; the final files follow part-id order.
	writePart(t, dir, "s000002", tbl("b", "t3"), col("b", "t3", "x", 1))
	writePart(t, dir, "s000000", tbl("a", "t1"), col("a", "t1", "x", 1), col("a", "t1", "y", 2), tbl("a", "t2"))
	writePart(t, dir, "s000001") // an empty part: no file
	writePart(t, dir, "s000010", tbl("c", "<&> ünïcode \"q\""))

	// Parts read back as written.
	parts := filepath.Join(dir, PartsDir)
	if got := dirEntries(t, parts); !slices.Equal(got, []string{"columns.s000000.jsonl.gz", "columns.s000002.jsonl.gz", "tables.s000000.jsonl.gz", "tables.s000002.jsonl.gz", "tables.s000010.jsonl.gz"}) {
		t.Fatalf("parts = %q", got)
	}
	if got := readTables(t, filepath.Join(parts, "tables.s000000.jsonl.gz")); !slices.Equal(names(got), []string{"t1", "t2"}) || *got[0].RowCount != 2 {
		t.Errorf("part tables = %+v", got)
	}

	m, err := Finalize(dir, meta)
	if err != nil {
		t.Fatal(err)
	}
	if got := readTables(t, filepath.Join(dir, "tables.jsonl.gz")); !slices.Equal(names(got), []string{"t1", "t2", "t3", `<&> ünïcode "q"`}) {
		t.Errorf("tables = %q", names(got))
	}
	lines := readLines(t, filepath.Join(dir, "columns.jsonl.gz"))
	var cols []connectors.Column
	for _, l := range lines {
		var c connectors.Column
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if want := []connectors.Column{col("a", "t1", "x", 1), col("a", "t1", "y", 2), col("b", "t3", "x", 1)}; !reflect.DeepEqual(cols, want) {
		t.Errorf("columns = %+v", cols)
	}
	if !strings.Contains(strings.Join(readLines(t, filepath.Join(dir, "tables.jsonl.gz")), "\n"), `<&>`) {
		t.Error("HTML characters were escaped")
	}

	if m.FormatVersion != FormatVersion || m.Connector != "sqlite" || m.WorkflowID != "wf-1" || m.RunID != "run-1" ||
		m.Identity != "sqlite 3.x" || !m.StartedAt.Equal(meta.StartedAt) || !m.FinishedAt.Equal(meta.FinishedAt) {
		t.Errorf("manifest = %+v", m)
	}
	if !reflect.DeepEqual(m.Counts, map[string]int64{"tables": 4, "columns": 3}) || len(m.Files) != 2 || m.Files[0].Name != "columns.jsonl.gz" {
		t.Errorf("manifest counts %v files %+v", m.Counts, m.Files)
	}
	checkManifest(t, dir, m)
	if got := dirEntries(t, dir); !slices.Equal(got, []string{"columns.jsonl.gz", "manifest.json", "tables.jsonl.gz"}) {
		t.Errorf("run directory = %q", got)
	}
	// The manifest's JSON names.
	raw, _ := os.ReadFile(ManifestPath(dir))
	for _, key := range []string{`"formatVersion": 1`, `"workflowId": "wf-1"`, `"runId"`, `"identity"`, `"startedAt"`, `"finishedAt"`, `"sha256"`, `"bytes"`, `"count"`, `"entity"`, `"counts"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("manifest.json lacks %s", key)
		}
	}
}

func TestRetriedPartReplacesItsOwn(t *testing.T) {
	root := t.TempDir()
	dir := RunDir(root, "team/a", "sqlite", "wf", "run")
	if dir != filepath.Join(root, "team", "a", "sqlite", "wf", "run") {
		t.Fatalf("RunDir = %s", dir)
	}
	writePart(t, dir, "s000000", tbl("a", "t1"))
	// First attempt of s000001: three tables and columns, committed, then the activity died.
	writePart(t, dir, "s000001", tbl("b", "x1"), tbl("b", "x2"), tbl("b", "x3"), col("b", "x1", "c", 1))
	// A second attempt that was aborted leaves nothing.
	w, err := NewPartWriter(dir, "s000001")
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Write(tbl("b", "aborted"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if err := w.Write(tbl("b", "late")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	// A third attempt that crashed mid-way leaves a temp file, never read.
	crashed, err := NewPartWriter(dir, "s000001")
	if err != nil {
		t.Fatal(err)
	}
	_ = crashed.Write(tbl("b", "crashed"))
	// The fourth attempt succeeds, finding fewer tables and no columns.
	writePart(t, dir, "s000001", tbl("b", "x1"), tbl("b", "x2"))

	m, err := Finalize(dir, meta)
	if err != nil {
		t.Fatal(err)
	}
	if got := readTables(t, filepath.Join(dir, "tables.jsonl.gz")); !slices.Equal(names(got), []string{"t1", "x1", "x2"}) {
		t.Errorf("tables = %q", names(got))
	}
	if !reflect.DeepEqual(m.Counts, map[string]int64{"tables": 3}) {
		t.Errorf("counts = %v (the stale columns part must be gone)", m.Counts)
	}
	checkManifest(t, dir, m)
	if got := dirEntries(t, dir); !slices.Equal(got, []string{"manifest.json", "tables.jsonl.gz"}) {
		t.Errorf("run directory = %q", got)
	}
}

func TestCommitOnce(t *testing.T) {
	dir := t.TempDir()
	w, err := NewPartWriter(dir, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(tbl("s", "t")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := w.Write(tbl("s", "u")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if got := dirEntries(t, filepath.Join(dir, PartsDir)); !slices.Equal(got, []string{"tables.p1.jsonl.gz"}) {
		t.Errorf("parts = %q", got)
	}
}

type badKind struct{}

func (badKind) Kind() string { return "../etc" }

func TestInvalidNames(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"", "a.b", "../x", "a/b", "x y", strings.Repeat("a", 101), "é"} {
		if _, err := NewPartWriter(dir, id); err == nil {
			t.Errorf("part id %q accepted", id)
		}
	}
	w, err := NewPartWriter(dir, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(badKind{}); err == nil {
		t.Error("kind ../etc accepted")
	}
	_ = w.Abort()
	if _, err := Finalize(filepath.Join(dir, "run"), ManifestMeta{Kinds: []string{"a.b"}}); err == nil {
		t.Error("Kinds a.b accepted")
	}
}

func TestEmptyRunKinds(t *testing.T) {
	dir := RunDir(t.TempDir(), "", "sqlite", "wf", "run")
	mm := meta
	mm.Kinds = []string{"tables", "columns"}
	mm.FinishedAt = time.Time{}
	m, err := Finalize(dir, mm)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Counts, map[string]int64{"tables": 0, "columns": 0}) || len(m.Files) != 2 || m.FinishedAt.IsZero() {
		t.Errorf("manifest = %+v", m)
	}
	checkManifest(t, dir, m)
}

// copyTree copies a directory tree of regular files.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fileBytes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range dirEntries(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err == nil {
			out[n] = string(b)
		}
	}
	return out
}

func TestFinalizeIdempotent(t *testing.T) {
	root := t.TempDir()
	ref := filepath.Join(root, "ref")
	for i := range 5 {
		var es []connectors.Entity
		for j := range 50 {
			name := fmt.Sprintf("t%d_%d", i, j)
			es = append(es, tbl("s", name), col("s", name, "a", 1), col("s", name, "b", 2))
		}
		writePart(t, ref, fmt.Sprintf("batch-%04d", i), es...)
	}
	crash1 := filepath.Join(root, "crash-before-manifest")
	crash2 := filepath.Join(root, "crash-after-manifest")
	copyTree(t, ref, crash1)
	copyTree(t, ref, crash2)

	want, err := Finalize(ref, meta)
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, ref, want)
	wantFiles := fileBytes(t, ref)

	// Again on a finished run: the same manifest, the same files.
	again, err := Finalize(ref, ManifestMeta{Connector: "other"})
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("second Finalize = %+v, %v", again, err)
	}
	if !reflect.DeepEqual(fileBytes(t, ref), wantFiles) {
		t.Error("second Finalize changed the files")
	}

	// A crash after one data file was written (and a temp file of another left), before the
	// manifest: the parts are all there and the rerun rebuilds the same files.
	parts, err := committedParts(crash1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := joinParts(crash1, "columns", parts["columns"]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crash1, ".tables.jsonl.gz.123.tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Finalize(crash1, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(fileBytes(t, crash1), wantFiles) {
		t.Errorf("after a crash before the manifest: %+v", got)
	}

	// A crash after the manifest, while parts/ was being removed: what is left of parts/ must not
	// be joined again.
	if _, err := Finalize(crash2, meta); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(crash2, PartsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(crash2, PartsDir, "tables.batch-0004.jsonl.gz")
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = Finalize(crash2, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(fileBytes(t, crash2), wantFiles) {
		t.Errorf("after a crash after the manifest: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(crash2, PartsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("parts/ left: %v", err)
	}

	// A sealed run whose files were tampered with is reported, not rewritten.
	if err := os.WriteFile(filepath.Join(crash2, "tables.jsonl.gz"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Finalize(crash2, meta); err == nil {
		t.Error("Finalize accepted a file whose size differs from the manifest")
	}
}

func TestUnsafeIDsStayInsideRootAndDistinct(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	ids := []string{
		"../x", "a/b", ".", "", "..", "../../..", "/abs", "a\\b", "%2E", "%2E%2E", "%", "%25", "a%2Fb",
		"x\x00y", "line\nbreak", "tab\t", " ", "~", "a b", "A", "a", "日本", "%~", "-rf", ".hidden",
		strings.Repeat("x", 1000), strings.Repeat("x", 999) + "y", strings.Repeat("/", 300),
		strings.Repeat("é", 300), strings.Repeat("é", 299) + "e",
	}
	seen := map[string]string{}
	for _, id := range ids {
		for _, field := range []string{"connector", "workflow", "run"} {
			args := map[string]string{"connector": "sqlite", "workflow": "wf", "run": "run"}
			args[field] = id
			dir := RunDir(root, "", args["connector"], args["workflow"], args["run"])
			rel, err := filepath.Rel(root, dir)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
				t.Fatalf("%s %q: %s is outside the root", field, id, dir)
			}
			if comps := strings.Split(rel, string(filepath.Separator)); len(comps) != 3 {
				t.Fatalf("%s %q: %d components in %q", field, id, len(comps), rel)
			}
			for _, c := range strings.Split(rel, string(filepath.Separator)) {
				if len(c) > 255 || c == "." || c == ".." || c == "" {
					t.Fatalf("%s %q: component %q", field, id, c)
				}
				for _, r := range c {
					if r < 0x20 || r == 0x7f || r > 0x7e {
						t.Fatalf("%s %q: component %q has %q", field, id, c, r)
					}
				}
			}
			if field == "workflow" {
				if prev, dup := seen[dir]; dup {
					t.Fatalf("workflow ids %q and %q share %s", prev, id, dir)
				}
				seen[dir] = id
			}
		}
	}
	// And on disk: each run is written and finalized inside root, in its own directory.
	for _, id := range ids {
		dir := RunDir(root, "", "sqlite", id, "run")
		writePart(t, dir, "p", tbl("s", id))
		m, err := Finalize(dir, ManifestMeta{Connector: "sqlite", WorkflowID: id, RunID: "run"})
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if m.WorkflowID != id || m.Counts["tables"] != 1 {
			t.Errorf("%q: manifest %+v", id, m)
		}
	}
	wfDirs := dirEntries(t, filepath.Join(root, "sqlite"))
	if len(wfDirs) != len(ids) {
		t.Errorf("%d workflow directories for %d ids: %q", len(wfDirs), len(ids), wfDirs)
	}
	if got := dirEntries(t, filepath.Dir(root)); !slices.Equal(got, []string{"root"}) {
		t.Errorf("something was written beside the root: %q", got)
	}
}

func TestPrefix(t *testing.T) {
	root := "/out"
	for prefix, want := range map[string]string{
		"":             "/out/c/w/r",
		"team":         "/out/team/c/w/r",
		"team/a/":      "/out/team/a/c/w/r",
		"./team//a":    "/out/team/a/c/w/r",
		"../up":        "/out/%2E%2E/up/c/w/r",
		"/abs":         "/out/abs/c/w/r",
		"a\\b":         "/out/a%5Cb/c/w/r",
		"..":           "/out/%2E%2E/c/w/r",
		"x/../../../y": "/out/x/%2E%2E/%2E%2E/%2E%2E/y/c/w/r",
	} {
		if got := RunDir(root, prefix, "c", "w", "r"); got != want {
			t.Errorf("prefix %q: %s, want %s", prefix, got, want)
		}
	}
}

// TestMissingParts: a part committed on another worker's disk is missing here, kind by kind; a
// part that committed no entity of a kind is not expected to have that kind's file; a finalized
// run misses nothing.
func TestMissingParts(t *testing.T) {
	dir := RunDir(t.TempDir(), "", "sqlite", "wf", "run")
	writePart(t, dir, "b000000", tbl("a", "t1"), col("a", "t1", "c", 1))
	writePart(t, dir, "b000002", tbl("c", "t3"))
	expected := map[string][]string{
		"b000000": {"tables", "columns"},
		"b000001": {"tables"},            // committed elsewhere
		"b000002": {"tables", "columns"}, // its columns part is elsewhere
		"b000003": nil,                   // committed no entity: nothing to find
	}
	missing, err := MissingParts(dir, expected)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(missing, []string{"b000001", "b000002"}) {
		t.Fatalf("missing = %v, want [b000001 b000002]", missing)
	}
	writePart(t, dir, "b000001", tbl("b", "t2"))
	writePart(t, dir, "b000002", tbl("c", "t3"), col("c", "t3", "c", 1))
	if missing, err := MissingParts(dir, expected); err != nil || len(missing) != 0 {
		t.Fatalf("after the parts were written again: missing %v, %v", missing, err)
	}
	if _, err := Finalize(dir, meta); err != nil {
		t.Fatal(err)
	}
	if missing, err := MissingParts(dir, map[string][]string{"b000009": {"tables"}}); err != nil || len(missing) != 0 {
		t.Fatalf("a finalized run: missing %v, %v", missing, err)
	}
}
