################################################################################
#
# balena-engine-lite
#
################################################################################

# The engine's own name is balena-engine (binary, units, group); the
# package is named otherwise because Buildroot already has a
# balena-engine package (balena's moby fork). docs/buildroot.md says more.

ifeq ($(BR2_PACKAGE_BALENA_ENGINE_LITE_SOURCE_GIT),y)
BALENA_ENGINE_LITE_VERSION = $(call qstrip,$(BR2_PACKAGE_BALENA_ENGINE_LITE_GIT_VERSION))
BALENA_ENGINE_LITE_SITE = $(call qstrip,$(BR2_PACKAGE_BALENA_ENGINE_LITE_GIT_URL))
BALENA_ENGINE_LITE_SITE_METHOD = git
# A version chosen in the configuration has no hash to check.
BR_NO_CHECK_HASH_FOR += $(BALENA_ENGINE_LITE_SOURCE)
BALENA_ENGINE_LITE_GIT_COMMIT = $(BALENA_ENGINE_LITE_VERSION)
BALENA_ENGINE_LITE_BUILD_TIME =
else
# The tree this BR2_EXTERNAL is part of, and the version its Makefile
# builds.
BALENA_ENGINE_LITE_SITE = $(realpath $(BR2_EXTERNAL_BALENA_ENGINE_PATH)/..)
BALENA_ENGINE_LITE_SITE_METHOD = local
BALENA_ENGINE_LITE_VERSION = \
	$(shell sed -n 's/^VERSION[[:space:]]*?=[[:space:]]*//p' $(BALENA_ENGINE_LITE_SITE)/Makefile)
# Commit and time as "make" stamps them; evaluated only when used.
BALENA_ENGINE_LITE_GIT_COMMIT = \
	$(shell git -C $(BALENA_ENGINE_LITE_SITE) rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell \
		git -C $(BALENA_ENGINE_LITE_SITE) diff --quiet HEAD 2>/dev/null || echo -dirty)
BALENA_ENGINE_LITE_BUILD_TIME = \
	$(shell git -C $(BALENA_ENGINE_LITE_SITE) log -1 --format=%cI 2>/dev/null)
# What the tree's own builds leave behind is not source.
BALENA_ENGINE_LITE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/bin/ --exclude=/.cache/ --exclude=/output/
endif

BALENA_ENGINE_LITE_LICENSE = Apache-2.0
BALENA_ENGINE_LITE_LICENSE_FILES = LICENSE
BALENA_ENGINE_LITE_DEPENDENCIES = host-pkgconf libseccomp

BALENA_ENGINE_LITE_GOMOD = github.com/balena-os/balena-engine
BALENA_ENGINE_LITE_BUILD_TARGETS = src/cmd/balena-engine

# As the tree's Makefile: pure-Go resolver and user lookups (no NSS, so
# static glibc is safe), libseccomp for the containers' filters, no
# CRIU.
BALENA_ENGINE_LITE_TAGS = netgo osusergo seccomp runc_nocriu nethttpomithttp2

BALENA_ENGINE_LITE_LDFLAGS = \
	$(if $(BR2_ENABLE_DEBUG),,-s -w) \
	-X $(BALENA_ENGINE_LITE_GOMOD)/src/version.Version=$(BALENA_ENGINE_LITE_VERSION) \
	-X $(BALENA_ENGINE_LITE_GOMOD)/src/version.GitCommit=$(BALENA_ENGINE_LITE_GIT_COMMIT) \
	-X $(BALENA_ENGINE_LITE_GOMOD)/src/version.BuildTime=$(BALENA_ENGINE_LITE_BUILD_TIME)

# As the tree's Makefile: no inlining in the control plane.
BALENA_ENGINE_LITE_BUILD_OPTS = \
	$(foreach p,cli client api daemon container network image registry volume runtime,\
		-gcflags='$(BALENA_ENGINE_LITE_GOMOD)/src/$(p)/...=-l')

ifeq ($(BR2_PACKAGE_BALENA_ENGINE_LITE_STATIC),y)
BALENA_ENGINE_LITE_EXTLDFLAGS += -static
endif

ifeq ($(BR2_PACKAGE_BALENA_ENGINE_LITE_SOURCE_LOCAL),y)
BALENA_ENGINE_LITE_GOMODCACHE = \
	$(or $(call qstrip,$(BR2_PACKAGE_BALENA_ENGINE_LITE_GOMODCACHE)),$(HOST_GO_GOPATH)/pkg/mod)
# A local source skips the download step, where Buildroot vendors Go
# modules: vendor them here, from the module cache, unless the tree
# has its own vendor/.
define BALENA_ENGINE_LITE_VENDOR_MODULES
	if [ ! -f $(@D)/vendor/modules.txt ]; then \
		cd $(@D) && $(HOST_GO_COMMON_ENV) \
			GOFLAGS=-mod=mod \
			GOMODCACHE="$(BALENA_ENGINE_LITE_GOMODCACHE)" \
			GOPROXY="$(call qstrip,$(BR2_PACKAGE_BALENA_ENGINE_LITE_GOPROXY))" \
			$(GO_BIN) mod vendor -modcacherw || { \
			echo "balena-engine-lite: the Go modules are not in $(BALENA_ENGINE_LITE_GOMODCACHE):" \
				"run 'go mod download' in $(BALENA_ENGINE_LITE_SITE)" \
				"and set BR2_PACKAGE_BALENA_ENGINE_LITE_GOMODCACHE to 'go env GOMODCACHE'," \
				"or set BR2_PACKAGE_BALENA_ENGINE_LITE_GOPROXY" >&2; \
			exit 1; }; \
	fi
endef
BALENA_ENGINE_LITE_PRE_CONFIGURE_HOOKS += BALENA_ENGINE_LITE_VENDOR_MODULES
endif

define BALENA_ENGINE_LITE_INSTALL_EXTRA
	ln -sf balena-engine $(TARGET_DIR)/usr/bin/balena
	ln -sf balena-engine $(TARGET_DIR)/usr/bin/balenad
	ln -sf balena-engine $(TARGET_DIR)/usr/bin/balena-engine-daemon
	$(if $(BR2_PACKAGE_BALENA_ENGINE_LITE_DOCKER_SYMLINK),\
		ln -sf balena-engine $(TARGET_DIR)/usr/bin/docker)
	$(INSTALL) -D -m 0755 $(@D)/contrib/check-config \
		$(TARGET_DIR)/usr/libexec/balena-engine/check-config
	$(INSTALL) -D -m 0644 $(@D)/contrib/init/sysvinit/balena-engine.default \
		$(TARGET_DIR)/etc/default/balena-engine
endef
BALENA_ENGINE_LITE_POST_INSTALL_TARGET_HOOKS += BALENA_ENGINE_LITE_INSTALL_EXTRA

BALENA_ENGINE_LITE_PRELOAD_IMAGES = \
	$(call qstrip,$(BR2_PACKAGE_BALENA_ENGINE_LITE_PRELOAD_IMAGES))

ifneq ($(BALENA_ENGINE_LITE_PRELOAD_IMAGES),)
define BALENA_ENGINE_LITE_INSTALL_PRELOAD
	$(foreach f,$(BALENA_ENGINE_LITE_PRELOAD_IMAGES),\
		$(INSTALL) -D -m 0644 $(f) \
			$(TARGET_DIR)/usr/share/balena-engine/preload/$(notdir $(f))$(sep))
	$(INSTALL) -D -m 0755 $(BALENA_ENGINE_LITE_PKGDIR)/balena-engine-preload \
		$(TARGET_DIR)/usr/libexec/balena-engine/preload
endef
BALENA_ENGINE_LITE_POST_INSTALL_TARGET_HOOKS += BALENA_ENGINE_LITE_INSTALL_PRELOAD
endif

# balenaOS's unit names, if chosen: the files and every reference
# between them.
BALENA_ENGINE_LITE_UNIT = \
	$(if $(BR2_PACKAGE_BALENA_ENGINE_LITE_BALENA_UNITS),balena,balena-engine)
BALENA_ENGINE_LITE_UNIT_SED = \
	$(if $(BR2_PACKAGE_BALENA_ENGINE_LITE_BALENA_UNITS),\
		sed -i 's/balena-engine\.\(service\|socket\)/balena.\1/g',true)

define BALENA_ENGINE_LITE_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/contrib/systemd/balena-engine.service \
		$(TARGET_DIR)/usr/lib/systemd/system/$(BALENA_ENGINE_LITE_UNIT).service
	$(INSTALL) -D -m 0644 $(@D)/contrib/systemd/balena-engine.socket \
		$(TARGET_DIR)/usr/lib/systemd/system/$(BALENA_ENGINE_LITE_UNIT).socket
	$(BALENA_ENGINE_LITE_UNIT_SED) \
		$(TARGET_DIR)/usr/lib/systemd/system/$(BALENA_ENGINE_LITE_UNIT).service \
		$(TARGET_DIR)/usr/lib/systemd/system/$(BALENA_ENGINE_LITE_UNIT).socket
	$(if $(BALENA_ENGINE_LITE_PRELOAD_IMAGES),\
		$(INSTALL) -D -m 0644 $(BALENA_ENGINE_LITE_PKGDIR)/balena-engine-preload.service \
			$(TARGET_DIR)/usr/lib/systemd/system/balena-engine-preload.service && \
		$(BALENA_ENGINE_LITE_UNIT_SED) \
			$(TARGET_DIR)/usr/lib/systemd/system/balena-engine-preload.service)
endef

define BALENA_ENGINE_LITE_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/contrib/init/sysvinit/balena-engine \
		$(TARGET_DIR)/etc/init.d/S60balena-engine
	$(if $(BALENA_ENGINE_LITE_PRELOAD_IMAGES),\
		$(INSTALL) -D -m 0755 $(BALENA_ENGINE_LITE_PKGDIR)/S61balena-engine-preload \
			$(TARGET_DIR)/etc/init.d/S61balena-engine-preload)
endef

# Who may use the API socket (root-equivalent, as Docker's docker group).
define BALENA_ENGINE_LITE_USERS
	- - balena-engine -1 * - - - balena-engine API socket access
endef

# What contrib/check-config requires and needs for bridge networking,
# with what those options depend on; utils/lint checks the two agree.
define BALENA_ENGINE_LITE_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_NAMESPACES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_UTS_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IPC_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_PID_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NET_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUPS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_CPUACCT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_DEVICE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_FREEZER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_SCHED)
	$(call KCONFIG_ENABLE_OPT,CONFIG_FAIR_GROUP_SCHED)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CFS_BANDWIDTH)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CPUSETS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_MEMCG)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_PIDS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_BPF_SYSCALL)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_BPF)
	$(call KCONFIG_ENABLE_OPT,CONFIG_KEYS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_POSIX_MQUEUE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_OVERLAY_FS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_SECCOMP)
	$(call KCONFIG_ENABLE_OPT,CONFIG_SECCOMP_FILTER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_UNIX)
	$(call KCONFIG_ENABLE_OPT,CONFIG_INET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_VETH)
	$(call KCONFIG_ENABLE_OPT,CONFIG_BRIDGE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_ADVANCED)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_XTABLES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_CONNTRACK)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_NAT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IP_NF_IPTABLES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IP_NF_FILTER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IP_NF_NAT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IP_NF_TARGET_MASQUERADE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_XT_TARGET_MASQUERADE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_XT_NAT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_XT_MATCH_ADDRTYPE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_XT_MATCH_CONNTRACK)
endef

$(eval $(golang-package))
