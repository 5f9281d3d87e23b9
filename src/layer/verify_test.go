package layer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Verify accepts a freshly committed layer and catches each way a power cut
// (or anything else) could leave it different from what was pulled: lost or
// truncated file content, a lost empty directory or symlink, a lost chmod
// or chown, a lost whiteout or opaque mark.
func TestVerify(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, d string)
		wantErr string // "" means Verify must pass
	}{
		{"intact", func(*testing.T, string) {}, ""},
		{"content changed", func(t *testing.T, d string) {
			writeFile(t, filepath.Join(d, "etc/big"), strings.Repeat("x", 4800000))
		}, "etc/big"},
		{"file truncated", func(t *testing.T, d string) {
			must(t, os.Truncate(filepath.Join(d, "etc/big"), 100))
		}, "etc/big"},
		{"file gone", func(t *testing.T, d string) {
			must(t, os.Remove(filepath.Join(d, "home/user/notes")))
		}, "home/user/notes"},
		{"empty directory gone", func(t *testing.T, d string) {
			must(t, os.RemoveAll(filepath.Join(d, "run")))
		}, "run"},
		{"symlink gone", func(t *testing.T, d string) {
			must(t, os.Remove(filepath.Join(d, "etc/localtime")))
		}, "etc/localtime"},
		{"symlink retargeted", func(t *testing.T, d string) {
			p := filepath.Join(d, "etc/localtime")
			must(t, os.Remove(p))
			must(t, os.Symlink("/elsewhere", p))
		}, "symlink to"},
		{"mode lost", func(t *testing.T, d string) {
			must(t, os.Chmod(filepath.Join(d, "usr/bin/su"), 0o755))
		}, "mode"},
		{"owner lost", func(t *testing.T, d string) {
			must(t, os.Lchown(filepath.Join(d, "home/user/notes"), 0, 0))
		}, "owner"},
		{"whiteout gone", func(t *testing.T, d string) {
			must(t, os.Remove(filepath.Join(d, "lib/removed")))
		}, "whiteout"},
		{"opaque mark gone", func(t *testing.T, d string) {
			must(t, unix.Lremovexattr(filepath.Join(d, "opt"), "trusted.overlay.opaque"))
		}, "opaque"},
		{"tar-split gone", func(t *testing.T, d string) {
			must(t, os.Remove(filepath.Join(filepath.Dir(d), "tar-split.json.gz")))
		}, "tar-split"},
	}
	raw := richLayer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			l, err := ingest(t, s, "", raw, gzipped(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			c.damage(t, l.Dir())
			err = l.Verify()
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("Verify passed a damaged layer")
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("Verify: %v, want an error about %q", err, c.wantErr)
			}
		})
	}
}

// Leftovers is empty after Open's recovery, whatever a crash left, and
// names what recovery would have to remove.
func TestLeftovers(t *testing.T) {
	root := t.TempDir()
	s, db := openStore(t, root)
	raw := makeTar(t, []entry{file("f", "1", 0o644)}, 0)
	l, err := ingest(t, s, "", raw, raw)
	if err != nil {
		t.Fatal(err)
	}
	if left, err := s.Leftovers(); err != nil || len(left) != 0 {
		t.Fatalf("Leftovers of a clean store = %v, %v", left, err)
	}
	// What a crash can leave: an ingestion, an unrecorded layer directory.
	must(t, os.MkdirAll(filepath.Join(s.tmpDir(), "0123456789abcdef", "diff"), 0o700))
	must(t, os.MkdirAll(filepath.Join(s.layersDir(), strings.Repeat("ab", 32), "diff"), 0o700))
	// And what recovery does not repair but Verify and Leftovers report.
	must(t, os.Remove(filepath.Join(filepath.Dir(l.Dir()), "tar-split.json.gz")))
	left, err := s.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(left, "\n"); len(left) != 3 || !strings.Contains(got, "ingestion") ||
		!strings.Contains(got, "unrecorded") || !strings.Contains(got, "incomplete") {
		t.Fatalf("Leftovers = %q", left)
	}
	db.Close()
	s, db = openStore(t, root)
	defer db.Close()
	left, err = s.Leftovers()
	if err != nil || len(left) != 1 || !strings.Contains(left[0], "incomplete") {
		t.Fatalf("Leftovers after recovery = %q, %v", left, err)
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	must(t, os.WriteFile(p, []byte(body), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
