package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
	"github.com/mote-p2p/mote/secure/noise"
	"github.com/mote-p2p/mote/wire"
)

// UpgraderConfig configures an Upgrader. Zero fields take their defaults.
type UpgraderConfig struct {
	// Key is our identity key. Required.
	Key peer.PrivateKey
	// Mux sets yamux windows and limits.
	Mux mux.Config
	// HandshakeTimeout bounds an inbound upgrade (multistream, security,
	// muxer). Default 15 s, as go-libp2p.
	HandshakeTimeout time.Duration
	// MaxInboundHandshakes bounds concurrent inbound handshakes per
	// listener; further connections wait in the kernel's backlog.
	// Default 64.
	MaxInboundHandshakes int
	// Logger receives the reasons connections were refused. Default: none.
	Logger *slog.Logger
}

// Upgrader turns raw connections into secured, muxed Conns: multistream
// picks Noise, Noise authenticates the peer and agrees on yamux in its
// handshake, and yamux carries the streams. A transport of any kind needs
// only to produce net.Conns and hand them to an Upgrader.
type Upgrader struct {
	cfg   UpgraderConfig
	noise *noise.Transport
	local peer.ID
	log   *slog.Logger
}

// NewUpgrader checks cfg and prepares the security transport.
func NewUpgrader(cfg UpgraderConfig) (*Upgrader, error) {
	if cfg.Key == nil {
		return nil, errors.New("upgrader: no identity key")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 15 * time.Second
	}
	if cfg.MaxInboundHandshakes <= 0 {
		cfg.MaxInboundHandshakes = 64
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nt, err := noise.New(noise.Config{Key: cfg.Key, Muxers: []string{mux.ID}})
	if err != nil {
		return nil, fmt.Errorf("upgrader: %w", err)
	}
	return &Upgrader{cfg: cfg, noise: nt, local: peer.IDFromPublicKey(cfg.Key.Public()), log: log}, nil
}

// LocalPeer is the peer ID of the upgrader's key.
func (u *Upgrader) LocalPeer() peer.ID { return u.local }

// Endpoint describes the raw connection being upgraded.
type Endpoint struct {
	// Transport names the transport in ConnState, e.g. "tcp".
	Transport string
	// Local and Remote are the multiaddrs of the two ends.
	Local, Remote ma.Multiaddr
}

// UpgradeOutbound secures and muxes a connection we dialed. If remote is
// not empty, any other peer fails the upgrade with a
// *secure.PeerMismatchError. On error raw is closed.
func (u *Upgrader) UpgradeOutbound(ctx context.Context, raw net.Conn, remote peer.ID, ep Endpoint) (Conn, error) {
	c, err := u.upgrade(ctx, raw, true, remote, ep)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("upgrade outbound connection to %s: %w", ep.Remote, err)
	}
	return c, nil
}

// UpgradeInbound secures and muxes a connection we accepted, within the
// handshake timeout. On error raw is closed.
func (u *Upgrader) UpgradeInbound(ctx context.Context, raw net.Conn, ep Endpoint) (Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, u.cfg.HandshakeTimeout)
	defer cancel()
	c, err := u.upgrade(ctx, raw, false, "", ep)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("upgrade inbound connection from %s: %w", ep.Remote, err)
	}
	return c, nil
}

func (u *Upgrader) upgrade(ctx context.Context, raw net.Conn, outbound bool, remote peer.ID, ep Endpoint) (*conn, error) {
	// Multistream runs on the raw socket before the handshake starts, so
	// the same deadline has to cover it.
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var sc *noise.Conn
	var err error
	if outbound {
		// Optimistic select: the proposal travels with the first
		// handshake message, saving a round trip. A peer without Noise
		// could not talk to us anyway.
		sc, err = u.noise.SecureOutbound(ctx, newLazyConn(raw, noise.ID), remote)
	} else {
		if _, err = wire.Negotiate(raw, []string{noise.ID}, nil); err != nil {
			return nil, fmt.Errorf("negotiate security: %w", err)
		}
		sc, err = u.noise.SecureInbound(ctx, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("noise handshake: %w", err)
	}
	early := sc.EarlyMuxer() == mux.ID
	if !early {
		if outbound {
			err = wire.SelectOne(sc, mux.ID)
		} else {
			_, err = wire.Negotiate(sc, []string{mux.ID}, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("negotiate muxer: %w", err)
		}
	}
	if !stop() {
		return nil, fmt.Errorf("handshake: %w", context.Cause(ctx))
	}
	raw.SetDeadline(time.Time{})

	var sess *mux.Session
	if outbound {
		sess, err = mux.Client(sc, u.cfg.Mux)
	} else {
		sess, err = mux.Server(sc, u.cfg.Mux)
	}
	if err != nil {
		return nil, err
	}
	return &conn{
		sess:   sess,
		sec:    sc,
		local:  ep.Local,
		remote: ep.Remote,
		state: ConnState{
			Transport:  ep.Transport,
			Security:   noise.ID,
			Muxer:      mux.ID,
			EarlyMuxer: early,
			Outbound:   outbound,
		},
	}, nil
}

// conn is a yamux session over a secured connection.
type conn struct {
	sess          *mux.Session
	sec           secure.Conn
	local, remote ma.Multiaddr
	state         ConnState
}

func (c *conn) OpenStream(ctx context.Context) (Stream, error) { return c.sess.OpenStream(ctx) }
func (c *conn) AcceptStream() (Stream, error)                  { return c.sess.AcceptStream() }
func (c *conn) Close() error                                   { return c.sess.Close() }
func (c *conn) Done() <-chan struct{}                          { return c.sess.Done() }
func (c *conn) LocalPeer() peer.ID                             { return c.sec.LocalPeer() }
func (c *conn) RemotePeer() peer.ID                            { return c.sec.RemotePeer() }
func (c *conn) RemotePublicKey() peer.PublicKey                { return c.sec.RemotePublicKey() }
func (c *conn) LocalMultiaddr() ma.Multiaddr                   { return c.local }
func (c *conn) RemoteMultiaddr() ma.Multiaddr                  { return c.remote }
func (c *conn) State() ConnState                               { return c.state }

// lazyConn runs an optimistic multistream selection on a raw connection.
type lazyConn struct {
	net.Conn
	sel lazySelect
}

func newLazyConn(c net.Conn, proto string) *lazyConn {
	return &lazyConn{Conn: c, sel: lazySelect{proto: proto}}
}

func (c *lazyConn) Write(b []byte) (int, error) { return c.sel.write(c.Conn, b) }
func (c *lazyConn) Read(b []byte) (int, error)  { return c.sel.read(c.Conn, c.Conn, b) }
