// Package swaprace sets up the CVE-2018-15664 race for tests: a tree
// whose directory w/d is exchanged, in a loop, with a symlink w/l to a
// directory outside the tree, as a hostile container would do while the
// engine copies into or out of it.
package swaprace

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Secret is the content of the file F outside the tree; w/d/F inside
// holds "inside\n".
const Secret = "outside the tree\n"

// Start makes the tree and the outside directory and swaps w/d and w/l
// until the test ends. It returns the tree's root and the outside
// directory.
func Start(t *testing.T) (root, outside string) {
	t.Helper()
	root, outside = t.TempDir(), t.TempDir()
	for _, err := range []error{
		os.WriteFile(filepath.Join(outside, "F"), []byte(Secret), 0o644),
		os.MkdirAll(filepath.Join(root, "w/d"), 0o755),
		os.WriteFile(filepath.Join(root, "w/d/F"), []byte("inside\n"), 0o644),
		os.Symlink(outside, filepath.Join(root, "w/l")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := filepath.Join(root, "w/d"), filepath.Join(root, "w/l")
	stop := make(chan struct{})
	var wg sync.WaitGroup
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
	t.Cleanup(func() { close(stop); wg.Wait() })
	return root, outside
}
