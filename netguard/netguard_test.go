package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/secure-agent/secure-agent/secrets"
)

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		network, address string
		want             Destination // zero: refused
	}{
		{"tcp", "db.internal:5432", Destination{NetworkTCP, "db.internal", 5432}},
		{"tcp", "DB.Internal.:5432", Destination{NetworkTCP, "db.internal", 5432}},
		{"tcp4", "10.0.0.1:3306", Destination{NetworkTCP, "10.0.0.1", 3306}},
		{"tcp6", "[2001:DB8:0::1]:5432", Destination{NetworkTCP, "2001:db8::1", 5432}},
		{"tcp", "[::ffff:10.0.0.1]:5432", Destination{NetworkTCP, "10.0.0.1", 5432}},
		{"tcp", "under_score.internal:1", Destination{NetworkTCP, "under_score.internal", 1}},
		{"tcp", "xn--bcher-kva.example:443", Destination{NetworkTCP, "xn--bcher-kva.example", 443}},
		{"unix", "/run/postgresql/.s.PGSQL.5432", Destination{NetworkUnix, "/run/postgresql/.s.PGSQL.5432", 0}},
		// Refused: zones (the dialer would drop or interpret them), other networks, forms a rule
		// written for names or addresses could not see.
		{"tcp", "[::1%.replica.internal]:5432", Destination{}},
		{"tcp", "[fe80::1%eth0]:5432", Destination{}},
		{"tcp", "[::1%25lo]:5432", Destination{}},
		{"udp", "db.internal:5432", Destination{}},
		{"ip", "db.internal", Destination{}},
		{"tcp", "db.internal", Destination{}},
		{"tcp", "db.internal:0", Destination{}},
		{"tcp", "db.internal:65536", Destination{}},
		{"tcp", "db.internal:05432", Destination{}},
		{"tcp", "db.internal:+5432", Destination{}},
		{"tcp", ":5432", Destination{}},
		{"tcp", "bücher.example:443", Destination{}},
		{"tcp", "db internal:5432", Destination{}},
		{"tcp", "db..internal:5432", Destination{}},
		{"tcp", ".db.internal:5432", Destination{}},
		{"tcp", "127.1:5432", Destination{}},
		{"tcp", "0x7f.0.0.1:5432", Destination{}},
		{"tcp", "2130706433:5432", Destination{}},
		{"tcp", "10.0.0.0x1:5432", Destination{}},
		{"tcp", "a,b:5432", Destination{}},
		{"tcp", "[db.internal]:5432", Destination{}},
		{"tcp", strings.Repeat("a.", 130) + "com:1", Destination{}},
		{"unix", "run/postgresql/.s.PGSQL.5432", Destination{}},
		{"unix", "/run/../etc/.s.PGSQL.5432", Destination{}},
		{"unix", "/run//x", Destination{}},
		{"unix", "/run/x/", Destination{}},
		{"unix", "/run/\x00x", Destination{}},
		{"unix", "/" + strings.Repeat("x", 200), Destination{}},
	} {
		got, err := ParseDestination(tc.network, tc.address)
		switch {
		case tc.want == (Destination{}) && err == nil:
			t.Errorf("%s %q: accepted as %+v, want refused", tc.network, tc.address, got)
		case tc.want == (Destination{}):
			if secrets.KindOf(err) != secrets.InvalidInput || strings.Contains(err.Error(), tc.address) {
				t.Errorf("%s %q: error %v, want InvalidInput without the address", tc.network, tc.address, err)
			}
		case err != nil || got != tc.want:
			t.Errorf("%s %q = %+v, %v; want %+v", tc.network, tc.address, got, err, tc.want)
		}
	}
}

// resolver answers from a fixed table and counts questions.
type resolver struct {
	answers map[string][]net.IPAddr
	asked   atomic.Int64
}

func (r *resolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.asked.Add(1)
	if a, ok := r.answers[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestDialerJudgesThenDialsWhatItResolved: the check sees the canonical destination, a refused
// one is neither resolved nor dialled, and an allowed name is dialled only at the addresses the
// Dialer itself resolved (zoned answers skipped), in order until one answers.
func TestDialerJudgesThenDialsWhatItResolved(t *testing.T) {
	res := &resolver{answers: map[string][]net.IPAddr{
		"db.internal": {{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, {IP: net.ParseIP("192.0.2.7")}, {IP: net.ParseIP("192.0.2.8")}},
	}}
	var judged []Destination
	var dialled []string
	d := &Dialer{
		Resolver: res,
		Check: func(dest Destination) error {
			judged = append(judged, dest)
			if dest.Host == "db.internal" && dest.Port == 5432 {
				return nil
			}
			return &secrets.Error{Kind: secrets.PolicyDenied, Msg: "refused"}
		},
		DialAddr: func(_ context.Context, network, address string) (net.Conn, error) {
			dialled = append(dialled, network+" "+address)
			if address == "192.0.2.7:5432" {
				return nil, errors.New("connection refused")
			}
			c, _ := net.Pipe()
			return c, nil
		},
	}
	conn, err := d.DialContext(context.Background(), "tcp", "DB.internal.:5432")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if len(judged) != 1 || judged[0] != (Destination{NetworkTCP, "db.internal", 5432}) {
		t.Fatalf("judged %+v", judged)
	}
	if strings.Join(dialled, ",") != "tcp 192.0.2.7:5432,tcp 192.0.2.8:5432" {
		t.Fatalf("dialled %v", dialled)
	}

	dialled, judged = nil, nil
	before := res.asked.Load()
	for _, addr := range []string{"db.internal:5433", "evil.example:5432", "[::1%.db.internal]:5432"} {
		if _, err := d.DialContext(context.Background(), "tcp", addr); err == nil {
			t.Errorf("%s was dialled", addr)
		}
	}
	if len(dialled) != 0 || res.asked.Load() != before {
		t.Fatalf("a refused destination was resolved (%d) or dialled (%v)", res.asked.Load()-before, dialled)
	}
	if len(judged) != 2 { // the zoned form never reaches the check
		t.Fatalf("judged %+v", judged)
	}
	if _, err := d.DialContext(context.Background(), "unix", "/run/x/.s.PGSQL.5432"); !errors.Is(err, secrets.PolicyDenied) || len(dialled) != 0 {
		t.Fatalf("unix socket: %v, dialled %v", err, dialled)
	}
}

// TestGuardTransport: an HTTP client whose transport is guarded reaches an allowed server; a
// request to a refused host fails before anything is dialled, and a redirect to one is
// refused when it is followed.
func TestGuardTransport(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://localhost:1/elsewhere", http.StatusTemporaryRedirect)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	allowed, err := DestinationOfURL(u)
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int64
	var mu sync.Mutex
	var dialled []string
	d := &Dialer{
		Check: func(dest Destination) error {
			if dest == allowed {
				return nil
			}
			return &secrets.Error{Kind: secrets.PolicyDenied, Msg: "refused"}
		},
		DialAddr: func(ctx context.Context, network, address string) (net.Conn, error) {
			dials.Add(1)
			mu.Lock()
			dialled = append(dialled, address)
			mu.Unlock()
			var nd net.Dialer
			return nd.DialContext(ctx, network, address)
		},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	GuardTransport(tr, d)
	c := &http.Client{Transport: tr}
	resp, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if dials.Load() != 1 {
		t.Fatalf("dials = %d", dials.Load())
	}
	if _, err := c.Get("http://localhost:1/x"); !errors.Is(err, secrets.PolicyDenied) {
		t.Fatalf("refused host: %v", err)
	}
	if _, err := c.Get(srv.URL + "/redirect"); !errors.Is(err, secrets.PolicyDenied) {
		t.Fatalf("redirect to a refused host: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range dialled {
		if a != u.Host {
			t.Fatalf("dialled %s, which the check refuses", a)
		}
	}
}

// TestGuardTransportAllowsTheProxyOnly: with a proxy chosen by the agent's own configuration,
// the request's own destination is still judged, and the proxy's address is the one exception
// the dialler makes.
func TestGuardTransportAllowsTheProxyOnly(t *testing.T) {
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		proxied.Add(1)
		_, _ = w.Write([]byte("via proxy"))
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	target := Destination{NetworkTCP, "store.internal", 80}
	d := &Dialer{Check: func(dest Destination) error {
		if dest == target {
			return nil
		}
		return &secrets.Error{Kind: secrets.PolicyDenied, Msg: "refused"}
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(pu)
	GuardTransport(tr, d)
	c := &http.Client{Transport: tr}
	resp, err := c.Get("http://store.internal/secret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if proxied.Load() != 1 {
		t.Fatal("the request did not go through the proxy")
	}
	if _, err := c.Get("http://other.internal/secret"); !errors.Is(err, secrets.PolicyDenied) || proxied.Load() != 1 {
		t.Fatalf("a refused host reached through the proxy: %v", err)
	}
}
