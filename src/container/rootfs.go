package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// lowerDirs are the directories of the container's image layers, top first.
func (m *Manager) lowerDirs(c *Container) ([]string, error) {
	img, err := m.images.Get(c.Image.String())
	if err != nil {
		return nil, fmt.Errorf("image of container %s: %w", c.ID, err)
	}
	var lower []string
	for i := len(img.ChainIDs) - 1; i >= 0; i-- {
		l, err := m.images.Layer(img.ChainIDs[i])
		if err != nil {
			return nil, err
		}
		lower = append(lower, l.Dir())
	}
	return lower, nil
}

// mountRootfs mounts the container's overlay: the image's layers, top
// first, under the container's own upper directory.
func (m *Manager) mountRootfs(c *Container) (string, error) {
	lower, err := m.lowerDirs(c)
	if err != nil {
		return "", err
	}
	dir := m.dir(c.ID)
	target := filepath.Join(dir, "rootfs")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if len(opts) > os.Getpagesize()-1 {
		return "", fmt.Errorf("image %s has too many layers for one overlay mount (%d)", c.Image, len(lower))
	}
	unix.Unmount(target, unix.MNT_DETACH) // a previous run's, if any
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount the container's root filesystem: %w", err)
	}
	return target, nil
}
