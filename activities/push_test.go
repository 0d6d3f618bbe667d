package activities

import (
	"os"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/output"
	"github.com/secure-agent/secure-agent/policy"
	"github.com/secure-agent/secure-agent/secrets"
)

// TestPushEndpoint: the URL rules of a catalog push, and that a refusal never repeats the URL
// (it may come from a secret).
func TestPushEndpoint(t *testing.T) {
	for _, tc := range []struct {
		url, token string
		want       string // the API URL, or "" when refused
	}{
		{"https://marquez.internal:5000", "k", "https://marquez.internal:5000/api/v1/lineage"},
		{"https://marquez.internal/base/", "k", "https://marquez.internal/base/api/v1/lineage"},
		{"http://127.0.0.1:5000", "k", "http://127.0.0.1:5000/api/v1/lineage"},
		{"http://localhost:5000", "k", "http://localhost:5000/api/v1/lineage"},
		{"http://marquez.internal:5000", "", "http://marquez.internal:5000/api/v1/lineage"},
		{"http://marquez.internal:5000", "k", ""},        // a token over plain http, off the host
		{"https://user:pw@marquez.internal", "k", ""},    // credentials in the URL
		{"https://marquez.internal/?next=evil", "k", ""}, // a query
		{"ftp://marquez.internal", "", ""},               // another scheme
		{"marquez.internal:5000", "", ""},                // not absolute
		{"https://marquez.internal:99999", "", ""},       // no such port
	} {
		ep, _, err := pushEndpoint("OpenLineage", output.FormatOpenLineage, tc.url, tc.token)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: accepted", tc.url)
		case tc.want != "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.want != "" && ep.URL.String() != tc.want:
			t.Errorf("%s: posts to %s, want %s", tc.url, ep.URL, tc.want)
		case err != nil && (strings.Contains(err.Error(), "marquez") || strings.Contains(err.Error(), "pw")):
			t.Errorf("%s: the refusal repeats the URL: %v", tc.url, err)
		}
	}
	ep, _, err := pushEndpoint("DataHub", output.FormatDataHub, "https://gms.internal:8080", "t")
	if err != nil || ep.URL.String() != "https://gms.internal:8080/aspects?action=ingestProposal" {
		t.Errorf("datahub: %v %v", ep.URL, err)
	}
}

// TestIAMTokensAreJudgedLikeSecrets: a connection that logs in with a token of the agent's own
// identity (authMethod aws-iam, gcp-iam) is judged by the destination rules as if the token came
// from a secret named iam:<method>, so a policy with default deny sends it only where a rule
// allows; a password connection without secrets is not affected.
func TestIAMTokensAreJudgedLikeSecrets(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/policy.yaml"
	if err := os.WriteFile(file, []byte("version: 1\ndestinations:\n  default: deny\n  rules:\n    - secrets: [\"iam:gcp-iam\"]\n      hosts: [\"10.0.0.5:5432\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	creds := func(method, host string) connectors.Credentials {
		return connectors.Credentials{"host": secrets.Value(host), "port": secrets.Value("5432"), "authMethod": secrets.Value(method)}
	}
	check := func(c connectors.Credentials) error {
		spec, _ := connectors.Lookup("postgres")
		dest, _, err := spec.Destination(c)
		if err != nil {
			t.Fatal(err)
		}
		return pol.CheckDestination(dest, identityOrigins(c))
	}
	if err := check(creds("gcp-iam", "10.0.0.5")); err != nil {
		t.Errorf("the allowed host: %v", err)
	}
	if err := check(creds("gcp-iam", "attacker.example")); secrets.KindOf(err) != secrets.PolicyDenied {
		t.Errorf("a Google token to another host: %v", err)
	}
	if err := check(creds("aws-iam", "10.0.0.5")); secrets.KindOf(err) != secrets.PolicyDenied {
		t.Errorf("an RDS token where only gcp-iam is allowed: %v", err)
	}
	if err := check(creds("", "attacker.example")); err != nil {
		t.Errorf("a password connection without secrets: %v", err)
	}
}
