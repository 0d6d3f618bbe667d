package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/secure-agent/secure-agent/workflows"
)

// TestProgressLineFitsTheTerminal draws a long line on a 60-column terminal: every redraw fits in
// 59 columns (the last would wrap on some terminals), tables come first among the counts, and
// the run ends with a line whose phase is done.
func TestProgressLineFitsTheTerminal(t *testing.T) {
	var out bytes.Buffer
	bar := &progressBar{w: &out, enabled: true, terminal: true, width: 60, start: time.Now().Add(-time.Second)}
	bar.update(workflows.Progress{Phase: workflows.PhaseExtracting, SchemasDone: 0, SchemasTotal: 1, Counts: map[string]int64{}})
	bar.update(workflows.Progress{Phase: workflows.PhaseFinalizing, SchemasDone: 1, SchemasTotal: 1, LeaseRenewals: 2,
		Counts: map[string]int64{"tables": 7, "columns": 31, "indexes": 4}})
	bar.update(doneProgress(workflows.Summary{Schemas: 1, Counts: map[string]int64{"tables": 7, "columns": 31}}))
	bar.finish()
	draws := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\r\033[K")[1:]
	if len(draws) != 3 {
		t.Fatalf("%d redraws, want 3: %q", len(draws), out.String())
	}
	for _, d := range draws {
		if n := utf8.RuneCountInString(d); n > 59 {
			t.Errorf("a %d-column line on a 60-column terminal: %q", n, d)
		}
	}
	if !strings.HasPrefix(draws[1], "finalizing [####################]   1/1 schemas  7 tables") || !strings.HasSuffix(draws[1], "…") {
		t.Errorf("a long line is not cut with …: %q", draws[1])
	}
	if last := draws[2]; !strings.HasPrefix(last, "done ") || !strings.Contains(last, "1/1 schemas  7 tables") {
		t.Errorf("the last line is %q, want phase done", last)
	}
	if !strings.HasSuffix(out.String(), "\n") {
		t.Error("finish did not end the in-place line")
	}

	// Not a terminal (a log): whole lines, never cut, tables counted.
	out.Reset()
	bar = &progressBar{w: &out, enabled: true, start: time.Now()}
	bar.update(workflows.Progress{Phase: workflows.PhaseFinalizing, SchemasDone: 1, SchemasTotal: 1, LeaseRenewals: 2,
		Counts: map[string]int64{"tables": 7, "columns": 31, "indexes": 4}})
	if line := out.String(); !strings.Contains(line, "1/1 schemas  7 tables  columns=31 indexes=4") || !strings.Contains(line, "resolved again 2×") {
		t.Errorf("log line %q", line)
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in    string
		width int
		want  string
	}{
		{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"a×b×c", 4, "a×b…"}, {"abc", 0, "abc"},
	} {
		if got := truncate(c.in, c.width); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}
