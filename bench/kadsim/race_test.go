//go:build race

package kadsim

const raceEnabled = true
