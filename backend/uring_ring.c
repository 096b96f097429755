/* SPDX-License-Identifier: BSD-3-Clause */
/* The ring both io_uring backends (file, nvme) run per poll group: setup, completion eventfd and watch, reaping, the submitting poller, teardown. */
/*
 * No NVT_LOG_PREFIX: as in the backends, the one line this file logs names
 * whose ring it is (r->name).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "nvt/log.h"
#include "nvt/util.h"

#include "uring_ring.h"

unsigned int nvt_uring_ring_reap(struct nvt_uring_ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned int n = 0;

	while (n < NVT_URING_REAP_BATCH && !io_uring_peek_cqe(&r->uring, &cqe)) {
		void *data = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		/* Seen first: the completion may submit more on this ring. */
		io_uring_cqe_seen(&r->uring, cqe);
		r->ops->complete(r, data, res);
		n++;
	}
	return n;
}

/* The eventfd says CQEs were posted: reap them and let waiting work in. */
static void nvt_uring_ring_event(struct nvt_pg_watch *w)
{
	struct nvt_uring_ring *r = container_of(w, struct nvt_uring_ring, watch);
	uint64_t v;

	/* Read before reaping, so a CQE posted meanwhile wakes us again. */
	if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		nvt_warn_ratelimited("%s: reading the ring's eventfd: %s", r->name, strerror(errno));
	nvt_uring_ring_reap(r);
	r->ops->resume(r);
}

/*
 * Every loop iteration, after the callbacks: one io_uring_submit() for all
 * that was queued since. Return: > 0 while SQEs, CQEs or waiting work
 * remain (the loop then does not sleep), 0 when only the kernel has work.
 */
static int nvt_uring_ring_poll(struct nvt_pg_poller *p)
{
	struct nvt_uring_ring *r = container_of(p, struct nvt_uring_ring, poller);
	bool waiting = false;

	/* What waits cannot change between the last resume and the return: a submit calls nothing back. */
	for (int round = 0; round < NVT_URING_POLL_ROUNDS; round++) {
		nvt_uring_ring_reap(r);
		waiting = r->ops->resume(r);
		if (!io_uring_sq_ready(&r->uring))
			break;
		r->nr_submits++;
		/* -EAGAIN, -EBUSY: the kernel is short of something; the next call tries again. */
		if (io_uring_submit(&r->uring) < 0)
			break;
	}
	return io_uring_sq_ready(&r->uring) || io_uring_cq_ready(&r->uring) || waiting;
}

int nvt_uring_ring_create(struct nvt_uring_ring *r, unsigned int entries, struct io_uring_params *p,
			  const struct nvt_uring_ring_ops *ops, struct nvt_poll_group *pg,
			  const char *name)
{
	struct io_uring_params asked = *p;
	int ret;

	*r = (struct nvt_uring_ring){ .ops = ops, .pg = pg, .name = name, .efd = -1,
				      .poller.fn = nvt_uring_ring_poll };
	ret = io_uring_queue_init_params(entries, &r->uring, p);
	if (ret == -EINVAL && (asked.flags & IORING_SETUP_COOP_TASKRUN)) {
		/* Only a speed-up (fewer IPIs): a kernel without it gets the ring without. */
		*p = asked;
		p->flags &= ~IORING_SETUP_COOP_TASKRUN;
		ret = io_uring_queue_init_params(entries, &r->uring, p);
	}
	if (ret)
		return ret;
	r->ring_ok = true;
	return 0;
}

void nvt_uring_ring_register_files(struct nvt_uring_ring *r, const int *fds, unsigned int nr)
{
	/* Fixed files save an fget/fput per SQE. */
	r->fixed_files = !io_uring_register_files(&r->uring, fds, nr);
}

void nvt_uring_ring_register_bufs(struct nvt_uring_ring *r, const struct iovec *iov,
				  unsigned int nr)
{
	/* Pinned once: no page walk per transfer. */
	r->fixed_bufs = !io_uring_register_buffers(&r->uring, iov, nr);
}

int nvt_uring_ring_enable(struct nvt_uring_ring *r)
{
	int ret;

	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0)
		return -errno;
	ret = io_uring_register_eventfd(&r->uring, r->efd);
	if (ret)
		return ret;
	r->watch = (struct nvt_pg_watch){ .fd = r->efd, .fn = nvt_uring_ring_event };
	ret = nvt_poll_group_add(r->pg, &r->watch);
	if (ret)
		return ret;
	r->watched = true;
	return 0;
}

void nvt_uring_ring_destroy(struct nvt_uring_ring *r, bool release)
{
	if (r->poller_on)
		nvt_poll_group_del_poller(r->pg, &r->poller);
	if (r->watched)
		nvt_poll_group_del(r->pg, &r->watch);
	/*
	 * Files first: the ring itself is freed later by a kernel worker, and
	 * until then its file references would keep a block device claimed
	 * (O_EXCL) and a filesystem busy.
	 */
	if (r->fixed_files && release)
		io_uring_unregister_files(&r->uring);
	if (r->fixed_bufs && release)
		io_uring_unregister_buffers(&r->uring);
	if (r->ring_ok && release)
		io_uring_queue_exit(&r->uring);
	if (r->efd >= 0)
		close(r->efd);
}
