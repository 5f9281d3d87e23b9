# The engine's kernel configuration for linux-yocto, only in distributions
# that ask for it: DISTRO_FEATURES:append = " balena-engine".
require ${@bb.utils.contains('DISTRO_FEATURES', 'balena-engine', 'recipes-kernel/linux/balena-engine-kernel.inc', '', d)}
