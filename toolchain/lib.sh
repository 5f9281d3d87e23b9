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

# apt_foreign DEBIAN_ARCH ARGS...: run apt-get (or apt-cache, when ARGS
# start with "cache") for a foreign architecture with its own package lists,
# package cache and an empty dpkg status, so neither the host's apt state
# nor its dpkg architectures change.
apt_foreign() {
	local arch=$1
	shift
	local d=$TOOLCHAIN_CACHE/apt/$arch
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	[ -f "$d/status" ] || : >"$d/status"
	local tool=apt-get
	if [ "${1:-}" = cache ]; then
		tool=apt-cache
		shift
	fi
	"$tool" -q -o APT::Architecture="$arch" -o APT::Architectures="$arch" \
		-o Dir::State::Lists="$d/lists" -o Dir::State::status="$d/status" \
		-o Dir::Cache="$d/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

# apt_update_foreign DEBIAN_ARCH: fetch that architecture's package lists,
# at most once a day.
apt_update_foreign() {
	local d=$TOOLCHAIN_CACHE/apt/$1 i
	if [ -n "$(find "$d/updated" -mtime -1 2>/dev/null)" ]; then
		return 0
	fi
	echo "toolchain: apt-get update for $1" >&2
	mkdir -p "$d"
	# The mirror is sometimes caught mid-sync: try again before giving up.
	for i in 1 2; do
		if apt_foreign "$1" update -qq >"$d/update.log" 2>&1; then
			touch "$d/updated"
			return 0
		fi
		sleep $((i * 5))
	done
	# Some suites' lists arrived (often all but the security suite): go on
	# with those; a stale suite gives an older package, not a wrong one.
	if compgen -G "$d/lists/*_Packages*" >/dev/null; then
		echo "toolchain: warning: apt-get update for $1 failed for some suites ($d/update.log); using the lists that arrived" >&2
		touch "$d/updated"
		return 0
	fi
	cat "$d/update.log" >&2
	echo "toolchain: apt-get update for $1 failed" >&2
	return 1
}

# deb_fetch DEBIAN_ARCH PACKAGE DIR: download PACKAGE's .deb for that
# architecture into DIR (kept: the version is in the name) and extract it
# into DIR/PACKAGE_VERSION/ (once). Prints the extraction directory.
deb_fetch() {
	local arch=$1 pkg=$2 dir=$3 ver deb x
	apt_update_foreign "$arch" || return 1
	ver=$(apt_foreign "$arch" cache show --no-all-versions "$pkg" | sed -n 's/^Version: //p' | head -1)
	if [ -z "$ver" ]; then
		echo "toolchain: no package $pkg for $arch" >&2
		return 1
	fi
	deb=$dir/${pkg}_${ver//:/%3a}_$arch.deb
	mkdir -p "$dir"
	if [ ! -s "$deb" ]; then
		echo "toolchain: downloading $pkg $ver ($arch)" >&2
		(cd "$dir" && apt_foreign "$arch" download "$pkg=$ver" >&2)
		[ -s "$deb" ] || deb=$(compgen -G "$dir/${pkg}_*_$arch.deb" | tail -1)
	fi
	x=$dir/${pkg}_${ver//:/%3a}
	if [ ! -d "$x" ]; then
		rm -rf "$x.tmp"
		dpkg-deb -x "$deb" "$x.tmp"
		mv "$x.tmp" "$x"
	fi
	echo "$x"
}
