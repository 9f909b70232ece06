// Package transport defines how connections are made: the Transport seam,
// the secured and muxed Conn every transport produces, the Upgrader that
// turns any raw net.Conn into such a Conn, and the TCP and in-memory
// transports.
package transport

import (
	"context"
	"io"
	"time"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Transport dials and listens on one kind of address.
type Transport interface {
	// CanDial reports whether addr is an address of this transport.
	CanDial(addr ma.Multiaddr) bool
	// Dial connects to addr and authenticates the peer there. If remote is
	// not empty, a different peer fails the dial.
	Dial(ctx context.Context, addr ma.Multiaddr, remote peer.ID) (Conn, error)
	// Listen starts accepting connections on addr.
	Listen(addr ma.Multiaddr) (Listener, error)
}

// Listener yields authenticated, muxed inbound connections.
type Listener interface {
	// Accept waits for the next upgraded connection. Connections whose
	// handshake fails are dropped (and logged) without surfacing here.
	Accept() (Conn, error)
	// Close stops listening and ends handshakes in progress.
	Close() error
	// Multiaddr is the address actually bound (port 0 resolved).
	Multiaddr() ma.Multiaddr
}

// Conn is a secured, muxed connection to one authenticated peer.
type Conn interface {
	// OpenStream opens a new stream to the peer.
	OpenStream(ctx context.Context) (Stream, error)
	// AcceptStream waits for the next stream the peer opens.
	AcceptStream() (Stream, error)
	// Close ends the connection and all its streams.
	Close() error
	// Done is closed when the connection has ended, from either side.
	Done() <-chan struct{}
	// LocalPeer is our peer ID.
	LocalPeer() peer.ID
	// RemotePeer is the authenticated peer ID of the other side.
	RemotePeer() peer.ID
	// RemotePublicKey is the other side's identity key.
	RemotePublicKey() peer.PublicKey
	// LocalMultiaddr is our end's address.
	LocalMultiaddr() ma.Multiaddr
	// RemoteMultiaddr is the other end's address as we see it.
	RemoteMultiaddr() ma.Multiaddr
	// State describes how the connection was set up.
	State() ConnState
}

// DialClass orders a peer's addresses for dialing: each class starts a
// head start after the one before it (happy eyeballs).
type DialClass int

// Dial classes.
const (
	// DialFirst is dialed at once: QUIC, which connects in one round trip
	// fewer than TCP.
	DialFirst DialClass = iota
	// DialDirect is dialed after a head start: TCP and other direct
	// transports, and transports that do not say.
	DialDirect
	// DialRelay is dialed last: relayed addresses, which a peer offers
	// for when it cannot be reached directly.
	DialRelay
)

// DialClasser is an optional capability of a Transport: the dial class
// of an address it handles (DialDirect for transports without it).
type DialClasser interface {
	DialClass(addr ma.Multiaddr) DialClass
}

// StreamDispatcher is an optional capability of a Conn whose muxer can
// hand inbound streams to a callback instead of AcceptStream, so that
// serving a connection needs no goroutine blocked in AcceptStream (yamux
// connections implement it; QUIC ones do not).
type StreamDispatcher interface {
	// ServeStreams calls handle with each inbound stream, from the
	// connection's receive goroutine: handle must not block. Once the
	// connection has ended (Done is closed), ended is called once, after
	// the last call of handle.
	ServeStreams(handle func(Stream), ended func())
}

// ConnState describes how a connection was set up.
type ConnState struct {
	// Transport names the transport, e.g. "tcp" or "memory".
	Transport string
	// Security is the security protocol ID, e.g. "/noise".
	Security string
	// Muxer is the stream muxer ID, e.g. "/yamux/1.0.0".
	Muxer string
	// EarlyMuxer is true when the muxer was agreed inside the security
	// handshake, saving a multistream round trip.
	EarlyMuxer bool
	// Outbound is true when we dialed.
	Outbound bool
	// Limit is set on a limited connection (relayed), which the node
	// opens streams on only when asked to; nil on any other.
	Limit *ConnLimit
}

// ConnLimit is what limits a limited connection, as a relayed one is
// (circuit relay v2: the relay ends it after a time or an amount of
// data).
type ConnLimit struct {
	// Duration and Data are the relay's limits; 0 when it sets none.
	Duration time.Duration
	Data     int64
}

// PacketSender is an optional capability of a UDP-based Transport: a
// raw datagram sent from the socket that a dial to the same address
// would use, so that a NAT in front of us opens the mapping a peer will
// reach us through (hole punching sends such packets).
type PacketSender interface {
	SendPacket(to ma.Multiaddr, b []byte) error
}

// Stream is one bidirectional stream of a Conn.
type Stream interface {
	io.ReadWriter
	// Close closes our write side and stops reading (go-libp2p semantics).
	Close() error
	// CloseWrite half-closes: the peer reads EOF, we may still read.
	CloseWrite() error
	// Reset abandons the stream in both directions.
	Reset() error
	// SetDeadline sets the read and write deadlines.
	SetDeadline(t time.Time) error
	// SetReadDeadline sets the read deadline.
	SetReadDeadline(t time.Time) error
	// SetWriteDeadline sets the write deadline.
	SetWriteDeadline(t time.Time) error
}
