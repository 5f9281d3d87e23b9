package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
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
// outside it in a loop: unpacking into it never writes outside.
func TestUnpackAgainstSwaps(t *testing.T) {
	const rounds = 1000
	root, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "F"), []byte("outside the tree\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "w/d"), 0o755)
	os.WriteFile(filepath.Join(root, "w/d/F"), []byte("inside\n"), 0o644)
	os.Symlink(outside, filepath.Join(root, "w/l"))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	swapLoop(t, filepath.Join(root, "w/d"), filepath.Join(root, "w/l"), stop, &wg)
	defer func() { close(stop); wg.Wait() }()

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
		if UnpackAt(ctx, &buf, rootDir) == nil {
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
