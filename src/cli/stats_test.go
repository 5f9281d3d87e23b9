package cli

import (
	"math"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
)

func TestCPUPercent(t *testing.T) {
	cpu := func(total, system uint64, online uint32, percpu int) containertypes.CPUStats {
		return containertypes.CPUStats{CPUUsage: containertypes.CPUUsage{TotalUsage: total, PercpuUsage: make([]uint64, percpu)},
			SystemUsage: system, OnlineCPUs: online}
	}
	cases := []struct {
		name     string
		pre, cur containertypes.CPUStats
		want     float64
	}{
		// A container busy on one of two CPUs for the whole second: the
		// host's time grew by 2 CPU-seconds, the container's by 1.
		{"one of two CPUs", cpu(1e9, 10e9, 2, 0), cpu(2e9, 12e9, 2, 0), 100},
		{"both CPUs", cpu(0, 10e9, 2, 0), cpu(2e9, 12e9, 2, 0), 200},
		{"a quarter", cpu(0, 0, 4, 0), cpu(1e9, 16e9, 4, 0), 25},
		// Older daemons send no online_cpus: the per-CPU list counts them.
		{"per-CPU list", cpu(0, 0, 0, 0), cpu(1e9, 4e9, 0, 2), 50},
		{"idle", cpu(5, 10e9, 2, 0), cpu(5, 12e9, 2, 0), 0},
		{"no host time", cpu(0, 10e9, 2, 0), cpu(1e9, 10e9, 2, 0), 0},
		// A restarted container's counter goes back: not negative.
		{"counter reset", cpu(9e9, 10e9, 2, 0), cpu(1e9, 12e9, 2, 0), 0},
	}
	for _, c := range cases {
		if got := cpuPercent(c.pre, c.cur); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: %v%%, want %v%%", c.name, got, c.want)
		}
	}
}

func TestMemUsage(t *testing.T) {
	cases := []struct {
		name string
		m    containertypes.MemoryStats
		want uint64
	}{
		{"cgroup v1", containertypes.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 30, "inactive_file": 10}}, 70},
		{"cgroup v2", containertypes.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 40}}, 60},
		{"no stats", containertypes.MemoryStats{Usage: 100}, 100},
		{"inactive above usage", containertypes.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 300}}, 100},
	}
	for _, c := range cases {
		if got := memUsage(c.m); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestStatsLine(t *testing.T) {
	s := containertypes.StatsResponse{ID: strings.Repeat("ab", 32), Name: "/web",
		PreCPUStats: containertypes.CPUStats{CPUUsage: containertypes.CPUUsage{TotalUsage: 1e9}, SystemUsage: 10e9, OnlineCPUs: 2},
		CPUStats:    containertypes.CPUStats{CPUUsage: containertypes.CPUUsage{TotalUsage: 1.5e9}, SystemUsage: 12e9, OnlineCPUs: 2},
		MemoryStats: containertypes.MemoryStats{Usage: 3 << 20, Limit: 64 << 20, Stats: map[string]uint64{"total_inactive_file": 1 << 20}},
		Networks:    map[string]containertypes.NetworkStats{"eth0": {RxBytes: 1500, TxBytes: 500}},
		BlkioStats: containertypes.BlkioStats{IoServiceBytesRecursive: []containertypes.BlkioStatEntry{
			{Op: "Read", Value: 4096}, {Op: "Write", Value: 1e6}, {Op: "read", Value: 4096}, {Op: "Total", Value: 1}}},
		PidsStats: containertypes.PidsStats{Current: 3},
	}
	r := statsLine("web", s, true)
	want := statsRow{Container: "web", ID: "abababababab", Name: "web", CPUPerc: "50.00%", MemUsage: "2MiB / 64MiB",
		MemPerc: "3.12%", NetIO: "1.5kB / 500B", BlockIO: "8.19kB / 1MB", PIDs: "3"}
	if r != want {
		t.Errorf("row\n%+v, want\n%+v", r, want)
	}
	if r := statsLine("x", containertypes.StatsResponse{ID: "abc", Name: "/"}, false); r.Name != "--" || r.ID != "abc" || r.MemPerc != "0.00%" {
		t.Errorf("an empty sample: %+v", r)
	}
}

func TestSecurityOption(t *testing.T) {
	for o, want := range map[string][2]string{
		"name=seccomp,profile=builtin": {"seccomp", "builtin"},
		"name=cgroupns":                {"cgroupns", ""},
		"apparmor":                     {"apparmor", ""},
	} {
		if n, p := securityOption(o); n != want[0] || p != want[1] {
			t.Errorf("%q: %q %q, want %q", o, n, p, want)
		}
	}
}
