// Package testimage builds the images tests use, from files on this machine
// (Debian's busybox-static) and from data made up on the spot, with no
// image ever downloaded. Everything is deterministic: the same inputs give
// the same digests.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Epoch is the time stamped on every file and config, for reproducibility.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one entry of a layer.
type File struct {
	Name     string
	Type     byte // tar.TypeReg when zero
	Mode     int64
	Body     []byte
	Linkname string
	Uid, Gid int
}

// Layer is a layer's tar, its gzip blob and their digests.
type Layer struct {
	Tar, Blob []byte
	DiffID    digest.Digest
}

// Digest is the blob's digest.
func (l Layer) Digest() digest.Digest { return digest.FromBytes(l.Blob) }

// NewLayer builds a layer from files, in order.
func NewLayer(files ...File) Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := f.Mode
		if mode == 0 {
			mode = map[byte]int64{tar.TypeDir: 0o755, tar.TypeSymlink: 0o777}[typ]
			if mode == 0 {
				mode = 0o644
			}
		}
		h := &tar.Header{Typeflag: typ, Name: f.Name, Mode: mode, Linkname: f.Linkname,
			Uid: f.Uid, Gid: f.Gid, ModTime: Epoch, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err) // only our own fixed inputs reach here
		}
		tw.Write(f.Body)
	}
	tw.Close()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(buf.Bytes())
	zw.Close()
	return Layer{Tar: buf.Bytes(), Blob: gz.Bytes(), DiffID: digest.FromBytes(buf.Bytes())}
}

// Image is a complete single-platform image.
type Image struct {
	Platform     ocispec.Platform
	Layers       []Layer
	Config       []byte
	ConfigDesc   ocispec.Descriptor
	Manifest     []byte
	ManifestDesc ocispec.Descriptor
}

// Docker's media types, which most registries and clients expect.
const (
	MediaTypeManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// New assembles an image for platform from layers, with Docker media types.
func New(platform ocispec.Platform, cfg ocispec.ImageConfig, layers ...Layer) Image {
	img := ocispec.Image{
		Created:  &Epoch,
		Platform: platform,
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for i, l := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.DiffID)
		img.History = append(img.History, ocispec.History{Created: &Epoch, CreatedBy: fmt.Sprintf("testimage layer %d", i)})
	}
	cfgJSON, _ := json.Marshal(img)
	out := Image{Platform: platform, Layers: layers, Config: cfgJSON,
		ConfigDesc: ocispec.Descriptor{MediaType: MediaTypeConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}}
	m := ocispec.Manifest{MediaType: MediaTypeManifest, Config: out.ConfigDesc}
	m.SchemaVersion = 2
	for _, l := range layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: MediaTypeLayer, Digest: l.Digest(), Size: int64(len(l.Blob))})
	}
	out.Manifest, _ = json.Marshal(m)
	p := platform
	out.ManifestDesc = ocispec.Descriptor{MediaType: MediaTypeManifest, Digest: digest.FromBytes(out.Manifest),
		Size: int64(len(out.Manifest)), Platform: &p}
	return out
}

// Index is a manifest list of images.
func Index(imgs ...Image) ([]byte, ocispec.Descriptor) {
	idx := ocispec.Index{MediaType: MediaTypeManifestList}
	idx.SchemaVersion = 2
	for _, img := range imgs {
		idx.Manifests = append(idx.Manifests, img.ManifestDesc)
	}
	b, _ := json.Marshal(idx)
	return b, ocispec.Descriptor{MediaType: MediaTypeManifestList, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// Busybox builds a busybox image for the platform from a static busybox
// binary (Debian's busybox-static: /bin/busybox on the build machine's
// architecture): the binary, a link per applet, /etc/passwd and /etc/group.
func Busybox(platform ocispec.Platform, busybox string) (Image, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return Image{}, fmt.Errorf("busybox binary: %w (install busybox-static)", err)
	}
	applets, err := appletList()
	if err != nil {
		return Image{}, err
	}
	files := []File{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Mode: 0o755, Body: bin},
	}
	for _, a := range applets {
		if a != "busybox" {
			files = append(files, File{Name: "bin/" + a, Type: tar.TypeSymlink, Linkname: "busybox"})
		}
	}
	files = append(files,
		File{Name: "dev/", Type: tar.TypeDir}, File{Name: "proc/", Type: tar.TypeDir},
		File{Name: "sys/", Type: tar.TypeDir}, File{Name: "root/", Type: tar.TypeDir, Mode: 0o700},
		File{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		File{Name: "etc/", Type: tar.TypeDir},
		File{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		File{Name: "etc/group", Body: []byte("root:x:0:\nnogroup:x:65534:\n")},
	)
	cfg := ocispec.ImageConfig{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"sh"},
	}
	return New(platform, cfg, NewLayer(files...)), nil
}

// appletList asks the host's busybox for its applets: the same Debian
// version on every architecture has the same list.
func appletList() ([]string, error) {
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w (install busybox-static)", err)
	}
	return strings.Fields(string(out)), nil
}

// Pusher is what Push needs of a registry repository.
type Pusher interface {
	PushBlob(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) error
	PushManifest(ctx context.Context, ref, mediaType string, raw []byte) (digest.Digest, error)
}

// Push uploads images under tag: one image as a manifest, several as a
// manifest list.
func Push(ctx context.Context, repo Pusher, tag string, imgs ...Image) error {
	blob := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	for _, img := range imgs {
		for _, l := range img.Layers {
			if err := repo.PushBlob(ctx, ocispec.Descriptor{Digest: l.Digest(), Size: int64(len(l.Blob))}, blob(l.Blob)); err != nil {
				return err
			}
		}
		if err := repo.PushBlob(ctx, img.ConfigDesc, blob(img.Config)); err != nil {
			return err
		}
		ref := tag
		if len(imgs) > 1 {
			ref = img.ManifestDesc.Digest.String()
		}
		if _, err := repo.PushManifest(ctx, ref, MediaTypeManifest, img.Manifest); err != nil {
			return err
		}
	}
	if len(imgs) > 1 {
		idx, _ := Index(imgs...)
		if _, err := repo.PushManifest(ctx, tag, MediaTypeManifestList, idx); err != nil {
			return err
		}
	}
	return nil
}

// Archive writes img as a "docker save" archive (an OCI layout with
// Docker's manifest.json) naming it tag, for "balena-engine load".
func Archive(w io.Writer, tag string, img Image) error {
	tw := tar.NewWriter(w)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(b)), ModTime: Epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	blob := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	var layers []string
	for _, l := range img.Layers {
		if err := put(blob(l.Digest()), l.Blob); err != nil {
			return err
		}
		layers = append(layers, blob(l.Digest()))
	}
	if err := put(blob(img.ConfigDesc.Digest), img.Config); err != nil {
		return err
	}
	if err := put(blob(img.ManifestDesc.Digest), img.Manifest); err != nil {
		return err
	}
	d := img.ManifestDesc
	d.Annotations = map[string]string{"io.containerd.image.name": tag}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	mj, _ := json.Marshal([]map[string]any{{"Config": blob(img.ConfigDesc.Digest), "RepoTags": []string{tag}, "Layers": layers}})
	for _, f := range []struct {
		name string
		b    []byte
	}{{"index.json", ib}, {"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"manifest.json", mj}} {
		if err := put(f.name, f.b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteHostBusybox writes, at path, a "docker save" archive tagged tag of
// the busybox image for this machine's platform, from the host's
// /bin/busybox (Debian's busybox-static): the image the benchmarks load.
func WriteHostBusybox(path, tag string) error {
	p := platforms.DefaultSpec()
	img, err := Busybox(ocispec.Platform{OS: p.OS, Architecture: p.Architecture}, "/bin/busybox")
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Archive(f, tag, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
