#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The nvme backend: QEMU's emulated NVMe controller (PI formats, nvtd-nvme.qemu-args) served by nvtd over soft-RoCE to the host in the same VM.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-12.io.nvt.rig:nvme
CFG=$NVT_RIG_OUT/nvtd-nvme.cfg
PIBUF=$NVT_BUILD/nvt-pi-buf
SOCK=/run/nvtd-nvme.sock
IDS=$NVT_RIG_OUT/identify	# raw Identify pages of the local device (tests/unit/data comes from here)
FAILED=0

# soft DESC CMD...: like rig_check, but go on after a failure (one VM boot shows them all)
soft() {
	local desc=$1
	shift
	echo "+ $*"
	if "$@"; then rig_pass "$desc"; else echo "FAIL: $desc (exit $?)"; FAILED=$((FAILED + 1)); fi
}
# fails CMD...: CMD must fail
fails() { ! "$@"; }

rig_begin
rig_step "the local NVMe device (QEMU's emulated controller)"
rig_must modprobe nvme
rig_check "six local namespaces" rig_wait_for 30 "/dev/ng0n6" test -c /dev/ng0n6
nvme list | tee "$NVT_RIG_OUT/nvme-list.txt"
mkdir -p "$IDS"
nvme id-ctrl -b /dev/ng0n1 > "$IDS/qemu-id-ctrl.bin"
for i in 1 2 3 4 5 6; do
	nvme id-ns -b /dev/ng0n$i > "$IDS/qemu-id-ns$i.bin"
	nvme nvm-id-ns -o binary -n $i /dev/ng0n$i > "$IDS/qemu-nvm-id-ns$i.bin"
	nvme id-ns -H /dev/ng0n$i > "$NVT_RIG_OUT/local-id-ns$i.txt"
done
rig_check "recorded Identify pages" test "$(cat "$IDS"/*.bin | wc -c)" = $((13 * 4096))

rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up" rig_rxe_up

rig_step "a config that disagrees with the device is refused, naming the line"
cat > "$NVT_RIG_OUT/bad.cfg" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; } );
subsystems = ( { nqn = "$NQN"; allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "nvme"; device = "/dev/ng0n1";
		block_size = 4096; } ); } );
CFG
"$NVT_BUILD/nvtd" -c "$NVT_RIG_OUT/bad.cfg" > "$NVT_RIG_OUT/bad.log" 2>&1 && rig_fail "nvtd served a disagreeing config"
cat "$NVT_RIG_OUT/bad.log"
soft "the error names block_size at line 4 and the device's format" \
	grep -q 'bad.cfg:4: block_size: 4096, but the device has 512+8' "$NVT_RIG_OUT/bad.log"

rig_step "nvtd serves the five namespaces"
# Namespace 2 by its block device: nvtd finds /dev/ng0n2 itself. Namespace 3 states its PI (as the device has it).
cat > "$CFG" <<CFG
control_socket = "$SOCK";
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; } );
subsystems = ( {
	nqn = "$NQN";
	allow_any_host = true;
	namespaces = (
		{ nsid = 1; backend = "nvme"; device = "/dev/ng0n1"; },
		{ nsid = 2; backend = "nvme"; device = "/dev/nvme0n2"; },
		{ nsid = 3; backend = "nvme"; device = "/dev/ng0n3"; block_size = 4096;
		  pi = { type = 1; guard = "crc64"; }; },
		{ nsid = 4; backend = "nvme"; device = "/dev/ng0n4"; },
		{ nsid = 5; backend = "nvme"; device = "/dev/ng0n5"; },
		{ nsid = 6; backend = "nvme"; device = "/dev/ng0n6"; }
	);
} );
CFG
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
declare -A DEV
for i in 1 2 3 4 5 6; do
	DEV[$i]=$(rig_wait_nvme_nsid 30 "$NQN" $i) || rig_fail "namespace $i did not appear"
done
rig_info "host devices: ${DEV[*]}"
grep -E "nvme|ng0n" "$NVTD_LOG" | head -10

rig_step "id-ns through nvtd shows the device's formats"
idfmt() {	# idfmt DEV MS DS WHERE: the in-use LBA format and where PI sits
	nvme id-ns -H "$1" > "$NVT_RIG_OUT/id-ns.txt"
	grep -Eq "Metadata Size: $2 +bytes - Data Size: $3 bytes.*in use" "$NVT_RIG_OUT/id-ns.txt" &&
		grep -q 'Protection Information Type 1 Enabled' "$NVT_RIG_OUT/id-ns.txt" &&
		grep -q "Protection Information Transferred as $4" "$NVT_RIG_OUT/id-ns.txt"
}
soft "ns1: 512+8, PI type 1 last" idfmt "${DEV[1]}" 8 512 "Last 8 Bytes of Metadata"
soft "ns2: 512+8 (extended on the device)" idfmt "${DEV[2]}" 8 512 "Last 8 Bytes of Metadata"
soft "ns3: 4096+16" idfmt "${DEV[3]}" 16 4096 "Last 8 Bytes of Metadata"
soft "ns4: 4096+64, PI first" idfmt "${DEV[4]}" 64 4096 "First 8 Bytes of Metadata"
soft "ns5: 4096+64, PI last" idfmt "${DEV[5]}" 64 4096 "Last 8 Bytes of Metadata"
soft "ns6: 4096+0, no PI" bash -c "nvme id-ns -H ${DEV[6]} | grep -Eq 'Metadata Size: 0 +bytes - Data Size: 4096 bytes.*in use'"
nvme id-ns "${DEV[6]}" > "$NVT_RIG_OUT/id-ns6.txt"
soft "ns6 (copies go to the device): the device's copy limits (mssrl 128, mcl 128, msrc 127)" bash -c \
	"grep -Eq '^mssrl +: 128$' $NVT_RIG_OUT/id-ns6.txt && grep -Eq '^mcl +: 128$' $NVT_RIG_OUT/id-ns6.txt && grep -Eq '^msrc +: 127$' $NVT_RIG_OUT/id-ns6.txt"
soft "ns1 (copies done by nvtd): nvtd's own (mssrl 65535)" bash -c "nvme id-ns ${DEV[1]} | grep -Eq '^mssrl +: 65535$'"

rig_step "fio verify through the host's block layer"
for i in 1 2 3 4 5 6; do
	sz=$(blockdev --getsize64 "${DEV[$i]}")
	if [ "$sz" = 0 ]; then rig_info "ns$i: the host gives it no capacity"; continue; fi
	soft "ns$i: fio randwrite verify" fio --name=nv$i --filename="${DEV[$i]}" --ioengine=libaio \
		--direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=8M --verify=crc32c --do_verify=1 \
		--verify_fatal=1 --eta=never --output="$NVT_RIG_OUT/fio$i.txt"
done
# 1 MiB on ns2 (extended 512+8) is 9 device commands; 16 deep is 144, more than a channel's
# 64: bios go out in waves and wait their turn (they failed with Internal Error past 64).
soft "ns2: fio 1 MiB writes, 16 deep, verify (bios bigger than the ring's room)" fio --name=big \
	--filename="${DEV[2]}" --ioengine=libaio --direct=1 --rw=write --bs=1M --iodepth=16 --size=32M \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --eta=never --output="$NVT_RIG_OUT/fio-big.txt"
rig_must modprobe ext4
soft "mkfs.ext4 on ns1" mkfs.ext4 -q -F "${DEV[1]}"
soft "fsck clean" fsck.ext4 -n -f "${DEV[1]}"

rig_step "io-passthru PRACT=0 on ns1 (512+8): the device checks too"
NG1=${DEV[1]/nvme/ng}
passthru() {	# passthru FILE LBA: write one 520-byte extended block, PRCHK guard|app|ref, app mask ffff
	nvme io-passthru "$NG1" --namespace-id=1 --opcode=1 --data-len=520 \
		--cdw10="$2" --cdw11=0 --cdw12=$((7 << 26)) --cdw14="$2" --cdw15=$((0xffff << 16)) \
		--write --input-file="$1" > "$NVT_RIG_OUT/passthru.txt" 2>&1
}
"$PIBUF" --lba 1000 > "$NVT_RIG_OUT/good.bin"
soft "PRACT=0 write with correct PI succeeds" passthru "$NVT_RIG_OUT/good.bin" 1000
for f in guard:282 apptag:283 reftag:284; do
	"$PIBUF" --lba 1000 --corrupt "${f%:*}" > "$NVT_RIG_OUT/bad.bin"
	soft "bad ${f%:*} refused" fails passthru "$NVT_RIG_OUT/bad.bin" 1000
	cat "$NVT_RIG_OUT/passthru.txt"
	soft "... with ${f#*:}h" grep -Eqi "0x[0-9a-f]*${f#*:}" "$NVT_RIG_OUT/passthru.txt"
done
head -c 512 "$NVT_RIG_OUT/good.bin" > "$NVT_RIG_OUT/good.data"
dd if="${DEV[1]}" of="$NVT_RIG_OUT/read.data" bs=512 skip=1000 count=1 iflag=direct status=none || true
soft "block 1000 reads back as written" cmp "$NVT_RIG_OUT/read.data" "$NVT_RIG_OUT/good.data"
# The same write straight on the local device: the data and PI are what the host sent.
nvme io-passthru /dev/ng0n1 --namespace-id=1 --opcode=2 --data-len=512 --metadata-len=8 \
	--cdw10=1000 --cdw12=0 --read --output-file="$NVT_RIG_OUT/local.data" \
	> "$NVT_RIG_OUT/local-read.txt" 2>&1 || cat "$NVT_RIG_OUT/local-read.txt"
soft "the device holds the host's block" bash -c \
	"nvme io-passthru /dev/ng0n1 --namespace-id=1 --opcode=2 --data-len=512 --metadata-len=8 --cdw10=1000 --read -b 2>/dev/null | head -c 512 | cmp -s - $NVT_RIG_OUT/good.data"

rig_step "a block corrupted behind nvtd's back (on the device, PRCHK=0)"
LBA=4242
dd if=/dev/urandom of="$NVT_RIG_OUT/blk.bin" bs=512 count=1 status=none
soft "host writes LBA $LBA" dd if="$NVT_RIG_OUT/blk.bin" of="${DEV[1]}" bs=512 seek=$LBA oflag=direct status=none
"$PIBUF" --lba $LBA --corrupt guard > "$NVT_RIG_OUT/rot.bin"
head -c 512 "$NVT_RIG_OUT/rot.bin" > "$NVT_RIG_OUT/rot.data"
tail -c 8 "$NVT_RIG_OUT/rot.bin" > "$NVT_RIG_OUT/rot.md"
soft "a bad-guard block stored on /dev/ng0n1 with PRCHK=0" nvme io-passthru /dev/ng0n1 --namespace-id=1 \
	--opcode=1 --data-len=512 --metadata-len=8 --cdw10=$LBA --cdw12=0 --write \
	--input-file="$NVT_RIG_OUT/rot.data" --metadata="$NVT_RIG_OUT/rot.md"
soft "the host's read fails" fails dd if="${DEV[1]}" of=/dev/null bs=512 skip=$LBA count=1 iflag=direct status=none
soft "with the guard error (sc 0x82) in the host's log" bash -c "dmesg | grep -q 'sc 0x82'"
soft "and the LBA in nvtd's log" grep -Eq "(status 0x282 at LBA|guard check failed at LBA) $LBA" "$NVTD_LOG"
grep -E "0x282|check failed" "$NVTD_LOG" | tail -3

rig_step "a multi-block read over a rotten block: nvtd finds the LBA for the log and error log page"
ROT=5005
# Written first: a block QEMU 7.2 deallocated (an earlier discard) keeps zero PI, which fails a checked read (84h) by itself.
soft "host writes LBA 5000..5007" dd if=/dev/urandom of="${DEV[1]}" bs=4096 seek=625 count=1 oflag=direct status=none
"$PIBUF" --lba $ROT --corrupt guard > "$NVT_RIG_OUT/rot.bin"
head -c 512 "$NVT_RIG_OUT/rot.bin" > "$NVT_RIG_OUT/rot.data"
tail -c 8 "$NVT_RIG_OUT/rot.bin" > "$NVT_RIG_OUT/rot.md"
soft "a bad-guard block stored at LBA $ROT" nvme io-passthru /dev/ng0n1 --namespace-id=1 \
	--opcode=1 --data-len=512 --metadata-len=8 --cdw10=$ROT --cdw12=0 --write \
	--input-file="$NVT_RIG_OUT/rot.data" --metadata="$NVT_RIG_OUT/rot.md"
soft "an 8-block read from LBA 5000 fails" fails dd if="${DEV[1]}" of=/dev/null bs=4096 skip=625 count=1 iflag=direct status=none
soft "nvtd's log names LBA $ROT, not the command's first" grep -q "status 0x282 at LBA $ROT" "$NVTD_LOG"
CTRL=$(rig_nvme_ctrl_of "$NQN")
nvme error-log "/dev/$CTRL" -e 8 > "$NVT_RIG_OUT/error-log.txt" 2>&1 || true
soft "the error log page has LBA $ROT with status 0x282" bash -c \
	"grep -Eiq 'lba[[:space:]]*:[[:space:]]*(0x138d|5005)' $NVT_RIG_OUT/error-log.txt && grep -Eiq 'status_field[[:space:]]*:[[:space:]]*0x(4)?282|0x282' $NVT_RIG_OUT/error-log.txt"
head -30 "$NVT_RIG_OUT/error-log.txt"
soft "Verify (PRCHK=7) of the good block 1000 succeeds" nvme verify "${DEV[1]}" -n 1 -s 1000 -c 0 -p 7 -r 1000
soft "Verify of LBA $ROT fails" fails nvme verify "${DEV[1]}" -n 1 -s $ROT -c 0 -p 7 -r $ROT

rig_step "Write Zeroes, Deallocate, Compare, Copy, Flush from nvme-cli"
zeroes() {	# zeroes DEV LBA COUNT: the blocks read back (PI checked) as zeroes
	[ "$(dd if="$1" bs=512 skip="$2" count="$3" iflag=direct status=none | tr -d '\0' | wc -c)" = 0 ]
}
soft "write 16 blocks at 2000 and 3000" bash -c "dd if=/dev/urandom of=${DEV[1]} bs=512 seek=2000 count=16 oflag=direct status=none && dd if=/dev/urandom of=${DEV[1]} bs=512 seek=3000 count=16 oflag=direct status=none"
soft "Write Zeroes (PRACT=1) of 2000..2015" nvme write-zeroes "${DEV[1]}" -n 1 -s 2000 -c 15 -p 8
soft "... reads back as zeroes, PI checked" zeroes "${DEV[1]}" 2000 16
soft "DSM deallocate of 3000..3015" nvme dsm "${DEV[1]}" -n 1 --ad --slbs=3000 --blocks=16
soft "... reads back as zeroes" zeroes "${DEV[1]}" 3000 16
dd if="${DEV[1]}" of="$NVT_RIG_OUT/b1000.data" bs=512 skip=1000 count=1 iflag=direct status=none || true
soft "Compare with the stored block succeeds" nvme compare "${DEV[1]}" -n 1 -s 1000 -c 0 -z 512 -d "$NVT_RIG_OUT/b1000.data" -p 8
soft "Compare with other data fails" fails nvme compare "${DEV[1]}" -n 1 -s 1000 -c 0 -z 512 -d "$NVT_RIG_OUT/blk.bin" -p 8
soft "Copy 1000 -> 6000 (PI regenerated)" nvme copy "${DEV[1]}" -n 1 --sdlba=6000 --slbs=1000 --blocks=0 --prinfow=8 --prinfor=0
soft "... the copy reads back as the source" bash -c "dd if=${DEV[1]} bs=512 skip=6000 count=1 iflag=direct status=none | cmp -s - $NVT_RIG_OUT/b1000.data"
grep -E "status|at LBA" "$NVTD_LOG" | tail -5

rig_step "without metadata (ns6): Write Zeroes and Copy done by the device, Deallocate by nvtd unless DLFEAT has bit 3 (QEMU 7.2: 01h)"
z4k() {	# z4k DEV LBA COUNT: 4 KiB blocks read back as zeroes
	[ "$(dd if="$1" bs=4096 skip="$2" count="$3" iflag=direct status=none | tr -d '\0' | wc -c)" = 0 ]
}
dd if=/dev/urandom of="$NVT_RIG_OUT/six.bin" bs=4096 count=8 status=none
soft "write 3 x 8 blocks on ns6" bash -c "for l in 100 200 300; do dd if=$NVT_RIG_OUT/six.bin of=${DEV[6]} bs=4096 seek=\$l oflag=direct status=none || exit 1; done"
soft "Write Zeroes of 100..107" nvme write-zeroes "${DEV[6]}" -n 6 -s 100 -c 7
soft "... reads back as zeroes" z4k "${DEV[6]}" 100 8
soft "DSM deallocate of 200..207" nvme dsm "${DEV[6]}" -n 6 --ad --slbs=200 --blocks=8
soft "... reads back as zeroes" z4k "${DEV[6]}" 200 8
soft "Copy 300..307 -> 400" nvme copy "${DEV[6]}" -n 6 --sdlba=400 --slbs=300 --blocks=7
soft "... the copy reads back as the source" bash -c "dd if=${DEV[6]} bs=4096 skip=400 count=8 iflag=direct status=none | cmp -s - $NVT_RIG_OUT/six.bin"
soft "... and so does the device itself" bash -c "dd if=/dev/nvme0n6 bs=4096 skip=400 count=8 iflag=direct status=none | cmp -s - $NVT_RIG_OUT/six.bin"
soft "an overlapping Copy (done by nvtd) 400..407 -> 403" nvme copy "${DEV[6]}" -n 6 --sdlba=403 --slbs=400 --blocks=7
soft "... lands whole" bash -c "dd if=${DEV[6]} bs=4096 skip=403 count=8 iflag=direct status=none | cmp -s - $NVT_RIG_OUT/six.bin"

head -c 4096 "$NVT_RIG_OUT/six.bin" > "$NVT_RIG_OUT/six0.bin"
soft "ns6: Compare (done by the device) with the stored block succeeds" \
	nvme compare "${DEV[6]}" -n 6 -s 403 -c 0 -z 4096 -d "$NVT_RIG_OUT/six0.bin"
soft "ns6: Compare with other data fails with Compare Failure (85h)" bash -c \
	"! nvme compare ${DEV[6]} -n 6 -s 404 -c 0 -z 4096 -d $NVT_RIG_OUT/six0.bin > $NVT_RIG_OUT/cmp6.txt 2>&1 && grep -Eqi '0x285|compare.?fail' $NVT_RIG_OUT/cmp6.txt"
cat "$NVT_RIG_OUT/cmp6.txt" 2>/dev/null || true

rig_step "4096+16 (64-bit guard) and 4096+64 through io-passthru"
NG3=${DEV[3]/nvme/ng}
"$PIBUF" --lba 77 --bs 4096 --ms 16 --guard crc64 > "$NVT_RIG_OUT/g64.bin"
soft "ns3: PRACT=0 write, 64-bit guard" nvme io-passthru "$NG3" --namespace-id=3 --opcode=1 --data-len=4112 \
	--cdw10=77 --cdw12=$((7 << 26)) --cdw14=77 --cdw15=$((0xffff << 16)) --write --input-file="$NVT_RIG_OUT/g64.bin"
"$PIBUF" --lba 77 --bs 4096 --ms 16 --guard crc64 --corrupt guard > "$NVT_RIG_OUT/g64bad.bin"
soft "ns3: bad 64-bit guard refused" fails nvme io-passthru "$NG3" --namespace-id=3 --opcode=1 --data-len=4112 \
	--cdw10=77 --cdw12=$((7 << 26)) --cdw14=77 --cdw15=$((0xffff << 16)) --write --input-file="$NVT_RIG_OUT/g64bad.bin"
NG4=${DEV[4]/nvme/ng}
"$PIBUF" --lba 9 --bs 4096 --ms 64 --first > "$NVT_RIG_OUT/f64.bin"
soft "ns4: PRACT=0 write, PI first of 64" nvme io-passthru "$NG4" --namespace-id=4 --opcode=1 --data-len=4160 \
	--cdw10=9 --cdw12=$((7 << 26)) --cdw14=9 --cdw15=$((0xffff << 16)) --write --input-file="$NVT_RIG_OUT/f64.bin"
NG5=${DEV[5]/nvme/ng}
"$PIBUF" --lba 9 --bs 4096 --ms 64 > "$NVT_RIG_OUT/l64.bin"
soft "ns5: PRACT=0 write, PI last of 64" nvme io-passthru "$NG5" --namespace-id=5 --opcode=1 --data-len=4160 \
	--cdw10=9 --cdw12=$((7 << 26)) --cdw14=9 --cdw15=$((0xffff << 16)) --write --input-file="$NVT_RIG_OUT/l64.bin"
soft "ns5: reads back identical (data and metadata)" bash -c "nvme io-passthru $NG5 --namespace-id=5 --opcode=2 --data-len=4160 --cdw10=9 --cdw12=$((7 << 26)) --cdw14=9 --cdw15=$((0xffff << 16)) --read -b 2>/dev/null | cmp -s - $NVT_RIG_OUT/l64.bin"

rig_step "Flush, and data survives an nvtd restart"
soft "flush" nvme flush "${DEV[1]}" -n 1
dd if=/dev/urandom of="$NVT_RIG_OUT/keep.bin" bs=4096 count=8 status=none
soft "write 32 KiB on ns2" dd if="$NVT_RIG_OUT/keep.bin" of="${DEV[2]}" bs=4096 seek=100 oflag=direct status=none
soft "nvme disconnect" rig_nvme_disconnect "$NQN"
soft "nvtd stops cleanly" stop_nvtd
rig_check "nvtd restarted" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
D2=$(rig_wait_nvme_nsid 30 "$NQN" 2) || rig_fail "namespace 2 did not come back"
soft "ns2's blocks survived" bash -c "dd if=$D2 bs=4096 skip=100 count=8 iflag=direct status=none | cmp -s - $NVT_RIG_OUT/keep.bin"

rig_step "the device disappears (PCI hot removal): Namespace Not Ready, logged once"
PCI=$(basename "$(readlink -f /sys/class/nvme/nvme0/device)")
rig_info "local controller at PCI $PCI"
soft "the local controller is removed" bash -c "echo 1 > /sys/bus/pci/devices/$PCI/remove"
for _ in 1 2 3; do dd if="$D2" of=/dev/null bs=4096 skip=200 count=1 iflag=direct status=none 2>> "$NVT_RIG_OUT/gone.err" || true; done
cat "$NVT_RIG_OUT/gone.err"
soft "the host's reads fail" grep -q "error" "$NVT_RIG_OUT/gone.err"
grep -E "gone|Not Ready|status" "$NVTD_LOG" | tail -4
soft "nvtd said so once" test "$(grep -c 'the device is gone' "$NVTD_LOG")" = 1
soft "nvtd still runs" nvtd_alive
soft "nvme disconnect" rig_nvme_disconnect "$NQN"
soft "nvtd stops cleanly" stop_nvtd
[ "$FAILED" = 0 ] || rig_fail "$FAILED checks failed"
