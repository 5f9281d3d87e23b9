package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/balena-os/balena-engine/src/errdefs"
	"golang.org/x/sys/unix"
)

// DiffTar writes what the container changed in its filesystem (its
// overlay's upper directory) as an OCI layer tar: overlayfs's whiteouts
// become ".wh." entries, an opaque directory a ".wh..wh..opq" entry, hard
// links stay links; the runtime's own mountpoints are left out, as docker
// diff leaves them. A running container is paused for the time of the
// copy when pause is set (Docker's commit default), so that the layer is
// one moment of it.
func (m *Manager) DiffTar(ctx context.Context, ref string, pause bool, w io.Writer) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status == StatusRemoving {
		return errdefs.Conflict(fmt.Errorf("container %s is marked for removal and cannot be committed", c.ID[:12]))
	}
	if pause && c.State.Status == StatusRunning {
		if err := m.Pause(ctx, c.ID); err != nil {
			return fmt.Errorf("pause for the commit: %w", err)
		}
		defer m.Unpause(context.WithoutCancel(ctx), c.ID)
	}
	return writeDiff(ctx, filepath.Join(m.dir(c.ID), "upper"), w)
}

// writeDiff writes the upper directory upper as a layer tar to w.
func writeDiff(ctx context.Context, upper string, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{} // (device, inode) -> the first name
	err := filepath.WalkDir(upper, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, hp)
		if rel == "." {
			return nil
		}
		if isRuntimePath("/" + rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(hp)
		if err != nil {
			return err
		}
		if isWhiteout(fi) {
			return tw.WriteHeader(&tar.Header{Name: filepath.Join(filepath.Dir(rel), ".wh."+filepath.Base(rel)),
				Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
		}
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(hp); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name, hdr.Format = rel, tar.FormatPAX
		hdr.Uname, hdr.Gname = "", ""
		if fi.IsDir() {
			hdr.Name += "/"
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[key] = rel
			}
		}
		opaque := false
		if hdr.PAXRecords, opaque, err = xattrRecords(hp); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if opaque {
			if err := tw.WriteHeader(&tar.Header{Name: filepath.Join(rel, ".wh..wh..opq"), Typeflag: tar.TypeReg,
				Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.OpenFile(hp, os.O_RDONLY|unix.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, hdr.Size)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return tw.Close()
}

// xattrRecords are a file's extended attributes as PAX records, but
// overlayfs's own, of which only the opaque mark counts (returned apart).
func xattrRecords(p string) (map[string]string, bool, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) || n <= 0 {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var recs map[string]string
	opaque := false
	val := make([]byte, 64<<10) // the largest value Linux allows
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		vn, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			continue
		}
		if strings.HasPrefix(name, "trusted.overlay.") {
			opaque = opaque || (name == "trusted.overlay.opaque" && string(val[:vn]) == "y")
			continue
		}
		if recs == nil {
			recs = map[string]string{}
		}
		recs["SCHILY.xattr."+name] = string(val[:vn])
	}
	return recs, opaque, nil
}
