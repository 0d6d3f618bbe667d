package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/policy"
	"github.com/secure-agent/secure-agent/secrets"
	"github.com/secure-agent/secure-agent/secrets/stores"
)

// write stores content as a policy file and returns its path.
func write(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load loads content as a policy file, failing the test on error.
func load(t testing.TB, content string) *policy.Policy {
	t.Helper()
	p, err := policy.Load(write(t, content))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func loadExample(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Load("example-policy.yaml")
	if err != nil {
		t.Fatalf("Load(example-policy.yaml): %v", err)
	}
	return p
}

// checkDenied checks that err is nil when allow, else a PolicyDenied *secrets.Error whose
// message holds every string of want.
func checkDenied(t *testing.T, err error, allow bool, want ...string) {
	t.Helper()
	if allow {
		if err != nil {
			t.Errorf("want allowed, got %v", err)
		}
		return
	}
	var se *secrets.Error
	if !errors.As(err, &se) || !errors.Is(err, secrets.PolicyDenied) {
		t.Fatalf("want a PolicyDenied *secrets.Error, got %#v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not contain %q", err.Error(), w)
		}
	}
}

// The policy's store types are the input's (secrets/stores.Types), in the same order.
func TestStoreTypesMatchStores(t *testing.T) {
	if !slices.Equal(policy.StoreTypes, stores.Types) {
		t.Fatalf("policy store types %v, stores.Types %v", policy.StoreTypes, stores.Types)
	}
}

func TestCheckStore(t *testing.T) {
	listed := load(t, "version: 1\nstores: [aws, env, aws]\n")
	none := load(t, "version: 1\nstores: []\n")
	omitted := load(t, "version: 1\n")
	def := policy.Default(nil, nil)
	for _, tc := range []struct {
		name  string
		p     *policy.Policy
		store string
		allow bool
		want  []string
	}{
		{"listed aws", listed, "aws", true, nil},
		{"listed env", listed, "env", true, nil},
		{"not listed", listed, "gcp", false, []string{"gcp store", "policy stores", "add gcp to stores"}},
		{"not listed custom", listed, "custom", false, []string{"add custom to stores"}},
		{"unknown type", listed, "hsm", false, []string{`"hsm"`, "aws, azure, gcp, env, custom, vault"}},
		{"case matters", listed, "AWS", false, nil},
		{"empty type", listed, "", false, nil},
		{"empty list", none, "aws", false, []string{"policy stores"}},
		{"omitted: every type", omitted, "custom", true, nil},
		{"omitted: unknown left to validation", omitted, "hsm", true, nil},
		{"default aws", def, "aws", true, nil},
		{"default custom", def, "custom", true, nil},
		{"zero value", &policy.Policy{}, "aws", false, []string{"an empty policy"}},
		{"nil", nil, "env", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkDenied(t, tc.p.CheckStore(tc.store), tc.allow, tc.want...)
		})
	}
}

func TestCheckSecret(t *testing.T) {
	example := loadExample(t)
	onlyAWS := load(t, "version: 1\nstores: [aws]\nsecrets:\n  aws: [\"*\"]\n  gcp: [\"*\"]\n")
	noGCP := load(t, "version: 1\nsecrets:\n  aws: [\"*\"]\n")
	edge := load(t, `version: 1
secrets:
  aws: ["prod/ünï/*", "exact", "a?c"]
  azure: ["https://vault.vault.azure.net/secrets/ÜBER-*"]
  gcp: ["*"]
  custom: ["[::1]:8200/*", "Vault.Internal/*"]
env:
  allow: ["A*", "S*", "a*"]
customStores:
  hosts: ["::1", "vault.internal"]
`)
	stars := load(t, "version: 1\nsecrets:\n  aws: [\"**\", \"x*y*z\"]\n  gcp: [\"x*y*z\"]\n")
	def := policy.Default([]string{"DB_*", "AWS_*"}, []string{"vault.internal"})
	const exampleFile = "example-policy.yaml"
	for _, tc := range []struct {
		name       string
		p          *policy.Policy
		store, ref string
		allow      bool
		want       []string
	}{
		// aws: byte for byte, "*" crosses "/".
		{"aws name", example, "aws", "prod/catalog/db", true, nil},
		{"aws nested", example, "aws", "prod/catalog/team/db", true, nil},
		{"aws arn", example, "aws", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/catalog/db-AbCdEf", true, nil},
		{"aws case", example, "aws", "Prod/catalog/db", false, []string{"aws store", `secret "Prod/catalog/db"`, "policy secrets.aws", exampleFile, "add a matching pattern to secrets.aws"}},
		{"aws other", example, "aws", "prod/billing/db", false, []string{"secrets.aws"}},
		{"aws other region", example, "aws", "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/catalog/db", false, nil},
		{"aws prefix only", example, "aws", "prod/catalog", false, nil},
		{"aws empty ref", example, "aws", "", false, nil},
		// azure: ignoring case.
		{"azure", example, "azure", "https://myvault.vault.azure.net/secrets/catalog-db", true, nil},
		{"azure case", example, "azure", "https://MyVault.vault.azure.net/secrets/CATALOG-db/0123", true, nil},
		{"azure other vault", example, "azure", "https://other.vault.azure.net/secrets/catalog-db", false, []string{"secrets.azure"}},
		{"azure name only", example, "azure", "catalog-db", false, nil},
		// gcp.
		{"gcp", example, "gcp", "projects/my-project/secrets/catalog-db", true, nil},
		{"gcp version", example, "gcp", "projects/my-project/secrets/catalog-db/versions/3", true, nil},
		{"gcp other project", example, "gcp", "projects/other/secrets/catalog-db", false, []string{"secrets.gcp"}},
		// env: denylist always, then env.allow.
		{"env allowed", example, "env", "DB_PASSWORD", true, nil},
		{"env allowed two stars", example, "env", "CATALOG_PG_PASSWORD", true, nil},
		{"env not allowed", example, "env", "OTHER", false, []string{"env store", "policy env.allow", exampleFile}},
		{"env case", example, "env", "db_password", false, nil},
		{"env denylist", example, "env", "AWS_SECRET_ACCESS_KEY", false, []string{`"AWS_*"`, "can never be read"}},
		{"env denylist lower case", edge, "env", "aws_secret_access_key", false, []string{`"AWS_*"`}},
		{"env denylist under allow S*", edge, "env", "SECURE_AGENT_POLICY_FILE", false, []string{`"SECURE_AGENT_*"`}},
		{"env allow A*", edge, "env", "ANYTHING", true, nil},
		// custom: host part ignoring case, host must be in customStores.hosts.
		{"custom", example, "custom", "vault.internal:8200/team/db", true, nil},
		{"custom host case", example, "custom", "VAULT.Internal:8200/team/db", true, nil},
		{"custom name case", example, "custom", "vault.internal:8200/Team/db", false, []string{"secrets.custom"}},
		{"custom other port", example, "custom", "vault.internal:9999/team/db", false, []string{"customStores.hosts"}},
		{"custom no port", example, "custom", "vault.internal/team/db", false, []string{"customStores.hosts"}},
		{"custom other host", example, "custom", "evil.example:8200/team/db", false, []string{"customStores.hosts"}},
		{"custom no slash", example, "custom", "vault.internal:8200", false, []string{"<store_url host[:port]>/<secret_name>"}},
		{"custom empty name", example, "custom", "vault.internal:8200/", false, nil},
		{"custom bad port", example, "custom", "vault.internal:08200/team/db", false, nil},
		{"custom ipv6", edge, "custom", "[::1]:8200/x", true, nil},
		{"custom ipv6 long form", edge, "custom", "[0:0:0:0:0:0:0:1]:8200/x", false, []string{"secrets.custom"}},
		{"custom ipv6 unbracketed", edge, "custom", "::1/x", false, nil},
		{"custom pattern host case", edge, "custom", "vault.internal/x", true, nil},
		// edge patterns.
		{"unicode", edge, "aws", "prod/ünï/x", true, nil},
		{"unicode case", edge, "aws", "prod/ÜNÏ/x", false, nil},
		{"unicode fold azure", edge, "azure", "https://vault.vault.azure.net/secrets/über-x", true, nil},
		{"? one rune", edge, "aws", "aüc", true, nil},
		{"? not two", edge, "aws", "abbc", false, nil},
		{"literal pattern", edge, "aws", "exact", true, nil},
		{"literal pattern, longer", edge, "aws", "exactly", false, nil},
		{"** is *", stars, "aws", "anything/at/all", true, nil},
		{"several stars", stars, "gcp", "x--y--z", true, nil},
		{"several stars, in order", stars, "gcp", "x--z--y", false, nil},
		{"* alone", edge, "gcp", "projects/p/secrets/s", true, nil},
		{"* alone, empty", edge, "gcp", "", true, nil},
		{"too long", stars, "aws", strings.Repeat("a", policy.MaxRefBytes+1), false, []string{"longer than 4096 bytes"}},
		{"longest", stars, "aws", strings.Repeat("a", policy.MaxRefBytes), true, nil},
		// stores and sections.
		{"store not listed", onlyAWS, "gcp", "x", false, []string{"policy stores", "add gcp to stores"}},
		{"no secrets entry", noGCP, "gcp", "projects/p/secrets/s", false, []string{"has no secrets.gcp", "may read no secret"}},
		{"no env section", noGCP, "env", "DB_X", false, []string{"env.allow"}},
		{"no custom hosts", noGCP, "custom", "vault.internal/x", false, []string{"customStores.hosts"}},
		{"unknown store", noGCP, "hsm", "x", false, nil},
		{"zero value", &policy.Policy{}, "aws", "x", false, nil},
		{"nil", nil, "aws", "x", false, nil},
		// default: every path, env rules still apply.
		{"default aws", def, "aws", "anything", true, nil},
		{"default azure", def, "azure", "anything", true, nil},
		{"default custom", def, "custom", "other.host/x", true, nil},
		{"default env allowed", def, "env", "DB_X", true, nil},
		{"default env not allowed", def, "env", "OTHER", false, []string{"SECURE_AGENT_ENV_ALLOW", "default policy"}},
		{"default env denylist beats allowlist", def, "env", "AWS_SECRET_ACCESS_KEY", false, []string{`"AWS_*"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.CheckSecret(tc.store, tc.ref)
			checkDenied(t, err, tc.allow, tc.want...)
			var se *secrets.Error
			if errors.As(err, &se) && (se.Store != tc.store || (se.Ref != tc.ref && len(tc.ref) <= policy.MaxRefBytes)) {
				t.Errorf("Store %q Ref %q, want %q %q", se.Store, se.Ref, tc.store, tc.ref)
			}
		})
	}
}

const destinationsPolicy = `version: 1
destinations:
  default: deny
  rules:
    - secrets: ["prod/catalog/*"]
      hosts: ["db.internal:5432", "*.replica.internal:5432"]
    - secrets: ["prod/*"]
      hosts: ["bastion.internal"]
    - secrets: ["DB_*"]
      hosts: ["[2001:db8::1]:5432", "[2001:db8::ff:*]", "10.0.0.1:*", "localhost."]
    - secrets: ["*-ünï"]
      hosts: ["BÜCHER.example:443"]
    - secrets: ["vault.internal:8200/team/*"]
      hosts: ["warehouse.internal:*"]
`

func TestCheckDestination(t *testing.T) {
	deny := load(t, destinationsPolicy)
	allow := load(t, strings.Replace(destinationsPolicy, "default: deny", "default: allow", 1))
	noDefault := load(t, strings.Replace(destinationsPolicy, "  default: deny\n", "", 1))
	onlyDefaultAllow := load(t, "version: 1\ndestinations:\n  default: allow\n")
	omitted := load(t, "version: 1\n")
	aliases := load(t, `version: 1
destinations:
  default: allow
  rules:
    - secrets: ["prod/catalog/*", "catalog-*", "projects/p/secrets/s", "arn:aws:secretsmanager:*:*:secret:billing/*"]
      hosts: ["db.internal:5432"]
    - secrets: ["PROD/X"]
      hosts: ["one.internal"]
    - secrets: ["prod/x"]
      hosts: ["two.internal"]
`)
	def := policy.Default(nil, nil)
	catalog := []string{"prod/catalog/db"}
	for _, tc := range []struct {
		name    string
		p       *policy.Policy
		host    string
		port    int
		secrets []string
		allow   bool
		want    []string
	}{
		// literals are not restricted.
		{"literals", deny, "anywhere.example", 1, nil, true, nil},
		{"literals, empty list", deny, "", 0, []string{}, true, nil},
		// exact host and port, host glob, case, trailing dot.
		{"exact", deny, "db.internal", 5432, catalog, true, nil},
		{"host case", deny, "DB.Internal", 5432, catalog, true, nil},
		{"trailing dot", deny, "db.internal.", 5432, catalog, true, nil},
		{"other port", deny, "db.internal", 5433, catalog, false, []string{"destinations.rules[0] (line 5), destinations.rules[1] (line 7) cover this secret", "policy file"}},
		{"port 0 needs a portless pattern", deny, "db.internal", 0, catalog, false, nil},
		{"negative port", deny, "bastion.internal", -1, catalog, false, nil},
		{"port too large", deny, "bastion.internal", 70000, catalog, false, nil},
		{"glob host", deny, "a.replica.internal", 5432, catalog, true, nil},
		{"glob host crosses dots", deny, "a.b.replica.internal", 5432, catalog, true, nil},
		{"glob host needs its dot", deny, "replica.internal", 5432, catalog, false, nil},
		{"suffix attack", deny, "a.replica.internal.evil.example", 5432, catalog, false, nil},
		{"empty host", deny, "", 5432, catalog, false, nil},
		// any rule covering the secret suffices.
		{"second covering rule, any port", deny, "bastion.internal", 2222, catalog, true, nil},
		{"only the broader rule covers", deny, "bastion.internal", 1, []string{"prod/x"}, true, nil},
		{"broader rule does not list db", deny, "db.internal", 5432, []string{"prod/x"}, false, []string{"destinations.rules[1] (line 7) covers this secret", "add the destination host and port to the hosts of that rule"}},
		// default.
		{"uncovered, deny", deny, "db.internal", 5432, []string{"dev/x"}, false, []string{`secret "dev/x"`, "no rule of destinations.rules covers this secret", "destinations.default is deny"}},
		{"uncovered, no default = deny", noDefault, "db.internal", 5432, []string{"dev/x"}, false, []string{"destinations.default is deny"}},
		{"uncovered, allow", allow, "anywhere.example", 1, []string{"dev/x"}, true, nil},
		{"covered, allow still restricts", allow, "anywhere.example", 5432, catalog, false, nil},
		{"covered, allow, listed host", allow, "db.internal", 5432, catalog, true, nil},
		{"default allow, no rules", onlyDefaultAllow, "anywhere.example", 1, catalog, true, nil},
		{"section omitted", omitted, "anywhere.example", 1, catalog, true, nil},
		{"default policy", def, "anywhere.example", 1, catalog, true, nil},
		{"zero value", &policy.Policy{}, "db.internal", 5432, catalog, false, nil},
		{"nil", nil, "db.internal", 5432, catalog, false, nil},
		// IPv6 and IPv4.
		{"ipv6 bracketed", deny, "[2001:db8::1]", 5432, []string{"DB_PASS"}, true, nil},
		{"ipv6 bare", deny, "2001:db8::1", 5432, []string{"DB_PASS"}, true, nil},
		{"ipv6 long form", deny, "2001:DB8:0:0:0:0:0:1", 5432, []string{"DB_PASS"}, true, nil},
		{"ipv6 other port", deny, "2001:db8::1", 5433, []string{"DB_PASS"}, false, nil},
		{"ipv6 glob, any port", deny, "2001:db8::ff:7", 1, []string{"DB_PASS"}, true, nil},
		{"ipv6 other address", deny, "2001:db9::1", 5432, []string{"DB_PASS"}, false, nil},
		{"ipv4 any port", deny, "10.0.0.1", 3306, []string{"DB_PASS"}, true, nil},
		{"ipv4-mapped ipv6", deny, "::ffff:10.0.0.1", 3306, []string{"DB_PASS"}, true, nil},
		{"ipv4 other", deny, "10.0.0.10", 3306, []string{"DB_PASS"}, false, nil},
		{"pattern trailing dot", deny, "localhost", 5432, []string{"DB_PASS"}, true, nil},
		// unicode: secret pattern and host, case-insensitive host.
		{"unicode", deny, "bücher.example", 443, []string{"x-ünï"}, true, nil},
		{"unicode host case", deny, "BÜCHER.EXAMPLE", 443, []string{"x-ünï"}, true, nil},
		{"unicode secret case", deny, "bücher.example", 443, []string{"x-ÜNÏ"}, false, nil},
		// custom references and env names are secret paths like any other.
		{"custom ref", deny, "warehouse.internal", 1234, []string{"vault.internal:8200/team/db"}, true, nil},
		{"host too long", deny, strings.Repeat("a", 1025), 5432, []string{"DB_PASS"}, false, nil},
		{"secret too long", allow, "anywhere", 5432, []string{strings.Repeat("a", policy.MaxRefBytes+1)}, false, []string{"longer than 4096 bytes"}},
		// several secrets: each must be allowed.
		{"two allowed", deny, "bastion.internal", 22, []string{"prod/catalog/db", "prod/x"}, true, nil},
		{"one refused", deny, "db.internal", 5432, []string{"prod/catalog/db", "DB_PASS"}, false, []string{`secret "DB_PASS"`}},
		{"two refused", deny, "db.internal", 5432, []string{"dev/a", "prod/catalog/db", "dev/b", "dev/a"}, false, []string{`secret "dev/a"`, `secret "dev/b" is refused as well`}},
		{"three refused", deny, "db.internal", 5432, []string{"dev/a", "dev/b", "dev/c"}, false, []string{`secrets "dev/b", "dev/c" are refused as well`}},
		// default: allow also catches other spellings of a covered secret.
		{"alias: case", aliases, "evil.example", 5432, []string{"PROD/CATALOG/db"}, false, nil},
		{"alias: case, listed host", aliases, "db.internal", 5432, []string{"PROD/CATALOG/db"}, true, nil},
		{"alias: arn name", aliases, "evil.example", 5432, []string{"arn:aws:secretsmanager:eu-west-1:1:secret:prod/catalog/db-AbCdEf"}, false, nil},
		{"alias: arn name, listed host", aliases, "db.internal", 5432, []string{"arn:aws:secretsmanager:eu-west-1:1:secret:prod/catalog/db-AbCdEf"}, true, nil},
		{"alias: arn pattern", aliases, "evil.example", 5432, []string{"billing/db"}, false, nil},
		{"alias: azure url", aliases, "evil.example", 5432, []string{"https://v.vault.azure.net/secrets/Catalog-db/0123"}, false, nil},
		{"alias: gcp version", aliases, "evil.example", 5432, []string{"projects/p/secrets/s/versions/3"}, false, nil},
		{"alias: unrelated", aliases, "evil.example", 5432, []string{"dev/x"}, true, nil},
		{"alias: exact match wins", aliases, "two.internal", 5432, []string{"PROD/X"}, false, []string{"destinations.rules[1]"}},
		{"alias: exact match allowed", aliases, "one.internal", 5432, []string{"PROD/X"}, true, nil},
		{"alias: not under deny", deny, "bastion.internal", 22, []string{"PROD/x"}, false, []string{"default is deny"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.CheckDestination(tcp(tc.host, tc.port), tc.secrets)
			checkDenied(t, err, tc.allow, tc.want...)
		})
	}
}

// The destination host and port may come from a secret: a refusal never prints them.
func TestCheckDestinationHidesHost(t *testing.T) {
	for _, p := range []*policy.Policy{load(t, destinationsPolicy), loadExample(t)} {
		for _, secret := range []string{"prod/catalog/db", "dev/x", "DB_PASS"} {
			err := p.CheckDestination(tcp("canary-host-4f7a.example", 31337), []string{secret})
			if err == nil {
				t.Fatalf("%s: want a refusal", secret)
			}
			if msg := err.Error(); strings.Contains(msg, "canary") || strings.Contains(msg, "31337") {
				t.Errorf("message prints the destination: %s", msg)
			}
			if !strings.Contains(err.Error(), "the destination host") {
				t.Errorf("message does not say which check failed: %s", err)
			}
		}
	}
}

func TestDefault(t *testing.T) {
	envAllow := []string{"DB_*"}
	hosts := []string{"vault.internal:8200"}
	p := policy.Default(envAllow, hosts)
	envAllow[0], hosts[0] = "CHANGED", "changed"
	if got := p.EnvAllow(); !slices.Equal(got, []string{"DB_*"}) {
		t.Errorf("EnvAllow %v", got)
	}
	if got := p.CustomHosts(); !slices.Equal(got, []string{"vault.internal:8200"}) {
		t.Errorf("CustomHosts %v", got)
	}
	if got := p.CustomHeaderEnv(); len(got) != 0 {
		t.Errorf("CustomHeaderEnv %v", got)
	}
	if p.AllowSensitiveLiterals() {
		t.Error("AllowSensitiveLiterals: want false")
	}
	if p.Source() != "" {
		t.Errorf("Source %q", p.Source())
	}
	for _, s := range policy.StoreTypes {
		if err := p.CheckStore(s); err != nil {
			t.Errorf("CheckStore(%s): %v", s, err)
		}
	}
	if err := p.CheckDestination(tcp("anywhere", 1), []string{"a", "b"}); err != nil {
		t.Errorf("CheckDestination: %v", err)
	}
	d := policy.Defaults{EnvAllow: []string{"X"}, CustomHeaderEnv: []string{"VAULT_TOKEN"}, AllowSensitiveLiterals: true}.Policy()
	if !d.AllowSensitiveLiterals() || !slices.Equal(d.CustomHeaderEnv(), []string{"VAULT_TOKEN"}) || len(d.CustomHosts()) != 0 {
		t.Errorf("Defaults.Policy: %s", d.Describe())
	}
	empty := policy.Default(nil, nil)
	if err := empty.CheckSecret("env", "DB_X"); err == nil {
		t.Error("empty env allowlist must allow nothing")
	}
}

func TestAccessorsReturnCopies(t *testing.T) {
	p := loadExample(t)
	for name, get := range map[string]func() []string{"EnvAllow": p.EnvAllow, "CustomHosts": p.CustomHosts, "CustomHeaderEnv": p.CustomHeaderEnv} {
		a := get()
		if len(a) == 0 {
			t.Fatalf("%s empty", name)
		}
		a[0] = "CHANGED"
		if get()[0] == "CHANGED" {
			t.Errorf("%s returns its own slice", name)
		}
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *policy.Policy
		want []string
	}{
		{"example", loadExample(t), []string{"policy file example-policy.yaml", "stores aws, azure, gcp, env, custom", "secret path patterns aws 2, azure 1, gcp 1, custom 1", "destinations: 5 rules, default deny", "env allowlist 2 patterns", "custom-store hosts 1, header variables 1", "SQLite directories 1", "s3 output: 1 bucket pattern, 2 endpoints", "sensitive literals refused"}},
		{"minimal", load(t, "version: 1\n"), []string{"every store type", "no secret path patterns", "destinations not restricted", "env allowlist 0 patterns", "SQLite directories 0", "s3 output refused"}},
		{"no stores", load(t, "version: 1\nstores: []\nallowSensitiveLiterals: true\ndestinations: {default: allow}\n"), []string{"no store type", "destinations: 0 rules, default allow", "sensitive literals ALLOWED"}},
		{"default", policy.Default([]string{"DB_*"}, nil), []string{"default policy (no policy file)", "destinations not restricted", "env allowlist 1 pattern;", "s3 output not restricted"}},
		{"zero", &policy.Policy{}, []string{"an empty policy", "no store type"}},
		{"nil", nil, []string{"an empty policy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.p.Describe()
			for _, w := range tc.want {
				if !strings.Contains(d, w) {
					t.Errorf("Describe() = %q, missing %q", d, w)
				}
			}
			for _, value := range []string{"prod/catalog", "DB_*", "vault.internal", "VAULT_TOKEN", "db.internal"} {
				if strings.Contains(d, value) {
					t.Errorf("Describe() = %q holds the pattern %q", d, value)
				}
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	p := loadExample(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				_ = p.CheckStore("aws")
				_ = p.CheckSecret("aws", "prod/catalog/db")
				_ = p.CheckSecret("custom", "vault.internal:8200/team/x")
				_ = p.CheckDestination(tcp("db.internal", 5432+i), []string{"prod/catalog/db", "DB_X"})
				_ = p.EnvAllow()
				_ = p.Describe()
			}
		})
	}
	wg.Wait()
}

// tcp is a TCP destination as the policy receives it. The host is not put in canonical form
// here, so the tests also prove that the policy compares normalized hosts.
func tcp(host string, port int) netguard.Destination {
	return netguard.Destination{Network: netguard.NetworkTCP, Host: host, Port: port}
}
