/* SPDX-License-Identifier: BSD-3-Clause */
/* The event loop a poll group runs: epoll over fds whose watches live in their owners, messages from other threads over an eventfd. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "nvt/poll_group.h"
#include "nvt/util.h"

#define NVT_PG_BATCH	32

struct nvt_poll_group {
	int epfd;
	struct nvt_pg_deferred *deferred;
	/* Messages: the list is the only state other threads touch (control path). */
	pthread_mutex_t msg_lock;
	struct nvt_pg_msg *msg_head, *msg_tail;
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
	pthread_mutex_lock(&pg->msg_lock);
	m = pg->msg_head;
	pg->msg_head = pg->msg_tail = NULL;
	pthread_mutex_unlock(&pg->msg_lock);
	while (m) {
		struct nvt_pg_msg *next = m->next;

		m->fn(m);	/* may free @m's owner: read next first */
		m = next;
	}
}

int nvt_poll_group_create(struct nvt_poll_group **out)
{
	struct nvt_poll_group *pg = calloc(1, sizeof(*pg));
	int ret;

	if (!pg)
		return -ENOMEM;
	pthread_mutex_init(&pg->msg_lock, NULL);
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
	pthread_mutex_destroy(&pg->msg_lock);
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

	m->next = NULL;
	pthread_mutex_lock(&pg->msg_lock);
	if (pg->msg_tail)
		pg->msg_tail->next = m;
	else
		pg->msg_head = m;
	pg->msg_tail = m;
	pthread_mutex_unlock(&pg->msg_lock);
	if (write(pg->msg_watch.fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow in practice; the message is queued anyway. */
	}
}

static void nvt_poll_group_run_deferred(struct nvt_poll_group *pg)
{
	while (pg->deferred) {
		struct nvt_pg_deferred *d = pg->deferred;

		pg->deferred = d->next;
		d->fn(d);
	}
}

int nvt_poll_group_poll(struct nvt_poll_group *pg, int timeout_ms)
{
	struct epoll_event ev[NVT_PG_BATCH];
	int n;

	/* Work deferred outside a batch (e.g. by a shutdown path) runs first. */
	nvt_poll_group_run_deferred(pg);
	n = epoll_wait(pg->epfd, ev, NVT_PG_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct nvt_pg_watch *w = ev[i].data.ptr;

		/* Owners keep a removed watch's memory and callback valid until the
		 * batch is over (nvt_poll_group_defer), so a stale event is harmless. */
		w->fn(w);
	}
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

void nvt_poll_group_stop(struct nvt_poll_group *pg)
{
	if (!pg->has_thread)
		return;
	pg->stop_msg.fn = nvt_poll_group_stop_fn;
	nvt_poll_group_send(pg, &pg->stop_msg);
	pthread_join(pg->thread, NULL);
	pg->has_thread = false;
}
