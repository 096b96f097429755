#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The "file" backend with the real Linux host: fio verify, ext4 + fstrim + blkdiscard, data kept across a SIGTERM restart and a kill -9, PI with a sidecar that is corrupted behind nvtd's back.
#
# Three file-backed namespaces, their files on writable storage in the guest:
#   nsid 1  128 MiB, 512-byte blocks, on tmpfs (/run: buffered, 6.1's tmpfs refuses O_DIRECT)
#   nsid 2   64 MiB, 512+8 PI Type 1, data (O_DIRECT) and sidecar on ext4 over a loop device
#   nsid 3   64 MiB, 4096-byte blocks, on the same ext4 (O_DIRECT)
# 1. fio randwrite + crc32c verify, 4k and 128k on nsid 1, 4k-128k on nsid 3, 4k on nsid 2.
# 2. blkdiscard of 8 MiB of nsid 1 (reads back zeroes, the file gives the space back);
#    mkfs.ext4, files + sha256sums, fstrim of a deleted file (space given back), fsck.
# 3. disconnect, SIGTERM (exit 0), start again on the same files: same wwid, sums match.
# 4. O_DIRECT writes + fsync and nvme flush, kill -9, start again: the host reconnects by
#    itself (ctrl-loss-tmo) and reads back exactly what it wrote.
# 5. PI: the sidecar holds PI for written blocks; a guard byte flipped in the sidecar file
#    (dd) and a data bit flipped with nvtctl inject make the host's reads fail; scrub lists
#    both; rewriting the blocks heals them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-12.io.nvt.rig:file
O=$NVT_RIG_OUT
CFG=$O/nvtd-file.cfg
SOCK=/run/nvtd-file.sock	# a unix socket cannot live on the 9p share
D=/run/nvt-file			# tmpfs in the guest
E=$D/ext4			# ext4 on $D/ext4.img through a loop device
MNT=/mnt/nvt-file
SUMS=$O/sha256sums.txt
LOOP=""

rig_scenario_teardown() {
	local n
	mountpoint -q "$MNT" && umount "$MNT"
	for n in "${RIG_CONNECTED[@]}"; do nvme disconnect -n "$n" > /dev/null 2>&1; done
	RIG_CONNECTED=()
	stop_nvtd	# before $E goes: nvtd holds ns3.img
	mountpoint -q "$E" && umount "$E"
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	return 0
}

alloc_bytes() { echo $(( $(stat -c '%b * %B' "$1") )); }
# nonzero_bytes DEV OFFSET_MIB LEN_MIB: how many bytes of the range are not zero (O_DIRECT read)
nonzero_bytes() {
	dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none | tr -d '\000' | wc -c
}
# fio_verify NAME DEV OFFSET SIZE fio-options...: randwrite + crc32c verify of a range
fio_verify() {
	local name=$1 dev=$2 off=$3 size=$4
	shift 4
	if ! fio --name="$name" --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite \
		--iodepth=16 --offset="$off" --size="$size" --verify=crc32c --do_verify=1 \
		--verify_fatal=1 --eta=never --output="$O/fio-$name.txt" "$@"; then
		tail -n 30 "$O/fio-$name.txt" | sed 's/^/    /'
		return 1
	fi
	grep -q 'err= 0' "$O/fio-$name.txt"
}
# readback DEV OFFSET_BYTES FILE: does DEV hold FILE at OFFSET (O_DIRECT read)?
readback() {
	local n
	n=$(stat -c %s "$3")
	dd if="$1" bs=64k iflag=direct,skip_bytes,count_bytes skip="$2" count="$n" status=none |
		cmp - "$3"
}
ctrl_not_live() { ! rig_nvme_ctrl_live "$NQN"; }
find_devs() {
	DEV1=$(rig_wait_nvme_nsid 30 "$NQN" 1) &&
	DEV2=$(rig_wait_nvme_nsid 30 "$NQN" 2) &&
	DEV3=$(rig_wait_nvme_nsid 30 "$NQN" 3)
}
devs_gone() { ! rig_nvme_ns_of "$NQN"; }
# pi_read_fails LBA: a 512-byte O_DIRECT read of LBA on nsid 2 fails with EILSEQ or EIO
pi_read_fails() {
	if dd if="$DEV2" of=/dev/null bs=512 skip="$1" count=1 iflag=direct status=none \
		2> "$O/dd-$1.err"; then
		echo "    LBA $1 was served"
		return 1
	fi
	sed 's/^/    /' "$O/dd-$1.err"
	# The block layer turns a PI error into BLK_STS_PROTECTION, which reads return as EILSEQ.
	grep -Eq "Invalid or incomplete multibyte|Input/output error" "$O/dd-$1.err"
}

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up" rig_rxe_up
rig_must rig_nvme_host_up
rig_must modprobe -a ext4 loop

rig_step "storage in the guest: tmpfs $D, ext4 on a loop device at $E"
mkdir -p "$D" "$E" "$MNT"
rig_check "$D is tmpfs" test "$(stat -f -c %T "$D")" = tmpfs
rig_must truncate -s 200M "$D/ext4.img"
# mkfs on the image, not the loop device: the loop device refuses mke2fs' write-zeroes loudly
rig_must mkfs.ext4 -q -F "$D/ext4.img"
LOOP=$(losetup -f --show "$D/ext4.img") || rig_fail "losetup"
rig_check "mount the loop ext4" mount "$LOOP" "$E"

cat > "$CFG" <<CFG
control_socket = "$SOCK";
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; } );
subsystems = ( {
	nqn = "$NQN";
	allow_any_host = true;
	namespaces = (
		{ nsid = 1; backend = "file"; path = "$D/ns1.img"; size = "128M"; block_size = 512; },
		{ nsid = 2; backend = "file"; path = "$E/ns2.img"; metadata_path = "$E/ns2.md";
		  size = "64M"; block_size = 512; pi = { type = 1; }; },
		{ nsid = 3; backend = "file"; path = "$E/ns3.img"; size = "64M"; block_size = 4096; }
	);
} );
CFG

rig_step "nvtd creates the files"
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "ns1.img created at 128 MiB" test "$(stat -c %s "$D/ns1.img")" -eq $((128 << 20))
rig_check "ns1.img created sparse" test "$(alloc_bytes "$D/ns1.img")" -eq 0
rig_check "ns3.img created at 64 MiB" test "$(stat -c %s "$E/ns3.img")" -eq $((64 << 20))
rig_check "sidecar is 131072 blocks x 8 bytes" test "$(stat -c %s "$E/ns2.md")" -eq $((131072 * 8))
rig_check "sidecar filled with all ones (escape PI)" \
	test "$(tr -d '\377' < "$E/ns2.md" | wc -c)" -eq 0
rig_check "nvtd: ns1.img on tmpfs is buffered (no O_DIRECT)" grep -q "ns1.img: no O_DIRECT" "$NVTD_LOG"
rig_check "nvtd: ns2.img and ns3.img on ext4 use O_DIRECT" \
	bash -c "! grep -Eq 'ns[23].img: no O_DIRECT' $NVTD_LOG"

rig_step "connect"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2 \
	--ctrl-loss-tmo=60 --reconnect-delay=2
find_devs || rig_fail "not all three namespaces appeared"
rig_info "nsid 1 $DEV1, nsid 2 $DEV2, nsid 3 $DEV3"
rig_check "nsid 1: 128 MiB" test "$(blockdev --getsize64 "$DEV1")" -eq $((128 << 20))
rig_check "nsid 2: 64 MiB" test "$(blockdev --getsize64 "$DEV2")" -eq $((64 << 20))
rig_check "nsid 3: 64 MiB of 4096-byte blocks" \
	test "$(blockdev --getsize64 "$DEV3")" -eq $((64 << 20)) -a "$(blockdev --getss "$DEV3")" -eq 4096
# rxe has no signature offload: the host cannot carry PI, so it sends PRACT=1 and
# nvtd generates PI on writes and checks and strips it on reads (as in nvtd-pi.sh).
nvme id-ns -H "$DEV2" > "$O/id-ns2.txt"
rig_check "nsid 2: LBA format 512+8 in use" \
	grep -Eq 'Metadata Size: 8 +bytes - Data Size: 512 bytes.*in use' "$O/id-ns2.txt"
rig_check "nsid 2: PI Type 1 enabled" grep -q 'Protection Information Type 1 Enabled' "$O/id-ns2.txt"
rig_check "nsid 1: the host may discard" \
	test "$(cat "/sys/block/${DEV1#/dev/}/queue/discard_max_bytes")" -gt 0
WWID1=$(cat "/sys/block/${DEV1#/dev/}/wwid")
WWID2=$(cat "/sys/block/${DEV2#/dev/}/wwid")

rig_step "1. fio randwrite + crc32c verify"
rig_check "nsid 1 (tmpfs): 4k, 16 MiB" fio_verify ns1-4k "$DEV1" 0 16M --bs=4k
rig_check "nsid 1 (tmpfs): 128k, 16 MiB" fio_verify ns1-128k "$DEV1" 32M 16M --bs=128k
rig_check "nsid 3 (ext4, O_DIRECT): 4k-128k, 8 MiB" fio_verify ns3-mixed "$DEV3" 0 8M --bsrange=4k-128k
rig_check "nsid 2 (PI, O_DIRECT + sidecar): 4k, 4 MiB" fio_verify ns2-4k "$DEV2" 0 4M --bs=4k
rig_check "nsid 1: ns1.img holds the 32 MiB fio wrote" test "$(alloc_bytes "$D/ns1.img")" -ge $((32 << 20))

rig_step "2. blkdiscard, ext4, fstrim"
rig_check "nsid 1: MiB 4-12 hold data" test "$(nonzero_bytes "$DEV1" 4 8)" -gt 0
a0=$(alloc_bytes "$D/ns1.img")
rig_check "blkdiscard 8 MiB at 4 MiB" blkdiscard -o $((4 << 20)) -l $((8 << 20)) "$DEV1"
a1=$(alloc_bytes "$D/ns1.img")
rig_info "ns1.img allocated: $((a0 >> 10)) KiB before, $((a1 >> 10)) KiB after"
rig_check "the range reads back as zeroes" test "$(nonzero_bytes "$DEV1" 4 8)" -eq 0
rig_check "the file gave the 8 MiB back (punched)" test $((a0 - a1)) -ge $((8 << 20))
rig_check "the data next to the range is intact" test "$(nonzero_bytes "$DEV1" 12 1)" -gt 0

rig_check "mkfs.ext4" mkfs.ext4 -q -F "$DEV1"
rig_check "mount" mount -t ext4 "$DEV1" "$MNT"
write_files() {
	mkdir -p "$MNT/dir/sub" &&
	dd if=/dev/urandom of="$MNT/big" bs=1M count=8 status=none &&
	dd if=/dev/urandom of="$MNT/odd" bs=4097 count=333 status=none &&
	for i in $(seq 1 20); do head -c $((i * 1500)) /dev/urandom > "$MNT/dir/sub/f$i" || return 1; done &&
	dd if=/dev/urandom of="$MNT/scratch" bs=1M count=16 status=none &&
	sync
}
rig_check "write 8 MiB + 1.3 MiB + 20 small files + 16 MiB scratch" write_files
(cd "$MNT" && find . -type f ! -name scratch -print0 | sort -z | xargs -0 sha256sum) > "$SUMS"
rig_check "22 files checksummed" test "$(wc -l < "$SUMS")" -eq 22
a0=$(alloc_bytes "$D/ns1.img")
rig_check "rm scratch" bash -c "rm $MNT/scratch && sync"
fstrim -v "$MNT" > "$O/fstrim.txt" 2>&1 || { cat "$O/fstrim.txt"; rig_fail "fstrim"; }
a1=$(alloc_bytes "$D/ns1.img")
rig_info "$(cat "$O/fstrim.txt"); ns1.img allocated: $((a0 >> 10)) KiB before, $((a1 >> 10)) KiB after"
rig_check "fstrim trimmed something" grep -Eq ': [1-9][0-9.]* [KMG]i?B' "$O/fstrim.txt"
# (the journal writes a few blocks meanwhile: 15 of the 16 MiB)
rig_check "the file gave the deleted 16 MiB back" test $((a0 - a1)) -ge $((15 << 20))
rig_check "umount" umount "$MNT"
rig_check "fsck clean" fsck.ext4 -n -f "$DEV1"

dd if=/dev/urandom of="$O/pi-1m.bin" bs=1M count=1 status=none
rig_check "nsid 2: write 1 MiB at LBA 20480" \
	dd if="$O/pi-1m.bin" of="$DEV2" bs=64k seek=$((20480 * 512)) oflag=direct,seek_bytes status=none
rig_check "nsid 2: it reads back" readback "$DEV2" $((20480 * 512)) "$O/pi-1m.bin"

rig_step "3. SIGTERM, start again on the same files"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "the namespaces are gone" rig_wait_for 20 "namespaces to go" devs_gone
rig_check "nvtd stops on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "nvtd started again" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2 \
	--ctrl-loss-tmo=60 --reconnect-delay=2
find_devs || rig_fail "not all three namespaces appeared after the restart"
rig_check "nsid 1: same wwid" test "$(cat "/sys/block/${DEV1#/dev/}/wwid")" = "$WWID1"
rig_check "nsid 2: same wwid" test "$(cat "/sys/block/${DEV2#/dev/}/wwid")" = "$WWID2"
rig_check "fsck clean" fsck.ext4 -n -f "$DEV1"
rig_check "mount" mount -t ext4 -o ro "$DEV1" "$MNT"
echo "+ (cd $MNT && sha256sum -c --quiet $SUMS)"
rig_check "all 22 files read back identical" bash -c "cd $MNT && sha256sum -c --quiet $SUMS"
rig_check "umount" umount "$MNT"
rig_check "nsid 2: the 1 MiB at LBA 20480 survived, PI checks pass" \
	readback "$DEV2" $((20480 * 512)) "$O/pi-1m.bin"

rig_step "4. O_DIRECT + fsync, nvme flush, kill -9"
dd if=/dev/urandom of="$O/d3.bin" bs=1M count=4 status=none
dd if=/dev/urandom of="$O/d2.bin" bs=64k count=4 status=none
rig_check "nsid 3: 4 MiB at 24 MiB, O_DIRECT + fsync" \
	dd if="$O/d3.bin" of="$DEV3" bs=1M seek=24 oflag=direct conv=fsync status=none
rig_check "nsid 2: 256 KiB at LBA 40000, O_DIRECT + fsync" \
	dd if="$O/d2.bin" of="$DEV2" bs=64k seek=$((40000 * 512)) oflag=direct,seek_bytes conv=fsync status=none
rig_check "nvme flush nsid 3" nvme flush "$DEV3" --namespace-id=3
PID=$NVTD_PID
rig_check "kill -9 nvtd" kill -KILL "$PID"
st=0
wait "$PID" || st=$?
NVTD_PID=""
rig_check "nvtd died of SIGKILL (status 137)" test "$st" = 137
rig_check "the controller leaves live" rig_wait_for 30 "the controller to leave live" ctrl_not_live
rig_check "nvtd started again" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "the controller is live again by itself" \
	rig_wait_for 60 "the controller to be live" rig_nvme_ctrl_live "$NQN"
rig_check "nsid 3: the 4 MiB read back identical" readback "$DEV3" $((24 << 20)) "$O/d3.bin"
rig_check "nsid 2: the 256 KiB read back identical, PI checks pass" \
	readback "$DEV2" $((40000 * 512)) "$O/d2.bin"
rig_check "nsid 3: fio's data from before both restarts still verifies" \
	fio_verify ns3-mixed "$DEV3" 0 8M --bsrange=4k-128k --verify_only

rig_step "5. PI: corruption behind nvtd's back"
A=20500	# inside the 1 MiB written at LBA 20480
B=20600
ref=$(od -An -tx1 -j $((A * 8 + 4)) -N4 "$E/ns2.md" | tr -d ' \n')
rig_info "sidecar tuple of LBA $A: $(od -An -tx1 -j $((A * 8)) -N8 "$E/ns2.md")"
rig_check "the sidecar holds LBA $A's reference tag" test "$ref" = "$(printf %08x $A)"
g=$(od -An -tu1 -j $((A * 8)) -N1 "$E/ns2.md" | tr -d ' ')
rig_check "flip the first guard byte of LBA $A in the sidecar file (dd)" bash -c \
	"printf '\\$(printf %03o $((g ^ 0xff)))' | dd of=$E/ns2.md bs=1 seek=$((A * 8)) conv=notrunc status=none"
rig_check "nvtctl inject: flip a data bit of LBA $B" \
	"$NVT_BUILD/nvtctl" -s "$SOCK" inject "$NQN" 2 $B data 77
rig_check "the host's read of LBA $A fails (PI error)" pi_read_fails $A
rig_check "the host's read of LBA $B fails (PI error)" pi_read_fails $B
rig_check "the host's read of LBA $((A + 1)) still works" \
	dd if="$DEV2" of=/dev/null bs=512 skip=$((A + 1)) count=1 iflag=direct status=none
rig_check "nvtd logged the guard error of LBA $A" grep -q "guard check failed at LBA $A" "$NVTD_LOG"
rig_check "the host's kernel reported the protection error" bash -c "dmesg | grep -q 'sc 0x82'"
t=$(date +%s)
"$NVT_BUILD/nvtctl" -s "$SOCK" scrub "$NQN" 2 > "$O/scrub.txt" 2>&1 || true
rig_info "scrub took $(( $(date +%s) - t )) s:"
sed 's/^/    /' "$O/scrub.txt"
rig_check "scrub lists exactly LBAs $A and $B" bash -c "test \$(grep -c '^bad LBA' $O/scrub.txt) = 2 &&
	grep -q '^bad LBA $A: guard' $O/scrub.txt && grep -q '^bad LBA $B: guard' $O/scrub.txt"
dd if=/dev/urandom of="$O/heal.bin" bs=512 count=1 status=none
rig_check "the host rewrites LBA $A and $B" bash -c "
	dd if=$O/heal.bin of=$DEV2 bs=512 seek=$A oflag=direct status=none &&
	dd if=$O/heal.bin of=$DEV2 bs=512 seek=$B oflag=direct status=none"
rig_check "LBA $A reads back" readback "$DEV2" $((A * 512)) "$O/heal.bin"
rig_check "LBA $B reads back" readback "$DEV2" $((B * 512)) "$O/heal.bin"

rig_step "disconnect and stop"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
