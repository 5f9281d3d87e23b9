package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Docker's restart backoff: 100 ms doubling to a minute, back to the start
// once a container has run for 10 s.
const (
	restartBase  = 100 * time.Millisecond
	restartMax   = time.Minute
	restartReset = 10 * time.Second
)

// restartDelay decides whether the policy restarts c, and after how long.
func (m *Manager) restartDelay(c *Container) (time.Duration, bool) {
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case "always":
	case "unless-stopped":
		if c.ManuallyStopped {
			return 0, false
		}
	case "on-failure":
		if c.State.ExitCode == 0 || (p.MaximumRetryCount > 0 && c.RestartCount >= p.MaximumRetryCount) {
			return 0, false
		}
	default:
		return 0, false
	}
	if c.ManuallyStopped {
		return 0, false
	}
	if c.State.FinishedAt.Sub(c.State.StartedAt) >= restartReset {
		return restartBase, true
	}
	d := restartBase << min(c.RestartCount, 20)
	return min(d, restartMax), true
}

// restart starts a container again for its restart policy.
func (m *Manager) restart(id string, _ time.Duration) {
	m.mu.Lock()
	delete(m.restarts, id)
	m.mu.Unlock()
	c, err := m.records.get(id)
	if err != nil || c.State.Status == StatusRunning {
		return
	}
	if c.ManuallyStopped {
		// A user's stop came between the exit and the scheduling of this
		// restart, and found nothing to cancel: the restart ends here.
		m.updateOrLog(id, func(r *Container) error {
			if r.State.Status != StatusRestarting {
				return nil
			}
			return r.State.transition(evRestartCancelled, outcome{})
		})
		return
	}
	if _, err := m.records.update(id, func(r *Container) error { r.RestartCount++; return nil }); err != nil {
		return
	}
	// A failed start leaves the container exited (see Start).
	if err := m.startAs(context.Background(), id, true); err != nil {
		if !errors.Is(err, errStoppedByUser) {
			m.log.Warn("restart by policy failed", "id", id, "err", err)
		}
		return
	}
	m.notify(events.ActionRestart, c, nil)
}

// cancelRestart drops a pending restart; it reports whether there was one.
func (m *Manager) cancelRestart(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.restarts[id]
	if ok && t != nil {
		t.Stop()
	}
	delete(m.restarts, id)
	return ok
}

// checkRestartPolicy rejects a policy the way Docker does.
func checkRestartPolicy(p containertypes.RestartPolicy) error {
	switch p.Name {
	case "", "no", "always", "unless-stopped":
		if p.MaximumRetryCount != 0 {
			return errdefs.InvalidParameter(errors.New("invalid restart policy: maximum retry count can only be used with 'on-failure'"))
		}
	case "on-failure":
		if p.MaximumRetryCount < 0 {
			return errdefs.InvalidParameter(errors.New("invalid restart policy: maximum retry count cannot be negative"))
		}
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name))
	}
	return nil
}
