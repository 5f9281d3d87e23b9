package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits on what a layer may hold, against hostile or broken tars.
const (
	maxPathLen      = 4096 // PATH_MAX
	maxNameLen      = 255  // NAME_MAX
	maxXattrValue   = 64 << 10
	whiteoutPrefix  = ".wh."
	whiteoutMeta    = ".wh..wh."
	whiteoutOpaque  = ".wh..wh..opq"
	overlayXattrPfx = "trusted.overlay."
)

// allowedCharDevices are the character devices an image may carry: the
// harmless ones some base images ship in /dev. Every other device node is
// refused: a layer has no business creating a disk or memory device.
var allowedCharDevices = map[[2]int64]bool{
	{1, 3}: true, {1, 5}: true, {1, 7}: true, {1, 8}: true, {1, 9}: true, // null zero full random urandom
	{5, 0}: true, {5, 1}: true, {5, 2}: true, // tty console ptmx
}

// HostileError is a layer entry refused for safety. Nothing of the layer
// becomes visible when one is found.
type HostileError struct {
	Name   string
	Reason string
}

func (e *HostileError) Error() string {
	return fmt.Sprintf("refusing layer entry %q: %s", e.Name, e.Reason)
}

func hostile(name, format string, args ...any) error {
	return &HostileError{Name: name, Reason: fmt.Sprintf(format, args...)}
}

// applier extracts tar entries under root. Names are checked before use and
// every parent directory is verified to be a real directory inside root
// (never a symlink), so no entry can write outside the layer. The tar stream
// is read sequentially and nothing else writes under root meanwhile, so a
// check cannot be raced.
type applier struct {
	root     string
	pacer    *pacer
	plain    bool            // Unpack: no whiteouts, files owned by root
	verified map[string]bool // parent directories known to be real
	dirs     []*tar.Header   // directory times are set after their contents
	size     int64           // bytes of regular file content
}

func newApplier(root string, pacer *pacer) *applier {
	return &applier{root: root, pacer: pacer, verified: map[string]bool{}}
}

// cleanName validates a tar name and returns it relative to the layer root
// ("" for the root itself).
func cleanName(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", hostile(name, "NUL byte in name")
	}
	if strings.HasPrefix(name, "/") {
		return "", hostile(name, "absolute path")
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", hostile(name, "path traversal out of the layer")
	}
	if len(c) > maxPathLen {
		return "", hostile(name[:64]+"...", "path longer than %d bytes", maxPathLen)
	}
	for _, part := range strings.Split(c, "/") {
		if len(part) > maxNameLen {
			return "", hostile(name, "name component longer than %d bytes", maxNameLen)
		}
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

func (a *applier) full(rel string) string { return filepath.Join(a.root, rel) }

// parents makes sure every parent directory of rel is a real directory in
// the layer, creating missing ones (a tar need not list them).
func (a *applier) parents(name, rel string, create bool) error {
	dir := path.Dir(rel)
	if dir == "." || a.verified[dir] {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if a.verified[p] {
			continue
		}
		fi, err := os.Lstat(a.full(p))
		switch {
		case errors.Is(err, os.ErrNotExist) && create:
			if err := os.Mkdir(a.full(p), 0o755); err != nil {
				return fmt.Errorf("create parent %s: %w", p, err)
			}
		case err != nil:
			return hostile(name, "parent directory %s: %v", p, err)
		case fi.Mode()&os.ModeSymlink != 0:
			return hostile(name, "parent directory %s is a symlink", p)
		case !fi.IsDir():
			return hostile(name, "parent %s is not a directory", p)
		}
		a.verified[p] = true
	}
	return nil
}

// replace removes whatever is at rel so that a new entry can take its
// place, keeping an existing directory when the new entry is one too.
func (a *applier) replace(rel string, keepDir bool) error {
	fi, err := os.Lstat(a.full(rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if keepDir && fi.IsDir() {
		return nil
	}
	// Removing a directory may remove verified parents of later entries.
	clear(a.verified)
	return os.RemoveAll(a.full(rel))
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the root: its metadata stays the layer store's
	}
	if err := a.parents(hdr.Name, rel, true); err != nil {
		return err
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) && !a.plain {
		return a.whiteout(hdr, rel, base)
	}
	if err := a.replace(rel, hdr.Typeflag == tar.TypeDir); err != nil {
		return fmt.Errorf("replace %s: %w", rel, err)
	}
	full := a.full(rel)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(full, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		a.dirs = append(a.dirs, hdr)
	case tar.TypeReg:
		f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		n, err := a.pacer.copy(f, r)
		if err != nil {
			return fmt.Errorf("write %s: %w", rel, err)
		}
		a.size += n
	case tar.TypeSymlink:
		// The target is read inside the container, never followed here.
		if err := os.Symlink(hdr.Linkname, full); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "" {
			return hostile(hdr.Name, "hard link to %q outside the layer", hdr.Linkname)
		}
		if err := a.parents(hdr.Name, target, false); err != nil {
			return err
		}
		fi, err := os.Lstat(a.full(target))
		if err != nil {
			return hostile(hdr.Name, "hard link to %q, which the layer does not contain", hdr.Linkname)
		}
		if fi.IsDir() {
			return hostile(hdr.Name, "hard link to directory %q", hdr.Linkname)
		}
		if err := os.Link(a.full(target), full); err != nil {
			return err
		}
		return nil // a hard link shares its target's metadata
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeBlock || !allowedCharDevices[[2]int64{hdr.Devmajor, hdr.Devminor}] {
			kind := map[byte]string{tar.TypeChar: "character", tar.TypeBlock: "block"}[hdr.Typeflag]
			return hostile(hdr.Name, "%s device %d:%d is not allowed in an image layer", kind, hdr.Devmajor, hdr.Devminor)
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(full, unix.S_IFCHR|0o600, int(dev)); err != nil {
			return err
		}
	case tar.TypeFifo:
		if err := unix.Mkfifo(full, 0o600); err != nil {
			return err
		}
	default:
		return hostile(hdr.Name, "unsupported tar entry type %q", hdr.Typeflag)
	}
	return a.metadata(hdr, rel)
}

// whiteout converts an OCI whiteout to overlayfs's form: ".wh.NAME" becomes
// a 0:0 character device NAME; ".wh..wh..opq" marks its directory opaque.
func (a *applier) whiteout(hdr *tar.Header, rel, base string) error {
	dir := path.Dir(rel)
	switch {
	case base == whiteoutOpaque:
		d := a.root
		if dir != "." {
			d = a.full(dir)
		}
		if err := unix.Lsetxattr(d, overlayXattrPfx+"opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %s opaque: %w", dir, err)
		}
		return nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // AUFS bookkeeping (.wh..wh.plnk and the like): no meaning here
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return hostile(hdr.Name, "malformed whiteout")
	}
	target := path.Join(dir, name)
	if err := a.replace(target, false); err != nil {
		return err
	}
	full := a.full(target)
	if err := unix.Mknod(full, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: %w", target, err)
	}
	return os.Lchown(full, hdr.Uid, hdr.Gid)
}

func (a *applier) metadata(hdr *tar.Header, rel string) error {
	full := a.full(rel)
	uid, gid := hdr.Uid, hdr.Gid
	if a.plain {
		uid, gid = 0, 0
	}
	if err := os.Lchown(full, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", rel, err)
	}
	for key, val := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, overlayXattrPfx) {
			return hostile(hdr.Name, "overlayfs attribute %s", name)
		}
		if len(val) > maxXattrValue {
			return hostile(hdr.Name, "extended attribute %s larger than %d bytes", name, maxXattrValue)
		}
		if err := unix.Lsetxattr(full, name, []byte(val), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set xattr %s on %s: %w", name, rel, err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears set-user-ID and set-group-ID.
		if err := unix.Fchmodat(unix.AT_FDCWD, full, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		return setTimes(full, hdr)
	}
	return nil
}

// finish sets directory times, deepest first, now that nothing more is
// written into them.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		hdr := a.dirs[i]
		rel, _ := cleanName(hdr.Name)
		if err := setTimes(a.full(rel), hdr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func setTimes(full string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, full, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", full, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// Unpack extracts a plain tar stream (docker cp's) into dir with the same
// checks as a layer: nothing is written outside dir, no symlinked parent
// is followed, no device beyond the harmless ones is made. Whiteout names
// are ordinary files here and everything is owned by root, as "docker cp"
// without -a does.
func Unpack(ctx context.Context, r io.Reader, dir string) error {
	a := newApplier(dir, newPacer(4<<20))
	a.plain = true
	defer a.pacer.flush()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return a.finish()
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return err
		}
	}
}
