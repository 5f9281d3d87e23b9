package container

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInLower(t *testing.T) {
	top, bottom := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(bottom, "kept"), nil, 0o644)
	os.WriteFile(filepath.Join(bottom, "deleted"), nil, 0o644)
	if err := unix.Mknod(filepath.Join(top, "deleted"), unix.S_IFCHR, 0); err != nil {
		t.Skipf("mknod a whiteout: %v", err)
	}
	lower := []string{top, bottom}
	for rel, want := range map[string]bool{"kept": true, "deleted": false, "never": false} {
		if got := inLower(lower, rel); got != want {
			t.Errorf("inLower(%s) = %v, want %v", rel, got, want)
		}
	}
	for p, want := range map[string]bool{"/proc": true, "/proc/1": true, "/etc/hosts": true, "/etc/hostsfile": false, "/etc": false, "/procfs": false} {
		if got := isRuntimePath(p); got != want {
			t.Errorf("isRuntimePath(%s) = %v, want %v", p, got, want)
		}
	}
}
