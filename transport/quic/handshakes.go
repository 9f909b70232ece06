package quic

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"

	quicgo "github.com/quic-go/quic-go"
)

// Refusals of new inbound connections, as ConnContext returns them to
// quic-go (which answers CONNECTION_REFUSED and only logs the error).
var (
	errHandshakesFull  = errors.New("quic: MaxHandshakes handshakes in progress")
	errHandshakesPerIP = errors.New("quic: MaxHandshakesPerIP handshakes in progress from this address")
)

// Stats counts what the transport did about inbound handshakes.
type Stats struct {
	// Handshakes is how many inbound handshakes are in progress: admitted
	// by quic-go, not yet accepted by a listener, not yet failed.
	Handshakes int
	// Refused counts new connections refused for MaxHandshakes or
	// MaxHandshakesPerIP.
	Refused uint64
	// Retries counts connection attempts answered with a Retry, for the
	// client to prove it receives at its address (RFC 9000 §8.1.2); quic-go
	// drops some of them instead when its queue of Retries to send is full.
	Retries uint64
}

// Stats reports the inbound handshake counters.
func (t *Transport) Stats() Stats { return t.hs.stats() }

// handshakes admits inbound QUIC handshakes. quic-go builds a connection
// (about 38 KiB and 4 goroutines) for every Initial without a token before
// it can tell whether the packet decrypts, and keeps it for the handshake
// timeout, so each datagram of a junk flood costs that much. Two quic-go
// hooks, called in turn on its one packet-handling goroutine for such an
// Initial, bound this: mustValidate (Transport.VerifySourceAddress) has
// quic-go send a stateless Retry instead of building anything once enough
// handshakes are in progress, and admit (Transport.ConnContext) counts the
// handshakes it lets through and refuses beyond the caps.
type handshakes struct {
	// Limits, fixed at New (see Config).
	max, perIP    int
	retryAbove    int // Retry once this many are in progress
	retryPerIP    int // Retry a source once it has this many in progress
	limitLoopback bool

	mu      sync.Mutex
	total   int
	byGroup map[netip.Addr]int // per IPv4 address or IPv6 /64, see groupOf
	refused uint64
	retries uint64
}

func newHandshakes(c Config) *handshakes {
	return &handshakes{
		max:           c.MaxHandshakes,
		perIP:         c.MaxHandshakesPerIP,
		retryAbove:    max(0, c.RetryThreshold), // negative: always
		retryPerIP:    max(1, c.MaxHandshakesPerIP/2),
		limitLoopback: c.LimitLoopback,
		byGroup:       make(map[netip.Addr]int),
	}
}

// groupOf is the address group a per-IP limit counts addr in: the IPv4
// address, or the IPv6 /64 (a host or site may own the whole /64, as the
// TCP upgrader assumes). limited is false for loopback unless
// LimitLoopback is set, and for an address that is not UDP.
func (h *handshakes) groupOf(addr net.Addr) (group netip.Addr, limited bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip := ua.AddrPort().Addr().Unmap()
	if ip.IsLoopback() && !h.limitLoopback {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64) // cannot fail for IPv6
		ip = p.Addr()
	}
	return ip, true
}

// mustValidate is Transport.VerifySourceAddress: whether a connection
// attempt from addr (unvalidated, maybe spoofed) gets a Retry first. A
// Retry costs us one small datagram and no state, and a connection is
// built only once the client echoes its token from that address: junk and
// spoofed sources never get that far. Below the thresholds honest peers
// are spared the extra round trip.
func (h *handshakes) mustValidate(addr net.Addr) bool {
	group, limited := h.groupOf(addr)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total < h.retryAbove && (!limited || h.byGroup[group] < h.retryPerIP) {
		return false
	}
	h.retries++
	return true
}

// slotKey finds a handshake's slot in its connection's context.
type slotKey struct{}

// slot is one admitted handshake. Whichever comes first of the listener
// accepting the connection (accepted) and the connection ending (the
// AfterFunc on its context) gives it back, exactly once: stop reports
// whether it prevented the AfterFunc.
type slot struct {
	h       *handshakes
	group   netip.Addr
	limited bool
	stop    func() bool
}

// admit is Transport.ConnContext: quic-go is about to build a connection
// for info's Initial. It refuses it beyond MaxHandshakes or
// MaxHandshakesPerIP, and else counts it until the handshake ends.
func (h *handshakes) admit(ctx context.Context, info *quicgo.ClientInfo) (context.Context, error) {
	group, limited := h.groupOf(info.RemoteAddr)
	h.mu.Lock()
	var err error
	switch {
	case h.total >= h.max:
		err = errHandshakesFull
	case limited && h.byGroup[group] >= h.perIP:
		err = errHandshakesPerIP
	}
	if err != nil {
		h.refused++
		h.mu.Unlock()
		return nil, err
	}
	h.total++
	if limited {
		h.byGroup[group]++
	}
	h.mu.Unlock()
	s := &slot{h: h, group: group, limited: limited}
	// quic-go cancels ctx when the connection closes or its handshake
	// fails; the conn's own context derives from the one returned here,
	// which is how accepted finds the slot. The connection passes through
	// quic-go's accept channel after this returns, so s.stop is set
	// before accepted reads it.
	s.stop = context.AfterFunc(ctx, s.release)
	return context.WithValue(ctx, slotKey{}, s), nil
}

// accepted gives back the slot of qc, whose handshake has completed.
func accepted(qc *quicgo.Conn) {
	if s, ok := qc.Context().Value(slotKey{}).(*slot); ok && s.stop() {
		s.release()
	}
}

func (s *slot) release() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total--
	if !s.limited {
		return
	}
	if n := h.byGroup[s.group] - 1; n > 0 {
		h.byGroup[s.group] = n
	} else {
		delete(h.byGroup, s.group)
	}
}

func (h *handshakes) stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Handshakes: h.total, Refused: h.refused, Retries: h.retries}
}
