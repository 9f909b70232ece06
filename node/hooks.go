package node

import (
	"slices"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Hooks are how a protocol service follows the node's lifecycle: a
// routing table or a pubsub peer map creates and drops its per-peer state
// from them. Unlike Subscribe's events, hooks are never dropped: the node
// calls them synchronously, one at a time across the node, in the order
// things happen. For each peer: PeerConnected, then ConnOpened of that
// connection; Identified and ProtocolsChanged only while the connection
// they came over is open; ConnClosed of every connection, then
// PeerDisconnected after the last. Any field may be nil.
//
// A hook must return quickly and must not wait for the node: it runs
// while the node holds its lifecycle lock, so it must not call Connect,
// NewStream, Close, AddHooks or the remove function (start a goroutine
// for such work). Reading the node (Conns, Peerstore, Addrs) is fine.
type Hooks struct {
	// PeerConnected: c is the first open connection to its peer.
	PeerConnected func(c *Conn)
	// PeerDisconnected: the last connection to id has closed.
	PeerDisconnected func(id peer.ID)
	// ConnOpened: c was opened (and registered).
	ConnOpened func(c *Conn)
	// ConnClosed: c has closed.
	ConnClosed func(c *Conn)
	// Identified: identify on c finished; err says why it failed, or is
	// nil. On success the peerstore already holds what the peer said.
	Identified func(c *Conn, err error)
	// ProtocolsChanged: what the peer of c says it supports changed, by
	// its identify or a push; protos is the new list (do not modify it).
	ProtocolsChanged func(c *Conn, protos []string)
	// AddrsChanged: our own addresses changed; addrs is the new list.
	AddrsChanged func(addrs []ma.Multiaddr)
	// Closed: the node has closed; every connection's ConnClosed and
	// PeerDisconnected came before. Services stop here.
	Closed func()
}

// AddHooks registers h and replays the present to it before returning:
// PeerConnected and ConnOpened for every open connection, Identified and
// ProtocolsChanged for those already identified, and AddrsChanged with
// our addresses, so a service started after New misses nothing. remove
// unregisters h; no hook of h runs after it returns.
func (n *Node) AddHooks(h Hooks) (remove func()) {
	hp := &h
	addrs := n.Addrs() // before hmu: it may list interfaces
	n.hmu.Lock()
	defer n.hmu.Unlock()
	n.mu.Lock()
	closed := n.closed
	var peers [][]*Conn
	for _, cs := range n.conns {
		peers = append(peers, slices.Clone(cs))
	}
	n.mu.Unlock()
	if closed {
		if h.Closed != nil {
			h.Closed()
		}
		return func() {}
	}
	for _, cs := range peers {
		var told, identified *Conn
		for _, c := range cs {
			if !c.told || c.goneTold {
				continue // not told yet: the hooks, h included, will be
			}
			if told == nil && h.PeerConnected != nil {
				h.PeerConnected(c)
			}
			told = c
			if h.ConnOpened != nil {
				h.ConnOpened(c)
			}
			if c.idTold {
				identified = c
				if h.Identified != nil {
					h.Identified(c, c.idErr)
				}
			}
		}
		if identified == nil || h.ProtocolsChanged == nil {
			continue
		}
		if protos := n.store.Protocols(identified.RemotePeer()); len(protos) > 0 {
			h.ProtocolsChanged(identified, protos)
		}
	}
	if h.AddrsChanged != nil {
		h.AddrsChanged(addrs)
	}
	n.hooks = append(n.hooks, hp)
	return func() {
		n.hmu.Lock()
		defer n.hmu.Unlock()
		n.hooks = slices.DeleteFunc(n.hooks, func(x *Hooks) bool { return x == hp })
	}
}

// The tell functions run with n.hmu held, right after the change they
// report, so that hooks see changes in the order they happened.

func (n *Node) tellOpened(c *Conn, first bool) {
	c.told = true
	for _, h := range n.hooks {
		if first && h.PeerConnected != nil {
			h.PeerConnected(c)
		}
		if h.ConnOpened != nil {
			h.ConnOpened(c)
		}
	}
}

func (n *Node) tellClosed(c *Conn, last bool) {
	c.goneTold = true
	for _, h := range n.hooks {
		if h.ConnClosed != nil {
			h.ConnClosed(c)
		}
		if last && h.PeerDisconnected != nil {
			h.PeerDisconnected(c.RemotePeer())
		}
	}
}

// tellIdentified reports the end of c's identify unless c has closed.
func (n *Node) tellIdentified(c *Conn, err error) {
	if c.goneTold {
		return
	}
	c.idTold = true
	for _, h := range n.hooks {
		if h.Identified != nil {
			h.Identified(c, err)
		}
	}
}

// tellProtocols reports new protocols of c's peer unless c has closed.
func (n *Node) tellProtocols(c *Conn, protos []string) {
	if c.goneTold {
		return
	}
	for _, h := range n.hooks {
		if h.ProtocolsChanged != nil {
			h.ProtocolsChanged(c, protos)
		}
	}
}

func (n *Node) tellAddrs(addrs []ma.Multiaddr) {
	for _, h := range n.hooks {
		if h.AddrsChanged != nil {
			h.AddrsChanged(addrs)
		}
	}
}

func (n *Node) tellNodeClosed() {
	hooks := n.hooks
	n.hooks = nil
	for _, h := range hooks {
		if h.Closed != nil {
			h.Closed()
		}
	}
}
