package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Conn is an open connection of the node to one peer. Streams on it are
// opened with Node.NewStreamOn and served by the node's handlers: the
// transport connection's own OpenStream and AcceptStream stay inside the
// node, so that no stream skips negotiation, byte counting or limits.
type Conn struct {
	tc      transport.Conn
	node    *Node
	opened  int64        // unix nanoseconds
	streams atomic.Int32 // inbound streams being served
	out     atomic.Int32 // outbound streams not yet closed

	// For the connection manager and bandwidth accounting.
	lastActive        atomic.Int64 // unix nanoseconds of the last stream opened
	bytesIn, bytesOut atomic.Uint64

	closing atomic.Bool // Close was called; Done may follow a little later

	identified chan struct{} // closed when identify has finished, either way
	idErr      error         // why identify failed; read after identified is closed

	pushes atomic.Uint64 // identify push rate: see allowPush

	// What the peer said it sees us as, counted under the observer
	// group of its address; guarded by node.addrs.mu. In the connection
	// rather than in a map of the address book: a map entry per idle
	// connection costs several times the pointer.
	observed *observedCount

	// Lifecycle, guarded by node.hmu: the hooks have been told of the
	// connection's opening, of its identify, and of its closing.
	told, idTold, goneTold bool
}

// Done is closed when the connection has ended, from either side.
func (c *Conn) Done() <-chan struct{} { return c.tc.Done() }

// LocalPeer is our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.tc.LocalPeer() }

// RemotePeer is the authenticated peer ID of the other side.
func (c *Conn) RemotePeer() peer.ID { return c.tc.RemotePeer() }

// RemotePublicKey is the other side's identity key.
func (c *Conn) RemotePublicKey() peer.PublicKey { return c.tc.RemotePublicKey() }

// LocalMultiaddr is our end's address.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.tc.LocalMultiaddr() }

// RemoteMultiaddr is the other end's address as we see it.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.tc.RemoteMultiaddr() }

// State describes how the connection was set up.
func (c *Conn) State() transport.ConnState { return c.tc.State() }

// Bandwidth returns the stream bytes read from and written to this
// connection (protocol negotiation included, transport overhead not).
func (c *Conn) Bandwidth() (in, out uint64) { return c.bytesIn.Load(), c.bytesOut.Load() }

// active marks the connection as used now.
func (c *Conn) active() { c.lastActive.Store(time.Now().UnixNano()) }

// Close closes the connection. From the moment it is called the node no
// longer hands the connection out for new streams.
func (c *Conn) Close() error {
	c.closing.Store(true)
	return c.tc.Close()
}

// Opened is when the connection was established.
func (c *Conn) Opened() time.Time { return time.Unix(0, c.opened) }

// Identified is closed once identify on this connection has finished.
func (c *Conn) Identified() <-chan struct{} { return c.identified }

// IdentifyErr is why identify failed, or nil; valid once Identified is closed.
func (c *Conn) IdentifyErr() error {
	select {
	case <-c.identified:
		return c.idErr
	default:
		return nil
	}
}

// addConn registers an upgraded connection and starts serving it.
func (n *Node) addConn(tc transport.Conn) (*Conn, error) {
	now := time.Now().UnixNano()
	c := &Conn{tc: tc, node: n, opened: now, identified: make(chan struct{})}
	c.lastActive.Store(now)
	inbound := !tc.State().Outbound
	id := tc.RemotePeer()
	n.hmu.Lock()
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		n.hmu.Unlock()
		tc.Close()
		return nil, ErrClosed
	case inbound && n.inbound >= n.cfg.Limits.MaxInboundConns:
		n.mu.Unlock()
		n.hmu.Unlock()
		tc.Close()
		n.counters.inboundConns.Add(1)
		return nil, &LimitError{Limit: LimitInboundConns, Value: int64(n.cfg.Limits.MaxInboundConns), Where: "inbound connection from " + id.String()}
	case !inbound && n.outbound >= n.cfg.Limits.MaxOutboundConns:
		n.mu.Unlock()
		n.hmu.Unlock()
		tc.Close()
		n.counters.outboundConns.Add(1)
		return nil, &LimitError{Limit: LimitOutboundConns, Value: int64(n.cfg.Limits.MaxOutboundConns), Where: "outbound connection to " + id.String()}
	}
	if inbound {
		n.inbound++
	} else {
		n.outbound++
	}
	n.conns[id] = append(n.conns[id], c)
	first := len(n.conns[id]) == 1
	n.wg.Add(2)
	n.mu.Unlock()

	n.store.SetConnected(id, true)
	if err := n.store.SetPublicKey(id, tc.RemotePublicKey()); errors.Is(err, peer.ErrStoreFull) {
		n.peerstoreFull(id)
	} else if err != nil {
		n.log.Warn("peerstore refused key", "peer", id, "err", err)
	}
	n.tellOpened(c, first)
	n.hmu.Unlock()
	n.emit(Event{Kind: EventConnected, Peer: id, Conn: c})
	n.maybeTrim()
	// After hmu is released: a connection that has already ended is
	// removed at once, on this goroutine.
	if !n.dispatchStreams(c) {
		go n.runConn(c)
	}
	go n.identifyConn(c)
	return c, nil
}

// dispatchStreams serves c's inbound streams from its muxer's receive
// goroutine when the transport supports it, so that an idle connection
// costs no goroutine of the node's own; the connection's share of n.wg is
// released when it ends, after the last stream was dispatched. It reports
// false if runConn's accept loop is needed instead (QUIC).
func (n *Node) dispatchStreams(c *Conn) bool {
	d, ok := c.tc.(transport.StreamDispatcher)
	if !ok {
		return false
	}
	d.ServeStreams(func(s transport.Stream) { n.acceptStream(c, s) }, func() {
		c.Close()
		n.removeConn(c)
		n.wg.Done()
	})
	return true
}

// runConn accepts the peer's streams until the connection ends, then
// unregisters it.
func (n *Node) runConn(c *Conn) {
	defer n.wg.Done()
	for {
		s, err := c.tc.AcceptStream()
		if err != nil {
			break
		}
		n.acceptStream(c, s)
	}
	c.Close()
	n.removeConn(c)
}

// acceptStream starts serving an inbound stream, or resets it beyond the
// inbound stream limit. It must not block: it may run on the muxer's
// receive goroutine.
func (n *Node) acceptStream(c *Conn, s transport.Stream) {
	if int(c.streams.Add(1)) > n.cfg.Limits.MaxInboundStreams {
		c.streams.Add(-1)
		s.Reset()
		n.counters.streams.Add(1)
		n.log.Info("inbound stream refused", "peer", c.RemotePeer(), "err", &LimitError{
			Limit: LimitStreams, Value: int64(n.cfg.Limits.MaxInboundStreams), Where: "inbound stream from " + c.RemotePeer().String()})
		return
	}
	n.wg.Add(1)
	go n.serveStream(c, s)
}

// serveStream negotiates the protocol of an inbound stream and runs its handler.
func (n *Node) serveStream(c *Conn, s transport.Stream) {
	defer n.wg.Done()
	defer c.streams.Add(-1)
	s.SetDeadline(time.Now().Add(n.cfg.NegotiationTimeout))
	var match func(string) bool // every protocol served
	if c.Limited() {
		match = n.servesOnLimited
	}
	proto, err := wire.Negotiate(s, *n.protos.Load(), match)
	if err != nil {
		s.Reset()
		n.log.Debug("inbound stream negotiation failed", "peer", c.RemotePeer(), "err", err)
		return
	}
	s.SetDeadline(time.Time{})
	h := n.handler(proto)
	if h == nil { // removed since negotiation
		s.Reset()
		return
	}
	h(n.newStream(c, s, proto, false))
}

func (n *Node) removeConn(c *Conn) {
	id := c.RemotePeer()
	n.hmu.Lock()
	n.mu.Lock()
	cs := n.conns[id]
	i := slices.Index(cs, c)
	if i < 0 {
		n.mu.Unlock()
		n.hmu.Unlock()
		return
	}
	cs = slices.Delete(cs, i, i+1)
	if len(cs) == 0 {
		delete(n.conns, id)
	} else {
		n.conns[id] = cs
	}
	if c.State().Outbound {
		n.outbound--
	} else {
		n.inbound--
	}
	last := len(cs) == 0
	n.mu.Unlock()
	if last {
		n.store.SetConnected(id, false)
	}
	n.tellClosed(c, last)
	observed := n.forget(c)
	n.hmu.Unlock()
	if observed {
		n.addrsChanged()
	}
	n.emit(Event{Kind: EventDisconnected, Peer: id, Conn: c})
}

// connTo returns the connection to use for new streams to id, or nil:
// the oldest open direct one, else the oldest open limited one.
func (n *Node) connTo(id peer.ID) *Conn {
	if c := n.openConn(id, false); c != nil {
		return c
	}
	return n.openConn(id, true)
}

// hasDirect reports whether id has an open connection that is not limited.
func (n *Node) hasDirect(id peer.ID) bool { return n.openConn(id, false) != nil }

// openConn returns the oldest open connection to id that is limited or
// not, or nil.
func (n *Node) openConn(id peer.ID, limited bool) *Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns[id] {
		if c.closing.Load() || c.Limited() != limited {
			continue
		}
		select {
		case <-c.Done():
		default:
			return c
		}
	}
	return nil
}

// Limited reports whether the connection is limited (relayed): streams
// go on it only when asked for (AllowLimited) or served by a handler
// registered with SetLimitedHandler.
func (c *Conn) Limited() bool { return c.tc.State().Limit != nil }

// UpgradeConn secures and muxes an established raw connection, in the
// role given (initiator: the multistream and security dialer, as DCUtR
// assigns it after a simultaneous open), checks that the peer is remote,
// and adds it as one of the node's connections. On failure raw is
// closed and nothing is left behind.
func (n *Node) UpgradeConn(ctx context.Context, raw net.Conn, remote peer.ID, initiator bool) (*Conn, error) {
	local, lerr := ma.FromNetAddr(raw.LocalAddr())
	rem, rerr := ma.FromNetAddr(raw.RemoteAddr())
	if err := errors.Join(lerr, rerr); err != nil {
		raw.Close()
		return nil, fmt.Errorf("upgrade connection: %w", err)
	}
	ep := transport.Endpoint{Transport: raw.LocalAddr().Network(), Local: local, Remote: rem}
	var tc transport.Conn
	var err error
	if initiator {
		tc, err = n.up.UpgradeOutbound(ctx, raw, remote, ep)
	} else {
		tc, err = n.up.UpgradeInbound(ctx, raw, ep)
		if err == nil && tc.RemotePeer() != remote {
			tc.Close()
			err = fmt.Errorf("upgrade connection: peer is %s, want %s", tc.RemotePeer(), remote)
		}
	}
	if err != nil {
		return nil, err
	}
	return n.addConn(tc)
}
