package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/secrets"
)

// Incremental modes (workflow input options.incremental).
const (
	// IncrementalAuto reuses, from the last finished incremental run of the same source, the
	// output of every schema whose fingerprint has not changed, and reports what changed.
	IncrementalAuto = "auto"
	// IncrementalFull extracts everything and records the run as the base of later auto runs:
	// how a full run is forced.
	IncrementalFull = "full"
)

// Incremental is a run's incremental extraction: its mode and what makes two runs comparable
// (the state key is derived from these, the lease's literal fields and the agent's build).
type Incremental struct {
	Mode    string             `json:"mode"`
	Source  string             `json:"source,omitempty"`
	Filters connectors.Filters `json:"filters,omitzero"`
	// Key and Previous are what Preflight found: the key of the source's state, and the earlier
	// run to compare with and reuse from (nil for the first run of a source, and in full mode).
	Key      string         `json:"key,omitempty"`
	Previous *output.RunRef `json:"previous,omitempty"`
}

// stateKeyVersion changes whenever what a fingerprint or a segment holds changes in a way the
// build id would not show (it is part of every key).
const stateKeyVersion = 1

// stateKey is the hex digest naming the state of runs comparable with this one: same connector,
// source label, filters and output prefix, same literal connection fields (which decide names
// in the output, such as the database's), and the same agent build (which decides how entities
// are written). Sensitive fields never enter it, even as literals.
func (a *Activities) stateKey(ctx context.Context, li LeaseInput, prefix string, inc *Incremental) (string, error) {
	spec, ok := connectors.Lookup(li.Connector)
	if !ok {
		return "", &secrets.Error{Kind: secrets.InvalidInput, Msg: fmt.Sprintf("connector %q is not supported", li.Connector)}
	}
	info := activity.GetInfo(ctx)
	creds, _, literals, err := a.Leases.GetWithOrigins(li.Lease.ID, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, li.Connector, sourceFields(li.Lease.Fields))
	if err != nil {
		return "", err
	}
	defer zeroCreds(creds)
	lits := map[string]string{}
	for _, f := range literals {
		if fs, ok := spec.Field(f); ok && !fs.Sensitive {
			lits[f] = creds[f].Reveal()
		}
	}
	b, err := json.Marshal(struct {
		V         int                `json:"v"`
		Connector string             `json:"connector"`
		Source    string             `json:"source"`
		Prefix    string             `json:"prefix"`
		Filters   connectors.Filters `json:"filters"`
		Literals  map[string]string  `json:"literals"`
		Build     string             `json:"build"`
	}{stateKeyVersion, li.Connector, inc.Source, prefix, inc.Filters, lits, a.Build})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// previousRun finds the last finished run comparable with this one (auto mode only): one whose
// manifest is still in the output directory and indexes its schemas.
func (a *Activities) previousRun(connector, prefix, key, mode string) (*output.RunRef, error) {
	if mode != IncrementalAuto {
		return nil, nil
	}
	st, err := output.ReadState(a.OutputRoot, prefix, connector, key)
	if err != nil || st == nil {
		return nil, err
	}
	m, err := output.ReadManifest(output.RunDir(a.OutputRoot, prefix, connector, st.Run.WorkflowID, st.Run.RunID))
	if err != nil || len(m.Schemas) == 0 {
		a.logger().Warn("the last incremental run of this source is gone or has no schema index; extracting everything",
			"previousWorkflowId", st.Run.WorkflowID, "previousRunId", st.Run.RunID)
		return nil, nil
	}
	return &st.Run, nil
}

// reusePlan decides which of a batch's schemas are reused from the previous run: those whose
// fingerprint now equals the one recorded then, whose segments are still there and intact, and
// whose text holds none of this run's sensitive values (a full run would have redacted such a
// value, so reusing it would write what a full run does not; the schema is extracted again).
func reusePlan(prevDir string, fps output.Fingerprints, names []string, source string, guard *secrets.Guard) (map[string]output.Reuse, error) {
	m, err := output.ReadManifest(prevDir)
	if err != nil {
		return nil, err
	}
	prevFPs, err := output.ReadFingerprints(prevDir)
	if err != nil || prevFPs == nil {
		return nil, err
	}
	// Every line starts with the source label the agent wrote (never redacted: it is the
	// starter's text); it is left out of the search, which would otherwise tell a starter
	// whether a label it chose is one of the run's secrets.
	label := sourcePrefix(source)
	reuse := map[string]output.Reuse{}
	for _, name := range names {
		fp, was := fps[name], prevFPs[name]
		if fp == "" || fp != was {
			continue
		}
		segs, ok := m.SchemaSegments(name)
		if !ok {
			continue
		}
		errSecret := errors.New("holds a sensitive value")
		err := output.ScanSegments(prevDir, segs, func(line []byte) error {
			if _, found := guard.Find(bytes.TrimPrefix(line, label)); found {
				return errSecret
			}
			return nil
		})
		if err != nil {
			continue // changed files, or a value to redact: extract the schema again
		}
		reuse[name] = output.Reuse{RunDir: prevDir, Segments: segs}
	}
	return reuse, nil
}

// sourcePrefix is how every line written with the source label starts.
func sourcePrefix(source string) []byte {
	if source == "" {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString(`{"source":`)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as the output's encoder
	_ = enc.Encode(source)   // a string always encodes
	buf.Truncate(buf.Len() - 1)
	buf.WriteByte(',')
	return buf.Bytes()
}
