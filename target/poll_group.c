/* SPDX-License-Identifier: BSD-3-Clause */
/* The event loop a poll group runs: epoll over fds whose watches live in their owners, messages from other threads over an eventfd. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "nvt/poll_group.h"
#include "nvt/util.h"

#define NVT_PG_BATCH	32
/*
 * While a poller has work in hand the loop does not sleep, and looks at its
 * fds (epoll_wait with no timeout: a system call) only this often, not on
 * every iteration: a busy RDMA poll group iterates every few microseconds,
 * and what its fds bring (messages from other threads, CM and channel
 * events, io_uring eventfds) waits at most this long. 32 us: a tenth of
 * a soft-RoCE round trip, and far below what a message may wait.
 */
#define NVT_PG_BUSY_FD_NS	(32 * 1000)

struct nvt_poll_group {
	int epfd;
	struct nvt_pg_deferred *deferred;
	struct nvt_pg_poller *pollers;
	struct nvt_pg_flusher *flushers;	/* to run at the end of this iteration */
	bool pollers_busy;		/* the last round had work in hand: do not sleep */
	uint64_t fds_seen_ns;		/* the last epoll_wait returned then (with pollers) */
	uint64_t now_ns;		/* CLOCK_MONOTONIC at this iteration's start and after its wait */
	unsigned long nr_fd_looks;	/* epoll_wait calls, for tests */
	int slot;			/* in the target's table of I/O groups; -1: none */
	/*
	 * Messages: the only state other threads touch. A lock-free stack
	 * (senders push, the owner takes it whole and reverses it), because
	 * the I/O path sends them too (range lock drains and wake-ups).
	 */
	struct nvt_pg_msg *_Atomic msg_stack;
	struct nvt_pg_watch msg_watch;		/* the eventfd */
	pthread_t thread;
	bool has_thread;
	atomic_bool stop;
	struct nvt_pg_msg stop_msg;
};

static void nvt_poll_group_run_msgs(struct nvt_pg_watch *w)
{
	struct nvt_poll_group *pg = container_of(w, struct nvt_poll_group, msg_watch);
	struct nvt_pg_msg *m;
	uint64_t n;

	if (read(w->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	m = atomic_exchange_explicit(&pg->msg_stack, NULL, memory_order_acquire);
	/* Pushed newest first: reverse to run them in the order they were sent. */
	for (struct nvt_pg_msg *rev = NULL;; ) {
		struct nvt_pg_msg *next;

		if (!m) {
			m = rev;
			break;
		}
		next = m->next;
		m->next = rev;
		rev = m;
		m = next;
	}
	while (m) {
		struct nvt_pg_msg *next = m->next;

		m->fn(m);	/* may free @m's owner: read next first */
		m = next;
	}
}

void nvt_poll_group_run_pending(struct nvt_poll_group *pg)
{
	if (atomic_load_explicit(&pg->msg_stack, memory_order_relaxed))
		nvt_poll_group_run_msgs(&pg->msg_watch);
}

int nvt_poll_group_create(struct nvt_poll_group **out)
{
	struct nvt_poll_group *pg = calloc(1, sizeof(*pg));
	int ret;

	if (!pg)
		return -ENOMEM;
	atomic_init(&pg->msg_stack, NULL);
	pg->slot = -1;
	atomic_init(&pg->stop, false);
	pg->msg_watch.fd = -1;
	pg->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (pg->epfd < 0)
		goto out_errno;
	pg->msg_watch.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pg->msg_watch.fd < 0)
		goto out_errno;
	pg->msg_watch.fn = nvt_poll_group_run_msgs;
	ret = nvt_poll_group_add(pg, &pg->msg_watch);
	if (ret)
		goto out_destroy;
	*out = pg;
	return 0;

out_errno:
	ret = -errno;
out_destroy:
	nvt_poll_group_destroy(pg);
	return ret;
}

void nvt_poll_group_destroy(struct nvt_poll_group *pg)
{
	if (!pg)
		return;
	if (pg->has_thread)
		nvt_poll_group_stop(pg);
	if (pg->msg_watch.fd >= 0)
		close(pg->msg_watch.fd);
	if (pg->epfd >= 0)
		close(pg->epfd);
	free(pg);
}

int nvt_poll_group_add(struct nvt_poll_group *pg, struct nvt_pg_watch *w)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

	return epoll_ctl(pg->epfd, EPOLL_CTL_ADD, w->fd, &ev) ? -errno : 0;
}

void nvt_poll_group_del(struct nvt_poll_group *pg, struct nvt_pg_watch *w)
{
	epoll_ctl(pg->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

void nvt_poll_group_defer(struct nvt_poll_group *pg, struct nvt_pg_deferred *d)
{
	d->next = pg->deferred;
	pg->deferred = d;
}

void nvt_poll_group_send(struct nvt_poll_group *pg, struct nvt_pg_msg *m)
{
	uint64_t one = 1;

	struct nvt_pg_msg *top = atomic_load_explicit(&pg->msg_stack, memory_order_relaxed);

	do
		m->next = top;
	while (!atomic_compare_exchange_weak_explicit(&pg->msg_stack, &top, m,
						      memory_order_release, memory_order_relaxed));
	if (write(pg->msg_watch.fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow in practice; the message is queued anyway. */
	}
}

unsigned long nvt_poll_group_nr_fd_looks(const struct nvt_poll_group *pg)
{
	return pg->nr_fd_looks;
}

int nvt_poll_group_slot(const struct nvt_poll_group *pg)
{
	return pg->slot;
}

void nvt_poll_group_set_slot(struct nvt_poll_group *pg, int slot)
{
	pg->slot = slot;
}

void nvt_poll_group_add_poller(struct nvt_poll_group *pg, struct nvt_pg_poller *p)
{
	p->next = pg->pollers;
	pg->pollers = p;
}

void nvt_poll_group_del_poller(struct nvt_poll_group *pg, struct nvt_pg_poller *p)
{
	for (struct nvt_pg_poller **pp = &pg->pollers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static int nvt_poll_group_run_pollers(struct nvt_poll_group *pg)
{
	int busy = 0;

	for (struct nvt_pg_poller *p = pg->pollers; p; p = p->next)
		busy += p->fn(p) > 0;
	pg->pollers_busy = busy > 0;
	return busy;
}

void nvt_poll_group_add_flusher(struct nvt_poll_group *pg, struct nvt_pg_flusher *f)
{
	if (f->queued)
		return;
	f->queued = true;
	f->next = pg->flushers;
	pg->flushers = f;
}

void nvt_poll_group_run_flushers(struct nvt_poll_group *pg)
{
	while (pg->flushers) {
		struct nvt_pg_flusher *f = pg->flushers;

		pg->flushers = f->next;
		f->queued = false;
		f->fn(f);
	}
}

/*
 * Flushers run before each piece of deferred work: a deferred free (a
 * queue gone) may hand memory to another thread, and a flusher queued in
 * the same batch may still look at it; and what deferred work produces is
 * flushed before the loop may sleep.
 */
static void nvt_poll_group_run_deferred(struct nvt_poll_group *pg)
{
	for (;;) {
		struct nvt_pg_deferred *d;

		nvt_poll_group_run_flushers(pg);
		d = pg->deferred;
		if (!d)
			break;
		pg->deferred = d->next;
		d->fn(d);
	}
}

static uint64_t nvt_pg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);	/* vDSO: no system call */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Busy: is it time to look at the fds again (NVT_PG_BUSY_FD_NS)? */
static bool nvt_poll_group_fds_due(struct nvt_poll_group *pg)
{
	uint64_t now = nvt_pg_now_ns();

	if (now - pg->fds_seen_ns < NVT_PG_BUSY_FD_NS)
		return false;
	pg->fds_seen_ns = now;
	return true;
}

uint64_t nvt_poll_group_now_ns(const struct nvt_poll_group *pg)
{
	return pg->now_ns;
}

int nvt_poll_group_poll(struct nvt_poll_group *pg, int timeout_ms)
{
	struct epoll_event ev[NVT_PG_BATCH];
	int n = 0;

	pg->now_ns = nvt_pg_now_ns();
	/* Work deferred outside a batch (e.g. by a shutdown path) runs first. */
	nvt_poll_group_run_deferred(pg);
	/* Work queued since the last round (by another caller of the loop) goes out before sleeping. */
	if (pg->pollers && nvt_poll_group_run_pollers(pg))
		timeout_ms = 0;
	/* What they produced goes out before the loop may sleep. */
	nvt_poll_group_run_deferred(pg);
	if (!pg->pollers_busy || nvt_poll_group_fds_due(pg)) {
		n = epoll_wait(pg->epfd, ev, NVT_PG_BATCH, pg->pollers_busy ? 0 : timeout_ms);
		pg->nr_fd_looks++;
		/*
		 * The fds were just looked at, also when the loop slept there: a
		 * lone command that woke it leaves the pollers busy, and looking
		 * again at once (the stamp from before the sleep) cost every such
		 * command one more system call on its way (measured at QD 1 in the
		 * rig: ~0.6 epoll_wait per I/O that found nothing).
		 */
		if (pg->pollers || n > 0) {
			/* It may have slept: what arrives now is stamped now. */
			uint64_t now = nvt_pg_now_ns();

			if (pg->pollers)
				pg->fds_seen_ns = now;
			if (n > 0)
				pg->now_ns = now;
		}
	}
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct nvt_pg_watch *w = ev[i].data.ptr;

		/* Owners keep a removed watch's memory and callback valid until the
		 * batch is over (nvt_poll_group_defer), so a stale event is harmless. */
		w->fn(w);
	}
	nvt_poll_group_run_deferred(pg);
	/* What the callbacks produced (I/O to submit, sends to post) goes out in one batch. */
	if (pg->pollers)
		n += nvt_poll_group_run_pollers(pg);
	nvt_poll_group_run_deferred(pg);
	return n;
}

static void nvt_poll_group_stop_fn(struct nvt_pg_msg *m)
{
	struct nvt_poll_group *pg = container_of(m, struct nvt_poll_group, stop_msg);

	atomic_store(&pg->stop, true);
}

static void *nvt_poll_group_thread(void *arg)
{
	struct nvt_poll_group *pg = arg;

	while (!atomic_load(&pg->stop))
		if (nvt_poll_group_poll(pg, -1) < 0)
			break;
	return NULL;
}

int nvt_poll_group_start(struct nvt_poll_group *pg, const char *name)
{
	int ret = pthread_create(&pg->thread, NULL, nvt_poll_group_thread, pg);

	if (ret)
		return -ret;
	pthread_setname_np(pg->thread, name);
	pg->has_thread = true;
	return 0;
}

bool nvt_poll_group_running(const struct nvt_poll_group *pg)
{
	return pg->has_thread && !pthread_equal(pg->thread, pthread_self());
}

void nvt_poll_group_stop(struct nvt_poll_group *pg)
{
	if (!pg->has_thread)
		return;
	pg->stop_msg.fn = nvt_poll_group_stop_fn;
	nvt_poll_group_send(pg, &pg->stop_msg);
	pthread_join(pg->thread, NULL);
	pg->has_thread = false;
}
