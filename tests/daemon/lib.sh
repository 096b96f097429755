# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the daemon tests run as `test.sh NVTD NVTCTL`: check counting, a scratch folder, nvtd started on a config, nvtctl replies in $out/r.
set -u
NVTD=$1 NVTCTL=$2
fail=0 pass=0 pid=
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
out=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
sock=$out/nvtd.sock

# nvt_start CFG: nvtd on CFG in the background ($pid), its log in $out/log, once its control socket is there.
nvt_start() {
	"$NVTD" -c "$1" 2>"$out/log" &
	pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
}

# ctl ARGS...: nvtctl ARGS on the socket; the reply in $out/r, the exit status in $rc.
ctl() { "$NVTCTL" -s "$sock" "$@" > "$out/r"; rc=$?; }

# nvt_summary: the checks' summary (the log shown on failure); the script's exit status.
nvt_summary() {
	[ $fail = 0 ] || cat "$out/log"
	echo "$pass passed, $fail failed"
	[ $fail = 0 ]
}
