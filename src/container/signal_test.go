package container

import (
	"fmt"
	"os"
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

// docker-init is waited for until it has started its child, which it
// does only after its signal handling is set up.
func TestHasChild(t *testing.T) {
	lone := exec.Command("sleep", "10")
	if err := lone.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { lone.Process.Kill(); lone.Wait() }()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d/children", lone.Process.Pid, lone.Process.Pid)); err != nil {
		t.Skip("this kernel does not list children")
	}
	if hasChild(lone.Process.Pid) {
		t.Error("a process without children has one")
	}
	parent := exec.Command("sh", "-c", "sleep 10 & wait")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { parent.Process.Kill(); parent.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for !hasChild(parent.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the child of a shell was not seen")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
