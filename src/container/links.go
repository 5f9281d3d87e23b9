package container

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
// name; and the linked containers with their exposed ports, which the
// firewall opens to this one where the bridge's ICC is off. Each must
// run, as Docker requires.
func (m *Manager) linkHosts(c *Container) ([]string, []network.LegacyLink, error) {
	mode := c.HostConfig.NetworkMode
	if len(c.HostConfig.Links) == 0 || !(mode.IsDefault() || mode.IsBridge() || mode == "") {
		return nil, nil, nil
	}
	var out []string
	var links []network.LegacyLink
	for _, l := range c.HostConfig.Links {
		name, alias, err := network.ParseLink(l)
		if err != nil {
			return nil, nil, err
		}
		child, err := m.linkedContainer(name)
		if err != nil {
			return nil, nil, err
		}
		if child.State.Status != StatusRunning && child.State.Status != StatusPaused {
			return nil, nil, fmt.Errorf("Cannot link to a non running container: /%s AS /%s/%s", child.Name, c.Name, alias) //lint:ignore ST1005 Docker's wording
		}
		v4, v6 := m.opts.Network.EndpointAddrs(child.ID, network.NameBridge)
		if !v4.IsValid() {
			return nil, nil, fmt.Errorf("Cannot link to /%s, as it does not belong to the default network", child.Name) //lint:ignore ST1005 Docker's wording
		}
		links = append(links, network.LegacyLink{ContainerID: child.ID, Exposed: child.Config.ExposedPorts})
		names := linkNames(alias, child)
		out = append(out, names+":"+v4.String())
		if v6.IsValid() {
			out = append(out, names+":"+v6.String())
		}
	}
	return out, links, nil
}

// linkNames are the names of a legacy link's /etc/hosts entries: the
// alias, the linked container's host name and its name.
func linkNames(alias string, child *Container) string {
	names := alias + " " + defaultHostname(child.Config, child.HostConfig, child.ID)
	if alias != child.Name {
		names += " " + child.Name
	}
	return names
}

// updateLinkers rewrites the legacy links to c in the /etc/hosts of each
// running container that has one: c has just started, on an address of
// the default bridge that may not be the one written there when that
// container started (Docker rewrites them likewise). The file is
// rewritten in place: the container sees it through a bind mount.
func (m *Manager) updateLinkers(c *Container) {
	v4, v6 := m.opts.Network.EndpointAddrs(c.ID, network.NameBridge)
	all, err := m.records.list()
	if !v4.IsValid() || err != nil {
		return
	}
	for _, p := range all {
		if p.ID == c.ID || (p.State.Status != StatusRunning && p.State.Status != StatusPaused) {
			continue
		}
		for _, l := range p.HostConfig.Links {
			name, alias, err := network.ParseLink(l)
			if err != nil {
				continue
			}
			if child, err := m.linkedContainer(name); err != nil || child.ID != c.ID {
				continue
			}
			path := filepath.Join(m.dir(p.ID), "hosts")
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			// Each of the link's lines gets the new address of its
			// family, in place.
			names := linkNames(alias, c)
			var out []string
			for _, line := range strings.SplitAfter(string(b), "\n") {
				ip, n, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
				if ok && n == names {
					line = ""
					if old, err := netip.ParseAddr(ip); err == nil && old.Is6() && v6.IsValid() {
						line = v6.String() + "\t" + names + "\n"
					} else if err == nil && old.Is4() {
						line = v4.String() + "\t" + names + "\n"
					}
				}
				out = append(out, line)
			}
			if err := os.WriteFile(path, []byte(strings.Join(out, "")), 0o644); err != nil {
				m.log.Warn("legacy link: rewriting /etc/hosts", "container", p.ID, "err", err)
			}
		}
	}
}
