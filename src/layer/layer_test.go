package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// entry is one tar entry for a test layer.
type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string, mode int64) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)),
		ModTime: time.Unix(1700000000, 0)}, body}
}

func dir(name string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: time.Unix(1600000000, 0)}}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, ModTime: time.Unix(1600000000, 0)}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// makeTar builds a tar stream; pad adds trailing zeros past the end blocks,
// as some tools write.
func makeTar(t *testing.T, entries []entry, pad int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	buf.Write(make([]byte, pad))
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

func openStore(t *testing.T, root string) (*Store, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(root, "layers"), db, Options{PaceWindow: 2 << 20})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return s, db
}

func newStore(t *testing.T) *Store {
	root := t.TempDir()
	s, db := openStore(t, root)
	t.Cleanup(func() { db.Close() })
	return s
}

// ingest applies and commits blob with the tar's diffID.
func ingest(t *testing.T, s *Store, parent digest.Digest, tarBytes, blob []byte) (Layer, error) {
	t.Helper()
	in, err := s.Ingest(parent, digest.FromBytes(tarBytes))
	if err != nil {
		return Layer{}, err
	}
	if err := in.Apply(context.Background(), bytes.NewReader(blob), digest.FromBytes(blob), int64(len(blob))); err != nil {
		return Layer{}, err
	}
	return in.Commit()
}

func richLayer(t *testing.T) []byte {
	big := strings.Repeat("0123456789abcdef", 300000) // 4.8 MB: crosses the pace window
	suid := file("usr/bin/su", "#!/bin/true\n", 0o4755)
	suid.hdr.Uid, suid.hdr.Gid = 0, 0
	owned := file("home/user/notes", "hello", 0o640)
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	xattr := file("etc/xattr", "x", 0o644)
	xattr.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.test": "value"}
	fifo := entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}}
	null := entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}
	return makeTar(t, []entry{
		dir("./", 0o755),
		dir("usr/", 0o755), dir("usr/bin/", 0o755), suid,
		dir("home/", 0o755), dir("home/user/", 0o700), owned,
		dir("etc/", 0o755), xattr, file("etc/big", big, 0o644),
		symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
		hardlink("usr/bin/su-again", "usr/bin/su"),
		dir("run/", 0o755), fifo, dir("dev/", 0o755), null,
		file("lib/.wh.removed", "", 0o644),
		dir("opt/", 0o755), file("opt/.wh..wh..opq", "", 0o644),
		file("nodir/implicit/parent", "p", 0o644),
	}, 5120)
}

func TestApplyCommitAndRebuild(t *testing.T) {
	raw := richLayer(t)
	for name, blob := range map[string][]byte{"gzip": gzipped(t, raw), "zstd": zstded(t, raw), "plain": raw} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			l, err := ingest(t, s, "", raw, blob)
			if err != nil {
				t.Fatal(err)
			}
			if l.DiffID != digest.FromBytes(raw) || l.ChainID != l.DiffID || l.Parent != "" {
				t.Errorf("layer = %+v", l)
			}
			d := l.Dir()
			check := func(rel string, mode os.FileMode, uid, gid uint32) {
				t.Helper()
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(d, rel), &st); err != nil {
					t.Error(err)
					return
				}
				if got := os.FileMode(st.Mode & 0o7777); got != mode&0o7777 {
					t.Errorf("%s: mode %o, want %o", rel, got, mode&0o7777)
				}
				if st.Uid != uid || st.Gid != gid {
					t.Errorf("%s: owner %d:%d, want %d:%d", rel, st.Uid, st.Gid, uid, gid)
				}
			}
			check("usr/bin/su", 0o4755, 0, 0)
			check("home/user/notes", 0o640, 1000, 1001)
			check("home/user", 0o700, 0, 0)
			fi, err := os.Stat(filepath.Join(d, "etc/big"))
			if err != nil || fi.Size() != 4800000 || !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
				t.Errorf("etc/big: %v %v", fi, err)
			}
			if fi, _ := os.Stat(filepath.Join(d, "usr")); fi == nil || !fi.ModTime().Equal(time.Unix(1600000000, 0)) {
				t.Errorf("directory time not kept: %v", fi)
			}
			if target, _ := os.Readlink(filepath.Join(d, "etc/localtime")); target != "/usr/share/zoneinfo/UTC" {
				t.Errorf("symlink target %q", target)
			}
			var a, b unix.Stat_t
			unix.Lstat(filepath.Join(d, "usr/bin/su"), &a)
			unix.Lstat(filepath.Join(d, "usr/bin/su-again"), &b)
			if a.Ino != b.Ino || a.Nlink != 2 {
				t.Errorf("hard link not kept: inodes %d %d, nlink %d", a.Ino, b.Ino, a.Nlink)
			}
			var st unix.Stat_t
			if unix.Lstat(filepath.Join(d, "lib/removed"), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("whiteout not converted to a 0:0 character device: %+v", st)
			}
			if _, err := os.Lstat(filepath.Join(d, "lib/.wh.removed")); !os.IsNotExist(err) {
				t.Error("whiteout file kept under its tar name")
			}
			buf := make([]byte, 8)
			if n, err := unix.Lgetxattr(filepath.Join(d, "opt"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
				t.Errorf("opaque dir: %q %v", buf[:n], err)
			}
			if n, err := unix.Lgetxattr(filepath.Join(d, "etc/xattr"), "user.test", buf); err == nil && string(buf[:n]) != "value" {
				t.Errorf("xattr = %q", buf[:n])
			}
			if unix.Lstat(filepath.Join(d, "run/fifo"), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
				t.Error("fifo not created")
			}
			if unix.Lstat(filepath.Join(d, "dev/null"), &st) != nil || st.Rdev != unix.Mkdev(1, 3) {
				t.Error("dev/null not created")
			}

			// The rebuilt stream is the original tar, byte for byte.
			checkRebuild(t, l, raw)

			all, err := s.List()
			if err != nil || len(all) != 1 || all[0].ChainID != l.ChainID {
				t.Errorf("List = %v, %v", all, err)
			}
			if tmp, _ := os.ReadDir(s.tmpDir()); len(tmp) != 0 {
				t.Errorf("tmp not empty after commit: %v", tmp)
			}
		})
	}
}

func TestChildLayerAndChainID(t *testing.T) {
	s := newStore(t)
	base := makeTar(t, []entry{file("a", "1", 0o644)}, 0)
	top := makeTar(t, []entry{file("b", "2", 0o644)}, 0)
	l1, err := ingest(t, s, "", base, base)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := ingest(t, s, l1.ChainID, top, gzipped(t, top))
	if err != nil {
		t.Fatal(err)
	}
	want := digest.FromString(l1.ChainID.String() + " " + digest.FromBytes(top).String())
	if l2.ChainID != want || l2.Parent != l1.ChainID {
		t.Errorf("chain ID %s parent %s; want %s, %s", l2.ChainID, l2.Parent, want, l1.ChainID)
	}
	// The same layer again: no second copy.
	again, err := ingest(t, s, l1.ChainID, top, top)
	if err != nil || again.ChainID != l2.ChainID {
		t.Errorf("re-ingest = %v, %v", again, err)
	}
	if dirs, _ := os.ReadDir(s.layersDir()); len(dirs) != 2 {
		t.Errorf("%d layer directories, want 2", len(dirs))
	}
	if err := s.Remove(l2.ChainID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(l2.ChainID); err == nil {
		t.Error("removed layer still visible")
	}
	if _, err := os.Stat(s.dirOf(l2.ChainID)); !os.IsNotExist(err) {
		t.Error("removed layer's files remain")
	}
}

func TestHostileLayers(t *testing.T) {
	block := entry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o600, Devmajor: 8}}
	kmem := entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/kmem", Mode: 0o600, Devmajor: 1, Devminor: 2}}
	overlayAttr := file("x", "x", 0o644)
	overlayAttr.hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
	cases := map[string][]entry{
		"dot-dot":              {file("../escape", "evil", 0o644)},
		"dot-dot inside":       {dir("a/", 0o755), file("a/../../escape", "evil", 0o644)},
		"absolute":             {file("/escape", "evil", 0o644)},
		"symlink escape":       {symlink("a", "OUTSIDE"), file("a/escape", "evil", 0o644)},
		"symlink to dot-dot":   {symlink("up", ".."), file("up/escape", "evil", 0o644)},
		"symlinked parent":     {dir("d/", 0o755), symlink("d/link", "OUTSIDE"), file("d/link/escape", "evil", 0o644)},
		"hardlink escape":      {hardlink("h", "../escape-target")},
		"hardlink absolute":    {hardlink("h", "/etc/passwd")},
		"hardlink via symlink": {symlink("s", "OUTSIDE"), hardlink("h", "s/escape-target")},
		"hardlink to missing":  {hardlink("h", "nothing")},
		"block device":         {block},
		"kmem":                 {kmem},
		"overlay xattr":        {overlayAttr},
		"long component":       {file(strings.Repeat("n", 256), "x", 0o644)},
		"long path":            {file(strings.Repeat("abcdefgh/", 460)+"f", "x", 0o644)},
		"file as parent":       {file("f", "x", 0o644), file("f/g", "y", 0o644)},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			outside := t.TempDir()
			os.WriteFile(filepath.Join(outside, "escape-target"), []byte("host file"), 0o644)
			for i := range entries { // aim symlinks at a real directory outside
				if entries[i].hdr.Linkname == "OUTSIDE" {
					entries[i].hdr.Linkname = outside
				}
			}
			raw := makeTar(t, entries, 0)
			_, err := ingest(t, s, "", raw, gzipped(t, raw))
			var he *HostileError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want a HostileError", err)
			}
			if out, _ := os.ReadDir(outside); len(out) != 1 {
				t.Errorf("something was written outside the layer: %v", out)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(s.root), "escape")); !os.IsNotExist(err) {
				t.Error("escape written next to the store")
			}
			if tmp, _ := os.ReadDir(s.tmpDir()); len(tmp) != 0 {
				t.Errorf("ingestion left behind: %v", tmp)
			}
			if all, _ := s.List(); len(all) != 0 {
				t.Errorf("hostile layer visible: %v", all)
			}
		})
	}
}

func TestBadBlobs(t *testing.T) {
	raw := makeTar(t, []entry{file("a", strings.Repeat("x", 100000), 0o644)}, 0)
	blob := gzipped(t, raw)
	ctx := context.Background()
	cases := []struct {
		name    string
		diffID  digest.Digest
		data    []byte
		blob    digest.Digest
		size    int64
		wantErr string
	}{
		{"wrong diffID", digest.FromString("other"), blob, digest.FromBytes(blob), int64(len(blob)), "layer digest mismatch"},
		{"wrong blob digest", digest.FromBytes(raw), blob, digest.FromString("other"), int64(len(blob)), "blob digest mismatch"},
		{"wrong size", digest.FromBytes(raw), blob, digest.FromBytes(blob), int64(len(blob)) + 1, "size"},
		{"truncated", digest.FromBytes(raw), blob[:len(blob)/2], digest.FromBytes(blob), -1, "unexpected EOF"},
		{"garbage", digest.FromBytes(raw), []byte("this is not a tar stream at all, not even close........"), "", -1, ""},
		{"trailing garbage in blob", digest.FromBytes(raw), append(append([]byte{}, blob...), "junk"...), digest.FromBytes(blob), -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			in, err := s.Ingest("", c.diffID)
			if err != nil {
				t.Fatal(err)
			}
			err = in.Apply(ctx, bytes.NewReader(c.data), c.blob, c.size)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
			if _, err := in.Commit(); err == nil {
				t.Error("commit after a failed apply succeeded")
			}
			if tmp, _ := os.ReadDir(s.tmpDir()); len(tmp) != 0 {
				t.Errorf("failed ingestion left behind: %v", tmp)
			}
			if all, _ := s.List(); len(all) != 0 {
				t.Errorf("bad layer visible: %v", all)
			}
		})
	}
}

func TestRecoveryOnOpen(t *testing.T) {
	root := t.TempDir()
	s, db := openStore(t, root)
	raw := makeTar(t, []entry{file("a", "1", 0o644)}, 0)
	keep, err := ingest(t, s, "", raw, raw)
	if err != nil {
		t.Fatal(err)
	}
	raw2 := makeTar(t, []entry{file("b", "2", 0o644)}, 0)
	lost, err := ingest(t, s, "", raw2, raw2)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash can leave: an ingestion, an unrecorded layer directory,
	// a record whose directory is gone.
	in, _ := s.Ingest("", digest.FromString("x"))
	os.WriteFile(filepath.Join(in.dir, "diff", "half"), []byte("half"), 0o644)
	stray := filepath.Join(s.layersDir(), digest.FromString("stray").Encoded())
	os.MkdirAll(filepath.Join(stray, "diff"), 0o755)
	os.RemoveAll(s.dirOf(lost.ChainID))
	db.Close()

	s, db = openStore(t, root)
	defer db.Close()
	if tmp, _ := os.ReadDir(s.tmpDir()); len(tmp) != 0 {
		t.Errorf("tmp not cleaned: %v", tmp)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Error("unrecorded layer directory not removed")
	}
	if _, err := s.Get(lost.ChainID); err == nil {
		t.Error("record without a directory kept")
	}
	if _, err := s.Get(keep.ChainID); err != nil {
		t.Errorf("good layer lost: %v", err)
	}
}

func TestSyncFiles(t *testing.T) {
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(filepath.Join(root, "layers"), db, Options{Sync: SyncFiles})
	if err != nil {
		t.Fatal(err)
	}
	raw := richLayer(t)
	if _, err := ingest(t, s, "", raw, raw); err != nil {
		t.Fatal(err)
	}
}

func TestLearnDiffIDAndTarSize(t *testing.T) {
	s := newStore(t)
	raw := richLayer(t)
	in, err := s.Ingest("", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Apply(context.Background(), bytes.NewReader(gzipped(t, raw)), "", -1); err != nil {
		t.Fatal(err)
	}
	if in.DiffID() != digest.FromBytes(raw) {
		t.Fatalf("learnt diffID %s, want %s", in.DiffID(), digest.FromBytes(raw))
	}
	base := digest.FromString("parent chain")
	in.SetParent(base)
	l, err := in.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if l.ChainID != ChainID(base, l.DiffID) || l.Parent != base {
		t.Errorf("committed %+v", l)
	}
	if n, err := l.TarSize(); err != nil || n != int64(len(raw)) {
		t.Errorf("TarSize = %d, %v; want %d", n, err, len(raw))
	}
}

// Tars other tools write, each rebuilt byte for byte from what the single
// pass recorded: GNU long names and links, PAX records, a name that is not
// UTF-8, a directory listed after a file below it made it implicitly,
// padding beyond the end blocks (more than one 64 KiB segment of it), a
// stream whose chunks end inside headers and files (many small files
// across 256 KiB chunks).
func TestRebuildOddTars(t *testing.T) {
	long := strings.Repeat("long-directory-name/", 8) + "file-with-a-long-name"
	gnuFile := file(long, "gnu", 0o644)
	gnuFile.hdr.Format = tar.FormatGNU
	gnuLink := symlink("short", "/"+long)
	gnuLink.hdr.Format = tar.FormatGNU
	pax := file("pax", "pax", 0o644)
	pax.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "1", "comment": "kept in the header"}
	var many []entry
	for i := range 3000 {
		many = append(many, file(fmt.Sprintf("many/%04d", i), strings.Repeat("x", i%700), 0o644))
	}
	cases := map[string][]byte{
		"gnu and pax": makeTar(t, []entry{gnuFile, gnuLink, pax}, 0),
		"not utf-8":   makeTar(t, []entry{file("caf\xe9", "latin-1 name", 0o644)}, 0),
		"late dir":    makeTar(t, []entry{file("a/b/c", "c", 0o600), dir("a/b/", 0o711), dir("a/", 0o750)}, 0),
		"padding":     makeTar(t, []entry{file("p", "p", 0o644)}, 200<<10),
		"many":        makeTar(t, many, 1024),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			l, err := ingest(t, s, "", raw, gzipped(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			checkRebuild(t, l, raw)
			if name == "late dir" {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(l.Dir(), "a/b"), &st); err != nil || st.Mode&0o7777 != 0o711 {
					t.Errorf("a/b: mode %o, %v; want 711 from its late entry", st.Mode&0o7777, err)
				}
			}
		})
	}
}

// checkRebuild checks that the layer's rebuilt tar is raw, byte for byte.
func checkRebuild(t *testing.T, l Layer, raw []byte) {
	t.Helper()
	rc, err := l.TarStream()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Errorf("rebuilt tar differs: %d bytes (digest %s), want %d (%s)", len(got), digest.FromBytes(got), len(raw), l.DiffID)
	}
}
