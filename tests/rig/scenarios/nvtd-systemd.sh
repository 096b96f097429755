#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtd.service as installed, under a real systemd (PID 1 of a PID namespace) inside the rig VM: rxe, an emulated NVMe, the sandbox, journald, reload, restarts.
#
# rig.nvtd-systemd (nvtd-systemd.qemu-args gives it the emulated NVMe controller). The
# VM's writes, the install into /usr included, vanish at poweroff.
set -u
NVT_SRC=${NVT_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
NVT_BUILD=${NVT_BUILD:-$NVT_SRC/build}
NVT_RIG_OUT=${NVT_RIG_OUT:-/tmp/nvt-sd-out}
. "$(dirname "$0")/lib.sh"
OUT=$NVT_RIG_OUT
P=0 F=0
ok() { echo "PASS: $*"; P=$((P + 1)); }
bad() { echo "FAIL: $*"; F=$((F + 1)); }
chk() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }

rig_rxe_up || { echo "FAIL: rxe"; exit 1; }
# What udev does at boot: the drivers are there before nvtd.service starts. DeviceAllow=
# classes (char-nvme-generic) are resolved at each start, so a driver loaded later is
# denied until the next start (exit 3, retried by Restart=on-failure 5 s later).
modprobe nvme
# cmake --install writes into the build tree (the unit it generates, install_manifest.txt):
# a build under /tmp is a read-only share here, so it gets a tmpfs overlay as the root has;
# the writable share of this run's output (inside the build tree) is moved back on top.
if ! touch "$NVT_BUILD/.nvt-rw" 2>/dev/null; then
	mkdir -p /tmp/build-up /tmp/build-work /tmp/rig-out-keep
	mount --bind "$OUT" /tmp/rig-out-keep &&
	mount -t overlay -o "lowerdir=$NVT_BUILD,upperdir=/tmp/build-up,workdir=/tmp/build-work" \
		overlay "$NVT_BUILD" &&
	mount --move /tmp/rig-out-keep "$OUT" || { echo "FAIL: cannot overlay $NVT_BUILD"; exit 1; }
fi
cmake --install $NVT_BUILD --prefix /usr > $OUT/install.log 2>&1 || { cat $OUT/install.log; exit 1; }
mkdir -p /var/lib/nvt
cat > /etc/nvt/nvt.conf <<CFG
control_socket = "/run/nvt/nvtd.sock";
threads = 1;
listeners = ( { transport = "rdma"; address = "192.0.2.1"; port = 4420; } );
subsystems = ( { nqn = "nqn.2026-12.io.nvt:sd"; allow_any_host = true;
  namespaces = ( { nsid = 1; backend = "ram"; size = "64M"; },
                 { nsid = 2; backend = "file"; path = "/var/lib/nvt/ns2.img"; size = "64M"; },
                 { nsid = 3; backend = "nvme"; device = "/dev/ng0n1"; } ); } );
vhost = ( { socket = "/run/nvt/vhost.0";
  luns = ( { lun = 0; subsystem = "nqn.2026-12.io.nvt:sd"; nsid = 1; } ); } );
CFG
chk "check-config of the service's file" nvtd --check-config /etc/nvt/nvt.conf > /dev/null
mkdir -p /etc/systemd/system
printf '[Unit]\nDescription=nvt test target\n' > /etc/systemd/system/nvt-test.target

unshare --pid --fork --mount-proc /lib/systemd/systemd --system --unit=nvt-test.target \
	--log-level=notice --log-target=console > $OUT/systemd.log 2>&1 &
US=$!
SD=""
for _ in $(seq 50); do SD=$(pgrep -P $US); [ -n "$SD" ] && break; sleep 0.2; done
echo "systemd: pid $SD (parent unshare $US)"
S() { nsenter -t "$SD" -a -r -w "$@"; }
for _ in $(seq 150); do
	st=$(S systemctl is-system-running 2>/dev/null); case "$st" in running|degraded) break ;; esac; sleep 0.4
done
echo "system state: $st"
S systemctl --no-pager --failed
S systemctl start systemd-journald.service; echo "journald start: $?"

# The emulated NVMe controller probes asynchronously: its ng node comes a little after boot.
diag() {
	echo "--- diag $1: $(cut -d' ' -f1 /proc/uptime)s"
	S grep -i 'nvme\|infiniband' /proc/devices
	S ls -l /dev/ng0n1 /dev/nvme0 /dev/nvme0n1 /dev/infiniband/ 2>&1
	lsmod | grep -E '^nvme|^ib_uverbs|^rdma_ucm' | cut -c1-60
}
rig_wait_for 60 "/dev/ng0n1 in systemd's /dev" S test -c /dev/ng0n1 && echo "/dev/ng0n1 present"
diag "before the first start"
t0=$(date +%s.%N)
S systemctl start nvtd; rc=$?
t1=$(date +%s.%N)
chk "systemctl start nvtd: 0 (returned after $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') s)" [ $rc = 0 ]
S systemctl status nvtd --no-pager -l > $OUT/status.txt 2>&1; cat $OUT/status.txt
chk "active (running)" grep -q "Active: active (running)" $OUT/status.txt
chk "Status: line from STATUS=" grep -q 'Status: "serving 1 subsystem(s); 1 of 1 listener(s) up; 1 vhost controller(s)"' $OUT/status.txt
chk "control socket in /run/nvt" S test -S /run/nvt/nvtd.sock
chk "vhost socket in /run/nvt" S test -S /run/nvt/vhost.0
S ls -la /run/nvt
chk "nvtctl status" S nvtctl -s /run/nvt/nvtd.sock status
rig_nvme_host_up
chk "nvme discover sees the subsystem" sh -c 'nvme discover -t rdma -a 192.0.2.1 -s 4420 | tee '$OUT'/discover.txt | grep -q "nqn.2026-12.io.nvt:sd"'
if rig_nvme_connect nqn.2026-12.io.nvt:sd; then
	ok "nvme connect"
	for n in 1 2 3; do
		dev=$(rig_wait_nvme_nsid 20 nqn.2026-12.io.nvt:sd $n) || { bad "ns $n appears"; continue; }
		head -c 8M /dev/urandom > /tmp/pat.$n
		dd if=/tmp/pat.$n of=$dev bs=1M oflag=direct status=none
		chk "ns $n ($dev): 8 MiB written and read back equal" cmp -n 8388608 /tmp/pat.$n $dev
	done
	rig_nvme_disconnect nqn.2026-12.io.nvt:sd
else
	bad "nvme connect"
fi
S journalctl -u nvtd --no-pager -o verbose > $OUT/journal-verbose.txt 2>&1
S journalctl -u nvtd --no-pager > $OUT/journal.txt 2>&1; cat $OUT/journal.txt
chk "journal: info lines at PRIORITY=6, no '<6>' or 'nvtd info:' left in MESSAGE" sh -c '
	grep -B30 "MESSAGE=listening on rdma 192.0.2.1:4420" '$OUT'/journal-verbose.txt | grep -q "PRIORITY=6" &&
	! grep -q "MESSAGE=<[0-9]>\|MESSAGE=nvtd info:" '$OUT'/journal-verbose.txt'
S journalctl -u nvtd -p warning --no-pager > $OUT/journal-warn.txt 2>&1
echo "--- -p warning:"; cat $OUT/journal-warn.txt
S systemd-analyze security nvtd --no-pager > $OUT/security.txt 2>&1; tail -n 2 $OUT/security.txt

# systemctl reload: ExecReload re-reads the file; a namespace added shows in nvtctl status.
sed -i 's|{ nsid = 1; backend = "ram"; size = "64M"; },|{ nsid = 1; backend = "ram"; size = "64M"; }, { nsid = 4; backend = "ram"; size = "8M"; },|' /etc/nvt/nvt.conf
main_pid=$(S systemctl show -p MainPID --value nvtd)
S systemctl reload nvtd; rc=$?
chk "systemctl reload nvtd: 0" [ $rc = 0 ]
chk "after the reload: 4 namespaces" sh -c "nsenter -t $SD -a -r -w nvtctl -s /run/nvt/nvtd.sock status | grep -q '4 namespace(s)'"
chk "still active, the same main PID ($main_pid)" sh -c "[ \"\$(nsenter -t $SD -a -r -w systemctl show -p MainPID --value nvtd)\" = '$main_pid' ] &&
	nsenter -t $SD -a -r -w systemctl is-active -q nvtd"
S journalctl -u nvtd --no-pager -n 4

S systemctl stop nvtd; echo "stop: $?"
S systemctl show -p Result -p ExecMainStatus -p ActiveState nvtd > $OUT/show.txt; cat $OUT/show.txt
chk "stopped: Result=success, status 0" sh -c 'grep -q Result=success '$OUT'/show.txt && grep -q ExecMainStatus=0 '$OUT'/show.txt'
chk "/run/nvt removed at stop" S test ! -e /run/nvt
S journalctl -u nvtd --no-pager -n 8

# A failing start: a config error (exit 1) is not restarted.
echo 'bogus = 1;' >> /etc/nvt/nvt.conf
S systemctl start nvtd; echo "start with a bad config: $?"
sleep 7
S systemctl show -p Result -p ExecMainStatus -p NRestarts -p ActiveState nvtd > $OUT/show-bad.txt; cat $OUT/show-bad.txt
chk "bad config: failed, exit 1, not restarted" sh -c 'grep -q ExecMainStatus=1 '$OUT'/show-bad.txt && grep -q NRestarts=0 '$OUT'/show-bad.txt'
S journalctl -u nvtd --no-pager -n 6 -o short-precise -p err
S journalctl -u nvtd --no-pager -o verbose -n 30 | grep -E 'PRIORITY|MESSAGE=' | tail -12

# Errors reach -p err now.
chk "journalctl -p err shows the config error" sh -c "nsenter -t $SD -a -r -w journalctl -u nvtd -p err --no-pager | grep -q 'bogus: unknown setting'"

# A file backend on a block device: refused by DevicePolicy=closed until the admin allows its class.
truncate -s 64M /var/lib/nvt/blk.img
LOOP=$(losetup -f --show /var/lib/nvt/blk.img)
echo "loop: $LOOP"
sed -i '/bogus/d' /etc/nvt/nvt.conf
sed -i "s|{ nsid = 3; backend = \"nvme\"; device = \"/dev/ng0n1\"; }|{ nsid = 3; backend = \"file\"; path = \"$LOOP\"; }|" /etc/nvt/nvt.conf
grep nsid /etc/nvt/nvt.conf
S systemctl reset-failed nvtd
S systemctl start nvtd; rc=$?
chk "block device without DeviceAllow: start fails" [ $rc != 0 ]
S systemctl stop nvtd
S journalctl -u nvtd --no-pager -p err -n 5
mkdir -p /etc/systemd/system/nvtd.service.d
printf '[Service]\nDeviceAllow=block-loop rw\n' > /etc/systemd/system/nvtd.service.d/loop.conf
S systemctl daemon-reload
S systemctl reset-failed nvtd
t0=$(date +%s.%N)
S systemctl start nvtd; rc=$?
t1=$(date +%s.%N)
chk "with DeviceAllow=block-loop rw: starts ($(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') s)" [ $rc = 0 ]
S systemctl status nvtd --no-pager -l | head -12
S systemctl stop nvtd
S systemd-analyze critical-chain nvtd.service --no-pager 2>&1 | head

kill -9 "$SD" 2>/dev/null
echo "RESULT: $P passed, $F failed"
[ $F = 0 ]
