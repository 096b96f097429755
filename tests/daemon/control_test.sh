#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtctl against a running nvtd: status, fault injection, scrub listing exactly the damaged LBAs, bad requests, clients that misbehave.
. "$(dirname "$0")/lib.sh"
cat > "$out/pi.cfg" <<CFG
control_socket = "$sock";
threads = 1;
subsystems = ( {
	nqn = "nqn.2026-11.io.nvt:ctl";
	namespaces = (
		{ nsid = 1; backend = "ram"; size = "1M"; pi = { type = 1; }; },
		{ nsid = 2; backend = "ram"; size = "1M"; }
	);
} );
CFG
nvt_start "$out/pi.cfg"
N=nqn.2026-11.io.nvt:ctl

# raw: send stdin's bytes as they are (nvtctl cannot send a newline or a NUL),
# end the sending side, print the reply. perl-base is on every Debian system.
raw() {
	perl -MIO::Socket::UNIX -e '
		$SIG{PIPE} = "IGNORE"; binmode STDIN; binmode STDOUT;
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die "connect: $!\n";
		local $/; my $req = <STDIN>;
		syswrite($s, $req) if defined $req && length $req;
		shutdown($s, 1);
		print $b while sysread($s, $b, 65536);' "$sock"
}
# ms: milliseconds since the epoch.
ms() { echo $(($(date +%s%N) / 1000000)); }

ctl status
check "status: ok" '[ $rc = 0 ] && grep -q "subsystem $N: 2 namespace(s), 0 controller(s)" "$out/r"'
ctl scrub $N 1
check "scrub of an unwritten namespace: 2048 blocks, 0 bad" '[ $rc = 0 ] && grep -q "scrubbed 2048 blocks .* 0 bad" "$out/r"'
ctl inject $N 1 77 data 9
check "inject into data: ok" '[ $rc = 0 ] && grep -q "^ok: flipped bit 9 of LBA 77" "$out/r"'
# Bit 16 of the tuple is the app tag's low bit: FFFFh no longer escapes the checks.
ctl inject $N 1 1500 metadata 16
check "inject into metadata: ok" '[ $rc = 0 ]'
# 2^32 + 16 used to be truncated to 32 bits after the range check: bit 16 of LBA 5 flipped.
ctl inject $N 1 5 metadata 4294967312
check "inject of bit 2^32+16: out of range, nothing flipped" \
	'[ $rc = 1 ] && grep -q "^error: BIT 4294967312 is out of range (0..63)" "$out/r"'
ctl scrub $N 1
# Never-written blocks carry the escape tuple (as after a Format): the data flip
# at LBA 77 is not judged, the broken escape at LBA 1500 is.
check "scrub finds exactly LBA 1500 (exit 1)" \
	'[ $rc = 1 ] && [ "$(grep -c "^bad LBA" "$out/r")" = 1 ] && grep -q "^bad LBA 1500: guard" "$out/r" && grep -q "1 bad" "$out/r"'
check "nvtd logged the injection and the scrub result" 'grep -q "fault injected" "$out/log" && grep -q "scrub found 1 bad" "$out/log"'
ctl inject $N 1 0x4d data 0x9
check "hex numbers: ok (LBA 77 bit 9 flipped back)" '[ $rc = 0 ] && grep -q "^ok: flipped bit 9 of LBA 77" "$out/r"'
ctl scrub $N 2
check "scrub without PI: error" '[ $rc = 1 ] && grep -q "^error: nsid 2 has no protection information" "$out/r"'
ctl inject $N 2 0 metadata 0
check "inject into metadata a namespace lacks: error" '[ $rc = 1 ] && grep -q "^error: nsid 2 has no metadata" "$out/r"'
ctl inject $N 1 99999 data 0
check "inject past the end: error" '[ $rc = 1 ] && grep -q "^error: LBA 99999 is out of range (0..2047)" "$out/r"'
ctl ana 1 inaccessible
check "ana: group 1 inaccessible, no controllers to tell" \
	'[ $rc = 0 ] && grep -q "^ana group 1: inaccessible, 0 controller(s) notified" "$out/r" && grep -q "^ok" "$out/r"'
check "nvtd logged the ANA change" 'grep -q "ana: group 1 now inaccessible" "$out/log"'
ctl ana 1 optimized
check "ana: back to optimized" '[ $rc = 0 ] && grep -q "^ana group 1: optimized" "$out/r"'
ctl ana 1 sideways
check "ana: unknown state refused (exit 1)" '[ $rc = 1 ] && grep -q "^error: unknown ANA state" "$out/r"'
ctl ana 40 optimized
check "ana: group past 32 refused" '[ $rc = 1 ] && grep -q "^error: ANA group 40 is out of range (1..32)" "$out/r"'
ctl scrub nqn.none 1
check "unknown subsystem: error" '[ $rc = 1 ] && grep -q "^error: no subsystem nqn.none" "$out/r"'
ctl frobnicate
check "unknown command: error" '[ $rc = 1 ] && grep -q "^error: unknown command" "$out/r"'

# Every number: garbage, signs, trailing junk, 2^64, 2^32 + 1 are refused by name.
while read -r what args; do
	# shellcheck disable=SC2086
	ctl $args
	check "bad number ($args): error naming $what" \
		'[ $rc = 1 ] && [ "$(wc -l < "$out/r")" = 1 ] && grep -q "^error: $what .* is \(not a number\|out of range\)" "$out/r"'
done <<EOF
NSID scrub $N 1x
NSID scrub $N -1
NSID scrub $N 0x
NSID scrub $N +1
NSID scrub $N 0
NSID scrub $N 4294967297
NSID inject $N 18446744073709551617 0 data 0
LBA inject $N 1 77junk data 0
LBA inject $N 1 -1 data 0
LBA inject $N 1 18446744073709551616 data 0
LBA inject $N 1 0x0x4d data 0
BIT inject $N 1 77 data -1
BIT inject $N 1 77 data 4096
BIT inject $N 1 77 data 4294967296
BIT inject $N 1 77 data 9.5
EOF
ctl scrub $N 1 extra
check "trailing words: usage error" '[ $rc = 1 ] && grep -q "^error: usage: scrub NQN NSID$" "$out/r"'
ctl status now
check "status with an argument: usage error" '[ $rc = 1 ] && grep -q "^error: usage: status$" "$out/r"'
"$NVTCTL" -s "$sock" scrub "$N"$'\n'1 > "$out/r" 2>&1; rc=$?
check "nvtctl refuses a newline inside an argument" '[ $rc = 2 ] && grep -q "line breaks" "$out/r"'

# A request is its first line: what follows is not taken as arguments.
printf 'scrub %s\n1\n' "$N" | raw > "$out/r"
check "words after the first newline are not arguments" 'grep -q "^error: usage: scrub NQN NSID$" "$out/r"'
printf 'status\ninject %s 1 5 metadata 16\n' "$N" | raw > "$out/r"
check "a second line is not a second command" '[ "$(tail -n1 "$out/r")" = ok ] && ! grep -q flipped "$out/r"'
printf 'status\0 junk\n' | raw > "$out/r"
check "a NUL byte: error" 'grep -q "^error: control character 0 at byte 6" "$out/r"'
printf 'status\r\n' | raw > "$out/r"
check "CRLF line end: ok" '[ "$(tail -n1 "$out/r")" = ok ]'
printf 'status' | raw > "$out/r"
check "a last line without a newline, then EOF: ok" '[ "$(tail -n1 "$out/r")" = ok ]'
head -c 600 /dev/zero | tr '\0' a | raw > "$out/r"
check "600-byte request: error" 'grep -q "^error: request longer than 511 bytes" "$out/r"'
head -c 65536 /dev/zero | tr '\0' a | raw > "$out/r"
check "64 KiB without a newline: error" 'grep -q "^error: request longer than 511 bytes" "$out/r"'
# Gone before the reply: writing it must not SIGPIPE nvtd.
for _ in 1 2 3 4 5; do
	printf 'scrub %s 1\n' "$N" | perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or exit 1;
		local $/; syswrite($s, <STDIN>); close($s);' "$sock"
	: | raw > /dev/null	# connects and leaves without a word
done
ctl status
check "clients that leave early: nvtd still serves" 'kill -0 $pid && [ $rc = 0 ]'

# Clients that say nothing, or trickle a byte at a time, never stall the main
# loop (which also runs admin queues and keep-alive), and are dropped after 5 s.
t0=$(ms)
perl -MIO::Socket::UNIX -MTime::HiRes=time -e '
	my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die;
	my $t = time; 1 while sysread($s, my $b, 512); printf "%d\n", time - $t;' "$sock" > "$out/silent" &
silent=$!
perl -MIO::Socket::UNIX -e '
	$SIG{PIPE} = "IGNORE";
	my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die;
	for (1..30) { syswrite($s, "s") or last; select(undef, undef, undef, 0.2); }' "$sock" &
loris=$!
sleep 0.3
t1=$(ms)
ctl status
t2=$(ms)
check "status answered in $((t2 - t1)) ms beside a silent and a trickling client" \
	'[ $rc = 0 ] && [ $((t2 - t1)) -lt 500 ]'
# 2 held now; 14 more fill the table, the 17th is turned away.
holders=""
for _ in $(seq 14); do
	perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die;
		1 while sysread($s, my $b, 512);' "$sock" &
	holders="$holders $!"
done
# until they are all in (a loaded machine starts 14 perls slowly), well within the 5 s
# after which nvtd drops silent clients
for _ in $(seq 20); do
	sleep 0.15
	ctl status
	[ $rc = 1 ] && break
done
check "17th client: told nvtd is busy" '[ $rc = 1 ] && grep -q "^error: too many control clients" "$out/r"'
wait $silent $loris
# shellcheck disable=SC2086
wait $holders
t3=$(ms)
check "silent client dropped after ~5 s (took $(cat "$out/silent") s)" \
	'[ "$(cat "$out/silent")" -ge 4 ] && [ "$(cat "$out/silent")" -le 7 ]'
check "all held clients gone within 8 s ($((t3 - t0)) ms)" '[ $((t3 - t0)) -lt 8000 ]'
check "nvtd logged the dropped clients" 'grep -q "client too slow (no complete request)" "$out/log"'
ctl status
check "status ok again afterwards" '[ $rc = 0 ]'

kill -TERM $pid; wait $pid; rc=$?
check "nvtd stops cleanly and removes its socket" '[ $rc = 0 ] && [ ! -e "$sock" ]'
nvt_summary
