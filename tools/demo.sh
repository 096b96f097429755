#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Demo for a machine without RDMA: boot the rig VM, run nvtd there over soft-RoCE, and let a real Linux host discover, connect, mkfs and fio it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
tests/rig/build-vm.sh
out=build/rig-out/demo
rm -rf "$out"
mkdir -p "$out"
echo "demo: booting a VM (qemu, software emulation: allow a minute or two)"
tests/rig/run-vm.sh -t 600 -w "$out" -l "$out/console.log" \
	-e NVT_SRC="$PWD" -e NVT_BUILD="$PWD/build" -e NVT_RIG_OUT="$PWD/$out" \
	-e NVT_RIG_SCENARIO=demo tools/demo-guest.sh 2>&1 |
	sed -n 's/^\[vm\] demo: /  /p; s/^\[vm\] DEMO-FAIL/  FAILED/p'
status=${PIPESTATUS[0]}
[ "$status" = 0 ] && echo "demo: done; the VM's console log is $out/console.log" ||
	echo "demo: failed (status $status); see $out/console.log"
exit "$status"
