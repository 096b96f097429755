/* SPDX-License-Identifier: BSD-3-Clause */
/* The namespace layer's private state: a namespace's channel on one poll group, shared by ns_io.c and range_lock.c. */
#ifndef NVT_NS_INTERNAL_H
#define NVT_NS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvt/bio.h"
#include "nvt/poll_group.h"
#include "nvt/range_lock.h"
#include "nvt/stats.h"

#define NVT_NS_BOUNCES		4			/* emulated commands running at once per channel */
#define NVT_NS_BOUNCE_DATA	(128u * 1024)		/* data bytes per chunk of an emulated command */
#define NVT_NS_BOUNCE_MD	(NVT_NS_BOUNCE_DATA / 512 * 64)	/* its metadata, at most */

/* A chunk buffer and the bio that moves it to or from the backend. */
struct nvt_bounce {
	struct nvt_bounce *next;
	uint8_t *data;			/* NVT_NS_BOUNCE_DATA, page-aligned (O_DIRECT) */
	uint8_t *md;			/* NVT_NS_BOUNCE_MD */
	struct iovec data_iov, md_iov;
	struct nvt_bio child;
	struct nvt_bio *parent;
};

/* A range lock's request that this channel report when overlapping I/O has drained. */
struct nvt_ns_watch {
	bool active;
	uint64_t seq;			/* bios started before this are the ones waited for */
	uint32_t count;			/* of them, still in flight */
	uint64_t lo, hi;
};

/**
 * struct nvt_ns_chan - one namespace on one poll group. Everything but the
 * atomics is touched only by the group's thread.
 */
struct nvt_ns_chan {
	struct nvt_ns *ns;
	struct nvt_poll_group *pg;
	void *be_chan;
	_Atomic unsigned int inflight;	/* gated bios: lockers on other threads look */
	_Atomic unsigned int nr_parked;	/* bios and lock holders parked here */
	struct nvt_bio *inflight_head;	/* gated bios, doubly linked */
	unsigned int nr_in_place;	/* of them NVT_BIO_IN_PLACE: overlapping bios park behind them */
	uint64_t seq;
	struct nvt_bio *parked_head, *parked_tail;	/* waiting for a range lock to go */
	struct nvt_range_hold *hold_head, *hold_tail;	/* waiting for a slot or earlier holders */
	struct nvt_bio *bounce_wait_head, *bounce_wait_tail;
	struct nvt_bounce *bounce_free;
	struct nvt_bounce bounces[NVT_NS_BOUNCES];
	void *bounce_mem;
	struct nvt_ns_watch watch[NVT_RANGE_EXCL];
	unsigned int nr_watch;
	/*
	 * Range locks waiting for this channel's overlapping I/O, a bit per
	 * slot. Whoever clears a bit answers for it: the lock itself when the
	 * channel is idle, the last bio leaving an otherwise idle channel, or
	 * the drain message on the channel's thread (which may have to watch
	 * bios still in flight). So an idle channel never needs its thread.
	 */
	_Atomic uint32_t drain_bits;
	struct nvt_pg_msg drain_msg;
	atomic_bool drain_pending;	/* drain_msg is queued: one at a time */
	struct nvt_pg_msg wake_msg;
	atomic_bool wake_pending;
	/* Every command on this namespace from this group's queues (NVMe and SCSI); the group's thread writes. */
	struct nvt_io_stats stats;
};

/* range_lock.c */

/**
 * nvt_ns_gate() - @bio is about to touch [lo, hi): it joins the channel's
 * in-flight list and returns true, or parks behind a range lock and
 * returns false (bio->ns_priv.resume runs when it may try again).
 */
bool nvt_ns_gate(struct nvt_bio *bio, uint64_t lo, uint64_t hi);

/** nvt_ns_ungate() - @bio touches nothing any more; drains waiting for it may end. */
void nvt_ns_ungate(struct nvt_bio *bio);

/**
 * nvt_range_lock_acquire() - lock @h's range on @h->chan's namespace;
 * @h->granted runs once it is held (inline, or on @h->chan's poll group).
 */
void nvt_range_lock_acquire(struct nvt_range_hold *h);

/** nvt_range_lock_release() - release what @h holds and wake whoever waits for it. */
void nvt_range_lock_release(struct nvt_range_hold *h);

/** nvt_range_chan_init() - a new channel's lock state. */
void nvt_range_chan_init(struct nvt_ns_chan *chan);

#endif /* NVT_NS_INTERNAL_H */
