//go:build race

package bsdiff

// raceEnabled tells tests to shrink their largest inputs: the race
// detector slows Diff some thirty-fold, and finds nothing more in 16 MiB
// than in 1 MiB (Diff and Patch run on one goroutine).
const raceEnabled = true
