#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# README command 1: install dependencies, build, and run nvtd in the foreground on the example config.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "nvtd built: build/nvtd; serving conf/nvt-example.cfg (Ctrl-C stops it)"
exec build/nvtd -c conf/nvt-example.cfg "$@"
