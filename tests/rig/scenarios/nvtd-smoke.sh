#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtd over soft-RoCE against the real Linux host: discover, connect, identify (controller and both namespaces), fio verify, ext4, disconnect, clean stop.
#
# Two RAM namespaces: nsid 1, 128 MiB of 512-byte blocks, and nsid 2, 64 MiB of
# 4096-byte blocks. Checks nvme list, id-ctrl, id-ns (nsze/ncap/lbaf 0) of both,
# the block devices' sizes and logical block sizes, and I/O on both.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:smoke
SIZE_MIB=128
SIZE2_MIB=64
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
	namespaces = (
		{ nsid = 1; backend = "ram"; size = "${SIZE_MIB}M"; block_size = 512; },
		{ nsid = 2; backend = "ram"; size = "${SIZE2_MIB}M"; block_size = 4096; }
	);
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
DEV=$(rig_wait_nvme_nsid 30 "$NQN" 1) || rig_fail "no block device for namespace 1 of $NQN"
DEV2=$(rig_wait_nvme_nsid 30 "$NQN" 2) || rig_fail "no block device for namespace 2 of $NQN"
CTRL=$(rig_nvme_ctrl_of "$NQN") || rig_fail "no controller for $NQN"
rig_info "controller $CTRL, namespaces $DEV (nsid 1) and $DEV2 (nsid 2)"
rig_check "controller state live" rig_nvme_ctrl_live "$NQN"
rig_check "transport is rdma" grep -qx rdma "/sys/class/nvme/$CTRL/transport"
rig_check "2 I/O queues" test "$(cat "/sys/class/nvme/$CTRL/queue_count")" -eq 3

nvme list > "$NVT_RIG_OUT/nvme-list.txt" 2>&1
cat "$NVT_RIG_OUT/nvme-list.txt"
rig_check "nvme list shows $DEV (serial, model)" \
	grep -Eq "^$DEV +[^ ]+ +NVTRIG0001 +nvt rig " "$NVT_RIG_OUT/nvme-list.txt"
rig_check "nvme list shows $DEV2" grep -Eq "^$DEV2 +[^ ]+ +NVTRIG0001 +nvt rig " "$NVT_RIG_OUT/nvme-list.txt"

nvme id-ctrl "/dev/$CTRL" > "$NVT_RIG_OUT/id-ctrl.txt"
rig_check "id-ctrl serial" grep -Eq '^sn +: NVTRIG0001' "$NVT_RIG_OUT/id-ctrl.txt"
rig_check "id-ctrl model" grep -Eq '^mn +: nvt rig' "$NVT_RIG_OUT/id-ctrl.txt"
rig_check "id-ctrl subnqn" grep -Eq "^subnqn +: $NQN\$" "$NVT_RIG_OUT/id-ctrl.txt"
rig_check "id-ctrl nn >= 2" test "$(nvme id-ctrl "/dev/$CTRL" -o json | jq .nn)" -ge 2

# check_ns DEV NSID SIZE_MIB BLOCK_SIZE: id-ns and the block device agree with the config
check_ns() {
	local dev=$1 nsid=$2 mib=$3 bs=$4 lbads=$5 json="$NVT_RIG_OUT/id-ns-$2.json"
	local blocks=$((mib * 1024 * 1024 / bs))
	nvme id-ns "$dev" > "$NVT_RIG_OUT/id-ns-$nsid.txt" 2>&1
	nvme id-ns "$dev" -o json > "$json" || rig_fail "nvme id-ns $dev"
	grep -E '^(nsze|ncap|nuse|flbas|nlbaf) |^lbaf +0 ' "$NVT_RIG_OUT/id-ns-$nsid.txt" | sed 's/^/    /'
	rig_check "ns $nsid: nsze = $blocks" test "$(jq .nsze "$json")" -eq "$blocks"
	rig_check "ns $nsid: ncap = $blocks" test "$(jq .ncap "$json")" -eq "$blocks"
	rig_check "ns $nsid: flbas selects lbaf 0" test "$(( $(jq .flbas "$json") & 0xf ))" -eq 0
	rig_check "ns $nsid: lbaf 0 ds = $lbads, ms = 0" \
		test "$(jq -c '.lbafs[0] | [.ds, .ms]' "$json")" = "[$lbads,0]"
	rig_check "ns $nsid: $dev is $mib MiB" test "$(blockdev --getsize64 "$dev")" -eq $((mib * 1024 * 1024))
	rig_check "ns $nsid: $dev logical block size $bs" test "$(blockdev --getss "$dev")" -eq "$bs"
}
rig_step "identify namespaces"
check_ns "$DEV" 1 "$SIZE_MIB" 512 9
check_ns "$DEV2" 2 "$SIZE2_MIB" 4096 12

rig_step "1 MiB write and read back on namespace 2 (4 KiB blocks)"
head -c 1M /dev/urandom > /tmp/ns2.in
rig_check "write 1 MiB at offset 8 MiB, O_DIRECT" \
	dd if=/tmp/ns2.in of="$DEV2" bs=4k seek=2048 oflag=direct conv=fsync status=none
rig_check "read it back, O_DIRECT" dd if="$DEV2" of=/tmp/ns2.out bs=4k skip=2048 count=256 iflag=direct status=none
rig_check "identical" cmp /tmp/ns2.in /tmp/ns2.out

# Passthrough I/O cannot be split by the host: it needs MDTS >= the transfer
# (the kernel target advertises 1 MiB; nvme-cli's --block-count is 0-based).
rig_step "nvme write / read passthrough of 256 KiB and 1 MiB (MDTS)"
mdts=$(nvme id-ctrl "/dev/$CTRL" -o json | jq .mdts)
rig_check "MDTS >= 1 MiB (2^$mdts x 4 KiB)" test "$mdts" -ge 8
for blocks in 512 2048; do
	bytes=$((blocks * 512))
	head -c "$bytes" /dev/urandom > /tmp/pt.in
	rig_check "nvme write --block-count=$((blocks - 1)) ($bytes bytes)" \
		nvme write "$DEV" --start-block=8192 --block-count=$((blocks - 1)) \
		--data-size="$bytes" --data=/tmp/pt.in
	rig_check "nvme read it back" nvme read "$DEV" --start-block=8192 \
		--block-count=$((blocks - 1)) --data-size="$bytes" --data=/tmp/pt.out
	rig_check "identical ($bytes bytes)" cmp /tmp/pt.in /tmp/pt.out
done
rig_check "nvme write --block-count=512 (the 513 blocks the issue named)" \
	nvme write "$DEV" --start-block=16384 --block-count=512 --data-size=$((513 * 512)) \
	--data=/tmp/pt.in

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
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
cat "$NVTD_LOG"
