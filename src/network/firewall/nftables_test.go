package firewall

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/nstest"
)

// testNFT is what testState renders to for nft -f: the same rules as
// testRules.
const testNFT = `table ip docker-bridges {}
flush table ip docker-bridges
table ip docker-bridges {
	chain filter-published {
		ip daddr 172.18.0.2 iifname != "br-0123456789ab" oifname "br-0123456789ab" tcp dport 22 accept
		ip daddr 172.17.0.2 iifname != "balena0" oifname "balena0" tcp dport 80 accept
		ip daddr 172.17.0.3 iifname != "balena0" oifname "balena0" udp dport 53 accept
	}
	chain filter-isolation-2 {
		jump filter-published
		oifname "balena0" drop
		oifname "br-0123456789ab" drop
		oifname "br-nomasq" drop
	}
	chain filter-isolation-1 {
		iifname "br-int" oifname != "br-int" drop
		iifname != "br-int" oifname "br-int" drop
		iifname "balena0" oifname != "balena0" jump filter-isolation-2
		iifname "br-0123456789ab" oifname != "br-0123456789ab" jump filter-isolation-2
		iifname "br-nomasq" oifname != "br-nomasq" jump filter-isolation-2
	}
	chain nat-prerouting-and-output {
		ip daddr 192.168.7.1 tcp dport 2222 dnat to 172.18.0.2:22
		tcp dport 8080 dnat to 172.17.0.2:80
		tcp dport 8081 dnat to 172.17.0.2:80
		udp dport 5353 dnat to 172.17.0.3:53
	}
	chain filter-FORWARD {
		type filter hook forward priority 0; policy accept;
		oifname "balena0" ct state established,related accept
		oifname "br-0123456789ab" ct state established,related accept
		oifname "br-nomasq" ct state established,related accept
		jump filter-isolation-1
		oifname "balena0" jump filter-published
		iifname "balena0" oifname != "balena0" accept
		iifname "balena0" oifname "balena0" accept
		oifname "br-0123456789ab" jump filter-published
		iifname "br-0123456789ab" oifname != "br-0123456789ab" accept
		iifname "br-0123456789ab" oifname "br-0123456789ab" drop
		iifname "br-int" oifname "br-int" accept
		oifname "br-nomasq" jump filter-published
		iifname "br-nomasq" oifname != "br-nomasq" accept
		iifname "br-nomasq" oifname "br-nomasq" accept
	}
	chain nat-PREROUTING {
		type nat hook prerouting priority -100; policy accept;
		fib daddr type local jump nat-prerouting-and-output
	}
	chain nat-OUTPUT {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump nat-prerouting-and-output
	}
	chain nat-POSTROUTING {
		type nat hook postrouting priority 100; policy accept;
		oifname "balena0" fib saddr type local masquerade
		ip saddr 172.17.0.0/16 oifname != "balena0" masquerade
		oifname "br-0123456789ab" fib saddr type local masquerade
		ip saddr 172.18.0.0/16 oifname != "br-0123456789ab" masquerade
		oifname "br-nomasq" fib saddr type local masquerade
		ip saddr 172.18.0.2 ip daddr 172.18.0.2 tcp dport 22 masquerade
		ip saddr 172.17.0.2 ip daddr 172.17.0.2 tcp dport 80 masquerade
		ip saddr 172.17.0.3 ip daddr 172.17.0.3 udp dport 53 masquerade
	}
}
`

// testNFT6 is what testState renders to for the IPv6 table: the same rules
// as testRules6.
const testNFT6 = `table ip6 docker-bridges {}
flush table ip6 docker-bridges
table ip6 docker-bridges {
	chain filter-published {
		ip6 daddr fd00:18::2 iifname != "br-0123456789ab" oifname "br-0123456789ab" tcp dport 22 accept
		ip6 daddr fd00:17::2 iifname != "balena0" oifname "balena0" tcp dport 80 accept
		ip6 daddr fd00:66::2 iifname != "br-v6only" oifname "br-v6only" tcp dport 443 accept
		ip6 daddr fd00:17::3 iifname != "balena0" oifname "balena0" udp dport 53 accept
	}
	chain filter-isolation-2 {
		jump filter-published
		oifname "balena0" drop
		oifname "br-0123456789ab" drop
		oifname "br-v6only" drop
	}
	chain filter-isolation-1 {
		iifname "br-int" oifname != "br-int" drop
		iifname != "br-int" oifname "br-int" drop
		iifname "balena0" oifname != "balena0" jump filter-isolation-2
		iifname "br-0123456789ab" oifname != "br-0123456789ab" jump filter-isolation-2
		iifname "br-v6only" oifname != "br-v6only" jump filter-isolation-2
	}
	chain nat-prerouting-and-output {
		ip6 saddr != fe80::/10 ip6 daddr 2001:db8::7 tcp dport 2222 dnat to [fd00:18::2]:22
		ip6 saddr != fe80::/10 tcp dport 8080 dnat to [fd00:17::2]:80
		ip6 saddr != fe80::/10 tcp dport 8081 dnat to [fd00:17::2]:80
		ip6 saddr != fe80::/10 tcp dport 8443 dnat to [fd00:66::2]:443
		ip6 saddr != fe80::/10 udp dport 5353 dnat to [fd00:17::3]:53
	}
	chain filter-FORWARD {
		type filter hook forward priority 0; policy accept;
		oifname "balena0" ct state established,related accept
		oifname "br-0123456789ab" ct state established,related accept
		oifname "br-v6only" ct state established,related accept
		jump filter-isolation-1
		oifname "balena0" jump filter-published
		iifname "balena0" oifname != "balena0" accept
		iifname "balena0" oifname "balena0" accept
		oifname "br-0123456789ab" jump filter-published
		iifname "br-0123456789ab" oifname != "br-0123456789ab" accept
		iifname "br-0123456789ab" oifname "br-0123456789ab" drop
		iifname "br-int" oifname "br-int" accept
		oifname "br-v6only" jump filter-published
		iifname "br-v6only" oifname != "br-v6only" accept
		iifname "br-v6only" oifname "br-v6only" accept
	}
	chain nat-PREROUTING {
		type nat hook prerouting priority -100; policy accept;
		fib daddr type local jump nat-prerouting-and-output
	}
	chain nat-OUTPUT {
		type nat hook output priority -100; policy accept;
		ip6 daddr != ::1 fib daddr type local jump nat-prerouting-and-output
	}
	chain nat-POSTROUTING {
		type nat hook postrouting priority 100; policy accept;
		oifname "balena0" fib saddr type local masquerade
		ip6 saddr fd00:17::/64 oifname != "balena0" masquerade
		oifname "br-0123456789ab" fib saddr type local masquerade
		ip6 saddr fd00:18::/64 oifname != "br-0123456789ab" masquerade
		oifname "br-v6only" fib saddr type local masquerade
		ip6 saddr fd00:66::/64 oifname != "br-v6only" masquerade
		ip6 saddr fd00:18::2 ip6 daddr fd00:18::2 tcp dport 22 masquerade
		ip6 saddr fd00:17::2 ip6 daddr fd00:17::2 tcp dport 80 masquerade
		ip6 saddr fd00:66::2 ip6 daddr fd00:66::2 tcp dport 443 masquerade
		ip6 saddr fd00:17::3 ip6 daddr fd00:17::3 udp dport 53 masquerade
	}
}
`

// emptyNFT is the table without networks: testNFT without its rules but
// for the jumps of the nat base chains.
var emptyNFT = func() string {
	var keep []string
	for _, l := range strings.SplitAfter(testNFT, "\n") {
		if !strings.HasPrefix(l, "\t\t") || strings.HasPrefix(l, "\t\ttype ") || strings.HasPrefix(l, "\t\tfib daddr type local jump ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}()

func mustRenderNFT(t *testing.T, s State) [nFamilies]string {
	t.Helper()
	scripts, err := renderNFT(s)
	if err != nil {
		t.Fatal(err)
	}
	return scripts
}

// nftScript is the script Apply sends for s when the IPv6 table is
// written.
func nftScript(t *testing.T, s State) string {
	t.Helper()
	scripts := mustRenderNFT(t, s)
	return scripts[ipv4] + scripts[ipv6]
}

func TestRenderNFT(t *testing.T) {
	// An internal network alone: its seal and its ICC rule (here off).
	got := nftScript(t, State{Networks: []Network{{Bridge: "br-in", Subnet: netip.MustParsePrefix("10.1.0.0/24"), Masquerade: true, Internal: true}}})
	want := strings.NewReplacer(
		"\tchain filter-isolation-1 {\n", "\tchain filter-isolation-1 {\n"+
			"\t\tiifname \"br-in\" oifname != \"br-in\" drop\n\t\tiifname != \"br-in\" oifname \"br-in\" drop\n",
		"policy accept;\n\t}\n\tchain nat-PREROUTING", "policy accept;\n"+
			"\t\tjump filter-isolation-1\n\t\tiifname \"br-in\" oifname \"br-in\" drop\n\t}\n\tchain nat-PREROUTING",
	).Replace(emptyNFT)
	if got != want {
		t.Errorf("internal network:\n%s\nwant:\n%s", got, want)
	}

	// The backends share the rules; only the language differs.
	c, _, err := build(testState())
	if err != nil {
		t.Fatal(err)
	}
	for fam, texts := range [nFamilies][2]string{{testRules, testNFT}, {testRules6, testNFT6}} {
		for ch, rules := range c[fam] {
			for _, r := range rules {
				if !strings.Contains(texts[0], "-A "+chains[ch].ipt+" "+r.iptables()+"\n") || !strings.Contains(texts[1], "\t\t"+r.nft(family(fam))+"\n") {
					t.Errorf("%s rule %+v missing from either backend's text", families[fam].name, r)
				}
			}
		}
	}
}

func TestRenderNFTInvalid(t *testing.T) {
	if _, err := renderNFT(State{Networks: []Network{{Bridge: "br\"0", Subnet: netip.MustParsePrefix("10.0.0.0/24")}}}); err == nil {
		t.Error("a bridge name with a quote rendered")
	}
}

func TestNewBackends(t *testing.T) {
	if _, err := New(Options{Backend: "ebtables"}); err == nil || !strings.Contains(err.Error(), `unknown backend "ebtables"`) {
		t.Errorf("unknown backend: %v", err)
	}
	_, err := New(Options{Backend: "nftables", NFTCmd: "no-such-nft"})
	if err == nil || !strings.Contains(err.Error(), "no-such-nft not found: install nftables or run with --iptables=false") {
		t.Errorf("error: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if f, err := New(Options{Backend: "nftables"}); f != nil || err == nil || !strings.Contains(err.Error(), "nft not found") {
		t.Errorf("New without nft: %v, %v", f, err)
	}
}

// TestNFTProgram runs the backend against a fake nft that keeps its input,
// and fails on any input when the file fail exists, and on input that
// names the IPv6 table when no6 exists, as a kernel without IPv6 in
// nf_tables.
func TestNFTProgram(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	input, fail, no6 := filepath.Join(dir, "input"), filepath.Join(dir, "fail"), filepath.Join(dir, "no6")
	prog := fakeProgram(t, dir, "nft", `[ "$*" = "-f -" ] || exit 2
cat >"`+input+`"
[ -e "`+fail+`" ] && { echo '/dev/stdin:3:1-5: Error: Could not process rule: No such file or directory' >&2; exit 1; }
[ -e "`+no6+`" ] && grep -q "table ip6 " "`+input+`" && { echo 'Error: Could not process rule: Address family not supported by protocol' >&2; exit 1; }
exit 0`)
	newFake := func() *NFTables {
		t.Helper()
		fw, err := New(Options{Backend: "nftables", NFTCmd: prog})
		if err != nil {
			t.Fatal(err)
		}
		return fw.(*NFTables)
	}
	f := newFake()
	if got := f.Backend(); got != "nftables" {
		t.Errorf("backend %q", got)
	}
	sent := func() string {
		t.Helper()
		b, err := os.ReadFile(input)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// expect checks that do ran n programs, the last with input want.
	expect := func(what string, f *NFTables, do func() error, n int64, want string) {
		t.Helper()
		if got := countRuns(t, &f.runner, do); got != n || sent() != want {
			t.Errorf("%s ran %d programs (want %d), the last with:\n%s\nwant:\n%s", what, got, n, sent(), want)
		}
	}
	apply := func(f *NFTables, s State) func() error { return func() error { return f.Apply(s) } }
	smaller4 := mustRenderNFT(t, v4Only(smallerState()))[ipv4]
	clear4, clear6 := "table ip docker-bridges {}\ndelete table ip docker-bridges\n", "table ip6 docker-bridges {}\ndelete table ip6 docker-bridges\n"

	expect("Apply", f, apply(f, testState()), 1, testNFT+testNFT6)
	s := testState()
	slices.Reverse(s.Ports)
	expect("Apply of an unchanged state", f, apply(f, s), 0, testNFT+testNFT6)
	expect("Clear", f, f.Clear, 1, clear4+clear6)
	// After Clear the same state is applied again.
	expect("Apply after Clear", f, apply(f, testState()), 1, testNFT+testNFT6)
	// Without IPv6 the IPv6 table goes, in the same transaction, and then
	// is known to be gone.
	expect("Apply without IPv6", f, apply(f, v4Only(testState())), 1, testNFT+clear6)
	expect("Apply without IPv6 again", f, apply(f, v4Only(smallerState())), 1, smaller4)

	// A kernel without IPv6 in nf_tables: the IPv4 table alone, and an
	// error only when the state has IPv6.
	if err := os.WriteFile(no6, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f2 := newFake()
	expect("Apply without IPv6 on a kernel without it", f2, apply(f2, v4Only(testState())), 2, testNFT)
	expect("the next one", f2, apply(f2, v4Only(smallerState())), 1, smaller4)
	if err := f2.Apply(testState()); err == nil || !strings.Contains(err.Error(), "firewall: IPv6 rules not applied (the IPv4 ones were)") ||
		!strings.Contains(err.Error(), "Address family not supported") || sent() != testNFT {
		t.Errorf("IPv6 on a kernel without it: %v, the last input:\n%s", err, sent())
	}
	expect("Clear on a kernel without IPv6", f2, f2.Clear, 2, clear4)
	if err := os.Remove(no6); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(fail, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := f.Apply(smallerState())
	if err == nil || !strings.Contains(err.Error(), "/dev/stdin:3:1-5: Error: Could not process rule") {
		t.Errorf("failing nft: %v", err)
	}
	// A failed Apply is not remembered as applied: it runs again, both
	// with the IPv6 table and without.
	n := f.runs.Load()
	if f.Apply(smallerState()) == nil || f.runs.Load() != n+2 {
		t.Error("the second Apply after a failure did not run nft")
	}
	if err := f.Apply(State{Networks: []Network{{Bridge: "br 0"}}}); err == nil || f.runs.Load() != n+2 {
		t.Errorf("invalid state: %v, or nft ran", err)
	}
}

// These tests run the real nft, each in a network namespace of its own.

func nftIsolate(t *testing.T) bool { return nstest.Isolate(t, "nft") }

func newNFT(t *testing.T) *NFTables {
	t.Helper()
	f, err := New(Options{Backend: "nftables"})
	if err != nil {
		t.Fatal(err)
	}
	return f.(*NFTables)
}

// nft runs nft with args and script on its standard input.
func nft(t *testing.T, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("nft", args...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("nft %s: %v\n%s\ninput:\n%s", strings.Join(args, " "), err, msg, script)
	}
	return string(out)
}

// nftCanon is nft text with blank lines, indentation and the first two
// lines of each rendered table dropped, and symbolic priorities as numbers,
// so that a listing compares with a script.
func nftCanon(text string) string {
	for _, table := range nftTables {
		text = strings.ReplaceAll(text, "table "+table+" {}\nflush table "+table+"\n", "")
	}
	var b strings.Builder
	r := strings.NewReplacer("priority filter;", "priority 0;", "priority dstnat;", "priority -100;", "priority srcnat;", "priority 100;")
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			b.WriteString(r.Replace(l) + "\n")
		}
	}
	return b.String()
}

// expectRuleset compares the whole ruleset with the tables given, in the
// order nft lists them (the order they were made in).
func expectRuleset(t *testing.T, tables ...string) {
	t.Helper()
	got, want := nftCanon(nft(t, "", "list", "ruleset")), nftCanon(strings.Join(tables, ""))
	if got != want {
		t.Fatalf("nft list ruleset:\n%s\nwant:\n%s", got, want)
	}
}

// foreignNFT are tables of others that must survive everything, like
// iptables-nft's and a host firewall's.
const foreignNFT = `table ip filter {
	chain FORWARD {
		type filter hook forward priority 0; policy accept;
		ip saddr 10.9.9.9 drop
	}
}
table inet host {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 22 accept
	}
}
`

// smallerNFT is what smallerState renders to.
func smallerNFT(t *testing.T) string { return nftScript(t, smallerState()) }

func TestNFTApplyAndClear(t *testing.T) {
	if !nftIsolate(t) {
		return
	}
	nft(t, foreignNFT, "-f", "-")
	f := newNFT(t)
	if err := f.Apply(testState()); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, testNFT, testNFT6)

	// Someone adds a rule to the engine's table; the same state, in
	// another order, runs no program and so leaves it.
	nft(t, "", "add", "rule", "ip", "docker-bridges", "filter-FORWARD", "ip", "saddr", "10.1.2.3", "drop")
	s := testState()
	slices.Reverse(s.Ports)
	slices.Reverse(s.Networks)
	if got := countRuns(t, &f.runner, func() error { return f.Apply(s) }); got != 0 {
		t.Errorf("Apply of an unchanged state ran %d programs", got)
	}
	expectRuleset(t, foreignNFT, strings.Replace(testNFT, "\t\tiifname \"br-nomasq\" oifname \"br-nomasq\" accept\n",
		"\t\tiifname \"br-nomasq\" oifname \"br-nomasq\" accept\n\t\tip saddr 10.1.2.3 drop\n", 1), testNFT6)

	// A change rewrites the whole table: the table is the engine's.
	if err := f.Apply(smallerState()); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, smallerNFT(t))

	// Without IPv6 the IPv6 table goes; with it again, it comes back.
	if err := f.Apply(v4Only(smallerState())); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, nftScript(t, v4Only(smallerState())))
	if err := f.Apply(smallerState()); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, smallerNFT(t))

	// Clear deletes the tables, and only them; twice is fine.
	for range 2 {
		if err := f.Clear(); err != nil {
			t.Fatal(err)
		}
		expectRuleset(t, foreignNFT)
	}

	// And the engine can start over.
	if err := f.Apply(testState()); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, testNFT, testNFT6)
}

// TestNFTRestart is a daemon that crashed and started again: the new
// NFTables rewrites the tables once, then runs nothing while the state
// does not change; the IPv6 table goes if the state has no IPv6 any more.
func TestNFTRestart(t *testing.T) {
	if !nftIsolate(t) {
		return
	}
	nft(t, foreignNFT, "-f", "-")
	if err := newNFT(t).Apply(testState()); err != nil {
		t.Fatal(err)
	}

	f2 := newNFT(t)
	if err := f2.Apply(smallerState()); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, smallerNFT(t))

	// Started again with nothing changed: one nft run, the same rules.
	f3 := newNFT(t)
	apply := func() error { return f3.Apply(smallerState()) }
	if got := countRuns(t, &f3.runner, apply) + countRuns(t, &f3.runner, apply); got != 1 {
		t.Errorf("Apply after a restart ran %d programs, want 1", got)
	}
	expectRuleset(t, foreignNFT, smallerNFT(t))

	// Started again without IPv6.
	if err := newNFT(t).Apply(v4Only(smallerState())); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, nftScript(t, v4Only(smallerState())))
	if err := newNFT(t).Apply(smallerState()); err != nil {
		t.Fatal(err)
	}

	// Started again with --iptables=false: Clear removes it all.
	if err := newNFT(t).Clear(); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT)
}

func TestNFTConcurrentApply(t *testing.T) {
	if !nftIsolate(t) {
		return
	}
	applyConcurrently(t, newNFT(t))
	expectRuleset(t, testNFT, testNFT6)
}
