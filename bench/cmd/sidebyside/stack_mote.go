//go:build !libp2ponly && !quicgoonly

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"

	"github.com/mote-p2p/mote/bench/internal/benchproto"
)

func init() { register(stackMote, moteStack{}) }

// moteStack runs mote nodes. TCP nodes leave QUIC out (DisableQUIC); the
// QUIC listener listens on QUIC only.
type moteStack struct {
	classic bool // node.Config.ClassicKeyExchange (the -classic flag)
}

// moteTransport is what ConnState.Transport says for each transport.
var moteTransport = map[string]string{"tcp": "tcp", "quic": "quic-v1"}

func (s moteStack) config(tr string) node.Config {
	return node.Config{DisableQUIC: tr == "tcp", ClassicKeyExchange: s.classic}
}

// withClassic is the stack with X25519-only key agreement in TLS.
func (s moteStack) withClassic() stack {
	s.classic = true
	return s
}

func (s moteStack) listen(tr, preset string) (server, error) {
	addr, ok := listenAddrs[tr]
	if !ok {
		return nil, fmt.Errorf("unknown transport %q", tr)
	}
	cfg := s.config(tr)
	cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast(addr)}
	// Lift the limits that would cap or trim thousands of connections (as
	// the go-libp2p listener lifts its resource and connection managers').
	const lots = 1 << 20
	cfg.Limits = node.Limits{MaxInboundConns: lots, MaxPeers: lots, ConnLowWater: lots, ConnHighWater: lots,
		MaxStreams: lots, MaxStreamsPerProtocol: lots}
	if preset != "" {
		l, err := node.Preset(preset)
		if err != nil {
			return nil, err
		}
		// The preset's limits but for the connection counts, and its
		// memory limit and GOGC applied as the daemon does.
		l.MaxInboundConns, l.MaxPeers, l.ConnLowWater, l.ConnHighWater = lots, lots, lots, lots
		l.MaxStreams, l.MaxStreamsPerProtocol = lots, lots
		cfg.Limits = l
		if l.MemoryLimit > 0 {
			debug.SetMemoryLimit(l.MemoryLimit)
		}
		if l.GCPercent > 0 {
			debug.SetGCPercent(l.GCPercent)
		}
	}
	n, err := node.New(cfg)
	if err != nil {
		return nil, err
	}
	if len(n.Addrs()) != 1 {
		n.Close()
		return nil, fmt.Errorf("mote listener addresses %v: want one", n.Addrs())
	}
	srv := &moteServer{n: n, sub: n.Subscribe(4096), done: make(chan struct{})}
	go srv.count()
	n.SetHandler(benchproto.Echo, func(st *node.Stream) { benchproto.ServeEcho(st) })
	n.SetHandler(benchproto.Sink, func(st *node.Stream) { benchproto.ServeSink(st) })
	n.SetHandler(benchproto.Hold, func(st *node.Stream) { benchproto.ServeHold(st, st.Conn().Identified(), &srv.nHeld) })
	return srv, nil
}

type moteServer struct {
	n      *node.Node
	sub    *node.Subscription
	done   chan struct{}
	nHeld  atomic.Int64
	nAccpt atomic.Uint64
	warned atomic.Bool
}

// count counts inbound connections from the node's events.
func (s *moteServer) count() {
	defer close(s.done)
	for e := range s.sub.C {
		if e.Kind == node.EventConnected && !e.Conn.State().Outbound {
			s.nAccpt.Add(1)
		}
	}
}

func (s *moteServer) id() string   { return s.n.ID().String() }
func (s *moteServer) addr() string { return s.n.Addrs()[0].String() }
func (s *moteServer) conns() int   { return len(s.n.Conns("")) }
func (s *moteServer) held() int64  { return s.nHeld.Load() }

// accepted is the number of inbound connections seen in the node's
// events. Events that find the subscription full are dropped by the node;
// then the count is low, which is reported on standard error.
func (s *moteServer) accepted() uint64 {
	if d := s.sub.Dropped(); d > 0 && s.warned.CompareAndSwap(false, true) {
		fmt.Fprintf(os.Stderr, "sidebyside: mote listener: %d events dropped; the accepted count is low\n", d)
	}
	return s.nAccpt.Load()
}

func (s *moteServer) close() {
	s.n.Close()
	<-s.done
}

func (s moteStack) newPeer(tr string) (client, error) {
	if _, ok := listenAddrs[tr]; !ok {
		return nil, fmt.Errorf("unknown transport %q", tr)
	}
	n, err := node.New(s.config(tr))
	if err != nil {
		return nil, err
	}
	return &moteClient{n: n, tr: tr}, nil
}

type moteClient struct {
	n  *node.Node
	tr string
	c  *node.Conn
}

func (c *moteClient) connect(ctx context.Context, id, addr string, identified bool) error {
	pid, err := peer.Decode(id)
	if err != nil {
		return err
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return err
	}
	conn, err := c.n.Connect(ctx, pid, a)
	if err != nil {
		return err
	}
	if got := conn.State().Transport; got != moteTransport[c.tr] {
		conn.Close()
		return fmt.Errorf("connection is over %s, want %s", got, moteTransport[c.tr])
	}
	c.c = conn
	if !identified {
		return nil
	}
	select {
	case <-conn.Identified():
	case <-ctx.Done():
		return fmt.Errorf("identify: %w", ctx.Err())
	}
	return conn.IdentifyErr()
}

func (c *moteClient) open(ctx context.Context, proto string) (stream, error) {
	if c.c == nil {
		return nil, errors.New("not connected")
	}
	return c.n.NewStreamOn(ctx, c.c, proto)
}

// disconnect closes the connection and waits until it has ended, as
// go-libp2p's ClosePeer does, so that the next connect dials afresh
// rather than finding the connection still closing.
func (c *moteClient) disconnect() error {
	if c.c == nil {
		return nil
	}
	err := c.c.Close()
	select {
	case <-c.c.Done():
	case <-time.After(10 * time.Second):
		err = errors.Join(err, errors.New("connection not done 10 s after Close"))
	}
	c.c = nil
	return err
}

func (c *moteClient) close() error { return c.n.Close() }
