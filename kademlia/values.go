package kademlia

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Defaults of ValueConfig.
const (
	// DefaultValueMaxAge is how long a value record is kept and served
	// after it was stored; its publisher republishes it before then
	// (go-libp2p-kad-dht v0.42 internal/config Defaults: MaxRecordAge
	// 48 h, the DefaultMaxRecordAge of WIRE-FACTS §14.8).
	DefaultValueMaxAge = 48 * time.Hour
	// DefaultMaxValueRecords bounds the records held (ours). Amino stores
	// only /pk and /ipns records, and a server holds those of the few
	// names whose keys are close to its own.
	DefaultMaxValueRecords = 4096
	// DefaultMaxValueBytes bounds the bytes of keys and values held
	// (ours): 8 MiB, room for 800 IPNS records of boxo's 10 KiB maximum,
	// and for all 4,096 of the usual few hundred bytes.
	DefaultMaxValueBytes = 8 << 20
)

// ErrNotBetter is returned by ValueStore.Put when the record stored for
// the key wins over the new one.
var ErrNotBetter = errors.New("kademlia: the stored record is better")

// ValueConfig bounds a ValueStore. Each field that is zero (or negative)
// takes its default.
type ValueConfig struct {
	// MaxAge is how long a record is kept after it was stored
	// (DefaultValueMaxAge, 48 h).
	MaxAge time.Duration
	// MaxRecords bounds the records (DefaultMaxValueRecords, 4,096).
	MaxRecords int
	// MaxBytes bounds the bytes of keys and values of all records
	// together (DefaultMaxValueBytes, 8 MiB). A record larger than it is
	// never stored.
	MaxBytes int
}

func (c ValueConfig) withDefaults() ValueConfig {
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultValueMaxAge
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = DefaultMaxValueRecords
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxValueBytes
	}
	return c
}

// ValueStore holds the value records of a DHT server (PUT_VALUE,
// GET_VALUE), in memory, bounded in count and bytes. It does not validate
// records: the caller does, and gives Put the comparison with the stored
// record. It needs no goroutine: expired records are dropped by GC, by
// Get and Put for their key, and by Put when the store is full. Every
// method takes the time, so that the caller (and a test) decides what now
// is. It is safe for concurrent use.
//
// A full store never makes room by dropping a live record for another
// key: if it did, a peer putting records under fresh keys could wipe
// everyone else's.
type ValueStore struct {
	cfg ValueConfig

	mu      sync.Mutex
	records map[string]valueRecord
	bytes   int // of keys and values
	// oldest is at most the earliest time a held record was received:
	// until MaxAge after it, a sweep would find nothing.
	oldest    time.Time
	lastSweep time.Time
	swept     bool
}

// valueRecord is a stored value and the time it was stored.
type valueRecord struct {
	value    []byte
	received time.Time
}

// NewValueStore returns an empty store bounded by cfg.
func NewValueStore(cfg ValueConfig) *ValueStore {
	return &ValueStore{
		cfg:     cfg.withDefaults(),
		records: make(map[string]valueRecord),
	}
}

// expired reports whether r is past MaxAge at now. As go does
// (handlers.go, checkLocalDatastore), a record exactly MaxAge old is
// still served.
func (s *ValueStore) expired(r valueRecord, now time.Time) bool {
	return now.Sub(r.received) > s.cfg.MaxAge
}

// Put stores value under key, received at now, unless a record is stored
// for key, has not expired, and better(stored) reports that the new value
// does not win over it: then Put returns ErrNotBetter, or better's error
// wrapped, and keeps the stored record. A nil better lets every new value
// win. better runs with the store locked: it must not use the store.
// Put keeps a copy of value.
//
// A record for a new key beyond MaxRecords, or one that would take the
// store beyond MaxBytes, makes the store drop its expired records first;
// if it is still full, Put refuses the record with an error wrapping
// ErrStoreFull. An empty key is refused with ErrBadKey.
func (s *ValueStore) Put(key string, value []byte, better func(stored []byte) (bool, error), now time.Time) error {
	if key == "" {
		return fmt.Errorf("%w: empty record key", ErrBadKey)
	}
	size := len(key) + len(value)
	if size > s.cfg.MaxBytes {
		return fmt.Errorf("%w: record of %d bytes, over the store's %d", ErrStoreFull, size, s.cfg.MaxBytes)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	old, replacing := s.records[key]
	if replacing && s.expired(old, now) {
		s.remove(key, old)
		replacing = false
	}
	delta := size
	if replacing {
		if better != nil {
			win, err := better(old.value)
			if err != nil {
				return fmt.Errorf("kademlia: comparing with the stored record: %w", err)
			}
			if !win {
				return ErrNotBetter
			}
		}
		delta -= len(key) + len(old.value)
	}

	if !s.fits(replacing, delta) {
		if s.sweepDue(now) {
			s.sweep(now) // old is live: the sweep keeps it
		}
		if !s.fits(replacing, delta) {
			if s.bytes+delta > s.cfg.MaxBytes {
				return fmt.Errorf("%w: %d of %d bytes of value records held", ErrStoreFull, s.bytes, s.cfg.MaxBytes)
			}
			return fmt.Errorf("%w: %d value records held", ErrStoreFull, len(s.records))
		}
	}

	if !replacing {
		// The map keeps its key: a copy holds only the bytes counted.
		key = strings.Clone(key)
	}
	if len(s.records) == 0 || now.Before(s.oldest) {
		s.oldest = now
	}
	s.records[key] = valueRecord{value: bytes.Clone(value), received: now}
	s.bytes += delta
	return nil
}

// fits reports whether a record that changes the bytes held by delta is
// within the bounds; replacing is whether it replaces a held record.
func (s *ValueStore) fits(replacing bool, delta int) bool {
	return (replacing || len(s.records) < s.cfg.MaxRecords) && s.bytes+delta <= s.cfg.MaxBytes
}

// sweepDue reports whether a full store should sweep at now: whether a
// record may have expired, and no sweep ran within the last fullSweepGap
// (see it in providers.go).
func (s *ValueStore) sweepDue(now time.Time) bool {
	if len(s.records) == 0 || now.Sub(s.oldest) <= s.cfg.MaxAge {
		return false
	}
	return !s.swept || now.Sub(s.lastSweep) >= fullSweepGap
}

// remove drops the record r of key.
func (s *ValueStore) remove(key string, r valueRecord) {
	delete(s.records, key)
	s.bytes -= len(key) + len(r.value)
}

// Get returns a copy of the value stored for key and the time it was
// stored (the now of its Put), unless there is none or it is older than
// MaxAge; such a record is dropped.
func (s *ValueStore) Get(key string, now time.Time) (value []byte, received time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[key]
	if !ok {
		return nil, time.Time{}, false
	}
	if s.expired(r, now) {
		s.remove(key, r)
		return nil, time.Time{}, false
	}
	return bytes.Clone(r.value), r.received, true
}

// GC drops the records older than MaxAge and returns how many it
// dropped. The caller runs it periodically (go: daily); it visits every
// record.
func (s *ValueStore) GC(now time.Time) (removed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweep(now)
}

// sweep is GC at now.
func (s *ValueStore) sweep(now time.Time) int {
	removed := 0
	first := true
	for k, r := range s.records {
		if s.expired(r, now) {
			s.remove(k, r)
			removed++
			continue
		}
		if first || r.received.Before(s.oldest) {
			s.oldest, first = r.received, false
		}
	}
	s.lastSweep, s.swept = now, true
	return removed
}

// Len returns how many records the store holds, expired ones not yet
// dropped included.
func (s *ValueStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

// Bytes returns the bytes of keys and values the store holds, the
// measure MaxBytes bounds.
func (s *ValueStore) Bytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}
