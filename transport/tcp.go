package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// TCP dials and listens on /ip4|ip6/…/tcp/… addresses.
//
// By default it reuses its listen port for outbound connections, as
// go-libp2p does (go-reuseport): listeners are bound with SO_REUSEADDR and
// SO_REUSEPORT, and a dial leaves from the port of a listener of the
// destination's address family, so the address a peer observes (identify's
// observed address) is one it can dial back, and TCP hole punching becomes
// possible. Should the kernel refuse the reused port (a connection between
// the same two addresses and ports exists already, or is in TIME_WAIT), the
// dial is made again, transparently, from an ephemeral port.
//
// A consequence of SO_REUSEPORT: another process of the same user may
// listen on the same port at the same time, and the kernel then spreads
// incoming connections between the two. go-libp2p accepts this; set
// TCPConfig.DisableReusePort (or LIBP2P_TCP_REUSEPORT=false) to have
// listeners own their ports exclusively again.
//
// Another consequence: two peers that dial each other at the same instant,
// each from its listen port, may meet in a TCP simultaneous open, one
// connection that both dialed, whose security handshake then fails on both
// sides (both act as initiator); it is rare but for deliberate hole
// punching, and go-libp2p has it too.
//
// Port reuse is implemented on Linux (and Android); other systems dial
// from ephemeral ports.
type TCP struct {
	up     *Upgrader
	dialer net.Dialer
	reuse  bool // port reuse is on

	mu  sync.Mutex
	lns []*tcpListener // open listeners bound with SO_REUSEPORT, oldest first

	// Test hooks. attempt, if set, is called before each raw dial with
	// the local address used (nil: an ephemeral port). route, if set,
	// replaces routeSource.
	attempt func(laddr *net.TCPAddr)
	route   func(dst netip.Addr) (netip.Addr, error)
}

// TCPConfig configures a TCP transport. The zero value is the default.
type TCPConfig struct {
	// DisableReusePort stops listeners from being bound with SO_REUSEPORT
	// and dials from leaving from the listen port: every outbound
	// connection uses an ephemeral port. The environment variable
	// LIBP2P_TCP_REUSEPORT=false (or f, or 0), which go-libp2p honours
	// too, has the same effect on every transport made.
	DisableReusePort bool
}

// EnvReusePort is the environment variable that, set to false, f or 0,
// turns port reuse off (as in go-libp2p). It is read when a transport is
// made.
const EnvReusePort = "LIBP2P_TCP_REUSEPORT"

// NewTCP returns a TCP transport whose connections are upgraded by up,
// with port reuse on (unless LIBP2P_TCP_REUSEPORT=false).
func NewTCP(up *Upgrader) *TCP {
	return NewTCPWithConfig(up, TCPConfig{})
}

// NewTCPWithConfig returns a TCP transport configured by cfg whose
// connections are upgraded by up.
func NewTCPWithConfig(up *Upgrader, cfg TCPConfig) *TCP {
	return &TCP{up: up, reuse: reusePortSupported && !cfg.DisableReusePort && envReusePort()}
}

// envReusePort reports whether LIBP2P_TCP_REUSEPORT allows port reuse.
func envReusePort() bool {
	switch strings.ToLower(os.Getenv(EnvReusePort)) {
	case "false", "f", "0":
		return false
	}
	return true
}

// CanDial accepts exactly /ip4|ip6/<ip>/tcp/<port>, optionally followed by
// /p2p/<id>.
func (t *TCP) CanDial(addr ma.Multiaddr) bool {
	return isIPTCP(StripP2P(addr))
}

// isIPTCP reports whether addr is exactly an IP address and a TCP port.
func isIPTCP(addr ma.Multiaddr) bool {
	if len(addr) != 2 {
		return false
	}
	c0, c1 := addr[0].Protocol().Code, addr[1].Protocol().Code
	return (c0 == ma.P_IP4 || c0 == ma.P_IP6) && c1 == ma.P_TCP
}

// Dial implements Transport.
func (t *TCP) Dial(ctx context.Context, addr ma.Multiaddr, remote peer.ID) (Conn, error) {
	addr = StripP2P(addr)
	if !isIPTCP(addr) {
		return nil, fmt.Errorf("tcp: cannot dial %s", addr)
	}
	network, host, err := ma.DialArgs(addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	return t.up.Dial(ctx, remote, func(ctx context.Context) (net.Conn, Endpoint, error) {
		raw, err := t.dialRaw(ctx, network, host)
		if err != nil {
			return nil, Endpoint{}, fmt.Errorf("tcp dial: %w", err)
		}
		laddr, err := ma.FromNetAddr(raw.LocalAddr())
		if err != nil {
			raw.Close()
			return nil, Endpoint{}, fmt.Errorf("tcp: local address: %w", err)
		}
		return raw, Endpoint{Transport: "tcp", Local: laddr, Remote: addr}, nil
	})
}

// dialRaw opens a TCP connection to host, from the port of a listener when
// one suits the destination, and from an ephemeral port when none does or
// the kernel refuses the reused one.
func (t *TCP) dialRaw(ctx context.Context, network, host string) (net.Conn, error) {
	if laddr := t.localAddr(host); laddr != nil {
		d := t.dialer
		d.LocalAddr = laddr
		d.Control = reusePortControl
		t.attempted(laddr)
		c, err := d.DialContext(ctx, network, host)
		switch {
		case err == nil && !selfConnected(c):
			return c, nil
		case err == nil:
			// Dialing our own listener's address from its port connects
			// the socket to itself (TCP simultaneous open) instead of to
			// the listener; Go's net retries that only for ephemeral
			// ports.
			c.Close()
		case ctx.Err() != nil || !reuseFailed(err):
			return nil, err
		}
	}
	t.attempted(nil)
	return t.dialer.DialContext(ctx, network, host)
}

func (t *TCP) attempted(laddr *net.TCPAddr) {
	if t.attempt != nil {
		t.attempt(laddr)
	}
}

// selfConnected reports whether c is connected to itself.
func selfConnected(c net.Conn) bool {
	l, ok1 := c.LocalAddr().(*net.TCPAddr)
	r, ok2 := c.RemoteAddr().(*net.TCPAddr)
	return ok1 && ok2 && l.AddrPort() == r.AddrPort()
}

// reuseFailed reports whether a dial from a reused port failed because of
// the local address, and would likely succeed from an ephemeral port: the
// socket options could not be set, bind failed, or connect found the local
// address taken (EADDRNOTAVAIL on Linux when a connection with the same
// four addresses and ports exists or is in TIME_WAIT, EADDRINUSE on BSDs).
// Anything else, such as a refused connection, a timeout or an unreachable
// network, is the destination's answer, and dialing again would only ask
// it twice.
func reuseFailed(err error) bool {
	var oe *reuseOptError
	if errors.As(err, &oe) {
		return true
	}
	var se *os.SyscallError
	if errors.As(err, &se) && se.Syscall == "bind" {
		return true
	}
	var errno syscall.Errno
	return errors.As(err, &errno) && isAddrInUse(errno)
}

// reuseOptError is a failure to set SO_REUSEADDR or SO_REUSEPORT.
type reuseOptError struct{ err error }

func (e *reuseOptError) Error() string { return "set SO_REUSEPORT: " + e.err.Error() }
func (e *reuseOptError) Unwrap() error { return e.err }

// localAddr picks the address to dial host (an IP and port) from: the
// bound address of an open listener of the same family that can reach the
// destination, or nil for an ephemeral port. A listener bound to 0.0.0.0
// or :: gives the unspecified address with its port (the kernel picks the
// IP); one bound to a loopback IP serves loopback destinations; one bound
// to another IP serves the destinations the kernel routes from that IP.
func (t *TCP) localAddr(host string) *net.TCPAddr {
	if !t.reuse {
		return nil
	}
	dst, err := netip.ParseAddrPort(host)
	if err != nil || dst.Addr().Is4In6() {
		return nil
	}
	dstIP := dst.Addr()
	t.mu.Lock()
	var unspec, loopback, specific []netip.AddrPort
	for _, l := range t.lns {
		ip := l.bound.Addr()
		if ip.Is4() != dstIP.Is4() {
			continue
		}
		switch {
		case ip.IsUnspecified():
			unspec = append(unspec, l.bound)
		case ip.IsLoopback():
			loopback = append(loopback, l.bound)
		default:
			specific = append(specific, l.bound)
		}
	}
	t.mu.Unlock()

	if dstIP.IsLoopback() {
		if len(loopback) > 0 {
			return net.TCPAddrFromAddrPort(loopback[0])
		}
	} else if len(specific) > 0 {
		route := routeSource
		if t.route != nil {
			route = t.route
		}
		if src, err := route(dst.Addr()); err == nil {
			for _, b := range specific {
				if b.Addr().WithZone("") == src.WithZone("") {
					return net.TCPAddrFromAddrPort(b)
				}
			}
		}
	}
	if len(unspec) > 0 {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(unspec[0].Addr().WithZone(""), unspec[0].Port()))
	}
	return nil
}

// routeSource is the source IP the kernel picks for packets to dst, found
// by connecting a UDP socket, which sends nothing.
func routeSource(dst netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// Listen implements Transport.
func (t *TCP) Listen(addr ma.Multiaddr) (Listener, error) {
	if !isIPTCP(addr) {
		return nil, fmt.Errorf("tcp: cannot listen on %s", addr)
	}
	network, host, err := ma.DialArgs(addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	var ln net.Listener
	reuse := t.reuse
	if reuse {
		lc := net.ListenConfig{Control: reusePortControl}
		ln, err = lc.Listen(context.Background(), network, host)
		var oe *reuseOptError
		if errors.As(err, &oe) {
			reuse = false // e.g. a kernel without SO_REUSEPORT
		}
	}
	if !reuse {
		ln, err = net.Listen(network, host)
	}
	if err != nil {
		return nil, fmt.Errorf("tcp listen: %w", err)
	}
	if reuse {
		if ta, ok := ln.Addr().(*net.TCPAddr); ok {
			tl := &tcpListener{Listener: ln, t: t, bound: ta.AddrPort()}
			tl.bound = netip.AddrPortFrom(tl.bound.Addr().Unmap(), tl.bound.Port())
			t.mu.Lock()
			t.lns = append(t.lns, tl)
			t.mu.Unlock()
			ln = tl
		}
	}
	l, err := t.up.Listen(ln, "tcp", ma.FromNetAddr)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return l, nil
}

// tcpListener is a listener whose port dials reuse; closing it ends that.
type tcpListener struct {
	net.Listener
	t     *TCP
	bound netip.AddrPort
}

func (l *tcpListener) Close() error {
	l.t.mu.Lock()
	l.t.lns = slices.DeleteFunc(l.t.lns, func(x *tcpListener) bool { return x == l })
	l.t.mu.Unlock()
	return l.Listener.Close()
}

// StripP2P removes a trailing /p2p/<id> from addr.
func StripP2P(addr ma.Multiaddr) ma.Multiaddr {
	if n := len(addr); n > 0 && addr[n-1].Protocol().Code == ma.P_P2P {
		return addr[:n-1]
	}
	return addr
}

// SplitP2P separates a trailing /p2p/<id> from addr; id is "" if there is none.
//
// Deprecated: use peer.SplitP2P, or peer.AddrInfoFromP2pAddr.
func SplitP2P(addr ma.Multiaddr) (ma.Multiaddr, peer.ID, error) { return peer.SplitP2P(addr) }
