package secrets_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// leasingMem is a store of dynamic credentials at the interface boundary: each read makes new
// ones with a lease, Revoke records the ends. (secrets/vault tests the real protocol.)
type leasingMem struct {
	mu      sync.Mutex
	made    atomic.Int64
	revoked []string
	gate    chan struct{}
}

func (l *leasingMem) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	if l.gate != nil {
		<-l.gate
	}
	n := l.made.Add(1)
	v := fmt.Sprintf(`{"username": "v-reader-%d", "password": "pw-%d-long-enough"}`, n, n)
	return &secrets.Secret{Value: secrets.Value(v), Lease: &secrets.DynamicLease{ID: fmt.Sprintf("%s/%d", ref.Path, n), TTL: time.Hour, Renewable: true}}, nil
}

func (l *leasingMem) Renew(context.Context, string, time.Duration) (time.Duration, error) {
	return time.Hour, nil
}

func (l *leasingMem) Revoke(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revoked = append(l.revoked, id)
	return nil
}

// TestDynamicSecretsAreNeitherCachedNorShared: two runs reading the same dynamic path at the same
// time, with the cache on, get credentials of their own, each with its lease; a resolution that
// fails after reading revokes the credentials it made.
func TestDynamicSecretsAreNeitherCachedNorShared(t *testing.T) {
	store := &leasingMem{gate: make(chan struct{})}
	src := secrets.Source{Name: "vault", Key: "vault", Store: store}
	r := secrets.NewResolver(secrets.ResolverOptions{CacheTTL: time.Minute})
	ref := &secrets.Ref{Path: "database/creds/reader"}
	req := secrets.Request{Secret: ref, Fields: []secrets.Field{{Name: "username", Value: "username"}, {Name: "password", Value: "password", Sensitive: true}}}
	var wg sync.WaitGroup
	results := make([]*secrets.Resolution, 2)
	for i := range results {
		wg.Go(func() {
			res, err := r.Resolve(context.Background(), src, req)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	time.Sleep(50 * time.Millisecond) // both are waiting on the store: a shared flight would be one
	close(store.gate)
	wg.Wait()
	if t.Failed() {
		return
	}
	u0, _ := results[0].Value("username")
	u1, _ := results[1].Value("username")
	if store.made.Load() != 2 || string(u0) == string(u1) || len(results[0].Leases) != 1 || len(results[1].Leases) != 1 ||
		results[0].Leases[0].Lease.ID == results[1].Leases[0].Lease.ID {
		t.Fatalf("%d reads; users %s %s; leases %+v %+v", store.made.Load(), u0, u1, results[0].Leases, results[1].Leases)
	}
	if _, err := r.Resolve(context.Background(), src, req); err != nil || store.made.Load() != 3 {
		t.Errorf("a third run was served from the cache: %d reads, %v", store.made.Load(), err)
	}

	// A field the dynamic secret lacks: the resolution fails and revokes what it made.
	bad := req
	bad.Fields = append(slices.Clone(req.Fields), secrets.Field{Name: "sslkey", Value: "sslkey", Sensitive: true})
	if _, err := r.Resolve(context.Background(), src, bad); err == nil {
		t.Fatal("a missing key resolved")
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if want := fmt.Sprintf("database/creds/reader/%d", store.made.Load()); !slices.Equal(store.revoked, []string{want}) {
		t.Errorf("revoked %v, want [%s]", store.revoked, want)
	}
}
