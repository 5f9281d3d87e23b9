package netns

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestCreateDoRemove(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	p := filepath.Join(dir, "c1")
	if err := Create(p); err != nil {
		t.Fatal(err)
	}
	if !Exists(p) {
		t.Fatalf("Exists(%s) = false after Create", p)
	}
	if !isMounted(t, p) {
		t.Fatalf("%s not in mountinfo after Create", p)
	}
	if sameFile(t, p, "/proc/self/ns/net") {
		t.Fatal("the new namespace is the test's own")
	}

	attrs := netlink.NewLinkAttrs()
	attrs.Name = "inside0"
	err := Do(p, func() error {
		if !sameFile(t, p, threadNS) {
			t.Error("fn does not run in the namespace")
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			t.Error("lo is down in the new namespace")
		}
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}) // no dummy driver everywhere
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("inside0"); err == nil {
		t.Fatal("a link made inside the namespace is visible outside")
	}
	if err := Do(p, func() error { _, err := netlink.LinkByName("inside0"); return err }); err != nil {
		t.Fatalf("link made inside is gone: %v", err)
	}
	checkThreads(t)

	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if Exists(p) {
		t.Fatal("Exists after Remove")
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file left after Remove: %v", err)
	}
	if isMounted(t, p) {
		t.Fatalf("%s still in mountinfo after Remove", p)
	}
	if err := Remove(p); err != nil {
		t.Fatalf("Remove of a missing namespace: %v", err)
	}
}

// TestParentShared checks that the namespaces' directory becomes a shared
// mount of its own, as with ip netns, even where everything is private.
func TestParentShared(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	for _, name := range []string{"a", "b"} {
		if err := Create(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	var dirMounts int
	for _, m := range mounts(t) {
		if m.point != dir {
			continue
		}
		dirMounts++
		if !slices.ContainsFunc(m.optional, func(o string) bool { return strings.HasPrefix(o, "shared:") }) {
			t.Errorf("%s is not shared: %v", dir, m.optional)
		}
	}
	if dirMounts != 1 {
		t.Errorf("%s is mounted %d times, want 1", dir, dirMounts)
	}
	if sameFile(t, filepath.Join(dir, "a"), filepath.Join(dir, "b")) {
		t.Error("two Creates gave one namespace")
	}
	for _, name := range []string{"a", "b"} {
		if err := Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateExisting(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	p := filepath.Join(dir, "c1")
	if err := Create(p); err != nil {
		t.Fatal(err)
	}
	err := Create(p)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over a namespace: %v, want ErrExist", err)
	}
	if !Exists(p) {
		t.Fatal("a failed Create removed the namespace that was there")
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}

	// A file left by a crash before the mount is taken over.
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := Create(p); err != nil {
		t.Fatalf("Create over a leftover file: %v", err)
	}
	if !Exists(p) {
		t.Fatal("no namespace after Create over a leftover file")
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}

	// A failure leaves nothing: a non-empty directory cannot be replaced.
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Create(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("Create over a directory: %v", err)
	}
	if isMounted(t, p) {
		t.Fatal("a failed Create left a mount")
	}
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	checkThreads(t)
}

func TestRemovePlainFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "leftover")
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file left: %v", err)
	}
}

func TestDoErrors(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	missing := filepath.Join(dir, "missing")
	if err := Do(missing, func() error { return nil }); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Do on a missing path: %v", err)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := Do(plain, func() error { ran = true; return nil }); err == nil || !strings.Contains(err.Error(), "not a network namespace") {
		t.Errorf("Do on a plain file: %v", err)
	}
	if err := Do("/proc/self/ns/mnt", func() error { ran = true; return nil }); err == nil {
		t.Error("Do on a mount namespace succeeded")
	}
	if ran {
		t.Error("fn ran outside a network namespace")
	}

	p := filepath.Join(dir, "c1")
	if err := Create(p); err != nil {
		t.Fatal(err)
	}
	defer Remove(p)
	sentinel := errors.New("sentinel")
	if err := Do(p, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want fn's panic", v)
			}
		}()
		_ = Do(p, func() error { panic("boom") })
		t.Error("fn's panic was not raised again")
	}()
	checkThreads(t)
}

// TestDoSockets runs many Dos at once: none disturbs another thread, and a
// listener opened inside stays in the namespace.
func TestDoSockets(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	p := filepath.Join(dir, "c1")
	if err := Create(p); err != nil {
		t.Fatal(err)
	}
	defer Remove(p)

	var ln net.Listener
	if err := Do(p, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	addr := ln.Addr().String()

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			errs <- Do(p, func() error {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				buf := make([]byte, 2)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(buf)
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("dialing inside: %v", err)
		}
	}
	checkThreads(t)

	// Outside, nothing listens on that port: the socket stayed inside.
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatal("the listener opened inside answers outside")
	}
}

func TestExists(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		plain:                                 false,
		filepath.Join(t.TempDir(), "missing"): false,
		"/proc/self/ns/net":                   true,
		"/proc/self/ns/mnt":                   false, // nsfs, another kind
	} {
		if got := Exists(path); got != want {
			t.Errorf("Exists(%s) = %v, want %v", path, got, want)
		}
	}
}

// sameFile says whether two paths are the same inode: for namespace files,
// the same namespace.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// checkThreads fails the test if any thread of the process is not in the
// process's network namespace.
func checkThreads(t *testing.T) {
	t.Helper()
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		got, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
		if err != nil {
			continue // the thread has exited
		}
		if got != want {
			t.Errorf("thread %s is in %s, the process in %s", task.Name(), got, want)
		}
	}
}
