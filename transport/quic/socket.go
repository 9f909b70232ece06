package quic

import (
	"fmt"
	"net"

	quicgo "github.com/quic-go/quic-go"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// A socket is one UDP socket and the quic-go Transport that owns it. QUIC
// tells connections apart by connection ID, so one socket carries a
// listener and any number of dialed and accepted connections.
type socket struct {
	udp   *net.UDPConn
	qt    *quicgo.Transport
	addr  *net.UDPAddr // as bound (port 0 resolved)
	maddr ma.Multiaddr
	fam   int // 0 IPv4, 1 IPv6

	// Guarded by Transport.mu.
	ln     *listener // nil when not listening
	shared bool      // the family's ephemeral dial socket; lives until Close
	users  int       // connections on the socket plus dials in progress
}

// famOf is the address family index of ip: 0 for IPv4, 1 for IPv6.
func famOf(ip net.IP) int {
	if ip.To4() != nil {
		return 0
	}
	return 1
}

var famNetwork = [2]string{"udp4", "udp6"}

// openSocketLocked binds a new socket at laddr.
func (t *Transport) openSocketLocked(laddr *net.UDPAddr) (*socket, error) {
	fam := famOf(laddr.IP)
	udp, err := net.ListenUDP(famNetwork[fam], laddr)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	s := &socket{
		udp: udp,
		qt: &quicgo.Transport{
			Conn:              udp,
			StatelessResetKey: &t.resetKey,
			TokenGeneratorKey: &t.tokenKey,
			// Inbound connections only; see handshakes.
			VerifySourceAddress: t.hs.mustValidate,
			ConnContext:         t.hs.admit,
		},
		addr: udp.LocalAddr().(*net.UDPAddr),
		fam:  fam,
	}
	if s.maddr, err = multiaddrOf(s.addr); err != nil {
		udp.Close()
		return nil, fmt.Errorf("quic: %w", err)
	}
	t.sockets[s] = struct{}{}
	return s, nil
}

// close stops the socket's quic-go Transport (ending what still runs on
// it without notice to peers) and closes the UDP socket.
func (s *socket) close() {
	s.qt.Close()
	s.udp.Close()
}

// forgetLocked removes s from the transport's sockets.
func (t *Transport) forgetLocked(s *socket) {
	delete(t.sockets, s)
	if t.dialers[s.fam] == s {
		t.dialers[s.fam] = nil
	}
}

// retireLocked forgets s and reports true, for the caller to close it after
// unlocking, when nothing uses s any longer.
func (t *Transport) retireLocked(s *socket) bool {
	if t.closed || s.users > 0 || s.ln != nil || s.shared {
		return false
	}
	t.forgetLocked(s)
	return true
}

// release ends one use of s taken by dialSocket or setup.
func (t *Transport) release(s *socket) {
	t.mu.Lock()
	s.users--
	idle := t.retireLocked(s)
	t.mu.Unlock()
	if idle {
		s.close()
	}
}

// socketAtLocked finds a socket a listener for laddr can adopt: one bound
// to that very address, or for port 0 any non-listening socket bound to
// that IP (such as the shared dial socket, when laddr is unspecified).
func (t *Transport) socketAtLocked(laddr *net.UDPAddr) *socket {
	fam := famOf(laddr.IP)
	for s := range t.sockets {
		if s.fam != fam || !s.addr.IP.Equal(laddr.IP) {
			continue
		}
		if s.addr.Port == laddr.Port || (laddr.Port == 0 && s.ln == nil) {
			return s
		}
	}
	return nil
}

// dialSocket picks the socket to dial raddr from and counts the dial as a
// use of it: a listening socket of raddr's family if one fits, else the
// family's shared ephemeral socket, opened on first use.
func (t *Transport) dialSocket(raddr *net.UDPAddr) (*socket, error) {
	fam := famOf(raddr.IP)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	s := t.listenerForLocked(raddr, fam)
	if s == nil {
		s = t.dialers[fam]
	}
	if s == nil {
		unspecified := &net.UDPAddr{IP: net.IPv4zero}
		if fam == 1 {
			unspecified.IP = net.IPv6unspecified
		}
		var err error
		if s, err = t.openSocketLocked(unspecified); err != nil {
			return nil, err
		}
		s.shared = true
		t.dialers[fam] = s
	}
	s.users++
	return s, nil
}

// listenerForLocked picks the listening socket to dial raddr from, or nil:
// one bound to the unspecified address, else one whose address is as much
// loopback as raddr is; among several non-loopback ones, the one whose
// address the kernel would choose as source for raddr.
func (t *Transport) listenerForLocked(raddr *net.UDPAddr, fam int) *socket {
	loopback := raddr.IP.IsLoopback()
	var fits []*socket
	for s := range t.sockets {
		if s.ln == nil || s.fam != fam {
			continue
		}
		switch ip := s.addr.IP; {
		case ip.IsUnspecified():
			return s
		case ip.IsLoopback() == loopback:
			fits = append(fits, s)
		}
	}
	if len(fits) == 0 {
		return nil
	}
	if loopback {
		return fits[0]
	}
	// A socket bound to one address sends from it whatever the route; use
	// it only if the route to raddr leaves from that address anyway.
	src := sourceFor(raddr, fam)
	for _, s := range fits {
		if s.addr.IP.Equal(src) {
			return s
		}
	}
	return nil
}

// sourceFor asks the kernel which local address it would send to raddr
// from (connecting a UDP socket sends nothing).
func sourceFor(raddr *net.UDPAddr, fam int) net.IP {
	c, err := net.DialUDP(famNetwork[fam], nil, raddr)
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP
}
