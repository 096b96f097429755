#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Guest half of bench-vs-kernel.sh: fio 4K randread/randwrite QD32 x2 jobs against the kernel nvmet-rdma target and nvtd, IOPS and target CPU per I/O.
#
# usage (inside the VM, via ../bench-vs-kernel.sh): bench-vs-kernel.sh [--duration SECS]
#
# How "target CPU per I/O" is measured. Initiator, target and both ends of
# soft-RoCE share one kernel here, so target CPU cannot be read off directly:
#   busy    = delta of user+nice+system+irq+softirq+steal over all CPUs in
#             /proc/stat across the fio run (everything the VM did);
#   fio     = user+system time of the fio process tree (cutime+cstime of the
#             subshell that waited for fio, which has waited for its job processes);
#   target  = busy - fio.
# What is left is the target (nvmet-rdma kworkers and the RAM device; or nvtd),
# plus the rxe work and initiator completion softirqs not charged to fio. So it
# is an upper bound on the target's CPU, with the SAME initiator-side overhead
# on both sides, which makes the nvtd/kernel ratio meaningful. For nvtd we also
# print its exact process CPU (utime+stime from /proc/PID/stat). Ticks are
# 1/CLK_TCK s (10 ms), so keep runs >= 5 s. Under TCG all numbers are 10-50x
# worse than on hardware; only the ratio carries over.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

DURATION=20
while [ $# -gt 0 ]; do
	case "$1" in
	-d|--duration) DURATION=$2; shift 2 ;;
	*) echo "bench-vs-kernel: unknown argument $1" >&2; exit 2 ;;
	esac
done
SIZE_MIB=256
WORKLOADS="randread randwrite"
KERNEL_NQN=nqn.2026-11.io.nvt.rig:bench-kernel
NVTD_NQN=nqn.2026-11.io.nvt.rig:bench-nvtd
CLK_TCK=$(getconf CLK_TCK)
SUMMARY="$NVT_RIG_OUT/bench-summary.txt"
: > "$SUMMARY"
declare -A IOPS=() TARGET_US=() TOTAL_US=() PROC_US=()

# busy CPU ticks of the whole VM so far
cpu_busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# bench_fio SIDE DEV RW [PID]: run the fio job, set IOPS/TARGET_US/TOTAL_US[SIDE.RW];
# with PID (a user-space target) also PROC_US[SIDE.RW] from that process's CPU time.
bench_fio() {
	local side=$1 dev=$2 rw=$3 pid=${4:-} key="$1.$3"
	local out="$NVT_RIG_OUT/fio-$side-$rw"
	local busy0 busy1 proc0=0 proc1=0 fio_ticks ios runtime_ms iops
	[ -n "$pid" ] && proc0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	busy0=$(cpu_busy_ticks)
	# subshell: its cutime+cstime (fields 16, 17) are fio's whole process tree
	(
		fio --name="$side-$rw" --filename="$dev" --ioengine=libaio --direct=1 \
			--rw="$rw" --bs=4k --iodepth=32 --numjobs=2 --group_reporting \
			--time_based --runtime="$DURATION" --norandommap --randrepeat=0 \
			--eta=never --output-format=terse --terse-version=3 > "$out.terse" 2> "$out.err"
		awk '{ print $16 + $17 }' "/proc/$BASHPID/stat" > "$out.fio-ticks"
	) || { cat "$out.err"; rig_fail "fio $rw on $side"; }
	busy1=$(cpu_busy_ticks)
	[ -n "$pid" ] && proc1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	fio_ticks=$(cat "$out.fio-ticks")
	if [ "$rw" = randread ]; then
		ios=$(awk -F';' '{ print $6 / 4 }' "$out.terse")        # read KiB / 4 KiB
		runtime_ms=$(awk -F';' '{ print $9 }' "$out.terse")
	else
		ios=$(awk -F';' '{ print $47 / 4 }' "$out.terse")       # write KiB / 4 KiB
		runtime_ms=$(awk -F';' '{ print $50 }' "$out.terse")
	fi
	[ "${ios%.*}" -gt 0 ] || rig_fail "fio $rw on $side did no I/O"
	iops=$(awk -v n="$ios" -v ms="$runtime_ms" 'BEGIN { printf "%.0f", n * 1000 / ms }')
	IOPS[$key]=$iops
	TOTAL_US[$key]=$(awk -v t="$((busy1 - busy0))" -v f="$fio_ticks" -v hz="$CLK_TCK" -v n="$ios" \
		'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
	TARGET_US[$key]=$(awk -v t="$((busy1 - busy0))" -v f="$fio_ticks" -v hz="$CLK_TCK" -v n="$ios" \
		'BEGIN { d = t - f; if (d < 0) d = 0; printf "%.1f", d * 1e6 / hz / n }')
	[ -n "$pid" ] && PROC_US[$key]=$(awk -v t="$((proc1 - proc0))" -v hz="$CLK_TCK" -v n="$ios" \
		'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
	local line
	line=$(printf '%-6s %-9s IOPS %8s  target CPU/IO %8s us  (whole VM %s us/IO, fio %s ticks of %s busy)' \
		"$side" "$rw" "$iops" "${TARGET_US[$key]}" "${TOTAL_US[$key]}" "$fio_ticks" "$((busy1 - busy0))")
	[ -n "$pid" ] && line+="  nvtd process ${PROC_US[$key]} us/IO"
	echo "$line" | tee -a "$SUMMARY"
}

# bench_side SIDE NQN [PID]: connect to NQN, run every workload, disconnect
bench_side() {
	local side=$1 nqn=$2 pid=${3:-} dev rw
	rig_must rig_nvme_connect "$nqn" "$RIG_PORT" --nr-io-queues=2
	dev=$(rig_wait_nvme_ns 30 "$nqn") || rig_fail "$side: no namespace block device"
	rig_info "$side: $dev, $(blockdev --getsize64 "$dev") bytes"
	for rw in $WORKLOADS; do
		bench_fio "$side" "$dev" "$rw" "$pid"
	done
	rig_must rig_nvme_disconnect "$nqn"
}

bench_kernel_side() {
	rig_step "kernel nvmet-rdma, ${SIZE_MIB} MiB null_blk (memory_backed), ${DURATION}s per workload"
	rig_must kernel_nvmet_ram "$KERNEL_NQN" "$SIZE_MIB" "$RIG_PORT"
	bench_side kernel "$KERNEL_NQN"
	kernel_nvmet_teardown
}

# ======================================================================================
# nvtd side. Runs only when `nvtd --version` mentions rdma (the transport exists).
# Same fio jobs, same namespace size, same port, ram backend.
# ======================================================================================
bench_nvtd_side() {
	rig_step "nvtd"
	if ! nvtd_has_rdma; then
		echo "nvtd: not yet (no RDMA transport)" | tee -a "$SUMMARY"
		return 0
	fi
	local conf="$NVT_RIG_OUT/bench-nvtd.conf"
	cat > "$conf" <<-EOF
	# written by tests/rig/scenarios/bench-vs-kernel.sh
	listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; } );
	subsystems = ( {
	    nqn = "$NVTD_NQN";
	    allow_any_host = true;
	    namespaces = ( { nsid = 1; backend = "ram"; size = "${SIZE_MIB}M"; block_size = 512; } );
	} );
	EOF
	rig_must start_nvtd "$conf"
	rig_wait_for_rdma_listen 30 "$RIG_PORT" || rig_fail "nvtd does not listen on port $RIG_PORT"
	# how nvtd runs (its default threads setting: one I/O poll group per vCPU)
	grep -m1 'poll group' "$NVTD_LOG" | sed 's/^nvtd info: /nvtd: /' | tee -a "$SUMMARY" || true
	bench_side nvtd "$NVTD_NQN" "$NVTD_PID"
	rig_must stop_nvtd
}
# ======================================================================================

# print_ratios: nvtd/kernel for IOPS and for target CPU per I/O. The CPU ratio uses the
# same estimate on both sides (busy - fio, see the top of this file). The second CPU
# figure divides nvtd's own process CPU by the kernel's estimate: the kernel estimate
# also holds rxe and initiator softirq work, so that one is a lower bound.
print_ratios() {
	local rw
	for rw in $WORKLOADS; do
		if [ -z "${IOPS[nvtd.$rw]:-}" ] || [ -z "${IOPS[kernel.$rw]:-}" ]; then
			continue
		fi
		awk -v rw="$rw" -v ni="${IOPS[nvtd.$rw]}" -v ki="${IOPS[kernel.$rw]}" \
			-v nc="${TARGET_US[nvtd.$rw]}" -v kc="${TARGET_US[kernel.$rw]}" \
			-v np="${PROC_US[nvtd.$rw]:-}" 'BEGIN {
			cpu = "n/a"; proc = "n/a"
			if (kc > 0) cpu = sprintf("%.2f", nc / kc)
			if (kc > 0 && np != "") proc = sprintf("%.2f", np / kc)
			printf "ratio nvtd/kernel %-9s IOPS %.2f  target CPU/IO %s  (nvtd process CPU/IO vs kernel estimate %s)\n",
				rw, ni / ki, cpu, proc }' \
			>> "$SUMMARY"
	done
}

rig_begin
rig_step "setup: soft-RoCE and the kernel initiator"
rig_must rig_rxe_up
rig_must rig_nvme_host_up
bench_kernel_side
bench_nvtd_side
rig_step "summary (4k, QD32 x 2 jobs, ${DURATION}s each, $(nproc) vCPUs under TCG)"
print_ratios
cat "$SUMMARY"
