package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
)

// Stream is a stream whose protocol has been agreed. Its bytes are
// counted per connection and per protocol, and rate limited when the
// limits say so.
type Stream struct {
	transport.Stream
	conn     *Conn
	proto    string
	outbound bool        // opened by us: counted in conn.out until closed
	done     atomic.Bool // Close or Reset seen
}

// newStream wraps a negotiated stream. An outbound one was counted in
// c.out by NewStreamOn when it was opened, so that CloseIfIdle sees it
// while it negotiates.
func (n *Node) newStream(c *Conn, s transport.Stream, proto string, outbound bool) *Stream {
	c.active()
	return &Stream{Stream: s, conn: c, proto: proto, outbound: outbound}
}

// Read reads from the stream.
func (s *Stream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	if n > 0 {
		s.conn.bytesIn.Add(uint64(n))
		node := s.conn.node
		node.protoBytes(s.proto, uint64(n), 0)
		node.throttle(node.rateIn, n)
	}
	return n, err
}

// Write writes to the stream.
func (s *Stream) Write(b []byte) (int, error) {
	node := s.conn.node
	written := 0
	for len(b) > 0 {
		chunk := b
		if node.rateOut != nil {
			chunk = b[:min(len(b), node.rateOut.Burst())]
			node.throttle(node.rateOut, len(chunk))
		}
		n, err := s.Stream.Write(chunk)
		written += n
		s.conn.bytesOut.Add(uint64(n))
		node.protoBytes(s.proto, 0, uint64(n))
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

func (s *Stream) finish() {
	if s.outbound && s.done.CompareAndSwap(false, true) {
		s.conn.out.Add(-1)
		s.conn.active()
	}
}

// Close closes our write side and stops reading.
func (s *Stream) Close() error {
	s.finish()
	return s.Stream.Close()
}

// Reset abandons the stream.
func (s *Stream) Reset() error {
	s.finish()
	return s.Stream.Reset()
}

// Protocol is the protocol ID agreed for the stream.
func (s *Stream) Protocol() string { return s.proto }

// Conn is the connection that carries the stream.
func (s *Stream) Conn() *Conn { return s.conn }

// NewStream opens a stream to id for the first of protos the peer
// supports, connecting first if needed (with the addresses in the
// peerstore). When identify showed that the peer supports one of protos,
// the stream is returned at once and the proposal travels with the first
// write; otherwise (also while identify is still running) the protocols
// are proposed one by one, and an error says when the peer has none.
func (n *Node) NewStream(ctx context.Context, id peer.ID, protos ...string) (*Stream, error) {
	if len(protos) == 0 {
		return nil, errors.New("new stream: no protocol given")
	}
	c, err := n.Connect(ctx, id)
	if err != nil {
		return nil, err
	}
	return n.NewStreamOn(ctx, c, protos...)
}

// ErrConnClosing is wrapped by the error of NewStreamOn when the
// connection is being closed.
var ErrConnClosing = errors.New("connection is closing")

// ErrLimitedConn is wrapped by the error of NewStream when the only
// connection to the peer is limited (relayed) and the context does not
// allow it (AllowLimited).
var ErrLimitedConn = errors.New("connection is limited")

type ctxKey int

const (
	allowLimitedKey ctxKey = iota
	forceDirectKey
	explicitKey
)

// Explicit returns a context under which Connect dials the addresses
// given to it without Config.AddrFilters: they came from the user (a
// command, a bootstrap list), not from the network. Addresses the
// peerstore learned from the network stay filtered.
func Explicit(ctx context.Context) context.Context {
	return context.WithValue(ctx, explicitKey, true)
}

// AllowLimited returns a context under which NewStream and NewStreamOn
// may use a limited (relayed) connection, as go-libp2p's
// network.WithAllowLimitedConn: for protocols whose traffic is small and
// short enough for a relay's limits (hole punching, identify).
func AllowLimited(ctx context.Context) context.Context {
	return context.WithValue(ctx, allowLimitedKey, true)
}

// ForceDirect returns a context under which Connect dials a direct
// connection even when the peer is connected through a limited one (as
// go-libp2p's network.WithForceDirectDial), and skips relayed addresses.
func ForceDirect(ctx context.Context) context.Context {
	return context.WithValue(ctx, forceDirectKey, true)
}

func ctxFlag(ctx context.Context, k ctxKey) bool {
	v, _ := ctx.Value(k).(bool)
	return v
}

// NewStreamOn opens a stream on connection c; see NewStream. A limited
// connection is refused unless ctx allows it (AllowLimited).
func (n *Node) NewStreamOn(ctx context.Context, c *Conn, protos ...string) (*Stream, error) {
	id := c.RemotePeer()
	if c.Limited() && !ctxFlag(ctx, allowLimitedKey) {
		return nil, fmt.Errorf("new stream to %s: %w (use AllowLimited)", id, ErrLimitedConn)
	}
	// There is no waiting for identify (go-libp2p waits): proposing the
	// protocols costs one round trip, no more than identify's answer
	// would, and none of identify's work (record signatures, peerstore
	// updates) lands on the caller's path. Once the peerstore knows the
	// peer's protocols, from this connection's identify or an earlier
	// one, the proposal is optimistic and costs nothing.
	c.out.Add(1) // until the stream is closed, or fails below
	if c.closing.Load() {
		// CloseIfIdle or Close got there first (CloseIfIdle backs off
		// if it sees our count instead).
		c.out.Add(-1)
		return nil, fmt.Errorf("new stream to %s: %w", id, ErrConnClosing)
	}
	s, err := c.tc.OpenStream(ctx)
	if err != nil {
		c.out.Add(-1)
		return nil, fmt.Errorf("new stream to %s: %w", id, err)
	}
	for _, p := range protos {
		if n.store.SupportsProtocol(id, p) {
			return n.newStream(c, transport.LazyStream(s, p), p, true), nil
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.SetDeadline(time.Unix(1, 0)) })
	proto, err := wire.SelectOneOf(s, protos)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		s.Reset()
		c.out.Add(-1)
		return nil, fmt.Errorf("new stream to %s: %w", id, err)
	}
	s.SetDeadline(time.Time{})
	return n.newStream(c, s, proto, true), nil
}
