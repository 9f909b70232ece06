package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// ErrDialBackoff is wrapped by the error of a dial refused because the
// peer failed to connect shortly before.
var ErrDialBackoff = errors.New("dial backoff")

const maxDialBackoff = 5 * time.Minute

// backoff records recent dial failures to one peer.
type backoff struct {
	until    time.Time
	failures int
}

// dialKey names a dial: to a peer, direct only (ForceDirect) or not,
// past the address filters (Explicit) or not.
type dialKey struct {
	id       peer.ID
	direct   bool
	explicit bool
}

// dialCall is a dial in progress; concurrent Connects to one peer share it.
type dialCall struct {
	done chan struct{}
	conn *Conn
	err  error
	// exempt holds the addresses (binary) the caller that started an
	// Explicit dial gave: those, and only those, pass the address
	// filters. Addresses the peerstore learned from the network are
	// filtered even then, or a peer could steer a user's `swarm connect`
	// to its advertised private addresses.
	exempt map[string]bool
}

// Connect returns an open connection to id, dialing it if there is none.
// addrs are added to the peerstore (for a few minutes) and dialed along
// with the addresses already known.
func (n *Node) Connect(ctx context.Context, id peer.ID, addrs ...ma.Multiaddr) (*Conn, error) {
	if id == n.id {
		return nil, errors.New("connect: cannot dial self")
	}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if len(addrs) > 0 {
		if !n.store.AddAddrs(id, addrs, peer.TempAddrTTL) {
			n.peerstoreFull(id)
		}
	}
	direct := ctxFlag(ctx, forceDirectKey)
	if c := n.connTo(id); c != nil && (!direct || !c.Limited()) {
		return c, nil
	}
	key := dialKey{id, direct, ctxFlag(ctx, explicitKey)}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	call, ok := n.dials[key]
	if !ok {
		if b, ok := n.backoff[id]; ok && time.Now().Before(b.until) && len(addrs) == 0 {
			n.mu.Unlock()
			return nil, fmt.Errorf("connect %s: %w until %s (%d failures)", id, ErrDialBackoff, b.until.Format(time.TimeOnly), b.failures)
		}
		call = &dialCall{done: make(chan struct{})}
		if key.explicit && len(addrs) > 0 {
			call.exempt = make(map[string]bool, len(addrs))
			for _, a := range addrs {
				call.exempt[string(a.Bytes())] = true
			}
		}
		n.dials[key] = call
		n.wg.Add(1)
		go n.dial(key, call)
	}
	n.mu.Unlock()
	select {
	case <-call.done:
		return call.conn, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("connect %s: %w", id, ctx.Err())
	}
}

// dial runs one dialCall; it is owned by the node, not by the caller who
// started it, so a caller giving up does not abort it for the others.
func (n *Node) dial(key dialKey, call *dialCall) {
	defer n.wg.Done()
	id := key.id
	c, err := n.dialAddrs(id, key, call.exempt)
	n.mu.Lock()
	delete(n.dials, key)
	switch {
	case errors.Is(err, ErrLimit):
		// Our own limit refused the connection: the peer did nothing
		// to be backed off for, and the next dial may find room.
	case err != nil:
		b := n.backoff[id]
		b.failures++
		b.until = time.Now().Add(n.backoffWait(b.failures))
		n.backoff[id] = b
		n.sweepBackoff()
	default:
		delete(n.backoff, id)
	}
	n.mu.Unlock()
	if err != nil {
		n.emit(Event{Kind: EventDialFailed, Peer: id, Err: err})
	}
	call.conn, call.err = c, err
	close(call.done)
}

// backoffWait is the wait after the given number of consecutive
// failures: DialBackoff doubling up to 5 minutes, with ±20 % jitter so
// that many peers failing together do not retry together.
func (n *Node) backoffWait(failures int) time.Duration {
	wait := min(n.cfg.DialBackoff<<min(failures-1, 16), maxDialBackoff)
	return wait - wait/5 + rand.N(2*wait/5+1)
}

// maxBackoffEntries bounds each backoff map; expired entries are swept
// when it fills, and if none has expired the oldest information is lost.
const maxBackoffEntries = 1024

// sweepBackoff drops expired entries once the maps grow; n.mu is held.
func (n *Node) sweepBackoff() {
	now := time.Now()
	if len(n.backoff) >= maxBackoffEntries/4 {
		for id, b := range n.backoff {
			if now.After(b.until) {
				delete(n.backoff, id)
			}
		}
	}
	if len(n.addrBackoff) >= maxBackoffEntries/4 {
		for a, b := range n.addrBackoff {
			if now.After(b.until) {
				delete(n.addrBackoff, a)
			}
		}
	}
	if len(n.backoff) >= maxBackoffEntries {
		clear(n.backoff)
	}
	if len(n.addrBackoff) >= maxBackoffEntries {
		clear(n.addrBackoff)
	}
}

// addrFailed puts one address of a peer in backoff. The key includes the
// peer: an address that answered with another peer's key still works for
// that peer.
func (n *Node) addrFailed(id peer.ID, addr ma.Multiaddr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := string(id) + string(addr.Bytes())
	b := n.addrBackoff[k]
	b.failures++
	b.until = time.Now().Add(n.backoffWait(b.failures))
	n.addrBackoff[k] = b
	n.sweepBackoff()
}

// addrUsable reports whether the address of id is out of backoff.
func (n *Node) addrUsable(id peer.ID, addr ma.Multiaddr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, ok := n.addrBackoff[string(id)+string(addr.Bytes())]
	return !ok || time.Now().After(b.until)
}

// dialTarget is one address to dial, and when to start relative to the
// first dial.
type dialTarget struct {
	addr  ma.Multiaddr
	t     transport.Transport
	class transport.DialClass
	delay time.Duration
}

// planDials orders the addresses of a peer by the dial class their
// transports give them: QUIC first, then TCP and other direct transports
// after a head start (happy eyeballs, as go-libp2p's dial ranker: QUIC
// connects in one round trip fewer and is what a Kubo peer ends up
// using), relayed addresses last.
func (n *Node) planDials(id peer.ID, addrs []ma.Multiaddr, key dialKey, exempt map[string]bool) []dialTarget {
	var targets []dialTarget
	for _, a := range addrs {
		t := n.transportFor(a)
		if t == nil || !n.addrUsable(id, a) || (!exempt[string(a.Bytes())] && n.dialFiltered(a)) {
			continue
		}
		class := dialClass(t, a)
		if key.direct && class == transport.DialRelay {
			continue
		}
		targets = append(targets, dialTarget{addr: a, t: t, class: class})
	}
	return planClasses(targets, n.cfg.TCPHeadStart)
}

// dialAddrs dials the known addresses of id, DialConcurrency at a time,
// in the order and with the delays of planDials; the first connection
// wins and the others are cancelled or closed.
func (n *Node) dialAddrs(id peer.ID, key dialKey, exempt map[string]bool) (*Conn, error) {
	// Refused before the handshake, which addConn would only throw away.
	if err := n.outboundRoom(id); err != nil {
		return nil, err
	}
	addrs := n.store.Addrs(id)
	targets := n.planDials(id, addrs, key, exempt)
	if len(targets) == 0 {
		if slices.ContainsFunc(addrs, n.dialFiltered) {
			return nil, fmt.Errorf("connect %s: no dialable address known (some are in Config.AddrFilters' ranges)", id)
		}
		if len(addrs) > 0 && len(n.planDialsIgnoringBackoff(addrs)) > 0 {
			return nil, fmt.Errorf("connect %s: every address is in %w after failing", id, ErrDialBackoff)
		}
		return nil, fmt.Errorf("connect %s: no dialable address known", id)
	}
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	type result struct {
		c   transport.Conn
		err error
	}
	results := make(chan result, len(targets))
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	pending := 0
	var errs []error
	var won *Conn
	next := 0
	for next < len(targets) || pending > 0 {
		// Start every target whose time has come, within the concurrency bound.
		for won == nil && next < len(targets) && pending < n.cfg.DialConcurrency {
			tg := targets[next]
			if wait := tg.delay - time.Since(start); wait > 0 && pending > 0 {
				timer.Reset(wait)
				break
			}
			next++
			pending++
			go func() {
				dctx, dcancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
				defer dcancel()
				c, err := tg.t.Dial(dctx, tg.addr, id)
				if err != nil {
					if ctx.Err() == nil { // not cancelled because another won
						n.addrFailed(id, tg.addr)
					}
					err = fmt.Errorf("%s: %w", tg.addr, err)
				}
				results <- result{c, err}
			}()
		}
		if pending == 0 {
			break
		}
		var r result
		select {
		case r = <-results:
		case <-timer.C:
			continue
		}
		pending--
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case won != nil:
			r.c.Close() // a later success loses to the first
		default:
			c, err := n.addConn(r.c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			won = c
			cancel()
		}
	}
	if won != nil {
		return won, nil
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return nil, fmt.Errorf("connect %s: %w", id, errors.Join(errs...))
}

// outboundRoom fails with a LimitError if MaxOutboundConns connections
// we opened are open. addConn checks again: dials run concurrently.
func (n *Node) outboundRoom(id peer.ID) error {
	n.mu.Lock()
	full := n.outbound >= n.cfg.Limits.MaxOutboundConns
	n.mu.Unlock()
	if !full {
		return nil
	}
	return n.outboundRefused(id)
}

// outboundRefused counts a refusal by MaxOutboundConns and returns its
// LimitError.
func (n *Node) outboundRefused(id peer.ID) error {
	n.counters.outboundConns.Add(1)
	return &LimitError{Limit: LimitOutboundConns, Value: int64(n.cfg.Limits.MaxOutboundConns), Where: "outbound connection to " + id.String()}
}

// planDialsIgnoringBackoff says which addresses have a transport at all.
func (n *Node) planDialsIgnoringBackoff(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if n.transportFor(a) != nil {
			out = append(out, a)
		}
	}
	return out
}
