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
// names another live process. The returned function removes the file.
func writePidfile(path string) (func(), error) {
	if data, err := os.ReadFile(path); err == nil {
		pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
		if err == nil && pid > 0 && pid != os.Getpid() && processAlive(pid) {
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
