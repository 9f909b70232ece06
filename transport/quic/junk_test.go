package quic

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mote-p2p/mote/transport"
)

// Budgets of the junk test: what a flood of 1,000 datagrams may cost a
// listener at its peak and after it, and the RFC 9000 §8 limit on what
// we may send to an address we have not validated.
const (
	junkDatagrams  = 1000
	junkSize       = 1200
	junkPeakBudget = 4 << 20
	junkSettled    = 1 << 20
	junkGoroutines = 3 // transient ones (timers, AfterFuncs) allowed at rest
	junkSettleTime = 10 * time.Second
	amplification  = 3
)

// randomDatagram is junkSize random bytes.
func randomDatagram() []byte {
	b := make([]byte, junkSize)
	rand.Read(b)
	return b
}

// initialDatagram is shaped like a QUIC v1 Initial (RFC 9000 §17.2.2):
// long header of the Initial type, random 8-byte connection IDs, no
// token, and a payload that does not decrypt.
func initialDatagram() []byte {
	b := randomDatagram()
	b[0] = 0xc0 | b[0]&0x0f // long header, fixed bit, type Initial
	binary.BigEndian.PutUint32(b[1:], 1)
	b[5] = 8  // DCID length; b[6:14] stays random
	b[14] = 8 // SCID length; b[15:23] stays random
	b[23] = 0 // token length
	binary.BigEndian.PutUint16(b[24:], 0x4000|uint16(junkSize-26))
	return b
}

// flooders are UDP sockets that count every byte sent to them.
type flooders struct {
	socks []*net.UDPConn
	got   atomic.Int64
	wg    sync.WaitGroup
}

func newFlooders(t *testing.T, n int) *flooders {
	t.Helper()
	f := &flooders{}
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			f.close()
			t.Fatal(err)
		}
		f.socks = append(f.socks, c)
		f.wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				f.got.Add(int64(n))
			}
		})
	}
	return f
}

// close closes the sockets and waits for their readers.
func (f *flooders) close() {
	for _, c := range f.socks {
		c.Close()
	}
	f.wg.Wait()
}

// flood sends n datagrams made by mk round-robin from the sockets, as
// fast as they go, and closes half once half are sent.
func (f *flooders) flood(to *net.UDPAddr, n int, mk func() []byte, half chan<- struct{}) {
	for i := range n {
		if i == n/2 {
			close(half)
		}
		f.socks[i%len(f.socks)].WriteToUDP(mk(), to)
	}
}

// footprint is what the test budgets: heap and stacks in use after a GC,
// and the goroutines.
func footprint() (uint64, int) {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, runtime.NumGoroutine()
}

// peakSampler records the largest footprint it sees until stopped.
type peakSampler struct {
	peak atomic.Uint64
	gs   atomic.Int64 // the most goroutines seen
	stop chan struct{}
	done chan struct{}
}

func samplePeak() *peakSampler {
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			p.note()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) note() uint64 {
	mem, gs := footprint()
	if int64(gs) > p.gs.Load() {
		p.gs.Store(int64(gs)) // only the sampler writes
	}
	for {
		old := p.peak.Load()
		if mem <= old || p.peak.CompareAndSwap(old, mem) {
			return mem
		}
	}
}

func (p *peakSampler) end() uint64 {
	close(p.stop)
	<-p.done
	return p.peak.Load()
}

// connectAndClose checks that a real peer still gets through.
func connectAndClose(t *testing.T, tr *Transport, l transport.Listener, when string) {
	t.Helper()
	start := time.Now()
	d, a := connect(t, tr, l, "")
	d.Close()
	a.Close()
	t.Logf("%s: dial took %v", when, time.Since(start).Round(time.Millisecond))
}

// TestInitialJunk floods a listener with random datagrams and then with
// Initials that do not decrypt: neither may cost it more than a few MiB,
// nor for long, nor make it send more than it received, nor keep a real
// peer out.
func TestInitialJunk(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sockets       int
		limitLoopback bool
	}{
		{"few-ports", 4, false},
		{"many-ports-limited", 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) { testJunk(t, tc.sockets, tc.limitLoopback) })
	}
}

func testJunk(t *testing.T, sockets int, limitLoopback bool) {
	srv := newTransport(t, func(c *Config) {
		c.HandshakeTimeout = DefaultHandshakeTimeout
		c.LimitLoopback = limitLoopback
	})
	l := listen(t, srv, "/ip4/127.0.0.1/udp/0/quic-v1")
	to := l.(*listener).s.addr
	dialer := newTransport(t)
	// Listening, the dialer dials from this socket and opens none later
	// that would grow the goroutine count.
	listen(t, dialer, "/ip4/127.0.0.1/udp/0/quic-v1")
	f := newFlooders(t, sockets)
	defer f.close()

	g0 := runtime.NumGoroutine()
	connectAndClose(t, dialer, l, "warm-up")
	waitGoroutines(t, g0)

	for _, phase := range []struct {
		name string
		mk   func() []byte
	}{
		{"random", randomDatagram},
		{"initial", initialDatagram},
	} {
		base, gBase := footprint()
		got0 := f.got.Load()
		before := srv.Stats()
		peak := samplePeak()
		half := make(chan struct{})
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			f.flood(to, junkDatagrams, phase.mk, half)
		}()
		<-half
		connectAndClose(t, dialer, l, phase.name+" during flood")
		<-sent
		// This dial's Initial queues behind the whole flood: once it is
		// through, quic-go has handled every junk datagram.
		connectAndClose(t, dialer, l, phase.name+" after flood")
		top := peak.end()

		start := time.Now()
		deadline := start.Add(junkSettleTime)
		var mem uint64
		var gs int
		for {
			mem, gs = footprint()
			top = max(top, mem)
			if mem <= base+junkSettled && gs <= gBase+junkGoroutines {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: not back to baseline after %v: %+d KiB, %+d goroutines",
					phase.name, junkSettleTime, (int64(mem)-int64(base))>>10, gs-gBase)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		settled := time.Since(start).Round(10 * time.Millisecond)
		growth := int64(top) - int64(base)
		replied := f.got.Load() - got0
		sentBytes := int64(junkDatagrams * junkSize)
		stats := srv.Stats()
		t.Logf("%s: peak %+d KiB %+d goroutines, settled in %v (%+d KiB, %+d goroutines), replied %d bytes to %d (%.3f×), refused %d, retries %d",
			phase.name, growth>>10, peak.gs.Load()-int64(gBase), settled, (int64(mem)-int64(base))>>10, gs-gBase,
			replied, sentBytes, float64(replied)/float64(sentBytes),
			stats.Refused-before.Refused, stats.Retries-before.Retries)
		if growth > junkPeakBudget {
			t.Errorf("%s: peak growth %d KiB, budget %d KiB", phase.name, growth>>10, junkPeakBudget>>10)
		}
		if replied > amplification*sentBytes {
			t.Errorf("%s: replied %d bytes to %d received", phase.name, replied, sentBytes)
		}
		if phase.name == "initial" && stats.Retries == before.Retries {
			t.Errorf("initial: no Retry asked for")
		}
		if stats.Handshakes != 0 {
			t.Errorf("%s: %d handshakes still counted at rest", phase.name, stats.Handshakes)
		}
		connectAndClose(t, dialer, l, phase.name+" settled")
	}
}
