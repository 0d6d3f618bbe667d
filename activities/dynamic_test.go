package activities

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// revokingStore records renewals and revocations of dynamic leases (a store at the interface
// boundary; secrets/vault tests Vault's protocol).
type revokingStore struct {
	mu      sync.Mutex
	renewed []string
	revoked []string
}

func (r *revokingStore) Fetch(context.Context, secrets.Ref) (*secrets.Secret, error) { return nil, nil }

func (r *revokingStore) Renew(_ context.Context, id string, incr time.Duration) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.renewed = append(r.renewed, id)
	return incr, nil
}

func (r *revokingStore) Revoke(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked = append(r.revoked, id)
	return nil
}

func (r *revokingStore) ids() (renewed, revoked []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.renewed), slices.Clone(r.revoked)
}

// TestDynamicCredentialsEndWithTheirLease: dynamic credentials are revoked whatever ends their
// lease (released, run closed, expired, worker shutdown, a grant refused), each once, the
// revocation reported with its reason; and renewed once past half their TTL while the run lives.
func TestDynamicCredentialsEndWithTheirLease(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := &revokingStore{}
	var reasons []string
	s := NewLeaseStore(10*time.Minute, 2, clock)
	s.OnRevoke(func(d *DynamicCreds, reason string, err error) {
		if err != nil {
			t.Error(err)
		}
		reasons = append(reasons, d.Lease.ID+" "+reason)
	})
	grant := func(run, lease string) LeaseGrant {
		return LeaseGrant{WorkflowID: "wf", RunID: run, Connector: "postgres",
			Creds:   connectors.Credentials{"password": secrets.Value("pw-long-enough")},
			Dynamic: []*DynamicCreds{{WorkflowID: "wf", RunID: run, Store: store, Lease: secrets.DynamicLease{ID: lease, TTL: time.Hour, Renewable: true}}}}
	}
	released, _, err := s.Put(grant("r1", "db/creds/1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(grant("r2", "db/creds/2")); err != nil {
		t.Fatal(err)
	}
	// The store is full: a third grant is refused and its credentials revoked at once.
	if _, _, err := s.Put(grant("r3", "db/creds/3")); secrets.KindOf(err) != secrets.LeaseLimit {
		t.Fatalf("third lease: %v", err)
	}
	// Renewal: not before half the TTL, then once.
	s.RenewDynamic(context.Background(), "wf", "r2")
	now = now.Add(31 * time.Minute)
	s.Renew("wf", "r2") // the run was seen alive: its lease lives on
	s.RenewDynamic(context.Background(), "wf", "r2")
	s.RenewDynamic(context.Background(), "wf", "r2")
	if renewed, _ := store.ids(); !slices.Equal(renewed, []string{"db/creds/2"}) {
		t.Errorf("renewed %v, want db/creds/2 once", renewed)
	}
	if err := s.Release(released, "wf", "r1"); err != nil {
		t.Fatal(err)
	}
	s.EndRun("wf", "r2", EndRunClosed)
	if _, _, err := s.Put(grant("r4", "db/creds/4")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	want := []string{"db/creds/3 refused", "db/creds/1 released", "db/creds/2 run_closed", "db/creds/4 shutdown"}
	if _, revoked := store.ids(); !slices.Equal(reasons, want) || len(revoked) != 4 {
		t.Errorf("revocations %v (%v), want %v", reasons, revoked, want)
	}

	// Released explicitly.
	store2 := &revokingStore{}
	s2 := NewLeaseStore(time.Hour, 0, nil)
	g := grant("r5", "db/creds/5")
	g.Dynamic[0].Store = store2
	id, _, err := s2.Put(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Release(id, "wf", "r5"); err != nil {
		t.Fatal(err)
	}
	if _, revoked := store2.ids(); !slices.Equal(revoked, []string{"db/creds/5"}) {
		t.Errorf("released lease: revoked %v", revoked)
	}
}
