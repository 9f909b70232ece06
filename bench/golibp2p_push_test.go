package bench

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	mma "github.com/mote-p2p/mote/wire/multiaddr"
)

// TestIdentifyPushFromGoLibp2p proves the direction the Kubo interop
// suite cannot drive (Kubo's protocols do not change at run time on
// loopback): a go-libp2p host — the library inside Kubo — that adds a
// stream handler pushes its new protocol set, and mote applies it.
func TestIdentifyPushFromGoLibp2p(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := node.New(node.Config{ListenAddrs: []mma.Multiaddr{mma.StringCast("/ip4/127.0.0.1/tcp/0")}, DisableQUIC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	mid, err := lpeer.Decode(m.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	var addrs []ma.Multiaddr
	for _, a := range m.Addrs() {
		addrs = append(addrs, ma.StringCast(a.String()))
	}
	if err := h.Connect(ctx, lpeer.AddrInfo{ID: mid, Addrs: addrs}); err != nil {
		t.Fatalf("go-libp2p connect to mote: %v", err)
	}
	hid, err := peer.Decode(h.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	waitCond(t, ctx, "mote identified go-libp2p", func() bool { return m.Peerstore().Agent(hid) != "" })

	const proto = "/golibp2p/push-test/1.0.0"
	h.SetStreamHandler(proto, func(s network.Stream) { s.Close() })
	waitCond(t, ctx, "mote learns the new protocol by push", func() bool {
		return m.Peerstore().SupportsProtocol(hid, proto)
	})
	h.RemoveStreamHandler(proto)
	waitCond(t, ctx, "mote learns the protocol is gone", func() bool {
		return !m.Peerstore().SupportsProtocol(hid, proto) && m.Peerstore().SupportsProtocol(hid, "/ipfs/ping/1.0.0")
	})
}

// waitCond polls cond: the push arrives on another goroutine with no
// event to wait on.
func waitCond(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
}
