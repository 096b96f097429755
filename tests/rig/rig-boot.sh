# SPDX-License-Identifier: BSD-3-Clause
# Sourced by build-vm.sh and run-vm.sh: the rig cache (one VM lock for every kernel) and the folder of the kernel NVT_RIG_KERNEL names.
CACHE=${NVT_RIG_CACHE:-/var/tmp/nvt-rig}
case "${NVT_RIG_KERNEL:-}" in
'') BOOT=$CACHE ;;
*[!0-9.]*) echo "rig: NVT_RIG_KERNEL=$NVT_RIG_KERNEL: expected a kernel series such as 6.12" >&2; exit 2 ;;
*) BOOT=$CACHE/boot-$NVT_RIG_KERNEL ;;
esac
