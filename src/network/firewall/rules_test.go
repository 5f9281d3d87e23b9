package firewall

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testState has a masquerading network, one without ICC, an internal one
// and one without masquerading, with ports of every kind, including some
// this package must skip. All but the one without masquerading have IPv6
// too, and one more has IPv6 only.
func testState() State {
	return State{
		Networks: []Network{
			{Bridge: "br-nomasq", Subnet: netip.MustParsePrefix("172.20.0.0/16"), ICC: true},
			{Bridge: "br-int", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:99::/64"), Masquerade: true, ICC: true, Internal: true},
			{Bridge: "br-0123456789ab", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:18::/64"), Masquerade: true},
			{Bridge: "balena0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:17::1/64"), Masquerade: true, ICC: true},
			// The IPv6 subnet given as Subnet, as a caller that knows
			// nothing of Subnet6 would.
			{Bridge: "br-v6only", Subnet: netip.MustParsePrefix("fd00:66::/64"), Masquerade: true, ICC: true},
		},
		Ports: []Port{
			{Proto: "udp", HostPort: 5353, ContainerIP: mustAddr("172.17.0.3"), ContainerPort: 53, Bridge: "balena0"},
			{Proto: "tcp", HostPort: 8081, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 80, Bridge: "balena0"},
			{Proto: "tcp", HostPort: 8080, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 80, Bridge: "balena0"},
			{Proto: "tcp", HostIP: mustAddr("192.168.7.1"), HostPort: 2222, ContainerIP: mustAddr("172.18.0.2"), ContainerPort: 22, Bridge: "br-0123456789ab"},
			// The same binding twice, and 0.0.0.0 spelled out: one rule.
			{Proto: "tcp", HostIP: mustAddr("0.0.0.0"), HostPort: 8080, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 80, Bridge: "balena0"},
			// The same ports over IPv6, :: spelled out for one of them.
			{Proto: "tcp", HostPort: 8080, ContainerIP: mustAddr("fd00:17::2"), ContainerPort: 80, Bridge: "balena0"},
			{Proto: "tcp", HostIP: mustAddr("::"), HostPort: 8081, ContainerIP: mustAddr("fd00:17::2"), ContainerPort: 80, Bridge: "balena0"},
			{Proto: "udp", HostPort: 5353, ContainerIP: mustAddr("fd00:17::3"), ContainerPort: 53, Bridge: "balena0"},
			{Proto: "tcp", HostIP: mustAddr("2001:db8::7"), HostPort: 2222, ContainerIP: mustAddr("fd00:18::2"), ContainerPort: 22, Bridge: "br-0123456789ab"},
			{Proto: "tcp", HostPort: 8443, ContainerIP: mustAddr("fd00:66::2"), ContainerPort: 443, Bridge: "br-v6only"},
			// Skipped: the other family's host address (Docker's proxy's
			// business), ::1, and an internal network.
			{Proto: "tcp", HostIP: mustAddr("::"), HostPort: 9000, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 9000, Bridge: "balena0"},
			{Proto: "tcp", HostIP: mustAddr("192.168.7.1"), HostPort: 9001, ContainerIP: mustAddr("fd00:17::2"), ContainerPort: 9001, Bridge: "balena0"},
			{Proto: "tcp", HostIP: mustAddr("0.0.0.0"), HostPort: 9002, ContainerIP: mustAddr("fd00:17::2"), ContainerPort: 9002, Bridge: "balena0"},
			{Proto: "tcp", HostIP: mustAddr("::1"), HostPort: 9003, ContainerIP: mustAddr("fd00:17::2"), ContainerPort: 9003, Bridge: "balena0"},
			{Proto: "tcp", HostPort: 7000, ContainerIP: mustAddr("10.99.0.2"), ContainerPort: 7000, Bridge: "br-int"},
			{Proto: "tcp", HostPort: 7000, ContainerIP: mustAddr("fd00:99::2"), ContainerPort: 7000, Bridge: "br-int"},
		},
	}
}

// v4Only is s without IPv6: no IPv6 subnets and no ports to IPv6
// addresses.
func v4Only(s State) State {
	s.Networks = slices.Clone(s.Networks)
	for i := range s.Networks {
		s.Networks[i].Subnet6 = netip.Prefix{}
	}
	s.Networks = slices.DeleteFunc(s.Networks, func(n Network) bool { return !n.Subnet.Addr().Is4() })
	s.Ports = slices.DeleteFunc(slices.Clone(s.Ports), func(p Port) bool { return p.ContainerIP.Is6() })
	return s
}

// testRules is what testState renders to, as "-A" lines per table.
const testRules = `*filter
-A DOCKER -d 172.18.0.2/32 ! -i br-0123456789ab -o br-0123456789ab -p tcp -m tcp --dport 22 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i balena0 -o balena0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER -d 172.17.0.3/32 ! -i balena0 -o balena0 -p udp -m udp --dport 53 -j ACCEPT
-A DOCKER-FORWARD -o balena0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -o br-0123456789ab -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -o br-nomasq -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -o balena0 -j DOCKER
-A DOCKER-FORWARD -i balena0 ! -o balena0 -j ACCEPT
-A DOCKER-FORWARD -i balena0 -o balena0 -j ACCEPT
-A DOCKER-FORWARD -o br-0123456789ab -j DOCKER
-A DOCKER-FORWARD -i br-0123456789ab ! -o br-0123456789ab -j ACCEPT
-A DOCKER-FORWARD -i br-0123456789ab -o br-0123456789ab -j DROP
-A DOCKER-FORWARD -i br-int -o br-int -j ACCEPT
-A DOCKER-FORWARD -o br-nomasq -j DOCKER
-A DOCKER-FORWARD -i br-nomasq ! -o br-nomasq -j ACCEPT
-A DOCKER-FORWARD -i br-nomasq -o br-nomasq -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i br-int ! -o br-int -j DROP
-A DOCKER-ISOLATION-STAGE-1 ! -i br-int -o br-int -j DROP
-A DOCKER-ISOLATION-STAGE-1 -i balena0 ! -o balena0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -i br-0123456789ab ! -o br-0123456789ab -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -i br-nomasq ! -o br-nomasq -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -j DOCKER
-A DOCKER-ISOLATION-STAGE-2 -o balena0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP
-A DOCKER-ISOLATION-STAGE-2 -o br-nomasq -j DROP
*nat
-A DOCKER -d 192.168.7.1/32 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 172.18.0.2:22
-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
-A DOCKER -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80
-A DOCKER -p udp -m udp --dport 5353 -j DNAT --to-destination 172.17.0.3:53
-A DOCKER-POSTROUTING -o balena0 -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER-POSTROUTING -s 172.17.0.0/16 ! -o balena0 -j MASQUERADE
-A DOCKER-POSTROUTING -o br-0123456789ab -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER-POSTROUTING -s 172.18.0.0/16 ! -o br-0123456789ab -j MASQUERADE
-A DOCKER-POSTROUTING -o br-nomasq -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER-POSTROUTING -s 172.18.0.2/32 -d 172.18.0.2/32 -p tcp -m tcp --dport 22 -j MASQUERADE
-A DOCKER-POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER-POSTROUTING -s 172.17.0.3/32 -d 172.17.0.3/32 -p udp -m udp --dport 53 -j MASQUERADE
`

// testRules6 is what testState renders to for IPv6: the same layout, the
// networks with IPv6, and the ports to IPv6 addresses, whose DNAT leaves
// link-local sources alone.
const testRules6 = `*filter
-A DOCKER -d fd00:18::2/128 ! -i br-0123456789ab -o br-0123456789ab -p tcp -m tcp --dport 22 -j ACCEPT
-A DOCKER -d fd00:17::2/128 ! -i balena0 -o balena0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER -d fd00:66::2/128 ! -i br-v6only -o br-v6only -p tcp -m tcp --dport 443 -j ACCEPT
-A DOCKER -d fd00:17::3/128 ! -i balena0 -o balena0 -p udp -m udp --dport 53 -j ACCEPT
-A DOCKER-FORWARD -o balena0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -o br-0123456789ab -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -o br-v6only -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -o balena0 -j DOCKER
-A DOCKER-FORWARD -i balena0 ! -o balena0 -j ACCEPT
-A DOCKER-FORWARD -i balena0 -o balena0 -j ACCEPT
-A DOCKER-FORWARD -o br-0123456789ab -j DOCKER
-A DOCKER-FORWARD -i br-0123456789ab ! -o br-0123456789ab -j ACCEPT
-A DOCKER-FORWARD -i br-0123456789ab -o br-0123456789ab -j DROP
-A DOCKER-FORWARD -i br-int -o br-int -j ACCEPT
-A DOCKER-FORWARD -o br-v6only -j DOCKER
-A DOCKER-FORWARD -i br-v6only ! -o br-v6only -j ACCEPT
-A DOCKER-FORWARD -i br-v6only -o br-v6only -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i br-int ! -o br-int -j DROP
-A DOCKER-ISOLATION-STAGE-1 ! -i br-int -o br-int -j DROP
-A DOCKER-ISOLATION-STAGE-1 -i balena0 ! -o balena0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -i br-0123456789ab ! -o br-0123456789ab -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -i br-v6only ! -o br-v6only -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -j DOCKER
-A DOCKER-ISOLATION-STAGE-2 -o balena0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP
-A DOCKER-ISOLATION-STAGE-2 -o br-v6only -j DROP
*nat
-A DOCKER ! -s fe80::/10 -d 2001:db8::7/128 -p tcp -m tcp --dport 2222 -j DNAT --to-destination [fd00:18::2]:22
-A DOCKER ! -s fe80::/10 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:17::2]:80
-A DOCKER ! -s fe80::/10 -p tcp -m tcp --dport 8081 -j DNAT --to-destination [fd00:17::2]:80
-A DOCKER ! -s fe80::/10 -p tcp -m tcp --dport 8443 -j DNAT --to-destination [fd00:66::2]:443
-A DOCKER ! -s fe80::/10 -p udp -m udp --dport 5353 -j DNAT --to-destination [fd00:17::3]:53
-A DOCKER-POSTROUTING -o balena0 -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER-POSTROUTING -s fd00:17::/64 ! -o balena0 -j MASQUERADE
-A DOCKER-POSTROUTING -o br-0123456789ab -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER-POSTROUTING -s fd00:18::/64 ! -o br-0123456789ab -j MASQUERADE
-A DOCKER-POSTROUTING -o br-v6only -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER-POSTROUTING -s fd00:66::/64 ! -o br-v6only -j MASQUERADE
-A DOCKER-POSTROUTING -s fd00:18::2/128 -d fd00:18::2/128 -p tcp -m tcp --dport 22 -j MASQUERADE
-A DOCKER-POSTROUTING -s fd00:17::2/128 -d fd00:17::2/128 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER-POSTROUTING -s fd00:66::2/128 -d fd00:66::2/128 -p tcp -m tcp --dport 443 -j MASQUERADE
-A DOCKER-POSTROUTING -s fd00:17::3/128 -d fd00:17::3/128 -p udp -m udp --dport 53 -j MASQUERADE
`

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// rulesText prints a ruleset as testRules is written.
func rulesText(rs ruleset) string {
	var b strings.Builder
	for _, t := range tables {
		b.WriteString("*" + t + "\n")
		for _, c := range ownChains[t] {
			for _, r := range rs[t][c] {
				b.WriteString("-A " + c + " " + r + "\n")
			}
		}
	}
	return b.String()
}

func mustRender(t *testing.T, s State) [nFamilies]ruleset {
	t.Helper()
	rs, err := render(s)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestRender checks both backends' texts for both families; see also
// TestRenderNFT.
func TestRender(t *testing.T) {
	rs := mustRender(t, testState())
	for fam, want := range [nFamilies]string{testRules, testRules6} {
		if got := rulesText(rs[fam]); got != want {
			t.Errorf("%s rules:\n%s\nwant:\n%s", families[fam].name, got, want)
		}
	}
	if got := mustRenderNFT(t, testState()); got != [nFamilies]string{testNFT, testNFT6} {
		t.Errorf("nft scripts:\n%s\nwant:\n%s", got[ipv4]+got[ipv6], testNFT+testNFT6)
	}

	// The order of the state's slices does not matter.
	s := testState()
	slices.Reverse(s.Networks)
	slices.Reverse(s.Ports)
	rs2 := mustRender(t, s)
	if rs2[ipv4].key() != rs[ipv4].key() || rs2[ipv6].key() != rs[ipv6].key() || mustRenderNFT(t, s) != [nFamilies]string{testNFT, testNFT6} {
		t.Error("reordering the state changed the rules")
	}

	// Without IPv6 the IPv4 rules are the same, and IPv6 is not used.
	rs4 := mustRender(t, v4Only(testState()))
	if got := rulesText(rs4[ipv4]); got != testRules || rs4[ipv6] != nil {
		t.Errorf("without IPv6: %v\n%s", rs4[ipv6], got)
	}
	if got := mustRenderNFT(t, v4Only(testState())); got != [nFamilies]string{testNFT, ""} {
		t.Errorf("without IPv6:\n%s", got[ipv4]+got[ipv6])
	}

	empty := mustRender(t, State{})
	if got, want := rulesText(empty[ipv4]), "*filter\n*nat\n"; got != want || empty[ipv6] != nil {
		t.Errorf("empty state: %q, %v, want %q", got, empty[ipv6], want)
	}
	if got := mustRenderNFT(t, State{}); got != [nFamilies]string{emptyNFT, ""} {
		t.Errorf("empty state:\n%s\nwant:\n%s", got[ipv4]+got[ipv6], emptyNFT)
	}
}

func TestRenderInvalid(t *testing.T) {
	good := Network{Bridge: "br0", Subnet: netip.MustParsePrefix("10.0.0.0/24"), Masquerade: true}
	port := Port{Proto: "tcp", HostPort: 80, ContainerIP: mustAddr("10.0.0.2"), ContainerPort: 80, Bridge: "br0"}
	for name, s := range map[string]State{
		"bridge name with space":  {Networks: []Network{{Bridge: "br 0", Subnet: good.Subnet}}},
		"bridge name wildcard":    {Networks: []Network{{Bridge: "br+", Subnet: good.Subnet}}},
		"bridge name option":      {Networks: []Network{{Bridge: "-j", Subnet: good.Subnet}}},
		"bridge name too long":    {Networks: []Network{{Bridge: "br-0123456789abc", Subnet: good.Subnet}}},
		"no subnet":               {Networks: []Network{{Bridge: "br0"}}},
		"bridge twice":            {Networks: []Network{good, good}},
		"unknown bridge":          {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.Bridge = "br1"; return p }()}},
		"sctp":                    {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.Proto = "sctp"; return p }()}},
		"port 0":                  {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.HostPort = 0; return p }()}},
		"no container address":    {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.ContainerIP = netip.Addr{}; return p }()}},
		"IPv4 subnet as Subnet6":  {Networks: []Network{{Bridge: "br0", Subnet6: good.Subnet}}},
		"IPv6 subnets twice":      {Networks: []Network{{Bridge: "br0", Subnet: netip.MustParsePrefix("fd00::/64"), Subnet6: netip.MustParsePrefix("fd01::/64")}}},
		"mapped IPv4 as Subnet6":  {Networks: []Network{{Bridge: "br0", Subnet6: netip.MustParsePrefix("::ffff:10.0.0.0/120")}}},
		"IPv6 port, IPv4 network": {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.ContainerIP = mustAddr("fd00::2"); return p }()}},
		"IPv4 port, IPv6 network": {Networks: []Network{{Bridge: "br0", Subnet6: netip.MustParsePrefix("fd00::/64")}}, Ports: []Port{port}},
		"zone":                    {Networks: []Network{{Bridge: "br0", Subnet6: netip.MustParsePrefix("fd00::/64")}}, Ports: []Port{func() Port { p := port; p.ContainerIP = mustAddr("fd00::2%br0"); return p }()}},
	} {
		if _, err := render(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// saveText is iptables-save output around the given rule lines.
func saveText(filter, nat string) string {
	return "# Generated by iptables-save\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [12:3400]\n:OUTPUT ACCEPT [0:0]\n" + filter +
		"COMMIT\n# Completed\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" + nat + "COMMIT\n"
}

func mustParse(t *testing.T, out string) saved {
	t.Helper()
	s, err := parseSave(out)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlanApplyFresh(t *testing.T) {
	rs := mustRender(t, State{
		Networks: []Network{{Bridge: "balena0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), Masquerade: true, ICC: true}},
		Ports:    []Port{{Proto: "tcp", HostPort: 80, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 8080, Bridge: "balena0"}},
	})[ipv4]
	cur := mustParse(t, saveText("-A FORWARD -s 10.9.9.9/32 -j DROP\n", ""))
	script, after, before := planApply(ipv4, rs, cur, nil)
	want := `*filter
:DOCKER - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-I FORWARD 1 -j DOCKER-USER
-I FORWARD 2 -j DOCKER-FORWARD
-A DOCKER -d 172.17.0.2/32 ! -i balena0 -o balena0 -p tcp -m tcp --dport 8080 -j ACCEPT
-A DOCKER-FORWARD -o balena0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -o balena0 -j DOCKER
-A DOCKER-FORWARD -i balena0 ! -o balena0 -j ACCEPT
-A DOCKER-FORWARD -i balena0 -o balena0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i balena0 ! -o balena0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -j DOCKER
-A DOCKER-ISOLATION-STAGE-2 -o balena0 -j DROP
COMMIT
*nat
:DOCKER - [0:0]
:DOCKER-POSTROUTING - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -j DOCKER-POSTROUTING
-A DOCKER -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:8080
-A DOCKER-POSTROUTING -o balena0 -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER-POSTROUTING -s 172.17.0.0/16 ! -o balena0 -j MASQUERADE
-A DOCKER-POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 8080 -j MASQUERADE
COMMIT
`
	if script != want {
		t.Errorf("script:\n%s\nwant:\n%s", script, want)
	}
	all := []builtinRule{}
	for _, r := range builtinRules[ipv4] {
		all = append(all, r.builtinRule)
	}
	if !slices.Equal(after, all) || !slices.Equal(before, all) {
		t.Errorf("owned after %v, before %v; want all jumps", after, before)
	}

	// Once that ran, the kernel matches: nothing to do.
	var filter, nat strings.Builder
	filter.WriteString(":DOCKER - [0:0]\n:DOCKER-FORWARD - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n")
	filter.WriteString("-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-FORWARD\n-A FORWARD -s 10.9.9.9/32 -j DROP\n")
	nat.WriteString(":DOCKER - [0:0]\n:DOCKER-POSTROUTING - [0:0]\n")
	nat.WriteString("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER\n-A POSTROUTING -j DOCKER-POSTROUTING\n")
	for _, l := range strings.Split(script, "\n") {
		if strings.HasPrefix(l, "-A DOCKER") {
			if strings.Contains(l, "DNAT") || strings.HasPrefix(l, "-A DOCKER-POSTROUTING") {
				nat.WriteString(l + "\n")
			} else {
				filter.WriteString(l + "\n")
			}
		}
	}
	cur = mustParse(t, saveText(filter.String(), nat.String()))
	script, after2, before2 := planApply(ipv4, rs, cur, after)
	if script != "" {
		t.Errorf("kernel matches, but script:\n%s", script)
	}
	if !slices.Equal(after2, after) || !slices.Equal(before2, after) {
		t.Errorf("ownership changed: %v %v", after2, before2)
	}
}

func TestPlanApplyBuiltins(t *testing.T) {
	rs := mustRender(t, State{})[ipv4]
	builtins := builtinRules[ipv4]
	ownChainsDecl := ":DOCKER - [0:0]\n:DOCKER-FORWARD - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n"
	natDecl := ":DOCKER - [0:0]\n:DOCKER-POSTROUTING - [0:0]\n"
	natJumps := "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER\n-A POSTROUTING -j DOCKER-POSTROUTING\n"
	stale := builtinRule{tNat, "POSTROUTING", "-s 172.30.0.0/16 ! -o br-old -j MASQUERADE"}
	gone := builtinRule{tNat, "POSTROUTING", "-s 172.31.0.0/16 ! -o br-gone -j MASQUERADE"}
	jumpUser := builtinRule{tFilter, "FORWARD", "-j DOCKER-USER"}
	jumpFwd := builtinRule{tFilter, "FORWARD", "-j DOCKER-FORWARD"}

	cur := mustParse(t, saveText(
		// DOCKER-USER exists with a rule: it must not be declared (that
		// would flush it). The jump to it is someone else's and not first;
		// the jump to DOCKER-FORWARD is missing.
		ownChainsDecl+":DOCKER-USER - [0:0]\n"+
			"-A FORWARD -s 10.7.7.7/32 -j DROP\n-A FORWARD -j DOCKER-USER\n-A FORWARD -s 10.9.9.9/32 -j DROP\n"+
			"-A DOCKER-USER -s 10.1.2.3/32 -j DROP\n",
		// A stale rule of ours from an older layout, and a foreign rule
		// that looks like one of ours but is not recorded.
		natDecl+natJumps+"-A POSTROUTING -s 172.30.0.0/16 ! -o br-old -j MASQUERADE\n"+
			"-A POSTROUTING -s 172.29.0.0/16 ! -o br-other -j MASQUERADE\n"))
	owned := []builtinRule{stale, gone, builtins[2].builtinRule, builtins[3].builtinRule, builtins[4].builtinRule}
	script, after, before := planApply(ipv4, rs, cur, owned)
	want := "*filter\n-I FORWARD 3 -j DOCKER-FORWARD\nCOMMIT\n" +
		"*nat\n-D POSTROUTING -s 172.30.0.0/16 ! -o br-old -j MASQUERADE\nCOMMIT\n"
	if script != want {
		t.Errorf("script:\n%s\nwant:\n%s", script, want)
	}
	wantAfter := []builtinRule{builtins[2].builtinRule, builtins[3].builtinRule, builtins[4].builtinRule, jumpFwd}
	if !slices.Equal(after, wantAfter) {
		t.Errorf("owned after:\n%v\nwant:\n%v", after, wantAfter)
	}
	if !slices.Equal(before, append(slices.Clone(owned), jumpFwd)) {
		t.Errorf("owned before: %v", before)
	}
	if slices.Contains(after, jumpUser) {
		t.Error("someone else's jump to DOCKER-USER became the engine's")
	}

	// Only the jump to DOCKER-FORWARD there: DOCKER-USER goes above it.
	cur = mustParse(t, saveText(ownChainsDecl+":DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-FORWARD\n", natDecl+natJumps))
	script, _, _ = planApply(ipv4, rs, cur, nil)
	if want := "*filter\n-I FORWARD 1 -j DOCKER-USER\nCOMMIT\n"; script != want {
		t.Errorf("script:\n%s\nwant:\n%s", script, want)
	}
}

func TestPlanClear(t *testing.T) {
	owned := []builtinRule{}
	for _, r := range builtinRules[ipv4] {
		owned = append(owned, r.builtinRule)
	}
	owned = append(owned, builtinRule{tNat, "POSTROUTING", "-s 172.30.0.0/16 ! -o br-old -j MASQUERADE"}) // already gone
	filter := ":DOCKER - [0:0]\n:DOCKER-FORWARD - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n" +
		"-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-FORWARD\n-A FORWARD -s 10.9.9.9/32 -j DROP\n" +
		"-A DOCKER-FORWARD -o balena0 -j DOCKER\n-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1\n"
	nat := ":DOCKER - [0:0]\n:DOCKER-POSTROUTING - [0:0]\n" +
		"-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER\n-A POSTROUTING -j DOCKER-POSTROUTING\n" +
		"-A DOCKER -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80\n"

	got := planClear(mustParse(t, saveText(filter, nat)), owned)
	want := `*filter
:DOCKER - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
-D FORWARD -j DOCKER-USER
-D FORWARD -j DOCKER-FORWARD
-X DOCKER
-X DOCKER-FORWARD
-X DOCKER-ISOLATION-STAGE-1
-X DOCKER-ISOLATION-STAGE-2
-X DOCKER-USER
COMMIT
*nat
:DOCKER - [0:0]
:DOCKER-POSTROUTING - [0:0]
-D PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-D OUTPUT -m addrtype --dst-type LOCAL -j DOCKER
-D POSTROUTING -j DOCKER-POSTROUTING
-X DOCKER
-X DOCKER-POSTROUTING
COMMIT
`
	if got != want {
		t.Errorf("clear:\n%s\nwant:\n%s", got, want)
	}

	// DOCKER-USER with a rule stays; a chain someone else jumps to is
	// flushed but stays.
	filter2 := strings.Replace(filter, "-A FORWARD -s 10.9.9.9/32 -j DROP\n",
		"-A FORWARD -s 10.9.9.9/32 -j DROP\n-A INPUT -j DOCKER\n-A DOCKER-USER -s 10.1.2.3/32 -j DROP\n", 1)
	got = planClear(mustParse(t, saveText(filter2, nat)), owned)
	if strings.Contains(got, "-X DOCKER-USER") || strings.Contains(got, "-X DOCKER\n-X DOCKER-FORWARD") ||
		!strings.Contains(got, ":DOCKER - [0:0]") || !strings.Contains(got, "-X DOCKER-FORWARD") {
		t.Errorf("clear:\n%s", got)
	}

	// Nothing there: nothing to do.
	if got := planClear(mustParse(t, saveText("", "")), nil); got != "" {
		t.Errorf("clear of nothing: %q", got)
	}
}

func TestParseSave(t *testing.T) {
	s := mustParse(t, saveText(":DOCKER - [0:0]\n-A DOCKER -d 1.2.3.4/32 -j ACCEPT\n", ""))
	if !s[tFilter].chains["DOCKER"] || !s[tFilter].chains["FORWARD"] || !s[tNat].chains["POSTROUTING"] {
		t.Errorf("chains: %v %v", s[tFilter].chains, s[tNat].chains)
	}
	if got := s[tFilter].rules["DOCKER"]; !slices.Equal(got, []string{"-d 1.2.3.4/32 -j ACCEPT"}) {
		t.Errorf("rules: %q", got)
	}
	for _, bad := range []string{"-A FORWARD -j DROP\n", "*filter\nbogus\nCOMMIT\n"} {
		if _, err := parseSave(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// fakeProgram writes an executable shell script into dir.
func fakeProgram(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewNotFound(t *testing.T) {
	_, err := New(Options{RestoreCmd: "no-such-iptables-restore", SaveCmd: "true"})
	if err == nil || !strings.Contains(err.Error(), "no-such-iptables-restore not found: install iptables or run with --iptables=false") {
		t.Errorf("error: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = New(Options{})
	if err == nil || !strings.Contains(err.Error(), "iptables-restore not found") {
		t.Errorf("error: %v", err)
	}
}

func TestBackendAndErrors(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	save := fakeProgram(t, dir, "save", `[ "$1" = --version ] && { echo "iptables-save v1.8.9 (legacy)"; exit 0; }
printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n'`)
	restore := fakeProgram(t, dir, "restore", `[ "$1" = --version ] && { echo "iptables-restore v1.8.9 (legacy)"; exit 0; }
cat >/dev/null; echo "iptables-restore: line 3 failed" >&2; exit 1`)
	nft := fakeProgram(t, dir, "nft-restore", `echo "iptables-restore v1.8.9 (nf_tables)"`)

	fw, err := New(Options{RestoreCmd: restore, SaveCmd: save, Restore6Cmd: restore, Save6Cmd: save, StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	f := fw.(*IPTables)
	if got := f.Backend(); got != "iptables (legacy)" {
		t.Errorf("backend %q", got)
	}
	err = f.Apply(State{})
	if err == nil {
		t.Fatal("no error from a failing iptables-restore")
	}
	for _, want := range []string{"iptables-restore: line 3 failed", `input line 3: ":DOCKER-FORWARD - [0:0]"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// The jumps were recorded before the run, in case it got as far as
	// adding them.
	rec, err := loadRecord(filepath.Join(dir, "state", stateFileNames[ipv4]))
	if err != nil || len(rec) != len(builtinRules[ipv4]) {
		t.Errorf("record %v, %v", rec, err)
	}
	// A failed Apply is not remembered as applied.
	n := f.runs.Load()
	if f.Apply(State{}) == nil || f.runs.Load() == n {
		t.Error("the second Apply after a failure did not run the programs")
	}

	if _, err := New(Options{RestoreCmd: nft, SaveCmd: save}); err == nil || !strings.Contains(err.Error(), "same iptables variant") {
		t.Errorf("mixed variants: %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "state", stateFileNames[ipv6]), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{RestoreCmd: restore, SaveCmd: save, StateDir: filepath.Join(dir, "state")}); err == nil ||
		!strings.Contains(err.Error(), stateFileNames[ipv6]) {
		t.Errorf("corrupt record: %v", err)
	}
}

// TestIPv6Programs: ip6tables runs (is even looked for) only for a state
// with IPv6, and without it only such a state fails, once the IPv4 rules
// are applied.
func TestIPv6Programs(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	// Fake programs that log their name, arguments and input.
	prog := func(name, output string) string {
		return fakeProgram(t, dir, name, `echo "`+name+` $*" >>`+log+`
[ "$1" = --version ] && exit 0
cat >>`+log+`
printf '`+output+`'`)
	}
	save := `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n`
	opts := Options{RestoreCmd: prog("restore", ""), SaveCmd: prog("save", save),
		Restore6Cmd: prog("restore6", ""), Save6Cmd: prog("save6", save)}
	logged := func() string {
		t.Helper()
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(log); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	fw, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := logged(); got != "restore --version\nsave --version\n" {
		t.Errorf("New ran:\n%s", got)
	}
	if err := fw.Apply(v4Only(testState())); err != nil {
		t.Fatal(err)
	}
	if got := logged(); strings.Contains(got, "restore6") || strings.Contains(got, "save6") || !strings.Contains(got, "restore --noflush") {
		t.Errorf("an IPv4 state ran:\n%s", got)
	}
	if err := fw.Apply(testState()); err != nil {
		t.Fatal(err)
	}
	if got := logged(); strings.Contains(got, "restore --noflush") || !strings.Contains(got, "save6 \n") ||
		!strings.Contains(got, "restore6 --noflush --wait=10\n*filter\n") || !strings.Contains(got, "--to-destination [fd00:17::2]:80\n") {
		t.Errorf("adding IPv6 ran:\n%s", got)
	}
	// IPv6 gone: the engine's IPv6 rules are looked for (to go, in
	// TestIPv6OnOff), and then no more.
	for i, want := range []string{"save6 \n", ""} {
		if err := fw.Apply(v4Only(testState())); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(log); string(got) != want {
			t.Errorf("removing IPv6, Apply %d ran:\n%s", i, got)
		}
		os.Remove(log)
	}

	// No ip6tables: IPv4 works, IPv6 fails after the IPv4 rules are in.
	opts.Restore6Cmd = "no-such-ip6tables-restore"
	if fw, err = New(opts); err != nil {
		t.Fatal(err)
	}
	logged()
	err = fw.Apply(testState())
	if err == nil || !strings.Contains(err.Error(), "firewall: IPv6 rules not applied: no-such-ip6tables-restore not found") {
		t.Errorf("IPv6 without ip6tables: %v", err)
	}
	if got := logged(); !strings.Contains(got, "restore --noflush") {
		t.Errorf("the IPv4 rules were not applied:\n%s", got)
	}
	if err := fw.Apply(v4Only(testState())); err != nil {
		t.Errorf("IPv4 without ip6tables: %v", err)
	}
	if d, ok := fw.(interface{ DropForwarded6() error }); !ok || d.DropForwarded6() == nil {
		t.Error("DropForwarded6 without ip6tables did not fail")
	}
	if err := fw.Clear(); err != nil {
		t.Errorf("Clear without ip6tables: %v", err)
	}

	// ip6tables of two variants: the same.
	opts.Restore6Cmd = fakeProgram(t, dir, "restore6-nft", `echo "ip6tables-restore v1.8.9 (nf_tables)"`)
	opts.Save6Cmd = fakeProgram(t, dir, "save6-legacy", `echo "ip6tables-save v1.8.9 (legacy)"`)
	if fw, err = New(opts); err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(testState()); err == nil || !strings.Contains(err.Error(), "same iptables variant") {
		t.Errorf("mixed IPv6 variants: %v", err)
	}
}

// A legacy link opens the linked container's port to the linking one on a
// bridge without ICC, before its drop, in each backend; on a bridge with
// ICC it adds nothing.
func TestLinkRules(t *testing.T) {
	s := State{
		Networks: []Network{
			{Bridge: "balena0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:17::/64"), Masquerade: true},
			{Bridge: "br-open", Subnet: netip.MustParsePrefix("172.19.0.0/16"), Masquerade: true, ICC: true},
		},
		Links: []Link{
			{Bridge: "balena0", From: mustAddr("172.17.0.3"), To: mustAddr("172.17.0.2"), Proto: "tcp", Port: 5432},
			{Bridge: "balena0", From: mustAddr("fd00:17::3"), To: mustAddr("fd00:17::2"), Proto: "udp", Port: 53},
			{Bridge: "br-open", From: mustAddr("172.19.0.3"), To: mustAddr("172.19.0.2"), Proto: "tcp", Port: 80},
		},
	}
	rs := mustRender(t, s)
	v4, v6 := rulesText(rs[ipv4]), rulesText(rs[ipv6])
	accept := "-A DOCKER-FORWARD -s 172.17.0.3/32 -d 172.17.0.2/32 -i balena0 -o balena0 -p tcp -m tcp --dport 5432 -j ACCEPT\n"
	drop := "-A DOCKER-FORWARD -i balena0 -o balena0 -j DROP\n"
	if i, j := strings.Index(v4, accept), strings.Index(v4, drop); i < 0 || j < i {
		t.Errorf("IPv4: the link's accept %q not before the ICC drop:\n%s", accept, v4)
	}
	if !strings.Contains(v6, "-s fd00:17::3/128 -d fd00:17::2/128 -i balena0 -o balena0 -p udp -m udp --dport 53 -j ACCEPT") {
		t.Errorf("IPv6: no link accept:\n%s", v6)
	}
	if strings.Contains(v4, "172.19.0.3") {
		t.Errorf("a link on a bridge with ICC made a rule:\n%s", v4)
	}
	if nft := mustRenderNFT(t, s); !strings.Contains(nft[ipv4], "172.17.0.3") || !strings.Contains(nft[ipv4], "5432") || !strings.Contains(nft[ipv6], "fd00:17::3") {
		t.Errorf("nft: no link rules:\n%s", nft[ipv4]+nft[ipv6])
	}
	for _, bad := range []Link{
		{Bridge: "br-none", From: mustAddr("172.17.0.3"), To: mustAddr("172.17.0.2"), Proto: "tcp", Port: 1},
		{Bridge: "balena0", From: mustAddr("172.17.0.3"), To: mustAddr("fd00:17::2"), Proto: "tcp", Port: 1},
		{Bridge: "balena0", From: mustAddr("172.17.0.3"), To: mustAddr("172.17.0.2"), Proto: "sctp", Port: 1},
	} {
		if _, err := render(State{Networks: s.Networks, Links: []Link{bad}}); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
