package peer

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mote-p2p/mote/wire/multiaddr"
)

// Address TTLs, with go-libp2p's meanings. The two largest never expire;
// ConnectedAddrTTL marks addresses learned from a live connection, which
// SetConnected(id, false) downgrades to RecentlyConnectedAddrTTL.
const (
	// PermanentAddrTTL is for addresses configured by the user (bootstrap
	// peers, peering): they never expire.
	PermanentAddrTTL time.Duration = math.MaxInt64
	// ConnectedAddrTTL is for addresses of a peer while connected.
	ConnectedAddrTTL time.Duration = math.MaxInt64 - 1
	// RecentlyConnectedAddrTTL keeps a disconnected peer's addresses long
	// enough to reconnect after a transient failure.
	RecentlyConnectedAddrTTL = 10 * time.Minute
	// TempAddrTTL is for addresses heard second-hand (DHT, PX) and not yet
	// confirmed by a connection.
	TempAddrTTL = 2 * time.Minute
)

// Store defaults, used for zero (or negative) StoreConfig fields.
const (
	DefaultMaxPeers            = 1024
	DefaultMaxAddrsPerPeer     = 64
	DefaultMaxProtocolsPerPeer = 256
	// DefaultMaxAddrBytesPerPeer fits 37 addresses of the longest kind
	// Kubo advertises (/ip4/x/udp/y/quic-v1/webtransport with two
	// certhashes: 86 bytes in 6 components, costing 436), several times
	// the 10 or so a Kubo node has, but only 5 at the MaxAddrLen and
	// MaxComponents limits (3144 each). 64 connected peers sending the
	// worst then hold 1 MiB.
	DefaultMaxAddrBytesPerPeer = 16 << 10
	// DefaultMaxAddrBytes is 8 KiB per peer at DefaultMaxPeers, several
	// times what real peers' addresses cost on average.
	DefaultMaxAddrBytes = 8 << 20

	// addrEntryCost and componentCost are what the byte budgets charge
	// for a stored address, besides twice its binary length (held once by
	// the parsed address and once as addrInfo.key): addrEntryCost is the
	// size of an addrInfo and componentCost that of a multiaddr.Component
	// (a pointer, a string header and an int), on 64-bit platforms. A
	// test checks them against unsafe.Sizeof. Allocator rounding is left
	// out.
	addrEntryCost = 72
	componentCost = 32
	// sweepInterval bounds how long expired addresses keep their bytes.
	// Expiry is otherwise lazy, checked when a peer's addresses are read
	// or added, and a peer that never comes back would keep them until
	// evicted. A sweep visits every address, so mutating calls start one
	// at most this often; a full budget may start one once per
	// fullSweepInterval.
	sweepInterval     = time.Minute
	fullSweepInterval = time.Second

	// maxProtocolLen matches multistream-select's message limit: a longer
	// protocol ID could never have been negotiated.
	maxProtocolLen = 1024
	// maxAgentLen bounds a stored agent version string; it is for display.
	maxAgentLen = 256
	// latencySmoothing is the EWMA weight of a new latency sample, as in
	// go-libp2p's peerstore.
	latencySmoothing = 0.1
)

// ErrStoreFull is returned (wrapped) when a new peer cannot be added
// because every stored peer is connected and the store is at MaxPeers.
var ErrStoreFull = errors.New("peer store full of connected peers")

// StoreConfig bounds a Store. Zero fields take the defaults.
type StoreConfig struct {
	// MaxPeers is the most peers kept (default 1024). When full, adding a
	// peer evicts the disconnected peer updated least recently; connected
	// peers are never evicted, so keep this above the connection limit.
	MaxPeers int
	// MaxAddrsPerPeer bounds each peer's address set (default 64). When
	// full, a new address replaces the one expiring soonest, if it outlives it.
	MaxAddrsPerPeer int
	// MaxProtocolsPerPeer bounds each peer's protocol list (default 256);
	// extra protocols are dropped.
	MaxProtocolsPerPeer int
	// MaxAddrBytesPerPeer bounds the memory each peer's addresses take
	// (default 16 KiB), since a count alone lets long addresses cost
	// far more than short ones. An address costs 72 + 2×(binary length)
	// + 32×(components) bytes. A new address over the budget is handled
	// as when MaxAddrsPerPeer is reached: it replaces the one expiring
	// soonest if it outlives it and the replacement fits, and is dropped
	// otherwise.
	MaxAddrBytesPerPeer int
	// MaxAddrBytes bounds the memory all addresses take, costed as for
	// MaxAddrBytesPerPeer (default 8 MiB). When full, expired addresses
	// are swept and then disconnected peers are evicted, least recently
	// updated first, as for MaxPeers; an address that still does not fit
	// is dropped.
	MaxAddrBytes int
}

// Store is a bounded, concurrency-safe record of what is known about
// other peers: addresses with expiry, protocols, keys, agent, latency and
// the latest signed peer record. Mutating methods create the peer if
// needed; read methods never do. Reads return copies.
type Store struct {
	cfg StoreConfig
	// now is the clock; tests in this package replace it.
	now func() time.Time

	mu    sync.Mutex
	peers map[ID]*peerInfo
	// idle orders disconnected peers, most recently updated at the
	// front, so eviction is O(1). Connected peers are not in it.
	idle *list.List
	// interned holds the protocol IDs shared by peers' lists (intern),
	// at most maxInterned of them.
	interned map[string]*protoEntry
	// addrBytes is the cost of all stored addresses (addrCost), kept
	// exactly as addresses come and go; lastSweep is when expired ones
	// were last dropped from every peer.
	addrBytes int
	lastSweep time.Time
}

// peerInfo is everything stored about one peer.
type peerInfo struct {
	addrs       []addrInfo
	addrBytes   int           // addrCost of addrs
	protos      []*protoEntry // searched linearly (short lists)
	key         PublicKey
	agent       *protoEntry // interned with the protocol IDs: peers share a few agents
	version     *protoEntry // identify's protocol version, e.g. "ipfs/0.1.0"
	latency     time.Duration
	record      []byte
	recordSeq   uint64
	elem        *list.Element // in Store.idle iff !connected
	haveLatency bool          // the flags together: 8 bytes less per peer
	haveRecord  bool
	connected   bool
}

// addrInfo is one stored address; a zero expires means never.
type addrInfo struct {
	addr    multiaddr.Multiaddr
	key     string // binary form, for equality
	ttl     time.Duration
	expires time.Time
}

// NewStore returns an empty store bounded by cfg.
func NewStore(cfg StoreConfig) *Store {
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.MaxAddrsPerPeer <= 0 {
		cfg.MaxAddrsPerPeer = DefaultMaxAddrsPerPeer
	}
	if cfg.MaxProtocolsPerPeer <= 0 {
		cfg.MaxProtocolsPerPeer = DefaultMaxProtocolsPerPeer
	}
	if cfg.MaxAddrBytesPerPeer <= 0 {
		cfg.MaxAddrBytesPerPeer = DefaultMaxAddrBytesPerPeer
	}
	if cfg.MaxAddrBytes <= 0 {
		cfg.MaxAddrBytes = DefaultMaxAddrBytes
	}
	return &Store{
		cfg:      cfg,
		now:      time.Now,
		peers:    make(map[ID]*peerInfo),
		idle:     list.New(),
		interned: make(map[string]*protoEntry),
	}
}

// lookup returns id's entry, creating it if needed, and marks it as just
// updated. It returns nil when id is invalid or the store is full of
// connected peers. s.mu must be held.
func (s *Store) lookup(id ID) *peerInfo {
	if p, ok := s.peers[id]; ok {
		if p.elem != nil {
			s.idle.MoveToFront(p.elem)
		}
		return p
	}
	if id.Validate() != nil {
		return nil
	}
	if len(s.peers) >= s.cfg.MaxPeers {
		back := s.idle.Back()
		if back == nil {
			return nil
		}
		s.removeLocked(back.Value.(ID))
	}
	p := &peerInfo{}
	p.elem = s.idle.PushFront(id)
	s.peers[id] = p
	return p
}

// removeLocked forgets id. Eviction and Remove both come here, so this
// is where a departing peer's protocol IDs are released. s.mu must be held.
func (s *Store) removeLocked(id ID) {
	p, ok := s.peers[id]
	if !ok {
		return
	}
	if p.elem != nil {
		s.idle.Remove(p.elem)
	}
	s.release(p.protos)
	s.releaseOne(p.agent)
	s.releaseOne(p.version)
	s.addrBytes -= p.addrBytes
	delete(s.peers, id)
}

// expiry converts a TTL into an expiry time; zero means never.
func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl >= ConnectedAddrTTL {
		return time.Time{}
	}
	return now.Add(ttl)
}

// outlives reports whether expiry a is later than b (zero = never).
func outlives(a, b time.Time) bool {
	if a.IsZero() {
		return !b.IsZero()
	}
	return !b.IsZero() && a.After(b)
}

// addrCost is what the byte budgets charge for a stored address; see
// addrEntryCost.
func addrCost(a addrInfo) int {
	return addrEntryCost + 2*len(a.key) + componentCost*len(a.addr)
}

// pruneAddrs drops p's expired addresses in place, releasing their
// bytes. s.mu must be held.
func (s *Store) pruneAddrs(p *peerInfo, now time.Time) {
	p.addrs = slices.DeleteFunc(p.addrs, func(a addrInfo) bool {
		if a.expires.IsZero() || now.Before(a.expires) {
			return false
		}
		p.addrBytes -= addrCost(a)
		s.addrBytes -= addrCost(a)
		return true
	})
}

// clearAddrs drops all of p's addresses. s.mu must be held.
func (s *Store) clearAddrs(p *peerInfo) {
	s.addrBytes -= p.addrBytes
	p.addrs, p.addrBytes = nil, 0
}

// maybeSweep prunes every peer's addresses if the last sweep is
// sweepInterval old. s.mu must be held.
func (s *Store) maybeSweep(now time.Time) {
	if now.Sub(s.lastSweep) >= sweepInterval {
		s.sweep(now, nil)
	}
}

// sweep prunes the addresses of every peer but skip. s.mu must be held.
func (s *Store) sweep(now time.Time, skip *peerInfo) {
	s.lastSweep = now
	for _, p := range s.peers {
		if p != skip && p.addrBytes > 0 {
			s.pruneAddrs(p, now)
		}
	}
}

// makeRoom reports whether n more address bytes fit MaxAddrBytes, making
// room if needed: by sweeping expired addresses, then by evicting the
// disconnected peers updated least recently that hold addresses, never
// keep. keep's addresses are left as they are. s.mu must be held.
func (s *Store) makeRoom(n int, keep *peerInfo, now time.Time) bool {
	if s.addrBytes+n <= s.cfg.MaxAddrBytes {
		return true
	}
	if now.Sub(s.lastSweep) >= fullSweepInterval {
		s.sweep(now, keep)
	}
	for e := s.idle.Back(); e != nil && s.addrBytes+n > s.cfg.MaxAddrBytes; {
		prev := e.Prev()
		if id := e.Value.(ID); s.peers[id] != keep && s.peers[id].addrBytes > 0 {
			s.removeLocked(id)
		}
		e = prev
	}
	return s.addrBytes+n <= s.cfg.MaxAddrBytes
}

// AddAddrs adds addrs for id, valid for ttl. An address already known
// keeps the later of its old and new expiry. ttl <= 0 adds nothing. It
// returns false if the peer could not be stored (invalid ID, or the store
// is full of connected peers).
func (s *Store) AddAddrs(id ID, addrs []multiaddr.Multiaddr, ttl time.Duration) bool {
	if ttl <= 0 || len(addrs) == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.lookup(id)
	if p == nil {
		return false
	}
	now := s.now()
	s.maybeSweep(now)
	s.pruneAddrs(p, now)
	for _, a := range addrs {
		s.addAddrLocked(p, a, ttl, now)
	}
	return true
}

// addAddrLocked merges one address into p. s.mu must be held.
func (s *Store) addAddrLocked(p *peerInfo, a multiaddr.Multiaddr, ttl time.Duration, now time.Time) {
	b := a.Bytes()
	if len(b) == 0 {
		return
	}
	exp := expiry(now, ttl)
	for i := range p.addrs {
		e := &p.addrs[i]
		if e.key != string(b) {
			continue
		}
		if outlives(exp, e.expires) {
			e.expires, e.ttl = exp, ttl
		} else if exp.IsZero() && ttl > e.ttl {
			e.ttl = ttl // Permanent outranks Connected; neither expires
		}
		return
	}
	ent := addrInfo{addr: a, key: string(b), ttl: ttl, expires: exp}
	cost := addrCost(ent)
	// ent goes at i: appended, or in place of an address freeing freed
	// bytes when p is full in count or bytes.
	i, freed := len(p.addrs), 0
	if len(p.addrs) >= s.cfg.MaxAddrsPerPeer || p.addrBytes+cost > s.cfg.MaxAddrBytesPerPeer {
		i = soonestExpiring(p.addrs)
		if i < 0 || !outlives(exp, p.addrs[i].expires) {
			return
		}
		freed = addrCost(p.addrs[i])
		if p.addrBytes-freed+cost > s.cfg.MaxAddrBytesPerPeer {
			return
		}
	}
	if !s.makeRoom(cost-freed, p, now) {
		return
	}
	if i == len(p.addrs) {
		p.addrs = append(p.addrs, ent)
	} else {
		p.addrs[i] = ent
	}
	p.addrBytes += cost - freed
	s.addrBytes += cost - freed
}

// soonestExpiring returns the index of the address expiring first, or -1
// if none expires.
func soonestExpiring(addrs []addrInfo) int {
	soonest := -1
	for i := range addrs {
		if addrs[i].expires.IsZero() {
			continue
		}
		if soonest < 0 || addrs[i].expires.Before(addrs[soonest].expires) {
			soonest = i
		}
	}
	return soonest
}

// SetAddrs replaces id's address set with addrs, valid for ttl; ttl <= 0
// clears it. The return value is as for AddAddrs.
func (s *Store) SetAddrs(id ID, addrs []multiaddr.Multiaddr, ttl time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.maybeSweep(now)
	if ttl <= 0 || len(addrs) == 0 {
		if p, ok := s.peers[id]; ok {
			s.clearAddrs(p)
			s.lookup(id)
		}
		return true
	}
	p := s.lookup(id)
	if p == nil {
		return false
	}
	s.clearAddrs(p)
	for _, a := range addrs {
		s.addAddrLocked(p, a, ttl, now)
	}
	return true
}

// Addrs returns id's unexpired addresses, oldest first.
func (s *Store) Addrs(id ID) []multiaddr.Multiaddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.peers[id]
	if !ok {
		return nil
	}
	s.pruneAddrs(p, s.now())
	if len(p.addrs) == 0 {
		return nil
	}
	out := make([]multiaddr.Multiaddr, len(p.addrs))
	for i, a := range p.addrs {
		out[i] = a.addr
	}
	return out
}

// SetProtocols replaces id's protocol list. Duplicates, empty strings and
// IDs over 1024 bytes are dropped, as is anything past MaxProtocolsPerPeer.
func (s *Store) SetProtocols(id ID, protos []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.lookup(id)
	if p == nil {
		return
	}
	list := make([]*protoEntry, 0, min(len(protos), s.cfg.MaxProtocolsPerPeer))
	var seen map[string]struct{} // for long lists only: dedup stays linear in n
	if len(protos) > 32 {
		seen = make(map[string]struct{}, len(protos))
	}
	for _, pr := range protos {
		if len(list) >= s.cfg.MaxProtocolsPerPeer {
			break
		}
		if pr == "" || len(pr) > maxProtocolLen {
			continue
		}
		if seen != nil {
			if _, dup := seen[pr]; dup {
				continue
			}
			seen[pr] = struct{}{}
		} else if hasProto(list, pr) {
			continue
		}
		list = append(list, s.intern(pr))
	}
	// Release only after interning the new list, so IDs in both lists
	// keep their entries instead of being deleted and copied again.
	s.release(p.protos)
	p.protos = list
}

// maxInterned bounds the protocol IDs the store shares between peers.
const maxInterned = 4096

// protoEntry is one stored protocol ID. Peers listing the same ID share
// one entry through Store.interned, and refs counts the lists holding
// it, so that the entry leaves the table with the last of them: IDs a
// flooding peer sent go when it goes, instead of filling the table for
// good. An entry made while the table was full is private to one list,
// has refs 0 and is not in the table.
type protoEntry struct {
	id   string
	refs int
}

// intern returns an entry for pr, holding one reference to it for the
// caller's list: peers mostly speak the same few protocols, and a copy
// per peer would cost more than the rest of its entry. The copy also
// keeps a substring of a large message buffer from being retained. With
// maxInterned IDs shared, a new one gets a private entry, which costs a
// copy per peer but stays within the per-peer limits. s.mu must be held.
func (s *Store) intern(pr string) *protoEntry {
	if e, ok := s.interned[pr]; ok {
		e.refs++
		return e
	}
	e := &protoEntry{id: strings.Clone(pr)}
	if len(s.interned) < maxInterned {
		e.refs = 1
		s.interned[e.id] = e
	}
	return e
}

// release drops the references list holds, deleting entries no list
// holds any more. Every path that discards a peer's protocol list must
// call it. s.mu must be held.
func (s *Store) release(list []*protoEntry) {
	for _, e := range list {
		if e.refs == 0 {
			continue // private: not in the table
		}
		e.refs--
		if e.refs == 0 {
			delete(s.interned, e.id)
		}
	}
}

// releaseOne is release for a single entry, which may be nil.
func (s *Store) releaseOne(e *protoEntry) {
	if e != nil {
		s.release([]*protoEntry{e})
	}
}

// hasProto reports whether list holds the protocol ID pr.
func hasProto(list []*protoEntry, pr string) bool {
	for _, e := range list {
		if e.id == pr {
			return true
		}
	}
	return false
}

// Protocols returns id's protocols in the order they were set.
func (s *Store) Protocols(id ID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.peers[id]
	if !ok || len(p.protos) == 0 {
		return nil
	}
	out := make([]string, len(p.protos))
	for i, e := range p.protos {
		out[i] = e.id
	}
	return out
}

// SupportsProtocol reports whether id is known to speak proto.
func (s *Store) SupportsProtocol(id ID, proto string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.peers[id]
	if !ok {
		return false
	}
	return hasProto(p.protos, proto)
}

// SetPublicKey records id's key, which must be the key id was derived
// from (the error wraps ErrIDMismatch otherwise, or ErrStoreFull).
func (s *Store) SetPublicKey(id ID, k PublicKey) error {
	if !id.MatchesPublicKey(k) {
		return fmt.Errorf("store public key for %s: %w", id.ShortString(), ErrIDMismatch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.lookup(id)
	if p == nil {
		return fmt.Errorf("store public key for %s: %w", id.ShortString(), ErrStoreFull)
	}
	p.key = k
	return nil
}

// PublicKey returns id's key: the stored one, else the one embedded in an
// identity-multihash ID, else nil.
func (s *Store) PublicKey(id ID) PublicKey {
	s.mu.Lock()
	p, ok := s.peers[id]
	var k PublicKey
	if ok {
		k = p.key
	}
	s.mu.Unlock()
	if k != nil {
		return k
	}
	k, err := id.PublicKey()
	if err != nil {
		return nil
	}
	return k
}

// SetAgent records id's agent version (from identify), truncated to 256
// bytes since it is only displayed.
func (s *Store) SetAgent(id ID, agent string) {
	s.setVersion(id, agent, func(p *peerInfo) **protoEntry { return &p.agent })
}

// SetProtocolVersion records the protocol version id gave in identify
// (e.g. "ipfs/0.1.0"), truncated to 256 bytes.
func (s *Store) SetProtocolVersion(id ID, v string) {
	s.setVersion(id, v, func(p *peerInfo) **protoEntry { return &p.version })
}

func (s *Store) setVersion(id ID, v string, field func(*peerInfo) **protoEntry) {
	if len(v) > maxAgentLen {
		v = strings.ToValidUTF8(v[:maxAgentLen], "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.lookup(id)
	if p == nil {
		return
	}
	f := field(p)
	if *f != nil && (*f).id == v {
		return
	}
	s.releaseOne(*f)
	*f = nil
	if v != "" {
		*f = s.intern(v)
	}
}

// Agent returns id's agent version, or "".
func (s *Store) Agent(id ID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[id]; ok && p.agent != nil {
		return p.agent.id
	}
	return ""
}

// ProtocolVersion returns the protocol version id gave in identify, or "".
func (s *Store) ProtocolVersion(id ID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[id]; ok && p.version != nil {
		return p.version.id
	}
	return ""
}

// RecordLatency folds a round-trip sample into id's latency estimate, an
// exponentially weighted moving average giving the new sample weight 0.1
// (the first sample is taken as is). Negative samples are ignored.
func (s *Store) RecordLatency(id ID, d time.Duration) {
	if d < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.lookup(id)
	if p == nil {
		return
	}
	if !p.haveLatency {
		p.latency, p.haveLatency = d, true
		return
	}
	p.latency = time.Duration((1-latencySmoothing)*float64(p.latency) + latencySmoothing*float64(d))
}

// Latency returns id's latency estimate, or 0 if there is none.
func (s *Store) Latency(id ID) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[id]; ok {
		return p.latency
	}
	return 0
}

// SetSignedRecord stores envelope, the marshalled signed envelope of rec,
// as id's peer record, unless a record with a higher Seq is already
// stored. The caller must have verified it (OpenPeerRecord); rec.ID must
// be id. It reports whether the record was stored. The record's addresses
// are not added; call AddAddrs for that.
func (s *Store) SetSignedRecord(id ID, rec *PeerRecord, envelope []byte) bool {
	if rec == nil || rec.ID != id || len(envelope) == 0 || len(envelope) > MaxEnvelopeSize {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[id]; ok && p.haveRecord && rec.Seq < p.recordSeq {
		return false
	}
	p := s.lookup(id)
	if p == nil {
		return false
	}
	p.record, p.recordSeq, p.haveRecord = bytes.Clone(envelope), rec.Seq, true
	return true
}

// SignedRecord returns the stored signed envelope for id, or nil.
func (s *Store) SignedRecord(id ID) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[id]; ok {
		return bytes.Clone(p.record)
	}
	return nil
}

// SetConnected marks id as connected or not. Connected peers are never
// evicted. On disconnect, addresses held with ConnectedAddrTTL fall back
// to RecentlyConnectedAddrTTL, and the peer's protocols are dropped (its
// key, agent, latency and record stay). Marking an unknown peer disconnected does
// nothing; marking a new peer connected fails silently if the store is
// full of connected peers.
func (s *Store) SetConnected(id ID, connected bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !connected {
		if _, ok := s.peers[id]; !ok {
			return
		}
	}
	p := s.lookup(id)
	if p == nil || p.connected == connected {
		return
	}
	p.connected = connected
	if connected {
		s.idle.Remove(p.elem)
		p.elem = nil
		return
	}
	p.elem = s.idle.PushFront(id)
	// What the peer said it speaks is dropped with its last connection
	// (identify tells it again on the next): go-libp2p's peerstore
	// manager drops it a minute after, and keeping it means peers that
	// come and go with long junk lists fill memory for as long as they
	// stay in the store.
	s.release(p.protos)
	p.protos = nil
	now := s.now()
	exp := now.Add(RecentlyConnectedAddrTTL)
	for i := range p.addrs {
		if p.addrs[i].ttl == ConnectedAddrTTL {
			p.addrs[i].ttl, p.addrs[i].expires = RecentlyConnectedAddrTTL, exp
		}
	}
	// Disconnects are what leave addresses to expire unread, so they
	// also drive the sweep.
	s.maybeSweep(now)
}

// Peers returns the stored peer IDs in byte order.
func (s *Store) Peers() []ID {
	s.mu.Lock()
	out := make([]ID, 0, len(s.peers))
	for id := range s.peers {
		out = append(out, id)
	}
	s.mu.Unlock()
	slices.Sort(out)
	return out
}

// Len returns the number of stored peers.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

// storedAddrBytes returns the cost of all stored addresses, for tests.
func (s *Store) storedAddrBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrBytes
}

// Remove forgets everything about id, connected or not.
func (s *Store) Remove(id ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(id)
}
