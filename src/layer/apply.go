package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
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

// applier extracts tar entries under root. Names are checked before use,
// and every file operation is made relative to a directory handle opened
// component by component from root without following symlinks, so no
// entry can write outside the layer even if something else (a running
// container, for docker cp) swaps a directory for a symlink meanwhile.
// Metadata is set through a handle of the entry that was created, never
// through its name.
type applier struct {
	root  *os.File // the directory extracted into
	pacer *pacer
	plain bool // Unpack: no whiteouts
	opts  UnpackOptions
	// The last parent directory opened: a tar lists siblings together.
	lastDir    string
	lastHandle *os.File
	dirs       []*tar.Header // directory times are set after their contents
	size       int64         // bytes of regular file content
}

func newApplier(root string, pacer *pacer) (*applier, error) {
	f, err := openDir(unix.AT_FDCWD, root)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	return &applier{root: f, pacer: pacer}, nil
}

// newApplierAt extracts into an open directory, which stays the caller's.
func newApplierAt(root *os.File, pacer *pacer) (*applier, error) {
	fd, err := unix.Dup(int(root.Fd()))
	if err != nil {
		return nil, fmt.Errorf("dup directory handle: %w", err)
	}
	unix.CloseOnExec(fd)
	return &applier{root: os.NewFile(uintptr(fd), root.Name()), pacer: pacer}, nil
}

func (a *applier) close() {
	a.forget()
	a.root.Close()
}

// forget drops the cached parent (after a removal, which may have taken it).
func (a *applier) forget() {
	if a.lastHandle != nil {
		a.lastHandle.Close()
	}
	a.lastDir, a.lastHandle = "", nil
}

// openDir opens a directory below dirfd for reading, never through a
// symlink.
func openDir(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
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

// parent returns a handle of rel's parent directory, to be closed by the
// caller, checking that each directory leading to it is a real directory
// in the layer (never a symlink) and creating missing ones if create is
// set (a tar need not list them).
func (a *applier) parent(name, rel string, create bool) (*os.File, error) {
	dir := path.Dir(rel)
	if dir == "." {
		return dupFile(a.root)
	}
	if a.lastHandle != nil && a.lastDir == dir {
		return dupFile(a.lastHandle)
	}
	cur, err := dupFile(a.root)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(dir, "/")
	for i, part := range parts {
		next, err := openDir(int(cur.Fd()), part)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(int(cur.Fd()), part, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				cur.Close()
				return nil, fmt.Errorf("create parent %s: %w", strings.Join(parts[:i+1], "/"), err)
			}
			next, err = openDir(int(cur.Fd()), part)
		}
		if err != nil {
			err = notADir(name, int(cur.Fd()), part, strings.Join(parts[:i+1], "/"), err)
			cur.Close()
			return nil, err
		}
		cur.Close()
		cur = next
	}
	a.forget()
	if a.lastHandle, err = dupFile(cur); err == nil {
		a.lastDir = dir
	}
	return cur, nil
}

// notADir says why a parent directory could not be opened.
func notADir(name string, dirfd int, part, p string, err error) error {
	var st unix.Stat_t
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		if unix.Fstatat(dirfd, part, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return hostile(name, "parent directory %s is a symlink", p)
		}
		return hostile(name, "parent %s is not a directory", p)
	}
	return hostile(name, "parent directory %s: %v", p, err)
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup directory handle: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// replace removes whatever is at base in dir so that a new entry can take
// its place, keeping an existing directory when the new entry is one too.
func (a *applier) replace(dir *os.File, base string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if keepDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil
	}
	// Removing a directory may remove the cached parent of later entries.
	a.forget()
	return removeAllAt(int(dir.Fd()), base)
}

// removeAllAt removes name in dirfd and what is below it, never following
// a symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	d, err := openDir(dirfd, name)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(int(d.Fd()), n); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the root: its metadata stays the layer store's
	}
	dir, err := a.parent(hdr.Name, rel, true)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) && !a.plain {
		return a.whiteout(hdr, dir, rel, base)
	}
	if a.opts.NoOverwriteDirNonDir {
		if err := a.checkOverwrite(dir, base, rel, hdr.Typeflag == tar.TypeDir); err != nil {
			return err
		}
	}
	if err := a.replace(dir, base, hdr.Typeflag == tar.TypeDir); err != nil {
		return fmt.Errorf("replace %s: %w", rel, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s: %w", rel, err)
		}
		a.dirs = append(a.dirs, hdr)
	case tar.TypeReg:
		fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", rel, err)
		}
		f := os.NewFile(uintptr(fd), rel)
		defer f.Close()
		n, err := a.pacer.copy(f, r)
		if err != nil {
			return fmt.Errorf("write %s: %w", rel, err)
		}
		a.size += n
		// The metadata goes to the file written, whatever is at its
		// name by now.
		return a.metadata(hdr, rel, dir, base, f)
	case tar.TypeSymlink:
		// The target is read inside the container, never followed here.
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return fmt.Errorf("symlink %s: %w", rel, err)
		}
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "" {
			return hostile(hdr.Name, "hard link to %q outside the layer", hdr.Linkname)
		}
		tdir, err := a.parent(hdr.Name, target, false)
		if err != nil {
			return err
		}
		defer tdir.Close()
		var st unix.Stat_t
		if err := unix.Fstatat(int(tdir.Fd()), path.Base(target), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return hostile(hdr.Name, "hard link to %q, which the layer does not contain", hdr.Linkname)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return hostile(hdr.Name, "hard link to directory %q", hdr.Linkname)
		}
		if err := unix.Linkat(int(tdir.Fd()), path.Base(target), dfd, base, 0); err != nil {
			return fmt.Errorf("link %s: %w", rel, err)
		}
		return nil // a hard link shares its target's metadata
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeBlock || !allowedCharDevices[[2]int64{hdr.Devmajor, hdr.Devminor}] {
			kind := map[byte]string{tar.TypeChar: "character", tar.TypeBlock: "block"}[hdr.Typeflag]
			return hostile(hdr.Name, "%s device %d:%d is not allowed in an image layer", kind, hdr.Devmajor, hdr.Devminor)
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(dfd, base, unix.S_IFCHR|0o600, int(dev)); err != nil {
			return fmt.Errorf("mknod %s: %w", rel, err)
		}
	case tar.TypeFifo:
		if err := unix.Mkfifoat(dfd, base, 0o600); err != nil {
			return fmt.Errorf("mkfifo %s: %w", rel, err)
		}
	default:
		return hostile(hdr.Name, "unsupported tar entry type %q", hdr.Typeflag)
	}
	return a.metadata(hdr, rel, dir, base, nil)
}

// whiteout converts an OCI whiteout to overlayfs's form: ".wh.NAME" becomes
// a 0:0 character device NAME; ".wh..wh..opq" marks its directory opaque.
func (a *applier) whiteout(hdr *tar.Header, dir *os.File, rel, base string) error {
	switch {
	case base == whiteoutOpaque:
		if err := unix.Setxattr(fdPath(dir), overlayXattrPfx+"opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %s opaque: %w", path.Dir(rel), err)
		}
		return nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // AUFS bookkeeping (.wh..wh.plnk and the like): no meaning here
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return hostile(hdr.Name, "malformed whiteout")
	}
	target := path.Join(path.Dir(rel), name)
	if err := a.replace(dir, name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(int(dir.Fd()), name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: %w", target, err)
	}
	return unix.Fchownat(int(dir.Fd()), name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
}

// fdPath names an open file through /proc: system calls without an *at
// form (setxattr, chmod of a handle opened O_PATH) reach the very inode,
// whatever has happened to its name.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// metadata sets an entry's owner, extended attributes, mode and times
// through a handle of it: f if given (the file just written), else one
// opened now without following a symlink, of the type just created.
func (a *applier) metadata(hdr *tar.Header, rel string, dir *os.File, base string, f *os.File) error {
	if f == nil {
		fd, err := unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		f = os.NewFile(uintptr(fd), rel)
		defer f.Close()
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != typeBits(hdr.Typeflag) {
		return fmt.Errorf("%s was replaced during the extraction", rel)
	}
	uid, gid := hdr.Uid, hdr.Gid
	if o := a.opts.Owner; o != nil {
		uid, gid = o.UID, o.GID
	}
	if err := unix.Fchownat(int(f.Fd()), "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", rel, err)
	}
	symlink := hdr.Typeflag == tar.TypeSymlink
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
		// A symlink's own attributes: through its directory, its name
		// not followed.
		target := fdPath(f)
		set := unix.Setxattr
		if symlink {
			target, set = fdPath(dir)+"/"+base, unix.Lsetxattr
		}
		if err := set(target, name, []byte(val), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set xattr %s on %s: %w", name, rel, err)
		}
	}
	if !symlink {
		// After chown, which clears set-user-ID and set-group-ID.
		if err := unix.Fchmodat(unix.AT_FDCWD, fdPath(f), uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		return setTimes(int(dir.Fd()), base, hdr)
	}
	return nil
}

// typeBits is the file type a tar entry type creates.
func typeBits(flag byte) uint32 {
	switch flag {
	case tar.TypeDir:
		return unix.S_IFDIR
	case tar.TypeSymlink:
		return unix.S_IFLNK
	case tar.TypeChar:
		return unix.S_IFCHR
	case tar.TypeBlock:
		return unix.S_IFBLK
	case tar.TypeFifo:
		return unix.S_IFIFO
	}
	return unix.S_IFREG
}

// finish sets directory times, deepest first, now that nothing more is
// written into them. A directory gone or replaced meanwhile is skipped.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		hdr := a.dirs[i]
		rel, _ := cleanName(hdr.Name)
		dir, err := a.parent(hdr.Name, rel, false)
		if err != nil {
			continue
		}
		err = setTimes(int(dir.Fd()), path.Base(rel), hdr)
		dir.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

func setTimes(dirfd int, base string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", hdr.Name, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// UnpackOptions are docker cp's choices for a plain tar.
type UnpackOptions struct {
	// Owner, when set, owns every entry (docker cp -a: the container's
	// user); else each has the tar's owner, as Docker extracts it.
	Owner *Owner
	// NoOverwriteDirNonDir refuses to replace a directory with anything
	// else, or anything else with a directory (OverwriteError).
	NoOverwriteDirNonDir bool
}

// Owner is a user and group ID.
type Owner struct{ UID, GID int }

// OverwriteError is an entry that would have replaced a directory with a
// non-directory (Dir) or a non-directory with a directory.
type OverwriteError struct {
	Name string // the entry's, relative to the directory extracted into
	Dir  bool   // the directory is what is there
}

func (e *OverwriteError) Error() string {
	if e.Dir {
		return fmt.Sprintf("cannot overwrite directory %q with non-directory", e.Name)
	}
	return fmt.Sprintf("cannot overwrite non-directory %q with directory", e.Name)
}

// checkOverwrite answers an OverwriteError for an entry of the other kind
// (directory or not) than what is at its place.
func (a *applier) checkOverwrite(dir *os.File, base, rel string, isDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil // nothing there (or nothing to tell): replace decides
	}
	if there := st.Mode&unix.S_IFMT == unix.S_IFDIR; there != isDir {
		return &OverwriteError{Name: rel, Dir: there}
	}
	return nil
}

// Unpack extracts a plain tar stream (docker cp's) into dir with the same
// checks as a layer: nothing is written outside dir, no symlinked parent
// is followed, no device beyond the harmless ones is made. Whiteout names
// are ordinary files here; owners are the tar's, as with Docker.
func Unpack(ctx context.Context, r io.Reader, dir string) error {
	a, err := newApplier(dir, newPacer(4<<20))
	if err != nil {
		return err
	}
	return a.unpack(ctx, r)
}

// UnpackAt is Unpack into an open directory (which stays the caller's):
// one a running container can rename or replace meanwhile without
// redirecting the extraction; with docker cp's options.
func UnpackAt(ctx context.Context, r io.Reader, dir *os.File, opts UnpackOptions) error {
	a, err := newApplierAt(dir, newPacer(4<<20))
	if err != nil {
		return err
	}
	a.opts = opts
	return a.unpack(ctx, r)
}

func (a *applier) unpack(ctx context.Context, r io.Reader) error {
	defer a.close()
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
