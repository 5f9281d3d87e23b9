package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/balena-os/balena-engine/src/logs"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// recoverState takes back what a previous monitor left (see record.go),
// before this one serves: containers still running are followed again,
// those that ended are reported as they ended, and anything that cannot
// be taken back is ended, so that no container runs unseen and none runs
// twice. handover holds the descriptors a re-executing monitor passed on
// (nil after a crash).
func (m *monitor) recoverState(handover map[string]handedFiles) {
	stateDir := filepath.Join(m.root, "state")
	known := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(m.root, "ctr"))
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || filepath.Ext(id) == ".tmp" {
			continue
		}
		dir := m.ctrDir(id)
		var rec record
		switch err := readJSONFile(filepath.Join(dir, "record.json"), &rec); {
		case err == nil && rec.Version <= StateVersion:
			known[id] = true
			m.adopt(id, rec, handover[id])
			continue
		case err == nil:
			m.log.Error("container record of a newer monitor; ending the container", "id", id, "version", rec.Version)
		case !errors.Is(err, os.ErrNotExist):
			m.log.Error("unreadable container record; ending the container", "id", id, "err", err)
		}
		var st State
		if err := readJSONFile(filepath.Join(dir, "exit.json"), &st); err == nil && st.ID == id {
			// Ended under the previous monitor; the daemon has not
			// collected it yet.
			known[id] = true
			c := &ctr{state: st, done: make(chan struct{})}
			close(c.done)
			m.ctrs[id] = c
			continue
		}
		if rec.Req.ID == id {
			// A record this monitor cannot read: its container is ended
			// and reported with an unknown status.
			known[id] = true
			m.conclude(id, rec, nil)
			continue
		}
		os.RemoveAll(dir)
	}
	// libcontainer state without any record: nothing can follow it, so
	// whatever runs in it is ended.
	states, _ := os.ReadDir(stateDir)
	for _, e := range states {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		if lc, err := libcontainer.Load(stateDir, e.Name()); err == nil {
			m.log.Warn("ending a container no record follows", "id", e.Name())
			lc.Destroy()
		} else {
			os.RemoveAll(filepath.Join(stateDir, e.Name()))
		}
	}
}

// handedFiles are the descriptors of one container that a re-executing
// monitor hands to its next image: those no path can reopen.
type handedFiles struct {
	Master int // the terminal's master; 0 for none
	Stdin  int // the write end of the stdin pipe; 0 for none
}

// adopt follows a container that a previous monitor started.
func (m *monitor) adopt(id string, rec record, fds handedFiles) {
	stateDir := filepath.Join(m.root, "state")
	lc, err := libcontainer.Load(stateDir, id)
	start, alive := procStart(rec.Pid)
	if err != nil || rec.Pid <= 0 || !alive || start != rec.PidStart {
		m.conclude(id, rec, lc)
		return
	}
	c := &ctr{
		state:  State{ID: id, Running: true, Pid: rec.Pid, StartedAt: rec.StartedAt},
		c:      lc,
		done:   make(chan struct{}),
		rootfs: rec.Req.Rootfs,
	}
	var outR, errR *os.File
	for _, fd := range []int{fds.Master, fds.Stdin} {
		if fd > 0 {
			unix.CloseOnExec(fd)
		}
	}
	if fds.Master > 0 {
		c.master = os.NewFile(uintptr(fds.Master), "master")
		outR, c.stdin, c.stdinOnce = c.master, c.master, rec.Req.StdinOnce
	} else if fds.Stdin > 0 {
		c.stdin, c.stdinOnce = os.NewFile(uintptr(fds.Stdin), "stdin"), rec.Req.StdinOnce
	}
	dir := m.ctrDir(id)
	if outR == nil {
		// A terminal's master went with a monitor that died: the
		// container's terminal has hung up and its output is lost.
		if _, err := os.Stat(filepath.Join(dir, "stdout")); err == nil {
			if outR, err = openFIFO(filepath.Join(dir, "stdout")); err != nil {
				m.log.Warn("container output", "id", id, "err", err)
			}
			if errR, err = openFIFO(filepath.Join(dir, "stderr")); err != nil {
				m.log.Warn("container output", "id", id, "err", err)
			}
		}
	}
	lw, err := openLog(&rec.Req)
	if err != nil {
		m.log.Warn("container log; its output is discarded", "id", id, "err", err)
		lw = noClose{logs.Discard{}}
	}
	m.ctrs[id] = c
	m.log.Info("container taken back", "id", id, "pid", rec.Pid, "child", procParent(rec.Pid) == os.Getpid())
	m.supervise(c, outR, errR, lw, func() (int, string) { return waitExit(rec.Pid) })
}

// conclude records a container whose init has gone with no monitor to
// collect its status, after ending whatever is left of it.
func (m *monitor) conclude(id string, rec record, lc *libcontainer.Container) {
	if lc != nil {
		lc.Destroy()
	}
	if rec.Req.Rootfs != "" {
		unix.Unmount(rec.Req.Rootfs, unix.MNT_DETACH)
	}
	c := &ctr{state: State{ID: id, ExitCode: 255, StartedAt: rec.StartedAt, FinishedAt: time.Now().UTC(), Error: errStatusUnknown}, done: make(chan struct{})}
	close(c.done)
	m.ctrs[id] = c
	m.persist(c)
	m.log.Warn("container ended while no monitor followed it", "id", id)
}
