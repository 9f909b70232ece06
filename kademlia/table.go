package kademlia

// table.go holds the routing table: k-buckets by common-prefix length
// with self, split on demand, and the IP diversity filter the WAN DHT
// applies to them. It is a pure data structure: the liveness checks that
// decide evictions belong to the caller.
//
// Sources: go-libp2p-kbucket v0.9 table.go, bucket.go,
// peerdiversity/filter.go; go-libp2p-kad-dht v0.42 rt_diversity_filter.go,
// amino/defaults.go.

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mote-p2p/mote/peer"
)

// Defaults of TableConfig.
const (
	// DefaultMaxPerGroupPerBucket bounds the peers of one IP group with
	// the same common-prefix length (amino.DefaultMaxPeersPerIPGroupPerCpl,
	// go-libp2p-kad-dht v0.42 amino/defaults.go).
	DefaultMaxPerGroupPerBucket = 2
	// DefaultMaxPerGroup bounds the peers of one IP group in the whole
	// table (amino.DefaultMaxPeersPerIPGroup).
	DefaultMaxPerGroup = 3
)

// maxBuckets is one bucket per possible common-prefix length below 256
// (256 is self alone).
const maxBuckets = 256

// maxGroupsPerPeer bounds the distinct IP groups one entry records. A
// peer reached in more groups than this is refused: ignoring the extra
// groups would let it escape the filter, and a genuine node is reachable
// from a handful at most.
const maxGroupsPerPeer = 16

// IPv4 and IPv6 group prefix lengths (go-libp2p-kbucket v0.9
// peerdiversity/filter.go IPGroupKey).
const (
	ipv4GroupBits = 16
	ipv6GroupBits = 32
)

// cgnat is the shared address space of carrier-grade NAT (RFC 6598),
// which netip does not classify.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// TableConfig configures a Table. Zero fields take the Amino defaults.
type TableConfig struct {
	// BucketSize is the capacity of each bucket; zero or negative means K
	// (20, amino.DefaultBucketSize).
	BucketSize int
	// MaxPerGroupPerBucket bounds the peers of one IP group that share a
	// common-prefix length with self; zero means
	// DefaultMaxPerGroupPerBucket, negative disables the bound. Like go,
	// it counts by the true common-prefix length, which is the bucket
	// except in the last bucket, which holds every length from its index
	// up.
	MaxPerGroupPerBucket int
	// MaxPerGroup bounds the peers of one IP group in the whole table;
	// zero means DefaultMaxPerGroup, negative disables the bound. The LAN
	// DHT and simulations disable both.
	MaxPerGroup int
}

// withDefaults resolves zero fields; disabled bounds become -1.
func (c TableConfig) withDefaults() TableConfig {
	if c.BucketSize <= 0 {
		c.BucketSize = K
	}
	switch {
	case c.MaxPerGroupPerBucket == 0:
		c.MaxPerGroupPerBucket = DefaultMaxPerGroupPerBucket
	case c.MaxPerGroupPerBucket < 0:
		c.MaxPerGroupPerBucket = -1
	}
	switch {
	case c.MaxPerGroup == 0:
		c.MaxPerGroup = DefaultMaxPerGroup
	case c.MaxPerGroup < 0:
		c.MaxPerGroup = -1
	}
	return c
}

// AddResult is the outcome of Table.Add and Table.Replace.
type AddResult int

// Add results.
const (
	// Added means the peer is now in the table.
	Added AddResult = iota
	// Updated means the peer was already in the table; its LastSeen was
	// refreshed and nothing else changed.
	Updated
	// BucketFull means the peer's bucket has no room; Add also returns
	// the bucket's least recently seen peer, which the caller should
	// liveness-check and, if it is dead, Replace.
	BucketFull
	// RefusedDiversity means one of the peer's IP groups already has as
	// many peers as the diversity filter allows.
	RefusedDiversity
	// RefusedSelf means the peer is the table's own ID.
	RefusedSelf
)

// String names r for logs and statistics.
func (r AddResult) String() string {
	switch r {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case BucketFull:
		return "bucket full"
	case RefusedDiversity:
		return "refused: IP diversity"
	case RefusedSelf:
		return "refused: self"
	}
	return "AddResult(" + strconv.Itoa(int(r)) + ")"
}

// BucketInfo describes one bucket, for statistics.
type BucketInfo struct {
	// CPL is the bucket's index: the common-prefix length with self of
	// its peers, or the least of them for the last bucket.
	CPL int
	// Peers are the bucket's entries, oldest first.
	Peers []EntryInfo
}

// EntryInfo describes one routing-table entry.
type EntryInfo struct {
	// ID is the peer.
	ID peer.ID
	// AddedAt is when the peer entered the table.
	AddedAt time.Time
	// LastSeen is the last time it was added again or reported by Seen;
	// the least recently seen peer is the eviction candidate.
	LastSeen time.Time
	// LastUseful is the last time it answered a query usefully
	// (MarkUseful), zero if never: go's lastUsefulAt.
	LastUseful time.Time
}

// entry is one peer of the table.
type entry struct {
	id         peer.ID
	key        Key
	cpl        int            // CommonPrefixLen(self, key)
	groups     []netip.Prefix // distinct public IP groups counted for it
	addedAt    time.Time
	lastSeen   time.Time
	lastUseful time.Time
}

// cplGroup keys the per-common-prefix-length group counts.
type cplGroup struct {
	cpl   int
	group netip.Prefix
}

// Table is a Kademlia routing table in go-libp2p-kbucket's layout: bucket
// i holds the peers whose common-prefix length with self is i, except the
// last, which holds every peer whose length is at least its index and is
// split when it overflows. Memory is therefore proportional to the peers,
// not to the 256 possible lengths. A Table is safe for concurrent use.
type Table struct {
	self    peer.ID
	selfKey Key
	cfg     TableConfig

	mu        sync.RWMutex
	buckets   [][]*entry // never empty; each in insertion order
	peers     map[peer.ID]*entry
	groups    map[netip.Prefix]int // peers per IP group, whole table
	cplGroups map[cplGroup]int     // peers per IP group and length
}

// NewTable returns an empty table for the node self.
func NewTable(self peer.ID, cfg TableConfig) *Table {
	return &Table{
		self:      self,
		selfKey:   PeerKey(self),
		cfg:       cfg.withDefaults(),
		buckets:   make([][]*entry, 1),
		peers:     make(map[peer.ID]*entry),
		groups:    make(map[netip.Prefix]int),
		cplGroups: make(map[cplGroup]int),
	}
}

// Add inserts id, reached at ips, into the table, or refreshes its
// LastSeen if it is there already. ips are the addresses the peer is
// connected from, which place it in IP groups for the diversity filter;
// only public addresses count, so loopback and private networks are
// never constrained. On BucketFull the second value is the eviction
// candidate; it is empty otherwise.
func (t *Table) Add(id peer.ID, ips []netip.Addr, now time.Time) (AddResult, peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.add(id, ips, now)
}

// Replace removes old, if present, and adds new in its place. The
// diversity filter still applies to new; old stays removed whatever the
// outcome, since the caller replaces it because it failed a liveness
// check.
func (t *Table) Replace(old, new peer.ID, ips []netip.Addr, now time.Time) AddResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old != new {
		t.remove(old)
	}
	res, _ := t.add(new, ips, now)
	return res
}

func (t *Table) add(id peer.ID, ips []netip.Addr, now time.Time) (AddResult, peer.ID) {
	if id == t.self {
		return RefusedSelf, ""
	}
	if e, ok := t.peers[id]; ok {
		e.lastSeen = now
		return Updated, ""
	}
	key := PeerKey(id)
	cpl := CommonPrefixLen(t.selfKey, key)
	groups, ok := t.admitGroups(cpl, ips)
	if !ok {
		return RefusedDiversity, ""
	}

	b := t.bucketFor(cpl)
	if len(t.buckets[b]) >= t.cfg.BucketSize {
		// Only the last bucket covers more than one length, so only it
		// can make room by splitting; go keeps splitting while the new
		// last bucket overflows.
		for b == len(t.buckets)-1 && len(t.buckets[b]) >= t.cfg.BucketSize && len(t.buckets) < maxBuckets {
			t.split()
			b = t.bucketFor(cpl)
		}
		if len(t.buckets[b]) >= t.cfg.BucketSize {
			return BucketFull, leastRecentlySeen(t.buckets[b]).id
		}
	}

	e := &entry{id: id, key: key, cpl: cpl, groups: groups, addedAt: now, lastSeen: now}
	t.buckets[b] = append(t.buckets[b], e)
	t.peers[id] = e
	for _, g := range groups {
		t.groups[g]++
		t.cplGroups[cplGroup{cpl, g}]++
	}
	return Added, ""
}

// admitGroups returns the distinct public IP groups of ips and whether
// each has room for one more peer with length cpl.
func (t *Table) admitGroups(cpl int, ips []netip.Addr) ([]netip.Prefix, bool) {
	if t.cfg.MaxPerGroup < 0 && t.cfg.MaxPerGroupPerBucket < 0 {
		return nil, true
	}
	var groups []netip.Prefix
	for _, ip := range ips {
		g, ok := ipGroup(ip)
		if !ok || slices.Contains(groups, g) {
			continue
		}
		if len(groups) == maxGroupsPerPeer {
			return nil, false
		}
		if t.cfg.MaxPerGroup >= 0 && t.groups[g] >= t.cfg.MaxPerGroup {
			return nil, false
		}
		if t.cfg.MaxPerGroupPerBucket >= 0 && t.cplGroups[cplGroup{cpl, g}] >= t.cfg.MaxPerGroupPerBucket {
			return nil, false
		}
		groups = append(groups, g)
	}
	return groups, true
}

// bucketFor is the index of the bucket that holds length cpl.
func (t *Table) bucketFor(cpl int) int {
	return min(cpl, len(t.buckets)-1)
}

// split moves the peers of the last bucket whose length exceeds its index
// into a new last bucket.
func (t *Table) split() {
	last := len(t.buckets) - 1
	var stay, move []*entry
	for _, e := range t.buckets[last] {
		if e.cpl > last {
			move = append(move, e)
		} else {
			stay = append(stay, e)
		}
	}
	t.buckets[last] = stay
	t.buckets = append(t.buckets, move)
}

// leastRecentlySeen returns the entry of b with the oldest LastSeen, the
// first inserted among equals. b is not empty.
func leastRecentlySeen(b []*entry) *entry {
	lrs := b[0]
	for _, e := range b[1:] {
		if e.lastSeen.Before(lrs.lastSeen) {
			lrs = e
		}
	}
	return lrs
}

// Remove deletes id from the table and frees its IP group slots. It
// reports whether id was there.
func (t *Table) Remove(id peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.remove(id)
}

func (t *Table) remove(id peer.ID) bool {
	e, ok := t.peers[id]
	if !ok {
		return false
	}
	delete(t.peers, id)
	b := t.bucketFor(e.cpl)
	if i := slices.Index(t.buckets[b], e); i >= 0 {
		t.buckets[b] = slices.Delete(t.buckets[b], i, i+1)
	}
	for _, g := range e.groups {
		if t.groups[g]--; t.groups[g] <= 0 {
			delete(t.groups, g)
		}
		k := cplGroup{e.cpl, g}
		if t.cplGroups[k]--; t.cplGroups[k] <= 0 {
			delete(t.cplGroups, k)
		}
	}
	// Fold empty buckets back as go does, so that the bucket count
	// follows the peers: an empty last bucket goes, and an empty
	// second-to-last one is taken over by the last, which may then
	// cover one more length.
	for n := len(t.buckets); n > 1; n = len(t.buckets) {
		switch {
		case len(t.buckets[n-1]) == 0:
			t.buckets[n-1] = nil
			t.buckets = t.buckets[:n-1]
		case len(t.buckets[n-2]) == 0:
			t.buckets[n-2] = t.buckets[n-1]
			t.buckets[n-1] = nil
			t.buckets = t.buckets[:n-1]
		default:
			return true
		}
	}
	return true
}

// Seen records that id was just seen alive, which moves it away from
// eviction. It reports whether id is in the table.
func (t *Table) Seen(id peer.ID, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.peers[id]
	if ok {
		e.lastSeen = now
	}
	return ok
}

// MarkUseful records that id answered a query with something useful. It
// reports whether id is in the table.
func (t *Table) MarkUseful(id peer.ID, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.peers[id]
	if ok {
		e.lastUseful = now
	}
	return ok
}

// UsefulSince reports whether id is in the table and was marked useful at
// or after since; the connection manager protects such peers.
func (t *Table) UsefulSince(id peer.ID, since time.Time) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.peers[id]
	return ok && !e.lastUseful.IsZero() && !e.lastUseful.Before(since)
}

// Contains reports whether id is in the table.
func (t *Table) Contains(id peer.ID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.peers[id]
	return ok
}

// Len is the number of peers in the table.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.peers)
}

// Peers returns every peer of the table, bucket by bucket.
func (t *Table) Peers() []peer.ID {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]peer.ID, 0, len(t.peers))
	for _, b := range t.buckets {
		for _, e := range b {
			out = append(out, e.id)
		}
	}
	return out
}

// Buckets describes every bucket, lowest index first, for statistics
// such as "mote stats dht".
func (t *Table) Buckets() []BucketInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]BucketInfo, len(t.buckets))
	for i, b := range t.buckets {
		out[i].CPL = i
		out[i].Peers = make([]EntryInfo, len(b))
		for j, e := range b {
			out[i].Peers[j] = EntryInfo{ID: e.id, AddedAt: e.addedAt, LastSeen: e.lastSeen, LastUseful: e.lastUseful}
		}
	}
	return out
}

// RefreshTargets returns the common-prefix lengths whose buckets a
// refresh should look up: 0 up to the greatest length of any peer, at
// most MaxRefreshCPL, as go does (GetTrackedCplsForRefresh). An empty
// table yields [0].
func (t *Table) RefreshTargets() []int {
	t.mu.RLock()
	maxCPL := 0
	for i := len(t.buckets) - 1; i >= 0; i-- {
		if len(t.buckets[i]) == 0 {
			continue
		}
		maxCPL = i
		if i == len(t.buckets)-1 {
			for _, e := range t.buckets[i] {
				maxCPL = max(maxCPL, e.cpl)
			}
		}
		break
	}
	t.mu.RUnlock()
	maxCPL = min(maxCPL, MaxRefreshCPL)
	out := make([]int, maxCPL+1)
	for i := range out {
		out[i] = i
	}
	return out
}

// NearestPeers returns the n peers of the table closest to target, closest
// first.
//
// It visits whole buckets in order of distance and sorts only the buckets
// it takes peers from. The order follows from D = self XOR target: a peer
// of bucket i < last shares bits 0..i-1 with self and differs at bit i,
// so its distance to target starts with D's bits 0..i-1 and then the
// inverse of D's bit i, while every peer of the last bucket starts with
// D's bits 0..last-1. Between buckets i < j the first differing bit of
// those prefixes is bit i, so bucket i is the nearer exactly when D's bit
// i is 1. The order is therefore: the buckets below last whose bit is 1,
// ascending, then the last bucket, then those whose bit is 0, descending.
func (t *Table) NearestPeers(target Key, n int) []peer.ID {
	if n <= 0 {
		return nil
	}
	d := t.selfKey.Distance(target)
	bit := func(i int) bool { return d[i/8]&(0x80>>(i%8)) != 0 }

	t.mu.RLock()
	defer t.mu.RUnlock()
	if n > len(t.peers) {
		n = len(t.peers)
	}
	if n == 0 {
		return nil
	}
	type near struct {
		d  Key
		id peer.ID
	}
	found := make([]near, 0, n+t.cfg.BucketSize)
	take := func(b []*entry) {
		start := len(found)
		for _, e := range b {
			found = append(found, near{d: target.Distance(e.key), id: e.id})
		}
		slices.SortFunc(found[start:], func(a, b near) int { return bytes.Compare(a.d[:], b.d[:]) })
	}
	last := len(t.buckets) - 1
	for i := 0; i < last && len(found) < n; i++ {
		if bit(i) {
			take(t.buckets[i])
		}
	}
	if len(found) < n {
		take(t.buckets[last])
	}
	for i := last - 1; i >= 0 && len(found) < n; i-- {
		if !bit(i) {
			take(t.buckets[i])
		}
	}
	out := make([]peer.ID, n)
	for i := range out {
		out[i] = found[i].id
	}
	return out
}

// ipGroup returns the diversity group of ip: its IPv4 /16 or IPv6 /32.
// IPv4-mapped IPv6 addresses count as IPv4. Go puts a few legacy class-A
// blocks (12/8, 17/8, 19/8, 38/8, 48/8, 53/8, 56/8, 73/8) in one /8
// group each; that is left out. For IPv6 go groups by the origin ASN; we
// have no ASN table and use the /32 its comment documents as the
// fallback (go v0.9 actually files every unknown-ASN address under one
// constant key). Addresses that are not public are in no group.
func ipGroup(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap().WithZone("")
	if !isPublic(ip) {
		return netip.Prefix{}, false
	}
	n := ipv6GroupBits
	if ip.Is4() {
		n = ipv4GroupBits
	}
	g, err := ip.Prefix(n)
	return g, err == nil
}

// isPublic reports whether ip could be a peer's address on the public
// internet. Go's WAN DHT only admits peers with public addresses, so its
// filter in practice sees only those; not counting the others keeps
// loopback, LAN and simulated networks unconstrained.
func isPublic(ip netip.Addr) bool {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		ip.IsMulticast() {
		return false
	}
	if ip.Is4() {
		b := ip.As4()
		// 0.0.0.0/8 is "this network" and 255.255.255.255 the limited
		// broadcast (RFC 1122); neither is a unicast peer address.
		if b[0] == 0 || b == [4]byte{255, 255, 255, 255} || cgnat.Contains(ip) {
			return false
		}
	}
	return true
}
