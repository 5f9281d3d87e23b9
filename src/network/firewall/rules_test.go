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
// this package must skip.
func testState() State {
	return State{
		Networks: []Network{
			{Bridge: "br-nomasq", Subnet: netip.MustParsePrefix("172.20.0.0/16"), ICC: true},
			{Bridge: "br-int", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Masquerade: true, ICC: true, Internal: true},
			{Bridge: "br-0123456789ab", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Masquerade: true},
			{Bridge: "balena0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), Masquerade: true, ICC: true},
		},
		Ports: []Port{
			{Proto: "udp", HostPort: 5353, ContainerIP: mustAddr("172.17.0.3"), ContainerPort: 53, Bridge: "balena0"},
			{Proto: "tcp", HostPort: 8081, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 80, Bridge: "balena0"},
			{Proto: "tcp", HostPort: 8080, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 80, Bridge: "balena0"},
			{Proto: "tcp", HostIP: mustAddr("192.168.7.1"), HostPort: 2222, ContainerIP: mustAddr("172.18.0.2"), ContainerPort: 22, Bridge: "br-0123456789ab"},
			// The same binding twice, and 0.0.0.0 spelled out: one rule.
			{Proto: "tcp", HostIP: mustAddr("0.0.0.0"), HostPort: 8080, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 80, Bridge: "balena0"},
			// Skipped: IPv6, and an internal network.
			{Proto: "tcp", HostIP: mustAddr("::"), HostPort: 9000, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 9000, Bridge: "balena0"},
			{Proto: "tcp", HostPort: 7000, ContainerIP: mustAddr("10.99.0.2"), ContainerPort: 7000, Bridge: "br-int"},
		},
	}
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

// TestRender checks both backends' texts; see also TestRenderNFT.
func TestRender(t *testing.T) {
	rs, err := render(testState())
	if err != nil {
		t.Fatal(err)
	}
	if got := rulesText(rs); got != testRules {
		t.Errorf("rules:\n%s\nwant:\n%s", got, testRules)
	}
	if got := mustRenderNFT(t, testState()); got != testNFT {
		t.Errorf("nft script:\n%s\nwant:\n%s", got, testNFT)
	}

	// The order of the state's slices does not matter.
	s := testState()
	slices.Reverse(s.Networks)
	slices.Reverse(s.Ports)
	rs2, err := render(s)
	if err != nil {
		t.Fatal(err)
	}
	if rs2.key() != rs.key() || mustRenderNFT(t, s) != testNFT {
		t.Error("reordering the state changed the rules")
	}

	empty, err := render(State{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rulesText(empty), "*filter\n*nat\n"; got != want {
		t.Errorf("empty state: %q, want %q", got, want)
	}
	if got := mustRenderNFT(t, State{}); got != emptyNFT {
		t.Errorf("empty state:\n%s\nwant:\n%s", got, emptyNFT)
	}
}

func TestRenderInvalid(t *testing.T) {
	good := Network{Bridge: "br0", Subnet: netip.MustParsePrefix("10.0.0.0/24"), Masquerade: true}
	port := Port{Proto: "tcp", HostPort: 80, ContainerIP: mustAddr("10.0.0.2"), ContainerPort: 80, Bridge: "br0"}
	for name, s := range map[string]State{
		"bridge name with space": {Networks: []Network{{Bridge: "br 0", Subnet: good.Subnet}}},
		"bridge name wildcard":   {Networks: []Network{{Bridge: "br+", Subnet: good.Subnet}}},
		"bridge name option":     {Networks: []Network{{Bridge: "-j", Subnet: good.Subnet}}},
		"bridge name too long":   {Networks: []Network{{Bridge: "br-0123456789abc", Subnet: good.Subnet}}},
		"no subnet":              {Networks: []Network{{Bridge: "br0"}}},
		"bridge twice":           {Networks: []Network{good, good}},
		"unknown bridge":         {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.Bridge = "br1"; return p }()}},
		"sctp":                   {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.Proto = "sctp"; return p }()}},
		"port 0":                 {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.HostPort = 0; return p }()}},
		"no container address":   {Networks: []Network{good}, Ports: []Port{func() Port { p := port; p.ContainerIP = netip.Addr{}; return p }()}},
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
	rs, err := render(State{
		Networks: []Network{{Bridge: "balena0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), Masquerade: true, ICC: true}},
		Ports:    []Port{{Proto: "tcp", HostPort: 80, ContainerIP: mustAddr("172.17.0.2"), ContainerPort: 8080, Bridge: "balena0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cur := mustParse(t, saveText("-A FORWARD -s 10.9.9.9/32 -j DROP\n", ""))
	script, after, before := planApply(rs, cur, nil)
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
	for _, r := range builtinRules {
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
	script, after2, before2 := planApply(rs, cur, after)
	if script != "" {
		t.Errorf("kernel matches, but script:\n%s", script)
	}
	if !slices.Equal(after2, after) || !slices.Equal(before2, after) {
		t.Errorf("ownership changed: %v %v", after2, before2)
	}
}

func TestPlanApplyBuiltins(t *testing.T) {
	rs, err := render(State{})
	if err != nil {
		t.Fatal(err)
	}
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
	owned := []builtinRule{stale, gone, builtinRules[2].builtinRule, builtinRules[3].builtinRule, builtinRules[4].builtinRule}
	script, after, before := planApply(rs, cur, owned)
	want := "*filter\n-I FORWARD 3 -j DOCKER-FORWARD\nCOMMIT\n" +
		"*nat\n-D POSTROUTING -s 172.30.0.0/16 ! -o br-old -j MASQUERADE\nCOMMIT\n"
	if script != want {
		t.Errorf("script:\n%s\nwant:\n%s", script, want)
	}
	wantAfter := []builtinRule{builtinRules[2].builtinRule, builtinRules[3].builtinRule, builtinRules[4].builtinRule, jumpFwd}
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
	script, _, _ = planApply(rs, cur, nil)
	if want := "*filter\n-I FORWARD 1 -j DOCKER-USER\nCOMMIT\n"; script != want {
		t.Errorf("script:\n%s\nwant:\n%s", script, want)
	}
}

func TestPlanClear(t *testing.T) {
	owned := []builtinRule{}
	for _, r := range builtinRules {
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

	fw, err := New(Options{RestoreCmd: restore, SaveCmd: save, StateDir: filepath.Join(dir, "state")})
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
	rec, err := loadRecord(filepath.Join(dir, "state", stateFileName))
	if err != nil || len(rec) != len(builtinRules) {
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

	if err := os.WriteFile(filepath.Join(dir, "state", stateFileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{RestoreCmd: restore, SaveCmd: save, StateDir: filepath.Join(dir, "state")}); err == nil ||
		!strings.Contains(err.Error(), stateFileName) {
		t.Errorf("corrupt record: %v", err)
	}
}
