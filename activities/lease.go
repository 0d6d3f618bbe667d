package activities

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// Lease is the scoped credential a workflow holds between ResolveSecrets and ReleaseCredentials.
// It names where the plaintext is kept (one worker's task queue) and for whom, never the values.
// It is recorded in workflow history.
type Lease struct {
	// ID identifies the plaintext in the holding worker's lease store.
	ID string `json:"id"`
	// TaskQueue is the holding worker's own queue: activities that need the credentials run there.
	TaskQueue string `json:"taskQueue"`
	// ExpiresAt is when the worker drops the plaintext even if nobody releases it.
	ExpiresAt time.Time `json:"expiresAt"`
	// Fields are the connection fields the lease holds.
	Fields []string `json:"fields"`
	// Versions are the secret versions that were read.
	Versions []secrets.SecretVersion `json:"versions,omitempty"`
}

// leaseEntry is what the worker keeps for one lease.
type leaseEntry struct {
	workflowID, runID string
	creds             connectors.Credentials
	// origins names, per field, the secret its value came from ("" for a literal). Kept on the
	// worker, not in the Lease, so destination policy never trusts workflow history.
	origins map[string]string
	expires time.Time
}

// LeaseStore keeps resolved plaintext in this worker's memory, bound to one workflow run and a
// TTL. It never persists and never hands values to anyone but a caller from the same run.
type LeaseStore struct {
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	leases map[string]*leaseEntry
}

// NewLeaseStore returns a store whose leases live for ttl after their last use.
func NewLeaseStore(ttl time.Duration, now func() time.Time) *LeaseStore {
	if now == nil {
		now = time.Now
	}
	return &LeaseStore{ttl: ttl, now: now, leases: make(map[string]*leaseEntry)}
}

// Put stores creds for the run, with the secret each field came from (origins; nil for none),
// and returns the new lease id and its expiry. The store takes ownership of creds and zeroes them
// on release or expiry.
func (s *LeaseStore) Put(workflowID, runID string, creds connectors.Credentials, origins map[string]string) (string, time.Time) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	exp := s.now().Add(s.ttl)
	s.leases[id] = &leaseEntry{workflowID: workflowID, runID: runID, creds: creds, origins: origins, expires: exp}
	return id, exp
}

// Get returns a copy of the credentials for the named fields, checking that the caller is the
// run the lease was issued to. Using a lease extends its life by the TTL. The caller must zero
// the copy.
func (s *LeaseStore) Get(id, workflowID, runID string, fields []string) (connectors.Credentials, error) {
	creds, _, err := s.GetWithOrigins(id, workflowID, runID, fields)
	return creds, err
}

// GetWithOrigins is Get, plus the distinct secrets (sorted) the returned fields came from.
func (s *LeaseStore) GetWithOrigins(id, workflowID, runID string, fields []string) (connectors.Credentials, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	e, ok := s.leases[id]
	if !ok {
		return nil, nil, &secrets.Error{Kind: secrets.LeaseNotFound,
			Msg: "this worker holds no such credential lease (expired, released, or the worker restarted); the workflow resolves the secrets again"}
	}
	if e.workflowID != workflowID || e.runID != runID {
		return nil, nil, &secrets.Error{Kind: secrets.LeaseScopeMismatch,
			Msg: "the credential lease belongs to another workflow run and cannot be used by this one"}
	}
	out := make(connectors.Credentials, len(fields))
	var origins []string
	for _, f := range fields {
		v, ok := e.creds[f]
		if !ok {
			zeroCreds(out)
			return nil, nil, &secrets.Error{Kind: secrets.LeaseScopeMismatch, Field: f,
				Msg: "the credential lease does not cover this field"}
		}
		out[f] = slices.Clone(v)
		if o := e.origins[f]; o != "" && !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	slices.Sort(origins)
	e.expires = s.now().Add(s.ttl)
	return out, origins, nil
}

// Release zeroes and drops a lease. Releasing an unknown lease is not an error (it may have
// expired); releasing another run's lease is LeaseScopeMismatch.
func (s *LeaseStore) Release(id, workflowID, runID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.leases[id]
	if !ok {
		return nil
	}
	if e.workflowID != workflowID || e.runID != runID {
		return &secrets.Error{Kind: secrets.LeaseScopeMismatch,
			Msg: "the credential lease belongs to another workflow run and cannot be released by this one"}
	}
	zeroCreds(e.creds)
	delete(s.leases, id)
	return nil
}

// Holds reports whether the store holds lease id for the given run. It does not extend the
// lease and reads no credential.
func (s *LeaseStore) Holds(id, workflowID, runID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	e, ok := s.leases[id]
	return ok && e.workflowID == workflowID && e.runID == runID
}

// Active returns the number of live leases.
func (s *LeaseStore) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	return len(s.leases)
}

// Sweep zeroes and drops expired leases. The worker calls it periodically; every other method
// sweeps too.
func (s *LeaseStore) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
}

// Close zeroes and drops every lease (worker shutdown).
func (s *LeaseStore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.leases {
		zeroCreds(e.creds)
		delete(s.leases, id)
	}
}

func (s *LeaseStore) sweepLocked() {
	now := s.now()
	for id, e := range s.leases {
		if !now.Before(e.expires) {
			zeroCreds(e.creds)
			delete(s.leases, id)
		}
	}
}

func zeroCreds(c connectors.Credentials) {
	for k, v := range c {
		v.Zero()
		delete(c, k)
	}
}
