#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Live reconfiguration seen from the real Linux host: a namespace added by `nvtctl reload` appears (nvme list, udev) on the connected controller and a removed one disappears, a file namespace comes and goes, and namespaces grown live show their new size (blockdev), while fio verify runs on another namespace, a bad reload changes nothing, a listener added on a second address serves discovery and a connect with I/O and, removed, takes its controller with it while fio verify runs through the first, and a host taken off the allow-list by SIGHUP loses its controller.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NQN=nqn.2026-11.io.nvt.rig:reload
CFG=$NVT_RIG_OUT/nvtd-reload.cfg
SOCK=/run/nvtd-reload.sock	# a unix socket cannot live on the 9p share
O=$NVT_RIG_OUT

rig_begin
rig_check "rxe link up on the dummy netdev" rig_rxe_up
rig_must rig_nvme_host_up
HOST_NQN=$(rig_host_nqn)

# write_cfg HOSTS NAMESPACES: the whole file, as an admin would edit it
write_cfg() {
	cat > "$CFG" <<CFG
log_level = "info";
threads = 2;
control_socket = "$SOCK";
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; port = $RIG_PORT; }${LISTENER2:-} );
subsystems = ( {
	nqn = "$NQN";
	allow_any_host = false;
	hosts = ( $1 );
	namespaces = ( $2 );
}${SUBSYS2:-} );
CFG
}
NS1='{ nsid = 1; backend = "ram"; size = "64M"; block_size = 512; }'
NS2='{ nsid = 2; backend = "ram"; size = "32M"; block_size = 4096; }'
reload() { "$NVT_BUILD/nvtctl" -s "$SOCK" reload; }

write_cfg "\"$HOST_NQN\"" "$NS1"
rig_check "nvtd started" start_nvtd "$CFG"
rig_check "nvtd listens" rig_wait_for_rdma_listen 20 "$RIG_PORT"
rig_check "nvme connect" rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV1=$(rig_wait_nvme_nsid 30 "$NQN" 1) || rig_fail "no block device for $NQN nsid 1"
CTRL=$(rig_nvme_ctrl_of "$NQN")

# fio_verify_bg NAME SECS: random writes with crc32c verify on nsid 1 in the background (its pid: $!).
fio_verify_bg() {
	fio --name="$1" --filename="$DEV1" --direct=1 --rw=randwrite --bs=4k --iodepth=16 \
		--ioengine=libaio --size=32M --verify=crc32c --verify_backlog=256 --verify_fatal=1 \
		--time_based --runtime="$2" --output="$O/fio-$1.txt" &
}

rig_step "fio with verify on nsid 1 while the configuration changes"
fio_verify_bg keep 60
FIO=$!
sleep 3

rig_step "add nsid 2 to the file, nvtctl reload"
write_cfg "\"$HOST_NQN\"" "$NS1, $NS2"
reload > "$O/reload-add.txt" 2>&1 || true
sed 's/^/      /' "$O/reload-add.txt"
rig_check "reload reports nsid 2 added" grep -q 'nsid 2 added' "$O/reload-add.txt"
DEV2=$(rig_wait_nvme_nsid 30 "$NQN" 2) || rig_fail "nsid 2 never appeared on the host"
rig_check "nsid 2 on the same controller (no reconnect)" \
	bash -c "[ \"\$(cat /sys/class/nvme/$CTRL/state)\" = live ] && ls /sys/class/nvme/$CTRL/ | grep -q n2\$"
nvme list > "$O/nvme-list.txt" 2>&1 || true
rig_check "nvme list shows nsid 2" grep -q "${DEV2##*/}" "$O/nvme-list.txt"
rig_check "nsid 2 has 4096-byte blocks" \
	bash -c "[ \"\$(cat /sys/block/${DEV2##*/}/queue/logical_block_size)\" = 4096 ]"
rig_check "write and read back on the new namespace" bash -c \
	"head -c 1M /dev/urandom > $O/pat && dd if=$O/pat of=$DEV2 bs=1M oflag=direct status=none &&
	 dd if=$DEV2 of=$O/back bs=1M count=1 iflag=direct status=none && cmp $O/pat $O/back"

rig_step "a reload with a bad line changes nothing"
cp "$CFG" "$O/good.cfg"
sed -i 's/block_size = 4096;/block_size = 4096; bogus_setting = 1;/' "$CFG"
if reload > "$O/reload-bad.txt" 2>&1; then rig_fail "a bad configuration was reloaded"; fi
sed 's/^/      /' "$O/reload-bad.txt"
rig_check "the error names the file and line" grep -q "$CFG:[0-9]*:" "$O/reload-bad.txt"
write_cfg "\"$HOST_NQN\"" "$NS1"	# nsid 2 gone, and a bad block size for nsid 1
sed -i 's/block_size = 512;/block_size = 4096;/' "$CFG"
if reload > "$O/reload-refused.txt" 2>&1; then rig_fail "a block size change was applied live"; fi
rig_check "a block size change is refused" grep -q "block size" "$O/reload-refused.txt"
rig_check "nsid 2 still there after the refused reloads" rig_nvme_ns_by_nsid "$NQN" 2
rig_check "controller still live" rig_nvme_ctrl_live "$NQN"

rig_step "remove nsid 2 from the file, nvtctl reload"
write_cfg "\"$HOST_NQN\"" "$NS1"
reload > "$O/reload-remove.txt" 2>&1 || true
sed 's/^/      /' "$O/reload-remove.txt"
rig_check "reload reports nsid 2 removed" grep -q 'nsid 2 removed' "$O/reload-remove.txt"
rig_check "nsid 2's block device goes away on the host" \
	rig_wait_for 30 "nsid 2 gone" bash -c "! [ -b $DEV2 ]"
rig_check "controller still live after the removal" rig_nvme_ctrl_live "$NQN"

# A file namespace: its io_uring rings are made and dropped on nvtd's I/O threads by message.
IMG=/run/nvtd-reload-ns3.img	# tmpfs, as the socket: not the 9p share
rm -f "$IMG"
ns3() { echo "{ nsid = 3; backend = \"file\"; size = \"$1\"; path = \"$IMG\"; }"; }

rig_step "add a file namespace (nsid 3), nvtctl reload"
write_cfg "\"$HOST_NQN\"" "$NS1, $(ns3 16M)"
reload > "$O/reload-add3.txt" 2>&1 || true
sed 's/^/      /' "$O/reload-add3.txt"
rig_check "reload reports nsid 3 added (file)" grep -q 'nsid 3 added (file' "$O/reload-add3.txt"
DEV3=$(rig_wait_nvme_nsid 30 "$NQN" 3) || rig_fail "nsid 3 never appeared on the host"
# The block device is named by the host's instance count (nsid 2's may be reused), not by nsid.
rig_check "nsid 3 on the same controller (no reconnect)" \
	bash -c "[ \"\$(cat /sys/class/nvme/$CTRL/state)\" = live ] && ls /sys/class/nvme/$CTRL/ | grep -q n${DEV3##*n}\$"
rig_check "nsid 3 is 16 MiB" bash -c "[ \"\$(blockdev --getsize64 $DEV3)\" = 16777216 ]"
rig_check "write and read back on the file namespace" bash -c \
	"head -c 1M /dev/urandom > $O/pat3 && dd if=$O/pat3 of=$DEV3 bs=1M oflag=direct status=none &&
	 dd if=$DEV3 of=$O/back3 bs=1M count=1 iflag=direct status=none && cmp $O/pat3 $O/back3"

rig_step "grow nsid 3 (file, 16M to 32M) and nsid 1 (ram, under fio, 64M to 128M)"
NS1_BIG='{ nsid = 1; backend = "ram"; size = "128M"; block_size = 512; }'
write_cfg "\"$HOST_NQN\"" "$NS1_BIG, $(ns3 32M)"
reload > "$O/reload-resize.txt" 2>&1 || true
sed 's/^/      /' "$O/reload-resize.txt"
rig_check "reload reports nsid 3 resized" grep -q 'nsid 3 resized (32768 to 65536 blocks' "$O/reload-resize.txt"
rig_check "reload reports nsid 1 resized" grep -q 'nsid 1 resized (131072 to 262144 blocks' "$O/reload-resize.txt"
rig_check "the host sees nsid 3 at 32 MiB without reconnecting" \
	rig_wait_for 30 "nsid 3 at 32M" bash -c "[ \"\$(blockdev --getsize64 $DEV3)\" = 33554432 ]"
rig_check "the host sees nsid 1 at 128 MiB" \
	rig_wait_for 30 "nsid 1 at 128M" bash -c "[ \"\$(blockdev --getsize64 $DEV1)\" = 134217728 ]"
nvme list > "$O/nvme-list-resized.txt" 2>&1 || true
rig_check "the first MiB of nsid 3 kept, the new end writable" bash -c \
	"dd if=$DEV3 of=$O/back3 bs=1M count=1 iflag=direct status=none && cmp $O/pat3 $O/back3 &&
	 dd if=$O/pat3 of=$DEV3 bs=1M seek=31 oflag=direct status=none"
sed -i 's/size = "32M"; path/size = "16M"; path/' "$CFG"
if reload > "$O/reload-shrink.txt" 2>&1; then rig_fail "a shrink was applied live"; fi
rig_check "a shrink is refused, saying why" grep -q 'cannot shrink live' "$O/reload-shrink.txt"
rig_check "nsid 3 still 32 MiB after the refused shrink" bash -c "[ \"\$(blockdev --getsize64 $DEV3)\" = 33554432 ]"
rig_check "controller still live after the resizes" rig_nvme_ctrl_live "$NQN"

rig_step "remove the file namespace, nvtctl reload"
write_cfg "\"$HOST_NQN\"" "$NS1_BIG"
reload > "$O/reload-remove3.txt" 2>&1 || true
sed 's/^/      /' "$O/reload-remove3.txt"
rig_check "reload reports nsid 3 removed" grep -q 'nsid 3 removed' "$O/reload-remove3.txt"
rig_check "nsid 3's block device goes away on the host" \
	rig_wait_for 30 "nsid 3 gone" bash -c "! [ -b $DEV3 ]"
rig_check "controller still live after removing nsid 3" rig_nvme_ctrl_live "$NQN"
NS1=$NS1_BIG

rig_step "fio verify on nsid 1 finished clean"
rig_check "fio verify on nsid 1 never failed" wait "$FIO"
rig_check "fio reported no errors" grep -q 'err= 0' "$O/fio-keep.txt"

# A listener added live on a second address of the dummy netdev, and removed again.
not_listening() { ! rig_rdma_listening "$1"; }
ADDR2=192.0.2.2 PORT2=4421 NQN2=nqn.2026-11.io.nvt.rig:reload-two
rig_step "a second address, a listener and a subsystem added there by nvtctl reload"
rig_check "a second address on $RIG_NETDEV" ip addr add "$ADDR2/$RIG_PREFIX" dev "$RIG_NETDEV"
LISTENER2=", { transport = \"rdma\"; address = \"$ADDR2\"; port = $PORT2; }"
SUBSYS2=", { nqn = \"$NQN2\"; allow_any_host = true; namespaces = ( { nsid = 1; backend = \"ram\"; size = \"16M\"; } ); }"
write_cfg "\"$HOST_NQN\"" "$NS1"
reload > "$O/reload-listen.txt" 2>&1 || true
sed 's/^/      /' "$O/reload-listen.txt"
rig_check "reload reports the listener added" grep -q "listener rdma $ADDR2:$PORT2 added\$" "$O/reload-listen.txt"
rig_check "nvtd listens on $ADDR2:$PORT2" rig_wait_for_rdma_listen 20 "$PORT2"
nvme discover -t rdma -a "$ADDR2" -s "$PORT2" > "$O/discover2.txt" 2>&1 || true
rig_check "nvme discover at the new listener lists it" \
	bash -c "grep -q 'traddr: *$ADDR2' '$O/discover2.txt' && grep -q 'trsvcid: *$PORT2' '$O/discover2.txt' && grep -q '$NQN2' '$O/discover2.txt'"
rig_check "nvme connect through the new listener" \
	nvme connect -t rdma -a "$ADDR2" -s "$PORT2" -n "$NQN2" --ctrl-loss-tmo=5
RIG_CONNECTED+=("$NQN2")
DEVB=$(rig_wait_nvme_nsid 30 "$NQN2" 1) || rig_fail "no block device for $NQN2"
CTRLB=$(rig_nvme_ctrl_of "$NQN2")
rig_check "its controller came in at $ADDR2" grep -q "traddr=$ADDR2" "/sys/class/nvme/$CTRLB/address"
rig_check "write and read back through the new listener" bash -c \
	"head -c 1M /dev/urandom > $O/patb && dd if=$O/patb of=$DEVB bs=1M oflag=direct status=none &&
	 dd if=$DEVB of=$O/backb bs=1M count=1 iflag=direct status=none && cmp $O/patb $O/backb"

rig_step "remove the listener while fio verify runs through the first one"
fio_verify_bg keep2 15
FIO2=$!
sleep 2
LISTENER2=""	# the listener goes, $NQN2 (SUBSYS2) stays
write_cfg "\"$HOST_NQN\"" "$NS1"
reload > "$O/reload-unlisten.txt" 2>&1 || true
sed 's/^/      /' "$O/reload-unlisten.txt"
rig_check "reload reports the listener removed" grep -q "listener rdma $ADDR2:$PORT2 removed" "$O/reload-unlisten.txt"
rig_check "the controller that came in through it goes" \
	rig_wait_for 30 "$CTRLB not live" bash -c "! grep -qx live /sys/class/nvme/$CTRLB/state 2>/dev/null"
rig_check "its reconnects find nobody listening" \
	rig_wait_for 20 "no listener" not_listening "$PORT2"
rig_check "the first controller stays live" rig_nvme_ctrl_live "$NQN"
rig_check "fio verify through the first listener never failed" wait "$FIO2"
rig_check "fio (second run) reported no errors" grep -q 'err= 0' "$O/fio-keep2.txt"
nvme disconnect -n "$NQN2" > /dev/null 2>&1 || true

rig_step "take this host off the allow-list, SIGHUP"
write_cfg '"nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001"' "$NS1, $NS2"
kill -HUP "$NVTD_PID"
rig_check "nvtd logs the torn-down controller" \
	rig_wait_for 20 "teardown in the log" grep -q "torn down" "$NVTD_LOG"
rig_check "the host's controller is no longer live" \
	rig_wait_for 30 "controller not live" bash -c "! grep -qx live /sys/class/nvme/$CTRL/state 2>/dev/null"
rig_check "its reconnects are refused" \
	rig_wait_for 30 "refused reconnect" bash -c "dmesg | grep -q 'Connect for subsystem $NQN is not allowed'"

rig_step "back on the list, stop"
write_cfg "\"$HOST_NQN\"" "$NS1, $NS2"
rig_check "reload puts the host back" bash -c "$NVT_BUILD/nvtctl -s $SOCK reload | grep -q 'allowed'"
rig_check "nvme disconnect" rig_nvme_disconnect "$NQN"
rig_check "nvtd alive" nvtd_alive
rig_check "nvtd stops cleanly on SIGTERM" stop_nvtd
