package container

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// errNotInit is a recorded PID that no longer is the container's init: it
// exited, and the number may have gone to another process since.
var errNotInit = errors.New("the container's init process is gone")

// cgroupOf is the cgroup a container's processes run in (the path its
// start gives the runtime), as /proc/PID/cgroup shows it: under its own
// --cgroup-parent if it has one, else the daemon's. As with Docker's
// cgroupfs driver, a relative parent is below the cgroup of the process
// that starts the container (the monitor's).
func (m *Manager) cgroupOf(c *Container) string {
	parent := m.opts.CgroupParent
	if c.HostConfig != nil && c.HostConfig.CgroupParent != "" {
		parent = c.HostConfig.CgroupParent
	}
	if parent == "" {
		parent = "/balena-engine"
	}
	return path.Join(parent, c.ID)
}

// openInitRoot opens the root directory of the process pid (as an O_PATH
// handle) after checking that pid still is the init of the container whose
// processes are in cgroup: a process of that cgroup, and the first of a
// PID namespace of its own unless the container shares the host's. The
// /proc/PID directory is opened first and everything is read through it:
// it stays bound to the process it was opened for, so that if the process
// exits and its number is reused before /proc/PID/root is opened, the open
// fails rather than giving another process's root.
//
// The process's start time is not compared with the container's recorded
// StartedAt: that is wall-clock time, and devices without a real-time
// clock often set theirs after containers have started.
func openInitRoot(pid int, cgroup string, ownPIDNS bool) (*os.File, error) {
	if pid <= 0 {
		return nil, errNotInit
	}
	proc, err := os.OpenFile("/proc/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNotInit
		}
		return nil, fmt.Errorf("open /proc/%d: %w", pid, err)
	}
	defer proc.Close()
	if err := checkInit(proc, cgroup, ownPIDNS); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	fd, err := unix.Openat(int(proc.Fd()), "root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil, errNotInit
		}
		return nil, fmt.Errorf("open /proc/%d/root: %w", pid, err)
	}
	return os.NewFile(uintptr(fd), "/proc/"+strconv.Itoa(pid)+"/root"), nil
}

// checkInit checks the process of an open /proc/PID directory.
func checkInit(proc *os.File, cgroup string, ownPIDNS bool) error {
	cg, err := readAt(proc, "cgroup")
	if err != nil {
		return err
	}
	if !inCgroup(cg, cgroup) {
		return fmt.Errorf("%w (not in cgroup %s)", errNotInit, cgroup)
	}
	if !ownPIDNS {
		return nil
	}
	status, err := readAt(proc, "status")
	if err != nil {
		return err
	}
	if !firstOfPIDNS(status) {
		return fmt.Errorf("%w (not the first process of its PID namespace)", errNotInit)
	}
	return nil
}

// readAt reads a file of an open /proc/PID directory; a process that has
// exited has none.
func readAt(proc *os.File, name string) ([]byte, error) {
	fd, err := unix.Openat(int(proc.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil, errNotInit
		}
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, errNotInit
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// inCgroup says whether a /proc/PID/cgroup lists cgroup (or one below it)
// in some hierarchy: v2's "0::/PATH" or a v1 controller's "N:ctl:/PATH".
// A relative cgroup is below some other one (the monitor's).
func inCgroup(procCgroup []byte, cgroup string) bool {
	for _, line := range strings.Split(string(procCgroup), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		p, want := f[2], cgroup
		if !path.IsAbs(want) {
			want = "/" + want
			if i := strings.Index(p+"/", want+"/"); i >= 0 {
				p = p[i:]
			}
		}
		if p == want || strings.HasPrefix(p, want+"/") {
			return true
		}
	}
	return false
}

// firstOfPIDNS says whether a /proc/PID/status is of a process numbered 1
// in its innermost PID namespace (the last number of NSpid).
func firstOfPIDNS(status []byte) bool {
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}
