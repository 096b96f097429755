#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Runs libFuzzer harnesses for a bounded time each on a scratch copy of their corpus; any finding fails, with its reproducer in base64.
#
# usage: tests/fuzz/run-fuzz.sh BUILD_DIR [HARNESS...]
#   BUILD_DIR   a build configured with -DNVT_FUZZ=ON -DCMAKE_C_COMPILER=clang
#               (the harnesses are BUILD_DIR/fuzz/fuzz_*)
#   HARNESS     fuzz_config, fuzz_auth, fuzz_control, fuzz_nvme_loop, fuzz_rdma, fuzz_vhost_msg,
#               fuzz_vhost_ring, fuzz_scsi (default: all built)
# NVT_FUZZ_SECONDS   time per harness (default 60)
# NVT_FUZZ_KEEP=1    keep the scratch directories (new corpus entries, logs)
# Exit status: 0 if nothing was found, 1 on a finding, 2 on usage errors.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-}
[ -n "$build" ] && [ -d "$build/fuzz" ] || {
	echo "usage: $0 BUILD_DIR [HARNESS...]  (BUILD_DIR/fuzz/ holds the harnesses)" >&2
	exit 2
}
shift
secs=${NVT_FUZZ_SECONDS:-60}
harnesses=("$@")
if [ ${#harnesses[@]} = 0 ]; then
	for h in fuzz_config fuzz_auth fuzz_control fuzz_nvme_loop fuzz_rdma fuzz_vhost_msg fuzz_vhost_ring fuzz_scsi; do
		[ -x "$build/fuzz/$h" ] && harnesses+=("$h")
	done
fi
status=0
for h in "${harnesses[@]}"; do
	bin=$build/fuzz/$h
	if [ ! -x "$bin" ]; then
		echo "fuzz: $h: not built ($bin)" >&2
		status=1
		continue
	fi
	# A copy: new corpus entries and artifacts must not land in the source tree.
	work=$(mktemp -d "${TMPDIR:-/tmp}/nvt-$h.XXXXXX")
	mkdir -p "$work/corpus" "$work/artifacts"
	cp "$here/corpus/$h/"* "$work/corpus/" 2>/dev/null
	start=$(date +%s)
	# -timeout: an input that takes longer is a hang, reported like a crash.
	"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/" "$work/corpus" > "$work/log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	found=$(find "$work/artifacts" -type f | sort)
	if [ $rc = 0 ] && [ -z "$found" ]; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
		cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n1)
		echo "fuzz: $h: ${runs:-?} inputs in ${took} s, ${cov:-cov: ?}, no finding"
		[ "${NVT_FUZZ_KEEP:-0}" = 1 ] && echo "fuzz: $h: scratch kept in $work" || rm -rf "$work"
		continue
	fi
	status=1
	echo "fuzz: $h: FINDING (exit $rc after ${took} s); the report:"
	# The sanitizer or invariant report, without libFuzzer's progress lines.
	grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED|RELOAD)|^INFO:' "$work/log" | tail -n 80
	for a in $found; do
		echo "fuzz: $h: reproducer $a ($(stat -c %s "$a") bytes), base64:"
		base64 -w0 "$a"
		echo
		echo "fuzz: $h: to reproduce: echo '<base64 above>' | base64 -d > repro &&" \
			"$bin repro  (or the gcc replay: fuzz_replay_$h repro)"
	done
	echo "fuzz: $h: scratch directory kept: $work"
done
exit $status
