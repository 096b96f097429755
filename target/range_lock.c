/* SPDX-License-Identifier: BSD-3-Clause */
/* The LBA range lock behind Compare-and-Write and namespace fences: overlapping I/O parks on its own channel, holders wait parked for drains and for each other (protocol in include/nvt/range_lock.h); bios are admitted here, the reservation checked. */
#define NVT_LOG_PREFIX "range: "
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nvt/log.h"
#include "nvt/util.h"
#include "ns_internal.h"

/*
 * Asymmetric fences for the Dekker pairs between the I/O path and a
 * locker: the I/O path's side is a compiler barrier, the locker's a
 * process-wide one (membarrier), which orders every thread's accesses
 * around it. Locking is rare, I/O is not. Without membarrier both sides
 * take a full fence.
 */
static bool nvt_range_asym;
static pthread_once_t nvt_range_asym_once = PTHREAD_ONCE_INIT;

static void nvt_range_asym_init(void)
{
	nvt_range_asym = !syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
	if (!nvt_range_asym)
		nvt_info("no membarrier(): the I/O path takes a full fence per command");
}

#ifdef __SANITIZE_THREAD__
/*
 * ThreadSanitizer knows neither fences nor membarrier: its build keeps the
 * symmetric form, sequentially consistent read-modify-writes on both sides.
 */
static _Atomic unsigned int nvt_range_tsan_fence;

static inline void nvt_range_fence_fast(void)
{
	atomic_fetch_add(&nvt_range_tsan_fence, 0);
}

static void nvt_range_fence_slow(void)
{
	atomic_fetch_add(&nvt_range_tsan_fence, 0);
}

static inline unsigned int nvt_chan_count(_Atomic unsigned int *c, int delta)
{
	return atomic_fetch_add(c, (unsigned int)delta) + (unsigned int)delta;
}
#else
static inline void nvt_range_fence_fast(void)
{
	if (__builtin_expect(nvt_range_asym, 1))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

static void nvt_range_fence_slow(void)
{
	if (nvt_range_asym && !syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
		return;
	atomic_thread_fence(memory_order_seq_cst);
}

/*
 * The owner thread's counter that lockers read: a plain load and store, no
 * locked instruction. Released: a locker that reads 0 (acquire) sees every
 * block access of the bios that brought it there.
 */
static inline unsigned int nvt_chan_count(_Atomic unsigned int *c, int delta)
{
	unsigned int v = atomic_load_explicit(c, memory_order_relaxed) + (unsigned int)delta;

	atomic_store_explicit(c, v, memory_order_release);
	return v;
}
#endif

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

static void nvt_range_flag_lock(struct nvt_range_lock *rl)
{
	/* Held for a scan of NVT_RANGE_EXCL slots by whoever has it: never across I/O. */
	while (atomic_flag_test_and_set_explicit(&rl->flag, memory_order_acquire))
		;
}

static void nvt_range_flag_unlock(struct nvt_range_lock *rl)
{
	atomic_flag_clear_explicit(&rl->flag, memory_order_release);
}

/* A published range overlapping [lo, hi)? Sequentially consistent: see nvt_ns_gate(). */
static bool nvt_range_busy(struct nvt_range_lock *rl, uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < NVT_RANGE_EXCL; i++) {
		uint64_t s = atomic_load(&rl->slot[i].start);

		if (s && overlaps(lo, hi, s - 1, atomic_load(&rl->slot[i].end)))
			return true;
	}
	return false;
}

static void nvt_chan_wake_fn(struct nvt_pg_msg *m);

/* Ask @chan's thread to look at what it has parked (coalesced: one message in flight). */
static void nvt_chan_wake(struct nvt_ns_chan *chan)
{
	if (atomic_exchange(&chan->wake_pending, true))
		return;
	chan->wake_msg.fn = nvt_chan_wake_fn;
	nvt_poll_group_send(chan->pg, &chan->wake_msg);
}

static void nvt_chan_park(struct nvt_ns_chan *chan, struct nvt_bio *bio)
{
	bio->ns_priv.next = NULL;
	if (chan->parked_tail)
		chan->parked_tail->ns_priv.next = bio;
	else
		chan->parked_head = bio;
	chan->parked_tail = bio;
}

/* An in-place bio in flight on @chan overlapping [lo, hi)? Only looked for while there is one. */
static bool nvt_chan_in_place_busy(const struct nvt_ns_chan *chan, uint64_t lo, uint64_t hi)
{
	for (const struct nvt_bio *b = chan->inflight_head; b; b = b->ns_priv.next)
		if ((b->flags & NVT_BIO_IN_PLACE) && overlaps(lo, hi, b->ns_priv.lo, b->ns_priv.hi))
			return true;
	return false;
}

bool nvt_bio_resv_denied(const struct nvt_bio *bio, const uint8_t hostid[16])
{
	struct nvt_resv *r = &bio->ns->resv;

	switch (bio->op) {
	case NVT_BIO_READ:
	case NVT_BIO_COMPARE:
	case NVT_BIO_VERIFY:
		return nvt_resv_check(r, hostid, NVT_RESV_READ) != NVT_ST_OK;
	case NVT_BIO_COPY:
		/* Its sources are this namespace's blocks too. */
		if (nvt_resv_check(r, hostid, NVT_RESV_READ) != NVT_ST_OK)
			return true;
		break;
	default:
		break;
	}
	return nvt_resv_check(r, hostid, NVT_RESV_WRITE) != NVT_ST_OK;
}

bool nvt_ns_gate(struct nvt_bio *bio, uint64_t lo, uint64_t hi)
{
	struct nvt_ns_chan *chan = bio->chan;
	struct nvt_range_lock *rl = &bio->ns->range_lock;
	unsigned int nr;

	/*
	 * The holder's own I/O: every overlapping holder is behind it. Its
	 * check comes after its grant, so after any fence granted before.
	 */
	if (bio->flags & NVT_BIO_LOCK_OWNER) {
		if (bio->resv_host && nvt_bio_resv_denied(bio, bio->resv_host))
			bio->status = NVT_BIO_RESV_CONFLICT;
		return true;
	}
	bio->ns_priv.lo = lo;
	bio->ns_priv.hi = hi;
	/* This thread's own business: no other thread adds in-place bios here. */
	if (chan->nr_in_place && nvt_chan_in_place_busy(chan, lo, hi)) {
		atomic_fetch_add(&chan->nr_parked, 1);
		nvt_chan_park(chan, bio);
		return false;
	}
	/*
	 * Dekker with nvt_range_lock_drain(): we count ourselves in flight,
	 * then look for locks; a locker publishes, then looks at our count.
	 * Either we see its range and park, or it sees us and asks this
	 * thread (after we are on the in-flight list) to report our drain.
	 */
	nvt_chan_count(&chan->inflight, 1);
	nvt_range_fence_fast();
	/* Acquire: a range released since is seen with everything its holder wrote. */
	nr = atomic_load_explicit(&rl->nr, memory_order_acquire);
	if ((nr & NVT_RANGE_NR_MASK) && nvt_range_busy(rl, lo, hi)) {
		/* Parked first, then looked again: a release in between sees nr_parked. */
		atomic_fetch_add(&chan->nr_parked, 1);
		if (nvt_range_busy(rl, lo, hi)) {
			nvt_chan_count(&chan->inflight, -1);
			nvt_chan_park(chan, bio);
			return false;
		}
		atomic_fetch_sub(&chan->nr_parked, 1);
	}
	bio->ns_priv.seq = ++chan->seq;
	bio->ns_priv.prev = NULL;
	bio->ns_priv.next = chan->inflight_head;
	if (chan->inflight_head)
		chan->inflight_head->ns_priv.prev = bio;
	chan->inflight_head = bio;
	bio->ns_priv.gated = true;
	if (bio->flags & NVT_BIO_IN_PLACE)
		chan->nr_in_place++;
	/*
	 * Dekker with a fence (nvt_ns_fence() after a reservation change): we
	 * counted ourselves, then look at the state; the fence's side changed
	 * the state, then reads our count. Either we see the new state, or it
	 * waits for us. Denied: in flight for a moment, so it ends as any bio.
	 */
	if ((nr & NVT_RANGE_RESV) && bio->resv_host && nvt_bio_resv_denied(bio, bio->resv_host))
		bio->status = NVT_BIO_RESV_CONFLICT;
	return true;
}

static void nvt_range_ack(struct nvt_range_slot *slot, bool grant_inline);

/* Claim slot bit @i of @chan's drain requests. Return: true if it is ours to answer. */
static bool nvt_chan_claim(struct nvt_ns_chan *chan, int i)
{
	uint32_t bit = 1u << i;

	return atomic_fetch_and(&chan->drain_bits, ~bit) & bit;
}

/* An idle channel holds up no lock: answer every request it still has. */
static void nvt_chan_claim_idle(struct nvt_ns_chan *chan)
{
	for (int i = 0; i < NVT_RANGE_EXCL; i++)
		if (nvt_chan_claim(chan, i))
			nvt_range_ack(&chan->ns->range_lock.slot[i], false);
}

void nvt_ns_ungate(struct nvt_bio *bio)
{
	struct nvt_ns_chan *chan = bio->chan;

	if (!bio->ns_priv.gated)
		return;
	bio->ns_priv.gated = false;
	if (bio->ns_priv.prev)
		bio->ns_priv.prev->ns_priv.next = bio->ns_priv.next;
	else
		chan->inflight_head = bio->ns_priv.next;
	if (bio->ns_priv.next)
		bio->ns_priv.next->ns_priv.prev = bio->ns_priv.prev;
	bio->ns_priv.next = bio->ns_priv.prev = NULL;
	/* Bios parked behind it try again, from this thread's loop (not inside this completion). */
	if ((bio->flags & NVT_BIO_IN_PLACE)) {
		chan->nr_in_place--;
		if (atomic_load(&chan->nr_parked))
			nvt_chan_wake(chan);
	}
	/* The channel went idle: locks waiting for it hear now, from this thread. */
	if (!nvt_chan_count(&chan->inflight, -1)) {
		nvt_range_fence_fast();
		if (atomic_load_explicit(&chan->drain_bits, memory_order_relaxed))
			nvt_chan_claim_idle(chan);
	}
	if (!chan->nr_watch)
		return;
	for (int i = 0; i < NVT_RANGE_EXCL; i++) {
		struct nvt_ns_watch *w = &chan->watch[i];

		if (!w->active || bio->ns_priv.seq >= w->seq ||
		    !overlaps(bio->ns_priv.lo, bio->ns_priv.hi, w->lo, w->hi))
			continue;
		if (--w->count == 0) {
			w->active = false;
			chan->nr_watch--;
			nvt_range_ack(&bio->ns->range_lock.slot[i], false);
		}
	}
}

static void nvt_range_grant_fn(struct nvt_pg_msg *m)
{
	struct nvt_range_slot *slot = container_of(m, struct nvt_range_slot, grant_msg);

	slot->hold->granted(slot->hold);
}

/*
 * One channel is done draining; the last one grants: inline from the
 * locker itself, else by message to the holder's poll group (never from
 * inside another bio's completion).
 */
static void nvt_range_ack(struct nvt_range_slot *slot, bool grant_inline)
{
	if (atomic_fetch_sub(&slot->acks, 1) != 1)
		return;
	if (grant_inline) {
		slot->hold->granted(slot->hold);
		return;
	}
	slot->grant_msg.fn = nvt_range_grant_fn;
	nvt_poll_group_send(slot->hold->chan->pg, &slot->grant_msg);
}

/* On the channel's thread: for each request it claims, count what overlaps now; ack or watch. */
static void nvt_range_drain_fn(struct nvt_pg_msg *m)
{
	struct nvt_ns_chan *chan = container_of(m, struct nvt_ns_chan, drain_msg);
	struct nvt_range_lock *rl = &chan->ns->range_lock;

	atomic_store(&chan->drain_pending, false);
	for (int i = 0; i < NVT_RANGE_EXCL; i++) {
		struct nvt_range_slot *slot = &rl->slot[i];
		struct nvt_ns_watch *w = &chan->watch[i];
		uint64_t lo, hi;
		uint32_t count = 0;

		if (!nvt_chan_claim(chan, i))
			continue;
		lo = atomic_load(&slot->start) - 1;
		hi = atomic_load(&slot->end);
		for (struct nvt_bio *b = chan->inflight_head; b; b = b->ns_priv.next)
			count += overlaps(b->ns_priv.lo, b->ns_priv.hi, lo, hi);
		if (!count) {
			nvt_range_ack(slot, false);
			continue;
		}
		*w = (struct nvt_ns_watch){ .active = true, .seq = chan->seq + 1, .count = count,
					    .lo = lo, .hi = hi };
		chan->nr_watch++;
	}
}

/* Earlier holders of an overlapping range are gone: every channel drains what overlaps. */
static void nvt_range_lock_drain(struct nvt_range_hold *h, bool grant_inline)
{
	struct nvt_ns *ns = h->chan->ns;
	struct nvt_range_slot *slot = &ns->range_lock.slot[h->slot];
	unsigned int nr = atomic_load(&ns->nr_chans);

	atomic_store(&slot->acks, 1);
	for (unsigned int i = 0; i < nr; i++) {
		struct nvt_ns_chan *c = atomic_load(&ns->chans[i]);

		if (!c)
			continue;
		atomic_fetch_add(&slot->acks, 1);
		atomic_fetch_or(&c->drain_bits, 1u << h->slot);
	}
	/*
	 * Dekker with nvt_ns_gate()/nvt_ns_ungate(): the range (published
	 * before) and the requests, one process-wide fence, then each
	 * channel's in-flight count.
	 */
	nvt_range_fence_slow();
	for (unsigned int i = 0; i < nr; i++) {
		struct nvt_ns_chan *c = atomic_load(&ns->chans[i]);

		if (!c)
			continue;
		if (!atomic_load_explicit(&c->inflight, memory_order_acquire)) {
			if (nvt_chan_claim(c, h->slot))
				atomic_fetch_sub(&slot->acks, 1);
			continue;
		}
		if (!atomic_exchange(&c->drain_pending, true)) {
			c->drain_msg.fn = nvt_range_drain_fn;
			nvt_poll_group_send(c->pg, &c->drain_msg);
		}
	}
	nvt_range_ack(slot, grant_inline);
}

/* Under the flag: may @h (published in its slot) go ahead of everyone overlapping it? */
static bool nvt_range_first(struct nvt_range_lock *rl, const struct nvt_range_hold *h)
{
	const struct nvt_range_slot *me = &rl->slot[h->slot];
	uint64_t lo = atomic_load(&me->start) - 1, hi = atomic_load(&me->end);

	for (int i = 0; i < NVT_RANGE_EXCL; i++) {
		uint64_t s = atomic_load(&rl->slot[i].start);

		if (i != h->slot && s && rl->slot[i].ticket < me->ticket &&
		    overlaps(lo, hi, s - 1, atomic_load(&rl->slot[i].end)))
			return false;
	}
	return true;
}

/* Under the flag: take a free slot and a ticket. Return: false if every slot is taken. */
static bool nvt_range_publish(struct nvt_range_lock *rl, struct nvt_range_hold *h)
{
	for (int i = 0; i < NVT_RANGE_EXCL; i++) {
		struct nvt_range_slot *slot = &rl->slot[i];

		if (atomic_load(&slot->start))
			continue;
		slot->ticket = rl->next_ticket++;
		slot->hold = h;
		atomic_store(&slot->end, h->hi);
		atomic_store(&slot->start, h->lo + 1);
		atomic_fetch_add(&rl->nr, 1);
		h->slot = i;
		return true;
	}
	return false;
}

static void nvt_chan_hold_wait(struct nvt_ns_chan *chan, struct nvt_range_hold *h)
{
	h->next = NULL;
	if (chan->hold_tail)
		chan->hold_tail->next = h;
	else
		chan->hold_head = h;
	chan->hold_tail = h;
	atomic_fetch_add(&chan->nr_parked, 1);
}

/*
 * Under the flag: publish if not yet, and decide. Return: true if @h may
 * drain now; false if it must wait (a release wakes its channel).
 */
static bool nvt_range_try(struct nvt_range_lock *rl, struct nvt_range_hold *h)
{
	if (h->slot < 0 && !nvt_range_publish(rl, h))
		return false;
	return nvt_range_first(rl, h);
}

void nvt_range_lock_acquire(struct nvt_range_hold *h)
{
	struct nvt_range_lock *rl = &h->chan->ns->range_lock;
	bool go;

	h->slot = -1;
	nvt_range_flag_lock(rl);
	go = nvt_range_try(rl, h);
	/* Parked under the flag: a release (under it too) then sees nr_parked. */
	if (!go)
		nvt_chan_hold_wait(h->chan, h);
	nvt_range_flag_unlock(rl);
	if (go)
		nvt_range_lock_drain(h, true);
}

void nvt_range_lock_release(struct nvt_range_hold *h)
{
	struct nvt_ns *ns = h->chan->ns;
	struct nvt_range_lock *rl = &ns->range_lock;
	unsigned int nr;

	nvt_range_flag_lock(rl);
	atomic_store(&rl->slot[h->slot].start, 0);
	atomic_fetch_sub(&rl->nr, 1);
	nvt_range_flag_unlock(rl);
	h->slot = -1;
	nr = atomic_load(&ns->nr_chans);
	/* Dekker with nvt_ns_gate(): the range is gone, then we look for parked work. */
	for (unsigned int i = 0; i < nr; i++) {
		struct nvt_ns_chan *c = atomic_load(&ns->chans[i]);

		if (c && atomic_load(&c->nr_parked))
			nvt_chan_wake(c);
	}
}

/* On the channel's thread: retry waiting holders, then parked bios, in arrival order. */
static void nvt_chan_wake_fn(struct nvt_pg_msg *m)
{
	struct nvt_ns_chan *chan = container_of(m, struct nvt_ns_chan, wake_msg);
	struct nvt_range_lock *rl = &chan->ns->range_lock;
	struct nvt_range_hold *h, *ready = NULL, **ready_tail = &ready;
	struct nvt_bio *bio;

	atomic_store(&chan->wake_pending, false);
	nvt_range_flag_lock(rl);
	for (struct nvt_range_hold **pp = &chan->hold_head; (h = *pp);) {
		if (!nvt_range_try(rl, h)) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		if (chan->hold_tail == h)
			chan->hold_tail = NULL;
		h->next = NULL;
		*ready_tail = h;
		ready_tail = &h->next;
		atomic_fetch_sub(&chan->nr_parked, 1);
	}
	/* The tail pointer, rebuilt: entries may have left from the middle. */
	chan->hold_tail = NULL;
	for (h = chan->hold_head; h; h = h->next)
		chan->hold_tail = h;
	nvt_range_flag_unlock(rl);
	while ((h = ready)) {
		ready = h->next;
		nvt_range_lock_drain(h, true);
	}
	/* Bios parked so far get one more try each; those still blocked park again. */
	bio = chan->parked_head;
	chan->parked_head = chan->parked_tail = NULL;
	while (bio) {
		struct nvt_bio *next = bio->ns_priv.next;

		atomic_fetch_sub(&chan->nr_parked, 1);
		bio->ns_priv.next = NULL;
		bio->ns_priv.resume(bio);
		bio = next;
	}
}

void nvt_range_chan_init(struct nvt_ns_chan *chan)
{
	pthread_once(&nvt_range_asym_once, nvt_range_asym_init);
	atomic_init(&chan->inflight, 0);
	atomic_init(&chan->nr_parked, 0);
	atomic_init(&chan->wake_pending, false);
	atomic_init(&chan->drain_bits, 0);
	atomic_init(&chan->drain_pending, false);
}
