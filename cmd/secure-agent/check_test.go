package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secure-agent/secure-agent/internal/testenv"
)

// runCheckJSON runs `secure-agent check --json` on an input and returns the exit code and the
// checklist.
func runCheckJSON(t *testing.T, input any, extra ...string) (int, checklist) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input.json")
	b, _ := json.Marshal(input)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := mainWith(ctx, append([]string{"check", "--json", "--input", p}, extra...), &stdout, &stderr)
	var c checklist
	if err := json.Unmarshal(stdout.Bytes(), &c); err != nil {
		t.Fatalf("check printed %q (stderr %q): %v", stdout.String(), stderr.String(), err)
	}
	return code, c
}

// wantFailedAt asserts that the checklist passed every line before name, failed at name (with a
// detail mentioning each of want), and skipped or passed the rest.
func wantFailedAt(t *testing.T, code int, c checklist, name string, want ...string) {
	t.Helper()
	if code != 1 || c.OK {
		t.Fatalf("exit %d ok %v, want a failure at %q: %+v", code, c.OK, name, c.Lines)
	}
	seen := false
	for _, l := range c.Lines {
		switch {
		case l.Name == name:
			seen = true
			if l.Status != "failed" {
				t.Fatalf("%q is %s, want failed: %+v", name, l.Status, c.Lines)
			}
			for _, w := range want {
				if !strings.Contains(l.Detail, w) {
					t.Errorf("%q detail %q does not mention %q", name, l.Detail, w)
				}
			}
		case !seen && l.Status != "ok":
			t.Errorf("%q before the failure is %s", l.Name, l.Status)
		}
	}
	if !seen {
		t.Fatalf("no line %q", name)
	}
}

func sqliteInput(pathVar string) map[string]any {
	return map[string]any{"connector": "sqlite", "connection": map[string]any{"path": pathVar}, "secretStore": map[string]any{"type": "env"}}
}

func TestCheckLocalChecklist(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	if err := writeSampleDB(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHECK_DB", db)
	t.Setenv("SECURE_AGENT_SQLITE_DIRS", dir)
	t.Setenv("SECURE_AGENT_ENV_ALLOW", "CHECK_*")
	t.Setenv("SECURE_AGENT_CUSTOM_STORE_HOSTS", "127.0.0.1:*")
	t.Setenv("SECURE_AGENT_OUTPUT_DIR", filepath.Join(dir, "out"))

	t.Run("all good", func(t *testing.T) {
		code, c := runCheckJSON(t, sqliteInput("CHECK_DB"), "--local")
		if code != 0 || !c.OK || len(c.Lines) != len(checkOrder) {
			t.Fatalf("exit %d: %+v", code, c)
		}
		if d := c.Lines[3].Detail; !strings.Contains(d, "fields path from CHECK_DB") || strings.Contains(d, db) {
			t.Errorf("secrets line %q should name the field and variable, never the value", d)
		}
	})
	t.Run("invalid input", func(t *testing.T) {
		// Refused before anything runs, with exit code 2 like run's.
		code, c := runCheckJSON(t, map[string]any{"connector": "sqlite", "connection": map[string]any{}}, "--local")
		if code != 2 {
			t.Fatalf("invalid input: exit %d, want 2", code)
		}
		wantFailedAt(t, 1, c, checkInput, "connection.path is required")
	})
	t.Run("wrong key name", func(t *testing.T) {
		store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"password": "check-canary-pw"}`))
		}))
		defer store.Close()
		in := map[string]any{"connector": "postgres",
			"connection":  map[string]any{"host": "127.0.0.1", "database": "d", "username": "u", "password": "pasword"},
			"secretStore": map[string]any{"type": "custom", "config": map[string]any{"store_url": store.URL, "secret_name": "db"}}}
		code, c := runCheckJSON(t, in, "--local")
		wantFailedAt(t, code, c, checkSecrets, `"password"`, "never repeated")
		if js, _ := json.Marshal(c); strings.Contains(string(js), "check-canary-pw") || strings.Contains(string(js), "pasword") {
			t.Fatal("the checklist carries the secret, or repeats the value given for a sensitive field")
		}
	})
	t.Run("store down", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		in := map[string]any{"connector": "sqlite", "connection": map[string]any{"path": "db_path"},
			"secretStore": map[string]any{"type": "custom", "config": map[string]any{"store_url": "http://" + addr, "secret_name": "db"}}}
		code, c := runCheckJSON(t, in, "--local")
		wantFailedAt(t, code, c, checkStore, "StoreUnavailable")
	})
	t.Run("unwritable output", func(t *testing.T) {
		file := filepath.Join(dir, "not-a-dir")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SECURE_AGENT_OUTPUT_DIR", file)
		code, c := runCheckJSON(t, sqliteInput("CHECK_DB"), "--local")
		wantFailedAt(t, code, c, checkOutput, "not-a-dir", "SECURE_AGENT_OUTPUT_DIR")
	})
}

// TestCheckLocalAgainstPostgres covers the source lines: wrong password, missing privilege.
func TestCheckLocalAgainstPostgres(t *testing.T) {
	admin, u := testenv.PGAdmin(t)
	ctx := context.Background()
	suffix := fmt.Sprint(time.Now().UnixNano())
	db, user := "check_"+suffix, "check_user_"+suffix
	for _, stmt := range []string{"CREATE DATABASE " + db, "CREATE ROLE " + user + " LOGIN PASSWORD 'right-pw'"} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+user)
	}()
	dbURL := *u
	dbURL.Path = "/" + db
	conn, err := pgx.Connect(ctx, dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA hidden; CREATE TABLE hidden.t (id int)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	t.Setenv("SECURE_AGENT_ENV_ALLOW", "CHECK_PG_*")
	t.Setenv("SECURE_AGENT_OUTPUT_DIR", t.TempDir())
	input := map[string]any{"connector": "postgres", "connection": map[string]any{"host": u.Hostname(), "port": u.Port(),
		"database": db, "username": user, "password": "CHECK_PG_PASSWORD", "sslmode": "disable"}, "secretStore": map[string]any{"type": "env"}}

	t.Setenv("CHECK_PG_PASSWORD", "wrong-pw")
	code, c := runCheckJSON(t, input, "--local")
	wantFailedAt(t, code, c, checkAuth, "SourceAuthFailed")

	t.Setenv("CHECK_PG_PASSWORD", "right-pw")
	code, c = runCheckJSON(t, input, "--local")
	wantFailedAt(t, code, c, checkPrivileges, "USAGE on schema hidden")
}

// TestCheckThroughTheWorkflow runs the checklist remotely: TestConnectionWorkflow on an agent.
func TestCheckThroughTheWorkflow(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	if err := writeSampleDB(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHECKR_DB", db)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	settings, err := devSettings("error")
	if err != nil {
		t.Fatal(err)
	}
	settings.EnvAllow, settings.OutputDir, settings.TaskQueue, settings.Audit = []string{"CHECKR_*"}, filepath.Join(dir, "out"), "check-test", "off"
	settings.SQLiteDirs = []string{dir}
	d, err := startDev(ctx, portZeroConfig(t), settings, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	t.Setenv("TEMPORAL_ADDRESS", d.server.FrontendAddress())
	t.Setenv("TEMPORAL_NAMESPACE", d.server.Namespace())

	code, c := runCheckJSON(t, sqliteInput("CHECKR_DB"), "--task-queue", "check-test")
	if code != 0 || !c.OK {
		t.Fatalf("exit %d: %+v", code, c)
	}
	code, c = runCheckJSON(t, sqliteInput("CHECKR_NOT_SET"), "--task-queue", "check-test")
	wantFailedAt(t, code, c, checkSecrets, "SecretNotFound", "CHECKR_NOT_SET")

	// A name the agent's allowlist does not admit is used as the path itself; the source's
	// refusal comes with the reason this process can give without seeing the agent's settings.
	code, c = runCheckJSON(t, sqliteInput("OTHER_DB_PATH"), "--task-queue", "check-test")
	wantFailedAt(t, code, c, checkPolicy, "SQLite", `if connection.path "OTHER_DB_PATH" names an environment variable on the agent`, "SECURE_AGENT_ENV_ALLOW")
}
