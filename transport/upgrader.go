package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
	"github.com/mote-p2p/mote/secure/noise"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// UpgraderConfig configures an Upgrader. Zero fields take their defaults.
type UpgraderConfig struct {
	// Key is our identity key. Required.
	Key peer.PrivateKey
	// Security lists the security protocols to offer, by preference:
	// noise.ID and tls.ID. Default: both, Noise first (its handshake is
	// cheaper and carries the muxer choice without revealing it).
	Security []string
	// Mux sets yamux windows and limits.
	Mux mux.Config
	// HandshakeTimeout bounds an inbound upgrade (multistream, security,
	// muxer). Default 15 s, as go-libp2p.
	HandshakeTimeout time.Duration
	// MaxInboundHandshakes bounds concurrent inbound handshakes per
	// listener. When all are taken, a new connection takes the slot of
	// the oldest handshake from the address group (see
	// MaxHandshakesPerSubnet) holding the most, instead of waiting in the
	// kernel's backlog behind connections that may never speak: an
	// honest handshake takes a few round trips, so the oldest is the
	// likeliest to be stalling (slow-loris). Default 64.
	MaxInboundHandshakes int
	// MaxHandshakesPerIP bounds the inbound handshakes in progress from
	// one IPv4 address or one IPv6 /64 (a host or site may own the whole
	// /64, so its addresses count as one); a newer connection from a full
	// group takes the slot of that group's oldest handshake, so one host
	// cannot hold every slot. Default 8. Loopback addresses are exempt
	// (as in go-libp2p) unless LimitLoopback is set.
	MaxHandshakesPerIP int
	// MaxHandshakesPerSubnet bounds them likewise from one IPv4 /24 or
	// IPv6 /48, against one network renting many addresses. Default 4 ×
	// MaxHandshakesPerIP: room for a few busy hosts (or a NAT pool)
	// while a single subnet still holds at most half of the default
	// slots.
	MaxHandshakesPerSubnet int
	// LimitLoopback applies the per-IP and per-subnet limits to loopback
	// addresses too.
	LimitLoopback bool
	// Logger receives the reasons connections were refused. Default: none.
	Logger *slog.Logger
	// TLSIdentity, if set, is the TLS certificate of Key to use, shared
	// with QUIC. Default: a new one.
	TLSIdentity *p2ptls.Identity
}

// securer is one security protocol as the upgrader uses it.
type securer struct {
	id       string
	outbound func(ctx context.Context, c net.Conn, remote peer.ID) (secure.Conn, error)
	inbound  func(ctx context.Context, c net.Conn) (secure.Conn, error)
}

// Upgrader turns raw connections into secured, muxed Conns: multistream
// picks the security protocol (Noise or TLS), which authenticates the peer
// and agrees on yamux within its handshake, and yamux carries the streams.
// A transport of any kind needs only to produce net.Conns and hand them to
// an Upgrader.
type Upgrader struct {
	cfg   UpgraderConfig
	sec   []securer
	ids   []string // protocol IDs of sec, same order
	local peer.ID
	log   *slog.Logger

	// refused remembers peers (or addresses) that refused our first
	// security protocol, to negotiate with them instead of proposing
	// optimistically again. Bounded; forgotten wholesale when full.
	refusedMu sync.Mutex
	refused   map[string]struct{}
}

const maxRefused = 1024

// NewUpgrader checks cfg and prepares the security transports.
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
	if cfg.MaxHandshakesPerIP <= 0 {
		cfg.MaxHandshakesPerIP = 8
	}
	if cfg.MaxHandshakesPerSubnet <= 0 {
		cfg.MaxHandshakesPerSubnet = 4 * cfg.MaxHandshakesPerIP
	}
	if len(cfg.Security) == 0 {
		cfg.Security = defaultSecurity
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &Upgrader{cfg: cfg, local: peer.IDFromPublicKey(cfg.Key.Public()), log: log, refused: make(map[string]struct{})}
	muxers := []string{mux.ID}
	for _, id := range cfg.Security {
		switch id {
		case noise.ID:
			nt, err := noise.New(noise.Config{Key: cfg.Key, Muxers: muxers})
			if err != nil {
				return nil, fmt.Errorf("upgrader: %w", err)
			}
			u.sec = append(u.sec, securer{id: id,
				outbound: func(ctx context.Context, c net.Conn, remote peer.ID) (secure.Conn, error) {
					return nt.SecureOutbound(ctx, c, remote)
				},
				inbound: func(ctx context.Context, c net.Conn) (secure.Conn, error) { return nt.SecureInbound(ctx, c) },
			})
		case tlsID:
			sec, err := newTLSSecurer(cfg.Key, cfg.TLSIdentity, muxers)
			if err != nil {
				return nil, fmt.Errorf("upgrader: %w", err)
			}
			u.sec = append(u.sec, sec)
		default:
			return nil, fmt.Errorf("upgrader: unknown security protocol %q", id)
		}
		u.ids = append(u.ids, id)
	}
	return u, nil
}

// LocalPeer is the peer ID of the upgrader's key.
func (u *Upgrader) LocalPeer() peer.ID { return u.local }

// Endpoint describes the raw connection being upgraded.
type Endpoint struct {
	// Transport names the transport in ConnState, e.g. "tcp".
	Transport string
	// Local and Remote are the multiaddrs of the two ends.
	Local, Remote ma.Multiaddr
	// Limit marks a limited connection (a relayed one), in ConnState;
	// nil for any other.
	Limit *ConnLimit
}

// errRefused marks an optimistic security proposal the peer refused; the
// connection is lost, but a new one negotiates and may succeed.
var errRefused = errors.New("security proposal refused")

// Dial obtains a raw connection from dial and upgrades it. If the peer
// refused our preferred security protocol, it dials once more and
// negotiates among all that we offer. Transports call this from Dial.
func (u *Upgrader) Dial(ctx context.Context, remote peer.ID, dial func(context.Context) (net.Conn, Endpoint, error)) (Conn, error) {
	for attempt := 0; ; attempt++ {
		raw, ep, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		c, err := u.UpgradeOutbound(ctx, raw, remote, ep)
		if err == nil || attempt > 0 || !errors.Is(err, errRefused) {
			return c, err
		}
	}
}

// UpgradeOutbound secures and muxes a connection we dialed. If remote is
// not empty, any other peer fails the upgrade with a
// *secure.PeerMismatchError. On error raw is closed.
func (u *Upgrader) UpgradeOutbound(ctx context.Context, raw net.Conn, remote peer.ID, ep Endpoint) (Conn, error) {
	key := string(remote)
	if key == "" {
		key = ep.Remote.String()
	}
	u.refusedMu.Lock()
	_, refused := u.refused[key]
	u.refusedMu.Unlock()
	optimistic := !refused || len(u.sec) == 1
	c, err := u.upgrade(ctx, raw, true, optimistic, remote, ep)
	if err != nil {
		raw.Close()
		if optimistic && len(u.sec) > 1 && errors.Is(err, wire.ErrNotSupported) {
			u.refusedMu.Lock()
			if len(u.refused) >= maxRefused {
				clear(u.refused)
			}
			u.refused[key] = struct{}{}
			u.refusedMu.Unlock()
			err = fmt.Errorf("%w: %w", errRefused, err)
		}
		return nil, fmt.Errorf("upgrade outbound connection to %s: %w", ep.Remote, err)
	}
	return c, nil
}

// UpgradeInbound secures and muxes a connection we accepted, within the
// handshake timeout. On error raw is closed.
func (u *Upgrader) UpgradeInbound(ctx context.Context, raw net.Conn, ep Endpoint) (Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, u.cfg.HandshakeTimeout)
	defer cancel()
	c, err := u.upgrade(ctx, raw, false, false, "", ep)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("upgrade inbound connection from %s: %w", ep.Remote, err)
	}
	return c, nil
}

func (u *Upgrader) upgrade(ctx context.Context, raw net.Conn, outbound, optimistic bool, remote peer.ID, ep Endpoint) (*conn, error) {
	// Multistream runs on the raw socket before the handshake starts, so
	// the same deadline has to cover it.
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var sc secure.Conn
	var err error
	var sec securer
	switch {
	case outbound && optimistic:
		// The proposal travels with the first handshake message, saving
		// a round trip; a peer that refuses it costs a second connection.
		sec = u.sec[0]
		sc, err = sec.outbound(ctx, newLazyConn(raw, sec.id), remote)
	case outbound:
		var proto string
		if proto, err = wire.SelectOneOf(raw, u.ids); err != nil {
			return nil, fmt.Errorf("negotiate security: %w", err)
		}
		sec = u.sec[slices.Index(u.ids, proto)]
		sc, err = sec.outbound(ctx, raw, remote)
	default:
		var proto string
		if proto, err = wire.Negotiate(raw, u.ids, nil); err != nil {
			return nil, fmt.Errorf("negotiate security: %w", err)
		}
		sec = u.sec[slices.Index(u.ids, proto)]
		sc, err = sec.inbound(ctx, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%s handshake: %w", sec.id, err)
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
			Security:   sec.id,
			Muxer:      mux.ID,
			EarlyMuxer: early,
			Outbound:   outbound,
			Limit:      ep.Limit,
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

// ServeStreams implements StreamDispatcher with the yamux session's
// stream handler: an idle connection then costs only the session's
// receive goroutine.
func (c *conn) ServeStreams(handle func(Stream), ended func()) {
	c.sess.SetStreamHandler(func(s *mux.Stream) { handle(s) })
	c.sess.OnClose(ended)
}

// lazyConn runs an optimistic multistream selection on a raw connection.
type lazyConn struct {
	net.Conn
	sel lazySelect
}

func newLazyConn(c net.Conn, proto string) *lazyConn {
	l := &lazyConn{Conn: c}
	l.sel = lazySelect{proto: proto, kill: func() { c.Close() }}
	return l
}

func (c *lazyConn) Write(b []byte) (int, error) { return c.sel.write(c.Conn, b) }
func (c *lazyConn) Read(b []byte) (int, error)  { return c.sel.read(c.Conn, c.Conn, b) }
