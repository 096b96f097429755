#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Connect/disconnect churn against one nvtd: NVT_RIG_CYCLES (default 50) cycles, then nvtd still serves, frees every controller, and neither RSS nor fds grow.
#
# Each cycle: nvme connect --nr-io-queues=2 (admin + 2 I/O queues, each an RDMA-CM
# connection and QP), wait for the namespace block device and a live controller,
# nvme disconnect, wait for the device to go. Cycle 1..10 warm up (heap, verbs caches);
# then nvtd's VmRSS and fd count after cycle 10 and after the last cycle are compared
# once nvtd has logged the last controller freed:
#   - RSS may grow by at most 2 MiB (NVT_RIG_CYCLES_RSS_SLACK_KIB). Why absolute, not %:
#     RSS includes the RAM namespace pages, which these cycles do not touch, so a
#     percentage would scale with the namespace, not with a leak. Why 2 MiB: every
#     cycle sets up 3 queues; an I/O queue registers (so touches) ~1 MiB of receive
#     capsules alone (128 x 8 KiB in-capsule data), plus its data buffers, QP and CQ.
#     Leaking one queue's buffers, or even a few KiB per cycle, over 40 cycles is
#     well above 2 MiB, while malloc arena and page-granularity noise stays below it
#     (measured: 0 KiB growth).
#   - fds must come back to the cycle-10 count (a leaked CM id or event channel is an fd).
# Then: the log shows one "controller N freed" per cycle, a final connect + dd read
# works, nvtd stops with status 0, and dmesg has no WARNING/BUG/call trace.
# Per-cycle connect/namespace/disconnect times (ms), RSS and fds: $NVT_RIG_OUT/cycles.csv.
# Under TCG a cycle takes ~2.5 s, so 50 cycles ~2.5 min.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:cycles
NS_MIB=64
CYCLES=${NVT_RIG_CYCLES:-50}
WARM=10
RSS_SLACK_KIB=${NVT_RIG_CYCLES_RSS_SLACK_KIB:-2048}
CFG=$NVT_RIG_OUT/nvtd-cycles.cfg
CSV=$NVT_RIG_OUT/cycles.csv

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_must rig_nvme_host_up
[ "$CYCLES" -gt "$WARM" ] || rig_fail "NVT_RIG_CYCLES must be > $WARM"

nvtd_serve_ram "$CFG" "$NQN" "$NS_MIB"

# freed_count: controllers of $NQN that nvtd has logged as freed
freed_count() { grep -Ec "$NQN: controller [0-9]+ freed" "$NVTD_LOG" || true; }
freed_at_least() { [ "$(freed_count)" -ge "$1" ]; }

# Under TCG every fork+exec costs ~0.1 s, so the loop below uses bash builtins
# where it can ($EPOCHREALTIME, reading /proc with read, globbing fds).
now() { echo "${EPOCHREALTIME/[.,]/}"; }    # microseconds
rss_kib() {    # read the whole file at once: a line-wise read of /proc can tear
	local s
	s=$(< "/proc/$NVTD_PID/status")
	[[ $s =~ VmRSS:[[:space:]]+([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}
fd_count() { local f=("/proc/$NVTD_PID/fd/"*); echo "${#f[@]}"; }
ns_gone() { ! test -e "$1"; }

# one_cycle N: connect, namespace up, controller live, disconnect, namespace gone;
# sets T_CONN, T_NS, T_DISC (ms) for the CSV
one_cycle() {
	local n=$1 dev t0 t1 t2 t3
	t0=$(now)
	nvme connect -t rdma -a "$RIG_ADDR" -s "$RIG_PORT" -n "$NQN" --nr-io-queues=2 > /dev/null ||
		{ echo "    cycle $n: connect failed"; return 1; }
	RIG_CONNECTED=("$NQN")
	t1=$(now)
	rig_wait_for 30 "namespace of $NQN" rig_nvme_ns_of "$NQN" || { echo "    cycle $n: no namespace"; return 1; }
	dev=$(rig_nvme_ns_of "$NQN")
	rig_nvme_ctrl_live "$NQN" || { echo "    cycle $n: controller $(rig_nvme_ctrl_state "$NQN")"; return 1; }
	t2=$(now)
	nvme disconnect -n "$NQN" > /dev/null || { echo "    cycle $n: disconnect failed"; return 1; }
	RIG_CONNECTED=()
	rig_wait_for 20 "$dev to disappear" ns_gone "$dev" || return 1
	t3=$(now)
	nvtd_alive || { echo "    cycle $n: nvtd is gone"; return 1; }
	T_CONN=$(((t1 - t0) / 1000)) T_NS=$(((t2 - t1) / 1000)) T_DISC=$(((t3 - t2) / 1000))
}

# settle N: wait until nvtd has freed N controllers (teardown is asynchronous to the host)
settle() { rig_wait_for 20 "nvtd to free controller $1" freed_at_least "$1"; }

rig_step "$CYCLES connect/disconnect cycles"
echo "cycle,connect_ms,namespace_ms,disconnect_ms,rss_kib,fds" > "$CSV"
t_start=$(now)
for ((i = 1; i <= CYCLES; i++)); do
	one_cycle "$i" || rig_fail "cycle $i of $CYCLES"
	if [ "$i" = "$WARM" ] || [ "$i" = "$CYCLES" ]; then
		rig_check "cycle $i: nvtd freed all $i controllers" settle "$i"
		sleep 1
	fi
	echo "$i,$T_CONN,$T_NS,$T_DISC,$(rss_kib),$(fd_count)" >> "$CSV"
	if [ "$i" = "$WARM" ]; then
		RSS_WARM=$(rss_kib) FDS_WARM=$(fd_count)
		rig_info "after cycle $i: RSS $RSS_WARM KiB, $FDS_WARM fds"
	fi
	[ $((i % 10)) != 0 ] ||
		rig_info "cycle $i: connect ${T_CONN} ms, namespace ${T_NS} ms, disconnect ${T_DISC} ms; RSS $(rss_kib) KiB, $(fd_count) fds"
done
RIG_PASSED=$((RIG_PASSED + 1))
per_cycle=$(awk -v a="$t_start" -v b="$(now)" -v n="$CYCLES" 'BEGIN { printf "%.2f", (b - a) / 1e6 / n }')
echo "PASS: $CYCLES cycles (${per_cycle}s per cycle)"
RSS_END=$(rss_kib) FDS_END=$(fd_count)
rig_info "after cycle $CYCLES: RSS $RSS_END KiB, $FDS_END fds (cycle $WARM: $RSS_WARM KiB, $FDS_WARM fds)"
rig_check "RSS growth cycle $WARM..$CYCLES $((RSS_END - RSS_WARM)) KiB <= $RSS_SLACK_KIB KiB" \
	test $((RSS_END - RSS_WARM)) -le "$RSS_SLACK_KIB"
rig_check "fd count back to $FDS_WARM" test "$FDS_END" -le "$FDS_WARM"
rig_check "nvtd logged $CYCLES controllers freed" test "$(freed_count)" -eq "$CYCLES"

rig_step "nvtd still serves"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device for $NQN"
rig_check "dd read of all ${NS_MIB} MiB, O_DIRECT" \
	dd if="$DEV" of=/dev/null bs=1M count="$NS_MIB" iflag=direct status=none
rig_check "dd write + read back 1 MiB" bash -c "
	head -c 1M /dev/urandom > /tmp/in && dd if=/tmp/in of=$DEV bs=64k oflag=direct status=none &&
	dd if=$DEV of=/tmp/out bs=64k count=16 iflag=direct status=none && cmp /tmp/in /tmp/out"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"

rig_step "stop"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
