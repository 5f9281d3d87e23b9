package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fuzzEnv is a store holding one image, tagged busybox:latest, with a
// repo digest: what references are resolved against.
func fuzzEnv(f *testing.F) (*env, testimage.Image) {
	e := openEnv(f, f.TempDir(), nil)
	e.db.NoSync = true // a fuzzer's store need not survive a power cut
	img := testimage.New(host, ocispec.ImageConfig{}, testimage.NewLayer(testimage.File{Name: "f", Body: []byte("x")}))
	var buf bytes.Buffer
	if err := testimage.Archive(&buf, "busybox:latest", img); err != nil {
		f.Fatal(err)
	}
	if err := e.images.Load(context.Background(), &buf, nil); err != nil {
		f.Fatal(err)
	}
	if err := e.images.addRepoDigest(img.ConfigDesc.Digest, "docker.io/library/busybox@"+img.ManifestDesc.Digest.String()); err != nil {
		f.Fatal(err)
	}
	return e, img
}

// FuzzReference resolves fuzzed references as every command naming an
// image does, and tags with them as docker tag does: no panic, only
// not-found and invalid-parameter errors, and a tag made must resolve,
// under its normalized and its familiar form, to the image tagged.
func FuzzReference(f *testing.F) {
	e, img := fuzzEnv(f)
	id := img.ConfigDesc.Digest
	for _, s := range []string{
		"busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest",
		"index.docker.io/library/busybox", "busybox@" + img.ManifestDesc.Digest.String(),
		"busybox:latest@" + img.ManifestDesc.Digest.String(), id.String(), id.Encoded()[:12], "sha256:" + id.Encoded()[:5],
		"localhost:5000/a/b/c:v1.0", "[::1]:5000/app:tag", "Upper/case", "a" + strings.Repeat("/a", 130),
		"app:" + strings.Repeat("t", 129), "sha256:", "", ":", "@", "app@sha256:abc", "xn--bcher-kva.example/app",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if _, err := e.images.Get(ref); err != nil {
			if k := errdefs.KindOf(err); k != errdefs.KindNotFound && k != errdefs.KindInvalidParameter {
				t.Fatalf("Get(%q): %v (%v)", ref, err, k)
			}
		}
		nt, err := ParseTag(ref)
		if err != nil {
			return
		}
		again, err := ParseTag(nt.String())
		if err != nil || again.String() != nt.String() {
			t.Fatalf("ParseTag(%q) = %s, which parses as %v, %v", ref, nt, again, err)
		}
		if err := e.images.Tag(id.String(), ref); err != nil {
			t.Fatalf("Tag(%q): %v", ref, err)
		}
		forms := []string{ref, nt.String()}
		// The familiar form is the one shown; typed back it names the same
		// image, unless it does not name the same repository at all: a Hub
		// path that starts like a registry ("docker.io/a.io/b" shows as
		// "a.io/b"), as with Docker, which shows names the same way.
		if n, err := reference.ParseNormalizedNamed(familiar(nt.String())); err == nil && n.Name() == nt.Name() {
			forms = append(forms, familiar(nt.String()))
		}
		for _, r := range forms {
			got, err := e.images.Get(r)
			if err != nil || got.ID != id {
				t.Fatalf("tagged %q, Get(%q) = %v, %v", ref, r, got.ID, err)
			}
		}
	})
}

// Digests a fuzzed archive's documents can name: replaced by those of the
// image's manifest, config and layer, which mutation could not compute.
var (
	manifestHex = strings.Repeat("0", 64)
	configHex   = strings.Repeat("1", 64)
	layerHex    = strings.Repeat("2", 64)
)

// FuzzLoad loads archives ("docker load") whose manifest.json and
// index.json are fuzzed, beside a valid image's blobs (and an extra
// entry, fuzzed too): whatever they say, the load must leave the stores
// whole (image.Store.Check: nothing half-loaded, no layer unused, no
// ingestion left), and every tag it reports must name an image.
func FuzzLoad(f *testing.F) {
	e, _ := fuzzEnv(f)
	img := testimage.New(host, ocispec.ImageConfig{Env: []string{"FUZZ=1"}},
		testimage.NewLayer(testimage.File{Name: "etc/", Type: tar.TypeDir}, testimage.File{Name: "etc/os-release", Body: []byte("ID=fuzz")}))
	blob := func(hex string) string { return "blobs/sha256/" + hex }
	mj, _ := json.Marshal([]archiveManifest{{Config: blob(configHex), RepoTags: []string{"fuzz:1"}, Layers: []string{blob(layerHex)}}})
	idx, _ := json.Marshal(ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest,
		Digest: digest.NewDigestFromEncoded(digest.SHA256, manifestHex), Annotations: map[string]string{ocispec.AnnotationRefName: "fuzz:2"}}}})
	nested, _ := json.Marshal(ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex,
		Digest: digest.NewDigestFromEncoded(digest.SHA256, manifestHex)}}})
	f.Add(mj, []byte(nil), "", []byte(nil))
	f.Add([]byte(nil), idx, "", []byte(nil))
	f.Add(mj, idx, "repositories", []byte(`{"fuzz":{"3":"`+configHex+`"}}`))
	f.Add([]byte(`[{"Config":"`+blob(configHex)+`","Layers":["l","l"]}]`), []byte(nil), "l", []byte("link:"+blob(layerHex)))
	f.Add([]byte(`[{"Config":"c","Layers":["../`+blob(layerHex)+`"]}]`), []byte(nil), "c", []byte("link:c"))
	f.Add([]byte(`[{"Config":"`+blob(layerHex)+`","Layers":["`+blob(configHex)+`"]}]`), []byte(nil), "", []byte(nil))
	f.Add([]byte(nil), nested, "", []byte(nil))
	f.Add([]byte(`[{"Config":"`+blob(configHex)+`","RepoTags":["a@sha256:`+configHex+`","UPPER","::"],"Layers":["`+blob(layerHex)+`"]}]`),
		[]byte(nil), "", []byte(nil))
	f.Fuzz(func(t *testing.T, manifestJSON, indexJSON []byte, extraName string, extra []byte) {
		fix := func(b []byte) []byte {
			b = bytes.ReplaceAll(b, []byte(manifestHex), []byte(img.ManifestDesc.Digest.Encoded()))
			b = bytes.ReplaceAll(b, []byte(configHex), []byte(img.ConfigDesc.Digest.Encoded()))
			return bytes.ReplaceAll(b, []byte(layerHex), []byte(img.Layers[0].Digest().Encoded()))
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		put := func(name string, b []byte) {
			if target, ok := bytes.CutPrefix(b, []byte("link:")); ok {
				tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: string(fix(target))})
				return
			}
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
			tw.Write(b)
		}
		put(blob(img.Layers[0].Digest().Encoded()), img.Layers[0].Blob)
		put(blob(img.ConfigDesc.Digest.Encoded()), img.Config)
		put(blob(img.ManifestDesc.Digest.Encoded()), img.Manifest)
		if extraName != "" {
			put(string(fix([]byte(extraName))), fix(extra))
		}
		if manifestJSON != nil {
			put("manifest.json", fix(manifestJSON))
		}
		if indexJSON != nil {
			put("index.json", fix(indexJSON))
		}
		tw.Close()
		var loaded []string
		err := e.images.Load(context.Background(), &buf, func(m Message) { loaded = append(loaded, m.Stream) })
		if err == nil {
			for _, l := range loaded {
				name, ok := strings.CutPrefix(strings.TrimSpace(l), "Loaded image: ")
				if !ok {
					continue
				}
				if _, err := e.images.Get(name); err != nil {
					t.Fatalf("loaded %q, which is not found: %v", name, err)
				}
				if _, err := reference.ParseNormalizedNamed(name); err != nil {
					t.Fatalf("loaded %q, which is no reference: %v", name, err)
				}
			}
		}
		rep, cerr := e.images.Check()
		if cerr != nil || len(rep.Problems) != 0 {
			t.Fatalf("after a load (%v): %v %v", err, cerr, rep.Problems)
		}
		if tmp, _ := os.ReadDir(filepath.Join(e.root, "layers", "tmp")); len(tmp) != 0 {
			t.Fatalf("ingestions left behind: %v", tmp)
		}
	})
}
