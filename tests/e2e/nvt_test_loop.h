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
	struct nvt_subsys *subsys;	/* the one connected to, when a test needs its namespaces */
};

/* A new fixture on @tgt with @host connected to @nqn (@nr_io I/O queues of @qsize, KATO @kato_ms). */
static inline struct fixture *nvt_test_fixture_connect(struct nvt_target *tgt, const char *nqn,
							const char *host, uint16_t nr_io,
							uint16_t qsize, uint32_t kato_ms)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(tgt);
	f->tgt = tgt;
	assert_int_equal(nvt_loop_ctrl_connect(tgt, nqn, host, nr_io, qsize, kato_ms, &f->ctrl), 0);
	f->subsys = nvt_target_find_subsys(tgt, nqn);
	return f;
}

/* One ram namespace's format in a test's table; pi_type 0: none (guard/location may be NULL then). */
struct nvt_test_fmt {
	uint32_t block_size;
	uint8_t pi_type;
	const char *guard, *location;
	uint16_t md_size;
};

/*
 * A target of one subsystem @nqn (any host allowed) with ram namespaces
 * 1..@n of @size bytes in the formats @fmts[0..n-1], uuid/nguid byte 0 = nsid.
 */
static inline struct nvt_target *nvt_test_target_ram(const char *nqn, const struct nvt_test_fmt *fmts,
						      unsigned int n, uint64_t size)
{
	struct nvt_ns_cfg *ns = calloc(n, sizeof(*ns));
	struct nvt_subsys_cfg ss = { .serial = "T", .model = "nvt test", .allow_any_host = true,
				     .namespaces = ns, .nr_namespaces = n };
	struct nvt_config cfg = { .subsystems = &ss, .nr_subsystems = 1 };
	struct nvt_target *tgt = NULL;

	assert_non_null(ns);
	snprintf(ss.nqn, sizeof(ss.nqn), "%s", nqn);
	for (unsigned int i = 0; i < n; i++) {
		ns[i].nsid = i + 1;
		strcpy(ns[i].backend, "ram");
		ns[i].size = size;
		ns[i].block_size = fmts[i].block_size;
		ns[i].uuid[0] = ns[i].nguid[0] = (uint8_t)(i + 1);
		ns[i].pi.type = fmts[i].pi_type;
		snprintf(ns[i].pi.guard, sizeof(ns[i].pi.guard), "%s",
			 fmts[i].guard ? fmts[i].guard : "crc16");
		snprintf(ns[i].pi.location, sizeof(ns[i].pi.location), "%s",
			 fmts[i].location ? fmts[i].location : "last");
		ns[i].pi.metadata_size = fmts[i].md_size;
	}
	assert_int_equal(nvt_target_create(&cfg, &tgt), 0);
	free(ns);
	return tgt;
}

/* cmocka setup: nvt_test_target_create(), TEST_HOST connected with 2 I/O queues of 64. */
static inline int nvt_test_setup(void **state)
{
	*state = nvt_test_fixture_connect(nvt_test_target_create(), TEST_NQN, TEST_HOST, 2, 64, 0);
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

/* nvt_loop_exec() of @sqe with @buf on @q: the status without DNR, or -errno; the CQE in @cqe_out if given. */
static inline int nvt_test_exec(struct nvt_loop_queue *q, struct nvt_sqe *sqe, void *buf, size_t len,
				struct nvt_cqe *cqe_out)
{
	struct nvt_cqe cqe;
	int ret = nvt_loop_exec(q, sqe, buf, len, &cqe);

	if (cqe_out)
		*cqe_out = cqe;
	return ret < 0 ? ret : ret & ~NVT_SC_DNR;
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
