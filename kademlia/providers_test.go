package kademlia

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// provEpoch is the first time the provider tests give a store.
var provEpoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// provAt returns provEpoch plus d.
func provAt(d time.Duration) time.Time { return provEpoch.Add(d) }

// provID returns a distinct valid peer ID (a sha2-256 multihash) for i.
func provID(i int) peer.ID {
	b := make([]byte, 34)
	b[0], b[1] = 0x12, 0x20
	binary.BigEndian.PutUint64(b[2:], uint64(i))
	return peer.ID(b)
}

// provKey returns a distinct provider key (a sha2-256 multihash) for i.
func provKey(i int) []byte {
	b := make([]byte, 34)
	b[0], b[1] = 0x12, 0x20
	binary.BigEndian.PutUint64(b[26:], uint64(i))
	return b
}

// provAddr returns a distinct address for i.
func provAddr(i int) ma.Multiaddr {
	return ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&255, i>>8&255, i&255))
}

// provAddrs returns the text forms of addrs, for comparisons.
func provAddrs(addrs []ma.Multiaddr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// provGot returns the providers of key at now as "id=addrs" strings keyed
// by ID, which tests compare regardless of Get's random order.
func provGot(s *ProviderStore, key []byte, now time.Time) map[peer.ID]string {
	got := make(map[peer.ID]string)
	for _, p := range s.Get(key, now, 0) {
		got[p.ID] = provAddrs(p.Addrs)
	}
	return got
}

func TestProviderConfigDefaults(t *testing.T) {
	want := ProviderConfig{
		Validity:     48 * time.Hour,
		AddrTTL:      30 * time.Minute,
		MaxPerKey:    64,
		MaxKeys:      65536,
		MaxRecords:   262144,
		MaxAddrs:     16,
		MaxAddrBytes: 1024,
	}
	tests := []struct {
		name string
		cfg  ProviderConfig
		want ProviderConfig
	}{
		{"zero", ProviderConfig{}, want},
		{"negative", ProviderConfig{Validity: -1, AddrTTL: -1, MaxPerKey: -1, MaxKeys: -1, MaxRecords: -1, MaxAddrs: -1, MaxAddrBytes: -1}, want},
		{"set", ProviderConfig{Validity: time.Hour, MaxPerKey: 3}, func() ProviderConfig {
			c := want
			c.Validity, c.MaxPerKey = time.Hour, 3
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewProviderStore(tt.cfg).cfg; got != tt.want {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProviderStoreBadInput(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte
		id      peer.ID
		wantErr error
	}{
		{"empty key", nil, provID(1), ErrBadKey},
		{"81-byte key", make([]byte, 81), provID(1), ErrBadKey},
		{"1-byte key", []byte{7}, provID(1), nil},
		{"80-byte key", make([]byte, 80), provID(1), nil},
		{"empty ID", provKey(1), "", ErrBadKey},
		{"malformed ID", provKey(1), "\x12\x20short", ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewProviderStore(ProviderConfig{})
			err := s.Add(tt.key, tt.id, []ma.Multiaddr{provAddr(1)}, provEpoch)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Add = %v, want %v", err, tt.wantErr)
			}
			keys, records := s.Len()
			got := s.Get(tt.key, provEpoch, 0)
			if tt.wantErr != nil {
				if keys != 0 || records != 0 || got != nil {
					t.Errorf("refused record left %d keys, %d records, Get %v", keys, records, got)
				}
				return
			}
			if keys != 1 || records != 1 || len(got) != 1 || got[0].ID != tt.id {
				t.Errorf("stored record: %d keys, %d records, Get %v", keys, records, got)
			}
		})
	}
}

// TestProviderStoreLifetimes runs steps on one store, checking what Get
// returns after each: record expiry, address expiry apart from it, and
// how a renewal treats both.
func TestProviderStoreLifetimes(t *testing.T) {
	const (
		validity = 48 * time.Hour
		addrTTL  = 30 * time.Minute
	)
	a1, a2 := provAddr(1), provAddr(2)
	p1, p2 := provID(1), provID(2)
	key := provKey(1)
	type step struct {
		at    time.Duration
		add   peer.ID // "" for none
		addrs []ma.Multiaddr
		want  map[peer.ID]string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"record and addresses", []step{
			{at: 0, add: p1, addrs: []ma.Multiaddr{a1}, want: map[peer.ID]string{p1: a1.String()}},
			{at: addrTTL, want: map[peer.ID]string{p1: a1.String()}},
			{at: addrTTL + 1, want: map[peer.ID]string{p1: ""}},
			{at: validity, want: map[peer.ID]string{p1: ""}},
			{at: validity + 1, want: map[peer.ID]string{}},
		}},
		{"renewal without addresses keeps them and their expiry", []step{
			{at: 0, add: p1, addrs: []ma.Multiaddr{a1}, want: map[peer.ID]string{p1: a1.String()}},
			{at: time.Minute, add: p1, want: map[peer.ID]string{p1: a1.String()}},
			{at: addrTTL + 1, want: map[peer.ID]string{p1: ""}},
			{at: validity + time.Minute, want: map[peer.ID]string{p1: ""}},
			{at: validity + time.Minute + 1, want: map[peer.ID]string{}},
		}},
		{"renewal with addresses replaces them", []step{
			{at: 0, add: p1, addrs: []ma.Multiaddr{a1}, want: map[peer.ID]string{p1: a1.String()}},
			{at: 20 * time.Minute, add: p1, addrs: []ma.Multiaddr{a2}, want: map[peer.ID]string{p1: a2.String()}},
			{at: 20*time.Minute + addrTTL, want: map[peer.ID]string{p1: a2.String()}},
			{at: 20*time.Minute + addrTTL + 1, want: map[peer.ID]string{p1: ""}},
		}},
		{"renewal of an expired record", []step{
			{at: 0, add: p1, addrs: []ma.Multiaddr{a1}},
			{at: validity + time.Hour, add: p1, want: map[peer.ID]string{p1: ""}},
			{at: 2*validity + time.Hour, want: map[peer.ID]string{p1: ""}},
		}},
		{"providers expire apart", []step{
			{at: 0, add: p1, addrs: []ma.Multiaddr{a1}},
			{at: 10 * time.Minute, add: p2, addrs: []ma.Multiaddr{a2}, want: map[peer.ID]string{p1: a1.String(), p2: a2.String()}},
			{at: addrTTL + 1, want: map[peer.ID]string{p1: "", p2: a2.String()}},
			{at: validity + 1, want: map[peer.ID]string{p2: ""}},
			{at: validity + 10*time.Minute, want: map[peer.ID]string{p2: ""}},
			{at: validity + 10*time.Minute + 1, want: map[peer.ID]string{}},
		}},
		{"record without addresses", []step{
			{at: 0, add: p1, want: map[peer.ID]string{p1: ""}},
			{at: time.Minute, add: p1, addrs: []ma.Multiaddr{a1}, want: map[peer.ID]string{p1: a1.String()}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewProviderStore(ProviderConfig{Validity: validity, AddrTTL: addrTTL})
			for i, st := range tt.steps {
				now := provAt(st.at)
				if st.add != "" {
					if err := s.Add(key, st.add, st.addrs, now); err != nil {
						t.Fatalf("step %d: Add: %v", i, err)
					}
				}
				if st.want == nil {
					continue
				}
				got := provGot(s, key, now)
				if fmt.Sprint(got) != fmt.Sprint(st.want) {
					t.Errorf("step %d (at %v): Get = %q, want %q", i, st.at, got, st.want)
				}
			}
		})
	}
}

func TestProviderStoreGetDropsExpired(t *testing.T) {
	s := NewProviderStore(ProviderConfig{Validity: time.Hour})
	key := provKey(1)
	for i := range 3 {
		if err := s.Add(key, provID(i), nil, provAt(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.Get(key, provAt(time.Hour+time.Minute+1), 0)); got != 1 {
		t.Fatalf("Get returned %d providers, want 1", got)
	}
	if keys, records := s.Len(); keys != 1 || records != 1 {
		t.Errorf("after Get: %d keys, %d records, want 1, 1", keys, records)
	}
	if s.Get(key, provAt(2*time.Hour), 0) != nil {
		t.Error("Get returned providers of a key whose records all expired")
	}
	st := s.Stats()
	if st.Keys != 0 || st.Records != 0 || st.Expired != 3 {
		t.Errorf("Stats = %+v, want no keys or records, 3 expired", st)
	}
}

func TestProviderStorePerKeyEviction(t *testing.T) {
	const validity = 10 * time.Hour
	key := provKey(1)
	type add struct {
		at time.Duration
		id int
	}
	tests := []struct {
		name        string
		adds        []add
		at          time.Duration // of the Get
		want        []int
		wantEvicted uint64
		wantExpired uint64
	}{
		{
			name: "oldest goes",
			adds: []add{{0, 1}, {1 * time.Hour, 2}, {2 * time.Hour, 3}, {3 * time.Hour, 4}},
			at:   3 * time.Hour, want: []int{2, 3, 4}, wantEvicted: 1,
		},
		{
			name: "renewal saves a record",
			adds: []add{{0, 1}, {1 * time.Hour, 2}, {2 * time.Hour, 3}, {3 * time.Hour, 1}, {4 * time.Hour, 4}},
			at:   4 * time.Hour, want: []int{1, 3, 4}, wantEvicted: 1,
		},
		{
			name: "renewals are not new providers",
			adds: []add{{0, 1}, {1 * time.Hour, 2}, {2 * time.Hour, 3}, {3 * time.Hour, 3}, {4 * time.Hour, 2}},
			at:   4 * time.Hour, want: []int{1, 2, 3},
		},
		{
			name: "one after another",
			adds: []add{{0, 1}, {1 * time.Hour, 2}, {2 * time.Hour, 3}, {3 * time.Hour, 4}, {4 * time.Hour, 5}, {5 * time.Hour, 6}},
			at:   5 * time.Hour, want: []int{4, 5, 6}, wantEvicted: 3,
		},
		{
			name: "an expired record goes first and counts as expired",
			adds: []add{{0, 1}, {5 * time.Hour, 2}, {6 * time.Hour, 3}, {11 * time.Hour, 4}},
			at:   11 * time.Hour, want: []int{2, 3, 4}, wantExpired: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewProviderStore(ProviderConfig{Validity: validity, MaxPerKey: 3})
			for _, a := range tt.adds {
				if err := s.Add(key, provID(a.id), nil, provAt(a.at)); err != nil {
					t.Fatalf("Add %d at %v: %v", a.id, a.at, err)
				}
			}
			got := provGot(s, key, provAt(tt.at))
			want := make(map[peer.ID]string)
			for _, id := range tt.want {
				want[provID(id)] = ""
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("providers = %q, want %q", got, want)
			}
			st := s.Stats()
			if st.Records != 3 || st.Evicted != tt.wantEvicted || st.Expired != tt.wantExpired {
				t.Errorf("Stats = %+v, want 3 records, %d evicted, %d expired", st, tt.wantEvicted, tt.wantExpired)
			}
		})
	}
}

func TestProviderStoreFull(t *testing.T) {
	const validity = time.Hour
	type add struct {
		at      time.Duration
		key, id int
		wantErr error
	}
	tests := []struct {
		name        string
		cfg         ProviderConfig
		adds        []add
		wantKeys    int
		wantRecords int
		wantRefused [2]uint64 // keys, records
	}{
		{
			name: "records",
			cfg:  ProviderConfig{MaxRecords: 3},
			adds: []add{
				{0, 1, 1, nil}, {0, 1, 2, nil}, {0, 2, 1, nil},
				{0, 1, 3, ErrStoreFull},  // an existing key
				{0, 3, 1, ErrStoreFull},  // a new key
				{time.Minute, 1, 1, nil}, // renewal
			},
			wantKeys: 2, wantRecords: 3, wantRefused: [2]uint64{0, 2},
		},
		{
			name: "keys",
			cfg:  ProviderConfig{MaxKeys: 2},
			adds: []add{
				{0, 1, 1, nil}, {0, 2, 1, nil},
				{0, 3, 1, ErrStoreFull},
				{0, 1, 2, nil}, // an existing key still takes records
			},
			wantKeys: 2, wantRecords: 3, wantRefused: [2]uint64{1, 0},
		},
		{
			name:     "a full key still takes new providers",
			cfg:      ProviderConfig{MaxRecords: 2, MaxPerKey: 2},
			adds:     []add{{0, 1, 1, nil}, {time.Minute, 1, 2, nil}, {2 * time.Minute, 1, 3, nil}},
			wantKeys: 1, wantRecords: 2,
		},
		{
			name: "expired records make room",
			cfg:  ProviderConfig{MaxRecords: 2},
			adds: []add{
				{0, 1, 1, nil}, {30 * time.Minute, 2, 1, nil},
				{validity, 3, 1, ErrStoreFull},
				{validity + 1, 3, 1, nil},
			},
			wantKeys: 2, wantRecords: 2, wantRefused: [2]uint64{0, 1},
		},
		{
			name:     "expired keys make room",
			cfg:      ProviderConfig{MaxKeys: 1},
			adds:     []add{{0, 1, 1, nil}, {validity + 1, 2, 1, nil}},
			wantKeys: 1, wantRecords: 1,
		},
		{
			// The sweep for k1's expired record compacts k2, the
			// key being added to, as well.
			name:     "sweeping the key being added to",
			cfg:      ProviderConfig{MaxRecords: 2},
			adds:     []add{{0, 2, 1, nil}, {30 * time.Minute, 1, 1, nil}, {validity + 1, 2, 2, nil}},
			wantKeys: 2, wantRecords: 2,
		},
		{
			// A sweep that found something was just made: the next
			// waits fullSweepGap, however many records expire.
			name: "sweeps are a minute apart",
			cfg:  ProviderConfig{MaxRecords: 2},
			adds: []add{
				{0, 1, 1, nil}, {10 * time.Second, 2, 1, nil},
				{validity + time.Second, 3, 1, nil}, // sweeps away k1
				{validity + 11*time.Second, 4, 1, ErrStoreFull},
				{validity + time.Second + fullSweepGap - 1, 4, 1, ErrStoreFull},
				{validity + time.Second + fullSweepGap, 4, 1, nil}, // sweeps away k2
			},
			wantKeys: 2, wantRecords: 2, wantRefused: [2]uint64{0, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Validity = validity
			s := NewProviderStore(tt.cfg)
			for i, a := range tt.adds {
				err := s.Add(provKey(a.key), provID(a.id), nil, provAt(a.at))
				if !errors.Is(err, a.wantErr) || (err == nil) != (a.wantErr == nil) {
					t.Fatalf("add %d (key %d, id %d, at %v) = %v, want %v", i, a.key, a.id, a.at, err, a.wantErr)
				}
			}
			st := s.Stats()
			if st.Keys != tt.wantKeys || st.Records != tt.wantRecords || st.RefusedKeys != tt.wantRefused[0] || st.RefusedRecords != tt.wantRefused[1] {
				t.Errorf("Stats = %+v, want %d keys, %d records, refused %v", st, tt.wantKeys, tt.wantRecords, tt.wantRefused)
			}
			if st.Keys > s.cfg.MaxKeys || st.Records > s.cfg.MaxRecords {
				t.Errorf("store over its bounds: %+v", st)
			}
		})
	}
}

func TestProviderStoreAddrLimits(t *testing.T) {
	// long(i) takes 224 bytes: 222 and its length.
	long := func(i int) ma.Multiaddr {
		return ma.Join(provAddr(100+i), ma.StringCast("/dns4/"+strings.Repeat("a", 200)+".example/tcp/1"))
	}
	tooManyComponents := make(ma.Multiaddr, 0, ma.MaxComponents+1)
	for range ma.MaxComponents + 1 {
		tooManyComponents = append(tooManyComponents, ma.StringCast("/tcp/1")...)
	}
	tooLong := ma.Join(long(0), long(1), long(2), long(3), long(4), long(5))
	if len(tooLong.Bytes()) <= ma.MaxAddrLen {
		t.Fatal("tooLong is not over multiaddr.MaxAddrLen")
	}
	few := func(n int) []ma.Multiaddr {
		out := make([]ma.Multiaddr, n)
		for i := range out {
			out[i] = provAddr(i)
		}
		return out
	}
	tests := []struct {
		name  string
		cfg   ProviderConfig
		addrs []ma.Multiaddr
		want  []ma.Multiaddr
	}{
		{"all", ProviderConfig{}, few(3), few(3)},
		{"MaxAddrs", ProviderConfig{MaxAddrs: 2}, few(5), few(2)},
		{"default MaxAddrs", ProviderConfig{}, few(40), few(16)},
		{"duplicates", ProviderConfig{MaxAddrs: 2}, []ma.Multiaddr{provAddr(0), provAddr(0), provAddr(1)}, few(2)},
		{"empty and unparsable skipped", ProviderConfig{}, []ma.Multiaddr{nil, tooLong, provAddr(0), tooManyComponents, {}, provAddr(1)}, few(2)},
		// Each provAddr takes 9 bytes: 8 and its length.
		{"MaxAddrBytes", ProviderConfig{MaxAddrBytes: 20}, few(3), few(2)},
		{"MaxAddrBytes skips what does not fit", ProviderConfig{MaxAddrBytes: 20}, []ma.Multiaddr{provAddr(0), long(0), provAddr(1)}, few(2)},
		{
			"default MaxAddrBytes", ProviderConfig{},
			[]ma.Multiaddr{long(1), long(2), provAddr(0), long(3), long(4), long(5), long(6), provAddr(1)},
			[]ma.Multiaddr{long(1), long(2), provAddr(0), long(3), long(4), provAddr(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewProviderStore(tt.cfg)
			if err := s.Add(provKey(1), provID(1), tt.addrs, provEpoch); err != nil {
				t.Fatal(err)
			}
			got := s.Get(provKey(1), provEpoch, 0)
			if len(got) != 1 {
				t.Fatalf("Get returned %d providers", len(got))
			}
			if provAddrs(got[0].Addrs) != provAddrs(tt.want) {
				t.Errorf("addresses = %q\nwant %q", provAddrs(got[0].Addrs), provAddrs(tt.want))
			}
			if n := len(s.keys[string(provKey(1))][0].addrs); n > s.cfg.MaxAddrBytes {
				t.Errorf("%d bytes of addresses kept, over MaxAddrBytes %d", n, s.cfg.MaxAddrBytes)
			}
		})
	}
}

func TestProviderStoreGetMax(t *testing.T) {
	const n = 10
	s := NewProviderStore(ProviderConfig{})
	key := provKey(1)
	for i := range n {
		if err := s.Add(key, provID(i), []ma.Multiaddr{provAddr(i)}, provEpoch); err != nil {
			t.Fatal(err)
		}
	}
	for _, max := range []int{-1, 0, 1, 3, n - 1, n, n + 5} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			want := n
			if max > 0 && max < n {
				want = max
			}
			got := s.Get(key, provEpoch, max)
			if len(got) != want {
				t.Fatalf("Get returned %d providers, want %d", len(got), want)
			}
			seen := make(map[peer.ID]bool)
			for _, p := range got {
				if seen[p.ID] {
					t.Errorf("%s returned twice", p.ID)
				}
				seen[p.ID] = true
				var i int
				for i = 0; i < n && provID(i) != p.ID; i++ {
				}
				if i == n {
					t.Fatalf("Get returned unknown provider %s", p.ID)
				}
				if provAddrs(p.Addrs) != provAddr(i).String() {
					t.Errorf("provider %d has addresses %q, want %s", i, provAddrs(p.Addrs), provAddr(i))
				}
			}
		})
	}

	// Get picks at random: 200 draws of one provider of ten all giving
	// the same one has probability 10^-199.
	first := make(map[peer.ID]bool)
	for range 200 {
		first[s.Get(key, provEpoch, 1)[0].ID] = true
	}
	if len(first) < 2 {
		t.Errorf("Get(max 1) returned the same provider 200 times")
	}
}

func TestProviderStoreGetCopies(t *testing.T) {
	s := NewProviderStore(ProviderConfig{})
	key := provKey(1)
	if err := s.Add(key, provID(1), []ma.Multiaddr{provAddr(1), provAddr(2)}, provEpoch); err != nil {
		t.Fatal(err)
	}
	got := s.Get(key, provEpoch, 0)
	got[0].Addrs[0] = provAddr(7)
	got[0].Addrs[1][0] = provAddr(8)[0]
	if got := provAddrs(s.Get(key, provEpoch, 0)[0].Addrs); got != provAddrs([]ma.Multiaddr{provAddr(1), provAddr(2)}) {
		t.Errorf("after the caller changed a returned address, the store has %q", got)
	}
}

func TestProviderStoreGC(t *testing.T) {
	const (
		validity = 10 * time.Hour
		addrTTL  = time.Hour
	)
	s := NewProviderStore(ProviderConfig{Validity: validity, AddrTTL: addrTTL})
	// Key i gets providers 0..i, provider j added at j hours.
	for i := range 4 {
		for j := 0; j <= i; j++ {
			if err := s.Add(provKey(i), provID(j), []ma.Multiaddr{provAddr(j)}, provAt(time.Duration(j)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		at          time.Duration
		wantRemoved int
		wantKeys    int
		wantRecords int
		wantAddrs   int // records that still hold addresses
	}{
		{at: 0, wantKeys: 4, wantRecords: 10, wantAddrs: 10},
		{at: 2*time.Hour + 1, wantKeys: 4, wantRecords: 10, wantAddrs: 3}, // providers 2 and 3
		{at: validity, wantKeys: 4, wantRecords: 10},
		{at: validity + 1, wantRemoved: 4, wantKeys: 3, wantRecords: 6},
		{at: validity + time.Hour, wantKeys: 3, wantRecords: 6},
		{at: validity + time.Hour + 1, wantRemoved: 3, wantKeys: 2, wantRecords: 3},
		{at: validity + 3*time.Hour + 1, wantRemoved: 3},
		{at: validity + 4*time.Hour},
	}
	for _, tt := range tests {
		removed := s.GC(provAt(tt.at))
		keys, records := s.Len()
		addrs := 0
		for _, recs := range s.keys {
			for _, r := range recs {
				if r.addrs != "" {
					addrs++
				}
			}
		}
		if removed != tt.wantRemoved || keys != tt.wantKeys || records != tt.wantRecords || addrs != tt.wantAddrs {
			t.Errorf("GC at %v removed %d, left %d keys, %d records, %d with addresses; want %d, %d, %d, %d",
				tt.at, removed, keys, records, addrs, tt.wantRemoved, tt.wantKeys, tt.wantRecords, tt.wantAddrs)
		}
	}
	if st := s.Stats(); st.Expired != 10 {
		t.Errorf("Stats.Expired = %d, want 10", st.Expired)
	}
}

// TestProviderStoreSweepEarliest checks that a sweep finds the earliest
// expiry left, which decides when a full store sweeps next.
func TestProviderStoreSweepEarliest(t *testing.T) {
	s := NewProviderStore(ProviderConfig{Validity: time.Hour})
	for i := range 50 {
		if err := s.Add(provKey(i%7), provID(i), nil, provAt(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if removed := s.GC(provAt(time.Hour + 9*time.Minute + 1)); removed != 10 {
		t.Fatalf("GC removed %d records, want 10", removed)
	}
	if want := int64(70 * time.Minute); s.minExpires != want {
		t.Errorf("minExpires = %v, want %v", time.Duration(s.minExpires), time.Duration(want))
	}
}

// TestProviderStoreSlices checks that a key's records take about the
// memory they need: growth by a quarter, and shrinking after a sweep.
func TestProviderStoreSlices(t *testing.T) {
	s := NewProviderStore(ProviderConfig{Validity: time.Hour})
	key := provKey(1)
	for i := range 40 {
		if err := s.Add(key, provID(i), nil, provAt(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if recs := s.keys[string(key)]; cap(recs) > len(recs)+len(recs)/4+1 {
			t.Fatalf("%d records in an array of %d", len(recs), cap(recs))
		}
	}
	s.GC(provAt(time.Hour + 35*time.Minute + 1))
	if recs := s.keys[string(key)]; len(recs) != 4 || cap(recs) > 2*len(recs) {
		t.Errorf("after GC: %d records in an array of %d", len(recs), cap(recs))
	}
}

// TestProviderStoreConcurrent is for the race detector.
func TestProviderStoreConcurrent(t *testing.T) {
	s := NewProviderStore(ProviderConfig{MaxRecords: 100, Validity: time.Minute})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				now := provAt(time.Duration(i) * time.Second)
				err := s.Add(provKey(i%30), provID(g*1000+i%7), []ma.Multiaddr{provAddr(i)}, now)
				if err != nil && !errors.Is(err, ErrStoreFull) {
					t.Errorf("Add: %v", err)
					return
				}
				for _, p := range s.Get(provKey(i%30), now, 3) {
					_ = p.Addrs
				}
				if i%50 == 0 {
					s.GC(now)
					s.Stats()
				}
			}
		})
	}
	wg.Wait()
	if keys, records := s.Len(); records > 100 || keys > records {
		t.Errorf("%d keys, %d records", keys, records)
	}
}

// BenchmarkProviderStore adds 100,000 records over 10,000 keys, each with
// two addresses, and reports the store's memory per record. The peer IDs
// are the caller's (a node holds its peers' IDs anyway) and not counted.
func BenchmarkProviderStore(b *testing.B) {
	const records, keys = 100_000, 10_000
	ids := make([]peer.ID, records/10)
	addrs := make([][]ma.Multiaddr, len(ids))
	for i := range ids {
		ids[i] = provID(i)
		ip := fmt.Sprintf("/ip4/10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		addrs[i] = []ma.Multiaddr{ma.StringCast(ip + "/tcp/4001"), ma.StringCast(ip + "/udp/4001/quic-v1")}
	}
	ks := make([][]byte, keys)
	for i := range ks {
		ks[i] = provKey(i)
	}
	now := provEpoch
	build := func() *ProviderStore {
		s := NewProviderStore(ProviderConfig{})
		for i := range records {
			// Each peer provides ten keys, each key has ten providers.
			p := (i/keys*keys/10 + i%keys/10) % len(ids)
			if err := s.Add(ks[i%keys], ids[p], addrs[p], now); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if k, r := s.Len(); k != keys || r != records {
		b.Fatalf("built %d keys, %d records", k, r)
	}
	runtime.KeepAlive(s)
	perRecord := float64(after.HeapAlloc-before.HeapAlloc) / records

	for b.Loop() {
		build()
	}
	b.ReportMetric(perRecord, "B/record")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/records, "ns/add")
}

// BenchmarkProviderStoreGet reads the 20 providers of a key, two
// addresses each.
func BenchmarkProviderStoreGet(b *testing.B) {
	s := NewProviderStore(ProviderConfig{})
	key := provKey(1)
	for i := range 20 {
		ip := fmt.Sprintf("/ip4/10.0.0.%d", i)
		addrs := []ma.Multiaddr{ma.StringCast(ip + "/tcp/4001"), ma.StringCast(ip + "/udp/4001/quic-v1")}
		if err := s.Add(key, provID(i), addrs, provEpoch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(s.Get(key, provEpoch, 0)) != 20 {
			b.Fatal("providers missing")
		}
	}
}
