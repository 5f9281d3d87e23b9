package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/delta"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func noise(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// deltaPair is a base and a target sharing their first layer, the second
// edited (a file changed in place, one renamed, one added), a third new.
func deltaPair() (a, b testimage.Image, shared testimage.Layer) {
	shared = testimage.NewLayer(testimage.File{Name: "bin/tool", Mode: 0o755, Body: noise(1, 150_000)})
	lib := noise(2, 300_000)
	edited := append(append(append([]byte{}, lib[:100_000]...), []byte("a small change")...), lib[100_010:]...)
	la := testimage.NewLayer(
		testimage.File{Name: "app/", Type: '5'},
		testimage.File{Name: "app/lib.so", Body: lib},
		testimage.File{Name: "app/old-name.txt", Body: bytes.Repeat([]byte("config line\n"), 500)},
		testimage.File{Name: "app/link", Type: '2', Linkname: "lib.so"},
	)
	lb := testimage.NewLayer(
		testimage.File{Name: "app/", Type: '5'},
		testimage.File{Name: "app/lib.so", Body: edited},
		testimage.File{Name: "app/new-name.txt", Body: bytes.Repeat([]byte("config line\n"), 500)},
		testimage.File{Name: "app/link", Type: '2', Linkname: "lib.so"},
		testimage.File{Name: "app/added", Mode: 0o600, Body: []byte("new file")},
	)
	top := testimage.NewLayer(testimage.File{Name: "etc/version", Body: []byte("2\n")})
	a = testimage.New(host, ocispec.ImageConfig{Cmd: []string{"/bin/tool"}}, shared, la)
	b = testimage.New(host, ocispec.ImageConfig{Cmd: []string{"/bin/tool", "--v2"}, Labels: map[string]string{"v": "2"}}, shared, lb, top)
	return a, b, shared
}

func layerDiffIDs(t *testing.T, e *env, img Image) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	for _, c := range img.ChainIDs {
		l, err := e.layers.Get(c)
		if err != nil {
			t.Fatalf("layer %s of image %s: %v", c, img.ID, err)
		}
		out = append(out, l.DiffID)
	}
	return out
}

func TestDeltaCreatePushPullLoad(t *testing.T) {
	for _, format := range []string{delta.FormatNative, delta.FormatBalena} {
		t.Run(format, func(t *testing.T) { testDeltaRoundTrip(t, format) })
	}
}

func testDeltaRoundTrip(t *testing.T, format string) {
	ctx := context.Background()
	build := newEnv(t)
	a, b, _ := deltaPair()
	refA := build.push(t, "app:1", a)
	refB := build.push(t, "app:2", b)
	imgA, err := build.images.Pull(ctx, build.client, refA, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	imgB, err := build.images.Pull(ctx, build.client, refB, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	deltaRef := build.reg.Host + "/app:delta-1-2"
	id, err := build.images.CreateDelta(ctx, refA, refB, DeltaOptions{Tag: deltaRef, Format: format, Progress: func(m Message) { msgs = append(msgs, m.ID+":"+m.Status) }})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(msgs, "|")
	for _, m := range msgs {
		if strings.Contains(m, "size") || strings.Contains(m, "bytes") {
			t.Log(m)
		}
	}
	if !strings.Contains(all, ":Created delta: "+id.String()) || !strings.Contains(all, "Skipping common layer") ||
		!strings.Contains(all, "x improvement") {
		t.Errorf("delta progress: %s", all)
	}
	dimg, err := build.images.Get(deltaRef)
	if err != nil || dimg.ID != id {
		t.Fatalf("delta image by its tag: %v %v", dimg.ID, err)
	}
	info, ok, err := delta.FromLabels(dimg.Config.Config.Labels)
	if !ok || err != nil || info.Base != imgA.ID || info.TargetID != imgB.ID || info.Format != format {
		t.Fatalf("delta labels: %+v %v %v", info, ok, err)
	}
	if err := build.images.Push(ctx, build.client, deltaRef, "", PushOptions{}); err != nil {
		t.Fatal(err)
	}

	// A device with the base: the pull of the delta ends with the target,
	// same ID and layers, named by the delta's name.
	dev := openEnv(t, t.TempDir(), build.reg)
	if _, err := dev.images.Pull(ctx, dev.client, refA, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	msgs = nil
	got, err := dev.images.Pull(ctx, dev.client, deltaRef, PullOptions{Progress: func(m Message) { msgs = append(msgs, m.ID+":"+m.Status) }})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != imgB.ID {
		t.Fatalf("delta pull gave image %s, want the target %s", got.ID, imgB.ID)
	}
	if !bytes.Equal(got.RawConfig, imgB.RawConfig) {
		t.Error("the target's config differs from the original")
	}
	if want, have := layerDiffIDs(t, build, imgB), layerDiffIDs(t, dev, got); strings.Join(digestStrings(want), ",") != strings.Join(digestStrings(have), ",") {
		t.Errorf("target layers %v, want %v", have, want)
	}
	if all := strings.Join(msgs, "|"); !strings.Contains(all, "Applying delta") || !strings.Contains(all, "Downloaded newer image") {
		t.Errorf("delta pull progress: %s", all)
	}
	if byName, err := dev.images.Get(deltaRef); err != nil || byName.ID != imgB.ID {
		t.Errorf("the delta's name resolves to %v (%v), want the target", byName.ID, err)
	}
	// The rebuilt layers' files are the target's.
	top, _ := dev.layers.Get(got.ChainIDs[1])
	if body, err := os.ReadFile(filepath.Join(top.Dir(), "app/added")); err != nil || string(body) != "new file" {
		t.Errorf("app/added in the rebuilt layer: %q %v", body, err)
	}
	// Pulled again: the target is here, nothing to apply.
	msgs = nil
	if _, err := dev.images.Pull(ctx, dev.client, deltaRef, PullOptions{Progress: func(m Message) { msgs = append(msgs, m.Status) }}); err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(msgs, "|"); strings.Contains(all, "Applying") || !strings.Contains(all, "up to date") {
		t.Errorf("second delta pull: %s", all)
	}
	assertTmpEmpty(t, dev)

	// A device without the base: an error naming it, nothing left.
	bare := openEnv(t, t.TempDir(), build.reg)
	_, err = bare.images.Pull(ctx, bare.client, deltaRef, PullOptions{})
	if errdefs.KindOf(err) != errdefs.KindNotFound || !strings.Contains(err.Error(), imgA.ID.String()) {
		t.Errorf("delta pull without its base: %v", err)
	}
	assertNothingLeft(t, bare)

	// docker save of the delta, loaded on a device with the base.
	var archive bytes.Buffer
	if err := build.images.Save(ctx, &archive, []string{deltaRef}); err != nil {
		t.Fatal(err)
	}
	dev2 := openEnv(t, t.TempDir(), build.reg)
	if _, err := dev2.images.Pull(ctx, dev2.client, refA, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dev2.images.Load(ctx, bytes.NewReader(archive.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	if loaded, err := dev2.images.Get(deltaRef); err != nil || loaded.ID != imgB.ID {
		t.Errorf("load of a saved delta: %v %v, want %s", loaded.ID, err, imgB.ID)
	}
	assertTmpEmpty(t, dev2)
}

func digestStrings(ds []digest.Digest) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// balenaDeltaImage builds a delta image by hand: layer i of the target is
// empty when shared, else a "delta" entry holding deltas[i].
func balenaDeltaImage(base, target testimage.Image, deltas map[int][]byte) testimage.Image {
	return deltaImage(map[string]string{delta.LabelBase: base.ConfigDesc.Digest.String(), delta.LabelConfig: string(target.Config)}, target, deltas)
}

func deltaImage(labels map[string]string, target testimage.Image, deltas map[int][]byte) testimage.Image {
	var layers []testimage.Layer
	for i := range target.Layers {
		if d, ok := deltas[i]; ok {
			layers = append(layers, testimage.NewLayer(testimage.File{Name: delta.EntryName, Mode: 0o600, Body: d}))
		} else {
			layers = append(layers, testimage.NewLayer())
		}
	}
	return testimage.New(host, ocispec.ImageConfig{Labels: labels}, layers...)
}

// A delta made by an independent implementation, Debian's rdiff (librsync)
// with balenaEngine's parameters, is applied to exactly the target.
func TestBalenaDeltaFromRdiff(t *testing.T) {
	if _, err := exec.LookPath("rdiff"); err != nil {
		t.Fatal("rdiff not installed (apt-get install rdiff): the test makes its deltas with it")
	}
	ctx := context.Background()
	e := newEnv(t)
	a, b, _ := deltaPair()
	dir := t.TempDir()
	var basis []byte
	for _, l := range a.Layers {
		basis = append(basis, l.Tar...)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rdiff := func(args ...string) {
		if out, err := exec.Command("rdiff", args...).CombinedOutput(); err != nil {
			t.Fatalf("rdiff %v: %v: %s", args, err, out)
		}
	}
	rdiff("signature", "-b", "512", "-S", "32", "-H", "blake2", write("basis", basis), filepath.Join(dir, "sig"))
	deltas := map[int][]byte{}
	for i := 1; i < len(b.Layers); i++ {
		out := filepath.Join(dir, fmt.Sprintf("delta%d", i))
		rdiff("delta", filepath.Join(dir, "sig"), write(fmt.Sprintf("target%d", i), b.Layers[i].Tar), out)
		d, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		deltas[i] = d
	}
	ref := e.push(t, "made-by-rdiff:delta", balenaDeltaImage(a, b, deltas))
	e.push(t, "base:1", a)
	if _, err := e.images.Pull(ctx, e.client, e.reg.Host+"/base:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := e.images.Pull(ctx, e.client, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != b.ConfigDesc.Digest {
		t.Fatalf("applied rdiff delta gave %s, want %s", got.ID, b.ConfigDesc.Digest)
	}
	for i, l := range b.Layers {
		have, _ := e.layers.Get(got.ChainIDs[i])
		if have.DiffID != l.DiffID {
			t.Errorf("layer %d: diffID %s, want %s", i, have.DiffID, l.DiffID)
		}
	}
}

// Hostile or broken deltas fail, leave the base whole and nothing else.
func TestBalenaDeltaHostile(t *testing.T) {
	ctx := context.Background()
	a, b, _ := deltaPair()
	var basisLen int
	for _, l := range a.Layers {
		basisLen += len(l.Tar)
	}
	be32 := func(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
	magic := be32(0x72730236)
	// LITERAL with an 8-byte length.
	literal := func(p []byte) []byte { return append(append([]byte{0x44}, be64(uint64(len(p)))...), p...) }
	cases := map[string][]byte{
		"copy outside the basis": append(append(append([]byte{}, magic...), 0x4f), append(be32(uint32(basisLen-10)), be32(100)...)...), // COPY N4 N4
		"truncated literal":      append(append([]byte{}, magic...), 0x41, 200, 1, 2, 3),
		"bad magic":              []byte("not a delta at all"),
		"wrong content":          append(append(append([]byte{}, magic...), literal(bytes.Repeat([]byte{0}, 1024))...), 0),
		"no end":                 append(append([]byte{}, magic...), literal([]byte("abc"))...),
	}
	for name, d := range cases {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			e := newEnv(t)
			e.push(t, "base:1", a)
			base, err := e.images.Pull(ctx, e.client, e.reg.Host+"/base:1", PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			deltas := map[int][]byte{1: d, 2: d}
			ref := e.push(t, "bad:delta", balenaDeltaImage(a, b, deltas))
			if _, err := e.images.Pull(ctx, e.client, ref, PullOptions{}); err == nil {
				t.Fatal("a broken delta was applied")
			} else {
				t.Logf("%s: %v", name, err)
			}
			all, _ := e.images.List()
			if len(all) != 1 || all[0].ID != base.ID {
				t.Errorf("images after a failed delta pull: %v", all)
			}
			layers, _ := e.layers.List()
			if len(layers) != len(base.ChainIDs) {
				t.Errorf("%d layers after a failed delta pull, want the base's %d", len(layers), len(base.ChainIDs))
			}
			if rep, err := e.images.Check(); err != nil || len(rep.Problems) != 0 {
				t.Errorf("store after a failed delta pull: %v %v", rep.Problems, err)
			}
			assertTmpEmpty(t, e)
		})
	}
}

func be64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[7-i] = byte(v >> (8 * i))
	}
	return b
}

// The cases the delta formats must rebuild exactly: each is a base and a
// target image; both formats are made, loaded on a store holding only the
// base, and must give the target's ID and layers.
func TestDeltaRoundTripCases(t *testing.T) {
	f := func(name string, body []byte) testimage.File { return testimage.File{Name: name, Body: body} }
	d := func(name string) testimage.File { return testimage.File{Name: name, Type: '5'} }
	lib := noise(10, 400_000)
	edit := func(b []byte, at int, s string) []byte {
		out := append([]byte{}, b...)
		copy(out[at:], s)
		return out
	}
	cfg := ocispec.ImageConfig{Cmd: []string{"true"}}
	img := func(layers ...testimage.Layer) testimage.Image { return testimage.New(host, cfg, layers...) }
	base := img(testimage.NewLayer(d("usr/"), d("usr/lib/"), d("usr/lib/python3.11/"),
		f("usr/lib/python3.11/mod.py", bytes.Repeat([]byte("def f(): return 1\n"), 300)),
		f("usr/lib/libx.so.1.2.3", lib), f("etc/conf", []byte("a=1\n")),
		testimage.File{Name: "usr/bin/tool", Mode: 0o755, Body: noise(11, 50_000)},
		f("data/old", []byte("to be deleted")), d("cache/"), f("cache/x", []byte("x"))))
	big := noise(12, 9<<20)
	bigBase := img(testimage.NewLayer(f("big/a", noise(13, 30<<20)), f("big/b", noise(14, 30<<20)), f("big/c", big)))
	cases := map[string][2]testimage.Image{
		"identical": {base, base},
		"relayered identical files": {base, img(testimage.NewLayer(f("usr/lib/libx.so.1.2.3", lib)),
			testimage.NewLayer(f("etc/conf", []byte("a=1\n"))))},
		"small edits, renames, moved and version-numbered directories": {base, img(testimage.NewLayer(d("usr/"), d("usr/lib/"),
			d("usr/lib/python3.12/"),
			f("usr/lib/python3.12/mod.py", bytes.Repeat([]byte("def f(): return 2\n"), 300)),
			f("usr/lib/libx.so.1.2.4", edit(lib, 1000, "patched")), f("etc/conf.renamed", []byte("a=1\n")),
			testimage.File{Name: "usr/local/bin/tool", Mode: 0o755, Body: noise(11, 50_000)}))},
		"links, whiteouts, opaque directories, permissions, new files": {base, img(base.Layers[0], testimage.NewLayer(
			testimage.File{Name: "usr/bin/tool", Mode: 0o700, Body: noise(11, 50_000)},
			testimage.File{Name: "usr/bin/tool2", Type: '1', Linkname: "usr/bin/tool"},
			testimage.File{Name: "usr/bin/t", Type: '2', Linkname: "tool"},
			f("data/.wh.old", nil), d("cache/"), f("cache/.wh..wh..opq", nil), f("cache/y", []byte("y")),
			f("new/file", noise(15, 3000))))},
		"a layer bigger than 64 MiB": {bigBase, img(testimage.NewLayer(f("big/a", noise(13, 30<<20)), f("big/b2", noise(14, 30<<20)),
			f("big/c", edit(big, 5<<20, "an edit in the middle of a 9 MiB file"))))},
	}
	ctx := context.Background()
	for name, c := range cases {
		for _, format := range []string{delta.FormatNative, delta.FormatBalena} {
			t.Run(strings.ReplaceAll(name, " ", "_")+"/"+format, func(t *testing.T) {
				build := openEnv(t, t.TempDir(), nil)
				dev := openEnv(t, t.TempDir(), nil)
				for _, e := range []*env{build, dev} {
					for _, im := range c[:1+btoi(e == build)] {
						if err := e.images.Load(ctx, bytes.NewReader(archiveOf(t, im, "")), nil); err != nil {
							t.Fatal(err)
						}
					}
				}
				a, b := c[0].ConfigDesc.Digest.String(), c[1].ConfigDesc.Digest.String()
				var msgs []string
				id, err := build.images.CreateDelta(ctx, a, b, DeltaOptions{Tag: "delta:1", Format: format,
					Progress: func(m Message) { msgs = append(msgs, m.Status) }})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if strings.Contains(m, "Plain pull") || strings.Contains(m, "Target bytes") {
						t.Log(m)
					}
				}
				var archive bytes.Buffer
				if err := build.images.Save(ctx, &archive, []string{id.String()}); err != nil {
					t.Fatal(err)
				}
				if err := dev.images.Load(ctx, &archive, nil); err != nil {
					t.Fatal(err)
				}
				got, err := dev.images.Get(b)
				if err != nil {
					t.Fatalf("target after loading the delta: %v", err)
				}
				want, _ := build.images.Get(b)
				if strings.Join(digestStrings(layerDiffIDs(t, dev, got)), ",") != strings.Join(digestStrings(layerDiffIDs(t, build, want)), ",") {
					t.Errorf("rebuilt layers differ")
				}
				if rep, err := dev.images.Check(); err != nil || len(rep.Problems) != 0 {
					t.Errorf("store after the delta: %v %v", rep.Problems, err)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// archiveOf is a docker-save archive of img (legacy layout), tagged tag
// unless "".
func archiveOf(t *testing.T, img testimage.Image, tag string) []byte {
	t.Helper()
	am := archiveManifest{Config: img.ConfigDesc.Digest.Encoded() + ".json"}
	if tag != "" {
		am.RepoTags = []string{tag}
	}
	files := []tarFile{{name: am.Config, body: img.Config}}
	for i, l := range img.Layers {
		p := fmt.Sprintf("%d/layer.tar", i)
		am.Layers = append(am.Layers, p)
		files = append(files, tarFile{name: p, body: l.Tar})
	}
	mj, err := json.Marshal([]archiveManifest{am})
	if err != nil {
		t.Fatal(err)
	}
	return makeArchive(append(files, tarFile{name: "manifest.json", body: mj})...)
}

// A native delta declaring more than the disk holds is refused before it
// writes; one of another version is refused by name.
func TestNativeDeltaRefused(t *testing.T) {
	ctx := context.Background()
	a, b, _ := deltaPair()
	e := newEnv(t)
	e.push(t, "base:1", a)
	if _, err := e.images.Pull(ctx, e.client, e.reg.Host+"/base:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := func(version string) map[string]string {
		return map[string]string{delta.LabelNativeBase: a.ConfigDesc.Digest.String(), delta.LabelNativeConfig: string(b.Config),
			delta.LabelNativeVersion: version}
	}
	bomb := append([]byte(delta.Magic), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f) // 2^55 bytes
	ref := e.push(t, "bomb:delta", deltaImage(labels("1"), b, map[int][]byte{1: bomb, 2: bomb}))
	if _, err := e.images.Pull(ctx, e.client, ref, PullOptions{}); err == nil || !strings.Contains(err.Error(), "free in the data root") {
		t.Errorf("pull of a delta declaring 2^55 bytes: %v", err)
	}
	ref = e.push(t, "v2:delta", deltaImage(labels("2"), b, map[int][]byte{1: bomb, 2: bomb}))
	if _, err := e.images.Pull(ctx, e.client, ref, PullOptions{}); errdefs.KindOf(err) != errdefs.KindInvalidParameter || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("pull of a delta of format version 2: %v", err)
	}
	if all, _ := e.images.List(); len(all) != 1 {
		t.Errorf("images after refused deltas: %d", len(all))
	}
	assertTmpEmpty(t, e)
}

// Docker's words for a missing untagged name and for the last name of an
// image a container uses; a save by ID carries no tag.
func TestDockerWordingTagRmiSave(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, t.TempDir(), nil)
	a, _, _ := deltaPair()
	if err := e.images.Load(ctx, bytes.NewReader(archiveOf(t, a, "app:1")), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.images.Tag("nothing", "x:1"); err == nil || err.Error() != "No such image: nothing:latest" {
		t.Errorf("tag of a missing name: %v", err)
	}
	e.images.InUse = func(id string) string { return "0123456789abcdef0123" }
	_, err := e.images.Delete("app:1", false, true)
	want := `conflict: unable to remove repository reference "app:1" (must force) - container 0123456789ab is using its referenced image ` + shortID(a.ConfigDesc.Digest)
	if err == nil || err.Error() != want {
		t.Errorf("rmi of an image in use: %v, want %s", err, want)
	}
	var archive bytes.Buffer
	if err := e.images.Save(ctx, &archive, []string{a.ConfigDesc.Digest.String()}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(archive.String(), `"RepoTags":["sha256`) {
		t.Error("a save by ID wrote the ID as a tag")
	}
}
