package kademlia

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Mode is whether a DHT serves the protocol or only queries it.
type Mode int

// Modes (go-libp2p-kad-dht's ModeClient, ModeServer and ModeAuto).
const (
	// ModeAuto serves once the node has an address the DHT's AddrFilter
	// accepts (for the public DHT, a public address), and is a client
	// otherwise. Until AutoNAT confirms addresses, "has" means
	// advertises: a configured or announced public address counts.
	ModeAuto Mode = iota
	// ModeClient sends queries but neither advertises the protocol nor
	// accepts its streams; peers keep it out of their routing tables.
	ModeClient
	// ModeServer advertises the protocol and answers queries.
	ModeServer
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeClient:
		return "client"
	case ModeServer:
		return "server"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "auto", "client" or "server".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto":
		return ModeAuto, nil
	case "client":
		return ModeClient, nil
	case "server":
		return ModeServer, nil
	}
	return 0, fmt.Errorf("kademlia: unknown mode %q (want auto, client or server)", s)
}

// Timing defaults, go-libp2p-kad-dht's.
const (
	// DefaultRequestTimeout bounds one request's response
	// (dhtReadMessageTimeout, dht_net.go).
	DefaultRequestTimeout = 10 * time.Second
	// DefaultStreamIdleTimeout is how long an inbound stream may wait for
	// its next request (dhtStreamIdleTimeout, dht_net.go).
	DefaultStreamIdleTimeout = time.Minute
	// DefaultRefreshInterval is the routing table refresh period
	// (config.go: RoutingTableRefreshPeriod).
	DefaultRefreshInterval = 10 * time.Minute
	// DefaultRefreshQueryTimeout bounds each refresh lookup
	// (RoutingTableRefreshQueryTimeout).
	DefaultRefreshQueryTimeout = 10 * time.Second
	// DefaultQueryTimeout bounds a whole lookup when the caller's context
	// has no deadline of its own. go has none; Kubo's commands time out
	// after a minute or two, and a lookup that has not ended by then is
	// stuck on stalled peers.
	DefaultQueryTimeout = time.Minute
)

// Config configures a DHT. Zero fields take the defaults in their
// comments.
type Config struct {
	// Protocol is the protocol ID: ID (the public Amino DHT, default) or
	// LANID (Kubo's LAN DHT).
	Protocol string
	// Mode: ModeAuto by default.
	Mode Mode
	// AddrFilter says which addresses this DHT accepts: only peers
	// connected over such an address enter the routing table, only such
	// addresses are taken from answers and given in ours, and ModeAuto
	// serves once we have one. Default: all (simulations); use
	// PublicAddrs for the public DHT and LANAddrs for the LAN DHT.
	AddrFilter func(ma.Multiaddr) bool
	// BucketSize is K: bucket size, closest peers per answer and replicas
	// per record (K, 20).
	BucketSize int
	// Alpha is how many requests a lookup keeps in flight (Alpha, 10).
	Alpha int
	// Beta: a lookup ends once the Beta closest peers it knows have
	// answered (Beta, 3).
	Beta int
	// Quorum is how many answers with a record GetValue waits for before
	// it returns the best one (16, Kubo's IPNS default).
	Quorum int
	// RequestTimeout, StreamIdleTimeout, RefreshInterval and QueryTimeout:
	// the Default* constants. A negative RefreshInterval disables refresh.
	RequestTimeout    time.Duration
	StreamIdleTimeout time.Duration
	RefreshInterval   time.Duration
	QueryTimeout      time.Duration
	// Messages bounds what a peer's message may hold (DefaultLimits).
	Messages Limits
	// Table configures the routing table (its diversity filter).
	Table TableConfig
	// Providers and Values bound the server's stores.
	Providers ProviderConfig
	Values    ValueConfig
	// Validator checks value records. Default: DefaultValidator (the
	// "pk" and "ipns" namespaces, as the Amino DHT requires).
	Validator Validator
	// WriteRate and WriteBurst bound the ADD_PROVIDER and PUT_VALUE
	// requests each peer may make of our stores, per second and in a
	// burst. Above them ADD_PROVIDER records are dropped and PUT_VALUE
	// requests refused (counted as LimitWrites). Default 50 a second,
	// bursts of 1,000: a Kubo reproviding thousands of keys sends each
	// closest peer a burst of records once every 22 h.
	WriteRate  float64
	WriteBurst int
	// MaxAdmissions bounds the routing-table admission checks waiting
	// to run; more are dropped, as the peer will be heard of again
	// (256, go's lookupCheck concurrency).
	MaxAdmissions int
	// MaxKeptPeers bounds the peers the DHT keeps a stream to after a
	// request: beyond it, the least recently used one's stream is
	// closed, and so is its connection if we dialed it, nothing else
	// uses it and it is not protected (kept.go). Default: a quarter of
	// the node's MaxOutboundConns, at least 8, so that the WAN and LAN
	// DHTs together leave the node half; negative keeps every stream
	// until the peer disconnects.
	MaxKeptPeers int
	// MaxProtectedPeers bounds the routing-table peers protected in the
	// connection manager (those most recently useful; see UsefulWindow):
	// a protected connection is never trimmed, and on a small preset a
	// table's worth of them would take every outbound connection.
	// Default: 2·BucketSize (go protects its first two buckets), at most
	// an eighth of the node's MaxOutboundConns but at least 4.
	MaxProtectedPeers int
	// Logger receives diagnostics. Default: the node's, else discarded.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Protocol == "" {
		c.Protocol = ID
	}
	if c.BucketSize <= 0 {
		c.BucketSize = K
	}
	if c.Alpha <= 0 {
		c.Alpha = Alpha
	}
	if c.Beta <= 0 {
		c.Beta = Beta
	}
	if c.Quorum <= 0 {
		c.Quorum = 16
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.StreamIdleTimeout <= 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.Validator == nil {
		c.Validator = DefaultValidator(time.Now)
	}
	if c.WriteRate <= 0 {
		c.WriteRate = 50
	}
	if c.WriteBurst <= 0 {
		c.WriteBurst = 1000
	}
	if c.MaxAdmissions <= 0 {
		c.MaxAdmissions = 256
	}
	if c.Table.BucketSize == 0 {
		c.Table.BucketSize = c.BucketSize
	}
	c.Messages = c.Messages.withDefaults()
}

// PublicAddrs is the AddrFilter of the public DHT (go-libp2p-kad-dht's
// PublicQueryFilter and PublicRoutingTableFilter): addresses whose IP n
// counts as public, not relayed.
func PublicAddrs(n *node.Node) func(ma.Multiaddr) bool {
	return func(a ma.Multiaddr) bool {
		return n.AddrScope(a) == node.ScopePublic && !relayed(a)
	}
}

// LANAddrs is the AddrFilter of the LAN DHT (dual/dual.go): private,
// link-local, shared and, as Kubo's test profile needs on one machine,
// loopback addresses; not relayed.
func LANAddrs(n *node.Node) func(ma.Multiaddr) bool {
	return func(a ma.Multiaddr) bool {
		switch n.AddrScope(a) {
		case node.ScopePrivate, node.ScopeLoopback, node.ScopeLinkLocal, node.ScopeShared:
			return !relayed(a)
		}
		return false
	}
}

func relayed(a ma.Multiaddr) bool {
	for _, c := range a {
		if c.Protocol().Code == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// Counter names of Stats.Counters.
const (
	// LimitWrites counts ADD_PROVIDER and PUT_VALUE requests over a
	// peer's WriteRate.
	LimitWrites = "kad.MaxWriteRate"
	// LimitAdmissions counts routing-table candidates dropped because
	// MaxAdmissions checks were already waiting.
	LimitAdmissions = "kad.MaxAdmissions"
	// LimitProviders counts provider records the store refused as full.
	LimitProviders = "kad.MaxProviderRecords"
	// LimitValues counts value records the store refused as full.
	LimitValues = "kad.MaxValueRecords"
	// Released counts connections given back: their peer was the least
	// recently used beyond MaxKeptPeers, or shed when our own limit
	// refused a stream.
	Released = "kad.released"
	// OwnLimitWaits counts the waits for room when our own node's
	// limits refused a DHT stream (its outbound connections).
	OwnLimitWaits = "kad.ownLimitWaits"
)

// DHT is one Kademlia DHT on a node: its routing table, its server's
// stores and its client. A node may run two (the public and the LAN DHT,
// as Kubo does); see Dual.
type DHT struct {
	n     *node.Node
	cfg   Config
	self  Key
	log   *slog.Logger
	table *Table

	providers *ProviderStore
	values    *ValueStore

	ctx    context.Context // ends with Close or the node
	cancel context.CancelFunc
	wg     sync.WaitGroup
	remove func() // the hooks

	admit   chan admission // bounded queue of routing-table candidates
	recheck chan struct{}  // the node's addresses changed (ModeAuto)

	mu        sync.Mutex
	mode      Mode // configured
	serving   bool
	senders   map[peer.ID]*sender
	kept      keptPeers
	protected map[peer.ID]bool // at most MaxProtectedPeers
	writers   map[peer.ID]*rate.Limiter
	checks    map[peer.ID]bool // admissions queued or running
	workers   int              // admission workers running
	closed    bool             // Close has begun: spawn nothing

	counters sync.Map // counter name → *atomic.Uint64
}

type admission struct {
	id    peer.ID
	ips   []netip.Addr
	alive bool // it has just answered a request: no check needed
}

// New starts a DHT on n. It follows n's peers through its hooks and ends
// with Close or with n.
func New(n *node.Node, cfg Config) (*DHT, error) {
	cfg.setDefaults()
	if cfg.MaxKeptPeers == 0 {
		cfg.MaxKeptPeers = max(8, n.Limits().MaxOutboundConns/4)
	}
	if cfg.MaxProtectedPeers <= 0 {
		cfg.MaxProtectedPeers = min(2*cfg.BucketSize, max(4, n.Limits().MaxOutboundConns/8))
	}
	if cfg.Protocol != ID && cfg.Protocol != LANID && cfg.Protocol[0] != '/' {
		return nil, fmt.Errorf("kademlia: protocol %q is not a protocol ID", cfg.Protocol)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DHT{
		n:         n,
		cfg:       cfg,
		self:      PeerKey(n.ID()),
		log:       log.With("proto", cfg.Protocol),
		table:     NewTable(n.ID(), cfg.Table),
		providers: NewProviderStore(cfg.Providers),
		values:    NewValueStore(cfg.Values),
		admit:     make(chan admission, cfg.MaxAdmissions),
		recheck:   make(chan struct{}, 1),
		mode:      cfg.Mode,
		senders:   make(map[peer.ID]*sender),
		kept:      keptPeers{at: make(map[peer.ID]*list.Element)},
		protected: make(map[peer.ID]bool),
		writers:   make(map[peer.ID]*rate.Limiter),
		checks:    make(map[peer.ID]bool),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.remove = n.AddHooks(node.Hooks{
		PeerConnected:    d.peerConnected,
		PeerDisconnected: d.peerDisconnected,
		ProtocolsChanged: d.protocolsChanged,
		AddrsChanged:     func([]ma.Multiaddr) { d.signal(d.recheck) },
		Closed:           d.cancel,
	})
	d.updateServing()
	d.wg.Add(1)
	go d.loop()
	return d, nil
}

// admitWorkers bounds the routing-table admission checks run at once.
// Workers start when candidates are queued and end when the queue is
// empty, so an idle DHT keeps none.
const admitWorkers = 4

// spawn runs f in a goroutine that Close waits for; once Close has begun
// it runs nothing and returns false.
func (d *DHT) spawn(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.spawnLocked(f)
}

func (d *DHT) spawnLocked(f func()) bool {
	if d.closed {
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
	return true
}

// Close stops the DHT: it stops serving, ends its goroutines and waits for
// them. The node keeps running.
func (d *DHT) Close() error {
	d.remove()
	d.cancel()
	d.mu.Lock()
	d.closed = true
	serving := d.serving
	d.serving = false
	d.mu.Unlock()
	if serving {
		d.n.RemoveHandler(d.cfg.Protocol)
	}
	d.wg.Wait()
	return nil
}

// Protocol is the DHT's protocol ID.
func (d *DHT) Protocol() string { return d.cfg.Protocol }

// Mode is the configured mode.
func (d *DHT) Mode() Mode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode
}

// Serving reports whether the DHT serves its protocol now: always in
// ModeServer, never in ModeClient, and in ModeAuto when the node has an
// address the AddrFilter accepts.
func (d *DHT) Serving() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.serving
}

// SetMode switches the mode at run time. The routing table and stores are
// kept; peers learn of the change by identify push.
func (d *DHT) SetMode(m Mode) {
	d.mu.Lock()
	d.mode = m
	d.mu.Unlock()
	d.updateServing()
}

// updateServing adds or removes the handler to match the mode.
func (d *DHT) updateServing() {
	d.mu.Lock()
	want := d.mode == ModeServer
	if d.mode == ModeAuto {
		want = slices.ContainsFunc(d.n.Addrs(), d.accepts)
	}
	if d.ctx.Err() != nil {
		want = false
	}
	change := want != d.serving
	d.serving = want
	d.mu.Unlock()
	if !change {
		return
	}
	if want {
		d.n.SetHandler(d.cfg.Protocol, d.serve)
	} else {
		d.n.RemoveHandler(d.cfg.Protocol)
	}
	d.log.Info("kademlia mode", "serving", want)
}

func (d *DHT) accepts(a ma.Multiaddr) bool {
	return d.cfg.AddrFilter == nil || d.cfg.AddrFilter(a)
}

func (d *DHT) filterAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	if d.cfg.AddrFilter == nil {
		return addrs
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		if d.cfg.AddrFilter(a) {
			out = append(out, a)
		}
	}
	return out
}

func (d *DHT) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (d *DHT) count(name string) {
	v, ok := d.counters.Load(name)
	if !ok {
		v, _ = d.counters.LoadOrStore(name, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Hooks. They run under the node's lifecycle lock: they only touch our
// maps and queue work.

func (d *DHT) peerConnected(c *node.Conn) {
	d.mu.Lock()
	d.writers[c.RemotePeer()] = rate.NewLimiter(rate.Limit(d.cfg.WriteRate), d.cfg.WriteBurst)
	d.mu.Unlock()
}

func (d *DHT) peerDisconnected(id peer.ID) {
	d.mu.Lock()
	delete(d.writers, id)
	s := d.senders[id]
	delete(d.senders, id)
	d.forgetKept(id)
	d.mu.Unlock()
	if s != nil {
		s.drop()
	}
	// The peer stays in the routing table: a disconnected server is
	// still a good contact (go keeps it too) until a request to it fails.
}

func (d *DHT) protocolsChanged(c *node.Conn, protos []string) {
	id := c.RemotePeer()
	if !slices.Contains(protos, d.cfg.Protocol) {
		if d.table.Remove(id) {
			d.spawn(func() { d.unprotect(id) })
		}
		return
	}
	if c.Limited() || !d.accepts(c.RemoteMultiaddr()) {
		return
	}
	d.queueAdmission(id, connIPs(c), false)
}

func connIPs(c *node.Conn) []netip.Addr {
	if ip, ok := ma.IP(c.RemoteMultiaddr()); ok {
		return []netip.Addr{ip}
	}
	return nil
}

func (d *DHT) queueAdmission(id peer.ID, ips []netip.Addr, alive bool) {
	if id == d.n.ID() || d.table.Contains(id) {
		if id != d.n.ID() {
			d.table.Seen(id, time.Now())
		}
		return
	}
	d.mu.Lock()
	if d.checks[id] {
		d.mu.Unlock()
		return
	}
	select {
	case d.admit <- admission{id, ips, alive}:
		d.checks[id] = true
		if d.workers < admitWorkers && d.spawnLocked(d.admitLoop) {
			d.workers++
		}
	default:
		d.count(LimitAdmissions)
	}
	d.mu.Unlock()
}

func (d *DHT) protectTag() string { return "kad:" + d.cfg.Protocol }

// admitLoop runs the liveness checks of routing-table candidates: a peer
// enters only after it answered a FIND_NODE for its own ID (go's
// lookupCheck), and it replaces the least recently seen peer of a full
// bucket only if that one fails the same check.
func (d *DHT) admitLoop() {
	for {
		d.mu.Lock()
		var a admission
		select {
		case a = <-d.admit:
		default:
			d.workers--
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		if d.ctx.Err() != nil {
			continue // drain, so that the worker count stays right
		}
		d.admitOne(a)
		d.mu.Lock()
		delete(d.checks, a.id)
		d.mu.Unlock()
	}
}

func (d *DHT) admitOne(a admission) {
	if !a.alive && !d.alive(a.id, true) {
		return
	}
	res, old := d.table.Add(a.id, a.ips, time.Now())
	if res == BucketFull {
		if d.alive(old, false) {
			d.table.Seen(old, time.Now())
			return
		}
		// Replace drops old even when the new peer is then refused.
		res = d.table.Replace(old, a.id, a.ips, time.Now())
		d.unprotect(old)
	}
	if res == Added {
		d.protect(a.id)
		d.log.Debug("kademlia peer added", "peer", a.id)
	}
}

// alive asks id for the peers closest to itself. A new candidate must
// return at least one once our table is full enough to tell (go:
// "the peer must know some peers" when the table holds K).
func (d *DHT) alive(id peer.ID, candidate bool) bool {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.RequestTimeout)
	defer cancel()
	resp, err := d.request(ctx, id, &Message{Type: FindNode, Key: []byte(id)})
	if err != nil {
		return false
	}
	return !candidate || d.table.Len() < d.cfg.BucketSize || len(resp.CloserPeers) > 0
}

// loop refreshes the routing table, follows the node's addresses in
// ModeAuto and collects expired records.
func (d *DHT) loop() {
	defer d.wg.Done()
	var refresh <-chan time.Time
	if d.cfg.RefreshInterval > 0 {
		t := time.NewTicker(d.cfg.RefreshInterval)
		defer t.Stop()
		refresh = t.C
	}
	gc := time.NewTicker(time.Hour)
	defer gc.Stop()
	for {
		select {
		case <-d.ctx.Done():
			d.updateServing()
			return
		case <-d.recheck:
			d.updateServing()
		case <-refresh:
			d.Refresh(d.ctx)
			d.reviewProtection(time.Now())
		case now := <-gc.C:
			d.providers.GC(now)
			d.values.GC(now)
		}
	}
}

// Bootstrap connects to peers (concurrently, ignoring those that fail)
// and then looks up our own ID, which fills the routing table with our
// neighbours and tells them of us. It fails if no peer could be reached
// and the table is empty.
func (d *DHT) Bootstrap(ctx context.Context, peers ...peer.AddrInfo) error {
	var wg sync.WaitGroup
	var ok atomic.Int32
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
			defer cancel()
			c, err := d.n.Connect(cctx, p.ID, p.Addrs...)
			if err != nil {
				d.log.Debug("kademlia bootstrap peer unreachable", "peer", p.ID, "err", err)
				return
			}
			ok.Add(1)
			// The admission check runs once identify says the peer
			// serves the DHT; wait for it so that the lookup below has
			// a seed.
			select {
			case <-c.Identified():
			case <-cctx.Done():
			}
			if !c.Limited() && d.accepts(c.RemoteMultiaddr()) &&
				d.n.Peerstore().SupportsProtocol(p.ID, d.cfg.Protocol) && d.alive(p.ID, false) {
				if res, _ := d.table.Add(p.ID, connIPs(c), time.Now()); res == Added {
					d.protect(p.ID)
				}
			}
		}()
	}
	wg.Wait()
	if len(peers) > 0 && ok.Load() == 0 && d.table.Len() == 0 {
		return errors.New("kademlia: bootstrap: no peer reachable")
	}
	_, err := d.GetClosestPeers(ctx, []byte(d.n.ID()))
	return err
}

// Refresh looks up our own ID and a random key in every bucket's range
// (go's routing-table refresh), each within DefaultRefreshQueryTimeout.
func (d *DHT) Refresh(ctx context.Context) {
	if d.table.Len() == 0 {
		return
	}
	run := func(key []byte) {
		qctx, cancel := context.WithTimeout(ctx, DefaultRefreshQueryTimeout)
		defer cancel()
		if _, err := d.GetClosestPeers(qctx, key); err != nil {
			d.log.Debug("kademlia refresh lookup failed", "err", err)
		}
	}
	run([]byte(d.n.ID()))
	for _, cpl := range d.table.RefreshTargets() {
		key, err := RandomKeyBytes(d.self, cpl, randReader{})
		if err != nil {
			continue
		}
		run(key)
	}
}

// UsefulWindow is how long a routing-table peer stays protected in the
// connection manager after it last answered a query usefully (or after it
// joined the table): peers that stopped being useful may be trimmed like
// any other, and rejoin the protection when they answer again. Ours; go
// tags table peers for the connection manager without such a window.
const UsefulWindow = time.Hour

// reviewProtection protects the MaxProtectedPeers routing-table peers
// most recently useful within UsefulWindow and unprotects the others.
func (d *DHT) reviewProtection(now time.Time) {
	since := now.Add(-UsefulWindow)
	type cand struct {
		id   peer.ID
		last time.Time
	}
	var cands []cand
	for _, b := range d.table.Buckets() {
		for _, p := range b.Peers {
			cands = append(cands, cand{p.ID, latest(p.LastUseful, p.AddedAt)})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return b.last.Compare(a.last) })
	keep := make(map[peer.ID]bool)
	for _, c := range cands {
		if len(keep) < d.cfg.MaxProtectedPeers && c.last.After(since) {
			keep[c.id] = true
		}
	}
	// The node's protection lock is a leaf: it may be taken under ours,
	// which keeps the two in step.
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range d.protected {
		if !keep[id] {
			d.n.Unprotect(id, d.protectTag())
		}
	}
	for id := range keep {
		d.n.Protect(id, d.protectTag())
	}
	d.protected = keep
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// protect protects id in the connection manager unless
// MaxProtectedPeers others are.
func (d *DHT) protect(id peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.protected[id] || len(d.protected) < d.cfg.MaxProtectedPeers {
		d.protected[id] = true
		d.n.Protect(id, d.protectTag())
	}
}

func (d *DHT) unprotect(id peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.protected, id)
	d.n.Unprotect(id, d.protectTag())
}

// RoutingTable is the DHT's routing table, for inspection.
func (d *DHT) RoutingTable() *Table { return d.table }

// Stats describes a DHT for `mote stats dht`.
type Stats struct {
	Protocol  string
	Mode      string
	Serving   bool
	Peers     int
	Buckets   []BucketInfo
	Providers ProviderStats
	Values    int
	Counters  map[string]uint64
}

// Stats returns the DHT's state and counters.
func (d *DHT) Stats() Stats {
	s := Stats{
		Protocol:  d.cfg.Protocol,
		Mode:      d.Mode().String(),
		Serving:   d.Serving(),
		Peers:     d.table.Len(),
		Buckets:   d.table.Buckets(),
		Providers: d.providers.Stats(),
		Values:    d.values.Len(),
		Counters:  make(map[string]uint64),
	}
	d.counters.Range(func(k, v any) bool {
		s.Counters[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return s
}
