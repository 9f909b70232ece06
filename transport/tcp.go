package transport

import (
	"context"
	"fmt"
	"net"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// TCP dials and listens on /ip4|ip6/…/tcp/… addresses.
type TCP struct {
	up     *Upgrader
	dialer net.Dialer
}

// NewTCP returns a TCP transport whose connections are upgraded by up.
func NewTCP(up *Upgrader) *TCP {
	return &TCP{up: up}
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
		raw, err := t.dialer.DialContext(ctx, network, host)
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

// Listen implements Transport.
func (t *TCP) Listen(addr ma.Multiaddr) (Listener, error) {
	if !isIPTCP(addr) {
		return nil, fmt.Errorf("tcp: cannot listen on %s", addr)
	}
	network, host, err := ma.DialArgs(addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	ln, err := net.Listen(network, host)
	if err != nil {
		return nil, fmt.Errorf("tcp listen: %w", err)
	}
	l, err := t.up.Listen(ln, "tcp", ma.FromNetAddr)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return l, nil
}

// StripP2P removes a trailing /p2p/<id> from addr.
func StripP2P(addr ma.Multiaddr) ma.Multiaddr {
	if n := len(addr); n > 0 && addr[n-1].Protocol().Code == ma.P_P2P {
		return addr[:n-1]
	}
	return addr
}

// SplitP2P separates a trailing /p2p/<id> from addr; id is "" if there is none.
func SplitP2P(addr ma.Multiaddr) (ma.Multiaddr, peer.ID, error) {
	n := len(addr)
	if n == 0 || addr[n-1].Protocol().Code != ma.P_P2P {
		return addr, "", nil
	}
	id, err := peer.IDFromBytes(addr[n-1].RawValue())
	if err != nil {
		return nil, "", fmt.Errorf("address %s: %w", addr, err)
	}
	return addr[:n-1], id, nil
}
