#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Benchmarks nvtd against the kernel nvmet-rdma target in one rig VM boot: 4K randread/randwrite at QD1 and QD32, PI off and (nvtd) PI Type 1; IOPS, latency, target CPU and system calls per I/O.
#
# usage: bench-vs-kernel.sh [-d SECS] [--mtu BYTES] [--baseline BUILD_DIR] [--nobatch] [--strace SECS]
#   -d SECS               seconds per workload, depth and side (default 20)
#   --mtu BYTES           the soft-RoCE netdev's MTU (default 1500: RoCE MTU 1024; 9000: 4096)
#   --baseline BUILD_DIR  also run that build's nvtd ("before") in the same boot, for before/after ratios
#   --nobatch             also run this nvtd with batch_posts = false ("nobatch")
#   --strace SECS         length of the extra run per workload that counts nvtd's system calls (default 3; 0: none)
# The guest half is scenarios/bench-vs-kernel.sh (it explains the CPU and system call measurements).
# Results: console, $NVT_RIG_OUT/bench-summary.txt and bench-table.txt (see scenario.sh for NVT_RIG_OUT).
set -euo pipefail

RIG_DIR=$(cd "$(dirname "$0")" && pwd)
DURATION=20
STRACE_S=3
nvtd_sides=1
while [ $# -gt 0 ]; do
	case "$1" in
	-d|--duration) DURATION=$2; shift 2 ;;
	--mtu) export NVT_RIG_MTU=$2; shift 2 ;;
	--baseline) NVT_RIG_BENCH_BASELINE=$(cd "$2" && pwd); export NVT_RIG_BENCH_BASELINE; nvtd_sides=$((nvtd_sides + 1)); shift 2 ;;
	--nobatch) export NVT_RIG_BENCH_NOBATCH=1; nvtd_sides=$((nvtd_sides + 1)); shift ;;
	--strace) STRACE_S=$2; shift 2 ;;
	-h|--help) sed -n '/^# usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "bench-vs-kernel: unknown argument $1" >&2; exit 2 ;;
	esac
done
for v in "$DURATION" "$STRACE_S" "${NVT_RIG_MTU:-1500}"; do
	case "$v" in ''|*[!0-9]*) echo "bench-vs-kernel: -d, --mtu and --strace take whole numbers" >&2; exit 2 ;; esac
done
export NVT_RIG_BENCH_STRACE_S=$STRACE_S

# kernel: 2 workloads x 2 depths; each nvtd side: x 2 for PI, plus its strace runs and an idle
# look; plus boot, setup and connects under TCG
timeout_s=$((4 * DURATION + nvtd_sides * (8 * (DURATION + STRACE_S + 3) + 60) + 600))
# Under TCG the numbers follow the host's load: say what it was
echo "bench-vs-kernel: host load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
status=0
"$RIG_DIR/scenario.sh" -t "$timeout_s" bench-vs-kernel --duration "$DURATION" || status=$?
echo "bench-vs-kernel: host load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
