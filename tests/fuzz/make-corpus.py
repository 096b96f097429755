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
    write("fuzz_control", "ana", "ana 1 inaccessible\nana 1 optimized\nana 40 change\nana 2 sideways\n")


# ---- fuzz_nvme_loop: programs (see the op table in fuzz_nvme_loop.c) ----

OP_QUEUE, OP_CONNECT, OP_DESTROY, OP_SUBMIT, OP_HOLD, OP_TIME, OP_BRINGUP, OP_RELEASE = \
    0, 1, 2, 3, 5, 6, 7, 8
(T_READ, T_WRITE, T_COMPARE, T_WRITE_ZEROES, T_DSM, T_VERIFY, T_COPY, T_FLUSH,
 T_IDENTIFY, T_GET_LOG, T_SET_FEAT, T_GET_FEAT, T_KEEP_ALIVE, T_AER, T_PROP_GET,
 T_PROP_SET, T_DISCONNECT, T_FUSED_PAIR, T_FUSED_FIRST, T_FUSED_SECOND, T_ABORT,
 T_RAW, T_FABRICS_OTHER, T_ENABLE, T_RESV) = range(25)
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
    # Reservations between two hosts: both register, A holds Write Exclusive,
    # B's write conflicts and its read works, B reports, preempts A, releases.
    def resv(slot, op, kb, ab, tb, report=False):
        # op: register, acquire, release, report; kb: the CRKEY/NRKEY|PRKEY picks
        # (kb % 3, kb >> 2 % 3 of 0, 1111h, 2222h); ab: action (low 4 bits) and
        # CPTPL (top 2) or the report's NUMD; tb: the type or the report's EDS
        return bytes([OP_SUBMIT, slot, T_RESV, op, kb, ab, tb, NSID[1]]) + \
            tail(has_data=report)
    p = bringup(0) + bringup(2, host=HOST_OK)
    p += resv(io, 0, 4, 0, 0)           # A registers 1111h
    p += resv(3, 0, 8, 0, 0)            # B registers 2222h
    p += resv(io, 1, 1, 0, 1)           # A acquires Write Exclusive
    p += block(T_WRITE, 3, 1, 0, 1, seed=3)     # B: Reservation Conflict
    p += block(T_READ, 3, 1, 0, 1)
    p += resv(3, 3, 0, 63, 1, report=True)
    p += resv(3, 1, 5, 1, 1)            # B preempts A's key
    p += bytes([OP_SUBMIT, 0, T_GET_LOG, 6, 0, 15]) + tail()    # A's log 80h
    p += resv(3, 2, 2, 0, 1)            # B releases
    p += block(T_WRITE, io, 1, 0, 1, seed=4)
    write("fuzz_nvme_loop", "resv", p)


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


# ---- the vhost-user-scsi front and the SCSI layer (fuzz_vhost_msg.c, fuzz_vhost_ring.c, fuzz_scsi.c) ----

def be16(v):
    return struct.pack(">H", v)


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def crc16_t10dif(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8BB7) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def pi_tuples(data, lba, bs=512, app=0, ref=True):
    """8-byte T10 PI tuples (CRC16 guard, app tag, ref tag = LBA for Types 1/2) for @data."""
    out = b""
    for i in range(len(data) // bs):
        blk = data[i * bs:(i + 1) * bs]
        out += be16(crc16_t10dif(blk)) + be16(app) + be32((lba + i) & 0xffffffff if ref else 0xffffffff)
    return out


def pattern(n, seed):
    return bytes(((i * 7 + seed * 13) & 0xff) for i in range(n))


def cdb10(op, lba, nlb, b1=0):
    return bytes([op, b1]) + be32(lba) + bytes([0]) + be16(nlb) + bytes([0])


def cdb16(op, lba, nlb, b1=0):
    return bytes([op, b1]) + be64(lba) + be32(nlb) + bytes([0, 0])


def cdb32(sa, lba, nlb, b10=0, ref=0):
    """READ(32) 0009h / WRITE(32) 000Bh / VERIFY(32) 000Ah: Type 2's commands."""
    c = bytearray(32)
    c[0] = 0x7f
    c[7] = 0x18
    c[8:10] = be16(sa)
    c[10] = b10
    c[12:20] = be64(lba)
    c[20:24] = be32(ref)
    c[28:32] = be32(nlb)
    return bytes(c)


def inquiry(page=None, alloc=255):
    return bytes([0x12, 1 if page is not None else 0, page or 0]) + be16(alloc) + b"\x00"


# fuzz_scsi: formats (fmts[] in the harness)
F_NONE, F_T1, F_T2, F_T3, F_C64, F_OPAQUE, F_T1_4K, F_NONE_4K = range(8)


def sexec(cdb, lun=0, slot=0, out=None, in_len=0, pi=None, pi_in=0, wait=True):
    """One EXEC op: one piece each for data and PI; data-out bytes come from the input."""
    flags = 8 if wait else 0
    if out is not None:
        flags |= 1 | 16
        length = len(out)
    else:
        length = in_len
    pi_len = len(pi) if pi is not None else pi_in
    if pi_len:
        flags |= 4
    b = bytes([0, slot, lun, len(cdb)]) + cdb + bytes([flags]) + struct.pack("<H", length) + b"\x00"
    if pi_len:
        b += struct.pack("<H", pi_len) + b"\x00"
    if out is not None:
        b += out
    if pi is not None:
        b += pi
    return b


def scsi_seeds():
    h = "fuzz_scsi"
    info = b"".join(sexec(c, in_len=n) for c, n in (
        (inquiry(), 96), (inquiry(0x00), 255), (inquiry(0x80), 255), (inquiry(0x83), 255),
        (inquiry(0x86), 64), (inquiry(0x8f), 255), (inquiry(0xb0), 64), (inquiry(0xb1), 64),
        (inquiry(0xb2), 64), (bytes([0x25]) + bytes(9), 8), (bytes([0x9e, 0x10]) + bytes(8) + be32(32) + bytes(2), 32),
        (bytes([0xa0, 0, 0, 0, 0, 0]) + be32(64) + bytes(2), 64),
        (bytes([0xa3, 0x0c, 0, 0, 0, 0]) + be32(4096) + bytes(2), 4096),
        (bytes([0xa3, 0x0c, 0x01, 0x89, 0, 0]) + be32(64) + bytes(2), 64),
        (bytes(6), 0), (bytes([0x03, 0, 0, 0, 96, 0]), 96), (bytes([0x1a, 0, 0x3f, 0, 255, 0]), 255),
        (bytes([0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0]), 255), (bytes([0x5a, 0, 0x0a, 0, 0, 0, 0, 0, 255, 0]), 255),
        (bytes([0x1b, 0, 0, 0, 1, 0]), 0)))
    for f in (F_NONE, F_T1, F_T2, F_T3, F_C64, F_T1_4K):
        write(h, "info-%d" % f, bytes([f, F_NONE]) + info + sexec(inquiry(), lun=2, in_len=96)
              + sexec(bytes([0x28]) + bytes(9), lun=2))
    d = pattern(4096, 1)
    rw = sexec(cdb10(0x2a, 8, 8), out=d) + sexec(cdb10(0x28, 8, 8), in_len=4096)
    rw += sexec(cdb16(0x8a, 100, 2, 0x08), out=d[:1024]) + sexec(cdb16(0x88, 100, 2), in_len=1024)
    rw += sexec(bytes([0x0a, 0, 0, 20, 1, 0]), out=d[:512]) + sexec(bytes([0x08, 0, 0, 20, 1, 0]), in_len=512)
    rw += sexec(bytes([0xaa, 0]) + be32(30) + be32(1) + bytes(2), out=d[:512])
    rw += sexec(bytes([0xa8, 0]) + be32(30) + be32(1) + bytes(2), in_len=512)
    rw += sexec(cdb10(0x2f, 8, 8)) + sexec(cdb10(0x2f, 8, 8, 0x02), out=d) + sexec(cdb16(0x8f, 8, 8, 0x02), out=d)
    rw += sexec(cdb10(0x35, 0, 0)) + sexec(cdb16(0x91, 0, 0))
    for f in (F_NONE, F_T1, F_T3, F_C64, F_OPAQUE, F_NONE_4K):
        write(h, "rw-%d" % f, bytes([f, f]) + rw)
    # PI from the guest (WRPROTECT / RDPROTECT 1) on each Type.
    for f, ref in ((F_T1, True), (F_T3, False)):
        p = sexec(cdb10(0x2a, 16, 4, 0x20), out=d[:2048], pi=pi_tuples(d[:2048], 16, ref=ref))
        p += sexec(cdb10(0x28, 16, 4, 0x20), in_len=2048, pi_in=32)
        p += sexec(cdb10(0x28, 16, 4, 0x60), in_len=2048, pi_in=32)
        p += sexec(cdb10(0x2a, 16, 4, 0x20), out=d[:2048], pi=bytes(32))  # bad guard
        p += sexec(cdb10(0x2f, 16, 4, 0x22), out=d[:2048], pi=pi_tuples(d[:2048], 16, ref=ref))
        write(h, "pi-%d" % f, bytes([f, F_NONE]) + p)
    p = sexec(cdb32(0x000b, 40, 2, 0x20, ref=40), out=d[:1024], pi=pi_tuples(d[:1024], 40))
    p += sexec(cdb32(0x0009, 40, 2, 0x20, ref=40), in_len=1024, pi_in=16)
    p += sexec(cdb32(0x000a, 40, 2, 0x22, ref=40), out=d[:1024], pi=pi_tuples(d[:1024], 40))
    p += sexec(cdb10(0x2a, 40, 2, 0x20), out=d[:1024], pi=pi_tuples(d[:1024], 40))  # Type 2 refuses (10)
    write(h, "pi-type2-32", bytes([F_T2, F_T2]) + p)
    # WRITE SAME, UNMAP, COMPARE AND WRITE.
    blk = pattern(512, 5)
    p = sexec(bytes([0x41, 0]) + be32(50) + bytes([0]) + be16(8) + bytes([0]), out=blk)
    p += sexec(bytes([0x93, 0]) + be64(60) + be32(8) + bytes(2), out=blk)
    p += sexec(bytes([0x93, 0x08]) + be64(60) + be32(8) + bytes(2), out=blk)
    p += sexec(bytes([0x93, 0x09]) + be64(0) + be32(0) + bytes(2), out=blk)   # unmap + NDOB
    descs = be64(10) + be32(4) + bytes(4) + be64(200) + be32(16) + bytes(4)
    plist = be16(6 + len(descs)) + be16(len(descs)) + bytes(4) + descs
    p += sexec(bytes([0x42, 0, 0, 0, 0, 0, 0]) + be16(len(plist)) + b"\x00", out=plist)
    p += sexec(bytes([0x42, 0, 0, 0, 0, 0, 0]) + be16(len(plist)) + b"\x00", out=plist[:12])
    p += sexec(cdb10(0x2a, 70, 1), out=blk)
    caw = bytes([0x89, 0]) + be64(70) + bytes(3) + bytes([1, 0, 0])
    p += sexec(caw, out=blk + pattern(512, 9)) + sexec(caw, out=blk + blk)
    p += sexec(caw, out=blk)                                             # half the data
    for f in (F_NONE, F_T1, F_T3):
        write(h, "ws-unmap-caw-%d" % f, bytes([f, F_NONE]) + p)
    # EXTENDED COPY (LID1) within LUN 0 and from LUN 0 to LUN 1, then RECEIVE COPY RESULTS.
    def naa(i):
        ng = [(0x10 * (i + 1) + b) & 0xff for b in range(16)]
        n = [0x60 | ng[0] >> 4] + [((ng[k - 1] << 4) | (ng[k] >> 4)) & 0xff for k in range(1, 16)]
        return bytes(n)

    def cscd(i, bs=512):
        return bytes([0xe4, 0, 0, 0, 1, 3, 0, 16]) + naa(i) + bytes(5) + be16(bs)[:0] + bytes([0, bs >> 8, bs & 0xff])

    def seg(si, di, nlb, src, dst):
        return bytes([2, 0]) + be16(0x18) + be16(si) + be16(di) + bytes(2) + be16(nlb) + be64(src) + be64(dst)

    for f0, f1 in ((F_NONE, F_NONE), (F_T1, F_NONE), (F_T1, F_T1)):
        segs = seg(0, 0, 4, 8, 32) + seg(0, 1, 8, 8, 64)
        lst = bytes([7, 0]) + be16(64) + bytes(4) + be32(len(segs)) + be32(0) + cscd(0) + cscd(1) + segs
        p = sexec(cdb10(0x2a, 8, 8), out=d)
        p += sexec(bytes([0x83]) + bytes(9) + be32(len(lst)) + bytes(2), out=lst)
        p += sexec(bytes([0x84, 0x00, 7]) + bytes(7) + be32(64) + bytes(2), in_len=64)
        p += sexec(bytes([0x84, 0x03]) + bytes(8) + be32(64) + bytes(2), in_len=64)
        p += sexec(cdb10(0x28, 64, 8, 0), lun=1, in_len=4096)
        # Two at once: the second waits for the copy buffer.
        p += sexec(bytes([0x83]) + bytes(9) + be32(len(lst)) + bytes(2), out=lst, slot=1, wait=False)
        lst2 = bytes([8]) + lst[1:]
        p += sexec(bytes([0x83]) + bytes(9) + be32(len(lst2)) + bytes(2), out=lst2, slot=2, wait=False)
        p += b"\x03"
        write(h, "xcopy-%d-%d" % (f0, f1), bytes([f0, f1]) + p)
    # Several in flight on one range: writes and reads racing on the range lock.
    p = sexec(cdb10(0x2a, 0, 16), out=pattern(8192, 3), slot=0, wait=False)
    p += sexec(cdb10(0x28, 0, 16), in_len=8192, slot=1, wait=False)
    p += sexec(caw, out=blk + blk, slot=2, wait=False)
    p += sexec(bytes([0x93, 0]) + be64(0) + be32(32) + bytes(2), out=blk, slot=3, wait=False) + b"\x03"
    write(h, "in-flight", bytes([F_T1, F_T1]) + p)
    # PERSISTENT RESERVE OUT / IN: register, reserve, the three reads, a write under it, preempt,
    # a short list, SPEC_I_PT, release, clear, truncating and huge allocation lengths.
    def prout(sa, typ, plen=24):
        return bytes([0x5f, sa, typ, 0, 0]) + be32(plen) + b"\x00"

    def plist(key, sakey, b20=0):
        return be64(key) + be64(sakey) + bytes(4) + bytes([b20, 0, 0, 0])

    def prin(sa, alloc):
        return bytes([0x5e, sa, 0, 0, 0, 0, 0]) + be16(alloc) + b"\x00"

    p = sexec(prout(0, 0), out=plist(0, 0xa)) + sexec(prout(1, 1), out=plist(0xa, 0))
    p += sexec(prin(0, 64), in_len=64) + sexec(prin(1, 24), in_len=24) + sexec(prin(2, 8), in_len=8)
    p += sexec(cdb10(0x2a, 8, 1), out=d[:512]) + sexec(prout(4, 3), out=plist(0xa, 0xa))
    p += sexec(prout(0, 0, plen=23), out=plist(0, 1)[:23]) + sexec(prout(0, 0), out=plist(0, 1, 0x08))
    p += sexec(prout(2, 3), out=plist(0xa, 0)) + sexec(prout(3, 0), out=plist(0xa, 0))
    p += sexec(prin(0, 4), in_len=64) + sexec(prin(0, 0xffff), in_len=10)
    write(h, "pr", bytes([F_NONE, F_NONE]) + p)


# fuzz_vhost_msg: MSG ops (request index into reqs[] of the harness), START, POKE, PUMP
VREQ = dict(GET_FEATURES=0, SET_FEATURES=1, SET_OWNER=2, RESET_OWNER=3, SET_MEM_TABLE=4,
            SET_VRING_NUM=5, SET_VRING_ADDR=6, SET_VRING_BASE=7, GET_VRING_BASE=8,
            SET_VRING_KICK=9, SET_VRING_CALL=10, SET_VRING_ERR=11, GET_PROTOCOL_FEATURES=12,
            SET_PROTOCOL_FEATURES=13, GET_QUEUE_NUM=14, SET_VRING_ENABLE=15, RESET_DEVICE=16)


def vmsg(name, fields=b"", ack=False, mode=1):
    return bytes([0, VREQ[name], 1 if ack else 0, mode]) + fields


def vraw(req, size_payload, nfds=0, flags_byte=0):
    return bytes([0, req, flags_byte, 0]) + struct.pack("<H", len(size_payload)) + size_payload + bytes([nfds])


def vstate(name, idx, num, raw=False, ack=False):
    # mode 1: SET_VRING_NUM takes 1 << (byte % 12), the others byte % 2; mode 5: a raw u32
    if raw:
        return vmsg(name, bytes([idx]) + struct.pack("<I", num), ack=ack, mode=5)
    return vmsg(name, bytes([idx, num]), ack=ack)


def vpoke(off, data, vq=2):
    assert off % 16 == 0 and len(data) < 256
    return bytes([5]) + struct.pack("<H", off // 16) + bytes([len(data)]) + data + bytes([vq])


def qemu_realize():
    p = vmsg("GET_FEATURES") + vmsg("GET_PROTOCOL_FEATURES")
    p += vmsg("SET_PROTOCOL_FEATURES", bytes([0]))
    p += vmsg("GET_QUEUE_NUM") + vmsg("SET_OWNER") + vmsg("GET_FEATURES")
    for i in range(4):
        p += vmsg("SET_VRING_CALL", bytes([i])) + vmsg("SET_VRING_ERR", bytes([i]))
    return p


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def vhost_msg_seeds():
    h = "fuzz_vhost_msg"
    start = bytes([7, 3])          # START: rings 0, 2, 3 of 16 entries at 0x10000, 0x20000, 0x30000
    # An INQUIRY on ring 2 (descriptors at 0x20000, avail at 0x20100): header, response, data.
    hdr = bytes([1, 0, 0x40, 0]) + bytes(4) + bytes(8) + bytes(3) + bytes(8) + inquiry() + bytes(26)
    io = vpoke(0x40000, hdr) + vpoke(0x20000, desc(0x40000, 59, 1, 1) + desc(0x40100, 108, 3, 2)
                                     + desc(0x40200, 96, 2, 0))
    io += vpoke(0x20100, bytes([0, 0, 1, 0, 0, 0])) + bytes([4, 8])
    stop = b"".join(vstate("SET_VRING_ENABLE", i, 0) for i in range(4))
    stop += b"".join(vstate("GET_VRING_BASE", i, 0) for i in (0, 2, 3))
    write(h, "qemu72-start", qemu_realize() + start)
    write(h, "qemu72-inquiry-stop", qemu_realize() + start + io + stop)
    write(h, "qemu72-reset", qemu_realize() + start + io + vmsg("RESET_DEVICE", ack=True) + start + io)
    # The memory table by hand: two regions of the memfd (kind byte, offset page, gpa page, size pages).
    mt = bytes([0, VREQ["SET_MEM_TABLE"], 1, 1, 1]) + bytes([0x10, 0]) + struct.pack("<H", 0) + bytes([127])
    mt += bytes([0x11, 128]) + struct.pack("<H", 0) + bytes([127])
    write(h, "mem-table", qemu_realize() + vmsg("SET_FEATURES", bytes([0]), mode=5) + mt + start + io
          + mt + io + stop)
    # Overlapping regions, a region past the file, a zero size, nine fds, the largest size + 1.
    bad = bytes([0, VREQ["SET_MEM_TABLE"], 1, 1, 1]) + bytes([0x10, 0, 0, 0, 15]) + bytes([0x10, 1, 0, 0, 15])
    bad += bytes([0, VREQ["SET_MEM_TABLE"], 1, 1, 0]) + bytes([0x10, 255, 0, 0, 255])
    write(h, "mem-table-bad", qemu_realize() + bad + start)
    write(h, "bad-sizes", vraw(VREQ["GET_FEATURES"], b"\x00" * 8) + vraw(VREQ["SET_FEATURES"], b"\x00" * 4))
    write(h, "nine-fds", vraw(VREQ["SET_MEM_TABLE"], struct.pack("<II", 8, 0) + bytes(256), nfds=9))
    write(h, "too-large", vraw(VREQ["SET_MEM_TABLE"], struct.pack("<II", 8, 0) + bytes(257), nfds=8))
    write(h, "unknown", bytes([0, 0xc0 + 19, 0, 0, 0, 0, 0]) + bytes([0, 0xc0 + 24, 1, 0, 8, 0]) + bytes(8) + b"\x00")
    # Ring setup by hand with odd values: sizes, bases, addresses outside memory, misaligned, NOFD.
    p = qemu_realize() + start
    # Each failure acknowledged (REPLY_ACK): the session goes on.
    p += vstate("GET_VRING_BASE", 2, 0) + vstate("SET_VRING_NUM", 2, 0, raw=True, ack=True)
    p += vstate("SET_VRING_NUM", 2, 3, raw=True, ack=True)
    p += vstate("SET_VRING_BASE", 2, 70000, raw=True, ack=True)
    p += vmsg("SET_VRING_ADDR", bytes([2]) + struct.pack("<HHH", 0x1001, 0x1100, 0x1200), ack=True)
    p += vmsg("SET_VRING_KICK", bytes([2]), ack=True)
    p += vstate("GET_VRING_BASE", 2, 0)
    p += vmsg("SET_VRING_ADDR", bytes([2]) + struct.pack("<H", 0xfff0) + struct.pack("<Q", 1 << 63)
              + struct.pack("<HH", 0, 0), ack=True)
    p += vmsg("SET_VRING_KICK", bytes([2]), ack=True)
    p += vmsg("SET_VRING_CALL", bytes([3]), mode=5, ack=True)
    p += vstate("GET_VRING_BASE", 3, 0)
    p += vmsg("SET_VRING_KICK", bytes([3]), mode=33, ack=True)       # a memfd for a kick fd
    p += vstate("SET_VRING_ENABLE", 3, 7, raw=True, ack=True)
    p += vmsg("SET_VRING_KICK", bytes([2]), mode=5, ack=True)         # NOFD: polling, not offered
    write(h, "ring-setup-odd", p)
    write(h, "reconnect", qemu_realize() + start + io + bytes([6]) + qemu_realize() + start + io)


# fuzz_vhost_ring: REQ / DESC / AVAIL / PUMP / CTRL / POKE
Q_CTL, Q_R0, Q_R1 = 0, 1, 2


def vreq(q, cdb, lun=0, out=None, in_len=0, pi=None, pi_in=0, flip_hdr=False, split_hdr=False,
         indirect=False, batch=False, parts=1):
    fl = (1 if flip_hdr else 0) | (8 if split_hdr else 0) | (32 if indirect else 0) | (64 if batch else 0)
    if out is not None:
        fl |= 2 | 16
        length = len(out)
    else:
        length = in_len
    pi_len = len(pi) if pi is not None else pi_in
    if pi_len:
        fl |= 4
    fl2 = {0: 0, 1: 1, None: 2, 5: 3}[lun]
    b = bytes([0, q, fl, fl2, len(cdb)]) + struct.pack("<H", length)
    if pi_len:
        b += struct.pack("<H", pi_len)
    b += bytes([parts - 1]) + struct.pack("<H", 1) + cdb
    cuts = bytes([128] * (parts - 1))
    if out is not None:
        if pi is not None:
            b += pi + cuts
        b += out + cuts
    else:
        b += (cuts if pi_len else b"") + (cuts if length else b"")
    return b


def vtmf(subtype, an=False):
    return bytes([0, Q_CTL, 1 if an else 0, 0, subtype])


def vhost_ring_seeds():
    h = "fuzz_vhost_ring"
    PI16 = 1 | (3 << 1)            # T10 PI negotiated, rings of 16
    NOPI16 = 3 << 1
    d = pattern(4096, 2)
    linux = vreq(Q_R0, inquiry(), in_len=96) + vreq(Q_R1, inquiry(0x83), in_len=255)
    linux += vreq(Q_R0, bytes([0xa0, 0, 0, 0, 0, 0]) + be32(64) + bytes(2), lun=None, in_len=64)
    linux += vreq(Q_R0, inquiry(), lun=None, in_len=96)
    linux += vreq(Q_R1, bytes([0x9e, 0x10]) + bytes(8) + be32(32) + bytes(2), lun=1, in_len=32)
    linux += vreq(Q_R0, cdb10(0x2a, 8, 8), out=d, parts=3) + vreq(Q_R1, cdb10(0x28, 8, 8), in_len=4096, parts=2)
    linux += vreq(Q_R0, cdb10(0x2a, 0, 1), lun=5, out=d, indirect=True)
    linux += vreq(Q_R1, cdb10(0x28, 0, 1), lun=5, in_len=4096, indirect=True)
    linux += vreq(Q_R0, cdb10(0x2a, 8, 8), lun=1, out=d) + vreq(Q_R1, cdb10(0x28, 8, 8), lun=1, in_len=4096)
    write(h, "linux-pi", bytes([PI16]) + linux)
    write(h, "linux-nopi", bytes([NOPI16]) + linux)
    # PI through virtio (pi_bytesout / pi_bytesin) on the PI LUN.
    p = vreq(Q_R0, cdb10(0x2a, 16, 4, 0x20), lun=1, out=d[:2048], pi=pi_tuples(d[:2048], 16), parts=2)
    p += vreq(Q_R1, cdb10(0x28, 16, 4, 0x20), lun=1, in_len=2048, pi_in=32, parts=2)
    p += vreq(Q_R0, cdb10(0x2a, 16, 4, 0x20), lun=1, out=d[:2048], pi=bytes(32))
    p += vreq(Q_R0, cdb10(0x2a, 16, 4), lun=0, out=d[:2048], pi=bytes(32))
    write(h, "pi-bytes", bytes([PI16]) + p)
    # Batches, TMFs and AN on the control queue, a stop/restart and a new table mid-I/O.
    p = vreq(Q_R0, cdb10(0x2a, 0, 8), out=d, batch=True) + vreq(Q_R0, cdb10(0x28, 0, 8), in_len=4096, batch=True)
    p += vreq(Q_R0, cdb10(0x28, 0, 8), in_len=4096)
    p += vtmf(5) + vtmf(0) + vtmf(6) + vtmf(8) + vtmf(0, an=True)
    p += bytes([6, 2, 1]) + vreq(Q_R0, cdb10(0x28, 0, 8), in_len=4096)
    p += bytes([6, 0, 0, 1]) + vreq(Q_R1, cdb10(0x28, 0, 8), in_len=4096)
    p += bytes([6, 1, 1, 0]) + vreq(Q_R0, inquiry(), in_len=96, batch=True) + bytes([6, 1, 1, 1])
    p += bytes([6, 4, 2]) + vreq(Q_R1, inquiry(), in_len=96)
    p += bytes([6, 3, 0]) + vreq(Q_R0, inquiry(), in_len=96)
    p += vreq(Q_R0, cdb10(0x2a, 0, 8), out=d, batch=True) + bytes([6, 5, 0]) + vreq(Q_R1, inquiry(), in_len=96)
    write(h, "control", bytes([PI16]) + p)
    # Guests that misbehave: a split header, the wrong header size, short response, raw descriptors,
    # an avail index far ahead, a head out of range, the same head twice.
    p = vreq(Q_R0, inquiry(), in_len=96, split_hdr=True) + vreq(Q_R0, inquiry(), in_len=96, flip_hdr=True)
    p += bytes([0, Q_R0, 0, 16, 6]) + struct.pack("<H", 96) + b"\x00" + struct.pack("<H", 1) + inquiry() + bytes([50])
    p += bytes([3, Q_R0]) + struct.pack("<H", 0xffff) + struct.pack("<Q", 0xfffffffffffff000)
    p += bytes([0]) + struct.pack("<H", 4096) + bytes([1]) + struct.pack("<H", 0) + bytes([0])
    p += bytes([4, Q_R0, 0]) + bytes([0])
    p += bytes([3, Q_R1, 0, 0, 0]) + struct.pack("<H", 16) + bytes([5]) + struct.pack("<H", 1) + bytes([1])
    p += bytes([4, Q_R1, 0, 1]) + bytes([4, Q_R1, 0, 1])
    p += bytes([4, Q_R0, 1, 40])
    write(h, "hostile", bytes([PI16]) + p)


def vhost_seeds():
    scsi_seeds()
    vhost_msg_seeds()
    vhost_ring_seeds()


def main():
    for h in ("fuzz_config", "fuzz_control", "fuzz_nvme_loop", "fuzz_rdma", "fuzz_vhost_msg",
              "fuzz_vhost_ring", "fuzz_scsi"):
        os.makedirs(os.path.join(HERE, "corpus", h), exist_ok=True)
    config_seeds()
    control_seeds()
    nvme_loop_seeds()
    rdma_seeds()
    vhost_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
