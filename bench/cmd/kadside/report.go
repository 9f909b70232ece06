package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Results are one run's figures, as written by -json.
type Results struct {
	Date       string `json:"date"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	CPU        string `json:"cpu_model"`
	GOMAXPROCS int    `json:"gomaxprocs"` // of the measured servers
	GoLibp2p   string `json:"go_libp2p"`
	KadDHT     string `json:"go_libp2p_kad_dht"`
	// SelfExec: the measured servers were this executable, both stacks
	// linked (-self), not the tagged builds.
	SelfExec bool           `json:"self_exec"`
	Params   Params         `json:"params"`
	Network  NetworkResult  `json:"network"`
	Provides ProvideResult  `json:"provides"`
	Servers  []ServerResult `json:"servers"` // mote, go
	Clients  []ClientResult `json:"clients"` // mote, go
	Seconds  float64        `json:"seconds"`
	Notes    []string       `json:"notes,omitempty"`
}

// Params are the run's settings.
type Params struct {
	Nodes       int    `json:"nodes"`
	MoteServers int    `json:"mote_servers"`
	GoServers   int    `json:"go_servers"`
	Keys        int    `json:"keys"`
	Providers   int    `json:"providers"`
	Count       int    `json:"count"`
	Seed        uint64 `json:"seed"`
}

// NetworkResult describes the in-process nodes' routing tables once the
// network formed.
type NetworkResult struct {
	MoteTableMean   float64 `json:"mote_table_mean"`
	GoTableMean     float64 `json:"go_table_mean"`
	MoteClientTable int     `json:"mote_client_table"`
	GoClientTable   int     `json:"go_client_table"`
}

// ProvideResult counts the load phase's provides.
type ProvideResult struct {
	Records    int    `json:"records"`
	Failed     int    `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
}

// ServerResult is one measured server: once the network formed and after
// the load phase.
type ServerResult struct {
	Stack string `json:"stack"`
	// BaseRSS is the process's VmRSS before its node started.
	BaseRSS int64       `json:"base_rss"`
	Formed  ServerStats `json:"formed"`
	Loaded  ServerStats `json:"loaded"`
}

// ServerStats are a measured server's figures at one moment.
type ServerStats struct {
	RSS        int64  `json:"rss"`      // bytes, VmRSS after GC
	PeakRSS    int64  `json:"peak_rss"` // bytes, VmHWM: the most so far
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines int    `json:"goroutines"`
	CPUNs      int64  `json:"cpu_ns"` // user + system CPU time so far
	Table      int    `json:"table"`  // routing-table entries
}

func (s ServerStats) String() string {
	return fmt.Sprintf("RSS %s, heap %s, %d goroutines, %d peers in its table", mib(s.RSS), mib(int64(s.HeapInuse)), s.Goroutines, s.Table)
}

// lookupSample is one FindProviders.
type lookupSample struct {
	ns       int64
	requests int
	found    int  // providers found that provided the key
	all      bool // found every one
	err      error
}

// ClientResult summarises one client's lookups.
type ClientResult struct {
	Stack        string  `json:"stack"`
	Lookups      int     `json:"lookups"`
	Failed       int     `json:"failed"`    // ended with an error
	FoundAny     int     `json:"found_any"` // found at least one provider
	FoundAll     int     `json:"found_all"` // found every provider
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	RequestsP50  float64 `json:"requests_p50"`
	RequestsP90  float64 `json:"requests_p90"`
	RequestsMean float64 `json:"requests_mean"`
	FirstError   string  `json:"first_error,omitempty"`
	// The samples, in the order of the keys.
	LatencyNs []int64 `json:"latency_ns"`
	Requests  []int   `json:"requests"`
}

func clientResult(name string, samples []lookupSample) ClientResult {
	c := ClientResult{Stack: name, Lookups: len(samples)}
	total := 0
	for _, s := range samples {
		c.LatencyNs = append(c.LatencyNs, s.ns)
		c.Requests = append(c.Requests, s.requests)
		total += s.requests
		if s.err != nil {
			c.Failed++
			if c.FirstError == "" {
				c.FirstError = s.err.Error()
			}
		}
		if s.found > 0 {
			c.FoundAny++
		}
		if s.all {
			c.FoundAll++
		}
	}
	c.P50Ms = percentile(c.LatencyNs, 50) / 1e6
	c.P90Ms = percentile(c.LatencyNs, 90) / 1e6
	c.RequestsP50 = percentile(c.Requests, 50)
	c.RequestsP90 = percentile(c.Requests, 90)
	if len(samples) > 0 {
		c.RequestsMean = float64(total) / float64(len(samples))
	}
	return c
}

// percentile is the nearest-rank p-th percentile of v, 0 if v is empty.
func percentile[T int | int64](v []T, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return float64(s[min(max(i, 0), len(s)-1)])
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// The targets, as ratios mote ÷ go-libp2p-kad-dht.
const (
	targetServer = 1.0 / 3 // RSS and goroutines of a server: at most one third
	targetClient = 1.0     // FindProviders latency and messages: no worse
)

// table is the results as markdown: a heading line, the table and the
// notes.
func (r *Results) table() string {
	var b strings.Builder
	goName := "go-libp2p-kad-dht"
	if r.KadDHT != "" {
		goName += " " + r.KadDHT
	}
	fmt.Fprintf(&b, "mote vs %s (go-libp2p %s): %d DHT servers (%d mote, %d go-libp2p) on 127.0.0.1 TCP, %s %s/%s, %d CPUs, GOMAXPROCS %d",
		goName, r.GoLibp2p, r.Params.Nodes, r.Params.MoteServers, r.Params.GoServers, r.Go, r.OS, r.Arch, r.CPUs, r.GOMAXPROCS)
	if r.SelfExec {
		b.WriteString(" (-self: both servers link both stacks)")
	}
	fmt.Fprintf(&b, ".\n%d keys, %d providers each; each client ran %d FindProviders (count %d).\n\n",
		r.Params.Keys, r.Params.Providers, r.Params.Keys, r.Params.Count)
	fmt.Fprintf(&b, "| Figure | mote | %s | mote ÷ go | target | met |\n|---|---|---|---|---|---|\n", goName)
	row := func(figure, m, g string, ratio, target float64) {
		t, met := "", ""
		if target > 0 {
			t = fmt.Sprintf("≤ %.2f", target)
			met = "no"
			if ratio <= target {
				met = "yes"
			}
		}
		rs := ""
		if !math.IsNaN(ratio) {
			rs = fmt.Sprintf("%.2f", ratio)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", figure, m, g, rs, t, met)
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return math.NaN()
		}
		return a / b
	}
	if len(r.Servers) == 2 {
		m, g := r.Servers[0], r.Servers[1]
		for _, phase := range []struct {
			name string
			m, g ServerStats
		}{{"network formed", m.Formed, g.Formed}, {"after load", m.Loaded, g.Loaded}} {
			pm, pg := phase.m, phase.g
			row("Server RSS, "+phase.name, mib(pm.RSS), mib(pg.RSS), div(float64(pm.RSS), float64(pg.RSS)), targetServer)
			row("Server goroutines, "+phase.name, fmt.Sprint(pm.Goroutines), fmt.Sprint(pg.Goroutines), div(float64(pm.Goroutines), float64(pg.Goroutines)), targetServer)
			row("Server Go heap in use, "+phase.name, mib(int64(pm.HeapInuse)), mib(int64(pg.HeapInuse)), div(float64(pm.HeapInuse), float64(pg.HeapInuse)), 0)
			row("Server routing table, "+phase.name, fmt.Sprint(pm.Table), fmt.Sprint(pg.Table), math.NaN(), 0)
		}
		row("Server process RSS before its node started", mib(m.BaseRSS), mib(g.BaseRSS), div(float64(m.BaseRSS), float64(g.BaseRSS)), 0)
		row("Server peak RSS (VmHWM), whole run", mib(m.Loaded.PeakRSS), mib(g.Loaded.PeakRSS), div(float64(m.Loaded.PeakRSS), float64(g.Loaded.PeakRSS)), 0)
		row("Server CPU time, whole run", fmt.Sprintf("%.2f s", float64(m.Loaded.CPUNs)/1e9), fmt.Sprintf("%.2f s", float64(g.Loaded.CPUNs)/1e9),
			div(float64(m.Loaded.CPUNs), float64(g.Loaded.CPUNs)), 0)
	}
	if len(r.Clients) == 2 {
		m, g := r.Clients[0], r.Clients[1]
		ms := func(v float64) string { return fmt.Sprintf("%.2f ms", v) }
		row("Client FindProviders latency, p50", ms(m.P50Ms), ms(g.P50Ms), div(m.P50Ms, g.P50Ms), targetClient)
		row("Client FindProviders latency, p90", ms(m.P90Ms), ms(g.P90Ms), div(m.P90Ms, g.P90Ms), 0)
		row("Client GET_PROVIDERS requests per lookup, p50", fmt.Sprint(m.RequestsP50), fmt.Sprint(g.RequestsP50), div(m.RequestsP50, g.RequestsP50), targetClient)
		row("Client GET_PROVIDERS requests per lookup, p90", fmt.Sprint(m.RequestsP90), fmt.Sprint(g.RequestsP90), div(m.RequestsP90, g.RequestsP90), 0)
		row("Client GET_PROVIDERS requests per lookup, mean", fmt.Sprintf("%.1f", m.RequestsMean), fmt.Sprintf("%.1f", g.RequestsMean), div(m.RequestsMean, g.RequestsMean), 0)
		frac := func(c ClientResult) string { return fmt.Sprintf("%d of %d", c.FoundAll, c.Lookups) }
		row("Client lookups that found every provider", frac(m), frac(g), math.NaN(), 0)
	}
	n := r.Network
	fmt.Fprintf(&b, "\nRouting tables once formed: in-process mote servers %.1f peers on average, go-libp2p servers %.1f; mote client %d, go-libp2p client %d. %d provider records announced",
		n.MoteTableMean, n.GoTableMean, n.MoteClientTable, n.GoClientTable, r.Provides.Records)
	if r.Provides.Failed > 0 {
		fmt.Fprintf(&b, " (%d failed)", r.Provides.Failed)
	}
	fmt.Fprintf(&b, ". Run took %.0f s.\n", r.Seconds)
	for _, note := range r.Notes {
		fmt.Fprintf(&b, "\n- %s", note)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}
