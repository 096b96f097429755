/* SPDX-License-Identifier: BSD-3-Clause */
/* The event loop a poll group runs: epoll over fds whose watches live in their owners. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "nvt/poll_group.h"

#define NVT_PG_BATCH	32

struct nvt_poll_group {
	int epfd;
	struct nvt_pg_deferred *deferred;
};

int nvt_poll_group_create(struct nvt_poll_group **out)
{
	struct nvt_poll_group *pg = calloc(1, sizeof(*pg));

	if (!pg)
		return -ENOMEM;
	pg->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (pg->epfd < 0) {
		int ret = -errno;

		free(pg);
		return ret;
	}
	*out = pg;
	return 0;
}

void nvt_poll_group_destroy(struct nvt_poll_group *pg)
{
	if (!pg)
		return;
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

		w->fn(w);
	}
	nvt_poll_group_run_deferred(pg);
	return n;
}
