// Package nstest runs tests in network and mount namespaces of their own,
// so that what they do to links, routes, firewall rules and mounts cannot
// reach the host's.
//
// It is for tests only: it imports testing, and only _test.go files may
// import it.
package nstest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// childEnv marks the test binary run again in new namespaces; its value
// is the name of the test to run there. parentNetnsEnv is the parent's
// network namespace, which the child must not be in.
const (
	childEnv       = "BALENA_NSTEST_CHILD"
	parentNetnsEnv = "BALENA_NSTEST_PARENT_NETNS"
)

// Isolate runs the calling test again in a child test binary under
// unshare(1), with new network and mount namespaces. It returns true in
// that child, where the test's body is to run, once lo is up there. It
// returns false in the parent, which has then passed, failed or skipped
// with the child and has nothing left to do.
//
// It skips the test when not run as root, when unshare or any of programs
// is not found, or when unshare cannot make a network namespace here.
// Subtests may call it too: the child runs only the path to the caller.
func Isolate(t *testing.T, programs ...string) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		// Never go on in the parent's namespace, whatever set the variable.
		self, err := os.Readlink("/proc/self/ns/net")
		if parent := os.Getenv(parentNetnsEnv); err != nil || parent == "" || self == parent {
			t.Fatalf("refusing to run: not in a network namespace of its own (%s, parent %s, %v)", self, parent, err)
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("bringing lo up: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	parentNetns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skipf("cannot tell this network namespace: %v", err)
	}
	for _, p := range append([]string{"unshare"}, programs...) {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not found", p)
		}
	}
	if out, err := exec.Command("unshare", "--net", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v %s", err, out)
	}

	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-5*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--mount", os.Args[0],
		"-test.run="+runPattern(t.Name()), "-test.v", "-test.count=1")
	// The race detector waits a second at exit by default; not needed here.
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), parentNetnsEnv+"="+parentNetns,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	out, err := cmd.CombinedOutput()
	switch {
	case err != nil:
		t.Fatalf("%s in new namespaces: %v\n%s", t.Name(), err, out)
	case bytes.Contains(out, []byte("--- SKIP: "+t.Name()+" ")):
		t.Skipf("skipped in new namespaces:\n%s", out)
	case !bytes.Contains(out, []byte("--- PASS: "+t.Name()+" ")):
		t.Fatalf("%s did not run in new namespaces:\n%s", t.Name(), out)
	}
	if testing.Verbose() {
		t.Logf("in new namespaces:\n%s", out)
	}
	return false
}

// runPattern is the -test.run pattern that selects exactly the test name,
// a subtest's path included.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// NetnsDir is a directory for the test's named network namespaces, not
// yet made. netns.Create makes it a mount point; it is unmounted, with the
// namespaces below it, before t.TempDir removes it.
func NetnsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() {
		for unix.Unmount(dir, unix.MNT_DETACH) == nil {
		}
	})
	return dir
}
