package peer

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/mote-p2p/mote/wire/multiaddr"
)

// testStore returns a store whose clock only moves when the test says so.
func testStore(cfg StoreConfig) (*Store, *time.Time) {
	s := NewStore(cfg)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	return s, &now
}

func tid(n byte) ID { return IDFromPublicKey(testKey(n).Public()) }

func addrStrings(as []multiaddr.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func TestStoreDefaults(t *testing.T) {
	s := NewStore(StoreConfig{MaxPeers: -1})
	if s.cfg.MaxPeers != DefaultMaxPeers || s.cfg.MaxAddrsPerPeer != DefaultMaxAddrsPerPeer || s.cfg.MaxProtocolsPerPeer != DefaultMaxProtocolsPerPeer ||
		s.cfg.MaxAddrBytesPerPeer != DefaultMaxAddrBytesPerPeer || s.cfg.MaxAddrBytes != DefaultMaxAddrBytes {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
}

func TestStoreAddrTTL(t *testing.T) {
	s, now := testStore(StoreConfig{})
	id := tid(1)
	a1, a2, a3 := mustAddr(t, "/ip4/192.0.2.1/tcp/1"), mustAddr(t, "/ip4/192.0.2.2/tcp/2"), mustAddr(t, "/ip4/192.0.2.3/tcp/3")

	s.AddAddrs(id, []multiaddr.Multiaddr{a1}, TempAddrTTL)
	s.AddAddrs(id, []multiaddr.Multiaddr{a2}, RecentlyConnectedAddrTTL)
	s.AddAddrs(id, []multiaddr.Multiaddr{a3}, PermanentAddrTTL)
	// A shorter TTL must not shorten a2's life.
	s.AddAddrs(id, []multiaddr.Multiaddr{a2}, time.Second)
	s.AddAddrs(id, []multiaddr.Multiaddr{a1}, 0) // no-op

	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{0, []string{a1.String(), a2.String(), a3.String()}},
		{TempAddrTTL - time.Nanosecond, []string{a1.String(), a2.String(), a3.String()}},
		{time.Nanosecond, []string{a2.String(), a3.String()}},
		{RecentlyConnectedAddrTTL, []string{a3.String()}},
		{100 * 365 * 24 * time.Hour, []string{a3.String()}},
	}
	for i, st := range steps {
		*now = now.Add(st.advance)
		if got := addrStrings(s.Addrs(id)); !slices.Equal(got, st.want) {
			t.Errorf("step %d: Addrs = %v, want %v", i, got, st.want)
		}
	}
	// Re-adding an expired address revives it with the new TTL.
	s.AddAddrs(id, []multiaddr.Multiaddr{a1}, time.Minute)
	if got := len(s.Addrs(id)); got != 2 {
		t.Errorf("after re-add: %d addrs, want 2", got)
	}
	if s.Addrs(tid(99)) != nil {
		t.Error("unknown peer has addresses")
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d; reads or no-op writes created peers", s.Len())
	}
}

func TestStoreSetAddrs(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	id := tid(1)
	a1, a2 := mustAddr(t, "/ip4/192.0.2.1/tcp/1"), mustAddr(t, "/ip4/192.0.2.2/tcp/2")
	s.AddAddrs(id, []multiaddr.Multiaddr{a1}, PermanentAddrTTL)
	s.SetAddrs(id, []multiaddr.Multiaddr{a2, a2, nil}, TempAddrTTL)
	if got := addrStrings(s.Addrs(id)); !slices.Equal(got, []string{a2.String()}) {
		t.Errorf("after SetAddrs: %v", got)
	}
	s.SetAddrs(id, nil, TempAddrTTL)
	if got := s.Addrs(id); got != nil {
		t.Errorf("after clearing: %v", got)
	}
	s.SetAddrs(tid(2), nil, 0)
	if s.Len() != 1 {
		t.Errorf("clearing an unknown peer created it")
	}
}

func TestStoreConnectedTTL(t *testing.T) {
	s, now := testStore(StoreConfig{})
	id := tid(1)
	a1, a2 := mustAddr(t, "/ip4/192.0.2.1/tcp/1"), mustAddr(t, "/ip4/192.0.2.2/tcp/2")
	s.SetConnected(id, true)
	s.AddAddrs(id, []multiaddr.Multiaddr{a1}, ConnectedAddrTTL)
	s.AddAddrs(id, []multiaddr.Multiaddr{a2}, PermanentAddrTTL)
	*now = now.Add(1000 * time.Hour)
	if len(s.Addrs(id)) != 2 {
		t.Fatal("connected addresses expired")
	}
	s.SetConnected(id, false)
	*now = now.Add(RecentlyConnectedAddrTTL - time.Second)
	if len(s.Addrs(id)) != 2 {
		t.Fatal("recently connected address expired early")
	}
	*now = now.Add(time.Second)
	if got := addrStrings(s.Addrs(id)); !slices.Equal(got, []string{a2.String()}) {
		t.Errorf("after RecentlyConnectedAddrTTL: %v", got)
	}
	s.SetConnected(tid(5), false)
	if s.Len() != 1 {
		t.Error("disconnecting an unknown peer created it")
	}
}

func TestStoreMaxAddrs(t *testing.T) {
	s, _ := testStore(StoreConfig{MaxAddrsPerPeer: 3})
	id := tid(1)
	var addrs []multiaddr.Multiaddr
	for i := 0; i < 6; i++ {
		addrs = append(addrs, mustAddr(t, fmt.Sprintf("/ip4/192.0.2.%d/tcp/1", i)))
	}
	s.AddAddrs(id, addrs[:1], time.Minute)
	s.AddAddrs(id, addrs[1:3], time.Hour)
	// Full: a shorter-lived address is dropped, a longer-lived one
	// replaces the address expiring soonest (addrs[0]).
	s.AddAddrs(id, addrs[3:4], time.Second)
	s.AddAddrs(id, addrs[4:5], PermanentAddrTTL)
	want := []string{addrs[4].String(), addrs[1].String(), addrs[2].String()}
	if got := addrStrings(s.Addrs(id)); !slices.Equal(got, want) {
		t.Errorf("Addrs = %v, want %v", got, want)
	}
	s.SetAddrs(id, addrs, time.Hour)
	if got := len(s.Addrs(id)); got != 3 {
		t.Errorf("SetAddrs kept %d addrs, want 3", got)
	}
}

func TestStoreEviction(t *testing.T) {
	s, _ := testStore(StoreConfig{MaxPeers: 3})
	a := []multiaddr.Multiaddr{mustAddr(t, "/ip4/192.0.2.1/tcp/1")}
	for n := byte(1); n <= 3; n++ {
		if !s.AddAddrs(tid(n), a, time.Hour) {
			t.Fatalf("peer %d refused", n)
		}
	}
	s.SetAgent(tid(1), "touch") // 2 is now the least recently updated
	s.AddAddrs(tid(4), a, time.Hour)
	if got, want := s.Peers(), sortedIDs(tid(1), tid(3), tid(4)); !slices.Equal(got, want) {
		t.Fatalf("after eviction Peers = %v, want %v", got, want)
	}

	// Connected peers are never evicted.
	s.SetConnected(tid(1), true)
	s.SetConnected(tid(3), true)
	s.AddAddrs(tid(5), a, time.Hour) // evicts 4, the only idle peer
	if got, want := s.Peers(), sortedIDs(tid(1), tid(3), tid(5)); !slices.Equal(got, want) {
		t.Fatalf("Peers = %v, want %v", got, want)
	}
	s.SetConnected(tid(5), true)
	if s.AddAddrs(tid(6), a, time.Hour) {
		t.Error("AddAddrs accepted a peer into a store full of connected peers")
	}
	if err := s.SetPublicKey(tid(6), testKey(6).Public()); !errors.Is(err, ErrStoreFull) {
		t.Errorf("SetPublicKey: %v, want ErrStoreFull", err)
	}
	s.SetProtocols(tid(6), []string{"/x"})
	s.SetAgent(tid(6), "x")
	s.RecordLatency(tid(6), time.Second)
	s.SetConnected(tid(6), true)
	if s.SetSignedRecord(tid(6), &PeerRecord{ID: tid(6)}, []byte{1}) {
		t.Error("SetSignedRecord accepted a peer into a full store")
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	// Once a peer disconnects it becomes evictable again.
	s.SetConnected(tid(3), false)
	if !s.AddAddrs(tid(6), a, time.Hour) {
		t.Fatal("peer refused after a disconnect freed a slot")
	}
	if got, want := s.Peers(), sortedIDs(tid(1), tid(5), tid(6)); !slices.Equal(got, want) {
		t.Fatalf("Peers = %v, want %v", got, want)
	}
	s.Remove(tid(1))
	s.Remove(tid(1))
	if s.Len() != 2 {
		t.Errorf("Len after Remove = %d", s.Len())
	}
}

func sortedIDs(ids ...ID) []ID {
	slices.Sort(ids)
	return ids
}

func TestStoreRejectsInvalidID(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	if s.AddAddrs("garbage", []multiaddr.Multiaddr{mustAddr(t, "/ip4/192.0.2.1/tcp/1")}, time.Hour) {
		t.Error("invalid ID accepted")
	}
	s.SetAgent("", "x")
	if s.Len() != 0 {
		t.Errorf("Len = %d", s.Len())
	}
}

func TestStoreProtocols(t *testing.T) {
	s, _ := testStore(StoreConfig{MaxProtocolsPerPeer: 3})
	id := tid(1)
	s.SetProtocols(id, []string{"/a", "", "/a", strings.Repeat("x", 2000), "/b", "/c", "/d"})
	if got, want := s.Protocols(id), []string{"/a", "/b", "/c"}; !slices.Equal(got, want) {
		t.Errorf("Protocols = %v, want %v", got, want)
	}
	if !s.SupportsProtocol(id, "/b") || s.SupportsProtocol(id, "/d") || s.SupportsProtocol(tid(2), "/a") {
		t.Error("SupportsProtocol wrong")
	}
	got := s.Protocols(id)
	got[0] = "/mutated"
	if s.Protocols(id)[0] != "/a" {
		t.Error("Protocols returned internal state")
	}
	s.SetProtocols(id, nil)
	if s.Protocols(id) != nil || s.SupportsProtocol(id, "/a") {
		t.Error("SetProtocols(nil) did not clear")
	}
}

func TestStorePublicKey(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	ed := testKey(1).Public()
	edID := IDFromPublicKey(ed)
	if got := s.PublicKey(edID); !KeyEqual(got, ed) {
		t.Error("key not extracted from identity ID")
	}
	rsaPub := testRSAKey(t).Public()
	rsaID := IDFromPublicKey(rsaPub)
	if s.PublicKey(rsaID) != nil {
		t.Error("key invented for a hashed ID")
	}
	if err := s.SetPublicKey(rsaID, ed); !errors.Is(err, ErrIDMismatch) {
		t.Errorf("mismatched key: %v", err)
	}
	if err := s.SetPublicKey(rsaID, nil); !errors.Is(err, ErrIDMismatch) {
		t.Errorf("nil key: %v", err)
	}
	if err := s.SetPublicKey(rsaID, rsaPub); err != nil {
		t.Fatal(err)
	}
	if !KeyEqual(s.PublicKey(rsaID), rsaPub) {
		t.Error("stored key not returned")
	}
}

func TestStoreAgentLatency(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	id := tid(1)
	s.SetAgent(id, "kubo/0.43.0")
	if s.Agent(id) != "kubo/0.43.0" || s.Agent(tid(2)) != "" {
		t.Error("Agent wrong")
	}
	s.SetAgent(id, strings.Repeat("é", 200)) // 400 bytes, cut mid-rune
	if a := s.Agent(id); len(a) > maxAgentLen || !strings.HasPrefix(a, "éé") || strings.ContainsRune(a, '\uFFFD') {
		t.Errorf("long agent stored as %d bytes %q", len(a), a)
	}

	if s.Latency(id) != 0 {
		t.Error("latency before any sample")
	}
	samples := []struct{ in, want time.Duration }{
		{100 * time.Millisecond, 100 * time.Millisecond},
		{200 * time.Millisecond, 110 * time.Millisecond},
		{-time.Second, 110 * time.Millisecond},
		{110 * time.Millisecond, 110 * time.Millisecond},
	}
	for i, sm := range samples {
		s.RecordLatency(id, sm.in)
		if got := s.Latency(id); got != sm.want {
			t.Errorf("sample %d: Latency = %v, want %v", i, got, sm.want)
		}
	}
}

func TestStoreSignedRecord(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	k := testKey(1)
	id := IDFromPublicKey(k.Public())
	seal := func(seq uint64) (*PeerRecord, []byte) {
		r := &PeerRecord{ID: id, Seq: seq}
		b, err := SealPeerRecord(k, r)
		if err != nil {
			t.Fatal(err)
		}
		return r, b
	}
	r5, e5 := seal(5)
	r4, e4 := seal(4)
	r6, e6 := seal(6)
	steps := []struct {
		rec  *PeerRecord
		env  []byte
		ok   bool
		want []byte
	}{
		{r5, e5, true, e5},
		{r4, e4, false, e5},
		{r5, e5, true, e5},
		{r6, e6, true, e6},
		{&PeerRecord{ID: tid(2), Seq: 9}, e6, false, e6},
		{nil, e6, false, e6},
		{r6, nil, false, e6},
	}
	for i, st := range steps {
		if got := s.SetSignedRecord(id, st.rec, st.env); got != st.ok {
			t.Errorf("step %d: SetSignedRecord = %v, want %v", i, got, st.ok)
		}
		if got := s.SignedRecord(id); string(got) != string(st.want) {
			t.Errorf("step %d: wrong record stored", i)
		}
	}
	if s.SignedRecord(tid(3)) != nil {
		t.Error("record for unknown peer")
	}
}

func TestStoreConcurrent(t *testing.T) {
	s := NewStore(StoreConfig{MaxPeers: 8})
	a := []multiaddr.Multiaddr{mustAddr(t, "/ip4/192.0.2.1/tcp/1")}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				id := tid(byte((g*31 + i) % 16))
				s.AddAddrs(id, a, time.Hour)
				s.SetProtocols(id, []string{"/p"})
				s.RecordLatency(id, time.Millisecond)
				s.SetConnected(id, i%3 == 0)
				_ = s.Addrs(id)
				_ = s.SupportsProtocol(id, "/p")
				_ = s.PublicKey(id)
				_ = s.Peers()
				if i%50 == 0 {
					s.Remove(id)
				}
			}
		}()
	}
	wg.Wait()
	if s.Len() > 8 {
		t.Fatalf("Len = %d exceeds MaxPeers", s.Len())
	}
}

// TestStoreProtocolsShared: peers listing the same protocol share one copy
// of its ID, which is not a substring of the caller's buffer; long lists
// are deduplicated as short ones are.
func TestStoreProtocolsShared(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	buf := "/ipfs/id/1.0.0/ipfs/ping/1.0.0"
	s.SetProtocols(tid(1), []string{buf[:14], buf[14:]})
	s.SetProtocols(tid(2), []string{strings.Clone(buf[:14])})
	a, b := s.Protocols(tid(1))[0], s.Protocols(tid(2))[0]
	if a != "/ipfs/id/1.0.0" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("the two peers do not share one copy of /ipfs/id/1.0.0")
	}
	if unsafe.StringData(a) == unsafe.StringData(buf) {
		t.Error("the stored ID points into the caller's buffer")
	}
	var long []string
	for i := range 100 {
		long = append(long, fmt.Sprintf("/p/%d", i%40))
	}
	s.SetProtocols(tid(3), long)
	if got := len(s.Protocols(tid(3))); got != 40 {
		t.Errorf("%d protocols kept of 40 distinct", got)
	}
	if !s.SupportsProtocol(tid(3), "/p/39") {
		t.Error("SupportsProtocol misses the last distinct protocol")
	}
}

// checkInterned verifies the intern table against the peers' lists: it
// stays within maxInterned, each entry's refs is the number of lists
// holding it, and every other stored ID is a private entry. It returns
// the IDs in the table with their counts.
func checkInterned(t *testing.T, s *Store) map[string]int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.interned) > maxInterned {
		t.Fatalf("intern table holds %d IDs, bound %d", len(s.interned), maxInterned)
	}
	holders := make(map[*protoEntry]int)
	for id, p := range s.peers {
		for _, e := range append(slices.Clone(p.protos), p.agent, p.version) {
			if e == nil {
				continue
			}
			switch {
			case e.refs > 0 && s.interned[e.id] != e:
				t.Fatalf("peer %s holds counted entry %q missing from the table", id.ShortString(), e.id)
			case e.refs == 0 && s.interned[e.id] == e:
				t.Fatalf("peer %s holds %q uncounted", id.ShortString(), e.id)
			}
			holders[e]++
		}
	}
	out := make(map[string]int, len(s.interned))
	for k, e := range s.interned {
		if k != e.id || e.refs <= 0 || e.refs != holders[e] {
			t.Fatalf("entry %q: refs %d, held by %d lists", k, e.refs, holders[e])
		}
		out[k] = e.refs
	}
	return out
}

func protoNames(format string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, from+i)
	}
	return out
}

// TestStoreInternFlood: 5,000 junk IDs from flooding peers never push the
// intern table past its bound, and once those peers replace their lists,
// are removed or are evicted, the table holds only what the remaining
// peers list.
func TestStoreInternFlood(t *testing.T) {
	const (
		junkPeers = 20
		perPeer   = 250 // within DefaultMaxProtocolsPerPeer
	)
	honest := protoNames("/honest/%d/1.0.0", 0, 20)
	junk := func(i int) ID { return tid(byte(100 + i)) }
	a := []multiaddr.Multiaddr{mustAddr(t, "/ip4/192.0.2.1/tcp/1")}
	cases := []struct {
		name string
		// onePeer sends every batch from junk(0), replacing its list.
		onePeer bool
		// peak is the largest the table should grow.
		peak int
		// drain gets rid of the flood's IDs.
		drain func(s *Store)
	}{
		{"replaced", true, len(honest) + perPeer, func(s *Store) {
			s.SetProtocols(junk(0), honest[:5])
		}},
		{"cleared", false, maxInterned, func(s *Store) {
			for i := range junkPeers {
				s.SetProtocols(junk(i), nil)
			}
		}},
		{"removed", false, maxInterned, func(s *Store) {
			for i := range junkPeers {
				s.Remove(junk(i))
			}
		}},
		{"evicted", false, maxInterned, func(s *Store) {
			for i := range junkPeers {
				s.AddAddrs(tid(byte(200+i)), a, time.Hour)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Room for the honest peer and the flooders only, so new
			// peers evict flooders.
			s, _ := testStore(StoreConfig{MaxPeers: 1 + junkPeers})
			s.SetConnected(tid(1), true)
			s.SetProtocols(tid(1), honest)
			maxSeen := 0
			for i := range junkPeers {
				p := junk(i)
				if tc.onePeer {
					p = junk(0)
				}
				s.SetProtocols(p, protoNames("/junk/%d", i*perPeer, perPeer))
				maxSeen = max(maxSeen, len(checkInterned(t, s)))
			}
			if maxSeen != tc.peak {
				t.Fatalf("table peaked at %d IDs, want %d", maxSeen, tc.peak)
			}
			tc.drain(s)
			got := checkInterned(t, s)
			want := make(map[string]int)
			for _, id := range s.Peers() {
				for _, pr := range s.Protocols(id) {
					want[pr]++
				}
			}
			if len(want) != len(honest) || !maps.Equal(got, want) {
				t.Fatalf("after drain the table holds %d IDs, want the %d remaining peers list", len(got), len(want))
			}
		})
	}
}

// TestStoreInternPrivate: an ID arriving while the table is full gets a
// private copy; releasing it later leaves alone the shared entry another
// peer made for the same ID once there was room.
func TestStoreInternPrivate(t *testing.T) {
	s, _ := testStore(StoreConfig{MaxProtocolsPerPeer: maxInterned})
	s.SetProtocols(tid(1), protoNames("/junk/%d", 0, maxInterned))
	s.SetProtocols(tid(2), []string{"/late/1.0.0", "/junk/7"})
	if got := checkInterned(t, s); len(got) != maxInterned || got["/junk/7"] != 2 {
		t.Fatalf("full table: %d IDs, /junk/7 held %d times", len(got), got["/junk/7"])
	}
	s.Remove(tid(1))
	s.SetProtocols(tid(3), []string{"/late/1.0.0"})
	if got := checkInterned(t, s); len(got) != 2 || got["/late/1.0.0"] != 1 || got["/junk/7"] != 1 {
		t.Fatalf("after the flood left: %v", got)
	}
	s.Remove(tid(2)) // its private /late/1.0.0 must not release tid(3)'s
	if got := checkInterned(t, s); len(got) != 1 || got["/late/1.0.0"] != 1 {
		t.Fatalf("after the private copy's peer left: %v", got)
	}
	s.SetProtocols(tid(4), []string{"/late/1.0.0"})
	a, b := s.Protocols(tid(3))[0], s.Protocols(tid(4))[0]
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("a later peer does not share the re-interned ID")
	}
}

// TestStoreInternShared: honest peers listing the same 20 protocols share
// one copy of each, counted once per peer.
func TestStoreInternShared(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	honest := protoNames("/honest/%d/1.0.0", 0, 20)
	const peers = 10
	for n := range peers {
		// A fresh copy per peer, as each identify message would be.
		list := make([]string, len(honest))
		for i, pr := range honest {
			list[i] = strings.Clone(pr)
		}
		s.SetProtocols(tid(byte(n+1)), list)
	}
	first := s.Protocols(tid(1))
	for n := 2; n <= peers; n++ {
		for i, pr := range s.Protocols(tid(byte(n))) {
			if pr != first[i] || unsafe.StringData(pr) != unsafe.StringData(first[i]) {
				t.Fatalf("peer %d: %q is not the shared copy", n, pr)
			}
		}
	}
	got := checkInterned(t, s)
	if len(got) != len(honest) || got[honest[0]] != peers {
		t.Fatalf("table: %v", got)
	}
}

// TestStoreSetProtocolsAllocs: setting a list whose IDs are all interned
// copies no strings; the only allocation is the list itself.
func TestStoreSetProtocolsAllocs(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	honest := protoNames("/honest/%d/1.0.0", 0, 20)
	id := tid(2)
	s.SetProtocols(tid(1), honest)
	s.SetProtocols(id, honest)
	allocs := testing.AllocsPerRun(100, func() {
		s.SetProtocols(id, honest)
	})
	if allocs > 1 {
		t.Errorf("SetProtocols of an interned list: %v allocations, want 1", allocs)
	}
	if got := checkInterned(t, s); len(got) != len(honest) || got[honest[0]] != 2 {
		t.Fatalf("table: %v", got)
	}
}

func BenchmarkStoreSetProtocols(b *testing.B) {
	s := NewStore(StoreConfig{})
	honest := protoNames("/honest/%d/1.0.0", 0, 20)
	id := tid(2)
	s.SetProtocols(tid(1), honest)
	b.ReportAllocs()
	for b.Loop() {
		s.SetProtocols(id, honest)
	}
}

// checkAddrBytes checks that the stored byte totals match the addresses
// stored.
func checkAddrBytes(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for id, p := range s.peers {
		n := 0
		for _, a := range p.addrs {
			n += addrCost(a)
		}
		if n != p.addrBytes {
			t.Errorf("%s: addrBytes %d, addresses cost %d", id.ShortString(), p.addrBytes, n)
		}
		if p.addrBytes > s.cfg.MaxAddrBytesPerPeer {
			t.Errorf("%s: addrBytes %d over the %d budget", id.ShortString(), p.addrBytes, s.cfg.MaxAddrBytesPerPeer)
		}
		total += n
	}
	if total != s.addrBytes {
		t.Errorf("addrBytes %d, addresses cost %d", s.addrBytes, total)
	}
	if s.addrBytes > s.cfg.MaxAddrBytes {
		t.Errorf("addrBytes %d over the %d budget", s.addrBytes, s.cfg.MaxAddrBytes)
	}
}

// TestAddrCostSizes checks the cost constants against the structures they
// stand for.
func TestAddrCostSizes(t *testing.T) {
	if n := unsafe.Sizeof(addrInfo{}); n > addrEntryCost {
		t.Errorf("addrInfo is %d bytes, addrEntryCost %d", n, addrEntryCost)
	}
	if n := unsafe.Sizeof(multiaddr.Component{}); n > componentCost {
		t.Errorf("multiaddr.Component is %d bytes, componentCost %d", n, componentCost)
	}
}

func TestStoreAddrBytesPerPeer(t *testing.T) {
	a := func(i int) multiaddr.Multiaddr { return mustAddr(t, fmt.Sprintf("/ip4/192.0.2.%d/tcp/1", i)) }
	cost := addrEntryCost + 2*len(a(0).Bytes()) + 2*componentCost
	s, _ := testStore(StoreConfig{MaxAddrBytesPerPeer: 3 * cost})
	id := tid(1)
	s.AddAddrs(id, []multiaddr.Multiaddr{a(0)}, time.Minute)
	s.AddAddrs(id, []multiaddr.Multiaddr{a(1), a(2)}, time.Hour)
	// Full in bytes though not in count: handled as MaxAddrsPerPeer is.
	s.AddAddrs(id, []multiaddr.Multiaddr{a(3)}, time.Second)
	s.AddAddrs(id, []multiaddr.Multiaddr{a(4)}, PermanentAddrTTL)
	want := []string{a(4).String(), a(1).String(), a(2).String()}
	if got := addrStrings(s.Addrs(id)); !slices.Equal(got, want) {
		t.Errorf("Addrs = %v, want %v", got, want)
	}
	if got := s.storedAddrBytes(); got != 3*cost {
		t.Errorf("storedAddrBytes = %d, want %d", got, 3*cost)
	}
	// A longer address does not fit in a short one's place.
	long := mustAddr(t, "/dns4/a-longer-name.example.com/tcp/1")
	s.AddAddrs(id, []multiaddr.Multiaddr{long}, PermanentAddrTTL)
	if got := addrStrings(s.Addrs(id)); !slices.Equal(got, want) {
		t.Errorf("after a long address: Addrs = %v, want %v", got, want)
	}
	checkAddrBytes(t, s)
	s.SetAddrs(id, []multiaddr.Multiaddr{long}, time.Hour)
	checkAddrBytes(t, s)
	s.SetAddrs(id, nil, 0)
	if got := s.storedAddrBytes(); got != 0 {
		t.Errorf("after clearing: storedAddrBytes = %d", got)
	}
}

func TestStoreAddrBytesTotal(t *testing.T) {
	a := func(i int) multiaddr.Multiaddr { return mustAddr(t, fmt.Sprintf("/ip4/192.0.2.%d/tcp/1", i)) }
	cost := addrEntryCost + 2*len(a(0).Bytes()) + 2*componentCost
	s, _ := testStore(StoreConfig{MaxAddrBytes: 4 * cost})
	s.SetConnected(tid(1), true)
	s.SetAddrs(tid(1), []multiaddr.Multiaddr{a(1), a(2)}, ConnectedAddrTTL)
	s.SetAddrs(tid(2), []multiaddr.Multiaddr{a(3)}, time.Hour)
	s.SetAddrs(tid(3), []multiaddr.Multiaddr{a(4)}, time.Hour)
	s.SetAgent(tid(2), "touch") // 3 is now the least recently updated
	// Full: the idle peer updated least recently makes room.
	s.SetAddrs(tid(4), []multiaddr.Multiaddr{a(5)}, time.Hour)
	if _, ok := s.peers[tid(3)]; ok || len(s.Addrs(tid(4))) != 1 {
		t.Errorf("peer 3 kept, peer 4 has %v", s.Addrs(tid(4)))
	}
	checkAddrBytes(t, s)
	// A peer adding to its own addresses does not evict itself, nor
	// connected peers: with nothing else to evict, its address is dropped.
	s.SetConnected(tid(2), true)
	s.AddAddrs(tid(4), []multiaddr.Multiaddr{a(6)}, time.Hour)
	if got := len(s.Addrs(tid(4))); got != 1 || s.Len() != 3 {
		t.Errorf("peer 4 has %d addrs, %d peers stored", got, s.Len())
	}
	checkAddrBytes(t, s)
	for _, id := range s.Peers() {
		s.Remove(id)
	}
	if got := s.storedAddrBytes(); got != 0 {
		t.Errorf("after removing every peer: storedAddrBytes = %d", got)
	}
}

// TestStoreSweep checks that expired addresses of peers nobody asks about
// give back their bytes.
func TestStoreSweep(t *testing.T) {
	s, now := testStore(StoreConfig{})
	addrs := []multiaddr.Multiaddr{mustAddr(t, "/ip4/192.0.2.1/tcp/1")}
	s.AddAddrs(tid(1), addrs, TempAddrTTL)
	s.SetConnected(tid(2), true)
	s.AddAddrs(tid(2), addrs, ConnectedAddrTTL)
	s.SetConnected(tid(2), false)
	*now = now.Add(RecentlyConnectedAddrTTL)
	s.SetAgent(tid(3), "not a sweep")
	if s.storedAddrBytes() == 0 {
		t.Fatal("swept on a call that does not touch addresses")
	}
	s.SetAddrs(tid(3), nil, 0) // any address call may sweep
	if got := s.storedAddrBytes(); got != 0 {
		t.Errorf("after expiry and a sweep: storedAddrBytes = %d", got)
	}
	checkAddrBytes(t, s)
}

// cidrAddr returns the text of an address of n components: /ip4 and /tcp,
// n-3 /ipcidr, and a /dns name making it size bytes long in binary (if
// n > 3).
func cidrAddr(i, n, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "/ip4/10.0.%d.%d/tcp/1", i/256, i%256)
	cidrs := n - 2
	if size > 0 {
		cidrs--
	}
	b.WriteString(strings.Repeat("/ipcidr/8", cidrs))
	if size > 0 {
		name := size - (5 + 3 + 2*cidrs + 3) // dns: code, two-byte length
		b.WriteString("/dns/" + strings.Repeat("a", name))
	}
	return b.String()
}

// TestStoreAddrAmplification reproduces in miniature the flood that made
// the store hold 21 times what was sent: 64 peers each sending 70
// addresses of about 1 KiB, each of hundreds of /ipcidr components, then
// disconnecting.
func TestStoreAddrAmplification(t *testing.T) {
	const peers, perPeer = 64, 70

	// Hundreds of components: refused when parsed, in either form.
	flood := cidrAddr(0, 2+507, 0)
	if _, err := multiaddr.NewMultiaddr(flood); err == nil {
		t.Fatalf("a %d-component address parsed", 2+507)
	}
	b := []byte{0x04, 10, 0, 0, 1, 0x06, 0, 1} // /ip4/10.0.0.1/tcp/1
	for len(b) < multiaddr.MaxAddrLen-1 {
		b = append(b, 0x2b, 8) // /ipcidr/8
	}
	if _, err := multiaddr.NewMultiaddrBytes(b); err == nil {
		t.Fatalf("a %d-byte address of %d components parsed", len(b), 2+(len(b)-8)/2)
	}

	// Just under both caps: they parse, and the byte budgets bound them.
	// The binary forms are made up front; each peer gets its own parse,
	// as addresses read off the wire would be.
	wire := make([][]byte, perPeer)
	for i := range wire {
		m := mustAddr(t, cidrAddr(i, multiaddr.MaxComponents, multiaddr.MaxAddrLen))
		if len(m) != multiaddr.MaxComponents || len(m.Bytes()) != multiaddr.MaxAddrLen {
			t.Fatalf("built %d components, %d bytes", len(m), len(m.Bytes()))
		}
		wire[i] = m.Bytes()
	}
	s, now := testStore(StoreConfig{})
	ids := make([]ID, peers)
	for i := range ids {
		ids[i] = tid(byte(i + 1))
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, id := range ids {
		addrs := make([]multiaddr.Multiaddr, len(wire))
		for i, b := range wire {
			m, err := multiaddr.NewMultiaddrBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			addrs[i] = m
		}
		s.SetConnected(id, true)
		s.SetAddrs(id, addrs, ConnectedAddrTTL)
	}
	for _, id := range ids {
		s.SetConnected(id, false)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	held := s.storedAddrBytes()
	t.Logf("sent %d KiB; heap grew %d KiB; addresses cost %d KiB", peers*perPeer*multiaddr.MaxAddrLen>>10, growth>>10, held>>10)
	if growth > 2<<20 {
		t.Errorf("heap grew by %d KiB, want under 2 MiB", growth>>10)
	}
	if held > peers*DefaultMaxAddrBytesPerPeer {
		t.Errorf("addresses cost %d bytes, over %d peers' budgets", held, peers)
	}
	checkAddrBytes(t, s)

	// Ten minutes after the disconnect, the addresses are gone, and the
	// next address call frees them even for peers nobody asks about.
	*now = now.Add(RecentlyConnectedAddrTTL)
	s.SetAddrs(tid(200), nil, 0)
	if got := s.storedAddrBytes(); got != 0 {
		t.Errorf("after RecentlyConnectedAddrTTL: storedAddrBytes = %d", got)
	}
	checkAddrBytes(t, s)

	// And removing peers frees theirs.
	for _, id := range ids {
		s.SetAddrs(id, []multiaddr.Multiaddr{mustAddr(t, cidrAddr(0, multiaddr.MaxComponents, multiaddr.MaxAddrLen))}, TempAddrTTL)
	}
	if s.storedAddrBytes() == 0 {
		t.Fatal("no addresses stored")
	}
	for _, id := range ids {
		s.Remove(id)
	}
	if got := s.storedAddrBytes(); got != 0 {
		t.Errorf("after removing the peers: storedAddrBytes = %d", got)
	}
	runtime.KeepAlive(wire)
}

// TestStoreVersionsInterned: agent and protocol versions are shared
// between peers like protocol IDs, replaced in place, and leave the table
// with the last peer holding them.
func TestStoreVersionsInterned(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	for n := range 3 {
		s.SetAgent(tid(byte(n+1)), strings.Clone("kubo/0.43.0"))
		s.SetProtocolVersion(tid(byte(n+1)), "ipfs/0.1.0")
	}
	if got := checkInterned(t, s); got["kubo/0.43.0"] != 3 || got["ipfs/0.1.0"] != 3 {
		t.Fatalf("table: %v", got)
	}
	if v := s.ProtocolVersion(tid(2)); v != "ipfs/0.1.0" {
		t.Errorf("ProtocolVersion = %q", v)
	}
	s.SetAgent(tid(1), "mote/0.1")
	s.SetProtocolVersion(tid(1), "")
	s.Remove(tid(2))
	got := checkInterned(t, s)
	if got["kubo/0.43.0"] != 1 || got["ipfs/0.1.0"] != 1 || got["mote/0.1"] != 1 || s.ProtocolVersion(tid(1)) != "" {
		t.Fatalf("after changes: %v", got)
	}
	s.Remove(tid(1))
	s.Remove(tid(3))
	if got := checkInterned(t, s); len(got) != 0 {
		t.Fatalf("left in the table: %v", got)
	}
}

// TestStoreDisconnectDropsProtocols: a peer's protocols go with its last
// connection, and with them the interned IDs only it listed.
func TestStoreDisconnectDropsProtocols(t *testing.T) {
	s, _ := testStore(StoreConfig{})
	id := tid(1)
	s.SetConnected(id, true)
	s.SetProtocols(id, protoNames("/junk/%d", 0, 100))
	if len(checkInterned(t, s)) != 100 {
		t.Fatal("protocols not interned")
	}
	s.SetConnected(id, false)
	if got := s.Protocols(id); len(got) != 0 {
		t.Errorf("protocols of a disconnected peer: %v", got)
	}
	if got := checkInterned(t, s); len(got) != 0 {
		t.Errorf("interned IDs left: %d", len(got))
	}
}
