#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtctl stats, stats --json and top against a running nvtd: tables, valid JSON, filters, errors, and the cap on a reply with many namespaces.
. "$(dirname "$0")/lib.sh"
N=nqn.2026-11.io.nvt:st
# Subsystem st: 2 namespaces; subsystem many: 600, past the 512 sets one reply carries.
{
	echo "control_socket = \"$sock\";"
	echo "threads = 1;"
	echo "subsystems = ( {"
	echo "	nqn = \"$N\";"
	echo "	namespaces = ( { nsid = 1; backend = \"ram\"; size = \"1M\"; pi = { type = 1; }; },"
	echo "		{ nsid = 2; backend = \"ram\"; size = \"1M\"; } );"
	echo "}, {"
	echo "	nqn = \"nqn.2026-11.io.nvt:many\";"
	echo "	namespaces = ("
	for i in $(seq 1 600); do
		echo "		{ nsid = $i; backend = \"ram\"; size = \"64K\"; }$([ "$i" = 600 ] || echo ,)"
	done
	echo "	);"
	echo "} );"
} > "$out/st.cfg"
nvt_start "$out/st.cfg"

ctl stats $N
check "stats NQN: ok, a table of both namespaces" \
	'[ $rc = 0 ] && grep -q "^subsystem $N" "$out/r" && grep -q "^NSID .*READS .*WRITES .*P99_US" "$out/r" && [ "$(grep -c "^[12] " "$out/r")" = 2 ]'
check "idle namespaces: zero counters" '[ "$(grep "^1 " "$out/r" | awk "{print \$2, \$3, \$4, \$7}")" = "0 0 0 0" ]'
ctl stats $N 2
check "stats NQN NSID: that namespace only" '[ $rc = 0 ] && grep -q "^2 " "$out/r" && ! grep -q "^1 " "$out/r"'
"$NVTCTL" -s "$sock" stats $N --json > "$out/j"; rc=$?
check "stats --json: ok and valid JSON" '[ $rc = 0 ] && python3 -m json.tool "$out/j" > /dev/null'
check "stats --json: the namespaces, their errors by status and PI kind, percentiles" '
	python3 - "$out/j" <<PY
import json, sys
d = json.load(open(sys.argv[1]))
ns = d["namespaces"]
assert [n["nsid"] for n in ns] == [1, 2], ns
for n in ns:
    assert n["subsystem"] == "$N"
    assert n["reads"] == n["writes"] == n["other"] == n["bytes_read"] == n["bytes_written"] == 0
    assert set(n["pi_errors"]) == {"guard", "app_tag", "ref_tag"}
    assert {"lba_range", "pi_guard", "invalid_field", "other"} <= set(n["errors"])
    assert set(n["latency_us"]) == {"mean", "p50", "p90", "p99", "p99.9", "max"}
    assert n["queue_depth"] == 0
assert d["queues"] == [] and d["truncated"] is False
PY'
# The whole target: 602 namespaces, more than one reply carries.
ctl stats
check "stats of 602 namespaces: capped at 512 sets with a note saying so" \
	'[ $rc = 0 ] && grep -q "^note: 90 namespace/queue set(s) left out (at most 512 per reply)" "$out/r"'
"$NVTCTL" -s "$sock" stats --json > "$out/j"; rc=$?
check "capped --json: still valid, marked truncated, 512 namespaces" '
	[ $rc = 0 ] && python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d[\"truncated\"] is True and len(d[\"namespaces\"]) == 512
" "$out/j"'
"$NVTCTL" -s "$sock" stats nqn.2026-11.io.nvt:many 600 --json > "$out/j"; rc=$?
check "one namespace of the big subsystem: asked by name, not capped" \
	'[ $rc = 0 ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"namespaces\"][0][\"nsid\"] == 600 and not d[\"truncated\"]" "$out/j"'

"$NVTCTL" -s "$sock" stats nqn.none > "$out/r" 2>&1; rc=$?
check "unknown subsystem: exit 1, named" '[ $rc = 1 ] && grep -q "no subsystem nqn.none" "$out/r"'
"$NVTCTL" -s "$sock" stats $N 3 > "$out/r" 2>&1; rc=$?
check "unknown namespace: exit 1" '[ $rc = 1 ] && grep -q "has no namespace 3" "$out/r"'
"$NVTCTL" -s "$sock" stats $N 1x > "$out/r" 2>&1; rc=$?
check "bad NSID: exit 1" '[ $rc = 1 ] && grep -q "NSID .1x. is not a number" "$out/r"'
"$NVTCTL" -s "$sock" stats a b c > "$out/r" 2>&1; rc=$?
check "too many arguments: usage, exit 2" '[ $rc = 2 ] && grep -q "usage: nvtctl -s SOCKET stats" "$out/r"'

# top, not on a terminal: plain blocks, no ANSI escapes, one per iteration.
t1=$(date +%s%N)
"$NVTCTL" -s "$sock" top -d 0.3 -n 2 > "$out/t"; rc=$?
t2=$(date +%s%N)
check "top -n 2: two blocks" '[ $rc = 0 ] && [ "$(grep -c "^nvtd at " "$out/t")" = 2 ]'
check "top: no escape sequences when stdout is not a terminal" '! grep -q $'"'"'\033'"'"' "$out/t"'
check "top: a row per namespace with rates and p99" \
	'grep -q "^SUBSYSTEM .*NSID .*R_IOPS .*W_IOPS .*P99_US" "$out/t" && [ "$(grep -c "^$N " "$out/t")" = 4 ]'
check "top: -d 0.3 twice took 0.6..3 s" '[ $(((t2 - t1) / 1000000)) -ge 600 ] && [ $(((t2 - t1) / 1000000)) -lt 3000 ]'
"$NVTCTL" -s "$sock" top -n 0 > "$out/r" 2>&1; rc=$?
check "top -n 0: usage, exit 2" '[ $rc = 2 ]'
# On a terminal (script gives it one): the screen is cleared before each block.
if command -v script > /dev/null; then
	script -qec "$NVTCTL -s $sock top -d 0.2 -n 1" /dev/null > "$out/tty" 2>&1
	check "top on a terminal: clears the screen" 'grep -q $'"'"'\033\[H\033\[2J'"'"' "$out/tty"'
fi

kill -TERM $pid; wait $pid; rc=$?
check "nvtd stops cleanly" '[ $rc = 0 ]'
nvt_summary
