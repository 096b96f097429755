#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A running nvtd reloaded twice over: nvtctl reload and kill -HUP, a good edit applied, ram and file namespaces added and removed, a bad line and a refused change applying nothing, nvtd serving throughout.
set -u
NVTD=$1 NVTCTL=$2
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
out=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
sock=$out/nvtd.sock cfg=$out/nvt.cfg
N=nqn.2026-11.io.nvt:reload
H1=nqn.2014-08.org.nvmexpress:uuid:11111111-0000-0000-0000-000000000001
H2=nqn.2014-08.org.nvmexpress:uuid:22222222-0000-0000-0000-000000000002
# write_cfg HOSTS LOG_LEVEL BLOCK_SIZE [EXTRA]: the file an admin edits.
write_cfg() {
	cat > "$cfg" <<CFG
control_socket = "$sock";
threads = 1;
log_level = "$2";
subsystems = ( {
	nqn = "$N";
	hosts = ( $1 );
	${4:-}
	namespaces = ( { nsid = 1; backend = "ram"; size = "1M"; block_size = $3; } ${5:-} );
} );
CFG
}
write_cfg "\"$H1\"" info 512
"$NVTD" -c "$cfg" 2>"$out/log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "reload of the same file: ok, 0 changes" '[ $rc = 0 ] && grep -qx "ok: reloaded, 0 change(s)" "$out/r"'

write_cfg "\"$H1\", \"$H2\"" info 512
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a host added: ok, named" \
	'[ $rc = 0 ] && grep -qx "changed: $N: host $H2 allowed" "$out/r" && grep -qx "ok: reloaded, 1 change(s)" "$out/r"'

# One bad line (line 8: a size that is no size) with a host removed: nothing applies.
write_cfg "\"$H1\"" info 512 'max_controllers = "many";'
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a bad line: exit 1, file:line: setting: message, nothing changed" \
	'[ $rc = 1 ] && grep -q "^$cfg:7: .*max_controllers" "$out/r" && grep -q "^error: not reloaded, nothing changed" "$out/r" && ! grep -q "^changed:" "$out/r"'
check "the bad line is in the log too" 'grep -q "reload: $cfg:7: .*max_controllers" "$out/log"'

# A block size change is refused, naming its line, and the host removal with it is not applied.
write_cfg "\"$H1\"" info 4096
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "block_size: refused on its line, nothing changed" \
	'[ $rc = 1 ] && grep -q "^$cfg:8: block_size: .*cannot change live" "$out/r" && ! grep -q "^changed:" "$out/r"'

# The host list is still H1 and H2: removing H2 now is the one change.
write_cfg "\"$H1\"" debug 512
kill -HUP $pid
for _ in $(seq 50); do grep -q "reloaded, [0-9]* change" "$out/log" && break; sleep 0.1; done
check "SIGHUP reloads: H2 removed and log_level, 2 changes" \
	'grep -q "host $H2 no longer allowed" "$out/log" && grep -q "reloaded, 2 change(s)" "$out/log"'
check "nvtd still runs after SIGHUP" 'kill -0 $pid'
"$NVTCTL" -s "$sock" status > "$out/r"; rc=$?
check "status after the reloads" '[ $rc = 0 ] && grep -q "subsystem $N: 1 namespace(s), 0 controller(s)" "$out/r"'
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "after SIGHUP, the file and what runs agree" '[ $rc = 0 ] && grep -qx "ok: reloaded, 0 change(s)" "$out/r"'

write_cfg "\"$H1\"" debug 512 "" ', { nsid = 2; backend = "ram"; size = "2M"; }'
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a namespace added: ok, named" \
	'[ $rc = 0 ] && grep -qx "changed: $N: nsid 2 added (ram, 4096 blocks of 512 bytes)" "$out/r"'
"$NVTCTL" -s "$sock" status > "$out/r"; rc=$?
check "status shows it" '[ $rc = 0 ] && grep -q "subsystem $N: 2 namespace(s), 0 controller(s)" "$out/r"'
write_cfg "\"$H1\"" debug 512
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "removing it: ok, named" '[ $rc = 0 ] && grep -qx "changed: $N: nsid 2 removed" "$out/r"'
"$NVTCTL" -s "$sock" status > "$out/r"; rc=$?
check "status shows it gone" '[ $rc = 0 ] && grep -q "subsystem $N: 1 namespace(s), 0 controller(s)" "$out/r"'
write_cfg "\"$H1\"" debug 512 "" ', { nsid = 2; backend = "ram"; size = "2M"; }'
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "the same nsid added back" \
	'[ $rc = 0 ] && grep -qx "changed: $N: nsid 2 added (ram, 4096 blocks of 512 bytes)" "$out/r"'

# A file namespace: its ring is made on the I/O thread by message, and dropped there.
FNS=', { nsid = 3; backend = "file"; size = "1M"; path = "'"$out"'/ns3.img"; }'
write_cfg "\"$H1\"" debug 512 "" ", { nsid = 2; backend = \"ram\"; size = \"2M\"; }$FNS"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a file namespace added: ok, named" \
	'[ $rc = 0 ] && grep -qx "changed: $N: nsid 3 added (file, 2048 blocks of 512 bytes)" "$out/r"'
write_cfg "\"$H1\"" debug 512 "" ', { nsid = 2; backend = "ram"; size = "2M"; }'
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "the file namespace removed: ok, named" '[ $rc = 0 ] && grep -qx "changed: $N: nsid 3 removed" "$out/r"'
"$NVTCTL" -s "$sock" status > "$out/r"; rc=$?
check "status shows 2 namespaces" '[ $rc = 0 ] && grep -q "subsystem $N: 2 namespace(s), 0 controller(s)" "$out/r"'

# ANA group states: a reload moves the groups the file changed, and only those.
write_cfg "\"$H1\"" debug 512 "" ', { nsid = 2; backend = "ram"; size = "2M"; }'
echo 'ana_groups = ( { id = 2; state = "inaccessible"; } );' >> "$cfg"
"$NVTCTL" -s "$sock" ana 3 non-optimized > "$out/r"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "ana group 2 made inaccessible by the file: one change" \
	'[ $rc = 0 ] && grep -qx "changed: ana group 2 inaccessible, 0 controller(s) notified" "$out/r" && grep -qx "ok: reloaded, 1 change(s)" "$out/r"'
write_cfg "\"$H1\"" debug 512 "" ', { nsid = 2; backend = "ram"; size = "2M"; }'
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "ana_groups dropped: group 2 back to optimized, group 3 (nvtctl's) left alone" \
	'[ $rc = 0 ] && grep -qx "changed: ana group 2 optimized, 0 controller(s) notified" "$out/r" && grep -qx "ok: reloaded, 1 change(s)" "$out/r"'
check "the log names each move" 'grep -q "ana: group 3 now non-optimized" "$out/log" && grep -q "ana: group 2 now inaccessible" "$out/log"'

kill -TERM $pid; wait $pid; rc=$?
check "clean exit after reloads" '[ $rc = 0 ]'
echo "reload: $pass passed, $fail failed"
[ $fail = 0 ]
