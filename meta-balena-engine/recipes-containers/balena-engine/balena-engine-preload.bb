SUMMARY = "Loads the container images shipped in the OS image into balena-engine"
DESCRIPTION = "A boot-time job that loads the image archives which \
balena-engine-preload.bbclass puts into the root filesystem, each once."
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = " \
    file://balena-engine-preload \
    file://balena-engine-preload.service \
    file://balena-engine-preload.init \
"

S = "${UNPACKDIR}"

inherit allarch systemd update-rc.d

do_install() {
	install -D -m 0755 ${S}/balena-engine-preload ${D}${bindir}/balena-engine-preload
	if ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'true', 'false', d)}; then
		install -d ${D}${systemd_system_unitdir}
		sed -e 's/balena-engine\.\(service\|socket\)/${BALENA_ENGINE_UNIT}.\1/g' \
		    -e 's,/usr/bin/,${bindir}/,g' -e 's,/usr/share/,${datadir}/,g' \
			${S}/balena-engine-preload.service >${D}${systemd_system_unitdir}/balena-engine-preload.service
		chmod 0644 ${D}${systemd_system_unitdir}/balena-engine-preload.service
	fi
	if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
		install -D -m 0755 ${S}/balena-engine-preload.init ${D}${INIT_D_DIR}/balena-engine-preload
	fi
}

SYSTEMD_SERVICE:${PN} = "balena-engine-preload.service"
INITSCRIPT_NAME = "balena-engine-preload"
INITSCRIPT_PARAMS = "defaults 95"

RDEPENDS:${PN} = "balena-engine"
# gzip, xz and zstd for compressed archives (busybox has gzip and xz).
RRECOMMENDS:${PN} = "gzip xz zstd"
