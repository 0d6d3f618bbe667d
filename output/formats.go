package output

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// Catalog formats a run can also be written in (output.formats in the workflow input), and the
// file each is written to in the run directory.
const (
	FormatOpenLineage = "openlineage"
	FormatDataHub     = "datahub"

	OpenLineageName = "openlineage.jsonl"
	DataHubName     = "datahub.json"
)

// Formats are the catalog formats, in the order a run writes them.
var Formats = []string{FormatOpenLineage, FormatDataHub}

// WriteFormatFile writes one format file of a run atomically (a temporary file renamed, then
// the directory synced) and describes it for the manifest: fill writes the content and returns
// how many records (events, proposals) it holds.
func WriteFormatFile(runDir, name, format string, fill func(w io.Writer) (records int64, err error)) (File, error) {
	if !cleanName(name) {
		return File{}, fmt.Errorf("output: invalid format file name %q", name)
	}
	f := File{Name: name, Entity: format}
	h := sha256.New()
	err := writeAtomically(runDir, name, func(w io.Writer) error {
		cw := &countingWriter{w: io.MultiWriter(w, h)}
		n, err := fill(cw)
		f.Count, f.Bytes = n, cw.n
		return err
	})
	if err != nil {
		return File{}, fmt.Errorf("output: writing %s: %w", name, err)
	}
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	return f, nil
}
