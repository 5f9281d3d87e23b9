package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// memCgroup is a memory cgroup of the benchmark's own, below the one it
// runs in, holding one puller: the page cache and dirty pages it charges
// are the puller's alone, whatever else the machine is doing (the
// system-wide figures of /proc/meminfo count every other writer too).
type memCgroup struct {
	dir string
	v2  bool
}

// newMemCgroup makes the cgroup name below this process's memory cgroup
// (cgroup v2, or v1's memory hierarchy).
func newMemCgroup(name string) (*memCgroup, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir string
		v2 := false
		switch {
		case parts[0] == "0" && parts[1] == "":
			if c, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err != nil || !strings.Contains(string(c), "memory") {
				continue
			}
			dir, v2 = filepath.Join("/sys/fs/cgroup", parts[2]), true
		case strings.Contains(","+parts[1]+",", ",memory,"):
			dir = filepath.Join("/sys/fs/cgroup/memory", parts[2])
		default:
			continue
		}
		if v2 {
			// A v2 process's own cgroup cannot have children with
			// controllers while it holds processes: the benchmark's
			// cgroups go beside it, under its parent.
			dir = filepath.Dir(dir)
			os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0o644)
		}
		c := &memCgroup{dir: filepath.Join(dir, name), v2: v2}
		if err := os.Mkdir(c.dir, 0o755); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("memory cgroup: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("no memory cgroup controller found in /proc/self/cgroup")
}

// wrap makes cmd join the cgroup before it runs its program, so that none
// of its pages are charged elsewhere, and run at nice -10: every puller
// alike, so that other work on the machine disturbs the comparison less.
func (c *memCgroup) wrap(cmd *exec.Cmd) {
	args := append([]string{"sh", "-c", `echo $$ > "$0" && exec nice -n -10 "$@"`, filepath.Join(c.dir, "cgroup.procs"), cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args = "/bin/sh", args
}

// stat returns the page cache and the dirty pages charged to the cgroup.
func (c *memCgroup) stat() (cache, dirty int64) {
	f, err := os.Open(filepath.Join(c.dir, "memory.stat"))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	cacheKey, dirtyKey := "total_cache", "total_dirty"
	if c.v2 {
		cacheKey, dirtyKey = "file", "file_dirty"
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case cacheKey:
			cache = n
		case dirtyKey:
			dirty = n
		}
	}
	return cache, dirty
}

// remove removes the cgroup once its processes are gone (its charges go to
// the parent).
func (c *memCgroup) remove() { os.Remove(c.dir) }
