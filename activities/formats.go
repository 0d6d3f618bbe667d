package activities

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/output/catalog"
	"github.com/secure-agent/secure-agent/output/datahub"
	"github.com/secure-agent/secure-agent/output/openlineage"
	"github.com/secure-agent/secure-agent/secrets"
)

// Producer is the OpenLineage producer URI of the agent's events: the project, and the build
// that wrote them when it is known.
func (a *Activities) producer() string {
	p := "https://github.com/secure-agent/secure-agent"
	if a.Build != "" {
		p += "/tree/" + url.PathEscape(a.Build)
	}
	return p
}

// catalogFormats returns Finalize's hook (output.ManifestMeta.Formats) that writes the run's
// catalog in the formats the input asked for, from the run's data files once they are complete.
//
// Every entity those files hold was redacted as it was written, but a format composes new text
// from several names (a dataset's qualified name "db.schema.table", a URN), which could spell one
// of the run's secrets that no single name holds. So each record (an event, a proposal) is
// searched again for the run's sensitive values, and a record holding one has every string in
// it redacted. The source label is left out of the search and of the redaction: it is the
// starter's own text, and redacting it would tell the starter whether a label it chose is one of
// the run's secrets (as for entities).
func (a *Activities) catalogFormats(connector string, formats []string, guard *secrets.Guard) func(string, []output.File, time.Time) ([]output.File, error) {
	return func(runDir string, files []output.File, finished time.Time) ([]output.File, error) {
		c, err := catalog.FromFiles(connector, runDir, files)
		if err != nil {
			return nil, err
		}
		g := newFormatGuard(guard, c.Source)
		var out []output.File
		for _, format := range formats {
			var buf bytes.Buffer
			var name string
			var write func(w io.Writer, b []byte) (int64, error)
			switch format {
			case output.FormatOpenLineage:
				events, err := openlineage.DatasetEvents(c, openlineage.Options{Producer: a.producer(), EventTime: finished})
				if err != nil {
					return nil, err
				}
				if err := openlineage.WriteJSONL(&buf, events); err != nil {
					return nil, err
				}
				name, write = output.OpenLineageName, g.writeLines
			case output.FormatDataHub:
				proposals, err := datahub.Proposals(c, datahub.Options{})
				if err != nil {
					return nil, fmt.Errorf("datahub: %w", err)
				}
				if err := datahub.WriteFile(&buf, proposals); err != nil {
					return nil, fmt.Errorf("datahub: %w", err)
				}
				name, write = output.DataHubName, g.writeArray
			default:
				return nil, &secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("output.formats: %q is not a format the agent writes: use %s", format, strings.Join(output.Formats, " or "))}
			}
			f, err := output.WriteFormatFile(runDir, name, format, func(w io.Writer) (int64, error) { return write(w, buf.Bytes()) })
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		return out, nil
	}
}

// formatGuard redacts the records of a format that hold one of the run's sensitive values
// outside the source label.
type formatGuard struct {
	guard *secrets.Guard
	label string
	// labelForms are the ways the label can be spelled in a record: as given, JSON-escaped, and
	// percent-encoded (in a URI), one per line.
	labelForms []byte
}

func newFormatGuard(guard *secrets.Guard, label string) formatGuard {
	g := formatGuard{guard: guard, label: label}
	if label != "" {
		j, _ := json.Marshal(label) // a string always encodes
		forms := []string{label, string(j[1 : len(j)-1]), url.PathEscape(label), url.QueryEscape(label)}
		g.labelForms = []byte(strings.Join(forms, "\n"))
	}
	return g
}

// record returns one record as it may be written: itself, or with every string in it redacted
// when it holds a sensitive value outside the label.
func (g formatGuard) record(rec []byte) ([]byte, error) {
	if _, found := g.guard.FindExcept(rec, g.labelForms); !found {
		return rec, nil
	}
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v = g.redactStrings(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// redactStrings redacts every string (and object key) in a decoded JSON value, except the
// label's occurrences in them.
func (g formatGuard) redactStrings(v any) any {
	switch x := v.(type) {
	case string:
		return g.redact(x)
	case []any:
		for i := range x {
			x[i] = g.redactStrings(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[g.redact(k)] = g.redactStrings(val)
		}
		return out
	}
	return v
}

func (g formatGuard) redact(s string) string {
	if g.label == "" {
		r, _ := g.guard.Redact(s)
		return r
	}
	parts := strings.Split(s, g.label)
	for i, p := range parts {
		parts[i], _ = g.guard.Redact(p)
	}
	return strings.Join(parts, g.label)
}

// writeLines writes JSON Lines records, each checked, and returns how many it wrote.
func (g formatGuard) writeLines(w io.Writer, b []byte) (int64, error) {
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		rec, err := g.record(sc.Bytes())
		if err != nil {
			return n, err
		}
		if _, err := w.Write(append(rec, '\n')); err != nil {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}

// writeArray writes a JSON array of records, each checked, as datahub.WriteFile lays it out (a
// record that is not redacted keeps its bytes), and returns how many it wrote.
func (g formatGuard) writeArray(w io.Writer, b []byte) (int64, error) {
	var recs []json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil {
		return 0, err
	}
	var out bytes.Buffer
	out.WriteString("[")
	for i, r := range recs {
		rec, err := g.record(r)
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(rec, r) {
			var indented bytes.Buffer
			if err := json.Indent(&indented, rec, "", "    "); err != nil {
				return 0, err
			}
			rec = indented.Bytes()
		}
		if i > 0 {
			out.WriteString(",")
		}
		out.WriteString("\n")
		out.Write(rec)
	}
	if len(recs) > 0 {
		out.WriteString("\n")
	}
	out.WriteString("]\n")
	_, err := w.Write(out.Bytes())
	return int64(len(recs)), err
}
