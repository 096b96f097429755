# SPDX-License-Identifier: BSD-3-Clause
# vhost rig benchmark: the same guest fio job against nvtd's vhost-user-scsi LUNs (RAM, PI off and on), QEMU's own virtio-scsi (iothread, io_uring) and qemu-storage-daemon's vhost-user-blk on a tmpfs file; prints IOPS and ratios.
# shellcheck shell=bash
# Numbers only: nothing here fails on speed. Under TCG absolute IOPS mean
# nothing; the ratios, measured in one run on one machine, do.

VH_NQN=nqn.2026-12.io.nvt:bench
export VH_BENCH_S=${NVT_RIG_BENCH_S:-15}

vh_host() {
	local cfg=$NVT_RIG_OUT/nvtd.cfg img=/dev/shm/nvt-vhost-bench.raw qsd_sock=$NVT_RIG_OUT/vublk.sock
	cat > "$cfg" <<CFG
threads = 2;
subsystems = ( { nqn = "$VH_NQN"; allow_any_host = true; namespaces = (
	{ nsid = 1; backend = "ram"; size = "256M"; },
	{ nsid = 2; backend = "ram"; size = "256M"; pi = { type = 1; }; } ); } );
vhost = ( { socket = "$VH_SOCK"; luns = (
	{ lun = 0; subsystem = "$VH_NQN"; nsid = 1; },
	{ lun = 1; subsystem = "$VH_NQN"; nsid = 2; } ); } );
CFG
	rm -f "$NVT_RIG_OUT"/iops-*
	vh_start_nvtd "$cfg"
	VH_BENCH_WHAT="nvtd-plain:lun0 nvtd-pi:lun1" vh_guest fio
	vh_nvtd_counters > "$NVT_RIG_OUT/nvtd-counters"
	vh_stop_nvtd

	truncate -s 256M "$img"
	VH_DEVICE=none VH_BENCH_WHAT="qemu-scsi-hd:lun0" vh_guest fio \
		-q -object -q iothread,id=io0 \
		-q -drive -q "file=$img,if=none,id=d0,format=raw,aio=io_uring,cache.direct=off" \
		-q -device -q virtio-scsi-pci,id=scsi0,iothread=io0,num_queues=2 \
		-q -device -q scsi-hd,drive=d0,bus=scsi0.0
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=f0,filename=$img,aio=io_uring,cache.direct=off" \
		--export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$qsd_sock,writable=on,num-queues=2" \
		> "$NVT_RIG_OUT/qsd.log" 2>&1 &
	local qsd=$!
	vh_track "$qsd"
	for _ in $(seq 1 50); do [ -S "$qsd_sock" ] && break; sleep 0.1; done
	VH_DEVICE=none VH_BENCH_WHAT="qsd-vhost-user-blk:vda" vh_guest fio \
		-q -chardev -q "socket,id=vub0,path=$qsd_sock" \
		-q -device -q vhost-user-blk-pci,chardev=vub0,num-queues=2
	kill "$qsd"; wait "$qsd" 2>/dev/null || true
	rm -f "$img"
	vh_bench_report
}

vh_iops() { cat "$NVT_RIG_OUT/iops-$1-$2" 2>/dev/null || echo 0; }

# vh_nvtd_counters: "READS WRITES CPU_TICKS" of the running nvtd. Its reads
# are almost all kick eventfds (one per wake-up), its writes call eventfds
# (one per interrupt): counts, unlike IOPS, that TCG noise barely moves.
vh_nvtd_counters() {
	echo "$(awk '/^syscr/ { r = $2 } /^syscw/ { w = $2 } END { print r, w }' "/proc/$VH_NVTD_PID/io")" \
		"$(awk '{ print $14 + $15 }' "/proc/$VH_NVTD_PID/stat")"
}

vh_bench_report() {
	local rw base
	echo "=== vhost bench (guest fio 4k, iodepth 16, 2 jobs, ${VH_BENCH_S}s each; TCG: compare ratios only)"
	for rw in randread randwrite; do
		base=$(vh_iops qemu-scsi-hd $rw)
		for w in nvtd-plain nvtd-pi qemu-scsi-hd qsd-vhost-user-blk; do
			awk -v w="$w" -v rw="$rw" -v i="$(vh_iops "$w" "$rw")" -v b="$base" \
				'BEGIN { printf "  %-9s %-20s %8d IOPS  %5.2fx of qemu-scsi-hd\n", rw, w, i, b ? i / b : 0 }'
		done
		awk -v a="$(vh_iops nvtd-pi $rw)" -v b="$(vh_iops nvtd-plain $rw)" \
			'BEGIN { printf "  %-9s PI on / PI off (nvtd): %.2f\n", "", b ? a / b : 0 }'
	done
	# Requests: each run's IOPS over its runtime plus fio's 2 s ramp (approximate).
	read -r reads writes ticks < "$NVT_RIG_OUT/nvtd-counters" || return 0
	awk -v r="$reads" -v w="$writes" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$VH_BENCH_S" \
		-v n="$(( $(vh_iops nvtd-plain randread) + $(vh_iops nvtd-plain randwrite) + \
			  $(vh_iops nvtd-pi randread) + $(vh_iops nvtd-pi randwrite) ))" \
		'BEGIN { q = n * (s + 2); if (!q) exit
			 printf "  nvtd per request (both LUNs, ~%d requests): %.2f wake-ups (kick reads), %.2f interrupts (call writes), %.1f us CPU\n",
				q, r / q, w / q, t / hz * 1e6 / q }'
}

# guest: VH_BENCH_WHAT = "NAME:DISK ..." where DISK is lunN (virtio-scsi) or vdX
vh_guest_fio() {
	local item name disk dev rw
	for item in $VH_BENCH_WHAT; do
		name=${item%%:*} disk=${item#*:}
		case "$disk" in
		lun*) rig_wait_for 60 "LUN ${disk#lun}" sh -c "ls /sys/bus/scsi/devices/*:0:0:${disk#lun}/block/* > /dev/null"
		      dev=/dev/$(basename /sys/bus/scsi/devices/*:0:0:"${disk#lun}"/block/*) ;;
		*) modprobe virtio_blk; rig_wait_for 60 "/dev/$disk" test -b "/dev/$disk"; dev=/dev/$disk ;;
		esac
		for rw in randread randwrite; do
			fio --name=b --filename="$dev" --ioengine=libaio --direct=1 --rw=$rw --bs=4k \
				--iodepth=16 --numjobs=2 --group_reporting --size=128M --time_based \
				--runtime="$VH_BENCH_S" --ramp_time=2 --output-format=json > /root/fio.json
			python3 -c 'import json,sys; j=json.load(open("/root/fio.json"))["jobs"][0]; print(int(j["read"]["iops"] + j["write"]["iops"]))' \
				> "$NVT_RIG_OUT/iops-$name-$rw"
			rig_info "$name $rw $(cat "$NVT_RIG_OUT/iops-$name-$rw") IOPS ($dev)"
		done
	done
	rig_pass "fio ran on $VH_BENCH_WHAT"
}
