// Package testenv is what the integration tests of several packages share: finding the services
// that scripts/services provides (the temporal CLI, PostgreSQL, the public sample schemas), and
// failing or skipping when one is missing. Only tests import it.
package testenv

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireOrSkip fails the test when integration is required (SECURE_AGENT_REQUIRE_INTEGRATION=1,
// set by scripts/test in CI) and skips it otherwise, saying why.
func RequireOrSkip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("SECURE_AGENT_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// TemporalCLI returns the absolute path of the real temporal CLI: the one named by
// SECURE_AGENT_TEMPORAL_CLI, else the one scripts/services builds into the module's .tools/,
// else one on PATH. Missing, it calls RequireOrSkip.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("SECURE_AGENT_TEMPORAL_CLI")}
	if root, ok := moduleRoot(); ok {
		candidates = append(candidates, filepath.Join(root, ".tools", "temporal"))
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && !info.IsDir() {
			abs, err := filepath.Abs(c)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	RequireOrSkip(t, "the temporal CLI is not installed (.tools/temporal): run scripts/services, which builds it from the Go module proxy")
	return ""
}

// moduleRoot is the nearest directory at or above the working directory (a test's package
// directory) that holds go.mod.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// DefaultSamplesDir is scripts/test-env's default for SECURE_AGENT_SAMPLES_DIR.
const DefaultSamplesDir = "/var/tmp/secure-agent-test/samples"

// Sample returns the absolute path of a public sample schema's file that scripts/samples fetches
// ("pagila.sql", "sakila-schema.sql", "sakila-data.sql", "chinook.sqlite"), in
// SECURE_AGENT_SAMPLES_DIR or DefaultSamplesDir. Missing, it calls RequireOrSkip.
func Sample(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("SECURE_AGENT_SAMPLES_DIR")
	if dir == "" {
		dir = DefaultSamplesDir
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || !info.Mode().IsRegular() {
		RequireOrSkip(t, "sample "+name+" is not in "+dir+": run scripts/samples (fetches public sample schemas from Debian's packages)")
	}
	return path
}

// PGAdminURL is the administrator URL of the test PostgreSQL that scripts/services runs
// (SECURE_AGENT_TEST_PG_ADMIN_URL, see scripts/test-env).
func PGAdminURL() string {
	if raw := os.Getenv("SECURE_AGENT_TEST_PG_ADMIN_URL"); raw != "" {
		return raw
	}
	return "postgres://postgres:secure-agent-test@127.0.0.1:55432/postgres?sslmode=disable"
}

// PGAdmin connects to the test PostgreSQL as its administrator, closed when the test ends; an
// unreachable server goes to RequireOrSkip.
func PGAdmin(t testing.TB) (*pgx.Conn, *url.URL) {
	t.Helper()
	raw := PGAdminURL()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		RequireOrSkip(t, "PostgreSQL is not reachable: run scripts/services ("+err.Error()+")")
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, u
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers: a log sink for tests.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CompareMaps reports every key of want whose value in got differs or is missing, every key of
// got that want does not have, and a want with no key at all (an independent query that found
// nothing proves nothing). what names the things compared in the messages.
func CompareMaps(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s %s missing; want %s", what, k, w)
		} else if g != w {
			t.Errorf("%s %s:\n got %s\nwant %s", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s %s = %s", what, k, g)
		}
	}
	if len(want) == 0 {
		t.Errorf("no %s in the catalog", what)
	}
}
