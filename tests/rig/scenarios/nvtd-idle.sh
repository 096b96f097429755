#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtd with a connected host: its CPU use when idle after an fio burst (pollers back asleep in epoll), from /proc/PID/stat over 10 s; then its system calls per 4 KiB I/O under load (strace -c -f).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:idle
CFG=$NVT_RIG_OUT/nvtd-idle.cfg
SECS=${NVT_RIG_IDLE_SECS:-10}

rig_begin
rig_check "rxe link up on the dummy netdev" rig_rxe_up
cat > "$CFG" <<CFG
log_level = "info";
threads = 2;
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; } );
subsystems = ( {
	nqn = "$NQN";
	allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "64M"; block_size = 512; } );
} );
CFG
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_must rig_nvme_host_up
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_nsid 30 "$NQN" 1) || rig_fail "no block device for $NQN"

rig_step "an fio burst, then idle"
rig_check "fio randread 3 s" fio --name=burst --filename="$DEV" --direct=1 --rw=randread \
	--bs=4k --iodepth=32 --numjobs=2 --ioengine=libaio --time_based --runtime=3 \
	--group_reporting --output="$NVT_RIG_OUT/fio-burst.txt"
sleep 2
ticks() { awk '{ print $14 + $15 }' "/proc/$NVTD_PID/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep "$SECS"
t1=$(ticks)
pct=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$SECS" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
rig_info "nvtd idle with a connected host: $((t1 - t0)) ticks of $hz/s in $SECS s = $pct% of one CPU"
echo "idle-cpu: $pct% ($((t1 - t0)) ticks in $SECS s)" > "$NVT_RIG_OUT/idle-cpu.txt"
rig_check "idle nvtd under 2% of a CPU" awk -v p="$pct" 'BEGIN { exit !(p < 2) }'

# System calls per I/O under load (strace slows nvtd down; the counts per I/O are what matters).
for rw in randread randwrite; do
	rig_step "system calls of nvtd per I/O, $rw QD32 x 2 under strace"
	strace -c -f -q -p "$NVTD_PID" -o "$NVT_RIG_OUT/strace-$rw.txt" &
	spid=$!
	sleep 1
	rig_check "fio $rw 4 s" fio --name=sc --filename="$DEV" --direct=1 --rw=$rw --bs=4k \
		--iodepth=32 --numjobs=2 --ioengine=libaio --time_based --runtime=4 \
		--group_reporting --output-format=terse --output="$NVT_RIG_OUT/fio-strace-$rw.terse"
	sleep 1
	kill -INT "$spid"; wait "$spid" || true
	ios=$(awk -F';' '{ print int(($6 + $47) / 4) }' "$NVT_RIG_OUT/fio-strace-$rw.terse")
	rig_info "$rw: $ios I/Os; system calls per I/O:"
	awk -v ios="$ios" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && ios > 0 {
		printf "      %-14s %8d  %.3f/IO\n", $NF, $4, $4 / ios }' "$NVT_RIG_OUT/strace-$rw.txt" |
		tee -a "$NVT_RIG_OUT/syscalls-per-io.txt"
done

rig_step "disconnect and stop"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
