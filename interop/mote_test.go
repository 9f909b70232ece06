package interop

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// startMote starts a mote node listening on loopback TCP and QUIC.
func startMote(t *testing.T, mod ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.Config{ListenAddrs: []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/0"),
		ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"),
	}}
	for _, f := range mod {
		f(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// moteAddr returns mote's listen address of the given transport
// ("tcp" or "quic-v1") with /p2p/<id>.
func moteAddr(t *testing.T, n *node.Node, tr string) string {
	t.Helper()
	for _, a := range n.Addrs() {
		if (tr == "quic-v1") == strings.HasSuffix(a.String(), "/quic-v1") {
			return a.String() + "/p2p/" + n.ID().String()
		}
	}
	t.Fatalf("mote has no %s address in %v", tr, n.Addrs())
	return ""
}

// interopCase is one way of connecting mote and Kubo.
type interopCase struct {
	name      string
	transport string // "tcp" or "quic-v1"
	kuboSec   string // KuboOptions.Security
	// security expected on the connection when mote dials and when Kubo
	// dials (Kubo proposes TLS first, mote Noise first).
	moteDialsSec, kuboDialsSec string
	// classic runs mote with ClassicKeyExchange (X25519 alone in TLS),
	// against Kubo's default, which offers X25519MLKEM768 first.
	classic bool
}

var interopCases = []interopCase{
	{"tcp", "tcp", "", "/noise", "/tls/1.0.0", false},
	{"tcp-noise-only", "tcp", "noise", "/noise", "/noise", false},
	{"tcp-tls-only", "tcp", "tls", "/tls/1.0.0", "/tls/1.0.0", false},
	{"quic", "quic-v1", "", "/tls/1.0.0", "/tls/1.0.0", false},
	{"tcp-tls-only-classic", "tcp", "tls", "/tls/1.0.0", "/tls/1.0.0", true},
	{"quic-classic", "quic-v1", "", "/tls/1.0.0", "/tls/1.0.0", true},
}

// moteFor returns the config change a case needs.
func (tc interopCase) moteFor(c *node.Config) { c.ClassicKeyExchange = tc.classic }

// checkState checks how a connection to Kubo was set up.
func checkState(t *testing.T, st transport.ConnState, tc interopCase, outbound bool, sec string) {
	t.Helper()
	if st.Transport != tc.transport || st.Security != sec || st.Outbound != outbound {
		t.Errorf("connection state = %+v, want transport %s, security %s, outbound %v", st, tc.transport, sec, outbound)
	}
	if tc.transport == "tcp" {
		if st.Muxer != "/yamux/1.0.0" || !st.EarlyMuxer {
			t.Errorf("connection state = %+v, want yamux agreed inside the handshake (early muxer negotiation)", st)
		}
	}
}

// splitAddr parses a Kubo address ending in /p2p/<id>.
func splitAddr(t *testing.T, s string) (peer.ID, ma.Multiaddr) {
	t.Helper()
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	addr, id, err := transport.SplitP2P(m)
	if err != nil || id == "" {
		t.Fatalf("address %s: %v", s, err)
	}
	return id, addr
}

// waitIdentified waits for identify on c and fails the test if it failed.
func waitIdentified(t *testing.T, ctx context.Context, c *node.Conn) {
	t.Helper()
	select {
	case <-c.Identified():
	case <-ctx.Done():
		t.Fatalf("identify of %s: %v", c.RemotePeer(), ctx.Err())
	}
	if err := c.IdentifyErr(); err != nil {
		t.Fatalf("identify of %s: %v", c.RemotePeer(), err)
	}
}

// checkKuboInPeerstore checks what mote learned about Kubo by identify.
func checkKuboInPeerstore(t *testing.T, n *node.Node, id peer.ID) {
	t.Helper()
	ps := n.Peerstore()
	if agent := ps.Agent(id); !strings.HasPrefix(agent, "kubo/0.43.0") {
		t.Errorf("agent of kubo in mote's peerstore = %q, want kubo/0.43.0…", agent)
	}
	if m := missingProtocols(ps.Protocols(id), identify.ID, identify.PushID, ping.ID); len(m) > 0 {
		t.Errorf("kubo protocols in mote's peerstore lack %v (have %v)", m, ps.Protocols(id))
	}
	if len(ps.Addrs(id)) == 0 {
		t.Errorf("no addresses of kubo in mote's peerstore")
	}
	if ps.PublicKey(id) == nil {
		t.Errorf("no public key of kubo in mote's peerstore")
	}
}

// checkMoteInKubo checks what Kubo learned about mote by identify.
func checkMoteInKubo(t *testing.T, ctx context.Context, k *Kubo, n *node.Node) {
	t.Helper()
	info, err := k.IDOf(ctx, n.ID().String())
	if err != nil {
		t.Fatalf("ipfs id %s: %v", n.ID(), err)
	}
	if info.ID != n.ID().String() {
		t.Errorf("ipfs id: ID = %s, want %s", info.ID, n.ID())
	}
	if want := "mote/" + node.Version; info.AgentVersion != want {
		t.Errorf("ipfs id: AgentVersion = %q, want %q", info.AgentVersion, want)
	}
	if m := missingProtocols(info.Protocols, n.Protocols()...); len(m) > 0 {
		t.Errorf("ipfs id: protocols lack %v (have %v)", m, info.Protocols)
	}
	want := n.Addrs()[0].String()
	if !slices.ContainsFunc(info.Addresses, func(a string) bool { return strings.HasPrefix(a, want) }) {
		t.Errorf("ipfs id: addresses %v lack mote's listen address %s", info.Addresses, want)
	}
}

func TestMoteDialsKubo(t *testing.T) {
	for _, tc := range interopCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			k := startKuboT(t, ctx, KuboOptions{Security: tc.kuboSec})
			n := startMote(t, tc.moteFor)

			kaddr := k.TCPAddr()
			if tc.transport == "quic-v1" {
				kaddr = k.QUICAddr()
			}
			id, addr := splitAddr(t, kaddr)
			c, err := n.Connect(ctx, id, addr)
			if err != nil {
				t.Fatalf("mote connect to kubo at %s: %v", addr, err)
			}
			checkState(t, c.State(), tc, true, tc.moteDialsSec)
			waitIdentified(t, ctx, c)
			checkKuboInPeerstore(t, n, id)

			for i := 0; i < 3; i++ {
				rtt, err := n.Ping(ctx, id)
				if err != nil {
					t.Fatalf("mote ping kubo: %v", err)
				}
				if rtt <= 0 {
					t.Errorf("ping rtt = %v", rtt)
				}
			}
			if n.Peerstore().Latency(id) <= 0 {
				t.Errorf("no latency recorded for kubo")
			}

			// Kubo identified us over the connection we opened.
			checkMoteInKubo(t, ctx, k, n)
			rtts, err := k.Ping(ctx, n.ID().String(), 2)
			if err != nil {
				t.Fatalf("kubo ping mote over mote's connection: %v", err)
			}
			if len(rtts) != 2 {
				t.Errorf("kubo ping: %d answers, want 2", len(rtts))
			}
			if got := len(n.Conns(id)); got != 1 {
				t.Errorf("mote has %d connections to kubo, want 1", got)
			}
		})
	}
}

func TestKuboDialsMote(t *testing.T) {
	for _, tc := range interopCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			k := startKuboT(t, ctx, KuboOptions{Security: tc.kuboSec})
			n := startMote(t, tc.moteFor)
			sub := n.Subscribe(16)
			defer sub.Close()

			addr := moteAddr(t, n, tc.transport)
			if err := k.SwarmConnect(ctx, addr); err != nil {
				t.Fatalf("ipfs swarm connect %s: %v", addr, err)
			}
			peers, err := k.SwarmPeers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !hasPeer(peers, n.ID().String()) {
				t.Fatalf("ipfs swarm peers = %v, lacks mote %s", peers, n.ID())
			}
			checkMoteInKubo(t, ctx, k, n)

			kid, err := peer.Decode(k.ID())
			if err != nil {
				t.Fatal(err)
			}
			var c *node.Conn
			for c == nil {
				select {
				case e := <-sub.C:
					if e.Kind == node.EventConnected && e.Peer == kid {
						c = e.Conn
					}
				case <-ctx.Done():
					t.Fatal("no connected event for kubo's inbound connection")
				}
			}
			checkState(t, c.State(), tc, false, tc.kuboDialsSec)
			waitIdentified(t, ctx, c)
			checkKuboInPeerstore(t, n, kid)

			rtts, err := k.Ping(ctx, n.ID().String(), 3)
			if err != nil {
				t.Fatalf("ipfs ping mote: %v", err)
			}
			if len(rtts) != 3 {
				t.Errorf("ipfs ping: %d answers, want 3", len(rtts))
			}
			if _, err := n.Ping(ctx, kid); err != nil {
				t.Fatalf("mote ping kubo over kubo's connection: %v", err)
			}
			if got := len(n.Conns(kid)); got != 1 {
				t.Errorf("mote has %d connections to kubo, want 1 (reused)", got)
			}
		})
	}
}

// TestSecurityMismatch: a Kubo that offers only TLS and a mote that offers
// only Noise cannot connect, and both say why.
func TestSecurityMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	k := startKuboT(t, ctx, KuboOptions{Security: "tls"})
	n := startMote(t, func(c *node.Config) { c.Security = []string{"/noise"} })
	id, addr := splitAddr(t, k.TCPAddr())
	_, err := n.Connect(ctx, id, addr)
	if err == nil {
		t.Fatal("noise-only mote connected to a TLS-only kubo")
	}
	if !errors.Is(err, wire.ErrNotSupported) || !strings.Contains(err.Error(), "/noise") {
		t.Errorf("error = %v, want a negotiation error naming /noise", err)
	}
	err = k.SwarmConnect(ctx, moteAddr(t, n, "tcp"))
	if err == nil {
		t.Fatal("TLS-only kubo connected to a noise-only mote")
	}
	if !strings.Contains(err.Error(), "protocols not supported") {
		t.Errorf("kubo's error = %v, want a negotiation failure", err)
	}
}

// TestIdentifyPushToKubo: when mote's protocols change, Kubo learns the
// new set by identify push, without a new connection. (The other
// direction needs Kubo's own protocols or addresses to change at run
// time, which its CLI cannot do on loopback: `ipfs p2p listen` serves
// every /x/ protocol through one prefix handler registered at start.)
func TestIdentifyPushToKubo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	k := startKuboT(t, ctx, KuboOptions{})
	n := startMote(t)
	id, addr := splitAddr(t, k.TCPAddr())
	c, err := n.Connect(ctx, id, addr)
	if err != nil {
		t.Fatal(err)
	}
	waitIdentified(t, ctx, c)
	// Kubo identifies us in the background; wait until it has, so that
	// what it shows afterwards can only come from a push.
	pollUntil(t, ctx, "kubo identified mote", func() bool {
		info, err := k.IDOf(ctx, n.ID().String())
		return err == nil && info.AgentVersion != ""
	})
	const proto = "/mote/push-test/1.0.0"
	n.SetHandler(proto, func(s *node.Stream) { s.Close() })
	pollUntil(t, ctx, "kubo learns mote's new protocol by push", func() bool {
		info, err := k.IDOf(ctx, n.ID().String())
		return err == nil && slices.Contains(info.Protocols, proto)
	})
	n.RemoveHandler(proto)
	pollUntil(t, ctx, "kubo learns mote dropped the protocol", func() bool {
		info, err := k.IDOf(ctx, n.ID().String())
		return err == nil && !slices.Contains(info.Protocols, proto) && slices.Contains(info.Protocols, ping.ID)
	})
	if got := len(n.Conns(id)); got != 1 {
		t.Errorf("%d connections to kubo, want the one we opened", got)
	}
}

// pollUntil retries cond until it holds; for state that another process
// changes, where there is no event to wait on.
func pollUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
}
