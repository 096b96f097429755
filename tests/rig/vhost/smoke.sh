# SPDX-License-Identifier: BSD-3-Clause
# vhost rig scenario: a Linux 6.1 guest's stock virtio-scsi + sd on nvtd LUNs (plain and T10 PI): discovery, VPD, PI, SCSI commands from sg3_utils (persistent reservations among them), filesystems, PI corruption, QEMU killed mid-I/O.
# shellcheck shell=bash

VH_NQN=nqn.2026-12.io.nvt:vhost
VH_BAD_LBA=300000		# on the PI LUN, past what the filesystem phase writes

# ---- host side -------------------------------------------------------------------
vh_host() {
	local cfg=$NVT_RIG_OUT/nvtd.cfg
	cat > "$cfg" <<CFG
log_level = "info";
control_socket = "$VH_CTL";
threads = 2;
subsystems = ( { nqn = "$VH_NQN"; allow_any_host = true; namespaces = (
	{ nsid = 1; backend = "ram"; size = "256M"; },
	{ nsid = 2; backend = "ram"; size = "256M"; pi = { type = 1; }; },
	{ nsid = 3; backend = "ram"; size = "64M"; block_size = 4096; pi = { type = 1; }; } ); } );
vhost = ( { socket = "$VH_SOCK"; luns = (
	{ lun = 0; subsystem = "$VH_NQN"; nsid = 1; },
	{ lun = 1; subsystem = "$VH_NQN"; nsid = 2; },
	{ lun = 2; subsystem = "$VH_NQN"; nsid = 3; } ); } );
CFG
	vh_start_nvtd "$cfg"
	"$VH_NVTCTL" -s "$VH_CTL" status | sed 's/^/    /'

	vh_guest main
	# the guest reboots inside one QEMU: firmware then Linux restart the device again
	vh_guest reboot --reboot
	[ -e "$NVT_RIG_OUT/rebooted" ] || vh_fail "the reboot phase did not boot twice"
	# corrupt one block of the PI LUN behind the guest's back: its next read must fail
	"$VH_NVTCTL" -s "$VH_CTL" inject "$VH_NQN" 2 "$VH_BAD_LBA" data 5
	# a guest killed with SIGKILL in the middle of fio, then a new QEMU on the same socket
	( for _ in $(seq 1 600); do
		[ -e "$NVT_RIG_OUT/fio-running" ] && { sleep 3; vh_kill_qemu; exit 0; }
		sleep 0.5
	  done ) &
	local killer=$!
	vh_guest killed || true
	wait "$killer"
	[ -e "$NVT_RIG_OUT/fio-running" ] || vh_fail "the killed phase never started fio"
	vh_guest after
	grep -q "LBA $VH_BAD_LBA" "$NVT_RIG_OUT/nvtd.log" ||
		vh_fail "nvtd.log does not name the corrupted LBA $VH_BAD_LBA"
	vh_stop_nvtd
}

# ---- guest side ------------------------------------------------------------------
# vh_disk LUN: the sd block device of LUN on the virtio-scsi host
vh_disk() {
	local d
	for d in /sys/bus/scsi/devices/*:0:0:"$1"/block/*; do
		[ -e "$d" ] && { echo "/dev/$(basename "$d")"; return 0; }
	done
	return 1
}

# vh_sg LUN: its SCSI generic node (sg_xcopy wants those, not block devices)
vh_sg() {
	local d
	for d in /sys/bus/scsi/devices/*:0:0:"$1"/scsi_generic/*; do
		[ -e "$d" ] && { echo "/dev/$(basename "$d")"; return 0; }
	done
	return 1
}

vh_wait_disks() {
	rig_wait_for 60 "LUN 0-2 block devices" sh -c 'ls /sys/bus/scsi/devices/*:0:0:2/block/* > /dev/null'
	D0=$(vh_disk 0) D1=$(vh_disk 1) D2=$(vh_disk 2)
	rig_info "LUN0 $D0 (plain)  LUN1 $D1 (PI 512+8)  LUN2 $D2 (PI 4096+8)"
}

vh_integrity_is() { [ "$(cat "/sys/block/$(basename "$1")/integrity/format")" = "$2" ]; }

vh_fs_phase() { # DEV NAME: ext4 with a checksummed file
	mkfs.ext4 -q -F "$1" 64M
	mkdir -p "/mnt/$2"
	mount "$1" "/mnt/$2"
	dd if=/dev/urandom of="/mnt/$2/data" bs=1M count=8 status=none
	sync
	md5sum < "/mnt/$2/data" > "$NVT_RIG_OUT/$2.md5"
	umount "/mnt/$2"
}

vh_fs_check() { # DEV NAME
	fsck.ext4 -n "$1" > /dev/null
	mkdir -p "/mnt/$2"
	mount -o ro "$1" "/mnt/$2"
	md5sum < "/mnt/$2/data" | cmp -s - "$NVT_RIG_OUT/$2.md5"
	local st=$?
	umount "/mnt/$2"
	return $st
}

vh_fio_verify() { # DEV
	fio --name=v --filename="$1" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
		--iodepth=16 --numjobs=1 --size=16M --offset=128M --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
		--output-format=terse --terse-version=3 > /dev/null
}

vh_pattern() { # FILE BLOCKS BYTE: a file of BLOCKS 512-byte blocks of BYTE
	head -c $(( $2 * 512 )) /dev/zero | tr '\0' "\\$(printf '%03o' "$3")" > "$1"
}

vh_guest_main() {
	vh_wait_disks
	rig_check "lsscsi lists the three LUNs" sh -c 'lsscsi | grep -c "NVT" | grep -qx 3'
	lsscsi | sed 's/^/    /'
	rig_check "plain LUN has no integrity profile" vh_integrity_is "$D0" none
	rig_check "PI LUN: sd enabled T10-DIF-TYPE1-CRC" vh_integrity_is "$D1" T10-DIF-TYPE1-CRC
	rig_check "4K PI LUN: sd enabled T10-DIF-TYPE1-CRC" vh_integrity_is "$D2" T10-DIF-TYPE1-CRC
	for p in sv sn di ei bl bdc lbpv tpc; do
		rig_check "sg_vpd -p $p" sg_vpd -p "$p" "$D1"
	done
	rig_check "READ CAPACITY 16 reports PROT_EN, type 1 and LBPME" \
		sh -c "sg_readcap -l '$D1' | tee /dev/stderr | grep -q 'prot_en=1, p_type=0' && sg_readcap -l '$D1' | grep -q 'lbpme=1'"
	rig_check "fio verify, plain LUN" vh_fio_verify "$D0"
	rig_check "fio verify, PI LUN" vh_fio_verify "$D1"
	rig_check "fio verify, 4K PI LUN" vh_fio_verify "$D2"

	local f=/root/vh
	mkdir -p $f
	vh_pattern $f/ws 1 0x5a
	vh_pattern $f/ws16 16 0x5a
	rig_check "WRITE SAME(16) of 16 blocks on the PI LUN" \
		sg_write_same --16 --lba=200000 --num=16 --in=$f/ws "$D1"
	rig_check "the blocks read back (PI checked by the guest)" \
		sh -c "dd if='$D1' bs=512 skip=200000 count=16 iflag=direct status=none | cmp -s - $f/ws16"
	rig_check "WRITE SAME(10) with UNMAP" sg_write_same --10 --unmap --lba=200000 --num=8 "$D1"
	head -c 4096 /dev/zero > $f/zero8
	rig_check "unmapped blocks read back as zeroes" \
		sh -c "dd if='$D1' bs=512 skip=200000 count=8 iflag=direct status=none | cmp -s - $f/zero8"
	rig_check "UNMAP" sg_unmap --force --lba=200008 --num=8 "$D1"
	rig_check "UNMAP'd blocks read back as zeroes" \
		sh -c "dd if='$D1' bs=512 skip=200008 count=8 iflag=direct status=none | cmp -s - $f/zero8"

	# COMPARE AND WRITE: compare with 0x5a... (what is there), write 0xa5...
	vh_pattern $f/cmp 1 0x5a
	vh_pattern $f/new 1 0xa5
	cat $f/cmp $f/new > $f/caw
	dd if=$f/ws of="$D0" bs=512 seek=1000 oflag=direct status=none
	rig_check "COMPARE AND WRITE that matches" \
		sg_compare_and_write --in=$f/caw --lba=1000 --num=1 "$D0"
	rig_check "it wrote the new block" \
		sh -c "dd if='$D0' bs=512 skip=1000 count=1 iflag=direct status=none | cmp -s - $f/new"
	# the block now holds 0xa5s: compare against that with byte 77 changed
	cat $f/new $f/cmp > $f/caw
	printf 'X' | dd of=$f/caw bs=1 seek=77 conv=notrunc status=none
	rig_check "a miscompare fails with the byte offset (77 differs first)" sh -c "
		sg_compare_and_write --in=$f/caw --lba=1000 --num=1 '$D0' > $f/caw.out 2>&1; st=\$?
		cat $f/caw.out; [ \$st = 14 ] && grep -q 'offset: 77 ' $f/caw.out"
	rig_check "and wrote nothing" \
		sh -c "dd if='$D0' bs=512 skip=1000 count=1 iflag=direct status=none | cmp -s - $f/new"

	# EXTENDED COPY between LUNs and within one
	dd if=/dev/urandom of=$f/src bs=512 count=64 status=none
	dd if=$f/src of="$D0" bs=512 seek=4096 oflag=direct status=none
	rig_check "EXTENDED COPY plain LUN -> PI LUN" \
		sg_xcopy if="$(vh_sg 0)" of="$(vh_sg 1)" bs=512 skip=4096 seek=8192 count=64
	rig_check "the copy reads back through the guest's PI checks" \
		sh -c "dd if='$D1' bs=512 skip=8192 count=64 iflag=direct status=none | cmp -s - $f/src"
	rig_check "EXTENDED COPY within the PI LUN" \
		sg_xcopy if="$(vh_sg 1)" of="$(vh_sg 1)" bs=512 skip=8192 seek=16384 count=64
	rig_check "the in-LUN copy reads back" \
		sh -c "dd if='$D1' bs=512 skip=16384 count=64 iflag=direct status=none | cmp -s - $f/src"
	rig_check "VERIFY(16) of the copy" sg_verify --16 --lba=16384 --count=64 "$D1"

	# PERSISTENT RESERVE on the 4K PI LUN (this guest is one I_T nexus); cleared at the end
	rig_check "PR OUT REGISTER key 0xabc1" sg_persist --out --register --param-sark=0xabc1 "$D2"
	rig_check "PR IN READ KEYS lists 0xabc1" sh -c "sg_persist --in --read-keys '$D2' | tee /dev/stderr | grep -q 0xabc1"
	rig_check "PR OUT RESERVE Write Exclusive" sg_persist --out --reserve --param-rk=0xabc1 --prout-type=1 "$D2"
	rig_check "PR IN READ RESERVATION: Write Exclusive held with 0xabc1" sh -c \
		"sg_persist --in --read-reservation '$D2' | tee /dev/stderr | grep -q 0xabc1 && sg_persist --in --read-reservation '$D2' | grep -qi 'write exclusive'"
	rig_check "the holder writes" dd if=$f/src of="$D2" bs=4096 seek=1000 count=1 oflag=direct status=none
	rig_check "REGISTER with a wrong key: RESERVATION CONFLICT" sh -c \
		"sg_persist --out --register --param-rk=0x9999 --param-sark=0x1 '$D2'; [ \$? = 24 ]"
	rig_check "PR IN REPORT CAPABILITIES" sh -c "sg_persist --in --report-capabilities '$D2' | tee /dev/stderr | grep -qi 'write exclusive'"
	rig_check "PR OUT RELEASE" sg_persist --out --release --param-rk=0xabc1 --prout-type=1 "$D2"
	rig_check "no reservation after the release" sh -c "sg_persist --in --read-reservation '$D2' | tee /dev/stderr | grep -qi 'no reservation'"
	rig_check "PR OUT CLEAR" sg_persist --out --clear --param-rk=0xabc1 "$D2"
	rig_check "no keys after CLEAR" sh -c "sg_persist --in --read-keys '$D2' | tee /dev/stderr | grep -qi 'no registered'"

	# PI data for the corruption phase: a good block at VH_BAD_LBA first
	dd if=$f/src of="$D1" bs=512 seek=$VH_BAD_LBA count=1 oflag=direct status=none
	rig_check "ext4 on the plain LUN" vh_fs_phase "$D0" plain
	rig_check "ext4 on the PI LUN" vh_fs_phase "$D1" pi
	rig_check "kernel log clean" rig_dmesg_clean
}

# First boot: write, then reboot in place. Second boot (same QEMU, same vhost
# connection: SeaBIOS, then Linux, restart the device): the blocks are intact.
vh_guest_reboot() {
	vh_wait_disks
	if [ ! -e "$NVT_RIG_OUT/rebooting" ]; then
		dd if=/dev/urandom of="$NVT_RIG_OUT/reboot.data" bs=4096 count=64 status=none
		rig_check "write 256 KiB on the PI LUN before the reboot" \
			dd if="$NVT_RIG_OUT/reboot.data" of="$D1" bs=4096 seek=30000 oflag=direct,sync status=none
		touch "$NVT_RIG_OUT/rebooting"
		sync
		echo b > /proc/sysrq-trigger
		sleep 60
		rig_fail "the guest did not reboot"
	fi
	touch "$NVT_RIG_OUT/rebooted"
	rig_check "after the reboot the blocks read back (PI checked)" sh -c \
		"dd if='$D1' bs=4096 skip=30000 count=64 iflag=direct status=none | cmp -s - '$NVT_RIG_OUT/reboot.data'"
	rig_check "ext4 on the PI LUN intact after the reboot" vh_fs_check "$D1" pi
}

vh_guest_killed() {
	vh_wait_disks
	touch "$NVT_RIG_OUT/fio-running"
	# the host kills this VM a few seconds in; nothing after this line is reached
	fio --name=k --filename="$D2" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
		--iodepth=16 --numjobs=2 --size=32M --time_based --runtime=300 > /dev/null
	rig_fail "fio ran to its end: the host did not kill this VM"
}

vh_guest_after() {
	vh_wait_disks
	rig_check "ext4 on the plain LUN intact after two QEMUs" vh_fs_check "$D0" plain
	rig_check "ext4 on the PI LUN intact after two QEMUs" vh_fs_check "$D1" pi
	rig_check "the corrupted block fails the guest's read (EILSEQ)" sh -c "
		! dd if='$D1' bs=512 skip=$VH_BAD_LBA count=1 iflag=direct of=/dev/null 2> /root/bad.err
		cat /root/bad.err; grep -q 'Invalid or incomplete multibyte' /root/bad.err"
	rig_check "fio verify after the kill, 4K PI LUN" vh_fio_verify "$D2"
	rig_check "kernel log clean" rig_dmesg_clean
}
