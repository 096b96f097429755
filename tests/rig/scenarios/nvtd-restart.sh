#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The host rides through an nvtd restart: SIGTERM under I/O (exit 0), start again with the same config, the kernel reconnects by itself and I/O resumes.
#
# connect --ctrl-loss-tmo=60 --reconnect-delay=2; a background reader loops small
# O_DIRECT reads; SIGTERM nvtd while it runs (stop_nvtd: exit status must be 0); the
# controller leaves "live"; start nvtd with the same config; the same controller
# (nvmeX) comes back to "live" by itself, the namespace keeps its identity (wwid:
# uuid/nguid are derived from the config, so stable across restarts), the reader makes
# progress again and a full read of the device works. The ram backend loses its data on
# restart, so no data from before the restart is compared; a fresh write/read is.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:restart
NS_MIB=64
CFG=$NVT_RIG_OUT/nvtd-restart.cfg
PROGRESS=$NVT_RIG_OUT/reader.progress
READER_PID=""

rig_begin
rig_check "nvtd has the RDMA transport" nvtd_has_rdma
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_must rig_nvme_host_up
rig_check "nvme connect knows --ctrl-loss-tmo and --reconnect-delay" \
	bash -c "nvme connect --help 2>&1 | grep -q -- --ctrl-loss-tmo && nvme connect --help 2>&1 | grep -q -- --reconnect-delay"

nvtd_serve_ram "$CFG" "$NQN" "$NS_MIB"
PID1=$NVTD_PID

rig_step "connect with --ctrl-loss-tmo=60 --reconnect-delay=2"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2 \
	--ctrl-loss-tmo=60 --reconnect-delay=2
DEV=$(rig_wait_nvme_ns 30 "$NQN") || rig_fail "no namespace block device for $NQN"
CTRL=$(rig_nvme_ctrl_of "$NQN") || rig_fail "no controller for $NQN"
WWID=$(cat "/sys/block/${DEV#/dev/}/wwid")
rig_info "$DEV on $CTRL, wwid $WWID"
rig_check "ctrl_loss_tmo is 60" grep -qx 60 "/sys/class/nvme/$CTRL/ctrl_loss_tmo"
rig_check "reconnect_delay is 2" grep -qx 2 "/sys/class/nvme/$CTRL/reconnect_delay"
rig_check "controller live" rig_nvme_ctrl_live "$NQN"

rig_step "background reader"
: > "$PROGRESS"
(
	trap 'exit 0' TERM
	i=0
	while :; do
		if dd if="$DEV" of=/dev/null bs=64k count=4 skip=$(( (i * 4) % (NS_MIB * 16) )) \
			iflag=direct status=none 2>/dev/null; then
			echo ok >> "$PROGRESS"
		else
			echo err >> "$PROGRESS"
		fi
		i=$((i + 1))
		sleep 0.1
	done
) &
READER_PID=$!
stop_reader() {
	[ -n "$READER_PID" ] || return 0
	kill -TERM "$READER_PID" 2>/dev/null
	wait "$READER_PID" 2>/dev/null
	READER_PID=""
}
oks() { grep -c '^ok$' "$PROGRESS" || true; }
errs() { grep -c '^err$' "$PROGRESS" || true; }
oks_over() { [ "$(oks)" -gt "$1" ]; }
rig_check "reader makes progress" rig_wait_for 30 "5 reads" oks_over 4

rig_step "SIGTERM nvtd while the host is connected and reading"
t_stop=$(date +%s)
rig_check "nvtd stops on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_info "nvtd took $(( $(date +%s) - t_stop )) s to exit; log:"
tail -n 8 "$NVTD_LOG" | sed 's/^/    /'
not_live() { ! rig_nvme_ctrl_live "$NQN"; }
rig_check "controller $CTRL leaves live" rig_wait_for 30 "$CTRL to leave live" not_live
rig_info "$CTRL state: $(rig_nvme_ctrl_state "$NQN")"
sleep 3
rig_info "$CTRL state after 3 s without a target: $(rig_nvme_ctrl_state "$NQN")"
rig_check "controller still exists (ctrl-loss-tmo 60 s not reached)" rig_nvme_ctrl_of "$NQN"
oks_down=$(oks)

rig_step "start nvtd again with the same config"
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "a new nvtd process" test "$NVTD_PID" != "$PID1"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
t_up=$(date +%s)
rig_check "controller $CTRL back to live by itself" rig_wait_for 60 "$CTRL to be live" rig_nvme_ctrl_live "$NQN"
rig_info "live again $(( $(date +%s) - t_up )) s after nvtd listened"
rig_check "same controller name" test "$(rig_nvme_ctrl_of "$NQN")" = "$CTRL"
rig_check "namespace $DEV still there" test -b "$DEV"
rig_check "same namespace identity (wwid)" test "$(cat "/sys/block/${DEV#/dev/}/wwid")" = "$WWID"
rig_check "reader resumes" rig_wait_for 30 "5 more reads" oks_over $((oks_down + 4))
stop_reader
rig_info "reader: $(oks) reads ok, $(errs) failed"

rig_step "I/O after the restart"
rig_check "dd read of all ${NS_MIB} MiB, O_DIRECT" \
	dd if="$DEV" of=/dev/null bs=1M count="$NS_MIB" iflag=direct status=none
rig_check "dd write + read back 1 MiB" bash -c "
	head -c 1M /dev/urandom > /tmp/in && dd if=/tmp/in of=$DEV bs=64k oflag=direct status=none &&
	dd if=$DEV of=/tmp/out bs=64k count=16 iflag=direct status=none && cmp /tmp/in /tmp/out"

rig_step "disconnect and stop"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
rig_check "nvtd exit status 0" test "$NVTD_STATUS" = 0
rig_check "no kernel warnings" rig_dmesg_clean
