package node

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// holdStreams serves proto on n by writing one byte and holding the
// stream, unread, until the test ends.
func holdStreams(t *testing.T, n *Node, proto string) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	n.SetHandler(proto, func(s *Stream) {
		s.Write([]byte{1})
		<-release
		s.Close()
	})
}

// openHeld opens a stream of proto from b to a and reports whether a
// served it (wrote its byte) rather than refusing it.
func openHeld(ctx context.Context, b, a *Node, proto string) (*Stream, error) {
	s, err := b.NewStream(ctx, a.ID(), proto)
	if err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		s.Reset()
		return nil, err
	}
	return s, nil
}

// settled waits until a serves no inbound stream (identify's are done).
func settled(t *testing.T, a *Node) {
	t.Helper()
	waitFor(t, func() bool { return a.Usage().Streams == 0 })
}

// TestNodeWideStreamLimits: MaxStreams counts the streams of every
// connection together, MaxStreamsPerProtocol those of one protocol; a
// stream beyond either is reset and counted, and other work goes on.
func TestNodeWideStreamLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limits  func(*Limits)
		counter string
		other   bool  // a stream of another protocol is still served
		from    []int // which peer opens each of the four streams
	}{
		{"MaxStreams", func(l *Limits) { l.MaxStreams = 4 }, LimitNodeStreams, false, []int{0, 0, 1, 1}},
		// One stream a peer: past half the cap, a peer holding a quarter
		// of it gets no more (TestProtocolShare).
		{"MaxStreamsPerProtocol", func(l *Limits) { l.MaxStreamsPerProtocol = 4 }, LimitProtoStreams, true, []int{0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mn := transport.NewMemNetwork()
			ctx := testCtx(t)
			a := newNode(t, mn, true, func(c *Config) { tc.limits(&c.Limits) })
			holdStreams(t, a, "/hold")
			holdStreams(t, a, "/other")
			var peers []*Node
			for range 4 {
				p := newNode(t, mn, false)
				connect(t, ctx, p, a)
				peers = append(peers, p)
			}
			b, c := peers[0], peers[1]
			settled(t, a)
			for i, from := range tc.from {
				if _, err := openHeld(ctx, peers[from], a, "/hold"); err != nil {
					t.Fatalf("stream %d within the limit: %v", i, err)
				}
			}
			if _, err := openHeld(ctx, c, a, "/hold"); err == nil {
				t.Fatal("a fifth stream was served")
			}
			if got := a.Counters()[tc.counter]; got == 0 {
				t.Errorf("Counters()[%s] = 0 after a refusal", tc.counter)
			}
			_, err := openHeld(ctx, b, a, "/other")
			if tc.other && err != nil {
				t.Errorf("a stream of another protocol: %v", err)
			} else if !tc.other && err == nil {
				t.Error("a stream of another protocol was served beyond MaxStreams")
			}
		})
	}
}

// TestNodeStreamMemory: streams whose data a handler never reads hold at
// most MaxStreamMemory together, across peers; past it streams are reset
// with yamux's limit code, and counted.
func TestNodeStreamMemory(t *testing.T) {
	const budget = 600 << 10
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) { c.Limits.MaxStreamMemory = budget })
	holdStreams(t, a, "/sink")
	for _, b := range []*Node{newNode(t, mn, false), newNode(t, mn, false)} {
		connect(t, ctx, b, a)
		for range 2 {
			// Past the budget, the stream is refused at its opening or
			// reset at its data; either is what the test wants.
			if s, err := openHeld(ctx, b, a, "/sink"); err == nil {
				s.Write(make([]byte, 200<<10))
			} else if !errors.Is(err, mux.ErrReset) {
				t.Fatalf("stream refused for another reason: %v", err)
			}
		}
	}
	// Four streams of 200 KiB into 600 KiB: the fourth cannot fit.
	waitFor(t, func() bool { return a.Counters()[LimitStreamMemory] > 0 })
	if used := a.Usage().StreamMemory; used > budget {
		t.Errorf("%d bytes of unread stream data held, budget %d", used, budget)
	}
	// Streams that read what they are sent still work.
	b := newNode(t, mn, false)
	connect(t, ctx, b, a)
	if _, err := b.Ping(ctx, a.ID()); err != nil {
		t.Errorf("ping with the budget spent by unread streams: %v", err)
	}
}

// TestInboundConnsPerIP: one IPv4 address holds at most
// MaxInboundConnsPerIP inbound connections, whatever its peer IDs;
// another address is still served. Loopback is exempt unless
// LimitLoopback.
func TestInboundConnsPerIP(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limitLoopback bool
	}{{"loopback limited", true}, {"loopback exempt", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a := newNode(t, nil, true, func(c *Config) {
				c.Limits.MaxInboundConnsPerIP = 2
				c.LimitLoopback = tc.limitLoopback
			})
			from := func(ip string) error {
				b := newNode(t, nil, false, func(c *Config) {
					c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/" + ip + "/tcp/0")}
				})
				conn, err := b.Connect(ctx, a.ID(), a.Addrs()...)
				if err != nil {
					return err
				}
				if got, _ := ma.IP(conn.LocalMultiaddr()); got.String() != ip {
					t.Fatalf("dialed from %s, want %s", got, ip)
				}
				// The refusal closes the connection after the handshake:
				// a ping shows whether it lived.
				_, err = b.Ping(ctx, a.ID())
				return err
			}
			for i := range 2 {
				if err := from("127.0.0.2"); err != nil {
					t.Fatalf("connection %d within the limit: %v", i, err)
				}
			}
			err := from("127.0.0.2")
			if tc.limitLoopback && err == nil {
				t.Fatal("a third connection from 127.0.0.2 was kept")
			}
			if !tc.limitLoopback && err != nil {
				t.Fatalf("loopback is exempt, yet a third connection failed: %v", err)
			}
			if got := a.Counters()[LimitConnsPerIP]; tc.limitLoopback != (got > 0) {
				t.Errorf("Counters()[%s] = %d", LimitConnsPerIP, got)
			}
			if err := from("127.0.0.3"); err != nil {
				t.Errorf("another address: %v", err)
			}
		})
	}
}

// TestNegotiatingStreamsPerConn: streams that never name their protocol
// hold at most MaxNegotiatingStreams of one connection's slots, so they
// cannot take MaxStreams from everyone else.
func TestNegotiatingStreamsPerConn(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) {
		c.Limits.MaxNegotiatingStreams = 3
		c.Limits.MaxStreams = 6 // the cap bites from 3 streams on
	})
	b := newNode(t, mn, false)
	conn := connect(t, ctx, b, a)
	settled(t, a)
	var silent []transport.Stream
	for range 4 { // raw streams: no multistream header, ever
		s, err := conn.tc.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte{19}) // the start of a header that never comes whole
		silent = append(silent, s)
	}
	waitFor(t, func() bool { return a.Counters()[LimitNegotiating] > 0 })
	if got := a.Usage().Streams; got != 3 {
		t.Errorf("%d inbound streams held, want MaxNegotiatingStreams = 3", got)
	}
	// Another peer, and the same one on a negotiated stream, are served.
	c := newNode(t, mn, false)
	connect(t, ctx, c, a)
	if _, err := c.Ping(ctx, a.ID()); err != nil {
		t.Errorf("another peer's ping: %v", err)
	}
	for _, s := range silent {
		s.Reset()
	}
	// c's ping stream stays open for its next ping.
	waitFor(t, func() bool { return a.Usage().Streams <= 1 })
	if _, err := b.Ping(ctx, a.ID()); err != nil {
		t.Errorf("ping once the silent streams are gone: %v", err)
	}
}

// TestProtocolShare: once half of a protocol's cap is taken, a
// connection already holding a quarter of the cap gets no more of it,
// while another peer's stream of it is served.
func TestProtocolShare(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) { c.Limits.MaxStreamsPerProtocol = 8 })
	holdStreams(t, a, "/hold")
	b, c := newNode(t, mn, false), newNode(t, mn, false)
	connect(t, ctx, b, a)
	connect(t, ctx, c, a)
	settled(t, a)
	held := 0
	for range 8 {
		if _, err := openHeld(ctx, b, a, "/hold"); err == nil {
			held++
		}
	}
	if held != 4 {
		t.Errorf("one connection holds %d of a cap of 8, want 4: half, reached while it held at most a quarter", held)
	}
	if _, err := openHeld(ctx, c, a, "/hold"); err != nil {
		t.Errorf("another peer's stream of the protocol: %v", err)
	}
	if a.Counters()[LimitProtoStreams] == 0 {
		t.Error("the refusals were not counted")
	}
}
