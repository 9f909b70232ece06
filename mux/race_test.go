//go:build race

package mux

// raceEnabled: the race detector makes sync.Pool drop items at random.
const raceEnabled = true
