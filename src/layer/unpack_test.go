package layer

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// docker cp's options: the tar's owners, or the one given (cp -a); and
// with NoOverwriteDirNonDir, no directory replaced by anything else nor
// anything else by a directory, while directories still merge and files
// are still replaced.
func TestUnpackAtOptions(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give files owners")
	}
	owned := func(e entry, uid, gid int) entry {
		e.hdr.Uid, e.hdr.Gid = uid, gid
		return e
	}
	tarball := makeTar(t, []entry{owned(dir("d", 0o755), 1000, 1001), owned(file("d/f", "x", 0o644), 1002, 1003), owned(file("g", "y", 0o600), 0, 0)}, 0)
	unpack := func(dst string, b []byte, opts UnpackOptions) error {
		t.Helper()
		d, err := os.Open(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		return UnpackAt(context.Background(), bytes.NewReader(b), d, opts)
	}
	owners := func(dst string) map[string][2]uint32 {
		out := map[string][2]uint32{}
		for _, n := range []string{"d", "d/f", "g"} {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dst, n), &st); err != nil {
				t.Fatal(err)
			}
			out[n] = [2]uint32{st.Uid, st.Gid}
		}
		return out
	}

	dst := t.TempDir()
	if err := unpack(dst, tarball, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := owners(dst), map[string][2]uint32{"d": {1000, 1001}, "d/f": {1002, 1003}, "g": {0, 0}}; !maps.Equal(got, want) {
		t.Errorf("the tar's owners: %v, want %v", got, want)
	}
	dst = t.TempDir()
	if err := unpack(dst, tarball, UnpackOptions{Owner: &Owner{UID: 33, GID: 34}}); err != nil {
		t.Fatal(err)
	}
	if got, want := owners(dst), map[string][2]uint32{"d": {33, 34}, "d/f": {33, 34}, "g": {33, 34}}; !maps.Equal(got, want) {
		t.Errorf("owned by 33:34: %v, want %v", got, want)
	}

	// dst now has d/ (a directory) and g (a file).
	noOverwrite := UnpackOptions{NoOverwriteDirNonDir: true}
	for _, c := range []struct {
		name    string
		entries []entry
		err     *OverwriteError
	}{
		{"a file onto a directory", []entry{file("d", "z", 0o644)}, &OverwriteError{Name: "d", Dir: true}},
		{"a symlink onto a directory", []entry{symlink("d", "g")}, &OverwriteError{Name: "d", Dir: true}},
		{"a directory onto a file", []entry{dir("g", 0o755)}, &OverwriteError{Name: "g", Dir: false}},
		{"a directory onto a directory", []entry{dir("d", 0o700), file("d/h", "h", 0o644)}, nil},
		{"a file onto a file", []entry{file("g", "new", 0o644), file("d/f", "new", 0o644)}, nil},
	} {
		err := unpack(dst, makeTar(t, c.entries, 0), noOverwrite)
		var oe *OverwriteError
		switch {
		case c.err == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != nil && (!errors.As(err, &oe) || *oe != *c.err):
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "g")); string(b) != "new" {
		t.Errorf("g: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dst, "d/h")); err != nil {
		t.Errorf("d did not merge: %v", err)
	}
	// Without the option a directory is replaced, as before.
	if err := unpack(dst, makeTar(t, []entry{file("d", "z", 0o644)}, 0), UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "d")); string(b) != "z" {
		t.Errorf("d after a file replaced it: %q", b)
	}
}
