package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// MemNetwork is an in-process network for tests and simulations: hosts
// listen on /memory/<n> and dial each other through in-memory pipes, which
// the Mem transport then upgrades as it would TCP. It has no global state;
// hosts that should reach each other share one network.
//
// # Hosts and addresses
//
// Every /memory/<n> is an endpoint, the counterpart of an IP address and
// port, and belongs to a host. A MemNetwork value is the network as seen
// from one host: NewMem on the value NewMemNetwork returns gives each
// transport a public host of its own (the behaviour of old), while
// NewHost and MemNAT.NewHost make hosts whose Network view puts every
// transport made on it, hence a node given node.Memory of it,
// on that host. Such a host dials from its first listening endpoint, as
// TCP with SO_REUSEPORT does (and go-libp2p by default), so that what its
// peers observe is the address it listens on or that address's NAT
// mapping; DialFrom picks the endpoint explicitly. A transport's own host
// dials from a fresh endpoint each time, as before. A dial to an endpoint
// nobody binds is refused at once (the network cannot tell which host's
// RST it would be), one to a bound endpoint without a listener after a
// round trip.
//
// # Links
//
// The path between two hosts is made of links, one per direction per pair
// of hosts that exchange packets directly: two public hosts, a host and
// the NAT it is behind, two hosts behind the same NAT. SetLink sets them;
// links between public hosts default to MemConfig.Link, the others (a
// LAN) to perfect. A link has:
//
//   - Latency, added to every byte and to connection setup (a dial takes
//     one round trip, SYN and SYN-ACK, before it returns).
//   - Bandwidth: each connection's bytes are serialized at that rate in
//     each direction, so n bytes take n/Bandwidth to leave. It is per
//     connection, not shared by the connections between two hosts:
//     sharing would need state per pair of hosts, and thousands of nodes
//     make millions of pairs.
//   - Loss. The pipes are reliable ordered streams, like TCP, so a lost
//     packet is not missing data but late data: a write is cut into
//     segments of up to 16 KiB, each segment some of whose 1460-byte
//     packets are lost (each with probability Loss) arrives one RTO late,
//     and again with a doubled RTO while its retransmission is lost too;
//     the RTO is that of Linux on a steady path, the round trip plus
//     200 ms (tcp_rto_min). Bytes never overtake those written before
//     them, so a late segment holds up the stream behind it (head-of-line
//     blocking), which is what loss costs a TCP or yamux connection. Fast
//     retransmit, which repairs a loss in mid-stream in one round trip, is
//     not modelled: the small request-response writes of libp2p protocols
//     mostly lose their last packet, which only the RTO repairs. Loss also
//     drops SYNs: a dial retransmits its SYN after 1 s, 2 s, 4 s... and
//     gives up with ETIMEDOUT after 6 retransmissions (127 s), as Linux's
//     connect does, or when its context ends. SYN-ACKs and RSTs are never
//     lost: their loss would only add another SYN retransmission.
//   - Down cuts the link, a partition. Dials across it lose their SYNs
//     (and so time out); open connections stall rather than close, as TCP
//     ones do until a timeout of their own (yamux keepalive, a deadline)
//     gives up: bytes due after the cut are held, writers block once the
//     window is full, and when the link heals the held bytes arrive at
//     once. Loss of 1 or more is Down.
//
// Delays are points in time computed at each write and waited for by the
// reader with a timer: there is no goroutine per connection or link, and
// under testing/synctest they take fake time. Each direction buffers at
// most 256 KiB, in flight or arrived; the window frees as the reader
// reads, without the ACK's trip back, so a window-limited transfer runs at
// up to 256 KiB per one-way latency. Link changes apply at once to open
// connections too.
//
// # NATs
//
// NewNAT makes a NAT: a host of its own on the outside (the box, whose
// links to public hosts are set like any host's) with a network behind it
// where NewHost adds hosts; NATs nest (carrier-grade NAT). Endpoints
// behind a NAT are private: a dial to one from outside is dropped, as a
// packet to 192.168.x.y is, and times out. A dial from behind a NAT leaves
// from a mapping, a public endpoint of the NAT, and opens a hole in it for
// replies; the listener sees the mapping as the remote address, which is
// the observed address identify reports. NATConfig gives the RFC 4787
// behaviours: mapping endpoint-independent (one mapping per private
// endpoint), address-dependent or address-and-port-dependent (one per
// private endpoint and remote host, or remote endpoint: symmetric), and
// filtering the same way (whom a mapping lets in: anyone, hosts or
// endpoints it has sent to). Inbound dials the filter refuses are dropped
// silently and time out, as on a real NAT. A mapping and its holes last
// while a connection uses them and for NATConfig.Timeout after, so a
// failed dial still leaves a hole, which is what hole punching needs.
// Hairpinning (a host dialing its own NAT's mapping) follows the same
// rules.
//
// # Simultaneous open
//
// A dial in progress waits for a SYN addressed to it: one arriving at its
// local endpoint from its remote endpoint (after every NAT's translation)
// joins the two dials into one pipe, as TCP simultaneous open does, and
// both Dials return its ends. A hole-punching test thus has two hosts
// behind NATs listen and learn their observed addresses through a public
// relay, then both Dial the other's observed address at the same time:
// each leaves from its listening endpoint, hence through the mapping the
// relay observed (with endpoint-independent mapping), opening a hole for
// the other's SYN. Behind symmetric NATs the new mapping differs from the
// observed one and the punch fails, as it does in life. Both ends of such
// a pipe think they dialed; the hole-punching code must upgrade one of
// them as inbound (Upgrader.UpgradeInbound), as go-libp2p does for
// DCUtR's simultaneous connect.
//
// # Fake time
//
// Every wait in the network is on a channel or a time.Timer, so a network
// made inside a testing/synctest bubble (it must be made there, as must
// its listeners and connections) runs in fake time: a minute of delays
// takes microseconds.
type MemNetwork struct {
	w    *memWorld
	host *MemHost // nil: each transport made on it gets a host of its own
}

// MemConfig configures a MemNetwork. Zero fields take their defaults.
type MemConfig struct {
	// Link is the default link between public hosts, for pairs that
	// SetLink did not set. Default: perfect (no delay, no loss).
	Link Link
	// Seed seeds the random draws of Loss, for reproducible runs.
	// Default 0, a seed like any other.
	Seed uint64
}

// Link is one direction of the link between two hosts. The zero Link is
// perfect. See MemNetwork for what each field models.
type Link struct {
	// Latency is the one-way delay. Default 0.
	Latency time.Duration
	// Bandwidth is the rate in bytes per second at which each connection
	// sends in this direction. Default 0: unlimited.
	Bandwidth int64
	// Loss is the probability that a packet is lost and must be
	// retransmitted; 1 or more is Down. Default 0.
	Loss float64
	// Down cuts the link. Default false.
	Down bool
}

// NewMemNetwork returns an empty network with perfect links.
func NewMemNetwork() *MemNetwork { return NewMemNetworkWith(MemConfig{}) }

// NewMemNetworkWith returns an empty network configured by cfg.
func NewMemNetworkWith(cfg MemConfig) *MemNetwork {
	w := &memWorld{
		ports:   make(map[uint64]*memPort),
		pending: make(map[memPair]*memDial),
		links:   make(map[hostPair]*memLink),
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x6d656d)),
	}
	w.def = newMemLink(cfg.Link, nil)
	w.ver.Store(1)
	return &MemNetwork{w: w}
}

// Host is the host this view of the network belongs to, nil for the
// network NewMemNetwork returned.
func (n *MemNetwork) Host() *MemHost { return n.host }

// NewHost adds a public host: on the network outside every NAT.
func (n *MemNetwork) NewHost() *MemHost { return n.w.newHost(nil, true) }

// NewNAT adds a NAT whose box is a public host.
func (n *MemNetwork) NewNAT(cfg NATConfig) *MemNAT { return n.w.newNAT(nil, cfg) }

// HostOf returns the host an endpoint belongs to (a NAT's box for one of
// its mappings), or nil if addr is not a bound /memory/<n>: a listener, a
// live mapping, or the fresh local endpoint of a dial or open connection.
// It is to memory addresses what the IP is to IP addresses, e.g. for
// telling observers apart.
func (n *MemNetwork) HostOf(addr ma.Multiaddr) *MemHost {
	port, ok := parseMemAddr(StripP2P(addr))
	if !ok {
		return nil
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if p := n.w.ports[port]; p != nil {
		return p.host
	}
	return nil
}

// SetLink sets both directions of the link between a and b to l.
func (n *MemNetwork) SetLink(a, b *MemHost, l Link) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	n.w.setLink(a, b, l)
	n.w.setLink(b, a, l)
	n.w.changedLinks()
}

// SetOneWayLink sets the direction from one host to another to l, for
// asymmetric links (a cut in one direction, ADSL).
func (n *MemNetwork) SetOneWayLink(from, to *MemHost, l Link) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	n.w.setLink(from, to, l)
	n.w.changedLinks()
}

// SetDefaultLink sets the link between public hosts whose link SetLink
// did not set.
func (n *MemNetwork) SetDefaultLink(l Link) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	n.w.def = newMemLink(l, n.w.def)
	n.w.changedLinks()
}

// MemHost is one machine on a MemNetwork: the owner of endpoints, an end
// of links, and possibly behind a NAT.
type MemHost struct {
	w       *memWorld
	id      uint64
	nat     *MemNAT     // the NAT the host is behind; nil for a public host
	reuse   bool        // dial from the first listening endpoint
	view    *MemNetwork // the network as seen from this host
	listens []uint64    // w.mu; listening endpoints, oldest first
	eph     *memPort    // what the host's fresh dialing endpoints are bound to
}

func (w *memWorld) newHost(nat *MemNAT, reuse bool) *MemHost {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hosts++
	h := &MemHost{w: w, id: w.hosts, nat: nat, reuse: reuse}
	h.view = &MemNetwork{w: w, host: h}
	h.eph = &memPort{host: h}
	return h
}

// Network is the network as this host sees it: transports made on it
// (NewMem, or a node given it as its MemNetwork) listen and dial on this
// host.
func (h *MemHost) Network() *MemNetwork { return h.view }

// NAT is the NAT the host is behind, nil for a public host.
func (h *MemHost) NAT() *MemNAT { return h.nat }

// String names the host for logs and test failures.
func (h *MemHost) String() string { return "host " + strconv.FormatUint(h.id, 10) }

// Listen binds addr, /memory/<n> or /memory/0 for a free endpoint, on
// this host and returns the raw listener: it accepts unsecured pipes
// (what NewMem's Listen upgrades).
func (h *MemHost) Listen(addr ma.Multiaddr) (net.Listener, error) {
	l, err := h.listen(addr)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (h *MemHost) listen(addr ma.Multiaddr) (*memRawListener, error) {
	port, ok := parseMemAddr(addr)
	if !ok {
		return nil, fmt.Errorf("memory: cannot listen on %s", addr)
	}
	w := h.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if port == 0 {
		port = w.newPort()
	} else if w.ports[port] != nil {
		return nil, fmt.Errorf("memory listen %s: address in use", addr)
	}
	l := &memRawListener{host: h, port: port, ch: make(chan net.Conn), done: make(chan struct{})}
	w.ports[port] = &memPort{host: h, ln: l}
	h.listens = append(h.listens, port)
	return l, nil
}

// Dial connects to addr and returns the raw pipe, unsecured. A host made
// by NewHost or MemNAT.NewHost dials from its first listening endpoint if
// it has one (SO_REUSEPORT), else from a fresh one.
func (h *MemHost) Dial(ctx context.Context, addr ma.Multiaddr) (net.Conn, error) {
	return h.DialFrom(ctx, nil, addr)
}

// DialFrom is Dial from the local endpoint local, which must be one this
// host listens on (nil: as Dial). Dialing the same remote from the same
// endpoint twice at once fails with EADDRINUSE.
func (h *MemHost) DialFrom(ctx context.Context, local, addr ma.Multiaddr) (net.Conn, error) {
	to, ok := parseMemAddr(StripP2P(addr))
	if !ok {
		return nil, fmt.Errorf("memory: cannot dial %s", addr)
	}
	var from uint64
	if len(local) > 0 {
		if from, ok = parseMemAddr(local); !ok || from == 0 {
			return nil, fmt.Errorf("memory: cannot dial from %s", local)
		}
	}
	p, err := h.dial(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("memory dial %s: %w", addr, err)
	}
	return p, nil
}

// memWorld is the state a network's views share.
type memWorld struct {
	mu      sync.Mutex
	next    uint64                // the last endpoint number handed out
	hosts   uint64                // the last host number handed out
	ports   map[uint64]*memPort   // bound endpoints: listeners and NAT mappings
	pending map[memPair]*memDial  // dials under way, by local and remote endpoint
	links   map[hostPair]*memLink // links SetLink set, by direction
	def     *memLink              // the link between public hosts otherwise
	rng     *rand.Rand            // SYN losses, pipes' seeds
	ver     atomic.Uint64         // counts link changes, for the pipes' cached links
	changed chan struct{}         // closed at the next link change; made on demand
}

// memPort is a bound endpoint: a listener, a NAT mapping, or (neither
// set) the fresh local endpoint of a dial, bound until its connection
// closes.
type memPort struct {
	host *MemHost        // its host: a NAT's box for a mapping
	ln   *memRawListener // the listener on it, or nil
	m    *natMapping     // the NAT mapping it is the outside of, or nil
}

type memPair struct{ local, remote uint64 }
type hostPair struct{ from, to uint64 }

// hop is one link a connection crosses, in the dialer-to-listener
// direction.
type hop struct{ from, to *MemHost }

// memLink is a Link as set, with when it went down.
type memLink struct {
	Link
	down   bool
	downAt time.Time
}

// newMemLink makes l the successor of old (nil if none): a cut that
// persists keeps the time it started.
func newMemLink(l Link, old *memLink) *memLink {
	m := &memLink{Link: l, down: l.Down || l.Loss >= 1}
	if m.down {
		m.downAt = time.Now()
		if old != nil && old.down {
			m.downAt = old.downAt
		}
	}
	return m
}

// newPort hands out a fresh endpoint number. w.mu is held.
func (w *memWorld) newPort() uint64 {
	for {
		w.next++
		if w.ports[w.next] == nil {
			return w.next
		}
	}
}

// link is the link from one host to another, nil if perfect. w.mu is held.
func (w *memWorld) link(from, to *MemHost) *memLink {
	if l := w.links[hostPair{from.id, to.id}]; l != nil {
		return l
	}
	if from.nat == nil && to.nat == nil {
		return w.def
	}
	return nil // a LAN behind a NAT
}

func (w *memWorld) setLink(from, to *MemHost, l Link) {
	w.links[hostPair{from.id, to.id}] = newMemLink(l, w.link(from, to))
}

// changedLinks tells the pipes the links changed. w.mu is held.
func (w *memWorld) changedLinks() {
	w.ver.Add(1)
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// pathLink is the links of a path combined: what one direction of a pipe
// crosses.
type pathLink struct {
	latency   time.Duration // summed
	bandwidth int64         // the narrowest; 0 if none is limited
	loss      float64       // a packet lost on any link
	down      bool          // some link is cut
	downAt    time.Time     // since when, the earliest cut
	changed   chan struct{} // if down: closed at the next link change
}

func (l *pathLink) perfect() bool {
	return l.latency == 0 && l.bandwidth == 0 && l.loss == 0 && !l.down
}

// pathLink combines the links of hops, crossed backwards if back. w.mu is
// held.
func (w *memWorld) pathLink(hops []hop, back bool) pathLink {
	var p pathLink
	for _, h := range hops {
		from, to := h.from, h.to
		if back {
			from, to = to, from
		}
		l := w.link(from, to)
		if l == nil {
			continue
		}
		p.latency += l.Latency
		if l.Bandwidth > 0 && (p.bandwidth == 0 || l.Bandwidth < p.bandwidth) {
			p.bandwidth = l.Bandwidth
		}
		if l.Loss > 0 {
			p.loss = 1 - (1-p.loss)*(1-min(l.Loss, 1))
		}
		if l.down && (!p.down || l.downAt.Before(p.downAt)) {
			p.down, p.downAt = true, l.downAt
		}
	}
	if p.down {
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		p.changed = w.changed
	}
	return p
}

// Connection setup as Linux does it: the SYN is retransmitted after 1 s,
// then after twice as long each time, and connect gives up after
// tcp_syn_retries retransmissions.
const (
	synRTO     = time.Second
	synRetries = 6
)

// errDropped is a SYN that got nowhere: lost, cut, refused by a NAT's
// filter or unroutable. It is retransmitted.
var errDropped = errors.New("SYN dropped")

// memDial is a dial under way, findable by the SYN of a simultaneous open.
type memDial struct {
	host   *MemHost
	key    memPair       // local and remote endpoint
	eph    bool          // w.mu; the local endpoint is fresh, bound while the dial needs it
	done   bool          // w.mu; the dial's outcome is decided
	paired bool          // w.mu; by another dial's SYN, which put our end in ch
	ch     chan *pipeEnd // buffered 1
}

// dial connects from endpoint from (0: the host's choice) to endpoint to.
func (h *MemHost) dial(ctx context.Context, from, to uint64) (*pipeEnd, error) {
	w := h.w
	w.mu.Lock()
	if from != 0 && !slices.Contains(h.listens, from) {
		w.mu.Unlock()
		return nil, fmt.Errorf("local address %s: %w", memAddr(from), syscall.EADDRNOTAVAIL)
	}
	if from == 0 && h.reuse && len(h.listens) > 0 && w.pending[memPair{h.listens[0], to}] == nil {
		from = h.listens[0]
	}
	if from != 0 && w.pending[memPair{from, to}] != nil {
		w.mu.Unlock()
		return nil, fmt.Errorf("local address %s: %w", memAddr(from), syscall.EADDRINUSE)
	}
	d := &memDial{host: h, key: memPair{from, to}, ch: make(chan *pipeEnd, 1)}
	if from == 0 {
		d.key.local = w.newPort()
		d.eph = true
		w.ports[d.key.local] = h.eph
	}
	w.pending[d.key] = d
	w.mu.Unlock()

	rto := synRTO
	for try := 0; ; try++ {
		start := time.Now()
		p, err := d.attempt(ctx)
		if !errors.Is(err, errDropped) {
			return d.finish(p, err)
		}
		// The last retransmission too is given its RTO to be answered.
		if p, err := d.sleep(ctx, time.Until(start.Add(rto))); p != nil || err != nil {
			return d.finish(p, err)
		}
		if try == synRetries {
			return d.finish(nil, syscall.ETIMEDOUT)
		}
		rto *= 2
	}
}

// finish ends the dial with p or err, unless another dial's SYN joined it
// meanwhile: then with the pipe that made.
func (d *memDial) finish(p *pipeEnd, err error) (*pipeEnd, error) {
	w := d.host.w
	w.mu.Lock()
	if w.pending[d.key] == d {
		delete(w.pending, d.key)
	}
	d.done = true
	paired := d.paired
	if d.eph && p == nil && !paired {
		delete(w.ports, d.key.local)
	}
	w.mu.Unlock()
	if paired && p == nil {
		return <-d.ch, nil
	}
	return p, err
}

// sleep waits for dur. It returns early with our end of a pipe if a
// simultaneous open joined the dial, or with the context's error.
func (d *memDial) sleep(ctx context.Context, dur time.Duration) (*pipeEnd, error) {
	if dur <= 0 {
		return nil, nil
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, nil
	case p := <-d.ch:
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// travel carries the SYN over the link from one host to another, onto
// *hops: it takes the link's latency, and errDropped if the link lost it.
func (d *memDial) travel(ctx context.Context, from, to *MemHost, hops *[]hop) (*pipeEnd, error) {
	if from == to {
		return nil, nil
	}
	*hops = append(*hops, hop{from, to})
	w := d.host.w
	w.mu.Lock()
	var latency time.Duration
	lost := false
	if l := w.link(from, to); l != nil {
		latency = l.Latency
		lost = l.down || (l.Loss > 0 && w.rng.Float64() < l.Loss)
	}
	w.mu.Unlock()
	if p, err := d.sleep(ctx, latency); p != nil || err != nil {
		return p, err
	}
	if lost {
		return nil, errDropped
	}
	return nil, nil
}

// attempt sends one SYN: up through the NATs the dialer is behind to the
// network of the destination, down through the NATs in front of it, to a
// listener or a dial waiting for it. On success it returns after the
// SYN-ACK's trip back; errDropped asks for a retransmission.
func (d *memDial) attempt(ctx context.Context) (*pipeEnd, error) {
	h, w := d.host, d.host.w
	w.mu.Lock()
	port := w.ports[d.key.remote]
	if port == nil {
		w.mu.Unlock()
		return nil, syscall.ECONNREFUSED
	}
	target := port.host
	var ups []*MemNAT
	for r := h.nat; r != target.nat; r = r.box.nat {
		if r == nil {
			w.mu.Unlock()
			return nil, errDropped // a private address of another network
		}
		ups = append(ups, r)
	}
	w.mu.Unlock()

	var hops []hop
	var refs []natRef
	src, srcHost := d.key.local, h // the SYN's source, as translated so far
	at := h
	for _, nat := range ups {
		if p, err := d.travel(ctx, at, nat.box, &hops); p != nil || err != nil {
			return p, err
		}
		at = nat.box
		w.mu.Lock()
		ref, ok := nat.outbound(src, srcHost, d.key.remote, target, time.Now())
		w.mu.Unlock()
		if !ok {
			return nil, errDropped // the NAT's table is full
		}
		refs = append(refs, ref)
		src, srcHost = ref.m.public, nat.box
	}
	if p, err := d.travel(ctx, at, target, &hops); p != nil || err != nil {
		return p, err
	}
	at, dst := target, d.key.remote
	for {
		w.mu.Lock()
		p := w.ports[dst]
		if p == nil || p.m == nil || p.host != at {
			break // reached the destination host; w.mu stays held
		}
		ref, ok := p.m.nat.inbound(p.m, src, srcHost, time.Now())
		next, inner := p.m.host, p.m.internal
		w.mu.Unlock()
		if !ok {
			return nil, errDropped
		}
		refs = append(refs, ref)
		if p, err := d.travel(ctx, at, next, &hops); p != nil || err != nil {
			return p, err
		}
		at, dst = next, inner
	}

	// At the destination host, w.mu held.
	if d.done {
		w.mu.Unlock()
		return nil, nil // joined by the other side's SYN; finish takes the pipe
	}
	route := &pipeRoute{w: w, hops: hops, seed: w.rng.Uint64()}
	if d.eph {
		route.eph[0] = d.key.local
	}
	back := w.pathLink(hops, true).latency // the SYN-ACK's trip
	if o := w.pending[memPair{dst, src}]; o != nil && o != d && !o.done {
		// Simultaneous open: the two SYNs make one connection.
		if o.eph {
			route.eph[1] = o.key.local
		}
		route.hold(refs)
		mine, theirs := newPipeOn(route, memAddr(d.key.local), memAddr(dst))
		mine.remote, theirs.remote = memAddr(d.key.remote), memAddr(src)
		o.done, o.paired = true, true
		o.ch <- theirs
		d.done = true
		w.mu.Unlock()
		return d.established(ctx, mine, back)
	}
	p := w.ports[dst]
	if p == nil || p.ln == nil || p.host != at {
		w.mu.Unlock()
		if p, err := d.sleep(ctx, back); p != nil || err != nil {
			return p, err
		}
		return nil, syscall.ECONNREFUSED // the RST
	}
	l := p.ln
	route.hold(refs)
	client, server := newPipeOn(route, memAddr(d.key.local), memAddr(dst))
	client.remote, server.remote = memAddr(d.key.remote), memAddr(src)
	d.done = true // no simultaneous open can take this dial any more
	w.mu.Unlock()
	select {
	case l.ch <- server:
	case <-l.done:
		client.Close()
		return nil, syscall.ECONNREFUSED
	case <-ctx.Done():
		client.Close()
		return nil, ctx.Err()
	}
	return d.established(ctx, client, back)
}

// established waits for the SYN-ACK's trip back before handing out p.
func (d *memDial) established(ctx context.Context, p *pipeEnd, back time.Duration) (*pipeEnd, error) {
	if back > 0 {
		t := time.NewTimer(back)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			p.Close()
			return nil, ctx.Err()
		}
	}
	return p, nil
}
