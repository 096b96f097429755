/* SPDX-License-Identifier: BSD-3-Clause */
/* A single-threaded event loop (epoll) that owns the fds of its queues: CM channels, completion channels, timers. */
#ifndef NVT_POLL_GROUP_H
#define NVT_POLL_GROUP_H

#include <stdbool.h>
#include <stdint.h>

/**
 * struct nvt_pg_watch - one watched fd; embedded in its owner, so adding a
 * watch allocates nothing.
 */
struct nvt_pg_watch {
	int fd;
	void (*fn)(struct nvt_pg_watch *w);	/* called when @fd is readable */
};

/*
 * struct nvt_pg_deferred - work to run after the current batch of callbacks:
 * freeing an object whose fd may still have an event later in the batch.
 */
struct nvt_pg_deferred {
	struct nvt_pg_deferred *next;
	void (*fn)(struct nvt_pg_deferred *d);
};

/*
 * struct nvt_pg_msg - work sent to a poll group from another thread; it runs
 * on the group's thread. Embedded in its owner; in flight at most once.
 */
struct nvt_pg_msg {
	struct nvt_pg_msg *next;
	void (*fn)(struct nvt_pg_msg *m);
};

/*
 * struct nvt_pg_poller - work a poll group runs on every loop iteration,
 * after the ready fds' callbacks (io_uring submission, doorbell batching).
 * @fn returns > 0 while it has work in hand: the loop then polls again
 * without sleeping; 0 lets it sleep in epoll. Embedded in its owner.
 */
struct nvt_pg_poller {
	struct nvt_pg_poller *next;
	int (*fn)(struct nvt_pg_poller *p);
};

/*
 * struct nvt_pg_flusher - work to run once at the end of the current loop
 * iteration, after every callback and poller and before the loop may
 * sleep: doorbells batched over the iteration (one ibv_post_send for all
 * the WRs a queue produced). Embedded in its owner; queued at most once.
 */
struct nvt_pg_flusher {
	struct nvt_pg_flusher *next;
	void (*fn)(struct nvt_pg_flusher *f);
	bool queued;				/* on the group's list; owner thread only */
};

struct nvt_poll_group;

/** nvt_poll_group_create() - Return: 0 or -errno. */
int nvt_poll_group_create(struct nvt_poll_group **out);

/** nvt_poll_group_destroy() - the watches must already be removed. */
void nvt_poll_group_destroy(struct nvt_poll_group *pg);

/** nvt_poll_group_add() - watch @w->fd for input. Return: 0 or -errno. */
int nvt_poll_group_add(struct nvt_poll_group *pg, struct nvt_pg_watch *w);

/** nvt_poll_group_del() - stop watching; safe from inside a callback. */
void nvt_poll_group_del(struct nvt_poll_group *pg, struct nvt_pg_watch *w);

/** nvt_poll_group_add_poller() - run @p on every iteration; owner thread (or before the loop runs). */
void nvt_poll_group_add_poller(struct nvt_poll_group *pg, struct nvt_pg_poller *p);

/** nvt_poll_group_del_poller() - stop running @p; owner thread, not from inside a poller. */
void nvt_poll_group_del_poller(struct nvt_poll_group *pg, struct nvt_pg_poller *p);

/**
 * nvt_poll_group_run_pending() - run the messages already queued for @pg,
 * without waiting (one atomic load when there are none). Owner thread.
 */
void nvt_poll_group_run_pending(struct nvt_poll_group *pg);

/** nvt_poll_group_nr_fd_looks() - how often the loop has called epoll_wait (tests count them). */
unsigned long nvt_poll_group_nr_fd_looks(const struct nvt_poll_group *pg);

/** nvt_poll_group_slot() - the group's slot in its target (-1: none), for per-group tables. */
int nvt_poll_group_slot(const struct nvt_poll_group *pg);
void nvt_poll_group_set_slot(struct nvt_poll_group *pg, int slot);

/**
 * nvt_poll_group_add_flusher() - run @f->fn once at the end of this
 * iteration (before the deferred work of the batch and before the loop may
 * sleep); nothing if @f is queued already. Owner thread. A flusher may
 * queue flushers (itself too): they run before the loop goes on.
 */
void nvt_poll_group_add_flusher(struct nvt_poll_group *pg, struct nvt_pg_flusher *f);

/** nvt_poll_group_run_flushers() - run the queued flushers now (outside the loop: shutdown, tests). */
void nvt_poll_group_run_flushers(struct nvt_poll_group *pg);

/** nvt_poll_group_defer() - run @d->fn once the current batch is done. */
void nvt_poll_group_defer(struct nvt_poll_group *pg, struct nvt_pg_deferred *d);

/** nvt_poll_group_send() - queue @m for @pg's thread; callable from any thread. */
void nvt_poll_group_send(struct nvt_poll_group *pg, struct nvt_pg_msg *m);

/** nvt_poll_group_start() - run @pg's loop on a thread of its own. Return: 0 or -errno. */
int nvt_poll_group_start(struct nvt_poll_group *pg, const char *name);

/**
 * nvt_poll_group_running() - @pg runs on a thread of its own (started, not
 * stopped) other than the caller's: its state is changed there, by message.
 */
bool nvt_poll_group_running(const struct nvt_poll_group *pg);

/** nvt_poll_group_stop() - end the loop started by nvt_poll_group_start() and join it. */
void nvt_poll_group_stop(struct nvt_poll_group *pg);

/**
 * nvt_poll_group_now_ns() - CLOCK_MONOTONIC as @pg's current iteration
 * read it (at its start, again after its epoll_wait): a clock for the
 * I/O path that costs no clock read per command. @pg's thread only; 0
 * before the first iteration.
 */
uint64_t nvt_poll_group_now_ns(const struct nvt_poll_group *pg);

/**
 * nvt_poll_group_poll() - one iteration: wait up to @timeout_ms (-1:
 * forever; 0 while a poller has work) and run the callbacks of ready fds,
 * then the pollers. Return: callbacks run plus pollers busy, or -errno.
 */
int nvt_poll_group_poll(struct nvt_poll_group *pg, int timeout_ms);

#endif /* NVT_POLL_GROUP_H */
