// Package quic is the QUIC v1 transport of libp2p
// (/ip4|ip6/<ip>/udp/<port>/quic-v1), built on quic-go. QUIC brings its own
// security and streams: both peers authenticate with libp2p TLS certificates
// (package secure/tls) inside the QUIC handshake, ALPN "libp2p", and every
// libp2p stream is one bidirectional QUIC stream. There is no multistream
// round for security or muxer and no yamux.
//
// One UDP socket serves each listen address, for listening and for dialing
// alike: a dial leaves from a listening socket of the destination's address
// family whenever one fits, so the peer observes our listen port (what
// identify, AutoNAT and hole punching rely on). Without such a listener the
// transport dials from one shared ephemeral socket per address family.
package quic

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Names reported in ConnState.
const (
	// Name is the transport name, as go-libp2p reports it.
	Name = "quic-v1"
	// SecurityID is the security protocol: libp2p TLS 1.3, inside QUIC.
	SecurityID = "/tls/1.0.0"
	// MuxerName stands for QUIC's native streams.
	MuxerName = "quic"
)

// Defaults of Config.
const (
	// DefaultMaxIncomingStreams is go-libp2p's limit of concurrent streams
	// a peer may open.
	DefaultMaxIncomingStreams = 256
	// DefaultStreamWindow bounds what a peer may send on one stream before
	// we read: 1 MiB, as our yamux. go-libp2p allows 10 MiB; 1 MiB still
	// fills 80 Mbit/s at 100 ms RTT per stream and caps what a slow reader
	// can be made to buffer.
	DefaultStreamWindow = 1 << 20
	// DefaultKeepAlivePeriod is go-libp2p's keep-alive interval.
	DefaultKeepAlivePeriod = 15 * time.Second
	// DefaultIdleTimeout is quic-go's idle timeout.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultHandshakeTimeout is quic-go's handshake idle timeout; a
	// handshake also fails after twice this in total.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxHandshakes is the TCP upgrader's MaxInboundHandshakes. A
	// connection quic-go builds for an Initial holds about 38 KiB and 4
	// goroutines until its handshake ends (more once TLS gets going).
	DefaultMaxHandshakes = 64
	// DefaultMaxHandshakesPerIP is the TCP upgrader's MaxHandshakesPerIP.
	DefaultMaxHandshakesPerIP = 8
	// DefaultRetryThreshold lets 4 handshakes proceed without a Retry: a
	// quiet node rarely has that many at once, so honest peers seldom pay
	// the extra round trip, and a flood of junk Initials builds at most 4
	// connections (about 0.2 MiB and 16 goroutines, with what the TLS
	// state they start holds until their handshake times out) before
	// every source must prove it receives at its address.
	DefaultRetryThreshold = 4
)

// quic-go starts flow-control windows here and grows them, as the reader
// keeps up, to the maxima of Config.
const (
	initialStreamWindow = 512 << 10
	initialConnWindow   = 768 << 10
)

// Config configures a Transport. Zero fields take their defaults.
type Config struct {
	// Key is our identity key. Required.
	Key peer.PrivateKey
	// MaxIncomingStreams is how many bidirectional streams a peer may have
	// open at once; QUIC flow control makes it wait for more. Default 256
	// (go-libp2p); negative allows none.
	MaxIncomingStreams int64
	// StreamWindow is the largest receive window of a stream, in bytes.
	// Default DefaultStreamWindow (1 MiB).
	StreamWindow uint64
	// ConnWindow is the largest receive window of a connection, all streams
	// together. Default twice StreamWindow (go-libp2p: 15 MiB), so two
	// streams can run at full speed. It bounds the memory a peer can make
	// a connection buffer.
	ConnWindow uint64
	// KeepAlivePeriod is how often an otherwise idle connection sends a
	// PING so that it survives NATs and the idle timeout. Default 15 s;
	// negative disables keep-alives.
	KeepAlivePeriod time.Duration
	// IdleTimeout closes a connection that has received nothing for this
	// long (the smaller of ours and the peer's applies). Default 30 s.
	IdleTimeout time.Duration
	// HandshakeTimeout aborts a handshake that has received nothing for
	// this long, or has not finished after twice this long. Default 5 s.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the inbound handshakes in progress, all
	// listeners together; a new connection beyond it is refused
	// (CONNECTION_REFUSED). quic-go builds a connection for every Initial
	// before it can decrypt it and keeps it until the handshake completes
	// or times out, so without a bound a flood of Initials costs memory
	// and goroutines in proportion. A handshake stops counting when a
	// listener accepts its connection or it fails. Default 64; values
	// below 1 take the default.
	MaxHandshakes int
	// MaxHandshakesPerIP bounds those from one IPv4 address or IPv6 /64,
	// so that one host cannot hold every slot; a source with half of it
	// in progress is sent a Retry (see RetryThreshold) before any more,
	// so that spoofed Initials cannot use up a host's share. Default 8;
	// values below 1 take the default. Loopback addresses are exempt, as
	// in the TCP upgrader, unless LimitLoopback is set.
	MaxHandshakesPerIP int
	// RetryThreshold is how many handshakes may be in progress before a
	// new connection from an address not yet validated gets a Retry
	// (RFC 9000 §8.1.2) and is built only once the client echoes the
	// token from that address: a Retry costs a datagram of about 100
	// bytes and no state, so junk and spoofed sources cost nothing more,
	// while honest clients pay one round trip. Default 4, at most half
	// of MaxHandshakes; negative sends a Retry to every connection
	// attempt that carries no token.
	RetryThreshold int
	// LimitLoopback applies MaxHandshakesPerIP and its Retry to loopback
	// addresses too (tests, and abuse suites on 127.0.0.0/8).
	LimitLoopback bool
	// Memory, if set, is a budget shared with other connections (and the
	// node's other muxers) that a connection's receive window must take
	// its growth beyond the first window from; quic-go asks before each
	// doubling. What a peer may send unread is then the first window
	// (min(768 KiB, ConnWindow)) per connection plus what the budget
	// grants, rather than ConnWindow per connection. Default: none.
	Memory Memory
	// Logger receives why inbound connections were dropped. Default: none.
	Logger *slog.Logger
	// Identity, if set, is the TLS certificate to use (it must be of Key),
	// shared with TCP's TLS so that a node makes one. Default: a new one.
	Identity *p2ptls.Identity
}

func (c Config) withDefaults() Config {
	if c.MaxIncomingStreams == 0 {
		c.MaxIncomingStreams = DefaultMaxIncomingStreams
	}
	if c.StreamWindow == 0 {
		c.StreamWindow = DefaultStreamWindow
	}
	if c.ConnWindow == 0 {
		c.ConnWindow = 2 * c.StreamWindow
	}
	if c.KeepAlivePeriod == 0 {
		c.KeepAlivePeriod = DefaultKeepAlivePeriod
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.MaxHandshakesPerIP <= 0 {
		c.MaxHandshakesPerIP = DefaultMaxHandshakesPerIP
	}
	if c.RetryThreshold == 0 {
		c.RetryThreshold = DefaultRetryThreshold
	}
	// A Retry at half of MaxHandshakes at the latest: unvalidated
	// sources (junk, spoofed) can then hold at most half of the slots,
	// and clients that proved their address have the other half, and a
	// refusal (a CONNECTION_REFUSED datagram, which a spoofed source
	// would aim at someone else) goes only to validated addresses.
	c.RetryThreshold = min(c.RetryThreshold, max(1, c.MaxHandshakes/2))
	return c
}

// Memory is a byte budget, such as *mux.Budget: Reserve takes n bytes,
// all or nothing, and Release gives them back.
type Memory interface {
	Reserve(n int64) bool
	Release(n int64)
}

// windows tracks what each connection's window growth took from a
// Memory, to give it back when the connection ends.
type windows struct {
	mem   Memory
	mu    sync.Mutex
	taken map[*quicgo.Conn]int64
}

// allow is quic-go's AllowConnectionWindowIncrease.
func (w *windows) allow(qc *quicgo.Conn, delta uint64) bool {
	if !w.mem.Reserve(int64(delta)) {
		return false
	}
	w.mu.Lock()
	_, known := w.taken[qc]
	w.taken[qc] += int64(delta)
	w.mu.Unlock()
	if !known {
		context.AfterFunc(qc.Context(), func() {
			w.mu.Lock()
			n := w.taken[qc]
			delete(w.taken, qc)
			w.mu.Unlock()
			w.mem.Release(n)
		})
	}
	return true
}

// quicConfig is the quic-go configuration of both directions.
func (c Config) quicConfig() *quicgo.Config {
	keepAlive := c.KeepAlivePeriod
	if keepAlive < 0 {
		keepAlive = 0
	}
	qc := &quicgo.Config{
		Versions:                       []quicgo.Version{quicgo.Version1},
		HandshakeIdleTimeout:           c.HandshakeTimeout,
		MaxIdleTimeout:                 c.IdleTimeout,
		KeepAlivePeriod:                keepAlive,
		InitialStreamReceiveWindow:     min(initialStreamWindow, c.StreamWindow),
		MaxStreamReceiveWindow:         c.StreamWindow,
		InitialConnectionReceiveWindow: min(initialConnWindow, c.ConnWindow),
		MaxConnectionReceiveWindow:     c.ConnWindow,
		MaxIncomingStreams:             c.MaxIncomingStreams,
		// libp2p uses bidirectional streams only (go-libp2p admits 5
		// unidirectional ones for WebTransport); a peer opening one
		// breaks the stream limit and loses the connection.
		MaxIncomingUniStreams: -1,
	}
	if c.Memory != nil {
		w := &windows{mem: c.Memory, taken: make(map[*quicgo.Conn]int64)}
		qc.AllowConnectionWindowIncrease = w.allow
	}
	return qc
}

// ErrClosed is returned by a Transport after Close.
var ErrClosed = errors.New("quic: transport closed")

// Transport dials and listens on QUIC v1 addresses. It implements
// transport.Transport.
type Transport struct {
	cfg   Config
	id    *p2ptls.Identity
	local peer.ID
	qconf *quicgo.Config
	log   *slog.Logger

	// Derived from the identity key, as go-libp2p does, so that after a
	// restart peers still accept our stateless resets and tokens.
	resetKey quicgo.StatelessResetKey
	tokenKey quicgo.TokenGeneratorKey

	hs *handshakes // inbound handshakes of all sockets

	mu      sync.Mutex
	closed  bool
	sockets map[*socket]struct{}
	dialers [2]*socket // shared ephemeral dial sockets, by family (see famOf)
	conns   map[*conn]struct{}
}

var _ transport.Transport = (*Transport)(nil)

// New prepares a transport; it opens no socket until Listen or Dial.
func New(cfg Config) (*Transport, error) {
	if cfg.Key == nil {
		return nil, errors.New("quic: no identity key")
	}
	cfg = cfg.withDefaults()
	id := cfg.Identity
	if id == nil {
		var err error
		if id, err = p2ptls.NewIdentity(cfg.Key); err != nil {
			return nil, fmt.Errorf("quic: %w", err)
		}
	} else if id.LocalPeer() != peer.IDFromPublicKey(cfg.Key.Public()) {
		return nil, errors.New("quic: the TLS identity given is not of the key")
	}
	t := &Transport{
		cfg:     cfg,
		id:      id,
		local:   peer.IDFromPublicKey(cfg.Key.Public()),
		qconf:   cfg.quicConfig(),
		hs:      newHandshakes(cfg),
		log:     cfg.Logger,
		sockets: make(map[*socket]struct{}),
		conns:   make(map[*conn]struct{}),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	secret, err := peer.MarshalPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	if err := deriveKey(t.resetKey[:], secret, "libp2p quic stateless reset key"); err != nil {
		return nil, err
	}
	if err := deriveKey(t.tokenKey[:], secret, "libp2p quic token generator key"); err != nil {
		return nil, err
	}
	return t, nil
}

func deriveKey(out, secret []byte, info string) error {
	k, err := hkdf.Key(sha256.New, secret, nil, info, len(out))
	if err != nil {
		return fmt.Errorf("quic: derive key: %w", err)
	}
	copy(out, k)
	return nil
}

// LocalPeer is our peer ID.
func (t *Transport) LocalPeer() peer.ID { return t.local }

// CanDial accepts exactly /ip4|ip6/<ip>/udp/<port>/quic-v1, optionally
// followed by /p2p/<id>.
func (t *Transport) CanDial(addr ma.Multiaddr) bool {
	return isQUIC(transport.StripP2P(addr))
}

// DialClass puts QUIC addresses first among a peer's: QUIC connects in
// one round trip fewer than TCP.
func (t *Transport) DialClass(ma.Multiaddr) transport.DialClass { return transport.DialFirst }

// SendPacket sends b as one UDP datagram to the IP and UDP port of to
// (a QUIC address) from the listening socket a dial to it would use:
// what hole punching sends so that our NAT maps that socket's port for
// the peer (transport.PacketSender).
func (t *Transport) SendPacket(to ma.Multiaddr, b []byte) error {
	raddr, err := udpAddrOf(transport.StripP2P(to))
	if err != nil {
		return fmt.Errorf("quic: send packet: %w", err)
	}
	t.mu.Lock()
	s := t.listenerForLocked(raddr, famOf(raddr.IP))
	t.mu.Unlock()
	if s == nil {
		return fmt.Errorf("quic: send packet to %s: no listening socket to send from", to)
	}
	if _, err := s.qt.WriteTo(b, raddr); err != nil {
		return fmt.Errorf("quic: send packet to %s: %w", to, err)
	}
	return nil
}

// isQUIC reports whether addr is exactly an IP address, a UDP port and
// quic-v1.
func isQUIC(addr ma.Multiaddr) bool {
	if len(addr) != 3 {
		return false
	}
	c0 := addr[0].Protocol().Code
	return (c0 == ma.P_IP4 || c0 == ma.P_IP6) &&
		addr[1].Protocol().Code == ma.P_UDP &&
		addr[2].Protocol().Code == ma.P_QUIC_V1
}

// udpAddrOf converts an address for which isQUIC holds.
func udpAddrOf(addr ma.Multiaddr) (*net.UDPAddr, error) {
	if !isQUIC(addr) {
		return nil, fmt.Errorf("quic: not a QUIC v1 address: %s", addr)
	}
	na, err := ma.ToNetAddr(addr[:2])
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	ua, ok := na.(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("quic: not a UDP address: %s", addr)
	}
	return ua, nil
}

// quicV1 is the trailing component of every address of this transport.
var quicV1 = func() ma.Component {
	c, err := ma.NewComponent("quic-v1", "")
	if err != nil {
		panic(err)
	}
	return c
}()

// multiaddrOf converts a UDP address into a QUIC v1 multiaddr.
func multiaddrOf(a net.Addr) (ma.Multiaddr, error) {
	m, err := ma.FromNetAddr(a)
	if err != nil {
		return nil, err
	}
	return append(m, quicV1), nil
}

// Dial connects to addr and authenticates the peer there. remote, or else
// a /p2p/<id> ending addr, is the peer we expect; a different one fails the
// handshake with a *secure.PeerMismatchError.
func (t *Transport) Dial(ctx context.Context, addr ma.Multiaddr, remote peer.ID) (transport.Conn, error) {
	raw, inAddr, err := peer.SplitP2P(addr)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	switch {
	case remote == "":
		remote = inAddr
	case inAddr != "" && inAddr != remote:
		return nil, fmt.Errorf("quic: dial %s: address names %s, expected %s", addr, inAddr, remote)
	}
	raddr, err := udpAddrOf(raw)
	if err != nil {
		return nil, err
	}
	s, err := t.dialSocket(raddr)
	if err != nil {
		return nil, err
	}
	tlsConf, verified := t.id.ConfigForDial(remote, nil)
	qc, err := s.qt.Dial(ctx, raddr, tlsConf, t.qconf)
	if err != nil {
		t.release(s)
		var mismatch *secure.PeerMismatchError
		if errors.As(err, &mismatch) {
			err = mismatch
		}
		return nil, fmt.Errorf("quic: dial %s: %w", raw, err)
	}
	c, err := t.setup(qc, s, true, remote, raw, verified())
	if err != nil {
		t.release(s)
		return nil, fmt.Errorf("quic: dial %s: %w", raw, err)
	}
	return c, nil
}

// Listen starts accepting connections on addr, which must be exactly
// /ip4|ip6/<ip>/udp/<port>/quic-v1; port 0 picks a free port (or adopts the
// shared dial socket of that family when listening on the unspecified
// address).
func (t *Transport) Listen(addr ma.Multiaddr) (transport.Listener, error) {
	laddr, err := udpAddrOf(addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	s := t.socketAtLocked(laddr)
	fresh := s == nil
	if fresh {
		if s, err = t.openSocketLocked(laddr); err != nil {
			return nil, err
		}
	} else if s.ln != nil {
		return nil, fmt.Errorf("quic: already listening on %s", s.maddr)
	}
	tlsConf, verified := t.id.ConfigForListen(nil)
	ql, err := s.qt.Listen(tlsConf, t.qconf)
	if err != nil {
		if fresh {
			t.forgetLocked(s)
			s.close()
		}
		return nil, fmt.Errorf("quic: listen %s: %w", addr, err)
	}
	l := &listener{t: t, s: s, ql: ql, verified: verified, done: make(chan struct{})}
	s.ln = l
	return l, nil
}

// Close closes every listener and connection (CONNECTION_CLOSE with code
// 0) and every socket. Dials in progress fail.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	var lns []*listener
	socks := make([]*socket, 0, len(t.sockets))
	for s := range t.sockets {
		socks = append(socks, s)
		if s.ln != nil {
			lns = append(lns, s.ln)
		}
	}
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()

	for _, l := range lns {
		l.Close()
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	for _, s := range socks {
		s.close()
	}
	return nil
}

// setup turns a QUIC connection whose handshake has completed into a Conn.
// want, if not empty, is the peer the dialer expects. raddr is the dialed
// address, or nil to take it from qc. key is the peer's key if the
// handshake already verified it, else nil. On error qc has been closed.
func (t *Transport) setup(qc *quicgo.Conn, s *socket, outbound bool, want peer.ID, raddr ma.Multiaddr, key peer.PublicKey) (*conn, error) {
	if key == nil { // not recorded by this handshake's own config
		var err error
		if key, err = p2ptls.PublicKeyFromChain(qc.ConnectionState().TLS.PeerCertificates); err != nil {
			qc.CloseWithError(connProtocolViolation, "")
			return nil, err
		}
	}
	remote := peer.IDFromPublicKey(key)
	if want != "" && remote != want {
		qc.CloseWithError(connProtocolViolation, "")
		return nil, &secure.PeerMismatchError{Expected: want, Actual: remote}
	}
	// Every connection of a socket has the socket's local address: share
	// its multiaddr rather than build one per connection.
	laddr, err := s.maddr[:len(s.maddr):len(s.maddr)], error(nil)
	if la, ok := qc.LocalAddr().(*net.UDPAddr); !ok || !la.IP.Equal(s.addr.IP) || la.Port != s.addr.Port {
		laddr, err = multiaddrOf(qc.LocalAddr())
	}
	if err == nil && raddr == nil {
		raddr, err = multiaddrOf(qc.RemoteAddr())
	}
	if err != nil {
		qc.CloseWithError(0, "")
		return nil, err
	}
	c := &conn{
		qc:        qc,
		t:         t,
		s:         s,
		remote:    remote,
		remoteKey: key,
		laddr:     laddr,
		raddr:     raddr,
		outbound:  outbound,
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		qc.CloseWithError(0, "")
		return nil, ErrClosed
	}
	t.conns[c] = struct{}{}
	if !outbound {
		s.users++ // a dial counted itself in dialSocket
	}
	t.mu.Unlock()
	// Bookkeeping when the connection ends, however it ends; AfterFunc
	// costs no goroutine until then.
	context.AfterFunc(qc.Context(), c.ended)
	return c, nil
}

// Connection close codes (WIRE-FACTS §22).
const connProtocolViolation quicgo.ApplicationErrorCode = 0x1003
