package secrets

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Source is a configured store together with the identity of its configuration.
type Source struct {
	// Name is the store type: "aws", "azure", "gcp", "env" or "custom".
	Name string
	// Key identifies the store's configuration (type, region, auth method, vault, URL...): two
	// Sources with equal Keys read the same secrets with the same rights. It keys the cache and
	// the collapsing of concurrent fetches, so it must include everything that changes either.
	Key   string
	Store Store
}

// ResolverOptions configure a Resolver. The zero value is valid: no cache, no logging.
type ResolverOptions struct {
	// CacheTTL enables the cache when positive: a fetched secret is reused for this long. Off by
	// default, because a rotated secret should be read at once.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached secrets (default 256 when the cache is on).
	CacheSize int
	// FetchTimeout bounds a store call whose caller has no deadline (default 1 minute).
	FetchTimeout time.Duration
	// Logger receives one debug line per secret access (store, reference, version, outcome),
	// never a value. Nil discards.
	Logger *slog.Logger
	// OnFetch, if set, is called once per secret access, for audit and metrics.
	OnFetch func(FetchEvent)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// FetchEvent describes one secret access. It holds no value.
type FetchEvent struct {
	Store   string
	Ref     Ref
	Version string
	// Kind is the failure kind, empty on success.
	Kind Kind
	// Cached reports a cache hit; Shared reports a result shared with a concurrent caller.
	Cached, Shared bool
	Duration       time.Duration
}

// Resolver resolves requests against stores. It fetches each distinct secret of a resolution
// once, collapses concurrent fetches of the same secret across callers into one store call, and
// optionally caches fetched secrets. It is safe for concurrent use.
type Resolver struct {
	opts    ResolverOptions
	cache   *cache // nil when caching is off
	flights flightGroup
	// unshared numbers the reads of leasing stores, each a flight of its own.
	unshared atomic.Uint64
}

// NewResolver returns a Resolver with the given options.
func NewResolver(opts ResolverOptions) *Resolver {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{opts: opts}
	if opts.CacheTTL > 0 {
		size := opts.CacheSize
		if size <= 0 {
			size = 256
		}
		r.cache = newCache(opts.CacheTTL, size, opts.Now)
	}
	return r
}

// Purge zeroes and drops every cached secret (for example on shutdown), or only the expired
// ones when expiredOnly is set.
func (r *Resolver) Purge(expiredOnly bool) {
	if r.cache != nil {
		r.cache.purge(expiredOnly)
	}
}

// CachedSecrets returns the number of secrets in the cache.
func (r *Resolver) CachedSecrets() int {
	if r.cache == nil {
		return 0
	}
	return r.cache.len()
}

// Fetch returns one secret from src, through the cache and the collapsing of concurrent fetches.
// The caller owns the result and must Zero it.
func (r *Resolver) Fetch(ctx context.Context, src Source, ref Ref) (*Secret, error) {
	got, errs := r.fetchAll(ctx, src, []Ref{ref}, false)
	if err := errs[ref]; err != nil {
		return nil, err
	}
	return got[ref], nil
}

// fetchAll fetches each of refs (distinct) once. Every ref ends up in exactly one of the maps.
func (r *Resolver) fetchAll(ctx context.Context, src Source, refs []Ref, fresh bool) (map[Ref]*Secret, map[Ref]error) {
	got := make(map[Ref]*Secret, len(refs))
	errs := make(map[Ref]error)
	type joined struct {
		ref    Ref
		f      *flight
		leader bool
		start  time.Time
	}
	var waits []joined
	var leads []Ref
	// A store that leases dynamic credentials makes new ones at each read, for one run, revoked
	// when that run's lease ends: its secrets are neither cached nor shared between callers.
	_, leasing := src.Store.(LeasingStore)
	for _, ref := range refs {
		key := src.Key + "\x00" + ref.key()
		if leasing {
			key += "\x00" + strconv.FormatUint(r.unshared.Add(1), 10)
		}
		start := r.opts.Now()
		if r.cache != nil && !fresh && !leasing {
			if s := r.cache.get(key); s != nil {
				got[ref] = s
				r.observe(FetchEvent{Store: src.Name, Ref: ref, Version: s.Version, Cached: true})
				continue
			}
		}
		f, leader := r.flights.join(key)
		waits = append(waits, joined{ref, f, leader, start})
		if leader {
			leads = append(leads, ref)
		}
	}
	if len(leads) > 0 {
		flights := make(map[Ref]*flight, len(leads))
		for _, w := range waits {
			if w.leader {
				flights[w.ref] = w.f
			}
		}
		r.lead(ctx, src, leads, flights)
	}
	for _, w := range waits {
		s, err := r.flights.wait(ctx, w.f)
		if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && KindOf(err) == "" {
			err = ContextError(src.Name, w.ref, err)
		}
		ev := FetchEvent{Store: src.Name, Ref: w.ref, Shared: !w.leader, Duration: r.opts.Now().Sub(w.start)}
		if err != nil {
			ev.Kind = KindOf(err)
			if ev.Kind == "" {
				ev.Kind = StoreUnavailable
				err = &Error{Kind: StoreUnavailable, Store: src.Name, Ref: w.ref.String(), Msg: "the store failed in an unexpected way", Cause: err}
			}
			errs[w.ref] = err
		} else {
			ev.Version = s.Version
			got[w.ref] = s
		}
		r.observe(ev)
	}
	return got, errs
}

// lead starts the store calls for the refs this caller leads, in the background, each finishing
// its flight. The calls run under a context detached from the leader's cancellation but bounded
// by its deadline, so a leader that gives up does not fail the callers sharing its fetch.
func (r *Resolver) lead(ctx context.Context, src Source, refs []Ref, flights map[Ref]*flight) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = r.opts.Now().Add(r.opts.FetchTimeout)
	}
	fctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	finish := func(ref Ref, s *Secret, err error) {
		if err == nil && s == nil {
			err = &Error{Kind: StoreUnavailable, Store: src.Name, Ref: ref.String(), Msg: "the store returned no secret and no error"}
		}
		// A version that repeats the secret is refused here, before anything (the cache, the
		// fetch log line, the callers) sees it.
		if err == nil {
			if verr := checkVersion(src.Name, ref, s); verr != nil {
				s.Zero()
				s, err = nil, verr
			}
		}
		if err == nil && r.cache != nil && s.Lease == nil {
			r.cache.put(src.Key+"\x00"+ref.key(), s)
		}
		r.flights.finish(flights[ref].key, flights[ref], s, err)
	}
	if batch, ok := src.Store.(BatchStore); ok && len(refs) > 1 {
		go func() {
			defer cancel()
			sctx, span := startStoreSpan(fctx, src.Name, "batch", len(refs))
			results, err := fetchBatchSafely(sctx, src, batch, refs)
			byRef := make(map[Ref]Result, len(results))
			for _, res := range results {
				byRef[res.Ref] = res
			}
			endStoreSpan(span, batchFailures(refs, byRef, err))
			for _, ref := range refs {
				res, found := byRef[ref]
				switch {
				case err != nil:
					finish(ref, nil, err)
				case !found:
					finish(ref, nil, &Error{Kind: StoreUnavailable, Store: src.Name, Ref: ref.String(), Msg: "the batch answer left this secret out; it will be asked again"})
				default:
					finish(ref, res.Secret, res.Err)
				}
			}
		}()
		return
	}
	var wg sync.WaitGroup
	for _, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, span := startStoreSpan(fctx, src.Name, "fetch", 1)
			s, err := fetchSafely(sctx, src, ref)
			endStoreSpan(span, batchFailures([]Ref{ref}, map[Ref]Result{ref: {Ref: ref, Secret: s, Err: err}}, nil))
			finish(ref, s, err)
		}()
	}
	go func() { wg.Wait(); cancel() }()
}

func (r *Resolver) observe(ev FetchEvent) {
	outcome := "ok"
	if ev.Kind != "" {
		outcome = string(ev.Kind)
	}
	r.opts.Logger.Debug("secret access",
		slog.String("store", ev.Store), slog.String("secret", ev.Ref.String()),
		slog.String("version", ev.Version), slog.String("outcome", outcome),
		slog.Bool("cached", ev.Cached), slog.Bool("shared", ev.Shared), slog.Duration("duration", ev.Duration))
	if r.opts.OnFetch != nil {
		r.opts.OnFetch(ev)
	}
}

// fetchSafely calls the store, turning a panic in a backend into a classified error: a store bug
// must not take the worker down, and the panic value (which might hold anything) is not shown.
func fetchSafely(ctx context.Context, src Source, ref Ref) (s *Secret, err error) {
	defer func() {
		if recover() != nil {
			s, err = nil, storePanicked(src, ref)
		}
	}()
	return src.Store.Fetch(ctx, ref)
}

func fetchBatchSafely(ctx context.Context, src Source, batch BatchStore, refs []Ref) (res []Result, err error) {
	defer func() {
		if recover() != nil {
			res, err = nil, storePanicked(src, Ref{})
		}
	}()
	return batch.FetchBatch(ctx, refs)
}

func storePanicked(src Source, ref Ref) error {
	return &Error{Kind: StoreUnavailable, Store: src.Name, Ref: ref.String(),
		Msg: "the store client panicked; this is a bug in the agent, please report it"}
}
