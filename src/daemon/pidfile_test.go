package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestDaemonCmdline(t *testing.T) {
	for cmd, want := range map[string]bool{
		"/usr/bin/balena-engine\x00daemon\x00-H\x00fd://\x00": true,
		"/usr/bin/balenad\x00":                                true,
		"balena-engine-daemon\x00--debug\x00":                 true,
		"/usr/bin/balena-engine\x00__monitor\x00--root\x00/x": false,
		"/bin/sleep\x001000\x00":                              false,
		"sh\x00":                                              false,
	} {
		if got := daemonCmdline([]byte(cmd)); got != want {
			t.Errorf("%q: %v, want %v", cmd, got, want)
		}
	}
}

// A pid file naming a live process that is not a daemon (its PID reused
// after the daemon was killed) does not stop a start.
func TestPidfileReusedPID(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	path := filepath.Join(t.TempDir(), "engine.pid")
	os.WriteFile(path, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"), 0o644)
	remove, err := writePidfile(path)
	if err != nil {
		t.Fatalf("a reused PID stopped the start: %v", err)
	}
	remove()
}
