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

func mustRenderNFT(t *testing.T, s State) string {
	t.Helper()
	script, err := renderNFT(s)
	if err != nil {
		t.Fatal(err)
	}
	return script
}

func TestRenderNFT(t *testing.T) {
	// An internal network alone: its seal and its ICC rule (here off).
	got := mustRenderNFT(t, State{Networks: []Network{{Bridge: "br-in", Subnet: netip.MustParsePrefix("10.1.0.0/24"), Masquerade: true, Internal: true}}})
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
	c, err := build(testState())
	if err != nil {
		t.Fatal(err)
	}
	for ch, rules := range c {
		for _, r := range rules {
			if !strings.Contains(testRules, "-A "+chains[ch].ipt+" "+r.iptables()+"\n") || !strings.Contains(testNFT, "\t\t"+r.nft()+"\n") {
				t.Errorf("rule %+v missing from either backend's text", r)
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

// TestNFTProgram runs the backend against a fake nft that keeps its input.
func TestNFTProgram(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	input, fail := filepath.Join(dir, "input"), filepath.Join(dir, "fail")
	prog := fakeProgram(t, dir, "nft", `[ "$*" = "-f -" ] || exit 2
cat >"`+input+`"
[ -e "`+fail+`" ] && { echo '/dev/stdin:3:1-5: Error: Could not process rule: No such file or directory' >&2; exit 1; }
exit 0`)
	fw, err := New(Options{Backend: "nftables", NFTCmd: prog})
	if err != nil {
		t.Fatal(err)
	}
	f := fw.(*NFTables)
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
	runs := func(do func() error) int64 { t.Helper(); return countRuns(t, &f.runner, do) }

	if n := runs(func() error { return f.Apply(testState()) }); n != 1 || sent() != testNFT {
		t.Errorf("Apply ran %d programs with:\n%s", n, sent())
	}
	s := testState()
	slices.Reverse(s.Ports)
	if n := runs(func() error { return f.Apply(s) }); n != 0 {
		t.Errorf("Apply of an unchanged state ran %d programs", n)
	}
	if n := runs(f.Clear); n != 1 || sent() != "table ip docker-bridges {}\ndelete table ip docker-bridges\n" {
		t.Errorf("Clear ran %d programs with:\n%s", n, sent())
	}
	// After Clear the same state is applied again.
	if n := runs(func() error { return f.Apply(testState()) }); n != 1 {
		t.Errorf("Apply after Clear ran %d programs", n)
	}

	if err := os.WriteFile(fail, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = f.Apply(smallerState())
	if err == nil || !strings.Contains(err.Error(), "/dev/stdin:3:1-5: Error: Could not process rule") {
		t.Errorf("failing nft: %v", err)
	}
	// A failed Apply is not remembered as applied.
	n := f.runs.Load()
	if f.Apply(smallerState()) == nil || f.runs.Load() != n+1 {
		t.Error("the second Apply after a failure did not run nft")
	}
	if err := f.Apply(State{Networks: []Network{{Bridge: "br 0"}}}); err == nil || f.runs.Load() != n+1 {
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
// lines of rendered scripts dropped, and symbolic priorities as numbers,
// so that a listing compares with a script.
func nftCanon(text string) string {
	text = strings.ReplaceAll(text, "table ip docker-bridges {}\nflush table ip docker-bridges\n", "")
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
func smallerNFT(t *testing.T) string { return mustRenderNFT(t, smallerState()) }

func TestNFTApplyAndClear(t *testing.T) {
	if !nftIsolate(t) {
		return
	}
	nft(t, foreignNFT, "-f", "-")
	f := newNFT(t)
	if err := f.Apply(testState()); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, testNFT)

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
		"\t\tiifname \"br-nomasq\" oifname \"br-nomasq\" accept\n\t\tip saddr 10.1.2.3 drop\n", 1))

	// A change rewrites the whole table: the table is the engine's.
	if err := f.Apply(smallerState()); err != nil {
		t.Fatal(err)
	}
	expectRuleset(t, foreignNFT, smallerNFT(t))

	// Clear deletes the table, and only it; twice is fine.
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
	expectRuleset(t, foreignNFT, testNFT)
}

// TestNFTRestart is a daemon that crashed and started again: the new
// NFTables rewrites the table once, then runs nothing while the state
// does not change.
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
	expectRuleset(t, testNFT)
}
