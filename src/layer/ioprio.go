package layer

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// IOPriority is an I/O scheduling class and level, as ioprio_set(2) takes
// them. The zero value leaves the priority alone. It takes effect with
// schedulers that honour priorities (BFQ, CFQ); mq-deadline and none
// ignore it.
type IOPriority int

const (
	ioprioClassShift = 13
	ioprioWhoProcess = 1
	ioprioClassBE    = 2
	ioprioClassIdle  = 3
)

// ParseIOPriority reads "none", "idle" or "best-effort:N" (N 0-7, 7 the
// lowest).
func ParseIOPriority(s string) (IOPriority, error) {
	switch {
	case s == "" || s == "none":
		return 0, nil
	case s == "idle":
		return IOPriority(ioprioClassIdle << ioprioClassShift), nil
	}
	class, level, ok := strings.Cut(s, ":")
	n, err := strconv.Atoi(level)
	if !ok || (class != "best-effort" && class != "be") || err != nil || n < 0 || n > 7 {
		return 0, fmt.Errorf("invalid I/O priority %q: want none, idle or best-effort:0-7", s)
	}
	return IOPriority(ioprioClassBE<<ioprioClassShift | n), nil
}

func ioprioGet() (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func ioprioSet(v int) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(v)); errno != 0 {
		return errno
	}
	return nil
}

// withIOPriority runs fn on a thread of its own with priority p, and puts
// the thread back as it was. I/O priority belongs to a thread in Linux;
// fn must do its disk writes itself, not hand them to other goroutines.
func withIOPriority(p IOPriority, fn func() error) error {
	if p == 0 {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := ioprioGet()
	if err != nil {
		return fn() // not supported here: run at the usual priority
	}
	if err := ioprioSet(int(p)); err != nil {
		return fn()
	}
	defer ioprioSet(old)
	return fn()
}
