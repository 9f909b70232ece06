package main

import (
	"fmt"
	"strings"
)

// Results is everything one run measured; it is what -json writes.
type Results struct {
	Date     string        `json:"date"` // UTC, RFC 3339
	Go       string        `json:"go"`
	GoLibp2p string        `json:"go_libp2p"`
	QuicGo   string        `json:"quic_go"` // linked by all stacks' programs in this module
	OS       string        `json:"os"`
	Arch     string        `json:"arch"`
	CPUs     int           `json:"cpus"`
	CPU      string        `json:"cpu"`
	LoadAvg  [2]string     `json:"loadavg"` // /proc/loadavg (1, 5, 15 min) at the start and at the end
	Quick    bool          `json:"quick"`
	Seconds  float64       `json:"seconds"` // the run's duration
	Params   Params        `json:"params"`
	Sizes    []SizeResult  `json:"sizes"`
	Stacks   []StackResult `json:"stacks"` // mote, go-libp2p, then quic-go alone (unless -quicgo=false)
	Notes    []string      `json:"notes,omitempty"`
}

// Params are the run's settings.
type Params struct {
	Conns       []int   `json:"conns"`
	Iters       int     `json:"iters"`
	Bytes       int64   `json:"bytes"`
	RateDialers int     `json:"rate_dialers"`
	RateSeconds float64 `json:"rate_seconds"`
	IdleSeconds float64 `json:"idle_seconds"`
}

// SizeResult is the stripped size of the programs for one architecture,
// in bytes.
type SizeResult struct {
	Arch       string `json:"arch"`
	MoteDaemon int64  `json:"mote_daemon"` // cmd/mote
	MoteMin    int64  `json:"mote_min"`    // bench/cmd/motemin
	Libp2pMin  int64  `json:"libp2p_min"`  // bench/cmd/minhost
}

// StackResult is one stack's figures. quic-go alone has QUIC figures only:
// no idle host and no accept rate, which are then left out of the JSON.
type StackResult struct {
	Name       string             `json:"name"`
	Idle       IdleResult         `json:"idle,omitzero"`
	Conns      []ConnResult       `json:"conns"`
	Latency    []LatencyResult    `json:"latency"`
	Throughput []ThroughputResult `json:"throughput"`
	Rate       RateResult         `json:"rate,omitzero"`
	// IoT is mote's listener with the iot preset (its connection caps
	// lifted) holding -iot-conns idle connections, over TCP and QUIC.
	IoT []ConnResult `json:"iot,omitempty"`
	// Daemon is mote's daemon (`mote daemon --preset iot`, TCP and QUIC
	// listening on loopback) after the idle wait.
	Daemon IdleResult `json:"daemon,omitzero"`
	// ClassicLatency is mote's dial → first stream over QUIC with
	// ClassicKeyExchange (X25519 alone) on both ends.
	ClassicLatency []LatencyResult `json:"latency_classic,omitempty"`
}

// IdleResult is the minimal host after the idle wait.
type IdleResult struct {
	RSS        int64 `json:"rss"`        // bytes
	HeapInuse  int64 `json:"heap_inuse"` // bytes
	Goroutines int   `json:"goroutines"`
}

// ConnResult is the listener's cost of N idle connections.
type ConnResult struct {
	Transport         string  `json:"transport"`
	N                 int     `json:"n"`
	BaseRSS           int64   `json:"base_rss"` // bytes, before the connections
	RSS               int64   `json:"rss"`      // bytes, with them
	RSSPerConn        float64 `json:"rss_per_conn"`
	HeapPerConn       float64 `json:"heap_per_conn"`
	StackPerConn      float64 `json:"stack_per_conn"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
}

// LatencyResult is the dial → first stream round trip.
type LatencyResult struct {
	Transport string  `json:"transport"`
	Iters     int     `json:"iters"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// ThroughputResult is one stream's throughput.
type ThroughputResult struct {
	Transport string    `json:"transport"`
	Bytes     int64     `json:"bytes"`    // per run
	MBps      float64   `json:"mb_per_s"` // 10⁶ B/s, median of Runs
	Runs      []float64 `json:"runs_mb_per_s"`
}

// RateResult is the accept rate under concurrent dialers.
type RateResult struct {
	Transport    string  `json:"transport"`
	Dialers      int     `json:"dialers"`
	Seconds      float64 `json:"seconds"`
	Accepted     int64   `json:"accepted"`
	PerSec       float64 `json:"per_s"`
	CPUMsPerConn float64 `json:"listener_cpu_ms_per_conn"`
}

// stack is the named stack's results, or an empty one if the run has none.
func (r *Results) stack(name string) *StackResult {
	for i := range r.Stacks {
		if r.Stacks[i].Name == name {
			return &r.Stacks[i]
		}
	}
	return &StackResult{Name: name}
}

// conn is the stack's figures for n connections over tr, or zero ones.
func (s *StackResult) conn(tr string, n int) ConnResult {
	for _, c := range s.Conns {
		if c.Transport == tr && c.N == n {
			return c
		}
	}
	return ConnResult{}
}

// latency is the stack's dial round trip over tr, or a zero one.
func (s *StackResult) latency(tr string) LatencyResult {
	for _, l := range s.Latency {
		if l.Transport == tr {
			return l
		}
	}
	return LatencyResult{}
}

// throughput is the stack's throughput over tr, or a zero one.
func (s *StackResult) throughput(tr string) ThroughputResult {
	for _, t := range s.Throughput {
		if t.Transport == tr {
			return t
		}
	}
	return ThroughputResult{}
}

var trName = map[string]string{"tcp": "TCP", "quic": "QUIC"}

// table renders the results as a markdown table: one row per figure,
// mote's value, go-libp2p's and mote's divided by go-libp2p's. If the
// results have quic-go alone, a second table follows with the QUIC
// figures of all three (see quicTable).
func (r *Results) table() string {
	var b strings.Builder
	m, l := r.stack(stackMote), r.stack(stackLibp2p)
	fmt.Fprintf(&b, "| Figure | mote | go-libp2p %s | mote ÷ go-libp2p |\n|---|---:|---:|---:|\n", r.GoLibp2p)
	row := func(name string, mv, lv float64, unit string, prec int) {
		ratio := "–"
		if lv != 0 {
			ratio = fmt.Sprintf("%.2f", mv/lv)
		}
		if unit != "" {
			unit = " " + unit
		}
		fmt.Fprintf(&b, "| %s | %.*f%s | %.*f%s | %s |\n", name, prec, mv, unit, prec, lv, unit, ratio)
	}
	const mib, kib = 1 << 20, 1 << 10
	for _, s := range r.Sizes {
		row("Binary size "+s.Arch+", minimal host (TCP + QUIC, identify, ping)", float64(s.MoteMin)/mib, float64(s.Libp2pMin)/mib, "MiB", 2)
	}
	for _, s := range r.Sizes {
		row("Binary size "+s.Arch+", mote daemon `cmd/mote` vs go-libp2p minimal host", float64(s.MoteDaemon)/mib, float64(s.Libp2pMin)/mib, "MiB", 2)
	}
	idle := fmt.Sprintf("Idle minimal host after %g s", r.Params.IdleSeconds)
	row(idle+": RSS", float64(m.Idle.RSS)/mib, float64(l.Idle.RSS)/mib, "MiB", 1)
	row(idle+": Go heap in use", float64(m.Idle.HeapInuse)/mib, float64(l.Idle.HeapInuse)/mib, "MiB", 2)
	row(idle+": goroutines", float64(m.Idle.Goroutines), float64(l.Idle.Goroutines), "", 0)
	for _, tr := range []string{"tcp", "quic"} {
		for _, n := range r.Params.Conns {
			mc, lc := m.conn(tr, n), l.conn(tr, n)
			pre := fmt.Sprintf("%s, %d idle connections, per connection at the listener: ", trName[tr], n)
			row(pre+"RSS", mc.RSSPerConn/kib, lc.RSSPerConn/kib, "KiB", 1)
			row(pre+"Go heap", mc.HeapPerConn/kib, lc.HeapPerConn/kib, "KiB", 1)
			row(pre+"goroutines", mc.GoroutinesPerConn, lc.GoroutinesPerConn, "", 2)
		}
	}
	for _, tr := range []string{"tcp", "quic"} {
		ml, ll := m.latency(tr), l.latency(tr)
		row(trName[tr]+", dial → first stream 1-byte echo, p50", ml.P50Ms, ll.P50Ms, "ms", 2)
		row(trName[tr]+", dial → first stream 1-byte echo, p99", ml.P99Ms, ll.P99Ms, "ms", 2)
	}
	for _, tr := range []string{"tcp", "quic"} {
		row(fmt.Sprintf("%s, one-stream throughput (%s, 64 KiB writes)", trName[tr], sizeName(r.Params.Bytes)),
			m.throughput(tr).MBps, l.throughput(tr).MBps, "MB/s", 0)
	}
	rate := fmt.Sprintf("TCP, %d dialers for %g s (connect, identify, close)", r.Params.RateDialers, r.Params.RateSeconds)
	row(rate+": connections accepted per second", m.Rate.PerSec, l.Rate.PerSec, "/s", 0)
	row(rate+": listener CPU per connection", m.Rate.CPUMsPerConn, l.Rate.CPUMsPerConn, "ms", 2)
	r.quicTable(&b)
	for _, c := range m.ClassicLatency {
		l := r.stack(stackLibp2p).latency(c.Transport)
		fmt.Fprintf(&b, "\nmote with `ClassicKeyExchange` on both ends (TLS key agreement with X25519 alone, no X25519MLKEM768), %s dial → first stream 1-byte echo: p50 %.2f ms (%.2f × go-libp2p's default), p99 %.2f ms.\n",
			trName[c.Transport], c.P50Ms, c.P50Ms/l.P50Ms, c.P99Ms)
	}
	if m.Daemon.RSS > 0 {
		build := "stripped, `CGO_ENABLED=0`"
		if r.Quick {
			build = "stripped, cgo as the toolchain defaults: a -quick run"
		}
		fmt.Fprintf(&b, "\nmote alone: `mote daemon --preset iot` (TCP and QUIC listening on loopback, %s) after %g s idle: VmRSS %.2f MiB, Go heap in use %.2f MiB, %d goroutines.\n",
			build, r.Params.IdleSeconds, float64(m.Daemon.RSS)/mib, float64(m.Daemon.HeapInuse)/mib, m.Daemon.Goroutines)
	}
	if len(m.IoT) > 0 {
		b.WriteString("\nmote alone, listener with the `iot` preset (its connection caps lifted, GOMEMLIMIT as the daemon sets it):\n\n")
		b.WriteString("| Idle connections | Listener VmRSS | before the first | per connection | goroutines per connection |\n|---|---|---|---|---|\n")
		for _, c := range m.IoT {
			fmt.Fprintf(&b, "| %s, %d | %.1f MiB | %.1f MiB | %.1f KiB | %.2f |\n",
				trName[c.Transport], c.N, float64(c.RSS)/mib, float64(c.BaseRSS)/mib, c.RSSPerConn/kib, c.GoroutinesPerConn)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// hasStack reports whether the results include the named stack.
func (r *Results) hasStack(name string) bool {
	for _, s := range r.Stacks {
		if s.Name == name {
			return true
		}
	}
	return false
}

// quicTable writes, if the results have quic-go alone, the QUIC figures of
// mote, go-libp2p and quic-go alone, with mote's divided by quic-go's and
// mote's minus quic-go's: mote's QUIC targets are stated against quic-go
// with the same settings (per idle connection, at most quic-go's cost plus
// 4 KiB; one-stream throughput, at least 0.95 × quic-go's).
func (r *Results) quicTable(b *strings.Builder) {
	if !r.hasStack(stackQuicGo) {
		return
	}
	m, l, q := r.stack(stackMote), r.stack(stackLibp2p), r.stack(stackQuicGo)
	fmt.Fprintf(b, "\nQUIC against quic-go %s alone (same quic.Config as mote, TLS 1.3 with self-signed certificates, no libp2p):\n\n", r.QuicGo)
	fmt.Fprintf(b, "| QUIC figure | mote | go-libp2p %s | quic-go alone | mote ÷ quic-go | mote − quic-go |\n|---|---:|---:|---:|---:|---:|\n", r.GoLibp2p)
	row := func(name string, mv, lv, qv float64, unit string, prec int) {
		ratio := "–"
		if qv != 0 {
			ratio = fmt.Sprintf("%.2f", mv/qv)
		}
		if unit != "" {
			unit = " " + unit
		}
		fmt.Fprintf(b, "| %s | %.*f%s | %.*f%s | %.*f%s | %s | %+.*f%s |\n",
			name, prec, mv, unit, prec, lv, unit, prec, qv, unit, ratio, prec, mv-qv, unit)
	}
	const kib = 1 << 10
	for _, n := range r.Params.Conns {
		mc, lc, qc := m.conn("quic", n), l.conn("quic", n), q.conn("quic", n)
		pre := fmt.Sprintf("%d idle connections, per connection at the listener: ", n)
		row(pre+"RSS", mc.RSSPerConn/kib, lc.RSSPerConn/kib, qc.RSSPerConn/kib, "KiB", 1)
		row(pre+"Go heap", mc.HeapPerConn/kib, lc.HeapPerConn/kib, qc.HeapPerConn/kib, "KiB", 1)
		row(pre+"goroutines", mc.GoroutinesPerConn, lc.GoroutinesPerConn, qc.GoroutinesPerConn, "", 2)
	}
	ml, ll, ql := m.latency("quic"), l.latency("quic"), q.latency("quic")
	row("Dial → first stream 1-byte echo, p50", ml.P50Ms, ll.P50Ms, ql.P50Ms, "ms", 2)
	row("Dial → first stream 1-byte echo, p99", ml.P99Ms, ll.P99Ms, ql.P99Ms, "ms", 2)
	row(fmt.Sprintf("One-stream throughput (%s, 64 KiB writes)", sizeName(r.Params.Bytes)),
		m.throughput("quic").MBps, l.throughput("quic").MBps, q.throughput("quic").MBps, "MB/s", 0)
}

// sizeName writes a byte count in GiB or MiB when it is a whole number of
// them.
func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}
