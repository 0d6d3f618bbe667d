package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/policy"
)

// loadErr loads content and returns the error's lines (one per problem), failing if it loads.
func loadErr(t *testing.T, content string) []string {
	t.Helper()
	path := write(t, content)
	p, err := policy.Load(path)
	if err == nil {
		t.Fatalf("Load succeeded (%s), want an error", p.Describe())
	}
	if p != nil {
		t.Error("Load returned a policy with its error")
	}
	return strings.Split(strings.ReplaceAll(err.Error(), path, "FILE"), "\n")
}

func TestLoadExample(t *testing.T) {
	p := loadExample(t)
	if p.Source() != "example-policy.yaml" {
		t.Errorf("Source %q", p.Source())
	}
	if got := p.EnvAllow(); !slices.Equal(got, []string{"DB_*", "CATALOG_*_PASSWORD"}) {
		t.Errorf("EnvAllow %v", got)
	}
	if got := p.CustomHosts(); !slices.Equal(got, []string{"vault.internal:8200"}) {
		t.Errorf("CustomHosts %v", got)
	}
	if got := p.CustomHeaderEnv(); !slices.Equal(got, []string{"VAULT_TOKEN"}) {
		t.Errorf("CustomHeaderEnv %v", got)
	}
	if p.AllowSensitiveLiterals() {
		t.Error("AllowSensitiveLiterals")
	}
	for _, c := range []struct {
		host    string
		port    int
		secret  string
		allowed bool
	}{
		{"db.internal", 5432, "prod/catalog/db", true},
		{"x.replica.internal", 5432, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/catalog/db-AbCdEf", true},
		{"mysql.internal", 3306, "https://myvault.vault.azure.net/secrets/catalog-db", true},
		{"2001:db8::10", 3306, "projects/my-project/secrets/catalog-db", true},
		{"localhost", 5432, "DB_PASSWORD", true},
		{"warehouse.internal", 443, "vault.internal:8200/team/db", true},
		{"db.internal", 5432, "DB_PASSWORD", false},
		{"db.internal", 5432, "prod/other", false},
	} {
		err := p.CheckDestination(tcp(c.host, c.port), []string{c.secret})
		if (err == nil) != c.allowed {
			t.Errorf("%s -> %s:%d: %v, want allowed=%v", c.secret, c.host, c.port, err, c.allowed)
		}
	}
}

// The example file, as JSON (tabs included), loads to the same policy.
func TestLoadJSON(t *testing.T) {
	p := load(t, "{\n\t\"version\": 1,\n\t\"stores\": [\"aws\", \"env\"],\n\t\"secrets\": {\"aws\": [\"prod/catalog/*\"]},\n"+
		"\t\"env\": {\"allow\": [\"DB_*\"]},\n\t\"customStores\": {\"hosts\": [\"vault.internal:8200\"], \"headerEnv\": [\"VAULT_TOKEN\"]},\n"+
		"\t\"destinations\": {\"default\": \"deny\", \"rules\": [{\"secrets\": [\"prod/catalog/*\"], \"hosts\": [\"db.internal:5432\"]}]},\n"+
		"\t\"allowSensitiveLiterals\": false\n}\n")
	if err := p.CheckSecret("aws", "prod/catalog/db"); err != nil {
		t.Error(err)
	}
	if err := p.CheckStore("gcp"); err == nil {
		t.Error("gcp allowed")
	}
	if err := p.CheckDestination(tcp("db.internal", 5432), []string{"prod/catalog/db"}); err != nil {
		t.Error(err)
	}
	if err := p.CheckDestination(tcp("db.internal", 5433), []string{"prod/catalog/db"}); err == nil {
		t.Error("other port allowed")
	}
}

// Omitted sections: every refusal is the safe one, except stores and a missing destinations.
func TestLoadOmitted(t *testing.T) {
	p := load(t, "version: 1\n")
	for _, s := range []string{"aws", "azure", "gcp", "env", "custom"} {
		if err := p.CheckStore(s); err != nil {
			t.Errorf("CheckStore(%s): %v", s, err)
		}
	}
	for store, ref := range map[string]string{"aws": "x", "azure": "x", "gcp": "x", "env": "DB_X", "custom": "h/x"} {
		if err := p.CheckSecret(store, ref); err == nil {
			t.Errorf("CheckSecret(%s) allowed", store)
		}
	}
	if len(p.EnvAllow())+len(p.CustomHosts())+len(p.CustomHeaderEnv()) != 0 || p.AllowSensitiveLiterals() {
		t.Errorf("not empty: %s", p.Describe())
	}
	if err := p.CheckDestination(tcp("anywhere", 1), []string{"x"}); err != nil {
		t.Errorf("destinations omitted must not restrict: %v", err)
	}
	empty := load(t, "version: 1\ndestinations: {}\n")
	if err := empty.CheckDestination(tcp("anywhere", 1), []string{"x"}); err == nil {
		t.Error("destinations: {} must deny")
	}
	tagged := load(t, "version: !!int 1\nsecrets: !!map {aws: !!seq [!!str a]}\n")
	if err := tagged.CheckSecret("aws", "a"); err != nil {
		t.Errorf("standard tags: %v", err)
	}
	all := load(t, "version: 1\nsecrets: {aws: [\"*\"]}\n")
	if err := all.CheckSecret("aws", "anything/at/all"); err != nil {
		t.Error(err)
	}
}

func TestLoadProblems(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    []string // each must appear in some line
	}{
		// keys.
		{"unknown top key", "version: 1\ndestination: {}\n", []string{`FILE:2:1: unknown key "destination" at the top level: the keys are version, stores, secrets, env, customStores, destinations, sqlite, outputs, allowSensitiveLiterals`}},
		{"long unknown key", "version: 1\n" + strings.Repeat("k", 500) + ": 1\n", []string{`unknown key "` + strings.Repeat("k", 64) + `…" at the top level`}},
		{"unknown key hint", "version: 1\ncustomstores: {}\n", []string{`unknown key "customstores" at the top level (did you mean customStores?)`}},
		{"unknown nested key", "version: 1\ndestinations:\n  rules:\n    - secrets: [a]\n      host: [b]\n", []string{`FILE:5:7: unknown key "host" in destinations.rules[0]`, "FILE:4:7: destinations.rules[0]: hosts is missing"}},
		{"unknown env key", "version: 1\nenv: {allowed: [A]}\n", []string{`FILE:2:7: unknown key "allowed" in env: the keys are allow`}},
		{"unknown secrets store", "version: 1\nsecrets: {hsm: [a]}\n", []string{`unknown key "hsm" in secrets: the keys are aws, azure, gcp, custom, vault, env`}},
		{"secrets.env", "version: 1\nsecrets: {env: [A]}\n", []string{"secrets.env: is not used", "env.allow"}},
		{"repeated key", "version: 1\nstores: [aws]\nstores: [gcp]\n", []string{`FILE:3:1: key "stores" is repeated (first at line 2)`}},
		{"repeated nested key", "version: 1\nenv:\n  allow: [A]\n  allow: [B]\n", []string{`key "env.allow" is repeated (first at line 3)`}},
		{"non-scalar key", "version: 1\n? [a]\n: b\n", []string{"a key must be a plain name"}},
		// version.
		{"version missing", "stores: [aws]\n", []string{"FILE:1:1: version is missing: add version: 1"}},
		{"version 2", "version: 2\n", []string{"FILE:1:10: version: is not a version this agent reads: write version: 1"}},
		{"version string", "version: \"1\"\n", []string{"version: is not a version"}},
		{"version float", "version: 1.0\n", []string{"version: is not a version"}},
		{"version list", "version: [1]\n", []string{"version: must be a number"}},
		{"version null", "version:\n", []string{"version: has no value"}},
		// stores.
		{"unknown store", "version: 1\nstores: [aws, hsm]\n", []string{"FILE:2:15: stores[1]: is not a store type: use aws, azure, gcp, env, custom, vault"}},
		{"stores not a list", "version: 1\nstores: aws\n", []string{"stores: must be a list of store types"}},
		{"stores item not scalar", "version: 1\nstores: [[aws]]\n", []string{"stores[0]: must be store types"}},
		// patterns.
		{"empty pattern", "version: 1\nsecrets: {aws: [\"\"]}\n", []string{`secrets.aws[0]: is empty: write a pattern, or "*" for any`}},
		{"backslash", "version: 1\nsecrets: {gcp: ['a\\*']}\n", []string{"secrets.gcp[0]: contains"}},
		{"control character", "version: 1\nsecrets: {azure: [\"a\\tb\"]}\n", []string{"secrets.azure[0]: contains a control character"}},
		{"spaces", "version: 1\nsecrets: {custom: [\" h/x\"]}\n", []string{"secrets.custom[0]: has leading or trailing spaces"}},
		{"too long", "version: 1\nsecrets: {aws: [\"" + strings.Repeat("a", 1025) + "\"]}\n", []string{"secrets.aws[0]: is longer than 1024 bytes"}},
		{"unquoted star", "version: 1\nsecrets: {aws: [*]}\n", []string{"FILE: not valid YAML or JSON"}},
		{"alias", "version: 1\nsecrets:\n  aws: &p [a]\n  gcp: *p\n", []string{"secrets.gcp: YAML aliases (*name) are not supported"}},
		{"yaml tag", "version: 1\nsecrets: {aws: [!!binary aGk=]}\n", []string{"secrets.aws[0]: has a YAML tag this file does not use"}},
		{"unknown anchor", "version: 1\nstores: *s\n", []string{"FILE: not valid YAML or JSON: unknown anchor '…' referenced"}},
		{"pattern list null", "version: 1\nsecrets: {aws: }\n", []string{"secrets.aws: has no value"}},
		{"pattern item null", "version: 1\nsecrets: {aws: [a, null]}\n", []string{"secrets.aws[1]: has no value"}},
		// env patterns.
		{"env bad character", "version: 1\nenv: {allow: [DB-*]}\n", []string{"env.allow[0]: may hold only letters, digits, _ and the wildcards * and ?"}},
		{"env denylisted", "version: 1\nenv: {allow: [\"AWS_*\", aws_secret_access_key, SECURE_AGENT_X, \"TEMPORAL_*_KEY\"]}\n", []string{
			"env.allow[0]: can only match variables that the built-in denylist protects (AWS_*)",
			"env.allow[1]: can only match variables that the built-in denylist protects (AWS_*)",
			"env.allow[2]: can only match variables that the built-in denylist protects (SECURE_AGENT_*)",
			"env.allow[3]: can only match variables that the built-in denylist protects (TEMPORAL_*)"}},
		{"header env denylisted", "version: 1\ncustomStores: {headerEnv: [\"GOOGLE_*\"]}\n", []string{"customStores.headerEnv[0]: can only match"}},
		{"env bracket", "version: 1\nenv: {allow: [\"DB_[AB]\"]}\n", []string{"env.allow[0]: may hold only"}},
		// custom hosts.
		{"custom host bracketed", "version: 1\ncustomStores: {hosts: [\"[::1]:8200\"]}\n", []string{"customStores.hosts[0]: write an IPv6 address without brackets"}},
		{"custom host port", "version: 1\ncustomStores: {hosts: [\"vault:0\", \"vault:*\", \"vault:\"]}\n", []string{"customStores.hosts[0]: has a port that is not a number from 1 to 65535", "customStores.hosts[1]: has a port", "customStores.hosts[2]: has \":\" but no port"}},
		{"custom host url", "version: 1\ncustomStores: {hosts: [\"https://vault\"]}\n", []string{"customStores.hosts[0]: must be a host or host:port, without a scheme"}},
		// destinations.
		{"bad default", "version: 1\ndestinations: {default: Deny}\n", []string{"FILE:2:25: destinations.default: must be deny or allow (lower case)"}},
		{"default not scalar", "version: 1\ndestinations: {default: [deny]}\n", []string{"destinations.default: must be deny or allow"}},
		{"default null", "version: 1\ndestinations:\n  default:\n", []string{"destinations.default: has no value"}},
		{"destinations null", "version: 1\ndestinations:\n", []string{"destinations: has no value"}},
		{"rules not a list", "version: 1\ndestinations: {rules: {secrets: [a]}}\n", []string{"destinations.rules: must be a list of rules"}},
		{"rule not a mapping", "version: 1\ndestinations: {rules: [a]}\n", []string{"destinations.rules[0]: must be a mapping"}},
		{"rule empty", "version: 1\ndestinations: {rules: [{}]}\n", []string{"destinations.rules[0]: secrets is missing", "destinations.rules[0]: hosts is missing"}},
		{"rule empty lists", "version: 1\ndestinations: {rules: [{secrets: [], hosts: []}]}\n", []string{"destinations.rules[0].secrets: is empty", "destinations.rules[0].hosts: is empty"}},
		{"host port range", "version: 1\ndestinations: {rules: [{secrets: [a], hosts: [\"db:65536\", \"db:0\", \"db:+5\", \"db:05432\", \"db:\", \"db:x\"]}]}\n", []string{
			"hosts[0]: has a port that is not a number from 1 to 65535 or *", "hosts[1]: has a port", "hosts[2]: has a port", "hosts[3]: has a port", "hosts[4]: has \":\" but no port", "hosts[5]: has a port"}},
		{"host ipv6 without brackets", "version: 1\ndestinations: {rules: [{secrets: [a], hosts: [\"2001:db8::1\"]}]}\n", []string{"hosts[0]: write an IPv6 address in brackets"}},
		{"host brackets", "version: 1\ndestinations: {rules: [{secrets: [a], hosts: [\"[db.internal]\", \"[::1\", \"[::1]x\", \"a[b]\", \"[]:5\", \"[[::1]]\"]}]}\n", []string{
			"hosts[0]: brackets are for IPv6 addresses only", "hosts[1]: has \"[\" without \"]\"", "hosts[2]: has text after \"]\"", "hosts[3]: \"[\" and \"]\" may only enclose", "hosts[4]: has no host", "hosts[5]: has nested brackets"}},
		{"host empty parts", "version: 1\ndestinations: {rules: [{secrets: [a], hosts: [\":5432\", \"\", \".\"]}]}\n", []string{"hosts[0]: has no host", "hosts[1]: is empty", "hosts[2]: has no host"}},
		{"host with path or user", "version: 1\ndestinations: {rules: [{secrets: [a], hosts: [\"db/x\", \"u@db\", \"postgres://db:5432\"]}]}\n", []string{"hosts[0]: must be a host", "hosts[1]: must be a host", "hosts[2]: must be a host"}},
		{"allowSensitiveLiterals string", "version: 1\nallowSensitiveLiterals: \"true\"\n", []string{"allowSensitiveLiterals: must be true or false"}},
		{"allowSensitiveLiterals yes", "version: 1\nallowSensitiveLiterals: yes\n", []string{"allowSensitiveLiterals: must be true or false"}},
		// documents.
		{"empty file", "", []string{"FILE: the policy file is empty"}},
		{"comments only", "# nothing\n", []string{"FILE: the policy file is empty"}},
		{"top not a mapping", "- version: 1\n", []string{"FILE:1:1: the policy must be a mapping"}},
		{"top scalar", "hello\n", []string{"FILE:1:1: the policy must be a mapping"}},
		{"top null", "---\n", []string{"the policy must be a mapping"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"FILE: the policy file must hold a single YAML document"}},
		{"syntax error", "version: 1\nstores: [aws\n", []string{"FILE: not valid YAML or JSON"}},
		{"syntax error in a second document", "version: 1\n---\nstores: [\n", []string{"FILE: not valid YAML or JSON: line 3"}},
		{"tab indentation", "version: 1\nenv:\n\tallow: [A]\n", []string{"FILE: not valid YAML or JSON"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := loadErr(t, tc.content)
			for _, w := range tc.want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
					t.Errorf("no problem contains %q; got:\n%s", w, strings.Join(lines, "\n"))
				}
			}
		})
	}
}

// Every problem is reported at once, each with its own position.
func TestLoadReportsEveryProblem(t *testing.T) {
	lines := loadErr(t, `version: 2
stores: [aws, hsm]
secrets:
  aws: [""]
  hsm: [a]
env:
  allow: ["AWS_*", "DB-X"]
customStores:
  hosts: ["[::1]"]
  tokens: [X]
destinations:
  default: maybe
  rules:
    - secrets: ["prod/*"]
      hosts: ["db:99999", "2001:db8::1"]
    - hosts: [db]
allowSensitiveLiterals: "no"
extra: 1
`)
	want := []string{
		"FILE:1:10: version:",
		"FILE:2:15: stores[1]:",
		"FILE:4:9: secrets.aws[0]:",
		"FILE:5:3: unknown key \"hsm\" in secrets",
		"FILE:7:11: env.allow[0]:",
		"FILE:7:20: env.allow[1]:",
		"FILE:9:11: customStores.hosts[0]:",
		"FILE:10:3: unknown key \"tokens\" in customStores",
		"FILE:12:12: destinations.default:",
		"FILE:15:15: destinations.rules[0].hosts[0]:",
		"FILE:15:27: destinations.rules[0].hosts[1]:",
		"FILE:16:7: destinations.rules[1]: secrets is missing",
		"FILE:17:25: allowSensitiveLiterals:",
		"FILE:18:1: unknown key \"extra\"",
	}
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if i < len(lines) && !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

// A secret file configured as the policy by mistake: the errors name keys and positions, never
// the values.
func TestLoadErrorsHoldNoValues(t *testing.T) {
	const canary = "hunter2-canary"
	for _, content := range []string{
		`{"username": "admin", "password": "` + canary + `"}`,
		"version: " + canary + "\n",
		"version: 1\nstores: [" + canary + "]\n",
		"version: 1\nenv: {allow: [\"" + canary + "\"]}\n",
		"version: 1\ncustomStores: {hosts: [\"" + canary + ":99999\"]}\n",
		"version: 1\ndestinations: {default: " + canary + ", rules: [{secrets: [\" " + canary + "\"], hosts: [\"" + canary + "/x\"]}]}\n",
		"version: 1\nallowSensitiveLiterals: " + canary + "\n",
		canary + "\n",
		"DB_PASSWORD=" + canary + "\n",
		"version: 1\nstores: [\"" + canary + "\n",
		"version: 1\nstores: *" + canary + "\n",
		"version: 1\nstores: [!!binary " + canary + "]\n",
		"version: 1\nstores: [!" + canary + " aws]\n",
	} {
		lines := loadErr(t, content)
		if msg := strings.Join(lines, "\n"); strings.Contains(msg, "hunter2") {
			t.Errorf("error repeats a value:\n%s", msg)
		}
	}
}

func TestLoadFile(t *testing.T) {
	if _, err := policy.Load(""); err == nil {
		t.Error("empty path loaded")
	}
	_, err := policy.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := "version: 1\n" + strings.Repeat("# padding\n", policy.MaxFileBytes/10+1)
	if lines := loadErr(t, big); !strings.Contains(lines[0], "larger than") {
		t.Errorf("large file: %v", lines)
	}
	dir := t.TempDir()
	if _, err := policy.Load(dir); err == nil {
		t.Error("a directory loaded")
	}
}

func TestPatternProblem(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		env     bool
		ok      bool
	}{
		{"*", false, true},
		{"?", false, true},
		{"prod/ünï/*", false, true},
		{"[::1]:8200/x", false, true},
		{"", false, false},
		{"\xff", false, false},
		{"a\x00b", false, false},
		{"a\u0085b", false, false},
		{"a\\b", false, false},
		{" a", false, false},
		{"a\u00a0", false, false},
		{strings.Repeat("x", 1024), false, true},
		{strings.Repeat("x", 1025), false, false},
		{"DB_*", true, true},
		{"*", true, true},
		{"AWS*", true, true}, // AWSOME is not on the denylist
		{"*_PASSWORD", true, true},
		{"Db_?", true, true},
		{"AWS_*", true, false},
		{"aws_x", true, false},
		{"Identity_?", true, false},
		{"DB-X", true, false},
		{"DB.X", true, false},
		{"DBÜ", true, false},
		{"", true, false},
	} {
		check := policy.PatternProblem
		if tc.env {
			check = policy.EnvPatternProblem
		}
		if msg := check(tc.pattern); (msg == "") != tc.ok {
			t.Errorf("%q (env %v): %q, want ok=%v", tc.pattern, tc.env, msg, tc.ok)
		}
	}
}
