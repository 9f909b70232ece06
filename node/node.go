// Package node runs a libp2p peer: it listens and dials through its
// transports, keeps the open connections to each peer (a peer may have
// several; new streams go on the oldest that is open), runs identify,
// identify push and ping on every connection, and dispatches inbound
// streams to protocol handlers once their protocol is negotiated.
//
// Protocol services (the DHT, pubsub, NAT traversal) live in packages
// above this one and node imports none of them: a service follows the
// peers through Hooks (synchronous and never dropped, unlike the events
// of Subscribe), serves its protocols with SetHandler, opens streams
// with NewStream and stops with the node (Done or the Closed hook).
package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/ping"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("node closed")

// Handler serves one inbound stream of a protocol. It owns the stream and
// must close or reset it; it should return when the stream fails.
type Handler func(s *Stream)

// Node is a libp2p peer. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	key   peer.PrivateKey
	id    peer.ID
	log   *slog.Logger
	up    *transport.Upgrader
	store *peer.Store

	ctx    context.Context // cancelled by Close; parent of all node work
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node starts

	// hmu serialises lifecycle changes with the calls of the hooks that
	// report them; it is taken before mu, never while holding mu.
	hmu   sync.Mutex
	hooks []*Hooks // guarded by hmu

	mu          sync.Mutex
	closed      bool
	transports  []transport.Transport
	listeners   []transport.Listener
	conns       map[peer.ID][]*Conn
	inbound     int
	perIP       map[netip.Prefix]int // inbound connections by IPv4 address or IPv6 /64
	handlers    map[string]Handler
	onLimited   map[string]bool // protocols also served on limited connections
	dials       map[dialKey]*dialCall
	backoff     map[peer.ID]backoff
	addrBackoff map[string]backoff // by peer ID + binary multiaddr
	subs        map[*Subscription]struct{}
	pingers     map[peer.ID]*pinger // ping streams kept between Pings
	recordSeq   uint64

	protos atomic.Pointer[[]string]      // sorted handler IDs, for negotiation
	info   atomic.Pointer[identify.Info] // what identify tells peers

	pushMu      sync.Mutex
	pushPending bool  // a change waits to be pushed
	pushChanged int64 // unix nanoseconds of the latest change scheduled
	pushRunning bool  // a goroutine is running push rounds

	counters counters
	outbound int // open outbound connections; guarded by mu

	addrs  addrBook               // our addresses by source
	infoMu sync.Mutex             // serialises refreshInfo
	record atomic.Pointer[[]byte] // our signed peer record (an envelope), of addrs.current

	cm              connMgr
	protoStats      sync.Map // protocol ID → *protoCounter
	protoCount      atomic.Int32
	rateIn, rateOut *rate.Limiter // nil without a rate limit

	// The node-wide budget (Limits): unread stream data, shared by the
	// muxers; inbound streams being served, in all and per protocol
	// (protoStreams guarded by mu, an entry per protocol ever served).
	budget       *mux.Budget
	streams      atomic.Int32
	protoStreams map[string]*atomic.Int32
}

// New creates a node, and listens on cfg.ListenAddrs.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	key := cfg.Key
	if key == nil {
		var err error
		if key, err = peer.GenerateEd25519(rand.Reader); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	// One TLS certificate for TCP's TLS and for QUIC: making it costs a
	// key generation and a signature.
	tlsID, err := p2ptls.NewIdentity(key)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.ClassicKeyExchange {
		tlsID = tlsID.WithClassicKeyExchange()
	}
	budget := mux.NewBudget(cfg.Limits.MaxStreamMemory)
	up, err := transport.NewUpgrader(transport.UpgraderConfig{
		Key:              key,
		TLSIdentity:      tlsID,
		Security:         cfg.Security,
		Mux:              muxConfig(cfg.Limits, budget),
		HandshakeTimeout: cfg.HandshakeTimeout,
		Logger:           cfg.Logger,

		MaxInboundHandshakes:   cfg.Limits.MaxInboundHandshakes,
		MaxHandshakesPerIP:     cfg.Limits.MaxHandshakesPerIP,
		MaxHandshakesPerSubnet: cfg.Limits.MaxHandshakesPerSubnet,
		LimitLoopback:          cfg.LimitLoopback,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg,
		key: key,
		id:  peer.IDFromPublicKey(key.Public()),
		log: cfg.Logger,
		up:  up,
		store: peer.NewStore(peer.StoreConfig{MaxPeers: cfg.Limits.MaxPeers, MaxAddrsPerPeer: cfg.Limits.MaxAddrsPerPeer,
			MaxAddrBytesPerPeer: cfg.Limits.MaxAddrBytesPerPeer, MaxAddrBytes: cfg.Limits.MaxAddrBytes}),
		ctx:          ctx,
		cancel:       cancel,
		conns:        make(map[peer.ID][]*Conn),
		handlers:     make(map[string]Handler),
		onLimited:    make(map[string]bool),
		dials:        make(map[dialKey]*dialCall),
		backoff:      make(map[peer.ID]backoff),
		addrBackoff:  make(map[string]backoff),
		subs:         make(map[*Subscription]struct{}),
		pingers:      make(map[peer.ID]*pinger),
		addrs:        addrBook{sources: map[string][]ma.Multiaddr{}, state: map[string]AddrState{}, byAddr: map[string]*observedCount{}},
		cm:           connMgr{peers: make(map[peer.ID]*peerTags), wake: make(chan struct{}, 1)},
		budget:       budget,
		perIP:        make(map[netip.Prefix]int),
		protoStreams: make(map[string]*atomic.Int32),
		rateIn:       newLimiter(cfg.Limits.RateLimit),
		rateOut:      newLimiter(cfg.Limits.RateLimit),
	}
	makers := cfg.Transports
	if len(makers) == 0 {
		makers = defaultTransports(&cfg)
	}
	env := TransportEnv{Key: key, Upgrader: up, TLS: tlsID, Limits: cfg.Limits, Budget: budget, Config: &n.cfg}
	for _, mk := range makers {
		t, err := mk(env)
		if err != nil {
			n.closeTransports()
			cancel()
			return nil, fmt.Errorf("node: %w", err)
		}
		if t != nil { // QUIC under the noquic tag
			n.transports = append(n.transports, t)
		}
	}
	// Identify and ping are small and serve every connection: hole
	// punching needs identify over the relayed one.
	for proto, h := range map[string]Handler{identify.ID: n.serveIdentify, identify.PushID: n.handlePush, ping.ID: n.servePing} {
		n.handlers[proto] = h
		n.onLimited[proto] = true
	}
	n.protocolsChanged()
	n.wg.Add(1)
	go n.maintainLoop()
	if len(cfg.ListenAddrs) > 0 {
		if err := n.Listen(cfg.ListenAddrs...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.id }

// Key is the node's identity key.
func (n *Node) Key() peer.PrivateKey { return n.key }

// Peerstore holds what the node knows of other peers.
func (n *Node) Peerstore() *peer.Store { return n.store }

// Upgrader is the node's connection upgrader, for building transports of
// one's own (see AddTransport).
func (n *Node) Upgrader() *transport.Upgrader { return n.up }

// AddTransport adds a transport; it is tried before the built-in ones.
// A transport added after Close is closed (if it is an io.Closer).
func (n *Node) AddTransport(t transport.Transport) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		if c, ok := t.(io.Closer); ok {
			c.Close()
		}
		return
	}
	n.transports = slices.Insert(n.transports, 0, t)
	n.mu.Unlock()
}

func (n *Node) transportFor(addr ma.Multiaddr) transport.Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.transports {
		if t.CanDial(addr) {
			return t
		}
	}
	return nil
}

// CanListen reports whether the node has a transport for addr (a binary
// built with the noquic tag has none for QUIC addresses).
func (n *Node) CanListen(addr ma.Multiaddr) bool { return n.transportFor(addr) != nil }

// Listen starts listening on each address. It fails without listening on
// any if one cannot be listened on.
func (n *Node) Listen(addrs ...ma.Multiaddr) error {
	var started []transport.Listener
	for _, a := range addrs {
		t := n.transportFor(a)
		if t == nil {
			closeAll(started)
			return fmt.Errorf("listen %s: no transport for this address", a)
		}
		l, err := t.Listen(a)
		if err != nil {
			closeAll(started)
			return fmt.Errorf("listen %s: %w", a, err)
		}
		started = append(started, l)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		closeAll(started)
		return ErrClosed
	}
	n.listeners = append(n.listeners, started...)
	n.wg.Add(len(started))
	n.mu.Unlock()
	for _, l := range started {
		go n.acceptLoop(l)
	}
	n.addrsChanged()
	return nil
}

func closeAll(ls []transport.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// acceptLoop takes upgraded connections from one listener until it closes.
func (n *Node) acceptLoop(l transport.Listener) {
	defer n.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, transport.ErrListenerClosed) {
				n.log.Warn("listener stopped", "addr", l.Multiaddr(), "err", err)
			}
			return
		}
		if _, err := n.addConn(c); err != nil {
			n.log.Info("inbound connection refused", "peer", c.RemotePeer(), "err", err)
		}
	}
}

// AcceptErrors counts the temporary accept errors (out of descriptors,
// aborted connections) the node's listeners backed off from
// (transport.AcceptErrorCounter).
func (n *Node) AcceptErrors() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var total uint64
	for _, l := range n.listeners {
		if c, ok := l.(transport.AcceptErrorCounter); ok {
			total += c.AcceptErrors()
		}
	}
	return total
}

// ListenAddrs are the addresses bound by the listeners, as bound (an
// unspecified IP stays unspecified).
func (n *Node) ListenAddrs() []ma.Multiaddr {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]ma.Multiaddr, 0, len(n.listeners))
	for _, l := range n.listeners {
		out = append(out, l.Multiaddr())
	}
	return out
}

// resolvedListenAddrs are the listen addresses with an unspecified IP
// (0.0.0.0, ::) replaced by each interface address.
func (n *Node) resolvedListenAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	var ifaces []ma.Multiaddr
	for _, a := range n.ListenAddrs() {
		if !ma.IsIPUnspecified(a) {
			out = append(out, a)
			continue
		}
		if ifaces == nil {
			var err error
			if ifaces, err = ma.InterfaceMultiaddrs(); err != nil {
				n.log.Warn("list interface addresses", "err", err)
			}
		}
		if res, err := ma.ResolveUnspecifiedAddress(a, ifaces); err == nil {
			out = append(out, res...)
		}
	}
	return out
}

// SetHandler serves protocol proto with h on direct connections;
// connected peers learn of it by identify push. On limited (relayed)
// connections the protocol is refused, as most protocols would soon hit
// a relay's limits; SetLimitedHandler serves it there too.
func (n *Node) SetHandler(proto string, h Handler) { n.setHandler(proto, h, false) }

// SetLimitedHandler is SetHandler for a protocol that is also served on
// limited (relayed) connections, such as hole punching.
func (n *Node) SetLimitedHandler(proto string, h Handler) { n.setHandler(proto, h, true) }

func (n *Node) setHandler(proto string, h Handler, limited bool) {
	n.mu.Lock()
	n.handlers[proto] = h
	if limited {
		n.onLimited[proto] = true
	} else {
		delete(n.onLimited, proto)
	}
	n.mu.Unlock()
	n.protocolsChanged()
}

// RemoveHandler stops serving proto.
func (n *Node) RemoveHandler(proto string) {
	n.mu.Lock()
	delete(n.handlers, proto)
	delete(n.onLimited, proto)
	n.mu.Unlock()
	n.protocolsChanged()
}

// servesOnLimited reports whether proto is served on limited connections.
func (n *Node) servesOnLimited(proto string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.onLimited[proto] && n.handlers[proto] != nil
}

// SendPacket sends b as one datagram to addr from the socket our
// transport for addr listens on (hole punching), if that transport can
// (transport.PacketSender: QUIC can).
func (n *Node) SendPacket(addr ma.Multiaddr, b []byte) error {
	t := n.transportFor(addr)
	ps, ok := t.(transport.PacketSender)
	if !ok {
		return fmt.Errorf("send packet to %s: no transport for it sends raw packets", addr)
	}
	return ps.SendPacket(addr, b)
}

// Protocols lists the protocols the node serves, sorted.
func (n *Node) Protocols() []string { return slices.Clone(*n.protos.Load()) }

func (n *Node) handler(proto string) Handler {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.handlers[proto]
}

// serving returns proto's handler and its count of streams being served.
func (n *Node) serving(proto string) (Handler, *atomic.Int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.handlers[proto]
	if h == nil {
		return nil, nil
	}
	c := n.protoStreams[proto]
	if c == nil {
		c = new(atomic.Int32)
		n.protoStreams[proto] = c
	}
	return h, c
}

// Peers lists the peers with at least one open connection.
func (n *Node) Peers() []peer.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]peer.ID, 0, len(n.conns))
	for id := range n.conns {
		out = append(out, id)
	}
	return out
}

// Conns lists the open connections to id (all connections if id is "").
func (n *Node) Conns(id peer.ID) []*Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id != "" {
		return slices.Clone(n.conns[id])
	}
	var out []*Conn
	for _, cs := range n.conns {
		out = append(out, cs...)
	}
	return out
}

// Close closes listeners and connections and waits for every goroutine the
// node started to end.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	listeners := n.listeners
	var conns []*Conn
	for _, cs := range n.conns {
		conns = append(conns, cs...)
	}
	n.mu.Unlock()
	n.cancel()
	closeAll(listeners)
	for _, c := range conns {
		c.Close()
	}
	n.closeTransports()
	n.wg.Wait()
	n.hmu.Lock()
	n.tellNodeClosed()
	n.hmu.Unlock()
	n.mu.Lock()
	for s := range n.subs {
		s.close()
	}
	n.mu.Unlock()
	return nil
}

// closeTransports closes the transports that hold resources (QUIC's
// sockets).
func (n *Node) closeTransports() {
	n.mu.Lock()
	transports := slices.Clone(n.transports)
	n.mu.Unlock()
	for _, t := range transports {
		if c, ok := t.(io.Closer); ok {
			c.Close()
		}
	}
}

// Done is closed when Close has been called: services that run
// goroutines of their own end them then (or use the Closed hook).
func (n *Node) Done() <-chan struct{} { return n.ctx.Done() }

// Ping measures the round-trip time to a peer with /ipfs/ping/1.0.0,
// connecting if needed (a limited connection will do), and records it in
// the peerstore.
func (n *Node) Ping(ctx context.Context, id peer.ID) (time.Duration, error) {
	p := n.pingerFor(id)
	p.mu.Lock()
	for p.gone { // closed as idle while we waited for it
		p.mu.Unlock()
		p = n.pingerFor(id)
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	for {
		fresh := p.s == nil
		if fresh {
			// A ping is small enough for any relay's limits.
			s, err := n.NewStream(AllowLimited(ctx), id, ping.ID)
			if err != nil {
				return 0, err
			}
			p.s = s
		}
		s := p.s
		stop := context.AfterFunc(ctx, func() { s.Reset() })
		rtt, err := ping.Once(s, rand.Reader)
		stop()
		if err == nil {
			p.used.Store(time.Now().UnixNano())
			n.store.RecordLatency(id, rtt)
			return rtt, nil
		}
		s.Reset()
		p.s = nil
		// A kept stream may have died with its connection, or the peer
		// may have closed it: one more try, on a new one.
		if fresh || ctx.Err() != nil {
			return 0, fmt.Errorf("ping %s: %w", id, err)
		}
	}
}

// pinger is the ping stream kept for a peer between Pings, as Kubo and
// go-libp2p keep one for a ping session: a ping then costs one round
// trip, not a negotiation, and takes no new stream of a peer whose ping
// streams are scarce. It is closed once unused for pingIdle.
type pinger struct {
	mu   sync.Mutex // one ping at a time on the stream
	s    *Stream    // nil until the first ping, or after one failed
	gone bool       // removed from Node.pingers: not to be used
	used atomic.Int64
}

// pingIdle is how long a ping stream is kept after its last ping.
const pingIdle = 30 * time.Second

func (n *Node) pingerFor(id peer.ID) *pinger {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.pingers[id]
	if p == nil {
		p = &pinger{}
		p.used.Store(time.Now().UnixNano())
		n.pingers[id] = p
	}
	return p
}

// closePingers closes the ping streams unused since before cutoff (all
// with a zero cutoff), skipping those in use.
func (n *Node) closePingers(cutoff time.Time) {
	n.mu.Lock()
	var idle []*pinger
	for id, p := range n.pingers {
		if cutoff.IsZero() || p.used.Load() < cutoff.UnixNano() {
			if p.mu.TryLock() {
				delete(n.pingers, id)
				idle = append(idle, p)
			}
		}
	}
	n.mu.Unlock()
	for _, p := range idle {
		if p.s != nil {
			p.s.Close()
			p.s = nil
		}
		p.gone = true
		p.mu.Unlock()
	}
}

func (n *Node) servePing(s *Stream) {
	if err := ping.Serve(s); err != nil {
		n.log.Debug("ping stream ended", "peer", s.Conn().RemotePeer(), "err", err)
	}
}
