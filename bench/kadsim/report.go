package kadsim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
)

// WriteTable prints r as a table for people: one figure a line, with
// the goal it must reach where it has one.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, value, goal string) { fmt.Fprintf(tw, "%s\t%s\t%s\n", name, value, goal) }
	pct := func(x float64) string { return fmt.Sprintf("%.2f %%", 100*x) }
	dist := func(d Dist) string {
		return fmt.Sprintf("median %.0f  mean %.1f  p95 %.0f  max %.0f", d.Median, d.Mean, d.P95, d.Max)
	}
	lookup := func(prefix string, f LookupFigures) {
		row(prefix+"requests", dist(f.Requests), "")
		row(prefix+"answers", dist(f.Answers), "")
		row(prefix+"ms", dist(f.Millis), "")
	}
	c := r.Config
	row("figure", "value", "goal")
	dials := "from a fresh endpoint"
	if c.ReusePorts {
		dials = "from the listening endpoint"
	}
	row("nodes", fmt.Sprintf("%d, links of %v, dials %s, seed %d", c.Nodes, c.Latency, dials, c.Seed), "")
	row("build", fmt.Sprintf("%d waves, %.1f s", r.Build.Waves, r.Build.Seconds), "")
	row("  routing table peers", dist(r.Build.TablePeers), "")
	row("  connections per node", dist(r.Build.Conns), "")
	row("  whole heap per node", fmt.Sprintf("%.0f KiB (%d goroutines in all)", r.Build.HeapBytes/1024, r.Build.Goroutines), "")
	l := r.Lookups
	row("lookup success", fmt.Sprintf("%s (%d/%d)", pct(l.Success), l.Succeeded, l.Count), pct(GoalLookupSuccess))
	row("  recall of the K closest", pct(l.Recall), "")
	row("  rounds", dist(l.Rounds), fmt.Sprintf("median <= %d", GoalMedianRounds))
	lookup("  ", l.LookupFigures)
	for _, m := range l.Misses {
		row("  missed", m, "")
	}
	f := r.FindPeer
	row("find peer success", fmt.Sprintf("%s (%d/%d, %d connected already)", pct(f.Success), f.Found, f.Count, f.Connected), "")
	for _, s := range r.Survival {
		goal := "100.00 %"
		if s.Removed > 0 {
			goal = ">= " + pct(GoalSurvival)
		}
		row(fmt.Sprintf("providers found, %.0f %% removed", 100*s.Removed),
			fmt.Sprintf("%s (%d/%d, %d live nodes, %d held by the asker)", pct(s.Success), s.Found, s.Keys, s.Live, s.Local), goal)
		row("  rounds", dist(s.Rounds), "")
		lookup("  ", s.LookupFigures)
	}
	if p := r.Reprovide; p != nil {
		for _, run := range []struct {
			name string
			r    ReprovideRun
		}{{"sweep", p.Sweep}, {"one lookup per key", p.Each}} {
			row("reprovide, "+run.name, fmt.Sprintf("%d keys: %d lookups (%d requests), %d regions, %d sent, %d failed, %.1f s; %s found",
				run.r.Keys, run.r.Lookups, run.r.LookupRequests, run.r.Regions, run.r.Sent, run.r.Failed, run.r.Seconds, pct(run.r.Found)), "")
			if len(run.r.MissedHolders) > 0 {
				row("  keys not found: their K closest holding it", fmt.Sprint(run.r.MissedHolders), "")
			}
			for _, k := range slices.Sorted(maps.Keys(run.r.Limits)) {
				row("  limit "+k, fmt.Sprint(run.r.Limits[k]), "")
			}
		}
		row("  sweep lookups / per key", pct(p.LookupShare), "<= "+pct(GoalReprovideShare))
		row("  sweep lookup requests / per key", pct(p.RequestShare), "")
	} else {
		row("reprovide", "not measured", "")
	}
	m := r.Memory
	row("heap: routing table per node", fmt.Sprintf("%.0f B", m.TableBytes), "")
	row("heap: provider store per node", fmt.Sprintf("%.0f B (%.0f records)", m.StoreBytes, m.StoreRecords), "")
	row(fmt.Sprintf("heap: store of %d own keys", m.OwnKeyCount), fmt.Sprintf("%.0f B", m.OwnKeys), "")
	names := slices.Sorted(maps.Keys(r.Counters))
	for _, k := range names {
		row("counter "+k, fmt.Sprint(r.Counters[k]), "")
	}
	if r.WallSeconds > 0 {
		row("run", fmt.Sprintf("%.1f s simulated, %.1f s real", r.Seconds, r.WallSeconds), "")
	} else {
		row("run", fmt.Sprintf("%.1f s", r.Seconds), "")
	}
	return tw.Flush()
}
