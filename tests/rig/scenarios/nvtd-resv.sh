#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# NVMe reservations from the real Linux host: two controllers with two host NQNs/ids, register, Write Exclusive, report, the other host's write conflicts and its read works, release, preempt, preempt and abort under the preempted host's writes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:resv
CFG=$NVT_RIG_OUT/nvtd-resv.cfg
O=$NVT_RIG_OUT
HOST_A=nqn.2014-08.org.nvmexpress:uuid:$(rig_uuid)
HOST_B=nqn.2014-08.org.nvmexpress:uuid:$(rig_uuid)
ID_A=$(rig_uuid)
ID_B=$(rig_uuid)
KEY_A=0x1111aaaa
KEY_B=0x2222bbbb

# ctrl_of_host HOSTNQN: the controller (nvmeX) of this subsystem that host NQN connected.
ctrl_of_host() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
		[ "$(cat "$c/hostnqn" 2>/dev/null)" = "$1" ] && { basename "$c"; return 0; }
	done
	return 1
}

# io CTRL OPCODE [DIRECTION FILE]: one 512-byte command on CTRL's own queues, nsid 1, LBA 0.
# The controller's char device addresses one path (the multipath head would pick either);
# with one namespace the kernel sends its I/O commands there.
io() {
	local c=$1 op=$2
	shift 2
	nvme io-passthru "/dev/$c" --opcode="$op" --namespace-id=1 --data-len=512 --cdw10=0 \
		--cdw11=0 --cdw12=0 "$@"
}

rig_begin
rig_check "rxe link up" rig_rxe_up
cat > "$CFG" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; } );
subsystems = ( { nqn = "$NQN"; allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "64M"; } ); } );
CFG
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "host A connects" rig_nvme_connect "$NQN" "$RIG_PORT" --hostnqn="$HOST_A" --hostid="$ID_A"
# nvme-cli 2.3 refuses a second connect to one subsystem and address ("already connected",
# --duplicate-connect or not): the kernel's own interface takes it, another host NQN and id.
connect_b() {
	echo "transport=rdma,traddr=$RIG_ADDR,trsvcid=$RIG_PORT,nqn=$NQN,hostnqn=$HOST_B,hostid=$ID_B" \
		> /dev/nvme-fabrics
}
rig_check "host B connects" connect_b
rig_wait_nvme_ns 30 "$NQN" > /dev/null || rig_fail "no namespace"
A=$(ctrl_of_host "$HOST_A") || rig_fail "no controller for host A"
B=$(ctrl_of_host "$HOST_B") || rig_fail "no controller for host B"
echo "host A: $A, host B: $B"
rig_check "two controllers" test "$A" != "$B"
nvme id-ctrl "/dev/$A" > "$O/id-ctrl.txt"
rig_check "ONCS bit 5: reservations" grep -Eq '^oncs +: 0x1ad' "$O/id-ctrl.txt"
nvme id-ns "/dev/$A" -n 1 > "$O/id-ns.txt"
rig_check "RESCAP: six types and IEKEY (0xfe)" grep -Eq '^rescap +: 0xfe' "$O/id-ns.txt"
rig_check "NMIC: shared" grep -Eq '^nmic +: 0x1' "$O/id-ns.txt"

rig_step "register both, A acquires Write Exclusive"
rig_check "A registers" nvme resv-register "/dev/$A" -n 1 --nrkey=$KEY_A --rrega=0
rig_check "B registers" nvme resv-register "/dev/$B" -n 1 --nrkey=$KEY_B --rrega=0
rig_check "A acquires Write Exclusive" nvme resv-acquire "/dev/$A" -n 1 --crkey=$KEY_A --rtype=1 --racqa=0
nvme resv-report "/dev/$B" -n 1 --numd=255 --eds > "$O/report.txt"
cat "$O/report.txt"
rig_check "report: Write Exclusive held" grep -Eq '^rtype +: 1' "$O/report.txt"
rig_check "report: two registrants" grep -Eq '^regctl +: 2' "$O/report.txt"
rig_check "report: A's key holds it" grep -Eq 'rkey +: (0x)?1111aaaa' "$O/report.txt"
rig_check "report: B's key" grep -Eq 'rkey +: (0x)?2222bbbb' "$O/report.txt"

rig_step "B's write conflicts, its read works; A writes"
head -c 512 /dev/urandom > "$O/blk.bin"
if io "$B" 0x01 -w --input-file="$O/blk.bin" > "$O/b-write.txt" 2>&1; then
	cat "$O/b-write.txt"
	rig_fail "B's write succeeded under A's Write Exclusive"
fi
cat "$O/b-write.txt"
rig_check "B's write failed with Reservation Conflict" grep -Eqi 'reservation.?conflict|0x83\b|0x4083|0x83\)' "$O/b-write.txt"
rig_check "B's read works" io "$B" 0x02 -r
rig_check "A's write works" io "$A" 0x01 -w --input-file="$O/blk.bin"

rig_step "A releases; B writes"
rig_check "A releases" nvme resv-release "/dev/$A" -n 1 --crkey=$KEY_A --rtype=1 --rrela=0
rig_check "B's write works" io "$B" 0x01 -w --input-file="$O/blk.bin"
nvme resv-report "/dev/$A" -n 1 --numd=255 --eds > "$O/report2.txt"
rig_check "report: nothing held" grep -Eq '^rtype +: 0' "$O/report2.txt"

rig_step "A holds Write Exclusive again, B preempts it into Exclusive Access"
rig_check "A acquires Write Exclusive" nvme resv-acquire "/dev/$A" -n 1 --crkey=$KEY_A --rtype=1 --racqa=0
rig_check "B preempts A (A's key), Exclusive Access" nvme resv-acquire "/dev/$B" -n 1 --crkey=$KEY_B \
	--prkey=$KEY_A --rtype=2 --racqa=1
nvme resv-report "/dev/$B" -n 1 --numd=255 --eds > "$O/report3.txt"
cat "$O/report3.txt"
rig_check "report: Exclusive Access held" grep -Eq '^rtype +: 2' "$O/report3.txt"
rig_check "report: A's registration preempted, one registrant" grep -Eq '^regctl +: 1' "$O/report3.txt"
if io "$A" 0x02 -r > "$O/a-read.txt" 2>&1; then rig_fail "A's read succeeded under B's Exclusive Access"; fi
rig_check "A's read failed with Reservation Conflict" grep -Eqi 'reservation.?conflict|0x83\b|0x4083|0x83\)' "$O/a-read.txt"
rig_check "B clears" nvme resv-release "/dev/$B" -n 1 --crkey=$KEY_B --rrela=1
rig_check "A reads again" io "$A" 0x02 -r

rig_step "A writes in a loop under its Write Exclusive; B preempts and aborts it"
rig_check "A registers again" nvme resv-register "/dev/$A" -n 1 --nrkey=$KEY_A --rrega=0
rig_check "B registers again" nvme resv-register "/dev/$B" -n 1 --nrkey=$KEY_B --rrega=0
rig_check "A acquires Write Exclusive" nvme resv-acquire "/dev/$A" -n 1 --crkey=$KEY_A --rtype=1 --racqa=0
rm -f "$O/a-loop-ended"
( n=0; while io "$A" 0x01 -w --input-file="$O/blk.bin" > /dev/null 2>&1; do n=$((n + 1)); done
  echo "$n" > "$O/a-loop-ended" ) &
a_loop=$!
sleep 2
rig_check "A's writes were going through" test ! -e "$O/a-loop-ended"
rig_check "B preempts and aborts A (Write Exclusive)" nvme resv-acquire "/dev/$B" -n 1 --crkey=$KEY_B \
	--prkey=$KEY_A --rtype=1 --racqa=2
rig_check "A's write loop ends: its next write conflicts" rig_wait_for 20 "A's writes to fail" \
	test -e "$O/a-loop-ended"
wait "$a_loop" || true
echo "A's writes before the preempt: $(cat "$O/a-loop-ended")"
nvme resv-report "/dev/$B" -n 1 --numd=255 --eds > "$O/report4.txt"
rig_check "report: B holds Write Exclusive alone" sh -c \
	"grep -Eq '^rtype +: 1' '$O/report4.txt' && grep -Eq '^regctl +: 1' '$O/report4.txt' && grep -Eq 'rkey +: (0x)?2222bbbb' '$O/report4.txt'"
rig_check "B writes" io "$B" 0x01 -w --input-file="$O/blk.bin"
rig_check "B clears" nvme resv-release "/dev/$B" -n 1 --crkey=$KEY_B --rrela=1

nvme disconnect -n "$NQN" > /dev/null || true
RIG_CONNECTED=()
rig_check "nvtd stops cleanly" stop_nvtd
rig_check "kernel log clean" rig_dmesg_clean
