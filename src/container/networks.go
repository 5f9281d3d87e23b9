package container

import (
	"fmt"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/network"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
)

// NetworkUsers lists the containers whose configuration names a network,
// running or not.
func (m *Manager) NetworkUsers(id, name string) []string {
	all, err := m.records.list()
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range all {
		mode := string(c.HostConfig.NetworkMode)
		_, byName := c.Networks[name]
		_, byID := c.Networks[id]
		if mode == name || mode == id || byName || byID || (name == network.NameBridge && (mode == "default" || mode == "")) {
			out = append(out, c.ID)
		}
	}
	return out
}

// Connect adds a network to a container that is not running; it joins it
// at its next start.
func (m *Manager) Connect(ref string, n *network.Network, cfg *networktypes.EndpointSettings) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	mode := c.HostConfig.NetworkMode
	if !network.IsBridged(mode) || n.Driver != network.DriverBridge {
		return errdefs.Forbidden(fmt.Errorf("container cannot be disconnected from host network or connected to host network"))
	}
	if _, listed := c.Networks[n.Name]; listed || string(mode) == n.Name || string(mode) == n.ID || (n.Default && mode.IsDefault()) {
		return errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", c.Name, n.Name))
	}
	if cfg == nil {
		cfg = &networktypes.EndpointSettings{}
	}
	eps := map[string]*networktypes.EndpointSettings{n.Name: cfg}
	if err := m.opts.Network.CheckCreate(containertypes.NetworkMode(n.Name), eps); err != nil {
		return err
	}
	if c.State.Status == StatusRunning || c.State.Status == StatusPaused {
		// Plugged into its namespace now; recorded for its next starts.
		if err := m.opts.Network.Attach(c.ID, c.Name, n, cfg); err != nil {
			return err
		}
	}
	_, err = m.records.update(c.ID, func(r *Container) error {
		if r.Networks == nil {
			r.Networks = map[string]*networktypes.EndpointSettings{}
		}
		r.Networks[n.Name] = cfg.Copy()
		return nil
	})
	return err
}

// Disconnect removes a network from a container that is not running.
func (m *Manager) Disconnect(ref string, n *network.Network, force bool) error {
	c, err := m.records.get(ref)
	if err != nil {
		if force && errdefs.KindOf(err) == errdefs.KindNotFound {
			return nil
		}
		return err
	}
	mode := c.HostConfig.NetworkMode
	_, listed := c.Networks[n.Name]
	isMode := string(mode) == n.Name || string(mode) == n.ID || (n.Default && mode.IsDefault())
	if !listed && !isMode {
		return errdefs.Forbidden(fmt.Errorf("container %s is not connected to network %s", c.ID[:12], n.Name))
	}
	if c.State.Status == StatusRunning || c.State.Status == StatusPaused {
		if err := m.opts.Network.Detach(c.ID, n); err != nil {
			return err
		}
	}
	_, err = m.records.update(c.ID, func(r *Container) error {
		delete(r.Networks, n.Name)
		if isMode {
			// The container keeps a network: its first other one, or
			// none, as Docker leaves a container with no network.
			r.HostConfig.NetworkMode = "none"
			for k := range r.Networks {
				r.HostConfig.NetworkMode = containertypes.NetworkMode(k)
				break
			}
		}
		return nil
	})
	return err
}
