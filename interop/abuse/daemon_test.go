package abuse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// presets are the presets every attack runs on.
var presets = []string{"server", "iot"}

// forPresets runs f as one subtest per preset.
func forPresets(t *testing.T, f func(t *testing.T, preset string)) {
	for _, p := range presets {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

// forPresetsParallel is forPresets for attacks that mostly wait for the
// daemon (to settle, to cut a client off): they and their presets run in
// parallel with each other, after the other tests, each with its own
// daemon, so that the waits overlap.
func forPresetsParallel(t *testing.T, f func(t *testing.T, preset string)) {
	t.Parallel()
	for _, p := range presets {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			f(t, p)
		})
	}
}

const (
	daemonStartTimeout = 20 * time.Second
	daemonStopTimeout  = 10 * time.Second
	commandTimeout     = 15 * time.Second
)

// daemon is a `mote daemon` child process with a repo of its own.
type daemon struct {
	preset string
	repo   string
	cmd    *exec.Cmd
	pid    int
	id     peer.ID
	tcp    ma.Multiaddr // loopback TCP listen address, without /p2p
	quic   ma.Multiaddr // loopback QUIC listen address, without /p2p
	limits node.Limits  // `mote config show --effective`

	ready   chan struct{} // closed when "daemon ready" was printed
	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // valid after exited
	stderr  *tailBuffer
}

// daemonConfig is what a test chooses about its daemon.
type daemonConfig struct {
	preset string
	// addrFilters is Swarm.AddrFilters; nil leaves the preset's default.
	addrFilters []string
}

// repoConfig is the part of cmd/mote's config.json (repo.go) the suite
// writes: loopback listen addresses, no bootstrap peers, and the per-IP
// limits applied to loopback so that 127.0.0.2–127.0.0.9 count as hosts.
type repoConfig struct {
	Addresses struct {
		Swarm []string
		API   string
	}
	Swarm struct {
		AddrFilters   []string `json:",omitempty"`
		LimitLoopback bool
	}
	Bootstrap []string
}

// running tracks the daemons started, for TestMain's check that none
// outlives the tests.
var running struct {
	sync.Mutex
	m map[*daemon]struct{}
}

func startDaemon(t *testing.T, cfg daemonConfig) *daemon {
	t.Helper()
	repo := t.TempDir()
	var rc repoConfig
	rc.Addresses.Swarm = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	rc.Addresses.API = "/ip4/127.0.0.1/tcp/0"
	rc.Swarm.LimitLoopback = true
	rc.Swarm.AddrFilters = cfg.addrFilters
	rc.Bootstrap = []string{}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		preset: cfg.preset,
		repo:   repo,
		ready:  make(chan struct{}),
		exited: make(chan struct{}),
		stderr: &tailBuffer{max: 16 << 10},
	}
	d.limits = effectiveLimits(t, repo, cfg.preset)

	d.cmd = exec.Command(moteBin, "daemon", "--repo", repo, "--preset", cfg.preset)
	d.cmd.Env = daemonEnv()
	// The kernel kills the daemon if the test binary dies first.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.pid = d.cmd.Process.Pid
	running.Lock()
	if running.m == nil {
		running.m = make(map[*daemon]struct{})
	}
	running.m[d] = struct{}{}
	running.Unlock()
	var parseErr error
	go func() {
		defer close(d.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "listening on "); ok && parseErr == nil {
				parseErr = d.addListenAddr(rest)
			}
			if line == "daemon ready" {
				close(d.ready)
			}
		}
		d.waitErr = d.cmd.Wait() // after the last read of stdout, as exec requires
		running.Lock()
		delete(running.m, d)
		running.Unlock()
	}()
	t.Cleanup(func() { d.stop(t) })

	timer := time.NewTimer(daemonStartTimeout)
	defer timer.Stop()
	select {
	case <-d.ready:
	case <-d.exited:
		t.Fatalf("mote daemon exited before it was ready: %v\nstderr:\n%s", d.waitErr, d.stderr)
	case <-timer.C:
		t.Fatalf("mote daemon not ready within %v\nstderr:\n%s", daemonStartTimeout, d.stderr)
	}
	if parseErr != nil {
		t.Fatal(parseErr)
	}
	if d.tcp == nil || d.quic == nil {
		t.Fatalf("mote daemon did not print a TCP and a QUIC listen address (tcp %v, quic %v)", d.tcp, d.quic)
	}
	return d
}

// addListenAddr records one "listening on <addr>/p2p/<id>" line.
func (d *daemon) addListenAddr(s string) error {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return fmt.Errorf("daemon listen address %q: %w", s, err)
	}
	addr, id, err := transport.SplitP2P(m)
	if err != nil || id == "" {
		return fmt.Errorf("daemon listen address %q: no /p2p/<id> (%v)", s, err)
	}
	d.id = id
	if strings.HasSuffix(addr.String(), "/quic-v1") {
		d.quic = addr
	} else {
		d.tcp = addr
	}
	return nil
}

// daemonEnv is the test's environment without the Go runtime settings
// that would override the preset's (GOMEMLIMIT) or change what RSS means.
func daemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOMEMLIMIT", "GOGC", "GODEBUG", "GOMAXPROCS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stop ends the daemon with SIGTERM, as a user would, and kills it if it
// has not exited within daemonStopTimeout; both an exit code other than 0
// and the kill fail the test.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(daemonStopTimeout)
		defer timer.Stop()
		select {
		case <-d.exited:
		case <-timer.C:
			d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("mote daemon (%s) did not exit within %v of SIGTERM; killed\nstderr:\n%s", d.preset, daemonStopTimeout, d.stderr)
			return
		}
	}
	if d.waitErr != nil {
		t.Errorf("mote daemon (%s) exit: %v\nstderr:\n%s", d.preset, d.waitErr, d.stderr)
	}
}

// checkDaemonsReaped fails the run if a daemon is still running (a test
// that forgot its cleanup); it kills them.
func checkDaemonsReaped() error {
	running.Lock()
	var left []*daemon
	for d := range running.m {
		left = append(left, d)
	}
	running.Unlock()
	for _, d := range left {
		d.cmd.Process.Kill()
		<-d.exited
	}
	if len(left) > 0 {
		return fmt.Errorf("%d mote daemons were still running after the tests", len(left))
	}
	return nil
}

// runMote runs the mote binary with args and returns its standard output.
func runMote(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, moteBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("mote %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// effectiveLimits reads the limits a daemon of the repo runs with.
func effectiveLimits(t *testing.T, repo, preset string) node.Limits {
	t.Helper()
	out, err := runMote("config", "show", "--effective", "--repo", repo, "--preset", preset)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Preset string
		Limits node.Limits
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("mote config show --effective: %v\n%s", err, out)
	}
	if cfg.Preset != preset {
		t.Fatalf("mote config show --effective --preset %s says preset %q", preset, cfg.Preset)
	}
	return cfg.Limits
}

// daemonStats is `mote stats`' answer (cmd/mote/stats.go).
type daemonStats struct {
	Goroutines   int
	HeapInuse    uint64
	RSS          uint64
	Conns        int
	Peers        int
	Limits       map[string]uint64
	Usage        node.Usage
	AcceptErrors uint64
}

func (d *daemon) tryStats() (daemonStats, error) {
	var st daemonStats
	out, err := runMote("stats", "--repo", d.repo)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("mote stats: %w\n%s", err, out)
	}
	return st, nil
}

func (d *daemon) stats(t *testing.T) daemonStats {
	t.Helper()
	st, err := d.tryStats()
	if err != nil {
		t.Fatalf("%v\ndaemon stderr:\n%s", err, d.stderr)
	}
	return st
}

// waitStats polls `mote stats` until cond holds, and fails the test with
// what if it does not within timeout.
func (d *daemon) waitStats(t *testing.T, timeout time.Duration, what string, cond func(daemonStats) bool) daemonStats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := d.stats(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last stats: goroutines %d, conns %d, peers %d, usage %+v, limits %v",
				what, timeout, st.Goroutines, st.Conns, st.Peers, st.Usage, fired(nil, st.Limits))
			return st
		}
		time.Sleep(50 * time.Millisecond) // polling
	}
}

// procStatus reads a field of /proc/<pid>/status in bytes (RssAnon, VmRSS).
func procStatus(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// rssField is the daemon's memory the attacks measure: its anonymous
// resident memory (heap, stacks, the runtime's own), which is what a
// peer can make it allocate. VmRSS adds the binary's pages as they are
// first run, which an attack exercising new code paths (QUIC, TLS) pages
// in once and for good: memory the kernel can drop, not growth.
const rssField = "RssAnon"

// rss is the daemon's anonymous resident memory, from /proc.
func (d *daemon) rss(t *testing.T) uint64 {
	t.Helper()
	v, err := procStatus(d.pid, rssField)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// apiEndpoint is the host:port and token of the daemon's control API, from
// <repo>/api.
func (d *daemon) apiEndpoint(t *testing.T) (addr, token string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.repo, "api"))
	if err != nil {
		t.Fatal(err)
	}
	first, second, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	m, err := ma.NewMultiaddr(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("api file: %v", err)
	}
	na, err := ma.ToNetAddr(m)
	if err != nil {
		t.Fatalf("api file: %v", err)
	}
	return na.String(), strings.TrimSpace(second)
}

// tailBuffer keeps the last max bytes written to it (a daemon's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
