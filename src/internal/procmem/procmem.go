// Package procmem reads a process's memory figures from
// /proc/PID/smaps_rollup, for the benchmarks: RSS, PSS (its share of
// pages shared with others) and the anonymous part (heaps and stacks).
package procmem

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Rollup is one process's memory, in bytes.
type Rollup struct {
	RSS, PSS, Anon int64
}

// Read reads pid's rollup; an error if the process is gone.
func Read(pid int) (Rollup, error) {
	var r Rollup
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return r, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			r.RSS += n << 10
		case "Pss:":
			r.PSS += n << 10
		case "Anonymous:":
			r.Anon += n << 10
		}
	}
	return r, sc.Err()
}
