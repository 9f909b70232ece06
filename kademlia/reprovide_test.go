// The simulations here run thousands of goroutines inside
// testing/synctest bubbles, which crash the race detector itself
// ("ThreadSanitizer: CHECK failed", golang/go#78156, open in Go 1.26):
// they run in the plain test run only. The race run covers the DHT's
// concurrency on real sockets (dual_test.go) and its stores.

//go:build !race

package kademlia

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
)

// key256 is the keyspace point whose leading bits are bits ("0101…"),
// the rest zero.
func key256(bits string) Key {
	var k Key
	for i, c := range bits {
		if c == '1' {
			k[i/8] |= 0x80 >> (i % 8)
		}
	}
	return k
}

func TestReprovidePrefix(t *testing.T) {
	full := Key{}
	for i := range full {
		full[i] = 0xff
	}
	for _, tc := range []struct {
		name     string
		p        prefix
		want     Key // p.key
		in, out  Key
		children [2]Key
	}{
		{"root", prefixOf(full, 0), Key{}, full, Key{}, [2]Key{key256("0"), key256("1")}},
		{"3 bits", prefixOf(full, 3), key256("111"), key256("1111"), key256("110"), [2]Key{key256("1110"), key256("1111")}},
		{"byte edge", prefixOf(key256("101010101"), 9), key256("101010101"), key256("1010101011"), key256("101010100"), [2]Key{key256("1010101010"), key256("1010101011")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.key != tc.want {
				t.Errorf("prefix key %x, want %x (bits past the prefix zero)", tc.p.key, tc.want)
			}
			if !tc.p.contains(tc.in) || tc.p.contains(tc.out) && tc.p.bits > 0 {
				t.Errorf("contains(%x) = %v, contains(%x) = %v", tc.in, tc.p.contains(tc.in), tc.out, tc.p.contains(tc.out))
			}
			for b := range byte(2) {
				c := tc.p.child(b)
				if c.key != tc.children[b] || c.bits != tc.p.bits+1 {
					t.Errorf("child %d = %x/%d, want %x/%d", b, c.key, c.bits, tc.children[b], tc.p.bits+1)
				}
				if !tc.p.covers(c) || c.covers(tc.p) {
					t.Errorf("covers: parent %v child %v", tc.p.covers(c), c.covers(tc.p))
				}
			}
			// The least distance from a point to the prefix is that of
			// the prefix's point nearest it: the point itself inside.
			if d := tc.p.minDistance(tc.in); d != (Key{}) {
				t.Errorf("minDistance of a point inside = %x, want 0", d)
			}
		})
	}
	// Outside: the prefix 10 is at least 01000… from 00….
	if d := prefixOf(key256("10"), 2).minDistance(Key{}); d != key256("10") {
		t.Errorf("minDistance = %x, want %x", d, key256("10"))
	}
}

func TestReprovideCoverage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		add    []string
		near   string
		want   string // the uncovered prefix returned, "-" for none
		prefix []string
	}{
		{"empty", nil, "0101", "", nil},
		{"whole", []string{""}, "0101", "-", []string{""}},
		{"sibling of near", []string{"01"}, "0101", "00", []string{"01"}},
		{"near uncovered", []string{"1"}, "0101", "0", []string{"1"}},
		{"far half after near", []string{"0"}, "0101", "1", []string{"0"}},
		{"halves join", []string{"0", "1"}, "0101", "-", []string{"0", "1"}},
		{"deep then wide", []string{"0110", "01"}, "0110", "00", []string{"01"}},
		{"nearest gap", []string{"000", "01", "1"}, "0100", "001", []string{"000", "01", "1"}},
		{"inner ignored", []string{"0", "0011"}, "0011", "1", []string{"0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c coverage
			for _, a := range tc.add {
				c.add(prefixOf(key256(a), len(a)))
			}
			u, ok := c.uncovered(key256(tc.near))
			if tc.want == "-" {
				if ok {
					t.Errorf("uncovered = %x/%d, want none", u.key, u.bits)
				}
			} else if !ok || u != prefixOf(key256(tc.want), len(tc.want)) {
				t.Errorf("uncovered = %x/%d (%v), want %s", u.key, u.bits, ok, tc.want)
			}
			var got []prefix
			for _, p := range tc.prefix {
				got = append(got, prefixOf(key256(p), len(p)))
			}
			if ps := c.prefixes(); !slices.Equal(ps, got) {
				t.Errorf("prefixes = %v, want %v", ps, got)
			}
		})
	}
}

// TestReprovideRescope: moving to a new scope keeps only its peers, and
// no covered prefix that claims more than the peers kept.
func TestReprovideRescope(t *testing.T) {
	o := newOracleNet(300, 0)
	sw := newSweep(K, 3, nil, nil, o.lookup)
	for i, id := range o.peers {
		sw.known[id] = o.keys[i]
	}
	for _, c := range []string{"", "0110", "1"} {
		sw.cover.add(prefixOf(key256(c), len(c)))
	}
	scope := prefixOf(key256("01"), 2)
	sw.rescope(scope)
	if ps := sw.cover.prefixes(); !slices.Equal(ps, []prefix{scope}) {
		t.Errorf("covered after rescope: %v, want the scope alone", ps)
	}
	for _, k := range sw.known {
		if !scope.contains(k) {
			t.Fatalf("a peer outside the scope was kept")
		}
	}
	inScope := 0
	for _, k := range o.keys {
		if scope.contains(k) {
			inScope++
		}
	}
	if len(sw.known) != inScope {
		t.Errorf("%d peers kept, want the %d in the scope", len(sw.known), inScope)
	}
	// Within the scope, deeper prefixes stay as they are.
	sw = newSweep(K, 3, nil, nil, o.lookup)
	for _, c := range []string{"0110", "0100", "1"} {
		sw.cover.add(prefixOf(key256(c), len(c)))
	}
	sw.rescope(scope)
	want := []prefix{prefixOf(key256("0100"), 4), prefixOf(key256("0110"), 4)}
	if ps := sw.cover.prefixes(); !slices.Equal(ps, want) {
		t.Errorf("covered after rescope: %v, want %v", ps, want)
	}
}

func TestReprovideLookupCover(t *testing.T) {
	o := newOracleNet(200, 0)
	target := KeyOf([]byte("target"))
	ids := o.closest(target, K, nil)
	c := len(Key{}) * 8
	for _, id := range ids {
		c = min(c, CommonPrefixLen(target, PeerKey(id)))
	}
	for _, tc := range []struct {
		name     string
		ids      []peer.ID
		complete bool
		ok       bool
		bits     int
	}{
		{"K peers", ids, false, true, c + 1},
		{"none", nil, true, false, 0},
		{"fewer, complete", ids[:5], true, true, 0},
		{"fewer, some failed", ids[:5], false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := lookupCover(target, tc.ids, K, tc.complete)
			if ok != tc.ok || ok && (p.bits != tc.bits || !p.contains(target)) {
				t.Fatalf("lookupCover = %d bits, %v; want %d bits, %v", p.bits, ok, tc.bits, tc.ok)
			}
		})
	}
	// The claim itself: every peer of the covered prefix is in the answer.
	p, _ := lookupCover(target, ids, K, false)
	for i, pk := range o.keys {
		if p.contains(pk) && !slices.Contains(ids, o.peers[i]) {
			t.Errorf("peer %s is in the covered prefix but not in the answer", o.peers[i])
		}
	}
}

func TestReprovideRegionBits(t *testing.T) {
	for _, n := range []int{5, 30, 150, 2000, 10000} {
		o := newOracleNet(n, 0)
		got := regionBits(PeerKey(o.self), o.table(), K)
		want := max(math.Log2(float64(n)/K), 0)
		if math.Abs(float64(got)-want) > 1.01 {
			t.Errorf("%d peers: regionBits = %d, want about %.1f", n, got, want)
		}
	}
}

// oracleNet is a network of peer IDs whose lookups return the K closest
// peers, each of which is missed with probability miss (the next taking
// its place): the sweep's rule without a network, at any size.
type oracleNet struct {
	self    peer.ID
	peers   []peer.ID
	keys    []Key
	miss    float64
	rnd     *rand.Rand
	fail    error
	lookups int
}

func newOracleNet(n int, miss float64) *oracleNet {
	o := &oracleNet{self: "self", miss: miss, rnd: rand.New(rand.NewPCG(1, uint64(n)))}
	for i := range n {
		id := peer.ID(fmt.Sprintf("peer-%d", i))
		o.peers = append(o.peers, id)
		o.keys = append(o.keys, PeerKey(id))
	}
	return o
}

// closest returns the k peers closest to t, closest first, without those
// skip says to miss.
func (o *oracleNet) closest(t Key, k int, skip func() bool) []peer.ID {
	type near struct {
		d Key
		i int
	}
	top := make([]near, 0, 2*k)
	for i, pk := range o.keys {
		d := t.Distance(pk)
		if len(top) == cap(top) && bytes.Compare(d[:], top[len(top)-1].d[:]) >= 0 {
			continue
		}
		j, _ := slices.BinarySearchFunc(top, d, func(a near, d Key) int { return bytes.Compare(a.d[:], d[:]) })
		if len(top) == cap(top) {
			top = top[:len(top)-1]
		}
		top = slices.Insert(top, j, near{d, i})
	}
	out := make([]peer.ID, 0, k)
	for _, n := range top {
		if len(out) == k {
			break
		}
		if skip == nil || !skip() {
			out = append(out, o.peers[n.i])
		}
	}
	return out
}

func (o *oracleNet) lookup(target []byte) ([]peer.ID, bool, error) {
	o.lookups++
	if o.fail != nil {
		return nil, false, o.fail
	}
	ids := o.closest(KeyOf(target), K, func() bool { return o.rnd.Float64() < o.miss })
	return ids, true, nil
}

// table is what self's routing table holds: up to K peers per
// common-prefix length.
func (o *oracleNet) table() []peer.ID {
	self := PeerKey(o.self)
	per := make(map[int]int)
	var out []peer.ID
	for i, id := range o.peers {
		if c := CommonPrefixLen(self, o.keys[i]); per[c] < K {
			per[c]++
			out = append(out, id)
		}
	}
	return out
}

func sortedKeys(n int, tag string) ([][]byte, []Key) {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = multihash(fmt.Sprint(tag, i))
	}
	slices.SortFunc(keys, func(a, b []byte) int { ka, kb := KeyOf(a), KeyOf(b); return bytes.Compare(ka[:], kb[:]) })
	points := make([]Key, n)
	for i, k := range keys {
		points[i] = KeyOf(k)
	}
	return keys, points
}

// TestProvideManyOracle runs the sweep's plan against exact and lossy
// lookups: with exact ones every key gets exactly its K closest peers;
// with lossy ones the sweep does as well as one lookup per key (which
// misses what its lookup missed); and the lookups it needs are the
// figure to reach: at most 5 % of one per key for 10,000 keys on 2,000
// peers.
func TestProvideManyOracle(t *testing.T) {
	for _, tc := range []struct {
		peers, keys int
		miss        float64
		maxShare    float64 // lookups / keys
		emptyTable  bool    // no estimate from the table: region bits 0
	}{
		{2000, 10000, 0, 0.05, false},
		{2000, 10000, 0.05, 0.05, false},
		{2000, 10000, 0, 0.05, true},
		{150, 500, 0, 0.1, false},
		{150, 500, 0.05, 0.1, false},
		{2000, 20, 0, 1, false}, // sparse: one lookup per key at worst
		{10, 50, 0, 0.02, false},
	} {
		t.Run(fmt.Sprintf("%d peers %d keys miss %.2f empty table %v", tc.peers, tc.keys, tc.miss, tc.emptyTable), func(t *testing.T) {
			o := newOracleNet(tc.peers, tc.miss)
			keys, points := sortedKeys(tc.keys, "k")
			bits := regionBits(PeerKey(o.self), o.table(), K)
			if tc.emptyTable {
				bits = 0
			}
			sw := newSweep(K, bits, keys, points, o.lookup)
			got := make(map[string][]peer.ID)
			err := sw.run(func(alloc map[peer.ID][][]byte) {
				for id, ks := range alloc {
					for _, k := range ks {
						if slices.Contains(got[string(k)], id) {
							t.Errorf("key %x allocated twice to %s", k, id)
						}
						got[string(k)] = append(got[string(k)], id)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			lookups := o.lookups
			held, eachHeld, all := 0, 0, 0
			for i, k := range keys {
				want := o.closest(points[i], K, nil)
				if len(got[string(k)]) != len(want) {
					t.Fatalf("key %d got %d peers, want %d", i, len(got[string(k)]), len(want))
				}
				each, _, _ := o.lookup(k)
				all += len(want)
				for _, id := range want {
					if slices.Contains(got[string(k)], id) {
						held++
					}
					if slices.Contains(each, id) {
						eachHeld++
					}
				}
			}
			share := float64(lookups) / float64(tc.keys)
			sweep, each := float64(held)/float64(all), float64(eachHeld)/float64(all)
			t.Logf("region bits %d then %d, %d regions, %d lookups (%.1f %% of one per key); true closest peers reached: sweep %.4f, per key %.4f", bits, sw.depth(), sw.regions, lookups, 100*share, sweep, each)
			if share > tc.maxShare {
				t.Errorf("%d lookups for %d keys: %.1f %%, want at most %.0f %%", lookups, tc.keys, 100*share, 100*tc.maxShare)
			}
			if tc.miss == 0 && held != all {
				t.Errorf("with exact lookups %d of %d (key, closest peer) pairs were missed", all-held, all)
			}
			if sweep < each-0.02 {
				t.Errorf("sweep reached %.4f of the closest peers, one lookup per key %.4f", sweep, each)
			}
		})
	}
	t.Run("lookup error", func(t *testing.T) {
		o := newOracleNet(100, 0)
		o.fail = ErrNoPeers
		keys, points := sortedKeys(10, "e")
		err := newSweep(K, 2, keys, points, o.lookup).run(func(map[peer.ID][][]byte) { t.Error("flush after a failed lookup") })
		if !errors.Is(err, ErrNoPeers) || o.lookups != 1 {
			t.Errorf("run = %v after %d lookups, want ErrNoPeers after 1", err, o.lookups)
		}
	})
}

// TestProvideManySimulated: in a network of simNodes DHT nodes, 500 keys
// provided by a sweep are found from other nodes and held by their true
// closest peers, with a small share of the lookups one per key costs.
func TestProvideManySimulated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := newSim(t, simNodes, transport.Link{Latency: 10 * time.Millisecond}, nil)
		byID := make(map[peer.ID]simDHT)
		for _, s := range nodes {
			byID[s.n.ID()] = s
		}
		ctx := context.Background()
		keys := make([][]byte, 500)
		for i := range keys {
			keys[i] = multihash(fmt.Sprint("sweep", i))
		}
		// share is the part of the (key, true closest peer) pairs whose
		// peer holds who's record.
		share := func(who simDHT) float64 {
			now := time.Now()
			held, all := 0, 0
			for _, k := range keys {
				var ids []peer.ID
				for id := range byID {
					if id != who.n.ID() {
						ids = append(ids, id)
					}
				}
				SortByDistance(KeyOf(k), ids)
				for _, id := range ids[:K] {
					all++
					if slices.ContainsFunc(byID[id].d.providers.Get(k, now, 0), func(p Provider) bool { return p.ID == who.n.ID() }) {
						held++
					}
				}
			}
			return float64(held) / float64(all)
		}

		a, b := nodes[1], nodes[2]
		sweep, err := a.d.ProvideMany(ctx, append(keys, keys[0])) // a duplicate is counted once
		if err != nil {
			t.Fatal(err)
		}
		settle()
		if sweep.Keys != len(keys) || sweep.Sent != K*len(keys) || sweep.Failed != 0 || sweep.Regions < 1 || sweep.LookupRequests < sweep.Lookups {
			t.Errorf("ProvideMany stats %+v, want %d keys, %d sent, none failed", sweep, len(keys), K*len(keys))
		}
		if got := a.d.providers.Get(keys[7], time.Now(), 0); len(got) != 1 || got[0].ID != a.n.ID() {
			t.Errorf("own store holds %v for a provided key, want ourselves", got)
		}
		if s := share(a); s < 0.9 {
			t.Errorf("the true closest peers hold %.3f of the sweep's records, want at least 0.9", s)
		}
		missing := 0
		for i, k := range keys {
			from := nodes[3+i%(len(nodes)-3)]
			provs, _, err := from.d.FindProviders(ctx, k, 1)
			if err != nil || len(provs) != 1 || provs[0].ID != a.n.ID() {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%d of %d keys not found by FindProviders from other nodes", missing, len(keys))
		}

		each, err := b.d.ProvideEach(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		settle()
		if each.Lookups != len(keys) || each.Sent != K*len(keys) {
			t.Errorf("ProvideEach stats %+v, want one lookup and K records per key", each)
		}
		t.Logf("sweep: %d lookups, %d requests, %d regions; one per key: %d lookups, %d requests: %.1f %% of the lookups, %.1f %% of the requests; closest peers holding the record: sweep %.3f, per key %.3f",
			sweep.Lookups, sweep.LookupRequests, sweep.Regions, each.Lookups, each.LookupRequests,
			100*float64(sweep.Lookups)/float64(each.Lookups), 100*float64(sweep.LookupRequests)/float64(each.LookupRequests), share(a), share(b))
		if 5*sweep.Lookups > each.Lookups || 5*sweep.LookupRequests > each.LookupRequests {
			t.Errorf("sweep made %d lookups (%d requests), one per key %d (%d): want at most 20 %%", sweep.Lookups, sweep.LookupRequests, each.Lookups, each.LookupRequests)
		}
	})
}

func TestProvideManyErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, nodes := newSim(t, 4, transport.Link{}, nil)
		ctx := context.Background()
		lone := addSim(t, mn, ModeServer, nil) // never bootstrapped
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		for _, tc := range []struct {
			name string
			d    *DHT
			ctx  context.Context
			keys [][]byte
			want error
		}{
			{"empty key", nodes[1].d, ctx, [][]byte{multihash("a"), {}}, ErrBadKey},
			{"long key", nodes[1].d, ctx, [][]byte{make([]byte, MaxProviderKeyLen+1)}, ErrBadKey},
			{"empty table", lone.d, ctx, [][]byte{multihash("a")}, ErrNoPeers},
			{"cancelled", nodes[1].d, cancelled, [][]byte{multihash("a")}, context.Canceled},
		} {
			// No t.Run: subtests cannot start inside a bubble.
			for _, f := range []func(context.Context, [][]byte) (ReprovideStats, error){tc.d.ProvideMany, tc.d.ProvideEach} {
				st, err := f(tc.ctx, tc.keys)
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
				}
				if tc.want == ErrBadKey && st.Lookups != 0 {
					t.Errorf("%s: %d lookups for a bad key list", tc.name, st.Lookups)
				}
			}
		}
		st, err := nodes[1].d.ProvideMany(ctx, nil)
		if err != nil || st != (ReprovideStats{}) {
			t.Errorf("ProvideMany(nil) = %+v, %v; want nothing done", st, err)
		}
	})
}

// TestReprovider: the keys of a KeyStore are provided ReprovideStartDelay
// after start and again every interval, until the DHT closes.
func TestReprovider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := newSim(t, 20, transport.Link{Latency: 5 * time.Millisecond}, nil)
		ks, err := OpenKeyStore("", 0)
		if err != nil {
			t.Fatal(err)
		}
		var keys [][]byte
		for i := range 40 {
			keys = append(keys, multihash(fmt.Sprint("re", i)))
		}
		if _, err := ks.Add(keys...); err != nil {
			t.Fatal(err)
		}
		p := nodes[4]
		start := time.Now()
		const interval = 10 * time.Minute
		r := p.d.StartReprovider(ks, interval)
		if _, at := r.LastRun(); !at.IsZero() {
			t.Fatalf("a run at %v before the start delay", at)
		}
		time.Sleep(ReprovideStartDelay + time.Minute)
		synctest.Wait()
		st, at := r.LastRun()
		// 19 other nodes: each key goes to all of them, and one lookup
		// that finds all of them serves every key.
		if !at.Equal(start.Add(ReprovideStartDelay)) || st.Keys != len(keys) || st.Sent != (len(nodes)-1)*len(keys) || st.Lookups != 1 || r.LastErr() != nil {
			t.Fatalf("first run at +%v: %+v, %v; want at +%v, %d keys, %d sent, 1 lookup", at.Sub(start), st, r.LastErr(), ReprovideStartDelay, len(keys), (len(nodes)-1)*len(keys))
		}
		// A record on one of the closest peers, and a key added later,
		// which the next run picks up.
		var other []peer.ID
		for _, s := range nodes {
			if s.n.ID() != p.n.ID() {
				other = append(other, s.n.ID())
			}
		}
		SortByDistance(KeyOf(keys[0]), other)
		for _, s := range nodes {
			if s.n.ID() == other[0] && len(s.d.providers.Get(keys[0], time.Now(), 0)) == 0 {
				t.Error("the closest peer of a key holds no record after the reprovide")
			}
		}
		if _, err := ks.Add(multihash("late")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(interval)
		synctest.Wait()
		st, at2 := r.LastRun()
		if at2.Sub(at) != interval || st.Keys != len(keys)+1 {
			t.Errorf("second run %v after the first with %d keys, want %v and %d", at2.Sub(at), st.Keys, interval, len(keys)+1)
		}
		// Closing the DHT ends the reprovider: no run after it.
		p.d.Close()
		time.Sleep(2 * interval)
		synctest.Wait()
		if _, at3 := r.LastRun(); !at3.Equal(at2) {
			t.Errorf("a run at %v after the DHT closed", at3)
		}
	})
}

// simNodes is the size of TestProvideManySimulated's network. The
// in-memory network ends up connecting almost every pair of nodes, some
// 120 goroutines a node, and under -race Go 1.26's ThreadSanitizer
// aborts now and then ("CHECK failed: tsan_rtl.cpp:346") the more
// goroutines a run makes: in about half the runs at 100 nodes (18,000
// goroutines), rarely at 60, and in the package's other simulations too
// when repeated. The oracle test covers 2,000 peers.
const simNodes = 60

// TestProvideManyOutboundLimit: a provider allowed 24 outbound
// connections (the iot preset allows 32) sweeps 300 keys over simNodes
// peers. Giving back the connections it no longer needs (kept.go) and
// waiting for room when its own limit refuses one, it sends every record
// to the keys' closest peers, where other nodes find them. (With
// MaxKeptPeers -1 it loses about a fifth of them.)
func TestProvideManyOutboundLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, nodes := newSim(t, simNodes, transport.Link{Latency: 10 * time.Millisecond}, nil)
		p := addSimNode(t, mn, ModeClient, node.Limits{MaxOutboundConns: 24}, nil)
		ctx := context.Background()
		if err := p.d.Bootstrap(ctx, nodes[0].info()); err != nil {
			t.Fatal(err)
		}
		keys := make([][]byte, 300)
		for i := range keys {
			keys[i] = multihash(fmt.Sprint("limited", i))
		}
		st, err := p.d.ProvideMany(ctx, keys)
		settle()
		missing := 0
		for i, k := range keys[:50] {
			provs, _, err := nodes[i].d.FindProviders(ctx, k, 1)
			if err != nil || len(provs) != 1 || provs[0].ID != p.n.ID() {
				missing++
			}
		}
		c := p.d.Stats().Counters
		t.Logf("%+v (err %v); %d of 50 keys not found; node refused %d outbound connections, DHT waited %d times and released %d",
			st, err, missing, p.n.Counters()[node.LimitOutboundConns], c[OwnLimitWaits], c[Released])
		if err != nil || st.Failed != 0 || st.Sent != K*len(keys) {
			t.Errorf("ProvideMany = %+v, %v; want all %d records sent", st, err, K*len(keys))
		}
		if c[Released] == 0 || c[OwnLimitWaits] == 0 {
			t.Error("the limit never fired, or no connection was given back: the test no longer tests them")
		}
		if missing > 0 {
			t.Errorf("%d of 50 keys not found by FindProviders", missing)
		}
		if open := len(p.n.Peers()); open > 24 {
			t.Errorf("%d peers connected, beyond MaxOutboundConns", open)
		}
	})
}
