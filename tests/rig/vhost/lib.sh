# SPDX-License-Identifier: BSD-3-Clause
# Host-side helpers for vhost rig scenarios (sourced by vhost-scenario.sh): nvtd on the host, guests attached over vhost-user-scsi.
# shellcheck shell=bash

if [ "${NVT_RIG_GUEST:-}" = 1 ]; then
	echo "vhost/lib.sh: host side only" >&2
	exit 2
fi

VH_NVTD=${NVT_VHOST_NVTD:-$NVT_BUILD/nvtd}
VH_NVTCTL=$NVT_BUILD/nvtctl
VH_SOCK=$NVT_RIG_OUT/vhost.0
VH_CTL=$NVT_RIG_OUT/control.sock
VH_NVTD_PID=""
VH_RUNS=0

vh_log() { echo "=== [host] $*"; }
vh_fail() { echo "FAIL: [host] $*"; return 1; }

# vh_start_nvtd CONFIG: nvtd in the background, log $NVT_RIG_OUT/nvtd.log; waits for the vhost socket
vh_start_nvtd() {
	local i
	rm -f "$VH_SOCK"
	[ -x "$VH_NVTD" ] || { vh_fail "no nvtd at $VH_NVTD (build first)"; return 1; }
	"$VH_NVTD" -c "$1" >> "$NVT_RIG_OUT/nvtd.log" 2>&1 &
	VH_NVTD_PID=$!
	vh_track "$VH_NVTD_PID"
	for i in $(seq 1 100); do
		[ -S "$VH_SOCK" ] && { vh_log "nvtd $VH_NVTD_PID listening on $VH_SOCK"; return 0; }
		kill -0 "$VH_NVTD_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$NVT_RIG_OUT/nvtd.log"
	vh_fail "nvtd did not create $VH_SOCK"
}

# vh_stop_nvtd: SIGTERM, exit status 0 and no sanitizer report in its log
vh_stop_nvtd() {
	local st=0
	[ -n "$VH_NVTD_PID" ] || return 0
	kill -TERM "$VH_NVTD_PID" 2>/dev/null || true
	wait "$VH_NVTD_PID" || st=$?
	VH_NVTD_PID=""
	if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$NVT_RIG_OUT/nvtd.log"; then
		grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$NVT_RIG_OUT/nvtd.log" | head -60
		vh_fail "sanitizer report in nvtd.log"
		return 1
	fi
	[ "$st" = 0 ] || { tail -n 20 "$NVT_RIG_OUT/nvtd.log"; vh_fail "nvtd exited with $st"; return 1; }
	vh_log "nvtd stopped cleanly"
}

# vh_guest PHASE [run-vm options...]: boot a guest attached to $VH_SOCK and run
# vh_guest_PHASE of the scenario inside it; returns its status. VH_DEVICE=none
# leaves the vhost-user-scsi device out (the options then bring their own disk).
vh_guest() {
	local phase=$1 dev=() envs=() shares=() var d
	shift
	# /tmp and /run are fresh tmpfs in the guest: share a checkout or build living there
	for d in "$NVT_SRC" "$NVT_BUILD"; do
		case "$d" in
		/tmp/*|/run/*)
			[ "$d" = "$NVT_BUILD" ] && case "$d" in "$NVT_SRC"/*) continue ;; esac
			shares+=(-r "$d") ;;
		esac
	done
	# the scenario's knobs travel with it: every exported VH_* and NVT_RIG_* variable
	while IFS= read -r var; do
		case "$var" in NVT_RIG_OUT|NVT_RIG_SCENARIO) continue ;; esac
		envs+=(-e "$var=${!var}")
	done < <(compgen -e | grep -E '^(VH_|NVT_RIG_)' || true)
	VH_RUNS=$((VH_RUNS + 1))
	[ "${VH_DEVICE:-}" = none ] ||
		dev=(-q "-chardev" -q "socket,id=vus0,path=$VH_SOCK" -q "-device"
		     -q "vhost-user-scsi-pci,chardev=vus0,${VH_QEMU_DEV_OPTS:-t10_pi=on,num_queues=2}")
	vh_log "guest run $VH_RUNS: phase $phase"
	"$RIG_DIR/run-vm.sh" -s -t "$VH_TIMEOUT_S" "${shares[@]}" -w "$NVT_RIG_OUT" \
		-l "$NVT_RIG_OUT/console-$VH_RUNS-$phase.log" \
		-e "NVT_SRC=$NVT_SRC" -e "NVT_BUILD=$NVT_BUILD" -e "NVT_RIG_OUT=$NVT_RIG_OUT" \
		-e "NVT_RIG_SCENARIO=vhost-$VH_NAME-$phase" "${envs[@]}" \
		"${dev[@]}" "$@" "$RIG_DIR/vhost/guest.sh" "$VH_NAME" "$phase"
}

# vh_kill_qemu: SIGKILL the QEMU attached to our socket (as a crashing VM would die)
vh_kill_qemu() { pkill -KILL -f "path=$VH_SOCK" || true; }

# vh_track PID: a helper process vh_cleanup kills if the scenario ends early
# (vh_host runs in a subshell, so its variables do not reach vh_cleanup)
vh_track() { echo "$1" >> "$NVT_RIG_OUT/.pids"; }

vh_cleanup() {
	local pid
	vh_kill_qemu
	[ -f "$NVT_RIG_OUT/.pids" ] || return 0
	while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < "$NVT_RIG_OUT/.pids"
	rm -f "$NVT_RIG_OUT/.pids"
	return 0
}
