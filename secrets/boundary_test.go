package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
)

// perFieldMem is a per-field store (like env) over memStore: a field value names a secret when
// the map holds it.
type perFieldMem struct{ *memStore }

func (p perFieldMem) Names(v string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.values[v]
	return ok
}

// TestValueGivenForASensitiveFieldIsNeverRepeated: a per-field store is asked for the name given
// for a sensitive field, which may be the password itself typed by mistake. When the store does
// not know it, no error, log line or fetch event repeats it, yet the error names the field; when
// the store finds it, it is a name after all and the versions show it.
func TestValueGivenForASensitiveFieldIsNeverRepeated(t *testing.T) {
	const typed = "hunter2-typed-by-mistake"
	store := perFieldMem{newMem(map[string]string{"DB_PASSWORD": "real-password-canary"})}
	var logs strings.Builder
	var events []secrets.FetchEvent
	r := secrets.NewResolver(secrets.ResolverOptions{
		Logger:  slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnFetch: func(ev secrets.FetchEvent) { events = append(events, ev) },
	})
	_, err := r.Resolve(context.Background(), src(store), secrets.Request{
		Fields: []secrets.Field{{Name: "password", Value: typed, Sensitive: true}}})
	if !errors.Is(err, secrets.SecretNotFound) {
		t.Fatalf("err = %v", err)
	}
	ev, _ := json.Marshal(events)
	for what, text := range map[string]string{"error": err.Error(), "log": logs.String(), "events": string(ev)} {
		if strings.Contains(text, typed) {
			t.Errorf("the %s repeats the value given for a sensitive field: %s", what, text)
		}
	}
	if !strings.Contains(err.Error(), `field "password"`) || !strings.Contains(err.Error(), secrets.HiddenRef) {
		t.Errorf("the error does not say which field, or does not say the name is hidden: %v", err)
	}
	if store.calls.Load() != 1 {
		t.Fatalf("store calls = %d", store.calls.Load())
	}

	res, err := r.Resolve(context.Background(), src(store), secrets.Request{
		Fields: []secrets.Field{{Name: "password", Value: "DB_PASSWORD", Sensitive: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Zero()
	if len(res.Versions) != 1 || res.Versions[0].Ref.Path != "DB_PASSWORD" || res.Versions[0].Ref.Hidden {
		t.Fatalf("versions = %+v", res.Versions)
	}
}

// TestHiddenRefIsHiddenInEveryForm: String, JSON and the error built from it.
func TestHiddenRefIsHiddenInEveryForm(t *testing.T) {
	ref := secrets.Ref{Path: "hunter2-canary", Hidden: true}
	js, err := json.Marshal(secrets.SecretVersion{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(secrets.SecretVersion{Ref: secrets.Ref{Path: "prod/db", Version: "3"}, Version: "v"})
	for _, s := range []string{ref.String(), string(js), (&secrets.Error{Kind: secrets.PolicyDenied, Ref: ref.String()}).Error()} {
		if strings.Contains(s, "hunter2-canary") {
			t.Errorf("a hidden reference shows its path: %s", s)
		}
	}
	if string(plain) != `{"ref":{"path":"prod/db","version":"3"},"version":"v"}` {
		t.Errorf("a plain reference's JSON changed: %s", plain)
	}
	if ref.Shown().String() != "hunter2-canary" {
		t.Error("Shown does not show")
	}
}

// versioned is a store whose versions are chosen by the test.
type versioned struct {
	value, version string
}

func (v versioned) Fetch(context.Context, secrets.Ref) (*secrets.Secret, error) {
	return &secrets.Secret{Value: secrets.Value(v.value), Version: v.version}, nil
}

// TestVersionThatRepeatsTheSecretIsRefused: a version id is store metadata; one that equals or
// contains a value the secret holds (a version path pointed into the secret, say) is refused and
// never recorded, and the field values it came with are not resolved.
func TestVersionThatRepeatsTheSecretIsRefused(t *testing.T) {
	const pw = "canary-pw-5511"
	var logs strings.Builder
	r := secrets.NewResolver(secrets.ResolverOptions{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	req := secrets.Request{Secret: &secrets.Ref{Path: "prod/db"},
		Fields: []secrets.Field{{Name: "password", Value: "password", Sensitive: true}, {Name: "username", Value: "username"}}}
	for _, version := range []string{pw, "v-" + pw + "-1", "svc_catalog_user"} {
		store := versioned{value: `{"password":"` + pw + `","username":"svc_catalog_user","port":5432}`, version: version}
		res, err := r.Resolve(context.Background(), src(store), req)
		if !errors.Is(err, secrets.InvalidInput) || res != nil {
			t.Fatalf("version %q: res %v, err %v", version, res, err)
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "svc_catalog_user") {
			t.Fatalf("the refusal repeats the secret: %v", err)
		}
	}
	if strings.Contains(logs.String(), pw) || strings.Contains(logs.String(), "svc_catalog_user") {
		t.Fatalf("the fetch log line recorded the version that repeats the secret:\n%s", logs.String())
	}
	// Metadata that happens to share a short value (the port, a one-digit version) is fine.
	for _, version := range []string{"3", "a1b2c3d4-0000-4000-8000-000000000001", "5432"} {
		store := versioned{value: `{"password":"` + pw + `","username":"svc_catalog_user","port":"5432","replicas":3}`, version: version}
		res, err := r.Resolve(context.Background(), src(store), req)
		switch {
		case version == "5432" && !errors.Is(err, secrets.InvalidInput):
			t.Errorf("version equal to a 4-byte value %q was recorded", version)
		case version != "5432" && err != nil:
			t.Errorf("version %q refused: %v", version, err)
		}
		res.Zero()
	}
}

// TestGuard: values are found as they are and as encoding/json writes them, shorter ones are
// ignored, redaction replaces the longest first, and Zero forgets everything.
func TestGuard(t *testing.T) {
	var g secrets.Guard
	g.Add("password", []byte(`p<w>&"q`))
	g.Add("short", []byte("abc"))
	g.AddContent("secret", secrets.Value(`{"k":"token-123456","n":9876543,"nested":{"a":["deep-value"]}}`))
	js, _ := json.Marshal(map[string]string{"x": `..p<w>&"q..`})
	for _, hay := range []string{`..p<w>&"q..`, string(js), "has token-123456", "n=9876543", "deep-value"} {
		if _, ok := g.FindString(hay); !ok {
			t.Errorf("not found in %q", hay)
		}
	}
	if _, ok := g.FindString("abc and nothing else"); ok {
		t.Error("a value shorter than MinGuardLen was searched for")
	}
	if f, _ := g.FindString(string(js)); f != "password" {
		t.Errorf("label = %q", f)
	}
	// A value the caller supplied itself is not a finding, in either form.
	if _, ok := g.FindExcept([]byte("echo: token-123456"), []byte(`{"connector":"token-123456"}`)); ok {
		t.Error("FindExcept found a value the caller supplied")
	}
	if f, ok := g.FindExcept([]byte(string(js)+" token-123456"), []byte("token-123456")); !ok || f != "password" {
		t.Errorf("FindExcept missed a value the caller did not supply (%q, %v)", f, ok)
	}
	if m := g.Matcher(); !m.In("x token-123456 y") || m.In("nothing here") || m.Empty() {
		t.Error("Matcher does not see what the Guard holds")
	}
	out, n := g.Redact(`a p<w>&"q b token-123456 c token-123456`)
	if n != 3 || out != "a [REDACTED] b [REDACTED] c [REDACTED]" {
		t.Errorf("Redact = %q, %d", out, n)
	}
	g.Zero()
	if _, ok := g.FindString("token-123456"); ok || g.Len() != 0 {
		t.Error("Zero kept values")
	}
}

// TestExplicitFields: one secret per field. Each field names its own secret; with a key, the key
// must exist (no fall-back to a literal), without one the secret's whole value is taken and it
// must be a single value; the distinct secrets are fetched in one batch; each version is listed.
func TestExplicitFields(t *testing.T) {
	store := batchMem{newMem(map[string]string{
		"db-password": "pw-explicit-canary",
		"db-login":    `{"username":"svc","password":"other"}`,
	})}
	r := secrets.NewResolver(secrets.ResolverOptions{})
	ref := func(p string) *secrets.Ref { return &secrets.Ref{Path: p} }
	res, err := r.Resolve(context.Background(), src(store), secrets.Request{Fields: []secrets.Field{
		{Name: "host", Value: "db.internal"},
		{Name: "password", Secret: ref("db-password"), Sensitive: true, Explicit: true},
		{Name: "username", Value: "username", Secret: ref("db-login"), Explicit: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Zero()
	if value(t, res, "password") != "pw-explicit-canary" || value(t, res, "username") != "svc" || value(t, res, "host") != "db.internal" {
		t.Fatalf("resolved %v", res.FieldNames())
	}
	if store.batches.Load() != 1 || len(res.Versions) != 2 {
		t.Fatalf("batches %d, versions %+v", store.batches.Load(), res.Versions)
	}
	for _, tc := range []struct {
		name  string
		field secrets.Field
		want  secrets.Kind
	}{
		{"a key the secret lacks is not a literal", secrets.Field{Name: "username", Value: "user", Secret: ref("db-login"), Explicit: true}, secrets.SecretKeyNotFound},
		{"a key into a single value", secrets.Field{Name: "password", Value: "password", Secret: ref("db-password"), Sensitive: true, Explicit: true}, secrets.SecretKeyNotFound},
		{"no key into a JSON object", secrets.Field{Name: "username", Secret: ref("db-login"), Explicit: true}, secrets.InvalidInput},
	} {
		_, err := r.Resolve(context.Background(), src(store), secrets.Request{Fields: []secrets.Field{tc.field}})
		if !errors.Is(err, tc.want) || strings.Contains(err.Error(), "pw-explicit-canary") || strings.Contains(err.Error(), "other") {
			t.Errorf("%s: %v, want %s without a value", tc.name, err, tc.want)
		}
	}
}
