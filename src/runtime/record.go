package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// What a monitor leaves on disk, under <root>/ctr/<id>/, is all the next
// monitor needs to take its containers back: after this one was killed
// (the OOM killer, a bug), or when it re-executes a new engine binary.
//
//	record.json  the running container: its start request (without the
//	             spec, which libcontainer keeps in state/<id>), its init's
//	             PID and that PID's start time
//	exit.json    how it ended, until the daemon forgets it
//	stdout,      FIFOs holding the container's output; the container
//	stderr       holds them open read-write, so with no monitor reading
//	             its writes wait in the pipe (64 KiB) instead of failing
//	             with EPIPE, and the next monitor reads on where this one
//	             stopped
//
// StateVersion numbers that layout and the handover file's; a monitor
// takes back the state of its own version and older ones.
const StateVersion = 1

// record is a running container as a monitor leaves it on disk.
type record struct {
	Version int
	Req     StartRequest
	// Pid is the container's init; PidStart its start time in clock ticks
	// after boot (/proc/PID/stat field 22): a PID reused by another
	// process has another.
	Pid       int
	PidStart  uint64
	StartedAt time.Time
	// Cgroup is the container's cgroup (the spec's cgroupsPath): where a
	// container caught half-way through its start, before libcontainer
	// kept any state of it, has its processes.
	Cgroup string `json:",omitempty"`
}

func (m *monitor) ctrDir(id string) string { return filepath.Join(m.root, "ctr", id) }

// writeJSONFile replaces path with v's JSON, atomically: a monitor killed
// half-way leaves the old file or the new one.
func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// outputFIFOs makes a container's stdout and stderr FIFOs in dir and opens
// both ends: the monitor's, read-only and non-blocking (Go's poller waits
// on it; EOF once no process of the container holds it), and the
// container's, read-write and blocking.
func outputFIFOs(dir string) (readers, writers [2]*os.File, err error) {
	closeAll := func() {
		for _, f := range append(readers[:], writers[:]...) {
			if f != nil {
				f.Close()
			}
		}
	}
	for i, name := range []string{"stdout", "stderr"} {
		p := filepath.Join(dir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			closeAll()
			return readers, writers, fmt.Errorf("make the container's %s: %w", name, err)
		}
		if readers[i], err = openFIFO(p); err != nil {
			closeAll()
			return readers, writers, err
		}
		// Not os.OpenFile: it would make the descriptor non-blocking,
		// and the container's writes would fail with EAGAIN.
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return readers, writers, fmt.Errorf("open the container's %s: %w", name, err)
		}
		writers[i] = os.NewFile(uintptr(fd), p)
	}
	return readers, writers, nil
}

// openFIFO opens the monitor's end of an output FIFO.
func openFIFO(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// procStat returns the fields of /proc/PID/stat after the command name
// (which, in parentheses, may hold spaces): [0] is field 3, the state.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// procStart returns a process's start time (clock ticks after boot), and
// false if there is no such process or it has ended (a zombie).
func procStart(pid int) (uint64, bool) {
	f := procStat(pid)
	// Field 22 (starttime) is f[19].
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	return t, err == nil
}

// procParent returns a process's parent PID, or 0.
func procParent(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// errStatusUnknown is the Error of a container whose exit status no
// monitor could collect: it ended, or was still running, when the
// monitor that started it died, and only a process's parent learns its
// status.
const errStatusUnknown = "exit status unknown: the container monitor that started the container was gone when it ended"

// waitExit waits for a process that may or may not be this process's
// child to end. For a child (the monitor re-executed itself) it returns
// the real exit code; for another process (it was the child of a monitor
// that died) only that it ended: 255 and errStatusUnknown, as the
// process's status went to its new parent.
func waitExit(pid int) (int, string) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return 255, errStatusUnknown
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	// A pidfd becomes readable when the process ends. Go's poller waits
	// on it; should the descriptor not be pollable, a blocking poll does.
	ended := func(fd uintptr) bool {
		n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0
	}
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Read(ended)
	}
	if err != nil {
		for {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
			if n > 0 || (err != nil && err != unix.EINTR) {
				break
			}
		}
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != nil {
		return 255, errStatusUnknown // ECHILD: not ours
	}
	switch {
	case ws.Exited():
		return ws.ExitStatus(), ""
	case ws.Signaled():
		return 128 + int(ws.Signal()), ""
	}
	return 255, errStatusUnknown
}
