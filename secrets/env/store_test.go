package env_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/env"
)

func newStore(t *testing.T, allow ...string) *env.Store {
	t.Helper()
	s, err := env.New(env.Options{Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFetchAllowedVariable(t *testing.T) {
	t.Setenv("DB_PASSWORD", "env-canary-1")
	s := newStore(t, "DB_*")
	got, err := s.Fetch(context.Background(), secrets.Ref{Path: "DB_PASSWORD"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Value.Reveal() != "env-canary-1" || got.Version != "" {
		t.Fatalf("got %q version %q", got.Value.Reveal(), got.Version)
	}
}

func TestFetchRefusals(t *testing.T) {
	const canary = "env-canary-refused"
	for _, name := range []string{"AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", "AZURE_CLIENT_SECRET",
		"GOOGLE_APPLICATION_CREDENTIALS", "TEMPORAL_API_KEY", "SECURE_AGENT_CODEC_KEY", "IDENTITY_HEADER",
		"DB_PASSWORD", "OTHER", "EMPTY_ONE", "MISSING_ONE"} {
		t.Setenv(name, canary)
	}
	t.Setenv("EMPTY_ONE", "")
	s := newStore(t, "*") // even an allow-everything list cannot open the denylist
	cases := []struct {
		ref  secrets.Ref
		kind secrets.Kind
		say  string
	}{
		{secrets.Ref{Path: "AWS_SECRET_ACCESS_KEY"}, secrets.PolicyDenied, `"AWS_*"`},
		{secrets.Ref{Path: "aws_secret_access_key"}, secrets.PolicyDenied, "agent's own credentials"},
		{secrets.Ref{Path: "AZURE_CLIENT_SECRET"}, secrets.PolicyDenied, `"AZURE_*"`},
		{secrets.Ref{Path: "GOOGLE_APPLICATION_CREDENTIALS"}, secrets.PolicyDenied, `"GOOGLE_*"`},
		{secrets.Ref{Path: "TEMPORAL_API_KEY"}, secrets.PolicyDenied, `"TEMPORAL_*"`},
		{secrets.Ref{Path: "SECURE_AGENT_CODEC_KEY"}, secrets.PolicyDenied, `"SECURE_AGENT_*"`},
		{secrets.Ref{Path: "IDENTITY_HEADER"}, secrets.PolicyDenied, `"IDENTITY_*"`},
		{secrets.Ref{Path: "EMPTY_ONE"}, secrets.SecretNotFound, "empty"},
		{secrets.Ref{Path: "NOT_SET_ANYWHERE_42"}, secrets.SecretNotFound, "not set"},
		{secrets.Ref{Path: "1BAD"}, secrets.InvalidInput, "not a valid environment variable name"},
		{secrets.Ref{Path: "DB_PASSWORD", Version: "2"}, secrets.InvalidInput, "no versions"},
	}
	for _, c := range cases {
		_, err := s.Fetch(context.Background(), c.ref)
		if !errors.Is(err, c.kind) || secrets.Retryable(err) {
			t.Errorf("%v: err = %v, want final %s", c.ref, err, c.kind)
			continue
		}
		if !strings.Contains(err.Error(), c.say) || !strings.Contains(err.Error(), c.ref.Path) {
			t.Errorf("%v: message %q should name the variable and say %s", c.ref, err, c.say)
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("%v: message leaks the value: %v", c.ref, err)
		}
	}

	narrow := newStore(t, "DB_*")
	_, err := narrow.Fetch(context.Background(), secrets.Ref{Path: "OTHER"})
	if !errors.Is(err, secrets.PolicyDenied) || !strings.Contains(err.Error(), "SECURE_AGENT_ENV_ALLOW") {
		t.Fatalf("variable off the allowlist: %v", err)
	}
	empty := newStore(t)
	if _, err := empty.Fetch(context.Background(), secrets.Ref{Path: "DB_PASSWORD"}); !errors.Is(err, secrets.PolicyDenied) {
		t.Fatalf("the default (empty) allowlist must refuse everything: %v", err)
	}
}

func TestBadPatternsAreRefused(t *testing.T) {
	_, err := env.New(env.Options{Allow: []string{"DB_[", " "}})
	if !errors.Is(err, secrets.InvalidInput) || !strings.Contains(err.Error(), `"DB_["`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newStore(t, "*").Fetch(ctx, secrets.Ref{Path: "HOME"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestResolveThroughEnvStore exercises the per-field rules of secrets.Resolve with the real store:
// sensitive fields always name a variable; other fields do when the allowlist admits the name.
func TestResolveThroughEnvStore(t *testing.T) {
	t.Setenv("DB_PASSWORD", "env-canary-pw")
	t.Setenv("DB_USER", "reader")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-canary-aws")
	store := newStore(t, "DB_*")
	src := secrets.Source{Name: env.Name, Key: "env", Store: store}
	r := secrets.NewResolver(secrets.ResolverOptions{})
	res, err := r.Resolve(context.Background(), src, secrets.Request{
		Secret: &secrets.Ref{Path: "ignored-by-env"},
		Fields: []secrets.Field{
			{Name: "host", Value: "db.internal"},
			{Name: "user", Value: "DB_USER"},
			{Name: "password", Value: "DB_PASSWORD", Sensitive: true},
			{Name: "database", Value: "SALES"}, // a valid name off the allowlist: a literal
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Zero()
	for f, want := range map[string]string{"host": "db.internal", "user": "reader", "password": "env-canary-pw", "database": "SALES"} {
		if v, _ := res.Value(f); v.Reveal() != want {
			t.Errorf("%s = %q, want %q", f, v.Reveal(), want)
		}
	}

	// The exfiltration attempt: a sensitive field naming the agent's own AWS key.
	_, err = r.Resolve(context.Background(), src, secrets.Request{Fields: []secrets.Field{
		{Name: "password", Value: "AWS_SECRET_ACCESS_KEY", Sensitive: true},
	}})
	if !errors.Is(err, secrets.PolicyDenied) || strings.Contains(err.Error(), "env-canary-aws") {
		t.Fatalf("err = %v, want PolicyDenied without the value", err)
	}
	// A non-sensitive field naming it is a literal (the name itself), never the value.
	res, err = r.Resolve(context.Background(), src, secrets.Request{Fields: []secrets.Field{
		{Name: "user", Value: "AWS_SECRET_ACCESS_KEY"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.Value("user"); v.Reveal() != "AWS_SECRET_ACCESS_KEY" {
		t.Fatalf("user = %q", v.Reveal())
	}
	// A sensitive field with no variable name.
	_, err = r.Resolve(context.Background(), src, secrets.Request{Fields: []secrets.Field{
		{Name: "password", Value: "", Sensitive: true},
	}})
	if !errors.Is(err, secrets.InvalidInput) {
		t.Fatalf("err = %v", err)
	}
	// A missing allowed variable is SecretNotFound, not an empty string.
	_, err = r.Resolve(context.Background(), src, secrets.Request{Fields: []secrets.Field{
		{Name: "password", Value: "DB_NOT_SET", Sensitive: true},
	}})
	if !errors.Is(err, secrets.SecretNotFound) {
		t.Fatalf("err = %v", err)
	}
}
