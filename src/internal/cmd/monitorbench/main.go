// Command monitorbench measures the two answers to the container
// monitor's loss (docs/containers.md): taking the running containers back
// (what the engine does) against ending and restarting them (what it
// could do instead), with N containers running.
//
//	go run ./src/internal/cmd/monitorbench -engine bin/balena-engine -out docs/results/monitor-loss.md
//
// Taken back: the time from SIGKILL of the monitor to a new monitor
// answering for every container (its processes listed through the
// monitor, as docker top does), and how long each container stopped
// running (not at all: the same PIDs run on). Restarted instead: the time
// to end and start every container again (POST /containers/{id}/restart
// with t=0, which is the work the alternative does), and each container's
// time without a running process. Run as root; make bench runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/internal/mounts"
	"github.com/balena-os/balena-engine/src/internal/testimage"
)

func main() {
	engine := flag.String("engine", "bin/balena-engine", "the balena-engine binary")
	out := flag.String("out", "", "write the results (markdown) to this file too")
	n := flag.Int("n", 20, "running containers")
	runs := flag.Int("runs", 5, "repetitions of each measurement")
	flag.Parse()
	if err := run(*engine, *out, *n, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "monitorbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	work, sock, execRoot, cgroupParent string
	cmd                                *exec.Cmd
	c                                  *client.Client
	ids                                []string
}

func run(engine, out string, n, runs int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root")
	}
	engine, _ = filepath.Abs(engine)
	work, err := os.MkdirTemp("/var/tmp", "monitorbench-")
	if err != nil {
		return err
	}
	b := &bench{work: work, sock: filepath.Join(work, "api.sock"), execRoot: filepath.Join(work, "exec"),
		cgroupParent: "/" + filepath.Base(work)}
	defer b.cleanup()
	os.WriteFile(filepath.Join(work, "daemon.json"), []byte("{}"), 0o644)
	b.cmd = exec.Command(engine, "daemon", "--data-root", filepath.Join(work, "data"), "--exec-root", b.execRoot,
		"-H", "unix://"+b.sock, "--pidfile", filepath.Join(work, "pid"), "--config-file", filepath.Join(work, "daemon.json"),
		"--cgroup-parent", b.cgroupParent, "--bridge=none", "--iptables=false", "--ip-forward=false") // --network none runs: leave the host's network alone
	logf, _ := os.Create(filepath.Join(work, "daemon.log"))
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		return err
	}
	if b.c, err = client.New("unix://" + b.sock); err != nil {
		return err
	}
	ctx := context.Background()
	if err := until(30*time.Second, func() bool { _, err := b.c.Ping(ctx); return err == nil }); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	archive := filepath.Join(work, "busybox.tar")
	if err := testimage.WriteHostBusybox(archive, "busybox:latest"); err != nil {
		return err
	}
	if err := b.docker("load", "-i", archive); err != nil {
		return err
	}
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		if err := b.docker("run", "-d", "--network", "none", "--name", name, "--restart", "always", "busybox", "sleep", "100000"); err != nil {
			return err
		}
		b.ids = append(b.ids, name)
	}

	var adopt, restart []time.Duration
	var downRestart []time.Duration
	for range runs {
		before := b.pids()
		d, err := b.killMonitor()
		if err != nil {
			return err
		}
		after := b.pids()
		for i := range before {
			if before[i] != after[i] {
				return fmt.Errorf("container %s changed PID across the monitor's loss: %d, %d", b.ids[i], before[i], after[i])
			}
		}
		adopt = append(adopt, d)

		t0 := time.Now()
		for _, id := range b.ids {
			if err := b.c.ContainerPost(ctx, id, "restart", map[string][]string{"t": {"0"}}); err != nil {
				return err
			}
		}
		restart = append(restart, time.Since(t0))
		// Each container's own gap: its restart alone.
		for _, id := range b.ids[:min(5, len(b.ids))] {
			t1 := time.Now()
			if err := b.c.ContainerPost(ctx, id, "restart", map[string][]string{"t": {"0"}}); err != nil {
				return err
			}
			downRestart = append(downRestart, time.Since(t1))
		}
	}
	rep := report(engine, n, runs, adopt, restart, downRestart)
	fmt.Print(rep)
	if out != "" {
		return os.WriteFile(out, []byte(rep), 0o644)
	}
	return nil
}

func (b *bench) docker(args ...string) error {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+b.sock, "DOCKER_CONFIG="+b.work)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *bench) pids() []int {
	var out []int
	for _, id := range b.ids {
		ci, err := b.c.ContainerInspect(context.Background(), id)
		if err != nil {
			out = append(out, -1)
			continue
		}
		out = append(out, ci.State.Pid)
	}
	return out
}

func (b *bench) monitorPID() int {
	raw, _ := os.ReadFile(filepath.Join(b.execRoot, "monitor", "monitor.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

// killMonitor kills the monitor and returns the time until every
// container's processes are listed again (which only a monitor answers).
func (b *bench) killMonitor() (time.Duration, error) {
	pid := b.monitorPID()
	if pid <= 1 {
		return 0, fmt.Errorf("no monitor")
	}
	t0 := time.Now()
	syscall.Kill(pid, syscall.SIGKILL)
	// The daemon, its parent, reaps it; until then it is a zombie.
	until(10*time.Second, func() bool {
		s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(s), ") Z ")
	})
	for _, id := range b.ids {
		err := until(10*time.Second, func() bool {
			_, err := b.c.ContainerTop(context.Background(), id, "")
			return err == nil
		})
		if err != nil {
			return 0, fmt.Errorf("container %s not answered for after the monitor's loss: %w", id, err)
		}
	}
	return time.Since(t0), nil
}

func until(limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func (b *bench) cleanup() {
	if b.c != nil {
		for _, id := range b.ids {
			b.c.ContainerRemove(context.Background(), id, true, false)
		}
		b.c.Close()
	}
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
		b.cmd.Wait()
	}
	if pid := b.monitorPID(); pid > 1 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts.DetachUnder(b.work)
	os.RemoveAll(b.work)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func report(engine string, n, runs int, adopt, restart, down []time.Duration) string {
	host, _ := os.Hostname()
	var sb strings.Builder
	fmt.Fprintf(&sb, "# The monitor's loss: taken back or restarted\n\n")
	fmt.Fprintf(&sb, "Made by `go run ./src/internal/cmd/monitorbench -engine %s -n %d -runs %d` on %s,\n",
		filepath.Base(engine), n, runs, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&sb, "host %s, %s/%s, %d cores, %s. %d running containers (`sleep`, `--restart always`,\n",
		host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), n)
	fmt.Fprintf(&sb, "`--network none`); medians of %d.\n\n", runs)
	fmt.Fprintf(&sb, "| | taken back (the engine's choice) | ended and restarted (the alternative) |\n|---|---:|---:|\n")
	fmt.Fprintf(&sb, "| from the monitor's SIGKILL to all %d containers followed again | %s | %s (restarting all, t=0) |\n",
		n, ms(median(adopt)), ms(median(restart)))
	fmt.Fprintf(&sb, "| each container's time without its process | 0 (same PIDs) | %s (one restart, t=0), plus the application's own start |\n",
		ms(median(down)))
	fmt.Fprintf(&sb, "| exit status of a container that ends later | unknown (255, said in State.Error) | exact |\n")
	fmt.Fprintf(&sb, "| the application's memory state, open connections | kept | lost |\n")
	return sb.String()
}
