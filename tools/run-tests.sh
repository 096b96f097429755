#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# README command 2: install dependencies, build normally, with ASan+UBSan and with TSan, fuzz, run every test tier.
# NVT_RIG=0 skips the VM rig tier (it needs ~1 GiB of downloads and minutes of qemu).
# NVT_FUZZ_SECONDS (default 60) is how long each libFuzzer harness runs; 0 skips fuzzing.
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
# Poll groups share counters, CSTS, the error log and log rate limits: the e2e tier under TSan.
echo "== e2e: ThreadSanitizer build"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNVT_TSAN=ON >/dev/null
cmake --build build-tsan -j"$jobs" >/dev/null
ctest --test-dir build-tsan -L e2e --output-on-failure || status=1
fuzz_secs=${NVT_FUZZ_SECONDS:-60}
if [ "$fuzz_secs" != 0 ]; then
	# Fuzzing needs clang's libFuzzer; without it (no network for the packages) say so and go on.
	tools/deps.sh fuzz || echo "deps: could not install the fuzzing packages"
	probe=$(mktemp -d)
	echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' \
		> "$probe/p.c"
	if clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>/dev/null; then
		echo "== fuzz: each harness ${fuzz_secs} s on a copy of its corpus (clang, libFuzzer, ASan+UBSan)"
		# Only the harnesses (--target fuzz): the rest is built and tested above.
		if cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNVT_FUZZ=ON \
			 -DCMAKE_C_COMPILER=clang > "$probe/build.log" 2>&1 &&
		   cmake --build build-fuzz -j"$jobs" --target fuzz >> "$probe/build.log" 2>&1; then
			NVT_FUZZ_SECONDS=$fuzz_secs tests/fuzz/run-fuzz.sh build-fuzz || status=1
		else
			tail -n 40 "$probe/build.log"
			echo "fuzz: build-fuzz does not build"
			status=1
		fi
	else
		echo "== fuzz: SKIPPED: clang cannot link a libFuzzer program (tools/deps.sh fuzz)"
	fi
	rm -rf "$probe"
fi
if [ "${NVT_RIG:-1}" != 0 ]; then
	echo "== rig: a real Linux host in a VM"
	ctest --test-dir build -L rig --output-on-failure || status=1
	# The RDMA path under the sanitizers, with the real host tearing queues down mid-I/O,
	# the file backend's rings under a real host's load and restarts, and a guest's
	# vhost-user-scsi rings (QEMU killed mid-I/O among them).
	echo "== rig: nvtd built with ASan+UBSan"
	ctest --test-dir build-asan -L rig -R 'nvtd-(faults|pi|file|nvme)$|vhost-smoke$' --output-on-failure || status=1
fi
exit $status
