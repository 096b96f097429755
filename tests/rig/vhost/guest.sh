#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Inside a vhost rig VM: runs phase PHASE (function vh_guest_PHASE) of scenario tests/rig/vhost/NAME.sh.
# usage: guest.sh NAME PHASE
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../scenarios/lib.sh
. "$HERE/../scenarios/lib.sh"
# shellcheck source=/dev/null
. "$HERE/$1.sh"
rig_begin
"vh_guest_$2"
