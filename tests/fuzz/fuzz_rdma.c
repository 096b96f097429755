/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz harness for the RDMA transport against a fake HCA: CM private data, capsules with fuzzed SGLs, completions in fuzzed interleavings with fuzzed statuses, zero-copy writes, teardown. */
#include "../../transport/rdma/rdma.c"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "fuzz.h"
#include "../nvt_fake_verbs.h"
#include "nvt/host.h"

/*
 * The program (reads past the end give 0):
 *   op byte % 8:
 *   0 QUEUE     slot, CM private data, device   a CONNECT_REQUEST accepted (or rejected)
 *   1, 6 CAPSULE slot, template, SGL, mutations  the host SENDs a capsule into the next RECV
 *                                                (template: low nibble % 10; variants: high nibble)
 *   2 COMPLETE  slot, what, status               the HCA completes send-queue work or flushes
 *   3 ESTABLISHED slot
 *   4 DISCONNECTED slot                          the CM event: teardown
 *   5 TIME      step                             keep-alive and the Connect deadline
 *   7 PROGRESS  slot                             everything posted completes successfully
 * The fake HCA works as RC QPs do: a send queue completes in order (an
 * unsignaled WR silently with the signaled one after it), an error moves
 * the QP to the error state and everything after it flushes, RECVs are
 * consumed in the order they were posted. It owns what it was given: under
 * ASan, posted buffers are poisoned until their completion.
 * Invariants (abort): the send queue never overflows and no WR has more
 * SGEs than the QP allows; an RDMA READ or WRITE stays inside the keyed SGL
 * of its own command and uses its key; SEND_WITH_INV only invalidates a key
 * the host let go; exactly one response per capsule, with its CID, from an
 * intact copy of its SQE; a RECV buffer is never posted twice; data read
 * back through RDMA WRITEs is what RDMA READs and in-capsule data wrote
 * (subsystem A nsid 1); with every completion in, nothing is left waiting
 * but AERs and a fused half; after teardown every chunk is back; the
 * target logs no error; no leak.
 */

#define SUB_A		"nqn.2026-11.io.nvt:fuzz-a"
#define SUB_B		"nqn.2026-11.io.nvt:fuzz-b"
#define HOST		"nqn.2014-08.org.nvmexpress:uuid:fuzz-host"

#define NR_SLOTS	4
#define MAX_OPS		200
#define MAX_WRS		8192
#define MAX_CAPS	1024
#define HOST_BASE	0x100000000ull		/* host memory as the host's keys describe it */
#define HOST_MEM	(1u << 20)
#define HOST_KEY	0x1234
#define SHADOW_BLOCKS	2048			/* A nsid 1: 1 MiB of 512-byte blocks */
#define POOL_MAX	80

/* ---- the fake HCA ---- */

struct fconn {
	struct rdma_cm_id id;
	struct ibv_qp qp;
	struct ibv_cq cq;
	unsigned int max_send_wr, max_sge, in_sq;
	bool error;			/* QP in the error state: all work flushes */
	bool destroyed;			/* rdma_destroy_qp() */
	bool disconnect_asked;		/* rdma_disconnect(): a DISCONNECTED event is due */
	uint8_t *recvs[256];		/* posted RECV buffers, oldest first */
	unsigned int nr_recvs;
	uint32_t recv_len;
};

struct fwr {
	struct fconn *c;
	enum ibv_wr_opcode opcode;
	uint64_t wr_id;
	bool signaled, retired;
	uint64_t raddr;
	uint32_t rkey, inv_rkey, len;
	int num_sge;
	struct ibv_sge sge[NVT_RDMA_MAX_SGE];
};

/* A capsule the host sent and has not had an answer to. */
struct cap {
	int slot;
	struct nvt_sqe sqe;
	uint8_t *h2c;			/* what its RDMA READ fetched, or its in-capsule data */
	uint32_t h2c_len;
	bool answered;
};

struct slot {
	struct nvt_rdma_queue *q;
	struct fconn *c;
	int subsys;			/* 0: A, 1: B, -1: none yet */
	uint16_t cntlid;
};

struct fuzz {
	struct nvt_fuzz_input in;	/* the program being run */
	struct nvt_target *tgt;
	struct nvt_port port;
	struct nvt_rdma_port rport;
	struct nvt_rdma_pool pool;
	struct nvt_rdma_dev dev;	/* its flusher posts the queues' batches at the end of each op */
	bool batch;			/* the listener's batch_posts */
	struct slot slots[NR_SLOTS];
	struct fwr *wrs;
	unsigned int nr_wrs;
	struct cap caps[MAX_CAPS];
	unsigned int nr_caps;
	uint16_t cntlid;		/* of the last admin Connect */
	uint64_t now_ns;
	bool recv_flush;		/* the device flushes RECVs too (mlx5 does, rxe not) */
	bool shadow_valid;
	uint8_t *host;			/* HOST_MEM bytes at HOST_BASE */
	uint8_t *shadow;
};

static struct fuzz *F;
static uint8_t *pool_mem;
static bool trace;		/* NVT_FUZZ_TRACE=1: say what happens (reading a reproducer) */

static uint8_t u8(struct fuzz *f)
{
	return nvt_fuzz_u8(&f->in);
}

static uint16_t u16(struct fuzz *f)
{
	return nvt_fuzz_u16(&f->in);
}

static uint32_t u32(struct fuzz *f)
{
	return nvt_fuzz_u32(&f->in);
}

/* A send-queue WR's slot (rdma.c's own mapping); NULL for a RECV, which no send WR may be. */
static struct nvt_rdma_req *req_of_wr(uint64_t wr_id)
{
	const struct nvt_rdma_wr *wr = (const struct nvt_rdma_wr *)(uintptr_t)wr_id;

	return wr->type == NVT_RDMA_WR_RECV ? NULL : nvt_rdma_wr_req(wr_id);
}

/*
 * The unanswered capsule of @slot with CID @cid, the one whose SQE the slot
 * holds when the host reused a CID; else any with that CID (its SQE will not
 * match, which is reported), or NULL.
 */
static struct cap *cap_find(struct fuzz *f, int slot, uint16_t cid, const struct nvt_sqe *sqe)
{
	struct cap *any = NULL;

	for (unsigned int i = 0; i < f->nr_caps; i++) {
		struct cap *cp = &f->caps[i];

		if (cp->slot != slot || cp->answered || cp->sqe.common.cid != cid)
			continue;
		if (!memcmp(&cp->sqe, sqe, sizeof(*sqe)))
			return cp;
		if (!any)
			any = cp;
	}
	return any;
}

static int slot_of_conn(struct fuzz *f, const struct fconn *c)
{
	for (int s = 0; s < NR_SLOTS; s++)
		if (f->slots[s].c == c)
			return s;
	return -1;
}

/* The keyed SGL the host put in @sqe: [addr, addr + len) under key. */
static void keyed_of(const struct nvt_sqe *sqe, uint64_t *addr, uint32_t *len, uint32_t *key)
{
	const struct nvt_sgl_desc *d = &sqe->common.dptr;

	*addr = le64toh(d->addr);
	*len = d->keyed.length[0] | d->keyed.length[1] << 8 | (uint32_t)d->keyed.length[2] << 16;
	memcpy(key, d->keyed.key, 4);
	*key = le32toh(*key);
}

static void on_response(struct fuzz *f, struct fconn *c, const struct fwr *w);

static int fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	struct fconn *c = container_of(qp, struct fconn, qp);
	struct fuzz *f = F;

	for (; wr; wr = wr->next) {
		struct nvt_rdma_req *r = req_of_wr(wr->wr_id);
		struct fwr *w;

		nvt_fuzz_check(!c->destroyed, "post on a destroyed QP");
		nvt_fuzz_check(c->in_sq < c->max_send_wr, "send queue overflow: %u WRs of %u",
			       c->in_sq + 1, c->max_send_wr);
		nvt_fuzz_check(wr->num_sge >= 0 && (unsigned int)wr->num_sge <= c->max_sge,
			       "%d SGEs in a WR, the QP takes %u", wr->num_sge, c->max_sge);
		nvt_fuzz_check(r, "a send WR whose wr_id is no slot's");
		if (f->nr_wrs == MAX_WRS) {
			*bad = wr;
			return ENOMEM;
		}
		w = &f->wrs[f->nr_wrs++];
		memset(w, 0, sizeof(*w));
		w->c = c;
		w->opcode = wr->opcode;
		w->wr_id = wr->wr_id;
		w->signaled = wr->send_flags & IBV_SEND_SIGNALED;
		w->raddr = wr->wr.rdma.remote_addr;
		w->rkey = wr->wr.rdma.rkey;
		w->inv_rkey = wr->invalidate_rkey;
		w->num_sge = wr->num_sge;
		for (int k = 0; k < wr->num_sge; k++) {
			w->sge[k] = wr->sg_list[k];
			w->len += wr->sg_list[k].length;
		}
		if (wr->opcode == IBV_WR_RDMA_READ || wr->opcode == IBV_WR_RDMA_WRITE) {
			uint64_t addr;
			uint32_t len, key;

			/* Only what the host offered for this very command. */
			keyed_of(&r->sqe, &addr, &len, &key);
			nvt_fuzz_check(w->raddr >= addr && w->raddr + w->len <= addr + len &&
				       w->raddr + w->len >= w->raddr,
				       "%s of %u bytes at %#" PRIx64 " outside the SGL [%#" PRIx64 ", +%u)",
				       wr->opcode == IBV_WR_RDMA_READ ? "READ" : "WRITE", w->len,
				       w->raddr, addr, len);
			nvt_fuzz_check(w->rkey == key, "rkey %#x, the SGL's is %#x", w->rkey, key);
		}
		/* The HCA reads what it sends when it sends it: now, here. */
		if (wr->opcode == IBV_WR_RDMA_WRITE && w->raddr >= HOST_BASE &&
		    w->raddr + w->len <= HOST_BASE + HOST_MEM) {
			uint8_t *dst = f->host + (w->raddr - HOST_BASE);

			for (int k = 0; k < w->num_sge; k++) {
				memcpy(dst, (void *)(uintptr_t)w->sge[k].addr, w->sge[k].length);
				dst += w->sge[k].length;
			}
		}
		if (trace && wr->opcode != IBV_WR_SEND && wr->opcode != IBV_WR_SEND_WITH_INV)
			fprintf(stderr, "trace: slot %d: %s of %u bytes in %d SGEs at %#" PRIx64 "%s\n",
				slot_of_conn(f, c), wr->opcode == IBV_WR_RDMA_READ ? "READ" : "WRITE",
				w->len, w->num_sge, w->raddr, w->signaled ? ", signaled" : "");
		if (wr->opcode == IBV_WR_SEND || wr->opcode == IBV_WR_SEND_WITH_INV)
			on_response(f, c, w);
		for (int k = 0; k < w->num_sge; k++)
			HCA_TAKES((void *)(uintptr_t)w->sge[k].addr, w->sge[k].length);
		c->in_sq++;
	}
	return 0;
}

static int fake_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	struct fconn *c = container_of(qp, struct fconn, qp);

	for (; wr; wr = wr->next) {
		uint8_t *buf = (uint8_t *)(uintptr_t)wr->sg_list[0].addr;

		nvt_fuzz_check(!c->destroyed, "RECV posted on a destroyed QP");
		for (unsigned int i = 0; i < c->nr_recvs; i++)
			nvt_fuzz_check(c->recvs[i] != buf, "RECV buffer %p posted twice", (void *)buf);
		nvt_fuzz_check(c->nr_recvs < NVT_ARRAY_SIZE(c->recvs), "too many RECVs");
		c->recv_len = wr->sg_list[0].length;
		/* A capsule may land at once: whatever still reads the buffer reads this. */
		HCA_GIVES(buf, c->recv_len);
		memset(buf, 0xa5, c->recv_len);
		HCA_TAKES(buf, c->recv_len);
		c->recvs[c->nr_recvs++] = buf;
	}
	return 0;
}

/* The oldest unretired send WR of @c; @signaled_only skips the unsignaled. */
static struct fwr *oldest(struct fuzz *f, struct fconn *c, bool signaled_only)
{
	for (unsigned int i = 0; i < f->nr_wrs; i++)
		if (f->wrs[i].c == c && !f->wrs[i].retired && (!signaled_only || f->wrs[i].signaled))
			return &f->wrs[i];
	return NULL;
}

static void retire(struct fwr *w)
{
	w->retired = true;
	w->c->in_sq--;
	for (int k = 0; k < w->num_sge; k++)
		HCA_GIVES((void *)(uintptr_t)w->sge[k].addr, w->sge[k].length);
}

/*
 * A READ the HCA carries out: the host's data lands in the SGEs (and, for
 * the shadow, is noted as what the command got, piece by piece: the host's
 * memory may change between the pieces). Return: false if the host's key
 * does not cover it (remote access error).
 */
static bool hca_read(struct fuzz *f, struct fconn *c, struct fwr *w)
{
	struct nvt_rdma_req *r = req_of_wr(w->wr_id);
	const uint8_t *src;
	struct cap *cp;
	uint64_t addr;
	uint32_t len, key;

	if (w->raddr < HOST_BASE || w->raddr + w->len > HOST_BASE + HOST_MEM || w->rkey != HOST_KEY)
		return false;
	src = f->host + (w->raddr - HOST_BASE);
	for (int k = 0; k < w->num_sge; k++) {
		HCA_GIVES((void *)(uintptr_t)w->sge[k].addr, w->sge[k].length);
		memcpy((void *)(uintptr_t)w->sge[k].addr, src, w->sge[k].length);
		src += w->sge[k].length;
	}
	cp = cap_find(f, slot_of_conn(f, c), r->sqe.common.cid, &r->sqe);
	if (cp) {
		keyed_of(&cp->sqe, &addr, &len, &key);
		if (!cp->h2c) {
			cp->h2c = calloc(1, len ? len : 1);
			cp->h2c_len = len;
		}
		memcpy(cp->h2c + (w->raddr - addr), f->host + (w->raddr - HOST_BASE), w->len);
	}
	return true;
}

/*
 * What the HCA reports next for @c's send queue: the first unretired WR,
 * flushed, when the QP is in error; else the next signaled WR (those before
 * it done silently), or an error on the very first one.
 */
static bool next_wc(struct fuzz *f, struct fconn *c, enum ibv_wc_status status, struct ibv_wc *wc)
{
	struct fwr *w;

	if (c->error || status != IBV_WC_SUCCESS) {
		w = oldest(f, c, false);
		if (!w)
			return false;
		if (c->error)
			status = IBV_WC_WR_FLUSH_ERR;
		c->error = true;
	} else {
		w = oldest(f, c, true);
		if (!w)
			return false;
		/* Unsignaled WRs ahead of it are done without a word, their READs too. */
		for (struct fwr *o; (o = oldest(f, c, false)) != w;) {
			if (o->opcode == IBV_WR_RDMA_READ && !hca_read(f, c, o)) {
				w = o;
				status = IBV_WC_REM_ACCESS_ERR;
				c->error = true;
				break;
			}
			retire(o);
		}
		if (status == IBV_WC_SUCCESS && w->opcode == IBV_WR_RDMA_READ && !hca_read(f, c, w)) {
			status = IBV_WC_REM_ACCESS_ERR;
			c->error = true;
		}
	}
	retire(w);
	if (trace && status != IBV_WC_SUCCESS)
		fprintf(stderr, "trace: slot %d: WR completes with %s\n", slot_of_conn(f, c),
			ibv_wc_status_str(status));
	*wc = (struct ibv_wc){ .wr_id = w->wr_id, .status = status, .qp_num = 1 };
	return true;
}

static int fake_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	struct fconn *c = cq->cq_context;
	int k = 0;

	/* Polled in the drain, after rdma_disconnect: everything flushes. */
	while (k < n && next_wc(F, c, IBV_WC_SUCCESS, &wc[k]))
		k++;
	while (k < n && c->error && F->recv_flush && c->nr_recvs) {
		uint8_t *buf = c->recvs[0];
		struct nvt_rdma_queue *q = c->id.context;

		memmove(c->recvs, c->recvs + 1, --c->nr_recvs * sizeof(c->recvs[0]));
		HCA_GIVES(buf, c->recv_len);
		for (uint32_t i = 0; i < q->recv_depth; i++)
			if (q->recvs[i].buf == buf)
				wc[k++] = (struct ibv_wc){ .wr_id = (uintptr_t)&q->recvs[i].wr,
							   .status = IBV_WC_WR_FLUSH_ERR,
							   .opcode = IBV_WC_RECV };
	}
	return k;
}

static int fake_req_notify_cq(struct ibv_cq *cq, int solicited)
{
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
static struct ibv_mr fake_mr = { .lkey = 7 };
static struct ibv_pd fake_pd = { .context = &fake_ctx };

/* Zero-copy registrations of a namespace's memory (setup byte 0x20 gives the device a PD). */
static struct ibv_mr *fake_reg(void *addr, size_t length)
{
	struct ibv_mr *mr = calloc(1, sizeof(*mr));

	nvt_fuzz_check(mr, "calloc");
	mr->addr = addr;
	mr->length = length;
	mr->lkey = 0x77;
	return mr;
}

struct ibv_mr *(ibv_reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	return fake_reg(addr, length);
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
				unsigned int access)
{
	return fake_reg(addr, length);
}

/* The harness's definitions win over librdmacm's and libibverbs' for our objects. */
int rdma_disconnect(struct rdma_cm_id *id)
{
	struct fconn *c = container_of(id, struct fconn, id);

	c->error = true;	/* the QP moves to the error state */
	c->disconnect_asked = true;
	return 0;
}

void rdma_destroy_qp(struct rdma_cm_id *id)
{
	struct fconn *c = container_of(id, struct fconn, id);

	/* A destroyed QP owns nothing any more. */
	for (unsigned int i = 0; i < F->nr_wrs; i++)
		if (F->wrs[i].c == c && !F->wrs[i].retired)
			retire(&F->wrs[i]);
	for (unsigned int i = 0; i < c->nr_recvs; i++)
		HCA_GIVES(c->recvs[i], c->recv_len);
	c->nr_recvs = 0;
	c->destroyed = true;
	id->qp = NULL;
}

int rdma_destroy_id(struct rdma_cm_id *id)
{
	return 0;
}

/* Teardown moves the QP to the error state itself: everything posted flushes. */
int ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask)
{
	struct fconn *c = container_of(qp, struct fconn, qp);

	if ((attr_mask & IBV_QP_STATE) && attr->qp_state == IBV_QPS_ERR)
		c->error = true;
	return 0;
}

/* Every error the transport or the core logs is a bug here (linked with --wrap=nvt_log). */
void __wrap_nvt_log(enum nvt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void __wrap_nvt_log(enum nvt_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nvt_fuzz_check(level > NVT_LOG_ERR, "the target logged an error: %s", msg);
}

/* ---- responses and the shadow ---- */

static void on_response(struct fuzz *f, struct fconn *c, const struct fwr *w)
{
	struct nvt_rdma_req *r = req_of_wr(w->wr_id);
	int s = slot_of_conn(f, c);
	struct slot *sl = &f->slots[s];
	const struct nvt_cqe *cqe = (const struct nvt_cqe *)(uintptr_t)w->sge[0].addr;
	uint16_t status = (le16toh(cqe->status) >> 1) & 0x7ff;
	uint64_t addr, slba;
	uint32_t len, key, nlb;
	struct cap *cp;

	nvt_fuzz_check(w->num_sge == 1 && w->len == sizeof(*cqe), "a %u-byte response", w->len);
	cp = cap_find(f, s, cqe->cid, &r->sqe);
	nvt_fuzz_check(cp, "qid %u: a response for cid %u, which has none outstanding",
		       sl->q->sq.qid, cqe->cid);
	cp->answered = true;
	if (trace)
		fprintf(stderr, "trace: qid %u cid %u opcode %#x -> status %#x%s\n", sl->q->sq.qid,
			cqe->cid, cp->sqe.common.opcode, status,
			w->opcode == IBV_WR_SEND_WITH_INV ? " (with invalidate)" : "");
	nvt_fuzz_check(!memcmp(&r->sqe, &cp->sqe, sizeof(cp->sqe)),
		       "cid %u: the slot's copy of the SQE is not what the host sent", cqe->cid);
	nvt_fuzz_check(le16toh(cqe->sqid) == sl->q->sq.qid, "response on qid %u says sqid %u",
		       sl->q->sq.qid, le16toh(cqe->sqid));
	if (w->opcode == IBV_WR_SEND_WITH_INV) {
		keyed_of(&cp->sqe, &addr, &len, &key);
		nvt_fuzz_check((cp->sqe.common.dptr.keyed.type >> 4) == NVT_SGL_KEYED_DATA &&
			       (cp->sqe.common.dptr.keyed.type & 0xf) == NVT_SGL_SUB_INVALIDATE &&
			       w->inv_rkey == key,
			       "SEND_WITH_INV of key %#x for cid %u, whose host offered %#x to invalidate",
			       w->inv_rkey, cqe->cid, key);
	}
	if (status)
		return;
	if (cp->sqe.common.opcode == NVT_OPC_FABRICS &&
	    cp->sqe.fabrics.fctype == NVT_FCTYPE_CONNECT) {
		/* Connect data: from the capsule or the READ; it names the subsystem. */
		if (cp->h2c && cp->h2c_len >= sizeof(struct nvmf_connect_data)) {
			const struct nvmf_connect_data *d = (const void *)cp->h2c;

			sl->subsys = !strncmp(d->subsysnqn, SUB_A, 256) ? 0 :
				     !strncmp(d->subsysnqn, SUB_B, 256) ? 1 : -1;
		}
		if (!sl->q->sq.qid)
			f->cntlid = (uint16_t)le32toh(cqe->result.u32);
		return;
	}
	if (sl->subsys || !sl->q->sq.qid || le32toh(cp->sqe.common.nsid) != 1)
		return;
	slba = le64toh(cp->sqe.rw.slba);
	nlb = (uint32_t)le16toh(cp->sqe.rw.nlb) + 1;
	switch (cp->sqe.common.opcode) {
	case nvme_cmd_flush:
	case nvme_cmd_compare:
	case nvme_cmd_verify:
		return;
	case nvme_cmd_read:
		keyed_of(&cp->sqe, &addr, &len, &key);
		nvt_fuzz_check(slba + nlb <= SHADOW_BLOCKS, "read past the end succeeded");
		if (f->shadow_valid && addr >= HOST_BASE && addr + len <= HOST_BASE + HOST_MEM &&
		    len == nlb * 512u)
			nvt_fuzz_check(!memcmp(f->host + (addr - HOST_BASE), f->shadow + slba * 512, len),
				       "read of LBA %" PRIu64 "+%u brought other data than was written",
				       slba, nlb);
		return;
	case nvme_cmd_write:
		nvt_fuzz_check(slba + nlb <= SHADOW_BLOCKS, "write past the end succeeded");
		if (cp->h2c && cp->h2c_len >= nlb * 512u)
			memcpy(f->shadow + slba * 512, cp->h2c, nlb * 512u);
		else
			f->shadow_valid = false;
		return;
	default:
		/* Write Zeroes, DSM, Copy...: this harness does not model them. */
		f->shadow_valid = false;
		return;
	}
}

/* ---- the target and queues ---- */

static struct nvt_target *target_create(void)
{
	struct nvt_ns_cfg ns[3];
	struct nvt_subsys_cfg ss[2] = {
		{ .nqn = SUB_A, .serial = "FUZZA", .model = "nvt fuzz", .allow_any_host = true,
		  .namespaces = ns, .nr_namespaces = 2 },
		{ .nqn = SUB_B, .serial = "FUZZB", .model = "nvt fuzz", .allow_any_host = true,
		  .namespaces = &ns[2], .nr_namespaces = 1 },
	};
	struct nvt_config cfg = { .subsystems = ss, .nr_subsystems = 2 };
	struct nvt_target *tgt;

	memset(ns, 0, sizeof(ns));
	for (int i = 0; i < 3; i++) {
		ns[i].nsid = i == 1 ? 2 : 1;
		strcpy(ns[i].backend, "ram");
		ns[i].block_size = 512;
		ns[i].size = i ? 64u << 10 : SHADOW_BLOCKS * 512u;
		ns[i].uuid[0] = ns[i].nguid[0] = (uint8_t)(i + 1);
	}
	/* A nsid 2: Type 1 PI, so large transfers take PI scratch from the chunks. */
	ns[1].pi.type = 1;
	strcpy(ns[1].pi.guard, "crc16");
	strcpy(ns[1].pi.location, "last");
	ns[1].pi.metadata_size = 8;
	nvt_fuzz_check(!nvt_target_create(&cfg, &tgt), "cannot build the target");
	return tgt;
}

/* QUEUE: a CONNECT_REQUEST with fuzzed private data, accepted as nvt_rdma_handle_connect() does. */
static void op_queue(struct fuzz *f)
{
	uint8_t s = u8(f) % NR_SLOTS, ch = u8(f), dev = u8(f);
	struct slot *sl = &f->slots[s];
	struct nvt_rdma_cm_req req = { 0 };
	struct nvt_rdma_cm_params params;
	size_t len = sizeof(req);
	struct nvt_rdma_queue *q;
	struct fconn *c;
	int sts;

	if (sl->q)
		return;
	/* A good request for a small queue, or fuzzed fields and length. */
	req.qid = htole16(ch & 0x80 ? u16(f) : (uint16_t)(ch & 3));
	req.hsqsize = htole16(ch & 0x40 ? u16(f) : (uint16_t)(1 + u8(f) % 15));
	req.hrqsize = htole16(ch & 0x20 ? u16(f) : (uint16_t)(le16toh(req.hsqsize) + 1));
	req.recfmt = htole16(ch & 0x10 ? u16(f) : 0);
	req.cntlid = htole16(0xffff);
	if (ch & 0x08)
		len = u8(f) % (sizeof(req) + 8);
	sts = nvt_rdma_parse_cm_req(&req, len, &params);
	if (trace)
		fprintf(stderr, "trace: slot %u: connect request qid %u hsqsize %u hrqsize %u: %d\n", s,
			le16toh(req.qid), le16toh(req.hsqsize), le16toh(req.hrqsize), sts);
	if (sts) {
		nvt_fuzz_check(sts >= NVT_RDMA_CM_INVALID_LEN && sts <= NVT_RDMA_CM_INVALID_ORD,
			       "reject status %d", sts);
		return;
	}
	nvt_fuzz_check(params.qid <= NVT_MAX_IO_QUEUES && params.sq_size >= 2 &&
		       params.sq_size <= (params.qid ? NVT_RDMA_MAX_QUEUE_SIZE : NVT_AQ_DEPTH) &&
		       params.recv_depth >= params.sq_size &&
		       params.recv_depth <= (params.qid ? NVT_RDMA_MAX_QUEUE_SIZE : NVT_AQ_DEPTH),
		       "accepted qid %u sq %u recv %u", params.qid, params.sq_size,
		       params.recv_depth);
	/* Memory is what matters here, not a realistic depth. */
	if (params.recv_depth > 32)
		return;
	q = calloc(1, sizeof(*q));
	c = calloc(1, sizeof(*c));
	nvt_fuzz_check(q && c, "calloc");
	c->qp.context = &fake_ctx;
	c->cq.context = &fake_ctx;
	c->cq.cq_context = c;
	c->id.qp = &c->qp;
	c->id.context = q;
	q->rport = &f->rport;
	q->cm_id = &c->id;
	q->state = NVT_RDMA_Q_CONNECTING;
	q->recv_depth = q->nr_reqs = params.recv_depth;
	q->max_io = nvt_rdma_port_max_io(&f->port);
	q->pg = nvt_target_io_pg(f->tgt, params.qid);
	q->send_with_inv = dev & 0x80;
	q->accepted_ns = f->now_ns;
	atomic_init(&q->connected, false);
	nvt_sq_init(&q->sq, f->tgt, &nvt_rdma_transport_ops, &f->port, q->pg, params.qid,
		    (uint16_t)params.sq_size);
	/* Devices differ in SGEs per WR: 1 (every chunk its own WR) to 32 (rxe). */
	nvt_fuzz_check(!nvt_rdma_queue_size(q, 1 + dev % 32, dev & 0x40 ? 1 + dev % 4 : 0),
		       "nvt_rdma_queue_size");
	q->pool = &f->pool;
	q->dev = &f->dev;
	q->batch = f->batch;
	q->zero_copy = true;	/* setup bit 0x20 (a PD) then runs writes through it */
	nvt_fuzz_check(!nvt_rdma_queue_alloc_buffers(q), "nvt_rdma_queue_alloc_buffers");
	q->recv_mr = q->cqe_mr = &fake_mr;
	q->cq = &c->cq;
	c->max_send_wr = q->max_send_wr;
	c->max_sge = q->sge_wr > q->sge_rd ? q->sge_wr : q->sge_rd;
	for (uint32_t i = 0; i < q->recv_depth; i++)
		nvt_fuzz_check(!nvt_rdma_post_recv(q, &q->recvs[i]), "nvt_rdma_post_recv");
	q->next = f->rport.queues;
	f->rport.queues = q;
	f->rport.nr_queues++;
	sl->q = q;
	sl->c = c;
	sl->subsys = -1;
	/* ESTABLISHED now, or later (capsules park meanwhile). */
	if (!(ch & 0x04))
		nvt_rdma_queue_established(q);
}

static void keyed(struct nvt_sqe *sqe, uint64_t addr, uint32_t len, uint32_t key, uint8_t type)
{
	sqe->common.dptr.addr = htole64(addr);
	sqe->common.dptr.keyed.length[0] = len & 0xff;
	sqe->common.dptr.keyed.length[1] = (len >> 8) & 0xff;
	sqe->common.dptr.keyed.length[2] = (len >> 16) & 0xff;
	key = htole32(key);
	memcpy(sqe->common.dptr.keyed.key, &key, 4);
	sqe->common.dptr.keyed.type = type;
}

/* Where the host keeps the connect data it offers (one per subsystem). */
#define CONNECT_A	0
#define CONNECT_B	1024

/*
 * CAPSULE: the host sends a command. Templates: Connect (data by READ, or
 * in the capsule on I/O queues), enable, Identify, Read and Write of nsid 1
 * or 2 (keyed: READ/WRITE chains over chunks; or in-capsule), AER; then SGL
 * and SQE mutations and a fuzzed capsule length.
 */
static void op_capsule(struct fuzz *f)
{
	uint8_t s = u8(f) % NR_SLOTS, t = u8(f), sb = u8(f), mb = u8(f);
	struct slot *sl = &f->slots[s];
	struct nvt_rdma_recv *rv = NULL;
	uint8_t ic[NVT_RDMA_ICDATA];
	uint32_t iclen = 0, nlb, byte_len;
	struct nvt_sqe sqe;
	struct ibv_wc wc;
	struct cap *cp;
	uint8_t *buf;

	if (!sl->q || !sl->c->nr_recvs || sl->c->error || f->nr_caps == MAX_CAPS)
		return;
	memset(&sqe, 0, sizeof(sqe));
	/* Low nibble: the template; high nibble: its variants. */
	switch ((t & 0x0f) % 10) {
	case 0:		/* Connect */
	case 1: {
		struct nvmf_connect_data *d = (void *)ic;

		sqe.connect.opcode = NVT_OPC_FABRICS;
		sqe.connect.fctype = NVT_FCTYPE_CONNECT;
		sqe.connect.qid = htole16(sl->q->sq.qid);
		sqe.connect.sqsize = htole16((uint16_t)(sl->q->sq.size - 1));
		sqe.connect.kato = htole32(sl->q->sq.qid ? 0 : (t & 0x10) ? 1000 : 0);
		if ((t & 0x0f) % 10 == 1 && sl->q->sq.qid) {
			/* In the capsule, as an offset SGL. */
			memset(d, 0, sizeof(*d));
			d->cntlid = htole16(f->cntlid);
			strcpy(d->subsysnqn, t & 0x20 ? SUB_B : SUB_A);
			strcpy(d->hostnqn, HOST);
			iclen = sizeof(*d);
			sqe.common.dptr.unkeyed.length = htole32(iclen);
			sqe.common.dptr.unkeyed.type = NVT_SGL_DATA_BLOCK << 4 | NVT_SGL_SUB_OFFSET;
		} else {
			struct nvmf_connect_data *hd =
				(void *)(f->host + (t & 0x20 ? CONNECT_B : CONNECT_A));

			hd->cntlid = htole16(sl->q->sq.qid ? f->cntlid : 0xffff);
			keyed(&sqe, HOST_BASE + (t & 0x20 ? CONNECT_B : CONNECT_A), sizeof(*hd),
			      HOST_KEY, 0x40);
		}
		break;
	}
	case 2:		/* CC.EN = 1 */
		sqe.prop.opcode = NVT_OPC_FABRICS;
		sqe.prop.fctype = NVT_FCTYPE_PROP_SET;
		sqe.prop.offset = htole32(NVT_PROP_CC);
		sqe.prop.value = htole64((6u << 16) | (4u << 20) | 1);
		break;
	case 3:		/* Identify, or Set Features Number of Queues */
		if (t & 0x10) {
			nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_NUM_QUEUES, 0x00030003);
		} else {
			nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
			keyed(&sqe, HOST_BASE + 65536, 4096, HOST_KEY, t & 0x20 ? 0x4f : 0x40);
		}
		break;
	case 4:		/* AER, Keep Alive */
		nvt_host_sqe_init(&sqe, t & 0x10 ? nvme_admin_keep_alive : nvme_admin_async_event, 0);
		break;
	default: {	/* Read or Write, keyed or in the capsule */
		bool wr = t & 0x10, inc = wr && (t & 0x20);
		uint32_t nsid = t & 0x40 ? 2 : 1, bs = nsid == 2 ? 520 : 512;
		uint8_t lb = u8(f);
		uint64_t slba = u8(f) % 64;

		/* Mostly a few blocks; now and then up to the largest transfer. */
		nlb = lb < 200 ? 1u + lb % 16u : lb < 250 ? 1u + u8(f) * 8u : 2048u;
		if (inc && nlb * bs > NVT_RDMA_ICDATA)
			nlb = NVT_RDMA_ICDATA / bs;
		nvt_host_sqe_rw(&sqe, wr ? nvme_cmd_write : nvme_cmd_read, nsid, slba * 8, nlb);
		if (nsid == 2)
			sqe.rw.reftag = htole32((uint32_t)(slba * 8));
		if (inc) {
			iclen = nlb * bs;
			for (uint32_t i = 0; i < iclen; i++)
				ic[i] = (uint8_t)(i * 7 + t + sb);
			sqe.common.dptr.unkeyed.length = htole32(iclen);
			sqe.common.dptr.unkeyed.type = NVT_SGL_DATA_BLOCK << 4 | NVT_SGL_SUB_OFFSET;
		} else {
			uint32_t off = (uint32_t)(sb % 8) * 65536;

			if (off + nlb * bs > HOST_MEM)
				off = 0;
			/* Made-up host data for writes: what the READ will fetch. */
			for (uint32_t i = 0; wr && i < nlb * bs && off + i < HOST_MEM; i++)
				f->host[off + i] = (uint8_t)(i * 13 + sb + t);
			keyed(&sqe, HOST_BASE + off, nlb * bs, HOST_KEY, sb & 0x80 ? 0x4f : 0x40);
		}
		break;
	}
	}
	/* No data: a keyed SGL of length 0, as Linux sends. */
	if (!sqe.common.dptr.keyed.type)
		keyed(&sqe, 0, 0, 0, NVT_SGL_KEYED_DATA << 4);
	sqe.common.cid = (uint16_t)f->nr_caps;
	/* SGL mutations: type, length, key, address; then any SQE byte. */
	if (mb & 0x01)
		sqe.common.dptr.keyed.type = u8(f);
	if (mb & 0x02)
		keyed(&sqe, le64toh(sqe.common.dptr.addr), u32(f) & 0xffffff, HOST_KEY,
		      sqe.common.dptr.keyed.type);
	if (mb & 0x04)
		sqe.common.dptr.addr = htole64(HOST_BASE + u32(f));
	if (mb & 0x08) {
		uint32_t key = htole32(u32(f));

		memcpy(sqe.common.dptr.keyed.key, &key, 4);
	}
	if (mb & 0x10)
		for (unsigned int i = 0; i < 1u + mb % 4; i++)
			((uint8_t *)&sqe)[u8(f) % sizeof(sqe)] = u8(f);
	byte_len = (uint32_t)sizeof(sqe) + iclen;
	if (mb & 0x20)
		byte_len = u16(f) % (NVT_RDMA_CAPSULE + 1);

	/* The next posted RECV takes it, as an RC QP delivers. */
	buf = sl->c->recvs[0];
	memmove(sl->c->recvs, sl->c->recvs + 1, --sl->c->nr_recvs * sizeof(sl->c->recvs[0]));
	for (uint32_t i = 0; i < sl->q->recv_depth; i++)
		if (sl->q->recvs[i].buf == buf)
			rv = &sl->q->recvs[i];
	nvt_fuzz_check(rv, "a posted RECV buffer that is no RECV of the queue");
	HCA_GIVES(buf, sl->c->recv_len);
	memcpy(buf, &sqe, sizeof(sqe));
	if (iclen)
		memcpy(buf + sizeof(sqe), ic, iclen);
	cp = &f->caps[f->nr_caps++];
	memset(cp, 0, sizeof(*cp));
	cp->slot = s;
	cp->sqe = sqe;
	if (iclen) {
		cp->h2c = malloc(iclen);
		memcpy(cp->h2c, ic, iclen);
		cp->h2c_len = iclen;
	}
	/* A capsule shorter than an SQE gets no answer: there is no command. */
	cp->answered = byte_len < sizeof(sqe);
	if (trace)
		fprintf(stderr, "trace: slot %u: capsule cid %u opcode %#x, %u bytes\n", s,
			sqe.common.cid, sqe.common.opcode, byte_len);
	wc = (struct ibv_wc){ .wr_id = (uintptr_t)&rv->wr, .status = IBV_WC_SUCCESS,
			      .opcode = IBV_WC_RECV, .byte_len = byte_len };
	nvt_rdma_handle_wc(sl->q, &wc);
}

static void complete_one(struct fuzz *f, int s, enum ibv_wc_status status)
{
	struct slot *sl = &f->slots[s];
	struct ibv_wc wc;

	if (sl->q && sl->q->state != NVT_RDMA_Q_DEAD && next_wc(f, sl->c, status, &wc))
		nvt_rdma_handle_wc(sl->q, &wc);
}

/* COMPLETE: the next send-queue completion (an error now and then), or a flushed RECV. */
static void op_complete(struct fuzz *f)
{
	static const enum ibv_wc_status errs[] = {
		IBV_WC_WR_FLUSH_ERR, IBV_WC_REM_ACCESS_ERR, IBV_WC_RETRY_EXC_ERR,
		IBV_WC_RNR_RETRY_EXC_ERR, IBV_WC_LOC_PROT_ERR, IBV_WC_REM_OP_ERR,
	};
	uint8_t s = u8(f) % NR_SLOTS, b = u8(f);
	struct slot *sl = &f->slots[s];

	if (!sl->q)
		return;
	if (b < 224) {
		complete_one(f, s, IBV_WC_SUCCESS);
		return;
	}
	if (b < 248) {
		complete_one(f, s, errs[b % NVT_ARRAY_SIZE(errs)]);
		return;
	}
	/* A RECV flushed (or failed) under a QP in error. */
	if (sl->c->nr_recvs && sl->q->state != NVT_RDMA_Q_DEAD) {
		uint8_t *buf = sl->c->recvs[0];
		struct ibv_wc wc = { .status = IBV_WC_WR_FLUSH_ERR, .opcode = IBV_WC_RECV };

		memmove(sl->c->recvs, sl->c->recvs + 1, --sl->c->nr_recvs * sizeof(sl->c->recvs[0]));
		HCA_GIVES(buf, sl->c->recv_len);
		sl->c->error = true;
		for (uint32_t i = 0; i < sl->q->recv_depth; i++)
			if (sl->q->recvs[i].buf == buf)
				wc.wr_id = (uintptr_t)&sl->q->recvs[i].wr;
		nvt_rdma_handle_wc(sl->q, &wc);
	}
}

/* DISCONNECTED: the CM says the connection is gone; the queue is torn down and freed. */
static void slot_teardown(struct fuzz *f, int s)
{
	struct slot *sl = &f->slots[s];

	if (!sl->q)
		return;
	nvt_rdma_queue_forward_teardown(sl->q);
	/* The deferred work frees the queue once the batch is over. */
	nvt_fuzz_check(nvt_poll_group_poll(f->tgt->pg, 0) >= 0, "nvt_poll_group_poll");
	for (unsigned int i = 0; i < f->nr_wrs; i++)
		nvt_fuzz_check(f->wrs[i].c != sl->c || f->wrs[i].retired, "WR left on a freed QP");
	free(sl->c);
	sl->q = NULL;
	sl->c = NULL;
	for (unsigned int i = 0; i < f->nr_caps; i++)
		if (f->caps[i].slot == s)
			f->caps[i].slot = -1;
}

/* Queues the transport tore down by itself (a deadline): freed after the batch; forget them. */
static void reap_dead(struct fuzz *f)
{
	bool dead[NR_SLOTS] = { false }, any = false;

	for (int s = 0; s < NR_SLOTS; s++)
		any |= dead[s] = f->slots[s].q && f->slots[s].q->state == NVT_RDMA_Q_DEAD;
	if (!any)
		return;
	nvt_fuzz_check(nvt_poll_group_poll(f->tgt->pg, 0) >= 0, "nvt_poll_group_poll");
	for (int s = 0; s < NR_SLOTS; s++) {
		if (!dead[s])
			continue;
		free(f->slots[s].c);
		f->slots[s].q = NULL;
		f->slots[s].c = NULL;
		for (unsigned int i = 0; i < f->nr_caps; i++)
			if (f->caps[i].slot == s)
				f->caps[i].slot = -1;
	}
}

/* PROGRESS: the HCA completes everything posted, in order, successfully where it can. Return: completions. */
static unsigned int progress(struct fuzz *f, int s)
{
	unsigned int n;

	for (n = 0; n < 4 * MAX_WRS && f->slots[s].q; n++) {
		struct slot *sl = &f->slots[s];
		struct ibv_wc wc;

		if (sl->q->state == NVT_RDMA_Q_DEAD)
			break;
		if (!next_wc(f, sl->c, IBV_WC_SUCCESS, &wc)) {
			/*
			 * The iteration ends: messages the thread sent itself run (a
			 * bio parked behind a zero-copy write is woken by one), what
			 * it produced is posted, and may complete.
			 */
			nvt_poll_group_run_pending(f->tgt->pg);
			nvt_poll_group_run_flushers(f->tgt->pg);
			if (sl->q->state == NVT_RDMA_Q_DEAD ||
			    !next_wc(f, sl->c, IBV_WC_SUCCESS, &wc))
				break;
		}
		nvt_rdma_handle_wc(sl->q, &wc);
	}
	return n;
}

/* With all work completed, a healthy queue keeps nothing waiting but AERs and a fused half. */
static void check_quiet(struct fuzz *f)
{
	/* Until nothing moves: chunks freed on one queue start work on another. */
	for (unsigned int round = 0, moved = 1; moved && round < 64; round++) {
		moved = 0;
		for (int s = 0; s < NR_SLOTS; s++)
			moved += progress(f, s);
	}
	for (unsigned int i = 0; i < f->nr_caps; i++) {
		struct cap *cp = &f->caps[i];
		struct slot *sl;

		if (cp->slot < 0 || cp->answered)
			continue;
		sl = &f->slots[cp->slot];
		if (sl->c->error || sl->q->state != NVT_RDMA_Q_LIVE || !sl->c->nr_recvs)
			continue;
		if (cp->sqe.common.opcode == nvme_admin_async_event && !sl->q->sq.qid)
			continue;
		if (cp->sqe.common.opcode != NVT_OPC_FABRICS && (cp->sqe.common.flags & 3))
			continue;
		for (uint32_t k = 0; k < sl->q->nr_reqs; k++)
			fprintf(stderr, "slot %d req %u: %s cid %u need %u has %u\n", cp->slot, k,
				nvt_rdma_req_state_name(sl->q->reqs[k].state),
				sl->q->reqs[k].sqe.common.cid, sl->q->reqs[k].need,
				sl->q->reqs[k].nr_chunks);
		fprintf(stderr, "pool: %u of %u free, %u waiting; queue: %u parked, %u active\n",
			f->pool.nr_free, f->pool.nr_chunks, f->pool.nr_waiting, sl->q->nr_parked,
			sl->q->nr_active);
		nvt_fuzz_check(false, "slot %d qid %u cid %u (opcode %#x) never answered, the HCA idle",
			       cp->slot, sl->q->sq.qid, cp->sqe.common.cid, cp->sqe.common.opcode);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	nvt_log_set_level(NVT_LOG_ERR);
	trace = getenv("NVT_FUZZ_TRACE") != NULL;
	if (trace)
		nvt_log_set_level(NVT_LOG_WARN);
	pool_mem = aligned_alloc(4096, (size_t)POOL_MAX * NVT_RDMA_CHUNK);
	nvt_fuzz_check(pool_mem, "aligned_alloc");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t max_ios[] = { 4096, 32768, 131072, 1u << 20 };
	struct fuzz *f;
	uint8_t cfg;

	if (!pool_mem)
		LLVMFuzzerInitialize(NULL, NULL);
	f = calloc(1, sizeof(*f));
	nvt_fuzz_check(f, "calloc");
	F = f;
	f->in.p = data;
	f->in.n = size;
	f->wrs = calloc(MAX_WRS, sizeof(*f->wrs));
	f->host = calloc(1, HOST_MEM);
	f->shadow = calloc(1, SHADOW_BLOCKS * 512);
	nvt_fuzz_check(f->wrs && f->host && f->shadow, "calloc");
	f->shadow_valid = true;
	f->tgt = target_create();
	nvt_fuzz_check(!nvt_poll_group_create(&f->tgt->pg), "nvt_poll_group_create");
	nvt_fuzz_check(!nvt_target_attach_pg(f->tgt, f->tgt->pg), "nvt_target_attach_pg");
	f->now_ns = nvt_now_ns();
	/* Setup byte: the listener's max_io_size, the pool's size, zero copy, batching, RECV flushing. */
	cfg = u8(f);
	f->port.tgt = f->tgt;
	f->port.ops = &nvt_rdma_transport_ops;
	f->port.cfg.max_io_size = max_ios[cfg % 4];
	f->rport.port = &f->port;
	f->recv_flush = cfg & 0x80;
	/* One op is one poll-group iteration: what it produced is posted at its end. */
	f->batch = !(cfg & 0x40);
	/* With a PD, writes to nsid 1 (ram, no metadata) go straight into its memory. */
	f->dev.pd = cfg & 0x20 ? &fake_pd : NULL;
	f->dev.tgt = f->tgt;	/* registrations are asked of the main loop: this thread too */
	nvt_ram_set_in_place(nvt_rdma_zc_held);
	f->dev.pg = f->tgt->pg;
	f->dev.flusher.fn = nvt_rdma_dev_flush;
	f->dev.refs = 1u << 30;		/* a queue's put never frees it */
	{
		uint32_t need = nvt_rdma_max_chunks((uint32_t)max_ios[cfg % 4]);
		uint32_t chunks = need + (cfg >> 2) % 8 * need;

		nvt_fuzz_check(!nvt_rdma_pool_init(&f->pool, pool_mem,
						   chunks > POOL_MAX ? POOL_MAX : chunks),
			       "nvt_rdma_pool_init");
		f->pool.lkey = 9;
		/* What nvt_rdma_dev_find_get() sets: the largest command of the (one) listener. */
		f->pool.max_cmd = need;
		HCA_GIVES(pool_mem, (size_t)POOL_MAX * NVT_RDMA_CHUNK);
	}
	/* The host's connect data for each subsystem. */
	for (int i = 0; i < 2; i++) {
		struct nvmf_connect_data *d = (void *)(f->host + (i ? CONNECT_B : CONNECT_A));

		strcpy(d->subsysnqn, i ? SUB_B : SUB_A);
		strcpy(d->hostnqn, HOST);
		d->cntlid = htole16(0xffff);
	}

	for (unsigned int ops = 0; f->in.i < f->in.n && ops < MAX_OPS; ops++) {
		uint8_t s;

		switch (u8(f) % 8) {
		case 0:
			op_queue(f);
			break;
		case 1:
		case 6:
			op_capsule(f);
			break;
		case 2:
			op_complete(f);
			break;
		case 3:
			s = u8(f) % NR_SLOTS;
			if (f->slots[s].q)
				nvt_rdma_queue_established(f->slots[s].q);
			break;
		case 4:
			slot_teardown(f, u8(f) % NR_SLOTS);
			break;
		case 5:
			f->now_ns += (u8(f) + 1ull) * 250000000ull;
			/* The main loop's tick: keep-alive, the Connect deadline, stalled sends. */
			nvt_target_check_keep_alive(f->tgt, f->now_ns);
			nvt_rdma_port_check_connects(&f->rport, f->now_ns);
			nvt_rdma_port_check_stalls(&f->rport, f->now_ns);
			reap_dead(f);
			break;
		case 7:
			progress(f, u8(f) % NR_SLOTS);
			break;
		}
		nvt_poll_group_run_flushers(f->tgt->pg);
	}
	check_quiet(f);
	/* The host goes: admin queues last, as a host tears down. */
	for (int s = NR_SLOTS; s-- > 0;)
		if (f->slots[s].q && f->slots[s].q->sq.qid)
			slot_teardown(f, s);
	for (int s = NR_SLOTS; s-- > 0;)
		slot_teardown(f, s);
	nvt_fuzz_check(f->pool.nr_free == f->pool.nr_chunks && !f->pool.wait_head &&
		       !f->pool.nr_waiting, "after teardown the pool has %u of %u chunks, %u waiting",
		       f->pool.nr_free, f->pool.nr_chunks, f->pool.nr_waiting);
	nvt_fuzz_check(!f->rport.queues && !f->rport.nr_queues, "queues left on the port");
	nvt_fuzz_check(!f->dev.dirty, "a queue left on the dirty list");
	/* The device's end of its registrations (their MRs are the fake's), then the namespaces'. */
	nvt_poll_group_run_pending(f->tgt->pg);
	nvt_fuzz_check(!atomic_load(&f->dev.zc_req_pending), "a registration request left unanswered");
	nvt_rdma_zc_link_made(&f->dev);
	while (f->dev.zc_mrs) {
		struct nvt_rdma_zc_mr *e = f->dev.zc_mrs;

		f->dev.zc_mrs = e->next;
		free(e->mr);
		e->mr = NULL;
		nvt_rdma_zc_mr_end(e);
	}
	nvt_rdma_pool_fini(&f->pool);
	nvt_target_detach_pg(f->tgt, f->tgt->pg);
	nvt_poll_group_destroy(f->tgt->pg);
	f->tgt->pg = NULL;
	nvt_target_destroy(f->tgt);
	for (unsigned int i = 0; i < f->nr_caps; i++)
		free(f->caps[i].h2c);
	free(f->wrs);
	free(f->host);
	free(f->shadow);
	F = NULL;
	free(f);
	return 0;
}
