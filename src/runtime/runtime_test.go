package runtime

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		script string
		want   int
	}{
		{"exit 0", 0}, {"exit 3", 3}, {"kill -9 $$", 137}, {"kill -15 $$", 143},
	}
	for _, c := range cases {
		cmd := exec.Command("/bin/sh", "-c", c.script)
		err := cmd.Run()
		if got := exitCode(cmd.ProcessState, err); got != c.want {
			t.Errorf("%q: exit code %d, want %d", c.script, got, c.want)
		}
	}
	if got := exitCode(nil, os.ErrProcessDone); got != 255 {
		t.Errorf("unknown state: %d", got)
	}
}

func TestConsoleHandOver(t *testing.T) {
	parent, child, err := consolePair()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	// Send a file as libcontainer's init sends the terminal master.
	f, err := os.CreateTemp(t.TempDir(), "master")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello")
	rights := unix.UnixRights(int(f.Fd()))
	if err := unix.Sendmsg(int(child.Fd()), []byte("/dev/pts/ptmx"), rights, nil, 0); err != nil {
		t.Fatal(err)
	}
	child.Close()
	got, err := recvMaster(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != "/dev/pts/ptmx" {
		t.Errorf("name %q", got.Name())
	}
	b := make([]byte, 5)
	if n, _ := got.ReadAt(b, 0); string(b[:n]) != "hello" {
		t.Errorf("received file reads %q", b[:n])
	}
}
