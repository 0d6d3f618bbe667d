// Package output is the local-directory sink: the metadata of each run goes to its own directory,
//
//	<root>/[<prefix>/]<connector>/<workflowID>/<runID>/
//	    parts/<kind>.<partID>.jsonl.gz   committed parts, while the run is in progress
//	    parts/.<kind>.<partID>.*.tmp     parts being written (never read)
//	    <kind>.jsonl.gz                  after Finalize: one gzip JSON Lines file per entity kind
//	    manifest.json                    written last: files, counts, sha256, timings, source identity
//
// Extraction activities write parts through a PartWriter. A part is committed atomically (temp
// file, fsync, rename), so an activity that is retried and writes the same part id replaces its own
// earlier part instead of adding rows twice. Finalize concatenates the parts of each kind in
// part-id order (gzip members concatenate into one valid gzip file), writes manifest.json last and
// then removes parts/. A run directory with a manifest.json is complete.
//
// The sink writes only the entities it is given, one JSON object per line; it never sees
// credentials.
package output

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
)

const (
	// PartsDir is the sub-directory of a run directory that holds committed parts.
	PartsDir = "parts"
	// ManifestName is the manifest's file name in a run directory.
	ManifestName = "manifest.json"
	// FileSuffix ends the name of every data file and part.
	FileSuffix = ".jsonl.gz"

	dirPerm  = 0o750
	filePerm = 0o640
	// maxComponent bounds an escaped path component, below the usual 255-byte name limit.
	maxComponent = 200
)

// RunDir returns the directory of one run: root, then the optional prefix, then the connector,
// the workflow id and the run id, each made safe by SafeComponent. The prefix may have several
// "/"-separated components; empty and "." components are dropped and each other one is escaped,
// so ".." cannot climb out of root. RunDir only computes the name; NewPartWriter and Finalize
// create what they need.
func RunDir(root, prefix, connector, workflowID, runID string) string {
	return filepath.Join(PrefixDir(root, prefix), SafeComponent(connector), SafeComponent(workflowID), SafeComponent(runID))
}

// PrefixDir returns the directory an output prefix names under root, each component made safe
// as RunDir makes it: the directory a run's output goes under, before its connector and ids.
func PrefixDir(root, prefix string) string {
	parts := []string{root}
	for _, c := range strings.Split(prefix, "/") {
		if c == "" || c == "." {
			continue
		}
		parts = append(parts, SafeComponent(c))
	}
	return filepath.Join(parts...)
}

// PrefixProblem says what is wrong with an output prefix, or "": it must be a relative
// "/"-separated path that stays inside the output directory (no "..", no backslash, no NUL).
func PrefixProblem(prefix string) string {
	if prefix == "" {
		return ""
	}
	clean := path.Clean(prefix)
	if path.IsAbs(prefix) || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsAny(prefix, "\\\x00") {
		return "must be a relative path inside the agent's output directory, without .."
	}
	return ""
}

// ManifestPath is the manifest's path in a run directory.
func ManifestPath(runDir string) string { return filepath.Join(runDir, ManifestName) }

// SafeComponent turns an id into one path component that stays where it is put, and keeps
// distinct ids distinct (the mapping is injective):
//   - url.PathEscape escapes "/", "\", "%", control bytes, spaces, non-ASCII and more as %XX, so
//     the result is one component of printable ASCII;
//   - "." and ".." become "%2E" and "%2E%2E" (PathEscape leaves dots alone, and would return
//     those two names unchanged);
//   - the empty id becomes "%" (which PathEscape never produces, as it escapes "%" itself);
//   - an escaped id longer than 200 bytes is cut at an escape boundary and ends with "%~" and
//     32 hex digits of the SHA-256 of the id ("%~" is never produced by PathEscape either).
//
// Escaping is not undone anywhere: the manifest records the ids themselves.
func SafeComponent(id string) string {
	switch id {
	case "":
		return "%"
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	s := url.PathEscape(id)
	if len(s) <= maxComponent {
		return s
	}
	cut := maxComponent - 34
	// Do not split a %XX escape.
	if i := strings.LastIndexByte(s[:cut], '%'); i >= 0 && i > cut-3 {
		cut = i
	}
	sum := sha256.Sum256([]byte(id))
	return s[:cut] + "%~" + fmt.Sprintf("%x", sum[:16])
}

// validName reports whether s can be an entity kind or a part id: 1 to 100 bytes of ASCII
// letters, digits, "_" and "-". No dots, so "<kind>.<partID>.jsonl.gz" splits unambiguously.
func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// partName is a committed part's file name.
func partName(kind, partID string) string { return kind + "." + partID + FileSuffix }

// parsePartName splits a committed part's file name; ok is false for anything else (temp files
// start with "." and end in ".tmp").
func parsePartName(name string) (kind, partID string, ok bool) {
	base, found := strings.CutSuffix(name, FileSuffix)
	if !found {
		return "", "", false
	}
	kind, partID, found = strings.Cut(base, ".")
	if !found || !validName(kind) || !validName(partID) {
		return "", "", false
	}
	return kind, partID, true
}

// PartWriter writes one part of a run: for each entity kind, a gzip JSON Lines stream into a
// temp file in <run>/parts/, made visible as <kind>.<partID>.jsonl.gz only by Commit. Memory stays
// bounded: entities are encoded and compressed as they come. A PartWriter is for one goroutine;
// different part ids may be written concurrently into the same run directory.
//
// A part written with a Plan (NewPlannedPartWriter) is cut into segments: each schema's entities
// of a kind are one gzip member of their own, so the same entities give the same bytes whatever
// the batch they were written in, and Finalize can interleave them with segments reused from an
// earlier run's files. Commit then also writes the part's index (see PartIndex).
type PartWriter struct {
	dir    string // <run>/parts
	partID string
	kinds  map[string]*partFile
	order  []string // kinds in first-write order
	done   bool
	plan   *Plan
	unit   map[string]int // plan.Units: schema name -> position
	index  []SchemaIndex  // plan.Units' segments, filled as members close
}

var _ connectors.EntityWriter = (*PartWriter)(nil)

type partFile struct {
	f   *os.File
	buf *bufio.Writer
	cw  *countingWriter // counts the bytes written to buf
	gz  *gzip.Writer
	enc *json.Encoder
	// Planned parts only: the unit of the open member (-1: none open), the first unit that may
	// still start a member, where the open member started and how many lines it has.
	planned    bool
	unit, next int
	start, n   int64
}

// CompressionLevel is the gzip level of the output files. Level 2 compresses catalog JSON lines
// about eight times faster than gzip's default (6) for files about 1.4 times larger (100,000
// generated column lines like the benchmark's, 17.6 MB: 177 ms to 286 KB at level 6, 22 ms to
// 415 KB at level 2): at the default, compressing took more CPU than reading the catalog.
const CompressionLevel = 2

// NewPartWriter starts part partID of the run in runDir, creating <run>/parts/ if needed. Part ids
// order the parts in the final files as strings ("batch-0003" before "batch-0010": pad numbers),
// and are 1 to 100 ASCII letters, digits, "_" or "-".
func NewPartWriter(runDir, partID string) (*PartWriter, error) {
	if !validName(partID) {
		return nil, fmt.Errorf("output: part id %q must be 1 to 100 ASCII letters, digits, '_' or '-'", partID)
	}
	dir := filepath.Join(runDir, PartsDir)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("output: creating the parts directory: %w", err)
	}
	return &PartWriter{dir: dir, partID: partID, kinds: map[string]*partFile{}}, nil
}

// NewPlannedPartWriter is NewPartWriter for a part cut into per-schema segments by plan (see
// PartWriter and Plan). Entities of each kind must come in plan.Units order; a Database entity
// belongs to the first unit.
func NewPlannedPartWriter(runDir, partID string, plan Plan) (*PartWriter, error) {
	if problem := plan.problem(); problem != "" {
		return nil, fmt.Errorf("output: invalid part plan: %s", problem)
	}
	w, err := NewPartWriter(runDir, partID)
	if err != nil {
		return nil, err
	}
	w.plan = &plan
	w.unit = make(map[string]int, len(plan.Units))
	w.index = make([]SchemaIndex, len(plan.Units))
	for i, u := range plan.Units {
		w.unit[u] = i
		w.index[i] = SchemaIndex{Name: u, Segments: map[string]Segment{}}
	}
	return w, nil
}

// Write appends e as one JSON line to the stream of its kind. It implements
// connectors.EntityWriter.
func (w *PartWriter) Write(e connectors.Entity) error {
	if w.done {
		return errors.New("output: write to a part that was committed or aborted")
	}
	kind := e.Kind()
	pf, err := w.file(kind)
	if err != nil {
		return err
	}
	if w.plan != nil {
		if err := w.enterUnit(pf, kind, e); err != nil {
			return err
		}
		pf.n++
	}
	if err := pf.enc.Encode(e); err != nil {
		return fmt.Errorf("output: writing a %s entity: %w", kind, err)
	}
	return nil
}

// file returns kind's stream, creating it on first use.
func (w *PartWriter) file(kind string) (*partFile, error) {
	if pf, ok := w.kinds[kind]; ok {
		return pf, nil
	}
	if !validName(kind) {
		return nil, fmt.Errorf("output: entity kind %q must be 1 to 100 ASCII letters, digits, '_' or '-'", kind)
	}
	f, err := os.CreateTemp(w.dir, "."+kind+"."+w.partID+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("output: creating a part file: %w", err)
	}
	buf := bufio.NewWriterSize(f, 64<<10)
	cw := &countingWriter{w: buf}
	gz, err := gzip.NewWriterLevel(cw, CompressionLevel)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("output: %w", err)
	}
	enc := json.NewEncoder(gz)
	enc.SetEscapeHTML(false)
	pf := &partFile{f: f, buf: buf, cw: cw, gz: gz, enc: enc, planned: w.plan != nil, unit: -1}
	w.kinds[kind] = pf
	w.order = append(w.order, kind)
	return pf, nil
}

// enterUnit makes sure e's unit's member is the open one of kind's stream: it closes the open
// member and starts one for e's unit.
func (w *PartWriter) enterUnit(pf *partFile, kind string, e connectors.Entity) error {
	u := 0 // a Database belongs to the first unit
	if name, ok := connectors.SchemaOf(e); ok {
		i, known := w.unit[name]
		if !known {
			return fmt.Errorf("output: a %s entity of schema %q, which is not in this part", kind, name)
		}
		u = i
	} else if kind != connectors.KindDatabases {
		return fmt.Errorf("output: a %s entity names no schema; a part cut into schemas cannot place it", kind)
	}
	if u == pf.unit {
		return nil
	}
	if u < pf.next {
		return fmt.Errorf("output: %s entities of schema %q came after those of a later schema; a connector must write each kind schema by schema, in order", kind, w.plan.Units[u])
	}
	if err := w.closeMember(pf, kind); err != nil {
		return err
	}
	pf.unit, pf.next, pf.start, pf.n = u, u+1, pf.cw.n, 0
	pf.gz.Reset(pf.cw)
	return nil
}

// closeMember ends the open member of kind's stream, if any, and records its segment.
func (w *PartWriter) closeMember(pf *partFile, kind string) error {
	if pf.unit < 0 {
		return nil
	}
	if err := pf.gz.Close(); err != nil {
		return fmt.Errorf("output: writing the %s part: %w", kind, err)
	}
	w.index[pf.unit].Segments[kind] = Segment{Bytes: pf.cw.n - pf.start, Count: pf.n}
	pf.unit = -1
	return nil
}

// finish closes the open member of every kind's stream of a planned part.
func (w *PartWriter) finish() error {
	for _, kind := range w.order {
		if err := w.closeMember(w.kinds[kind], kind); err != nil {
			return err
		}
	}
	return nil
}

// Commit makes the part visible: for each kind it flushes, fsyncs and renames the temp file to
// parts/<kind>.<partID>.jsonl.gz, replacing a part of the same id from an earlier attempt. Parts
// of this id for kinds this attempt did not write are removed, so the part as a whole is the
// latest attempt's. A planned part's index is written first. On error the uncommitted temp
// files are removed.
func (w *PartWriter) Commit() error {
	if w.done {
		return errors.New("output: commit of a part that was committed or aborted")
	}
	if w.plan != nil {
		if err := w.finish(); err != nil {
			_ = w.Abort()
			return err
		}
		if err := writeAtomically(w.dir, indexName(w.partID), func(wr io.Writer) error {
			return json.NewEncoder(wr).Encode(PartIndex{Units: w.index})
		}); err != nil {
			_ = w.Abort()
			return fmt.Errorf("output: writing the part's index: %w", err)
		}
	}
	for _, kind := range w.order {
		pf := w.kinds[kind]
		if err := pf.close(true); err != nil {
			_ = w.Abort()
			return fmt.Errorf("output: committing the %s part: %w", kind, err)
		}
		if err := os.Rename(pf.f.Name(), filepath.Join(w.dir, partName(kind, w.partID))); err != nil {
			_ = w.Abort()
			return fmt.Errorf("output: committing the %s part: %w", kind, err)
		}
		delete(w.kinds, kind)
	}
	w.done = true
	// Stale parts of this id from an earlier attempt that wrote other kinds, or had an index.
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("output: listing parts: %w", err)
	}
	written := map[string]bool{}
	for _, k := range w.order {
		written[k] = true
	}
	for _, de := range entries {
		stale := false
		if kind, id, ok := parsePartName(de.Name()); ok && id == w.partID && !written[kind] {
			stale = true
		}
		if de.Name() == indexName(w.partID) && w.plan == nil {
			stale = true
		}
		if stale {
			if err := os.Remove(filepath.Join(w.dir, de.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("output: removing a stale part: %w", err)
			}
		}
	}
	return syncDir(w.dir)
}

// Abort discards whatever was written and not committed. It is safe to call more than once and
// after Commit.
func (w *PartWriter) Abort() error {
	w.done = true
	var errs []error
	for kind, pf := range w.kinds {
		_ = pf.close(false)
		if err := os.Remove(pf.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		delete(w.kinds, kind)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("output: aborting a part: %w", err)
	}
	return nil
}

// close finishes the stream; with sync it makes it durable first. A planned part's members are
// closed by finish.
func (pf *partFile) close(sync bool) error {
	var err error
	if !pf.planned {
		err = pf.gz.Close()
	}
	if err == nil {
		err = pf.buf.Flush()
	}
	if err == nil {
		err = pf.f.Chmod(filePerm)
	}
	if err == nil && sync {
		err = pf.f.Sync()
	}
	if cerr := pf.f.Close(); err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	return err
}

// writeAtomically writes name in dir through a temp file, fsync and rename, then fsyncs dir.
// fill writes the content.
func writeAtomically(dir, name string, fill func(io.Writer) error) error {
	if err := writeRenamed(dir, name, fill); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeRenamed is writeAtomically without the fsync of dir: for several files written together,
// whose directory is synced once after the last (before anything that refers to them).
func writeRenamed(dir, name string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	buf := bufio.NewWriterSize(f, 64<<10)
	if err := fill(buf); err != nil {
		return err
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(filePerm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	ok = true
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// cleanName reports whether name is a plain file name (used when reading a manifest back).
func cleanName(name string) bool {
	return name != "" && name == path.Base(name) && name != "." && name != ".." && !strings.ContainsAny(name, `/\`)
}

// CheckWritable reports whether files can be created in dir (creating it if needed), by writing
// and removing a probe file. The error names dir and says what to fix.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("the output directory %s cannot be created: %w; fix SECURE_AGENT_OUTPUT_DIR or its permissions", dir, err)
	}
	f, err := os.CreateTemp(dir, ".secure-agent-probe-*")
	if err != nil {
		return fmt.Errorf("the output directory %s is not writable: %w; fix SECURE_AGENT_OUTPUT_DIR or its permissions", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}
