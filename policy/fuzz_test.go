package policy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/secure-agent/secure-agent/policy"
)

// FuzzLoad: Load never panics, returns exactly one of a policy and an error, and a policy it
// returns answers every question without panicking.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("example-policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(destinationsPolicy))
	f.Add([]byte("version: 1\n"))
	f.Add([]byte(`{"version": 1, "stores": [], "destinations": {"default": "allow", "rules": [{"secrets": ["*"], "hosts": ["[::1]:*"]}]}}`))
	f.Add([]byte("version: 1\nsecrets:\n  aws: &p [a]\n  gcp: *p\n"))
	f.Add([]byte("version: 1\n---\nversion: 2\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\n"))
	f.Add([]byte("version: 1\nenv: {allow: [\"AWS_*\"]}\ncustomStores: {hosts: [\"::1\", \"[x\"]}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := policy.Load(path)
		if (p == nil) == (err == nil) {
			t.Fatalf("Load returned policy %v and error %v", p != nil, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		_ = p.Describe()
		for _, s := range []string{"aws", "azure", "gcp", "env", "custom", "x"} {
			_ = p.CheckStore(s)
			_ = p.CheckSecret(s, "prod/catalog/db")
			_ = p.CheckSecret(s, "[::1]:8200/a")
		}
		_ = p.CheckDestination(tcp("db.internal", 5432), []string{"prod/catalog/db", "DB_X", ""})
		_ = p.CheckDestination(tcp("[2001:db8::1]", 0), []string{"arn:aws:secretsmanager:r:1:secret:x-abcdef"})
		_ = p.CheckDestination(tcp("", -1), []string{"https://v.vault.azure.net/secrets/x"})
	})
}
