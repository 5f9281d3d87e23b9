// Package e2e holds the end-to-end tests of the built binary: each test
// starts its own daemon (own socket, data root, exec root and cgroup
// parent) and drives it with the official docker CLI, balena-engine's own
// client or the API, then checks what is left on the machine.
//
// They are behind the e2e build tag and need root, the docker CLI and the
// binary named by BALENA_ENGINE_BIN:
//
//	make e2e
//	BALENA_ENGINE_BIN=$PWD/bin/balena-engine go test -count=1 -tags e2e -run E2E ./src/e2e/
//	BALENA_ENGINE_BIN=$PWD/bin/balena-engine go test -count=1 -tags e2e -run E2EMonitor ./src/e2e/
//
// The files are split by area: harness_test.go (a daemon's paths, its
// start and stop, commands with a bounded time, polling, clean-up),
// daemon_test.go (the daemon role, its flags and configuration),
// images_test.go, containers_test.go, logs_test.go, memory_test.go (what a
// client costs the daemon), monitor_test.go (the container monitor's loss
// and upgrade), cli_test.go (our own client against the docker CLI) and
// pathrace_test.go (CVE-2018-15664).
//
// cross_test.go, behind the cross build tag, checks the cross-built
// binaries instead (make cross-check):
//
//	BALENA_ENGINE_BINDIR=$PWD/bin ARCH_DIR=$PWD/arch go test -count=1 -tags cross -run Cross -v ./src/e2e/
package e2e
