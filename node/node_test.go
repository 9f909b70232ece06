package node

import (
	"context"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/mote-p2p/mote/transport"
)

func memNode(t *testing.T, mn *transport.MemNetwork, listen bool) *Node {
	t.Helper()
	cfg := Config{MemNetwork: mn}
	if listen {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/memory/0")}
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestSmokeMem(t *testing.T) {
	mn := transport.NewMemNetwork()
	a := memNode(t, mn, true)
	b := memNode(t, mn, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := b.Connect(ctx, a.ID(), a.Addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	<-c.Identified()
	if err := c.IdentifyErr(); err != nil {
		t.Fatal(err)
	}
	rtt, err := b.Ping(ctx, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rtt, b.Peerstore().Agent(a.ID()), b.Peerstore().Protocols(a.ID()), c.State())
}
