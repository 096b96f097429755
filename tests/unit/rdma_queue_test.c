/* SPDX-License-Identifier: BSD-3-Clause */
/* The RDMA queue's data path against a fake verbs layer: capsules in, READ/WRITE/SEND out, each slot state checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../transport/rdma/rdma.c"
#include "../e2e/nvt_test_target.h"
#include "nvt/host.h"

/* ---- the fake verbs and CM layer ---- */

struct posted {
	enum ibv_wr_opcode opcode;
	uint32_t length;
	uint64_t remote_addr;
	uint32_t rkey;
	uint64_t wr_id;
	int send_flags;
	const void *addr;
};

static struct posted sends[64];
static unsigned int nr_sends, nr_recvs, nr_disconnects;
static struct ibv_wc cq_entries[64];
static unsigned int nr_cq_entries;

static int fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	for (; wr; wr = wr->next) {
		sends[nr_sends++] = (struct posted){
			.opcode = wr->opcode, .length = wr->sg_list ? wr->sg_list->length : 0,
			.remote_addr = wr->wr.rdma.remote_addr, .rkey = wr->wr.rdma.rkey,
			.wr_id = wr->wr_id, .send_flags = (int)wr->send_flags,
			.addr = wr->sg_list ? (const void *)(uintptr_t)wr->sg_list->addr : NULL,
		};
	}
	return 0;
}

static int fake_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	for (; wr; wr = wr->next)
		nr_recvs++;
	return 0;
}

static int fake_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	int k = 0;

	while (k < n && nr_cq_entries)
		wc[k++] = cq_entries[--nr_cq_entries];
	return k;
}

static int fake_req_notify_cq(struct ibv_cq *cq, int solicited)
{
	return 0;
}

/* The test executable's definition wins over librdmacm's for our objects. */
int rdma_disconnect(struct rdma_cm_id *id)
{
	nr_disconnects++;
	return 0;
}

static struct ibv_context fake_ctx = {
	.ops = {
		.post_send = fake_post_send,
		.post_recv = fake_post_recv,
		.poll_cq = fake_poll_cq,
		.req_notify_cq = fake_req_notify_cq,
	},
};
static struct ibv_qp fake_qp = { .context = &fake_ctx };
static struct ibv_cq fake_cq = { .context = &fake_ctx };
static struct rdma_cm_id fake_id = { .qp = &fake_qp };
static struct ibv_mr fake_mr = { .lkey = 7 };

struct fixture {
	struct nvt_target *tgt;
	struct nvt_port port;
	struct nvt_rdma_port rport;
	struct nvt_rdma_queue *admin, *io;
};

static struct nvt_rdma_queue *queue_create(struct fixture *f, uint16_t qid, uint16_t depth)
{
	struct nvt_rdma_queue *q = calloc(1, sizeof(*q));

	q->rport = &f->rport;
	q->cm_id = &fake_id;
	q->cq = &fake_cq;
	q->recv_mr = q->cqe_mr = q->data_mr = &fake_mr;
	q->recv_depth = q->nr_reqs = depth;
	q->pg = f->tgt->pg;
	assert_int_equal(nvt_rdma_queue_alloc_buffers(q), 0);
	nvt_sq_init(&q->sq, f->tgt, &nvt_rdma_transport_ops, &f->port, qid, depth);
	q->state = NVT_RDMA_Q_LIVE;
	return q;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->tgt = nvt_test_target_create();
	assert_non_null(f->tgt);
	assert_int_equal(nvt_poll_group_create(&f->tgt->pg), 0);
	f->port.tgt = f->tgt;
	f->port.ops = &nvt_rdma_transport_ops;
	f->rport.port = &f->port;
	f->admin = queue_create(f, 0, 8);
	nr_sends = nr_recvs = nr_disconnects = nr_cq_entries = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->io) {
		nvt_sq_destroy(&f->io->sq);
		nvt_rdma_queue_free(f->io);
	}
	nvt_sq_destroy(&f->admin->sq);
	nvt_rdma_queue_free(f->admin);
	nvt_poll_group_destroy(f->tgt->pg);
	f->tgt->pg = NULL;
	nvt_target_destroy(f->tgt);
	free(f);
	return 0;
}

/* A capsule lands in RECV buffer @slot of @q. */
static void recv_capsule(struct nvt_rdma_queue *q, unsigned int slot, const struct nvt_sqe *sqe,
			 const void *icdata, uint32_t iclen)
{
	struct nvt_rdma_recv *rv = &q->recvs[slot];
	struct ibv_wc wc = { .wr_id = (uintptr_t)&rv->wr, .status = IBV_WC_SUCCESS,
			     .opcode = IBV_WC_RECV, .byte_len = (uint32_t)sizeof(*sqe) + iclen };

	memcpy(rv->buf, sqe, sizeof(*sqe));
	if (iclen)
		memcpy(rv->buf + sizeof(*sqe), icdata, iclen);
	q->posted_recvs++;
	nvt_rdma_handle_wc(q, &wc);
}

static void keyed(struct nvt_sqe *sqe, uint64_t addr, uint32_t len, uint32_t key)
{
	sqe->common.dptr.addr = htole64(addr);
	sqe->common.dptr.keyed.length[0] = len & 0xff;
	sqe->common.dptr.keyed.length[1] = (len >> 8) & 0xff;
	sqe->common.dptr.keyed.length[2] = (len >> 16) & 0xff;
	memcpy(sqe->common.dptr.keyed.key, &key, 4);
	sqe->common.dptr.keyed.type = 0x4f;	/* keyed, invalidate: what Linux sends */
}

static struct nvt_rdma_req *slot_of(uint64_t wr_id, bool data_wr)
{
	struct nvt_rdma_wr *wr = (struct nvt_rdma_wr *)(uintptr_t)wr_id;

	return data_wr ? container_of(wr, struct nvt_rdma_req, data_wr) :
			 container_of(wr, struct nvt_rdma_req, send_wr);
}

static void complete_wr(struct nvt_rdma_queue *q, uint64_t wr_id, enum ibv_wc_status status)
{
	struct ibv_wc wc = { .wr_id = wr_id, .status = status };

	nvt_rdma_handle_wc(q, &wc);
}

static const struct nvt_cqe *sent_cqe(unsigned int i)
{
	assert_int_equal(sends[i].opcode, IBV_WR_SEND);
	return sends[i].addr;
}

/* Connect on the admin queue: READ of the connect data, then the response SEND. */
static uint16_t do_connect(struct fixture *f)
{
	struct nvmf_connect_data d = { .cntlid = htole16(0xffff) };
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe = { 0 };
	uint16_t cntlid;

	sqe.connect.opcode = NVT_OPC_FABRICS;
	sqe.connect.fctype = NVT_FCTYPE_CONNECT;
	sqe.connect.sqsize = htole16(7);
	sqe.connect.kato = htole32(5000);
	keyed(&sqe, 0x10000, sizeof(d), 0xabcd);
	strcpy(d.subsysnqn, TEST_NQN);
	strcpy(d.hostnqn, TEST_HOST);

	recv_capsule(f->admin, 0, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_READ);
	assert_int_equal(sends[0].length, sizeof(d));
	assert_int_equal(sends[0].remote_addr, 0x10000);
	assert_int_equal(sends[0].rkey, 0xabcd);
	assert_true(sends[0].send_flags & IBV_SEND_SIGNALED);
	r = slot_of(sends[0].wr_id, true);
	assert_int_equal(r->state, NVT_RDMA_REQ_XFER_H2C);
	/* The READ lands the host's data, then completes. */
	memcpy(r->data, &d, sizeof(d));
	complete_wr(f->admin, sends[0].wr_id, IBV_WC_SUCCESS);
	assert_int_equal(r->state, NVT_RDMA_REQ_COMPLETING);
	assert_int_equal(nr_recvs, 1);		/* the capsule buffer went back first */
	assert_int_equal(nr_sends, 2);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	cntlid = (uint16_t)le32toh(sent_cqe(1)->result.u32);
	complete_wr(f->admin, sends[1].wr_id, IBV_WC_SUCCESS);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	nr_sends = nr_recvs = 0;
	return cntlid;
}

/* Property Set CC.EN=1 on the admin queue (no data: keyed length 0). */
static void enable(struct fixture *f, unsigned int slot)
{
	struct nvt_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.prop.opcode = NVT_OPC_FABRICS;
	sqe.prop.fctype = NVT_FCTYPE_PROP_SET;
	sqe.prop.offset = htole32(NVT_PROP_CC);
	sqe.prop.value = htole64((6u << 16) | (4u << 20) | 1);
	keyed(&sqe, 0, 0, 0);
	nr_sends = 0;
	recv_capsule(f->admin, slot, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(le16toh(sent_cqe(0)->status), 0);
	complete_wr(f->admin, sends[0].wr_id, IBV_WC_SUCCESS);
	nr_sends = nr_recvs = 0;
}

static void test_connect_identify(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;
	struct nvt_rdma_req *r;
	const struct nvme_id_ctrl *id;

	assert_true(do_connect(f) > 0);
	enable(f, 1);

	/* Identify: the 4 KiB go out by RDMA WRITE chained ahead of the SEND. */
	nr_sends = 0;
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	keyed(&sqe, 0x20000, 4096, 0x1234);
	recv_capsule(f->admin, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_WRITE);
	assert_int_equal(sends[0].length, 4096);
	assert_int_equal(sends[0].remote_addr, 0x20000);
	assert_int_equal(sends[0].rkey, 0x1234);
	assert_false(sends[0].send_flags & IBV_SEND_SIGNALED);
	id = sends[0].addr;
	assert_string_equal(id->subnqn, TEST_NQN);
	assert_int_equal(le32toh(id->ioccsz), (64 + NVT_RDMA_ICDATA) / 16);
	assert_true(le32toh(id->sgls) & NVME_CTRL_SGLS_OFFSET);
	/* rxe-like fake: no SEND_WITH_INV. */
	assert_int_equal(sends[1].opcode, IBV_WR_SEND);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	r = slot_of(sends[1].wr_id, false);
	assert_int_equal(r->state, NVT_RDMA_REQ_COMPLETING);
	complete_wr(f->admin, sends[1].wr_id, IBV_WC_SUCCESS);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
}

static void test_bad_capsules(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;
	struct nvt_rdma_recv *rv = &f->admin->recvs[3];
	struct ibv_wc wc = { .wr_id = (uintptr_t)&rv->wr, .status = IBV_WC_SUCCESS, .byte_len = 40 };

	/* Shorter than an SQE: the buffer is reposted, nothing is answered. */
	f->admin->posted_recvs++;
	nvt_rdma_handle_wc(f->admin, &wc);
	assert_int_equal(nr_recvs, 1);
	assert_int_equal(nr_sends, 0);
	/* A command before Connect: sequence error, no data moved. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	keyed(&sqe, 0x20000, 4096, 1);
	recv_capsule(f->admin, 0, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal((le16toh(sent_cqe(0)->status) >> 1) & 0xff, NVME_SC_CMD_SEQ_ERROR);
	complete_wr(f->admin, sends[0].wr_id, IBV_WC_SUCCESS);
	nr_sends = nr_recvs = 0;

	assert_true(do_connect(f) > 0);
	enable(f, 4);
	/* An SGL segment descriptor: SGL descriptor type invalid. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	sqe.common.dptr.keyed.type = 0x20;
	recv_capsule(f->admin, 1, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal((le16toh(sent_cqe(0)->status) >> 1) & 0x7ff, NVME_SC_SGL_INVALID_TYPE);
	complete_wr(f->admin, sends[0].wr_id, IBV_WC_SUCCESS);
	/* More than MDTS in one keyed SGL: invalid field, no READ. */
	nr_sends = 0;
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, 512);
	keyed(&sqe, 0x30000, NVT_RDMA_MAX_DATA + 4096, 1);
	recv_capsule(f->admin, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].opcode, IBV_WR_SEND);
	complete_wr(f->admin, sends[0].wr_id, IBV_WC_SUCCESS);
	/* A host that sends more commands than its queue has entries is dropped. */
	nr_sends = 0;
	f->admin->free_reqs = NULL;
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	recv_capsule(f->admin, 3, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 0);
	assert_int_equal(nr_disconnects, 1);
	assert_int_equal(f->admin->state, NVT_RDMA_Q_DISCONNECTING);
}

static void test_io_queue_incapsule_and_flush(void **state)
{
	struct fixture *f = *state;
	uint16_t cntlid = do_connect(f);
	struct nvmf_connect_data d = { .cntlid = htole16(cntlid) };
	uint8_t data[4096], back[4096];
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe;

	/* Enable, then an I/O queue: its Connect is a write too (the data by READ). */
	enable(f, 1);
	f->io = queue_create(f, 1, 8);
	nr_sends = 0;
	memset(&sqe, 0, sizeof(sqe));
	sqe.connect.opcode = NVT_OPC_FABRICS;
	sqe.connect.fctype = NVT_FCTYPE_CONNECT;
	sqe.connect.qid = htole16(1);
	sqe.connect.sqsize = htole16(7);
	keyed(&sqe, 0x10000, sizeof(d), 1);
	strcpy(d.subsysnqn, TEST_NQN);
	strcpy(d.hostnqn, TEST_HOST);
	recv_capsule(f->io, 0, &sqe, NULL, 0);
	memcpy(slot_of(sends[0].wr_id, true)->data, &d, sizeof(d));
	complete_wr(f->io, sends[0].wr_id, IBV_WC_SUCCESS);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	complete_wr(f->io, sends[1].wr_id, IBV_WC_SUCCESS);

	/* An in-capsule 4 KiB write: no READ, straight to the backend, then the SEND. */
	nr_sends = 0;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 512);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, 5, 1);
	sqe.common.dptr.addr = 0;
	sqe.common.dptr.unkeyed.length = htole32(sizeof(data));
	sqe.common.dptr.keyed.type = 0x01;
	recv_capsule(f->io, 1, &sqe, data, sizeof(data));
	assert_int_equal(nr_sends, 1);
	assert_int_equal(le16toh(sent_cqe(0)->status), 0);
	complete_wr(f->io, sends[0].wr_id, IBV_WC_SUCCESS);
	/* Read it back: WRITE + SEND. */
	nr_sends = 0;
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 5, 1);
	keyed(&sqe, 0x40000, sizeof(back), 9);
	recv_capsule(f->io, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_memory_equal(sends[0].addr, data, sizeof(data));

	/* The queue dies with that response and a READ in flight: flushes return every slot. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, 6, 1);
	keyed(&sqe, 0x50000, 4096, 9);
	recv_capsule(f->io, 3, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 3);
	assert_int_equal(sends[2].opcode, IBV_WR_RDMA_READ);
	r = slot_of(sends[2].wr_id, true);
	f->io->state = NVT_RDMA_Q_DISCONNECTING;
	cq_entries[nr_cq_entries++] = (struct ibv_wc){ .wr_id = sends[1].wr_id,
						       .status = IBV_WC_WR_FLUSH_ERR };
	cq_entries[nr_cq_entries++] = (struct ibv_wc){ .wr_id = sends[2].wr_id,
						       .status = IBV_WC_WR_FLUSH_ERR };
	nvt_rdma_queue_drain(f->io);
	assert_int_equal(f->io->posted_sends, 0);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	for (unsigned int i = 0; i < f->io->nr_reqs; i++)
		assert_int_equal(f->io->reqs[i].state, NVT_RDMA_REQ_FREE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_capsules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_queue_incapsule_and_flush, setup, teardown),
	};

	nvt_log_set_level(NVT_LOG_OFF);
	return cmocka_run_group_tests_name("rdma_queue", tests, NULL, NULL);
}
