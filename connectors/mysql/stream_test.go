package mysql

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

const (
	wideTables  = 100
	wideColumns = 150
	commentSize = 300 // bytes of comment per column: 4.5 MB over the whole catalog (a table's definition holds at most 64 KB)
)

// wide builds a catalog of wideTables*wideColumns columns, each with a commentSize-byte comment.
func wide(t *testing.T) *fixture {
	f := newFixture(t, []string{"_wide"})
	db := quoteIdent(f.db("_wide"))
	for i := range wideTables {
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE TABLE %s.t%02d (", db, i)
		for j := range wideColumns {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "c%04d INT COMMENT '%04d%s'", j, j, strings.Repeat("m", commentSize-4))
		}
		b.WriteString(")")
		exec(t, b.String())
	}
	f.grantRead(t, "_wide")
	return f
}

// funcWriter hands each entity to a function.
type funcWriter func(connectors.Entity) error

func (f funcWriter) Write(e connectors.Entity) error { return f(e) }

// TestStreamingAndCancellation runs alone (not in parallel), so that the heap it measures is
// its own. It checks that columns reach the writer while the catalog is still being read
// (the live heap stays far below the catalog's size), that a cancellation in the middle of the
// stream stops Extract at once, that a deadline during the catalog queries stops it within
// seconds, and that the Source works again afterwards.
func TestStreamingAndCancellation(t *testing.T) {
	f := wide(t)
	s := f.open(t)
	schema := f.db("_wide")
	catalogBytes := int64(wideTables * wideColumns * commentSize)

	// Streaming: measure the live heap when three quarters of the columns have been written.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var (
		columns    int
		growth     int64
		firstAt    time.Duration
		start      = time.Now()
		measuredAt = wideTables * wideColumns * 3 / 4
	)
	err := s.Extract(context.Background(), []string{schema}, connectors.Filters{}, funcWriter(func(e connectors.Entity) error {
		c, ok := e.(connectors.Column)
		if !ok {
			return nil
		}
		columns++
		if columns == 1 {
			firstAt = time.Since(start)
		}
		if len(c.Comment) != commentSize {
			return fmt.Errorf("column %s.%s: comment of %d bytes", c.Table, c.Name, len(c.Comment))
		}
		if columns == measuredAt {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			growth = int64(m.HeapAlloc) - int64(base.HeapAlloc)
		}
		return nil
	}))
	total := time.Since(start)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if columns != wideTables*wideColumns {
		t.Fatalf("%d columns, want %d", columns, wideTables*wideColumns)
	}
	t.Logf("%d columns (%d MB of comments) in %s, the first after %s; live heap growth at column %d: %d KB",
		columns, catalogBytes>>20, total.Round(time.Millisecond), firstAt.Round(time.Millisecond), measuredAt, growth>>10)
	if growth > catalogBytes/4 {
		t.Errorf("the live heap grew by %d bytes while streaming a %d-byte catalog: columns are being buffered", growth, catalogBytes)
	}

	// Cancellation in the middle of the columns.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var afterCancel int
	columns = 0
	start = time.Now()
	err = s.Extract(ctx, []string{schema}, connectors.Filters{}, funcWriter(func(e connectors.Entity) error {
		if _, ok := e.(connectors.Column); !ok {
			return nil
		}
		columns++
		if columns == 1000 {
			cancel()
		} else if columns > 1000 {
			afterCancel++
		}
		return nil
	}))
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Extract took %s to stop after a cancellation", d)
	}
	if !errors.Is(err, context.Canceled) || secrets.KindOf(err) != secrets.SourceUnavailable {
		t.Errorf("cancelled Extract: %v", err)
	}
	if afterCancel > 0 {
		t.Errorf("%d columns written after the cancellation", afterCancel)
	}

	// A deadline while the server is still answering.
	for _, d := range []time.Duration{time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		start = time.Now()
		err = s.Extract(ctx, []string{schema}, connectors.Filters{}, funcWriter(func(connectors.Entity) error { return nil }))
		cancel()
		if took := time.Since(start); took > d+3*time.Second {
			t.Errorf("deadline %s: Extract returned after %s", d, took)
		}
		if err == nil {
			continue // the server was quicker than the deadline
		}
		if !errors.Is(err, context.DeadlineExceeded) || secrets.KindOf(err) != secrets.SourceUnavailable {
			t.Errorf("deadline %s: %v", d, err)
		}
	}

	// The Source recovers: a new connection replaces the one the cancellation closed.
	if _, err := s.Preflight(context.Background()); err != nil {
		t.Errorf("Preflight after cancellations: %v", err)
	}

	// A writer's error stops Extract and comes back as it is.
	stop := errors.New("writer full")
	err = s.Extract(context.Background(), []string{schema}, connectors.Filters{}, funcWriter(func(e connectors.Entity) error {
		if _, ok := e.(connectors.Column); ok {
			return stop
		}
		return nil
	}))
	if err != stop {
		t.Errorf("writer error: got %v", err)
	}
}
