package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func TestHandshakeGroups(t *testing.T) {
	for _, tc := range []struct {
		host, narrow, wide string
	}{
		{"192.0.2.7", "192.0.2.7/32", "192.0.2.0/24"},
		{"192.0.2.200", "192.0.2.200/32", "192.0.2.0/24"},
		{"192.0.3.7", "192.0.3.7/32", "192.0.3.0/24"},
		{"::ffff:192.0.2.7", "192.0.2.7/32", "192.0.2.0/24"}, // IPv4-mapped is IPv4
		// One /64: one narrow group, whatever the interface ID.
		{"2001:db8:1:2::1", "2001:db8:1:2::/64", "2001:db8:1::/48"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", "2001:db8:1::/48"},
		// Another /64 of the same /48: only the wide group is shared.
		{"2001:db8:1:3::1", "2001:db8:1:3::/64", "2001:db8:1::/48"},
		// Another /48.
		{"2001:db8:2:2::1", "2001:db8:2:2::/64", "2001:db8:2::/48"},
		{"fe80::1%eth0", "fe80::/64", "fe80::/48"}, // zones do not split groups
		{"::1", "::/64", "::/48"},
		{"mem-7", "mem-7", "mem-7"}, // not an IP: a group of its own
	} {
		narrow, wide := handshakeGroups(tc.host)
		if narrow != tc.narrow || wide != tc.wide {
			t.Errorf("handshakeGroups(%q) = %q, %q; want %q, %q", tc.host, narrow, wide, tc.narrow, tc.wide)
		}
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// pendingState is a snapshot of a listener's admission bookkeeping.
func pendingState(l *listener) (n int, narrow, wide map[string]int) {
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	narrow, wide = make(map[string]int), make(map[string]int)
	for k, v := range l.narrow {
		narrow[k] = v
	}
	for k, v := range l.wide {
		wide[k] = v
	}
	return len(l.pending), narrow, wide
}

// slotListener listens on loopback TCP with the loopback exemption off,
// as every test client here is on loopback, and handshakes that outlast
// the test.
func slotListener(t *testing.T) (*Upgrader, *listener, string) {
	t.Helper()
	lu := newUpgrader(t, func(c *UpgraderConfig) {
		c.HandshakeTimeout = time.Minute
		c.LimitLoopback = true
	})
	l, err := NewTCP(lu).Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	addr := l.Multiaddr()
	return lu, l.(*listener), addr[0].Value() + ":" + addr[1].Value()
}

// silentDial opens a raw connection from ip that never speaks.
func silentDial(t *testing.T, ip net.IP, target string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	c, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedSoon reports whether the listener closed c within a second.
func closedSoon(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestHandshakeSlotsUnderAttack: silent connections from several
// addresses, as many as the default limits let in, cannot keep a
// legitimate peer from another address out: it takes the slot of the
// oldest stalled handshake and is upgraded within a second.
func TestHandshakeSlotsUnderAttack(t *testing.T) {
	for _, tc := range []struct {
		name      string
		attackers []net.IP // 8 silent connections from each
		// settled holds once every attacker connection is handled
		settled func(l *listener) bool
		dropped uint64 // attacker handshakes dropped before the peer
	}{
		{
			// Two /24s of four addresses, each at MaxHandshakesPerIP and
			// together at MaxHandshakesPerSubnet: all 64 slots taken.
			name: "every slot",
			attackers: []net.IP{
				net.IPv4(127, 0, 1, 2), net.IPv4(127, 0, 1, 3), net.IPv4(127, 0, 1, 4), net.IPv4(127, 0, 1, 5),
				net.IPv4(127, 0, 2, 2), net.IPv4(127, 0, 2, 3), net.IPv4(127, 0, 2, 4), net.IPv4(127, 0, 2, 5),
			},
			settled: func(l *listener) bool { return len(l.slots) == 64 },
		},
		{
			// Eight addresses of the peer's own /24: the subnet holds at
			// most MaxHandshakesPerSubnet, its newer connections
			// displacing its older ones.
			name: "one subnet",
			attackers: []net.IP{
				net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3), net.IPv4(127, 0, 0, 4), net.IPv4(127, 0, 0, 5),
				net.IPv4(127, 0, 0, 6), net.IPv4(127, 0, 0, 7), net.IPv4(127, 0, 0, 8), net.IPv4(127, 0, 0, 9),
			},
			settled: func(l *listener) bool { return l.dropped.Load() == 32 },
			dropped: 32,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lu, l, target := slotListener(t)
			var silent []net.Conn
			for _, ip := range tc.attackers {
				for range 8 {
					silent = append(silent, silentDial(t, ip, target))
				}
			}
			waitFor(t, "the attack to be accepted", func() bool { return tc.settled(l) })
			n, narrow, wide := pendingState(l)
			if n != len(silent)-int(tc.dropped) {
				t.Errorf("%d handshakes pending, want %d", n, len(silent)-int(tc.dropped))
			}
			for g, k := range narrow {
				if k > lu.cfg.MaxHandshakesPerIP {
					t.Errorf("%d handshakes from %s, limit %d", k, g, lu.cfg.MaxHandshakesPerIP)
				}
			}
			for g, k := range wide {
				if k > lu.cfg.MaxHandshakesPerSubnet {
					t.Errorf("%d handshakes from %s, limit %d", k, g, lu.cfg.MaxHandshakesPerSubnet)
				}
			}

			accepted := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					c.Close()
				}
				accepted <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			c, err := NewTCP(newUpgrader(t)).Dial(ctx, l.Multiaddr(), lu.LocalPeer())
			if err != nil {
				t.Fatalf("dial from 127.0.0.1 during the attack: %v", err)
			}
			c.Close()
			t.Logf("upgraded in %v", time.Since(start))
			if err := <-accepted; err != nil {
				t.Fatal(err)
			}
			// The peer displaced the oldest silent connection only.
			if got := l.dropped.Load(); got != tc.dropped+1 {
				t.Errorf("%d handshakes dropped, want %d", got, tc.dropped+1)
			}
			if !closedSoon(silent[tc.dropped]) {
				t.Errorf("the oldest remaining silent connection was not closed for the peer")
			}
		})
	}
}

// TestHandshakesPerIPDisplaceOldest: a ninth silent connection from one
// address takes the slot of that address's oldest, so the address never
// holds more than MaxHandshakesPerIP and a fresh connection from it (a
// peer behind the same NAT) is not locked out.
func TestHandshakesPerIPDisplaceOldest(t *testing.T) {
	lu, l, target := slotListener(t)
	ip := net.IPv4(127, 0, 0, 2)
	var silent []net.Conn
	for range lu.cfg.MaxHandshakesPerIP {
		silent = append(silent, silentDial(t, ip, target))
	}
	waitFor(t, "8 handshakes pending", func() bool { n, _, _ := pendingState(l); return n == 8 })
	silent = append(silent, silentDial(t, ip, target))
	waitFor(t, "a handshake dropped", func() bool { return l.dropped.Load() == 1 })
	if !closedSoon(silent[0]) {
		t.Fatal("the oldest connection from the address was not closed")
	}
	n, narrow, wide := pendingState(l)
	if n != 8 || narrow["127.0.0.2/32"] != 8 || wide["127.0.0.0/24"] != 8 {
		t.Errorf("pending %d, by address %v, by subnet %v; want 8 from 127.0.0.2", n, narrow, wide)
	}
	// The ones left are the eight newest.
	want := make(map[string]bool)
	for _, c := range silent[1:] {
		want[c.LocalAddr().String()] = true
	}
	l.pendingMu.Lock()
	for _, p := range l.pending {
		if !want[p.raw.RemoteAddr().String()] {
			t.Errorf("pending handshake from %v is not one of the newest", p.raw.RemoteAddr())
		}
	}
	l.pendingMu.Unlock()
}
