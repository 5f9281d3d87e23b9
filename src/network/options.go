package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// More of Docker's bridge driver options and network labels.
const (
	optIfacePrefix = "com.docker.network.container_iface_prefix"
	optEnableIPv4  = "com.docker.network.enable_ipv4"
	optEnableIPv6  = "com.docker.network.enable_ipv6"
	optGwMode4     = "com.docker.network.bridge.gateway_mode_ipv4"
	optGwMode6     = "com.docker.network.bridge.gateway_mode_ipv6"
	optInhibit4    = "com.docker.network.bridge.inhibit_ipv4"
	optTrusted     = "com.docker.network.bridge.trusted_host_interfaces"
	optHostIPv4    = "com.docker.network.host_ipv4"
	optHostIPv6    = "com.docker.network.host_ipv6"
)

// checkOptions reads a new network's driver options as Docker's bridge
// driver does: each is applied (the bridge's name, MTU, ICC, masquerade,
// the default host address of published ports, the containers' interface
// prefix, IPv4 and IPv6), or has its default value, or is refused; never
// kept and ignored. A value the driver cannot read is Docker's 400; one
// the engine does not do, 501 naming it; an option the bridge driver does
// not have, 400 (Docker keeps those, and ignores them).
func checkOptions(opts map[string]string) error {
	for k, v := range opts {
		bad := func(why string) error {
			return errdefs.InvalidParameter(fmt.Errorf("failed to parse %s value: %v (%s)", k, v, why))
		}
		notYet := func() error {
			return errdefs.NotImplemented(fmt.Errorf("network option %s=%s is not implemented (balena-engine's bridge driver does not do it)", k, v))
		}
		switch k {
		case optBridgeName, optIfacePrefix:
		case optMTU:
			if _, err := strconv.Atoi(v); err != nil {
				return bad(err.Error())
			}
		case optICC, optMasq, optEnableIPv4, optEnableIPv6:
			if _, err := strconv.ParseBool(v); err != nil {
				return bad(err.Error())
			}
		case optDefault, optInhibit4:
			on, err := strconv.ParseBool(v)
			if err != nil {
				return bad(err.Error())
			}
			if on {
				return notYet()
			}
		case optHostBinding:
			if _, err := netip.ParseAddr(v); err != nil {
				return bad("nil ip")
			}
		case optHostIPv4, optHostIPv6:
			if _, err := netip.ParseAddr(v); err != nil {
				return bad("nil ip")
			}
			return notYet()
		case optGwMode4, optGwMode6:
			switch v {
			case "nat":
			case "nat-unprotected", "routed", "isolated":
				return notYet()
			default:
				return bad("unknown gateway mode " + v)
			}
		case optTrusted:
			if strings.Trim(v, ":") != "" {
				return notYet()
			}
		default:
			return errdefs.InvalidParameter(fmt.Errorf("network option %q is not an option of the bridge driver", k))
		}
	}
	return nil
}

// ifacePrefix is the name the containers' interfaces on n take, numbered
// from 0 (Docker's container_iface_prefix; eth by default).
func ifacePrefix(n *Network) string {
	if p := n.Options[optIfacePrefix]; p != "" {
		return p
	}
	return "eth"
}

// hostBinding is the host address a port published on n without one is
// bound to (Docker's host_binding_ipv4); invalid for every address.
func hostBinding(n *Network) netip.Addr {
	a, err := netip.ParseAddr(n.Options[optHostBinding])
	if err != nil || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}
