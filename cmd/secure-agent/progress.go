package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/secure-agent/secure-agent/workflows"
)

// progressBar shows a run's progress: redrawn in place on a terminal, one line per change
// otherwise (logs, CI).
type progressBar struct {
	w        io.Writer
	enabled  bool
	terminal bool
	start    time.Time
	last     string
	drawn    bool
}

func newProgressBar(w io.Writer, enabled bool) *progressBar {
	return &progressBar{w: w, enabled: enabled, terminal: isTerminal(w), start: time.Now()}
}

// update draws the phase, a bar of schemas done, entity counts and the rate.
func (b *progressBar) update(p workflows.Progress) {
	if !b.enabled {
		return
	}
	line := renderProgress(p, time.Since(b.start))
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

// renderProgress formats one progress line, e.g.
// "extracting [########------------]  20/51 schemas  columns=40000 tables=2000  12345/s".
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
	line := fmt.Sprintf("%-10s [%s%s] %3d/%d schemas", p.Phase, strings.Repeat("#", filled), strings.Repeat("-", width-filled), p.SchemasDone, p.SchemasTotal)
	if counts := formatCounts(p.Counts); counts != "" {
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
