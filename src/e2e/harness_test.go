//go:build e2e

package e2e

// The harness every end-to-end test uses: a daemon's private paths, its
// start and stop, commands run with a bounded time, and the clean-up of
// what a daemon and its containers leave.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/internal/mounts"
	"github.com/balena-os/balena-engine/src/internal/testimage"
)

func engineBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BALENA_ENGINE_BIN")
	if bin == "" {
		t.Fatal("BALENA_ENGINE_BIN is not set (run 'make e2e')")
	}
	return bin
}

// paths is one daemon's private set of locations.
type paths struct {
	dir, sock, dataRoot, execRoot, pidfile, config string
	// cgroupParent is this daemon's own parent of its containers'
	// cgroups, so that what a test finds or kills there is its own.
	cgroupParent string
}

// cgroupDirs are the directories of a container's cgroup: cgroup v2's, or
// v1's in each hierarchy the tests read.
//
// Every hierarchy mounted under /sys/fs/cgroup counts, v1's controllers
// and a hybrid system's "unified" v2 alike: the runtime makes the
// container's cgroup in each.
func (p paths) cgroupDirs(id string) []string {
	out := []string{filepath.Join("/sys/fs/cgroup", p.cgroupParent, id)}
	hierarchies, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hierarchies {
		if h.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", h.Name(), p.cgroupParent, id))
		}
	}
	return out
}

func newPaths(t *testing.T) paths {
	// Unix socket paths are limited to 108 bytes; t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "be-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := paths{
		dir:          dir,
		sock:         filepath.Join(dir, "api.sock"),
		dataRoot:     filepath.Join(dir, "data"),
		execRoot:     filepath.Join(dir, "exec"),
		pidfile:      filepath.Join(dir, "engine.pid"),
		config:       filepath.Join(dir, "daemon.json"),
		cgroupParent: "/" + filepath.Base(dir),
	}
	if err := os.WriteFile(p.config, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The container monitor outlives the daemon by design: stop it, and
	// what containers and mounts are left, when the test ends.
	t.Cleanup(func() { stopMonitor(p) })
	return p
}

func stopMonitor(p paths) {
	b, err := os.ReadFile(filepath.Join(p.execRoot, "monitor", "monitor.pid"))
	if err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	// Container processes were the monitor's children: kill what is left
	// in this daemon's containers' cgroups (only these: other engines may
	// run tests on the same machine).
	ids, _ := os.ReadDir(filepath.Join(p.dataRoot, "containers"))
	for _, id := range ids {
		if !id.IsDir() {
			continue
		}
		for _, dir := range p.cgroupDirs(id.Name()) {
			filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
				if err == nil && info.Name() == "cgroup.procs" {
					if b, err := os.ReadFile(path); err == nil {
						for _, f := range strings.Fields(string(b)) {
							if pid, err := strconv.Atoi(f); err == nil {
								syscall.Kill(pid, syscall.SIGKILL)
							}
						}
					}
				}
				return nil
			})
		}
	}
	// And their cgroups, then the parent's.
	for _, id := range ids {
		for _, dir := range p.cgroupDirs(id.Name()) {
			for i := 0; i < 100; i++ {
				if err := syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
					break
				}
				time.Sleep(10 * time.Millisecond) // killed processes leave the cgroup
			}
		}
	}
	for _, dir := range p.cgroupDirs("") {
		os.Remove(dir)
	}
	mounts.DetachUnder(p.dir)
}

func (p paths) daemonArgs() []string {
	return []string{"daemon", "-H", "unix://" + p.sock, "--data-root", p.dataRoot,
		"--exec-root", p.execRoot, "--pidfile", p.pidfile, "--config-file", p.config, "--cgroup-parent", p.cgroupParent,
		// The host's network is left alone: tests of networking run their
		// daemon in a network namespace of its own (withNetDaemon).
		"--bridge=none", "--iptables=false", "--ip-forward=false"}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a command to completion with a bounded time.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{out.String(), errb.String(), code}
}

// apiClient is an Engine API client of p's daemon, closed when the test
// ends.
func apiClient(t *testing.T, p paths) *client.Client {
	t.Helper()
	c, err := client.New("unix://" + p.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dockerOK returns a docker CLI runner for env that fails the test on a
// non-zero exit and gives the trimmed output.
func dockerOK(t *testing.T, env []string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		r := run(t, env, "docker", args...)
		if r.code != 0 {
			t.Fatalf("docker %v: %d %s", args, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
}

// daemonProc is a running daemon process.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startDaemon starts cmd and waits until sock answers /_ping.
func startDaemon(t *testing.T, cmd *exec.Cmd, sock string) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })
	c, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("daemon exited during start-up: %v\n%s", err, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not answer on %s: %v\n%s", sock, err, d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit error; it kills after a bound.
func (d *daemonProc) stop(t *testing.T) error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		t.Errorf("daemon ignored SIGTERM\n%s", d.stderr)
		return <-d.done
	}
}

func mustNotExist(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists (err %v): a failed or stopped daemon must leave nothing behind", p, err)
		}
	}
}

// withBusybox starts a daemon and loads the busybox test image into it.
func withBusybox(t *testing.T, extra ...string) (paths, *daemonProc, []string) {
	t.Helper()
	return withBusyboxUnder(t, nil, extra...)
}

// withBusyboxUnder is withBusybox with the daemon started under a command
// prefix (for example in a mount namespace of its own).
func withBusyboxUnder(t *testing.T, prefix []string, extra ...string) (paths, *daemonProc, []string) {
	t.Helper()
	bin := engineBin(t)
	p := newPaths(t)
	args := append(append(append([]string{}, prefix...), bin), append(p.daemonArgs(), extra...)...)
	d := startDaemon(t, exec.Command(args[0], args[1:]...), p.sock)
	loadBusybox(t, p, bin)
	return p, d, []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
}

// loadBusybox loads the busybox test image into p's daemon with bin.
func loadBusybox(t *testing.T, p paths, bin string) {
	t.Helper()
	archive := filepath.Join(p.dir, "busybox.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimage.Archive(f, "busybox:latest", busyboxImage(t)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if r := run(t, nil, bin, "-H", "unix://"+p.sock, "load", "-i", archive); r.code != 0 {
		t.Fatalf("load: %s", r.stderr)
	}
}

// runInPty runs the docker CLI on a terminal (script(1) makes one), feeding
// it input line by line, as a person at a terminal would.
func runInPty(t *testing.T, env []string, input []string, args ...string) string {
	t.Helper()
	return runProgramInPty(t, env, input, "docker", args...)
}

// runProgramInPty is runInPty for another client program.
func runProgramInPty(t *testing.T, env []string, input []string, program string, args ...string) string {
	t.Helper()
	ctx := exec.Command("script", "-qec", program+" "+strings.Join(args, " "), "/dev/null")
	ctx.Env = append(os.Environ(), env...)
	stdin, _ := ctx.StdinPipe()
	var out strings.Builder
	ctx.Stdout, ctx.Stderr = &out, &out
	if err := ctx.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, l := range input {
			// A person's pace, part of the scenario: nothing outside
			// says when a client has attached to a shell that prints
			// nothing until a key comes, so each line waits a while.
			time.Sleep(700 * time.Millisecond)
			io.WriteString(stdin, l+"\n")
		}
	}()
	done := make(chan error, 1)
	go func() { done <- ctx.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		ctx.Process.Kill()
		<-done
		t.Errorf("%s %v did not end; output %q", program, args, out.String())
	}
	return strings.ReplaceAll(out.String(), "\r", "")
}

// ours runs our client against the test daemon.
func ours(t *testing.T, p paths, args ...string) result {
	t.Helper()
	return run(t, nil, engineBin(t), append([]string{"-H", "unix://" + p.sock}, args...)...)
}

// oursWithStdin is ours with input.
func oursWithStdin(t *testing.T, p paths, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(engineBin(t), append([]string{"-H", "unix://" + p.sock}, args...)...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// poll calls cond every 20 ms until it holds or timeout has passed, and
// says whether it held.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually waits until cond holds, a state the test needs, and fails the
// test if it does not within timeout; what names the state.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

// waitProgram waits until the main process of container name runs program
// (its comm): the container's init has handed over to the command.
func waitProgram(t *testing.T, env []string, name, program string) {
	t.Helper()
	pid := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.Pid}}", name).stdout)
	eventually(t, 20*time.Second, name+" runs "+program, func() bool {
		b, err := os.ReadFile("/proc/" + pid + "/comm")
		return err == nil && strings.TrimSpace(string(b)) == program
	})
}

// waitExec waits until cmd, run in container name, succeeds.
func waitExec(t *testing.T, env []string, name string, cmd ...string) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%v in %s", cmd, name), func() bool {
		return run(t, env, "docker", append([]string{"exec", name}, cmd...)...).code == 0
	})
}

// exited says whether process pid has ended (gone, or a zombie).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// syncBuffer is a bytes.Buffer a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
