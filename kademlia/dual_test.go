package kademlia

import (
	"context"
	"testing"
	"time"

	"github.com/mote-p2p/mote/node"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// TestDualOnLoopback: on loopback the LAN DHT takes the peer and the
// public one does not, whatever path the peer came by (bootstrap,
// identify); each DHT answers only its own protocol.
func TestDualOnLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ds []*Dual
	var ns []*node.Node
	for range 2 {
		n, err := node.New(node.Config{ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}, DisableQUIC: true})
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDual(n, Config{Mode: ModeServer, RefreshInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close(); n.Close() })
		ds, ns = append(ds, d), append(ns, n)
	}
	if err := ds[1].Bootstrap(ctx, ns[0].AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if !ds[1].LAN.RoutingTable().Contains(ns[0].ID()) {
		t.Error("the LAN DHT did not take a loopback peer")
	}
	if n := ds[1].WAN.RoutingTable().Len(); n != 0 {
		t.Errorf("the public DHT took %d loopback peers", n)
	}
	// The peer's own admission of us comes by identify; its LAN table
	// gets us, its WAN table must not.
	deadline := time.Now().Add(10 * time.Second)
	for !ds[0].LAN.RoutingTable().Contains(ns[1].ID()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // real sockets: poll
	}
	if !ds[0].LAN.RoutingTable().Contains(ns[1].ID()) {
		t.Error("the first node's LAN DHT never took the second")
	}
	if n := ds[0].WAN.RoutingTable().Len(); n != 0 {
		t.Errorf("the first node's public DHT took %d loopback peers", n)
	}
	// The public DHT gives no loopback address away.
	if e := ds[0].WAN.entryOf(ns[0].ID()); len(e.Addrs) != 0 {
		t.Errorf("the public DHT advertises our loopback addresses: %d", len(e.Addrs))
	}
}
