// Command kadside runs mote's Kademlia DHT and go-libp2p-kad-dht side by
// side in one network and prints a markdown table of what each costs as
// a server and how each finds providers as a client (issue 11). The
// reference is go-libp2p-kad-dht v0.42.2 on go-libp2p v0.51.0, the
// versions the bench module pins (Kubo v0.43's); the issue names v0.35.
//
// Run it from the bench module:
//
//	cd bench && go run ./cmd/kadside
//	cd bench && go run ./cmd/kadside -nodes 12 -keys 20 -self
//
// The network: -nodes DHT servers (default 50) on 127.0.0.1 over TCP,
// half mote and half go-libp2p, all on /ipfs/kad/1.0.0 with no address
// or IP-diversity filter, so that loopback peers are accepted. One server
// of each stack runs in a process of its own, the measured servers; the
// others, and two clients (a mote and a go-libp2p one, in client mode),
// run in this process. Every node bootstraps from two seeds, one of each
// stack; once all have joined, every server refreshes its routing table
// once more (as the early joiners would in life), and the clients
// bootstrap and refresh.
//
// What it measures:
//
//   - Each measured server's VmRSS (read here from /proc/<pid>/status),
//     Go heap and goroutines (the child's procstat.Settled, after GC),
//     once the network formed and again after the load phase, and its
//     peak RSS (VmHWM). The children run with the Go runtime's defaults:
//     GOMAXPROCS is the machine's CPU count, reported.
//   - The load phase: -keys keys (sha2-256 multihashes), each provided by
//     -providers random in-process servers (both stacks), then looked up
//     once by each client: FindProviders with count -count (20, go's
//     FindProviders and Kubo's `routing findprovs` default, so that both
//     lookups run to their end when fewer providers exist), the two
//     clients alternating which goes first. Per lookup: the wall time of
//     the call, the providers found and the GET_PROVIDERS requests sent:
//     for mote, LookupStats.Requests of FindProviders; for go, the
//     SendingQuery events go publishes before each request of the lookup
//     and of its follow-up (routing.RegisterForQueryEvents); the
//     follow-up asks again the closest peers whose request was still in
//     flight when the lookup ended, so go may ask a peer twice. Neither
//     count includes the routing-table liveness checks a lookup sets off.
//
// Loopback has no latency: the lookup times are CPU and scheduling, not
// round trips. No delay is added (neither stack offers a hook for it
// that the other has too).
//
// The measured servers are this command built twice, with the build tag
// kadsidemote or kadsidego, so that each links and initialises only its
// own stack; -self runs this executable instead (both stacks linked, no
// build: quicker, for checking, its server figures include the other
// stack's package initialisation).
//
// Flags:
//
//	-nodes N      DHT servers in the network (default 50, at least 4)
//	-keys N       keys provided and looked up by each client (default 200)
//	-providers N  providers of each key (default 2)
//	-count N      providers each FindProviders asks for (default 20)
//	-seed N       seed of the keys and of the choice of providers (default 1)
//	-self         measured servers from this executable, not tagged builds
//	-json FILE    write the results as JSON
//	-pprof DIR    after the load, the measured servers write their goroutine
//	              and heap profiles (text) into DIR
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mote-p2p/mote/bench/internal/procstat"
)

func main() {
	os.Exit(mainArgs(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the orchestrator's settings.
type options struct {
	nodes     int
	keys      int
	providers int
	count     int
	seed      uint64
	self      bool
	jsonPath  string
	pprofDir  string // where the measured servers write their profiles after the load
	log       io.Writer
}

// Bounds of the orchestrator's steps.
const (
	answerTimeout  = 2 * time.Minute // a child's answer to a command
	provideTimeout = time.Minute
	lookupTimeout  = time.Minute
	// provideWorkers bounds the provides in flight: enough to keep two
	// cores busy, few enough that no node's limits are approached.
	provideWorkers = 8
)

// envChild set to 1 tells a test binary started as a measured server to
// run as the command.
const envChild = "KADSIDE_CHILD"

func mainArgs(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kadside", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var serveStack, bootstrap string
	fs.StringVar(&serveStack, "serve", "", "run as a measured server of `STACK` (mote or go; internal)")
	fs.StringVar(&bootstrap, "bootstrap", "", "measured server: the seeds, multiaddrs ending in /p2p/ID, comma-separated")
	var o options
	fs.IntVar(&o.nodes, "nodes", 50, "DHT servers in the network, half of each stack")
	fs.IntVar(&o.keys, "keys", 200, "keys provided, each looked up once by each client")
	fs.IntVar(&o.providers, "providers", 2, "providers of each key, random in-process servers")
	fs.IntVar(&o.count, "count", 20, "providers each FindProviders asks for")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the keys and of the choice of providers")
	fs.BoolVar(&o.self, "self", false, "run the measured servers from this executable (both stacks linked) instead of tagged builds")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to `FILE`")
	fs.StringVar(&o.pprofDir, "pprof", "", "after the load, have the measured servers write goroutine and heap profiles into `DIR`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.pprofDir != "" {
		abs, err := filepath.Abs(o.pprofDir)
		if err == nil {
			err = os.MkdirAll(abs, 0o755)
		}
		if err != nil {
			fmt.Fprintln(stderr, "kadside: -pprof:", err)
			return 2
		}
		o.pprofDir = abs
	}
	if serveStack != "" {
		return serve(serveStack, bootstrap, stdin, stdout)
	}
	if o.nodes < 4 || o.keys <= 0 || o.providers <= 0 || o.count <= 0 {
		fmt.Fprintln(stderr, "kadside: -nodes must be at least 4, and -keys, -providers and -count positive")
		return 2
	}
	if o.providers > o.nodes-2 {
		fmt.Fprintf(stderr, "kadside: -providers %d: only %d servers run in this process\n", o.providers, o.nodes-2)
		return 2
	}
	o.log = &syncWriter{w: stderr} // the children's standard error is copied in concurrently
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(stderr, "kadside:", err)
		return 1
	}
	fmt.Fprint(stdout, res.table())
	if o.jsonPath != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(o.jsonPath, append(data, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "kadside:", err)
			return 1
		}
	}
	return 0
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

// runner holds one run's state.
type runner struct {
	o   options
	res *Results
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.log, "kadside: "+format+"\n", args...)
}

// note records something the reader of the results should know, and
// logs it.
func (r *runner) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.res.Notes = append(r.res.Notes, s)
	r.logf("%s", s)
}

// local is a node running in this process.
type local struct {
	stack string
	n     dhtNode
}

func run(o options) (_ *Results, err error) {
	start := time.Now()
	for _, name := range []string{stackMote, stackGo} {
		if stacks[name] == nil {
			return nil, fmt.Errorf("this binary has no %s stack (built with a kadside tag: it can only -serve)", name)
		}
	}
	// Every in-process node may hold a connection to every other, and
	// both ends of it are here.
	if nofile, need := procstat.RaiseNoFile(), uint64((o.nodes+2)*(o.nodes+2)+256); nofile != 0 && nofile < need {
		return nil, fmt.Errorf("RLIMIT_NOFILE is %d; %d nodes need about %d", nofile, o.nodes, need)
	}
	moteServers := o.nodes / 2
	r := &runner{o: o, res: &Results{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Go:       runtime.Version(),
		OS:       runtime.GOOS,
		Arch:     runtime.GOARCH,
		CPUs:     runtime.NumCPU(),
		CPU:      cpuModel(),
		GoLibp2p: depVersion("github.com/libp2p/go-libp2p"),
		KadDHT:   depVersion("github.com/libp2p/go-libp2p-kad-dht"),
		SelfExec: o.self,
		Params: Params{Nodes: o.nodes, MoteServers: moteServers, GoServers: o.nodes - moteServers,
			Keys: o.keys, Providers: o.providers, Count: o.count, Seed: o.seed},
	}}

	bins, cleanup, err := r.children()
	if err != nil {
		return nil, err
	}
	defer cleanup()

	// The in-process servers, seeds first, the stacks alternating.
	var servers []local
	defer func() {
		for _, l := range servers {
			if e := l.n.close(); e != nil && err == nil {
				err = fmt.Errorf("closing a %s server: %w", l.stack, e)
			}
		}
	}()
	counts := map[string]int{stackMote: moteServers - 1, stackGo: o.nodes - moteServers - 1}
	t0 := time.Now()
	var seeds []addrInfo
	for len(servers) < o.nodes-2 {
		for _, name := range []string{stackMote, stackGo} {
			if counts[name] == 0 {
				continue
			}
			counts[name]--
			n, err := stacks[name].start(true)
			if err != nil {
				return nil, err
			}
			servers = append(servers, local{name, n})
			if len(seeds) < 2 {
				seeds = append(seeds, n.info())
			}
			if len(servers) == 1 {
				continue // the first seed has no one to join yet: below
			}
			if err := bootstrapNode(n, seeds); err != nil {
				return nil, fmt.Errorf("%s server %d: %w", name, len(servers), err)
			}
		}
	}
	if err := bootstrapNode(servers[0].n, seeds); err != nil {
		return nil, fmt.Errorf("%s seed: %w", servers[0].stack, err)
	}
	r.logf("%d in-process servers joined in %v", len(servers), time.Since(t0).Round(time.Millisecond))

	// The measured servers.
	var seedArgs []string
	for _, s := range seeds {
		seedArgs = append(seedArgs, s.bootstrapArg())
	}
	children := make(map[string]*proc)
	baseRSS := make(map[string]int64)
	defer func() {
		for _, name := range []string{stackMote, stackGo} {
			if p := children[name]; p != nil {
				if e := p.stop(); e != nil && err == nil {
					err = e
				}
			}
		}
	}()
	for _, name := range []string{stackMote, stackGo} {
		p, err := r.start(name+" server", bins[name], "-serve", name, "-bootstrap", strings.Join(seedArgs, ","))
		if err != nil {
			return nil, err
		}
		children[name] = p
		var h hello
		if err := p.recv(bootstrapTimeout+time.Minute, &h); err != nil {
			return nil, err
		}
		r.res.GOMAXPROCS = h.GOMAXPROCS
		baseRSS[name] = h.BaseRSS
		r.logf("%s server (pid %d, GOMAXPROCS %d) joined", name, h.PID, h.GOMAXPROCS)
	}

	// Everyone refreshes once all have joined.
	t0 = time.Now()
	for i, l := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		err := l.n.refresh(ctx)
		cancel()
		if err != nil {
			r.note("Refresh of in-process %s server %d: %v", l.stack, i, err)
		}
	}
	for _, name := range []string{stackMote, stackGo} {
		var ok struct{}
		if err := children[name].call("refresh", answerTimeout, &ok); err != nil {
			r.note("Refresh of the measured %s server: %v", name, err)
		}
	}
	r.logf("refreshed in %v", time.Since(t0).Round(time.Millisecond))

	// The clients.
	clients := make(map[string]dhtNode)
	defer func() {
		for _, name := range []string{stackMote, stackGo} {
			if c := clients[name]; c != nil {
				if e := c.close(); e != nil && err == nil {
					err = fmt.Errorf("closing the %s client: %w", name, e)
				}
			}
		}
	}()
	for _, name := range []string{stackMote, stackGo} {
		c, err := stacks[name].start(false)
		if err != nil {
			return nil, err
		}
		clients[name] = c
		if err := bootstrapNode(c, seeds); err != nil {
			return nil, fmt.Errorf("%s client: %w", name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		err = c.refresh(ctx)
		cancel()
		if err != nil {
			r.note("Refresh of the %s client: %v", name, err)
		}
	}
	r.res.Network = r.network(servers, clients)

	formed := make(map[string]ServerStats)
	for _, name := range []string{stackMote, stackGo} {
		if formed[name], err = stats(children[name]); err != nil {
			return nil, err
		}
	}
	r.logf("network formed: mote server %s, go server %s", formed[stackMote], formed[stackGo])

	// Load: provides, then lookups.
	rng := rand.New(rand.NewPCG(o.seed, 0x6b6164))
	keys := make([][]byte, o.keys)
	provs := make([]map[string]bool, o.keys)
	t0 = time.Now()
	r.res.Provides = r.provideAll(servers, keys, provs, rng)
	r.logf("%d provides (%d failed) in %v", r.res.Provides.Records, r.res.Provides.Failed, time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	samples := map[string][]lookupSample{}
	for i, key := range keys {
		order := []string{stackMote, stackGo}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, name := range order {
			samples[name] = append(samples[name], lookup(clients[name], key, o.count, provs[i]))
		}
	}
	r.logf("%d lookups by each client in %v", o.keys, time.Since(t0).Round(time.Millisecond))

	for _, name := range []string{stackMote, stackGo} {
		loaded, err := stats(children[name])
		if err != nil {
			return nil, err
		}
		r.res.Servers = append(r.res.Servers, ServerResult{Stack: name, BaseRSS: baseRSS[name], Formed: formed[name], Loaded: loaded})
		if o.pprofDir != "" {
			var ok struct{}
			if err := children[name].call("pprof "+o.pprofDir, answerTimeout, &ok); err != nil {
				return nil, err
			}
		}
		cr := clientResult(name, samples[name])
		r.res.Clients = append(r.res.Clients, cr)
		if cr.Failed > 0 {
			r.note("%s client: %d of %d lookups failed (first: %s)", name, cr.Failed, cr.Lookups, cr.FirstError)
		}
		r.logf("%s: server after load %s; client FindProviders p50 %.2f ms, p90 %.2f ms, %.0f requests (median), found all in %d of %d",
			name, loaded, cr.P50Ms, cr.P90Ms, cr.RequestsP50, cr.FoundAll, cr.Lookups)
	}
	r.res.Seconds = time.Since(start).Seconds()
	return r.res, nil
}

// bootstrapNode bootstraps n from seeds within bootstrapTimeout.
func bootstrapNode(n dhtNode, seeds []addrInfo) error {
	ctx, cancel := context.WithTimeout(context.Background(), bootstrapTimeout)
	defer cancel()
	return n.bootstrap(ctx, seeds)
}

// network describes the routing tables of the in-process nodes.
func (r *runner) network(servers []local, clients map[string]dhtNode) NetworkResult {
	sum := map[string]int{}
	num := map[string]int{}
	for _, l := range servers {
		sum[l.stack] += l.n.tableSize()
		num[l.stack]++
	}
	mean := func(name string) float64 {
		if num[name] == 0 {
			return 0
		}
		return float64(sum[name]) / float64(num[name])
	}
	return NetworkResult{
		MoteTableMean:   mean(stackMote),
		GoTableMean:     mean(stackGo),
		MoteClientTable: clients[stackMote].tableSize(),
		GoClientTable:   clients[stackGo].tableSize(),
	}
}

// provideAll makes the keys and has each provided by r.o.providers
// distinct random servers, provideWorkers at a time; provs[i] collects
// the IDs of those whose provide of keys[i] succeeded.
func (r *runner) provideAll(servers []local, keys [][]byte, provs []map[string]bool, rng *rand.Rand) ProvideResult {
	type job struct {
		key int
		n   dhtNode
	}
	var jobs []job
	for i := range keys {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], r.o.seed)
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		sum := sha256.Sum256(b[:])
		keys[i] = append([]byte{0x12, 0x20}, sum[:]...) // sha2-256 multihash
		provs[i] = make(map[string]bool)
		for _, j := range rng.Perm(len(servers))[:r.o.providers] {
			jobs = append(jobs, job{i, servers[j].n})
		}
	}
	var mu sync.Mutex
	var pr ProvideResult
	work := make(chan job)
	var wg sync.WaitGroup
	for range provideWorkers {
		wg.Go(func() {
			for j := range work {
				ctx, cancel := context.WithTimeout(context.Background(), provideTimeout)
				err := j.n.provide(ctx, keys[j.key])
				cancel()
				mu.Lock()
				if err != nil {
					pr.Failed++
					if pr.FirstError == "" {
						pr.FirstError = err.Error()
					}
				} else {
					pr.Records++
					provs[j.key][j.n.info().ID] = true
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	if pr.Failed > 0 {
		r.note("%d of %d provides failed (first: %s)", pr.Failed, len(jobs), pr.FirstError)
	}
	return pr
}

// lookup runs one FindProviders of key by c and checks what it found
// against want.
func lookup(c dhtNode, key []byte, count int, want map[string]bool) lookupSample {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	t0 := time.Now()
	ids, requests, err := c.findProviders(ctx, key, count)
	s := lookupSample{ns: time.Since(t0).Nanoseconds(), requests: requests, err: err}
	for _, id := range ids {
		if want[id] {
			s.found++
		}
	}
	s.all = s.found == len(want)
	return s
}

// ---------------------------------------------------------------------------
// The measured servers

// children returns the executables of the measured servers, by stack,
// and a function that removes what it built.
func (r *runner) children() (map[string]string, func(), error) {
	if r.o.self {
		self, err := os.Executable()
		if err != nil {
			return nil, nil, err
		}
		return map[string]string{stackMote: self, stackGo: self}, func() {}, nil
	}
	benchDir, err := benchModule()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "kadside-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	bins := make(map[string]string)
	for _, b := range []struct{ name, tag string }{{stackMote, "kadsidemote"}, {stackGo, "kadsidego"}} {
		name, tag := b.name, b.tag
		bins[name] = filepath.Join(dir, "kadside-"+name)
		t0 := time.Now()
		cmd := exec.Command("go", "build", "-buildvcs=false", "-tags", tag, "-o", bins[name], "./cmd/kadside")
		cmd.Dir = benchDir
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("go build -tags %s: %w\n%s", tag, err, out)
		}
		r.logf("built the %s server (-tags %s) in %v", name, tag, time.Since(t0).Round(100*time.Millisecond))
	}
	return bins, cleanup, nil
}

// benchModule is the bench module's directory; the working directory
// must be inside it.
func benchModule() (string, error) {
	cmd := exec.Command("go", "env", "GOMOD")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	data, err := os.ReadFile(gomod)
	if err != nil || !bytes.HasPrefix(data, []byte("module github.com/mote-p2p/mote/bench\n")) {
		return "", fmt.Errorf("run from the bench module's directory, or with -self (go.mod here is %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

// proc is a running measured server: commands go to its standard input,
// JSON lines come from its standard output.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan []byte // closed when its standard output ends
}

// maxLine bounds a child's answer line.
const maxLine = 1 << 20

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
	p := &proc{name: name, cmd: cmd, stdin: stdin, lines: make(chan []byte, 4)}
	// The reader ends when the child's standard output closes, which
	// stop brings about.
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 4096), maxLine)
		for sc.Scan() {
			p.lines <- bytes.Clone(sc.Bytes())
		}
		io.Copy(io.Discard, stdout) // a line over maxLine: drain to the end
	}()
	return p, nil
}

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
// has not exited after a minute.
func (p *proc) stop() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() {
		for range p.lines { // what it still says: Wait must follow the last read
		}
		done <- p.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		return nil
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit; killed", p.name)
	}
}

// stats asks a measured server for its figures after GC and reads its
// VmRSS and VmHWM.
func stats(p *proc) (ServerStats, error) {
	var cs childStats
	if err := p.call("stats", answerTimeout, &cs); err != nil {
		return ServerStats{}, err
	}
	rss, err := procstat.VmRSS(p.cmd.Process.Pid)
	if err != nil {
		return ServerStats{}, err
	}
	hwm, err := vmHWM(p.cmd.Process.Pid)
	if err != nil {
		return ServerStats{}, err
	}
	return ServerStats{RSS: rss, PeakRSS: hwm, HeapInuse: cs.HeapInuse, StackInuse: cs.StackInuse,
		Goroutines: cs.Goroutines, CPUNs: cs.CPU, Table: cs.Table}, nil
}

// vmHWM is the peak resident set size of process pid, in bytes, from
// /proc/<pid>/status (procstat reads VmRSS only).
func vmHWM(pid int) (int64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(v); len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s: VmHWM %q: %w", path, v, err)
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, errors.New(path + ": no VmHWM line")
}

// depVersion is the version of module path linked into this binary, or
// "" if the build carries no module information.
func depVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
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
