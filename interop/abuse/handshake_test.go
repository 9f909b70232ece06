package abuse

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/wire"
)

// silentConns are plain TCP connections that never say a word.
type silentConns struct {
	conns []net.Conn
}

// openSilent opens n silent TCP connections to the daemon's TCP port,
// from 127.0.0.2–127.0.0.9 in turn, and waits until the daemon has
// started a handshake on each (it sends the multistream header first);
// connections the daemon dropped meanwhile (displaced by newer ones)
// stay in the list, closed by the daemon.
func openSilent(t *testing.T, d *daemon, n int) *silentConns {
	t.Helper()
	sc := &silentConns{}
	t.Cleanup(sc.close)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	for i := range n {
		c, err := dialTCPFrom(ctx, attackerIP(i), d.tcp)
		if err != nil {
			t.Fatalf("silent connection %d: %v", i, err)
		}
		sc.conns = append(sc.conns, c)
	}
	// Each connection sees the header, or EOF once displaced.
	header := len(wire.AppendMessage(nil, wire.ProtocolID))
	err := forEach(len(sc.conns), len(sc.conns), func(i int) error {
		c := sc.conns[i]
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		defer c.SetReadDeadline(time.Time{})
		buf := make([]byte, header)
		_, err := io.ReadFull(c, buf)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatalf("silent connections: waiting for the daemon's handshakes: %v", err)
	}
	return sc
}

// open counts the connections the daemon still holds: reading one that
// is open times out, one the daemon closed reads EOF.
func (sc *silentConns) open() int {
	n := 0
	var mu sync.Mutex
	forEach(len(sc.conns), len(sc.conns), func(i int) error {
		c := sc.conns[i]
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var b [1]byte
		_, err := c.Read(b[:])
		c.SetReadDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			mu.Lock()
			n++
			mu.Unlock()
		}
		return nil
	})
	return n
}

func (sc *silentConns) close() {
	for _, c := range sc.conns {
		c.Close()
	}
	sc.conns = nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// TestHandshakeSlots: 64 silent TCP connections from 8 addresses keep the
// daemon's inbound handshake slots busy (an attacker renews them before
// the 15 s handshake timeout; the test holds them); a legitimate peer
// from 127.0.0.1 must still connect and ping within 1 s.
func TestHandshakeSlots(t *testing.T) {
	const (
		silent = 64
		within = time.Second
		tries  = 3
	)
	forPresets(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "handshake-slots", preset: preset, base: base}
		s := d.sample()
		sc := openSilent(t, d, silent)
		held := sc.open()
		var visits []legitResult
		for range tries {
			visits = append(visits, legitNow(d, "tcp", within, "during"))
		}
		heldAfter := sc.open()
		f.peak = s.Stop()
		st := d.stats(t)
		f.fired = fired(st0.Limits, st.Limits)
		sc.close()
		after, _ := d.baseline(t)
		f.after = after
		afterLegit := legitNow(d, "tcp", legitTimeout, "after")
		f.note("slots held by the attack %d then %d of %d (MaxInboundHandshakes %d, per IP %d, per /24 %d)",
			held, heldAfter, silent, d.limits.MaxInboundHandshakes, d.limits.MaxHandshakesPerIP, d.limits.MaxHandshakesPerSubnet)
		for _, v := range visits {
			f.note("%v (limit %v)", v, within)
		}
		f.note("%v", afterLegit)
		logFigures(t, f)
		for _, v := range visits {
			v.check(t)
		}
		afterLegit.check(t)
		if held == 0 {
			t.Errorf("the attack held no handshake slot: it proves nothing")
		}
	})
}
