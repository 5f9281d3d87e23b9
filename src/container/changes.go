package container

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/balena-os/balena-engine/src/diskusage"
	containertypes "github.com/moby/moby/api/types/container"
)

// runtimePaths are the mountpoints the runtime creates in a container's
// upper directory. Docker keeps them in an "init" layer below the
// container's, so docker diff never shows them; neither does Changes.
var runtimePaths = []string{"/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", InitDest}

func isRuntimePath(p string) bool {
	for _, r := range runtimePaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// Changes lists what the container changed in its filesystem (docker
// diff), read from its overlay's upper directory: whiteouts are deletions,
// entries the image has are modifications, others additions. A directory
// of the image is listed as modified when something below it changed.
func (m *Manager) Changes(ref string) ([]containertypes.FilesystemChange, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return nil, err
	}
	lower, err := m.lowerDirs(c)
	if err != nil {
		return nil, err
	}
	upper := filepath.Join(m.dir(c.ID), "upper")
	kinds := map[string]containertypes.ChangeType{}
	err = filepath.WalkDir(upper, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, hp)
		if rel == "." {
			return nil
		}
		p := "/" + rel
		if isRuntimePath(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case isWhiteout(fi):
			kinds[p] = containertypes.ChangeDelete
		case !inLower(lower, rel):
			kinds[p] = containertypes.ChangeAdd
			if d.IsDir() {
				return nil // and so is all below it, which the walk goes on to list
			}
		case !d.IsDir():
			kinds[p] = containertypes.ChangeModify
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// The image's directories on the way to a change are modified.
	for p := range kinds {
		for dir := filepath.Dir(p); dir != "/"; dir = filepath.Dir(dir) {
			if _, ok := kinds[dir]; !ok {
				kinds[dir] = containertypes.ChangeModify
			}
		}
	}
	out := make([]containertypes.FilesystemChange, 0, len(kinds))
	for p, k := range kinds {
		out = append(out, containertypes.FilesystemChange{Path: p, Kind: k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// isWhiteout says whether an upper entry is overlayfs's mark of a deletion:
// a character device 0/0.
func isWhiteout(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}

// inLower says whether the image has the path: the first layer, top down,
// that has it or deletes it decides.
func inLower(lower []string, rel string) bool {
	for _, l := range lower {
		fi, err := os.Lstat(filepath.Join(l, rel))
		if err == nil {
			return !isWhiteout(fi)
		}
	}
	return false
}

// SizeRw is how much a container has written: the size of its overlay's
// upper directory (Docker's SizeRw), without the runtime's mountpoints.
func (m *Manager) SizeRw(id string) int64 {
	n, _ := diskusage.Dir(filepath.Join(m.dir(id), "upper"))
	return n
}
