# Shared by the qemu-tests scripts: the architecture definitions (through
# toolchain/lib.sh, so arch/*.conf stays the one place that defines an
# architecture), the download cache, and apt downloads of foreign packages.
# shellcheck shell=bash

QEMU_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$QEMU_TESTS/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../toolchain/lib.sh
. "$TOP/toolchain/lib.sh"

# Downloads outlive `make clean`: kernels are tens of MB per architecture.
QEMU_CACHE=${QEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/balena-engine-qemu}
# Per-architecture build outputs (initramfs, disk image, serial log).
QEMU_OUT=${QEMU_OUT:-$TOP/bin/qemu}

log() { echo "qemu-tests: $*" >&2; }
die() { log "$*"; exit 1; }

# Foreign packages come through toolchain/lib.sh's apt_foreign and
# deb_fetch (its own lists per architecture, no dpkg --add-architecture).

# kernel_fetch DEBIAN_ARCH KERNEL_PACKAGE: download the kernel that the
# (meta)package KERNEL_PACKAGE depends on and print its extraction
# directory (boot/vmlinuz-*, lib/modules/*, usr/lib/linux-image-*/ dtbs).
kernel_fetch() {
	local arch=$1 meta=$2 pkg
	pkg=$(apt_foreign "$arch" cache show --no-all-versions "$meta" |
		sed -n 's/^Depends: //p' | head -1 | tr ',|' '\n' |
		sed 's/^ *//; s/ .*//' | grep '^linux-image-' | head -1)
	# The package itself may be the kernel (no metapackage in between).
	[ -n "$pkg" ] || pkg=$meta
	deb_fetch "$arch" "$pkg" "$QEMU_CACHE/debs/$arch"
}
