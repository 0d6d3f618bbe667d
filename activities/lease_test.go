package activities

import (
	"errors"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

func TestLeaseIsScopedToOneRunAndItsFields(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewLeaseStore(time.Hour, func() time.Time { return now })
	pw := secrets.Value("lease-canary-pw")
	id, exp := s.Put("wf", "run-1", connectors.Credentials{"password": pw, "host": secrets.Value("h")}, nil)
	if !exp.Equal(now.Add(time.Hour)) || len(id) != 32 {
		t.Fatalf("id %q expires %v", id, exp)
	}
	got, err := s.Get(id, "wf", "run-1", []string{"password"})
	if err != nil || got["password"].Reveal() != "lease-canary-pw" || len(got) != 1 {
		t.Fatalf("get = %v, %v", got, err)
	}
	got["password"].Zero() // the caller's copy; the lease keeps its own
	if again, _ := s.Get(id, "wf", "run-1", []string{"password"}); again["password"].Reveal() != "lease-canary-pw" {
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
		if _, err := s.Get(id, c.wf, c.run, c.fields); !errors.Is(err, c.kind) {
			t.Errorf("%+v: err = %v, want %s", c, err, c.kind)
		}
	}
	if _, err := s.Get("nope", "wf", "run-1", nil); !errors.Is(err, secrets.LeaseNotFound) {
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
	s := NewLeaseStore(10*time.Minute, func() time.Time { return now })
	pw := secrets.Value("lease-canary-exp")
	id, _ := s.Put("wf", "run", connectors.Credentials{"password": pw}, nil)
	now = now.Add(9 * time.Minute)
	if _, err := s.Get(id, "wf", "run", []string{"password"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(9 * time.Minute) // 18 minutes after Put, 9 after the last use
	if _, err := s.Get(id, "wf", "run", []string{"password"}); err != nil {
		t.Fatalf("a lease in use expired: %v", err)
	}
	now = now.Add(11 * time.Minute)
	s.Sweep()
	if s.Active() != 0 || !zeroed(pw) {
		t.Fatalf("expired lease still held (active %d)", s.Active())
	}
	if _, err := s.Get(id, "wf", "run", []string{"password"}); !errors.Is(err, secrets.LeaseNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestCloseZeroesEveryLease(t *testing.T) {
	s := NewLeaseStore(time.Hour, nil)
	a, b := secrets.Value("one"), secrets.Value("two")
	s.Put("wf", "r1", connectors.Credentials{"x": a}, nil)
	s.Put("wf", "r2", connectors.Credentials{"x": b}, nil)
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
	s := NewLeaseStore(10*time.Minute, func() time.Time { return now })
	id, _ := s.Put("wf", "run", connectors.Credentials{"password": secrets.Value("holds-canary")}, nil)
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
	id2, _ := s.Put("wf", "run", connectors.Credentials{"password": secrets.Value("holds-canary-2")}, nil)
	if err := s.Release(id2, "wf", "run"); err != nil || s.Holds(id2, "wf", "run") {
		t.Fatalf("after release: Holds true (release error %v)", err)
	}
}
