#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# systemd-analyze verify on the installed nvtd.service (its binary, its man pages), and its sandbox's exposure score.
set -u
BUILD=$1
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); return 1; fi; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

if ! command -v systemd-analyze > /dev/null; then
	echo "SKIP: no systemd-analyze (systemd is not installed)"
	exit 77
fi
# Can it verify anything here? (Some containers lack what it loads.)
printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' > "$out/probe.service"
if ! systemd-analyze verify --man=no "$out/probe.service" > "$out/probe.log" 2>&1; then
	echo "SKIP: systemd-analyze cannot verify units in this container:"; cat "$out/probe.log"
	exit 77
fi

# Installed into a prefix of its own (no DESTDIR), so ExecStart= names a binary
# that exists and verify checks it is executable.
P=$out/usr
"${CMAKE:-cmake}" --install "$BUILD" --prefix "$P" > "$out/install.log" 2>&1 || { cat "$out/install.log"; exit 1; }
unit=$P/lib/systemd/system/nvtd.service
check "installed at PREFIX/lib/systemd/system" '[ -f "$unit" ]'
# Documentation=man:... is checked with man(1): against the pages just installed.
MANPATH=$P/share/man systemd-analyze verify "$unit" > "$out/verify" 2>&1; rc=$?
if grep -q "Command 'man " "$out/verify" && ! command -v man > /dev/null; then
	systemd-analyze verify --man=no "$unit" > "$out/verify" 2>&1; rc=$?
fi
check "systemd-analyze verify: exit 0, not a word of complaint" '[ $rc = 0 ] && [ ! -s "$out/verify" ]' ||
	cat "$out/verify"

# The same check on a unit with one typo must complain: it can fail.
sed 's/^Type=notify$/Type=notfy/' "$unit" > "$out/nvtd.service"
systemd-analyze verify --man=no "$out/nvtd.service" > "$out/verify" 2>&1
check "verify catches a bad value (Type=notfy)" 'grep -q "notfy" "$out/verify"'

# The sandbox, scored by systemd (0 best .. 10 worst): nvtd needs root and
# CAP_SYS_ADMIN, so not below 2, but no worse than today's 3.3.
if systemd-analyze security --offline=yes "$unit" > "$out/sec" 2>&1; then
	score=$(sed -n 's/.*Overall exposure level for nvtd.service: \([0-9.]*\).*/\1/p' "$out/sec")
	check "systemd-analyze security: exposure $score <= 4.0" \
		'[ -n "$score" ] && awk -v s="$score" "BEGIN { exit !(s <= 4.0) }"' || tail -n 5 "$out/sec"
else
	echo "note: systemd-analyze security --offline is not available here (systemd < 250)"
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
