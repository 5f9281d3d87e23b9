package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	if err := connectable(mode, c.NetworkDisconnected, n); err != nil {
		return err
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
		joinNetwork(r, n.Name, cfg)
		return nil
	})
	return err
}

// joinNetwork records network name, with its endpoint settings, in a
// container's record.
func joinNetwork(r *Container, name string, cfg *networktypes.EndpointSettings) {
	if r.Networks == nil {
		r.Networks = map[string]*networktypes.EndpointSettings{}
	}
	r.Networks[name] = cfg.Copy()
	if r.NetworkDisconnected {
		// A network again: its mode names it.
		r.HostConfig.NetworkMode, r.NetworkDisconnected = containertypes.NetworkMode(name), false
	}
}

// connectable says whether a container of network mode mode may be
// connected to network n, with Docker's refusals (400s). A container
// whose mode is "none" because a disconnect took its last network
// (disconnected) may: Docker keeps such a container's mode and lets
// Compose 1.29 disconnect a new container from the network it was
// created on and connect it again with its aliases.
func connectable(mode containertypes.NetworkMode, disconnected bool, n *network.Network) error {
	switch {
	case n.Driver == network.DriverHost:
		return errdefs.InvalidParameter(errors.New("container cannot be disconnected from host network or connected to host network"))
	case mode.IsHost() || mode.IsContainer():
		return errdefs.InvalidParameter(errors.New("container sharing network namespace with another container or host cannot be connected to any other network"))
	case (mode.IsNone() && !disconnected) || n.Driver == network.DriverNull:
		return errdefs.InvalidParameter(errors.New("container cannot be connected to multiple networks with one of the networks in private (none) mode"))
	case n.Driver != network.DriverBridge:
		return errdefs.InvalidParameter(fmt.Errorf("container cannot be connected to network %s", n.Name))
	}
	return nil
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
		leaveNetwork(r, n, isMode)
		return nil
	})
	return err
}

// leaveNetwork takes network n out of a container's record; isMode says
// its mode names n.
func leaveNetwork(r *Container, n *network.Network, isMode bool) {
	delete(r.Networks, n.Name)
	if !isMode {
		return
	}
	// The container keeps a network: its first other one, or none, as
	// Docker leaves a container with no network (and lets it be
	// connected again: NetworkDisconnected).
	r.HostConfig.NetworkMode, r.NetworkDisconnected = "none", true
	for k := range r.Networks {
		r.HostConfig.NetworkMode, r.NetworkDisconnected = containertypes.NetworkMode(k), false
		break
	}
}

// checkContainerNetwork checks --network container:NAME at create, with
// Docker's refusals of what the other container's network decides.
func (m *Manager) checkContainerNetwork(cfg *containertypes.Config, host *containertypes.HostConfig) error {
	ref := host.NetworkMode.ConnectedContainer()
	if ref == "" {
		return errdefs.InvalidParameter(errors.New("invalid network mode: container: needs a container name or ID"))
	}
	if _, err := m.records.get(ref); err != nil {
		return err
	}
	switch {
	case cfg.Hostname != "":
		return errdefs.InvalidParameter(errors.New("conflicting options: hostname and the network mode"))
	case len(host.ExtraHosts) > 0:
		return errdefs.InvalidParameter(errors.New("conflicting options: custom host-to-IP mapping and the network mode"))
	case len(host.DNS) > 0 || len(host.DNSSearch) > 0 || len(host.DNSOptions) > 0:
		return errdefs.InvalidParameter(errors.New("conflicting options: dns and the network mode"))
	case len(host.PortBindings) > 0 || host.PublishAllPorts:
		return errdefs.InvalidParameter(errors.New("conflicting options: port publishing and the container type network mode"))
	}
	return nil
}

// sharedSandbox is the sandbox of a container run with --network
// container:NAME: the other container's namespace (it must run) and its
// /etc files; the hostname is the other one's too.
func (m *Manager) sharedSandbox(c *Container) (*network.Sandbox, string, error) {
	other, err := m.records.get(c.HostConfig.NetworkMode.ConnectedContainer())
	if err != nil {
		return nil, "", err
	}
	if other.ID == c.ID {
		return nil, "", errdefs.InvalidParameter(errors.New("cannot join own network"))
	}
	if other.State.Status != StatusRunning && other.State.Status != StatusPaused {
		return nil, "", errdefs.Conflict(fmt.Errorf("cannot join network of a non running container: %s", other.ID))
	}
	sb := &network.Sandbox{NetnsPath: fmt.Sprintf("/proc/%d/ns/net", other.State.Pid), Files: map[string]string{}}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		p := filepath.Join(m.dir(other.ID), f)
		if _, err := os.Stat(p); err == nil {
			sb.Files["/etc/"+f] = p
		}
	}
	hostname := other.Config.Hostname
	if hostname == "" {
		hostname = other.ID[:12]
	}
	return sb, hostname, nil
}
