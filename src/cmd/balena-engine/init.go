package main

import (
	"os"
	"os/signal"

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
		// Until it execs the container's command, this process is the
		// container's PID 1 with Go's signal handlers: a stop's SIGTERM
		// landing in that window (a start just returned, the machine
		// busy) made the runtime exit with status 2 instead of the
		// command seeing it. Caught and dropped here, it is as if it had
		// come a moment later to a PID 1 without a handler, which the
		// kernel drops too; the stop's SIGKILL follows. The handlers do
		// not survive the exec.
		signal.Notify(make(chan os.Signal, 1))
		libcontainer.Init() // never returns
	}
}
