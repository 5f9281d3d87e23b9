package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// Remove deletes a container; a running one only with force. With
// removeVolumes, its anonymous volumes go too, unless another uses them.
func (m *Manager) Remove(ctx context.Context, ref string, force bool, removeVolumes ...bool) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	// No start (a restart policy's) may run while the container is
	// removed: it would leave a process running that no record follows.
	unlock := m.fsLock(c.ID)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	// The wait for the exit is registered before the state is read: an
	// exit between the two would otherwise be waited for in vain.
	exited := m.nextExit(c.ID).done
	defer m.dropExitWait(c.ID)
	if c, err = m.records.get(c.ID); err != nil { // as it is now, under the lock
		return err
	}
	if m.cancelRestart(c.ID) && !force {
		return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is restarting: stop the container before removing or force remove", c.Name))
	}
	if force {
		m.thawIfPaused(ctx, c)
	}
	if c.State.Status == StatusPaused {
		return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is paused: unpause and stop the container before removing or force remove", c.Name))
	}
	if c.State.Status == StatusRunning {
		if !force {
			return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", c.Name))
		}
		// Recorded before the kill: lost on a full disk, the container
		// would come back at the next boot.
		if _, err := m.records.update(c.ID, func(r *Container) error { r.ManuallyStopped = true; return nil }); err != nil {
			return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
		}
		if err := m.rt.Signal(ctx, c.ID, syscall.SIGKILL); err != nil && errdefs.KindOf(err) != errdefs.KindConflict {
			return err
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("container %s did not die after SIGKILL", c.ID)
		}
	}
	// Nothing is undone unless the container may go as it is now.
	removable := func(r *Container) error { _, err := nextStatus(r.State.Status, evRemove); return err }
	if c, err = m.records.get(c.ID); err != nil {
		return err
	}
	if err := removable(c); err != nil {
		return err
	}
	if err := m.rt.Forget(ctx, c.ID); err != nil && errdefs.KindOf(err) != errdefs.KindNotFound {
		return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
	}
	m.rt.EndAttach(ctx, c.ID)
	unix.Unmount(filepath.Join(m.dir(c.ID), "rootfs"), unix.MNT_DETACH)
	unix.Unmount(m.shmDir(c.ID), unix.MNT_DETACH)
	if !unbindSubpaths(filepath.Join(m.dir(c.ID), "subpaths")) {
		return fmt.Errorf("remove container %s: its volume subpaths are still mounted", c.ID[:12])
	}
	// Its files go before its record: once nothing names the container,
	// nothing of it is left (a failure here keeps the record, and a
	// second rm finishes the work).
	if err := m.opts.Network.Leave(c.ID); err != nil {
		m.log.Warn("network sandbox of a removed container", "id", c.ID, "err", err)
	}
	if err := os.RemoveAll(m.dir(c.ID)); err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
	}
	if err := m.records.remove(c.ID, removable); err != nil {
		return err
	}
	m.forgetExecsOf(c.ID)
	locked = false
	unlock()
	m.fsLocks.Delete(c.ID)
	if (len(removeVolumes) > 0 && removeVolumes[0]) || c.HostConfig.AutoRemove {
		for _, v := range c.Volumes {
			if v.Anonymous && len(m.VolumeUsers(v.Name)) == 0 {
				m.vols.Remove(v.Name, nil)
			}
		}
	}
	m.notify(events.ActionDestroy, c, nil)
	return nil
}
