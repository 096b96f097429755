#!/bin/busybox sh
# SPDX-License-Identifier: BSD-3-Clause
# /init of the rig initramfs: mounts the host root (9p, read-only, tmpfs overlay) and runs the requested job chrooted into it.
#
# Kernel command line keys (set by run-vm.sh):
#   nvt.job=/abs/path     bash script run as root inside the chroot (the job)
#   nvt.ctl=/abs/dir      writable control dir; the job's status lands in exit-status
#   nvt.ro=N              number of read-only 9p shares, tags ro0..ro(N-1), each
#   nvt.ropathK=/abs/dir  mounted at its host path (mounted before the rw shares)
#   nvt.rw=N              number of writable 9p shares, tags rw0..rw(N-1), each
#   nvt.rwpathK=/abs/dir  mounted at its host path in the guest
#   nvt.shell=1           run the job interactively on the console (bash -i)
# The console gets "NVT_RIG_EXIT=<status>" before the VM powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
uptime_s() { cut -d' ' -f1 /proc/uptime; }
cmdline_value() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -1; }
fatal() { echo "NVT-RIG: $*"; echo "NVT_RIG_EXIT=99"; poweroff -f; }
echo "NVT-RIG: init started at $(uptime_s)s"

# request_module() from the kernel runs /sbin/modprobe in this initramfs root
echo /sbin/modprobe > /proc/sys/kernel/modprobe
for m in $(cat /etc/boot-modules); do
	modprobe "$m" || echo "NVT-RIG: modprobe $m failed"
done

# Host root: read-only 9p, made writable by a tmpfs overlay (thrown away at poweroff).
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /lower ||
	fatal "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 overlay-rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fatal "cannot mount the overlay root"
# the guest kernel's modules live in this initramfs, not on the host
mkdir -p /newroot/lib/modules
mount --bind /lib/modules /newroot/lib/modules
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t configfs configfs /newroot/sys/kernel/config 2>/dev/null
mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t devpts -o ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=0755 tmpfs /newroot/run

# mount_shares KIND OPTIONS: mount the KIND0.. shares at their host paths
mount_shares() {
	count=$(cmdline_value "nvt.$1")
	i=0
	while [ "$i" -lt "${count:-0}" ]; do
		path=$(cmdline_value "nvt.${1}path$i")
		mkdir -p "/newroot$path"
		mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,$2" "$1$i" "/newroot$path" ||
			fatal "cannot mount share $1$i at $path"
		i=$((i + 1))
	done
}
mount_shares ro cache=loose,ro
mount_shares rw cache=mmap
ip link set lo up
hostname nvt-rig
echo "NVT-RIG: userspace ready at $(uptime_s)s"

job=$(cmdline_value nvt.job)
ctl=$(cmdline_value nvt.ctl)
# split on purpose when used: NAME=VALUE words for env
guest_env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 NVT_RIG_GUEST=1"
status=0
if [ -z "$job" ]; then
	echo "NVT-RIG: no nvt.job on the kernel command line"
	status=2
elif [ "$(cmdline_value nvt.shell)" = 1 ]; then
	echo "NVT-RIG: interactive shell in the host-root chroot; 'exit' powers the VM off"
	setsid cttyhack chroot /newroot /usr/bin/env -i $guest_env TERM=${TERM:-vt100} /bin/bash "$job"
	status=$?
else
	chroot /newroot /usr/bin/env -i $guest_env TERM=dumb /bin/bash "$job" \
		< /dev/null > /dev/console 2>&1
	status=$?
fi
echo "NVT-RIG: job finished at $(uptime_s)s"
[ -n "$ctl" ] && echo "$status" > "/newroot$ctl/exit-status"
sync
echo "NVT_RIG_EXIT=$status"
poweroff -f
