package treepack

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/swaprace"
)

// A tree whose directory w/d is swapped with a symlink w/l to a directory
// outside it in a loop: packing it never reads outside.
func TestTreeAgainstSwaps(t *testing.T) {
	const rounds = 1000
	root, _ := swaprace.Start(t)
	secret := swaprace.Secret

	ctx := context.Background()
	for i := range rounds {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := Tree(ctx, tw, root, ""); err != nil {
			continue // an entry gone between the listing and its open
		}
		tw.Close()
		tr := tar.NewReader(&buf)
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			if b, _ := io.ReadAll(tr); string(b) == secret {
				t.Fatalf("pack %d read %s from outside the tree", i, hdr.Name)
			}
		}
	}
}
