#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Commands beyond read/write from the real Linux host: write-zeroes, compare, dsm deallocate, verify, copy, blkdiscard, punch-hole on ext4.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:cmds
CFG=$NVT_RIG_OUT/nvtd-cmds.cfg
O=$NVT_RIG_OUT

rig_begin
rig_check "rxe link up" rig_rxe_up
cat > "$CFG" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; } );
subsystems = ( { nqn = "$NQN"; allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "64M"; pi = { type = 1; }; } ); } );
CFG
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT"
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace"
nvme id-ctrl "$DEV" > "$O/id-ctrl.txt"
rig_check "ONCS: compare, dsm, write zeroes, verify, reservations, copy (0x1ad)" grep -Eq '^oncs +: 0x1ad' "$O/id-ctrl.txt"

dd if=/dev/urandom of="$O/a.bin" bs=512 count=64 status=none
rig_check "write 64 blocks at LBA 2048" dd if="$O/a.bin" of="$DEV" bs=512 seek=2048 oflag=direct status=none

rig_step "nvme compare"
head -c 4096 "$O/a.bin" > "$O/a8.bin"
rig_check "compare equal blocks: success" nvme compare "$DEV" --start-block=2048 --block-count=7 \
	--data-size=4096 --data="$O/a8.bin" --prinfo=0xf --ref-tag=2048
printf 'X' | dd of="$O/a8.bin" bs=1 seek=100 conv=notrunc status=none
if nvme compare "$DEV" --start-block=2048 --block-count=7 --data-size=4096 --data="$O/a8.bin" \
	--prinfo=0xf --ref-tag=2048 > "$O/cmp.txt" 2>&1; then rig_fail "miscompare reported as success"; fi
cat "$O/cmp.txt"
rig_check "a miscompare fails with 85h" grep -Eqi 'compare|0x[0-9a-f]*285' "$O/cmp.txt"

rig_step "nvme write-zeroes, verify, dsm"
rig_check "write-zeroes 8 blocks at 2056 (PRACT=1)" nvme write-zeroes "$DEV" --start-block=2056 \
	--block-count=7 --prinfo=0x8 --ref-tag=2056
dd if="$DEV" of="$O/back.bin" bs=512 skip=2048 count=64 iflag=direct status=none
head -c 4096 "$O/a.bin" > "$O/exp.bin"
head -c 4096 /dev/zero >> "$O/exp.bin"
tail -c +8193 "$O/a.bin" >> "$O/exp.bin"
rig_check "the zeroed blocks read back as zeroes, the rest untouched" cmp "$O/back.bin" "$O/exp.bin"
rig_check "nvme verify of the range (PRCHK guard+ref)" nvme verify "$DEV" --start-block=2048 \
	--block-count=63 --prinfo=0x5 --ref-tag=2048
rig_check "nvme dsm --ad two ranges" nvme dsm "$DEV" --ad --slbs=2048,2100 --blocks=8,4
dd if="$DEV" of="$O/back.bin" bs=512 skip=2048 count=8 iflag=direct status=none
head -c 4096 /dev/zero > "$O/zero.bin"
rig_check "deallocated blocks read as zeroes" cmp "$O/back.bin" "$O/zero.bin"
rig_step "nvme copy: two source ranges, new PI for the destination (PRINFOW.PRACT)"
dd if=/dev/urandom of="$O/b.bin" bs=512 count=16 status=none
rig_check "write 16 blocks at LBA 2200" dd if="$O/b.bin" of="$DEV" bs=512 seek=2200 oflag=direct status=none
# nvme-cli passes --blocks 0-based: 3 = four blocks.
rig_check "nvme copy 2200+4, 2208+4 -> 3000" nvme copy "$DEV" --sdlba=3000 --slbs=2200,2208 \
	--blocks=3,3 --prinfow=0x8 --ref-tag=3000
head -c 2048 "$O/b.bin" > "$O/copy-exp.bin"
tail -c +4097 "$O/b.bin" | head -c 2048 >> "$O/copy-exp.bin"
dd if="$DEV" of="$O/copy.bin" bs=512 skip=3000 count=8 iflag=direct status=none
rig_check "the destination holds both ranges, in order, and reads through the PI checks" \
	cmp "$O/copy.bin" "$O/copy-exp.bin"

rig_check "blkdiscard of 1 MiB" blkdiscard -o $((8 << 20)) -l $((1 << 20)) "$DEV"

rig_step "ext4: discard and punch-hole"
MNT=/mnt/nvt-cmds
mkdir -p "$MNT"
rig_must modprobe ext4
rig_check "mkfs.ext4 (discards the device)" mkfs.ext4 -q -F -E discard "$DEV"
rig_check "mount -o discard" mount -o discard "$DEV" "$MNT"
rig_check "write 8 MiB" dd if=/dev/urandom of="$MNT/f" bs=1M count=8 conv=fsync status=none
rig_check "fallocate --punch-hole 4 MiB" fallocate --punch-hole --offset $((2 << 20)) --length $((4 << 20)) "$MNT/f"
rig_check "fstrim" fstrim -v "$MNT"
rig_check "umount" umount "$MNT"
rig_check "fsck clean" fsck.ext4 -n -f "$DEV"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly" stop_nvtd
