package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSplitCpArg(t *testing.T) {
	for arg, want := range map[string][2]string{
		"web:/etc/hosts":   {"web", "/etc/hosts"},
		"web:relative":     {"web", "relative"},
		"/abs:with/colon":  {"", "/abs:with/colon"},
		"./file:name.txt":  {"", "./file:name.txt"},
		"plain":            {"", "plain"},
		"-":                {"", "-"},
		"a1b2c3:/tmp/x:yz": {"a1b2c3", "/tmp/x:yz"},
	} {
		if c, p := splitCpArg(arg); c != want[0] || p != want[1] {
			t.Errorf("%q: %q %q, want %q", arg, c, p, want)
		}
	}
}

func TestSplitPathDirEntry(t *testing.T) {
	for p, want := range map[string][2]string{
		"/a/b":    {"/a", "b"},
		"/a/b/":   {"/a", "b"},
		"/a/b/.":  {"/a/b", "."},
		"/a/b/./": {"/a/b", "."},
		"/":       {"/", "/"},
		"b":       {".", "b"},
	} {
		if d, b := splitPathDirEntry(p); d != want[0] || b != want[1] {
			t.Errorf("%q: %q %q, want %q", p, d, b, want)
		}
	}
}

// The table of docker cp's documentation, for both directions.
func TestPlanCopy(t *testing.T) {
	cases := []struct {
		name                string
		srcIsDir, contents  bool
		dst                 string
		dstExists, dstIsDir bool
		want                copyPlan
		err                 error
	}{
		{"file to a new name", false, false, "/out/new", false, false, copyPlan{"/out", "new"}, nil},
		{"file to an existing file", false, false, "/out/f", true, false, copyPlan{"/out", "f"}, nil},
		{"file into a directory", false, false, "/out/d", true, true, copyPlan{"/out/d", "src"}, nil},
		{"file into a directory with /", false, false, "/out/d/", true, true, copyPlan{"/out/d/", "src"}, nil},
		{"file to a missing directory", false, false, "/out/new/", false, false, copyPlan{}, errDirNotExists},
		{"file to a missing directory /.", false, false, "/out/new/.", false, false, copyPlan{}, errDirNotExists},
		{"directory to a new name", true, false, "/out/new", false, false, copyPlan{"/out", "new"}, nil},
		{"directory to a new name with /", true, false, "/out/new/", false, false, copyPlan{"/out", "new"}, nil},
		{"directory onto a file", true, false, "/out/f", true, false, copyPlan{}, errCannotCopyDir},
		{"directory into a directory", true, false, "/out/d", true, true, copyPlan{"/out/d", "src"}, nil},
		{"directory's contents into a directory", true, true, "/out/d", true, true, copyPlan{"/out/d", ""}, nil},
		{"directory's contents to a new name", true, true, "/out/new", false, false, copyPlan{"/out", "new"}, nil},
		{"directory's contents onto a file", true, true, "/out/f", true, false, copyPlan{}, errCannotCopyDir},
	}
	for _, c := range cases {
		got, err := planCopy(c.srcIsDir, c.contents, "src", c.dst, c.dstExists, c.dstIsDir)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, got, err, c.want, c.err)
		}
	}
}

func TestSrcEntry(t *testing.T) {
	for p, want := range map[string]struct {
		name     string
		contents bool
	}{
		"/data": {"data", false}, "/data/": {"data", false}, "/data/.": {"", true}, "/": {"", true}, "/a/b.txt": {"b.txt", false},
	} {
		if n, c := srcEntry(p); n != want.name || c != want.contents {
			t.Errorf("%q: %q %v, want %+v", p, n, c, want)
		}
	}
}

type entry struct {
	name, body, link string
	flag             byte
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.flag, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link, ModTime: time.Unix(1e9, 0)}
		switch e.flag {
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeSymlink, tar.TypeLink:
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return &buf
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%v", err)
	}
	return string(b)
}

func TestExtractTarRebases(t *testing.T) {
	archive := func() *bytes.Buffer {
		return tarOf(t, entry{name: "data/", flag: tar.TypeDir}, entry{name: "data/v", body: "v\n", flag: tar.TypeReg},
			entry{name: "data/sub/", flag: tar.TypeDir}, entry{name: "data/sub/w", body: "w\n", flag: tar.TypeReg},
			entry{name: "data/hard", link: "data/v", flag: tar.TypeLink}, entry{name: "data/abs", link: "/etc/passwd", flag: tar.TypeSymlink})
	}
	dir := t.TempDir()
	// Under another name (a new DEST), into a directory, contents only.
	if err := extractTar(archive(), dir, &rebase{root: "copy"}, false); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "copy/v")) != "v\n" || readFile(t, filepath.Join(dir, "copy/sub/w")) != "w\n" ||
		readFile(t, filepath.Join(dir, "copy/hard")) != "v\n" {
		t.Error("rebased copy is wrong")
	}
	if l, _ := os.Readlink(filepath.Join(dir, "copy/abs")); l != "/etc/passwd" {
		t.Errorf("symlink made as %q", l)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "copy")); fi == nil || fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(time.Unix(1e9, 0)) {
		t.Errorf("directory mode and time not kept: %v", fi)
	}
	if err := extractTar(archive(), dir, &rebase{}, false); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "v")) != "v\n" {
		t.Error("contents only: v not at the top")
	}
	// Docker's daemons root a "/." archive at "."
	dot := tarOf(t, entry{name: "./", flag: tar.TypeDir}, entry{name: "./x", body: "x", flag: tar.TypeReg}, entry{name: "y.txt", body: "y", flag: tar.TypeReg})
	if err := extractTar(dot, dir, &rebase{root: "dotted"}, false); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "dotted/x")) != "x" || readFile(t, filepath.Join(dir, "dotted/y.txt")) != "y" {
		t.Error("a '.' archive is wrong")
	}
	// A file over a file: replaced; over a directory: refused.
	os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o644)
	if err := extractTar(tarOf(t, entry{name: "x", body: "new", flag: tar.TypeReg}), dir, &rebase{root: "f"}, false); err != nil || readFile(t, filepath.Join(dir, "f")) != "new" {
		t.Errorf("file over a file: %v", err)
	}
	err := extractTar(tarOf(t, entry{name: "x", body: "new", flag: tar.TypeReg}), dir, &rebase{root: "copy"}, false)
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite directory") {
		t.Errorf("file over a directory: %v", err)
	}
	err = extractTar(tarOf(t, entry{name: "x/", flag: tar.TypeDir}), dir, &rebase{root: "f"}, false)
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite non-directory") {
		t.Errorf("directory over a file: %v", err)
	}
}

// Archives come from containers: nothing may land outside DEST.
func TestExtractTarRefusesEscapes(t *testing.T) {
	outside := t.TempDir()
	cases := []struct {
		name    string
		entries []entry
		errIn   string
	}{
		{"dot-dot", []entry{{name: "../escape", body: "x", flag: tar.TypeReg}}, "path traversal"},
		{"dot-dot inside", []entry{{name: "a/../../escape", body: "x", flag: tar.TypeReg}}, "path traversal"},
		{"absolute", []entry{{name: "/escape", body: "x", flag: tar.TypeReg}}, "absolute path"},
		{"through a symlink out", []entry{{name: "d/", flag: tar.TypeDir}, {name: "d/link", link: outside, flag: tar.TypeSymlink},
			{name: "d/link/escape", body: "x", flag: tar.TypeReg}}, "symlink out of"},
		{"through a relative symlink out", []entry{{name: "d/", flag: tar.TypeDir}, {name: "d/up", link: "../../..", flag: tar.TypeSymlink},
			{name: "d/up/escape", body: "x", flag: tar.TypeReg}}, "symlink out of"},
		{"hard link out", []entry{{name: "d/", flag: tar.TypeDir}, {name: "d/h", link: "../../etc/passwd", flag: tar.TypeLink}}, "path traversal"},
		{"outside the root", []entry{{name: "d/", flag: tar.TypeDir}, {name: "other/x", body: "x", flag: tar.TypeReg}}, "invalid copy source content"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		dest := filepath.Join(dir, "dest")
		os.Mkdir(dest, 0o755)
		err := extractTar(tarOf(t, c.entries...), dest, &rebase{root: "d"}, false)
		if err == nil || !strings.Contains(err.Error(), c.errIn) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.errIn)
		}
		for _, p := range []string{filepath.Join(outside, "escape"), filepath.Join(dir, "escape"), "/escape"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s: %s written", c.name, p)
				os.Remove(p)
			}
		}
	}
	// A symlink that stays inside DEST is followed, as a file system would.
	dest := t.TempDir()
	err := extractTar(tarOf(t, entry{name: "d/", flag: tar.TypeDir}, entry{name: "d/real/", flag: tar.TypeDir},
		entry{name: "d/alias", link: "real", flag: tar.TypeSymlink}, entry{name: "d/alias/f", body: "in", flag: tar.TypeReg}), dest, &rebase{root: "d"}, false)
	if err != nil || readFile(t, filepath.Join(dest, "d/real/f")) != "in" {
		t.Errorf("through a symlink inside: %v", err)
	}
	// A symlink where a file is written is replaced, not written through.
	target := filepath.Join(outside, "victim")
	os.WriteFile(target, []byte("safe"), 0o644)
	os.Symlink(target, filepath.Join(dest, "f"))
	if err := extractTar(tarOf(t, entry{name: "x", body: "evil", flag: tar.TypeReg}), dest, &rebase{root: "f"}, false); err != nil {
		t.Fatal(err)
	}
	if readFile(t, target) != "safe" || readFile(t, filepath.Join(dest, "f")) != "evil" {
		t.Error("a file was written through an existing symlink")
	}
}

func TestWriteTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "a/b"), 0o750)
	os.WriteFile(filepath.Join(src, "a/b/f"), []byte("content"), 0o640)
	os.Symlink("b/f", filepath.Join(src, "a/l"))
	for _, root := range []string{"copy", ""} {
		var buf bytes.Buffer
		if err := writeTar(&buf, filepath.Join(src, "a"), root); err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		// What the daemon does: extract in place, the names as written.
		rb := &rebase{root: root}
		if root == "" {
			rb = &rebase{archive: ".", seen: true}
		}
		if err := extractTar(&buf, dst, rb, false); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(dst, root, "b/f")); got != "content" {
			t.Errorf("root %q: %q", root, got)
		}
		if fi, err := os.Stat(filepath.Join(dst, root, "b")); err != nil || fi.Mode().Perm() != 0o750 {
			t.Errorf("root %q: mode of b %v %v", root, fi, err)
		}
		if l, _ := os.Readlink(filepath.Join(dst, root, "l")); l != "b/f" {
			t.Errorf("root %q: link %q", root, l)
		}
	}
}

func TestLocalDest(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	os.Symlink("d", filepath.Join(dir, "ld"))
	os.Symlink("missing", filepath.Join(dir, "dangling"))
	cases := []struct {
		p             string
		want          string
		exists, isDir bool
		err           bool
	}{
		{"d", "d", true, true, false},
		{"f", "f", true, false, false},
		{"ld", "d", true, true, false},
		{"dangling", "missing", false, false, false},
		{"new", "new", false, false, false},
		{"nodir/new", "", false, false, true},
		{"f/new", "", false, false, true},
	}
	for _, c := range cases {
		p, exists, isDir, err := localDest(filepath.Join(dir, c.p))
		if (err != nil) != c.err || (!c.err && (p != filepath.Join(dir, c.want) || exists != c.exists || isDir != c.isDir)) {
			t.Errorf("%s: %q %v %v %v", c.p, p, exists, isDir, err)
		}
	}
}

// What a container hands out is not trusted with set-uid/set-gid bits or
// device nodes on the host, unless -a asks for them.
func TestExtractTarSpecialModes(t *testing.T) {
	special := func(dev bool) *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		mt := time.Unix(1e9, 0)
		tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o2775, ModTime: mt})
		tw.WriteHeader(&tar.Header{Name: "d/su", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 2, ModTime: mt})
		tw.Write([]byte("su"))
		tw.WriteHeader(&tar.Header{Name: "d/tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mt})
		tw.WriteHeader(&tar.Header{Name: "d/fifo", Typeflag: tar.TypeFifo, Mode: 0o644, ModTime: mt})
		if dev {
			tw.WriteHeader(&tar.Header{Name: "d/sda", Typeflag: tar.TypeBlock, Mode: 0o666, Devmajor: 8, ModTime: mt})
		}
		tw.Close()
		return &buf
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	}

	dir := t.TempDir()
	err := extractTar(special(true), dir, &rebase{root: "d"}, false)
	if err == nil || !strings.Contains(err.Error(), `refusing to copy device "d/sda"`) {
		t.Errorf("a block device without -a: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d/sda")); err == nil {
		t.Error("the device node was made")
	}
	dir = t.TempDir()
	if err := extractTar(special(false), dir, &rebase{root: "d"}, false); err != nil {
		t.Fatal(err)
	}
	if m := mode(filepath.Join(dir, "d/su")); m != 0o755 {
		t.Errorf("set-uid file without -a: mode %v, want 0755", m)
	}
	if m := mode(filepath.Join(dir, "d")); m != 0o775 {
		t.Errorf("set-gid directory without -a: mode %v, want 0775", m)
	}
	if m := mode(filepath.Join(dir, "d/tmp")); m != os.ModeSticky|0o777 {
		t.Errorf("sticky directory: mode %v, want the sticky bit kept", m)
	}

	if os.Getuid() != 0 {
		t.Skip("making a device node needs root")
	}
	dir = t.TempDir()
	if err := extractTar(special(true), dir, &rebase{root: "d"}, true); err != nil {
		t.Fatalf("with -a: %v", err)
	}
	if m := mode(filepath.Join(dir, "d/su")); m != os.ModeSetuid|0o755 {
		t.Errorf("set-uid file with -a: mode %v", m)
	}
	if m := mode(filepath.Join(dir, "d")); m != os.ModeSetgid|0o775 {
		t.Errorf("set-gid directory with -a: mode %v", m)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "d/sda")); err != nil || fi.Mode()&os.ModeDevice == 0 {
		t.Errorf("device with -a: %v %v", fi, err)
	}
}
