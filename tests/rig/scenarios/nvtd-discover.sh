#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtd's discovery log filters by host: an open subsystem and one restricted to another host NQN; nvme discover as each host.
#
# Config: one RDMA listener, subsystem "open" (allow_any_host) and subsystem
# "restricted" (hosts = [ OTHER_NQN ], not this VM's NQN). Asserted:
#   - default host NQN: the log has exactly 1 record, "open"; "restricted" is absent;
#   - --hostnqn=OTHER_NQN: exactly 2 records, both subsystems;
#   - --hostnqn=<a third, random NQN>: only "open";
#   - every record is an NVM subsystem at 192.0.2.1:4420 over rdma: nvt does not list
#     the discovery subsystem itself (no "current discovery subsystem" entry);
#   - the refused host is not refused at the discovery controller (nvtd.log).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

OPEN_NQN=nqn.2026-11.io.nvt.rig:discover-open
RESTRICTED_NQN=nqn.2026-11.io.nvt.rig:discover-restricted
OTHER_NQN=nqn.2014-08.org.nvmexpress:uuid:7b0c3f52-6a7e-4f0e-9d55-2c1d3e4f5a6b
THIRD_NQN=nqn.2014-08.org.nvmexpress:uuid:$(rig_uuid)
CFG=$NVT_RIG_OUT/nvtd-discover.cfg

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_must rig_nvme_host_up
HOST_NQN=$(rig_host_nqn)
rig_info "this host's NQN: $HOST_NQN"
rig_check "this host is not the restricted subsystem's allowed host" test "$HOST_NQN" != "$OTHER_NQN"

cat > "$CFG" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; } );
subsystems = (
	{
		nqn = "$OPEN_NQN";
		allow_any_host = true;
		namespaces = ( { nsid = 1; backend = "ram"; size = "16M"; } );
	},
	{
		nqn = "$RESTRICTED_NQN";
		allow_any_host = false;
		hosts = [ "$OTHER_NQN" ];
		namespaces = ( { nsid = 1; backend = "ram"; size = "16M"; } );
	}
);
CFG
rig_step "nvtd with two subsystems on $RIG_ADDR:$RIG_PORT"
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"

# records FILE: the "Number of Records" of a discover output
records() { sed -n 's/^Discovery Log Number of Records \([0-9]*\),.*/\1/p' "$1"; }
# entries FILE: the number of "Discovery Log Entry" blocks
entries() { grep -c '^=====Discovery Log Entry' "$1" || true; }
# only_nvm FILE: every entry is an NVM subsystem (none is the discovery subsystem)
only_nvm() {
	! grep -E '^subtype:' "$1" | grep -qv 'nvme subsystem' &&
		! grep -q '^subnqn: *nqn.2014-08.org.nvmexpress.discovery' "$1"
}

# discover NAME [nvme-discover options]: run nvme discover, output in $NVT_RIG_OUT/discover-NAME.txt
discover() {
	local name=$1 out="$NVT_RIG_OUT/discover-$1.txt"
	shift
	echo "+ nvme discover -t rdma -a $RIG_ADDR -s $RIG_PORT $*"
	nvme discover -t rdma -a "$RIG_ADDR" -s "$RIG_PORT" "$@" > "$out" 2>&1 ||
		{ cat "$out"; rig_fail "nvme discover as $name"; }
	cat "$out"
}

rig_step "discover as this host ($HOST_NQN)"
discover default
f=$NVT_RIG_OUT/discover-default.txt
rig_check "1 record" test "$(records "$f")" = 1
rig_check "1 entry printed" test "$(entries "$f")" = 1
rig_check "lists $OPEN_NQN" rig_discovery_lists "$f" "$OPEN_NQN" "$RIG_ADDR" "$RIG_PORT"
rig_check "does not list $RESTRICTED_NQN" bash -c "! grep -q '$RESTRICTED_NQN' '$f'"
rig_check "no discovery subsystem entry, only NVM subsystems" only_nvm "$f"

# a hostid of its own for each other host NQN: the kernel refuses to reuse
# this host's hostid with a different NQN on newer kernels
rig_step "discover as the allowed host ($OTHER_NQN)"
discover allowed --hostnqn="$OTHER_NQN" --hostid="$(rig_uuid)"
f=$NVT_RIG_OUT/discover-allowed.txt
rig_check "2 records" test "$(records "$f")" = 2
rig_check "2 entries printed" test "$(entries "$f")" = 2
rig_check "lists $OPEN_NQN" rig_discovery_lists "$f" "$OPEN_NQN" "$RIG_ADDR" "$RIG_PORT"
rig_check "lists $RESTRICTED_NQN" rig_discovery_lists "$f" "$RESTRICTED_NQN" "$RIG_ADDR" "$RIG_PORT"
rig_check "no discovery subsystem entry, only NVM subsystems" only_nvm "$f"

rig_step "discover as a third host ($THIRD_NQN)"
discover third --hostnqn="$THIRD_NQN" --hostid="$(rig_uuid)"
f=$NVT_RIG_OUT/discover-third.txt
rig_check "1 record" test "$(records "$f")" = 1
rig_check "lists only $OPEN_NQN" rig_discovery_lists "$f" "$OPEN_NQN" "$RIG_ADDR" "$RIG_PORT"
rig_check "does not list $RESTRICTED_NQN" bash -c "! grep -q '$RESTRICTED_NQN' '$f'"

rig_step "the discovery controller took all three hosts"
rig_check "nvtd refused no host at discovery" bash -c "! grep -q 'not allowed' '$NVTD_LOG'"
rig_check "3 discovery controllers created" \
	test "$(grep -c 'discovery: controller [0-9]* created' "$NVTD_LOG")" -eq 3
rig_check "nvtd still running" nvtd_alive

rig_step "stop"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
