package kademlia

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// MaxProviderKeyLen bounds provider keys. They are multihashes, and go
// refuses ADD_PROVIDER and GET_PROVIDERS keys outside 1 to 80 bytes
// (go-libp2p-kad-dht v0.42 handlers.go).
const MaxProviderKeyLen = 80

// Defaults of ProviderConfig.
const (
	// DefaultProvideValidity is how long a provider record lasts unless
	// its provider renews it, which Kubo does every 22 h
	// (go-libp2p-kad-dht v0.42 amino/defaults.go DefaultProvideValidity).
	DefaultProvideValidity = 48 * time.Hour
	// DefaultProviderAddrTTL is how long the addresses that came with a
	// record are kept: the figure of the spec (kad-dht/README.md,
	// provider records). Go v0.42 keeps them 24 h (amino/defaults.go
	// DefaultProviderAddrTTL); we keep less memory, and a requester that
	// gets a provider without addresses looks its addresses up itself.
	DefaultProviderAddrTTL = 30 * time.Minute
	// DefaultMaxProvidersPerKey bounds the providers kept for one key, so
	// that a popular key cannot eat the store. Ours: a GET_PROVIDERS
	// requester needs a few live providers, not thousands, and go sends
	// only what fits in one 4 MiB message.
	DefaultMaxProvidersPerKey = 64
	// DefaultMaxProviderKeys bounds the keys held (ours).
	DefaultMaxProviderKeys = 1 << 16
	// DefaultMaxProviderRecords bounds the records held, over all keys
	// (ours).
	DefaultMaxProviderRecords = 1 << 18
	// DefaultMaxProviderAddrs bounds the addresses kept for one record
	// (ours; a Kubo node announces about a dozen).
	DefaultMaxProviderAddrs = 16
	// DefaultMaxProviderAddrBytes bounds the binary forms of the
	// addresses kept for one record (ours). A Kubo node's usual dozen,
	// WebTransport and relay addresses included, take 300 to 800 bytes.
	DefaultMaxProviderAddrBytes = 1024
)

// fullSweepGap is the least time, by the callers' clock, between two
// sweeps for expired records that a full store makes on its own. A sweep
// visits every record; without the gap, a peer that keeps renewing the
// record expiring first, and adding records to a full store, could make
// every other ADD_PROVIDER cost a sweep. Expired records then linger at
// most this long past expiry, which is nothing next to a 48 h validity.
const fullSweepGap = time.Minute

var (
	// ErrStoreFull is wrapped by the errors of ProviderStore.Add and
	// ValueStore.Put that refuse a new record because a bound of the
	// store is reached and no expired record could make room.
	ErrStoreFull = errors.New("kademlia: store is full")
	// ErrBadKey is wrapped by the errors about a key (or a provider's
	// peer ID) that a store does not take.
	ErrBadKey = errors.New("kademlia: bad store key")
)

// ProviderConfig bounds a ProviderStore. Each field that is zero (or
// negative) takes its default.
type ProviderConfig struct {
	// Validity is how long a record lasts unless its provider renews it
	// (DefaultProvideValidity, 48 h).
	Validity time.Duration
	// AddrTTL is how long the addresses of a record are kept; the record
	// itself stays until Validity has passed
	// (DefaultProviderAddrTTL, 30 min).
	AddrTTL time.Duration
	// MaxPerKey bounds the records of one key
	// (DefaultMaxProvidersPerKey, 64).
	MaxPerKey int
	// MaxKeys bounds the keys (DefaultMaxProviderKeys, 65,536).
	MaxKeys int
	// MaxRecords bounds the records of all keys together
	// (DefaultMaxProviderRecords, 262,144).
	MaxRecords int
	// MaxAddrs bounds the addresses kept per record
	// (DefaultMaxProviderAddrs, 16).
	MaxAddrs int
	// MaxAddrBytes bounds the memory the addresses of one record take:
	// their binary forms, and a length byte or two each
	// (DefaultMaxProviderAddrBytes, 1 KiB). With MaxRecords it bounds
	// the memory of the whole store.
	MaxAddrBytes int
}

func (c ProviderConfig) withDefaults() ProviderConfig {
	setDuration := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setDuration(&c.Validity, DefaultProvideValidity)
	setDuration(&c.AddrTTL, DefaultProviderAddrTTL)
	set(&c.MaxPerKey, DefaultMaxProvidersPerKey)
	set(&c.MaxKeys, DefaultMaxProviderKeys)
	set(&c.MaxRecords, DefaultMaxProviderRecords)
	set(&c.MaxAddrs, DefaultMaxProviderAddrs)
	set(&c.MaxAddrBytes, DefaultMaxProviderAddrBytes)
	return c
}

// Provider is a provider of a key, as ProviderStore.Get returns it.
type Provider struct {
	// ID is the provider's peer ID.
	ID peer.ID
	// Addrs are the addresses that came with the provider's latest
	// ADD_PROVIDER, nil once the store's AddrTTL has passed since (or if
	// none came). They are the caller's to keep and change.
	Addrs []ma.Multiaddr
}

// ProviderStats are a ProviderStore's size and counters.
type ProviderStats struct {
	// Keys and Records are what the store holds now, expired records
	// not yet swept included.
	Keys, Records int
	// Expired counts records dropped because Validity had passed.
	Expired uint64
	// Evicted counts live records pushed out of a key at MaxPerKey by a
	// new provider.
	Evicted uint64
	// RefusedKeys counts records refused because MaxKeys keys were held.
	RefusedKeys uint64
	// RefusedRecords counts records refused because MaxRecords records
	// were held.
	RefusedRecords uint64
}

// ProviderStore holds the provider records of a DHT server: which peers
// said, in an ADD_PROVIDER, that they have the content of a key. It keeps
// them in memory, bounded per key and in total, and needs no goroutine:
// expired records are dropped by GC, by Get for the key it reads, and by
// Add when the store is full. Every method takes the time, so that the
// caller (and a test) decides what now is. It is safe for concurrent use.
//
// Record lifetimes are measured from the first time the store was given,
// with time.Time.Sub, so that when the callers pass time.Now a wall-clock
// step neither expires the whole store at once nor keeps it forever.
type ProviderStore struct {
	cfg ProviderConfig

	mu sync.Mutex
	// keys maps a key to its records. Most keys have one or a few
	// providers, so a slice, searched linearly, costs less than a map
	// per key.
	keys    map[string][]providerRecord
	records int
	// epoch is the first time the store was given; times are kept as
	// nanoseconds since (ticks).
	epoch   time.Time
	started bool
	// minExpires is at most the earliest expiry of any record: before
	// it, a sweep would find nothing.
	minExpires int64
	lastSweep  int64
	swept      bool

	expired, evicted, refusedKeys, refusedRecords uint64
}

// providerRecord is one provider of a key: 48 bytes, plus the packed
// addresses.
type providerRecord struct {
	// id is not copied: it is normally the ID of a connection, which
	// other parts of the node hold anyway.
	id peer.ID
	// addrs are the binary forms of the addresses, each after its length
	// as a uvarint. A parsed Multiaddr costs 32 bytes a component; its
	// binary form as little as 2, so a peer cannot make us hold more
	// than MaxAddrBytes for its addresses whatever their shape.
	addrs string
	// expires and addrsExpire are in ticks; the record, or its
	// addresses, are live until then, included (go drops a record once
	// its age is over the validity: providers_manager.go).
	expires, addrsExpire int64
}

// NewProviderStore returns an empty store bounded by cfg.
func NewProviderStore(cfg ProviderConfig) *ProviderStore {
	return &ProviderStore{
		cfg:        cfg.withDefaults(),
		keys:       make(map[string][]providerRecord),
		minExpires: math.MaxInt64,
	}
}

// ticks returns now as nanoseconds since the store's epoch.
func (s *ProviderStore) ticks(now time.Time) int64 {
	if !s.started {
		s.epoch, s.started = now, true
	}
	return int64(now.Sub(s.epoch))
}

// Add stores that id provides key, with the addresses it gave, or
// renews the record if id already provides key: its expiry starts again,
// and its addresses are replaced if any of addrs is kept. Of addrs, at
// most MaxAddrs are kept, within MaxAddrBytes, in their order, without
// duplicates; empty ones and ones that could not be parsed back (over
// multiaddr.MaxAddrLen or MaxComponents) are skipped.
//
// The caller makes sure that id is the peer that sent the ADD_PROVIDER:
// a peer may only say that it provides, never that another does.
//
// A new provider of a key that has MaxPerKey of them replaces the one
// whose record expires first: it was renewed longest ago, so its peer is
// the likeliest to be gone. A new record that needs a key beyond MaxKeys,
// or a record beyond MaxRecords, makes the store drop its expired records
// first; if it is still full, Add refuses the record with an error
// wrapping ErrStoreFull. A key that is empty or longer than
// MaxProviderKeyLen, or an invalid id, is refused with ErrBadKey.
func (s *ProviderStore) Add(key []byte, id peer.ID, addrs []ma.Multiaddr, now time.Time) error {
	if len(key) == 0 || len(key) > MaxProviderKeyLen {
		return fmt.Errorf("%w: provider key of %d bytes, want 1 to %d", ErrBadKey, len(key), MaxProviderKeyLen)
	}
	if err := id.Validate(); err != nil {
		return fmt.Errorf("%w: provider ID: %w", ErrBadKey, err)
	}
	packed := packAddrs(addrs, s.cfg.MaxAddrs, s.cfg.MaxAddrBytes)

	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.ticks(now)
	rec := providerRecord{id: id, expires: t + int64(s.cfg.Validity)}
	if packed != "" {
		rec.addrs, rec.addrsExpire = packed, t+int64(s.cfg.AddrTTL)
	}

	recs, ok := s.keys[string(key)]
	for i := range recs {
		if r := &recs[i]; r.id == id {
			r.expires = rec.expires
			if packed != "" {
				r.addrs, r.addrsExpire = rec.addrs, rec.addrsExpire
			}
			return nil
		}
	}
	if ok && len(recs) >= s.cfg.MaxPerKey {
		i := earliestExpiry(recs)
		if recs[i].expires < t {
			s.expired++
		} else {
			s.evicted++
		}
		recs[i] = rec
		s.minExpires = min(s.minExpires, rec.expires)
		return nil
	}

	if err := s.makeRoom(key, t); err != nil {
		return err
	}
	// A sweep may have compacted the key's records, or deleted the key.
	recs, ok = s.keys[string(key)]
	if ok {
		s.keys[string(key)] = appendRecord(recs, rec, s.cfg.MaxPerKey)
	} else {
		s.keys[string(key)] = []providerRecord{rec}
	}
	s.records++
	s.minExpires = min(s.minExpires, rec.expires)
	return nil
}

// makeRoom makes sure a new record of key fits, sweeping expired records
// if it would not.
func (s *ProviderStore) makeRoom(key []byte, t int64) error {
	if s.fits(key) {
		return nil
	}
	if t > s.minExpires && (!s.swept || t-s.lastSweep >= int64(fullSweepGap)) {
		s.sweep(t)
		if s.fits(key) {
			return nil
		}
	}
	if s.records >= s.cfg.MaxRecords {
		s.refusedRecords++
		return fmt.Errorf("%w: %d provider records held", ErrStoreFull, s.records)
	}
	s.refusedKeys++
	return fmt.Errorf("%w: %d provider keys held", ErrStoreFull, len(s.keys))
}

// fits reports whether a new record of key is within MaxRecords and
// MaxKeys.
func (s *ProviderStore) fits(key []byte) bool {
	if s.records >= s.cfg.MaxRecords {
		return false
	}
	_, ok := s.keys[string(key)]
	return ok || len(s.keys) < s.cfg.MaxKeys
}

// earliestExpiry returns the index of the record of recs that expires
// first (the first such, on a tie).
func earliestExpiry(recs []providerRecord) int {
	j := 0
	for i := range recs {
		if recs[i].expires < recs[j].expires {
			j = i
		}
	}
	return j
}

// appendRecord appends rec to recs, growing the backing array by a
// quarter at a time rather than append's doubling: the array is most of a
// key's memory, and keys live for days.
func appendRecord(recs []providerRecord, rec providerRecord, maxLen int) []providerRecord {
	if len(recs) == cap(recs) {
		n := min(maxLen, len(recs)+max(1, len(recs)/4))
		grown := make([]providerRecord, len(recs), n)
		copy(grown, recs)
		recs = grown
	}
	return append(recs, rec)
}

// Get returns up to max of the providers of key whose records have not
// expired (all of them if max <= 0), in random order: go shuffles too, so
// that requesters spread over the providers. It also drops the key's
// expired records. A key that Add would refuse has no providers.
func (s *ProviderStore) Get(key []byte, now time.Time, max int) []Provider {
	if len(key) == 0 || len(key) > MaxProviderKeyLen {
		return nil
	}
	s.mu.Lock()
	t := s.ticks(now)
	recs := s.compactKey(string(key), t)
	n := len(recs)
	if n == 0 {
		s.mu.Unlock()
		return nil
	}
	if max > 0 && max < n {
		n = max
	}
	// The first n of a partial Fisher-Yates shuffle are a uniformly
	// random n of the records, in random order. The stored order means
	// nothing, so the shuffle is done in place.
	for i := range n {
		j := i + rand.IntN(len(recs)-i)
		recs[i], recs[j] = recs[j], recs[i]
	}
	out := make([]Provider, n)
	packed := make([]string, n)
	for i := range n {
		// compactKey cleared the addresses past AddrTTL.
		out[i].ID, packed[i] = recs[i].id, recs[i].addrs
	}
	s.mu.Unlock()

	// Strings are immutable: the addresses are parsed without the lock.
	for i := range out {
		out[i].Addrs = unpackAddrs(packed[i])
	}
	return out
}

// compactKey drops the expired records of key, and the stale addresses
// of the others, and returns the records left.
func (s *ProviderStore) compactKey(key string, t int64) []providerRecord {
	recs, ok := s.keys[key]
	if !ok {
		return nil
	}
	kept := compactRecords(recs, t)
	removed := len(recs) - len(kept)
	s.records -= removed
	s.expired += uint64(removed)
	if len(kept) == 0 {
		delete(s.keys, key)
		return nil
	}
	s.keys[key] = kept
	return kept
}

// compactRecords filters recs in place, dropping the records expired at
// t and the addresses stale at t. A backing array left more than half
// empty is replaced by one that fits.
func compactRecords(recs []providerRecord, t int64) []providerRecord {
	kept := recs[:0]
	for _, r := range recs {
		if t > r.expires {
			continue
		}
		if r.addrs != "" && t > r.addrsExpire {
			r.addrs = ""
		}
		kept = append(kept, r)
	}
	clear(recs[len(kept):]) // let go of the IDs and addresses
	if len(kept) > 0 && cap(kept) > 2*len(kept) {
		kept = slices.Clone(kept)
	}
	return kept
}

// GC drops the expired records, the keys left without records, and the
// addresses whose AddrTTL has passed, and returns how many records it
// dropped. The caller runs it periodically (go: hourly); it visits every
// record.
func (s *ProviderStore) GC(now time.Time) (removed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweep(s.ticks(now))
}

// sweep is GC at t.
func (s *ProviderStore) sweep(t int64) int {
	removed := 0
	earliest := int64(math.MaxInt64)
	for k, recs := range s.keys {
		kept := compactRecords(recs, t)
		removed += len(recs) - len(kept)
		if len(kept) == 0 {
			delete(s.keys, k)
			continue
		}
		s.keys[k] = kept
		for _, r := range kept {
			earliest = min(earliest, r.expires)
		}
	}
	s.records -= removed
	s.expired += uint64(removed)
	s.minExpires = earliest
	s.lastSweep, s.swept = t, true
	return removed
}

// Len returns how many keys and records the store holds, expired records
// not yet swept included.
func (s *ProviderStore) Len() (keys, records int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys), s.records
}

// Stats returns the store's size and counters.
func (s *ProviderStore) Stats() ProviderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ProviderStats{
		Keys:           len(s.keys),
		Records:        s.records,
		Expired:        s.expired,
		Evicted:        s.evicted,
		RefusedKeys:    s.refusedKeys,
		RefusedRecords: s.refusedRecords,
	}
}

// packAddrs returns the binary forms of the addresses to keep of addrs,
// each after its length (see providerRecord.addrs).
func packAddrs(addrs []ma.Multiaddr, maxAddrs, maxBytes int) string {
	var stack [DefaultMaxProviderAddrBytes]byte
	buf := stack[:0]
	n := 0
	for _, a := range addrs {
		if n == maxAddrs {
			break
		}
		// Get parses the stored forms back: skip what would not parse.
		if len(a) == 0 || len(a) > ma.MaxComponents {
			continue
		}
		b := a.Bytes()
		if len(b) > ma.MaxAddrLen || len(buf)+wire.UvarintLen(uint64(len(b)))+len(b) > maxBytes || hasAddr(string(buf), b) {
			continue
		}
		buf = wire.AppendUvarint(buf, uint64(len(b)))
		buf = append(buf, b...)
		n++
	}
	return string(buf)
}

// nextAddr splits the first address off packed. ok is false at the end,
// or if packed is corrupt, which packAddrs never makes it.
func nextAddr(packed string) (addr, rest string, ok bool) {
	l, n, err := wire.Uvarint(packed)
	if err != nil || l == 0 || l > uint64(len(packed)-n) {
		return "", "", false
	}
	return packed[n : n+int(l)], packed[n+int(l):], true
}

// hasAddr reports whether packed holds the address b.
func hasAddr(packed string, b []byte) bool {
	for {
		a, rest, ok := nextAddr(packed)
		if !ok {
			return false
		}
		if a == string(b) {
			return true
		}
		packed = rest
	}
}

// unpackAddrs parses the addresses of packed, nil if there are none.
func unpackAddrs(packed string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for {
		a, rest, ok := nextAddr(packed)
		if !ok {
			return out
		}
		if m, err := ma.NewMultiaddrBytes([]byte(a)); err == nil {
			out = append(out, m)
		}
		packed = rest
	}
}
