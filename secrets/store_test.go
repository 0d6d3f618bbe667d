package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// memStore is a Store over a map, with a call counter, an optional gate that holds fetches until
// released, and injectable failures. It stands in for a remote store at the interface boundary;
// the backends have their own wire-protocol tests.
type memStore struct {
	mu      sync.Mutex
	values  map[string]string // path -> value
	fail    map[string]error  // path -> error to return
	calls   atomic.Int64
	batches atomic.Int64
	gate    chan struct{} // if non-nil, Fetch waits for it to close
}

func newMem(values map[string]string) *memStore {
	return &memStore{values: values, fail: map[string]error{}}
}

func (m *memStore) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	m.calls.Add(1)
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return nil, secrets.ContextError("mem", ref, ctx.Err())
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[ref.Path]; err != nil {
		return nil, err
	}
	v, ok := m.values[ref.Path]
	if !ok {
		return nil, &secrets.Error{Kind: secrets.SecretNotFound, Store: "mem", Ref: ref.String(), Msg: "no such secret"}
	}
	return &secrets.Secret{Value: secrets.Value(v), Version: "v1-" + ref.Path}, nil
}

// batchMem adds FetchBatch to memStore.
type batchMem struct{ *memStore }

func (b batchMem) FetchBatch(ctx context.Context, refs []secrets.Ref) ([]secrets.Result, error) {
	b.batches.Add(1)
	out := make([]secrets.Result, len(refs))
	for i, ref := range refs {
		s, err := b.memStore.Fetch(ctx, ref)
		out[i] = secrets.Result{Ref: ref, Secret: s, Err: err}
	}
	return out, nil
}

func src(store secrets.Store) secrets.Source {
	return secrets.Source{Name: "mem", Key: "mem:test", Store: store}
}

func value(t *testing.T, res *secrets.Resolution, field string) string {
	t.Helper()
	v, ok := res.Value(field)
	if !ok {
		t.Fatalf("field %q missing from resolution", field)
	}
	return v.Reveal()
}

func TestValueIsRedactedInEveryForm(t *testing.T) {
	const canary = "canary-7f3a9c"
	v := secrets.Value(canary)
	forms := []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", v, v, v, v, v, v, v, v),
		fmt.Sprintf("%v", secrets.Secret{Value: v}), fmt.Sprintf("%+v", &secrets.Secret{Value: v}),
		fmt.Sprintf("%#v", secrets.Secret{Value: v}),
	}
	js, err := json.Marshal(map[string]any{"v": v, "s": secrets.Secret{Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	forms = append(forms, string(js))
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "value", v, "secret", secrets.Secret{Value: v})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "value", v)
	forms = append(forms, logs.String())
	for _, f := range forms {
		if strings.Contains(f, canary) || strings.Contains(f, fmt.Sprintf("%x", canary)) {
			t.Errorf("value leaked in %q", f)
		}
		if !strings.Contains(f, "REDACTED") {
			t.Errorf("form %q does not show the redaction", f)
		}
	}
	if v.Reveal() != canary {
		t.Fatalf("Reveal = %q", v.Reveal())
	}
	v.Zero()
	if strings.Trim(string(v), "\x00") != "" {
		t.Fatalf("Zero left %q", string(v))
	}
}

func TestResolveJSONObjectKeysAndLiterals(t *testing.T) {
	store := newMem(map[string]string{
		"prod/db": `{"username":"svc","password":"p\u00e4ss\"word\n","port":5432,"tls":true,"extra":{"a":[1, 2]}}`,
	})
	r := secrets.NewResolver(secrets.ResolverOptions{})
	res, err := r.Resolve(context.Background(), src(store), secrets.Request{
		Secret: &secrets.Ref{Path: "prod/db"},
		Fields: []secrets.Field{
			{Name: "host", Value: "db.internal"},
			{Name: "user", Value: "username"},
			{Name: "password", Value: "password", Sensitive: true},
			{Name: "port", Value: "port"},
			{Name: "tls", Value: "tls"},
			{Name: "extra", Value: "extra"},
			{Name: "database", Value: "analytics"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Zero()
	want := map[string]string{
		"host": "db.internal", "user": "svc", "password": "päss\"word\n", "port": "5432",
		"tls": "true", "extra": `{"a":[1,2]}`, "database": "analytics",
	}
	for f, w := range want {
		if got := value(t, res, f); got != w {
			t.Errorf("%s = %q, want %q", f, got, w)
		}
	}
	for _, f := range res.Fields {
		fromSecret := f.Field != "host" && f.Field != "database"
		if f.FromSecret != fromSecret {
			t.Errorf("%s FromSecret = %v, want %v", f.Field, f.FromSecret, fromSecret)
		}
	}
	if got := store.calls.Load(); got != 1 {
		t.Errorf("store calls = %d, want 1 for five fields sharing one secret", got)
	}
	if len(res.Versions) != 1 || res.Versions[0].Version != "v1-prod/db" {
		t.Errorf("versions = %+v", res.Versions)
	}
	if got := res.FieldNames(); strings.Join(got, ",") != "host,user,password,port,tls,extra,database" {
		t.Errorf("field order = %v", got)
	}
}

func TestResolveSingleStringSecret(t *testing.T) {
	store := newMem(map[string]string{"prod/db/password": "s3cr3t-single", "token": "{not json"})
	r := secrets.NewResolver(secrets.ResolverOptions{})
	res, err := r.Resolve(context.Background(), src(store), secrets.Request{
		Secret: &secrets.Ref{Path: "prod/db/password"},
		Fields: []secrets.Field{
			{Name: "password", Value: "password", Sensitive: true}, // last segment
			{Name: "again", Value: "prod/db/password"},             // whole path
			{Name: "token", Secret: &secrets.Ref{Path: "token"}},   // own secret, empty value
			{Name: "user", Value: "reader"},                        // literal
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Zero()
	for f, w := range map[string]string{"password": "s3cr3t-single", "again": "s3cr3t-single", "token": "{not json", "user": "reader"} {
		if got := value(t, res, f); got != w {
			t.Errorf("%s = %q, want %q", f, got, w)
		}
	}
	if got := store.calls.Load(); got != 2 {
		t.Errorf("store calls = %d, want 2 (two distinct secrets)", got)
	}
}

func TestResolveRefusesSensitiveLiterals(t *testing.T) {
	store := newMem(map[string]string{"obj": `{"user":"u"}`, "single": "x"})
	r := secrets.NewResolver(secrets.ResolverOptions{})
	ctx := context.Background()

	// No secret at all: a sensitive literal is InvalidInput, and the store is never asked.
	_, err := r.Resolve(ctx, src(store), secrets.Request{Fields: []secrets.Field{
		{Name: "password", Value: "hunter2-literal", Sensitive: true},
		{Name: "key", Value: "other-literal", Sensitive: true},
	}})
	if !errors.Is(err, secrets.InvalidInput) || secrets.Retryable(err) {
		t.Fatalf("err = %v, want final InvalidInput", err)
	}
	for _, want := range []string{`"password"`, `"key"`, "must come from a secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2-literal") {
		t.Errorf("error repeats the literal: %v", err)
	}
	if store.calls.Load() != 0 {
		t.Errorf("store was called for an invalid request")
	}

	// A JSON-object secret without that key: SecretKeyNotFound naming the keys it has, and
	// never the value given (for a sensitive field it may be the password, typed by mistake).
	_, err = r.Resolve(ctx, src(store), secrets.Request{Secret: &secrets.Ref{Path: "obj"},
		Fields: []secrets.Field{{Name: "password", Value: "hunter2-typed", Sensitive: true}}})
	if !errors.Is(err, secrets.SecretKeyNotFound) || !strings.Contains(err.Error(), `"user"`) || strings.Contains(err.Error(), "hunter2-typed") {
		t.Fatalf("err = %v, want SecretKeyNotFound listing the keys, without the value given", err)
	}

	// A single-string secret not named by the field.
	_, err = r.Resolve(ctx, src(store), secrets.Request{Secret: &secrets.Ref{Path: "single"},
		Fields: []secrets.Field{{Name: "password", Value: "nope", Sensitive: true}}})
	if !errors.Is(err, secrets.SecretKeyNotFound) || !strings.Contains(err.Error(), "single value") {
		t.Fatalf("err = %v, want SecretKeyNotFound explaining single-value secrets", err)
	}

	// The development-only policy lets literals through.
	res, err := r.Resolve(ctx, src(store), secrets.Request{AllowSensitiveLiterals: true,
		Fields: []secrets.Field{{Name: "password", Value: "dev-literal", Sensitive: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, res, "password"); got != "dev-literal" {
		t.Fatalf("password = %q", got)
	}
}

func TestResolveReportsEveryProblemAtOnce(t *testing.T) {
	store := newMem(map[string]string{"a": `{"k":"v"}`})
	store.fail["down"] = &secrets.Error{Kind: secrets.StoreUnavailable, Store: "mem", Ref: "down", Msg: "down"}
	r := secrets.NewResolver(secrets.ResolverOptions{})
	_, err := r.Resolve(context.Background(), src(store), secrets.Request{
		Secret: &secrets.Ref{Path: "a"},
		Fields: []secrets.Field{
			{Name: "x", Value: "missing-key", Sensitive: true},
			{Name: "y", Secret: &secrets.Ref{Path: "gone"}, Sensitive: true},
			{Name: "z", Secret: &secrets.Ref{Path: "down"}, Sensitive: true},
		},
	})
	for _, k := range []secrets.Kind{secrets.SecretKeyNotFound, secrets.SecretNotFound, secrets.StoreUnavailable} {
		if !errors.Is(err, k) {
			t.Errorf("err = %v, want it to include %s", err, k)
		}
	}
	// A final problem makes the whole resolution final: retrying cannot fix the missing key.
	if secrets.Retryable(err) {
		t.Errorf("mixed final and transient problems reported as retryable: %v", err)
	}

	_, err = r.Resolve(context.Background(), src(store), secrets.Request{Fields: []secrets.Field{
		{Name: "", Value: "a"}, {Name: "dup"}, {Name: "dup"}, {Name: "own", Secret: &secrets.Ref{}},
	}})
	if !errors.Is(err, secrets.InvalidInput) {
		t.Fatalf("err = %v, want InvalidInput", err)
	}
	for _, want := range []string{"field 1 has no name", `"dup" appears more than once`, `"own" names a secret with an empty path`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestResolveUsesBatchForSeveralSecrets(t *testing.T) {
	mem := newMem(map[string]string{"one": `{"u":"1"}`, "two": `{"p":"2"}`})
	store := batchMem{mem}
	r := secrets.NewResolver(secrets.ResolverOptions{})
	res, err := r.Resolve(context.Background(), src(store), secrets.Request{
		Secret: &secrets.Ref{Path: "one"},
		Fields: []secrets.Field{
			{Name: "user", Value: "u"},
			{Name: "password", Value: "p", Secret: &secrets.Ref{Path: "two"}, Sensitive: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if value(t, res, "user") != "1" || value(t, res, "password") != "2" {
		t.Fatalf("wrong values")
	}
	if mem.batches.Load() != 1 {
		t.Fatalf("batches = %d, want 1", mem.batches.Load())
	}
}

func TestConcurrentResolutionsShareOneFetch(t *testing.T) {
	store := newMem(map[string]string{"shared": `{"password":"pw"}`})
	store.gate = make(chan struct{})
	r := secrets.NewResolver(secrets.ResolverOptions{})
	const callers = 25
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Resolve(context.Background(), src(store), secrets.Request{
				Secret: &secrets.Ref{Path: "shared"},
				Fields: []secrets.Field{{Name: "password", Value: "password", Sensitive: true}},
			})
			if err == nil {
				if v, _ := res.Value("password"); v.Reveal() != "pw" {
					err = fmt.Errorf("got %q", v.Reveal())
				}
				res.Zero() // one caller zeroing its copy must not affect the others
			}
			errs <- err
		}()
	}
	// Let every caller join the flight before the store answers.
	// (Generous: a caller that joins late would start a second fetch and fail the test.)
	waitFor(t, func() bool { return store.calls.Load() == 1 })
	time.Sleep(200 * time.Millisecond)
	close(store.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := store.calls.Load(); got != 1 {
		t.Fatalf("store calls = %d, want 1 for %d concurrent callers", got, callers)
	}
}

func TestCallerThatGivesUpDoesNotFailOthers(t *testing.T) {
	store := newMem(map[string]string{"s": "v"})
	store.gate = make(chan struct{})
	r := secrets.NewResolver(secrets.ResolverOptions{})
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := r.Fetch(leaderCtx, src(store), secrets.Ref{Path: "s"})
		leaderErr <- err
	}()
	waitFor(t, func() bool { return store.calls.Load() == 1 })
	follower := make(chan error, 1)
	go func() {
		s, err := r.Fetch(context.Background(), src(store), secrets.Ref{Path: "s"})
		if err == nil && s.Value.Reveal() != "v" {
			err = fmt.Errorf("follower got %q", s.Value.Reveal())
		}
		follower <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancelLeader()
	err := <-leaderErr
	if !errors.Is(err, context.Canceled) || !errors.Is(err, secrets.StoreUnavailable) {
		t.Fatalf("leader err = %v, want a StoreUnavailable wrapping context.Canceled", err)
	}
	close(store.gate)
	if err := <-follower; err != nil {
		t.Fatalf("follower failed because the leader gave up: %v", err)
	}
	if store.calls.Load() != 1 {
		t.Fatalf("store calls = %d, want 1", store.calls.Load())
	}
}

func TestCacheIsOffByDefaultAndBoundedWhenOn(t *testing.T) {
	store := newMem(map[string]string{"a": "1", "b": "2", "c": "3"})
	ctx := context.Background()
	off := secrets.NewResolver(secrets.ResolverOptions{})
	for range 3 {
		s, err := off.Fetch(ctx, src(store), secrets.Ref{Path: "a"})
		if err != nil {
			t.Fatal(err)
		}
		s.Zero()
	}
	if store.calls.Load() != 3 {
		t.Fatalf("without a cache, calls = %d, want 3", store.calls.Load())
	}

	now := time.Unix(1_700_000_000, 0)
	var events []secrets.FetchEvent
	on := secrets.NewResolver(secrets.ResolverOptions{
		CacheTTL: time.Minute, CacheSize: 2, Now: func() time.Time { return now },
		OnFetch: func(ev secrets.FetchEvent) { events = append(events, ev) },
	})
	store.calls.Store(0)
	fetch := func(path string) string {
		s, err := on.Fetch(ctx, src(store), secrets.Ref{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Zero()
		return s.Value.Reveal()
	}
	fetch("a")
	if fetch("a") != "1" || store.calls.Load() != 1 {
		t.Fatalf("second fetch was not served from cache: calls = %d", store.calls.Load())
	}
	if !events[1].Cached || events[0].Cached {
		t.Fatalf("events = %+v", events)
	}
	fetch("b")
	fetch("c") // evicts a, the least recently used
	if on.CachedSecrets() != 2 {
		t.Fatalf("cache holds %d, want at most 2", on.CachedSecrets())
	}
	fetch("a")
	if store.calls.Load() != 4 {
		t.Fatalf("calls = %d, want 4 (a evicted and fetched again)", store.calls.Load())
	}
	now = now.Add(2 * time.Minute)
	fetch("a")
	if store.calls.Load() != 5 {
		t.Fatalf("expired entry was served: calls = %d", store.calls.Load())
	}
	on.Purge(false)
	if on.CachedSecrets() != 0 {
		t.Fatalf("purge left %d entries", on.CachedSecrets())
	}
	// A different store configuration never shares cache entries.
	other := secrets.Source{Name: "mem", Key: "mem:other", Store: store}
	fetch("b")
	if _, err := on.Fetch(ctx, other, secrets.Ref{Path: "b"}); err != nil {
		t.Fatal(err)
	}
	if store.calls.Load() != 7 {
		t.Fatalf("calls = %d, want 7 (keys differ by store configuration)", store.calls.Load())
	}
}

// panicStore panics on every fetch.
type panicStore struct{}

func (panicStore) Fetch(context.Context, secrets.Ref) (*secrets.Secret, error) {
	panic("backend bug holding canary-panic-value")
}

func TestBackendPanicBecomesAnError(t *testing.T) {
	r := secrets.NewResolver(secrets.ResolverOptions{})
	_, err := r.Fetch(context.Background(), src(panicStore{}), secrets.Ref{Path: "x"})
	if !errors.Is(err, secrets.StoreUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "canary-panic-value") {
		t.Fatalf("panic value leaked: %v", err)
	}
}

func TestErrorMessagesAndKinds(t *testing.T) {
	err := &secrets.Error{Kind: secrets.Throttled, Store: "aws", Ref: "prod/db", Field: "password",
		Msg: "slow down", Detail: "ThrottlingException", RetryAfter: 3 * time.Second,
		Cause: errors.New("raw provider body with canary-body")}
	got := err.Error()
	want := `Throttled: aws store, secret "prod/db", field "password": slow down (ThrottlingException) (store asked to retry after 3s)`
	if got != want {
		t.Fatalf("Error() = %q\nwant     %q", got, want)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %s %#v %q", err, err, err, err, err), "canary-body") {
		t.Fatal("cause text printed")
	}
	wrapped := fmt.Errorf("resolving: %w", err)
	if !errors.Is(wrapped, secrets.Throttled) || errors.Is(wrapped, secrets.AccessDenied) {
		t.Fatal("errors.Is by kind failed")
	}
	if secrets.KindOf(wrapped) != secrets.Throttled || !secrets.Retryable(wrapped) || secrets.RetryAfterOf(wrapped) != 3*time.Second {
		t.Fatal("KindOf/Retryable/RetryAfterOf")
	}
	if secrets.KindOf(errors.New("plain")) != "" || secrets.Retryable(errors.New("plain")) {
		t.Fatal("unclassified error treated as classified")
	}
	retried := map[secrets.Kind]bool{secrets.StoreUnavailable: true, secrets.Throttled: true, secrets.SourceUnavailable: true, secrets.OutputUnavailable: true, secrets.LeaseLimit: true}
	for _, k := range secrets.Kinds {
		if k.Retryable() != retried[k] {
			t.Errorf("%s.Retryable() = %v", k, k.Retryable())
		}
	}
	ctxErr := secrets.ContextError("gcp", secrets.Ref{Path: "p"}, context.DeadlineExceeded)
	if !errors.Is(ctxErr, context.DeadlineExceeded) || !errors.Is(ctxErr, secrets.StoreUnavailable) {
		t.Fatalf("ContextError = %v", ctxErr)
	}
}

func TestKindForHTTPStatus(t *testing.T) {
	for status, want := range map[int]secrets.Kind{
		200: "", 302: "", 400: secrets.InvalidInput, 401: secrets.AuthFailed, 403: secrets.AccessDenied,
		404: secrets.SecretNotFound, 408: secrets.StoreUnavailable, 410: secrets.SecretNotFound,
		418: secrets.InvalidInput, 429: secrets.Throttled, 500: secrets.StoreUnavailable,
		502: secrets.StoreUnavailable, 503: secrets.StoreUnavailable,
	} {
		if got := secrets.KindForHTTPStatus(status); got != want {
			t.Errorf("status %d: %q, want %q", status, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "5": 5 * time.Second, " 12 ": 12 * time.Second, "-3": 0, "0": 0, "soon": 0,
		"99999999999":                   secrets.MaxRetryAfter,
		"Thu, 26 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Thu, 26 Nov 2026 11:00:00 GMT": 0,
		"Fri, 27 Nov 2026 12:00:00 GMT": secrets.MaxRetryAfter,
	} {
		if got := secrets.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestResolutionNeverLeaksValues plants canary values, drives every resolution outcome with a
// debug logger attached, and searches every error and log line for them.
func TestResolutionNeverLeaksValues(t *testing.T) {
	const canary = "canary-5ec7e7"
	store := newMem(map[string]string{
		"obj":    `{"user":"` + canary + `-user","password":"` + canary + `-pw","nested":{"k":"` + canary + `-n"}}`,
		"single": canary + "-single",
		"badkey": `{"k": ` + canary + `}`,
	})
	store.fail["down"] = &secrets.Error{Kind: secrets.StoreUnavailable, Store: "mem", Ref: "down", Msg: "store down"}
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := secrets.NewResolver(secrets.ResolverOptions{Logger: logger, CacheTTL: time.Minute})
	ctx := context.Background()
	var texts []string
	for _, req := range []secrets.Request{
		{Secret: &secrets.Ref{Path: "obj"}, Fields: []secrets.Field{{Name: "user", Value: "user"}, {Name: "password", Value: "password", Sensitive: true}, {Name: "n", Value: "nested"}}},
		{Secret: &secrets.Ref{Path: "obj"}, Fields: []secrets.Field{{Name: "password", Value: "no-such-key", Sensitive: true}}},
		{Secret: &secrets.Ref{Path: "obj"}, Fields: []secrets.Field{{Name: "password", Secret: &secrets.Ref{Path: "obj"}, Sensitive: true}}},
		{Secret: &secrets.Ref{Path: "single"}, Fields: []secrets.Field{{Name: "password", Value: "wrong", Sensitive: true}}},
		{Secret: &secrets.Ref{Path: "badkey"}, Fields: []secrets.Field{{Name: "password", Value: "k", Sensitive: true}}},
		{Secret: &secrets.Ref{Path: "missing"}, Fields: []secrets.Field{{Name: "password", Value: "k", Sensitive: true}}},
		{Secret: &secrets.Ref{Path: "down"}, Fields: []secrets.Field{{Name: "password", Value: "k", Sensitive: true}}},
	} {
		res, err := r.Resolve(ctx, src(store), req)
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
			continue
		}
		texts = append(texts, fmt.Sprintf("%v %+v", res, res.Fields))
		js, _ := json.Marshal(res)
		texts = append(texts, string(js))
		res.Zero()
	}
	if len(texts) < 7 {
		t.Fatalf("only %d outcomes recorded", len(texts))
	}
	mu.Lock()
	texts = append(texts, logs.String())
	mu.Unlock()
	if !strings.Contains(logs.String(), "secret access") {
		t.Fatal("no access log lines were written; the test would prove nothing")
	}
	for _, text := range texts {
		if strings.Contains(text, canary) {
			t.Errorf("canary leaked: %s", text)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
