// Package mux implements yamux (/yamux/1.0.0), the stream multiplexer
// go-libp2p and Kubo run over TCP, interoperating with go-yamux v5.
//
// It is built to make idle connections cheap. A session runs exactly one
// goroutine, its receive loop; there is no send goroutine: writers put
// frames on the connection themselves, one Write call per frame, under a
// write lock. Control frames that the receive loop must send (stream ACKs
// and refusals, ping answers) are queued and flushed by a short-lived
// goroutine, or by the next writer, so the receive loop never blocks on
// the network. Keepalives and deadlines are timers, not goroutines, and
// stream receive buffers are pooled chunks held only while data is unread.
//
// # Deadlock freedom
//
// The receive loop never waits for anything but the connection's Read:
// it takes only short-held locks, never the write lock, and hands every
// frame it must send to the control queue. So each side always drains its
// socket, and so every blocked Write on the other side eventually
// completes (or hits the session's write timeout). Writers hold the write
// lock only for one frame, and all writes carry a connection deadline of
// Config.WriteTimeout, so a peer that stops reading ends the session
// instead of blocking writers forever.
package mux

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ID is the multistream protocol ID of yamux.
const ID = "/yamux/1.0.0"

// InitialWindow is the stream window both sides assume before any update:
// 256 KiB, in each direction.
const InitialWindow = 256 * 1024

// Config sets the limits of one yamux session. The zero value of a field
// means its default.
type Config struct {
	// MaxStreamWindow is the largest receive window of a stream, in bytes:
	// how much a peer may send before we read. Windows start at
	// InitialWindow and double, up to this, when the reader keeps up
	// with the link (go-yamux's auto-tuning) and MaxSessionRecv allows,
	// so a slow reader only ever buffers 256 KiB. Default 1 MiB; never
	// below InitialWindow.
	MaxStreamWindow uint32
	// MaxInboundStreams bounds the streams the peer opened that are open
	// at once, counting those we closed that the peer has not closed yet
	// (see CloseTimeout): beyond it the peer's new streams are reset, and
	// the rest of MaxStreams stays ours to open. Default 0: no bound but
	// MaxStreams. (A uint32 beside MaxStreamWindow, where the Config that
	// every session embeds has room for it.)
	MaxInboundStreams uint32
	// MaxSessionRecv caps the session's receive memory beyond the
	// InitialWindow each stream implicitly grants: the bytes, summed over
	// all streams, by which windows may have grown. A stream reserves
	// each doubling of its window from it, all or nothing (as go-yamux
	// does with its memory manager), and gives its reservation back once
	// it can receive no more data: read side closed, reset, or the peer's
	// FIN reached and its data read. While the budget is used up windows
	// stop growing, and streams go on at the window they have, re-granted
	// as their readers consume: a fast stream is slowed, never stalled.
	// So a session buffers at most
	//
	//	MaxStreams × InitialWindow + MaxSessionRecv
	//
	// bytes of unread data (see MaxUnread), instead of MaxStreams ×
	// MaxStreamWindow; streams both sides closed leave the MaxStreams
	// count at once, but keep any data still unread, and their share of
	// MaxSessionRecv, until the application reads or closes them.
	//
	// Default 4 × MaxStreamWindow: four streams at the full window at
	// once (e.g. 16 MiB for a 4 MiB window). All streams share one
	// connection, whose bandwidth-delay product one full window is meant
	// to cover, so a few bulk streams fill the link; more grown windows
	// would only buffer more. A negative value, or one below the first
	// doubling (min(2 × InitialWindow, MaxStreamWindow) − InitialWindow),
	// keeps every window at InitialWindow.
	MaxSessionRecv int
	// AcceptBacklog is how many inbound streams may wait to be accepted
	// with AcceptStream; beyond it new streams are reset. It does not
	// apply when a stream handler is set. Default 256, as go-yamux.
	AcceptBacklog int
	// MaxStreams bounds the streams open at once on the session, in both
	// directions: inbound streams beyond it are reset, and OpenStream
	// fails. Streams we closed stay counted until the peer closes too.
	// Default 1024.
	MaxStreams int
	// KeepAlive is the interval of keepalive pings; the first is sent at
	// once, to measure the round-trip time that window auto-tuning needs.
	// Default 30 s, as go-yamux; a negative value disables them.
	KeepAlive time.Duration
	// WriteTimeout bounds each write to the connection and the wait for
	// a keepalive answer (or any frame); past it the session is closed.
	// Default 10 s, as go-yamux.
	WriteTimeout time.Duration
	// CloseTimeout is how long a stream we closed for writing waits for
	// the peer's FIN before it is reset: otherwise a peer that never
	// closes keeps it, and its MaxStreams slot, for the session's life.
	// Default 5 minutes, go-yamux's StreamCloseTimeout; a negative value
	// waits for ever.
	CloseTimeout time.Duration
	// Budget, if set, is receive memory shared with other sessions (see
	// Budget). Default: none.
	Budget *Budget
}

func (c Config) withDefaults() Config {
	if c.MaxStreamWindow == 0 {
		c.MaxStreamWindow = 1 << 20
	}
	c.MaxStreamWindow = max(c.MaxStreamWindow, InitialWindow)
	if c.MaxSessionRecv == 0 {
		c.MaxSessionRecv = int(min(4*uint64(c.MaxStreamWindow), math.MaxInt))
	}
	if c.AcceptBacklog <= 0 {
		c.AcceptBacklog = 256
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 1024
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 5 * time.Minute
	}
	return c
}

// MaxUnread is the most unread data, in bytes, a session with this
// configuration buffers for its open streams, defaults applied:
// MaxStreams × InitialWindow + MaxSessionRecv, counting MaxSessionRecv
// only as far as MaxStreams windows can grow (not at all when
// MaxStreamWindow is InitialWindow).
func (c Config) MaxUnread() int64 {
	c = c.withDefaults()
	growth := uint64(max(c.MaxSessionRecv, 0))
	growth = min(growth, uint64(c.MaxStreams)*uint64(c.MaxStreamWindow-InitialWindow))
	return int64(c.MaxStreams)*InitialWindow + int64(growth)
}

var (
	// ErrReset is wrapped by the errors of operations on a stream that
	// was reset, by either side, or whose session ended.
	ErrReset = errors.New("stream reset")
	// ErrProtocol is wrapped by the error that ends a session whose peer
	// broke the yamux protocol; the peer is sent GoAway(protocol error).
	ErrProtocol = errors.New("yamux protocol error")
	// ErrSessionClosed is wrapped by the errors of session operations
	// after the session ended, and by Err.
	ErrSessionClosed = errors.New("yamux session closed")
	// ErrStreamClosed is returned by writes after CloseWrite or Close,
	// and by reads after Close.
	ErrStreamClosed = errors.New("yamux stream closed")
	// ErrKeepAliveTimeout ends a session whose peer sent nothing, not
	// even a ping answer, within WriteTimeout of a keepalive ping.
	ErrKeepAliveTimeout = errors.New("yamux keepalive timeout")
	// ErrRemoteGoAway is returned by OpenStream after the peer sent
	// GoAway(0): it accepts no new streams.
	ErrRemoteGoAway = errors.New("yamux peer refuses new streams (GoAway)")
	// ErrStreamLimit is returned by OpenStream when Config.MaxStreams
	// streams are open.
	ErrStreamLimit = errors.New("yamux stream limit reached")
	// ErrStreamsExhausted is returned by OpenStream when the 32-bit
	// stream ID space is used up; open a new session.
	ErrStreamsExhausted = errors.New("yamux stream IDs exhausted")
)

// StreamError is the error of reads and writes on a reset stream. It
// matches ErrReset with errors.Is, and carries the reset's error code
// (go-libp2p's stream error codes, 0 for a plain reset).
type StreamError struct {
	// Code is the error code of the RST frame.
	Code uint32
	// Remote is true if the peer reset the stream.
	Remote bool
}

func (e *StreamError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	if e.Code == 0 {
		return "yamux: stream reset " + who
	}
	return fmt.Sprintf("yamux: stream reset %s (code %#x)", who, e.Code)
}

// Is makes errors.Is(err, ErrReset) true.
func (e *StreamError) Is(target error) bool { return target == ErrReset }

// GoAwayError ends a session whose peer sent a GoAway frame with a
// non-zero code (GoAway 0 only stops new streams).
type GoAwayError struct {
	// Code is the GoAway error code: 1 protocol error, 2 internal error,
	// or one of go-libp2p's connection codes (0x1000 and up).
	Code uint32
}

func (e *GoAwayError) Error() string {
	switch e.Code {
	case GoAwayProtocolError:
		return "yamux: peer sent GoAway: protocol error"
	case GoAwayInternalError:
		return "yamux: peer sent GoAway: internal error"
	}
	return fmt.Sprintf("yamux: peer sent GoAway (code %#x)", e.Code)
}
