# Shared by the toolchain scripts: reading arch/ definitions.
# shellcheck shell=bash

TOOLCHAIN_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARCH_DIR=$TOOLCHAIN_TOP/arch

# arch_names prints every architecture defined in arch/, one a line.
arch_names() {
	local f
	for f in "$ARCH_DIR"/*.conf; do
		basename "$f" .conf
	done
}

# load_arch NAME sets the arch/NAME.conf variables in the current shell.
load_arch() {
	local f=$ARCH_DIR/$1.conf
	if [ ! -f "$f" ]; then
		echo "toolchain: unknown architecture '$1' (known: $(arch_names | tr '\n' ' '))" >&2
		return 1
	fi
	# shellcheck disable=SC1090
	. "$f"
}
