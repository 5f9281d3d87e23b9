# The QEMU boot matrix (qemu-tests/, docs/testing.md): boots Debian's kernel
# for an architecture under TCG and runs the smoke test on its binary.
#   make qemu-test ARCH=armv7    one architecture
#   make qemu-test-all           all of them; writes $(RESULTS)/qemu-smoke.md
# Included by the top-level Makefile, which defines GO, ARCHES, RESULTS and
# the bin/%/balena-engine rule. Run as root (installs the emulators).

.PHONY: qemu-test qemu-test-all qemu-install

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
