//go:build !race

package bsdiff

// raceEnabled: see race_test.go.
const raceEnabled = false
