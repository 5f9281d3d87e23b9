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

// etcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf.
func (m *Manager) etcFiles(c *Container, hostname string) (map[string]string, error) {
	dir := m.dir(c.ID)
	files := map[string]string{}
	write := func(name string, b []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		files["/etc/"+name] = p
		return nil
	}
	if !c.HostConfig.NetworkMode.IsHost() {
		if err := write("hostname", []byte(hostname+"\n")); err != nil {
			return nil, err
		}
		hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		for _, h := range c.HostConfig.ExtraHosts {
			if name, ip, ok := strings.Cut(h, ":"); ok {
				hosts += ip + "\t" + name + "\n"
			}
		}
		if err := write("hosts", []byte(hosts)); err != nil {
			return nil, err
		}
	} else if b, err := os.ReadFile("/etc/hosts"); err == nil {
		if err := write("hosts", b); err != nil {
			return nil, err
		}
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	if err := write("resolv.conf", resolv); err != nil {
		return nil, err
	}
	return files, nil
}
