package kademlia

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// streamReuseTries is how many failures of a reused stream a sender
// takes before it gives up reusing streams to that peer and sends one
// request per stream (go-libp2p-kad-dht internal/net/message_manager.go).
const streamReuseTries = 3

// ErrUnexpectedResponse is wrapped when a peer answers with a message of
// another type than the request's.
var ErrUnexpectedResponse = errors.New("kademlia: response type differs from the request's")

// sender holds the one outbound stream to a peer on which requests go
// one after the other, as go-libp2p-kad-dht's messageSender does: go
// servers expect it, and a stream per request would cost a negotiation
// each time.
type sender struct {
	// turn is held (a token in it) for a whole request and its
	// response. A channel rather than a mutex, so that a request
	// waiting its turn gives up with its context.
	turn     chan struct{}
	s        *node.Stream
	failures int
	dropped  atomic.Bool
}

// drop abandons the sender (its peer has gone). It does not wait for a
// request in progress, which ends on its own with the connection, and
// runs in a hook.
func (s *sender) drop() {
	s.dropped.Store(true)
	select {
	case s.turn <- struct{}{}:
		if s.s != nil {
			s.s.Reset()
			s.s = nil
		}
		<-s.turn
	default:
	}
}

func (d *DHT) senderOf(id peer.ID) *sender {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.senders[id]
	if s == nil {
		// Dropped when the peer disconnects, when its stream is given
		// back (kept.go), or by exchange if it holds no stream.
		s = &sender{turn: make(chan struct{}, 1)}
		d.senders[id] = s
	}
	return s
}

// request sends m to id and reads its response.
func (d *DHT) request(ctx context.Context, id peer.ID, m *Message) (*Message, error) {
	return d.exchange(ctx, id, m, true)
}

// send sends m to id without waiting for an answer (ADD_PROVIDER).
func (d *DHT) send(ctx context.Context, id peer.ID, m *Message) error {
	_, err := d.exchange(ctx, id, m, false)
	return err
}

func (d *DHT) exchange(ctx context.Context, id peer.ID, m *Message, reply bool) (*Message, error) {
	if id == d.n.ID() {
		return nil, errors.New("kademlia: request to ourselves")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := d.senderOf(id)
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	resp, err := d.exchangeOn(ctx, s, id, m, reply)
	// The map holds a sender only while it holds a stream, so that
	// every stream we keep can be given back (kept.go). s may have left
	// the map while this request waited its turn.
	d.mu.Lock()
	cur := d.senders[id]
	orphan := false
	switch {
	case s.s == nil:
		if cur == s {
			delete(d.senders, id) // the dial failed, or reuse was given up
		}
	case cur == nil && !s.dropped.Load():
		d.senders[id] = s
	case cur != s:
		orphan = true
	}
	d.mu.Unlock()
	if orphan {
		s.s.Close()
		s.s = nil
	}
	kept := s.s != nil
	<-s.turn
	if kept {
		d.used(id)
	}
	return resp, err
}

// exchangeOn runs the request with s's turn held.
func (d *DHT) exchangeOn(ctx context.Context, s *sender, id peer.ID, m *Message, reply bool) (*Message, error) {
	for attempt := 0; ; attempt++ {
		reused := s.s != nil
		if s.s == nil {
			// The dial counts against the request's time: a peer
			// that no longer answers must not hold a lookup for a whole
			// dial timeout.
			sctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
			st, err := d.openStream(sctx, id)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("kademlia: %s to %s: %w", m.Type, id.ShortString(), err)
			}
			s.s = st
		}
		resp, err := d.roundTrip(ctx, s.s, m, reply)
		if err == nil && (s.failures > streamReuseTries || s.dropped.Load()) {
			s.s.Close()
			s.s = nil
		}
		if err == nil {
			return resp, nil
		}
		s.s.Reset()
		s.s = nil
		if errors.Is(err, ErrUnexpectedResponse) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("kademlia: %s to %s: %w", m.Type, id.ShortString(), err)
		}
		// A reused stream may have died between requests (the peer's
		// idle timeout): one retry on a new stream, as go does.
		if !reused || attempt > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("kademlia: %s to %s: %w", m.Type, id.ShortString(), err)
		}
		s.failures++
	}
}

// Waiting for room: a stream our own node refused for its connection
// limit is tried again after 50 ms, doubling up to 1 s, within the
// request's time, while the DHT gives back connections it no longer
// needs (kept.go). A sweep over thousands of peers from a node allowed a
// few dozen connections goes at the pace they free up, and a lookup does
// not lose its closest peers to our own limit.
const (
	limitBackoff    = 50 * time.Millisecond
	maxLimitBackoff = time.Second
)

// openStream opens a DHT stream to id, waiting for room while our own
// node's limits refuse it.
func (d *DHT) openStream(ctx context.Context, id peer.ID) (*node.Stream, error) {
	wait := limitBackoff
	for {
		st, err := d.n.NewStream(ctx, id, d.cfg.Protocol)
		if !errors.Is(err, node.ErrLimit) {
			return st, err
		}
		d.count(OwnLimitWaits)
		d.shed(shedOnLimit)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
		wait = min(2*wait, maxLimitBackoff)
	}
}

func (d *DHT) roundTrip(ctx context.Context, st *node.Stream, m *Message, reply bool) (*Message, error) {
	deadline := time.Now().Add(d.cfg.RequestTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	st.SetDeadline(deadline)
	// A cancelled context ends a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := WriteMessage(st, m); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	if !reply {
		return nil, nil
	}
	resp, err := ReadMessage(st, d.cfg.Messages)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.Type != m.Type {
		return nil, fmt.Errorf("%w: %s answered with %s", ErrUnexpectedResponse, m.Type, resp.Type)
	}
	return resp, nil
}

// peersOf parses the peer entries of an answer into address infos,
// skipping ourselves, bad IDs and addresses the filter refuses; it keeps
// at most max entries.
func (d *DHT) peersOf(entries []Peer, max int) []peer.AddrInfo {
	out := make([]peer.AddrInfo, 0, min(len(entries), max))
	for _, e := range entries {
		if len(out) == max {
			break
		}
		id, err := peer.IDFromBytes(e.ID)
		if err != nil || id == d.n.ID() {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, b := range e.Addrs {
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil || !d.accepts(a) {
				continue
			}
			ai.Addrs = append(ai.Addrs, a)
		}
		out = append(out, ai)
	}
	return out
}

// entryOf is the Peer entry we give for id: its addresses the filter
// accepts, from the peerstore (or ours for ourselves).
func (d *DHT) entryOf(id peer.ID) Peer {
	var addrs []ma.Multiaddr
	if id == d.n.ID() {
		addrs = d.n.Addrs()
	} else {
		addrs = d.n.Peerstore().Addrs(id)
	}
	e := Peer{ID: []byte(id)}
	size := len(id) + 4
	for _, a := range d.filterAddrs(addrs) {
		b := a.Bytes()
		// Stay within the entry size go trims to.
		if size += len(b) + 3; size > MaxPeerRecordSize {
			break
		}
		e.Addrs = append(e.Addrs, b)
	}
	if id != d.n.ID() && len(d.n.Conns(id)) > 0 {
		e.Connection = Connected
	}
	return e
}

// randReader is crypto/rand as an io.Reader value.
type randReader struct{}

func (randReader) Read(b []byte) (int, error) { return rand.Read(b) }
