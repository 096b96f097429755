#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Rig self-test and yardstick check: the KERNEL nvmet-rdma target over soft-RoCE serves a RAM namespace to nvme-cli, fio and ext4.
#
# Steps (each one asserted): rxe on a dummy netdev; kernel target with a
# 128 MiB null_blk (memory_backed) namespace; nvme discover lists it; nvme
# connect --nr-io-queues=2; block device with the right size and 2 I/O queues;
# fio randwrite with crc32c verify; mkfs.ext4, mount, write, remount, read back,
# umount; nvme disconnect. Runs inside the VM (scenario.sh kernel-nvmet-smoke).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:kernel-smoke
SIZE_MIB=128
FIO_SIZE=${NVT_RIG_SMOKE_FIO_SIZE:-16M}

rig_begin

rig_step "soft-RoCE: $RIG_RDMA_DEV on dummy $RIG_NETDEV ($RIG_ADDR/$RIG_PREFIX)"
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_check "ibv_devices lists $RIG_RDMA_DEV" bash -c "ibv_devices | grep -qw $RIG_RDMA_DEV"

rig_step "kernel nvmet-rdma target: $NQN, ${SIZE_MIB} MiB RAM namespace, port $RIG_PORT"
rig_check "kernel target configured and listening" kernel_nvmet_ram "$NQN" "$SIZE_MIB" "$RIG_PORT"
rig_info "backing device $KNVMET_DEV"

rig_step "nvme discover"
rig_must rig_nvme_host_up
echo "+ nvme discover -t rdma -a $RIG_ADDR -s $RIG_PORT"
nvme discover -t rdma -a "$RIG_ADDR" -s "$RIG_PORT" > "$NVT_RIG_OUT/discover.txt" 2>&1 ||
	{ cat "$NVT_RIG_OUT/discover.txt"; rig_fail "nvme discover"; }
cat "$NVT_RIG_OUT/discover.txt"
rig_check "discovery log lists $NQN at $RIG_ADDR:$RIG_PORT over rdma" \
	rig_discovery_lists "$NVT_RIG_OUT/discover.txt" "$NQN" "$RIG_ADDR" "$RIG_PORT"

rig_step "nvme connect --nr-io-queues=2"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device for $NQN"
CTRL=$(rig_nvme_ctrl_of "$NQN") || rig_fail "no controller for $NQN"
rig_info "controller $CTRL, namespace $DEV"
nvme list
size_bytes=$(blockdev --getsize64 "$DEV")
rig_check "$DEV is $SIZE_MIB MiB ($size_bytes bytes)" test "$size_bytes" -eq $((SIZE_MIB * 1024 * 1024))
queue_count=$(cat "/sys/class/nvme/$CTRL/queue_count")
rig_check "controller has 2 I/O queues (queue_count $queue_count incl. admin)" test "$queue_count" -eq 3
rig_check "transport is rdma" grep -qx rdma "/sys/class/nvme/$CTRL/transport"

rig_step "fio 4k randwrite, QD16, $FIO_SIZE, verify=crc32c"
if fio --name=smoke-verify --filename="$DEV" --ioengine=libaio --direct=1 \
	--rw=randwrite --bs=4k --iodepth=16 --size="$FIO_SIZE" \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_backlog=1024 \
	--eta=never --output="$NVT_RIG_OUT/fio-verify.txt"; then
	grep -E 'IOPS|err=' "$NVT_RIG_OUT/fio-verify.txt" | sed 's/^/    /'
	rig_check "fio wrote and verified $FIO_SIZE without errors" grep -q 'err= 0' "$NVT_RIG_OUT/fio-verify.txt"
else
	cat "$NVT_RIG_OUT/fio-verify.txt"
	rig_fail "fio randwrite/verify"
fi

rig_step "ext4 on the namespace"
MNT=/mnt/nvt-smoke
mkdir -p "$MNT"
rig_must modprobe ext4
rig_check "mkfs.ext4" mkfs.ext4 -q -F "$DEV"
rig_check "mount" mount -t ext4 "$DEV" "$MNT"
rig_check "write a 16 MiB file" dd if=/dev/urandom of="$MNT/data" bs=1M count=16 conv=fsync status=none
sum_written=$(sha256sum < "$MNT/data")
rig_check "umount" umount "$MNT"
rig_check "mount again" mount -t ext4 -o ro "$DEV" "$MNT"
sum_read=$(sha256sum < "$MNT/data")
rig_check "file reads back identical after remount" test "$sum_read" = "$sum_written"
rig_check "umount again" umount "$MNT"
rig_check "fsck.ext4 finds the filesystem clean" fsck.ext4 -n -f "$DEV"

rig_step "nvme disconnect"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "namespace device is gone" rig_wait_for 20 "$DEV to disappear" bash -c "! test -e $DEV"
