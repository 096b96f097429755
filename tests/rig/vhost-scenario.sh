#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Entry point for vhost rig tests (ctest calls it): nvtd runs on this host serving vhost-user-scsi, rig VMs attach to it as vhost-user-scsi-pci guests.
#
# usage: vhost-scenario.sh [-t SECS] NAME
#   runs tests/rig/vhost/NAME.sh: its vh_host function here (start nvtd, boot
#   guests with vh_guest, check nvtd's exit), its vh_guest_PHASE functions
#   inside the VMs.
#   -t SECS   timeout of each VM run (default $NVT_RIG_TIMEOUT or 600)
# Environment: as scenario.sh (NVT_BUILD, NVT_RIG_OUT, NVT_RIG_CACHE,
# NVT_RIG_SKIP_BUILD); NVT_VHOST_NVTD=PATH runs that nvtd instead of
# $NVT_BUILD/nvtd (an ASan build).
# Unlike scenario.sh the target runs on the host: a vhost-user backend maps
# the guest's memory from the memfd QEMU passes over the socket, so it must sit
# beside QEMU. Nothing here touches the network: the socket is a unix socket
# under NVT_RIG_OUT, and the VM still has no NIC.
# Exit status: 0 pass, 1 fail, 77 (SKIP) only when qemu cannot run at all.
set -euo pipefail

RIG_DIR=$(cd "$(dirname "$0")" && pwd)
NVT_SRC=$(cd "$RIG_DIR/../.." && pwd)
VH_TIMEOUT_S=${NVT_RIG_TIMEOUT:-600}

usage() { sed -n '/^# usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	-t) VH_TIMEOUT_S=$2; shift 2 ;;
	-h|--help) usage ;;
	-*) echo "vhost-scenario: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
VH_NAME=$1
VH_SCRIPT="$RIG_DIR/vhost/$VH_NAME.sh"
[ -f "$VH_SCRIPT" ] || { echo "vhost-scenario: no such scenario: $VH_SCRIPT" >&2; exit 2; }

NVT_BUILD=${NVT_BUILD:-$NVT_SRC/build}
[ -d "$NVT_BUILD" ] && NVT_BUILD=$(realpath "$NVT_BUILD")
if [ -z "${NVT_RIG_OUT:-}" ]; then
	NVT_RIG_OUT="$NVT_BUILD/rig-out/vhost-$VH_NAME"
	rm -rf "$NVT_RIG_OUT"
fi
mkdir -p "$NVT_RIG_OUT"
NVT_RIG_OUT=$(realpath "$NVT_RIG_OUT")
export NVT_SRC NVT_BUILD NVT_RIG_OUT VH_NAME VH_SCRIPT VH_TIMEOUT_S RIG_DIR

if [ "${NVT_RIG_SKIP_BUILD:-0}" != 1 ]; then
	if ! "$RIG_DIR/build-vm.sh"; then
		command -v qemu-system-x86_64 > /dev/null || { echo "rig: SKIP: no qemu"; exit 77; }
		echo "rig: FAIL: vhost-$VH_NAME: build-vm.sh failed"
		exit 1
	fi
fi

# shellcheck source=vhost/lib.sh
. "$RIG_DIR/vhost/lib.sh"
# shellcheck source=/dev/null
. "$VH_SCRIPT"
t0=$(date +%s)
set +e
( set -e; vh_host )
status=$?
set -e
vh_cleanup
if [ "$status" = 0 ]; then
	echo "rig: PASS: vhost-$VH_NAME ($(( $(date +%s) - t0 ))s; logs in $NVT_RIG_OUT)"
elif [ "$status" = 77 ]; then
	echo "rig: SKIP: vhost-$VH_NAME: qemu cannot run on this machine"
else
	echo "rig: FAIL: vhost-$VH_NAME (status $status, $(( $(date +%s) - t0 ))s; logs in $NVT_RIG_OUT)"
fi
exit "$status"
