package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mote-p2p/mote/bench/internal/procstat"
)

// Bounds of the child's work, generous for a loaded 2-core machine.
const (
	bootstrapTimeout = 2 * time.Minute
	refreshTimeout   = 2 * time.Minute
)

// hello is a measured server's first line: who it is, once bootstrapped.
type hello struct {
	addrInfo
	PID        int `json:"pid"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// BaseRSS is the process's VmRSS before its node started: the
	// runtime, the binary and its packages' initialisation.
	BaseRSS int64 `json:"base_rss"`
}

// childStats is a measured server's answer to "stats": the Go runtime's
// figures after GC (procstat.Settled) and its routing table's size. The
// orchestrator adds VmRSS and VmHWM from /proc.
type childStats struct {
	procstat.Go
	Table int `json:"table"`
}

// serve is the -serve role: one DHT server of stack name in this
// process, bootstrapped from bootstrap, which answers each command line
// on stdin ("refresh", "stats", "pprof DIR") with one JSON line on stdout and exits
// when stdin closes. Errors are answered as {"error": "..."}.
func serve(name, bootstrap string, stdin io.Reader, stdout io.Writer) int {
	enc := json.NewEncoder(stdout)
	fail := func(err error) int {
		enc.Encode(map[string]string{"error": err.Error()})
		return 1
	}
	seeds, err := parseBootstrap(bootstrap)
	if err != nil {
		return fail(err)
	}
	s, ok := stacks[name]
	if !ok {
		return fail(fmt.Errorf("-serve %q: this binary has no such stack", name))
	}
	base, err := procstat.VmRSS(0)
	if err != nil {
		return fail(err)
	}
	n, err := s.start(true)
	if err != nil {
		return fail(err)
	}
	defer n.close()
	ctx, cancel := context.WithTimeout(context.Background(), bootstrapTimeout)
	err = n.bootstrap(ctx, seeds)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("%s server: bootstrap: %w", name, err))
	}
	if err := enc.Encode(hello{addrInfo: n.info(), PID: os.Getpid(), GOMAXPROCS: runtime.GOMAXPROCS(0), BaseRSS: base}); err != nil {
		return 1
	}
	sc := bufio.NewScanner(stdin) // lines of a few bytes: the default 64 KiB bound is plenty
	for sc.Scan() {
		var reply any
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "refresh":
			ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
			err := n.refresh(ctx)
			cancel()
			reply = map[string]bool{"ok": true}
			if err != nil {
				reply = map[string]string{"error": fmt.Sprintf("refresh: %v", err)}
			}
		case "stats":
			reply = childStats{Go: procstat.Settled(), Table: n.tableSize()}
		case "pprof":
			reply = map[string]bool{"ok": true}
			if err := writeProfiles(arg, name); err != nil {
				reply = map[string]string{"error": fmt.Sprintf("pprof: %v", err)}
			}
		default:
			reply = map[string]string{"error": fmt.Sprintf("unknown command %q", cmd)}
		}
		if err := enc.Encode(reply); err != nil {
			return 1
		}
	}
	return 0
}

// writeProfiles writes this process's goroutine and heap profiles, as
// text (debug=1), to DIR/kadside-<stack>-goroutine.txt and -heap.txt.
func writeProfiles(dir, stack string) error {
	for _, prof := range []string{"goroutine", "heap"} {
		f, err := os.Create(filepath.Join(dir, "kadside-"+stack+"-"+prof+".txt"))
		if err != nil {
			return err
		}
		err = pprof.Lookup(prof).WriteTo(f, 1)
		if e := f.Close(); err == nil {
			err = e
		}
		if err != nil {
			return fmt.Errorf("%s profile: %w", prof, err)
		}
	}
	return nil
}
