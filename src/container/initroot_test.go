package container

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func TestInitChecksParse(t *testing.T) {
	v1 := "12:pids:/balena-engine/abc\n4:memory:/balena-engine/abc\n0::/\n"
	v2 := "0::/balena-engine/abc/sub\n"
	for _, c := range []struct {
		proc string
		want bool
	}{{v1, true}, {v2, true}, {"0::/balena-engine/abcd\n", false}, {"0::/\n", false}, {"", false}} {
		if got := inCgroup([]byte(c.proc), (&Manager{}).cgroupOf(&Container{ID: "abc"})); got != c.want {
			t.Errorf("inCgroup(%q) = %v", c.proc, got)
		}
	}
	// A container's own --cgroup-parent, absolute or (below the
	// monitor's cgroup) relative.
	m := &Manager{opts: Options{CgroupParent: "/engine"}}
	for _, c := range []struct {
		parent, proc string
		want         bool
	}{
		{"", "0::/engine/abc\n", true},
		{"/custom/sub", "0::/custom/sub/abc\n", true},
		{"/custom/sub", "0::/engine/abc\n", false},
		{"custom", "4:memory:/system.slice/balena.service/custom/abc\n", true},
		{"custom", "0::/system.slice/balena.service/custom/abcd\n", false},
		{"custom", "0::/custom-x/abc\n", false},
	} {
		ctr := &Container{ID: "abc", HostConfig: &containertypes.HostConfig{Resources: containertypes.Resources{CgroupParent: c.parent}}}
		if got := inCgroup([]byte(c.proc), m.cgroupOf(ctr)); got != c.want {
			t.Errorf("parent %q: inCgroup(%q) = %v", c.parent, c.proc, got)
		}
	}
	if !firstOfPIDNS([]byte("Name:\tsh\nNSpid:\t4242\t1\n")) {
		t.Error("the first process of a PID namespace not recognised")
	}
	for _, s := range []string{"NSpid:\t4242\n", "NSpid:\t4242\t7\n", "NSpid:\t1\n", "Name:\tsh\n"} {
		if firstOfPIDNS([]byte(s)) {
			t.Errorf("%q taken for a namespace's init", s)
		}
	}
}

// ownCgroup is this process's cgroup (a child starts in it).
func ownCgroup(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.SplitN(strings.SplitN(string(b), "\n", 2)[0], ":", 3)
	if len(f) != 3 {
		t.Fatalf("/proc/self/cgroup: %q", b)
	}
	return f[2]
}

func sameFile(t *testing.T, f *os.File, p string) bool {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(p, &b); err != nil {
		t.Fatal(err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func TestOpenInitRoot(t *testing.T) {
	cg := ownCgroup(t)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	root, err := openInitRoot(pid, cg, false)
	if err != nil {
		t.Fatalf("a live process of the cgroup: %v", err)
	}
	if !sameFile(t, root, "/") {
		t.Error("not the process's root")
	}
	root.Close()
	if _, err := openInitRoot(pid, "/balena-engine/0123456789ab", false); !errors.Is(err, errNotInit) {
		t.Errorf("a process of another cgroup: %v", err)
	}
	if _, err := openInitRoot(pid, cg, true); !errors.Is(err, errNotInit) {
		t.Errorf("a process that is not the first of its PID namespace: %v", err)
	}

	// /proc/PID opened before the process exits stays its: nothing of the
	// number's next owner can be read through it.
	proc, err := os.Open("/proc/" + strconv.Itoa(pid))
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	cmd.Process.Kill()
	cmd.Wait()
	if err := checkInit(proc, cg, false); !errors.Is(err, errNotInit) {
		t.Errorf("check through the directory of an exited process: %v", err)
	}
	if fd, err := unix.Openat(int(proc.Fd()), "root", unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		t.Error("root opened through the directory of an exited process")
	}
	if _, err := openInitRoot(pid, cg, false); !errors.Is(err, errNotInit) {
		t.Errorf("an exited process: %v", err)
	}
}

// The init of a PID namespace of its own, as a container's is, passes.
func TestOpenInitRootNamespaceInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	cg := ownCgroup(t)
	cmd := exec.Command("unshare", "--pid", "--fork", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var child int
	for i := 0; i < 100 && child == 0; i++ {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
		if f := strings.Fields(string(b)); len(f) > 0 {
			child, _ = strconv.Atoi(f[0])
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if child == 0 {
		t.Fatal("unshare started no child")
	}
	// The child is killed with its namespace's init: itself.
	defer unix.Kill(child, unix.SIGKILL)
	root, err := openInitRoot(child, cg, true)
	if err != nil {
		t.Fatalf("a PID namespace's init: %v", err)
	}
	root.Close()
}
