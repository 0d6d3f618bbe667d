package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// confinedTree is a temporary directory, symbolic links resolved, holding
//
//	<canary>-allowed/good.db                  the allowed directory, with a database
//	<canary>-allowed/sub/                     an empty directory
//	<canary>-allowed/inside-link.db -> good.db
//	<canary>-allowed/outside-link.db -> ../<canary>-other/x.db
//	<canary>-allowed/outside-dir -> ../<canary>-other
//	<canary>-allowed/dangling.db -> ../<canary>-other/missing.db
//	<canary>-allowed-evil/x.db                a database beside it, sharing its name as a prefix
//	<canary>-other/x.db                       a database outside
//	<canary>-other/garbage                    a file that is not a database
//	<canary>-other/unreadable.db              a database no one may read
//	good.db                                   a database outside, where the kernel would take
//	                                          <canary>-allowed/outside-dir/../good.db
type confinedTree struct {
	root, allowed, good, other, otherDB string
}

func newConfinedTree(t *testing.T) confinedTree {
	t.Helper()
	root := realDir(t, t.TempDir())
	tr := confinedTree{
		root:    root,
		allowed: filepath.Join(root, canary+"-allowed"),
		other:   filepath.Join(root, canary+"-other"),
	}
	tr.good = filepath.Join(tr.allowed, "good.db")
	tr.otherDB = filepath.Join(tr.other, "x.db")
	for _, d := range []string{filepath.Join(tr.allowed, "sub"), tr.other, filepath.Join(root, canary+"-allowed-evil")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeDB(t, tr.good, `CREATE TABLE inside (x)`)
	writeDB(t, tr.otherDB, `CREATE TABLE outside (x)`)
	writeDB(t, filepath.Join(root, "good.db"), `CREATE TABLE outside (x)`)
	writeDB(t, filepath.Join(root, canary+"-allowed-evil", "x.db"), `CREATE TABLE evil (x)`)
	writeDB(t, filepath.Join(tr.other, "unreadable.db"), `CREATE TABLE locked (x)`)
	if err := os.Chmod(filepath.Join(tr.other, "unreadable.db"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.other, "garbage"), []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"inside-link.db":  "good.db",
		"outside-link.db": filepath.Join("..", canary+"-other", "x.db"),
		"outside-dir":     filepath.Join("..", canary+"-other"),
		"dangling.db":     filepath.Join("..", canary+"-other", "missing.db"),
	} {
		if err := os.Symlink(target, filepath.Join(tr.allowed, link)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func (tr confinedTree) opts() connectors.OpenOptions {
	return connectors.OpenOptions{SQLiteDirs: []string{tr.allowed}}
}

// TestConfinementRefusesOutside: every path that is not inside the allowed directory, whatever
// is there, gets the same PolicyDenied refusal, byte for byte, which names neither the path nor
// anything about the file.
func TestConfinementRefusesOutside(t *testing.T) {
	tr := newConfinedTree(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// A relative path that, judged against the working directory, names the good database.
	relGood, err := filepath.Rel(wd, tr.good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(relGood); err != nil {
		t.Fatalf("the relative path does not name the database from the working directory: %v", err)
	}

	cases := []struct {
		name string
		path string
		opts connectors.OpenOptions
	}{
		{"proc environ", "/proc/self/environ", tr.opts()},
		{"missing file", filepath.Join(tr.other, "missing.db"), tr.opts()},
		{"directory", tr.other, tr.opts()},
		{"device", "/dev/null", tr.opts()},
		{"not a database", filepath.Join(tr.other, "garbage"), tr.opts()},
		{"unreadable database", filepath.Join(tr.other, "unreadable.db"), tr.opts()},
		{"database elsewhere", tr.otherDB, tr.opts()},
		{"relative path to the good database", relGood, tr.opts()},
		{"bare file name", "good.db", tr.opts()},
		{"dot dot", "..", tr.opts()},
		{"climbs out lexically", tr.allowed + "/../" + canary + "-other/x.db", tr.opts()},
		{"climbs out to a missing file", tr.allowed + "/sub/../../" + canary + "-other/missing.db", tr.opts()},
		{"sibling sharing a prefix", filepath.Join(tr.root, canary+"-allowed-evil", "x.db"), tr.opts()},
		{"symlink to a database outside", filepath.Join(tr.allowed, "outside-link.db"), tr.opts()},
		{"through a symlinked directory", filepath.Join(tr.allowed, "outside-dir", "x.db"), tr.opts()},
		{"missing file through a symlinked directory", filepath.Join(tr.allowed, "outside-dir", "missing.db"), tr.opts()},
		{"missing directory through a symlinked directory", filepath.Join(tr.allowed, "outside-dir", "nope", "x.db"), tr.opts()},
		{"dangling symlink", filepath.Join(tr.allowed, "dangling.db"), tr.opts()},
		{"the allowed directory", tr.allowed, tr.opts()},
		{"the allowed directory with a slash", tr.allowed + "/", tr.opts()},
		{"the allowed directory with a dot", tr.allowed + "/.", tr.opts()},
		{"root", "/", tr.opts()},
		{"NUL byte", tr.good + "\x00", tr.opts()},
		{"NUL byte inside", tr.allowed + "/go\x00od.db", tr.opts()},
		{"file URI", "file:" + tr.good, tr.opts()},
		{"file URI creating", "file:" + filepath.Join(tr.allowed, "new.db") + "?mode=rwc", tr.opts()},
		{"file URI with authority", "file://" + tr.good + "?mode=rw&immutable=1", tr.opts()},
		{"no allowed directory", tr.good, connectors.OpenOptions{}},
		{"allowed directory not clean", tr.good, connectors.OpenOptions{SQLiteDirs: []string{tr.allowed + "/"}}},
		{"allowed directory relative", relGood, connectors.OpenOptions{SQLiteDirs: []string{filepath.Dir(relGood)}}},
		{"root as the allowed directory", tr.good, connectors.OpenOptions{SQLiteDirs: []string{"/"}}},
	}
	var first string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), creds(tc.path), tc.opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			var se *secrets.Error
			if !errors.As(err, &se) || se.Kind != secrets.PolicyDenied || se.Field != FieldPath || se.Detail != "" {
				t.Errorf("err = %#v", err)
			}
			if errors.Unwrap(err) != nil {
				t.Errorf("the refusal has a cause: %v", errors.Unwrap(err))
			}
			if secrets.Retryable(err) {
				t.Error("the refusal is retryable")
			}
			assertClean(t, err, tc.path)
			if first == "" {
				first = err.Error()
			}
			if err.Error() != first {
				t.Errorf("refusal differs:\n got  %q\n want %q", err.Error(), first)
			}
		})
	}
	if first != "PolicyDenied: field \"path\": "+msgOutside {
		t.Errorf("refusal = %q", first)
	}
	// Nothing was created anywhere.
	for _, p := range []string{filepath.Join(tr.allowed, "new.db"), filepath.Join(tr.other, "missing.db"), filepath.Join(wd, "file:")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after the refusals: %v", filepath.Base(p), err)
		}
	}
}

// TestConfinementAllowsInside: files inside the allowed directory open, through a symbolic link
// that stays inside too, and the usual errors come back for what is wrong there.
func TestConfinementAllowsInside(t *testing.T) {
	tr := newConfinedTree(t)
	for name, path := range map[string]string{
		"database":              tr.good,
		"symlink inside":        filepath.Join(tr.allowed, "inside-link.db"),
		"climbs within":         tr.allowed + "/sub/../good.db",
		"doubled slashes":       tr.allowed + "//good.db",
		"allowed among several": tr.good,
	} {
		t.Run(name, func(t *testing.T) {
			opts := tr.opts()
			if name == "allowed among several" {
				opts.SQLiteDirs = []string{tr.other + "/nothing", "", "relative", tr.allowed}
			}
			s, err := Open(context.Background(), creds(path), opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer func() { _ = s.Close() }()
			c := extractAll(t, s, connectors.Filters{})
			if tables := c.tables(); len(tables) != 1 || tables[0].Name != "inside" {
				t.Errorf("tables = %+v", tables)
			}
		})
	}

	// What is wrong inside is reported as before: the operator chose to expose this directory.
	for name, tc := range map[string]struct {
		path, detail string
	}{
		"missing file":      {filepath.Join(tr.allowed, "missing.db"), "ENOENT"},
		"missing directory": {filepath.Join(tr.allowed, "nope", "x.db"), "ENOENT"},
		"file as directory": {filepath.Join(tr.good, "x.db"), "ENOTDIR"},
		"directory":         {filepath.Join(tr.allowed, "sub"), ""},
		// '?' is part of the file name: the query never reaches SQLite's URI, so neither the
		// existing good.db is opened nor a new file created.
		"query in the name":    {tr.good + "?mode=rwc", "ENOENT"},
		"fragment in the name": {tr.good + "#x", "ENOENT"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(context.Background(), creds(tc.path), tr.opts())
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			var se *secrets.Error
			if !errors.As(err, &se) || se.Kind != secrets.InvalidInput || se.Field != FieldPath || se.Detail != tc.detail {
				t.Errorf("err = %#v", err)
			}
			assertClean(t, err, tc.path)
		})
	}
	des, err := os.ReadDir(tr.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 6 {
		t.Errorf("%d entries in the allowed directory, want 6", len(des))
	}
}

// TestConfinementResolvedPath: what is opened is the resolved path: a link's target, and a missing
// path resolved as far as it exists.
func TestConfinementResolvedPath(t *testing.T) {
	tr := newConfinedTree(t)
	got, err := confine(filepath.Join(tr.allowed, "inside-link.db"), []string{tr.allowed})
	if err != nil || got != tr.good {
		t.Errorf("confine = %q, %v; want the link's target", got, err)
	}
	got, err = confine(tr.allowed+"/sub/../nope/x.db", []string{tr.allowed})
	if err != nil || got != filepath.Join(tr.allowed, "nope", "x.db") {
		t.Errorf("confine of a missing path = %q, %v", got, err)
	}
}
