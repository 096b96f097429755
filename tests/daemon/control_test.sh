#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtctl against a running nvtd: status, fault injection, scrub listing exactly the damaged LBAs, bad commands.
set -u
NVTD=$1 NVTCTL=$2
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
out=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
sock=$out/nvtd.sock
cat > "$out/pi.cfg" <<CFG
control_socket = "$sock";
threads = 1;
subsystems = ( {
	nqn = "nqn.2026-11.io.nvt:ctl";
	namespaces = (
		{ nsid = 1; backend = "ram"; size = "1M"; pi = { type = 1; }; },
		{ nsid = 2; backend = "ram"; size = "1M"; }
	);
} );
CFG
"$NVTD" -c "$out/pi.cfg" 2>"$out/log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
N=nqn.2026-11.io.nvt:ctl

"$NVTCTL" -s "$sock" status > "$out/r"; rc=$?
check "status: ok" '[ $rc = 0 ] && grep -q "subsystem $N: 2 namespace(s), 0 controller(s)" "$out/r"'
"$NVTCTL" -s "$sock" scrub $N 1 > "$out/r"; rc=$?
check "scrub of an unwritten namespace: 2048 blocks, 0 bad" '[ $rc = 0 ] && grep -q "scrubbed 2048 blocks .* 0 bad" "$out/r"'
"$NVTCTL" -s "$sock" inject $N 1 77 data 9 > "$out/r"; rc=$?
check "inject into data: ok" '[ $rc = 0 ] && grep -q "^ok: flipped bit 9 of LBA 77" "$out/r"'
# Bit 16 of the tuple is the app tag's low bit: FFFFh no longer escapes the checks.
"$NVTCTL" -s "$sock" inject $N 1 1500 metadata 16 > "$out/r"; rc=$?
check "inject into metadata: ok" '[ $rc = 0 ]'
"$NVTCTL" -s "$sock" scrub $N 1 > "$out/r"; rc=$?
# Never-written blocks carry the escape tuple (as after a Format): the data flip
# at LBA 77 is not judged, the broken escape at LBA 1500 is.
check "scrub finds exactly LBA 1500 (exit 1)" \
	'[ $rc = 1 ] && [ "$(grep -c "^bad LBA" "$out/r")" = 1 ] && grep -q "^bad LBA 1500: guard" "$out/r" && grep -q "1 bad" "$out/r"'
check "nvtd logged the injection and the scrub result" 'grep -q "fault injected" "$out/log" && grep -q "scrub found 1 bad" "$out/log"'
"$NVTCTL" -s "$sock" scrub $N 2 > "$out/r"; rc=$?
check "scrub without PI: error" '[ $rc = 1 ] && grep -q "^error: nsid 2 has no protection information" "$out/r"'
"$NVTCTL" -s "$sock" inject $N 1 99999 data 0 > "$out/r"; rc=$?
check "inject past the end: error" '[ $rc = 1 ] && grep -q "^error: inject" "$out/r"'
"$NVTCTL" -s "$sock" scrub nqn.none 1 > "$out/r"; rc=$?
check "unknown subsystem: error" '[ $rc = 1 ] && grep -q "^error: no subsystem nqn.none" "$out/r"'
"$NVTCTL" -s "$sock" frobnicate > "$out/r"; rc=$?
check "unknown command: error" '[ $rc = 1 ] && grep -q "^error: unknown command" "$out/r"'
kill -TERM $pid; wait $pid; rc=$?
check "nvtd stops cleanly and removes its socket" '[ $rc = 0 ] && [ ! -e "$sock" ]'
[ $fail = 0 ] || cat "$out/log"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
