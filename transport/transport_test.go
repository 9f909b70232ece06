package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func newUpgrader(t testing.TB, mod ...func(*UpgraderConfig)) *Upgrader {
	t.Helper()
	key, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := UpgraderConfig{Key: key, HandshakeTimeout: 2 * time.Second}
	for _, f := range mod {
		f(&cfg)
	}
	u, err := NewUpgrader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// pair is a listening and a dialing transport of one kind.
type pair struct {
	name      string
	listen    ma.Multiaddr
	mk        func(*Upgrader) Transport
	transport string
}

func pairs() []pair {
	mn := NewMemNetwork()
	return []pair{
		{"tcp", ma.StringCast("/ip4/127.0.0.1/tcp/0"), func(u *Upgrader) Transport { return NewTCP(u) }, "tcp"},
		{"memory", ma.StringCast("/memory/0"), func(u *Upgrader) Transport { return NewMem(mn, u) }, "memory"},
	}
}

func TestUpgradeAndStreams(t *testing.T) {
	for _, p := range pairs() {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			lu, du := newUpgrader(t), newUpgrader(t)
			l, err := p.mk(lu).Listen(p.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan Conn, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					t.Error(err)
				}
				accepted <- c
			}()
			dc, err := p.mk(du).Dial(ctx, l.Multiaddr(), lu.LocalPeer())
			if err != nil {
				t.Fatal(err)
			}
			defer dc.Close()
			lc := <-accepted
			if lc == nil {
				t.FailNow()
			}
			defer lc.Close()
			if dc.RemotePeer() != lu.LocalPeer() || lc.RemotePeer() != du.LocalPeer() {
				t.Errorf("peers: dialer sees %s, listener sees %s", dc.RemotePeer(), lc.RemotePeer())
			}
			for _, st := range []ConnState{dc.State(), lc.State()} {
				if st.Transport != p.transport || st.Security != "/noise" || st.Muxer != "/yamux/1.0.0" || !st.EarlyMuxer {
					t.Errorf("state = %+v", st)
				}
			}
			if !dc.State().Outbound || lc.State().Outbound {
				t.Errorf("direction: dialer %v, listener %v", dc.State().Outbound, lc.State().Outbound)
			}
			// A stream each way.
			for _, c := range [][2]Conn{{dc, lc}, {lc, dc}} {
				s, err := c[0].OpenStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				s.CloseWrite()
				r, err := c[1].AcceptStream()
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil || string(got) != "ping" {
					t.Fatalf("stream data %q, %v", got, err)
				}
				r.Close()
				s.Close()
			}
			// Closing one side ends the other.
			dc.Close()
			select {
			case <-lc.Done():
			case <-ctx.Done():
				t.Fatal("listener side did not notice the close")
			}
		})
	}
}

func TestDialWrongPeer(t *testing.T) {
	for _, p := range pairs() {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			lu, du, other := newUpgrader(t), newUpgrader(t), newUpgrader(t)
			l, err := p.mk(lu).Listen(p.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			_, err = p.mk(du).Dial(ctx, l.Multiaddr(), other.LocalPeer())
			var pm *secure.PeerMismatchError
			if !errors.As(err, &pm) {
				t.Fatalf("err = %v, want a PeerMismatchError", err)
			}
			if pm.Expected != other.LocalPeer() || pm.Actual != lu.LocalPeer() {
				t.Errorf("mismatch names %s/%s, want %s/%s", pm.Expected, pm.Actual, other.LocalPeer(), lu.LocalPeer())
			}
		})
	}
}

// TestListenerSlowHandshakes: connections that never finish their
// handshake are bounded in number and dropped at the timeout, while a
// well-behaved dialer still gets through; Close ends every goroutine.
func TestListenerSlowHandshakes(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lu := newUpgrader(t, func(c *UpgraderConfig) {
		c.HandshakeTimeout = 300 * time.Millisecond
		c.MaxInboundHandshakes = 4
	})
	l, err := NewTCP(lu).Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Multiaddr()
	na := addr[0].Value() + ":" + addr[1].Value()
	var silent []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", na)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	du := newUpgrader(t)
	c, err := NewTCP(du).Dial(ctx, addr, lu.LocalPeer())
	if err != nil {
		t.Fatalf("dial behind slow handshakes: %v", err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	for _, s := range silent {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, s); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("silent connection was not closed at the handshake timeout")
		}
		s.Close()
	}
	l.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines remain, had %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPipe(t *testing.T) {
	a, b := newPipe()
	// Both ends can write before either reads, like a socket.
	if _, err := a.Write([]byte("from a")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("from b")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := b.Read(buf)
	if err != nil || string(buf[:n]) != "from a" {
		t.Fatalf("b read %q, %v", buf[:n], err)
	}
	// Read deadline.
	a.Read(buf) // drain "from b"
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := a.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})
	// A full buffer blocks the writer until the deadline.
	big := make([]byte, pipeBufferSize+1)
	a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := a.Write(big); !errors.Is(err, os.ErrDeadlineExceeded) || n != pipeBufferSize {
		t.Fatalf("write into full buffer: %d, %v", n, err)
	}
	// Close: the peer drains then sees EOF; its writes fail.
	a.Close()
	if got, err := io.ReadAll(b); err != nil || len(got) != pipeBufferSize {
		t.Fatalf("drain after close: %d bytes, %v", len(got), err)
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("write to a closed peer succeeded")
	}
	if _, err := a.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on closed end: %v", err)
	}
}

// TestHandshakesPerIP: one address cannot hold more than
// MaxHandshakesPerIP handshakes (a newer one displaces its oldest), and
// another address still gets through (slow-loris).
func TestHandshakesPerIP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lu := newUpgrader(t, func(c *UpgraderConfig) {
		c.HandshakeTimeout = time.Minute
		c.MaxInboundHandshakes = 12
		c.MaxHandshakesPerIP = 3
		c.LimitLoopback = true // the attacker below is on loopback
	})
	l, err := NewTCP(lu).Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Multiaddr()
	target := addr[0].Value() + ":" + addr[1].Value()
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	var silent []net.Conn
	for range 6 {
		c, err := attacker.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	// The three beyond the per-IP limit are closed long before the
	// one-minute handshake timeout.
	closed := 0
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.Copy(io.Discard, c); !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
	}
	if closed != 3 {
		t.Errorf("%d of 6 silent connections from one IP were closed, want 3", closed)
	}
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := NewTCP(newUpgrader(t)).Dial(ctx, addr, lu.LocalPeer())
	if err != nil {
		t.Fatalf("dial from another address during the attack: %v", err)
	}
	c.Close()
}
