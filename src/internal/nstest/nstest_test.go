package nstest

import (
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestRunPattern(t *testing.T) {
	for name, want := range map[string]string{
		"TestA":          "^TestA$",
		"TestA/sub":      "^TestA$/^sub$",
		"TestA/x.y_(1)+": `^TestA$/^x\.y_\(1\)\+$`,
	} {
		if got := runPattern(name); got != want {
			t.Errorf("runPattern(%q) = %q, want %q", name, got, want)
		}
	}
}

// inChild checks what Isolate promises the child.
func inChild(t *testing.T) {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if self == os.Getenv(parentNetnsEnv) {
		t.Fatalf("still in the parent's network namespace %s", self)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Fatal("lo is down")
	}
}

func TestIsolate(t *testing.T) {
	if !Isolate(t) {
		return
	}
	inChild(t)
}

func TestIsolateSubtests(t *testing.T) {
	ran := 0 // subtests run in this child
	for _, name := range []string{"a.b", "c(d)"} {
		t.Run(name, func(t *testing.T) {
			if !Isolate(t, "true") {
				return
			}
			ran++
			inChild(t)
		})
	}
	if os.Getenv(childEnv) != "" && ran != 1 {
		t.Fatalf("the child ran %d subtests, want 1", ran)
	}
}
