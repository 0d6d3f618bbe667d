package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRecordWritesOneJSONLinePerEvent(t *testing.T) {
	var b bytes.Buffer
	l := New(&b)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Record(Event{Event: SecretRead, WorkflowID: "wf", RunID: "r", Store: "aws", Secret: "prod/db",
				Keys: []string{"password"}, Fields: []string{"password"}, Version: "v" + string(rune('a'+i%26)), Outcome: "ok"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, line := range lines {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if e.Time.IsZero() || e.Event != SecretRead || e.Secret != "prod/db" || e.Outcome != "ok" {
			t.Fatalf("event = %+v", e)
		}
	}
}

func TestOpenDestinations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Record(Event{Event: PolicyDenied, Outcome: "PolicyDenied", Reason: "rule"})
	_ = l.Close()
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("audit file: %v %v", info, err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"event":"policy.denied"`) {
		t.Fatalf("file = %s", data)
	}
	off, err := Open("off")
	if err != nil || off != nil {
		t.Fatalf("off: %v %v", off, err)
	}
	if err := off.Record(Event{}); err != nil { // nil sinks discard
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "dir", "a.jsonl")); err == nil {
		t.Fatal("an unwritable path was accepted")
	}
}
