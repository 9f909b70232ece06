package quic

import (
	"context"
	"errors"
	"fmt"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// conn is one authenticated QUIC connection. It adds no goroutine to the
// two quic-go runs per connection.
type conn struct {
	qc        *quicgo.Conn
	t         *Transport
	s         *socket
	remote    peer.ID
	remoteKey peer.PublicKey
	laddr     ma.Multiaddr
	raddr     ma.Multiaddr
	outbound  bool
}

var _ transport.Conn = (*conn)(nil)

// ended runs once the QUIC connection is over, from either side.
func (c *conn) ended() {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	c.t.release(c.s)
}

// OpenStream opens a bidirectional stream, waiting while the peer's limit
// of concurrent streams is reached.
func (c *conn) OpenStream(ctx context.Context) (transport.Stream, error) {
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return (*stream)(s), nil
}

// AcceptStream waits for the next stream the peer opens.
func (c *conn) AcceptStream() (transport.Stream, error) {
	s, err := c.qc.AcceptStream(context.Background())
	if err != nil {
		return nil, err
	}
	return (*stream)(s), nil
}

// Close closes the connection with application error code 0 and waits
// until the CONNECTION_CLOSE has been queued.
func (c *conn) Close() error {
	return c.qc.CloseWithError(0, "")
}

// Done is closed when the connection has ended.
func (c *conn) Done() <-chan struct{} { return c.qc.Context().Done() }

func (c *conn) LocalPeer() peer.ID              { return c.t.local }
func (c *conn) RemotePeer() peer.ID             { return c.remote }
func (c *conn) RemotePublicKey() peer.PublicKey { return c.remoteKey }
func (c *conn) LocalMultiaddr() ma.Multiaddr    { return c.laddr }
func (c *conn) RemoteMultiaddr() ma.Multiaddr   { return c.raddr }

// State reports quic-v1 with TLS and native streams, all agreed in one
// handshake.
func (c *conn) State() transport.ConnState {
	return transport.ConnState{
		Transport: Name,
		Security:  SecurityID,
		Muxer:     MuxerName,
		Outbound:  c.outbound,
	}
}

// stream is a quic-go stream with go-libp2p's close semantics. Being the
// same struct type, it wraps without allocating.
type stream quicgo.Stream

var _ transport.Stream = (*stream)(nil)

func (s *stream) q() *quicgo.Stream { return (*quicgo.Stream)(s) }

// Read reads; a stream the peer reset fails with an error wrapping
// mux.ErrReset and the *quicgo.StreamError.
func (s *stream) Read(p []byte) (int, error) {
	n, err := s.q().Read(p)
	return n, mapErr(err)
}

// Write writes; after the peer reset the stream or stopped reading (as a
// go-libp2p peer's Close does) it fails with an error wrapping mux.ErrReset.
func (s *stream) Write(p []byte) (int, error) {
	n, err := s.q().Write(p)
	return n, mapErr(err)
}

// Close sends FIN and stops reading (STOP_SENDING, code 0).
func (s *stream) Close() error {
	s.q().CancelRead(0)
	return s.q().Close()
}

// CloseWrite sends FIN; reading goes on.
func (s *stream) CloseWrite() error { return s.q().Close() }

// Reset abandons both directions: RESET_STREAM and STOP_SENDING, code 0.
func (s *stream) Reset() error {
	s.q().CancelWrite(0)
	s.q().CancelRead(0)
	return nil
}

func (s *stream) SetDeadline(t time.Time) error      { return s.q().SetDeadline(t) }
func (s *stream) SetReadDeadline(t time.Time) error  { return s.q().SetReadDeadline(t) }
func (s *stream) SetWriteDeadline(t time.Time) error { return s.q().SetWriteDeadline(t) }

// mapErr makes stream resets recognisable as mux.ErrReset, as on yamux.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if se := (*quicgo.StreamError)(nil); errors.As(err, &se) {
		return fmt.Errorf("quic: %w: %w", mux.ErrReset, err)
	}
	return err
}
