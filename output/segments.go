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
	// Units are the schemas of the part, in the order their entities are written; the first also
	// holds the Database entity, when the part has it.
	Units []string
	// Fingerprints are the units' fingerprints (see the incremental extraction in package
	// activities), recorded in the part's index; optional.
	Fingerprints map[string]string
	// Reuse maps units whose segments are copied from an earlier run's files, unchanged, instead
	// of being written. Nothing may be written for them.
	Reuse map[string]Reuse
}

// Reuse says where a unit's segments are in an earlier run.
type Reuse struct {
	// RunDir is the earlier run's directory.
	RunDir string
	// Segments are the unit's segments in RunDir's data files, by kind.
	Segments map[string]Segment
}

func (p Plan) problem() string {
	if len(p.Units) == 0 {
		return "no units"
	}
	seen := make(map[string]bool, len(p.Units))
	for _, u := range p.Units {
		if seen[u] {
			return fmt.Sprintf("schema %q is listed twice", u)
		}
		seen[u] = true
	}
	for u, r := range p.Reuse {
		if !seen[u] {
			return fmt.Sprintf("schema %q is reused but not in the part", u)
		}
		for kind, seg := range r.Segments {
			if !validName(kind) || seg.Offset < 0 || seg.Bytes <= 0 || seg.Count < 0 {
				return fmt.Sprintf("schema %q has an invalid %q segment", u, kind)
			}
		}
	}
	return ""
}

// PartIndex is a planned part's index, parts/index.<partID>.json: its units in order, with their
// segments in the part's files (offsets 0: each kind's segments follow each other).
type PartIndex struct {
	Units []UnitIndex `json:"units"`
}

// UnitIndex is one schema of a run: its fingerprint, whether its segments were reused from an
// earlier run, and its segment of each kind that has entities.
type UnitIndex struct {
	Name        string             `json:"name"`
	Fingerprint string             `json:"fingerprint,omitempty"`
	Reused      bool               `json:"reused,omitempty"`
	Segments    map[string]Segment `json:"segments"`
}

func indexName(partID string) string { return "index." + partID + ".json" }

// readIndexes reads the index of each part id, in order. ok is false when some part has none
// (it was written without a plan): the run then has no per-schema segments.
func readIndexes(runDir string, partIDs []string) (units []UnitIndex, ok bool, err error) {
	for _, id := range partIDs {
		b, err := os.ReadFile(filepath.Join(runDir, PartsDir, indexName(id)))
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("output: reading a part's index: %w", err)
		}
		var ix PartIndex
		if err := json.Unmarshal(b, &ix); err != nil {
			return nil, false, fmt.Errorf("output: part %s's index is not valid JSON: %w", id, err)
		}
		units = append(units, ix.Units...)
	}
	return units, true, nil
}

// placeSegments gives every unit's segments their offsets in the joined files, checking that the
// segments of each kind add up to the file's size: units are in file order, and each kind's
// segments follow each other.
func placeSegments(units []UnitIndex, files []File) error {
	size := map[string]int64{}
	for _, f := range files {
		size[f.Entity] = f.Bytes
	}
	offset := map[string]int64{}
	for i := range units {
		for kind, seg := range units[i].Segments {
			seg.Offset = offset[kind]
			offset[kind] += seg.Bytes
			units[i].Segments[kind] = seg
		}
	}
	for kind, end := range offset {
		if end != size[kind] {
			return fmt.Errorf("output: the parts' indexes give %s %d bytes, the joined file has %d", kind, end, size[kind])
		}
	}
	for _, f := range files {
		if _, indexed := offset[f.Entity]; !indexed && f.Count > 0 {
			return fmt.Errorf("output: %s has %d entities that no part's index accounts for", f.Entity, f.Count)
		}
	}
	return nil
}

// SchemaIndex is a run's manifest entry for one schema: its segments in the data files, and
// whether they were reused from the previous run.
type SchemaIndex struct {
	Name     string             `json:"name"`
	Reused   bool               `json:"reused,omitempty"`
	Segments map[string]Segment `json:"segments"`
}

func schemaIndexes(units []UnitIndex) []SchemaIndex {
	out := make([]SchemaIndex, len(units))
	for i, u := range units {
		out[i] = SchemaIndex{Name: u.Name, Reused: u.Reused, Segments: u.Segments}
	}
	return out
}

// SchemaSegments returns the named schema's segments in m's files, and whether m has them.
func (m *Manifest) SchemaSegments(name string) (map[string]Segment, bool) {
	i := slices.IndexFunc(m.Schemas, func(s SchemaIndex) bool { return s.Name == name })
	if i < 0 {
		return nil, false
	}
	return m.Schemas[i].Segments, true
}
