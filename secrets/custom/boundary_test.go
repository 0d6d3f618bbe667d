package custom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
)

// Tests of the agent/input boundary: version_path and ca_file are agent configuration, and
// destinations are judged on exactly what is dialled.

func TestInputAgentKeysParseButNewRefusesThem(t *testing.T) {
	ts := newTLSServer(t, respond(200, "application/json", `{"password":"`+canaryValue+`","v":"1"}`))
	raw := fmt.Sprintf(`{"store_url":%q,"secret_name":"s","version_path":"password","ca_file":%q}`, ts.URL, ts.caFile)
	// Recorded histories replay through ParseConfig: it still accepts the keys.
	cfg, _, err := ParseConfig([]byte(raw))
	if err != nil {
		t.Fatalf("ParseConfig must keep accepting version_path and ca_file (replay): %v", err)
	}
	_, err = New(context.Background(), cfg, testOptions(nil))
	wantKind(t, err, secrets.InvalidInput)
	wantContains(t, err, "version_path is agent configuration", "customStores.versionPaths", "SECURE_AGENT_CUSTOM_STORE_VERSION_PATHS",
		"ca_file is agent configuration", "customStores.caFiles", "SECURE_AGENT_CUSTOM_STORE_CA_FILES")
	assertNoCanary(t, "refusal", err)
	if n := ts.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests", n)
	}

	// No file-system oracle: whatever file ca_file names, the answer is the same and names no path.
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	var first string
	for _, p := range []string{filepath.Join(dir, "missing.pem"), dir, notPEM, "/dev/zero", ts.caFile} {
		_, err := New(context.Background(), Config{StoreURL: ts.URL, CAFile: p}, testOptions(nil))
		wantKind(t, err, secrets.InvalidInput)
		if strings.Contains(err.Error(), dir) {
			t.Errorf("the refusal names the file: %v", err)
		}
		if first == "" {
			first = err.Error()
		} else if err.Error() != first {
			t.Errorf("ca_file %s: error %q differs from %q: a file-system oracle", p, err, first)
		}
	}
}

func TestBoundaryProblems(t *testing.T) {
	for raw, want := range map[string][]string{
		`{"store_url":"https://a","secret_name":"a","version_path":"password"}`:                        {"version_path is agent configuration"},
		`{"store_url":"https://a","secret_name":"a","ca_file":"/etc/passwd"}`:                          {"ca_file is agent configuration"},
		`{"store_url":"https://a","secret_name":"a","ca_file":"/x","version_path":"a","colour":"red"}`: {"version_path", "ca_file"},
		`{"version_path":3}`:                          {"version_path"},
		`{"store_url":"https://a","secret_name":"a"}`: nil,
		`{"store_url":"https://a","secret_name":"a","value_path":"data.data","timeout":"3s"}`: nil,
		`{"store_url":"https://a","secret_name":"a","version_path":null,"ca_file":""}`:        nil,
		`not json`: nil,
		``:         nil,
	} {
		got := BoundaryProblems([]byte(raw))
		if len(got) != len(want) {
			t.Errorf("%s: problems %q, want %d", raw, got, len(want))
			continue
		}
		for i, w := range want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: problem %q does not mention %q", raw, got[i], w)
			}
		}
	}
}

func TestAgentSideVersionPath(t *testing.T) {
	ts := newTLSServer(t, respond(200, "application/json",
		`{"data":{"data":{"password":"`+canaryValue+`"},"metadata":{"version":5}}}`))
	cfg := ts.config()
	cfg.ValuePath = "data.data"
	opts := testOptions(nil)
	type call struct {
		host string
		port int
	}
	var calls []call
	opts.VersionPath = func(host string, port int) string {
		calls = append(calls, call{host, port})
		return "data.metadata.version"
	}
	sec, err := fetch(t, mustNew(t, cfg, opts), secrets.Ref{Path: "s"})
	if err != nil || sec.Version != "5" || !strings.Contains(sec.Value.Reveal(), canaryValue) {
		t.Fatalf("err %v, version %q", err, sec.Version)
	}
	if want := []call{{"127.0.0.1", ts.port()}}; !slices.Equal(calls, want) {
		t.Errorf("VersionPath called with %v, want %v", calls, want)
	}
	// Without the agent setting the version comes only from store metadata (none here).
	sec, err = fetch(t, mustNew(t, cfg, testOptions(nil)), secrets.Ref{Path: "s"})
	if err != nil || sec.Version != "" {
		t.Fatalf("err %v, version %q", err, sec.Version)
	}
	// A malformed agent-side path is refused at New.
	opts.VersionPath = versionAt("data..version")
	_, err = New(context.Background(), cfg, opts)
	wantKind(t, err, secrets.InvalidInput)
	wantContains(t, err, "the agent's version path")
}

func TestAgentSettingsSeeCanonicalHostAndPort(t *testing.T) {
	type call struct {
		host string
		port int
	}
	for storeURL, want := range map[string]call{
		"https://Vault.Example.COM.:8200/v1": {"vault.example.com", 8200},
		"https://vault.example.com/v1":       {"vault.example.com", 0},
		"https://[::FFFF:10.0.0.1]/":         {"10.0.0.1", 0},
		"https://[2001:DB8::1]:443":          {"2001:db8::1", 443},
	} {
		var got []call
		record := func(host string, port int) string { got = append(got, call{host, port}); return "" }
		opts := Options{VersionPath: record, CAFile: record}
		if _, err := New(context.Background(), Config{StoreURL: storeURL}, opts); err != nil {
			t.Fatalf("%s: %v", storeURL, err)
		}
		if !slices.Equal(got, []call{want, want}) {
			t.Errorf("%s: agent settings asked for %v, want %v twice", storeURL, got, want)
		}
	}
}

func TestAgentSideCAFile(t *testing.T) {
	ts := newTLSServer(t, respond(200, "text/plain", "v"))
	opts := testOptions(nil)
	opts.CAFile = func(host string, port int) string {
		if host == "127.0.0.1" && port == ts.port() {
			return ts.caFile
		}
		return ""
	}
	if _, err := fetch(t, mustNew(t, ts.config(), opts), secrets.Ref{Path: "s"}); err != nil {
		t.Fatalf("with the agent's CA file: %v", err)
	}
	opts.CAFile = nil
	_, err := fetch(t, mustNew(t, ts.config(), opts), secrets.Ref{Path: "s"})
	if se := wantKind(t, err, secrets.InvalidInput); se.Detail != "TLS unknown authority" {
		t.Errorf("detail = %q", se.Detail)
	}
}

// countingListener listens on network/addr and counts the connections it accepts.
func countingListener(t *testing.T, network, addr string) (int, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, &n
}

// oldHostCheck is the store_url check the agent used to make: a pattern matched against the
// URL's host strings, as written.
func oldHostCheck(pattern string) func(*url.URL) error {
	return func(u *url.URL) error {
		for _, s := range []string{u.Host, u.Hostname()} {
			if ok, _ := path.Match(pattern, s); ok {
				return nil
			}
		}
		return &secrets.Error{Kind: secrets.PolicyDenied, Msg: "not allowed"}
	}
}

func TestStoreURLHostThatNoRuleCanSeeIsRefused(t *testing.T) {
	v4, v4Conns := countingListener(t, "tcp", "127.0.0.1:0")
	v6, v6Conns := v4, new(atomic.Int32)
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		v6, v6Conns = countingListener(t, "tcp", "[::1]:0")
	} else {
		t.Log("no IPv6 loopback: the ::1 cases only check the refusal")
	}
	for _, storeURL := range []string{
		fmt.Sprintf("https://[::1%%25.internal]:%d/", v6),
		fmt.Sprintf("https://[::1%%25lo]:%d/", v6),
		fmt.Sprintf("https://[::ffff:127.0.0.1%%25.internal]:%d/", v4),
		fmt.Sprintf("https://0x7f.1:%d/", v4),
		fmt.Sprintf("https://127.1:%d/", v4),
	} {
		opts := testOptions(map[string]string{"TOKEN": canaryToken})
		opts.AllowStoreURL = oldHostCheck("*")
		opts.DialContext = (&netguard.Dialer{}).DialContext
		cfg := Config{StoreURL: storeURL, BearerTokenEnv: "TOKEN"}
		s, err := New(context.Background(), cfg, opts)
		if err == nil {
			_, _ = fetch(t, s, secrets.Ref{Path: "s"})
			t.Errorf("%s: New accepted it", storeURL)
			continue
		}
		wantKind(t, err, secrets.InvalidInput)
		wantContains(t, err, "store_url")
		if strings.Contains(err.Error(), "internal") || strings.Contains(err.Error(), "127") || strings.Contains(err.Error(), "::1") {
			t.Errorf("%s: the refusal quotes the host: %v", storeURL, err)
		}
	}
	// The case of the finding: "*.internal" used to admit a zone that the dialer ignores.
	if oldHostCheck("*.internal")(mustParse(t, fmt.Sprintf("https://[::1%%25.internal]:%d/", v6))) != nil {
		t.Error("the old check no longer shows the hole this test is about")
	}
	if n := v6Conns.Load() + v4Conns.Load(); n != 0 {
		t.Errorf("loopback listeners accepted %d connections", n)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fakeResolver answers for its names and fails every other lookup.
type fakeResolver map[string]string

func (r fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if ip, ok := r[host]; ok {
		return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// allowOnly is a dial check that records what it judged and allows one host name.
type allowOnly struct {
	host   string
	mu     sync.Mutex
	judged []netguard.Destination
}

func (a *allowOnly) check(d netguard.Destination) error {
	a.mu.Lock()
	a.judged = append(a.judged, d)
	a.mu.Unlock()
	if d.Network == netguard.NetworkTCP && d.Host == a.host {
		return nil
	}
	return &secrets.Error{Kind: secrets.PolicyDenied, Msg: "destination not on the test's list"}
}

func TestDialsTheResolvedAddressOfAnAllowedName(t *testing.T) {
	ts := newTLSServer(t, respond(200, "text/plain", "resolved"))
	check := &allowOnly{host: "example.com"}
	var dialled []string
	d := &netguard.Dialer{
		Check:    check.check,
		Resolver: fakeResolver{"example.com": "127.0.0.1"},
		DialAddr: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialled = append(dialled, network+" "+addr)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	opts := testOptions(nil)
	opts.DialContext = d.DialContext
	// The certificate of httptest's server covers example.com.
	sec, err := fetch(t, mustNew(t, Config{StoreURL: "https://EXAMPLE.com.:" + strconv.Itoa(ts.port())}, opts), secrets.Ref{Path: "s"})
	if err != nil || sec.Value.Reveal() != "resolved" {
		t.Fatalf("fetch: %v", err)
	}
	want := netguard.Destination{Network: netguard.NetworkTCP, Host: "example.com", Port: ts.port()}
	if !slices.Equal(check.judged, []netguard.Destination{want}) {
		t.Errorf("judged %v, want %v", check.judged, want)
	}
	if w := fmt.Sprintf("tcp 127.0.0.1:%d", ts.port()); !slices.Equal(dialled, []string{w}) {
		t.Errorf("dialled %v, want [%s]", dialled, w)
	}
}

func TestDialCheckRefusesWhatNewAllowed(t *testing.T) {
	port, conns := countingListener(t, "tcp", "127.0.0.1:0")
	check := &allowOnly{host: "vault.internal"}
	opts := testOptions(map[string]string{"TOKEN": canaryToken})
	opts.AllowStoreURL = func(*url.URL) error { return nil } // a check someone got wrong
	opts.DialContext = (&netguard.Dialer{Check: check.check}).DialContext
	s := mustNew(t, Config{StoreURL: fmt.Sprintf("https://127.0.0.1:%d", port), BearerTokenEnv: "TOKEN"}, opts)
	_, err := fetch(t, s, secrets.Ref{Path: "s"})
	se := wantKind(t, err, secrets.PolicyDenied)
	if se.Detail != "destination refused" || secrets.Retryable(err) {
		t.Errorf("detail %q, retryable %v", se.Detail, secrets.Retryable(err))
	}
	assertNoCanary(t, "dial refusal", err)
	if len(check.judged) != 1 || check.judged[0].Host != "127.0.0.1" || check.judged[0].Port != port {
		t.Errorf("judged %v", check.judged)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("listener accepted %d connections", n)
	}
}

func TestBaseTransportDialersCannotBypassTheCheck(t *testing.T) {
	port, conns := countingListener(t, "tcp", "127.0.0.1:0")
	bypass := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	opts := testOptions(nil)
	opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: bypass, DialTLSContext: bypass}}
	opts.DialContext = (&netguard.Dialer{Check: (&allowOnly{host: "vault.internal"}).check}).DialContext
	_, err := fetch(t, mustNew(t, Config{StoreURL: fmt.Sprintf("https://127.0.0.1:%d", port)}, opts), secrets.Ref{Path: "s"})
	wantKind(t, err, secrets.PolicyDenied)
	if n := conns.Load(); n != 0 {
		t.Errorf("listener accepted %d connections", n)
	}
	// A transport the store cannot configure is refused rather than left unchecked.
	opts.HTTPClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })}
	_, err = New(context.Background(), Config{StoreURL: "https://s.example.com"}, opts)
	wantKind(t, err, secrets.InvalidInput)
}

// connectProxy is an HTTP proxy that tunnels every CONNECT to target and records what it was
// asked for.
func connectProxy(t *testing.T, target string) (*url.URL, func() []string) {
	var mu sync.Mutex
	var asked []string
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		asked = append(asked, r.Host)
		mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		_, _ = io.Copy(c, up)
		c.Close()
	}))
	t.Cleanup(p.Close)
	return mustParse(t, p.URL), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
}

func TestProxyChosenByTheTransportIsDialled(t *testing.T) {
	ts := newTLSServer(t, respond(200, "text/plain", "via-proxy"))
	proxyURL, asked := connectProxy(t, ts.Listener.Addr().String())
	check := &allowOnly{host: "example.com"}
	opts := testOptions(nil)
	opts.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	opts.DialContext = (&netguard.Dialer{Check: check.check}).DialContext
	storeURL := "https://example.com:" + strconv.Itoa(ts.port())
	sec, err := fetch(t, mustNew(t, Config{StoreURL: storeURL}, opts), secrets.Ref{Path: "s"})
	if err != nil || sec.Value.Reveal() != "via-proxy" {
		t.Fatalf("fetch through the proxy: %v", err)
	}
	if got := asked(); !slices.Equal(got, []string{"example.com:" + strconv.Itoa(ts.port())}) {
		t.Errorf("proxy asked for %v", got)
	}
	if len(check.judged) != 0 {
		t.Errorf("the check judged %v; only the proxy was dialled", check.judged)
	}

	// The proxy's address is exempt only when the transport's Proxy chose it for the request:
	// a store_url naming the proxy's address directly is dialled through the check.
	opts.HTTPClient = nil
	s := mustNew(t, Config{StoreURL: "http://" + proxyURL.Host}, opts)
	_, err = fetch(t, s, secrets.Ref{Path: "s"})
	wantKind(t, err, secrets.PolicyDenied)
	if len(check.judged) != 1 || check.judged[0].Host != "127.0.0.1" {
		t.Errorf("judged %v", check.judged)
	}
}
