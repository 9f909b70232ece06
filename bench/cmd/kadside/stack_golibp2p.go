//go:build !kadsidemote

package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

func init() { register(stackGo, goStack{}) }

// goStack runs go-libp2p hosts as bench/cmd/sidebyside configures them,
// but for QUIC: TCP, Noise, yamux, identify and ping, no relay, no host
// metrics, the default resource and connection managers; and
// go-libp2p-kad-dht with its defaults: the /ipfs/kad/1.0.0 protocol and
// no query, routing-table, diversity or address filter, so that loopback
// peers are accepted.
type goStack struct{}

func (goStack) start(server bool) (dhtNode, error) {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings(listenAddr),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.Ping(true),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("go-libp2p host: %w", err)
	}
	mode := dht.ModeClient
	if server {
		mode = dht.ModeServer
	}
	d, err := dht.New(h, dht.Mode(mode))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("go-libp2p-kad-dht: %w", err)
	}
	return &goNode{h: h, d: d}, nil
}

type goNode struct {
	h host.Host
	d *dht.IpfsDHT
}

func (g *goNode) info() addrInfo {
	ai := addrInfo{ID: g.h.ID().String()}
	for _, a := range g.h.Addrs() {
		ai.Addrs = append(ai.Addrs, a.String())
	}
	return ai
}

// seedWait bounds the wait for a connected seed to enter the routing
// table (after identify and go's liveness check of it).
const seedWait = 10 * time.Second

// bootstrap does what mote's Bootstrap does: connect to the seeds, wait
// until one is in the routing table, look up our own ID. go's own
// Bootstrap only starts a refresh in the background.
func (g *goNode) bootstrap(ctx context.Context, seeds []addrInfo) error {
	var wg sync.WaitGroup
	errs := make([]error, len(seeds))
	for i, s := range seeds {
		id, err := peer.Decode(s.ID)
		if err != nil {
			return fmt.Errorf("seed %s: %w", s.ID, err)
		}
		if id == g.h.ID() {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, a := range s.Addrs {
			addr, err := ma.NewMultiaddr(a)
			if err != nil {
				return fmt.Errorf("seed %s: %w", s.ID, err)
			}
			ai.Addrs = append(ai.Addrs, addr)
		}
		wg.Go(func() { errs[i] = g.h.Connect(ctx, ai) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil && len(g.h.Network().Peers()) == 0 {
		return fmt.Errorf("no seed reachable: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, seedWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for g.d.RoutingTable().Size() == 0 {
		select {
		case <-tick.C:
		case <-wctx.Done():
			return fmt.Errorf("no seed in the routing table after %v: %w", seedWait, wctx.Err())
		}
	}
	if _, err := g.d.GetClosestPeers(ctx, string(g.h.ID())); err != nil {
		return fmt.Errorf("self lookup: %w", err)
	}
	return nil
}

func (g *goNode) refresh(ctx context.Context) error {
	select {
	case err := <-g.d.ForceRefresh():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *goNode) tableSize() int { return g.d.RoutingTable().Size() }

func (g *goNode) provide(ctx context.Context, mh []byte) error {
	return g.d.Provide(ctx, cid.NewCidV1(cid.Raw, mh), true)
}

// findProviders counts the lookup's requests from its query events: go
// publishes a SendingQuery event before each GET_PROVIDERS request of
// the lookup and of its follow-up, as `ipfs routing findprovs -v` shows.
func (g *goNode) findProviders(ctx context.Context, mh []byte, count int) ([]string, int, error) {
	qctx, cancel := context.WithCancel(ctx)
	qctx, events := routing.RegisterForQueryEvents(qctx)
	sent := make(chan int, 1)
	go func() {
		n := 0
		for e := range events { // closed once qctx is cancelled
			if e.Type == routing.SendingQuery {
				n++
			}
		}
		sent <- n
	}()
	var ids []string
	for ai := range g.d.FindProvidersAsync(qctx, cid.NewCidV1(cid.Raw, mh), count) {
		ids = append(ids, ai.ID.String())
	}
	err := qctx.Err() // the lookup ended before we cancelled: only ctx can have ended it
	cancel()
	return ids, <-sent, err
}

func (g *goNode) close() error {
	return errors.Join(g.d.Close(), g.h.Close())
}
