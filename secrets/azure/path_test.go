package azure

import (
	"strings"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
)

// ---- paths ----

func TestParsePath(t *testing.T) {
	valid := []struct {
		path string
		want Location
	}{
		{"db-creds", Location{Name: "db-creds"}},
		{"a", Location{Name: "a"}},
		{strings.Repeat("x", 127), Location{Name: strings.Repeat("x", 127)}},
		{"db/" + v1, Location{Name: "db", Version: v1}},
		{"db/" + strings.ToUpper(v1), Location{Name: "db", Version: strings.ToUpper(v1)}},
		{"https://myvault.vault.azure.net/secrets/db", Location{Host: testHost, Vault: testVault, Name: "db"}},
		{"https://myvault.vault.azure.net/secrets/db/", Location{Host: testHost, Vault: testVault, Name: "db"}},
		{"https://myvault.vault.azure.net/secrets/db/" + v1, Location{Host: testHost, Vault: testVault, Name: "db", Version: v1}},
		{"https://myvault.vault.azure.net/secrets/db/" + v1 + "/", Location{Host: testHost, Vault: testVault, Name: "db", Version: v1}},
		{"https://myvault.vault.azure.net:443/secrets/db", Location{Host: testHost, Vault: testVault, Name: "db"}},
		{"HTTPS://MyVault.Vault.Azure.Net/secrets/DB", Location{Host: testHost, Vault: testVault, Name: "DB"}},
		{"https://kv-1.vault.azure.cn/secrets/db", Location{Host: "kv-1.vault.azure.cn", Vault: "kv-1", Name: "db"}},
		{"https://kvg.vault.usgovcloudapi.net/secrets/db", Location{Host: "kvg.vault.usgovcloudapi.net", Vault: "kvg", Name: "db"}},
		{"https://kv1.vault.microsoftazure.de/secrets/db", Location{Host: "kv1.vault.microsoftazure.de", Vault: "kv1", Name: "db"}},
	}
	for _, c := range valid {
		got, err := ParsePath(c.path)
		if err != nil || got != c.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", c.path, got, err, c.want)
		}
	}
	invalid := []struct{ path, msg string }{
		{"", "empty"},
		{"db_creds", "letters, digits and hyphens"},
		{strings.Repeat("x", 128), "1-127"},
		{"db/123", "32 hexadecimal"},
		{"db/" + v1 + "/x", "expected <name>"},
		{"db/", "expected <name>"},
		{"/db", "letters, digits"},
		{"db creds", "letters, digits"},
		{"myvault.vault.azure.net/secrets/db", "without its scheme"},
		{"http://myvault.vault.azure.net/secrets/db", "https"},
		{"ftp://myvault.vault.azure.net/secrets/db", "https"},
		{"https://myvault.vault.azure.net:8443/secrets/db", "port"},
		{"https://myvault.vault.azure.net/secrets/db?api-version=7.4", "query"},
		{"https://myvault.vault.azure.net/secrets/db#frag", "fragment"},
		{"https://user:pass@myvault.vault.azure.net/secrets/db", "user info"},
		{"https://myvault.vault.azure.net/keys/db", "/secrets/<name>"},
		{"https://myvault.vault.azure.net/secrets", "/secrets/<name>"},
		{"https://myvault.vault.azure.net/", "/secrets/<name>"},
		{"https://myvault.vault.azure.net/secrets//db", "letters, digits"},
		{"https://myvault.vault.azure.net/secrets/db//", "expected <name>"},
		{"https://myvault.vault.azure.net/secrets/d%62", "letters, digits"},
		{"https://myvault.vault.azure.net/secrets/db/" + v1 + "/extra", "expected <name>"},
		{"https://myvault.vault.azure.net/secrets/db/latest", "32 hexadecimal"},
		{"https://myvault.evil.com/secrets/db", "not a Key Vault host"},
		{"https://vault.azure.net/secrets/db", "not a Key Vault host"},
		{"https://myvault.vault.azure.net.evil.com/secrets/db", "not a Key Vault host"},
		{"https://a.b.vault.azure.net/secrets/db", "not a Key Vault host"},
		{"https://my--vault.vault.azure.net/secrets/db", "consecutive hyphens"},
		{"https://1vault.vault.azure.net/secrets/db", "start with a letter"},
		{"https://hsm.managedhsm.azure.net/secrets/db", "Managed HSM"},
		{"https://[::1]/secrets/db", "not a Key Vault host"},
		{"https:///secrets/db", "malformed"},
		{"https://myvault.vault.azure.net/secrets/db\x00", "malformed"},
		{"https://myvault.vault.azure.net/secrets/d\u00e9", "letters, digits"},
		{strings.Repeat("a", 3000), "longer than"},
	}
	for _, c := range invalid {
		_, err := ParsePath(c.path)
		if err == nil {
			t.Errorf("ParsePath(%q) succeeded", c.path)
			continue
		}
		e := wantError(t, err, secrets.InvalidInput)
		if !strings.Contains(e.Msg, c.msg) {
			t.Errorf("ParsePath(%q) = %q, want a message about %q", c.path, e.Msg, c.msg)
		}
		if strings.Contains(err.Error(), "pass") || strings.Contains(err.Error(), "api-version") {
			t.Errorf("ParsePath(%q) error shows user info or query: %v", c.path, err)
		}
	}
}

func TestParseRef(t *testing.T) {
	cases := []struct {
		ref   secrets.Ref
		vault string
		want  Location
		msg   string
	}{
		{secrets.Ref{Path: "db"}, "MyVault", Location{Host: testHost, Vault: testVault, Name: "db"}, ""},
		{secrets.Ref{Path: "db", Version: v1}, testVault, Location{Host: testHost, Vault: testVault, Name: "db", Version: v1}, ""},
		{secrets.Ref{Path: "db/" + v1, Version: v1}, testVault, Location{Host: testHost, Vault: testVault, Name: "db", Version: v1}, ""},
		{secrets.Ref{Path: testURL + "/secrets/db"}, "", Location{Host: testHost, Vault: testVault, Name: "db"}, ""},
		{secrets.Ref{Path: testURL + "/secrets/db"}, "MYVAULT", Location{Host: testHost, Vault: testVault, Name: "db"}, ""},
		{secrets.Ref{Path: "db"}, "", Location{}, "needs vaultName"},
		{secrets.Ref{Path: "db"}, "x", Location{}, "vaultName must be"},
		{secrets.Ref{Path: testURL + "/secrets/db"}, "other", Location{}, "names vault"},
		{secrets.Ref{Path: "db", Version: "latest"}, testVault, Location{}, "version field"},
		{secrets.Ref{Path: "db/" + v1, Version: v2}, testVault, Location{}, "give the version once"},
		{secrets.Ref{Path: "db", Stage: "AWSCURRENT"}, testVault, Location{}, "AWS"},
		{secrets.Ref{Path: "db_1"}, testVault, Location{}, "letters, digits"},
	}
	for _, c := range cases {
		got, err := ParseRef(c.ref, c.vault)
		if c.msg == "" {
			if err != nil || got != c.want {
				t.Errorf("ParseRef(%+v, %q) = %+v, %v; want %+v", c.ref, c.vault, got, err, c.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseRef(%+v, %q) succeeded", c.ref, c.vault)
			continue
		}
		e := wantError(t, err, secrets.InvalidInput)
		if !strings.Contains(e.Msg, c.msg) {
			t.Errorf("ParseRef(%+v) = %q, want a message about %q", c.ref, e.Msg, c.msg)
		}
		if e.Ref == "" {
			t.Errorf("ParseRef(%+v) error has no Ref", c.ref)
		}
	}
}

func TestErrorsRedactCredentialsInPaths(t *testing.T) {
	f := newFakeAzure(t)
	s := newStore(t, f, Config{}, false)
	leak := canary(t)
	for _, p := range []string{
		"https://user:" + leak + "@myvault.vault.azure.net/secrets/db",
		"https://" + leak + "@myvault.vault.azure.net/secrets/db",
		"https://u:p/" + leak + "@myvault.vault.azure.net/secrets/db",
		"https://myvault.vault.azure.net/secrets/db?sig=" + leak,
		"https://myvault.vault.azure.net/secrets/db#" + leak,
		leak + "@db",
	} {
		_, err := fetch(t, s, secrets.Ref{Path: p})
		wantError(t, err, secrets.InvalidInput, leak)
	}
	if n := len(f.log()); n != 0 {
		t.Errorf("invalid paths sent %d requests", n)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"db", "db/" + v1, testURL + "/secrets/db/" + v1, "https://a@b/?#", "https://[", "\xff/\xfe",
		"https://x.vault.azure.net:99999/secrets/a", "https://x.managedhsm.azure.net/secrets/a"} {
		f.Add(s, v1)
	}
	f.Fuzz(func(t *testing.T, path, version string) {
		loc, err := ParsePath(path)
		if err == nil && !secretNameRE.MatchString(loc.Name) {
			t.Errorf("ParsePath(%q) accepted name %q", path, loc.Name)
		}
		if err != nil && (secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "") {
			t.Errorf("ParsePath(%q) error kind %q: %q", path, secrets.KindOf(err), err)
		}
		if _, err := ParseRef(secrets.Ref{Path: path, Version: version}, "myvault"); err != nil && (secrets.KindOf(err) != secrets.InvalidInput || err.Error() == "") {
			t.Errorf("ParseRef(%q, %q) error kind %q: %q", path, version, secrets.KindOf(err), err)
		}
	})
}
