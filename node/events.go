package node

import (
	"sync/atomic"

	"github.com/mote-p2p/mote/peer"
)

// EventKind says what happened.
type EventKind int

// Event kinds.
const (
	// EventConnected: a connection to Peer was established (Conn).
	EventConnected EventKind = iota + 1
	// EventIdentified: identify on Conn finished; Err is set if it failed.
	EventIdentified
	// EventDisconnected: Conn to Peer has closed.
	EventDisconnected
	// EventDialFailed: dialing Peer failed; Err says why for each address
	// tried. (A successful dial is an EventConnected whose Conn.State()
	// names the transport that won.)
	EventDialFailed
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventIdentified:
		return "identified"
	case EventDisconnected:
		return "disconnected"
	case EventDialFailed:
		return "dial failed"
	}
	return "unknown"
}

// Event is something that happened to a connection.
type Event struct {
	Kind EventKind
	Peer peer.ID
	Conn *Conn
	Err  error
}

// Subscription receives events on C. Events that find C full are dropped
// (and counted) so that a slow subscriber never stalls the node.
type Subscription struct {
	C       <-chan Event
	ch      chan Event
	node    *Node
	dropped atomic.Uint64
	closed  bool // guarded by node.mu
}

// Subscribe returns a subscription buffering up to size events (16 if
// size ≤ 0). Close it when done.
func (n *Node) Subscribe(size int) *Subscription {
	if size <= 0 {
		size = 16
	}
	ch := make(chan Event, size)
	s := &Subscription{C: ch, ch: ch, node: n}
	n.mu.Lock()
	if n.closed {
		s.closed = true
		close(ch)
	} else {
		n.subs[s] = struct{}{}
	}
	n.mu.Unlock()
	return s
}

// Dropped is the number of events dropped because C was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	s.close()
}

// close requires node.mu.
func (s *Subscription) close() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.node.subs, s)
	close(s.ch)
}

func (n *Node) emit(e Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
}
