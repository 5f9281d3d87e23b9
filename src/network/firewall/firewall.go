package firewall

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options for New.
type Options struct {
	// Backend is "iptables" (also "") or "nftables" (dockerd's
	// --firewall-backend).
	Backend string
	// RestoreCmd and SaveCmd are the iptables backend's programs; ""
	// means "iptables-restore" / "iptables-save" looked up in PATH.
	RestoreCmd, SaveCmd string
	// Restore6Cmd and Save6Cmd are its IPv6 programs; "" means
	// "ip6tables-restore" / "ip6tables-save" looked up in PATH. They are
	// looked for when a state first has IPv6: without them New still
	// succeeds, and Apply fails only for a state with IPv6 (after
	// applying the IPv4 rules).
	Restore6Cmd, Save6Cmd string
	// NFTCmd is the nftables backend's program; "" means "nft" looked up
	// in PATH.
	NFTCmd string
	// StateDir is a directory on a tmpfs (the engine's exec root) where the
	// iptables backend remembers which rules it put into built-in chains,
	// so that after a daemon crash it can remove exactly its own
	// leftovers. After a reboot both the kernel's rules and this directory
	// are gone together. "" keeps that record in memory only. The nftables
	// backend owns a whole table and needs no record.
	StateDir string
}

// Firewall drives the kernel's IPv4 and IPv6 rules. Its methods may be
// called concurrently.
type Firewall interface {
	// Apply makes the engine's rules equal to s, and runs nothing at all
	// when s renders to what was last applied.
	Apply(s State) error
	// Clear removes everything Apply created.
	Clear() error
	// Backend names the backend in use: "iptables (legacy)",
	// "iptables (nf_tables)" or "nftables".
	Backend() string
}

// New returns the backend that opts.Backend names, once it has checked
// that the backend's programs exist.
func New(opts Options) (Firewall, error) {
	switch opts.Backend {
	case "", "iptables":
		f, err := newIPTables(opts)
		if err != nil {
			return nil, err
		}
		return f, nil
	case "nftables":
		f, err := newNFTables(opts)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("firewall: unknown backend %q: want iptables or nftables", opts.Backend)
}

// programTimeout bounds one run of a firewall program; a hung xtables lock
// must not hang the daemon.
const programTimeout = time.Minute

// lookPath finds a backend's program; install names the package to install.
func lookPath(name, install string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found: install %s or run with --iptables=false", name, install)
	}
	return p, nil
}

// runner runs the backends' programs and counts the runs, for tests.
type runner struct{ runs atomic.Int64 }

// run runs prog with stdin and returns its standard output; the error
// carries the standard error.
func (r *runner) run(prog, stdin string, args ...string) (string, error) {
	r.runs.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), programTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", fmt.Errorf("%s %s: %w", prog, strings.Join(args, " "), err)
		}
		return "", fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// lastApplied serialises a backend's changes and remembers the key of the
// rules last applied successfully, so that applying them again runs
// nothing.
type lastApplied struct {
	mu sync.Mutex
	// key is "" when unknown (a new backend, after an error or Clear):
	// then the next apply does its work.
	key string
}

// apply runs do unless key is what was last applied.
func (l *lastApplied) apply(key string, do func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if key == l.key {
		return nil
	}
	l.key = ""
	if err := do(); err != nil {
		return err
	}
	l.key = key
	return nil
}

// clear runs do and forgets what was applied.
func (l *lastApplied) clear(do func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.key = ""
	return do()
}
