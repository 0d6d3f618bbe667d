package output

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// piece is a byte range of a file that is one segment (a whole gzip member) of a data file.
type piece struct {
	file          string
	offset, bytes int64
	count         int64
}

// unitSource is one schema of a run being finalized: where each of its segments is now (in a
// part of this run, or in an earlier run's file), and whether it is reused.
type unitSource struct {
	name   string
	reused bool
	pieces map[string]piece
}

// partUnits reads the indexes of the given parts, in order, and locates each unit's segments in
// the part files: each kind's segments follow each other from the start of the part's file of
// that kind, which must be exactly as long as they add up to. ok is false when a part has no
// index (it was written without a plan).
func partUnits(runDir string, ids []string) (units []unitSource, ok bool, err error) {
	for _, id := range ids {
		ix, found, err := readIndex(runDir, id)
		if err != nil || !found {
			return nil, false, err
		}
		offsets := map[string]int64{}
		for _, u := range ix.Units {
			src := unitSource{name: u.Name, pieces: map[string]piece{}}
			for kind, seg := range u.Segments {
				file := filepath.Join(runDir, PartsDir, partName(kind, id))
				src.pieces[kind] = piece{file: file, offset: offsets[kind], bytes: seg.Bytes, count: seg.Count}
				offsets[kind] += seg.Bytes
			}
			units = append(units, src)
		}
		for kind, end := range offsets {
			st, err := os.Stat(filepath.Join(runDir, PartsDir, partName(kind, id)))
			if err != nil {
				return nil, false, fmt.Errorf("output: part %s: %w", id, err)
			}
			if st.Size() != end {
				return nil, false, fmt.Errorf("output: part %s's %s file has %d bytes, its index %d", id, kind, st.Size(), end)
			}
		}
	}
	return units, true, nil
}

// reusedUnits locates the reused schemas' segments in the earlier run's files, whose manifest
// is prev (nil when it could not be read). A schema, run or file that is not there is
// ErrReuseUnavailable.
func reusedUnits(r *Reuse, prev *Manifest) ([]unitSource, error) {
	if r == nil || len(r.Schemas) == 0 {
		return nil, nil
	}
	if prev == nil {
		return nil, fmt.Errorf("%w: the earlier run has no readable manifest", ErrReuseUnavailable)
	}
	if err := checkFiles(r.PreviousDir, prev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReuseUnavailable, err)
	}
	var out []unitSource
	for _, name := range r.Schemas {
		segs, ok := prev.SchemaSegments(name)
		if !ok {
			return nil, fmt.Errorf("%w: the earlier run has no schema %q", ErrReuseUnavailable, name)
		}
		src := unitSource{name: name, reused: true, pieces: map[string]piece{}}
		for kind, seg := range segs {
			src.pieces[kind] = piece{file: filepath.Join(r.PreviousDir, kind+FileSuffix), offset: seg.Offset, bytes: seg.Bytes, count: seg.Count}
		}
		out = append(out, src)
	}
	return out, nil
}

// joinSegments writes <kind>.jsonl.gz for each kind from the units' segments, units in name
// order (the order a full run writes them in), all kinds at once (copying bytes and waiting for
// fsync: little CPU), syncs the run directory once, and returns the files (in kinds' order) and
// each unit's segments in them. Counts come from the indexes:
// every segment was counted as it was written (and a reused one checked line by line before
// it was chosen for reuse).
func joinSegments(runDir string, kinds []string, units []unitSource) ([]File, []SchemaIndex, error) {
	sort.Slice(units, func(i, j int) bool { return units[i].name < units[j].name })
	for i := 1; i < len(units); i++ {
		if units[i].name == units[i-1].name {
			return nil, nil, fmt.Errorf("output: schema %q is in two parts, or both extracted and reused", units[i].name)
		}
	}
	index := make([]SchemaIndex, len(units))
	for i, u := range units {
		index[i] = SchemaIndex{Name: u.name, Reused: u.reused, Segments: map[string]Segment{}}
	}
	files := make([]File, len(kinds))
	placed := make([][]Segment, len(kinds)) // per kind, per unit
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for k, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			files[k], placed[k], errs[k] = joinKind(runDir, kind, units)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if err := syncDir(runDir); err != nil {
		return nil, nil, fmt.Errorf("output: %w", err)
	}
	for k, kind := range kinds {
		for i, seg := range placed[k] {
			if seg.Bytes > 0 {
				index[i].Segments[kind] = seg
			}
		}
	}
	return files, index, nil
}

// joinKind writes one kind's file from the units' pieces of that kind, in order.
func joinKind(runDir, kind string, units []unitSource) (File, []Segment, error) {
	f := File{Name: kind + FileSuffix, Entity: kind}
	segs := make([]Segment, len(units))
	h := sha256.New()
	err := writeRenamed(runDir, f.Name, func(w io.Writer) error {
		cw := &countingWriter{w: io.MultiWriter(w, h)}
		open := map[string]*os.File{}
		defer func() {
			for _, fh := range open {
				_ = fh.Close()
			}
		}()
		// Segments that follow each other in the same file (a run of reused schemas, a part's
		// schemas) are copied as one range, through one buffer.
		buf := make([]byte, 64<<10)
		var run piece // the range not copied yet
		flush := func() error {
			if run.bytes == 0 {
				return nil
			}
			fh := open[run.file]
			if fh == nil {
				var err error
				if fh, err = os.Open(run.file); err != nil {
					return err
				}
				open[run.file] = fh
			}
			n, err := io.CopyBuffer(cw, io.NewSectionReader(fh, run.offset, run.bytes), buf)
			if err != nil {
				return err
			}
			if n != run.bytes {
				return fmt.Errorf("%s has %d of the %d bytes its index gives from offset %d", filepath.Base(run.file), n, run.bytes, run.offset)
			}
			run = piece{}
			return nil
		}
		var written int64
		for i, u := range units {
			p, ok := u.pieces[kind]
			if !ok {
				continue
			}
			if run.bytes > 0 && (p.file != run.file || p.offset != run.offset+run.bytes) {
				if err := flush(); err != nil {
					return err
				}
			}
			if run.bytes == 0 {
				run = piece{file: p.file, offset: p.offset}
			}
			run.bytes += p.bytes
			segs[i] = Segment{Offset: written, Bytes: p.bytes, Count: p.count}
			written += p.bytes
			f.Count += p.count
		}
		if err := flush(); err != nil {
			return err
		}
		if cw.n == 0 {
			if err := emptyGzip(cw); err != nil {
				return err
			}
		}
		f.Bytes = cw.n
		return nil
	})
	if err != nil {
		return File{}, nil, fmt.Errorf("output: writing %s: %w", f.Name, err)
	}
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	return f, segs, nil
}
