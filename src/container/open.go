package container

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/runtime"
)

// Open opens the container manager and reconciles every record with what
// the monitor knows: containers that ran on while the daemon was away are
// followed again; those that ended get their real exit status.
func Open(ctx context.Context, o Options) (*Manager, error) {
	root, images, rt, log := o.Root, o.Images, o.Runtime, o.Log
	m := &Manager{opts: o, root: root, records: recordStore{o.DB}, images: images, vols: o.Volumes, rt: rt, log: log, exited: map[string]*exit{}, restarts: map[string]*time.Timer{}, userRestarts: map[string]bool{}}
	if err := m.records.init(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o710); err != nil {
		return nil, err
	}
	// Narrowed if an older engine made it wider (CVE-2021-41091).
	if fi, err := os.Stat(root); err == nil && fi.Mode().Perm()&^0o710 != 0 {
		if err := os.Chmod(root, fi.Mode().Perm()&0o710); err != nil {
			return nil, fmt.Errorf("restrict containers directory: %w", err)
		}
	}
	all, err := m.records.list()
	if err != nil {
		return nil, err
	}
	// Before any restart below makes a new sandbox: those of containers
	// not running (a crash between an exit and its clean-up, a power
	// cut) go; a running one's stays, and goes when it is found ended.
	live := map[string]bool{}
	for _, c := range all {
		live[c.ID] = c.State.Status == StatusRunning || c.State.Status == StatusPaused
	}
	o.Network.Reconcile(func(id string) bool { return live[id] })
	for _, c := range all {
		if c.State.Status == StatusRestarting {
			// A restart was waiting when the daemon went, its timer
			// with it: it is done now instead.
			m.transitionOrLog(c.ID, evRestartCancelled, outcome{})
			go m.restart(c.ID, 0)
			continue
		}
		// A paused one too may have ended: the monitor says.
		if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
			// Docker starts "always" containers with the daemon, and
			// "unless-stopped" ones unless a user stopped them.
			p := c.HostConfig.RestartPolicy.Name
			if c.State.Status == StatusExited && (p == "always" || (p == "unless-stopped" && !c.ManuallyStopped)) {
				id := c.ID
				m.updateOrLog(id, func(r *Container) error { r.ManuallyStopped = false; return nil })
				go m.restart(id, 0)
			}
			continue
		}
		st, err := rt.State(ctx, c.ID)
		switch {
		case err == nil && st.Running:
			log.Info("container still running", "id", c.ID, "pid", st.Pid)
			go m.follow(c.ID)
			go m.runHealth(c.ID)
		case err == nil:
			m.finish(c.ID, st)
		case errdefs.KindOf(err) == errdefs.KindNotFound:
			// No monitor knows it (the host rebooted: the monitor's state
			// is on a tmpfs): the container is gone, its status with it.
			m.finish(c.ID, runtime.State{ExitCode: 255, FinishedAt: time.Now().UTC(),
				Error: "the container ended while the engine was not running; its exit status is unknown"})
		default:
			// No monitor could be reached or started: the container may
			// well run, so it is not reported ended; follow asks until a
			// monitor answers.
			log.Warn("container monitor unreachable; following the container until it answers", "id", c.ID, "err", err)
			go m.follow(c.ID)
		}
		// One that ended while the engine was away restarts now, as Docker
		// restarts containers when it starts, not after the backoff of its
		// restart count: that count keeps growing over reboots, and a device
		// without a real-time clock cannot tell how long the run lasted.
		if m.cancelRestart(c.ID) {
			go m.restart(c.ID, 0)
		}
	}
	images.InUse = m.imageUser
	return m, nil
}
