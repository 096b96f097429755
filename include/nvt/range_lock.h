/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-namespace LBA range lock for Compare-and-Write and namespace fences: waiters are parked on their own poll group, never spun. */
#ifndef NVT_RANGE_LOCK_H
#define NVT_RANGE_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "nvt/poll_group.h"

#define NVT_RANGE_EXCL		16	/* ranges held at once per namespace; more wait for a slot */
#define NVT_MAX_PG_SLOTS	256	/* poll groups a target serves I/O on (daemon groups, loop queues) */

struct nvt_ns_chan;

/*
 * A holder of the lock: a compare-and-write (its blocks) or a fence (the
 * whole namespace). Set by its owner before nvt_range_lock_acquire().
 */
struct nvt_range_hold {
	struct nvt_ns_chan *chan;	/* where the holder runs: its grant arrives on this poll group */
	uint64_t lo, hi;		/* the blocks held: [lo, hi) */
	/* Earlier overlapping holders are gone and overlapping I/O started before has drained. */
	void (*granted)(struct nvt_range_hold *h);
	/* The lock's. */
	struct nvt_range_hold *next;	/* waiting on @chan for a slot or earlier holders */
	int slot;			/* published in this slot; -1 not yet */
};

/*
 * One held (or wanted) range. start/end are read by every poll group's
 * I/O path (a bio overlapping a published range parks); the rest is
 * written under the table's flag or by the owner alone.
 */
struct nvt_range_slot {
	_Atomic uint64_t start;		/* slba + 1; 0 = free */
	_Atomic uint64_t end;		/* exclusive */
	uint64_t ticket;		/* order among overlapping holders: earlier first */
	struct nvt_range_hold *hold;
	atomic_uint acks;		/* channels still draining overlapping I/O, + 1 while sending */
	struct nvt_pg_msg grant_msg;	/* to the owner: the range is ours */
};

/*
 * The protocol (target/range_lock.c): a holder publishes its range, waits
 * (parked) for earlier overlapping holders, then asks every channel of the
 * namespace with I/O in flight to report when what overlaps has drained;
 * new overlapping I/O parks on its own channel meanwhile. Release wakes
 * the channels with parked work. A fence (nvt_ns_fence()) is a holder of
 * the whole namespace that lets go as soon as it is granted. The flag
 * guards only the slot table's bookkeeping (tens of instructions, no I/O,
 * no waiting under it).
 *
 * @nr is the one word the I/O path reads per bio (after counting itself in
 * flight): zero, nothing to do. Its low bits count published slots; the
 * NVT_RANGE_RESV bit says the namespace holds a reservation (resv.c keeps
 * it, under the reservation's flag), so a bio is checked against the
 * reservation as it is admitted: ordered after its in-flight count, which
 * a fence reads. A namespace without locks or a reservation pays nothing.
 */
#define NVT_RANGE_RESV		(1u << 31)
#define NVT_RANGE_NR_MASK	(NVT_RANGE_RESV - 1)

struct nvt_range_lock {
	atomic_flag flag;
	_Atomic unsigned int nr;	/* published slots | NVT_RANGE_RESV: the I/O path looks only when non-zero */
	uint64_t next_ticket;
	struct nvt_range_slot slot[NVT_RANGE_EXCL];
};

#endif /* NVT_RANGE_LOCK_H */
