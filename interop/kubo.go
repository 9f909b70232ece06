// Package interop is the interoperability harness that runs mote against
// reference libp2p implementations as external processes: Kubo (go-libp2p
// based) and a js-libp2p peer (js.go). The Kubo binary is built from the
// separate module in interop/kubo (so the main module never depends on
// go-libp2p or Kubo), cached outside the repository, and started on
// loopback only with every internet-reaching feature disabled.
package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// KuboVersion is the Kubo release the harness builds and expects.
const KuboVersion = "0.43.0"

const (
	kuboPkg          = "github.com/ipfs/kubo/cmd/ipfs"
	kuboCacheEnv     = "MOTE_KUBO_CACHE"
	kuboBinName      = "ipfs"
	maxCLIStdout     = 16 << 20
	maxCLIStderr     = 64 << 10
	defaultReadyWait = 60 * time.Second
	stopGrace        = 10 * time.Second
)

// BinaryInfo describes the Kubo binary returned by EnsureKuboBinary.
type BinaryInfo struct {
	Path          string
	Version       string        // as reported by `ipfs version`
	Built         bool          // true if this call had to build it
	BuildDuration time.Duration // wall time of `go build` when Built
}

var (
	binMu     sync.Mutex
	binCached *BinaryInfo
)

// KuboBinary returns the path of a verified Kubo v0.43.0 binary, building it
// (once, across concurrent processes) if it is not cached yet.
func KuboBinary(ctx context.Context) (string, error) {
	info, err := EnsureKuboBinary(ctx)
	if err != nil {
		return "", err
	}
	return info.Path, nil
}

// KuboCachePath is where the binary is cached:
// $MOTE_KUBO_CACHE/kubo-v0.43.0/ipfs if MOTE_KUBO_CACHE is set, else
// os.UserCacheDir()/mote/kubo-v0.43.0/ipfs.
func KuboCachePath() (string, error) {
	base := os.Getenv(kuboCacheEnv)
	if base == "" {
		ucd, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("interop: no cache dir (set %s): %w", kuboCacheEnv, err)
		}
		base = filepath.Join(ucd, "mote")
	}
	name := kuboBinName
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(base, "kubo-v"+KuboVersion, name), nil
}

// EnsureKuboBinary is KuboBinary with details on whether a build happened.
func EnsureKuboBinary(ctx context.Context) (BinaryInfo, error) {
	binMu.Lock()
	defer binMu.Unlock()
	if binCached != nil {
		return *binCached, nil
	}
	path, err := KuboCachePath()
	if err != nil {
		return BinaryInfo{}, err
	}
	// Fast path: already built and working.
	if v, err := verifyKubo(ctx, path); err == nil {
		binCached = &BinaryInfo{Path: path, Version: v}
		return *binCached, nil
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return BinaryInfo{}, fmt.Errorf("interop: create kubo cache dir: %w", err)
	}
	unlock, err := lockPath(ctx, filepath.Join(dir, kuboBinName+".lock"), "building kubo")
	if err != nil {
		return BinaryInfo{}, err
	}
	defer unlock()

	// Somebody else may have built it while we waited for the lock.
	if v, err := verifyKubo(ctx, path); err == nil {
		binCached = &BinaryInfo{Path: path, Version: v}
		return *binCached, nil
	} else if _, statErr := os.Stat(path); statErr == nil {
		// Present but broken (truncated, wrong version...): rebuild.
		os.Remove(path)
	}
	// We hold the lock, so leftover temp files are from crashed builds.
	if old, _ := filepath.Glob(filepath.Join(dir, kuboBinName+".tmp-*")); len(old) > 0 {
		for _, f := range old {
			os.Remove(f)
		}
	}

	start := time.Now()
	if err := buildKubo(ctx, path); err != nil {
		return BinaryInfo{}, err
	}
	took := time.Since(start)
	v, err := verifyKubo(ctx, path)
	if err != nil {
		return BinaryInfo{}, fmt.Errorf("interop: freshly built kubo failed verification: %w", err)
	}
	binCached = &BinaryInfo{Path: path, Version: v, Built: true, BuildDuration: took}
	return *binCached, nil
}

// lockPath takes an exclusive flock on path, waiting (while honouring ctx)
// if another process holds it, which is doing what.
func lockPath(ctx context.Context, path, what string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("interop: open lock file: %w", err)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("interop: flock %s: %w", path, err)
		}
		if ok {
			return func() { unlockFile(f); f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("interop: waiting for another process %s (lock %s): %w", what, path, ctx.Err())
		case <-tick.C:
		}
	}
}

// verifyKubo runs `ipfs version` and checks it reports KuboVersion.
func verifyKubo(ctx context.Context, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	home, err := os.MkdirTemp("", "mote-kubo-version-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	cmd := exec.CommandContext(ctx, path, "version")
	cmd.Env = kuboEnv(home, filepath.Join(home, "repo"), nil)
	cmd.WaitDelay = time.Second
	var out capBuffer
	out.max = 4096
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s version: %w: %s", path, err, strings.TrimSpace(out.buf.String()))
	}
	got := strings.TrimSpace(out.buf.String())
	f := strings.Fields(got)
	if len(f) != 3 || f[0] != "ipfs" || f[1] != "version" || f[2] != KuboVersion {
		return "", fmt.Errorf("%s version: got %q, want \"ipfs version %s\"", path, got, KuboVersion)
	}
	return f[2], nil
}

// kuboModuleDir locates interop/kubo (the separate module pinning Kubo).
func kuboModuleDir(ctx context.Context) (string, error) { return sourceDir(ctx, "kubo", "go.mod") }

// sourceDir locates interop/<sub> in the source tree by a file it holds:
// next to this source file (unless built with -trimpath), else under the
// main module's root as the go command reports it (under `go test` the
// working directory is inside the main module).
func sourceDir(ctx context.Context, sub, marker string) (string, error) {
	var tried []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), sub)
		if fileExists(filepath.Join(d, marker)) {
			return d, nil
		}
		tried = append(tried, d)
	}
	cmd := exec.CommandContext(ctx, goBinary(), "list", "-m", "-f", "{{.Dir}}")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.Output(); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			d := filepath.Join(strings.TrimSpace(line), "interop", sub)
			if fileExists(filepath.Join(d, marker)) {
				return d, nil
			}
			tried = append(tried, d)
		}
	} else {
		tried = append(tried, fmt.Sprintf("`go list -m` failed: %v", err))
	}
	return "", fmt.Errorf("interop: cannot locate interop/%s (tried %s)", sub, strings.Join(tried, ", "))
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// buildKubo builds Kubo from interop/kubo into a temp file next to dst and
// renames it into place atomically.
func buildKubo(ctx context.Context, dst string) error {
	modDir, err := kuboModuleDir(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), kuboBinName+".tmp-*")
	if err != nil {
		return fmt.Errorf("interop: create temp binary: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmpName)
		}
	}()

	cmd := exec.CommandContext(ctx, goBinary(), "build", "-trimpath", "-o", tmpName, kuboPkg)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	cmd.WaitDelay = 5 * time.Second
	out := newLogBuffer(2<<10, 16<<10)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (context: %v)", err, ctx.Err())
		}
		return fmt.Errorf("interop: building kubo v%s in %s failed: %v\n--- go build output (tail) ---\n%s",
			KuboVersion, modDir, err, out.Tail(8<<10))
	}
	if err := os.Chmod(tmpName, 0o755); err != nil {
		return fmt.Errorf("interop: chmod built kubo: %w", err)
	}
	if _, err := verifyKubo(ctx, tmpName); err != nil {
		return fmt.Errorf("interop: built kubo is unusable: %w", err)
	}
	if err := os.Rename(tmpName, dst); err != nil {
		return fmt.Errorf("interop: install built kubo: %w", err)
	}
	ok = true
	return nil
}

// kuboEnv is the complete, minimal environment for every Kubo invocation:
// nothing from the caller's environment leaks in (no proxies, no GOLOG_*,
// no IPFS_* overrides) except PATH/TMPDIR which are harmless.
func kuboEnv(home, repo string, extra []string) []string {
	env := []string{
		"HOME=" + home,
		"IPFS_PATH=" + repo,
		"IPFS_TELEMETRY=off",
		"DO_NOT_TRACK=1",
	}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// KuboOptions configures StartKubo. The zero value is a sensible default.
type KuboOptions struct {
	// Swarm listen addresses. Default: TCP and QUIC-v1 on 127.0.0.1 with
	// random ports. Only loopback addresses are accepted.
	Swarm []string
	// Security selects the security transports Kubo offers/accepts on TCP:
	// "" (both TLS and Noise, Kubo's default order TLS first), "noise"
	// (Noise only) or "tls" (TLS only). QUIC always uses its built-in TLS.
	Security string
	// Routing is Routing.Type. Default "none" (no DHT, no delegated routing).
	Routing string
	// Config holds extra `ipfs config --json KEY VALUE` settings applied
	// after the harness defaults (so they can override them). Values are
	// JSON-marshalled. Applied in sorted key order.
	Config map[string]any
	// Env adds environment variables (e.g. "GOLOG_LOG_LEVEL=debug").
	Env []string
	// DaemonArgs adds extra `ipfs daemon` flags.
	DaemonArgs []string
	// ReadyTimeout bounds the wait for "Daemon is ready" (default 60s).
	ReadyTimeout time.Duration
	// Binary overrides the Kubo binary (default: KuboBinary).
	Binary string
}

// Kubo is one running Kubo daemon.
type Kubo struct {
	bin     string
	dir     string // temp root (HOME); repo is dir/repo
	repo    string
	env     []string
	cmd     *exec.Cmd
	log     *logBuffer
	exited  chan struct{}
	waitErr error

	id        string
	publicKey string
	addrs     []string
	startTook time.Duration

	stopOnce sync.Once
	stopErr  error
}

// IDInfo is the JSON shape of `ipfs id --enc=json`.
type IDInfo struct {
	ID           string   `json:"ID"`
	PublicKey    string   `json:"PublicKey"`
	Addresses    []string `json:"Addresses"`
	AgentVersion string   `json:"AgentVersion"`
	Protocols    []string `json:"Protocols"`
}

// StartKubo initialises a fresh repo in a temp dir, configures it for
// isolated loopback-only operation and starts `ipfs daemon`, returning once
// the daemon reports ready. ctx bounds start-up only; the daemon runs until
// Stop. If t is non-nil, t.Cleanup stops the daemon and removes the repo
// (reporting an unexpected daemon exit as a test error); with a nil t the
// caller must call Stop.
func StartKubo(ctx context.Context, t testing.TB, opts KuboOptions) (*Kubo, error) {
	if t != nil {
		t.Helper()
	}
	start := time.Now()
	k, err := startKubo(ctx, opts)
	if err != nil {
		return nil, err
	}
	k.startTook = time.Since(start)
	if t != nil {
		t.Cleanup(func() {
			if err := k.Stop(); err != nil {
				t.Errorf("kubo %s: %v", k.id, err)
			}
		})
	}
	return k, nil
}

func startKubo(ctx context.Context, opts KuboOptions) (_ *Kubo, retErr error) {
	settings, err := opts.configSettings()
	if err != nil {
		return nil, err
	}
	bin := opts.Binary
	if bin == "" {
		if bin, err = KuboBinary(ctx); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "mote-kubo-*")
	if err != nil {
		return nil, fmt.Errorf("interop: kubo temp dir: %w", err)
	}
	k := &Kubo{
		bin:    bin,
		dir:    dir,
		repo:   filepath.Join(dir, "repo"),
		log:    newLogBuffer(8<<10, 64<<10),
		exited: make(chan struct{}),
	}
	k.env = kuboEnv(dir, k.repo, opts.Env)
	defer func() {
		if retErr != nil {
			k.Stop()
		}
	}()

	if _, err := k.Run(ctx, "init", "--profile=test"); err != nil {
		return nil, err
	}
	if err := editKuboConfig(filepath.Join(k.repo, "config"), settings); err != nil {
		return nil, err
	}

	ready := make(chan struct{})
	var readyOnce sync.Once
	args := append([]string{"daemon", "--migrate=false"}, opts.DaemonArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Env = k.env
	cmd.Dir = dir
	cmd.SysProcAttr = daemonSysProcAttr()
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdout = &lineWatcher{dst: k.log, maxLine: 4096, onLine: func(l string) {
		if strings.TrimSpace(l) == "Daemon is ready" {
			readyOnce.Do(func() { close(ready) })
		}
	}}
	cmd.Stderr = k.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("interop: start kubo daemon: %w", err)
	}
	k.cmd = cmd
	go func() {
		k.waitErr = cmd.Wait()
		close(k.exited)
	}()

	wait := opts.ReadyTimeout
	if wait <= 0 {
		wait = defaultReadyWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ready:
	case <-k.exited:
		return nil, fmt.Errorf("interop: kubo daemon exited before ready: %v\n--- kubo output ---\n%s", k.waitErr, k.log.Tail(16<<10))
	case <-timer.C:
		return nil, fmt.Errorf("interop: kubo daemon not ready after %v\n--- kubo output ---\n%s", wait, k.log.Tail(16<<10))
	case <-ctx.Done():
		return nil, fmt.Errorf("interop: waiting for kubo daemon: %w\n--- kubo output ---\n%s", ctx.Err(), k.log.Tail(16<<10))
	}

	out, err := k.Run(ctx, "id", "--enc=json")
	if err != nil {
		return nil, err
	}
	var self IDInfo
	if err := json.Unmarshal(out, &self); err != nil {
		return nil, fmt.Errorf("interop: parse `ipfs id`: %w: %q", err, out)
	}
	if self.ID == "" || len(self.Addresses) == 0 {
		return nil, fmt.Errorf("interop: `ipfs id` returned no ID/addresses: %q", out)
	}
	k.id, k.publicKey, k.addrs = self.ID, self.PublicKey, self.Addresses
	return k, nil
}

type configSetting struct{ key, value string }

// editKuboConfig applies settings to the repo's JSON config file, with the
// same dotted-key semantics as `ipfs config --json KEY VALUE` but in one
// step instead of one ~40ms CLI call per key. The daemon is not running
// yet, and it type-checks the whole file when it starts.
func editKuboConfig(path string, settings []configSetting) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("interop: read kubo config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var cfg map[string]any
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("interop: parse kubo config: %w", err)
	}
	for _, s := range settings {
		var v any
		d := json.NewDecoder(strings.NewReader(s.value))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return fmt.Errorf("interop: kubo config %s: %w", s.key, err)
		}
		parts := strings.Split(s.key, ".")
		m := cfg
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				if m[p] != nil {
					return fmt.Errorf("interop: kubo config %s: %s is not an object", s.key, p)
				}
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("interop: encode kubo config: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), st.Mode().Perm()); err != nil {
		return fmt.Errorf("interop: write kubo config: %w", err)
	}
	return os.Rename(tmp, path)
}

// configSettings returns the config settings (`ipfs config --json` style)
// applied on top of `ipfs init --profile=test` (which already empties
// Bootstrap, DNS resolvers and delegated routers/publishers and disables
// MDNS, NAT port mapping, AutoTLS and AutoConf; they are restated here so
// the harness does not silently depend on the profile's contents).
func (o KuboOptions) configSettings() ([]configSetting, error) {
	swarm := o.Swarm
	if len(swarm) == 0 {
		swarm = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	for _, a := range swarm {
		if !strings.HasPrefix(a, "/ip4/127.") && !strings.HasPrefix(a, "/ip6/::1/") {
			return nil, fmt.Errorf("interop: kubo swarm address %q is not loopback", a)
		}
	}
	routing := o.Routing
	if routing == "" {
		routing = "none"
	}
	type kv struct {
		key string
		val any
	}
	m := []kv{
		{"Addresses.Swarm", swarm},
		{"Addresses.API", "/ip4/127.0.0.1/tcp/0"},
		{"Addresses.Gateway", []string{}}, // no HTTP gateway at all
		{"Addresses.Announce", []string{}},
		{"Addresses.AppendAnnounce", []string{}},
		{"Bootstrap", []string{}},
		{"Peering.Peers", []any{}},
		{"Routing.Type", routing},
		{"Routing.DelegatedRouters", []string{}},
		{"Ipns.DelegatedPublishers", []string{}},
		{"DNS.Resolvers", map[string]string{}},
		{"AutoConf.Enabled", false},      // else fetches conf.ipfs-mainnet.org
		{"AutoTLS.Enabled", false},       // else talks to libp2p.direct / Let's Encrypt
		{"HTTPRetrieval.Enabled", false}, // no HTTPS block fetching
		{"Swarm.DisableNatPortMap", true},
		{"Discovery.MDNS.Enabled", false},
		{"Plugins.Plugins.telemetry.Disabled", true}, // plus IPFS_TELEMETRY=off
		{"Version.SwarmCheckEnabled", false},
		// Publish loopback addrs in the signed peer record too, so mote
		// sees them in identify like it would on a LAN.
		{"Internal.NonPublicAddrPublishing", true},
	}
	switch o.Security {
	case "":
	case "noise":
		m = append(m, kv{"Swarm.Transports.Security.TLS", false})
	case "tls":
		m = append(m, kv{"Swarm.Transports.Security.Noise", false})
	default:
		return nil, fmt.Errorf("interop: unknown KuboOptions.Security %q (want \"\", \"noise\" or \"tls\")", o.Security)
	}
	extra := make([]string, 0, len(o.Config))
	for k := range o.Config {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		m = append(m, kv{k, o.Config[k]})
	}
	out := make([]configSetting, 0, len(m))
	for _, s := range m {
		b, err := json.Marshal(s.val)
		if err != nil {
			return nil, fmt.Errorf("interop: kubo config %s: %w", s.key, err)
		}
		out = append(out, configSetting{s.key, string(b)})
	}
	return out, nil
}

// ID is the daemon's peer ID.
func (k *Kubo) ID() string { return k.id }

// PublicKey is the base64 protobuf public key from `ipfs id`.
func (k *Kubo) PublicKey() string { return k.publicKey }

// Addrs are the daemon's addresses at start, each ending in /p2p/<id>.
func (k *Kubo) Addrs() []string {
	out := make([]string, len(k.addrs))
	for i, a := range k.addrs {
		if !strings.Contains(a, "/p2p/") {
			a += "/p2p/" + k.id
		}
		out[i] = a
	}
	return out
}

// TCPAddr is the plain TCP multiaddr (with /p2p/), or "" if none.
func (k *Kubo) TCPAddr() string {
	for _, a := range k.Addrs() {
		if strings.Contains(a, "/tcp/") && !strings.Contains(a, "/ws") && !strings.Contains(a, "/tls/") {
			return a
		}
	}
	return ""
}

// QUICAddr is the QUIC-v1 multiaddr (with /p2p/), or "" if none.
func (k *Kubo) QUICAddr() string {
	for _, a := range k.Addrs() {
		if strings.Contains(a, "/quic-v1") && !strings.Contains(a, "/webtransport") {
			return a
		}
	}
	return ""
}

// RepoPath is the node's IPFS_PATH.
func (k *Kubo) RepoPath() string { return k.repo }

// StartupDuration is how long StartKubo took (init + config + daemon ready).
func (k *Kubo) StartupDuration() time.Duration { return k.startTook }

// Output returns the daemon's (bounded) combined stdout/stderr so far.
func (k *Kubo) Output() string { return k.log.String() }

// Run runs the ipfs CLI against this node's repo (talking to the running
// daemon through its RPC API) and returns stdout. Errors include stderr.
func (k *Kubo) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env
	cmd.Dir = k.dir
	cmd.WaitDelay = time.Second
	stdout := &capBuffer{max: maxCLIStdout}
	stderr := &capBuffer{max: maxCLIStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if err == nil && stdout.truncated {
		err = fmt.Errorf("stdout exceeded %d bytes", maxCLIStdout)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return stdout.buf.Bytes(), fmt.Errorf("ipfs %s: %v: %s", strings.Join(args, " "), err,
			strings.TrimSpace(stderr.buf.String()))
	}
	return stdout.buf.Bytes(), nil
}

// SwarmConnect dials addr (a multiaddr ending in /p2p/<id>).
func (k *Kubo) SwarmConnect(ctx context.Context, addr string) error {
	_, err := k.Run(ctx, "swarm", "connect", addr)
	return err
}

// SwarmPeers lists connected peers as multiaddrs ending in /p2p/<id>.
func (k *Kubo) SwarmPeers(ctx context.Context) ([]string, error) {
	out, err := k.Run(ctx, "swarm", "peers")
	if err != nil {
		return nil, err
	}
	var peers []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			peers = append(peers, l)
		}
	}
	return peers, nil
}

// IDOf returns what this node knows (via identify) about a peer. The peer
// must be connected or in the peerstore, as routing is normally disabled.
func (k *Kubo) IDOf(ctx context.Context, peerID string) (IDInfo, error) {
	out, err := k.Run(ctx, "id", "--enc=json", peerID)
	if err != nil {
		return IDInfo{}, err
	}
	var info IDInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return IDInfo{}, fmt.Errorf("interop: parse `ipfs id %s`: %w: %q", peerID, err, out)
	}
	return info, nil
}

// Ping sends n pings to peer (a peer ID or multiaddr) and returns the RTTs.
func (k *Kubo) Ping(ctx context.Context, peer string, n int) ([]time.Duration, error) {
	if n <= 0 {
		n = 1
	}
	out, runErr := k.Run(ctx, "ping", "-n", fmt.Sprint(n), "--enc=json", peer)
	type pingResult struct {
		Success bool
		Time    int64 // nanoseconds
		Text    string
	}
	var rtts []time.Duration
	var failures []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r pingResult
		if err := dec.Decode(&r); err != nil {
			return rtts, fmt.Errorf("interop: parse ping output: %w: %q (run error: %v)", err, out, runErr)
		}
		switch {
		case !r.Success:
			failures = append(failures, r.Text)
		case r.Text == "" && r.Time > 0:
			rtts = append(rtts, time.Duration(r.Time))
		}
	}
	if runErr != nil || len(failures) > 0 || len(rtts) != n {
		return rtts, fmt.Errorf("interop: ping %s: got %d/%d pongs; failures %q; %v", peer, len(rtts), n, failures, runErr)
	}
	return rtts, nil
}

// Exited is closed when the daemon process has exited.
func (k *Kubo) Exited() <-chan struct{} { return k.exited }

// Stop shuts the daemon down (SIGINT, then SIGKILL after a grace period),
// waits for it and removes its repo. It is idempotent. It returns an error
// if the daemon had exited on its own before Stop (i.e. crashed).
func (k *Kubo) Stop() error {
	k.stopOnce.Do(func() {
		if k.cmd != nil {
			select {
			case <-k.exited:
				k.stopErr = fmt.Errorf("kubo daemon exited unexpectedly: %v\n--- kubo output ---\n%s", k.waitErr, k.log.Tail(16<<10))
			default:
				k.cmd.Process.Signal(os.Interrupt)
				t := time.NewTimer(stopGrace)
				select {
				case <-k.exited:
				case <-t.C:
					k.cmd.Process.Kill()
					<-k.exited
				}
				t.Stop()
			}
		}
		if err := os.RemoveAll(k.dir); err != nil && k.stopErr == nil {
			k.stopErr = fmt.Errorf("remove kubo repo: %w", err)
		}
	})
	return k.stopErr
}
