package node_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/wire/multiaddr"
)

// loopback is where the examples listen: TCP on a free port.
func loopback() []multiaddr.Multiaddr {
	a, err := multiaddr.NewMultiaddr("/ip4/127.0.0.1/tcp/0")
	if err != nil {
		log.Fatal(err)
	}
	return []multiaddr.Multiaddr{a}
}

// A node with the default configuration: a new Ed25519 identity, TCP
// (Noise or TLS, yamux) and QUIC, identify and ping. Its addresses end
// up in Addrs once it listens; AddrInfo gives them with /p2p/<id> to
// share.
func ExampleNew() {
	n, err := node.New(node.Config{ListenAddrs: loopback()})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	ps, err := n.AddrInfo().P2pAddrs()
	if err != nil {
		log.Fatal(err)
	}
	addr := ps[0].String()
	fmt.Println(strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/"), strings.HasSuffix(addr, "/p2p/"+n.ID().String()))
	// Output: true true
}

// Serving a protocol on one node and using it from another: SetHandler
// registers the handler (identify announces it), Connect dials, and
// NewStream negotiates the protocol on the connection.
func ExampleNode_SetHandler() {
	const echo = "/example/echo/1.0.0"
	server, err := node.New(node.Config{ListenAddrs: loopback()})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetHandler(echo, func(s *node.Stream) {
		defer s.Close()
		io.Copy(s, s) // until the client closes its side
	})

	client, err := node.New(node.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Connect(ctx, server.ID(), server.Addrs()...); err != nil {
		log.Fatal(err)
	}
	s, err := client.NewStream(ctx, server.ID(), echo)
	if err != nil {
		log.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write([]byte("hello")); err != nil {
		log.Fatal(err)
	}
	s.CloseWrite() // the handler's io.Copy ends at our FIN
	got, err := io.ReadAll(s)
	if err != nil {
		log.Fatal(err)
	}
	s.Close()
	fmt.Printf("%s echoed %q\n", s.Protocol(), got)
	// Output: /example/echo/1.0.0 echoed "hello"
}

// Ping measures the round trip to a peer over the ping protocol, which
// every node serves.
func ExampleNode_Ping() {
	a, err := node.New(node.Config{ListenAddrs: loopback()})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := node.New(node.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Connect(ctx, a.ID(), a.Addrs()...); err != nil {
		log.Fatal(err)
	}
	rtt, err := b.Ping(ctx, a.ID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rtt > 0)
	// Output: true
}
