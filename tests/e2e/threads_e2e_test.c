/* SPDX-License-Identifier: BSD-3-Clause */
/* Queues of one controller on several threads while the admin queue reads SMART, the error log and CSTS: exact counts, and clean under ThreadSanitizer. */
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/host.h"
#include "nvt/control.h"
#include "nvt/loop.h"
#include "nvt_test_target.h"

#define IO_THREADS	2
#define IO_ROUNDS	1500
#define BAD_EVERY	10	/* one refused command (short SGL) per this many */

struct io_thread {
	struct nvt_loop_queue *q;
	int id;
	unsigned int reads, writes, refused;
	pthread_t thread;
	bool joined;
};

static void *io_worker(void *arg)
{
	struct io_thread *t = arg;
	uint8_t buf[8 * 512];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	memset(buf, t->id, sizeof(buf));
	for (unsigned int i = 0; i < IO_ROUNDS; i++) {
		uint64_t slba = (uint64_t)t->id * 4096 + (i % 256) * 8;

		nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, slba, 8);
		if (!nvt_loop_exec(t->q, &sqe, buf, sizeof(buf), &cqe))
			t->writes++;
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, slba, 8);
		if (!nvt_loop_exec(t->q, &sqe, buf, sizeof(buf), &cqe))
			t->reads++;
		if (i % BAD_EVERY == 0) {
			/* A short SGL: a rate-limited warning and an error log entry. */
			nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, slba, 8);
			if (nvt_loop_exec(t->q, &sqe, buf, 100, &cqe) > 0)
				t->refused++;
		}
	}
	return NULL;
}

static uint64_t le128_low(const uint8_t v[16])
{
	uint64_t r = 0;

	for (int i = 7; i >= 0; i--)
		r = r << 8 | v[i];
	return r;
}

static void count_lines(void *arg, const char *line, size_t len)
{
	(*(unsigned int *)arg)++;
}

static void test_smart_errlog_csts_across_threads(void **state)
{
	unsigned int stats_lines;
	struct nvt_target *tgt = nvt_test_target_create();
	struct io_thread t[IO_THREADS];
	struct nvt_loop_ctrl c;
	struct nvme_smart_log smart;
	static uint8_t errlog[64 * 64];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint64_t csts, reads = 0, writes = 0, refused = 0;
	unsigned int polls = 0;

	assert_non_null(tgt);
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, TEST_HOST, IO_THREADS, 16, 0, &c), 0);
	for (int i = 0; i < IO_THREADS; i++) {
		t[i] = (struct io_thread){ .q = c.io[i], .id = i };
		assert_int_equal(pthread_create(&t[i].thread, NULL, io_worker, &t[i]), 0);
	}
	/* The admin queue's thread reads what the I/O threads write, meanwhile. */
	for (int running = 1; running; polls++) {
		nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, sizeof(smart), 0, false);
		assert_int_equal(nvt_loop_exec(c.admin, &sqe, &smart, sizeof(smart), &cqe), 0);
		nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_ERROR, sizeof(errlog), 0, false);
		assert_int_equal(nvt_loop_exec(c.admin, &sqe, errlog, sizeof(errlog), &cqe), 0);
		assert_int_equal(nvt_loop_prop_get(c.admin, NVT_PROP_CSTS, false, &csts), 0);
		assert_true(csts & NVT_CSTS_RDY);
		/* `nvtctl stats` reads every queue's and namespace's counters while they are written (TSan). */
		stats_lines = 0;
		nvt_control_execute(tgt, "stats", 5, count_lines, &stats_lines);
		assert_true(stats_lines > 4);
		running = 0;
		for (int i = 0; i < IO_THREADS; i++) {
			if (!t[i].joined && !pthread_tryjoin_np(t[i].thread, NULL))
				t[i].joined = true;
			if (!t[i].joined)
				running = 1;
		}
	}
	for (int i = 0; i < IO_THREADS; i++) {
		reads += t[i].reads;
		writes += t[i].writes;
		refused += t[i].refused;
	}
	assert_int_equal(reads, IO_THREADS * IO_ROUNDS);
	assert_int_equal(writes, IO_THREADS * IO_ROUNDS);
	assert_int_equal(refused, IO_THREADS * (IO_ROUNDS / BAD_EVERY));
	/* Exact once the threads are done: 8 blocks of 512 bytes per command. */
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, sizeof(smart), 0, false);
	assert_int_equal(nvt_loop_exec(c.admin, &sqe, &smart, sizeof(smart), &cqe), 0);
	assert_int_equal(le128_low(smart.host_reads), reads);
	/* Host Write Commands: every write completed, the refused (short SGL) ones too. */
	assert_int_equal(le128_low(smart.host_writes), writes + refused);
	/* Data units are thousands of 512-byte units, rounded up. */
	assert_int_equal(le128_low(smart.data_units_read), (reads * 8 + 999) / 1000);
	assert_int_equal(le128_low(smart.data_units_written), (writes * 8 + 999) / 1000);
	/* The newest error log entry carries the count of every failure. */
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_ERROR, sizeof(errlog), 0, false);
	assert_int_equal(nvt_loop_exec(c.admin, &sqe, errlog, sizeof(errlog), &cqe), 0);
	assert_int_equal(le64toh(((struct nvme_error_log_page *)errlog)->error_count), refused);

	nvt_loop_ctrl_disconnect(&c);
	nvt_target_destroy(tgt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smart_errlog_csts_across_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
