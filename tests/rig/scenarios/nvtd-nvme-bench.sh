#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The same fio job (4 KiB random read and write, QD32) on QEMU's emulated NVMe three ways: locally, through kernel nvmet-rdma (bdev namespace), through nvtd's nvme backend; IOPS and ratios.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

DURATION=${NVT_RIG_BENCH_S:-10}
KNQN=nqn.2026-12.io.nvt.rig:nvme-bench-kernel
NQN=nqn.2026-12.io.nvt.rig:nvme-bench-nvtd
CFG=$NVT_RIG_OUT/nvtd-nvme-bench.cfg
SUMMARY=$NVT_RIG_OUT/bench-summary.txt
declare -A IOPS=()
: > "$SUMMARY"

run_fio() {	# run_fio WAY DEV RW
	local out="$NVT_RIG_OUT/fio-$1-$3.json"
	fio --name="$1-$3" --filename="$2" --ioengine=libaio --direct=1 --rw="$3" --bs=4k \
		--iodepth=32 --numjobs=1 --size=128M --time_based --runtime="$DURATION" \
		--ramp_time=2 --group_reporting --eta=never --output-format=json --output="$out" || return 1
	IOPS[$1-$3]=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1]))['jobs'][0]; print(int(j['read']['iops'] + j['write']['iops']))" "$out")
	rig_info "$1 $3: ${IOPS[$1-$3]} IOPS"
}

rig_begin
rig_must modprobe nvme
rig_check "the local namespace" rig_wait_for 30 /dev/nvme0n1 test -b /dev/nvme0n1
rig_check "rxe link up" rig_rxe_up
# Written once first: QEMU reads never-written blocks without touching the image.
rig_check "fill the device" dd if=/dev/zero of=/dev/nvme0n1 bs=1M count=128 oflag=direct status=none

rig_step "local: the kernel's NVMe driver"
for rw in randread randwrite; do rig_check "local $rw" run_fio local /dev/nvme0n1 "$rw"; done

rig_step "kernel nvmet-rdma, bdev namespace on /dev/nvme0n1"
rig_must modprobe -a nvmet nvmet-rdma
S=$NVMET_CFG/subsystems/$KNQN
rig_must mkdir "$S"
RIG_KNVMET_SUBSYS+=("$S")
rig_must bash -c "echo 1 > $S/attr_allow_any_host && mkdir $S/namespaces/1 && echo -n /dev/nvme0n1 > $S/namespaces/1/device_path && echo 1 > $S/namespaces/1/enable"
P=$NVMET_CFG/ports/1
rig_must mkdir "$P"
RIG_KNVMET_PORTS+=("$P")
rig_must bash -c "echo rdma > $P/addr_trtype && echo ipv4 > $P/addr_adrfam && echo $RIG_ADDR > $P/addr_traddr && echo $RIG_PORT > $P/addr_trsvcid && ln -s $S $P/subsystems/$KNQN"
RIG_KNVMET_LINKS+=("$P/subsystems/$KNQN")
rig_check "kernel target listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "connect" rig_nvme_connect "$KNQN" "$RIG_PORT" --nr-io-queues=2
KDEV=$(rig_wait_nvme_ns 30 "$KNQN") || rig_fail "no kernel-target namespace"
for rw in randread randwrite; do rig_check "nvmet $rw" run_fio nvmet "$KDEV" "$rw"; done
rig_check "disconnect" rig_nvme_disconnect "$KNQN"
kernel_nvmet_teardown

rig_step "nvtd, nvme backend on /dev/ng0n1"
cat > "$CFG" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; } );
threads = 2;
subsystems = ( { nqn = "$NQN"; allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "nvme"; device = "/dev/ng0n1"; } ); } );
CFG
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
NDEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no nvtd namespace"
for rw in randread randwrite; do rig_check "nvtd $rw" run_fio nvtd "$NDEV" "$rw"; done
rig_check "disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly" stop_nvtd

rig_step "summary (TCG: only the ratios carry over)"
for rw in randread randwrite; do
	python3 - "$rw" "${IOPS[local-$rw]}" "${IOPS[nvmet-$rw]}" "${IOPS[nvtd-$rw]}" <<'PY' | tee -a "$SUMMARY"
import sys
rw, local, kern, nvtd = sys.argv[1], *map(int, sys.argv[2:])
print(f"{rw:9s} local {local:6d}  nvmet-rdma {kern:6d} ({kern / local:.2f}x local)  "
      f"nvtd {nvtd:6d} ({nvtd / local:.2f}x local, {nvtd / kern:.2f}x nvmet)")
PY
done
