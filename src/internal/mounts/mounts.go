// Package mounts detaches what a daemon under test left mounted below a
// directory, for the tests' and benchmarks' cleanup.
package mounts

import (
	"os"
	"sort"
	"strings"
	"syscall"
)

// Under lists the mount points strictly below dir, deepest first.
func Under(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	dir = strings.TrimSuffix(dir, "/") + "/"
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			mps = append(mps, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	return mps
}

// DetachUnder lazily unmounts everything below dir.
func DetachUnder(dir string) {
	for _, m := range Under(dir) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
}
