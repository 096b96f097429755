#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtd over soft-RoCE against the real Linux host: discover, connect, identify, fio verify, ext4, disconnect, clean stop.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:smoke
SIZE_MIB=128
FIO_SIZE=${NVT_RIG_SMOKE_FIO_SIZE:-16M}
CFG=$NVT_RIG_OUT/nvtd-smoke.cfg

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up on the dummy netdev" rig_rxe_up

cat > "$CFG" <<CFG
log_level = "info";
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; } );
subsystems = ( {
	nqn = "$NQN";
	serial = "NVTRIG0001";
	model = "nvt rig";
	allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "${SIZE_MIB}M"; block_size = 512; } );
} );
CFG
rig_step "nvtd on $RIG_ADDR:$RIG_PORT"
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"

rig_step "nvme discover"
rig_must rig_nvme_host_up
nvme discover -t rdma -a "$RIG_ADDR" -s "$RIG_PORT" > "$NVT_RIG_OUT/discover.txt" 2>&1 ||
	{ cat "$NVT_RIG_OUT/discover.txt"; rig_fail "nvme discover"; }
cat "$NVT_RIG_OUT/discover.txt"
rig_check "discovery log lists $NQN" \
	rig_discovery_lists "$NVT_RIG_OUT/discover.txt" "$NQN" "$RIG_ADDR" "$RIG_PORT"

rig_step "nvme connect --nr-io-queues=2"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device for $NQN"
CTRL=$(rig_nvme_ctrl_of "$NQN") || rig_fail "no controller for $NQN"
nvme list
size_bytes=$(blockdev --getsize64 "$DEV")
rig_check "$DEV is $SIZE_MIB MiB" test "$size_bytes" -eq $((SIZE_MIB * 1024 * 1024))
rig_check "2 I/O queues" test "$(cat "/sys/class/nvme/$CTRL/queue_count")" -eq 3
nvme id-ctrl "/dev/$CTRL" > "$NVT_RIG_OUT/id-ctrl.txt"
rig_check "id-ctrl serial" grep -Eq '^sn +: NVTRIG0001' "$NVT_RIG_OUT/id-ctrl.txt"
rig_check "id-ctrl model" grep -Eq '^mn +: nvt rig' "$NVT_RIG_OUT/id-ctrl.txt"

rig_step "fio 4k randwrite QD16 verify=crc32c"
fio --name=verify --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=16 --size="$FIO_SIZE" --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--eta=never --output="$NVT_RIG_OUT/fio.txt" || { cat "$NVT_RIG_OUT/fio.txt"; rig_fail fio; }
rig_check "fio verified without errors" grep -q 'err= 0' "$NVT_RIG_OUT/fio.txt"

rig_step "ext4"
MNT=/mnt/nvt-smoke
mkdir -p "$MNT"
rig_must modprobe ext4
rig_check "mkfs.ext4" mkfs.ext4 -q -F "$DEV"
rig_check "mount" mount -t ext4 "$DEV" "$MNT"
rig_check "write a file" dd if=/dev/urandom of="$MNT/data" bs=1M count=8 conv=fsync status=none
sum=$(sha256sum < "$MNT/data")
rig_check "umount" umount "$MNT"
rig_check "mount again" mount -t ext4 -o ro "$DEV" "$MNT"
rig_check "file identical" test "$(sha256sum < "$MNT/data")" = "$sum"
rig_check "umount" umount "$MNT"

rig_step "disconnect and stop"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
cat "$NVTD_LOG"
