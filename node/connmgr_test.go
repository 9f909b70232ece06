package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
)

func TestPresets(t *testing.T) {
	for _, name := range PresetNames {
		t.Run(name, func(t *testing.T) {
			l, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			if l != l.WithDefaults() {
				t.Errorf("preset %s is not complete: WithDefaults changes it", name)
			}
			if l.ConnLowWater > l.ConnHighWater || l.StreamWindow < 256<<10 || l.QUICConnWindow < l.QUICStreamWindow {
				t.Errorf("preset %s is inconsistent: %+v", name, l)
			}
			// Unread data per connection: every stream's first 256 KiB
			// plus the shared growth, never every stream at full window.
			initial := int64(2*l.MaxInboundStreams) << 18
			growth := min(int64(l.ConnWindow), int64(2*l.MaxInboundStreams)*int64(l.StreamWindow-256<<10))
			if got := l.MaxConnUnread(); got != initial+growth {
				t.Errorf("preset %s: MaxConnUnread %d, want %d + %d", name, got, initial, growth)
			}
			b, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			var back Limits
			if err := json.Unmarshal(b, &back); err != nil || back != l {
				t.Errorf("JSON round trip: %+v, %v; want %+v", back, err, l)
			}
		})
	}
	if _, err := Preset("huge"); err == nil {
		t.Error("unknown preset accepted")
	}
	iot, _ := Preset("iot")
	o := iot.Override(Limits{MaxInboundConns: 7})
	if o.MaxInboundConns != 7 || o.MaxOutboundConns != iot.MaxOutboundConns {
		t.Errorf("override: %+v", o)
	}
	if w := (Limits{StreamWindow: 1000}).WithDefaults().StreamWindow; w != 256<<10 {
		t.Errorf("a yamux window below 256 KiB was not raised: %d", w)
	}
	var l Limits
	if err := json.Unmarshal([]byte(`{"IdleTimeout":"soon"}`), &l); err == nil {
		t.Error("bad duration accepted")
	}
}

func TestLimitErrors(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false, func(c *Config) { c.Limits.MaxOutboundConns = 1 })
	connect(t, ctx, b, a)
	c := newNode(t, mn, true)
	_, err := b.Connect(ctx, c.ID(), c.Addrs()...)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitOutboundConns || !errors.Is(err, ErrLimit) {
		t.Fatalf("err = %v, want a MaxOutboundConns LimitError", err)
	}
	if b.Counters()[LimitOutboundConns] == 0 {
		t.Error("MaxOutboundConns counter did not count")
	}
}

// manyPeers connects k fresh dialers to a and returns them.
func manyPeers(t *testing.T, mn *transport.MemNetwork, a *Node, k int) []*Node {
	t.Helper()
	ctx := testCtx(t)
	var out []*Node
	for range k {
		b := newNode(t, mn, false)
		connect(t, ctx, b, a)
		out = append(out, b)
	}
	waitFor(t, func() bool { return len(a.Peers()) == k })
	return out
}

func TestConnManagerTrims(t *testing.T) {
	mn := transport.NewMemNetwork()
	a := newNode(t, mn, true, func(c *Config) {
		c.Limits.ConnLowWater, c.Limits.ConnHighWater = 3, 5
		c.Limits.ConnGracePeriod = time.Hour // only explicit trims below
	})
	peers := manyPeers(t, mn, a, 8)
	a.Protect(peers[0].ID(), "bootstrap")
	a.TagPeer(peers[1].ID(), "dht", 100)

	// Within the grace period nothing is trimmed.
	a.trim(time.Now())
	if n := len(a.Peers()); n != 8 {
		t.Fatalf("%d peers after a trim within the grace period, want 8", n)
	}
	a.trim(time.Now().Add(2 * time.Hour))
	waitFor(t, func() bool { return len(a.Peers()) == 3 })
	for _, keep := range []peer.ID{peers[0].ID(), peers[1].ID()} {
		if len(a.Conns(keep)) == 0 {
			t.Errorf("trim closed %s (protected or valuable)", keep.ShortString())
		}
	}
	if got := a.Counters()[LimitHighWater]; got != 5 {
		t.Errorf("ConnHighWater counter = %d, want 5", got)
	}
	if !a.Unprotect(peers[0].ID(), "other") || a.Unprotect(peers[0].ID(), "bootstrap") {
		t.Error("Unprotect reports the wrong protection state")
	}
}

func TestConnManagerIdle(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) { c.Limits.IdleTimeout = time.Minute })
	a.SetHandler("/hold", func(s *Stream) { io.Copy(io.Discard, s); s.Close() })
	peers := manyPeers(t, mn, a, 3)
	// peers[0] keeps a stream open: its connection is in use.
	s, err := peers[0].NewStream(ctx, a.ID(), "/hold")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("x"))
	waitFor(t, func() bool { return len(a.Conns(peers[0].ID())) == 1 && a.Conns(peers[0].ID())[0].streams.Load() == 1 })
	a.trim(time.Now().Add(2 * time.Minute))
	waitFor(t, func() bool { return len(a.Peers()) == 1 })
	if len(a.Conns(peers[0].ID())) != 1 {
		t.Error("the connection with an open stream was closed as idle")
	}
	if got := a.Counters()[LimitIdle]; got != 2 {
		t.Errorf("IdleTimeout counter = %d, want 2", got)
	}
	s.Close()
}

func TestBandwidthAndRateLimit(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) { c.Limits.RateLimit = 256 << 10 })
	a.SetHandler("/sink", func(s *Stream) {
		n, _ := io.Copy(io.Discard, s)
		s.Write([]byte{byte(n >> 16)})
		s.Close()
	})
	b := newNode(t, mn, false)
	connect(t, ctx, b, a)
	s, err := b.NewStream(ctx, a.ID(), "/sink")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, 512<<10)
	if _, err := s.Write(data); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	if _, err := io.ReadAll(s); err != nil {
		t.Fatal(err)
	}
	s.Close()
	bw := a.ProtocolBandwidth()["/sink"]
	if bw.In != uint64(len(data)) || bw.Out != 1 {
		t.Errorf("a's /sink bandwidth = %+v, want in %d out 1", bw, len(data))
	}
	if got := b.PeerBandwidth()[a.ID()]; got.Out < uint64(len(data)) {
		t.Errorf("b's bandwidth to a = %+v, want out ≥ %d", got, len(data))
	}
	if a.Counters()[LimitRate] == 0 {
		t.Error("512 KiB at 256 KiB/s never waited on the rate limit")
	}
}

func TestPeerstoreLimitCounts(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true, func(c *Config) { c.Limits.MaxPeers = 1 })
	connect(t, ctx, newNode(t, mn, false), a)
	// The only slot holds a connected peer: a second peer has no room.
	b := newNode(t, mn, false)
	b.Connect(ctx, a.ID(), a.Addrs()...)
	waitFor(t, func() bool { return a.Counters()[LimitPeers] > 0 })
}

func TestCloseIfIdle(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	hold := func(s *Stream) { io.Copy(io.Discard, s); s.Close() }
	tests := []struct {
		name string
		// busy makes b's connection c to a busy and returns what ends it.
		busy func(t *testing.T, a, b *Node, c *Conn) (end func())
	}{
		{"idle", nil},
		{"our stream open", func(t *testing.T, a, b *Node, c *Conn) func() {
			s, err := b.NewStreamOn(ctx, c, "/hold")
			if err != nil {
				t.Fatal(err)
			}
			return func() { s.Close() }
		}},
		{"their stream served", func(t *testing.T, a, b *Node, c *Conn) func() {
			s, err := a.NewStream(ctx, b.ID(), "/hold")
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte("x")) // a lazy stream reaches b with its first bytes
			waitFor(t, func() bool { return c.streams.Load() == 1 })
			return func() { s.Close(); waitFor(t, func() bool { return c.streams.Load() == 0 }) }
		}},
		{"protected", func(t *testing.T, a, b *Node, c *Conn) func() {
			b.Protect(a.ID(), "test")
			return func() { b.Unprotect(a.ID(), "test") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newNode(t, mn, true)
			b := newNode(t, mn, true)
			a.SetHandler("/hold", hold)
			b.SetHandler("/hold", hold)
			c := connect(t, ctx, b, a)
			// Identify's own streams end shortly after it has finished.
			waitFor(t, func() bool { return c.streams.Load() == 0 && c.out.Load() == 0 })
			if tt.busy != nil {
				end := tt.busy(t, a, b, c)
				if c.CloseIfIdle() {
					t.Fatal("CloseIfIdle closed a connection in use")
				}
				s, err := b.NewStreamOn(ctx, c, "/hold")
				if err != nil {
					t.Fatalf("the connection refused a stream after CloseIfIdle backed off: %v", err)
				}
				s.Close()
				end()
			}
			waitFor(t, c.CloseIfIdle)
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("the connection did not end after CloseIfIdle")
			}
			if _, err := b.NewStreamOn(ctx, c, "/hold"); !errors.Is(err, ErrConnClosing) {
				t.Errorf("NewStreamOn after CloseIfIdle: %v, want ErrConnClosing", err)
			}
		})
	}
}
