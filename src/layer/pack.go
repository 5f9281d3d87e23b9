package layer

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// PackTree writes host and what is below it to tw, named under base (the
// tree's own entry is left out when base is empty; base "." names entries
// "./NAME", as Docker's daemon does for docker cp's "DIR/."). Symlinks are
// archived as symlinks, never followed; sockets are skipped; owners are
// kept. It is docker cp's and docker export's writer, Unpack's counterpart.
func PackTree(ctx context.Context, tw *tar.Writer, host, base string) error {
	return filepath.WalkDir(host, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(host, hp)
		if base == "" && rel == "." {
			return nil
		}
		name := filepath.Join(base, rel)
		if base == "." && rel != "." {
			// "./NAME", as Docker's daemon writes it: the docker CLI
			// renames the archive's root by replacing its first ".".
			name = "./" + rel
		}
		fi, err := os.Lstat(hp)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(hp)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // sockets and the like are skipped
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.OpenFile(hp, os.O_RDONLY|unix.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			// Copy what the header promised: a running container's file may
			// grow or shrink meanwhile (a short one is padded with zeros).
			n, err := io.CopyN(tw, f, hdr.Size)
			f.Close()
			if errors.Is(err, io.EOF) {
				_, err = io.CopyN(tw, zeros{}, hdr.Size-n)
			}
			return err
		}
		return nil
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
