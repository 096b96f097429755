/* SPDX-License-Identifier: BSD-3-Clause */
/* Fused Compare and Write over the loop transport: statuses, pairing rules, and atomicity under threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt_test_caw.h"
#include "nvt_test_loop.h"

/* Submit Compare (FUSE 01b) then Write (FUSE 10b) on @q, back to back. */
static void fused_cw(struct nvt_loop_queue *q, uint64_t slba, uint32_t nlb, void *cmp, void *wr,
		     size_t len, struct done *d1, struct done *d2)
{
	struct iovec i1 = { cmp, len }, i2 = { wr, len };
	struct nvt_sqe s1, s2;

	nvt_host_sqe_rw(&s1, nvme_cmd_compare, 1, slba, nlb);
	s1.common.flags |= 1;
	nvt_host_sqe_rw(&s2, nvme_cmd_write, 1, slba, nlb);
	s2.common.flags |= 2;
	assert_int_equal(nvt_loop_submit(q, &s1, &i1, 1, nvt_test_on_done, d1), 0);
	assert_int_equal(nvt_loop_submit(q, &s2, &i2, 1, nvt_test_on_done, d2), 0);
	/* The pair completes on the queue's poll group: inline on ram, later on a file. */
	assert_true(nvt_test_wait(q, d1));
	assert_true(nvt_test_wait(q, d2));
}

static void test_compare_and_write(void **state)
{
	struct fixture *f = *state;
	uint8_t old[4 * 512], new[4 * 512], other[4 * 512], back[4 * 512];
	struct done d1 = { 0 }, d2 = { 0 };
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	memset(old, 0x11, sizeof(old));
	memset(new, 0x22, sizeof(new));
	memset(other, 0x33, sizeof(other));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 40, 4);
	assert_int_equal(nvt_loop_exec(f->ctrl.io[0], &sqe, old, sizeof(old), &cqe), 0);

	/* Match: the write happens, both succeed. Four blocks at once. */
	fused_cw(f->ctrl.io[0], 40, 4, old, new, sizeof(old), &d1, &d2);
	assert_int_equal(d1.count, 1);
	assert_int_equal(d2.count, 1);
	assert_int_equal(nvt_test_status(&d1), 0);
	assert_int_equal(nvt_test_status(&d2), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 40, 4);
	assert_int_equal(nvt_loop_exec(f->ctrl.io[0], &sqe, back, sizeof(back), &cqe), 0);
	assert_memory_equal(back, new, sizeof(back));

	/* Mismatch: 85h on the compare, "failed fused command" on the write, nothing written. */
	memset(&d1, 0, sizeof(d1));
	memset(&d2, 0, sizeof(d2));
	fused_cw(f->ctrl.io[0], 40, 4, old, other, sizeof(old), &d1, &d2);
	assert_int_equal(nvt_test_status(&d1), NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED));
	assert_int_equal(nvt_test_status(&d2), NVME_SC_FUSED_FAIL);
	assert_int_equal(nvt_loop_exec(f->ctrl.io[0], &sqe, back, sizeof(back), &cqe), 0);
	assert_memory_equal(back, new, sizeof(back));
}

static void test_pairing_rules(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct done d1 = { 0 }, d2 = { 0 };
	struct nvt_sqe s;

	/* A lone second half. */
	nvt_host_sqe_rw(&s, nvme_cmd_write, 1, 0, 1);
	s.common.flags |= 2;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &iov, 1, nvt_test_on_done, &d1), 0);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_FUSED_MISSING);
	/* A first half followed by an ordinary command: it is aborted, the other runs. */
	memset(&d1, 0, sizeof(d1));
	nvt_host_sqe_rw(&s, nvme_cmd_compare, 1, 0, 1);
	s.common.flags |= 1;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &iov, 1, nvt_test_on_done, &d1), 0);
	assert_int_equal(d1.count, 0);		/* held, waiting for its write */
	nvt_host_sqe_rw(&s, nvme_cmd_read, 1, 0, 1);
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &iov, 1, nvt_test_on_done, &d2), 0);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_FUSED_MISSING);
	assert_true(nvt_test_wait(f->ctrl.io[0], &d2));
	assert_int_equal(nvt_test_status(&d2), 0);
	/*
	 * Mismatched halves (different LBA): the Write is the adjacent second
	 * half but invalid, so it fails (invalid field) and the Compare is
	 * aborted because its partner failed (09h), not as missing (0Ah).
	 */
	memset(&d1, 0, sizeof(d1));
	memset(&d2, 0, sizeof(d2));
	nvt_host_sqe_rw(&s, nvme_cmd_compare, 1, 0, 1);
	s.common.flags |= 1;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &iov, 1, nvt_test_on_done, &d1), 0);
	nvt_host_sqe_rw(&s, nvme_cmd_write, 1, 1, 1);
	s.common.flags |= 2;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &iov, 1, nvt_test_on_done, &d2), 0);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_FUSED_FAIL);
	assert_int_equal(nvt_test_status(&d2), NVME_SC_INVALID_FIELD);
	/* Only Compare may be a first half; FUSE 11b is reserved. */
	memset(&d1, 0, sizeof(d1));
	nvt_host_sqe_rw(&s, nvme_cmd_read, 1, 0, 1);
	s.common.flags |= 1;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &iov, 1, nvt_test_on_done, &d1), 0);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_INVALID_FIELD);
	nvt_host_sqe_rw(&s, nvme_cmd_compare, 1, 0, 1);
	s.common.flags |= 3;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &iov, 1, nvt_test_on_done, &d1), 0);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_INVALID_FIELD);
	/* More than ACWU blocks. */
	{
		static uint8_t big[(NVT_ACWU + 1) * 512];
		struct iovec bi = { big, sizeof(big) };

		nvt_host_sqe_rw(&s, nvme_cmd_compare, 3, 0, 33);	/* 33 x 4 KiB > 128 KiB MDTS */
		s.common.flags |= 1;
		assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &s, &bi, 1, nvt_test_on_done, &d1), 0);
		assert_int_equal(nvt_test_status(&d1), NVME_SC_INVALID_FIELD);
	}
}

/*
 * Atomicity: threads, each with its own controller and queue, use
 * compare-and-write on one 8-block range as a counter (read, then swap
 * value n for n + 1), while other threads write elsewhere. The counter must
 * end at exactly the number of successful swaps and never be torn.
 */
#define CW_THREADS	3
#define CW_ROUNDS	2000

static void test_concurrent_counter(void **state)
{
	struct fixture *f = *state;
	unsigned int swaps, writes;

	nvt_test_cw_counter(f->tgt, f->ctrl.io[0], TEST_NQN, CW_THREADS, 2, CW_ROUNDS, &swaps,
			    &writes);
	assert_true(swaps > 0);
	/* The plain writers were never turned away. */
	assert_int_equal(writes, 2 * CW_ROUNDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compare_and_write, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_pairing_rules, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_counter, nvt_test_setup, nvt_test_teardown),
	};

	nvt_log_set_level(NVT_LOG_OFF);
	return cmocka_run_group_tests_name("fused_e2e", tests, NULL, NULL);
}
