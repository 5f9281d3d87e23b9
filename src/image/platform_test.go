package image

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCheckPlatform(t *testing.T) {
	img := Image{}
	img.Config.OS, img.Config.Architecture = "linux", "arm"
	img.Config.Variant = "v7"
	for _, c := range []struct {
		want []ocispec.Platform
		ok   bool
	}{
		{nil, true},
		{[]ocispec.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}}, true},
		{[]ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}}, true},
		{[]ocispec.Platform{{OS: "linux", Architecture: "arm64"}}, false},
		{[]ocispec.Platform{{OS: "linux", Architecture: "arm", Variant: "v6"}}, false}, // strict, as Docker's inspect
	} {
		err := img.CheckPlatform("app:1", c.want)
		if (err == nil) != c.ok {
			t.Errorf("%v: %v", c.want, err)
		}
		if err != nil && errdefs.KindOf(err) != errdefs.KindNotFound {
			t.Errorf("%v: %v is not a 404", c.want, err)
		}
	}
	err := img.CheckPlatform("app:1", []ocispec.Platform{{OS: "linux", Architecture: "arm64"}})
	if want := "image with reference app:1 was found but does not provide the specified platform (linux/arm64)"; err == nil || err.Error() != want {
		t.Errorf("%v, want %q", err, want)
	}
}

// docker load --platform: from an index the image of the platform asked
// for; an archive whose image is of another platform is refused with
// nothing recorded.
func TestLoadPlatforms(t *testing.T) {
	ctx := context.Background()
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	s390x := ocispec.Platform{OS: "linux", Architecture: "s390x"}
	mine := testimage.New(host, ocispec.ImageConfig{}, testimage.NewLayer(testimage.File{Name: "mine", Body: []byte("m")}))
	theirs := testimage.New(arm64, ocispec.ImageConfig{}, testimage.NewLayer(testimage.File{Name: "theirs", Body: []byte("t")}))
	var files []tarFile
	var descs []ocispec.Descriptor
	for _, img := range []testimage.Image{mine, theirs} {
		l := img.Layers[0]
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: img.ConfigDesc,
			Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l.Digest(), Size: int64(len(l.Blob))}}}
		m.SchemaVersion = 2
		mb, _ := json.Marshal(m)
		p := img.Platform
		descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb)), Platform: &p})
		files = append(files, tarFile{name: "blobs/sha256/" + l.Digest().Encoded(), body: l.Blob},
			tarFile{name: "blobs/sha256/" + img.ConfigDesc.Digest.Encoded(), body: img.Config},
			tarFile{name: "blobs/sha256/" + digest.FromBytes(mb).Encoded(), body: mb})
	}
	inner := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	inner.SchemaVersion = 2
	ib, _ := json.Marshal(inner)
	top := ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(ib), Size: int64(len(ib)),
		Annotations: map[string]string{"io.containerd.image.name": "docker.io/library/multi:1"}}}}
	top.SchemaVersion = 2
	tb, _ := json.Marshal(top)
	files = append(files, tarFile{name: "blobs/sha256/" + digest.FromBytes(ib).Encoded(), body: ib}, tarFile{name: "index.json", body: tb})
	archive := makeArchive(files...)

	for _, c := range []struct {
		want []ocispec.Platform
		id   digest.Digest
	}{{nil, mine.ConfigDesc.Digest}, {[]ocispec.Platform{arm64}, theirs.ConfigDesc.Digest}} {
		e := openEnv(t, t.TempDir(), nil)
		if err := e.images.LoadPlatforms(ctx, bytes.NewReader(archive), nil, c.want); err != nil {
			t.Fatal(err)
		}
		if got, err := e.images.Get("multi:1"); err != nil || got.ID != c.id {
			t.Errorf("load of %v: %v %v, want %v", c.want, got.ID, err, c.id)
		}
	}
	e := openEnv(t, t.TempDir(), nil)
	err := e.images.LoadPlatforms(ctx, bytes.NewReader(archive), nil, []ocispec.Platform{s390x})
	if errdefs.KindOf(err) != errdefs.KindNotFound || !strings.Contains(err.Error(), "requested platform(s) ([linux/s390x]) not found") {
		t.Errorf("load of s390x from an index without it: %v", err)
	}
	assertNothingLeft(t, e)

	// docker save's archive (manifest.json) of this machine's image.
	src := openEnv(t, t.TempDir(), nil)
	if err := src.images.LoadPlatforms(ctx, bytes.NewReader(archive), nil, nil); err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	if err := src.images.Save(ctx, &saved, []string{"multi:1"}); err != nil {
		t.Fatal(err)
	}
	e = openEnv(t, t.TempDir(), nil)
	err = e.images.LoadPlatforms(ctx, bytes.NewReader(saved.Bytes()), nil, []ocispec.Platform{s390x})
	if errdefs.KindOf(err) != errdefs.KindNotFound || !strings.Contains(err.Error(), "requested platform(s) ([linux/s390x]) not found: image multi:1 is ") {
		t.Errorf("load of s390x from a save of another platform: %v", err)
	}
	assertNothingLeft(t, e)
}
