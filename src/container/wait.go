package container

import (
	"context"
	"fmt"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// exit is a container's next exit: done is closed when it happens, after
// code is set.
type exit struct {
	done chan struct{}
	code int
}

// exitWaiters ends the waits for a container's next exit with its code.
func (m *Manager) exitWaiters(id string, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.exited[id]; ok {
		e.code = code
		close(e.done)
		delete(m.exited, id)
	}
}

// dropExitWait forgets a wait for the next exit that nobody holds any
// more (the container is gone).
func (m *Manager) dropExitWait(id string) {
	if _, err := m.records.get(id); err == nil {
		return // still there: its next exit will close it
	}
	m.mu.Lock()
	delete(m.exited, id)
	m.mu.Unlock()
}

func (m *Manager) nextExit(id string) *exit {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.exited[id]
	if !ok {
		e = &exit{done: make(chan struct{})}
		m.exited[id] = e
	}
	return e
}

// Wait blocks until the container is not running (condition
// "not-running"), has next exited ("next-exit"), or is removed
// ("removed"), and returns its exit code. As Docker, a paused or
// restarting container counts as running, and "removed" of a container
// that is not running waits for its removal only.
func (m *Manager) Wait(ctx context.Context, ref, condition string) (int, error) {
	switch condition {
	case "", "not-running", "next-exit", "removed":
	default:
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", condition))
	}
	c, err := m.records.get(ref)
	if err != nil {
		return 0, err
	}
	// Registered before the state is read again: an exit in between is
	// then not missed.
	e := m.nextExit(c.ID)
	if c, err = m.records.get(c.ID); err != nil {
		if condition == "removed" {
			return 0, nil
		}
		return 0, err
	}
	code := c.State.ExitCode
	if condition == "removed" {
		// As Docker: the removal only is waited for, and the code is
		// that of the last exit before it (docker run --rm starts the
		// container after asking).
		done := e.done
		for {
			select {
			case <-done:
				code, done = e.code, nil
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			r, err := m.records.get(c.ID)
			if err != nil {
				break
			}
			if done != nil { // no exit seen yet: the recorded one
				code = r.State.ExitCode
			}
		}
		if done != nil {
			m.dropExitWait(c.ID)
		}
		return code, nil
	}
	if condition == "next-exit" || isRunning(c.State.Status) {
		select {
		case <-e.done:
			code = e.code
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	} else {
		m.dropExitWait(c.ID)
	}
	return code, nil
}

// isRunning is Docker's State.Running: paused and restarting included.
func isRunning(status string) bool {
	return status == StatusRunning || status == StatusPaused || status == StatusRestarting
}
