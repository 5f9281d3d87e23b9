package container

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	bolt "go.etcd.io/bbolt"
)

var allStatuses = []string{statusGone, StatusCreated, StatusRunning, StatusPaused, StatusRestarting, StatusExited, StatusRemoving}
var allEvents = []event{evCreate, evStart, evStartFailed, evExit, evPause, evUnpause, evRestartScheduled, evRestartCancelled, evRemove}

// lastRun is a state with every field of a finished run set.
func lastRun(status string) State {
	t := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	return State{Status: status, Pid: 42, ExitCode: 3, OOMKilled: true, Error: "old", StartedAt: t, FinishedAt: t.Add(time.Minute),
		Health: &containertypes.Health{Status: containertypes.Healthy}}
}

func TestTransitions(t *testing.T) {
	allowed := map[string]string{} // "from/event" → to
	for _, tr := range transitions {
		k := tr.from + "/" + string(tr.ev)
		if _, dup := allowed[k]; dup {
			t.Errorf("%s appears twice in the table", k)
		}
		allowed[k] = tr.to
	}
	for _, from := range allStatuses {
		for _, ev := range allEvents {
			to, ok := allowed[from+"/"+string(ev)]
			s := lastRun(from)
			before := s
			err := s.transition(ev, outcome{ExitCode: 7})
			if !ok {
				if err == nil || !refused(err) || errdefs.KindOf(err) != errdefs.KindConflict {
					t.Errorf("%q %s: err %v, want a refused transition (Conflict)", from, ev, err)
				}
				if s.Status != before.Status || s.Pid != before.Pid || s.ExitCode != before.ExitCode || s.Error != before.Error {
					t.Errorf("%q %s: refused, yet the state changed to %+v", from, ev, s)
				}
				continue
			}
			if err != nil {
				t.Errorf("%q %s: %v, want %q", from, ev, err, to)
				continue
			}
			if s.Status != to {
				t.Errorf("%q %s: status %q, want %q", from, ev, s.Status, to)
			}
		}
	}
}

func TestTransitionFields(t *testing.T) {
	started := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	s := lastRun(StatusExited)
	if err := s.transition(evStart, outcome{Pid: 99, StartedAt: started}); err != nil {
		t.Fatal(err)
	}
	if want := (State{Status: StatusRunning, Pid: 99, StartedAt: started}); !stateEqual(s, want) {
		t.Errorf("start: %+v, want a fresh state %+v", s, want)
	}

	finished := started.Add(time.Hour)
	s = lastRun(StatusRunning)
	s.OOMKilled = false
	if err := s.transition(evExit, outcome{ExitCode: 137, OOMKilled: true, Error: "killed", FinishedAt: finished}); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusExited || s.Pid != 0 || s.ExitCode != 137 || !s.OOMKilled || s.Error != "killed" || !s.FinishedAt.Equal(finished) || s.StartedAt.IsZero() {
		t.Errorf("exit: %+v", s)
	}

	s = State{Status: StatusCreated}
	if err := s.transition(evStartFailed, outcome{ExitCode: 128, Error: "no such image"}); err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusCreated || s.ExitCode != 128 || s.Error != "no such image" {
		t.Errorf("start-failed: %+v", s)
	}

	s = lastRun(StatusRunning)
	before := s
	if err := s.transition(evPause, outcome{ExitCode: 1, Pid: 1}); err != nil {
		t.Fatal(err)
	}
	before.Status = StatusPaused
	if !stateEqual(s, before) {
		t.Errorf("pause changed more than the status: %+v", s)
	}
}

func TestTransitionRefusedWording(t *testing.T) {
	s := State{Status: StatusPaused}
	err := s.transition(evStart, outcome{})
	if err == nil || err.Error() != "cannot start a paused container, try unpause instead" {
		t.Errorf("start of a paused container: %v", err)
	}
	s = State{Status: StatusExited}
	if err := s.transition(evExit, outcome{}); err == nil || !strings.Contains(err.Error(), "exit") || !strings.Contains(err.Error(), StatusExited) {
		t.Errorf("exit of an exited container: %v", err)
	}
}

func stateEqual(a, b State) bool {
	return a.Status == b.Status && a.Pid == b.Pid && a.ExitCode == b.ExitCode && a.OOMKilled == b.OOMKilled &&
		a.Error == b.Error && a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) &&
		(a.Health == nil) == (b.Health == nil)
}

// TestTransitionsDocumented keeps docs/containers.md's table the code's.
func TestTransitionsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/containers.md")
	if err != nil {
		t.Skip(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n### States\n")
	if !ok {
		t.Fatal("docs/containers.md has no States subsection")
	}
	sec, _, _ = strings.Cut(sec, "\n#")
	row := regexp.MustCompile("(?m)^\\| `?([a-z()-]+|\\(none\\))`? \\| ([a-z-]+) \\| `?([a-z()-]+|\\(none\\))`? \\|$")
	status := func(s string) string {
		if s == "(none)" {
			return statusGone
		}
		return s
	}
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(sec, -1) {
		if m[2] == "event" || m[2] == "---" {
			continue
		}
		documented[status(m[1])+"/"+m[2]+"/"+status(m[3])] = true
	}
	for _, tr := range transitions {
		k := tr.from + "/" + string(tr.ev) + "/" + tr.to
		if !documented[k] {
			t.Errorf("transition %s is not in docs/containers.md", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("docs/containers.md has transition %s, the code does not", k)
	}
}

// TestManagerTransition checks the record side: a refused transition
// writes nothing, and a record is removed only from a status that allows it.
func TestManagerTransition(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "engine.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := &Manager{records: recordStore{db}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.records.init(); err != nil {
		t.Fatal(err)
	}
	c := &Container{ID: newID(), Name: "t", Config: &containertypes.Config{}, HostConfig: &containertypes.HostConfig{}}
	if err := c.State.transition(evCreate, outcome{}); err != nil {
		t.Fatal(err)
	}
	if err := m.records.add(c); err != nil {
		t.Fatal(err)
	}
	if _, err := m.transition(c.ID, evPause, outcome{}, nil); !refused(err) {
		t.Fatalf("pause of a created container: %v", err)
	}
	also := false
	r, err := m.transition(c.ID, evStart, outcome{Pid: 5}, func(*Container) { also = true })
	if err != nil || r.State.Status != StatusRunning || r.State.Pid != 5 || !also {
		t.Fatalf("start: %+v, %v (also %v)", r, err, also)
	}
	removable := func(r *Container) error { _, err := nextStatus(r.State.Status, evRemove); return err }
	if err := m.records.remove(c.ID, removable); !refused(err) {
		t.Fatalf("remove of a running container: %v", err)
	}
	if _, err := m.transitionOrLog(c.ID, evStart, outcome{}); !refused(err) {
		t.Fatalf("start of a running container: %v", err)
	}
	if r, _ := m.records.get(c.ID); r.State.Pid != 5 {
		t.Fatalf("a refused transition wrote the record: %+v", r.State)
	}
	if _, err := m.transition(c.ID, evExit, outcome{ExitCode: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.records.remove(c.ID, removable); err != nil {
		t.Fatal(err)
	}
	if _, err := m.transition(c.ID, evStart, outcome{}, nil); errdefs.KindOf(err) != errdefs.KindNotFound {
		t.Fatalf("start of a removed container: %v", err)
	}
}

func TestStartFailure(t *testing.T) {
	id := "0123456789abcdef"
	for _, tc := range []struct {
		msg  string
		code int
		kind errdefs.Kind
	}{
		{`exec: "nosuchcmd": executable file not found in $PATH`, 127, errdefs.KindInvalidParameter},
		{`exec: "/bin/gone": stat /bin/gone: no such file or directory`, 127, errdefs.KindInvalidParameter},
		{`exec: "/etc/passwd": permission denied`, 126, errdefs.KindInvalidParameter},
		{`mount /x to rootfs: not a directory`, 127, errdefs.KindInvalidParameter},
		{`open /sys/fs/cgroup/x: no such file or directory`, 128, errdefs.KindUnavailable},
		{`the monitor went away`, 128, errdefs.KindUnavailable},
	} {
		cmd := "nosuchcmd"
		if strings.Contains(tc.msg, "/bin/gone") {
			cmd = "/bin/gone"
		}
		err := startFailure(id, cmd, errors.New(tc.msg))
		if startExitCode(err) != tc.code || errdefs.KindOf(err) != tc.kind || !strings.Contains(err.Error(), "failed to start container 0123456789ab") {
			t.Errorf("%q: code %d kind %v (%v), want %d %v", tc.msg, startExitCode(err), errdefs.KindOf(err), err, tc.code, tc.kind)
		}
	}
}

// An exit's release of the run's mount and network sandbox (before the
// record says exited, see finish) happens only while the record says the
// run goes on: a start in progress of a container not running is never
// undone by a stale exit.
func TestExitAllowed(t *testing.T) {
	for status, want := range map[string]bool{
		StatusRunning: true, StatusPaused: true,
		StatusCreated: false, StatusExited: false, StatusRestarting: false, statusGone: false,
	} {
		if got := exitAllowed(status); got != want {
			t.Errorf("exitAllowed(%q) = %v, want %v", status, got, want)
		}
	}
}
