package node

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func TestClassifyIP(t *testing.T) {
	lab := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	for _, tc := range []struct {
		ip   string
		want Scope
		lab  bool
	}{
		{"8.8.8.8", ScopePublic, false},
		{"2a00:1450::1", ScopePublic, false},
		{"10.1.2.3", ScopePrivate, false},
		{"172.31.255.1", ScopePrivate, false},
		{"192.168.1.1", ScopePrivate, false},
		{"fd00::1", ScopePrivate, false},
		{"127.0.0.9", ScopeLoopback, false},
		{"::1", ScopeLoopback, false},
		{"169.254.3.4", ScopeLinkLocal, false},
		{"fe80::1", ScopeLinkLocal, false},
		{"100.64.0.1", ScopeShared, false},
		{"192.0.2.7", ScopeDocumentation, false},
		{"198.51.100.7", ScopeDocumentation, false},
		{"203.0.113.7", ScopeDocumentation, false},
		{"2001:db8::7", ScopeDocumentation, false},
		{"0.0.0.0", ScopeUnspecified, false},
		{"::", ScopeUnspecified, false},
		{"224.0.0.1", ScopeUnspecified, false},
		{"::ffff:10.0.0.1", ScopePrivate, false},
		{"198.51.100.7", ScopePublic, true},
		{"203.0.113.7", ScopeDocumentation, true},
	} {
		var tap []netip.Prefix
		if tc.lab {
			tap = lab
		}
		if got := ClassifyIP(netip.MustParseAddr(tc.ip), tap); got != tc.want {
			t.Errorf("ClassifyIP(%s, lab %v) = %s, want %s", tc.ip, tc.lab, got, tc.want)
		}
	}
	n := newNode(t, transport.NewMemNetwork(), false, func(c *Config) { c.TreatAsPublic = lab })
	for addr, want := range map[string]Scope{
		"/ip4/198.51.100.1/tcp/1":     ScopePublic,
		"/ip4/10.0.0.1/udp/1/quic-v1": ScopePrivate,
		"/memory/3":                   ScopeNone,
	} {
		if got := n.AddrScope(ma.StringCast(addr)); got != want {
			t.Errorf("AddrScope(%s) = %s, want %s", addr, got, want)
		}
	}
}

// fakeConn is a transport connection that only has addresses.
type fakeConn struct {
	transport.Conn
	local, remote ma.Multiaddr
}

func (f fakeConn) LocalMultiaddr() ma.Multiaddr  { return f.local }
func (f fakeConn) RemoteMultiaddr() ma.Multiaddr { return f.remote }

// observeFrom records that a peer at remote observed us as addr on a
// connection to our local address, as identify does.
func observeFrom(n *Node, local, remote, addr string) *Conn {
	c := &Conn{tc: fakeConn{local: ma.StringCast(local), remote: ma.StringCast(remote)}, node: n}
	n.hmu.Lock()
	ok := n.observe(c, ma.StringCast(addr))
	n.hmu.Unlock()
	if ok {
		n.addrsChanged()
	}
	return c
}

func entryOf(n *Node, addr string) (AddrEntry, bool) {
	for _, e := range n.AddrEntries() {
		if e.Addr.Equal(ma.StringCast(addr)) {
			return e, true
		}
	}
	return AddrEntry{}, false
}

// TestObservedAddrs: an observed address becomes a candidate only once
// ObservedThreshold distinct observer groups report it (one peer or one
// IPv6 /56 cannot), is advertised only once confirmed, and is forgotten
// as its observers' connections close.
func TestObservedAddrs(t *testing.T) {
	n := newNode(t, transport.NewMemNetwork(), false)
	const local, ours = "/ip4/10.0.0.2/tcp/4001", "/ip4/198.51.100.9/tcp/4001"
	var conns []*Conn
	// Many observers from one /56 and the same observer twice count once.
	for i := range 6 {
		conns = append(conns, observeFrom(n, local, fmt.Sprintf("/ip6/2001:db8:0:1%x::%d/tcp/5000", i%16, i), ours))
	}
	conns = append(conns, observeFrom(n, local, "/ip4/192.0.2.1/tcp/5000", ours))
	conns = append(conns, observeFrom(n, local, "/ip4/192.0.2.1/tcp/5001", ours))
	obs := n.ObservedAddrs()
	if len(obs) != 1 || obs[0].Observers != 2 {
		t.Fatalf("observed = %+v, want one address with 2 observer groups", obs)
	}
	if _, ok := entryOf(n, ours); ok {
		t.Fatal("an address 2 groups observed is already a candidate")
	}
	// A TCP observer cannot tell us a QUIC address.
	observeFrom(n, local, "/ip4/192.0.2.50/tcp/1", "/ip4/198.51.100.9/udp/4001/quic-v1")
	if len(n.ObservedAddrs()) != 1 {
		t.Fatalf("an observation of another transport was kept: %+v", n.ObservedAddrs())
	}
	for i := 2; i <= ObservedThreshold; i++ {
		conns = append(conns, observeFrom(n, local, fmt.Sprintf("/ip4/192.0.2.%d/tcp/5000", i), ours))
	}
	e, ok := entryOf(n, ours)
	if !ok || e.State != AddrCandidate || !slices.Equal(e.Sources, []string{SourceObserved}) {
		t.Fatalf("after %d observer groups: entry %+v (%v), want an observed candidate", ObservedThreshold+1, e, ok)
	}
	if slices.ContainsFunc(n.Addrs(), func(a ma.Multiaddr) bool { return a.Equal(ma.StringCast(ours)) }) {
		t.Fatal("a candidate is advertised")
	}
	n.SetAddrState(ma.StringCast(ours), AddrConfirmed)
	if !slices.ContainsFunc(n.Addrs(), func(a ma.Multiaddr) bool { return a.Equal(ma.StringCast(ours)) }) {
		t.Fatalf("a confirmed address is not advertised: %v", n.Addrs())
	}
	for _, c := range conns {
		n.hmu.Lock()
		had := n.forget(c)
		n.hmu.Unlock()
		if had {
			n.addrsChanged()
		}
	}
	if obs := n.ObservedAddrs(); len(obs) != 0 {
		t.Fatalf("after the observers left: %+v", obs)
	}
	if _, ok := entryOf(n, ours); ok {
		t.Error("an address nobody observes any more is still a candidate")
	}
}

// TestAddrSources: services add candidates, bounded per source and in
// sources; a confirmation advertises one; only a change of what is
// advertised re-signs the peer record and tells the hooks, and a change
// of protocols does not re-sign it.
func TestAddrSources(t *testing.T) {
	mn := transport.NewMemNetwork()
	n := newNode(t, mn, true)
	changes := 0
	n.AddHooks(Hooks{AddrsChanged: func([]ma.Multiaddr) { changes++ }})
	changes = 0 // the replay
	rec := n.record.Load()
	mapped := ma.StringCast("/ip4/198.51.100.1/tcp/4001")
	if err := n.SetAddrs("upnp", []ma.Multiaddr{mapped, mapped}); err != nil {
		t.Fatal(err)
	}
	if e, ok := entryOf(n, mapped.String()); !ok || e.State != AddrCandidate {
		t.Fatalf("upnp address: %+v %v, want a candidate", e, ok)
	}
	if changes != 0 || n.record.Load() != rec {
		t.Fatalf("a candidate changed what is advertised (%d hook calls, record re-signed %v)", changes, n.record.Load() != rec)
	}
	n.SetAddrState(mapped, AddrConfirmed)
	if changes != 1 || n.record.Load() == rec {
		t.Fatalf("confirming: %d hook calls, record re-signed %v; want 1 and true", changes, n.record.Load() != rec)
	}
	rec = n.record.Load()
	n.SetHandler("/test/new/1", func(s *Stream) { s.Reset() })
	if n.record.Load() != rec || changes != 1 {
		t.Fatal("a new protocol re-signed the peer record or changed our addresses")
	}
	if info := n.info.Load(); !slices.Contains(info.Protocols, "/test/new/1") || !slices.ContainsFunc(info.ListenAddrs, mapped.Equal) {
		t.Fatalf("identify info lacks the new protocol or the confirmed address: %+v", info)
	}
	var lim *LimitError
	many := make([]ma.Multiaddr, MaxAddrsPerSource+1)
	for i := range many {
		many[i] = ma.StringCast(fmt.Sprintf("/ip4/198.51.100.%d/tcp/1", i))
	}
	if err := n.SetAddrs("stun", many); !errors.As(err, &lim) {
		t.Fatalf("%d addresses from one source: %v, want a LimitError", len(many), err)
	}
	for i := range MaxAddrSources {
		err := n.SetAddrs(fmt.Sprintf("src%d", i), many[:1])
		if i < MaxAddrSources-1 && err != nil {
			t.Fatalf("source %d: %v", i, err)
		}
		if i == MaxAddrSources-1 && !errors.As(err, &lim) {
			t.Fatalf("source %d of %d: %v, want a LimitError", i+1, MaxAddrSources, err)
		}
	}
	if err := n.SetAddrs(SourceObserved, many[:1]); err == nil {
		t.Error("a service could set the node's own observed addresses")
	}
	if err := n.SetAddrs("upnp", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := entryOf(n, mapped.String()); ok {
		t.Error("a removed source's address is still known")
	}
}

// TestAnnounce: Announce replaces the listen addresses, AppendAnnounce
// adds to them, NoAnnounce filters by address and range, as in Kubo;
// identify and the signed record carry the result.
func TestAnnounce(t *testing.T) {
	ctx := testCtx(t)
	pub := ma.StringCast("/ip4/198.51.100.7/tcp/4001")
	extra := ma.StringCast("/ip4/203.0.113.5/udp/4001/quic-v1")
	hidden := ma.StringCast("/ip4/10.1.2.3/tcp/4001")
	for _, tc := range []struct {
		name              string
		announce, appendA []ma.Multiaddr
		noAnnounce        []ma.Multiaddr
		wantListen        bool
		want              []ma.Multiaddr
	}{
		{"default", nil, nil, nil, true, nil},
		{"announce", []ma.Multiaddr{pub}, nil, nil, false, []ma.Multiaddr{pub}},
		{"append", nil, []ma.Multiaddr{extra}, nil, true, []ma.Multiaddr{extra}},
		{"no-announce range", nil, []ma.Multiaddr{extra, hidden}, []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.0/ipcidr/8")}, true, []ma.Multiaddr{extra}},
		{"no-announce exact", []ma.Multiaddr{pub, extra}, nil, []ma.Multiaddr{extra}, false, []ma.Multiaddr{pub}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newNode(t, nil, true, func(c *Config) {
				c.AnnounceAddrs, c.AppendAnnounceAddrs, c.NoAnnounceAddrs = tc.announce, tc.appendA, tc.noAnnounce
				c.DisableQUIC = true
			})
			want := slices.Clone(tc.want)
			if tc.wantListen {
				want = append(want, a.ListenAddrs()...)
			}
			got := a.Addrs()
			if !sameAddrSet(got, want) {
				t.Fatalf("Addrs = %v, want %v", got, want)
			}
			// Dial the listen addresses: the announced ones are made up
			// and no test sends anything beyond loopback.
			b := newNode(t, nil, false, func(c *Config) { c.DisableQUIC = true })
			if _, err := b.Connect(ctx, a.ID(), a.ListenAddrs()...); err != nil {
				t.Fatal(err)
			}
			rec, _, err := peer.OpenPeerRecord(*a.record.Load())
			if err != nil {
				t.Fatal(err)
			}
			if !sameAddrSet(rec.Addrs, want) {
				t.Errorf("signed record addresses %v, want %v", rec.Addrs, want)
			}
			if info := a.info.Load(); !sameAddrSet(info.ListenAddrs, want) {
				t.Errorf("identify listen addresses %v, want %v", info.ListenAddrs, want)
			}
		})
	}
}

func sameAddrSet(a, b []ma.Multiaddr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, x.Equal) {
			return false
		}
	}
	return true
}

// TestPushFlood: one peer's identify pushes beyond the rate are reset
// unread and counted.
func TestPushFlood(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false)
	c := connect(t, ctx, b, a)
	for i := range 3 * maxPushes {
		s, err := b.NewStreamOn(ctx, c, identify.PushID)
		if err != nil {
			t.Fatal(err)
		}
		info := *b.info.Load()
		info.AgentVersion = fmt.Sprint("flood/", i)
		identify.Serve(s, &info, nil) // refused ones are reset: no error to check
	}
	// All were sent within one window: the first maxPushes are taken.
	waitFor(t, func() bool { return a.Counters()[LimitPushes] >= 2*maxPushes })
	if got := a.Counters()[LimitPushes]; got != 2*maxPushes {
		t.Errorf("%d pushes refused of %d, want %d", got, 3*maxPushes, 2*maxPushes)
	}
}

// TestDialFilter: addresses in Config.AddrFilters' ranges that the
// network told us are not dialed, even under Explicit; those given to
// Connect under Explicit, or in TreatAsPublic, are. 127.0.0.2 stands for
// a private address a peer advertised.
func TestDialFilter(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, nil, false, func(c *Config) {
		c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.2/tcp/0")}
		c.DisableQUIC = true
	})
	filtered := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	for _, tc := range []struct {
		name     string
		public   []netip.Prefix
		explicit bool
		given    bool // the address is given to Connect, not only learned
		ok       bool
	}{
		{"learned", nil, false, false, false},
		{"learned, explicit connect", nil, true, false, false},
		{"given, explicit connect", nil, true, true, true},
		{"given, not explicit", nil, false, true, false},
		{"treated as public", filtered, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newNode(t, nil, false, func(c *Config) {
				c.AddrFilters, c.TreatAsPublic, c.DisableQUIC = filtered, tc.public, true
			})
			b.Peerstore().AddAddrs(a.ID(), a.ListenAddrs(), peer.TempAddrTTL) // as identify would
			cctx := ctx
			if tc.explicit {
				cctx = Explicit(ctx)
			}
			var given []ma.Multiaddr
			if tc.given {
				given = a.ListenAddrs()
			}
			_, err := b.Connect(cctx, a.ID(), given...)
			if tc.ok != (err == nil) {
				t.Fatalf("connect: %v, want success %v", err, tc.ok)
			}
		})
	}
	if got := ServerAddrFilters(); !slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr("192.168.1.1")) }) ||
		slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr("127.0.0.1")) }) {
		t.Errorf("ServerAddrFilters %v: want private ranges and not loopback", got)
	}
}

// TestAddrStatesBounded: verdicts on addresses nobody holds any more
// make room for new ones once the table is full.
func TestAddrStatesBounded(t *testing.T) {
	n := newNode(t, transport.NewMemNetwork(), false)
	for i := range maxAddrStates + 10 {
		n.SetAddrState(ma.StringCast(fmt.Sprintf("/ip4/198.51.%d.%d/tcp/1", i/256, i%256)), AddrConfirmed)
	}
	if got := len(n.addrs.state); got > maxAddrStates {
		t.Fatalf("%d verdicts kept, more than %d", got, maxAddrStates)
	}
	held := ma.StringCast("/ip4/203.0.113.1/tcp/1")
	if err := n.SetAddrs("upnp", []ma.Multiaddr{held}); err != nil {
		t.Fatal(err)
	}
	n.SetAddrState(held, AddrConfirmed)
	if !slices.ContainsFunc(n.Addrs(), held.Equal) {
		t.Fatal("a confirmation was refused once the table had filled with stale verdicts")
	}
}
