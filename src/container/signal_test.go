package container

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestCatches(t *testing.T) {
	// This test process catches nothing but what Go's runtime does; a
	// shell that traps TERM catches it.
	cmd := exec.Command("sh", "-c", "trap 'exit 0' TERM; echo ready; read x")
	out, _ := cmd.StdoutPipe()
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Wait() }()
	buf := make([]byte, 6)
	out.Read(buf)
	if caught, ok := catches(cmd.Process.Pid, syscall.SIGTERM); !ok || !caught {
		t.Errorf("trapping shell: caught %v, ok %v", caught, ok)
	}
	if caught, ok := catches(cmd.Process.Pid, syscall.SIGUSR2); !ok || caught {
		t.Errorf("SIGUSR2 untrapped: caught %v, ok %v", caught, ok)
	}
	if _, ok := catches(1<<30, syscall.SIGTERM); ok {
		t.Error("a process that does not exist was found")
	}
	// Waiting for a handler that never comes ends at the limit.
	start := time.Now()
	awaitSignalHandler(cmd.Process.Pid, syscall.SIGUSR2, 50*time.Millisecond)
	if time.Since(start) < 50*time.Millisecond {
		t.Error("returned before the limit without a handler")
	}
}
