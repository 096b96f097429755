/* SPDX-License-Identifier: BSD-3-Clause */
/* The LBA range lock behind fused Compare-and-Write (see include/nvt/range_lock.h for the protocol). */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvt/range_lock.h"

static _Atomic int nvt_range_next_tid;
static _Thread_local int nvt_range_tid = -1;
static _Thread_local const struct nvt_range_lock *nvt_range_held;	/* by this thread */
static _Thread_local uint64_t nvt_range_held_start, nvt_range_held_end;

static int nvt_range_self(void)
{
	if (nvt_range_tid < 0)
		nvt_range_tid = atomic_fetch_add(&nvt_range_next_tid, 1) % NVT_RANGE_THREADS;
	return nvt_range_tid;
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

static void nvt_range_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#define NVT_RANGE_CHOOSING	UINT64_MAX	/* slot claimed, ticket not yet published */

/* An exclusive holder overlapping [s, e)? (Slots still choosing hold nothing yet.) */
static bool nvt_range_excl_overlap(struct nvt_range_lock *rl, uint64_t s, uint64_t e)
{
	for (int i = 0; i < NVT_RANGE_EXCL; i++) {
		uint64_t hs = atomic_load(&rl->excl[i].start);

		if (!hs || hs == NVT_RANGE_CHOOSING)
			continue;
		if (overlaps(s, e, hs - 1, atomic_load(&rl->excl[i].end)))
			return true;
	}
	return false;
}

void nvt_range_io_begin(struct nvt_range_lock *rl, uint64_t slba, uint64_t nlb)
{
	int me = nvt_range_self();
	uint64_t s = slba, e = slba + nlb;

	/* Inside a range this thread holds exclusively: that is the fused write itself. */
	if (nvt_range_held == rl && s >= nvt_range_held_start && e <= nvt_range_held_end)
		return;
	for (;;) {
		atomic_store(&rl->io[me].end, e);
		atomic_store(&rl->io[me].start, s + 1);
		if (!nvt_range_excl_overlap(rl, s, e))
			return;
		/* Step back so the holder can finish, and wait for it. */
		atomic_store(&rl->io[me].start, 0);
		while (nvt_range_excl_overlap(rl, s, e))
			nvt_range_pause();
	}
}

void nvt_range_io_end(struct nvt_range_lock *rl)
{
	atomic_store(&rl->io[nvt_range_self()].start, 0);
}

int nvt_range_excl_lock(struct nvt_range_lock *rl, uint64_t slba, uint64_t nlb)
{
	uint64_t s = slba, e = slba + nlb, ticket;
	int me = nvt_range_self(), slot = -1;

	/* Claim a slot first, then take a ticket (Lamport's bakery): whoever
	 * compares tickets waits for slots still choosing, so a later ticket
	 * can never slip in ahead of an earlier one. */
	while (slot < 0) {
		for (int i = 0; i < NVT_RANGE_EXCL && slot < 0; i++) {
			uint64_t expected = 0;

			if (atomic_compare_exchange_strong(&rl->excl[i].start, &expected,
							   NVT_RANGE_CHOOSING))
				slot = i;
		}
		if (slot < 0)
			sched_yield();
	}
	ticket = atomic_fetch_add(&rl->next_ticket, 1);
	atomic_store(&rl->excl[slot].ticket, ticket);
	atomic_store(&rl->excl[slot].end, e);
	atomic_store(&rl->excl[slot].start, s + 1);

	/* Earlier overlapping holders go first. */
	for (int i = 0; i < NVT_RANGE_EXCL; i++) {
		uint64_t hs;

		if (i == slot)
			continue;
		while ((hs = atomic_load(&rl->excl[i].start)) == NVT_RANGE_CHOOSING)
			nvt_range_pause();
		while (hs && overlaps(s, e, hs - 1, atomic_load(&rl->excl[i].end)) &&
		       atomic_load(&rl->excl[i].ticket) < ticket) {
			nvt_range_pause();
			hs = atomic_load(&rl->excl[i].start);
			if (hs == NVT_RANGE_CHOOSING)
				break;	/* released and claimed anew: a later ticket */
		}
	}
	/* Then overlapping I/O already in progress finishes; new I/O waits for us. */
	for (int t = 0; t < NVT_RANGE_THREADS; t++) {
		uint64_t is;

		if (t == me)
			continue;
		while ((is = atomic_load(&rl->io[t].start)) &&
		       overlaps(s, e, is - 1, atomic_load(&rl->io[t].end)))
			nvt_range_pause();
	}
	nvt_range_held = rl;
	nvt_range_held_start = s;
	nvt_range_held_end = e;
	return slot;
}

void nvt_range_excl_unlock(struct nvt_range_lock *rl, int slot)
{
	nvt_range_held = NULL;
	atomic_store(&rl->excl[slot].start, 0);
}
