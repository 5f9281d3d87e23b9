// Package treepack writes a directory tree on the host as a tar stream, safely
// against a running container that changes the tree meanwhile. It is docker
// cp's and docker export's writer on the daemon side, and docker cp's on the
// client side; it stands apart from the layer store so that the client need
// not link it.
package treepack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"syscall"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Tree writes host and what is below it to tw, named under base (the
// tree's own entry is left out when base is empty; base "." names entries
// "./NAME", as Docker's daemon does for docker cp's "DIR/."). Symlinks are
// archived as symlinks, never followed, host itself included; sockets are
// skipped; owners are kept. It is the counterpart of layer.Unpack.
func Tree(ctx context.Context, tw *tar.Writer, host, base string) error {
	h, err := os.OpenFile(host, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer h.Close()
	return At(ctx, tw, h, base)
}

// At is Tree of an open file (an O_PATH handle will do), which
// stays the caller's. The tree is walked through handles, each entry
// opened relative to its directory's without following a symlink, and a
// file's content is read from the very inode its header describes: a
// running container that swaps a directory for a symlink meanwhile cannot
// turn the walk to the host's files, nor have a device node opened.
func At(ctx context.Context, tw *tar.Writer, h *os.File, base string) error {
	return packEntry(ctx, tw, h, base, ".")
}

func packEntry(ctx context.Context, tw *tar.Writer, h *os.File, base, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", rel, err)
	}
	fi := statInfo{name: path.Base(rel), st: st}
	if base != "" || rel != "." {
		name := path.Join(base, rel)
		if base == "." && rel != "." {
			// "./NAME", as Docker's daemon writes it: the docker CLI
			// renames the archive's root by replacing its first ".".
			name = "./" + rel
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			var err error
			if link, err = readlinkFd(h); err != nil {
				return fmt.Errorf("readlink %s: %w", rel, err)
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // sockets and the like are skipped
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			return packContent(tw, h, hdr.Size, rel)
		}
	}
	if !fi.IsDir() {
		return nil
	}
	d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", rel, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", rel, err)
	}
	slices.Sort(names)
	for _, n := range names {
		fd, err := unix.Openat(int(d.Fd()), n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // removed since the directory was read
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", path.Join(rel, n), err)
		}
		child := os.NewFile(uintptr(fd), n)
		err = packEntry(ctx, tw, child, base, path.Join(rel, n))
		child.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// packContent copies what the header promised from the regular file h,
// reopened for reading through its handle: a running container's file may
// grow or shrink meanwhile (a short one is padded with zeros).
func packContent(tw *tar.Writer, h *os.File, size int64, rel string) error {
	f, err := pathrs.Reopen(h, unix.O_RDONLY)
	if err != nil {
		return fmt.Errorf("open %s: %w", rel, err)
	}
	defer f.Close()
	n, err := io.CopyN(tw, f, size)
	if errors.Is(err, io.EOF) {
		_, err = io.CopyN(tw, zeros{}, size-n)
	}
	return err
}

// readlinkFd reads the target of a symlink opened O_PATH|O_NOFOLLOW.
func readlinkFd(h *os.File) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(int(h.Fd()), "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// statInfo is an fs.FileInfo of an fstat, as os.Lstat would give it.
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (s statInfo) Name() string       { return s.name }
func (s statInfo) Size() int64        { return s.st.Size }
func (s statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s statInfo) Sys() any           { return &s.st }

func (s statInfo) Mode() fs.FileMode { return FileMode(s.st.Mode) }

// FileMode is the fs.FileMode of a stat's st_mode, as os.Lstat gives it.
func FileMode(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	switch mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
