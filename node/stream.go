package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
)

// Stream is a stream whose protocol has been agreed.
type Stream struct {
	transport.Stream
	conn  *Conn
	proto string
}

// Protocol is the protocol ID agreed for the stream.
func (s *Stream) Protocol() string { return s.proto }

// Conn is the connection that carries the stream.
func (s *Stream) Conn() *Conn { return s.conn }

// NewStream opens a stream to id for the first of protos the peer
// supports, connecting first if needed (with the addresses in the
// peerstore). When identify showed that the peer supports one of protos,
// the stream is returned at once and the proposal travels with the first
// write; otherwise the protocols are proposed one by one.
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

// NewStreamOn opens a stream on connection c; see NewStream.
func (n *Node) NewStreamOn(ctx context.Context, c *Conn, protos ...string) (*Stream, error) {
	id := c.RemotePeer()
	// Identify tells which protocols the peer has, which lets the common
	// case skip a round trip; go-libp2p waits the same way.
	select {
	case <-c.identified:
	case <-c.Done():
		return nil, fmt.Errorf("new stream to %s: connection closed", id)
	case <-ctx.Done():
		return nil, fmt.Errorf("new stream to %s: waiting for identify: %w", id, ctx.Err())
	}
	s, err := c.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("new stream to %s: %w", id, err)
	}
	for _, p := range protos {
		if n.store.SupportsProtocol(id, p) {
			return &Stream{Stream: transport.LazyStream(s, p), conn: c, proto: p}, nil
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
		return nil, fmt.Errorf("new stream to %s: %w", id, err)
	}
	s.SetDeadline(time.Time{})
	return &Stream{Stream: s, conn: c, proto: proto}, nil
}
