# SPDX-License-Identifier: BSD-3-Clause
# Shared helpers for rig scenarios (sourced, inside the VM only): soft-RoCE setup, waits, kernel nvmet-rdma target, nvtd start/stop, teardown.
#
# Scenarios get from scenario.sh / run-vm.sh:
#   NVT_SRC      repository root (read-only in the guest)
#   NVT_BUILD    build dir (default $NVT_SRC/build; read-only in the guest)
#   NVT_RIG_OUT  writable results dir, also visible on the host afterwards
#   NVT_RIG_*    any other NVT_RIG_* variable of the caller (e.g. NVT_RIG_NO_TEARDOWN=1,
#                which scenario.sh --shell sets so the state can be inspected)
# Conventions: functions return non-zero on failure and print why; rig_check
# and rig_must turn a failure into "FAIL: ..." and exit 1 (teardown runs from
# the EXIT trap that rig_begin installs).
# shellcheck shell=bash

if [ "${NVT_RIG_GUEST:-}" != 1 ]; then
	# lib.sh adds addresses, netdevs and RDMA links: never on the host
	echo "lib.sh: refusing to run outside the rig VM (use tests/rig/scenario.sh)" >&2
	exit 2
fi

NVT_SRC=${NVT_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
NVT_BUILD=${NVT_BUILD:-$NVT_SRC/build}
NVT_RIG_OUT=${NVT_RIG_OUT:-/tmp/nvt-rig-out}
mkdir -p "$NVT_RIG_OUT"

# The fabric: one dummy netdev with a TEST-NET-1 address, inside this NIC-less VM.
RIG_NETDEV=nvtrig0
RIG_ADDR=192.0.2.1
RIG_PREFIX=24
RIG_RDMA_DEV=rxe0
RIG_PORT=4420
# The dummy netdev's MTU; rxe takes the largest RoCE MTU that fits (1500: 1024, 9000: 4096)
RIG_MTU=${NVT_RIG_MTU:-1500}

RIG_PASSED=0
RIG_SCENARIO=${NVT_RIG_SCENARIO:-$(basename "$0" .sh)}
RIG_T0=$(cut -d' ' -f1 /proc/uptime)

# ---- output -----------------------------------------------------------------------
rig_elapsed() { awk -v a="$RIG_T0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }'; }
rig_step() { echo "=== [$(rig_elapsed)s] $*"; }
rig_info() { echo "    $*"; }
rig_pass() { echo "PASS: $*"; RIG_PASSED=$((RIG_PASSED + 1)); }

# rig_fail MSG: print FAIL with some kernel context and exit 1 (teardown runs from the trap)
rig_fail() {
	echo "FAIL: $*"
	echo "--- last kernel messages:"
	dmesg | tail -n 15 | sed 's/^/    /'
	exit 1
}

# rig_check DESC CMD...: run CMD (its output is shown), PASS or FAIL+exit on its status
rig_check() {
	local desc=$1
	shift
	echo "+ $*"
	if "$@"; then rig_pass "$desc"; else rig_fail "$desc (exit $?: $*)"; fi
}

# rig_must CMD...: run CMD quietly, exit with FAIL on error (setup steps).
# CMD runs in this shell (no $(...)), so helpers can record state for teardown.
rig_must() {
	local out
	out=$(mktemp)
	if ! "$@" > "$out" 2>&1; then
		sed 's/^/    /' "$out"
		rm -f "$out"
		rig_fail "setup step failed: $*"
	fi
	rm -f "$out"
}

# rig_begin: start a scenario (EXIT trap runs rig_teardown and prints the result)
rig_begin() {
	trap rig_on_exit EXIT
	rig_step "scenario $RIG_SCENARIO (kernel $(uname -r), $(nproc) vCPUs, out $NVT_RIG_OUT)"
}

rig_on_exit() {
	local status=$?
	trap - EXIT
	set +e
	dmesg > "$NVT_RIG_OUT/dmesg.txt" 2>/dev/null
	if [ "${NVT_RIG_NO_TEARDOWN:-0}" = 1 ]; then
		echo "NVT_RIG_NO_TEARDOWN=1: leaving the target, connections and rxe in place"
	else
		rig_teardown
	fi
	if [ "$status" = 0 ]; then
		echo "RESULT: PASS $RIG_SCENARIO ($RIG_PASSED checks, $(rig_elapsed)s in the guest)"
	else
		echo "RESULT: FAIL $RIG_SCENARIO (status $status after $RIG_PASSED passed checks, $(rig_elapsed)s)"
	fi
	exit "$status"
}

# ---- waiting ----------------------------------------------------------------------------
# rig_wait_for SECS DESC CMD...: poll CMD every 0.2 s until it succeeds; 1 on timeout
rig_wait_for() {
	local secs=$1 desc=$2
	shift 2
	local deadline=$(( $(date +%s) + secs ))
	until "$@" > /dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "    timed out after ${secs}s waiting for $desc" >&2
			return 1
		fi
		sleep 0.2
	done
}

# rig_wait_for_path SECS PATH: until PATH exists
rig_wait_for_path() { rig_wait_for "$1" "$2" test -e "$2"; }

# rig_wait_for_rdma_listen SECS [PORT]: until some RDMA-CM id listens on PORT
rig_rdma_listening() { rdma resource show cm_id 2>/dev/null | grep 'state LISTEN' | grep -q ":$1 "; }
rig_wait_for_rdma_listen() { rig_wait_for "$1" "RDMA listener on port ${2:-$RIG_PORT}" rig_rdma_listening "${2:-$RIG_PORT}"; }

# rig_dmesg_clean: no kernel WARNING, BUG, Oops or call trace so far (prints any it finds)
rig_dmesg_clean() {
	local bad
	bad=$(dmesg | grep -E 'WARNING:|BUG:|Oops|Call Trace|general protection|INFO: task .* blocked|rcu_.*stall' || true)
	[ -z "$bad" ] && return 0
	echo "$bad" | head -n 40 | sed 's/^/    dmesg: /'
	return 1
}

# rig_uuid: a random UUID
rig_uuid() { cat /proc/sys/kernel/random/uuid; }

# rig_host_nqn: this host's default NQN, the one nvme-cli sends without --hostnqn
rig_host_nqn() {
	if [ -s /etc/nvme/hostnqn ]; then head -n 1 /etc/nvme/hostnqn; else nvme show-hostnqn; fi
}

# ---- soft-RoCE -----------------------------------------------------------------------------
# rig_rxe_gid_ready [HEX]: rxe0 has the IPv4-mapped GID ::ffff:HEX (default c000:0201, 192.0.2.1)
rig_rxe_gid_ready() {
	local g
	for g in "/sys/class/infiniband/$RIG_RDMA_DEV"/ports/1/gids/*; do
		[ "$(cat "$g" 2>/dev/null)" = "0000:0000:0000:0000:0000:ffff:${1:-c000:0201}" ] && return 0
	done
	return 1
}

# rig_rxe_up: dummy netdev $RIG_NETDEV with $RIG_ADDR/24, and rxe0 on top of it
rig_rxe_up() {
	# rxe needs the crypto "crc32" (ICRC); load it here rather than trust request_module
	modprobe -a crc32_generic crc32-pclmul 2>/dev/null
	modprobe -a dummy rdma_rxe ib_uverbs rdma_ucm || return 1
	if ! ip link show "$RIG_NETDEV" > /dev/null 2>&1; then
		ip link add "$RIG_NETDEV" type dummy || return 1
		ip addr add "$RIG_ADDR/$RIG_PREFIX" dev "$RIG_NETDEV" || return 1
	fi
	ip link set "$RIG_NETDEV" mtu "$RIG_MTU" up || return 1
	if [ ! -e "/sys/class/infiniband/$RIG_RDMA_DEV" ]; then
		rdma link add "$RIG_RDMA_DEV" type rxe netdev "$RIG_NETDEV" || return 1
	fi
	rig_wait_for 20 "$RIG_RDMA_DEV port ACTIVE" \
		grep -q ACTIVE "/sys/class/infiniband/$RIG_RDMA_DEV/ports/1/state" || return 1
	rig_wait_for 20 "IPv4 GID on $RIG_RDMA_DEV" rig_rxe_gid_ready
}

# rig_rxe_active_mtu: the RoCE MTU rxe derived from the netdev's (e.g. "1024")
rig_rxe_active_mtu() {
	ibv_devinfo -d "$RIG_RDMA_DEV" 2>/dev/null | awk '$1 == "active_mtu:" { print $2; exit }'
}

rig_rxe_down() {
	[ -e "/sys/class/infiniband/$RIG_RDMA_DEV" ] && rdma link delete "$RIG_RDMA_DEV"
	ip link show "$RIG_NETDEV" > /dev/null 2>&1 && ip link delete "$RIG_NETDEV"
	return 0
}

# ---- RAM block devices ---------------------------------------------------------------------
RIG_NULLB_CFG=/sys/kernel/config/nullb
RIG_RAMDEVS=()       # configfs dirs (null_blk) or "brd", for teardown

# rig_ram_blockdev NAME SIZE_MIB: sets RIG_RAMDEV to a new RAM-backed block device
# null_blk with memory_backed=1 via configfs (any size, many devices); brd as fallback.
# (Results go in variables, not stdout: a $(...) subshell would lose the teardown list.)
rig_ram_blockdev() {
	local name=$1 size_mib=$2 d
	RIG_RAMDEV=""
	if ! lsmod | grep -q '^null_blk '; then
		modprobe null_blk nr_devices=0 > /dev/null 2>&1 || true
	fi
	if [ -d "$RIG_NULLB_CFG" ]; then
		d="$RIG_NULLB_CFG/$name"
		mkdir "$d" || return 1
		RIG_RAMDEVS+=("$d")
		echo "$size_mib" > "$d/size" &&      # MiB
		echo 1 > "$d/memory_backed" &&
		echo 512 > "$d/blocksize" &&
		echo 0 > "$d/irqmode" &&             # complete inline, like a RAM backend
		echo 1 > "$d/power" || return 1
		# 6.1 names the disk after the configfs dir; older kernels use nullb<index>
		rig_wait_for 10 "null_blk disk $name" \
			bash -c "test -b /dev/$name || test -b /dev/nullb\$(cat $d/index)" || return 1
		RIG_RAMDEV=/dev/$name
		[ -b "$RIG_RAMDEV" ] || RIG_RAMDEV="/dev/nullb$(cat "$d/index")"
	else
		lsmod | grep -q '^brd ' && { echo "brd already loaded; cannot size it" >&2; return 1; }
		modprobe brd rd_nr=1 rd_size=$((size_mib * 1024)) || return 1
		RIG_RAMDEVS+=(brd)
		RIG_RAMDEV=/dev/ram0
	fi
	rig_wait_for_path 10 "$RIG_RAMDEV"
}

rig_ram_blockdev_teardown() {
	local d
	for d in "${RIG_RAMDEVS[@]}"; do
		if [ "$d" = brd ]; then
			rmmod brd
		else
			echo 0 > "$d/power"
			rmdir "$d"
		fi
	done 2>/dev/null
	RIG_RAMDEVS=()
}

# ---- kernel NVMe-oF target (the yardstick) -------------------------------------------------------
NVMET_CFG=/sys/kernel/config/nvmet
RIG_KNVMET_LINKS=() RIG_KNVMET_PORTS=() RIG_KNVMET_SUBSYS=()

# kernel_nvmet_ram NQN SIZE_MIB [PORT] [ADDR]: nvmet-rdma target exporting one RAM
# namespace (nsid 1) of SIZE_MIB at ADDR:PORT (defaults 192.0.2.1:4420), any host.
# Needs rig_rxe_up first. Sets KNVMET_DEV to the backing block device.
kernel_nvmet_ram() {
	local nqn=$1 size_mib=$2 port=${3:-$RIG_PORT} addr=${4:-$RIG_ADDR}
	local subsys="$NVMET_CFG/subsystems/$nqn" port_dir port_id dev d
	KNVMET_DEV=""
	modprobe nvmet && modprobe nvmet-rdma || return 1
	rig_ram_blockdev "knvmet${#RIG_RAMDEVS[@]}" "$size_mib" || return 1
	dev=$RIG_RAMDEV

	mkdir "$subsys" || return 1
	RIG_KNVMET_SUBSYS+=("$subsys")
	echo 1 > "$subsys/attr_allow_any_host" || return 1
	[ -e "$subsys/attr_model" ] && echo "nvt-rig kernel nvmet" > "$subsys/attr_model"
	mkdir "$subsys/namespaces/1" &&
	echo -n "$dev" > "$subsys/namespaces/1/device_path" &&
	echo 1 > "$subsys/namespaces/1/enable" || return 1

	# reuse a port already listening on addr:port, else create the next free port id
	port_dir=""
	for d in "$NVMET_CFG"/ports/*; do
		[ -d "$d" ] || continue
		if [ "$(cat "$d/addr_traddr")" = "$addr" ] && [ "$(cat "$d/addr_trsvcid")" = "$port" ]; then
			port_dir=$d
		fi
	done
	if [ -z "$port_dir" ]; then
		port_id=1
		while [ -e "$NVMET_CFG/ports/$port_id" ]; do port_id=$((port_id + 1)); done
		port_dir="$NVMET_CFG/ports/$port_id"
		mkdir "$port_dir" || return 1
		RIG_KNVMET_PORTS+=("$port_dir")
		echo rdma > "$port_dir/addr_trtype" &&
		echo ipv4 > "$port_dir/addr_adrfam" &&
		echo "$addr" > "$port_dir/addr_traddr" &&
		echo "$port" > "$port_dir/addr_trsvcid" || return 1
	fi
	ln -s "$subsys" "$port_dir/subsystems/$nqn" || return 1
	RIG_KNVMET_LINKS+=("$port_dir/subsystems/$nqn")
	rig_wait_for_rdma_listen 20 "$port" || return 1
	# shellcheck disable=SC2034 # read by the scenarios
	KNVMET_DEV=$dev
}

# kernel_nvmet_teardown: undo every kernel_nvmet_ram (links, ports, subsystems, RAM devs)
kernel_nvmet_teardown() {
	local x
	for x in "${RIG_KNVMET_LINKS[@]}"; do rm -f "$x"; done
	for x in "${RIG_KNVMET_PORTS[@]}"; do rmdir "$x"; done 2>/dev/null
	for x in "${RIG_KNVMET_SUBSYS[@]}"; do
		echo 0 > "$x/namespaces/1/enable"
		rmdir "$x/namespaces/1" "$x"
	done 2>/dev/null
	RIG_KNVMET_LINKS=() RIG_KNVMET_PORTS=() RIG_KNVMET_SUBSYS=()
	rig_ram_blockdev_teardown
}

# ---- NVMe-oF host side (kernel initiator, nvme-cli) ---------------------------------------------
RIG_CONNECTED=()

# rig_nvme_host_up: load the kernel NVMe-oF initiator (nvme-cli fails with
# "Failed to scan topology" until nvme-core has created /sys/class/nvme-subsystem)
rig_nvme_host_up() { modprobe -a nvme-core nvme-fabrics nvme-rdma; }

# rig_discovery_lists FILE NQN ADDR PORT: does `nvme discover` output FILE hold an rdma entry for NQN at ADDR:PORT?
rig_discovery_lists() {
	awk -v nqn="$2" -v addr="$3" -v port="$4" '
		/^=====Discovery Log Entry/ { t = s = a = p = "" }
		/^trtype:/ { t = $2 }
		/^subnqn:/ { s = $2 }
		/^traddr:/ { a = $2 }
		/^trsvcid:/ { p = $2 }
		t == "rdma" && s == nqn && a == addr && p == port { found = 1 }
		END { exit !found }' "$1"
}

# rig_nvme_connect NQN [PORT] [nvme-connect options...], e.g. rig_nvme_connect $NQN 4420 --nr-io-queues=2
rig_nvme_connect() {
	local nqn=$1 port=$RIG_PORT
	shift
	case "${1:-}" in [0-9]*) port=$1; shift ;; esac
	rig_nvme_host_up || return 1
	nvme connect -t rdma -a "$RIG_ADDR" -s "$port" -n "$nqn" "$@" || return 1
	RIG_CONNECTED+=("$nqn")
}

# rig_nvme_ctrl_of NQN: prints the controller name (nvmeX) connected to NQN
rig_nvme_ctrl_of() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$1" ] && { basename "$c"; return 0; }
	done
	return 1
}

# rig_nvme_ns_of NQN: prints /dev/nvmeXnY of the first namespace of NQN's subsystem
rig_nvme_ns_of() {
	local s b
	for s in /sys/class/nvme-subsystem/nvme-subsys*; do
		[ "$(cat "$s/subsysnqn" 2>/dev/null)" = "$1" ] || continue
		for b in "$s"/nvme*n*; do
			[ -e "$b" ] && [ -b "/dev/${b##*/}" ] && { echo "/dev/${b##*/}"; return 0; }
		done
	done
	return 1
}

# rig_nvme_ns_by_nsid NQN NSID: prints /dev/nvmeXnY of namespace NSID of NQN's subsystem
rig_nvme_ns_by_nsid() {
	local s b
	for s in /sys/class/nvme-subsystem/nvme-subsys*; do
		[ "$(cat "$s/subsysnqn" 2>/dev/null)" = "$1" ] || continue
		for b in "$s"/nvme*n*; do
			[ -e "$b/nsid" ] && [ "$(cat "$b/nsid")" = "$2" ] && [ -b "/dev/${b##*/}" ] &&
				{ echo "/dev/${b##*/}"; return 0; }
		done
	done
	return 1
}

# rig_wait_nvme_nsid SECS NQN NSID: waits for namespace NSID's block device and prints it
rig_wait_nvme_nsid() {
	rig_wait_for "$1" "namespace $3 of $2" rig_nvme_ns_by_nsid "$2" "$3" || return 1
	rig_nvme_ns_by_nsid "$2" "$3"
}

# rig_nvme_ctrl_state NQN: prints the state (live, connecting, ...) of NQN's controller
rig_nvme_ctrl_state() {
	local c
	c=$(rig_nvme_ctrl_of "$1") || return 1
	cat "/sys/class/nvme/$c/state"
}

# rig_nvme_ctrl_live NQN: is NQN's controller in state "live"?
rig_nvme_ctrl_live() { [ "$(rig_nvme_ctrl_state "$1" 2>/dev/null)" = live ]; }

# rig_wait_nvme_ns SECS NQN: waits for the namespace block device and prints it
rig_wait_nvme_ns() {
	rig_wait_for "$1" "namespace block device of $2" rig_nvme_ns_of "$2" || return 1
	rig_nvme_ns_of "$2"
}

rig_nvme_disconnect() {
	nvme disconnect -n "$1" || return 1
	local keep=() n
	for n in "${RIG_CONNECTED[@]}"; do [ "$n" = "$1" ] || keep+=("$n"); done
	RIG_CONNECTED=("${keep[@]}")
}

# ---- nvtd ---------------------------------------------------------------------------------------
NVTD_PID=""
NVTD_LOG=""
NVTD_STATUS=""    # exit status of the last nvtd that stop_nvtd stopped

# start_nvtd CONFIG: run $NVT_BUILD/nvtd -c CONFIG in the background, log in $NVT_RIG_OUT/nvtd.log
start_nvtd() {
	local config=$1 bin="$NVT_BUILD/nvtd"
	[ -x "$bin" ] || { echo "start_nvtd: no $bin (build the project first)" >&2; return 1; }
	[ -z "$NVTD_PID" ] || { echo "start_nvtd: nvtd already running (pid $NVTD_PID)" >&2; return 1; }
	NVTD_LOG="$NVT_RIG_OUT/nvtd.log"
	echo "=== $(date -u +%FT%TZ) $bin -c $config" >> "$NVTD_LOG"
	"$bin" -c "$config" >> "$NVTD_LOG" 2>&1 &
	NVTD_PID=$!
	sleep 0.5
	if ! kill -0 "$NVTD_PID" 2>/dev/null; then
		wait "$NVTD_PID"
		echo "start_nvtd: nvtd exited at once with status $?; log:" >&2
		tail -n 20 "$NVTD_LOG" | sed 's/^/    /' >&2
		NVTD_PID=""
		return 1
	fi
}

# stop_nvtd: SIGTERM, wait up to 15 s, then SIGKILL; returns 0 on a clean exit (0 or SIGTERM)
stop_nvtd() {
	[ -n "$NVTD_PID" ] || return 0
	local pid=$NVTD_PID status
	NVTD_PID=""
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 75); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "stop_nvtd: nvtd ignored SIGTERM for 15 s; killing it" >&2
		kill -KILL "$pid"
	fi
	wait "$pid"
	status=$?
	# shellcheck disable=SC2034 # read by the scenarios
	NVTD_STATUS=$status
	case "$status" in 0|143) return 0 ;; esac
	echo "stop_nvtd: nvtd exited with status $status (log $NVTD_LOG)" >&2
	return 1
}

# nvtd_alive: is the nvtd that start_nvtd started still running?
nvtd_alive() {
	[ -n "$NVTD_PID" ] && kill -0 "$NVTD_PID" 2>/dev/null &&
		! grep -q '^State:.*Z' "/proc/$NVTD_PID/status" 2>/dev/null
}

# nvtd_rss_kib: nvtd's resident set size in KiB (VmRSS)
nvtd_rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$NVTD_PID/status"; }

# nvtd_fd_count: how many file descriptors nvtd holds
nvtd_fd_count() { find "/proc/$NVTD_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# nvtd_serve_ram CFG NQN SIZE_MIB: write CFG (one listener on $RIG_ADDR:$RIG_PORT, subsystem
# NQN open to any host, one SIZE_MIB RAM namespace of 512-byte blocks), start nvtd on it and
# wait until it listens; each step is a check.
nvtd_serve_ram() {
	cat > "$1" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; } );
subsystems = ( {
	nqn = "$2";
	allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "${3}M"; block_size = 512; } );
} );
CFG
	rig_step "nvtd, $3 MiB RAM namespace"
	rig_check "nvtd started" start_nvtd "$1"
	rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
}

# nvtd_has_rdma: does this nvtd build have the RDMA transport? (convention: --version names it)
nvtd_has_rdma() {
	[ -x "$NVT_BUILD/nvtd" ] && "$NVT_BUILD/nvtd" --version 2>&1 | grep -qi rdma
}

# ---- teardown -----------------------------------------------------------------------------------
# rig_teardown: best effort, in reverse order of setup; safe to call twice.
# A scenario with state of its own (mounts, loop devices) defines
# rig_scenario_teardown, which runs first.
rig_teardown() {
	local n
	[ "$(type -t rig_scenario_teardown)" = function ] && rig_scenario_teardown
	for n in "${RIG_CONNECTED[@]}"; do nvme disconnect -n "$n" > /dev/null 2>&1; done
	RIG_CONNECTED=()
	stop_nvtd
	kernel_nvmet_teardown
	rig_rxe_down
} 2>/dev/null
