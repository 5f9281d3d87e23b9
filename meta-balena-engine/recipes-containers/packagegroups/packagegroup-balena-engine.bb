SUMMARY = "balena-engine and what it needs at run time"
DESCRIPTION = "The container engine, its firewall tools, CA certificates for \
registries and the kernel check script: add to IMAGE_INSTALL."
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = " \
    balena-engine \
    balena-engine-check-config \
    iptables \
    iptables-modules \
    ca-certificates \
"
