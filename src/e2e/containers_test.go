//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/net/websocket"
)

func TestE2EContainersWithDockerCLI(t *testing.T) {
	p, _, env := withBusybox(t)
	bin := engineBin(t)

	r := run(t, env, "docker", "run", "--rm", "--network", "none", "busybox", "echo", "hello from a container")
	if r.code != 0 || r.stdout != "hello from a container\n" {
		t.Fatalf("docker run --rm: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "ps", "-aq"); r.stdout != "" {
		t.Errorf("--rm left %q", r.stdout)
	}
	// Exit codes, both streams, the container's view of itself.
	r = run(t, env, "docker", "run", "--network", "none", "--name", "c1", "-e", "GREETING=hi", "-w", "/tmp", "-u", "nobody",
		"--hostname", "box", "busybox", "sh", "-c", `echo "$GREETING $(pwd) $(id -u) $(hostname)"; echo oops >&2; exit 3`)
	if r.code != 3 || r.stdout != "hi /tmp 65534 box\n" || r.stderr != "oops\n" {
		t.Errorf("docker run: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "logs", "c1")
	if r.stdout != "hi /tmp 65534 box\n" || r.stderr != "oops\n" {
		t.Errorf("docker logs: %q %q", r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{.Config.Image}}", "c1")
	if r.stdout != "exited 3 /c1 busybox\n" {
		t.Errorf("docker inspect: %q %q", r.stdout, r.stderr)
	}
	// On the host's network with a host name of its own (balena's device
	// agent names its host-network services after the device), and
	// without one: the host's, as Docker.
	r = run(t, env, "docker", "run", "--rm", "--network", "host", "--hostname", "device-1", "busybox", "sh", "-c", "hostname; cat /etc/hostname")
	if r.code != 0 || r.stdout != "device-1\ndevice-1\n" {
		t.Errorf("run --network host --hostname: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if h, _ := os.Hostname(); h != "" {
		if r := run(t, env, "docker", "run", "--rm", "--network", "host", "busybox", "hostname"); r.stdout != h+"\n" {
			t.Errorf("run --network host: hostname %q, want the host's %q (%s)", r.stdout, h, r.stderr)
		}
	}
	// Inspect's Mounts lists binds beside volumes; image inspect sends
	// the empty fields of the image's config.
	dir := t.TempDir()
	run(t, env, "docker", "create", "--network", "none", "--name", "bound", "-v", dir+":/data:ro", "-v", "vol1:/v", "--pids-limit", "-1", "busybox", "true")
	if r := run(t, env, "docker", "inspect", "--format", "{{.HostConfig.PidsLimit}}", "bound"); r.stdout != "<nil>\n" {
		t.Errorf("--pids-limit -1 is no limit (null), got %q", r.stdout)
	}
	// Docker's defaults are recorded: private IPC, masked and read-only
	// /proc paths.
	if r := run(t, env, "docker", "inspect", "--format", "{{.HostConfig.IpcMode}} {{len .HostConfig.MaskedPaths}} {{len .HostConfig.ReadonlyPaths}}", "bound"); !strings.HasPrefix(r.stdout, "private ") || strings.Contains(r.stdout, " 0") {
		t.Errorf("inspect's IPC mode and masked paths: %q", r.stdout)
	}
	// Refused as Docker refuses them.
	for _, bad := range []string{`"Env":["=x"],"HostConfig":{"NetworkMode":"none"}`, `"HostConfig":{"NetworkMode":"none","PidMode":"bogus"}`,
		`"HostConfig":{"NetworkMode":"none","OomScoreAdj":2000}`} {
		r := run(t, nil, "curl", "-s", "-w", " %{http_code}", "--unix-socket", p.sock, "-H", "Content-Type: application/json",
			"-d", `{"Image":"busybox",`+bad+`}`, "http://engine/containers/create")
		if !strings.HasSuffix(r.stdout, " 400") || !strings.Contains(strings.ToLower(r.stdout), "invalid") {
			t.Errorf("create with %s: %q", bad, r.stdout)
		}
	}
	// save with platform=: the image's own is saved, another is 404.
	for q, want := range map[string]string{"linux/s390x": "404", "not/a/plat/form": "400", runtime.GOOS + "/" + runtime.GOARCH: "200"} {
		if r := run(t, nil, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", p.sock, "http://engine/images/get?names=busybox&platform="+url.QueryEscape(q)); r.stdout != want {
			t.Errorf("save platform=%s: HTTP %q, want %s", q, r.stdout, want)
		}
	}
	r = run(t, env, "docker", "inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}|{{end}}", "bound")
	if !strings.Contains(r.stdout, "bind "+dir+" /data false|") || !strings.Contains(r.stdout, "volume ") {
		t.Errorf("inspect Mounts: %q %q", r.stdout, r.stderr)
	}
	run(t, env, "docker", "rm", "-v", "bound")
	run(t, env, "docker", "volume", "rm", "vol1")
	r = run(t, env, "docker", "events", "--since", "5m", "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10), "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}")
	if !strings.Contains(r.stdout, "create vol1\n") || !strings.Contains(r.stdout, "destroy vol1\n") {
		t.Errorf("volume events: %q %q", r.stdout, r.stderr)
	}
	// (Raw: a client's decoding hides a missing field.)
	r = run(t, nil, "curl", "-sS", "--unix-socket", p.sock, "http://engine/images/busybox/json")
	var img struct{ Config map[string]json.RawMessage }
	if err := json.Unmarshal([]byte(r.stdout), &img); err != nil {
		t.Errorf("image inspect: %v %q %q", err, r.stdout, r.stderr)
	}
	for _, k := range []string{"User", "Entrypoint", "Volumes", "StopSignal"} {
		if _, ok := img.Config[k]; !ok {
			t.Errorf("image inspect: Config.%s missing: %q", k, r.stdout)
		}
	}
	// A command that is not there: 400 and exit code 127, as Docker
	// (the start failed for the request's reason, not the engine's).
	run(t, env, "docker", "create", "--network", "none", "--name", "nocmd", "busybox", "nosuchcmd")
	if r := run(t, nil, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--unix-socket", p.sock, "http://engine/containers/nocmd/start"); r.stdout != "400" {
		t.Errorf("start of a missing command: HTTP %q, want 400", r.stdout)
	}
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "nocmd"); r.stdout != "created 127\n" {
		t.Errorf("after a start of a missing command: %q, want created 127", r.stdout)
	}
	run(t, env, "docker", "rm", "nocmd")
	// An object of no type: each type's lookup says not found (plugins
	// included: none is ever installed), so the CLI says so.
	if r := run(t, env, "docker", "inspect", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "No such object: nosuch") {
		t.Errorf("docker inspect of nothing: %d %q", r.code, r.stderr)
	}
	// A long-running one: ps, logs -f, stop with SIGTERM handled.
	r = run(t, env, "docker", "run", "-d", "--network", "host", "--name", "svc", "busybox", "sh", "-c",
		`trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done`)
	if r.code != 0 || len(strings.TrimSpace(r.stdout)) != 64 {
		t.Fatalf("docker run -d: %d %q %q", r.code, r.stdout, r.stderr)
	}
	eventually(t, 20*time.Second, "svc's first tick in its log", func() bool {
		return strings.Contains(run(t, env, "docker", "logs", "svc").stdout, "tick 0\n")
	})
	r = run(t, env, "docker", "ps", "--format", "{{.Names}} {{.State}}")
	if r.stdout != "svc running\n" {
		t.Errorf("docker ps: %q", r.stdout)
	}
	r = run(t, env, "docker", "logs", "--tail", "1", "svc")
	if !strings.HasPrefix(r.stdout, "tick ") {
		t.Errorf("docker logs --tail 1: %q", r.stdout)
	}
	r = run(t, env, "docker", "stop", "svc")
	if r.code != 0 {
		t.Errorf("docker stop: %q", r.stderr)
	}
	r = run(t, env, "docker", "inspect", "--format", "{{.State.ExitCode}}", "svc")
	if r.stdout != "0\n" {
		t.Errorf("exit code after a handled SIGTERM: %q", r.stdout)
	}
	if r := run(t, env, "docker", "logs", "--tail", "1", "svc"); r.stdout != "bye\n" {
		t.Errorf("last line after stop: %q", r.stdout)
	}
	// SIGTERM ignored: killed after the timeout, 137.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "stubborn", "busybox", "sleep", "1000")
	start := time.Now()
	run(t, env, "docker", "stop", "-t", "1", "stubborn")
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.ExitCode}}", "stubborn"); r.stdout != "137\n" || time.Since(start) < time.Second {
		t.Errorf("stop of a process ignoring SIGTERM: %q after %v", r.stdout, time.Since(start))
	}
	// stop -t -1 waits for the exit for ever, never killing: a process
	// that takes its time to end gets to end on its own.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "patient", "busybox", "sh", "-c",
		`trap 'sleep 1; exit 7' TERM; touch /tmp/ready; while :; do sleep 0.1; done`)
	waitExec(t, env, "patient", "test", "-e", "/tmp/ready")
	run(t, env, "docker", "stop", "-t", "-1", "patient")
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.ExitCode}}", "patient"); r.stdout != "7\n" {
		t.Errorf("stop -t -1: exit code %q, want the process's own 7", r.stdout)
	}
	run(t, env, "docker", "rm", "patient")
	// ps filters: since=/before= a container (by creation), name= a
	// regular expression with or without the "/".
	for _, tc := range []struct{ filter, want string }{
		{"since=c1", "stubborn svc"}, {"before=stubborn", "svc c1"}, {"name=^c1$", "c1"}, {"name=^/svc$", "svc"}, {"name=stub", "stubborn"},
	} {
		r := run(t, env, "docker", "ps", "-a", "--filter", tc.filter, "--format", "{{.Names}}")
		if got := strings.Join(strings.Fields(r.stdout), " "); got != tc.want || r.code != 0 {
			t.Errorf("ps --filter %s: %q, want %q (%s)", tc.filter, got, tc.want, r.stderr)
		}
	}
	if r := run(t, env, "docker", "ps", "--filter", "since=nosuch"); r.code == 0 || !strings.Contains(r.stderr, "No such container: nosuch") {
		t.Errorf("ps --filter since=nosuch: %d %q", r.code, r.stderr)
	}
	// Our CLI agrees.
	r = run(t, nil, bin, "-H", "unix://"+p.sock, "ps", "-a", "--format", "{{.Names}}")
	for _, n := range []string{"c1", "svc", "stubborn"} {
		if !strings.Contains(r.stdout, n+"\n") {
			t.Errorf("balena-engine ps -a lacks %s: %q", n, r.stdout)
		}
	}
	r = run(t, nil, bin, "-H", "unix://"+p.sock, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "exit 42")
	if r.code != 42 {
		t.Errorf("balena-engine run exit code: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "rm", "c1", "svc", "stubborn"); r.code != 0 {
		t.Errorf("docker rm: %q", r.stderr)
	}
	// Image in use by a container: rmi refuses.
	run(t, env, "docker", "create", "--network", "none", "--name", "holder", "busybox", "true")
	if r := run(t, env, "docker", "rmi", "busybox"); r.code == 0 || !strings.Contains(r.stderr, `unable to remove repository reference "busybox:latest" (must force) - container`) {
		t.Errorf("rmi of an image in use: %d %q", r.code, r.stderr)
	}
	// What is left on disk for the containers is gone with them.
	run(t, env, "docker", "rm", "holder")
	if dirs, _ := os.ReadDir(filepath.Join(p.dataRoot, "containers")); len(dirs) != 0 {
		t.Errorf("container directories left: %v", dirs)
	}
}

func TestE2EContainerBadInput(t *testing.T) {
	p, _, env := withBusybox(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--pull", "never", "--network", "none", "nothing:here", "true"}, 125, "No such image: nothing:here"},
		{[]string{"run", "--network", "none", "busybox", "nosuchcommand"}, 127, "executable file not found"},
		{[]string{"run", "--network", "none", "-v", "/tmp:/x:fast", "busybox", "true"}, 125, "invalid mode: fast"},
		{[]string{"run", "--network", "none", "--mount", "type=bind,source=/nonexistent/x,target=/x", "busybox", "true"}, 125, "bind source path does not exist"},
		// The docker CLI maps "no such file or directory" to 127, with Docker too.
		{[]string{"run", "--network", "none", "--device", "/dev/nonexistent", "busybox", "true"}, 127, `adding custom device "/dev/nonexistent"`},
		{[]string{"run", "--network", "none", "-m", "1m", "busybox", "true"}, 125, "Minimum memory limit allowed is 6MB"},
		{[]string{"run", "--network", "none", "--cpus", "1000", "busybox", "true"}, 125, "range of CPUs"},
		{[]string{"run", "--network", "none", "--cap-add", "FLYING", "busybox", "true"}, 125, "invalid capability"},
		// The test daemons run with --bridge=none: there is no default
		// bridge, and the answer is not a 404 (the docker CLI would try
		// to pull the image).
		{[]string{"run", "busybox", "true"}, 125, "the default bridge network is disabled"},
		{[]string{"run", "--network", "none", "-u", "ghost", "busybox", "true"}, 125, "unable to find user ghost"},
		{[]string{"run", "--network", "none", "--log-opt", "compress=true", "busybox", "true"}, 125, "compress cannot be true when max-file is less than 2"},
		{[]string{"run", "--network", "none", "--restart", "sometimes", "busybox", "true"}, 125, "invalid restart policy"},
	}
	for _, c := range cases {
		r := run(t, env, "docker", c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("docker %v: exit %d %q; want %d with %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	// A name already used: 409, nothing half-created.
	run(t, env, "docker", "create", "--network", "none", "--name", "taken", "busybox", "true")
	r := run(t, env, "docker", "create", "--network", "none", "--name", "taken", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, `The container name "/taken" is already in use`) {
		t.Errorf("duplicate name: %d %q", r.code, r.stderr)
	}
	r = run(t, env, "docker", "ps", "-a", "--format", "{{.Names}}")
	// Only "taken" and the containers of the failed starts (created, as in Docker).
	if strings.Count(r.stdout, "taken") != 1 {
		t.Errorf("containers after a refused create: %q", r.stdout)
	}
	// run --rm whose start fails removes the container, as Docker does.
	before := run(t, env, "docker", "ps", "-aq").stdout
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "busybox", "nosuchcommand"); r.code != 127 {
		t.Errorf("run --rm of a missing command: %d %q", r.code, r.stderr)
	}
	if after := run(t, env, "docker", "ps", "-aq").stdout; after != before {
		t.Errorf("a failed run --rm left a container: %q, before %q", after, before)
	}
	if r := run(t, env, "docker", "rm", "nothing-here"); r.code == 0 || !strings.Contains(r.stderr, "No such container: nothing-here") {
		t.Errorf("rm of an unknown container: %q", r.stderr)
	}
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "busy", "busybox", "sleep", "100")
	if r := run(t, env, "docker", "rm", "busy"); r.code == 0 || !strings.Contains(r.stderr, "container is running") {
		t.Errorf("rm of a running container: %q", r.stderr)
	}
	if r := run(t, env, "docker", "rm", "-f", "busy"); r.code != 0 {
		t.Errorf("rm -f: %q", r.stderr)
	}
	_ = p
}

// The daemon is SIGKILLed while a container runs and logs; the container
// keeps running, its log has no gap, and the restarted daemon follows it:
// logs, stop, and the exit code of one that ended while the daemon was away.
func TestE2ELiveRestore(t *testing.T) {
	p, d, env := withBusybox(t)
	bin := engineBin(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "counter", "busybox", "sh", "-c",
		`i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done`)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 5")
	waitProgram(t, env, "counter", "sh")
	pidOf := func() string {
		return strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.Pid}}", "counter").stdout)
	}
	pid := pidOf()
	shortPid, _ := strconv.Atoi(strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.Pid}}", "short").stdout))
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.done <- nil
	os.Remove(p.sock)
	os.Remove(p.pidfile)
	// "short" ends while the daemon is down.
	eventually(t, 20*time.Second, "short's end", func() bool { return exited(shortPid) })

	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.Status}}", "counter"); r.stdout != "running\n" || pidOf() != pid {
		t.Fatalf("after the daemon's restart the container is %q (pid %s, was %s)", r.stdout, pidOf(), pid)
	}
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "short"); r.stdout != "exited 5\n" {
		t.Errorf("container that ended while the daemon was down: %q", r.stdout)
	}
	// exec, attach, logs -f and wait work with the new daemon.
	if r := run(t, env, "docker", "exec", "counter", "echo", "back"); r.stdout != "back\n" {
		t.Errorf("exec after the restart: %q %q", r.stdout, r.stderr)
	}
	background := func(args ...string) (*exec.Cmd, *bufio.Reader) {
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, bufio.NewReader(out)
	}
	attach, attachOut := background("attach", "--no-stdin", "counter")
	got := make(chan string, 1)
	go func() { l, _ := attachOut.ReadString('\n'); got <- l }()
	select {
	case l := <-got:
		if _, err := strconv.Atoi(strings.TrimSpace(l)); err != nil {
			t.Errorf("attach after the restart read %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Error("attach after the restart: no output")
	}
	attach.Process.Kill()
	follow, followOut := background("logs", "-f", "counter")
	wait, waitOut := background("wait", "counter")
	// logs -f is following before the stop (docker wait has nothing to
	// show for it: on a stopped container it answers the same).
	first := make(chan string, 1)
	go func() { l, _ := followOut.ReadString('\n'); first <- l }()
	var firstLine string
	select {
	case firstLine = <-first:
	case <-time.After(20 * time.Second):
		t.Error("logs -f after the restart: no output")
	}
	run(t, env, "docker", "stop", "-t", "1", "counter")
	if code, _ := waitOut.ReadString('\n'); strings.TrimSpace(code) != "137" {
		t.Errorf("wait after the restart: %q", code)
	}
	wait.Wait()
	rest, _ := io.ReadAll(followOut) // ends with the container
	followed := firstLine + string(rest)
	if err := follow.Wait(); err != nil || !strings.HasPrefix(string(followed), "0\n1\n") {
		t.Errorf("logs -f after the restart: %v %.40q", err, followed)
	}
	r := run(t, env, "docker", "logs", "counter")
	lines := strings.Fields(r.stdout)
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("log line %d is %q: a gap across the daemon's restart", i, l)
		}
	}
	if len(lines) < 20 {
		t.Errorf("only %d log lines", len(lines))
	}
	t.Logf("%d log lines without a gap across a daemon SIGKILL", len(lines))
	_ = fmt.Sprint
}

func TestE2ERestartPolicies(t *testing.T) {
	p, d, env := withBusybox(t)
	bin := engineBin(t)
	inspect := func(name, f string) string {
		return strings.TrimSpace(run(t, env, "docker", "inspect", "--format", f, name).stdout)
	}
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "fails", "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 1")
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "done", "--restart", "on-failure", "busybox", "true")
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "stopped", "--restart", "unless-stopped", "busybox", "sleep", "100")
	// on-failure:3 gives up after 3 restarts (backoff 0.1+0.2+0.4 s).
	deadline := time.Now().Add(10 * time.Second)
	for inspect("fails", "{{.RestartCount}} {{.State.Status}}") != "3 exited" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := inspect("fails", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"); got != "3 exited 1" {
		t.Errorf("on-failure:3: %q", got)
	}
	if got := inspect("done", "{{.RestartCount}} {{.State.Status}}"); got != "0 exited" {
		t.Errorf("on-failure after success: %q", got)
	}
	restarts := func() int { n, _ := strconv.Atoi(inspect("always", "{{.RestartCount}}")); return n }
	if !poll(10*time.Second, func() bool { return restarts() >= 2 }) {
		t.Errorf("always restarted %d times in 10 s", restarts())
	}
	run(t, env, "docker", "stop", "-t", "1", "always", "stopped")
	// Part of the scenario: a restart wrongly scheduled after the stop
	// would come within this (the backoff is 0.1 s after a short run).
	time.Sleep(500 * time.Millisecond)
	if got := inspect("always", "{{.State.Status}}"); got != "exited" {
		t.Errorf("always after docker stop: %q", got)
	}
	// Across a daemon restart: "always" comes back, "unless-stopped" stays
	// stopped because a user stopped it.
	d.stop(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	deadline = time.Now().Add(5 * time.Second)
	for inspect("always", "{{.State.Status}}") != "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := inspect("always", "{{.State.Status}}"); got != "running" && got != "restarting" {
		t.Errorf("always after the daemon's restart: %q", got)
	}
	if got := inspect("stopped", "{{.State.Status}}"); got != "exited" {
		t.Errorf("unless-stopped, stopped by a user, after the daemon's restart: %q", got)
	}
	r := run(t, env, "docker", "run", "--network", "none", "--rm", "--restart", "always", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "AutoRemove") && !strings.Contains(r.stderr, "conflicting options") {
		t.Errorf("--rm with --restart: %d %q", r.code, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "fails", "done", "always", "stopped")
}

// docker update changes the restart policy of a running container, which
// takes effect at its next exit; an update with a resource it cannot
// change is refused whole.
func TestE2EUpdate(t *testing.T) {
	p, _, env := withBusybox(t)
	inspect := func(name, f string) string {
		return strings.TrimSpace(run(t, env, "docker", "inspect", "--format", f, name).stdout)
	}
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "flaky", "busybox", "sh", "-c", "sleep 0.5; exit 3")
	if r := run(t, env, "docker", "update", "--restart", "on-failure:2", "flaky"); r.code != 0 {
		t.Fatalf("docker update --restart: %d %q", r.code, r.stderr)
	}
	if got := inspect("flaky", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"); got != "on-failure:2" {
		t.Errorf("restart policy after update: %q", got)
	}
	deadline := time.Now().Add(15 * time.Second)
	for inspect("flaky", "{{.RestartCount}} {{.State.Status}}") != "2 exited" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := inspect("flaky", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"); got != "2 exited 3" {
		t.Errorf("after update to on-failure:2 and three failures: %q", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "--memory", "1m", "flaky"}, "Minimum memory limit allowed is 6MB"},
		{[]string{"update", "--memory", "64m", "--restart", "sometimes", "flaky"}, "invalid restart policy"},
		{[]string{"update", "--restart", "always", "nosuch"}, "No such container"},
	} {
		r := run(t, env, "docker", c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("docker %v: %d %q, want an error with %q", c.args, r.code, r.stderr, c.want)
		}
	}
	// A resource docker update cannot change refuses the whole update.
	if code, body := apiCall(t, p, "POST", "/containers/flaky/update", `{"Memory":67108864,"Ulimits":[{"Name":"nofile","Soft":10,"Hard":10}]}`); code != http.StatusNotImplemented || !strings.Contains(body, "not implemented") {
		t.Errorf("update with ulimits: %d %s", code, body)
	}
	if got := inspect("flaky", "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Memory}}"); got != "on-failure 0" {
		t.Errorf("a refused update changed the container: %q", got)
	}
	// Older clients' kernel memory limit: discarded with Docker's warning.
	if code, body := apiCall(t, p, "POST", "/v1.41/containers/flaky/update", `{"KernelMemory":67108864}`); code != http.StatusOK || !strings.Contains(body, "kernel memory limit capabilities") {
		t.Errorf("update with KernelMemory: %d %s", code, body)
	}
	// A malformed body is a 400 that changes nothing.
	c := apiClient(t, p)
	for _, body := range []string{"", "{", `{"RestartPolicy": 7}`} {
		resp, err := c.Do(context.Background(), http.MethodPost, "/containers/flaky/update", nil, strings.NewReader(body))
		var re *client.ResponseError
		if err == nil {
			resp.Body.Close()
		}
		if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || !strings.Contains(re.Message, "invalid JSON") {
			t.Errorf("update with body %q: %v, want 400 invalid JSON", body, err)
		}
	}
	// Our own client sends the same request.
	if r := run(t, nil, engineBin(t), "-H", "unix://"+p.sock, "update", "--restart", "unless-stopped", "flaky"); r.code != 0 || r.stdout != "flaky\n" {
		t.Errorf("balena-engine update: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if got := inspect("flaky", "{{.HostConfig.RestartPolicy.Name}}"); got != "unless-stopped" {
		t.Errorf("restart policy after our client's update: %q", got)
	}
	// Resources: applied to the running container's cgroup, kept in its
	// record, and still there after a restart.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "limited", "--memory", "32m", "--cpu-shares", "512", "busybox", "sleep", "100")
	id := inspect("limited", "{{.Id}}")
	limit := func() string {
		for _, f := range []string{"/sys/fs/cgroup/memory" + p.cgroupParent + "/" + id + "/memory.limit_in_bytes", "/sys/fs/cgroup" + p.cgroupParent + "/" + id + "/memory.max"} {
			if b, err := os.ReadFile(f); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		return "no cgroup file"
	}
	if got := limit(); got != "33554432" {
		t.Fatalf("memory limit at start: %s", got)
	}
	if r := run(t, env, "docker", "update", "--memory", "64m", "--pids-limit", "50", "limited"); r.code != 0 {
		t.Fatalf("docker update --memory: %d %q", r.code, r.stderr)
	}
	if got := limit(); got != "67108864" {
		t.Errorf("memory limit after update: %s", got)
	}
	if got := inspect("limited", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}"); got != "67108864 50 512" {
		t.Errorf("record after update: %q (cpu shares must stay)", got)
	}
	if r := run(t, nil, engineBin(t), "-H", "unix://"+p.sock, "update", "-m", "48m", "limited"); r.code != 0 {
		t.Errorf("balena-engine update -m: %d %q", r.code, r.stderr)
	}
	if got := limit(); got != "50331648" {
		t.Errorf("memory limit after our client's update: %s", got)
	}
	run(t, env, "docker", "restart", "-t", "1", "limited")
	if got := limit(); got != "50331648" {
		t.Errorf("memory limit after restart: %s", got)
	}
	run(t, env, "docker", "rm", "-f", "limited")
	run(t, env, "docker", "run", "-d", "--rm", "--network", "none", "--name", "gone", "busybox", "sleep", "100")
	if r := run(t, env, "docker", "update", "--restart", "always", "gone"); r.code == 0 || !strings.Contains(r.stderr, "AutoRemove") {
		t.Errorf("update --restart always on an --rm container: %d %q", r.code, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "flaky", "gone")
}

// docker export gives the container's filesystem: the image with the
// container's changes (deletions included), without its volumes or the
// runtime's mounts, running or stopped; our CLI's export writes the same.
func TestE2EExport(t *testing.T) {
	p, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "exp", "-v", "/vol", "busybox", "sh", "-c",
		"echo hello > /made && mkdir -p /d && ln -sf /etc/passwd /d/link && rm -f /etc/group && echo v > /vol/inside && touch /ready && sleep 100")
	deadline := time.Now().Add(10 * time.Second)
	for run(t, env, "docker", "exec", "exp", "test", "-e", "/ready").code != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	check := func(when, archive string) {
		t.Helper()
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		seen := map[string]*tar.Header{}
		bodies := map[string]string{}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: reading the export: %v", when, err)
			}
			seen[h.Name] = h
			if h.Typeflag == tar.TypeReg && h.Size < 1024 {
				b, _ := io.ReadAll(tr)
				bodies[h.Name] = string(b)
			}
			if strings.Contains(h.Name, ".wh.") || strings.HasPrefix(h.Name, "/") || strings.Contains(h.Name, "..") {
				t.Errorf("%s: entry %q", when, h.Name)
			}
		}
		if bodies["made"] != "hello\n" {
			t.Errorf("%s: /made is %q", when, bodies["made"])
		}
		if h := seen["d/link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/passwd" {
			t.Errorf("%s: d/link is %+v", when, h)
		}
		if h := seen["bin/busybox"]; h == nil || h.Mode&0o111 == 0 {
			t.Errorf("%s: bin/busybox from the image is %+v", when, h)
		}
		for _, gone := range []string{"etc/group", "vol/inside", "proc/1/"} {
			if seen[gone] != nil {
				t.Errorf("%s: %s is in the export", when, gone)
			}
		}
		if seen["etc/passwd"] == nil {
			t.Errorf("%s: etc/passwd from the image is missing", when)
		}
	}
	running := filepath.Join(p.dir, "running.tar")
	if r := run(t, env, "docker", "export", "-o", running, "exp"); r.code != 0 {
		t.Fatalf("docker export of a running container: %d %q", r.code, r.stderr)
	}
	check("running", running)
	// docker diff of the same changes: the runtime's mountpoints are not
	// among them.
	r := run(t, env, "docker", "diff", "exp")
	t.Logf("docker diff:\n%s", r.stdout)
	for _, want := range []string{"A /made\n", "A /d\n", "A /d/link\n", "C /etc\n", "D /etc/group\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("docker diff: %q lacks %q", r.stdout, want)
		}
	}
	for _, not := range []string{" /proc", " /dev", " /sys", "/etc/hosts", "/etc/resolv.conf", "/etc/passwd"} {
		if strings.Contains(r.stdout, not) {
			t.Errorf("docker diff: %q lists %q", r.stdout, not)
		}
	}
	run(t, env, "docker", "run", "--network", "none", "--name", "clean", "busybox", "true")
	if r := run(t, nil, engineBin(t), "-H", "unix://"+p.sock, "diff", "clean"); r.code != 0 || r.stdout != "" {
		t.Errorf("diff of a container that changed nothing: %d %q %q", r.code, r.stdout, r.stderr)
	}
	run(t, env, "docker", "rm", "clean")
	run(t, env, "docker", "stop", "-t", "1", "exp")
	stopped := filepath.Join(p.dir, "stopped.tar")
	if r := run(t, nil, engineBin(t), "-H", "unix://"+p.sock, "export", "-o", stopped, "exp"); r.code != 0 {
		t.Fatalf("balena-engine export of a stopped container: %d %q", r.code, r.stderr)
	}
	check("stopped", stopped)
	// The export's mount is gone again, and the container starts.
	if r := run(t, env, "docker", "start", "exp"); r.code != 0 {
		t.Errorf("start after export: %d %q", r.code, r.stderr)
	}
	// Export and start at once: the start waits for the export's mount,
	// so the container gets its whole filesystem and the tar is whole.
	for i := 0; i < 5; i++ {
		run(t, env, "docker", "stop", "-t", "0", "exp")
		out := filepath.Join(p.dir, fmt.Sprintf("race%d.tar", i))
		done := make(chan result, 1)
		go func() { done <- run(t, env, "docker", "export", "-o", out, "exp") }()
		started := run(t, env, "docker", "start", "exp")
		if r := <-done; r.code != 0 {
			t.Errorf("export racing a start: %d %q", r.code, r.stderr)
		}
		if started.code != 0 {
			t.Errorf("start racing an export: %d %q", started.code, started.stderr)
		}
		if r := run(t, env, "docker", "exec", "exp", "cat", "/made"); r.stdout != "hello\n" {
			t.Errorf("after a start that raced an export, /made is %q (%q)", r.stdout, r.stderr)
		}
		// Whole, and with the image in it (the container's own script may
		// be rewriting its files meanwhile, so those are not compared).
		if r := run(t, nil, "tar", "-tf", out); r.code != 0 || !strings.Contains(r.stdout, "bin/busybox\n") {
			t.Errorf("race %d: export is not a whole tar of the image: %d %q", i, r.code, r.stderr)
		}
	}
	if r := run(t, env, "docker", "export", "-o", filepath.Join(p.dir, "x.tar"), "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("export of no container: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "x.tar")); err == nil {
		t.Error("a failed export left a file")
	}
	run(t, env, "docker", "rm", "-f", "exp")
}

// --init puts the engine's own docker-init at PID 1: the command runs under
// it, gets the signals (so docker stop ends a sleep with SIGTERM rather than
// after the timeout with SIGKILL), its status comes back, orphans are reaped.
func TestE2EInit(t *testing.T) {
	_, _, env := withBusybox(t)
	r := run(t, env, "docker", "run", "--rm", "--network", "none", "--init", "busybox", "sh", "-c", `tr "\0" " " < /proc/1/cmdline`)
	if r.code != 0 || strings.TrimSpace(r.stdout) != `/sbin/docker-init -- sh -c tr "\0" " " < /proc/1/cmdline` {
		t.Errorf("PID 1 with --init: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "--init", "busybox", "sh", "-c", "exit 5"); r.code != 5 {
		t.Errorf("exit status through the init: %d %q", r.code, r.stderr)
	}
	r = run(t, env, "docker", "run", "--rm", "--network", "none", "--init", "busybox", "sh", "-c",
		`(sleep 0.1 &); sleep 0.6; cat /proc/[0-9]*/stat | grep -c ") Z " || true`)
	if strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("zombies under the init: %q %q", r.stdout, r.stderr)
	}
	run(t, env, "docker", "run", "-d", "--network", "none", "--init", "--name", "initd", "busybox", "sleep", "100")
	run(t, env, "docker", "stop", "-t", "20", "initd")
	if got := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.ExitCode}}", "initd").stdout); got != "143" {
		t.Errorf("docker stop of sleep under the init: exit %s, want 143 (SIGTERM reached it)", got)
	}
	run(t, env, "docker", "rm", "-f", "initd")
}

// The daemon's --init makes it the default; a container's --init=false
// still says no.
func TestE2EDaemonInit(t *testing.T) {
	_, _, env := withBusybox(t, "--init")
	pid1 := func(args ...string) string {
		a := append([]string{"run", "--rm", "--network", "none"}, args...)
		a = append(a, "busybox", "sh", "-c", `tr "\0" " " < /proc/1/cmdline`)
		return strings.TrimSpace(run(t, env, "docker", a...).stdout)
	}
	if got := pid1(); !strings.HasPrefix(got, "/sbin/docker-init -- sh -c") {
		t.Errorf("PID 1 under a daemon with --init: %q", got)
	}
	if got := pid1("--init=false"); got == "" || strings.Contains(got, "docker-init") { // sh execs tr: PID 1 is tr
		t.Errorf("PID 1 with --init=false: %q", got)
	}
}

// A container that outgrows its memory limit is killed by the kernel and
// says so: OOMKilled, exit 137, an "oom" event; one under its limit does not.
func TestE2EOOM(t *testing.T) {
	_, _, env := withBusybox(t)
	// dd's 64 MiB block is one buffer it fills: more than 16 MiB with no swap.
	r := run(t, env, "docker", "run", "--network", "none", "--name", "hog", "--memory", "16m", "--memory-swap", "16m",
		"busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	if r.code != 137 {
		t.Errorf("docker run of a container over its memory limit: exit %d (%q), want 137", r.code, r.stderr)
	}
	if got := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog").stdout); got != "true 137" {
		t.Errorf("inspect after the OOM kill: %q", got)
	}
	ev := run(t, env, "docker", "events", "--since", "0", "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "container=hog", "--format", "{{.Action}}")
	if !strings.Contains(ev.stdout, "oom") {
		t.Errorf("events of the OOM-killed container: %q", ev.stdout)
	}
	r = run(t, env, "docker", "run", "--network", "none", "--name", "fits", "--memory", "16m", "--memory-swap", "16m",
		"busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=64")
	if r.code != 0 {
		t.Errorf("a container within its limit: exit %d (%q)", r.code, r.stderr)
	}
	if got := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.OOMKilled}}", "fits").stdout); got != "false" {
		t.Errorf("OOMKilled of a container within its limit: %q", got)
	}
	run(t, env, "docker", "rm", "hog", "fits")
}

func TestE2EExec(t *testing.T) {
	p, _, env := withBusybox(t)
	bin := engineBin(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "target", "--hostname", "inside", "busybox", "sleep", "1000")
	r := run(t, env, "docker", "exec", "target", "sh", "-c", "echo $(hostname); echo err >&2; exit 4")
	if r.code != 4 || r.stdout != "inside\n" || r.stderr != "err\n" {
		t.Errorf("docker exec: %d %q %q", r.code, r.stdout, r.stderr)
	}
	cmd := exec.Command("docker", "exec", "-i", "target", "sh", "-c", "tr a-z A-Z")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("piped through\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "PIPED THROUGH\n" {
		t.Errorf("docker exec -i: %q %v", out, err)
	}
	r = run(t, env, "docker", "exec", "-u", "nobody", "-w", "/tmp", "-e", "X=1", "target", "sh", "-c", "echo $(id -u) $(pwd) $X")
	if r.stdout != "65534 /tmp 1\n" {
		t.Errorf("exec -u -w -e: %q %q", r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "exec", "target", "no-such-command")
	if r.code != 127 || !strings.Contains(r.stdout+r.stderr, "executable file not found") {
		t.Errorf("exec of a missing command: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, bin, "-H", "unix://"+p.sock, "exec", "target", "echo", "ours"); r.stdout != "ours\n" {
		t.Errorf("balena-engine exec: %q %q", r.stdout, r.stderr)
	}
	run(t, env, "docker", "exec", "-d", "target", "sh", "-c", "echo detached > /tmp/mark")
	waitExec(t, env, "target", "test", "-s", "/tmp/mark")
	if r := run(t, env, "docker", "exec", "target", "cat", "/tmp/mark"); r.stdout != "detached\n" {
		t.Errorf("exec -d did not run: %q %q", r.stdout, r.stderr)
	}
	run(t, env, "docker", "stop", "-t", "0", "target")
	if r := run(t, env, "docker", "exec", "target", "true"); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("exec in a stopped container: %d %q", r.code, r.stderr)
	}
}

func TestE2EInfoAndPause(t *testing.T) {
	_, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "ticker", "busybox", "sh", "-c",
		`i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done`)
	eventually(t, 20*time.Second, "ticker's output", func() bool { return run(t, env, "docker", "logs", "ticker").stdout != "" })
	if r := run(t, env, "docker", "pause", "ticker"); r.code != 0 {
		t.Fatalf("docker pause: %q", r.stderr)
	}
	lines := func() int { return len(strings.Fields(run(t, env, "docker", "logs", "ticker").stdout)) }
	n1 := lines()
	// Part of the scenario: a paused container has the time to write
	// ten lines, and must not.
	time.Sleep(500 * time.Millisecond)
	if n2 := lines(); n2 != n1 {
		t.Errorf("a paused container wrote %d more lines", n2-n1)
	}
	if r := run(t, env, "docker", "ps", "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(r.stdout), "(Paused)") {
		t.Errorf("docker ps while paused: %q", r.stdout)
	}
	r := run(t, env, "docker", "info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.Images}} {{.LiveRestoreEnabled}} {{.Driver}}")
	if r.stdout != "1 0 1 1 true overlay2\n" {
		t.Errorf("docker info: %q %q", r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "pause", "ticker"); r.code == 0 || !strings.Contains(r.stderr, "already paused") {
		t.Errorf("pause twice: %q", r.stderr)
	}
	run(t, env, "docker", "unpause", "ticker")
	if !poll(20*time.Second, func() bool { return lines() > n1 }) {
		t.Errorf("no output after unpause (%d lines, %d before)", lines(), n1)
	}
	run(t, env, "docker", "pause", "ticker")
	if r := run(t, env, "docker", "rm", "-f", "ticker"); r.code != 0 {
		t.Errorf("rm -f of a paused container: %q", r.stderr)
	}
}

func TestE2EVolumes(t *testing.T) {
	p, _, env := withBusybox(t)
	// A named volume, made on first use, filled from the image (copy-up),
	// and kept across containers.
	r := run(t, env, "docker", "run", "--rm", "--network", "none", "-v", "appdata:/etc", "busybox", "sh", "-c",
		"cat /etc/group | head -1; echo kept > /etc/state")
	if r.code != 0 || r.stdout != "root:x:0:\n" {
		t.Fatalf("first use of a named volume: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "run", "--rm", "--network", "none", "-v", "appdata:/data:ro", "busybox", "sh", "-c",
		"cat /data/state; touch /data/x 2>&1 | grep -c 'Read-only'")
	if r.stdout != "kept\n1\n" {
		t.Errorf("the volume's data, read-only: %q %q", r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "volume", "ls", "--format", "{{.Driver}} {{.Name}}")
	if r.stdout != "local appdata\n" {
		t.Errorf("docker volume ls: %q", r.stdout)
	}
	r = run(t, env, "docker", "volume", "inspect", "appdata", "--format", "{{.Mountpoint}}")
	if mp := strings.TrimSpace(r.stdout); mp != filepath.Join(p.dataRoot, "volumes", "appdata", "_data") {
		t.Errorf("mountpoint %q", mp)
	}
	// In use: refused; anonymous volumes go with "rm -v".
	run(t, env, "docker", "create", "--network", "none", "--name", "user", "-v", "appdata:/d", "-v", "/scratch", "busybox", "true")
	if r := run(t, env, "docker", "volume", "rm", "appdata"); r.code == 0 || !strings.Contains(r.stderr, "volume is in use") {
		t.Errorf("rm of a volume in use: %q", r.stderr)
	}
	r = run(t, env, "docker", "inspect", "--format", "{{range .Mounts}}{{.Destination}} {{end}}", "user")
	if r.stdout != "/d /scratch \n" {
		t.Errorf("mounts in inspect: %q", r.stdout)
	}
	run(t, env, "docker", "rm", "-v", "user")
	if r := run(t, env, "docker", "volume", "ls", "-q"); r.stdout != "appdata\n" {
		t.Errorf("after rm -v: %q", r.stdout)
	}
	if r := run(t, env, "docker", "volume", "rm", "appdata"); r.code != 0 {
		t.Errorf("volume rm: %q", r.stderr)
	}
	// --mount type=volume, and docker volume create with a bad name.
	r = run(t, env, "docker", "run", "--rm", "--network", "none", "--mount", "type=volume,source=m1,target=/m", "busybox", "sh", "-c", "echo hi > /m/f && cat /m/f")
	if r.stdout != "hi\n" {
		t.Errorf("--mount type=volume: %q %q", r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "volume", "create", "bad/name"); r.code == 0 || !strings.Contains(r.stderr, "invalid characters") {
		t.Errorf("volume create with a bad name: %q", r.stderr)
	}
	if r := run(t, env, "docker", "volume", "create", "-o", "type=nfs", "remote"); r.code == 0 || !strings.Contains(r.stderr, "not implemented") {
		t.Errorf("volume options: %q", r.stderr)
	}
	run(t, env, "docker", "volume", "rm", "m1")
}

func TestE2EHealthChecks(t *testing.T) {
	_, _, env := withBusybox(t)
	health := func(name string) string {
		return strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", name).stdout)
	}
	waitFor := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.HasPrefix(health(name), want) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := health(name); !strings.HasPrefix(got, want) {
			t.Fatalf("%s health %q, want %q", name, got, want)
		}
	}
	// "starting" from the start itself (the first probe is an hour away).
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "hcs", "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "1000")
	if got := health("hcs"); !strings.HasPrefix(got, "starting") {
		t.Errorf("health right after start: %q, want starting", got)
	}
	run(t, env, "docker", "rm", "-f", "hcs")
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "hc", "--health-cmd", "test -f /tmp/ok",
		"--health-interval", "200ms", "--health-retries", "2", "busybox", "sleep", "1000")
	waitFor("hc", "unhealthy")
	if r := run(t, env, "docker", "ps", "--format", "{{.Status}}"); !strings.Contains(r.stdout, "(unhealthy)") {
		t.Errorf("docker ps: %q", r.stdout)
	}
	run(t, env, "docker", "exec", "hc", "touch", "/tmp/ok")
	waitFor("hc", "healthy 0")
	r := run(t, env, "docker", "inspect", "--format", "{{(index .State.Health.Log 0).ExitCode}}", "hc")
	if r.stdout != "1\n" {
		t.Errorf("first probe's exit code: %q", r.stdout)
	}
	// Restart on unhealthy, balenaEngine's option for devices.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "sick", "--label", "io.balena.restart-on-unhealthy=true",
		"--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "1", "busybox", "sleep", "1000")
	first := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.StartedAt}}", "sick").stdout)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if now := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.StartedAt}}", "sick").stdout); now != first {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if now := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.StartedAt}}", "sick").stdout); now == first {
		t.Error("an unhealthy container with restart-on-unhealthy was not restarted")
	}
	// A probe that hangs is ended at its timeout, not left running.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "hung", "--health-cmd", "sleep 7777",
		"--health-timeout", "300ms", "--health-interval", "500ms", "--health-retries", "1", "busybox", "sleep", "1000")
	waitFor("hung", "unhealthy")
	r = run(t, env, "docker", "inspect", "--format", "{{(index .State.Health.Log 0).Output}}", "hung")
	if !strings.Contains(r.stdout, "Health check exceeded timeout") {
		t.Errorf("hung probe's output: %q", r.stdout)
	}
	// Probes come and go every 0.5 s; at no time is more than the current
	// one running.
	for range 5 {
		top := run(t, env, "docker", "top", "hung").stdout
		if n := strings.Count(top, "sleep 7777"); n > 1 {
			t.Fatalf("%d hung probes running:\n%s", n, top)
		}
		time.Sleep(300 * time.Millisecond) // samples spread over the probes' turns
	}
	run(t, env, "docker", "rm", "-f", "hc", "sick", "hung")
}

func TestE2ETerminalAndStdin(t *testing.T) {
	_, _, env := withBusybox(t)
	out := runInPty(t, env, []string{"echo typed-$((6*7))", "tty", "exit"}, "run", "-it", "--rm", "--network", "none", "busybox", "sh")
	if !strings.Contains(out, "typed-42") || !strings.Contains(out, "/dev/pts/0") {
		t.Errorf("docker run -it: %q", out)
	}
	// Under --init the shell gets the terminal's foreground.
	out = runInPty(t, env, []string{"echo fg-$((6*7)) $(cat /proc/self/stat | cut -d' ' -f5,8 | tr ' ' -)", "exit 4"}, "run", "-it", "--rm", "--network", "none", "--init", "busybox", "sh")
	if m := regexp.MustCompile(`fg-42 (\d+)-(\d+)`).FindStringSubmatch(out); m == nil || m[1] != m[2] {
		t.Errorf("docker run -it --init: the command's process group is not the terminal's foreground: %q", out)
	}
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "host1", "busybox", "sleep", "1000")
	out = runInPty(t, env, []string{"tty; exit 3"}, "exec", "-it", "host1", "sh")
	if !strings.Contains(out, "/dev/pts/") {
		t.Errorf("docker exec -it: %q", out)
	}
	// stdin without a terminal: piped through and closed.
	cmd := exec.Command("docker", "run", "-i", "--rm", "--network", "none", "busybox", "tr", "a-z", "A-Z")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("piped input\n")
	b, err := cmd.Output()
	if err != nil || string(b) != "PIPED INPUT\n" {
		t.Errorf("docker run -i: %q %v", b, err)
	}
	// A terminal's output is in the log too, unframed.
	run(t, env, "docker", "run", "-t", "--network", "none", "--name", "ttylog", "busybox", "echo", "on a tty")
	if r := run(t, env, "docker", "logs", "ttylog"); strings.TrimSpace(strings.ReplaceAll(r.stdout, "\r", "")) != "on a tty" {
		t.Errorf("logs of a -t container: %q %q", r.stdout, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "host1", "ttylog")
}

func TestE2ETopAndStats(t *testing.T) {
	_, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "spin", "-m", "64m", "--pids-limit", "20", "busybox",
		"sh", "-c", "while true; do :; done")
	waitProgram(t, env, "spin", "sh")
	r := run(t, env, "docker", "top", "spin")
	if r.code != 0 || !strings.Contains(r.stdout, "PID") || !strings.Contains(r.stdout, "while true") {
		t.Errorf("docker top: %q %q", r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "spin")
	f := strings.Fields(r.stdout)
	if len(f) < 5 || f[0] != "spin" || f[len(f)-1] != "1" || !strings.Contains(r.stdout, "/ 64MiB") {
		t.Fatalf("docker stats: %q %q", r.stdout, r.stderr)
	}
	if cpu, _ := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64); cpu < 50 {
		t.Errorf("a busy loop at %s CPU", f[1])
	}
	run(t, env, "docker", "rm", "-f", "spin")
	if r := run(t, env, "docker", "top", "nothing-here"); r.code == 0 {
		t.Error("top of an unknown container succeeded")
	}
}

func TestE2ECopy(t *testing.T) {
	p, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "cpc", "-v", "cpvol:/data", "busybox", "sh", "-c",
		"echo in-volume > /data/v; echo hi > /tmp/x; sleep 1000")
	waitExec(t, env, "cpc", "test", "-s", "/tmp/x")
	out := filepath.Join(p.dir, "out")
	os.MkdirAll(out, 0o755)
	if r := run(t, env, "docker", "cp", "cpc:/tmp/x", filepath.Join(out, "x")); r.code != 0 {
		t.Fatalf("cp from: %q", r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "x")); string(b) != "hi\n" {
		t.Errorf("copied %q", b)
	}
	run(t, env, "docker", "cp", "cpc:/data", out)
	if b, _ := os.ReadFile(filepath.Join(out, "data", "v")); string(b) != "in-volume\n" {
		t.Errorf("copied from a volume: %q", b)
	}
	// DIR/. copies what is in DIR; a symlink is copied as a symlink, its
	// target with -L; a symlink to a host path is never followed on the host.
	run(t, env, "docker", "exec", "cpc", "sh", "-c", "ln -s /tmp/x /tmp/lnk; ln -s /etc /tmp/etclink")
	contents := filepath.Join(p.dir, "contents")
	if r := run(t, env, "docker", "cp", "cpc:/data/.", contents); r.code != 0 {
		t.Errorf("cp DIR/.: %q", r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(contents, "v")); string(b) != "in-volume\n" {
		t.Errorf("cp DIR/. copied %q (want DIR's contents)", b)
	}
	run(t, env, "docker", "cp", "cpc:/tmp/lnk", filepath.Join(out, "lnk"))
	if target, err := os.Readlink(filepath.Join(out, "lnk")); err != nil || target != "/tmp/x" {
		t.Errorf("cp of a symlink: %q %v", target, err)
	}
	run(t, env, "docker", "cp", "-L", "cpc:/tmp/lnk", filepath.Join(out, "followed"))
	if b, _ := os.ReadFile(filepath.Join(out, "followed")); string(b) != "hi\n" {
		t.Errorf("cp -L of a symlink: %q", b)
	}
	var tarBuf strings.Builder
	tw0 := tar.NewWriter(&tarBuf)
	tw0.WriteHeader(&tar.Header{Name: "planted", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw0.Write([]byte("x"))
	tw0.Close()
	cl, _ := client.New("unix://" + p.sock)
	_, err := cl.DoHeader(context.Background(), "PUT", "/containers/cpc/archive", url.Values{"path": {"/tmp/etclink"}},
		strings.NewReader(tarBuf.String()), http.Header{"Content-Type": {"application/x-tar"}})
	cl.Close()
	if err == nil {
		t.Error("PUT archive through a symlink to /etc was accepted")
	}
	if _, err := os.Stat("/etc/planted"); err == nil {
		os.Remove("/etc/planted")
		t.Fatal("PUT archive wrote into the host's /etc")
	}
	in := filepath.Join(p.dir, "in")
	os.MkdirAll(in, 0o755)
	os.WriteFile(filepath.Join(in, "f.txt"), []byte("from the host\n"), 0o644)
	if r := run(t, env, "docker", "cp", in, "cpc:/tmp/"); r.code != 0 {
		t.Fatalf("cp to: %q", r.stderr)
	}
	if r := run(t, env, "docker", "exec", "cpc", "cat", "/tmp/in/f.txt"); r.stdout != "from the host\n" {
		t.Errorf("copied in: %q %q", r.stdout, r.stderr)
	}
	// Into a running container's "/" (its /proc/PID/root is a symlink
	// to lstat; it was refused as not a directory).
	if r := run(t, env, "docker", "cp", in, "cpc:/"); r.code != 0 {
		t.Errorf("cp to /: %q", r.stderr)
	}
	if r := run(t, env, "docker", "exec", "cpc", "cat", "/in/f.txt"); r.stdout != "from the host\n" {
		t.Errorf("copied into /: %q %q", r.stdout, r.stderr)
	}
	// A single file into "/": the CLI stats "/" first, which must be a
	// directory, not the symlink /proc/PID/root is.
	if r := run(t, env, "docker", "cp", filepath.Join(in, "f.txt"), "cpc:/"); r.code != 0 {
		t.Errorf("cp FILE ctr:/: %q", r.stderr)
	}
	if r := run(t, env, "docker", "exec", "cpc", "cat", "/f.txt"); r.stdout != "from the host\n" {
		t.Errorf("copied a file into /: %q %q", r.stdout, r.stderr)
	}
	hc, _ := client.New("unix://" + p.sock)
	if st, err := hc.ContainerStatPath(context.Background(), "cpc", "/"); err != nil || !st.Mode.IsDir() || st.LinkTarget != "" {
		t.Errorf("HEAD archive of /: %+v %v, want a directory", st, err)
	}
	hc.Close()
	if r := run(t, env, "docker", "cp", "cpc:/nothing", out); r.code == 0 || !strings.Contains(r.stderr, "Could not find the file /nothing") {
		t.Errorf("cp of a missing path: %q", r.stderr)
	}
	// A hostile tar (a "../" entry) sent to PUT archive: refused, nothing
	// written outside the target.
	var buf strings.Builder
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	c, _ := client.New("unix://" + p.sock)
	defer c.Close()
	_, err = c.DoHeader(context.Background(), "PUT", "/containers/cpc/archive", url.Values{"path": {"/tmp"}},
		strings.NewReader(buf.String()), http.Header{"Content-Type": {"application/x-tar"}})
	if err == nil || !strings.Contains(err.Error(), "path traversal") {
		t.Errorf("hostile tar into a container: %v", err)
	}
	if r := run(t, env, "docker", "exec", "cpc", "ls", "/escape"); r.code == 0 {
		t.Error("the hostile tar wrote /escape")
	}
	// A stopped container's files are there too.
	run(t, env, "docker", "stop", "-t", "0", "cpc")
	if r := run(t, env, "docker", "cp", "cpc:/etc/group", filepath.Join(out, "group")); r.code != 0 {
		t.Errorf("cp from a stopped container: %q", r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "-v", "cpc")
	run(t, env, "docker", "volume", "rm", "cpvol")
}

// Docker's default seccomp profile is on unless a container or the daemon
// turns it off; a profile of one's own is applied as given.
func TestE2ESeccomp(t *testing.T) {
	p, _, env := withBusybox(t)
	status := func(args ...string) result {
		return run(t, env, "docker", append(append([]string{"run", "--rm", "--network", "none"}, args...), "busybox", "grep", "^Seccomp:", "/proc/self/status")...)
	}
	if r := status(); r.code != 0 || !strings.Contains(r.stdout, "\t2") {
		t.Errorf("default: %d %q %q, want a filter (mode 2)", r.code, r.stdout, r.stderr)
	}
	for _, off := range [][]string{{"--security-opt", "seccomp=unconfined"}, {"--privileged"}} {
		if r := status(off...); r.code != 0 || !strings.Contains(r.stdout, "\t0") {
			t.Errorf("%v: %d %q %q, want no filter", off, r.code, r.stdout, r.stderr)
		}
	}
	// The profile decides: creating a user namespace needs CAP_SYS_ADMIN
	// under Docker's profile, not under none.
	r := run(t, env, "docker", "run", "--rm", "--network", "none", "busybox", "unshare", "-U", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("unshare -U under the default profile: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true"); r.code != 0 {
		t.Errorf("unshare -U unconfined: %d %q", r.code, r.stderr)
	}
	// A custom profile (the docker CLI sends the file's text).
	prof := filepath.Join(p.dir, "no-mkdir.json")
	if err := os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "docker", "run", "--rm", "--network", "none", "--security-opt", "seccomp="+prof, "busybox", "mkdir", "/tmp/d")
	if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("mkdir under a profile denying it: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "busybox", "mkdir", "/tmp/d"); r.code != 0 {
		t.Errorf("mkdir under the default profile: %d %q", r.code, r.stderr)
	}
	// Bad profiles are refused at create, with nothing left behind.
	bad := filepath.Join(p.dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction": 7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "docker", "create", "--network", "none", "--security-opt", "seccomp="+bad, "busybox")
	if r.code == 0 || !strings.Contains(r.stderr, "Decoding seccomp profile failed") {
		t.Errorf("bad profile: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "ps", "-aq"); r.stdout != "" {
		t.Errorf("a refused create left %q", r.stdout)
	}
	if r := run(t, env, "docker", "info", "--format", "{{.SecurityOptions}}"); !strings.Contains(r.stdout, "name=seccomp,profile=builtin") {
		t.Errorf("docker info security options: %q %q", r.stdout, r.stderr)
	}
}

// The daemon's --seccomp-profile applies to containers that name none.
func TestE2EDaemonSeccompProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "no-mkdir.json")
	if err := os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, env := withBusybox(t, "--seccomp-profile", prof)
	r := run(t, env, "docker", "run", "--rm", "--network", "none", "busybox", "mkdir", "/tmp/d")
	if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("mkdir under the daemon's profile: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "--security-opt", "seccomp=builtin", "busybox", "mkdir", "/tmp/d"); r.code != 0 {
		t.Errorf("mkdir with seccomp=builtin: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "info", "--format", "{{.SecurityOptions}}"); !strings.Contains(r.stdout, "profile=custom") {
		t.Errorf("docker info: %q", r.stdout)
	}
}

// "system df" and "system prune" with the docker CLI (which asks for the
// answer's shape before API 1.52) and with ours (the current shape).
func TestE2ESystemDFAndPrune(t *testing.T) {
	p, _, env := withBusybox(t)
	bin := engineBin(t)
	ours := func(args ...string) result {
		return run(t, nil, bin, append([]string{"-H", "unix://" + p.sock}, args...)...)
	}
	run(t, env, "docker", "volume", "create", "named")
	r := run(t, env, "docker", "run", "--network", "none", "--name", "writer", "-v", "named:/v", "-v", "/anon", "busybox", "sh", "-c",
		"dd if=/dev/zero of=/v/f bs=1k count=100 2>/dev/null; dd if=/dev/zero of=/x bs=1k count=50 2>/dev/null")
	if r.code != 0 {
		t.Fatalf("run: %d %q", r.code, r.stderr)
	}
	// 50 KiB written in the container, 100 KiB in the named volume.
	for _, df := range []result{run(t, env, "docker", "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}"),
		ours("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}")} {
		for _, want := range []string{"Images 1 1 ", "Containers 1 0 51.2kB", "Local Volumes 2 2 102.4kB", "Build Cache 0 0 0B"} {
			if !strings.Contains(df.stdout, want) {
				t.Errorf("system df: no %q in %q (%q)", want, df.stdout, df.stderr)
			}
		}
	}
	if r := run(t, env, "docker", "system", "df", "-v"); !strings.Contains(r.stdout, "writer") || !regexp.MustCompile(`\nnamed +1 +102.4kB\n`).MatchString(r.stdout) {
		t.Errorf("system df -v: %q %q", r.stdout, r.stderr)
	}
	if r := ours("system", "df", "-v"); !regexp.MustCompile(`\nnamed +1 +102.4kB\n`).MatchString(r.stdout) || !strings.Contains(r.stdout, "writer") {
		t.Errorf("our system df -v: %q %q", r.stdout, r.stderr)
	}
	// The current shape (our client speaks the newest API version).
	c, err := client.New("unix://" + p.sock)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(context.Background(), "GET", "/system/df", url.Values{"type": {"volume"}, "verbose": {"1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var du system.DiskUsage
	if err := json.NewDecoder(resp.Body).Decode(&du); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if du.ImageUsage != nil || du.VolumeUsage == nil || du.VolumeUsage.TotalCount != 2 || du.VolumeUsage.TotalSize != 102400 || len(du.VolumeUsage.Items) != 2 {
		t.Errorf("/system/df?type=volume: %+v", du.VolumeUsage)
	}
	if _, err := c.Do(context.Background(), "GET", "/system/df", url.Values{"type": {"networks"}}, nil); err == nil || !strings.Contains(err.Error(), "invalid type: networks") {
		t.Errorf("bad type: %v", err)
	}
	// Checkpoints are left out (built without CRIU): 501, not a 404.
	if _, err := c.Do(context.Background(), "GET", "/containers/writer/checkpoints", nil, nil); err == nil || !strings.Contains(err.Error(), "does not support checkpoints") {
		t.Errorf("checkpoints: %v", err)
	}

	// docker system prune: the stopped container, its anonymous volume,
	// and (with -a) the image it used; the named volume stays.
	r = run(t, env, "docker", "system", "prune", "-af", "--volumes")
	if r.code != 0 || !strings.Contains(r.stdout, "Deleted Containers:") || !strings.Contains(r.stdout, "Deleted Images:") ||
		!strings.Contains(r.stdout, "Deleted Volumes:") || !strings.Contains(r.stdout, "Total reclaimed space:") {
		t.Errorf("docker system prune: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "volume", "ls", "-q"); r.stdout != "named\n" {
		t.Errorf("volumes after prune: %q", r.stdout)
	}
	if r := run(t, env, "docker", "images", "-q"); r.stdout != "" {
		t.Errorf("images after prune -a: %q", r.stdout)
	}
	// Ours, on a stopped container only.
	if r := ours("load", "-i", filepath.Join(p.dir, "busybox.tar")); r.code != 0 {
		t.Fatal(r.stderr)
	}
	run(t, env, "docker", "run", "--network", "none", "--name", "again", "busybox", "true")
	r = ours("system", "prune", "-f")
	if r.code != 0 || !strings.Contains(r.stdout, "Deleted Containers:") || !strings.Contains(r.stdout, "Total reclaimed space:") {
		t.Errorf("our system prune: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "ps", "-aq"); r.stdout != "" {
		t.Errorf("containers after our prune: %q", r.stdout)
	}
}

// Attached output comes straight from the container, not from its log: a
// prompt without a newline reaches the client before the container has
// its answer.
func TestE2EAttachPartialLine(t *testing.T) {
	_, _, env := withBusybox(t)
	cmd := exec.Command("docker", "run", "--rm", "-i", "--network", "none", "busybox", "sh", "-c", `printf 'ready> '; read x; echo "got $x"`)
	cmd.Env = append(os.Environ(), env...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	prompt := make(chan string, 1)
	go func() {
		b := make([]byte, 7)
		_, err := io.ReadFull(out, b)
		if err != nil {
			prompt <- err.Error()
			return
		}
		prompt <- string(b)
	}()
	select {
	case p := <-prompt:
		if p != "ready> " {
			t.Fatalf("prompt %q", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no prompt before the container had its input")
	}
	io.WriteString(in, "hi\n")
	in.Close()
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil || string(rest) != "got hi\n" {
		t.Errorf("after the input: %q, %v", rest, err)
	}
}

// After a reboot (daemon, monitor and containers all gone) a container
// with a restart policy starts with the daemon, not after the backoff its
// restart count has grown to: that count survives reboots, and a device
// without a real-time clock cannot tell how long the last run lasted.
func TestE2ERestartAfterReboot(t *testing.T) {
	p, d, env := withBusybox(t)
	bin := engineBin(t)
	ctl := t.TempDir()
	inspect := func(f string) string {
		return strings.TrimSpace(run(t, env, "docker", "inspect", "--format", f, "svc").stdout)
	}
	// It fails until /ctl/run exists: its restart count grows to 7, for a
	// backoff of 12.8 s.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "svc", "--restart", "always", "-v", ctl+":/ctl",
		"busybox", "sh", "-c", "test -f /ctl/run && exec sleep 1000; exit 1")
	deadline := time.Now().Add(60 * time.Second)
	for inspect("{{.RestartCount}}") != "7" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	os.WriteFile(filepath.Join(ctl, "run"), nil, 0o644)
	for inspect("{{.State.Running}}") != "true" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	n, _ := strconv.Atoi(inspect("{{.RestartCount}}"))
	if inspect("{{.State.Running}}") != "true" || n < 7 {
		t.Fatalf("before the reboot: running %s, restart count %d", inspect("{{.State.Running}}"), n)
	}
	// The reboot: everything dies at once.
	pid, _ := strconv.Atoi(inspect("{{.State.Pid}}"))
	d.cmd.Process.Kill()
	<-d.done
	stopMonitor(p)
	syscall.Kill(pid, syscall.SIGKILL)
	start := time.Now()
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	for inspect("{{.State.Running}}") != "true" && time.Since(start) < 10*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := inspect("{{.State.Running}} {{.RestartCount}}"), fmt.Sprintf("true %d", n+1); got != want {
		t.Errorf("after the reboot: %q, want %q, %s after the daemon started (the backoff would be %v)", got, want,
			time.Since(start).Round(time.Millisecond), 100*time.Millisecond<<n)
	}
	run(t, env, "docker", "rm", "-f", "svc")
}

// The cgroup namespace: Docker's default for the host's cgroup version,
// recorded at create, and --cgroupns private showing the container its
// own cgroups as the root.
func TestE2ECgroupns(t *testing.T) {
	_, _, env := withBusybox(t)
	want := "host"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		want = "private"
	}
	run(t, env, "docker", "create", "--network", "none", "--name", "dflt", "busybox", "true")
	if r := run(t, env, "docker", "inspect", "--format", "{{.HostConfig.CgroupnsMode}}", "dflt"); strings.TrimSpace(r.stdout) != want {
		t.Errorf("default cgroupns: %q, want %q", r.stdout, want)
	}
	r := run(t, env, "docker", "run", "--rm", "--network", "none", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup")
	if r.code != 0 || r.stdout == "" {
		t.Fatalf("--cgroupns private: %d %q", r.code, r.stderr)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("--cgroupns private: %q is not the namespace's root", l)
		}
	}
}

// Our own client's -t: the local terminal in raw mode, keys and output
// passed through, for run and exec.
func TestE2EOurClientTerminal(t *testing.T) {
	p, _, env := withBusybox(t)
	bin := engineBin(t)
	host := []string{"-H", "unix://" + p.sock}
	out := runProgramInPty(t, nil, []string{"echo typed-$((6*7))", "tty", "exit 3"}, bin, append(host, "run", "-it", "--rm", "--network", "none", "busybox", "sh")...)
	if !strings.Contains(out, "typed-42") || !strings.Contains(out, "/dev/pts/0") {
		t.Errorf("run -it: %q", out)
	}
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "tty1", "busybox", "sleep", "1000")
	out = runProgramInPty(t, nil, []string{"tty; echo exec-$((6*7)); exit"}, bin, append(host, "exec", "-it", "tty1", "sh")...)
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "exec-42") {
		t.Errorf("exec -it: %q", out)
	}
	// -it needs a terminal to read from.
	r := run(t, nil, bin, append(host, "run", "-it", "--rm", "--network", "none", "busybox", "true")...)
	if r.code == 0 || !strings.Contains(r.stderr, "the input device is not a TTY") {
		t.Errorf("run -it without a terminal: %d %q", r.code, r.stderr)
	}
	// -t alone: the terminal's output, unframed.
	r = run(t, nil, bin, append(host, "run", "-t", "--rm", "--network", "none", "busybox", "echo", "on a tty")...)
	if r.code != 0 || strings.TrimSpace(strings.ReplaceAll(r.stdout, "\r", "")) != "on a tty" {
		t.Errorf("run -t: %d %q %q", r.code, r.stdout, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "tty1")
}

// attach over a WebSocket (browser consoles): output in binary frames,
// input to the container.
func TestE2EAttachWebSocket(t *testing.T) {
	p, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "-i", "--network", "none", "--name", "wsc", "busybox", "sh", "-c", `echo ready; read x; echo "got $x"; echo oops >&2`)
	conn, err := net.Dial("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	// A page of another origin is refused; the API's own is not.
	cfg, _ := websocket.NewConfig("ws://engine/v1.45/containers/wsc/attach/ws?stream=1&stdin=1&stdout=1&stderr=1&logs=1", "http://evil.example")
	if ws, err := websocket.NewClient(cfg, conn); err == nil {
		ws.Close()
		t.Error("a cross-origin WebSocket attach was accepted")
	}
	conn.Close()
	if conn, err = net.Dial("unix", p.sock); err != nil {
		t.Fatal(err)
	}
	cfg, _ = websocket.NewConfig("ws://engine/v1.45/containers/wsc/attach/ws?stream=1&stdin=1&stdout=1&stderr=1&logs=1", "http://engine")
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("websocket handshake: %v", err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(30 * time.Second))
	var got strings.Builder
	buf := make([]byte, 4096)
	// The first frame by hand, for its type.
	fr, err := ws.NewFrameReader()
	if err != nil {
		t.Fatal(err)
	}
	if fr.PayloadType() != websocket.BinaryFrame {
		t.Errorf("payload type %d, want binary frames (API 1.42 and later)", fr.PayloadType())
	}
	first, _ := io.ReadAll(fr)
	got.Write(first)
	for !strings.Contains(got.String(), "ready\n") {
		n, err := ws.Read(buf)
		if err != nil {
			t.Fatalf("read %q: %v", got.String(), err)
		}
		got.Write(buf[:n])
	}
	if _, err := ws.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := ws.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break // the container's output has ended
		}
	}
	// stdout and stderr are two pipes: their order between them is not kept.
	lines := strings.Split(strings.TrimSpace(got.String()), "\n")
	sort.Strings(lines)
	if strings.Join(lines, ",") != "got hello,oops,ready" {
		t.Errorf("over the WebSocket: %q", got.String())
	}
}

// Each container joins a session keyring of its own (runc's default, as
// with Docker), named after it, so that keys one container adds are not
// another's. Inside, /proc/keys is masked (Docker's default masked
// paths); the host's root sees the keyrings.
func TestE2ESessionKeyring(t *testing.T) {
	_, _, env := withBusybox(t)
	var ids []string
	for range 2 {
		r := run(t, env, "docker", "run", "-d", "--network", "none", "busybox", "sleep", "1000")
		if r.code != 0 {
			t.Fatal(r.stderr)
		}
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	keys, err := os.ReadFile("/proc/keys")
	if err != nil {
		t.Skipf("no /proc/keys: %v", err)
	}
	for _, id := range ids {
		if !strings.Contains(string(keys), "_ses."+id) {
			t.Errorf("no session keyring of container %s in /proc/keys:\n%s", id[:12], keys)
		}
	}
	if r := run(t, env, "docker", "exec", ids[0], "cat", "/proc/keys"); r.stdout != "" {
		t.Errorf("/proc/keys is not masked in a container: %q", r.stdout)
	}
	run(t, env, "docker", "rm", "-f", ids[0], ids[1])
}

// The wait conditions, as Docker: not-running returns at once for a
// stopped container and waits through a pause; next-exit waits for the
// next exit whatever the state; removed of a stopped container waits for
// its removal only.
func TestE2EWaitConditions(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	c := apiClient(t, p)
	ctx := context.Background()
	type waited struct {
		code int
		err  error
	}
	wait := func(id, condition string) chan waited {
		t.Helper()
		res, err := c.ContainerWait(ctx, id, condition)
		if err != nil {
			t.Fatalf("wait %s %s: %v", id, condition, err)
		}
		ch := make(chan waited, 1)
		go func() { code, err := res(); ch <- waited{code, err} }()
		return ch
	}
	got := func(ch chan waited, what string) waited {
		t.Helper()
		select {
		case w := <-ch:
			return w
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: still waiting", what)
		}
		return waited{}
	}
	quiet := func(ch chan waited, what string) {
		t.Helper()
		select {
		case w := <-ch:
			t.Fatalf("%s returned %+v too early", what, w)
		case <-time.After(500 * time.Millisecond):
		}
	}

	docker("create", "--network", "none", "--name", "idle", "busybox", "true")
	removed := wait("idle", "removed")
	quiet(removed, "removed of a created container")
	docker("rm", "idle")
	if w := got(removed, "removed"); w.err != nil || w.code != 0 {
		t.Errorf("removed: %+v", w)
	}

	if r := run(t, env, "docker", "run", "--network", "none", "--name", "done", "busybox", "sh", "-c", "exit 5"); r.code != 5 {
		t.Fatalf("docker run: exit %d, want 5 (%s)", r.code, r.stderr)
	}
	if w := got(wait("done", "not-running"), "not-running of an exited container"); w.code != 5 {
		t.Errorf("not-running of an exited container: %+v", w)
	}
	next := wait("done", "next-exit")
	quiet(next, "next-exit of an exited container")
	run(t, env, "docker", "start", "done")
	if w := got(next, "next-exit"); w.code != 5 {
		t.Errorf("next-exit: %+v", w)
	}
	docker("rm", "done")

	docker("run", "-d", "--network", "none", "--name", "sleeper", "busybox", "sleep", "1000")
	docker("pause", "sleeper")
	notRunning := wait("sleeper", "not-running")
	quiet(notRunning, "not-running of a paused container")
	docker("unpause", "sleeper")
	docker("kill", "sleeper")
	if w := got(notRunning, "not-running of a killed container"); w.code != 137 {
		t.Errorf("a killed container's code: %+v, want 137", w)
	}
	docker("rm", "sleeper")
}

// Execs as Docker's: the container's extra groups; and an exec made with
// a TTY but started without one (dockerode's default
// start request) is framed, as Docker frames it: the start request's Tty
// decides, and the client demultiplexes.
func TestE2EExecStartFraming(t *testing.T) {
	p, _, env := withBusybox(t)
	dockerOK(t, env)("run", "-d", "--network", "none", "--group-add", "4321", "--name", "ex", "busybox", "sleep", "1000")
	// The container's --group-add applies to its execs too.
	if r := run(t, env, "docker", "exec", "ex", "id", "-G"); !slices.Contains(strings.Fields(r.stdout), "4321") {
		t.Errorf("exec's groups %q lack the container's --group-add 4321 (%s)", r.stdout, r.stderr)
	}
	c := apiClient(t, p)
	ctx := context.Background()
	for _, tc := range []struct {
		startTty bool
		framed   bool
	}{{false, true}, {true, false}} {
		id, err := c.ExecCreate(ctx, "ex", containertypes.ExecCreateRequest{Tty: true, AttachStdout: true, Cmd: []string{"echo", "hello"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(containertypes.ExecStartRequest{Tty: tc.startTty})
		conn, err := c.Hijack(ctx, "/exec/"+id+"/start", body)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(conn)
		conn.Close()
		framed := len(out) >= 8 && out[0] == 1 && out[1] == 0 && out[2] == 0 && out[3] == 0
		if framed != tc.framed || !bytes.Contains(out, []byte("hello")) {
			t.Errorf("start Tty=%v: %q, framed %v, want %v", tc.startTty, out, framed, tc.framed)
		}
	}
	run(t, env, "docker", "rm", "-f", "ex")
}

// docker commit: an image of the container's image and what it changed
// (files added and changed, one of the image's deleted, a directory made
// opaque, a hard link), with the container's settings and --change's.
func TestE2ECommit(t *testing.T) {
	_, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	docker("run", "--network", "none", "--name", "src", "-e", "FROM_RUN=1", "busybox", "sh", "-c",
		"echo new > /added; echo changed > /etc/motd; rm /bin/true; mkdir -p /d; echo x > /d/x; ln /added /linked; "+
			"mkdir -p /usr/fresh")
	id := docker("commit", "--change", "LABEL made=commit", "--change", `CMD ["cat", "/added"]`, "-m", "a message", "src", "committed:1")
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	if got := docker("run", "--rm", "--network", "none", "committed:1"); got != "new" {
		t.Errorf("the committed CMD printed %q", got)
	}
	out := docker("run", "--rm", "--network", "none", "committed:1", "sh", "-c",
		`cat /etc/motd /d/x; test -e /bin/true && echo true-still-there; ls /usr; echo "$FROM_RUN"; stat -c %h /linked`)
	if out != "changed\nx\nfresh\n1\n2" {
		t.Errorf("the committed image's files and settings: %q", out)
	}
	if got := docker("image", "inspect", "--format", `{{index .Config.Labels "made"}} {{len .RootFS.Layers}}`, "committed:1"); got != "commit 2" {
		t.Errorf("image inspect: %q, want the label and one layer more", got)
	}
	if got := docker("history", "--format", "{{.Comment}}", "committed:1"); !strings.HasPrefix(got, "a message") {
		t.Errorf("history: %q", got)
	}
	// On top of a committed image: a directory of it replaced (overlayfs
	// makes it opaque: nothing of the lower one shows through).
	docker("run", "--network", "none", "--name", "src2", "committed:1", "sh", "-c", "rm -rf /d; mkdir /d; echo y > /d/y")
	docker("commit", "src2", "committed:2")
	if got := docker("run", "--rm", "--network", "none", "committed:2", "ls", "/d"); got != "y" {
		t.Errorf("a replaced directory holds %q, want only y", got)
	}
	docker("rm", "src", "src2")
	docker("rmi", "committed:2", "committed:1")
}
