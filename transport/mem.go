package transport

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// MemNetwork is an in-process network for tests and simulations: nodes
// listen on /memory/<n> and dial each other through synchronous pipes. It
// has no global state; nodes that should reach each other share one.
type MemNetwork struct {
	mu        sync.Mutex
	next      uint64
	listeners map[uint64]*memRawListener
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{listeners: make(map[uint64]*memRawListener)}
}

// Mem is a transport on a MemNetwork, with connections upgraded as on TCP.
type Mem struct {
	net *MemNetwork
	up  *Upgrader
}

// NewMem returns a transport on network n.
func NewMem(n *MemNetwork, up *Upgrader) *Mem { return &Mem{net: n, up: up} }

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

// memPort extracts n from exactly /memory/<n>.
func memPort(addr ma.Multiaddr) (uint64, bool) {
	if len(addr) != 1 || addr[0].Protocol().Code != ma.P_MEMORY {
		return 0, false
	}
	n, err := strconv.ParseUint(addr[0].Value(), 10, 64)
	return n, err == nil
}

// CanDial implements Transport.
func (t *Mem) CanDial(addr ma.Multiaddr) bool {
	_, ok := memPort(StripP2P(addr))
	return ok
}

// Dial implements Transport.
func (t *Mem) Dial(ctx context.Context, addr ma.Multiaddr, remote peer.ID) (Conn, error) {
	addr = StripP2P(addr)
	port, ok := memPort(addr)
	if !ok {
		return nil, fmt.Errorf("memory: cannot dial %s", addr)
	}
	return t.up.Dial(ctx, remote, func(ctx context.Context) (net.Conn, Endpoint, error) {
		t.net.mu.Lock()
		l := t.net.listeners[port]
		t.net.next++
		local := memAddr(t.net.next)
		t.net.mu.Unlock()
		if l == nil {
			return nil, Endpoint{}, fmt.Errorf("memory dial %s: connection refused", addr)
		}
		a, b := newPipe()
		server := &memConn{Conn: b, local: memAddr(port), remote: local}
		select {
		case l.ch <- server:
		case <-l.done:
			return nil, Endpoint{}, fmt.Errorf("memory dial %s: connection refused", addr)
		case <-ctx.Done():
			return nil, Endpoint{}, fmt.Errorf("memory dial %s: %w", addr, ctx.Err())
		}
		laddr, _ := memMultiaddr(local)
		client := &memConn{Conn: a, local: local, remote: memAddr(port)}
		return client, Endpoint{Transport: "memory", Local: laddr, Remote: addr}, nil
	})
}

// Listen implements Transport; /memory/0 picks a free address.
func (t *Mem) Listen(addr ma.Multiaddr) (Listener, error) {
	port, ok := memPort(addr)
	if !ok {
		return nil, fmt.Errorf("memory: cannot listen on %s", addr)
	}
	t.net.mu.Lock()
	if port == 0 {
		t.net.next++
		port = t.net.next
	}
	if t.net.listeners[port] != nil {
		t.net.mu.Unlock()
		return nil, fmt.Errorf("memory listen %s: address in use", addr)
	}
	raw := &memRawListener{net: t.net, port: port, ch: make(chan net.Conn), done: make(chan struct{})}
	t.net.listeners[port] = raw
	t.net.mu.Unlock()
	l, err := t.up.Listen(raw, "memory", memMultiaddr)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return l, nil
}

type memConn struct {
	net.Conn
	local, remote memAddr
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

// memRawListener is the net.Listener side of a memory address.
type memRawListener struct {
	net  *MemNetwork
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
		l.net.mu.Lock()
		delete(l.net.listeners, l.port)
		l.net.mu.Unlock()
		close(l.done)
	})
	return nil
}

func (l *memRawListener) Addr() net.Addr { return memAddr(l.port) }
