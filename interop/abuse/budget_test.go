package abuse

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/wire"
)

// attackWindow is how long the flooding attacks keep writing while the
// daemon is sampled.
const attackWindow = 3 * time.Second

// runAttack lets a flooding attack run for its window: a measurement
// period for the sampler, not a wait for some condition.
func runAttack() { time.Sleep(attackWindow) }

// raceScaled is n ping streams, or a quarter of them under the race
// detector: each may make the test process buffer 256 KiB of echoes it
// never reads, and the detector multiplies what that costs.
func raceScaled(n int) int {
	if raceEnabled {
		return max(1, n/4)
	}
	return n
}

// pingBatch is what a flooding ping stream writes at a time: 32-byte
// pings back to back, as many as a quick writer would have in flight.
var pingBatch = func() []byte {
	b := make([]byte, 256*ping.PayloadSize)
	rand.Read(b)
	return b
}()

// flood is streams opened by the attack on its connections.
type flood struct {
	wg      sync.WaitGroup
	opened  atomic.Int64
	reset   atomic.Int64 // streams the daemon reset
	written atomic.Int64
}

// pings opens n ping streams on c; once start is closed (at once if it
// is nil), each writes pings continuously and never reads the echoes,
// until its stream fails (the daemon resets it, or the attack closes the
// connection).
func (f *flood) pings(ctx context.Context, c *rawConn, n int, start <-chan struct{}) error {
	for range n {
		s, err := c.OpenStream(ctx)
		if err != nil {
			return err
		}
		f.opened.Add(1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if start != nil {
				select {
				case <-start:
				case <-c.Done():
					return
				}
			}
			// The proposal goes with the first pings, as an optimistic
			// dialer sends it.
			first := append(wire.AppendSelect(nil, ping.ID), pingBatch...)
			for b := first; ; b = pingBatch {
				n, err := s.Write(b)
				f.written.Add(int64(n))
				if err != nil {
					if isRemoteReset(err) {
						f.reset.Add(1)
					}
					s.Reset()
					return
				}
			}
		}()
	}
	return nil
}

// silent opens n streams on c that say nothing (odd ones) or only the
// multistream header (even ones), and leaves them open.
func (f *flood) silent(ctx context.Context, c *rawConn, n int) error {
	header := wire.AppendMessage(nil, wire.ProtocolID)
	for i := range n {
		s, err := c.OpenStream(ctx)
		if err != nil {
			return err
		}
		f.opened.Add(1)
		if i%2 == 0 {
			if _, err := s.Write(header); err != nil && !isRemoteReset(err) {
				return err
			}
		}
	}
	return nil
}

func isRemoteReset(err error) bool {
	var se *mux.StreamError
	return errors.As(err, &se) && se.Remote
}

// dialAttackers connects one fresh raw peer per connection, connection i
// from attackerIP(i), and closes them at the end of the test.
func dialAttackers(t *testing.T, d *daemon, n int, answer func(p *rawPeer) []byte) []*rawConn {
	t.Helper()
	conns := make([]*rawConn, n)
	peers := make([]*rawPeer, n)
	for i := range peers {
		peers[i] = newRawPeer(t)
		if answer != nil {
			peers[i].answer = answer(peers[i])
		}
	}
	err := forEach(n, identifyPar, func(i int) error {
		c, err := peers[i].dial(context.Background(), d, attackerIP(i))
		if err != nil {
			return fmt.Errorf("attacker %d from %v: %w", i, attackerIP(i), err)
		}
		conns[i] = c
		return nil
	})
	t.Cleanup(func() { closeAll(conns) })
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

func closeAll(conns []*rawConn) {
	forEach(len(conns), len(conns), func(i int) error {
		if conns[i] != nil {
			conns[i].close()
		}
		return nil
	})
}

// attackCtx bounds the opening of an attack's streams.
func attackCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// unreadBound is the most unread data conns connections of streams
// streams each can make the daemon hold, before MaxStreamMemory: yamux
// lets every accepted stream send 256 KiB before the daemon reads.
func unreadBound(l node.Limits, conns, streams int) int64 {
	return int64(conns) * int64(min(streams, l.MaxInboundStreams)) * mux.InitialWindow
}

// TestStreamMemoryBudget: 2 connections each open 255 ping streams that
// write pings continuously and never read the echoes. What the daemon
// holds is MaxStreamMemory, plus BudgetFree per stream outside it, plus
// as much again in garbage the collector has not reached (GOGC 100), so
// its RSS may grow by at most twice that and 4 MiB (stacks, runtime);
// with a MemoryLimit (iot) it stays under the limit; where the attack could
// hold more than MaxStreamMemory or open more than MaxInboundStreams, one
// of those limits must have fired; and a legitimate peer is served.
func TestStreamMemoryBudget(t *testing.T) {
	const conns = 2
	streams := raceScaled(255)
	forPresets(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "stream-memory", preset: preset, base: base}
		ctx := attackCtx(t)
		cs := dialAttackers(t, d, conns, nil)
		s := d.sample()
		during := startLegitLoop(d, "tcp", legitTimeout)
		var fl flood
		for _, c := range cs {
			if err := fl.pings(ctx, c, streams, nil); err != nil {
				t.Fatal(err)
			}
		}
		runAttack()
		ok, fail, slowest, legitErr := during.Stop()
		f.peak = s.Stop()
		st := d.stats(t)
		f.fired = fired(st0.Limits, st.Limits)
		closeAll(cs)
		fl.wg.Wait()
		after := d.waitStats(t, 20*time.Second, "stream memory given back", func(st daemonStats) bool {
			return st.Conns == 0 && st.Usage.StreamMemory == 0 && st.Usage.Streams == 0
		})
		f.after = point{rss: d.rss(t), heap: after.HeapInuse, goroutines: after.Goroutines}
		afterLegit := legitNow(d, "tcp", legitTimeout, "after")

		l := d.limits
		demand := unreadBound(l, conns, streams)
		f.note("%d conns x %d ping streams: wrote %.1f MiB, %d streams reset by the daemon", conns, streams, mb(uint64(fl.written.Load())), fl.reset.Load())
		f.note("StreamMemory peak %.1f MiB of %.0f (the attack could hold %.0f)", mb(uint64(s.peakUsage.memory)), mb(uint64(l.MaxStreamMemory)), mb(uint64(demand)))
		f.note("legit during: %d ok, %d failed, slowest %v; %v", ok, fail, slowest.Round(time.Millisecond), afterLegit)
		logFigures(t, f)
		afterLegit.check(t)

		held := uint64(l.MaxStreamMemory) + uint64(min(conns*streams, conns*l.MaxInboundStreams, l.MaxStreams))*mux.BudgetFree
		if g, budget := growth(f.peak.rss, base.rss), 2*held+4*mib; g > budget {
			t.Errorf("RSS grew by %.1f MiB, more than 2 × (MaxStreamMemory + BudgetFree per stream) + 4 MiB = %.0f MiB", mb(g), mb(budget))
		}
		if lim := uint64(l.MemoryLimit); lim > 0 && f.peak.rss > lim {
			t.Errorf("RSS peaked at %.1f MiB, above MemoryLimit %.0f MiB", mb(f.peak.rss), mb(lim))
		}
		if s.peakUsage.memory > l.MaxStreamMemory {
			t.Errorf("StreamMemory reached %d, above MaxStreamMemory %d", s.peakUsage.memory, l.MaxStreamMemory)
		}
		if demand > l.MaxStreamMemory || streams > l.MaxInboundStreams {
			if f.fired[node.LimitStreamMemory]+f.fired[node.LimitStreams] == 0 {
				t.Errorf("neither %s nor %s fired, though the attack exceeds them", node.LimitStreamMemory, node.LimitStreams)
			}
		}
		if fail > 0 || ok == 0 {
			t.Errorf("legit peer during the attack: %d ok, %d failed; first error: %v", ok, fail, legitErr)
		}
	})
}

// TestSilentStreams: 8 connections each open 256 streams (or
// MaxInboundStreams + 8 if more) that say nothing or only the multistream
// header. Each stream the daemon accepts holds a goroutine until the 10 s
// negotiation timeout, so its goroutines may grow by at most MaxStreams
// plus a few hundred; once half of MaxStreams is taken, a connection may
// have only MaxNegotiatingStreams negotiating, so the silent streams hold
// about half; limit counters must fire; a legitimate peer is served.
func TestSilentStreams(t *testing.T) {
	const conns = 8
	forPresets(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		l := d.limits
		streams := max(256, l.MaxInboundStreams+8)
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "silent-streams", preset: preset, base: base}
		ctx := attackCtx(t)
		cs := dialAttackers(t, d, conns, nil)
		s := d.sample()
		var fl flood
		for _, c := range cs {
			if err := fl.silent(ctx, c, streams); err != nil {
				t.Fatal(err)
			}
		}
		want := min(conns*l.MaxInboundStreams, l.MaxStreams/2)
		held := d.waitStats(t, 10*time.Second, "daemon holding the silent streams", func(st daemonStats) bool {
			return st.Usage.Streams >= want
		})
		during := legitNow(d, "tcp", legitTimeout, "during")
		f.peak = s.Stop()
		f.peak.goroutines = max(f.peak.goroutines, held.Goroutines)
		st := d.stats(t)
		f.fired = fired(st0.Limits, st.Limits)
		closeAll(cs)
		after := d.waitStats(t, 20*time.Second, "silent streams given up", func(st daemonStats) bool {
			return st.Conns == 0 && st.Usage.Streams == 0
		})
		f.after = point{rss: d.rss(t), heap: after.HeapInuse, goroutines: after.Goroutines}
		afterLegit := legitNow(d, "tcp", legitTimeout, "after")
		f.note("%d conns x %d silent streams; daemon served %d at once (MaxInboundStreams %d, MaxStreams %d)", conns, streams, held.Usage.Streams, l.MaxInboundStreams, l.MaxStreams)
		f.note("%v; %v", during, afterLegit)
		logFigures(t, f)
		during.check(t)
		afterLegit.check(t)

		if bound := base.goroutines + l.MaxStreams + 300; f.peak.goroutines > bound {
			t.Errorf("goroutines peaked at %d, above baseline + MaxStreams + 300 = %d", f.peak.goroutines, bound)
		}
		if s.peakUsage.streams > l.MaxStreams {
			t.Errorf("daemon served %d streams at once, above MaxStreams %d", s.peakUsage.streams, l.MaxStreams)
		}
		if f.fired[node.LimitStreams]+f.fired[node.LimitNodeStreams]+f.fired[node.LimitNegotiating] == 0 {
			t.Errorf("none of %s, %s and %s fired", node.LimitStreams, node.LimitNodeStreams, node.LimitNegotiating)
		}
		if half := l.MaxStreams / 2; conns*l.MaxInboundStreams > half && s.peakUsage.streams > half+conns*l.MaxNegotiatingStreams {
			t.Errorf("silent streams held %d at once, above MaxStreams/2 + conns × MaxNegotiatingStreams = %d",
				s.peakUsage.streams, half+conns*l.MaxNegotiatingStreams)
		}
	})
}

// TestConnsPerIP: one address, 127.0.0.2, opens connections with fresh
// peer IDs; the daemon keeps at most MaxInboundConnsPerIP of them, and a
// legitimate peer from 127.0.0.1 still connects.
func TestConnsPerIP(t *testing.T) {
	forPresets(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		l := d.limits
		n := l.MaxInboundConnsPerIP + 4
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "conns-per-ip", preset: preset, base: base}
		s := d.sample()
		var conns []*rawConn
		t.Cleanup(func() { closeAll(conns) })
		for range n {
			c, err := newRawPeer(t).dial(context.Background(), d, attackerIP(0))
			if err != nil {
				t.Fatalf("connection %d from %v: %v", len(conns), attackerIP(0), err)
			}
			conns = append(conns, c)
		}
		st := d.waitStats(t, 10*time.Second, "daemon refusing connections past the per-IP limit", func(st daemonStats) bool {
			return st.Limits[node.LimitConnsPerIP]-st0.Limits[node.LimitConnsPerIP] >= uint64(n-l.MaxInboundConnsPerIP)
		})
		during := legitNow(d, "tcp", legitTimeout, "during")
		open := 0
		for _, c := range conns {
			select {
			case <-c.Done():
			default:
				open++
			}
		}
		f.peak = s.Stop()
		f.fired = fired(st0.Limits, st.Limits)
		closeAll(conns)
		after := d.waitStats(t, 10*time.Second, "attackers gone", func(st daemonStats) bool { return st.Conns == 0 })
		f.after = point{rss: d.rss(t), heap: after.HeapInuse, goroutines: after.Goroutines}
		f.note("%d conns from one IP: daemon kept %d inbound (MaxInboundConnsPerIP %d), %d still open on our side", n, st.Usage.InboundConns, l.MaxInboundConnsPerIP, open)
		f.note("%v", during)
		logFigures(t, f)
		during.check(t)
		if st.Usage.InboundConns > l.MaxInboundConnsPerIP {
			t.Errorf("daemon holds %d inbound connections from one IP, limit %d", st.Usage.InboundConns, l.MaxInboundConnsPerIP)
		}
		if open > l.MaxInboundConnsPerIP {
			t.Errorf("%d connections from one IP still open, limit %d", open, l.MaxInboundConnsPerIP)
		}
	})
}

// legitHold is a legitimate peer connected before an attack, pinging on
// its connection all through it.
type legitHold struct {
	l    *legit
	stop chan struct{}
	done chan struct{}

	ok, fail int
	slowest  time.Duration
	firstErr error
}

func holdLegit(t *testing.T, d *daemon) *legitHold {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), legitTimeout)
	defer cancel()
	l, err := connectLegit(ctx, d, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	h := &legitHold{l: l, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), legitTimeout)
			start := time.Now()
			_, err := l.ping(ctx)
			cancel()
			if err != nil {
				h.fail++
				if h.firstErr == nil {
					h.firstErr = err
				}
			} else {
				h.ok++
				h.slowest = max(h.slowest, time.Since(start))
			}
			select {
			case <-h.stop:
				return
			case <-time.After(legitInterval): // the peer's ping interval, not a synchronisation
			}
		}
	}()
	return h
}

func (h *legitHold) Stop() {
	close(h.stop)
	<-h.done
	h.l.close()
}

// The combined attack's share of each connection's streams: within the
// iot preset's 64 per connection, with some over.
const (
	worstPings    = 24
	worstSilent   = 24
	worstHalfOpen = 20
	worstAddrs    = 30
	worstProtos   = 1000
)

// TestWorstOfAll: 64 connections from 127.0.0.2–127.0.0.9 each do the
// worst of the above at once: an identify answer of the largest
// addresses and 1,000 junk protocol IDs, ping streams that never read,
// silent streams and identify streams left half-closed. With the iot
// preset, the daemon's RSS must stay under its MemoryLimit (32 MiB) plus
// a small margin; on any preset a legitimate peer connected before the
// attack is served all through it, one connecting during it too where
// MaxInboundConns leaves room, and one connecting after it.
func TestWorstOfAll(t *testing.T) {
	const conns = 64
	// What RSS may exceed MemoryLimit by: the Go runtime's soft limit
	// covers the memory it maps, not the binary's text and data, which
	// the kernel counts in RSS too (about 7 MiB of the daemon's 11.5 MiB
	// at rest).
	const memoryLimitMargin = 8 * mib
	forPresets(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		l := d.limits
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "worst-of-all", preset: preset, base: base}
		hold := holdLegit(t, d)
		ctx := attackCtx(t)
		s := d.sample()
		cs := dialAttackers(t, d, conns, func(p *rawPeer) []byte {
			var addrs [][]byte
			for k := range worstAddrs {
				addrs = append(addrs, bigAddr(k))
			}
			protos := make([]string, worstProtos)
			for k := range protos {
				id := p.id.String()
				protos[k] = fmt.Sprintf("/junk/%s/%04d", id[len(id)-8:], k)
			}
			return identifyFrames(t, p.key, addrs, protos)
		})
		// Every connection opens its ping streams, silent streams and
		// half-closed ones in turn; the pings start flowing once all are
		// open, so that their load on the daemon does not slow the rest.
		var fl flood
		var halfOpen atomic.Int64
		start := make(chan struct{})
		forEach(len(cs), 8, func(i int) error {
			c := cs[i]
			select {
			case <-c.Done(): // refused by a connection limit
				return nil
			default:
			}
			// Errors only mean that the daemon closed the connection.
			if fl.pings(ctx, c, raceScaled(worstPings), start) == nil && fl.silent(ctx, c, worstSilent) == nil {
				halfOpen.Add(int64(openHalfClosed(ctx, c, worstHalfOpen)))
			}
			return nil
		})
		close(start)
		newDuring, newErr := tryLegit(d, "tcp", legitTimeout)
		runAttack()
		f.peak = s.Stop()
		hold.Stop()
		st := d.stats(t)
		f.fired = fired(st0.Limits, st.Limits)
		closeAll(cs)
		fl.wg.Wait()
		after := d.waitStats(t, 20*time.Second, "attack over", func(st daemonStats) bool {
			return st.Conns == 0 && st.Usage.Streams == 0 && st.Usage.StreamMemory == 0
		})
		f.after = point{rss: d.rss(t), heap: after.HeapInuse, goroutines: after.Goroutines}
		afterLegit := legitNow(d, "tcp", legitTimeout, "after")

		f.note("%d conns x (%d ping, %d silent, %d half-closed streams, %d addrs + %d protocols in identify): %d streams, %.1f MiB written, %d half-closed, %d reset",
			conns, raceScaled(worstPings), worstSilent, worstHalfOpen, worstAddrs, worstProtos, fl.opened.Load(), mb(uint64(fl.written.Load())), halfOpen.Load(), fl.reset.Load())
		f.note("peak conns %d streams %d StreamMemory %.1f MiB", s.peakUsage.conns, s.peakUsage.streams, mb(uint64(s.peakUsage.memory)))
		if l.MemoryLimit > 0 {
			f.note("peak RSS %.1f MiB vs MemoryLimit %.0f MiB: margin used %+.1f MiB", mb(f.peak.rss), mb(uint64(l.MemoryLimit)), mbDelta(f.peak.rss, uint64(l.MemoryLimit)))
		}
		f.note("held legit peer: %d pings ok, %d failed, slowest %v", hold.ok, hold.fail, hold.slowest.Round(time.Millisecond))
		if newErr != nil {
			f.note("new legit peer during: refused (%v)", shortErr(newErr))
		} else {
			f.note("new legit peer during: %v", newDuring.Round(time.Millisecond))
		}
		f.note("%v", afterLegit)
		logFigures(t, f)
		afterLegit.check(t)

		if l.MemoryLimit > 0 && f.peak.rss > uint64(l.MemoryLimit)+memoryLimitMargin {
			t.Errorf("RSS peaked at %.1f MiB, above MemoryLimit %.0f MiB + %.0f MiB", mb(f.peak.rss), mb(uint64(l.MemoryLimit)), mb(memoryLimitMargin))
		}
		// The held peer and this one fit under MaxInboundConns beside the
		// attack only on presets that have room for more than it.
		if newErr != nil && conns+2 <= l.MaxInboundConns {
			t.Errorf("new legit peer during the attack: %v", newErr)
		}
		if hold.fail > 0 || hold.ok == 0 {
			t.Errorf("legit peer connected before the attack: %d pings ok, %d failed; first error: %v", hold.ok, hold.fail, hold.firstErr)
		}
		if s.peakUsage.memory > l.MaxStreamMemory {
			t.Errorf("StreamMemory reached %d, above MaxStreamMemory %d", s.peakUsage.memory, l.MaxStreamMemory)
		}
		if s.peakUsage.streams > l.MaxStreams {
			t.Errorf("daemon served %d streams at once, above MaxStreams %d", s.peakUsage.streams, l.MaxStreams)
		}
	})
}

// shortErr is the last part of a long wrapped error.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i < 160 {
		return s[i+2:]
	}
	return s
}
