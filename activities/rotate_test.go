package activities

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

// TestDiffers compares a lease's credentials with new ones for its own run and connector only.
func TestDiffers(t *testing.T) {
	s := NewLeaseStore(time.Hour, 0, nil)
	id := put(t, s, "wf", "run", connectors.Credentials{"path": secrets.Value("/a"), "password": secrets.Value("old-password")})
	for _, c := range []struct {
		name                        string
		workflowID, runID, conn, id string
		creds                       connectors.Credentials
		differs, known              bool
	}{
		{"same", "wf", "run", "sqlite", id, connectors.Credentials{"path": secrets.Value("/a"), "password": secrets.Value("old-password")}, false, true},
		{"new password", "wf", "run", "sqlite", id, connectors.Credentials{"path": secrets.Value("/a"), "password": secrets.Value("new-password")}, true, true},
		{"a field more", "wf", "run", "sqlite", id, connectors.Credentials{"path": secrets.Value("/a"), "password": secrets.Value("old-password"), "x": nil}, true, true},
		{"a field renamed", "wf", "run", "sqlite", id, connectors.Credentials{"path": secrets.Value("/a"), "passw0rd": secrets.Value("old-password")}, true, true},
		{"another run", "wf", "other", "sqlite", id, connectors.Credentials{"path": secrets.Value("/a")}, false, false},
		{"another connector", "wf", "run", "postgres", id, connectors.Credentials{"path": secrets.Value("/a")}, false, false},
		{"unknown lease", "wf", "run", "sqlite", "nope", connectors.Credentials{"path": secrets.Value("/a")}, false, false},
	} {
		differs, known := s.Differs(c.id, c.workflowID, c.runID, c.conn, c.creds, nil)
		if differs != c.differs || known != c.known {
			t.Errorf("%s: Differs = %v, %v; want %v, %v", c.name, differs, known, c.differs, c.known)
		}
	}

	// The same value from another secret differs: the answer must not tell a caller whether two
	// secrets hold the same password.
	fromA, _, err := s.Put(LeaseGrant{WorkflowID: "wf", RunID: "run", Connector: "sqlite",
		Creds: connectors.Credentials{"password": secrets.Value("shared")}, Origins: map[string]string{"password": "team-a/db"}})
	if err != nil {
		t.Fatal(err)
	}
	same := connectors.Credentials{"password": secrets.Value("shared")}
	if differs, _ := s.Differs(fromA, "wf", "run", "sqlite", same, map[string]string{"password": "team-b/db"}); !differs {
		t.Error("the same value from another secret was reported unchanged")
	}
	if differs, _ := s.Differs(fromA, "wf", "run", "sqlite", same, map[string]string{"password": "team-a/db"}); differs {
		t.Error("the same value from the same secret was reported changed")
	}
}

// versionedStore is a custom HTTP store with one secret, {"password": ...}, and a version
// header when version is not empty.
type versionedStore struct {
	mu                sync.Mutex
	password, version string
}

func (v *versionedStore) set(password, version string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.password, v.version = password, version
}

func (v *versionedStore) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.version != "" {
		w.Header().Set("X-Secret-Version", v.version)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"password": v.password})
}

// TestRefreshMakesALeaseOnlyWhenTheSecretsChanged runs ResolveSecrets in refresh mode: a new
// lease comes only when the secrets read again differ from the refused ones, by value when this
// worker holds the refused lease, by version ids when another worker does; without versions on
// both sides it cannot tell, and answers Unchanged (trying the same login again would only fail
// again). The cache, which holds the refused value, is never consulted.
func TestRefreshMakesALeaseOnlyWhenTheSecretsChanged(t *testing.T) {
	store := &versionedStore{password: "first-password", version: "1"}
	srv := httptest.NewServer(store)
	defer srv.Close()
	opener, err := stores.NewOpener(stores.Options{CustomStoreHosts: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer opener.Close()
	a := &Activities{Stores: opener, Resolver: secrets.NewResolver(secrets.ResolverOptions{CacheTTL: time.Hour}),
		Leases: NewLeaseStore(time.Hour, 0, nil), LeaseQueue: "here"}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a.ResolveSecrets)
	resolve := func(refresh *Lease) *Lease {
		t.Helper()
		v, err := env.ExecuteActivity(a.ResolveSecrets, ResolveInput{Connector: "postgres",
			Connection:  map[string]string{"host": "db.internal", "database": "d", "username": "u", "password": "password"},
			SecretStore: &stores.Spec{Type: stores.TypeCustom, Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": "pg"}`, srv.URL))},
			Refresh:     refresh})
		if err != nil {
			t.Fatal(err)
		}
		var l Lease
		if err := v.Get(&l); err != nil {
			t.Fatal(err)
		}
		return &l
	}
	first := resolve(nil)
	if first.ID == "" || first.Unchanged {
		t.Fatalf("first resolve: %+v", first)
	}
	elsewhere := func(version string) *Lease {
		return &Lease{ID: "held-by-another-worker", Versions: []secrets.SecretVersion{{Ref: secrets.Ref{Path: "pg"}, Version: version}}}
	}

	for _, c := range []struct {
		name              string
		password, version string
		refresh           *Lease
		rotated           bool
	}{
		{"held here, same value", "first-password", "1", first, false},
		{"held here, same value under a new version id", "first-password", "2", first, false},
		{"held here, new value under the same version id", "second-password", "1", first, true},
		{"held elsewhere, same version", "second-password", "5", elsewhere("5"), false},
		{"held elsewhere, new version", "third-password", "6", elsewhere("5"), true},
		{"held elsewhere, no version now", "third-password", "", elsewhere("6"), false},
		{"held elsewhere, no version before", "third-password", "7", elsewhere(""), false},
	} {
		store.set(c.password, c.version)
		got := resolve(c.refresh)
		if rotated := !got.Unchanged; rotated != c.rotated {
			t.Errorf("%s: rotated = %v, want %v", c.name, rotated, c.rotated)
		}
		if got.Unchanged && got.ID != "" {
			t.Errorf("%s: an unchanged answer made lease %q", c.name, got.ID)
		}
		if !got.Unchanged && a.Leases.Holds(c.refresh.ID, "default-test-workflow-id", "default-test-run-id") {
			t.Errorf("%s: the refused lease is still held after the rotation", c.name)
		}
		if c.rotated && c.refresh == first {
			first = got // the new lease is the one held here now
		}
	}

	// A refresh naming another run's lease (a hostile direct call) neither compares with nor
	// releases it.
	other, _, err := a.Leases.Put(LeaseGrant{WorkflowID: "another-workflow", RunID: "r", Connector: "postgres",
		Creds: connectors.Credentials{"password": secrets.Value("third-password")}})
	if err != nil {
		t.Fatal(err)
	}
	store.set("third-password", "8") // equal to its value: only a comparison with it would say unchanged
	if got := resolve(&Lease{ID: other, Versions: []secrets.SecretVersion{{Ref: secrets.Ref{Path: "pg"}, Version: "7"}}}); got.Unchanged {
		t.Error("refresh compared with another run's lease")
	}
	if !a.Leases.Holds(other, "another-workflow", "r") {
		t.Error("a refresh released another run's lease")
	}
}
