package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerOptions say how a directory becomes a layer tar.
type layerOptions struct {
	prefix string    // path in the layer of the directory's root ("" for /, "app" for /app)
	clamp  time.Time // times later than this are written as this (as tar --clamp-mtime)
	skip   func(rel string) bool
}

// writeDirLayer writes dir as a layer tar at out: entries in lexical order,
// numeric owners without names, times clamped, hard links as links, device
// nodes, sockets and FIFOs left out. The same tree gives the same bytes.
func writeDirLayer(dir, out string, o layerOptions) error {
	f, err := os.Create(out + ".partial")
	if err != nil {
		return err
	}
	defer os.Remove(out + ".partial")
	tw := tar.NewWriter(f)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	if o.prefix != "" {
		// The prefix's own directories, as a root directory has them.
		parts := strings.Split(o.prefix, "/")
		for i := range parts {
			h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i+1], "/") + "/", Mode: 0o755, ModTime: o.clamp}
			if err := tw.WriteHeader(h); err != nil {
				f.Close()
				return err
			}
		}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if o.skip != nil && o.skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		name := rel
		if o.prefix != "" {
			name = o.prefix + "/" + rel
		}
		var link string
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular(), fi.IsDir():
		default:
			return nil // devices, sockets, FIFOs: not in an image's layer
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = name
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		h.ModTime = h.ModTime.Truncate(time.Second)
		if h.ModTime.After(o.clamp) {
			h.ModTime = o.clamp
		}
		h.Format = tar.FormatUnknown
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, ok := seen[key]; ok {
					h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
					return tw.WriteHeader(h)
				}
				seen[key] = name
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		n, err := io.Copy(tw, src)
		if err == nil && n != h.Size {
			err = fmt.Errorf("%s changed while being read", p)
		}
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer of %s: %w", dir, err)
	}
	return os.Rename(out+".partial", out)
}

// fileEntry is one entry of a layer written from a list.
type fileEntry struct {
	name string // "usr/" for a directory
	src  string // the regular file's content on disk
	mode int64
}

// writeFilesLayer writes a layer of directories and files copied from disk.
func writeFilesLayer(out string, at time.Time, entries ...fileEntry) error {
	f, err := os.Create(out + ".partial")
	if err != nil {
		return err
	}
	defer os.Remove(out + ".partial")
	tw := tar.NewWriter(f)
	for _, e := range entries {
		if strings.HasSuffix(e.name, "/") {
			if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: e.name, Mode: 0o755, ModTime: at}); err != nil {
				break
			}
			continue
		}
		var b []byte
		if b, err = os.ReadFile(e.src); err != nil {
			break
		}
		if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: e.mode, Size: int64(len(b)), ModTime: at}); err != nil {
			break
		}
		if _, err = tw.Write(b); err != nil {
			break
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(out+".partial", out)
}

// layerFile is a layer tar on disk and its diffID.
type layerFile struct {
	path   string
	size   int64
	diffID digest.Digest
}

func openLayer(p string) (layerFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return layerFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return layerFile{}, err
	}
	return layerFile{path: p, size: n, diffID: digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))}, nil
}

// image is an image made of layer tars on disk.
type image struct {
	tag    string
	layers []layerFile
	config []byte
	id     digest.Digest // the config's digest
}

func newImage(tag string, cfg ocispec.ImageConfig, created time.Time, layers ...layerFile) image {
	p := platforms.DefaultSpec()
	img := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for i, l := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.diffID)
		img.History = append(img.History, ocispec.History{Created: &created, CreatedBy: fmt.Sprintf("deltabench layer %d", i)})
	}
	raw, _ := json.Marshal(img)
	return image{tag: tag, layers: layers, config: raw, id: digest.FromBytes(raw)}
}

func (img image) tarBytes() int64 {
	var n int64
	for _, l := range img.layers {
		n += l.size
	}
	return n
}

// writeArchive writes imgs as one "docker save" archive (manifest.json;
// uncompressed layer tars as blobs named by their digests), layers shared
// between the images written once.
func writeArchive(w io.Writer, imgs ...image) error {
	tw := tar.NewWriter(w)
	blob := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	written := map[digest.Digest]bool{}
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	for _, img := range imgs {
		e := entry{Config: blob(img.id), RepoTags: []string{img.tag}}
		for _, l := range img.layers {
			e.Layers = append(e.Layers, blob(l.diffID))
			if written[l.diffID] {
				continue
			}
			written[l.diffID] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blob(l.diffID), Mode: 0o444, Size: l.size, ModTime: testimage.Epoch}); err != nil {
				return err
			}
			f, err := os.Open(l.path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blob(img.id), Mode: 0o444, Size: int64(len(img.config)), ModTime: testimage.Epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(img.config); err != nil {
			return err
		}
		manifest = append(manifest, e)
	}
	mj, _ := json.Marshal(manifest)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Mode: 0o444, Size: int64(len(mj)), ModTime: testimage.Epoch}); err != nil {
		return err
	}
	if _, err := tw.Write(mj); err != nil {
		return err
	}
	return tw.Close()
}
