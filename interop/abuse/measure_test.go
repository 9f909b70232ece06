package abuse

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/node"
)

const mib = 1 << 20

// runtimeKeeps is anonymous memory the Go runtime keeps after a burst
// and does not give back: the metadata of the heap spans it grew into,
// its stack and span caches. After the QUIC flood it is about 1.1 MiB
// with the daemon's heap already back below its baseline. The checks of
// what is left after an attack allow it in RSS on top of their budget,
// and hold the heap in use (after the daemon's own collection) to the
// budget alone.
const runtimeKeeps = 1536 << 10

// gcFloor is how far garbage alone may take the daemon's heap above
// base during a burst: the runtime's heap goal never falls below
// 4 MiB × GOGC/100 (its heapMinimum), so under the server preset's GOGC
// 100 a flood of short-lived packet buffers takes a 1.6 MiB heap to
// about 4 MiB before the first collection, none of it live. Checks of a
// peak allow it on top of their budget; checks after an attack do not.
func gcFloor(t *testing.T, preset string, base point) uint64 {
	t.Helper()
	l, err := node.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	gc := uint64(100) // the runtime's default, which presets without GCPercent keep
	if l.GCPercent > 0 {
		gc = uint64(l.GCPercent)
	}
	floor := 4 * mib * gc / 100
	return floor - min(floor, base.heap)
}

// checkHeapAfter fails t if the daemon's heap in use after an attack
// stays more than budget above its baseline for heapSettle: what is in
// use includes garbage until the daemon's next collection, which its
// memory janitor runs within 5 s of a burst.
func checkHeapAfter(t *testing.T, d *daemon, base point, budget uint64) {
	t.Helper()
	const heapSettle = 10 * time.Second
	deadline := time.Now().Add(heapSettle)
	for {
		st, err := d.tryStats()
		if err == nil && growth(st.HeapInuse, base.heap) <= budget {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("heap in use %.1f MiB %v after the attack, %.1f MiB above the baseline (budget %.0f MiB)",
				mb(st.HeapInuse), heapSettle, mb(growth(st.HeapInuse, base.heap)), mb(budget))
			return
		}
		time.Sleep(100 * time.Millisecond) // polling the daemon
	}
}

// point is the daemon's cost at one moment.
type point struct {
	rss        uint64
	heap       uint64 // the daemon's HeapInuse, from mote stats
	goroutines int
}

// figures are one attack's measurements on one preset, logged as one line
// (and gathered for the summary TestMain prints under -v).
type figures struct {
	attack, preset    string
	base, peak, after point
	fired             map[string]uint64 // limit counters that moved during the attack
	notes             []string
}

func (f *figures) note(format string, args ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

func (f *figures) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %-6s | RSS MiB base %5.1f peak %5.1f (%+5.1f) after %5.1f (%+5.1f) | heap MiB %4.1f / %5.1f / %4.1f | goroutines %4d / %5d / %4d | fired %s",
		f.attack, f.preset,
		mb(f.base.rss), mb(f.peak.rss), mbDelta(f.peak.rss, f.base.rss), mb(f.after.rss), mbDelta(f.after.rss, f.base.rss),
		mb(f.base.heap), mb(f.peak.heap), mb(f.after.heap),
		f.base.goroutines, f.peak.goroutines, f.after.goroutines, formatFired(f.fired))
	for _, n := range f.notes {
		b.WriteString(" | ")
		b.WriteString(n)
	}
	return b.String()
}

var allFigures struct {
	sync.Mutex
	list []*figures
}

// logFigures logs f and keeps it for the summary.
func logFigures(t *testing.T, f *figures) {
	t.Helper()
	t.Log(f.String())
	allFigures.Lock()
	allFigures.list = append(allFigures.list, f)
	allFigures.Unlock()
}

func printFigures(w io.Writer) {
	allFigures.Lock()
	defer allFigures.Unlock()
	if len(allFigures.list) == 0 {
		return
	}
	fmt.Fprintln(w, "abuse: figures (attack, preset | RSS | heap in use base/peak/after | goroutines base/peak/after | limits fired | notes)")
	for _, f := range allFigures.list {
		fmt.Fprintln(w, "  "+f.String())
	}
}

func mb(v uint64) float64 { return float64(v) / mib }

func mbDelta(a, b uint64) float64 { return (float64(a) - float64(b)) / mib }

// growth is how far a is above b, 0 if below.
func growth(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// fired is the counters of after that moved since before.
func fired(before, after map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64)
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func formatFired(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// baseline waits for the daemon to be idle (no connection, no stream
// being served) after a warm-up, and returns its cost then, with the
// stats it read.
func (d *daemon) baseline(t *testing.T) (point, daemonStats) {
	t.Helper()
	st := d.waitStats(t, 10*time.Second, "daemon idle before the attack", func(st daemonStats) bool {
		return st.Conns == 0 && st.Usage.Streams == 0 && st.Usage.StreamMemory == 0
	})
	return point{rss: d.rss(t), heap: st.HeapInuse, goroutines: st.Goroutines}, st
}

// warmUp has a legitimate peer connect over TCP and over QUIC and ping,
// so that the baseline includes what any first connection allocates.
func (d *daemon) warmUp(t *testing.T) {
	t.Helper()
	checkLegit(t, d, "tcp", legitTimeout, "warm-up")
	checkLegit(t, d, "quic", legitTimeout, "warm-up")
}

// sampler samples the daemon's RSS and `mote stats` every interval
// while an attack runs, keeping the peaks.
type sampler struct {
	d    *daemon
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	peak      point
	peakUsage struct {
		streams int
		memory  int64
		conns   int
	}
	last    daemonStats
	samples int
	errs    int
}

const sampleInterval = 100 * time.Millisecond

// sample starts a sampler; Stop ends it.
func (d *daemon) sample() *sampler {
	s := &sampler{d: d, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *sampler) run() {
	defer close(s.done)
	tick := time.NewTicker(sampleInterval)
	defer tick.Stop()
	for {
		s.once()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

func (s *sampler) once() {
	rss, err := procStatus(s.d.pid, rssField)
	st, serr := s.d.tryStats()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.peak.rss = max(s.peak.rss, rss)
	}
	if serr != nil {
		s.errs++
		return
	}
	s.samples++
	s.last = st
	s.peak.goroutines = max(s.peak.goroutines, st.Goroutines)
	s.peak.heap = max(s.peak.heap, st.HeapInuse)
	s.peakUsage.streams = max(s.peakUsage.streams, st.Usage.Streams)
	s.peakUsage.memory = max(s.peakUsage.memory, st.Usage.StreamMemory)
	s.peakUsage.conns = max(s.peakUsage.conns, st.Usage.InboundConns)
}

// Stop ends sampling and returns the peak, the kernel's high-water mark
// of RSS included when it could be reset at the start.
func (s *sampler) Stop() point {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// settle polls the daemon until its RSS is within rssSlack of base.rss
// and its goroutines within gSlack of base.goroutines, or timeout passes;
// it returns the last point and how long it took (timeout if never).
func (d *daemon) settle(t *testing.T, base point, rssSlack uint64, gSlack int, timeout time.Duration) (point, time.Duration, bool) {
	t.Helper()
	start := time.Now()
	for {
		st := d.stats(t)
		p := point{rss: d.rss(t), heap: st.HeapInuse, goroutines: st.Goroutines}
		if p.rss <= base.rss+rssSlack && p.goroutines <= base.goroutines+gSlack {
			return p, time.Since(start), true
		}
		if time.Since(start) > timeout {
			return p, time.Since(start), false
		}
		time.Sleep(100 * time.Millisecond) // polling
	}
}
