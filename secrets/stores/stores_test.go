package stores_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

func TestValidateAcceptsDocumentedExamples(t *testing.T) {
	for name, spec := range map[string]stores.Spec{
		"aws name":        {Type: "aws", SecretPath: "prod/db", Region: "eu-west-1"},
		"aws arn":         {Type: "aws", SecretPath: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", Region: "eu-west-1", AuthMethod: "iam"},
		"aws assume-role": {Type: "aws", SecretPath: "prod/db", Region: "us-east-1", AuthMethod: "assume-role", RoleARN: "arn:aws:iam::123456789012:role/secure-agent-reader", ExternalID: "tenant-42"},
		"aws access-key":  {Type: "aws", SecretPath: "prod/db", Region: "us-gov-west-1", AuthMethod: "access-key", VersionStage: "AWSPREVIOUS"},
		"azure url":       {Type: "azure", SecretPath: "https://myvault.vault.azure.net/secrets/db-creds", AuthMethod: "managed-identity"},
		"azure name":      {Type: "azure", SecretPath: "db-creds", VaultName: "myvault", AuthMethod: "service-principal"},
		"azure china":     {Type: "azure", SecretPath: "https://myvault.vault.azure.cn/secrets/db-creds/0123456789abcdef0123456789abcdef", ClientID: "00000000-0000-0000-0000-000000000001"},
		"gcp":             {Type: "gcp", SecretPath: "projects/my-project/secrets/db-creds"},
		"gcp version":     {Type: "gcp", SecretPath: "projects/my-project/secrets/db-creds/versions/3"},
		"env":             {Type: "env"},
		"custom object":   {Type: "custom", Config: json.RawMessage(`{"store_url":"https://custom-secret-store.example.com","secret_name":"my-custom-secret"}`)},
		"custom string":   {Type: "custom", Config: json.RawMessage(`"{\"store_url\":\"https://custom-secret-store.example.com\",\"secret_name\":\"my-custom-secret\"}"`)},
	} {
		if problems := stores.Validate(spec); len(problems) > 0 {
			t.Errorf("%s: %v", name, problems)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cases := []struct {
		spec stores.Spec
		want []string
	}{
		{stores.Spec{}, []string{"type is missing"}},
		{stores.Spec{Type: "hsm"}, []string{`type "hsm" is not supported`}},
		{stores.Spec{Type: "vault", SecretPath: "sys/raw/core", Version: "x"}, []string{"names Vault's own settings", "version must be a KV v2 version number"}},
		{stores.Spec{Type: "vault", SecretPath: "secret/data/../db"}, []string{"without . or .."}},
		{stores.Spec{Type: "aws", SecretPath: "db", Region: "eu-west-1", Version: "3"}, []string{"version is not used by the aws store"}},
		{stores.Spec{Type: "aws", VaultName: "x", Config: json.RawMessage(`{}`)}, []string{"vaultName is not used by the aws store", "config is not used", "secretPath is missing", "region"}},
		{stores.Spec{Type: "aws", SecretPath: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", Region: "eu-west-1"}, []string{"us-east-1"}},
		{stores.Spec{Type: "aws", SecretPath: "x", Region: "eu-west-1", AuthMethod: "password"}, []string{"authMethod must be"}},
		{stores.Spec{Type: "aws", SecretPath: "x", Region: "eu-west-1", AuthMethod: "assume-role"}, []string{"roleArn"}},
		{stores.Spec{Type: "azure", SecretPath: "db"}, []string{"vaultName"}},
		{stores.Spec{Type: "azure", SecretPath: "https://evil.example.com/secrets/db"}, []string{"evil.example.com"}},
		{stores.Spec{Type: "gcp", SecretPath: "my-project/db"}, []string{"projects/"}},
		{stores.Spec{Type: "env", SecretPath: "x"}, []string{"secretPath is not used by the env store"}},
		{stores.Spec{Type: "custom"}, []string{"config"}},
		{stores.Spec{Type: "custom", Config: json.RawMessage(`{"store_url":"http://example.com","secret_name":"x","colour":"red"}`)}, []string{"colour"}},
	}
	for _, c := range cases {
		problems := strings.Join(stores.Validate(c.spec), " | ")
		for _, w := range c.want {
			if !strings.Contains(problems, w) {
				t.Errorf("%+v: problems %q do not mention %q", c.spec, problems, w)
			}
		}
	}
}

func TestOpenerBuildsOneClientPerConfiguration(t *testing.T) {
	o, err := stores.NewOpener(stores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-key")
	ctx := context.Background()
	a := &stores.Spec{Type: "aws", SecretPath: "one", Region: "eu-west-1", AuthMethod: "access-key"}
	b := &stores.Spec{Type: "aws", SecretPath: "two", Region: "eu-west-1", AuthMethod: "access-key"}
	c := &stores.Spec{Type: "aws", SecretPath: "one", Region: "us-east-1", AuthMethod: "access-key"}
	sa, ra, err := o.Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	sb, rb, err := o.Open(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	sc, _, err := o.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Store != sb.Store || sa.Key != sb.Key {
		t.Error("two secrets of one configuration got two clients")
	}
	if sa.Store == sc.Store || sa.Key == sc.Key {
		t.Error("two regions share a client")
	}
	if ra.Path != "one" || rb.Path != "two" {
		t.Errorf("refs = %v, %v", ra, rb)
	}
}

func TestOpenerRefusesInvalidSpecAndNilMeansLiterals(t *testing.T) {
	o, err := stores.NewOpener(stores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = o.Open(context.Background(), &stores.Spec{Type: "gcp"})
	if !errors.Is(err, secrets.InvalidInput) || !strings.Contains(err.Error(), "secretPath is missing") {
		t.Fatalf("err = %v", err)
	}
	src, ref, err := o.Open(context.Background(), nil)
	if err != nil || ref != nil {
		t.Fatalf("nil spec: %v %v", ref, err)
	}
	if _, err := src.Store.Fetch(context.Background(), secrets.Ref{Path: "x"}); !errors.Is(err, secrets.InvalidInput) {
		t.Fatalf("the no-store store answered: %v", err)
	}
}

func TestCustomStorePolicy(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-Token") != "tok-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"password":"pw"}`))
	}))
	defer srv.Close()
	t.Setenv("STORE_TOKEN", "tok-123")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "agent-own-key")
	spec := func(headerVar string) *stores.Spec {
		return &stores.Spec{Type: "custom", Config: json.RawMessage(`{"store_url":"` + srv.URL + `","secret_name":"db","headers":{"X-Token":"` + headerVar + `"}}`)}
	}
	ctx := context.Background()

	closed, err := stores.NewOpener(stores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := closed.Open(ctx, spec("STORE_TOKEN")); !errors.Is(err, secrets.PolicyDenied) || !strings.Contains(err.Error(), "SECURE_AGENT_CUSTOM_STORE_HOSTS") {
		t.Fatalf("default policy: %v", err)
	}

	open, err := stores.NewOpener(stores.Options{CustomStoreHosts: []string{"127.0.0.1:*"}, CustomStoreEnvAllow: []string{"STORE_*", "AWS_*"}})
	if err != nil {
		t.Fatal(err)
	}
	src, ref, err := open.Open(ctx, spec("STORE_TOKEN"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Store.Fetch(ctx, *ref)
	if err != nil || s.Value.Reveal() != `{"password":"pw"}` {
		t.Fatalf("fetch through an allowed store: %v", err)
	}
	// Even an allowlist that names AWS_* cannot send the agent's own key to a store.
	_, _, err = open.Open(ctx, spec("AWS_SECRET_ACCESS_KEY"))
	if !errors.Is(err, secrets.PolicyDenied) || strings.Contains(err.Error(), "agent-own-key") {
		t.Fatalf("agent credential as header: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("store saw %d requests, want 1 (refusals happen before any request)", hits.Load())
	}
}

func TestBadAllowlistsFailAtStartup(t *testing.T) {
	_, err := stores.NewOpener(stores.Options{EnvAllow: []string{"["}, CustomStoreHosts: []string{"[x"}})
	if err == nil || !strings.Contains(err.Error(), "SECURE_AGENT_ENV_ALLOW") || !strings.Contains(err.Error(), "SECURE_AGENT_CUSTOM_STORE_HOSTS") {
		t.Fatalf("err = %v", err)
	}
}
