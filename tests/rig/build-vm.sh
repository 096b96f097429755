#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Prepares the rig VM: installs host packages, fetches Debian's kernel (never installed) and builds vmlinux + initramfs in $NVT_RIG_CACHE.
#
# Idempotent: a second run only checks packages and the build stamp (about a second).
# Nothing is installed into the host's /boot or /lib/modules: the kernel package
# is unpacked with `dpkg -x` into the cache. Host userspace (nvme-cli, fio,
# rdma-core, the project's build dir) is NOT copied into the VM: run-vm.sh shares
# the host root read-only over virtio-9p and the guest chroots into it.
#
# Environment:
#   NVT_RIG_CACHE        cache dir (default /var/tmp/nvt-rig)
#   NVT_RIG_KERNEL       Debian kernel series to boot, e.g. 6.12 (resolved through
#                        linux-image-6.12-amd64; its VM is built in $NVT_RIG_CACHE/boot-6.12).
#                        Default: empty, the release's kernel (linux-image-amd64, 6.1
#                        on Debian 12), built in $NVT_RIG_CACHE itself
#   NVT_RIG_KERNEL_PKG   kernel package to use, e.g. linux-image-6.1.0-37-amd64
#                        (default: what NVT_RIG_KERNEL's meta package depends on)
#   NVT_RIG_NO_APT=1     do not run apt-get install (packages must be present)
set -euo pipefail

RIG_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=rig-boot.sh
. "$RIG_DIR/rig-boot.sh"	# CACHE, and BOOT: where this kernel's vmlinux and initramfs go
export DEBIAN_FRONTEND=noninteractive
log() { echo "[build-vm] $*"; }
die() { echo "[build-vm] ERROR: $*" >&2; exit 1; }

mkdir -p "$CACHE" "$BOOT"
# one build at a time (parallel ctest runs, two shells)
exec 9>"$CACHE/.build.lock"
flock 9

# ---- 1. host packages -------------------------------------------------------
# The guest runs the host's own binaries, so everything a scenario calls must be
# installed here.
HOST_PACKAGES="qemu-system-x86 busybox-static kmod cpio xz-utils zstd
	nvme-cli fio rdma-core ibverbs-utils ibverbs-providers rdmacm-utils
	iproute2 e2fsprogs util-linux procps coreutils gawk
	sg3-utils lsscsi ddpt"

apt_updated=0
apt_update_once() {
	[ "$apt_updated" = 1 ] && return 0
	log "apt-get update"
	apt-get update -qq < /dev/null
	apt_updated=1
}

missing_packages() {
	local p
	for p in $HOST_PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			echo "$p"
	done
}

missing=$(missing_packages | tr '\n' ' ')
if [ -n "${missing// /}" ]; then
	[ "${NVT_RIG_NO_APT:-0}" = 1 ] && die "missing packages: $missing (NVT_RIG_NO_APT=1)"
	[ "$(id -u)" = 0 ] || die "missing packages: $missing; run as root or apt-get install them"
	apt_update_once
	log "apt-get install $missing"
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	apt-get install -y -qq --no-install-recommends $missing < /dev/null > "$CACHE/apt-install.log" 2>&1 ||
		{ tail -20 "$CACHE/apt-install.log" >&2; die "apt-get install failed"; }
fi

# ---- 2. kernel package: download + unpack only --------------------------------
KERNEL_META=linux-image-${NVT_RIG_KERNEL:+$NVT_RIG_KERNEL-}amd64
kernel_package_from_apt() {
	apt-cache depends "$KERNEL_META" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
KERNEL_PKG=${NVT_RIG_KERNEL_PKG:-}
if [ -z "$KERNEL_PKG" ]; then
	KERNEL_PKG=$(kernel_package_from_apt)
	if [ -z "$KERNEL_PKG" ]; then
		apt_update_once
		KERNEL_PKG=$(kernel_package_from_apt)
	fi
fi
[ -n "$KERNEL_PKG" ] || die "cannot resolve $KERNEL_META to a kernel package"
KVER=${KERNEL_PKG#linux-image-}           # e.g. 6.1.0-37-amd64
KROOT="$CACHE/kernel-$KVER"
MODDIR="$KROOT/lib/modules/$KVER"

# as root into a dir _apt cannot read: skip apt's sandbox user (avoids a warning)
APT_DOWNLOAD="apt-get download -q -o APT::Sandbox::User=root"
if [ ! -f "$KROOT/.unpacked" ]; then
	mkdir -p "$CACHE/debs"
	deb=$(ls "$CACHE/debs/${KERNEL_PKG}_"*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		log "apt-get download $KERNEL_PKG"
		( cd "$CACHE/debs" && { $APT_DOWNLOAD "$KERNEL_PKG" < /dev/null ||
			{ apt_update_once; $APT_DOWNLOAD "$KERNEL_PKG" < /dev/null; }; } ) ||
			die "cannot download $KERNEL_PKG"
		deb=$(ls "$CACHE/debs/${KERNEL_PKG}_"*.deb | head -1)
	fi
	log "unpacking $(basename "$deb")"
	rm -rf "$KROOT"
	mkdir -p "$KROOT"
	dpkg -x "$deb" "$KROOT"
	depmod -b "$KROOT" "$KVER"
	touch "$KROOT/.unpacked"
fi

# ---- 3. build stamp: skip the rest when nothing changed ------------------------
# Inputs: kernel version, this script, the guest init, the busybox binary.
STAMP_NOW=$( { echo "$KVER"; cat "$RIG_DIR/build-vm.sh" "$RIG_DIR/guest-init.sh";
	sha256sum /bin/busybox; } | sha256sum | cut -d' ' -f1)
if [ -f "$BOOT/build.stamp" ] && [ "$(cat "$BOOT/build.stamp")" = "$STAMP_NOW" ] &&
   [ -s "$BOOT/initramfs.cpio" ] && [ -s "$BOOT/vmlinux" ]; then
	log "up to date: kernel $KVER in $BOOT"
	exit 0
fi

# ---- 4. uncompressed vmlinux: TCG boots it faster than a bzImage --------------
VMLINUZ="$KROOT/boot/vmlinuz-$KVER"
VMLINUX="$CACHE/vmlinux-$KVER"
if [ ! -s "$VMLINUX" ]; then
	# The bzImage payload is xz (6.1) or zstd (6.12); find the magic and decompress
	# what follows (what scripts/extract-vmlinux does). Fall back to the bzImage itself.
	offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$VMLINUZ" | head -1 | cut -d: -f1 || true)
	if [ -n "$offset" ]; then
		tail -c +$((offset + 1)) "$VMLINUZ" | xz -dc 2>/dev/null > "$VMLINUX.tmp" || true
	fi
	offset=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$VMLINUZ" | head -1 | cut -d: -f1 || true)
	if [ ! -s "$VMLINUX.tmp" ] && [ -n "$offset" ]; then
		# zstd stops at the frame's end; the bytes after it are not its concern
		tail -c +$((offset + 1)) "$VMLINUZ" | zstd -dcq 2>/dev/null > "$VMLINUX.tmp" || true
	fi
	if [ -s "$VMLINUX.tmp" ] && [ "$(head -c 4 "$VMLINUX.tmp" | tail -c 3)" = ELF ]; then
		mv "$VMLINUX.tmp" "$VMLINUX"
	else
		rm -f "$VMLINUX.tmp"
		log "no ELF payload found in $VMLINUZ, booting the bzImage"
		cp "$VMLINUZ" "$VMLINUX"
	fi
fi

# ---- 5. initramfs --------------------------------------------------------------
# Every module a scenario may need (plus dependencies). /lib/modules of the
# initramfs is bind-mounted into the guest's root, so these are all that
# `modprobe` can load there. Missing ones are only a warning (built-in or renamed).
INITRAMFS_MODULES="
	virtio_pci virtio_blk virtio_scsi sd_mod sg t10-pi crct10dif_generic
	9pnet_virtio 9p overlay configfs
	dummy veth loop null_blk brd ext4
	crc32_generic crc32-pclmul crc32c_generic crc32c-intel
	rdma_rxe ib_uverbs rdma_ucm ib_umad
	nvme nvme-core nvme-fabrics nvme-rdma nvme-tcp
	nvmet nvmet-rdma nvmet-tcp crc64_rocksoft_generic"
# Loaded by /init before it mounts the host root; the rest is loaded on demand
# (by scenarios via modprobe, or by the kernel via /sbin/modprobe in the initramfs).
# virtio_scsi and sd_mod at boot: vhost guests' disks are there when a scenario starts.
BOOT_MODULES="virtio_pci 9pnet_virtio 9p overlay configfs virtio_scsi sd_mod sg"

STAGE="$BOOT/initramfs-stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,etc,proc,sys,dev,newroot,lower,rw,tmp,"lib/modules/$KVER"}
cp /bin/busybox "$STAGE/bin/busybox"
ln -s busybox "$STAGE/bin/sh"
ln -s ../bin/busybox "$STAGE/sbin/modprobe"   # kernel's request_module() helper

for m in $INITRAMFS_MODULES; do
	modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null |
		awk '$1 == "insmod" { print $2 }' ||
		echo "[build-vm] note: module $m is built in or absent in $KVER" >&2
done | sort -u | while read -r ko; do
	rel=${ko#"$MODDIR"/}
	mkdir -p "$STAGE/lib/modules/$KVER/$(dirname "$rel")"
	# 6.12 ships modules xz-compressed: busybox's insmod loads only plain ones
	case "$rel" in
	*.ko.xz) xz -dc "$ko" > "$STAGE/lib/modules/$KVER/${rel%.xz}" ;;
	*.ko.zst) zstd -dcq "$ko" > "$STAGE/lib/modules/$KVER/${rel%.zst}" ;;
	*) cp "$ko" "$STAGE/lib/modules/$KVER/$rel" ;;
	esac
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -f "$MODDIR/$f" ] && cp "$MODDIR/$f" "$STAGE/lib/modules/$KVER/"
done
depmod -b "$STAGE" "$KVER"
echo "$BOOT_MODULES" | tr -s ' \t\n' '\n' | sed '/^$/d' > "$STAGE/etc/boot-modules"
install -m 0755 "$RIG_DIR/guest-init.sh" "$STAGE/init"

( cd "$STAGE" && find . | LC_ALL=C sort | cpio -o -H newc --quiet ) > "$BOOT/initramfs.cpio.tmp"
mv "$BOOT/initramfs.cpio.tmp" "$BOOT/initramfs.cpio"
ln -sfn "$VMLINUX" "$BOOT/vmlinux"
echo "$KVER" > "$BOOT/kernel-version"
nmods=$(find "$STAGE" -name '*.ko*' | wc -l)
rm -rf "$STAGE"
echo "$STAMP_NOW" > "$BOOT/build.stamp"
log "built: kernel $KVER, initramfs $(du -h "$BOOT/initramfs.cpio" | cut -f1) with $nmods modules, in $BOOT"
