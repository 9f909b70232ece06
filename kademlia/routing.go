package kademlia

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// ErrNotFound is returned when a lookup ended without what it looked for.
var ErrNotFound = errors.New("kademlia: not found")

// ErrClosed is returned by requests made after Close.
var ErrClosed = errors.New("kademlia: DHT closed")

// OptimisticShare is the share of the closest peers a new provide or put
// waits for before it returns; the rest finish in the background. 0.75
// is go-libp2p-kad-dht's optimistic provide return ratio.
const OptimisticShare = 0.75

// GetClosestPeers looks up the K peers closest to key (any bytes: a peer
// ID, a multihash, a record key), closest first.
func (d *DHT) GetClosestPeers(ctx context.Context, key []byte) ([]peer.ID, error) {
	ids, _, err := d.Lookup(ctx, key)
	return ids, err
}

// Lookup is GetClosestPeers with the lookup's figures.
func (d *DHT) Lookup(ctx context.Context, key []byte) ([]peer.ID, LookupStats, error) {
	return d.lookup(ctx, key, d.closerAsk(key))
}

// FindPeer finds the addresses of id: at once if we are connected to it,
// else by a lookup that ends as soon as a peer gives them.
func (d *DHT) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	if conns := d.n.Conns(id); len(conns) > 0 {
		return peer.AddrInfo{ID: id, Addrs: d.n.Peerstore().Addrs(id)}, nil
	}
	key := []byte(id)
	var mu sync.Mutex
	var found peer.AddrInfo
	_, _, err := d.lookup(ctx, key, func(ctx context.Context, p peer.ID) ([]peer.AddrInfo, bool, error) {
		resp, err := d.request(ctx, p, &Message{Type: FindNode, Key: key})
		if err != nil {
			return nil, false, err
		}
		d.tryAdd(p)
		closer := d.closestOf(key, resp.CloserPeers)
		for _, ai := range closer {
			if ai.ID == id && len(ai.Addrs) > 0 {
				mu.Lock()
				found = ai
				mu.Unlock()
				return closer, true, nil
			}
		}
		return closer, false, nil
	})
	mu.Lock()
	defer mu.Unlock()
	if found.ID != "" {
		return found, nil
	}
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("kademlia: find peer %s: %w", id.ShortString(), err)
	}
	return peer.AddrInfo{}, fmt.Errorf("kademlia: find peer %s: %w", id.ShortString(), ErrNotFound)
}

// FindProvidersAsync streams the providers of key (a multihash) as the
// lookup finds them, up to count (count <= 0: up to MaxProvidersFound); the channel
// closes when the lookup ends or ctx does.
func (d *DHT) FindProvidersAsync(ctx context.Context, key []byte, count int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, max(min(count, 64), 1))
	ok := d.spawn(func() {
		defer close(out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(d.ctx, cancel)
		defer stop()
		d.findProviders(ctx, key, count, func(ai peer.AddrInfo) bool {
			select {
			case out <- ai:
				return true
			case <-ctx.Done():
				return false
			}
		})
	})
	if !ok {
		close(out) // closed DHT: nothing to find
	}
	return out
}

// FindProviders collects the providers of key (a multihash), up to count
// (count <= 0: up to MaxProvidersFound), with the lookup's figures.
func (d *DHT) FindProviders(ctx context.Context, key []byte, count int) ([]peer.AddrInfo, LookupStats, error) {
	var out []peer.AddrInfo
	st, err := d.findProviders(ctx, key, count, func(ai peer.AddrInfo) bool {
		out = append(out, ai)
		return true
	})
	if len(out) > 0 {
		err = nil
	} else if err == nil {
		err = ErrNotFound
	}
	return out, st, err
}

// MaxProvidersFound bounds the providers one search gathers when its
// caller set no count: each answer may list thousands (the codec takes
// up to DefaultMaxPeers), and a search asks dozens of peers.
const MaxProvidersFound = 1024

// findProviders gives each provider found to emit, once, from one
// goroutine at a time; emit returning false ends the search.
func (d *DHT) findProviders(ctx context.Context, key []byte, count int, emit func(peer.AddrInfo) bool) (LookupStats, error) {
	if len(key) == 0 || len(key) > MaxProviderKeyLen {
		return LookupStats{}, fmt.Errorf("kademlia: provider key of %d bytes (want a multihash)", len(key))
	}
	if count <= 0 || count > MaxProvidersFound {
		count = MaxProvidersFound
	}
	var mu sync.Mutex
	seen := make(map[peer.ID]bool)
	ended := false
	give := func(ai peer.AddrInfo) bool { // mu held
		if ended || seen[ai.ID] {
			return !ended
		}
		seen[ai.ID] = true
		if !emit(ai) || len(seen) >= count {
			ended = true
		}
		return !ended
	}
	mu.Lock()
	for _, p := range d.providers.Get(key, time.Now(), 0) {
		ai := peer.AddrInfo{ID: p.ID, Addrs: p.Addrs}
		if p.ID == d.n.ID() {
			ai.Addrs = d.n.Addrs()
		} else if ai.Addrs == nil {
			ai.Addrs = d.n.Peerstore().Addrs(p.ID)
		}
		if !give(ai) {
			mu.Unlock()
			return LookupStats{}, nil
		}
	}
	mu.Unlock()
	_, st, err := d.lookup(ctx, key, func(ctx context.Context, p peer.ID) ([]peer.AddrInfo, bool, error) {
		resp, err := d.request(ctx, p, &Message{Type: GetProviders, Key: key})
		if err != nil {
			return nil, false, err
		}
		d.tryAdd(p)
		provs := d.peersOf(resp.ProviderPeers, d.cfg.Messages.MaxPeers)
		mu.Lock()
		defer mu.Unlock()
		more := true
		for _, ai := range provs {
			if len(ai.Addrs) > 0 {
				d.n.Peerstore().AddAddrs(ai.ID, ai.Addrs, peer.TempAddrTTL)
			}
			if more = give(ai); !more {
				break
			}
		}
		return d.closestOf(key, resp.CloserPeers), !more, nil
	})
	return st, err
}

// Provide announces that we provide key (a multihash): it records us in
// our own store, looks up the K peers closest to key and sends each an
// ADD_PROVIDER. It returns once OptimisticShare of them have the record;
// the others are sent in the background.
func (d *DHT) Provide(ctx context.Context, key []byte) error {
	if len(key) == 0 || len(key) > MaxProviderKeyLen {
		return fmt.Errorf("kademlia: provide: key of %d bytes (want a multihash)", len(key))
	}
	if err := d.providers.Add(key, d.n.ID(), nil, time.Now()); err != nil {
		return fmt.Errorf("kademlia: provide: %w", err)
	}
	self := d.entryOf(d.n.ID())
	if len(self.Addrs) == 0 {
		return fmt.Errorf("kademlia: provide: we have no address the %s DHT accepts", d.cfg.Protocol)
	}
	peers, _, err := d.Lookup(ctx, key)
	if err != nil {
		return fmt.Errorf("kademlia: provide: %w", err)
	}
	return d.toEach(ctx, peers, &Message{Type: AddProvider, Key: key, ProviderPeers: []Peer{self}}, false)
}

// toEach sends m to each of peers concurrently and returns once
// OptimisticShare of them succeeded (or all ended); the sends go on in
// the background, within the request timeout. It fails only if every
// send failed.
func (d *DHT) toEach(ctx context.Context, peers []peer.ID, m *Message, reply bool) error {
	if len(peers) == 0 {
		return ErrNoPeers
	}
	type result struct{ err error }
	results := make(chan result, len(peers))
	for _, p := range peers {
		ok := d.spawn(func() {
			rctx, cancel := context.WithTimeout(d.ctx, d.cfg.RequestTimeout)
			defer cancel()
			var err error
			if reply {
				_, err = d.request(rctx, p, m)
			} else {
				err = d.send(rctx, p, m)
			}
			results <- result{err}
		})
		if !ok {
			results <- result{ErrClosed}
		}
	}
	want := int(float64(len(peers))*OptimisticShare + 0.999)
	ok, failed := 0, 0
	var last error
	for ok < want && ok+failed < len(peers) {
		select {
		case r := <-results:
			if r.err != nil {
				failed++
				last = r.err
			} else {
				ok++
			}
		case <-ctx.Done():
			if ok > 0 {
				return nil
			}
			return ctx.Err()
		}
	}
	if ok == 0 {
		return fmt.Errorf("kademlia: every %s failed: %w", m.Type, last)
	}
	return nil
}

// PutValue validates a record, stores it and puts it on the K peers
// closest to its key, returning once OptimisticShare of them took it.
// It fails if we hold a better record for the key.
func (d *DHT) PutValue(ctx context.Context, key string, value []byte) error {
	if err := d.storeValue(key, value); err != nil {
		return fmt.Errorf("kademlia: put %q: %w", key, err)
	}
	peers, _, err := d.Lookup(ctx, []byte(key))
	if err != nil {
		return fmt.Errorf("kademlia: put %q: %w", key, err)
	}
	rec := &Record{Key: []byte(key), Value: value}
	return d.toEach(ctx, peers, &Message{Type: PutValue, Key: []byte(key), Record: rec}, true)
}

// GetValue finds the best record for key: it asks the closest peers until
// Quorum of them gave a valid record (or the lookup ends), returns the
// best by the validator's Select, and puts it back on the peers that gave
// a worse one.
func (d *DHT) GetValue(ctx context.Context, key string) ([]byte, error) {
	type got struct {
		from  peer.ID
		value []byte
	}
	var mu sync.Mutex
	var vals []got
	if v, _, ok := d.values.Get(key, time.Now()); ok {
		vals = append(vals, got{d.n.ID(), v})
	}
	kb := []byte(key)
	_, _, err := d.lookup(ctx, kb, func(ctx context.Context, p peer.ID) ([]peer.AddrInfo, bool, error) {
		resp, err := d.request(ctx, p, &Message{Type: GetValue, Key: kb})
		if err != nil {
			return nil, false, err
		}
		d.tryAdd(p)
		closer := d.closestOf(kb, resp.CloserPeers)
		if resp.Record == nil || d.cfg.Validator.Validate(key, resp.Record.Value) != nil {
			return closer, false, nil
		}
		mu.Lock()
		defer mu.Unlock()
		vals = append(vals, got{p, resp.Record.Value})
		return closer, len(vals) >= d.cfg.Quorum, nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(vals) == 0 {
		if err == nil {
			err = ErrNotFound
		}
		return nil, fmt.Errorf("kademlia: get %q: %w", key, err)
	}
	values := make([][]byte, len(vals))
	for i, g := range vals {
		values[i] = g.value
	}
	best, err := d.cfg.Validator.Select(key, values)
	if err != nil {
		return nil, fmt.Errorf("kademlia: get %q: %w", key, err)
	}
	var stale []peer.ID
	for _, g := range vals {
		if g.from != d.n.ID() && string(g.value) != string(values[best]) {
			stale = append(stale, g.from)
		}
	}
	if len(stale) > 0 {
		rec := &Record{Key: kb, Value: values[best]}
		d.spawn(func() { d.toEach(d.ctx, stale, &Message{Type: PutValue, Key: kb, Record: rec}, true) })
	}
	return values[best], nil
}

// AddrsOf is what the DHT knows of id's addresses (those its filter
// accepts), for callers that want to dial a peer a lookup returned.
func (d *DHT) AddrsOf(id peer.ID) []ma.Multiaddr {
	return d.filterAddrs(d.n.Peerstore().Addrs(id))
}
