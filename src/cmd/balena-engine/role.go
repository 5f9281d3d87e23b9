package main

import (
	"fmt"

	"github.com/balena-os/balena-engine/src/runtime"
	"path/filepath"
	"sort"
	"strings"
)

type role int

const (
	roleClient role = iota
	roleDaemon
	roleMonitor
	roleInit
	roleCheck
)

// Names the executable may be installed or linked under.
var names = map[string]role{
	"balena-engine":        roleClient,
	"balena":               roleClient,
	"docker":               roleClient, // an optional link in the OS images (meta-balena-engine, buildroot)
	"balenad":              roleDaemon,
	"balena-engine-daemon": roleDaemon,
	"docker-init":          roleInit, // bind-mounted into containers run with --init
}

// selectRole decides the role from argv and returns the arguments for it.
// A name outside the table is refused rather than guessed, so a mistyped
// symlink fails loudly instead of starting the wrong thing.
func selectRole(argv []string) (role, []string, error) {
	if len(argv) == 0 {
		return 0, nil, fmt.Errorf("started without argv[0]")
	}
	name := filepath.Base(argv[0])
	r, ok := names[name]
	if !ok {
		known := make([]string, 0, len(names))
		for n := range names {
			known = append(known, n)
		}
		sort.Strings(known)
		return 0, nil, fmt.Errorf("unknown role %q: install or link the binary as one of %s", name, strings.Join(known, ", "))
	}
	args := argv[1:]
	if r == roleInit {
		return r, args, nil // whatever follows is the container's command
	}
	if len(args) > 0 && args[0] == runtime.MonitorArg {
		return roleMonitor, args[1:], nil
	}
	if r == roleClient && len(args) > 0 && args[0] == "daemon" {
		return roleDaemon, args[1:], nil
	}
	if r == roleClient && len(args) > 0 && args[0] == checkArg {
		return roleCheck, args[1:], nil
	}
	return r, args, nil
}
