package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/swaprace"
)

// A tree whose directory w/d is swapped with a symlink w/l to a directory
// outside it in a loop: unpacking into it never writes outside.
func TestUnpackAgainstSwaps(t *testing.T) {
	const rounds = 1000
	root, outside := swaprace.Start(t)

	ctx := context.Background()
	rootDir, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootDir.Close()
	written := 0
	for i := range rounds {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		name := "w/d/put-" + strconv.Itoa(i)
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
		tw.Close()
		if UnpackAt(ctx, &buf, rootDir, UnpackOptions{}) == nil {
			written++
		}
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Fatalf("unpacking wrote %d entries outside the tree", len(entries)-1)
	}
	if written == 0 {
		t.Error("no extraction succeeded")
	}
}
