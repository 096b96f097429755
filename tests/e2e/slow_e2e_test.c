/* SPDX-License-Identifier: BSD-3-Clause */
/* Teardown while a backend still holds commands: a slow backend built here completes every bio late, from a timer on its poll group, while queues, controllers and the target go away. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "nvt/backend.h"
#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/util.h"
#include "nvt_test_loop.h"

#define SLOW_NSID	1		/* nvt_test_config()'s 512-byte namespace, made slow */
#define SLOW_MAX	1024		/* bios one channel holds at once */
#define DELAY_MS	50

/* ---- error lines: every nvt_err() of the target is counted (-Wl,--wrap=nvt_log) ---- */

void __wrap_nvt_log(enum nvt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static _Atomic unsigned int nr_errors;
static char last_error[256];

void __wrap_nvt_log(enum nvt_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (level == NVT_LOG_ERR) {
		nr_errors++;
		vsnprintf(last_error, sizeof(last_error), fmt, ap);
		fprintf(stderr, "nvt error: %s\n", last_error);
	}
	va_end(ap);
}

/* ---- the slow backend: the ram backend's store, each bio done DELAY_MS late ---- */

struct slow_chan {
	struct nvt_poll_group *pg;
	int tfd;			/* CLOCK_MONOTONIC, as nvt_now_ns() */
	struct nvt_pg_watch watch;
	struct {
		struct nvt_bio *bio;
		uint64_t due_ns;
	} q[SLOW_MAX];			/* FIFO: every bio has the same delay */
	unsigned int head, n;
};

/* Atomics: one test drives two queues' poll groups from two threads. */
static struct {
	_Atomic unsigned int delay_ms;
	_Atomic uint64_t submitted, completed;
	_Atomic uint64_t dropped;	/* bios a channel still held when it was destroyed */
	_Atomic unsigned int nr_chans;
} slow;

static void slow_arm(struct slow_chan *c)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (c->n) {
		uint64_t due = c->q[c->head].due_ns;

		its.it_value.tv_sec = (time_t)(due / 1000000000ull);
		its.it_value.tv_nsec = (long)(due % 1000000000ull);
		if (!due)
			its.it_value.tv_nsec = 1;
	}
	assert_int_equal(timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL), 0);
}

/* The timer: every bio that is due goes to the ram backend now, which completes it in place. */
static void slow_fire(struct nvt_pg_watch *w)
{
	struct slow_chan *c = container_of(w, struct slow_chan, watch);
	uint64_t now = nvt_now_ns(), ticks;

	if (read(c->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		fail_msg("timerfd: %s", strerror(errno));
	while (c->n && c->q[c->head].due_ns <= now) {
		struct nvt_bio *bio = c->q[c->head].bio;

		c->head = (c->head + 1) % SLOW_MAX;
		c->n--;
		slow.completed++;
		/* May submit the next chunk of an emulated command, or a compare-and-write's write, here. */
		nvt_ram_backend_ops.submit(bio, NULL);
	}
	slow_arm(c);
}

static void slow_submit(struct nvt_bio *bio, void *chan)
{
	struct slow_chan *c = chan;

	assert_true(c->n < SLOW_MAX);
	c->q[(c->head + c->n) % SLOW_MAX].bio = bio;
	c->q[(c->head + c->n) % SLOW_MAX].due_ns = nvt_now_ns() + slow.delay_ms * 1000000ull;
	c->n++;
	slow.submitted++;
	if (c->n == 1)
		slow_arm(c);
}

static int slow_chan_create(struct nvt_ns *ns, struct nvt_poll_group *pg, void **chan)
{
	struct slow_chan *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->pg = pg;
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->tfd < 0) {
		free(c);
		return -errno;
	}
	c->watch = (struct nvt_pg_watch){ .fd = c->tfd, .fn = slow_fire };
	ret = nvt_poll_group_add(pg, &c->watch);
	if (ret) {
		close(c->tfd);
		free(c);
		return ret;
	}
	slow.nr_chans++;
	*chan = c;
	return 0;
}

static void slow_chan_destroy(struct nvt_ns *ns, void *chan)
{
	struct slow_chan *c = chan;

	/* The contract: nothing in flight. What is still here would never complete. */
	slow.dropped += c->n;
	nvt_poll_group_del(c->pg, &c->watch);
	close(c->tfd);
	free(c);
	slow.nr_chans--;
}

static void slow_close(struct nvt_ns *ns)
{
	nvt_ram_backend_ops.close(ns);
}

/* No map: every bio, emulated chunks included, goes through submit() and waits. */
static const struct nvt_backend_ops slow_ops = {
	.name = "slow",
	.flags = NVT_BE_METADATA | NVT_BE_VOLATILE | NVT_BE_WRITE_ZEROES | NVT_BE_DEALLOCATE |
		 NVT_BE_COPY,
	.close = slow_close,
	.chan_create = slow_chan_create,
	.chan_destroy = slow_chan_destroy,
	.submit = slow_submit,
};

/* ---- fixture ---- */

struct sfix {
	struct nvt_target *tgt;
	struct nvt_subsys *subsys;
	struct nvt_loop_ctrl ctrl;
};

/*
 * The test target with nsid 1 made slow: its ram store stays (be_priv),
 * its ops are swapped before any I/O queue exists, so every channel it
 * gets (nvt_target_get_pg -> nvt_target_attach_pg -> nvt_ns_chan_create,
 * when a loop I/O queue is made) is a slow one.
 */
static int setup(void **state)
{
	struct sfix *f = calloc(1, sizeof(*f));
	struct nvt_ns *ns;

	slow.submitted = slow.completed = slow.dropped = 0;
	slow.nr_chans = 0;
	slow.delay_ms = DELAY_MS;
	nr_errors = 0;
	f->tgt = nvt_test_target_create();
	assert_non_null(f->tgt);
	f->subsys = nvt_target_find_subsys(f->tgt, TEST_NQN);
	ns = f->subsys->ns[SLOW_NSID];
	assert_ptr_equal(ns->be, &nvt_ram_backend_ops);
	assert_int_equal(atomic_load(&ns->nr_chans), 0);
	ns->be = &slow_ops;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct sfix *f = *state;

	nvt_loop_ctrl_disconnect(&f->ctrl);
	nvt_target_destroy(f->tgt);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static int run(struct nvt_loop_queue *q, struct nvt_sqe *sqe, void *buf, size_t len)
{
	struct nvt_cqe cqe;
	int ret = nvt_loop_exec(q, sqe, buf, len, &cqe);

	return ret < 0 ? ret : ret & ~NVT_SC_DNR;
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/*
 * Work for a slow namespace, all left in the backend: @nr 8-block writes
 * from LBA @lba of @data, then a Write Zeroes, a Deallocate, a Copy of
 * blocks written before (@prior), a Flush and a fused Compare and Write
 * over the first write's range, which waits for that write under the
 * range lock. @d: nr + 6 records.
 */
struct work {
	uint8_t data[16][8 * 512];
	uint8_t caw_new[8 * 512];
	struct nvme_dsm_range dsm;
	struct nvt_copy_desc0 copy;
	struct done d[16 + 6];
	unsigned int nr;
};

static unsigned int submit_work(struct nvt_loop_queue *q, struct work *w, unsigned int nr,
				uint64_t lba, uint8_t seed)
{
	struct iovec iov;
	struct nvt_sqe sqe, s1, s2;
	unsigned int n = 0;

	memset(w->d, 0, sizeof(w->d));
	w->nr = nr;
	for (unsigned int i = 0; i < nr; i++) {
		fill(w->data[i], sizeof(w->data[i]), (uint8_t)(seed + i));
		iov = (struct iovec){ w->data[i], sizeof(w->data[i]) };
		nvt_host_sqe_rw(&sqe, nvme_cmd_write, SLOW_NSID, lba + 8 * i, 8);
		assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &w->d[n++]), 0);
	}
	nvt_host_sqe_rw(&sqe, nvme_cmd_write_zeroes, SLOW_NSID, lba + 8 * nr, 8);
	assert_int_equal(nvt_loop_submit(q, &sqe, NULL, 0, nvt_test_on_done, &w->d[n++]), 0);
	w->dsm = (struct nvme_dsm_range){ .slba = htole64(lba + 8 * nr + 8), .nlb = htole32(8) };
	iov = (struct iovec){ &w->dsm, sizeof(w->dsm) };
	nvt_host_sqe_init(&sqe, nvme_cmd_dsm, SLOW_NSID);
	sqe.common.cdw11 = htole32(NVME_DSMGMT_AD);
	assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &w->d[n++]), 0);
	/* Copy 8 blocks from LBA 0 (written beforehand) behind the rest. */
	w->copy = (struct nvt_copy_desc0){ .slba = htole64(0), .nlb = htole16(7) };
	iov = (struct iovec){ &w->copy, sizeof(w->copy) };
	nvt_host_sqe_init(&sqe, nvme_cmd_copy, SLOW_NSID);
	sqe.common.cdw10 = htole32((uint32_t)(lba + 8 * nr + 16));
	assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &w->d[n++]), 0);
	nvt_host_sqe_init(&sqe, nvme_cmd_flush, SLOW_NSID);
	assert_int_equal(nvt_loop_submit(q, &sqe, NULL, 0, nvt_test_on_done, &w->d[n++]), 0);
	/* Compare with what the first write is putting there, then swap it. */
	fill(w->caw_new, sizeof(w->caw_new), (uint8_t)(seed + 0x80));
	nvt_host_sqe_rw(&s1, nvme_cmd_compare, SLOW_NSID, lba, 8);
	s1.common.flags |= 1;
	nvt_host_sqe_rw(&s2, nvme_cmd_write, SLOW_NSID, lba, 8);
	s2.common.flags |= 2;
	iov = (struct iovec){ w->data[0], sizeof(w->data[0]) };
	assert_int_equal(nvt_loop_submit(q, &s1, &iov, 1, nvt_test_on_done, &w->d[n++]), 0);
	iov = (struct iovec){ w->caw_new, sizeof(w->caw_new) };
	assert_int_equal(nvt_loop_submit(q, &s2, &iov, 1, nvt_test_on_done, &w->d[n++]), 0);
	return n;
}

/* Every command of @w completed exactly once, all successfully. */
static void expect_work_done(const struct work *w, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(w->d[i].count, 1);
		assert_int_equal(nvt_test_status(&w->d[i]), 0);
	}
}

static void expect_none_done(const struct work *w, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(w->d[i].count, 0);
}

/* What submit_work() left on the medium, read on @q (fast now). */
static void expect_work_stored(struct nvt_loop_queue *q, const struct work *w, uint64_t lba,
			       const uint8_t *prior)
{
	uint8_t back[8 * 512], zero[8 * 512] = { 0 };
	struct nvt_sqe sqe;

	slow.delay_ms = 1;
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, SLOW_NSID, lba, 8);
	assert_int_equal(run(q, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, w->caw_new, sizeof(back));
	for (unsigned int i = 1; i < w->nr; i++) {
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, SLOW_NSID, lba + 8 * i, 8);
		assert_int_equal(run(q, &sqe, back, sizeof(back)), 0);
		assert_memory_equal(back, w->data[i], sizeof(back));
	}
	for (unsigned int i = 0; i < 2; i++) {
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, SLOW_NSID, lba + 8 * (w->nr + i), 8);
		assert_int_equal(run(q, &sqe, back, sizeof(back)), 0);
		assert_memory_equal(back, zero, sizeof(back));
	}
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, SLOW_NSID, lba + 8 * w->nr + 16, 8);
	assert_int_equal(run(q, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, prior, sizeof(back));
}

/* LBA 0..7: the copy source every test writes first. */
static void write_prior(struct nvt_loop_queue *q, uint8_t *prior)
{
	struct nvt_sqe sqe;

	fill(prior, 8 * 512, 0x5c);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, SLOW_NSID, 0, 8);
	assert_int_equal(run(q, &sqe, prior, 8 * 512), 0);
}

/* An I/O queue @qid joining controller @ctrl again (the host reconnecting one queue). */
static struct nvt_loop_queue *queue_join(struct sfix *f, uint16_t qid, const char *host,
					 uint16_t cntlid)
{
	struct nvt_loop_queue *q;
	struct nvt_cqe cqe;

	assert_int_equal(nvt_loop_queue_create(f->tgt, qid, 32, &q), 0);
	assert_int_equal(nvt_loop_connect_queue(q, qid, 31, TEST_NQN, host, cntlid, 0, &cqe), 0);
	return q;
}

/* ---- the tests ---- */

/* The host drops an I/O queue with work in the backend: the queue goes only after it drained. */
static void test_queue_destroy_waits(void **state)
{
	struct sfix *f = *state;
	static struct work w;
	uint8_t prior[8 * 512];
	struct nvt_loop_queue *q;
	unsigned int n;
	uint64_t t0;

	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 1, 64, 0, &f->ctrl), 0);
	write_prior(f->ctrl.io[0], prior);
	n = submit_work(f->ctrl.io[0], &w, 16, 64, 1);
	assert_int_equal(nvt_loop_queue_outstanding(f->ctrl.io[0]), n);
	expect_none_done(&w, n);
	assert_true(slow.submitted > slow.completed);

	t0 = nvt_now_ns();
	nvt_loop_queue_destroy(f->ctrl.io[0]);
	f->ctrl.io[0] = NULL;
	/* Every command came back, once, before the queue's memory went. */
	expect_work_done(&w, n);
	assert_true(nvt_now_ns() - t0 >= (DELAY_MS - 5) * 1000000ull);
	assert_int_equal(slow.completed, slow.submitted);
	assert_int_equal(nr_errors, 0);

	/* It all reached the medium: read back on a new queue of the same controller. */
	q = queue_join(f, 1, TEST_HOST, f->ctrl.cntlid);
	expect_work_stored(q, &w, 64, prior);
	nvt_loop_queue_destroy(q);
	assert_int_equal(slow.completed, slow.submitted);
	assert_int_equal(nr_errors, 0);
}

static unsigned int aer_count;
static uint16_t aer_status;

static void aer_done(void *arg, const struct nvt_cqe *cqe)
{
	aer_count++;
	aer_status = (uint16_t)((le16toh(cqe->status) >> 1) & ~NVT_SC_DNR);
}

/* Keep-alive expires with work in the backend on both queues: it completes later, nothing breaks. */
static void test_keep_alive_expiry(void **state)
{
	struct sfix *f = *state;
	static struct work w0, w1;
	uint8_t prior[8 * 512], buf[512];
	struct iovec iov = { buf, sizeof(buf) };
	struct nvt_loop_ctrl c2;
	struct nvt_sqe sqe;
	struct done lone = { 0 };
	unsigned int n0, n1;

	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 2, 64, 5000, &f->ctrl),
			 0);
	write_prior(f->ctrl.io[0], prior);
	aer_count = 0;
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	assert_int_equal(nvt_loop_submit(f->ctrl.admin, &sqe, NULL, 0, aer_done, NULL), 0);
	n0 = submit_work(f->ctrl.io[0], &w0, 8, 64, 2);
	n1 = submit_work(f->ctrl.io[1], &w1, 8, 256, 3);
	/* And a fused Compare whose Write never comes: the core, not the backend, holds it. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_compare, SLOW_NSID, 1000, 1);
	sqe.common.flags |= 1;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[1], &sqe, &iov, 1, nvt_test_on_done, &lone), 0);
	assert_int_equal(lone.count, 0);

	assert_int_equal(nvt_target_check_keep_alive(f->tgt, nvt_now_ns() + 10000000000ull), 1);
	assert_null(f->subsys->ctrls);
	assert_false(nvt_loop_queue_live(f->ctrl.admin));
	assert_false(nvt_loop_queue_live(f->ctrl.io[0]));
	assert_false(nvt_loop_queue_live(f->ctrl.io[1]));
	/* What the core held is failed at once; what the backend holds is still there. */
	assert_int_equal(aer_count, 1);
	assert_int_equal(aer_status, NVME_SC_ABORT_QUEUE);
	assert_int_equal(lone.count, 1);
	assert_int_equal(nvt_test_status(&lone), NVME_SC_ABORT_QUEUE);
	assert_int_equal(nvt_loop_queue_outstanding(f->ctrl.io[0]), n0);
	assert_int_equal(nvt_loop_queue_outstanding(f->ctrl.io[1]), n1);
	expect_none_done(&w0, n0);
	expect_none_done(&w1, n1);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, SLOW_NSID, 0, 1);
	assert_int_equal(nvt_loop_submit(f->ctrl.io[0], &sqe, &iov, 1, nvt_test_on_done, &lone),
			 -ENOTCONN);

	/* The host keeps polling one queue (its commands come back), and just drops the other. */
	assert_true(nvt_test_drain(f->ctrl.io[0]));
	expect_work_done(&w0, n0);
	nvt_loop_queue_destroy(f->ctrl.io[1]);
	f->ctrl.io[1] = NULL;
	expect_work_done(&w1, n1);
	nvt_loop_ctrl_disconnect(&f->ctrl);
	assert_int_equal(aer_count, 1);
	assert_int_equal(nvt_target_check_keep_alive(f->tgt, nvt_now_ns() + 20000000000ull), 0);
	assert_int_equal(slow.completed, slow.submitted);
	assert_int_equal(nr_errors, 0);

	/* A new controller finds what the dead one's commands stored. */
	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 1, 16, 0, &c2), 0);
	expect_work_stored(c2.io[0], &w0, 64, prior);
	expect_work_stored(c2.io[0], &w1, 256, prior);
	nvt_loop_ctrl_disconnect(&c2);
	assert_int_equal(nr_errors, 0);
}

/* The admin queue goes first (the controller dies with it) while I/O queues have work in the backend. */
static void test_admin_queue_first(void **state)
{
	struct sfix *f = *state;
	static struct work w0, w1;
	uint8_t prior[8 * 512];
	unsigned int n0, n1;

	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 2, 64, 0, &f->ctrl), 0);
	write_prior(f->ctrl.io[1], prior);
	n0 = submit_work(f->ctrl.io[0], &w0, 4, 64, 4);
	n1 = submit_work(f->ctrl.io[1], &w1, 12, 512, 5);

	nvt_loop_queue_destroy(f->ctrl.admin);
	f->ctrl.admin = NULL;
	assert_null(f->subsys->ctrls);
	assert_false(nvt_loop_queue_live(f->ctrl.io[0]));
	assert_false(nvt_loop_queue_live(f->ctrl.io[1]));
	assert_int_equal(nvt_loop_queue_outstanding(f->ctrl.io[0]), n0);
	assert_int_equal(nvt_loop_queue_outstanding(f->ctrl.io[1]), n1);
	expect_none_done(&w0, n0);

	/* One queue dropped at once, the other polled empty first. */
	nvt_loop_queue_destroy(f->ctrl.io[0]);
	f->ctrl.io[0] = NULL;
	expect_work_done(&w0, n0);
	assert_true(nvt_test_drain(f->ctrl.io[1]));
	expect_work_done(&w1, n1);
	nvt_loop_ctrl_disconnect(&f->ctrl);
	assert_int_equal(slow.completed, slow.submitted);
	assert_int_equal(nr_errors, 0);

	{
		struct nvt_loop_ctrl c2;

		assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 1, 16, 0, &c2), 0);
		expect_work_stored(c2.io[0], &w0, 64, prior);
		expect_work_stored(c2.io[0], &w1, 512, prior);
		nvt_loop_ctrl_disconnect(&c2);
	}
	assert_int_equal(nr_errors, 0);
}

/*
 * Target shutdown with work in the backend, as nvtd does it: controllers
 * first (nvt_target_stop), the transport's queues drain and go, then
 * nvt_target_destroy. Two hosts, a queue each.
 */
static void test_target_destroy(void **state)
{
	struct sfix *f = *state;
	static struct work w0, w1;
	struct nvt_loop_ctrl c2;
	uint8_t prior[8 * 512];
	unsigned int n0, n1;

	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 1, 64, 0, &f->ctrl), 0);
	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST_OK, 1, 64, 0, &c2), 0);
	write_prior(f->ctrl.io[0], prior);
	n0 = submit_work(f->ctrl.io[0], &w0, 16, 64, 6);
	n1 = submit_work(c2.io[0], &w1, 16, 512, 7);

	nvt_target_stop(f->tgt);
	assert_null(f->subsys->ctrls);
	assert_false(nvt_loop_queue_live(f->ctrl.io[0]));
	assert_false(nvt_loop_queue_live(c2.io[0]));
	expect_none_done(&w0, n0);
	expect_none_done(&w1, n1);

	nvt_loop_ctrl_disconnect(&f->ctrl);
	nvt_loop_ctrl_disconnect(&c2);
	expect_work_done(&w0, n0);
	expect_work_done(&w1, n1);
	nvt_target_destroy(f->tgt);
	f->tgt = NULL;
	/* No channel went with a bio in it, no queue with a command; every one came back. */
	assert_int_equal(slow.dropped, 0);
	assert_int_equal(slow.nr_chans, 0);
	assert_int_equal(slow.completed, slow.submitted);
	assert_int_equal(nr_errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_queue_destroy_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_alive_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_queue_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_destroy, setup, teardown),
	};

	/* Errors reach __wrap_nvt_log (counted); warnings and chatter are dropped there. */
	nvt_log_set_level(NVT_LOG_WARN);
	return cmocka_run_group_tests_name("slow_e2e", tests, NULL, NULL);
}
