package abuse

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// The QUIC junk attack's figures (the hardening issue's): what 1,000
// random and 1,000 Initial-shaped datagrams may cost the daemon, and the
// RFC 9000 §8 amplification limit on what it may send to addresses it
// has not validated.
const (
	junkDatagrams     = 1000 // of each kind
	junkSize          = 1200
	junkPeakBudget    = 4 * mib
	junkSettleRSS     = 1 * mib
	junkSettleG       = 5
	junkSettleTimeout = 10 * time.Second
	junkAmplification = 3
	junkSourcePorts   = 2 // sockets per source address
)

// randomDatagram is junkSize random bytes.
func randomDatagram() []byte {
	b := make([]byte, junkSize)
	rand.Read(b)
	return b
}

// initialDatagram is shaped like a QUIC v1 Initial (RFC 9000 §17.2.2):
// long header of the Initial type, version 1, random 8-byte connection
// IDs, no token, a length varint covering the rest, and a random payload
// that does not decrypt.
func initialDatagram() []byte {
	b := randomDatagram()
	b[0] = 0xc0 | b[0]&0x0f // long header, fixed bit, type Initial (0), random reserved and PN length bits
	binary.BigEndian.PutUint32(b[1:], 1)
	b[5] = 8  // DCID length; b[6:14] stays random
	b[14] = 8 // SCID length; b[15:23] stays random
	b[23] = 0 // token length
	binary.BigEndian.PutUint16(b[24:], 0x4000|uint16(junkSize-26))
	return b
}

// junkSources are UDP sockets on 127.0.0.2–127.0.0.9 that count every
// byte the daemon sends back to them.
type junkSources struct {
	socks []*net.UDPConn
	got   atomic.Int64
	sent  atomic.Int64
	wg    sync.WaitGroup
}

func newJunkSources(t *testing.T) *junkSources {
	t.Helper()
	js := &junkSources{}
	t.Cleanup(js.close)
	for i := range 8 * junkSourcePorts {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: attackerIP(i).AsSlice()})
		if err != nil {
			t.Fatal(err)
		}
		js.socks = append(js.socks, c)
		js.wg.Add(1)
		go func() {
			defer js.wg.Done()
			buf := make([]byte, 2048)
			for {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				js.got.Add(int64(n))
			}
		}()
	}
	return js
}

// flood sends n datagrams made by mk to dst, round robin over the sources.
func (js *junkSources) flood(t *testing.T, dst *net.UDPAddr, n int, mk func() []byte) {
	t.Helper()
	for i := range n {
		b := mk()
		if _, err := js.socks[i%len(js.socks)].WriteToUDP(b, dst); err != nil {
			t.Fatalf("junk datagram %d: %v", i, err)
		}
		js.sent.Add(int64(len(b)))
	}
}

func (js *junkSources) close() {
	for _, c := range js.socks {
		c.Close()
	}
	js.wg.Wait()
	js.socks = nil
}

// TestQUICInitialJunk floods the daemon's QUIC port with random datagrams
// and with Initials that do not decrypt, from 16 source sockets on 8
// addresses. The daemon's RSS may grow by at most 4 MiB plus the garbage
// of gcFloor and must be back within 1 MiB of its baseline (goroutines
// within a handful) within 10 s;
// it may send back at most 3 times what it received; and a legitimate
// peer connects over QUIC during the flood and after it.
func TestQUICInitialJunk(t *testing.T) {
	forPresetsParallel(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "quic-initial-junk", preset: preset, base: base}
		na, err := ma.ToNetAddr(d.quic[:2]) // /ip4/…/udp/… without /quic-v1
		if err != nil {
			t.Fatal(err)
		}
		dst := na.(*net.UDPAddr)
		js := newJunkSources(t)

		s := d.sample()
		during := startLegitLoop(d, "quic", legitTimeout)
		js.flood(t, dst, junkDatagrams, randomDatagram)
		js.flood(t, dst, junkDatagrams, initialDatagram)
		ok, fail, slowest, legitErr := during.Stop()
		peakAtFlood := s.Stop()

		// RSS and goroutines back near the baseline.
		after, took, settled := d.settle(t, base, junkSettleRSS+runtimeKeeps, junkSettleG, junkSettleTimeout)
		f.peak, f.after = peakAtFlood, after
		f.peak.rss = max(f.peak.rss, after.rss)
		st := d.stats(t)
		f.fired = fired(st0.Limits, st.Limits)
		afterLegit := legitNow(d, "quic", legitTimeout, "QUIC after")
		js.close()
		sent, got := js.sent.Load(), js.got.Load()

		f.note("sent %d B, daemon answered %d B (%.2fx, limit %dx)", sent, got, float64(got)/float64(sent), junkAmplification)
		f.note("settled in %v: %v", took.Round(100*time.Millisecond), settled)
		f.note("legit QUIC during: %d ok, %d failed, slowest %v; %v", ok, fail, slowest.Round(time.Millisecond), afterLegit)
		logFigures(t, f)
		afterLegit.check(t)

		if g, floor := growth(f.peak.rss, base.rss), gcFloor(t, preset, base); g > junkPeakBudget+floor {
			t.Errorf("RSS grew by %.1f MiB during the flood, budget %.0f MiB + %.1f MiB of garbage the runtime lets the heap reach before collecting", mb(g), mb(junkPeakBudget), mb(floor))
		}
		if !settled {
			t.Errorf("not back to baseline within %v: RSS %.1f MiB (baseline %.1f, slack %.0f and %.1f the runtime keeps), goroutines %d (baseline %d, slack %d)",
				junkSettleTimeout, mb(after.rss), mb(base.rss), mb(junkSettleRSS), mb(runtimeKeeps), after.goroutines, base.goroutines, junkSettleG)
		}
		checkHeapAfter(t, d, base, junkSettleRSS)
		if got > junkAmplification*sent {
			t.Errorf("daemon sent %d bytes for the %d it received: more than %dx", got, sent, junkAmplification)
		}
		if fail > 0 || ok == 0 {
			t.Errorf("legit QUIC peer during the flood: %d ok, %d failed; first error: %v", ok, fail, legitErr)
		}
	})
}
