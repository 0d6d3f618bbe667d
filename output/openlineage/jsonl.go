package openlineage

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSONL writes events to w as JSON Lines: one compact JSON object per event, in order,
// each ending with "\n", with no HTML escaping ("<", ">" and "&" are written as themselves).
// The bytes depend on the events alone: facets are structs, written in field order, and the
// one map (columnLineage's fields) is written with its keys sorted. It returns the first error
// of encoding or of w; w may then hold some of the events.
func WriteJSONL(w io.Writer, events []DatasetEvent) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return fmt.Errorf("openlineage: writing event %d (%s): %w", i, events[i].Dataset.Name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("openlineage: writing the events: %w", err)
	}
	return nil
}
