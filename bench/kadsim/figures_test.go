package kadsim

import (
	"strings"
	"testing"
)

func TestDistOf(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want Dist
	}{
		{"empty", nil, Dist{}},
		{"one", []float64{3}, Dist{Mean: 3, Median: 3, P95: 3, Max: 3}},
		{"even count takes the lower middle", []float64{4, 1, 3, 2}, Dist{Mean: 2.5, Median: 2, P95: 4, Max: 4}},
		{"odd count", []float64{5, 1, 3}, Dist{Mean: 3, Median: 3, P95: 5, Max: 5}},
		{"p95 of twenty is the nineteenth", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
			Dist{Mean: 10.5, Median: 10, P95: 19, Max: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			if got := distOf(tt.xs); got != tt.want {
				t.Errorf("distOf(%v) = %+v, want %+v", tt.xs, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.xs[i] {
					t.Fatalf("distOf reordered its input: %v", tt.xs)
				}
			}
		})
	}
}

// passing is a result that meets every goal, just.
func passing() *Result {
	return &Result{
		Lookups: LookupResult{Count: 10, Succeeded: 10, Success: 1, LookupFigures: LookupFigures{Rounds: Dist{Median: GoalMedianRounds}}},
		Survival: []SurvivalResult{
			{Removed: 0, Keys: 100, Found: 100, Success: 1},
			{Removed: GoalRemoved, Keys: 100, Found: 99, Success: GoalSurvival},
		},
		Reprovide: &ReprovideResult{
			Sweep:       ReprovideRun{Keys: 100, Lookups: 5, Found: 1},
			Each:        ReprovideRun{Keys: 100, Lookups: 100, Found: 1},
			LookupShare: GoalReprovideShare,
		},
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Result)
		want   string // in the one failure; "" for none
	}{
		{"all goals met", func(*Result) {}, ""},
		{"no reprovide measured", func(r *Result) { r.Reprovide = nil }, ""},
		{"nothing measured", func(r *Result) { *r = Result{Survival: []SurvivalResult{{Removed: GoalRemoved}}} }, ""},
		{"a lookup missed", func(r *Result) { r.Lookups.Succeeded, r.Lookups.Success = 9, 0.9 }, "lookup success"},
		{"too many rounds", func(r *Result) { r.Lookups.Rounds.Median = GoalMedianRounds + 1 }, "rounds"},
		{"a record lost without churn", func(r *Result) { r.Survival[0].Success = 0.99 }, "no node removed"},
		{"records lost with churn", func(r *Result) { r.Survival[1].Success = GoalSurvival - 0.01 }, "30 % removed"},
		{"sweep too dear", func(r *Result) { r.Reprovide.LookupShare = GoalReprovideShare + 0.001 }, "sweep reprovide costs"},
		{"sweep records missing", func(r *Result) { r.Reprovide.Sweep.Found = 0.98 }, "reprovide by sweep"},
		{"per-key records missing", func(r *Result) { r.Reprovide.Each.Found = 0.5 }, "one lookup per key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := passing()
			tt.change(r)
			fails := r.Failures()
			switch {
			case tt.want == "" && len(fails) != 0:
				t.Errorf("Failures() = %v, want none", fails)
			case tt.want != "" && (len(fails) != 1 || !strings.Contains(fails[0].Error(), tt.want)):
				t.Errorf("Failures() = %v, want one about %q", fails, tt.want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	r := passing()
	r.Config.Nodes = 7
	r.Counters = map[string]uint64{"kad.in.FIND_NODE": 42}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lookup success", "100.00 % (10/10)", "providers found, 30 % removed", "99.00 % (99/100",
		"reprovide, sweep", "sweep lookups / per key", "5.00 %", "counter kad.in.FIND_NODE", "42"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
