package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	bolt "go.etcd.io/bbolt"
)

// Check passes a store of pulled images sharing a layer, and reports a
// damaged layer (under each image using it), a dangling tag and a layer
// no image uses.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var refs []string
	for _, m := range []string{"one", "two"} {
		refs = append(refs, e.push(t, "check/"+m+":latest", twoLayers(t, m)))
	}
	var imgs []Image
	for _, r := range refs {
		img, err := e.images.Pull(ctx, e.client, r, PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	rep, err := e.images.Check()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || len(rep.Images) != 2 || rep.Images[0].Layers != 2 {
		t.Fatalf("Check of a clean store = %+v", rep)
	}

	// Damage the shared base layer: both images are reported, neither whole.
	base, err := e.images.Layer(imgs[0].ChainIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base.Dir(), "base"), []byte("shared base layeR"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A tag naming nothing, and a layer nothing uses.
	if err := e.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTags).Put([]byte("docker.io/library/ghost:latest"), []byte(imgs[0].ID+"0"))
	}); err != nil {
		t.Fatal(err)
	}
	orphan := testimage.NewLayer(testimage.File{Name: "orphan", Body: []byte("o")})
	in, err := e.layers.Ingest("", orphan.DiffID)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Apply(ctx, strings.NewReader(string(orphan.Blob)), orphan.Digest(), int64(len(orphan.Blob))); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Commit(); err != nil {
		t.Fatal(err)
	}
	rep, err = e.images.Check()
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Problems, "\n")
	if len(rep.Images) != 0 || len(rep.Problems) != 4 ||
		strings.Count(all, "integrity") != 2 || !strings.Contains(all, "ghost") || !strings.Contains(all, "no image uses it") {
		t.Fatalf("Check of a damaged store = %+v", rep)
	}
}
