#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Install the Debian 12 packages nvt builds and tests with (idempotent; needs root); mkfs.ext4/mkfs.xfs
# for the file backend's filesystem tests, fio for loop_bench's ceiling.
# python3 for the fuzz corpora, the notify and config-docs tests and the man pages; man-db to render them.
# `tools/deps.sh fuzz` adds what the libFuzzer harnesses need (tools/run-tests.sh asks for it
# only when it is going to fuzz): clang-14, its runtimes (libclang_rt.fuzzer and the
# sanitizers: libclang-rt-14-dev, only a Recommends of clang) and llvm-symbolizer (llvm-14)
# for readable stacks.
set -euo pipefail
PKGS="cmake make gcc pkg-config libibverbs-dev librdmacm-dev libnvme-dev libjson-c-dev
  liburing-dev libisal-dev libssl-dev libconfig-dev libcmocka-dev valgrind
  e2fsprogs xfsprogs fio python3 man-db"
if [ "${1:-}" = fuzz ]; then
	PKGS="$PKGS clang libclang-rt-14-dev llvm-14"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
