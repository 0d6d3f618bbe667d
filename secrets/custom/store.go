// Package custom reads secrets from a customer's own HTTP secret store, and authenticates with
// request headers whose values come from the agent's environment (named, never given, by the
// workflow input), over TLS verified against the system roots plus an optional CA bundle that
// the agent's operator sets per store host.
//
// # Protocol
//
// For a secret_name and an optional version the agent sends exactly one request:
//
//	GET <store_url>/<secret_name, each "/"-separated segment path-escaped>[?<version_param>=<version>]
//	Accept: application/json
//	User-Agent: secure-agent
//	<each configured header>: <value of its agent environment variable>
//	Authorization: Bearer <value of bearer_token_env>   (when configured)
//
// Redirects are never followed. A 200 answer carries the secret:
//   - with value_path set, the body must be JSON and the value at that dot path is the secret: a
//     JSON object is returned as its JSON bytes (its keys are what connection fields name), a JSON
//     string is a single-string secret, null means the secret has no value (SecretNotFound), and
//     any other JSON value is returned as its JSON text;
//   - without value_path, a JSON body (Content-Type application/json or */*+json) is the secret,
//     with the same rules, and any other body is a single-string secret, byte for byte.
//
// The version read is store metadata: the X-Secret-Version response header, else the value (a
// string, or a number as its JSON text) at the version path the agent's operator configured for
// the store host (Options.VersionPath), else empty.
//
// version_path and ca_file are agent configuration, not workflow input. A path into the store's
// answer chosen by the input could point into the secret itself (the "version" recorded in
// results, audit and logs would then be the password), and a file chosen by the input would pick
// the agent's trust anchor and probe its file system. The operator sets both per store host
// (customStores.versionPaths and customStores.caFiles in the policy file, or
// SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS and SECURE_AGENT_CUSTOM_STORE_CA_FILES), which reach
// New as Options.VersionPath and Options.CAFile. ParseConfig still reads the two keys, because
// recorded workflow histories replay through it, but New refuses a Config that sets them, and
// BoundaryProblems lists them for the workflow's own validation.
//
// Any other status is an error: 404 and 410 SecretNotFound, 401 AuthFailed, 403 AccessDenied, 429
// Throttled, 408 and 5xx StoreUnavailable (both with the Retry-After delay when sent), 3xx and any
// other status InvalidInput. A 200 whose body does not fit the configuration (not JSON, nothing at
// value_path, empty, larger than the limit) is InvalidInput: retrying cannot help, the
// configuration or the store must change.
//
// # Destinations
//
// New puts the store_url host in canonical form (netguard.CanonicalHost) and refuses forms a
// host rule could not see (IPv6 zones, numeric host names); the request is built from that
// canonical URL only, and Options.AllowStoreURL judges it. With Options.DialContext set (the
// agent sets a netguard.Dialer whose Check applies its host rules), every connection the
// transport opens is judged again on exactly what is dialled. The one exception is a proxy the
// transport's own Proxy function (the agent's HTTPS_PROXY and NO_PROXY, agent configuration)
// chose for the request: that proxy's address, and nothing else, is dialled without the check.
// The store host itself was judged at New, and every request goes to it.
package custom

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
)

// Name is the store's name in errors (secrets.Error.Store).
const Name = "custom"

// Limits and defaults of the configuration.
const (
	DefaultTimeout          = 10 * time.Second
	MaxTimeout              = 2 * time.Minute
	DefaultVersionParam     = "version"
	DefaultMaxResponseBytes = 1 << 20
	MaxNameLen              = 512 // characters of a secret_name
	// VersionHeader is the response header that names the version read.
	VersionHeader = "X-Secret-Version"

	maxConfigBytes  = 64 << 10
	maxURLLen       = 2048
	maxVersionLen   = 256
	maxHeaders      = 32
	maxEnvNameLen   = 128
	maxJSONPathLen  = 256
	maxCAFileBytes  = 1 << 20
	maxDrainBytes   = 64 << 10
	maxRespHeaderKB = 64
)

var _ secrets.Store = (*Store)(nil)

// Options are agent-side settings. They never come from workflow input.
type Options struct {
	// LookupEnv reads the agent's environment (default os.LookupEnv).
	LookupEnv func(name string) (string, bool)
	// AllowEnv is the agent's policy for the environment variables named by headers and
	// bearer_token_env. It must return a *secrets.Error of Kind PolicyDenied to refuse a name (any
	// other error is treated as a refusal). Nil refuses every name.
	AllowEnv func(name string) error
	// AllowStoreURL is the agent's policy for store_url, which it receives with its host in
	// canonical form (netguard.CanonicalHost). Nil allows any store_url that passes the
	// syntax rules, but only for configurations that send no credentials: a configuration with
	// headers or bearer_token_env is refused with PolicyDenied unless AllowStoreURL accepts its
	// URL, so workflow input cannot send the agent's credentials to a host of its choosing.
	AllowStoreURL func(storeURL *url.URL) error
	// MaxResponseBytes bounds the response body (default DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// HTTPClient supplies the base transport (tests: RootCAs, dialers, proxies). Only its
	// Transport is used; an *http.Transport is cloned, never modified. Nil means
	// http.DefaultTransport.
	HTTPClient *http.Client
	// VersionPath returns the dot path at which the store's JSON answers hold the version id,
	// or "" for none, for the store_url's host (canonical form, netguard.CanonicalHost) and
	// port (the URL's explicit port, or 0). Nil means none: the version then comes only from the
	// X-Secret-Version header.
	VersionPath func(host string, port int) string
	// CAFile returns the absolute path of a PEM CA bundle trusted, in addition to the base
	// transport's roots, for the store_url's host and port (as for VersionPath), or "" for none.
	CAFile func(host string, port int) string
	// DialContext, when set, opens every connection of the store's transport (it replaces the
	// cloned *http.Transport's dialers) except to the proxy the transport's Proxy function chose
	// for the request; see the package documentation. The agent sets a netguard.Dialer's
	// DialContext. A transport that is not an *http.Transport cannot honour it and is refused.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Store reads secrets from one custom HTTP store. It is safe for concurrent use.
type Store struct {
	base         *url.URL
	versionParam string
	headers      []envHeader
	valuePath    []string
	versionPath  []string
	timeout      time.Duration
	maxBytes     int64
	lookupEnv    func(string) (string, bool)
	client       *http.Client
}

// envHeader is one request header whose value is read from the agent's environment at Fetch time.
type envHeader struct {
	header string // canonical header name
	env    string // environment variable name
	bearer bool   // value is sent as "Bearer <value>"
}

// New validates cfg, refuses the keys that are agent configuration (version_path, ca_file),
// puts the store_url host in canonical form, checks the agent's policy for its environment
// variables and URL, loads the agent's CA file for the host and builds the HTTP client once. It
// does not contact the store. Errors are *secrets.Error: InvalidInput for the configuration,
// PolicyDenied for the policy.
func New(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, secrets.Ref{}, err)
	}
	base, problems := cfg.problems()
	problems = append(problems, cfg.boundaryProblems()...)
	if err := configError(problems); err != nil {
		return nil, err
	}
	base, host, port, err := canonicalURL(base)
	if err != nil {
		return nil, err
	}
	s := &Store{
		base:         base,
		versionParam: orDefault(cfg.VersionParam, DefaultVersionParam),
		headers:      cfg.envHeaders(),
		valuePath:    splitPath(cfg.ValuePath),
		timeout:      cfg.Timeout,
		maxBytes:     opts.MaxResponseBytes,
		lookupEnv:    opts.LookupEnv,
	}
	if opts.VersionPath != nil {
		vp := opts.VersionPath(host, port)
		if p := jsonPathProblems("the agent's version path for this store host (customStores.versionPaths, SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS)", vp); p != nil {
			return nil, configError(p)
		}
		s.versionPath = splitPath(vp)
	}
	var caFile string
	if opts.CAFile != nil {
		caFile = opts.CAFile(host, port)
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.maxBytes <= 0 {
		s.maxBytes = DefaultMaxResponseBytes
	}
	if s.lookupEnv == nil {
		s.lookupEnv = os.LookupEnv
	}
	if err := checkPolicy(base, s.headers, opts); err != nil {
		return nil, err
	}
	if s.client, err = newClient(caFile, opts); err != nil {
		return nil, err
	}
	return s, nil
}

// canonicalURL returns base with its host in canonical form (netguard.CanonicalHost), that host
// and the explicit port (0 if none). A host the agent does not dial (an IPv6 zone, a numeric
// name) is InvalidInput naming store_url, never quoting it.
func canonicalURL(base *url.URL) (*url.URL, string, int, error) {
	host, err := netguard.CanonicalHost(base.Hostname())
	if err != nil {
		why := "it is not an IP address or a DNS name"
		var se *secrets.Error
		if errors.As(err, &se) {
			why = strings.TrimPrefix(se.Msg, "destination: ")
		}
		return nil, "", 0, configError([]string{"store_url has a host the agent does not connect to: " + why})
	}
	port := 0
	u := *base
	u.Host = host
	if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	}
	if p := base.Port(); p != "" {
		port, _ = strconv.Atoi(p) // parseStoreURL checked it
		u.Host = net.JoinHostPort(host, p)
	}
	return &u, host, port, nil
}

// Close releases idle connections. The Store must not be used afterwards.
func (s *Store) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// envHeaders lists the configured headers in a stable order, bearer token last.
func (c Config) envHeaders() []envHeader {
	var hs []envHeader
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		hs = append(hs, envHeader{header: http.CanonicalHeaderKey(name), env: c.Headers[name]})
	}
	if c.BearerTokenEnv != "" {
		hs = append(hs, envHeader{header: "Authorization", env: c.BearerTokenEnv, bearer: true})
	}
	return hs
}

// checkPolicy asks the agent's policy about every environment variable and the store URL, and
// reports every refusal at once.
func checkPolicy(base *url.URL, headers []envHeader, opts Options) error {
	var errs []error
	if opts.AllowEnv == nil && len(headers) > 0 {
		names := make([]string, len(headers))
		for i, h := range headers {
			names[i] = h.env
		}
		errs = append(errs, &secrets.Error{Kind: secrets.PolicyDenied, Store: Name, Msg: fmt.Sprintf(
			"the agent's policy does not allow sending environment variable(s) %s as custom store headers; "+
				"the agent operator must allow them explicitly", quoteList(names))})
	} else {
		for _, h := range headers {
			if err := opts.AllowEnv(h.env); err != nil {
				errs = append(errs, policyError(err, fmt.Sprintf(
					"the agent's policy does not allow sending environment variable %q as a custom store header", h.env)))
			}
		}
	}
	switch {
	case opts.AllowStoreURL != nil:
		if err := opts.AllowStoreURL(base); err != nil {
			errs = append(errs, policyError(err, fmt.Sprintf("the agent's policy does not allow custom store host %q", base.Host)))
		}
	case len(headers) > 0:
		errs = append(errs, &secrets.Error{Kind: secrets.PolicyDenied, Store: Name, Msg: fmt.Sprintf(
			"the agent sends credentials from its environment only to store URLs its policy allows, and none is configured; "+
				"the agent operator must allow host %q for the custom store", base.Host)})
	}
	return join(errs)
}

// policyError keeps a policy's own PolicyDenied error, and classifies any other refusal as one.
func policyError(err error, msg string) error {
	var se *secrets.Error
	if errors.As(err, &se) && se.Kind == secrets.PolicyDenied {
		return err
	}
	return &secrets.Error{Kind: secrets.PolicyDenied, Store: Name, Msg: msg, Cause: err}
}

// join returns nil, the only error, or all of them joined.
func join(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// newClient builds the one HTTP client of a Store: no redirects, no transparent decompression,
// TLS 1.2 or newer, the base transport's roots plus caFile, and opts.DialContext for every
// connection but the proxy's.
func newClient(caFile string, opts Options) (*http.Client, error) {
	var rt http.RoundTripper = http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		rt = opts.HTTPClient.Transport
	}
	t, ok := rt.(*http.Transport)
	if ok {
		t = t.Clone()
		t.DisableCompression = true
		t.MaxResponseHeaderBytes = maxRespHeaderKB << 10
		tc := t.TLSClientConfig
		if tc == nil {
			tc = &tls.Config{}
		}
		tc = tc.Clone()
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
		if caFile != "" {
			pool, err := loadCAs(caFile, tc.RootCAs)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		t.TLSClientConfig = tc
		if opts.DialContext != nil {
			guardDials(t, opts.DialContext)
		}
		rt = t
	} else if caFile != "" || opts.DialContext != nil {
		return nil, configError([]string{"the agent's CA file and destination checks cannot be applied to the agent's custom HTTP transport"})
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// route is what one request's connections may dial besides what the checked dialer allows: the
// proxy the transport's Proxy function returned for it. Fetch puts a fresh route in the
// request's context; net/http keeps the request context's values for its dials.
type route struct {
	proxy atomic.Pointer[netguard.Destination]
}

type routeKey struct{}

// guardDials makes t dial through checked, except the proxy its Proxy function chose for the
// request being sent, which is dialled as it is (it is agent configuration). The TLS dialers are
// cleared: the transport then dials TCP itself through DialContext and does TLS on top.
func guardDials(t *http.Transport, checked func(ctx context.Context, network, addr string) (net.Conn, error)) {
	t.DialTLSContext = nil
	//lint:ignore SA1019 a base transport's deprecated DialTLS would otherwise still dial TLS itself
	t.DialTLS = nil
	if proxy := t.Proxy; proxy != nil {
		t.Proxy = func(r *http.Request) (*url.URL, error) {
			u, err := proxy(r)
			if rt, ok := r.Context().Value(routeKey{}).(*route); ok {
				rt.proxy.Store(nil)
				if d, ok := proxyDestination(u); err == nil && ok {
					rt.proxy.Store(&d)
				}
			}
			return u, err
		}
	}
	direct := &netguard.Dialer{}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if rt, ok := ctx.Value(routeKey{}).(*route); ok {
			if p := rt.proxy.Load(); p != nil {
				if d, err := netguard.ParseDestination(network, addr); err == nil && d == *p {
					return direct.DialContext(ctx, network, addr)
				}
			}
		}
		return checked(ctx, network, addr)
	}
}

// proxyDestination is the address net/http dials for a proxy URL: its host and port, or the
// scheme's default port.
func proxyDestination(u *url.URL) (netguard.Destination, bool) {
	if u == nil {
		return netguard.Destination{}, false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	}
	d, err := netguard.ParseDestination("tcp", net.JoinHostPort(u.Hostname(), port))
	return d, err == nil
}

// loadCAs returns roots (or the system pool) plus the certificates of the PEM file at path.
func loadCAs(path string, roots *x509.CertPool) (*x509.CertPool, error) {
	fail := func(why string) error {
		return configError([]string{fmt.Sprintf("the agent's CA file %q for this store host %s; the agent's operator must name a readable file holding PEM CA certificates (customStores.caFiles, SECURE_AGENT_CUSTOM_STORE_CA_FILES)", path, why)})
	}
	if !strings.HasPrefix(path, "/") || hasControl(path) {
		return nil, fail("is not an absolute path")
	}
	// Stat before opening: opening a FIFO or a device could block or never end.
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fail("does not exist")
	} else if err != nil || !fi.Mode().IsRegular() {
		return nil, fail("is not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fail("cannot be opened")
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fail("is not a regular file")
	}
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFileBytes+1))
	if err != nil {
		return nil, fail("cannot be read")
	}
	if len(pem) > maxCAFileBytes {
		return nil, fail("is larger than 1 MiB")
	}
	pool := roots
	if pool != nil {
		pool = pool.Clone()
	} else if pool, err = x509.SystemCertPool(); err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fail("holds no PEM certificate")
	}
	return pool, nil
}

// Fetch reads the secret named by ref.Path (the secret_name), at ref.Version when set, with
// exactly one HTTP request. See the package documentation for the protocol and error kinds.
func (s *Store) Fetch(ctx context.Context, ref secrets.Ref) (*secrets.Secret, error) {
	req, err := s.newRequest(ref)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, secrets.ContextError(Name, ref, err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.client.Do(req.WithContext(context.WithValue(reqCtx, routeKey{}, &route{})))
	if err != nil {
		return nil, s.transportError(ctx, reqCtx, ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		return nil, statusError(ref, resp)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, s.fail(ref, secrets.InvalidInput, "the store sent a compressed body the agent did not ask for; serve the secret uncompressed", "Content-Encoding")
	}
	body, err := secrets.ReadBody(resp.Body, s.maxBytes, resp.ContentLength)
	if err == nil && reqCtx.Err() != nil {
		// net/http may report a clean end of a chunked body that the server closed because the
		// cancelled client went away: the body may be cut short, so it is never a secret.
		clear(body)
		err = reqCtx.Err()
	}
	if errors.Is(err, errTooLarge) {
		return nil, s.fail(ref, secrets.InvalidInput, fmt.Sprintf("the response exceeds %d bytes; check store_url and value_path, or raise the agent's limit", s.maxBytes), "HTTP 200")
	}
	if err != nil {
		return nil, s.transportError(ctx, reqCtx, ref, err)
	}
	defer clear(body)
	return s.extract(ref, body, resp.Header)
}

// newRequest validates ref and builds the request, reading header values from the environment.
func (s *Store) newRequest(ref secrets.Ref) (*http.Request, error) {
	segs, err := ParsePath(ref.Path)
	if err != nil {
		return nil, withRef(err, ref)
	}
	if msg := versionProblem(ref.Version); msg != "" {
		return nil, s.fail(ref, secrets.InvalidInput, msg, "")
	}
	if ref.Stage != "" {
		return nil, s.fail(ref, secrets.InvalidInput, "the custom store has no staging labels; use version instead", "")
	}
	u := *s.base
	basePath, baseRaw := strings.TrimSuffix(u.Path, "/"), strings.TrimSuffix(u.EscapedPath(), "/")
	escaped := make([]string, len(segs))
	for i, seg := range segs {
		escaped[i] = url.PathEscape(seg)
	}
	u.Path = basePath + "/" + strings.Join(segs, "/")
	u.RawPath = baseRaw + "/" + strings.Join(escaped, "/")
	if ref.Version != "" {
		u.RawQuery = url.Values{s.versionParam: {ref.Version}}.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, s.fail(ref, secrets.InvalidInput, "store_url and secret_name do not form a valid URL", "")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "secure-agent")
	var missing, invalid []string
	for _, h := range s.headers {
		v, ok := s.lookupEnv(h.env)
		switch {
		case !ok || v == "":
			missing = append(missing, h.env)
		case !validHeaderValue(v):
			invalid = append(invalid, h.env)
		case h.bearer:
			req.Header.Set(h.header, "Bearer "+v)
		default:
			req.Header.Set(h.header, v)
		}
	}
	if len(missing) > 0 {
		return nil, s.fail(ref, secrets.AuthFailed, fmt.Sprintf("the agent environment variable(s) %s that the configuration sends as headers are not set or empty; set them in the agent's environment", quoteList(missing)), "")
	}
	if len(invalid) > 0 {
		return nil, s.fail(ref, secrets.AuthFailed, fmt.Sprintf("the agent environment variable(s) %s hold characters not allowed in an HTTP header (such as a newline); fix their values in the agent's environment", quoteList(invalid)), "")
	}
	return req, nil
}

func (s *Store) fail(ref secrets.Ref, kind secrets.Kind, msg, detail string) *secrets.Error {
	return &secrets.Error{Kind: kind, Store: Name, Ref: refString(ref), Msg: msg, Detail: detail}
}

// withRef sets the reference on a ParsePath error.
func withRef(err error, ref secrets.Ref) error {
	var se *secrets.Error
	if errors.As(err, &se) {
		c := *se
		c.Ref = refString(ref)
		return &c
	}
	return err
}

// refString is ref as errors show it, cut short if a broken reference is very long.
func refString(ref secrets.Ref) string {
	s := ref.String()
	if len(s) > 600 {
		s = strings.ToValidUTF8(s[:600], "") + "..."
	}
	return s
}

// transportError classifies a failure to get (or to finish reading) a response.
func (s *Store) transportError(ctx, reqCtx context.Context, ref secrets.Ref, err error) error {
	if ctx.Err() != nil {
		return secrets.ContextError(Name, ref, ctx.Err())
	}
	if reqCtx.Err() != nil {
		return &secrets.Error{Kind: secrets.StoreUnavailable, Store: Name, Ref: refString(ref), Cause: reqCtx.Err(),
			Msg: fmt.Sprintf("the store did not answer within the configured timeout of %s; check that it is reachable from the agent, or raise timeout", s.timeout)}
	}
	host := s.base.Host
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		dns       *net.DNSError
		refused   *secrets.Error
	)
	e := &secrets.Error{Kind: secrets.InvalidInput, Store: Name, Ref: refString(ref), Cause: err}
	switch {
	case errors.As(err, &refused):
		// The destination check refused what the transport was about to dial: final, and its
		// message names the rule, never the destination.
		e.Kind, e.Msg, e.Detail = refused.Kind, refused.Msg, "destination refused"
	case errors.As(err, &hostname):
		e.Msg, e.Detail = fmt.Sprintf("the store's TLS certificate is not valid for %q; point store_url at a name the certificate covers", s.base.Hostname()), "TLS hostname mismatch"
	case errors.As(err, &unknownCA):
		e.Msg, e.Detail = "the store's TLS certificate is signed by an authority the agent does not trust; the agent's operator must give a PEM bundle with the store's CA for this host (customStores.caFiles in the policy file, or SECURE_AGENT_CUSTOM_STORE_CA_FILES)", "TLS unknown authority"
	case errors.As(err, &invalid):
		e.Msg, e.Detail = "the store's TLS certificate is not valid (expired, not yet valid or not for serving); renew it on the store or check the agent's clock", "TLS certificate invalid"
	case errors.As(err, &verify):
		e.Msg, e.Detail = "the agent could not verify the store's TLS certificate; check the store's certificate and the agent's CA file for this host", "TLS verification"
	case errors.As(err, &record), errors.Is(err, http.ErrSchemeMismatch):
		e.Msg, e.Detail = "the store did not answer with TLS; check the scheme and port of store_url", "TLS handshake"
	case errors.As(err, &dns):
		e.Kind, e.Detail = secrets.StoreUnavailable, "DNS"
		e.Msg = fmt.Sprintf("the agent could not resolve the store host %q; check store_url and the agent's DNS", s.base.Hostname())
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Kind, e.Detail = secrets.StoreUnavailable, "connection refused"
		e.Msg = fmt.Sprintf("the store at %q refused the connection; check that it is running and that store_url's port is right", host)
	default:
		e.Kind, e.Detail = secrets.StoreUnavailable, "network"
		e.Msg = fmt.Sprintf("the agent could not get an answer from the store at %q; check that it is reachable from the agent", host)
	}
	return e
}

// statusError classifies any answer but 200. It never reads or quotes the body or the Location.
func statusError(ref secrets.Ref, resp *http.Response) error {
	code := resp.StatusCode
	e := &secrets.Error{Kind: secrets.KindForHTTPStatus(code), Store: Name, Ref: refString(ref),
		Detail: fmt.Sprintf("HTTP %d", code)}
	switch e.Kind {
	case "":
		e.Kind = secrets.InvalidInput
		e.Msg = "the protocol expects 200 with the secret; check store_url"
		if code >= 300 && code < 400 {
			e.Msg = "the store redirected; point store_url at the final address (redirects are never followed)"
		}
	case secrets.AuthFailed:
		e.Msg = "the store refused the agent's credentials; check the values of the environment variables named by headers and bearer_token_env on the agent"
	case secrets.AccessDenied:
		e.Msg = "the agent's credentials may not read this secret; grant read access in the store"
	case secrets.SecretNotFound:
		e.Msg = "the store has no such secret (or version); check secret_name, version and store_url"
	case secrets.Throttled:
		e.Msg = "the store asked the agent to slow down"
	case secrets.StoreUnavailable:
		e.Msg = "the store failed or timed out on its side"
	default:
		e.Msg = "the store refused the request; check store_url, secret_name, version and version_param"
	}
	if e.Kind.Retryable() {
		e.RetryAfter = secrets.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

var errTooLarge = secrets.ErrTooLarge

// extract applies the protocol to a 200 body: the secret and its version.
func (s *Store) extract(ref secrets.Ref, body []byte, h http.Header) (*secrets.Secret, error) {
	version := h.Get(VersionHeader)
	if version != "" && versionProblem(version) != "" {
		return nil, s.fail(ref, secrets.InvalidInput, "the store sent an invalid "+VersionHeader+" header", "HTTP 200")
	}
	isJSON := isJSONType(h.Get("Content-Type"))
	needJSON := isJSON || s.valuePath != nil || (version == "" && s.versionPath != nil)
	if needJSON && !json.Valid(body) {
		return nil, s.fail(ref, secrets.InvalidInput, "the response is not valid JSON; check that store_url points at the secret API, value_path, and the agent's version path for this host", "HTTP 200")
	}
	if version == "" && s.versionPath != nil {
		raw, ok := lookup(body, s.versionPath)
		if !ok {
			return nil, s.fail(ref, secrets.InvalidInput, "the response has nothing at the agent's version path for this store host; the agent's operator must check it against the store's response (customStores.versionPaths, SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS)", "HTTP 200")
		}
		v, ok := renderVersion(raw)
		if !ok || versionProblem(v) != "" {
			return nil, s.fail(ref, secrets.InvalidInput, "the value at the agent's version path for this store host is not a string or number of at most 256 characters; the agent's operator must check that path (customStores.versionPaths, SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS)", "HTTP 200")
		}
		version = v
	}
	raw := body
	if s.valuePath != nil {
		var ok bool
		if raw, ok = lookup(body, s.valuePath); !ok {
			return nil, s.fail(ref, secrets.InvalidInput, "the response has nothing at value_path; check value_path against the store's response", "HTTP 200")
		}
	}
	var value []byte
	if isJSON || s.valuePath != nil {
		raw = bytes.TrimSpace(raw)
		if string(raw) == "null" {
			return nil, s.fail(ref, secrets.SecretNotFound, "the store returned null for the secret; it (or this version) has no value, for example it was deleted", "HTTP 200")
		}
		value = renderValue(raw)
	} else {
		value = bytes.Clone(body)
	}
	if len(value) == 0 {
		return nil, s.fail(ref, secrets.InvalidInput, "the store returned an empty secret value; check secret_name and value_path", "HTTP 200")
	}
	return &secrets.Secret{Value: secrets.Value(value), Version: version}, nil
}

// isJSONType reports whether a Content-Type is application/json or */*+json.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// renderValue turns a JSON value into secret bytes: a string is unquoted, anything else is kept
// as its JSON text. The result is a new slice.
func renderValue(raw []byte) []byte {
	if len(raw) > 0 && raw[0] == '"' {
		if v, ok := unquote(raw); ok {
			return v
		}
	}
	return bytes.Clone(raw)
}

// renderVersion turns a JSON string or number into a version id.
func renderVersion(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		v, ok := unquote(raw)
		return string(v), ok
	case c == '-' || (c >= '0' && c <= '9'):
		return string(raw), true
	}
	return "", false
}

// validHeaderValue reports whether v can be sent as a header value: no control characters but tab.
func validHeaderValue(v string) bool {
	for _, c := range []byte(v) {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
