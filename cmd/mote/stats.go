package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mote-p2p/mote/kademlia"
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
	name, cmd := "stats", "stats"
	if len(args) > 0 && args[0] == "dht" {
		name, cmd, args = "stats dht", "stats/dht", args[1:]
	}
	fs := newFlags(name, stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	asJSON := fs.Bool("json", false, "stats dht: print JSON (stats always does)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := newAPIClient(*repo)
	if err != nil {
		return err
	}
	if cmd == "stats/dht" {
		var st dhtStats
		if err := c.call(cmd, nil, &st); err != nil {
			return err
		}
		if !*asJSON {
			printDHTStats(stdout, st)
			return nil
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	var st stats
	if err := c.call(cmd, nil, &st); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// printDHTStats prints the routing tables as `ipfs stats dht` does: per
// DHT, its buckets and each peer with when it was last useful.
func printDHTStats(w io.Writer, st dhtStats) {
	now := time.Now()
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	}
	for _, s := range []kademlia.Stats{st.WAN, st.LAN} {
		fmt.Fprintf(w, "DHT %s (mode %s, serving %v): %d peers, %d provider records, %d values\n",
			s.Protocol, s.Mode, s.Serving, s.Peers, s.Providers.Records, s.Values)
		for _, b := range s.Buckets {
			fmt.Fprintf(w, "  Bucket %2d (%d peers):\n", b.CPL, len(b.Peers))
			for _, p := range b.Peers {
				fmt.Fprintf(w, "    %s  last useful %s, last seen %s\n", p.ID, ago(p.LastUseful), ago(p.LastSeen))
			}
		}
		fmt.Fprintln(w)
	}
}
