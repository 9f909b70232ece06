package kademlia

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// idGen hands out distinct random peer IDs from a fixed seed.
type idGen struct {
	r *mrand.Rand
}

func newIDGen(seed uint64) *idGen { return &idGen{mrand.New(mrand.NewPCG(seed, 42))} }

func (g *idGen) next() peer.ID {
	b := make([]byte, 34)
	b[0], b[1] = 0x12, 0x20
	for j := 2; j < len(b); j++ {
		b[j] = byte(g.r.Uint32())
	}
	return peer.ID(b)
}

// withCPL returns n IDs whose common-prefix length with self is cpl.
func (g *idGen) withCPL(self peer.ID, cpl, n int) []peer.ID {
	sk := PeerKey(self)
	var out []peer.ID
	for len(out) < n {
		if id := g.next(); CommonPrefixLen(sk, PeerKey(id)) == cpl {
			out = append(out, id)
		}
	}
	return out
}

func ips(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// checkInvariants verifies the table's internal consistency: the layout
// of the buckets, the index and the diversity counts.
func checkInvariants(t *testing.T, tab *Table) {
	t.Helper()
	tab.mu.RLock()
	defer tab.mu.RUnlock()
	if len(tab.buckets) == 0 || len(tab.buckets) > maxBuckets {
		t.Fatalf("%d buckets", len(tab.buckets))
	}
	last := len(tab.buckets) - 1
	total := 0
	groups := map[netip.Prefix]int{}
	cplGroups := map[cplGroup]int{}
	for i, b := range tab.buckets {
		if len(b) > tab.cfg.BucketSize {
			t.Fatalf("bucket %d holds %d peers, more than %d", i, len(b), tab.cfg.BucketSize)
		}
		total += len(b)
		for _, e := range b {
			if e.cpl != CommonPrefixLen(tab.selfKey, PeerKey(e.id)) || e.key != PeerKey(e.id) {
				t.Fatalf("entry %x has a stale key or cpl", e.id)
			}
			if (i < last && e.cpl != i) || (i == last && e.cpl < i) {
				t.Fatalf("peer with cpl %d in bucket %d of %d", e.cpl, i, len(tab.buckets))
			}
			if tab.peers[e.id] != e {
				t.Fatalf("peer %x in a bucket but not in the index", e.id)
			}
			for _, g := range e.groups {
				groups[g]++
				cplGroups[cplGroup{e.cpl, g}]++
			}
		}
	}
	if total != len(tab.peers) {
		t.Fatalf("buckets hold %d peers, index %d", total, len(tab.peers))
	}
	if !mapsEqual(groups, tab.groups) || !mapsEqual(cplGroups, tab.cplGroups) {
		t.Fatalf("group counts %v / %v, recomputed %v / %v", tab.groups, tab.cplGroups, groups, cplGroups)
	}
}

func mapsEqual[K comparable](a, b map[K]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestAddResultString(t *testing.T) {
	tests := []struct {
		r    AddResult
		want string
	}{
		{Added, "added"},
		{Updated, "updated"},
		{BucketFull, "bucket full"},
		{RefusedDiversity, "refused: IP diversity"},
		{RefusedSelf, "refused: self"},
		{AddResult(42), "AddResult(42)"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", int(tt.r), got, tt.want)
		}
	}
}

func TestTableConfigDefaults(t *testing.T) {
	tests := []struct {
		in, want TableConfig
	}{
		{TableConfig{}, TableConfig{BucketSize: K, MaxPerGroupPerBucket: 2, MaxPerGroup: 3}},
		{TableConfig{BucketSize: -5}, TableConfig{BucketSize: K, MaxPerGroupPerBucket: 2, MaxPerGroup: 3}},
		{TableConfig{BucketSize: 7, MaxPerGroupPerBucket: 5, MaxPerGroup: 9}, TableConfig{BucketSize: 7, MaxPerGroupPerBucket: 5, MaxPerGroup: 9}},
		{TableConfig{MaxPerGroupPerBucket: -3, MaxPerGroup: -1}, TableConfig{BucketSize: K, MaxPerGroupPerBucket: -1, MaxPerGroup: -1}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); got != tt.want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestAddSelfAndUpdate(t *testing.T) {
	g := newIDGen(1)
	self := g.next()
	tab := NewTable(self, TableConfig{})
	if res, ev := tab.Add(self, nil, t0); res != RefusedSelf || ev != "" {
		t.Fatalf("Add(self) = %v, %x", res, ev)
	}
	if tab.Len() != 0 || tab.Contains(self) {
		t.Fatal("self entered the table")
	}
	if tab.Replace("", self, nil, t0) != RefusedSelf {
		t.Fatal("Replace with self not refused")
	}

	p := g.next()
	if res, _ := tab.Add(p, nil, t0); res != Added {
		t.Fatalf("Add = %v, want Added", res)
	}
	later := t0.Add(time.Minute)
	if res, _ := tab.Add(p, ips("8.8.8.8"), later); res != Updated {
		t.Fatalf("second Add = %v, want Updated", res)
	}
	b := tab.Buckets()
	if len(b) != 1 || len(b[0].Peers) != 1 {
		t.Fatalf("Buckets = %+v", b)
	}
	if e := b[0].Peers[0]; e.ID != p || !e.AddedAt.Equal(t0) || !e.LastSeen.Equal(later) || !e.LastUseful.IsZero() {
		t.Fatalf("entry = %+v", e)
	}
	// Updated does not take the IPs of the repeated Add into account.
	checkInvariants(t, tab)
	if len(tab.groups) != 0 {
		t.Fatalf("Updated counted groups %v", tab.groups)
	}
}

func TestSeenAndUseful(t *testing.T) {
	g := newIDGen(2)
	tab := NewTable(g.next(), TableConfig{})
	p, absent := g.next(), g.next()
	tab.Add(p, nil, t0)

	if tab.Seen(absent, t0) || tab.MarkUseful(absent, t0) || tab.UsefulSince(absent, time.Time{}) {
		t.Fatal("absent peer reported present")
	}
	if tab.UsefulSince(p, time.Time{}) {
		t.Fatal("never useful peer reported useful")
	}
	useful := t0.Add(time.Hour)
	if !tab.MarkUseful(p, useful) {
		t.Fatal("MarkUseful: peer not found")
	}
	seen := t0.Add(2 * time.Hour)
	if !tab.Seen(p, seen) {
		t.Fatal("Seen: peer not found")
	}
	tests := []struct {
		since time.Time
		want  bool
	}{
		{time.Time{}, true},
		{t0, true},
		{useful, true},
		{useful.Add(time.Nanosecond), false},
	}
	for _, tt := range tests {
		if got := tab.UsefulSince(p, tt.since); got != tt.want {
			t.Errorf("UsefulSince(%v) = %v, want %v", tt.since, got, tt.want)
		}
	}
	e := tab.Buckets()[0].Peers[0]
	if !e.LastUseful.Equal(useful) || !e.LastSeen.Equal(seen) || !e.AddedAt.Equal(t0) {
		t.Fatalf("entry = %+v", e)
	}
}

func TestSplitManyPeers(t *testing.T) {
	for _, size := range []int{K, 4, 1} {
		t.Run(fmt.Sprint("bucket size ", size), func(t *testing.T) {
			g := newIDGen(3)
			self := g.next()
			tab := NewTable(self, TableConfig{BucketSize: size})
			added := map[peer.ID]bool{}
			results := map[AddResult]int{}
			for range 5000 {
				p := g.next()
				res, ev := tab.Add(p, nil, t0)
				results[res]++
				switch res {
				case Added:
					added[p] = true
				case BucketFull:
					if !added[ev] {
						t.Fatalf("eviction candidate %x is not in the table", ev)
					}
				default:
					t.Fatalf("Add = %v", res)
				}
			}
			checkInvariants(t, tab)
			if tab.Len() != len(added) {
				t.Fatalf("Len = %d, added %d", tab.Len(), len(added))
			}
			sum := 0
			for _, b := range tab.Buckets() {
				if len(b.Peers) > size {
					t.Fatalf("bucket %d holds %d", b.CPL, len(b.Peers))
				}
				sum += len(b.Peers)
			}
			if sum != tab.Len() {
				t.Fatalf("buckets sum to %d, Len %d", sum, tab.Len())
			}
			peers := tab.Peers()
			if len(peers) != len(added) {
				t.Fatalf("Peers has %d, want %d", len(peers), len(added))
			}
			for _, p := range peers {
				if !added[p] || !tab.Contains(p) {
					t.Fatalf("Peers lists %x, which was not added", p)
				}
			}
			// 5,000 random peers fill the low buckets: about log2(5000/size)
			// of them are full, and the table must have split that deep.
			if results[BucketFull] == 0 || len(tab.Buckets()) < 5 {
				t.Fatalf("results %v with %d buckets: the table did not fill and split", results, len(tab.Buckets()))
			}
		})
	}
}

func TestSplitOnlyLastBucket(t *testing.T) {
	g := newIDGen(4)
	self := g.next()
	tab := NewTable(self, TableConfig{BucketSize: 2})
	// Two peers of cpl 3 fill the single bucket; a third of cpl 3 splits
	// it down to bucket 3, where the two already are: BucketFull.
	deep := g.withCPL(self, 3, 3)
	for _, p := range deep[:2] {
		if res, _ := tab.Add(p, nil, t0); res != Added {
			t.Fatalf("Add = %v", res)
		}
	}
	if res, ev := tab.Add(deep[2], nil, t0); res != BucketFull || (ev != deep[0] && ev != deep[1]) {
		t.Fatalf("Add = %v, %x", res, ev)
	}
	// As in go, splitting goes on while the new last bucket overflows:
	// bucket 3 holds both and splits once more, into an empty bucket 4.
	if n := len(tab.Buckets()); n != 5 {
		t.Fatalf("%d buckets after split, want 5 (0..4)", n)
	}
	// Bucket 0 is a proper bucket now and has room.
	for _, p := range g.withCPL(self, 0, 2) {
		if res, _ := tab.Add(p, nil, t0); res != Added {
			t.Fatalf("Add cpl 0 = %v", res)
		}
	}
	if res, _ := tab.Add(g.withCPL(self, 0, 1)[0], nil, t0); res != BucketFull {
		t.Fatalf("third cpl-0 peer: %v, want BucketFull (bucket 0 is not last, so no split)", res)
	}
	checkInvariants(t, tab)
}

func TestBucketFullLeastRecentlySeen(t *testing.T) {
	g := newIDGen(5)
	self := g.next()
	tab := NewTable(self, TableConfig{})
	peers := g.withCPL(self, 0, K+1)
	for i, p := range peers[:K] {
		if res, _ := tab.Add(p, nil, t0.Add(time.Duration(i)*time.Second)); res != Added {
			t.Fatalf("Add %d = %v", i, res)
		}
	}
	// Oldest by insertion is peers[0]; refresh it and peers[1..4] so that
	// peers[5] is now the least recently seen.
	for i := range 5 {
		tab.Seen(peers[i], t0.Add(time.Hour+time.Duration(i)*time.Second))
	}
	tab.Add(peers[6], nil, t0.Add(2*time.Hour)) // Updated: also refreshes
	res, ev := tab.Add(peers[K], nil, t0.Add(3*time.Hour))
	if res != BucketFull || ev != peers[5] {
		t.Fatalf("Add = %v, %x; want BucketFull, %x", res, ev, peers[5])
	}
	if tab.Contains(peers[K]) {
		t.Fatal("refused peer is in the table")
	}
	// The caller found peers[5] alive: Seen, and the next candidate is
	// peers[7].
	tab.Seen(peers[5], t0.Add(4*time.Hour))
	if _, ev := tab.Add(peers[K], nil, t0.Add(4*time.Hour)); ev != peers[7] {
		t.Fatalf("next candidate %x, want %x", ev, peers[7])
	}
	// peers[7] fails its check: Replace.
	if res := tab.Replace(peers[7], peers[K], nil, t0.Add(5*time.Hour)); res != Added {
		t.Fatalf("Replace = %v", res)
	}
	if tab.Contains(peers[7]) || !tab.Contains(peers[K]) || tab.Len() != K {
		t.Fatalf("after Replace: old %v new %v len %d", tab.Contains(peers[7]), tab.Contains(peers[K]), tab.Len())
	}
	checkInvariants(t, tab)
}

func TestReplace(t *testing.T) {
	g := newIDGen(6)
	self := g.next()
	group := ips("8.8.1.1")
	tests := []struct {
		name string
		// build fills the table and returns old and new.
		build   func(tab *Table) (old, new peer.ID, newIPs []netip.Addr)
		want    AddResult
		oldGone bool
	}{
		{
			name: "absent old",
			build: func(tab *Table) (peer.ID, peer.ID, []netip.Addr) {
				return g.next(), g.next(), nil
			},
			want: Added, oldGone: true,
		},
		{
			name: "new already present",
			build: func(tab *Table) (peer.ID, peer.ID, []netip.Addr) {
				old, nw := g.next(), g.next()
				tab.Add(old, nil, t0)
				tab.Add(nw, nil, t0)
				return old, nw, nil
			},
			want: Updated, oldGone: true,
		},
		{
			name: "same peer",
			build: func(tab *Table) (peer.ID, peer.ID, []netip.Addr) {
				p := g.next()
				tab.Add(p, nil, t0)
				return p, p, nil
			},
			want: Updated, oldGone: false,
		},
		{
			name: "diversity still applies",
			build: func(tab *Table) (peer.ID, peer.ID, []netip.Addr) {
				ps := g.withCPL(self, 0, 3)
				tab.Add(ps[0], group, t0)
				tab.Add(ps[1], group, t0)
				old := g.next()
				tab.Add(old, nil, t0)
				return old, ps[2], group
			},
			want: RefusedDiversity, oldGone: true,
		},
		{
			name: "old frees its group slot",
			build: func(tab *Table) (peer.ID, peer.ID, []netip.Addr) {
				ps := g.withCPL(self, 0, 3)
				tab.Add(ps[0], group, t0)
				tab.Add(ps[1], group, t0)
				return ps[1], ps[2], group
			},
			want: Added, oldGone: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(self, TableConfig{})
			old, nw, newIPs := tt.build(tab)
			if got := tab.Replace(old, nw, newIPs, t0); got != tt.want {
				t.Fatalf("Replace = %v, want %v", got, tt.want)
			}
			if tab.Contains(old) == tt.oldGone {
				t.Fatalf("old present = %v, want %v", tab.Contains(old), !tt.oldGone)
			}
			if (tt.want == Added || tt.want == Updated) != tab.Contains(nw) {
				t.Fatalf("new present = %v after %v", tab.Contains(nw), tt.want)
			}
			checkInvariants(t, tab)
		})
	}
}

func TestDiversity(t *testing.T) {
	g := newIDGen(7)
	self := g.next()
	// Peers at common-prefix lengths 0..3, several of each.
	byCPL := make([][]peer.ID, 4)
	for c := range byCPL {
		byCPL[c] = g.withCPL(self, c, 8)
	}
	type step struct {
		cpl, i int // the peer byCPL[cpl][i]
		ips    []netip.Addr
		want   AddResult
		remove bool // Remove the peer instead of adding it
	}
	tests := []struct {
		name  string
		cfg   TableConfig
		steps []step
	}{
		{
			name: "3 per /16 in the table",
			steps: []step{
				{cpl: 0, i: 0, ips: ips("8.8.1.1"), want: Added},
				{cpl: 1, i: 0, ips: ips("8.8.2.2"), want: Added},
				{cpl: 2, i: 0, ips: ips("8.8.255.3"), want: Added},
				{cpl: 3, i: 0, ips: ips("8.8.4.4"), want: RefusedDiversity},
				{cpl: 3, i: 1, ips: ips("8.9.4.4"), want: Added},
			},
		},
		{
			name: "2 per /16 per cpl",
			steps: []step{
				{cpl: 1, i: 0, ips: ips("1.2.3.4"), want: Added},
				{cpl: 1, i: 1, ips: ips("1.2.3.5"), want: Added},
				{cpl: 1, i: 2, ips: ips("1.2.200.1"), want: RefusedDiversity},
				{cpl: 0, i: 0, ips: ips("1.2.3.6"), want: Added},
				{cpl: 1, i: 3, ips: ips("1.3.0.1"), want: Added},
			},
		},
		{
			name: "Remove frees the slot",
			steps: []step{
				{cpl: 0, i: 0, ips: ips("9.9.0.1"), want: Added},
				{cpl: 0, i: 1, ips: ips("9.9.0.2"), want: Added},
				{cpl: 0, i: 2, ips: ips("9.9.0.3"), want: RefusedDiversity},
				{cpl: 0, i: 0, remove: true},
				{cpl: 0, i: 2, ips: ips("9.9.0.3"), want: Added},
				{cpl: 1, i: 0, ips: ips("9.9.0.4"), want: Added},
				{cpl: 2, i: 0, ips: ips("9.9.0.5"), want: RefusedDiversity},
				{cpl: 1, i: 0, remove: true},
				{cpl: 2, i: 0, ips: ips("9.9.0.5"), want: Added},
			},
		},
		{
			name: "IPv6 groups by /32",
			steps: []step{
				{cpl: 0, i: 0, ips: ips("2001:db8:1::1"), want: Added},
				{cpl: 0, i: 1, ips: ips("2001:db8:ffff::1"), want: Added},
				{cpl: 0, i: 2, ips: ips("2001:db8::2"), want: RefusedDiversity},
				{cpl: 0, i: 3, ips: ips("2001:db9::2"), want: Added},
				{cpl: 1, i: 0, ips: ips("2001:db8::3%eth0"), want: Added},
				{cpl: 2, i: 0, ips: ips("2001:0db8:abcd::4"), want: RefusedDiversity},
			},
		},
		{
			name: "IPv4-mapped counts as IPv4",
			steps: []step{
				{cpl: 0, i: 0, ips: ips("::ffff:5.6.7.8"), want: Added},
				{cpl: 0, i: 1, ips: ips("5.6.1.1"), want: Added},
				{cpl: 0, i: 2, ips: ips("::ffff:5.6.200.200"), want: RefusedDiversity},
			},
		},
		{
			name: "several IPs count in each group",
			steps: []step{
				{cpl: 0, i: 0, ips: ips("7.7.0.1", "2600:1::1"), want: Added},
				{cpl: 0, i: 1, ips: ips("2600:1::2"), want: Added},
				// 7.7/16 has room but 2600:1::/32 is full at cpl 0.
				{cpl: 0, i: 2, ips: ips("7.7.0.3", "2600:1::3"), want: RefusedDiversity},
				{cpl: 0, i: 3, ips: ips("7.7.0.4"), want: Added},
			},
		},
		{
			name: "one peer with two IPs in a group counts once",
			steps: []step{
				{cpl: 0, i: 0, ips: ips("6.6.0.1", "6.6.0.2", "::ffff:6.6.0.3"), want: Added},
				{cpl: 0, i: 1, ips: ips("6.6.0.4"), want: Added},
				{cpl: 1, i: 0, ips: ips("6.6.0.5"), want: Added},
				{cpl: 2, i: 0, ips: ips("6.6.0.6"), want: RefusedDiversity},
			},
		},
		{
			name: "private IPs do not shield a public one",
			steps: []step{
				{cpl: 0, i: 0, ips: ips("3.3.0.1"), want: Added},
				{cpl: 0, i: 1, ips: ips("3.3.0.2"), want: Added},
				{cpl: 0, i: 2, ips: ips("10.0.0.1", "3.3.0.3"), want: RefusedDiversity},
				// 100.128/16 is just outside the CGNAT block: public.
				{cpl: 1, i: 0, ips: ips("100.128.0.1"), want: Added},
				{cpl: 1, i: 1, ips: ips("100.128.0.2"), want: Added},
				{cpl: 1, i: 2, ips: ips("100.128.0.3"), want: RefusedDiversity},
			},
		},
		{
			name: "negative config disables both",
			cfg:  TableConfig{MaxPerGroupPerBucket: -1, MaxPerGroup: -1},
			steps: []step{
				{cpl: 0, i: 0, ips: ips("8.8.8.8"), want: Added},
				{cpl: 0, i: 1, ips: ips("8.8.8.8"), want: Added},
				{cpl: 0, i: 2, ips: ips("8.8.8.8"), want: Added},
				{cpl: 1, i: 0, ips: ips("8.8.8.8"), want: Added},
				{cpl: 2, i: 0, ips: ips("8.8.8.8"), want: Added},
			},
		},
		{
			name: "negative per-bucket keeps the table bound",
			cfg:  TableConfig{MaxPerGroupPerBucket: -1},
			steps: []step{
				{cpl: 0, i: 0, ips: ips("8.8.8.8"), want: Added},
				{cpl: 0, i: 1, ips: ips("8.8.8.8"), want: Added},
				{cpl: 0, i: 2, ips: ips("8.8.8.8"), want: Added},
				{cpl: 1, i: 0, ips: ips("8.8.8.8"), want: RefusedDiversity},
			},
		},
		{
			name: "negative table bound keeps the per-bucket one",
			cfg:  TableConfig{MaxPerGroup: -1},
			steps: []step{
				{cpl: 0, i: 0, ips: ips("8.8.8.8"), want: Added},
				{cpl: 0, i: 1, ips: ips("8.8.8.8"), want: Added},
				{cpl: 0, i: 2, ips: ips("8.8.8.8"), want: RefusedDiversity},
				{cpl: 1, i: 0, ips: ips("8.8.8.8"), want: Added},
				{cpl: 2, i: 0, ips: ips("8.8.8.8"), want: Added},
				{cpl: 3, i: 0, ips: ips("8.8.8.8"), want: Added},
			},
		},
		{
			name: "custom bounds",
			cfg:  TableConfig{MaxPerGroupPerBucket: 1, MaxPerGroup: 1},
			steps: []step{
				{cpl: 0, i: 0, ips: ips("8.8.8.8"), want: Added},
				{cpl: 1, i: 0, ips: ips("8.8.8.8"), want: RefusedDiversity},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(self, tt.cfg)
			for n, s := range tt.steps {
				p := byCPL[s.cpl][s.i]
				if s.remove {
					if !tab.Remove(p) {
						t.Fatalf("step %d: Remove: not present", n)
					}
					continue
				}
				if res, _ := tab.Add(p, s.ips, t0); res != s.want {
					t.Fatalf("step %d: Add(cpl %d, %v) = %v, want %v", n, s.cpl, s.ips, res, s.want)
				}
				if tab.Contains(p) != (s.want == Added) {
					t.Fatalf("step %d: Contains = %v after %v", n, tab.Contains(p), s.want)
				}
				checkInvariants(t, tab)
			}
		})
	}
}

func TestNonPublicUnconstrained(t *testing.T) {
	g := newIDGen(20)
	self := g.next()
	same := g.withCPL(self, 0, 5)
	for _, addr := range []string{
		"127.0.0.1", "127.9.9.9", "::1", "10.0.0.1", "172.16.0.1", "172.31.255.1",
		"192.168.1.1", "100.64.0.1", "100.127.255.254", "169.254.1.1",
		"fe80::1", "fe80::1%eth0", "fd00::1", "fc00::1", "0.0.0.0", "::", "0.1.2.3",
		"255.255.255.255", "224.0.0.1", "ff02::1", "ff01::1", "::ffff:10.0.0.3", "::ffff:127.0.0.1",
	} {
		t.Run(addr, func(t *testing.T) {
			tab := NewTable(self, TableConfig{})
			for _, p := range same {
				if res, _ := tab.Add(p, ips(addr), t0); res != Added {
					t.Fatalf("Add = %v, want Added", res)
				}
			}
			checkInvariants(t, tab)
			if len(tab.groups) != 0 {
				t.Fatalf("counted groups %v", tab.groups)
			}
		})
	}
	tab := NewTable(self, TableConfig{})
	for _, p := range same {
		if res, _ := tab.Add(p, []netip.Addr{{}}, t0); res != Added {
			t.Fatalf("Add with the zero Addr = %v, want Added", res)
		}
	}
}

func TestIPGroup(t *testing.T) {
	tests := []struct {
		ip   string
		want string // "" for no group
	}{
		{"8.8.8.8", "8.8.0.0/16"},
		{"::ffff:8.8.4.4", "8.8.0.0/16"},
		{"1.2.3.4", "1.2.0.0/16"},
		{"100.63.255.255", "100.63.0.0/16"},
		{"100.128.0.0", "100.128.0.0/16"},
		{"172.15.0.1", "172.15.0.0/16"},
		{"172.32.0.1", "172.32.0.0/16"},
		{"2001:db8:1234::1", "2001:db8::/32"},
		{"2600:1f18:aaaa:bbbb::1%eth0", "2600:1f18::/32"},
		{"2a00:1450::200e", "2a00:1450::/32"},
		{"10.1.2.3", ""},
		{"100.100.0.1", ""},
		{"192.168.0.1", ""},
		{"127.0.0.1", ""},
		{"fd12:3456::1", ""},
		{"fe80::1", ""},
		{"::", ""},
		{"ff0e::1", ""},
	}
	for _, tt := range tests {
		g, ok := ipGroup(netip.MustParseAddr(tt.ip))
		if tt.want == "" {
			if ok {
				t.Errorf("ipGroup(%s) = %v, want no group", tt.ip, g)
			}
			continue
		}
		if !ok || g != netip.MustParsePrefix(tt.want) {
			t.Errorf("ipGroup(%s) = %v, %v, want %s", tt.ip, g, ok, tt.want)
		}
	}
}

func TestDiversityTooManyGroups(t *testing.T) {
	g := newIDGen(8)
	tab := NewTable(g.next(), TableConfig{})
	var many []netip.Addr
	for i := range maxGroupsPerPeer + 1 {
		many = append(many, netip.AddrFrom4([4]byte{20, byte(i), 0, 1}))
	}
	if res, _ := tab.Add(g.next(), many, t0); res != RefusedDiversity {
		t.Fatalf("peer in %d groups: %v, want RefusedDiversity", len(many), res)
	}
	if res, _ := tab.Add(g.next(), many[:maxGroupsPerPeer], t0); res != Added {
		t.Fatalf("peer in %d groups: %v, want Added", maxGroupsPerPeer, res)
	}
	checkInvariants(t, tab)
}

func TestRemove(t *testing.T) {
	g := newIDGen(9)
	self := g.next()
	tab := NewTable(self, TableConfig{BucketSize: 3})
	var in []peer.ID
	for range 400 {
		p := g.next()
		if res, _ := tab.Add(p, nil, t0); res == Added {
			in = append(in, p)
		}
	}
	if tab.Remove(g.next()) || tab.Remove(self) {
		t.Fatal("Remove of an absent peer reported true")
	}
	r := mrand.New(mrand.NewPCG(9, 9))
	r.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
	for i, p := range in {
		if !tab.Remove(p) {
			t.Fatalf("Remove %x: not present", p)
		}
		if tab.Contains(p) || tab.Remove(p) {
			t.Fatalf("%x still present after Remove", p)
		}
		if tab.Len() != len(in)-i-1 {
			t.Fatalf("Len = %d, want %d", tab.Len(), len(in)-i-1)
		}
		checkInvariants(t, tab)
		// Buckets fold back as they empty: no empty last bucket, and no
		// empty one before it, beyond the single initial bucket.
		if b := tab.Buckets(); len(b) > 1 && (len(b[len(b)-1].Peers) == 0 || len(b[len(b)-2].Peers) == 0) {
			t.Fatalf("after %d removals the last buckets are empty: %d buckets", i+1, len(b))
		}
	}
	if b := tab.Buckets(); len(b) != 1 || len(b[0].Peers) != 0 {
		t.Fatalf("empty table has buckets %+v", b)
	}
	// The emptied table fills again.
	if res, _ := tab.Add(in[0], nil, t0); res != Added {
		t.Fatalf("re-Add = %v", res)
	}
}

// bruteNearest sorts all peers by distance to target, the slow way: a
// full sort of every peer, hashing as it goes.
func bruteNearest(all []peer.ID, target Key) []peer.ID {
	out := slices.Clone(all)
	keys := make(map[peer.ID]Key, len(out))
	for _, p := range out {
		keys[p] = PeerKey(p)
	}
	slices.SortFunc(out, func(a, b peer.ID) int {
		da, db := target.Distance(keys[a]), target.Distance(keys[b])
		return bytes.Compare(da[:], db[:])
	})
	return out
}

func TestNearestPeers(t *testing.T) {
	tests := []struct {
		name  string
		seed  uint64
		peers int
		cfg   TableConfig
	}{
		{"empty", 10, 0, TableConfig{}},
		{"one", 11, 1, TableConfig{}},
		{"one bucket", 12, 15, TableConfig{}},
		{"1500 peers", 13, 1500, TableConfig{}},
		{"3000 peers small buckets", 14, 3000, TableConfig{BucketSize: 3}},
		{"2000 peers big buckets", 15, 2000, TableConfig{BucketSize: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIDGen(tt.seed)
			self := g.next()
			tab := NewTable(self, tt.cfg)
			for range tt.peers {
				tab.Add(g.next(), nil, t0)
			}
			checkInvariants(t, tab)
			targets := []Key{PeerKey(self), {}}
			for _, p := range tab.Peers()[:min(20, tab.Len())] {
				targets = append(targets, PeerKey(p))
			}
			for range 200 {
				targets = append(targets, PeerKey(g.next()))
			}
			// Targets sharing long prefixes with self exercise the last
			// bucket and the deep end of the order.
			for c := range 12 {
				targets = append(targets, PeerKey(g.withCPL(self, c, 1)[0]))
			}
			all := tab.Peers()
			for _, target := range targets {
				sorted := bruteNearest(all, target)
				for _, n := range []int{1, 2, K, 3 * K, 100, tab.Len(), tab.Len() + 7} {
					got := tab.NearestPeers(target, n)
					want := sorted[:min(n, len(sorted))]
					if !slices.Equal(got, want) {
						t.Fatalf("NearestPeers(%x, %d): %d peers, differ from brute force (%d)", target[:4], n, len(got), len(want))
					}
				}
			}
			for _, n := range []int{0, -1} {
				if got := tab.NearestPeers(targets[0], n); len(got) != 0 {
					t.Fatalf("NearestPeers(n=%d) = %d peers", n, len(got))
				}
			}
		})
	}
}

func TestRefreshTargets(t *testing.T) {
	g := newIDGen(16)
	self := g.next()
	upTo := func(n int) []int {
		out := make([]int, n+1)
		for i := range out {
			out[i] = i
		}
		return out
	}
	tests := []struct {
		name string
		cpls []int // common-prefix lengths of the peers to add
		want []int
	}{
		{"empty", nil, upTo(0)},
		{"cpl 0 only", []int{0, 0}, upTo(0)},
		{"deepest 5", []int{0, 5, 2}, upTo(5)},
		{"gap", []int{9}, upTo(9)},
		{"capped", []int{1, 17}, upTo(MaxRefreshCPL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(self, TableConfig{})
			for _, c := range tt.cpls {
				tab.Add(g.withCPL(self, c, 1)[0], nil, t0)
			}
			if got := tab.RefreshTargets(); !slices.Equal(got, tt.want) {
				t.Fatalf("RefreshTargets = %v, want %v", got, tt.want)
			}
		})
	}
	// After splits the deepest peer may sit below the last bucket.
	tab := NewTable(self, TableConfig{BucketSize: 1})
	tab.Add(g.withCPL(self, 4, 1)[0], nil, t0)
	tab.Add(g.withCPL(self, 2, 1)[0], nil, t0)
	tab.Add(g.withCPL(self, 0, 1)[0], nil, t0)
	if got := tab.RefreshTargets(); !slices.Equal(got, upTo(4)) {
		t.Fatalf("after splits RefreshTargets = %v (buckets %d), want %v", got, len(tab.Buckets()), upTo(4))
	}
}

func TestBucketsInfo(t *testing.T) {
	g := newIDGen(17)
	self := g.next()
	tab := NewTable(self, TableConfig{BucketSize: 2})
	a, b := g.withCPL(self, 0, 2), g.withCPL(self, 1, 1)
	tab.Add(a[0], nil, t0)
	tab.Add(a[1], nil, t0.Add(time.Second))
	tab.Add(b[0], nil, t0.Add(2*time.Second)) // splits: bucket 0 is full
	tab.MarkUseful(a[1], t0.Add(time.Hour))
	got := tab.Buckets()
	want := []BucketInfo{
		{CPL: 0, Peers: []EntryInfo{
			{ID: a[0], AddedAt: t0, LastSeen: t0},
			{ID: a[1], AddedAt: t0.Add(time.Second), LastSeen: t0.Add(time.Second), LastUseful: t0.Add(time.Hour)},
		}},
		{CPL: 1, Peers: []EntryInfo{{ID: b[0], AddedAt: t0.Add(2 * time.Second), LastSeen: t0.Add(2 * time.Second)}}},
	}
	if !slices.EqualFunc(got, want, func(x, y BucketInfo) bool { return x.CPL == y.CPL && slices.Equal(x.Peers, y.Peers) }) {
		t.Fatalf("Buckets = %+v\nwant %+v", got, want)
	}
	// The result is a copy.
	got[0].Peers[0].ID = "changed"
	if tab.Buckets()[0].Peers[0].ID != a[0] {
		t.Fatal("Buckets shares memory with the table")
	}
}

func TestTableConcurrent(t *testing.T) {
	g := newIDGen(18)
	self := g.next()
	tab := NewTable(self, TableConfig{})
	ids := make([][]peer.ID, 4)
	for i := range ids {
		for range 300 {
			ids[i] = append(ids[i], g.next())
		}
	}
	var wg sync.WaitGroup
	for _, batch := range ids {
		wg.Go(func() {
			for i, p := range batch {
				tab.Add(p, ips(fmt.Sprintf("%d.%d.0.1", 11+i%50, i%7)), t0)
				tab.NearestPeers(PeerKey(p), K)
				tab.Seen(p, t0)
				tab.MarkUseful(p, t0)
				if i%3 == 0 {
					tab.Remove(p)
				}
				tab.Buckets()
				tab.RefreshTargets()
			}
		})
	}
	wg.Wait()
	checkInvariants(t, tab)
}

// BenchmarkNearestPeers looks up the K nearest peers in a table of 2,000
// peers. Random IDs fill bucket i with a 2^-(i+1) share of the network,
// so a table with K-sized buckets stays near 20·log2(N/20) peers; 2,000
// take a bucket size of 250. The Amino case is a K-bucket table filled
// from 100,000 candidates.
func BenchmarkNearestPeers(b *testing.B) {
	for _, bc := range []struct {
		name       string
		bucketSize int
		peers      int // stop once the table holds this many
		candidates int
	}{
		{"2000 peers", 250, 2000, 1 << 20},
		{"amino", K, 1 << 20, 100_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := newIDGen(19)
			tab := NewTable(g.next(), TableConfig{BucketSize: bc.bucketSize})
			for i := 0; i < bc.candidates && tab.Len() < bc.peers; i++ {
				tab.Add(g.next(), nil, t0)
			}
			if bc.peers < 1<<20 && tab.Len() != bc.peers {
				b.Fatalf("table holds %d peers, want %d", tab.Len(), bc.peers)
			}
			targets := make([]Key, 256)
			for i := range targets {
				targets[i] = PeerKey(g.next())
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tab.NearestPeers(targets[i%len(targets)], K)
				i++
			}
			b.ReportMetric(float64(tab.Len()), "peers")
		})
	}
}
