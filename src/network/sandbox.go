package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/network/firewall"
	"github.com/balena-os/balena-engine/src/network/ipam"
	"github.com/balena-os/balena-engine/src/network/link"
	"github.com/balena-os/balena-engine/src/network/netns"
	"github.com/balena-os/balena-engine/src/randid"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

// JoinRequest is what a container's start asks of networking.
type JoinRequest struct {
	ContainerID string
	Name        string
	Hostname    string
	Domainname  string
	Mode        containertypes.NetworkMode
	// Endpoints are the container's networks (NetworkingConfig, keyed by
	// network name or ID); the one Mode names is joined first.
	Endpoints    map[string]*networktypes.EndpointSettings
	PortBindings networktypes.PortMap
	Exposed      networktypes.PortSet
	PublishAll   bool
	ExtraHosts   []string
	DNS          []string
	DNSSearch    []string
	DNSOptions   []string
	// Dir is where the container's /etc files are written.
	Dir string
	// Links are the container's legacy links on the default bridge: with
	// ICC off there, the firewall lets it reach their exposed ports.
	Links []LegacyLink
}

// LegacyLink is a legacy link's other container and its exposed ports.
type LegacyLink struct {
	ContainerID string
	Exposed     networktypes.PortSet
}

// Sandbox is what the container's runtime needs: the network namespace
// to join ("" for a private empty one, or none for the host's) and the
// files to bind over /etc/hostname, /etc/hosts and /etc/resolv.conf.
type Sandbox struct {
	NetnsPath string
	Files     map[string]string
}

// IsBridged says whether mode puts a container on a bridge network (the
// default one, or a user-defined one named by mode).
func IsBridged(mode containertypes.NetworkMode) bool {
	return !mode.IsHost() && !mode.IsNone() && !mode.IsContainer()
}

// primary is the network name mode names.
func primary(mode containertypes.NetworkMode) string {
	if mode == "" || mode.IsDefault() {
		return NameBridge
	}
	return string(mode)
}

// CheckCreate validates a container's networking at create: its networks
// exist and a static address is one it can have.
func (m *Manager) CheckCreate(mode containertypes.NetworkMode, eps map[string]*networktypes.EndpointSettings) error {
	if !IsBridged(mode) {
		return nil // container:NAME is the container code's to check
	}
	names := []string{primary(mode)}
	for k := range eps {
		if k != primary(mode) {
			names = append(names, k)
		}
	}
	for _, name := range names {
		n, err := m.Lookup(name)
		if errdefs.KindOf(err) == errdefs.KindNotFound && name == NameBridge {
			return errdefs.InvalidParameter(errors.New("the default bridge network is disabled (the daemon runs with --bridge=none): choose a network with --network"))
		}
		if err != nil {
			return err
		}
		if n.ConfigOnly {
			return errdefs.Forbidden(fmt.Errorf("cannot attach to network %s: it is a config-only network", n.Name))
		}
		if n.Driver != DriverBridge && len(names) > 1 {
			return errdefs.InvalidParameter(fmt.Errorf("container cannot be connected to network %s and others", n.Name))
		}
		if ep := eps[name]; ep != nil && ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
			if n.Default {
				return errdefs.InvalidParameter(errors.New("user specified IP address is supported on user defined networks only"))
			}
			if !inRanges(n.ranges(), ep.IPAMConfig.IPv4Address) {
				return errdefs.InvalidParameter(fmt.Errorf("no configured subnet or ip-range contain the IP address %s", ep.IPAMConfig.IPv4Address))
			}
		}
		if ep := eps[name]; ep != nil && ep.IPAMConfig != nil && ep.IPAMConfig.IPv6Address.IsValid() && !inRanges(n.ranges6(), ep.IPAMConfig.IPv6Address) {
			return errdefs.InvalidParameter(fmt.Errorf("no configured subnet or ip-range contain the IP address %s", ep.IPAMConfig.IPv6Address))
		}
		if ep := eps[name]; ep != nil && len(ep.Aliases) > 0 && n.Default {
			return errdefs.InvalidParameter(errors.New("network-scoped alias is supported only for containers in user defined networks"))
		}
		if err := checkEndpoint(n, eps[name]); err != nil {
			return err
		}
	}
	return nil
}

func inRanges(rs []ipam.Range, a netip.Addr) bool {
	for _, r := range rs {
		if r.Subnet.Contains(a) {
			return true
		}
	}
	return false
}

// Join makes the container's sandbox: for a bridged container its own
// network namespace with one veth per network, its published ports, and
// its /etc files. Everything is recorded before it is made, and on any
// failure what was made is removed again.
func (m *Manager) Join(req JoinRequest) (*Sandbox, error) {
	if !IsBridged(req.Mode) {
		files, err := m.writeEtc(req, nil, nil)
		if err != nil {
			return nil, err
		}
		return &Sandbox{Files: files}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sb := &sandbox{ContainerID: req.ContainerID, Name: req.Name, Netns: m.netnsPath(req.ContainerID), Links: req.Links}
	var nets []*Network
	err := m.db.Update(func(tx *bolt.Tx) error {
		if old, err := m.getSandbox(tx, req.ContainerID); err != nil || old != nil {
			if err == nil {
				err = fmt.Errorf("container %s already has a network sandbox", req.ContainerID[:12])
			}
			return err
		}
		names := []string{primary(req.Mode)}
		for k := range req.Endpoints {
			if k != names[0] {
				names = append(names, k)
			}
		}
		slices.Sort(names[1:])
		all, err := m.allSandboxes(tx)
		if err != nil {
			return err
		}
		taken := map[string]bool{}
		for _, name := range names {
			n, err := m.lookup(tx, name)
			if err != nil {
				return err
			}
			cfg := req.Endpoints[name]
			if cfg == nil {
				cfg = req.Endpoints[n.ID]
			}
			ep, err := m.allocate(n, cfg, all, sb, req)
			if err != nil {
				return err
			}
			if ep.IfName = ifName(cfg); ep.IfName != "" {
				if taken[ep.IfName] {
					return errdefs.InvalidParameter(fmt.Errorf("interface name %s is asked for twice", ep.IfName))
				}
				taken[ep.IfName] = true
			}
			sb.Endpoints = append(sb.Endpoints, ep)
			nets = append(nets, n)
		}
		// The others are eth0, eth1, ... (or the network's
		// container_iface_prefix) in order, past the names asked for.
		for i := range sb.Endpoints {
			if sb.Endpoints[i].IfName == "" {
				name := freeIfName(taken, ifacePrefix(nets[i]))
				sb.Endpoints[i].IfName, taken[name] = name, true
			}
		}
		// One network gives the default route: the highest gateway
		// priority, as Docker's, else the first (the one the mode names);
		// an internal network gives none.
		gw := -1
		for i, n := range nets {
			if !n.Internal && (gw < 0 || gwPriority(sb.Endpoints[i].Config) > gwPriority(sb.Endpoints[gw].Config)) {
				gw = i
			}
		}
		for i := range sb.Endpoints {
			if i != gw {
				sb.Endpoints[i].Gateway, sb.Endpoints[i].Gateway6 = netip.Addr{}, netip.Addr{}
			}
		}
		if sb.Ports, err = m.bindPorts(req, sb.Endpoints[0], nets[0], all); err != nil {
			return err
		}
		for _, n := range nets {
			if !n.Default {
				sb.Upstreams = m.upstreams(req)
				break
			}
		}
		return putJSON(tx, bucketSandboxes, req.ContainerID, sb)
	})
	if err != nil {
		return nil, err
	}
	if err := m.build(sb, nets); err != nil {
		m.leave(req.ContainerID)
		return nil, err
	}
	if sb.resolved() {
		// Before the container runs: its first lookup finds the server.
		if err := m.publishDNS(false); err != nil {
			m.leave(req.ContainerID)
			return nil, fmt.Errorf("name resolution for container %s: %w", req.ContainerID[:12], err)
		}
	}
	files, err := m.writeEtc(req, sb, nets)
	if err != nil {
		m.leave(req.ContainerID)
		return nil, err
	}
	return &Sandbox{NetnsPath: sb.Netns, Files: files}, nil
}

// allocate chooses an endpoint's address (the static one asked for, or
// the first free one) and MAC.
func (m *Manager) allocate(n *Network, cfg *networktypes.EndpointSettings, all []*sandbox, sb *sandbox, req JoinRequest) (endpoint, error) {
	if n.ConfigOnly {
		return endpoint{}, errdefs.Forbidden(fmt.Errorf("cannot attach to network %s: it is a config-only network", n.Name))
	}
	if n.Driver != DriverBridge {
		return endpoint{}, errdefs.InvalidParameter(fmt.Errorf("container cannot be connected to network %s", n.Name))
	}
	rs := n.ranges()
	if len(rs) == 0 {
		return endpoint{}, fmt.Errorf("network %s has no IPv4 subnet", n.Name)
	}
	used := map[netip.Addr]bool{}
	for _, s := range append(all, sb) {
		for _, e := range s.Endpoints {
			if e.NetworkID == n.ID {
				used[e.Addr.Addr()] = true
				used[e.Addr6.Addr()] = true
			}
		}
	}
	ep := endpoint{NetworkID: n.ID, EndpointID: randid.Hex(32), Veth: "veth" + randid.Hex(4)[:7]}
	var static, static6 netip.Addr
	if cfg != nil && cfg.IPAMConfig != nil {
		static, static6 = cfg.IPAMConfig.IPv4Address, cfg.IPAMConfig.IPv6Address
	}
	var err error
	if ep.Addr, ep.Gateway, err = pickAddr(rs, static, used); err != nil {
		return ep, err
	}
	if rs6 := n.ranges6(); len(rs6) > 0 {
		if ep.Addr6, ep.Gateway6, err = pickAddr(rs6, static6, used); err != nil {
			return ep, err
		}
	} else if static6.IsValid() {
		return ep, errdefs.InvalidParameter(fmt.Errorf("no configured subnet or ip-range contain the IP address %s", static6))
	}
	addr := ep.Addr.Addr()
	mac := link.GenerateMAC(addr)
	if cfg != nil && len(cfg.MacAddress) > 0 {
		mac = net.HardwareAddr(cfg.MacAddress)
	}
	ep.MAC = mac.String()
	if cfg != nil {
		ep.Config = cfg.Copy()
		ep.Aliases = slices.Clone(cfg.Aliases)
	}
	if !n.Default {
		ep.DNSNames = append([]string{req.Name}, ep.Aliases...)
		ep.DNSNames = append(ep.DNSNames, req.ContainerID[:12])
	}
	return ep, nil
}

// build makes the namespace and the veths, and applies the firewall.
func (m *Manager) build(sb *sandbox, nets []*Network) error {
	if err := netns.Create(sb.Netns); err != nil {
		return fmt.Errorf("network namespace of container %s: %w", sb.ContainerID[:12], err)
	}
	for i, ep := range sb.Endpoints {
		n := nets[i]
		if err := m.ensureDevice(n); err != nil {
			return err
		}
		mac, _ := net.ParseMAC(ep.MAC)
		if err := link.AttachVeth(link.Veth{HostName: ep.Veth, Bridge: n.Device, NetnsPath: sb.Netns, IfName: ep.IfName,
			Addr: ep.Addr, Gateway: ep.Gateway, Addr6: ep.Addr6, Gateway6: ep.Gateway6, MAC: mac, MTU: m.mtu(n),
			LinkLocal: linkLocal(ep.Config), Sysctls: endpointSysctls(ep.Config, ep.IfName)}); err != nil {
			return fmt.Errorf("network %s for container %s: %w", n.Name, sb.ContainerID[:12], err)
		}
	}
	if len(sb.Ports) > 0 || m.inLinks(sb) {
		return m.applyFirewall()
	}
	return nil
}

// inLinks says whether sb has legacy links, or is another sandbox's link
// target: the firewall's link rules change with its addresses.
func (m *Manager) inLinks(sb *sandbox) bool {
	if len(sb.Links) > 0 {
		return true
	}
	found := false
	m.db.View(func(tx *bolt.Tx) error {
		sbs, err := m.allSandboxes(tx)
		for _, s := range sbs {
			for _, l := range s.Links {
				found = found || l.ContainerID == sb.ContainerID
			}
		}
		return err
	})
	return found
}

// Leave removes a container's sandbox: its veths, namespace, published
// ports and addresses. A container without one is left as it is.
func (m *Manager) Leave(containerID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leave(containerID)
}

func (m *Manager) leave(containerID string) error {
	var sb *sandbox
	if err := m.db.View(func(tx *bolt.Tx) (err error) { sb, err = m.getSandbox(tx, containerID); return err }); err != nil || sb == nil {
		return err
	}
	var errs []error
	for _, ep := range sb.Endpoints {
		if err := link.DetachVeth(ep.Veth); err != nil {
			errs = append(errs, err)
		}
	}
	if sb.Netns != "" {
		if err := netns.Remove(sb.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	// The record goes last: a crash before this leaves it for the next
	// start's Reconcile, which removes the rest.
	if err := m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSandboxes).Delete([]byte(containerID)) }); err != nil {
		errs = append(errs, err)
	}
	if len(sb.Ports) > 0 || m.inLinks(sb) {
		if err := m.applyFirewall(); err != nil {
			errs = append(errs, err)
		}
	}
	if sb.resolved() {
		if err := m.publishDNS(true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reconcile removes the sandboxes of containers that are not running
// (running says which are), after a crash or a power cut: their veths,
// namespaces, ports and addresses go. Running containers keep theirs.
func (m *Manager) Reconcile(running func(id string) bool) {
	var sbs []*sandbox
	if err := m.db.View(func(tx *bolt.Tx) (err error) { sbs, err = m.allSandboxes(tx); return err }); err != nil {
		m.log.Error("network sandboxes", "err", err)
		return
	}
	for _, s := range sbs {
		if running(s.ContainerID) && netns.Exists(s.Netns) {
			continue
		}
		if err := m.Leave(s.ContainerID); err != nil {
			m.log.Warn("removing the network sandbox of a stopped container", "id", s.ContainerID, "err", err)
		}
	}
}

// Settings is a container's NetworkSettings for inspect: its configured
// networks, with the addresses they have while it runs.
func (m *Manager) Settings(containerID string, mode containertypes.NetworkMode, eps map[string]*networktypes.EndpointSettings, bindings networktypes.PortMap, exposed networktypes.PortSet) *containertypes.NetworkSettings {
	out := &containertypes.NetworkSettings{Networks: map[string]*networktypes.EndpointSettings{}, Ports: networktypes.PortMap{}}
	var sb *sandbox
	var nets []*Network
	m.db.View(func(tx *bolt.Tx) error {
		sb, _ = m.getSandbox(tx, containerID)
		nets, _ = m.allNetworks(tx)
		return nil
	})
	byID := map[string]*Network{}
	for _, n := range nets {
		byID[n.ID] = n
	}
	find := func(ref string) *Network {
		for _, n := range nets {
			if n.ID == ref || n.Name == ref {
				return n
			}
		}
		return nil
	}
	names := map[string]*networktypes.EndpointSettings{}
	if IsBridged(mode) || mode.IsHost() || mode.IsNone() {
		names[primary(mode)] = eps[primary(mode)]
	}
	for k, v := range eps {
		names[k] = v
	}
	for name, cfg := range names {
		n := find(name)
		es := &networktypes.EndpointSettings{}
		if cfg != nil {
			es = cfg.Copy()
		}
		if n != nil {
			es.NetworkID = n.ID
			name = n.Name
		}
		if sb != nil && n != nil {
			for _, ep := range sb.Endpoints {
				if ep.NetworkID == n.ID {
					es.EndpointID, es.IPAddress, es.IPPrefixLen, es.Gateway = ep.EndpointID, ep.Addr.Addr(), ep.Addr.Bits(), ep.Gateway
					if gw := n.ranges(); len(gw) > 0 {
						es.Gateway = gw[0].Gateway
					}
					es.MacAddress, _ = parseMAC(ep.MAC)
					es.DNSNames = ep.DNSNames
					if ep.Addr6.IsValid() {
						es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = ep.Addr6.Addr(), ep.Addr6.Bits()
						if r6 := n.ranges6(); len(r6) > 0 {
							es.IPv6Gateway = r6[0].Gateway
						}
					}
				}
			}
		}
		out.Networks[name] = es
	}
	if sb != nil {
		out.SandboxID = containerID
		out.SandboxKey = sb.Netns
		for _, p := range sb.Ports {
			k, err := networktypes.ParsePort(p.Container)
			if err != nil {
				continue
			}
			b := networktypes.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(int(p.HostPort))}
			if !b.HostIP.IsValid() {
				b.HostIP = netip.IPv4Unspecified()
			}
			out.Ports[k] = append(out.Ports[k], b)
		}
		for k := range exposed {
			if _, ok := out.Ports[k]; !ok {
				out.Ports[k] = nil
			}
		}
	}
	return out
}

func parseMAC(s string) (networktypes.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	return networktypes.HardwareAddr(hw), err
}

// hostPrefixes are the host's routes and nameservers, which a default
// subnet must not overlap.
func hostPrefixes() []netip.Prefix {
	var out []netip.Prefix
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 8 || f[1] == "00000000" && f[7] == "00000000" { // the default route overlaps everything
				continue
			}
			dst, err1 := strconv.ParseUint(f[1], 16, 32)
			mask, err2 := strconv.ParseUint(f[7], 16, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			// /proc/net/route prints addresses in host (little-endian) order.
			a := netip.AddrFrom4([4]byte{byte(dst), byte(dst >> 8), byte(dst >> 16), byte(dst >> 24)})
			bits := 0
			for m := uint32(mask); m != 0; m &= m - 1 {
				bits++
			}
			out = append(out, netip.PrefixFrom(a, bits).Masked())
		}
	}
	for _, ns := range resolvConf(readHostResolv()).nameservers {
		if a, err := netip.ParseAddr(ns); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// freeIfName is the first name PREFIXn not taken (eth0 for the first
// network, as Docker names them).
func freeIfName(taken map[string]bool, prefix string) string {
	for i := 0; ; i++ {
		if name := prefix + strconv.Itoa(i); !taken[name] {
			return name
		}
	}
}

// Ports the firewall publishes for bindings on the container's first
// network.
func (m *Manager) bindPorts(req JoinRequest, ep endpoint, n *Network, all []*sandbox) ([]port, error) {
	type want struct {
		key      networktypes.Port
		hostIP   netip.Addr
		low, top uint16
	}
	var wants []want
	keys := make([]networktypes.Port, 0, len(req.PortBindings))
	for k := range req.PortBindings {
		keys = append(keys, k)
	}
	if req.PublishAll {
		for k := range req.Exposed {
			if _, ok := req.PortBindings[k]; !ok {
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, func(a, b networktypes.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		bs := req.PortBindings[k]
		if len(bs) == 0 {
			bs = []networktypes.PortBinding{{}}
		}
		for _, b := range bs {
			w := want{key: k, hostIP: b.HostIP}
			if !w.hostIP.IsValid() {
				w.hostIP = hostBinding(n) // the network's default, if it has one
			}
			if w.hostIP.IsValid() && w.hostIP.IsUnspecified() {
				w.hostIP = netip.Addr{}
			}
			if w.hostIP.IsValid() && w.hostIP.Is6() && !ep.Addr6.IsValid() {
				continue // an IPv6 host address for a container without IPv6, as Docker skips it
			}
			lo, hi, err := parsePortRange(b.HostPort)
			if err != nil {
				return nil, errdefs.InvalidParameter(err)
			}
			w.low, w.top = lo, hi
			wants = append(wants, w)
		}
	}
	taken := map[string]bool{}
	for _, s := range all {
		for _, p := range s.Ports {
			taken[portKey(p.Rule.Proto, p.HostIP, p.HostPort)] = true
		}
	}
	var out []port
	for _, w := range wants {
		proto := string(w.key.Proto())
		if proto != "tcp" && proto != "udp" {
			return nil, errdefs.NotImplemented(fmt.Errorf("publishing %s ports is not implemented", proto))
		}
		lo, hi := w.low, w.top
		dynamic := lo == 0
		if dynamic {
			lo, hi = ephemeralRange()
		}
		var got uint16
		var lastErr error
		for p := int(lo); p <= int(hi); p++ {
			hp := uint16(p)
			if taken[portKey(proto, w.hostIP, hp)] || taken[portKey(proto, netip.Addr{}, hp)] ||
				(!w.hostIP.IsValid() && takenOnAnyIP(taken, proto, hp)) {
				lastErr = fmt.Errorf("Bind for %s:%d failed: port is already allocated", hostIPString(w.hostIP), hp) //lint:ignore ST1005 Docker's wording
				continue
			}
			if err := probePort(proto, w.hostIP, hp); err != nil {
				lastErr = err
				continue
			}
			got = hp
			break
		}
		if got == 0 {
			return nil, errdefs.Unavailable(fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", req.Name, ep.EndpointID, lastErr))
		}
		taken[portKey(proto, w.hostIP, got)] = true
		ctr := ep.Addr.Addr()
		if w.hostIP.IsValid() && w.hostIP.Is6() {
			ctr = ep.Addr6.Addr()
		}
		out = append(out, port{Container: w.key.String(), HostIP: w.hostIP, HostPort: got,
			Rule: firewall.Port{Proto: proto, HostIP: w.hostIP, HostPort: got, ContainerIP: ctr, ContainerPort: w.key.Num(), Bridge: n.Device}})
		if !w.hostIP.IsValid() && ep.Addr6.IsValid() {
			// On every address: the IPv6 ones too, as Docker's [::]:port.
			out = append(out, port{Container: w.key.String(), HostIP: netip.IPv6Unspecified(), HostPort: got,
				Rule: firewall.Port{Proto: proto, HostIP: netip.IPv6Unspecified(), HostPort: got, ContainerIP: ep.Addr6.Addr(), ContainerPort: w.key.Num(), Bridge: n.Device}})
		}
	}
	return out, nil
}

func portKey(proto string, ip netip.Addr, p uint16) string {
	return proto + "/" + ip.String() + "/" + strconv.Itoa(int(p))
}

func takenOnAnyIP(taken map[string]bool, proto string, p uint16) bool {
	suffix := "/" + strconv.Itoa(int(p))
	for k := range taken {
		if strings.HasPrefix(k, proto+"/") && strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

func hostIPString(a netip.Addr) string {
	if !a.IsValid() {
		return "0.0.0.0"
	}
	return a.String()
}

// probePort checks that no host process holds the port: the kernel's
// NAT would take its traffic away from it silently.
func probePort(proto string, ip netip.Addr, p uint16) error {
	addr := net.JoinHostPort(hostIPString(ip), strconv.Itoa(int(p)))
	switch proto {
	case "udp":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return fmt.Errorf("failed to bind host port %s/udp: address already in use", addr)
		}
		return c.Close()
	default:
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return fmt.Errorf("failed to bind host port %s/tcp: address already in use", addr)
		}
		return l.Close()
	}
}

func parsePortRange(s string) (uint16, uint16, error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid host port %q", s)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return 0, 0, fmt.Errorf("invalid host port range %q", s)
		}
	}
	return uint16(a), uint16(b), nil
}

// ephemeralRange is the kernel's local port range, where Docker picks
// ports for -P from.
func ephemeralRange() (uint16, uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.ParseUint(f[0], 10, 16)
			hi, err2 := strconv.ParseUint(f[1], 10, 16)
			if err1 == nil && err2 == nil && lo > 0 && lo <= hi {
				return uint16(lo), uint16(hi)
			}
		}
	}
	return 49153, 65535
}

// Attach connects a running container's sandbox to one more network: a
// new interface (eth1, eth2, …) in its namespace, with no default route.
func (m *Manager) Attach(containerID, name string, n *Network, cfg *networktypes.EndpointSettings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sb *sandbox
	var ep endpoint
	var gw, gw6 netip.Addr // the default routes the new endpoint takes over
	var from string        // from the endpoint on this network
	err := m.db.Update(func(tx *bolt.Tx) error {
		var err error
		if sb, err = m.getSandbox(tx, containerID); err != nil {
			return err
		}
		if sb == nil || sb.Netns == "" {
			return errdefs.Forbidden(fmt.Errorf("container %s has no network sandbox to connect", containerID[:12]))
		}
		used := map[string]bool{}
		cur := -1 // the endpoint of the default route
		for i, e := range sb.Endpoints {
			if e.NetworkID == n.ID {
				return errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", name, n.Name))
			}
			used[e.IfName] = true
			if e.Gateway.IsValid() || e.Gateway6.IsValid() {
				cur = i
			}
		}
		all, err := m.allSandboxes(tx)
		if err != nil {
			return err
		}
		if ep, err = m.allocate(n, cfg, all, sb, JoinRequest{ContainerID: containerID, Name: name}); err != nil {
			return err
		}
		if ep.IfName = ifName(cfg); ep.IfName != "" && used[ep.IfName] {
			return errdefs.InvalidParameter(fmt.Errorf("interface name %s is already used in container %s", ep.IfName, containerID[:12]))
		}
		if ep.IfName == "" {
			ep.IfName = freeIfName(used, ifacePrefix(n))
		}
		// A higher gateway priority than the default route's network
		// takes the default route over, as with Docker.
		if !n.Internal && (cur < 0 || gwPriority(cfg) > gwPriority(sb.Endpoints[cur].Config)) {
			gw, gw6 = ep.Gateway, ep.Gateway6
			if cur >= 0 {
				from = sb.Endpoints[cur].NetworkID
			}
		} else {
			ep.Gateway, ep.Gateway6 = netip.Addr{}, netip.Addr{}
		}
		sb.Endpoints = append(sb.Endpoints, ep)
		if !n.Default && !sb.resolved() {
			sb.Upstreams = m.upstreams(JoinRequest{})
		}
		return putJSON(tx, bucketSandboxes, containerID, sb)
	})
	if err != nil {
		return err
	}
	mac, _ := net.ParseMAC(ep.MAC)
	if err := m.ensureDevice(n); err == nil {
		err = link.AttachVeth(link.Veth{HostName: ep.Veth, Bridge: n.Device, NetnsPath: sb.Netns, IfName: ep.IfName, Addr: ep.Addr, Addr6: ep.Addr6, MAC: mac, MTU: m.mtu(n),
			LinkLocal: linkLocal(cfg), Sysctls: endpointSysctls(cfg, ep.IfName)})
		if err == nil && (gw.IsValid() || gw6.IsValid()) {
			err = link.SetDefaultRoute(sb.Netns, ep.IfName, gw, gw6)
		}
		if err == nil && from != "" {
			// The route is the new endpoint's: the record says so.
			err = m.db.Update(func(tx *bolt.Tx) error {
				sb, err := m.getSandbox(tx, containerID)
				if err != nil || sb == nil {
					return err
				}
				for i := range sb.Endpoints {
					if e := &sb.Endpoints[i]; e.NetworkID == from {
						if gw.IsValid() {
							e.Gateway = netip.Addr{}
						}
						if gw6.IsValid() {
							e.Gateway6 = netip.Addr{}
						}
					}
				}
				return putJSON(tx, bucketSandboxes, containerID, sb)
			})
		}
		if err == nil {
			return m.publishDNS(true)
		}
		m.dropEndpoint(containerID, n.ID)
		return fmt.Errorf("network %s for container %s: %w", n.Name, containerID[:12], err)
	} else {
		m.dropEndpoint(containerID, n.ID)
		return err
	}
}

// Detach disconnects a running container from one of its networks.
func (m *Manager) Detach(containerID string, n *Network) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropEndpoint(containerID, n.ID)
}

// dropEndpoint removes a sandbox's interface on a network, and its
// record.
func (m *Manager) dropEndpoint(containerID, networkID string) error {
	var gone *endpoint
	err := m.db.Update(func(tx *bolt.Tx) error {
		sb, err := m.getSandbox(tx, containerID)
		if err != nil || sb == nil {
			return err
		}
		for i, e := range sb.Endpoints {
			if e.NetworkID == networkID {
				gone = &e
				sb.Endpoints = slices.Delete(sb.Endpoints, i, i+1)
				break
			}
		}
		return putJSON(tx, bucketSandboxes, containerID, sb)
	})
	if err != nil {
		return err
	}
	if gone == nil {
		return errdefs.Forbidden(fmt.Errorf("container %s is not connected to network %s", containerID[:12], networkID))
	}
	err = link.DetachVeth(gone.Veth)
	return errors.Join(err, m.publishDNS(true))
}

// pickAddr chooses an address of the ranges: the static one asked for,
// checked, or the first free one.
func pickAddr(rs []ipam.Range, static netip.Addr, used map[netip.Addr]bool) (netip.Prefix, netip.Addr, error) {
	if static.IsValid() {
		for _, r := range rs {
			if !r.Subnet.Contains(static) {
				continue
			}
			if used[static] || static == r.Gateway || !r.Usable(static) {
				return netip.Prefix{}, netip.Addr{}, errdefs.Conflict(errors.New("Address already in use")) //lint:ignore ST1005 Docker's wording
			}
			return netip.PrefixFrom(static, r.Subnet.Bits()), r.Gateway, nil
		}
		return netip.Prefix{}, netip.Addr{}, errdefs.InvalidParameter(fmt.Errorf("no configured subnet or ip-range contain the IP address %s", static))
	}
	var err error
	for _, r := range rs {
		var a netip.Addr
		if a, err = ipam.Allocate(r, func(a netip.Addr) bool { return used[a] }); err == nil {
			return netip.PrefixFrom(a, r.Subnet.Bits()), r.Gateway, nil
		}
	}
	return netip.Prefix{}, netip.Addr{}, errdefs.Unavailable(err)
}
