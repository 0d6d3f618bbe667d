package policy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/policy"
)

func unix(path string) netguard.Destination {
	return netguard.Destination{Network: netguard.NetworkUnix, Host: path}
}

// TestUnixSocketsOnlyWhenNamed: a Unix socket is dialled only when a rule names its exact path,
// whatever the credentials (literals too) and under every default, the policy without a file
// included; wildcards and unclean paths cannot name one.
func TestUnixSocketsOnlyWhenNamed(t *testing.T) {
	named := load(t, `version: 1
destinations:
  default: allow
  rules:
    - secrets: ["prod/*"]
      hosts: ["/run/postgresql/.s.PGSQL.5432"]
`)
	open := load(t, "version: 1\n")
	def := policy.Default(nil, nil)
	sock := unix("/run/postgresql/.s.PGSQL.5432")
	for _, tc := range []struct {
		name    string
		p       *policy.Policy
		dest    netguard.Destination
		secrets []string
		allow   bool
	}{
		{"named, its secret", named, sock, []string{"prod/db"}, true},
		{"named, literals", named, sock, nil, true},
		{"named, a secret no rule covers (default allow)", named, sock, []string{"dev/x"}, true},
		{"another socket", named, unix("/tmp/.s.PGSQL.5432"), nil, false},
		{"a socket ending like a host pattern", named, unix("/tmp/x.replica.internal"), []string{"prod/db"}, false},
		{"no destinations section", open, sock, nil, false},
		{"default policy, literals", def, sock, nil, false},
		{"default policy, a secret", def, sock, []string{"prod/db"}, false},
		{"other network", def, netguard.Destination{Network: "udp", Host: "db", Port: 53}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkDenied(t, tc.p.CheckDestination(tc.dest, tc.secrets), tc.allow)
		})
	}
	for _, bad := range []string{"/run/postgresql/*", "/run/../run/.s.PGSQL.5432", "/run/postgresql/", "/run//x"} {
		if problems := loadErr(t, "version: 1\ndestinations:\n  rules:\n    - secrets: [\"x\"]\n      hosts: [\""+bad+"\"]\n"); len(problems) == 0 {
			t.Errorf("socket pattern %q accepted", bad)
		}
	}
}

// TestLegacyPasswordAuth: only a rule with legacyPasswordAuth: true, for the hosts it names.
func TestLegacyPasswordAuth(t *testing.T) {
	p := load(t, `version: 1
destinations:
  rules:
    - secrets: ["prod/*"]
      hosts: ["legacy.internal:5432"]
      legacyPasswordAuth: true
    - secrets: ["prod/*"]
      hosts: ["db.internal:5432"]
`)
	if !p.LegacyPasswordAuth(tcp("legacy.internal", 5432)) {
		t.Error("the named legacy server is not allowed legacy authentication")
	}
	for _, d := range []netguard.Destination{tcp("legacy.internal", 5433), tcp("db.internal", 5432), unix("/x")} {
		if p.LegacyPasswordAuth(d) {
			t.Errorf("%v allowed legacy authentication", d)
		}
	}
	if policy.Default(nil, nil).LegacyPasswordAuth(tcp("legacy.internal", 5432)) {
		t.Error("the default policy allows legacy authentication")
	}
	if problems := loadErr(t, "version: 1\ndestinations:\n  rules:\n    - secrets: [\"x\"]\n      hosts: [\"h\"]\n      legacyPasswordAuth: yes-please\n"); len(problems) == 0 {
		t.Error("a non-boolean legacyPasswordAuth was accepted")
	}
}

// TestCheckOutput: the s3 output is unrestricted without a policy file, refused by a file
// without outputs.s3, and otherwise limited to its buckets and hosts, whatever credentials.
func TestCheckOutput(t *testing.T) {
	listed := load(t, `version: 1
outputs:
  s3:
    buckets: ["acme-metadata", "team-*"]
    hosts: ["s3.eu-west-1.amazonaws.com:443", "minio.internal:9000"]
`)
	aws := tcp("s3.eu-west-1.amazonaws.com", 443)
	for _, tc := range []struct {
		name   string
		p      *policy.Policy
		bucket string
		dest   netguard.Destination
		allow  bool
		want   []string
	}{
		{"default policy", policy.Default(nil, nil), "anything", tcp("evil.example", 443), true, nil},
		{"file without outputs", load(t, "version: 1\n"), "acme-metadata", aws, false, []string{"no outputs.s3"}},
		{"listed", listed, "acme-metadata", aws, true, nil},
		{"bucket glob", listed, "team-a", tcp("minio.internal", 9000), true, nil},
		{"other bucket", listed, "attacker-bucket", aws, false, []string{"outputs.s3.buckets"}},
		{"other endpoint", listed, "acme-metadata", tcp("attacker.example", 443), false, []string{"outputs.s3.hosts"}},
		{"other port", listed, "acme-metadata", tcp("minio.internal", 9001), false, []string{"outputs.s3.hosts"}},
		{"a socket", listed, "acme-metadata", unix("/run/minio.sock"), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.CheckOutput(tc.bucket, tc.dest)
			checkDenied(t, err, tc.allow, tc.want...)
			if err != nil && (strings.Contains(err.Error(), tc.bucket) || strings.Contains(err.Error(), tc.dest.Host)) {
				t.Errorf("the refusal names the bucket or the host: %v", err)
			}
		})
	}
	if problems := loadErr(t, "version: 1\noutputs:\n  s3:\n    buckets: [\"a\"]\n"); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "hosts is missing") }) {
		t.Errorf("outputs.s3 without hosts: %v", problems)
	}
}

// TestCheckCatalog: catalog push endpoints (output.push) are judged like the s3 output's.
func TestCheckCatalog(t *testing.T) {
	listed := load(t, "version: 1\noutputs:\n  catalogs:\n    hosts: [\"marquez.internal:5000\", \"*.datahub.internal:443\"]\n")
	for _, tc := range []struct {
		name  string
		p     *policy.Policy
		dest  netguard.Destination
		allow bool
		want  []string
	}{
		{"default policy", policy.Default(nil, nil), tcp("evil.example", 443), true, nil},
		{"file without outputs", load(t, "version: 1\n"), tcp("marquez.internal", 5000), false, []string{"no outputs.catalogs"}},
		{"listed", listed, tcp("marquez.internal", 5000), true, nil},
		{"glob", listed, tcp("gms.datahub.internal", 443), true, nil},
		{"other endpoint", listed, tcp("attacker.example", 5000), false, []string{"outputs.catalogs.hosts"}},
		{"other port", listed, tcp("marquez.internal", 5001), false, []string{"outputs.catalogs.hosts"}},
		{"a socket", listed, unix("/run/marquez.sock"), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.CheckCatalog(tc.dest)
			checkDenied(t, err, tc.allow, tc.want...)
			if err != nil && strings.Contains(err.Error(), tc.dest.Host) {
				t.Errorf("the refusal names the host: %v", err)
			}
		})
	}
	if problems := loadErr(t, "version: 1\noutputs:\n  catalogs: {}\n"); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "hosts is missing") }) {
		t.Errorf("outputs.catalogs without hosts: %v", problems)
	}
}

// TestSQLiteDirsAndCustomStoreSettings: the agent-side settings that replaced input fields.
func TestSQLiteDirsAndCustomStoreSettings(t *testing.T) {
	p := load(t, `version: 1
sqlite:
  dirs: ["/srv/catalogs", "/var/lib/secure-agent/sqlite"]
customStores:
  hosts: ["vault.internal:8200"]
  versionPaths: {"vault.internal:8200": data.metadata.version, "*.kv.internal": meta.rev}
  caFiles: {"vault.internal": /etc/secure-agent/vault-ca.pem}
`)
	if got := p.SQLiteDirs(); !slices.Equal(got, []string{"/srv/catalogs", "/var/lib/secure-agent/sqlite"}) {
		t.Errorf("SQLiteDirs = %v", got)
	}
	for _, tc := range []struct {
		host       string
		port       int
		version, c string
	}{
		{"vault.internal", 8200, "data.metadata.version", "/etc/secure-agent/vault-ca.pem"},
		{"VAULT.internal.", 8200, "data.metadata.version", "/etc/secure-agent/vault-ca.pem"},
		{"vault.internal", 8201, "", "/etc/secure-agent/vault-ca.pem"},
		{"a.kv.internal", 443, "meta.rev", ""},
		{"evil.example", 8200, "", ""},
	} {
		if v, c := p.CustomVersionPath(tc.host, tc.port), p.CustomCAFile(tc.host, tc.port); v != tc.version || c != tc.c {
			t.Errorf("%s:%d: version path %q, CA file %q; want %q, %q", tc.host, tc.port, v, c, tc.version, tc.c)
		}
	}
	for _, bad := range []string{
		"sqlite:\n  dirs: [\"relative/dir\"]", "sqlite:\n  dirs: [\"/srv/../etc\"]", "sqlite:\n  dirs: [\"/\"]",
		"sqlite:\n  dirs: [\"/srv/*\"]", "customStores:\n  versionPaths: {\"h\": \"a..b\"}",
		"customStores:\n  caFiles: {\"h\": \"ca.pem\"}", "customStores:\n  versionPaths: [\"x\"]",
	} {
		if problems := loadErr(t, "version: 1\n"+bad+"\n"); len(problems) == 0 {
			t.Errorf("accepted: %s", bad)
		}
	}
	def := policy.Defaults{CustomVersionPaths: []string{"vault.internal:8200=data.metadata.version"},
		CustomCAFiles: []string{"vault.internal=/etc/ca.pem"}, SQLiteDirs: []string{"/srv/db"}}
	if err := def.CheckDefaults(); err != nil {
		t.Fatal(err)
	}
	dp := def.Policy()
	if dp.CustomVersionPath("vault.internal", 8200) != "data.metadata.version" || dp.CustomCAFile("vault.internal", 1) != "/etc/ca.pem" ||
		!slices.Equal(dp.SQLiteDirs(), []string{"/srv/db"}) {
		t.Error("the settings without a policy file were not applied")
	}
	err := policy.Defaults{CustomVersionPaths: []string{"no-equals-sign"}, CustomCAFiles: []string{"h=relative.pem"}, SQLiteDirs: []string{"x"}}.CheckDefaults()
	for _, want := range []string{"SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS", "SECURE_AGENT_CUSTOM_STORE_CA_FILES", "SECURE_AGENT_SQLITE_DIRS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckDefaults does not name %s: %v", want, err)
		}
	}
}

// TestEnvAllowlistCannotExposeTokens: an allowlist of wildcards only, or one that can name a
// variable the custom stores send as credentials, is refused at start-up, in a policy file and
// in the settings alike, saying which rule and why.
func TestEnvAllowlistCannotExposeTokens(t *testing.T) {
	for _, tc := range []struct {
		allow, header string
		refused       bool
	}{
		{"*", "", true},
		{"?*", "", true},
		{"**", "", true},
		{"*", "VAULT_TOKEN", true},
		{"*_TOKEN", "VAULT_TOKEN", true},
		{"VAULT_*", "VAULT_TOKEN", true},
		{"V?ULT_TOKEN", "VAULT_T*", true},
		{"DB_*", "VAULT_TOKEN", false},
		{"*_PASSWORD", "VAULT_TOKEN", false},
		{"DB_*", "", false},
	} {
		file := "version: 1\nenv:\n  allow: [\"" + tc.allow + "\"]\n"
		var header []string
		if tc.header != "" {
			file += "customStores:\n  headerEnv: [\"" + tc.header + "\"]\n"
			header = []string{tc.header}
		}
		problems := loadProblems(t, file)
		if got := len(problems) > 0; got != tc.refused {
			t.Errorf("policy file, allow %q, headers %q: refused %v (%v)", tc.allow, tc.header, got, problems)
		}
		if tc.refused && !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "env.allow[0]") }) {
			t.Errorf("allow %q: the problem does not name env.allow[0]: %v", tc.allow, problems)
		}
		err := policy.Defaults{EnvAllow: []string{tc.allow}, CustomHeaderEnv: header}.CheckDefaults()
		if got := err != nil; got != tc.refused {
			t.Errorf("settings, allow %q, headers %q: refused %v (%v)", tc.allow, tc.header, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "SECURE_AGENT_ENV_ALLOW") {
			t.Errorf("settings refusal does not name SECURE_AGENT_ENV_ALLOW: %v", err)
		}
	}
}

// loadProblems loads content and returns its problems, one per line; none when it loads.
func loadProblems(t *testing.T, content string) []string {
	t.Helper()
	_, err := policy.Load(write(t, content))
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}
