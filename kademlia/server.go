package kademlia

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
)

var errNoRecord = errors.New("kademlia: PUT_VALUE without a record, or with another key")

// serve answers requests on one inbound stream until the peer ends it,
// one after the other, as go's cached streams expect. A request we
// cannot answer resets the stream, as go does: the protocol has no error
// message.
func (d *DHT) serve(s *node.Stream) {
	from := s.Conn().RemotePeer()
	for {
		s.SetReadDeadline(time.Now().Add(d.cfg.StreamIdleTimeout))
		req, err := ReadMessage(s, d.cfg.Messages)
		if err == io.EOF {
			s.Close()
			return
		}
		if err != nil {
			d.log.Debug("kademlia bad request", "peer", from, "err", err)
			s.Reset()
			return
		}
		if !d.Serving() {
			s.Reset()
			return
		}
		resp, err := d.handle(from, s.Conn(), req)
		if err != nil {
			d.log.Debug("kademlia request refused", "peer", from, "type", req.Type, "err", err)
			s.Reset()
			return
		}
		if resp == nil {
			continue // ADD_PROVIDER: no answer
		}
		s.SetWriteDeadline(time.Now().Add(d.cfg.RequestTimeout))
		if err := WriteMessage(s, resp); err != nil {
			s.Reset()
			return
		}
	}
}

// handle answers one request; a nil response means none is sent.
func (d *DHT) handle(from peer.ID, c *node.Conn, req *Message) (*Message, error) {
	d.count("kad.in." + req.Type.String())
	switch req.Type {
	case FindNode:
		return &Message{Type: FindNode, CloserPeers: d.closerEntries(req.Key, from, true)}, nil
	case GetValue:
		if len(req.Key) == 0 {
			return nil, errors.New("kademlia: GET_VALUE without a key")
		}
		resp := &Message{Type: GetValue, Key: req.Key, CloserPeers: d.closerEntries(req.Key, from, false)}
		if v, received, ok := d.values.Get(string(req.Key), time.Now()); ok {
			resp.Record = &Record{Key: req.Key, Value: v, TimeReceived: received.UTC().Format(time.RFC3339Nano)}
		}
		return resp, nil
	case PutValue:
		if err := d.allowWrite(from); err != nil {
			return nil, err
		}
		if req.Record == nil || !bytes.Equal(req.Record.Key, req.Key) {
			return nil, errNoRecord
		}
		if err := d.storeValue(string(req.Key), req.Record.Value); err != nil {
			return nil, err
		}
		return &Message{Type: PutValue, Key: req.Key, Record: req.Record}, nil
	case GetProviders:
		if len(req.Key) == 0 || len(req.Key) > MaxProviderKeyLen {
			return nil, fmt.Errorf("kademlia: GET_PROVIDERS key of %d bytes", len(req.Key))
		}
		resp := &Message{Type: GetProviders, Key: req.Key, CloserPeers: d.closerEntries(req.Key, from, false)}
		for _, p := range d.providers.Get(req.Key, time.Now(), 0) {
			e := Peer{ID: []byte(p.ID)}
			addrs := p.Addrs
			if addrs == nil {
				addrs = d.n.Peerstore().Addrs(p.ID)
			}
			if p.ID == d.n.ID() {
				addrs = d.n.Addrs()
			}
			for _, a := range d.filterAddrs(addrs) {
				e.Addrs = append(e.Addrs, a.Bytes())
			}
			resp.ProviderPeers = append(resp.ProviderPeers, e)
			if resp.Size() > d.cfg.Messages.MaxMessageSize-MaxPeerRecordSize {
				resp.ProviderPeers = resp.ProviderPeers[:len(resp.ProviderPeers)-1]
				break
			}
		}
		return resp, nil
	case AddProvider:
		if len(req.Key) == 0 || len(req.Key) > MaxProviderKeyLen {
			return nil, fmt.Errorf("kademlia: ADD_PROVIDER key of %d bytes", len(req.Key))
		}
		if err := d.allowWrite(from); err != nil {
			// No answer exists to refuse with, and a reset would cost
			// the peer its cached stream: drop the record quietly.
			return nil, nil
		}
		stored := false
		for _, e := range req.ProviderPeers {
			// Only the provider itself may say it provides (go:
			// "received provider from wrong peer" otherwise).
			if peer.ID(e.ID) != from {
				continue
			}
			ai := d.peersOf([]Peer{e}, 1)
			if len(ai) == 0 || len(ai[0].Addrs) == 0 {
				continue // go ignores entries without addresses
			}
			if err := d.providers.Add(req.Key, from, ai[0].Addrs, time.Now()); err != nil {
				if errors.Is(err, ErrStoreFull) {
					d.count(LimitProviders)
				}
				return nil, err
			}
			stored = true
		}
		if !stored {
			return nil, errors.New("kademlia: ADD_PROVIDER without a usable entry for its sender")
		}
		return nil, nil
	case Ping:
		return &Message{Type: Ping}, nil
	}
	return nil, fmt.Errorf("kademlia: unknown request type %s", req.Type)
}

// allowWrite applies the per-peer write rate.
func (d *DHT) allowWrite(from peer.ID) error {
	d.mu.Lock()
	l := d.writers[from]
	d.mu.Unlock()
	if l != nil && !l.Allow() {
		d.count(LimitWrites)
		return &node.LimitError{Limit: LimitWrites, Value: int64(d.cfg.WriteRate), Where: "DHT write from " + from.String()}
	}
	return nil
}

// storeValue validates a record and stores it unless the one stored is
// better.
func (d *DHT) storeValue(key string, value []byte) error {
	if err := d.cfg.Validator.Validate(key, value); err != nil {
		return err
	}
	better := func(stored []byte) (bool, error) {
		i, err := d.cfg.Validator.Select(key, [][]byte{value, stored})
		return i == 0, err
	}
	err := d.values.Put(key, value, better, time.Now())
	if errors.Is(err, ErrStoreFull) {
		d.count(LimitValues)
	}
	return err
}

// closerEntries are the K routing-table peers closest to key, without
// the requester (and without ourselves); for FIND_NODE, the target itself
// comes first when we know its addresses (go does so even for peers not
// in the table, which is how a client-mode peer is found).
func (d *DHT) closerEntries(key []byte, from peer.ID, findNode bool) []Peer {
	k := d.cfg.BucketSize
	out := make([]Peer, 0, k)
	if findNode {
		if target, err := peer.IDFromBytes(key); err == nil && target != from && target != d.n.ID() {
			if e := d.entryOf(target); len(e.Addrs) > 0 {
				out = append(out, e)
			}
		}
	}
	for _, id := range d.table.NearestPeers(KeyOf(key), k+2) {
		if len(out) == k {
			break
		}
		if id == from || (len(out) > 0 && peer.ID(out[0].ID) == id) {
			continue
		}
		if e := d.entryOf(id); len(e.Addrs) > 0 {
			out = append(out, e)
		}
	}
	return out
}
