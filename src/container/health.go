package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Docker's defaults for a HEALTHCHECK.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	// defaultStartInterval is Docker's time between probes during the
	// start period while the container is not yet healthy.
	defaultStartInterval = 5 * time.Second
	healthLogLen         = 5
	maxHealthOutput      = 4096
)

// RestartOnUnhealthyLabel asks the engine to restart a container that
// turns unhealthy (balenaEngine's feature for devices, where nobody is
// there to notice).
const RestartOnUnhealthyLabel = "io.balena.restart-on-unhealthy"

// healthConfig merges the container's health check over the image's,
// field by field, with Docker's defaults. It returns nil for none.
func healthConfig(ctr, img *containertypes.HealthConfig) *containertypes.HealthConfig {
	var h containertypes.HealthConfig
	if img != nil {
		h = *img
	}
	if ctr != nil {
		if len(ctr.Test) > 0 {
			h.Test = ctr.Test
		}
		if ctr.Interval != 0 {
			h.Interval = ctr.Interval
		}
		if ctr.Timeout != 0 {
			h.Timeout = ctr.Timeout
		}
		if ctr.StartPeriod != 0 {
			h.StartPeriod = ctr.StartPeriod
		}
		if ctr.StartInterval != 0 {
			h.StartInterval = ctr.StartInterval
		}
		if ctr.Retries != 0 {
			h.Retries = ctr.Retries
		}
	}
	if len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	if h.Interval == 0 {
		h.Interval = defaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = defaultHealthTimeout
	}
	if h.Retries == 0 {
		h.Retries = defaultHealthRetries
	}
	if h.StartInterval == 0 {
		h.StartInterval = defaultStartInterval
	}
	return &h
}

// checkHealthConfig refuses, as Docker does at create, durations below
// its minimum and negative retries.
func checkHealthConfig(h *containertypes.HealthConfig) error {
	if h == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if d.v != 0 && d.v < containertypes.MinimumDuration {
			return fmt.Errorf("%s in Healthcheck cannot be less than %s", d.name, containertypes.MinimumDuration)
		}
	}
	if h.Retries < 0 {
		return errors.New("Retries in Healthcheck cannot be negative") //lint:ignore ST1005 Docker's wording
	}
	return nil
}

// nextProbe is the time to the next probe, as Docker's: during the start
// period, while the container is not yet healthy, the start interval;
// else the interval.
func nextProbe(hc *containertypes.HealthConfig, sinceStart time.Duration, status containertypes.HealthStatus) time.Duration {
	if sinceStart < hc.StartPeriod && status == containertypes.Starting {
		return hc.StartInterval
	}
	return hc.Interval
}

// healthCommand turns a HEALTHCHECK test into a command.
func healthCommand(test []string) ([]string, error) {
	switch test[0] {
	case "CMD":
		if len(test) < 2 {
			return nil, fmt.Errorf("health check CMD without a command")
		}
		return test[1:], nil
	case "CMD-SHELL":
		if len(test) != 2 {
			return nil, fmt.Errorf("health check CMD-SHELL takes one command string")
		}
		return []string{"/bin/sh", "-c", test[1]}, nil
	}
	return nil, fmt.Errorf("unknown health check type %q", test[0])
}

// runHealth probes a running container until it exits.
func (m *Manager) runHealth(id string) {
	c, err := m.records.get(id)
	if err != nil {
		return
	}
	img, err := m.images.Get(c.Image.String())
	if err != nil {
		return
	}
	hc := healthConfig(c.Config.Healthcheck, img.Config.Config.Healthcheck)
	if hc == nil {
		return
	}
	cmd, err := healthCommand(hc.Test)
	if err != nil {
		m.log.Warn("health check", "id", id, "err", err)
		return
	}
	exited := m.nextExit(id).done
	started := c.State.StartedAt
	m.setHealth(id, func(h *containertypes.Health) { *h = containertypes.Health{Status: containertypes.Starting} })
	current := containertypes.Starting
	for {
		select {
		case <-exited:
			return
		case <-time.After(nextProbe(hc, time.Since(started), current)):
		}
		res := m.probe(id, cmd, hc.Timeout)
		// A failure in the start period does not count while the
		// container has not been healthy yet.
		inStart := res.Start.Sub(started) < hc.StartPeriod && current == containertypes.Starting
		var becameUnhealthy bool
		var status containertypes.HealthStatus
		m.setHealth(id, func(h *containertypes.Health) {
			h.Log = append(h.Log, res)
			if len(h.Log) > healthLogLen {
				h.Log = h.Log[len(h.Log)-healthLogLen:]
			}
			old := h.Status
			if res.ExitCode == 0 {
				h.Status, h.FailingStreak = containertypes.Healthy, 0
			} else if !inStart {
				h.FailingStreak++
				if h.FailingStreak >= hc.Retries {
					h.Status = containertypes.Unhealthy
				}
			}
			becameUnhealthy = old != containertypes.Unhealthy && h.Status == containertypes.Unhealthy
			if old != h.Status {
				status = h.Status
			}
			current = h.Status
		})
		if status != "" {
			if c2, err := m.records.get(id); err == nil {
				m.notify(events.Action("health_status: "+string(status)), c2, nil)
			}
		}
		if becameUnhealthy && c.Config.Labels[RestartOnUnhealthyLabel] == "true" {
			m.log.Info("restarting an unhealthy container", "id", id)
			t := 10
			go func() {
				if err := m.Stop(context.Background(), id, &t, ""); err == nil {
					m.Start(context.Background(), id)
				}
			}()
			return
		}
	}
}

// probe runs the health command once.
func (m *Manager) probe(id string, cmd []string, timeout time.Duration) *containertypes.HealthcheckResult {
	res := &containertypes.HealthcheckResult{Start: time.Now()}
	e, err := m.ExecCreate(id, containertypes.ExecCreateRequest{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		res.End, res.ExitCode, res.Output = time.Now(), -1, err.Error()
		return res
	}
	defer m.execForget(e.ID)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []byte
	code, err := m.ExecStart(ctx, e.ID, nil, func(_ byte, p []byte) error {
		if len(out) < maxHealthOutput {
			out = append(out, p[:min(len(p), maxHealthOutput-len(out))]...)
		}
		return nil
	})
	res.End = time.Now()
	switch {
	case ctx.Err() != nil:
		res.ExitCode, res.Output = -1, "Health check exceeded timeout ("+timeout.String()+")"
	case err != nil:
		res.ExitCode, res.Output = -1, err.Error()
	default:
		res.ExitCode, res.Output = code, string(out)
	}
	return res
}

// setHealth updates a container's health in its record.
func (m *Manager) setHealth(id string, fn func(*containertypes.Health)) {
	m.updateOrLog(id, func(c *Container) error {
		if c.State.Health == nil {
			c.State.Health = &containertypes.Health{}
		}
		fn(c.State.Health)
		return nil
	})
}

// HealthText is what "docker ps" adds to a container's status.
func HealthText(c *Container) string {
	if c.State.Health == nil || c.State.Status != StatusRunning {
		return ""
	}
	switch c.State.Health.Status {
	case containertypes.Starting:
		return " (health: starting)"
	case containertypes.Healthy, containertypes.Unhealthy:
		return " (" + string(c.State.Health.Status) + ")"
	}
	return ""
}
