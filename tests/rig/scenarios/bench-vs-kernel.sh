#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Guest half of bench-vs-kernel.sh: fio 4K randread/randwrite at QD1 and QD32 against kernel nvmet-rdma and nvtd (PI off, and PI Type 1 with PRACT=1); IOPS, latency, target CPU and system calls per I/O.
#
# usage (inside the VM, via ../bench-vs-kernel.sh): bench-vs-kernel.sh [--duration SECS]
#
# Environment (NVT_RIG_* pass through from the host):
#   NVT_RIG_BENCH_BASELINE  a second build dir: its nvtd runs too, as side "before", in the same boot
#   NVT_RIG_BENCH_NOBATCH=1 also run this nvtd with `batch_posts = false` (side "nobatch")
#   NVT_RIG_BENCH_STRACE_S  seconds of the extra run that counts nvtd's system calls (default 3; 0: none)
#   NVT_RIG_BENCH_QDS       queue depths (default "32 1"); QD32 runs 2 jobs, QD1 one
#   NVT_RIG_MTU             the soft-RoCE netdev's MTU (lib.sh; default 1500)
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
#
# System calls per I/O: a separate short run of the same job with nvtd under
# `strace -c -f` (every thread), calls divided by that run's I/Os. strace slows
# nvtd down a lot, so that run's IOPS are not reported; the count per I/O is what
# the code does per I/O, which batching changes. The kernel target makes none.
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
QDS=${NVT_RIG_BENCH_QDS:-32 1}
STRACE_S=${NVT_RIG_BENCH_STRACE_S:-3}
BASELINE=${NVT_RIG_BENCH_BASELINE:-}
KERNEL_NQN=nqn.2026-11.io.nvt.rig:bench-kernel
NVTD_NQN=nqn.2026-11.io.nvt.rig:bench-nvtd
CLK_TCK=$(getconf CLK_TCK)
SUMMARY="$NVT_RIG_OUT/bench-summary.txt"
TABLE="$NVT_RIG_OUT/bench-table.txt"
: > "$SUMMARY"
: > "$TABLE"
declare -A IOPS=() LAT_US=() TARGET_US=() PROC_US=() SYSCALLS=() SLEEPS=()
SIDES=()

# busy CPU ticks of the whole VM so far
cpu_busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# run_fio NAME DEV RW QD SECS OUT: the job, terse output in OUT.terse; OUT.fio-ticks its CPU
run_fio() {
	local name=$1 dev=$2 rw=$3 qd=$4 secs=$5 out=$6 jobs=2
	[ "$qd" -gt 1 ] || jobs=1
	# subshell: its cutime+cstime (fields 16, 17) are fio's whole process tree
	(
		fio --name="$name" --filename="$dev" --ioengine=libaio --direct=1 \
			--rw="$rw" --bs=4k --iodepth="$qd" --numjobs="$jobs" --group_reporting \
			--time_based --runtime="$secs" --norandommap --randrepeat=0 \
			--eta=never --output-format=terse --terse-version=3 > "$out.terse" 2> "$out.err"
		awk '{ print $16 + $17 }' "/proc/$BASHPID/stat" > "$out.fio-ticks"
	) || { cat "$out.err"; rig_fail "fio $rw QD$qd on $name"; }
}

# fio_ios RW OUT: I/Os done (KiB / 4); fio_ms RW OUT: runtime; fio_lat RW OUT: mean total latency, us
# (terse v3: read KiB $6, runtime $9, lat mean $40; write KiB $47, runtime $50, lat mean $81)
fio_ios() { awk -F';' -v rw="$1" '{ print (rw == "randread" ? $6 : $47) / 4 }' "$2.terse"; }
fio_ms() { awk -F';' -v rw="$1" '{ print rw == "randread" ? $9 : $50 }' "$2.terse"; }
fio_lat() { awk -F';' -v rw="$1" '{ printf "%.1f", rw == "randread" ? $40 : $81 }' "$2.terse"; }

# nvtd_sleeps PID: voluntary context switches of all of nvtd's threads (each a sleep in
# epoll_wait or a lock: at QD 1, a lone command that found the poller asleep)
nvtd_sleeps() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '$1 == "voluntary_ctxt_switches:" { s += $2 } END { print s + 0 }'
}

# bench_fio SIDE DEV RW QD PI [PID]: one measured run; sets IOPS/LAT_US/TARGET_US[/PROC_US][KEY]
bench_fio() {
	local side=$1 dev=$2 rw=$3 qd=$4 pi=$5 pid=${6:-} key="$1.$3.$4.$5"
	local out="$NVT_RIG_OUT/fio-$side-$rw-qd$qd-$pi"
	local busy0 busy1 proc0=0 proc1=0 fio_ticks ios ms sw0=0 sw1=0
	[ -n "$pid" ] && proc0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	[ -n "$pid" ] && sw0=$(nvtd_sleeps "$pid")
	busy0=$(cpu_busy_ticks)
	run_fio "$side-$rw" "$dev" "$rw" "$qd" "$DURATION" "$out"
	busy1=$(cpu_busy_ticks)
	[ -n "$pid" ] && proc1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	[ -n "$pid" ] && sw1=$(nvtd_sleeps "$pid")
	fio_ticks=$(cat "$out.fio-ticks")
	ios=$(fio_ios "$rw" "$out")
	ms=$(fio_ms "$rw" "$out")
	[ "${ios%.*}" -gt 0 ] || rig_fail "fio $rw QD$qd on $side did no I/O"
	IOPS[$key]=$(awk -v n="$ios" -v ms="$ms" 'BEGIN { printf "%.0f", n * 1000 / ms }')
	LAT_US[$key]=$(fio_lat "$rw" "$out")
	TARGET_US[$key]=$(awk -v t="$((busy1 - busy0))" -v f="$fio_ticks" -v hz="$CLK_TCK" -v n="$ios" \
		'BEGIN { d = t - f; if (d < 0) d = 0; printf "%.1f", d * 1e6 / hz / n }')
	[ -n "$pid" ] && PROC_US[$key]=$(awk -v t="$((proc1 - proc0))" -v hz="$CLK_TCK" -v n="$ios" \
		'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
	[ -n "$pid" ] && SLEEPS[$key]=$(awk -v s="$((sw1 - sw0))" -v n="$ios" 'BEGIN { printf "%.2f", s / n }')
	if [ -n "$pid" ] && [ "$STRACE_S" -gt 0 ]; then
		bench_syscalls "$key" "$dev" "$rw" "$qd" "$pid"
	fi
	printf '%-8s %-9s QD%-3s PI %-4s IOPS %8s  lat %8s us  target CPU/IO %8s us  nvtd CPU/IO %8s us  syscalls/IO %6s  sleeps/IO %5s\n' \
		"$side" "$rw" "$qd" "$pi" "${IOPS[$key]}" "${LAT_US[$key]}" "${TARGET_US[$key]}" \
		"${PROC_US[$key]:--}" "${SYSCALLS[$key]:--}" "${SLEEPS[$key]:--}" | tee -a "$SUMMARY"
}

# bench_syscalls KEY DEV RW QD PID: SYSCALLS[KEY] from a short run under strace -c -f
bench_syscalls() {
	local key=$1 dev=$2 rw=$3 qd=$4 pid=$5 out="$NVT_RIG_OUT/strace-${1//./-}" spid calls ios
	strace -c -f -p "$pid" -o "$out.txt" 2> "$out.err" &
	spid=$!
	sleep 1		# strace attaches to every thread before the run starts
	run_fio "strace-$rw" "$dev" "$rw" "$qd" "$STRACE_S" "$out"
	kill -INT "$spid"
	wait "$spid" || true
	ios=$(fio_ios "$rw" "$out")
	# the "total" line: % time, seconds, usecs/call, calls, [errors,] total
	calls=$(awk '$NF == "total" { print $4 }' "$out.txt")
	SYSCALLS[$key]=$(awk -v c="${calls:-0}" -v n="$ios" 'BEGIN { if (n > 0) printf "%.2f", c / n; else print "n/a" }')
	# At QD 1 each command is a lone one: also a timed trace (-ttt -T) of the same run, so
	# the wake-up path (epoll_wait returning, the channel's read, the post's write, the
	# re-arm) can be read per I/O; strace-KEY.trace, and a digest in the summary
	[ "$qd" = 1 ] && bench_trace "$key" "$dev" "$rw" "$qd" "$pid"
	return 0
}

# bench_trace KEY DEV RW QD PID: strace -f -ttt -T of a short run; per I/O: calls of each
# kind and the time spent in them (epoll_wait's is sleep)
bench_trace() {
	local key=$1 dev=$2 rw=$3 qd=$4 pid=$5 out="$NVT_RIG_OUT/strace-${1//./-}" spid ios
	strace -f -ttt -T -p "$pid" -o "$out.trace" 2> "$out.trace-err" &
	spid=$!
	sleep 1
	run_fio "trace-$rw" "$dev" "$rw" "$qd" "$STRACE_S" "$out-trace"
	kill -INT "$spid"
	wait "$spid" || true
	ios=$(fio_ios "$rw" "$out-trace")
	awk -v n="$ios" -v key="$key" '
		match($0, /[a-z_0-9]+\(/) {
			name = substr($0, RSTART, RLENGTH - 1)
			c[name]++
			if (match($0, /<[0-9.]+>$/)) t[name] += substr($0, RSTART + 1, RLENGTH - 2)
		}
		END {
			if (n <= 0) { print key ": trace: no I/Os"; exit }
			line = key ": per I/O (" n " I/Os under strace -T):"
			for (k in c) line = line sprintf(" %s %.2f (%.0f us)", k, c[k] / n, t[k] * 1e6 / n)
			print line
		}' "$out.trace" | tee -a "$SUMMARY"
}

# bench_side SIDE NQN PLAIN_NSID PI_NSID [PID]: connect, every workload and depth, disconnect
bench_side() {
	local side=$1 nqn=$2 plain=$3 pins=$4 pid=${5:-} dev pidev="" rw qd
	rig_must rig_nvme_connect "$nqn" "$RIG_PORT" --nr-io-queues=2
	dev=$(rig_wait_nvme_nsid 30 "$nqn" "$plain") || rig_fail "$side: no namespace $plain"
	if [ -n "$pins" ]; then
		pidev=$(rig_wait_nvme_nsid 30 "$nqn" "$pins") || rig_fail "$side: no namespace $pins"
	fi
	rig_info "$side: $dev, $(blockdev --getsize64 "$dev") bytes${pidev:+; PI: $pidev}"
	SIDES+=("$side")
	for qd in $QDS; do
		for rw in $WORKLOADS; do
			bench_fio "$side" "$dev" "$rw" "$qd" off "$pid"
			[ -z "$pidev" ] || bench_fio "$side" "$pidev" "$rw" "$qd" on "$pid"
		done
	done
	rig_must rig_nvme_disconnect "$nqn"
}

bench_kernel_side() {
	rig_step "kernel nvmet-rdma, ${SIZE_MIB} MiB null_blk (memory_backed), ${DURATION}s per workload"
	rig_must kernel_nvmet_ram "$KERNEL_NQN" "$SIZE_MIB" "$RIG_PORT"
	bench_side kernel "$KERNEL_NQN" 1 ""
	kernel_nvmet_teardown
}

# bench_nvtd_side SIDE BUILD_DIR [LISTENER_SETTINGS]: nvtd of BUILD_DIR with a plain and a PI
# Type 1 namespace (512+8: over rxe the host cannot carry metadata, so it sends PRACT=1 and
# nvtd inserts and strips the PI)
bench_nvtd_side() {
	local side=$1 build=$2 extra=${3:-}
	rig_step "nvtd ($side: $build${extra:+, $extra})"
	if ! NVT_BUILD=$build nvtd_has_rdma; then
		echo "$side: no nvtd with RDMA in $build" | tee -a "$SUMMARY"
		return 0
	fi
	local conf="$NVT_RIG_OUT/bench-$side.conf"
	cat > "$conf" <<-EOF
	# written by tests/rig/scenarios/bench-vs-kernel.sh
	listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; $extra } );
	subsystems = ( {
	    nqn = "$NVTD_NQN";
	    allow_any_host = true;
	    namespaces = (
	        { nsid = 1; backend = "ram"; size = "${SIZE_MIB}M"; block_size = 512; },
	        { nsid = 2; backend = "ram"; size = "${SIZE_MIB}M"; block_size = 512; pi = { type = 1; }; }
	    );
	} );
	EOF
	NVT_BUILD=$build rig_must start_nvtd "$conf"
	rig_wait_for_rdma_listen 30 "$RIG_PORT" || rig_fail "nvtd does not listen on port $RIG_PORT"
	# how nvtd runs (its default threads setting: one I/O poll group per vCPU)
	grep -m1 'poll group' "$NVTD_LOG" | sed "s/^nvtd info: /$side: /" | tee -a "$SUMMARY" || true
	bench_side "$side" "$NVTD_NQN" 1 2 "$NVTD_PID"
	bench_idle_cpu "$side"
	rig_must stop_nvtd
}

# bench_idle_cpu SIDE: nvtd's CPU over 5 s with a host connected and no I/O
bench_idle_cpu() {
	local side=$1 t0 t1
	rig_must rig_nvme_connect "$NVTD_NQN" "$RIG_PORT" --nr-io-queues=2
	rig_wait_nvme_nsid 30 "$NVTD_NQN" 1 > /dev/null || rig_fail "$side: no namespace 1"
	sleep 1
	t0=$(awk '{ print $14 + $15 }' "/proc/$NVTD_PID/stat")
	sleep 5
	t1=$(awk '{ print $14 + $15 }' "/proc/$NVTD_PID/stat")
	printf '%-8s idle, host connected: nvtd CPU %s%% over 5 s\n' "$side" \
		"$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t * 100 / hz / 5 }')" |
		tee -a "$SUMMARY"
	rig_must rig_nvme_disconnect "$NVTD_NQN"
}

# ratio A B: A/B to 2 places, or n/a
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# print_table: one markdown row per side, workload, depth and PI, with ratios to the kernel
# (PI off, same workload and depth) and, for PI on, to the same side's PI off
print_table() {
	local side rw qd pi key kkey okey
	{
		echo "| side | workload | QD | PI | IOPS | / kernel | PI on / off | lat us | / kernel | target CPU/IO us | / kernel | nvtd CPU/IO us | syscalls/IO |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		for qd in $QDS; do
			for rw in $WORKLOADS; do
				for side in "${SIDES[@]}"; do
					for pi in off on; do
						key="$side.$rw.$qd.$pi"
						[ -n "${IOPS[$key]:-}" ] || continue
						kkey="kernel.$rw.$qd.off"
						okey="$side.$rw.$qd.off"
						printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
							"$side" "$rw" "$qd" "$pi" "${IOPS[$key]}" \
							"$(ratio "${IOPS[$key]}" "${IOPS[$kkey]:-}")" \
							"$([ "$pi" = on ] && ratio "${IOPS[$key]}" "${IOPS[$okey]:-}" || echo -)" \
							"${LAT_US[$key]}" "$(ratio "${LAT_US[$key]}" "${LAT_US[$kkey]:-}")" \
							"${TARGET_US[$key]}" "$(ratio "${TARGET_US[$key]}" "${TARGET_US[$kkey]:-}")" \
							"${PROC_US[$key]:--}" "${SYSCALLS[$key]:--}"
					done
				done
			done
		done
	} > "$TABLE"
}

rig_begin
rig_step "setup: soft-RoCE and the kernel initiator"
rig_must rig_rxe_up
rig_must rig_nvme_host_up
echo "fabric: $RIG_NETDEV MTU $(cat "/sys/class/net/$RIG_NETDEV/mtu"), $RIG_RDMA_DEV active_mtu $(rig_rxe_active_mtu)" |
	tee -a "$SUMMARY"
bench_kernel_side
[ -z "$BASELINE" ] || bench_nvtd_side before "$BASELINE"
# This tree at its fastest: zero-copy writes to its ram namespaces (off by default, see README).
bench_nvtd_side nvtd "$NVT_BUILD" "zero_copy = true;"
[ "${NVT_RIG_BENCH_NOBATCH:-0}" != 1 ] || bench_nvtd_side nobatch "$NVT_BUILD" "batch_posts = false; zero_copy = true;"
rig_step "summary (4k; QD32: 2 jobs, QD1: 1 job; ${DURATION}s each; $(nproc) vCPUs under TCG)"
print_table
cat "$SUMMARY"
tee -a "$SUMMARY" < "$TABLE"
