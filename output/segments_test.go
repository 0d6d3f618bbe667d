package output

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
)

// catalog is a small catalog: per schema, its Schema entity, tables and columns, in the order a
// connector writes them (kind by kind, schema by schema).
func catalog(schemas map[string][]string) []connectors.Entity {
	var names []string
	for s := range schemas {
		names = append(names, s)
	}
	slices.Sort(names)
	out := []connectors.Entity{connectors.Database{Name: "db"}}
	for _, s := range names {
		out = append(out, connectors.Schema{Name: s})
	}
	for _, s := range names {
		for _, tb := range schemas[s] {
			out = append(out, tbl(s, tb))
		}
	}
	for _, s := range names {
		for _, tb := range schemas[s] {
			out = append(out, col(s, tb, "id", 1), col(s, tb, "name", 2))
		}
	}
	return out
}

// writeBatches writes the entities of the catalog in batches of the given schema lists, each a
// planned part (the schemas in reuse.Schemas are in no batch: Finalize copies them), stages
// fingerprints and finalizes.
func writeBatches(t *testing.T, dir string, schemas map[string][]string, batches [][]string, reuse *Reuse) *Manifest {
	t.Helper()
	all := catalog(schemas)
	first := slices.Sorted(maps.Keys(schemas))[0] // its batch writes the database, as a connector does
	fps := Fingerprints{Schemas: map[string]string{}}
	for i, b := range batches {
		for _, s := range b {
			fps.Schemas[s] = "fp-" + s
		}
		w, err := NewPlannedPartWriter(dir, "b"+string(rune('0'+i)), Plan{Units: b})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			s, ok := connectors.SchemaOf(e)
			if !ok && slices.Contains(b, first) || ok && slices.Contains(b, s) {
				if err := w.Write(e); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if reuse != nil {
		for _, s := range reuse.Schemas {
			fps.Schemas[s] = "fp-" + s
		}
	}
	if err := StageFingerprints(dir, fps); err != nil {
		t.Fatal(err)
	}
	m2 := meta
	m2.Kinds = []string{"databases", "schemas", "tables", "columns", "keys"}
	m2.Reuse = reuse
	m, err := Finalize(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, dir, m)
	return m
}

func dataFiles(t *testing.T, dir string, m *Manifest) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

// The same catalog gives the same bytes whatever the batches, and each schema's segments hold
// exactly its entities.
func TestSegmentsDoNotDependOnBatches(t *testing.T) {
	cat := map[string][]string{"a": {"t1", "t2"}, "b": {}, "c": {"x"}, "d": {"y", "z"}}
	one := t.TempDir()
	m1 := writeBatches(t, one, cat, [][]string{{"a", "b", "c", "d"}}, nil)
	two := t.TempDir()
	m2 := writeBatches(t, two, cat, [][]string{{"a"}, {"b", "c"}, {"d"}}, nil)
	if !reflect.DeepEqual(dataFiles(t, one, m1), dataFiles(t, two, m2)) {
		t.Fatal("one batch and three batches gave different files")
	}
	if !reflect.DeepEqual(m1.Schemas, m2.Schemas) {
		t.Fatalf("schema indexes differ:\n%+v\n%+v", m1.Schemas, m2.Schemas)
	}
	if got := len(m1.Schemas); got != 4 {
		t.Fatalf("%d schemas indexed, want 4", got)
	}
	// Each segment decompresses on its own to its schema's lines.
	for _, s := range m1.Schemas {
		var lines []string
		err := ScanSegments(one, s.Segments, func(l []byte) error { lines = append(lines, string(l)); return nil })
		if err != nil {
			t.Fatal(err)
		}
		want := 1 + 3*len(cat[s.Name]) // schema, tables, two columns each
		if s.Name == "a" {
			want++ // the database
		}
		if len(lines) != want {
			t.Errorf("schema %s: %d lines in its segments, want %d", s.Name, len(lines), want)
		}
		for _, l := range lines {
			if !strings.Contains(l, `"name":"db"`) && !strings.Contains(l, `"schema":"`+s.Name+`"`) && !strings.Contains(l, `"name":"`+s.Name+`"`) {
				t.Errorf("schema %s's segment holds %s", s.Name, l)
			}
		}
	}
	fps, err := ReadFingerprints(one)
	if err != nil || fps == nil || fps.Schemas["c"] != "fp-c" || len(fps.Schemas) != 4 {
		t.Fatalf("fingerprints %v, %v", fps, err)
	}
}

// Reusing a schema's segments from an earlier run gives the bytes writing it again gives, and
// the changes name what went away.
func TestReusedSegmentsAreByteIdentical(t *testing.T) {
	before := map[string][]string{"a": {"t1", "t2"}, "b": {"gone"}, "c": {"x", "old"}, "d": {"y"}}
	prevDir := t.TempDir()
	prev := writeBatches(t, prevDir, before, [][]string{{"a", "b"}, {"c", "d"}}, nil)
	if len(prev.Schemas) != 4 {
		t.Fatalf("previous run indexes %d schemas", len(prev.Schemas))
	}

	after := map[string][]string{"a": {"t1", "t2"}, "c": {"x"}, "d": {"y"}, "e": {"new"}}
	// a and d are unchanged: reused. The database entity goes with a, the first schema.
	reuse := &Reuse{Previous: RunRef{WorkflowID: "wf-0", RunID: "run-0"}, PreviousDir: prevDir, Schemas: []string{"a", "d"}}
	inc := t.TempDir()
	m := writeBatches(t, inc, after, [][]string{{"c"}, {"e"}}, reuse)
	full := t.TempDir()
	mf := writeBatches(t, full, after, [][]string{{"a", "c", "d", "e"}}, nil)
	fb, ib := dataFiles(t, full, mf), dataFiles(t, inc, m)
	for name, b := range fb {
		if !bytes.Equal(b, ib[name]) {
			t.Errorf("%s differs between the incremental and the full run", name)
		}
	}
	c := m.Changes
	if c == nil || c.Reused != 2 || c.Extracted != 2 || !reflect.DeepEqual(c.Added, []string{"e"}) || !reflect.DeepEqual(c.Removed, []string{"b"}) {
		t.Fatalf("changes %+v", c)
	}
	removed := readLines(t, filepath.Join(inc, RemovedName))
	want := []string{
		`{"kind":"schemas","schema":"b","name":"b"}`,
		`{"kind":"columns","schema":"c","table":"old","name":"id"}`,
		`{"kind":"columns","schema":"c","table":"old","name":"name"}`,
		`{"kind":"tables","schema":"c","name":"old"}`,
	}
	if !reflect.DeepEqual(removed, want) || c.RemovedObjects != 4 || c.Previous != reuse.Previous {
		t.Fatalf("removed %d:\n%s\nwant\n%s", c.RemovedObjects, strings.Join(removed, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range m.Schemas {
		if s.Reused != (s.Name == "a" || s.Name == "d") {
			t.Errorf("schema %s reused %v", s.Name, s.Reused)
		}
	}
}

// A connector that writes a kind out of schema order is refused, not silently misindexed.
func TestSegmentsRefuseOutOfOrder(t *testing.T) {
	if _, err := NewPlannedPartWriter(t.TempDir(), "b0", Plan{Units: []string{"b", "a"}}); err == nil {
		t.Fatal("unsorted units were accepted")
	}
	w, err := NewPlannedPartWriter(t.TempDir(), "b0", Plan{Units: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	if err := w.Write(tbl("b", "t")); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(tbl("a", "t")); err == nil || !strings.Contains(err.Error(), "after those of a later schema") {
		t.Fatalf("out of order: %v", err)
	}
	if err := w.Write(tbl("zzz", "t")); err == nil || !strings.Contains(err.Error(), "not in this part") {
		t.Fatalf("unknown schema: %v", err)
	}
}

func TestState(t *testing.T) {
	root := t.TempDir()
	key := strings.Repeat("ab", 32)
	if st, err := ReadState(root, "p", "postgres", key); st != nil || err != nil {
		t.Fatalf("no state yet: %v %v", st, err)
	}
	if _, err := ReadState(root, "p", "postgres", "../../etc/passwd"); err == nil {
		t.Fatal("a key that is not hex was accepted")
	}
	a := RunRef{WorkflowID: "w", RunID: "a"}
	if err := WriteState(root, "p", "postgres", key, a, meta.FinishedAt); err != nil {
		t.Fatal(err)
	}
	// An older run finishing later does not replace a newer one.
	if err := WriteState(root, "p", "postgres", key, RunRef{WorkflowID: "w", RunID: "old"}, meta.StartedAt); err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(root, "p", "postgres", key)
	if err != nil || st == nil || st.Run != a {
		t.Fatalf("state %+v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(root, "p", "postgres", "%incremental", key+".json")); err != nil {
		t.Fatal(err)
	}
}
