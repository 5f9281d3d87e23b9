# balena-engine build. Architecture facts live in arch/*.conf and reach the
# Go build only through toolchain/env; nothing here repeats them.

GO        ?= go
ARCHES    := $(sort $(basename $(notdir $(wildcard arch/*.conf))))
PKG       := github.com/balena-os/balena-engine
MAIN      := ./src/cmd/balena-engine

VERSION   ?= 0.1.0-dev
GIT_COMMIT = $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
# The commit's time, not the clock's, so that a rebuild is byte-identical.
BUILD_TIME = $(shell git log -1 --format=%cI 2>/dev/null)

# seccomp: libcontainer filters system calls with libseccomp (static).
# runc_nocriu: no checkpoint/restore (CRIU), which the engine does not offer:
# its RPC types cost 0.33 MB.
# nethttpomithttp2: net/http without its bundled HTTP/2 (0.55 MB): the API
# is HTTP/1.1 on a socket, and registries all speak HTTP/1.1.
# Static (no shared libraries on the device), stripped (-s -w also keeps
# binaries delta-friendly: compressed DWARF defeats binary deltas).
TAGS      := netgo osusergo seccomp runc_nocriu nethttpomithttp2
LDFLAGS    = -s -w -extldflags=-static \
	-X $(PKG)/src/version.Version=$(VERSION) \
	-X $(PKG)/src/version.GitCommit=$(GIT_COMMIT) \
	-X $(PKG)/src/version.BuildTime=$(BUILD_TIME)
# No inlining in the control plane (the CLI, the API, the daemon's
# container, network, image and volume management, the registry client's
# requests and manifests, the container monitor's requests and
# supervision): 0.4 MB less binary for code that runs once per request,
# per container event or per read of a pull or of a container's output
# (image: 41 KB, registry: 16 KB, volume: 8 KB, runtime: 45 KB). The data
# paths (layers, deltas' codecs, logs' encoding) keep the compiler's
# inlining.
NOINLINE  := cli client api daemon container network image registry volume runtime
GCFLAGS    = $(foreach p,$(NOINLINE),-gcflags='$(PKG)/src/$(p)/...=-l')
BUILD      = $(GO) build -trimpath -tags '$(TAGS)' $(GCFLAGS) -ldflags '$(LDFLAGS)'

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
RESULTS     := docs/results

.PHONY: all build cross size test packaging-lint unit race fuzz e2e compat systemd-test cross-check check-config qemu-smoke lint run clean toolchain bench bench-devices bench-delta FORCE

# The first rule is what plain `make` does: build the binary.
all: build

# Binaries always go through go build: its cache knows better than make what
# changed.
FORCE:

build: bin/balena-engine

# The host binary: x86_64 on the build machine, built like the cross ones.
# On a fresh Debian machine plain `make` first installs what cgo needs
# (gcc, libseccomp's static library; as root), as `make run` does.
bin/balena-engine: FORCE
	@mkdir -p $(@D)
	@pkg-config --exists libseccomp 2>/dev/null || toolchain/install x86_64
	$(BUILD) -o $@ $(MAIN)

cross: $(ARCHES:%=bin/%/balena-engine)

bin/%/balena-engine: FORCE
	@mkdir -p $(@D)
	@vars=$$(toolchain/env $*) && echo "env $$(echo $$vars) $(GO) build ... -o $@" && \
		env $$vars $(BUILD) -o $@ $(MAIN)

toolchain:
	toolchain/install
	toolchain/check

# Sizes of the six binaries, printed and written to docs/results/size.md.
size: cross
	@mkdir -p $(RESULTS)
	@{ \
	echo "# Binary sizes"; echo; \
	echo "Made by \`make size\` on $$(date -u +%Y-%m-%d), $$(uname -m), $$($(GO) version | cut -d' ' -f3),"; \
	echo "commit $(GIT_COMMIT). Static, stripped, -trimpath."; echo; \
	echo "| arch | bytes | MiB |"; echo "|---|---:|---:|"; \
	for a in $(ARCHES); do \
		b=$$(stat -c %s bin/$$a/balena-engine); \
		printf '| %s | %s | %s |\n' $$a $$b $$(awk "BEGIN{printf \"%.2f\", $$b/1048576}"); \
	done; } > $(RESULTS)/size.md
	@cat $(RESULTS)/size.md

# Benchmarks against Debian's Docker, in the same run (root; installs
# docker.io without starting it, and mmdebstrap, which builds the pull
# benchmark's Debian root once into /var/cache/balena-engine-bench).
# Results: docs/results/.
bench: build
	@command -v dockerd >/dev/null && command -v mmdebstrap >/dev/null || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
		apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io mmdebstrap; rm -f /usr/sbin/policy-rc.d; }
	@mkdir -p $(RESULTS)
	$(GO) run ./src/internal/cmd/pullbench -engine bin/balena-engine -out $(RESULTS)/pull-bench.md
	$(GO) run ./src/internal/cmd/pullbench -engine bin/balena-engine -images mixed -size 524288000 -runs 1 -out $(RESULTS)/pull-bench-500m.md
	$(GO) run ./src/internal/cmd/ctrbench -engine bin/balena-engine -out $(RESULTS)/container-bench.md
	$(GO) run ./src/internal/cmd/netbench -engine bin/balena-engine -out $(RESULTS)/network-bench.md
	$(GO) run ./src/internal/cmd/monitorbench -engine bin/balena-engine -out $(RESULTS)/monitor-loss.md

# The pull of bench's many-small-files image (its Debian root) against its
# floor (busybox wget | gzip -dc | tar -x; and that + one sync) inside the
# aarch64 and armv7 QEMU guests, under TCG, so ratios only (root; installs
# the emulators, docker-registry and mmdebstrap if missing): RUNS
# alternating runs, medians; about an hour with the whole image. EVERY=N
# keeps every Nth file of the Debian root (a smaller image of the same
# shape). Results: docs/results/pull-bench-devices.md (EVERY=1), or
# pull-bench-devices-everyN.md.
RUNS  ?= 2
EVERY ?= 1
bench-devices: bin/aarch64/balena-engine bin/armv7/balena-engine
	qemu-tests/install
	@command -v docker-registry >/dev/null && command -v mmdebstrap >/dev/null || { apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry mmdebstrap; }
	@mkdir -p $(RESULTS)
	GO=$(GO) BENCH_RUNS=$(RUNS) BENCH_EVERY=$(EVERY) QEMU_COMMAND='make bench-devices RUNS=$(RUNS) EVERY=$(EVERY)' \
		qemu-tests/pullbench-devices $(RESULTS)/pull-bench-devices$(if $(filter-out 1,$(EVERY)),-every$(EVERY)).md aarch64 armv7

# Delta images on pairs built here (a Go program at two commits, default
# and -s -w; a Node.js app whose npm dependencies move; a Debian root where
# nine packages move): plain pull, balenaEngine's format, ours, xdelta3
# and zstd --patch-from, make and apply times, apply memory (root;
# installs xdelta3 and zstd if missing; inputs cached in
# /var/cache/balena-engine-bench). Results: docs/results/delta-bench.md.
bench-delta: build
	@command -v xdelta3 >/dev/null && command -v zstd >/dev/null || { apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xdelta3 zstd; }
	@mkdir -p $(RESULTS)
	$(GO) run ./src/internal/cmd/deltabench -engine bin/balena-engine -out $(RESULTS)/delta-bench.md

# The whole suite, as CI runs it: lint, the packaging's lint, unit tests,
# the end-to-end tests against the built binary (with the real docker
# CLI), the cross binaries
# each run under the CPU of their architecture (where this kernel refuses
# i386 executables, the i386 guest below is their proof), the systemd
# units verified and socket activation under a real systemd, the kernel
# check of the guests' configurations, the QEMU smoke test of every
# architecture's guest, and ten power-cut trials in an x86_64
# guest (make powercut N=200 for more).
test: lint packaging-lint unit race fuzz e2e compat systemd-test cross-check check-config qemu-smoke powercut-ci

# The OS-image packaging, checked with nothing from outside: the Yocto
# layer's and the Buildroot tree's conventions and their agreement with
# the tree (arch/ mapping, the Go modules of go.sum, build tags and flags,
# the kernel options against contrib/check-config, the license, the
# symlink names, the installed files).
packaging-lint:
	meta-balena-engine/scripts/lint
	buildroot/utils/lint

# The systemd units (systemd-analyze verify, both names), then socket
# activation, live restore across restarts, the watchdog and the SysV
# script in a Debian root booted by systemd-nspawn (built once with
# mmdebstrap, cached outside the clone): contrib/systemd/, docs/systemd.md.
systemd-test: bin/balena-engine bin/busybox.tar
	contrib/systemd/verify bin/balena-engine
	contrib/systemd/test-nspawn

# contrib/check-config against the kernel of every QEMU guest (and once
# against a configuration it must refuse).
check-config:
	qemu-tests/check-config

# All six guests, as qemu-test-all, with the table in bin/qemu/ (not docs/).
qemu-smoke: cross
	qemu-tests/install
	GO=$(GO) QEMU_COMMAND='make qemu-smoke' qemu-tests/all bin/qemu/qemu-smoke.md $(ARCHES)

unit:
	$(GO) test -count=1 ./src/...

# The unit tests again under the race detector, built as shipped (the
# seccomp tag is cgo, as is -race).
race:
	$(GO) test -count=1 -race -tags '$(TAGS)' ./src/...

# Each fuzz target for FUZZTIME (make fuzz FUZZTIME=10m for a real
# search), starting from its committed corpus (testdata/fuzz/) and what
# earlier runs found (the Go cache). New inputs are minimised for at most
# FUZZMINIMIZE: the default, a minute each, would take most of a short run.
FUZZTIME     ?= 10s
FUZZMINIMIZE ?= 1s
FUZZ_TARGETS := layer:FuzzApply layer:FuzzUnpack registry:FuzzResolve \
	image:FuzzLoad image:FuzzReference api:FuzzContainerCreate api:FuzzContainerUpdate \
	runtime:FuzzStartRequest runtime:FuzzExecRequest stdstream:FuzzReadFrame \
	network/dns:FuzzAnswer delta/rdiff:FuzzPatch delta/rdiff:FuzzRoundTrip delta:FuzzNativePatch delta/bsdiff:FuzzPatch delta/bsdiff:FuzzRoundTrip
# Go's fuzzing coordinator can end a run with "context deadline exceeded"
# and no failing input when a loaded machine keeps a worker from answering
# before -fuzztime ends: that one case is run again, once; a real failure
# (an input written to testdata/fuzz) never is.
fuzz:
	@set -e; mkdir -p bin; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($(FUZZTIME)) ./src/$${t%%:*}"; \
		for try in 1 2; do \
			if $(GO) test -tags '$(TAGS)' -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) \
				-fuzzminimizetime $(FUZZMINIMIZE) ./src/$${t%%:*}/ >bin/fuzz.log 2>&1; then cat bin/fuzz.log; break; fi; \
			cat bin/fuzz.log; \
			if [ $$try = 2 ] || grep -q 'Failing input written' bin/fuzz.log || ! grep -q 'context deadline exceeded' bin/fuzz.log; then exit 1; fi; \
			echo "fuzz $${t#*:}: the coordinator's deadline, no failing input: once more"; \
		done; \
	done

e2e: bin/balena-engine
	BALENA_ENGINE_BIN=$(CURDIR)/bin/balena-engine $(GO) test -count=1 -tags e2e -run E2E ./src/e2e/

# The drop-in acceptance suites: clients as users run them (dockerode and
# balena's device agent's flows; docker-py; the docker CLI, the current one
# and Debian's 20.10, fetched once into /var/cache/balena-engine-test;
# Docker Compose, the current one built once from its Go module into the
# same cache, and Debian's 1.29) against a daemon of the test's own, each
# check a line and a count per client (src/e2e/compat*). The timeout
# leaves room for that one-time build.
compat: bin/balena-engine
	@echo "go test -tags e2e -run TestCompat ./src/e2e/ (log: bin/compat.log)"
	@BALENA_ENGINE_BIN=$(CURDIR)/bin/balena-engine $(GO) test -count=1 -timeout 30m -tags e2e -run 'TestCompat' -v ./src/e2e/ >bin/compat.log 2>&1 || \
		{ cat bin/compat.log; exit 1; }
	@grep -E 'SUMMARY|SKIP|^--- |^ok' bin/compat.log

cross-check: cross
	BALENA_ENGINE_BINDIR=$(CURDIR)/bin ARCH_DIR=$(CURDIR)/arch $(GO) test -count=1 -tags cross -run Cross -v ./src/e2e/

lint:
	@out=$$(gofmt -l src); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./src/...
	$(GO) vet -tags 'e2e cross' ./src/...
	@# 32-bit targets catch what amd64 cannot (int32 fields, constant overflows).
	vars=$$(toolchain/env armv7) && env $$vars $(GO) vet ./src/...
	$(GO) run $(STATICCHECK) ./src/...
	$(GO) run $(STATICCHECK) -tags 'e2e cross' ./src/...

# The test image: Debian's busybox-static as a "docker save" archive.
bin/busybox.tar: FORCE
	@mkdir -p $(@D)
	$(GO) run ./src/internal/cmd/testimage -o $@ -tag busybox:latest

# The main job, as root: install what is missing (C compiler, busybox),
# build, start the daemon on the default data root and socket, load the
# test image into it and run a container from it; then leave the daemon in
# the foreground until Ctrl-C. The container monitor outlives the daemon
# by design (live restore): its PID is in /var/run/balena-engine/monitor/monitor.pid.
run:
	toolchain/install x86_64
	@for p in busybox-static iptables; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static iptables; break; }; done
	$(MAKE) build bin/busybox.tar
	@bin/balena-engine daemon & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid' EXIT INT TERM; \
	for i in $$(seq 100); do bin/balena-engine version >/dev/null 2>&1 && break; sleep 0.1; done; \
	bin/balena-engine load -i bin/busybox.tar && bin/balena-engine images && \
	bin/balena-engine run --rm --network none busybox echo "hello from a balena-engine container" && \
	echo "balena-engine is running (pid $$pid) on unix:///var/run/balena-engine.sock; Ctrl-C stops it" && \
	wait $$pid

clean:
	rm -rf bin

include qemu-tests/qemu.mk
