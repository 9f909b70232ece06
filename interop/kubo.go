// Package interop is the interoperability harness that runs mote against
// reference libp2p implementations as external processes: Kubo (go-libp2p
// based) and a js-libp2p peer (js.go). The Kubo binary is built from the
// separate module in interop/kubo (so the main module never depends on
// go-libp2p or Kubo) and cached outside the repository; interop/check
// starts it, on loopback only with every internet-reaching feature
// disabled, and holds the checks `mote interop` runs.
package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/interop/check"
)

// KuboVersion is the Kubo release the harness builds and expects.
const KuboVersion = "0.43.0"

const (
	kuboPkg      = "github.com/ipfs/kubo/cmd/ipfs"
	kuboCacheEnv = "MOTE_KUBO_CACHE"
	kuboBinName  = "ipfs"
	stopGrace    = 10 * time.Second // for a js peer to exit
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
	v, err := check.KuboVersion(ctx, path)
	if err != nil {
		return "", err
	}
	if v != KuboVersion {
		return "", fmt.Errorf("%s version: got %q, want %q", path, v, KuboVersion)
	}
	return v, nil
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

// KuboOptions configures StartKubo: those of the runner's Kubo driver.
type KuboOptions = check.KuboOptions

// Kubo is one running Kubo daemon: check.Kubo, which runs it.
type Kubo struct {
	*check.Kubo
}

// IDInfo is the JSON shape of `ipfs id --enc=json`.
type IDInfo = check.IDInfo

// StartKubo initialises a fresh repo in a temp dir, configures it for
// isolated loopback-only operation and starts `ipfs daemon`, returning once
// the daemon reports ready (check.StartKubo). ctx bounds start-up only; the
// daemon runs until Stop. If t is non-nil, t.Cleanup stops the daemon and
// removes the repo (reporting an unexpected daemon exit as a test error);
// with a nil t the caller must call Stop.
func StartKubo(ctx context.Context, t testing.TB, opts KuboOptions) (*Kubo, error) {
	if t != nil {
		t.Helper()
	}
	bin, err := KuboBinary(ctx)
	if err != nil {
		return nil, err
	}
	ck, err := check.StartKubo(ctx, bin, opts)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	k := &Kubo{ck}
	if t != nil {
		t.Cleanup(func() {
			if err := k.Stop(); err != nil {
				t.Errorf("kubo %s: %v", k.ID(), err)
			}
		})
	}
	return k, nil
}
