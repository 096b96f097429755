/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-namespace LBA range lock for fused Compare-and-Write: lock-free, allocation-free, blind to non-overlapping I/O. */
#ifndef NVT_RANGE_LOCK_H
#define NVT_RANGE_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#define NVT_RANGE_THREADS	256	/* threads that may touch blocks (poll groups, tests) */
#define NVT_RANGE_EXCL		16	/* compare-and-writes in progress at once, per namespace */

/*
 * Two tables of [start, end) ranges, 0 = empty (ranges are stored + 1):
 * what each thread is touching right now (backends complete in place, so a
 * thread touches one range at a time), and the ranges held exclusively by
 * a compare-and-write. Each side publishes first, then looks at the other
 * (sequentially consistent), so at most one of two overlapping parties
 * proceeds; it then waits for microseconds, never for I/O elsewhere.
 */
struct nvt_range_lock {
	struct {
		_Atomic uint64_t start;		/* slba + 1; 0 = not touching anything */
		_Atomic uint64_t end;
	} io[NVT_RANGE_THREADS];
	struct {
		_Atomic uint64_t start;		/* slba + 1; 0 = free */
		_Atomic uint64_t end;
		_Atomic uint64_t ticket;	/* order among overlapping compare-and-writes */
	} excl[NVT_RANGE_EXCL];
	_Atomic uint64_t next_ticket;
};

/** nvt_range_io_begin() - this thread touches [slba, slba + nlb); waits while a compare-and-write holds an overlap. */
void nvt_range_io_begin(struct nvt_range_lock *rl, uint64_t slba, uint64_t nlb);

/** nvt_range_io_end() - done touching blocks. */
void nvt_range_io_end(struct nvt_range_lock *rl);

/**
 * nvt_range_excl_lock() - hold [slba, slba + nlb) exclusively: waits for
 * overlapping I/O in progress and earlier overlapping holders. The holding
 * thread's own I/O inside the range proceeds. Return: the slot to unlock.
 */
int nvt_range_excl_lock(struct nvt_range_lock *rl, uint64_t slba, uint64_t nlb);

/** nvt_range_excl_unlock() - release what nvt_range_excl_lock() returned. */
void nvt_range_excl_unlock(struct nvt_range_lock *rl, int slot);

#endif /* NVT_RANGE_LOCK_H */
