# balena-engine-preload: ship container images in an OS image, loaded into
# balena-engine at first boot. In an image recipe (or local.conf with
# IMAGE_CLASSES += "balena-engine-preload"):
#
#   inherit balena-engine-preload
#   BALENA_ENGINE_PRELOAD = "myapp.tar /srv/images/redis.tar.gz"
#
# BALENA_ENGINE_PRELOAD lists archives written by `balena-engine save` or
# `docker save` (.tar, or compressed .tar.gz, .tar.xz, .tar.zst): absolute
# paths, or names looked up in BALENA_ENGINE_PRELOAD_DIR. They are copied
# into ${BALENA_ENGINE_PRELOAD_DEST} of the root filesystem with a manifest
# of their sha256 sums, and the balena-engine-preload package loads each one
# at boot, once (a oneshot systemd unit, or an init script). Archives of the
# device's own architecture are the builder's business: save them from an
# engine of that architecture, or pull with --platform.

BALENA_ENGINE_PRELOAD ?= ""
BALENA_ENGINE_PRELOAD_DIR ?= "${TOPDIR}/balena-engine-preload"
BALENA_ENGINE_PRELOAD_DEST = "${datadir}/balena-engine/preload"

IMAGE_INSTALL:append = "${@' balena-engine-preload' if d.getVar('BALENA_ENGINE_PRELOAD').split() else ''}"
ROOTFS_POSTPROCESS_COMMAND += "balena_engine_preload_copy"

def balena_engine_preload_paths(d):
    import os
    paths = []
    for a in (d.getVar('BALENA_ENGINE_PRELOAD') or '').split():
        if not os.path.isabs(a):
            a = os.path.join(d.getVar('BALENA_ENGINE_PRELOAD_DIR'), a)
        paths.append(a)
    return paths

# A changed archive makes a new root filesystem.
do_rootfs[file-checksums] += "${@' '.join(p + ':True' for p in balena_engine_preload_paths(d))}"

python balena_engine_preload_copy() {
    import hashlib, os, shutil
    paths = balena_engine_preload_paths(d)
    if not paths:
        return
    dest = d.getVar('IMAGE_ROOTFS') + d.getVar('BALENA_ENGINE_PRELOAD_DEST')
    bb.utils.mkdirhier(dest)
    lines = []
    for p in paths:
        if not os.path.isfile(p):
            bb.fatal('balena-engine-preload: %s (in BALENA_ENGINE_PRELOAD) does not exist' % p)
        name = os.path.basename(p)
        if not name.endswith(('.tar', '.tar.gz', '.tgz', '.tar.xz', '.tar.zst')):
            bb.fatal('balena-engine-preload: %s is not a .tar, .tar.gz, .tar.xz or .tar.zst archive' % p)
        if any(l.split()[1] == name for l in lines):
            bb.fatal('balena-engine-preload: two archives are named %s' % name)
        shutil.copyfile(p, os.path.join(dest, name))
        os.chmod(os.path.join(dest, name), 0o644)
        lines.append('%s %s' % (bb.utils.sha256_file(p), name))
    with open(os.path.join(dest, 'manifest'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
}
