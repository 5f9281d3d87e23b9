package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.push(t, "app:a", twoLayers(t, "a"))
	b := e.push(t, "app:b", twoLayers(t, "b"))
	for _, r := range []string{a, b} {
		if _, err := e.images.Pull(ctx, e.client, r, PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	imgA, _ := e.images.Get(a)
	imgB, _ := e.images.Get(b)
	var buf bytes.Buffer
	if err := e.images.Save(ctx, &buf, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	// The shared base layer is in the archive once.
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	names := map[string]int{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name]++
		// Entries carry the image's creation time (as Docker's), not 1970.
		if !h.ModTime.Equal(*imgA.Config.Created) {
			t.Errorf("%s: time %v, want the images' creation %v", h.Name, h.ModTime, imgA.Config.Created)
		}
	}
	if names["manifest.json"] != 1 || names["index.json"] != 1 || names["blobs/sha256/"+imgA.Config.RootFS.DiffIDs[0].Encoded()] != 1 {
		t.Errorf("archive entries: %v", names)
	}

	e2 := openEnv(t, t.TempDir(), e.reg)
	var msgs []string
	if err := e2.images.Load(ctx, bytes.NewReader(buf.Bytes()), func(m Message) { msgs = append(msgs, m.Stream) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(msgs, "") != "Loaded image: "+a+"\nLoaded image: "+b+"\n" {
		t.Errorf("load said %q", msgs)
	}
	for _, want := range []Image{imgA, imgB} {
		got, err := e2.images.Get(want.RepoTags[0])
		if err != nil || got.ID != want.ID {
			t.Fatalf("loaded %v, %v; want %s", got.ID, err, want.ID)
		}
		for i, c := range got.ChainIDs {
			if c != want.ChainIDs[i] {
				t.Errorf("chain %d = %s, want %s", i, c, want.ChainIDs[i])
			}
		}
	}
	if all, _ := e2.layers.List(); len(all) != 3 {
		t.Errorf("%d layers after load, want 3", len(all))
	}
	// Loading again changes nothing.
	if err := e2.images.Load(ctx, bytes.NewReader(buf.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	if all, _ := e2.layers.List(); len(all) != 3 {
		t.Errorf("%d layers after a second load", len(all))
	}
	assertTmpEmpty(t, e2)
}

func assertTmpEmpty(t *testing.T, e *env) {
	t.Helper()
	if tmp, _ := readDir(e.root + "/layers/tmp"); len(tmp) != 0 {
		t.Errorf("ingestions left: %v", tmp)
	}
}

type tarFile struct {
	name, link string
	body       []byte
}

func makeArchive(files ...tarFile) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if f.link != "" {
			tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeSymlink, Linkname: f.link})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))})
		tw.Write(f.body)
	}
	tw.Close()
	return buf.Bytes()
}

// The format of older docker save: <id>/layer.tar, <hex>.json, and a
// symlink for a layer used twice.
func TestLoadLegacyAndOCIArchives(t *testing.T) {
	ctx := context.Background()
	l1 := testimage.NewLayer(testimage.File{Name: "one", Body: []byte("1")})
	l2 := testimage.NewLayer(testimage.File{Name: "two", Body: []byte("2")})
	img := testimage.New(host, ocispec.ImageConfig{}, l1, l2)
	mj, _ := json.Marshal([]archiveManifest{{Config: img.ConfigDesc.Digest.Encoded() + ".json", RepoTags: []string{"legacy:1"},
		Layers: []string{"aaa/layer.tar", "bbb/layer.tar"}}})
	legacy := makeArchive(
		tarFile{name: "aaa/layer.tar", body: l1.Tar},
		tarFile{name: "bbb/layer.tar", body: l2.Tar},
		tarFile{name: "aaa/VERSION", body: []byte("1.0")},
		tarFile{name: img.ConfigDesc.Digest.Encoded() + ".json", body: img.Config},
		tarFile{name: "manifest.json", body: mj},
	)
	e := openEnv(t, t.TempDir(), nil)
	if err := e.images.Load(ctx, bytes.NewReader(legacy), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := e.images.Get("legacy:1"); err != nil || got.ID != img.ConfigDesc.Digest {
		t.Errorf("legacy load: %v %v", got.ID, err)
	}

	// A plain OCI layout with gzip layers, named by annotation.
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.ConfigDesc.Digest, Size: img.ConfigDesc.Size},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l1.Digest(), Size: int64(len(l1.Blob))}, {MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l2.Digest(), Size: int64(len(l2.Blob))}}}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb)),
		Annotations: map[string]string{"io.containerd.image.name": "docker.io/library/oci:2"}}}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	oci := makeArchive(
		tarFile{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		tarFile{name: "blobs/sha256/" + l1.Digest().Encoded(), body: l1.Blob},
		tarFile{name: "blobs/sha256/" + l2.Digest().Encoded(), body: l2.Blob},
		tarFile{name: "blobs/sha256/" + img.ConfigDesc.Digest.Encoded(), body: img.Config},
		tarFile{name: "blobs/sha256/" + digest.FromBytes(mb).Encoded(), body: mb},
		tarFile{name: "index.json", body: ib},
	)
	e2 := openEnv(t, t.TempDir(), nil)
	if err := e2.images.Load(ctx, bytes.NewReader(oci), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := e2.images.Get("oci:2"); err != nil || got.ID != img.ConfigDesc.Digest {
		t.Errorf("OCI load: %v %v", got.ID, err)
	}
}

func TestLoadBadArchives(t *testing.T) {
	ctx := context.Background()
	l1 := testimage.NewLayer(testimage.File{Name: "one", Body: []byte("1")})
	evil := testimage.NewLayer(testimage.File{Name: "../../escape", Body: []byte("x")})
	img := testimage.New(host, ocispec.ImageConfig{}, l1)
	mj := func(layers ...string) []byte {
		b, _ := json.Marshal([]archiveManifest{{Config: "c.json", RepoTags: []string{"bad:1"}, Layers: layers}})
		return b
	}
	other := testimage.New(host, ocispec.ImageConfig{}, testimage.NewLayer(testimage.File{Name: "other"}))
	cases := map[string]struct {
		archive []byte
		want    string
	}{
		"not a tar":      {[]byte("hello, this is not a tar archive at all ..........................."), "invalid archive"},
		"no manifest":    {makeArchive(tarFile{name: "x/layer.tar", body: l1.Tar}), "neither manifest.json nor index.json"},
		"escaping entry": {makeArchive(tarFile{name: "../layer.tar", body: l1.Tar}), "leaves the archive"},
		"hostile layer":  {makeArchive(tarFile{name: "x/layer.tar", body: evil.Tar}), "path traversal"},
		"missing layer":  {makeArchive(tarFile{name: "c.json", body: img.Config}, tarFile{name: "manifest.json", body: mj("x/layer.tar")}), "layer x/layer.tar missing"},
		"wrong layer":    {makeArchive(tarFile{name: "x/layer.tar", body: l1.Tar}, tarFile{name: "c.json", body: other.Config}, tarFile{name: "manifest.json", body: mj("x/layer.tar")}), "the config expects"},
		"count mismatch": {makeArchive(tarFile{name: "x/layer.tar", body: l1.Tar}, tarFile{name: "c.json", body: img.Config}, tarFile{name: "manifest.json", body: mj("x/layer.tar", "x/layer.tar")}), "lists 1 layers, the manifest 2"},
		"tag with a digest": {makeArchive(tarFile{name: "x/layer.tar", body: l1.Tar}, tarFile{name: "c.json", body: img.Config},
			tarFile{name: "manifest.json", body: []byte(`[{"Config":"c.json","RepoTags":["bad@` + img.ConfigDesc.Digest.String() + `"],"Layers":["x/layer.tar"]}]`)}),
			"refusing to create a tag with a digest reference"},
		"corrupt OCI blob": {makeArchive(tarFile{name: "blobs/sha256/" + l1.Digest().Encoded(), body: l1.Blob[:len(l1.Blob)-3]}), ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := openEnv(t, t.TempDir(), nil)
			err := e.images.Load(ctx, bytes.NewReader(c.archive), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if k := errdefs.KindOf(err); c.want != "" && k != errdefs.KindInvalidParameter {
				t.Errorf("kind %v, want invalid parameter", k)
			}
			assertNothingLeft(t, e)
		})
	}
}

func TestImport(t *testing.T) {
	e := openEnv(t, t.TempDir(), nil)
	var got []string
	e.images.Notify = func(a events.Action, id string, attrs map[string]string) {
		got = append(got, string(a)+" "+attrs["name"])
	}
	l := testimage.NewLayer(testimage.File{Name: "bin/", Type: tar.TypeDir}, testimage.File{Name: "bin/hello", Body: []byte("hi"), Mode: 0o755})
	id, err := e.images.Import(context.Background(), bytes.NewReader(l.Blob), ImportOptions{Ref: "imported:1",
		Changes: []string{`CMD ["/bin/hello"]`}, Source: "-"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.images.Get("imported:1")
	if err != nil || img.ID != id {
		t.Fatalf("Get = %v, %v", img.ID, err)
	}
	if img.Config.RootFS.DiffIDs[0] != l.DiffID || img.Config.Config.Cmd[0] != "/bin/hello" ||
		img.Config.History[0].Comment != "Imported from -" || img.Config.Architecture == "" {
		t.Errorf("imported config = %+v", img.Config)
	}
	if len(got) != 1 || got[0] != "import imported:1" {
		t.Errorf("events = %v", got)
	}
	if _, err := e.images.Import(context.Background(), strings.NewReader("not a tarball, not at all, no........"), ImportOptions{}); err == nil {
		t.Error("garbage imported")
	}
	if _, err := e.images.Import(context.Background(), bytes.NewReader(l.Blob), ImportOptions{Changes: []string{"RUN rm -rf /"}}); err == nil {
		t.Error("RUN change accepted")
	}
	assertTmpEmpty(t, e)
}
