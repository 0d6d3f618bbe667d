package stores

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/secrets"
)

// TestCustomDestinationCheck judges destinations directly, as if something had bypassed
// custom.New's store_url check: only canonical TCP destinations that a pattern names pass.
func TestCustomDestinationCheck(t *testing.T) {
	o, err := NewOpener(Options{CustomStoreHosts: []string{"*.internal", "vault.example.com:8200", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	tcp := func(host string, port int) netguard.Destination {
		return netguard.Destination{Network: netguard.NetworkTCP, Host: host, Port: port}
	}
	for _, d := range []netguard.Destination{
		tcp("vault.internal", 443), tcp("vault.example.com", 8200), tcp("::1", 8200),
	} {
		if err := o.checkCustomDestination(d); err != nil {
			t.Errorf("%v refused: %v", d, err)
		}
	}
	for _, d := range []netguard.Destination{
		tcp("::1%.internal", 443), // a zone a "*.internal" pattern would match
		tcp("::ffff:127.0.0.1%.internal", 443),
		tcp("VAULT.internal", 443),    // not canonical, though "*.internal" matches it
		tcp("Vault.Internal", 443),    // not canonical
		tcp("vault.internal.", 443),   // not canonical
		tcp("vault.internal", 0),      // no port
		tcp("vault.example.com", 443), // wrong port
		tcp("evil.example.com", 8200), // not listed
		{Network: netguard.NetworkUnix, Host: "/run/x.internal"},
		{Network: "udp", Host: "vault.internal", Port: 53},
	} {
		err := o.checkCustomDestination(d)
		var se *secrets.Error
		if !errors.As(err, &se) || se.Kind != secrets.PolicyDenied {
			t.Errorf("%v: %v, want PolicyDenied", d, err)
		}
	}

	// Through the Opener's dialer: hostile forms never reach a dial; an allowed name is dialled
	// at the address the dialer resolved.
	var dialled []string
	o.customDialer.DialAddr = func(_ context.Context, network, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		return nil, errors.New("test: not dialling")
	}
	o.customDialer.Resolver = resolverFunc(func(host string) []net.IPAddr {
		if host == "vault.internal" {
			return []net.IPAddr{{IP: net.ParseIP("10.1.2.3")}}
		}
		return nil
	})
	ctx := context.Background()
	for _, addr := range []string{"[::1%.internal]:443", "[::1%25.internal]:443", "[::1%lo]:443", "evil.example.com:443", "127.0.0.1:443", "0x7f.1:443"} {
		if _, err := o.customDialer.DialContext(ctx, "tcp", addr); err == nil || !errors.Is(err, secrets.InvalidInput) && !errors.Is(err, secrets.PolicyDenied) {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if len(dialled) != 0 {
		t.Fatalf("dialled %v", dialled)
	}
	_, _ = o.customDialer.DialContext(ctx, "tcp", "Vault.Internal.:8443")
	if len(dialled) != 1 || dialled[0] != "10.1.2.3:8443" {
		t.Errorf("dialled %v, want [10.1.2.3:8443]", dialled)
	}
}

type resolverFunc func(host string) []net.IPAddr

func (f resolverFunc) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if a := f(host); a != nil {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestAllowCustomURLJudgesTheCanonicalHost: even given a URL that custom.New would have
// refused, the store_url check matches patterns against the canonical host only.
func TestAllowCustomURLJudgesTheCanonicalHost(t *testing.T) {
	o, err := NewOpener(Options{CustomStoreHosts: []string{"*.internal", "vault.example.com:8200"}})
	if err != nil {
		t.Fatal(err)
	}
	for raw, ok := range map[string]bool{
		"https://vault.internal/":              true,
		"https://VAULT.Internal.:9000/":        true,
		"https://vault.example.com:8200/":      true,
		"https://vault.example.com/":           false,
		"https://[::1%25.internal]:443/":       false,
		"https://[::ffff:7f00:1%25.internal]/": false,
		"https://127.1.internal/":              true,
		"https://0x7f.internal/":               true,
		"https://a.0x7f/":                      false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.allowCustomURL(u); (err == nil) != ok {
			t.Errorf("%s: allowed %v, want %v (%v)", raw, err == nil, ok, err)
		}
	}
}

// TestOpenedCustomStoreDialsThroughThePolicy: the store the Opener builds dials through the
// Opener's destination check, so a destination the host list no longer names is refused at
// dial time, after New's check, and never connected to.
func TestOpenedCustomStoreDialsThroughThePolicy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	o, err := NewOpener(Options{CustomStoreHosts: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	spec := &Spec{Type: TypeCustom, Config: json.RawMessage(`{"store_url":"https://` + ln.Addr().String() + `","secret_name":"db"}`)}
	src, ref, err := o.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	o.opts.CustomStoreHosts = []string{"vault.internal"} // as if New's check had been bypassed
	_, err = src.Store.Fetch(context.Background(), *ref)
	var se *secrets.Error
	if !errors.As(err, &se) || se.Kind != secrets.PolicyDenied || se.Detail != "destination refused" {
		t.Fatalf("fetch: %v", err)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("listener accepted %d connections", n)
	}
}
