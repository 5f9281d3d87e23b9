package image

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

type env struct {
	root   string
	db     *bolt.DB
	layers *layer.Store
	images *Store
	reg    *testregistry.Registry
	client *registry.Client
}

func openEnv(t testing.TB, root string, reg *testregistry.Registry) *env {
	t.Helper()
	db, err := bolt.Open(filepath.Join(root, "engine.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ls, err := layer.Open(filepath.Join(root, "layers"), db, layer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	is, err := Open(db, ls, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry.New(registry.Options{MaxAttempts: 2, BackoffBase: time.Millisecond, StallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &env{root: root, db: db, layers: ls, images: is, reg: reg, client: c}
}

func readDir(p string) ([]os.DirEntry, error) { return os.ReadDir(p) }

func newEnv(t *testing.T) *env {
	return openEnv(t, t.TempDir(), testregistry.Start(t))
}

var host = ocispec.Platform{OS: "linux", Architecture: platforms.DefaultSpec().Architecture, Variant: platforms.DefaultSpec().Variant}

func (e *env) push(t *testing.T, name string, imgs ...testimage.Image) string {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(e.reg.Host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	tag := "latest"
	if nt, ok := n.(reference.Tagged); ok {
		tag = nt.Tag()
	}
	if err := testimage.Push(context.Background(), e.client.Repository(reference.TrimNamed(n), nil), tag, imgs...); err != nil {
		t.Fatal(err)
	}
	return e.reg.Host + "/" + name
}

func twoLayers(t *testing.T, marker string) testimage.Image {
	base := testimage.NewLayer(testimage.File{Name: "base", Body: []byte("shared base layer")})
	top := testimage.NewLayer(testimage.File{Name: "marker", Body: []byte(marker)})
	return testimage.New(host, ocispec.ImageConfig{Cmd: []string{"sh"}}, base, top)
}

func TestPullListGetTagDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bb, err := testimage.Busybox(host, "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	ref := e.push(t, "library/busybox:1.35", bb)

	var mu sync.Mutex
	var msgs []Message
	img, err := e.images.Pull(ctx, e.client, ref, PullOptions{Progress: func(m Message) {
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != bb.ConfigDesc.Digest || len(img.ChainIDs) != 1 || len(img.RepoTags) != 1 || img.RepoTags[0] != ref {
		t.Errorf("pulled %+v", img)
	}
	wantDigest := e.reg.Host + "/library/busybox@" + bb.ManifestDesc.Digest.String()
	if len(img.RepoDigests) != 1 || img.RepoDigests[0] != wantDigest {
		t.Errorf("repo digests %v, want %s", img.RepoDigests, wantDigest)
	}
	stream := ""
	for _, m := range msgs {
		stream += m.Status + "|"
	}
	for _, want := range []string{"Pulling from library/busybox", "Pulling fs layer", "Downloading", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(stream, want) {
			t.Errorf("progress lacks %q: %s", want, stream)
		}
	}
	// balenaEngine's "Total" line, no status, ending at the layers' size.
	var last *Message
	for i, m := range msgs {
		if m.ID == "Total" {
			if m.Status != "" || m.Detail == nil {
				t.Errorf("Total line %+v", m)
			}
			last = &msgs[i]
		}
	}
	if last == nil || last.Detail.Current != last.Detail.Total || last.Detail.Total != int64(len(bb.Layers[0].Blob)) {
		t.Errorf("last Total line %+v, want %d bytes", last, len(bb.Layers[0].Blob))
	}
	// The layer really holds busybox, and rebuilds to its diffID.
	l, err := e.layers.Get(img.ChainIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(l.Dir(), "bin/busybox")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v %v", fi, err)
	}

	// Again: up to date, nothing fetched.
	msgs = nil
	if _, err := e.images.Pull(ctx, e.client, ref, PullOptions{Progress: func(m Message) { msgs = append(msgs, m) }}); err != nil {
		t.Fatal(err)
	}
	if last := msgs[len(msgs)-1].Status; last != "Status: Image is up to date for "+ref {
		t.Errorf("second pull ended with %q", last)
	}
	// The same image under a new tag: nothing fetched, but the tag is new
	// (Docker says so).
	ref2 := e.push(t, "library/busybox:again", bb)
	msgs = nil
	if _, err := e.images.Pull(ctx, e.client, ref2, PullOptions{Progress: func(m Message) { msgs = append(msgs, m) }}); err != nil {
		t.Fatal(err)
	}
	if last := msgs[len(msgs)-1].Status; last != "Status: Downloaded newer image for "+ref2 {
		t.Errorf("pull of a new tag of a present image ended with %q", last)
	}

	// Found by tag, ID, ID prefix with and without the algorithm, digest.
	for _, q := range []string{ref, img.ID.String(), img.ID.Encoded()[:12], "sha256:" + img.ID.Encoded()[:5], wantDigest} {
		if got, err := e.images.Get(q); err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", q, got.ID, err)
		}
	}
	if _, err := e.images.Get("nothing:here"); errdefs.KindOf(err) != errdefs.KindNotFound || err.Error() != "No such image: nothing:here" {
		t.Errorf("Get(unknown) = %v", err)
	}

	// Tag, then delete by name: untag only while another name remains.
	if err := e.images.Tag(ref, "mine/bb:v1"); err != nil {
		t.Fatal(err)
	}
	if err := e.images.Tag(ref, "mine/bb@sha256:"+strings.Repeat("a", 64)); err == nil {
		t.Error("tag with a digest accepted")
	}
	res, err := e.images.Delete("mine/bb:v1", false, true)
	if err != nil || len(res) != 1 || res[0].Untagged != "mine/bb:v1" {
		t.Errorf("delete tag = %+v, %v", res, err)
	}
	// Another repository's tag: deleting by ID needs force.
	e.images.Tag(ref, "other/bb:v2")
	if _, err := e.images.Delete(img.ID.Encoded()[:12], false, true); errdefs.KindOf(err) != errdefs.KindConflict ||
		!strings.Contains(err.Error(), "image is referenced in multiple repositories") {
		t.Errorf("delete by ID without force: %v", err)
	}
	res, err = e.images.Delete(img.ID.String(), true, true)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, r := range res {
		if r.Deleted != "" {
			deleted++
		}
	}
	if deleted != 2 { // the image and its one layer
		t.Errorf("forced delete = %+v", res)
	}
	if all, _ := e.images.List(); len(all) != 0 {
		t.Errorf("images left: %v", all)
	}
	if all, _ := e.layers.List(); len(all) != 0 {
		t.Errorf("layers left: %v", all)
	}
}

func TestSharedLayersAndGC(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.push(t, "app:a", twoLayers(t, "a"))
	b := e.push(t, "app:b", twoLayers(t, "b"))
	if _, err := e.images.Pull(ctx, e.client, a, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	if _, err := e.images.Pull(ctx, e.client, b, PullOptions{Progress: func(m Message) { msgs = append(msgs, m) }}); err != nil {
		t.Fatal(err)
	}
	exists := 0
	for _, m := range msgs {
		if m.Status == "Already exists" {
			exists++
		}
	}
	if exists != 1 {
		t.Errorf("%d layers already existed, want the shared base", exists)
	}
	if all, _ := e.layers.List(); len(all) != 3 {
		t.Fatalf("%d layers, want 3", len(all))
	}
	if _, err := e.images.Delete(a, false, true); err != nil {
		t.Fatal(err)
	}
	if all, _ := e.layers.List(); len(all) != 2 {
		t.Errorf("%d layers after deleting a, want 2 (b's)", len(all))
	}
	img, err := e.images.Get(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range img.ChainIDs {
		if _, err := e.layers.Get(c); err != nil {
			t.Errorf("b lost layer %s: %v", c, err)
		}
	}
}

// corruptBlob rewrites a blob in the registry's storage, which serves it
// without checking: a registry handing out wrong bytes.
func corruptBlob(t *testing.T, reg *testregistry.Registry, d digest.Digest, mutate func([]byte) []byte) {
	p := filepath.Join(reg.Dir, "data/docker/registry/v2/blobs/sha256", d.Encoded()[:2], d.Encoded(), "data")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, mutate(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertNothingLeft(t *testing.T, e *env) {
	t.Helper()
	if all, _ := e.images.List(); len(all) != 0 {
		t.Errorf("images visible after a failed pull: %v", all)
	}
	if all, _ := e.layers.List(); len(all) != 0 {
		t.Errorf("layers visible after a failed pull: %v", all)
	}
	if tmp, _ := os.ReadDir(filepath.Join(e.root, "layers", "tmp")); len(tmp) != 0 {
		t.Errorf("ingestions left behind: %v", tmp)
	}
}

func TestFailedPullsLeaveNothing(t *testing.T) {
	ctx := context.Background()
	t.Run("wrong layer bytes", func(t *testing.T) {
		e := newEnv(t)
		img := twoLayers(t, "x")
		ref := e.push(t, "bad:layer", img)
		corruptBlob(t, e.reg, img.Layers[1].Digest(), func(b []byte) []byte {
			return testimage.NewLayer(testimage.File{Name: "marker", Body: []byte("tampered")}).Blob
		})
		_, err := e.images.Pull(ctx, e.client, ref, PullOptions{})
		if err == nil || !strings.Contains(err.Error(), img.Layers[1].Digest().String()) {
			t.Errorf("err = %v", err)
		}
		assertNothingLeft(t, e)
	})
	t.Run("same size, wrong bytes", func(t *testing.T) {
		e := newEnv(t)
		img := twoLayers(t, "z")
		ref := e.push(t, "bad:flip", img)
		corruptBlob(t, e.reg, img.Layers[1].Digest(), func(b []byte) []byte {
			b[len(b)-9] ^= 0xff // inside the gzip trailer's CRC: still a valid-looking stream
			return b
		})
		_, err := e.images.Pull(ctx, e.client, ref, PullOptions{})
		if err == nil {
			t.Error("corrupted blob accepted")
		}
		assertNothingLeft(t, e)
	})
	t.Run("wrong config bytes", func(t *testing.T) {
		e := newEnv(t)
		img := twoLayers(t, "y")
		ref := e.push(t, "bad:config", img)
		corruptBlob(t, e.reg, img.ConfigDesc.Digest, func(b []byte) []byte { return append(b[:len(b)-1], ' ', '}') })
		_, err := e.images.Pull(ctx, e.client, ref, PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "longer than its declared size") {
			t.Errorf("err = %v", err)
		}
		assertNothingLeft(t, e)
	})
	t.Run("wrong config bytes, same size", func(t *testing.T) {
		e := newEnv(t)
		img := twoLayers(t, "w")
		ref := e.push(t, "bad:config2", img)
		corruptBlob(t, e.reg, img.ConfigDesc.Digest, func(b []byte) []byte { return append(b[:len(b)-1], ' ') })
		_, err := e.images.Pull(ctx, e.client, ref, PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
			t.Errorf("err = %v", err)
		}
		assertNothingLeft(t, e)
	})
	t.Run("hostile layer", func(t *testing.T) {
		e := newEnv(t)
		evil := testimage.NewLayer(testimage.File{Name: "../../etc/evil", Body: []byte("x")})
		ref := e.push(t, "bad:hostile", testimage.New(host, ocispec.ImageConfig{}, evil))
		_, err := e.images.Pull(ctx, e.client, ref, PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "path traversal") {
			t.Errorf("err = %v", err)
		}
		assertNothingLeft(t, e)
	})
	t.Run("unknown", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.images.Pull(ctx, e.client, e.reg.Host+"/nothing:here", PullOptions{})
		if errdefs.KindOf(err) != errdefs.KindNotFound {
			t.Errorf("err = %v", err)
		}
		assertNothingLeft(t, e)
	})
	t.Run("wrong platform", func(t *testing.T) {
		e := newEnv(t)
		ref := e.push(t, "plat:one", twoLayers(t, "p"))
		_, err := e.images.Pull(ctx, e.client, ref, PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}})
		if err == nil || !strings.Contains(err.Error(), "does not match the specified platform") {
			t.Errorf("err = %v", err)
		}
		assertNothingLeft(t, e)
	})
	t.Run("cancelled", func(t *testing.T) {
		e := newEnv(t)
		ref := e.push(t, "slow:one", twoLayers(t, "c"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.images.Pull(cctx, e.client, ref, PullOptions{}); err == nil {
			t.Error("cancelled pull succeeded")
		}
		assertNothingLeft(t, e)
	})
}

func TestDiskFull(t *testing.T) {
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=3m"); err != nil {
		t.Fatalf("mount a small tmpfs (the tests run as root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	reg := testregistry.Start(t)
	e := openEnv(t, root, reg)
	big := make([]byte, 6<<20)
	for i := range big {
		big[i] = byte(i * 13)
	}
	ref := e.push(t, "huge:one", testimage.New(host, ocispec.ImageConfig{}, testimage.NewLayer(testimage.File{Name: "big", Body: big})))
	_, err := e.images.Pull(context.Background(), e.client, ref, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("err = %v, want no space left on device", err)
	}
	assertNothingLeft(t, e)
	// The store still works once there is room.
	small := e.push(t, "small:one", twoLayers(t, "s"))
	if _, err := e.images.Pull(context.Background(), e.client, small, PullOptions{}); err != nil {
		t.Errorf("pull after a full disk: %v", err)
	}
}

func TestOpenDropsImagesWithMissingLayers(t *testing.T) {
	root := t.TempDir()
	reg := testregistry.Start(t)
	e := openEnv(t, root, reg)
	ref := e.push(t, "keep:one", twoLayers(t, "k"))
	img, err := e.images.Pull(context.Background(), e.client, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a store where a layer vanished.
	if err := e.layers.Remove(img.ChainIDs[1]); err != nil {
		t.Fatal(err)
	}
	e.db.Close()
	e2 := openEnv(t, root, reg)
	if all, _ := e2.images.List(); len(all) != 0 {
		t.Errorf("image with a missing layer kept: %v", all)
	}
}

func TestPush(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src := e.push(t, "origin/app:1", twoLayers(t, "p"))
	img, err := e.images.Pull(ctx, e.client, src, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	prog := func(m Message) { msgs = append(msgs, m) }
	status := func() string {
		var b strings.Builder
		for _, m := range msgs {
			b.WriteString(m.ID + ":" + m.Status + "|")
		}
		return b.String()
	}
	// Same registry, another repository: the layers are mounted.
	if err := e.images.Tag(src, e.reg.Host+"/copy/app:2"); err != nil {
		t.Fatal(err)
	}
	if err := e.images.Push(ctx, e.client, e.reg.Host+"/copy/app", "2", PushOptions{Progress: prog}); err != nil {
		t.Fatal(err)
	}
	if st := status(); strings.Count(st, "Mounted from origin/app") != 2 || !strings.Contains(st, ":2: digest: sha256:") {
		t.Errorf("push to another repository: %s", st)
	}
	// Pushed again: everything exists.
	msgs = nil
	if err := e.images.Push(ctx, e.client, e.reg.Host+"/copy/app:2", "", PushOptions{Progress: prog}); err != nil {
		t.Fatal(err)
	}
	if st := status(); strings.Count(st, "Layer already exists") != 2 {
		t.Errorf("second push: %s", st)
	}
	// A registry that has nothing: the layers are rebuilt, gzipped and
	// streamed; a pull from there gives the same image.
	other := testregistry.Start(t)
	if err := e.images.Tag(src, other.Host+"/fresh/app:3"); err != nil {
		t.Fatal(err)
	}
	msgs = nil
	if err := e.images.Push(ctx, e.client, other.Host+"/fresh/app", "", PushOptions{Progress: prog}); err != nil {
		t.Fatal(err)
	}
	if st := status(); strings.Count(st, ":Pushed|") != 2 || !strings.Contains(st, "Pushing") {
		t.Errorf("push to an empty registry: %s", st)
	}
	got, _ := e.images.Get(img.ID.String())
	if len(got.RepoDigests) != 3 {
		t.Errorf("repo digests after pushes: %v", got.RepoDigests)
	}
	e2 := openEnv(t, t.TempDir(), other)
	pulled, err := e2.images.Pull(ctx, e2.client, other.Host+"/fresh/app:3", PullOptions{})
	if err != nil || pulled.ID != img.ID {
		t.Errorf("pull of the pushed image: %v %v; want %s", pulled.ID, err, img.ID)
	}
	// Errors.
	if err := e.images.Push(ctx, e.client, e.reg.Host+"/nothing/here", "", PushOptions{}); errdefs.KindOf(err) != errdefs.KindNotFound ||
		!strings.Contains(err.Error(), "An image does not exist locally with the tag") {
		t.Errorf("push of an unknown image: %v", err)
	}
}
