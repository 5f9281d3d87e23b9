package firewall

import (
	"sync"
	"testing"
)

// What the tests of both backends share.

// forEachFirewall runs fn for every backend, each in a network namespace of
// its own: the iptables variants, then nftables. newFW makes the backend's
// Firewall.
func forEachFirewall(t *testing.T, fn func(t *testing.T, newFW func(t *testing.T) Firewall)) {
	forEachBackend(t, func(t *testing.T, b backend) {
		fn(t, func(t *testing.T) Firewall { return b.firewall(t, t.TempDir()) })
	})
	t.Run("nftables", func(t *testing.T) {
		if nftIsolate(t) {
			fn(t, func(t *testing.T) Firewall { return newNFT(t) })
		}
	})
}

// countRuns is the number of programs do ran.
func countRuns(t *testing.T, r *runner, do func() error) int64 {
	t.Helper()
	n := r.runs.Load()
	if err := do(); err != nil {
		t.Fatal(err)
	}
	return r.runs.Load() - n
}

// applyConcurrently applies testState, smallerState and the empty state
// from a dozen goroutines, with a Clear now and then, and then testState.
func applyConcurrently(t *testing.T, f Firewall) {
	t.Helper()
	states := []State{testState(), smallerState(), {}}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Go(func() {
			if i%5 == 4 {
				errs <- f.Clear()
				return
			}
			errs <- f.Apply(states[i%len(states)])
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := f.Apply(testState()); err != nil {
		t.Fatal(err)
	}
}
