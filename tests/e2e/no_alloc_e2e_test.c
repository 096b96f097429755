/* SPDX-License-Identifier: BSD-3-Clause */
/* Proves the I/O path allocates nothing: every allocator call from nvt's code is counted during a burst of loop I/O. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"
#include "nvt_test_loop.h"

#include "../nvt_alloc_count.h"

static void done_count(void *arg, const struct nvt_cqe *cqe)
{
	unsigned int *failures = arg;

	if (cqe->status)
		(*failures)++;
}

static void test_io_burst_allocates_nothing(void **state)
{
	static uint8_t buf[64][4096];
	struct nvt_loop_ctrl ctrl;
	struct nvt_target *tgt;
	unsigned int failures = 0;
	struct nvt_sqe sqe;
	unsigned long before;

	tgt = nvt_test_target_create();
	assert_non_null(tgt);
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, TEST_HOST, 2, 64, 0, &ctrl), 0);
	/* The counter is live: connecting a controller did allocate. */
	assert_true(nr_allocs > 0);

	before = nr_allocs;
	for (unsigned int i = 0; i < 20000; i++) {
		uint64_t lba = (i * 7919u) % (TEST_NS_SIZE / 4096);
		uint8_t opc = i % 3 ? nvme_cmd_read : nvme_cmd_write;
		struct iovec iov = { buf[i % 64], 4096 };

		/* A backend completing later fills the queue: submit waits for a slot. */
		nvt_host_sqe_rw(&sqe, opc, 3, lba, 1);
		assert_int_equal(nvt_test_submit(ctrl.io[i % 2], &sqe, &iov, 1, done_count,
						 &failures), 0);
		/* Failures allocate nothing either: an out-of-range read every so often. */
		if (i % 1000 == 0) {
			nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, TEST_NS_SIZE / 4096, 1);
			assert_int_equal(nvt_test_submit(ctrl.io[0], &sqe, &iov, 1, done_count,
							 &failures), 0);
		}
		if (i % 500 == 0) {
			nvt_host_sqe_init(&sqe, nvme_cmd_flush, 3);
			assert_int_equal(nvt_test_submit(ctrl.io[1], &sqe, NULL, 0, done_count,
							 &failures), 0);
		}
	}
	assert_true(nvt_test_drain(ctrl.io[0]));
	assert_true(nvt_test_drain(ctrl.io[1]));
	assert_int_equal(nr_allocs - before, 0);
	assert_int_equal(failures, 20);

	nvt_loop_ctrl_disconnect(&ctrl);
	nvt_target_destroy(tgt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_burst_allocates_nothing),
	};

	nvt_log_set_level(NVT_LOG_ERR);
	return cmocka_run_group_tests_name("no_alloc_e2e", tests, NULL, NULL);
}
