package policy

import (
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/netguard"
)

// hostPattern is one host pattern: a glob over the normalized host, and a port (0 = any); or,
// in destination rules, the exact absolute path of a Unix socket.
type hostPattern struct {
	host   string
	port   int
	socket string
}

// matchesDestination reports whether a destination (as netguard.ParseDestination gives it)
// matches: a socket pattern the same socket path, a host pattern a tcp destination whose host
// and port it matches.
func (hp hostPattern) matchesDestination(d netguard.Destination) bool {
	switch d.Network {
	case netguard.NetworkUnix:
		return hp.socket != "" && hp.socket == d.Host
	case netguard.NetworkTCP:
		if hp.socket != "" || len(d.Host) > maxHostBytes || d.Port < 1 || d.Port > 65535 {
			return false
		}
		return hp.matches(normalizeHost(d.Host), d.Port)
	}
	return false
}

// matches reports whether the normalized host and port match. Port 0 (unknown) matches only a
// pattern without a port; an empty host matches nothing.
func (hp hostPattern) matches(host string, port int) bool {
	if host == "" {
		return false
	}
	return (hp.port == 0 || hp.port == port) && connectors.Glob(hp.host, host)
}

// normalizeHost returns the form of a host that patterns compare with: without IPv6 brackets,
// lower case, without one trailing dot, an IP address in canonical form (IPv4-mapped IPv6 as
// IPv4).
func normalizeHost(h string) string {
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	h = strings.ToLower(h)
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return strings.TrimSuffix(h, ".")
}

// hostSyntax selects the syntax of a host pattern.
type hostSyntax int

const (
	// destinationHosts: "host", "host:port", "host:*", "[v6]", "[v6]:port", "[v6]:*".
	destinationHosts hostSyntax = iota
	// customStoreHosts: "host", "host:port", or an IPv6 address without brackets (any port), as
	// the custom store compares store_url hosts with path.Match.
	customStoreHosts
)

// parseHostPattern parses a host pattern. It returns a problem ("" if none) that says what to fix.
// The caller has checked the common pattern rules (patternProblem).
func parseHostPattern(s string, syntax hostSyntax) (hostPattern, string) {
	if syntax == destinationHosts && strings.HasPrefix(s, "/") {
		switch {
		case strings.ContainsAny(s, "*?"):
			return hostPattern{}, "a Unix socket must be named by its exact path, without wildcards"
		case path.Clean(s) != s:
			return hostPattern{}, "a Unix socket path must be in clean form (no \"..\", \".\", \"//\" or trailing \"/\")"
		case len(s) > 107:
			return hostPattern{}, "a Unix socket path is at most 107 bytes"
		}
		return hostPattern{socket: s}, ""
	}
	if strings.ContainsAny(s, "/@ ") {
		return hostPattern{}, "must be a host or host:port, without a scheme, user or path"
	}
	host, portText, hasPort := s, "", false
	bracketed := strings.HasPrefix(s, "[")
	switch {
	case bracketed && syntax == customStoreHosts:
		return hostPattern{}, "write an IPv6 address without brackets here, such as 2001:db8::1 (it then matches any port): the custom store compares store_url hosts that way"
	case strings.ContainsAny(s, "[]") && !bracketed:
		return hostPattern{}, `"[" and "]" may only enclose an IPv6 address, such as [2001:db8::1]:5432`
	case bracketed:
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hostPattern{}, `has "[" without "]": write an IPv6 address as [2001:db8::1] or [2001:db8::1]:5432`
		}
		host = s[1:end]
		rest := s[end+1:]
		if strings.ContainsAny(host, "[]") {
			return hostPattern{}, "has nested brackets"
		}
		switch {
		case rest == "":
		case rest[0] == ':':
			portText, hasPort = rest[1:], true
		default:
			return hostPattern{}, `has text after "]": write [address] or [address]:port`
		}
		if host != "" && !strings.Contains(host, ":") {
			return hostPattern{}, "brackets are for IPv6 addresses only: write a name or an IPv4 address without them"
		}
	case strings.Count(s, ":") == 1:
		host, portText, _ = strings.Cut(s, ":")
		hasPort = true
	case strings.Count(s, ":") > 1 && syntax == destinationHosts:
		return hostPattern{}, "write an IPv6 address in brackets, such as [2001:db8::1]:5432, or [2001:db8::1] for any port"
	}
	if host == "" {
		return hostPattern{}, "has no host: write host or host:port"
	}
	hp := hostPattern{host: strings.ToLower(host)}
	if !strings.ContainsAny(hp.host, "*?") {
		hp.host = normalizeHost(hp.host)
		if hp.host == "" {
			return hostPattern{}, "has no host: write host or host:port"
		}
	}
	if hasPort {
		switch {
		case portText == "*" && syntax == destinationHosts:
			// any port
		case portText == "":
			return hostPattern{}, `has ":" but no port: write host:port, or host alone for any port`
		default:
			n, err := strconv.Atoi(portText)
			if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != portText {
				if syntax == customStoreHosts {
					return hostPattern{}, "has a port that is not a number from 1 to 65535: write host:port, or host alone for any port"
				}
				return hostPattern{}, "has a port that is not a number from 1 to 65535 or *: write host:port, or host alone for any port"
			}
			hp.port = n
		}
	}
	return hp, ""
}
