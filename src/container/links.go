package container

import (
	"errors"
	"fmt"
	"slices"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/network"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
)

// linksDeprecated is Docker's warning at the create of a container with
// legacy links.
const linksDeprecated = "Links on the default bridge network are deprecated and will be removed in a future release. Use a custom network instead."

// checkLinks checks --link (HostConfig.Links) at create, as Docker does.
// On the default bridge they are legacy links: the containers named must
// exist (and not be on the host's network), and the linking container's
// /etc/hosts gets their addresses at start. On a user-defined network
// Docker ignores them there and the docker CLI sends them as the
// endpoint's links too; so they are made the endpoint's links (names
// only this container resolves), for the clients that send them only
// here (Compose 1.29's one-off containers).
func (m *Manager) checkLinks(host *containertypes.HostConfig, eps *map[string]*networktypes.EndpointSettings) (warnings []string, err error) {
	if len(host.Links) == 0 {
		return nil, nil
	}
	mode := host.NetworkMode
	for _, l := range host.Links {
		if _, _, err := network.ParseLink(l); err != nil {
			return nil, err
		}
	}
	switch {
	case mode.IsHost():
		return nil, errdefs.InvalidParameter(errors.New("conflicting options: host type networking can't be used with links. This would result in undefined behavior"))
	case mode.IsContainer():
		return nil, errdefs.InvalidParameter(errors.New("conflicting options: container type network can't be used with links. This would result in undefined behavior"))
	case mode.IsNone():
		// Docker keeps them and they do nothing: there is no network.
		return nil, errdefs.InvalidParameter(errors.New("conflicting options: none type networking can't be used with links. This would result in undefined behavior"))
	case mode.IsUserDefined():
		if *eps == nil {
			*eps = map[string]*networktypes.EndpointSettings{}
		}
		ep := (*eps)[string(mode)]
		if ep == nil {
			ep = &networktypes.EndpointSettings{}
			(*eps)[string(mode)] = ep
		}
		for _, l := range host.Links {
			if !slices.Contains(ep.Links, l) {
				ep.Links = append(ep.Links, l)
			}
		}
		return nil, nil
	}
	for _, l := range host.Links {
		name, _, _ := network.ParseLink(l)
		if _, err := m.linkedContainer(name); err != nil {
			return nil, err
		}
	}
	return []string{linksDeprecated}, nil
}

// linkedContainer is the container a legacy link names, through the
// containers whose network it shares (Docker's words for the refusals).
func (m *Manager) linkedContainer(name string) (*Container, error) {
	child, err := m.records.get(name)
	for range 100 { // a loop of container: modes is not followed for ever
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("could not get container for %s: %w", name, err))
		}
		if !child.HostConfig.NetworkMode.IsContainer() {
			break
		}
		name = child.HostConfig.NetworkMode.ConnectedContainer()
		child, err = m.records.get(name)
	}
	if child.HostConfig.NetworkMode.IsHost() {
		return nil, errdefs.InvalidParameter(errors.New("conflicting options: host type networking can't be used with links. This would result in undefined behavior"))
	}
	return child, nil
}

// linkHosts are a container's legacy links as /etc/hosts entries
// ("NAMES:ADDRESS", as --add-host's): each linked container's addresses
// on the default bridge under the link's alias, its host name and its
// name. It must run, as Docker requires.
func (m *Manager) linkHosts(c *Container) ([]string, error) {
	mode := c.HostConfig.NetworkMode
	if len(c.HostConfig.Links) == 0 || !(mode.IsDefault() || mode.IsBridge() || mode == "") {
		return nil, nil
	}
	var out []string
	for _, l := range c.HostConfig.Links {
		name, alias, err := network.ParseLink(l)
		if err != nil {
			return nil, err
		}
		child, err := m.linkedContainer(name)
		if err != nil {
			return nil, err
		}
		if child.State.Status != StatusRunning && child.State.Status != StatusPaused {
			return nil, fmt.Errorf("Cannot link to a non running container: /%s AS /%s/%s", child.Name, c.Name, alias) //lint:ignore ST1005 Docker's wording
		}
		v4, v6 := m.opts.Network.EndpointAddrs(child.ID, network.NameBridge)
		if !v4.IsValid() {
			return nil, fmt.Errorf("Cannot link to /%s, as it does not belong to the default network", child.Name) //lint:ignore ST1005 Docker's wording
		}
		names := alias + " " + defaultHostname(child.Config, child.HostConfig, child.ID)
		if alias != child.Name {
			names += " " + child.Name
		}
		out = append(out, names+":"+v4.String())
		if v6.IsValid() {
			out = append(out, names+":"+v6.String())
		}
	}
	return out, nil
}
