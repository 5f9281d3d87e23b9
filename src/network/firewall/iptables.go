package firewall

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// IPTables is the iptables backend: iptables-restore and iptables-save,
// legacy or nf_tables, and their ip6tables counterparts for IPv6.
type IPTables struct {
	runner
	backend string

	// mu guards fams.
	mu   sync.Mutex
	fams [nFamilies]iptFamily
}

// iptFamily is one family's programs and what the engine knows of its
// rules in the kernel.
type iptFamily struct {
	*runner
	fam           family
	restore, save string // the programs, as resolved paths once found
	found         bool   // find has run; missing is what it found wrong
	missing       error
	variant       string // the restore program's variant, see runner.variant
	stateFile     string // "" when nothing is persisted

	// key is that of the rules last applied (ruleset.key), keyCleared
	// once the family is known to hold nothing of the engine's, "" when
	// unknown: then the next Apply looks at the kernel.
	key string
	// owned are the rules in built-in chains that the engine added.
	owned []builtinRule
	// touched says that this process may have put rules into the family
	// since it last cleared it.
	touched bool
}

// keyCleared is iptFamily.key for a family cleared of the engine's rules.
const keyCleared = "cleared"

// lockWait is how long iptables-restore (legacy) waits for the xtables lock
// held by another iptables command, instead of failing at once.
const lockWait = "--wait=10"

// newIPTables checks that the IPv4 programs exist and reads the records in
// StateDir. The IPv6 programs are looked for when first needed: only a
// state with IPv6 needs them.
func newIPTables(opts Options) (*IPTables, error) {
	f := &IPTables{}
	for fam := range nFamilies {
		f.fams[fam].runner, f.fams[fam].fam = &f.runner, fam
	}
	f.fams[ipv4].restore, f.fams[ipv4].save = cmp.Or(opts.RestoreCmd, "iptables-restore"), cmp.Or(opts.SaveCmd, "iptables-save")
	f.fams[ipv6].restore, f.fams[ipv6].save = cmp.Or(opts.Restore6Cmd, "ip6tables-restore"), cmp.Or(opts.Save6Cmd, "ip6tables-save")
	if err := f.fams[ipv4].find(); err != nil {
		return nil, err
	}
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("firewall: %w", err)
		}
	}
	for fam := range nFamilies {
		fi := &f.fams[fam]
		if opts.StateDir != "" {
			var err error
			fi.stateFile = filepath.Join(opts.StateDir, stateFileNames[fam])
			if fi.owned, err = loadRecord(fi.stateFile); err != nil {
				return nil, fmt.Errorf("firewall: reading what the engine added to built-in chains (remove the file to start afresh): %w", err)
			}
		}
	}
	f.backend = "iptables"
	if v := f.fams[ipv4].variant; v != "" {
		f.backend += " (" + v + ")"
	}
	return f, nil
}

// find resolves the family's programs, the first time, and checks that
// they are of one variant: a save of one compared with a restore into the
// other would never match, and would add the jumps again on every change.
func (fi *iptFamily) find() error {
	if fi.found {
		return fi.missing
	}
	fi.found = true
	var err error
	if fi.restore, err = lookPath(fi.restore, "iptables"); err == nil {
		fi.save, err = lookPath(fi.save, "iptables")
	}
	if err == nil {
		fi.variant = fi.runner.variant(fi.restore)
		if sv := fi.runner.variant(fi.save); fi.variant != "" && sv != "" && fi.variant != sv {
			err = fmt.Errorf("firewall: %s is %s but %s is %s: use the same iptables variant for both", fi.restore, fi.variant, fi.save, sv)
		}
	}
	fi.missing = err
	return err
}

// variant is what "<prog> --version" says in parentheses, "legacy" or
// "nf_tables"; "" when it says nothing (iptables before 1.8 was legacy
// only, but this does not guess).
func (r *runner) variant(prog string) string {
	out, err := r.run(prog, "", "--version")
	if err != nil {
		return ""
	}
	lo, hi := strings.LastIndex(out, "("), strings.LastIndex(out, ")")
	if lo < 0 || hi < lo {
		return ""
	}
	return out[lo+1 : hi]
}

// Backend names the iptables variant in use, e.g. "iptables (legacy)" or
// "iptables (nf_tables)".
func (f *IPTables) Backend() string { return f.backend }

// Apply makes the kernel's rules equal to s. For each family it changes
// only the engine's own chains and its jumps from built-in chains, in one
// iptables-restore --noflush run, and runs nothing at all when the family's
// rules are what was last applied. IPv6 is left alone while no network has
// IPv6 and the engine has put nothing there (no ip6tables program runs);
// once none has any more, the engine's IPv6 rules are removed. The
// families are applied one after the other: an error in one (such as
// missing ip6tables) does not keep the other's rules from being applied.
func (f *IPTables) Apply(s State) error {
	want, err := render(s)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs [nFamilies]error
	for fam := range f.fams {
		errs[fam] = f.fams[fam].apply(want[fam])
	}
	return errors.Join(errs[:]...)
}

// apply makes the family's rules equal to want; nil wants the family
// cleared of the engine's rules, if it may hold any.
func (fi *iptFamily) apply(want ruleset) error {
	key := keyCleared
	if want != nil {
		key = want.key()
	}
	if key == fi.key {
		return nil
	}
	fi.key = ""
	var err error
	switch {
	case want == nil && !fi.touched && len(fi.owned) == 0:
	case fi.find() != nil:
		if want != nil {
			err = fmt.Errorf("firewall: %s rules not applied: %w", families[fi.fam].name, fi.missing)
		}
	case want == nil:
		err = fi.clear()
	default:
		err = fi.applyRules(want)
	}
	if err == nil {
		fi.key = key
	}
	return err
}

func (fi *iptFamily) applyRules(want ruleset) error {
	cur, err := fi.current()
	if err != nil {
		return err
	}
	script, after, before := planApply(fi.fam, want, cur, fi.owned)
	if script != "" {
		// Record the jumps about to be added before adding them: a crash
		// right after must not leave a jump nobody knows is the engine's.
		if err := fi.setOwned(before); err != nil {
			return err
		}
		fi.touched = true
		if err := fi.restoreRules(script); err != nil {
			return err
		}
	}
	return fi.setOwned(after)
}

// Clear removes everything Apply created, in both families: the engine's
// chains, its jumps, and DOCKER-USER unless it holds rules. Rules the
// engine did not add stay. A family whose programs are missing is skipped.
func (f *IPTables) Clear() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs [nFamilies]error
	for fam := range f.fams {
		fi := &f.fams[fam]
		fi.key = ""
		if fi.find() == nil {
			errs[fam] = fi.clear()
		}
	}
	return errors.Join(errs[:]...)
}

func (fi *iptFamily) clear() error {
	cur, err := fi.current()
	if err != nil {
		return err
	}
	if script := planClear(cur, fi.owned); script != "" {
		if err := fi.restoreRules(script); err != nil {
			return err
		}
	}
	fi.touched = false
	return fi.setOwned(nil)
}

// setOwned records rules as the engine's, in the state file and in memory.
func (fi *iptFamily) setOwned(rules []builtinRule) error {
	if slices.Equal(rules, fi.owned) {
		return nil
	}
	if fi.stateFile != "" {
		if err := writeRecord(fi.stateFile, rules); err != nil {
			return fmt.Errorf("firewall: recording the engine's rules in built-in chains: %w", err)
		}
	}
	fi.owned = slices.Clone(rules)
	return nil
}

// current reads the kernel's rules.
func (fi *iptFamily) current() (saved, error) {
	out, err := fi.run(fi.save, "")
	if err != nil {
		return nil, fmt.Errorf("firewall: reading the current rules: %w", err)
	}
	s, err := parseSave(out)
	if err != nil {
		return nil, fmt.Errorf("firewall: reading the current rules: %s: %w", fi.save, err)
	}
	return s, nil
}

var failedLine = regexp.MustCompile(`line (\d+)`)

// restoreRules feeds script to iptables-restore --noflush; each table in it
// is committed whole or not at all.
func (fi *iptFamily) restoreRules(script string) error {
	_, err := fi.run(fi.restore, script, "--noflush", lockWait)
	if err == nil {
		return nil
	}
	// Point at the input line iptables-restore complains about: its message
	// alone ("line 7 failed") says little.
	if m := failedLine.FindStringSubmatch(err.Error()); m != nil {
		lines := strings.Split(script, "\n")
		if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) {
			err = fmt.Errorf("%w (input line %d: %q)", err, n, lines[n-1])
		}
	}
	return fmt.Errorf("firewall: applying rules: %w", err)
}

// DropForwarded sets the filter table's FORWARD policy to DROP, as Docker
// does when it turns on the kernel's forwarding itself: the host then
// routes only what the engine's rules (or the user's) accept, not
// everything between its interfaces.
func (f *IPTables) DropForwarded() error { return f.dropForwarded(ipv4) }

// DropForwarded6 is DropForwarded for IPv6 (ip6tables' FORWARD policy), for
// when the engine turns on IPv6 forwarding.
func (f *IPTables) DropForwarded6() error { return f.dropForwarded(ipv6) }

func (f *IPTables) dropForwarded(fam family) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi := &f.fams[fam]
	if err := fi.find(); err != nil {
		return err
	}
	return fi.restoreRules("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
}
