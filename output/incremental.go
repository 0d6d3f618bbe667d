package output

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"
)

// Incremental runs keep two more things beside the output, on the agent's disk only (neither is
// published to object storage):
//
//	<root>/[<prefix>/]<connector>/%incremental/<key>.json   the state: the last run of a source
//	<run>/fingerprints.json                                  each schema's fingerprint in that run
//
// "%incremental" is a name SafeComponent never produces, so no workflow id can collide with it.
// The key is a hex digest of what makes two runs comparable (package activities: the connector,
// source label, filters, prefix, literal fields and the agent's build): never an input's text.
const (
	stateDir         = "%incremental"
	fingerprintsName = "fingerprints.json"
	// RemovedName is the file of an incremental run that lists the objects the previous run had
	// and this one does not.
	RemovedName = "removed.jsonl.gz"
)

// RunRef names a finished run.
type RunRef struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// State is the last finished incremental run of one source.
type State struct {
	Key        string    `json:"key"`
	Run        RunRef    `json:"run"`
	FinishedAt time.Time `json:"finishedAt"`
}

// validKey reports whether key can name a state file: 64 lowercase hex digits.
func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func statePath(root, prefix, connector, key string) string {
	return filepath.Join(PrefixDir(root, prefix), SafeComponent(connector), stateDir, key+".json")
}

// ReadState returns the state of key, or nil when there is none.
func ReadState(root, prefix, connector, key string) (*State, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("output: state key %q is not 64 hex digits", key)
	}
	b, err := os.ReadFile(statePath(root, prefix, connector, key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output: reading the incremental state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil || st.Key != key {
		return nil, nil // unreadable or not this key's: a full run rewrites it
	}
	return &st, nil
}

// WriteState records run as the last finished run of key, unless the state already names a run
// that finished later (another run of the same source).
func WriteState(root, prefix, connector, key string, run RunRef, finished time.Time) error {
	if !validKey(key) {
		return fmt.Errorf("output: state key %q is not 64 hex digits", key)
	}
	if cur, err := ReadState(root, prefix, connector, key); err == nil && cur != nil && cur.Run != run && cur.FinishedAt.After(finished) {
		return nil
	}
	p := statePath(root, prefix, connector, key)
	if err := os.MkdirAll(filepath.Dir(p), dirPerm); err != nil {
		return fmt.Errorf("output: creating the state directory: %w", err)
	}
	err := writeAtomically(filepath.Dir(p), filepath.Base(p), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(State{Key: key, Run: run, FinishedAt: finished})
	})
	if err != nil {
		return fmt.Errorf("output: writing the incremental state: %w", err)
	}
	return nil
}

// Fingerprints are what a run records of its schemas for the next incremental run: each
// schema's fingerprint, and the connector's state for its next fingerprints (opaque here).
type Fingerprints struct {
	Schemas map[string]string `json:"schemas"`
	State   json.RawMessage   `json:"state,omitempty"`
}

// StageFingerprints records the fingerprints of a run's schemas, taken before extraction, in its
// parts directory; Finalize keeps them beside the output (fingerprints.json) when they cover
// every schema of the run.
func StageFingerprints(runDir string, fps Fingerprints) error {
	dir := filepath.Join(runDir, PartsDir)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("output: creating the parts directory: %w", err)
	}
	err := writeAtomically(dir, fingerprintsName, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(fps)
	})
	if err != nil {
		return fmt.Errorf("output: writing the fingerprints: %w", err)
	}
	return nil
}

// keepFingerprints moves the staged fingerprints of the run's units beside the output, schema
// names passed through redact, when they cover every unit;
// otherwise the run keeps none (and the next incremental run extracts everything).
func keepFingerprints(runDir string, units []SchemaIndex, redact func(string) string) error {
	fps, err := ReadFingerprints(filepath.Join(runDir, PartsDir))
	if err != nil || fps == nil {
		return err
	}
	kept := make(map[string]string, len(units))
	for _, u := range units {
		if fps.Schemas[u.Name] == "" {
			return nil
		}
		// A name the redaction changes is kept under its redacted form, which no later run
		// looks up: that schema is always extracted again.
		name := u.Name
		if redact != nil {
			name = redact(name)
		}
		kept[name] = fps.Schemas[u.Name]
	}
	fps.Schemas = kept
	err = writeAtomically(runDir, fingerprintsName, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(fps)
	})
	if err != nil {
		return fmt.Errorf("output: writing the fingerprints: %w", err)
	}
	return nil
}

// ReadFingerprints returns the fingerprints a finished run recorded, or nil when it has none.
func ReadFingerprints(runDir string) (*Fingerprints, error) {
	b, err := os.ReadFile(filepath.Join(runDir, fingerprintsName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output: reading the fingerprints: %w", err)
	}
	var fps Fingerprints
	if err := json.Unmarshal(b, &fps); err != nil {
		return nil, nil
	}
	return &fps, nil
}

// Changes is what an incremental run reports against the previous run of its source.
type Changes struct {
	// Previous is the run compared with, and whose unchanged schemas were reused.
	Previous RunRef `json:"previous"`
	// Reused and Extracted count the schemas copied from Previous and those read from the source.
	Reused    int `json:"reusedSchemas"`
	Extracted int `json:"extractedSchemas"`
	// Added and Removed are the schemas this run has and Previous did not, and the reverse.
	Added   []string `json:"addedSchemas"`
	Removed []string `json:"removedSchemas"`
	// RemovedObjects counts the lines of removed.jsonl.gz: every object of Previous that this run
	// does not have (in a removed schema, only the schema itself).
	RemovedObjects int64 `json:"removedObjects"`
	// RemovedFile describes removed.jsonl.gz (written even when empty).
	RemovedFile File `json:"removedFile"`
}

// RemovedObject is one line of removed.jsonl.gz: an object's kind and the names that identify it
// (those its entity has: table or view, name, a routine's signature, an unnamed constraint's
// position).
type RemovedObject struct {
	Kind      string `json:"kind"`
	Schema    string `json:"schema"`
	Table     string `json:"table,omitempty"`
	View      string `json:"view,omitempty"`
	Name      string `json:"name,omitempty"`
	Signature string `json:"signature,omitempty"`
	Position  int    `json:"position,omitempty"`
}

// changes compares a finished run's schemas (units, placed) with the previous run's manifest
// and writes removed.jsonl.gz: for each schema both have and this run extracted again, the
// objects of the previous run's segments that are not in this run's.
func changes(runDir string, units []SchemaIndex, prevDir string, prev *Manifest, prevRef RunRef, redact func(string) string) (*Changes, error) {
	if redact == nil {
		redact = func(s string) string { return s }
	}
	c := &Changes{Previous: prevRef, Added: []string{}, Removed: []string{}}
	now := map[string]bool{}
	for _, u := range units {
		now[u.Name] = true
		if u.Reused {
			c.Reused++
		} else {
			c.Extracted++
		}
	}
	before := map[string]map[string]Segment{}
	for _, s := range prev.Schemas {
		before[s.Name] = s.Segments
		if !now[s.Name] {
			c.Removed = append(c.Removed, redact(s.Name))
		}
	}
	for _, u := range units {
		if _, ok := before[u.Name]; !ok {
			c.Added = append(c.Added, redact(u.Name))
		}
	}
	var removed []RemovedObject
	for _, s := range c.Removed {
		removed = append(removed, RemovedObject{Kind: "schemas", Schema: s, Name: s})
	}
	// The objects of each extracted schema's kinds that the previous run had and this one does
	// not: one comparison per schema and kind, read in parallel, kept in that order.
	type comparison struct {
		kind    string
		was, is Segment
		hasNow  bool
		removed []RemovedObject
		err     error
	}
	var todo []*comparison
	for _, u := range units {
		old, ok := before[u.Name]
		if !ok || u.Reused {
			continue
		}
		kinds := make([]string, 0, len(old))
		for k := range old {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, kind := range kinds {
			seg, hasNow := u.Segments[kind]
			todo = append(todo, &comparison{kind: kind, was: old[kind], is: seg, hasNow: hasNow})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, c := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.removed, c.err = removedObjects(runDir, prevDir, c.kind, c.was, c.is, c.hasNow)
		}()
	}
	wg.Wait()
	for _, c := range todo {
		if c.err != nil {
			return nil, c.err
		}
		removed = append(removed, c.removed...)
	}
	f := File{Name: RemovedName, Entity: "removed"}
	err := writeAtomically(runDir, RemovedName, func(w io.Writer) error {
		cw := &countingWriter{w: w}
		gz, err := gzip.NewWriterLevel(cw, CompressionLevel)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(gz)
		enc.SetEscapeHTML(false)
		for _, o := range removed {
			o.Schema, o.Table, o.View, o.Name, o.Signature = redact(o.Schema), redact(o.Table), redact(o.View), redact(o.Name), redact(o.Signature)
			if err := enc.Encode(o); err != nil {
				return err
			}
		}
		if err := gz.Close(); err != nil {
			return err
		}
		f.Bytes = cw.n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("output: writing %s: %w", RemovedName, err)
	}
	if f.SHA256, err = FileSHA256(filepath.Join(runDir, RemovedName)); err != nil {
		return nil, fmt.Errorf("output: reading %s back: %w", RemovedName, err)
	}
	f.Count = int64(len(removed))
	c.RemovedObjects = f.Count
	c.RemovedFile = f
	return c, nil
}

// removedObjects lists the objects of one kind of one schema that the previous run had (its
// segment was) and this run does not (its segment is, when hasNow), in the previous run's order.
func removedObjects(runDir, prevDir, kind string, was, is Segment, hasNow bool) ([]RemovedObject, error) {
	before, err := segmentObjects(filepath.Join(prevDir, kind+FileSuffix), kind, was)
	if err != nil {
		return nil, fmt.Errorf("output: reading the previous run's %s: %w", kind, err)
	}
	now := map[RemovedObject]bool{}
	if hasNow {
		objs, err := segmentObjects(filepath.Join(runDir, kind+FileSuffix), kind, is)
		if err != nil {
			return nil, fmt.Errorf("output: reading this run's %s: %w", kind, err)
		}
		for _, o := range objs {
			now[o] = true
		}
	}
	var removed []RemovedObject
	for _, o := range before {
		if !now[o] {
			removed = append(removed, o)
		}
	}
	return removed, nil
}

// segmentObjects reads the identifying names of the entities in one segment of a data file.
func segmentObjects(file, kind string, seg Segment) ([]RemovedObject, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(bufio.NewReader(io.NewSectionReader(f, seg.Offset, seg.Bytes)))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(zr)
	var out []RemovedObject
	for {
		var o RemovedObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		o.Kind = kind
		if kind != "constraints" {
			o.Position = 0 // a column that moved was not removed
		}
		if kind == "schemas" {
			o.Schema = o.Name
		}
		out = append(out, o)
	}
}

// ScanSegments streams the decompressed lines of a unit's segments in runDir's data files to fn,
// kind by kind in sorted order, and checks that each segment holds its recorded count of lines.
// It is how a run checks what it is about to reuse.
func ScanSegments(runDir string, segments map[string]Segment, fn func(line []byte) error) error {
	kinds := make([]string, 0, len(segments))
	for k := range segments {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		seg := segments[kind]
		if err := scanSegment(filepath.Join(runDir, kind+FileSuffix), seg, fn); err != nil {
			return fmt.Errorf("output: %s of the earlier run: %w", kind, err)
		}
	}
	return nil
}

func scanSegment(file string, seg Segment, fn func([]byte) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(bufio.NewReaderSize(io.NewSectionReader(f, seg.Offset, seg.Bytes), 64<<10))
	if err != nil {
		return err
	}
	zr.Multistream(false) // one segment is one member
	br := bufio.NewReaderSize(zr, 64<<10)
	var n int64
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			n++
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != seg.Count {
		return fmt.Errorf("the segment at %d has %d lines, the earlier run recorded %d", seg.Offset, n, seg.Count)
	}
	return nil
}
