// Package mux runs yamux (/yamux/1.0.0) over a secured connection, through
// hashicorp/yamux, configured to interoperate with go-libp2p's go-yamux.
package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/hashicorp/yamux"
)

// ID is the multistream protocol ID of yamux.
const ID = "/yamux/1.0.0"

// Config sets the limits of one yamux session. The zero value of a field
// means its default.
type Config struct {
	// MaxStreamWindow is the receive window of a stream, in bytes: how much a
	// peer may send before we read. Default 1 MiB; never below yamux's
	// initial window of 256 KiB, which both sides assume from the start.
	MaxStreamWindow uint32
	// AcceptBacklog is how many inbound streams may wait to be accepted;
	// beyond it new streams are reset. Default 256, as go-yamux.
	AcceptBacklog int
	// KeepAlive is the interval of keepalive pings. Default 30 s, as
	// go-yamux; a negative value disables them.
	KeepAlive time.Duration
	// WriteTimeout bounds a single frame write and the wait for a keepalive
	// answer. Default 10 s, as go-yamux.
	WriteTimeout time.Duration
}

// InitialWindow is the stream window both sides assume before any update.
const InitialWindow = 256 * 1024

func (c Config) yamux() *yamux.Config {
	y := yamux.DefaultConfig()
	y.MaxStreamWindowSize = 1 << 20
	if c.MaxStreamWindow != 0 {
		y.MaxStreamWindowSize = max(c.MaxStreamWindow, InitialWindow)
	}
	if c.AcceptBacklog > 0 {
		y.AcceptBacklog = c.AcceptBacklog
	}
	switch {
	case c.KeepAlive < 0:
		y.EnableKeepAlive = false
	case c.KeepAlive > 0:
		y.KeepAliveInterval = c.KeepAlive
	}
	if c.WriteTimeout > 0 {
		y.ConnectionWriteTimeout = c.WriteTimeout
	}
	// A stream we closed whose peer never closes its side is freed after
	// this long; go-libp2p peers close promptly.
	y.StreamCloseTimeout = time.Minute
	y.StreamOpenTimeout = 0
	y.LogOutput = nil
	y.Logger = log.New(io.Discard, "", 0)
	return y
}

// Session is a yamux session over one secured connection.
type Session struct {
	y *yamux.Session
}

// Client starts a session as the dialing side (odd stream IDs).
func Client(conn net.Conn, cfg Config) (*Session, error) {
	y, err := yamux.Client(conn, cfg.yamux())
	if err != nil {
		return nil, fmt.Errorf("yamux client: %w", err)
	}
	return &Session{y: y}, nil
}

// Server starts a session as the listening side (even stream IDs).
func Server(conn net.Conn, cfg Config) (*Session, error) {
	y, err := yamux.Server(conn, cfg.yamux())
	if err != nil {
		return nil, fmt.Errorf("yamux server: %w", err)
	}
	return &Session{y: y}, nil
}

// OpenStream opens a new stream. Yamux opens without a round trip, so
// ctx only matters if the session is shutting down.
func (s *Session) OpenStream(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := s.y.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("yamux open stream: %w", err)
	}
	return &Stream{s: st}, nil
}

// AcceptStream waits for the next inbound stream.
func (s *Session) AcceptStream() (*Stream, error) {
	st, err := s.y.AcceptStream()
	if err != nil {
		return nil, fmt.Errorf("yamux accept stream: %w", err)
	}
	return &Stream{s: st}, nil
}

// Close ends the session and the underlying connection.
func (s *Session) Close() error { return s.y.Close() }

// IsClosed reports whether the session has ended.
func (s *Session) IsClosed() bool { return s.y.IsClosed() }

// Done is closed when the session ends.
func (s *Session) Done() <-chan struct{} { return s.y.CloseChan() }

// NumStreams is the number of open streams.
func (s *Session) NumStreams() int { return s.y.NumStreams() }

// Ping sends a yamux ping and returns the round-trip time.
func (s *Session) Ping() (time.Duration, error) { return s.y.Ping() }

// Stream is one yamux stream.
type Stream struct {
	s *yamux.Stream
}

// Read reads stream data. A reset stream returns an error wrapping
// ErrReset.
func (s *Stream) Read(b []byte) (int, error) {
	n, err := s.s.Read(b)
	return n, mapErr(err)
}

// Write writes stream data, blocking while the peer's window is full.
func (s *Stream) Write(b []byte) (int, error) {
	n, err := s.s.Write(b)
	return n, mapErr(err)
}

// CloseWrite half-closes the stream (FIN): the peer reads EOF, and we can
// still read what it sends.
func (s *Stream) CloseWrite() error { return s.s.Close() }

// Close closes our write side and stops reading, as go-libp2p's Close
// does. Unread data is dropped when the peer closes or after a minute.
func (s *Stream) Close() error {
	err := s.s.Close()
	s.s.Shrink()
	return err
}

// Reset abandons the stream. hashicorp/yamux exposes no RST, so the peer
// sees a FIN; local calls fail at once.
func (s *Stream) Reset() error {
	err := s.s.Close()
	_ = s.s.SetDeadline(time.Unix(1, 0))
	s.s.Shrink()
	return err
}

// SetDeadline sets read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error { return s.s.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.s.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// ErrReset is wrapped by the error of a read or write on a stream the peer reset.
var ErrReset = errors.New("stream reset")

func mapErr(err error) error {
	if errors.Is(err, yamux.ErrConnectionReset) {
		return fmt.Errorf("yamux: %w", ErrReset)
	}
	return err
}
