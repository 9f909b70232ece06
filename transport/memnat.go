package transport

import "time"

// NATBehavior is how a NAT's mapping or filtering depends on the remote
// end, in the terms of RFC 4787.
type NATBehavior int

const (
	// EndpointIndependent mapping reuses one public endpoint for every
	// destination of a private endpoint; endpoint-independent filtering
	// lets anyone in through a mapping.
	EndpointIndependent NATBehavior = iota
	// AddressDependent mapping uses one public endpoint per private
	// endpoint and remote host; filtering lets in the hosts a mapping has
	// sent to.
	AddressDependent
	// AddressAndPortDependent mapping uses one public endpoint per
	// private endpoint and remote endpoint (a symmetric NAT); filtering
	// lets in only the endpoints a mapping has sent to.
	AddressAndPortDependent
)

// NATConfig configures a MemNAT. Zero fields take their defaults, which
// make a full-cone NAT.
type NATConfig struct {
	// Mapping is how outbound connections are given public endpoints.
	// Default EndpointIndependent.
	Mapping NATBehavior
	// Filtering is which inbound connections a mapping lets in. Default
	// EndpointIndependent.
	Filtering NATBehavior
	// Timeout is how long a mapping, and each hole of its filter, lasts
	// after the last connection through it ends or after an attempt that
	// made no connection. Default 2 minutes, RFC 4787's minimum for UDP
	// (hole punching's usual case).
	Timeout time.Duration
	// MaxEntries bounds the NAT's state, mappings and holes together (a
	// router's connection table); a dial that needs more is dropped.
	// Default 4096.
	MaxEntries int
}

// FullConeNAT is endpoint-independent mapping and filtering: once a
// private endpoint has sent anywhere, anyone can reach it.
func FullConeNAT() NATConfig { return NATConfig{} }

// RestrictedConeNAT is endpoint-independent mapping with address-dependent
// filtering.
func RestrictedConeNAT() NATConfig { return NATConfig{Filtering: AddressDependent} }

// PortRestrictedConeNAT is endpoint-independent mapping with
// address-and-port-dependent filtering, the common home router: hole
// punching works through it.
func PortRestrictedConeNAT() NATConfig { return NATConfig{Filtering: AddressAndPortDependent} }

// SymmetricNAT is address-and-port-dependent mapping and filtering: each
// destination sees another public endpoint, so an observed address is
// useless to anyone else and hole punching fails.
func SymmetricNAT() NATConfig {
	return NATConfig{Mapping: AddressAndPortDependent, Filtering: AddressAndPortDependent}
}

// MemNAT is a NAT on a MemNetwork: a box, itself a host on the network
// outside, and a private network behind it. See MemNetwork for what it
// models.
type MemNAT struct {
	box     *MemHost
	cfg     NATConfig
	maps    map[natKey]*natMapping // w.mu
	entries int                    // w.mu; mappings and holes
}

func (w *memWorld) newNAT(outer *MemNAT, cfg NATConfig) *MemNAT {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 4096
	}
	return &MemNAT{box: w.newHost(outer, true), cfg: cfg, maps: make(map[natKey]*natMapping)}
}

// Host is the NAT's box: the host on the outside whose endpoints are the
// mappings, for setting its links.
func (n *MemNAT) Host() *MemHost { return n.box }

// NewHost adds a host behind the NAT.
func (n *MemNAT) NewHost() *MemHost { return n.box.w.newHost(n, true) }

// NewNAT adds a NAT behind this one, whose box is a host behind this NAT.
func (n *MemNAT) NewNAT(cfg NATConfig) *MemNAT { return n.box.w.newNAT(n, cfg) }

// natKey identifies a mapping: the private endpoint and, unless mapping is
// endpoint-independent, the remote host or endpoint.
type natKey struct{ internal, remote uint64 }

// natMapping is a public endpoint of the NAT standing for a private one.
type natMapping struct {
	nat      *MemNAT
	key      natKey
	host     *MemHost // the private endpoint's host
	internal uint64   // the private endpoint
	public   uint64
	conns    int                 // connections through it
	until    time.Time           // when it expires once conns is 0
	holes    map[uint64]*natHole // whom the filter lets in, by remote host or endpoint; nil if anyone
}

// natHole is a remote the filter of a mapping lets in.
type natHole struct {
	conns int
	until time.Time
}

// natRef is the NAT state a connection, or a dial, holds.
type natRef struct {
	m *natMapping
	h *natHole // nil with endpoint-independent filtering
}

func (m *natMapping) alive(now time.Time) bool { return m.conns > 0 || now.Before(m.until) }
func (h *natHole) alive(now time.Time) bool    { return h.conns > 0 || now.Before(h.until) }

// hold makes the connection over r keep refs open until its first Close.
// w.mu is held.
func (r *pipeRoute) hold(refs []natRef) {
	for _, ref := range refs {
		ref.m.conns++
		if ref.h != nil {
			ref.h.conns++
		}
	}
	r.refs = refs
}

// release ends a connection's hold: the timeout starts. w.mu is held.
func (ref natRef) release(now time.Time) {
	until := now.Add(ref.m.nat.cfg.Timeout)
	if ref.m.conns--; ref.m.conns == 0 {
		ref.m.until = until
	}
	if ref.h != nil {
		if ref.h.conns--; ref.h.conns == 0 {
			ref.h.until = until
		}
	}
}

// outbound translates a SYN from the private endpoint src of host
// srcHost to endpoint dst of host dstHost: it finds or makes the mapping
// and opens the filter's hole for the destination. It fails if the table
// is full. w.mu is held.
func (n *MemNAT) outbound(src uint64, srcHost *MemHost, dst uint64, dstHost *MemHost, now time.Time) (natRef, bool) {
	key := natKey{internal: src}
	switch n.cfg.Mapping {
	case AddressDependent:
		key.remote = dstHost.id
	case AddressAndPortDependent:
		key.remote = dst
	}
	m := n.maps[key]
	if m != nil && !m.alive(now) {
		n.remove(m)
		m = nil
	}
	if m == nil {
		if !n.room(now) {
			return natRef{}, false
		}
		w := n.box.w
		m = &natMapping{nat: n, key: key, host: srcHost, internal: src, public: w.newPort()}
		if n.cfg.Filtering != EndpointIndependent {
			m.holes = make(map[uint64]*natHole)
		}
		n.maps[key] = m
		w.ports[m.public] = &memPort{host: n.box, m: m}
		n.entries++
	}
	until := now.Add(n.cfg.Timeout)
	m.until = until
	ref := natRef{m: m}
	if m.holes != nil {
		hk := n.filterKey(dst, dstHost)
		h := m.holes[hk]
		if h == nil {
			if !n.room(now) {
				return natRef{}, false
			}
			h = &natHole{}
			m.holes[hk] = h
			n.entries++
		}
		h.until = until
		ref.h = h
	}
	return ref, true
}

// inbound reports whether mapping m lets in a SYN from endpoint src of
// host srcHost. w.mu is held.
func (n *MemNAT) inbound(m *natMapping, src uint64, srcHost *MemHost, now time.Time) (natRef, bool) {
	if !m.alive(now) {
		n.remove(m)
		return natRef{}, false
	}
	if m.holes == nil {
		return natRef{m: m}, true
	}
	h := m.holes[n.filterKey(src, srcHost)]
	if h == nil || !h.alive(now) {
		return natRef{}, false
	}
	return natRef{m: m, h: h}, true
}

// filterKey is what the filter knows a remote by.
func (n *MemNAT) filterKey(endpoint uint64, host *MemHost) uint64 {
	if n.cfg.Filtering == AddressDependent {
		return host.id
	}
	return endpoint
}

// room reports whether the table has room for one more entry, dropping
// the expired ones when it is full. w.mu is held.
func (n *MemNAT) room(now time.Time) bool {
	if n.entries < n.cfg.MaxEntries {
		return true
	}
	for _, m := range n.maps {
		if !m.alive(now) {
			n.remove(m)
			continue
		}
		for k, h := range m.holes {
			if !h.alive(now) {
				delete(m.holes, k)
				n.entries--
			}
		}
	}
	return n.entries < n.cfg.MaxEntries
}

// remove drops an expired mapping and its holes. w.mu is held.
func (n *MemNAT) remove(m *natMapping) {
	if n.maps[m.key] != m {
		return
	}
	delete(n.maps, m.key)
	w := n.box.w
	if p := w.ports[m.public]; p != nil && p.m == m {
		delete(w.ports, m.public)
	}
	n.entries -= 1 + len(m.holes)
}
