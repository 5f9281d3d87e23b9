// Command balena-engine is the whole engine in one executable. It picks its
// role from the name it was started under or from its first argument:
//
//	balena-engine, balena, docker  the command-line client (docker: an optional link)
//	balena-engine daemon           the daemon
//	balenad, balena-engine-daemon  the daemon
//	balena-engine check            check a stopped daemon's data root (check.go)
//	<any name> init                libcontainer's container init (hidden; see init.go)
//	<any name> __monitor           the container monitor (hidden; see src/runtime)
//	docker-init                    PID 1 of a container run with --init (src/initproc)
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/balena-os/balena-engine/src/cli"
	"github.com/balena-os/balena-engine/src/daemon"
	"github.com/balena-os/balena-engine/src/initproc"
	"github.com/balena-os/balena-engine/src/runtime"
)

func main() {
	r, args, err := selectRole(os.Args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "balena-engine: %v\n", err)
		os.Exit(2)
	}
	switch r {
	case roleDaemon:
		go trimMemory(trimInterval)
		os.Exit(daemon.Main(args, os.Stdout, os.Stderr))
	case roleMonitor:
		go trimMemory(trimInterval)
		os.Exit(runtime.MonitorMain(args))
	case roleInit:
		os.Exit(initproc.Main(args, os.Stderr))
	case roleCheck:
		os.Exit(checkMain(args, os.Stdout, os.Stderr))
	default:
		os.Exit(cli.Main(args, os.Stdout, os.Stderr))
	}
}

// The long-running roles give the memory their heaps no longer use back
// to the kernel every trimInterval. Go's own scavenger does it slowly and
// keeps a margin; on a device idle most of the time, the daemon and the
// monitor then hold about 2 MiB less each (measured: anonymous memory of
// each 6.9 -> 4.6 MiB after 20 containers ran). The cost is a collection
// of a small heap, a millisecond or two here, every 10 s.
const trimInterval = 10 * time.Second

func trimMemory(every time.Duration) {
	for range time.Tick(every) {
		debug.FreeOSMemory()
	}
}
