package firewall

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// IPTables is the iptables backend: iptables-restore and iptables-save,
// legacy or nf_tables.
type IPTables struct {
	runner
	restore, save string // resolved paths
	backend       string
	stateFile     string // "" when nothing is persisted

	// last guards owned too; its key is that of the rules last applied
	// (ruleset.key): when unknown, the next Apply looks at the kernel.
	last lastApplied
	// owned are the rules in built-in chains that the engine added.
	owned []builtinRule
}

// lockWait is how long iptables-restore (legacy) waits for the xtables lock
// held by another iptables command, instead of failing at once.
const lockWait = "--wait=10"

// newIPTables checks that the programs exist and reads the record in
// StateDir.
func newIPTables(opts Options) (*IPTables, error) {
	f := &IPTables{}
	var err error
	if f.restore, err = lookPath(cmp.Or(opts.RestoreCmd, "iptables-restore"), "iptables"); err != nil {
		return nil, err
	}
	if f.save, err = lookPath(cmp.Or(opts.SaveCmd, "iptables-save"), "iptables"); err != nil {
		return nil, err
	}
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("firewall: %w", err)
		}
		f.stateFile = filepath.Join(opts.StateDir, stateFileName)
		if f.owned, err = loadRecord(f.stateFile); err != nil {
			return nil, fmt.Errorf("firewall: reading what the engine added to built-in chains (remove the file to start afresh): %w", err)
		}
	}
	// A save of one variant compared with a restore into the other would
	// never match, and would add the jumps again on every change.
	rv, sv := f.variant(f.restore), f.variant(f.save)
	if rv != "" && sv != "" && rv != sv {
		return nil, fmt.Errorf("firewall: %s is %s but %s is %s: use the same iptables variant for both", f.restore, rv, f.save, sv)
	}
	f.backend = "iptables"
	if rv != "" {
		f.backend += " (" + rv + ")"
	}
	return f, nil
}

// variant is what "<prog> --version" says in parentheses, "legacy" or
// "nf_tables"; "" when it says nothing (iptables before 1.8 was legacy
// only, but this does not guess).
func (f *IPTables) variant(prog string) string {
	out, err := f.run(prog, "", "--version")
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

// Apply makes the kernel's rules equal to s. It changes only the engine's
// own chains and its jumps from built-in chains, in one iptables-restore
// --noflush run, and runs nothing at all when s renders to what was last
// applied.
func (f *IPTables) Apply(s State) error {
	want, err := render(s)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	return f.last.apply(want.key(), func() error {
		cur, err := f.current()
		if err != nil {
			return err
		}
		script, after, before := planApply(want, cur, f.owned)
		if script != "" {
			// Record the jumps about to be added before adding them: a
			// crash right after must not leave a jump nobody knows is the
			// engine's.
			if err := f.setOwned(before); err != nil {
				return err
			}
			if err := f.restoreRules(script); err != nil {
				return err
			}
		}
		return f.setOwned(after)
	})
}

// Clear removes everything Apply created: the engine's chains, its jumps,
// and DOCKER-USER unless it holds rules. Rules the engine did not add stay.
func (f *IPTables) Clear() error {
	return f.last.clear(func() error {
		cur, err := f.current()
		if err != nil {
			return err
		}
		if script := planClear(cur, f.owned); script != "" {
			if err := f.restoreRules(script); err != nil {
				return err
			}
		}
		return f.setOwned(nil)
	})
}

// setOwned records rules as the engine's, in the state file and in memory.
func (f *IPTables) setOwned(rules []builtinRule) error {
	if slices.Equal(rules, f.owned) {
		return nil
	}
	if f.stateFile != "" {
		if err := writeRecord(f.stateFile, rules); err != nil {
			return fmt.Errorf("firewall: recording the engine's rules in built-in chains: %w", err)
		}
	}
	f.owned = slices.Clone(rules)
	return nil
}

// current reads the kernel's rules.
func (f *IPTables) current() (saved, error) {
	out, err := f.run(f.save, "")
	if err != nil {
		return nil, fmt.Errorf("firewall: reading the current rules: %w", err)
	}
	s, err := parseSave(out)
	if err != nil {
		return nil, fmt.Errorf("firewall: reading the current rules: %s: %w", f.save, err)
	}
	return s, nil
}

var failedLine = regexp.MustCompile(`line (\d+)`)

// restoreRules feeds script to iptables-restore --noflush; each table in it
// is committed whole or not at all.
func (f *IPTables) restoreRules(script string) error {
	_, err := f.run(f.restore, script, "--noflush", lockWait)
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
func (f *IPTables) DropForwarded() error {
	return f.restoreRules("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
}
