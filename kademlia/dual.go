package kademlia

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
)

// Dual is the pair of DHTs Kubo runs (go-libp2p-kad-dht dual/dual.go):
// the public one (ID, public addresses only) and the LAN one (LANID,
// private and loopback addresses only). Queries go to both; writes go to
// both.
type Dual struct {
	WAN, LAN *DHT
}

// NewDual starts both DHTs on n. cfg configures the WAN DHT; the LAN one
// takes the same settings with LANID and LANAddrs and, as in Kubo, serves
// whenever it has a LAN address, unless the WAN DHT is forced to be a
// client.
func NewDual(n *node.Node, cfg Config) (*Dual, error) {
	wan := cfg
	wan.Protocol = ID
	if wan.AddrFilter == nil {
		wan.AddrFilter = PublicAddrs(n)
	}
	lan := cfg
	lan.Protocol = LANID
	lan.AddrFilter = LANAddrs(n)
	// The LAN table needs no diversity filter: its peers are ours.
	lan.Table.MaxPerGroup, lan.Table.MaxPerGroupPerBucket = -1, -1
	if cfg.Mode != ModeClient {
		lan.Mode = ModeAuto
	}
	w, err := New(n, wan)
	if err != nil {
		return nil, err
	}
	l, err := New(n, lan)
	if err != nil {
		w.Close()
		return nil, err
	}
	return &Dual{WAN: w, LAN: l}, nil
}

// Close closes both DHTs.
func (d *Dual) Close() error {
	return errors.Join(d.WAN.Close(), d.LAN.Close())
}

func (d *Dual) both() []*DHT { return []*DHT{d.WAN, d.LAN} }

// SetMode switches both DHTs as NewDual would have configured them.
func (d *Dual) SetMode(m Mode) {
	d.WAN.SetMode(m)
	if m == ModeClient {
		d.LAN.SetMode(ModeClient)
	} else {
		d.LAN.SetMode(ModeAuto)
	}
}

// Bootstrap connects to peers and looks up our own ID in both DHTs. It
// fails only if both fail.
func (d *Dual) Bootstrap(ctx context.Context, peers ...peer.AddrInfo) error {
	errs := d.each(func(x *DHT) error { return x.Bootstrap(ctx, peers...) })
	if errs[0] != nil && errs[1] != nil {
		return errors.Join(errs...)
	}
	return nil
}

// each runs f on both DHTs at once and returns their errors, WAN first.
func (d *Dual) each(f func(*DHT) error) []error {
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, x := range d.both() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(x)
		}()
	}
	wg.Wait()
	return errs
}

// FindPeer asks both DHTs and returns the first answer.
func (d *Dual) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		ai  peer.AddrInfo
		err error
	}
	ch := make(chan res, 2)
	for _, x := range d.both() {
		go func() {
			ai, err := x.FindPeer(ctx, id)
			ch <- res{ai, err}
		}()
	}
	var errs []error
	for range 2 {
		r := <-ch
		if r.err == nil {
			// The other lookup ends with the cancel; its goroutine
			// sends into the buffered channel and exits.
			return r.ai, nil
		}
		errs = append(errs, r.err)
	}
	return peer.AddrInfo{}, errors.Join(errs...)
}

// FindProvidersAsync streams the providers both DHTs find, each once, up
// to count (count <= 0: up to MaxProvidersFound).
func (d *Dual) FindProvidersAsync(ctx context.Context, key []byte, count int) <-chan peer.AddrInfo {
	if count <= 0 || count > MaxProvidersFound {
		count = MaxProvidersFound
	}
	out := make(chan peer.AddrInfo, min(count, 64))
	ctx, cancel := context.WithCancel(ctx)
	wan := d.WAN.FindProvidersAsync(ctx, key, count)
	lan := d.LAN.FindProvidersAsync(ctx, key, count)
	ok := d.WAN.spawn(func() {
		defer close(out)
		defer cancel()
		seen := make(map[peer.ID]bool)
		for wan != nil || lan != nil {
			var ai peer.AddrInfo
			var ok bool
			select {
			case ai, ok = <-wan:
				if !ok {
					wan = nil
					continue
				}
			case ai, ok = <-lan:
				if !ok {
					lan = nil
					continue
				}
			}
			if seen[ai.ID] {
				continue
			}
			seen[ai.ID] = true
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			}
			if len(seen) >= count {
				return
			}
		}
	})
	if !ok {
		cancel()
		close(out)
	}
	return out
}

// Provide provides key in both DHTs; it fails only if both fail.
func (d *Dual) Provide(ctx context.Context, key []byte) error {
	errs := d.each(func(x *DHT) error { return x.Provide(ctx, key) })
	if errs[0] != nil && errs[1] != nil {
		return errors.Join(errs...)
	}
	return nil
}

// PutValue puts the record in both DHTs; it fails only if both fail.
func (d *Dual) PutValue(ctx context.Context, key string, value []byte) error {
	errs := d.each(func(x *DHT) error { return x.PutValue(ctx, key, value) })
	if errs[0] != nil && errs[1] != nil {
		return errors.Join(errs...)
	}
	return nil
}

// GetValue gets the best record either DHT has for key.
func (d *Dual) GetValue(ctx context.Context, key string) ([]byte, error) {
	vals := make([][]byte, 2)
	errs := d.each(func(x *DHT) error {
		v, err := x.GetValue(ctx, key)
		vals[d.index(x)] = v
		return err
	})
	var found [][]byte
	for i, v := range vals {
		if errs[i] == nil {
			found = append(found, v)
		}
	}
	if len(found) == 0 {
		return nil, errors.Join(errs...)
	}
	best, err := d.WAN.cfg.Validator.Select(key, found)
	if err != nil {
		return nil, fmt.Errorf("kademlia: get %q: %w", key, err)
	}
	return found[best], nil
}

func (d *Dual) index(x *DHT) int {
	if x == d.WAN {
		return 0
	}
	return 1
}

// GetClosestPeers looks up key in both DHTs and returns the WAN DHT's
// answer, or the LAN one's when the WAN DHT has none (a private network).
func (d *Dual) GetClosestPeers(ctx context.Context, key []byte) ([]peer.ID, error) {
	res := make([][]peer.ID, 2)
	errs := d.each(func(x *DHT) error {
		ids, err := x.GetClosestPeers(ctx, key)
		res[d.index(x)] = ids
		return err
	})
	if errs[0] == nil && len(res[0]) > 0 {
		return res[0], nil
	}
	if errs[1] == nil {
		return res[1], nil
	}
	return nil, errors.Join(errs...)
}
