package node

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mote-p2p/mote/peer"
)

// The connection manager keeps the number of connections between the
// limits' watermarks and closes idle ones. It runs on one goroutine owned
// by the node (maintainLoop), woken by a ticker and when a new connection
// crosses the high watermark.

// maxTaggedPeers bounds the peers with protections or tags.
const maxTaggedPeers = 4096

// peerTags is what the node's users said about a peer's worth.
type peerTags struct {
	protect map[string]struct{} // reasons the peer must be kept
	value   map[string]int      // usefulness by tag (DHT, gossip, …)
}

// connMgr holds the connection manager's state; guarded by its mutex.
type connMgr struct {
	mu    sync.Mutex
	peers map[peer.ID]*peerTags
	wake  chan struct{} // capacity 1: a trim is due
}

// Protect keeps the connections to id from being closed by the connection
// manager, for the given reason (e.g. "bootstrap", "relay"), until
// Unprotect with the same reason.
func (n *Node) Protect(id peer.ID, reason string) {
	n.cm.mu.Lock()
	defer n.cm.mu.Unlock()
	if t := n.cm.tags(id); t != nil {
		if t.protect == nil {
			t.protect = make(map[string]struct{})
		}
		t.protect[reason] = struct{}{}
	}
}

// Unprotect removes one reason to keep id; it reports whether the peer is
// still protected for another.
func (n *Node) Unprotect(id peer.ID, reason string) bool {
	n.cm.mu.Lock()
	defer n.cm.mu.Unlock()
	t := n.cm.peers[id]
	if t == nil {
		return false
	}
	delete(t.protect, reason)
	n.cm.prune(id, t)
	return len(t.protect) > 0
}

// IsProtected reports whether id is protected for any reason.
func (n *Node) IsProtected(id peer.ID) bool {
	n.cm.mu.Lock()
	defer n.cm.mu.Unlock()
	t := n.cm.peers[id]
	return t != nil && len(t.protect) > 0
}

// TagPeer records how useful id is to some part of the node (tag), e.g.
// a DHT neighbour or a gossip mesh peer; higher values are kept longer
// when connections are trimmed. A value of 0 removes the tag.
func (n *Node) TagPeer(id peer.ID, tag string, value int) {
	n.cm.mu.Lock()
	defer n.cm.mu.Unlock()
	if value == 0 {
		if t := n.cm.peers[id]; t != nil {
			delete(t.value, tag)
			n.cm.prune(id, t)
		}
		return
	}
	if t := n.cm.tags(id); t != nil {
		if t.value == nil {
			t.value = make(map[string]int)
		}
		t.value[tag] = value
	}
}

// tags returns id's entry, creating it if there is room; mu is held.
func (cm *connMgr) tags(id peer.ID) *peerTags {
	t := cm.peers[id]
	if t == nil && len(cm.peers) < maxTaggedPeers {
		t = &peerTags{}
		cm.peers[id] = t
	}
	return t
}

// prune drops an entry that says nothing any more; mu is held.
func (cm *connMgr) prune(id peer.ID, t *peerTags) {
	if len(t.protect) == 0 && len(t.value) == 0 {
		delete(cm.peers, id)
	}
}

// connCount returns the number of open connections.
func (n *Node) connCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inbound + n.outbound
}

// maybeTrim wakes the connection manager if the high watermark is crossed.
func (n *Node) maybeTrim() {
	if n.connCount() > n.cfg.Limits.ConnHighWater {
		select {
		case n.cm.wake <- struct{}{}:
		default:
		}
	}
}

// maintainLoop trims connections above the high watermark and closes idle
// ones. One goroutine, owned by the node.
func (n *Node) maintainLoop() {
	defer n.wg.Done()
	l := n.cfg.Limits
	period := min(10*time.Second, l.ConnGracePeriod/2)
	if l.IdleTimeout > 0 {
		period = min(period, l.IdleTimeout/2)
	}
	tick := time.NewTicker(max(period, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		case <-n.cm.wake:
		}
		now := time.Now()
		n.trim(now)
		n.closePingers(now.Add(-pingIdle))
	}
}

// trim applies the watermarks and the idle timeout once.
func (n *Node) trim(now time.Time) {
	l := n.cfg.Limits
	conns := n.Conns("")
	if l.IdleTimeout > 0 {
		for _, c := range conns {
			if c.idleSince(now) >= l.IdleTimeout && !n.IsProtected(c.RemotePeer()) {
				n.counters.idle.Add(1)
				n.log.Info("closing idle connection", "peer", c.RemotePeer(),
					"err", &LimitError{Limit: LimitIdle, Value: int64(l.IdleTimeout / time.Second), Where: "connection to " + c.RemotePeer().String()})
				c.Close()
			}
		}
	}
	excess := len(conns) - l.ConnLowWater
	if len(conns) <= l.ConnHighWater || excess <= 0 {
		return
	}
	type cand struct {
		c     *Conn
		score int
	}
	var cands []cand
	for _, c := range conns {
		switch {
		case c.Limited() && n.hasDirect(c.RemotePeer()):
			// A relayed duplicate of a direct connection goes first,
			// whatever its age or the peer's protection.
			cands = append(cands, cand{c, math.MinInt})
		case time.Duration(now.UnixNano()-c.opened) < l.ConnGracePeriod || n.IsProtected(c.RemotePeer()):
		default:
			cands = append(cands, cand{c, n.score(c, now)})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.score, b.score) })
	for _, cd := range cands[:min(excess, len(cands))] {
		n.counters.highWater.Add(1)
		n.log.Info("trimming connection", "peer", cd.c.RemotePeer(), "score", cd.score,
			"err", &LimitError{Limit: LimitHighWater, Value: int64(l.ConnHighWater), Where: "connection to " + cd.c.RemotePeer().String()})
		cd.c.Close()
	}
}

// score rates how much a connection is worth keeping: the peer's tags
// (usefulness to the DHT, gossip, …), plus recent activity, plus a bonus
// for low latency.
func (n *Node) score(c *Conn, now time.Time) int {
	s := 0
	n.cm.mu.Lock()
	if t := n.cm.peers[c.RemotePeer()]; t != nil {
		for _, v := range t.value {
			s += v
		}
	}
	n.cm.mu.Unlock()
	if c.streams.Load() > 0 || c.out.Load() > 0 {
		s += 20 // in use right now
	}
	if idle := c.idleSince(now); idle < time.Minute {
		s += 10 - int(idle/(6*time.Second)) // 10 when just used, 0 after a minute
	}
	if rtt := n.store.Latency(c.RemotePeer()); rtt > 0 && rtt < 100*time.Millisecond {
		s += 5 - int(rtt/(20*time.Millisecond))
	}
	return s
}

// idleSince is how long the connection has had no open stream and no
// stream opened; 0 while streams are open.
func (c *Conn) idleSince(now time.Time) time.Duration {
	if c.streams.Load() > 0 || c.out.Load() > 0 {
		return 0
	}
	return now.Sub(time.Unix(0, c.lastActive.Load()))
}

// protoCounter counts bytes of one protocol.
type protoCounter struct{ in, out atomic.Uint64 }

// maxProtoCounters bounds per-protocol counters; the rest count as "other".
const maxProtoCounters = 256

// protoBytes adds to a protocol's byte counters.
func (n *Node) protoBytes(proto string, in, out uint64) {
	v, ok := n.protoStats.Load(proto)
	if !ok {
		if n.protoCount.Load() >= maxProtoCounters {
			proto = "other"
		}
		var loaded bool
		v, loaded = n.protoStats.LoadOrStore(proto, &protoCounter{})
		if !loaded {
			n.protoCount.Add(1)
		}
	}
	pc := v.(*protoCounter)
	pc.in.Add(in)
	pc.out.Add(out)
}

// Bandwidth is a count of stream bytes in each direction.
type Bandwidth struct{ In, Out uint64 }

// ProtocolBandwidth returns the bytes carried by each protocol's streams
// since the node started.
func (n *Node) ProtocolBandwidth() map[string]Bandwidth {
	out := make(map[string]Bandwidth)
	n.protoStats.Range(func(k, v any) bool {
		pc := v.(*protoCounter)
		out[k.(string)] = Bandwidth{pc.in.Load(), pc.out.Load()}
		return true
	})
	return out
}

// PeerBandwidth returns the bytes carried by the streams of each
// connected peer's open connections.
func (n *Node) PeerBandwidth() map[peer.ID]Bandwidth {
	out := make(map[peer.ID]Bandwidth)
	for _, c := range n.Conns("") {
		b := out[c.RemotePeer()]
		in, o := c.Bandwidth()
		b.In += in
		b.Out += o
		out[c.RemotePeer()] = b
	}
	return out
}

// newLimiter returns a limiter for bytesPerSec, or nil for no limit.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := int(min(max(bytesPerSec/10, 16<<10), 1<<20))
	return rate.NewLimiter(rate.Limit(bytesPerSec), burst)
}

// throttle waits until the limiter allows n bytes (in bursts), counting
// the times it had to wait. A nil limiter allows everything.
func (n *Node) throttle(l *rate.Limiter, bytes int) {
	if l == nil {
		return
	}
	for bytes > 0 {
		chunk := min(bytes, l.Burst())
		r := l.ReserveN(time.Now(), chunk)
		if d := r.Delay(); d > 0 {
			n.counters.rate.Add(1)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-n.ctx.Done():
				t.Stop()
				r.Cancel()
				return
			}
		}
		bytes -= chunk
	}
}
