package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// writePidfile records this process's PID at path, refusing if the file
// names another live engine daemon. A file left by a daemon that was
// killed (systemd's watchdog does it) may name a PID the kernel has given
// to another process since: that one is not mistaken for a daemon, or the
// engine would refuse every start after. The returned function removes
// the file.
func writePidfile(path string) (func(), error) {
	if data, err := os.ReadFile(path); err == nil {
		pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
		if err == nil && pid > 0 && pid != os.Getpid() && processAlive(pid) && isDaemon(pid) {
			return nil, fmt.Errorf("pid file found, ensure balena-engine is not running or delete %s", path)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read pid file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create pid file directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return func() { os.Remove(path) }, nil
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// isDaemon says whether process pid runs as an engine daemon, by its
// command line: "balena-engine daemon ...", or started as balenad or
// balena-engine-daemon. One that cannot be read counts as a daemon.
func isDaemon(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	return daemonCmdline(b)
}

func daemonCmdline(b []byte) bool {
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	switch filepath.Base(string(args[0])) {
	case "balenad", "balena-engine-daemon":
		return true
	}
	return len(args) > 1 && string(args[1]) == "daemon"
}
