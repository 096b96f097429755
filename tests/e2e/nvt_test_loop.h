/* SPDX-License-Identifier: BSD-3-Clause */
/* A cmocka fixture for e2e tests (the test target with a loop controller of two I/O queues), a completion recorder, and waits that hold for any backend. */
#ifndef NVT_TEST_LOOP_H
#define NVT_TEST_LOOP_H

/* Include after <cmocka.h>. */
#include <errno.h>

#include "nvt/loop.h"
#include "nvt_test_target.h"

struct fixture {
	struct nvt_target *tgt;
	struct nvt_loop_ctrl ctrl;
};

/* cmocka setup: nvt_test_target_create(), TEST_HOST connected with 2 I/O queues of 64. */
static inline int nvt_test_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->tgt = nvt_test_target_create();
	assert_non_null(f->tgt);
	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 2, 64, 0, &f->ctrl), 0);
	*state = f;
	return 0;
}

static inline int nvt_test_teardown(void **state)
{
	struct fixture *f = *state;

	nvt_loop_ctrl_disconnect(&f->ctrl);
	nvt_target_destroy(f->tgt);
	free(f);
	return 0;
}

/* What nvt_test_on_done() saw of one command: its last CQE and how often it completed. */
struct done {
	struct nvt_cqe cqe;
	int count;
};

/* An nvt_loop_done_fn for nvt_loop_submit(): @arg is a struct done. */
static inline void nvt_test_on_done(void *arg, const struct nvt_cqe *cqe)
{
	struct done *d = arg;

	d->cqe = *cqe;
	d->count++;
}

/* The recorded status without DNR. */
static inline uint16_t nvt_test_status(const struct done *d)
{
	return (uint16_t)((le16toh(d->cqe.status) >> 1) & ~NVT_SC_DNR);
}

/*
 * Waiting for completions. A backend may complete inline (ram) or later,
 * on the queue's poll group (file): these drive the group until what the
 * test waits for has happened, so a test holds for either. Each gives up
 * after NVT_TEST_WAIT_MS without progress rather than hang.
 */
#define NVT_TEST_WAIT_MS	10000

/* Poll @q until @d has completed @count times. Return: true if it did. */
static inline bool nvt_test_wait_n(struct nvt_loop_queue *q, const struct done *d, int count)
{
	uint64_t deadline = nvt_now_ns() + NVT_TEST_WAIT_MS * 1000000ull;

	while (d->count < count && nvt_now_ns() < deadline)
		if (nvt_loop_queue_poll(q, 10) < 0)
			break;
	return d->count >= count;
}

/* Poll @q until @d has completed. Return: true if it did. */
static inline bool nvt_test_wait(struct nvt_loop_queue *q, const struct done *d)
{
	return nvt_test_wait_n(q, d, 1);
}

/*
 * Poll @q until at most @left commands are outstanding (held AERs, a
 * fused half waiting for its partner). Return: true if it got there.
 */
static inline bool nvt_test_drain_to(struct nvt_loop_queue *q, unsigned int left)
{
	uint64_t deadline = nvt_now_ns() + NVT_TEST_WAIT_MS * 1000000ull;
	unsigned int last = nvt_loop_queue_outstanding(q);

	while (nvt_loop_queue_outstanding(q) > left && nvt_now_ns() < deadline) {
		if (nvt_loop_queue_poll(q, 10) < 0)
			break;
		if (nvt_loop_queue_outstanding(q) != last) {
			last = nvt_loop_queue_outstanding(q);
			deadline = nvt_now_ns() + NVT_TEST_WAIT_MS * 1000000ull;
		}
	}
	return nvt_loop_queue_outstanding(q) <= left;
}

/* Poll @q until nothing is outstanding. Return: true if it got there. */
static inline bool nvt_test_drain(struct nvt_loop_queue *q)
{
	return nvt_test_drain_to(q, 0);
}

/*
 * nvt_loop_submit(), and while every slot is in use (completions not
 * back yet), poll @q and try again. Return: as nvt_loop_submit(), never
 * -EBUSY unless nothing completed for NVT_TEST_WAIT_MS.
 */
static inline int nvt_test_submit(struct nvt_loop_queue *q, const struct nvt_sqe *sqe,
				  const struct iovec *iov, unsigned int iovcnt,
				  nvt_loop_done_fn done, void *arg)
{
	uint64_t deadline = nvt_now_ns() + NVT_TEST_WAIT_MS * 1000000ull;
	int ret;

	while ((ret = nvt_loop_submit(q, sqe, iov, iovcnt, done, arg)) == -EBUSY &&
	       nvt_now_ns() < deadline)
		if (nvt_loop_queue_poll(q, 10) < 0)
			break;
	return ret;
}

#endif /* NVT_TEST_LOOP_H */
