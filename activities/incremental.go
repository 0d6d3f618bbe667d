package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

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
	// Reused are the schemas Preflight found unchanged since Previous, sorted: no batch extracts
	// them, Finalize copies their output from Previous.
	Reused []string `json:"reused,omitempty"`
	// ValuesChanged, set for Finalize, says that the run resolved its secrets again (a lost
	// worker, a rotation): its output may have been redacted with other values than its last.
	ValuesChanged bool `json:"valuesChanged,omitempty"`
}

// cleanRuns remembers, in this process only, the runs this worker finalized and the digest of
// the sensitive values their output was redacted against (secrets.Guard.Digest, under a random
// key made at start and never written anywhere). A run whose values have the same digest as
// the previous run's need not search the output it reuses: it holds none of them.
type cleanRuns struct {
	once sync.Once
	key  []byte
	mu   sync.Mutex
	runs map[output.RunRef][]byte
}

// maxCleanRuns bounds what cleanRuns keeps; the oldest entry goes first.
const maxCleanRuns = 1024

func (c *cleanRuns) init() {
	c.once.Do(func() {
		c.key = make([]byte, 32)
		if _, err := rand.Read(c.key); err != nil {
			panic("crypto/rand failed: " + err.Error()) // never, on supported systems
		}
		c.runs = map[output.RunRef][]byte{}
	})
}

// remember records run as finalized with guard's values.
func (c *cleanRuns) remember(run output.RunRef, guard *secrets.Guard) {
	c.init()
	d := guard.Digest(c.key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.runs) >= maxCleanRuns {
		for k := range c.runs { // any one: the map is a bound, not a cache policy
			delete(c.runs, k)
			break
		}
	}
	c.runs[run] = d
}

// same reports whether run was finalized by this process with guard's values.
func (c *cleanRuns) same(run output.RunRef, guard *secrets.Guard) bool {
	c.init()
	d := guard.Digest(c.key)
	c.mu.Lock()
	defer c.mu.Unlock()
	was, ok := c.runs[run]
	return ok && hmac.Equal(was, d)
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

// previousOutput is the earlier run an incremental run compares with: its id, its directory on
// this worker's disk, and its manifest, read once.
type previousOutput struct {
	ref      output.RunRef
	dir      string
	manifest *output.Manifest
}

// previousRun finds the last finished run comparable with this one (auto mode only): one whose
// manifest is still in the output directory and indexes its schemas.
func (a *Activities) previousRun(connector, prefix, key, mode string) (*previousOutput, error) {
	if mode != IncrementalAuto {
		return nil, nil
	}
	st, err := output.ReadState(a.OutputRoot, prefix, connector, key)
	if err != nil || st == nil {
		return nil, err
	}
	dir := output.RunDir(a.OutputRoot, prefix, connector, st.Run.WorkflowID, st.Run.RunID)
	m, err := output.ReadManifest(dir)
	if err != nil || len(m.Schemas) == 0 {
		a.logger().Warn("the last incremental run of this source is gone or has no schema index; extracting everything",
			"previousWorkflowId", st.Run.WorkflowID, "previousRunId", st.Run.RunID)
		return nil, nil
	}
	return &previousOutput{ref: st.Run, dir: dir, manifest: m}, nil
}

// incrementalPreflight decides which of the run's schemas are reused from the previous run
// (reusedSchemas) and, when exactly one is not and it was small, returns it as the batch
// Preflight extracts itself.
func (a *Activities) incrementalPreflight(ctx context.Context, src connectors.Source, in PreflightInput, schemas []string, prev *previousOutput) (reused []string, inline []Schema, err error) {
	reused, m, err := a.reusedSchemas(ctx, src, in, schemas, prev)
	if err != nil || m == nil || len(reused) != len(schemas)-1 {
		return reused, nil, err
	}
	// One schema changed. When it was small in the previous run, Preflight extracts it itself.
	for i, s := range schemas {
		if slices.Contains(reused, s) {
			continue
		}
		if segs, ok := m.SchemaSegments(s); ok && segs[connectors.KindTables].Count <= MaxInlineTables {
			inline = []Schema{{Index: i, Name: s}}
		}
	}
	return reused, inline, nil
}

// MaxInlineTables bounds the schema Preflight extracts itself when it is an incremental run's
// only change: at most this many tables and views in the previous run (Preflight has a
// 2-minute limit and no heartbeat; a larger schema goes to a batch of its own).
const MaxInlineTables = 1000

// reusedSchemas takes the fingerprints of the run's schemas (when the connector has a
// Fingerprinter), stages them in the run's directory, and returns the schemas reused from the
// previous run, and its manifest (nil when there is none to compare with): those whose
// fingerprint equals the one recorded then and whose output is still there, intact, and holds
// none of this run's sensitive values (a full run would have redacted such a value, so reusing
// it would write what a full run does not: the schema is extracted again).
func (a *Activities) reusedSchemas(ctx context.Context, src connectors.Source, in PreflightInput, schemas []string, prev *previousOutput) ([]string, *output.Manifest, error) {
	fp, ok := src.(connectors.Fingerprinter)
	if !ok || len(schemas) == 0 {
		return nil, nil, nil
	}
	// The previous run's fingerprints, and the connector's state.
	var m *output.Manifest
	var was *output.Fingerprints
	var prevDir string
	if prev != nil {
		m, prevDir = prev.manifest, prev.dir
		was, _ = output.ReadFingerprints(prevDir)
	}
	var state []byte
	if was != nil {
		state = was.State
	}
	fps, next, err := fp.Fingerprints(ctx, schemas, in.Filters, state)
	if err != nil {
		return nil, nil, err
	}
	dir := a.runDir(ctx, in.Connector, in.OutputPrefix)
	if err := output.StageFingerprints(dir, output.Fingerprints{Schemas: fps, State: next}); err != nil {
		return nil, nil, appError(err, true)
	}
	if was == nil {
		return nil, nil, nil // no previous run, or it is gone: extract everything
	}
	var candidates []string
	for _, s := range schemas {
		if _, indexed := m.SchemaSegments(s); indexed && fps[s] != "" && fps[s] == was.Schemas[s] {
			candidates = append(candidates, s)
		}
	}
	info := activity.GetInfo(ctx)
	guard := a.Leases.Guard(info.WorkflowExecution.ID, info.WorkflowExecution.RunID)
	defer guard.Zero()
	if a.clean.same(prev.ref, guard) {
		// This process finalized the previous run with the same sensitive values as this run's,
		// and its output held none of them: nothing to look for.
		return candidates, m, nil
	}
	label := sourcePrefix(in.Incremental.Source)
	keep := make([]bool, len(candidates))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, s := range candidates {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			segs, _ := m.SchemaSegments(s)
			keep[i] = reusable(prevDir, segs, label, guard)
		}()
	}
	wg.Wait()
	var reused []string
	for i, s := range candidates {
		if keep[i] {
			reused = append(reused, s)
		}
	}
	return reused, m, nil
}

// reusable reports whether a schema's segments in an earlier run are intact (each segment
// decompresses to its recorded count of lines) and hold none of the guard's values. Every line
// starts with the source label the agent wrote (never redacted: it is the starter's own text);
// it is left out of the search, which would otherwise tell a starter whether a label it chose is
// one of the run's secrets.
func reusable(prevDir string, segs map[string]output.Segment, label []byte, guard *secrets.Guard) bool {
	errSecret := errors.New("holds a sensitive value")
	err := output.ScanSegments(prevDir, segs, func(line []byte) error {
		if _, found := guard.Find(bytes.TrimPrefix(line, label)); found {
			return errSecret
		}
		return nil
	})
	return err == nil
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
