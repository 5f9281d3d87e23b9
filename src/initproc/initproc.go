// Package initproc is the small init that "docker run --init" puts at PID 1
// of a container: it starts the container's command, passes it the signals
// the container gets, reaps the orphans that are re-parented to it, and
// exits with the command's status. Docker ships tini for this; here it is a
// role of the engine's one binary, bind-mounted into the container at
// /sbin/docker-init.
package initproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main runs "docker-init [--] COMMAND [ARG...]" and returns the exit code.
func Main(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "docker-init: usage: docker-init [--] COMMAND [ARG...]")
		return 1
	}
	// Every catchable signal is caught before the child exists, so none
	// is lost between its start and the loop below.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	code, err := run(args, sigs)
	if err != nil {
		fmt.Fprintf(stderr, "docker-init: %v\n", err)
	}
	return code
}

func run(args []string, sigs chan os.Signal) (int, error) {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return 127, err
	}
	attr := &syscall.SysProcAttr{}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		// On a terminal the command gets its own process group in the
		// foreground, so that ^C reaches it once, from the terminal,
		// rather than also through us.
		attr.Setpgid, attr.Foreground, attr.Ctty = true, true, 0
	}
	p, err := os.StartProcess(path, args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Env:   os.Environ(),
		Sys:   attr,
	})
	if err != nil {
		return 126, fmt.Errorf("start %s: %w", args[0], err)
	}
	child := p.Pid
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			if code, done := reap(child); done {
				return code, nil
			}
		case syscall.SIGURG:
			// The Go runtime's own preemption signal, not the container's.
		default:
			syscall.Kill(child, sig.(syscall.Signal))
		}
	}
	return 1, errors.New("signal channel closed")
}

// reap collects every exited process; it reports the command's exit code
// once the command itself is among them (a signal's death is 128+N, as a
// shell reports it).
func reap(child int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != child {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
