#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# ANA multipath from the real Linux host: two listeners (192.0.2.1 in group 1, 192.0.2.2 in group 2), native multipath shows one block device over two paths with their ANA states; fio with verify runs while nvtctl makes group 1 inaccessible (I/O moves to path 2, fio never fails) and then optimized again (I/O moves back).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:ana
ADDR2=192.0.2.2
NS_MIB=64
CFG=$NVT_RIG_OUT/nvtd-ana.cfg
SOCK=/run/nvtd-ana.sock	# a unix socket cannot live on the 9p share

ctl() { "$NVT_BUILD/nvtctl" -s "$SOCK" "$@"; }

# ctrl_at ADDR: the controller (nvmeX) of $NQN connected to ADDR
ctrl_at() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
		grep -q "traddr=$1," "$c/address" 2>/dev/null && { basename "$c"; return 0; }
	done
	return 1
}

# path_of CTRL: the path device (nvmeXcYnZ) of namespace 1 through controller CTRL
path_of() {
	local p
	for p in /sys/class/nvme/"$1"/nvme*c*n*; do
		[ -e "$p/ana_state" ] && { basename "$p"; return 0; }
	done
	return 1
}

ana_state_is() { [ "$(cat "/sys/block/$1/ana_state" 2>/dev/null)" = "$2" ]; }
# ios CTRL: reads + writes nvtd completed on the I/O queues of controller CTRL (nvmeX), from nvtctl stats
ios() {
	ctl stats "$NQN" --json | python3 -c '
import json, sys
c = int(sys.argv[1])
print(sum(q["reads"] + q["writes"] for q in json.load(sys.stdin)["queues"] if q["cntlid"] == c))' \
		"$(cat "/sys/class/nvme/$1/cntlid")"
}

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
# Both addresses before rxe0 exists (rig_rxe_up keeps a netdev it finds): rxe then takes both
# GIDs at once, rather than the second some 15 s after it is added.
rig_step "dummy netdev $RIG_NETDEV with $RIG_ADDR and $ADDR2"
if ! ip link show "$RIG_NETDEV" > /dev/null 2>&1; then
	rig_check "modprobe dummy" modprobe dummy
	rig_check "ip link add $RIG_NETDEV" ip link add "$RIG_NETDEV" type dummy
	rig_check "ip addr add $RIG_ADDR" ip addr add "$RIG_ADDR/$RIG_PREFIX" dev "$RIG_NETDEV"
fi
ip addr show dev "$RIG_NETDEV" | grep -q "inet $ADDR2/" ||
	rig_check "ip addr add $ADDR2" ip addr add "$ADDR2/$RIG_PREFIX" dev "$RIG_NETDEV"
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_check "rxe0 has the GID of $ADDR2" rig_wait_for 20 "GID of $ADDR2" rig_rxe_gid_ready c000:0202

cat > "$CFG" <<CFG
control_socket = "$SOCK";
listeners = (
	{ transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; ana_group = 1; },
	{ transport = "rdma"; address = "$ADDR2"; port = $RIG_PORT; ana_group = 2; }
);
ana_groups = ( { id = 2; state = "non-optimized"; } );
subsystems = ( {
	nqn = "$NQN";
	allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "${NS_MIB}M"; block_size = 512; } );
} );
CFG
rig_step "nvtd with two listeners in two ANA groups"
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "nvtd listens on both addresses" rig_wait_for 20 "two RDMA listeners" \
	sh -c "[ \$(rdma resource show cm_id 2>/dev/null | grep 'state LISTEN' | grep -c ':$RIG_PORT ') -ge 2 ]"

rig_step "connect through both paths"
rig_check "nvme connect -a $RIG_ADDR" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
rig_check "nvme connect -a $ADDR2" nvme connect -t rdma -a "$ADDR2" -s "$RIG_PORT" -n "$NQN" --nr-io-queues=2
rig_check "native multipath is on" grep -qx Y /sys/module/nvme_core/parameters/multipath
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device for $NQN"
C1=$(ctrl_at "$RIG_ADDR") || rig_fail "no controller at $RIG_ADDR"
C2=$(ctrl_at "$ADDR2") || rig_fail "no controller at $ADDR2"
rig_info "$DEV: $C1 at $RIG_ADDR, $C2 at $ADDR2"
heads=0 both=0
for s in /sys/class/nvme-subsystem/nvme-subsys*; do
	[ "$(cat "$s/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
	[ -e "$s/$C1" ] && [ -e "$s/$C2" ] && both=1
	for b in "$s"/nvme*n*; do [ -e "$b" ] && heads=$((heads + 1)); done
done
rig_check "two controllers ($C1, $C2) in one host subsystem" test "$C1" != "$C2" -a "$both" = 1
rig_check "one multipath block device ($heads head(s))" test "$heads" = 1
rig_wait_for 20 "path devices" sh -c "ls -d /sys/class/nvme/$C1/nvme*c*n* /sys/class/nvme/$C2/nvme*c*n*" > /dev/null ||
	rig_fail "no path devices under $C1 and $C2"
P1=$(path_of "$C1") || rig_fail "no path of $C1"
P2=$(path_of "$C2") || rig_fail "no path of $C2"
rig_info "paths: $P1 ($(cat "/sys/block/$P1/ana_state")), $P2 ($(cat "/sys/block/$P2/ana_state"))"
rig_check "$P1 ana_state optimized" ana_state_is "$P1" optimized
rig_check "$P2 ana_state non-optimized" ana_state_is "$P2" non-optimized
rig_check "ANA group ids 1 and 2" test "$(cat "/sys/block/$P1/ana_grpid")-$(cat "/sys/block/$P2/ana_grpid")" = 1-2
nvme list-subsys 2>&1 | sed 's/^/    /'
rig_check "nvme list-subsys shows both paths" test "$(nvme list-subsys 2>&1 | grep -c "traddr=")" -ge 2

FIO_JOB=(--name=nvtd-ana --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite
	--bs=4k --iodepth=16 --numjobs=1 --size="${NS_MIB}M" --loops=6 --randrepeat=1
	--verify=crc32c --verify_fatal=1 --do_verify=1 --group_reporting --eta=never)

# fio_start NAME: fio in the background, its pid in FIO_PID
fio_start() {
	echo "+ fio ${FIO_JOB[*]}"
	fio "${FIO_JOB[@]}" --output="$NVT_RIG_OUT/fio-$1.txt" &
	FIO_PID=$!
}

# fio_finish NAME DESC: wait for fio, fail with its output on error
fio_finish() {
	local out="$NVT_RIG_OUT/fio-$1.txt"
	if ! wait "$FIO_PID"; then
		cat "$out"
		rig_fail "$2: fio failed"
	fi
	grep -E 'IOPS|err=' "$out" | sed 's/^/    /'
	rig_check "$2: fio finished without errors" grep -q 'err= 0' "$out"
}

# moved FROM TO DESC: over 2 s, controller TO did I/O and controller FROM did none (fio still running)
moved() {
	local f0 t0 f1 t1
	f0=$(ios "$1"); t0=$(ios "$2")
	sleep 2
	f1=$(ios "$1"); t1=$(ios "$2")
	rig_info "$3: $1 +$((f1 - f0)), $2 +$((t1 - t0)) I/Os in 2 s"
	kill -0 "$FIO_PID" 2>/dev/null || rig_fail "$3: fio ended before the check (make it longer)"
	[ $((f1 - f0)) = 0 ] && [ $((t1 - t0)) -gt 0 ]
}

rig_step "fio verify on $DEV; group 1 inaccessible, group 2 optimized while it runs"
fio_start away
sleep 3
rig_check "fio is running" kill -0 "$FIO_PID"
rig_check "before: I/O on $C1, none on $C2" moved "$C2" "$C1" "before"
rig_check "nvtctl ana 1 inaccessible" ctl ana 1 inaccessible
rig_check "nvtctl ana 2 optimized" ctl ana 2 optimized
rig_check "host sees $P1 inaccessible (ANA change AEN)" rig_wait_for 20 "$P1 inaccessible" ana_state_is "$P1" inaccessible
rig_check "host sees $P2 optimized" rig_wait_for 20 "$P2 optimized" ana_state_is "$P2" optimized
sleep 1
rig_check "I/O moved to $C2" moved "$C1" "$C2" "after failover"

rig_step "back: group 1 optimized, group 2 non-optimized"
rig_check "nvtctl ana 1 optimized" ctl ana 1 optimized
rig_check "nvtctl ana 2 non-optimized" ctl ana 2 non-optimized
rig_check "host sees $P1 optimized" rig_wait_for 20 "$P1 optimized" ana_state_is "$P1" optimized
rig_check "host sees $P2 non-optimized" rig_wait_for 20 "$P2 non-optimized" ana_state_is "$P2" non-optimized
sleep 1
rig_check "I/O moved back to $C1" moved "$C2" "$C1" "after failback"
kill "$FIO_PID" 2>/dev/null || true
wait "$FIO_PID" 2>/dev/null || true

rig_step "fio verify over the whole switch and back, without interruption"
FIO_JOB=("${FIO_JOB[@]/--loops=6/--loops=2}")
fio_start full
sleep 2
rig_check "nvtctl ana 1 inaccessible" ctl ana 1 inaccessible
rig_check "host sees $P1 inaccessible" rig_wait_for 20 "$P1 inaccessible" ana_state_is "$P1" inaccessible
sleep 2
rig_check "nvtctl ana 1 optimized" ctl ana 1 optimized
fio_finish full "fio across failover and failback"
rig_check "nvtd logged the state changes" grep -q "ana: group 1 now inaccessible" "$NVTD_LOG"
# Commands in flight on path 1 when it turned inaccessible got 302h and were retried on path 2
# (fio saw no error); whether any were in flight is timing, so only counted.
rig_info "commands refused with 302h and retried by the host (logged, rate-limited): $(grep -c "I/O refused: ANA group" "$NVTD_LOG" || true)"

rig_step "disconnect and stop"
rig_check "nvme disconnect (both paths)" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
ip addr del "$ADDR2/$RIG_PREFIX" dev "$RIG_NETDEV" 2>/dev/null || true
