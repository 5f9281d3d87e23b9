package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/treepack"
	"golang.org/x/sys/unix"
)

// rebase maps the entries of an archive rooted at one name (the copied
// path's: "x", "x/a", "x/b/c") to where they go: under root instead, or,
// when root is "", straight into the extraction directory (the root's own
// entry skipped). Docker's "/." archives, rooted at ".", are read the same
// way.
type rebase struct {
	root    string
	archive string // the archive's root name, from its first entry
	seen    bool
}

// entryName checks an archive entry's name and returns it cleaned, without
// a leading "./" or a trailing "/". Absolute names and any ".." are
// refused: an archive from a daemon must not place files outside the
// destination.
func entryName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("refusing to extract %q: absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("refusing to extract %q: path traversal", name)
		}
	}
	n := path.Clean(name)
	if n == "." {
		return ".", nil
	}
	return strings.TrimPrefix(n, "./"), nil
}

// target returns where the entry named n (cleaned) goes, relative to the
// extraction directory; "" skips it.
func (r *rebase) target(n string) (string, error) {
	if !r.seen {
		r.seen = true
		r.archive, _, _ = strings.Cut(n, "/")
	}
	var rest string
	switch {
	case r.archive == ".":
		rest = n
		if n == "." {
			rest = ""
		}
	case n == r.archive:
		rest = ""
	case strings.HasPrefix(n, r.archive+"/"):
		rest = n[len(r.archive)+1:]
	default:
		return "", fmt.Errorf("invalid copy source content: %q is not under %q", n, r.archive)
	}
	if r.root == "" {
		return rest, nil
	}
	return path.Join(r.root, rest), nil
}

// extractTar unpacks a tar under dir, each entry moved by rb. It is
// written for archives from elsewhere (a container's files): no entry may
// land outside dir, either by its name or by writing through a symlink
// that leads out of dir (one that stays inside is followed, as a file
// system would); an existing entry is replaced, but a directory is not
// replaced by a non-directory nor the reverse. Owners are not kept, as
// "docker cp" keeps none on the host; modes and times are, but, unless
// archive (cp -a), set-uid and set-gid bits are dropped and device nodes
// refused: a container must not be able to plant, through a copy its
// root user makes, a set-uid program or a raw disk's node on the host.
func extractTar(r io.Reader, dir string, rb *rebase, archive bool) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	type dirTime struct {
		path string
		mt   time.Time
	}
	var dirs []dirTime
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		n, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		rel, err := rb.target(n)
		if err != nil {
			return err
		}
		if rel == "" {
			continue
		}
		p, err := placeIn(root, rel)
		if err != nil {
			return err
		}
		if err := extractEntry(tr, hdr, root, p, rb, archive); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTime{p, hdr.ModTime})
		}
	}
	// Directories' times last: what was written in them changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(dirs[i].path, dirs[i].mt, dirs[i].mt)
	}
	return nil
}

// placeIn returns the path for rel under root (a resolved directory):
// missing parent directories are made, a parent that is a symlink is
// followed only if it resolves inside root.
func placeIn(root, rel string) (string, error) {
	cur := root
	parent, base := path.Split(rel)
	for _, part := range strings.Split(strings.Trim(parent, "/"), "/") {
		if part == "" || part == "." {
			continue
		}
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(next, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&os.ModeSymlink != 0:
			resolved, err := filepath.EvalSymlinks(next)
			if err != nil {
				return "", fmt.Errorf("refusing to extract %q: %w", rel, err)
			}
			if !within(root, resolved) {
				return "", fmt.Errorf("refusing to extract %q: %s is a symlink out of %s", rel, next, root)
			}
			if fi, err := os.Stat(resolved); err != nil || !fi.IsDir() {
				return "", fmt.Errorf("cannot extract %q: %s is not a directory", rel, next)
			}
			next = resolved
		case !fi.IsDir():
			return "", fmt.Errorf("cannot extract %q: %s is not a directory", rel, next)
		}
		cur = next
	}
	return filepath.Join(cur, base), nil
}

func within(root, p string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// extractEntry writes one entry at p (its parents in place), replacing a
// non-directory there; a symlink there is removed, never followed.
func extractEntry(tr *tar.Reader, hdr *tar.Header, root, p string, rb *rebase, archive bool) error {
	if !archive && (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) {
		return fmt.Errorf("refusing to copy device %q out of the container: use -a to copy devices and set-uid/set-gid bits", hdr.Name)
	}
	keep := os.ModePerm | os.ModeSticky
	if archive {
		keep |= os.ModeSetuid | os.ModeSetgid
	}
	perm := hdr.FileInfo().Mode() & keep
	fi, err := os.Lstat(p)
	exists := err == nil
	switch {
	case exists && fi.IsDir() && hdr.Typeflag == tar.TypeDir:
		return os.Chmod(p, perm)
	case exists && fi.IsDir():
		return fmt.Errorf("cannot overwrite directory %q with non-directory %q", p, hdr.Name)
	case exists && hdr.Typeflag == tar.TypeDir:
		return fmt.Errorf("cannot overwrite non-directory %q with directory %q", p, hdr.Name)
	case exists:
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
	case tar.TypeReg, 0: // 0: old tars' regular file (TypeRegA)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	case tar.TypeSymlink:
		// Made as it is, wherever it points: only writing through one is
		// checked (placeIn).
		if err := os.Symlink(hdr.Linkname, p); err != nil {
			return err
		}
		t := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		unix.UtimesNanoAt(unix.AT_FDCWD, p, t, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	case tar.TypeLink:
		n, err := entryName(hdr.Linkname)
		if err != nil {
			return err
		}
		rel, err := rb.target(n)
		if err != nil || rel == "" {
			return fmt.Errorf("refusing to extract %q: hard link to %q outside the copy", hdr.Name, hdr.Linkname)
		}
		old, err := placeIn(root, rel)
		if err != nil {
			return err
		}
		return os.Link(old, p)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if err := unix.Mknod(p, kind|0o600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return fmt.Errorf("creating %s: %w", p, err)
		}
	default:
		return nil // pax headers and the like carry nothing to write
	}
	if err := os.Chmod(p, perm); err != nil {
		return err
	}
	return os.Chtimes(p, hdr.ModTime, hdr.ModTime)
}

// writeTar writes src (a local path, not followed if it is a symlink) and
// what is below it to w, named under root instead of its own name; with
// root "", its contents only, at the top of the archive.
func writeTar(w io.Writer, src, root string) error {
	tw := tar.NewWriter(w)
	if err := treepack.Tree(context.Background(), tw, src, root); err != nil {
		return err
	}
	return tw.Close()
}
