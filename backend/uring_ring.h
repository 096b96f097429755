/* SPDX-License-Identifier: BSD-3-Clause */
/* One io_uring of a poll group for the io_uring backends (file, nvme): setup, the completion eventfd and its watch, reaping, the submitting poller, teardown. */
#ifndef NVT_URING_RING_H
#define NVT_URING_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <liburing.h>

#include "nvt/poll_group.h"

#define NVT_URING_REAP_BATCH	32	/* CQEs per reap, then the loop gets a turn */
#define NVT_URING_POLL_ROUNDS	4	/* reap/resume/submit rounds per poller call */

struct nvt_uring_ring;

/* What a backend does with its ring's completions. Called on the poll group's thread only. */
struct nvt_uring_ring_ops {
	/* One CQE, seen already (so it may queue more): its user_data and res. */
	void (*complete)(struct nvt_uring_ring *r, void *data, int res);
	/* After a reap: waiting work takes the room freed. Return: true while some still waits. */
	bool (*resume)(struct nvt_uring_ring *r);
};

/*
 * The ring of one channel, embedded in the backend's channel (which
 * container_of() recovers in the ops). Only the poll group's thread touches
 * it after nvt_uring_ring_enable().
 */
struct nvt_uring_ring {
	struct io_uring uring;
	const struct nvt_uring_ring_ops *ops;
	struct nvt_poll_group *pg;
	const char *name;		/* whose ring, in log lines ("nsid 1", "/dev/ng0n1") */
	int efd;			/* the completion eventfd, watched by pg */
	struct nvt_pg_watch watch;
	struct nvt_pg_poller poller;	/* submits what the backend queued */
	bool ring_ok, watched, poller_on;
	bool fixed_files;		/* the backend's fds are registered files 0.. */
	bool fixed_bufs;		/* its staging memory is registered buffers 0.. */
	uint64_t nr_submits;		/* io_uring_submit() calls, for tests and debugging */
};

/**
 * nvt_uring_ring_create() - set up @r's ring of @entries SQEs with @p
 * (updated by the kernel: cq_entries). IORING_SETUP_COOP_TASKRUN is
 * dropped where the kernel refuses it (before 5.19). Whatever it returns,
 * @r can go to nvt_uring_ring_destroy(). @name must outlive @r.
 * Return: 0 or -errno from io_uring_queue_init_params().
 */
int nvt_uring_ring_create(struct nvt_uring_ring *r, unsigned int entries, struct io_uring_params *p,
			  const struct nvt_uring_ring_ops *ops, struct nvt_poll_group *pg,
			  const char *name);

/* Register @fds as fixed files 0..@nr-1; where the kernel refuses, the plain fds do. */
void nvt_uring_ring_register_files(struct nvt_uring_ring *r, const int *fds, unsigned int nr);

/* Register @iov as fixed buffers 0..@nr-1, pinned once; where memlock refuses, plain addresses do. */
void nvt_uring_ring_register_bufs(struct nvt_uring_ring *r, const struct iovec *iov,
				  unsigned int nr);

/**
 * nvt_uring_ring_enable() - completions wake the poll group: an eventfd
 * registered with the ring, watched by the group.
 * Return: 0 or -errno.
 */
int nvt_uring_ring_enable(struct nvt_uring_ring *r);

/* The poller on, at a channel's first submit: pollers are added on the group's thread. */
static inline void nvt_uring_ring_poller_on(struct nvt_uring_ring *r)
{
	if (r->poller_on)
		return;
	nvt_poll_group_add_poller(r->pg, &r->poller);
	r->poller_on = true;
}

/* Completions, at most NVT_URING_REAP_BATCH, each to ops->complete. Return: how many. */
unsigned int nvt_uring_ring_reap(struct nvt_uring_ring *r);

/**
 * nvt_uring_ring_destroy() - the poller and the watch off, then (with
 * @release) registered files, buffers and the ring itself, then the
 * eventfd. Without @release the ring and what is registered with it stay
 * (commands the kernel never completed may still use them).
 */
void nvt_uring_ring_destroy(struct nvt_uring_ring *r, bool release);

#endif /* NVT_URING_RING_H */
