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

# The kernel modules of bridged networking, in every guest's initramfs
# (build_initramfs) on top of its arch/*.conf QEMU_MODULES: the bridge and
# veth drivers, and netfilter for the engine's iptables backend (the
# tables, conntrack, NAT, and the matches and targets its rules use:
# src/network/firewall/doc.go). Not in arch/*.conf: they are what the
# engine needs of any kernel (docs/networking.md), not a fact of one
# architecture, and modprobe --show-depends resolves them against each
# kernel (a built-in one is left out, a missing one fails the build by
# name). All are modules in Debian's 6.1 kernels for the five guests.
# br_netfilter is not needed: the engine does not filter bridged traffic
# through iptables.
QEMU_NET_MODULES="bridge veth nf_conntrack nf_nat ip_tables iptable_filter iptable_nat
	xt_MASQUERADE xt_nat xt_addrtype xt_conntrack xt_tcpudp"

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

# iptables_fetch DEBIAN_ARCH: download Debian's iptables for that
# architecture and the libraries it depends on (the lib* packages of its
# Depends, and theirs: libxtables12, libip4tc2, libnftnl11, libmnl0, libc6,
# ...), and print their extraction directories, one a line.
iptables_fetch() {
	local arch=$1 p seen=' ' queue=(iptables)
	while [ ${#queue[@]} -gt 0 ]; do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		case $seen in *" $p "*) continue ;; esac
		seen+="$p "
		deb_fetch "$arch" "$p" "$QEMU_CACHE/debs/$arch" || return 1
		# "a (>= 1), b | c, d:any": a, b, d; the lib* ones only.
		mapfile -t -O ${#queue[@]} queue < <(apt_foreign "$arch" cache show --no-all-versions "$p" |
			sed -n 's/^\(Pre-\)\{0,1\}Depends: //p' | tr ',' '\n' |
			sed 's/|.*//; s/^ *//; s/[ (].*//; s/:any$//' | grep '^lib' || true)
	done
}

# The steps every QEMU test takes (qemu-tests/run, powercut, crashstates),
# written once. They set and read these globals:
#   arch platform bb_arch guest engine out kdir kver vmlinuz busybox disk_dev
#   iptables_dirs (the unpacked iptables packages), qargs (the QEMU command
#   line being built), qpid (the running QEMU).

# guest_setup ARCH [OUTNAME]: read arch/ARCH.conf (and its QEMU_GUEST's),
# fetch the guest kernel and ARCH's busybox and iptables, and make the
# output directory $QEMU_OUT/OUTNAME (default ARCH).
# shellcheck disable=SC2034 # the globals are read by the sourcing scripts
guest_setup() {
	arch=$1
	load_arch "$arch"
	platform=${PLATFORM:?}
	bb_arch=$DEBIAN_ARCH
	guest=${QEMU_GUEST:-$arch}
	# What boots: the guest architecture's kernel, machine and devices.
	[ "$guest" = "$arch" ] || load_arch "$guest"
	if [ -z "$QEMU_SYSTEM" ] || [ -z "$KERNEL_PACKAGE" ]; then
		die "arch/$guest.conf: no QEMU_SYSTEM/KERNEL_PACKAGE"
	fi
	command -v "$QEMU_SYSTEM" >/dev/null || die "$QEMU_SYSTEM missing: run qemu-tests/install"
	engine=$TOP/bin/$arch/balena-engine
	[ -x "$engine" ] || die "$engine missing: run make bin/$arch/balena-engine"
	out=$QEMU_OUT/${2:-$arch}
	mkdir -p "$out"
	apt_update_foreign "$DEBIAN_ARCH"
	[ "$bb_arch" = "$DEBIAN_ARCH" ] || apt_update_foreign "$bb_arch"
	kdir=$(kernel_fetch "$DEBIAN_ARCH" "$KERNEL_PACKAGE")
	local bbdir
	bbdir=$(deb_fetch "$bb_arch" busybox-static "$QEMU_CACHE/debs/$bb_arch")
	kver=$(basename "$(compgen -G "$kdir/lib/modules/*" | head -1)")
	vmlinuz=$kdir/boot/vmlinuz-$kver
	[ -f "$vmlinuz" ] || die "no kernel in $kdir"
	busybox=$bbdir/bin/busybox
	# iptables (legacy) for the engine's firewall, of the binary's own
	# Debian architecture, like busybox.
	local ipt
	ipt=$(iptables_fetch "$bb_arch")
	mapfile -t iptables_dirs <<<"$ipt"
	disk_dev=vda
	[ "$QEMU_DISK" != sd ] || disk_dev=mmcblk0
}

# build_test_image: $out/busybox.tar, the busybox test image for ARCH's
# platform, from its own busybox.
build_test_image() {
	log "$arch: test image ($platform)"
	(cd "$TOP" && "$GO" run ./src/internal/cmd/testimage -o "$out/busybox.tar" \
		-tag busybox:latest -busybox "$busybox" -platform "$platform")
}

# install_iptables ROOT: Debian's iptables, legacy variant (balenaOS ships
# iptables-legacy), into ROOT at Debian's paths, from the packages
# iptables_fetch unpacked: /usr/sbin/xtables-legacy-multi with its
# iptables-legacy* names, iptables, iptables-save and iptables-restore
# pointing at those (as Debian's alternatives do when legacy is chosen),
# the IPv4 extensions (/usr/lib/TRIPLET/xtables/lib{xt,ipt}_*.so), and
# every shared library these need (their ELF NEEDED entries, recursively)
# with the dynamic loader (PT_INTERP) and the symlinks leading to them.
install_iptables() {
	local root=$1 d ipt='' f n rel interp queue=() seen=' '
	for d in "${iptables_dirs[@]}"; do
		case $(basename "$d") in iptables_*) ipt=$d ;; esac
	done
	[ -n "$ipt" ] || die "$arch: iptables is not unpacked"
	[ -x "$ipt/usr/sbin/xtables-legacy-multi" ] || die "no xtables-legacy-multi in $ipt"
	pkg_copy usr/sbin/xtables-legacy-multi "$root"
	for n in iptables-legacy iptables-legacy-save iptables-legacy-restore; do
		pkg_copy "usr/sbin/$n" "$root"
	done
	ln -sfn iptables-legacy "$root/usr/sbin/iptables"
	ln -sfn iptables-legacy-save "$root/usr/sbin/iptables-save"
	ln -sfn iptables-legacy-restore "$root/usr/sbin/iptables-restore"
	queue=("$ipt/usr/sbin/xtables-legacy-multi")
	for f in "$ipt"/usr/lib/*/xtables/lib{xt,ipt}_*.so; do
		pkg_copy "${f#"$ipt"/}" "$root"
		queue+=("$f")
	done
	interp=$(readelf -lW "$ipt/usr/sbin/xtables-legacy-multi" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
	[ -n "$interp" ] || die "xtables-legacy-multi names no program interpreter"
	pkg_copy "${interp#/}" "$root"
	# The libraries, found in the packages' lib/TRIPLET and usr/lib/TRIPLET.
	while [ ${#queue[@]} -gt 0 ]; do
		f=${queue[0]}
		queue=("${queue[@]:1}")
		for n in $(readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
			case $seen in *" $n "*) continue ;; esac
			seen+="$n "
			rel=''
			for d in "${iptables_dirs[@]}"; do
				rel=$(cd "$d" && compgen -G "lib/*/$n" || compgen -G "usr/lib/*/$n") && break
			done
			[ -n "$rel" ] || die "$arch: $n (needed by ${f##*/}) is in none of the iptables packages"
			pkg_copy "$rel" "$root"
			queue+=("$(pkg_find "$rel")/$rel")
		done
	done
}

# pkg_find REL: the unpacked package (of iptables_dirs) holding REL.
pkg_find() {
	local d
	for d in "${iptables_dirs[@]}"; do
		if [ -e "$d/$1" ] || [ -L "$d/$1" ]; then
			echo "$d"
			return 0
		fi
	done
	die "$arch: $1 is in none of the iptables packages"
}

# pkg_copy REL ROOT: copy REL from the package holding it to ROOT/REL,
# a symlink as a symlink, then what it points to.
pkg_copy() {
	local rel=$1 root=$2 d t
	d=$(pkg_find "$rel")
	mkdir -p "$root/$(dirname "$rel")"
	cp -a "$d/$rel" "$root/$rel"
	if [ -L "$d/$rel" ]; then
		t=$(readlink "$d/$rel")
		case $t in
		/*) t=${t#/} ;;
		*) t=$(dirname "$rel")/$t ;;
		esac
		t=$(realpath -ms --relative-to=/ "/$t")
		[ -e "$root/$t" ] || pkg_copy "$t" "$root"
	fi
}

# build_initramfs SCRIPT [MODULE...]: $out/initrd.gz holding busybox,
# guest/init, guest/SCRIPT (which /init runs), iptables (install_iptables)
# and the kernel modules of arch/*.conf's QEMU_MODULES, QEMU_NET_MODULES
# (above) and MODULE... with their dependencies, in load order.
build_initramfs() {
	local script=$1 root=$out/initramfs m kind path rel
	shift
	log "$arch: initramfs (kernel $kver, guest/$script)"
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,etc/smoke,lib/modules}
	cp "$busybox" "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"
	mknod -m 600 "$root/dev/console" c 5 1
	cp "$QEMU_TESTS/guest/init" "$root/init"
	cp "$QEMU_TESTS/guest/$script" "$root/etc/smoke/$script"
	chmod 755 "$root/init" "$root/etc/smoke/$script"
	printf 'SMOKE_DISK=%s\nSMOKE_SCRIPT=%s\n' "$disk_dev" "$script" >"$root/etc/smoke/env"
	[ -f "$kdir/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir" "$kver"
	: >"$root/etc/smoke/modules"
	install_iptables "$root"
	for m in $QEMU_MODULES $QEMU_NET_MODULES "$@"; do
		modprobe -d "$kdir" -S "$kver" --show-depends "$m" | while read -r kind path _; do
			[ "$kind" = insmod ] || continue # "builtin NAME": nothing to load
			rel=${path#"$kdir"}
			grep -qxF "$rel" "$root/etc/smoke/modules" && continue
			mkdir -p "$root$(dirname "$rel")"
			cp "$path" "$root$rel"
			echo "$rel" >>"$root/etc/smoke/modules"
		done
	done
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 >"$out/initrd.gz"
}

# build_disk IMAGE SIZE FILE...: an ext4 image holding FILE... at its root
# (mkfs.ext4 -d: no loop device). A power of two in size (QEMU's SD card
# requires it). The caller may set disk_mkfs_args (more mkfs.ext4
# options).
disk_mkfs_args=()
build_disk() {
	local img=$1 size=$2 stage
	shift 2
	stage=$(mktemp -d "$out/disk.XXXXXX")
	cp "$@" "$stage/"
	rm -f "$img"
	mkfs.ext4 -q -F -L smoke-data "${disk_mkfs_args[@]}" -d "$stage" "$img" "$size" >/dev/null
	rm -rf "$stage"
}

# qemu_base_args CMDLINE...: set qargs to boot the guest's kernel and
# $out/initrd.gz with CMDLINE appended to the kernel command line; the
# caller adds the disk (qemu_disk_args) and the network.
qemu_base_args() {
	qargs=(-accel tcg -M "$QEMU_MACHINE" -cpu "$QEMU_CPU" -m "$QEMU_MEMORY"
		-nographic -no-reboot
		-kernel "$vmlinuz" -initrd "$out/initrd.gz"
		-append "console=$QEMU_CONSOLE panic=-1 $*")
	if [ -n "$QEMU_DTB" ]; then
		local dtb
		dtb=$(compgen -G "$kdir/usr/lib/linux-image-$kver/$QEMU_DTB" || compgen -G "$kdir/usr/lib/linux-image-$kver/*/$QEMU_DTB") ||
			die "no $QEMU_DTB in $kdir"
		cp "$dtb" "$out/board.dtb"
		[ -z "$QEMU_DTB_DELETE" ] || fdtput -r "$out/board.dtb" "$QEMU_DTB_DELETE"
		qargs+=(-dtb "$out/board.dtb")
	fi
	# QEMU_ARGS is a list of options: split on spaces on purpose.
	# shellcheck disable=SC2206
	[ -z "$QEMU_ARGS" ] || qargs+=($QEMU_ARGS)
}

# qemu_disk_args IMAGE: add IMAGE as the guest's data disk.
qemu_disk_args() {
	case $QEMU_DISK in
	virtio) qargs+=(-drive "file=$1,if=none,id=data,format=raw" -device "virtio-blk-pci,drive=data") ;;
	sd) qargs+=(-drive "file=$1,if=sd,format=raw") ;;
	*) die "arch/$guest.conf: QEMU_DISK '$QEMU_DISK' is neither virtio nor sd" ;;
	esac
}

# qemu_start CONSOLE: start $QEMU_SYSTEM with qargs in the background, its
# serial console to CONSOLE (the command line goes to CONSOLE.cmd); sets
# qpid.
qpid=
qemu_start() {
	printf "%q " "$QEMU_SYSTEM" "${qargs[@]}" >"$1.cmd"
	"$QEMU_SYSTEM" "${qargs[@]}" </dev/null >"$1" 2>&1 &
	qpid=$!
}

# qemu_stop: stop the QEMU qemu_start started (SIGTERM, then SIGKILL), by
# its PID, and reap it. Safe to call when it has exited or never started.
qemu_stop() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true
		sleep 1
		kill -9 "$qpid" 2>/dev/null || true
	fi
	[ -z "$qpid" ] || wait "$qpid" 2>/dev/null || true
	qpid=
}

# qemu_powercut: SIGKILL the running QEMU at once, the power cut: the guest
# loses its RAM (page cache included); what QEMU wrote to the image stays.
qemu_powercut() {
	[ -z "$qpid" ] || kill -9 "$qpid" 2>/dev/null || true
	[ -z "$qpid" ] || wait "$qpid" 2>/dev/null || true
	qpid=
}

# elapsed START END: seconds between two $EPOCHREALTIME readings.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The registry the power-cut guests pull from: Debian's docker-registry on
# a free port of this host's loopback, started by registry_start DIR (sets
# registry=127.0.0.1:PORT and regpid) and stopped by its PID with
# registry_stop. The guest reaches it as $guest_registry only
# (qemu_registry_nic).
guest_registry=10.0.2.100:5000
regpid=
registry_start() {
	local dir=$1 port i
	command -v docker-registry >/dev/null || die "docker-registry missing (apt-get install docker-registry)"
	rm -rf "$dir"
	mkdir -p "$dir"
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		! ss -Htln "sport = :$port" | grep -q . || continue
		printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
			"$dir/data" "$port" >"$dir/config.yml"
		docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
		regpid=$!
		for i in $(seq 100); do
			if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
				registry=127.0.0.1:$port
				log "registry on $registry (pid $regpid)"
				return 0
			fi
			kill -0 "$regpid" 2>/dev/null || break
			sleep 0.1
		done
		registry_stop
	done
	die "the registry did not start ($dir/registry.log)"
}

registry_stop() {
	if [ -n "$regpid" ]; then
		kill "$regpid" 2>/dev/null || true
		wait "$regpid" 2>/dev/null || true
	fi
	regpid=
}

# push_big_images SIZE LAYERS NAME...: push one image per NAME to the
# registry (src/internal/cmd/bigimage: SIZE of made-up files in LAYERS
# layers for ARCH's platform; all share their base layer).
push_big_images() {
	local size=$1 nlayers=$2 n=0 img
	shift 2
	(cd "$TOP" && "$GO" build -o "$out/bigimage" ./src/internal/cmd/bigimage)
	for img in "$@"; do
		n=$((n + 1))
		"$out/bigimage" -push "$registry/$img:latest" -size "$size" -layers "$nlayers" -seed "$n" -platform "$platform" >&2
	done
}

# push_delta_image BASE TARGET DELTA: push TARGET, the next version of the
# big image BASE (bigimage -edit, seed 1, as push_big_images pushed BASE
# first), then the engine's delta from BASE to TARGET as DELTA, made by
# this host's engine ($TOP/bin/balena-engine) in a daemon of its own,
# stopped (daemon, then its monitor) before this returns.
push_delta_image() {
	local base=$1 target=$2 delta=$3 d=$out/delta-engine host_engine=$TOP/bin/balena-engine i
	[ -x "$host_engine" ] || die "$host_engine missing: run make bin/balena-engine"
	"$out/bigimage" -push "$registry/$target:latest" -size "$size" -layers "$nlayers" -seed 1 -edit -platform "$platform" >&2
	rm -rf "$d"
	mkdir -p "$d"
	"$host_engine" daemon --data-root "$d/root" --exec-root "$d/run" -H "unix://$d/sock" --pidfile "$d/pid" 		--bridge=none --iptables=false --ip-forward=false >"$d/daemon.log" 2>&1 &
	delta_daemon=$!
	for i in $(seq 300); do
		"$host_engine" -H "unix://$d/sock" version >/dev/null 2>&1 && break
		kill -0 "$delta_daemon" 2>/dev/null || die "the delta-making daemon exited ($d/daemon.log)"
		[ "$i" -lt 300 ] || die "the delta-making daemon did not answer ($d/daemon.log)"
		sleep 0.1
	done
	local be=("$host_engine" -H "unix://$d/sock")
	"${be[@]}" pull -q --platform "$platform" "$registry/$base:latest" >&2 || die "delta: pull $base"
	"${be[@]}" pull -q --platform "$platform" "$registry/$target:latest" >&2 || die "delta: pull $target"
	"${be[@]}" image delta -t "$registry/$delta:latest" "$registry/$base:latest" "$registry/$target:latest" >"$d/delta.log" ||
		die "delta: image delta ($d/delta.log)"
	log "delta $base -> $target: $(grep -o 'Plain pull[^"]*' "$d/delta.log" | tail -1)"
	"${be[@]}" push "$registry/$delta:latest" >/dev/null || die "delta: push $delta"
	delta_engine_stop
}

# delta_engine_stop: stop push_delta_image's daemon, if running, and the
# monitor it started.
delta_engine_stop() {
	local d=$out/delta-engine mpid i
	[ -n "${delta_daemon:-}" ] || return 0
	kill -TERM "$delta_daemon" 2>/dev/null
	wait "$delta_daemon" 2>/dev/null
	delta_daemon=
	mpid=$(cat "$d/run/monitor/monitor.pid" 2>/dev/null) || return 0
	kill -TERM "$mpid" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$mpid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$mpid" 2>/dev/null
}

# qemu_registry_nic: give the guest a NIC on QEMU's user network that
# reaches nothing (restrict=on) but the registry, forwarded from
# $guest_registry by one socat per connection.
qemu_registry_nic() {
	command -v socat >/dev/null || die "socat missing: run qemu-tests/install"
	qargs+=(-nic "user,model=virtio-net-pci,restrict=on,guestfwd=tcp:$guest_registry-cmd:socat - TCP:$registry")
}
