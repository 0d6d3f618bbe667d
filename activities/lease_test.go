package activities

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

func TestLeaseIsScopedToOneRunAndItsFields(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewLeaseStore(time.Hour, 0, func() time.Time { return now })
	pw := secrets.Value("lease-canary-pw")
	id, exp := putExp(t, s, "wf", "run-1", connectors.Credentials{"password": pw, "host": secrets.Value("h")})
	if !exp.Equal(now.Add(time.Hour)) || len(id) != 32 {
		t.Fatalf("id %q expires %v", id, exp)
	}
	got, err := s.Get(id, "wf", "run-1", "sqlite", []string{"password"})
	if err != nil || got["password"].Reveal() != "lease-canary-pw" || len(got) != 1 {
		t.Fatalf("get = %v, %v", got, err)
	}
	got["password"].Zero() // the caller's copy; the lease keeps its own
	if again, _ := s.Get(id, "wf", "run-1", "sqlite", []string{"password"}); again["password"].Reveal() != "lease-canary-pw" {
		t.Fatal("zeroing a copy damaged the lease")
	}
	for _, c := range []struct {
		wf, run string
		fields  []string
		kind    secrets.Kind
	}{
		{"wf", "run-2", []string{"password"}, secrets.LeaseScopeMismatch},
		{"other", "run-1", []string{"password"}, secrets.LeaseScopeMismatch},
		{"wf", "run-1", []string{"token"}, secrets.LeaseScopeMismatch},
	} {
		if _, err := s.Get(id, c.wf, c.run, "sqlite", c.fields); !errors.Is(err, c.kind) {
			t.Errorf("%+v: err = %v, want %s", c, err, c.kind)
		}
	}
	if _, err := s.Get("nope", "wf", "run-1", "sqlite", nil); !errors.Is(err, secrets.LeaseNotFound) {
		t.Errorf("unknown lease: %v", err)
	}
	if err := s.Release(id, "wf", "run-2"); !errors.Is(err, secrets.LeaseScopeMismatch) {
		t.Errorf("release by another run: %v", err)
	}
	if err := s.Release(id, "wf", "run-1"); err != nil {
		t.Fatal(err)
	}
	if !zeroed(pw) {
		t.Errorf("release left the plaintext in memory: %q", []byte(pw))
	}
	if s.Active() != 0 {
		t.Errorf("active = %d", s.Active())
	}
	if err := s.Release(id, "wf", "run-1"); err != nil {
		t.Errorf("releasing twice: %v", err)
	}
}

func TestLeaseExpiresAndUseExtendsIt(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewLeaseStore(10*time.Minute, 0, func() time.Time { return now })
	pw := secrets.Value("lease-canary-exp")
	id := put(t, s, "wf", "run", connectors.Credentials{"password": pw})
	now = now.Add(9 * time.Minute)
	if _, err := s.Get(id, "wf", "run", "sqlite", []string{"password"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(9 * time.Minute) // 18 minutes after Put, 9 after the last use
	if _, err := s.Get(id, "wf", "run", "sqlite", []string{"password"}); err != nil {
		t.Fatalf("a lease in use expired: %v", err)
	}
	now = now.Add(11 * time.Minute)
	s.Sweep()
	if s.Active() != 0 || !zeroed(pw) {
		t.Fatalf("expired lease still held (active %d)", s.Active())
	}
	if _, err := s.Get(id, "wf", "run", "sqlite", []string{"password"}); !errors.Is(err, secrets.LeaseNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestCloseZeroesEveryLease(t *testing.T) {
	s := NewLeaseStore(time.Hour, 0, nil)
	a, b := secrets.Value("one"), secrets.Value("two")
	put(t, s, "wf", "r1", connectors.Credentials{"x": a})
	put(t, s, "wf", "r2", connectors.Credentials{"x": b})
	s.Close()
	if s.Active() != 0 || !zeroed(a) || !zeroed(b) {
		t.Fatal("close left plaintext behind")
	}
}

func zeroed(v secrets.Value) bool {
	for _, c := range v {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestHoldsAnswersForItsRunOnly: LeaseAlive's answer. Holds is true for the run the lease was
// made for, false for another run, after release and after expiry, and it does not extend the
// lease.
func TestHoldsAnswersForItsRunOnly(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewLeaseStore(10*time.Minute, 0, func() time.Time { return now })
	id := put(t, s, "wf", "run", connectors.Credentials{"password": secrets.Value("holds-canary")})
	if !s.Holds(id, "wf", "run") {
		t.Fatal("Holds is false for the lease's own run")
	}
	if s.Holds(id, "wf", "other-run") || s.Holds(id, "other-wf", "run") || s.Holds("no-such-id", "wf", "run") {
		t.Fatal("Holds is true for another run or another id")
	}
	now = now.Add(9 * time.Minute)
	_ = s.Holds(id, "wf", "run")
	now = now.Add(2 * time.Minute) // 11 minutes after Put: Holds did not extend it
	if s.Holds(id, "wf", "run") {
		t.Fatal("Holds extended the lease, or an expired lease is still held")
	}
	id2 := put(t, s, "wf", "run", connectors.Credentials{"password": secrets.Value("holds-canary-2")})
	if err := s.Release(id2, "wf", "run"); err != nil || s.Holds(id2, "wf", "run") {
		t.Fatalf("after release: Holds true (release error %v)", err)
	}
}

// put leases creds for a run of the sqlite connector, none of them sensitive.
func put(t *testing.T, s *LeaseStore, workflowID, runID string, creds connectors.Credentials) string {
	t.Helper()
	id, _ := putExp(t, s, workflowID, runID, creds)
	return id
}

func putExp(t *testing.T, s *LeaseStore, workflowID, runID string, creds connectors.Credentials) (string, time.Time) {
	t.Helper()
	id, exp, err := s.Put(LeaseGrant{WorkflowID: workflowID, RunID: runID, Connector: "sqlite", Creds: creds})
	if err != nil {
		t.Fatal(err)
	}
	return id, exp
}

// TestLeaseIsBoundToItsConnector: credentials resolved for one connector are refused to a step
// that presents the lease for another (a hostile caller could otherwise hand a PostgreSQL
// password to a MySQL driver pointed elsewhere).
func TestLeaseIsBoundToItsConnector(t *testing.T) {
	s := NewLeaseStore(time.Hour, 0, nil)
	id, _, err := s.Put(LeaseGrant{WorkflowID: "wf", RunID: "run", Connector: "postgres",
		Creds: connectors.Credentials{"password": secrets.Value("bound-canary")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id, "wf", "run", "mysql", []string{"password"}); !errors.Is(err, secrets.LeaseScopeMismatch) || strings.Contains(err.Error(), "bound-canary") {
		t.Fatalf("another connector: %v", err)
	}
	if _, err := s.Get(id, "wf", "run", "postgres", []string{"password"}); err != nil {
		t.Fatalf("its own connector: %v", err)
	}
}

// TestLeaseLimit: a worker holds at most max leases; the next is refused with the retried
// LeaseLimit kind, its credentials zeroed, and a lease that ends makes room again.
func TestLeaseLimit(t *testing.T) {
	s := NewLeaseStore(time.Hour, 2, nil)
	put(t, s, "wf", "r1", connectors.Credentials{"x": secrets.Value("1111")})
	second := put(t, s, "wf", "r2", connectors.Credentials{"x": secrets.Value("2222")})
	over := secrets.Value("over-the-limit")
	_, _, err := s.Put(LeaseGrant{WorkflowID: "wf", RunID: "r3", Connector: "sqlite", Creds: connectors.Credentials{"x": over}})
	if !errors.Is(err, secrets.LeaseLimit) || !secrets.Retryable(err) || !strings.Contains(err.Error(), "SECURE_AGENT_MAX_LEASES") {
		t.Fatalf("third lease: %v", err)
	}
	if !zeroed(over) {
		t.Error("a refused lease's credentials were not zeroed")
	}
	if err := s.Release(second, "wf", "r2"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "wf", "r3", connectors.Credentials{"x": secrets.Value("3333")})
	if s.Active() != 2 {
		t.Fatalf("active = %d", s.Active())
	}
}

// TestEndRunAndRenew: the janitor's operations. EndRun drops every lease of one run (zeroed)
// and no other; Renew keeps a run's leases alive past their TTL; each end is reported once with
// its reason.
func TestEndRunAndRenew(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewLeaseStore(10*time.Minute, 0, func() time.Time { return now })
	var ends []string
	s.OnEnd(func(reason string) { ends = append(ends, reason) })
	a1, a2, b := secrets.Value("run-a-one"), secrets.Value("run-a-two"), secrets.Value("run-b")
	put(t, s, "wf", "a", connectors.Credentials{"x": a1})
	put(t, s, "wf", "a", connectors.Credentials{"x": a2})
	idB := put(t, s, "wf", "b", connectors.Credentials{"x": b})
	if runs := s.Runs(); len(runs) != 2 {
		t.Fatalf("runs = %v", runs)
	}
	if n := s.EndRun("wf", "a", EndRunClosed); n != 2 || !zeroed(a1) || !zeroed(a2) || zeroed(b) {
		t.Fatalf("EndRun dropped %d (a zeroed %v %v, b zeroed %v)", n, zeroed(a1), zeroed(a2), zeroed(b))
	}
	for range 3 {
		now = now.Add(9 * time.Minute)
		s.Renew("wf", "b")
	}
	if !s.Holds(idB, "wf", "b") {
		t.Fatal("a renewed lease expired")
	}
	now = now.Add(11 * time.Minute)
	s.Sweep()
	if s.Active() != 0 || !zeroed(b) {
		t.Fatal("an unrenewed lease outlived its TTL")
	}
	if !slices.Equal(ends, []string{EndRunClosed, EndRunClosed, EndExpired}) {
		t.Fatalf("ends reported %v", ends)
	}
}

// TestGuardHoldsOnlyTheRunsSensitiveValues: the result guard of a run finds the values of its
// own sensitive fields, not those of its non-sensitive fields nor another run's.
func TestGuardHoldsOnlyTheRunsSensitiveValues(t *testing.T) {
	s := NewLeaseStore(time.Hour, 0, nil)
	for _, g := range []LeaseGrant{
		{WorkflowID: "wf", RunID: "a", Connector: "postgres", Sensitive: []string{"password"},
			Creds: connectors.Credentials{"password": secrets.Value("pw-of-run-a"), "username": secrets.Value("user-of-run-a")}},
		{WorkflowID: "wf", RunID: "b", Connector: "postgres", Sensitive: []string{"password"},
			Creds: connectors.Credentials{"password": secrets.Value("pw-of-run-b")}},
	} {
		if _, _, err := s.Put(g); err != nil {
			t.Fatal(err)
		}
	}
	g := s.Guard("wf", "a")
	defer g.Zero()
	if f, ok := g.FindString(`{"x":"..pw-of-run-a.."}`); !ok || f != "password" {
		t.Fatalf("own password not found (%q, %v)", f, ok)
	}
	if _, ok := g.FindString("user-of-run-a pw-of-run-b"); ok {
		t.Fatal("the guard holds a non-sensitive value or another run's")
	}
	if f, ok := s.FindAny([]byte("log line with pw-of-run-b")); !ok || f != "password" {
		t.Fatal("FindAny missed a held sensitive value")
	}
}
