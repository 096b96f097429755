#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# DH-HMAC-CHAP against the real Linux host (6.12: NVT_RIG_KERNEL=6.12; 6.1's host has no in-band authentication): connect with the host's secret, then with both secrets, I/O; a wrong secret and none at all refused.
#
# rig.nvtd-auth boots the 6.12 kernel itself (tests/rig/CMakeLists.txt sets NVT_RIG_KERNEL).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-12.io.nvt.rig:auth
CFG=$NVT_RIG_OUT/nvtd-auth.cfg

rig_begin
rig_check "the host kernel has NVMe in-band authentication (6.12: NVT_RIG_KERNEL=6.12)" \
	sh -c "modinfo nvme-auth > /dev/null 2>&1 || grep -q nvme_auth /proc/kallsyms"
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_must rig_nvme_host_up
HOST_NQN=$(rig_host_nqn)
HOST_KEY=$(nvme gen-dhchap-key --nqn "$HOST_NQN" --hmac 1)
CTRL_KEY=$(nvme gen-dhchap-key --nqn "$NQN" --hmac 2)
WRONG_KEY=$(nvme gen-dhchap-key --nqn "$HOST_NQN" --hmac 1)
rig_info "host $HOST_NQN, keys ${HOST_KEY:0:10}... ${CTRL_KEY:0:10}..."

cat > "$CFG" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; } );
subsystems = ( {
	nqn = "$NQN";
	require_authentication = true;
	hosts = ( { nqn = "$HOST_NQN"; dhchap_key = "$HOST_KEY"; dhchap_ctrl_key = "$CTRL_KEY"; } );
	namespaces = ( { nsid = 1; backend = "ram"; size = "32M"; } );
} );
CFG
rig_step "nvtd requiring DH-HMAC-CHAP on $RIG_ADDR:$RIG_PORT"
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "the secrets are not in nvtd's log" sh -c "! grep -qF '${HOST_KEY:10:20}' '$NVT_RIG_OUT/nvtd.log' && ! grep -qF '${CTRL_KEY:10:20}' '$NVT_RIG_OUT/nvtd.log'"

# refused ARGS...: nvme connect with ARGS fails and leaves no controller of NQN behind.
refused() {
	! nvme connect -t rdma -a "$RIG_ADDR" -s "$RIG_PORT" -n "$NQN" "$@" && ! rig_nvme_ctrl_of "$NQN" > /dev/null
}

rig_step "no secret: refused"
rig_check "connect without a secret fails, no controller left" refused

rig_step "a wrong secret: refused"
rig_check "connect with a wrong secret fails, no controller left" refused --dhchap-secret "$WRONG_KEY"

rig_step "the host's secret (unidirectional)"
rig_check "nvme connect --dhchap-secret" rig_nvme_connect "$NQN" --dhchap-secret "$HOST_KEY"
rig_check "controller state live" rig_nvme_ctrl_live "$NQN"
DEV=$(rig_wait_nvme_ns 20 "$NQN" || true)
rig_check "its namespace appears" test -n "$DEV"
if [ -n "$DEV" ]; then
	head -c 4M /dev/urandom > "$NVT_RIG_OUT/pat"
	rig_check "4 MiB written and read back" sh -c "dd if=$NVT_RIG_OUT/pat of=$DEV bs=1M oflag=direct status=none && cmp -n 4194304 $NVT_RIG_OUT/pat $DEV"
fi
rig_check "disconnect" rig_nvme_disconnect "$NQN"

rig_step "both secrets (bidirectional)"
rig_check "nvme connect --dhchap-secret --dhchap-ctrl-secret" \
	rig_nvme_connect "$NQN" --dhchap-secret "$HOST_KEY" --dhchap-ctrl-secret "$CTRL_KEY"
rig_check "controller state live" rig_nvme_ctrl_live "$NQN"
DEV=$(rig_wait_nvme_ns 20 "$NQN" || true)
rig_check "the data is still there" sh -c "[ -n '$DEV' ] && cmp -n 4194304 $NVT_RIG_OUT/pat $DEV"
rig_check "disconnect" rig_nvme_disconnect "$NQN"
rig_check "a wrong controller secret: refused, no controller left" \
	refused --dhchap-secret "$HOST_KEY" --dhchap-ctrl-secret "$WRONG_KEY"
rig_check "nvtd logged the refusals" grep -qi "auth" "$NVT_RIG_OUT/nvtd.log"
rig_check "nvtd still alive" nvtd_alive

rig_step "stop"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
