package secrets

import (
	"context"
	"sync"
)

// flightGroup collapses concurrent fetches of the same secret into one store call. Unlike
// x/sync/singleflight, every caller gets its own copy of the value, the shared original is zeroed
// when the last caller has taken its copy, and a caller whose context ends stops waiting without
// disturbing the others.
type flightGroup struct {
	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	key     string // what the flight is joined under
	done    chan struct{}
	secret  *Secret
	err     error
	holders int // the fetch plus callers that have not yet taken their copy; guarded by flightGroup.mu
}

// join registers the caller for key. The first caller is the leader and must start the fetch,
// which ends with finish.
func (g *flightGroup) join(key string) (f *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.flights == nil {
		g.flights = make(map[string]*flight)
	}
	if f, ok := g.flights[key]; ok {
		f.holders++
		return f, false
	}
	f = &flight{key: key, done: make(chan struct{}), holders: 2} // the leader and the fetch it starts
	g.flights[key] = f
	return f, true
}

// finish publishes the outcome of the fetch, wakes every waiter and drops the fetch's hold.
// Callers that join key after this start a new flight.
func (g *flightGroup) finish(key string, f *flight, s *Secret, err error) {
	g.mu.Lock()
	delete(g.flights, key)
	f.secret, f.err = s, err
	g.mu.Unlock()
	close(f.done)
	g.release(f)
}

// wait blocks until the flight finishes or ctx ends, and returns the caller's own copy.
func (g *flightGroup) wait(ctx context.Context, f *flight) (*Secret, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		g.release(f)
		return nil, ctx.Err()
	}
	var s *Secret
	if f.err == nil && f.secret != nil {
		s = copySecret(f.secret)
	}
	err := f.err
	g.release(f)
	return s, err
}

// release drops the caller's hold; the last holder of a finished flight zeroes the original.
func (g *flightGroup) release(f *flight) {
	g.mu.Lock()
	f.holders--
	last := f.holders == 0
	g.mu.Unlock()
	if last {
		f.secret.Zero() // the fetch holds a count until it finishes, so f.secret is final here
	}
}
