package daemon

import (
	"os"
	"testing"
)

// A data root an older engine made 0711 (or wider) is narrowed to 0710;
// a narrower one stays as it is.
func TestNarrowMode(t *testing.T) {
	for _, c := range []struct{ from, want os.FileMode }{{0o711, 0o710}, {0o755, 0o710}, {0o700, 0o700}, {0o710, 0o710}} {
		dir := t.TempDir()
		if err := os.Chmod(dir, c.from); err != nil {
			t.Fatal(err)
		}
		if err := narrowMode(dir, 0o710); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(dir)
		if fi.Mode().Perm() != c.want {
			t.Errorf("%o narrowed to %o, want %o", c.from, fi.Mode().Perm(), c.want)
		}
	}
}
