package daemon

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestListenUnixReplacesStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.sock")
	// A socket file nobody listens on, as a crash leaves behind.
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l2, err := listenUnix(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want 0660", fi.Mode().Perm())
	}
	l2.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file remains after Close: %v", err)
	}
}

func TestListenUnixRefuses(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	l, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := listenUnix(live); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("listening over a live socket: err = %v", err)
	}

	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(regular); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listening over a regular file: err = %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Error("regular file was touched")
	}

	if _, err := listenUnix(filepath.Join(dir, "missing", "x.sock")); err == nil {
		t.Error("listening in a missing directory succeeded")
	}
}

func TestOpenListenersAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.sock")
	_, err := openListeners([]string{"unix://" + good, "unix://" + filepath.Join(dir, "no", "bad.sock")})
	if err == nil {
		t.Fatal("expected an error")
	}
	if _, err := os.Lstat(good); !os.IsNotExist(err) {
		t.Errorf("first socket left behind after the second failed: %v", err)
	}
}

func TestPickActivated(t *testing.T) {
	a, b := &net.UnixListener{}, &net.UnixListener{}
	acts := []net.Listener{a, nil, b} // fds 3, 4 (not a listener), 5
	if got, err := pickActivated(acts, ""); err != nil || len(got) != 2 {
		t.Errorf("fd:// = %v, %v; want both listeners", got, err)
	}
	if got, err := pickActivated(acts, "5"); err != nil || len(got) != 1 || got[0] != b {
		t.Errorf("fd://5 = %v, %v", got, err)
	}
	if _, err := pickActivated(acts, "4"); err == nil {
		t.Error("fd://4 (not a listener) accepted")
	}
	if _, err := pickActivated(nil, ""); err == nil || !strings.Contains(err.Error(), "no sockets found") {
		t.Errorf("no activation: err = %v", err)
	}
}

func TestPidfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "engine.pid")
	remove, err := writePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file holds %q", b)
	}
	remove()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("pid file not removed")
	}

	// A live daemon in the file (a process started as balenad): refuse
	// and leave it alone.
	daemon := exec.Command("bash", "-c", "exec -a balenad sleep 60")
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { daemon.Process.Kill(); daemon.Wait() }()
	eventually(t, func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(daemon.Process.Pid) + "/cmdline")
		return strings.HasPrefix(string(b), "balenad")
	})
	if err := os.WriteFile(path, []byte(strconv.Itoa(daemon.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := writePidfile(path); err == nil || !strings.Contains(err.Error(), "pid file found") {
		t.Errorf("err = %v, want 'pid file found'", err)
	}
	// A dead one (a PID beyond pid_max): take over.
	if err := os.WriteFile(path, []byte("99999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	remove, err = writePidfile(path)
	if err != nil {
		t.Fatalf("stale pid file not taken over: %v", err)
	}
	remove()
}

func TestMkdirsUndo(t *testing.T) {
	root := t.TempDir()
	undo, err := mkdirs(filepath.Join(root, "a", "b", "c"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	undo()
	if _, err := os.Lstat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Errorf("undo left %s/a: %v", root, err)
	}
	// Existing directories are not the call's to remove.
	if err := os.Mkdir(filepath.Join(root, "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	undo, err = mkdirs(filepath.Join(root, "keep", "new"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	undo()
	if _, err := os.Stat(filepath.Join(root, "keep")); err != nil {
		t.Errorf("undo removed a directory it did not create: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "keep", "new")); !os.IsNotExist(err) {
		t.Error("undo left keep/new")
	}
}

// The socket never exists with more than its final mode, even between its
// creation and the chmod, whatever the umask.
func TestListenUnixNeverWider(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	var before os.FileMode
	chown = func(name string, uid, gid int) error {
		if fi, err := os.Stat(name); err == nil {
			before = fi.Mode().Perm()
		}
		return os.Chown(name, uid, gid)
	}
	defer func() { chown = os.Chown }()
	l, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if before&^0o660 != 0 {
		t.Errorf("socket mode %o before its chmod, wider than 0660", before)
	}
	if m := syscall.Umask(0); m != 0 {
		t.Errorf("umask left at %o", m)
	}
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}
