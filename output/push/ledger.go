package push

import (
	"maps"
	"sync"
)

// Ledger is what was sent to one endpoint: each record's key and the digest of its content. It
// is safe for concurrent use.
type Ledger struct {
	mu   sync.Mutex
	sent map[string]string
}

// NewLedger returns a ledger holding sent (which it copies; nil for none).
func NewLedger(sent map[string]string) *Ledger {
	l := &Ledger{sent: map[string]string{}}
	maps.Copy(l.sent, sent)
	return l
}

// Has reports whether the record key was sent with content digest.
func (l *Ledger) Has(key, digest string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent[key] == digest
}

// Put records that key was sent with content digest.
func (l *Ledger) Put(key, digest string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[key] = digest
}

// Snapshot returns a copy of what the ledger holds.
func (l *Ledger) Snapshot() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.sent)
}
