package activities

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeepAliveBeatsUntilStopped: an extraction that is busy without writing rows (a long catalog
// query) still heartbeats, so the 20 s heartbeat timeout only fires for a dead worker; and after
// stop no liveness beat can follow (and overwrite) the commit heartbeat.
func TestKeepAliveBeatsUntilStopped(t *testing.T) {
	var beats atomic.Int64
	stop := keepAlive(context.Background(), 10*time.Millisecond, func() { beats.Add(1) })
	time.Sleep(75 * time.Millisecond) // a query that returns no row yet
	stop()
	n := beats.Load()
	if n < 4 {
		t.Errorf("%d beats in 75 ms at a 10 ms interval, want at least 4", n)
	}
	time.Sleep(50 * time.Millisecond)
	if after := beats.Load(); after != n {
		t.Errorf("%d beats after stop returned", after-n)
	}
}

// TestKeepAliveEndsWithContext: a cancelled activity stops beating without stop being called.
func TestKeepAliveEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var beats atomic.Int64
	stop := keepAlive(ctx, 10*time.Millisecond, func() { beats.Add(1) })
	defer stop()
	cancel()
	time.Sleep(30 * time.Millisecond)
	n := beats.Load()
	time.Sleep(50 * time.Millisecond)
	if after := beats.Load(); after != n {
		t.Errorf("%d beats after the context ended", after-n)
	}
}
