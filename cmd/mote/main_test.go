//go:build unix

// End-to-end tests of the mote command, run as real processes: the test
// binary re-executes itself with MOTE_TEST_MAIN=1, which makes TestMain
// behave as the mote command. Unix only, for the signals.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
)

const childEnvVar = "MOTE_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnvVar) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const (
	startTimeout = 60 * time.Second // a daemon built with -race may start slowly
	stopTimeout  = 10 * time.Second // "promptly"
	cmdTimeout   = 60 * time.Second
	outputLimit  = 1 << 20
)

// moteExe is the test binary, which acts as mote when re-executed.
func moteExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("test executable: %v", err)
	}
	return exe
}

// childEnv is the environment of a mote process: ours without MOTE_PATH
// (so --repo or HOME decide), plus extra ("K=V").
func childEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MOTE_PATH=") || strings.HasPrefix(kv, childEnvVar+"=")
	})
	return append(append(env, childEnvVar+"=1"), extra...)
}

// outBuf is a bounded, concurrency-safe output buffer. Every write closes
// the channel returned by the last snapshot, so waiters need not poll.
type outBuf struct {
	mu      sync.Mutex
	b       []byte
	dropped int
	changed chan struct{}
}

func newOutBuf() *outBuf { return &outBuf{changed: make(chan struct{})} }

// Write keeps the first outputLimit bytes and counts the rest.
func (o *outBuf) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(len(p), outputLimit-len(o.b))
	o.b = append(o.b, p[:n]...)
	o.dropped += len(p) - n
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns the output so far and a channel closed by the next write.
func (o *outBuf) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := string(o.b)
	if o.dropped > 0 {
		s += fmt.Sprintf("\n[%d bytes dropped]", o.dropped)
	}
	return s, o.changed
}

func (o *outBuf) String() string { s, _ := o.snapshot(); return s }

// result is the outcome of a mote command that ran to completion.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// mote runs one mote command to completion.
func mote(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, moteExe(t), args...)
	cmd.Env = env
	stdout, stderr := newOutBuf(), newOutBuf()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("mote %s: no exit within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), cmdTimeout, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("mote %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustMote runs a mote command that must succeed.
func mustMote(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := mote(t, env, args...)
	if r.code != 0 {
		t.Fatalf("mote %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// daemon is a running `mote daemon` process.
type daemon struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *outBuf
	exited         chan struct{} // closed once the process has been waited for
	repo           string        // where the api file lives
	id             string        // from "peer ID: …"
	addrs          []string      // from "listening on …", with /p2p/<id>
}

var (
	peerIDLine = regexp.MustCompile(`(?m)^peer ID: (\S+)$`)
	listenLine = regexp.MustCompile(`(?m)^listening on (\S+)$`)
)

// startDaemon runs `mote daemon args...` and waits until it is ready. repo
// is the repo directory the daemon will use. The process is killed and
// waited for when the test ends.
func startDaemon(t *testing.T, env []string, repo string, args ...string) *daemon {
	t.Helper()
	// A new repo gets the test profile: without it the daemon would
	// dial the public bootstrap peers.
	if _, err := os.Stat(filepath.Join(repo, configFile)); errors.Is(err, os.ErrNotExist) {
		mustMote(t, env, "init", "--profile=test", "--repo", repo)
	}
	cmd := exec.Command(moteExe(t), append([]string{"daemon"}, args...)...)
	cmd.Env = env
	d := &daemon{t: t, cmd: cmd, stdout: newOutBuf(), stderr: newOutBuf(), exited: make(chan struct{}), repo: repo}
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	go func() {
		cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
			<-d.exited
		}
	})

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for {
		out, changed := d.stdout.snapshot()
		if strings.Contains(out, "\ndaemon ready\n") {
			break
		}
		select {
		case <-changed:
		case <-d.exited:
			t.Fatalf("daemon exited before it was ready: %s", d.result())
		case <-deadline.C:
			t.Fatalf("daemon not ready within %v\nstdout:\n%s\nstderr:\n%s", startTimeout, out, d.stderr)
		}
	}
	out := d.stdout.String()
	m := peerIDLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("daemon printed no peer ID:\n%s", out)
	}
	d.id = m[1]
	if _, err := peer.Decode(d.id); err != nil {
		t.Fatalf("daemon printed peer ID %q: %v", d.id, err)
	}
	for _, m := range listenLine.FindAllStringSubmatch(out, -1) {
		d.addrs = append(d.addrs, m[1])
	}
	if len(d.addrs) == 0 {
		t.Fatalf("daemon printed no listen address:\n%s", out)
	}
	for _, a := range d.addrs {
		if !strings.HasSuffix(a, "/p2p/"+d.id) {
			t.Errorf("listen address %s does not end in /p2p/%s", a, d.id)
		}
	}
	return d
}

// result describes an exited daemon.
func (d *daemon) result() result {
	return result{stdout: d.stdout.String(), stderr: d.stderr.String(), code: d.cmd.ProcessState.ExitCode()}
}

// addr is the daemon's one listen address, as printed.
func (d *daemon) addr() string {
	d.t.Helper()
	if len(d.addrs) != 1 {
		d.t.Fatalf("want one listen address, daemon printed %q", d.addrs)
	}
	return d.addrs[0]
}

// stop sends sig and checks that the daemon exits 0 promptly and removes
// its api file.
func (d *daemon) stop(sig os.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal daemon: %v", err)
	}
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		d.t.Fatalf("daemon still running %v after %v\nstdout:\n%s\nstderr:\n%s", stopTimeout, sig, d.stdout, d.stderr)
	}
	if r := d.result(); r.code != 0 {
		d.t.Fatalf("daemon stopped by %v: %s", sig, r)
	}
	if !strings.Contains(d.stdout.String(), "\nshutting down\n") {
		d.t.Errorf("daemon did not say it was shutting down:\n%s", d.stdout)
	}
	if _, err := os.Stat(filepath.Join(d.repo, apiFile)); !errors.Is(err, os.ErrNotExist) {
		d.t.Errorf("api file after %v: stat: %v (want it removed)", sig, err)
	}
}

// loopback is the listen address every test daemon uses.
const loopback = "/ip4/127.0.0.1/tcp/0"

func TestDaemonRepoAndID(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := filepath.Join(t.TempDir(), "repo") // does not exist yet
	d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)

	addrRE := regexp.MustCompile(`^/ip4/127\.0\.0\.1/tcp/[1-9][0-9]*/p2p/` + regexp.QuoteMeta(d.id) + `$`)
	if !addrRE.MatchString(d.addr()) {
		t.Errorf("listen address %s, want /ip4/127.0.0.1/tcp/<port>/p2p/%s", d.addr(), d.id)
	}

	st, err := os.Stat(filepath.Join(repo, keyFile))
	if err != nil {
		t.Fatalf("identity key: %v", err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("identity key mode %v, want 0600", m)
	}
	b, err := os.ReadFile(filepath.Join(repo, configFile))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var cfg repoConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config: %v\n%s", err, b)
	}
	if cfg.Identity.PeerID != d.id {
		t.Errorf("config peer ID %q, want %q", cfg.Identity.PeerID, d.id)
	}
	if _, err := os.Stat(filepath.Join(repo, apiFile)); err != nil {
		t.Errorf("api file of a ready daemon: %v", err)
	}

	if got := strings.TrimSpace(mustMote(t, env, "id", "--repo", repo).stdout); got != d.id {
		t.Errorf("mote id: %q, want %q", got, d.id)
	}

	var info idInfo
	out := mustMote(t, env, "id", "--repo", repo, "--json").stdout
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("mote id --json: %v\n%s", err, out)
	}
	if info.ID != d.id {
		t.Errorf("mote id --json: ID %q, want %q", info.ID, d.id)
	}
	if !slices.Equal(info.Addresses, d.addrs) {
		t.Errorf("mote id --json: Addresses %q, want %q", info.Addresses, d.addrs)
	}
	if want := "mote/" + node.Version; info.AgentVersion != want {
		t.Errorf("mote id --json: AgentVersion %q, want %q", info.AgentVersion, want)
	}
	for _, p := range []string{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"} {
		if !slices.Contains(info.Protocols, p) {
			t.Errorf("mote id --json: Protocols %q lack %s", info.Protocols, p)
		}
	}

	d.stop(syscall.SIGTERM)

	// Without a daemon the ID still comes from the repo; a restart keeps it.
	if got := strings.TrimSpace(mustMote(t, env, "id", "--repo", repo).stdout); got != d.id {
		t.Errorf("mote id with the daemon stopped: %q, want %q", got, d.id)
	}
	d2 := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)
	if d2.id != d.id {
		t.Errorf("restarted daemon has peer ID %s, want %s", d2.id, d.id)
	}
	d2.stop(syscall.SIGTERM)
}

// connect runs `mote swarm connect` from a to b.
func connect(t *testing.T, env []string, a, b *daemon) {
	t.Helper()
	r := mustMote(t, env, "swarm", "connect", "--repo", a.repo, b.addr())
	if want := "connect " + b.id + " success"; strings.TrimSpace(r.stdout) != want {
		t.Errorf("mote swarm connect: %q, want %q", r.stdout, want)
	}
}

// peers runs `mote swarm peers` on d.
func peers(t *testing.T, env []string, d *daemon) []string {
	t.Helper()
	return strings.Fields(mustMote(t, env, "swarm", "peers", "--repo", d.repo).stdout)
}

func TestDaemonStopsOnSIGINTWithConnections(t *testing.T) {
	t.Parallel()
	env := childEnv()
	ra, rb := t.TempDir(), t.TempDir()
	a := startDaemon(t, env, ra, "--repo", ra, "--listen", loopback)
	b := startDaemon(t, env, rb, "--repo", rb, "--listen", loopback)
	connect(t, env, a, b)
	a.stop(os.Interrupt)
	b.stop(os.Interrupt)
}

func TestSwarmConnectAndPeers(t *testing.T) {
	t.Parallel()
	env := childEnv()
	ra, rb := t.TempDir(), t.TempDir()
	a := startDaemon(t, env, ra, "--repo", ra, "--listen", loopback)
	b := startDaemon(t, env, rb, "--repo", rb, "--listen", loopback)
	if got := peers(t, env, a); len(got) != 0 {
		t.Errorf("peers of a fresh daemon: %q", got)
	}

	connect(t, env, a, b)

	if got := peers(t, env, a); !slices.Equal(got, []string{b.addr()}) {
		t.Errorf("peers of A: %q, want [%s]", got, b.addr())
	}
	got := peers(t, env, b)
	if len(got) != 1 || !strings.HasSuffix(got[0], "/p2p/"+a.id) || !strings.HasPrefix(got[0], "/ip4/127.0.0.1/tcp/") {
		t.Errorf("peers of B: %q, want [/ip4/127.0.0.1/tcp/<port>/p2p/%s]", got, a.id)
	}

	// Connecting again reuses the connection.
	connect(t, env, a, b)
	if got := peers(t, env, a); len(got) != 1 {
		t.Errorf("peers of A after a second connect: %q", got)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)

	r := mustMote(t, env, "ping", "-n", "3", d.addr())
	if r.stderr != "" {
		t.Errorf("mote ping wrote to stderr:\n%s", r.stderr)
	}
	pong := regexp.MustCompile(`^Pong received: time=\d+\.\d\d ms$`)
	var pongs int
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "Pong") {
			if !pong.MatchString(l) {
				t.Errorf("malformed line %q", l)
			}
			pongs++
		}
	}
	if pongs != 3 {
		t.Errorf("mote ping -n 3: %d pongs\n%s", pongs, r.stdout)
	}
	if want := fmt.Sprintf("PING %s (mote/%s)\n", d.id, node.Version); !strings.HasPrefix(r.stdout, want) {
		t.Errorf("mote ping: output does not start with %q:\n%s", want, r.stdout)
	}
}

// silentListener accepts TCP connections and never answers; it returns
// the port.
func silentListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback TCP port nobody listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestPingErrors(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)
	addr := strings.TrimSuffix(d.addr(), "/p2p/"+d.id)

	key, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	other := peer.IDFromPublicKey(key.Public()).String()

	tests := []struct {
		name    string
		args    []string
		want    []string // substrings of the error line
		maxTime time.Duration
	}{
		{
			name: "unreachable",
			args: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", closedPort(t), d.id)},
			want: []string{"connection refused", d.id},
		},
		{
			name: "wrong peer ID",
			args: []string{addr + "/p2p/" + other},
			want: []string{other, d.id, "mismatch"},
		},
		{
			name: "invalid multiaddr",
			args: []string{"/ip4/not-an-ip/tcp/1"},
			want: []string{"not-an-ip"},
		},
		{
			name: "no p2p",
			args: []string{addr},
			want: []string{addr, "/p2p/<peer-id>"},
		},
		{
			name:    "timeout",
			args:    []string{"--timeout", "2s", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", silentListener(t), d.id)},
			want:    []string{"deadline exceeded"},
			maxTime: 15 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := mote(t, env, append([]string{"ping", "-n", "1"}, tc.args...)...)
			if r.code == 0 {
				t.Fatalf("mote ping succeeded: %s", r)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "Error: ") {
				t.Errorf("want one line \"Error: …\" on stderr: %s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error does not mention %q: %s", w, r.stderr)
				}
			}
			if tc.maxTime > 0 && time.Since(start) > tc.maxTime {
				t.Errorf("mote ping took %v, want under %v", time.Since(start), tc.maxTime)
			}
		})
	}
}

func TestNoDaemon(t *testing.T) {
	t.Parallel()
	env := childEnv()
	empty := filepath.Join(t.TempDir(), "empty")
	stale := t.TempDir()
	api := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d\n", closedPort(t))
	if err := os.WriteFile(filepath.Join(stale, apiFile), []byte(api), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{empty, stale} {
		for _, args := range [][]string{
			{"swarm", "peers", "--repo", repo},
			{"swarm", "connect", "--repo", repo, "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWMHrJzNwoLrkbbzJpyTQDzNT3XFuGZfwgXwTAZaQhMZmn"},
			{"id", "--json", "--repo", repo},
		} {
			r := mote(t, env, args...)
			if r.code != 1 || r.stdout != "" || r.stderr != "Error: "+errNoDaemon.Error()+"\n" {
				t.Errorf("mote %s: %s\nwant exit 1 and %q", strings.Join(args, " "), r, errNoDaemon)
			}
		}
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("commands created the repo %s: %v", empty, err)
	}

	// Printing the ID of a missing repo must not create an identity.
	r := mote(t, env, "id", "--repo", empty)
	if r.code != 1 || !strings.Contains(r.stderr, "no repo at "+empty) {
		t.Errorf("mote id of a missing repo: %s", r)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mote id created the repo %s: %v", empty, err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	env := childEnv()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: mote"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"ping", "--bogus", "/ip4/127.0.0.1/tcp/1"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"swarm", "frob"}, 1, `unknown subcommand "frob"`},
		{[]string{"swarm"}, 1, "want a subcommand"},
		{[]string{"ping"}, 1, "want one MULTIADDR"},
	} {
		r := mote(t, env, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("mote %s: %s\nwant exit %d and %q", strings.Join(tc.args, " "), r, tc.code, tc.want)
		}
		if strings.Count(r.stderr, tc.want) > 1 {
			t.Errorf("mote %s: error reported twice:\n%s", strings.Join(tc.args, " "), r.stderr)
		}
	}
	r := mustMote(t, env, "version")
	if want := "mote " + node.Version + "\n"; r.stdout != want {
		t.Errorf("mote version: %q, want %q", r.stdout, want)
	}
}

// TestDaemonDefaults runs `mote daemon` without flags: the repo is
// $HOME/.mote and the node listens on TCP and QUIC port 4001, IPv4 and
// IPv6. If those ports are taken on this machine the test fails, saying so.
func TestDaemonDefaults(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := childEnv("HOME=" + home)
	repo := filepath.Join(home, ".mote")
	// The default config, but for the public bootstrap list, which a
	// test must not dial.
	mustMote(t, env, "init")
	cfg, err := readConfig(repo)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Bootstrap, defaultBootstrap) {
		t.Errorf("a new repo's bootstrap list: %q, want the public one", cfg.Bootstrap)
	}
	cfg.Bootstrap = []string{}
	if err := writeConfig(repo, cfg); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, env, repo)

	for _, f := range []string{keyFile, configFile, apiFile} {
		if _, err := os.Stat(filepath.Join(repo, f)); err != nil {
			t.Errorf("default repo: %v", err)
		}
	}
	var tcp, quic bool
	for _, a := range d.addrs {
		switch {
		case strings.HasSuffix(a, "/tcp/4001/p2p/"+d.id):
			tcp = true
		case strings.HasSuffix(a, "/udp/4001/quic-v1/p2p/"+d.id):
			quic = true
		default:
			t.Errorf("listen address %s, want …/tcp/4001 or …/udp/4001/quic-v1", a)
		}
	}
	if !tcp || !quic {
		t.Errorf("listen addresses %v: want TCP and QUIC on port 4001", d.addrs)
	}
	if got := strings.TrimSpace(mustMote(t, env, "id").stdout); got != d.id {
		t.Errorf("mote id with the default repo: %q, want %q", got, d.id)
	}
	for _, a := range []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"} {
		r := mustMote(t, env, "ping", "-n", "1", a+"/p2p/"+d.id)
		if !strings.Contains(r.stdout, "Pong received") {
			t.Errorf("ping of the default daemon at %s: %s", a, r)
		}
	}
	d.stop(syscall.SIGTERM)
}

// TestQUICBetweenProcesses: two daemons that listen on QUIC only connect
// and ping each other over QUIC-v1; mote ping works over QUIC too.
func TestQUICBetweenProcesses(t *testing.T) {
	t.Parallel()
	env := childEnv()
	const quicLoopback = "/ip4/127.0.0.1/udp/0/quic-v1"
	ra, rb := t.TempDir(), t.TempDir()
	a := startDaemon(t, env, ra, "--repo", ra, "--listen", quicLoopback)
	b := startDaemon(t, env, rb, "--repo", rb, "--listen", quicLoopback)
	if !strings.Contains(b.addr(), "/quic-v1/p2p/") {
		t.Fatalf("daemon address %s is not QUIC", b.addr())
	}
	connect(t, env, a, b)
	if got := peers(t, env, a); !slices.Equal(got, []string{b.addr()}) {
		t.Errorf("peers of A: %q, want [%s]", got, b.addr())
	}
	// B sees A at A's listen port: dials reuse the listening socket.
	if got := peers(t, env, b); !slices.Equal(got, []string{a.addr()}) {
		t.Errorf("peers of B: %q, want [%s] (port reuse)", got, a.addr())
	}
	r := mustMote(t, env, "ping", "-n", "2", b.addr())
	if n := strings.Count(r.stdout, "Pong received"); n != 2 {
		t.Errorf("mote ping over QUIC: %d pongs:\n%s", n, r)
	}
	a.stop(syscall.SIGTERM)
	b.stop(syscall.SIGTERM)
}

// TestPresetsAndConfigShow: --preset selects the limits the daemon runs
// with, the repo's Preset and Limits are honoured, and config show
// --effective prints them.
func TestPresetsAndConfigShow(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	show := func(args ...string) map[string]any {
		t.Helper()
		r := mustMote(t, env, append([]string{"config", "show", "--repo", repo}, args...)...)
		var out map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("config show output: %v\n%s", err, r)
		}
		return out
	}
	limit := func(cfg map[string]any, name string) any {
		return cfg["Limits"].(map[string]any)[name]
	}
	eff := show("--effective")
	if eff["Preset"] != "server" || limit(eff, "MaxInboundConns") != float64(1024) {
		t.Errorf("default effective config: preset %v, MaxInboundConns %v", eff["Preset"], limit(eff, "MaxInboundConns"))
	}
	eff = show("--effective", "--preset", "iot")
	if eff["Preset"] != "iot" || limit(eff, "MaxInboundConns") != float64(64) || limit(eff, "MemoryLimit") != float64(32<<20) {
		t.Errorf("iot effective config: %v", eff)
	}
	if r := mote(t, env, "config", "show", "--repo", repo, "--effective", "--preset", "huge"); r.code == 0 {
		t.Errorf("unknown preset accepted: %s", r)
	}

	// The daemon runs with the preset; the repo's override wins over it.
	d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback, "--preset", "iot")
	if out := d.stdout.String(); !strings.Contains(out, "limits: preset iot") {
		t.Errorf("daemon --preset iot output:\n%s", out)
	}
	d.stop(syscall.SIGTERM)
	cfgPath := filepath.Join(repo, configFile)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	raw["Preset"] = "low-memory"
	raw["Limits"] = map[string]any{"MaxInboundConns": 3}
	b, _ = json.Marshal(raw)
	os.WriteFile(cfgPath, b, 0o600)
	eff = show("--effective")
	if eff["Preset"] != "low-memory" || limit(eff, "MaxInboundConns") != float64(3) || limit(eff, "MaxPeers") != float64(64) {
		t.Errorf("repo preset with override: %v", eff)
	}
}

// TestStats: mote stats reports the running daemon's cost and counters.
func TestStats(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)
	r := mustMote(t, env, "stats", "--repo", repo)
	var st struct {
		Goroutines int
		HeapInuse  uint64
		RSS        uint64
		Limits     map[string]uint64
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stats output: %v\n%s", err, r)
	}
	if st.Goroutines <= 0 || st.HeapInuse == 0 || st.RSS == 0 {
		t.Errorf("stats = %+v", st)
	}
	if _, ok := st.Limits["MaxInboundConns"]; !ok {
		t.Errorf("stats lack the limit counters: %v", st.Limits)
	}
	if !strings.Contains(r.stdout, `"AcceptErrors": 0`) {
		t.Errorf("stats lack the accept error count:\n%s", r.stdout)
	}
	d.stop(syscall.SIGTERM)
}

// TestAnnounceConfig: Addresses.AppendAnnounce and NoAnnounce in the
// repo config shape what the daemon advertises, as in Kubo.
func TestAnnounceConfig(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	startDaemon(t, env, repo, "--repo", repo, "--listen", loopback).stop(syscall.SIGTERM) // creates the repo
	cfgPath := filepath.Join(repo, configFile)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	const shown, hidden = "/ip4/198.51.100.7/tcp/4001", "/ip4/198.51.100.8/tcp/4001"
	addrs := raw["Addresses"].(map[string]any)
	addrs["AppendAnnounce"] = []string{shown, hidden}
	addrs["NoAnnounce"] = []string{"/ip4/198.51.100.8/ipcidr/32"}
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)
	defer d.stop(syscall.SIGTERM)
	var info idInfo
	out := mustMote(t, env, "id", "--repo", repo, "--json").stdout
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("mote id --json: %v\n%s", err, out)
	}
	p2p := "/p2p/" + d.id
	if !slices.Contains(info.Addresses, shown+p2p) || slices.Contains(info.Addresses, hidden+p2p) {
		t.Errorf("advertised %q, want %s and not %s", info.Addresses, shown, hidden)
	}
}

// apiFileRE is the api file of a daemon listening on loopback: its address,
// then its token.
var apiFileRE = regexp.MustCompile(`^/ip4/127\.0\.0\.1/tcp/[1-9][0-9]*\n([0-9a-f]{64})\n$`)

// TestAPIFile: the api file is the owner's alone, holds the address and a
// token new at every start, and mote's commands use it.
func TestAPIFile(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	var tokens []string
	for range 2 {
		d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)
		path := filepath.Join(repo, apiFile)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("api file: %v", err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("api file mode %v, want 0600", m)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := apiFileRE.FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("api file %q, want <multiaddr>\\n<64 hex digits>\\n", b)
		}
		tokens = append(tokens, m[1])
		if tmp, _ := filepath.Glob(filepath.Join(repo, ".tmp-*")); len(tmp) != 0 {
			t.Errorf("temp files left in the repo: %q", tmp)
		}

		var info idInfo
		out := mustMote(t, env, "id", "--repo", repo, "--json").stdout
		if err := json.Unmarshal([]byte(out), &info); err != nil || info.ID != d.id {
			t.Errorf("mote id --json: ID %q, %v; want %s\n%s", info.ID, err, d.id, out)
		}
		if out := mustMote(t, env, "stats", "--repo", repo).stdout; !strings.Contains(out, `"Goroutines"`) {
			t.Errorf("mote stats:\n%s", out)
		}
		d.stop(syscall.SIGTERM)
	}
	if tokens[0] == tokens[1] {
		t.Errorf("restarted daemon kept the token %s", tokens[0])
	}
}

// apiExchange sends line to the API at addr and returns the answer, and
// whether the daemon then closed the connection.
func apiExchange(t *testing.T, addr, line string) (resp apiResponse, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial API: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(cmdTimeout))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write to API: %v", err)
	}
	dec := json.NewDecoder(c)
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("API answer to %s: %v", line, err)
	}
	// The answer is one line: all that may follow is its newline.
	rest, err := io.ReadAll(io.MultiReader(dec.Buffered(), c))
	return resp, err == nil && strings.TrimSpace(string(rest)) == ""
}

// TestAPIToken: a local client that does not know the token cannot make
// the daemon dial, nor read anything.
func TestAPIToken(t *testing.T) {
	t.Parallel()
	env := childEnv()
	ra, rb := t.TempDir(), t.TempDir()
	a := startDaemon(t, env, ra, "--repo", ra, "--listen", loopback)
	b := startDaemon(t, env, rb, "--repo", rb, "--listen", loopback)
	api, err := newAPIClient(ra)
	if err != nil {
		t.Fatal(err)
	}
	if len(api.token) != 2*apiTokenBytes {
		t.Fatalf("token %q from the api file, want %d hex digits", api.token, 2*apiTokenBytes)
	}
	flipped := api.token[:len(api.token)-1] + "0"
	if strings.HasSuffix(api.token, "0") {
		flipped = api.token[:len(api.token)-1] + "1"
	}
	request := func(cmd string, token any) string {
		m := map[string]any{"Cmd": cmd, "Args": []string{b.addr()}}
		if token != nil {
			m["Token"] = token
		}
		line, _ := json.Marshal(m)
		return string(line)
	}
	for _, tc := range []struct {
		name, line string
	}{
		{"no token", request("swarm/connect", nil)},
		{"empty token", request("swarm/connect", "")},
		{"last digit changed", request("swarm/connect", flipped)},
		{"truncated", request("swarm/connect", api.token[:len(api.token)-1])},
		{"with a suffix", request("swarm/connect", api.token+"0")},
		{"upper case", request("swarm/connect", strings.ToUpper(api.token))},
		{"not a string", request("swarm/connect", 42)},
		{"id without token", request("id", nil)},
		{"unknown command", request("no/such", "wrong")},
	} {
		resp, closed := apiExchange(t, api.addr, tc.line)
		if resp.Error == "" || resp.Result != nil {
			t.Errorf("%s: answer error %q, result %s; want an error and no result", tc.name, resp.Error, resp.Result)
		} else if tc.name != "not a string" && resp.Error != errAPIToken.Error() {
			t.Errorf("%s: error %q, want %q", tc.name, resp.Error, errAPIToken)
		}
		if !closed {
			t.Errorf("%s: connection not closed after the answer", tc.name)
		}
	}
	if got := peers(t, env, a); len(got) != 0 {
		t.Errorf("peers of A after unauthorized connects: %q", got)
	}
	if got := peers(t, env, b); len(got) != 0 {
		t.Errorf("peers of B after unauthorized connects to it: %q", got)
	}

	// The same request with the token works, so the above failed for it.
	resp, closed := apiExchange(t, api.addr, request("swarm/connect", api.token))
	if resp.Error != "" || !closed {
		t.Errorf("connect with the token: error %q, closed %v", resp.Error, closed)
	}
	if got := peers(t, env, a); !slices.Equal(got, []string{b.addr()}) {
		t.Errorf("peers of A: %q, want [%s]", got, b.addr())
	}
}

// TestAPISlowClients: clients that send nothing, or never finish their
// line, are disconnected after the read deadline and meanwhile leave the
// remaining slot to mote's commands.
func TestAPISlowClients(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)
	api, err := newAPIClient(repo)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var conns []net.Conn
	for i := range maxAPIClients - 1 {
		c, err := net.DialTimeout("tcp", api.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial API: %v", err)
		}
		defer c.Close()
		if i%2 == 1 { // half of them start a request and stall
			if _, err := io.WriteString(c, `{"Cmd": "stats", "To`); err != nil {
				t.Fatal(err)
			}
		}
		conns = append(conns, c)
	}
	mustMote(t, env, "stats", "--repo", repo)
	if d := time.Since(start); d >= apiReadTimeout {
		t.Errorf("mote stats took %v beside %d stalled clients, want under %v", d, len(conns), apiReadTimeout)
	}
	const bound = apiReadTimeout + 5*time.Second
	for i, c := range conns {
		c.SetReadDeadline(start.Add(bound))
		n, err := c.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) || n != 0 {
			t.Errorf("stalled client %d: read %d bytes, %v; want the daemon to close within %v", i, n, err, bound)
		}
	}
	mustMote(t, env, "stats", "--repo", repo)
}

// TestAddrFiltersConfig: Swarm.AddrFilters unset gives Kubo's server
// profile with the server preset and nothing with the others; a list
// replaces it, [] turns it off, and a malformed range is an error.
func TestAddrFiltersConfig(t *testing.T) {
	for _, tc := range []struct {
		name, preset string
		filters      []string
		want         int // number of ranges; -1 for an error
	}{
		{"server default", "server", nil, len(node.ServerAddrFilters())},
		{"iot default", "iot", nil, 0},
		{"off", "server", []string{}, 0},
		{"list", "iot", []string{"/ip4/10.0.0.0/ipcidr/8", "/ip6/fe80::/ipcidr/10"}, 2},
		{"malformed", "server", []string{"/ip4/10.0.0.0/tcp/8"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newRepoConfig()
			cfg.Swarm.AddrFilters = tc.filters
			var c node.Config
			err := cfg.announceConfig(&c, tc.preset)
			switch {
			case tc.want < 0 && err == nil:
				t.Fatal("a malformed range was accepted")
			case tc.want >= 0 && err != nil:
				t.Fatal(err)
			case tc.want >= 0 && len(c.AddrFilters) != tc.want:
				t.Fatalf("%d ranges, want %d: %v", len(c.AddrFilters), tc.want, c.AddrFilters)
			}
		})
	}
}

// TestHelpCommand: `mote help CMD` prints that command's own usage on
// stdout and succeeds; `mote help` the general one.
func TestHelpCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "ping"}, "-timeout"},
		{[]string{"help", "interop"}, "-kubo"},
		{[]string{"help", "swarm", "connect"}, "Usage of mote swarm connect"},
		{[]string{"help", "config", "show"}, "-effective"},
		{[]string{"help"}, "commands:"},
	} {
		var out, errOut strings.Builder
		if code := run(tc.args, &out, &errOut); code != 0 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("mote %s: exit %d, stdout %q, stderr %q; want %q on stdout", strings.Join(tc.args, " "), code, out.String(), errOut.String(), tc.want)
		}
	}
}
