# SPDX-License-Identifier: BSD-3-Clause
# vhost rig scenario: a LUN added to and removed from a running guest by nvtctl reload appears and goes in Linux without a manual rescan (virtio-scsi hotplug events), while fio verify runs on another LUN.
# shellcheck shell=bash

VH_NQN=nqn.2026-12.io.nvt:hotplug

# ---- host side -------------------------------------------------------------------
vh_hp_cfg() { # EXTRA_LUN: nvtd's file, LUN 0 always, LUN 3 (nsid 2) when EXTRA_LUN is 1
	local lun3=""
	[ "$1" = 1 ] && lun3=", { lun = 3; subsystem = \"$VH_NQN\"; nsid = 2; }"
	cat > "$NVT_RIG_OUT/nvtd.cfg" <<CFG
log_level = "info";
control_socket = "$VH_CTL";
threads = 2;
subsystems = ( { nqn = "$VH_NQN"; allow_any_host = true; namespaces = (
	{ nsid = 1; backend = "ram"; size = "128M"; },
	{ nsid = 2; backend = "ram"; size = "32M"; } ); } );
vhost = ( { socket = "$VH_SOCK"; luns = (
	{ lun = 0; subsystem = "$VH_NQN"; nsid = 1; } $lun3 ); } );
CFG
}

# vh_hp_reload STEP EXTRA_LUN: once the guest asks (file want-STEP), edit and reload, then answer (STEP-done)
vh_hp_reload() {
	# no deadline of its own: the VM may wait long for the rig lock; vh_cleanup ends this
	until [ -e "$NVT_RIG_OUT/want-$1" ]; do
		kill -0 "$VH_NVTD_PID" 2>/dev/null || return 1
		sleep 0.25
	done
	vh_hp_cfg "$2"
	"$VH_NVTCTL" -s "$VH_CTL" reload > "$NVT_RIG_OUT/reload-$1.out" 2>&1 || return 1
	touch "$NVT_RIG_OUT/$1-done"
}

vh_host() {
	vh_hp_cfg 0
	vh_start_nvtd "$NVT_RIG_OUT/nvtd.cfg"
	( vh_hp_reload add 1 && vh_hp_reload remove 0 ) &
	local driver=$!
	vh_track "$driver"
	vh_guest main
	wait "$driver" || vh_fail "a reload failed or was never asked for"
	sed 's/^/    /' "$NVT_RIG_OUT"/reload-*.out
	grep -q "LUN 3 added" "$NVT_RIG_OUT/reload-add.out" || vh_fail "the add reload did not add LUN 3"
	grep -q "LUN 3 removed" "$NVT_RIG_OUT/reload-remove.out" || vh_fail "the remove reload did not remove LUN 3"
	vh_stop_nvtd
}

# ---- guest side ------------------------------------------------------------------
vh_hp_has_lun() { ls /sys/bus/scsi/devices/*:0:0:"$1"/block/* > /dev/null 2>&1; }
vh_hp_gone() { ! ls -d /sys/bus/scsi/devices/*:0:0:"$1" > /dev/null 2>&1; }

vh_guest_main() {
	local fio_pid d3
	rig_wait_for 60 "LUN 0" vh_hp_has_lun 0
	rig_check "LUN 3 not there at boot" vh_hp_gone 3
	D0=/dev/$(basename /sys/bus/scsi/devices/*:0:0:0/block/*)
	rig_info "LUN0 $D0"
	fio --name=v --filename="$D0" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
		--iodepth=8 --size=32M --time_based --runtime=600 --verify=crc32c --verify_fatal=1 \
		--verify_backlog=64 --verify_state_save=0 > /tmp/fio.out 2>&1 &
	fio_pid=$!
	sleep 2
	rig_check "fio verify running on LUN 0" kill -0 "$fio_pid"

	touch "$NVT_RIG_OUT/want-add"
	rig_wait_for_path 120 "$NVT_RIG_OUT/add-done"
	rig_check "LUN 3 appears after the reload, no rescan asked" rig_wait_for 60 "LUN 3" vh_hp_has_lun 3
	d3=/dev/$(basename /sys/bus/scsi/devices/*:0:0:3/block/*)
	rig_info "LUN3 $d3: $(cat "/sys/block/$(basename "$d3")/size") sectors"
	rig_check "LUN 3 is nsid 2's 32 MiB" test "$(cat "/sys/block/$(basename "$d3")/size")" = 65536
	rig_check "LUN 3 reads and writes" sh -c "dd if=/dev/urandom of=/tmp/p bs=4k count=64 status=none && dd if=/tmp/p of=$d3 bs=4k oflag=direct status=none && dd if=$d3 of=/tmp/q bs=4k count=64 iflag=direct status=none && cmp /tmp/p /tmp/q"
	lsscsi | sed 's/^/    /'

	touch "$NVT_RIG_OUT/want-remove"
	rig_wait_for_path 120 "$NVT_RIG_OUT/remove-done"
	rig_check "LUN 3 goes after the reload" rig_wait_for 60 "LUN 3 gone" vh_hp_gone 3
	rig_check "LUN 0 still there" vh_hp_has_lun 0
	rig_check "fio verify on LUN 0 carried on through both" kill -0 "$fio_pid"
	kill -INT "$fio_pid"
	wait "$fio_pid" || true
	sed 's/^/    fio: /' /tmp/fio.out | grep -i 'err\|write:' | head -n 4
	rig_check "fio verify found no error" sh -c 'grep -q "err= 0" /tmp/fio.out && ! grep -q -i "verify: bad" /tmp/fio.out'
	rig_check "kernel log clean" rig_dmesg_clean
	dmesg | grep -i 'scsi\|sd ' | tail -n 8 | sed 's/^/    /'
}
