package runtime

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// The container's end of an output FIFO is read-write: with no reader
// its writes wait in the pipe rather than fail, and a reader opened later
// gets them, then end-of-file once the container's end is closed.
func TestOutputFIFOs(t *testing.T) {
	dir := t.TempDir()
	readers, writers, err := outputFIFOs(dir)
	if err != nil {
		t.Fatal(err)
	}
	readers[0].Close() // the monitor dies
	readers[1].Close()
	writers[1].Close()
	if _, err := writers[0].Write([]byte("kept\n")); err != nil {
		t.Fatalf("write with no reader: %v", err)
	}
	r, err := openFIFO(dir + "/stdout") // the next monitor
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	writers[0].Close() // the container ends
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "kept\n" {
		t.Errorf("next reader: %q, %v", b, err)
	}
}

func TestProcStartAndWaitExit(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "read x; exit 3")
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	st, ok := procStart(pid)
	if !ok || st == 0 {
		t.Fatalf("procStart(%d) = %d, %v", pid, st, ok)
	}
	if procParent(pid) != os.Getpid() {
		t.Errorf("procParent(%d) = %d", pid, procParent(pid))
	}
	done := make(chan struct{})
	var code int
	var msg string
	go func() { code, msg = waitExit(pid); close(done) }()
	select {
	case <-done:
		t.Fatal("waitExit returned before the process ended")
	case <-time.After(50 * time.Millisecond):
	}
	in.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("waitExit did not return after the process ended")
	}
	// A child: its real status.
	if code != 3 || msg != "" {
		t.Errorf("child's exit: %d %q", code, msg)
	}
	if _, ok := procStart(pid); ok {
		t.Error("procStart of an ended process")
	}
	// Not a child (PID 1 here stands for a process we did not start):
	// only "unknown" can be said, and only once it ends, so a process
	// that is not ours and does not end is not waited for here.
	if _, ok := procStart(1); !ok {
		t.Error("procStart(1)")
	}
}
