package aws

import (
	"slices"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
)

// TestOneSecretPerFieldInOneBatch resolves connection fields that each name their own secret
// (secretStore.fields) through the real SDK client against the local Secrets Manager: the
// distinct secrets are read in one BatchGetSecretValue call and no GetSecretValue, a secret
// named by two fields is asked for once, and every secret's version is reported.
func TestOneSecretPerFieldInOneBatch(t *testing.T) {
	f := newFakeAWS(t)
	f.addString("prod/db/login", `{"username":"reader","host":"db.internal"}`, "v-login-000000000000000000000000000001")
	f.addString("prod/db/password", "per-field-canary-password", "v-pw-00000000000000000000000000000001")
	f.addString("prod/db/port", "5432", "v-port-0000000000000000000000000000001")
	s := newStore(t, f, Config{})
	ref := func(p string) *secrets.Ref { return &secrets.Ref{Path: p} }
	req := secrets.Request{Fields: []secrets.Field{
		{Name: "host", Value: "host", Secret: ref("prod/db/login"), Explicit: true},
		{Name: "username", Value: "username", Secret: ref("prod/db/login"), Explicit: true},
		{Name: "password", Secret: ref("prod/db/password"), Sensitive: true, Explicit: true},
		{Name: "port", Secret: ref("prod/db/port"), Explicit: true},
		{Name: "database", Value: "catalog"},
	}}
	res, err := secrets.NewResolver(secrets.ResolverOptions{}).Resolve(ctxBG, secrets.Source{Name: Name, Key: "aws-test", Store: s}, req)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res.Fields {
		got[r.Field] = r.Value.Reveal()
	}
	want := map[string]string{"host": "db.internal", "username": "reader", "password": "per-field-canary-password", "port": "5432", "database": "catalog"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	lists, _ := batchIDs(t, f)
	if len(lists) != 1 || len(lists[0]) != 3 {
		t.Errorf("BatchGetSecretValue calls %v, want one call with the 3 distinct secrets", lists)
	}
	if n := len(f.recorded("secretsmanager.GetSecretValue")); n != 0 {
		t.Errorf("%d GetSecretValue calls, want 0", n)
	}
	var versions []string
	for _, v := range res.Versions {
		versions = append(versions, v.Ref.Path+"="+v.Version)
	}
	slices.Sort(versions)
	if !slices.Equal(versions, []string{"prod/db/login=v-login-000000000000000000000000000001",
		"prod/db/password=v-pw-00000000000000000000000000000001", "prod/db/port=v-port-0000000000000000000000000000001"}) {
		t.Errorf("versions %v", versions)
	}
}
