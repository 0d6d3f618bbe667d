package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
)

const (
	maxAddressLen   = 2048
	maxNameLen      = 256 // namespace, mount, role
	maxCredLen      = 64 << 10
	maxRespHeaderKB = 64
)

// Validate reports every problem of the configuration at once, as one InvalidInput error, or
// nil. It never quotes a credential or the address.
func (c Config) Validate() error {
	if _, problems := c.problems(); len(problems) > 0 {
		return configError(problems)
	}
	return nil
}

// problems checks c and returns the address in canonical form (netguard.CanonicalHost) when it
// is valid.
func (c Config) problems() (*url.URL, []string) {
	u, problems := parseAddress(c.Address)
	if p := nameProblem("Namespace", c.Namespace); p != "" {
		problems = append(problems, p)
	}
	if len(c.CACertPEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(c.CACertPEM) {
		problems = append(problems, "CACertPEM holds no PEM certificate; give Vault's CA certificate in PEM form, or nothing")
	}
	return u, append(problems, c.Auth.trimmed().problems()...)
}

// trimmed returns a with the white space around its credentials (a newline at the end of a
// file, say) removed.
func (a Auth) trimmed() Auth {
	a.Token = strings.TrimSpace(a.Token)
	a.RoleID = strings.TrimSpace(a.RoleID)
	a.SecretID = strings.TrimSpace(a.SecretID)
	a.JWT = strings.TrimSpace(a.JWT)
	return a
}

// parseAddress checks Address: https, or http to a loopback host; a host the agent dials (see
// netguard.CanonicalHost); no user info, path, query or fragment. It never quotes the address,
// which could hold a password in its user info.
func parseAddress(addr string) (*url.URL, []string) {
	const fix = "Address (Vault's URL, such as https://vault.internal:8200) "
	if addr == "" {
		return nil, []string{fix + "is empty"}
	}
	if len(addr) > maxAddressLen || strings.ContainsFunc(addr, isControl) {
		return nil, []string{fix + "is too long or holds control characters"}
	}
	u, err := url.Parse(addr)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, []string{fix + "is not an absolute URL with a host"}
	}
	host, herr := netguard.CanonicalHost(u.Hostname())
	var problems []string
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "https":
	case scheme == "http" && herr == nil && isLoopback(host):
	case scheme == "http":
		problems = append(problems, fix+"must use https: plain http is allowed only to a loopback host (localhost, 127.0.0.0/8, ::1)")
	default:
		problems = append(problems, fix+"must use https")
	}
	if herr != nil {
		why := "it is not an IP address or a DNS name"
		var se *secrets.Error
		if errors.As(herr, &se) {
			why = strings.TrimPrefix(se.Msg, "destination: ")
		}
		problems = append(problems, fix+"has a host the agent does not connect to: "+why)
	}
	if u.User != nil {
		problems = append(problems, fix+"must not hold a user name or password")
	}
	if (u.Path != "" && u.Path != "/") || u.RawPath != "" {
		problems = append(problems, fix+"must not have a path")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(addr, "#") {
		problems = append(problems, fix+"must not have a query or fragment")
	}
	port := u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			problems = append(problems, fix+"has an invalid port")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		problems = append(problems, fix+"has an empty port")
	}
	if len(problems) > 0 {
		return nil, problems
	}
	canon := &url.URL{Scheme: strings.ToLower(u.Scheme), Host: host}
	if strings.Contains(host, ":") {
		canon.Host = "[" + host + "]"
	}
	if port != "" {
		canon.Host = net.JoinHostPort(host, port)
	}
	return canon, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// nameProblem checks a namespace or mount path: optional, "/"-separated segments that are not
// empty, "." or "..", without control characters or ? # % \. It never quotes the value.
func nameProblem(field, v string) string {
	v = strings.Trim(v, "/")
	if v == "" {
		return ""
	}
	bad := len(v) > maxNameLen || strings.ContainsFunc(v, func(r rune) bool {
		return isControl(r) || r == ' ' || strings.ContainsRune("?#%\\", r)
	})
	for _, seg := range strings.Split(v, "/") {
		bad = bad || seg == "" || seg == "." || seg == ".."
	}
	if bad {
		return field + " must be a path of segments without spaces, control characters, ? # % \\, empty, \".\" or \"..\" segments, of at most " + strconv.Itoa(maxNameLen) + " bytes"
	}
	return ""
}

// mount is the auth mount path of a login method.
func (a Auth) mount() string {
	if m := strings.Trim(a.Mount, "/"); m != "" {
		return m
	}
	return a.Method
}

// problems checks the fields the method needs and refuses the ones it does not use. It never
// quotes a credential.
func (a Auth) problems() []string {
	type field struct {
		name  string
		value string
	}
	all := []field{{"Token", a.Token}, {"Mount", a.Mount}, {"Role", a.Role}, {"RoleID", a.RoleID}, {"SecretID", a.SecretID}, {"JWT", a.JWT}}
	var required, optional []string
	switch a.Method {
	case AuthToken:
		required = []string{"Token"}
	case AuthAppRole:
		required, optional = []string{"RoleID"}, []string{"Mount", "SecretID"}
	case AuthKubernetes:
		required, optional = []string{"Role", "JWT"}, []string{"Mount"}
	case AuthJWT:
		required, optional = []string{"JWT"}, []string{"Mount", "Role"}
	case "":
		return []string{`Auth.Method is empty; set it to "token", "approle", "kubernetes" or "jwt"`}
	default:
		return []string{`Auth.Method must be "token", "approle", "kubernetes" or "jwt"`}
	}
	var problems []string
	for _, f := range all {
		switch {
		case contains(required, f.name) && f.value == "":
			problems = append(problems, "Auth."+f.name+" is required by the "+a.Method+" method")
		case !contains(required, f.name) && !contains(optional, f.name) && f.value != "":
			problems = append(problems, "Auth."+f.name+" is not used by the "+a.Method+" method; leave it empty")
		case f.value == "":
		case f.name == "Mount":
			if p := nameProblem("Auth.Mount", f.value); p != "" {
				problems = append(problems, p)
			}
		case f.name == "Role":
			if len(f.value) > maxNameLen || strings.ContainsFunc(f.value, isControl) {
				problems = append(problems, "Auth.Role is longer than "+strconv.Itoa(maxNameLen)+" bytes or holds control characters")
			}
		case f.name == "Token":
			if !validHeaderValue(f.value) || len(f.value) > maxCredLen {
				problems = append(problems, "Auth.Token holds white space or characters that cannot be sent in a header (remove a trailing newline read from a file)")
			}
		default: // RoleID, SecretID, JWT
			if len(f.value) > maxCredLen || strings.ContainsFunc(f.value, isControl) {
				problems = append(problems, "Auth."+f.name+" is longer than 64 KiB or holds control characters")
			}
		}
	}
	return problems
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// newHTTPClient returns the HTTP client the Vault client uses: a copy of cfg.HTTPClient (or a
// default one) whose *http.Transport is a clone with TLS 1.2 as a minimum and CACertPEM added to
// its roots, whose answers are bounded by MaxResponseBytes, and which never follows redirects.
func newHTTPClient(cfg Config) (*http.Client, error) {
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if t, ok := rt.(*http.Transport); ok {
		t = t.Clone()
		t.MaxResponseHeaderBytes = maxRespHeaderKB << 10
		tc := t.TLSClientConfig
		if tc == nil {
			tc = &tls.Config{}
		}
		tc = tc.Clone()
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
		if len(cfg.CACertPEM) > 0 {
			pool := tc.RootCAs
			if pool != nil {
				pool = pool.Clone()
			} else if sys, err := x509.SystemCertPool(); err == nil {
				pool = sys
			} else {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM(cfg.CACertPEM)
			tc.RootCAs = pool
		}
		t.TLSClientConfig = tc
		rt = t
	} else if len(cfg.CACertPEM) > 0 {
		return nil, configError([]string{"CACertPEM cannot be added to HTTPClient's transport, which is not an *http.Transport; give Vault's CA in that transport's TLS configuration instead"})
	}
	hc.Transport = &limitedTransport{base: rt, limit: MaxResponseBytes}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, nil
}

// newClient builds the Vault client for addr and namespace over hc, and undoes what the client
// library takes from the environment (see the package documentation).
func newClient(addr *url.URL, namespace string, hc *http.Client) (*api.Client, error) {
	c, err := api.NewClient(&api.Config{
		Address:    addr.String(),
		HttpClient: hc,
		MaxRetries: 0,
		CheckRetry: func(context.Context, *http.Response, error) (bool, error) {
			return false, nil
		},
		DisableRedirects: true,
	})
	if err != nil {
		return nil, configError([]string{"the Vault client library could not start, because of a malformed VAULT_* variable in the agent's environment " +
			"(such as VAULT_CACERT, VAULT_CLIENT_TIMEOUT, VAULT_MAX_RETRIES or VAULT_HEADERS); this store takes its settings from the agent's configuration only, so unset them"})
	}
	c.ClearToken()
	c.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	if ns := strings.Trim(namespace, "/"); ns != "" {
		c.SetNamespace(ns)
	}
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	c.SetMFACreds(nil)
	return c, nil
}

// limitedTransport bounds the body of every answer: reading past limit fails with errTooLarge.
type limitedTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t *limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, errTooLarge
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.limit}
	return resp, nil
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *limitedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
