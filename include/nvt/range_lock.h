/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-namespace LBA range lock for Compare-and-Write: waiters are parked on their own poll group, never spun. */
#ifndef NVT_RANGE_LOCK_H
#define NVT_RANGE_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "nvt/poll_group.h"

#define NVT_RANGE_EXCL		16	/* ranges held at once per namespace; more wait for a slot */
#define NVT_MAX_PG_SLOTS	256	/* poll groups a target serves I/O on (daemon groups, loop queues) */

struct nvt_caw;
struct nvt_ns_chan;

/*
 * One held (or wanted) range. start/end are read by every poll group's
 * I/O path (a bio overlapping a published range parks); the rest is
 * written under the table's flag or by the owner alone.
 */
struct nvt_range_slot {
	_Atomic uint64_t start;		/* slba + 1; 0 = free */
	_Atomic uint64_t end;		/* exclusive */
	uint64_t ticket;		/* order among overlapping holders: earlier first */
	struct nvt_caw *caw;
	struct nvt_ns_chan *owner;	/* where the holder runs */
	atomic_uint acks;		/* channels still draining overlapping I/O, + 1 while sending */
	struct nvt_pg_msg grant_msg;	/* to the owner: the range is ours */
};

/*
 * The protocol (target/range_lock.c): a holder publishes its range, waits
 * (parked) for earlier overlapping holders, then asks every channel of the
 * namespace with I/O in flight to report when what overlaps has drained;
 * new overlapping I/O parks on its own channel meanwhile. Release wakes
 * the channels with parked work. The flag guards only the slot table's
 * bookkeeping (tens of instructions, no I/O, no waiting under it).
 */
struct nvt_range_lock {
	atomic_flag flag;
	_Atomic unsigned int nr;	/* published slots: the I/O path looks only when non-zero */
	uint64_t next_ticket;
	struct nvt_range_slot slot[NVT_RANGE_EXCL];
};

#endif /* NVT_RANGE_LOCK_H */
