package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// TestSimulatedNAT: nodes on the simulated network, one behind a
// port-restricted cone NAT, over 20 ms links, in fake time. The NATed
// node's dial costs exact round trips; the public node sees it at its
// NAT mapping, which identify reports back as observed; a stranger
// cannot dial the NATed node's private address.
func TestSimulatedNAT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := transport.NewMemNetworkWith(transport.MemConfig{Link: transport.Link{Latency: 20 * time.Millisecond}})
		nat := mn.NewNAT(transport.PortRestrictedConeNAT()) // its box is public: 20 ms links too
		on := func(h *transport.MemHost, listen bool) *Node {
			return newNode(t, nil, false, func(c *Config) {
				c.Transports = []TransportMaker{Memory(h.Network())}
				if listen {
					c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/memory/0")}
				}
			})
		}
		pub := on(mn.NewHost(), true)
		priv := on(nat.NewHost(), true)
		stranger := on(mn.NewHost(), false)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		c, err := priv.Connect(ctx, pub.ID(), pub.ListenAddrs()...)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 80*time.Millisecond {
			t.Errorf("dial, Noise and yamux over a 20 ms link took %v of fake time, want 80 ms", took)
		}
		<-c.Identified()
		if err := c.IdentifyErr(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		pc := pub.Conns(priv.ID())
		if len(pc) != 1 {
			t.Fatalf("the public node has %d connections to the NATed one", len(pc))
		}
		mapped := pc[0].RemoteMultiaddr()
		if mapped.Equal(priv.ListenAddrs()[0]) || mn.HostOf(mapped) != nat.Host() {
			t.Errorf("the public node sees the NATed one at %s, want a mapping of its NAT", mapped)
		}

		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		if _, err := stranger.Connect(sctx, priv.ID(), priv.ListenAddrs()...); err == nil {
			t.Error("a stranger reached a node behind a NAT at its private address")
		}
		if _, err := stranger.Connect(ctx, priv.ID(), mapped); err == nil {
			t.Error("a stranger got through a port-restricted NAT's mapping without a hole")
		}
	})
}
