package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// CopyUp fills an empty volume with what the image has at the mount point
// (Docker's behaviour for a volume's first use): files, directories and
// symlinks with their modes, owners and times. Nothing is followed out of
// the container's root filesystem; a volume that has anything is left as
// it is.
func CopyUp(rootfs, target, volumeDir string) error {
	entries, err := os.ReadDir(volumeDir)
	if err != nil || len(entries) > 0 {
		return err
	}
	src, err := securejoin.SecureJoin(rootfs, target)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil // nothing to copy
	}
	if err != nil {
		return err
	}
	if err := copyTree(src, volumeDir); err != nil {
		return fmt.Errorf("copy %s into its volume: %w", target, err)
	}
	// The volume's root takes the directory's owner and mode.
	st := fi.Sys().(*syscall.Stat_t)
	os.Lchown(volumeDir, int(st.Uid), int(st.Gid))
	return os.Chmod(volumeDir, fi.Mode().Perm()|fi.Mode()&(os.ModeSticky|os.ModeSetgid|os.ModeSetuid))
}

func copyTree(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		fi, err := os.Lstat(s)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(s)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, d); err != nil {
				return err
			}
		case fi.IsDir():
			if err := os.Mkdir(d, 0o700); err != nil {
				return err
			}
			if err := copyTree(s, d); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := copyFile(s, d); err != nil {
				return err
			}
		default:
			continue // devices, sockets, FIFOs stay with the image
		}
		if err := os.Lchown(d, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			mode := fi.Mode().Perm() | fi.Mode()&(os.ModeSticky|os.ModeSetgid|os.ModeSetuid)
			if err := os.Chmod(d, mode); err != nil {
				return err
			}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
		unix.UtimesNanoAt(unix.AT_FDCWD, d, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
