#!/bin/sh
# Post-image script of the balena_engine_qemu_*_defconfig configurations:
# writes start-qemu.sh beside the images, which boots them in QEMU with a
# serial console on the terminal and user-mode networking.
#
#   post-image.sh IMAGES_DIR BOARD    (BOARD from BR2_ROOTFS_POST_SCRIPT_ARGS)

set -eu

images=$1
board=${2:-}

case $board in
x86_64)
	cmd='qemu-system-x86_64 -M pc -m 1024 -kernel bzImage
	-drive file=rootfs.ext4,if=virtio,format=raw
	-append "rootwait root=/dev/vda console=ttyS0"
	-net nic,model=virtio -net user'
	;;
aarch64_virt)
	cmd='qemu-system-aarch64 -M virt -cpu cortex-a53 -m 1024 -kernel Image
	-drive file=rootfs.ext4,if=none,format=raw,id=hd0
	-device virtio-blk-device,drive=hd0
	-append "rootwait root=/dev/vda console=ttyAMA0"
	-netdev user,id=eth0 -device virtio-net-device,netdev=eth0'
	;;
arm_vexpress)
	cmd='qemu-system-arm -M vexpress-a15 -cpu cortex-a15 -m 1024 -kernel zImage
	-dtb vexpress-v2p-ca15-tc1.dtb
	-drive file=rootfs.ext4,if=sd,format=raw
	-append "console=ttyAMA0,115200 rootwait root=/dev/mmcblk0"
	-net nic,model=lan9118 -net user'
	;;
*)
	echo "post-image.sh: unknown board '$board' (x86_64, aarch64_virt or arm_vexpress)" >&2
	exit 1
	;;
esac

{
	echo '#!/bin/sh'
	echo '# Boots this image in QEMU; Ctrl-A X quits. Extra arguments go to QEMU.'
	# shellcheck disable=SC2016 # written for start-qemu.sh to expand
	echo 'cd "$(dirname "$0")" || exit 1'
	printf 'exec %s -nographic "$@"\n' "$(printf '%s' "$cmd" | tr '\n\t' '  ' | tr -s ' ')"
} >"$images/start-qemu.sh"
chmod 755 "$images/start-qemu.sh"
