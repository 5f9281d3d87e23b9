// Package diskusage measures how much a directory tree holds, as Docker's
// "system df" counts it: the apparent size of regular files and symlinks,
// each hard-linked inode once.
package diskusage

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Dir returns the bytes under root. A tree that changes while it is walked
// (a running container writing) is measured as far as it can be: entries
// that vanish are skipped, not errors. A missing root holds nothing.
func Dir(root string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
}
