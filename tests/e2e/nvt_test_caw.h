/* SPDX-License-Identifier: BSD-3-Clause */
/* Compare-and-write as a counter under threads (each with its own controller), next to plain writers: the atomicity test every backend runs. */
#ifndef NVT_TEST_CAW_H
#define NVT_TEST_CAW_H

#include <pthread.h>
#include <stdio.h>

#include "nvt/host.h"
#include "nvt_test_loop.h"

#define NVT_CW_BLOCKS	8	/* the counter: blocks 0..7 of nsid 1, a uint64 repeated */
#define NVT_CW_MAX	8	/* threads at most */

struct nvt_cw_worker {
	struct nvt_target *tgt;
	const char *nqn;
	int id;
	bool writer;		/* a plain writer on blocks of its own, not a counter */
	int rounds;
	unsigned int swaps, torn, writes, errors;
	pthread_t thread;
};

static inline void nvt_cw_fill(uint8_t *buf, uint64_t v)
{
	for (size_t i = 0; i < NVT_CW_BLOCKS * 512; i += 8)
		memcpy(buf + i, &v, 8);
}

/* Is @buf the same uint64 all through? (*v: which.) */
static inline bool nvt_cw_uniform(const uint8_t *buf, uint64_t *v)
{
	memcpy(v, buf, 8);
	for (size_t i = 8; i < NVT_CW_BLOCKS * 512; i += 8)
		if (memcmp(buf + i, buf, 8))
			return false;
	return true;
}

/* Read the counter, then swap n for n + 1 with a fused pair; or write elsewhere. */
static inline void *nvt_cw_thread(void *arg)
{
	struct nvt_cw_worker *w = arg;
	static __thread uint8_t cur[NVT_CW_BLOCKS * 512], next[NVT_CW_BLOCKS * 512];
	struct nvt_loop_ctrl c;
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	char host[96];

	snprintf(host, sizeof(host), "nqn.2014-08.org.nvmexpress:uuid:cw-%d", w->id);
	if (nvt_loop_ctrl_connect(w->tgt, w->nqn, host, 1, 16, 0, &c)) {
		w->errors++;
		return NULL;
	}
	for (int i = 0; i < w->rounds; i++) {
		struct iovec i1 = { cur, sizeof(cur) }, i2 = { next, sizeof(next) };
		struct done d1 = { 0 }, d2 = { 0 };
		struct nvt_sqe s1, s2;
		uint64_t v;

		if (w->writer) {
			/* Each writer its own blocks: overlapping writes from two hosts are
			 * undefined on any device, and a data race for the sanitizer. */
			nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1,
					1000 + (uint64_t)w->id * 1024 + (uint64_t)(i % 64) * 8,
					NVT_CW_BLOCKS);
			nvt_cw_fill(next, (uint64_t)i);
			if (!nvt_loop_exec(c.io[0], &sqe, next, sizeof(next), &cqe))
				w->writes++;
			continue;
		}
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, NVT_CW_BLOCKS);
		if (nvt_loop_exec(c.io[0], &sqe, cur, sizeof(cur), &cqe)) {
			w->errors++;
			continue;
		}
		if (!nvt_cw_uniform(cur, &v)) {
			w->torn++;
			continue;
		}
		nvt_cw_fill(next, v + 1);
		nvt_host_sqe_rw(&s1, nvme_cmd_compare, 1, 0, NVT_CW_BLOCKS);
		s1.common.flags |= 1;
		nvt_host_sqe_rw(&s2, nvme_cmd_write, 1, 0, NVT_CW_BLOCKS);
		s2.common.flags |= 2;
		if (nvt_loop_submit(c.io[0], &s1, &i1, 1, nvt_test_on_done, &d1) ||
		    nvt_loop_submit(c.io[0], &s2, &i2, 1, nvt_test_on_done, &d2)) {
			w->errors++;
			break;
		}
		/* Another thread may hold the range: the pair completes when this group hears. */
		if (!nvt_test_wait(c.io[0], &d1) || !nvt_test_wait(c.io[0], &d2)) {
			w->errors++;
			break;
		}
		if (!d1.cqe.status && !d2.cqe.status)
			w->swaps++;
	}
	nvt_loop_ctrl_disconnect(&c);
	return NULL;
}

/*
 * @counters threads count on blocks 0..7 of nsid 1 of @nqn (reset to 0
 * through @q first) while @writers threads write elsewhere, @rounds each.
 * Asserts nothing was torn or failed and that the counter ends at exactly
 * the number of successful swaps; *swaps, *writes: the totals.
 */
static inline void nvt_test_cw_counter(struct nvt_target *tgt, struct nvt_loop_queue *q,
				       const char *nqn, int counters, int writers, int rounds,
				       unsigned int *swaps, unsigned int *writes)
{
	struct nvt_cw_worker w[NVT_CW_MAX];
	uint8_t buf[NVT_CW_BLOCKS * 512];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint64_t v;

	assert_true(counters + writers <= NVT_CW_MAX);
	nvt_cw_fill(buf, 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, NVT_CW_BLOCKS);
	assert_int_equal(nvt_loop_exec(q, &sqe, buf, sizeof(buf), &cqe), 0);
	*swaps = *writes = 0;
	for (int i = 0; i < counters + writers; i++) {
		w[i] = (struct nvt_cw_worker){ .tgt = tgt, .nqn = nqn, .id = i, .rounds = rounds,
					       .writer = i >= counters };
		assert_int_equal(pthread_create(&w[i].thread, NULL, nvt_cw_thread, &w[i]), 0);
	}
	for (int i = 0; i < counters + writers; i++) {
		pthread_join(w[i].thread, NULL);
		assert_int_equal(w[i].errors, 0);
		assert_int_equal(w[i].torn, 0);
		*swaps += w[i].swaps;
		*writes += w[i].writes;
	}
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, NVT_CW_BLOCKS);
	assert_int_equal(nvt_loop_exec(q, &sqe, buf, sizeof(buf), &cqe), 0);
	assert_true(nvt_cw_uniform(buf, &v));
	assert_int_equal(v, *swaps);
}

#endif /* NVT_TEST_CAW_H */
