package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/archdef"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A multi-architecture busybox image, one entry per architecture in arch/
// built from Debian's busybox-static for that architecture: each engine
// platform resolves to its own entry, and the busybox it gets runs on the
// CPU arch/ names for it (qemu-user, or natively).
func TestBusyboxPerArchitecture(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	arches, err := archdef.LoadAll(filepath.Join(filepath.Dir(file), "..", "..", "arch"))
	if err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t)
	c, _ := New(fastOptions())
	ctx := context.Background()
	var imgs []testimage.Image
	for _, a := range arches {
		bin, err := testimage.BusyboxFor(a.DebianArch)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		p, err := platforms.Parse(a.Platform)
		if err != nil {
			t.Fatal(err)
		}
		img, err := testimage.Busybox(ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}, bin)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	r := repo(t, c, reg.Host+"/library/busybox", nil)
	if err := testimage.Push(ctx, r, "multi", imgs...); err != nil {
		t.Fatal(err)
	}
	for i, a := range arches {
		t.Run(a.Name, func(t *testing.T) {
			p, _ := platforms.Parse(a.Platform)
			res, err := r.Resolve(ctx, named(t, reg.Host+"/library/busybox:multi"), platforms.Only(p), a.Platform)
			if err != nil {
				t.Fatal(err)
			}
			if res.Desc.Digest != imgs[i].ManifestDesc.Digest {
				t.Fatalf("chose %s (%s), want this architecture's own", res.Desc.Digest, platforms.Format(*res.Platform))
			}
			blob, err := readBlob(t, r, res.Manifest.Layers[0])
			if err != nil {
				t.Fatal(err)
			}
			bin := extractFile(t, blob, "bin/busybox")
			out, err := a.Command(bin, "echo", "runs").CombinedOutput()
			if a.NativeRefused(err) {
				// The guest's smoke test runs this architecture's
				// busybox image.
				t.Skip(a.NativeRefusedNote())
			}
			if err != nil || string(out) != "runs\n" {
				t.Errorf("busybox for %s under %s %s: %v %q", a.Name, a.QEMUUser, a.QEMUUserCPU, err, out)
			}
		})
	}
}

func extractFile(t *testing.T, blob []byte, name string) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", name, err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			p := filepath.Join(t.TempDir(), "busybox")
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(f, tr)
			f.Close()
			return p
		}
	}
}
