#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Benchmarks nvtd against the kernel nvmet-rdma target in one rig VM boot: 4K randread/randwrite, QD32, 2 jobs; IOPS and target CPU per I/O.
#
# usage: bench-vs-kernel.sh [-d SECS]    (seconds per workload and side, default 20)
# The guest half is scenarios/bench-vs-kernel.sh (it explains the CPU measurement).
# Results: console and $NVT_RIG_OUT/bench-summary.txt (see scenario.sh for NVT_RIG_OUT).
set -euo pipefail

RIG_DIR=$(cd "$(dirname "$0")" && pwd)
DURATION=20
while [ $# -gt 0 ]; do
	case "$1" in
	-d|--duration) DURATION=$2; shift 2 ;;
	-h|--help) sed -n '/^# usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "bench-vs-kernel: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$DURATION" in ''|*[!0-9]*) echo "bench-vs-kernel: -d needs whole seconds" >&2; exit 2 ;; esac

# 2 sides x 2 workloads of DURATION, plus boot, setup and connects under TCG
timeout_s=$((4 * DURATION + 600))
# Under TCG the numbers follow the host's load: say what it was
echo "bench-vs-kernel: host load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
status=0
"$RIG_DIR/scenario.sh" -t "$timeout_s" bench-vs-kernel --duration "$DURATION" || status=$?
echo "bench-vs-kernel: host load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
