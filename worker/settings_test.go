package worker

import (
	"bytes"
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/activities"
	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

func TestLoadSettingsDefaultsAndOverrides(t *testing.T) {
	s, err := LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	if s.TaskQueue != "secure-agent" || s.LeaseTTL != 10*time.Minute || s.LeaseCheckInterval != 20*time.Second || s.MaxLeases != 1024 ||
		s.SecretCacheTTL != 0 || len(s.EnvAllow) != 0 || len(s.SQLiteDirs) != 0 || s.AllowSensitiveLiterals {
		t.Fatalf("defaults = %+v", s)
	}
	if !filepath.IsAbs(s.OutputDir) {
		t.Errorf("output dir %q is not absolute", s.OutputDir)
	}
	t.Setenv("SECURE_AGENT_TASK_QUEUE", "team-a")
	t.Setenv("SECURE_AGENT_ENV_ALLOW", "DB_*,*_PASSWORD")
	t.Setenv("SECURE_AGENT_SECRET_CACHE_TTL", "5m")
	s, err = LoadSettings()
	if err != nil {
		t.Fatal(err)
	}
	if s.TaskQueue != "team-a" || strings.Join(s.EnvAllow, "|") != "DB_*|*_PASSWORD" || s.SecretCacheTTL != 5*time.Minute {
		t.Fatalf("overrides = %+v", s)
	}
}

func TestSettingsReportEveryProblem(t *testing.T) {
	t.Setenv("SECURE_AGENT_LEASE_TTL", "10s")
	t.Setenv("SECURE_AGENT_LOG_LEVEL", "loud")
	t.Setenv("SECURE_AGENT_LOG_FORMAT", "xml")
	t.Setenv("SECURE_AGENT_MAX_CONCURRENT_ACTIVITIES", "0")
	_, err := LoadSettings()
	for _, want := range []string{"SECURE_AGENT_LEASE_TTL", "SECURE_AGENT_LOG_LEVEL", "SECURE_AGENT_LOG_FORMAT", "SECURE_AGENT_MAX_CONCURRENT_ACTIVITIES"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	t.Setenv("SECURE_AGENT_LEASE_TTL", "soon")
	if _, err := LoadSettings(); err == nil || !strings.Contains(err.Error(), "LEASE_TTL") {
		t.Errorf("unparsable duration: %v", err)
	}
}

// TestWorkerPathHasNoTemporalServer keeps the production path lean: the server is for dev, demo
// and tests only.
func TestWorkerPathHasNoTemporalServer(t *testing.T) {
	for _, args := range [][]string{
		{"list", "-deps", "github.com/secure-agent/secure-agent/worker"},
		{"list", "-deps", "-tags", "noserver", "github.com/secure-agent/secure-agent/cmd/secure-agent"},
	} {
		out, err := exec.Command("go", args...).Output()
		if err != nil {
			t.Fatalf("go %v: %v", args, err)
		}
		if strings.Contains(string(out), "go.temporal.io/server") {
			t.Errorf("go %s pulls in the Temporal server", strings.Join(args, " "))
		}
		if !strings.Contains(string(out), "go.temporal.io/sdk/client") {
			t.Errorf("go %s: the dependency list looks wrong", strings.Join(args, " "))
		}
	}
}

// TestLogGuard: a log line (message or attribute, the logger's own attributes included) that
// holds a value of a sensitive field of a lease held in this process is replaced by one that
// names the field; other lines pass unchanged; once the store is gone, nothing is searched.
func TestLogGuard(t *testing.T) {
	leases := activities.NewLeaseStore(time.Hour, 0, nil)
	if _, _, err := leases.Put(activities.LeaseGrant{WorkflowID: "wf", RunID: "r", Connector: "postgres", Sensitive: []string{"password"},
		Creds: connectors.Credentials{"password": secrets.Value("log-canary-pw"), "host": secrets.Value("db.internal")}}); err != nil {
		t.Fatal(err)
	}
	guardLogs(leases)
	defer unguardLogs(leases)
	var out bytes.Buffer
	logger := slog.New(newGuardHandler(slog.NewJSONHandler(&out, nil)))
	logger.Info("connecting", "host", "db.internal")
	logger.Info("oops log-canary-pw in the message")
	logger.With("dsn", "postgres://u:log-canary-pw@db").Info("an attribute added earlier")
	logger.Error("an error", "error", errors.New("driver said: password log-canary-pw rejected"))
	got := out.String()
	if strings.Contains(got, "log-canary-pw") {
		t.Fatalf("the guard let a value through:\n%s", got)
	}
	if strings.Count(got, "a log line was withheld") != 3 || !strings.Contains(got, `"field":"password"`) || !strings.Contains(got, `"host":"db.internal"`) {
		t.Fatalf("log:\n%s", got)
	}
	unguardLogs(leases)
	out.Reset()
	logger.Info("log-canary-pw")
	if !strings.Contains(out.String(), "log-canary-pw") {
		t.Fatal("the guard searched a store that is gone")
	}
}
