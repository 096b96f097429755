#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A running nvtd reloaded with subsystems added and removed (ram, and file on two I/O threads; nvtctl status follows), listeners added and removed, and a global setting's refusal naming its own line.
set -u
NVTD=$1 NVTCTL=$2
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
out=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
sock=$out/nvtd.sock cfg=$out/nvt.cfg
N=nqn.2026-11.io.nvt:fabric-one N2=nqn.2026-11.io.nvt:fabric-two
# write_cfg THREADS [MORE]: MORE goes after the first subsystem, in the list.
write_cfg() {
	cat > "$cfg" <<CFG
control_socket = "$sock";
# I/O threads
threads = $1;
subsystems = ( {
	nqn = "$N";
	allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "1M"; } );
} ${2:-} );
CFG
}
# nvtd on $cfg, in the background ($pid), once its control socket is there.
run_nvtd() {
	"$NVTD" -c "$cfg" 2>"$out/log" &
	pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
}
SUB2=', { nqn = "'$N2'"; allow_any_host = true; namespaces = ( { nsid = 1; backend = "ram"; size = "2M"; }, { nsid = 2; backend = "ram"; size = "1M"; } ); }'
write_cfg 1
run_nvtd

write_cfg 1 "$SUB2"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a subsystem added: ok, named" \
	'[ $rc = 0 ] && grep -qx "changed: $N2: subsystem added (2 namespace(s))" "$out/r" && grep -qx "ok: reloaded, 1 change(s)" "$out/r"'
"$NVTCTL" -s "$sock" status > "$out/r"; rc=$?
check "status lists it" '[ $rc = 0 ] && grep -q "subsystem $N2: 2 namespace(s), 0 controller(s)" "$out/r"'

# threads on line 3 changes too: refused there, and the removal with it is not applied.
write_cfg 2
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "threads: refused on its own line, nothing changed" \
	'[ $rc = 1 ] && grep -q "^$cfg:3: threads: the number of I/O threads cannot change live (1 to 2)" "$out/r" && ! grep -q "^changed:" "$out/r"'
"$NVTCTL" -s "$sock" status > "$out/r"
check "the subsystem is still there" 'grep -q "subsystem $N2: 2 namespace(s)" "$out/r"'

write_cfg 1
kill -HUP $pid
for _ in $(seq 50); do grep -q "subsystem removed" "$out/log" && break; sleep 0.1; done
check "SIGHUP: the subsystem removed" 'grep -q "$N2: subsystem removed (0 controller(s) torn down)" "$out/log"'
"$NVTCTL" -s "$sock" status > "$out/r"; rc=$?
check "status no longer lists it" '[ $rc = 0 ] && ! grep -q "$N2" "$out/r" && grep -q "subsystem $N: 1 namespace(s)" "$out/r"'
write_cfg 1 "$SUB2"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "added back" '[ $rc = 0 ] && grep -qx "changed: $N2: subsystem added (2 namespace(s))" "$out/r"'

# A subsystem on the file backend, with two running I/O threads: its rings are made on
# each thread before it is published, and dropped there when it goes.
N3=nqn.2026-11.io.nvt:fabric-file
SUB3=', { nqn = "'$N3'"; allow_any_host = true; namespaces = ( { nsid = 1; backend = "file"; size = "2M"; path = "'$out'/n3.img"; direct = false; } ); }'
kill -TERM $pid; wait $pid
write_cfg 2
run_nvtd
write_cfg 2 "$SUB3"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a file subsystem added on two threads" \
	'[ $rc = 0 ] && grep -qx "changed: $N3: subsystem added (1 namespace(s))" "$out/r" && [ "$(stat -c %s "$out/n3.img")" = 2097152 ]'
"$NVTCTL" -s "$sock" status > "$out/r"
check "status lists the file subsystem" 'grep -q "subsystem $N3: 1 namespace(s), 0 controller(s)" "$out/r"'
write_cfg 2
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "the file subsystem removed" \
	'[ $rc = 0 ] && grep -qx "changed: $N3: subsystem removed (0 controller(s) torn down)" "$out/r" && ! grep -q "left allocated\|did not answer" "$out/log"'
write_cfg 2 "$SUB3"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "and added back over the same file" '[ $rc = 0 ] && grep -q "$N3: subsystem added" "$out/r"'

kill -TERM $pid; wait $pid; rc=$?
check "clean exit after reloads" '[ $rc = 0 ]'

# Listeners added and removed live (on a machine without an RDMA device they are
# configured, not listening, as at start); the last one's removal is refused.
L1='{ transport = "rdma"; address = "127.0.0.1"; port = 14420; }'
L2='{ transport = "rdma"; address = "127.0.0.1"; port = 14421; }'
write_lcfg() {
	cat > "$cfg" <<CFG
control_socket = "$sock";
threads = 1;
listeners = ( $1 );
subsystems = ( { nqn = "$N"; allow_any_host = true;
	namespaces = ( { nsid = 1; backend = "ram"; size = "1M"; } ); } );
CFG
}
write_lcfg "$L1"
run_nvtd
write_lcfg "$L1, $L2"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "a listener added" '[ $rc = 0 ] && grep -q "^changed: listener rdma 127.0.0.1:14421 added" "$out/r"'
write_lcfg "$L1, { transport = \"rdma\"; address = \"127.0.0.1\"; port = 14421; batch_posts = false; }"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "its settings changed: refused on its line" \
	'[ $rc = 1 ] && grep -q "^$cfg:3: listeners: rdma 127.0.0.1:14421: a listener.s settings cannot change live" "$out/r"'
write_lcfg "$L1"
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "the listener removed" '[ $rc = 0 ] && grep -qx "changed: listener rdma 127.0.0.1:14421 removed (its hosts are disconnected)" "$out/r"'
for _ in $(seq 50); do grep -q "listener rdma 127.0.0.1:14421: stopping" "$out/log" && break; sleep 0.1; done
check "and stopped after the reply" 'grep -q "listener rdma 127.0.0.1:14421: stopping" "$out/log"'
write_lcfg ""
"$NVTCTL" -s "$sock" reload > "$out/r"; rc=$?
check "the last listener: refused" '[ $rc = 1 ] && grep -q "the last RDMA listener cannot be removed live" "$out/r"'
kill -TERM $pid; wait $pid; rc=$?
check "clean exit after listener reloads" '[ $rc = 0 ]'
echo "reload-fabric: $pass passed, $fail failed"
[ $fail = 0 ]
