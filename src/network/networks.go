package network

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/network/ipam"
	"github.com/balena-os/balena-engine/src/network/link"
	"github.com/balena-os/balena-engine/src/randid"
	networktypes "github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

// Docker's bridge driver options.
const (
	optBridgeName  = "com.docker.network.bridge.name"
	optDefault     = "com.docker.network.bridge.default_bridge"
	optICC         = "com.docker.network.bridge.enable_icc"
	optMasq        = "com.docker.network.bridge.enable_ip_masquerade"
	optHostBinding = "com.docker.network.bridge.host_binding_ipv4"
	optMTU         = "com.docker.network.driver.mtu"
)

func optBool(o map[string]string, k string, def bool) bool {
	if v, ok := o[k]; ok {
		b, err := strconv.ParseBool(v)
		if err == nil {
			return b
		}
	}
	return def
}

func (m *Manager) mtu(n *Network) int {
	if v, err := strconv.Atoi(n.Options[optMTU]); err == nil && v > 0 {
		return v
	}
	return m.opts.MTU
}

// predefine records the host, none and (unless -b none) default bridge
// networks the first time, and the default bridge's settings from the
// daemon's flags every time.
func (m *Manager) predefine() error {
	return m.db.Update(func(tx *bolt.Tx) error {
		nets, err := m.allNetworks(tx)
		if err != nil {
			return err
		}
		byName := map[string]*Network{}
		for _, n := range nets {
			byName[n.Name] = n
		}
		mk := func(name, driver string) *Network {
			if n := byName[name]; n != nil {
				return n
			}
			return &Network{Network: networktypes.Network{Name: name, ID: randid.Hex(32), Created: time.Now(), Scope: "local",
				Driver: driver, EnableIPv4: driver == DriverBridge, IPAM: networktypes.IPAM{Driver: "default", Config: []networktypes.IPAMConfig{}},
				Options: map[string]string{}, Labels: map[string]string{}}}
		}
		for _, n := range []*Network{mk(NameHost, DriverHost), mk(NameNone, DriverNull)} {
			if err := putJSON(tx, bucketNetworks, n.ID, n); err != nil {
				return err
			}
		}
		if m.opts.Bridge == "none" {
			if n := byName[NameBridge]; n != nil {
				return tx.Bucket(bucketNetworks).Delete([]byte(n.ID))
			}
			return nil
		}
		n := mk(NameBridge, DriverBridge)
		n.Default, n.Device = true, m.opts.Bridge
		if err := m.defaultBridgeIPAM(n, nets); err != nil {
			return err
		}
		n.EnableIPv6 = m.opts.IPv6
		if m.opts.IPv6 {
			sub := m.opts.FixedCIDRv6
			if !sub.IsValid() {
				sub = ulaSubnet(n.ID)
			}
			n.IPAM.Config = append(n.IPAM.Config, networktypes.IPAMConfig{Subnet: sub.Masked(), Gateway: ipam.DefaultGateway(sub)})
		}
		n.Options = map[string]string{optDefault: "true", optBridgeName: m.opts.Bridge, optICC: strconv.FormatBool(m.opts.ICC),
			optMasq: strconv.FormatBool(m.opts.IPMasq), optHostBinding: "0.0.0.0", optMTU: strconv.Itoa(max(m.opts.MTU, 1500))}
		return putJSON(tx, bucketNetworks, n.ID, n)
	})
}

// defaultBridgeIPAM decides the default bridge's subnet: --bip; else the
// address of an existing bridge device (-b balena0 made by the OS); else
// the one it had; else the first free default subnet.
func (m *Manager) defaultBridgeIPAM(n *Network, others []*Network) error {
	var gw netip.Prefix
	switch {
	case m.opts.BIP.IsValid():
		gw = m.opts.BIP
	default:
		if addrs, err := link.BridgeAddrs(m.opts.Bridge); err == nil {
			for _, a := range addrs {
				if a.Addr().Is4() {
					gw = a
					break
				}
			}
		}
	}
	if !gw.IsValid() && len(n.IPAM.Config) > 0 && n.IPAM.Config[0].Subnet.IsValid() {
		n.IPAM.Config = n.IPAM.Config[:1] // as before; IPv6 is decided anew
		return nil
	}
	if !gw.IsValid() {
		var taken []netip.Prefix
		for _, o := range others {
			if o.Name != NameBridge {
				for _, r := range o.ranges() {
					taken = append(taken, r.Subnet)
				}
			}
		}
		taken = append(taken, hostPrefixes()...)
		sub, err := ipam.PickSubnet(m.opts.Pools, taken)
		if err != nil {
			return err
		}
		gw = netip.PrefixFrom(ipam.DefaultGateway(sub), sub.Bits())
	}
	cfg := networktypes.IPAMConfig{Subnet: gw.Masked(), Gateway: gw.Addr()}
	if m.opts.FixedCIDR.IsValid() {
		cfg.IPRange = m.opts.FixedCIDR
	}
	n.IPAM.Config = []networktypes.IPAMConfig{cfg}
	return nil
}

// restore makes every bridge network's device exist with its gateway
// address, and the firewall match the records.
func (m *Manager) restore() error {
	var nets []*Network
	if err := m.db.View(func(tx *bolt.Tx) (err error) { nets, err = m.allNetworks(tx); return err }); err != nil {
		return err
	}
	for _, n := range nets {
		if err := m.ensureDevice(n); err != nil {
			return err
		}
	}
	if m.opts.IPForward {
		was, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err := link.SetSysctl("net/ipv4/ip_forward", "1"); err != nil {
			m.log.Warn("cannot enable IP forwarding", "err", err)
		} else if strings.TrimSpace(string(was)) == "0" {
			// Forwarding is the engine's doing: as Docker, the host then
			// forwards only what the rules accept.
			if d, ok := m.fw.(interface{ DropForwarded() error }); ok {
				if err := d.DropForwarded(); err != nil {
					m.log.Warn("cannot set the FORWARD policy to DROP", "err", err)
				}
			}
		}
	}
	return m.applyFirewall()
}

// ensureDevice makes a bridge network's device: up, with the gateway's
// address, and (for published ports on the host's 127.0.0.1)
// route_localnet.
func (m *Manager) ensureDevice(n *Network) error {
	rs := n.ranges()
	if n.Device == "" || len(rs) == 0 || n.ConfigOnly {
		return nil
	}
	gw := netip.PrefixFrom(rs[0].Gateway, rs[0].Subnet.Bits())
	if _, err := link.EnsureBridge(n.Device, gw, m.mtu(n)); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if r6 := n.ranges6(); len(r6) > 0 {
		if _, err := link.EnsureBridge(n.Device, netip.PrefixFrom(r6[0].Gateway, r6[0].Subnet.Bits()), m.mtu(n)); err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		if m.opts.IPForward {
			was, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
			if err := link.SetSysctl("net/ipv6/conf/all/forwarding", "1"); err != nil {
				m.log.Warn("cannot enable IPv6 forwarding", "err", err)
			} else if strings.TrimSpace(string(was)) == "0" {
				if d, ok := m.fw.(interface{ DropForwarded6() error }); ok {
					if err := d.DropForwarded6(); err != nil {
						m.log.Warn("cannot set the IPv6 FORWARD policy to DROP", "err", err)
					}
				}
			}
		}
	}
	if err := link.SetSysctl("net/ipv4/conf/"+n.Device+"/route_localnet", "1"); err != nil {
		m.log.Warn("published ports will not answer on 127.0.0.1", "bridge", n.Device, "err", err)
	}
	return nil
}

// Lookup finds a network by full ID, name, or unique ID prefix, as Docker
// does.
func (m *Manager) Lookup(ref string) (*Network, error) {
	var out *Network
	err := m.db.View(func(tx *bolt.Tx) (err error) { out, err = m.lookup(tx, ref); return err })
	return out, err
}

func (m *Manager) lookup(tx *bolt.Tx, ref string) (*Network, error) {
	nets, err := m.allNetworks(tx)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.ID == ref {
			return n, nil
		}
	}
	for _, n := range nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *Network
	for _, n := range nets {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			if found != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix)", ref, 2))
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Errorf("network %s not found", ref))
	}
	return found, nil
}

// List returns every network.
func (m *Manager) List() ([]*Network, error) {
	var out []*Network
	err := m.db.View(func(tx *bolt.Tx) (err error) { out, err = m.allNetworks(tx); return err })
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// Inspect is a network with its connected containers, as GET
// /networks/{id} shows it.
func (m *Manager) Inspect(ref string) (*networktypes.Inspect, error) {
	var out *networktypes.Inspect
	err := m.db.View(func(tx *bolt.Tx) error {
		n, err := m.lookup(tx, ref)
		if err != nil {
			return err
		}
		out = &networktypes.Inspect{Network: n.Network, Containers: map[string]networktypes.EndpointResource{}}
		sbs, err := m.allSandboxes(tx)
		if err != nil {
			return err
		}
		for _, s := range sbs {
			for _, e := range s.Endpoints {
				if e.NetworkID == n.ID {
					mac, _ := parseMAC(e.MAC)
					out.Containers[s.ContainerID] = networktypes.EndpointResource{Name: s.Name, EndpointID: e.EndpointID,
						MacAddress: mac, IPv4Address: e.Addr, IPv6Address: e.Addr6}
				}
			}
		}
		return nil
	})
	return out, err
}

// Create makes a user-defined bridge network, checking its request the
// way Docker does.
func (m *Manager) Create(req networktypes.CreateRequest) (*Network, error) {
	if req.Name == "" {
		return nil, errdefs.InvalidParameter(errors.New("invalid name: name cannot be empty"))
	}
	switch req.Driver {
	case "", DriverBridge:
	case DriverHost, DriverNull:
		return nil, errdefs.Forbidden(fmt.Errorf("only one instance of %q network is allowed", req.Driver))
	default:
		return nil, errdefs.NotImplemented(fmt.Errorf("network driver %q is not implemented: balena-engine has the bridge driver only (no overlay, macvlan, ipvlan or plugins)", req.Driver))
	}
	if req.ConfigFrom != nil && req.ConfigFrom.Network != "" {
		return nil, errdefs.NotImplemented(errors.New("networks made from a config-only network (--config-from) are not implemented"))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := &Network{Network: networktypes.Network{Name: req.Name, ID: randid.Hex(32), Created: time.Now(), Scope: "local",
		Driver: DriverBridge, EnableIPv4: true, Internal: req.Internal, Attachable: req.Attachable, ConfigOnly: req.ConfigOnly,
		Options: maps.Clone(req.Options), Labels: maps.Clone(req.Labels), IPAM: networktypes.IPAM{Driver: "default", Config: []networktypes.IPAMConfig{}}}}
	if err := checkOptions(req.Options); err != nil {
		return nil, err
	}
	// As Docker: the request's fields, else the options of the same name.
	if req.EnableIPv4 != nil {
		n.EnableIPv4 = *req.EnableIPv4
	} else if v, ok := req.Options[optEnableIPv4]; ok {
		n.EnableIPv4, _ = strconv.ParseBool(v)
	}
	if req.EnableIPv6 != nil {
		n.EnableIPv6 = *req.EnableIPv6
	} else if v, ok := req.Options[optEnableIPv6]; ok {
		n.EnableIPv6, _ = strconv.ParseBool(v)
	}
	if !n.EnableIPv4 {
		return nil, errdefs.NotImplemented(errors.New("IPv6-only networks (EnableIPv4 false) are not implemented"))
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return nil, errdefs.NotImplemented(fmt.Errorf("IPAM driver %q is not implemented: balena-engine has the default one only", req.IPAM.Driver))
		}
		if req.IPAM.Driver != "" {
			n.IPAM.Driver = req.IPAM.Driver
		}
		n.IPAM.Options = maps.Clone(req.IPAM.Options)
		n.IPAM.Config = append(n.IPAM.Config, req.IPAM.Config...)
	}
	if v, ok := n.Options[optMTU]; ok {
		if mtu, err := strconv.Atoi(v); err != nil || mtu < 68 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid MTU %q", v))
		}
	}
	err := m.db.Update(func(tx *bolt.Tx) error {
		nets, err := m.allNetworks(tx)
		if err != nil {
			return err
		}
		var taken []netip.Prefix
		for _, o := range nets {
			if o.Name == req.Name {
				return errdefs.Conflict(fmt.Errorf("network with name %s already exists", req.Name))
			}
			if o.ConfigOnly {
				continue
			}
			for _, r := range o.ranges() {
				taken = append(taken, r.Subnet)
			}
			if dev := n.Options[optBridgeName]; dev != "" && dev == o.Device {
				return errdefs.Conflict(fmt.Errorf("bridge name %s is used by network %s", dev, o.Name))
			}
		}
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is6() && !n.EnableIPv6 {
				return errdefs.InvalidParameter(errors.New("an IPv6 subnet needs an IPv6 network (--ipv6, EnableIPv6)"))
			}
		}
		for _, o := range nets {
			if !o.ConfigOnly {
				for _, r := range o.ranges6() {
					taken = append(taken, r.Subnet)
				}
			}
		}
		for _, r := range n.ranges6() {
			if err := r.Validate(); err != nil {
				return errdefs.InvalidParameter(err)
			}
			if _, ok := ipam.Overlaps(r.Subnet, taken); ok && !n.ConfigOnly {
				return errdefs.Forbidden(errors.New("Pool overlaps with other one on this address space")) //lint:ignore ST1005 Docker's wording
			}
			taken = append(taken, r.Subnet)
		}
		rs := n.ranges()
		for _, c := range n.IPAM.Config {
			if !c.Subnet.IsValid() {
				return errdefs.InvalidParameter(errors.New("invalid network config: a subnet is needed for an IP range or gateway"))
			}
		}
		for _, r := range rs {
			if err := r.Validate(); err != nil {
				return errdefs.InvalidParameter(err)
			}
			if !n.ConfigOnly {
				if _, ok := ipam.Overlaps(r.Subnet, taken); ok {
					return errdefs.Forbidden(errors.New("Pool overlaps with other one on this address space")) //lint:ignore ST1005 Docker's wording
				}
			}
			taken = append(taken, r.Subnet)
		}
		if len(rs) == 0 && !n.ConfigOnly {
			sub, err := ipam.PickSubnet(m.opts.Pools, append(taken, hostPrefixes()...))
			if err != nil {
				return errdefs.Forbidden(err)
			}
			n.IPAM.Config = append([]networktypes.IPAMConfig{{Subnet: sub, Gateway: ipam.DefaultGateway(sub)}}, n.IPAM.Config...)
		}
		if n.EnableIPv6 && len(n.ranges6()) == 0 && !n.ConfigOnly {
			// As Docker: a unique local /64 when none is given, here from
			// the network's ID (the first 40 bits of a /48's global ID).
			sub := ulaSubnet(n.ID)
			if _, ok := ipam.Overlaps(sub, taken); ok {
				return errdefs.Forbidden(errors.New("Pool overlaps with other one on this address space")) //lint:ignore ST1005 Docker's wording
			}
			n.IPAM.Config = append(n.IPAM.Config, networktypes.IPAMConfig{Subnet: sub, Gateway: ipam.DefaultGateway(sub)})
		}
		if !n.ConfigOnly {
			n.Device = n.Options[optBridgeName]
			if n.Device == "" {
				n.Device = "br-" + n.ID[:12]
			}
		}
		return putJSON(tx, bucketNetworks, n.ID, n)
	})
	if err != nil {
		return nil, err
	}
	if err := m.ensureDevice(n); err != nil {
		m.removeRecord(n)
		return nil, err
	}
	if err := m.applyFirewall(); err != nil {
		m.removeRecord(n)
		return nil, err
	}
	return n, nil
}

func (m *Manager) removeRecord(n *Network) {
	m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Delete([]byte(n.ID)) })
	if n.Device != "" && !n.Default {
		link.RemoveBridge(n.Device)
	}
	m.applyFirewall()
}

// Remove deletes a user-defined network that no container uses.
func (m *Manager) Remove(ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.Lookup(ref)
	if err != nil {
		return err
	}
	if n.Name == NameBridge || n.Name == NameHost || n.Name == NameNone {
		return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	busy := false
	if err := m.db.View(func(tx *bolt.Tx) error {
		sbs, err := m.allSandboxes(tx)
		for _, s := range sbs {
			for _, e := range s.Endpoints {
				busy = busy || e.NetworkID == n.ID
			}
		}
		return err
	}); err != nil {
		return err
	}
	if busy {
		return errdefs.Forbidden(fmt.Errorf("error while removing network: network %s id %s has active endpoints", n.Name, n.ID))
	}
	if err := m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Delete([]byte(n.ID)) }); err != nil {
		return err
	}
	if err := m.applyFirewall(); err != nil {
		m.log.Warn("firewall after a network's removal", "network", n.Name, "err", err)
	}
	if n.Device != "" {
		if err := link.RemoveBridge(n.Device); err != nil {
			m.log.Warn("bridge of a removed network", "network", n.Name, "err", err)
		}
	}
	return nil
}

// Predefined says whether a network is one of bridge, host and none.
func Predefined(n *Network) bool {
	return n.Name == NameBridge || n.Name == NameHost || n.Name == NameNone
}

// ulaSubnet is a network's unique local IPv6 /64 when none is given, as
// Docker picks one: here from the network's ID (the first 40 bits of a
// /48's global ID).
func ulaSubnet(id string) netip.Prefix {
	b, _ := hex.DecodeString(id[:10])
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, b[0], b[1], b[2], b[3], b[4]}), 64)
}
