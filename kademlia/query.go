package kademlia

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
)

// ErrNoPeers is returned by a lookup that had nobody to ask: the routing
// table is empty (bootstrap first).
var ErrNoPeers = errors.New("kademlia: no peers in the routing table")

// maxCloserPerAnswer bounds how many of an answer's closer peers a lookup
// takes: the K closest of them. An honest server sends K; more only lets
// a hostile one fill the lookup's state.
const maxCloserPerAnswer = K

// peerState is where a peer stands in a lookup (go's qpeerset states).
type peerState int

const (
	heard peerState = iota
	waiting
	queried
	unreachable
)

type lookupPeer struct {
	id    peer.ID
	key   Key
	state peerState
	depth int // answers between the seeds and this peer: 0 for seeds
}

// LookupStats describes one lookup, for simulations and `--json`.
type LookupStats struct {
	// Requests sent and answers received.
	Requests, Answers int
	// Rounds is the lookup's depth: the length of the longest chain of
	// referrals, seed to answering peer, among the closest peers that
	// answered: the sequential round trips a lookup could not overlap.
	Rounds int
	// Duration of the whole lookup.
	Duration time.Duration
}

// askFunc sends one request of a lookup to id and returns the closer
// peers its answer gave; stop ends the lookup early (a FindPeer that
// found its target, a FindProviders with enough providers).
type askFunc func(ctx context.Context, id peer.ID) (closer []peer.AddrInfo, stop bool, err error)

type answer struct {
	p      *lookupPeer
	closer []peer.AddrInfo
	stop   bool
	err    error
}

// lookup runs go-libp2p-kad-dht's iterative query towards key: it keeps
// up to Alpha requests in flight to the closest peers not yet asked, and
// ends when the Beta closest peers it knows of (not counting those that
// failed) have all answered, when ask says stop, or with ctx. It returns
// the closest peers that answered, at most K, closest first.
func (d *DHT) lookup(ctx context.Context, key []byte, ask askFunc) ([]peer.ID, LookupStats, error) {
	start := time.Now()
	var st LookupStats
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.QueryTimeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	target := KeyOf(key)
	known := make(map[peer.ID]*lookupPeer)
	var order []*lookupPeer // by distance to target
	addPeer := func(id peer.ID, depth int) {
		if id == d.n.ID() || known[id] != nil {
			return
		}
		p := &lookupPeer{id: id, key: PeerKey(id), depth: depth}
		known[id] = p
		i, _ := slices.BinarySearchFunc(order, p, func(a, b *lookupPeer) int {
			if target.Closer(a.key, b.key) {
				return -1
			}
			if target.Closer(b.key, a.key) {
				return 1
			}
			return 0
		})
		order = slices.Insert(order, i, p)
	}
	for _, id := range d.table.NearestPeers(target, d.cfg.BucketSize) {
		addPeer(id, 0)
	}
	if len(order) == 0 {
		return nil, st, ErrNoPeers
	}

	answers := make(chan answer, d.cfg.Alpha)
	inFlight := 0
	stopped := false
	for {
		// Terminated: the Beta closest reachable peers have answered.
		done := true
		n := 0
		for _, p := range order {
			if p.state == unreachable {
				continue
			}
			if p.state != queried {
				done = false
				break
			}
			if n++; n == d.cfg.Beta {
				break
			}
		}
		if done || stopped || ctx.Err() != nil {
			break
		}
		// Fill the window with the closest peers not yet asked; only
		// among the K closest, as go's query does, so that far peers
		// are not asked once the neighbourhood is known.
		seen := 0
		for _, p := range order {
			if inFlight == d.cfg.Alpha || seen == d.cfg.BucketSize {
				break
			}
			if p.state == unreachable {
				continue
			}
			seen++
			if p.state != heard {
				continue
			}
			p.state = waiting
			inFlight++
			st.Requests++
			go func() {
				closer, stop, err := ask(ctx, p.id)
				answers <- answer{p, closer, stop, err}
			}()
		}
		if inFlight == 0 {
			break // nothing left to ask
		}
		a := <-answers
		inFlight--
		if a.err != nil {
			a.p.state = unreachable
			// A refusal by our own node's limits says nothing of the
			// peer: it stays in the table.
			if ctx.Err() == nil && !errors.Is(a.err, node.ErrLimit) {
				d.requestFailed(a.p.id)
			}
			continue
		}
		a.p.state = queried
		st.Answers++
		d.table.MarkUseful(a.p.id, time.Now())
		if a.stop {
			stopped = true
		}
		for _, ai := range a.closer {
			if len(ai.Addrs) > 0 {
				d.n.Peerstore().AddAddrs(ai.ID, ai.Addrs, peer.TempAddrTTL)
			}
			addPeer(ai.ID, a.p.depth+1)
		}
	}
	cancel()
	for ; inFlight > 0; inFlight-- {
		<-answers
	}
	// The K closest peers not known to have failed, as go's
	// GetClosestPeers returns them; the rounds count those that answered.
	var out []peer.ID
	for _, p := range order {
		if p.state == unreachable || len(out) == d.cfg.BucketSize {
			continue
		}
		out = append(out, p.id)
		if p.state == queried {
			st.Rounds = max(st.Rounds, p.depth+1)
		}
	}
	st.Duration = time.Since(start)
	if len(out) == 0 {
		if err := ctx.Err(); err != nil && !stopped {
			return nil, st, err
		}
	}
	return out, st, nil
}

// requestFailed drops a peer that failed a request from the routing
// table (go removes peers it cannot reach during queries).
func (d *DHT) requestFailed(id peer.ID) {
	if d.table.Remove(id) {
		d.unprotect(id)
	}
}

// closerAsk is the ask of a plain FIND_NODE lookup.
func (d *DHT) closerAsk(key []byte) askFunc {
	return func(ctx context.Context, id peer.ID) ([]peer.AddrInfo, bool, error) {
		resp, err := d.request(ctx, id, &Message{Type: FindNode, Key: key})
		if err != nil {
			return nil, false, err
		}
		d.tryAdd(id)
		return d.closestOf(key, resp.CloserPeers), false, nil
	}
}

// closestOf takes the maxCloserPerAnswer entries of an answer closest to
// key. It ranks the entries by ID and parses addresses only for those it
// keeps: a hostile answer of 4,000 entries with 200 addresses each would
// otherwise cost 800,000 parsed addresses for 20 peers.
func (d *DHT) closestOf(key []byte, entries []Peer) []peer.AddrInfo {
	if len(entries) <= maxCloserPerAnswer {
		return d.peersOf(entries, len(entries))
	}
	type ranked struct {
		e *Peer
		k Key
	}
	rs := make([]ranked, 0, len(entries))
	for i := range entries {
		id, err := peer.IDFromBytes(entries[i].ID)
		if err != nil || id == d.n.ID() {
			continue
		}
		rs = append(rs, ranked{&entries[i], PeerKey(id)})
	}
	t := KeyOf(key)
	slices.SortFunc(rs, func(a, b ranked) int {
		if t.Closer(a.k, b.k) {
			return -1
		}
		if t.Closer(b.k, a.k) {
			return 1
		}
		return 0
	})
	keep := make([]Peer, 0, min(len(rs), maxCloserPerAnswer))
	for _, r := range rs[:min(len(rs), maxCloserPerAnswer)] {
		keep = append(keep, *r.e)
	}
	return d.peersOf(keep, len(keep))
}

// tryAdd queues a peer that answered a DHT request for the routing
// table, if it is connected over an address this DHT accepts.
func (d *DHT) tryAdd(id peer.ID) {
	if d.table.Contains(id) {
		d.table.Seen(id, time.Now())
		return
	}
	for _, c := range d.n.Conns(id) {
		if !c.Limited() && d.accepts(c.RemoteMultiaddr()) && d.n.Peerstore().SupportsProtocol(id, d.cfg.Protocol) {
			d.queueAdmission(id, connIPs(c), true)
			return
		}
	}
}
