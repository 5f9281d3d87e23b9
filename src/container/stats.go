package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// Stats samples a running container in Docker's shape: CPU (with the
// host's total for the percentage), memory, pids, block I/O.
func (m *Manager) Stats(ctx context.Context, ref string) (containertypes.StatsResponse, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return containertypes.StatsResponse{}, err
	}
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		return containertypes.StatsResponse{ID: c.ID, Name: "/" + c.Name, Read: time.Now()}, nil
	}
	st, err := m.rt.Stats(ctx, c.ID)
	if err != nil {
		return containertypes.StatsResponse{}, err
	}
	out := containertypes.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: time.Now()}
	cpu := st.CpuStats.CpuUsage
	out.CPUStats = containertypes.CPUStats{
		CPUUsage: containertypes.CPUUsage{TotalUsage: cpu.TotalUsage, PercpuUsage: cpu.PercpuUsage,
			UsageInKernelmode: cpu.UsageInKernelmode, UsageInUsermode: cpu.UsageInUsermode},
		SystemUsage: systemCPUUsage(), OnlineCPUs: uint32(runtime.NumCPU()),
	}
	mem := st.MemoryStats
	out.MemoryStats = containertypes.MemoryStats{Usage: mem.Usage.Usage, MaxUsage: mem.Usage.MaxUsage,
		Failcnt: mem.Usage.Failcnt, Limit: mem.Usage.Limit, Stats: mem.Stats}
	if out.MemoryStats.Limit == 0 || out.MemoryStats.Limit > 1<<60 {
		out.MemoryStats.Limit = physicalMemory()
	}
	out.PidsStats = containertypes.PidsStats{Current: st.PidsStats.Current, Limit: st.PidsStats.Limit}
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		out.BlkioStats.IoServiceBytesRecursive = append(out.BlkioStats.IoServiceBytesRecursive,
			containertypes.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	if c.HostConfig == nil || !c.HostConfig.NetworkMode.IsHost() {
		out.Networks = netStats(c.State.Pid)
	}
	return out, nil
}

// netStats reads the counters of the interfaces of pid's network
// namespace but loopback, as Docker reports them (nil with none: a
// container on the none network).
func netStats(pid int) map[string]containertypes.NetworkStats {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	return parseNetDev(string(b))
}

// parseNetDev reads /proc/PID/net/dev's table.
func parseNetDev(b string) map[string]containertypes.NetworkStats {
	var out map[string]containertypes.NetworkStats
	for _, line := range strings.Split(b, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if !ok || name == "lo" || len(f) < 12 {
			continue // the two header lines have no counters
		}
		var v [12]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		if out == nil {
			out = map[string]containertypes.NetworkStats{}
		}
		// rx: bytes packets errs drop fifo frame compressed multicast,
		// then tx: bytes packets errs drop.
		out[name] = containertypes.NetworkStats{RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11]}
	}
	return out
}

// systemCPUUsage is the host's CPU time in nanoseconds, from /proc/stat,
// as Docker reports it for the CPU percentage.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[0] == "cpu" {
			var ticks uint64
			for _, v := range fields[1:8] {
				n, _ := strconv.ParseUint(v, 10, 64)
				ticks += n
			}
			return ticks * (1e9 / 100) // USER_HZ is 100 on Linux
		}
	}
	return 0
}

func physicalMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// Top lists a running container's processes as "ps -ef" would, or as
// the host's ps with other arguments does.
func (m *Manager) Top(ctx context.Context, ref, psArgs string) (containertypes.TopResponse, error) {
	if err := validatePSArgs(psArgs); err != nil {
		return containertypes.TopResponse{}, err
	}
	c, err := m.records.get(ref)
	if err != nil {
		return containertypes.TopResponse{}, err
	}
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		return containertypes.TopResponse{}, errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	pids, err := m.rt.Processes(ctx, c.ID)
	if err != nil {
		return containertypes.TopResponse{}, err
	}
	var out containertypes.TopResponse
	if psArgs != "" && psArgs != "-ef" {
		if out, err = hostPS(ctx, psArgs, pids); err != nil {
			return out, err
		}
	} else {
		// ps -ef read from /proc: a device may have no ps.
		out.Titles = []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}
		boot := bootTime()
		for _, pid := range pids {
			if row, err := psRow(pid, boot); err == nil { // else gone meanwhile
				out.Processes = append(out.Processes, row)
			}
		}
	}
	m.notify(events.ActionTop, c, nil) // as Docker
	return out, nil
}

// psArgsRe finds "name=PID…" column renames, which would hide the PID
// column Docker's parsing looks for.
var psArgsRe = regexp.MustCompile(`\s+(\S*)=\s*(PID\S*)`)

func validatePSArgs(psArgs string) error {
	for _, g := range psArgsRe.FindAllStringSubmatch(psArgs, -1) {
		if g[1] != "pid" {
			return fmt.Errorf(`specifying "%s=%s" is not allowed`, g[1], g[2]) // Docker's status too: 500
		}
	}
	return nil
}

// hostPS is Docker's top with ps arguments: the host's ps, limited to
// the container's PIDs with -q where ps takes it together with the
// arguments, and its lines of those PIDs kept.
func hostPS(ctx context.Context, psArgs string, pids []int) (containertypes.TopResponse, error) {
	args := strings.Split(psArgs, " ")
	q := make([]string, len(pids))
	for i, p := range pids {
		q[i] = strconv.Itoa(p)
	}
	out, err := exec.CommandContext(ctx, "ps", append(args, "-q"+strings.Join(q, ","))...).Output()
	if err != nil {
		// Some options (f) do not go with -q.
		if out, err = exec.CommandContext(ctx, "ps", args...).Output(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if line, _, _ := strings.Cut(string(ee.Stderr), "\n"); line != "" {
					err = errors.New(line)
				}
			}
			return containertypes.TopResponse{}, fmt.Errorf("ps: %w", err)
		}
	}
	return parsePS(string(out), pids)
}

// parsePS keeps ps's lines of pids, found by the PID column of its
// header; a thread's line ("-" as PID, ps -m) goes with its process's.
func parsePS(out string, pids []int) (containertypes.TopResponse, error) {
	lines := strings.Split(out, "\n")
	top := containertypes.TopResponse{Titles: strings.Fields(lines[0])}
	col := slices.Index(top.Titles, "PID")
	if col < 0 {
		//lint:ignore ST1005 Docker's wording.
		return top, errors.New("Couldn't find PID field in ps output")
	}
	keep := false
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col || len(f) < len(top.Titles) {
			continue
		}
		if f[col] != "-" {
			p, err := strconv.Atoi(f[col])
			if err != nil {
				//lint:ignore ST1005 Docker's wording.
				return top, fmt.Errorf("Unexpected pid '%s': %s", f[col], err)
			}
			keep = slices.Contains(pids, p)
		}
		if keep {
			// The last column (a command) keeps its spaces.
			n := len(top.Titles) - 1
			top.Processes = append(top.Processes, append(f[:n:n], strings.Join(f[n:], " ")))
		}
	}
	return top, nil
}

func bootTime() time.Time {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// psRow reads one process from /proc.
func psRow(pid int, boot time.Time) ([]string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(stat)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return nil, errors.New("bad stat")
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return nil, errors.New("bad stat")
	}
	ppid := f[1]
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	startTicks, _ := strconv.ParseUint(f[19], 10, 64)
	started := boot.Add(time.Duration(startTicks) * time.Second / 100)
	cpu := time.Duration(utime+stime) * time.Second / 100
	uid := "?"
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					uid = fs[0]
				}
			}
		}
	}
	cmd := ""
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		cmd = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	if cmd == "" {
		cmd = "[" + s[strings.IndexByte(s, '(')+1:end] + "]"
	}
	return []string{uid, strconv.Itoa(pid), ppid, "0", started.Format("15:04"), "?",
		fmt.Sprintf("%02d:%02d:%02d", int(cpu.Hours()), int(cpu.Minutes())%60, int(cpu.Seconds())%60), cmd}, nil
}
