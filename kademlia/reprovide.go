package kademlia

// reprovide.go announces many keys at once by sweeping the keyspace, as
// go-libp2p-kad-dht's sweeping provider does (provider/, Kubo's default
// since 0.39): instead of one lookup per key, the keys are taken in
// keyspace order and each lookup's answer serves every key near it.
//
// The rule. A lookup of a target T returns the K peers closest to T; if
// the farthest of them shares c leading bits with T, every peer whose
// point starts with T's first c+1 bits is closer to T than that one, so
// the answer holds every peer of that prefix: the prefix is covered
// (go's keyspace.ShortestCoveredPrefix). The sweep keeps the peers its
// lookups returned and the union of the prefixes they covered. A key's K
// closest seen peers are its K closest peers once no part of the
// keyspace that is not covered lies nearer to the key than the K-th of
// them: any peer nearer would have been seen. Until that holds the
// sweep looks up a target in the nearest part not covered (the next of
// our keys there, else a peer seen there, else a random key of that
// prefix), and a key whose own lookup it ran is settled by that lookup,
// as one lookup per key would be. Each key's peers are thus those of the
// per-key lookups whenever those lookups return the true closest peers,
// which is the premise of both; the union of several lookups can only
// add peers the single lookup missed.
//
// The keyspace is walked in regions (prefixes) that hold about K peers
// each, by the routing table's estimate or, if deeper, the lookups'; the
// peers and covered prefixes of one region's parent are kept while its
// keys are done, so that the memory and time spent per key do not grow
// with the network.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
)

// Reprovide parameters.
const (
	// DefaultReprovideInterval is how often our keys are announced
	// again: 22 h (spec kad-dht/README.md; Kubo's Provide.DHT.Interval;
	// boxo provider DefaultReproviderInterval), inside the 48 h that
	// servers keep provider records.
	DefaultReprovideInterval = 22 * time.Hour
	// ReprovideStartDelay is how long after start the first reprovide
	// waits, so that the routing table has filled and a node about to
	// stop does not start one (boxo provider/reprovider.go
	// defaultInitialReprovideDelay).
	ReprovideStartDelay = time.Minute
	// MaxRegionBits bounds the prefix length of a sweep's regions
	// (go-libp2p-kad-dht provider/provider.go maxPrefixSize).
	MaxRegionBits = 24
	// ProvideSendsInFlight bounds the peers a provide sends
	// ADD_PROVIDER messages to at once.
	ProvideSendsInFlight = 16
)

// maxExploreLookups bounds the lookups run to settle one key; a key
// still open after them is looked up itself, so that no key holds the
// sweep up where covering makes no progress.
const maxExploreLookups = 8

// maxConsecutiveSendFailures: after more failures in a row than this to
// one peer, its remaining records are given up (go-libp2p-kad-dht
// provider/provider.go maxConsecutiveProvideFailuresAllowed).
const maxConsecutiveSendFailures = 2

// maxTargetScan bounds how many of our keys a sweep skips over when
// looking for one to target in a part of the keyspace.
const maxTargetScan = 16

// ReprovideStats describes one ProvideMany or ProvideEach.
type ReprovideStats struct {
	// Keys announced (distinct).
	Keys int
	// Regions of the keyspace that held keys (ProvideEach: one per key).
	Regions int
	// Lookups run and the FIND_NODE requests they sent.
	Lookups, LookupRequests int
	// Sent and Failed count ADD_PROVIDER messages; Limited counts the
	// failed ones that our own node's limits refused (its outbound
	// connections) for a whole request timeout.
	Sent, Failed, Limited int
	// Duration of the whole call, sends included.
	Duration time.Duration
}

// ProvideMany announces keys (multihashes) by sweeping the keyspace: it
// records us in our own store, finds the K closest peers of every key
// with far fewer lookups than one per key (see the rule above), and
// sends each of them the key's ADD_PROVIDER, to at most
// ProvideSendsInFlight peers at once. It returns when every record was
// sent or failed. It fails if a key is not a multihash-sized key, if we
// have no address to announce, if the routing table is empty, if ctx
// ends, or if every record failed.
func (d *DHT) ProvideMany(ctx context.Context, keys [][]byte) (ReprovideStats, error) {
	return d.provideMany(ctx, keys, true)
}

// ProvideEach announces keys as ProvideMany does but with one lookup per
// key, as a reprovider without the sweep does: the baseline the sweep is
// measured against.
func (d *DHT) ProvideEach(ctx context.Context, keys [][]byte) (ReprovideStats, error) {
	return d.provideMany(ctx, keys, false)
}

func (d *DHT) provideMany(ctx context.Context, keys [][]byte, sweeping bool) (ReprovideStats, error) {
	start := time.Now()
	op := "provide many"
	if !sweeping {
		op = "provide each"
	}
	var st ReprovideStats
	keys, points, err := d.ownKeys(keys)
	st.Keys = len(keys)
	if err != nil {
		return st, fmt.Errorf("kademlia: %s: %w", op, err)
	}
	if len(keys) == 0 {
		return st, nil
	}
	self := d.entryOf(d.n.ID())
	if len(self.Addrs) == 0 {
		return st, fmt.Errorf("kademlia: %s: we have no address the %s DHT accepts", op, d.cfg.Protocol)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.ctx, cancel)
	defer stop()

	ps := newProvideSender(ctx, d, self)
	// The FIND_NODE lookup of Lookup, which also tells whether any
	// request failed (not counting those the lookup cancelled when it
	// ended): an answer of fewer than K peers with no failure means the
	// network holds no more.
	lookup := func(target []byte) ([]peer.ID, bool, error) {
		var failed atomic.Int32
		ask := d.closerAsk(target)
		ids, ls, err := d.lookup(ctx, target, func(ctx context.Context, id peer.ID) ([]peer.AddrInfo, bool, error) {
			closer, stop, err := ask(ctx, id)
			if err != nil && ctx.Err() == nil {
				failed.Add(1)
			}
			return closer, stop, err
		})
		st.Lookups++
		st.LookupRequests += ls.Requests
		if err == nil {
			// A lookup cut short returns the peers it had; the sweep
			// must stop all the same.
			err = ctx.Err()
		}
		return ids, ls.Answers > 0 && failed.Load() == 0, err
	}
	if sweeping {
		sw := newSweep(d.cfg.BucketSize, regionBits(d.self, d.table.Peers(), d.cfg.BucketSize), keys, points, lookup)
		err = sw.run(ps.queueAll)
		st.Regions = sw.regions
	} else {
		st.Regions = len(keys)
		for _, key := range keys {
			var ids []peer.ID
			if ids, _, err = lookup(key); err != nil {
				break
			}
			for _, id := range ids {
				ps.queue(id, [][]byte{key})
			}
		}
	}
	ps.close()
	st.Sent, st.Failed = int(ps.sent.Load()), int(ps.failed.Load())
	st.Limited = int(ps.limited.Load())
	st.Duration = time.Since(start)
	if err != nil {
		return st, fmt.Errorf("kademlia: %s: %w", op, err)
	}
	if st.Sent == 0 {
		return st, fmt.Errorf("kademlia: %s: every ADD_PROVIDER failed: %w", op, ps.lastErr())
	}
	return st, nil
}

// ownKeys checks and deduplicates keys, records us as their provider in
// our own store, and sorts them by keyspace point.
func (d *DHT) ownKeys(keys [][]byte) ([][]byte, []Key, error) {
	type item struct {
		p   Key
		key []byte
	}
	seen := make(map[string]bool, len(keys))
	items := make([]item, 0, len(keys))
	for i, k := range keys {
		if len(k) == 0 || len(k) > MaxProviderKeyLen {
			return nil, nil, fmt.Errorf("key %d of %d bytes (want a multihash, 1 to %d bytes): %w", i, len(k), MaxProviderKeyLen, ErrBadKey)
		}
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		items = append(items, item{KeyOf(k), k})
	}
	now := time.Now()
	refused := 0
	for _, it := range items {
		if err := d.providers.Add(it.key, d.n.ID(), nil, now); err != nil {
			// The records on the closest peers are what makes the key
			// findable; our own copy only answers those who ask us.
			refused++
		}
	}
	if refused > 0 {
		d.log.Info("kademlia own provider store refused keys", "keys", refused)
	}
	slices.SortFunc(items, func(a, b item) int { return bytes.Compare(a.p[:], b.p[:]) })
	out := make([][]byte, len(items))
	points := make([]Key, len(items))
	for i, it := range items {
		out[i], points[i] = it.key, it.p
	}
	return out, points, nil
}

// regionBits estimates the prefix length of a region holding about k
// peers: the deepest common-prefix length with self at which the table
// holds at least k/2 peers. A prefix of length i holds about N/2^i of N
// peers, and the table about N/2^(i+1) at length i until the bucket is
// full, so there N/2^i >= k.
func regionBits(self Key, peers []peer.ID, k int) int {
	var counts [257]int
	for _, id := range peers {
		counts[CommonPrefixLen(self, PeerKey(id))]++
	}
	bits := 0
	for i, n := range counts {
		if 2*n >= k {
			bits = i
		}
	}
	return min(bits, MaxRegionBits)
}

// provideSender sends ADD_PROVIDER records with ProvideSendsInFlight
// workers, each taking one peer and its keys at a time; close waits for
// them.
type provideSender struct {
	d    *DHT
	ctx  context.Context
	self Peer
	jobs chan provideJob
	wg   sync.WaitGroup

	sent, failed, limited atomic.Int64
	mu                    sync.Mutex
	last                  error
}

type provideJob struct {
	id   peer.ID
	keys [][]byte
}

func newProvideSender(ctx context.Context, d *DHT, self Peer) *provideSender {
	ps := &provideSender{d: d, ctx: ctx, self: self, jobs: make(chan provideJob)}
	ps.wg.Add(ProvideSendsInFlight)
	for range ProvideSendsInFlight {
		go ps.work()
	}
	return ps
}

// close ends the workers once every queued record is sent or failed.
func (ps *provideSender) close() {
	close(ps.jobs)
	ps.wg.Wait()
}

// queueAll sends each peer its keys.
func (ps *provideSender) queueAll(alloc map[peer.ID][][]byte) {
	ids := make([]peer.ID, 0, len(alloc))
	for id := range alloc {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a reproducible order, for simulations
	for _, id := range ids {
		ps.queue(id, alloc[id])
	}
}

// queue hands id and its keys to a worker. It blocks while every worker
// is busy, which holds the sweep back to the pace of the network.
func (ps *provideSender) queue(id peer.ID, keys [][]byte) {
	select {
	case ps.jobs <- provideJob{id, keys}:
	case <-ps.ctx.Done():
		ps.fail(len(keys), ps.ctx.Err())
	}
}

func (ps *provideSender) work() {
	defer ps.wg.Done()
	for job := range ps.jobs {
		ps.sendAll(job)
	}
}

// sendAll sends the records of a job one after the other, on the DHT's
// stream to the peer.
func (ps *provideSender) sendAll(job provideJob) {
	fails := 0
	for i, key := range job.keys {
		if err := ps.ctx.Err(); err != nil || fails > maxConsecutiveSendFailures {
			ps.fail(len(job.keys)-i, err)
			return
		}
		rctx, cancel := context.WithTimeout(ps.ctx, ps.d.cfg.RequestTimeout)
		err := ps.d.send(rctx, job.id, &Message{Type: AddProvider, Key: key, ProviderPeers: []Peer{ps.self}})
		cancel()
		if err != nil {
			fails++
			ps.fail(1, err)
			if errors.Is(err, node.ErrLimit) {
				ps.limited.Add(1)
			}
			continue
		}
		fails = 0
		ps.sent.Add(1)
	}
}

func (ps *provideSender) fail(n int, err error) {
	ps.failed.Add(int64(n))
	if err != nil {
		ps.mu.Lock()
		ps.last = err
		ps.mu.Unlock()
	}
}

func (ps *provideSender) lastErr() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.last == nil {
		return ErrNoPeers
	}
	return ps.last
}

// prefix is a region of the keyspace: the points whose first bits equal
// those of key. The bits of key past bits are zero, so that equal
// regions compare equal.
type prefix struct {
	key  Key
	bits int
}

// prefixOf is the region of the first bits of k.
func prefixOf(k Key, bits int) prefix {
	p := prefix{bits: bits}
	full := bits / 8
	copy(p.key[:full], k[:full])
	if r := bits % 8; r != 0 {
		p.key[full] = k[full] & (0xff << (8 - r))
	}
	return p
}

func (p prefix) contains(k Key) bool { return CommonPrefixLen(p.key, k) >= p.bits }

// covers reports whether o lies within p.
func (p prefix) covers(o prefix) bool { return p.bits <= o.bits && p.contains(o.key) }

// child is the half of p whose next bit is b. p.bits must be below 256.
func (p prefix) child(b byte) prefix {
	c := p
	if b == 1 {
		c.key[p.bits/8] |= 0x80 >> (p.bits % 8)
	}
	c.bits++
	return c
}

// minDistance is the least distance from k to a point of p.
func (p prefix) minDistance(k Key) Key {
	return prefixOf(p.key.Distance(k), p.bits).key
}

func bitAt(k Key, i int) byte { return k[i/8] >> (7 - i%8) & 1 }

// coverage is a union of prefixes, as a binary trie: a node is covered
// whole, or has the children below which something is.
type coverage struct{ root *coverNode }

type coverNode struct {
	child   [2]*coverNode
	covered bool
}

func (c *coverage) add(p prefix) {
	if c.root == nil {
		c.root = &coverNode{}
	}
	n := c.root
	for i := 0; i < p.bits; i++ {
		if n.covered {
			return
		}
		b := bitAt(p.key, i)
		if n.child[b] == nil {
			n.child[b] = &coverNode{}
		}
		n = n.child[b]
	}
	n.covered = true
	n.child = [2]*coverNode{}
}

// uncovered returns the largest prefix not covered that holds the
// uncovered point nearest to near; false if everything is covered.
func (c *coverage) uncovered(near Key) (prefix, bool) {
	return uncoveredAt(c.root, prefix{}, near)
}

func uncoveredAt(n *coverNode, p prefix, near Key) (prefix, bool) {
	if n == nil {
		return p, true
	}
	if n.covered {
		return prefix{}, false
	}
	if p.bits == len(Key{})*8 {
		return p, true
	}
	// Every point of the half that agrees with near on this bit is
	// nearer to it than every point of the other half.
	b := bitAt(near, p.bits)
	if u, ok := uncoveredAt(n.child[b], p.child(b), near); ok {
		return u, true
	}
	return uncoveredAt(n.child[1-b], p.child(1-b), near)
}

// prefixes lists the covered prefixes.
func (c *coverage) prefixes() []prefix {
	var out []prefix
	var walk func(n *coverNode, p prefix)
	walk = func(n *coverNode, p prefix) {
		if n == nil {
			return
		}
		if n.covered {
			out = append(out, p)
			return
		}
		if p.bits < len(Key{})*8 {
			walk(n.child[0], p.child(0))
			walk(n.child[1], p.child(1))
		}
	}
	walk(c.root, prefix{})
	return out
}

// lookupCover is the prefix a lookup of target proves it has every peer
// of (see the rule above). An answer with fewer than k peers covers the
// whole keyspace if the lookup was complete: every server that answered
// gave all the peers it knows, and none failed that might have known
// more.
func lookupCover(target Key, ids []peer.ID, k int, complete bool) (prefix, bool) {
	if len(ids) == 0 {
		return prefix{}, false
	}
	if len(ids) < k {
		return prefix{}, complete
	}
	c := len(Key{}) * 8
	for _, id := range ids {
		c = min(c, CommonPrefixLen(target, PeerKey(id)))
	}
	if c == len(Key{})*8 {
		return prefix{}, false
	}
	return prefixOf(target, c+1), true
}

// sweep plans a ProvideMany: which lookups to run, and which peers each
// key goes to. It is separate from the network so that the rule can be
// tested against a network of any size.
type sweep struct {
	k      int
	bits   int      // region prefix length
	keys   [][]byte // sorted by points
	points []Key    // KeyOf(keys[i]), ascending
	// lookup returns the K closest peers to target and whether the
	// lookup was complete: no request failed.
	lookup func(target []byte) (ids []peer.ID, complete bool, err error)

	scope    prefix
	scoped   bool
	known    map[peer.ID]Key
	cover    coverage
	lookedUp map[int][]peer.ID // our keys looked up ahead of their turn
	regions  int
	// cplSum and cplN average, over the lookups that returned K peers,
	// the common-prefix length of the K-th with the target: the depth
	// at which a prefix holds about K peers, measured.
	cplSum, cplN int
}

func newSweep(k, bits int, keys [][]byte, points []Key, lookup func([]byte) ([]peer.ID, bool, error)) *sweep {
	return &sweep{
		k: k, bits: bits, keys: keys, points: points, lookup: lookup,
		known:    make(map[peer.ID]Key),
		lookedUp: make(map[int][]peer.ID),
	}
}

// run settles every key in order and gives flush each region's
// allocation: peer to the keys it is among the K closest of.
func (s *sweep) run(flush func(map[peer.ID][][]byte)) error {
	var region prefix
	alloc := make(map[peer.ID][][]byte)
	for i, p := range s.points {
		// The depth is taken again at every key, so that a table too
		// empty to tell (a node just started) does not make the whole
		// keyspace one region once the lookups have measured it.
		bits := s.depth()
		if next := prefixOf(p, bits); i == 0 || next != region {
			if len(alloc) > 0 {
				flush(alloc)
				alloc = make(map[peer.ID][][]byte)
			}
			region = next
			s.regions++
			s.rescope(prefixOf(p, max(bits-1, 0)))
		}
		closest, err := s.settle(i)
		if err != nil {
			return err
		}
		for _, id := range closest {
			alloc[id] = append(alloc[id], s.keys[i])
		}
	}
	if len(alloc) > 0 {
		flush(alloc)
	}
	return nil
}

// depth is the region prefix length: the routing table's estimate, or
// the lookups' if they found the network larger.
func (s *sweep) depth() int {
	b := s.bits
	if s.cplN > 0 {
		b = max(b, s.cplSum/s.cplN)
	}
	return min(b, MaxRegionBits)
}

// rescope keeps what is known of the new scope only: its peers, and the
// covered prefixes within it (a covered prefix around it becomes the
// scope itself, every peer of which is kept).
func (s *sweep) rescope(scope prefix) {
	if s.scoped && s.scope == scope {
		return
	}
	s.scope, s.scoped = scope, true
	for id, k := range s.known {
		if !scope.contains(k) {
			delete(s.known, id)
		}
	}
	old := s.cover.prefixes()
	s.cover = coverage{}
	for _, q := range old {
		switch {
		case q.covers(scope):
			s.cover.add(scope)
		case scope.covers(q):
			s.cover.add(q)
		}
	}
}

// settle runs lookups until key i's K closest peers are known and
// returns them.
func (s *sweep) settle(i int) ([]peer.ID, error) {
	p := s.points[i]
	for tries := 0; ; tries++ {
		if ids, ok := s.lookedUp[i]; ok {
			delete(s.lookedUp, i)
			s.learn(ids)
			return s.closest(p), nil
		}
		closest := s.closest(p)
		u, open := s.cover.uncovered(p)
		if !open {
			return closest, nil
		}
		if len(closest) == s.k {
			far := p.Distance(s.known[closest[len(closest)-1]])
			if md := u.minDistance(p); bytes.Compare(md[:], far[:]) > 0 {
				return closest, nil
			}
		}
		target, idx := s.keys[i], i
		if tries < maxExploreLookups {
			target, idx = s.target(i, u)
		}
		if err := s.explore(target, idx); err != nil {
			return nil, err
		}
	}
}

// target picks what to look up in u, the open part nearest key i: the
// key itself if it lies in u, else the next of our keys in u, else the
// seen peer in u nearest the key, else a random key in u. idx is the
// key's index when the target is one of our keys, else -1.
func (s *sweep) target(i int, u prefix) (target []byte, idx int) {
	p := s.points[i]
	if u.contains(p) {
		return s.keys[i], i
	}
	j, _ := slices.BinarySearchFunc(s.points, u.key, func(a, b Key) int { return bytes.Compare(a[:], b[:]) })
	for j, n := max(j, i+1), 0; j < len(s.points) && n < maxTargetScan && u.contains(s.points[j]); j, n = j+1, n+1 {
		if _, done := s.lookedUp[j]; !done {
			return s.keys[j], j
		}
	}
	var best peer.ID
	var bestKey Key
	for id, k := range s.known {
		if u.contains(k) && (best == "" || p.Closer(k, bestKey)) {
			best, bestKey = id, k
		}
	}
	if best != "" {
		return []byte(best), -1
	}
	if u.bits <= MaxRefreshCPL {
		if b, err := RandomKeyBytes(u.key, u.bits, randReader{}); err == nil {
			return b, -1
		}
	}
	return s.keys[i], i
}

// explore runs one lookup and learns its peers and what it covered.
func (s *sweep) explore(target []byte, idx int) error {
	ids, complete, err := s.lookup(target)
	if err != nil {
		return err
	}
	s.learn(ids)
	if c, ok := lookupCover(KeyOf(target), ids, s.k, complete); ok {
		s.cover.add(c)
		if len(ids) >= s.k {
			s.cplSum += c.bits - 1
			s.cplN++
		}
	}
	if idx >= 0 {
		s.lookedUp[idx] = ids
	}
	return nil
}

func (s *sweep) learn(ids []peer.ID) {
	for _, id := range ids {
		if _, ok := s.known[id]; !ok {
			s.known[id] = PeerKey(id)
		}
	}
}

// closest returns the K known peers closest to p, closest first.
func (s *sweep) closest(p Key) []peer.ID {
	type near struct {
		d  Key
		id peer.ID
	}
	all := make([]near, 0, len(s.known))
	for id, k := range s.known {
		all = append(all, near{p.Distance(k), id})
	}
	slices.SortFunc(all, func(a, b near) int { return bytes.Compare(a.d[:], b.d[:]) })
	out := make([]peer.ID, 0, min(len(all), s.k))
	for _, n := range all[:min(len(all), s.k)] {
		out = append(out, n.id)
	}
	return out
}

// Reprovider announces the keys of a KeyStore again every interval, by
// ProvideMany. Its goroutine belongs to the DHT and ends with it.
type Reprovider struct {
	d        *DHT
	ks       *KeyStore
	interval time.Duration

	mu   sync.Mutex
	last ReprovideStats
	at   time.Time
	err  error
}

// StartReprovider starts reproviding ks every interval
// (DefaultReprovideInterval if interval <= 0), the first time
// ReprovideStartDelay after the call. Start one per KeyStore.
func (d *DHT) StartReprovider(ks *KeyStore, interval time.Duration) *Reprovider {
	if interval <= 0 {
		interval = DefaultReprovideInterval
	}
	r := &Reprovider{d: d, ks: ks, interval: interval}
	d.spawn(r.loop) // nothing runs on a closed DHT
	return r
}

func (r *Reprovider) loop() {
	t := time.NewTimer(ReprovideStartDelay)
	defer t.Stop()
	for {
		select {
		case <-r.d.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		st, err := r.d.ProvideMany(r.d.ctx, r.ks.Keys())
		if err != nil && r.d.ctx.Err() == nil {
			r.d.log.Info("kademlia reprovide failed", "keys", st.Keys, "err", err)
		}
		r.mu.Lock()
		r.last, r.at, r.err = st, start, err
		r.mu.Unlock()
		// The period runs from start to start; a run longer than the
		// interval is followed by the next at once.
		t.Reset(max(r.interval-time.Since(start), 0))
	}
}

// LastRun returns the figures of the last reprovide and when it started;
// the zero time before the first.
func (r *Reprovider) LastRun() (ReprovideStats, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.at
}

// LastErr is the error of the last reprovide, nil if it succeeded.
func (r *Reprovider) LastErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
