/* SPDX-License-Identifier: BSD-3-Clause */
/* The discovery controller read the way libnvme reads it: header, entries at 1024, header again. */
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

static int setup_host(void **state, const char *hostnqn)
{
	/* nvme discover: admin queue only, KATO 0 (non-persistent). */
	*state = nvt_test_fixture_connect(nvt_test_target_create(), NVT_DISCOVERY_NQN, hostnqn, 0,
					  32, 0);
	return 0;
}

static int setup_any(void **state)
{
	return setup_host(state, TEST_HOST);
}

static int setup_allowed(void **state)
{
	return setup_host(state, TEST_HOST_OK);
}

static int get_log(struct fixture *f, void *buf, uint32_t len, uint64_t off, bool rae)
{
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_DISCOVER, len, off, rae);
	return nvt_loop_exec(f->ctrl.admin, &sqe, buf, len, &cqe);
}

/* libnvme's nvme_discovery_log(): 20-byte header, the entries at 1024, the header again. */
static struct nvmf_discovery_log *read_like_libnvme(struct fixture *f)
{
	struct nvmf_discovery_log *log;
	uint64_t genctr, numrec;
	uint8_t hdr[20];

	assert_int_equal(get_log(f, hdr, sizeof(hdr), 0, true), 0);
	memcpy(&genctr, hdr, 8);
	memcpy(&numrec, hdr + 8, 8);
	log = calloc(1, sizeof(*log) + le64toh(numrec) * 1024);
	if (numrec)
		assert_int_equal(get_log(f, log->entries, (uint32_t)le64toh(numrec) * 1024,
					 1024, true), 0);
	assert_int_equal(get_log(f, log, 20, 0, false), 0);
	assert_int_equal(log->genctr, genctr);
	assert_int_equal(log->numrec, numrec);
	return log;
}

static void test_identify_discovery_ctrl(void **state)
{
	struct fixture *f = *state;
	struct nvme_id_ctrl id;
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &id, sizeof(id), &cqe), 0);
	assert_int_equal(id.cntrltype, NVME_CTRL_CNTRLTYPE_DISCOVERY);
	assert_int_equal(le16toh(id.cntlid), f->ctrl.cntlid);
	assert_true(le32toh(id.oaes) & NVME_CTRL_OAES_DL);
	assert_int_equal(le32toh(id.nn), 0);
	assert_string_equal(id.subnqn, NVT_DISCOVERY_NQN);
	/* Namespace commands have no place on a discovery controller. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 1, 0);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &id, sizeof(id), &cqe) & 0xff,
			 NVME_SC_INVALID_FIELD);
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, 512, 0, false);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &id, 512, &cqe) & 0xff,
			 NVME_SC_INVALID_LOG_PAGE);
}

static void test_log_lists_allowed_subsystems(void **state)
{
	struct fixture *f = *state;
	struct nvmf_discovery_log *log = read_like_libnvme(f);
	struct nvmf_disc_log_entry *e = log->entries;

	/* TEST_HOST may reach only the open subsystem, through both listeners. */
	assert_int_equal(le64toh(log->numrec), 2);
	assert_int_equal(log->recfmt, 0);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(e[i].subnqn, TEST_NQN);
		assert_int_equal(e[i].trtype, NVMF_TRTYPE_RDMA);
		assert_int_equal(e[i].subtype, NVME_NQN_NVME);
		assert_int_equal(le16toh(e[i].cntlid), 0xffff);
		assert_int_equal(le16toh(e[i].portid), i + 1);
		assert_int_equal(e[i].tsas.rdma.qptype, NVMF_RDMA_QPTYPE_CONNECTED);
		assert_int_equal(e[i].tsas.rdma.cms, NVMF_RDMA_CMS_RDMA_CM);
	}
	assert_int_equal(e[0].adrfam, NVMF_ADDR_FAMILY_IP4);
	assert_string_equal(e[0].traddr, "192.0.2.1");
	assert_memory_equal(e[0].trsvcid, "4420", 5);
	assert_int_equal(e[1].adrfam, NVMF_ADDR_FAMILY_IP6);
	assert_string_equal(e[1].traddr, "fd00::1");
	assert_memory_equal(e[1].trsvcid, "4421", 5);
	free(log);
}

static void test_log_for_allowed_host(void **state)
{
	struct fixture *f = *state;
	struct nvmf_discovery_log *log = read_like_libnvme(f);
	int restricted = 0;

	assert_int_equal(le64toh(log->numrec), 4);
	for (int i = 0; i < 4; i++)
		restricted += !strcmp(log->entries[i].subnqn, TEST_NQN_RO);
	assert_int_equal(restricted, 2);
	free(log);
}

static void copy_cqe(void *arg, const struct nvt_cqe *cqe)
{
	*(struct nvt_cqe *)arg = *cqe;
}

static void test_log_offsets_and_genctr(void **state)
{
	struct fixture *f = *state;
	uint8_t full[3 * 1024], part[1500];
	struct nvt_cqe cqe;
	struct nvt_sqe sqe;
	uint64_t genctr;

	assert_int_equal(get_log(f, full, sizeof(full), 0, true), 0);
	/* An offset that is not a multiple of the entry size, crossing two entries. */
	assert_int_equal(get_log(f, part, 1500, 1024 + 700, true), 0);
	assert_memory_equal(part, full + 1024 + 700, 1348);
	/* Past the records: zero-filled. */
	for (int i = 1348; i < 1500; i++)
		assert_int_equal(part[i], 0);
	/* Bad offsets: unaligned, or beyond the log. */
	assert_int_equal(get_log(f, part, 16, 6, true) & 0xff, NVME_SC_INVALID_FIELD);
	assert_int_equal(get_log(f, part, 16, 64 * 1024, true) & 0xff, NVME_SC_INVALID_FIELD);

	/* A change bumps the generation counter and completes a held AER. */
	memcpy(&genctr, full, 8);
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	cqe.status = 0xffff;
	assert_int_equal(nvt_loop_submit(f->ctrl.admin, &sqe, NULL, 0, copy_cqe, &cqe), 0);
	assert_int_equal(cqe.status, 0xffff);
	nvt_discovery_changed(f->tgt);
	assert_int_equal(cqe.status, 0);
	assert_int_equal(le32toh(cqe.result.u32),
			 NVME_AER_NOTICE | NVME_AER_NOTICE_DISC_CHANGED << 8 |
			 NVME_LOG_LID_DISCOVER << 16);
	assert_int_equal(get_log(f, full, 20, 0, false), 0);
	assert_int_equal(le64toh(*(uint64_t *)full), le64toh(genctr) + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify_discovery_ctrl, setup_any, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_log_lists_allowed_subsystems, setup_any, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_log_for_allowed_host, setup_allowed, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_log_offsets_and_genctr, setup_any, nvt_test_teardown),
	};

	nvt_log_set_level(NVT_LOG_WARN);
	return cmocka_run_group_tests_name("discovery_e2e", tests, NULL, NULL);
}
