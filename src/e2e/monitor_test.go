//go:build e2e

package e2e

// The container monitor's loss: killed (as the OOM killer or a bug would),
// it is replaced, and the next one takes the running containers back: the
// engine never says a container has ended while a process of it runs, and
// never runs one twice.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/mounts"
)

// monitorPID reads the monitor's PID file; 0 if there is none.
func monitorPID(p paths) int {
	b, err := os.ReadFile(filepath.Join(p.execRoot, "monitor", "monitor.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// cgroupProcs lists the processes in a container's cgroup, as the kernel
// has them (cgroup v2, or v1's pids hierarchy); nil when it has none.
func cgroupProcs(p paths, id string) []int {
	var out []int
	for _, dir := range []string{"/sys/fs/cgroup" + p.cgroupParent + "/" + id, "/sys/fs/cgroup/pids" + p.cgroupParent + "/" + id} {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	return nil
}

// dumpMonitorLog shows the monitors' log when the test fails.
func dumpMonitorLog(t *testing.T, p paths) {
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(p.execRoot, "monitor", "monitor.log"))
			t.Logf("monitor.log:\n%s", b)
		}
	})
}

func oomScoreAdj(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// killMonitor SIGKILLs the monitor and waits until it has gone.
func killMonitor(t *testing.T, p paths) int {
	t.Helper()
	pid := monitorPID(p)
	if pid <= 1 {
		t.Fatal("no monitor PID")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Gone, or a zombie its parent (the daemon) has not reaped yet.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor %d survived SIGKILL", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestE2EMonitorKilled(t *testing.T) {
	p, d, env := withBusybox(t)
	dumpMonitorLog(t, p)
	c := apiClient(t, p)
	ctx := context.Background()
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "counter", "busybox", "sh", "-c",
		`i=0; while true; do echo $i; i=$((i+1)); usleep 20000; done`)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	inspect := func(name string) (bool, int, string) {
		ci, err := c.ContainerInspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return ci.State.Running, ci.State.Pid, ci.ID
	}
	_, pid, id := inspect("counter")
	_, apid, aid := inspect("always")

	// The engine's processes set their OOM scores; containers keep the
	// default. Some machines refuse any negative score even to root (the
	// write fails): there the QEMU guests' smoke test is the check.
	if exec.Command("sh", "-c", "echo -1 >/proc/self/oom_score_adj").Run() != nil {
		t.Log("this machine refuses negative OOM scores; the QEMU smoke test checks them")
	} else {
		if got := oomScoreAdj(t, d.cmd.Process.Pid); got != "-500" {
			t.Errorf("daemon oom_score_adj %s, want -500", got)
		}
		if got := oomScoreAdj(t, monitorPID(p)); got != "-999" {
			t.Errorf("monitor oom_score_adj %s, want -999", got)
		}
	}
	if got := oomScoreAdj(t, pid); got != "0" {
		t.Errorf("container oom_score_adj %s, want 0", got)
	}

	old := killMonitor(t, p)
	killed := time.Now()
	// From now on the engine must never say these have ended, and within
	// 2 s a new monitor follows them again.
	for time.Since(killed) < 2*time.Second {
		for _, name := range []string{"counter", "always"} {
			if running, _, cid := inspect(name); !running && len(cgroupProcs(p, cid)) > 0 {
				t.Fatalf("%s reported ended while its cgroup holds %v", name, cgroupProcs(p, cid))
			}
		}
		if n := monitorPID(p); n != old && n > 0 && syscall.Kill(n, 0) == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	newMon := monitorPID(p)
	if newMon == old || syscall.Kill(newMon, 0) != nil {
		t.Fatalf("no new monitor within 2 s of the old one's death (pid file says %d)", newMon)
	}
	t.Logf("monitor %d replaced by %d after %v", old, newMon, time.Since(killed).Round(time.Millisecond))
	for _, x := range []struct {
		name, id string
		pid      int
	}{{"counter", id, pid}, {"always", aid, apid}} {
		running, npid, _ := inspect(x.name)
		if !running || npid != x.pid {
			t.Errorf("%s after the monitor's loss: running %v, pid %d (was %d)", x.name, running, npid, x.pid)
		}
		if procs := cgroupProcs(p, x.id); len(procs) == 0 {
			t.Errorf("%s: its cgroup is empty", x.name)
		}
	}
	// Everything works on it again: exec, logs without a gap, stats, stop.
	if r := run(t, env, "docker", "exec", "counter", "echo", "back"); r.stdout != "back\n" {
		t.Errorf("exec after the monitor's loss: %q %q", r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "stats", "--no-stream", "--format", "{{.Name}}", "counter"); r.code != 0 {
		t.Errorf("stats after the monitor's loss: %q", r.stderr)
	}
	// Some output through the new monitor.
	logLines := func() int { return len(strings.Fields(run(t, env, "docker", "logs", "counter").stdout)) }
	n0 := logLines()
	eventually(t, 20*time.Second, "counter's output through the new monitor", func() bool { return logLines() > n0+2 })
	r := run(t, env, "docker", "stop", "-t", "1", "counter")
	if r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	r = run(t, env, "docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", "counter")
	if !strings.HasPrefix(r.stdout, "exited 255 exit status unknown") {
		t.Errorf("counter after stop: %q (its status went with the monitor that started it)", r.stdout)
	}
	lines := strings.Fields(run(t, env, "docker", "logs", "counter").stdout)
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("log line %d is %q: a gap across the monitor's loss", i, l)
		}
	}
	t.Logf("%d log lines without a gap across the monitor's SIGKILL", len(lines))

	// The restart policy holds: "always" comes back once stopped from
	// inside (its exit status is unknown, so it counts as a failure).
	syscall.Kill(apid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		running, npid, _ := inspect("always")
		if running && npid != apid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("always was not restarted after its adopted run ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(cgroupProcs(p, aid)); n != 1 {
		t.Errorf("always runs %d processes, want 1", n)
	}
	// A container started by the new monitor has its exact status again.
	r = run(t, env, "docker", "run", "--network", "none", "busybox", "sh", "-c", "exit 7")
	if r.code != 7 {
		t.Errorf("run on the new monitor: exit %d, want 7", r.code)
	}
	_ = rand.IntN
}

// rootProcs counts a cgroup's processes whose parent is outside it: one
// per run of the container. Two would be the container running twice.
// Only the image's programs count: the engine's own processes that set a
// container up (libcontainer's init stages) are not runs of it.
func rootProcs(procs []int) int {
	in := map[int]bool{}
	for _, p := range procs {
		in[p] = true
	}
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); !strings.HasSuffix(exe, "/busybox") {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			if ppid, _ := strconv.Atoi(f[1]); !in[ppid] {
				n++
			}
		}
	}
	return n
}

// vmRSS is a process's resident memory in KiB.
func vmRSS(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

// Fifty trials, each killing the monitor at a random moment while
// containers of every restart policy start, run, log and exit. After
// each: the engine's view equals the cgroups' processes, no container
// runs twice, the restart policies held, and two long-running containers
// are still the same processes.
func TestE2EMonitorFaults(t *testing.T) {
	trials := 50
	if n, err := strconv.Atoi(os.Getenv("MONITOR_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	p, d, env := withBusybox(t)
	dumpMonitorLog(t, p)
	c := apiClient(t, p)
	ctx := context.Background()
	type view struct {
		status  string
		running bool
		pid     int
		started string
		restart int
		id      string
	}
	inspect := func(name string) view {
		ci, err := c.ContainerInspect(ctx, name)
		if err != nil {
			t.Fatalf("inspect %s: %v", name, err)
		}
		return view{string(ci.State.Status), ci.State.Running, ci.State.Pid, ci.State.StartedAt, ci.RestartCount, ci.ID}
	}
	docker := dockerOK(t, env)
	docker("run", "-d", "--network", "none", "--name", "steady", "--restart", "unless-stopped", "busybox", "sleep", "100000")
	docker("run", "-d", "--network", "none", "--name", "counter", "busybox", "sh", "-c",
		`i=0; while true; do echo $i; i=$((i+1)); usleep 10000; done`)
	steady, counter := inspect("steady"), inspect("counter")
	rssBefore := vmRSS(d.cmd.Process.Pid)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 10))
	var replaceTimes []time.Duration
	for trial := range trials {
		// Containers that start, log and end during the trial, one per
		// restart policy.
		ms := func() string { return strconv.Itoa(100000 + rng.IntN(400000)) }
		names := map[string]string{
			"always":         "sh -c 'echo a; usleep " + ms() + "; exit 1'",
			"on-failure:5":   "sh -c 'echo f; usleep " + ms() + "; exit 2'",
			"no":             "sh -c 'echo n; usleep " + ms() + "; exit 0'",
			"unless-stopped": "sh -c 'echo u; usleep " + ms() + "; exit 0'",
		}
		var ids []string
		kill := time.Duration(rng.IntN(800)) * time.Millisecond
		begin := time.Now()
		killed := false
		var old int
		for policy, cmd := range names {
			name := fmt.Sprintf("t%d-%s", trial, strings.Split(policy, ":")[0])
			ids = append(ids, docker("run", "-d", "--network", "none", "--name", name, "--restart", policy, "busybox", "sh", "-c", cmd))
			if !killed && time.Since(begin) >= kill {
				old, killed = killMonitor(t, p), true
			}
		}
		if !killed {
			// Part of the scenario: the monitor dies at the trial's random moment.
			time.Sleep(kill - time.Since(begin))
			old = killMonitor(t, p)
		}
		killedAt := time.Now()
		// For two seconds: the long-running ones are never reported
		// ended, nothing reported ended has a process, nothing runs twice.
		replaced := time.Duration(0)
		for time.Since(killedAt) < 2*time.Second {
			if n := monitorPID(p); replaced == 0 && n != old && n > 0 && syscall.Kill(n, 0) == nil {
				replaced = time.Since(killedAt)
			}
			for _, x := range []view{steady, counter} {
				v := inspect(x.id)
				procs := cgroupProcs(p, x.id)
				if !v.running || v.pid != x.pid || !slicesContains(procs, x.pid) {
					t.Fatalf("trial %d: %s is %s (pid %d, was %d), its cgroup holds %v", trial, x.id[:12], v.status, v.pid, x.pid, procs)
				}
			}
			for _, id := range ids {
				v1 := inspect(id)
				procs := cgroupProcs(p, id)
				v2 := inspect(id)
				if n := rootProcs(procs); n > 1 {
					t.Fatalf("trial %d: %s runs %d times (%v)", trial, id[:12], n, procs)
				}
				if v1.status == "exited" && v2.status == "exited" && v1.started == v2.started && len(procs) > 0 {
					t.Fatalf("trial %d: %s reported exited while its cgroup holds %v", trial, id[:12], procs)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if replaced == 0 {
			t.Fatalf("trial %d: no new monitor within 2 s", trial)
		}
		replaceTimes = append(replaceTimes, replaced)
		// The restart policies held: "no" never restarts, on-failure at
		// most its count, "always" has come back at least once.
		for i, policy := range []string{"always", "on-failure:5", "no", "unless-stopped"} {
			_ = i
			name := fmt.Sprintf("t%d-%s", trial, strings.Split(policy, ":")[0])
			v := inspect(name)
			switch policy {
			case "no":
				if v.restart != 0 {
					t.Errorf("trial %d: %s restarted %d times", trial, name, v.restart)
				}
			case "on-failure:5":
				if v.restart > 5 {
					t.Errorf("trial %d: %s restarted %d times", trial, name, v.restart)
				}
			case "always":
				if v.restart < 1 {
					t.Errorf("trial %d: %s never restarted (%s)", trial, name, v.status)
				}
			}
		}
		// Removed, nothing of them is left running.
		args := append([]string{"rm", "-f"}, ids...)
		docker(args...)
		for _, id := range ids {
			if procs := cgroupProcs(p, id); len(procs) > 0 {
				t.Fatalf("trial %d: %s removed, its cgroup holds %v", trial, id[:12], procs)
			}
		}
	}
	// The two long-running ones are the same processes after every loss,
	// and the counter's log went on in order.
	for _, x := range []view{steady, counter} {
		if v := inspect(x.id); !v.running || v.pid != x.pid {
			t.Errorf("%s after %d monitor losses: %s, pid %d (was %d)", x.id[:12], trials, v.status, v.pid, x.pid)
		}
	}
	lines := strings.Fields(run(t, env, "docker", "logs", "counter").stdout)
	gaps, prev := 0, -1
	for _, l := range lines {
		n, err := strconv.Atoi(l)
		if err != nil || n <= prev {
			t.Fatalf("counter's log is out of order or repeats: %d after %d", n, prev)
		}
		if n != prev+1 {
			gaps++
		}
		prev = n
	}
	slices := replaceTimes
	var worst time.Duration
	for _, r := range slices {
		worst = max(worst, r)
	}
	rssAfter := vmRSS(d.cmd.Process.Pid)
	t.Logf("%d trials: monitor replaced after at most %v; counter logged %d lines, %d gap(s); daemon RSS %d -> %d KiB",
		trials, worst.Round(time.Millisecond), len(lines), gaps, rssBefore, rssAfter)
	if rssAfter > rssBefore+32<<10 {
		t.Errorf("the daemon grew by %d KiB over %d monitor losses", rssAfter-rssBefore, trials)
	}
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// The engine binary is replaced (an update) while containers run: the
// next daemon moves the monitor to the new file in place. Same monitor
// PID, same container processes, their exact exit statuses, no log line
// lost, a terminal's output still followed.
func TestE2EMonitorUpgrade(t *testing.T) {
	src := engineBin(t)
	p := newPaths(t)
	dumpMonitorLog(t, p)
	bin := filepath.Join(p.dir, "balena-engine")
	install := func() {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		// As a package manager does: a new file renamed over the old.
		if err := os.WriteFile(bin+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".new", bin); err != nil {
			t.Fatal(err)
		}
	}
	install()
	d := startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	loadBusybox(t, p, bin)
	c := apiClient(t, p)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "counter", "busybox", "sh", "-c",
		`i=0; while true; do echo $i; i=$((i+1)); usleep 10000; done`)
	run(t, env, "docker", "run", "-d", "-t", "--network", "none", "--name", "tty", "busybox", "sh", "-c",
		`while true; do echo tick; usleep 50000; done`)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "ends", "busybox", "sh", "-c", "sleep 3; exit 7")
	pids := map[string]int{}
	for _, n := range []string{"counter", "tty", "ends"} {
		ci, err := c.ContainerInspect(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		pids[n] = ci.State.Pid
	}
	mon := monitorPID(p)
	exeIno := func(path string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	// Output before the update.
	eventually(t, 20*time.Second, "output before the update", func() bool {
		return len(strings.Fields(run(t, env, "docker", "logs", "counter").stdout)) > 2 &&
			strings.Contains(run(t, env, "docker", "logs", "tty").stdout, "tick")
	})
	d.stop(t)
	install()
	if exeIno(fmt.Sprintf("/proc/%d/exe", mon)) == exeIno(bin) {
		t.Fatal("the test did not replace the binary")
	}
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	if n := monitorPID(p); n != mon {
		t.Fatalf("monitor PID %d after the upgrade, was %d", n, mon)
	}
	if exeIno(fmt.Sprintf("/proc/%d/exe", mon)) != exeIno(bin) {
		t.Fatal("the monitor still runs the old binary")
	}
	for n, pid := range pids {
		ci, err := c.ContainerInspect(context.Background(), n)
		if err != nil || !ci.State.Running || ci.State.Pid != pid {
			t.Fatalf("%s after the upgrade: %v %+v (pid was %d)", n, err, ci.State, pid)
		}
	}
	// The terminal is still followed: new output appears in its log.
	before := strings.Count(run(t, env, "docker", "logs", "tty").stdout, "tick")
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(run(t, env, "docker", "logs", "tty").stdout, "tick") <= before+2 {
		if time.Now().After(deadline) {
			t.Fatal("no terminal output after the upgrade")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Exact exit statuses, as the same process is still their parent.
	r := run(t, env, "docker", "wait", "ends")
	if strings.TrimSpace(r.stdout) != "7" {
		t.Errorf("wait for a container that ended after the upgrade: %q %q", r.stdout, r.stderr)
	}
	run(t, env, "docker", "stop", "-t", "1", "counter")
	r = run(t, env, "docker", "inspect", "--format", "{{.State.ExitCode}} {{.State.Error}}", "counter")
	if strings.TrimSpace(r.stdout) != "137" {
		t.Errorf("counter stopped after the upgrade: %q", r.stdout)
	}
	lines := strings.Fields(run(t, env, "docker", "logs", "counter").stdout)
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("log line %d is %q: a gap across the upgrade", i, l)
		}
	}
	t.Logf("monitor %d moved to the new binary; %d counter lines without a gap", mon, len(lines))
	if r := run(t, env, "docker", "exec", "tty", "echo", "exec-ok"); strings.TrimSpace(r.stdout) != "exec-ok" {
		t.Errorf("exec after the upgrade: %q %q", r.stdout, r.stderr)
	}
}

// After each operation the engine's view and the kernel's agree: a
// container that is not running has no process, no cgroup and no mounted
// root; one removed has nothing at all; a docker restart of a --rm
// container keeps it; and the daemon and monitor stopped leave only what
// running containers hold.
func TestE2ENoLeftovers(t *testing.T) {
	p, d, env := withBusybox(t)
	dumpMonitorLog(t, p)
	docker := dockerOK(t, env)
	mounted := func(id string) bool {
		for _, m := range mounts.Under(p.dataRoot) {
			if strings.Contains(m, id) {
				return true
			}
		}
		return false
	}
	cgroupExists := func(id string) bool {
		for _, dir := range p.cgroupDirs(id) {
			if _, err := os.Stat(dir); err == nil {
				return true
			}
		}
		return false
	}
	check := func(what string, running, gone []string, stopped ...string) {
		t.Helper()
		for _, id := range running {
			if !mounted(id) || !cgroupExists(id) || len(cgroupProcs(p, id)) == 0 {
				t.Errorf("%s: running %s: mounted %v, cgroup %v, processes %v", what, id[:12], mounted(id), cgroupExists(id), cgroupProcs(p, id))
			}
		}
		for _, id := range append(gone, stopped...) {
			if mounted(id) || cgroupExists(id) {
				t.Errorf("%s: %s is not running but mounted %v, cgroup %v", what, id[:12], mounted(id), cgroupExists(id))
			}
		}
		for _, id := range gone {
			if _, err := os.Stat(filepath.Join(p.dataRoot, "containers", id)); err == nil {
				t.Errorf("%s: removed %s has its directory", what, id[:12])
			}
		}
	}
	keep := docker("run", "-d", "--network", "none", "busybox", "sleep", "1000")
	stopped := docker("run", "-d", "--network", "none", "busybox", "sleep", "1000")
	docker("stop", "-t", "0", stopped)
	removed := docker("run", "-d", "--network", "none", "busybox", "sleep", "1000")
	docker("rm", "-f", removed)
	ended := docker("run", "-d", "--network", "none", "busybox", "true")
	docker("wait", ended)
	rm := docker("run", "-d", "--rm", "--network", "none", "busybox", "sleep", "1000")
	docker("restart", "-t", "0", rm)
	if got := docker("inspect", "--format", "{{.State.Running}}", rm); got != "true" {
		t.Errorf("a --rm container after docker restart: running %s", got)
	}
	docker("exec", keep, "true")
	check("after the operations", []string{keep, rm}, []string{removed}, stopped, ended)

	docker("stop", "-t", "0", rm) // --rm: removed when it ends
	deadline := time.Now().Add(10 * time.Second)
	for run(t, env, "docker", "inspect", rm).code == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	check("after stopping the --rm one", []string{keep}, []string{removed, rm}, stopped, ended)

	// The daemon stopped, then the monitor: only the running container
	// holds its mount and cgroup.
	d.stop(t)
	mon := monitorPID(p)
	syscall.Kill(mon, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(mon, 0) == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	check("daemon and monitor stopped", []string{keep}, []string{removed, rm}, stopped, ended)
}

// A monitor killed half-way through a start, after the container's
// process was made and before its record named it, leaves the next one a
// record without a PID. Where libcontainer knows the container running,
// it is taken back (the same process goes on); where the runtime had kept
// nothing yet (its init already in the cgroup), it is ended: its cgroup
// emptied before the engine says it has exited. Here the daemon is down
// while the records are set back to that moment, as a monitor killed
// there leaves them.
func TestE2EMonitorLostMidStart(t *testing.T) {
	bin := engineBin(t)
	p, d, env := withBusybox(t)
	dumpMonitorLog(t, p)
	c := apiClient(t, p)
	ctx := context.Background()
	ids := map[string]string{}
	pids := map[string]int{}
	for _, n := range []string{"taken", "ended"} {
		run(t, env, "docker", "run", "-d", "--network", "none", "--name", n, "busybox", "sleep", "100000")
		ci, err := c.ContainerInspect(ctx, n)
		if err != nil || !ci.State.Running {
			t.Fatalf("%s: %v %+v", n, err, ci.State)
		}
		ids[n], pids[n] = ci.ID, ci.State.Pid
	}
	d.stop(t)
	killMonitor(t, p)
	monRoot := filepath.Join(p.execRoot, "monitor")
	for _, n := range []string{"taken", "ended"} {
		path := filepath.Join(monRoot, "ctr", ids[n], "record.json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		rec["Pid"], rec["PidStart"] = 0, 0
		if b, err = json.Marshal(rec); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(monRoot, "state", ids["ended"])); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)

	ci, err := c.ContainerInspect(ctx, "taken")
	if err != nil || !ci.State.Running || ci.State.Pid != pids["taken"] {
		t.Fatalf("taken: %v %+v (pid was %d)", err, ci.State, pids["taken"])
	}
	if procs := cgroupProcs(p, ids["taken"]); !slicesContains(procs, pids["taken"]) {
		t.Fatalf("taken: its cgroup holds %v, not %d", procs, pids["taken"])
	}
	var ended string
	eventually(t, 20*time.Second, "the half-started container ended", func() bool {
		ci, err := c.ContainerInspect(ctx, "ended")
		if err != nil {
			t.Fatal(err)
		}
		ended = fmt.Sprintf("%s %d", ci.State.Status, ci.State.ExitCode)
		return !ci.State.Running
	})
	if ended != "exited 255" {
		t.Errorf("ended: %s, want exited 255", ended)
	}
	if procs := cgroupProcs(p, ids["ended"]); len(procs) > 0 {
		t.Fatalf("ended reported %s while its cgroup holds %v", ended, procs)
	}
	if err := syscall.Kill(pids["ended"], 0); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pids["ended"])); !strings.Contains(string(b), ") Z ") {
			t.Fatalf("ended's process %d still runs", pids["ended"])
		}
	}
	// The one taken back is still followed: a stop reaches it and its
	// end is recorded (its status is unknown, 255: it is not the new
	// monitor's child).
	run(t, env, "docker", "stop", "-t", "1", "taken")
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.Status}}", "taken"); strings.TrimSpace(r.stdout) != "exited" {
		t.Errorf("taken after stop: %q %q", r.stdout, r.stderr)
	}
	if procs := cgroupProcs(p, ids["taken"]); len(procs) > 0 {
		t.Errorf("taken stopped while its cgroup holds %v", procs)
	}
}
