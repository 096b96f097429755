#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Entry point for rig tests (ctest calls it): builds the VM if needed, boots it and runs tests/rig/scenarios/NAME.sh inside.
#
# usage: scenario.sh [-t SECS] [-m MIB] [-c CPUS] [--shell] NAME [ARGS...]
#   -t SECS   VM timeout (default $NVT_RIG_TIMEOUT or 900)
#   -m, -c    guest memory (MiB, default 2048) and vCPUs (default 2)
#   --shell   run the scenario on the VM console, then leave an interactive shell
# A scenario may come with scenarios/NAME.qemu-args (executable, run on the host before
# the boot): its output lines are extra qemu arguments (run-vm.sh -q), e.g. emulated disks.
# Environment:
#   NVT_BUILD        build dir (default $NVT_SRC/build); visible read-only in the guest
#   NVT_RIG_OUT      writable results dir (default $NVT_BUILD/rig-out/NAME if the build
#                    dir exists, else $NVT_RIG_CACHE/out/NAME); console.log lands there
#   NVT_RIG_CACHE    VM cache (default /var/tmp/nvt-rig)
#   NVT_RIG_SKIP_BUILD=1  do not run build-vm.sh first
#   NVT_RIG_*        every NVT_RIG_* variable is passed on to the scenario
# Exit status: the scenario's; 77 (SKIP) only when qemu cannot run at all.
set -euo pipefail

RIG_DIR=$(cd "$(dirname "$0")" && pwd)
NVT_SRC=$(cd "$RIG_DIR/../.." && pwd)
CACHE=${NVT_RIG_CACHE:-/var/tmp/nvt-rig}
VM_OPTS=()
TIMEOUT_S=${NVT_RIG_TIMEOUT:-900}

usage() { sed -n '/^# usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	-t) TIMEOUT_S=$2; shift 2 ;;
	-m|-c) VM_OPTS+=("$1" "$2"); shift 2 ;;
	--shell) VM_OPTS+=(--shell); export NVT_RIG_NO_TEARDOWN=${NVT_RIG_NO_TEARDOWN:-1}; shift ;;
	-h|--help) usage ;;
	-*) echo "scenario: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || usage
NAME=$1
shift
SCRIPT="$RIG_DIR/scenarios/$NAME.sh"
if [ ! -f "$SCRIPT" ]; then
	echo "scenario: no such scenario: $SCRIPT; have:" >&2
	ls "$RIG_DIR/scenarios" | sed -n 's/\.sh$//p' | grep -vx lib | sed 's/^/  /' >&2
	exit 2
fi

NVT_BUILD=${NVT_BUILD:-$NVT_SRC/build}
[ -d "$NVT_BUILD" ] && NVT_BUILD=$(realpath "$NVT_BUILD")
if [ -n "${NVT_RIG_OUT:-}" ]; then
	mkdir -p "$NVT_RIG_OUT"
elif [ -d "$NVT_BUILD" ]; then
	NVT_RIG_OUT="$NVT_BUILD/rig-out/$NAME"
	rm -rf "$NVT_RIG_OUT"
else
	NVT_RIG_OUT="$CACHE/out/$NAME"
	rm -rf "$NVT_RIG_OUT"
fi
mkdir -p "$NVT_RIG_OUT"
NVT_RIG_OUT=$(realpath "$NVT_RIG_OUT")

t0=$(date +%s)
result() { # result WORD STATUS
	echo "rig: $1: $NAME (status $2, $(( $(date +%s) - t0 ))s; console $NVT_RIG_OUT/console.log)"
}

if [ "${NVT_RIG_SKIP_BUILD:-0}" != 1 ]; then
	if ! "$RIG_DIR/build-vm.sh"; then
		if ! command -v qemu-system-x86_64 > /dev/null; then
			echo "rig: SKIP: $NAME: qemu-system-x86_64 unavailable after build-vm.sh"
			exit 77
		fi
		result FAIL "build-vm.sh failed"
		exit 1
	fi
fi

# /tmp and /run are fresh tmpfs in the guest: share checkouts living there
RO_OPTS=()
for d in "$NVT_SRC" "$NVT_BUILD"; do
	[ -d "$d" ] || continue
	case "$d" in
	/tmp/*|/run/*)
		case "$d" in "$NVT_SRC"/*) continue ;; esac  # inside the shared checkout
		RO_OPTS+=(-r "$d") ;;
	esac
done

# the scenario's environment: paths, plus the caller's NVT_RIG_* knobs
JOB_ENV=(-e "NVT_SRC=$NVT_SRC" -e "NVT_BUILD=$NVT_BUILD" -e "NVT_RIG_OUT=$NVT_RIG_OUT"
	-e "NVT_RIG_SCENARIO=$NAME")
while IFS= read -r var; do
	case "$var" in NVT_RIG_OUT|NVT_RIG_SCENARIO) continue ;; esac
	JOB_ENV+=(-e "$var=${!var}")
done < <(compgen -e | grep '^NVT_RIG_' || true)

# A scenario that needs devices in the VM has scenarios/NAME.qemu-args: run here, on the
# host, before every boot (so it can make fresh images), it prints qemu arguments, one a line.
QEMU_ARGS_HOOK="$RIG_DIR/scenarios/$NAME.qemu-args"
if [ -x "$QEMU_ARGS_HOOK" ]; then
	if ! QEMU_ARGS=$(NVT_RIG_CACHE=$CACHE NVT_RIG_OUT=$NVT_RIG_OUT "$QEMU_ARGS_HOOK"); then
		result FAIL "$QEMU_ARGS_HOOK failed"
		exit 1
	fi
	while IFS= read -r arg; do
		[ -n "$arg" ] && VM_OPTS+=(-q "$arg")
	done <<< "$QEMU_ARGS"
fi

echo "rig: running $NAME in the VM (src $NVT_SRC, build $NVT_BUILD, out $NVT_RIG_OUT)"
set +e
"$RIG_DIR/run-vm.sh" -t "$TIMEOUT_S" "${VM_OPTS[@]}" "${RO_OPTS[@]}" -w "$NVT_RIG_OUT" \
	-l "$NVT_RIG_OUT/console.log" \
	"${JOB_ENV[@]}" "$SCRIPT" "$@"
status=$?
set -e
case "$status" in
0) result PASS 0 ;;
77) echo "rig: SKIP: $NAME: qemu cannot run on this machine" ;;
124) result FAIL "124, timeout after ${TIMEOUT_S}s" ;;
*) result FAIL "$status" ;;
esac
exit "$status"
