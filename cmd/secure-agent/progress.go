package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/secure-agent/secure-agent/workflows"
)

// defaultWidth is the width a terminal is taken to have when it does not say.
const defaultWidth = 80

// progressBar shows a run's progress: redrawn in place on a terminal, cut to the terminal's
// width so it never wraps, and one full line per change otherwise (logs, CI).
type progressBar struct {
	w        io.Writer
	enabled  bool
	terminal bool
	width    int // columns of the terminal; 0: lines are not cut
	start    time.Time
	last     string
	drawn    bool
}

func newProgressBar(w io.Writer, enabled bool) *progressBar {
	b := &progressBar{w: w, enabled: enabled, start: time.Now()}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		b.terminal, b.width = true, defaultWidth
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			b.width = cols
		}
	}
	return b
}

// update draws the phase, a bar of schemas done, tables and other entity counts, and the rate.
func (b *progressBar) update(p workflows.Progress) {
	if !b.enabled {
		return
	}
	line := renderProgress(p, time.Since(b.start))
	if b.width > 0 {
		line = truncate(line, b.width-1) // the last column would make some terminals wrap
	}
	if line == b.last {
		return
	}
	b.last = line
	if b.terminal {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, line)
}

// finish ends the in-place line so what follows starts on its own.
func (b *progressBar) finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// doneProgress is the progress line of a finished run, drawn last: phase done, every schema
// done, the summary's counts.
func doneProgress(sum workflows.Summary) workflows.Progress {
	return workflows.Progress{Phase: workflows.PhaseDone, SchemasDone: sum.Schemas, SchemasTotal: sum.Schemas,
		Counts: sum.Counts, LeaseRenewals: sum.LeaseRenewals, WorkerBusyWaits: sum.WorkerBusyWaits,
		PartsReextracted: sum.PartsReextracted, Rotations: sum.Rotations}
}

// renderProgress formats one progress line, e.g.
// "extracting [########------------]  20/51 schemas  2000 tables  columns=40000  12345 entities/s".
// Tables and the other counts grow as extraction batches finish (see workflows.Progress).
func renderProgress(p workflows.Progress, elapsed time.Duration) string {
	const width = 20
	filled := 0
	if p.SchemasTotal > 0 {
		filled = width * p.SchemasDone / p.SchemasTotal
	}
	var total int64
	for _, n := range p.Counts {
		total += n
	}
	line := fmt.Sprintf("%-10s [%s%s] %3d/%d schemas  %d tables", p.Phase, strings.Repeat("#", filled), strings.Repeat("-", width-filled),
		p.SchemasDone, p.SchemasTotal, p.Counts["tables"])
	others := maps.Clone(p.Counts)
	delete(others, "tables")
	if counts := formatCounts(others); counts != "" {
		line += "  " + counts
	}
	if secs := elapsed.Seconds(); total > 0 && secs > 0 {
		line += fmt.Sprintf("  %.0f entities/s", float64(total)/secs)
	}
	if p.LeaseRenewals > 0 {
		line += fmt.Sprintf("  (credentials resolved again %d×)", p.LeaseRenewals)
	}
	if p.Rotations > 0 {
		line += fmt.Sprintf("  (secrets rotated %d×)", p.Rotations)
	}
	if p.WorkerBusyWaits > 0 {
		line += fmt.Sprintf("  (waited %d× for a busy worker)", p.WorkerBusyWaits)
	}
	if p.PartsReextracted > 0 {
		line += fmt.Sprintf("  (%d batches extracted again)", p.PartsReextracted)
	}
	return line
}

// truncate cuts line to at most width characters, ending with "…" when it cut.
func truncate(line string, width int) string {
	if width < 1 || utf8.RuneCountInString(line) <= width {
		return line
	}
	runes := []rune(line)
	return string(runes[:width-1]) + "…"
}

func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
