// Package kadsim runs the kademlia package's DHT, unchanged, on a
// simulated network of thousands of nodes (issue 11): every node is a
// full mote node with its own identity on its own host of one
// transport.MemNetwork, so lookups dial, handshake and negotiate as they
// would on TCP, only over in-memory links of a fixed latency.
//
// Run builds the network and measures, in this order:
//
//   - lookups: GetClosestPeers of random peers from random nodes (success:
//     the target, the true closest, comes first) with their requests,
//     answers and sequential rounds, and FindPeer of random peers;
//   - provider records: random keys provided by random nodes, then found
//     from random other nodes, once with every node up and once after a
//     share of the nodes (30 %) was removed;
//   - reprovide: one node provides 10,000 keys by the sweep (ProvideMany)
//     and by one lookup per key (ProvideEach), and the lookups and
//     requests of each;
//   - memory: the heap a copy of each node's routing table and provider
//     store takes, and that of a store of 10,000 own keys.
//
// Run works in real time (cmd/kadsim) and in fake time, inside a
// testing/synctest bubble (TestSimulation), where the links' delays cost
// no real time and no figure depends on the machine's load. 2,000 nodes
// take about 24 CPU-minutes and 9 GiB of memory either way, most of it
// the build: every node's refresh is a dozen lookups, and a node ends
// with some 175 connections, each with its goroutines. In fake time that
// is 15 minutes on 2 cores; in real time, more.
package kadsim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Figures to reach (issue 11), checked by Result.Failures.
const (
	// GoalLookupSuccess is the share of lookups that must find the true
	// closest peer with no churn.
	GoalLookupSuccess = 1.0
	// GoalSurvival is the share of provider records that must still be
	// found with GoalRemoved of the nodes removed.
	GoalSurvival = 0.99
	// GoalRemoved is the share of nodes removed for GoalSurvival.
	GoalRemoved = 0.3
	// GoalMedianRounds bounds the median sequential rounds of a lookup.
	GoalMedianRounds = 4
	// GoalReprovideShare bounds the lookups of a sweep reprovide, as a
	// share of those of one lookup per key.
	GoalReprovideShare = 0.05
)

// Config sets a simulation's size. Zero fields take the defaults in their
// comments.
type Config struct {
	// Nodes in the network (2,000).
	Nodes int `json:"nodes"`
	// Latency of every link, one way (20 ms).
	Latency time.Duration `json:"latency_ns"`
	// Seeds is how many random earlier nodes each joining node
	// bootstraps from (3).
	Seeds int `json:"seeds"`
	// Lookups is how many GetClosestPeers and as many FindPeer are run
	// (200; negative: none).
	Lookups int `json:"lookups"`
	// Keys is how many provider records are stored and looked for (200;
	// negative: none).
	Keys int `json:"keys"`
	// Removed is the share of nodes removed before the second search of
	// the records (GoalRemoved, 0.3; negative: none). Two nodes are
	// always left.
	Removed float64 `json:"removed"`
	// ReprovideKeys is how many keys one node reprovides (10,000);
	// negative skips the reprovide.
	ReprovideKeys int `json:"reprovide_keys"`
	// Parallel bounds the operations (bootstraps, lookups, provides)
	// run at once (16). In fake time it only sets how much work each
	// instant holds; in real time too many at once starve the timers.
	Parallel int `json:"parallel"`
	// Limits are every node's resource limits (node.Config.Limits; zero
	// fields: the server preset's).
	Limits node.Limits `json:"limits"`
	// ReusePorts has every node dial from its listening endpoint, as
	// TCP with SO_REUSEPORT does (a host of MemNetwork.NewHost each),
	// instead of from a fresh endpoint per dial (a host of its own per
	// transport, the default). With it, two nodes that dial each other
	// within a one-way latency get one simultaneously opened pipe on
	// which both start the Noise handshake as initiator: both dials fail,
	// and the dial backoff then fails requests between them for 5 s. In
	// fake time, where the nodes' steps line up, that fails about one
	// lookup in 200.
	ReusePorts bool `json:"reuse_ports"`
	// Seed makes the identities and every random choice (0 is a seed
	// like any other).
	Seed uint64 `json:"seed"`
	// Settle waits for the traffic in flight to arrive: the records a
	// provide sends after it returned, the disconnections of removed
	// nodes. Default: sleep 5 s. Under testing/synctest, a short sleep
	// then synctest.Wait.
	Settle func() `json:"-"`
	// Progress, if set, receives a line as each phase ends.
	Progress io.Writer `json:"-"`
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Nodes, 2000)
	def(&c.Lookups, 200)
	def(&c.Keys, 200)
	def(&c.ReprovideKeys, 10000)
	c.Lookups, c.Keys, c.ReprovideKeys = max(c.Lookups, 0), max(c.Keys, 0), max(c.ReprovideKeys, 0)
	if c.Seeds <= 0 {
		c.Seeds = 3
	}
	if c.Parallel <= 0 {
		c.Parallel = 16
	}
	if c.Latency <= 0 {
		c.Latency = 20 * time.Millisecond
	}
	if c.Removed == 0 {
		c.Removed = GoalRemoved
	}
	if c.Settle == nil {
		c.Settle = func() { time.Sleep(5 * time.Second) }
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// ErrTooSmall is returned by Run for a network too small to measure.
var ErrTooSmall = errors.New("kadsim: need at least 3 nodes")

// Dist summarises one figure over many operations.
type Dist struct {
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Max    float64 `json:"max"`
}

func distOf(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	// Nearest rank: the median of an even count is the lower middle,
	// so that a median of whole rounds stays a whole number.
	rank := func(p float64) float64 { return s[max(0, int(p*float64(len(s))+0.999999)-1)] }
	return Dist{Mean: sum / float64(len(s)), Median: rank(0.5), P95: rank(0.95), Max: s[len(s)-1]}
}

// LookupFigures are the figures of a set of lookups.
type LookupFigures struct {
	// Requests sent and Answers received per lookup; a request and its
	// answer are the two messages of one exchange.
	Requests Dist `json:"requests"`
	Answers  Dist `json:"answers"`
	// Rounds are the sequential round trips (LookupStats.Rounds).
	Rounds Dist `json:"rounds"`
	// Millis is each lookup's duration, in (simulated) milliseconds.
	Millis Dist `json:"ms"`
}

type lookupSample struct{ requests, answers, rounds, millis []float64 }

func (s *lookupSample) add(st kademlia.LookupStats) {
	s.requests = append(s.requests, float64(st.Requests))
	s.answers = append(s.answers, float64(st.Answers))
	s.rounds = append(s.rounds, float64(st.Rounds))
	s.millis = append(s.millis, float64(st.Duration)/float64(time.Millisecond))
}

func (s *lookupSample) figures() LookupFigures {
	return LookupFigures{distOf(s.requests), distOf(s.answers), distOf(s.rounds), distOf(s.millis)}
}

// BuildResult describes the network once built.
type BuildResult struct {
	// Seconds the build took, on the network's clock (fake time under
	// synctest).
	Seconds float64 `json:"seconds"`
	// Waves of joining nodes.
	Waves int `json:"waves"`
	// TablePeers is the size of the routing tables.
	TablePeers Dist `json:"table_peers"`
	// Conns is the connections per node.
	Conns Dist `json:"conns"`
	// Goroutines of the whole process, and HeapBytes, its live heap
	// after a collection, per node: what a node costs all told.
	Goroutines int     `json:"goroutines"`
	HeapBytes  float64 `json:"heap_bytes_per_node"`
}

// LookupResult is GetClosestPeers of random peers from random nodes.
type LookupResult struct {
	Count int `json:"count"`
	// Succeeded lookups returned the target first; Success is their
	// share.
	Succeeded int     `json:"succeeded"`
	Success   float64 `json:"success"`
	// Recall is the mean share of the target's true K closest (live,
	// the asker excluded) among the peers a lookup returned.
	Recall float64 `json:"recall"`
	LookupFigures
	// Misses describes the first lookups that failed, for diagnosis.
	Misses []string `json:"misses,omitempty"`
}

// maxMisses bounds Misses.
const maxMisses = 10

// FindPeerResult is FindPeer of random peers from random nodes.
type FindPeerResult struct {
	Count int `json:"count"`
	// Found the target with an address; Success is their share.
	Found   int     `json:"found"`
	Success float64 `json:"success"`
	// Connected is how many askers were connected to the target already,
	// which FindPeer answers without a lookup.
	Connected int `json:"connected"`
}

// SurvivalResult is the search of the stored provider records with a
// share of the nodes removed.
type SurvivalResult struct {
	// Removed share of the nodes, and the Live nodes left.
	Removed float64 `json:"removed"`
	Live    int     `json:"live"`
	Keys    int     `json:"keys"`
	// Found is how many searches found the provider; Success their share.
	Found   int     `json:"found"`
	Success float64 `json:"success"`
	// Local is how many askers held the record themselves.
	Local int `json:"local"`
	LookupFigures
}

// ReprovideRun is one way of providing the keys, from
// kademlia.ReprovideStats.
type ReprovideRun struct {
	Keys           int     `json:"keys"`
	Regions        int     `json:"regions"`
	Lookups        int     `json:"lookups"`
	LookupRequests int     `json:"lookup_requests"`
	Sent           int     `json:"sent"`
	Failed         int     `json:"failed"`
	Seconds        float64 `json:"seconds"`
	// Found is the share of a sample of the keys whose provider a search
	// from random nodes found afterwards; MissedHolders, for each key of
	// the sample not found, how many of its K closest nodes hold its
	// record.
	Found         float64 `json:"found"`
	MissedHolders []int   `json:"missed_holders,omitempty"`
	// Limits are the limit counters, all nodes together, that fired
	// during the run (Result.Counters).
	Limits map[string]uint64 `json:"limits,omitempty"`
}

// ReprovideResult compares the sweep with one lookup per key.
type ReprovideResult struct {
	Sweep ReprovideRun `json:"sweep"`
	Each  ReprovideRun `json:"each"`
	// LookupShare and RequestShare are the sweep's lookups and lookup
	// requests as a share of one lookup per key's.
	LookupShare  float64 `json:"lookup_share"`
	RequestShare float64 `json:"request_share"`
}

// MemoryResult is heap, in bytes, measured on copies (see measureMemory).
type MemoryResult struct {
	// TableBytes and StoreBytes are the mean heap of a node's routing
	// table and of its provider store (the records it held when
	// measured, StoreRecords on average).
	TableBytes   float64 `json:"table_bytes_per_node"`
	StoreBytes   float64 `json:"store_bytes_per_node"`
	StoreRecords float64 `json:"store_records_per_node"`
	// OwnKeys is the heap of a store holding only OwnKeyCount keys that
	// the node provides itself, as the reproviding node does.
	OwnKeyCount int     `json:"own_key_count"`
	OwnKeys     float64 `json:"own_keys_store_bytes"`
}

// Result holds every figure of a run.
type Result struct {
	Config    Config            `json:"config"`
	Build     BuildResult       `json:"build"`
	Lookups   LookupResult      `json:"lookups"`
	FindPeer  FindPeerResult    `json:"find_peer"`
	Survival  []SurvivalResult  `json:"survival"`
	Reprovide *ReprovideResult  `json:"reprovide,omitempty"`
	Memory    MemoryResult      `json:"memory"`
	Counters  map[string]uint64 `json:"counters"`
	// Seconds is the whole run on the network's clock; WallSeconds, set
	// by the caller, in real time.
	Seconds     float64 `json:"seconds"`
	WallSeconds float64 `json:"wall_seconds,omitempty"`
}

// simNode is one node of the network and its DHT.
type simNode struct {
	n    *node.Node
	d    *kademlia.DHT
	key  kademlia.Key
	live bool
}

func (s *simNode) info() peer.AddrInfo {
	return peer.AddrInfo{ID: s.n.ID(), Addrs: s.n.ListenAddrs()}
}

func (s *simNode) close() {
	s.live = false
	s.d.Close()
	s.n.Close()
}

type sim struct {
	cfg      Config
	rng      *rand.Rand
	nodes    []*simNode
	byID     map[peer.ID]*simNode
	provided []providedKey
}

// Run builds the network of cfg, measures it and closes it. Under
// testing/synctest it must run inside the bubble.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if cfg.Nodes < 3 {
		return nil, ErrTooSmall
	}
	start := time.Now()
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6b61647369)), byID: make(map[peer.ID]*simNode)}
	defer s.close()
	res := &Result{Config: cfg}
	steps := []struct {
		name string
		run  func(context.Context, *Result) error
	}{
		{"build", s.build},
		{"lookups", s.lookups},
		{"find peer", s.findPeers},
		{"providers", s.providers},
		{"reprovide", s.reprovide},
		{"memory", s.memory},
		{"churn", s.churn},
	}
	for _, st := range steps {
		t := time.Now()
		if err := st.run(ctx, res); err != nil {
			return nil, fmt.Errorf("kadsim: %s: %w", st.name, err)
		}
		fmt.Fprintf(cfg.Progress, "kadsim: %s done in %v\n", st.name, time.Since(t).Round(time.Millisecond))
	}
	res.Counters = s.counters()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func (s *sim) close() {
	for _, n := range s.nodes {
		if n.live {
			n.close()
		}
	}
}

// each runs f(0) … f(n-1), at most Parallel at a time, and returns when
// all have.
func (s *sim) each(n int, f func(i int)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.cfg.Parallel)
	for i := range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			f(i)
		}()
	}
	wg.Wait()
}

// live returns the live nodes.
func (s *sim) live() []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if n.live {
			out = append(out, n)
		}
	}
	return out
}

// pick returns a random node of live other than the excluded ones,
// which must leave one.
func (s *sim) pick(live []*simNode, not ...*simNode) *simNode {
	for {
		n := live[s.rng.IntN(len(live))]
		if !slices.Contains(not, n) {
			return n
		}
	}
}

// build starts the nodes and has them join in waves, each as large as
// the network so far, every node bootstrapping from Seeds random earlier
// ones; then every node refreshes its table once, as the first nodes
// joined a network too small to fill it.
func (s *sim) build(ctx context.Context, res *Result) error {
	start := time.Now()
	mn := transport.NewMemNetworkWith(transport.MemConfig{Link: transport.Link{Latency: s.cfg.Latency}, Seed: s.cfg.Seed})
	keys := rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "kadsim keys %d", s.cfg.Seed)))
	for range s.cfg.Nodes {
		key, err := peer.GenerateEd25519(keys)
		if err != nil {
			return err
		}
		hostNet := mn // a fresh host for the transport
		if s.cfg.ReusePorts {
			hostNet = mn.NewHost().Network()
		}
		n, err := node.New(node.Config{
			Key:         key,
			Limits:      s.cfg.Limits,
			Transports:  []node.TransportMaker{node.Memory(hostNet)},
			ListenAddrs: []ma.Multiaddr{ma.StringCast("/memory/0")},
		})
		if err != nil {
			return fmt.Errorf("start node: %w", err)
		}
		d, err := kademlia.New(n, kademlia.Config{Mode: kademlia.ModeServer, RefreshInterval: -1})
		if err != nil {
			n.Close()
			return fmt.Errorf("start DHT: %w", err)
		}
		s.nodes = append(s.nodes, &simNode{n: n, d: d, key: kademlia.PeerKey(n.ID()), live: true})
		s.byID[n.ID()] = s.nodes[len(s.nodes)-1]
	}
	errs := make([]error, len(s.nodes))
	for joined := 1; joined < len(s.nodes); {
		wave := min(joined, len(s.nodes)-joined)
		seeds := make([][]peer.AddrInfo, wave)
		for i := range seeds {
			var from []*simNode
			for range min(s.cfg.Seeds, joined) {
				from = append(from, s.pick(s.nodes[:joined], from...))
			}
			for _, n := range from {
				seeds[i] = append(seeds[i], n.info())
			}
		}
		s.each(wave, func(i int) {
			if err := s.nodes[joined+i].d.Bootstrap(ctx, seeds[i]...); err != nil {
				errs[joined+i] = fmt.Errorf("node %d: %w", joined+i, err)
			}
		})
		joined += wave
		res.Build.Waves++
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.each(len(s.nodes), func(i int) { s.nodes[i].d.Refresh(ctx) })
	s.cfg.Settle()
	var peers, conns []float64
	for _, n := range s.nodes {
		peers = append(peers, float64(n.d.RoutingTable().Len()))
		conns = append(conns, float64(len(n.n.Peers())))
	}
	res.Build.TablePeers = distOf(peers)
	res.Build.Conns = distOf(conns)
	res.Build.Goroutines = runtime.NumGoroutine()
	res.Build.HeapBytes = float64(liveHeap()) / float64(len(s.nodes))
	res.Build.Seconds = time.Since(start).Seconds()
	return nil
}

// closest returns the IDs of the live nodes other than not, closest to
// key first, at most k.
func closest(live []*simNode, key kademlia.Key, not *simNode, k int) []peer.ID {
	var c []*simNode
	for _, n := range live {
		if n != not {
			c = append(c, n)
		}
	}
	slices.SortFunc(c, func(a, b *simNode) int {
		switch {
		case key.Closer(a.key, b.key):
			return -1
		case key.Closer(b.key, a.key):
			return 1
		}
		return 0
	})
	ids := make([]peer.ID, 0, k)
	for _, n := range c[:min(k, len(c))] {
		ids = append(ids, n.n.ID())
	}
	return ids
}

func (s *sim) lookups(ctx context.Context, res *Result) error {
	live := s.live()
	type job struct{ target, asker *simNode }
	jobs := make([]job, s.cfg.Lookups)
	for i := range jobs {
		t := s.pick(live)
		jobs[i] = job{t, s.pick(live, t)}
	}
	stats := make([]kademlia.LookupStats, len(jobs))
	ok := make([]bool, len(jobs))
	recall := make([]float64, len(jobs))
	errs := make([]error, len(jobs))
	s.each(len(jobs), func(i int) {
		j := jobs[i]
		got, st, err := j.asker.d.Lookup(ctx, []byte(j.target.n.ID()))
		stats[i] = st
		if err != nil {
			errs[i] = err
			return
		}
		ok[i] = len(got) > 0 && got[0] == j.target.n.ID()
		if !ok[i] {
			errs[i] = fmt.Errorf("target %s at %d of the %d returned", j.target.n.ID().ShortString(), slices.Index(got, j.target.n.ID()), len(got))
		}
		want := closest(live, j.target.key, j.asker, kademlia.K)
		hits := 0
		for _, id := range want {
			if slices.Contains(got, id) {
				hits++
			}
		}
		recall[i] = float64(hits) / float64(len(want))
	})
	r := &res.Lookups
	var sample lookupSample
	for i, j := range jobs {
		sample.add(stats[i])
		if ok[i] {
			r.Succeeded++
		} else if len(r.Misses) < maxMisses {
			inTables, withAddrs := s.knownBy(j.target)
			r.Misses = append(r.Misses, fmt.Sprintf("lookup by %s (%d peers): %+v: %v; the target is in %d tables, with addresses in %d of those",
				j.asker.n.ID().ShortString(), j.asker.d.RoutingTable().Len(), stats[i], errs[i], inTables, withAddrs))
		}
		r.Recall += recall[i] / float64(len(jobs))
	}
	r.Count = len(jobs)
	r.Success = float64(r.Succeeded) / float64(max(r.Count, 1))
	r.LookupFigures = sample.figures()
	return nil
}

// knownBy counts the live nodes whose routing table holds t, and those
// of them whose peerstore has an address of t, without which they leave
// it out of their answers.
func (s *sim) knownBy(t *simNode) (inTables, withAddrs int) {
	for _, n := range s.live() {
		if n.d.RoutingTable().Contains(t.n.ID()) {
			inTables++
			if len(n.n.Peerstore().Addrs(t.n.ID())) > 0 {
				withAddrs++
			}
		}
	}
	return inTables, withAddrs
}

func (s *sim) findPeers(ctx context.Context, res *Result) error {
	live := s.live()
	type job struct{ target, asker *simNode }
	jobs := make([]job, s.cfg.Lookups)
	for i := range jobs {
		t := s.pick(live)
		jobs[i] = job{t, s.pick(live, t)}
	}
	found := make([]bool, len(jobs))
	connected := make([]bool, len(jobs))
	s.each(len(jobs), func(i int) {
		j := jobs[i]
		connected[i] = len(j.asker.n.Conns(j.target.n.ID())) > 0
		ai, err := j.asker.d.FindPeer(ctx, j.target.n.ID())
		found[i] = err == nil && ai.ID == j.target.n.ID() && len(ai.Addrs) > 0
	})
	r := &res.FindPeer
	r.Count = len(jobs)
	for i := range jobs {
		if found[i] {
			r.Found++
		}
		if connected[i] {
			r.Connected++
		}
	}
	r.Success = float64(r.Found) / float64(max(r.Count, 1))
	return nil
}

// A provided key and its provider.
type providedKey struct {
	key      []byte
	provider *simNode
}

func multihash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return append([]byte{0x12, 0x20}, sum[:]...) // sha2-256, 32 bytes
}

// providers stores Keys records, each from a random node, and searches
// them with every node up.
func (s *sim) providers(ctx context.Context, res *Result) error {
	live := s.live()
	keys := make([]providedKey, s.cfg.Keys)
	for i := range keys {
		keys[i] = providedKey{multihash(fmt.Sprintf("kadsim %d key %d", s.cfg.Seed, i)), s.pick(live)}
	}
	errs := make([]error, len(keys))
	s.each(len(keys), func(i int) {
		if err := keys[i].provider.d.Provide(ctx, keys[i].key); err != nil {
			errs[i] = fmt.Errorf("key %d: %w", i, err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.cfg.Settle()
	s.provided = keys
	res.Survival = append(res.Survival, s.search(ctx, 0))
	return nil
}

// churn removes the share Removed of the nodes, at random, and searches
// the records again.
func (s *sim) churn(ctx context.Context, res *Result) error {
	if s.cfg.Removed <= 0 {
		return nil
	}
	live := s.live()
	remove := min(int(s.cfg.Removed*float64(len(live))+0.5), len(live)-2)
	s.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	for _, n := range live[:remove] {
		n.close()
	}
	s.cfg.Settle()
	res.Survival = append(res.Survival, s.search(ctx, float64(remove)/float64(len(s.nodes))))
	return nil
}

// search looks for the provider of every provided key from a random
// live node other than the provider.
func (s *sim) search(ctx context.Context, removed float64) SurvivalResult {
	live := s.live()
	askers := make([]*simNode, len(s.provided))
	for i, k := range s.provided {
		askers[i] = s.pick(live, k.provider)
	}
	found := make([]bool, len(askers))
	local := make([]bool, len(askers))
	stats := make([]kademlia.LookupStats, len(askers))
	s.each(len(askers), func(i int) {
		k := s.provided[i]
		provs, st, _ := askers[i].d.FindProviders(ctx, k.key, 1)
		stats[i] = st
		local[i] = st.Requests == 0 && len(provs) > 0
		for _, p := range provs {
			found[i] = found[i] || p.ID == k.provider.n.ID()
		}
	})
	r := SurvivalResult{Removed: removed, Live: len(live), Keys: len(askers)}
	var sample lookupSample
	for i := range askers {
		if found[i] {
			r.Found++
		}
		if local[i] {
			r.Local++
		} else {
			sample.add(stats[i])
		}
	}
	r.Success = float64(r.Found) / float64(max(r.Keys, 1))
	r.LookupFigures = sample.figures()
	return r
}

// counters sums the DHT counters, and the node limits' (prefixed
// "node."), of every node.
func (s *sim) counters() map[string]uint64 {
	out := make(map[string]uint64)
	for _, n := range s.nodes {
		for k, v := range n.d.Stats().Counters {
			out[k] += v
		}
		for k, v := range n.n.Counters() {
			if v > 0 {
				out["node."+k] += v
			}
		}
	}
	return out
}

// liveHeap returns the live heap. Two collections: the first only moves
// sync.Pool contents to the pools' victim caches.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heapOf returns the heap that what make allocates keeps live.
func heapOf(make func() any) float64 {
	before := liveHeap()
	kept := make()
	after := liveHeap()
	runtime.KeepAlive(kept)
	return float64(after) - float64(before)
}

// memory measures the heap of the routing tables and provider stores.
// The DHT's own are not reachable apart from the rest of the node, so it
// builds copies: for every live node a Table holding the same peers and
// a ProviderStore holding as many records as the node's, over as many
// keys, from real providers with their addresses (as ADD_PROVIDER gives
// them).
func (s *sim) memory(_ context.Context, res *Result) error {
	live := s.live()
	now := time.Now()
	peerSets := make([][]peer.ID, len(live))
	for i, n := range live {
		peerSets[i] = n.d.RoutingTable().Peers()
	}
	tables := heapOf(func() any {
		out := make([]*kademlia.Table, len(live))
		for i, n := range live {
			out[i] = kademlia.NewTable(n.n.ID(), kademlia.TableConfig{})
			for _, p := range peerSets[i] {
				out[i].Add(p, nil, now)
			}
		}
		return out
	})
	type shape struct{ keys, records int }
	shapes := make([]shape, len(live))
	records := 0
	for i, n := range live {
		st := n.d.Stats().Providers
		shapes[i] = shape{st.Keys, st.Records}
		records += st.Records
	}
	addrs := live[0].n.ListenAddrs()
	keyOf := func(i, j int) []byte { return multihash(fmt.Sprintf("kadsim store %d %d", i, j)) }
	stores := heapOf(func() any {
		out := make([]*kademlia.ProviderStore, len(live))
		for i, sh := range shapes {
			out[i] = kademlia.NewProviderStore(kademlia.ProviderConfig{})
			for j := range sh.records {
				p := live[(i+j)%len(live)].n.ID()
				out[i].Add(keyOf(i, j%max(sh.keys, 1)), p, addrs, now)
			}
		}
		return out
	})
	own := max(s.cfg.ReprovideKeys, 10000)
	self := live[0].n.ID()
	ownBytes := heapOf(func() any {
		st := kademlia.NewProviderStore(kademlia.ProviderConfig{})
		for j := range own {
			st.Add(keyOf(-1, j), self, nil, now)
		}
		return st
	})
	res.Memory = MemoryResult{
		TableBytes:   tables / float64(len(live)),
		StoreBytes:   stores / float64(len(live)),
		StoreRecords: float64(records) / float64(len(live)),
		OwnKeyCount:  own,
		OwnKeys:      ownBytes,
	}
	return nil
}

// Failures lists the figures of r that miss their goal (none: all met).
// Goals whose figure was not measured are skipped.
func (r *Result) Failures() []error {
	var out []error
	fail := func(format string, args ...any) { out = append(out, fmt.Errorf(format, args...)) }
	if r.Lookups.Count > 0 && r.Lookups.Success < GoalLookupSuccess {
		fail("lookup success %.2f %% < %.0f %%", 100*r.Lookups.Success, 100*GoalLookupSuccess)
	}
	if r.Lookups.Count > 0 && r.Lookups.Rounds.Median > GoalMedianRounds {
		fail("median lookup rounds %.1f > %d", r.Lookups.Rounds.Median, GoalMedianRounds)
	}
	for _, sv := range r.Survival {
		if sv.Keys == 0 {
			continue
		}
		if sv.Removed == 0 && sv.Success < 1 {
			fail("provider records found with no node removed: %.2f %% < 100 %%", 100*sv.Success)
		}
		if sv.Removed > 0 && sv.Success < GoalSurvival {
			fail("provider records found with %.0f %% removed: %.2f %% < %.0f %%", 100*sv.Removed, 100*sv.Success, 100*GoalSurvival)
		}
	}
	if p := r.Reprovide; p != nil {
		if p.LookupShare > GoalReprovideShare {
			fail("sweep reprovide costs %.2f %% of the lookups of one per key > %.0f %%", 100*p.LookupShare, 100*GoalReprovideShare)
		}
		// A sweep that sends nothing would be cheap too.
		for _, run := range []struct {
			name string
			r    ReprovideRun
		}{{"sweep", p.Sweep}, {"one lookup per key", p.Each}} {
			if run.r.Found < 1 {
				fail("reprovide by %s: %.2f %% of a sample of its keys found < 100 %%", run.name, 100*run.r.Found)
			}
		}
	}
	return out
}
