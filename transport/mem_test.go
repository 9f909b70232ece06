package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// memTest helps a test inside a synctest bubble: it listens, accepts in
// the background and closes everything at the end, so that the bubble's
// goroutines all end.
type memTest struct {
	t       *testing.T
	mu      sync.Mutex
	closers []io.Closer
}

func newMemTest(t *testing.T) *memTest {
	m := &memTest{t: t}
	t.Cleanup(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, c := range m.closers {
			c.Close()
		}
	})
	return m
}

// memAcceptor is a listener whose connections are accepted into a channel.
type memAcceptor struct {
	net.Listener
	conns chan net.Conn
}

// listen binds a fresh endpoint on h and accepts on it until the test ends.
func (m *memTest) listen(h *MemHost) *memAcceptor {
	m.t.Helper()
	ln, err := h.Listen(ma.StringCast("/memory/0"))
	if err != nil {
		m.t.Fatal(err)
	}
	a := &memAcceptor{Listener: ln, conns: make(chan net.Conn, 16)}
	m.track(ln)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.track(c)
			select {
			case a.conns <- c:
			default:
				c.Close() // nobody looks at it
			}
		}
	}()
	return a
}

func (m *memTest) track(c io.Closer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closers = append(m.closers, c)
}

// addr is the multiaddr of a net.Addr of the memory network.
func memAddrOf(t testing.TB, a net.Addr) ma.Multiaddr {
	t.Helper()
	m, err := memMultiaddr(a)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dial dials to from h (from its endpoint from, if given) within timeout.
func (m *memTest) dial(h *MemHost, from net.Addr, to net.Addr, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var local ma.Multiaddr
	if from != nil {
		local = memAddrOf(m.t, from)
	}
	c, err := h.DialFrom(ctx, local, memAddrOf(m.t, to))
	if err == nil {
		m.track(c)
	}
	return c, err
}

// mustDial dials and fails the test on error.
func (m *memTest) mustDial(h *MemHost, from, to net.Addr) net.Conn {
	m.t.Helper()
	c, err := m.dial(h, from, to, time.Minute)
	if err != nil {
		m.t.Fatalf("%v dial %v: %v", h, to, err)
	}
	return c
}

// accepted is the next connection of a, or nil if none comes within a
// minute (the dial that should have made it has returned by then).
func memAccepted(a *memAcceptor) net.Conn {
	select {
	case c := <-a.conns:
		return c
	case <-time.After(time.Minute):
		return nil
	}
}

// memRoundTrip writes from a, reads at b, answers, reads at a, and returns
// the time that took.
func memRoundTrip(t *testing.T, a, b net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	buf := make([]byte, 4)
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := b.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
	return time.Since(start)
}

// TestMemLatency: a dial takes a round trip, and so does a write answered
// by the other end, in fake time.
func TestMemLatency(t *testing.T) {
	cases := []struct {
		name          string
		def           Link // the network's default link
		there, back   Link // set on the pair, unless zero
		dial, rtt     time.Duration
		setOneWayOnly bool
	}{
		{name: "perfect"},
		{name: "20ms both ways", there: Link{Latency: 20 * time.Millisecond}, back: Link{Latency: 20 * time.Millisecond},
			dial: 40 * time.Millisecond, rtt: 40 * time.Millisecond},
		{name: "default link", def: Link{Latency: 20 * time.Millisecond}, dial: 40 * time.Millisecond, rtt: 40 * time.Millisecond},
		{name: "asymmetric", there: Link{Latency: 10 * time.Millisecond}, back: Link{Latency: 30 * time.Millisecond},
			dial: 40 * time.Millisecond, rtt: 40 * time.Millisecond, setOneWayOnly: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newMemTest(t)
				mn := NewMemNetworkWith(MemConfig{Link: tc.def})
				a, b := mn.NewHost(), mn.NewHost()
				if tc.setOneWayOnly {
					mn.SetOneWayLink(a, b, tc.there)
					mn.SetOneWayLink(b, a, tc.back)
				} else if tc.there != (Link{}) {
					mn.SetLink(a, b, tc.there)
				}
				ln := m.listen(b)
				start := time.Now()
				c := m.mustDial(a, nil, ln.Addr())
				if got := time.Since(start); got != tc.dial {
					t.Errorf("dial took %v, want %v", got, tc.dial)
				}
				s := memAccepted(ln)
				for i := range 3 {
					if got := memRoundTrip(t, c, s); got != tc.rtt {
						t.Errorf("round trip %d from the dialer took %v, want %v", i, got, tc.rtt)
					}
					if got := memRoundTrip(t, s, c); got != tc.rtt {
						t.Errorf("round trip %d from the listener took %v, want %v", i, got, tc.rtt)
					}
				}
				// The close travels like data: EOF after the latency.
				there := tc.there.Latency + tc.def.Latency
				start = time.Now()
				c.Close()
				if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Fatalf("read after close: %d, %v", n, err)
				}
				if got := time.Since(start); got != there {
					t.Errorf("EOF after %v, want %v", got, there)
				}
			})
		})
	}
}

// TestMemBandwidth: bytes leave at the link's rate, arrive progressively,
// and the writer stays within the pipe's window.
func TestMemBandwidth(t *testing.T) {
	cases := []struct {
		name      string
		link      Link
		size      int
		want      time.Duration // until the last byte is read
		firstByte time.Duration // until the first is
	}{
		{"1 MB/s", Link{Bandwidth: 1e6}, 1e6, time.Second, segmentSize * time.Second / 1e6},
		{"1 MB/s, 20 ms", Link{Bandwidth: 1e6, Latency: 20 * time.Millisecond}, 1e6, time.Second + 20*time.Millisecond,
			segmentSize*time.Second/1e6 + 20*time.Millisecond},
		{"100 kB/s", Link{Bandwidth: 1e5}, 1e5, time.Second, segmentSize * time.Second / 1e5},
		{"10 MB/s, 4 MB", Link{Bandwidth: 1e7}, 4e6, 400 * time.Millisecond, segmentSize * time.Second / 1e7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newMemTest(t)
				mn := NewMemNetworkWith(MemConfig{Link: tc.link})
				a, b := mn.NewHost(), mn.NewHost()
				ln := m.listen(b)
				c := m.mustDial(a, nil, ln.Addr())
				s := memAccepted(ln)
				start := time.Now()
				wrote := make(chan error, 1)
				go func() {
					_, err := c.Write(make([]byte, tc.size))
					wrote <- err
				}()
				synctest.Wait()
				d := c.(*pipeEnd).w
				d.mu.Lock()
				inFlight := len(d.data)
				d.mu.Unlock()
				if want := min(tc.size, pipeBufferSize); inFlight != want {
					t.Errorf("%d bytes in flight, want %d (the window bounds them)", inFlight, want)
				}
				buf := make([]byte, 64<<10)
				n, err := s.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got != tc.firstByte {
					t.Errorf("first %d bytes after %v, want %v", n, got, tc.firstByte)
				}
				for n < tc.size {
					k, err := s.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					n += k
				}
				if got := time.Since(start); got != tc.want {
					t.Errorf("%d bytes took %v, want %v", tc.size, got, tc.want)
				}
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestMemLoss: a lost packet makes its segment late by RTOs (the round
// trip plus 200 ms, doubling), in the proportion Loss says; nothing is
// lost or reordered; dials lose SYNs and retransmit them after 1 s, 2 s...
func TestMemLoss(t *testing.T) {
	const latency = 10 * time.Millisecond
	rto := 2*latency + minRTO
	cases := []struct {
		name string
		loss float64
	}{
		{"none", 0},
		{"1%", 0.01},
		{"10%", 0.1},
		{"30%", 0.3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newMemTest(t)
				mn := NewMemNetworkWith(MemConfig{Seed: 7})
				a, b := mn.NewHost(), mn.NewHost()
				ln := m.listen(b)
				c := m.mustDial(a, nil, ln.Addr()) // before the loss: no SYN lost
				s := memAccepted(ln)
				mn.SetLink(a, b, Link{Latency: latency, Loss: tc.loss})

				// Small writes a second apart, each one packet: each is late
				// with probability Loss, by RTO, then 1+2 RTO, 1+2+4 RTO...
				const writes = 1000
				late := 0
				buf := make([]byte, 100)
				for i := range writes {
					start := time.Now()
					buf[0] = byte(i)
					if _, err := c.Write(buf); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(s, buf); err != nil || buf[0] != byte(i) {
						t.Fatalf("write %d read as %d, %v", i, buf[0], err)
					}
					extra := time.Since(start) - latency
					if extra > 0 {
						late++
					}
					if r := extra / rto; extra%rto != 0 || r&(r+1) != 0 {
						t.Fatalf("write %d late by %v, not a sum of doubling RTOs of %v", i, extra, rto)
					}
					time.Sleep(time.Second - time.Since(start)%time.Second)
				}
				want := tc.loss * writes
				t.Logf("%d of %d writes late", late, writes)
				if d := float64(late) - want; d*d > 9*want*(1-tc.loss) { // 3 sigma
					t.Errorf("%d of %d writes late, want about %.0f", late, writes, want)
				}

				// A bulk transfer arrives whole and in order.
				data := make([]byte, 2<<20)
				for i := range data {
					data[i] = byte(i * 7)
				}
				go func() {
					c.Write(data)
					c.Close()
				}()
				got, err := io.ReadAll(s)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("bulk transfer: %d bytes (equal %v), %v", len(got), bytes.Equal(got, data), err)
				}
			})
		})
	}
}

// TestMemSYNLoss: a dial whose SYN is lost retransmits it after 1 s, then
// 2 s, 4 s..., and gives up after 127 s with ETIMEDOUT.
func TestMemSYNLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemTest(t)
		const latency = 10 * time.Millisecond
		mn := NewMemNetworkWith(MemConfig{Seed: 1, Link: Link{Latency: latency, Loss: 0.5}})
		a, b := mn.NewHost(), mn.NewHost()
		ln := m.listen(b)
		retried := 0
		for range 200 {
			start := time.Now()
			c, err := m.dial(a, nil, ln.Addr(), time.Hour)
			if err != nil {
				if !errors.Is(err, syscall.ETIMEDOUT) || time.Since(start) != 127*time.Second {
					t.Fatalf("dial: %v after %v", err, time.Since(start))
				}
				retried++
				continue
			}
			c.Close()
			extra := time.Since(start) - 2*latency
			switch extra {
			case 0:
			case time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second, 31 * time.Second, 63 * time.Second:
				retried++
			default:
				t.Fatalf("dial took %v: not the SYN retransmission schedule", extra+2*latency)
			}
		}
		// A SYN is lost with 0.5, the pipe's data not at all (the dial only),
		// so about half the dials retransmit.
		if retried < 70 || retried > 130 {
			t.Errorf("%d of 200 dials retransmitted, want about 100", retried)
		}
		mn.SetDefaultLink(Link{Loss: 1})
		start := time.Now()
		_, err := m.dial(a, nil, ln.Addr(), 10*time.Minute)
		if !errors.Is(err, syscall.ETIMEDOUT) || time.Since(start) != 127*time.Second {
			t.Errorf("dial over a dead link: %v after %v, want ETIMEDOUT after 127s", err, time.Since(start))
		}
	})
}

// TestMemPartition: a cut link makes dials time out and holds the bytes of
// open connections, which arrive when it heals; a one-way cut holds only
// its direction.
func TestMemPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemTest(t)
		mn := NewMemNetwork()
		a, b := mn.NewHost(), mn.NewHost()
		ln := m.listen(b)
		c := m.mustDial(a, nil, ln.Addr())
		s := memAccepted(ln)
		link := Link{Latency: 5 * time.Millisecond}
		mn.SetLink(a, b, link)
		memRoundTrip(t, c, s)

		mn.SetLink(a, b, Link{Latency: 5 * time.Millisecond, Down: true})
		if _, err := m.dial(a, nil, ln.Addr(), 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("dial across the cut: %v, want a timeout", err)
		}
		if _, err := c.Write([]byte("held")); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 4)
			io.ReadFull(s, buf)
			got <- string(buf)
		}()
		cut := time.Now()
		time.Sleep(time.Minute)
		select {
		case g := <-got:
			t.Fatalf("read %q across the cut", g)
		default:
		}
		mn.SetLink(a, b, link)
		if g := <-got; g != "held" || time.Since(cut) != time.Minute {
			t.Errorf("after healing read %q after %v, want \"held\" at once", g, time.Since(cut))
		}

		// Cut one way: the other still carries bytes.
		mn.SetOneWayLink(a, b, Link{Down: true})
		if _, err := s.Write([]byte("back")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		start := time.Now()
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "back" || time.Since(start) != link.Latency {
			t.Errorf("the uncut direction read %q, %v after %v", buf, err, time.Since(start))
		}
		s.SetReadDeadline(time.Now().Add(time.Second))
		c.Write([]byte("lost"))
		if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read across a one-way cut: %v, want the deadline", err)
		}
	})
}

// TestMemNAT: the mapping and filtering behaviours of RFC 4787, observed
// from the outside.
func TestMemNAT(t *testing.T) {
	cases := []struct {
		name string
		cfg  NATConfig
		// Whether the mapping toward the first endpoint is reused toward...
		sameHostMapping  bool // another endpoint of the same host
		otherHostMapping bool // another host
		// Whether a dial to that mapping is let in from...
		fromSamePort, fromSameHost, fromStranger bool
	}{
		{"full cone", FullConeNAT(), true, true, true, true, true},
		{"restricted cone", RestrictedConeNAT(), true, true, true, true, false},
		{"port-restricted cone", PortRestrictedConeNAT(), true, true, true, false, false},
		{"address-dependent mapping", NATConfig{Mapping: AddressDependent, Filtering: AddressDependent}, true, false, true, true, false},
		{"symmetric", SymmetricNAT(), false, false, true, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newMemTest(t)
				mn := NewMemNetworkWith(MemConfig{Link: Link{Latency: 10 * time.Millisecond}})
				nat := mn.NewNAT(tc.cfg)
				p := nat.NewHost()
				s1, s2, stranger := mn.NewHost(), mn.NewHost(), mn.NewHost()
				lp := m.listen(p)
				s1a, s1b, s2a := m.listen(s1), m.listen(s1), m.listen(s2)
				s1c, sx := m.listen(s1), m.listen(stranger) // never dialed

				observed := func(to *memAcceptor) net.Addr {
					t.Helper()
					c := m.mustDial(p, nil, to.Addr())
					if c.LocalAddr() != lp.Addr() {
						t.Errorf("dialed from %v, not from the listening %v", c.LocalAddr(), lp.Addr())
					}
					s := memAccepted(to)
					if got := mn.HostOf(memAddrOf(t, s.RemoteAddr())); got != nat.Host() {
						t.Errorf("observed %v belongs to %v, not the NAT's %v", s.RemoteAddr(), got, nat.Host())
					}
					return s.RemoteAddr()
				}
				o1 := observed(s1a)
				if o1 == lp.Addr() {
					t.Fatalf("the listener saw the private address %v", o1)
				}
				if o := observed(s1b); (o == o1) != tc.sameHostMapping {
					t.Errorf("mapping toward another endpoint of the host: %v, first %v", o, o1)
				}
				if o := observed(s2a); (o == o1) != tc.otherHostMapping {
					t.Errorf("mapping toward another host: %v, first %v", o, o1)
				}

				inbound := []struct {
					what string
					host *MemHost
					from *memAcceptor
					want bool
				}{
					{"the endpoint dialed", s1, s1a, tc.fromSamePort},
					{"another endpoint of its host", s1, s1c, tc.fromSameHost},
					{"a stranger", stranger, sx, tc.fromStranger},
				}
				for _, in := range inbound {
					start := time.Now()
					c, err := m.dial(in.host, in.from.Addr(), o1, 10*time.Second)
					switch {
					case in.want && err != nil:
						t.Errorf("dial from %s: %v", in.what, err)
					case in.want:
						s := memAccepted(lp)
						if s == nil || s.RemoteAddr() != in.from.Addr() {
							t.Fatalf("private listener accepted %v", s)
						}
						if got := time.Since(start); got != 20*time.Millisecond { // a LAN behind the NAT
							t.Errorf("dial through the NAT took %v, want 20ms", got)
						}
						memRoundTrip(t, c, s)
					case err == nil:
						t.Errorf("dial from %s got in", in.what)
					case !errors.Is(err, context.DeadlineExceeded):
						t.Errorf("dial from %s: %v, want dropped (a timeout)", in.what, err)
					}
				}
				// A private address is unreachable from outside.
				if _, err := m.dial(s1, nil, lp.Addr(), 10*time.Second); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("dial to the private address: %v, want a timeout", err)
				}
			})
		})
	}
}

// TestMemNATHoles: a hole lasts while a connection uses it and Timeout
// after; a dial that failed still opens one; the table is bounded.
func TestMemNATHoles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemTest(t)
		mn := NewMemNetwork()
		cfg := PortRestrictedConeNAT()
		cfg.Timeout = time.Minute
		cfg.MaxEntries = 3
		nat := mn.NewNAT(cfg)
		p := nat.NewHost()
		lp := m.listen(p)
		s := mn.NewHost()
		ls := m.listen(s)

		c := m.mustDial(p, nil, ls.Addr())
		in := memAccepted(ls)
		o := in.RemoteAddr()
		time.Sleep(10 * time.Minute) // an open connection keeps the hole
		if _, err := m.dial(s, nil, o, 5*time.Second); err != nil {
			t.Fatalf("dial in while the connection is open: %v", err)
		}
		memAccepted(lp).Close()
		c.Close()
		time.Sleep(cfg.Timeout - 10*time.Second)
		if _, err := m.dial(s, nil, o, 5*time.Second); err != nil {
			t.Fatalf("dial in within the timeout: %v", err)
		}
		memAccepted(lp).Close()
		time.Sleep(cfg.Timeout + time.Second)
		if _, err := m.dial(s, nil, o, 5*time.Second); err == nil {
			t.Fatal("dial in after the timeout got in")
		}
		if h := mn.HostOf(memAddrOf(t, o)); h != nil {
			t.Errorf("the expired mapping %v is still bound, to %v", o, h)
		}

		// A dial to a peer behind another NAT is dropped there, but opens
		// a hole here: the peer's dial back gets in.
		nat2 := mn.NewNAT(cfg)
		q := nat2.NewHost()
		lq := m.listen(q)
		m.mustDial(q, nil, ls.Addr())
		oq := memAccepted(ls).RemoteAddr()
		if _, err := m.dial(p, nil, oq, 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial to a port-restricted NAT's mapping: %v, want dropped", err)
		}
		c = m.mustDial(q, nil, m.mapping(p, ls))
		if got := memAccepted(lp); got == nil || got.RemoteAddr() != oq {
			t.Fatalf("the dial back arrived as %v, want from %v", got, oq)
		}
		select {
		case c := <-lq.conns:
			t.Fatalf("q accepted %v", c.RemoteAddr())
		default:
		}

		// The table holds 3 entries: p's mapping with holes for s and oq.
		// A third destination finds no room.
		t3 := mn.NewHost()
		l3 := m.listen(t3)
		if _, err := m.dial(p, nil, l3.Addr(), 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial with the NAT table full: %v, want dropped", err)
		}
	})
}

// mapping dials to from h and returns the address to's listener saw.
func (m *memTest) mapping(h *MemHost, to *memAcceptor) net.Addr {
	m.t.Helper()
	c := m.mustDial(h, nil, to.Addr())
	defer c.Close()
	s := memAccepted(to)
	defer s.Close()
	return s.RemoteAddr()
}

// TestMemSimultaneousOpen: two hosts dialing each other's observed
// addresses at once get one connection when their NATs allow it.
func TestMemSimultaneousOpen(t *testing.T) {
	cases := []struct {
		name   string
		a, b   *NATConfig // nil: a public host
		joined bool       // both dials return the two ends of one pipe
	}{
		{"public hosts", nil, nil, true},
		{"full cone", memPtr(FullConeNAT()), memPtr(FullConeNAT()), true},
		{"port-restricted", memPtr(PortRestrictedConeNAT()), memPtr(PortRestrictedConeNAT()), true},
		{"port-restricted and public", memPtr(PortRestrictedConeNAT()), nil, true},
		{"symmetric and port-restricted", memPtr(SymmetricNAT()), memPtr(PortRestrictedConeNAT()), false},
		{"symmetric", memPtr(SymmetricNAT()), memPtr(SymmetricNAT()), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := newMemTest(t)
				mn := NewMemNetworkWith(MemConfig{Link: Link{Latency: 20 * time.Millisecond}})
				host := func(cfg *NATConfig) *MemHost {
					if cfg == nil {
						return mn.NewHost()
					}
					return mn.NewNAT(*cfg).NewHost()
				}
				a, b, relay := host(tc.a), host(tc.b), mn.NewHost()
				la, lb, lr := m.listen(a), m.listen(b), m.listen(relay)
				// What the relay observes, as identify would tell them.
				oa, ob := m.mapping(a, lr), m.mapping(b, lr)

				type result struct {
					c   net.Conn
					err error
				}
				ra, rb := make(chan result, 1), make(chan result, 1)
				start := time.Now()
				go func() { c, err := m.dial(a, nil, ob, 5*time.Second); ra <- result{c, err} }()
				go func() { c, err := m.dial(b, nil, oa, 5*time.Second); rb <- result{c, err} }()
				x, y := <-ra, <-rb
				if !tc.joined {
					if x.err == nil || y.err == nil {
						t.Fatalf("dials through %s: %v, %v; want both to fail", tc.name, x.err, y.err)
					}
					return
				}
				if x.err != nil || y.err != nil {
					t.Fatalf("dials: %v, %v", x.err, y.err)
				}
				if got := time.Since(start); got != 40*time.Millisecond {
					t.Errorf("simultaneous open took %v", got)
				}
				if x.c.RemoteAddr() != ob || y.c.RemoteAddr() != oa {
					t.Errorf("ends see %v and %v, want %v and %v", x.c.RemoteAddr(), y.c.RemoteAddr(), ob, oa)
				}
				memRoundTrip(t, x.c, y.c)
				for _, l := range []*memAcceptor{la, lb} {
					select {
					case c := <-l.conns:
						t.Errorf("a listener accepted %v as well", c.RemoteAddr())
					default:
					}
				}
			})
		})
	}
}

func memPtr[T any](v T) *T { return &v }

// TestMemUpgradeOverLink: the full upgrade (multistream, Noise, yamux)
// over a 20 ms link, from behind a NAT, in fake time; the listener sees
// the NAT's mapping.
func TestMemUpgradeOverLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := NewMemNetworkWith(MemConfig{Link: Link{Latency: 20 * time.Millisecond}})
		nat := mn.NewNAT(PortRestrictedConeNAT())
		lu, du := newUpgrader(t), newUpgrader(t)
		lt := NewMem(mn.NewHost().Network(), lu)
		dt := NewMem(nat.NewHost().Network(), du)
		l, err := lt.Listen(ma.StringCast("/memory/0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		dc, err := dt.Dial(ctx, l.Multiaddr(), lu.LocalPeer())
		if err != nil {
			t.Fatal(err)
		}
		defer dc.Close()
		// A round trip for TCP's handshake, and one for Noise's first two
		// messages (the security and muxer proposals ride in them); the
		// third message goes with the dialer's first write.
		if got := time.Since(start); got != 80*time.Millisecond {
			t.Errorf("dial took %v, want 80ms", got)
		}
		lc := <-accepted
		if lc == nil {
			t.Fatal("no inbound connection")
		}
		defer lc.Close()
		if got := mn.HostOf(lc.RemoteMultiaddr()); got != nat.Host() {
			t.Errorf("listener sees %v of %v, want an address of the NAT", lc.RemoteMultiaddr(), got)
		}
		if dc.LocalMultiaddr().Equal(lc.RemoteMultiaddr()) {
			t.Errorf("listener sees the private address %v", dc.LocalMultiaddr())
		}
		start = time.Now()
		s, err := dc.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("ping"))
		r, err := lc.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		r.Write(buf)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo %q, %v", buf, err)
		}
		if got := time.Since(start); got != 40*time.Millisecond {
			t.Errorf("stream round trip took %v, want 40ms", got)
		}
		s.Close()
		r.Close()
	})
}

// TestMemCompat: transports on the network NewMemNetwork returns behave as
// before: a host each, a fresh endpoint per dial, refused at once when
// nobody listens.
func TestMemCompat(t *testing.T) {
	mn := NewMemNetwork()
	a, b := NewMem(mn, newUpgrader(t)), NewMem(mn, newUpgrader(t))
	if a.Host() == b.Host() || a.Host().NAT() != nil {
		t.Fatal("transports share a host")
	}
	start := time.Now()
	_, err := a.Dial(context.Background(), ma.StringCast("/memory/999999"), "")
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
		t.Fatalf("dial to nobody: %v", err)
	}
	if got := err.Error(); got != "memory dial /memory/999999: connection refused" {
		t.Errorf("error %q", got)
	}
	l, err := b.Listen(ma.StringCast("/memory/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if mn.HostOf(l.Multiaddr()) != b.Host() {
		t.Error("HostOf the listen address is not the listener's host")
	}
	if _, err := b.Listen(l.Multiaddr()); err == nil {
		t.Error("listened twice on one address")
	}
}

// TestMemManyHosts: thousands of hosts, half behind one NAT, each with a
// connection to a hub carrying bytes still on the link, cost no goroutine
// per connection; HostOf knows every end.
func TestMemManyHosts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const hosts = 2000
		m := newMemTest(t)
		mn := NewMemNetworkWith(MemConfig{Link: Link{Latency: 50 * time.Millisecond, Bandwidth: 1e6}})
		nat := mn.NewNAT(NATConfig{})
		hub := m.listen(mn.NewHost())
		var conns, served []net.Conn
		for i := range hosts {
			h := mn.NewHost()
			if i%2 == 1 {
				h = nat.NewHost()
			}
			c := m.mustDial(h, nil, hub.Addr())
			if got := mn.HostOf(memAddrOf(t, c.LocalAddr())); got != h {
				t.Fatalf("HostOf a dialer's endpoint %v: %v, want %v", c.LocalAddr(), got, h)
			}
			conns = append(conns, c)
			served = append(served, memAccepted(hub))
		}
		base := runtime.NumGoroutine()
		for _, c := range conns {
			if _, err := c.Write(make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
		}
		if n := runtime.NumGoroutine(); n != base {
			t.Errorf("%d goroutines with bytes in flight on %d connections, %d before", n, hosts, base)
		}
		start := time.Now()
		buf := make([]byte, 1000)
		for i, s := range served {
			if _, err := io.ReadFull(s, buf); err != nil {
				t.Fatal(err)
			}
			if got := mn.HostOf(memAddrOf(t, s.RemoteAddr())); got == nil || (i%2 == 1) != (got == nat.Host()) {
				t.Fatalf("HostOf the hub's peer %v: %v", s.RemoteAddr(), got)
			}
		}
		if got := time.Since(start); got != 51*time.Millisecond {
			t.Errorf("the bytes took %v, want 51ms (one latency, 1 ms of serialization)", got)
		}
		for _, c := range conns {
			c.Close()
			if h := mn.HostOf(memAddrOf(t, c.LocalAddr())); h != nil {
				t.Fatalf("closed connection's endpoint %v still bound to %v", c.LocalAddr(), h)
			}
		}
	})
}

// BenchmarkMemPipe measures a perfect and a delayed pipe's throughput
// with 32 KiB writes.
func BenchmarkMemPipe(b *testing.B) {
	for _, bc := range []struct {
		name string
		link Link
	}{
		{"perfect", Link{}},
		{"bandwidth", Link{Bandwidth: 1 << 40}}, // delayed, but not enough to wait in real time
	} {
		b.Run(bc.name, func(b *testing.B) {
			mn := NewMemNetworkWith(MemConfig{Link: bc.link})
			c, s := memBenchPipe(b, mn)
			defer c.Close()
			defer s.Close()
			buf := make([]byte, 32<<10)
			go func() {
				rb := make([]byte, 32<<10)
				for {
					if _, err := s.Read(rb); err != nil {
						return
					}
				}
			}()
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemPipeIdle measures what an idle raw pipe costs: the heap
// of both ends, per pipe, over many.
func BenchmarkMemPipeIdle(b *testing.B) {
	const pipes = 1000
	mn := NewMemNetwork()
	h1, h2 := mn.NewHost(), mn.NewHost()
	ln, err := h2.Listen(ma.StringCast("/memory/0"))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acceptedPipes := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			acceptedPipes <- c
		}
	}()
	b.ReportAllocs()
	var perPipe, allocs float64
	for b.Loop() {
		conns := make([]net.Conn, 0, 2*pipes)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range pipes {
			c, err := h1.Dial(context.Background(), memAddrOf(b, ln.Addr()))
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c, <-acceptedPipes)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perPipe = float64(after.HeapAlloc-before.HeapAlloc) / pipes
		allocs = float64(after.Mallocs-before.Mallocs) / pipes
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(perPipe, "B/pipe")
	b.ReportMetric(allocs, "allocs/pipe")
}

// memBenchPipe is a connected pair of raw pipes on mn.
func memBenchPipe(b *testing.B, mn *MemNetwork) (net.Conn, net.Conn) {
	h1, h2 := mn.NewHost(), mn.NewHost()
	ln, err := h2.Listen(ma.StringCast("/memory/0"))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	c, err := h1.Dial(context.Background(), memAddrOf(b, ln.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	return c, <-got
}
