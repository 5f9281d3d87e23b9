package firewall

import (
	"cmp"
	"fmt"
	"strings"
)

// NFTables is the nftables backend: one table of the engine's own, written
// whole with nft -f.
type NFTables struct {
	runner
	nft string // resolved path
	// last's key is the script last applied.
	last lastApplied
}

// nftTable is the engine's table, Docker 29's name for its IPv4 bridge
// rules.
const nftTable = "ip docker-bridges"

// nftBaseChains are the hooks into the engine's table: the chain, its
// declaration, and rules of its own that come before build's. The
// priorities are numbers, as every nft version reads them: 0 is filter,
// -100 dstnat, 100 srcnat (nft lists them by those names).
var nftBaseChains = []struct {
	name, hook string
	rules      []string
}{
	{chains[cForward].nft, "type filter hook forward priority 0; policy accept;", nil},
	{"nat-PREROUTING", "type nat hook prerouting priority -100; policy accept;",
		[]string{"fib daddr type local jump " + chains[cDNAT].nft}},
	{"nat-OUTPUT", "type nat hook output priority -100; policy accept;",
		[]string{"fib daddr type local jump " + chains[cDNAT].nft}},
	{chains[cPostrouting].nft, "type nat hook postrouting priority 100; policy accept;", nil},
}

// nftClear deletes the engine's table, whether it exists or not.
const nftClear = "table " + nftTable + " {}\ndelete table " + nftTable + "\n"

func newNFTables(opts Options) (*NFTables, error) {
	p, err := lookPath(cmp.Or(opts.NFTCmd, "nft"), "nftables")
	if err != nil {
		return nil, err
	}
	return &NFTables{nft: p}, nil
}

// Backend is "nftables".
func (f *NFTables) Backend() string { return "nftables" }

// Apply replaces the contents of the engine's table with the rules of s in
// one nft -f run, one kernel transaction: packets see the old rules or the
// new ones, never a mix. It runs nothing when s renders to what was last
// applied. The first Apply of a new NFTables always runs: after a restart
// the table is written again rather than read and compared (nft's listing
// varies between versions; writing the same rules again changes nothing a
// packet would notice).
func (f *NFTables) Apply(s State) error {
	script, err := renderNFT(s)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	return f.last.apply(script, func() error { return f.nftRun(script) })
}

// Clear deletes the engine's table; an absent table is fine.
func (f *NFTables) Clear() error {
	return f.last.clear(func() error { return f.nftRun(nftClear) })
}

// nftRun feeds script to nft -f; nft's error names the input line and
// shows it.
func (f *NFTables) nftRun(script string) error {
	if _, err := f.run(f.nft, script, "-f", "-"); err != nil {
		return fmt.Errorf("firewall: applying rules: %w", err)
	}
	return nil
}

// renderNFT is the nft -f input that makes the engine's table hold exactly
// the rules of s: the table is made if it is missing and flushed, and every
// chain is declared with its rules, all in one transaction. Flushing keeps
// the base chains hooked, so there is no moment without them.
func renderNFT(s State) (string, error) {
	c, err := build(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("table " + nftTable + " {}\nflush table " + nftTable + "\ntable " + nftTable + " {\n")
	decl := func(name, hook string, rules ...[]string) {
		b.WriteString("\tchain " + name + " {\n")
		if hook != "" {
			b.WriteString("\t\t" + hook + "\n")
		}
		for _, rs := range rules {
			for _, r := range rs {
				b.WriteString("\t\t" + r + "\n")
			}
		}
		b.WriteString("\t}\n")
	}
	text := func(ch chain) []string {
		var l []string
		for _, r := range c[ch] {
			l = append(l, r.nft())
		}
		return l
	}
	// Regular chains first, each before the chains that jump to it.
	for _, ch := range []chain{cPublished, cIsolation2, cIsolation1, cDNAT} {
		decl(chains[ch].nft, "", text(ch))
	}
	for _, bc := range nftBaseChains {
		var own []string
		for ch, name := range chains {
			if name.nft == bc.name {
				own = text(chain(ch))
			}
		}
		decl(bc.name, bc.hook, bc.rules, own)
	}
	b.WriteString("}\n")
	return b.String(), nil
}
