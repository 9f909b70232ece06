package abuse

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// What peers who leave may leave behind in the daemon (the hardening
// issue's figure): their peerstore entries, addresses and protocol IDs
// are bounded by the preset, so RSS after they left may be at most this
// above the baseline.
const leftBehindBudget = 2 * mib

const (
	identifyPeers     = 64
	addrsPerPeer      = 70
	overlongPeers     = 16
	protocolsPerPeer  = 1000
	identifyPar       = 8 // attackers at once, one per source address
	identifyTimeout   = 15 * time.Second
	leftBehindTimeout = 10 * time.Second
)

// bigAddr is the largest address the daemon accepts, distinct for each i:
// ma.MaxComponents components in ma.MaxAddrLen bytes, /ip4/198.51.x.y,
// then 30 /ipcidr components (2 bytes on the wire, a 32-byte component
// once parsed) and a /dns name filling the rest.
func bigAddr(i int) []byte {
	b := []byte{byte(ma.P_IP4), 198, 51, byte(i >> 8), byte(i)}
	for k := range ma.MaxComponents - 2 {
		b = append(b, byte(ma.P_IPCIDR), byte(k))
	}
	name := ma.MaxAddrLen - len(b) - 1 - 2 // the /dns code, a 2-byte length
	b = append(b, byte(ma.P_DNS))
	b = wire.AppendUvarint(b, uint64(name))
	return append(b, bytes.Repeat([]byte{'a'}, name)...)
}

// overlongAddr is an address just past a limit, distinct for each i:
// ma.MaxComponents+1 components; hundreds of /ipcidr components (within
// ma.MaxAddrLen bytes, far beyond ma.MaxComponents); or more than
// ma.MaxAddrLen bytes.
func overlongAddr(i int) []byte {
	b := []byte{byte(ma.P_IP4), 198, 51, byte(i >> 8), byte(i)}
	switch i % 3 {
	case 0:
		for k := range ma.MaxComponents {
			b = append(b, byte(ma.P_IPCIDR), byte(k))
		}
	case 1:
		for k := range (ma.MaxAddrLen - len(b)) / 2 {
			b = append(b, byte(ma.P_IPCIDR), byte(k))
		}
	default:
		name := ma.MaxAddrLen + 64
		b = append(b, byte(ma.P_DNS))
		b = wire.AppendUvarint(b, uint64(name))
		b = append(b, bytes.Repeat([]byte{'a'}, name)...)
	}
	return b
}

// identifyFlood connects each attacker from its source address, lets
// the daemon read its identify answer, checks the connection still
// serves a ping (the answer did no harm), and leaves; identifyPar at a
// time.
func identifyFlood(t *testing.T, d *daemon, peers []*rawPeer) {
	t.Helper()
	err := forEach(len(peers), identifyPar, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), identifyTimeout)
		defer cancel()
		c, err := peers[i].dial(ctx, d, attackerIP(i))
		if err != nil {
			return fmt.Errorf("attacker %d: %w", i, err)
		}
		defer c.close()
		if err := c.waitIdentified(ctx); err != nil {
			return fmt.Errorf("attacker %d: %w", i, err)
		}
		if err := c.pingOnce(ctx); err != nil {
			return fmt.Errorf("attacker %d: ping after identify: %w", i, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\ndaemon stderr:\n%s", err, d.stderr)
	}
}

// leftBehind runs an identify flood by peers on a fresh daemon and
// checks what they leave behind once gone.
func leftBehind(t *testing.T, attack, preset string, peers []*rawPeer, note string) {
	t.Helper()
	d := startDaemon(t, daemonConfig{preset: preset})
	d.warmUp(t)
	base, st0 := d.baseline(t)
	f := &figures{attack: attack, preset: preset, base: base}
	s := d.sample()
	during := startLegitLoop(d, "tcp", legitTimeout)
	identifyFlood(t, d, peers)
	ok, fail, slowest, legitErr := during.Stop()
	f.peak = s.Stop()
	d.waitStats(t, 10*time.Second, "attackers gone", func(st daemonStats) bool { return st.Conns == 0 })
	after, took, settled := d.settle(t, base, leftBehindBudget+runtimeKeeps, 20, leftBehindTimeout)
	f.after = after
	st := d.stats(t)
	f.fired = fired(st0.Limits, st.Limits)
	afterLegit := legitNow(d, "tcp", legitTimeout, "after")
	f.note("%s", note)
	f.note("after: RSS within %.1f MiB (budget + runtime) in %v: %v", mb(leftBehindBudget+runtimeKeeps), took.Round(100*time.Millisecond), settled)
	f.note("legit during: %d ok, %d failed, slowest %v; %v", ok, fail, slowest.Round(time.Millisecond), afterLegit)
	logFigures(t, f)
	afterLegit.check(t)
	if !settled {
		t.Errorf("RSS %.1f MiB after the attackers left, %.1f MiB above the baseline (budget %.0f MiB and %.1f the runtime keeps, waited %v)",
			mb(after.rss), mbDelta(after.rss, base.rss), mb(leftBehindBudget), mb(runtimeKeeps), leftBehindTimeout)
	}
	checkHeapAfter(t, d, base, leftBehindBudget)
	if fail > 0 || ok == 0 {
		t.Errorf("legit peer during %s: %d ok, %d failed; first error: %v", attack, ok, fail, legitErr)
	}
}

// TestPeerstoreAmplification: 64 throwaway peers each advertise 70 of the
// largest addresses the daemon accepts (32 components in 1 KiB: parsed,
// each would cost several times its wire size) in identify, and 16 more
// advertise addresses just past the component and length limits; all
// leave. Their connections must survive identify, and RSS after they
// left may be at most 2 MiB above the baseline.
func TestPeerstoreAmplification(t *testing.T) {
	for i := range 3 {
		if _, err := ma.NewMultiaddrBytes(bigAddr(i)); err != nil {
			t.Fatalf("bigAddr(%d) is not accepted: %v", i, err)
		}
		if _, err := ma.NewMultiaddrBytes(overlongAddr(i)); err == nil {
			t.Fatalf("overlongAddr(%d) is accepted: it tests nothing", i)
		}
	}
	forPresetsParallel(t, func(t *testing.T, preset string) {
		var peers []*rawPeer
		for i := range identifyPeers + overlongPeers {
			p := newRawPeer(t)
			var addrs [][]byte
			for k := range addrsPerPeer {
				if i < identifyPeers {
					addrs = append(addrs, bigAddr(i*addrsPerPeer+k))
				} else {
					addrs = append(addrs, overlongAddr(i*addrsPerPeer+k))
				}
			}
			p.answer = identifyFrames(t, p.key, addrs[:fitAddrs(addrs)], nil)
			peers = append(peers, p)
		}
		leftBehind(t, "peerstore-amplification", preset, peers,
			fmt.Sprintf("%d peers x %d addrs of %d B/%d components, %d peers of over-long addrs", identifyPeers, fitAddrs(nil), len(bigAddr(0)), ma.MaxComponents, overlongPeers))
	})
}

// fitAddrs is how many of addrs (all about 1 KiB) fit in one identify
// answer; with nil, how many ~1 KiB addresses fit.
func fitAddrs(addrs [][]byte) int {
	const per = identify.MaxMessageSize / (ma.MaxAddrLen + 8)
	n := per * identify.MaxMessages
	if addrs != nil {
		n = min(n, len(addrs))
	}
	return n
}

// TestInternedProtocolIDs: 64 peers each advertise 1,000 distinct junk
// protocol IDs in identify and leave; RSS after they left may be at most
// 2 MiB above the baseline.
func TestInternedProtocolIDs(t *testing.T) {
	forPresetsParallel(t, func(t *testing.T, preset string) {
		var peers []*rawPeer
		for i := range identifyPeers {
			p := newRawPeer(t)
			protos := make([]string, protocolsPerPeer)
			for k := range protos {
				protos[k] = fmt.Sprintf("/junk/%02d/%04d/%s", i, k, "padding-padding-padding")
			}
			p.answer = identifyFrames(t, p.key, nil, protos)
			peers = append(peers, p)
		}
		leftBehind(t, "interned-protocol-ids", preset, peers,
			fmt.Sprintf("%d peers x %d protocol IDs of %d B", identifyPeers, protocolsPerPeer, len(fmt.Sprintf("/junk/%02d/%04d/%s", 0, 0, "padding-padding-padding"))))
	})
}
