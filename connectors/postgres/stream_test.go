package postgres

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

const (
	wideTables  = 40
	wideColumns = 1000
	wideDefault = 800 // bytes of each column's default: about 32 MB of column rows in all
)

// TestStreamingAndCancellation extracts a schema whose columns are far larger than the socket
// buffers between client and server, and shows that entities are written while the server is
// still sending (it waits in ClientWrite), and that cancellation stops Extract within seconds,
// both between rows and while the server is busy with a query.
func TestStreamingAndCancellation(t *testing.T) {
	t.Parallel()
	db := newTestDB(t, `DO $$
		DECLARE cols text;
		BEGIN
			SELECT string_agg(format('c%s text DEFAULT %L', i, repeat('x', `+itoa(wideDefault)+`)), ', ')
				INTO cols FROM generate_series(1, `+itoa(wideColumns)+`) AS i;
			FOR t IN 1..`+itoa(wideTables)+` LOOP
				EXECUTE format('CREATE TABLE public.wide_%s (%s)', t, cols);
			END LOOP;
		END $$`)
	s := db.open(t)
	ctx := context.Background()

	t.Run("streams", func(t *testing.T) {
		var columns, tables int
		sawClientWrite := false
		start := time.Now()
		var firstColumn time.Duration
		err := s.Extract(ctx, []string{"public"}, connectors.Filters{}, writerFunc(func(e connectors.Entity) error {
			switch v := e.(type) {
			case connectors.Table:
				tables++
			case connectors.Column:
				columns++
				if len(v.Default) < wideDefault {
					t.Fatalf("column %s.%s default %q", v.Table, v.Name, v.Default)
				}
				if columns == 1 {
					firstColumn = time.Since(start)
					// The client has read one row. Were the rows loaded into memory first, the
					// server would be done; streaming, it is blocked sending the rest.
					sawClientWrite = waitForClientWrite(t, db)
				}
			}
			return nil
		}))
		if err != nil {
			t.Fatalf("Extract: %v", err)
		}
		if tables != wideTables || columns != wideTables*wideColumns {
			t.Errorf("%d tables, %d columns", tables, columns)
		}
		if !sawClientWrite {
			t.Errorf("the server never waited to send: rows were not streamed")
		}
		t.Logf("first column after %s; %d columns in %s", firstColumn, columns, time.Since(start))
	})

	t.Run("cancel between rows", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var cancelled time.Time
		n := 0
		err := s.Extract(ctx, []string{"public"}, connectors.Filters{}, writerFunc(func(e connectors.Entity) error {
			if _, ok := e.(connectors.Column); ok {
				if n++; n == 100 {
					cancelled = time.Now()
					cancel()
				}
			}
			return nil
		}))
		wantKind(t, err, secrets.SourceUnavailable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v does not wrap context.Canceled", err)
		}
		if d := time.Since(cancelled); d > 3*time.Second || n > 200 {
			t.Errorf("Extract returned %s and %d columns after the cancellation", d, n-100)
		}
		// The connection survives a cancelled query.
		if _, err := s.Preflight(context.Background()); err != nil {
			t.Errorf("Preflight after a cancellation: %v", err)
		}
	})

	t.Run("cancel while the server works", func(t *testing.T) {
		// Hold a lock that the tables query (sizing wide_1) must wait for.
		locker := db.adminConn(t)
		defer func() { _ = locker.Close(context.Background()) }()
		tx, err := locker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		if _, err := tx.Exec(ctx, `LOCK TABLE public.wide_1 IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want error
		}{
			{"cancel", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(500*time.Millisecond, cancel)
				return ctx, cancel
			}, context.Canceled},
			{"deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 500*time.Millisecond)
			}, context.DeadlineExceeded},
		} {
			ctx, cancel := tc.ctx()
			start := time.Now()
			err := s.Extract(ctx, []string{"public"}, connectors.Filters{}, &collector{})
			elapsed := time.Since(start)
			cancel()
			wantKind(t, err, secrets.SourceUnavailable)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v does not wrap %v", tc.name, err, tc.want)
			}
			if elapsed < 400*time.Millisecond || elapsed > 3500*time.Millisecond {
				t.Errorf("%s: Extract returned after %s, want soon after 500ms", tc.name, elapsed)
			}
			if _, err := s.Schemas(context.Background(), connectors.Filters{}); err != nil {
				t.Errorf("%s: Schemas after the cancellation: %v", tc.name, err)
			}
		}
	})
}

// waitForClientWrite polls pg_stat_activity until the role's backend waits to send (ClientWrite).
func waitForClientWrite(t *testing.T, db *testDB) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := db.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE usename = $1 AND state = 'active' AND wait_event = 'ClientWrite'`, db.role).Scan(&n)
		if err != nil {
			t.Errorf("pg_stat_activity: %v", err)
			return false
		}
		if n > 0 {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }
