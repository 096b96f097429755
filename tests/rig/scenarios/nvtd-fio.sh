#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# fio data integrity through nvtd: randwrite + crc32c verify over the whole namespace, QD32, 2 jobs on 2 I/O queues, then a verify-only read pass.
#
# Namespace: NVT_RIG_FIO_NS_MIB (default 64) MiB of RAM, 512-byte blocks.
# Pass 1: fio randwrite, bs=NVT_RIG_FIO_BS (default 4k), iodepth 32, numjobs 2; job N
#         covers [N*half, (N+1)*half) (size + offset_increment), so the two jobs
#         together write every block exactly once (randommap), each block with a
#         crc32c header, then read it all back and verify (do_verify).
# Pass 2: the same job with --verify_only: no writes, every block is read again and
#         checked against the same (seeded, repeatable) pattern.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:fio
NS_MIB=${NVT_RIG_FIO_NS_MIB:-64}
BS=${NVT_RIG_FIO_BS:-4k}
HALF_MIB=$((NS_MIB / 2))
CFG=$NVT_RIG_OUT/nvtd-fio.cfg

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up on the dummy netdev" rig_rxe_up

nvtd_serve_ram "$CFG" "$NQN" "$NS_MIB"
rig_check "nvme connect --nr-io-queues=2" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device for $NQN"
CTRL=$(rig_nvme_ctrl_of "$NQN") || rig_fail "no controller for $NQN"
rig_check "$DEV is $NS_MIB MiB" test "$(blockdev --getsize64 "$DEV")" -eq $((NS_MIB * 1024 * 1024))
rig_check "2 I/O queues" test "$(cat "/sys/class/nvme/$CTRL/queue_count")" -eq 3

FIO_JOB=(--name=nvtd-fio --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite
	--bs="$BS" --iodepth=32 --numjobs=2 --size="${HALF_MIB}M" --offset_increment="${HALF_MIB}M"
	--randrepeat=1 --verify=crc32c --verify_fatal=1 --group_reporting --eta=never)

# fio_pass NAME DESC fio-options...: run fio, fail with its output on error
fio_pass() {
	local name=$1 desc=$2 out="$NVT_RIG_OUT/fio-$1.txt"
	shift 2
	echo "+ fio ${FIO_JOB[*]} $*"
	if ! fio "${FIO_JOB[@]}" "$@" --output="$out"; then
		cat "$out"
		rig_fail "$desc"
	fi
	grep -E 'IOPS|err=|verify' "$out" | sed 's/^/    /'
	rig_check "$desc: no errors" grep -q 'err= 0' "$out"
}

rig_step "pass 1: randwrite $BS QD32 x 2 jobs over all ${NS_MIB} MiB, crc32c, read back and verify"
fio_pass write "randwrite + verify" --do_verify=1
# both jobs together wrote the whole namespace: WRITE: ... io=NNMiB
written=$(sed -n 's/^ *WRITE: bw=.*io=\([0-9.]*\)MiB.*/\1/p' "$NVT_RIG_OUT/fio-write.txt")
rig_check "wrote ${NS_MIB} MiB in total (fio says ${written:-?} MiB)" test "${written%.*}" = "$NS_MIB"

rig_step "pass 2: verify-only read of all ${NS_MIB} MiB"
fio_pass verify-only "verify_only read pass" --verify_only
read_mib=$(sed -n 's/^ *READ: bw=.*io=\([0-9.]*\)MiB.*/\1/p' "$NVT_RIG_OUT/fio-verify-only.txt")
rig_check "read back ${NS_MIB} MiB (fio says ${read_mib:-?} MiB)" test "${read_mib%.*}" = "$NS_MIB"

rig_step "disconnect and stop"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
