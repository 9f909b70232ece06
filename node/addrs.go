package node

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// AddrState is how much we know about one of our addresses.
type AddrState int

// Address states.
const (
	// AddrCandidate: found (a mapping, a STUN result, an address enough
	// peers observed) but not known to be reachable; not advertised.
	AddrCandidate AddrState = iota
	// AddrConfirmed: a reachability check (AutoNAT) dialed it back;
	// advertised.
	AddrConfirmed
	// AddrUnreachable: a reachability check failed on it; not advertised.
	AddrUnreachable
	// AddrConfigured: a listen address or one the configuration
	// announces; advertised without a check.
	AddrConfigured
)

func (s AddrState) String() string {
	switch s {
	case AddrCandidate:
		return "candidate"
	case AddrConfirmed:
		return "confirmed"
	case AddrUnreachable:
		return "unreachable"
	case AddrConfigured:
		return "configured"
	}
	return "unknown"
}

// Sources of addresses the node itself fills; services name their own
// ("upnp", "natpmp", "stun", "relay").
const (
	SourceListen   = "listen"   // the listeners, unspecified IPs resolved
	SourceObserved = "observed" // what enough distinct peers observed
	SourceConfig   = "config"   // Config.AnnounceAddrs and AppendAnnounceAddrs
)

// Bounds of the address manager, so that no source (and no set of
// peers) can make it grow without end.
const (
	// MaxAddrsPerSource bounds the addresses one source may hold.
	MaxAddrsPerSource = 32
	// MaxAddrSources bounds the sources.
	MaxAddrSources = 16
	// ObservedThreshold is how many distinct observers (IPv4 addresses,
	// IPv6 /56 prefixes) must report an address before it becomes a
	// candidate, as go-libp2p's ActivationThresh: one peer, or many from
	// one network, cannot move our addresses.
	ObservedThreshold = 4
)

// AddrEntry is one of our addresses as the address manager knows it.
type AddrEntry struct {
	Addr    ma.Multiaddr
	State   AddrState
	Sources []string // sorted
}

// ObservedAddr is an address peers observed for us.
type ObservedAddr struct {
	Addr ma.Multiaddr
	// Observers is the number of distinct observer groups (IPv4
	// addresses, IPv6 /56 prefixes) among open connections.
	Observers int
}

// addrBook is the address manager's state.
type addrBook struct {
	refresh sync.Mutex // serialises addrsChanged, so the last state wins

	mu      sync.Mutex                // guards the rest; taken after n.hmu, never before
	sources map[string][]ma.Multiaddr // per source, as set
	state   map[string]AddrState      // by binary address: checks' verdicts
	byAddr  map[string]*observedCount // the observations by address
	current []ma.Multiaddr            // what we advertise now
}

// observedCount counts one observed address's observers, kept up to
// date as connections come and go so that no change costs a pass over
// every connection.
type observedCount struct {
	key    string // addr, binary: its key in byAddr
	addr   ma.Multiaddr
	groups map[netip.Prefix]int // observer group → connections observing
}

// SetAddrs replaces the addresses of source (a service's name, e.g.
// "upnp") with addrs, as candidates until a reachability check confirms
// them; nil removes the source. At most MaxAddrsPerSource addresses and
// MaxAddrSources sources are kept: more fail with a LimitError.
func (n *Node) SetAddrs(source string, addrs []ma.Multiaddr) error {
	if source == SourceListen || source == SourceObserved || source == SourceConfig {
		return fmt.Errorf("set addrs: source %q is the node's own", source)
	}
	if len(addrs) > MaxAddrsPerSource {
		return &LimitError{Limit: "MaxAddrsPerSource", Value: MaxAddrsPerSource, Where: fmt.Sprintf("%d addresses from %s", len(addrs), source)}
	}
	b := &n.addrs
	b.mu.Lock()
	_, known := b.sources[source]
	if len(addrs) == 0 {
		delete(b.sources, source)
	} else if !known && len(b.sources) >= MaxAddrSources {
		b.mu.Unlock()
		return &LimitError{Limit: "MaxAddrSources", Value: MaxAddrSources, Where: "addresses from " + source}
	} else {
		b.sources[source] = dedupAddrs(addrs)
	}
	b.mu.Unlock()
	n.addrsChanged()
	return nil
}

// SetAddrState records a reachability check's verdict on one of our
// addresses: AddrConfirmed advertises it (whatever its source),
// AddrUnreachable or AddrCandidate withdraws a confirmation.
func (n *Node) SetAddrState(a ma.Multiaddr, s AddrState) {
	var known map[string]bool
	if s != AddrCandidate {
		// Verdicts on addresses no source holds any more are dropped
		// when the table fills, so it stays bounded without refusing
		// new ones for good.
		entries := n.AddrEntries()
		known = make(map[string]bool, len(entries))
		for _, e := range entries {
			known[string(e.Addr.Bytes())] = true
		}
	}
	b := &n.addrs
	k := string(a.Bytes())
	b.mu.Lock()
	if s == AddrCandidate {
		delete(b.state, k)
	} else {
		if _, ok := b.state[k]; !ok && len(b.state) >= maxAddrStates {
			maps.DeleteFunc(b.state, func(k string, _ AddrState) bool { return !known[k] })
		}
		if _, ok := b.state[k]; ok || len(b.state) < maxAddrStates {
			b.state[k] = s
		}
	}
	b.mu.Unlock()
	n.addrsChanged()
}

// maxAddrStates bounds the reachability verdicts kept: as many as the
// sources can hold.
const maxAddrStates = MaxAddrSources * MaxAddrsPerSource

// AddrEntries lists every address the node knows of its own, with its
// state and sources, sorted by address.
func (n *Node) AddrEntries() []AddrEntry {
	listen := n.resolvedListenAddrs()
	b := &n.addrs
	b.mu.Lock()
	defer b.mu.Unlock()
	byAddr := map[string]*AddrEntry{}
	add := func(src string, a ma.Multiaddr, st AddrState) {
		k := string(a.Bytes())
		e := byAddr[k]
		if e == nil {
			e = &AddrEntry{Addr: a, State: st}
			byAddr[k] = e
		}
		if !slices.Contains(e.Sources, src) {
			e.Sources = append(e.Sources, src)
		}
		if st == AddrConfigured {
			e.State = st
		}
	}
	for _, a := range listen {
		add(SourceListen, a, AddrConfigured)
	}
	for _, a := range n.cfg.AppendAnnounceAddrs {
		add(SourceConfig, a, AddrConfigured)
	}
	for _, a := range n.cfg.AnnounceAddrs {
		add(SourceConfig, a, AddrConfigured)
	}
	for _, o := range b.observedLocked() {
		if o.Observers >= ObservedThreshold {
			add(SourceObserved, o.Addr, AddrCandidate)
		}
	}
	for src, as := range b.sources {
		for _, a := range as {
			add(src, a, AddrCandidate)
		}
	}
	out := make([]AddrEntry, 0, len(byAddr))
	for k, e := range byAddr {
		if st, ok := b.state[k]; ok && e.State != AddrConfigured {
			e.State = st
		}
		slices.Sort(e.Sources)
		out = append(out, *e)
	}
	slices.SortFunc(out, func(x, y AddrEntry) int { return bytes.Compare(x.Addr.Bytes(), y.Addr.Bytes()) })
	return out
}

// AddrInfo is our peer ID with Addrs; its P2pAddrs are the addresses to
// give a peer (e.g. for `ipfs swarm connect`).
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.id, Addrs: n.Addrs()} }

// ObservedAddr is what the peer of c said, in identify, it sees us as:
// nil until it has, or if that was no address of c's kind (a TCP
// connection's peer cannot tell us a QUIC address) or c runs on a network
// without IP addresses.
func (c *Conn) ObservedAddr() ma.Multiaddr {
	b := &c.node.addrs
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.observed == nil {
		return nil
	}
	return c.observed.addr
}

// Addrs are the addresses the node advertises (in identify and its
// signed peer record): the listen addresses with unspecified IPs
// resolved to the interfaces' (replaced by Config.AnnounceAddrs when that
// is set), Config.AppendAnnounceAddrs, and every address a reachability
// check confirmed, less those Config.NoAnnounceAddrs filters out.
func (n *Node) Addrs() []ma.Multiaddr {
	n.addrs.mu.Lock()
	cur := n.addrs.current
	n.addrs.mu.Unlock()
	if cur != nil {
		return slices.Clone(cur)
	}
	return n.advertised()
}

// advertised builds what Addrs returns from the entries.
func (n *Node) advertised() []ma.Multiaddr {
	out := []ma.Multiaddr{}
	for _, e := range n.AddrEntries() {
		switch {
		case e.State == AddrConfirmed:
		case e.State != AddrConfigured:
			continue
		case len(n.cfg.AnnounceAddrs) > 0 && !slices.Contains(e.Sources, SourceConfig):
			continue // Announce replaces the listen addresses
		}
		if n.noAnnounce(e.Addr) {
			continue
		}
		out = append(out, e.Addr)
	}
	return out
}

// addrsChanged recomputes what we advertise after any source changed;
// only when that changed does it re-sign the peer record, refresh and
// push identify, and tell the hooks. Callers must not hold n.hmu.
func (n *Node) addrsChanged() {
	n.addrs.refresh.Lock()
	defer n.addrs.refresh.Unlock()
	addrs := n.advertised()
	n.addrs.mu.Lock()
	same := n.addrs.current != nil && slices.EqualFunc(n.addrs.current, addrs, ma.Multiaddr.Equal)
	n.addrs.current = addrs
	n.addrs.mu.Unlock()
	if same {
		return
	}
	n.refreshInfo(true)
	n.hmu.Lock()
	n.tellAddrs(slices.Clone(addrs))
	n.hmu.Unlock()
}

// noAnnounce reports whether Config.NoAnnounceAddrs filters a out: an
// exact address, or an /ipcidr range of its IP (as Kubo's NoAnnounce).
func (n *Node) noAnnounce(a ma.Multiaddr) bool {
	ip, hasIP := ma.IP(a)
	for _, f := range n.cfg.NoAnnounceAddrs {
		if f.Equal(a) {
			return true
		}
		if p, ok := AddrRange(f); ok && hasIP && p.Contains(ip) {
			return true
		}
	}
	return false
}

// AddrRange reads a range written as /ip4/A/ipcidr/N or /ip6/A/ipcidr/N
// (Kubo's form for Swarm.AddrFilters and NoAnnounce) as a prefix.
func AddrRange(f ma.Multiaddr) (netip.Prefix, bool) {
	if len(f) != 2 || f[1].Protocol().Code != ma.P_IPCIDR {
		return netip.Prefix{}, false
	}
	ip, ok := ma.IP(f[:1])
	if !ok {
		return netip.Prefix{}, false
	}
	var bits int
	if _, err := fmt.Sscan(f[1].Value(), &bits); err != nil {
		return netip.Prefix{}, false
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// observe records what the peer of c says our address is, if it is an
// address of the kind c runs on (a TCP connection's observer cannot tell
// us a QUIC address). It runs with n.hmu held while c is open, so that
// forget, at its close, comes after. It reports whether an address
// crossed the candidate threshold; the caller then runs addrsChanged.
func (n *Node) observe(c *Conn, addr ma.Multiaddr) bool {
	if addr == nil || !sameShape(addr, c.LocalMultiaddr()) {
		return false
	}
	group, ok := observerGroup(c.RemoteMultiaddr())
	if !ok {
		return false
	}
	b := &n.addrs
	b.mu.Lock()
	defer b.mu.Unlock()
	crossed := b.dropLocked(c) // a push may change what the peer observes
	enc := addr.Bytes()
	oc := b.byAddr[string(enc)]
	if oc == nil {
		oc = &observedCount{key: string(enc), addr: addr, groups: map[netip.Prefix]int{}}
		b.byAddr[oc.key] = oc
	}
	oc.groups[group]++
	c.observed = oc
	return crossed || (oc.groups[group] == 1 && len(oc.groups) == ObservedThreshold)
}

// forget drops the observation of a closed connection (n.hmu held); it
// reports whether an address fell below the candidate threshold, and the
// caller then runs addrsChanged.
func (n *Node) forget(c *Conn) bool {
	n.addrs.mu.Lock()
	defer n.addrs.mu.Unlock()
	return n.addrs.dropLocked(c)
}

// dropLocked removes c's observation and reports whether its address
// fell below the threshold.
func (b *addrBook) dropLocked(c *Conn) bool {
	oc := c.observed
	if oc == nil {
		return false
	}
	c.observed = nil
	// The group is the one observe counted: the connection's remote
	// address does not change.
	group, _ := observerGroup(c.RemoteMultiaddr())
	if oc.groups[group]--; oc.groups[group] > 0 {
		return false
	}
	delete(oc.groups, group)
	if len(oc.groups) == 0 {
		delete(b.byAddr, oc.key)
	}
	return len(oc.groups) == ObservedThreshold-1
}

// ObservedAddrs lists the addresses peers on open connections observed
// for us, most observers first: hole punching may try them at once;
// those with at least ObservedThreshold observers are candidates for
// reachability checks.
func (n *Node) ObservedAddrs() []ObservedAddr {
	n.addrs.mu.Lock()
	defer n.addrs.mu.Unlock()
	return n.addrs.observedLocked()
}

func (b *addrBook) observedLocked() []ObservedAddr {
	out := make([]ObservedAddr, 0, len(b.byAddr))
	for _, oc := range b.byAddr {
		out = append(out, ObservedAddr{Addr: oc.addr, Observers: len(oc.groups)})
	}
	slices.SortFunc(out, func(x, y ObservedAddr) int {
		if x.Observers != y.Observers {
			return y.Observers - x.Observers
		}
		return bytes.Compare(x.Addr.Bytes(), y.Addr.Bytes())
	})
	return out
}

// sameShape reports whether two addresses have the same protocols after
// the IP (tcp, udp/quic-v1, ...) and IPs of the same family.
func sameShape(a, b ma.Multiaddr) bool {
	if len(a) != len(b) || len(a) < 2 {
		return false
	}
	for i := range a {
		if a[i].Protocol().Code != b[i].Protocol().Code {
			return false
		}
	}
	return true
}

// observerGroup is the observer's IPv4 address or IPv6 /56, so that many
// addresses of one network count once.
func observerGroup(remote ma.Multiaddr) (netip.Prefix, bool) {
	ip, ok := ma.IP(remote)
	if !ok {
		return netip.Prefix{}, false
	}
	return hostGroup(ip, 56), true
}

// hostGroup is ip's IPv4 address as a /32, or its IPv6 prefix of v6bits.
func hostGroup(ip netip.Addr, v6bits int) netip.Prefix {
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(v6bits) // cannot fail for an IPv6 address and 0-128 bits
	return p
}

func dedupAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(addrs))
	seen := map[string]bool{}
	for _, a := range addrs {
		if k := string(a.Bytes()); !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}
