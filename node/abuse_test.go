package node

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/mote-p2p/mote/transport"
)

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// iotVictim is a node on the iot preset with a well-behaved peer
// connected before any abuse starts.
func iotVictim(t *testing.T, mn *transport.MemNetwork) (victim, friend *Node, budget uint64) {
	t.Helper()
	l, err := Preset("iot")
	if err != nil {
		t.Fatal(err)
	}
	victim = newNode(t, mn, true, func(c *Config) { c.Limits = l })
	friend = newNode(t, mn, false)
	connect(t, testCtx(t), friend, victim)
	return victim, friend, uint64(l.MemoryLimit)
}

// stillServes checks that the victim answers its friend's ping.
func stillServes(t *testing.T, victim, friend *Node) {
	t.Helper()
	if _, err := friend.Ping(testCtx(t), victim.ID()); err != nil {
		t.Fatalf("the node stopped serving a well-behaved peer: %v", err)
	}
}

// TestAbuseConnectionFlood: far more peers than MaxInboundConns connect;
// the excess is refused and counted, memory stays within the iot budget
// (attackers included, as they share this process), and the node keeps
// serving.
func TestAbuseConnectionFlood(t *testing.T) {
	mn := transport.NewMemNetwork()
	victim, friend, budget := iotVictim(t, mn)
	base := heapInUse()
	ctx := testCtx(t)
	for range 2 * victim.Limits().MaxInboundConns {
		a := newNode(t, mn, false)
		a.Connect(ctx, victim.ID(), victim.Addrs()...) // refused ones fail or close
	}
	waitFor(t, func() bool { return victim.Counters()[LimitInboundConns] > 0 })
	if n := len(victim.Peers()); n > victim.Limits().MaxInboundConns {
		t.Errorf("%d peers connected, limit %d", n, victim.Limits().MaxInboundConns)
	}
	if grew := heapInUse() - min(base, heapInUse()); grew > budget {
		t.Errorf("heap grew by %d bytes, budget %d", grew, budget)
	}
	stillServes(t, victim, friend)
}

// TestAbuseStreamFlood: one peer opens streams far beyond
// MaxInboundStreams to a handler that never returns; the excess is reset,
// memory stays bounded, and the node keeps serving.
func TestAbuseStreamFlood(t *testing.T) {
	mn := transport.NewMemNetwork()
	victim, friend, budget := iotVictim(t, mn)
	release := make(chan struct{})
	defer close(release)
	victim.SetHandler("/hold", func(s *Stream) {
		<-release
		s.Reset()
	})
	attacker := newNode(t, mn, false)
	ctx := testCtx(t)
	connect(t, ctx, attacker, victim)
	base := heapInUse()
	var streams []*Stream
	for range 4 * victim.Limits().MaxInboundStreams {
		s, err := attacker.NewStream(ctx, victim.ID(), "/hold")
		if err != nil {
			continue
		}
		s.Write([]byte{1})
		streams = append(streams, s)
	}
	waitFor(t, func() bool { return victim.Counters()[LimitStreams] > 0 })
	if grew := heapInUse() - min(base, heapInUse()); grew > budget {
		t.Errorf("heap grew by %d bytes, budget %d", grew, budget)
	}
	stillServes(t, victim, friend)
	for _, s := range streams {
		s.Reset()
	}
}

// TestAbuseNeverReads: a peer opens streams to an echo service, writes
// and never reads. The echo writes stall on flow control instead of
// buffering: memory stays within the budget and the node keeps serving.
func TestAbuseNeverReads(t *testing.T) {
	mn := transport.NewMemNetwork()
	victim, friend, budget := iotVictim(t, mn)
	victim.SetHandler("/echo", func(s *Stream) {
		io.Copy(s, s)
		s.Reset()
	})
	// The attacker's own buffers share this process: give it small
	// windows so that what grows is mostly the victim's.
	attacker := newNode(t, mn, false, func(c *Config) { c.Limits = victim.Limits() })
	ctx := testCtx(t)
	connect(t, ctx, attacker, victim)
	base := heapInUse()
	chunk := make([]byte, 64<<10)
	done := make(chan struct{})
	var streams []*Stream
	for range 16 {
		s, err := attacker.NewStream(ctx, victim.ID(), "/echo")
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
		go func() {
			for {
				if _, err := s.Write(chunk); err != nil {
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	// Let the windows fill until the flow stalls: the victim's echo
	// blocks on the attacker's window, then the victim stops reading.
	// There is no event for "nothing moves", so watch the byte counter.
	last, still := uint64(0), 0
	waitFor(t, func() bool {
		in := victim.ProtocolBandwidth()["/echo"].In
		if in == last && in > 0 {
			still++
		} else {
			last, still = in, 0
		}
		time.Sleep(50 * time.Millisecond)
		return still >= 5
	})
	t.Logf("flow stalled after %d bytes", last)
	if grew := heapInUse() - min(base, heapInUse()); grew > budget {
		t.Errorf("heap grew by %d bytes, budget %d", grew, budget)
	}
	stillServes(t, victim, friend)
	close(done)
	for _, s := range streams {
		s.Reset()
	}
}
