package firewall

import (
	"cmp"
	"fmt"
	"strings"
)

// NFTables is the nftables backend: a table of the engine's own per family,
// written whole with nft -f.
type NFTables struct {
	runner
	nft string // resolved path
	// last's key is the script last applied; its lock guards ip6Gone.
	last lastApplied
	// ip6Gone says that the IPv6 table is known not to exist.
	ip6Gone bool
}

// nftTables are the engine's tables, Docker 29's names for its bridge
// rules.
var nftTables = [nFamilies]string{"ip docker-bridges", "ip6 docker-bridges"}

// nftBaseChains are the hooks into the engine's table of family fam: the
// chain, its declaration, and rules of its own that come before build's.
// The priorities are numbers, as every nft version reads them: 0 is filter,
// -100 dstnat, 100 srcnat (nft lists them by those names).
func nftBaseChains(fam family) []struct{ name, hook, rule string } {
	jump := "fib daddr type local jump " + chains[cDNAT].nft
	return []struct{ name, hook, rule string }{
		{chains[cForward].nft, "type filter hook forward priority 0; policy accept;", ""},
		{"nat-PREROUTING", "type nat hook prerouting priority -100; policy accept;", jump},
		{"nat-OUTPUT", "type nat hook output priority -100; policy accept;", families[fam].nftNotLoopback + jump},
		{chains[cPostrouting].nft, "type nat hook postrouting priority 100; policy accept;", ""},
	}
}

// nftDelete deletes one of the engine's tables, whether it exists or not.
func nftDelete(fam family) string {
	return "table " + nftTables[fam] + " {}\ndelete table " + nftTables[fam] + "\n"
}

func newNFTables(opts Options) (*NFTables, error) {
	p, err := lookPath(cmp.Or(opts.NFTCmd, "nft"), "nftables")
	if err != nil {
		return nil, err
	}
	return &NFTables{nft: p}, nil
}

// Backend is "nftables".
func (f *NFTables) Backend() string { return "nftables" }

// Apply replaces the contents of the engine's tables with the rules of s in
// one nft -f run, one kernel transaction: packets see the old rules or the
// new ones, never a mix. It runs nothing when s renders to what was last
// applied. The first Apply of a new NFTables always runs: after a restart
// the tables are written again rather than read and compared (nft's
// listing varies between versions; writing the same rules again changes
// nothing a packet would notice).
//
// The IPv6 table is written when a network has IPv6, and deleted in the
// same transaction otherwise (unless known to be absent). A kernel without
// IPv6 in nf_tables refuses a whole transaction that names it: the IPv4
// table is then written alone, and Apply fails only if the state has IPv6.
func (f *NFTables) Apply(s State) error {
	tables, err := renderNFT(s)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	return f.last.apply(tables[ipv4]+tables[ipv6], func() error {
		uses6, v6 := tables[ipv6] != "", tables[ipv6]
		if !uses6 {
			if f.ip6Gone {
				return f.nftRun(tables[ipv4])
			}
			v6 = nftDelete(ipv6)
		}
		fellBack, err := f.nftRun6(tables[ipv4]+v6, tables[ipv4])
		switch {
		case err == nil || fellBack && !uses6:
			f.ip6Gone = !uses6
			return nil
		case fellBack:
			return fmt.Errorf("firewall: IPv6 rules not applied (the IPv4 ones were): %w", err)
		}
		return err
	})
}

// Clear deletes the engine's tables; absent ones are fine.
func (f *NFTables) Clear() error {
	return f.last.clear(func() error {
		fellBack, err := f.nftRun6(nftDelete(ipv4)+nftDelete(ipv6), nftDelete(ipv4))
		if err == nil || fellBack {
			f.ip6Gone = true
			return nil
		}
		return err
	})
}

// nftRun6 runs script, which names the IPv6 table, and when nft refuses it
// runs without, which does not: on a kernel without IPv6 in nf_tables.
// fellBack says that without ran and succeeded; err is script's error.
func (f *NFTables) nftRun6(script, without string) (fellBack bool, err error) {
	if err = f.nftRun(script); err != nil {
		fellBack = f.nftRun(without) == nil
	}
	return fellBack, err
}

// nftRun feeds script to nft -f; nft's error names the input line and
// shows it.
func (f *NFTables) nftRun(script string) error {
	if _, err := f.run(f.nft, script, "-f", "-"); err != nil {
		return fmt.Errorf("firewall: applying rules: %w", err)
	}
	return nil
}

// renderNFT is, per family, the nft -f input that makes the engine's table
// hold exactly the rules of s: the table is made if it is missing and
// flushed, and every chain is declared with its rules, all in one
// transaction. Flushing keeps the base chains hooked, so there is no moment
// without them. The IPv6 input is "" when no network has IPv6.
func renderNFT(s State) ([nFamilies]string, error) {
	var out [nFamilies]string
	c, uses6, err := build(s)
	if err != nil {
		return out, err
	}
	for fam := range nFamilies {
		if fam == ipv6 && !uses6 {
			break
		}
		var b strings.Builder
		table := nftTables[fam]
		b.WriteString("table " + table + " {}\nflush table " + table + "\ntable " + table + " {\n")
		decl := func(name, hook string, rules []string) {
			b.WriteString("\tchain " + name + " {\n")
			for _, r := range append([]string{hook}, rules...) {
				if r != "" {
					b.WriteString("\t\t" + r + "\n")
				}
			}
			b.WriteString("\t}\n")
		}
		text := func(ch chain) []string {
			var l []string
			for _, r := range c[fam][ch] {
				l = append(l, r.nft(fam))
			}
			return l
		}
		// Regular chains first, each before the chains that jump to it.
		for _, ch := range []chain{cPublished, cIsolation2, cIsolation1, cDNAT} {
			decl(chains[ch].nft, "", text(ch))
		}
		for _, bc := range nftBaseChains(fam) {
			own := []string{bc.rule}
			for ch, name := range chains {
				if name.nft == bc.name {
					own = append(own, text(chain(ch))...)
				}
			}
			decl(bc.name, bc.hook, own)
		}
		b.WriteString("}\n")
		out[fam] = b.String()
	}
	return out, nil
}
