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
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/treepack"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	containertypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// openRoot returns a handle of the directory that is the container's "/"
// for docker cp: a running container's own root (its mounts and volumes
// included), taken from its init process once that is checked to still
// be it, or the stopped container's filesystem, mounted for the call
// (release unmounts it). Paths are resolved from this handle, never
// re-walked from a path string that the container could redirect.
func (m *Manager) openRoot(c *Container) (root *os.File, release func(), err error) {
	for range 3 {
		if c.State.Status == StatusRunning || c.State.Status == StatusPaused {
			root, err := openInitRoot(c.State.Pid, m.cgroupOf(c), c.HostConfig.PidMode.IsPrivate())
			if err == nil {
				return root, func() { root.Close() }, nil
			}
			if !errors.Is(err, errNotInit) {
				return nil, nil, fmt.Errorf("container %s: %w", c.ID[:12], err)
			}
			// It exited meanwhile: its record says so soon, and its
			// filesystem is then mounted here.
			time.Sleep(50 * time.Millisecond)
			if c, err = m.records.get(c.ID); err != nil {
				return nil, nil, err
			}
			continue
		}
		rootfs, running, unmount, err := m.mountStopped(c.ID)
		if err != nil {
			return nil, nil, err
		}
		if running != nil { // it started meanwhile
			c = running
			continue
		}
		root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			unmount()
			return nil, nil, err
		}
		return root, func() { root.Close(); unmount() }, nil
	}
	return nil, nil, errdefs.Conflict(fmt.Errorf("container %s is starting or stopping, try again", c.ID[:12]))
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

// openIn opens (O_PATH) a path of the container as Docker resolves it for
// docker cp: the directories leading to it resolved inside the container's
// root (their symlinks followed there, never out of it: openat2's
// RESOLVE_IN_ROOT, or its emulation on older kernels), the last element
// itself not followed, so that a symlink is copied as a symlink, unless the
// path ends in "/" or "/." (then it names the directory, through a symlink
// or not). A missing path is Docker's not-found error, naming the
// container as the client did (ref).
func openIn(root *os.File, p, ref string) (*os.File, error) {
	h, err := lookupIn(root, p)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, ref)) //lint:ignore ST1005 Docker's wording
	}
	return h, err
}

func lookupIn(root *os.File, p string) (*os.File, error) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		// The root itself, reopened from the handle: a running
		// container's handle came through /proc/PID/root, which is a
		// (magic) symlink when looked up again by name.
		fd, err := unix.Openat(int(root.Fd()), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: "/", Err: err}
		}
		return os.NewFile(uintptr(fd), "/"), nil
	}
	if strings.HasSuffix(p, "/") || p == "." || strings.HasSuffix(p, "/.") {
		return pathrs.OpenatInRoot(root, clean)
	}
	dir, base := path.Split(clean)
	d, err := pathrs.OpenatInRoot(root, dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: clean, Err: err}
	}
	return os.NewFile(uintptr(fd), clean), nil
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
	root, release, err := m.openRoot(c)
	if err != nil {
		return containertypes.PathStat{}, err
	}
	defer release()
	h, err := openIn(root, p, ref)
	if err != nil {
		return containertypes.PathStat{}, err
	}
	defer h.Close()
	st, _, err := statOf(h, p)
	return st, err
}

// statOf describes an open path, with its file type.
func statOf(h *os.File, p string) (containertypes.PathStat, uint32, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return containertypes.PathStat{}, 0, fmt.Errorf("stat %s: %w", p, err)
	}
	ps := containertypes.PathStat{Name: filepath.Base(p), Size: st.Size, Mode: treepack.FileMode(st.Mode), Mtime: time.Unix(st.Mtim.Unix())}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, 4096)
		if n, err := unix.Readlinkat(int(h.Fd()), "", buf); err == nil {
			ps.LinkTarget = string(buf[:n])
		}
	}
	return ps, st.Mode & unix.S_IFMT, nil
}

// ArchivePath writes a tar of a container path to w (docker cp from the
// container): the path's own name first, then what is below it. Symlinks
// are archived as symlinks, never followed.
//
// The path is resolved once: head is given the stat of the very file the
// tar is then made of (docker cp's header), before the first byte of it,
// so that a container swapping the path meanwhile cannot make the two
// disagree.
func (m *Manager) ArchivePath(ctx context.Context, ref, p string, head func(containertypes.PathStat), w io.Writer) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	root, release, err := m.openRoot(c)
	if err != nil {
		return err
	}
	defer release()
	h, err := openIn(root, p, ref)
	if err != nil {
		return err
	}
	defer h.Close()
	st, _, err := statOf(h, p)
	if err != nil {
		return err
	}
	head(st)
	tw := tar.NewWriter(w)
	if err := treepack.At(ctx, tw, h, archiveName(p)); err != nil {
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
	// The walk goes through handles: the running container may rename
	// and swap its files meanwhile.
	tw := tar.NewWriter(w)
	if err := treepack.Tree(ctx, tw, root, ""); err != nil {
		return fmt.Errorf("export container %s: %w", c.ID[:12], err)
	}
	return tw.Close()
}

// ExtractOptions are the archive PUT's choices.
type ExtractOptions struct {
	// CopyUIDGID (docker cp -a): what is copied is owned by the
	// container's user and its group, as Docker does it, when the
	// container has a user; else, and without it, by the tar's owners.
	CopyUIDGID bool
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory and the other way round (the docker CLI sets it).
	NoOverwriteDirNonDir bool
}

// ExtractTo unpacks a tar into a directory of the container (docker cp to
// the container), with the layer store's checks against escapes.
func (m *Manager) ExtractTo(ctx context.Context, ref, p string, r io.Reader, opts ExtractOptions) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.HostConfig.ReadonlyRootfs {
		return errdefs.Conflict(errors.New("container rootfs is marked read-only"))
	}
	root, release, err := m.openRoot(c)
	if err != nil {
		return err
	}
	defer release()
	h, err := openIn(root, p, ref)
	if err != nil {
		return err
	}
	defer h.Close()
	// A symlink is not followed: Docker resolves it in the container,
	// which is left to the client (it asks for the path's stat first).
	if _, typ, err := statOf(h, p); err != nil {
		return err
	} else if typ != unix.S_IFDIR {
		return errdefs.InvalidParameter(fmt.Errorf("extraction point is not a directory: %s", p))
	}
	lo := layer.UnpackOptions{NoOverwriteDirNonDir: opts.NoOverwriteDirNonDir}
	if opts.CopyUIDGID {
		if lo.Owner, err = m.copyOwner(c, root); err != nil {
			return err
		}
	}
	if err := layer.UnpackAt(ctx, r, h, lo); err != nil {
		var oe *layer.OverwriteError
		if errors.As(err, &oe) {
			// Docker's words, which name the directory extracted into.
			kinds := [2]string{"non-directory", "directory"}
			if oe.Dir {
				kinds[0], kinds[1] = kinds[1], kinds[0]
			}
			return fmt.Errorf("cannot overwrite %s %q with %s %q", kinds[0], oe.Name, kinds[1], p) // Docker's status too: 500
		}
		return errdefs.InvalidParameter(err)
	}
	return nil
}

// copyOwner is who owns what docker cp -a copies into a container: its
// user (the container's, else its image's) and that user's group, or the
// group named, looked up in the container's own /etc/passwd and
// /etc/group; nil, the tar's owners, for a container without a user, as
// Docker does it.
func (m *Manager) copyOwner(c *Container, root *os.File) (*layer.Owner, error) {
	spec := c.Config.User
	if spec == "" {
		if img, err := m.images.Get(c.Image.String()); err == nil {
			spec = img.Config.Config.User
		}
	}
	if spec == "" {
		return nil, nil
	}
	u, err := ResolveUser("/proc/self/fd/"+strconv.Itoa(int(root.Fd())), spec, nil)
	if err != nil {
		return nil, err
	}
	return &layer.Owner{UID: int(u.UID), GID: int(u.GID)}, nil
}
