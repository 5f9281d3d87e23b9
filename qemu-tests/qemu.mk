# The QEMU boot matrix (qemu-tests/, docs/testing.md): boots Debian's kernel
# for an architecture under TCG and runs the smoke test on its binary.
#   make qemu-test ARCH=armv7    one architecture
#   make qemu-test-all           all of them; writes $(RESULTS)/qemu-smoke.md
#   make powercut [N=200] [ARCH=x86_64]
#                                the power-cut trials; writes
#                                $(RESULTS)/powercut-ARCH.md
#   make powercut-ci             10 trials on x86_64, for make test (result
#                                in bin/qemu/, not docs/)
#   make crashstates [ARCH=x86_64]
#                                the crash-state exploration; writes
#                                $(RESULTS)/crashstates-ARCH.md
# Included by the top-level Makefile, which defines GO, ARCHES, RESULTS and
# the bin/%/balena-engine rule. Run as root (installs the emulators).

.PHONY: qemu-test qemu-test-all qemu-install powercut powercut-ci crashstates

qemu-install:
	qemu-tests/install

qemu-test: $(if $(ARCH),bin/$(ARCH)/balena-engine)
	@test -n "$(ARCH)" || { echo "usage: make qemu-test ARCH=<one of: $(ARCHES)>" >&2; exit 2; }
	qemu-tests/install
	GO=$(GO) qemu-tests/run $(ARCH)

qemu-test-all: cross
	qemu-tests/install
	@mkdir -p $(RESULTS)
	GO=$(GO) QEMU_COMMAND='make qemu-test-all' qemu-tests/all $(RESULTS)/qemu-smoke.md $(ARCHES)

# The power-cut trials and the crash-state exploration default to x86_64:
# its guest boots fastest, and crashstates runs the engine on this host.
PC_ARCH = $(or $(ARCH),x86_64)
N ?= 200

powercut: bin/$(PC_ARCH)/balena-engine bin/balena-engine
	qemu-tests/install
	@mkdir -p $(RESULTS)
	GO=$(GO) QEMU_COMMAND='make powercut N=$(N) ARCH=$(PC_ARCH)' qemu-tests/powercut $(PC_ARCH) $(N) $(RESULTS)/powercut-$(PC_ARCH).md

powercut-ci: bin/x86_64/balena-engine bin/balena-engine
	qemu-tests/install
	GO=$(GO) QEMU_COMMAND='make powercut-ci' qemu-tests/powercut x86_64 10 bin/qemu/powercut-ci.md

crashstates: bin/$(PC_ARCH)/balena-engine
	qemu-tests/install
	@mkdir -p $(RESULTS)
	GO=$(GO) QEMU_COMMAND='make crashstates ARCH=$(PC_ARCH)' qemu-tests/crashstates $(PC_ARCH) $(RESULTS)/crashstates-$(PC_ARCH).md
