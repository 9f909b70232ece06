package interop

// The js-libp2p side of the harness: interop/js holds a tiny Node.js
// program (peer.mjs) and the npm manifest and lock file that pin js-libp2p
// and its dependencies. EnsureJS installs them with `npm ci` into a cache
// directory outside the repository, StartJSPeer runs peer.mjs as a
// listening peer and RunJSDial runs it as a dialer. Like Kubo, the js peer
// listens on loopback only and has no discovery, bootstrap, DHT, AutoNAT or
// UPnP, so it talks to nobody but the tests.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// JSLibp2pVersion is the js-libp2p release pinned by interop/js's package
// lock, which EnsureJS installs and StartJSPeer checks the peer reports.
const JSLibp2pVersion = "3.3.11"

// JSEchoProtocol is served by the js peer: it echoes every byte of a stream
// until the remote closes its write side, then closes its own. It sees the
// remote's FIN however early it arrives. RunJSDial also speaks it.
const JSEchoProtocol = "/echo/1.0.0"

// JSStockEchoProtocol is the same echo served by js-libp2p's own helper
// (@libp2p/utils echo), which reads with `for await` as most js-libp2p
// handlers do: in js-libp2p 3.3.11 it never ends, and so never closes its
// side, if the remote's FIN reached js before the handler started reading
// (e.g. with the protocol proposal).
const JSStockEchoProtocol = "/echo-stock/1.0.0"

const (
	jsCacheEnv    = "MOTE_JS_CACHE"
	jsDebugEnv    = "MOTE_JS_DEBUG" // passed to node as DEBUG (js-libp2p log namespaces)
	jsManifest    = "package.json"
	jsLock        = "package-lock.json"
	jsScript      = "peer.mjs"
	jsStampFile   = ".mote-npm-ci.sha256" // hash of manifest+lock that node_modules was installed from
	jsLockFile    = ".mote-install.lock"
	jsMinNode     = 20
	jsReadyWait   = 30 * time.Second
	jsMaxReadyLen = 64 << 10
	jsMaxDialOut  = 1 << 20
)

// JSCacheDir is where EnsureJS installs the js peer: $MOTE_JS_CACHE if
// set, else os.UserCacheDir()/mote/js-libp2p-3.3.11.
func JSCacheDir() (string, error) {
	if d := os.Getenv(jsCacheEnv); d != "" {
		return filepath.Abs(d)
	}
	ucd, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("interop: no cache dir for js-libp2p (set %s): %w", jsCacheEnv, err)
	}
	return filepath.Join(ucd, "mote", "js-libp2p-"+JSLibp2pVersion), nil
}

// EnsureJS makes the js peer runnable and returns the directory to run it
// in (see JSCacheDir). It copies package.json, package-lock.json and
// peer.mjs there from interop/js and runs `npm ci` unless node_modules was
// already installed from the same manifest and lock file (compared by
// hash). A file lock keeps concurrent test processes from installing over
// each other. It fails, naming what is missing, if node (at least v20) or
// npm is not on PATH or the install fails.
func EnsureJS(ctx context.Context) (dir string, err error) {
	node, err := jsTool("node")
	if err != nil {
		return "", err
	}
	if err := checkNodeVersion(ctx, node); err != nil {
		return "", err
	}
	src, err := sourceDir(ctx, "js", jsScript)
	if err != nil {
		return "", err
	}
	// All three are copied to the cache; the manifest and lock decide
	// whether `npm ci` must run again.
	names := [...]string{jsManifest, jsLock, jsScript}
	var files [len(names)][]byte
	for i, name := range names {
		if files[i], err = os.ReadFile(filepath.Join(src, name)); err != nil {
			return "", fmt.Errorf("interop: read js peer source: %w", err)
		}
	}
	sum := sha256.New()
	for i := range 2 { // manifest and lock
		fmt.Fprintf(sum, "%s %d\n", names[i], len(files[i]))
		sum.Write(files[i])
	}
	stamp := hex.EncodeToString(sum.Sum(nil))

	if dir, err = JSCacheDir(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("interop: create js-libp2p cache dir: %w", err)
	}
	// Always under the lock (cheap when nothing changes), so nobody runs
	// node while another process is halfway through `npm ci`.
	unlock, err := lockPath(ctx, filepath.Join(dir, jsLockFile), "installing js-libp2p")
	if err != nil {
		return "", err
	}
	defer unlock()

	for i, name := range names {
		if err := writeFileIfChanged(filepath.Join(dir, name), files[i]); err != nil {
			return "", fmt.Errorf("interop: install js peer file %s: %w", name, err)
		}
	}
	stampPath := filepath.Join(dir, jsStampFile)
	if have, err := os.ReadFile(stampPath); err == nil && strings.TrimSpace(string(have)) == stamp &&
		checkJSInstall(dir) == nil {
		return dir, nil
	}
	npm, err := jsTool("npm")
	if err != nil {
		return "", err
	}
	// The stamp goes first: an interrupted install must not look complete.
	if err := os.Remove(stampPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("interop: remove js install stamp: %w", err)
	}
	// --ignore-scripts: no dependency has install scripts (no native
	// addons), and none should start running code at install time.
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	// npm keeps the caller's environment: its registry, proxy and CA
	// settings may live there.
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	cmd.WaitDelay = 5 * time.Second
	out := newLogBuffer(2<<10, 16<<10)
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (context: %v)", err, ctx.Err())
		}
		return "", fmt.Errorf("interop: `npm ci` for js-libp2p %s in %s failed after %v: %w\n--- npm output (tail) ---\n%s",
			JSLibp2pVersion, dir, time.Since(start).Round(time.Millisecond), err, out.Tail(8<<10))
	}
	if err := checkJSInstall(dir); err != nil {
		return "", fmt.Errorf("interop: `npm ci` in %s succeeded but: %w", dir, err)
	}
	if err := os.WriteFile(stampPath, []byte(stamp+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("interop: write js install stamp: %w", err)
	}
	return dir, nil
}

// jsTool finds node or npm on PATH.
func jsTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("interop: %s not found (js-libp2p interop needs Node.js >= %d and npm on PATH): %w", name, jsMinNode, err)
	}
	return p, nil
}

// checkNodeVersion checks that node is at least jsMinNode.
func checkNodeVersion(ctx context.Context, node string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--version")
	cmd.Env = jsEnv()
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("interop: `%s --version`: %w", node, err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if m, err := strconv.Atoi(major); err != nil || m < jsMinNode {
		return fmt.Errorf("interop: %s is Node.js %q; js-libp2p %s needs >= %d", node, v, JSLibp2pVersion, jsMinNode)
	}
	return nil
}

// checkJSInstall checks that dir/node_modules holds the pinned js-libp2p.
func checkJSInstall(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "libp2p", "package.json"))
	if err != nil {
		return fmt.Errorf("js-libp2p is not installed: %w", err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return fmt.Errorf("node_modules/libp2p/package.json: %w", err)
	}
	if pkg.Version != JSLibp2pVersion {
		return fmt.Errorf("node_modules has js-libp2p %q, want %s", pkg.Version, JSLibp2pVersion)
	}
	return nil
}

// writeFileIfChanged replaces path with data (atomically, by rename)
// unless it already holds exactly data. Running peers keep the file they
// loaded.
func writeFileIfChanged(path string, data []byte) error {
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// jsEnv is the complete environment of node: nothing from the caller's
// environment leaks in (no NODE_OPTIONS, no proxies) but PATH and TMPDIR.
// DEBUG is empty, so js-libp2p logs nothing, unless MOTE_JS_DEBUG gives
// log namespaces (e.g. "libp2p:*"); the logs land in JSPeer.Output.
func jsEnv() []string {
	env := []string{"DEBUG=" + os.Getenv(jsDebugEnv), "NO_COLOR=1", "NODE_DISABLE_COLORS=1"}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// JSPeer is one running js-libp2p peer (peer.mjs in serve mode).
type JSPeer struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	log     *logBuffer // stderr, plus any stdout after the ready line
	exited  chan struct{}
	waitErr error

	id        string
	addrs     []string
	version   string
	agent     string
	protocols []string

	stopOnce sync.Once
	stopErr  error
}

// jsReady is the JSON line peer.mjs prints when it listens.
type jsReady struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Version   string   `json:"version"`
	Agent     string   `json:"agent"`
	Protocols []string `json:"protocols"`
}

// StartJSPeer installs the js peer if needed (EnsureJS), starts it and
// returns once it listens. ctx bounds the start only. If t is non-nil,
// t.Cleanup stops the peer, reporting an unexpected exit as a test error;
// with a nil t the caller must call Stop.
func StartJSPeer(ctx context.Context, t testing.TB) (*JSPeer, error) {
	if t != nil {
		t.Helper()
	}
	p, err := startJSPeer(ctx)
	if err != nil {
		return nil, err
	}
	if t != nil {
		t.Cleanup(func() {
			if err := p.Stop(); err != nil {
				t.Errorf("js peer %s: %v", p.id, err)
			}
		})
	}
	return p, nil
}

func startJSPeer(ctx context.Context) (_ *JSPeer, retErr error) {
	dir, err := EnsureJS(ctx)
	if err != nil {
		return nil, err
	}
	node, err := jsTool("node")
	if err != nil {
		return nil, err
	}
	p := &JSPeer{log: newLogBuffer(8<<10, 64<<10), exited: make(chan struct{})}
	cmd := exec.Command(node, jsScript)
	cmd.Dir = dir
	cmd.Env = jsEnv()
	cmd.SysProcAttr = daemonSysProcAttr()
	cmd.WaitDelay = 2 * time.Second
	cmd.Stderr = p.log
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("interop: js peer stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("interop: js peer stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("interop: start js peer (%s %s in %s): %w", node, jsScript, dir, err)
	}
	p.cmd = cmd
	defer func() {
		if retErr != nil {
			p.Stop()
		}
	}()

	// The first stdout line is the ready line; the rest (there should be
	// none) goes to the log. Wait must not run before stdout is drained.
	ready := make(chan error, 1)
	var info jsReady
	go func() {
		br := bufio.NewReaderSize(stdout, 4096)
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) && len(line) < jsMaxReadyLen {
			var more []byte
			more, err = br.ReadSlice('\n')
			line = append(append([]byte(nil), line...), more...)
		}
		switch {
		case err != nil:
			ready <- fmt.Errorf("reading the ready line: %w", err)
		default:
			if jerr := json.Unmarshal(line, &info); jerr != nil {
				ready <- fmt.Errorf("bad ready line %q: %w", line, jerr)
			} else {
				ready <- nil
			}
		}
		io.Copy(p.log, br)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	timer := time.NewTimer(jsReadyWait)
	defer timer.Stop()
	select {
	case err := <-ready:
		if err != nil {
			// The process may have died; give it a moment to say why.
			exit := "still running"
			select {
			case <-p.exited:
				exit = fmt.Sprintf("exit: %v", p.waitErr)
			case <-time.After(time.Second):
			}
			return nil, fmt.Errorf("interop: js peer did not start: %v (%s)\n--- js peer output ---\n%s", err, exit, p.log.Tail(16<<10))
		}
	case <-timer.C:
		return nil, fmt.Errorf("interop: js peer not ready after %v\n--- js peer output ---\n%s", jsReadyWait, p.log.Tail(16<<10))
	case <-ctx.Done():
		return nil, fmt.Errorf("interop: waiting for js peer: %w\n--- js peer output ---\n%s", ctx.Err(), p.log.Tail(16<<10))
	}
	if info.ID == "" || len(info.Addrs) == 0 {
		return nil, fmt.Errorf("interop: js peer ready line has no id or addresses: %+v", info)
	}
	if info.Version != JSLibp2pVersion {
		return nil, fmt.Errorf("interop: js peer runs js-libp2p %q, want %s", info.Version, JSLibp2pVersion)
	}
	for _, a := range info.Addrs {
		if !strings.HasPrefix(a, "/ip4/127.") || !strings.HasSuffix(a, "/p2p/"+info.ID) {
			return nil, fmt.Errorf("interop: js peer address %q is not loopback with /p2p/%s", a, info.ID)
		}
	}
	p.id, p.addrs, p.version, p.agent, p.protocols = info.ID, info.Addrs, info.Version, info.Agent, info.Protocols
	return p, nil
}

// ID is the peer's ID.
func (p *JSPeer) ID() string { return p.id }

// Addrs are the peer's listen addresses, each ending in /p2p/<id>.
func (p *JSPeer) Addrs() []string { return append([]string(nil), p.addrs...) }

// TCPAddr is the peer's TCP address (with /p2p/), or "" if none.
func (p *JSPeer) TCPAddr() string {
	for _, a := range p.addrs {
		if strings.Contains(a, "/tcp/") && !strings.Contains(a, "/ws") && !strings.Contains(a, "/tls/") {
			return a
		}
	}
	return ""
}

// Version is the js-libp2p version the peer reports (JSLibp2pVersion).
func (p *JSPeer) Version() string { return p.version }

// Agent is the agent version the peer sends in identify, e.g.
// "js-libp2p/3.3.11 node/20.20.2".
func (p *JSPeer) Agent() string { return p.agent }

// Protocols are the protocols the peer serves, as it reported at start.
func (p *JSPeer) Protocols() []string { return append([]string(nil), p.protocols...) }

// Output returns the peer's (bounded) stderr so far: its diagnostics, and
// js-libp2p's logs when MOTE_JS_DEBUG is set.
func (p *JSPeer) Output() string { return p.log.String() }

// Exited is closed when the peer process has exited.
func (p *JSPeer) Exited() <-chan struct{} { return p.exited }

// Stop stops the peer: it closes its stdin (peer.mjs then stops libp2p and
// exits), sends SIGTERM if that takes over 10 s and SIGKILL 5 s later. It
// is idempotent. It returns an error if the peer had exited before Stop
// (crashed) or did not exit cleanly.
func (p *JSPeer) Stop() error {
	p.stopOnce.Do(func() {
		if p.cmd == nil {
			return
		}
		select {
		case <-p.exited:
			p.stopErr = fmt.Errorf("js peer exited unexpectedly: %v\n--- js peer output ---\n%s", p.waitErr, p.log.Tail(16<<10))
			return
		default:
		}
		p.stdin.Close()
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			p.cmd.Process.Signal(syscall.SIGTERM)
			t.Reset(5 * time.Second)
			select {
			case <-p.exited:
			case <-t.C:
				p.cmd.Process.Kill()
				<-p.exited
			}
			p.stopErr = fmt.Errorf("js peer did not exit within %v of stdin closing", stopGrace)
		}
		if p.waitErr != nil && p.stopErr == nil {
			p.stopErr = fmt.Errorf("js peer did not stop cleanly: %v\n--- js peer output ---\n%s", p.waitErr, p.log.Tail(16<<10))
		}
	})
	return p.stopErr
}

// JSDialResult is what peer.mjs's dial mode reports.
type JSDialResult struct {
	OK     int      `json:"ok"`     // streams whose echo matched
	Failed int      `json:"failed"` // streams that failed (all of them if Fatal)
	Errors []string `json:"errors"` // one per failed stream
	MS     int64    `json:"ms"`     // from connecting until the last stream ended
	// IdentifyError says why identify of the remote did not finish in
	// time; the streams were still tried.
	IdentifyError string `json:"identifyError"`
	// RemoteAgent and RemoteProtocols are what identify said.
	RemoteAgent     string   `json:"remoteAgent"`
	RemoteProtocols []string `json:"remoteProtocols"`
	// Fatal is set when no stream could be tried (e.g. connecting failed).
	Fatal string `json:"fatal"`
	// Output is the dialer's stderr (not part of its JSON).
	Output string `json:"-"`
}

// Elapsed is MS as a duration.
func (r JSDialResult) Elapsed() time.Duration { return time.Duration(r.MS) * time.Millisecond }

// Err summarises what went wrong, or is nil if every stream echoed
// correctly after identify.
func (r JSDialResult) Err() error {
	var errs []string
	if r.Fatal != "" {
		errs = append(errs, r.Fatal)
	}
	if r.IdentifyError != "" {
		errs = append(errs, "identify: "+r.IdentifyError)
	}
	if r.Failed > 0 && r.Fatal == "" {
		shown := r.Errors
		if len(shown) > 5 {
			shown = shown[:5]
		}
		errs = append(errs, fmt.Sprintf("%d/%d streams failed: %s", r.Failed, r.OK+r.Failed, strings.Join(shown, "; ")))
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New("js dial: " + strings.Join(errs, "; "))
}

// RunJSDial runs the js peer as a dialer: it connects to addr (a multiaddr
// ending in /p2p/<id>), waits for identify of the remote, then opens
// streams concurrent streams for proto, writes nbytes random bytes on each,
// closes the write side and checks that it reads the same bytes back
// before the remote closes its side. Each stream times out on its own
// (20 s), so a hung stream is a failure in the result, not a hang. The
// error is non-nil only if the dialer could not run or report; failed
// streams, identify and connection failures are in the result (see
// JSDialResult.Err).
func RunJSDial(ctx context.Context, addr, proto string, streams, nbytes int) (JSDialResult, error) {
	if streams < 1 || nbytes < 0 {
		return JSDialResult{}, fmt.Errorf("interop: js dial: %d streams of %d bytes", streams, nbytes)
	}
	dir, err := EnsureJS(ctx)
	if err != nil {
		return JSDialResult{}, err
	}
	node, err := jsTool("node")
	if err != nil {
		return JSDialResult{}, err
	}
	args := []string{jsScript, "dial", addr, proto, strconv.Itoa(streams), strconv.Itoa(nbytes)}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = jsEnv()
	cmd.SysProcAttr = daemonSysProcAttr()
	cmd.WaitDelay = 2 * time.Second
	stdout := &capBuffer{max: jsMaxDialOut}
	stderr := newLogBuffer(8<<10, 32<<10)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	runErr := cmd.Run()
	res := JSDialResult{Output: stderr.String()}
	if runErr != nil {
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%w (context: %v)", runErr, ctx.Err())
		}
		return res, fmt.Errorf("interop: js dial %s %s after %v: %w\n--- js dialer output ---\n%s",
			addr, proto, time.Since(start).Round(time.Millisecond), runErr, stderr.Tail(16<<10))
	}
	line := bytes.TrimSpace(stdout.buf.Bytes())
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal(line, &res); err != nil {
		return res, fmt.Errorf("interop: js dial %s %s: bad result %q: %w\n--- js dialer output ---\n%s",
			addr, proto, line, err, stderr.Tail(16<<10))
	}
	return res, nil
}
