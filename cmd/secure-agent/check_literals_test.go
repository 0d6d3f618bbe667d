package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
	"github.com/secure-agent/secure-agent/workflows"
)

// TestCheckSaysWhenAVariableNameWasTakenAsText reproduces the forgotten allowlist: a SQLite input
// whose path names a variable the env store may not read. The store uses "LITCHECK_DB_PATH" as
// the path itself; check says so, naming the field, the name and the setting, instead of only
// reporting a path outside the allowed directories.
func TestCheckSaysWhenAVariableNameWasTakenAsText(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	if err := writeSampleDB(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECURE_AGENT_SQLITE_DIRS", dir)
	t.Setenv("SECURE_AGENT_OUTPUT_DIR", filepath.Join(dir, "out"))
	t.Setenv("SECURE_AGENT_ENV_ALLOW", "")
	in := sqliteInput("LITCHECK_DB_PATH")

	t.Run("variable not set", func(t *testing.T) {
		code, c := runCheckJSON(t, in, "--local")
		wantFailedAt(t, code, c, checkPolicy, "allows for SQLite files", // what the source said, then why
			`connection.path "LITCHECK_DB_PATH" was used as literal text`, "SECURE_AGENT_ENV_ALLOW")
	})
	t.Run("variable set but not allowed", func(t *testing.T) {
		t.Setenv("LITCHECK_DB_PATH", db)
		code, c := runCheckJSON(t, in, "--local")
		wantFailedAt(t, code, c, checkSecrets, `connection.path "LITCHECK_DB_PATH" was used as literal text`,
			"a variable of that name is set", "SECURE_AGENT_ENV_ALLOW")
		for _, l := range c.Lines {
			if strings.Contains(l.Detail, db) {
				t.Fatalf("the checklist shows the variable's value: %+v", l)
			}
		}
	})
	t.Run("allowed: read as a variable, no note", func(t *testing.T) {
		t.Setenv("LITCHECK_DB_PATH", db)
		t.Setenv("SECURE_AGENT_ENV_ALLOW", "LITCHECK_*")
		code, c := runCheckJSON(t, in, "--local")
		if code != 0 || !c.OK {
			t.Fatalf("exit %d: %+v", code, c)
		}
		for _, l := range c.Lines {
			if strings.Contains(l.Detail, "literal") {
				t.Errorf("a note on a variable that was read: %+v", l)
			}
		}
	})
	t.Run("policy file", func(t *testing.T) {
		pol := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(pol, []byte("version: 1\nsqlite:\n  dirs: [\""+dir+"\"]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SECURE_AGENT_SQLITE_DIRS", "")
		t.Setenv("SECURE_AGENT_POLICY_FILE", pol)
		code, c := runCheckJSON(t, in, "--local")
		wantFailedAt(t, code, c, checkPolicy, `"LITCHECK_DB_PATH" was used as literal text`, "env.allow in the policy file")
	})
}

// TestRemoteLiteralNotes covers the notes of a check run on an agent, whose allowlist this
// process cannot see: conditional after a failure, exact after a success, and never about a
// sensitive field, whose value may be the secret itself typed by mistake.
func TestRemoteLiteralNotes(t *testing.T) {
	in := workflows.Input{Connector: "postgres", SecretStore: nil, Connection: map[string]workflows.FieldValue{
		"host": "PGHOST_VAR", "database": "shop", "port": "5432", "username": "PG_USER", "password": "HUNTER_CANARY_PW"}}
	if notes := remoteLiteralNotes(in, nil, false); notes != nil {
		t.Errorf("no env store, yet notes: %v", notes)
	}
	in.SecretStore = &stores.Spec{Type: stores.TypeEnv}
	notes := strings.Join(remoteLiteralNotes(in, nil, false), "\n")
	for _, want := range []string{`if connection.host "PGHOST_VAR" names an environment variable`, `connection.username "PG_USER"`} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q do not hold %q", notes, want)
		}
	}
	if strings.Contains(notes, "HUNTER") || strings.Contains(notes, "shop") || strings.Contains(notes, "5432") {
		t.Errorf("notes name a sensitive value or a plain value: %q", notes)
	}
	read := []secrets.SecretVersion{{Ref: secrets.Ref{Path: "PG_USER"}}}
	notes = strings.Join(remoteLiteralNotes(in, read, true), "\n")
	if strings.Contains(notes, "PG_USER") || !strings.Contains(notes, `connection.host "PGHOST_VAR" was used as literal text`) {
		t.Errorf("after a success: %q", notes)
	}
}

func TestLooksLikeVariable(t *testing.T) {
	for v, want := range map[string]bool{"MY_DB_PATH": true, "PGHOST": true, "X1": true,
		"localhost": false, "5432": false, "db1": false, "My_Path": false, "/tmp/x.db": false, "_": false, "": false} {
		if got := looksLikeVariable(v); got != want {
			t.Errorf("looksLikeVariable(%q) = %v", v, got)
		}
	}
}
