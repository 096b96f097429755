/* SPDX-License-Identifier: BSD-3-Clause */
/* The NVMe-oF RDMA transport: listeners, CM events, one RC QP per NVMe queue, capsules in, data and responses out. */
#define NVT_LOG_PREFIX "rdma: "
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "nvt/log.h"
#include "nvt/rdma.h"
#include "nvt/util.h"
#include "rdma_internal.h"

#define NVT_RDMA_BACKLOG	128
#define NVT_RDMA_CQ_BATCH	32
#define NVT_RDMA_DRAIN_MS	2000	/* flush completions of a dying QP arrive well within this */
#define NVT_RDMA_STOP_MS	5000	/* how long shutdown waits for hosts to let go */

enum nvt_rdma_queue_state {
	NVT_RDMA_Q_CONNECTING,		/* accepted, waiting for ESTABLISHED; capsules are parked */
	NVT_RDMA_Q_LIVE,		/* serving */
	NVT_RDMA_Q_DISCONNECTING,	/* disconnect asked for; waiting for the CM event */
	NVT_RDMA_Q_DEAD,		/* verbs resources gone; memory freed after this batch */
};

struct nvt_rdma_port;

struct nvt_rdma_queue {
	struct nvt_sq sq;
	struct nvt_rdma_port *rport;
	struct nvt_rdma_queue *next;		/* in rport->queues */
	enum nvt_rdma_queue_state state;
	struct rdma_cm_id *cm_id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *channel;
	struct ibv_cq *cq;
	struct ibv_mr *recv_mr, *cqe_mr, *data_mr;
	uint8_t *recv_bufs;
	struct nvt_cqe *cqes;
	uint8_t *data_bufs;
	uint8_t *md_bufs;
	struct nvt_rdma_recv *recvs;
	uint32_t recv_depth;
	struct nvt_rdma_req *reqs;
	uint32_t nr_reqs;
	struct nvt_rdma_req *free_reqs;
	struct nvt_rdma_recv *parked_head, *parked_tail;
	unsigned int posted_recvs;		/* RECVs the HCA holds */
	unsigned int posted_sends;		/* signaled send-queue WRs not yet completed */
	bool disconnect_sent;
	bool send_with_inv;			/* the device really implements SEND_WITH_INV */
	struct nvt_poll_group *pg;		/* owns the CQ and the request slots */
	struct nvt_pg_watch cq_watch;
	bool cq_watched;			/* cq_watch is in q->pg's epoll set */
	/* Hand-offs between the main loop (CM, cm_id, memory) and the owner. */
	bool teardown_forwarded;		/* main loop only */
	struct nvt_pg_msg established_msg;	/* main -> owner */
	struct nvt_pg_msg teardown_msg;		/* main -> owner */
	struct nvt_pg_deferred gone_work;	/* owner, after its batch */
	struct nvt_pg_msg gone_msg;		/* owner -> main */
};

struct nvt_rdma_port {
	struct nvt_port *port;
	struct rdma_event_channel *channel;
	struct rdma_cm_id *listen_id;
	struct nvt_pg_watch cm_watch;
	struct nvt_rdma_queue *queues;
	unsigned int nr_queues;
};

static void nvt_rdma_queue_response(struct nvt_req *req);
static void nvt_rdma_delete_ctrl(struct nvt_ctrl *ctrl);
static int nvt_rdma_listen(struct nvt_port *port);
static void nvt_rdma_stop_listen(struct nvt_port *port);

const struct nvt_transport_ops nvt_rdma_transport_ops = {
	.name = "rdma",
	.trtype = NVMF_TRTYPE_RDMA,
	.flags = NVT_TR_KEYED_SGL | NVT_TR_INCAPSULE,
	.max_data_len = NVT_RDMA_MAX_DATA,
	.icdata_len = NVT_RDMA_ICDATA,
	.max_queue_size = NVT_RDMA_MAX_QUEUE_SIZE,
	.listen = nvt_rdma_listen,
	.stop_listen = nvt_rdma_stop_listen,
	.queue_response = nvt_rdma_queue_response,
	.delete_ctrl = nvt_rdma_delete_ctrl,
};

static int nvt_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- posting work requests ---- */

static int nvt_rdma_post_recv(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)rv->buf,
		.length = NVT_RDMA_CAPSULE,
		.lkey = q->recv_mr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = (uintptr_t)&rv->wr,
		.sg_list = &sge,
		.num_sge = 1,
	}, *bad;
	int ret;

	/* ibv_post_recv returns a positive errno. */
	ret = ibv_post_recv(q->cm_id->qp, &wr, &bad);
	if (ret)
		return -ret;
	q->posted_recvs++;
	return 0;
}

static void nvt_rdma_req_put(struct nvt_rdma_req *r)
{
	struct nvt_rdma_queue *q = r->queue;

	nvt_rdma_req_set_state(r, NVT_RDMA_REQ_FREE);
	r->recv = NULL;
	r->next_free = q->free_reqs;
	q->free_reqs = r;
}

static struct nvt_poll_group *nvt_rdma_main_pg(const struct nvt_rdma_queue *q)
{
	return q->rport->port->tgt->pg;
}

/* Ask the host to go away; teardown follows on the DISCONNECTED event. Owner thread only. */
static void nvt_rdma_queue_disconnect(struct nvt_rdma_queue *q)
{
	if (q->state == NVT_RDMA_Q_DEAD || q->disconnect_sent)
		return;
	q->disconnect_sent = true;
	q->state = NVT_RDMA_Q_DISCONNECTING;
	/* rdma_disconnect also moves the QP to the error state: posted work flushes. */
	rdma_disconnect(q->cm_id);
}

static int nvt_rdma_post_read(struct nvt_rdma_queue *q, struct nvt_rdma_req *r)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)r->data,
		.length = r->req.data_len,	/* what the command uses, never more */
		.lkey = q->data_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = (uintptr_t)&r->data_wr,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_READ,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = r->remote_addr, .rkey = r->rkey },
	}, *bad;
	int ret;

	r->data_wr.type = NVT_RDMA_WR_READ;
	ret = ibv_post_send(q->cm_id->qp, &wr, &bad);
	if (ret)
		return -ret;
	q->posted_sends++;
	return 0;
}

static void nvt_rdma_queue_response(struct nvt_req *req)
{
	struct nvt_rdma_req *r = container_of(req, struct nvt_rdma_req, req);
	struct nvt_rdma_queue *q = r->queue;
	struct ibv_sge cqe_sge = {
		.addr = (uintptr_t)r->cqe,
		.length = sizeof(*r->cqe),
		.lkey = q->cqe_mr->lkey,
	};
	struct ibv_sge data_sge = {
		.addr = (uintptr_t)r->data,
		.length = req->data_len,
		.lkey = q->data_mr->lkey,
	};
	struct ibv_send_wr send = {
		.wr_id = (uintptr_t)&r->send_wr,
		.sg_list = &cqe_sge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	}, write, *first = &send, *bad;
	int ret;

	/* A queue that is going away sends nothing: the slot is simply returned. */
	if (q->state != NVT_RDMA_Q_LIVE) {
		nvt_rdma_req_put(r);
		return;
	}
	/* The capsule buffer is free again: give it back to the host first. */
	ret = nvt_rdma_post_recv(q, r->recv);
	r->recv = NULL;
	if (ret)
		goto out_fail;

	if (!le16toh(r->cqe->status) && !nvt_req_is_write(req) && req->data_len) {
		/* Read data goes out ahead of the CQE on the same send queue. */
		memset(&write, 0, sizeof(write));
		write.wr_id = (uintptr_t)&r->data_wr;
		write.sg_list = &data_sge;
		write.num_sge = 1;
		write.opcode = IBV_WR_RDMA_WRITE;
		write.wr.rdma.remote_addr = r->remote_addr;
		write.wr.rdma.rkey = r->rkey;
		write.next = &send;
		r->data_wr.type = NVT_RDMA_WR_WRITE;
		first = &write;
	}
	/* Saves the host its own LOCAL_INV; optional, so only where it works. */
	if (r->invalidate && q->send_with_inv) {
		send.opcode = IBV_WR_SEND_WITH_INV;
		send.invalidate_rkey = r->rkey;
	}
	r->send_wr.type = NVT_RDMA_WR_SEND;
	nvt_rdma_req_set_state(r, NVT_RDMA_REQ_COMPLETING);
	ret = ibv_post_send(q->cm_id->qp, first, &bad);
	if (ret) {
		ret = -ret;
		goto out_fail;
	}
	q->posted_sends++;
	return;

out_fail:
	nvt_warn_ratelimited("qid %u: cannot post the response: %s", q->sq.qid, strerror(-ret));
	nvt_rdma_req_put(r);
	nvt_rdma_queue_disconnect(q);
}

/* ---- capsules ---- */

static void nvt_rdma_handle_capsule(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	struct nvt_rdma_req *r;
	uint16_t status;
	int ret;

	if (rv->byte_len < sizeof(struct nvt_sqe)) {
		nvt_warn_ratelimited("qid %u: %u-byte capsule is shorter than an SQE", q->sq.qid,
				     rv->byte_len);
		if (nvt_rdma_post_recv(q, rv))
			nvt_rdma_queue_disconnect(q);
		return;
	}
	r = q->free_reqs;
	if (!r) {
		/* The host sent more commands than its queue has entries. */
		nvt_warn_ratelimited("qid %u: host overran its %u-entry queue", q->sq.qid,
				     q->nr_reqs);
		nvt_rdma_queue_disconnect(q);
		return;
	}
	q->free_reqs = r->next_free;
	nvt_rdma_req_set_state(r, NVT_RDMA_REQ_NEW);
	r->recv = rv;
	r->req.cmd = (struct nvt_sqe *)rv->buf;
	r->req.cqe = r->cqe;
	r->req.iov = &r->iov;
	r->req.iov_cnt = 0;
	r->req.transfer_len = 0;

	if (!nvt_req_init(&r->req, &q->sq, &nvt_rdma_transport_ops))
		return;		/* completed with an error: the response is on its way */
	status = nvt_rdma_map_sgl(r, NVT_RDMA_ICDATA, q->sq.qid != 0);
	if (status) {
		nvt_rdma_req_set_state(r, NVT_RDMA_REQ_EXECUTING);
		nvt_req_complete(&r->req, status);
		return;
	}
	/* Host data not in the capsule is fetched first; a length mismatch fails in execute. */
	if (nvt_req_is_write(&r->req) && !r->in_capsule && r->req.data_len &&
	    nvt_req_transfer_ok(&r->req)) {
		nvt_rdma_req_set_state(r, NVT_RDMA_REQ_XFER_H2C);
		ret = nvt_rdma_post_read(q, r);
		if (ret) {
			nvt_warn_ratelimited("qid %u: cannot post RDMA READ: %s", q->sq.qid,
					     strerror(-ret));
			nvt_rdma_req_set_state(r, NVT_RDMA_REQ_EXECUTING);
			nvt_req_complete(&r->req, NVT_ST_DATA_XFER);
		}
		return;
	}
	nvt_rdma_req_set_state(r, NVT_RDMA_REQ_EXECUTING);
	nvt_req_execute(&r->req);
}

static void nvt_rdma_handle_wc(struct nvt_rdma_queue *q, struct ibv_wc *wc)
{
	struct nvt_rdma_wr *wr = (struct nvt_rdma_wr *)(uintptr_t)wc->wr_id;
	struct nvt_rdma_recv *rv;
	struct nvt_rdma_req *r;

	if (wc->status != IBV_WC_SUCCESS && wc->status != IBV_WC_WR_FLUSH_ERR)
		nvt_warn_ratelimited("qid %u: work completion error: %s", q->sq.qid,
				     ibv_wc_status_str(wc->status));

	switch (wr->type) {
	case NVT_RDMA_WR_RECV:
		rv = container_of(wr, struct nvt_rdma_recv, wr);
		q->posted_recvs--;
		if (wc->status != IBV_WC_SUCCESS) {
			nvt_rdma_queue_disconnect(q);
			return;
		}
		rv->byte_len = wc->byte_len;
		if (q->state == NVT_RDMA_Q_CONNECTING) {
			/* Responses cannot go out before ESTABLISHED: park the capsule. */
			rv->next = NULL;
			if (q->parked_tail)
				q->parked_tail->next = rv;
			else
				q->parked_head = rv;
			q->parked_tail = rv;
			return;
		}
		if (q->state == NVT_RDMA_Q_LIVE)
			nvt_rdma_handle_capsule(q, rv);
		return;
	case NVT_RDMA_WR_READ:
		r = container_of(wr, struct nvt_rdma_req, data_wr);
		q->posted_sends--;
		if (wc->status != IBV_WC_SUCCESS || q->state != NVT_RDMA_Q_LIVE) {
			nvt_rdma_req_put(r);
			nvt_rdma_queue_disconnect(q);
			return;
		}
		nvt_rdma_req_set_state(r, NVT_RDMA_REQ_EXECUTING);
		nvt_req_execute(&r->req);
		return;
	case NVT_RDMA_WR_WRITE:
		/* Unsignaled: seen only when it failed; the SEND behind it reports too. */
		nvt_rdma_queue_disconnect(q);
		return;
	case NVT_RDMA_WR_SEND:
		r = container_of(wr, struct nvt_rdma_req, send_wr);
		q->posted_sends--;
		nvt_rdma_req_put(r);
		if (wc->status != IBV_WC_SUCCESS)
			nvt_rdma_queue_disconnect(q);
		return;
	}
}

/* Reap everything the CQ holds. Return: completions handled. */
static unsigned int nvt_rdma_poll_cq(struct nvt_rdma_queue *q)
{
	struct ibv_wc wc[NVT_RDMA_CQ_BATCH];
	unsigned int total = 0;
	int n;

	do {
		n = ibv_poll_cq(q->cq, NVT_RDMA_CQ_BATCH, wc);
		for (int i = 0; i < n; i++)
			nvt_rdma_handle_wc(q, &wc[i]);
		total += n > 0 ? (unsigned int)n : 0;
	} while (n == NVT_RDMA_CQ_BATCH && q->state != NVT_RDMA_Q_DEAD);
	return total;
}

#define NVT_RDMA_SPIN_IDLE_NS	(50 * 1000)	/* keep polling this long after the last completion */
#define NVT_RDMA_SPIN_MAX_NS	(500 * 1000)	/* and never longer in one go: other queues wait */

static void nvt_rdma_cq_ready(struct nvt_pg_watch *w)
{
	struct nvt_rdma_queue *q = container_of(w, struct nvt_rdma_queue, cq_watch);
	uint64_t now, idle_until, stop_at;
	struct ibv_cq *cq;
	void *ctx;

	/* A stale event for a queue torn down earlier in this batch. */
	if (q->state == NVT_RDMA_Q_DEAD)
		return;
	if (ibv_get_cq_event(q->channel, &cq, &ctx) == 0)
		ibv_ack_cq_events(cq, 1);
	/*
	 * Under load the next completion is moments away: polling for it costs
	 * less than going back to sleep (re-arm, epoll, the channel's read), so
	 * spin while completions keep coming, then re-arm.
	 */
	now = nvt_now_ns();
	idle_until = now + NVT_RDMA_SPIN_IDLE_NS;
	stop_at = now + NVT_RDMA_SPIN_MAX_NS;
	while (q->state != NVT_RDMA_Q_DEAD) {
		if (nvt_rdma_poll_cq(q))
			idle_until = nvt_now_ns() + NVT_RDMA_SPIN_IDLE_NS;
		now = nvt_now_ns();
		if (now >= idle_until || now >= stop_at)
			break;
	}
	if (q->state == NVT_RDMA_Q_DEAD)
		return;
	/* Re-arm before the last poll so a completion between the two is not missed. */
	ibv_req_notify_cq(q->cq, 0);
	nvt_rdma_poll_cq(q);
}

/* ---- queue life cycle ---- */

static void nvt_rdma_queue_free(struct nvt_rdma_queue *q)
{
	free(q->reqs);
	free(q->recvs);
	free(q->recv_bufs);
	free(q->cqes);
	free(q->data_bufs);
	free(q->md_bufs);
	free(q);
}


/* Release verbs resources (reverse order of creation); accepts partial queues. */
static void nvt_rdma_queue_destroy_verbs(struct nvt_rdma_queue *q)
{
	if (q->cm_id && q->cm_id->qp)
		rdma_destroy_qp(q->cm_id);
	/* The watch itself stays callable: an event for it may still be in this batch. */
	if (q->cq_watched) {
		nvt_poll_group_del(q->pg, &q->cq_watch);
		q->cq_watched = false;
	}
	if (q->cq)
		ibv_destroy_cq(q->cq);
	if (q->channel)
		ibv_destroy_comp_channel(q->channel);
	if (q->data_mr)
		ibv_dereg_mr(q->data_mr);
	if (q->cqe_mr)
		ibv_dereg_mr(q->cqe_mr);
	if (q->recv_mr)
		ibv_dereg_mr(q->recv_mr);
	if (q->pd)
		ibv_dealloc_pd(q->pd);
	q->cq = NULL;
	q->channel = NULL;
	q->data_mr = q->cqe_mr = q->recv_mr = NULL;
	q->pd = NULL;
}

/*
 * Reap flush completions until every posted send-queue WR is back (bounded):
 * those hold request slots. RECVs hold only queue-owned buffers and go with
 * the QP; rxe does not flush them on error anyway.
 */
static void nvt_rdma_queue_drain(struct nvt_rdma_queue *q)
{
	uint64_t deadline = nvt_now_ns() + NVT_RDMA_DRAIN_MS * 1000000ull;

	while (q->posted_sends && nvt_now_ns() < deadline) {
		struct ibv_wc wc[NVT_RDMA_CQ_BATCH];
		int n = ibv_poll_cq(q->cq, NVT_RDMA_CQ_BATCH, wc);

		for (int i = 0; i < n; i++)
			nvt_rdma_handle_wc(q, &wc[i]);
		if (!n)
			usleep(1000);
	}
	if (q->posted_sends)
		nvt_warn("qid %u: %u sends never flushed", q->sq.qid, q->posted_sends);
}

static void nvt_rdma_queue_unlink(struct nvt_rdma_queue *q)
{
	for (struct nvt_rdma_queue **pp = &q->rport->queues; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			q->rport->nr_queues--;
			return;
		}
	}
}

/* Main loop: the owner is done with the queue; the cm_id and the memory go. */
static void nvt_rdma_queue_gone(struct nvt_rdma_queue *q)
{
	rdma_destroy_id(q->cm_id);
	q->cm_id = NULL;
	nvt_rdma_queue_unlink(q);
	nvt_rdma_queue_free(q);
}

static void nvt_rdma_queue_gone_msg(struct nvt_pg_msg *m)
{
	nvt_rdma_queue_gone(container_of(m, struct nvt_rdma_queue, gone_msg));
}

/* Owner, after the batch in which the queue died: stale events for it have run. */
static void nvt_rdma_queue_gone_deferred(struct nvt_pg_deferred *d)
{
	struct nvt_rdma_queue *q = container_of(d, struct nvt_rdma_queue, gone_work);

	if (q->pg == nvt_rdma_main_pg(q)) {
		nvt_rdma_queue_gone(q);
		return;
	}
	q->gone_msg.fn = nvt_rdma_queue_gone_msg;
	nvt_poll_group_send(nvt_rdma_main_pg(q), &q->gone_msg);
}

/*
 * The end of a queue, on its owner's thread: QP to error, the core lets go
 * of it (losing the admin queue ends the controller), flushed work is
 * reaped, verbs resources released; then the main loop destroys the cm_id
 * and frees the memory.
 */
static void nvt_rdma_queue_teardown(struct nvt_rdma_queue *q)
{
	if (q->state == NVT_RDMA_Q_DEAD)
		return;
	nvt_dbg("qid %u: teardown", q->sq.qid);
	if (!q->disconnect_sent) {
		q->disconnect_sent = true;
		rdma_disconnect(q->cm_id);
	}
	q->state = NVT_RDMA_Q_DISCONNECTING;
	nvt_sq_destroy(&q->sq);
	nvt_rdma_queue_drain(q);
	q->state = NVT_RDMA_Q_DEAD;
	nvt_rdma_queue_destroy_verbs(q);
	q->gone_work.fn = nvt_rdma_queue_gone_deferred;
	nvt_poll_group_defer(q->pg, &q->gone_work);
}

static void nvt_rdma_queue_teardown_msg(struct nvt_pg_msg *m)
{
	nvt_rdma_queue_teardown(container_of(m, struct nvt_rdma_queue, teardown_msg));
}

/* Main loop: hand the teardown to the queue's owner, once. */
static void nvt_rdma_queue_forward_teardown(struct nvt_rdma_queue *q)
{
	if (q->teardown_forwarded)
		return;
	q->teardown_forwarded = true;
	if (q->pg == nvt_rdma_main_pg(q)) {
		nvt_rdma_queue_teardown(q);
		return;
	}
	q->teardown_msg.fn = nvt_rdma_queue_teardown_msg;
	nvt_poll_group_send(q->pg, &q->teardown_msg);
}

/*
 * Main loop: ask the host to drop a queue that may belong to another
 * thread. Only the cm_id is touched: the owner cannot destroy the QP
 * meanwhile, because its teardown starts only when this loop forwards it.
 * The DISCONNECTED event brings the teardown.
 */
static void nvt_rdma_queue_request_disconnect(struct nvt_rdma_queue *q)
{
	if (q->teardown_forwarded)
		return;
	if (q->pg == nvt_rdma_main_pg(q))
		nvt_rdma_queue_disconnect(q);
	else
		rdma_disconnect(q->cm_id);
}

static void nvt_rdma_disconnect_sq(struct nvt_sq *sq, void *arg)
{
	nvt_rdma_queue_request_disconnect(container_of(sq, struct nvt_rdma_queue, sq));
}

static void nvt_rdma_delete_ctrl(struct nvt_ctrl *ctrl)
{
	nvt_ctrl_for_each_sq(ctrl, nvt_rdma_disconnect_sq, NULL);
}

static int nvt_rdma_queue_alloc_buffers(struct nvt_rdma_queue *q)
{
	/* Everything the queue will ever use, sized from the negotiated depths. */
	q->recvs = calloc(q->recv_depth, sizeof(*q->recvs));
	q->reqs = calloc(q->nr_reqs, sizeof(*q->reqs));
	q->recv_bufs = calloc(q->recv_depth, NVT_RDMA_CAPSULE);
	q->cqes = calloc(q->nr_reqs, sizeof(*q->cqes));
	q->data_bufs = aligned_alloc(4096, (size_t)q->nr_reqs * NVT_RDMA_MAX_DATA);
	q->md_bufs = calloc(q->nr_reqs, NVT_MD_BUF_LEN(NVT_RDMA_MAX_DATA));
	if (!q->recvs || !q->reqs || !q->recv_bufs || !q->cqes || !q->data_bufs || !q->md_bufs)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->recv_depth; i++) {
		q->recvs[i].wr.type = NVT_RDMA_WR_RECV;
		q->recvs[i].queue = q;
		q->recvs[i].buf = q->recv_bufs + (size_t)i * NVT_RDMA_CAPSULE;
	}
	for (uint32_t i = q->nr_reqs; i-- > 0;) {
		struct nvt_rdma_req *r = &q->reqs[i];

		r->queue = q;
		r->cqe = &q->cqes[i];
		r->data = q->data_bufs + (size_t)i * NVT_RDMA_MAX_DATA;
		r->req.md_buf = q->md_bufs + (size_t)i * NVT_MD_BUF_LEN(NVT_RDMA_MAX_DATA);
		r->req.md_buf_len = NVT_MD_BUF_LEN(NVT_RDMA_MAX_DATA);
		r->state = NVT_RDMA_REQ_FREE;
		r->next_free = q->free_reqs;
		q->free_reqs = r;
	}
	return 0;
}

static int nvt_rdma_queue_create_verbs(struct nvt_rdma_queue *q)
{
	struct ibv_context *verbs = q->cm_id->verbs;
	struct nvt_poll_group *pg = q->pg;
	uint32_t send_wrs = 2 * q->nr_reqs + 1;	/* READ or WRITE + SEND per slot */
	struct ibv_qp_init_attr qp_attr;
	int ret;

	q->pd = ibv_alloc_pd(verbs);
	if (!q->pd)
		return -ENOMEM;
	q->recv_mr = ibv_reg_mr(q->pd, q->recv_bufs, (size_t)q->recv_depth * NVT_RDMA_CAPSULE,
				IBV_ACCESS_LOCAL_WRITE);
	q->cqe_mr = ibv_reg_mr(q->pd, q->cqes, q->nr_reqs * sizeof(*q->cqes), 0);
	q->data_mr = ibv_reg_mr(q->pd, q->data_bufs, (size_t)q->nr_reqs * NVT_RDMA_MAX_DATA,
				IBV_ACCESS_LOCAL_WRITE);
	if (!q->recv_mr || !q->cqe_mr || !q->data_mr)
		return errno ? -errno : -ENOMEM;
	q->channel = ibv_create_comp_channel(verbs);
	if (!q->channel)
		return errno ? -errno : -ENOMEM;
	ret = nvt_set_nonblock(q->channel->fd);
	if (ret)
		return ret;
	q->cq = ibv_create_cq(verbs, (int)(q->recv_depth + send_wrs), q, q->channel, 0);
	if (!q->cq)
		return errno ? -errno : -ENOMEM;
	ret = ibv_req_notify_cq(q->cq, 0);
	if (ret)
		return -ret;
	q->cq_watch.fd = q->channel->fd;
	q->cq_watch.fn = nvt_rdma_cq_ready;
	ret = nvt_poll_group_add(pg, &q->cq_watch);
	if (ret)
		return ret;
	q->cq_watched = true;

	memset(&qp_attr, 0, sizeof(qp_attr));
	qp_attr.qp_context = q;
	qp_attr.send_cq = q->cq;
	qp_attr.recv_cq = q->cq;
	qp_attr.qp_type = IBV_QPT_RC;
	qp_attr.cap.max_send_wr = send_wrs;
	qp_attr.cap.max_recv_wr = q->recv_depth;
	qp_attr.cap.max_send_sge = 1;
	qp_attr.cap.max_recv_sge = 1;
	if (rdma_create_qp(q->cm_id, q->pd, &qp_attr))
		return -errno;
	for (uint32_t i = 0; i < q->recv_depth; i++) {
		ret = nvt_rdma_post_recv(q, &q->recvs[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Soft-RoCE reports MEM_MGT_EXTENSIONS but does not carry SEND_WITH_INV
 * correctly; it and other software devices show vendor id 0 or FFFFFFh
 * (HOST-CONTRACT §4, SPDK's workaround). The host invalidates by itself then.
 */
static bool nvt_rdma_send_with_inv_works(const struct ibv_device_attr *dev)
{
	return (dev->device_cap_flags & IBV_DEVICE_MEM_MGT_EXTENSIONS) &&
	       dev->vendor_id != 0 && dev->vendor_id != 0xffffff;
}

static void nvt_rdma_reject(struct rdma_cm_id *id, uint16_t sts)
{
	struct nvt_rdma_cm_rej rej = { .recfmt = 0, .sts = htole16(sts) };

	rdma_reject(id, &rej, sizeof(rej));
}

/* CONNECT_REQUEST: validate, build the queue, accept. Return: true if @id must be destroyed. */
static bool nvt_rdma_handle_connect(struct nvt_rdma_port *rp, struct rdma_cm_event *ev)
{
	struct rdma_cm_id *id = ev->id;
	struct nvt_rdma_cm_params params;
	struct nvt_rdma_cm_rep rep;
	struct rdma_conn_param accept;
	struct ibv_device_attr dev;
	struct nvt_rdma_queue *q;
	int sts, ret;

	sts = nvt_rdma_parse_cm_req(ev->param.conn.private_data,
				    ev->param.conn.private_data_len, &params);
	if (sts) {
		nvt_warn_ratelimited("rejecting a connect request: private data status %d", sts);
		nvt_rdma_reject(id, (uint16_t)sts);
		return true;
	}
	if (ibv_query_device(id->verbs, &dev)) {
		nvt_rdma_reject(id, NVT_RDMA_CM_NO_RSC);
		return true;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		nvt_rdma_reject(id, NVT_RDMA_CM_NO_RSC);
		return true;
	}
	q->rport = rp;
	q->cm_id = id;
	q->state = NVT_RDMA_Q_CONNECTING;
	q->recv_depth = params.recv_depth;
	q->nr_reqs = params.recv_depth;
	q->pg = nvt_target_io_pg(rp->port->tgt, params.qid);
	q->send_with_inv = nvt_rdma_send_with_inv_works(&dev);
	id->context = q;
	nvt_sq_init(&q->sq, rp->port->tgt, &nvt_rdma_transport_ops, rp->port, params.qid,
		    (uint16_t)params.sq_size);

	ret = nvt_rdma_queue_alloc_buffers(q);
	if (!ret)
		ret = nvt_rdma_queue_create_verbs(q);
	if (ret) {
		nvt_warn("qid %u: cannot create the queue: %s", params.qid, strerror(-ret));
		goto out_reject;
	}

	memset(&rep, 0, sizeof(rep));
	rep.crqsize = htole16((uint16_t)q->recv_depth);
	memset(&accept, 0, sizeof(accept));
	accept.private_data = &rep;
	accept.private_data_len = sizeof(rep);
	accept.rnr_retry_count = 7;
	accept.flow_control = 1;
	/* Our RDMA READs are bounded by what the host lets us have outstanding. */
	accept.initiator_depth = ev->param.conn.initiator_depth < dev.max_qp_init_rd_atom ?
				 ev->param.conn.initiator_depth : (uint8_t)dev.max_qp_init_rd_atom;
	accept.responder_resources = ev->param.conn.responder_resources < dev.max_qp_rd_atom ?
				     ev->param.conn.responder_resources : (uint8_t)dev.max_qp_rd_atom;
	if (rdma_accept(id, &accept)) {
		nvt_warn("qid %u: rdma_accept: %s", params.qid, strerror(errno));
		goto out_destroy;
	}
	q->next = rp->queues;
	rp->queues = q;
	rp->nr_queues++;
	nvt_dbg("qid %u: accepted, sq %u, recv %u", params.qid, params.sq_size, q->recv_depth);
	return false;

out_reject:
	nvt_rdma_reject(id, NVT_RDMA_CM_NO_RSC);
out_destroy:
	q->state = NVT_RDMA_Q_DEAD;
	nvt_rdma_queue_destroy_verbs(q);
	id->context = NULL;
	nvt_rdma_queue_free(q);
	return true;
}

static void nvt_rdma_queue_established_msg(struct nvt_pg_msg *m);

/* Main loop: ESTABLISHED reaches the queue's owner. */
static void nvt_rdma_queue_forward_established(struct nvt_rdma_queue *q)
{
	if (q->teardown_forwarded)
		return;
	q->established_msg.fn = nvt_rdma_queue_established_msg;
	if (q->pg == nvt_rdma_main_pg(q))
		q->established_msg.fn(&q->established_msg);
	else
		nvt_poll_group_send(q->pg, &q->established_msg);
}

static void nvt_rdma_queue_established(struct nvt_rdma_queue *q)
{
	if (q->state != NVT_RDMA_Q_CONNECTING)
		return;
	q->state = NVT_RDMA_Q_LIVE;
	while (q->parked_head && q->state == NVT_RDMA_Q_LIVE) {
		struct nvt_rdma_recv *rv = q->parked_head;

		q->parked_head = rv->next;
		if (!q->parked_head)
			q->parked_tail = NULL;
		nvt_rdma_handle_capsule(q, rv);
	}
}

static void nvt_rdma_queue_established_msg(struct nvt_pg_msg *m)
{
	nvt_rdma_queue_established(container_of(m, struct nvt_rdma_queue, established_msg));
}

static void nvt_rdma_cm_ready(struct nvt_pg_watch *w)
{
	struct nvt_rdma_port *rp = container_of(w, struct nvt_rdma_port, cm_watch);
	struct rdma_cm_event *ev;

	while (rdma_get_cm_event(rp->channel, &ev) == 0) {
		struct nvt_rdma_queue *q = ev->id != rp->listen_id ? ev->id->context : NULL;
		struct nvt_rdma_queue *teardown = NULL;
		struct rdma_cm_id *destroy = NULL;

		nvt_dbg("cm event %s", rdma_event_str(ev->event));
		switch (ev->event) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			if (nvt_rdma_handle_connect(rp, ev))
				destroy = ev->id;
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			if (q)
				nvt_rdma_queue_forward_established(q);
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_REJECTED:
			if (q)
				teardown = q;
			else if (ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL) {
				nvt_err("listener %s:%u: RDMA device removed",
					rp->port->cfg.address, rp->port->cfg.port);
			}
			break;
		default:
			break;
		}
		/* Every event is acknowledged before its id may be destroyed. */
		rdma_ack_cm_event(ev);
		if (destroy)
			rdma_destroy_id(destroy);
		if (teardown)
			nvt_rdma_queue_forward_teardown(teardown);
	}
}

/* ---- listeners ---- */

static int nvt_rdma_sockaddr(const struct nvt_listener_cfg *cfg, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (cfg->family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(cfg->port);
		return inet_pton(AF_INET6, cfg->address, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	in->sin_family = AF_INET;
	in->sin_port = htons(cfg->port);
	return inet_pton(AF_INET, cfg->address, &in->sin_addr) == 1 ? 0 : -EINVAL;
}

static void nvt_rdma_port_free(struct nvt_rdma_port *rp)
{
	if (rp->cm_watch.fn)
		nvt_poll_group_del(rp->port->tgt->pg, &rp->cm_watch);
	if (rp->listen_id)
		rdma_destroy_id(rp->listen_id);
	if (rp->channel)
		rdma_destroy_event_channel(rp->channel);
	free(rp);
}

static bool nvt_rdma_have_device(void)
{
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);

	if (list)
		ibv_free_device_list(list);
	return n > 0;
}

static int nvt_rdma_listen(struct nvt_port *port)
{
	struct sockaddr_storage ss;
	struct nvt_rdma_port *rp;
	int ret;

	if (!nvt_rdma_have_device()) {
		nvt_warn("listener %s:%u: this machine has no RDMA device; for soft-RoCE on a "
			 "NIC: modprobe rdma_rxe && rdma link add rxe0 type rxe netdev <ifname>",
			 port->cfg.address, port->cfg.port);
		return -ENODEV;
	}
	ret = nvt_rdma_sockaddr(&port->cfg, &ss);
	if (ret)
		return ret;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->port = port;
	rp->channel = rdma_create_event_channel();
	if (!rp->channel) {
		ret = -errno;
		goto out_free;
	}
	ret = nvt_set_nonblock(rp->channel->fd);
	if (ret)
		goto out_free;
	if (rdma_create_id(rp->channel, &rp->listen_id, rp, RDMA_PS_TCP)) {
		ret = -errno;
		goto out_free;
	}
	if (rdma_bind_addr(rp->listen_id, (struct sockaddr *)&ss) ||
	    rdma_listen(rp->listen_id, NVT_RDMA_BACKLOG)) {
		ret = -errno;
		goto out_free;
	}
	rp->cm_watch.fd = rp->channel->fd;
	rp->cm_watch.fn = nvt_rdma_cm_ready;
	ret = nvt_poll_group_add(port->tgt->pg, &rp->cm_watch);
	if (ret) {
		rp->cm_watch.fn = NULL;
		goto out_free;
	}
	port->priv = rp;
	return 0;

out_free:
	nvt_rdma_port_free(rp);
	return ret;
}

/* Main loop: run events and messages until the port has no queues, or time is up. */
static void nvt_rdma_port_wait_queues(struct nvt_rdma_port *rp, unsigned int ms)
{
	uint64_t deadline = nvt_now_ns() + ms * 1000000ull;

	while (rp->nr_queues && nvt_now_ns() < deadline)
		nvt_poll_group_poll(rp->port->tgt->pg, 100);
}

static void nvt_rdma_stop_listen(struct nvt_port *port)
{
	struct nvt_rdma_port *rp = port->priv;

	if (!rp)
		return;
	/* No new hosts; ask the connected ones to leave and wait for them. */
	rdma_destroy_id(rp->listen_id);
	rp->listen_id = NULL;
	for (struct nvt_rdma_queue *q = rp->queues; q; q = q->next)
		nvt_rdma_queue_request_disconnect(q);
	nvt_rdma_port_wait_queues(rp, NVT_RDMA_STOP_MS);
	/* Hosts that never answered: tear their queues down without them. */
	for (struct nvt_rdma_queue *q = rp->queues; q; q = q->next) {
		nvt_warn("qid %u: host did not disconnect in time", q->sq.qid);
		nvt_rdma_queue_forward_teardown(q);
	}
	nvt_rdma_port_wait_queues(rp, NVT_RDMA_DRAIN_MS);
	if (rp->nr_queues) {
		/* Their memory stays: freeing it under a stuck owner would be worse. */
		nvt_err("%u queue(s) still busy at shutdown", rp->nr_queues);
		return;
	}
	nvt_rdma_port_free(rp);
	port->priv = NULL;
}
