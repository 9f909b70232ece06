// Command sidebyside measures mote and go-libp2p side by side in one run
// and prints a markdown table (mote, go-libp2p, their ratio); it can also
// write the results as JSON and an SVG plot of the listener's memory
// against the number of connections. A third stack, quic-go alone (no
// libp2p: TLS 1.3 with self-signed certificates, ALPN "libp2p", mote's
// quic.Config, one byte naming each stream's protocol), is measured over
// QUIC only, as the reference for mote's QUIC targets; a second table
// sets mote's QUIC figures beside it.
//
// Run it from the bench module (it builds programs of both modules):
//
//	cd bench && go run ./cmd/sidebyside -out results
//	cd bench && go run ./cmd/sidebyside -quick
//
// Every measurement runs in child processes, as in the go-libp2p
// baseline: A listens, B dials, both on 127.0.0.1. The children are this
// command built three times, with the build tag moteonly, libp2ponly or
// quicgoonly, so that each child's binary links (and initialises) only the
// stack it runs, and started with a -role flag. What it measures, for
// mote and go-libp2p (and, where marked QUIC, for quic-go alone):
//
//   - Binary size, stripped (-trimpath -ldflags='-s -w', CGO_ENABLED=0), of
//     the minimal hosts with TCP + QUIC, identify and ping (cmd/motemin,
//     cmd/minhost) and of mote's daemon (cmd/mote of the main module, with
//     the main module's own dependency versions), per architecture.
//   - The idle minimal host 5 s after start: VmRSS (read by this process
//     from /proc/<pid>/status), Go HeapInuse and goroutines (reported by the
//     child on its standard output).
//   - mote's daemon, `mote daemon --preset iot` listening on TCP and QUIC
//     on loopback with a fresh repo, after the same idle wait: VmRSS, then
//     goroutines and Go heap from `mote stats`.
//   - Per idle connection at A, for 100, 1000 and 5000 connections over TCP
//     and over QUIC (quic-go too): B opens the connections from as many
//     nodes, each with its own identity, one identified connection and one
//     idle stream each; A's VmRSS, HeapInuse, StackInuse and goroutines
//     after GC, minus their values before the first connection (after one
//     warm-up connection), divided by N. One A per stack and transport
//     grows to each N in turn.
//   - Dial → first stream round trip: a fresh node (key generation
//     untimed) connects, opens an echo stream and echoes 1 byte; median
//     and p99 of 200, over TCP and over QUIC (quic-go too). go-libp2p's
//     Connect and NewStream wait for identify; mote's do not (the stream
//     proposes its protocol at once), so identify is on go-libp2p's path
//     only, as it is for a user of each. quic-go alone has no identify and
//     its protocol byte costs no round trip either.
//   - The same over QUIC for mote with ClassicKeyExchange (X25519 alone in
//     TLS) on both ends.
//   - One-stream throughput to a discarding sink, 1 GiB in 64 KiB writes,
//     over TCP and over QUIC (quic-go too) (MB = 10⁶ B): the median of
//     three transfers (-tput-runs), each from a fresh dialer.
//   - Accepted connections per second at A while 32 dialing nodes in B
//     connect, wait for identify and disconnect in a loop for 10 s (TCP),
//     and A's CPU time per accepted connection.
//
// Flags:
//
//	-quick        a small, fast run: 20 connections, 5 round trips, 8 MiB, a 1 s
//	              accept-rate window, this machine's architecture only; its
//	              children are this executable (all stacks linked) and its
//	              size builds reuse the build cache (see buildAll), so its
//	              figures are for checking, not for quoting
//	-json FILE    write the results as JSON
//	-svg FILE     write the memory plot
//	-out DIR      write results.json, memory.svg and table.md into DIR
//	-conns LIST   connection counts (default 100,1000,5000)
//	-iters N      dial round trips per transport (default 200)
//	-mib N        MiB sent in the throughput test (default 1024)
//	-rate-dur D, -rate-c N    the accept-rate window and dialers (10s, 32)
//	-idle D       wait before reading the idle host (default 5s)
//	-arches LIST  architectures for binary sizes (default amd64,arm64,arm; arm is GOARM=7)
//	-quicgo=false leave out quic-go alone
//
// All stacks are built in this module, so they link the same versions of
// shared dependencies (quic-go is the version go-libp2p requires); only the
// cmd/mote size uses the main module's versions.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mote-p2p/mote/bench/internal/procstat"
)

func main() {
	os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the orchestrator's settings.
type options struct {
	quick      bool
	jsonPath   string
	svgPath    string
	outDir     string
	conns      []int
	iotConns   int
	iters      int
	tputRuns   int
	mib        int
	rateDur    time.Duration
	rateC      int
	idle       time.Duration
	arches     []string
	quicgo     bool      // also measure quic-go alone over QUIC
	log        io.Writer // progress and the children's standard error
	keepBinDir string    // if set, build the programs here instead of a temporary directory
}

func mainArgs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sidebyside", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ra roleArgs
	fs.StringVar(&ra.role, "role", "", "run as a child process in this role (internal)")
	fs.StringVar(&ra.stack, "stack", "", "child: the stack")
	fs.StringVar(&ra.transport, "transport", "", "child: tcp or quic")
	fs.StringVar(&ra.peer, "peer", "", "child: A's peer ID")
	fs.StringVar(&ra.addr, "addr", "", "child: A's multiaddr")
	fs.IntVar(&ra.n, "n", 0, "child: iterations")
	fs.Int64Var(&ra.bytes, "bytes", 0, "child: bytes to send")
	fs.IntVar(&ra.concurrency, "c", 0, "child: concurrent dialers")
	fs.DurationVar(&ra.dur, "dur", 0, "child: duration")
	fs.StringVar(&ra.preset, "preset", "", "child: the listener's mote preset")
	fs.BoolVar(&ra.classic, "classic", false, "child: mote with X25519-only TLS key agreement")

	var o options
	var conns, arches string
	fs.BoolVar(&o.quick, "quick", false, "a small, fast run")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to `FILE`")
	fs.StringVar(&o.svgPath, "svg", "", "write the memory plot to `FILE`")
	fs.StringVar(&o.outDir, "out", "", "write results.json, memory.svg and table.md into `DIR`")
	fs.StringVar(&conns, "conns", "100,1000,5000", "connection counts held at the listener")
	fs.IntVar(&o.iotConns, "iot-conns", 1000, "idle connections held by mote's listener with the iot preset")
	fs.IntVar(&o.iters, "iters", 200, "dial round trips per stack and transport")
	fs.IntVar(&o.mib, "mib", 1024, "MiB sent in the throughput test")
	fs.IntVar(&o.tputRuns, "tput-runs", 3, "throughput transfers per stack and transport (the median is reported)")
	fs.DurationVar(&o.rateDur, "rate-dur", 10*time.Second, "accept-rate window")
	fs.IntVar(&o.rateC, "rate-c", 32, "concurrent dialers in the accept-rate test")
	fs.DurationVar(&o.idle, "idle", 5*time.Second, "wait before reading the idle host's figures")
	fs.StringVar(&arches, "arches", "amd64,arm64,arm", "architectures for binary sizes (arm: GOARM=7)")
	fs.BoolVar(&o.quicgo, "quicgo", true, "also measure quic-go alone over QUIC")
	fs.StringVar(&o.keepBinDir, "bindir", "", "build the programs into `DIR` (default: a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if ra.role != "" {
		return runRole(ra)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		quick := map[string]func(){
			"conns":     func() { conns = "20" },
			"iot-conns": func() { o.iotConns = 20 },
			"iters":     func() { o.iters = 5 },
			"mib":       func() { o.mib = 8 },
			"tput-runs": func() { o.tputRuns = 1 },
			"rate-dur":  func() { o.rateDur = time.Second },
			"idle":      func() { o.idle = 2 * time.Second },
			"arches":    func() { arches = runtime.GOARCH },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	o.tputRuns = max(o.tputRuns, 1)
	var err error
	if o.conns, err = parseInts(conns); err != nil {
		fmt.Fprintln(stderr, "sidebyside: -conns:", err)
		return 2
	}
	for a := range strings.SplitSeq(arches, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.arches = append(o.arches, a)
		}
	}
	if o.iters <= 0 || o.mib <= 0 || o.rateC <= 0 || o.rateDur <= 0 || len(o.arches) == 0 {
		fmt.Fprintln(stderr, "sidebyside: -iters, -mib, -rate-c, -rate-dur and -arches must be positive")
		return 2
	}
	if o.outDir != "" {
		if err := os.MkdirAll(o.outDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "sidebyside:", err)
			return 1
		}
		if o.jsonPath == "" {
			o.jsonPath = filepath.Join(o.outDir, "results.json")
		}
		if o.svgPath == "" {
			o.svgPath = filepath.Join(o.outDir, "memory.svg")
		}
	}
	o.log = &syncWriter{w: stderr} // the children's standard error is copied in concurrently
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(stderr, "sidebyside:", err)
		return 1
	}
	table := res.table()
	fmt.Fprint(stdout, table)
	if err := res.write(o, table); err != nil {
		fmt.Fprintln(stderr, "sidebyside:", err)
		return 1
	}
	return 0
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// write writes the JSON, SVG and table files asked for.
func (r *Results) write(o options, table string) error {
	if o.jsonPath != "" {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonPath, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.svgPath != "" {
		var b bytes.Buffer
		r.svg(&b)
		if err := os.WriteFile(o.svgPath, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.outDir != "" {
		if err := os.WriteFile(filepath.Join(o.outDir, "table.md"), []byte(table), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// ---------------------------------------------------------------------------
// The run

// runner holds what one run needs: the programs it built and where the
// modules are.
type runner struct {
	o        options
	benchDir string // the bench module
	rootDir  string // the main module
	daemon   string // cmd/mote for this machine, stripped
	binDir   string
	child    map[string]string // stack → child binary
	host     map[string]string // stack → minimal host for this machine
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.log, "sidebyside: "+format+"\n", args...)
}

func run(o options) (*Results, error) {
	start := time.Now()
	nofile := procstat.RaiseNoFile()
	if need := uint64(slices.Max(o.conns)) + 512; nofile != 0 && nofile < need {
		return nil, fmt.Errorf("RLIMIT_NOFILE is %d; %d connections need about %d", nofile, slices.Max(o.conns), need)
	}
	r := &runner{o: o}
	var err error
	if r.benchDir, r.rootDir, err = findModules(); err != nil {
		return nil, err
	}
	if o.keepBinDir != "" {
		r.binDir, err = filepath.Abs(o.keepBinDir)
		if err == nil {
			err = os.MkdirAll(r.binDir, 0o755)
		}
	} else {
		r.binDir, err = os.MkdirTemp("", "sidebyside-")
		if err == nil {
			defer os.RemoveAll(r.binDir)
		}
	}
	if err != nil {
		return nil, err
	}

	res := &Results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		OS:      runtime.GOOS,
		Arch:    runtime.GOARCH,
		CPUs:    runtime.NumCPU(),
		CPU:     cpuModel(),
		LoadAvg: [2]string{loadAvg()},
		Quick:   o.quick,
		Params:  Params{Conns: o.conns, Iters: o.iters, Bytes: int64(o.mib) << 20, RateDialers: o.rateC, RateSeconds: o.rateDur.Seconds(), IdleSeconds: o.idle.Seconds()},
	}
	if res.Go, err = r.goOutput(r.benchDir, "env", "GOVERSION"); err != nil {
		return nil, err
	}
	if res.GoLibp2p, err = r.goOutput(r.benchDir, "list", "-m", "-f", "{{.Version}}", "github.com/libp2p/go-libp2p"); err != nil {
		return nil, err
	}
	if res.QuicGo, err = r.goOutput(r.benchDir, "list", "-m", "-f", "{{.Version}}", "github.com/quic-go/quic-go"); err != nil {
		return nil, err
	}

	r.logf("building (%s)", strings.Join(o.arches, ", "))
	if res.Sizes, err = r.buildAll(); err != nil {
		return nil, err
	}

	moteRes := StackResult{Name: stackMote}
	libRes := StackResult{Name: stackLibp2p}
	qgRes := StackResult{Name: stackQuicGo}
	both := []*StackResult{&moteRes, &libRes}
	// onTransport lists the stacks measured over tr: quic-go alone only
	// over QUIC, where it is the reference for mote's QUIC figures.
	onTransport := func(tr string) []*StackResult {
		if tr == "quic" && o.quicgo {
			return []*StackResult{&moteRes, &libRes, &qgRes}
		}
		return both
	}

	for _, sr := range both {
		r.logf("%s: idle host for %v", sr.Name, o.idle)
		if sr.Idle, err = r.measureIdle(sr.Name); err != nil {
			return nil, err
		}
	}
	r.logf("mote: idle daemon (preset iot) for %v", o.idle)
	if moteRes.Daemon, err = r.measureDaemon("iot"); err != nil {
		return nil, fmt.Errorf("idle daemon: %w", err)
	}
	for _, tr := range []string{"tcp", "quic"} {
		for _, sr := range onTransport(tr) {
			cr, err := r.measureConns(sr.Name, tr, "", o.conns)
			if err != nil {
				return nil, err
			}
			sr.Conns = append(sr.Conns, cr...)
		}
	}
	if o.iotConns > 0 {
		for _, tr := range []string{"tcp", "quic"} {
			cr, err := r.measureConns(stackMote, tr, "iot", []int{o.iotConns})
			if err != nil {
				return nil, fmt.Errorf("iot preset: %w", err)
			}
			moteRes.IoT = append(moteRes.IoT, cr...)
		}
	}
	for _, tr := range []string{"tcp", "quic"} {
		for _, sr := range onTransport(tr) {
			if err := r.measureTimings(res, sr, tr); err != nil {
				return nil, err
			}
		}
	}
	lr, err := r.measureLatency(stackMote, "quic", "-classic")
	if err != nil {
		return nil, fmt.Errorf("classic key exchange: %w", err)
	}
	moteRes.ClassicLatency = append(moteRes.ClassicLatency, lr)

	res.Stacks = []StackResult{moteRes, libRes}
	if o.quicgo {
		res.Stacks = append(res.Stacks, qgRes)
	}
	res.Seconds = time.Since(start).Seconds()
	res.LoadAvg[1] = loadAvg()
	r.logf("done in %v", time.Since(start).Round(time.Second))
	return res, nil
}

// findModules locates the bench module (the working directory must be
// inside it) and the main module above it.
func findModules() (benchDir, rootDir string, err error) {
	cmd := exec.Command("go", "env", "GOMOD")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	outb, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(outb))
	if modulePath(gomod) != "github.com/mote-p2p/mote/bench" {
		return "", "", fmt.Errorf("run from the bench module's directory (go.mod here is %q)", gomod)
	}
	benchDir = filepath.Dir(gomod)
	rootDir = filepath.Dir(benchDir)
	if modulePath(filepath.Join(rootDir, "go.mod")) != "github.com/mote-p2p/mote" {
		return "", "", fmt.Errorf("%s is not the main module", rootDir)
	}
	return benchDir, rootDir, nil
}

// modulePath is the module path declared by a go.mod file, or "".
func modulePath(gomod string) string {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(p), `"`)
		}
	}
	return ""
}

func (r *runner) goOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}

// loadAvg is the system's load averages over 1, 5 and 15 minutes, or "".
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ---------------------------------------------------------------------------
// Builds

// buildJob is one go build.
type buildJob struct {
	dir, pkg, out string
	goarch        string // "" for this machine
	tags          string
	strip         bool
}

// envChild set to 1 tells a test binary run as a child (-quick runs its
// children from its own executable) to run as the command.
const envChild = "SIDEBYSIDE_CHILD"

// buildAll builds the children and the programs whose sizes are
// compared, one at a time (each build is parallel inside, and concurrent
// builds would compile shared packages twice), and returns the sizes.
//
// A full run builds this command two or three times, with the tags
// moteonly, libp2ponly and (unless -quicgo=false) quicgoonly, for children
// that link only their own stack; the sizes are of -trimpath builds with
// CGO_ENABLED=0. A -quick run saves building
// (which, with a cold build cache, takes minutes): its children are this
// executable, and its size builds leave out -trimpath and keep the
// environment's CGO_ENABLED, so that they reuse what `go test` or `go run`
// compiled. Its sizes are close but not the reference figures.
func (r *runner) buildAll() ([]SizeResult, error) {
	var jobs []buildJob
	if r.o.quick {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		r.child = map[string]string{stackMote: self, stackLibp2p: self, stackQuicGo: self}
	} else {
		r.child = map[string]string{
			stackMote:   filepath.Join(r.binDir, "child-mote"),
			stackLibp2p: filepath.Join(r.binDir, "child-libp2p"),
		}
		jobs = append(jobs,
			buildJob{dir: r.benchDir, pkg: "./cmd/sidebyside", out: r.child[stackMote], tags: "moteonly"},
			buildJob{dir: r.benchDir, pkg: "./cmd/sidebyside", out: r.child[stackLibp2p], tags: "libp2ponly"},
		)
		if r.o.quicgo {
			r.child[stackQuicGo] = filepath.Join(r.binDir, "child-quicgo")
			jobs = append(jobs, buildJob{dir: r.benchDir, pkg: "./cmd/sidebyside", out: r.child[stackQuicGo], tags: "quicgoonly"})
		}
	}
	bin := func(arch, name string) string { return filepath.Join(r.binDir, arch, name) }
	// The idle hosts run on this machine: the size builds for its
	// architecture if there are any, else builds of their own.
	hostArch := "host"
	if runtime.GOOS == "linux" && slices.Contains(r.o.arches, runtime.GOARCH) && runtime.GOARCH != "arm" {
		hostArch = runtime.GOARCH
	} else {
		jobs = append(jobs,
			buildJob{dir: r.benchDir, pkg: "./cmd/motemin", out: bin(hostArch, "motemin"), strip: true},
			buildJob{dir: r.benchDir, pkg: "./cmd/minhost", out: bin(hostArch, "minhost"), strip: true},
			buildJob{dir: r.rootDir, pkg: "./cmd/mote", out: bin(hostArch, "mote"), strip: true},
		)
	}
	r.daemon = bin(hostArch, "mote")
	r.host = map[string]string{stackMote: bin(hostArch, "motemin"), stackLibp2p: bin(hostArch, "minhost")}
	for _, arch := range r.o.arches {
		jobs = append(jobs,
			buildJob{dir: r.benchDir, pkg: "./cmd/motemin", out: bin(arch, "motemin"), goarch: arch, strip: true},
			buildJob{dir: r.benchDir, pkg: "./cmd/minhost", out: bin(arch, "minhost"), goarch: arch, strip: true},
			buildJob{dir: r.rootDir, pkg: "./cmd/mote", out: bin(arch, "mote"), goarch: arch, strip: true},
		)
	}
	for _, j := range jobs {
		t0 := time.Now()
		if err := r.build(j); err != nil {
			return nil, err
		}
		arch := j.goarch
		if arch == "" {
			arch = runtime.GOARCH
		}
		mod := "bench module"
		if j.dir == r.rootDir {
			mod = "main module"
		}
		r.logf("built %s (%s, %s) in %v", j.pkg, mod, arch, time.Since(t0).Round(100*time.Millisecond))
	}
	var sizes []SizeResult
	for _, arch := range r.o.arches {
		s := SizeResult{Arch: arch}
		if arch == "arm" {
			s.Arch = "armv7"
		}
		for _, f := range []struct {
			name string
			dst  *int64
		}{{"mote", &s.MoteDaemon}, {"motemin", &s.MoteMin}, {"minhost", &s.Libp2pMin}} {
			fi, err := os.Stat(bin(arch, f.name))
			if err != nil {
				return nil, err
			}
			*f.dst = fi.Size()
		}
		sizes = append(sizes, s)
	}
	return sizes, nil
}

func (r *runner) build(j buildJob) error {
	args := []string{"build", "-buildvcs=false", "-o", j.out}
	env := append(os.Environ(), "GOWORK=off")
	if !r.o.quick {
		args = append(args, "-trimpath")
		env = append(env, "CGO_ENABLED=0")
	}
	if j.tags != "" {
		args = append(args, "-tags", j.tags)
	}
	if j.strip {
		args = append(args, "-ldflags=-s -w")
	}
	args = append(args, j.pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = j.dir
	cmd.Env = env
	if j.goarch != "" {
		cmd.Env = append(cmd.Env, "GOOS=linux", "GOARCH="+j.goarch)
		if j.goarch == "arm" {
			cmd.Env = append(cmd.Env, "GOARM=7")
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s (GOARCH=%s): %w\n%s", strings.Join(args, " "), j.goarch, err, out)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Child processes

// proc is a running child: commands go to its standard input, JSON lines
// come from its standard output.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan []byte
}

func (r *runner) start(name, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), envChild+"=1")
	cmd.Stderr = r.o.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, stdin: stdin, lines: make(chan []byte, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			p.lines <- bytes.Clone(sc.Bytes())
		}
		close(p.lines)
	}()
	return p, nil
}

// startRole starts a child of stack in role.
func (r *runner) startRole(stack, role, tr string, args ...string) (*proc, error) {
	name := fmt.Sprintf("%s %s/%s", role, stack, tr)
	return r.start(name, r.child[stack], append([]string{"-role", role, "-stack", stack, "-transport", tr}, args...)...)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// recv decodes the child's next line into v.
func (p *proc) recv(timeout time.Duration, v any) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			return fmt.Errorf("%s: exited without answering", p.name)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("%s: bad answer %q: %w", p.name, line, err)
		}
		if e.Error != "" {
			return fmt.Errorf("%s: %s", p.name, e.Error)
		}
		return json.Unmarshal(line, v)
	case <-t.C:
		return fmt.Errorf("%s: no answer after %v", p.name, timeout)
	}
}

// call sends a command and decodes the answer into v.
func (p *proc) call(command string, timeout time.Duration, v any) error {
	if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
		return fmt.Errorf("%s: %s: %w", p.name, command, err)
	}
	if err := p.recv(timeout, v); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	return nil
}

// stop ends the child by closing its standard input, and kills it if it
// has not exited after two minutes.
func (p *proc) stop() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		return nil
	case <-time.After(2 * time.Minute):
		p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit; killed", p.name)
	}
}

// ---------------------------------------------------------------------------
// Measurements

func (r *runner) measureIdle(stack string) (IdleResult, error) {
	p, err := r.start("idle "+stack, r.host[stack], "-report", r.o.idle.String())
	if err != nil {
		return IdleResult{}, err
	}
	defer p.stop()
	var g procstat.Go
	if err := p.recv(r.o.idle+time.Minute, &g); err != nil {
		return IdleResult{}, err
	}
	rss, err := procstat.VmRSS(p.pid())
	if err != nil {
		return IdleResult{}, err
	}
	return IdleResult{RSS: rss, HeapInuse: int64(g.HeapInuse), Goroutines: g.Goroutines}, nil
}

// measureDaemon runs `mote daemon --preset preset` (cmd/mote as built for
// the sizes, stripped, CGO_ENABLED=0) listening on TCP and QUIC on
// loopback, with a fresh repo, and reads its VmRSS after the idle wait,
// then its goroutines and heap with `mote stats` (which wakes it, so the
// RSS is read first).
func (r *runner) measureDaemon(preset string) (IdleResult, error) {
	repo, err := os.MkdirTemp("", "sidebyside-repo-")
	if err != nil {
		return IdleResult{}, err
	}
	defer os.RemoveAll(repo)
	// The test profile: no bootstrap peers, so the daemon reaches no one.
	if out, err := exec.Command(r.daemon, "init", "--profile=test", "--repo", repo).CombinedOutput(); err != nil {
		return IdleResult{}, fmt.Errorf("mote init: %w: %s", err, out)
	}
	cmd := exec.Command(r.daemon, "daemon", "--repo", repo, "--preset", preset,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	cmd.Stdout, cmd.Stderr = io.Discard, r.o.log
	if err := cmd.Start(); err != nil {
		return IdleResult{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() error {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			return errors.New("mote daemon did not stop on SIGINT; killed")
		}
	}
	// The daemon writes its control API address to <repo>/api once it
	// serves; poll for it, as a script would.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(repo, "api")); err == nil {
			break
		}
		select {
		case err := <-done:
			return IdleResult{}, fmt.Errorf("mote daemon exited before serving: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return IdleResult{}, errors.New("mote daemon not serving after 1 min")
		}
	}
	time.Sleep(r.o.idle) // the measurement: what an idle daemon holds
	rss, err := procstat.VmRSS(cmd.Process.Pid)
	if err != nil {
		stop()
		return IdleResult{}, err
	}
	out, err := exec.Command(r.daemon, "stats", "--repo", repo).Output()
	if err != nil {
		stop()
		return IdleResult{}, fmt.Errorf("mote stats: %w", err)
	}
	var st struct {
		Goroutines int
		HeapInuse  int64
	}
	if err := json.Unmarshal(out, &st); err != nil {
		stop()
		return IdleResult{}, fmt.Errorf("mote stats: %w", err)
	}
	if err := stop(); err != nil {
		return IdleResult{}, fmt.Errorf("mote daemon: %w", err)
	}
	return IdleResult{RSS: rss, HeapInuse: st.HeapInuse, Goroutines: st.Goroutines}, nil
}

// hello is A's first line.
type hello struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

func (r *runner) startListener(stack, tr string, args ...string) (*proc, hello, error) {
	a, err := r.startRole(stack, "listen", tr, args...)
	if err != nil {
		return nil, hello{}, err
	}
	var h hello
	if err := a.recv(time.Minute, &h); err != nil {
		a.stop()
		return nil, hello{}, err
	}
	return a, h, nil
}

// stats asks A for its figures after GC and reads its VmRSS.
func stats(a *proc) (listenStats, int64, error) {
	var s listenStats
	if err := a.call("stats", time.Minute, &s); err != nil {
		return s, 0, err
	}
	rss, err := procstat.VmRSS(a.pid())
	return s, rss, err
}

// measureConns grows the connections held at a listener of stack over tr
// to each of counts in turn; preset, if set, is the mote preset of the
// listener.
func (r *runner) measureConns(stack, tr, preset string, counts []int) (_ []ConnResult, err error) {
	var args []string
	if preset != "" {
		args = []string{"-preset", preset}
	}
	a, h, err := r.startListener(stack, tr, args...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if e := a.stop(); err == nil {
			err = e
		}
	}()
	peerArgs := []string{"-peer", h.ID, "-addr", h.Addr}

	// Warm up A's code paths with one connection from a child that then
	// exits, and wait until A has let go of it.
	w, err := r.startRole(stack, "hold", tr, peerArgs...)
	if err != nil {
		return nil, err
	}
	var ok map[string]int
	err = w.call("grow 1", time.Minute, &ok)
	if e := w.stop(); err == nil {
		err = e
	}
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var ls listenStats
	if err := a.call("wait 0", 2*time.Minute, &ls); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	base, baseRSS, err := stats(a)
	if err != nil {
		return nil, err
	}

	b, err := r.startRole(stack, "hold", tr, peerArgs...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if e := b.stop(); err == nil {
			err = e
		}
	}()
	var out []ConnResult
	for _, n := range counts {
		t0 := time.Now()
		if err := b.call("grow "+strconv.Itoa(n), 2*time.Minute+time.Duration(n)*100*time.Millisecond, &ok); err != nil {
			return nil, err
		}
		if err := a.call("wait "+strconv.Itoa(n), 3*time.Minute+time.Duration(n)*20*time.Millisecond, &ls); err != nil {
			return nil, err
		}
		s, rss, err := stats(a)
		if err != nil {
			return nil, err
		}
		f := float64(n)
		c := ConnResult{
			Transport:         tr,
			N:                 n,
			BaseRSS:           baseRSS,
			RSS:               rss,
			RSSPerConn:        float64(rss-baseRSS) / f,
			HeapPerConn:       float64(int64(s.HeapInuse)-int64(base.HeapInuse)) / f,
			StackPerConn:      float64(int64(s.StackInuse)-int64(base.StackInuse)) / f,
			GoroutinesPerConn: float64(s.Goroutines-base.Goroutines) / f,
		}
		out = append(out, c)
		r.logf("%s%s %s: %d connections (%v): RSS %.1f KiB, heap %.1f KiB, stack %.1f KiB, %.2f goroutines per connection; RSS %.1f MiB",
			stack, presetTag(preset), tr, n, time.Since(t0).Round(time.Second), c.RSSPerConn/1024, c.HeapPerConn/1024, c.StackPerConn/1024, c.GoroutinesPerConn, float64(rss)/(1<<20))
	}
	return out, nil
}

// presetTag is " (preset P)" for a log line, or "" without a preset.
func presetTag(preset string) string {
	if preset == "" {
		return ""
	}
	return " (preset " + preset + ")"
}

// latency runs the latency role against A (peerArgs), with extra flags
// for the child.
func (r *runner) latency(stack, tr string, peerArgs []string, extra ...string) (LatencyResult, error) {
	args := append(append(slices.Clone(peerArgs), "-n", strconv.Itoa(r.o.iters)), extra...)
	b, err := r.startRole(stack, "latency", tr, args...)
	if err != nil {
		return LatencyResult{}, err
	}
	var lat struct {
		Samples []int64 `json:"samples_ns"`
	}
	err = b.recv(time.Minute+time.Duration(r.o.iters)*time.Second, &lat)
	if e := b.stop(); err == nil {
		err = e
	}
	if err != nil {
		return LatencyResult{}, err
	}
	return LatencyResult{Transport: tr, Iters: len(lat.Samples), P50Ms: percentileMs(lat.Samples, 50), P99Ms: percentileMs(lat.Samples, 99)}, nil
}

// measureLatency measures dial → first stream with a listener and dialers
// that both get the extra child flags (e.g. -classic).
func (r *runner) measureLatency(stack, tr string, extra ...string) (_ LatencyResult, err error) {
	a, h, err := r.startListener(stack, tr, extra...)
	if err != nil {
		return LatencyResult{}, err
	}
	defer func() {
		if e := a.stop(); err == nil {
			err = e
		}
	}()
	lr, err := r.latency(stack, tr, []string{"-peer", h.ID, "-addr", h.Addr}, extra...)
	if err != nil {
		return LatencyResult{}, err
	}
	r.logf("%s %s %v: dial to first stream round trip p50 %.2f ms, p99 %.2f ms", stack, tr, extra, lr.P50Ms, lr.P99Ms)
	return lr, nil
}

func (r *runner) measureTimings(res *Results, sr *StackResult, tr string) (err error) {
	stack := sr.Name
	a, h, err := r.startListener(stack, tr)
	if err != nil {
		return err
	}
	defer func() {
		if e := a.stop(); err == nil {
			err = e
		}
	}()
	peerArgs := []string{"-peer", h.ID, "-addr", h.Addr}

	// Dial → first stream round trip.
	lr, err := r.latency(stack, tr, peerArgs)
	if err != nil {
		return err
	}
	sr.Latency = append(sr.Latency, lr)
	r.logf("%s %s: dial to first stream round trip p50 %.2f ms, p99 %.2f ms", stack, tr, lr.P50Ms, lr.P99Ms)
	var b *proc

	// Throughput: the median of r.o.tputRuns transfers, each from a fresh
	// dialer (one transfer moves 10-25 % between runs on a shared VM).
	total := int64(r.o.mib) << 20
	t := ThroughputResult{Transport: tr}
	for range r.o.tputRuns {
		b, err = r.startRole(stack, "tput", tr, append(peerArgs, "-bytes", strconv.FormatInt(total, 10))...)
		if err != nil {
			return err
		}
		var tp struct {
			Bytes int64 `json:"bytes"`
			NS    int64 `json:"ns"`
			CPU   int64 `json:"cpu_ns"`
		}
		err = b.recv(2*time.Minute+time.Duration(r.o.mib)*200*time.Millisecond, &tp)
		if e := b.stop(); err == nil {
			err = e
		}
		if err != nil {
			return err
		}
		if tp.NS <= 0 {
			return fmt.Errorf("%s %s throughput: no time measured", stack, tr)
		}
		t.Bytes = tp.Bytes
		t.Runs = append(t.Runs, float64(tp.Bytes)/(float64(tp.NS)/1e9)/1e6)
	}
	sorted := slices.Sorted(slices.Values(t.Runs))
	t.MBps = sorted[len(sorted)/2]
	sr.Throughput = append(sr.Throughput, t)
	r.logf("%s %s: throughput %.0f MB/s (median of %.0f MB/s)", stack, tr, t.MBps, t.Runs)

	if tr != "tcp" {
		return nil
	}
	// Accepted connections per second.
	b, err = r.startRole(stack, "rate", tr, append(peerArgs, "-c", strconv.Itoa(r.o.rateC), "-dur", r.o.rateDur.String())...)
	if err != nil {
		return err
	}
	defer func() {
		if e := b.stop(); err == nil {
			err = e
		}
	}()
	var ev struct {
		Event string `json:"event"`
	}
	if err := b.recv(2*time.Minute, &ev); err != nil || ev.Event != "start" {
		return fmt.Errorf("rate: start: %v %q", err, ev.Event)
	}
	var c0, c1 listenStats
	if err := a.call("count", time.Minute, &c0); err != nil {
		return err
	}
	t0 := time.Now()
	if err := b.recv(r.o.rateDur+time.Minute, &ev); err != nil || ev.Event != "stop" {
		return fmt.Errorf("rate: stop: %v %q", err, ev.Event)
	}
	if err := a.call("count", time.Minute, &c1); err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	var done struct {
		Dials  int64  `json:"dials"`
		Failed int64  `json:"failed"`
		First  string `json:"first_failure"`
	}
	if err := b.recv(2*time.Minute, &done); err != nil {
		return err
	}
	if done.Failed > 0 {
		first := done.First
		if i := strings.LastIndex(first, ": "); i >= 0 && len(first) > 120 {
			first = "… " + first[i+2:] // the cause, without the chain of contexts
		}
		note := fmt.Sprintf("Accept rate, %s %s: %d of %d dials failed and were retried after 10 ms (first failure: %s)",
			stack, trName[tr], done.Failed, done.Failed+done.Dials, first)
		r.logf("%s", note)
		res.Notes = append(res.Notes, note)
	}
	n := c1.Accepted - c0.Accepted
	if n == 0 {
		return fmt.Errorf("%s %s rate: no connection accepted in %.1f s (dialer: %d dials, %d failed: %s)", stack, tr, secs, done.Dials, done.Failed, done.First)
	}
	sr.Rate = RateResult{
		Transport:    tr,
		Dialers:      r.o.rateC,
		Seconds:      secs,
		Accepted:     int64(n),
		PerSec:       float64(n) / secs,
		CPUMsPerConn: float64(c1.CPU-c0.CPU) / 1e6 / float64(n),
	}
	r.logf("%s %s: %.0f connections accepted per second, %.2f ms listener CPU each", stack, tr, sr.Rate.PerSec, sr.Rate.CPUMsPerConn)
	return nil
}

func percentileMs(ns []int64, p float64) float64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1 // nearest rank
	return float64(s[max(i, 0)]) / 1e6
}
