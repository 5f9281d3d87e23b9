package container

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/events"
)

// Kill sends a signal to a running container.
func (m *Manager) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if sig == syscall.SIGKILL {
		m.thawIfPaused(ctx, c)
	}
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		return errdefs.Conflict(fmt.Errorf("cannot kill container: %s: container %s is not running", ref, c.ID))
	}
	if sig != syscall.SIGKILL && c.State.Status == StatusRunning && m.usesInit(c) {
		awaitSignalHandler(c.State.Pid, sig, time.Second)
	}
	if err := m.rt.Signal(ctx, c.ID, sig); err != nil {
		return err
	}
	m.notify(events.ActionKill, c, map[string]string{"signal": fmt.Sprint(int(sig))})
	return nil
}

// Stop sends the stop signal (signal, when given: docker stop -s), waits
// up to timeout, then kills. A signal is read as Docker reads it: only
// for a running container (for another there is nothing to do), and
// refused in Docker's words.
func (m *Manager) Stop(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	// Registered before the state is read again: an exit in between is
	// then not missed.
	exited := m.nextExit(c.ID).done
	// Under the start lock: a restart policy's start in progress ends
	// first (and this stop finds the container running), or comes after
	// and sees the mark.
	unlock := m.fsLock(c.ID)
	c, err = m.records.update(c.ID, func(r *Container) error { r.ManuallyStopped = true; return nil })
	if err != nil {
		unlock()
		return err
	}
	cancelled := m.cancelRestart(c.ID)
	unlock()
	m.thawIfPaused(ctx, c)
	if cancelled {
		m.transitionOrLog(c.ID, evRestartCancelled, outcome{})
		return nil
	}
	if c.State.Status != StatusRunning {
		return ErrNotRunning
	}
	img, _ := m.images.Get(c.Image.String())
	sig := syscall.SIGTERM
	name := c.Config.StopSignal
	if name == "" {
		name = img.Config.Config.StopSignal
	}
	if signal != "" {
		s, err := ParseSignal(signal)
		if err != nil {
			// Docker's words and status (500: its stop wraps the
			// signal's error as a system error).
			return fmt.Errorf("cannot stop container: %s: %v", ref, err)
		}
		sig, name = s, ""
	}
	if name != "" {
		s, err := ParseSignal(name)
		if err != nil {
			return err
		}
		sig = s
	}
	wait := 10
	if c.Config.StopTimeout != nil {
		wait = *c.Config.StopTimeout
	}
	if timeout != nil {
		wait = *timeout
	}
	if m.usesInit(c) {
		awaitSignalHandler(c.State.Pid, sig, time.Second)
	}
	if err := m.rt.Signal(ctx, c.ID, sig); err != nil && errdefs.KindOf(err) != errdefs.KindConflict {
		return err
	}
	// As Docker: a stop's signals are "kill" events (Compose's and the
	// CLI's event streams show them).
	m.notify(events.ActionKill, c, map[string]string{"signal": fmt.Sprint(int(sig))})
	// As Docker: a negative timeout waits for the exit for ever, never
	// killing.
	var deadline <-chan time.Time
	if wait >= 0 {
		deadline = time.After(time.Duration(wait) * time.Second)
	}
	select {
	case <-exited:
		m.notify(events.ActionStop, c, nil)
		return nil
	case <-deadline:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := m.rt.Signal(ctx, c.ID, syscall.SIGKILL); err != nil && errdefs.KindOf(err) != errdefs.KindConflict {
		return err
	}
	m.notify(events.ActionKill, c, map[string]string{"signal": fmt.Sprint(int(syscall.SIGKILL))})
	select {
	case <-exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.notify(events.ActionStop, c, nil)
	return nil
}

// Restart stops a container (with signal, when given) and starts it
// again. As with Docker, the stop does not remove a container run with
// --rm: removing it while it is started again would leave its new
// process running with no record.
func (m *Manager) Restart(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.userRestarts[c.ID] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.userRestarts, c.ID)
		m.mu.Unlock()
	}()
	if running := c.State.Status == StatusRunning || c.State.Status == StatusPaused; running && signal != "" {
		if _, err := ParseSignal(signal); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("Cannot restart container %s: %w", ref, err)) //lint:ignore ST1005 Docker's wording
		}
	}
	if err := m.Stop(ctx, c.ID, timeout, signal); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if err := m.Start(ctx, c.ID); err != nil && !errors.Is(err, ErrAlreadyStarted) {
		return err
	}
	// As Docker: kill, die, stop, start, then "restart".
	m.notify(events.ActionRestart, c, nil)
	return nil
}

// ErrNotRunning is stopping a container that is not running (Docker
// answers 304 Not Modified).
var ErrNotRunning = errors.New("container not running")
