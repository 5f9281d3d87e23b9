package container

import (
	"context"
	"fmt"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/events"
)

// Pause freezes a running container.
func (m *Manager) Pause(ctx context.Context, ref string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	switch c.State.Status {
	case StatusPaused:
		return errdefs.Conflict(fmt.Errorf("container %s is already paused", c.ID))
	case StatusRunning:
	default:
		return errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	if err := m.rt.Pause(ctx, c.ID); err != nil {
		return err
	}
	// Checked again with the record: it may have exited since.
	c, err = m.transition(c.ID, evPause, outcome{}, nil)
	if err == nil {
		m.notify(events.ActionPause, c, nil)
	}
	return err
}

// Unpause thaws a paused container.
func (m *Manager) Unpause(ctx context.Context, ref string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status != StatusPaused {
		return errdefs.Conflict(fmt.Errorf("container %s is not paused", c.ID))
	}
	if err := m.rt.Resume(ctx, c.ID); err != nil {
		return err
	}
	c, err = m.transition(c.ID, evUnpause, outcome{}, nil)
	if err == nil {
		m.notify(events.ActionUnPause, c, nil)
	}
	return err
}

// thawIfPaused resumes a paused container so that a signal can end it, as
// Docker does before stop, kill and forced removal.
func (m *Manager) thawIfPaused(ctx context.Context, c *Container) {
	if c.State.Status == StatusPaused {
		if m.rt.Resume(ctx, c.ID) == nil {
			m.transitionOrLog(c.ID, evUnpause, outcome{})
			// The caller's copy too, even if the record could not be
			// written: the process runs, and a signal can end it.
			c.State.transition(evUnpause, outcome{})
		}
	}
}
