package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Digests a fuzzed document can point with: the server replaces them by
// the digests of the documents served, which a mutation could never
// compute, so that the fuzzer reaches past the digest checks.
var (
	manifestRef = "sha256:" + strings.Repeat("0", 64)
	configRef   = "sha256:" + strings.Repeat("1", 64)
)

// FuzzResolve serves fuzzed documents as a registry's answer for a tag
// (an index or a manifest, with a fuzzed Content-Type), the manifest an
// index points to, and the config a manifest points to, and resolves and
// describes the tag as a pull and "docker manifest inspect" do: no panic,
// and what Resolve returns must be an image manifest with valid digests,
// the bytes it says, on a platform that was asked for.
func FuzzResolve(f *testing.F) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	man := func(mt string) []byte {
		b, _ := json.Marshal(ocispec.Manifest{MediaType: mt,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.Digest(configRef), Size: int64(len(cfg))},
			Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("l"), Size: 1}}})
		return bytes.Replace(b, []byte(`"mediaType"`), []byte(`"schemaVersion":2,"mediaType"`), 1)
	}
	idx := func(mt string, ps ...string) []byte {
		var ms []ocispec.Descriptor
		for _, p := range ps {
			pl := platforms.MustParse(p)
			ms = append(ms, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(manifestRef), Size: 1, Platform: &pl})
		}
		b, _ := json.Marshal(ocispec.Index{MediaType: mt, Manifests: ms})
		return b
	}
	f.Add(man(ocispec.MediaTypeImageManifest), []byte(nil), cfg, "")
	f.Add(man(MediaTypeDockerManifest), []byte(nil), cfg, MediaTypeDockerManifest)
	f.Add(man(""), []byte(nil), cfg, "application/json; charset=utf-8")
	f.Add(idx(ocispec.MediaTypeImageIndex, "linux/arm/v7", "linux/amd64", "unknown/unknown"), man(""), cfg, "")
	f.Add(idx(MediaTypeDockerManifestList, "linux/arm64", "linux/arm/v6"), man(MediaTypeDockerManifest), cfg, "")
	f.Add(idx("", "linux/amd64"), idx("", "linux/amd64"), cfg, ocispec.MediaTypeImageIndex)
	f.Add([]byte(`{"schemaVersion":1,"fsLayers":[]}`), []byte(nil), []byte(nil), "")
	f.Add([]byte(`{"manifests":[{"digest":"`+manifestRef+`","platform":{"os":"linux","architecture":"amd64"}}]}`),
		[]byte(`{"config":{"digest":"sha256:x"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}]}`), cfg, "")

	var (
		mu                   sync.Mutex
		top, manifest, cfgBl []byte
		ct                   string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/v2/lib/app/manifests/latest":
			w.Header().Set("Content-Type", ct)
			w.Write(top)
		case strings.HasPrefix(r.URL.Path, "/v2/lib/app/manifests/"):
			w.Write(manifest)
		case strings.HasPrefix(r.URL.Path, "/v2/lib/app/blobs/"):
			w.Write(cfgBl)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	f.Cleanup(srv.Close)
	c, err := New(fastOptions())
	if err != nil {
		f.Fatal(err)
	}
	n, err := reference.ParseNormalizedNamed(strings.TrimPrefix(srv.URL, "http://") + "/lib/app:latest")
	if err != nil {
		f.Fatal(err)
	}
	repo := c.Repository(reference.TrimNamed(n), nil)
	want := ocispec.Platform{OS: "linux", Architecture: "amd64"}

	f.Fuzz(func(t *testing.T, tagDoc, manDoc, config []byte, contentType string) {
		mu.Lock()
		cfgBl = config
		manifest = bytes.ReplaceAll(manDoc, []byte(configRef), []byte(digest.FromBytes(config)))
		top = bytes.ReplaceAll(tagDoc, []byte(manifestRef), []byte(digest.FromBytes(manifest)))
		top = bytes.ReplaceAll(top, []byte(configRef), []byte(digest.FromBytes(config)))
		ct = contentType
		mu.Unlock()
		ctx := context.Background()
		res, err := repo.Resolve(ctx, n, platforms.Only(want), "linux/amd64")
		if err == nil {
			if !isManifest(res.Desc.MediaType) {
				t.Fatalf("resolved to a %q", res.Desc.MediaType)
			}
			if res.Desc.Digest != digest.FromBytes(res.Raw) || res.Desc.Size != int64(len(res.Raw)) {
				t.Fatalf("descriptor %v for %d bytes of digest %s", res.Desc, len(res.Raw), digest.FromBytes(res.Raw))
			}
			if res.Manifest.Config.Digest.Validate() != nil {
				t.Fatalf("config digest %q", res.Manifest.Config.Digest)
			}
			for _, l := range res.Manifest.Layers {
				if l.Digest.Validate() != nil {
					t.Fatalf("layer digest %q", l.Digest)
				}
			}
			if res.Platform != nil && !platforms.Only(want).Match(*res.Platform) {
				t.Fatalf("chose %v for %v", *res.Platform, want)
			}
		}
		repo.Describe(ctx, n)
	})
}
