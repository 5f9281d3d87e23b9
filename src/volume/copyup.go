package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// beforeMove, if set, is called with the private directory once the copy
// is complete there and before it is moved into the volume (tests).
var beforeMove func(private string)

// CopyUp fills an empty volume with what the image has at the mount point
// (Docker's behaviour for a volume's first use): files, directories and
// symlinks with their modes, owners and times. The mount point is resolved
// inside the container's root filesystem and the tree is read through
// handles, nothing followed out of it. The copy is made in a private
// directory beside the volume's, which no container sees, and its entries
// are then renamed into the volume without replacing anything: the
// volume's directory itself stays (another container may have it mounted
// already), and whatever such a container writes meanwhile is kept. A
// volume that has anything is left as it is.
func CopyUp(rootfs, target, volumeDir string) error {
	vol, err := openDir(unix.AT_FDCWD, volumeDir)
	if err != nil {
		return fmt.Errorf("open volume %s: %w", volumeDir, err)
	}
	defer vol.Close()
	if names, err := vol.Readdirnames(1); len(names) > 0 || (err != nil && err != io.EOF) {
		return err
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	src, err := pathrs.OpenatInRoot(root, target)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing to copy
	}
	if err != nil {
		return fmt.Errorf("copy %s into its volume: %w", target, err)
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	private, err := os.MkdirTemp(filepath.Dir(volumeDir), ".copyup-")
	if err != nil {
		return fmt.Errorf("copy %s into its volume: %w", target, err)
	}
	defer os.RemoveAll(private)
	priv, err := openDir(unix.AT_FDCWD, private)
	if err != nil {
		return err
	}
	defer priv.Close()
	if err := copyTree(src, priv); err != nil {
		return fmt.Errorf("copy %s into its volume: %w", target, err)
	}
	if beforeMove != nil {
		beforeMove(private)
	}
	if err := moveInto(priv, vol); err != nil {
		return fmt.Errorf("copy %s into its volume: %w", target, err)
	}
	// The volume's root takes the directory's owner and mode.
	if err := unix.Fchown(int(vol.Fd()), int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown volume %s: %w", volumeDir, err)
	}
	return unix.Fchmod(int(vol.Fd()), st.Mode&0o7777)
}

// moveInto renames what is in from into to, never replacing an entry
// that is there already.
func moveInto(from, to *os.File) error {
	names, err := from.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		err := unix.Renameat2(int(from.Fd()), n, int(to.Fd()), n, unix.RENAME_NOREPLACE)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("move %s into the volume: %w", n, err)
		}
	}
	return nil
}

func openDir(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// copyTree copies what is in the directory src (any handle, O_PATH will
// do) into the directory dst, each source entry opened O_PATH|O_NOFOLLOW
// relative to its directory and each copy's owner and mode set through a
// descriptor of it.
func copyTree(src, dst *os.File) error {
	sd, err := pathrs.Reopen(src, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer sd.Close()
	names, err := sd.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := copyEntry(sd, dst, n); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(srcDir, dst *os.File, name string) error {
	fd, err := unix.Openat(int(srcDir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	s := os.NewFile(uintptr(fd), name)
	defer s.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	dfd := int(dst.Fd())
	mode := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", name, err)
		}
		if err := unix.Symlinkat(string(buf[:n]), dfd, name); err != nil {
			return err
		}
		if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		d, err := openDir(dfd, name)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := copyTree(s, d); err != nil {
			return err
		}
		if err := fchownmod(d, st.Uid, st.Gid, mode); err != nil {
			return err
		}
	case unix.S_IFREG:
		in, err := pathrs.Reopen(s, unix.O_RDONLY)
		if err != nil {
			return err
		}
		defer in.Close()
		ofd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		out := os.NewFile(uintptr(ofd), name)
		defer out.Close()
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
		if err := fchownmod(out, st.Uid, st.Gid, mode); err != nil {
			return err
		}
	default:
		return nil // devices, sockets, FIFOs stay with the image
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	return nil
}

// fchownmod sets an owner, then the mode (chown clears set-user-ID and
// set-group-ID).
func fchownmod(f *os.File, uid, gid, mode uint32) error {
	if err := unix.Fchown(int(f.Fd()), int(uid), int(gid)); err != nil {
		return fmt.Errorf("chown %s: %w", f.Name(), err)
	}
	if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	return nil
}
