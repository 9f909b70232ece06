//go:build linux

package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ma "github.com/mote-p2p/mote/wire/multiaddr"

	"github.com/mote-p2p/mote/bench/internal/benchproto"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
)

// Benchmark protocols served by the listening node.
// Environment of the child process of the idle-connection benchmark.
const (
	envChild = "MOTE_BENCH_CHILD" // "1": run as the dialing child
	envAddr  = "MOTE_BENCH_ADDR"  // listener's multiaddr
	envPeer  = "MOTE_BENCH_PEER"  // listener's peer ID
	envConns = "MOTE_BENCH_CONNS" // number of connections (also a default for -conns)
	envTrans = "MOTE_BENCH_TRANS" // benchTransport.name
)

// benchTransport is one transport the benchmarks run over, as a
// sub-benchmark of that name.
type benchTransport struct {
	name     string // sub-benchmark name
	listen   string // the listener's only listen address
	state    string // ConnState.Transport every connection must report
	security string // ConnState.Security every connection must report
	noQUIC   bool   // Config.DisableQUIC of both ends
	classic  bool   // Config.ClassicKeyExchange of both ends
}

// transports are the transports measured side by side. TCP nodes leave
// QUIC out altogether, so nothing can dial QUIC by accident; the QUIC
// listener listens on QUIC only, so every dial to it is QUIC.
var transports = []benchTransport{
	{name: "tcp", listen: "/ip4/127.0.0.1/tcp/0", state: "tcp", security: "/noise", noQUIC: true},
	{name: "quic", listen: "/ip4/127.0.0.1/udp/0/quic-v1", state: "quic-v1", security: "/tls/1.0.0"},
	// QUIC with X25519 alone in TLS, without the X25519MLKEM768 hybrid.
	{name: "quic-classic", listen: "/ip4/127.0.0.1/udp/0/quic-v1", state: "quic-v1", security: "/tls/1.0.0", classic: true},
}

func transportNamed(name string) (benchTransport, bool) {
	for _, tr := range transports {
		if tr.name == name {
			return tr, true
		}
	}
	return benchTransport{}, false
}

// config is the node configuration of either end on this transport.
func (tr benchTransport) config() node.Config {
	return node.Config{DisableQUIC: tr.noQUIC, ClassicKeyExchange: tr.classic}
}

// check fails unless c runs over this transport.
func (tr benchTransport) check(c *node.Conn) error {
	if st := c.State(); st.Transport != tr.state || st.Security != tr.security {
		return fmt.Errorf("connection to %s is %s+%s, want %s+%s", c.RemotePeer(), st.Transport, st.Security, tr.state, tr.security)
	}
	return nil
}

var connsFlag = flag.Int("conns", 0, "connections held by BenchmarkIdleConnMemory (default $"+envConns+" or 1000)")

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	raiseNoFile()
	os.Exit(m.Run())
}

// ---------------------------------------------------------------------------
// Benchmarks

// BenchmarkDialFirstStream measures dial → first stream → 1-byte echo on
// a fresh connection from a fresh node each iteration, per transport.
func BenchmarkDialFirstStream(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) { benchDialFirstStream(b, tr) })
	}
}

func benchDialFirstStream(b *testing.B, tr benchTransport) {
	a := newListener(b, tr, 0, nil)
	addrs := a.Addrs()
	connect := make([]time.Duration, 0, b.N)
	first := make([]time.Duration, 0, b.N)
	total := make([]time.Duration, 0, b.N)
	var cpu time.Duration
	var d *node.Node
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if d != nil {
			d.Close()
			waitConns(b, a, 0)
		}
		var err error
		if d, err = node.New(tr.config()); err != nil { // key generation: untimed
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		b.StartTimer()
		c, f, s, err := dialFirstStream(d, a.ID(), addrs)
		b.StopTimer()
		cpu += cpuTime() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.check(s.Conn()); err != nil {
			b.Fatal(err)
		}
		s.Close()
		connect = append(connect, c)
		first = append(first, f)
		total = append(total, c+f)
		if c+f > 100*time.Millisecond {
			b.Logf("slow iteration %d: connect %v, first stream %v", i, c, f)
		}
	}
	b.ReportMetric(ms(percentile(total, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(total, 99)), "p99-ms")
	b.ReportMetric(ms(percentile(total, 100)), "max-ms")
	b.ReportMetric(ms(percentile(connect, 50)), "connect-p50-ms")
	b.ReportMetric(ms(percentile(first, 50)), "stream-p50-ms")
	b.ReportMetric(ms(cpu)/float64(b.N), "cpu-ms/op")
}

// BenchmarkThroughput measures one stream to a discarding sink, one chunk
// written per iteration, per transport and chunk size.
func BenchmarkThroughput(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) { benchThroughput(b, tr) })
	}
}

func benchThroughput(b *testing.B, tr benchTransport) {
	for _, chunk := range []int{64 << 10, 1 << 20} {
		name := fmt.Sprintf("write=%dKiB", chunk>>10)
		b.Run(name, func(b *testing.B) {
			a := newListener(b, tr, 0, nil)
			d := newNode(b, tr.config())
			s := openStream(b, tr, d, a, benchproto.Sink)
			if err := sinkReady(s); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, chunk)
			b.SetBytes(int64(chunk))
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			got, err := benchproto.FinishSink(s)
			b.StopTimer()
			cpu := cpuTime() - cpu0
			if err != nil {
				b.Fatal(err)
			}
			if want := uint64(b.N) * uint64(chunk); got != want {
				b.Fatalf("sink received %d bytes, sent %d", got, want)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(chunk), "cpu-ns/B")
		})
	}
}

// BenchmarkIdleConnMemory measures what the listener holds per idle,
// identified connection with one idle stream, per transport. The dialers
// run in a child process. It measures once per process and transport; the
// b.N loop is trivial.
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) { benchIdleConnMemory(b, tr) })
	}
}

func benchIdleConnMemory(b *testing.B, tr benchTransport) {
	n := benchConns(b)
	key := idleKey{tr.name, n}
	idleMu.Lock()
	r, ok := idleCache[key]
	if !ok {
		b.StopTimer()
		r = measureIdleConns(b, tr, n)
		idleCache[key] = r
		b.StartTimer()
	}
	idleMu.Unlock()
	for i := 0; i < b.N; i++ {
		_ = r
	}
	b.ReportMetric(float64(n), "conns")
	b.ReportMetric(r.heap/1024, "heap-KiB/conn")
	b.ReportMetric(r.stack/1024, "stack-KiB/conn")
	b.ReportMetric(r.rss/1024, "rss-KiB/conn")
	b.ReportMetric(r.goroutines, "goroutines/conn")
}

var (
	idleMu    sync.Mutex
	idleCache = map[idleKey]idleResult{}
)

type idleKey struct {
	transport string
	conns     int
}

func benchConns(b *testing.B) int {
	if *connsFlag > 0 {
		return *connsFlag
	}
	if v := os.Getenv(envConns); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", envConns, v)
		}
		return n
	}
	return 1000
}

// ---------------------------------------------------------------------------
// Smoke test: a tiny version of each benchmark, run by plain `go test`.

func TestBenchSmoke(t *testing.T) {
	t.Run("DialFirstStream", func(t *testing.T) {
		for _, tr := range transports {
			t.Run(tr.name, func(t *testing.T) { smokeDialFirstStream(t, tr) })
		}
	})
	t.Run("Throughput", func(t *testing.T) {
		for _, tr := range transports {
			t.Run(tr.name, func(t *testing.T) { smokeThroughput(t, tr) })
		}
	})
	t.Run("IdleConnMemory", func(t *testing.T) {
		for _, tr := range transports {
			t.Run(tr.name, func(t *testing.T) { smokeIdleConnMemory(t, tr) })
		}
	})
}

func smokeDialFirstStream(t *testing.T, tr benchTransport) {
	a := newListener(t, tr, 0, nil)
	addrs := a.Addrs()
	for range 3 {
		d := newNode(t, tr.config())
		c, f, s, err := dialFirstStream(d, a.ID(), addrs)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if c <= 0 || f <= 0 {
			t.Fatalf("connect %v, first stream %v: want > 0", c, f)
		}
		cs := d.Conns(a.ID())
		if len(cs) != 1 {
			t.Fatalf("want one connection, got %d", len(cs))
		}
		if err := tr.check(cs[0]); err != nil {
			t.Fatal(err)
		}
		for _, ac := range a.Conns(d.ID()) {
			if err := tr.check(ac); err != nil {
				t.Fatalf("listener: %v", err)
			}
		}
		t.Logf("connect %v, first stream %v", c, f)
		d.Close()
		waitConns(t, a, 0)
	}
}

func smokeThroughput(t *testing.T, tr benchTransport) {
	a := newListener(t, tr, 0, nil)
	d := newNode(t, tr.config())
	s := openStream(t, tr, d, a, benchproto.Sink)
	if err := sinkReady(s); err != nil {
		t.Fatal(err)
	}
	const chunk, total = 64 << 10, 1 << 20
	buf := make([]byte, chunk)
	start := time.Now()
	for range total / chunk {
		if _, err := s.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	got, err := benchproto.FinishSink(s)
	if err != nil {
		t.Fatal(err)
	}
	if got != total {
		t.Fatalf("sink received %d bytes, sent %d", got, total)
	}
	t.Logf("%.0f MB/s", total/time.Since(start).Seconds()/1e6)
}

func smokeIdleConnMemory(t *testing.T, tr benchTransport) {
	const n = 50
	r := measureIdleConns(t, tr, n)
	t.Logf("per conn: heap %.1f KiB, stack %.1f KiB, rss %.1f KiB, %.1f goroutines",
		r.heap/1024, r.stack/1024, r.rss/1024, r.goroutines)
	// HeapInuse moves in whole spans, so a few lean connections can fit in
	// space the heap already had; and what earlier tests of this process
	// left (quic-go keeps closed connections for 3 PTO) may be freed
	// during the measurement. A heap figure well below zero is wrong.
	if r.heap < -4096 || r.stack <= 0 || r.goroutines < 1 || r.goroutines > 8 {
		t.Fatalf("implausible per-connection figures: %+v", r)
	}
}

// ---------------------------------------------------------------------------
// Measurements

// dialFirstStream connects d to id, opens an echo stream and echoes one
// byte. It returns the time to connect, the time from connected to the
// echoed byte, and the open stream.
func dialFirstStream(d *node.Node, id peer.ID, addrs []ma.Multiaddr) (connect, first time.Duration, s *node.Stream, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := d.Connect(ctx, id, addrs...)
	if err != nil {
		return 0, 0, nil, err
	}
	t1 := time.Now()
	s, err = d.NewStreamOn(ctx, c, benchproto.Echo)
	if err != nil {
		return 0, 0, nil, err
	}
	if err := benchproto.EchoByte(s); err != nil {
		s.Reset()
		return 0, 0, nil, err
	}
	return t1.Sub(t0), time.Since(t1), s, nil
}

// sinkReady reads the sink's ready byte. Reading before the first write
// also takes in the peer's multistream answer to the lazy protocol
// proposal, so that its round trip stays out of the timed transfer.
func sinkReady(s *node.Stream) error {
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return fmt.Errorf("sink ready: %w", err)
	}
	return nil
}

// idleResult is the listener's cost of one idle connection.
type idleResult struct {
	heap, stack, rss float64 // bytes
	goroutines       float64
}

// measureIdleConns has a child process open n identified connections over
// tr to a listener in this process, each with one idle stream, and returns
// the listener's per-connection deltas after GC.
func measureIdleConns(tb testing.TB, tr benchTransport, n int) idleResult {
	tb.Helper()
	if lim := noFileLimit(); lim < uint64(n)+256 {
		tb.Fatalf("RLIMIT_NOFILE %d is too low for %d connections", lim, n)
	}
	var held atomic.Int64
	a := newListener(tb, tr, n+64, &held)

	// Warm up the listener's code paths (and lazily built tables) with one
	// in-process connection, then drop it.
	w := newNode(tb, tr.config())
	s := openStream(tb, tr, w, a, benchproto.Hold)
	if err := benchproto.EchoByte(s); err != nil {
		tb.Fatal(err)
	}
	s.Close()
	w.Close()
	waitConns(tb, a, 0)
	waitFor(tb, 10*time.Second, "warm-up hold stream to end", func() bool { return held.Load() == 0 })

	before := snapshot()

	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		envChild+"=1",
		envAddr+"="+a.Addrs()[0].String(),
		envPeer+"="+a.ID().String(),
		envConns+"="+strconv.Itoa(n),
		envTrans+"="+tr.name,
	)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer stopChild(tb, cmd, stdin)

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout) // until the child exits
	}()
	timeout := time.Minute + time.Duration(n)*100*time.Millisecond
	select {
	case line, ok := <-lines:
		if !ok {
			tb.Fatal("child exited without reporting")
		}
		if line != "ready" {
			tb.Fatalf("child: %s", line)
		}
	case <-time.After(timeout):
		tb.Fatalf("child not ready after %v", timeout)
	}

	// Every connection must be identified (by us) and hold its stream.
	waitFor(tb, time.Minute, fmt.Sprintf("%d identified connections holding a stream", n), func() bool {
		cs := a.Conns("")
		if len(cs) != n || held.Load() != int64(n) {
			return false
		}
		for _, c := range cs {
			if err := tr.check(c); err != nil {
				tb.Fatal(err)
			}
			select {
			case <-c.Identified():
				if err := c.IdentifyErr(); err != nil {
					tb.Fatalf("identify of %s: %v", c.RemotePeer(), err)
				}
			default:
				return false
			}
		}
		return true
	})
	after := snapshot()

	f := float64(n)
	return idleResult{
		heap:       float64(int64(after.heap)-int64(before.heap)) / f,
		stack:      float64(int64(after.stack)-int64(before.stack)) / f,
		rss:        float64(after.rss-before.rss) / f,
		goroutines: float64(after.goroutines-before.goroutines) / f,
	}
}

// stopChild closes the child's stdin, which tells it to close its nodes
// and exit, and waits for it; it is killed if it does not exit in time.
func stopChild(tb testing.TB, cmd *exec.Cmd, stdin io.Closer) {
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("child: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		tb.Errorf("child did not exit; killed")
	}
}

type memSnapshot struct {
	heap, stack uint64
	rss         int64 // bytes
	goroutines  int
}

// snapshot waits for the goroutine count to settle, collects garbage,
// returns freed memory to the OS and reads the process's figures.
func snapshot() memSnapshot {
	g := runtime.NumGoroutine()
	for range 25 {
		time.Sleep(200 * time.Millisecond)
		g2 := runtime.NumGoroutine()
		if g2 == g {
			break
		}
		g = g2
	}
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnapshot{heap: m.HeapInuse, stack: m.StackInuse, rss: vmRSS(), goroutines: runtime.NumGoroutine()}
}

// ---------------------------------------------------------------------------
// The child process: n nodes, one connection and one idle stream each.

func runChild() int {
	raiseNoFile()
	fail := func(format string, args ...any) int {
		fmt.Printf("error: "+format+"\n", args...)
		return 1
	}
	addr, err := ma.NewMultiaddr(os.Getenv(envAddr))
	if err != nil {
		return fail("%s: %v", envAddr, err)
	}
	id, err := peer.Decode(os.Getenv(envPeer))
	if err != nil {
		return fail("%s: %v", envPeer, err)
	}
	n, err := strconv.Atoi(os.Getenv(envConns))
	if err != nil || n <= 0 {
		return fail("%s=%q", envConns, os.Getenv(envConns))
	}
	tr, ok := transportNamed(os.Getenv(envTrans))
	if !ok {
		return fail("%s=%q: unknown transport", envTrans, os.Getenv(envTrans))
	}

	nodes := make([]*node.Node, n)
	streams := make([]*node.Stream, n)
	defer func() {
		for i := range n {
			if streams[i] != nil {
				streams[i].Close()
			}
			if nodes[i] != nil {
				nodes[i].Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var next atomic.Int64
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	// Eight dialers at a time: a mote listener keeps at most that many
	// handshakes in progress from one IP, closing the oldest for a newer
	// one (transport.UpgraderConfig.MaxHandshakesPerIP).
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				d, err := node.New(tr.config())
				if err != nil {
					errs <- err
					return
				}
				nodes[i] = d
				c, err := d.Connect(ctx, id, addr)
				if err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				if err := tr.check(c); err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				s, err := d.NewStreamOn(ctx, c, benchproto.Hold)
				if err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				streams[i] = s
				if err := c.IdentifyErr(); err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				if err := benchproto.EchoByte(s); err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return fail("%v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	return 0
}

// ---------------------------------------------------------------------------
// Nodes and handlers

func newNode(tb testing.TB, cfg node.Config) *node.Node {
	tb.Helper()
	n, err := node.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// newListener starts node A listening on tr's address on 127.0.0.1 only,
// serving the echo, sink and hold protocols. maxIn, if > 0, sets the
// limits to hold that many connections; held, if not nil, counts hold streams that have echoed and are
// idling.
func newListener(tb testing.TB, tr benchTransport, maxIn int, held *atomic.Int64) *node.Node {
	tb.Helper()
	cfg := tr.config()
	cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast(tr.listen)}
	if maxIn > 0 {
		// Room for maxIn connections, each holding a stream: the inbound
		// cap, the connection manager's watermarks, the peerstore and the
		// node-wide stream counts.
		cfg.Limits = node.Limits{MaxInboundConns: maxIn, ConnLowWater: maxIn, ConnHighWater: maxIn, MaxPeers: max(maxIn, 4096),
			MaxStreams: max(maxIn, 16384), MaxStreamsPerProtocol: max(maxIn, 4096)}
	}
	a := newNode(tb, cfg)
	if addrs := a.Addrs(); len(addrs) != 1 {
		tb.Fatalf("listener addresses %v: want one %s address", addrs, tr.name)
	}
	a.SetHandler(benchproto.Echo, func(s *node.Stream) { benchproto.ServeEcho(s) })
	a.SetHandler(benchproto.Sink, func(s *node.Stream) { benchproto.ServeSink(s) })
	if held == nil {
		held = new(atomic.Int64)
	}
	a.SetHandler(benchproto.Hold, func(s *node.Stream) { benchproto.ServeHold(s, nil, held) })
	return a
}

// openStream connects d to a over tr, waits for identify and opens a
// stream.
func openStream(tb testing.TB, tr benchTransport, d, a *node.Node, proto string) *node.Stream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.Connect(ctx, a.ID(), a.Addrs()...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := tr.check(c); err != nil {
		tb.Fatal(err)
	}
	s, err := d.NewStreamOn(ctx, c, proto)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// waitConns waits until a has exactly n connections.
func waitConns(tb testing.TB, a *node.Node, n int) {
	tb.Helper()
	waitFor(tb, 10*time.Second, fmt.Sprintf("%d connections", n), func() bool { return len(a.Conns("")) == n })
}

func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Small utilities

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1 // nearest rank
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuTime is the user + system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit.
func raiseNoFile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

func noFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}

// vmRSS is the resident set size of this process, in bytes.
func vmRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
