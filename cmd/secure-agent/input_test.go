package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvalidInputExitsTwo covers run and check with input that cannot start: a file that does not
// exist, is a directory, is empty, is not JSON, holds two values, or has a wrongly typed field.
// Each exits 2 saying what is wrong and how to fix it; with --json, run prints only
// {"error": {"type": "InvalidInput", ...}} on stdout and check its checklist.
func TestInvalidInputExitsTwo(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path string
		want       []string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), []string{"nope.json does not exist", "--input"}},
		{"a directory", dir, []string{"is a directory", "--input"}},
		{"empty", write("empty.json", "  \n"), []string{"empty.json is empty", "one JSON object"}},
		{"not JSON", write("text.json", "connector: sqlite\n"), []string{"text.json is not valid JSON", "line 1, column 1", "one JSON object"}},
		{"cut short", write("cut.json", `{"connector": "sqlite", "connection": {`), []string{"ends in the middle of a value"}},
		{"two values", write("two.json", "{}\n{}"), []string{"more than one JSON value", "line 2, column 1"}},
		{"wrong type", write("typed.json", `{"connector": 5, "connection": {"path": "X"}}`), []string{"connector must be a string, not a JSON number"}},
		{"startProblems", write("noconn.json", `{"connector": "sqlite", "connection": {}}`), []string{"connection.path is required"}},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := mainWith(ctx, []string{"run", "--input", c.path}, &stdout, &stderr); code != 2 {
				t.Fatalf("run exited %d: %s", code, &stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("run's message %q does not say %q", &stderr, w)
				}
			}
			if !strings.Contains(stderr.String(), "nothing was started") || stdout.Len() != 0 {
				t.Errorf("run: stdout %q stderr %q", &stdout, &stderr)
			}

			stdout.Reset()
			stderr.Reset()
			if code := mainWith(ctx, []string{"run", "--json", "--input", c.path}, &stdout, &stderr); code != 2 {
				t.Fatalf("run --json exited %d: %s", code, &stderr)
			}
			var got struct {
				Error struct {
					Type     string   `json:"type"`
					Message  string   `json:"message"`
					Problems []string `json:"problems"`
				} `json:"error"`
			}
			dec := json.NewDecoder(&stdout)
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("run --json printed %q, want one JSON object (%v)", stdout.String(), err)
			}
			if got.Error.Type != "InvalidInput" || len(got.Error.Problems) == 0 || !strings.Contains(strings.Join(got.Error.Problems, " "), c.want[0]) {
				t.Errorf("run --json: %+v", got.Error)
			}
			if stderr.Len() != 0 {
				t.Errorf("run --json wrote on stderr: %q", &stderr)
			}

			stdout.Reset()
			if code := mainWith(ctx, []string{"check", "--json", "--local", "--input", c.path}, &stdout, &stderr); code != 2 {
				t.Fatalf("check exited %d: %s", code, &stderr)
			}
			var cl checklist
			if err := json.Unmarshal(stdout.Bytes(), &cl); err != nil {
				t.Fatalf("check --json printed %q: %v", stdout.String(), err)
			}
			if cl.OK || cl.Lines[0].Name != checkInput || cl.Lines[0].Status != "failed" || !strings.Contains(cl.Lines[0].Detail, c.want[0]) {
				t.Errorf("check --json: %+v", cl)
			}
		})
	}
}

// TestInputErrorsNeverQuoteValues: a file that is not JSON may be anything, such as a
// credentials file given by mistake; the message says where the JSON broke, not what the file
// holds.
func TestInputErrorsNeverQuoteValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(p, []byte("password=input-canary-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := mainWith(context.Background(), []string{"run", "--input", p}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(stderr.String(), "canary") || strings.Contains(stderr.String(), "password") {
		t.Fatalf("the message quotes the file: %s", &stderr)
	}
}
