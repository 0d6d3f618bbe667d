package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/secure-agent/secure-agent/internal/testenv"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/worker"
	"github.com/secure-agent/secure-agent/workflows"
)

// rotatingStore is a custom HTTP secret store holding one secret, {"password": ...}, whose value
// and version the test changes the way a rotation would. It counts the requests it answers.
type rotatingStore struct {
	mu       sync.Mutex
	password string
	version  int
	// everyRead, when set, rotates the secret on every read (a store that never settles).
	everyRead bool
	reads     int
}

func (s *rotatingStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/pg" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.reads++
	if s.everyRead {
		s.version++
		s.password = fmt.Sprintf("never-right-%d", s.version)
	}
	password, version := s.password, s.version
	s.mu.Unlock()
	w.Header().Set("X-Secret-Version", strconv.Itoa(version))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"password": password})
}

// rotate sets the secret's new value and version.
func (s *rotatingStore) rotate(password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password = password
	s.version++
}

func (s *rotatingStore) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// TestRotationDuringRun rotates a database password in the middle of an extraction, the way a
// secret manager's rotation does (the store gets the new value, then the database), on the real
// server against real PostgreSQL with the secret cache on. The next login is refused, the agent
// reads the secret again past its cache, sees that it changed and goes on with it: the run
// completes with one rotation, one refused login, the old and new versions in its summary, and
// output identical to a clean run's. When the secret read again has not changed, the run fails
// after that single read, without a second login; and a store that changes on every read is
// followed at most MaxRotations times.
func TestRotationDuringRun(t *testing.T) {
	db, user, first := manySchemas(t, 12, 2)
	adminConn, admin := testenv.PGAdmin(t)
	store := &rotatingStore{password: first, version: 1}
	storeURL := customStore(t, store.ServeHTTP)
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	h := newHarness(t, func(s *worker.Settings) {
		s.SecretCacheTTL, s.CustomStoreHosts, s.Audit = time.Hour, []string{"127.0.0.1:*"}, auditFile
	})
	in := workflows.Input{
		Connector: "postgres",
		Connection: map[string]workflows.FieldValue{
			"host": workflows.FieldValue(admin.Hostname()), "port": workflows.FieldValue(admin.Port()),
			"database": workflows.FieldValue(db), "username": workflows.FieldValue(user),
			"password": "password", "sslmode": "disable",
		},
		SecretStore: &stores.Spec{Type: stores.TypeCustom,
			Config: json.RawMessage(fmt.Sprintf(`{"store_url": %q, "secret_name": "pg"}`, storeURL))},
		Options: workflows.RunOptions{SchemasPerBatch: 1, MaxConcurrentBatches: 1},
	}

	run := h.start(workflows.ExtractionWorkflowName, in)
	waitSchemasDone(t, h, run.GetID(), 1)
	second := "pw-" + randomHex(t)
	store.rotate(second)
	mustExec(t, adminConn, fmt.Sprintf(`ALTER ROLE %s PASSWORD '%s'`, user, second))
	var rotated workflows.Summary
	if err := run.Get(context.Background(), &rotated); err != nil {
		t.Fatalf("the run did not survive the rotation: %v", err)
	}
	if rotated.Rotations != 1 {
		t.Errorf("rotations = %d, want 1", rotated.Rotations)
	}
	if got := versionsOf(rotated.PreviousVersions); !slices.Equal(got, []string{"pg=1"}) {
		t.Errorf("previous versions %v, want [pg=1]", got)
	}
	if got := versionsOf(rotated.Versions); !slices.Equal(got, []string{"pg=2"}) {
		t.Errorf("versions %v, want [pg=2]", got)
	}
	if n := store.requests(); n != 2 {
		t.Errorf("the store was asked %d times, want 2 (the first read and one read past the cache)", n)
	}
	if refused := refusedLogins(t, h.client, run); refused != 1 {
		t.Errorf("%d activities failed with SourceAuthFailed, want exactly 1", refused)
	}
	if got := auditedVersions(t, auditFile, run.GetID()); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("audited secret reads of the run carry versions %v, want [1 2]", got)
	}
	if recording() {
		recordHistory(t, h, "extraction-rotated-v7", run)
	}

	// A clean run now reads the rotated secret from the cache the refresh updated.
	var clean workflows.Summary
	if err := h.start(workflows.ExtractionWorkflowName, in).Get(context.Background(), &clean); err != nil {
		t.Fatalf("a run after the rotation: %v", err)
	}
	if clean.Rotations != 0 || store.requests() != 2 {
		t.Errorf("clean run: rotations %d, store requests %d; want 0 and still 2 (the cache holds the new value)", clean.Rotations, store.requests())
	}
	sameOutput(t, "rotated", rotated, "clean", clean)

	t.Run("unchanged secret fails after one read", func(t *testing.T) {
		mustExec(t, adminConn, fmt.Sprintf(`ALTER ROLE %s PASSWORD '%s'`, user, "pw-"+randomHex(t)))
		before := store.requests()
		run := failedRun(t, h, in, "SourceAuthFailed")
		if n := store.requests() - before; n != 1 {
			t.Errorf("the store was asked %d times, want 1 (the read past the cache after the refusal)", n)
		}
		if refused := refusedLogins(t, h.client, run); refused != 1 {
			t.Errorf("%d refused logins, want 1: the unchanged secret must not be tried again", refused)
		}
	})

	t.Run("a store that changes on every read is followed at most MaxRotations times", func(t *testing.T) {
		store.mu.Lock()
		store.everyRead = true
		store.mu.Unlock()
		before := store.requests()
		run := failedRun(t, h, in, "SourceAuthFailed")
		// The first read comes from the cache; each refusal then reads past it once.
		if n := store.requests() - before; n != workflows.MaxRotations {
			t.Errorf("the store was asked %d times, want %d", n, workflows.MaxRotations)
		}
		if refused := refusedLogins(t, h.client, run); refused != 1+workflows.MaxRotations {
			t.Errorf("%d refused logins, want %d", refused, 1+workflows.MaxRotations)
		}
	})
}

// failedRun runs an extraction that must fail with an error of kind, and returns it.
func failedRun(t *testing.T, h *harness, in workflows.Input, kind string) client.WorkflowRun {
	t.Helper()
	run := h.start(workflows.ExtractionWorkflowName, in)
	err := run.Get(context.Background(), nil)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != kind {
		t.Fatalf("want %s, got %v", kind, err)
	}
	return run
}

// auditedVersions returns the versions of the secret reads audited for a workflow, in order.
func auditedVersions(t *testing.T, file, workflowID string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev struct{ Event, WorkflowID, Version string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if ev.Event == "secret.read" && ev.WorkflowID == workflowID {
			out = append(out, ev.Version)
		}
	}
	return out
}

// versionsOf renders secret versions as path=version, sorted.
func versionsOf(vs []secrets.SecretVersion) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Ref.Path+"="+v.Version)
	}
	slices.Sort(out)
	return out
}

// refusedLogins counts the activity attempts of run that failed with SourceAuthFailed.
func refusedLogins(t *testing.T, c client.Client, run client.WorkflowRun) int {
	t.Helper()
	n := 0
	for _, ev := range history(t, c, run).GetEvents() {
		if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED {
			continue
		}
		if f := ev.GetActivityTaskFailedEventAttributes().GetFailure(); strings.Contains(f.GetApplicationFailureInfo().GetType(), "SourceAuthFailed") {
			n++
		}
	}
	return n
}
