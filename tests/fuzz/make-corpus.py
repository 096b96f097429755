#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Writes the seed corpora of tests/fuzz/corpus/ (run by hand when a harness's input format changes; the output is committed).
"""Seed inputs for the fuzz harnesses.

Each seed is small and reaches one area a random start would take long to
find. The binary encoders below mirror the decoders in the harnesses; keep
them in step (a seed that stops meaning what its name says still replays,
it just seeds worse).

    tests/fuzz/make-corpus.py            # rewrite the seeds in place
"""
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- fuzz_config: the unit tests' files, valid and invalid ----

def config_seeds():
    src = os.path.join(ROOT, "tests", "unit", "config")
    for name in ("minimal", "full", "many", "bad_pi", "big_int", "syntax", "dup_uuid",
                 "unknown_ns", "wrong_type"):
        shutil.copyfile(os.path.join(src, name + ".cfg"),
                        os.path.join(HERE, "corpus", "fuzz_config", "seed-" + name + ".cfg"))
    write("fuzz_config", "example.cfg",
          open(os.path.join(ROOT, "conf", "nvt-example.cfg")).read())


# ---- fuzz_control: one request per line ----

CTL_NQN = "nqn.2026-11.io.nvt:fuzz"


def control_seeds():
    n = CTL_NQN
    write("fuzz_control", "status", "status\n")
    write("fuzz_control", "scrub", "scrub %s 1\n" % n)
    write("fuzz_control", "inject-then-scrub",
          "inject %s 1 3 metadata 16\nscrub %s 1\n" % (n, n))
    write("fuzz_control", "inject-hex", "inject %s 2 0x3 data 0x7fff\n" % n)
    write("fuzz_control", "inject-bit-2-32", "inject %s 1 15 data 4294967296\n" % n)
    write("fuzz_control", "args-after-newline", "scrub %s\n1\nstatus\r\n" % n)
    write("fuzz_control", "junk", "inject %s -1 77junk data +1\nscrub %s 0x0x1\n" % (n, n))


# ---- fuzz_nvme_loop: programs (see the op table in fuzz_nvme_loop.c) ----

OP_QUEUE, OP_CONNECT, OP_DESTROY, OP_SUBMIT, OP_HOLD, OP_TIME, OP_BRINGUP, OP_RELEASE = \
    0, 1, 2, 3, 5, 6, 7, 8
(T_READ, T_WRITE, T_COMPARE, T_WRITE_ZEROES, T_DSM, T_VERIFY, T_COPY, T_FLUSH,
 T_IDENTIFY, T_GET_LOG, T_SET_FEAT, T_GET_FEAT, T_KEEP_ALIVE, T_AER, T_PROP_GET,
 T_PROP_SET, T_DISCONNECT, T_FUSED_PAIR, T_FUSED_FIRST, T_FUSED_SECOND, T_ABORT,
 T_RAW, T_FABRICS_OTHER, T_ENABLE) = range(24)
NSID = {1: 0, 2: 3, 3: 4, 4: 5, 0xffffffff: 6}     # pick_nsid() byte for each nsid
SUB_A, SUB_B, SUB_DISC = 0, 1, 2
HOST, HOST_OK, HOST_OTHER = 0, 1, 2


def bringup(slot, sub=SUB_A, host=HOST, kato_idx=0, nr_io=1, d=7):
    # I/O queue qid 1 + d % nr_io, depth 2 + d % 32 in slot + 1
    return bytes([OP_BRINGUP, slot, sub | host << 2 | kato_idx << 4, nr_io - 1, d])


def tail(db=1, pb=0, seed=1, has_data=True):
    # mutation byte (none), data mode (1: exact length), parts (1), and the
    # seed of the made-up data if there is any (a buffer the harness did not fill)
    return bytes([0, db, pb] + ([seed] if has_data else []))


def block(t, slot, nsid, slba, nlb, cb=0, db=1, seed=1, tb=0):
    # seed=None: the harness has all the data (nothing made up, no seed byte)
    has_data = db % 8 != 0 and seed is not None
    return bytes([OP_SUBMIT, slot, t, NSID[nsid], slba, nlb - 1, cb, tb]) + \
        tail(db=db, seed=seed, has_data=has_data)


def no_data(t, slot, fields=b""):
    return bytes([OP_SUBMIT, slot, t]) + fields + bytes([0, 0, 0])


def nvme_loop_seeds():
    io = 1   # bringup(0) puts the admin queue in slot 0, the I/O queue in slot 1
    # Write, read back, compare (matching and not), flush.
    p = bringup(0)
    p += block(T_WRITE, io, 1, 10, 4, seed=9)
    p += block(T_READ, io, 1, 10, 4)
    p += block(T_COMPARE, io, 1, 10, 4, db=0x41, seed=None)  # data from the shadow: equal
    p += block(T_COMPARE, io, 1, 11, 2, db=1, seed=3)  # made-up data: 85h
    p += block(T_FLUSH, io, 1, 0, 1, db=0)
    write("fuzz_nvme_loop", "write-read-compare", p)
    # Fused Compare and Write, matching and not, then a lone first half.
    p = bringup(0)
    p += block(T_WRITE, io, 1, 20, 2, seed=4)
    # block fields, "same" (bit 0: the Compare's data from the shadow), fill seeds
    p += bytes([OP_SUBMIT, io, T_FUSED_PAIR, NSID[1], 20, 1, 0, 0, 1, 7])
    p += bytes([OP_SUBMIT, io, T_FUSED_PAIR, NSID[1], 20, 1, 0, 0, 0, 5, 6])
    p += block(T_FUSED_FIRST, io, 1, 30, 1, seed=2)
    p += block(T_READ, io, 1, 20, 2)
    write("fuzz_nvme_loop", "fused", p)
    # Deallocate, Write Zeroes with DEAC, Copy, read back.
    p = bringup(0)
    p += block(T_WRITE, io, 1, 0, 8, seed=5)
    # nsid, nr - 1, attributes (AD), one range (nlb, slba), then the tail
    p += bytes([OP_SUBMIT, io, T_DSM, NSID[1], 0, 4, 2, 1]) + tail(has_data=False)
    p += block(T_WRITE_ZEROES, io, 1, 5, 2, cb=0x40, db=0)
    # format/nr byte, PRINFO byte, nsid, destination, one range (slba, nlb - 1): 4 blocks 0 -> 64
    p += bytes([OP_SUBMIT, io, T_COPY, 0, 0, NSID[1], 64, 0, 3]) + tail(has_data=False)
    p += block(T_READ, io, 1, 64, 4)
    write("fuzz_nvme_loop", "dsm-zeroes-copy", p)
    # PI namespaces: PRACT=1 writes and reads (Type 1, Type 2 with 64-bit guard, PI first).
    p = bringup(0)
    for nsid in (2, 3, 4):
        p += block(T_WRITE, io, nsid, 2, 2, cb=0x18, seed=nsid)
        p += block(T_READ, io, nsid, 2, 2, cb=0x18)
        p += block(T_READ, io, nsid, 2, 2, cb=0x17)
    write("fuzz_nvme_loop", "pi", p)
    # Keep-alive: KATO 1 s, AERs held (one past the limit), the clock runs out.
    p = bringup(0, kato_idx=1)
    p += no_data(T_AER, 0) * 5
    p += no_data(T_KEEP_ALIVE, 0)
    p += bytes([OP_HOLD]) + block(T_WRITE, io, 1, 3, 1, seed=2)
    p += bytes([OP_TIME, 5])
    p += bytes([OP_TIME, 199]) * 2
    p += block(T_READ, io, 1, 0, 1)
    write("fuzz_nvme_loop", "keep-alive", p)
    # Admin commands by hand: Identify, logs, features, properties, Abort, Disconnect.
    p = bringup(0, nr_io=2, d=1)
    p += bytes([OP_SUBMIT, 0, T_IDENTIFY, 1, NSID[1], 0]) + tail()
    p += bytes([OP_SUBMIT, 0, T_IDENTIFY, 2, NSID[1], 0]) + tail()
    for lid_idx in range(6):     # logs 01h..05h and 70h, 512 bytes from offset 0
        p += bytes([OP_SUBMIT, 0, T_GET_LOG, lid_idx, 0, 127]) + tail()
    p += bytes([OP_SUBMIT, 0, T_SET_FEAT, 9]) + b"\x00\x00\x00\x00" + b"\x00" + tail()
    p += bytes([OP_SUBMIT, 0, T_GET_FEAT, 7]) + b"\x00\x00\x00\x00" + b"\x00" + \
        tail(db=0, has_data=False)
    p += bytes([OP_SUBMIT, 0, T_PROP_GET, 0, 3]) + tail(db=0, has_data=False)
    p += bytes([OP_SUBMIT, 0, T_ABORT]) + b"\x01\x00\x03\x00" + tail(db=0, has_data=False)
    p += bytes([OP_SUBMIT, io, T_DISCONNECT, 0, 0]) + tail(db=0, has_data=False)
    p += block(T_READ, io, 1, 0, 1)
    p += bytes([OP_DESTROY, io, OP_DESTROY, 0])
    write("fuzz_nvme_loop", "admin", p)
    # Discovery controller: log page 70h; subsystem B with its one host and another.
    p = bringup(0, sub=SUB_DISC)
    p += bytes([OP_SUBMIT, 0, T_GET_LOG, 5, 0, 254]) + tail()
    p += bringup(2, sub=SUB_B, host=HOST_OK)
    p += block(T_WRITE, 3, 1, 1, 1, seed=8)
    p += bringup(4, sub=SUB_B, host=HOST_OTHER)
    write("fuzz_nvme_loop", "discovery-acl", p)
    # Queues by hand: a Connect with fuzzed fields, wrong sizes and qids.
    p = bytes([OP_QUEUE, 0, 30])                      # slot 0, qid 0, depth 32
    p += bytes([OP_CONNECT, 0, 0x00, 8, 1]) + b"\x40\x00\x01"   # one mutation
    p += bytes([OP_QUEUE, 1 | 1 << 3, 6])              # slot 1, qid 1, depth 8
    p += bytes([OP_CONNECT, 1, 0xc0 | 0x08, 0, 0]) + b"\x40\x00" + b"\x00\x00\x01" + \
        bytes([0, 0, 0])
    p += bytes([OP_QUEUE, 2 | 2 << 3, 250, 0xff, 0xff])  # depth 65535: refused
    p += bytes([OP_DESTROY, 0, OP_DESTROY, 1])
    write("fuzz_nvme_loop", "connect-by-hand", p)
    # Held between parse and execute: two Connects racing on one queue, a
    # Disconnect under a held Write, a held Compare whose Write comes first.
    p = bringup(0)
    p += bytes([OP_QUEUE, 2 | 1 << 3, 6])              # slot 2, qid 1, depth 8
    p += bytes([OP_HOLD, OP_CONNECT, 2, 0x00, 0, 0])
    p += bytes([OP_CONNECT, 2, 0x00, 0, 0])
    p += bytes([OP_RELEASE, 0])
    p += bytes([OP_HOLD]) + block(T_WRITE, io, 1, 40, 2, seed=3)
    p += bytes([OP_SUBMIT, io, T_DISCONNECT, 0, 0]) + tail(db=0, has_data=False)
    p += bytes([OP_RELEASE, 0])
    p += block(T_READ, 2, 1, 40, 2)
    p += bytes([OP_HOLD]) + block(T_FUSED_FIRST, 2, 1, 50, 1, seed=4)
    p += block(T_FUSED_SECOND, 2, 1, 50, 1, seed=5)
    p += bytes([OP_RELEASE, 0])
    p += bytes([OP_SUBMIT, 0, T_GET_LOG, 2, 0, 255, 0xff, 0xff, 0xff, 0x3f]) + tail()
    write("fuzz_nvme_loop", "held", p)


# ---- fuzz_rdma: programs (see the op table in fuzz_rdma.c) ----

R_QUEUE, R_CAPSULE, R_COMPLETE, R_ESTABLISHED, R_DISCONNECTED, R_TIME, R_PROGRESS = \
    0, 1, 2, 3, 4, 5, 7
(C_CONNECT, C_CONNECT_INCAPSULE, C_ENABLE, C_IDENTIFY, C_AER, C_RW) = range(6)
V_WRITE, V_INCAPSULE, V_NSID2 = 0x10, 0x20, 0x40   # Read/Write variants (0x20 on Connect: subsystem B)


def rqueue(slot, qid=0, sq=8, sge=32, established=True):
    # CM private data built from fields: qid (0..3), HSQSIZE (1 + b % 15), HRQSIZE = HSQSIZE + 1
    return bytes([R_QUEUE, slot, qid | (0 if established else 0x04), sge - 1, sq - 1])


def rcap(slot, t, sb=0, mb=0, extra=b""):
    return bytes([R_CAPSULE, slot, t, sb, mb]) + extra


def rrw(slot, write, nlb_byte, slba_byte, sb=0, incapsule=False, nsid2=False, mb=0):
    t = C_RW | (V_WRITE if write else 0) | (V_INCAPSULE if incapsule else 0) | \
        (V_NSID2 if nsid2 else 0)
    return bytes([R_CAPSULE, slot, t, sb, mb, nlb_byte, slba_byte])


def radmin(slot=0, sge=32, kato=False):
    # admin queue, Connect (data by READ), CC.EN, Identify, Number of Queues
    p = rqueue(slot, 0, sge=sge)
    p += rcap(slot, C_CONNECT | (0x10 if kato else 0)) + bytes([R_PROGRESS, slot])
    p += rcap(slot, C_ENABLE) + bytes([R_PROGRESS, slot])
    p += rcap(slot, C_IDENTIFY) + bytes([R_PROGRESS, slot])
    p += rcap(slot, C_IDENTIFY | 0x10) + bytes([R_PROGRESS, slot])
    return p


def rdma_seeds():
    # 1 MiB max_io_size, the smallest pool that holds one largest command, rxe's 32 SGEs.
    p = bytes([3]) + radmin()
    p += rqueue(1, 1) + rcap(1, C_CONNECT) + bytes([R_PROGRESS, 1])
    p += rrw(1, True, 3, 1, sb=1) + bytes([R_PROGRESS, 1])      # 4 blocks by READ
    p += rrw(1, False, 3, 1, sb=2) + bytes([R_PROGRESS, 1])     # and back by WRITE
    p += rrw(1, True, 7, 2, incapsule=True) + bytes([R_PROGRESS, 1])
    p += rrw(1, False, 7, 2, sb=3) + bytes([R_PROGRESS, 1])
    write("fuzz_rdma", "connect-write-read", p)
    # Large transfers on a 1-SGE device: one WR per chunk; the second command waits for chunks.
    p = bytes([3]) + radmin(sge=1)
    p += rqueue(1, 1, sge=1) + rcap(1, C_CONNECT_INCAPSULE) + bytes([R_PROGRESS, 1])
    p += rrw(1, True, 250, 0) + rrw(1, False, 250, 0, sb=4)
    p += bytes([R_COMPLETE, 1, 0]) * 40 + bytes([R_PROGRESS, 1])
    p += rrw(1, True, 220, 0, nsid2=True) + bytes([R_PROGRESS, 1])
    write("fuzz_rdma", "big-chains", p)
    # 128 KiB max_io_size, 4 SGEs per WR: errors on a READ, then flushes and teardown.
    p = bytes([2 | 1 << 2]) + radmin(sge=4)
    p += rqueue(1, 2, sge=4) + rcap(1, C_CONNECT) + bytes([R_PROGRESS, 1])
    p += rrw(1, True, 255, 0, sb=1) + rrw(1, True, 5, 3)
    p += bytes([R_COMPLETE, 1, 230])       # REM_ACCESS_ERR: the QP goes to error
    p += rrw(1, False, 2, 0) + bytes([R_COMPLETE, 1, 0, R_COMPLETE, 1, 250])
    p += bytes([R_DISCONNECTED, 1])
    write("fuzz_rdma", "errors-teardown", p)
    # Capsules before ESTABLISHED are parked; a host that overruns its queue is dropped.
    p = bytes([0x81]) + radmin()
    p += rqueue(1, 1, sq=4, established=False)
    p += rcap(1, C_CONNECT) + rrw(1, False, 0, 0) + rrw(1, False, 1, 1)
    p += bytes([R_ESTABLISHED, 1, R_PROGRESS, 1])
    p += rrw(1, False, 0, 0) * 6 + bytes([R_PROGRESS, 1])
    write("fuzz_rdma", "parked-overrun", p)
    # Keep-alive runs out; a queue that never connects is dropped after its deadline.
    p = bytes([1]) + radmin(kato=True)
    p += rcap(0, C_AER) * 3 + rcap(0, C_AER | 0x10)
    p += rqueue(2, 3)
    p += bytes([R_TIME, 7, R_TIME, 255, R_TIME, 255, R_TIME, 255])
    write("fuzz_rdma", "deadlines", p)
    # SGL abuse: wrong types, lengths past max_io, addresses outside the host's memory, wrong
    # keys, short and long capsules; and CM requests with bad private data.
    p = bytes([3]) + radmin()
    p += rqueue(1, 1) + rcap(1, C_CONNECT) + bytes([R_PROGRESS, 1])
    p += rrw(1, True, 1, 0, mb=0x01) + bytes([0x5f])                    # SGL type 5, sub f
    p += rrw(1, False, 1, 0, mb=0x02) + b"\xff\xff\xff\x00"            # 16 MiB - 1
    p += rrw(1, True, 1, 0, mb=0x04) + b"\x00\x00\xf8\xff"            # past the host's memory
    p += rrw(1, False, 1, 0, mb=0x08) + b"\x21\x43\x00\x00"            # another key
    p += rrw(1, True, 1, 0, incapsule=True, mb=0x20) + b"\x20\x00"      # 32-byte capsule
    p += bytes([R_PROGRESS, 1])
    p += bytes([R_QUEUE, 2, 0x80 | 0x40, 0]) + b"\x00\x10\xff\xff"   # qid 4096, HSQSIZE FFFFh
    p += bytes([R_QUEUE, 2, 0x08, 0, 3, 6])                               # 6 bytes of private data
    p += bytes([R_QUEUE, 2, 0x10, 0, 3]) + b"\x01\x00"                  # RECFMT 1
    write("fuzz_rdma", "sgl-abuse", p)


def main():
    for h in ("fuzz_config", "fuzz_control", "fuzz_nvme_loop", "fuzz_rdma"):
        os.makedirs(os.path.join(HERE, "corpus", h), exist_ok=True)
    config_seeds()
    control_seeds()
    nvme_loop_seeds()
    rdma_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
