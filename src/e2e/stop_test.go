//go:build e2e

package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// docker stop -s and restart -s: the signal given, by name or number,
// instead of the container's stop signal; one Docker cannot read is
// refused in its words, and a stopped container has nothing to stop.
func TestE2EStopSignal(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	since := strconv.FormatInt(time.Now().Unix(), 10)
	docker("run", "-d", "--network", "none", "--name", "sig", "busybox", "sh", "-c",
		`trap 'echo got USR1; exit 3' USR1; trap 'echo got TERM; exit 4' TERM; echo ready; while :; do sleep 0.1; done`)
	ready := func(n int) {
		t.Helper()
		eventually(t, 20*time.Second, "sig ready", func() bool {
			return strings.Count(run(t, env, "docker", "logs", "sig").stdout, "ready") == n
		})
	}
	ready(1)
	if r := run(t, env, "docker", "stop", "-s", "FOO", "sig"); r.code != 1 || !strings.Contains(r.stderr, "cannot stop container: sig: invalid signal: FOO") {
		t.Errorf("stop -s FOO: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "restart", "-s", "SIGNOPE", "sig"); r.code != 1 || !strings.Contains(r.stderr, "Cannot restart container sig: invalid signal: SIGNOPE") {
		t.Errorf("restart -s SIGNOPE: %d %q", r.code, r.stderr)
	}
	if code, body := apiCall(t, p, "POST", "/v1.45/containers/sig/stop?signal=0", ""); code != 500 || !strings.Contains(body, "invalid signal: 0") {
		t.Errorf("stop?signal=0: %d %s", code, body)
	}
	// By number (SIGUSR1 is 10 on every architecture the engine builds
	// for but MIPS, which it does not), through restart.
	docker("restart", "-s", "10", "sig")
	ready(2)
	docker("stop", "-s", "usr1", "sig")
	if got := docker("inspect", "--format", "{{.State.ExitCode}}", "sig"); got != "3" {
		t.Errorf("exit code after stop -s usr1: %s", got)
	}
	if logs := run(t, env, "docker", "logs", "sig").stdout; strings.Count(logs, "got USR1") != 2 || strings.Contains(logs, "got TERM") {
		t.Errorf("logs: %q", logs)
	}
	if r := run(t, env, "docker", "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "event=kill", "--format", "{{.Actor.Attributes.signal}}"); r.stdout != "10\n10\n" {
		t.Errorf("kill events' signals: %q", r.stdout)
	}
	// Stopped: nothing to do (304), whatever the signal, as Docker.
	if code, _ := apiCall(t, p, "POST", "/v1.45/containers/sig/stop?signal=FOO", ""); code != 304 {
		t.Errorf("stop of a stopped container with a bad signal: %d", code)
	}
	docker("rm", "sig")
}

// docker rm --link: the engine makes no links, so it removes none, and
// never the container: a link name names nothing (404, Docker's words),
// a container's own name is its "default link name", refused as Docker
// refuses it.
func TestE2ERemoveLink(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	docker("create", "--network", "none", "--name", "par", "busybox", "true")
	for _, c := range []struct{ name, want string }{
		{"par", "Conflict, cannot remove the default link name of the container"},
		{"par/alias", "No such container: par/alias"},
		{"/par/alias", "No such container: par/alias"},
		{"nothing", "No such container: nothing"},
	} {
		if r := run(t, env, "docker", "rm", "--link", c.name); r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("rm --link %s: %d %q, want %q", c.name, r.code, r.stderr, c.want)
		}
	}
	if code, body := apiCall(t, p, "DELETE", "/v1.45/containers/par?link=1", ""); code != 500 { // Docker's status
		t.Errorf("DELETE par?link=1: %d %s", code, body)
	}
	if code, body := apiCall(t, p, "DELETE", "/v1.45/containers/par/alias?link=1", ""); code != 404 || !strings.Contains(body, "No such container: par/alias") {
		t.Errorf("DELETE par/alias?link=1: %d %s", code, body)
	}
	if got := docker("ps", "-aq", "--filter", "name=^par$"); got == "" {
		t.Error("rm --link removed the container")
	}
	docker("rm", "par")
}
