#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# cmake --install into a DESTDIR: nvtd, nvtctl, the unit, /etc/nvt/nvt.conf (never overwritten), the examples, man pages that render without a warning.
set -u
BUILD=$1
fail=0 pass=0
check() { if eval "$2"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); return 1; fi; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
D=$out/root

DESTDIR=$D "${CMAKE:-cmake}" --install "$BUILD" --prefix /usr > "$out/install.log" 2>&1; rc=$?
check "cmake --install --prefix /usr with DESTDIR: exit 0" '[ $rc = 0 ]'
[ $rc = 0 ] || cat "$out/install.log"
check "nothing escaped DESTDIR (every path the install names is under it)" \
	'! grep "^-- Installing:" "$out/install.log" | grep -v -- "-- Installing: $D/"'
for f in usr/sbin/nvtd usr/sbin/nvtctl; do
	check "$f: installed, executable" '[ -x "$D/$f" ] && [ -f "$D/$f" ]'
done
# systemd.pc's unit dir for /usr (Debian 12: /lib/systemd/system), else /usr/lib/systemd/system
units=$(find "$D" -name nvtd.service)
check "one nvtd.service, in a systemd unit dir ($units)" \
	'[ "$(echo "$units" | wc -l)" = 1 ] && echo "$units" | grep -q "^$D\(/usr\)\?/lib/systemd/system/nvtd.service$"'
check "the unit starts the installed nvtd on /etc/nvt/nvt.conf" \
	'grep -qx "ExecStart=/usr/sbin/nvtd -c /etc/nvt/nvt.conf" "$units"'
check "the unit's @...@ placeholders are all filled in" '! grep -q "@[A-Z_]*@" "$units"'
check "Type=notify" 'grep -qx "Type=notify" "$units"'
check "ExecReload sends SIGHUP (reload)" 'grep -qx "ExecReload=/bin/kill -HUP \$MAINPID" "$units"'
check "/etc/nvt/nvt.conf installed (not /usr/etc)" '[ -f "$D/etc/nvt/nvt.conf" ] && [ ! -e "$D/usr/etc" ]'
"$D/usr/sbin/nvtd" --check-config "$D/etc/nvt/nvt.conf" > "$out/check" 2>&1; rc=$?
check "the installed nvtd accepts the installed nvt.conf" '[ $rc = 0 ]'
check "nvt.conf has its control socket in the unit's RuntimeDirectory" \
	'grep -q "^control_socket = \"/run/nvt/" "$out/check" && grep -qx "RuntimeDirectory=nvt" "$units"'
for f in nvt-example.cfg file.cfg vhost.cfg nvt.conf README.md; do
	check "example $f in share/doc/nvt/examples" '[ -f "$D/usr/share/doc/nvt/examples/$f" ]'
done

# An admin's edits survive a re-install.
echo "# edited by the admin" >> "$D/etc/nvt/nvt.conf"
DESTDIR=$D "${CMAKE:-cmake}" --install "$BUILD" --prefix /usr > "$out/install2.log" 2>&1; rc=$?
check "re-install: exit 0, the edited /etc/nvt/nvt.conf kept" \
	'[ $rc = 0 ] && tail -n1 "$D/etc/nvt/nvt.conf" | grep -q "edited by the admin" && grep -q "Keeping: $D/etc/nvt/nvt.conf" "$out/install2.log"'

# Another prefix: the config beside it, the unit in PREFIX/lib/systemd/system.
DESTDIR=$out/local "${CMAKE:-cmake}" --install "$BUILD" --prefix /usr/local > "$out/install3.log" 2>&1; rc=$?
check "--prefix /usr/local: /usr/local/etc/nvt/nvt.conf, /usr/local/lib/systemd/system/nvtd.service naming both" \
	'[ $rc = 0 ] && [ -f "$out/local/usr/local/etc/nvt/nvt.conf" ] &&
	 grep -qx "ExecStart=/usr/local/sbin/nvtd -c /usr/local/etc/nvt/nvt.conf" "$out/local/usr/local/lib/systemd/system/nvtd.service"'

# Man pages: present, and each renders without a single warning.
pages="man8/nvtd.8 man8/nvtctl.8 man5/nvt.conf.5"
for p in $pages; do
	check "$p installed" '[ -s "$D/usr/share/man/$p" ]'
done
if command -v man > /dev/null; then
	render() { LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -E UTF-8 -l "$1"; }
	how="man -l"
elif command -v groff > /dev/null; then
	render() { groff -man -ww -Tutf8 "$1"; }
	how=groff
elif command -v nroff > /dev/null; then
	render() { nroff -man -ww "$1"; }
	how=nroff
else
	how=""
fi
if [ -n "$how" ]; then
	for p in $pages; do
		f=$D/usr/share/man/$p
		render "$f" > "$out/page" 2> "$out/warn"
		name=$(basename "$p" | sed 's/\.[0-9]$//')
		check "$p: $how renders it without warnings" '[ ! -s "$out/warn" ]' || cat "$out/warn"
		check "$p: NAME and SYNOPSIS, and the page names itself" \
			'grep -q "^NAME" "$out/page" && grep -q "^SYNOPSIS" "$out/page" && grep -q "^ *$name - " "$out/page"'
	done
	render "$D/usr/share/man/man8/nvtd.8" > "$out/page" 2>/dev/null
	check "nvtd.8: options print as typed (ASCII hyphens, copy-pasteable)" 'grep -q -- " --check-config file" "$out/page"'
	# The check above can fail: a page with an unknown macro gets a warning.
	printf '.TH X 1\n.SH NAME\nx \\- y\n.nosuchmacro\n' > "$out/bad.1"
	render "$out/bad.1" > /dev/null 2> "$out/warn"
	check "$how reports warnings at all (a page with an unknown macro)" '[ -s "$out/warn" ]'
else
	echo "SKIP: no man, groff or nroff to render the pages with"
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
