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

# Static C libraries for foreign architectures are unpacked from Debian's
# packages into a sysroot per Debian architecture, not installed into the
# host's dpkg (no `dpkg --add-architecture`: the host's apt stays as it is).
TOOLCHAIN_CACHE=${BALENA_TOOLCHAIN_CACHE:-/var/cache/balena-engine-toolchain}

# host_debian_arch prints the build machine's Debian architecture.
host_debian_arch() {
	dpkg --print-architecture
}

# sysroot_dir DEBIAN_ARCH prints where that architecture's libraries go.
sysroot_dir() {
	echo "$TOOLCHAIN_CACHE/sysroot-$1"
}

# apt_download DEBIAN_ARCH DESTDIR PKG...: download the named packages of
# that architecture into DESTDIR with the host's apt sources, through a
# lists directory of its own.
apt_download() {
	local arch=$1 dest=$2
	shift 2
	local d=$TOOLCHAIN_CACHE/apt-$arch
	local opts=(-qq -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache")
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$dest"
	# A mirror in mid-sync makes one index fail (often the security one);
	# the download below says whether what we need was found.
	apt-get "${opts[@]}" update || echo "toolchain: apt-get update for $arch reported errors; trying the download anyway" >&2
	# apt's sandbox user cannot write into root's directories.
	(cd "$dest" && apt-get "${opts[@]}" -o APT::Sandbox::User=root download "$@")
}
