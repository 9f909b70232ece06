package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// newNode starts a node that is closed at the end of the test. With mn it
// uses the memory network, else loopback TCP. listen says whether it
// listens.
func newNode(t testing.TB, mn *transport.MemNetwork, listen bool, mod ...func(*Config)) *Node {
	t.Helper()
	var cfg Config
	if mn != nil {
		cfg.Transports = []TransportMaker{Memory(mn)}
	}
	if listen && mn == nil {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	} else if listen {
		a := "/ip4/127.0.0.1/tcp/0"
		if mn != nil {
			a = "/memory/0"
		}
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast(a)}
	}
	for _, f := range mod {
		f(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect connects a to b and waits for identify on a's side.
func connect(t testing.TB, ctx context.Context, a, b *Node) *Conn {
	t.Helper()
	c, err := a.Connect(ctx, b.ID(), b.Addrs()...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	select {
	case <-c.Identified():
	case <-ctx.Done():
		t.Fatal("identify did not finish")
	}
	if err := c.IdentifyErr(); err != nil {
		t.Fatalf("identify: %v", err)
	}
	return c
}

// waitGoroutines waits until the number of goroutines is at most want.
// Goroutines end asynchronously after Close of a peer's connection, so
// this polls with a deadline instead of asserting at once.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := runtime.NumGoroutine()
		if got <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines remain, want at most %d:\n%s", got, want, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectIdentifyPing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen string // "" for the memory network
		want   transport.ConnState
	}{
		{"memory", "", transport.ConnState{Transport: "memory", Security: "/noise", Muxer: "/yamux/1.0.0", EarlyMuxer: true, Outbound: true}},
		{"tcp", "/ip4/127.0.0.1/tcp/0", transport.ConnState{Transport: "tcp", Security: "/noise", Muxer: "/yamux/1.0.0", EarlyMuxer: true, Outbound: true}},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1", transport.ConnState{Transport: "quic-v1", Security: "/tls/1.0.0", Muxer: "quic", Outbound: true}},
		{"quic-ip6", "/ip6/::1/udp/0/quic-v1", transport.ConnState{Transport: "quic-v1", Security: "/tls/1.0.0", Muxer: "quic", Outbound: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mn *transport.MemNetwork
			if tc.listen == "" {
				mn = transport.NewMemNetwork()
			}
			ctx := testCtx(t)
			a := newNode(t, mn, true, func(c *Config) {
				if tc.listen != "" {
					c.ListenAddrs = []ma.Multiaddr{ma.StringCast(tc.listen)}
				}
			})
			b := newNode(t, mn, false)
			c := connect(t, ctx, b, a)
			if st := c.State(); st != tc.want {
				t.Errorf("state = %+v, want %+v", st, tc.want)
			}
			ps := b.Peerstore()
			if got := ps.Agent(a.ID()); got != "mote/"+Version {
				t.Errorf("agent = %q", got)
			}
			// What a saw b's end as: b's port (with its IP where b's
			// socket is bound to none); the memory network has no
			// observer groups.
			if got, local := c.ObservedAddr(), c.LocalMultiaddr(); tc.listen != "" &&
				(got == nil || len(got) != len(local) || got[1] != local[1]) {
				t.Errorf("observed address %v, want one with the port of %v", got, local)
			}
			for _, p := range []string{identify.ID, identify.PushID, ping.ID} {
				if !ps.SupportsProtocol(a.ID(), p) {
					t.Errorf("peerstore: %s not supported by a (have %v)", p, ps.Protocols(a.ID()))
				}
			}
			if len(ps.SignedRecord(a.ID())) == 0 {
				t.Errorf("no signed peer record of a")
			}
			if _, err := b.Ping(ctx, a.ID()); err != nil {
				t.Fatal(err)
			}
			if ps.Latency(a.ID()) <= 0 {
				t.Errorf("latency not recorded")
			}
			// The listener identified the dialer too.
			waitFor(t, func() bool { return a.Peerstore().Agent(b.ID()) != "" })
			// A second Connect reuses the connection.
			c2, err := b.Connect(ctx, a.ID())
			if err != nil || c2 != c {
				t.Errorf("second connect = %p, %v; want the first connection %p", c2, err, c)
			}
		})
	}
}

// waitFor polls cond for up to 10 s; for effects that happen on another
// goroutine with no event to wait on.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEvents(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false)
	sub := b.Subscribe(8)
	defer sub.Close()
	c := connect(t, ctx, b, a)
	a.Close()
	var kinds []EventKind
	for len(kinds) < 3 {
		select {
		case e := <-sub.C:
			if e.Peer != a.ID() || e.Conn != c {
				t.Errorf("event %v for %s/%p, want %s/%p", e.Kind, e.Peer, e.Conn, a.ID(), c)
			}
			kinds = append(kinds, e.Kind)
		case <-ctx.Done():
			t.Fatalf("events so far %v", kinds)
		}
	}
	want := []EventKind{EventConnected, EventIdentified, EventDisconnected}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events = %v, want %v", kinds, want)
		}
	}
	if len(b.Peers()) != 0 {
		t.Errorf("peers after disconnect = %v", b.Peers())
	}
}

func TestStreamsAndHandlers(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false)
	a.SetHandler("/echo/1.0.0", func(s *Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	connect(t, ctx, b, a)

	// Known protocol: optimistic selection.
	s, err := b.NewStream(ctx, a.ID(), "/echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	s.Close()

	// Unknown to the peerstore: negotiated one by one, first refused.
	s, err = b.NewStream(ctx, a.ID(), "/nope/1.0.0", "/echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != "/echo/1.0.0" {
		t.Errorf("protocol = %s", s.Protocol())
	}
	s.Close()

	// Not supported at all.
	_, err = b.NewStream(ctx, a.ID(), "/nope/1.0.0")
	if err == nil || !strings.Contains(err.Error(), "/nope/1.0.0") {
		t.Fatalf("unsupported protocol: err = %v", err)
	}
}

func TestIdentifyPush(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false)
	connect(t, ctx, b, a)
	a.SetHandler("/new/1.0.0", func(s *Stream) { s.Close() })
	waitFor(t, func() bool { return b.Peerstore().SupportsProtocol(a.ID(), "/new/1.0.0") })
	a.RemoveHandler("/new/1.0.0")
	waitFor(t, func() bool { return !b.Peerstore().SupportsProtocol(a.ID(), "/new/1.0.0") })
	// Pushes carry the full set (go-libp2p replaces it).
	if !b.Peerstore().SupportsProtocol(a.ID(), ping.ID) {
		t.Errorf("push lost the other protocols: %v", b.Peerstore().Protocols(a.ID()))
	}
	// New listen addresses are pushed too.
	if err := a.Listen(ma.StringCast("/memory/0")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(b.Peerstore().Addrs(a.ID())) == 2 })
}

func TestWrongPeerID(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, nil, true)
	b := newNode(t, nil, false)
	sub := b.Subscribe(8)
	defer sub.Close()
	other, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := peer.IDFromPublicKey(other.Public())
	_, err = b.Connect(ctx, wrong, a.Addrs()...)
	if err == nil {
		t.Fatal("connect to the wrong peer ID succeeded")
	}
	for _, id := range []peer.ID{wrong, a.ID()} {
		if !strings.Contains(err.Error(), id.String()) {
			t.Errorf("error %q does not name %s", err, id)
		}
	}
	if e := <-sub.C; e.Kind != EventDialFailed || e.Peer != wrong || e.Err == nil {
		t.Errorf("event = %v for %s (%v), want dial failed for %s", e.Kind, e.Peer, e.Err, wrong)
	}
	// A retry is refused by the backoff, without dialing.
	if _, err := b.Connect(ctx, wrong); !errors.Is(err, ErrDialBackoff) {
		t.Errorf("second connect: err = %v, want ErrDialBackoff", err)
	}
	// a keeps serving.
	connect(t, ctx, b, a)
}

func TestConcurrentConnectDialsOnce(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false)
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), peer.TempAddrTTL)
	conns := make(chan *Conn, 8)
	for range 8 {
		go func() {
			c, err := b.Connect(ctx, a.ID())
			if err != nil {
				t.Error(err)
			}
			conns <- c
		}()
	}
	first := <-conns
	for range 7 {
		if c := <-conns; c != first {
			t.Errorf("concurrent connects returned different connections")
		}
	}
	if n := len(b.Conns(a.ID())); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestInboundConnLimit(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) { c.Limits.MaxInboundConns = 2 })
	connect(t, ctx, newNode(t, mn, false), a)
	connect(t, ctx, newNode(t, mn, false), a)
	third := newNode(t, mn, false)
	c, err := third.Connect(ctx, a.ID(), a.Addrs()...)
	if err == nil {
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("connection beyond the inbound limit stayed open")
		}
	}
	if n := len(a.Peers()); n != 2 {
		t.Errorf("a has %d peers, want 2", n)
	}
}

func TestInboundStreamLimit(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) { c.Limits.MaxInboundStreams = 3 })
	b := newNode(t, mn, false)
	release := make(chan struct{})
	a.SetHandler("/hold", func(s *Stream) {
		s.Write([]byte{1})
		<-release
		s.Close()
	})
	defer close(release)
	connect(t, ctx, b, a)
	// identify's own inbound stream may still be open; the limit counts
	// every inbound stream, so hold until two /hold streams are served.
	var held []*Stream
	for i := 0; i < 2; i++ {
		s, err := b.NewStream(ctx, a.ID(), "/hold")
		if err != nil {
			t.Fatal(err)
		}
		one := make([]byte, 1)
		if _, err := io.ReadFull(s, one); err != nil {
			t.Fatalf("held stream %d: %v", i, err)
		}
		held = append(held, s)
	}
	// Streams beyond the limit fail; earlier ones are untouched.
	refused := 0
	for i := 0; i < 2; i++ {
		s, err := b.NewStream(ctx, a.ID(), "/hold")
		if err != nil {
			refused++
			continue
		}
		one := make([]byte, 1)
		if _, err := io.ReadFull(s, one); err != nil {
			refused++
		}
		s.Reset()
	}
	if refused == 0 {
		t.Fatal("no stream was refused beyond MaxInboundStreams")
	}
	for _, s := range held {
		s.Reset()
	}
}

func TestCloseEndsGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		mn := transport.NewMemNetwork()
		ctx := testCtx(t)
		a, err := New(Config{Transports: []TransportMaker{Memory(mn)}, ListenAddrs: []ma.Multiaddr{ma.StringCast("/memory/0")}})
		if err != nil {
			t.Fatal(err)
		}
		var others []*Node
		for range 5 {
			b, err := New(Config{Transports: []TransportMaker{Memory(mn)}})
			if err != nil {
				t.Fatal(err)
			}
			others = append(others, b)
			connect(t, ctx, b, a)
			if _, err := b.Ping(ctx, a.ID()); err != nil {
				t.Fatal(err)
			}
		}
		a.Close()
		for _, b := range others {
			b.Close()
		}
	}()
	waitGoroutines(t, base)
}

// TestHappyEyeballs: a peer with QUIC and TCP addresses is reached over
// QUIC; when its QUIC address is dead, TCP wins after the head start.
func TestHappyEyeballs(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, nil, true, func(c *Config) {
		c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	})
	b := newNode(t, nil, false)
	sub := b.Subscribe(8)
	defer sub.Close()
	c := connect(t, ctx, b, a)
	if got := c.State().Transport; got != "quic-v1" {
		t.Errorf("first choice = %s, want quic-v1", got)
	}
	if e := <-sub.C; e.Kind != EventConnected || e.Conn.State().Transport != "quic-v1" {
		t.Errorf("first event = %v over %s, want connected over quic-v1", e.Kind, e.Conn.State().Transport)
	}
	if n := len(b.Conns(a.ID())); n != 1 {
		t.Errorf("%d connections after the dial, want 1 (the loser closed)", n)
	}

	// A dead QUIC address: nobody answers on that UDP port.
	tcpAddr := a.Addrs()[0]
	if strings.HasSuffix(tcpAddr.String(), "/quic-v1") {
		tcpAddr = a.Addrs()[1]
	}
	dead := ma.StringCast("/ip4/127.0.0.1/udp/9/quic-v1")
	d := newNode(t, nil, false, func(c *Config) { c.TCPHeadStart = 50 * time.Millisecond })
	c2, err := d.Connect(ctx, a.ID(), dead, tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.State().Transport; got != "tcp" {
		t.Errorf("fallback = %s, want tcp", got)
	}
}

// TestRequestResponseOverEachTransport: write, CloseWrite, then read the
// reply, on a stream opened optimistically, over every transport.
func TestRequestResponseOverEachTransport(t *testing.T) {
	for _, listen := range []string{"", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			var mn *transport.MemNetwork
			if listen == "" {
				mn = transport.NewMemNetwork()
			}
			ctx := testCtx(t)
			a := newNode(t, mn, true, func(c *Config) {
				if listen != "" {
					c.ListenAddrs = []ma.Multiaddr{ma.StringCast(listen)}
				}
			})
			a.SetHandler("/upper", func(s *Stream) {
				defer s.Close()
				b, _ := io.ReadAll(s)
				s.Write([]byte(strings.ToUpper(string(b))))
			})
			b := newNode(t, mn, false)
			connect(t, ctx, b, a)
			s, err := b.NewStream(ctx, a.ID(), "/upper")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.Write([]byte("hello"))
			if err := s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(s)
			if err != nil || string(got) != "HELLO" {
				t.Fatalf("reply %q, %v", got, err)
			}
		})
	}
}

// TestAddressBackoff: an address that failed is not dialed again at once,
// even when a caller names it explicitly.
func TestAddressBackoff(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, nil, true)
	b := newNode(t, nil, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	dead := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	if _, err := b.Connect(ctx, a.ID(), dead); err == nil || errors.Is(err, ErrDialBackoff) {
		t.Fatalf("first dial of a dead address: %v", err)
	}
	_, err = b.Connect(ctx, a.ID(), dead)
	if !errors.Is(err, ErrDialBackoff) {
		t.Fatalf("second dial of a dead address: %v, want ErrDialBackoff", err)
	}
	// The live address still works.
	if _, err := b.Connect(ctx, a.ID(), a.Addrs()...); err != nil {
		t.Fatal(err)
	}
}

// TestConnectAfterClose: a connection being closed is not handed out again.
func TestConnectAfterClose(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, nil, true)
	b := newNode(t, nil, false)
	c := connect(t, ctx, b, a)
	c.Close()
	c2, err := b.Connect(ctx, a.ID(), a.Addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c {
		t.Fatal("Connect returned the connection that was just closed")
	}
}

// TestPingReusesStream: Pings of one peer share a stream, as Kubo's and
// go-libp2p's do; a stream that died is replaced at the next Ping, and
// idle ones are closed.
func TestPingReusesStream(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false)
	connect(t, ctx, b, a)
	kept := func() *Stream {
		b.mu.Lock()
		defer b.mu.Unlock()
		if p := b.pingers[a.ID()]; p != nil {
			return p.s
		}
		return nil
	}
	if _, err := b.Ping(ctx, a.ID()); err != nil {
		t.Fatal(err)
	}
	first := kept()
	for range 3 {
		if _, err := b.Ping(ctx, a.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if first == nil || kept() != first {
		t.Fatal("Pings did not share one stream")
	}
	first.Reset() // as if the peer had gone away and come back
	if _, err := b.Ping(ctx, a.ID()); err != nil {
		t.Fatalf("ping after its stream died: %v", err)
	}
	if kept() == first {
		t.Error("a dead stream was kept")
	}
	b.closePingers(time.Time{})
	if kept() != nil {
		t.Error("idle ping stream not closed")
	}
	waitFor(t, func() bool { return a.Usage().Streams == 0 })
}
