/* SPDX-License-Identifier: BSD-3-Clause */
/* End to end over the loop transport: connect, identify, I/O, every failure status, logs, CC/CSTS, keep-alive, AEN. */
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

#define STATUS(sct, sc)	NVT_STATUS(sct, sc)

static int setup(void **state)
{
	*state = nvt_test_fixture_connect(nvt_test_target_create(), TEST_NQN, TEST_HOST, 2, 64, 5000);
	return 0;
}

/* Run @sqe on @q with @buf and return only the status (without DNR/more bits). */
static int run(struct nvt_loop_queue *q, struct nvt_sqe *sqe, void *buf, size_t len,
	       struct nvt_cqe *cqe_out)
{
	return nvt_test_exec(q, sqe, buf, len, cqe_out);
}

static void test_identify_ctrl(void **state)
{
	struct fixture *f = *state;
	struct nvme_id_ctrl id;
	struct nvt_sqe sqe;

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, &id, sizeof(id), NULL), 0);
	/* HOST-CONTRACT §5.2 step 3: what a Linux host checks. */
	assert_int_equal(le16toh(id.cntlid), f->ctrl.cntlid);
	assert_true(le16toh(id.kas) != 0);
	assert_true(le32toh(id.sgls) & 1);
	assert_true(le32toh(id.ioccsz) >= 4);
	assert_int_equal(le32toh(id.iorcsz), 1);
	assert_int_equal(le16toh(id.icdoff), 0);
	assert_int_equal(id.mdts, 5);	/* 128 KiB loop MDTS in 4 KiB units: 2^5 */
	assert_int_equal(le32toh(id.nn), NVT_MAX_NSID);
	assert_true(id.cmic & NVME_CTRL_CMIC_MULTI_CTRL);
	assert_true(id.vwc & NVME_CTRL_VWC_PRESENT);
	assert_int_equal(le16toh(id.oncs), NVME_CTRL_ONCS_COMPARE | NVME_CTRL_ONCS_DSM |
					   NVME_CTRL_ONCS_WRITE_ZEROES | NVME_CTRL_ONCS_VERIFY |
					   NVME_CTRL_ONCS_COPY | NVME_CTRL_ONCS_RESERVATIONS);
	assert_int_equal(le16toh(id.ocfs), 0x3);
	assert_true(le32toh(id.oaes) & NVME_CTRL_OAES_NA);
	assert_int_equal(id.sqes, 0x66);
	assert_int_equal(id.cqes, 0x44);
	assert_int_equal(id.cntrltype, NVME_CTRL_CNTRLTYPE_IO);
	assert_memory_equal(id.sn, "NVT0000TEST         ", 20);
	assert_string_equal(id.subnqn, TEST_NQN);
}

static void test_identify_ns(void **state)
{
	struct fixture *f = *state;
	struct nvme_id_ns id;
	struct nvt_sqe sqe;
	uint32_t list[1024];
	uint8_t desc[4096];

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 1, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, &id, sizeof(id), NULL), 0);
	assert_int_equal(le64toh(id.nsze), TEST_NS_SIZE / 512);
	assert_int_equal(le64toh(id.ncap), TEST_NS_SIZE / 512);
	assert_int_equal(id.flbas, 0);
	assert_int_equal(id.nlbaf, 0);
	assert_int_equal(id.lbaf[0].ds, 9);
	assert_int_equal(le16toh(id.lbaf[0].ms), 0);
	assert_true(id.nmic & NVME_NS_NMIC_SHARED);
	assert_int_equal(id.dlfeat, 0x9);	/* WZ may deallocate; deallocated reads zeroes */

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 3, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, &id, sizeof(id), NULL), 0);
	assert_int_equal(le64toh(id.nsze), TEST_NS_SIZE / 4096);
	assert_int_equal(id.lbaf[0].ds, 12);

	/* Inactive but valid NSID: zeroes. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 2, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, &id, sizeof(id), NULL), 0);
	assert_int_equal(le64toh(id.nsze), 0);

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, list, sizeof(list), NULL), 0);
	assert_int_equal(le32toh(list[0]), 1);
	assert_int_equal(le32toh(list[1]), 3);
	assert_int_equal(list[2], 0);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 1, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, list, sizeof(list), NULL), 0);
	assert_int_equal(le32toh(list[0]), 3);

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS_DESC_LIST, 1, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, desc, sizeof(desc), NULL), 0);
	assert_int_equal(desc[0], NVME_NIDT_NGUID);
	assert_int_equal(desc[1], 16);
	assert_int_equal(desc[4], 0x22);
	assert_int_equal(desc[20], NVME_NIDT_UUID);
	assert_int_equal(desc[24], 0x11);
	assert_int_equal(desc[40], NVME_NIDT_CSI);

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS, 1, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, desc, sizeof(desc), NULL), 0);
	assert_int_equal(desc[offsetof(struct nvme_id_independent_id_ns, nstat)] & 1, 1);

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_NVM);
	assert_int_equal(run(f->ctrl.admin, &sqe, desc, sizeof(desc), NULL), 0);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CSI_NS, 1, 2 /* ZNS */);
	assert_int_equal(run(f->ctrl.admin, &sqe, desc, sizeof(desc), NULL),
			 NVME_SC_INVALID_FIELD);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_NVM);
	assert_int_equal(run(f->ctrl.admin, &sqe, desc, sizeof(desc), NULL), 0);
}

static void test_write_read_whole_namespace(void **state)
{
	struct fixture *f = *state;
	const uint32_t chunk_blocks = 128;	/* 64 KiB of 512-byte blocks */
	const uint64_t nblocks = TEST_NS_SIZE / 512;
	uint8_t *wbuf = malloc(TEST_NS_SIZE), *rbuf = malloc(TEST_NS_SIZE);
	struct nvt_sqe sqe;

	srandom(42);
	for (size_t i = 0; i < TEST_NS_SIZE; i++)
		wbuf[i] = (uint8_t)random();
	/* Alternate the two I/O queues, as a multi-queue host does. */
	for (uint64_t lba = 0, n = 0; lba < nblocks; lba += chunk_blocks, n++) {
		nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, lba, chunk_blocks);
		assert_int_equal(run(f->ctrl.io[n % 2], &sqe, wbuf + lba * 512,
				     chunk_blocks * 512, NULL), 0);
	}
	nvt_host_sqe_init(&sqe, nvme_cmd_flush, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0, NULL), 0);
	nvt_host_sqe_init(&sqe, nvme_cmd_flush, 0xffffffff);
	assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0, NULL), 0);
	memset(rbuf, 0, TEST_NS_SIZE);
	for (uint64_t lba = 0, n = 1; lba < nblocks; lba += chunk_blocks * 2, n++) {
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, lba, chunk_blocks * 2);
		assert_int_equal(run(f->ctrl.io[n % 2], &sqe, rbuf + lba * 512,
				     chunk_blocks * 2 * 512, NULL), 0);
	}
	assert_memory_equal(wbuf, rbuf, TEST_NS_SIZE);
	free(wbuf);
	free(rbuf);
}

struct cqe_seen {
	struct nvt_cqe cqe;
	bool done;
};

static void copy_cqe(void *arg, const struct nvt_cqe *cqe)
{
	struct cqe_seen *c = arg;

	c->cqe = *cqe;
	c->done = true;
}

static void test_scattered_iovecs(void **state)
{
	struct fixture *f = *state;
	uint8_t a[1000], b[3096], out[4096];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	struct nvt_sqe sqe;
	struct cqe_seen c = { .done = false };

	memset(a, 0xa5, sizeof(a));
	memset(b, 0x5a, sizeof(b));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, 7, 1);
	/* Two segments that split a block: the core walks iovecs, not blocks. */
	assert_int_equal(nvt_loop_submit(f->ctrl.io[1], &sqe, iov, 2, copy_cqe, &c), 0);
	/* A backend may complete later, on the queue's poll group. */
	while (!c.done && nvt_loop_queue_poll(f->ctrl.io[1], 1000) >= 0)
		;
	assert_true(c.done);
	assert_int_equal(c.cqe.status, 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 7, 1);
	assert_int_equal(run(f->ctrl.io[1], &sqe, out, sizeof(out), NULL), 0);
	assert_memory_equal(out, a, sizeof(a));
	assert_memory_equal(out + sizeof(a), b, sizeof(b));
}

static void test_io_failure_statuses(void **state)
{
	struct fixture *f = *state;
	const uint64_t nblocks = TEST_NS_SIZE / 512;
	uint8_t buf[8192];
	struct nvt_sqe sqe;
	struct nvme_error_log_page err[2];

	/* 80h: LBA out of range, at the end and by overflow. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, nblocks - 1, 2);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 1024, NULL), NVME_SC_LBA_RANGE);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, UINT64_MAX, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), NVME_SC_LBA_RANGE);
	/* ...and it lands in the error log with the LBA and the failing field. */
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_ERROR, sizeof(err), 0, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, err, sizeof(err), NULL), 0);
	assert_int_equal(le64toh(err[0].error_count), 2);
	assert_int_equal(le64toh(err[0].lba), UINT64_MAX);
	assert_int_equal(le16toh(err[0].sqid), 1);
	assert_int_equal(le16toh(err[0].parm_error_location), offsetof(struct nvt_sqe_rw, slba));
	assert_int_equal(le16toh(err[0].status_field) >> 1, NVME_SC_LBA_RANGE | NVT_SC_DNR);
	assert_int_equal(le64toh(err[1].lba), nblocks - 1);

	/* 0Bh: invalid namespace (never configured, zero, too large). */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 2, 0, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), NVME_SC_INVALID_NS);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 0, 0, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), NVME_SC_INVALID_NS);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 0xfffffffe, 0, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), NVME_SC_INVALID_NS);

	/* 01h: invalid opcode on an I/O queue and on the admin queue. */
	nvt_host_sqe_init(&sqe, 0x7e, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0, NULL), NVME_SC_INVALID_OPCODE);
	nvt_host_sqe_init(&sqe, 0xc1, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL), NVME_SC_INVALID_OPCODE);

	/* 02h: invalid field: fused bits, PRP instead of SGL, a bad CNS, beyond MDTS. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	sqe.common.flags |= 1;
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), NVME_SC_INVALID_FIELD);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	sqe.common.flags = 0;
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), NVME_SC_INVALID_FIELD);
	nvt_host_sqe_identify(&sqe, 0x42, 0, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, buf, 4096, NULL), NVME_SC_INVALID_FIELD);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 0, 64);	/* 256 KiB > MDTS */
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, sizeof(buf), NULL), NVME_SC_INVALID_FIELD);

	/* 0Fh: the host's buffer does not match the command's length. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, 2);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), NVME_SC_SGL_INVALID_DATA);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 1024, NULL), NVME_SC_SGL_INVALID_DATA);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, buf, 100, NULL), NVME_SC_SGL_INVALID_DATA);
	/* ...except DSM, where a Linux host describes a whole page for one range. */
	memset(buf, 0, 4096);
	buf[4] = 8;	/* one range: 8 blocks at LBA 0 */
	nvt_host_sqe_init(&sqe, nvme_cmd_dsm, 1);
	sqe.common.cdw11 = htole32(NVME_DSMGMT_AD);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 4096, NULL), 0);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 8, NULL), NVME_SC_SGL_INVALID_DATA);

	/* Log page: unknown page, unaligned offset. */
	nvt_host_sqe_get_log(&sqe, 0x7f, 512, 0, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, buf, 512, NULL),
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_INVALID_LOG_PAGE));
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, 512, 2, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, buf, 512, NULL), NVME_SC_INVALID_FIELD);
	/* An offset past the end of the log. */
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, 512, 1024, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, buf, 512, NULL), NVME_SC_INVALID_FIELD);
}

static void test_connect_failures(void **state)
{
	struct fixture *f = *state;
	struct nvmf_connect_data d;
	struct nvt_loop_queue *q;
	struct nvt_cqe cqe;
	struct nvt_sqe sqe;
	uint8_t buf[512];

	assert_int_equal(nvt_loop_queue_create(f->tgt, 0, 32, &q), 0);
	/* Command sequence error: I/O before Connect. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(run(q, &sqe, buf, sizeof(buf), NULL), NVME_SC_CMD_SEQ_ERROR);
	/* Unknown subsystem: invalid parameter pointing at SUBNQN in the data. */
	assert_int_equal(nvt_loop_connect_queue(q, 0, 31, "nqn.2026-11.io.nvt:nope", TEST_HOST,
						0xffff, 0, &cqe) & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(le32toh(cqe.result.u32),
			 (1u << 16) | offsetof(struct nvmf_connect_data, subsysnqn));
	/* A host not on the allow-list. */
	assert_int_equal(nvt_loop_connect_queue(q, 0, 31, TEST_NQN_RO, TEST_HOST, 0xffff, 0,
						&cqe) & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_HOST));
	/* Static controller ids are not offered. */
	assert_int_equal(nvt_loop_connect_queue(q, 0, 31, TEST_NQN, TEST_HOST, 7, 0,
						&cqe) & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAM));
	/* A HOSTID of the kind nvtd gives its vhost controllers' I_T nexuses: refused, pointed at. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.fabrics.opcode = NVT_OPC_FABRICS;
	sqe.fabrics.fctype = NVT_FCTYPE_CONNECT;
	sqe.connect.sqsize = htole16(31);
	memset(&d, 0, sizeof(d));
	memcpy(d.hostid, "nvt-scsi", 8);
	d.hostid[8] = 0xe5;
	d.cntlid = htole16(0xffff);
	strcpy(d.subsysnqn, TEST_NQN);
	strcpy(d.hostnqn, TEST_HOST);
	assert_int_equal(nvt_loop_exec(q, &sqe, &d, sizeof(d), &cqe) & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(le32toh(cqe.result.u32),
			 (1u << 16) | offsetof(struct nvmf_connect_data, hostid));
	/* The same bytes with a UUID's variant in byte 8: a host like any other. */
	d.hostid[8] = 0x85;
	assert_int_equal(nvt_loop_exec(q, &sqe, &d, sizeof(d), &cqe), 0);
	nvt_loop_queue_destroy(q);
	assert_int_equal(nvt_loop_queue_create(f->tgt, 0, 32, &q), 0);
	/* The allowed host gets in. */
	assert_int_equal(nvt_loop_connect_queue(q, 0, 31, TEST_NQN_RO, TEST_HOST_OK, 0xffff, 0,
						&cqe), 0);
	/* A second Connect on a live queue is a sequence error. */
	assert_int_equal(nvt_loop_connect_queue(q, 0, 31, TEST_NQN_RO, TEST_HOST_OK, 0xffff, 0,
						&cqe) & ~NVT_SC_DNR, NVME_SC_CMD_SEQ_ERROR);
	nvt_loop_queue_destroy(q);

	/* An I/O queue for a controller of another host, or an unknown controller. */
	assert_int_equal(nvt_loop_queue_create(f->tgt, 3, 32, &q), 0);
	assert_int_equal(nvt_loop_connect_queue(q, 3, 31, TEST_NQN, TEST_HOST_OK,
						f->ctrl.cntlid, 0, &cqe) & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(nvt_loop_connect_queue(q, 3, 31, TEST_NQN, TEST_HOST, 0x1234, 0,
						&cqe) & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAM));
	/* Queue depth larger than the transport connection offers. */
	assert_int_equal(nvt_loop_connect_queue(q, 3, 63, TEST_NQN, TEST_HOST,
						f->ctrl.cntlid, 0, &cqe) & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAM));
	assert_int_equal(le32toh(cqe.result.u32), offsetof(struct nvt_sqe_connect, sqsize));
	/* The right host and controller: a third I/O queue joins. */
	assert_int_equal(nvt_loop_connect_queue(q, 3, 31, TEST_NQN, TEST_HOST,
						f->ctrl.cntlid, 0, &cqe), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	assert_int_equal(run(q, &sqe, buf, 512, NULL), 0);
	nvt_loop_queue_destroy(q);
}

static void test_properties_and_shutdown(void **state)
{
	struct fixture *f = *state;
	uint64_t v;

	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CAP, true, &v), 0);
	assert_int_equal(v & 0xffff, NVT_MAX_QUEUE_SIZE - 1);
	assert_true(v & (1ull << 37));
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_VS, false, &v), 0);
	assert_int_equal(v, NVT_VS);
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CSTS, false, &v), 0);
	assert_int_equal(v & NVT_CSTS_RDY, NVT_CSTS_RDY);
	/* 4-byte read of an 8-byte property, an unknown offset, a write to CAP. */
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CAP, false, &v) & 0xff,
			 NVME_SC_INVALID_FIELD);
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, 0x40, false, &v) & 0xff,
			 NVME_SC_INVALID_FIELD);
	assert_int_equal(nvt_loop_prop_set(f->ctrl.admin, NVT_PROP_CAP, 0) & 0xff,
			 NVME_SC_INVALID_FIELD);
	/* Shutdown: SHST goes to complete. */
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CC, false, &v), 0);
	assert_int_equal(nvt_loop_prop_set(f->ctrl.admin, NVT_PROP_CC, v | (1u << 14)), 0);
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CSTS, false, &v), 0);
	assert_int_equal(v & NVT_CSTS_SHST_MASK, NVT_CSTS_SHST_CMPLT);
	/* Disable: RDY drops; enabling with bad entry sizes is a fatal status. */
	assert_int_equal(nvt_loop_prop_set(f->ctrl.admin, NVT_PROP_CC, 0), 0);
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CSTS, false, &v), 0);
	assert_int_equal(v & (NVT_CSTS_RDY | NVT_CSTS_SHST_MASK), 0);
	assert_int_equal(nvt_loop_prop_set(f->ctrl.admin, NVT_PROP_CC, 1), 0);
	assert_int_equal(nvt_loop_prop_get(f->ctrl.admin, NVT_PROP_CSTS, false, &v), 0);
	assert_int_equal(v & (NVT_CSTS_RDY | NVT_CSTS_CFS), NVT_CSTS_CFS);
}

static void test_features(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint8_t hostid[16];

	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_NUM_QUEUES, 0x00030003);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, &cqe), 0);
	assert_int_equal(le32toh(cqe.result.u32) & 0xffff, NVT_MAX_IO_QUEUES - 1);
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_NUM_QUEUES, 0xffff);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL), NVME_SC_INVALID_FIELD);
	nvt_host_sqe_features(&sqe, false, NVME_FEAT_FID_KATO, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, &cqe), 0);
	assert_int_equal(le32toh(cqe.result.u32), 5000);
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_ASYNC_EVENT,
			      NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL), 0);
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_ASYNC_EVENT, 1u << 31);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL), NVME_SC_INVALID_FIELD);
	nvt_host_sqe_features(&sqe, false, NVME_FEAT_FID_VOLATILE_WC, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, &cqe), 0);
	assert_int_equal(le32toh(cqe.result.u32), 1);
	nvt_host_sqe_features(&sqe, false, NVME_FEAT_FID_HOST_ID, 1);
	assert_int_equal(run(f->ctrl.admin, &sqe, hostid, sizeof(hostid), NULL), 0);
	/* Saving is not supported; an unknown feature is an invalid field. */
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_KATO, 1000);
	sqe.common.cdw10 |= htole32(1u << 31);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL),
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_FEATURE_NOT_SAVEABLE));
	nvt_host_sqe_features(&sqe, false, 0x7d, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL), NVME_SC_INVALID_FIELD);
	/* Abort is answered: "not aborted". */
	nvt_host_sqe_init(&sqe, nvme_admin_abort_cmd, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, &cqe), 0);
	assert_int_equal(le32toh(cqe.result.u32) & 1, 1);
}

static void test_logs(void **state)
{
	struct fixture *f = *state;
	struct nvme_smart_log smart;
	struct nvme_firmware_slot fw;
	struct nvme_cmd_effects_log fx;
	struct nvt_sqe sqe;
	uint8_t buf[512];

	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, 1);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), 0);
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, sizeof(smart), 0, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, &smart, sizeof(smart), NULL), 0);
	assert_int_equal(smart.host_writes[0], 1);
	assert_int_equal(smart.data_units_written[0], 1);
	assert_int_equal(smart.avail_spare, 100);
	/* A partial read from an offset returns the matching slice. */
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, 16, 48, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, buf, 16, NULL), 0);
	assert_memory_equal(buf, (uint8_t *)&smart + 48, 16);

	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_FW_SLOT, sizeof(fw), 0, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, &fw, sizeof(fw), NULL), 0);
	assert_int_equal(fw.afi, 1);
	assert_memory_equal(fw.frs[0], NVT_FW_REV, strlen(NVT_FW_REV));
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_CMD_EFFECTS, sizeof(fx), 0, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, &fx, sizeof(fx), NULL), 0);
	assert_true(le32toh(fx.iocs[nvme_cmd_write]) & NVME_CMD_EFFECTS_LBCC);
	assert_true(le32toh(fx.acs[nvme_admin_identify]) & NVME_CMD_EFFECTS_CSUPP);
	assert_int_equal(fx.iocs[0x7e], 0);
}

static unsigned int aen_count;
static struct nvt_cqe aen_cqe;

static void aen_done(void *arg, const struct nvt_cqe *cqe)
{
	aen_count++;
	aen_cqe = *cqe;
}

static void test_async_events(void **state)
{
	struct fixture *f = *state;
	struct nvt_subsys *subsys = nvt_target_find_subsys(f->tgt, TEST_NQN);
	uint32_t changed[1024];
	struct nvt_sqe sqe;

	aen_count = 0;
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_ASYNC_EVENT,
			      NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL), 0);
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	for (int i = 0; i < NVT_AERL; i++)
		assert_int_equal(nvt_loop_submit(f->ctrl.admin, &sqe, NULL, 0, aen_done, NULL), 0);
	/* Held: nothing completes until an event. */
	assert_int_equal(aen_count, 0);
	/* One more than AERL is refused at once. */
	assert_int_equal(nvt_loop_submit(f->ctrl.admin, &sqe, NULL, 0, aen_done, NULL), 0);
	assert_int_equal(aen_count, 1);
	assert_int_equal(le16toh(aen_cqe.status) >> 1 & ~NVT_SC_DNR,
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ASYNC_LIMIT));

	nvt_subsys_ns_changed(subsys, 3);
	assert_int_equal(aen_count, 2);
	assert_int_equal(aen_cqe.status, 0);
	assert_int_equal(le32toh(aen_cqe.result.u32),
			 NVME_AER_NOTICE | NVME_LOG_LID_CHANGED_NS << 16);
	/* Masked until the log is read: a second change is not reported yet. */
	nvt_subsys_ns_changed(subsys, 1);
	assert_int_equal(aen_count, 2);
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_CHANGED_NS, sizeof(changed), 0, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, changed, sizeof(changed), NULL), 0);
	assert_int_equal(le32toh(changed[0]), 3);
	assert_int_equal(le32toh(changed[1]), 1);
	assert_int_equal(changed[2], 0);
	/* Reading cleared the mask: the pending second event goes out now. */
	assert_int_equal(aen_count, 3);
	/* The remaining held AERs are failed once when the controller goes away. */
	nvt_loop_ctrl_disconnect(&f->ctrl);
	assert_int_equal(aen_count, 3 + NVT_AERL - 2);
}

static void test_keep_alive_expiry(void **state)
{
	struct fixture *f = *state;
	struct nvt_subsys *subsys = nvt_target_find_subsys(f->tgt, TEST_NQN);
	struct nvt_sqe sqe;
	uint8_t buf[512];

	aen_count = 0;
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	assert_int_equal(nvt_loop_submit(f->ctrl.admin, &sqe, NULL, 0, aen_done, NULL), 0);

	/* A Keep Alive pushes the deadline out; before it nothing expires. */
	nvt_host_sqe_init(&sqe, nvme_admin_keep_alive, 0);
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL), 0);
	assert_int_equal(nvt_target_check_keep_alive(f->tgt, nvt_now_ns()), 0);
	/* Within KATO (5 s) plus the 1 s granularity reported in KAS: still alive. */
	assert_int_equal(nvt_target_check_keep_alive(f->tgt, nvt_now_ns() + 5500000000ull), 0);
	assert_non_null(subsys->ctrls);
	/* Past it: the controller is torn down, once. */
	assert_int_equal(nvt_target_check_keep_alive(f->tgt, nvt_now_ns() + 6100000000ull), 1);
	assert_int_equal(nvt_target_check_keep_alive(f->tgt, nvt_now_ns() + 6100000000ull), 0);
	assert_null(subsys->ctrls);
	assert_int_equal(aen_count, 1);
	assert_int_equal(le16toh(aen_cqe.status) >> 1, NVME_SC_ABORT_QUEUE);
	/* Every queue of it is dead to the host. */
	assert_false(nvt_loop_queue_live(f->ctrl.admin));
	assert_false(nvt_loop_queue_live(f->ctrl.io[0]));
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	assert_int_equal(run(f->ctrl.io[1], &sqe, buf, 512, NULL), -ENOTCONN);
	/* The host's teardown afterwards is harmless, and the AER is not failed twice. */
	nvt_loop_ctrl_disconnect(&f->ctrl);
	assert_int_equal(aen_count, 1);
	/* A new controller can be made. */
	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 1, 16, 5000,
					       &f->ctrl), 0);
}

static void test_disconnect_command(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;
	uint8_t buf[512];

	memset(&sqe, 0, sizeof(sqe));
	sqe.fabrics.opcode = NVT_OPC_FABRICS;
	sqe.fabrics.fctype = NVT_FCTYPE_DISCONNECT;
	assert_int_equal(run(f->ctrl.admin, &sqe, NULL, 0, NULL),
			 STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_DISCONNECT_INVALID_QTYPE));
	assert_int_equal(run(f->ctrl.io[1], &sqe, NULL, 0, NULL), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	assert_int_equal(run(f->ctrl.io[1], &sqe, buf, 512, NULL), NVME_SC_CMD_SEQ_ERROR);
	assert_int_equal(run(f->ctrl.io[0], &sqe, buf, 512, NULL), 0);
}

static void test_queue_full_backpressure(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;
	struct nvt_loop_queue *q;
	struct nvt_cqe cqe;

	/* A 2-slot admin queue: two held AERs fill it, the third submit is refused. */
	assert_int_equal(nvt_loop_queue_create(f->tgt, 0, 2, &q), 0);
	assert_int_equal(nvt_loop_connect_queue(q, 0, 1, TEST_NQN, TEST_HOST, 0xffff, 0, &cqe), 0);
	assert_int_equal(nvt_loop_prop_set(q, NVT_PROP_CC, (6u << 16) | (4u << 20) | 1), 0);
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	aen_count = 0;
	assert_int_equal(nvt_loop_submit(q, &sqe, NULL, 0, aen_done, NULL), 0);
	assert_int_equal(nvt_loop_submit(q, &sqe, NULL, 0, aen_done, NULL), 0);
	assert_int_equal(nvt_loop_submit(q, &sqe, NULL, 0, aen_done, NULL), -EBUSY);
	nvt_loop_queue_destroy(q);
	assert_int_equal(aen_count, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify_ctrl, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_identify_ns, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_write_read_whole_namespace, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_scattered_iovecs, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_io_failure_statuses, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_connect_failures, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_properties_and_shutdown, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_features, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_logs, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_async_events, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_keep_alive_expiry, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_command, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_backpressure, setup, nvt_test_teardown),
	};

	nvt_log_set_level(NVT_LOG_WARN);
	return cmocka_run_group_tests_name("loop_e2e", tests, NULL, NULL);
}
