package node

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mote-p2p/mote/internal/testconn"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// relayed is a stand-in for a relay transport: /memory/<n>/p2p-circuit
// addresses reach the memory listener <n>, and every connection it makes
// or accepts is limited, on both ends.
type relayed struct{ mem transport.Transport }

func relayedTransport(mn *transport.MemNetwork) TransportMaker {
	return func(env TransportEnv) (transport.Transport, error) {
		return &relayed{mem: transport.NewMem(mn, env.Upgrader)}, nil
	}
}

var limit = transport.ConnLimit{Duration: 2 * time.Minute, Data: 128 << 10}

func isCircuit(a ma.Multiaddr) bool {
	a = transport.StripP2P(a)
	return len(a) == 2 && a[0].Protocol().Code == ma.P_MEMORY && a[1].Protocol().Code == ma.P_CIRCUIT
}

func (r *relayed) CanDial(a ma.Multiaddr) bool                { return isCircuit(a) }
func (r *relayed) DialClass(ma.Multiaddr) transport.DialClass { return transport.DialRelay }

func (r *relayed) Dial(ctx context.Context, a ma.Multiaddr, id peer.ID) (transport.Conn, error) {
	c, err := r.mem.Dial(ctx, transport.StripP2P(a)[:1], id)
	if err != nil {
		return nil, err
	}
	return limitedConn{c}, nil
}

func (r *relayed) Listen(a ma.Multiaddr) (transport.Listener, error) {
	l, err := r.mem.Listen(a[:1])
	if err != nil {
		return nil, err
	}
	return limitedListener{l}, nil
}

type limitedListener struct{ transport.Listener }

func (l limitedListener) Accept() (transport.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return limitedConn{c}, nil
}

func (l limitedListener) Multiaddr() ma.Multiaddr {
	return append(l.Listener.Multiaddr(), ma.StringCast("/p2p-circuit")...)
}

type limitedConn struct{ transport.Conn }

func (c limitedConn) State() transport.ConnState {
	st := c.Conn.State()
	st.Limit = &limit
	return st
}

// relayPair starts a that listens on a direct and a relayed address,
// serving echo on direct connections only and "/lim" on both, and b,
// which can dial both kinds.
func relayPair(t *testing.T, mod ...func(*Config)) (a, b *Node, direct, circuit ma.Multiaddr) {
	t.Helper()
	mn := transport.NewMemNetwork()
	both := func(c *Config) { c.Transports = []TransportMaker{relayedTransport(mn), Memory(mn)} }
	a = newNode(t, mn, false, both)
	if err := a.Listen(ma.StringCast("/memory/0"), ma.StringCast("/memory/0/p2p-circuit")); err != nil {
		t.Fatal(err)
	}
	a.SetHandler(echoProto, echoHandler)
	a.SetLimitedHandler("/lim", echoHandler)
	for _, l := range a.ListenAddrs() {
		if isCircuit(l) {
			circuit = l
		} else {
			direct = l
		}
	}
	b = newNode(t, mn, false, append([]func(*Config){both}, mod...)...)
	return a, b, direct, circuit
}

// TestLimitedConn: over a limited connection identify and ping run, a
// stream opens only when the caller allows it and only for protocols
// served on limited connections; the other side sees it limited too.
func TestLimitedConn(t *testing.T) {
	ctx := testCtx(t)
	a, b, _, circuit := relayPair(t)
	c, err := b.Connect(ctx, a.ID(), circuit)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Limited() || *c.State().Limit != limit {
		t.Fatalf("connection over the relay: limited %v, %+v", c.Limited(), c.State().Limit)
	}
	<-c.Identified()
	if err := c.IdentifyErr(); err != nil {
		t.Fatalf("identify over a limited connection: %v", err)
	}
	if _, err := b.Ping(ctx, a.ID()); err != nil {
		t.Fatalf("ping over a limited connection: %v", err)
	}
	if _, err := b.NewStream(ctx, a.ID(), "/lim"); !errors.Is(err, ErrLimitedConn) {
		t.Fatalf("stream on a limited connection without leave: %v, want ErrLimitedConn", err)
	}
	b.Peerstore().SetProtocols(a.ID(), nil) // negotiate, so that a refusal shows at once
	if _, err := b.NewStream(AllowLimited(ctx), a.ID(), echoProto); !errors.Is(err, wire.ErrNotSupported) {
		t.Fatalf("a protocol a serves only on direct connections: %v, want a refusal", err)
	}
	s, err := b.NewStream(AllowLimited(ctx), a.ID(), "/lim")
	if err != nil {
		t.Fatal(err)
	}
	if err := echoOnce(ctx, b, c, nil); !errors.Is(err, ErrLimitedConn) {
		t.Fatalf("echoOnce without leave: %v", err)
	}
	s.Write([]byte("hi"))
	s.CloseWrite()
	if got, err := io.ReadAll(s); err != nil || string(got) != "hi" {
		t.Fatalf("echo over the limited connection: %q, %v", got, err)
	}
	waitFor(t, func() bool { return len(a.Conns(b.ID())) == 1 })
	if !a.Conns(b.ID())[0].Limited() {
		t.Error("the relayed connection is not limited on the listener's side")
	}
}

// TestForceDirect: Connect is content with a limited connection unless
// told to dial directly; then streams go on the direct one, and the
// connection manager trims the relayed duplicate first.
func TestForceDirect(t *testing.T) {
	ctx := testCtx(t)
	a, b, direct, circuit := relayPair(t, func(c *Config) {
		c.Limits.ConnHighWater, c.Limits.ConnLowWater = 1, 1
		c.Limits.ConnGracePeriod = time.Hour
	})
	lc, err := b.Connect(ctx, a.ID(), circuit)
	if err != nil {
		t.Fatal(err)
	}
	b.Peerstore().AddAddrs(a.ID(), []ma.Multiaddr{direct}, peer.TempAddrTTL)
	if c, err := b.Connect(ctx, a.ID()); err != nil || c != lc {
		t.Fatalf("Connect with a limited connection open: %v, %v; want the limited one", c, err)
	}
	dc, err := b.Connect(ForceDirect(ctx), a.ID())
	if err != nil {
		t.Fatal(err)
	}
	if dc == lc || dc.Limited() {
		t.Fatal("ForceDirect returned the limited connection")
	}
	s, err := b.NewStream(ctx, a.ID(), echoProto)
	if err != nil {
		t.Fatal(err)
	}
	if s.Conn() != dc {
		t.Error("a new stream went on the limited connection while a direct one is open")
	}
	s.Reset()
	b.Protect(a.ID(), "test") // protection does not keep a relayed duplicate
	b.trim(time.Now())
	waitFor(t, func() bool { return len(b.Conns(a.ID())) == 1 })
	if got := b.Conns(a.ID())[0]; got != dc {
		t.Error("the connection manager trimmed the direct connection, not the relayed duplicate")
	}
}

// TestUpgradeConn: two nodes hand over the ends of one TCP connection
// (as after a simultaneous open), in opposite roles, and both get a
// working connection; a handover whose handshake fails leaves nothing.
func TestUpgradeConn(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, nil, false)
	b := newNode(t, nil, false)
	for _, tc := range []struct {
		name   string
		expect peer.ID // whom b expects
		ok     bool
	}{
		{"roles agreed", a.ID(), true},
		{"wrong peer", b.ID(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := testconn.TCPPair(t)
			errc := make(chan error, 1)
			go func() {
				_, err := a.UpgradeConn(ctx, ra, b.ID(), true)
				errc <- err
			}()
			cb, err := b.UpgradeConn(ctx, rb, tc.expect, false)
			aerr := <-errc
			if !tc.ok {
				if err == nil {
					t.Fatal("b accepted a connection from the wrong peer")
				}
				if _, werr := rb.Write([]byte{0}); !errors.Is(werr, net.ErrClosed) {
					t.Errorf("the raw connection is still open: %v", werr)
				}
				waitFor(t, func() bool { return len(a.Conns(b.ID())) == 0 && len(b.Conns("")) == 0 })
				return
			}
			if err != nil || aerr != nil {
				t.Fatalf("upgrade: b %v, a %v", err, aerr)
			}
			if cb.State().Outbound || cb.RemotePeer() != a.ID() {
				t.Fatalf("b's connection: %+v to %s", cb.State(), cb.RemotePeer())
			}
			<-cb.Identified()
			if err := cb.IdentifyErr(); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Ping(ctx, a.ID()); err != nil {
				t.Fatal(err)
			}
			cb.Close()
		})
	}
}

// TestSendPacket: a raw datagram leaves from the QUIC listening socket.
func TestSendPacket(t *testing.T) {
	a := newNode(t, nil, false, func(c *Config) {
		c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	})
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := ma.StringCast("/ip4/127.0.0.1/udp/" + portOfUDP(pc) + "/quic-v1")
	if err := a.SendPacket(to, []byte("punch")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, from, err := pc.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "punch" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	listen := a.ListenAddrs()[0]
	if want := listen[1].Value(); portOfUDPAddr(from) != want {
		t.Errorf("packet came from port %s, want the listening port %s", portOfUDPAddr(from), want)
	}
	if err := a.SendPacket(ma.StringCast("/ip4/127.0.0.1/tcp/1"), nil); err == nil {
		t.Error("SendPacket to a TCP address succeeded")
	}
}

func portOfUDP(c *net.UDPConn) string { return portOfUDPAddr(c.LocalAddr().(*net.UDPAddr)) }

func portOfUDPAddr(a *net.UDPAddr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
