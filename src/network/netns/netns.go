// Package netns makes the network namespaces that containers run in.
//
// A container's namespace is created by the engine before the container
// starts and is bind-mounted on a file under the engine's exec root, so it
// lives on while the daemon restarts (live restore) and the runtime joins
// it by path. Everything here works on one locked OS thread that is handed
// back to the Go scheduler only once it is in its original namespace again:
// no other goroutine, and no other thread, ever sees a namespace change.
package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// threadNS is the calling thread's network namespace; /proc/self/ns/net
// would be the main thread's, which is not the one a locked goroutine
// changed.
const threadNS = "/proc/thread-self/ns/net"

// dirMu keeps two Creates in one process from both turning the same
// directory into a mount point, which would stack two bind mounts.
var dirMu sync.Mutex

// Create makes a new network namespace with its loopback up and
// bind-mounts it on path, creating the file and its parent directories.
// A path that is already a mounted namespace is an error (fs.ErrExist);
// a plain file left there by a crash is replaced. On failure nothing is
// left: no mount, no file, no namespace.
func Create(path string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	if err := makeSharedMount(dir); err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	if Exists(path) {
		return fmt.Errorf("netns %s: %w", path, fs.ErrExist)
	}
	// A leftover file (crash between its creation and the mount) is ours.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("netns %s: removing leftover file: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	f.Close()

	mounted := false
	defer func() {
		if err == nil {
			return
		}
		if mounted {
			_ = unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		_ = os.Remove(path)
	}()
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns %s: unshare: %w", path, err)
		}
		return nil
	}, func() error {
		if err := unix.Mount(threadNS, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("netns %s: bind mount: %w", path, err)
		}
		mounted = true
		// A namespace starts with lo down: 127.0.0.1 would not answer.
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("netns %s: bringing lo up: %w", path, err)
		}
		return nil
	})
}

// makeSharedMount makes dir a mount point of its own with shared
// propagation, as `ip netns add` does for /run/netns.
//
// Why a mount point: propagation is a property of a mount, not of a
// directory, and the exec root's own mount is not ours to change.
//
// Why shared rather than private: mount namespaces are copied from the
// daemon's (runc's for each container, a service's PrivateTmp, ...). With a
// private directory every copy keeps its own reference to each namespace
// mounted at that time, which our unmount never reaches: the namespace
// (with its veths, addresses and routes) would outlive Remove. A shared
// mount makes the copies peers (or slaves, once runc makes the container's
// root rslave), so Remove's unmount propagates to them and the namespace is
// freed with its last user. Mounts made here also reach the peers, which is
// harmless: they are only references.
func makeSharedMount(dir string) error {
	dirMu.Lock()
	defer dirMu.Unlock()
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("making %s a shared mount: %w", dir, err)
	}
	// EINVAL: not a mount point yet. MS_REC carries namespaces already
	// mounted below it (an older daemon's) into the new mount.
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s on itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s a shared mount: %w", dir, err)
	}
	return nil
}

// Remove unmounts the namespace at path and removes the file. The
// namespace itself goes when its last user (a process, a socket, another
// mount) does. A path that does not exist is not an error.
func Remove(path string) error {
	for {
		// MNT_DETACH: a runtime may still have the file open; the
		// namespace stays alive for it and the path is freed now.
		err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err == nil {
			continue // mounts may be stacked; take them all
		}
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.EINVAL) {
			break // not (or no longer) a mount point
		}
		return fmt.Errorf("netns %s: unmount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	return nil
}

// Do runs fn on a locked OS thread inside the namespace at path and
// returns the thread to its original namespace afterwards. Goroutines that
// fn starts run elsewhere, in the daemon's namespace; sockets that fn opens
// stay in the namespace at path after Do returns. A panic in fn is raised
// again in the caller once the thread is back.
func Do(path string, fn func() error) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	defer unix.Close(fd)
	return onThread(func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("netns %s: not a network namespace: %w", path, err)
			}
			return fmt.Errorf("netns %s: setns: %w", path, err)
		}
		return nil
	}, fn)
}

// Exists reports whether path is a mounted network namespace.
func Exists(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil || st.Type != unix.NSFS_MAGIC {
		return false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	// nsfs holds every kind of namespace; only a network one will do.
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return errors.Is(err, unix.ENOTTY) // before Linux 4.11: cannot tell
	}
	return typ == unix.CLONE_NEWNET
}

// onThread runs enter, which moves the thread to another network
// namespace, then fn, on a new goroutine locked to its OS thread, then
// moves the thread back. The goroutine is a new one so that a thread that
// cannot be moved back can be thrown away: a goroutine that exits while
// still locked takes its thread with it, and the caller's goroutine is
// never the one stuck.
func onThread(enter, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(threadNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netns: current namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := enter(); err != nil {
			// unshare and setns change nothing when they fail.
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		var res result
		func() {
			defer func() {
				if v := recover(); v != nil {
					res.panicked, res.value = true, v
				}
			}()
			res.err = fn()
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime ends this thread when the
			// goroutine returns instead of reusing it in the wrong
			// namespace.
			res.err = errors.Join(res.err, fmt.Errorf("netns: returning to the original namespace: %w", err))
			done <- res
			return
		}
		runtime.UnlockOSThread()
		done <- res
	}()
	res := <-done
	if res.panicked {
		panic(res.value)
	}
	return res.err
}
