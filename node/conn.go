package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/mux"
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
	tc          transport.Conn
	node        *Node
	opened      int64        // unix nanoseconds
	streams     atomic.Int32 // inbound streams being served
	negotiating atomic.Int32 // of which still negotiating their protocol
	out         atomic.Int32 // outbound streams not yet closed

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

// CloseIfIdle closes the connection if no stream is open or being opened
// on it, in either direction, and its peer is not protected; it reports
// whether it did. A protocol that dialed a peer for a few requests (a
// DHT lookup, a provide) gives the connection back with it, without
// cutting a stream of another protocol and without waiting for the
// connection manager's grace period.
func (c *Conn) CloseIfIdle() bool {
	if c.node.IsProtected(c.RemotePeer()) || !c.closing.CompareAndSwap(false, true) {
		return false
	}
	// From here the node hands the connection out for no new stream; one
	// being opened is already counted.
	if c.streams.Load() > 0 || c.out.Load() > 0 {
		c.closing.Store(false)
		return false
	}
	c.tc.Close()
	return true
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
	group, perIP := n.ipGroup(tc, inbound)
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
	case perIP && n.perIP[group] >= n.cfg.Limits.MaxInboundConnsPerIP:
		n.mu.Unlock()
		n.hmu.Unlock()
		tc.Close()
		n.counters.connsPerIP.Add(1)
		return nil, &LimitError{Limit: LimitConnsPerIP, Value: int64(n.cfg.Limits.MaxInboundConnsPerIP), Where: "inbound connection from " + group.String()}
	case !inbound && n.outbound >= n.cfg.Limits.MaxOutboundConns:
		n.mu.Unlock()
		n.hmu.Unlock()
		tc.Close()
		return nil, n.outboundRefused(id)
	}
	if perIP {
		n.perIP[group]++
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
	l := &n.cfg.Limits
	if int(c.streams.Add(1)) > l.MaxInboundStreams {
		c.streams.Add(-1)
		n.refuseStream(c, s, &n.counters.streams, LimitStreams, l.MaxInboundStreams)
		return
	}
	// The negotiation cap applies once half of MaxStreams is taken: a
	// burst of streams from an honest peer (bitswap opens many at once)
	// is served as it comes, while silent streams cannot take the rest.
	if int(c.negotiating.Add(1)) > l.MaxNegotiatingStreams && int(n.streams.Load()) >= l.MaxStreams/2 {
		c.negotiating.Add(-1)
		c.streams.Add(-1)
		n.refuseStream(c, s, &n.counters.negotiating, LimitNegotiating, l.MaxNegotiatingStreams)
		return
	}
	if int(n.streams.Add(1)) > l.MaxStreams {
		n.streams.Add(-1)
		c.negotiating.Add(-1)
		c.streams.Add(-1)
		n.refuseStream(c, s, &n.counters.nodeStreams, LimitNodeStreams, l.MaxStreams)
		return
	}
	n.wg.Add(1)
	go n.serveStream(c, s)
}

// refuseStream resets an inbound stream a limit refused, and counts it.
func (n *Node) refuseStream(c *Conn, s transport.Stream, counter *atomic.Uint64, limit string, value int) {
	resetLimit(s)
	counter.Add(1)
	n.log.Info("inbound stream refused", "peer", c.RemotePeer(), "err", &LimitError{
		Limit: limit, Value: int64(value), Where: "inbound stream from " + c.RemotePeer().String()})
}

// resetLimit resets s with go-libp2p's "resource limit exceeded" code
// where the muxer carries one.
func resetLimit(s transport.Stream) {
	if r, ok := s.(interface{ ResetWithError(uint32) error }); ok {
		r.ResetWithError(mux.ResetCodeLimit)
		return
	}
	s.Reset()
}

// serveStream negotiates the protocol of an inbound stream and runs its handler.
func (n *Node) serveStream(c *Conn, s transport.Stream) {
	defer n.wg.Done()
	defer n.streams.Add(-1)
	defer c.streams.Add(-1)
	s.SetDeadline(time.Now().Add(n.cfg.NegotiationTimeout))
	var match func(string) bool // every protocol served
	if c.Limited() {
		match = n.servesOnLimited
	}
	proto, err := wire.Negotiate(s, *n.protos.Load(), match)
	c.negotiating.Add(-1)
	if err != nil {
		s.Reset()
		n.log.Debug("inbound stream negotiation failed", "peer", c.RemotePeer(), "err", err)
		return
	}
	s.SetDeadline(time.Time{})
	h, served := n.serving(proto)
	if h == nil { // removed since negotiation
		s.Reset()
		return
	}
	// Once a protocol has half its cap in use, a connection that already
	// holds a quarter of it in streams of any protocol gets no more of
	// it: a few busy connections cannot take all of a protocol from
	// everyone else.
	max := n.cfg.Limits.MaxStreamsPerProtocol
	if cur := int(served.Add(1)); cur > max || (cur > max/2 && int(c.streams.Load()) > max/4) {
		served.Add(-1)
		n.refuseStream(c, s, &n.counters.protoStreams, LimitProtoStreams, max)
		return
	}
	defer served.Add(-1)
	h(n.newStream(c, s, proto, false))
}

// ipGroup is the group an inbound connection counts in for
// MaxInboundConnsPerIP: its IPv4 address or IPv6 /64. Outbound ones,
// addresses without an IP and loopback (unless Config.LimitLoopback)
// count in none.
func (n *Node) ipGroup(tc transport.Conn, inbound bool) (netip.Prefix, bool) {
	if !inbound {
		return netip.Prefix{}, false
	}
	ip, ok := ma.IP(tc.RemoteMultiaddr())
	if !ok || (ip.IsLoopback() && !n.cfg.LimitLoopback) {
		return netip.Prefix{}, false
	}
	return hostGroup(ip, 64), true
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
	if group, ok := n.ipGroup(c.tc, !c.State().Outbound); ok {
		if n.perIP[group]--; n.perIP[group] <= 0 {
			delete(n.perIP, group)
		}
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
