package stores_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/secrets/stores"
)

// TestFieldsOnePerSecret: secretStore.fields names one secret per field, in every store's own
// form; with it, secretPath (secret_name) may be left out; each named secret is validated as the
// store addresses secrets and is judged by policy on its own.
func TestFieldsOnePerSecret(t *testing.T) {
	custom := json.RawMessage(`{"store_url":"https://vault.internal:8200/v1/kv/data"}`)
	valid := map[string]stores.Spec{
		"aws names and an ARN": {Type: "aws", Region: "eu-west-1", Fields: map[string]stores.SecretField{
			"password": {Secret: "prod/db/password"},
			"username": {Secret: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db/login-AbCdEf", Key: "username"}}},
		"azure names and a URL": {Type: "azure", VaultName: "myvault", Fields: map[string]stores.SecretField{
			"password": {Secret: "catalog-password"}, "sslkey": {Secret: "https://myvault.vault.azure.net/secrets/catalog-key"}}},
		"gcp":         {Type: "gcp", Fields: map[string]stores.SecretField{"password": {Secret: "projects/my-project/secrets/catalog-password/versions/3"}}},
		"env":         {Type: "env", Fields: map[string]stores.SecretField{"password": {Secret: "DB_PASSWORD"}}},
		"custom":      {Type: "custom", Config: custom, Fields: map[string]stores.SecretField{"password": {Secret: "team/db", Key: "password"}}},
		"with a path": {Type: "aws", Region: "eu-west-1", SecretPath: "prod/db", Fields: map[string]stores.SecretField{"password": {Secret: "prod/db/password"}}},
		"string form": {Type: "gcp", Fields: mustFields(t, `{"password": "projects/my-project/secrets/s"}`)},
		"object form": {Type: "gcp", Fields: mustFields(t, `{"password": {"secret": "projects/my-project/secrets/s", "key": "pw"}}`)},
	}
	for name, spec := range valid {
		if problems := stores.Validate(spec); len(problems) > 0 {
			t.Errorf("%s: %v", name, problems)
		}
	}
	for name, tc := range map[string]struct {
		spec stores.Spec
		want string
	}{
		"aws ARN of another region": {stores.Spec{Type: "aws", Region: "eu-west-1", Fields: map[string]stores.SecretField{
			"password": {Secret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}}}, "fields.password: "},
		"azure bare name without vaultName": {stores.Spec{Type: "azure", Fields: map[string]stores.SecretField{"password": {Secret: "catalog-password"}}}, "fields.password: "},
		"gcp malformed":                     {stores.Spec{Type: "gcp", Fields: map[string]stores.SecretField{"password": {Secret: "catalog-password"}}}, "fields.password: "},
		"env not a variable":                {stores.Spec{Type: "env", Fields: map[string]stores.SecretField{"password": {Secret: "not a variable"}}}, "fields.password: secret must name"},
		"custom climbing":                   {stores.Spec{Type: "custom", Config: custom, Fields: map[string]stores.SecretField{"password": {Secret: "../x"}}}, "fields.password: "},
		"empty secret":                      {stores.Spec{Type: "gcp", Fields: map[string]stores.SecretField{"password": {}}}, "fields.password: secret is empty"},
		"key with a control character":      {stores.Spec{Type: "gcp", Fields: map[string]stores.SecretField{"password": {Secret: "projects/my-project/secrets/s", Key: "a\nb"}}}, "fields.password: key must"},
		"neither path nor fields":           {stores.Spec{Type: "gcp"}, "secretPath is missing"},
		"custom without either":             {stores.Spec{Type: "custom", Config: custom}, "secret_name is required"},
	} {
		problems := stores.Validate(tc.spec)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s: problems %v, want one with %q", name, problems, tc.want)
		}
	}
	var bad stores.SecretField
	if err := json.Unmarshal([]byte(`{"secret":"s","kee":"typo"}`), &bad); err == nil {
		t.Error("an unknown key in a field's object was accepted")
	}

	// Policy judges every secret: the path's and each field's (custom: host/secret).
	spec := stores.Spec{Type: "custom", Config: json.RawMessage(`{"store_url":"https://vault.internal:8200/v1/kv/data","secret_name":"team/db"}`),
		Fields: map[string]stores.SecretField{"password": {Secret: "team/db-password"}, "sslkey": {Secret: "team/db"}}}
	if got := spec.PolicyRefs(); !slices.Equal(got, []string{"vault.internal:8200/team/db", "vault.internal:8200/team/db-password"}) {
		t.Errorf("PolicyRefs = %v", got)
	}
	// A store whose every secret is named per field has no store-level reference.
	opener, err := stores.NewOpener(stores.Options{CustomStoreHosts: []string{"vault.internal:8200"}})
	if err != nil {
		t.Fatal(err)
	}
	defer opener.Close()
	if _, ref, err := opener.Open(context.Background(), &stores.Spec{Type: "custom", Config: custom, Fields: map[string]stores.SecretField{"password": {Secret: "team/db"}}}); err != nil || ref != nil {
		t.Errorf("Open: ref %v, err %v", ref, err)
	}
}

func mustFields(t *testing.T, js string) map[string]stores.SecretField {
	t.Helper()
	var m map[string]stores.SecretField
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
