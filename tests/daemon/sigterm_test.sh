#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtd serves the example config until SIGTERM/SIGINT and exits 0; with valgrind (when given) it leaks nothing.
set -u
NVTD=$1 SRC=$2 VALGRIND=${3:-}
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

run_until_signal() {	# $1 = signal, $2 = log file
	local pid waited=0
	if [ -n "$VALGRIND" ]; then
		valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
			--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
			"$NVTD" -c "$SRC/conf/nvt-example.cfg" 2>"$2" &
	else
		"$NVTD" -c "$SRC/conf/nvt-example.cfg" 2>"$2" &
	fi
	pid=$!
	# Wait until it says it is ready (valgrind is slow to start).
	while ! grep -q "ready:" "$2" 2>/dev/null && [ $waited -lt 600 ]; do
		sleep 0.1; waited=$((waited + 1))
	done
	kill -"$1" $pid
	wait $pid
}

run_until_signal TERM "$out/term.log"; rc=$?
check "SIGTERM: exit 0 (got $rc)" '[ $rc = 0 ]'
check "SIGTERM: said it was ready" 'grep -q "ready: 1 subsystem" "$out/term.log"'
check "SIGTERM: stopped cleanly" 'grep -q "stopped" "$out/term.log"'
[ -n "$VALGRIND" ] && check "valgrind: no leak, no error" \
	'grep -q "ERROR SUMMARY: 0 errors" "$out/term.log"'
run_until_signal INT "$out/int.log"; rc=$?
check "SIGINT: exit 0 (got $rc)" '[ $rc = 0 ]'
[ $fail = 0 ] || cat "$out/term.log"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
