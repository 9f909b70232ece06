package main

import (
	"context"
	"sort"

	"github.com/mote-p2p/mote/bench/internal/benchproto"
)

// The stacks' names, as in flags, JSON and the table. quic-go is quic-go
// alone, without libp2p: the reference for mote's QUIC figures, measured
// over QUIC only.
const (
	stackMote   = "mote"
	stackLibp2p = "go-libp2p"
	stackQuicGo = "quic-go"
)

// listenAddrs are A's listen addresses per transport: one transport at a
// time, so that every dial to A goes over the transport being measured.
var listenAddrs = map[string]string{
	"tcp":  "/ip4/127.0.0.1/tcp/0",
	"quic": "/ip4/127.0.0.1/udp/0/quic-v1",
}

// stack is one networking stack under test. The implementations live in
// stack_mote.go, stack_libp2p.go and stack_quicgo.go; build tags
// (moteonly, libp2ponly, quicgoonly) leave the others out of the child
// processes' binaries, so a child links only its own stack.
type stack interface {
	// listen starts the listener A on transport tr ("tcp" or "quic"),
	// serving the echo, sink and hold protocols, with connection limits
	// lifted so that it can hold thousands of connections. preset, if not
	// empty, names a mote preset whose limits A keeps, but for the
	// connection counts (go-libp2p and quic-go have no presets and refuse one).
	listen(tr, preset string) (server, error)
	// newPeer creates a dialing node with a fresh identity, for transport tr.
	newPeer(tr string) (client, error)
}

// server is a listener A.
type server interface {
	id() string
	addr() string     // the one listen multiaddr
	conns() int       // open connections
	held() int64      // hold streams that have echoed and whose connection is identified
	accepted() uint64 // inbound connections established so far
	close()
}

// client is one dialing node of B.
type client interface {
	// connect dials A over the client's transport; with identified, it
	// also waits for identify. go-libp2p's Connect always waits for
	// identify; mote's does not, and its first stream then proposes its
	// protocol without knowing the peer's list.
	connect(ctx context.Context, id, addr string, identified bool) error
	// open opens a stream for proto on the connection to A.
	open(ctx context.Context, proto string) (stream, error)
	// disconnect closes the connection to A.
	disconnect() error
	close() error
}

// stream is what the stacks' streams have in common.
type stream = benchproto.Stream

// stacks holds the stacks compiled into this binary, by name.
var stacks = map[string]stack{}

func register(name string, s stack) { stacks[name] = s }

func stackNames() []string {
	var names []string
	for n := range stacks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ---------------------------------------------------------------------------
// Handlers of A, shared by both stacks.
