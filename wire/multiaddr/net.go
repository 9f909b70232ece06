package multiaddr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/mote-p2p/mote/wire"
)

// These mirror go-multiaddr/net (manet), so callers only change the import.

// FromNetAddr converts a *net.TCPAddr, *net.UDPAddr, *net.IPAddr, *net.IPNet
// or *net.UnixAddr (network "unix") into an address. IPv4-mapped IPv6
// addresses become ip4, and an IPv6 zone becomes a leading ip6zone.
func FromNetAddr(a net.Addr) (Multiaddr, error) {
	switch a := a.(type) {
	case *net.TCPAddr:
		if a != nil {
			return fromIPPort(a.IP, a.Zone, P_TCP, a.Port)
		}
	case *net.UDPAddr:
		if a != nil {
			return fromIPPort(a.IP, a.Zone, P_UDP, a.Port)
		}
	case *net.IPAddr:
		if a != nil {
			return fromIP(a.IP, a.Zone)
		}
	case *net.IPNet:
		// net.InterfaceAddrs returns these; the mask is dropped.
		if a != nil {
			return fromIP(a.IP, "")
		}
	case *net.UnixAddr:
		if a != nil && a.Net == "unix" {
			return fromUnixPath(a.Name)
		}
	}
	if a == nil {
		return nil, errors.New("multiaddr: nil net.Addr")
	}
	return nil, fmt.Errorf("multiaddr: cannot convert %T of network %q", a, a.Network())
}

// FromIP converts an IP address into an ip4 or ip6 address.
func FromIP(ip net.IP) (Multiaddr, error) {
	return fromIP(ip, "")
}

func fromIP(ip net.IP, zone string) (Multiaddr, error) {
	var buf [48]byte
	b, err := appendIP(buf[:0], ip, zone)
	if err != nil {
		return nil, err
	}
	return parse(string(b))
}

func fromIPPort(ip net.IP, zone string, code, port int) (Multiaddr, error) {
	if port < 0 || port > 0xffff {
		return nil, fmt.Errorf("multiaddr: port %d out of range", port)
	}
	var buf [48]byte
	b, err := appendIP(buf[:0], ip, zone)
	if err != nil {
		return nil, err
	}
	b = wire.AppendUvarint(b, uint64(code))
	b = append(b, byte(port>>8), byte(port))
	return parse(string(b))
}

// appendIP appends the binary ip4 or ip6 component of ip, preceded by an
// ip6zone component if zone is set and ip is IPv6. A zone on an IPv4
// address is dropped, as go-multiaddr does.
func appendIP(dst []byte, ip net.IP, zone string) ([]byte, error) {
	if ip4 := ip.To4(); ip4 != nil {
		dst = wire.AppendUvarint(dst, P_IP4)
		return append(dst, ip4...), nil
	}
	if len(ip) != net.IPv6len {
		return nil, fmt.Errorf("multiaddr: invalid IP address %v", ip)
	}
	if zone != "" {
		if strings.Contains(zone, "/") || len(zone) > MaxAddrLen {
			return nil, fmt.Errorf("multiaddr: invalid IPv6 zone %.64q", zone)
		}
		dst = wire.AppendUvarint(dst, P_IP6ZONE)
		dst = wire.AppendUvarint(dst, uint64(len(zone)))
		dst = append(dst, zone...)
	}
	dst = wire.AppendUvarint(dst, P_IP6)
	return append(dst, ip...), nil
}

// fromUnixPath converts a unix socket path. As in go-multiaddr, Windows
// paths get forward slashes and every path a leading one (c:\a becomes
// /c:/a), since the text form needs it.
func fromUnixPath(path string) (Multiaddr, error) {
	if runtime.GOOS == "windows" {
		path = filepath.ToSlash(path)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	c, err := NewComponent("unix", path)
	if err != nil {
		return nil, err
	}
	return Multiaddr{c}, nil
}

// ToNetAddr converts an address that is exactly [ip6zone/]ip4|ip6 followed
// by tcp, udp or nothing, or exactly unix, into a *net.TCPAddr,
// *net.UDPAddr, *net.IPAddr or *net.UnixAddr. Anything longer is refused,
// so callers pass the prefix they mean, such as m[:2] of a QUIC address.
// DNS names are refused too: resolving them here would block.
func ToNetAddr(m Multiaddr) (net.Addr, error) {
	if len(m) == 1 && m[0].Code() == P_UNIX {
		return &net.UnixAddr{Net: "unix", Name: unixPath(m[0])}, nil
	}
	rest := m
	zone := ""
	if len(rest) > 0 && rest[0].Code() == P_IP6ZONE {
		zone = rest[0].Value()
		rest = rest[1:]
	}
	if len(rest) == 0 || len(rest) > 2 {
		return nil, fmt.Errorf("multiaddr: %s is not an IP, IP+TCP, IP+UDP or unix address", m)
	}
	var ip net.IP
	switch rest[0].Code() {
	case P_IP4:
		if zone != "" {
			return nil, fmt.Errorf("multiaddr: %s has ip4 with zone", m)
		}
		ip = net.IP(rest[0].RawValue())
	case P_IP6:
		ip = net.IP(rest[0].RawValue())
	default:
		return nil, fmt.Errorf("multiaddr: %s does not start with an IP address", m)
	}
	if len(rest) == 1 {
		return &net.IPAddr{IP: ip, Zone: zone}, nil
	}
	v := rest[1].enc[rest[1].off:]
	switch rest[1].Code() {
	case P_TCP:
		return &net.TCPAddr{IP: ip, Port: int(v[0])<<8 | int(v[1]), Zone: zone}, nil
	case P_UDP:
		return &net.UDPAddr{IP: ip, Port: int(v[0])<<8 | int(v[1]), Zone: zone}, nil
	}
	return nil, fmt.Errorf("multiaddr: %s is not an IP, IP+TCP, IP+UDP or unix address", m)
}

// unixPath returns the path of a unix component in the local OS's form:
// on Windows, /c:/a becomes c:\a.
func unixPath(c Component) string {
	path := c.Value()
	if runtime.GOOS == "windows" {
		path = filepath.FromSlash(strings.TrimLeft(path, "/"))
	}
	return path
}

// DialArgs returns the network and address net.Dial expects for m, such
// as ("tcp4", "1.2.3.4:80"), ("udp6", "[fe80::1%eth0]:80"), ("ip4",
// "example.com") or ("unix", "/tmp/a.sock"). Like go-multiaddr, it looks
// only at the leading [ip6zone/]ip4|ip6|dns|dns4|dns6[/tcp|udp], or unix,
// and ignores what follows.
func DialArgs(m Multiaddr) (network, host string, err error) {
	zone := ""
	rest := m
	for len(rest) > 0 && rest[0].Code() == P_IP6ZONE {
		if zone != "" {
			return "", "", fmt.Errorf("multiaddr: %s has multiple zones", m)
		}
		zone = rest[0].Value()
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return "", "", fmt.Errorf("multiaddr: %s is not a 'thin waist' address", m)
	}
	host = rest[0].Value()
	hostname := false
	switch rest[0].Code() {
	case P_IP4:
		if zone != "" {
			return "", "", fmt.Errorf("multiaddr: %s has ip4 with zone", m)
		}
		network = "ip4"
	case P_IP6:
		network = "ip6"
	case P_DNS:
		network, hostname = "ip", true
	case P_DNS4:
		network, hostname = "ip4", true
	case P_DNS6:
		network, hostname = "ip6", true
	case P_UNIX:
		return "unix", unixPath(rest[0]), nil
	default:
		return "", "", fmt.Errorf("multiaddr: %s is not a 'thin waist' address", m)
	}
	// A name is used as it is: brackets and zones are for IPv6 literals.
	if zone != "" && !hostname {
		host += "%" + zone
	}
	if len(rest) == 1 {
		return network, host, nil
	}
	switch rest[1].Code() {
	case P_TCP:
		network = "tcp" + strings.TrimPrefix(network, "ip")
	case P_UDP:
		network = "udp" + strings.TrimPrefix(network, "ip")
	default:
		return network, host, nil
	}
	if network[3:] == "6" && !hostname {
		host = "[" + host + "]"
	}
	return network, host + ":" + rest[1].Value(), nil
}

// IsIPLoopback reports whether m starts with a loopback IP address
// (127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104), optionally after an ip6zone.
func IsIPLoopback(m Multiaddr) bool {
	ip, ok := firstIP(m)
	return ok && ip.Unmap().IsLoopback()
}

// IsIPUnspecified reports whether m starts with 0.0.0.0, :: or
// ::ffff:0.0.0.0, optionally after an ip6zone.
func IsIPUnspecified(m Multiaddr) bool {
	ip, ok := firstIP(m)
	return ok && ip.Unmap().IsUnspecified()
}

// IsIP6LinkLocal reports whether m starts with an ip6 link-local address,
// unicast or multicast (including IPv4-mapped ones), optionally after an
// ip6zone.
func IsIP6LinkLocal(m Multiaddr) bool {
	ip, ok := firstIP(m)
	if !ok || !ip.Is6() {
		return false
	}
	ip = ip.Unmap()
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast()
}

// IP returns the IP m starts with (after an ip6zone), IPv4-mapped IPv6
// addresses unmapped, for classifying and grouping addresses by IP.
func IP(m Multiaddr) (netip.Addr, bool) {
	ip, ok := firstIP(m)
	return ip.Unmap(), ok
}

// firstIP returns the IP of m's leading ip4 or ip6 component. A leading
// ip6zone is skipped only when ip6 follows, as in go-multiaddr. Mapped
// IPv4 addresses stay ip6 here; callers unmap them as net.IP's methods do.
func firstIP(m Multiaddr) (netip.Addr, bool) {
	if len(m) > 1 && m[0].Code() == P_IP6ZONE && m[1].Code() == P_IP6 {
		m = m[1:]
	}
	if len(m) == 0 {
		return netip.Addr{}, false
	}
	v := m[0].enc[m[0].off:]
	switch m[0].Code() {
	case P_IP4:
		return netip.AddrFrom4([4]byte{v[0], v[1], v[2], v[3]}), true
	case P_IP6:
		var b [16]byte
		copy(b[:], v)
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// InterfaceMultiaddrs returns the addresses of the local network
// interfaces, as ip4 and ip6 addresses.
func InterfaceMultiaddrs() ([]Multiaddr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("multiaddr: listing interface addresses: %w", err)
	}
	out := make([]Multiaddr, len(addrs))
	for i, a := range addrs {
		if out[i], err = FromNetAddr(a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ResolveUnspecifiedAddress expands an address starting with 0.0.0.0 or ::
// into one address per interface address of the same family, the first
// component replaced by the interface's. Other addresses come back alone.
// Like go-multiaddr, an address with nothing after the IP resolves to the
// whole interface address.
func ResolveUnspecifiedAddress(resolve Multiaddr, ifaceAddrs []Multiaddr) ([]Multiaddr, error) {
	if len(resolve) == 0 || !IsIPUnspecified(resolve[:1]) {
		return []Multiaddr{resolve}, nil
	}
	code := resolve[0].Code()
	rest := resolve[1:]
	out := make([]Multiaddr, 0, len(ifaceAddrs))
	for _, ia := range ifaceAddrs {
		if len(ia) == 0 || ia[0].Code() != code {
			continue
		}
		if len(rest) == 0 {
			out = append(out, ia)
		} else {
			out = append(out, Join(ia[:1], rest))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("multiaddr: no interface address to resolve %s", resolve)
	}
	return out, nil
}

// Listener is a net.Listener that knows its local address as a multiaddr.
// Unlike go-multiaddr's, its Accept returns plain net.Conns.
type Listener interface {
	net.Listener
	// Multiaddr returns the address the listener is bound to.
	Multiaddr() Multiaddr
}

type listener struct {
	net.Listener
	addr Multiaddr
}

func (l *listener) Multiaddr() Multiaddr { return l.addr }

// Listen listens on the stream network DialArgs gives for laddr, such as
// /ip4/127.0.0.1/tcp/0, and reports the address actually bound.
func Listen(laddr Multiaddr) (Listener, error) {
	network, host, err := DialArgs(laddr)
	if err != nil {
		return nil, err
	}
	nl, err := net.Listen(network, host)
	if err != nil {
		return nil, err
	}
	addr, err := FromNetAddr(nl.Addr())
	if err != nil {
		nl.Close()
		return nil, err
	}
	return &listener{nl, addr}, nil
}

// NetListener returns l as a net.Listener; it already is one, and this
// exists so that go-multiaddr callers keep compiling.
func NetListener(l Listener) net.Listener {
	return l
}
