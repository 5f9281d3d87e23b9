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
// ("removed"), and returns its exit code.
func (m *Manager) Wait(ctx context.Context, ref, condition string) (int, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return 0, err
	}
	switch condition {
	case "", "not-running":
		if c.State.Status != StatusRunning {
			return c.State.ExitCode, nil
		}
	case "next-exit", "removed":
	default:
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", condition))
	}
	e := m.nextExit(c.ID)
	select {
	case <-e.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if condition == "removed" {
		for {
			if _, err := m.records.get(c.ID); err != nil {
				break
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	return e.code, nil
}
