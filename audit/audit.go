// Package audit writes the agent's audit trail: one JSON line per secret access and per policy
// denial, naming the workflow run, the activity, the store, the secret and the key names used,
// the version read and the outcome. Never a value: events are built from identifiers only, and
// the package has no field that could hold one.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event kinds.
const (
	// SecretRead: a secret was read (Outcome "ok") or reading it failed (Outcome is the kind).
	SecretRead = "secret.read"
	// PolicyDenied: agent policy refused a store, a secret or a destination.
	PolicyDenied = "policy.denied"
	// LeakPrevented: a step's result, error or heartbeat held the value of a sensitive field
	// and the worker withheld it (Fields names the field).
	LeakPrevented = "leak.prevented"
	// OutputRedacted: extracted text held values of the run's sensitive fields, replaced by
	// [REDACTED] before it was written (Count says how many; Fields which fields).
	OutputRedacted = "output.redacted"
	// LeaseEnded: the worker dropped a lease its run did not release, because the run was
	// closed (Reason says how it was found) or the lease expired.
	LeaseEnded = "lease.ended"
	// CredentialsRevoked: dynamic credentials a store made for a run (Vault's database secrets
	// engine) were revoked when the run's lease ended (Reason says why the lease ended; Outcome
	// is "ok" or the error kind). LeaseID names the store's lease, never the credentials.
	CredentialsRevoked = "credentials.revoked"
)

// Event is one audit record.
type Event struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	WorkflowID string    `json:"workflowId,omitempty"`
	RunID      string    `json:"runId,omitempty"`
	Activity   string    `json:"activity,omitempty"`
	Store      string    `json:"store,omitempty"`
	// Secret is the secret's path as the input names it (with @version or #stage if given).
	Secret string `json:"secret,omitempty"`
	// Keys are the keys of a JSON-object secret the run used; Fields the connection fields that
	// took them.
	Keys   []string `json:"keys,omitempty"`
	Fields []string `json:"fields,omitempty"`
	// Version is the version id the store reported.
	Version string `json:"version,omitempty"`
	// LeaseID is the store's lease id of dynamic credentials (not secret).
	LeaseID string `json:"leaseId,omitempty"`
	// Outcome is "ok" or the error kind (SecretNotFound, PolicyDenied, ...).
	Outcome string `json:"outcome"`
	// Reason says why a denial happened (the policy rule), or what failed.
	Reason string `json:"reason,omitempty"`
	// Count is how many values an output.redacted event replaced.
	Count int `json:"count,omitempty"`
}

// Log is an audit sink, safe for concurrent use. The zero value and nil discard.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	now    func() time.Time
}

// Open returns the sink named by dest: "stdout", "stderr", "off", or the path of a file that is
// appended to (created 0600).
func Open(dest string) (*Log, error) {
	switch dest {
	case "", "stdout":
		return New(os.Stdout), nil
	case "stderr":
		return New(os.Stderr), nil
	case "off":
		return nil, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit file (SECURE_AGENT_AUDIT): %w", err)
	}
	l := New(f)
	l.closer = f
	return l, nil
}

// New returns a sink writing JSON lines to w.
func New(w io.Writer) *Log { return &Log{w: w, now: time.Now} }

// Record writes one event, stamping its time if unset. A failing sink never fails the agent's
// work; the error is returned for the caller to log.
func (l *Log) Record(e Event) error {
	if l == nil || l.w == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(append(line, '\n'))
	return err
}

// Close closes a file sink.
func (l *Log) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}
