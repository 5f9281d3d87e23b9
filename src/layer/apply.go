package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/vbatts/tar-split/archive/tar"
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
// through its name. Handles are raw descriptors: a small file costs its
// creation, its write and its metadata, and few system calls more.
type applier struct {
	root  int // the directory extracted into
	pacer *pacer
	plain bool // Unpack: no whiteouts
	opts  UnpackOptions
	// The directories leading to the last parent opened, each with a
	// handle: a tar lists a directory's entries together and goes depth
	// first, so the next parent is mostly that one, or below or beside
	// one of its ancestors, and one open (or none) finds it.
	chain []openDirent
	// Parent handles forgotten during an entry, which the entry may still
	// use: closed when it ends.
	retired []int
	dirs    []*tar.Header // directory times are set after their contents
	size    int64         // bytes of regular file content
}

func newApplier(root string, pacer *pacer) (*applier, error) {
	fd, err := openDir(unix.AT_FDCWD, root)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	return &applier{root: fd, pacer: pacer}, nil
}

// openDirent is a directory of the layer, by its path, and a handle of it.
type openDirent struct {
	path string
	fd   int
}

// maxChain bounds the handles kept open for one extraction; directories
// deeper than this are opened each time.
const maxChain = 64

// newApplierAt extracts into an open directory, which stays the caller's.
func newApplierAt(root *os.File, pacer *pacer) (*applier, error) {
	fd, err := unix.FcntlInt(root.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup directory handle: %w", err)
	}
	return &applier{root: fd, pacer: pacer}, nil
}

func (a *applier) close() {
	a.forget()
	a.endEntry()
	unix.Close(a.root)
}

// forget drops the cached directories (after a removal, which may have
// taken them); their handles stay valid until the entry ends.
func (a *applier) forget() { a.trim(0) }

// trim keeps the first n directories of the chain, retiring the others.
func (a *applier) trim(n int) {
	for _, d := range a.chain[n:] {
		a.retired = append(a.retired, d.fd)
	}
	a.chain = a.chain[:n]
}

// endEntry closes the handles the entry no longer needs.
func (a *applier) endEntry() {
	for _, fd := range a.retired {
		unix.Close(fd)
	}
	a.retired = a.retired[:0]
}

// openDir opens a directory below dirfd for reading, never through a
// symlink.
func openDir(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
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

// parent returns a handle of rel's parent directory, valid until the entry
// ends (endEntry), checking that each directory leading to it is a real
// directory in the layer (never a symlink) and creating missing ones if
// create is set (a tar need not list them).
func (a *applier) parent(name, rel string, create bool) (int, error) {
	dir := path.Dir(rel)
	if dir == "." {
		return a.root, nil
	}
	// The deepest directory of the chain that dir is or lies below.
	keep, cur := 0, a.root
	for i := len(a.chain) - 1; i >= 0; i-- {
		p := a.chain[i].path
		if dir == p {
			return a.chain[i].fd, nil
		}
		if strings.HasPrefix(dir, p) && dir[len(p)] == '/' {
			keep, cur = i+1, a.chain[i].fd
			break
		}
	}
	a.trim(keep)
	done := ""
	if keep > 0 {
		done = a.chain[keep-1].path
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(dir, done), "/")
	for rest != "" {
		part, after, _ := strings.Cut(rest, "/")
		rest = after
		if done != "" {
			done += "/"
		}
		done += part
		next, err := openDir(cur, part)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(cur, part, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, fmt.Errorf("create parent %s: %w", done, err)
			}
			next, err = openDir(cur, part)
		}
		if err != nil {
			return -1, notADir(name, cur, part, done, err)
		}
		if len(a.chain) < maxChain {
			a.chain = append(a.chain, openDirent{path: done, fd: next})
		} else {
			a.retired = append(a.retired, next)
		}
		cur = next
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

// replace removes whatever is at base in dir so that a new entry can take
// its place, keeping an existing directory when the new entry is one too.
func (a *applier) replace(dirfd int, base string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
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
	return removeAllAt(dirfd, base)
}

// create makes an entry with mk, which fails with EEXIST when something is
// at the name already (a layer may list a name twice, or replace a lower
// one): that is removed, then mk tried again. Creating first saves a
// lookup for every entry of a fresh layer.
func (a *applier) create(dirfd int, base, rel string, keepDir bool, mk func() error) error {
	err := mk()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := a.replace(dirfd, base, keepDir); err != nil {
		return fmt.Errorf("replace %s: %w", rel, err)
	}
	return mk()
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
	fd, err := openDir(dirfd, name)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
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
	defer a.endEntry()
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the root: its metadata stays the layer store's
	}
	dfd, err := a.parent(hdr.Name, rel, true)
	if err != nil {
		return err
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) && !a.plain {
		return a.whiteout(hdr, dfd, rel, base)
	}
	if a.opts.NoOverwriteDirNonDir {
		if err := checkOverwrite(dfd, base, rel, hdr.Typeflag == tar.TypeDir); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err := a.create(dfd, base, rel, true, func() error { return unix.Mkdirat(dfd, base, 0o700) })
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s: %w", rel, err)
		}
		a.dirs = append(a.dirs, hdr)
	case tar.TypeReg:
		return a.file(hdr, dfd, rel, base, r)
	case tar.TypeSymlink:
		// The target is read inside the container, never followed here.
		err := a.create(dfd, base, rel, false, func() error { return unix.Symlinkat(hdr.Linkname, dfd, base) })
		if err != nil {
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
		missing := hostile(hdr.Name, "hard link to %q, which the layer does not contain", hdr.Linkname)
		tbase := path.Base(target)
		var st unix.Stat_t
		if err := unix.Fstatat(tdir, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return missing
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return hostile(hdr.Name, "hard link to directory %q", hdr.Linkname)
		}
		err = a.create(dfd, base, rel, false, func() error { return unix.Linkat(tdir, tbase, dfd, base, 0) })
		if errors.Is(err, unix.ENOENT) {
			return missing // it was its own target, replaced
		}
		if err != nil {
			return fmt.Errorf("link %s: %w", rel, err)
		}
		return nil // a hard link shares its target's metadata
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeBlock || !allowedCharDevices[[2]int64{hdr.Devmajor, hdr.Devminor}] {
			kind := map[byte]string{tar.TypeChar: "character", tar.TypeBlock: "block"}[hdr.Typeflag]
			return hostile(hdr.Name, "%s device %d:%d is not allowed in an image layer", kind, hdr.Devmajor, hdr.Devminor)
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		err := a.create(dfd, base, rel, false, func() error { return unix.Mknodat(dfd, base, unix.S_IFCHR|0o600, int(dev)) })
		if err != nil {
			return fmt.Errorf("mknod %s: %w", rel, err)
		}
	case tar.TypeFifo:
		err := a.create(dfd, base, rel, false, func() error { return unix.Mkfifoat(dfd, base, 0o600) })
		if err != nil {
			return fmt.Errorf("mkfifo %s: %w", rel, err)
		}
	default:
		return hostile(hdr.Name, "unsupported tar entry type %q", hdr.Typeflag)
	}
	return a.metadata(hdr, rel, dfd, base)
}

// file writes a regular file and sets its metadata through the descriptor
// it was created with, then hands the descriptor to the pacer.
func (a *applier) file(hdr *tar.Header, dfd int, rel, base string, r io.Reader) error {
	var fd int
	err := a.create(dfd, base, rel, false, func() (err error) {
		fd, err = unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", rel, err)
	}
	n, dropped, err := a.pacer.copy(fd, r)
	if err == nil {
		err = a.fileMetadata(hdr, fd)
	} else {
		err = fmt.Errorf("write %s: %w", rel, err)
	}
	if err != nil {
		unix.Close(fd)
		return err
	}
	a.size += n
	a.pacer.done(fd, n, dropped)
	return nil
}

// owner is who owns an entry: the tar's, or docker cp -a's user.
func (a *applier) owner(hdr *tar.Header) (uid, gid int) {
	if o := a.opts.Owner; o != nil {
		return o.UID, o.GID
	}
	return hdr.Uid, hdr.Gid
}

// fileMetadata sets a regular file's owner, extended attributes, mode and
// times through its descriptor.
func (a *applier) fileMetadata(hdr *tar.Header, fd int) error {
	uid, gid := a.owner(hdr)
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", hdr.Name, err)
	}
	if err := a.xattrs(hdr, func(name string, val []byte) error { return unix.Fsetxattr(fd, name, val, 0) }); err != nil {
		return err
	}
	// After chown, which clears set-user-ID and set-group-ID.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %s: %w", hdr.Name, err)
	}
	ts := times(hdr)
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return fmt.Errorf("set times of %s: %w", hdr.Name, e)
	}
	return nil
}

// xattrs sets the entry's extended attributes with set, refusing
// overlayfs's own and oversized ones.
func (a *applier) xattrs(hdr *tar.Header, set func(name string, val []byte) error) error {
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
		if err := set(name, []byte(val)); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set xattr %s on %s: %w", name, hdr.Name, err)
		}
	}
	return nil
}

// whiteout converts an OCI whiteout to overlayfs's form: ".wh.NAME" becomes
// a 0:0 character device NAME; ".wh..wh..opq" marks its directory opaque.
func (a *applier) whiteout(hdr *tar.Header, dfd int, rel, base string) error {
	switch {
	case base == whiteoutOpaque:
		if err := unix.Setxattr(fdPath(dfd), overlayXattrPfx+"opaque", []byte("y"), 0); err != nil {
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
	if err := a.replace(dfd, name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(dfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: %w", target, err)
	}
	return unix.Fchownat(dfd, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
}

// fdPath names an open file through /proc: system calls without an *at
// form (setxattr, chmod of a handle opened O_PATH) reach the very inode,
// whatever has happened to its name.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// metadata sets the owner, extended attributes, mode and times of an entry
// other than a regular file through a handle of it opened now without
// following a symlink, of the type just created.
func (a *applier) metadata(hdr *tar.Header, rel string, dfd int, base string) error {
	fd, err := unix.Openat(dfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != typeBits(hdr.Typeflag) {
		return fmt.Errorf("%s was replaced during the extraction", rel)
	}
	uid, gid := a.owner(hdr)
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", rel, err)
	}
	symlink := hdr.Typeflag == tar.TypeSymlink
	err = a.xattrs(hdr, func(name string, val []byte) error {
		if symlink {
			// A symlink's own attributes: through its directory, its
			// name not followed.
			return unix.Lsetxattr(fdPath(dfd)+"/"+base, name, val, 0)
		}
		return unix.Setxattr(fdPath(fd), name, val, 0)
	})
	if err != nil {
		return err
	}
	if !symlink {
		// After chown, which clears set-user-ID and set-group-ID.
		if err := unix.Fchmodat(unix.AT_FDCWD, fdPath(fd), uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		return setTimes(dfd, base, hdr)
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
		dfd, err := a.parent(hdr.Name, rel, false)
		if err != nil {
			a.endEntry()
			continue
		}
		err = setTimes(dfd, path.Base(rel), hdr)
		a.endEntry()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

// times are an entry's access and modification times for utimensat.
func times(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
}

func setTimes(dirfd int, base string, hdr *tar.Header) error {
	ts := times(hdr)
	if err := unix.UtimesNanoAt(dirfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
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
func checkOverwrite(dfd int, base, rel string, isDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil // nothing there (or nothing to tell): creation decides
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
