package mounts

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestDetachUnder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "a", "b")
	os.MkdirAll(a, 0o755)
	if err := syscall.Mount("tmpfs", a, "tmpfs", 0, ""); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	os.MkdirAll(b, 0o755)
	if err := syscall.Mount("tmpfs", b, "tmpfs", 0, ""); err != nil {
		syscall.Unmount(a, syscall.MNT_DETACH)
		t.Fatal(err)
	}
	if got := Under(dir); len(got) != 2 || got[0] != b || got[1] != a {
		t.Errorf("Under = %v, want [%s %s]", got, b, a)
	}
	if got := Under(a); len(got) != 1 || got[0] != b {
		t.Errorf("Under(%s) = %v: the directory itself is not below it", a, got)
	}
	DetachUnder(dir)
	if got := Under(dir); len(got) != 0 {
		t.Errorf("left mounted: %v", got)
	}
}
