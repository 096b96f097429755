/* SPDX-License-Identifier: BSD-3-Clause */
/* A cmocka fixture for e2e tests (the test target with a loop controller of two I/O queues) and a completion recorder. */
#ifndef NVT_TEST_LOOP_H
#define NVT_TEST_LOOP_H

/* Include after <cmocka.h>. */
#include "nvt/loop.h"
#include "nvt_test_target.h"

struct fixture {
	struct nvt_target *tgt;
	struct nvt_loop_ctrl ctrl;
};

/* cmocka setup: TEST_NQN served in memory, TEST_HOST connected with 2 I/O queues of 64. */
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

#endif /* NVT_TEST_LOOP_H */
