// Package link makes the kernel network devices of bridge networks: the
// bridge itself, and each container's veth pair with one end on the bridge
// and the other inside the container's network namespace.
//
// It speaks netlink directly (the library is in the binary already, for
// runc) rather than running ip(8), which balenaOS need not ship and which
// would cost a process per step.
package link

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/balena-os/balena-engine/src/network/netns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// maxIfName is the longest interface name the kernel takes (IFNAMSIZ-1).
const maxIfName = 15

// EnsureBridge makes the bridge exist and be up with addr among its
// addresses, creating it with the given MTU (0: the kernel's default) if
// missing. An existing bridge (balenaOS's balena0 given with -b) is used as
// it is: only addr is added if it is not there. An invalid addr adds none.
// created says whether the bridge was made here; a bridge made here is
// deleted again if the rest fails (and created is false).
func EnsureBridge(name string, addr netip.Prefix, mtu int) (created bool, err error) {
	if err := checkName(name); err != nil {
		return false, fmt.Errorf("bridge %q: %w", name, err)
	}
	br, err := netlink.LinkByName(name)
	switch {
	case err == nil:
		if br.Type() != "bridge" {
			return false, fmt.Errorf("device %s is a %s, not a bridge", name, br.Type())
		}
	case isNotFound(err):
		if br, err = createBridge(name, mtu); err != nil {
			return false, err
		}
		created = true
		defer func() {
			if err != nil {
				_ = netlink.LinkDel(br)
				created = false
			}
		}()
	default:
		return false, fmt.Errorf("bridge %s: %w", name, err)
	}

	if addr.IsValid() {
		if err := ensureAddr(br, addr); err != nil {
			return created, err
		}
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(br); err != nil {
			return created, fmt.Errorf("bridge %s: setting up: %w", name, err)
		}
	}
	return created, nil
}

func createBridge(name string, mtu int) (netlink.Link, error) {
	// A bridge without an address of its own takes the lowest MAC of its
	// ports, so it would change as containers come and go and the
	// containers' ARP caches would point at a MAC that is gone. One set
	// here is kept.
	req := newLinkRequest(name, mtu, randomMAC())
	req.AddData(linkInfo("bridge"))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("creating bridge %s: a device of that name appeared meanwhile: %w", name, err)
		}
		return nil, fmt.Errorf("creating bridge %s: %w", name, err)
	}
	// The request's answer is only an ack: ask for the index and flags.
	l, err := netlink.LinkByName(name)
	if err != nil {
		_ = netlink.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}})
		return nil, fmt.Errorf("bridge %s after creating it: %w", name, err)
	}
	return l, nil
}

// newLinkRequest starts an RTM_NEWLINK request that creates a device
// named name, with the MTU if above 0 and the MAC if not nil. The caller
// adds the IFLA_LINKINFO and sends it.
//
// netlink.LinkAdd would do, but it links in the encoder of every device
// type the library knows (some 80 KB), and the engine has to stay a
// static binary of at most 16 MiB; the two kinds used here take a few
// attributes each.
func newLinkRequest(name string, mtu int, mac net.HardwareAddr) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	for _, a := range deviceAttrs(name, mtu, mac) {
		req.AddData(a)
	}
	return req
}

// deviceAttrs are the attributes of a device to create, for the request
// itself and for a veth's peer alike.
func deviceAttrs(name string, mtu int, mac net.HardwareAddr) []*nl.RtAttr {
	attrs := []*nl.RtAttr{nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name))}
	if mtu > 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	}
	if mac != nil {
		attrs = append(attrs, nl.NewRtAttr(unix.IFLA_ADDRESS, mac))
	}
	return attrs
}

// linkInfo is the IFLA_LINKINFO naming the kind of device to create.
func linkInfo(kind string) *nl.RtAttr {
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated(kind))
	return info
}

// ensureAddr adds addr to the device unless it is there already.
func ensureAddr(l netlink.Link, addr netip.Prefix) error {
	have, err := prefixes(l)
	if err != nil {
		return err
	}
	if slices.Contains(have, addr) {
		return nil
	}
	if err := netlink.AddrAdd(l, nlAddr(addr)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding address %s to %s: %w", addr, l.Attrs().Name, err)
	}
	return nil
}

// RemoveBridge deletes the bridge; a missing one is not an error. A device
// of that name that is not a bridge is left alone, and is an error.
func RemoveBridge(name string) error {
	br, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if br.Type() != "bridge" {
		return fmt.Errorf("not removing %s: it is a %s, not a bridge", name, br.Type())
	}
	if err := netlink.LinkDel(br); err != nil && !isNotFound(err) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("removing bridge %s: %w", name, err)
	}
	return nil
}

// BridgeAddrs lists the IPv4 and IPv6 addresses, with their prefix
// lengths, of an existing bridge: the subnet of a network on a bridge the
// OS made (-b) comes from them. IPv6 link-local addresses, which every
// device gets, are left out. A missing device is an error.
func BridgeAddrs(name string) ([]netip.Prefix, error) {
	br, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("device %s is a %s, not a bridge", name, br.Type())
	}
	all, err := prefixes(br)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, p := range all {
		if !p.Addr().IsLinkLocalUnicast() || p.Addr().Is4() {
			out = append(out, p)
		}
	}
	return out, nil
}

// prefixes lists a device's addresses, with their prefix lengths.
func prefixes(l netlink.Link) ([]netip.Prefix, error) {
	var (
		addrs []netlink.Addr
		err   error
	)
	// A dump interrupted by a concurrent change is incomplete: ask again.
	for range 5 {
		addrs, err = netlink.AddrList(l, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// nlAddr is addr as netlink wants it, keeping the host bits.
func nlAddr(addr netip.Prefix) *netlink.Addr {
	ip := addr.Addr().Unmap()
	bits := ip.BitLen()
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(addr.Bits(), bits)}}
}

// Veth describes a container's endpoint on a bridge network.
type Veth struct {
	HostName  string           // host side, e.g. "veth" + 7 hex digits (at most 15 bytes)
	Bridge    string           // bridge the host side is attached to
	NetnsPath string           // the container's network namespace
	IfName    string           // name inside the container: "eth0", "eth1", ...
	Addr      netip.Prefix     // IPv4 address with the network's prefix length, e.g. 172.17.0.2/16
	Addr6     netip.Prefix     // IPv6 address; zero: none
	Gateway   netip.Addr       // IPv4 default route via this; zero: no default route
	Gateway6  netip.Addr       // IPv6 default route via this; zero: none
	MAC       net.HardwareAddr // container side; nil: GenerateMAC(Addr)
	MTU       int              // 0: the bridge's
	// LinkLocal are more addresses of the container side (--link-local-ip).
	LinkLocal []netip.Prefix
	// Sysctls are settings of the container side, as paths under
	// /proc/sys in its namespace ("net/ipv4/conf/eth0/forwarding").
	Sysctls map[string]string
}

func (v *Veth) check() error {
	if err := checkName(v.HostName); err != nil {
		return fmt.Errorf("host side name %q: %w", v.HostName, err)
	}
	if err := checkName(v.IfName); err != nil {
		return fmt.Errorf("container side name %q: %w", v.IfName, err)
	}
	if v.Bridge == "" {
		return errors.New("no bridge given")
	}
	if v.NetnsPath == "" {
		return errors.New("no network namespace given")
	}
	if !v.Addr.IsValid() || !v.Addr.Addr().Is4() {
		return fmt.Errorf("address %s is not an IPv4 prefix", v.Addr)
	}
	if v.Addr6.IsValid() && !v.Addr6.Addr().Is6() {
		return fmt.Errorf("IPv6 address %s is not an IPv6 prefix", v.Addr6)
	}
	if v.Gateway.IsValid() && !v.Gateway.Is4() {
		return fmt.Errorf("gateway %s is not an IPv4 address", v.Gateway)
	}
	if v.Gateway6.IsValid() && !v.Gateway6.Is6() {
		return fmt.Errorf("IPv6 gateway %s is not an IPv6 address", v.Gateway6)
	}
	if v.MAC != nil && len(v.MAC) != 6 {
		return fmt.Errorf("MAC address %s is not 6 bytes", v.MAC)
	}
	return nil
}

// AttachVeth connects a container to a bridge: it creates the veth pair
// with the container side made directly inside the namespace (the host
// never sees a stray ethN) as IfName with the MAC, gives it its addresses,
// brings it up and adds the default routes; the host side goes on the
// bridge with hairpin mode on, so a container reaches its own published
// ports through the host, and is brought up. A host side of the same name
// left by a crash is deleted first. On failure whatever was created is
// removed.
func AttachVeth(v Veth) (err error) {
	if err := v.check(); err != nil {
		return fmt.Errorf("veth %s: %w", v.HostName, err)
	}
	mac := v.MAC
	if mac == nil {
		mac = GenerateMAC(v.Addr.Addr())
	}
	br, err := netlink.LinkByName(v.Bridge)
	if err != nil {
		return fmt.Errorf("veth %s: bridge %s: %w", v.HostName, v.Bridge, err)
	}
	if br.Type() != "bridge" {
		return fmt.Errorf("veth %s: device %s is a %s, not a bridge", v.HostName, v.Bridge, br.Type())
	}
	mtu := v.MTU
	if mtu <= 0 {
		mtu = br.Attrs().MTU
	}
	nsFile, err := os.Open(v.NetnsPath)
	if err != nil {
		return fmt.Errorf("veth %s: network namespace: %w", v.HostName, err)
	}
	defer nsFile.Close()

	if err := DetachVeth(v.HostName); err != nil {
		return fmt.Errorf("veth %s: removing a leftover: %w", v.HostName, err)
	}

	// One request makes the pair, puts the host side on the bridge and
	// the peer in the namespace, so a failure leaves nothing behind.
	req := newLinkRequest(v.HostName, mtu, nil)
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(br.Attrs().Index))))
	info := linkInfo("veth")
	peer := info.AddRtAttr(nl.IFLA_INFO_DATA, nil).AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	for _, a := range deviceAttrs(v.IfName, mtu, mac) {
		peer.AddChild(a)
	}
	// Queue length 0, as Docker gives it: a veth queues nothing (noqueue)
	// unless a qdisc is added.
	peer.AddRtAttr(unix.IFLA_TXQLEN, nl.Uint32Attr(0))
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(nsFile.Fd())))
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("veth %s: creating the pair with %s in %s: %w", v.HostName, v.IfName, v.NetnsPath, err)
	}
	defer func() {
		if err != nil {
			// The peer goes with it.
			_ = DetachVeth(v.HostName)
		}
	}()
	host, err := netlink.LinkByName(v.HostName)
	if err != nil {
		return fmt.Errorf("veth %s after creating it: %w", v.HostName, err)
	}
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("veth %s: hairpin mode on bridge %s: %w", v.HostName, v.Bridge, err)
	}
	// Up before the container side, so that side has carrier (and IPv6 a
	// usable route) as soon as it is up.
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("veth %s: setting up: %w", v.HostName, err)
	}
	if err := netns.Do(v.NetnsPath, func() error { return v.configurePeer() }); err != nil {
		return fmt.Errorf("veth %s: %w", v.HostName, err)
	}
	return nil
}

// configurePeer sets up the container side; it runs inside the namespace.
func (v *Veth) configurePeer() error {
	where := fmt.Sprintf("%s in %s", v.IfName, v.NetnsPath)
	l, err := netlink.LinkByName(v.IfName)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := netlink.AddrAdd(l, nlAddr(v.Addr)); err != nil {
		return fmt.Errorf("%s: address %s: %w", where, v.Addr, err)
	}
	if v.Addr6.IsValid() {
		a := nlAddr(v.Addr6)
		// The address is the engine's to give, so it is unique; duplicate
		// address detection would only leave it unusable for a second.
		a.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("%s: address %s: %w", where, v.Addr6, err)
		}
	}
	for _, a := range v.LinkLocal {
		na := nlAddr(a)
		if a.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, na); err != nil {
			return fmt.Errorf("%s: link-local address %s: %w", where, a, err)
		}
	}
	// Written from this thread, which is in the namespace: /proc/sys/net
	// shows the namespace of the one that opens it.
	keys := make([]string, 0, len(v.Sysctls))
	for k := range v.Sysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := SetSysctl(k, v.Sysctls[k]); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s: setting up: %w", where, err)
	}
	for _, gw := range []netip.Addr{v.Gateway, v.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		if err := addDefaultRoute(l.Attrs().Index, gw); err != nil {
			return fmt.Errorf("%s: default route via %s: %w", where, gw, err)
		}
	}
	return nil
}

// addDefaultRoute adds a default route via gw out of the device with the
// index, in the main table, to the calling thread's network namespace.
// netlink.RouteAdd sends the same request, through an encoder of every
// route feature (17 KB) that this package then does without.
func addDefaultRoute(index int, gw netip.Addr) error {
	return defaultRoute(index, gw, unix.NLM_F_EXCL)
}

// defaultRoute adds (NLM_F_EXCL) or replaces (NLM_F_REPLACE) the default
// route of gw's family.
func defaultRoute(index int, gw netip.Addr, how int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|how|unix.NLM_F_ACK)
	msg := nl.NewRtMsg() // main table, boot protocol, universe scope, unicast
	// An IPv4-mapped gateway is IPv4, as netlink takes it.
	gw = gw.Unmap()
	msg.Family = unix.AF_INET6
	if gw.Is4() {
		msg.Family = unix.AF_INET
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, gw.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(index))))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// SetDefaultRoute makes the container side ifName in the namespace at
// netnsPath the default route via the gateways given (a zero one leaves
// that family's route as it is): a container connected to a network of a
// higher gateway priority than the one it had.
func SetDefaultRoute(netnsPath, ifName string, gw, gw6 netip.Addr) error {
	return netns.Do(netnsPath, func() error {
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", ifName, netnsPath, err)
		}
		for _, g := range []netip.Addr{gw, gw6} {
			if g.IsValid() {
				if err := defaultRoute(l.Attrs().Index, g, unix.NLM_F_REPLACE); err != nil {
					return fmt.Errorf("%s in %s: default route via %s: %w", ifName, netnsPath, g, err)
				}
			}
		}
		return nil
	})
}

// DetachVeth deletes the host side of a veth pair, which deletes the
// container side too; a missing one is not an error. A device of that
// name that is not a veth is left alone, and is an error.
func DetachVeth(hostName string) error {
	l, err := netlink.LinkByName(hostName)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("veth %s: %w", hostName, err)
	}
	if l.Type() != "veth" {
		return fmt.Errorf("not removing %s: it is a %s, not a veth", hostName, l.Type())
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("removing veth %s: %w", hostName, err)
	}
	return nil
}

// GenerateMAC returns Docker's MAC address for a container's IPv4
// address: 02:42 (locally administered) followed by the address's four
// bytes, so 172.17.0.2 has 02:42:ac:11:00:02. An IPv6 address gives its
// last four bytes; an invalid one nil.
func GenerateMAC(ip netip.Addr) net.HardwareAddr {
	if !ip.IsValid() {
		return nil
	}
	b := ip.As16()
	return net.HardwareAddr{0x02, 0x42, b[12], b[13], b[14], b[15]}
}

// randomMAC returns a random locally administered unicast MAC.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// sysctlRoot is where SetSysctl's paths are; tests move it.
var sysctlRoot = "/proc/sys"

// SetSysctl writes value to the kernel setting at path, relative to
// /proc/sys ("net/ipv4/ip_forward"). A setting that already has the value
// is not written: writing some (forwarding) resets others, and a read-only
// /proc/sys (a daemon in a container) must not fail what is already done.
func SetSysctl(path, value string) error {
	if path == "" || filepath.IsAbs(path) || slices.Contains(strings.Split(path, "/"), "..") {
		return fmt.Errorf("sysctl %q: not a path under /proc/sys", path)
	}
	file := filepath.Join(sysctlRoot, path)
	cur, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", path, err)
	}
	// Multi-valued settings are tab-separated; compare the values only.
	if slices.Equal(strings.Fields(string(cur)), strings.Fields(value)) {
		return nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", path, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sysctl %s = %s: %w", path, value, err)
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty device name")
	case len(name) > maxIfName:
		return fmt.Errorf("device name longer than %d bytes", maxIfName)
	case strings.ContainsAny(name, "/ \t\n:") || name == "." || name == "..":
		return errors.New("not a valid device name")
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
