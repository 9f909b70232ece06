package kadsim

import (
	"context"
	"fmt"
	"strings"

	"github.com/mote-p2p/mote/kademlia"
)

// foundSample is how many of the reprovided keys are looked for
// afterwards, to check that the records arrived.
const foundSample = 100

// reprovide has one node provide ReprovideKeys keys by the sweep and
// another as many other keys by one lookup per key, so that neither run
// finds the other's records in place.
func (s *sim) reprovide(ctx context.Context, res *Result) error {
	if s.cfg.ReprovideKeys <= 0 {
		return nil
	}
	live := s.live()
	sweeper := s.pick(live)
	single := s.pick(live, sweeper)
	runs := []struct {
		by   *simNode
		name string
		run  func(context.Context, [][]byte) (kademlia.ReprovideStats, error)
		out  *ReprovideRun
	}{
		{sweeper, "sweep", sweeper.d.ProvideMany, new(ReprovideRun)},
		{single, "each", single.d.ProvideEach, new(ReprovideRun)},
	}
	for _, r := range runs {
		keys := make([][]byte, s.cfg.ReprovideKeys)
		for i := range keys {
			keys[i] = multihash(fmt.Sprintf("kadsim %d %s %d", s.cfg.Seed, r.name, i))
		}
		before := s.counters()
		st, err := r.run(ctx, keys)
		if err != nil {
			return fmt.Errorf("%s of %d keys: %w", r.name, len(keys), err)
		}
		s.cfg.Settle()
		*r.out = ReprovideRun{
			Keys: st.Keys, Regions: st.Regions, Lookups: st.Lookups, LookupRequests: st.LookupRequests,
			Sent: st.Sent, Failed: st.Failed, Seconds: st.Duration.Seconds(),
			Limits: limitDeltas(before, s.counters()),
		}
		r.out.Found, r.out.MissedHolders = s.foundShare(ctx, live, r.by, keys)
	}
	rp := &ReprovideResult{Sweep: *runs[0].out, Each: *runs[1].out}
	if rp.Each.Lookups > 0 {
		rp.LookupShare = float64(rp.Sweep.Lookups) / float64(rp.Each.Lookups)
	}
	if rp.Each.LookupRequests > 0 {
		rp.RequestShare = float64(rp.Sweep.LookupRequests) / float64(rp.Each.LookupRequests)
	}
	res.Reprovide = rp
	return nil
}

// foundShare looks for a sample of keys, provided by by, from random
// other nodes and returns the share found and, for each key not found,
// how many of its K closest live nodes hold its record.
func (s *sim) foundShare(ctx context.Context, live []*simNode, by *simNode, keys [][]byte) (float64, []int) {
	sample := min(foundSample, len(keys))
	askers := make([]*simNode, sample)
	for i := range askers {
		askers[i] = s.pick(live, by)
	}
	key := func(i int) []byte { return keys[i*len(keys)/sample] }
	found := make([]bool, sample)
	s.each(sample, func(i int) { found[i] = s.finds(ctx, askers[i], key(i), by) })
	n := 0
	var missed []int
	for i, f := range found {
		if f {
			n++
			continue
		}
		holders := 0
		for _, id := range closest(live, kademlia.KeyOf(key(i)), by, kademlia.K) {
			if h := s.byID[id]; s.holds(ctx, h, key(i), by) {
				holders++
			}
		}
		missed = append(missed, holders)
	}
	return float64(n) / float64(sample), missed
}

// finds reports whether asker's search for key finds provider.
func (s *sim) finds(ctx context.Context, asker *simNode, key []byte, provider *simNode) bool {
	provs, _, _ := asker.d.FindProviders(ctx, key, 1)
	for _, p := range provs {
		if p.ID == provider.n.ID() {
			return true
		}
	}
	return false
}

// holds reports whether n's own store has provider's record of key: a
// search answered without a request.
func (s *sim) holds(ctx context.Context, n *simNode, key []byte, provider *simNode) bool {
	provs, st, _ := n.d.FindProviders(ctx, key, 1)
	return st.Requests == 0 && len(provs) > 0 && provs[0].ID == provider.n.ID()
}

// limitDeltas returns the counters of limits (not the request counts)
// that rose from before to after.
func limitDeltas(before, after map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64)
	for k, v := range after {
		if !strings.HasPrefix(k, "kad.in.") && v > before[k] {
			out[k] = v - before[k]
		}
	}
	return out
}
