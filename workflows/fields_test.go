package workflows

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestValidateStoreFields: secretStore.fields names connector fields only, never one the
// connection gives too, and satisfies a required field; a run recorded before the rules existed
// replays with them refused, as it was validated then.
func TestValidateStoreFields(t *testing.T) {
	decode := func(js string) Input { return decodeInput(t, js) }
	good := decode(`{"connector": "postgres", "connection": {"host": "db.internal", "database": "sales"},
		"secretStore": {"type": "azure", "vaultName": "myvault", "authMethod": "workload-identity",
			"fields": {"username": {"secret": "catalog-login", "key": "username"}, "password": "catalog-password"}}}`)
	if problems := good.Validate(); len(problems) > 0 {
		t.Fatalf("valid input refused: %v", problems)
	}
	if problems := good.StartProblems(false); len(problems) > 0 {
		t.Fatalf("run and check would refuse it: %v", problems)
	}
	for name, tc := range map[string]struct{ js, want string }{
		"not a field": {`{"connector": "postgres", "connection": {"host": "h", "database": "d", "username": "u"},
			"secretStore": {"type": "env", "fields": {"passwd": "DB_PASSWORD"}}}`, "secretStore.fields.passwd is not a field of the postgres connector"},
		"given twice": {`{"connector": "postgres", "connection": {"host": "h", "database": "d", "username": "u", "password": "pw"},
			"secretStore": {"type": "env", "fields": {"password": "DB_PASSWORD"}}}`, "connection.password is also named in secretStore.fields"},
		"required missing": {`{"connector": "postgres", "connection": {"host": "h", "database": "d"},
			"secretStore": {"type": "env", "fields": {"password": "DB_PASSWORD"}}}`, "connection.username is required"},
	} {
		if problems := decode(tc.js).Validate(); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
			t.Errorf("%s: %v, want %q", name, problems, tc.want)
		}
	}
	old := good
	old.before = rulesBeforeStoreFields
	problems := old.Validate()
	for _, want := range []string{"unknown field secretStore.fields", "authMethod must be managed-identity or service-principal"} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("replayed with the old rules: %v, want %q", problems, want)
		}
	}
}

// TestSourceLabel: the source label is optional, a short line of text; a run replayed with the
// rules from before it existed refuses it as an unknown field, as it did.
func TestSourceLabel(t *testing.T) {
	decode := func(js string) Input { return decodeInput(t, js) }
	base := `{"connector": "sqlite", "connection": {"path": "DB_PATH"}, "secretStore": {"type": "env"}, "source": %s}`
	for _, ok := range []string{`"orders-prod"`, `"Entrepôt de données / EU"`, `""`} {
		if problems := decode(fmt.Sprintf(base, ok)).Validate(); len(problems) > 0 {
			t.Errorf("source %s: %v", ok, problems)
		}
	}
	for _, bad := range []string{`"line\nbreak"`, `" padded"`, `"` + strings.Repeat("x", MaxSourceLength+1) + `"`, `"\u0000"`} {
		problems := decode(fmt.Sprintf(base, bad)).Validate()
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, "source must be a label") }) {
			t.Errorf("source %.20s: %v", bad, problems)
		}
	}
	in := decode(fmt.Sprintf(base, `"orders-prod"`))
	in.before = rulesBeforeSource
	if problems := in.Validate(); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "unknown field source") }) {
		t.Errorf("replayed with the old rules: %v", problems)
	}
	in.before = rulesBeforeStoreFields // older still: no source either
	if problems := in.Validate(); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "unknown field source") }) {
		t.Errorf("replayed with the oldest rules: %v", problems)
	}
}

// decodeInput decodes a workflow input as the workflow receives it.
func decodeInput(t *testing.T, js string) Input {
	t.Helper()
	var in Input
	if err := json.Unmarshal([]byte(js), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// options.incremental takes "auto" or "full"; anything else is refused with the choices, and
// runs replayed with the rules from before it existed refuse it as an unknown field.
func TestIncrementalOption(t *testing.T) {
	base := `{"connector": "sqlite", "connection": {"path": "/data/app.db"}, "secretStore": {"type": "env"}, "options": {"incremental": %s}}`
	for _, good := range []string{`"auto"`, `"full"`} {
		if problems := decodeInput(t, fmt.Sprintf(base, good)).Validate(); len(problems) > 0 {
			t.Errorf("incremental %s: %v", good, problems)
		}
	}
	for _, bad := range []string{`"yes"`, `"AUTO"`, `" auto"`} {
		problems := decodeInput(t, fmt.Sprintf(base, bad)).Validate()
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, `options.incremental must be "auto"`) }) {
			t.Errorf("incremental %s: %v", bad, problems)
		}
	}
	if problems := decodeInput(t, fmt.Sprintf(base, `true`)).Validate(); len(problems) == 0 {
		t.Error("incremental true (not a string) was accepted")
	}
	in := decodeInput(t, fmt.Sprintf(base, `"auto"`))
	for _, rules := range []int{rulesBeforeIncremental, rulesBeforeSource, rulesBeforeStoreFields} {
		in.before = rules
		if problems := in.Validate(); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "unknown field options.incremental") }) {
			t.Errorf("replayed with rules %d: %v", rules, problems)
		}
	}
}
