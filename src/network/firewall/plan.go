package firewall

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
)

// saved is what iptables-save printed: for each table, its chains and their
// rules (text after "-A <chain> "). A table absent from the output is not
// loaded yet; iptables-restore loads it.
type saved map[string]*savedTable

type savedTable struct {
	chains map[string]bool
	rules  map[string][]string
}

func (s saved) table(name string) *savedTable {
	if t, ok := s[name]; ok {
		return t
	}
	return &savedTable{chains: map[string]bool{}, rules: map[string][]string{}}
}

// parseSave reads iptables-save output.
func parseSave(out string) (saved, error) {
	s := saved{}
	var cur *savedTable
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			cur = &savedTable{chains: map[string]bool{}, rules: map[string][]string{}}
			s[line[1:]] = cur
		case cur == nil:
			return nil, fmt.Errorf("line %d outside a table: %q", n, line)
		case line == "COMMIT":
			cur = nil
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			cur.chains[name] = true
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[3:], " ")
			cur.rules[chain] = append(cur.rules[chain], rule)
		default:
			return nil, fmt.Errorf("line %d not understood: %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// restoreScript collects iptables-restore lines per table; lines of one
// kind are emitted together because chain declarations must come first.
type restoreScript struct {
	decls, dels, adds, rules, removes map[string][]string
}

func newScript() *restoreScript {
	return &restoreScript{decls: map[string][]string{}, dels: map[string][]string{},
		adds: map[string][]string{}, rules: map[string][]string{}, removes: map[string][]string{}}
}

// String is the input for iptables-restore --noflush; "" when there is
// nothing to do.
func (s *restoreScript) String() string {
	var b strings.Builder
	for _, t := range tables {
		var lines []string
		for _, part := range []map[string][]string{s.decls, s.dels, s.adds, s.rules, s.removes} {
			lines = append(lines, part[t]...)
		}
		if len(lines) == 0 {
			continue
		}
		b.WriteString("*" + t + "\n")
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// planApply works out the iptables-restore input that makes cur, the rules
// of family fam, equal to want. owned are the built-in-chain rules the
// engine added earlier. It returns the script, the rules owned once it has
// run, and the rules to record as owned before it runs (a superset of both,
// so that a crash in between loses no record).
func planApply(fam family, want ruleset, cur saved, owned []builtinRule) (script string, after, before []builtinRule) {
	sc := newScript()
	builtins := builtinRules[fam]
	wanted := func(r builtinRule) bool {
		return slices.ContainsFunc(builtins, func(s builtinSpec) bool { return s.builtinRule == r })
	}
	for _, t := range tables {
		ct := cur.table(t)
		for _, c := range ownChains[t] {
			if ct.chains[c] && slices.Equal(ct.rules[c], want[t][c]) {
				continue
			}
			// Declaring an existing chain under --noflush flushes it.
			sc.decls[t] = append(sc.decls[t], ":"+c+" - [0:0]")
			for _, r := range want[t][c] {
				sc.rules[t] = append(sc.rules[t], "-A "+c+" "+r)
			}
		}
		if t == tFilter && !ct.chains[chainUser] {
			sc.decls[t] = append(sc.decls[t], ":"+chainUser+" - [0:0]")
		}
	}

	// Built-in chains: the current rules, as they will be after each
	// deletion and insertion, to work out insert positions.
	type chainRef struct{ table, chain string }
	sim := map[chainRef][]string{}
	chainOf := func(r builtinRule) chainRef { return chainRef{r.Table, r.Chain} }
	list := func(r builtinRule) []string {
		k := chainOf(r)
		if _, ok := sim[k]; !ok {
			sim[k] = slices.Clone(cur.table(r.Table).rules[r.Chain])
		}
		return sim[k]
	}

	before = slices.Clone(owned)
	for _, r := range owned {
		if wanted(r) {
			after = append(after, r)
			continue
		}
		// A stale rule of ours (an older layout): remove it if it is still
		// there; either way it is no longer ours.
		l := list(r)
		if i := slices.Index(l, r.Rule); i >= 0 {
			sc.dels[r.Table] = append(sc.dels[r.Table], "-D "+r.Chain+" "+r.Rule)
			sim[chainOf(r)] = slices.Delete(l, i, i+1)
		}
	}
	for i, w := range builtins {
		l := list(w.builtinRule)
		if slices.Contains(l, w.Rule) {
			// Present: ours if recorded, someone else's otherwise; either
			// way not added twice.
			continue
		}
		if w.top {
			pos := 0 // index in l to insert at
			for _, prev := range builtins[:i] {
				if prev.top && chainOf(prev.builtinRule) == chainOf(w.builtinRule) {
					if j := slices.Index(l, prev.Rule); j >= 0 {
						pos = j + 1
					}
				}
			}
			sc.adds[w.Table] = append(sc.adds[w.Table], fmt.Sprintf("-I %s %d %s", w.Chain, pos+1, w.Rule))
			sim[chainOf(w.builtinRule)] = slices.Insert(l, pos, w.Rule)
		} else {
			sc.adds[w.Table] = append(sc.adds[w.Table], "-A "+w.Chain+" "+w.Rule)
			sim[chainOf(w.builtinRule)] = append(l, w.Rule)
		}
		if !slices.Contains(after, w.builtinRule) {
			after = append(after, w.builtinRule)
		}
		if !slices.Contains(before, w.builtinRule) {
			before = append(before, w.builtinRule)
		}
	}
	return sc.String(), after, before
}

// planClear works out the iptables-restore input that removes the engine's
// chains, the built-in-chain rules it owns, and DOCKER-USER when it is
// empty. A chain someone else's rule still jumps to is only flushed, since
// iptables cannot delete it.
func planClear(cur saved, owned []builtinRule) string {
	sc := newScript()
	for _, t := range tables {
		ct, ok := cur[t]
		if !ok {
			continue
		}
		// The rules left once ours are gone, in chains we keep.
		left := map[string][]string{}
		for c, rs := range ct.rules {
			if !isOwnChain(t, c) {
				left[c] = slices.Clone(rs)
			}
		}
		for _, r := range owned {
			if r.Table != t {
				continue
			}
			if i := slices.Index(left[r.Chain], r.Rule); i >= 0 {
				sc.dels[t] = append(sc.dels[t], "-D "+r.Chain+" "+r.Rule)
				left[r.Chain] = slices.Delete(left[r.Chain], i, i+1)
			}
		}
		for _, c := range ownChains[t] {
			if !ct.chains[c] {
				continue
			}
			sc.decls[t] = append(sc.decls[t], ":"+c+" - [0:0]")
			if !referenced(left, c) {
				sc.removes[t] = append(sc.removes[t], "-X "+c)
			}
		}
		if t == tFilter && ct.chains[chainUser] && len(ct.rules[chainUser]) == 0 && !referenced(left, chainUser) {
			sc.removes[t] = append(sc.removes[t], "-X "+chainUser)
		}
	}
	return sc.String()
}

// referenced tells whether a rule in rules jumps or goes to chain.
func referenced(rules map[string][]string, chain string) bool {
	for _, rs := range rules {
		for _, r := range rs {
			f := strings.Fields(r)
			for i := 0; i+1 < len(f); i++ {
				if (f[i] == "-j" || f[i] == "-g") && f[i+1] == chain {
					return true
				}
			}
		}
	}
	return false
}
