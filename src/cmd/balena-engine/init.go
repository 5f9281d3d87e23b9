package main

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // C constructor that joins namespaces before Go starts
)

// The container-init role. libcontainer starts a container by re-executing
// this binary (through a sealed copy of /proc/self/exe) as "<argv0> init"
// with its sync pipes in _LIBCONTAINER_* variables. nsenter's C constructor
// has already run by now; this must run before main and before any other
// package starts goroutines of its own, hence init().
//
// The environment check keeps "balena-engine init" typed by a person an
// unknown client command instead of a confusing libcontainer failure.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != "" {
		libcontainer.Init() // never returns
	}
}
