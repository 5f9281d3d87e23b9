package container

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/logs"
	"github.com/moby/moby/api/types/events"
)

// Attach returns a container's output from now until it ends, in Docker's
// multiplexed frames; before the container starts it waits for the start.
func (m *Manager) Attach(ctx context.Context, ref string) (io.ReadCloser, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return nil, err
	}
	return m.rt.Attach(ctx, c.ID)
}

// AttachWithLog is Attach for an attach with logs=1: the replay sends the
// container's log as it stood when the attach joined its output, and the
// stream carries everything after, so that no line is sent twice and none
// is missed between the two.
func (m *Manager) AttachWithLog(ctx context.Context, ref string) (io.ReadCloser, *LogReplay, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return nil, nil, err
	}
	conn, pos, release, err := m.rt.AttachCut(ctx, c.ID)
	if err != nil {
		return nil, nil, err
	}
	// The container's output waits from here until release: the snapshot
	// must be quick, and is (it opens the log's files).
	defer release()
	lo, _ := LogSettings(c.HostConfig.LogConfig)
	if err := ReadableLogs(c); err != nil {
		return conn, &LogReplay{err: err}, nil
	}
	if lo.Driver == DriverJournald {
		// journald stores what it is sent when it gets to it: the replay
		// reads the journal up to the monitor's position.
		return conn, &LogReplay{journal: c.ID, pos: pos}, nil
	}
	snap, err := logs.Open(c.LogPath, lo.MaxFile)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, &LogReplay{snap: snap}, nil
}

// LogReplay is the log an attach with logs=1 sends before the stream.
type LogReplay struct {
	snap    *logs.Snapshot
	journal string // the container's ID, for a journald log
	pos     string // the journal's writer's position at the attach
	err     error  // the log cannot be read (the "none" driver)
}

// Read sends the log's entries to fn, or answers why it cannot be read.
func (r *LogReplay) Read(ctx context.Context, fn func(logs.Entry) error) error {
	switch {
	case r.err != nil:
		return r.err
	case r.journal != "":
		return logs.ReadJournalUpTo(ctx, r.journal, r.pos, fn)
	}
	snap := r.snap
	r.snap = nil
	if snap == nil {
		return nil
	}
	return snap.Read(ctx, logs.ReadOptions{Tail: -1}, nil, fn)
}

// Close lets go of a replay not read.
func (r *LogReplay) Close() {
	if r.snap != nil {
		r.snap.Close()
		r.snap = nil
	}
}

// Detached records that an attached client typed its detach keys (a
// "detach" event, as Docker's).
func (m *Manager) Detached(ref string) {
	if c, err := m.records.get(ref); err == nil {
		m.notify(events.ActionDetach, c, nil)
	}
}

// Logs reads a container's log. With follow it goes on until the
// container exits or ctx ends.
func (m *Manager) Logs(ctx context.Context, ref string, opts logs.ReadOptions, fn func(logs.Entry) error) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	lo, _ := LogSettings(c.HostConfig.LogConfig)
	var stop <-chan struct{}
	if opts.Follow {
		if c.State.Status != StatusRunning {
			opts.Follow = false
		} else {
			stop = m.nextExit(c.ID).done
		}
	}
	if err := ReadableLogs(c); err != nil {
		return err
	}
	if lo.Driver == DriverJournald {
		return logs.ReadJournal(ctx, c.ID, opts, stop, fn)
	}
	return logs.Read(ctx, c.LogPath, lo.MaxFile, opts, stop, fn)
}

// Resize sets the size of a running container's terminal.
func (m *Manager) Resize(ctx context.Context, ref string, h, w uint16) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status != StatusRunning {
		return errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	return m.rt.Resize(ctx, c.ID, h, w)
}

// StdinConn connects to a running container's input, waiting for the
// container to start if it has not yet (docker run attaches first).
func (m *Manager) StdinConn(ctx context.Context, id string) (io.WriteCloser, error) {
	exited := m.nextExit(id).done
	for {
		c, err := m.records.get(id)
		if err != nil {
			return nil, err
		}
		if c.State.Status == StatusRunning {
			return m.rt.Stdin(ctx, c.ID)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-exited:
			return nil, errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
