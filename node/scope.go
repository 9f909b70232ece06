package node

import (
	"net/netip"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Scope is the kind of network an address's IP belongs to.
type Scope int

// Scopes, from the IANA special-purpose registries (RFC 6890 and its
// updates).
const (
	// ScopeNone: the address has no IP (memory, unix, dns before
	// resolution).
	ScopeNone Scope = iota
	// ScopePublic: routable on the internet.
	ScopePublic
	// ScopePrivate: RFC 1918 and IPv6 unique local (fc00::/7) ranges.
	ScopePrivate
	// ScopeLoopback: 127.0.0.0/8 and ::1.
	ScopeLoopback
	// ScopeLinkLocal: 169.254.0.0/16 and fe80::/10.
	ScopeLinkLocal
	// ScopeShared: carrier-grade NAT space, 100.64.0.0/10 (RFC 6598).
	ScopeShared
	// ScopeDocumentation: TEST-NET-1/2/3, 198.18.0.0/15 (benchmarking)
	// and 2001:db8::/32, reserved for examples and labs.
	ScopeDocumentation
	// ScopeUnspecified: 0.0.0.0 and ::, and other addresses that are no
	// peer's (multicast, 240.0.0.0/4).
	ScopeUnspecified
)

func (s Scope) String() string {
	return [...]string{"none", "public", "private", "loopback", "link-local", "shared", "documentation", "unspecified"}[s]
}

var scopeRanges = []struct {
	p netip.Prefix
	s Scope
}{
	{netip.MustParsePrefix("10.0.0.0/8"), ScopePrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), ScopePrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), ScopePrivate},
	{netip.MustParsePrefix("fc00::/7"), ScopePrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), ScopeShared},
	{netip.MustParsePrefix("192.0.2.0/24"), ScopeDocumentation},
	{netip.MustParsePrefix("198.51.100.0/24"), ScopeDocumentation},
	{netip.MustParsePrefix("203.0.113.0/24"), ScopeDocumentation},
	{netip.MustParsePrefix("198.18.0.0/15"), ScopeDocumentation},
	{netip.MustParsePrefix("2001:db8::/32"), ScopeDocumentation},
	{netip.MustParsePrefix("0.0.0.0/8"), ScopeUnspecified},
	{netip.MustParsePrefix("240.0.0.0/4"), ScopeUnspecified},
}

// ClassifyIP says which kind of network ip belongs to; an IP inside one
// of treatAsPublic counts as public whatever its class.
func ClassifyIP(ip netip.Addr, treatAsPublic []netip.Prefix) Scope {
	ip = ip.Unmap()
	for _, p := range treatAsPublic {
		if p.Contains(ip) {
			return ScopePublic
		}
	}
	switch {
	case !ip.IsValid():
		return ScopeNone
	case ip.IsLoopback():
		return ScopeLoopback
	case ip.IsLinkLocalUnicast():
		return ScopeLinkLocal
	case ip.IsUnspecified(), ip.IsMulticast(), ip.IsLinkLocalMulticast():
		return ScopeUnspecified
	}
	for _, r := range scopeRanges {
		if r.p.Contains(ip) {
			return r.s
		}
	}
	return ScopePublic
}

// AddrScope classifies the IP an address starts with, counting
// Config.TreatAsPublic as public.
func (n *Node) AddrScope(a ma.Multiaddr) Scope {
	ip, ok := ma.IP(a)
	if !ok {
		return ScopeNone
	}
	return ClassifyIP(ip, n.cfg.TreatAsPublic)
}

// ServerAddrFilters are the ranges Kubo's server profile never dials
// (Swarm.AddrFilters): private, shared, link-local, documentation and
// reserved networks, where an address a peer advertises can only reach
// a stranger's LAN. cmd/mote uses them with the server preset.
func ServerAddrFilters() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"fc00::/7", "fe80::/10",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// dialFiltered reports whether Config.AddrFilters keeps a from being
// dialed: its IP is in a filtered range and not in TreatAsPublic.
func (n *Node) dialFiltered(a ma.Multiaddr) bool {
	ip, ok := ma.IP(a)
	if !ok {
		return false
	}
	for _, p := range n.cfg.TreatAsPublic {
		if p.Contains(ip) {
			return false
		}
	}
	for _, p := range n.cfg.AddrFilters {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
