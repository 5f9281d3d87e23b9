package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/balena-os/balena-engine/src/errdefs"
	"golang.org/x/sys/unix"
)

// shmDir is where a shareable IPC namespace's /dev/shm is mounted on the
// host, for the containers that share it to bind.
func (m *Manager) shmDir(id string) string { return filepath.Join(m.dir(id), "shm") }

// sharedNamespaces resolves, at start as Docker does, what --pid and --ipc
// container:NAME share: the other container must run then, its IPC
// namespace must be shareable (or the host's), and the /dev/shm to bind
// is its own ("" for a container with a /dev/shm of its own). A
// shareable container's /dev/shm is mounted by mountShm.
func (m *Manager) sharedNamespaces(c *Container) (pidns, ipcns, shm string, err error) {
	host := c.HostConfig
	if host.PidMode.IsContainer() {
		other, err := m.runningPeer(host.PidMode.Container())
		if err != nil {
			return "", "", "", fmt.Errorf("failed to join PID namespace: %w", err)
		}
		pidns = "/proc/" + strconv.Itoa(other.State.Pid) + "/ns/pid"
	}
	switch {
	case host.IpcMode.IsContainer():
		ref := host.IpcMode.Container()
		other, err := m.runningPeer(ref)
		if err != nil {
			return "", "", "", fmt.Errorf("failed to join IPC namespace: %w", err)
		}
		switch {
		case other.HostConfig.IpcMode.IsShareable():
			shm = m.shmDir(other.ID)
		case other.HostConfig.IpcMode.IsHost():
			shm = "/dev/shm"
		default:
			return "", "", "", errdefs.InvalidParameter(fmt.Errorf("failed to join IPC namespace: container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container)", ref))
		}
		ipcns = "/proc/" + strconv.Itoa(other.State.Pid) + "/ns/ipc"
	case host.IpcMode.IsHost():
		if _, err := os.Stat("/dev/shm"); err != nil {
			return "", "", "", errors.New("/dev/shm is not mounted, but must be for --ipc=host")
		}
		shm = "/dev/shm"
	}
	return pidns, ipcns, shm, nil
}

// runningPeer is the running container whose namespace another one
// joins, with Docker's errors: 400 for none, 409 for one not running.
func (m *Manager) runningPeer(ref string) (*Container, error) {
	other, err := m.records.get(ref)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if other.State.Status != StatusRunning && other.State.Status != StatusPaused {
		return nil, errdefs.Conflict(fmt.Errorf("container %s is not running", ref))
	}
	return other, nil
}

// mountShm mounts a shareable container's /dev/shm, a tmpfs of its
// --shm-size, on the host (Docker's "shareable" IPC mode: the containers
// that join the namespace bind it too). A previous run's goes first.
func (m *Manager) mountShm(c *Container) (string, error) {
	dir := m.shmDir(c.ID)
	unix.Unmount(dir, unix.MNT_DETACH)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	size := c.HostConfig.ShmSize
	if size == 0 {
		size = defaultShmSize
	}
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
		return "", fmt.Errorf("mounting shm tmpfs: %w", err)
	}
	return dir, nil
}
