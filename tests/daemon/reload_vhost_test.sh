#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A running nvtd's vhost controller reloaded: a LUN and its namespace added and removed in one reload each, a LUN moved to another namespace, a controller setting refused.
set -u
NVTD=$1 NVTCTL=$2
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
out=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
sock=$out/nvtd.sock cfg=$out/nvt.cfg vs=$out/vhost.0
N=nqn.2026-11.io.nvt:vreload
# write_cfg EXTRA_NAMESPACES EXTRA_LUNS [COPY]: the file an admin edits.
write_cfg() {
	cat > "$cfg" <<CFG
control_socket = "$sock";
threads = 1;
subsystems = ( {
	nqn = "$N";
	allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "1M"; } $1 );
} );
vhost = ( {
	socket = "$vs";
	copy_between_controllers = ${3:-false};
	luns = ( { lun = 0; subsystem = "$N"; nsid = 1; } $2 );
} );
CFG
}
write_cfg "" ""
"$NVTD" -c "$cfg" 2>"$out/log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && [ -S "$vs" ] && break; sleep 0.1; done

NS2=', { nsid = 2; backend = "ram"; size = "2M"; }'
write_cfg "$NS2" ", { lun = 7; subsystem = \"$N\"; nsid = 2; }"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "namespace and LUN added in one reload, the LUN after its namespace" \
	'[ $rc = 0 ] && grep -qx "changed: $N: nsid 2 added (ram, 4096 blocks of 512 bytes)" "$out/r" && grep -qx "changed: vhost $vs: LUN 7 added ($N nsid 2)" "$out/r" && [ "$(grep -n "LUN 7 added" "$out/r" | cut -d: -f1)" -gt "$(grep -n "nsid 2 added" "$out/r" | cut -d: -f1)" ]'
"$NVTCTL" -s "$sock" status > "$out/r"
check "status lists LUN 7" 'grep -q "LUN 7: $N nsid 2" "$out/r"'

write_cfg "$NS2" ", { lun = 7; subsystem = \"$N\"; nsid = 2; }" true
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "copy_between_controllers refused, nothing changed" \
	'[ $rc = 1 ] && grep -q "^$cfg:8: vhost: .*cannot change live" "$out/r" && ! grep -q "^changed:" "$out/r"'

write_cfg "$NS2" ", { lun = 7; subsystem = \"$N\"; nsid = 2; }, { lun = 8; subsystem = \"$N\"; nsid = 2; }"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a second LUN of the same namespace is the loader's error" '[ $rc = 1 ] && grep -q "already lun 7" "$out/r"'

write_cfg "$NS2" ", { lun = 7; subsystem = \"$N\"; nsid = 2; }"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "the same file again: 0 changes" '[ $rc = 0 ] && grep -qx "ok: reloaded, 0 change(s)" "$out/r"'

write_cfg "" ""
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "namespace and its LUN removed in one reload, the LUN first" \
	'[ $rc = 0 ] && grep -qx "changed: vhost $vs: LUN 7 removed" "$out/r" && grep -qx "changed: $N: nsid 2 removed" "$out/r" && [ "$(grep -n "LUN 7 removed" "$out/r" | cut -d: -f1)" -lt "$(grep -n "nsid 2 removed" "$out/r" | cut -d: -f1)" ]'
"$NVTCTL" -s "$sock" status > "$out/r"
check "status: LUN 7 gone, LUN 0 stays" '! grep -q "LUN 7:" "$out/r" && grep -q "LUN 0: $N nsid 1" "$out/r"'

# LUN 0 moved to a new namespace: removed, then added.
sed -i "s/luns = ( { lun = 0; subsystem = \"$N\"; nsid = 1; }/luns = ( { lun = 0; subsystem = \"$N\"; nsid = 3; }/; s/size = \"1M\"; }  );/size = \"1M\"; }, { nsid = 3; backend = \"ram\"; size = \"1M\"; } );/" "$cfg"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a LUN naming another namespace: removed and added" \
	'[ $rc = 0 ] && grep -qx "changed: vhost $vs: LUN 0 removed" "$out/r" && grep -qx "changed: vhost $vs: LUN 0 added ($N nsid 3)" "$out/r"'
"$NVTCTL" -s "$sock" status > "$out/r"
check "status: LUN 0 on nsid 3" 'grep -q "LUN 0: $N nsid 3" "$out/r"'

kill -TERM $pid; wait $pid; rc=$?
check "clean exit after reloads" '[ $rc = 0 ]'
echo "reload vhost: $pass passed, $fail failed"
[ $fail = 0 ]
