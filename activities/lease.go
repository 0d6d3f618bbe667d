package activities

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"maps"
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
	// Unchanged, in the answer to a refresh (ResolveInput.Refresh), says that the secrets read
	// again hold what the refused lease held (or cannot be told apart from it): no lease was
	// made, and ID is empty.
	Unchanged bool `json:"unchanged,omitempty"`
}

// leaseEntry is what the worker keeps for one lease.
type leaseEntry struct {
	workflowID, runID string
	// connector is the connector the credentials were resolved for: a leased step for another
	// connector is refused, so credentials shaped for one source never reach another driver.
	connector string
	creds     connectors.Credentials
	// origins names, per field, the secret its value came from ("" for a literal). Kept on the
	// worker, not in the Lease, so destination policy never trusts workflow history.
	origins map[string]string
	// sensitive are the fields whose values the guard searches for in what leaves the worker.
	sensitive []string
	expires   time.Time
	// dynamic are credentials a store made for this lease: revoked when it ends.
	dynamic []*DynamicCreds
}

// DynamicCreds are credentials a secret store made for one lease (Vault's database secrets
// engine): the lease store renews them while the run lives and revokes them when the lease ends,
// whatever the reason (released, run closed, expired, worker shutdown, refused).
type DynamicCreds struct {
	// WorkflowID and RunID are the run the credentials were made for.
	WorkflowID, RunID string
	Store             secrets.LeasingStore
	Lease             secrets.DynamicLease
	// Secret names the secret, as the policy and the audit name it.
	Secret string
	// renewed is when the TTL was last granted.
	renewed time.Time
}

// endedLease is a lease that ended, for report: why, and the credentials to revoke.
type endedLease struct {
	reason  string
	dynamic []*DynamicCreds
}

// Reasons a lease ends, as Released reports them (and the metrics count them).
const (
	// EndReleased: the run released it (ReleaseCredentials, or Finalize for a local output).
	EndReleased = "released"
	// EndRunClosed: the worker found the run closed (completed, failed, cancelled, terminated,
	// timed out, continued as new or reset) without releasing it.
	EndRunClosed = "run_closed"
	// EndExpired: nobody used or renewed it for the TTL (the server was unreachable, say).
	EndExpired = "expired"
	// EndShutdown: the worker stopped.
	EndShutdown = "shutdown"
)

// LeaseGrant is what ResolveSecrets puts in the store: one run's credentials for one connector.
type LeaseGrant struct {
	WorkflowID, RunID string
	Connector         string
	// Creds are the resolved fields; the store takes ownership and zeroes them on release.
	Creds connectors.Credentials
	// Origins names, per field, the secret its value came from (policy's form).
	Origins map[string]string
	// Sensitive names the fields whose values must never leave the worker except to their
	// connector or sink (the guard searches results and redacts output for them).
	Sensitive []string
	// Dynamic are credentials the store made for this lease; the lease store takes them over
	// (and revokes them, also when it refuses the grant).
	Dynamic []*DynamicCreds
}

// LeaseStore keeps resolved plaintext in this worker's memory, bound to one workflow run, one
// connector and a TTL, and bounded in number. It never persists and never hands values to
// anyone but a caller from the same run.
type LeaseStore struct {
	ttl time.Duration
	max int
	now func() time.Time
	// onEnd, if set, is called (outside the lock) with the reason of every lease that ends.
	onEnd func(reason string)
	// onRevoke, if set, is told every revocation of dynamic credentials and its outcome.
	onRevoke func(d *DynamicCreds, reason string, err error)

	mu     sync.Mutex
	leases map[string]*leaseEntry
}

// DefaultMaxLeases bounds the leases one worker holds when no other bound is given.
const DefaultMaxLeases = 1024

// NewLeaseStore returns a store whose leases live for ttl after their last use or renewal, at
// most max at once (DefaultMaxLeases if max < 1).
func NewLeaseStore(ttl time.Duration, max int, now func() time.Time) *LeaseStore {
	if now == nil {
		now = time.Now
	}
	if max < 1 {
		max = DefaultMaxLeases
	}
	return &LeaseStore{ttl: ttl, max: max, now: now, leases: make(map[string]*leaseEntry)}
}

// OnEnd registers fn to be told the reason each lease ends (for metrics). Call it before use.
func (s *LeaseStore) OnEnd(fn func(reason string)) { s.onEnd = fn }

// OnRevoke registers fn to be told each revocation of dynamic credentials (for the audit). Call
// it before use.
func (s *LeaseStore) OnRevoke(fn func(d *DynamicCreds, reason string, err error)) { s.onRevoke = fn }

// EndRefused is the reason of the revocation of dynamic credentials whose grant the store
// refused (LeaseLimit) or that a failed step made and never leased.
const EndRefused = "refused"

// Put stores a grant and returns the new lease id and its expiry. The store takes ownership of
// the credentials and zeroes them on release or expiry, and also when it refuses them: a worker
// that already holds its maximum number of leases returns a LeaseLimit error (retried, so the
// run waits for a lease to end here or another replica to take it).
func (s *LeaseStore) Put(g LeaseGrant) (string, time.Time, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	ended := s.sweepLocked()
	if len(s.leases) >= s.max {
		s.mu.Unlock()
		s.report(append(ended, ended1(EndRefused, g.Dynamic)))
		zeroCreds(g.Creds)
		return "", time.Time{}, &secrets.Error{Kind: secrets.LeaseLimit,
			Msg: fmt.Sprintf("this worker already holds %d credential leases, its maximum (SECURE_AGENT_MAX_LEASES); the step is retried, here once a run ends or on another replica", s.max)}
	}
	exp := s.now().Add(s.ttl)
	for _, d := range g.Dynamic {
		d.renewed = s.now()
	}
	s.leases[id] = &leaseEntry{workflowID: g.WorkflowID, runID: g.RunID, connector: g.Connector, creds: g.Creds,
		origins: g.Origins, sensitive: slices.Clone(g.Sensitive), expires: exp, dynamic: slices.Clone(g.Dynamic)}
	s.mu.Unlock()
	s.report(ended)
	return id, exp, nil
}

// Get returns a copy of the credentials for the named fields, checking that the caller is the
// run the lease was issued to, for the connector it was issued for. Using a lease extends its
// life by the TTL. The caller must zero the copy.
func (s *LeaseStore) Get(id, workflowID, runID, connector string, fields []string) (connectors.Credentials, error) {
	creds, _, _, err := s.GetWithOrigins(id, workflowID, runID, connector, fields)
	return creds, err
}

// GetWithOrigins is Get, plus the distinct secrets (sorted) the returned fields came from, and
// the returned fields that came from no secret (literals in the input, or defaults), sorted.
func (s *LeaseStore) GetWithOrigins(id, workflowID, runID, connector string, fields []string) (creds connectors.Credentials, origins, literals []string, err error) {
	s.mu.Lock()
	ended := s.sweepLocked()
	defer func() { s.report(ended) }()
	defer s.mu.Unlock()
	e, ok := s.leases[id]
	if !ok {
		return nil, nil, nil, &secrets.Error{Kind: secrets.LeaseNotFound,
			Msg: "this worker holds no such credential lease (expired, released, or the worker restarted); the workflow resolves the secrets again"}
	}
	if e.workflowID != workflowID || e.runID != runID {
		return nil, nil, nil, &secrets.Error{Kind: secrets.LeaseScopeMismatch,
			Msg: "the credential lease belongs to another workflow run and cannot be used by this one"}
	}
	if e.connector != connector {
		return nil, nil, nil, &secrets.Error{Kind: secrets.LeaseScopeMismatch,
			Msg: "the credential lease was issued for another connector and cannot be used by this one"}
	}
	out := make(connectors.Credentials, len(fields))
	for _, f := range fields {
		v, ok := e.creds[f]
		if !ok {
			zeroCreds(out)
			return nil, nil, nil, &secrets.Error{Kind: secrets.LeaseScopeMismatch, Field: f,
				Msg: "the credential lease does not cover this field"}
		}
		out[f] = slices.Clone(v)
		switch o := e.origins[f]; {
		case o == "":
			literals = append(literals, f)
		case !slices.Contains(origins, o):
			origins = append(origins, o)
		}
	}
	slices.Sort(origins)
	slices.Sort(literals)
	e.expires = s.now().Add(s.ttl)
	return out, origins, literals, nil
}

// Differs reports, for a lease this worker holds for the run and connector, whether creds and
// their origins differ from its credentials in any field (values compared in constant time);
// known is false when this worker does not hold that lease. Credentials from other secrets
// always differ, whatever their values: the answer never tells whether two secrets hold the
// same value, only whether the lease's own secrets changed.
func (s *LeaseStore) Differs(id, workflowID, runID, connector string, creds connectors.Credentials, origins map[string]string) (differs, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.leases[id]
	if !ok || e.workflowID != workflowID || e.runID != runID || e.connector != connector {
		return false, false
	}
	if len(e.creds) != len(creds) || !maps.Equal(nonEmpty(e.origins), nonEmpty(origins)) {
		return true, true
	}
	for f, v := range creds {
		old, ok := e.creds[f]
		if !ok || subtle.ConstantTimeCompare(old, v) != 1 {
			return true, true
		}
	}
	return false, true
}

// nonEmpty returns the entries of m with a value.
func nonEmpty(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// Guard returns a Guard holding the values of the sensitive fields of every lease the run holds
// here (none when it holds none). The caller must Zero it.
func (s *LeaseStore) Guard(workflowID, runID string) *secrets.Guard {
	g := &secrets.Guard{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.leases {
		if e.workflowID != workflowID || e.runID != runID {
			continue
		}
		for _, f := range e.sensitive {
			g.Add(f, e.creds[f])
		}
	}
	return g
}

// FindAny reports whether b holds the value of a sensitive field of any lease held here, and
// which field. It serves the log guard, which does not know the run a line belongs to.
func (s *LeaseStore) FindAny(b []byte) (field string, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.leases {
		for _, f := range e.sensitive {
			v := e.creds[f]
			if len(v) >= secrets.MinGuardLen && bytes.Contains(b, v) {
				return f, true
			}
		}
	}
	return "", false
}

// Runs returns the distinct runs that hold leases here, as workflow id and run id pairs.
func (s *LeaseStore) Runs() [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][2]string
	for _, e := range s.leases {
		r := [2]string{e.workflowID, e.runID}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Renew extends every lease of the run by the TTL: the run was seen alive.
func (s *LeaseStore) Renew(workflowID, runID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.leases {
		if e.workflowID == workflowID && e.runID == runID {
			e.expires = s.now().Add(s.ttl)
		}
	}
}

// EndRun zeroes and drops every lease of the run, for the given reason (EndRunClosed), and
// returns how many it dropped.
func (s *LeaseStore) EndRun(workflowID, runID, reason string) int {
	s.mu.Lock()
	var gone []endedLease
	for id, e := range s.leases {
		if e.workflowID == workflowID && e.runID == runID {
			zeroCreds(e.creds)
			delete(s.leases, id)
			gone = append(gone, ended1(reason, e.dynamic))
		}
	}
	s.mu.Unlock()
	s.report(gone)
	return len(gone)
}

// report revokes the dynamic credentials of ended leases and tells onEnd about them. The caller
// must not hold s.mu. Revocation is synchronous (at most 10 s each): when Release returns, the
// credentials are gone from the store too.
func (s *LeaseStore) report(gone []endedLease) {
	for _, e := range gone {
		for _, d := range e.dynamic {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := d.Store.Revoke(ctx, d.Lease.ID)
			cancel()
			if s.onRevoke != nil {
				s.onRevoke(d, e.reason, err)
			}
		}
		if s.onEnd != nil && e.reason != EndRefused {
			s.onEnd(e.reason)
		}
	}
}

// ended1 is one ended lease.
func ended1(reason string, dynamic []*DynamicCreds) endedLease {
	return endedLease{reason: reason, dynamic: dynamic}
}

// Revoke ends dynamic credentials that were never leased (a step failed after a store made
// them), with reason EndRefused.
func (s *LeaseStore) Revoke(dynamic []*DynamicCreds) {
	s.report([]endedLease{ended1(EndRefused, dynamic)})
}

// RenewDynamic renews the dynamic credentials of the runs' leases that are renewable and past
// half their TTL, for their TTL again. The worker calls it for runs it has seen alive; a renewal
// that fails is retried at the next call (the store's TTL is the bound if it keeps failing).
func (s *LeaseStore) RenewDynamic(ctx context.Context, workflowID, runID string) {
	now := s.now()
	s.mu.Lock()
	var due []*DynamicCreds
	for _, e := range s.leases {
		if e.workflowID != workflowID || e.runID != runID {
			continue
		}
		for _, d := range e.dynamic {
			if d.Lease.Renewable && d.Lease.TTL > 0 && !now.Before(d.renewed.Add(d.Lease.TTL/2)) {
				due = append(due, d)
			}
		}
	}
	s.mu.Unlock()
	for _, d := range due {
		ttl, err := d.Store.Renew(ctx, d.Lease.ID, d.Lease.TTL)
		if err != nil {
			continue
		}
		s.mu.Lock()
		d.renewed, d.Lease.TTL = s.now(), ttl
		s.mu.Unlock()
	}
}

// Release zeroes and drops a lease. Releasing an unknown lease is not an error (it may have
// expired); releasing another run's lease is LeaseScopeMismatch.
func (s *LeaseStore) Release(id, workflowID, runID string) error {
	s.mu.Lock()
	e, ok := s.leases[id]
	switch {
	case !ok:
		s.mu.Unlock()
		return nil
	case e.workflowID != workflowID || e.runID != runID:
		s.mu.Unlock()
		return &secrets.Error{Kind: secrets.LeaseScopeMismatch,
			Msg: "the credential lease belongs to another workflow run and cannot be released by this one"}
	}
	zeroCreds(e.creds)
	delete(s.leases, id)
	s.mu.Unlock()
	s.report([]endedLease{ended1(EndReleased, e.dynamic)})
	return nil
}

// Holds reports whether the store holds lease id for the given run. It does not extend the
// lease and reads no credential.
func (s *LeaseStore) Holds(id, workflowID, runID string) bool {
	s.mu.Lock()
	ended := s.sweepLocked()
	defer func() { s.report(ended) }()
	defer s.mu.Unlock()
	e, ok := s.leases[id]
	return ok && e.workflowID == workflowID && e.runID == runID
}

// Active returns the number of live leases.
func (s *LeaseStore) Active() int {
	s.mu.Lock()
	ended := s.sweepLocked()
	n := len(s.leases)
	s.mu.Unlock()
	s.report(ended)
	return n
}

// Sweep zeroes and drops expired leases. The worker calls it periodically; every other method
// sweeps too.
func (s *LeaseStore) Sweep() {
	s.mu.Lock()
	ended := s.sweepLocked()
	s.mu.Unlock()
	s.report(ended)
}

// Close zeroes and drops every lease (worker shutdown).
func (s *LeaseStore) Close() {
	s.mu.Lock()
	var gone []endedLease
	for id, e := range s.leases {
		zeroCreds(e.creds)
		delete(s.leases, id)
		gone = append(gone, ended1(EndShutdown, e.dynamic))
	}
	s.mu.Unlock()
	s.report(gone)
}

// sweepLocked zeroes and drops expired leases and returns their end reasons, for report once
// the lock is released.
func (s *LeaseStore) sweepLocked() []endedLease {
	now := s.now()
	var gone []endedLease
	for id, e := range s.leases {
		if !now.Before(e.expires) {
			zeroCreds(e.creds)
			delete(s.leases, id)
			gone = append(gone, ended1(EndExpired, e.dynamic))
		}
	}
	return gone
}

func zeroCreds(c connectors.Credentials) {
	for k, v := range c {
		v.Zero()
		delete(c, k)
	}
}
