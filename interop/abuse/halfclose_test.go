package abuse

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/wire"
)

// openHalfClosed opens n identify streams on c, one after the other: the
// daemon writes its answer and closes its side, we read the answer to
// the end and never close ours. It returns how many the daemon answered;
// it reset the others.
func openHalfClosed(ctx context.Context, c *rawConn, n int) int {
	served := 0
	for range n {
		s, err := c.OpenStream(ctx)
		if err != nil {
			break
		}
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Write(wire.AppendSelect(nil, identify.ID)); err != nil {
			continue
		}
		if err := wire.ReadSelectResponse(s, identify.ID); err != nil {
			continue
		}
		if _, err := identify.ReadMessage(s); err == nil {
			served++
		}
		// Deliberately neither Close nor Reset: the daemon's side waits
		// for our FIN (mux CloseTimeout, 5 minutes).
	}
	return served
}

// pushIdentify sends an identify push on c and reports whether the
// daemon took it: it reads the message and closes its side (a refused
// push is reset).
func pushIdentify(ctx context.Context, c *rawConn, msg []byte) error {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write(append(wire.AppendSelect(nil, identify.PushID), msg...)); err != nil {
		return fmt.Errorf("write push: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	if err := wire.ReadSelectResponse(s, identify.PushID); err != nil {
		return fmt.Errorf("push negotiation: %w", err)
	}
	if n, err := io.Copy(io.Discard, s); err != nil || n != 0 {
		return fmt.Errorf("after push: read %d bytes, %v (want the daemon's close)", n, err)
	}
	return nil
}

// TestHalfClosedStreams: one connection opens identify streams, which the
// daemon answers and closes for writing, and never closes its side. The
// daemon keeps such streams until the peer's FIN or the mux's 5-minute
// CloseTimeout (not waited for here), so they must not pile up past
// MaxInboundStreams on a connection, nor hold a goroutine. They count as
// that peer's streams: its next stream is refused, and counted, while
// other connections are served (identify push on another works).
func TestHalfClosedStreams(t *testing.T) {
	forPresets(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		l := d.limits
		tries := 3 * l.MaxInboundStreams
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "half-closed-streams", preset: preset, base: base}
		ctx := attackCtx(t)
		s := d.sample()
		cs := dialAttackers(t, d, 2, nil)
		a, b := cs[0], cs[1]
		if err := a.waitIdentified(ctx); err != nil {
			t.Fatal(err)
		}
		served := openHalfClosed(ctx, a, tries)
		held := d.stats(t)
		pushA := pushIdentify(ctx, a, a.answer)
		pushB := pushIdentify(ctx, b, b.answer)
		pingA := a.pingOnce(ctx)
		f.peak = s.Stop()
		f.fired = fired(st0.Limits, held.Limits)
		during := legitNow(d, "tcp", legitTimeout, "during")
		closeAll(cs)
		after := d.waitStats(t, 10*time.Second, "attackers gone", func(st daemonStats) bool { return st.Conns == 0 })
		f.after = point{rss: d.rss(t), heap: after.HeapInuse, goroutines: after.Goroutines}
		f.note("identify streams left half-closed: %d of %d answered (MaxInboundStreams %d, mux limit %d); streams being served then %d, goroutines %d",
			served, tries, l.MaxInboundStreams, 2*l.MaxInboundStreams, held.Usage.Streams, held.Goroutines)
		f.note("then on that conn: push %v, ping %v; push on another conn: %v; %v", errOrOK(pushA), errOrOK(pingA), errOrOK(pushB), during)
		logFigures(t, f)
		during.check(t)

		if served > l.MaxInboundStreams {
			t.Errorf("daemon keeps %d identify streams left half-closed on one connection, above MaxInboundStreams %d (its mux's limit is %d, both directions together)",
				served, l.MaxInboundStreams, 2*l.MaxInboundStreams)
		}
		if served == tries {
			t.Errorf("daemon answered all %d identify streams left half-closed: they pile up without bound", tries)
		}
		if served == 0 {
			t.Errorf("daemon answered no identify stream: the attack proves nothing")
		}
		if held.Usage.Streams > 1 {
			t.Errorf("daemon still serves %d streams for half-closed ones (its handlers should have returned)", held.Usage.Streams)
		}
		if g := held.Goroutines - base.goroutines; g > 20 {
			t.Errorf("daemon holds %d goroutines more than at rest with %d half-closed streams", g, served)
		}
		if pushA == nil && served == l.MaxInboundStreams {
			t.Errorf("the peer holding MaxInboundStreams half-closed streams opened one more")
		}
		if f.fired[node.LimitStreams] == 0 {
			t.Errorf("%s did not fire, though the peer kept opening streams past it", node.LimitStreams)
		}
		if pushB != nil {
			t.Errorf("identify push on another connection after the attack: %v", pushB)
		}
	})
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return shortErr(err)
}
