package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/layer"
	securejoin "github.com/cyphar/filepath-securejoin"
	containertypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// rootFor returns the directory that is the container's "/" for docker cp:
// a running container's own root (its mounts and volumes included), or
// the stopped container's filesystem, mounted for the call (release
// unmounts it).
func (m *Manager) rootFor(c *Container) (root string, release func(), err error) {
	if c.State.Status == StatusRunning || c.State.Status == StatusPaused {
		return "/proc/" + strconv.Itoa(c.State.Pid) + "/root", func() {}, nil
	}
	rootfs, running, release, err := m.mountStopped(c.ID)
	if err != nil {
		return "", nil, err
	}
	if running != nil { // it started meanwhile
		return "/proc/" + strconv.Itoa(running.State.Pid) + "/root", func() {}, nil
	}
	return rootfs, release, nil
}

// mountStopped mounts a stopped container's overlay for a call, holding its
// filesystem lock until release, so that a start waits rather than mounting
// the same upper directory twice. A container found running by then is
// returned instead, with nothing mounted or held.
func (m *Manager) mountStopped(id string) (rootfs string, running *Container, release func(), err error) {
	unlock := m.fsLock(id)
	c, err := m.records.get(id)
	if err != nil {
		unlock()
		return "", nil, nil, err
	}
	if c.State.Status == StatusRunning || c.State.Status == StatusPaused {
		unlock()
		return "", c, nil, nil
	}
	rootfs, err = m.mountRootfs(c)
	if err != nil {
		unlock()
		return "", nil, nil, err
	}
	return rootfs, nil, func() { unix.Unmount(rootfs, unix.MNT_DETACH); unlock() }, nil
}

// pathIn returns the host path of a path in the container, with rootFor's
// release.
func (m *Manager) pathIn(c *Container, p string) (host string, release func(), err error) {
	root, release, err := m.rootFor(c)
	if err != nil {
		return "", nil, err
	}
	if host, err = resolveIn(root, p); err != nil {
		release()
		return "", nil, err
	}
	return host, release, nil
}

// resolveIn returns the host path of a container path as Docker resolves
// it for docker cp: the directories leading to it resolved inside the
// container's root (their symlinks followed there, never out of it), the
// last element itself not followed, so that a symlink is copied as a
// symlink, unless the path ends in "/" or "/." (then it names the
// directory, through a symlink or not).
func resolveIn(root, p string) (string, error) {
	clean := path.Clean("/" + p)
	if clean == "/" || strings.HasSuffix(p, "/") || p == "." || strings.HasSuffix(p, "/.") {
		return securejoin.SecureJoin(root, clean)
	}
	dir, base := path.Split(clean)
	rdir, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(rdir, base), nil
}

// archiveName is the name the root of docker cp's archive of p takes:
// the path's last element, or "." for "DIR/." (which copies what is in
// DIR rather than DIR itself).
func archiveName(p string) string {
	if p == "." || strings.HasSuffix(p, "/.") {
		return "."
	}
	return path.Base(path.Clean("/" + p))
}

// StatPath describes a path in a container (docker cp's HEAD).
func (m *Manager) StatPath(ref, p string) (containertypes.PathStat, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return containertypes.PathStat{}, err
	}
	host, release, err := m.pathIn(c, p)
	if err != nil {
		return containertypes.PathStat{}, err
	}
	defer release()
	return statOf(host, p)
}

func statOf(host, p string) (containertypes.PathStat, error) {
	fi, err := os.Lstat(host)
	if errors.Is(err, os.ErrNotExist) {
		return containertypes.PathStat{}, errdefs.NotFound(fmt.Errorf("Could not find the file %s in container", p)) //lint:ignore ST1005 Docker's wording
	}
	if err != nil {
		return containertypes.PathStat{}, err
	}
	st := containertypes.PathStat{Name: filepath.Base(p), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSymlink != 0 {
		st.LinkTarget, _ = os.Readlink(host)
	}
	return st, nil
}

// ArchivePath writes a tar of a container path to w (docker cp from the
// container): the path's own name first, then what is below it. Symlinks
// are archived as symlinks, never followed.
func (m *Manager) ArchivePath(ctx context.Context, ref, p string, w io.Writer) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	host, release, err := m.pathIn(c, p)
	if err != nil {
		return err
	}
	defer release()
	if _, err := statOf(host, p); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := layer.PackTree(ctx, tw, host, archiveName(p)); err != nil {
		return err
	}
	return tw.Close()
}

// Export writes a tar of the container's filesystem (docker export): the
// image's layers with the container's changes, without its volumes or the
// mounts the runtime adds (/proc, /etc/hosts...), as Docker does.
func (m *Manager) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status == StatusRemoving {
		return errdefs.Conflict(fmt.Errorf("container %s is marked for removal and cannot be exported", c.ID))
	}
	// A running container's overlay stays mounted on the host side; a
	// stopped one's is mounted for the call.
	root := filepath.Join(m.dir(c.ID), "rootfs")
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		mounted, running, release, err := m.mountStopped(c.ID)
		if err != nil {
			return err
		}
		if running == nil {
			root = mounted
			defer release()
		}
	}
	tw := tar.NewWriter(w)
	if err := layer.PackTree(ctx, tw, root, ""); err != nil {
		return fmt.Errorf("export container %s: %w", c.ID[:12], err)
	}
	return tw.Close()
}

// ExtractTo unpacks a tar into a directory of the container (docker cp to
// the container), with the layer store's checks against escapes.
func (m *Manager) ExtractTo(ctx context.Context, ref, p string, r io.Reader) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.HostConfig.ReadonlyRootfs {
		return errdefs.Conflict(errors.New("container rootfs is marked read-only"))
	}
	host, release, err := m.pathIn(c, p)
	if err != nil {
		return err
	}
	defer release()
	fi, err := os.Lstat(host) // a symlink is not followed: it would be on the host's side
	if err != nil {
		return errdefs.NotFound(fmt.Errorf("Could not find the file %s in container", p)) //lint:ignore ST1005 Docker's wording
	}
	if !fi.IsDir() {
		return errdefs.InvalidParameter(fmt.Errorf("extraction point is not a directory: %s", p))
	}
	if err := layer.Unpack(ctx, r, host); err != nil {
		return errdefs.InvalidParameter(err)
	}
	return nil
}
