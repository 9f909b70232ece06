package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/mote-p2p/mote/node"
)

// stats answers /api/v0/stats: what the daemon costs and what it did.
type stats struct {
	Goroutines int
	HeapInuse  uint64 // bytes
	RSS        uint64 // bytes (Linux; 0 elsewhere)
	Conns      int
	Peers      int
	Limits     map[string]uint64 // times each limit fired
	// Usage is how much of the node-wide budget is taken.
	Usage node.Usage
	// AcceptErrors counts temporary accept errors (out of descriptors,
	// aborted connections) the listeners backed off from.
	AcceptErrors uint64
	Protocols    map[string]node.Bandwidth
}

func nodeStats(n *node.Node) stats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return stats{
		Goroutines:   runtime.NumGoroutine(),
		HeapInuse:    m.HeapInuse,
		RSS:          selfRSS(),
		Conns:        len(n.Conns("")),
		Peers:        len(n.Peers()),
		Limits:       n.Counters(),
		Usage:        n.Usage(),
		Protocols:    n.ProtocolBandwidth(),
		AcceptErrors: n.AcceptErrors(),
	}
}

// selfRSS reads this process's resident set size from /proc.
func selfRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cmdStats implements `mote stats [--repo DIR]`.
func cmdStats(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stats", stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := newAPIClient(*repo)
	if err != nil {
		return err
	}
	var st stats
	if err := c.call("stats", nil, &st); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}
