package firewall

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/nstest"
)

// These tests run the real iptables and ip6tables programs, each in a
// network namespace of its own (see nstest.Isolate).

type backend struct {
	name, variant string
	restore, save [nFamilies]string
}

var backends = []backend{
	{"legacy", "legacy", [...]string{"iptables-legacy-restore", "ip6tables-legacy-restore"}, [...]string{"iptables-legacy-save", "ip6tables-legacy-save"}},
	{"nft", "nf_tables", [...]string{"iptables-nft-restore", "ip6tables-nft-restore"}, [...]string{"iptables-nft-save", "ip6tables-nft-save"}},
}

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if nstest.Isolate(t, append(b.restore[:], b.save[:]...)...) {
				fn(t, b)
			}
		})
	}
}

func (b backend) firewall(t *testing.T, stateDir string) *IPTables {
	t.Helper()
	f, err := New(Options{RestoreCmd: b.restore[ipv4], SaveCmd: b.save[ipv4],
		Restore6Cmd: b.restore[ipv6], Save6Cmd: b.save[ipv6], StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	return f.(*IPTables)
}

// raw feeds script to the family's iptables-restore --noflush, as another
// program would change the rules.
func (b backend) raw(t *testing.T, fam family, script string) {
	t.Helper()
	cmd := exec.Command(b.restore[fam], "--noflush")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s\ninput:\n%s", b.restore[fam], err, out, script)
	}
}

// dump is the family's filter and nat tables as normalize prints them.
func (b backend) dump(t *testing.T, fam family) string {
	t.Helper()
	out, err := exec.Command(b.save[fam]).Output()
	if err != nil {
		t.Fatalf("%s: %v", b.save[fam], err)
	}
	return normalize(string(out))
}

// normalize prints iptables-save-like text with chains sorted, rules kept
// in order within their chain and counters dropped, so that expectations
// need not follow either variant's order of chains. A table may appear more
// than once in the input; its parts are joined.
func normalize(text string) string {
	type table struct {
		decls map[string]string
		rules map[string][]string
	}
	tabs := map[string]*table{}
	var cur *table
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "*"):
			name := l[1:]
			if tabs[name] == nil {
				tabs[name] = &table{decls: map[string]string{}, rules: map[string][]string{}}
			}
			cur = tabs[name]
		case cur == nil || l == "" || l == "COMMIT" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			cur.decls[f[0]] = f[1]
		case strings.HasPrefix(l, "-A "):
			f := strings.SplitN(l, " ", 3)
			cur.rules[f[1]] = append(cur.rules[f[1]], l)
		default:
			panic("normalize: " + l)
		}
	}
	var b strings.Builder
	for _, name := range []string{tFilter, tNat} {
		tab := tabs[name]
		if tab == nil {
			continue
		}
		b.WriteString("*" + name + "\n")
		var chains []string
		for c := range tab.decls {
			chains = append(chains, c)
		}
		sort.Strings(chains)
		for _, c := range chains {
			b.WriteString(":" + c + " " + tab.decls[c] + "\n")
		}
		for _, c := range chains {
			for _, r := range tab.rules[c] {
				b.WriteString(r + "\n")
			}
		}
	}
	return b.String()
}

func expectDump(t *testing.T, b backend, fam family, parts ...string) {
	t.Helper()
	if got, want := b.dump(t, fam), normalize(strings.Join(parts, "\n")); got != want {
		t.Fatalf("%s:\n%s\nwant:\n%s", b.save[fam], got, want)
	}
}

// to6 turns an IPv4 text of this file into its IPv6 counterpart: other
// addresses, and the jump from OUTPUT that leaves ::1 alone.
var to6 = strings.NewReplacer(
	"10.9.9.9/32", "fd09::9/128",
	"10.8.0.0/16", "fd08::/64",
	"10.7.7.7/32", "fd07::7/128",
	"10.1.2.3/32", "fd01::3/128",
	"-A OUTPUT -m addrtype", "-A OUTPUT ! -d ::1/128 -m addrtype",
).Replace

// Rules of others that must survive everything: put there before the
// engine starts.
const (
	foreignSetup = `*filter
-A FORWARD -s 10.9.9.9/32 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
*nat
-A POSTROUTING -s 10.8.0.0/16 -o eth9 -j MASQUERADE
COMMIT
`
	builtinChains = `*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
`
	// engineChains are the engine's chains and jumps, with the foreign rules
	// in the same chains where they end up.
	engineChains = `*filter
:DOCKER -
:DOCKER-FORWARD -
:DOCKER-ISOLATION-STAGE-1 -
:DOCKER-ISOLATION-STAGE-2 -
:DOCKER-USER -
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A FORWARD -s 10.9.9.9/32 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
*nat
:DOCKER -
:DOCKER-POSTROUTING -
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 10.8.0.0/16 -o eth9 -j MASQUERADE
-A POSTROUTING -j DOCKER-POSTROUTING
`
	foreignOnly = `*filter
-A FORWARD -s 10.9.9.9/32 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
*nat
-A POSTROUTING -s 10.8.0.0/16 -o eth9 -j MASQUERADE
`
)

// engineBare is engineChains without the foreign rules.
func engineBare() string {
	return strings.NewReplacer(
		"-A FORWARD -s 10.9.9.9/32 -j DROP\n", "",
		"-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n", "",
		"-A POSTROUTING -s 10.8.0.0/16 -o eth9 -j MASQUERADE\n", "").Replace(engineChains)
}

// smallerState is testState without br-0123456789ab and without the UDP
// ports; smallerRules is what it renders to, given what testState renders
// to in the same family.
func smallerState() State {
	s := testState()
	s.Networks = slices.DeleteFunc(s.Networks, func(n Network) bool { return n.Bridge == "br-0123456789ab" })
	s.Ports = slices.DeleteFunc(s.Ports, func(p Port) bool { return p.Bridge == "br-0123456789ab" || p.Proto == "udp" })
	return s
}

func smallerRules(rules string) string {
	var keep []string
	for _, l := range strings.Split(rules, "\n") {
		if !strings.Contains(l, "br-0123456789ab") && !strings.Contains(l, "172.18.") && !strings.Contains(l, "fd00:18:") && !strings.Contains(l, "udp") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestApplyAndClear(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		b.raw(t, ipv4, foreignSetup)
		b.raw(t, ipv6, to6(foreignSetup))
		dir := t.TempDir()
		f := b.firewall(t, dir)
		if got, want := f.Backend(), "iptables ("+b.variant+")"; got != want {
			t.Errorf("Backend() = %q, want %q", got, want)
		}

		if err := f.Apply(testState()); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv4, builtinChains, engineChains, testRules)
		expectDump(t, b, ipv6, builtinChains, to6(engineChains), testRules6)

		// Someone adds a rule to DOCKER-USER and one above the jumps.
		b.raw(t, ipv4, "*filter\n-A DOCKER-USER -s 10.1.2.3/32 -j DROP\n-I FORWARD 1 -s 10.7.7.7/32 -j DROP\nCOMMIT\n")
		others := "*filter\n-A DOCKER-USER -s 10.1.2.3/32 -j DROP\n"
		withTop := strings.Replace(engineChains, "-A FORWARD -j DOCKER-USER\n", "-A FORWARD -s 10.7.7.7/32 -j DROP\n-A FORWARD -j DOCKER-USER\n", 1)

		// The same state, in another order: no program runs.
		s := testState()
		slices.Reverse(s.Ports)
		slices.Reverse(s.Networks)
		if got := countRuns(t, &f.runner, func() error { return f.Apply(s) }); got != 0 {
			t.Errorf("Apply of an unchanged state ran %d programs", got)
		}
		expectDump(t, b, ipv4, builtinChains, withTop, others, testRules)

		// Removing a network and a port removes their rules, and only
		// theirs.
		if err := f.Apply(smallerState()); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv4, builtinChains, withTop, others, smallerRules(testRules))
		expectDump(t, b, ipv6, builtinChains, to6(engineChains), smallerRules(testRules6))

		// A jump someone deleted comes back where it belongs on the next
		// change.
		b.raw(t, ipv4, "*filter\n-D FORWARD -j DOCKER-FORWARD\nCOMMIT\n")
		s = smallerState()
		s.Ports = append(s.Ports, Port{Proto: "tcp", HostPort: 443, ContainerIP: mustAddr("172.20.0.5"), ContainerPort: 8443, Bridge: "br-nomasq"})
		if err := f.Apply(s); err != nil {
			t.Fatal(err)
		}
		// (The rules themselves are TestRender's business.)
		expectDump(t, b, ipv4, builtinChains, withTop, others, rulesText(mustRender(t, s)[ipv4]))

		// Clear leaves the others' rules, DOCKER-USER among them while it
		// has one.
		if err := f.Clear(); err != nil {
			t.Fatal(err)
		}
		foreignWithTop := strings.Replace(foreignOnly, "-A FORWARD -s 10.9.9.9/32 -j DROP\n", "-A FORWARD -s 10.7.7.7/32 -j DROP\n-A FORWARD -s 10.9.9.9/32 -j DROP\n", 1)
		expectDump(t, b, ipv4, builtinChains, foreignWithTop, "*filter\n:DOCKER-USER -\n", others)
		expectDump(t, b, ipv6, builtinChains, to6(foreignOnly))
		for _, name := range stateFileNames {
			if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("record %s left after Clear: %v", name, err)
			}
		}

		// An empty DOCKER-USER goes too.
		b.raw(t, ipv4, "*filter\n-D DOCKER-USER -s 10.1.2.3/32 -j DROP\nCOMMIT\n")
		if err := f.Clear(); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv4, builtinChains, foreignWithTop)

		// And the engine can start over.
		if err := f.Apply(testState()); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv4, builtinChains, strings.Replace(engineChains, "-A FORWARD -s 10.9.9.9/32 -j DROP\n", "-A FORWARD -s 10.7.7.7/32 -j DROP\n-A FORWARD -s 10.9.9.9/32 -j DROP\n", 1), testRules)
		expectDump(t, b, ipv6, builtinChains, to6(engineChains), testRules6)
	})
}

// TestRestart is a daemon that crashed and started again with the same
// StateDir: the new Firewall removes its predecessor's leftovers and
// nothing that only looks like them.
func TestRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		lookalike := "*nat\n-A POSTROUTING -s 172.29.0.0/16 ! -o br-other -j MASQUERADE\nCOMMIT\n"
		b.raw(t, ipv4, foreignSetup)
		b.raw(t, ipv4, lookalike)
		b.raw(t, ipv6, to6(foreignSetup))
		dir := t.TempDir()
		f1 := b.firewall(t, dir)
		if err := f1.Apply(testState()); err != nil {
			t.Fatal(err)
		}
		// An older engine put masquerade rules into POSTROUTING itself.
		stale := builtinRule{tNat, "POSTROUTING", "-s 172.30.0.0/16 ! -o br-old -j MASQUERADE"}
		b.raw(t, ipv4, "*nat\n-A "+stale.Chain+" "+stale.Rule+"\nCOMMIT\n")
		if err := writeRecord(filepath.Join(dir, stateFileNames[ipv4]), append(slices.Clone(f1.fams[ipv4].owned), stale)); err != nil {
			t.Fatal(err)
		}
		engine := strings.Replace(engineChains, "-A POSTROUTING -j DOCKER-POSTROUTING\n",
			"-A POSTROUTING -s 172.29.0.0/16 ! -o br-other -j MASQUERADE\n-A POSTROUTING -j DOCKER-POSTROUTING\n", 1)

		// f1 is gone as if the daemon crashed.
		f2 := b.firewall(t, dir)
		if err := f2.Apply(smallerState()); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv4, builtinChains, engine, smallerRules(testRules))
		expectDump(t, b, ipv6, builtinChains, to6(engineChains), smallerRules(testRules6))

		// Started again with nothing changed: one iptables-save and one
		// ip6tables-save to check, no iptables-restore (and, on first use,
		// ip6tables-restore and -save --version).
		f3 := b.firewall(t, dir)
		if got := countRuns(t, &f3.runner, func() error { return f3.Apply(smallerState()) }); got != 4 {
			t.Errorf("first Apply after a restart ran %d programs, want 4", got)
		}
		expectDump(t, b, ipv4, builtinChains, engine, smallerRules(testRules))
		expectDump(t, b, ipv6, builtinChains, to6(engineChains), smallerRules(testRules6))

		// Started again with --iptables=false: Clear removes it all.
		f4 := b.firewall(t, dir)
		if err := f4.Clear(); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv4, builtinChains, foreignOnly, lookalike)
		expectDump(t, b, ipv6, builtinChains, to6(foreignOnly))
	})
}

// TestClearForeignJump: a chain of the engine that someone else jumps to
// cannot be deleted; Clear empties it and succeeds.
func TestClearForeignJump(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := b.firewall(t, "")
		if err := f.Apply(testState()); err != nil {
			t.Fatal(err)
		}
		b.raw(t, ipv4, "*filter\n-A INPUT -j DOCKER\nCOMMIT\n")
		if err := f.Clear(); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv4, builtinChains, "*filter\n:DOCKER -\n-A INPUT -j DOCKER\n")
		expectDump(t, b, ipv6, builtinChains)
	})
}

func TestConcurrentApply(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		applyConcurrently(t, b.firewall(t, t.TempDir()))
		expectDump(t, b, ipv4, builtinChains, engineBare(), testRules)
		expectDump(t, b, ipv6, builtinChains, to6(engineBare()), testRules6)
	})
}

// TestInternalOnly: an internal network alone gets only its seal and its
// ICC rule (here off), in both families; TestTraffic checks that this
// keeps it in.
func TestInternalOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := b.firewall(t, "")
		s := State{Networks: []Network{{Bridge: "br-in", Subnet: netip.MustParsePrefix("10.1.0.0/24"),
			Subnet6: netip.MustParsePrefix("fd00:1::/64"), Masquerade: true, Internal: true}}}
		if err := f.Apply(s); err != nil {
			t.Fatal(err)
		}
		rules := `*filter
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -i br-in -o br-in -j DROP
-A DOCKER-ISOLATION-STAGE-1 -i br-in ! -o br-in -j DROP
-A DOCKER-ISOLATION-STAGE-1 ! -i br-in -o br-in -j DROP
`
		expectDump(t, b, ipv4, builtinChains, engineBare(), rules)
		expectDump(t, b, ipv6, builtinChains, to6(engineBare()), rules)
	})
}

// TestIPv6OnOff: ip6tables is left alone until a network has IPv6, and the
// engine's IPv6 rules go once none has, after a restart too.
func TestIPv6OnOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		f := b.firewall(t, dir)
		if got := countRuns(t, &f.runner, func() error { return f.Apply(v4Only(testState())) }); got != 2 {
			t.Errorf("Apply of an IPv4 state ran %d programs, want 2 (iptables-save, iptables-restore)", got)
		}
		expectDump(t, b, ipv6)
		for range 2 {
			if err := f.Apply(testState()); err != nil {
				t.Fatal(err)
			}
			expectDump(t, b, ipv6, builtinChains, to6(engineBare()), testRules6)
			// IPv6 gone, in the same daemon or after a restart: its rules
			// go, its record too.
			if err := f.Apply(v4Only(testState())); err != nil {
				t.Fatal(err)
			}
			expectDump(t, b, ipv6, builtinChains)
			if _, err := os.Stat(filepath.Join(dir, stateFileNames[ipv6])); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("IPv6 record left: %v", err)
			}
			expectDump(t, b, ipv4, builtinChains, engineBare(), testRules)
			if err := f.Apply(testState()); err != nil {
				t.Fatal(err)
			}
			f = b.firewall(t, dir)
		}

		if err := f.DropForwarded6(); err != nil {
			t.Fatal(err)
		}
		expectDump(t, b, ipv6, strings.Replace(builtinChains, ":FORWARD ACCEPT", ":FORWARD DROP", 1), to6(engineBare()), testRules6)
		expectDump(t, b, ipv4, builtinChains, engineBare(), testRules)
	})
}
