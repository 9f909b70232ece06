package main

import (
	"context"
	"fmt"
	"strings"
)

// The stacks' names, as in the -serve flag, the JSON and the table.
const (
	stackMote = "mote"
	stackGo   = "go"
)

// listenAddr is where every node of the network listens: loopback TCP, a
// port of its own.
const listenAddr = "/ip4/127.0.0.1/tcp/0"

// addrInfo is a peer's ID and addresses as text, which both stacks parse
// and which crosses process boundaries unchanged.
type addrInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// bootstrapArg is ai as one -bootstrap entry: its first address with
// /p2p/ID appended.
func (ai addrInfo) bootstrapArg() string {
	if len(ai.Addrs) == 0 {
		return "/p2p/" + ai.ID
	}
	return ai.Addrs[0] + "/p2p/" + ai.ID
}

// parseBootstrap parses a comma-separated list of multiaddrs ending in
// /p2p/ID. It splits on the text alone, so that it needs neither stack's
// multiaddr package.
func parseBootstrap(s string) ([]addrInfo, error) {
	var out []addrInfo
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		i := strings.LastIndex(f, "/p2p/")
		if i < 0 || i+len("/p2p/") == len(f) {
			return nil, fmt.Errorf("bootstrap address %q: no /p2p/ID at the end", f)
		}
		ai := addrInfo{ID: f[i+len("/p2p/"):]}
		if i > 0 {
			ai.Addrs = []string{f[:i]}
		}
		out = append(out, ai)
	}
	return out, nil
}

// stack is one DHT implementation. The implementations live in
// stack_mote.go and stack_golibp2p.go; the build tags kadsidemote and
// kadsidego leave the other out, so that a measured server's process
// links and initialises only its own stack.
type stack interface {
	// start starts a node listening on listenAddr with a DHT in server
	// mode, or in client mode if server is false.
	start(server bool) (dhtNode, error)
}

// dhtNode is one node and its DHT.
type dhtNode interface {
	info() addrInfo
	// bootstrap connects to seeds and looks up the node's own ID.
	bootstrap(ctx context.Context, seeds []addrInfo) error
	// refresh refreshes the routing table: a lookup of the node's own ID
	// and one of a random key in every bucket.
	refresh(ctx context.Context) error
	tableSize() int
	// provide announces the node as a provider of mh, a multihash.
	provide(ctx context.Context, mh []byte) error
	// findProviders looks up the providers of mh, up to count, and
	// returns their IDs and the GET_PROVIDERS requests the lookup sent.
	// Finding none is not an error.
	findProviders(ctx context.Context, mh []byte, count int) (ids []string, requests int, err error)
	close() error
}

// stacks holds the stacks compiled into this binary, by name.
var stacks = map[string]stack{}

func register(name string, s stack) { stacks[name] = s }
