package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Segment is where one schema's entities of one kind are in a data file: one gzip member of
// Bytes bytes at Offset, holding Count JSON lines. In a part's index Offset is 0 (Finalize
// places the segment).
type Segment struct {
	Offset int64 `json:"offset"`
	Bytes  int64 `json:"bytes"`
	Count  int64 `json:"count"`
}

// Plan cuts a part into per-schema segments (see PartWriter).
type Plan struct {
	// Units are the schemas of the part, in the order their entities are written (sorted); the
	// first also holds the Database entity, when the part has it.
	Units []string
}

func (p Plan) problem() string {
	if len(p.Units) == 0 {
		return "no units"
	}
	for i, u := range p.Units {
		if i > 0 && p.Units[i-1] >= u {
			return fmt.Sprintf("schema %q is not after %q: units must be sorted and distinct", u, p.Units[i-1])
		}
	}
	return ""
}

// Reuse is what an incremental run copies from an earlier run instead of extracting it.
type Reuse struct {
	// Previous is the earlier run, in PreviousDir.
	Previous    RunRef
	PreviousDir string
	// Schemas are the schemas whose segments are copied from the earlier run's files.
	Schemas []string
}

// ErrReuseUnavailable says that Finalize could not find what Reuse names (the earlier run is not
// on this worker's disk, or no longer has a reused schema): nothing was written, and the run
// must extract those schemas instead.
var ErrReuseUnavailable = errors.New("output: the earlier run's output to reuse is not available here")

// PartIndex is a planned part's index, parts/index.<partID>.json: its units in order, with their
// segments in the part's files (offsets 0: each kind's segments follow each other).
type PartIndex struct {
	Units []SchemaIndex `json:"units"`
}

func indexName(partID string) string { return "index." + partID + ".json" }

// readIndex reads a part's index; found is false when it has none (it was written without a
// plan).
func readIndex(runDir, partID string) (ix PartIndex, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(runDir, PartsDir, indexName(partID)))
	if errors.Is(err, os.ErrNotExist) {
		return ix, false, nil
	}
	if err != nil {
		return ix, false, fmt.Errorf("output: reading a part's index: %w", err)
	}
	if err := json.Unmarshal(b, &ix); err != nil {
		return ix, false, fmt.Errorf("output: part %s's index is not valid JSON: %w", partID, err)
	}
	return ix, true, nil
}

// SchemaIndex is one schema of a run, in a part's index and in the manifest: its segment of each
// kind that has entities (offsets 0 in a part's index, where each kind's segments follow each
// other; placed in the manifest), and whether they were reused from the previous run.
type SchemaIndex struct {
	Name     string             `json:"name"`
	Reused   bool               `json:"reused,omitempty"`
	Segments map[string]Segment `json:"segments"`
}

// SchemaSegments returns the named schema's segments in m's files, and whether m has them.
func (m *Manifest) SchemaSegments(name string) (map[string]Segment, bool) {
	i := slices.IndexFunc(m.Schemas, func(s SchemaIndex) bool { return s.Name == name })
	if i < 0 {
		return nil, false
	}
	return m.Schemas[i].Segments, true
}
