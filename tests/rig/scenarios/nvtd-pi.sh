#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Protection information with the real Linux host over soft-RoCE: 512+8 Type 1 (host uses PRACT=1), io-passthru PRACT=0, 4096+16 64-bit guard.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:pi
CFG=$NVT_RIG_OUT/nvtd-pi.cfg
PIBUF=$NVT_BUILD/nvt-pi-buf

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up" rig_rxe_up
SOCK=/run/nvtd-pi.sock	# a unix socket cannot live on the 9p share
cat > "$CFG" <<CFG
control_socket = "$SOCK";
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; } );
subsystems = ( {
	nqn = "$NQN";
	allow_any_host = true;
	namespaces = (
		{ nsid = 1; backend = "ram"; size = "64M"; block_size = 512; pi = { type = 1; }; },
		{ nsid = 2; backend = "ram"; size = "64M"; block_size = 4096;
		  pi = { type = 1; guard = "crc64"; }; }
	);
} );
CFG
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
rig_check "two namespaces appear" rig_wait_for 30 "nvme0n2" test -b /dev/nvme0n2
DEV=/dev/nvme0n1
nvme id-ns -H "$DEV" > "$NVT_RIG_OUT/id-ns1.txt"
rig_check "id-ns: LBA format 512+8 in use" grep -Eq 'Metadata Size: 8 +bytes - Data Size: 512 bytes.*in use' "$NVT_RIG_OUT/id-ns1.txt"
rig_check "id-ns: PI Type 1 enabled" grep -q 'Protection Information Type 1 Enabled' "$NVT_RIG_OUT/id-ns1.txt"
rig_check "id-ns: metadata at the end of the data LBA" grep -q 'Metadata Transferred at End of Data LBA' "$NVT_RIG_OUT/id-ns1.txt"
rig_check "$DEV has its full 64 MiB (the host sees the PI format as usable)" \
	test "$(blockdev --getsize64 "$DEV")" -eq $((64 << 20))
rig_info "integrity: $(cat /sys/block/nvme0n1/integrity/format 2>/dev/null || echo none)"

rig_step "fio verify and ext4 on the PI namespace (host sends PRACT=1)"
fio --name=pi --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=16 --size=16M --verify=crc32c --do_verify=1 --verify_fatal=1 --eta=never \
	--output="$NVT_RIG_OUT/fio.txt" || { cat "$NVT_RIG_OUT/fio.txt"; rig_fail fio; }
rig_check "fio verified" grep -q 'err= 0' "$NVT_RIG_OUT/fio.txt"
rig_must modprobe ext4
rig_check "mkfs.ext4" mkfs.ext4 -q -F "$DEV"
rig_check "fsck clean" fsck.ext4 -n -f "$DEV"

rig_step "io-passthru with PRACT=0: data + PI from the host"
# Write LBA 1000 (one 520-byte extended block), PRCHK guard|app|ref (PRINFO 0x7 in CDW12 bits 29:26).
passthru() {	# passthru FILE LBA RW
	nvme io-passthru /dev/ng0n1 --namespace-id=1 --opcode="$3" --data-len=520 \
		--cdw10="$2" --cdw11=0 --cdw12=$((7 << 26)) --cdw14="$2" --cdw15=$((0xffff << 16)) \
		${4:+--write} --input-file="$1" > "$NVT_RIG_OUT/passthru.txt" 2>&1
}
"$PIBUF" --lba 1000 > "$NVT_RIG_OUT/good.bin"
rig_check "PRACT=0 write with correct PI succeeds" passthru "$NVT_RIG_OUT/good.bin" 1000 1 w
"$PIBUF" --lba 1000 --corrupt guard > "$NVT_RIG_OUT/bad-guard.bin"
if passthru "$NVT_RIG_OUT/bad-guard.bin" 1000 1 w; then rig_fail "bad guard accepted"; fi
cat "$NVT_RIG_OUT/passthru.txt"
rig_check "bad guard refused with 82h" grep -Eqi '0x[0-9a-f]*282|guard' "$NVT_RIG_OUT/passthru.txt"
"$PIBUF" --lba 1000 --corrupt reftag > "$NVT_RIG_OUT/bad-ref.bin"
if passthru "$NVT_RIG_OUT/bad-ref.bin" 1000 1 w; then rig_fail "bad ref tag accepted"; fi
cat "$NVT_RIG_OUT/passthru.txt"
rig_check "bad ref tag refused with 84h" grep -Eqi '0x[0-9a-f]*284|reference' "$NVT_RIG_OUT/passthru.txt"
# A misdirected write: PI of LBA 1000 sent to LBA 2000.
if passthru "$NVT_RIG_OUT/good.bin" 2000 1 w; then rig_fail "misdirected write accepted"; fi
rig_check "misdirected write refused with 84h" grep -Eqi '0x[0-9a-f]*284|reference' "$NVT_RIG_OUT/passthru.txt"
# (no /dev/fd in the guest: temp files, not process substitution)
head -c 512 "$NVT_RIG_OUT/good.bin" > "$NVT_RIG_OUT/good.data"
dd if="$DEV" of="$NVT_RIG_OUT/read.data" bs=512 skip=1000 count=1 iflag=direct status=none
rig_check "block 1000 reads back (PRACT=1) as the PRACT=0 write stored it" \
	cmp "$NVT_RIG_OUT/read.data" "$NVT_RIG_OUT/good.data"

rig_step "corruption at rest, behind the host's back"
LBA=4242
dd if=/dev/urandom of="$NVT_RIG_OUT/blk.bin" bs=512 count=1 status=none
rig_check "host writes LBA $LBA" dd if="$NVT_RIG_OUT/blk.bin" of="$DEV" bs=512 seek=$LBA oflag=direct status=none
rig_check "scrub before: clean" "$NVT_BUILD/nvtctl" -s "$SOCK" scrub "$NQN" 1
rig_check "nvtctl flips one data bit of LBA $LBA" "$NVT_BUILD/nvtctl" -s "$SOCK" inject "$NQN" 1 $LBA data 1234
if dd if="$DEV" of=/dev/null bs=512 skip=$LBA count=1 iflag=direct status=none 2> "$NVT_RIG_OUT/dd.err"; then
	rig_fail "the corrupted block was served"
fi
cat "$NVT_RIG_OUT/dd.err"
# The block layer turns a PI error into BLK_STS_PROTECTION, which reads return as EILSEQ.
rig_check "the host's read fails with a protection error" \
	grep -Eq "Invalid or incomplete multibyte|Input/output error" "$NVT_RIG_OUT/dd.err"
rig_check "nvtd logged the guard error with the LBA" grep -q "guard check failed at LBA $LBA" "$NVTD_LOG"
"$NVT_BUILD/nvtctl" -s "$SOCK" scrub "$NQN" 1 > "$NVT_RIG_OUT/scrub.txt" || true
cat "$NVT_RIG_OUT/scrub.txt"
rig_check "scrub lists exactly LBA $LBA" bash -c \
	"test \$(grep -c '^bad LBA' $NVT_RIG_OUT/scrub.txt) = 1 && grep -q '^bad LBA $LBA: guard' $NVT_RIG_OUT/scrub.txt"
rig_check "the host's kernel reported the protection error" bash -c "dmesg | grep -q 'sc 0x82'"

rig_step "4096+16, 64-bit guard"
nvme id-ns -H /dev/nvme0n2 > "$NVT_RIG_OUT/id-ns2.txt"
rig_info "$(grep -E 'LBA Format  0|Metadata Size|Protection' "$NVT_RIG_OUT/id-ns2.txt" | head -4 | tr '\n' ';')"
rig_info "nvme0n2 size: $(blockdev --getsize64 /dev/nvme0n2) bytes"
if [ "$(blockdev --getsize64 /dev/nvme0n2)" -eq $((64 << 20)) ]; then
	rig_pass "the 6.1 host uses the 64-bit guard namespace"
	rig_check "dd write+read on nvme0n2" bash -c \
		"dd if=/dev/urandom of=$NVT_RIG_OUT/r.bin bs=4096 count=16 status=none && dd if=$NVT_RIG_OUT/r.bin of=/dev/nvme0n2 bs=4096 oflag=direct status=none && dd if=/dev/nvme0n2 bs=4096 count=16 iflag=direct status=none | cmp -s - $NVT_RIG_OUT/r.bin"
else
	rig_info "the 6.1 host gives the 64-bit guard namespace no capacity"
fi
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly" stop_nvtd
grep -E "check failed" "$NVTD_LOG" | head -5
