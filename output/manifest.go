package output

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// FormatVersion is the version of the run directory layout and manifest. It changes only when a
// reader would misread a newer run.
const FormatVersion = 1

// ManifestMeta is what Finalize records about a run besides its files. Nothing in it may be a
// secret: Identity is the connector's non-secret description of the source
// (PreflightReport.Identity).
type ManifestMeta struct {
	Connector     string    `json:"connector"`
	WorkflowID    string    `json:"workflowId"`
	RunID         string    `json:"runId"`
	Identity      string    `json:"identity,omitempty"`
	ServerVersion string    `json:"serverVersion,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	// FinishedAt is when extraction ended; zero means "now", read when Finalize runs.
	FinishedAt time.Time `json:"finishedAt"`
	// Kinds lists entity kinds that get a file even when no entity of theirs was written (an
	// empty, valid gzip file). Optional.
	Kinds []string `json:"kinds,omitempty"`
	// Unsupported lists the entity kinds the connector cannot extract: no file, and a reader
	// knows their absence is not an omission. Optional.
	Unsupported []string `json:"unsupported,omitempty"`
	// Reuse, for an incremental run that found an earlier run of its source: the schemas to copy
	// from it, and the run the manifest reports the changes against (Changes). Optional.
	Reuse *Reuse `json:"-"`
	// Redact, when set, is applied to every catalog name Finalize itself writes (the schemas'
	// index and the changes in the manifest, removed.jsonl.gz): the run's redaction of entities,
	// for the names that do not pass through it. Optional.
	Redact func(string) string `json:"-"`
	// Formats, when set, writes the run's catalog in other formats (OpenLineage, DataHub) once
	// its data files are complete and before the manifest: given the run directory, the data
	// files and the finish time, it writes its files in the run directory and returns them,
	// listed in the manifest's formats. Optional.
	Formats func(runDir string, files []File, finished time.Time) ([]File, error) `json:"-"`
}

// Manifest describes a finalized run. It is written to manifest.json, last.
type Manifest struct {
	FormatVersion int       `json:"formatVersion"`
	Connector     string    `json:"connector"`
	WorkflowID    string    `json:"workflowId"`
	RunID         string    `json:"runId"`
	Identity      string    `json:"identity,omitempty"` // the source, without secrets
	ServerVersion string    `json:"serverVersion,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	// Files are the data files, sorted by name.
	Files []File `json:"files"`
	// Counts is the number of entities per kind.
	Counts map[string]int64 `json:"counts"`
	// UnsupportedKinds are the entity kinds the connector cannot extract (a SQLite database has
	// no sequences or routines): they have no file, and their absence is not an omission.
	UnsupportedKinds []string `json:"unsupportedKinds,omitempty"`
	// Schemas are the run's schemas in file order, each with its segment of each data file (one
	// gzip member per schema and kind), and whether it was reused from the previous run.
	// Absent in runs written without per-schema segments.
	Schemas []SchemaIndex `json:"schemas,omitempty"`
	// Changes, for an incremental run, compares it with the previous run of its source.
	Changes *Changes `json:"changes,omitempty"`
	// Formats are the files holding the run's catalog in the formats the input asked for
	// (output.formats), with Entity naming the format ("openlineage", "datahub") and Count its
	// records (events, proposals).
	Formats []File `json:"formats,omitempty"`
}

// File is one data file of a run.
type File struct {
	Name   string `json:"name"`   // "<kind>.jsonl.gz", relative to the run directory
	Entity string `json:"entity"` // the entity kind, such as "tables"
	Count  int64  `json:"count"`  // JSON lines (entities) in the file
	Bytes  int64  `json:"bytes"`  // size of the (compressed) file
	SHA256 string `json:"sha256"` // hex SHA-256 of the file as stored
}

// Finalize completes the run in runDir: for each entity kind it concatenates the committed parts
// in part-id order into <kind>.jsonl.gz (written atomically; gzip members concatenate into one
// valid gzip file), counting entities, bytes and the SHA-256 of each file; then it writes
// manifest.json atomically, last, and removes parts/.
//
// It is idempotent. Until manifest.json exists the parts are all still there, so running it again
// after a crash rebuilds the same files. Once manifest.json exists the run is sealed: Finalize
// checks that the files it lists are present with their sizes, removes what is left of parts/, and
// returns the recorded manifest (meta is then ignored).
func Finalize(runDir string, meta ManifestMeta) (*Manifest, error) {
	if m, err := ReadManifest(runDir); err == nil {
		if err := checkFiles(runDir, m); err != nil {
			return nil, err
		}
		if err := cleanup(runDir); err != nil {
			return nil, err
		}
		return m, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}

	for _, k := range slices.Concat(meta.Kinds, meta.Unsupported) {
		if !validName(k) {
			return nil, fmt.Errorf("output: entity kind %q must be 1 to 100 ASCII letters, digits, '_' or '-'", k)
		}
	}
	if err := os.MkdirAll(runDir, dirPerm); err != nil {
		return nil, fmt.Errorf("output: creating the run directory: %w", err)
	}
	parts, err := committedParts(runDir)
	if err != nil {
		return nil, err
	}
	ids, err := partIDs(runDir)
	if err != nil {
		return nil, err
	}
	units, segmented, err := partUnits(runDir, ids)
	if err != nil {
		return nil, err
	}
	// The previous run's manifest, read once: for the segments reused from it and for the
	// changes reported against it (left out when it is gone and nothing is reused).
	var prev *Manifest
	if meta.Reuse != nil {
		prev, _ = ReadManifest(meta.Reuse.PreviousDir)
	}
	reused, err := reusedUnits(meta.Reuse, prev)
	if err != nil {
		return nil, err
	}
	if len(reused) > 0 && !segmented && len(ids) > 0 {
		return nil, fmt.Errorf("output: the run reuses schemas, but some of its parts have no index")
	}
	segmented = (segmented || len(ids) == 0) && len(units)+len(reused) > 0
	units = append(units, reused...)
	for _, k := range meta.Kinds {
		if _, ok := parts[k]; !ok {
			parts[k] = nil
		}
	}
	for _, u := range units {
		for k := range u.pieces {
			if _, ok := parts[k]; !ok {
				parts[k] = nil
			}
		}
	}
	kinds := make([]string, 0, len(parts))
	for k := range parts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)

	finished := meta.FinishedAt
	if finished.IsZero() {
		finished = time.Now().UTC()
	}
	m := &Manifest{
		FormatVersion:    FormatVersion,
		Connector:        meta.Connector,
		WorkflowID:       meta.WorkflowID,
		RunID:            meta.RunID,
		Identity:         meta.Identity,
		ServerVersion:    meta.ServerVersion,
		StartedAt:        meta.StartedAt,
		FinishedAt:       finished,
		Files:            []File{},
		Counts:           map[string]int64{},
		UnsupportedKinds: meta.Unsupported,
	}
	var files []File
	var index []SchemaIndex
	if segmented {
		files, index, err = joinSegments(runDir, kinds, units)
	} else {
		files, err = joinAll(runDir, kinds, parts)
	}
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		m.Files = append(m.Files, f)
		m.Counts[f.Entity] = f.Count
	}
	if segmented {
		m.Schemas = redactedIndex(index, meta.Redact)
		if err := keepFingerprints(runDir, index, meta.Redact); err != nil {
			return nil, err
		}
		if r := meta.Reuse; r != nil && prev != nil {
			if m.Changes, err = changes(runDir, index, r.PreviousDir, prev, r.Previous, meta.Redact); err != nil {
				return nil, err
			}
		}
	}
	if meta.Formats != nil {
		if m.Formats, err = meta.Formats(runDir, m.Files, finished); err != nil {
			return nil, err
		}
	}
	err = writeAtomically(runDir, ManifestName, func(w io.Writer) error {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("output: writing the manifest: %w", err)
	}
	if err := cleanup(runDir); err != nil {
		return nil, err
	}
	return m, nil
}

// redactedIndex is index with its schema names passed through redact (a copy; index is not
// changed), or index itself without redact.
func redactedIndex(index []SchemaIndex, redact func(string) string) []SchemaIndex {
	if redact == nil {
		return index
	}
	out := make([]SchemaIndex, len(index))
	for i, s := range index {
		s.Name = redact(s.Name)
		out[i] = s
	}
	return out
}

// partIDs lists the ids of the parts that have an index or a data file, sorted.
func partIDs(runDir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(runDir, PartsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output: listing parts: %w", err)
	}
	seen := map[string]bool{}
	for _, de := range entries {
		name := de.Name()
		if _, id, ok := parsePartName(name); ok {
			seen[id] = true
		} else if id, ok := strings.CutPrefix(name, "index."); ok {
			if id, ok := strings.CutSuffix(id, ".json"); ok && validName(id) {
				seen[id] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// ReadManifest reads runDir's manifest.json. A run without one gives an error that satisfies
// errors.Is(err, os.ErrNotExist).
func ReadManifest(runDir string) (*Manifest, error) {
	b, err := os.ReadFile(ManifestPath(runDir))
	if err != nil {
		return nil, fmt.Errorf("output: reading the manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("output: the manifest is not valid JSON: %w", err)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("output: the manifest has format version %d; this agent reads %d", m.FormatVersion, FormatVersion)
	}
	return &m, nil
}

// committedParts lists parts/ by kind, each kind's part file names sorted by part id. A missing
// parts/ means no parts.
func committedParts(runDir string) (map[string][]string, error) {
	out := map[string][]string{}
	entries, err := os.ReadDir(filepath.Join(runDir, PartsDir))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output: listing parts: %w", err)
	}
	ids := map[string][]string{}
	for _, de := range entries {
		if kind, id, ok := parsePartName(de.Name()); ok && de.Type().IsRegular() {
			ids[kind] = append(ids[kind], id)
		}
	}
	for kind, list := range ids {
		sort.Strings(list)
		for _, id := range list {
			out[kind] = append(out[kind], partName(kind, id))
		}
	}
	return out, nil
}

// joinAll runs joinParts for each kind, up to GOMAXPROCS at a time (each decompresses its parts
// to count and check them, which is CPU work), and returns the files in kinds' order. The first
// error is returned after every started join has ended.
func joinAll(runDir string, kinds []string, parts map[string][]string) ([]File, error) {
	files := make([]File, len(kinds))
	errs := make([]error, len(kinds))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			files[i], errs[i] = joinParts(runDir, kind, parts[kind])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return files, nil
}

// joinParts writes <kind>.jsonl.gz from the given parts, in order, and describes it.
func joinParts(runDir, kind string, parts []string) (File, error) {
	f := File{Name: kind + FileSuffix, Entity: kind}
	h := sha256.New()
	err := writeAtomically(runDir, f.Name, func(w io.Writer) error {
		cw := &countingWriter{w: io.MultiWriter(w, h)}
		if len(parts) == 0 {
			if err := emptyGzip(cw); err != nil {
				return err
			}
		}
		for _, p := range parts {
			n, err := copyPart(cw, filepath.Join(runDir, PartsDir, p))
			if err != nil {
				return fmt.Errorf("part %s: %w", p, err)
			}
			f.Count += n
		}
		f.Bytes = cw.n
		return nil
	})
	if err != nil {
		return File{}, fmt.Errorf("output: writing %s: %w", f.Name, err)
	}
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	return f, nil
}

// emptyGzip writes an empty, valid gzip file: a kind without entities.
func emptyGzip(w io.Writer) error { return gzip.NewWriter(w).Close() }

// copyPart copies a part's bytes to w unchanged and returns its line count, read by decompressing
// the same bytes as they pass (which also checks that the part is intact gzip).
func copyPart(w io.Writer, name string) (int64, error) {
	src, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer func() { _ = src.Close() }()
	tee := io.TeeReader(bufio.NewReaderSize(src, 64<<10), w)
	zr, err := gzip.NewReader(tee)
	if err != nil {
		return 0, err
	}
	lines, err := countLines(zr)
	if err != nil {
		return 0, err
	}
	// Whatever the gzip reader did not need still belongs to the part.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return 0, err
	}
	return lines, nil
}

func countLines(r io.Reader) (int64, error) {
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// checkFiles makes sure the files a manifest lists are there with their recorded sizes.
func checkFiles(runDir string, m *Manifest) error {
	for _, f := range m.Files {
		if !cleanName(f.Name) {
			return fmt.Errorf("output: the manifest lists an invalid file name %q", f.Name)
		}
		st, err := os.Stat(filepath.Join(runDir, f.Name))
		if err != nil {
			return fmt.Errorf("output: a file the manifest lists is missing: %w", err)
		}
		if st.Size() != f.Bytes {
			return fmt.Errorf("output: %s has %d bytes, the manifest says %d", f.Name, st.Size(), f.Bytes)
		}
	}
	return nil
}

// Cleanup removes what a run directory holds besides its committed output: parts/ and the
// temporary files of an interrupted write. Safe only for a run that is no longer running.
func Cleanup(runDir string) error { return cleanup(runDir) }

// cleanup removes parts/ and temp files a crashed Finalize may have left in the run directory.
func cleanup(runDir string) error {
	if err := os.RemoveAll(filepath.Join(runDir, PartsDir)); err != nil {
		return fmt.Errorf("output: removing parts: %w", err)
	}
	entries, err := os.ReadDir(runDir)
	if err != nil {
		return fmt.Errorf("output: listing the run directory: %w", err)
	}
	for _, de := range entries {
		if n := de.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") {
			if err := os.Remove(filepath.Join(runDir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("output: removing a temp file: %w", err)
			}
		}
	}
	return syncDir(runDir)
}

// FileSHA256 returns the hex SHA-256 of a file, for checking a manifest.
func FileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// MissingParts returns, sorted, the ids of the parts in expected (part id -> the kinds it
// committed) of which some kind's file is not in runDir's parts directory: parts committed on
// another machine's disk by a worker that was lost. A run directory that already has its manifest
// misses nothing.
func MissingParts(runDir string, expected map[string][]string) ([]string, error) {
	if _, err := os.Stat(ManifestPath(runDir)); err == nil {
		return nil, nil
	}
	parts, err := committedParts(runDir)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, names := range parts {
		for _, n := range names {
			have[n] = true
		}
	}
	var missing []string
	for id, kinds := range expected {
		for _, kind := range kinds {
			if !have[partName(kind, id)] {
				missing = append(missing, id)
				break
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}
