// Command ctrbench measures the container side of balena-engine against
// Debian's Docker (dockerd 20.10 with containerd and its shims) in the same
// run: time from starting the daemon to its API answering (idle, and with
// 20 containers to restore), the memory of the idle engine, "run --rm
// busybox true" latency, and the memory each running container adds
// (RSS and PSS of the engine's own processes: daemon, monitor or
// containerd and shims; the containers' processes are not counted).
//
//	go run ./src/internal/cmd/ctrbench -engine bin/balena-engine -out docs/results/container-bench.md
//
// Run as root. make bench runs it. Containers use --network none on both
// engines (the Docker daemon runs with --bridge=none so as not to change
// the host's network).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/internal/mounts"
	"github.com/balena-os/balena-engine/src/internal/procmem"
	"github.com/balena-os/balena-engine/src/internal/testimage"
)

func main() {
	engine := flag.String("engine", "bin/balena-engine", "the balena-engine binary")
	out := flag.String("out", "", "write the results (markdown) to this file too")
	runs := flag.Int("runs", 20, "run --rm repetitions")
	flag.Parse()
	if err := run(*engine, *out, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "ctrbench:", err)
		os.Exit(1)
	}
}

type engineRun struct {
	name                string
	work, sock, execDir string
	cmd                 *exec.Cmd
	args                []string
	comms               map[string]bool // the engine's process names
}

type results struct {
	startToAPI, startToAPIRestore time.Duration
	idleRSS, idlePSS              int64 // before any container ran
	baseRSS, basePSS              int64 // after the run --rm latency runs: the base of the per-container figures
	coldRSS, coldPSS              int64 // after one run only: the base of the cold figures
	idleAnon, baseAnon            int64 // the anonymous part (heaps, stacks) of idleRSS and baseRSS
	runRm                         time.Duration
	perCtrRSS, perCtrPSS          map[int]int64
	coldCtrRSS, coldCtrPSS        map[int]int64
}

func run(engine, out string, runs int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root")
	}
	engine, _ = filepath.Abs(engine)
	work, err := os.MkdirTemp("/var/tmp", "ctrbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	archive := filepath.Join(work, "busybox.tar")
	if err := testimage.WriteHostBusybox(archive, "busybox:latest"); err != nil {
		return err
	}

	all := map[string]*results{}
	for _, name := range []string{"balena-engine", "docker"} {
		e := &engineRun{name: name, work: filepath.Join(work, name)}
		os.MkdirAll(e.work, 0o755)
		e.sock = filepath.Join(e.work, "api.sock")
		e.execDir = filepath.Join(e.work, "exec")
		if name == "docker" {
			e.args = []string{"dockerd", "--data-root", filepath.Join(e.work, "data"), "--exec-root", e.execDir,
				"-H", "unix://" + e.sock, "--pidfile", filepath.Join(e.work, "pid"), "--bridge=none",
				"--iptables=false", "--ip6tables=false", "--live-restore"}
			e.comms = map[string]bool{"dockerd": true, "containerd": true, "containerd-shim": true, "containerd-shim-runc-v2": true}
		} else {
			os.WriteFile(filepath.Join(e.work, "daemon.json"), []byte("{}"), 0o644)
			e.args = []string{engine, "daemon", "--data-root", filepath.Join(e.work, "data"), "--exec-root", e.execDir,
				"-H", "unix://" + e.sock, "--pidfile", filepath.Join(e.work, "pid"), "--config-file", filepath.Join(e.work, "daemon.json"),
				"--bridge=none", "--iptables=false", "--ip-forward=false"} // its runs use --network none: the host's network is left alone
			e.comms = map[string]bool{"balena-engine": true}
		}
		r, err := measure(e, archive, runs)
		cleanup(e)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		all[name] = r
	}
	rep := report(all, engine, runs)
	fmt.Print(rep)
	if out != "" {
		return os.WriteFile(out, []byte(rep), 0o644)
	}
	return nil
}

func (e *engineRun) start() (time.Duration, error) {
	os.Remove(e.sock)
	t0 := time.Now()
	e.cmd = exec.Command(e.args[0], e.args[1:]...)
	logf, _ := os.OpenFile(filepath.Join(e.work, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		return 0, err
	}
	c, err := client.New("unix://" + e.sock)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return time.Since(t0), nil
		}
		if time.Since(t0) > 60*time.Second {
			return 0, fmt.Errorf("no answer: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *engineRun) stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		e.cmd.Process.Kill()
		<-done
	}
	e.cmd = nil
}

func (e *engineRun) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+e.sock, "DOCKER_CONFIG="+e.work)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// engineMemory sums RSS, PSS and anonymous memory over the engine's own
// processes. The rest of RSS is file pages, mostly the executables' own:
// how much of a binary is resident depends on the kernel (large page-cache
// folios map whole runs of it), so the anonymous part is reported apart.
func (e *engineRun) engineMemory() (rss, pss, anon int64) {
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		if _, err := strconv.Atoi(ent.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + ent.Name() + "/comm")
		if err != nil || !e.comms[strings.TrimSpace(string(comm))] {
			continue
		}
		// Only this run's: its command line names this run's directory,
		// or it is a shim whose parent chain does (shims name their
		// namespace and socket, not the data root).
		cmdline, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if !strings.Contains(string(cmdline), e.work) && !strings.HasPrefix(strings.TrimSpace(string(comm)), "containerd-shim") {
			continue
		}
		pid, _ := strconv.Atoi(ent.Name())
		r, err := procmem.Read(pid)
		if err != nil {
			continue
		}
		rss, pss, anon = rss+r.RSS, pss+r.PSS, anon+r.Anon
	}
	return rss, pss, anon
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func measure(e *engineRun, archive string, runs int) (*results, error) {
	r := &results{perCtrRSS: map[int]int64{}, perCtrPSS: map[int]int64{}, coldCtrRSS: map[int]int64{}, coldCtrPSS: map[int]int64{}}
	var starts []time.Duration
	for i := 0; i < 5; i++ {
		d, err := e.start()
		if err != nil {
			return nil, err
		}
		starts = append(starts, d)
		if i < 4 {
			e.stop()
		}
	}
	r.startToAPI = median(starts)
	if _, err := e.docker("load", "-i", archive); err != nil {
		return nil, err
	}
	// The idle engine, before any container (balena-engine starts its
	// monitor with the first container), then after one ran and went
	// (the cold base) and after the latency runs (the warm base).
	time.Sleep(2 * time.Second)
	r.idleRSS, r.idlePSS, r.idleAnon = e.engineMemory()
	if _, err := e.docker("run", "--rm", "--network", "none", "busybox", "true"); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	r.coldRSS, r.coldPSS, _ = e.engineMemory()
	var lat []time.Duration
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		if _, err := e.docker("run", "--rm", "--network", "none", "busybox", "true"); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	r.runRm = median(lat)
	// The base of the per-container figures: the idle engine after those
	// runs, so that the heap they grew is not counted against the first
	// container that stays.
	time.Sleep(2 * time.Second)
	r.baseRSS, r.basePSS, r.baseAnon = e.engineMemory()
	running := 0
	for _, n := range []int{1, 10, 50} {
		for ; running < n; running++ {
			if _, err := e.docker("run", "-d", "--network", "none", "--name", fmt.Sprintf("c%d", running), "busybox", "sleep", "100000"); err != nil {
				return nil, err
			}
		}
		time.Sleep(2 * time.Second)
		rss, pss, _ := e.engineMemory()
		r.perCtrRSS[n] = (rss - r.baseRSS) / int64(n)
		r.perCtrPSS[n] = (pss - r.basePSS) / int64(n)
		r.coldCtrRSS[n] = (rss - r.coldRSS) / int64(n)
		r.coldCtrPSS[n] = (pss - r.coldPSS) / int64(n)
		fmt.Printf("%s: %d containers: engine RSS %.1f MiB, PSS %.1f MiB\n", e.name, n, float64(rss)/(1<<20), float64(pss)/(1<<20))
	}
	// Restore: stop the daemon with 50 running (live restore keeps them),
	// keep 20, and time the start again.
	for i := 20; i < 50; i++ {
		e.docker("rm", "-f", fmt.Sprintf("c%d", i))
	}
	e.stop()
	d, err := e.start()
	if err != nil {
		return nil, err
	}
	r.startToAPIRestore = d
	out, _ := e.docker("ps", "-q")
	if n := len(strings.Fields(out)); n != 20 {
		return nil, fmt.Errorf("%d containers running after the restart, want 20", n)
	}
	return r, nil
}

func cleanup(e *engineRun) {
	if e.cmd != nil {
		out, _ := e.docker("ps", "-aq")
		for _, id := range strings.Fields(out) {
			e.docker("rm", "-f", id)
		}
	}
	e.stop()
	if b, err := os.ReadFile(filepath.Join(e.execDir, "monitor", "monitor.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	mounts.DetachUnder(e.work)
}

func mib(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func report(all map[string]*results, engine string, runs int) string {
	var b strings.Builder
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	dockerd, _ := exec.Command("dockerd", "--version").Output()
	ours, _ := exec.Command(engine, "--version").Output()
	fmt.Fprintf(&b, "# Container benchmark\n\nMade by `make bench` (`go run ./src/internal/cmd/ctrbench %s`) on %s.\n\n",
		strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %d cores, kernel %s\n", nproc(), strings.TrimSpace(string(kernel)))
	fmt.Fprintf(&b, "- engines: %s; %s (Debian's docker.io with containerd and runc shims, `--live-restore`, `--bridge=none`)\n",
		strings.TrimSpace(string(ours)), strings.TrimSpace(string(dockerd)))
	b.WriteString("- client: the docker CLI for both; containers run with `--network none` on both; the project's busybox image\n")
	b.WriteString("- memory: RSS, PSS and the anonymous part of RSS (`/proc/PID/smaps_rollup`; the rest is file pages, mostly the executables themselves, whose resident share depends on the kernel) summed over the engine's own processes (balena-engine: daemon and monitor, which starts with the first container; Docker: dockerd, containerd, shims), not the containers' processes; per container = (with N running - idle after the run --rm runs) / N; \"from one run only\" = (with N running - idle after a single run) / N, which also counts the heap the latency runs grew: the first is the marginal cost of a container on a warm engine, the second an upper bound for a cold one\n")
	fmt.Fprintf(&b, "- start to API: from exec of the daemon to the first answered `/_ping`, median of 5 (idle); and once with 20 containers running to take back (live restore)\n- run --rm: median of %d `docker run --rm --network none busybox true`\n\n", runs)
	b.WriteString("| figure | balena-engine | Docker 20.10 | Docker / balena-engine |\n|---|---:|---:|---:|\n")
	o, d := all["balena-engine"], all["docker"]
	row := func(name, a, c string, ratio float64) {
		fmt.Fprintf(&b, "| %s | %s | %s | %.2fx |\n", name, a, c, ratio)
	}
	ms := func(t time.Duration) string { return fmt.Sprintf("%.1f ms", float64(t.Microseconds())/1000) }
	row("daemon start to API answering", ms(o.startToAPI), ms(d.startToAPI), float64(d.startToAPI)/float64(o.startToAPI))
	row("start to API with 20 containers to restore", ms(o.startToAPIRestore), ms(d.startToAPIRestore), float64(d.startToAPIRestore)/float64(o.startToAPIRestore))
	row("idle engine RSS, no container run yet", mib(o.idleRSS), mib(d.idleRSS), float64(d.idleRSS)/float64(o.idleRSS))
	row("idle engine PSS, no container run yet", mib(o.idlePSS), mib(d.idlePSS), float64(d.idlePSS)/float64(o.idlePSS))
	row("idle engine RSS after containers ran", mib(o.baseRSS), mib(d.baseRSS), float64(d.baseRSS)/float64(o.baseRSS))
	row("idle engine PSS after containers ran", mib(o.basePSS), mib(d.basePSS), float64(d.basePSS)/float64(o.basePSS))
	row("idle engine anonymous memory, no container run yet", mib(o.idleAnon), mib(d.idleAnon), float64(d.idleAnon)/float64(o.idleAnon))
	row("idle engine anonymous memory after containers ran", mib(o.baseAnon), mib(d.baseAnon), float64(d.baseAnon)/float64(o.baseAnon))
	row("run --rm busybox true", ms(o.runRm), ms(d.runRm), float64(d.runRm)/float64(o.runRm))
	for _, n := range []int{1, 10, 50} {
		row(fmt.Sprintf("RSS per running container (%d running)", n), mib(o.perCtrRSS[n]), mib(d.perCtrRSS[n]), float64(d.perCtrRSS[n])/float64(max(o.perCtrRSS[n], 1)))
		row(fmt.Sprintf("PSS per running container (%d running)", n), mib(o.perCtrPSS[n]), mib(d.perCtrPSS[n]), float64(d.perCtrPSS[n])/float64(max(o.perCtrPSS[n], 1)))
	}
	for _, n := range []int{1, 10, 50} {
		row(fmt.Sprintf("RSS per running container (%d running), from one run only", n), mib(o.coldCtrRSS[n]), mib(d.coldCtrRSS[n]), float64(d.coldCtrRSS[n])/float64(max(o.coldCtrRSS[n], 1)))
		row(fmt.Sprintf("PSS per running container (%d running), from one run only", n), mib(o.coldCtrPSS[n]), mib(d.coldCtrPSS[n]), float64(d.coldCtrPSS[n])/float64(max(o.coldCtrPSS[n], 1)))
	}
	return b.String()
}

func nproc() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
