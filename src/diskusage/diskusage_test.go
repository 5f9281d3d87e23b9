package diskusage

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDir(t *testing.T) {
	d := t.TempDir()
	write := func(name string, n int) {
		p := filepath.Join(d, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 1000)
	write("sub/b", 234)
	if err := os.Link(filepath.Join(d, "a"), filepath.Join(d, "sub", "a-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(d, "s")); err != nil { // 1 byte: the target's name
		t.Fatal(err)
	}
	got, err := Dir(d)
	if err != nil {
		t.Fatal(err)
	}
	if got != 1000+234+1 {
		t.Errorf("Dir = %d, want %d (a hard link counted once)", got, 1000+234+1)
	}
	if n, err := Dir(filepath.Join(d, "missing")); n != 0 || err != nil {
		t.Errorf("missing root: %d, %v", n, err)
	}
}
