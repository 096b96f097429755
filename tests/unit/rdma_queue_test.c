/* SPDX-License-Identifier: BSD-3-Clause */
/* The RDMA queue's data path against a fake verbs layer that owns what a real HCA owns: capsules in, READ/WRITE/SEND out, pooled data chunks, each slot state checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "../../transport/rdma/rdma.c"
#include "../e2e/nvt_test_target.h"
#include "../nvt_fake_verbs.h"
#include "nvt/backend.h"
#include "nvt/host.h"

/* ---- the fake verbs and CM layer ---- */

#define MAX_POSTED	512
#define MAX_SGES	64

struct fake_qp {
	struct ibv_qp qp;
	unsigned int max_send_wr, max_sge;	/* as created */
	unsigned int in_sq;			/* WRs posted and not yet retired */
};

struct fake_conn {
	struct rdma_cm_id id;
	struct fake_qp fq;
	struct fake_conn *next;
};

struct posted {
	struct fake_qp *fq;
	uint64_t seq;
	enum ibv_wr_opcode opcode;
	uint64_t wr_id;
	int send_flags;
	uint64_t remote_addr;
	uint32_t rkey;
	uint32_t invalidate_rkey;
	int num_sge;
	struct ibv_sge sge[MAX_SGES];
	uint32_t length;			/* all SGEs */
	uint8_t *data;				/* WRITE, SEND: what the HCA read when it was posted */
	bool retired;
};

static struct posted sends[MAX_POSTED];
static unsigned int nr_sends, nr_recvs, nr_disconnects;
static unsigned int nr_post_send_calls, nr_post_recv_calls;	/* doorbells: system calls on rxe */
static uint64_t post_seq;
static bool sq_overflowed;		/* a post beyond the QP's send queue */
static int post_fail_after = -1;	/* the next post takes this many WRs, then fails */
static bool post_fail_no_bad;		/* and leaves *bad unset, as a provider may */
static void *posted_recv_bufs[1024];	/* RECVs the HCA holds */
static unsigned int nr_posted_recv_bufs;
static struct ibv_wc cq_entries[MAX_POSTED];
static unsigned int cq_entry_idx[MAX_POSTED];	/* into sends[], or NO_SEND for a RECV */
static unsigned int nr_cq_entries, cq_head;
#define NO_SEND		UINT32_MAX
static unsigned int nr_rejects, nr_query_device, nr_qp_errors;
static uint16_t last_reject_sts;
static unsigned int removed_devs_at_destroy;	/* removed pools alive when an id on them went */
static unsigned int nr_destroyed_ids;		/* cm_ids destroyed: a queue gone for good */
static struct rdma_cm_event cm_events[4];	/* what rdma_get_cm_event() hands out, in order */
static unsigned int nr_cm_events, cm_event_head;

static void sends_reset(void)
{
	nr_post_send_calls = nr_post_recv_calls = 0;
	for (unsigned int i = 0; i < nr_sends; i++) {
		free(sends[i].data);
		sends[i].data = NULL;
	}
	nr_sends = 0;
}

/* The HCA is done with WR @p and, send queues completing in order, with every WR before it. */
static void hca_retire(const struct posted *p)
{
	for (unsigned int i = 0; i < nr_sends; i++) {
		struct posted *o = &sends[i];

		if (o->fq != p->fq || o->seq > p->seq || o->retired)
			continue;
		o->retired = true;
		o->fq->in_sq--;
		for (int k = 0; k < o->num_sge; k++)
			HCA_GIVES((void *)(uintptr_t)o->sge[k].addr, o->sge[k].length);
	}
}

static int fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	struct fake_qp *fq = container_of(qp, struct fake_qp, qp);

	nr_post_send_calls++;
	for (; wr; wr = wr->next) {
		struct posted *p = &sends[nr_sends];
		uint32_t off = 0;

		assert_true(nr_sends < MAX_POSTED);
		assert_true((unsigned int)wr->num_sge <= fq->max_sge);
		if (post_fail_after == 0) {
			post_fail_after = -1;
			if (!post_fail_no_bad)
				*bad = wr;
			return EINVAL;
		}
		if (post_fail_after > 0)
			post_fail_after--;
		/* A real send queue refuses; the transport must never get here. */
		if (fq->in_sq + 1 > fq->max_send_wr) {
			sq_overflowed = true;
			*bad = wr;
			return ENOMEM;
		}
		memset(p, 0, sizeof(*p));
		p->fq = fq;
		p->seq = ++post_seq;
		p->opcode = wr->opcode;
		p->wr_id = wr->wr_id;
		p->send_flags = (int)wr->send_flags;
		p->remote_addr = wr->wr.rdma.remote_addr;
		p->rkey = wr->wr.rdma.rkey;
		p->invalidate_rkey = wr->invalidate_rkey;
		p->num_sge = wr->num_sge;
		for (int k = 0; k < wr->num_sge; k++) {
			p->sge[k] = wr->sg_list[k];
			p->length += wr->sg_list[k].length;
		}
		if (wr->opcode != IBV_WR_RDMA_READ) {
			p->data = malloc(p->length ? p->length : 1);
			for (int k = 0; k < wr->num_sge; k++) {
				memcpy(p->data + off, (void *)(uintptr_t)p->sge[k].addr,
				       p->sge[k].length);
				off += p->sge[k].length;
			}
		}
		for (int k = 0; k < wr->num_sge; k++)
			HCA_TAKES((void *)(uintptr_t)p->sge[k].addr, p->sge[k].length);
		fq->in_sq++;
		nr_sends++;
	}
	return 0;
}

static int fake_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	nr_post_recv_calls++;
	for (; wr; wr = wr->next) {
		void *buf = (void *)(uintptr_t)wr->sg_list[0].addr;

		/* A capsule may land at once: whatever still reads this buffer reads garbage. */
		HCA_GIVES(buf, wr->sg_list[0].length);
		memset(buf, 0xff, wr->sg_list[0].length);
		HCA_TAKES(buf, wr->sg_list[0].length);
		assert_true(nr_posted_recv_bufs < NVT_ARRAY_SIZE(posted_recv_bufs));
		posted_recv_bufs[nr_posted_recv_bufs++] = buf;
		nr_recvs++;
	}
	return 0;
}

static unsigned int nr_srq_posts;	/* ibv_post_srq_recv calls */
static int srq_fail_after = -1;		/* the next post takes this many WRs, then fails */
static bool srq_fail_no_bad;		/* and leaves *bad unset, as a provider may */
static struct nvt_rdma_dev *fake_dev;	/* the fixture's (device, poll group) */

/* Shared buffers the HCA holds. */
static unsigned int srq_posted_count(void)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < nr_posted_recv_bufs; i++)
		n += fake_dev && fake_dev->srq_bufs &&
		     (uint8_t *)posted_recv_bufs[i] >= fake_dev->srq_bufs &&
		     (uint8_t *)posted_recv_bufs[i] <
			     fake_dev->srq_bufs + (size_t)fake_dev->srq_depth * NVT_RDMA_CAPSULE;
	return n;
}

/*
 * The shared receive queue: its buffers are the HCA's like a QP's RECVs.
 * It holds srq_depth WRs, no more (a real one refuses with ENOMEM), and a
 * buffer posted twice is a transport bug.
 */
static int fake_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	nr_srq_posts++;
	for (; wr; wr = wr->next) {
		void *buf = (void *)(uintptr_t)wr->sg_list[0].addr;

		if (srq_fail_after == 0) {
			srq_fail_after = -1;
			if (!srq_fail_no_bad)
				*bad = wr;
			return EIO;
		}
		if (srq_fail_after > 0)
			srq_fail_after--;
		for (unsigned int i = 0; i < nr_posted_recv_bufs; i++)
			assert_ptr_not_equal(posted_recv_bufs[i], buf);
		if (fake_dev && fake_dev->srq_depth && srq_posted_count() >= fake_dev->srq_depth) {
			*bad = wr;
			return ENOMEM;
		}

		HCA_GIVES(buf, wr->sg_list[0].length);
		memset(buf, 0xff, wr->sg_list[0].length);
		HCA_TAKES(buf, wr->sg_list[0].length);
		assert_true(nr_posted_recv_bufs < NVT_ARRAY_SIZE(posted_recv_bufs));
		posted_recv_bufs[nr_posted_recv_bufs++] = buf;
		nr_recvs++;
	}
	return 0;
}

static int fake_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	int k = 0;

	while (k < n && cq_head < nr_cq_entries) {
		if (cq_entry_idx[cq_head] != NO_SEND)
			hca_retire(&sends[cq_entry_idx[cq_head]]);
		wc[k++] = cq_entries[cq_head++];
	}
	return k;
}

static unsigned int nr_cq_arms;
static int arm_fails;		/* what ibv_req_notify_cq returns (a positive errno) */
static bool cq_armed;		/* the next completion raises a channel event */
static int arm_pushes = -1;	/* the send WR whose completion lands just as the CQ is armed */
static void cq_push(unsigned int i, enum ibv_wc_status status);

static int fake_req_notify_cq(struct ibv_cq *cq, int solicited)
{
	nr_cq_arms++;
	if (arm_fails)
		return arm_fails;
	cq_armed = true;
	if (arm_pushes >= 0)
		cq_push((unsigned int)arm_pushes, IBV_WC_SUCCESS);
	arm_pushes = -1;
	return 0;
}


/* The test executable's definitions win over the libraries' for our objects. */
int rdma_disconnect(struct rdma_cm_id *id)
{
	nr_disconnects++;
	return 0;
}

/*
 * As mlx5 does (__mlx5_cq_clean()): a destroyed QP's completions not yet
 * reaped leave the CQ, and a capsule among them takes its shared buffer
 * with it (its SRQ WQE is freed, never reposted).
 */
static bool destroy_cleans_cq;
static int destroy_pushes = -1;	/* the send WR whose flush lands as its QP is destroyed */
static unsigned int nr_known_at_destroy;	/* QPs destroyed while their number still routed */

void rdma_destroy_qp(struct rdma_cm_id *id)
{
	struct fake_qp *fq = container_of(id->qp, struct fake_qp, qp);

	if (fake_dev && fake_dev->srq && nvt_rdma_qp_find(fake_dev, fq->qp.qp_num))
		nr_known_at_destroy++;
	/* rxe: a flush the kernel wrote just before the QP went, reaped after. */
	if (destroy_pushes >= 0 && sends[destroy_pushes].fq == fq) {
		cq_push((unsigned int)destroy_pushes, IBV_WC_WR_FLUSH_ERR);
		destroy_pushes = -1;
	}
	if (destroy_cleans_cq) {
		unsigned int k = cq_head;

		for (unsigned int i = cq_head; i < nr_cq_entries; i++) {
			bool mine = cq_entry_idx[i] == NO_SEND ? cq_entries[i].qp_num == fq->qp.qp_num :
								 sends[cq_entry_idx[i]].fq == fq;

			if (mine)
				continue;
			cq_entries[k] = cq_entries[i];
			cq_entry_idx[k++] = cq_entry_idx[i];
		}
		nr_cq_entries = k;
	}
	/* A destroyed QP owns nothing any more. */
	for (unsigned int i = 0; i < nr_sends; i++) {
		if (sends[i].fq == fq && !sends[i].retired)
			hca_retire(&sends[i]);
	}
	id->qp = NULL;
}

int rdma_destroy_id(struct rdma_cm_id *id)
{
	/* librdmacm may close a removed device's context with its last id. */
	for (struct nvt_rdma_dev *d = nvt_rdma_devs; d; d = d->next)
		removed_devs_at_destroy += d->removed && d->verbs == id->verbs;
	nr_destroyed_ids++;
	return 0;
}

/* The listener's event channel as the main loop reads it: the events queued, then EAGAIN. */
int rdma_get_cm_event(struct rdma_event_channel *channel, struct rdma_cm_event **event)
{
	if (cm_event_head == nr_cm_events) {
		errno = EAGAIN;
		return -1;
	}
	*event = &cm_events[cm_event_head++];
	return 0;
}

int rdma_ack_cm_event(struct rdma_cm_event *event)
{
	return 0;
}

int rdma_reject(struct rdma_cm_id *id, const void *private_data, uint8_t private_data_len)
{
	const struct nvt_rdma_cm_rej *rej = private_data;

	assert_int_equal(private_data_len, sizeof(*rej));
	last_reject_sts = le16toh(rej->sts);
	nr_rejects++;
	return 0;
}

/* Reached only by a connect request that got past the listener's limits. */
int ibv_query_device(struct ibv_context *context, struct ibv_device_attr *device_attr)
{
	nr_query_device++;
	errno = ENODEV;
	return ENODEV;
}

static unsigned int nr_rnr_sets;	/* IBV_QP_MIN_RNR_TIMER set, to the value we want */
static int rnr_set_fails;	/* what ibv_modify_qp returns for it (a positive errno) */

/*
 * Teardown puts the QP in error itself, whatever rdma_disconnect did; at
 * ESTABLISHED the queue sets a short RNR NAK timer (RTS -> RTS), nothing else.
 */
int ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask)
{
	if (attr_mask == IBV_QP_MIN_RNR_TIMER) {
		assert_int_equal(attr->min_rnr_timer, NVT_RDMA_MIN_RNR_TIMER);
		nr_rnr_sets++;
		return rnr_set_fails;
	}
	assert_int_equal(attr_mask, IBV_QP_STATE);
	assert_int_equal(attr->qp_state, IBV_QPS_ERR);
	nr_qp_errors++;
	return 0;
}

struct ibv_pd *ibv_alloc_pd(struct ibv_context *context)
{
	errno = ENODEV;
	return NULL;
}

static struct ibv_device fake_device = { .name = "fake0" };
static struct ibv_context fake_ctx = {
	.device = &fake_device,
	.ops = {
		.post_send = fake_post_send,
		.post_recv = fake_post_recv,
		.post_srq_recv = fake_post_srq_recv,
		.poll_cq = fake_poll_cq,
		.req_notify_cq = fake_req_notify_cq,
	},
};
static struct ibv_cq fake_cq = { .context = &fake_ctx };
static struct ibv_mr fake_mr = { .lkey = 7 };
static struct ibv_pd fake_pd = { .context = &fake_ctx };

/* Zero-copy registrations of namespace memory: what the transport asked for, in order. */
#define MAX_ZC_REGS	4
static struct ibv_mr fake_zc_mrs[MAX_ZC_REGS];
static unsigned int nr_zc_regs;
static bool zc_reg_fails;

static struct ibv_mr *fake_reg(struct ibv_pd *pd, void *addr, size_t length)
{
	struct ibv_mr *mr;

	assert_ptr_equal(pd, &fake_pd);
	if (zc_reg_fails || nr_zc_regs >= MAX_ZC_REGS)
		return NULL;
	mr = &fake_zc_mrs[nr_zc_regs++];
	memset(mr, 0, sizeof(*mr));
	mr->pd = pd;
	mr->addr = addr;
	mr->length = length;
	mr->lkey = 0x700 + nr_zc_regs;
	return mr;
}

/* Both, as the header's inline helper picks one by whether the access flags are constant. */
struct ibv_mr *(ibv_reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	return fake_reg(pd, addr, length);
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
				unsigned int access)
{
	return fake_reg(pd, addr, length);
}
static struct ibv_srq fake_srq = { .context = &fake_ctx };

/* The completion channel: an eventfd the HCA writes to when an armed CQ gets a completion. */
static struct ibv_comp_channel fake_channel = { .context = &fake_ctx, .fd = -1 };
static unsigned int nr_cq_events;

/* The HCA: a completion came on the armed CQ, an event on the channel (once per arming). */
static void hca_cq_event(void)
{
	uint64_t one = 1;

	if (!cq_armed)
		return;
	cq_armed = false;
	assert_int_equal(write(fake_channel.fd, &one, sizeof(one)), sizeof(one));
}

int ibv_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq, void **cq_context)
{
	uint64_t v;

	if (read(channel->fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	nr_cq_events++;
	*cq = &fake_cq;
	*cq_context = NULL;
	return 0;
}

void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
}
static bool want_srq;		/* the next fixture's (device, poll group) has a shared receive queue */
#define SRQ_DEPTH	32

/* The poll group the fixture's queues live on: iter_end() flushes it. */
static struct nvt_poll_group *cur_pg;

/*
 * The end of a poll-group iteration: the flushers post what the queues
 * built during it. Every helper that stands for one event (a capsule, a
 * completion, a backend done) ends with it, as the loop would.
 */
static bool hold_iter;		/* events run within one iteration until the test ends it */

static void iter_end(void)
{
	if (cur_pg && !hold_iter)
		nvt_poll_group_run_flushers(cur_pg);
}

/* ---- a backend that holds every bio until the test completes it ---- */

#define SLOW_NSID	1		/* the test target's 512-byte namespace, made slow */
#define SLOW_MAX	32

static struct {
	struct nvt_bio *held[SLOW_MAX];	/* in submission order */
	unsigned int nr_held;
	unsigned int submitted, completed;
} slow;

static void slow_submit(struct nvt_bio *bio, void *chan)
{
	assert_true(slow.nr_held < SLOW_MAX);
	slow.held[slow.nr_held++] = bio;
	slow.submitted++;
}

static void slow_close(struct nvt_ns *ns)
{
	nvt_ram_backend_ops.close(ns);
}

/* The ram backend's store (be_priv stays), no map: every bio goes through submit() and waits. */
static const struct nvt_backend_ops slow_ops = {
	.name = "slow",
	.flags = NVT_BE_METADATA | NVT_BE_VOLATILE | NVT_BE_WRITE_ZEROES | NVT_BE_DEALLOCATE |
		 NVT_BE_COPY,
	.close = slow_close,
	.submit = slow_submit,
};

/*
 * The backend is done with held bio @i: its data moved by the ram store,
 * which then calls nvt_bio_backend_done(bio, 0); or failed with @err.
 * What it completes may hand the backend more (a compare-and-write's write).
 */
static void slow_complete(unsigned int i, int err)
{
	struct nvt_bio *bio;

	assert_true(i < slow.nr_held);
	bio = slow.held[i];
	memmove(&slow.held[i], &slow.held[i + 1], (slow.nr_held - i - 1) * sizeof(slow.held[0]));
	slow.nr_held--;
	slow.completed++;
	if (err)
		nvt_bio_backend_done(bio, err);
	else
		nvt_ram_backend_ops.submit(bio, NULL);
	iter_end();
}

/* Namespace SLOW_NSID of @tgt goes slow before a poll group is attached: its channels are slow. */
static void slow_swap_in(struct nvt_target *tgt)
{
	struct nvt_ns *ns = nvt_target_find_subsys(tgt, TEST_NQN)->ns[SLOW_NSID];

	memset(&slow, 0, sizeof(slow));
	assert_ptr_equal(ns->be, &nvt_ram_backend_ops);
	assert_int_equal(atomic_load(&ns->nr_chans), 0);
	ns->be = &slow_ops;
}

#define POOL_CHUNKS	80	/* two 1 MiB commands and then some */
#define POOL_MEM_CHUNKS	256	/* room for the largest pool a test makes */
#define MAX_CMD		33	/* chunks of a 1 MiB command with its PI scratch: M of the cap rule */
#define PI_NSID		5	/* 512-byte blocks, Type 1, 8-byte PI stored apart */

struct fixture {
	struct nvt_target *tgt;
	struct nvt_port port;
	struct nvt_rdma_port rport;
	struct nvt_rdma_pool pool;
	uint8_t *pool_mem;
	int max_sge;				/* what the fake device offers per WR */
	struct fake_conn *conns;
	struct nvt_rdma_queue *admin, *io, *io2;
	uint16_t cntlid;
	struct nvt_rdma_pool *qpool;		/* new queues use it (a device's); NULL: pool */
	struct nvt_rdma_dev *bdev;		/* the (device, poll group) whose flusher posts for queues */
	bool no_batch;				/* new queues post at once (batch_posts = false) */
	bool srq_late;				/* new queues are not known to the owner yet */
};


/* The test target plus a PI namespace the core inserts and strips PI for (PRACT=1). */
static struct nvt_target *target_create(void)
{
	struct nvt_config cfg;
	struct nvt_subsys_cfg *s;
	struct nvt_ns_cfg *ns;
	struct nvt_target *tgt = NULL;

	nvt_test_config(&cfg);
	s = &cfg.subsystems[0];
	s->namespaces = realloc(s->namespaces, 3 * sizeof(*s->namespaces));
	ns = &s->namespaces[s->nr_namespaces++];
	memset(ns, 0, sizeof(*ns));
	ns->nsid = PI_NSID;
	strcpy(ns->backend, "ram");
	ns->size = TEST_NS_SIZE;
	ns->block_size = 512;
	memset(ns->uuid, 0x55, 16);
	memset(ns->nguid, 0x66, 16);
	ns->pi.type = 1;
	strcpy(ns->pi.guard, "crc16");
	strcpy(ns->pi.location, "last");
	ns->pi.metadata_size = 8;
	if (nvt_target_create(&cfg, &tgt))
		tgt = NULL;
	nvt_test_config_free(&cfg);
	return tgt;
}

/* A new pool of @nr_chunks for the fixture's queues, which stay counted in it. */
static void pool_create(struct fixture *f, uint32_t nr_chunks)
{
	uint32_t nr_queues = f->pool.nr_queues, nr_connected = f->pool.nr_connected;

	assert_true(nr_chunks <= POOL_MEM_CHUNKS);
	if (f->pool.free) {
		assert_int_equal(f->pool.nr_free, f->pool.nr_chunks);
		nvt_rdma_pool_fini(&f->pool);
	}
	assert_int_equal(nvt_rdma_pool_init(&f->pool, f->pool_mem, nr_chunks), 0);
	f->pool.lkey = 9;
	f->pool.max_cmd = MAX_CMD;
	f->pool.nr_queues = nr_queues;
	f->pool.nr_connected = nr_connected;
}

static struct nvt_rdma_queue *queue_create(struct fixture *f, uint16_t qid, uint16_t depth,
					   uint16_t sq_size)
{
	struct nvt_rdma_queue *q = calloc(1, sizeof(*q));
	struct fake_conn *c = calloc(1, sizeof(*c));

	c->fq.qp.context = &fake_ctx;
	c->fq.qp.qp_num = 0x100 + qid;
	c->id.qp = &c->fq.qp;
	c->next = f->conns;
	f->conns = c;
	c->id.context = q;
	q->rport = &f->rport;
	q->cm_id = &c->id;
	q->cq = &fake_cq;
	q->recv_mr = q->cqe_mr = &fake_mr;
	q->recv_depth = q->nr_reqs = depth;
	q->pg = f->tgt->pg;
	q->pool = f->qpool ? f->qpool : &f->pool;
	q->dev = f->bdev;
	q->batch = !f->no_batch;
	q->zero_copy = true;	/* the zero-copy tests' decisions; a ram namespace without PD never takes it */
	q->srq = f->bdev && f->bdev->srq;
	q->qp_num = c->fq.qp.qp_num;
	q->max_io = nvt_rdma_port_max_io(&f->port);
	atomic_init(&q->connected, false);
	assert_int_equal(nvt_rdma_queue_size(q, f->max_sge, f->max_sge), 0);
	c->fq.max_send_wr = q->max_send_wr;
	c->fq.max_sge = q->sge_wr;
	assert_int_equal(nvt_rdma_queue_alloc_buffers(q), 0);
	nvt_sq_init(&q->sq, f->tgt, &nvt_rdma_transport_ops, &f->port, q->pg, qid, sq_size);
	assert_int_equal(q->max_chunks, MAX_CMD);
	/* The owner hears of it (its QP number) with rdma_accept, unless a test wants it late. */
	if (!f->srq_late)
		nvt_rdma_queue_known(q);
	/* As nvt_rdma_queue_create_verbs() does: every capsule buffer is the HCA's. */
	for (uint32_t i = 0; i < (q->srq ? 0 : q->recv_depth); i++)
		assert_int_equal(nvt_rdma_post_recv(q, &q->recvs[i]), 0);
	/* ESTABLISHED: the queue is LIVE and has its share of the pool. */
	q->state = NVT_RDMA_Q_CONNECTING;
	nvt_rdma_queue_established(q);
	assert_int_equal(q->state, NVT_RDMA_Q_LIVE);
	assert_true(q->pool_counted);
	return q;
}

/* Hand back everything poisoned before the memory is freed. */
static void queue_unpoison(struct nvt_rdma_queue *q)
{
	HCA_GIVES(q->recv_bufs, (size_t)q->recv_depth * NVT_RDMA_CAPSULE);
	HCA_GIVES(q->cqes, q->nr_reqs * sizeof(*q->cqes));
}

/* A torn-down queue is gone: its memory the target's again, its deferred free run, the fixture's no more. */
static void queue_gone(struct fixture *f, struct nvt_rdma_queue *q)
{
	queue_unpoison(q);
	nvt_poll_group_poll(f->tgt->pg, 0);
	f->io = NULL;
}

static void queue_free(struct nvt_rdma_queue *q)
{
	if (!q)
		return;
	queue_unpoison(q);
	nvt_sq_destroy(&q->sq);
	nvt_rdma_queue_free(q);
}

static void fake_reset(void)
{
	sends_reset();
	nr_recvs = nr_disconnects = 0;
	nr_post_send_calls = nr_post_recv_calls = 0;
	nr_cq_arms = 0;
	arm_pushes = -1;
	nr_cq_entries = cq_head = 0;
	nr_posted_recv_bufs = 0;
	sq_overflowed = false;
	post_fail_after = -1;
	nr_rejects = nr_query_device = nr_qp_errors = nr_rnr_sets = 0;
	rnr_set_fails = 0;
	destroy_cleans_cq = false;
	destroy_pushes = -1;
	srq_fail_after = -1;
	srq_fail_no_bad = false;
	post_fail_no_bad = false;
	arm_fails = 0;
	cq_armed = false;
	nr_cq_events = 0;
	fake_dev = NULL;
	nr_known_at_destroy = 0;
	last_reject_sts = 0;
	removed_devs_at_destroy = 0;
	nr_destroyed_ids = 0;
	nr_cm_events = cm_event_head = 0;
	nr_zc_regs = 0;
	zc_reg_fails = false;
}

/* @slow_ns: namespace SLOW_NSID is served by slow_ops, from before it has a channel. */
static int setup_fixture(void **state, int max_sge, bool slow_ns)
{
	struct fixture *f = calloc(1, sizeof(*f));

	fake_reset();
	f->tgt = target_create();
	assert_non_null(f->tgt);
	if (slow_ns)
		slow_swap_in(f->tgt);
	assert_int_equal(nvt_poll_group_create(&f->tgt->pg), 0);
	assert_int_equal(nvt_target_attach_pg(f->tgt, f->tgt->pg), 0);
	f->port.tgt = f->tgt;
	f->port.ops = &nvt_rdma_transport_ops;
	f->rport.port = &f->port;
	f->max_sge = max_sge;
	f->pool_mem = aligned_alloc(4096, (size_t)POOL_MEM_CHUNKS * NVT_RDMA_CHUNK);
	pool_create(f, POOL_CHUNKS);
	f->bdev = calloc(1, sizeof(*f->bdev));
	f->bdev->pg = f->tgt->pg;
	f->bdev->refs = 1u << 20;	/* never freed by a queue's put */
	f->bdev->flusher.fn = nvt_rdma_dev_flush;
	f->bdev->verbs = &fake_ctx;
	fake_dev = f->bdev;
	/* Without a PD (most tests) writes copy through the pool; zero-copy tests give it one. */
	nvt_ram_set_in_place(nvt_rdma_zc_held);
	if (want_srq) {
		/* What nvt_rdma_dev_create_srq() makes, on the fake. */
		assert_int_equal(nvt_rdma_srq_alloc(f->bdev, SRQ_DEPTH), 0);
		f->bdev->srq_mr = &fake_mr;
		f->bdev->srq = &fake_srq;
		assert_int_equal(nvt_rdma_srq_post_all(f->bdev), 0);
		assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
		want_srq = false;
	}
	cur_pg = f->tgt->pg;
	f->admin = queue_create(f, 0, 8, 8);
	nr_recvs = 0;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_fixture(state, 32, false);	/* rxe */
}

static int setup_sge4(void **state)
{
	return setup_fixture(state, 4, false);	/* a device with few SGEs per WR */
}

static int setup_slow(void **state)
{
	return setup_fixture(state, 32, true);
}

static int setup_srq(void **state)
{
	want_srq = true;
	return setup_fixture(state, 32, false);
}

static int setup_slow_srq(void **state)
{
	want_srq = true;
	return setup_fixture(state, 32, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	iter_end();

	queue_free(f->io2);
	queue_free(f->io);
	queue_free(f->admin);
	HCA_GIVES(f->pool_mem, (size_t)POOL_MEM_CHUNKS * NVT_RDMA_CHUNK);
	nvt_rdma_pool_fini(&f->pool);
	free(f->pool_mem);
	while (f->conns) {
		struct fake_conn *c = f->conns;

		f->conns = c->next;
		free(c);
	}
	nvt_target_detach_pg(f->tgt, f->tgt->pg);
	assert_null(f->bdev->dirty);
	if (f->bdev->srq_bufs)
		HCA_GIVES(f->bdev->srq_bufs, (size_t)f->bdev->srq_depth * NVT_RDMA_CAPSULE);
	assert_int_equal(f->bdev->nr_orphans, 0);
	/* As nvt_rdma_dev_free(): the device's end of the registrations; the namespaces' comes with the target. */
	assert_false(atomic_load(&f->bdev->zc_req_pending));
	nvt_rdma_zc_link_made(f->bdev);
	while (f->bdev->zc_mrs) {
		struct nvt_rdma_zc_mr *e = f->bdev->zc_mrs;

		f->bdev->zc_mrs = e->next;
		nvt_rdma_zc_mr_end(e);
	}
	free(f->bdev->srq_bufs);
	free(f->bdev->srq_recvs);
	free(f->bdev);
	fake_dev = NULL;
	cur_pg = NULL;
	nvt_poll_group_destroy(f->tgt->pg);
	f->tgt->pg = NULL;
	nvt_target_destroy(f->tgt);
	sends_reset();
	free(f);
	return 0;
}

/* Is @buf one of the RECV buffers the HCA holds? It stops being one. */
static bool recv_take(const void *buf)
{
	for (unsigned int i = 0; i < nr_posted_recv_bufs; i++) {
		if (posted_recv_bufs[i] == buf) {
			posted_recv_bufs[i] = posted_recv_bufs[--nr_posted_recv_bufs];
			return true;
		}
	}
	return false;
}

/* A capsule lands in RECV buffer @slot of @q, which must be posted. */
/* A shared RECV buffer of @d the HCA holds (the oldest posted), or NULL. */
static struct nvt_rdma_recv *srq_posted(const struct nvt_rdma_dev *d)
{
	for (unsigned int i = 0; i < nr_posted_recv_bufs; i++)
		for (uint32_t k = 0; k < d->srq_depth; k++)
			if (d->srq_recvs[k].buf == posted_recv_bufs[i])
				return &d->srq_recvs[k];
	return NULL;
}

/*
 * A capsule lands in RECV buffer @slot of @q, which must be posted; on a
 * shared receive queue in whichever shared buffer the HCA holds, and it
 * finds its queue by the QP it came in on (@slot unused).
 */
static void recv_capsule(struct nvt_rdma_queue *q, unsigned int slot, const struct nvt_sqe *sqe,
			 const void *icdata, uint32_t iclen)
{
	struct nvt_rdma_recv *rv = q->srq ? srq_posted(q->dev) : &q->recvs[slot];
	struct ibv_wc wc = { .wr_id = (uintptr_t)&rv->wr, .status = IBV_WC_SUCCESS,
			     .opcode = IBV_WC_RECV, .byte_len = (uint32_t)sizeof(*sqe) + iclen,
			     .qp_num = q->qp_num };
	struct nvt_rdma_queue *to;

	assert_non_null(rv);
	assert_true(recv_take(rv->buf));
	HCA_GIVES(rv->buf, NVT_RDMA_CAPSULE);
	memcpy(rv->buf, sqe, sizeof(*sqe));
	if (iclen)
		memcpy(rv->buf + sizeof(*sqe), icdata, iclen);
	to = nvt_rdma_wc_queue(&wc);
	if (q->srq)
		assert_true(to == q || (!to && !q->qp_known));	/* parked when not known yet */
	else
		assert_ptr_equal(to, q);
	if (to)
		nvt_rdma_handle_wc(to, &wc);
	iter_end();
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

/* A 4 KiB read of LBA 0, keyed (address 0x1000, key 1) as Linux sends it. */
static void read_4k_sqe(struct nvt_sqe *sqe)
{
	nvt_host_sqe_rw(sqe, nvme_cmd_read, 1, 0, 8);
	keyed(sqe, 0x1000, 4096, 1);
}

static struct nvt_rdma_req *slot_of(uint64_t wr_id)
{
	return nvt_rdma_wr_req(wr_id);	/* rdma.c's own mapping, not a copy of it */
}

/* The HCA completes posted WR @i: a send queue completes in order, so the signaled ones before it are done. */
static void complete_wr(struct nvt_rdma_queue *q, unsigned int i, enum ibv_wc_status status)
{
	struct ibv_wc wc = { .wr_id = sends[i].wr_id, .status = status };

	assert_true(i < nr_sends);
	/*
	 * The WRITEs of read data are unsignaled, chained ahead of their SEND:
	 * done, they report nothing; the SEND's completion stands for them.
	 */
	if (sends[i].opcode == IBV_WR_RDMA_WRITE && status == IBV_WC_SUCCESS) {
		assert_false(sends[i].send_flags & IBV_SEND_SIGNALED);
		return;
	}
	assert_true(sends[i].send_flags & IBV_SEND_SIGNALED);
	assert_false(sends[i].retired);
	for (unsigned int k = 0; k < i; k++) {
		if (sends[k].fq == sends[i].fq && (sends[k].send_flags & IBV_SEND_SIGNALED))
			assert_true(sends[k].retired);
	}
	hca_retire(&sends[i]);
	nvt_rdma_handle_wc(q, &wc);
	iter_end();
}

/* The READ @i brings @len bytes of host data from @src, then completes. */
static void complete_read(struct nvt_rdma_queue *q, unsigned int i, const void *src, uint32_t len)
{
	const uint8_t *p = src;

	assert_int_equal(sends[i].opcode, IBV_WR_RDMA_READ);
	assert_int_equal(sends[i].length, len);
	for (int k = 0; k < sends[i].num_sge; k++) {
		void *dst = (void *)(uintptr_t)sends[i].sge[k].addr;

		HCA_GIVES(dst, sends[i].sge[k].length);
		memcpy(dst, p, sends[i].sge[k].length);
		p += sends[i].sge[k].length;
	}
	complete_wr(q, i, IBV_WC_SUCCESS);
}

/* A flush (or error) completion for WR @i, reaped by the next poll. */
static void cq_push(unsigned int i, enum ibv_wc_status status)
{
	cq_entry_idx[nr_cq_entries] = i;
	cq_entries[nr_cq_entries++] = (struct ibv_wc){ .wr_id = sends[i].wr_id, .status = status };
}

/* The flush of the RECV in buffer @slot of @q, reaped by the next poll: the buffer is ours again. */
static void cq_push_recv(struct nvt_rdma_queue *q, unsigned int slot)
{
	struct nvt_rdma_recv *rv = &q->recvs[slot];

	assert_true(recv_take(rv->buf));
	HCA_GIVES(rv->buf, NVT_RDMA_CAPSULE);
	cq_entry_idx[nr_cq_entries] = NO_SEND;
	cq_entries[nr_cq_entries++] = (struct ibv_wc){ .wr_id = (uintptr_t)&rv->wr,
						       .status = IBV_WC_WR_FLUSH_ERR };
}

static const struct nvt_cqe *sent_cqe(unsigned int i)
{
	assert_true(i < nr_sends);
	assert_true(sends[i].opcode == IBV_WR_SEND || sends[i].opcode == IBV_WR_SEND_WITH_INV);
	return (const struct nvt_cqe *)sends[i].data;
}

static uint16_t sc_of(unsigned int i)
{
	return (le16toh(sent_cqe(i)->status) >> 1) & 0x7ff;
}

/* Every chunk is back in the pool, nobody waits. */
static void assert_pool_idle(const struct fixture *f)
{
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks);
	assert_null(f->pool.wait_head);
	assert_int_equal(f->pool.nr_waiting, 0);
}

static void assert_all_free(const struct nvt_rdma_queue *q)
{
	for (unsigned int i = 0; i < q->nr_reqs; i++)
		assert_int_equal(q->reqs[i].state, NVT_RDMA_REQ_FREE);
	assert_int_equal(q->nr_active, 0);
	assert_int_equal(q->sq_used, 0);
	assert_int_equal(q->posted_sends, 0);
}

static void connect_sqe(struct nvt_sqe *sqe, uint16_t qid)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->connect.opcode = NVT_OPC_FABRICS;
	sqe->connect.fctype = NVT_FCTYPE_CONNECT;
	sqe->connect.qid = htole16(qid);
	sqe->connect.sqsize = htole16(7);
	sqe->connect.kato = htole32(qid ? 0 : 5000);
	keyed(sqe, 0x10000, sizeof(struct nvmf_connect_data), 0xabcd);
}

/* Connect on the admin queue: READ of the connect data, then the response SEND. */
static uint16_t do_connect(struct fixture *f)
{
	struct nvmf_connect_data d = { .cntlid = htole16(0xffff) };
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe;
	uint16_t cntlid;

	connect_sqe(&sqe, 0);
	strcpy(d.subsysnqn, TEST_NQN);
	strcpy(d.hostnqn, TEST_HOST);

	sends_reset();
	recv_capsule(f->admin, 0, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_READ);
	assert_int_equal(sends[0].length, sizeof(d));
	assert_int_equal(sends[0].num_sge, 1);
	assert_int_equal(sends[0].sge[0].lkey, f->pool.lkey);
	assert_int_equal(sends[0].remote_addr, 0x10000);
	assert_int_equal(sends[0].rkey, 0xabcd);
	assert_true(sends[0].send_flags & IBV_SEND_SIGNALED);
	r = slot_of(sends[0].wr_id);
	assert_int_equal(r->state, NVT_RDMA_REQ_XFER_H2C);
	assert_int_equal(r->nr_chunks, 1);
	/* The READ lands the host's data, then completes. */
	complete_read(f->admin, 0, &d, sizeof(d));
	assert_int_equal(r->state, NVT_RDMA_REQ_COMPLETING);
	assert_int_equal(r->nr_chunks, 0);	/* host data consumed: chunks back at once */
	assert_int_equal(nr_recvs, 1);		/* the capsule buffer went back first */
	assert_int_equal(nr_sends, 2);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	cntlid = (uint16_t)le32toh(sent_cqe(1)->result.u32);
	assert_true(atomic_load(&f->admin->connected));
	complete_wr(f->admin, 1, IBV_WC_SUCCESS);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	sends_reset();
	nr_recvs = 0;
	f->cntlid = cntlid;
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
	sends_reset();
	recv_capsule(f->admin, slot, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(le16toh(sent_cqe(0)->status), 0);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	sends_reset();
	nr_recvs = 0;
}

/* An I/O queue of @depth entries (and @sq_size SQ entries), Fabrics-connected. */
static struct nvt_rdma_queue *io_queue(struct fixture *f, uint16_t qid, uint16_t depth,
				       uint16_t sq_size)
{
	struct nvmf_connect_data d = { .cntlid = htole16(f->cntlid) };
	struct nvt_rdma_queue *q = queue_create(f, qid, depth, sq_size);
	struct nvt_sqe sqe;

	nr_recvs = 0;
	sends_reset();
	connect_sqe(&sqe, qid);
	sqe.connect.sqsize = htole16(sq_size - 1);
	strcpy(d.subsysnqn, TEST_NQN);
	strcpy(d.hostnqn, TEST_HOST);
	recv_capsule(q, 0, &sqe, NULL, 0);
	complete_read(q, 0, &d, sizeof(d));
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	complete_wr(q, 1, IBV_WC_SUCCESS);
	assert_true(atomic_load(&q->connected));
	sends_reset();
	nr_recvs = 0;
	return q;
}

static void connect_all(struct fixture *f)
{
	assert_true(do_connect(f) > 0);
	enable(f, 1);
}

/* The admin queue connected, then I/O queue 1 (8 deep, 8 slots) LIVE: most tests' start. */
static struct nvt_rdma_queue *first_io_queue(struct fixture *f)
{
	connect_all(f);
	return f->io = io_queue(f, 1, 8, 8);
}

static void pattern(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + i / 512 + seed);
}

/* ---- the tests ---- */

/* A keyed Write (@cid) of @nlb blocks, @bytes, at @slba of @nsid (host buffer @addr, key @key) arrives in @slot. */
static void post_write_at(struct nvt_rdma_queue *q, unsigned int slot, uint32_t nsid,
			  uint64_t slba, uint32_t nlb, uint32_t bytes, uint64_t addr, uint32_t key,
			  uint16_t cid)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, nvme_cmd_write, nsid, slba, nlb);
	sqe.common.cid = cid;
	keyed(&sqe, addr, bytes, key);
	recv_capsule(q, slot, &sqe, NULL, 0);
}

static struct nvt_ns *test_ns(struct fixture *f, uint32_t nsid)
{
	return nvt_target_find_subsys(f->tgt, TEST_NQN)->ns[nsid];
}

/*
 * The device's owner asks for @nsid's registration, the main loop's
 * message makes it (or fails to), the owner's next look finds it. Here
 * one thread is both. Return: the entry's MR (NULL: it failed).
 */
static struct ibv_mr *zc_register(struct fixture *f, uint32_t nsid)
{
	struct nvt_rdma_zc_mr *e;

	assert_null(nvt_rdma_zc_mr_get(f->bdev, test_ns(f, nsid)));
	assert_true(atomic_load(&f->bdev->zc_req_pending));
	assert_null(nvt_rdma_zc_mr_get(f->bdev, test_ns(f, nsid)));	/* one request at a time */
	nvt_poll_group_run_pending(f->tgt->pg);
	assert_false(atomic_load(&f->bdev->zc_req_pending));
	e = nvt_rdma_zc_mr_get(f->bdev, test_ns(f, nsid));
	assert_false(atomic_load(&f->bdev->zc_req_pending));		/* found: not asked again */
	assert_ptr_equal(f->bdev->zc_mrs->ns, test_ns(f, nsid));
	return e ? e->mr : NULL;
}

/*
 * first_io_queue() on a device with a PD whose nsid 1 is registered:
 * writes to it go zero copy; to other ram namespaces without metadata
 * once they are registered (the first write asks for it, and copies).
 */
static struct nvt_rdma_queue *zc_io_queue(struct fixture *f)
{
	f->bdev->pd = &fake_pd;
	f->bdev->tgt = f->tgt;
	zc_register(f, 1);
	return first_io_queue(f);
}

/*
 * Zero-copy writes: a keyed Write to a ram namespace without metadata is
 * fetched by one RDMA READ straight into the namespace's memory (its
 * registration made once, on the first write), posted only once the
 * backend holds the bio, with no pool chunk taken; the response follows
 * the READ. A namespace with PI, and in-capsule data, still go through
 * the pool, as does a namespace whose memory could not be registered.
 */
static void test_zc_write(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns1 = test_ns(f, 1), *ns3 = test_ns(f, 3);
	static uint8_t data[8192];
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe;
	uint8_t *blk = nvt_ram_block(ns1, 8, NULL);

	q = zc_io_queue(f);
	assert_int_equal(nr_zc_regs, 1);	/* made on the main loop, before any write */
	pattern(data, sizeof(data), 3);
	sends_reset();
	post_write_at(q, 1, 1, 8, 8, 4096, 0x2000, 5, 0);
	assert_int_equal(nr_zc_regs, 1);
	assert_ptr_equal(fake_zc_mrs[0].addr, nvt_ram_block(ns1, 0, NULL));
	assert_int_equal(fake_zc_mrs[0].length, (size_t)ns1->nblocks << ns1->lba_shift);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_READ);
	assert_true(sends[0].send_flags & IBV_SEND_SIGNALED);
	assert_int_equal(sends[0].num_sge, 1);
	assert_int_equal(sends[0].sge[0].lkey, fake_zc_mrs[0].lkey);
	assert_ptr_equal((void *)(uintptr_t)sends[0].sge[0].addr, blk);
	assert_int_equal(sends[0].remote_addr, 0x2000);
	assert_int_equal(sends[0].rkey, 5);
	r = slot_of(sends[0].wr_id);
	assert_true(r->zc && r->zc_posted);
	assert_int_equal(r->state, NVT_RDMA_REQ_EXECUTING);	/* the backend holds it meanwhile */
	assert_int_equal(r->nr_chunks, 0);
	assert_pool_idle(f);
	complete_read(q, 0, data, 4096);
	assert_false(r->zc_posted);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	assert_memory_equal(blk, data, 4096);
	complete_wr(q, 1, IBV_WC_SUCCESS);
	assert_all_free(q);

	/* The next write to it reuses the registration; another namespace gets its own. */
	sends_reset();
	post_write_at(q, 2, 1, 32, 16, 8192, 0x4000, 6, 0);
	assert_int_equal(nr_zc_regs, 1);
	assert_int_equal(sends[0].sge[0].lkey, fake_zc_mrs[0].lkey);
	complete_read(q, 0, data, 8192);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	assert_memory_equal(nvt_ram_block(ns1, 32, NULL), data, 8192);
	complete_wr(q, 1, IBV_WC_SUCCESS);
	/* ns 3's first write asks the main loop for its registration and copies meanwhile. */
	sends_reset();
	post_write_at(q, 3, 3, 2, 1, 4096, 0x6000, 7, 0);
	assert_int_equal(nr_zc_regs, 1);
	assert_int_equal(sends[0].sge[0].lkey, f->pool.lkey);
	assert_true(atomic_load(&f->bdev->zc_req_pending));
	complete_read(q, 0, data, 4096);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	complete_wr(q, 1, IBV_WC_SUCCESS);
	nvt_poll_group_run_pending(f->tgt->pg);
	assert_int_equal(nr_zc_regs, 2);
	sends_reset();
	post_write_at(q, 3, 3, 2, 1, 4096, 0x6000, 7, 0);
	assert_int_equal(nr_zc_regs, 2);
	assert_ptr_equal(fake_zc_mrs[1].addr, nvt_ram_block(ns3, 0, NULL));
	assert_ptr_equal((void *)(uintptr_t)sends[0].sge[0].addr, nvt_ram_block(ns3, 2, NULL));
	complete_read(q, 0, data + 4096, 4096);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	assert_memory_equal(nvt_ram_block(ns3, 2, NULL), data + 4096, 4096);
	complete_wr(q, 1, IBV_WC_SUCCESS);

	/* PI Type 1, PRACT=1: the PI step needs the copy, through the pool's chunks. */
	sends_reset();
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, PI_NSID, 16, 8);
	sqe.rw.control = htole16(1u << 13);	/* PRACT */
	sqe.rw.reftag = htole32(16);
	keyed(&sqe, 0x8000, 4096, 8);
	recv_capsule(q, 4, &sqe, NULL, 0);
	assert_int_equal(nr_zc_regs, 2);	/* not even tried */
	assert_int_equal(sends[0].sge[0].lkey, f->pool.lkey);
	r = slot_of(sends[0].wr_id);
	assert_false(r->zc);
	assert_int_equal(r->state, NVT_RDMA_REQ_XFER_H2C);
	complete_read(q, 0, data, 4096);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	complete_wr(q, 1, IBV_WC_SUCCESS);

	/* In-capsule data is here already: copied from the capsule, no READ at all. */
	sends_reset();
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 40, 1);
	sqe.common.dptr.unkeyed.length = htole32(512);
	sqe.common.dptr.unkeyed.type = NVT_SGL_DATA_BLOCK << 4 | NVT_SGL_SUB_OFFSET;
	recv_capsule(q, 5, &sqe, data + 100, 512);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(le16toh(sent_cqe(0)->status), 0);
	assert_memory_equal(nvt_ram_block(ns1, 40, NULL), data + 100, 512);
	complete_wr(q, 0, IBV_WC_SUCCESS);
	assert_all_free(q);
	assert_pool_idle(f);
}

/* A namespace whose memory cannot be registered copies from then on; it is not tried again. */
static void test_zc_write_reg_fails(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[4096];
	struct nvt_rdma_queue *q;

	zc_reg_fails = true;
	q = zc_io_queue(f);
	pattern(data, sizeof(data), 9);
	for (unsigned int i = 0; i < 2; i++) {
		sends_reset();
		post_write_at(q, 1 + i, 1, 8 * i, 8, 4096, 0x2000, 5, 0);
		assert_int_equal(sends[0].opcode, IBV_WR_RDMA_READ);
		assert_int_equal(sends[0].sge[0].lkey, f->pool.lkey);
		assert_int_equal(slot_of(sends[0].wr_id)->state, NVT_RDMA_REQ_XFER_H2C);
		complete_read(q, 0, data, sizeof(data));
		assert_int_equal(le16toh(sent_cqe(1)->status), 0);
		complete_wr(q, 1, IBV_WC_SUCCESS);
	}
	assert_non_null(f->bdev->zc_mrs);	/* remembered */
	assert_null(f->bdev->zc_mrs->next);
	assert_memory_equal(nvt_ram_block(test_ns(f, 1), 8, NULL), data, sizeof(data));
	assert_all_free(q);
}

/*
 * A zero-copy write whose READ fails: the write fails, the queue is
 * disconnected, and the slot comes back (through the core: the backend
 * let go of the bio). One whose READ is still posted when the queue is
 * torn down fails the same way once the QP is gone: nothing waits for it.
 */
static void test_zc_write_read_fails(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *r;

	q = zc_io_queue(f);
	sends_reset();
	post_write_at(q, 1, 1, 0, 8, 4096, 0x2000, 5, 0);
	r = slot_of(sends[0].wr_id);
	assert_true(r->zc_posted);
	complete_wr(q, 0, IBV_WC_REM_ACCESS_ERR);
	assert_int_equal(nr_disconnects, 1);
	assert_false(r->zc_posted);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	assert_int_equal(nr_sends, 1);		/* no response on a dying queue */
	assert_int_equal(q->nr_active, 0);
	assert_int_equal(q->sq_used, 0);

	/* Torn down with the READ posted: reclaim fails it, the queue goes at once. */
	f->io2 = io_queue(f, 2, 8, 8);
	q = f->io2;
	sends_reset();
	post_write_at(q, 1, 1, 16, 8, 4096, 0x3000, 6, 0);
	r = slot_of(sends[0].wr_id);
	assert_true(r->zc_posted);
	nvt_rdma_queue_teardown(q);
	assert_int_equal(q->state, NVT_RDMA_Q_DEAD);
	assert_false(r->zc_posted);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	assert_int_equal(q->nr_executing, 0);
	assert_true(q->late_queued);
	HCA_GIVES((void *)(uintptr_t)sends[0].sge[0].addr, sends[0].sge[0].length);
	queue_unpoison(q);
	nvt_poll_group_poll(f->tgt->pg, 0);
	f->io2 = NULL;
	assert_pool_idle(f);
}

/*
 * The namespace closes (a reload removed it) with its memory registered:
 * the registration ends there, before its memory is unmapped, and the
 * device forgets it at its next look; the device's own end later does not
 * deregister it again.
 */
static void test_zc_ns_close_deregisters(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns1 = test_ns(f, 1);
	static uint8_t data[4096];
	struct nvt_rdma_zc_mr *e;
	struct nvt_rdma_queue *q;

	q = zc_io_queue(f);
	sends_reset();
	post_write_at(q, 1, 1, 0, 8, 4096, 0x2000, 5, 0);
	complete_read(q, 0, data, sizeof(data));
	complete_wr(q, 1, IBV_WC_SUCCESS);
	e = f->bdev->zc_mrs;
	assert_non_null(e);
	assert_ptr_equal(e->ns, ns1);
	assert_false(atomic_load(&e->dead));
	assert_int_equal(atomic_load(&e->refs), 2);
	/* What the namespace's close does, as a reload's removal would after its last command. */
	ns1->be->close(ns1);
	assert_true(atomic_load(&e->dead));
	assert_int_equal(atomic_load(&e->refs), 1);
	/* A write to another namespace looks through the list: the dead entry goes (it asks for its own). */
	sends_reset();
	post_write_at(q, 2, 3, 0, 1, 4096, 0x2000, 5, 0);
	assert_null(f->bdev->zc_mrs);
	complete_read(q, 0, data, sizeof(data));
	complete_wr(q, 1, IBV_WC_SUCCESS);
	nvt_poll_group_run_pending(f->tgt->pg);
	assert_int_equal(nr_zc_regs, 2);
	sends_reset();
	post_write_at(q, 3, 3, 0, 1, 4096, 0x2000, 5, 0);
	assert_non_null(f->bdev->zc_mrs);
	assert_ptr_equal(f->bdev->zc_mrs->ns, test_ns(f, 3));
	assert_null(f->bdev->zc_mrs->next);
	assert_int_equal(sends[0].sge[0].lkey, fake_zc_mrs[1].lkey);
	complete_read(q, 0, data, sizeof(data));
	complete_wr(q, 1, IBV_WC_SUCCESS);
	assert_all_free(q);
}

/*
 * A registration asked for a namespace that a reload removed before the
 * main loop got to it: nothing is made (the pointer is only compared with
 * what is published), the request is over, and a later ask works.
 */
static void test_zc_request_for_removed_ns(void **state)
{
	struct fixture *f = *state;
	struct nvt_subsys *subsys = nvt_target_find_subsys(f->tgt, TEST_NQN);
	struct nvt_ns *ns3 = test_ns(f, 3);
	unsigned int regs;

	zc_io_queue(f);
	regs = nr_zc_regs;
	assert_null(nvt_rdma_zc_mr_get(f->bdev, ns3));
	assert_true(atomic_load(&f->bdev->zc_req_pending));
	atomic_store(&subsys->ns[3], NULL);	/* unpublished, as a removal does first */
	nvt_poll_group_run_pending(f->tgt->pg);
	atomic_store(&subsys->ns[3], ns3);
	assert_false(atomic_load(&f->bdev->zc_req_pending));
	assert_null(atomic_load(&f->bdev->zc_made));
	assert_int_equal(nr_zc_regs, regs);
	assert_non_null(zc_register(f, 3));
	assert_int_equal(nr_zc_regs, regs + 1);
}

static void test_connect_identify(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;
	struct nvt_rdma_req *r;
	const struct nvme_id_ctrl *id;

	connect_all(f);

	/* Identify: the 4 KiB go out by RDMA WRITE chained ahead of the SEND. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	keyed(&sqe, 0x20000, 4096, 0x1234);
	recv_capsule(f->admin, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_WRITE);
	assert_int_equal(sends[0].length, 4096);
	assert_int_equal(sends[0].remote_addr, 0x20000);
	assert_int_equal(sends[0].rkey, 0x1234);
	/* Unsignaled: the SEND behind it completes for both, one completion per command. */
	assert_false(sends[0].send_flags & IBV_SEND_SIGNALED);
	assert_int_equal(nr_post_send_calls, 1);	/* WRITE and SEND in one post */
	id = (const struct nvme_id_ctrl *)sends[0].data;
	assert_string_equal(id->subnqn, TEST_NQN);
	assert_int_equal(le32toh(id->ioccsz), (64 + NVT_RDMA_ICDATA) / 16);
	assert_true(le32toh(id->sgls) & NVME_CTRL_SGLS_OFFSET);
	assert_int_equal(id->mdts, 8);	/* 2^8 x 4 KiB: 1 MiB */
	/* rxe-like fake: no SEND_WITH_INV. */
	assert_int_equal(sends[1].opcode, IBV_WR_SEND);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	r = slot_of(sends[1].wr_id);
	assert_int_equal(r->state, NVT_RDMA_REQ_COMPLETING);
	assert_int_equal(r->nr_chunks, 1);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);	/* reports nothing */
	assert_int_equal(r->nr_chunks, 1);
	assert_int_equal(r->state, NVT_RDMA_REQ_COMPLETING);
	complete_wr(f->admin, 1, IBV_WC_SUCCESS);	/* the SEND: the chunks come back with it */
	assert_int_equal(r->nr_chunks, 0);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	assert_all_free(f->admin);
	assert_pool_idle(f);
}

/*
 * A capsule buffer goes back to the HCA with the response, and a capsule
 * may land in it at once (the fake fills it with FFh at repost). What is
 * sent must not depend on it: a read still gets its RDMA WRITE.
 */
static void test_decisions_survive_recv_repost(void **state)
{
	struct fixture *f = *state;
	uint8_t data[4096];
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	pattern(data, sizeof(data), 1);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 8, 8);
	sqe.common.dptr.unkeyed.length = htole32(sizeof(data));
	sqe.common.dptr.keyed.type = 0x01;
	recv_capsule(f->io, 1, &sqe, data, sizeof(data));
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sc_of(0), 0);
	assert_int_equal(sent_cqe(0)->cid, sqe.common.cid);
	complete_wr(f->io, 0, IBV_WC_SUCCESS);
	sends_reset();

	/* A read and an admin read: the decision to WRITE data comes from the slot. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 8, 8);
	sqe.common.cid = 0x77;
	keyed(&sqe, 0x40000, sizeof(data), 9);
	recv_capsule(f->io, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_WRITE);
	assert_memory_equal(sends[0].data, data, sizeof(data));
	assert_int_equal(sent_cqe(1)->cid, 0x77);
	assert_int_equal(sends[1].opcode, IBV_WR_SEND);
	complete_wr(f->io, 0, IBV_WC_SUCCESS);
	complete_wr(f->io, 1, IBV_WC_SUCCESS);
	sends_reset();
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 1, 0);
	keyed(&sqe, 0x50000, 4096, 3);
	recv_capsule(f->admin, 3, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_WRITE);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	complete_wr(f->admin, 1, IBV_WC_SUCCESS);
	assert_all_free(f->io);
	assert_all_free(f->admin);
	assert_pool_idle(f);
}

/*
 * A command refused by nvt_req_init() reuses the slot of one that let us
 * invalidate its rkey: its response is a plain SEND, not an invalidation
 * of an rkey the host may have handed out again.
 */
static void test_refused_command_no_stale_invalidate(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe;

	connect_all(f);
	f->admin->send_with_inv = true;
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	keyed(&sqe, 0x20000, 4096, 0x1234);
	recv_capsule(f->admin, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(sends[1].opcode, IBV_WR_SEND_WITH_INV);
	assert_int_equal(sends[1].invalidate_rkey, 0x1234);
	r = slot_of(sends[1].wr_id);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	complete_wr(f->admin, 1, IBV_WC_SUCCESS);
	sends_reset();

	/* An opcode nobody implements, refused at parse, on the same slot. */
	nvt_host_sqe_init(&sqe, 0xc3, 0);
	sqe.common.dptr.keyed.type = 0x40;
	recv_capsule(f->admin, 3, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_ptr_equal(slot_of(sends[0].wr_id), r);
	assert_int_equal(sends[0].opcode, IBV_WR_SEND);
	assert_int_equal(sc_of(0), NVME_SC_INVALID_OPCODE);
	assert_false(r->invalidate);
	assert_int_equal(r->rkey, 0);
	assert_int_equal(r->remote_addr, 0);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	sends_reset();

	/* A keyed SGL without the invalidate subtype after one with it: plain SEND too. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	keyed(&sqe, 0x30000, 4096, 0x5678);
	sqe.common.dptr.keyed.type = 0x40;
	recv_capsule(f->admin, 4, &sqe, NULL, 0);
	assert_int_equal(sends[1].opcode, IBV_WR_SEND);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	complete_wr(f->admin, 1, IBV_WC_SUCCESS);
	assert_all_free(f->admin);
	assert_pool_idle(f);
}

static void test_bad_capsules(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;
	struct nvt_rdma_recv *rv = &f->admin->recvs[3];
	struct ibv_wc wc = { .wr_id = (uintptr_t)&rv->wr, .status = IBV_WC_SUCCESS, .byte_len = 40 };

	/* Shorter than an SQE: the buffer is reposted, nothing is answered. */
	assert_true(recv_take(rv->buf));
	HCA_GIVES(rv->buf, NVT_RDMA_CAPSULE);
	nvt_rdma_handle_wc(f->admin, &wc);
	iter_end();
	assert_int_equal(nr_recvs, 1);
	assert_int_equal(nr_sends, 0);
	/* A command before Connect: sequence error, no data moved. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	keyed(&sqe, 0x20000, 4096, 1);
	recv_capsule(f->admin, 0, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sc_of(0), NVME_SC_CMD_SEQ_ERROR);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	sends_reset();
	nr_recvs = 0;

	connect_all(f);
	/* An SGL segment descriptor: SGL descriptor type invalid. */
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	sqe.common.dptr.keyed.type = 0x20;
	recv_capsule(f->admin, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sc_of(0), NVME_SC_SGL_INVALID_TYPE);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	/* More than MDTS in one keyed SGL: invalid field, no READ. */
	sends_reset();
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, 512);
	keyed(&sqe, 0x30000, NVT_MAX_IO_SIZE_DEFAULT + 4096, 1);
	recv_capsule(f->admin, 3, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].opcode, IBV_WR_SEND);
	complete_wr(f->admin, 0, IBV_WC_SUCCESS);
	assert_all_free(f->admin);
	assert_pool_idle(f);
}

static void test_io_queue_incapsule_and_flush(void **state)
{
	struct fixture *f = *state;
	uint8_t data[4096];
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);

	/* An in-capsule 4 KiB write: no READ, no chunk, straight to the backend, then the SEND. */
	pattern(data, sizeof(data), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, 5, 1);
	sqe.common.dptr.addr = 0;
	sqe.common.dptr.unkeyed.length = htole32(sizeof(data));
	sqe.common.dptr.keyed.type = 0x01;
	recv_capsule(f->io, 1, &sqe, data, sizeof(data));
	assert_int_equal(nr_sends, 1);
	assert_int_equal(le16toh(sent_cqe(0)->status), 0);
	assert_int_equal(f->pool.nr_waits, 0);
	complete_wr(f->io, 0, IBV_WC_SUCCESS);
	/* Read it back: WRITE + SEND. */
	sends_reset();
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 5, 1);
	keyed(&sqe, 0x40000, sizeof(data), 9);
	recv_capsule(f->io, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_memory_equal(sends[0].data, data, sizeof(data));

	/* The queue dies with that response and a READ in flight: flushes return every slot. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, 6, 1);
	keyed(&sqe, 0x50000, 4096, 9);
	recv_capsule(f->io, 3, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 3);
	assert_int_equal(sends[2].opcode, IBV_WR_RDMA_READ);
	r = slot_of(sends[2].wr_id);
	f->io->state = NVT_RDMA_Q_DISCONNECTING;
	cq_push(0, IBV_WC_WR_FLUSH_ERR);
	cq_push(1, IBV_WC_WR_FLUSH_ERR);
	cq_push(2, IBV_WC_WR_FLUSH_ERR);
	nvt_rdma_queue_drain(f->io);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	assert_all_free(f->io);
	assert_pool_idle(f);
}

/* Capsules before ESTABLISHED wait in order and run once it comes; their buffers are not the HCA's. */
static void test_parked_before_established(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	f->io->state = NVT_RDMA_Q_CONNECTING;
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 8);
	sqe.common.cid = 1;
	keyed(&sqe, 0x1000, 4096, 1);
	recv_capsule(f->io, 1, &sqe, NULL, 0);
	sqe.common.cid = 2;
	recv_capsule(f->io, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 0);
	assert_int_equal(f->io->nr_parked, 2);
	nvt_rdma_queue_established(f->io);
	iter_end();
	assert_int_equal(f->io->nr_parked, 0);
	assert_int_equal(nr_sends, 4);
	assert_int_equal(nr_post_send_calls, 1);	/* both responses of the iteration in one post */
	assert_int_equal(sent_cqe(1)->cid, 1);
	assert_int_equal(sent_cqe(3)->cid, 2);
	for (unsigned int i = 0; i < 4; i++)
		complete_wr(f->io, i, IBV_WC_SUCCESS);
	assert_all_free(f->io);
	assert_pool_idle(f);
}

/* A write of @nlb 512-byte blocks at @slba by keyed SGL; returns the READ's index. */
static unsigned int post_write(struct nvt_rdma_queue *q, unsigned int slot, uint32_t nsid,
			       uint64_t slba, uint32_t nlb, uint16_t cid)
{
	unsigned int before = nr_sends;

	post_write_at(q, slot, nsid, slba, nlb, nlb * 512, 0x100000 + slba * 512, 0x100 + cid, cid);
	return before;
}

/*
 * A pool of 4 chunks (128 KiB): a 96 KiB write takes three; a 64 KiB write
 * waits; a 4 KiB read behind it waits too, although one chunk is free:
 * nobody overtakes. As chunks come back they run in order; every count
 * balances, and what was written reads back.
 */
static void test_pool_exhaustion_fifo(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[2][98304];
	struct nvt_rdma_req *w2, *rd;
	unsigned int base;
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	pool_create(f, 4);
	for (int i = 0; i < 2; i++)
		pattern(data[i], sizeof(data[i]), 10 + (unsigned int)i);

	post_write(f->io, 1, 1, 0, 192, 1);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].num_sge, 3);
	assert_int_equal(f->pool.nr_free, 1);
	/* The second needs two: it waits, with nothing posted. */
	post_write(f->io, 2, 1, 192, 128, 2);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(f->pool.nr_waiting, 1);
	w2 = f->pool.wait_head;
	assert_int_equal(w2->state, NVT_RDMA_REQ_NEED_BUFFER);
	assert_int_equal(w2->need, 2);
	assert_int_equal(w2->nr_chunks, 0);
	/* A small read would fit the free chunk, but the write came first. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 8);
	sqe.common.cid = 3;
	keyed(&sqe, 0x900000, 4096, 0x103);
	recv_capsule(f->io, 3, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(f->pool.nr_waiting, 2);
	rd = f->pool.wait_tail;
	assert_int_equal(rd->state, NVT_RDMA_REQ_NEED_BUFFER);
	assert_int_equal(f->pool.nr_free, 1);
	assert_int_equal(f->pool.nr_waits, 2);
	assert_int_equal(f->io->nr_active, 3);

	/* The first write's data arrives: it runs, answers, and the two waiting get their chunks. */
	complete_read(f->io, 0, data[0], sizeof(data[0]));
	assert_int_equal(nr_sends, 5);
	assert_int_equal(sends[1].opcode, IBV_WR_SEND);
	assert_int_equal(sc_of(1), 0);
	assert_int_equal(sends[2].opcode, IBV_WR_RDMA_READ);
	assert_ptr_equal(slot_of(sends[2].wr_id), w2);
	assert_int_equal(w2->state, NVT_RDMA_REQ_XFER_H2C);
	assert_int_equal(sends[3].opcode, IBV_WR_RDMA_WRITE);
	assert_ptr_equal(slot_of(sends[3].wr_id), rd);
	assert_memory_equal(sends[3].data, data[0], 4096);
	assert_int_equal(sends[4].opcode, IBV_WR_SEND);
	assert_null(f->pool.wait_head);
	assert_int_equal(f->pool.nr_waiting, 0);
	assert_int_equal(f->pool.nr_free, 1);
	/* The rest completes in send-queue order. */
	complete_wr(f->io, 1, IBV_WC_SUCCESS);
	complete_read(f->io, 2, data[1], 65536);
	assert_int_equal(sends[5].opcode, IBV_WR_SEND);
	for (unsigned int i = 3; i < 6; i++)
		complete_wr(f->io, i, IBV_WC_SUCCESS);
	assert_all_free(f->io);
	assert_pool_idle(f);

	/* What was written is what reads back, 128 KiB at once. */
	base = nr_sends;
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 64, 256);
	keyed(&sqe, 0xa00000, 131072, 0x200);
	recv_capsule(f->io, 5, &sqe, NULL, 0);
	assert_int_equal(nr_sends, base + 2);
	assert_int_equal(sends[base].num_sge, 4);
	assert_memory_equal(sends[base].data, data[0] + 32768, 65536);
	assert_memory_equal(sends[base].data + 65536, data[1], 65536);
	complete_wr(f->io, base, IBV_WC_SUCCESS);
	complete_wr(f->io, base + 1, IBV_WC_SUCCESS);
	assert_all_free(f->io);
	assert_pool_idle(f);
}

/*
 * A queue dies holding chunks (a READ in flight, a WRITE unacknowledged)
 * and with commands waiting for chunks: all of it comes back, and a
 * command of another queue that waited behind them runs.
 */
static void test_pool_teardown_returns_chunks(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *other;
	struct nvt_sqe sqe;
	uint8_t data[65536];

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	f->io2 = io_queue(f, 2, 8, 8);
	q = f->io;
	pool_create(f, 4);
	pattern(data, sizeof(data), 3);
	/* A read holding one chunk under its WRITE, a write holding two under its READ. */
	read_4k_sqe(&sqe);
	recv_capsule(q, 1, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	post_write(q, 2, 1, 0, 128, 2);
	assert_int_equal(nr_sends, 3);
	assert_int_equal(f->pool.nr_free, 1);
	/* Waiting: another write of this queue, then one of the other queue. */
	post_write(q, 3, 1, 128, 128, 3);
	post_write(f->io2, 1, 1, 256, 128, 4);
	assert_int_equal(f->pool.nr_waiting, 2);
	other = f->pool.wait_tail;
	assert_ptr_equal(other->queue, f->io2);

	/* The host goes away: QP to error, flushes for what was posted, then teardown. */
	cq_push(0, IBV_WC_WR_FLUSH_ERR);
	cq_push(1, IBV_WC_WR_FLUSH_ERR);
	cq_push(2, IBV_WC_WR_FLUSH_ERR);
	nvt_rdma_queue_teardown(q);
	assert_int_equal(q->state, NVT_RDMA_Q_DEAD);
	assert_all_free(q);
	assert_int_equal(q->nr_parked, 0);
	/* The other queue's write got its chunks and its READ. */
	assert_int_equal(other->state, NVT_RDMA_REQ_XFER_H2C);
	assert_null(f->pool.wait_head);
	assert_int_equal(f->pool.nr_free, 2);
	assert_int_equal(sends[nr_sends - 1].opcode, IBV_WR_RDMA_READ);
	queue_gone(f, q);
	complete_read(f->io2, nr_sends - 1, data, sizeof(data));
	assert_int_equal(sends[nr_sends - 1].opcode, IBV_WR_SEND);
	assert_int_equal(sc_of(nr_sends - 1), 0);
	complete_wr(f->io2, nr_sends - 1, IBV_WC_SUCCESS);
	assert_all_free(f->io2);
	assert_pool_idle(f);
}

/* 1 MiB each way: one SGE per chunk, and the data survives the trip. */
static void one_mib_round_trip(struct fixture *f, unsigned int want_wrs)
{
	const uint32_t len = 1u << 20;
	uint8_t *data = malloc(len), *back = malloc(len);
	unsigned int k, off = 0;
	uint64_t remote = 0x10000000;
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	pattern(data, len, 5);

	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, len / 512);
	keyed(&sqe, remote, len, 0x99);
	recv_capsule(f->io, 1, &sqe, NULL, 0);
	assert_int_equal(nr_sends, want_wrs);
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks - 32);
	for (k = 0; k < want_wrs; k++) {
		assert_int_equal(sends[k].opcode, IBV_WR_RDMA_READ);
		assert_int_equal(sends[k].num_sge, 32 / want_wrs);
		assert_int_equal(sends[k].remote_addr, remote + off);
		assert_int_equal(sends[k].rkey, 0x99);
		/* Only the last is signaled: its completion retires the chain. */
		assert_int_equal(!!(sends[k].send_flags & IBV_SEND_SIGNALED), k == want_wrs - 1);
		for (int s = 0; s < sends[k].num_sge; s++) {
			assert_int_equal(sends[k].sge[s].length, NVT_RDMA_CHUNK);
			assert_int_equal(sends[k].sge[s].lkey, f->pool.lkey);
			HCA_GIVES((void *)(uintptr_t)sends[k].sge[s].addr, NVT_RDMA_CHUNK);
			memcpy((void *)(uintptr_t)sends[k].sge[s].addr, data + off, NVT_RDMA_CHUNK);
			off += NVT_RDMA_CHUNK;
		}
	}
	assert_int_equal(off, len);
	assert_int_equal(f->io->sq_used, want_wrs);
	complete_wr(f->io, want_wrs - 1, IBV_WC_SUCCESS);
	assert_int_equal(nr_sends, want_wrs + 1);
	assert_int_equal(sc_of(want_wrs), 0);
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks);
	complete_wr(f->io, want_wrs, IBV_WC_SUCCESS);

	sends_reset();
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, len / 512);
	keyed(&sqe, remote, len, 0x9a);
	recv_capsule(f->io, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, want_wrs + 1);
	for (k = 0, off = 0; k < want_wrs; k++) {
		assert_int_equal(sends[k].opcode, IBV_WR_RDMA_WRITE);
		assert_int_equal(sends[k].num_sge, 32 / want_wrs);
		assert_int_equal(sends[k].remote_addr, remote + off);
		memcpy(back + off, sends[k].data, sends[k].length);
		off += sends[k].length;
	}
	assert_int_equal(off, len);
	assert_memory_equal(back, data, len);
	assert_int_equal(sends[want_wrs].opcode, IBV_WR_SEND);
	assert_int_equal(sc_of(want_wrs), 0);
	assert_int_equal(f->io->sq_used, want_wrs + 1);
	assert_true(f->io->sq_used <= f->io->wrs_per_slot);
	/* The WRITEs report nothing: the chunks stay until the SEND completes. */
	for (k = 0; k < want_wrs; k++)
		assert_false(sends[k].send_flags & IBV_SEND_SIGNALED);
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks - 32);
	complete_wr(f->io, want_wrs, IBV_WC_SUCCESS);
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks);
	assert_all_free(f->io);
	assert_pool_idle(f);
	free(data);
	free(back);
}

static void test_1mib_multi_sge(void **state)
{
	one_mib_round_trip(*state, 1);		/* 32 SGEs in one WR (rxe) */
}

static void test_1mib_few_sges_per_wr(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->admin->sge_wr, 4);
	assert_int_equal(f->admin->wrs_per_slot, 9);	/* 8 WRITEs + the SEND */
	one_mib_round_trip(f, 8);
}

/*
 * PI the target inserts (PRACT=1, tuple-sized metadata): for 64 KiB the
 * core's scratch (1 KiB) is bigger than the slot's, so it sits in the chunks
 * behind the data; a 4 KiB command uses the slot's own.
 */
static void test_pi_scratch_from_pool(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[65536];
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	pattern(data, sizeof(data), 7);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, PI_NSID, 16, 128);
	sqe.rw.control = htole16(1u << 13);	/* PRACT */
	sqe.rw.reftag = htole32(16);
	keyed(&sqe, 0x200000, sizeof(data), 0x44);
	recv_capsule(f->io, 1, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	r = slot_of(sends[0].wr_id);
	assert_int_equal(r->md_len, 128 * 8);
	assert_int_equal(r->nr_chunks, 3);
	assert_int_equal(r->req.md_iov_cnt, 1);
	assert_ptr_equal(r->req.md_iov, &r->iov[2]);
	assert_int_equal(sends[0].num_sge, 2);
	assert_int_equal(sends[0].length, sizeof(data));
	complete_read(f->io, 0, data, sizeof(data));
	assert_int_equal(sc_of(1), 0);
	complete_wr(f->io, 1, IBV_WC_SUCCESS);
	assert_pool_idle(f);
	sends_reset();

	/* Read back with PRACT=1: stored PI checked, stripped; data as written. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, PI_NSID, 16, 128);
	sqe.rw.control = htole16((1u << 13) | (7u << 10));	/* PRACT, check all */
	sqe.rw.reftag = htole32(16);
	keyed(&sqe, 0x200000, sizeof(data), 0x45);
	recv_capsule(f->io, 2, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(sc_of(1), 0);
	assert_memory_equal(sends[0].data, data, sizeof(data));
	complete_wr(f->io, 0, IBV_WC_SUCCESS);
	complete_wr(f->io, 1, IBV_WC_SUCCESS);
	sends_reset();

	/* 4 KiB: 64 bytes of PI in the slot itself, one chunk for the data. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, PI_NSID, 16, 8);
	sqe.rw.control = htole16((1u << 13) | (7u << 10));
	sqe.rw.reftag = htole32(16);
	keyed(&sqe, 0x200000, 4096, 0x46);
	recv_capsule(f->io, 3, &sqe, NULL, 0);
	r = slot_of(sends[0].wr_id);
	assert_int_equal(r->md_len, 0);
	assert_ptr_equal(r->req.md_iov[0].iov_base, r->md_scratch);
	assert_int_equal(sc_of(1), 0);
	assert_memory_equal(sends[0].data, data, 4096);
	complete_wr(f->io, 0, IBV_WC_SUCCESS);
	complete_wr(f->io, 1, IBV_WC_SUCCESS);
	assert_all_free(f->io);
	assert_pool_idle(f);
}

/* A queue dies while its command waits behind another queue's: it leaves the line at once. */
static void test_teardown_leaves_wait_list(void **state)
{
	struct fixture *f = *state;
	uint8_t data[65536];

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	f->io2 = io_queue(f, 2, 8, 8);
	pool_create(f, 2);
	pattern(data, sizeof(data), 4);
	post_write(f->io2, 1, 1, 0, 128, 1);
	assert_int_equal(f->pool.nr_free, 0);
	post_write(f->io, 1, 1, 128, 128, 2);
	assert_int_equal(f->pool.nr_waiting, 1);
	nvt_rdma_queue_teardown(f->io);
	assert_int_equal(f->pool.nr_waiting, 0);
	assert_null(f->pool.wait_head);
	assert_null(f->pool.wait_tail);
	assert_all_free(f->io);
	queue_unpoison(f->io);
	nvt_poll_group_poll(f->tgt->pg, 0);
	f->io = NULL;
	complete_read(f->io2, 0, data, sizeof(data));
	complete_wr(f->io2, 1, IBV_WC_SUCCESS);
	assert_all_free(f->io2);
	assert_pool_idle(f);
}

/*
 * A chain the provider took only in part: what it took may still read or
 * write the chunks, so the slot keeps them (no response, the queue is
 * dropped) until the QP is destroyed; then everything comes back.
 */
static void test_partial_post(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_req *r;
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	/* A read whose WRITE goes in and whose SEND does not. */
	post_fail_after = 1;
	read_4k_sqe(&sqe);
	recv_capsule(f->io, 1, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_WRITE);
	r = slot_of(sends[0].wr_id);
	assert_int_equal(r->state, NVT_RDMA_REQ_COMPLETING);
	assert_int_equal(r->nr_chunks, 1);
	assert_int_equal(nr_disconnects, 1);
	assert_int_equal(f->io->state, NVT_RDMA_Q_DISCONNECTING);
	/* A 1 MiB write whose READ chain (8 WRs of 4 SGEs) goes in for 3 WRs, none signaled. */
	f->io->state = NVT_RDMA_Q_LIVE;
	f->io->disconnect_sent = false;
	post_fail_after = 3;
	post_write(f->io, 2, 1, 0, 2048, 2);
	assert_int_equal(nr_sends, 4);
	r = slot_of(sends[3].wr_id);
	assert_int_equal(r->state, NVT_RDMA_REQ_XFER_H2C);
	assert_int_equal(r->nr_chunks, 32);
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks - 33);
	/* Teardown: the WRITE flushes, the READs never report; the destroyed QP frees the rest. */
	cq_push(0, IBV_WC_WR_FLUSH_ERR);
	nvt_rdma_queue_teardown(f->io);
	assert_all_free(f->io);
	assert_pool_idle(f);
	queue_unpoison(f->io);
	nvt_poll_group_poll(f->tgt->pg, 0);
	f->io = NULL;
}

/* A queue accepted but never Fabrics-connected is asked to leave after 10 s, torn down after 20 s. */
static void test_connect_timeout(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *idle, *live;
	const uint64_t s = 1000000000ull;

	connect_all(f);
	live = f->io = io_queue(f, 1, 8, 8);
	idle = f->io2 = queue_create(f, 2, 8, 8);
	f->rport.queues = idle;
	idle->next = live;
	live->next = NULL;
	idle->accepted_ns = live->accepted_ns = 100 * s;
	nr_disconnects = 0;
	assert_int_equal(nvt_rdma_port_check_connects(&f->rport, 109 * s), 0);
	assert_int_equal(nr_disconnects, 0);
	assert_int_equal(nvt_rdma_port_check_connects(&f->rport, 110 * s), 1);
	assert_int_equal(nr_disconnects, 1);
	assert_int_equal(idle->state, NVT_RDMA_Q_DISCONNECTING);
	assert_int_equal(live->state, NVT_RDMA_Q_LIVE);
	/* Asked once; then, if the host never lets go, torn down without it. */
	assert_int_equal(nvt_rdma_port_check_connects(&f->rport, 115 * s), 0);
	assert_int_equal(nvt_rdma_port_check_connects(&f->rport, 120 * s), 1);
	assert_true(idle->teardown_forwarded);
	assert_int_equal(idle->state, NVT_RDMA_Q_DEAD);
	assert_all_free(idle);
	assert_int_equal(nvt_rdma_port_check_connects(&f->rport, 200 * s), 0);
	assert_int_equal(live->state, NVT_RDMA_Q_LIVE);
	assert_int_equal(nr_disconnects, 1);
	f->rport.queues = NULL;
	queue_unpoison(idle);
	nvt_poll_group_poll(f->tgt->pg, 0);	/* the deferred gone frees it */
	f->io2 = NULL;
	assert_pool_idle(f);
}

/*
 * A host with more commands unanswered than its SQ has entries is dropped
 * (the queue has more RECVs than SQ entries, as HRQSIZE > HSQSIZE + 1
 * allows); nothing leaks and the other queue goes on.
 */
static void test_host_overrun(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_sqe sqe;
	unsigned int i;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 4);
	f->io2 = io_queue(f, 2, 8, 8);
	q = f->io;
	/* Four writes waiting for their data: the SQ is full from the host's side. */
	for (i = 0; i < 4; i++)
		post_write(q, 1 + i, 1, i * 8, 8, (uint16_t)i);
	assert_int_equal(q->nr_active, 4);
	assert_int_equal(nr_sends, 4);
	post_write(q, 5, 1, 32, 8, 5);
	assert_int_equal(nr_sends, 4);
	assert_int_equal(nr_disconnects, 1);
	assert_int_equal(q->state, NVT_RDMA_Q_DISCONNECTING);
	/* Nothing more from it is looked at. */
	post_write(q, 6, 1, 40, 8, 6);
	assert_int_equal(nr_sends, 4);

	/* The other queue is untouched. */
	read_4k_sqe(&sqe);
	recv_capsule(f->io2, 1, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 6);
	assert_int_equal(sc_of(5), 0);
	complete_wr(f->io2, 4, IBV_WC_SUCCESS);
	complete_wr(f->io2, 5, IBV_WC_SUCCESS);
	assert_all_free(f->io2);

	/* Teardown: flushed READs give everything back. */
	for (i = 0; i < 4; i++)
		cq_push(i, IBV_WC_WR_FLUSH_ERR);
	nvt_rdma_queue_teardown(q);
	assert_all_free(q);
	assert_pool_idle(f);
	queue_gone(f, q);
}

/* RECV buffers of @q the HCA holds. */
static unsigned int posted_recvs_of(const struct nvt_rdma_queue *q)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < nr_posted_recv_bufs; i++) {
		const uint8_t *b = posted_recv_bufs[i];

		n += b >= q->recv_bufs && b < q->recv_bufs + (size_t)q->recv_depth * NVT_RDMA_CAPSULE;
	}
	return n;
}

/*
 * A host that stops taking our SENDs (it reposts no RECVs; RNR retries are
 * endless) yet keeps sending capsules: every slot's WRITE and SEND sit in
 * the send queue, which holds exactly that and is never posted past;
 * capsules that find no free slot wait, in order, in their RECV buffers
 * (the same as a capsule that beats the previous SEND's ACK), and the host
 * runs out of RECVs: it stalls itself. When the SENDs complete, the waiting
 * commands run oldest first.
 */
static void test_stuck_sends(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_sqe sqe;
	unsigned int i, n;

	connect_all(f);
	f->io = io_queue(f, 1, 4, 4);
	q = f->io;
	for (i = 0; i < 4; i++) {
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, i * 8, 8);
		sqe.common.cid = (uint16_t)i;
		keyed(&sqe, 0x1000 * (i + 1), 4096, 1);
		recv_capsule(q, i, &sqe, NULL, 0);
	}
	assert_int_equal(nr_sends, 8);
	assert_int_equal(q->nr_active, 0);
	assert_int_equal(q->sq_used, 8);
	assert_int_equal(q->max_send_wr, 8);
	/* Four more into the RECVs we reposted: no free slot, they wait. */
	for (i = 0; i < 4; i++) {
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, i * 8, 8);
		sqe.common.cid = (uint16_t)(10 + i);
		keyed(&sqe, 0x1000 * (i + 1), 4096, 1);
		recv_capsule(q, i, &sqe, NULL, 0);
	}
	assert_int_equal(nr_sends, 8);
	assert_int_equal(q->nr_parked, 4);
	assert_int_equal(nr_disconnects, 0);
	assert_false(sq_overflowed);
	assert_int_equal(posted_recvs_of(q), 0);
	assert_int_equal(q->posted_recvs, 0);
	/* What is stuck holds only its own data: one chunk per read. */
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks - 4);
	/* The host takes them at last: each SEND done frees a slot for the next waiting command. */
	for (i = 0; i < 8; i++)
		complete_wr(q, i, IBV_WC_SUCCESS);
	assert_int_equal(q->nr_parked, 0);
	assert_int_equal(nr_sends, 16);
	for (i = 8, n = 0; i < 16; i++) {
		if (sends[i].opcode == IBV_WR_SEND) {
			assert_int_equal(sent_cqe(i)->cid, 10 + n);
			n++;
		}
	}
	assert_int_equal(n, 4);
	assert_false(sq_overflowed);
	for (i = 8; i < 16; i++)
		complete_wr(q, i, IBV_WC_SUCCESS);
	assert_int_equal(posted_recvs_of(q), 4);
	assert_all_free(q);
	assert_pool_idle(f);
}

/* The send queue bound itself: a post that would overrun it is refused before the provider sees it. */
static void test_send_queue_bound(void **state)
{
	struct fixture *f = *state;
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED };
	unsigned int posted;

	f->admin->sq_used = f->admin->max_send_wr;
	assert_int_equal(nvt_rdma_post_send(f->admin, &wr, 1, &posted), -ENOSPC);
	assert_int_equal(posted, 0);
	assert_int_equal(nr_sends, 0);
	assert_int_equal(f->admin->max_send_wr, 8 * f->admin->wrs_per_slot);
	f->admin->sq_used = 0;
}

/* ---- a host that stalls, a host that floods ---- */

/* The HCA completes every signaled WR still outstanding, in order, until nothing more is posted. */
static void complete_all(void)
{
	for (unsigned int i = 0; i < nr_sends; i++) {
		if (sends[i].retired || !(sends[i].send_flags & IBV_SEND_SIGNALED))
			continue;
		complete_wr(slot_of(sends[i].wr_id)->queue, i, IBV_WC_SUCCESS);
	}
}

/* A read of @nlb blocks by keyed SGL, cid @cid, landing in RECV buffer @slot of @q. */
static void post_read(struct nvt_rdma_queue *q, unsigned int slot, uint64_t slba, uint32_t nlb,
		      uint16_t cid)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, slba, nlb);
	sqe.common.cid = cid;
	keyed(&sqe, 0x4000000 + slba * 512, nlb * 512, 0x300 + cid);
	recv_capsule(q, slot, &sqe, NULL, 0);
}

/* The fixture's queues, as the listener lists them for its tick. */
static void rport_list(struct fixture *f)
{
	struct nvt_rdma_queue *qs[] = { f->admin, f->io, f->io2 };

	f->rport.queues = NULL;
	f->rport.nr_queues = 0;
	for (unsigned int i = 0; i < NVT_ARRAY_SIZE(qs); i++) {
		if (!qs[i])
			continue;
		qs[i]->next = f->rport.queues;
		f->rport.queues = qs[i];
		f->rport.nr_queues++;
	}
}

/* Three reads of 4 KiB, capsules in RECV buffers 1..3 of @q, cids 1..3, in one iteration. */
static void three_reads_one_iteration(struct nvt_rdma_queue *q)
{
	hold_iter = true;
	for (uint16_t i = 1; i <= 3; i++)
		post_read(q, i, i * 8, 8, i);
	hold_iter = false;
}

/*
 * Batched posting: what one iteration produces (three reads' WRITE + SEND,
 * three capsule buffers) leaves in one ibv_post_send and one ibv_post_recv,
 * at the end of the iteration and not before.
 */
static void test_batch_one_post_per_iteration(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;

	q = first_io_queue(f);
	three_reads_one_iteration(q);
	assert_int_equal(nr_sends, 0);
	assert_int_equal(nr_recvs, 0);
	assert_true(q->dirty);
	assert_int_equal(q->sq_used, 6);		/* counted when queued */
	assert_int_equal(q->posted_sends, 0);	/* ...but posted only at the flush */
	assert_int_equal(atomic_load(&q->sends_posted), atomic_load(&q->sends_done));
	iter_end();
	assert_false(q->dirty);
	assert_null(f->bdev->dirty);
	assert_int_equal(nr_post_send_calls, 1);
	assert_int_equal(nr_post_recv_calls, 1);
	assert_int_equal(nr_sends, 6);
	assert_int_equal(nr_recvs, 3);
	for (unsigned int i = 0; i < 6; i += 2) {
		assert_int_equal(sends[i].opcode, IBV_WR_RDMA_WRITE);
		assert_false(sends[i].send_flags & IBV_SEND_SIGNALED);
		assert_int_equal(sends[i + 1].opcode, IBV_WR_SEND);
		assert_int_equal(sent_cqe(i + 1)->cid, i / 2 + 1);
	}
	assert_int_equal(q->posted_sends, 3);
	assert_int_equal(atomic_load(&q->sends_posted) - atomic_load(&q->sends_done), 3);
	/* Each SEND gives its slot and its chunk back. */
	complete_wr(q, 1, IBV_WC_SUCCESS);
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks - 2);
	complete_all();
	assert_all_free(q);
	assert_pool_idle(f);
}

/* batch_posts = false: each response is posted at once, one post each, as before batching. */
static void test_batch_off_posts_at_once(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;

	connect_all(f);
	f->no_batch = true;
	q = f->io = io_queue(f, 1, 8, 8);
	assert_false(q->batch);
	three_reads_one_iteration(q);
	assert_int_equal(nr_sends, 6);
	assert_int_equal(nr_post_send_calls, 3);
	assert_int_equal(nr_post_recv_calls, 3);
	assert_false(q->dirty);
	assert_false(sends[0].send_flags & IBV_SEND_SIGNALED);
	complete_all();
	assert_all_free(q);
	assert_pool_idle(f);
}

/*
 * A batched post that fails in the middle: three responses (WRITE, SEND
 * each) and the post takes three WRs. The first command is posted whole,
 * the second cut after its WRITE (the HCA has that: its slot waits for the
 * QP to go), the third not at all (its slot comes back at once). sq_used
 * and the signaled counts hold exactly what the HCA has.
 */
static void test_batch_partial_post(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *r1, *r2;

	q = first_io_queue(f);
	three_reads_one_iteration(q);
	post_fail_after = 3;
	iter_end();
	assert_int_equal(nr_post_send_calls, 1);
	assert_int_equal(nr_sends, 3);
	assert_int_equal(q->sq_used, 3);
	assert_int_equal(q->posted_sends, 1);
	assert_int_equal(atomic_load(&q->sends_posted) - atomic_load(&q->sends_done), 1);
	assert_int_equal(q->state, NVT_RDMA_Q_DISCONNECTING);
	assert_int_equal(nr_disconnects, 1);
	r1 = slot_of(sends[1].wr_id);
	r2 = slot_of(sends[2].wr_id);
	assert_int_equal(r1->state, NVT_RDMA_REQ_COMPLETING);
	assert_int_equal(r2->state, NVT_RDMA_REQ_COMPLETING);	/* its WRITE is the HCA's */
	assert_int_equal(r2->nr_chunks, 1);
	assert_int_equal(f->pool.nr_free, f->pool.nr_chunks - 2);	/* the third's came back */
	/* The first SEND flushes; teardown: the destroyed QP gives the second back. */
	cq_push(1, IBV_WC_WR_FLUSH_ERR);
	nvt_rdma_queue_teardown(q);
	assert_all_free(q);
	assert_pool_idle(f);
	queue_gone(f, q);
}

/*
 * Teardown while chains wait to be posted: they never are, the queue
 * leaves the dirty list (the flusher does not touch it after), and its
 * slots and chunks come back like any others.
 */
static void test_batch_teardown_unposted(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;

	q = first_io_queue(f);
	three_reads_one_iteration(q);
	hold_iter = true;		/* the teardown comes within the same iteration */
	assert_true(q->dirty);
	assert_ptr_equal(f->bdev->dirty, q);
	nvt_rdma_queue_teardown(q);
	hold_iter = false;
	assert_false(q->dirty);
	assert_null(f->bdev->dirty);
	iter_end();
	assert_int_equal(nr_sends, 0);
	assert_int_equal(nr_post_send_calls, 0);
	assert_all_free(q);
	assert_pool_idle(f);
	queue_gone(f, q);
}

/*
 * Two queues share one CQ; one is torn down with I/O in flight. The drain
 * reaps the shared CQ: the other queue's completions reaped meanwhile go
 * to it, and so do the ones behind the dead queue's own (taken in one
 * pass after its QP is gone); the dead queue's late ones (a RECV flushed
 * after its last SEND) touch nothing. Under ASan its memory is freed
 * before the other queue's last completion is handled.
 */
static void test_shared_cq_teardown_mid_io(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q1, *q2;
	unsigned int q2_send_a, q2_send_b, q1_send;

	connect_all(f);
	q1 = f->io = io_queue(f, 1, 8, 8);
	q2 = f->io2 = io_queue(f, 2, 8, 8);
	assert_ptr_equal(q1->cq, q2->cq);
	post_read(q2, 1, 0, 8, 1);
	q2_send_a = nr_sends - 1;
	post_read(q1, 1, 8, 8, 2);
	q1_send = nr_sends - 1;
	post_read(q2, 2, 16, 8, 3);
	q2_send_b = nr_sends - 1;
	assert_int_equal(nr_sends, 6);
	/* In the CQ, in order: q2's first SEND, q1's SEND flushed, a RECV of q1 flushed, q2's second SEND. */
	cq_push(q2_send_a, IBV_WC_SUCCESS);
	cq_push(q1_send, IBV_WC_WR_FLUSH_ERR);
	cq_push_recv(q1, 2);
	cq_push(q2_send_b, IBV_WC_SUCCESS);
	nvt_rdma_queue_teardown(q1);
	assert_int_equal(q1->state, NVT_RDMA_Q_DEAD);
	assert_int_equal(cq_head, nr_cq_entries);	/* nothing of q1 is left in the CQ */
	assert_all_free(q1);
	/* q2 got both its completions, and is untouched otherwise. */
	assert_int_equal(q2->state, NVT_RDMA_Q_LIVE);
	assert_all_free(q2);
	assert_int_equal(q2->posted_sends, 0);
	assert_pool_idle(f);
	queue_gone(f, q1);
	/* q2 goes on serving on the shared CQ. */
	post_read(q2, 3, 0, 8, 4);
	cq_push(nr_sends - 1, IBV_WC_SUCCESS);
	assert_int_equal(nvt_rdma_poll_cq(q2), 1);
	assert_all_free(q2);
	assert_pool_idle(f);
}

/*
 * Adaptive polling of the (device, poll group)'s CQ: busy while
 * completions come and for 50 us after the last (no arming, the loop does
 * not sleep), then it arms the CQ and polls once more, and only an empty
 * CQ lets the loop sleep; the channel's event makes it busy again.
 */
static void test_adaptive_poll(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_dev *d = f->bdev;
	struct nvt_rdma_queue *q;

	q = first_io_queue(f);
	d->cq = &fake_cq;
	d->nr_polled = 1;
	d->watching = true;	/* as if its channel were watched */
	d->busy = true;
	d->idle_until = nvt_now_ns() + NVT_RDMA_SPIN_IDLE_NS;
	post_read(q, 1, 0, 8, 1);
	cq_push(nr_sends - 1, IBV_WC_SUCCESS);
	assert_int_equal(nvt_rdma_dev_poll(&d->poller), 1);
	assert_all_free(q);
	assert_int_equal(nr_cq_arms, 0);
	/* Nothing, but within the budget: still busy, still not armed. */
	assert_int_equal(nvt_rdma_dev_poll(&d->poller), 1);
	assert_int_equal(nr_cq_arms, 0);
	/* The budget is over: armed, one more poll, then idle. */
	d->idle_until = nvt_now_ns() - 1;
	assert_int_equal(nvt_rdma_dev_poll(&d->poller), 0);
	assert_int_equal(nr_cq_arms, 1);
	assert_false(d->busy);
	assert_int_equal(nvt_rdma_dev_poll(&d->poller), 0);	/* idle: not even a poll */
	/* A completion that slipped in just before the arming is taken by the poll after it. */
	d->busy = true;
	d->idle_until = nvt_now_ns() - 1;
	post_read(q, 2, 0, 8, 2);
	arm_pushes = (int)nr_sends - 1;
	assert_int_equal(nvt_rdma_dev_poll(&d->poller), 1);
	assert_int_equal(nr_cq_arms, 2);
	assert_true(d->busy);
	assert_all_free(q);
	d->nr_polled = 0;
	d->cq = NULL;
}

/* Poll-group iterations (no sleep) until @d is idle, at most 1 s. Return: whether it went idle. */
static bool poll_until_idle(struct nvt_rdma_dev *d)
{
	uint64_t end = nvt_now_ns() + 1000000000ull;

	while (d->busy && nvt_now_ns() < end)
		nvt_poll_group_poll(cur_pg, 0);
	return !d->busy;
}

/*
 * The real loop, not the poller alone: a LIVE queue starts the poller and
 * the channel watch; with nothing coming the poll group arms the CQ and
 * goes idle; a completion then stays in the CQ until the channel's event
 * wakes the loop, which takes it in the same round.
 */
static void test_adaptive_poll_loop(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_dev *d = f->bdev;
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *r;

	connect_all(f);
	fake_channel.fd = eventfd(0, EFD_NONBLOCK);
	assert_true(fake_channel.fd >= 0);
	d->channel = &fake_channel;
	d->cq = &fake_cq;
	q = f->io = io_queue(f, 1, 8, 8);
	assert_true(q->cq_polled);
	assert_true(d->watching);
	assert_true(d->busy);
	assert_true(poll_until_idle(d));
	assert_int_equal(nr_cq_arms, 1);
	/* Asleep: a read's response SEND completes, nobody looks. */
	post_read(q, 0, 0, 8, 1);
	r = slot_of(sends[nr_sends - 1].wr_id);
	cq_push(nr_sends - 1, IBV_WC_SUCCESS);
	nvt_poll_group_poll(cur_pg, 0);
	assert_int_equal(r->state, NVT_RDMA_REQ_COMPLETING);
	/* The channel's event wakes it: the completion is taken in that round. */
	hca_cq_event();
	nvt_poll_group_poll(cur_pg, 1000);
	assert_int_equal(nr_cq_events, 1);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	assert_true(d->busy);
	assert_all_free(q);
	assert_true(poll_until_idle(d));
	assert_int_equal(nr_cq_arms, 2);
	nvt_rdma_dev_poll_stop(q);
	assert_false(d->watching);
	close(fake_channel.fd);
	fake_channel.fd = -1;
	d->channel = NULL;
	d->cq = NULL;
}

/* A poller idle on the first run of each loop iteration, busy on the second: a wake-up's work. */
static int lone_cmd_polls;

static int lone_cmd_poll(struct nvt_pg_poller *p)
{
	(void)p;
	return lone_cmd_polls++ % 2;
}

/*
 * QD 1: a lone command wakes the loop from epoll_wait and leaves the
 * pollers busy. The next round must not look at the fds again at once (it
 * just did, asleep): that was one more epoll_wait per command. Retried a
 * few times in case the test is descheduled for the 32 us in between;
 * without the fix no try passes (the stamp is from before the sleep).
 */
static void test_poll_group_wake_no_second_look(void **state)
{
	struct nvt_pg_poller p = { .fn = lone_cmd_poll };
	bool ok = false;

	(void)state;
	lone_cmd_polls = 0;
	nvt_poll_group_add_poller(cur_pg, &p);
	for (int i = 0; i < 5 && !ok; i++) {
		unsigned long looks;

		if (lone_cmd_polls % 2)
			lone_cmd_polls++;
		/* Idle first: it sleeps 1 ms in epoll_wait, then its poller is busy. */
		nvt_poll_group_poll(cur_pg, 1);
		looks = nvt_poll_group_nr_fd_looks(cur_pg);
		lone_cmd_polls++;	/* and busy in the next round's first run too */
		nvt_poll_group_poll(cur_pg, 1);
		ok = nvt_poll_group_nr_fd_looks(cur_pg) == looks;
	}
	nvt_poll_group_del_poller(cur_pg, &p);
	assert_true(ok);
}

/*
 * Review #7: a poll group that cannot watch the channel, or cannot arm the
 * CQ, must not sleep: nothing would wake it. It keeps polling and still
 * takes completions.
 */
static void test_adaptive_poll_never_sleeps_unwatched(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_dev *d = f->bdev;
	struct nvt_rdma_queue *q;

	connect_all(f);
	fake_channel.fd = -1;		/* epoll refuses it */
	d->channel = &fake_channel;
	d->cq = &fake_cq;
	q = f->io = io_queue(f, 1, 8, 8);
	assert_false(d->watching);
	assert_false(poll_until_idle(d));
	assert_int_equal(nr_cq_arms, 0);
	post_read(q, 0, 0, 8, 1);
	cq_push(nr_sends - 1, IBV_WC_SUCCESS);
	nvt_poll_group_poll(cur_pg, 0);
	assert_all_free(q);
	nvt_rdma_dev_poll_stop(q);
	/* Watched, but arming fails: busy still, asked again each round. */
	fake_channel.fd = eventfd(0, EFD_NONBLOCK);
	assert_true(fake_channel.fd >= 0);
	arm_fails = EIO;
	q->state = NVT_RDMA_Q_CONNECTING;
	q->cq_polled = false;
	nvt_rdma_dev_poll_start(q);
	q->state = NVT_RDMA_Q_LIVE;
	assert_true(d->watching);
	assert_false(poll_until_idle(d));
	assert_true(nr_cq_arms >= 2);
	arm_fails = 0;
	assert_true(poll_until_idle(d));
	nvt_rdma_dev_poll_stop(q);
	close(fake_channel.fd);
	fake_channel.fd = -1;
	d->channel = NULL;
	d->cq = NULL;
}

/* The QP a send WR was posted on. */
static struct fake_qp *qp_of(struct nvt_rdma_queue *q)
{
	return container_of(q->cm_id->qp, struct fake_qp, qp);
}

/*
 * A shared receive queue: capsules of two queues land in its buffers and
 * each reaches its own queue by the QP it came in on; the queues have no
 * capsule buffers of their own; every buffer goes back with the response.
 */
static void test_srq_routed_by_qp_num(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q1, *q2;

	connect_all(f);
	q1 = f->io = io_queue(f, 1, 8, 8);
	q2 = f->io2 = io_queue(f, 2, 8, 8);
	assert_true(q1->srq && q2->srq);
	assert_int_equal(q1->posted_recvs, 0);	/* none of its own */
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
	post_read(q2, 0, 0, 8, 7);
	assert_int_equal(nr_sends, 2);
	assert_ptr_equal(sends[0].fq, qp_of(q2));
	assert_ptr_equal(sends[1].fq, qp_of(q2));
	assert_int_equal(sent_cqe(1)->cid, 7);
	assert_int_equal(q1->nr_active + q1->sq_used, 0);	/* the other queue saw nothing */
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);	/* its buffer is back */
	post_read(q1, 0, 8, 8, 8);
	assert_ptr_equal(sends[3].fq, qp_of(q1));
	assert_int_equal(sent_cqe(3)->cid, 8);
	complete_all();
	assert_all_free(q1);
	assert_all_free(q2);
	assert_pool_idle(f);
}

/*
 * Capsules that land before the owner knows their queue (between
 * rdma_accept and the message that names its QP) wait, in order, and
 * reach it when it is known; another queue's stay parked meanwhile and
 * are never handed to the wrong one.
 */
static void test_srq_capsule_before_known(void **state)
{
	struct fixture *f = *state;
	struct nvmf_connect_data d = { .cntlid = htole16(0) };
	struct nvt_rdma_queue *q1, *q2;
	struct nvt_sqe sqe;

	connect_all(f);
	d.cntlid = htole16(f->cntlid);
	strcpy(d.subsysnqn, TEST_NQN);
	strcpy(d.hostnqn, TEST_HOST);
	f->srq_late = true;
	q1 = f->io = queue_create(f, 1, 8, 8);
	q2 = f->io2 = queue_create(f, 2, 8, 8);
	f->srq_late = false;
	connect_sqe(&sqe, 1);
	sqe.common.cid = 11;
	recv_capsule(q1, 0, &sqe, NULL, 0);
	connect_sqe(&sqe, 2);
	sqe.common.cid = 22;
	recv_capsule(q2, 0, &sqe, NULL, 0);
	assert_int_equal(f->bdev->nr_orphans, 2);
	assert_int_equal(nr_sends, 0);
	/* q1 is known: its capsule runs (its Connect's READ), q2's waits. */
	nvt_rdma_queue_known(q1);
	iter_end();
	assert_int_equal(f->bdev->nr_orphans, 1);
	assert_int_equal(nr_sends, 1);
	assert_ptr_equal(sends[0].fq, qp_of(q1));
	assert_int_equal(slot_of(sends[0].wr_id)->sqe.common.cid, 11);
	complete_read(q1, 0, &d, sizeof(d));
	assert_int_equal(sent_cqe(1)->cid, 11);
	assert_int_equal(le16toh(sent_cqe(1)->status), 0);
	complete_wr(q1, 1, IBV_WC_SUCCESS);
	assert_true(atomic_load(&q1->connected));
	/* Now q2. */
	nvt_rdma_queue_known(q2);
	iter_end();
	assert_int_equal(f->bdev->nr_orphans, 0);
	assert_int_equal(nr_sends, 3);
	assert_ptr_equal(sends[2].fq, qp_of(q2));
	assert_int_equal(slot_of(sends[2].wr_id)->sqe.common.cid, 22);
	complete_read(q2, 2, &d, sizeof(d));
	complete_wr(q2, 3, IBV_WC_SUCCESS);
	assert_true(atomic_load(&q2->connected));
	assert_all_free(q1);
	assert_all_free(q2);
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
}

/* A queue that goes holding shared buffers (parked capsules, a command's) gives every one back. */
static void test_srq_teardown_returns_buffers(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_sqe sqe;

	q = first_io_queue(f);
	q->state = NVT_RDMA_Q_CONNECTING;
	read_4k_sqe(&sqe);
	recv_capsule(q, 0, &sqe, NULL, 0);
	recv_capsule(q, 0, &sqe, NULL, 0);
	assert_int_equal(q->nr_parked, 2);
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH - 2);
	q->state = NVT_RDMA_Q_LIVE;
	nvt_rdma_queue_teardown(q);
	iter_end();
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
	assert_false(q->qp_known);
	assert_null(nvt_rdma_qp_find(f->bdev, q->qp_num));
	assert_all_free(q);
	queue_gone(f, q);
}

/* Is @rv one of @d's shared buffers? */
static bool srq_buf(const struct nvt_rdma_dev *d, const void *buf)
{
	return d->srq_bufs && (const uint8_t *)buf >= d->srq_bufs &&
	       (const uint8_t *)buf < d->srq_bufs + (size_t)d->srq_depth * NVT_RDMA_CAPSULE;
}

/* Shared buffers @q holds: parked capsules and commands' in-capsule data. */
static unsigned int srq_held_by(const struct nvt_rdma_queue *q)
{
	unsigned int n = 0;

	if (!q)
		return 0;
	for (const struct nvt_rdma_recv *rv = q->parked_head; rv; rv = rv->next)
		n += rv->srq_dev != NULL;
	for (uint32_t i = 0; i < q->nr_reqs; i++)
		n += q->reqs[i].recv && q->reqs[i].recv->srq_dev;
	return n;
}

/*
 * Every shared buffer is somewhere: the HCA's (posted), waiting to be
 * reposted, landed and not reaped, an orphan, or held by a queue (review
 * #3's check: out of the SRQ == held + parked + orphans + pending).
 */
static void assert_srq_conserved(const struct fixture *f)
{
	const struct nvt_rdma_dev *d = f->bdev;
	unsigned int n = 0;

	for (unsigned int i = 0; i < nr_posted_recv_bufs; i++)
		n += srq_buf(d, posted_recv_bufs[i]);
	for (const struct ibv_recv_wr *wr = d->srq_head; wr; wr = wr->next)
		n++;
	for (unsigned int i = cq_head; i < nr_cq_entries; i++) {
		const struct nvt_rdma_wr *wr = (const struct nvt_rdma_wr *)(uintptr_t)cq_entries[i].wr_id;

		if (cq_entry_idx[i] == NO_SEND &&
		    container_of(wr, struct nvt_rdma_recv, wr)->srq_dev == d)
			n++;
	}
	n += d->nr_orphans + srq_held_by(f->admin) + srq_held_by(f->io) + srq_held_by(f->io2);
	assert_int_equal(n, d->srq_depth);
}

/*
 * Review #1: AERs stay outstanding for ever; each must not keep a shared
 * capsule buffer, or 32 hosts' 4 AERs would empty a 128-deep admin SRQ
 * for every host. Their SQEs are copied, so the buffers go back at parse.
 */
static void test_srq_aer_holds_no_buffer(void **state)
{
	struct fixture *f = *state;
	struct nvt_sqe sqe;

	connect_all(f);
	for (uint16_t i = 0; i < 4; i++) {
		nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
		sqe.common.cid = (uint16_t)(100 + i);
		keyed(&sqe, 0, 0, 0);
		recv_capsule(f->admin, 0, &sqe, NULL, 0);
		assert_int_equal(nr_sends, 0);			/* outstanding */
		assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);	/* its buffer is back */
	}
	assert_int_equal(f->admin->nr_active, 4);
	/* The admin queue goes with its AERs outstanding: they end, nothing is sent, no buffer lost. */
	nvt_rdma_queue_teardown(f->admin);
	iter_end();
	assert_int_equal(nr_sends, 0);
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
	assert_all_free(f->admin);
	queue_unpoison(f->admin);
	nvt_poll_group_poll(f->tgt->pg, 0);
	f->admin = NULL;
}

/*
 * A keyed read a backend holds needs no capsule buffer: it is back at
 * parse. An in-capsule write's data moves into a pool chunk, so its
 * buffer is back at parse too; only where the pool has no chunk for it
 * now does the command read its data in place and hold the buffer until
 * its response. Either way the data stored is the data sent.
 */
static void test_srq_executing_holds_only_icdata(void **state)
{
	struct fixture *f = *state;
	uint32_t hoard[POOL_CHUNKS], nr_hoard;
	uint8_t data[512];
	struct nvt_sqe sqe;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	post_read(f->io, 0, 0, 1, 5);
	assert_int_equal(slow.nr_held, 1);
	assert_int_equal(nr_sends, 0);
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
	for (unsigned int round = 0; round < 2; round++) {
		/* Round 1: every chunk taken (another queue's), the buffer is kept. */
		nr_hoard = 0;
		if (round) {
			nr_hoard = f->pool.nr_free;
			assert_true(nvt_rdma_pool_get(&f->pool, hoard, nr_hoard));
		}
		pattern(data, sizeof(data), 3 + round);
		nvt_host_sqe_rw(&sqe, nvme_cmd_write, SLOW_NSID, 9 + round, 1);
		sqe.common.cid = (uint16_t)(6 + round);
		sqe.common.dptr.addr = 0;
		sqe.common.dptr.unkeyed.length = htole32(sizeof(data));
		sqe.common.dptr.keyed.type = 0x01;
		recv_capsule(f->io, 0, &sqe, data, sizeof(data));
		assert_int_equal(slow.nr_held, 2);
		assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH - round);
		assert_srq_conserved(f);
		slow_complete(1, 0);
		assert_int_equal(le16toh(sent_cqe(nr_sends - 1)->status), 0);
		assert_int_equal(sent_cqe(nr_sends - 1)->cid, 6 + round);
		assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
		complete_all();
		if (nr_hoard)
			nvt_rdma_pool_put(&f->pool, hoard, nr_hoard);
	}
	slow_complete(0, 0);
	assert_int_equal(sent_cqe(nr_sends - 1)->cid, 5);
	complete_all();
	/* Both writes stored what was sent. */
	for (unsigned int round = 0; round < 2; round++) {
		uint8_t want[512];

		pattern(want, sizeof(want), 3 + round);
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, SLOW_NSID, 9 + round, 1);
		sqe.common.cid = 20;
		keyed(&sqe, 0x9000, 512, 3);
		recv_capsule(f->io, 0, &sqe, NULL, 0);
		slow_complete(0, 0);
		assert_int_equal(sends[nr_sends - 2].opcode, IBV_WR_RDMA_WRITE);
		assert_memory_equal(sends[nr_sends - 2].data, want, sizeof(want));
		complete_all();
	}
	assert_all_free(f->io);
	assert_pool_idle(f);
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
}

/*
 * Review #2: the kernel CM leaves min_rnr_timer 0 (655 ms per RNR NAK);
 * each queue sets the short one once ESTABLISHED, before any capsule of
 * it runs. A device that refuses it leaves the queue serving.
 */
static void test_rnr_timer_at_established(void **state)
{
	struct fixture *f = *state;
	unsigned int before;

	assert_int_equal(nr_rnr_sets, 1);	/* the admin queue's */
	connect_all(f);
	before = nr_rnr_sets;
	rnr_set_fails = EINVAL;
	f->io = io_queue(f, 1, 8, 8);
	assert_int_equal(nr_rnr_sets, before + 1);
	assert_int_equal(f->io->state, NVT_RDMA_Q_LIVE);
	post_read(f->io, 0, 0, 8, 3);
	assert_int_equal(nr_sends, 2);
	complete_all();
	assert_all_free(f->io);
	/* Once only: a queue that is LIVE already does not set it again. */
	nvt_rdma_queue_established(f->io);
	assert_int_equal(nr_rnr_sets, before + 1);
}

/*
 * Review #4: the shared CQ is sized from the device's max_cqe, so a poll
 * group takes a host's full set of 128-deep queues (a fixed 16384 entries
 * held 62 at 1 MiB, 12 at 8 MiB); a device with less gets what it has.
 */
static void test_cq_sized_from_max_cqe(void **state)
{
	struct fixture *f = *state;
	struct ibv_device_attr mlx5 = { .max_cqe = 4194303 }, small = { .max_cqe = 4096 };
	struct ibv_device_attr none = { .max_cqe = 0 };
	struct nvt_rdma_queue q = { .nr_reqs = NVT_RDMA_MAX_QUEUE_SIZE };
	uint32_t share;

	assert_int_equal(nvt_rdma_cq_entries(&small), 4096);
	assert_int_equal(nvt_rdma_cq_entries(&none), NVT_RDMA_CQ_ENTRIES);
	/* 1 MiB on mlx5 (max_sge 30): a host's full set of queues; its RECVs are the SRQ's. */
	q.max_io = NVT_MAX_IO_SIZE_DEFAULT;
	assert_int_equal(nvt_rdma_queue_size(&q, 30, 30), 0);
	share = q.max_send_wr;
	assert_true((uint64_t)share * NVT_MAX_IO_QUEUES + NVT_RDMA_SRQ_DEPTH <=
		    nvt_rdma_cq_entries(&mlx5));
	/* 8 MiB: still 100 of them (12 before). */
	q.max_io = NVT_MAX_IO_SIZE_MAX;
	assert_int_equal(nvt_rdma_queue_size(&q, 30, 30), 0);
	share = q.max_send_wr;
	assert_true((uint64_t)share * 100 + NVT_RDMA_SRQ_DEPTH <= nvt_rdma_cq_entries(&mlx5));
	(void)f;
}

/* A capsule for @q lands in a shared buffer; its completion waits in the CQ, not reaped. */
static void cq_push_capsule(struct nvt_rdma_queue *q, const struct nvt_sqe *sqe)
{
	struct nvt_rdma_recv *rv = srq_posted(q->dev);

	assert_non_null(rv);
	assert_true(recv_take(rv->buf));
	HCA_GIVES(rv->buf, NVT_RDMA_CAPSULE);
	memcpy(rv->buf, sqe, sizeof(*sqe));
	cq_entry_idx[nr_cq_entries] = NO_SEND;
	cq_entries[nr_cq_entries++] = (struct ibv_wc){ .wr_id = (uintptr_t)&rv->wr,
						       .status = IBV_WC_SUCCESS,
						       .opcode = IBV_WC_RECV,
						       .byte_len = sizeof(*sqe),
						       .qp_num = q->qp_num };
}

/*
 * Review #3, #5, #6: a queue goes while a capsule of its own and one of
 * another queue sit in the shared CQ unreaped, and it has no send of its
 * own outstanding. Its capsule's buffer must come back even where the
 * provider cleans a destroyed QP's CQEs (mlx5); the other queue's capsule
 * reaches it and is answered during the teardown, not after; and the QP
 * number stops routing before the QP is destroyed.
 */
static void test_srq_teardown_reaps_landed_capsules(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q1, *q2;
	struct nvt_sqe sqe;
	bool answered = false;

	connect_all(f);
	q1 = f->io = io_queue(f, 1, 8, 8);
	q2 = f->io2 = io_queue(f, 2, 8, 8);
	assert_srq_conserved(f);
	destroy_cleans_cq = true;
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
	keyed(&sqe, 0x1000, 512, 1);
	sqe.common.cid = 4;
	cq_push_capsule(q1, &sqe);
	sqe.common.cid = 9;
	cq_push_capsule(q2, &sqe);
	assert_srq_conserved(f);
	assert_int_equal(q1->posted_sends, 0);
	nvt_rdma_queue_teardown(q1);
	/* Before the iteration ends: q2's answer is posted by the drain's flush. */
	for (unsigned int i = 0; i < nr_sends; i++)
		answered |= sends[i].fq == qp_of(q2) && sends[i].opcode == IBV_WR_SEND &&
			    sent_cqe(i)->cid == 9;
	assert_true(answered);
	iter_end();
	assert_int_equal(nr_known_at_destroy, 0);
	assert_null(nvt_rdma_qp_find(f->bdev, q1->qp_num));
	f->io = NULL;
	assert_srq_conserved(f);
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);	/* q1's capsule's buffer too */
	assert_all_free(q1);
	queue_unpoison(q1);
	nvt_poll_group_poll(f->tgt->pg, 0);
	complete_all();
	assert_all_free(q2);
	assert_srq_conserved(f);
}

/*
 * The dead-queue path of the shared CQ: a completion of q1's left in the
 * CQ after its QP went (rxe) reaches the DEAD queue, which ignores it;
 * q2's, in the same pass and after q1's memory is freed, reach q2.
 */
static void test_shared_cq_dead_queue_path(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q1, *q2;
	unsigned int read1;

	connect_all(f);
	q1 = f->io = io_queue(f, 1, 8, 8);
	q2 = f->io2 = io_queue(f, 2, 8, 8);
	post_read(q1, 0, 0, 8, 1);		/* WRITE (unsignaled) + SEND */
	read1 = nr_sends - 1;
	assert_int_equal(sends[read1 - 1].opcode, IBV_WR_RDMA_WRITE);
	assert_false(sends[read1 - 1].send_flags & IBV_SEND_SIGNALED);
	post_read(q2, 0, 0, 8, 2);
	/*
	 * q1's SEND flushes (the drain waits for it); the flush of its
	 * unsignaled WRITE, which the drain cannot count, slips in as the QP
	 * goes; q2's SEND completion waits behind it.
	 */
	cq_push(read1, IBV_WC_WR_FLUSH_ERR);
	destroy_pushes = (int)read1 - 1;
	cq_push(nr_sends - 1, IBV_WC_SUCCESS);
	nvt_rdma_queue_teardown(q1);
	iter_end();
	assert_int_equal(cq_head, nr_cq_entries);	/* both taken, neither left behind */
	assert_all_free(q2);
	assert_all_free(q1);
	queue_gone(f, q1);
	/* q2 keeps going on the same CQ. */
	post_read(q2, 0, 8, 8, 3);
	cq_push(nr_sends - 1, IBV_WC_SUCCESS);
	nvt_rdma_poll_cq(q2);
	assert_all_free(q2);
	assert_srq_conserved(f);
	assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
}

/*
 * Shared buffers are conserved over many connect/disconnect cycles, each
 * leaving with a command executing, an in-capsule write, a capsule parked
 * for want of a slot, and a landed capsule not reaped.
 */
static void test_srq_conserved_over_cycles(void **state)
{
	struct fixture *f = *state;
	uint8_t data[512];
	struct nvt_sqe sqe;

	connect_all(f);
	pattern(data, sizeof(data), 1);
	for (unsigned int cycle = 0; cycle < 50; cycle++) {
		struct nvt_rdma_queue *q = f->io = io_queue(f, 1, 2, 2);

		destroy_cleans_cq = cycle & 1;	/* rxe and mlx5 alike */
		post_read(q, 0, (cycle % 8) * 8, 8, 1);	/* answered: its SEND outstanding */
		nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, cycle % 64, 1);
		sqe.common.cid = 2;
		sqe.common.dptr.addr = 0;
		sqe.common.dptr.unkeyed.length = htole32(sizeof(data));
		sqe.common.dptr.keyed.type = 0x01;
		recv_capsule(q, 0, &sqe, data, sizeof(data));	/* answered too: both slots COMPLETING */
		nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 1);
		keyed(&sqe, 0x1000, 512, 1);
		sqe.common.cid = 3;
		recv_capsule(q, 0, &sqe, NULL, 0);		/* parked: no free slot */
		assert_int_equal(q->nr_parked, 1);
		sqe.common.cid = 4;
		cq_push_capsule(q, &sqe);			/* landed, not reaped */
		assert_srq_conserved(f);
		nvt_rdma_queue_teardown(q);
		iter_end();
		f->io = NULL;
		assert_srq_conserved(f);
		assert_int_equal(nr_posted_recv_bufs, SRQ_DEPTH);
		assert_all_free(q);
		queue_unpoison(q);
		nvt_poll_group_poll(f->tgt->pg, 0);
		sends_reset();
	}
	assert_int_equal(f->bdev->nr_orphans, 0);
	assert_pool_idle(f);
}

/* The fake SRQ holds its depth and no more (a real one refuses with ENOMEM). */
static void test_fake_srq_depth(void **state)
{
	static uint8_t extra[NVT_RDMA_CAPSULE];
	struct fixture *f = *state;
	struct nvt_rdma_recv *rv = &f->bdev->srq_recvs[0], x = { .buf = extra };
	struct ibv_recv_wr *bad = NULL;

	assert_int_equal(srq_posted_count(), SRQ_DEPTH);
	/* Taken by a capsule and given back: it fits again. */
	assert_true(recv_take(rv->buf));
	assert_int_equal(srq_posted_count(), SRQ_DEPTH - 1);
	assert_int_equal(ibv_post_srq_recv(&fake_srq, nvt_rdma_recv_wr(&fake_mr, rv), &bad), 0);
	assert_int_equal(srq_posted_count(), SRQ_DEPTH);
	/* Full: one more WR is refused, *bad names it. */
	assert_int_equal(ibv_post_srq_recv(&fake_srq, nvt_rdma_recv_wr(&fake_mr, &x), &bad),
			 ENOMEM);
	assert_ptr_equal(bad, &x.rwr);
	assert_int_equal(srq_posted_count(), SRQ_DEPTH);
}

/*
 * Review #8: shared RECVs the provider refuses to repost are not lost (the
 * SRQ outlives every queue): they wait and go with the next flush; also
 * when the provider leaves *bad unset.
 */
static void test_srq_repost_failure_keeps_buffers(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;

	q = first_io_queue(f);
	for (unsigned int round = 0; round < 2; round++) {
		/* Three capsules in one iteration: their buffers go back in one post, which fails. */
		hold_iter = true;
		post_read(q, 0, 0, 1, 1);
		post_read(q, 0, 1, 1, 2);
		post_read(q, 0, 2, 1, 3);
		srq_fail_after = round ? 0 : 1;
		srq_fail_no_bad = round == 1;
		hold_iter = false;
		iter_end();
		assert_int_equal(srq_posted_count(), SRQ_DEPTH - (round ? 3 : 2));
		assert_srq_conserved(f);
		/* The next iteration that reposts anything takes them along. */
		post_read(q, 0, 3, 1, 4);
		assert_int_equal(srq_posted_count(), SRQ_DEPTH);
		assert_srq_conserved(f);
		complete_all();
		assert_all_free(q);
		sends_reset();
	}
}

/*
 * Review #8: a batched post the provider refuses without setting *bad
 * posted nothing: nothing is counted as posted (the drain would wait its
 * full 2 s for completions that never come).
 */
static void test_batch_post_fails_without_bad(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;

	q = first_io_queue(f);
	three_reads_one_iteration(q);
	post_fail_after = 0;
	post_fail_no_bad = true;
	iter_end();
	assert_int_equal(nr_sends, 0);
	assert_int_equal(q->posted_sends, 0);
	assert_int_equal(q->sq_used, 0);
	assert_int_equal(atomic_load(&q->sends_posted), atomic_load(&q->sends_done));
	assert_int_equal(q->state, NVT_RDMA_Q_DISCONNECTING);
	assert_all_free(q);
	assert_pool_idle(f);
}

/* A device without SRQs: no shared receive queue, nothing allocated; queues keep their own. */
static void test_srq_fallback(void **state)
{
	struct fixture *f = *state;
	struct ibv_device_attr attr = { .max_srq = 0, .max_srq_wr = 0 };
	struct nvt_rdma_dev *d = calloc(1, sizeof(*d));

	d->verbs = &fake_ctx;
	d->cq_entries = NVT_RDMA_CQ_ENTRIES;
	nvt_rdma_dev_create_srq(d, NVT_RDMA_SRQ_DEPTH, &attr);
	assert_null(d->srq);
	assert_null(d->srq_bufs);
	assert_int_equal(d->srq_depth, 0);
	assert_int_equal(d->cq_reserved, 0);
	free(d);
	/* The fixture's device has none either: its queues post their own RECVs. */
	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	assert_false(f->io->srq);
	assert_int_equal(f->io->posted_recvs, 8);
}

/*
 * A host that stops reposting RECVs: none of its queue's WRs ever completes
 * (SENDs wait on RNR for ever, the WRITEs behind them with them). Its
 * 128 KiB reads take chunks only up to its cap, (232 - 33) / 3 = 66 (16
 * reads); the other 16 wait on its own list, not in the pool's line, so
 * another queue on the same pool gets chunks at once, every time. The stall
 * timer drops the stuck queue 30 s after it first saw it stuck, and all it
 * held comes back.
 */
static void test_stuck_queue_capped(void **state)
{
	const uint64_t s = 1000000000ull, t0 = 1000 * s;
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *r;
	unsigned int i, stuck_wrs;

	connect_all(f);
	q = f->io = io_queue(f, 1, 32, 32);
	f->io2 = io_queue(f, 2, 8, 8);
	pool_create(f, 232);
	assert_int_equal(f->pool.nr_queues, 3);
	assert_int_equal(f->pool.nr_connected, 3);
	assert_int_equal(nvt_rdma_queue_cap(q), 66);
	assert_string_equal(q->hostnqn, TEST_HOST);
	/* The main loop's tick has been looking all along: all idle. */
	rport_list(f);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, t0 - 10 * s), 0);

	for (i = 0; i < 32; i++)
		post_read(q, i, i * 256, 256, (uint16_t)i);
	assert_int_equal(q->chunks_held, 64);
	assert_int_equal(q->chunks_queued, 0);
	assert_int_equal(nr_sends, 32);			/* 16 x (WRITE + SEND), all stuck */
	assert_int_equal(f->pool.nr_free, 232 - 64);
	assert_int_equal(f->pool.nr_waiting, 0);	/* the pool's line is free for others */
	assert_int_equal(f->pool.nr_capped, 16);
	for (i = 0, r = q->capped_head; r; r = r->next, i++) {
		assert_int_equal(r->state, NVT_RDMA_REQ_NEED_BUFFER);
		assert_int_equal(r->nr_chunks, 0);
		assert_int_equal(r->req.cmd->common.cid, 16 + i);	/* in arrival order */
	}
	assert_int_equal(i, 16);
	assert_int_equal(nr_disconnects, 0);
	stuck_wrs = nr_sends;

	/* The other host's reads run at once and complete. */
	for (i = 0; i < 8; i++) {
		unsigned int base = nr_sends;

		post_read(f->io2, i, 4096 + i * 256, 256, (uint16_t)(100 + i));
		assert_int_equal(nr_sends, base + 2);
		assert_int_equal(sends[base].opcode, IBV_WR_RDMA_WRITE);
		assert_int_equal(sends[base].length, 131072);
		assert_int_equal(sc_of(base + 1), 0);
		assert_int_equal(sent_cqe(base + 1)->cid, 100 + i);
		complete_wr(f->io2, base, IBV_WC_SUCCESS);
		complete_wr(f->io2, base + 1, IBV_WC_SUCCESS);
	}
	assert_all_free(f->io2);
	assert_int_equal(f->pool.nr_waits, 0);
	assert_int_equal(f->pool.nr_free, 232 - 64);

	/* The tick: first sight of the stall, then 30 s of nothing. */
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, t0), 0);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, t0 + 29 * s), 0);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, t0 + 30 * s - 1), 0);
	assert_int_equal(nr_disconnects, 0);
	/* Dropped: QP to error, so what it posted flushes; teardown reaps it all. */
	for (i = 0; i < stuck_wrs; i++)
		if (sends[i].send_flags & IBV_SEND_SIGNALED)
			cq_push(i, IBV_WC_WR_FLUSH_ERR);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, t0 + 30 * s), 1);
	assert_int_equal(nr_disconnects, 1);
	assert_int_equal(nr_qp_errors, 1);
	assert_true(q->teardown_forwarded);
	assert_int_equal(q->state, NVT_RDMA_Q_DEAD);
	assert_all_free(q);
	assert_null(q->capped_head);
	assert_int_equal(q->chunks_held, 0);
	assert_int_equal(f->pool.nr_queues, 2);
	assert_int_equal(f->io2->state, NVT_RDMA_Q_LIVE);
	assert_pool_idle(f);
	/* Asked once only. */
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, t0 + 60 * s), 0);
	queue_gone(f, q);
	assert_int_equal(f->rport.nr_queues, 2);
	f->rport.queues = NULL;
}

/*
 * The stall timer's rule: an idle queue never stalls, however long; one
 * that completes something is seen afresh; one stuck is dropped 30 s after
 * the first look that saw it stuck, not before.
 */
static void test_send_stall_timer(void **state)
{
	const uint64_t s = 1000000000ull;
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;

	q = first_io_queue(f);
	rport_list(f);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 100 * s), 0);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 1000 * s), 0);

	/* Two reads whose WRITE and SEND sit in the send queue: the SENDs are signaled. */
	post_read(q, 1, 0, 8, 1);
	post_read(q, 2, 0, 8, 2);
	assert_int_equal(nr_sends, 4);
	assert_int_equal(atomic_load(&q->sends_posted) - atomic_load(&q->sends_done), 2);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 2000 * s), 0);
	assert_true(q->stall_seen);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 2029 * s), 0);
	/* The first SEND completes at last: progress; the second is looked at afresh. */
	complete_wr(q, 1, IBV_WC_SUCCESS);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 2030 * s), 0);
	assert_false(q->stall_seen);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 2031 * s), 0);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 2060 * s), 0);
	assert_int_equal(q->state, NVT_RDMA_Q_LIVE);
	cq_push(3, IBV_WC_WR_FLUSH_ERR);
	assert_int_equal(nvt_rdma_port_check_stalls(&f->rport, 2061 * s), 1);
	assert_int_equal(q->state, NVT_RDMA_Q_DEAD);
	assert_all_free(q);
	assert_pool_idle(f);
	/* The admin queue, idle all along, is untouched. */
	assert_int_equal(f->admin->state, NVT_RDMA_Q_LIVE);
	assert_false(f->admin->teardown_forwarded);
	queue_gone(f, q);
	f->rport.queues = NULL;
}

/*
 * Below the guarantee (80 chunks, three queues: caps of 33 add up to more
 * than the pool), a queue at its cap still waits on its own: its oldest
 * capped command joins the pool's line as soon as one of its own commands
 * gives chunks back, and another queue at its cap does the same,
 * independently. Nobody ever waits in the pool's line here.
 */
static void test_cap_waits_own_line(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q1, *q2;
	struct nvt_rdma_req *r;
	unsigned int i, wr_read;

	connect_all(f);
	q1 = f->io = io_queue(f, 1, 16, 16);
	q2 = f->io2 = io_queue(f, 2, 8, 8);
	assert_int_equal(nvt_rdma_queue_cap(q1), MAX_CMD);	/* (80 - 33) / 3 < 33 */

	for (i = 0; i < 9; i++)
		post_read(q1, i, i * 256, 256, (uint16_t)i);
	assert_int_equal(nr_sends, 16);
	assert_int_equal(q1->chunks_held, 32);
	r = q1->capped_head;
	assert_non_null(r);
	assert_ptr_equal(r, q1->capped_tail);
	assert_int_equal(r->req.cmd->common.cid, 8);
	assert_int_equal(f->pool.nr_waiting, 0);

	/* The other queue: a 1 MiB write fits (its READ goes out), a read after it would pass its cap. */
	wr_read = post_write(q2, 1, 1, 4096, 2048, 50);
	assert_int_equal(nr_sends, 17);
	assert_int_equal(sends[wr_read].opcode, IBV_WR_RDMA_READ);
	assert_int_equal(q2->chunks_held, 32);
	post_read(q2, 2, 0, 256, 51);
	assert_int_equal(nr_sends, 17);
	assert_non_null(q2->capped_head);
	assert_int_equal(f->pool.nr_waiting, 0);
	assert_int_equal(f->pool.nr_free, 80 - 64);
	assert_int_equal(f->pool.nr_capped, 2);

	/* q1's first read is answered: its chunks back with the SEND, its capped read runs. */
	complete_wr(q1, 1, IBV_WC_SUCCESS);
	assert_null(q1->capped_head);
	assert_int_equal(nr_sends, 19);
	assert_int_equal(sends[17].opcode, IBV_WR_RDMA_WRITE);
	assert_int_equal(sent_cqe(18)->cid, 8);
	assert_int_equal(q1->chunks_held, 32);
	assert_non_null(q2->capped_head);
	/* q2's write data arrives: it answers, gives back 32 chunks, and its read runs. */
	complete_wr(q2, wr_read, IBV_WC_SUCCESS);
	assert_int_equal(nr_sends, 22);
	assert_int_equal(sent_cqe(19)->cid, 50);
	assert_int_equal(sc_of(19), 0);
	assert_int_equal(sends[20].opcode, IBV_WR_RDMA_WRITE);
	assert_int_equal(sent_cqe(21)->cid, 51);
	assert_null(q2->capped_head);
	complete_all();
	assert_all_free(q1);
	assert_all_free(q2);
	assert_int_equal(q1->chunks_held + q2->chunks_held, 0);
	assert_int_equal(f->pool.nr_waits, 0);
	assert_pool_idle(f);
}

/* The Connect capsule of I/O queue @qid, its data fetched by RDMA READ, in RECV buffer @slot. */
static void post_io_connect(struct fixture *f, struct nvt_rdma_queue *q, unsigned int slot,
			    uint16_t qid, uint16_t cid)
{
	struct nvt_sqe sqe;

	(void)f;
	connect_sqe(&sqe, qid);
	sqe.connect.cid = cid;
	recv_capsule(q, slot, &sqe, NULL, 0);
}

/*
 * Before its Fabrics Connect a queue can run nothing but Connect, whose
 * data is one chunk: that is all it may hold. A host that pipelines
 * Connects (and might never complete their SENDs) gets one at a time;
 * once connected, the queue has its full share.
 */
static void test_unconnected_queue_one_chunk(void **state)
{
	struct nvmf_connect_data d = { .cntlid = 0 };
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	unsigned int i;

	connect_all(f);
	d.cntlid = htole16(f->cntlid);
	strcpy(d.subsysnqn, TEST_NQN);
	strcpy(d.hostnqn, TEST_HOST);
	q = f->io = queue_create(f, 1, 8, 8);
	assert_false(q->pool_connected);
	assert_int_equal(f->pool.nr_connected, 1);
	assert_int_equal(nvt_rdma_queue_cap(q), NVT_RDMA_CONNECT_CHUNKS);
	for (i = 0; i < 4; i++)
		post_io_connect(f, q, i, 1, (uint16_t)(20 + i));
	assert_int_equal(nr_sends, 1);
	assert_int_equal(sends[0].opcode, IBV_WR_RDMA_READ);
	assert_int_equal(q->chunks_held, 1);
	assert_int_equal(f->pool.nr_waiting, 0);
	assert_int_equal(f->pool.nr_capped, 3);
	/* The first Connect's data: it succeeds, the queue is connected, the next one runs. */
	complete_read(q, 0, &d, sizeof(d));
	assert_int_equal(sc_of(1), 0);
	assert_int_equal(sent_cqe(1)->cid, 20);
	assert_true(q->pool_connected);
	assert_int_equal(f->pool.nr_connected, 2);
	assert_true(nvt_rdma_queue_cap(q) > NVT_RDMA_CONNECT_CHUNKS);
	assert_null(q->capped_head);
	/* The other three Connects all got their chunk at once; each fails: the queue is connected. */
	assert_int_equal(nr_sends, 5);
	for (i = 2; i < 5; i++) {
		assert_int_equal(sends[i].opcode, IBV_WR_RDMA_READ);
		HCA_GIVES((void *)(uintptr_t)sends[i].sge[0].addr, sizeof(d));
		memcpy((void *)(uintptr_t)sends[i].sge[0].addr, &d, sizeof(d));
	}
	complete_all();
	for (i = 5; i < 8; i++)
		assert_int_not_equal(sc_of(i), 0);
	assert_all_free(q);
	assert_pool_idle(f);
}

/*
 * More than NVT_RDMA_MAX_PENDING queues of one listener accepted and not
 * Fabrics-connected: the next CONNECT_REQUEST is rejected with NO_RSC
 * before anything is allocated for it. One of them connecting makes room;
 * one going away does too.
 */
static void test_pending_connect_cap(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *pend[NVT_RDMA_MAX_PENDING];
	struct nvt_rdma_cm_req creq = {
		.qid = htole16(1), .hrqsize = htole16(32), .hsqsize = htole16(31),
		.cntlid = htole16(1),
	};
	struct fake_conn *c = calloc(1, sizeof(*c));
	struct rdma_cm_event ev;
	unsigned int i;

	c->id.verbs = &fake_ctx;
	c->next = f->conns;
	f->conns = c;
	memset(&ev, 0, sizeof(ev));
	ev.event = RDMA_CM_EVENT_CONNECT_REQUEST;
	ev.id = &c->id;
	ev.param.conn.private_data = &creq;
	ev.param.conn.private_data_len = sizeof(creq);

	/* Under the cap: it gets as far as the device (which the fake fails). */
	assert_true(nvt_rdma_handle_connect(&f->rport, &ev));
	assert_int_equal(nr_query_device, 1);
	assert_int_equal(last_reject_sts, NVT_RDMA_CM_NO_RSC);

	/* NVT_RDMA_MAX_PENDING queues accepted, none Fabrics-connected. */
	for (i = 0; i < NVT_RDMA_MAX_PENDING; i++) {
		pend[i] = calloc(1, sizeof(*pend[i]));
		pend[i]->rport = &f->rport;
		atomic_init(&pend[i]->connected, false);
		pend[i]->pending = true;
		pend[i]->next = f->rport.queues;
		f->rport.queues = pend[i];
		f->rport.nr_queues++;
		f->rport.nr_pending++;
	}
	nr_query_device = nr_rejects = 0;
	assert_true(nvt_rdma_handle_connect(&f->rport, &ev));
	assert_int_equal(nr_rejects, 1);
	assert_int_equal(last_reject_sts, NVT_RDMA_CM_NO_RSC);
	assert_int_equal(nr_query_device, 0);		/* nothing of it was looked at or made */
	/* A malformed one still gets its own status. */
	creq.hsqsize = 0;
	assert_true(nvt_rdma_handle_connect(&f->rport, &ev));
	assert_int_equal(last_reject_sts, NVT_RDMA_CM_INVALID_HSQSIZE);
	creq.hsqsize = htole16(31);

	/* One of them sent its Fabrics Connect: room for one more. */
	atomic_store(&pend[7]->connected, true);
	assert_true(nvt_rdma_handle_connect(&f->rport, &ev));
	assert_int_equal(nr_query_device, 1);
	assert_int_equal(f->rport.nr_pending, NVT_RDMA_MAX_PENDING - 1);
	assert_false(pend[7]->pending);
	/* Full again (as if it had been accepted), until one goes away. */
	f->rport.nr_pending++;
	pend[7]->pending = true;
	atomic_store(&pend[7]->connected, false);
	assert_true(nvt_rdma_handle_connect(&f->rport, &ev));
	assert_int_equal(nr_query_device, 1);
	nvt_rdma_queue_unlink(pend[3]);
	assert_int_equal(f->rport.nr_pending, NVT_RDMA_MAX_PENDING - 1);
	assert_true(nvt_rdma_handle_connect(&f->rport, &ev));
	assert_int_equal(nr_query_device, 2);
	/* The tick brings the count up to date as well. */
	atomic_store(&pend[9]->connected, true);
	nvt_rdma_port_count_pending(&f->rport);
	assert_int_equal(f->rport.nr_pending, NVT_RDMA_MAX_PENDING - 2);

	for (i = 0; i < NVT_RDMA_MAX_PENDING; i++)
		free(pend[i]);
	f->rport.queues = NULL;
}

/* A data pool of a device, as nvt_rdma_dev_find_get() makes one (no verbs objects in the fake). */
static struct nvt_rdma_dev *dev_fake(struct ibv_context *verbs, struct nvt_poll_group *pg,
				     unsigned int refs)
{
	struct nvt_rdma_dev *d = calloc(1, sizeof(*d));

	assert_int_equal(nvt_rdma_pool_init(&d->pool, aligned_alloc(4096, 4 * NVT_RDMA_CHUNK), 4), 0);
	d->verbs = verbs;
	d->pg = pg;
	d->flusher.fn = nvt_rdma_dev_flush;
	d->refs = refs;
	d->next = nvt_rdma_devs;
	nvt_rdma_devs = d;
	return d;
}

static bool dev_listed(const struct nvt_rdma_dev *d)
{
	for (const struct nvt_rdma_dev *p = nvt_rdma_devs; p; p = p->next)
		if (p == d)
			return true;
	return false;
}

/*
 * DEVICE_REMOVAL: the device's pools no queue uses go at once, the one a
 * queue still uses goes with that queue, before its cm_id (librdmacm may
 * close the removed device's context with it), and none is handed to a new
 * queue meanwhile. Another device's pool stays.
 */
static void test_device_removal_frees_pools(void **state)
{
	static struct ibv_context gone_ctx, other_ctx;
	struct fixture *f = *state;
	struct nvt_rdma_dev *used, *other, *got = NULL;
	struct nvt_rdma_queue *q;
	struct fake_conn *c;

	connect_all(f);
	used = dev_fake(&gone_ctx, f->tgt->pg, 1);
	dev_fake(&gone_ctx, (struct nvt_poll_group *)f, 0);	/* another poll group's, idle */
	other = dev_fake(&other_ctx, f->tgt->pg, 0);
	q = f->io = io_queue(f, 1, 8, 8);
	q->dev = used;
	c = container_of(q->cm_id, struct fake_conn, id);
	c->id.verbs = &gone_ctx;

	nvt_rdma_devs_removed(&gone_ctx);
	assert_true(used->removed);
	assert_true(dev_listed(used));
	assert_true(dev_listed(other));
	assert_ptr_equal(nvt_rdma_devs, other);		/* the idle one of that device is gone */
	assert_ptr_equal(other->next, used);
	/* A new queue on the device would not get the removed pool (the fake PD fails). */
	assert_true(nvt_rdma_dev_find_get(&gone_ctx, f->tgt->pg, f->tgt, &got) < 0);
	assert_null(got);
	assert_int_equal(used->refs, 1);

	/* Its queue goes (DEVICE_REMOVAL brings the teardown): the pool before the cm_id. */
	nvt_rdma_queue_teardown(q);
	queue_gone(f, q);
	assert_int_equal(removed_devs_at_destroy, 0);
	assert_ptr_equal(nvt_rdma_devs, other);
	assert_null(other->next);
	nvt_rdma_devs_destroy();
	assert_null(nvt_rdma_devs);
}

/* A fused Compare (first) or Write (second) of 8 blocks at LBA 0, keyed 4 KiB, in RECV buffer @slot. */
static void post_fused(struct nvt_rdma_queue *q, unsigned int slot, bool first, uint16_t cid)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, first ? nvme_cmd_compare : nvme_cmd_write, 1, 0, 8);
	sqe.common.flags |= first ? NVT_FUSE_FIRST : NVT_FUSE_SECOND;
	sqe.common.cid = cid;
	keyed(&sqe, first ? 0x7000 : 0x8000, 4096, 0x500 + cid);
	recv_capsule(q, slot, &sqe, NULL, 0);
}

/*
 * A fused Compare whose data is in (executed, waiting for its Write) holds
 * a slot and a chunk. Its Write dies with the queue: its READ flushes,
 * it fails its data (READ error), or it was still waiting for chunks.
 * Each time the Write leaves through the completion funnel, so the core
 * fails the Compare with it and both slots and their chunks come back,
 * instead of the Compare waiting for ever past the queue's memory.
 */
static void fused_write_dies(struct fixture *f, int how)
{
	uint8_t data[4096];
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *cmp;

	q = first_io_queue(f);
	if (how == 2)
		pool_create(f, 1);
	memset(data, 0x5a, sizeof(data));
	post_fused(q, 1, true, 1);
	assert_int_equal(nr_sends, 1);
	cmp = slot_of(sends[0].wr_id);
	complete_read(q, 0, data, sizeof(data));
	assert_int_equal(nr_sends, 1);			/* no response yet: it waits for its Write */
	assert_int_equal(cmp->state, NVT_RDMA_REQ_EXECUTING);
	assert_int_equal(cmp->nr_chunks, 1);
	post_fused(q, 2, false, 2);
	switch (how) {
	case 0:		/* the host goes away during the Write's READ */
		assert_int_equal(nr_sends, 2);
		cq_push(1, IBV_WC_WR_FLUSH_ERR);
		nvt_rdma_queue_teardown(q);
		break;
	case 1:		/* the Write's data cannot be fetched (bad rkey) */
		assert_int_equal(nr_sends, 2);
		complete_wr(q, 1, IBV_WC_REM_ACCESS_ERR);
		assert_int_equal(q->state, NVT_RDMA_Q_DISCONNECTING);
		assert_int_equal(nr_sends, 2);		/* nothing is answered on a dying queue */
		assert_all_free(q);
		assert_pool_idle(f);
		nvt_rdma_queue_teardown(q);
		break;
	case 2:		/* the Write waits for a chunk when the host goes away */
		assert_int_equal(nr_sends, 1);
		assert_int_equal(f->pool.nr_waiting, 1);
		nvt_rdma_queue_teardown(q);
		break;
	}
	assert_int_equal(cmp->state, NVT_RDMA_REQ_FREE);
	assert_all_free(q);
	assert_pool_idle(f);
	queue_gone(f, q);
}

/*
 * A zero-copy write holds its range while its READ lands: a fused Compare
 * and Write on the same blocks, its data all in, waits for it (and so
 * compares against the new data, which matches), then writes its own. Were
 * the range free during the READ, the Compare would see the old zeros and
 * fail. The fused Write itself is staged in the pool (never zero copy).
 * The pair comes on another queue: one send queue completes in order.
 */
static void test_zc_write_holds_range(void **state)
{
	struct fixture *f = *state;
	static uint8_t a[4096], b[4096];
	struct nvt_rdma_queue *q, *q2;
	unsigned int i;

	q = zc_io_queue(f);
	q2 = f->io2 = io_queue(f, 2, 8, 8);
	pattern(a, sizeof(a), 1);
	pattern(b, sizeof(b), 2);
	post_write_at(q, 1, 1, 0, 8, 4096, 0x2000, 5, 9);
	assert_int_equal(nr_sends, 1);
	assert_true(slot_of(sends[0].wr_id)->zc_posted);
	post_fused(q2, 1, true, 1);
	assert_int_equal(nr_sends, 2);
	complete_read(q2, 1, a, sizeof(a));
	post_fused(q2, 2, false, 2);
	assert_int_equal(nr_sends, 3);
	assert_int_equal(sends[2].sge[0].lkey, f->pool.lkey);
	assert_false(slot_of(sends[2].wr_id)->zc);
	complete_read(q2, 2, b, sizeof(b));
	assert_int_equal(nr_sends, 3);		/* the pair waits for the range */
	nvt_poll_group_poll(f->tgt->pg, 0);	/* whatever the range lock sent itself meanwhile */
	iter_end();
	assert_int_equal(nr_sends, 3);
	complete_read(q, 0, a, sizeof(a));
	/* The range lock's drain is a message to the channel's thread: its loop runs it. */
	nvt_poll_group_poll(f->tgt->pg, 0);
	iter_end();
	/* The zero-copy write's response, then the pair's, both matched and written. */
	assert_int_equal(nr_sends, 6);
	for (i = 3; i < 6; i++)
		assert_int_equal(le16toh(sent_cqe(i)->status), 0);
	assert_int_equal(sent_cqe(3)->cid, 9);
	assert_memory_equal(nvt_ram_block(test_ns(f, 1), 0, NULL), b, sizeof(b));
	complete_wr(q, 3, IBV_WC_SUCCESS);
	complete_wr(q2, 4, IBV_WC_SUCCESS);
	complete_wr(q2, 5, IBV_WC_SUCCESS);
	assert_all_free(q);
	assert_all_free(q2);
	assert_pool_idle(f);
}

/*
 * A read overlapping a zero-copy write in flight on the same thread waits
 * until its READ has landed (the blocks are the HCA's meanwhile: under ASan
 * poisoned), then returns the new data; a read of other blocks does not
 * wait. The fuzzer found the read copying the blocks while the READ was
 * still writing them: a torn block.
 */
static void test_zc_write_orders_overlapping_read(void **state)
{
	struct fixture *f = *state;
	static uint8_t a[4096], want[4096];
	struct nvt_rdma_queue *q;

	q = zc_io_queue(f);
	pattern(a, sizeof(a), 4);
	post_write_at(q, 1, 1, 0, 8, 4096, 0x2000, 5, 9);
	assert_int_equal(nr_sends, 1);
	assert_true(slot_of(sends[0].wr_id)->zc_posted);
	post_read(q, 2, 16, 8, 11);		/* other blocks: at once */
	assert_int_equal(nr_sends, 3);
	assert_int_equal(sends[1].opcode, IBV_WR_RDMA_WRITE);
	assert_int_equal(sent_cqe(2)->cid, 11);
	post_read(q, 3, 4, 8, 10);		/* blocks 4..11: behind the write */
	nvt_poll_group_poll(f->tgt->pg, 0);
	iter_end();
	assert_int_equal(nr_sends, 3);
	complete_read(q, 0, a, sizeof(a));
	nvt_poll_group_poll(f->tgt->pg, 0);	/* the parked read's wake-up is a message */
	iter_end();
	assert_int_equal(nr_sends, 6);
	assert_int_equal(sent_cqe(3)->cid, 9);
	assert_int_equal(le16toh(sent_cqe(3)->status), 0);
	assert_int_equal(sends[4].opcode, IBV_WR_RDMA_WRITE);
	assert_int_equal(sends[4].length, 4096);
	memcpy(want, a + 2048, 2048);		/* blocks 4..7 new, 8..11 never written */
	memset(want + 2048, 0, 2048);
	assert_memory_equal(sends[4].data, want, sizeof(want));
	assert_int_equal(sent_cqe(5)->cid, 10);
	assert_int_equal(le16toh(sent_cqe(5)->status), 0);
	complete_all();
	assert_all_free(q);
	assert_pool_idle(f);
}

/* Are all of [@p, @p + @len) resident? (@p page aligned.) */
static bool resident(const void *p, size_t len)
{
	unsigned char vec[64];

	assert_true(len / 4096 <= sizeof(vec));
	assert_int_equal(mincore((void *)p, len, vec), 0);
	for (size_t i = 0; i < len / 4096; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

/* Write Zeroes with DEAC of blocks [@slba, +@nlb) of @nsid, cid @cid, in RECV buffer @slot of @q: succeeds. */
static void write_zeroes_deac(struct nvt_rdma_queue *q, unsigned int slot, uint32_t nsid,
			      uint64_t slba, uint32_t nlb, uint16_t cid)
{
	struct nvt_sqe sqe;
	unsigned int n = nr_sends;

	nvt_host_sqe_rw(&sqe, nvme_cmd_write_zeroes, nsid, slba, nlb);
	sqe.rw.control = htole16(1u << 9);
	keyed(&sqe, 0, 0, 0);
	sqe.common.cid = cid;
	recv_capsule(q, slot, &sqe, NULL, 0);
	assert_int_equal(nr_sends, n + 1);
	assert_int_equal(sent_cqe(n)->cid, cid);
	assert_int_equal(le16toh(sent_cqe(n)->status), 0);
	complete_wr(q, n, IBV_WC_SUCCESS);
}

/*
 * Deallocation gives whole pages of a ram namespace back to the kernel,
 * but not once its memory is registered for zero copy: the registration
 * pins the pages it found, the mapping would get fresh ones, and later
 * zero-copy writes would land where no read looks.
 */
static void test_zc_registered_pages_stay(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns1 = test_ns(f, 1), *ns3 = test_ns(f, 3);
	static uint8_t a[65536];
	/* 64 KiB at 512 KiB: whole pages. */
	uint64_t lba3 = (512 * 1024) >> ns3->lba_shift;
	uint8_t *blk1 = nvt_ram_block(ns1, 1024, NULL), *blk3 = nvt_ram_block(ns3, lba3, NULL);
	struct nvt_rdma_queue *q;

	q = zc_io_queue(f);
	assert_int_equal(ns1->lba_shift, 9);
	/* Not registered: the pages go. */
	memset(blk3, 0x5a, sizeof(a));
	assert_true(resident(blk3, sizeof(a)));
	write_zeroes_deac(q, 1, 3, lba3, sizeof(a) >> ns3->lba_shift, 7);
	assert_false(resident(blk3, sizeof(a)));
	/* Registered by a zero-copy write: zeroed in place. */
	pattern(a, sizeof(a), 6);
	post_write_at(q, 2, 1, 1024, 128, sizeof(a), 0x2000, 5, 8);
	assert_int_equal(nr_zc_regs, 1);
	complete_read(q, nr_sends - 1, a, sizeof(a));
	complete_all();
	assert_memory_equal(blk1, a, sizeof(a));
	write_zeroes_deac(q, 3, 1, 1024, 128, 9);
	assert_true(resident(blk1, sizeof(a)));
	memset(a, 0, sizeof(a));
	assert_memory_equal(blk1, a, sizeof(a));
	assert_all_free(q);
}

static void test_fused_write_flushed(void **state)
{
	fused_write_dies(*state, 0);
}

static void test_fused_write_read_error(void **state)
{
	fused_write_dies(*state, 1);
}

static void test_fused_write_waiting(void **state)
{
	fused_write_dies(*state, 2);
}

/*
 * A fused Compare and Write of 1 MiB (256 blocks of 4 KiB, ACWU) on a queue
 * whose cap is 33 chunks: the Compare, executed, holds 32 until its Write
 * has run, so the Write must not wait at the cap for them. It goes to the
 * pool's line instead; both complete.
 */
static void test_fused_pair_past_cap(void **state)
{
	static uint8_t data[1u << 20];
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_sqe sqe;
	unsigned int i;

	q = first_io_queue(f);
	assert_int_equal(nvt_rdma_queue_cap(q), MAX_CMD);
	memset(data, 0, sizeof(data));
	nvt_host_sqe_rw(&sqe, nvme_cmd_compare, 3, 0, 256);
	sqe.common.flags |= NVT_FUSE_FIRST;
	sqe.common.cid = 1;
	keyed(&sqe, 0x1000000, sizeof(data), 0x61);
	recv_capsule(q, 1, &sqe, NULL, 0);
	assert_int_equal(nr_sends, 1);
	complete_read(q, 0, data, sizeof(data));
	assert_int_equal(nr_sends, 1);
	assert_int_equal(q->chunks_held, 32);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, 0, 256);
	sqe.common.flags |= NVT_FUSE_SECOND;
	sqe.common.cid = 2;
	keyed(&sqe, 0x2000000, sizeof(data), 0x62);
	recv_capsule(q, 2, &sqe, NULL, 0);
	assert_null(q->capped_head);
	assert_int_equal(nr_sends, 2);
	assert_int_equal(sends[1].opcode, IBV_WR_RDMA_READ);
	assert_int_equal(q->chunks_held, 64);		/* past its cap by the Write */
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	complete_read(q, 1, data, sizeof(data));
	assert_int_equal(nr_sends, 4);
	assert_int_equal(sent_cqe(2)->cid, 1);
	assert_int_equal(sc_of(2), 0);
	assert_int_equal(sent_cqe(3)->cid, 2);
	assert_int_equal(sc_of(3), 0);
	complete_all();
	assert_all_free(q);
	assert_pool_idle(f);
}

/*
 * Flushes come back in any order across the receive and send queues (in
 * order within the send queue): RECVs between a read's WRITE and SEND and
 * a write's READ. Every slot and chunk returns, no flushed capsule buffer
 * is reposted, no capsule is looked at.
 */
static void test_flush_any_order(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	unsigned int recvs;

	q = first_io_queue(f);
	post_read(q, 1, 0, 8, 1);
	post_write(q, 2, 1, 8, 8, 2);
	assert_int_equal(nr_sends, 3);
	recvs = nr_recvs;
	/* The host is gone: the QP in error flushes everything it holds. */
	f->io->state = NVT_RDMA_Q_DISCONNECTING;
	f->io->disconnect_sent = true;
	cq_push_recv(q, 3);
	cq_push(0, IBV_WC_WR_FLUSH_ERR);
	cq_push_recv(q, 4);
	cq_push_recv(q, 0);
	cq_push(1, IBV_WC_WR_FLUSH_ERR);
	cq_push_recv(q, 5);
	cq_push(2, IBV_WC_WR_FLUSH_ERR);
	cq_push_recv(q, 6);
	nvt_rdma_poll_cq(q);
	assert_all_free(q);
	assert_pool_idle(f);
	assert_int_equal(nr_recvs, recvs);
	assert_int_equal(nr_sends, 3);
	nvt_rdma_queue_teardown(q);
	assert_all_free(q);
	queue_gone(f, q);
}

/*
 * Capsules parked before ESTABLISHED, then the host goes away instead:
 * teardown forgets them (their buffers go with the QP, nothing parsed),
 * and an ESTABLISHED that comes late runs none of them.
 */
static void test_teardown_before_established(void **state)
{
	struct fixture *f = *state;
	struct nvt_rdma_queue *q;
	struct nvt_sqe sqe;

	q = first_io_queue(f);
	q->state = NVT_RDMA_Q_CONNECTING;
	read_4k_sqe(&sqe);
	recv_capsule(q, 1, &sqe, NULL, 0);
	recv_capsule(q, 2, &sqe, NULL, 0);
	assert_int_equal(q->nr_parked, 2);
	nvt_rdma_queue_teardown(q);
	assert_int_equal(q->nr_parked, 0);
	assert_null(q->parked_head);
	nvt_rdma_queue_established(q);
	assert_int_equal(q->state, NVT_RDMA_Q_DEAD);
	assert_int_equal(nr_sends, 0);
	assert_all_free(q);
	assert_pool_idle(f);
	queue_gone(f, q);
}

/* ---- teardown while a backend holds commands ---- */

static struct nvt_rdma_req *slot_of_bio(struct nvt_bio *bio)
{
	return container_of(container_of(bio, struct nvt_req, bio), struct nvt_rdma_req, req);
}

/* The slot of @q whose command @bio is; NULL for the namespace layer's own (an emulated chunk). */
static struct nvt_rdma_req *slot_in(const struct nvt_rdma_queue *q, struct nvt_bio *bio)
{
	const char *p = (const char *)bio, *reqs = (const char *)q->reqs;

	if (p < reqs || p >= reqs + q->nr_reqs * sizeof(*q->reqs))
		return NULL;
	return slot_of_bio(bio);
}

/* The held bio of @r's command. */
static unsigned int slow_find(const struct nvt_rdma_req *r)
{
	for (unsigned int i = 0; i < slow.nr_held; i++)
		if (slow.held[i] == &r->req.bio)
			return i;
	fail_msg("cid %u is not in the backend", r->req.cmd->common.cid);
	return 0;
}

/* The CM reports @event on @q's connection; the main loop reads the listener's channel. */
static void cm_event(struct fixture *f, struct nvt_rdma_queue *q, enum rdma_cm_event_type event)
{
	memset(&cm_events[0], 0, sizeof(cm_events[0]));
	cm_events[0].event = event;
	cm_events[0].id = q->cm_id;
	assert_ptr_equal(q->cm_id->context, q);
	nr_cm_events = 1;
	cm_event_head = 0;
	nvt_rdma_cm_ready(&f->rport.cm_watch);
	assert_int_equal(cm_event_head, 1);
	assert_true(q->teardown_forwarded);
}

/* A keyed write of @nlb blocks whose data has come: it runs, and the backend holds it. */
static struct nvt_rdma_req *held_write(struct nvt_rdma_queue *q, unsigned int slot, uint64_t slba,
				       uint32_t nlb, uint16_t cid, unsigned int seed)
{
	static uint8_t data[131072];
	unsigned int i = post_write(q, slot, SLOW_NSID, slba, nlb, cid), held = slow.nr_held;
	struct nvt_rdma_req *r;

	assert_int_equal(nr_sends, i + 1);
	r = slot_of(sends[i].wr_id);
	pattern(data, nlb * 512, seed);
	complete_read(q, i, data, nlb * 512);
	assert_int_equal(nr_sends, i + 1);		/* no response: the backend has it */
	assert_int_equal(r->state, NVT_RDMA_REQ_EXECUTING);
	assert_int_equal(slow.nr_held, held + 1);
	assert_ptr_equal(slot_of_bio(slow.held[held]), r);
	return r;
}

/* A read of @nlb blocks: it runs at once, and the backend holds it with the chunks it will fill. */
static struct nvt_rdma_req *held_read(struct nvt_rdma_queue *q, unsigned int slot, uint64_t slba,
				      uint32_t nlb, uint16_t cid)
{
	unsigned int nsent = nr_sends, held = slow.nr_held;
	struct nvt_rdma_req *r;

	post_read(q, slot, slba, nlb, cid);
	assert_int_equal(nr_sends, nsent);
	assert_int_equal(slow.nr_held, held + 1);
	r = slot_of_bio(slow.held[held]);
	assert_int_equal(r->req.cmd->common.cid, cid);
	assert_int_equal(r->state, NVT_RDMA_REQ_EXECUTING);
	assert_int_equal(r->nr_chunks, (nlb * 512 + NVT_RDMA_CHUNK - 1) / NVT_RDMA_CHUNK);
	return r;
}

struct held_work {
	unsigned int flush[3];		/* signaled WRs in flight: they flush with the QP */
	unsigned int nr_flush;
};

#define HELD_CMDS	8	/* hold_work()'s slots the backend has (or will: fused Write) */
#define HELD_ACTIVE	9	/* its commands unanswered: all but the read being answered */
#define HELD_CHUNKS	10	/* the backend's commands hold 1 + 2 + 0 + 1 + 4 + 0 + 1 + 1 */

/*
 * Work on @q that the backend holds, in every shape: keyed writes of one
 * chunk and two, an in-capsule write (its data in the capsule buffer),
 * reads of one chunk and four, a Flush, a fused Compare (in the backend)
 * and Write (waiting for it); besides, a write whose READ is in flight and
 * a read whose WRITE and SEND are.
 */
static void hold_work(struct nvt_rdma_queue *q, struct held_work *w)
{
	static uint8_t data[4096], zero[4096];
	struct nvt_rdma_req *rd;
	struct nvt_sqe sqe;
	unsigned int i;

	memset(w, 0, sizeof(*w));
	held_write(q, 1, 0, 8, 1, 1);
	held_write(q, 2, 64, 128, 2, 2);
	pattern(data, sizeof(data), 3);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, SLOW_NSID, 300, 8);
	sqe.common.cid = 3;
	sqe.common.dptr.unkeyed.length = htole32(sizeof(data));
	sqe.common.dptr.keyed.type = 0x01;
	recv_capsule(q, 3, &sqe, data, sizeof(data));
	assert_int_equal(slow.nr_held, 3);
	assert_int_equal(slot_of_bio(slow.held[2])->nr_chunks, 0);
	held_read(q, 4, 0, 8, 4);
	held_read(q, 5, 512, 256, 5);
	nvt_host_sqe_init(&sqe, nvme_cmd_flush, SLOW_NSID);
	sqe.common.cid = 6;
	keyed(&sqe, 0, 0, 0);
	recv_capsule(q, 6, &sqe, NULL, 0);
	assert_int_equal(slow.nr_held, 6);
	assert_int_equal(slow.held[5]->op, NVT_BIO_FLUSH);
	/* LBA 2000 was never written: the Compare of zeroes will match, and the Write run. */
	i = nr_sends;
	nvt_host_sqe_rw(&sqe, nvme_cmd_compare, SLOW_NSID, 2000, 8);
	sqe.common.flags |= NVT_FUSE_FIRST;
	sqe.common.cid = 7;
	keyed(&sqe, 0x7000, sizeof(zero), 0x507);
	recv_capsule(q, 7, &sqe, NULL, 0);
	complete_read(q, i, zero, sizeof(zero));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, SLOW_NSID, 2000, 8);
	sqe.common.flags |= NVT_FUSE_SECOND;
	sqe.common.cid = 8;
	keyed(&sqe, 0x8000, sizeof(data), 0x508);
	recv_capsule(q, 8, &sqe, NULL, 0);
	pattern(data, sizeof(data), 8);
	complete_read(q, i + 1, data, sizeof(data));
	assert_int_equal(nr_sends, i + 2);
	/*
	 * The range lock asks the channel to drain what overlaps (nothing),
	 * which grants it: messages to the poll group, then the Compare runs.
	 */
	assert_int_equal(slow.nr_held, 6);
	for (unsigned int k = 0; k < 4 && slow.nr_held == 6; k++)
		nvt_poll_group_poll(q->pg, 0);
	/* Emulated: the stored blocks are read into a bounce buffer, then compared. */
	assert_int_equal(slow.nr_held, 7);
	assert_int_equal(slow.held[6]->op, NVT_BIO_READ);
	assert_null(slot_in(q, slow.held[6]));

	/* Not the backend's: a write whose data is on its way, a read being answered. */
	w->flush[w->nr_flush++] = post_write(q, 9, SLOW_NSID, 4000, 8, 9);
	assert_int_equal(slot_of(sends[w->flush[0]].wr_id)->state, NVT_RDMA_REQ_XFER_H2C);
	rd = held_read(q, 10, 0, 8, 10);
	i = nr_sends;
	slow_complete(slow_find(rd), 0);
	assert_int_equal(nr_sends, i + 2);
	assert_int_equal(sends[i].opcode, IBV_WR_RDMA_WRITE);
	assert_int_equal(sent_cqe(i + 1)->cid, 10);
	assert_int_equal(rd->state, NVT_RDMA_REQ_COMPLETING);
	w->flush[w->nr_flush++] = i;
	w->flush[w->nr_flush++] = i + 1;
	assert_int_equal(slow.nr_held, 7);
	assert_int_equal(q->nr_active, HELD_ACTIVE);
}

/* The host is gone: what @w has in flight flushes, reaped by the teardown's drain. */
static void flush_work(const struct held_work *w)
{
	for (unsigned int i = 0; i < w->nr_flush; i++)
		cq_push(w->flush[i], IBV_WC_WR_FLUSH_ERR);
}

static bool chunk_is_free(const struct nvt_rdma_pool *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->nr_free; i++)
		if (p->free[i] == id)
			return true;
	return false;
}

/*
 * @q is torn down (QP destroyed) while the backend has @nr of its
 * commands: their slots are EXECUTING with their @nr_chunks chunks (none
 * of them in @pool's free stack), every other slot and chunk is back, and
 * the queue waits for them (its cm_id and memory stay).
 */
static void assert_held_by_backend(const struct nvt_rdma_queue *q, const struct nvt_rdma_pool *pool,
				   unsigned int nr, uint32_t nr_chunks)
{
	uint32_t chunks = 0;
	unsigned int n = 0;

	assert_int_equal(q->state, NVT_RDMA_Q_DEAD);
	assert_null(q->cm_id->qp);
	for (uint32_t i = 0; i < q->nr_reqs; i++) {
		const struct nvt_rdma_req *r = &q->reqs[i];

		if (r->state == NVT_RDMA_REQ_FREE)
			continue;
		assert_int_equal(r->state, NVT_RDMA_REQ_EXECUTING);
		n++;
		chunks += r->nr_chunks;
		for (uint32_t k = 0; k < r->nr_chunks; k++)
			assert_false(chunk_is_free(pool, r->chunks[k]));
	}
	assert_int_equal(n, nr);
	assert_int_equal(chunks, nr_chunks);
	assert_int_equal(q->nr_executing, nr);
	assert_int_equal(q->nr_active, nr);
	assert_int_equal(q->chunks_held, chunks);
	assert_int_equal(pool->nr_free, pool->nr_chunks - chunks);
	assert_int_equal(q->sq_used, 0);
	assert_int_equal(q->posted_sends, 0);
	assert_false(q->pool_counted);
}

static unsigned int nr_executing_slots(const struct nvt_rdma_queue *q)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < q->nr_reqs; i++)
		n += q->reqs[i].state == NVT_RDMA_REQ_EXECUTING;
	return n;
}

/*
 * The backend completes all it holds of dead queue @q, oldest first (a
 * compare-and-write's write comes in when its compare is done). Nothing
 * is posted or reposted; each slot and its chunks come back with its
 * command; the queue outlives every batch in which some remain (under
 * ASan a free before the last shows up as a use after free right here).
 * After the last one's batch it is gone: cm_id destroyed, memory freed.
 */
static void complete_held_on_dead(struct fixture *f, struct nvt_rdma_queue *q,
				  const struct nvt_rdma_pool *pool)
{
	unsigned int nsent = nr_sends, recvs = nr_recvs, ids = nr_destroyed_ids;

	while (slow.nr_held) {
		struct nvt_rdma_req *r = slot_in(q, slow.held[0]);
		uint32_t free_before = pool->nr_free, chunks = r ? r->nr_chunks : 0;
		bool compare_chunk = !r;

		slow_complete(0, 0);
		assert_int_equal(nr_sends, nsent);
		assert_int_equal(nr_recvs, recvs);
		if (compare_chunk) {
			/* The fused Compare matched its chunk: its Write is the backend's now. */
			r = slot_in(q, slow.held[slow.nr_held - 1]);
			assert_non_null(r);
			assert_int_equal(r->req.bio.op, NVT_BIO_WRITE);
			assert_int_equal(r->state, NVT_RDMA_REQ_EXECUTING);
		} else {
			assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
			assert_int_equal(r->nr_chunks, 0);
			assert_true(pool->nr_free >= free_before + chunks);
		}
		assert_int_equal(q->nr_executing, nr_executing_slots(q));
		if (!q->nr_executing)
			break;
		nvt_poll_group_poll(f->tgt->pg, 0);
		assert_int_equal(nr_destroyed_ids, ids);
		assert_int_equal(q->state, NVT_RDMA_Q_DEAD);
	}
	assert_int_equal(slow.nr_held, 0);
	assert_int_equal(slow.completed, slow.submitted);
	assert_all_free(q);
	assert_int_equal(q->chunks_held, 0);
	assert_int_equal(pool->nr_free, pool->nr_chunks);
	assert_int_equal(nr_destroyed_ids, ids);	/* after the batch, not inside it */
	queue_unpoison(q);
	nvt_poll_group_poll(f->tgt->pg, 0);
	assert_int_equal(nr_destroyed_ids, ids + 1);
	assert_int_equal(nr_sends, nsent);
}

/* What hold_work() wrote reads back on @q: the dead queue's commands did their work. */
static void expect_work_stored(struct nvt_rdma_queue *q)
{
	static const struct {
		uint64_t slba;
		uint32_t nlb;
		unsigned int seed;
	} w[] = { { 0, 8, 1 }, { 64, 128, 2 }, { 300, 8, 3 }, { 2000, 8, 8 } };
	static uint8_t want[65536];

	for (unsigned int i = 0; i < NVT_ARRAY_SIZE(w); i++) {
		unsigned int base;

		sends_reset();
		held_read(q, 1 + i, w[i].slba, w[i].nlb, (uint16_t)(100 + i));
		slow_complete(0, 0);
		base = nr_sends - 2;
		pattern(want, w[i].nlb * 512, w[i].seed);
		assert_int_equal(sends[base].opcode, IBV_WR_RDMA_WRITE);
		assert_int_equal(sends[base].length, w[i].nlb * 512);
		assert_memory_equal(sends[base].data, want, w[i].nlb * 512);
		assert_int_equal(sc_of(base + 1), 0);
		complete_wr(q, base, IBV_WC_SUCCESS);
		complete_wr(q, base + 1, IBV_WC_SUCCESS);
	}
	assert_all_free(q);
}

/*
 * The host disconnects an I/O queue while the backend holds its commands:
 * the queue is torn down at once (QP in error and destroyed, the core lets
 * go of it), keeps its memory and the chunks the backend uses until every
 * command has completed, sends nothing on the dead QP, and then goes. The
 * controller lives on: what the commands wrote reads back on a new queue.
 */
static void test_disconnect_backend_holds(void **state)
{
	struct fixture *f = *state;
	struct held_work w;
	struct nvt_rdma_queue *q;
	unsigned int ids;

	connect_all(f);
	q = f->io = io_queue(f, 1, 16, 16);
	hold_work(q, &w);
	ids = nr_destroyed_ids;
	flush_work(&w);
	cm_event(f, q, RDMA_CM_EVENT_DISCONNECTED);
	assert_int_equal(nr_qp_errors, 1);
	assert_held_by_backend(q, &f->pool, HELD_CMDS, HELD_CHUNKS);
	/* The batch ends: a queue a backend still uses stays. */
	nvt_poll_group_poll(f->tgt->pg, 0);
	assert_int_equal(nr_destroyed_ids, ids);
	assert_held_by_backend(q, &f->pool, HELD_CMDS, HELD_CHUNKS);
	complete_held_on_dead(f, q, &f->pool);
	f->io = NULL;
	assert_int_equal(f->admin->state, NVT_RDMA_Q_LIVE);

	q = f->io = io_queue(f, 1, 8, 8);
	expect_work_stored(q);
	assert_pool_idle(f);
}

/*
 * The controller dies while the backend holds I/O commands: by keep-alive
 * expiry, or because its admin queue went first. Its queues are asked to
 * leave; commands the backend finishes before the host lets go send
 * nothing and give their slots back; the admin queue goes at once when
 * the host lets go, the I/O queue when the last of its commands is done.
 */
static void ctrl_dies_backend_holds(struct fixture *f, bool keep_alive)
{
	struct nvt_subsys *subsys = nvt_target_find_subsys(f->tgt, TEST_NQN);
	struct held_work w;
	struct nvt_rdma_queue *q;
	struct nvt_rdma_req *r;
	unsigned int nsent, ids, disc;
	uint32_t free_before;

	connect_all(f);
	q = f->io = io_queue(f, 1, 16, 16);
	hold_work(q, &w);
	disc = nr_disconnects;
	ids = nr_destroyed_ids;
	if (keep_alive) {
		assert_int_equal(nvt_target_check_keep_alive(f->tgt,
							     nvt_now_ns() + 3600000000000ull), 1);
		assert_int_equal(nr_disconnects, disc + 2);
		assert_int_equal(f->admin->state, NVT_RDMA_Q_DISCONNECTING);
	} else {
		cm_event(f, f->admin, RDMA_CM_EVENT_DISCONNECTED);
		assert_int_equal(f->admin->state, NVT_RDMA_Q_DEAD);
		assert_int_equal(f->admin->nr_executing, 0);
	}
	assert_null(subsys->ctrls);
	assert_int_equal(q->state, NVT_RDMA_Q_DISCONNECTING);
	assert_true(q->disconnect_sent);
	assert_int_equal(slow.nr_held, 7);

	/* Done before the host lets go: nothing is sent, the slot and its chunks are back. */
	nsent = nr_sends;
	r = slot_of_bio(slow.held[0]);
	free_before = f->pool.nr_free;
	assert_int_equal(r->nr_chunks, 1);
	slow_complete(0, 0);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	assert_int_equal(f->pool.nr_free, free_before + 1);
	/* And one that fails (the core records no error for a controller that is gone). */
	r = slot_of_bio(slow.held[0]);
	assert_int_equal(r->nr_chunks, 2);
	slow_complete(0, -EIO);
	assert_int_equal(r->state, NVT_RDMA_REQ_FREE);
	assert_int_equal(f->pool.nr_free, free_before + 3);
	assert_int_equal(nr_sends, nsent);
	assert_int_equal(q->nr_active, HELD_ACTIVE - 2);

	/* The host lets go of both. */
	if (keep_alive)
		cm_event(f, f->admin, RDMA_CM_EVENT_DISCONNECTED);
	flush_work(&w);
	cm_event(f, q, RDMA_CM_EVENT_DISCONNECTED);
	assert_held_by_backend(q, &f->pool, HELD_CMDS - 2, HELD_CHUNKS - 3);
	queue_unpoison(f->admin);
	nvt_poll_group_poll(f->tgt->pg, 0);
	assert_int_equal(nr_destroyed_ids, ids + 1);	/* the admin queue, not the I/O queue */
	f->admin = NULL;
	assert_held_by_backend(q, &f->pool, HELD_CMDS - 2, HELD_CHUNKS - 3);
	complete_held_on_dead(f, q, &f->pool);
	f->io = NULL;
	assert_pool_idle(f);
}

static void test_keep_alive_expiry_backend_holds(void **state)
{
	ctrl_dies_backend_holds(*state, true);
}

static void test_admin_gone_backend_holds(void **state)
{
	ctrl_dies_backend_holds(*state, false);
}

/*
 * DEVICE_REMOVAL while the backend holds commands whose chunks are in the
 * removed device's pool: the pool stays (the backend still reads and
 * fills its chunks) until the queue goes with its last command, and goes
 * before the queue's cm_id does.
 */
static void test_device_removal_backend_holds(void **state)
{
	static struct ibv_context gone_ctx;
	struct fixture *f = *state;
	struct nvt_rdma_dev *d = calloc(1, sizeof(*d));
	struct held_work w;
	struct nvt_rdma_queue *q;

	assert_int_equal(nvt_rdma_pool_init(&d->pool, aligned_alloc(4096, (size_t)POOL_CHUNKS *
								       NVT_RDMA_CHUNK),
					    POOL_CHUNKS), 0);
	d->pool.lkey = 11;
	d->pool.max_cmd = MAX_CMD;
	d->verbs = &gone_ctx;
	d->pg = f->tgt->pg;
	d->flusher.fn = nvt_rdma_dev_flush;
	d->refs = 1;
	d->next = nvt_rdma_devs;
	nvt_rdma_devs = d;

	connect_all(f);
	f->qpool = &d->pool;
	q = f->io = io_queue(f, 1, 16, 16);
	f->qpool = NULL;
	q->dev = d;
	q->cm_id->verbs = &gone_ctx;
	hold_work(q, &w);
	flush_work(&w);
	cm_event(f, q, RDMA_CM_EVENT_DEVICE_REMOVAL);
	assert_true(d->removed);
	assert_true(dev_listed(d));
	assert_held_by_backend(q, &d->pool, HELD_CMDS, HELD_CHUNKS);
	assert_pool_idle(f);
	nvt_poll_group_poll(f->tgt->pg, 0);
	assert_true(dev_listed(d));
	assert_int_equal(d->refs, 1);
	complete_held_on_dead(f, q, &d->pool);
	f->io = NULL;
	assert_null(nvt_rdma_devs);			/* the pool went with its last queue */
	assert_int_equal(removed_devs_at_destroy, 0);	/* before the cm_id */
	assert_int_equal(f->admin->state, NVT_RDMA_Q_LIVE);
}

/*
 * Chunks a dead queue's commands give back when the backend completes
 * them go to whoever waits in the pool's line: another queue's write that
 * waits for them gets them and its READ, though nothing else happens on
 * that queue (its host waits for the answer).
 */
static void test_dead_queue_chunks_wake_line(void **state)
{
	static uint8_t data[65536];
	struct fixture *f = *state;
	struct nvt_rdma_req *waiter;
	unsigned int i;

	connect_all(f);
	f->io = io_queue(f, 1, 8, 8);
	f->io2 = io_queue(f, 2, 8, 8);
	pool_create(f, 2);
	held_write(f->io, 1, 0, 128, 1, 1);
	assert_int_equal(f->pool.nr_free, 0);
	i = post_write(f->io2, 1, SLOW_NSID, 1024, 128, 2);
	assert_int_equal(nr_sends, i);
	assert_int_equal(f->pool.nr_waiting, 1);
	waiter = f->pool.wait_head;
	assert_int_equal(waiter->state, NVT_RDMA_REQ_NEED_BUFFER);

	cm_event(f, f->io, RDMA_CM_EVENT_DISCONNECTED);
	assert_held_by_backend(f->io, &f->pool, 1, 2);
	assert_int_equal(waiter->state, NVT_RDMA_REQ_NEED_BUFFER);
	slow_complete(0, 0);
	assert_int_equal(f->pool.nr_free, 2);
	queue_unpoison(f->io);
	nvt_poll_group_poll(f->tgt->pg, 0);
	f->io = NULL;
	/* The waiting write has its chunks and its READ. */
	assert_int_equal(waiter->state, NVT_RDMA_REQ_XFER_H2C);
	assert_int_equal(nr_sends, i + 1);
	pattern(data, sizeof(data), 2);
	complete_read(f->io2, i, data, sizeof(data));
	slow_complete(0, 0);
	assert_int_equal(sc_of(i + 1), 0);
	complete_wr(f->io2, i + 1, IBV_WC_SUCCESS);
	assert_all_free(f->io2);
	assert_pool_idle(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_write_reg_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_write_read_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_ns_close_deregisters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_request_for_removed_ns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_write_holds_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_write_orders_overlapping_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zc_registered_pages_stay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decisions_survive_recv_repost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_command_no_stale_invalidate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_capsules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_queue_incapsule_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parked_before_established, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_exhaustion_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_teardown_returns_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_leaves_wait_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_post, setup_sge4, teardown),
		cmocka_unit_test_setup_teardown(test_batch_one_post_per_iteration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_off_posts_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_partial_post, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_teardown_unposted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_cq_teardown_mid_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adaptive_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_srq_routed_by_qp_num, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_srq_capsule_before_known, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_srq_teardown_returns_buffers, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_srq_aer_holds_no_buffer, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_srq_executing_holds_only_icdata, setup_slow_srq,
						teardown),
		cmocka_unit_test_setup_teardown(test_rnr_timer_at_established, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_cq_sized_from_max_cqe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_srq_teardown_reaps_landed_capsules, setup_srq,
						teardown),
		cmocka_unit_test_setup_teardown(test_adaptive_poll_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_group_wake_no_second_look, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adaptive_poll_never_sleeps_unwatched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fake_srq_depth, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_srq_repost_failure_keeps_buffers, setup_srq,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch_post_fails_without_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_cq_dead_queue_path, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_srq_conserved_over_cycles, setup_srq, teardown),
		cmocka_unit_test_setup_teardown(test_srq_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_1mib_multi_sge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_1mib_few_sges_per_wr, setup_sge4, teardown),
		cmocka_unit_test_setup_teardown(test_pi_scratch_from_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_sends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_queue_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_queue_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_stall_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_waits_own_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconnected_queue_one_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_connect_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_removal_frees_pools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fused_write_flushed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fused_write_read_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fused_write_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fused_pair_past_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_any_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_before_established, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_backend_holds, setup_slow,
						teardown),
		cmocka_unit_test_setup_teardown(test_keep_alive_expiry_backend_holds, setup_slow,
						teardown),
		cmocka_unit_test_setup_teardown(test_admin_gone_backend_holds, setup_slow,
						teardown),
		cmocka_unit_test_setup_teardown(test_device_removal_backend_holds, setup_slow,
						teardown),
		cmocka_unit_test_setup_teardown(test_dead_queue_chunks_wake_line, setup_slow,
						teardown),
	};

	nvt_log_set_level(NVT_LOG_OFF);
	return cmocka_run_group_tests_name("rdma_queue", tests, NULL, NULL);
}
