package abuse

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAcceptUnderLimits holds the daemon near its connection limits
// (MaxInboundConnsPerIP from each of 8 addresses, below
// MaxInboundConns), then out of file descriptors (RLIMIT_NOFILE lowered
// while silent connections use up the rest), and checks that it accepts
// a legitimate peer after each. That a listener survives accept errors is
// proven in transport/listener_accept_test.go; here, that the daemon's
// does and counts them (AcceptErrors).
func TestAcceptUnderLimits(t *testing.T) {
	forPresets(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		l := d.limits
		d.warmUp(t)
		base, st0 := d.baseline(t)
		f := &figures{attack: "accept-near-limits", preset: preset, base: base}

		// Near the connection limits: one slot left for the legit peer.
		n := min(8*l.MaxInboundConnsPerIP, l.MaxInboundConns-1)
		s := d.sample()
		cs := dialAttackers(t, d, n, nil)
		held := d.waitStats(t, 10*time.Second, "daemon holding the attack's connections", func(st daemonStats) bool {
			return st.Usage.InboundConns >= n
		})
		during := legitNow(d, "tcp", legitTimeout, "near the limits")
		f.peak = s.Stop()
		closeAll(cs)
		d.waitStats(t, 10*time.Second, "attack's connections gone", func(st daemonStats) bool { return st.Conns == 0 })
		afterConns := legitNow(d, "tcp", legitTimeout, "after they left")

		// Out of descriptors. This phase watches /proc only: the control
		// API's accept loop (cmd/mote/api.go) ends on its first accept
		// error, so asking it anything now would end it.
		fds, limit, restore := lowerNOFILE(t, d, 12)
		sc := &silentConns{}
		t.Cleanup(sc.close)
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		for i := range 3 * (limit - fds) {
			c, err := dialTCPFrom(ctx, attackerIP(i), d.tcp)
			if err != nil {
				cancel()
				t.Fatalf("silent connection %d: %v", i, err)
			}
			sc.conns = append(sc.conns, c)
		}
		cancel()
		deadline := time.Now().Add(10 * time.Second)
		for openFDs(t, d) < limit {
			if time.Now().After(deadline) {
				t.Fatalf("daemon never used its %d descriptors (has %d open)", limit, openFDs(t, d))
			}
			time.Sleep(10 * time.Millisecond) // polling
		}
		sc.close()
		restore()
		st := d.waitStats(t, 10*time.Second, "accept errors counted", func(st daemonStats) bool {
			return st.AcceptErrors > st0.AcceptErrors
		})
		afterFDs := legitNow(d, "tcp", legitTimeout, "after the descriptors came back")
		f.fired = fired(st0.Limits, st.Limits)
		after, _ := d.baseline(t)
		f.after = after

		f.note("%d conns held (per IP %d, MaxInboundConns %d): daemon had %d inbound; %v; %v",
			n, l.MaxInboundConnsPerIP, l.MaxInboundConns, held.Usage.InboundConns, during, afterConns)
		f.note("RLIMIT_NOFILE %d (%d in use): AcceptErrors %d; %v", limit, fds, st.AcceptErrors-st0.AcceptErrors, afterFDs)
		logFigures(t, f)
		during.check(t)
		afterConns.check(t)
		afterFDs.check(t)
		if held.Usage.InboundConns > l.MaxInboundConns {
			t.Errorf("daemon holds %d inbound connections, above MaxInboundConns %d", held.Usage.InboundConns, l.MaxInboundConns)
		}
	})
}

// openFDs counts the daemon's open file descriptors.
func openFDs(t *testing.T, d *daemon) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// lowerNOFILE lowers the daemon's soft RLIMIT_NOFILE to free descriptors
// more than it has open; restore puts the old limit back.
func lowerNOFILE(t *testing.T, d *daemon, free int) (fds, limit int, restore func()) {
	t.Helper()
	fds = openFDs(t, d)
	limit = fds + free
	var old unix.Rlimit
	if err := unix.Prlimit(d.pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	lower := unix.Rlimit{Cur: uint64(limit), Max: old.Max}
	if err := unix.Prlimit(d.pid, unix.RLIMIT_NOFILE, &lower, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	restored := false
	restore = func() {
		if !restored {
			restored = true
			if err := unix.Prlimit(d.pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
				t.Errorf("prlimit: %v", err)
			}
		}
	}
	t.Cleanup(restore)
	return fds, limit, restore
}
