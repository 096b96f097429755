#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# README command 2: install dependencies, build normally and with ASan+UBSan, run every test tier.
# NVT_RIG=0 skips the VM rig tier (it needs ~1 GiB of downloads and minutes of qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
jobs=$(nproc)
status=0

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNVT_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null

echo "== unit, e2e, daemon: normal build"
ctest --test-dir build -LE rig --output-on-failure || status=1
echo "== unit, e2e, daemon: ASan+UBSan build"
ctest --test-dir build-asan -LE rig --output-on-failure || status=1
if [ "${NVT_RIG:-1}" != 0 ]; then
	echo "== rig: a real Linux host in a VM"
	ctest --test-dir build -L rig --output-on-failure || status=1
	# The RDMA path under the sanitizers, with the real host tearing queues down mid-I/O.
	echo "== rig: nvtd built with ASan+UBSan"
	ctest --test-dir build-asan -L rig -R 'nvtd-(faults|pi)$' --output-on-failure || status=1
fi
exit $status
