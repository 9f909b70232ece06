// Command kadsim runs the kademlia DHT simulation of bench/kadsim (issue
// 11) in real time and prints its figures: lookup success, requests and
// sequential rounds per lookup, provider records found with no node and
// with 30 % of the nodes removed, the cost of reproviding 10,000 keys by
// the sweep against one lookup per key, and the heap of the routing
// tables and stores.
//
//	cd bench && go run ./cmd/kadsim -nodes 2000 -json kadsim.json
//
// Real time makes every 20 ms link wait 20 ms while 2 CPU cores keep
// 2,000 nodes' timers, and a loaded machine shows in the figures. The
// same run in fake time, which is CPU-bound (about 15 minutes on 2
// cores, 9 GiB), is the one to use for issue 11's figures:
//
//	cd bench && go test ./kadsim -run TestSimulation -v -timeout 2h -args -nodes 2000 -json kadsim.json
//
// It takes the same flags (see kadsim/sim_test.go) and fails unless
// every goal is met.
//
// It exits with status 1 if a figure misses its goal, 2 on an error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mote-p2p/mote/bench/kadsim"
)

func main() {
	var cfg kadsim.Config
	flag.IntVar(&cfg.Nodes, "nodes", 2000, "nodes in the network")
	flag.DurationVar(&cfg.Latency, "latency", 20*time.Millisecond, "one-way latency of every link")
	flag.IntVar(&cfg.Lookups, "lookups", 200, "lookups and FindPeers to run")
	flag.IntVar(&cfg.Keys, "keys", 200, "provider records to store and find")
	flag.Float64Var(&cfg.Removed, "removed", kadsim.GoalRemoved, "share of the nodes removed before the second search (negative: none)")
	flag.IntVar(&cfg.ReprovideKeys, "reprovide-keys", 10000, "keys one node reprovides (negative: no reprovide)")
	flag.IntVar(&cfg.Parallel, "parallel", 0, "operations run at once (default 16)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the identities and random choices")
	flag.BoolVar(&cfg.ReusePorts, "reuse-ports", false, "dial from the listening endpoint, as TCP with SO_REUSEPORT (see kadsim.Config.ReusePorts)")
	flag.IntVar(&cfg.Limits.MaxOutboundConns, "max-outbound", 0, "every node's MaxOutboundConns (default the server preset's)")
	jsonOut := flag.String("json", "", "write every figure to this file as JSON")
	quiet := flag.Bool("q", false, "no progress lines on standard error")
	flag.Parse()
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	start := time.Now()
	res, err := kadsim.Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kadsim:", err)
		os.Exit(2)
	}
	res.WallSeconds = time.Since(start).Seconds()
	if err := report(os.Stdout, res, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "kadsim:", err)
		os.Exit(2)
	}
	if fails := res.Failures(); len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintln(os.Stderr, "kadsim: goal missed:", f)
		}
		os.Exit(1)
	}
}

// report prints the table and, if path is set, writes the JSON.
func report(w io.Writer, res *kadsim.Result, path string) error {
	if err := res.WriteTable(w); err != nil {
		return fmt.Errorf("print table: %w", err)
	}
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
