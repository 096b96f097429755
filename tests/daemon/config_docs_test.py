#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Every setting nvtd accepts is in nvt.conf(5)'s source and in README.md's configuration reference, and neither names one it does not accept.
"""config_docs_test.py SRC

The settings come from the loader's own tables (target/config.c's struct field
arrays, the backends' struct nvt_be_setting arrays), so a setting added there
without its two lines of documentation fails here, and so does documentation
of a setting that was renamed or removed.
"""
import glob
import re
import sys

SRC = sys.argv[1]

# Where each table's settings sit in the file, as the docs write them.
TABLE_PREFIX = {
    "top_fields": "",
    "listener_fields": "listeners.[].",
    "ana_group_fields": "ana_groups.[].",
    "subsys_fields": "subsystems.[].",
    "host_fields": "hosts.[].",
    "ns_fields": "namespaces.[].",
    "pi_fields": "namespaces.[].pi.",
    "vhost_fields": "vhost.[].",
    "vhost_lun_fields": "luns.[].",
}
SETTING = re.compile(r"^[a-z][a-z_]*(\.(\[\]\.)?[a-z_]+)*$")
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg)


def tables(path, struct, key_re):
    """{table name: [keys]} for every `static const struct STRUCT name[] = { ... };`."""
    text = open(path, encoding="utf-8").read()
    out = {}
    for m in re.finditer(r"static const struct %s (\w+)\[\] = \{(.*?)\n\};" % struct, text, re.S):
        out[m.group(1)] = re.findall(key_re, m.group(2))
    return out


def accepted():
    names = set()
    found = tables(f"{SRC}/target/config.c", "field", r'\{\s*"([a-z_]+)",\s*FT_')
    for table, keys in found.items():
        if table not in TABLE_PREFIX:
            fail(f"target/config.c: table {table} is new: tell this test where its settings "
                 "live (TABLE_PREFIX)")
            continue
        names.update(TABLE_PREFIX[table] + k for k in keys)
    missing = set(TABLE_PREFIX) - set(found)
    if missing:
        fail(f"target/config.c: tables {sorted(missing)} not found: has the loader changed shape?")
    for path in sorted(glob.glob(f"{SRC}/backend/*.c")):
        for keys in tables(path, "nvt_be_setting", r'\{\s*"([a-z_]+)",\s*NVT_BE_SET_').values():
            names.update("namespaces.[]." + k for k in keys)
    # A broken regex must not make an empty list agree with empty docs.
    for sure in ("log_level", "listeners.[].port", "namespaces.[].pi.type",
                 "namespaces.[].path", "luns.[].nsid"):
        if sure not in names:
            fail(f"the sources' settings were not read right: {sure} is missing from {sorted(names)}")
    return names


def in_man():
    """Backquoted terms of ': ' lines on the nvt.conf page of tools/man/nvt.man."""
    names, on_page = set(), False
    for line in open(f"{SRC}/tools/man/nvt.man", encoding="utf-8"):
        if line.startswith("@page "):
            on_page = line.split()[1] == "nvt.conf"
        elif on_page and line.startswith(": "):
            term = line.split(" (")[0]	# the names, not "(bool, default `true`)"
            names.update(t for t in re.findall(r"`([^`]+)`", term) if SETTING.match(t))
    return names


def in_readme():
    """First-column names of the table under README.md's "## Configuration reference"."""
    names, state = set(), "before"
    for line in open(f"{SRC}/README.md", encoding="utf-8"):
        if state == "before":
            if line.startswith("## Configuration reference"):
                state = "section"
        elif state in ("section", "table"):
            if line.startswith("| "):
                state = "table"
                first = line.split("|")[1]
                names.update(t for t in re.findall(r"`([^`]+)`", first) if SETTING.match(t))
            elif state == "table" or line.startswith("## "):
                break
    return names


def with_groups(names):
    """A group (pi) is documented by its members' rows (namespaces.[].pi.type)."""
    return names | {n.rsplit(".", 1)[0] for n in names if "." in n and not n.endswith("[]")}


def main():
    code = accepted()
    for doc, names in (("tools/man/nvt.man (nvt.conf(5))", in_man()),
                       ("README.md, Configuration reference", in_readme())):
        names = with_groups(names) & code | names
        for n in sorted(code - names):
            fail(f"{doc} does not document {n}")
        for n in sorted(names - code):
            fail(f"{doc} documents {n}, which nvtd does not accept")
    print(f"{len(code)} settings; {'0 failed' if not failures else f'{failures} failed'}")
    sys.exit(1 if failures else 0)


main()
