package treepack

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// swapLoop exchanges a and b with renameat2(RENAME_EXCHANGE) until stop
// is closed, as a hostile container would during docker cp.
func swapLoop(t *testing.T, a, b string, stop chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("renameat2: %v", err)
				return
			}
		}
	}()
}

// A tree whose directory w/d is swapped with a symlink w/l to a directory
// outside it in a loop: packing it never reads outside.
func TestTreeAgainstSwaps(t *testing.T) {
	const rounds = 1000
	root, outside := t.TempDir(), t.TempDir()
	secret := "outside the tree\n"
	os.WriteFile(filepath.Join(outside, "F"), []byte(secret), 0o644)
	os.MkdirAll(filepath.Join(root, "w/d"), 0o755)
	os.WriteFile(filepath.Join(root, "w/d/F"), []byte("inside\n"), 0o644)
	os.Symlink(outside, filepath.Join(root, "w/l"))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	swapLoop(t, filepath.Join(root, "w/d"), filepath.Join(root, "w/l"), stop, &wg)
	defer func() { close(stop); wg.Wait() }()

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
