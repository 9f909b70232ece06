// Command customtransport shows how to give a mote node a transport of
// one's own. The transport (unix.go) dials and listens on Unix-domain
// sockets, /unix/<path>, and leaves security and multiplexing to the
// node's Upgrader; given to the node in Config.Transports (before the
// built-in ones, which stay), it carries identify, ping and every other
// protocol like the built-in TCP transport does, and the node can listen
// on its addresses from the start.
//
// Two nodes are started, one listening on a socket in a temporary
// directory; the other connects to it over the socket, waits for identify
// and pings it three times.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire/multiaddr"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// newNode starts a node that speaks the Unix transport as well as the
// default ones, listening on listen.
func newNode(listen ...multiaddr.Multiaddr) (*node.Node, error) {
	unix := func(env node.TransportEnv) (transport.Transport, error) { return &Unix{up: env.Upgrader}, nil }
	n, err := node.New(node.Config{
		Transports:  []node.TransportMaker{unix, node.QUIC(), node.TCP()},
		ListenAddrs: listen,
	})
	if err != nil {
		return nil, fmt.Errorf("new node: %w", err)
	}
	return n, nil
}

func run(w io.Writer) error {
	dir, err := os.MkdirTemp("", "mote-unix-")
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	defer os.RemoveAll(dir)
	sock, err := multiaddr.FromNetAddr(&net.UnixAddr{Net: "unix", Name: filepath.Join(dir, "a.sock")})
	if err != nil {
		return fmt.Errorf("socket address: %w", err)
	}

	a, err := newNode(sock)
	if err != nil {
		return fmt.Errorf("node A: %w", err)
	}
	defer a.Close()
	fmt.Fprintf(w, "A %s listening on %s\n", a.ID(), a.Addrs()[0])

	b, err := newNode()
	if err != nil {
		return err
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A /unix path must end its multiaddr (go-multiaddr refuses
	// /unix/<path>/p2p/<id>), so the peer ID goes alongside the address.
	c, err := b.Connect(ctx, a.ID(), sock)
	if err != nil {
		return fmt.Errorf("node B: %w", err)
	}
	st := c.State()
	fmt.Fprintf(w, "B connected to A over %s (%s, %s)\n", st.Transport, st.Security, st.Muxer)
	if st.Transport != "unix" {
		return fmt.Errorf("connected over %q, want unix", st.Transport)
	}

	select {
	case <-c.Identified():
	case <-ctx.Done():
		return fmt.Errorf("identify: %w", ctx.Err())
	}
	if err := c.IdentifyErr(); err != nil {
		return err
	}
	agent, protos := b.Peerstore().Agent(a.ID()), b.Peerstore().Protocols(a.ID())
	fmt.Fprintf(w, "identify: A runs %s and serves %v\n", agent, protos)
	if !slices.Contains(protos, ping.ID) {
		return errors.New("identify: A does not announce ping")
	}

	for range 3 {
		rtt, err := b.Ping(ctx, a.ID())
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "ping A: %v\n", rtt)
	}
	return nil
}
