SUMMARY = "balena-engine, a Docker-compatible container engine for embedded and IoT devices"
DESCRIPTION = "One static multi-call binary: the daemon (balena-engine daemon, \
or balenad), the Docker-compatible command line client (balena-engine, balena) \
and the init run in containers started with --init (docker-init)."
HOMEPAGE = "https://github.com/balena-os/balena-engine"
SECTION = "containers"

# The engine's own license; balena-engine-licenses.inc adds those of the Go
# modules linked into the binary.
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://src/${GO_IMPORT}/LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

GO_IMPORT = "github.com/balena-os/balena-engine"
GO_INSTALL = "${GO_IMPORT}/src/cmd/balena-engine"

# --- Source ----------------------------------------------------------------
# By default the source is the repository this layer is part of
# (BALENA_ENGINE_TREE, the layer's parent directory): the files below are
# copied from it by the file:// fetcher, so the build needs no network for
# the engine itself. Set BALENA_ENGINE_SRCREV (and BALENA_ENGINE_GIT_URI if
# the repository is elsewhere) to build a commit fetched with git instead;
# the layer then must be the one of that commit (go-mods.inc matches its
# go.sum).
BALENA_ENGINE_TREE ?= "${BALENA_ENGINE_LAYERDIR}/.."
BALENA_ENGINE_TREE_FILES = "go.mod go.sum LICENSE src contrib"
BALENA_ENGINE_GIT_URI ?= "git://github.com/balena-os/balena-engine.git;protocol=https;branch=master"
BALENA_ENGINE_SRCREV ?= ""

FILESEXTRAPATHS:prepend = "${BALENA_ENGINE_TREE}:"
SRC_URI = "${@balena_engine_src_uri(d)}"
SRCREV = "${@d.getVar('BALENA_ENGINE_SRCREV') or 'INVALID'}"

# Every Go module of go.sum, fetched by bitbake's gomod:// fetcher into
# DL_DIR (and so from PREMIRRORS/MIRRORS like any download), with its
# sha256; scripts/update-go-mods writes both files from go.mod and go.sum.
require balena-engine-go-mods.inc
require balena-engine-licenses.inc

def balena_engine_src_uri(d):
    if d.getVar('BALENA_ENGINE_SRCREV'):
        return d.expand('${BALENA_ENGINE_GIT_URI};destsuffix=${GO_SRCURI_DESTSUFFIX}')
    return ' '.join(d.expand('file://%s;subdir=${GO_SRCURI_DESTSUFFIX}' % f)
                    for f in d.getVar('BALENA_ENGINE_TREE_FILES').split())

# The version the binary reports: the Makefile's VERSION in the tree (one
# place to change it), else set it.
BALENA_ENGINE_VERSION ?= "${@balena_engine_tree_version(d)}"
# The commit the binary reports ("version" prints it).
BALENA_ENGINE_GIT_COMMIT ?= "${@balena_engine_git_commit(d)}"
PV = "${@d.getVar('BALENA_ENGINE_VERSION').replace('-', '~')}+git"

def balena_engine_tree_version(d):
    import os, re
    mk = os.path.join(d.getVar('BALENA_ENGINE_TREE'), 'Makefile')
    try:
        with open(mk) as f:
            for line in f:
                m = re.match(r'VERSION\s*\?=\s*(\S+)', line)
                if m:
                    return m.group(1)
    except OSError:
        pass
    if d.getVar('BALENA_ENGINE_SRCREV'):
        bb.fatal('balena-engine: set BALENA_ENGINE_VERSION for the commit BALENA_ENGINE_SRCREV names')
    return '0.0.0'

def balena_engine_git_commit(d):
    rev = d.getVar('BALENA_ENGINE_SRCREV')
    if rev:
        return rev[:12]
    import subprocess
    try:
        return subprocess.check_output(['git', '-C', d.getVar('BALENA_ENGINE_TREE'), 'rev-parse', '--short=12', 'HEAD'],
                                       stderr=subprocess.DEVNULL, timeout=10).decode().strip()
    except Exception:
        return 'unknown'

inherit go-mod pkgconfig systemd update-rc.d useradd

# --- Options ---------------------------------------------------------------
# seccomp:  system call filters (libcontainer with libseccomp), as shipped.
#           Needs the distribution feature "seccomp" (libseccomp does).
# static:   one static binary, as `make cross` builds it (libc and
#           libseccomp linked in). Without it the binary links them
#           dynamically and is built as a PIE.
# symlinks: the balena (client) and balenad (daemon) names in ${bindir}.
# docker:   a docker name for the client in ${bindir} (conflicts with the
#           Docker packages).
PACKAGECONFIG ??= "${@bb.utils.filter('DISTRO_FEATURES', 'seccomp', d)} static symlinks"
PACKAGECONFIG[seccomp] = ",,libseccomp"
PACKAGECONFIG[static] = ""
PACKAGECONFIG[symlinks] = ""
PACKAGECONFIG[docker] = ""

# The names the units are installed under, BALENA_ENGINE_UNIT (conf/
# layer.conf): balenaOS's "balena" gives balena.service and balena.socket
# (its device agent reads the journal by that unit name).

# --- Build, as the Makefile's BUILD does -----------------------------------
BALENA_ENGINE_TAGS = "netgo osusergo runc_nocriu nethttpomithttp2 ${@bb.utils.filter('PACKAGECONFIG', 'seccomp', d)}"
# No inlining in the control plane (the Makefile's NOINLINE).
BALENA_ENGINE_NOINLINE ?= "cli client api daemon container network image registry volume runtime"
# Stripped (-s -w): the binary stays delta-friendly. Set to "" for a
# ${PN}-dbg package with the symbols.
BALENA_ENGINE_STRIP ?= "-s -w"
BALENA_ENGINE_BUILDMODE = "${@'' if bb.utils.contains('PACKAGECONFIG', 'static', True, False, d) else '-buildmode=pie'}"
BALENA_ENGINE_EXTLDFLAGS = "${HOST_CC_ARCH}${TOOLCHAIN_OPTIONS} ${LDFLAGS}${@bb.utils.contains('PACKAGECONFIG', 'static', ' -static', '', d)}"
BALENA_ENGINE_SRCDIR = "${S}/src/${GO_IMPORT}"
# go.bbclass's go install -linkshared is not used: do_compile runs go build.
GO_LINKSHARED = ""

# Modules come from SRC_URI only: no proxy, no toolchain download.
export GOPROXY = "off"
export GOTOOLCHAIN = "local"
export GOFLAGS = "-mod=readonly"

do_compile() {
	export TMPDIR="${GOTMPDIR}"
	# The machine's tune as goarch.bbclass maps it (the cross go wrapper
	# defaults to the same; exported here so the run script shows them).
	export GOARM="${TARGET_GOARM}" GO386="${TARGET_GO386}"
	# The build time the binary reports: the source's (reproducible).
	build_time=$(date -u -d "@${SOURCE_DATE_EPOCH}" +%Y-%m-%dT%H:%M:%SZ)
	gcflags=
	for p in ${BALENA_ENGINE_NOINLINE}; do
		gcflags="$gcflags -gcflags=${GO_IMPORT}/src/$p/...=-l"
	done
	${GO} build ${GO_PARALLEL_BUILD} -v -trimpath -modcacherw -buildvcs=false ${BALENA_ENGINE_BUILDMODE} \
		-tags '${BALENA_ENGINE_TAGS}' $gcflags \
		-ldflags "${BALENA_ENGINE_STRIP} \
			-X ${GO_IMPORT}/src/version.Version=${BALENA_ENGINE_VERSION} \
			-X ${GO_IMPORT}/src/version.GitCommit=${BALENA_ENGINE_GIT_COMMIT} \
			-X ${GO_IMPORT}/src/version.BuildTime=$build_time \
			-extldflags '${BALENA_ENGINE_EXTLDFLAGS}'" \
		-o ${B}/balena-engine ./src/cmd/balena-engine
}

BALENA_ENGINE_LINKS = "${@bb.utils.contains('PACKAGECONFIG', 'symlinks', 'balena balenad', '', d)} \
    ${@bb.utils.contains('PACKAGECONFIG', 'docker', 'docker', '', d)}"

do_install() {
	install -d ${D}${bindir}
	install -m 0755 ${B}/balena-engine ${D}${bindir}/balena-engine
	for name in ${BALENA_ENGINE_LINKS}; do
		ln -sf balena-engine ${D}${bindir}/$name
	done
	install -m 0755 ${BALENA_ENGINE_SRCDIR}/contrib/check-config ${D}${bindir}/balena-engine-check-config
	# Settings of both the systemd unit (BALENA_ENGINE_OPTS) and the SysV script.
	install -D -m 0644 ${BALENA_ENGINE_SRCDIR}/contrib/init/sysvinit/balena-engine.default ${D}${sysconfdir}/default/balena-engine

	if ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'true', 'false', d)}; then
		install -d ${D}${systemd_system_unitdir}
		for kind in socket service; do
			sed -e 's/balena-engine\.\(service\|socket\)/${BALENA_ENGINE_UNIT}.\1/g' \
			    -e 's,/usr/bin/balena-engine,${bindir}/balena-engine,g' \
				${BALENA_ENGINE_SRCDIR}/contrib/systemd/balena-engine.$kind \
				>${D}${systemd_system_unitdir}/${BALENA_ENGINE_UNIT}.$kind
			chmod 0644 ${D}${systemd_system_unitdir}/${BALENA_ENGINE_UNIT}.$kind
		done
	fi
	if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
		install -d ${D}${INIT_D_DIR}
		sed -e 's,/usr/bin/balena-engine,${bindir}/balena-engine,g' \
			${BALENA_ENGINE_SRCDIR}/contrib/init/sysvinit/balena-engine >${D}${INIT_D_DIR}/balena-engine
		chmod 0755 ${D}${INIT_D_DIR}/balena-engine
	fi
}

# The binary is stripped by the linker (BALENA_ENGINE_STRIP).
INSANE_SKIP:${PN} += "${@'already-stripped' if '-s' in d.getVar('BALENA_ENGINE_STRIP').split() else ''}"

# --- Packaging -------------------------------------------------------------
PACKAGES =+ "${PN}-check-config"
FILES:${PN}-check-config = "${bindir}/balena-engine-check-config"
SUMMARY:${PN}-check-config = "Reports what the running kernel lacks for balena-engine"
RDEPENDS:${PN}-check-config = "gzip"

CONFFILES:${PN} = "${sysconfdir}/default/balena-engine"

SYSTEMD_SERVICE:${PN} = "${BALENA_ENGINE_UNIT}.socket ${BALENA_ENGINE_UNIT}.service"
SYSTEMD_AUTO_ENABLE:${PN} ?= "enable"

INITSCRIPT_PACKAGES = "${PN}"
INITSCRIPT_NAME:${PN} = "balena-engine"
INITSCRIPT_PARAMS:${PN} = "defaults 90 10"

# The API socket's group: its members may use the engine (root-equivalent).
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system balena-engine"

RCONFLICTS:${PN} = "${@bb.utils.contains('PACKAGECONFIG', 'docker', 'docker docker-moby docker-ce', '', d)}"

# The firewall of the default bridge network and published ports: the
# engine runs iptables-restore and iptables-save (and ip6tables-* with
# --ipv6), which load the xtables matches they use.
RDEPENDS:${PN} = "iptables iptables-modules"
# What the kernel must have, when built as modules (recipes-kernel/linux/
# files/balena-engine.cfg): image layers, the bridge network, NAT.
RRECOMMENDS:${PN} = " \
    ca-certificates \
    kernel-module-overlay \
    kernel-module-bridge \
    kernel-module-veth \
    kernel-module-x-tables \
    kernel-module-ip-tables \
    kernel-module-iptable-filter \
    kernel-module-iptable-nat \
    kernel-module-nf-conntrack \
    kernel-module-nf-defrag-ipv4 \
    kernel-module-nf-nat \
    kernel-module-xt-addrtype \
    kernel-module-xt-conntrack \
    kernel-module-xt-masquerade \
    kernel-module-xt-nat \
"
