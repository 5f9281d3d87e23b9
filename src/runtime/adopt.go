package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/balena-os/balena-engine/src/logs"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
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
			m.end(e.Name(), "", lc)
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
	if err == nil && rec.Pid <= 0 {
		// The last monitor died between the container's start and the
		// record of its init: libcontainer knows the init. A container
		// that got as far as running is taken back; one still in its
		// runtime's set-up is ended (conclude).
		if status, serr := lc.Status(); serr == nil && status == libcontainer.Running {
			if st, serr := lc.State(); serr == nil {
				rec.Pid, rec.PidStart, rec.StartedAt = st.InitProcessPid, st.InitProcessStartTime, st.Created
				if werr := writeJSONFile(filepath.Join(m.ctrDir(id), "record.json"), rec); werr != nil {
					m.log.Warn("container record", "id", id, "err", werr)
				}
			}
		}
	}
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
	lw, err := openLog(&rec.Req, "")
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
	m.end(id, rec.Cgroup, lc)
	if rec.Req.Rootfs != "" {
		unix.Unmount(rec.Req.Rootfs, unix.MNT_DETACH)
	}
	c := &ctr{state: State{ID: id, ExitCode: 255, StartedAt: rec.StartedAt, FinishedAt: time.Now().UTC(), Error: errStatusUnknown}, done: make(chan struct{})}
	close(c.done)
	m.ctrs[id] = c
	m.persist(c)
	m.log.Warn("container ended while no monitor followed it", "id", id)
}

// end kills every process of a container that no monitor can follow,
// waits until its cgroup is empty, and removes its cgroup and its
// libcontainer state (lc, nil where there is none). libcontainer refuses
// to destroy a container whose init lives, and a container caught
// half-way through its start may have its runtime's init in the cgroup
// (cgroupPath) before libcontainer kept any state of it: so the cgroup
// is emptied here, not left to Destroy. Until it is empty the container
// is not reported ended: no container runs unseen.
func (m *monitor) end(id, cgroupPath string, lc *libcontainer.Container) {
	var cg cgroups.Manager
	if lc != nil {
		if st, err := lc.State(); err == nil && st.Config.Cgroups != nil {
			cg, _ = manager.NewWithPaths(st.Config.Cgroups, st.CgroupPaths)
		}
	}
	if cg == nil && cgroupPath != "" {
		cg, _ = manager.New(&cgroups.Cgroup{Path: cgroupPath, Resources: &cgroups.Resources{SkipDevices: true}})
	}
	if cg != nil && cg.Exists() {
		if err := emptyCgroup(cg, 10*time.Second); err != nil {
			m.log.Error("cannot end the processes of a container", "id", id, "err", err)
		}
	}
	switch {
	case lc != nil:
		if err := lc.Destroy(); err != nil {
			m.log.Warn("container state", "id", id, "err", err)
		}
	case cg != nil:
		if err := cg.Destroy(); err != nil {
			m.log.Warn("container cgroup", "id", id, "err", err)
		}
	}
}

// emptyCgroup kills every process in cg, frozen so that none forks in
// between, until the kernel lists none there or the deadline passes.
func emptyCgroup(cg cgroups.Manager, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		pids, err := cg.GetAllPids()
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v are still there after %v", pids, limit)
		}
		// A freeze that fails (no freezer) still leaves the kill, and the
		// next round catches what forked meanwhile.
		_ = cg.Freeze(cgroups.Frozen)
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		_ = cg.Freeze(cgroups.Thawed)
		time.Sleep(5 * time.Millisecond)
	}
}
