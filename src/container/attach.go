package container

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/logs"
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
