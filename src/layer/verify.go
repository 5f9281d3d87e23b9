package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Verify re-reads a committed layer from disk and checks it is the layer
// that was pulled: the tar stream rebuilt from its files and tar-split
// metadata must hash to the diffID (every regular file's content, byte for
// byte), and every entry of that stream must be on disk as extraction left
// it (type, permission bits, owner, size, symlink target; whiteouts as
// overlayfs's 0:0 devices). The second half matters because the rebuild
// reads only regular files: an empty directory, a symlink or a chmod that a
// power cut lost would not change the digest. Used by the power-cut and
// crash-state tests through "balena-engine check".
func (l Layer) Verify() error {
	rc, err := l.TarStream()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := l.DiffID.Validate(); err != nil {
		return fmt.Errorf("layer %s: diffID %q: %w", l.ChainID, l.DiffID, err)
	}
	d := l.DiffID.Algorithm().Digester()
	want := map[string]*tar.Header{} // the last entry for each path wins
	tr := tar.NewReader(io.TeeReader(rc, d.Hash()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s: rebuild tar from disk: %w", l.ChainID, err)
		}
		rel, err := cleanName(hdr.Name)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.ChainID, err)
		}
		if rel == "" {
			continue
		}
		// An entry replacing a directory, or whiting it out, removed what
		// was under it; a whiteout also replaced the entry it names.
		occupies := rel
		if b := path.Base(rel); strings.HasPrefix(b, whiteoutPrefix) && !strings.HasPrefix(b, whiteoutMeta) {
			occupies = path.Join(path.Dir(rel), strings.TrimPrefix(b, whiteoutPrefix))
			delete(want, occupies)
		}
		if hdr.Typeflag != tar.TypeDir {
			for k := range want {
				if strings.HasPrefix(k, occupies+"/") {
					delete(want, k)
				}
			}
		}
		want[rel] = hdr
	}
	// The end blocks and padding are part of the diffID.
	if _, err := io.Copy(io.Discard, io.TeeReader(rc, d.Hash())); err != nil {
		return fmt.Errorf("layer %s: rebuild tar from disk: %w", l.ChainID, err)
	}
	if got := d.Digest(); got != l.DiffID {
		return fmt.Errorf("layer %s: %w", l.ChainID, &DigestError{What: "layer", Expected: l.DiffID, Actual: got})
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, rel := range names {
		if err := l.checkEntry(rel, want[rel]); err != nil {
			return fmt.Errorf("layer %s: %s: %w", l.ChainID, rel, err)
		}
	}
	return nil
}

// checkEntry compares one tar entry with what is on disk at rel.
func (l Layer) checkEntry(rel string, hdr *tar.Header) error {
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == whiteoutOpaque:
			d := l.Dir()
			if dir := path.Dir(rel); dir != "." {
				d = filepath.Join(d, dir)
			}
			buf := make([]byte, 8)
			n, err := unix.Lgetxattr(d, overlayXattrPfx+"opaque", buf)
			if errors.Is(err, unix.ENOTSUP) {
				return nil // extraction could not set it either
			}
			if err != nil || string(buf[:n]) != "y" {
				return fmt.Errorf("opaque directory not marked (%v)", err)
			}
			return nil
		case strings.HasPrefix(base, whiteoutMeta):
			return nil
		}
		rel = path.Join(path.Dir(rel), strings.TrimPrefix(base, whiteoutPrefix))
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(l.Dir(), rel), &st); err != nil {
			return fmt.Errorf("whiteout: %w", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			return fmt.Errorf("whiteout is not a 0:0 character device (mode %o)", st.Mode)
		}
		return nil
	}
	full := filepath.Join(l.Dir(), rel)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeLink {
		return nil // shares its target's inode, checked as the target
	}
	wantType := map[byte]uint32{tar.TypeDir: unix.S_IFDIR, tar.TypeReg: unix.S_IFREG,
		tar.TypeSymlink: unix.S_IFLNK, tar.TypeChar: unix.S_IFCHR, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
	if got := st.Mode & unix.S_IFMT; got != wantType {
		return fmt.Errorf("file type %o on disk, %o in the layer", got, wantType)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if st.Size != hdr.Size {
			return fmt.Errorf("size %d on disk, %d in the layer", st.Size, hdr.Size)
		}
	case tar.TypeSymlink:
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		if target != hdr.Linkname {
			return fmt.Errorf("symlink to %q on disk, %q in the layer", target, hdr.Linkname)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink && int64(st.Mode&0o7777) != hdr.Mode&0o7777 {
		return fmt.Errorf("mode %o on disk, %o in the layer", st.Mode&0o7777, hdr.Mode&0o7777)
	}
	if int(st.Uid) != hdr.Uid || int(st.Gid) != hdr.Gid {
		return fmt.Errorf("owner %d:%d on disk, %d:%d in the layer", st.Uid, st.Gid, hdr.Uid, hdr.Gid)
	}
	return nil
}

// Leftovers lists what the store holds on disk besides its committed
// layers, and committed layers missing a part: ingestions under tmp/,
// layer directories the database does not record, records without their
// diff/ directory or tar-split metadata. Right after Open's recovery it is
// empty; anything listed is a recovery bug.
func (s *Store) Leftovers() ([]string, error) {
	var out []string
	tmp, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	for _, e := range tmp {
		out = append(out, "ingestion left behind: "+filepath.Join(s.tmpDir(), e.Name()))
	}
	known := map[string]bool{}
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLayers).ForEach(func(k, _ []byte) error {
			id := digest.Digest(k)
			known[id.Encoded()] = true
			for _, p := range []string{filepath.Join(s.dirOf(id), "diff"), filepath.Join(s.dirOf(id), "tar-split.json.gz")} {
				if _, err := os.Lstat(p); err != nil {
					out = append(out, fmt.Sprintf("layer %s recorded but incomplete: %v", id, err))
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	dirs, err := os.ReadDir(s.layersDir())
	if err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	for _, e := range dirs {
		if !known[e.Name()] {
			out = append(out, "unrecorded layer directory: "+filepath.Join(s.layersDir(), e.Name()))
		}
	}
	return out, nil
}
