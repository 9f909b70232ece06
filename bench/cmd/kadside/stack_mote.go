//go:build !kadsidego

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func init() { register(stackMote, moteStack{}) }

// moteStack runs mote nodes with their defaults but for QUIC, which is
// left out (TCP only, as go-libp2p's nodes here), and a kademlia DHT on
// the public protocol ID.
type moteStack struct{}

func (moteStack) start(server bool) (dhtNode, error) {
	n, err := node.New(node.Config{
		ListenAddrs: []ma.Multiaddr{ma.StringCast(listenAddr)},
		DisableQUIC: true,
	})
	if err != nil {
		return nil, fmt.Errorf("mote node: %w", err)
	}
	mode := kademlia.ModeClient
	if server {
		mode = kademlia.ModeServer
	}
	d, err := kademlia.New(n, kademlia.Config{
		Protocol: kademlia.ID,
		Mode:     mode,
		// AddrFilter nil: every address, loopback included. The IP
		// diversity filter is off, as go-libp2p-kad-dht's is unless one
		// is configured: every node here is on 127.0.0.1.
		Table: kademlia.TableConfig{MaxPerGroupPerBucket: -1, MaxPerGroup: -1},
	})
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("mote DHT: %w", err)
	}
	return &moteNode{n: n, d: d}, nil
}

type moteNode struct {
	n *node.Node
	d *kademlia.DHT
}

func (m *moteNode) info() addrInfo {
	ai := addrInfo{ID: m.n.ID().String()}
	for _, a := range m.n.Addrs() {
		ai.Addrs = append(ai.Addrs, a.String())
	}
	return ai
}

func (m *moteNode) bootstrap(ctx context.Context, seeds []addrInfo) error {
	var ais []peer.AddrInfo
	for _, s := range seeds {
		id, err := peer.Decode(s.ID)
		if err != nil {
			return fmt.Errorf("seed %s: %w", s.ID, err)
		}
		if id == m.n.ID() {
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
		ais = append(ais, ai)
	}
	return m.d.Bootstrap(ctx, ais...)
}

func (m *moteNode) refresh(ctx context.Context) error {
	m.d.Refresh(ctx)
	return ctx.Err()
}

func (m *moteNode) tableSize() int { return m.d.RoutingTable().Len() }

func (m *moteNode) provide(ctx context.Context, mh []byte) error {
	return m.d.Provide(ctx, mh)
}

func (m *moteNode) findProviders(ctx context.Context, mh []byte, count int) ([]string, int, error) {
	ais, st, err := m.d.FindProviders(ctx, mh, count)
	if errors.Is(err, kademlia.ErrNotFound) {
		err = nil
	}
	ids := make([]string, len(ais))
	for i, ai := range ais {
		ids[i] = ai.ID.String()
	}
	return ids, st.Requests, err
}

func (m *moteNode) close() error {
	return errors.Join(m.d.Close(), m.n.Close())
}
