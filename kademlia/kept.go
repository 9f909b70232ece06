package kademlia

// kept.go gives back the connections the DHT no longer needs. A
// lookup asks a few dozen peers, a sweep of 10,000 keys a few thousand,
// and most of them are not in our routing table: kept open until the
// connection manager's grace period ends, they would exhaust the node's
// outbound connections (1,024 on the server preset, 32 on iot) long
// before it trims them. go-libp2p-kad-dht leaves them to the connection
// manager and a larger resource manager; on a small device that is not
// enough. The DHT keeps the peers it talked to in least-recently-used
// order, and beyond MaxKeptPeers closes its stream to the oldest
// and, if we dialed it, nothing else uses it and it is not protected (a
// useful routing-table peer), the connection. A table peer needs no
// connection to stay in the table: the next request dials it again.

import (
	"container/list"

	"github.com/mote-p2p/mote/peer"
)

// keptPeers is the LRU of the peers we keep a stream to, most recently
// used first; a peer leaves it when it disconnects or is given back.
// Guarded by DHT.mu.
type keptPeers struct {
	order list.List // of peer.ID, most recently used at the front
	at    map[peer.ID]*list.Element
}

// used notes that a request to id has ended with its stream kept and
// gives back what the least recently used peers beyond MaxKeptPeers
// hold.
func (d *DHT) used(id peer.ID) {
	max := d.cfg.MaxKeptPeers
	if max < 0 {
		return
	}
	d.mu.Lock()
	if e := d.kept.at[id]; e != nil {
		d.kept.order.MoveToFront(e)
	} else {
		d.kept.at[id] = d.kept.order.PushFront(id)
	}
	d.giveBack(d.kept.order.Len() - max)
}

// shedOnLimit is how many kept peers a refusal by the node's own
// connection limit gives back at once.
const shedOnLimit = 4

// shed gives back what the n least recently used kept peers hold: our
// node refused a connection for want of room.
func (d *DHT) shed(n int) {
	d.mu.Lock()
	d.giveBack(n)
}

// giveBack takes the n least recently used peers off the LRU, unlocks
// d.mu (held by the caller) and releases them.
func (d *DHT) giveBack(n int) {
	var victims []peer.ID
	for ; n > 0 && d.kept.order.Len() > 0; n-- {
		v := d.kept.order.Remove(d.kept.order.Back()).(peer.ID)
		delete(d.kept.at, v)
		victims = append(victims, v)
	}
	d.mu.Unlock()
	for _, v := range victims {
		d.release(v)
	}
}

// forgetKept drops id from the LRU (it disconnected).
func (d *DHT) forgetKept(id peer.ID) {
	if e := d.kept.at[id]; e != nil {
		d.kept.order.Remove(e)
		delete(d.kept.at, id)
	}
}

// release closes our stream to id and the connections to it that we
// dialed and nothing else uses. A request in progress keeps its stream:
// it will mark the peer used again when it ends.
func (d *DHT) release(id peer.ID) {
	d.mu.Lock()
	s := d.senders[id]
	d.mu.Unlock()
	if s != nil {
		select {
		case s.turn <- struct{}{}:
		default:
			return
		}
		d.mu.Lock()
		if d.senders[id] == s {
			delete(d.senders, id)
		}
		d.mu.Unlock()
		s.dropped.Store(true)
		if s.s != nil {
			s.s.Close()
			s.s = nil
		}
		<-s.turn
	}
	released := false
	for _, c := range d.n.Conns(id) {
		if c.State().Outbound && c.CloseIfIdle() {
			released = true
		}
	}
	if released {
		d.count(Released)
	}
}
