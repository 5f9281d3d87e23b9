package link

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/nstest"
	"github.com/balena-os/balena-engine/src/network/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestGenerateMAC(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want string
	}{
		{"172.17.0.2", "02:42:ac:11:00:02"},
		{"172.17.0.1", "02:42:ac:11:00:01"},
		{"10.0.0.255", "02:42:0a:00:00:ff"},
		{"192.168.1.10", "02:42:c0:a8:01:0a"},
		{"255.255.255.255", "02:42:ff:ff:ff:ff"},
		{"::ffff:172.17.0.2", "02:42:ac:11:00:02"},
		{"fd00::1:2:3", "02:42:00:02:00:03"},
	} {
		got := GenerateMAC(netip.MustParseAddr(tc.ip))
		if got.String() != tc.want {
			t.Errorf("GenerateMAC(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
	if got := GenerateMAC(netip.Addr{}); got != nil {
		t.Errorf("GenerateMAC(invalid) = %s, want nil", got)
	}
}

func TestEnsureBridge(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	addr := netip.MustParsePrefix("172.30.0.1/16")
	for i, wantCreated := range []bool{true, false} {
		created, err := EnsureBridge("br-test", addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		if created != wantCreated {
			t.Errorf("call %d: created = %v, want %v", i+1, created, wantCreated)
		}
		br := mustLink(t, "br-test")
		if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("call %d: %s is a %s with flags %v", i+1, "br-test", br.Type(), br.Attrs().Flags)
		}
		if n := countAddr(t, br, addr); n != 1 {
			t.Errorf("call %d: %s has %s %d times", i+1, "br-test", addr, n)
		}
	}
	addr6 := netip.MustParsePrefix("fd00:30::1/64")
	if created, err := EnsureBridge("br-test", addr6, 0); err != nil || created {
		t.Fatalf("adding IPv6: created %v, %v", created, err)
	}
	got, err := BridgeAddrs("br-test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []netip.Prefix{addr, addr6}) {
		t.Errorf("BridgeAddrs = %v, want [%s %s]", got, addr, addr6)
	}

	// A bridge made by the OS (balenaOS's balena0, -b) keeps its address.
	osAddr := netip.MustParsePrefix("10.114.101.1/24")
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "balena0"
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(mustLink(t, "balena0"), nlAddr(osAddr)); err != nil {
		t.Fatal(err)
	}
	if created, err := EnsureBridge("balena0", addr, 0); err != nil || created {
		t.Fatalf("existing bridge: created %v, %v", created, err)
	}
	if got, err := BridgeAddrs("balena0"); err != nil || !slices.Equal(got, []netip.Prefix{osAddr, addr}) {
		t.Errorf("BridgeAddrs(balena0) = %v, %v; want [%s %s]", got, err, osAddr, addr)
	}
	if mustLink(t, "balena0").Attrs().Flags&net.FlagUp == 0 {
		t.Error("existing bridge not brought up")
	}

	// MTU and no address.
	if _, err := EnsureBridge("br-mtu", netip.Prefix{}, 1400); err != nil {
		t.Fatal(err)
	}
	if l := mustLink(t, "br-mtu"); l.Attrs().MTU != 1400 {
		t.Errorf("MTU %d, want 1400", l.Attrs().MTU)
	}
	if got, err := BridgeAddrs("br-mtu"); err != nil || len(got) != 0 {
		t.Errorf("BridgeAddrs(br-mtu) = %v, %v; want none", got, err)
	}

	// A device that is not a bridge is not used, nor removed.
	makeVeth(t, "notbr0", "notbr1")
	if _, err := EnsureBridge("notbr0", addr, 0); err == nil || !strings.Contains(err.Error(), "notbr0") {
		t.Errorf("EnsureBridge on a veth: %v", err)
	}
	if err := RemoveBridge("notbr0"); err == nil {
		t.Error("RemoveBridge removed a veth")
	}
	if _, err := BridgeAddrs("notbr0"); err == nil {
		t.Error("BridgeAddrs of a veth")
	}
	mustLink(t, "notbr0")
	if _, err := BridgeAddrs("missing0"); err == nil || !strings.Contains(err.Error(), "missing0") {
		t.Errorf("BridgeAddrs of a missing device: %v", err)
	}
	if _, err := EnsureBridge("a-name-too-long-for-linux", addr, 0); err == nil {
		t.Error("EnsureBridge with a 25-byte name")
	}

	// A failure after creating the bridge leaves no bridge; an existing
	// bridge is left whatever happens. With IPv6 disabled for new devices,
	// an IPv6 address cannot be added.
	if err := SetSysctl("net/ipv6/conf/default/disable_ipv6", "1"); err != nil {
		t.Fatal(err)
	}
	if err := SetSysctl("net/ipv6/conf/br-mtu/disable_ipv6", "1"); err != nil {
		t.Fatal(err)
	}
	v6 := netip.MustParsePrefix("fd00:31::1/64")
	if created, err := EnsureBridge("br-fail", v6, 0); err == nil || created || !strings.Contains(err.Error(), "br-fail") {
		t.Errorf("EnsureBridge with IPv6 disabled: created %v, %v", created, err)
	}
	if _, err := netlink.LinkByName("br-fail"); !isNotFound(err) {
		t.Errorf("br-fail left after a failed EnsureBridge: %v", err)
	}
	if _, err := EnsureBridge("br-mtu", v6, 0); err == nil {
		t.Error("EnsureBridge added IPv6 to a bridge with IPv6 disabled")
	}
	mustLink(t, "br-mtu")

	for _, name := range []string{"br-test", "balena0", "br-mtu"} {
		if err := RemoveBridge(name); err != nil {
			t.Fatal(err)
		}
		if _, err := netlink.LinkByName(name); !isNotFound(err) {
			t.Errorf("%s after RemoveBridge: %v", name, err)
		}
		if err := RemoveBridge(name); err != nil {
			t.Errorf("RemoveBridge of a missing bridge: %v", err)
		}
	}
}

func TestAttachVeth(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	bridge(t, "br0", "172.30.0.1/16", "fd00:30::1/64")
	ns1 := newNS(t, dir, "c1")
	v := Veth{
		HostName: "vethtest1", Bridge: "br0", NetnsPath: ns1, IfName: "eth0",
		Addr:    netip.MustParsePrefix("172.30.0.2/16"),
		Addr6:   netip.MustParsePrefix("fd00:30::2/64"),
		Gateway: netip.MustParseAddr("172.30.0.1"), Gateway6: netip.MustParseAddr("fd00:30::1"),
	}
	brMAC := mustLink(t, "br0").Attrs().HardwareAddr.String()
	if err := AttachVeth(v); err != nil {
		t.Fatal(err)
	}
	// The bridge's MAC was set when it was made, so no port changes it.
	if got := mustLink(t, "br0").Attrs().HardwareAddr.String(); got != brMAC {
		t.Errorf("bridge MAC changed from %s to %s with a port", brMAC, got)
	}
	checkHostSide(t, "vethtest1", "br0", 1500)
	checkInside(t, v, "02:42:ac:1e:00:02", 1500)
	if _, err := netlink.LinkByName("eth0"); err == nil {
		t.Error("the container side is visible on the host")
	}

	// Given MAC and MTU, no gateway (a second network, an internal one).
	ns2 := newNS(t, dir, "c2")
	v2 := Veth{
		HostName: "vethtest2", Bridge: "br0", NetnsPath: ns2, IfName: "eth1",
		Addr: netip.MustParsePrefix("172.30.0.3/16"),
		MAC:  net.HardwareAddr{0x02, 0, 0, 0, 0, 0xaa}, MTU: 1400,
	}
	if err := AttachVeth(v2); err != nil {
		t.Fatal(err)
	}
	checkHostSide(t, "vethtest2", "br0", 1400)
	checkInside(t, v2, "02:00:00:00:00:aa", 1400)

	for _, v := range []Veth{v, v2} {
		if err := DetachVeth(v.HostName); err != nil {
			t.Fatal(err)
		}
		if _, err := netlink.LinkByName(v.HostName); !isNotFound(err) {
			t.Errorf("%s after DetachVeth: %v", v.HostName, err)
		}
		if inside(t, v.NetnsPath, v.IfName) {
			t.Errorf("%s still in %s after DetachVeth", v.IfName, v.NetnsPath)
		}
		if err := DetachVeth(v.HostName); err != nil {
			t.Errorf("DetachVeth of a missing veth: %v", err)
		}
	}
}

// TestConnectivity connects two containers on one bridge and the host to
// them over TCP.
func TestConnectivity(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	bridge(t, "br0", "172.30.0.1/16")
	c1, c2 := newNS(t, dir, "c1"), newNS(t, dir, "c2")
	gw := netip.MustParseAddr("172.30.0.1")
	for i, ns := range []string{c1, c2} {
		err := AttachVeth(Veth{HostName: "vethc" + string(rune('1'+i)), Bridge: "br0", NetnsPath: ns, IfName: "eth0",
			Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 30, 0, byte(2 + i)}), 16), Gateway: gw})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Packets flow once both ends have carrier: wait for it, not a while.
	for _, name := range []string{"vethc1", "vethc2"} {
		waitUp(t, "", name)
	}
	waitUp(t, c1, "eth0")
	waitUp(t, c2, "eth0")

	addr1 := serve(t, c1, "172.30.0.2:0", "c1")
	addr2 := serve(t, c2, "172.30.0.3:0", "c2")
	if got := fetch(t, c2, addr1); got != "c1" {
		t.Errorf("c2 → c1: %q", got)
	}
	if got := fetch(t, c1, addr2); got != "c2" {
		t.Errorf("c1 → c2: %q", got)
	}
	if got := fetch(t, "", addr1); got != "c1" {
		t.Errorf("bridge → c1: %q", got)
	}
	// Through the default route: the host's address on the bridge.
	addrHost := serve(t, "", "172.30.0.1:0", "host")
	if got := fetch(t, c2, addrHost); got != "host" {
		t.Errorf("c2 → host: %q", got)
	}
}

func TestAttachVethLeftover(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	bridge(t, "br0", "172.30.0.1/16")
	ns := newNS(t, dir, "c1")
	makeVeth(t, "vethleft", "vethleftp") // as a crash leaves it
	v := Veth{HostName: "vethleft", Bridge: "br0", NetnsPath: ns, IfName: "eth0",
		Addr: netip.MustParsePrefix("172.30.0.2/16"), Gateway: netip.MustParseAddr("172.30.0.1")}
	if err := AttachVeth(v); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("vethleftp"); !isNotFound(err) {
		t.Errorf("the leftover's peer is still there: %v", err)
	}
	checkHostSide(t, "vethleft", "br0", 1500)
	checkInside(t, v, "02:42:ac:1e:00:02", 1500)

	// A device of that name that is not a veth is not deleted.
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "vethbr"
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		t.Fatal(err)
	}
	v.HostName, v.NetnsPath = "vethbr", newNS(t, dir, "c2")
	if err := AttachVeth(v); err == nil {
		t.Error("AttachVeth over a bridge succeeded")
	}
	if l := mustLink(t, "vethbr"); l.Type() != "bridge" {
		t.Errorf("vethbr is now a %s", l.Type())
	}
	if err := DetachVeth("vethbr"); err == nil {
		t.Error("DetachVeth removed a bridge")
	}
}

func TestAttachVethFailure(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	dir := nstest.NetnsDir(t)
	bridge(t, "br0", "172.30.0.1/16")
	ns := newNS(t, dir, "c1")
	good := Veth{HostName: "vethfail", Bridge: "br0", NetnsPath: ns, IfName: "eth0",
		Addr: netip.MustParsePrefix("172.30.0.2/16"), Gateway: netip.MustParseAddr("172.30.0.1")}
	makeVeth(t, "notbr0", "notbr1")

	// Inside the namespace, a device that takes the container side's name.
	taken := newNS(t, dir, "taken")
	if err := netns.Do(taken, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "eth0"
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		edit    func(v *Veth)
		errHas  string
		nsAfter string // a namespace whose eth0 is to be left as it was
	}{
		{"missing bridge", func(v *Veth) { v.Bridge = "nobridge" }, "nobridge", ""},
		{"not a bridge", func(v *Veth) { v.Bridge = "notbr0" }, "notbr0", ""},
		{"missing namespace", func(v *Veth) { v.NetnsPath = filepath.Join(dir, "none") }, "none", ""},
		{"name taken inside", func(v *Veth) { v.NetnsPath = taken }, taken, taken},
		{"gateway off the subnet", func(v *Veth) { v.Gateway = netip.MustParseAddr("10.0.0.1") }, "10.0.0.1", ""},
		{"IPv6 gateway without a route", func(v *Veth) { v.Gateway6 = netip.MustParseAddr("fd00:99::1") }, "fd00:99::1", ""},
		{"long host name", func(v *Veth) { v.HostName = "veth0123456789abc" }, "veth0123456789abc", ""},
		{"IPv6 as IPv4", func(v *Veth) { v.Addr = netip.MustParsePrefix("fd00::2/64") }, "fd00::2/64", ""},
		{"short MAC", func(v *Veth) { v.MAC = net.HardwareAddr{2, 0, 0} }, "MAC", ""},
	} {
		v := good
		tc.edit(&v)
		err := AttachVeth(v)
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.errHas)
		}
		if _, err := netlink.LinkByName(v.HostName); !isNotFound(err) {
			t.Errorf("%s: %s left on the host (%v)", tc.name, v.HostName, err)
		}
		if inside(t, ns, "eth0") {
			t.Errorf("%s: eth0 left in the namespace", tc.name)
		}
		if tc.nsAfter != "" && !inside(t, tc.nsAfter, "eth0") {
			t.Errorf("%s: the namespace's own eth0 was removed", tc.name)
		}
	}
	// And after all that the good one works.
	if err := AttachVeth(good); err != nil {
		t.Fatal(err)
	}
	checkInside(t, good, "02:42:ac:1e:00:02", 1500)
}

func TestSetSysctl(t *testing.T) {
	root := t.TempDir()
	old := sysctlRoot
	sysctlRoot = root
	defer func() { sysctlRoot = old }()
	if err := os.MkdirAll(filepath.Join(root, "net/ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "net/ipv4/ip_forward")
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, past, past); err != nil {
			t.Fatal(err)
		}
	}
	written := func() bool {
		t.Helper()
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return !st.ModTime().Equal(past)
	}

	write("1\n")
	if err := SetSysctl("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if written() {
		t.Error("a value already set was written again")
	}
	write("32768\t60999\n")
	if err := SetSysctl("net/ipv4/ip_forward", "32768 60999"); err != nil || written() {
		t.Errorf("multi-valued setting already set: written %v, %v", written(), err)
	}
	write("0\n")
	if err := SetSysctl("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "1" {
		t.Errorf("file holds %q, want 1", b)
	}
	for _, bad := range []string{"", "/etc/passwd", "net/../../etc/passwd", "net/ipv4/missing"} {
		if err := SetSysctl(bad, "1"); err == nil {
			t.Errorf("SetSysctl(%q) succeeded", bad)
		}
	}
}

// TestSetSysctlKernel writes real settings, in a namespace of the test's.
func TestSetSysctlKernel(t *testing.T) {
	if !nstest.Isolate(t) {
		return
	}
	bridge(t, "br0", "172.30.0.1/16")
	for _, s := range [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/br0/route_localnet", "1"},
		{"net/ipv4/ip_forward", "1"},
	} {
		if err := SetSysctl(s[0], s[1]); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("/proc/sys", s[0]))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) != s[1] {
			t.Errorf("%s = %q after setting %s", s[0], b, s[1])
		}
	}
}

// bridge makes a bridge with the addresses, removed at the end of the test.
func bridge(t *testing.T, name string, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		if _, err := EnsureBridge(name, netip.MustParsePrefix(a), 0); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { RemoveBridge(name) })
}

// newNS makes a namespace for a container, removed at the end of the test.
func newNS(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := netns.Create(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(p) })
	return p
}

func makeVeth(t *testing.T, name, peer string) {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peer}); err != nil {
		t.Fatal(err)
	}
}

func mustLink(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func countAddr(t *testing.T, l netlink.Link, p netip.Prefix) int {
	t.Helper()
	have, err := prefixes(l)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range have {
		if h == p {
			n++
		}
	}
	return n
}

// inside says whether the namespace at ns has a device called name.
func inside(t *testing.T, ns, name string) bool {
	t.Helper()
	var found bool
	err := netns.Do(ns, func() error {
		_, err := netlink.LinkByName(name)
		found = err == nil
		if isNotFound(err) {
			err = nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func checkHostSide(t *testing.T, name, bridge string, mtu int) {
	t.Helper()
	l, br := mustLink(t, name), mustLink(t, bridge)
	if l.Type() != "veth" {
		t.Errorf("%s is a %s", name, l.Type())
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("%s is on index %d, not on %s (%d)", name, l.Attrs().MasterIndex, bridge, br.Attrs().Index)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s is down", name)
	}
	if l.Attrs().MTU != mtu {
		t.Errorf("%s has MTU %d, want %d", name, l.Attrs().MTU, mtu)
	}
	pi, err := netlink.LinkGetProtinfo(l)
	if err != nil {
		t.Fatal(err)
	}
	if !pi.Hairpin {
		t.Errorf("%s: hairpin mode off", name)
	}
}

func checkInside(t *testing.T, v Veth, mac string, mtu int) {
	t.Helper()
	err := netns.Do(v.NetnsPath, func() error {
		l, err := netlink.LinkByName(v.IfName)
		if err != nil {
			return err
		}
		if got := l.Attrs().HardwareAddr.String(); got != mac {
			t.Errorf("%s MAC %s, want %s", v.IfName, got, mac)
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s is down", v.IfName)
		}
		if l.Attrs().MTU != mtu {
			t.Errorf("%s MTU %d, want %d", v.IfName, l.Attrs().MTU, mtu)
		}
		have, err := prefixes(l)
		if err != nil {
			return err
		}
		for _, want := range []netip.Prefix{v.Addr, v.Addr6} {
			if want.IsValid() && !slices.Contains(have, want) {
				t.Errorf("%s has %v, not %s", v.IfName, have, want)
			}
		}
		for _, tc := range []struct {
			family int
			gw     netip.Addr
		}{{netlink.FAMILY_V4, v.Gateway}, {netlink.FAMILY_V6, v.Gateway6}} {
			routes, err := netlink.RouteList(l, tc.family)
			if err != nil {
				return err
			}
			var gws []netip.Addr
			for _, r := range routes {
				if r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) {
					a, _ := netip.AddrFromSlice(r.Gw)
					gws = append(gws, a.Unmap())
				}
			}
			switch {
			case tc.gw.IsValid() && !slices.Equal(gws, []netip.Addr{tc.gw}):
				t.Errorf("%s: default routes via %v, want via %s", v.IfName, gws, tc.gw)
			case !tc.gw.IsValid() && len(gws) > 0:
				t.Errorf("%s: default routes via %v, want none", v.IfName, gws)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// waitUp waits until a device (in the namespace at ns; "" for the test's
// own) is operationally up: it has carrier and the bridge forwards.
func waitUp(t *testing.T, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var state netlink.LinkOperState
		check := func() error {
			l, err := netlink.LinkByName(name)
			if err == nil {
				state = l.Attrs().OperState
			}
			return err
		}
		var err error
		if ns == "" {
			err = check()
		} else {
			err = netns.Do(ns, check)
		}
		if err != nil {
			t.Fatal(err)
		}
		if state == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s", name, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serve answers every connection to addr, in the namespace at ns ("" for
// the test's own), with reply; it returns the address it listens on.
func serve(t *testing.T, ns, addr, reply string) string {
	t.Helper()
	var ln net.Listener
	listen := func() (err error) { ln, err = net.Listen("tcp", addr); return err }
	var err error
	if ns == "" {
		err = listen()
	} else {
		err = netns.Do(ns, listen) // the socket stays in ns
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// fetch connects to addr from the namespace at ns ("" for the test's own)
// and returns what it is sent.
func fetch(t *testing.T, ns, addr string) string {
	t.Helper()
	var c net.Conn
	dial := func() (err error) { c, err = net.DialTimeout("tcp", addr, 10*time.Second); return err }
	var err error
	if ns == "" {
		err = dial()
	} else {
		err = netns.Do(ns, dial)
	}
	if err != nil {
		t.Fatalf("dialing %s from %q: %v", addr, ns, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("reading from %s: %v", addr, err)
	}
	return buf.String()
}
