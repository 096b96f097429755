/* SPDX-License-Identifier: BSD-3-Clause */
/* A hostile host over the loop transport: racing Connects, broken fused pairs, wrapping lengths, state that changes under a command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/host.h"
#include "nvt_test_loop.h"

static unsigned int nr_ctrls(struct nvt_target *tgt, const char *nqn)
{
	struct nvt_subsys *s = nvt_target_find_subsys(tgt, nqn);
	unsigned int n = 0;

	for (struct nvt_ctrl *c = s->ctrls; c; c = c->next)
		n++;
	return n;
}

static void connect_sqe(struct nvt_sqe *sqe, uint16_t qid, uint16_t sqsize, uint32_t kato)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->fabrics.opcode = NVT_OPC_FABRICS;
	sqe->fabrics.fctype = NVT_FCTYPE_CONNECT;
	sqe->connect.qid = htole16(qid);
	sqe->connect.sqsize = htole16(sqsize);
	sqe->connect.kato = htole32(kato);
}

static void connect_data(struct nvmf_connect_data *d, const char *host, uint16_t cntlid)
{
	memset(d, 0, sizeof(*d));
	d->cntlid = htole16(cntlid);
	strcpy(d->subsysnqn, TEST_NQN);
	strcpy(d->hostnqn, host);
}

/*
 * Class 1: two Connects on one admin queue, the second parsed while the
 * first's data is still in flight. Only one controller may come of it, and
 * it must go away with the queue (ASan: no leak, no use after free when its
 * keep-alive would have expired).
 */
static void test_two_connects_in_flight(void **state)
{
	struct fixture *f = *state;
	struct nvt_loop_queue *q;
	struct nvmf_connect_data d1, d2;
	struct iovec i1 = { &d1, sizeof(d1) }, i2 = { &d2, sizeof(d2) };
	struct nvt_loop_held *h1, *h2;
	struct done c1 = { 0 }, c2 = { 0 };
	struct nvt_sqe sqe;
	unsigned int before = nr_ctrls(f->tgt, TEST_NQN);

	assert_int_equal(nvt_loop_queue_create(f->tgt, 0, NVT_AQ_DEPTH, &q), 0);
	connect_sqe(&sqe, 0, NVT_AQ_DEPTH - 1, 1000);
	connect_data(&d1, TEST_HOST, 0xffff);
	connect_data(&d2, TEST_HOST, 0xffff);
	assert_int_equal(nvt_loop_submit_held(q, &sqe, &i1, 1, nvt_test_on_done, &c1, &h1), 0);
	assert_int_equal(nvt_loop_submit_held(q, &sqe, &i2, 1, nvt_test_on_done, &c2, &h2), 0);
	assert_non_null(h1);
	assert_non_null(h2);
	nvt_loop_release(h1);
	nvt_loop_release(h2);
	assert_int_equal(c1.count, 1);
	assert_int_equal(c2.count, 1);
	assert_int_equal(nvt_test_status(&c1), 0);
	assert_int_equal(nvt_test_status(&c2), NVME_SC_CMD_SEQ_ERROR);
	assert_int_equal(nr_ctrls(f->tgt, TEST_NQN), before + 1);
	nvt_loop_queue_destroy(q);
	assert_int_equal(nr_ctrls(f->tgt, TEST_NQN), before);
	/* Long after its keep-alive would have expired: nothing left to walk. */
	assert_int_equal(nvt_target_check_keep_alive(f->tgt, nvt_now_ns() + 3600ull * 1000000000ull), 0);

	/* The same on an I/O queue (qid 2, given up by the host first): one install, the second refused. */
	nvt_loop_queue_destroy(f->ctrl.io[1]);
	f->ctrl.io[1] = NULL;
	f->ctrl.nr_io = 1;
	assert_int_equal(nvt_loop_queue_create(f->tgt, 2, 16, &q), 0);
	memset(&c1, 0, sizeof(c1));
	memset(&c2, 0, sizeof(c2));
	connect_sqe(&sqe, 2, 15, 0);
	connect_data(&d1, TEST_HOST, f->ctrl.cntlid);
	connect_data(&d2, TEST_HOST, f->ctrl.cntlid);
	assert_int_equal(nvt_loop_submit_held(q, &sqe, &i1, 1, nvt_test_on_done, &c1, &h1), 0);
	assert_int_equal(nvt_loop_submit_held(q, &sqe, &i2, 1, nvt_test_on_done, &c2, &h2), 0);
	nvt_loop_release(h1);
	nvt_loop_release(h2);
	assert_int_equal(nvt_test_status(&c1), 0);
	assert_int_equal(nvt_test_status(&c2), NVME_SC_CMD_SEQ_ERROR);
	nvt_loop_queue_destroy(q);
}

/* A state check made at parse is made again after the data arrived. */
static void test_disconnect_under_a_write(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct nvt_loop_held *h;
	struct done w = { 0 }, dc = { 0 };
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, 1);
	assert_int_equal(nvt_loop_submit_held(f->ctrl.io[1], &sqe, &iov, 1, nvt_test_on_done, &w, &h), 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.fabrics.opcode = NVT_OPC_FABRICS;
	sqe.fabrics.fctype = NVT_FCTYPE_DISCONNECT;
	assert_int_equal(nvt_loop_submit(f->ctrl.io[1], &sqe, NULL, 0, nvt_test_on_done, &dc), 0);
	assert_int_equal(nvt_test_status(&dc), 0);
	nvt_loop_release(h);
	assert_int_equal(w.count, 1);
	assert_int_equal(nvt_test_status(&w), NVME_SC_CMD_SEQ_ERROR);
}

static void fused_sqe(struct nvt_sqe *sqe, uint8_t opc, uint8_t fuse, uint64_t slba)
{
	nvt_host_sqe_rw(sqe, opc, 1, slba, 1);
	sqe->common.flags |= fuse;
}

/*
 * Class 4: the Write of a fused pair fails before the Compare executed (the
 * Compare's data still in flight): the Compare must still complete, once,
 * with "failed fused command", and the queue must have nothing outstanding.
 */
static void test_fused_second_fails_first(void **state)
{
	struct fixture *f = *state;
	struct nvt_loop_queue *q = f->ctrl.io[0];
	uint8_t buf[512] = { 0 }, small[100] = { 0 };
	struct iovec iov = { buf, sizeof(buf) }, short_iov = { small, sizeof(small) };
	struct nvt_loop_held *h;
	struct done d1 = { 0 }, d2 = { 0 };
	struct nvt_sqe sqe;

	fused_sqe(&sqe, nvme_cmd_compare, NVT_FUSE_FIRST, 8);
	assert_int_equal(nvt_loop_submit_held(q, &sqe, &iov, 1, nvt_test_on_done, &d1, &h), 0);
	assert_non_null(h);
	/* The Write's SGL is shorter than its data: it fails in execute. */
	fused_sqe(&sqe, nvme_cmd_write, NVT_FUSE_SECOND, 8);
	assert_int_equal(nvt_loop_submit(q, &sqe, &short_iov, 1, nvt_test_on_done, &d2), 0);
	assert_int_equal(d2.count, 1);
	assert_int_equal(nvt_test_status(&d2), NVME_SC_SGL_INVALID_DATA);
	assert_int_equal(d1.count, 0);
	nvt_loop_release(h);
	assert_int_equal(d1.count, 1);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_FUSED_FAIL);
	assert_int_equal(nvt_loop_queue_outstanding(q), 0);

	/* And the other way round: the Compare fails in execute, the Write is held. */
	memset(&d1, 0, sizeof(d1));
	memset(&d2, 0, sizeof(d2));
	fused_sqe(&sqe, nvme_cmd_compare, NVT_FUSE_FIRST, 8);
	assert_int_equal(nvt_loop_submit_held(q, &sqe, &short_iov, 1, nvt_test_on_done, &d1, &h), 0);
	fused_sqe(&sqe, nvme_cmd_write, NVT_FUSE_SECOND, 8);
	assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &d2), 0);
	assert_int_equal(d2.count, 0);
	nvt_loop_release(h);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_SGL_INVALID_DATA);
	assert_int_equal(d2.count, 1);
	assert_int_equal(nvt_test_status(&d2), NVME_SC_FUSED_FAIL);
	assert_int_equal(nvt_loop_queue_outstanding(q), 0);
}

/*
 * Class 4: anything between the halves breaks the pair, whatever kind of
 * command it is and wherever it is refused. The Compare fails with "missing
 * fused command" and nothing stays held.
 */
static void test_fused_not_adjacent(void **state)
{
	struct fixture *f = *state;
	struct nvt_loop_queue *q = f->ctrl.io[0];
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct nvt_sqe between[4], sqe;

	/* Flush of every namespace carrying FUSE=10b. */
	nvt_host_sqe_init(&between[0], nvme_cmd_flush, 0xffffffff);
	between[0].common.flags |= NVT_FUSE_SECOND;
	/* Refused before the I/O parser: PRP data pointer on a fabric. */
	nvt_host_sqe_rw(&between[1], nvme_cmd_read, 1, 0, 1);
	between[1].common.flags = 0;
	/* A Property Get on an I/O queue. */
	memset(&between[2], 0, sizeof(between[2]));
	between[2].fabrics.opcode = NVT_OPC_FABRICS;
	between[2].fabrics.fctype = NVT_FCTYPE_PROP_GET;
	/* An unknown opcode. */
	nvt_host_sqe_init(&between[3], 0x7e, 1);

	for (unsigned int i = 0; i < 4; i++) {
		struct done d1 = { 0 }, d2 = { 0 }, d3 = { 0 };

		fused_sqe(&sqe, nvme_cmd_compare, NVT_FUSE_FIRST, 0);
		assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &d1), 0);
		assert_int_equal(d1.count, 0);
		assert_int_equal(nvt_loop_submit(q, &between[i], NULL, 0, nvt_test_on_done, &d2), 0);
		assert_int_equal(d1.count, 1);
		assert_int_equal(nvt_test_status(&d1), NVME_SC_FUSED_MISSING);
		assert_int_equal(d2.count, 1);
		assert_int_not_equal(nvt_test_status(&d2), 0);
		/* The Write that follows has no first half any more. */
		fused_sqe(&sqe, nvme_cmd_write, NVT_FUSE_SECOND, 0);
		assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &d3), 0);
		assert_int_equal(nvt_test_status(&d3), NVME_SC_FUSED_MISSING);
		assert_int_equal(nvt_loop_queue_outstanding(q), 0);
	}
}

/* Class 4: CC.EN=0 between the halves: the Write is refused, the Compare fails with it. */
static void test_fused_across_reset(void **state)
{
	struct fixture *f = *state;
	struct nvt_loop_queue *q = f->ctrl.io[0];
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct done d1 = { 0 }, d2 = { 0 };
	struct nvt_sqe sqe;
	uint64_t cc;

	fused_sqe(&sqe, nvme_cmd_compare, NVT_FUSE_FIRST, 0);
	assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &d1), 0);
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CC, false, &cc), 0);
	assert_int_equal(nvt_loop_prop_set(f->ctrl.admin, NVT_PROP_CC, cc & ~1ull), 0);
	fused_sqe(&sqe, nvme_cmd_write, NVT_FUSE_SECOND, 0);
	assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &d2), 0);
	assert_int_equal(nvt_test_status(&d2), NVME_SC_CMD_SEQ_ERROR);
	assert_int_equal(d1.count, 1);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_FUSED_FAIL);
	assert_int_equal(nvt_loop_queue_outstanding(q), 0);
	assert_int_equal(nvt_loop_prop_set(f->ctrl.admin, NVT_PROP_CC, cc), 0);
}

/* A Compare waiting for its Write comes back when the queue goes away. */
static void test_fused_first_at_teardown(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct done d1 = { 0 };
	struct nvt_sqe sqe;

	fused_sqe(&sqe, nvme_cmd_compare, NVT_FUSE_FIRST, 0);
	assert_int_equal(nvt_loop_submit(f->ctrl.io[1], &sqe, &iov, 1, nvt_test_on_done, &d1), 0);
	assert_int_equal(d1.count, 0);
	nvt_loop_queue_destroy(f->ctrl.io[1]);
	f->ctrl.io[1] = NULL;
	f->ctrl.nr_io = 1;
	assert_int_equal(d1.count, 1);
	assert_int_equal(nvt_test_status(&d1), NVME_SC_ABORT_QUEUE);
}

/* Fused bits on the admin queue are invalid, and pair with nothing. */
static void test_fused_on_admin(void **state)
{
	struct fixture *f = *state;
	uint8_t id[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	sqe.common.flags |= NVT_FUSE_FIRST;
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, id, sizeof(id), &cqe) & ~NVT_SC_DNR,
			 NVME_SC_INVALID_FIELD);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, id, sizeof(id), &cqe), 0);
}

/* Class 5: NUMD near 2^32 dwords must not wrap into a zero-length success. */
static void test_get_log_numd_wrap(void **state)
{
	struct fixture *f = *state;
	struct nvt_loop_ctrl disc;
	static uint8_t buf[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	static const uint8_t lids[] = { NVME_LOG_LID_ERROR, NVME_LOG_LID_SMART,
					NVME_LOG_LID_CHANGED_NS, NVME_LOG_LID_CMD_EFFECTS };

	for (unsigned int i = 0; i < sizeof(lids); i++) {
		nvt_host_sqe_get_log(&sqe, lids[i], 4, 0, true);
		/* NUMD = FFFFFFFFh: 2^32 dwords, 16 GiB. */
		sqe.common.cdw10 = htole32(lids[i] | 0xffffu << 16);
		sqe.common.cdw11 = htole32(0xffff);
		assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, buf, sizeof(buf), &cqe) & ~NVT_SC_DNR,
				 NVME_SC_INVALID_FIELD);
		/* NUMD = 3FFFFFFFh: 4 GiB, wraps a 32-bit byte count to 0. */
		sqe.common.cdw10 = htole32(lids[i] | 0xffffu << 16);
		sqe.common.cdw11 = htole32(0x3fff);
		assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, buf, sizeof(buf), &cqe) & ~NVT_SC_DNR,
				 NVME_SC_INVALID_FIELD);
		/* An offset that wraps with the length. */
		nvt_host_sqe_get_log(&sqe, lids[i], 64, UINT64_MAX - 3, true);
		assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, buf, 64, &cqe) & ~NVT_SC_DNR,
				 NVME_SC_INVALID_FIELD);
	}
	/* The discovery log shares the code. */
	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, NVT_DISCOVERY_NQN, TEST_HOST, 0, 0, 0, &disc), 0);
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_DISCOVER, 4, 0, false);
	sqe.common.cdw10 = htole32(NVME_LOG_LID_DISCOVER | 0xffffu << 16);
	sqe.common.cdw11 = htole32(0x3fff);
	assert_int_equal(nvt_loop_exec(disc.admin, &sqe, buf, sizeof(buf), &cqe) & ~NVT_SC_DNR,
			 NVME_SC_INVALID_FIELD);
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_DISCOVER, 1024, 0, false);
	assert_int_equal(nvt_loop_exec(disc.admin, &sqe, buf, 1024, &cqe), 0);
	nvt_loop_ctrl_disconnect(&disc);
}

/* Class 7 (UBSan): Compare and Verify on a namespace without metadata, away from LBA 0. */
static void test_compare_without_metadata(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4 * 512];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	memset(buf, 0x5a, sizeof(buf));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 4000, 4);
	assert_int_equal(nvt_loop_exec(f->ctrl.io[0], &sqe, buf, sizeof(buf), &cqe), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_compare, 1, 4000, 4);
	assert_int_equal(nvt_loop_exec(f->ctrl.io[0], &sqe, buf, sizeof(buf), &cqe), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_verify, 1, 4000, 4);
	assert_int_equal(nvt_loop_exec(f->ctrl.io[0], &sqe, NULL, 0, &cqe), 0);
}

/* Hostile-host limits: controllers per host, per subsystem, I/O queues per controller. */
static void test_limits(void **state)
{
	struct nvt_config cfg;
	struct nvt_target *tgt;
	struct nvt_loop_ctrl c[5];
	struct nvt_loop_queue *q;
	struct nvt_cqe cqe;
	struct nvt_sqe sqe;
	char host[64];

	nvt_test_config(&cfg);
	cfg.max_controllers_per_host = 2;
	cfg.subsystems[0].max_controllers = 3;
	cfg.subsystems[0].max_io_queues = 2;
	assert_int_equal(nvt_target_create(&cfg, &tgt), 0);
	nvt_test_config_free(&cfg);

	/* Two per host; the third is refused with Controller Busy. */
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, TEST_HOST, 1, 8, 0, &c[0]), 0);
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, TEST_HOST, 1, 8, 0, &c[1]), 0);
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, TEST_HOST, 0, 8, 0, &c[2]) & ~NVT_SC_DNR,
			 NVT_ST_CONNECT_BUSY);
	/* Three per subsystem, whoever asks. */
	snprintf(host, sizeof(host), "nqn.2014-08.org.nvmexpress:uuid:other-1");
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, host, 0, 8, 0, &c[2]), 0);
	snprintf(host, sizeof(host), "nqn.2014-08.org.nvmexpress:uuid:other-2");
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, host, 0, 8, 0, &c[3]) & ~NVT_SC_DNR,
			 NVT_ST_CONNECT_BUSY);
	/* The refused ones left nothing behind; a freed slot can be taken again. */
	assert_int_equal(nr_ctrls(tgt, TEST_NQN), 3);
	nvt_loop_ctrl_disconnect(&c[2]);
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, host, 0, 8, 0, &c[3]), 0);

	/* Two I/O queues: Number of Queues says so, qid 3 is refused. */
	nvt_host_sqe_features(&sqe, false, NVME_FEAT_FID_NUM_QUEUES, 0);
	assert_int_equal(nvt_loop_exec(c[0].admin, &sqe, NULL, 0, &cqe), 0);
	assert_int_equal(le32toh(cqe.result.u32), 1u | 1u << 16);
	assert_int_equal(nvt_loop_queue_create(tgt, 3, 8, &q), 0);
	assert_int_equal(nvt_loop_connect_queue(q, 3, 7, TEST_NQN, TEST_HOST, c[0].cntlid, 0, &cqe),
			 NVT_ST_CONNECT_INVALID_PARAM);
	nvt_loop_queue_destroy(q);

	nvt_loop_ctrl_disconnect(&c[3]);
	nvt_loop_ctrl_disconnect(&c[1]);
	nvt_loop_ctrl_disconnect(&c[0]);
	assert_int_equal(nr_ctrls(tgt, TEST_NQN), 0);
	nvt_target_destroy(tgt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_connects_in_flight, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_under_a_write, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_fused_second_fails_first, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_fused_not_adjacent, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_fused_across_reset, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_fused_first_at_teardown, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_fused_on_admin, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_get_log_numd_wrap, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_compare_without_metadata, nvt_test_setup, nvt_test_teardown),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
