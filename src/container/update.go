package container

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update changes a container's resources and restart policy, as docker
// update does: the resources given replace those fields, applied to the
// running container's cgroups first and kept for its next starts; a new
// restart policy takes effect at the next exit. Nothing is changed unless
// all of it can be.
func (m *Manager) Update(ctx context.Context, ref string, u *containertypes.UpdateConfig) ([]string, error) {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	c, err := m.records.get(ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status == StatusRemoving {
		return nil, errdefs.Conflict(fmt.Errorf("container %s is marked for removal and cannot be \"update\"", c.ID))
	}
	// As Docker: the update's own values are checked against the
	// hierarchy, and those it cannot apply are discarded with a warning.
	asked := u.Resources
	warnings, err := adaptResources(&asked, hostCgroups(), usesBFQ)
	if err != nil {
		return warnings, err
	}
	res, err := mergeResources(c.HostConfig.Resources, asked)
	if err != nil {
		return warnings, err
	}
	if u.RestartPolicy.Name != "" {
		if err := checkRestartPolicy(u.RestartPolicy); err != nil {
			return nil, err
		}
		if c.HostConfig.AutoRemove && u.RestartPolicy.Name != "no" {
			return nil, errdefs.InvalidParameter(errors.New("Restart policy cannot be updated because AutoRemove is enabled for the container"))
		}
	}
	host := *c.HostConfig
	host.Resources = res
	lr := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	if err := setResources(lr, &host); err != nil {
		return nil, err
	}
	changed := !reflect.DeepEqual(res, c.HostConfig.Resources)
	if changed && (c.State.Status == StatusRunning || c.State.Status == StatusPaused) {
		if err := m.rt.Update(ctx, c.ID, lr.Linux.Resources); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w", c.ID, err) //lint:ignore ST1005 Docker's wording
		}
	}
	c, err = m.records.update(c.ID, func(c *Container) error {
		c.HostConfig.Resources = res
		if u.RestartPolicy.Name != "" {
			c.HostConfig.RestartPolicy = u.RestartPolicy
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if u.RestartPolicy.Name == "no" && m.cancelRestart(c.ID) {
		// A restart was waiting out its back-off: the policy no longer asks for it.
		m.transitionOrLog(c.ID, evRestartCancelled, outcome{})
	}
	m.notify(events.ActionUpdate, c, nil)
	return warnings, nil
}
