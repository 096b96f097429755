/* SPDX-License-Identifier: BSD-3-Clause */
/* End to end over the loop transport: ANA groups per listener, Identify fields, log 0Ch, path statuses, the ANA change AEN, nvtctl ana. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/control.h"
#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"
#include "nvt_test_loop.h"

#define PATH_STATUS(sc)	NVT_STATUS(NVME_SCT_PATH, sc)

/* Two controllers of one host: A through listener 1 (group 1), B through listener 2 (group 2). */
struct ana_fixture {
	struct nvt_target *tgt;
	struct nvt_loop_ctrl a, b;
};

static int setup(void **state)
{
	static struct nvt_ana_group_cfg groups[] = { { .id = 2, .state = "non-optimized" } };
	struct ana_fixture *f = calloc(1, sizeof(*f));
	struct nvt_config cfg;

	assert_non_null(f);
	/* The test config's two listeners, in groups 1 and 2. */
	nvt_test_config(&cfg);
	assert_int_equal(cfg.nr_listeners, 2);
	for (unsigned int i = 0; i < 2; i++)
		cfg.listeners[i].ana_group = i + 1;
	cfg.ana_groups = groups;
	cfg.nr_ana_groups = 1;
	assert_int_equal(nvt_target_create(&cfg, &f->tgt), 0);
	cfg.ana_groups = NULL;
	nvt_test_config_free(&cfg);
	assert_int_equal(nvt_loop_ctrl_connect_port(f->tgt, &f->tgt->ports[0], TEST_NQN, TEST_HOST,
						    1, 32, 0, &f->a), 0);
	assert_int_equal(nvt_loop_ctrl_connect_port(f->tgt, &f->tgt->ports[1], TEST_NQN, TEST_HOST,
						    1, 32, 0, &f->b), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct ana_fixture *f = *state;

	nvt_loop_ctrl_disconnect(&f->a);
	nvt_loop_ctrl_disconnect(&f->b);
	nvt_target_destroy(f->tgt);
	free(f);
	return 0;
}

/* Read one block of namespace 1 on @c's I/O queue: the status without DNR. */
static int read_block(struct nvt_loop_ctrl *c)
{
	uint8_t buf[512];
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	return nvt_test_exec(c->io[0], &sqe, buf, sizeof(buf), NULL);
}

struct ana_page {
	struct nvme_ana_log hdr;
	struct nvme_ana_group_desc desc;
	uint32_t nsids[4];
};

static void get_ana_log(struct nvt_loop_ctrl *c, bool rgo, bool rae, struct ana_page *p)
{
	struct nvt_sqe sqe;

	memset(p, 0xa5, sizeof(*p));
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_ANA, sizeof(*p), 0, rae);
	if (rgo)
		sqe.common.cdw10 |= htole32(1u << 8);
	assert_int_equal(nvt_test_exec(c->admin, &sqe, p, sizeof(*p), NULL), 0);
}

static void test_identify(void **state)
{
	struct ana_fixture *f = *state;
	struct nvme_id_ctrl id;
	struct nvme_id_ns ns;
	struct nvt_sqe sqe;

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(nvt_test_exec(f->a.admin, &sqe, &id, sizeof(id), NULL), 0);
	assert_true(id.cmic & NVME_CTRL_CMIC_MULTI_ANA_REPORTING);
	assert_true(id.cmic & NVME_CTRL_CMIC_MULTI_CTRL);
	assert_true(le32toh(id.oaes) & NVME_CTRL_OAES_ANA);
	assert_int_equal(id.anacap & 0x1f, 0x1f);
	assert_int_not_equal(id.anatt, 0);
	assert_int_equal(le32toh(id.anagrpmax), NVT_ANA_GRPMAX);
	assert_int_equal(le32toh(id.nanagrpid), NVT_ANA_GRPMAX);
	/* Linux sizes its ANA log buffer from these and wants MNAN within NN. */
	assert_true(le32toh(id.mnan) && le32toh(id.mnan) <= le32toh(id.nn));

	/* The same namespace is in each path's own group. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 1, 0);
	assert_int_equal(nvt_test_exec(f->a.admin, &sqe, &ns, sizeof(ns), NULL), 0);
	assert_int_equal(le32toh(ns.anagrpid), 1);
	assert_int_equal(nvt_test_exec(f->b.admin, &sqe, &ns, sizeof(ns), NULL), 0);
	assert_int_equal(le32toh(ns.anagrpid), 2);
}

static void test_log_content(void **state)
{
	struct ana_fixture *f = *state;
	struct ana_page p;

	get_ana_log(&f->a, false, false, &p);
	assert_int_equal(le64toh(p.hdr.chgcnt), 0);
	assert_int_equal(le16toh(p.hdr.ngrps), 1);
	assert_int_equal(le32toh(p.desc.grpid), 1);
	assert_int_equal(p.desc.state, NVME_ANA_STATE_OPTIMIZED);
	assert_int_equal(le32toh(p.desc.nnsids), 2);
	assert_int_equal(le32toh(p.nsids[0]), 1);
	assert_int_equal(le32toh(p.nsids[1]), 3);
	assert_int_equal(p.nsids[2], 0);	/* the rest of the transfer is zeroes */

	/* Group 2 starts non-optimized (ana_groups), and I/O still works there. */
	get_ana_log(&f->b, false, false, &p);
	assert_int_equal(le32toh(p.desc.grpid), 2);
	assert_int_equal(p.desc.state, NVME_ANA_STATE_NONOPTIMIZED);
	assert_int_equal(read_block(&f->b), 0);

	/* RGO: the descriptor without its NSIDs. */
	get_ana_log(&f->a, true, false, &p);
	assert_int_equal(le16toh(p.hdr.ngrps), 1);
	assert_int_equal(le32toh(p.desc.nnsids), 0);
	assert_int_equal(p.nsids[0], 0);
}

/* A's AERs: static, as a held one may complete after the test that sent it. */
static struct done aen;

static void test_state_changes(void **state)
{
	struct ana_fixture *f = *state;
	struct ana_page p;
	struct nvt_sqe sqe;

	memset(&aen, 0, sizeof(aen));
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_ASYNC_EVENT,
			      NVME_FEATURE_AENCFG_NOTICE_ANA_CHANGE);
	assert_int_equal(nvt_test_exec(f->a.admin, &sqe, NULL, 0, NULL), 0);
	assert_int_equal(nvt_test_exec(f->b.admin, &sqe, NULL, 0, NULL), 0);
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	assert_int_equal(nvt_loop_submit(f->a.admin, &sqe, NULL, 0, nvt_test_on_done, &aen), 0);
	assert_int_equal(nvt_loop_submit(f->a.admin, &sqe, NULL, 0, nvt_test_on_done, &aen), 0);
	assert_int_equal(aen.count, 0);

	/* Group 1 inaccessible: only A (its listener's group) is told; B's AER would complete, it has none. */
	assert_int_equal(nvt_target_set_ana_state(f->tgt, 1, NVME_ANA_STATE_INACCESSIBLE), 1);
	assert_int_equal(aen.count, 1);
	assert_int_equal(aen.cqe.status, 0);
	assert_int_equal(le32toh(aen.cqe.result.u32),
			 NVME_AER_NOTICE | NVME_AER_NOTICE_ANA << 8 | NVME_LOG_LID_ANA << 16);
	/* 302h without DNR: the host may retry on another path. */
	assert_int_equal(read_block(&f->a), PATH_STATUS(NVME_SC_ANA_INACCESSIBLE));
	{
		struct nvt_cqe cqe;
		uint8_t buf[512];

		nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, 1);
		nvt_loop_exec(f->a.io[0], &sqe, buf, sizeof(buf), &cqe);
		assert_int_equal(le16toh(cqe.status) >> 1, PATH_STATUS(NVME_SC_ANA_INACCESSIBLE));
	}
	assert_int_equal(read_block(&f->b), 0);
	/* Admin commands still work on the inaccessible path. */
	get_ana_log(&f->a, false, true, &p);
	assert_int_equal(p.desc.state, NVME_ANA_STATE_INACCESSIBLE);
	assert_int_equal(le64toh(p.hdr.chgcnt), 1);
	assert_int_equal(le64toh(p.desc.chgcnt), 1);
	/* RAE kept it masked: a second change is not reported yet. */
	assert_int_equal(nvt_target_set_ana_state(f->tgt, 1, NVME_ANA_STATE_PERSISTENT_LOSS), 1);
	assert_int_equal(aen.count, 1);
	assert_int_equal(read_block(&f->a), PATH_STATUS(NVME_SC_ANA_PERSISTENT_LOSS));
	/* Reading without RAE unmasks: the pending one goes out. */
	get_ana_log(&f->a, false, false, &p);
	assert_int_equal(p.desc.state, NVME_ANA_STATE_PERSISTENT_LOSS);
	assert_int_equal(le64toh(p.hdr.chgcnt), 2);
	assert_int_equal(aen.count, 2);

	assert_int_equal(nvt_target_set_ana_state(f->tgt, 1, NVME_ANA_STATE_CHANGE), 1);
	assert_int_equal(read_block(&f->a), PATH_STATUS(NVME_SC_ANA_TRANSITION));
	/* The same state again is no change: nothing counted. */
	assert_int_equal(nvt_target_set_ana_state(f->tgt, 1, NVME_ANA_STATE_CHANGE), 0);
	get_ana_log(&f->a, false, false, &p);
	assert_int_equal(le64toh(p.hdr.chgcnt), 3);
	/* Group 2's descriptor kept its own count: it never changed. */
	get_ana_log(&f->b, false, false, &p);
	assert_int_equal(le64toh(p.hdr.chgcnt), 3);
	assert_int_equal(le64toh(p.desc.chgcnt), 0);

	/* Back to optimized: I/O on A works again. */
	assert_int_equal(nvt_target_set_ana_state(f->tgt, 1, NVME_ANA_STATE_OPTIMIZED), 1);
	assert_int_equal(read_block(&f->a), 0);

	/* Bad groups and states are refused and change nothing. */
	assert_int_equal(nvt_target_set_ana_state(f->tgt, 0, NVME_ANA_STATE_OPTIMIZED), -EINVAL);
	assert_int_equal(nvt_target_set_ana_state(f->tgt, NVT_ANA_GRPMAX + 1,
						  NVME_ANA_STATE_OPTIMIZED), -EINVAL);
	assert_int_equal(nvt_target_set_ana_state(f->tgt, 1, 5), -EINVAL);
	get_ana_log(&f->a, false, false, &p);
	assert_int_equal(le64toh(p.hdr.chgcnt), 4);
	/* A group no listener has: counted, nobody told. */
	assert_int_equal(nvt_target_set_ana_state(f->tgt, 7, NVME_ANA_STATE_INACCESSIBLE), 0);
	assert_int_equal(read_block(&f->a), 0);
}

struct replies {
	char buf[1024];
	size_t len;
};

static void collect(void *arg, const char *line, size_t len)
{
	struct replies *r = arg;

	if (r->len + len < sizeof(r->buf)) {
		memcpy(r->buf + r->len, line, len);
		r->len += len;
		r->buf[r->len] = 0;
	}
}

static void control(struct nvt_target *tgt, const char *req, struct replies *r)
{
	memset(r, 0, sizeof(*r));
	nvt_control_execute(tgt, req, strlen(req), collect, r);
}

static void test_nvtctl_ana(void **state)
{
	struct ana_fixture *f = *state;
	struct replies r;

	control(f->tgt, "ana 2 inaccessible", &r);
	assert_string_equal(r.buf, "ana group 2: inaccessible, 1 controller(s) notified\nok\n");
	assert_int_equal(read_block(&f->b), PATH_STATUS(NVME_SC_ANA_INACCESSIBLE));
	assert_int_equal(read_block(&f->a), 0);
	control(f->tgt, "ana 2 optimized", &r);
	assert_string_equal(r.buf, "ana group 2: optimized, 1 controller(s) notified\nok\n");
	assert_int_equal(read_block(&f->b), 0);

	control(f->tgt, "ana 2 sideways", &r);
	assert_non_null(strstr(r.buf, "error: unknown ANA state 'sideways'"));
	control(f->tgt, "ana 33 optimized", &r);
	assert_non_null(strstr(r.buf, "error: ANA group 33 is out of range"));
	control(f->tgt, "ana 0 optimized", &r);
	assert_non_null(strstr(r.buf, "error:"));
	control(f->tgt, "ana 1", &r);
	assert_non_null(strstr(r.buf, "error: usage: ana GROUP"));
	assert_int_equal(read_block(&f->b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nvtctl_ana, setup, teardown),
	};

	nvt_log_set_level(NVT_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
