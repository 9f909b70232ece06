//go:build race

package abuse

// raceEnabled: the race detector slows the in-process attackers several
// times over, so attacks that are bounded by time rather than by count
// send less; none is skipped.
const raceEnabled = true
