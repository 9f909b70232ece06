package kadsim

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mote-p2p/mote/node"
)

// The simulation's size. The defaults are a run small enough for every
// `go test`; `-timeout 2h -args -nodes 2000 -json FILE` is issue 11's
// (about 15 minutes on 2 cores, 9 GiB).
var (
	nodesFlag     = flag.Int("nodes", 0, "nodes in the network (default 200, 40 under the race detector)")
	latencyFlag   = flag.Duration("latency", 20*time.Millisecond, "one-way latency of every link")
	lookupsFlag   = flag.Int("lookups", 200, "lookups and FindPeers to run")
	keysFlag      = flag.Int("keys", 200, "provider records to store and find")
	removedFlag   = flag.Float64("removed", GoalRemoved, "share of the nodes removed before the second search")
	reprovideFlag = flag.Int("reprovide-keys", 0, "keys one node reprovides (default 5 per node, as 10,000 of 2,000 nodes, at most 10,000)")
	parallelFlag  = flag.Int("parallel", 0, "operations run at once (default 16)")
	seedFlag      = flag.Uint64("seed", 1, "seed of the identities and random choices")
	reuseFlag     = flag.Bool("reuse-ports", false, "dial from the listening endpoint (see Config.ReusePorts)")
	outboundFlag  = flag.Int("max-outbound", 0, "every node's MaxOutboundConns (default the server preset's)")
	jsonFlag      = flag.String("json", "", "write every figure to this file as JSON")
)

// TestSimulation runs the simulation in fake time and fails unless every
// goal is met.
func TestSimulation(t *testing.T) {
	cfg := Config{
		Nodes: *nodesFlag, Latency: *latencyFlag, Lookups: *lookupsFlag, Keys: *keysFlag,
		Removed: *removedFlag, ReprovideKeys: *reprovideFlag, Parallel: *parallelFlag, Seed: *seedFlag,
		ReusePorts: *reuseFlag, Limits: node.Limits{MaxOutboundConns: *outboundFlag},
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 200
		if raceEnabled {
			// Under the race detector the 54,000 goroutines of 200
			// nodes end in a ThreadSanitizer CHECK failure; 40
			// nodes hold a few thousand.
			cfg.Nodes = 40
		}
	}
	if cfg.ReprovideKeys == 0 {
		cfg.ReprovideKeys = min(5*cfg.Nodes, 10000)
	}
	cfg.Settle = func() {
		time.Sleep(time.Second)
		synctest.Wait()
	}
	// Progress lines carry the real time, which the bubble does not see.
	wall := time.Now()
	lines := make(chan string)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for l := range lines {
			t.Logf("[%6.1fs real] %s", time.Since(wall).Seconds(), strings.TrimSpace(l))
		}
	}()
	cfg.Progress = chanWriter(lines)

	var res *Result
	synctest.Test(t, func(t *testing.T) {
		var err error
		if res, err = Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	})
	close(lines)
	<-printed
	if res == nil {
		return
	}
	res.WallSeconds = time.Since(wall).Seconds()
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if *jsonFlag != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*jsonFlag, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range res.Failures() {
		t.Error(err)
	}
	// What the goals take for granted.
	if res.Reprovide == nil {
		t.Error("no reprovide figures")
	}
	if res.Lookups.Count != cfg.Lookups || len(res.Survival) != 2 || res.Survival[1].Live >= cfg.Nodes {
		t.Errorf("%d lookups, %d searches of the records, %d nodes live at the end", res.Lookups.Count, len(res.Survival), res.Survival[len(res.Survival)-1].Live)
	}
	if res.Lookups.Rounds.Median < 1 || res.Lookups.Requests.Median < float64(3) {
		t.Errorf("lookup figures not recorded: %+v", res.Lookups.LookupFigures)
	}
	if res.Memory.TableBytes <= 0 || res.Memory.StoreBytes <= 0 || res.Memory.OwnKeys <= 0 {
		t.Errorf("memory figures not measured: %+v", res.Memory)
	}
}

// chanWriter sends each write as a line to a goroutine outside the bubble.
type chanWriter chan string

func (c chanWriter) Write(b []byte) (int, error) {
	c <- string(b)
	return len(b), nil
}
