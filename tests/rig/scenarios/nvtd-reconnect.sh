#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Data survives a host disconnect/connect against the same nvtd: ext4 files written before nvme disconnect read back identical after nvme connect.
#
# mkfs.ext4 on a 128 MiB RAM namespace, mount, write files of several sizes and a
# directory tree, sha256sum them, umount, nvme disconnect (the block device goes
# away), nvme connect again (a new controller), same namespace identity (wwid),
# mount, sha256sum -c, fsck -n clean.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:reconnect
NS_MIB=128
CFG=$NVT_RIG_OUT/nvtd-reconnect.cfg
MNT=/mnt/nvt-reconnect
SUMS=$NVT_RIG_OUT/sha256sums.txt

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_must modprobe ext4

nvtd_serve_ram "$CFG" "$NQN" "$NS_MIB"

rig_step "connect, mkfs.ext4, write files"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device for $NQN"
CTRL1=$(rig_nvme_ctrl_of "$NQN") || rig_fail "no controller for $NQN"
WWID1=$(cat "/sys/block/${DEV#/dev/}/wwid")
CNTLID1=$(cat "/sys/class/nvme/$CTRL1/cntlid")
rig_info "$DEV on $CTRL1 (cntlid $CNTLID1), wwid $WWID1"
mkdir -p "$MNT"
rig_check "mkfs.ext4" mkfs.ext4 -q -F "$DEV"
rig_check "mount" mount -t ext4 "$DEV" "$MNT"
write_files() {
	mkdir -p "$MNT/dir/sub" &&
	dd if=/dev/urandom of="$MNT/big" bs=1M count=24 status=none &&
	dd if=/dev/urandom of="$MNT/odd" bs=4097 count=333 status=none &&
	head -c 100 /dev/urandom > "$MNT/dir/small" &&
	for i in $(seq 1 40); do head -c $((i * 1000)) /dev/urandom > "$MNT/dir/sub/f$i" || return 1; done &&
	sync
}
rig_check "write 24 MiB + 1.3 MiB + 41 small files" write_files
(cd "$MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$SUMS"
rig_check "43 files checksummed" test "$(wc -l < "$SUMS")" -eq 43
rig_check "umount" umount "$MNT"

rig_step "nvme disconnect"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "namespace device is gone" rig_wait_for 20 "$DEV to disappear" bash -c "! test -e $DEV"
rig_check "controller is gone" bash -c "! ls /sys/class/nvme/ | grep -qx $CTRL1"
rig_check "nvtd still running" nvtd_alive

rig_step "nvme connect again"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device after reconnect"
CTRL2=$(rig_nvme_ctrl_of "$NQN") || rig_fail "no controller after reconnect"
WWID2=$(cat "/sys/block/${DEV#/dev/}/wwid")
rig_info "$DEV on $CTRL2 (cntlid $(cat "/sys/class/nvme/$CTRL2/cntlid")), wwid $WWID2"
rig_check "controller live" rig_nvme_ctrl_live "$NQN"
rig_check "same namespace identity (wwid)" test "$WWID2" = "$WWID1"
rig_check "mount" mount -t ext4 -o ro "$DEV" "$MNT"
echo "+ (cd $MNT && sha256sum -c --quiet $SUMS)"
rig_check "all 43 files read back identical" bash -c "cd $MNT && sha256sum -c --quiet $SUMS"
rig_check "umount" umount "$MNT"
rig_check "fsck.ext4 finds the filesystem clean" fsck.ext4 -n -f "$DEV"

rig_step "disconnect and stop"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
