package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
)

// maxConcurrentPushes bounds identify pushes in flight, as go-libp2p.
const maxConcurrentPushes = 32

// protocolsChanged refreshes the negotiable protocol list and what
// identify says; the signed peer record, which holds no protocols, stays.
func (n *Node) protocolsChanged() {
	n.mu.Lock()
	protos := make([]string, 0, len(n.handlers))
	for p := range n.handlers {
		protos = append(protos, p)
	}
	n.mu.Unlock()
	slices.Sort(protos)
	n.protos.Store(&protos)
	n.refreshInfo(false)
}

// refreshInfo rebuilds the identify message, with a freshly signed peer
// record when resign is set (our addresses changed) or none was signed
// yet, and schedules a push to connected peers.
func (n *Node) refreshInfo(resign bool) {
	n.infoMu.Lock()
	defer n.infoMu.Unlock()
	addrs := n.Addrs()
	rec := n.record.Load()
	if resign || rec == nil {
		n.mu.Lock()
		// Peer record sequence numbers must grow; time-based like
		// go-libp2p, but never repeating within one process.
		seq := uint64(time.Now().UnixNano())
		if seq <= n.recordSeq {
			seq = n.recordSeq + 1
		}
		n.recordSeq = seq
		n.mu.Unlock()
		signed, err := peer.SealPeerRecord(n.key, &peer.PeerRecord{ID: n.id, Seq: seq, Addrs: addrs})
		if err != nil {
			n.log.Warn("sign peer record", "err", err)
			signed = nil
		}
		rec = &signed
		n.record.Store(rec)
	}
	n.info.Store(&identify.Info{
		Key:          n.key,
		ListenAddrs:  addrs,
		Protocols:    *n.protos.Load(),
		AgentVersion: n.cfg.AgentVersion,
		SignedRecord: *rec,
	})
	n.schedulePush()
}

// identifyConn asks the peer of a new connection who it is.
func (n *Node) identifyConn(c *Conn) {
	defer n.wg.Done()
	defer close(c.identified)
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.IdentifyTimeout)
	defer cancel()
	res, err := n.requestIdentify(ctx, c)
	if err != nil {
		c.idErr = err
		n.hmu.Lock()
		n.tellIdentified(c, err)
		n.hmu.Unlock()
		n.emit(Event{Kind: EventIdentified, Peer: c.RemotePeer(), Conn: c, Err: err})
		if isViolation(err) {
			// A peer that lies about itself is not worth keeping.
			n.log.Warn("closing connection: identify failed", "peer", c.RemotePeer(), "err", err)
			c.Close()
			return
		}
		n.log.Info("identify failed", "peer", c.RemotePeer(), "err", err)
		return
	}
	n.hmu.Lock()
	changed := n.applyIdentify(c, res)
	observed := !c.goneTold && n.observe(c, res.ObservedAddr)
	n.tellIdentified(c, nil)
	if changed {
		n.tellProtocols(c, res.Protocols)
	}
	n.hmu.Unlock()
	if observed {
		n.addrsChanged()
	}
	n.emit(Event{Kind: EventIdentified, Peer: c.RemotePeer(), Conn: c})
}

func (n *Node) requestIdentify(ctx context.Context, c *Conn) (*identify.Result, error) {
	s, err := c.tc.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	// Every libp2p peer serves identify, so the proposal need not wait.
	ls := transport.LazyStream(s, identify.ID)
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	res, err := identify.Request(ls, c.RemotePeer())
	if err != nil {
		s.Reset()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("identify: %w", err)
	}
	s.Close()
	return res, nil
}

// applyIdentify stores what a peer told about itself, replacing what it
// said before (go-libp2p replaces on push too). It reports whether the
// peer's protocols changed. Callers hold n.hmu, so that the hooks hear of
// changes in the order the peerstore took them.
func (n *Node) applyIdentify(c *Conn, res *identify.Result) (protocolsChanged bool) {
	id := c.RemotePeer()
	protocolsChanged = !slices.Equal(n.store.Protocols(id), res.Protocols)
	n.store.SetProtocols(id, res.Protocols)
	n.store.SetAgent(id, res.AgentVersion)
	n.store.SetProtocolVersion(id, res.ProtocolVersion)
	if res.SignedRecord != nil {
		n.store.SetSignedRecord(id, res.SignedRecord, res.SignedEnvelope)
	}
	if len(res.ListenAddrs) > 0 {
		if !n.store.SetAddrs(id, res.ListenAddrs, peer.ConnectedAddrTTL) {
			n.peerstoreFull(id)
		}
	}
	return protocolsChanged
}

func (n *Node) serveIdentify(s *Stream) {
	s.SetDeadline(time.Now().Add(n.cfg.IdentifyTimeout))
	if err := identify.Serve(s, n.info.Load(), s.Conn().RemoteMultiaddr()); err != nil {
		s.Reset()
		n.log.Debug("serve identify", "peer", s.Conn().RemotePeer(), "err", err)
	}
}

// Pushes a peer may send on one connection per pushWindow; more are
// reset unread. Changes come in bursts (a node registering its handlers
// at start pushes several times), so the window is generous, but a peer
// cannot make us parse and store identify messages without end.
const (
	maxPushes  = 10
	pushWindow = 10 * time.Second
)

// allowPush counts a push on c and reports whether it is within the rate.
// c.pushes packs the window's start (unix seconds) above its count, in
// one word per connection.
func (c *Conn) allowPush(now time.Time) bool {
	sec := uint64(now.Unix())
	for {
		old := c.pushes.Load()
		start, n := old>>16, old&0xffff
		if sec-start >= uint64(pushWindow/time.Second) {
			start, n = sec, 0
		}
		n = min(n+1, 0xffff)
		if c.pushes.CompareAndSwap(old, start<<16|n) {
			return n <= maxPushes
		}
	}
}

func (n *Node) handlePush(s *Stream) {
	if !s.Conn().allowPush(time.Now()) {
		s.Reset()
		n.counters.pushes.Add(1)
		n.log.Info("identify push refused", "peer", s.Conn().RemotePeer(), "err", &LimitError{
			Limit: LimitPushes, Value: maxPushes, Where: "identify push from " + s.Conn().RemotePeer().String()})
		return
	}
	s.SetDeadline(time.Now().Add(n.cfg.IdentifyTimeout))
	defer s.Close()
	res, err := identify.Request(s, s.Conn().RemotePeer())
	if err != nil {
		s.Reset()
		n.log.Info("identify push refused", "peer", s.Conn().RemotePeer(), "err", err)
		return
	}
	n.hmu.Lock()
	if n.applyIdentify(s.Conn(), res) {
		n.tellProtocols(s.Conn(), res.Protocols)
	}
	n.hmu.Unlock()
}

// schedulePush asks for a push round. Rounds run on a goroutine that
// exists only while there is something to push, so an idle node pays
// nothing for push; changes during a round coalesce into one more round.
func (n *Node) schedulePush() {
	n.pushMu.Lock()
	defer n.pushMu.Unlock()
	n.pushPending = true
	n.pushChanged = time.Now().UnixNano()
	if n.pushRunning {
		return
	}
	// Close sets closed under n.mu before waiting for n.wg, so checking it
	// under n.mu makes this Add safe.
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.pushRunning = true
	n.wg.Add(1)
	go n.pushRounds()
}

// pushRounds runs push rounds until none is pending.
func (n *Node) pushRounds() {
	defer n.wg.Done()
	for {
		n.pushMu.Lock()
		if !n.pushPending || n.ctx.Err() != nil {
			n.pushRunning = false
			n.pushMu.Unlock()
			return
		}
		n.pushPending = false
		changed := n.pushChanged
		n.pushMu.Unlock()
		n.pushRound(changed)
	}
}

// pushRound sends identify push to every identified peer that supports
// it, at most maxConcurrentPushes at a time, except on connections
// opened after the latest change (at changed): their identify already
// told the peer of it.
func (n *Node) pushRound(changed int64) {
	info := n.info.Load()
	sem := make(chan struct{}, maxConcurrentPushes)
	var wg sync.WaitGroup
	for _, c := range n.Conns("") {
		if c.opened > changed {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Whether the peer takes pushes is known once our identify
			// of it is done; its own identify of us may already have
			// the old info, so it cannot be skipped.
			select {
			case <-c.identified:
			case <-c.Done():
				return
			case <-n.ctx.Done():
				return
			}
			if !n.store.SupportsProtocol(c.RemotePeer(), identify.PushID) {
				return
			}
			if err := n.push(c, info); err != nil {
				n.log.Debug("identify push", "peer", c.RemotePeer(), "err", err)
			}
		}()
	}
	wg.Wait()
}

func (n *Node) push(c *Conn, info *identify.Info) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.IdentifyTimeout)
	defer cancel()
	s, err := c.tc.OpenStream(ctx)
	if err != nil {
		return err
	}
	ls := transport.LazyStream(s, identify.PushID)
	ls.SetDeadline(time.Now().Add(n.cfg.IdentifyTimeout)) // bounds Close's wait for the answer too
	return identify.Serve(ls, info, c.RemoteMultiaddr())
}

// isViolation reports whether err means the peer broke the protocol (as
// opposed to being slow or going away).
func isViolation(err error) bool {
	for _, target := range []error{
		identify.ErrPeerMismatch, identify.ErrBadRecord, identify.ErrMalformed,
		identify.ErrTooManyMessages, wire.ErrMessageTooLarge, wire.ErrVarintOverflow,
		wire.ErrVarintNotMinimal, wire.ErrProtocolViolation,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
