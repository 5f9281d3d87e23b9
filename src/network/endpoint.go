package network

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	networktypes "github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

// The endpoint driver options Docker's bridge endpoints take.
const (
	optEndpointIfname  = "com.docker.network.endpoint.ifname"
	optEndpointSysctls = "com.docker.network.endpoint.sysctls"
)

// ParseLink reads a link as Docker's opts.ParseLink does: "name:alias",
// "name" (the alias is the name), or inspect's "/name:/parent/alias".
func ParseLink(val string) (name, alias string, err error) {
	if val == "" {
		return "", "", errdefs.InvalidParameter(errors.New("empty string specified for links"))
	}
	arr := strings.Split(val, ":")
	switch {
	case len(arr) > 2:
		return "", "", errdefs.InvalidParameter(errors.New("bad format for links: " + val))
	case len(arr) == 1:
		return val, val, nil
	case strings.HasPrefix(arr[0], "/"):
		_, alias := path.Split(arr[1])
		return arr[0][1:], alias, nil
	}
	return arr[0], arr[1], nil
}

// checkEndpoint refuses, at create and connect, the endpoint settings
// Docker refuses (in its words) and those the engine cannot honour.
func checkEndpoint(n *Network, cfg *networktypes.EndpointSettings) error {
	if cfg == nil {
		return nil
	}
	for _, l := range cfg.Links {
		if _, _, err := ParseLink(l); err != nil {
			return err
		}
		if n.Default {
			// The default bridge has no name resolution to put them in;
			// its legacy links are HostConfig.Links.
			return errdefs.InvalidParameter(fmt.Errorf("links in the endpoint settings are supported on user-defined networks only (network %s): use HostConfig.Links (--link) on the default bridge", n.Name))
		}
	}
	if c := cfg.IPAMConfig; c != nil {
		for _, a := range c.LinkLocalIPs {
			if !a.IsValid() || a.IsUnspecified() {
				return errdefs.InvalidParameter(fmt.Errorf("invalid endpoint settings:\ninvalid link-local IP address: %s", a))
			}
			if !a.Unmap().IsLinkLocalUnicast() {
				return errdefs.InvalidParameter(fmt.Errorf("invalid link local IP address: %s", a))
			}
		}
	}
	keys := make([]string, 0, len(cfg.DriverOpts))
	for k := range cfg.DriverOpts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := cfg.DriverOpts[k]
		switch k {
		case optEndpointIfname:
			if len(v) > 15 || v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/ \t\n:") {
				return errdefs.InvalidParameter(fmt.Errorf("invalid endpoint settings:\ninvalid interface name %q", v))
			}
		case optEndpointSysctls:
			for _, sc := range strings.Split(v, ",") {
				name, _, ok := strings.Cut(sc, "=")
				f := strings.SplitN(name, ".", 5)
				if !ok || len(f) != 5 || f[0] != "net" || (f[1] != "ipv4" && f[1] != "ipv6" && f[1] != "mpls") || (f[3] != "IFNAME" && f[3] != "ifname") || strings.Contains(f[4], "/") {
					return errdefs.InvalidParameter(fmt.Errorf("invalid endpoint settings:\nunrecognised network interface sysctl '%s'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'", sc))
				}
			}
		default:
			return errdefs.NotImplemented(fmt.Errorf("endpoint driver option %q is not implemented (the bridge driver takes %s and %s)", k, optEndpointIfname, optEndpointSysctls))
		}
	}
	return nil
}

// endpointSysctls are the sysctls option's settings of the interface
// named ifName, as paths under /proc/sys.
func endpointSysctls(cfg *networktypes.EndpointSettings, ifName string) map[string]string {
	if cfg == nil || cfg.DriverOpts[optEndpointSysctls] == "" {
		return nil
	}
	out := map[string]string{}
	for _, sc := range strings.Split(cfg.DriverOpts[optEndpointSysctls], ",") {
		k, v, _ := strings.Cut(sc, "=")
		f := strings.SplitN(k, ".", 5)
		f[3] = ifName
		out[strings.Join(f, "/")] = v
	}
	return out
}

// linkLocal is the endpoint's link-local addresses with Docker's prefix
// lengths (/16, /64).
func linkLocal(cfg *networktypes.EndpointSettings) []netip.Prefix {
	if cfg == nil || cfg.IPAMConfig == nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range cfg.IPAMConfig.LinkLocalIPs {
		a = a.Unmap()
		bits := 16
		if a.Is6() {
			bits = 64
		}
		out = append(out, netip.PrefixFrom(a, bits))
	}
	return out
}

// gwPriority is the gateway priority an endpoint was given.
func gwPriority(cfg *networktypes.EndpointSettings) int {
	if cfg == nil {
		return 0
	}
	return cfg.GwPriority
}

// ifName is the interface name an endpoint asked for, "" for the next ethN.
func ifName(cfg *networktypes.EndpointSettings) string {
	if cfg == nil {
		return ""
	}
	return cfg.DriverOpts[optEndpointIfname]
}

// EndpointAddrs are a container's addresses on a network (by name or
// ID) while it runs, from its sandbox; zero when it has none there.
func (m *Manager) EndpointAddrs(containerID, network string) (v4, v6 netip.Addr) {
	m.db.View(func(tx *bolt.Tx) error {
		sb, err := m.getSandbox(tx, containerID)
		if err != nil || sb == nil {
			return err
		}
		n, err := m.lookup(tx, network)
		if err != nil {
			return err
		}
		for _, e := range sb.Endpoints {
			if e.NetworkID == n.ID {
				v4, v6 = e.Addr.Addr(), e.Addr6.Addr()
			}
		}
		return nil
	})
	return v4, v6
}
