//go:build e2e

package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// docker top with ps arguments runs the host's ps with them and keeps
// the container's rows, as Docker; each top is a "top" event.
func TestE2ETopPsArgs(t *testing.T) {
	_, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	since := strconv.FormatInt(time.Now().Unix(), 10)
	docker("run", "-d", "--name", "tp", "--network", "none", "busybox", "sleep", "1000")
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "tp") })
	waitProgram(t, env, "tp", "sleep")
	pid := docker("inspect", "--format", "{{.State.Pid}}", "tp")
	out := strings.Split(docker("top", "tp", "-o", "pid,comm"), "\n")
	if len(out) != 2 || strings.Join(strings.Fields(out[0]), " ") != "PID COMMAND" || strings.Join(strings.Fields(out[1]), " ") != pid+" sleep" {
		t.Errorf("top -o pid,comm: %q, want the header and %s sleep", out, pid)
	}
	// ps's BSD syntax, and f, which ps does not take with -q.
	for _, args := range [][]string{{"aux"}, {"axf"}} {
		out := strings.Split(docker(append([]string{"top", "tp"}, args...)...), "\n")
		if len(out) != 2 || !strings.Contains(out[0], "PID") || !strings.Contains(out[1], "sleep 1000") {
			t.Errorf("top %v: %q, want the header and sleep's row", args, out)
		}
	}
	if r := run(t, env, "docker", "top", "tp", "-o", "pid", "-o", "x=PID"); r.code != 1 || !strings.Contains(r.stderr, `specifying "x=PID" is not allowed`) {
		t.Errorf("top -o x=PID: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "top", "tp", "--nosuchoption"); r.code != 1 || !strings.Contains(r.stderr, "ps: ") {
		t.Errorf("top --nosuchoption: %d %q", r.code, r.stderr)
	}
	// Each top that answered is a "top" event, as Docker's: the three
	// above with arguments, and one without.
	docker("top", "tp")
	if got := docker("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=top", "--format", "{{.Actor.Attributes.name}}"); got != "tp\ntp\ntp\ntp" {
		t.Errorf("top events: %q, want four of tp", got)
	}
}
