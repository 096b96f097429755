/* SPDX-License-Identifier: BSD-3-Clause */
/* RDMA transport logic without hardware: CM private data validation, the request state machine, SGL mapping. */
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
#include "../../transport/rdma/rdma_internal.h"

static int parse(uint16_t recfmt, uint16_t qid, uint16_t hrqsize, uint16_t hsqsize,
		 size_t len, struct nvt_rdma_cm_params *p)
{
	struct nvt_rdma_cm_req req = {
		.recfmt = htole16(recfmt),
		.qid = htole16(qid),
		.hrqsize = htole16(hrqsize),
		.hsqsize = htole16(hsqsize),
		.cntlid = htole16(7),
	};

	return nvt_rdma_parse_cm_req(&req, len, p);
}

static void test_cm_req_valid(void **state)
{
	struct nvt_rdma_cm_params p;

	/* What a Linux host sends: admin hrqsize 32 / hsqsize 31, I/O 128 / 127. */
	assert_int_equal(parse(0, 0, 32, 31, 32, &p), 0);
	assert_int_equal(p.qid, 0);
	assert_int_equal(p.sq_size, 32);
	assert_int_equal(p.recv_depth, 32);
	assert_int_equal(p.cntlid, 7);
	assert_int_equal(parse(0, 3, 128, 127, 32, &p), 0);
	assert_int_equal(p.qid, 3);
	assert_int_equal(p.sq_size, 128);
	assert_int_equal(p.recv_depth, 128);
	/* Older hosts send no cntlid. */
	assert_int_equal(parse(0, 1, 16, 15, 8, &p), 0);
	assert_int_equal(p.cntlid, 0xffff);
}

static void test_cm_req_rejects(void **state)
{
	struct nvt_rdma_cm_params p;

	assert_int_equal(nvt_rdma_parse_cm_req(NULL, 0, &p), NVT_RDMA_CM_INVALID_LEN);
	assert_int_equal(parse(0, 1, 16, 15, 7, &p), NVT_RDMA_CM_INVALID_LEN);
	assert_int_equal(parse(1, 1, 16, 15, 32, &p), NVT_RDMA_CM_INVALID_RECFMT);
	assert_int_equal(parse(0, NVT_MAX_IO_QUEUES + 1, 16, 15, 32, &p), NVT_RDMA_CM_INVALID_QID);
	/* Admin queue deeper than 32, an I/O queue deeper than we offer, a 1-entry queue. */
	assert_int_equal(parse(0, 0, 64, 63, 32, &p), NVT_RDMA_CM_INVALID_HSQSIZE);
	assert_int_equal(parse(0, 1, 256, 255, 32, &p), NVT_RDMA_CM_INVALID_HSQSIZE);
	assert_int_equal(parse(0, 1, 16, 0, 32, &p), NVT_RDMA_CM_INVALID_HSQSIZE);
	/* Fewer RECVs than SQ entries, or more than we offer. */
	assert_int_equal(parse(0, 1, 8, 15, 32, &p), NVT_RDMA_CM_INVALID_HRQSIZE);
	assert_int_equal(parse(0, 1, 1000, 15, 32, &p), NVT_RDMA_CM_INVALID_HRQSIZE);
}

static void test_state_machine(void **state)
{
	static const enum nvt_rdma_req_state all[] = {
		NVT_RDMA_REQ_FREE, NVT_RDMA_REQ_NEW, NVT_RDMA_REQ_XFER_H2C,
		NVT_RDMA_REQ_EXECUTING, NVT_RDMA_REQ_COMPLETING,
	};
	/* allowed[from][to] */
	static const bool allowed[5][5] = {
		/* FREE */	{ 0, 1, 0, 0, 0 },
		/* NEW */	{ 1, 0, 1, 1, 1 },
		/* XFER_H2C */	{ 1, 0, 0, 1, 0 },
		/* EXECUTING */	{ 1, 0, 0, 0, 1 },
		/* COMPLETING */ { 1, 0, 0, 0, 0 },
	};
	struct nvt_rdma_req r;

	for (int from = 0; from < 5; from++) {
		for (int to = 0; to < 5; to++) {
			memset(&r, 0, sizeof(r));
			r.state = all[from];
			assert_int_equal(nvt_rdma_req_set_state(&r, all[to]),
					 allowed[from][to] ? 0 : -EINVAL);
			assert_int_equal(r.state, allowed[from][to] ? all[to] : all[from]);
		}
	}
	/* A whole write's life: FREE -> NEW -> XFER_H2C -> EXECUTING -> COMPLETING -> FREE. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_NEW), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_XFER_H2C), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_EXECUTING), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_COMPLETING), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_FREE), 0);
	assert_string_equal(nvt_rdma_req_state_name(NVT_RDMA_REQ_XFER_H2C), "XFER_H2C");
}

struct slot {
	uint8_t capsule[NVT_RDMA_CAPSULE];
	uint8_t data[64];
	struct nvt_rdma_recv recv;
	struct nvt_rdma_req r;
};

static void slot_init(struct slot *s, uint8_t opcode, uint8_t sgl_type, uint64_t addr,
		      uint32_t len, uint32_t received)
{
	struct nvt_sqe *sqe = (struct nvt_sqe *)s->capsule;

	memset(s, 0, sizeof(*s));
	nvt_host_sqe_init(sqe, opcode, 1);
	sqe->common.dptr.addr = htole64(addr);
	if ((sgl_type >> 4) == NVT_SGL_KEYED_DATA) {
		sqe->common.dptr.keyed.length[0] = len & 0xff;
		sqe->common.dptr.keyed.length[1] = (len >> 8) & 0xff;
		sqe->common.dptr.keyed.length[2] = (len >> 16) & 0xff;
		memcpy(sqe->common.dptr.keyed.key, "\x78\x56\x34\x12", 4);
	} else {
		sqe->common.dptr.unkeyed.length = htole32(len);
	}
	sqe->common.dptr.keyed.type = sgl_type;
	s->recv.buf = s->capsule;
	s->recv.byte_len = received;
	s->r.recv = &s->recv;
	s->r.data = s->data;
	s->r.req.cmd = sqe;
}

static void test_map_sgl(void **state)
{
	struct slot s;

	/* Keyed with invalidate, as a Linux host sends it. */
	slot_init(&s, nvme_cmd_read, 0x4f, 0x1000, 4096, 64);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), 0);
	assert_int_equal(s.r.req.transfer_len, 4096);
	assert_int_equal(s.r.rkey, 0x12345678);
	assert_int_equal(s.r.remote_addr, 0x1000);
	assert_false(s.r.in_capsule);
	assert_true(s.r.invalidate);
	slot_init(&s, nvme_cmd_read, 0x40, 0x1000, 512, 64);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), 0);
	assert_false(s.r.invalidate);
	/* Keyed beyond MDTS. */
	slot_init(&s, nvme_cmd_read, 0x40, 0, NVT_RDMA_MAX_DATA + 512, 64);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_INVALID_FIELD);
	assert_int_equal(s.r.req.error_loc, offsetof(struct nvt_sqe_common, dptr));
	/* In-capsule write: data right after the SQE. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, 4096, 64 + 4096);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), 0);
	assert_true(s.r.in_capsule);
	assert_ptr_equal(s.r.iov.iov_base, s.capsule + 64);
	/* In-capsule claiming more than arrived, or than the capsule holds. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, 4096, 64 + 1024);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_SGL_INVALID_OFF);
	slot_init(&s, nvme_cmd_write, 0x01, 8000, 4096, NVT_RDMA_CAPSULE);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_SGL_INVALID_OFF);
	/* In-capsule on the admin queue, or for a read. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, 512, 64 + 512);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, false), NVT_ST_INVALID_FIELD);
	slot_init(&s, nvme_cmd_read, 0x01, 0, 512, 64 + 512);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_INVALID_FIELD);
	/* Types nobody should send: segment, bit bucket, a keyed subtype of 2. */
	slot_init(&s, nvme_cmd_read, 0x20, 0, 16, 64);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_SGL_INVALID_TYPE);
	slot_init(&s, nvme_cmd_read, 0x10, 0, 16, 64);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_SGL_INVALID_TYPE);
	slot_init(&s, nvme_cmd_read, 0x42, 0, 16, 64);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_SGL_INVALID_TYPE);
	/* A data block with an address (not an offset) is not for fabrics. */
	slot_init(&s, nvme_cmd_write, 0x00, 0, 16, 80);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, true), NVT_ST_SGL_INVALID_TYPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cm_req_valid),
		cmocka_unit_test(test_cm_req_rejects),
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_map_sgl),
	};

	nvt_log_set_level(NVT_LOG_OFF);	/* silent: the bad transitions are expected */
	return cmocka_run_group_tests_name("rdma", tests, NULL, NULL);
}
