/* SPDX-License-Identifier: BSD-3-Clause */
/* RDMA transport logic without hardware: CM private data validation, the request state machine, SGL mapping, the chunk pool and data layout, the zero-copy write decision. */
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
		NVT_RDMA_REQ_FREE, NVT_RDMA_REQ_NEW, NVT_RDMA_REQ_NEED_BUFFER, NVT_RDMA_REQ_XFER_H2C,
		NVT_RDMA_REQ_EXECUTING, NVT_RDMA_REQ_COMPLETING,
	};
	/* allowed[from][to] */
	static const bool allowed[6][6] = {
		/* FREE */		{ 0, 1, 0, 0, 0, 0 },
		/* NEW */		{ 1, 0, 1, 1, 1, 1 },
		/* NEED_BUFFER */	{ 1, 0, 0, 1, 1, 0 },
		/* XFER_H2C */		{ 1, 0, 0, 0, 1, 0 },
		/* EXECUTING */		{ 1, 0, 0, 0, 0, 1 },
		/* COMPLETING */	{ 1, 0, 0, 0, 0, 0 },
	};
	struct nvt_rdma_req r;

	for (int from = 0; from < 6; from++) {
		for (int to = 0; to < 6; to++) {
			memset(&r, 0, sizeof(r));
			r.state = all[from];
			assert_int_equal(nvt_rdma_req_set_state(&r, all[to]),
					 allowed[from][to] ? 0 : -EINVAL);
			assert_int_equal(r.state, allowed[from][to] ? all[to] : all[from]);
		}
	}
	/* A write that waited for buffers: FREE -> NEW -> NEED_BUFFER -> XFER_H2C -> EXECUTING -> COMPLETING -> FREE. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_NEW), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_NEED_BUFFER), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_XFER_H2C), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_EXECUTING), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_COMPLETING), 0);
	assert_int_equal(nvt_rdma_req_set_state(&r, NVT_RDMA_REQ_FREE), 0);
	assert_string_equal(nvt_rdma_req_state_name(NVT_RDMA_REQ_XFER_H2C), "XFER_H2C");
	assert_string_equal(nvt_rdma_req_state_name(NVT_RDMA_REQ_NEED_BUFFER), "NEED_BUFFER");
	assert_true(nvt_rdma_req_active(NVT_RDMA_REQ_NEED_BUFFER));
	assert_false(nvt_rdma_req_active(NVT_RDMA_REQ_COMPLETING));
	assert_false(nvt_rdma_req_active(NVT_RDMA_REQ_FREE));
}

#define MAX_IO	(1u << 20)

struct slot {
	uint8_t capsule[NVT_RDMA_CAPSULE];
	struct nvt_rdma_recv recv;
	struct nvt_cqe cqe;
	uint32_t chunks[64];
	struct iovec iov[65];
	struct nvt_rdma_req r;
};

static void slot_init(struct slot *s, uint8_t opcode, uint8_t sgl_type, uint64_t addr,
		      uint32_t len, uint32_t received)
{
	struct nvt_sqe *sqe;

	memset(s, 0, sizeof(*s));
	s->r.cqe = &s->cqe;
	s->r.chunks = s->chunks;
	s->r.iov = s->iov;
	nvt_rdma_req_reset(&s->r);
	sqe = &s->r.sqe;
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
}

static uint16_t map(struct slot *s, bool io_queue)
{
	return nvt_rdma_map_sgl(&s->r, NVT_RDMA_ICDATA, MAX_IO, io_queue);
}

static void test_map_sgl(void **state)
{
	struct slot s;

	/* The command is the slot's own copy: nothing points into the capsule buffer. */
	slot_init(&s, nvme_cmd_read, 0x4f, 0x1000, 4096, 64);
	assert_ptr_equal(s.r.req.cmd, &s.r.sqe);
	assert_ptr_equal(s.r.req.md_buf, s.r.md_scratch);
	assert_int_equal(s.r.req.md_buf_len, NVT_RDMA_MD_SCRATCH);
	/* Keyed with invalidate, as a Linux host sends it. */
	assert_int_equal(map(&s, true), 0);
	assert_int_equal(s.r.req.transfer_len, 4096);
	assert_int_equal(s.r.rkey, 0x12345678);
	assert_int_equal(s.r.remote_addr, 0x1000);
	assert_false(s.r.in_capsule);
	assert_true(s.r.invalidate);
	slot_init(&s, nvme_cmd_read, 0x40, 0x1000, 512, 64);
	assert_int_equal(map(&s, true), 0);
	assert_false(s.r.invalidate);
	/* Keyed beyond MDTS. */
	slot_init(&s, nvme_cmd_read, 0x40, 0, MAX_IO + 512, 64);
	assert_int_equal(map(&s, true), NVT_ST_INVALID_FIELD);
	assert_int_equal(s.r.req.error_loc, offsetof(struct nvt_sqe_common, dptr));
	/* In-capsule write: data right after the SQE. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, 4096, 64 + 4096);
	assert_int_equal(map(&s, true), 0);
	assert_true(s.r.in_capsule);
	assert_ptr_equal(s.r.req.iov, &s.r.icd_iov);
	assert_int_equal(s.r.req.iov_cnt, 1);
	assert_ptr_equal(s.r.icd_iov.iov_base, s.capsule + 64);
	/* In-capsule claiming more than arrived, or than the capsule holds. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, 4096, 64 + 1024);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	slot_init(&s, nvme_cmd_write, 0x01, 8000, 4096, NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	/* In-capsule on the admin queue, or for a read. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, 512, 64 + 512);
	assert_int_equal(map(&s, false), NVT_ST_INVALID_FIELD);
	slot_init(&s, nvme_cmd_read, 0x01, 0, 512, 64 + 512);
	assert_int_equal(map(&s, true), NVT_ST_INVALID_FIELD);
	/* Types nobody should send: segment, bit bucket, a keyed subtype of 2. */
	slot_init(&s, nvme_cmd_read, 0x20, 0, 16, 64);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_TYPE);
	slot_init(&s, nvme_cmd_read, 0x10, 0, 16, 64);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_TYPE);
	slot_init(&s, nvme_cmd_read, 0x42, 0, 16, 64);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_TYPE);
	/* A data block with an address (not an offset) is not for fabrics. */
	slot_init(&s, nvme_cmd_write, 0x00, 0, 16, 80);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_TYPE);
}

/* Every length a host controls, at and around its edges. */
static void test_map_sgl_edges(void **state)
{
	struct slot s;

	/* Keyed: exactly MDTS is fine, one byte more is not; the 24-bit maximum is refused. */
	slot_init(&s, nvme_cmd_read, 0x40, 0, MAX_IO, 64);
	assert_int_equal(map(&s, true), 0);
	assert_int_equal(s.r.req.transfer_len, MAX_IO);
	slot_init(&s, nvme_cmd_read, 0x40, 0, MAX_IO + 1, 64);
	assert_int_equal(map(&s, true), NVT_ST_INVALID_FIELD);
	slot_init(&s, nvme_cmd_read, 0x40, 0, 0xffffff, 64);
	assert_int_equal(map(&s, true), NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_rdma_map_sgl(&s.r, NVT_RDMA_ICDATA, NVT_MAX_IO_SIZE_MAX, true),
			 NVT_ST_INVALID_FIELD);
	/* Keyed, length 0 (what a Linux host sends for no data), at the top of the address space. */
	slot_init(&s, nvme_cmd_read, 0x40, UINT64_MAX, 0, 64);
	assert_int_equal(map(&s, true), 0);
	assert_int_equal(s.r.req.transfer_len, 0);
	assert_int_equal(s.r.remote_addr, UINT64_MAX);
	/* In-capsule: all 8 KiB, and an empty one at the very end. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, NVT_RDMA_ICDATA, NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), 0);
	assert_int_equal(s.r.icd_iov.iov_len, NVT_RDMA_ICDATA);
	slot_init(&s, nvme_cmd_write, 0x01, NVT_RDMA_ICDATA, 0, NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), 0);
	/* One byte past the capsule, by offset or by length. */
	slot_init(&s, nvme_cmd_write, 0x01, NVT_RDMA_ICDATA + 1, 0, NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	slot_init(&s, nvme_cmd_write, 0x01, 1, NVT_RDMA_ICDATA, NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	/* Offset and length whose sum wraps 64 or 32 bits. */
	slot_init(&s, nvme_cmd_write, 0x01, UINT64_MAX, 2, NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	slot_init(&s, nvme_cmd_write, 0x01, UINT64_MAX - 0xffffffffull + 2, 0xffffffff,
		  NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	slot_init(&s, nvme_cmd_write, 0x01, 16, 0xfffffff8, NVT_RDMA_CAPSULE);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	/* Exactly what arrived, and one byte more than that. */
	slot_init(&s, nvme_cmd_write, 0x01, 100, 412, 64 + 512);
	assert_int_equal(map(&s, true), 0);
	slot_init(&s, nvme_cmd_write, 0x01, 100, 413, 64 + 512);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	/* A byte count the HCA would never report cannot widen the capsule either. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, NVT_RDMA_ICDATA + 512, UINT32_MAX);
	assert_int_equal(map(&s, true), NVT_ST_SGL_INVALID_OFF);
	/* Chunk arithmetic: exact multiples and one byte over. */
	assert_int_equal(nvt_rdma_chunks_for(0), 0);
	assert_int_equal(nvt_rdma_chunks_for(1), 1);
	assert_int_equal(nvt_rdma_chunks_for(NVT_RDMA_CHUNK), 1);
	assert_int_equal(nvt_rdma_chunks_for(NVT_RDMA_CHUNK + 1), 2);
	assert_int_equal(nvt_rdma_max_chunks(MAX_IO), 33);
	assert_int_equal(nvt_rdma_max_chunks(NVT_MAX_IO_SIZE_MAX), 264);
}

static void test_pool(void **state)
{
	static uint8_t mem[4 * NVT_RDMA_CHUNK];
	struct nvt_rdma_pool p;
	uint32_t a[4], b[4];

	assert_int_equal(nvt_rdma_pool_init(&p, mem, 4), 0);
	assert_int_equal(p.nr_free, 4);
	/* All or none. */
	assert_true(nvt_rdma_pool_get(&p, a, 3));
	assert_int_equal(a[0], 0);
	assert_int_equal(a[1], 1);
	assert_int_equal(a[2], 2);
	assert_false(nvt_rdma_pool_get(&p, b, 2));
	assert_int_equal(p.nr_free, 1);
	assert_true(nvt_rdma_pool_get(&p, b, 1));
	assert_int_equal(b[0], 3);
	assert_false(nvt_rdma_pool_get(&p, b, 1));
	/* Back in, and out again in the same order. */
	nvt_rdma_pool_put(&p, a, 3);
	assert_int_equal(p.nr_free, 3);
	assert_true(nvt_rdma_pool_get(&p, b, 3));
	assert_memory_equal(a, b, 3 * sizeof(a[0]));
	nvt_rdma_pool_put(&p, b, 3);
	/* A chunk returned twice, or one the pool never had, is refused, not stacked. */
	a[3] = 3;
	nvt_rdma_pool_put(&p, &a[3], 1);
	assert_int_equal(p.nr_free, 4);
	nvt_rdma_pool_put(&p, &a[3], 1);
	assert_int_equal(p.nr_free, 4);
	a[0] = 99;
	nvt_rdma_pool_get(&p, b, 1);
	nvt_rdma_pool_put(&p, a, 1);
	assert_int_equal(p.nr_free, 3);
	nvt_rdma_pool_fini(&p);
}

/*
 * The per-queue cap, nvt_rdma_pool_cap(), at the default numbers: a 64 MiB
 * pool (P = 2048 chunks), 1 MiB max_io_size (M = 33). While the caps fit,
 * they add up to at most P - M; a queue always may have its largest command.
 */
static void test_pool_cap(void **state)
{
	const uint32_t m = nvt_rdma_max_chunks(NVT_MAX_IO_SIZE_DEFAULT);
	struct nvt_rdma_pool p;

	assert_int_equal(m, 33);
	memset(&p, 0, sizeof(p));
	p.nr_chunks = NVT_RDMA_POOL_SIZE / NVT_RDMA_CHUNK;
	p.max_cmd = m;
	assert_int_equal(p.nr_chunks, 2048);
	/* Not Fabrics-connected: a Connect's data, nothing more. */
	assert_int_equal(nvt_rdma_pool_cap(&p, false, m), NVT_RDMA_CONNECT_CHUNKS);
	p.nr_queues = p.nr_connected = 1;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), 2015);
	p.nr_queues = p.nr_connected = 2;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), 1007);
	p.nr_queues = p.nr_connected = 16;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), 125);
	for (uint32_t n = 1; n <= 61; n++) {
		p.nr_queues = p.nr_connected = n;
		assert_true(nvt_rdma_pool_cap(&p, true, m) >= m);
		assert_true((uint64_t)n * nvt_rdma_pool_cap(&p, true, m) <= p.nr_chunks - m);
	}
	/* Past 61 queues every queue keeps one largest command. */
	p.nr_queues = p.nr_connected = 62;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), m);
	p.nr_queues = p.nr_connected = 1000;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), m);
	/* Queues not yet connected hold one chunk each, set aside from the share. */
	p.nr_queues = 16 + 129;
	p.nr_connected = 16;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), (2048 - 33 - 129) / 16);
	assert_true(16 * nvt_rdma_pool_cap(&p, true, m) + 129 <= p.nr_chunks - m);
	/* A queue's own largest command counts when the pool does not know one bigger. */
	p.max_cmd = 0;
	p.nr_queues = p.nr_connected = 100;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, 264), 264);
	/* A pool smaller than that (unit tests): the queue's largest command still. */
	p.nr_chunks = 4;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), m);
	p.nr_queues = p.nr_connected = 0;
	assert_int_equal(nvt_rdma_pool_cap(&p, true, m), m);
}

/* A slot holding chunks 5, 2, 7, ... of a pool: what the core sees as data and PI scratch. */
static void test_plan_layout(void **state)
{
	static uint8_t mem[8 * NVT_RDMA_CHUNK];
	struct nvt_rdma_pool p;
	struct slot s;
	unsigned int n;

	assert_int_equal(nvt_rdma_pool_init(&p, mem, 8), 0);

	/* A 64 KiB + 1 KiB read: three chunks, the last one partly. */
	slot_init(&s, nvme_cmd_read, 0x40, 0x1000, 66560, 64);
	assert_int_equal(map(&s, true), 0);
	s.r.req.data_len = 66560;
	nvt_rdma_req_plan(&s.r);
	assert_true(s.r.c2h);
	assert_false(s.r.h2c);
	assert_int_equal(s.r.need, 3);
	assert_int_equal(s.r.md_len, 0);
	s.chunks[0] = 5, s.chunks[1] = 2, s.chunks[2] = 7;
	s.r.nr_chunks = 3;
	n = nvt_rdma_req_layout(&s.r, &p);
	assert_int_equal(n, 3);
	assert_ptr_equal(s.r.req.iov, s.iov);
	assert_int_equal(s.r.req.iov_cnt, 3);
	assert_ptr_equal(s.iov[0].iov_base, mem + 5 * NVT_RDMA_CHUNK);
	assert_int_equal(s.iov[0].iov_len, NVT_RDMA_CHUNK);
	assert_ptr_equal(s.iov[1].iov_base, mem + 2 * NVT_RDMA_CHUNK);
	assert_ptr_equal(s.iov[2].iov_base, mem + 7 * NVT_RDMA_CHUNK);
	assert_int_equal(s.iov[2].iov_len, 1024);

	/* A write of exactly two chunks whose PI the core inserts: the scratch follows in a third. */
	slot_init(&s, nvme_cmd_write, 0x40, 0x1000, 2 * NVT_RDMA_CHUNK, 64);
	assert_int_equal(map(&s, true), 0);
	s.r.req.data_len = 2 * NVT_RDMA_CHUNK;
	s.r.req.md_len = 128 * 8;	/* what io.c's parse asks for */
	nvt_rdma_req_plan(&s.r);
	assert_true(s.r.h2c);
	assert_int_equal(s.r.md_len, 1024);
	assert_int_equal(s.r.need, 3);
	s.chunks[0] = 1, s.chunks[1] = 0, s.chunks[2] = 4;
	s.r.nr_chunks = 3;
	n = nvt_rdma_req_layout(&s.r, &p);
	assert_int_equal(n, 2);
	assert_ptr_equal(s.r.req.md_iov, &s.iov[2]);
	assert_int_equal(s.r.req.md_iov_cnt, 1);
	assert_ptr_equal(s.iov[2].iov_base, mem + 4 * NVT_RDMA_CHUNK);
	assert_int_equal(s.iov[2].iov_len, 1024);

	/* Data ending mid-chunk with PI scratch running over into the next chunk. */
	slot_init(&s, nvme_cmd_write, 0x40, 0x1000, NVT_RDMA_CHUNK - 512, 64);
	assert_int_equal(map(&s, true), 0);
	s.r.req.data_len = NVT_RDMA_CHUNK - 512;
	s.r.req.md_len = 1024;
	nvt_rdma_req_plan(&s.r);
	assert_int_equal(s.r.need, 2);
	s.chunks[0] = 6, s.chunks[1] = 3;
	s.r.nr_chunks = 2;
	n = nvt_rdma_req_layout(&s.r, &p);
	assert_int_equal(n, 1);
	assert_int_equal(s.r.req.md_iov_cnt, 2);
	assert_ptr_equal(s.iov[1].iov_base, mem + 7 * NVT_RDMA_CHUNK - 512);
	assert_int_equal(s.iov[1].iov_len, 512);
	assert_ptr_equal(s.iov[2].iov_base, mem + 3 * NVT_RDMA_CHUNK);
	assert_int_equal(s.iov[2].iov_len, 512);

	/* PI scratch that fits the slot's own stays there: no chunk for it. */
	slot_init(&s, nvme_cmd_write, 0x40, 0x1000, 4096, 64);
	assert_int_equal(map(&s, true), 0);
	s.r.req.data_len = 4096;
	s.r.req.md_buf_iov.iov_len = NVT_RDMA_MD_SCRATCH;
	s.r.req.md_iov = &s.r.req.md_buf_iov;
	s.r.req.md_iov_cnt = 1;
	nvt_rdma_req_plan(&s.r);
	assert_int_equal(s.r.need, 1);
	assert_int_equal(s.r.md_len, 0);

	/* In-capsule data and no data take no chunks; nor does a transfer the core will refuse. */
	slot_init(&s, nvme_cmd_write, 0x01, 0, 4096, 64 + 4096);
	assert_int_equal(map(&s, true), 0);
	s.r.req.data_len = 4096;
	nvt_rdma_req_plan(&s.r);
	assert_int_equal(s.r.need, 0);
	assert_false(s.r.h2c);
	slot_init(&s, nvme_cmd_flush, 0x40, 0, 0, 64);
	assert_int_equal(map(&s, true), 0);
	nvt_rdma_req_plan(&s.r);
	assert_int_equal(s.r.need, 0);
	slot_init(&s, nvme_cmd_write, 0x40, 0x1000, 4096, 64);
	assert_int_equal(map(&s, true), 0);
	s.r.req.data_len = 8192;
	nvt_rdma_req_plan(&s.r);
	assert_int_equal(s.r.need, 0);
	assert_false(s.r.h2c);
	nvt_rdma_pool_fini(&p);
}

/* A Write of @nlb 512-byte blocks at @slba, keyed, planned: what nvt_rdma_zc_write() sees. */
static void zc_req(struct nvt_rdma_req *r, struct nvt_sqe *sqe, struct nvt_ns *ns, uint64_t slba,
		   uint32_t nlb, struct iovec *iov)
{
	memset(r, 0, sizeof(*r));
	memset(sqe, 0, sizeof(*sqe));
	memset(ns, 0, sizeof(*ns));
	ns->lba_shift = 9;
	ns->block_size = 512;
	ns->nblocks = 64;
	r->iov = iov;
	nvt_rdma_req_reset(r);
	r->req.cmd = sqe;
	sqe->common.opcode = nvme_cmd_write;
	r->req.ns = ns;
	r->req.bio.op = NVT_BIO_WRITE;
	r->req.bio.slba = slba;
	r->req.bio.nlb = nlb;
	r->req.data_len = r->req.transfer_len = nlb << 9;
	r->h2c = true;
	r->need = nvt_rdma_chunks_for(r->req.data_len);
}

/* Zero copy is taken for a plain keyed Write to a namespace without metadata, and nothing else. */
static void test_zc_write_decision(void **state)
{
	static uint8_t mem[64 * 512];
	struct nvt_rdma_req r;
	struct nvt_sqe sqe;
	struct nvt_ns ns;
	struct iovec iov[2];

	zc_req(&r, &sqe, &ns, 8, 4, iov);
	assert_true(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	assert_true(r.zc);
	assert_false(r.h2c);
	assert_int_equal(r.need, 0);
	assert_int_equal(r.req.iov_cnt, 1);
	assert_ptr_equal(r.req.iov, iov);
	assert_ptr_equal(iov[0].iov_base, mem + 8 * 512);
	assert_int_equal(iov[0].iov_len, 4 * 512);
	/* The last blocks of the namespace, up to its end. */
	zc_req(&r, &sqe, &ns, 60, 4, iov);
	assert_true(nvt_rdma_zc_write(&r, mem, sizeof(mem)));

	/* Past the memory: never, whatever parse let through. */
	zc_req(&r, &sqe, &ns, 61, 4, iov);
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 64, 1, iov);
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, UINT64_MAX >> 9, 1, iov);
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	/* PI on, or any metadata: the PI step (or the metadata's own mapping) needs the copy. */
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	ns.pi.type = 1;
	ns.md_size = 8;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	ns.md_size = 8;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.req.bio.flags |= NVT_BIO_EXT;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.md_len = 64 * 1024;	/* PI scratch in chunks */
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.req.md_len = 8;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	/* Fused Compare and Write: the range lock's, the Write staged until the Compare matched. */
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	sqe.common.flags = 2;	/* second command of a fused pair */
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.req.flags |= NVT_REQ_FUSED_SECOND;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	/* Not a Write: Compare, Copy (its descriptors), a Write Zeroes has no data. */
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	sqe.common.opcode = nvme_cmd_compare;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	sqe.common.opcode = nvme_cmd_copy;
	r.req.bio.op = NVT_BIO_COPY;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	/* SGL shapes: in-capsule data is here already; nothing to fetch (h2c unset): no zero copy. */
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.in_capsule = true;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.h2c = false;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	/* The host's SGL moves more than the blocks (extended LBAs off the wire's view): no. */
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.req.data_len = 520;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	/* No namespace memory (not a ram namespace), no namespace. */
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	assert_false(nvt_rdma_zc_write(&r, NULL, 0));
	zc_req(&r, &sqe, &ns, 0, 1, iov);
	r.req.ns = NULL;
	assert_false(nvt_rdma_zc_write(&r, mem, sizeof(mem)));
	/* Refused: the request is left as planned. */
	assert_true(r.need > 0 || r.req.data_len <= 512);
	assert_false(r.zc);
	assert_true(r.h2c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cm_req_valid),
		cmocka_unit_test(test_cm_req_rejects),
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_map_sgl),
		cmocka_unit_test(test_map_sgl_edges),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_pool_cap),
		cmocka_unit_test(test_plan_layout),
		cmocka_unit_test(test_zc_write_decision),
	};

	nvt_log_set_level(NVT_LOG_OFF);	/* silent: the bad transitions are expected */
	return cmocka_run_group_tests_name("rdma", tests, NULL, NULL);
}
