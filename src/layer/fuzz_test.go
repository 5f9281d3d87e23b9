package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// A fuzzed layer is a small script, one entry a line, "OP NAME [ARG]",
// built into a tar here, followed by raw bytes (the tail) that go into
// the stream as they are. Mutating a script reaches the applier's logic
// (names, types, order) where mutating raw tar bytes would mostly break
// header checksums; the tail still feeds the tar and decompression
// readers raw input (with an empty script it is the whole stream). OPs:
//
//	f NAME TEXT    regular file, 0644        d NAME        directory
//	s NAME TEXT    0:0-owned set-user-ID file u NAME        file of 1000:1000
//	l NAME TARGET  symlink                   h NAME TARGET hard link
//	c NAME MAJ:MIN character device          b NAME MAJ:MIN block device
//	p NAME         FIFO                      a NAME KEY=VAL file with an xattr
//	t NAME FLAG    an entry of type FLAG (its first byte)
func scriptTar(script string, tail []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, line := range strings.Split(script, "\n") {
		op, rest, _ := strings.Cut(line, " ")
		name, arg, _ := strings.Cut(rest, " ")
		if op == "" || name == "" {
			continue
		}
		h := tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: time.Unix(1600000000, 0)}
		body := ""
		switch op[0] {
		case 'f':
			body = arg
		case 's':
			body, h.Mode = arg, 0o4755
		case 'u':
			h.Uid, h.Gid = 1000, 1000
		case 'd':
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case 'l':
			h.Typeflag, h.Linkname = tar.TypeSymlink, arg
		case 'h':
			h.Typeflag, h.Linkname = tar.TypeLink, arg
		case 'c', 'b':
			h.Typeflag = map[byte]byte{'c': tar.TypeChar, 'b': tar.TypeBlock}[op[0]]
			fmt.Sscanf(arg, "%d:%d", &h.Devmajor, &h.Devminor)
		case 'p':
			h.Typeflag = tar.TypeFifo
		case 'a':
			k, v, _ := strings.Cut(arg, "=")
			h.PAXRecords = map[string]string{"SCHILY.xattr." + k: v}
		case 't':
			if arg != "" {
				h.Typeflag = arg[0]
			}
		default:
			continue
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if tw.WriteHeader(&h) != nil {
			continue // a header the writer refuses: the tail can carry it
		}
		tw.Write([]byte(body))
	}
	tw.Flush() // no end blocks: the tail goes on with the stream
	return append(buf.Bytes(), tail...)
}

// snapshot describes every file under root but those skip says to leave
// out: enough (type, mode, owner, links, size, times, content, target) to
// see anything written, linked, chmodded or chowned there.
func snapshot(t *testing.T, root string, skip func(string) bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d nlink=%d size=%d mtime=%d.%d ctime=%d.%d",
			st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// outsideTree is what the extraction must leave alone: a file, a
// directory with a file, a symlink to it.
func outsideTree(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "escape-target"), []byte("host file"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "file"), []byte("host file"), 0o600)
	os.Symlink("sub", filepath.Join(dir, "link"))
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, d := range after {
		if before[p] != d {
			t.Fatalf("written outside the extraction: %s: was %q, now %q", p, before[p], d)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Fatalf("removed outside the extraction: %s", p)
		}
	}
}

// layerSeeds are layers both targets start from: ordinary ones, every
// kind of entry, whiteouts, and escapes (up must lead from the extraction
// directory to the one holding "outside").
func layerSeeds(f *testing.F, up string) {
	out := up + "outside"
	for _, s := range []string{
		"d etc/\nf etc/hostname box\nl etc/localtime /usr/share/zoneinfo/UTC\nh etc/again etc/hostname",
		"d a/\nf a/.wh.gone\nf a/.wh..wh..opq\nf .wh..wh.plnk\nf b/.wh.\nf c/.wh...",
		"c dev/null 1:3\nc dev/kmem 1:2\nb dev/sda 8:0\np run/fifo\ns usr/bin/su #!\nu home/user",
		"a x user.test=1\na y trusted.overlay.opaque=y\na z security.capability=\x01",
		"l up ..\nf up/escape evil",
		"l a " + out + "\nf a/escape evil",
		"d d/\nl d/link " + out + "/sub\nf d/link/escape evil",
		"h h " + out + "/escape-target",
		"l s " + out + "\nh h s/escape-target",
		"f ../escape evil\nf /escape evil\nf a/../../escape evil",
		"f f x\nf f/g y\nd f/\nl f f\nf f z",
		"d x/\nf x/y 1\nf x 2\nd x/\nf x/.wh.y",
		"t g x\nt L y\nt K z\nt 7 contiguous\nt S sparse",
	} {
		f.Add(s, []byte(nil))
	}
	f.Add("", scriptTar("f plain ok", nil))
	f.Add("f first 1", []byte("not a tar header, and no end blocks"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(scriptTar("d gz/\nf gz/file z", make([]byte, 1024)))
	zw.Close()
	f.Add("", gz.Bytes())
}

// FuzzApply applies fuzzed layers as a pull does (decompression, tar-split
// recording, whiteouts, ownership), each into a fresh ingestion of one
// store: nothing may be written outside the ingestion, whatever the layer,
// and nothing may be left behind when it is aborted.
func FuzzApply(f *testing.F) {
	if os.Getuid() != 0 {
		f.Skip("extracting layers (owners, devices, whiteouts) needs root")
	}
	base := f.TempDir()
	db, err := bolt.Open(filepath.Join(base, "meta.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s, err := Open(filepath.Join(base, "layers"), db, Options{})
	if err != nil {
		f.Fatal(err)
	}
	outsideTree(f, filepath.Join(base, "outside"))
	// An ingestion's files are in base/layers/tmp/ID/diff.
	layerSeeds(f, "../../../../")
	store := filepath.Join(base, "layers")
	notStore := func(p string) bool { return p == store || p == filepath.Join(base, "meta.db") }
	f.Fuzz(func(t *testing.T, script string, tail []byte) {
		before := snapshot(t, base, notStore)
		in, err := s.Ingest("", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Apply(context.Background(), bytes.NewReader(scriptTar(script, tail)), "", -1); err == nil {
			in.Abort()
		}
		sameSnapshot(t, before, snapshot(t, base, notStore))
		if left, _ := os.ReadDir(s.tmpDir()); len(left) != 0 {
			t.Fatalf("ingestion left behind: %v", left)
		}
	})
}

// FuzzUnpack extracts fuzzed tars as docker cp does (no whiteouts,
// everything root's) into a fresh directory: nothing may be written
// outside it.
func FuzzUnpack(f *testing.F) {
	if os.Getuid() != 0 {
		f.Skip("extracting devices needs root")
	}
	base := f.TempDir()
	outsideTree(f, filepath.Join(base, "outside"))
	layerSeeds(f, "../")
	f.Fuzz(func(t *testing.T, script string, tail []byte) {
		dst, err := os.MkdirTemp(base, "dst")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dst)
		notDst := func(p string) bool { return p == dst }
		before := snapshot(t, base, notDst)
		Unpack(context.Background(), bytes.NewReader(scriptTar(script, tail)), dst)
		sameSnapshot(t, before, snapshot(t, base, notDst))
	})
}
