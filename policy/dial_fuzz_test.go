package policy_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/secure-agent/secure-agent/netguard"
	"github.com/secure-agent/secure-agent/policy"
)

// dialPolicy is the policy FuzzDialDestination dials under: one secret, five destinations.
const dialPolicy = `version: 1
destinations:
  default: deny
  rules:
    - secrets: ["prod/catalog/db"]
      hosts:
        - "db.internal:5432"
        - "*.replica.internal:5432"
        - "[2001:db8::10]:3306"
        - "10.0.0.7"
        - "/run/postgresql/.s.PGSQL.5432"
`

// ruleNames is an independent statement of dialPolicy's rules (no glob engine, no policy code):
// whether the rule names the destination.
func ruleNames(d netguard.Destination) bool {
	switch d.Network {
	case netguard.NetworkUnix:
		return d.Host == "/run/postgresql/.s.PGSQL.5432"
	case netguard.NetworkTCP:
		switch {
		case d.Host == "db.internal" && d.Port == 5432:
			return true
		case d.Port == 5432 && strings.HasSuffix(d.Host, ".replica.internal") && len(d.Host) > len(".replica.internal"):
			return true
		case d.Host == "2001:db8::10" && d.Port == 3306:
			return true
		case d.Host == "10.0.0.7":
			return true
		}
	}
	return false
}

// fakeDNS resolves every name to one address derived from it, and remembers its answers.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string]string
}

func (f *fakeDNS) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(host))
	n := h.Sum32()
	ip := net.IPv4(198, 18, byte(n>>8), byte(n))
	f.mu.Lock()
	f.answers[host] = ip.String()
	f.mu.Unlock()
	// A zoned answer too: the dialler must never use it.
	return []net.IPAddr{{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, {IP: ip}}, nil
}

// FuzzDialDestination feeds the Dialer every form an input could give a host and port in, under
// a policy with five destinations, and checks what would be dialled: every dial is at an
// address that the matching rule names (the literal address, or what the agent's own resolver
// answered for the named host; the exact socket path), never zoned, never anywhere a refused
// destination points.
func FuzzDialDestination(f *testing.F) {
	for _, seed := range []struct{ network, address string }{
		{"tcp", "db.internal:5432"}, {"tcp", "DB.INTERNAL.:5432"}, {"tcp", "db.internal:05432"},
		{"tcp", "a.replica.internal:5432"}, {"tcp", "::1%.replica.internal:5432"}, {"tcp", "[::1%.replica.internal]:5432"},
		{"tcp", "[::1%25.replica.internal]:5432"}, {"tcp", "x.replica.internal.evil.example:5432"},
		{"tcp", "[2001:DB8:0:0:0:0:0:10]:3306"}, {"tcp", "[2001:db8::10%eth0]:3306"}, {"tcp", "[::ffff:10.0.0.7]:22"},
		{"tcp", "10.0.0.7:1"}, {"tcp", "010.0.0.7:1"}, {"tcp", "10.0.7:1"}, {"tcp", "0x0a.0.0.7:1"}, {"tcp", "167772167:1"},
		{"tcp", "[10.0.0.7]:1"}, {"tcp", "bücher.replica.internal:5432"}, {"tcp", "xn--bcher-kva.replica.internal:5432"},
		{"tcp6", "[2001:db8::10]:3306"}, {"tcp4", "10.0.0.7:5432"}, {"udp", "10.0.0.7:53"},
		{"unix", "/run/postgresql/.s.PGSQL.5432"}, {"unix", "/run/postgresql/../postgresql/.s.PGSQL.5432"},
		{"unix", "/tmp/x.replica.internal"}, {"unix", "/run/postgresql//.s.PGSQL.5432"},
	} {
		f.Add(seed.network, seed.address)
	}
	pol, err := policy.Load(write(f, dialPolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, network, address string) {
		dns := &fakeDNS{answers: map[string]string{}}
		var checked []netguard.Destination
		var dialled []string
		d := &netguard.Dialer{
			Resolver: dns,
			Check: func(dest netguard.Destination) error {
				checked = append(checked, dest)
				return pol.CheckDestination(dest, []string{"prod/catalog/db"})
			},
			DialAddr: func(_ context.Context, network, address string) (net.Conn, error) {
				dialled = append(dialled, network+" "+address)
				return nil, errors.New("not dialled in a test")
			},
		}
		_, _ = d.DialContext(context.Background(), network, address)
		if len(dialled) == 0 {
			return
		}
		if len(checked) != 1 {
			t.Fatalf("%s %q: dialled %v after %d checks", network, address, dialled, len(checked))
		}
		dest := checked[0]
		if !ruleNames(dest) {
			t.Fatalf("%s %q: dialled %v for %+v, which no rule names", network, address, dialled, dest)
		}
		for _, got := range dialled {
			if want := expectedDial(dest, dns); got != want {
				t.Fatalf("%s %q (%+v): dialled %q, want only %q", network, address, dest, got, want)
			}
			if strings.Contains(got, "%") {
				t.Fatalf("%s %q: dialled a zoned address %q", network, address, got)
			}
		}
	})
}

// expectedDial is the one address a checked destination may be dialled at.
func expectedDial(dest netguard.Destination, dns *fakeDNS) string {
	if dest.Network == netguard.NetworkUnix {
		return "unix " + dest.Host
	}
	host := dest.Host
	if _, err := netip.ParseAddr(host); err != nil {
		dns.mu.Lock()
		host = dns.answers[dest.Host]
		dns.mu.Unlock()
	}
	return fmt.Sprintf("tcp %s", net.JoinHostPort(host, strconv.Itoa(dest.Port)))
}
