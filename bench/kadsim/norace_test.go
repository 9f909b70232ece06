//go:build !race

package kadsim

const raceEnabled = false
