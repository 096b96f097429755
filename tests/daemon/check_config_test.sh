#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nvtd --check-config: the example is valid and round-trips; each bad file exits 1, and a store a backend cannot use exits 3 at start-up, with "file:line: setting: message".
set -u
NVTD=$1 SRC=$2
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

"$NVTD" --check-config "$SRC/conf/nvt-example.cfg" >"$out/norm.cfg" 2>"$out/err"
check "example config is valid" '[ $? = 0 ] && [ ! -s "$out/err" ]'
check "normalised output names the subsystem" 'grep -q "nqn.2026-11.io.nvt:ram0" "$out/norm.cfg"'
"$NVTD" --check-config "$out/norm.cfg" >"$out/norm2.cfg" 2>"$out/err"
check "normalised output is itself valid and stable" '[ $? = 0 ] && cmp -s <(tail -n +2 "$out/norm.cfg") <(tail -n +2 "$out/norm2.cfg")'

for f in syntax unknown_top unknown_ns wrong_type bad_pi dup_nsid dup_nqn size_zero bad_block_size \
	 size_unaligned bad_nqn bad_address unknown_backend dup_uuid; do
	file="$SRC/tests/unit/config/$f.cfg"
	"$NVTD" --check-config "$file" >"$out/stdout" 2>"$out/err"
	rc=$?
	check "$f: exit 1 (got $rc)" '[ $rc = 1 ]'
	check "$f: message is file:line: setting: message" \
		'grep -Eq "^$file:[0-9]+: [^ :]+: .+" "$out/err"'
	check "$f: nothing on stdout" '[ ! -s "$out/stdout" ]'
done
"$NVTD" --check-config /nonexistent.cfg >/dev/null 2>"$out/err"
check "missing file: exit 1" '[ $? = 1 ] && grep -q "/nonexistent.cfg" "$out/err"'
# The file backend at start-up: a store it cannot use exits 3, naming file:line and the setting.
cat > "$out/used.cfg" <<EOF
subsystems = ( { nqn = "nqn.2026-12.io.nvt:f"; allow_any_host = true; namespaces = (
  { nsid = 1; backend = "file"; path = "$out/a.img"; size = "1M"; },
  { nsid = 2; backend = "file"; path = "$out/a.img"; size = "1M"; } ); } );
EOF
cat > "$out/nodir.cfg" <<EOF
subsystems = ( { nqn = "nqn.2026-12.io.nvt:f"; allow_any_host = true; namespaces = (
  { nsid = 1; backend = "file"; path = "$out/no/such/dir/a.img"; size = "1M"; } ); } );
EOF
head -c 1000 /dev/zero > "$out/odd.img"
cat > "$out/odd.cfg" <<EOF
subsystems = ( { nqn = "nqn.2026-12.io.nvt:f"; allow_any_host = true; namespaces = (
  { nsid = 1; backend = "file"; path = "$out/odd.img"; } ); } );
EOF
for f in used nodir odd; do
	"$NVTD" --check-config "$out/$f.cfg" >/dev/null 2>"$out/err"
	check "$f: valid as a configuration" '[ $? = 0 ]'
	timeout 20 "$NVTD" -c "$out/$f.cfg" >/dev/null 2>"$out/err"
	rc=$?
	check "$f: start-up fails with exit 3 (got $rc)" '[ $rc = 3 ]'
	check "$f: message is file:line: setting: message" \
		'grep -Eq "$out/$f.cfg:[0-9]+: (path|size): .+" "$out/err"'
	[ "$f" = used ] && check "used: the second namespace (line 3) is refused" \
		'grep -q "$out/used.cfg:3: path: .*already used by nsid 1" "$out/err"'
done
# DH-HMAC-CHAP secrets never leave the file: not in --check-config, not in errors, not in the log.
key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACtVQoZ
cat > "$out/auth.cfg" <<EOF
subsystems = ( { nqn = "nqn.2026-12.io.nvt:auth"; require_authentication = true;
  hosts = ( "nqn.2026-12.io.nvt:plain",
    { nqn = "nqn.2026-12.io.nvt:h"; dhchap_key = "DHHC-1:01:$key:"; dhchap_ctrl_key = "DHHC-1:00:$key:"; } );
  namespaces = ( { nsid = 1; backend = "ram"; size = "1M"; } ); } );
EOF
"$NVTD" --check-config "$out/auth.cfg" >"$out/auth.out" 2>&1
check "auth: valid as a configuration" '[ $? = 0 ]'
check "auth: --check-config shows no secret" '! grep -q "DHHC\|$key" "$out/auth.out"'
check "auth: --check-config says the keys were left out" \
	'grep -q "dhchap_key and dhchap_ctrl_key given, not shown" "$out/auth.out"'
sed "s/01:$key:/01:${key%Z}Y:/" "$out/auth.cfg" > "$out/auth-bad.cfg"
"$NVTD" --check-config "$out/auth-bad.cfg" >"$out/auth.out" 2>&1
check "auth: a mistyped secret is refused at its line" \
	'grep -q "auth-bad.cfg:3: subsystems\[0\].hosts\[1\].dhchap_key: CRC-32 mismatch" "$out/auth.out"'
check "auth: the refusal quotes no secret" '! grep -q "DHHC\|${key%Z}" "$out/auth.out"'
timeout 2 "$NVTD" -c "$out/auth.cfg" --log-level debug >"$out/auth.log" 2>&1
check "auth: nvtd ran until stopped" '[ $? = 124 ]'
check "auth: the log holds no secret" '! grep -q "DHHC\|$key" "$out/auth.log"'
"$NVTD" --bogus >/dev/null 2>&1
check "bad option: exit 2" '[ $? = 2 ]'
"$NVTD" -c "$SRC/conf/nvt-example.cfg" --log-level loud >/dev/null 2>&1
check "bad log level: exit 2" '[ $? = 2 ]'
echo "$pass passed, $fail failed"
[ $fail = 0 ]
