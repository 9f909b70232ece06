package transport

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Mem is a transport on a MemNetwork, with connections upgraded as on TCP.
type Mem struct {
	host *MemHost
	up   *Upgrader
}

// NewMem returns a transport on network n: on n's host if n is a host's
// view (MemHost.Network), else on a new public host of its own.
func NewMem(n *MemNetwork, up *Upgrader) *Mem {
	h := n.host
	if h == nil {
		h = n.w.newHost(nil, false)
	}
	return &Mem{host: h, up: up}
}

// Host is the host the transport listens and dials on.
func (t *Mem) Host() *MemHost { return t.host }

// memAddr is the net.Addr of one end of a memory connection.
type memAddr uint64

func (a memAddr) Network() string { return "memory" }
func (a memAddr) String() string  { return "/memory/" + strconv.FormatUint(uint64(a), 10) }

func memMultiaddr(a net.Addr) (ma.Multiaddr, error) {
	m, ok := a.(memAddr)
	if !ok {
		return nil, fmt.Errorf("not a memory address: %v", a)
	}
	return ma.NewMultiaddr(m.String())
}

// parseMemAddr extracts n from exactly /memory/<n>.
func parseMemAddr(addr ma.Multiaddr) (uint64, bool) {
	if len(addr) != 1 || addr[0].Protocol().Code != ma.P_MEMORY {
		return 0, false
	}
	n, err := strconv.ParseUint(addr[0].Value(), 10, 64)
	return n, err == nil
}

// CanDial implements Transport.
func (t *Mem) CanDial(addr ma.Multiaddr) bool {
	_, ok := parseMemAddr(StripP2P(addr))
	return ok
}

// Dial implements Transport.
func (t *Mem) Dial(ctx context.Context, addr ma.Multiaddr, remote peer.ID) (Conn, error) {
	addr = StripP2P(addr)
	to, ok := parseMemAddr(addr)
	if !ok {
		return nil, fmt.Errorf("memory: cannot dial %s", addr)
	}
	return t.up.Dial(ctx, remote, func(ctx context.Context) (net.Conn, Endpoint, error) {
		p, err := t.host.dial(ctx, 0, to)
		if err != nil {
			return nil, Endpoint{}, fmt.Errorf("memory dial %s: %w", addr, err)
		}
		laddr, err := memMultiaddr(p.LocalAddr())
		if err != nil {
			p.Close()
			return nil, Endpoint{}, err
		}
		return p, Endpoint{Transport: "memory", Local: laddr, Remote: addr}, nil
	})
}

// Listen implements Transport; /memory/0 picks a free address.
func (t *Mem) Listen(addr ma.Multiaddr) (Listener, error) {
	raw, err := t.host.listen(addr)
	if err != nil {
		return nil, err
	}
	l, err := t.up.Listen(raw, "memory", memMultiaddr)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return l, nil
}

// memRawListener is the net.Listener side of a memory endpoint.
type memRawListener struct {
	host *MemHost
	port uint64
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *memRawListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memRawListener) Close() error {
	l.once.Do(func() {
		w := l.host.w
		w.mu.Lock()
		if p := w.ports[l.port]; p != nil && p.ln == l {
			delete(w.ports, l.port)
		}
		if i := slices.Index(l.host.listens, l.port); i >= 0 {
			l.host.listens = slices.Delete(l.host.listens, i, i+1)
		}
		w.mu.Unlock()
		close(l.done)
	})
	return nil
}

func (l *memRawListener) Addr() net.Addr { return memAddr(l.port) }
