package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestCreateRemoveAndCopyUp(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(filepath.Join(dir, "volumes"), db)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Create("data", map[string]string{"a": "b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Create("data", nil, nil)
	if err != nil || again.Mountpoint != v.Mountpoint {
		t.Errorf("create is not idempotent: %v %v", again, err)
	}
	anon, err := s.Create("", nil, nil)
	if err != nil || !anon.Anonymous || len(anon.Name) != 64 {
		t.Errorf("anonymous: %+v %v", anon, err)
	}
	if _, err := s.Create("bad/name", nil, nil); err == nil {
		t.Error("bad name accepted")
	}
	// Copy-up from a root filesystem, symlinks not followed out of it.
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "srv/sub"), 0o750)
	os.WriteFile(filepath.Join(rootfs, "srv/sub/f"), []byte("content"), 0o640)
	os.Symlink("/etc/passwd", filepath.Join(rootfs, "srv/link"))
	os.Lchown(filepath.Join(rootfs, "srv/sub/f"), 1000, 1001)
	if err := CopyUp(rootfs, "/srv", v.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(v.Mountpoint, "sub/f")); string(b) != "content" {
		t.Errorf("copied file: %q", b)
	}
	if target, _ := os.Readlink(filepath.Join(v.Mountpoint, "link")); target != "/etc/passwd" {
		t.Errorf("symlink copied as %q", target)
	}
	fi, _ := os.Stat(filepath.Join(v.Mountpoint, "sub/f"))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	// Not again once the volume has data.
	os.WriteFile(filepath.Join(rootfs, "srv/new"), []byte("x"), 0o644)
	CopyUp(rootfs, "/srv", v.Mountpoint)
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "new")); !os.IsNotExist(err) {
		t.Error("copy-up into a volume that has data")
	}
	// A mount point that is a symlink out of the root copies nothing from the host.
	os.Symlink("/etc", filepath.Join(rootfs, "escape"))
	w, err := s.Create("escape-test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CopyUp(rootfs, "/escape", w.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(w.Mountpoint); len(entries) != 0 {
		t.Errorf("copied the host's /etc through a symlink: %d entries", len(entries))
	}
	if err := s.Remove("data", []string{"ctr1"}); err == nil {
		t.Error("removed a volume in use")
	}
	if err := s.Remove("data", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "volumes", "data")); !os.IsNotExist(err) {
		t.Error("volume directory left")
	}
	// A directory the database does not know is removed at open.
	os.MkdirAll(filepath.Join(dir, "volumes", "stray", "_data"), 0o755)
	if _, err := Open(filepath.Join(dir, "volumes"), db); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "volumes", "stray")); !os.IsNotExist(err) {
		t.Error("stray volume directory kept")
	}
}

// The volumes directory is 0710, and an older, wider one is narrowed.
func TestRootMode(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, pre := range []os.FileMode{0, 0o701, 0o755, 0o700} {
		root := filepath.Join(dir, "volumes")
		os.RemoveAll(root)
		want := os.FileMode(0o710)
		if pre != 0 {
			if err := os.Mkdir(root, pre); err != nil {
				t.Fatal(err)
			}
			os.Chmod(root, pre) // past the umask
			if pre == 0o700 {
				want = pre
			}
		}
		if _, err := Open(root, db); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(root)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("existing %o: volumes directory mode %o, want %o", pre, got, want)
		}
	}
}

// Docker's volume events: create once (not again for an existing name),
// destroy on removal.
func TestVolumeEvents(t *testing.T) {
	s := openStore(t)
	var got []string
	s.Notify = func(action, name string, attrs map[string]string) {
		got = append(got, action+" "+name+" "+attrs["driver"])
	}
	s.Create("ev", nil, nil)
	s.Create("ev", nil, nil)
	if err := s.Remove("ev", nil); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "create ev local|destroy ev local" {
		t.Errorf("events %q", got)
	}
}

func openStore(t *testing.T) *Store {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Open(filepath.Join(dir, "volumes"), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
