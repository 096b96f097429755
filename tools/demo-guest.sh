#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Inside the rig VM (tools/demo.sh): soft-RoCE, nvtd, and the Linux host using it, narrated.
set -euo pipefail
. "$NVT_SRC/tests/rig/scenarios/lib.sh"
say() { echo "demo: $*"; }
trap 'echo "DEMO-FAIL at line $LINENO"; rig_teardown' ERR
NQN=nqn.2026-11.io.nvt:demo
CFG=$NVT_RIG_OUT/demo.cfg

rig_rxe_up
say "soft-RoCE device $RIG_RDMA_DEV on a dummy netdev, address $RIG_ADDR (no traffic leaves the VM)"
cat > "$CFG" <<CFG
listeners = ( { transport = "rdma"; address = "$RIG_ADDR"; } );
subsystems = ( { nqn = "$NQN"; allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "256M"; } ); } );
CFG
start_nvtd "$CFG"
rig_wait_for_rdma_listen 20 "$RIG_PORT"
say "nvtd is serving $NQN (256 MiB in RAM) on $RIG_ADDR:$RIG_PORT"
rig_nvme_host_up
nvme discover -t rdma -a "$RIG_ADDR" -s "$RIG_PORT" > "$NVT_RIG_OUT/discover.txt"
say "nvme discover: $(grep -c '^subnqn' "$NVT_RIG_OUT/discover.txt") subsystem(s): $(awk '/^subnqn/{print $2}' "$NVT_RIG_OUT/discover.txt")"
rig_nvme_connect "$NQN" "$RIG_PORT" --nr-io-queues=2
DEV=$(rig_wait_nvme_ns 30 "$NQN")
say "nvme connect: the kernel's nvme-rdma driver made $DEV ($(blockdev --getsize64 "$DEV") bytes)"
say "nvme list: $(nvme list | awk -v d="$DEV" '$1 == d { $1 = ""; print }')"
modprobe ext4
mkfs.ext4 -q -F "$DEV"
mkdir -p /mnt/demo
mount "$DEV" /mnt/demo
say "mkfs.ext4 and mount: $(df -h /mnt/demo | awk 'NR == 2 { print $2 " filesystem, " $4 " free" }')"
fio --name=demo --directory=/mnt/demo --size=32M --rw=randrw --bs=4k --iodepth=16 \
	--ioengine=libaio --direct=1 --runtime=10 --time_based --verify=crc32c --eta=never \
	--output-format=terse --terse-version=3 --output="$NVT_RIG_OUT/fio.txt"
say "fio 4k random read/write with crc32c verify for 10 s: $(awk -F';' '{ print $8 " read IOPS, " $49 " write IOPS, errors " $5 }' "$NVT_RIG_OUT/fio.txt")"
umount /mnt/demo
rig_nvme_disconnect "$NQN"
say "nvme disconnect: done"
stop_nvtd
say "nvtd stopped cleanly; its log:"
sed 's/^/demo:   /' "$NVTD_LOG"
rig_rxe_down
