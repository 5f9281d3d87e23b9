package volume

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The copy is made beside the volume and renamed into it: the volume
// stays empty until then, its directory is the same one afterwards, and
// an entry written into it meanwhile (by a container that has it mounted
// already) is not replaced.
func TestCopyUpPrivateThenRename(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "srv/sub"), 0o750)
	os.WriteFile(filepath.Join(rootfs, "srv/sub/f"), []byte("image"), 0o4755)
	os.WriteFile(filepath.Join(rootfs, "srv/taken"), []byte("image"), 0o644)
	os.Symlink("/", filepath.Join(rootfs, "srv/root"))
	os.Chown(filepath.Join(rootfs, "srv/sub/f"), 1000, 1001)
	syscall.Chmod(filepath.Join(rootfs, "srv/sub/f"), 0o4755)
	syscall.Chmod(filepath.Join(rootfs, "srv"), 0o1777)

	volDir := filepath.Join(t.TempDir(), "vol")
	data := filepath.Join(volDir, "_data")
	os.MkdirAll(data, 0o755)
	var before syscall.Stat_t
	syscall.Stat(data, &before)

	var sawPrivate string
	beforeMove = func(private string) {
		sawPrivate = private
		if filepath.Dir(private) != volDir || !strings.HasPrefix(filepath.Base(private), ".copyup-") {
			t.Errorf("private directory %s is not beside the volume's", private)
		}
		if entries, _ := os.ReadDir(data); len(entries) != 0 {
			t.Errorf("the volume has %d entries before the move", len(entries))
		}
		if b, _ := os.ReadFile(filepath.Join(private, "sub/f")); string(b) != "image" {
			t.Errorf("private copy of sub/f: %q", b)
		}
		// A container with the volume mounted writes meanwhile.
		os.WriteFile(filepath.Join(data, "taken"), []byte("container"), 0o600)
	}
	defer func() { beforeMove = nil }()
	if err := CopyUp(rootfs, "/srv", data); err != nil {
		t.Fatal(err)
	}
	if sawPrivate == "" {
		t.Fatal("no private directory")
	}
	if _, err := os.Stat(sawPrivate); !os.IsNotExist(err) {
		t.Errorf("private directory left: %v", err)
	}
	var after syscall.Stat_t
	syscall.Stat(data, &after)
	if after.Ino != before.Ino {
		t.Error("the volume's directory was replaced")
	}
	if after.Mode&0o7777 != 0o1777 {
		t.Errorf("volume mode %o, want the image directory's 1777", after.Mode&0o7777)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "taken")); string(b) != "container" {
		t.Errorf("an entry written meanwhile was replaced: %q", b)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(data, "sub/f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o4755 {
		t.Errorf("sub/f: owner %d:%d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if target, _ := os.Readlink(filepath.Join(data, "root")); target != "/" {
		t.Errorf("symlink copied as %q", target)
	}
}

// A mount point whose parent is a symlink to "/" resolves inside the root
// filesystem, not on the host.
func TestCopyUpResolvesInRoot(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/mine"), []byte("image"), 0o644)
	os.Symlink("/", filepath.Join(rootfs, "up"))
	data := filepath.Join(t.TempDir(), "_data")
	os.Mkdir(data, 0o755)
	if err := CopyUp(rootfs, "/up/etc", data); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(data)
	if len(entries) != 1 || entries[0].Name() != "mine" {
		t.Errorf("copied %v, want the image's /etc (mine)", entries)
	}
}
