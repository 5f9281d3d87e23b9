package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"golang.org/x/sys/unix"
)

// ParseSignal reads "SIGTERM", "TERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidParameter(fmt.Errorf("invalid signal: %s", s))
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidParameter(fmt.Errorf("invalid signal: %s", s))
}

// awaitSignalHandler waits, up to limit, until process pid catches sig. A
// container's PID 1 ignores a signal it has no handler for, and the
// engine's docker-init (a Go program) handles signals only once it has
// started: a "docker stop" in those first milliseconds would be lost, and
// the stop would end with SIGKILL after the timeout. The Go runtime sets
// its own handlers for every signal before docker-init's code runs, and
// a signal that reaches them before signal.Notify makes the runtime exit
// with status 2 (a namespace's PID 1 cannot die of its own raise); so for
// docker-init, which calls signal.Notify before it starts its child, the
// wait is for that child.
func awaitSignalHandler(pid int, sig syscall.Signal, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		caught, ok := catches(pid, sig)
		if caught && hasChild(pid) || !ok || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hasChild says whether pid has started a child (true where the kernel
// cannot tell: no /proc/PID/task/PID/children).
func hasChild(pid int) bool {
	p := strconv.Itoa(pid)
	b, err := os.ReadFile("/proc/" + p + "/task/" + p + "/children")
	return err != nil || len(strings.TrimSpace(string(b))) > 0
}

// catches reads the process's caught-signal mask; ok is false when the
// process is gone.
func catches(pid int, sig syscall.Signal) (caught, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(l, "SigCgt:"); found {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0, true
		}
	}
	return false, true
}
