// Command dht shows the Kademlia DHT from the library: a node joins a
// DHT through a bootstrap peer, provides a piece of content, finds its
// providers, publishes its IPNS name and resolves it.
//
//	go run ./examples/dht                          # a private DHT of 8 nodes on loopback
//	go run ./examples/dht MULTIADDR/p2p/ID         # join the DHT that peer is in
//
// With no argument it starts seven DHT servers on 127.0.0.1 to join, so
// that it runs anywhere without reaching the internet; the DHT they form
// is the LAN one (/ipfs/lan/kad/1.0.0), which takes loopback peers, as
// Kubo's does. Given a peer (a Kubo, `mote daemon`), it joins that
// peer's DHTs, the public one too if the node has a public address.
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/cid"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dht:", err)
		os.Exit(1)
	}
}

// start is a node listening on loopback TCP with a dual DHT in mode.
func start(mode kademlia.Mode) (*node.Node, *kademlia.Dual, error) {
	n, err := node.New(node.Config{ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
	if err != nil {
		return nil, nil, err
	}
	d, err := kademlia.NewDual(n, kademlia.Config{Mode: mode})
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	return n, d, nil
}

func run(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var boot []peer.AddrInfo
	if len(args) > 0 {
		for _, a := range args {
			m, err := ma.NewMultiaddr(a)
			if err != nil {
				return err
			}
			ai, err := peer.AddrInfoFromP2pAddr(m)
			if err != nil {
				return err
			}
			boot = append(boot, ai)
		}
	} else {
		// A private DHT to join: seven servers, each bootstrapped from
		// the first.
		var first peer.AddrInfo
		for i := range 7 {
			n, d, err := start(kademlia.ModeServer)
			if err != nil {
				return err
			}
			defer n.Close()
			defer d.Close()
			if i == 0 {
				first = n.AddrInfo()
				continue
			}
			if err := d.Bootstrap(ctx, first); err != nil {
				return err
			}
		}
		boot = []peer.AddrInfo{first}
	}

	n, d, err := start(kademlia.ModeAuto)
	if err != nil {
		return err
	}
	defer n.Close()
	defer d.Close()
	if err := d.Bootstrap(ctx, boot...); err != nil {
		return err
	}
	fmt.Println("joined as", n.ID(), "- LAN table:", d.LAN.RoutingTable().Len(), "peers, WAN table:", d.WAN.RoutingTable().Len())

	// Providers are keyed by the content's multihash, not its CID.
	sum := sha256.Sum256([]byte("hello from the mote dht example\n"))
	c := cid.NewV1(cid.Raw, cid.Sum256(sum))
	if err := d.Provide(ctx, c.Multihash); err != nil {
		return fmt.Errorf("provide %s: %w", c, err)
	}
	fmt.Println("provided", c)
	for p := range d.FindProvidersAsync(ctx, c.Multihash, 1) {
		fmt.Println("found provider", p.ID, p.Addrs)
	}

	// An IPNS name: our key's, pointing at the content.
	rec, err := ipns.Create(n.Key(), []byte("/ipfs/"+c.String()), 0, time.Now().Add(ipns.DefaultLifetime), ipns.DefaultTTL)
	if err != nil {
		return err
	}
	key := string(ipns.Key(n.ID()))
	if err := d.PutValue(ctx, key, rec); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	got, err := d.GetValue(ctx, key)
	if err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	r, err := ipns.Validate(n.ID(), got, time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("/ipns/%s -> %s (sequence %d)\n", ipns.Name(n.ID()), r.Value, r.Sequence)
	return nil
}
