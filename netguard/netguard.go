// Package netguard judges and dials the network destinations the agent sends credentials or
// data to. A destination is judged in one canonical form, exactly as it is dialled: the address
// is parsed and normalized (ParseDestination), refused if it has a form a rule could not see
// (IPv6 zones, non-canonical numbers, networks other than TCP and Unix sockets), checked by the
// caller's policy, then resolved by the Dialer itself and the resulting addresses dialled
// directly, so nothing reinterprets it between the check and the dial.
//
// It imports nothing of the agent but the secrets package's error type, so connectors, secret
// stores and sinks can all use it.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/secure-agent/secure-agent/secrets"
)

// Networks of a Destination.
const (
	NetworkTCP  = "tcp"
	NetworkUnix = "unix"
)

// Destination is an endpoint the agent is about to send credentials or data to, in the one form
// that agent policy judges: exactly what is dialled.
//
// Its host may have come from a secret: never put a Destination into a message, a log line or a
// result.
type Destination struct {
	// Network is NetworkTCP or NetworkUnix.
	Network string
	// Host is, for tcp, a lower-case DNS name without a trailing dot, or an IP address in its
	// canonical text form (an IPv4-mapped IPv6 address as IPv4; never a zone); for unix, the
	// socket's clean absolute path.
	Host string
	// Port is the TCP port, 1 to 65535; 0 for a Unix socket.
	Port int
}

// String returns "host:port" ("[v6]:port") or the socket path, for tests. Never show it to a
// user: the host may be a secret.
func (d Destination) String() string {
	if d.Network == NetworkUnix {
		return d.Host
	}
	return net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
}

// IsIP reports whether a tcp destination's host is an IP address rather than a name.
func (d Destination) IsIP() bool {
	_, err := netip.ParseAddr(d.Host)
	return d.Network == NetworkTCP && err == nil
}

// MaxHostBytes bounds a host name (DNS names have at most 253 bytes).
const MaxHostBytes = 253

// maxSocketPath bounds a Unix socket path (sun_path holds 108 bytes on Linux).
const maxSocketPath = 107

// ParseDestination returns the Destination of an address as a dialler receives it: network
// "tcp", "tcp4" or "tcp6" with "host:port" or "[v6]:port", or "unix" with an absolute socket
// path. The host is put in canonical form by CanonicalHost. Anything else is refused with an
// InvalidInput error that says why without quoting the address (it may be a secret).
func ParseDestination(network, address string) (Destination, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	case NetworkUnix:
		p, err := canonicalSocketPath(address)
		if err != nil {
			return Destination{}, err
		}
		return Destination{Network: NetworkUnix, Host: p}, nil
	default:
		return Destination{}, destinationError("only TCP and Unix-socket destinations are supported")
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return Destination{}, destinationError("the destination is not of the form host:port")
	}
	if strings.HasPrefix(address, "[") {
		host = "[" + host + "]" // CanonicalHost allows brackets around IPv6 only
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != portText {
		return Destination{}, destinationError("the port is not a number from 1 to 65535")
	}
	h, err := CanonicalHost(host)
	if err != nil {
		return Destination{}, err
	}
	return Destination{Network: NetworkTCP, Host: h, Port: port}, nil
}

// CanonicalHost returns the canonical form of a host, or an InvalidInput error saying why it is
// not a host the agent dials (never quoting it):
//   - an IP address (brackets around IPv6 allowed) in netip's canonical text, IPv4-mapped IPv6
//     as IPv4; an IPv6 zone ("%eth0") is refused, because dialers interpret or drop it in ways a
//     rule cannot see;
//   - otherwise an ASCII DNS name: letters, digits, '-' and '_' in dot-separated labels of 1 to
//     63 bytes, at most 253 bytes, lower-cased, one trailing dot removed. Internationalized
//     names must be given in their xn-- form. A last label of digits only, or in 0x hex form,
//     is refused: C resolvers read "127.1" or "0x7f.1" as IP addresses, which a rule written
//     for names would not see.
func CanonicalHost(host string) (string, error) {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
		if !strings.Contains(host, ":") {
			return "", destinationError("brackets may only enclose an IPv6 address")
		}
	}
	if strings.Contains(host, "%") {
		return "", destinationError("IPv6 zones (%...) are not allowed in a destination: give the address without a zone")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String(), nil
	}
	if strings.Contains(host, ":") {
		return "", destinationError("the host is not a valid IPv6 address")
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case name == "":
		return "", destinationError("the host is empty")
	case len(name) > MaxHostBytes:
		return "", destinationError(fmt.Sprintf("the host name is longer than %d bytes", MaxHostBytes))
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", destinationError("the host name has an empty label or one longer than 63 bytes")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", destinationError("the host is not an IP address or a DNS name of letters, digits, '-' and '_' (give internationalized names in their xn-- form)")
			}
		}
	}
	if numericLabel(labels[len(labels)-1]) {
		return "", destinationError("the host looks like a non-standard IP address (its last label is a number): write the address in dotted-decimal form, or give a DNS name")
	}
	return name, nil
}

// numericLabel reports whether a label is all digits, or 0x followed by hex digits.
func numericLabel(l string) bool {
	digits := l
	if strings.HasPrefix(l, "0x") {
		digits = l[2:]
		return !strings.ContainsFunc(digits, func(r rune) bool {
			return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f')
		})
	}
	return !strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
}

// canonicalSocketPath checks a Unix socket path: absolute, clean (no "..", "//" or trailing
// "/"), without NUL, at most 107 bytes.
func canonicalSocketPath(p string) (string, error) {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "", destinationError("a Unix socket must be given by its absolute path")
	case strings.ContainsRune(p, 0):
		return "", destinationError("the Unix socket path contains a NUL byte")
	case path.Clean(p) != p:
		return "", destinationError("the Unix socket path is not in clean form (no \"..\", \".\", \"//\" or trailing \"/\")")
	case len(p) > maxSocketPath:
		return "", destinationError(fmt.Sprintf("the Unix socket path is longer than %d bytes", maxSocketPath))
	}
	return p, nil
}

func destinationError(msg string) error {
	return &secrets.Error{Kind: secrets.InvalidInput, Msg: "destination: " + msg}
}

// DestinationCheck judges a destination before anything is sent to it: nil allows it; an error
// (a PolicyDenied *secrets.Error) refuses it.
type DestinationCheck func(Destination) error

// Resolver resolves DNS names; *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Dialer opens the network connections of a connector or sink, and only to destinations its
// Check allows. It is the one place where an address is judged and then dialled, so there is no
// window between the two:
//   - the address is parsed and put in canonical form (ParseDestination); forms a rule could
//     not see (zones, non-canonical numbers, other networks) are refused before any lookup;
//   - Check judges that canonical Destination;
//   - a name is then resolved by the Dialer itself (Go's resolver: /etc/hosts and the system's
//     DNS servers, never a C library's looser parsing) and the addresses it returned are
//     dialled directly, so nothing resolves the name a second time. DNS is trusted: a rule that
//     names a host trusts whatever the agent's resolver answers for it.
//
// The zero value dials every destination ParseDestination accepts.
type Dialer struct {
	// Check judges each destination; nil allows every one.
	Check DestinationCheck
	// Resolver resolves names; nil uses Go's own resolver.
	Resolver Resolver
	// Timeout bounds each connection attempt (default 10 s); ctx bounds all of them.
	Timeout time.Duration
	// DialAddr dials a resolved "ip:port" or a socket path; nil uses a net.Dialer. Tests set it
	// to see what would be dialled.
	DialAddr func(ctx context.Context, network, address string) (net.Conn, error)
}

// DialContext judges and dials network/address; see Dialer. Its errors are *secrets.Error for
// a refused or malformed destination, and the network's own errors otherwise (connectors
// classify them without showing their text).
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	dest, err := ParseDestination(network, address)
	if err != nil {
		return nil, err
	}
	if d.Check != nil {
		if err := d.Check(dest); err != nil {
			return nil, err
		}
	}
	if dest.Network == NetworkUnix {
		return d.dial(ctx, NetworkUnix, dest.Host)
	}
	if dest.IsIP() {
		return d.dial(ctx, "tcp", dest.String())
	}
	var res Resolver = &net.Resolver{PreferGo: true}
	if d.Resolver != nil {
		res = d.Resolver
	}
	addrs, err := res.LookupIPAddr(ctx, dest.Host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.Zone != "" {
			continue // a zoned (link-local) answer: not an address a rule can name
		}
		conn, err := d.dial(ctx, "tcp", net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(dest.Port)))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, &net.DNSError{Err: "no usable address", Name: dest.Host, IsNotFound: true}
	}
	return nil, errors.Join(errs...)
}

func (d *Dialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if d.DialAddr != nil {
		return d.DialAddr(ctx, network, address)
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return nd.DialContext(ctx, network, address)
}

// DestinationOfURL returns the destination an http or https URL is dialled at: its host in
// canonical form and its port (the scheme's default when none is given).
func DestinationOfURL(u *url.URL) (Destination, error) {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		default:
			return Destination{}, destinationError("only http and https URLs are dialled")
		}
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return ParseDestination("tcp", host+":"+port)
}

// GuardTransport makes t dial only through d, judging every request's destination:
//   - before each request, the URL's own destination (DestinationOfURL) is judged by d.Check,
//     whether or not a proxy carries the request;
//   - a proxy that t's own Proxy function (the agent's environment: HTTPS_PROXY, NO_PROXY)
//     chooses is agent configuration: its address may then be dialled too;
//   - every dial goes through d.DialContext, which judges it again (a proxy address chosen
//     above excepted).
//
// It changes t in place; call it on a transport of one's own (a Clone).
func GuardTransport(t *http.Transport, d *Dialer) {
	proxy := t.Proxy
	allowed := &proxySet{}
	t.Proxy = func(req *http.Request) (*url.URL, error) {
		dest, err := DestinationOfURL(req.URL)
		if err != nil {
			return nil, err
		}
		if d.Check != nil {
			if err := d.Check(dest); err != nil {
				return nil, err
			}
		}
		if proxy == nil {
			return nil, nil
		}
		pu, err := proxy(req)
		if pu == nil || err != nil {
			return pu, err
		}
		pd, err := DestinationOfURL(pu)
		if err != nil {
			return nil, err
		}
		allowed.add(pd)
		return pu, nil
	}
	check := d.Check
	guarded := *d
	guarded.Check = func(dest Destination) error {
		if allowed.has(dest) {
			return nil
		}
		if check != nil {
			return check(dest)
		}
		return nil
	}
	t.DialContext = guarded.DialContext
	t.DialTLSContext = nil
}

// proxySet is the set of proxy destinations a transport was told to use.
type proxySet struct {
	mu    sync.Mutex
	dests []Destination
}

func (s *proxySet) add(d Destination) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.dests, d) {
		s.dests = append(s.dests, d)
	}
}

func (s *proxySet) has(d Destination) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.dests, d)
}
