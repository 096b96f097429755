/* SPDX-License-Identifier: BSD-3-Clause */
/* The loop transport: host and target in one process, through exactly the core path RDMA uses. */
#define NVT_LOG_PREFIX "loop: "
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/log.h"
#include "nvt/util.h"
#include "nvt/loop.h"
#include "nvt/poll_group.h"

/* One preallocated command slot: the capsule, the response and the generic request. */
struct nvt_loop_req {
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	struct iovec iov[NVT_LOOP_MAX_IOV];
	uint8_t md_buf[NVT_MD_BUF_LEN(NVT_LOOP_MAX_DATA)];
	nvt_loop_done_fn done;
	void *arg;
	struct nvt_loop_req *next_free;
	struct nvt_loop_queue *queue;
	struct nvt_req req;
};

struct nvt_loop_queue {
	struct nvt_sq sq;
	struct nvt_target *tgt;
	struct nvt_poll_group *pg;	/* I/O queues: the caller's thread drives it */
	struct nvt_loop_req *slots;
	struct nvt_loop_req *free_list;
	uint16_t depth;
	unsigned int outstanding;
	bool dead;		/* the target deleted the controller */
};

static void nvt_loop_queue_response(struct nvt_req *req)
{
	struct nvt_loop_req *lr = container_of(req, struct nvt_loop_req, req);
	struct nvt_loop_queue *q = lr->queue;

	lr->done(lr->arg, &lr->cqe);
	lr->next_free = q->free_list;
	q->free_list = lr;
	q->outstanding--;
}

static void nvt_loop_delete_ctrl(struct nvt_ctrl *ctrl)
{
	/* Loop queues live on the caller's thread, so the table is read unlocked:
	 * nvt_sq_destroy() takes the controller's lock itself. */
	for (unsigned int qid = 0; qid <= ctrl->max_qid; qid++) {
		struct nvt_sq *sq = ctrl->sqs[qid];
		struct nvt_loop_queue *q;

		if (!sq)
			continue;
		q = container_of(sq, struct nvt_loop_queue, sq);
		q->dead = true;
		nvt_sq_destroy(sq);
	}
}

const struct nvt_transport_ops nvt_loop_transport_ops = {
	.name = "loop",
	.trtype = NVMF_TRTYPE_LOOP,
	.flags = 0,
	.max_data_len = NVT_LOOP_MAX_DATA,
	.icdata_len = 0,
	.max_queue_size = NVT_MAX_QUEUE_SIZE,
	.queue_response = nvt_loop_queue_response,
	.delete_ctrl = nvt_loop_delete_ctrl,
};

int nvt_loop_queue_create(struct nvt_target *tgt, uint16_t qid, uint16_t depth,
			  struct nvt_loop_queue **out)
{
	struct nvt_loop_queue *q;

	if (depth < 2 || depth > NVT_MAX_QUEUE_SIZE)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	/* Every slot the queue will ever use, allocated now: none on the I/O path. */
	q->slots = calloc(depth, sizeof(*q->slots));
	if (!q->slots) {
		free(q);
		return -ENOMEM;
	}
	q->depth = depth;
	for (int i = depth - 1; i >= 0; i--) {
		struct nvt_loop_req *lr = &q->slots[i];

		lr->queue = q;
		lr->req.cmd = &lr->sqe;
		lr->req.cqe = &lr->cqe;
		lr->req.iov = lr->iov;
		lr->req.md_buf = lr->md_buf;
		lr->req.md_buf_len = sizeof(lr->md_buf);
		lr->next_free = q->free_list;
		q->free_list = lr;
	}
	q->tgt = tgt;
	/*
	 * An I/O queue is its own poll group, driven by whoever submits to it
	 * (nvt_loop_exec, nvt_loop_queue_poll): namespace channels live on it,
	 * and backends complete there. The admin queue does no block I/O.
	 */
	if (qid) {
		int ret = nvt_target_get_pg(tgt, &q->pg);

		if (ret) {
			free(q->slots);
			free(q);
			return ret;
		}
	}
	nvt_sq_init(&q->sq, tgt, &nvt_loop_transport_ops, NULL, q->pg, qid, depth);
	*out = q;
	return 0;
}

int nvt_loop_queue_poll(struct nvt_loop_queue *q, int timeout_ms)
{
	return q->pg ? nvt_poll_group_poll(q->pg, timeout_ms) : 0;
}

void nvt_loop_queue_destroy(struct nvt_loop_queue *q)
{
	if (!q)
		return;
	/* Held AERs come back through queue_response during this call. */
	nvt_sq_destroy(&q->sq);
	/* What a backend still holds completes first: nothing is freed under it. */
	while (q->outstanding && q->pg && nvt_poll_group_poll(q->pg, 100) >= 0)
		;
	if (q->outstanding)
		nvt_err("qid %u freed with %u commands outstanding", q->sq.qid,
			q->outstanding);
	if (q->pg)
		nvt_target_put_pg(q->tgt, q->pg);
	free(q->slots);
	free(q);
}

unsigned int nvt_loop_queue_outstanding(const struct nvt_loop_queue *q)
{
	return q->outstanding;
}

bool nvt_loop_queue_live(const struct nvt_loop_queue *q)
{
	return !q->dead && q->sq.state != NVT_SQ_DISCONNECTED;
}

static int nvt_loop_start(struct nvt_loop_queue *q, const struct nvt_sqe *sqe,
			  const struct iovec *iov, unsigned int iovcnt,
			  nvt_loop_done_fn done, void *arg, bool hold,
			  struct nvt_loop_held **held)
{
	struct nvt_loop_req *lr;
	uint64_t len = 0;

	if (q->dead)
		return -ENOTCONN;
	if (iovcnt > NVT_LOOP_MAX_IOV)
		return -EINVAL;
	lr = q->free_list;
	if (!lr)
		return -EBUSY;
	q->free_list = lr->next_free;
	q->outstanding++;

	lr->sqe = *sqe;
	for (unsigned int i = 0; i < iovcnt; i++) {
		lr->iov[i] = iov[i];
		len += iov[i].iov_len;
	}
	lr->req.iov_cnt = iovcnt;
	lr->req.transfer_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	lr->done = done;
	lr->arg = arg;
	memset(&lr->cqe, 0, sizeof(lr->cqe));

	if (held)
		*held = NULL;
	if (!nvt_req_init(&lr->req, &q->sq, &nvt_loop_transport_ops)) {
		/* Failed at once (Invalid Namespace): the group's messages still run, as below. */
		if (q->pg)
			nvt_poll_group_run_pending(q->pg);
		return 0;
	}
	if (hold) {
		/* Where RDMA would READ the host's data: parsed, not executed yet. */
		*held = (struct nvt_loop_held *)lr;
		return 0;
	}
	nvt_req_execute(&lr->req);
	/* Other threads' requests to this queue's group (range lock drains, wake-ups): no sleep. */
	if (q->pg)
		nvt_poll_group_run_pending(q->pg);
	return 0;
}

int nvt_loop_submit(struct nvt_loop_queue *q, const struct nvt_sqe *sqe,
		    const struct iovec *iov, unsigned int iovcnt,
		    nvt_loop_done_fn done, void *arg)
{
	return nvt_loop_start(q, sqe, iov, iovcnt, done, arg, false, NULL);
}

int nvt_loop_submit_held(struct nvt_loop_queue *q, const struct nvt_sqe *sqe,
			 const struct iovec *iov, unsigned int iovcnt,
			 nvt_loop_done_fn done, void *arg, struct nvt_loop_held **held)
{
	return nvt_loop_start(q, sqe, iov, iovcnt, done, arg, true, held);
}

void nvt_loop_release(struct nvt_loop_held *held)
{
	struct nvt_loop_req *lr = (struct nvt_loop_req *)held;

	nvt_req_execute(&lr->req);
}

struct nvt_loop_wait {
	struct nvt_cqe *cqe;
	bool done;
};

static void nvt_loop_exec_done(void *arg, const struct nvt_cqe *cqe)
{
	struct nvt_loop_wait *w = arg;

	*w->cqe = *cqe;
	w->done = true;
}

int nvt_loop_exec(struct nvt_loop_queue *q, const struct nvt_sqe *sqe, void *buf,
		  size_t len, struct nvt_cqe *cqe)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct nvt_loop_wait w = { .cqe = cqe, .done = false };
	int ret;

	ret = nvt_loop_submit(q, sqe, &iov, buf ? 1 : 0, nvt_loop_exec_done, &w);
	if (ret)
		return ret;
	/* Backends complete on the queue's poll group: drive it until ours is back. */
	while (!w.done && q->pg && nvt_poll_group_poll(q->pg, 1000) >= 0)
		;
	if (!w.done)
		return -EINPROGRESS;
	return le16toh(cqe->status) >> 1;
}

static void nvt_loop_fill_fabrics(struct nvt_sqe *sqe, uint8_t fctype)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->fabrics.opcode = NVT_OPC_FABRICS;
	sqe->fabrics.fctype = fctype;
}

int nvt_loop_connect_queue(struct nvt_loop_queue *q, uint16_t qid, uint16_t sqsize,
			   const char *subnqn, const char *hostnqn, uint16_t cntlid,
			   uint32_t kato_ms, struct nvt_cqe *cqe)
{
	struct nvmf_connect_data d;
	struct nvt_sqe sqe;

	nvt_loop_fill_fabrics(&sqe, NVT_FCTYPE_CONNECT);
	sqe.connect.qid = htole16(qid);
	sqe.connect.sqsize = htole16(sqsize);
	sqe.connect.kato = htole32(qid ? 0 : kato_ms);
	memset(&d, 0, sizeof(d));
	/* A host id derived from the NQN, as nvme-cli derives one from the machine. */
	for (size_t i = 0; hostnqn[i]; i++)
		d.hostid[i % 16] ^= (uint8_t)hostnqn[i];
	d.cntlid = htole16(cntlid);
	nvt_strscpy(d.subsysnqn, subnqn, sizeof(d.subsysnqn));
	nvt_strscpy(d.hostnqn, hostnqn, sizeof(d.hostnqn));
	return nvt_loop_exec(q, &sqe, &d, sizeof(d), cqe);
}

int nvt_loop_prop_get(struct nvt_loop_queue *q, uint32_t offset, bool is8, uint64_t *val)
{
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	int ret;

	nvt_loop_fill_fabrics(&sqe, NVT_FCTYPE_PROP_GET);
	sqe.prop.attrib = is8 ? 1 : 0;
	sqe.prop.offset = htole32(offset);
	ret = nvt_loop_exec(q, &sqe, NULL, 0, &cqe);
	*val = le64toh(cqe.result.u64);
	return ret;
}

int nvt_loop_prop_set(struct nvt_loop_queue *q, uint32_t offset, uint64_t val)
{
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_loop_fill_fabrics(&sqe, NVT_FCTYPE_PROP_SET);
	sqe.prop.offset = htole32(offset);
	sqe.prop.value = htole64(val);
	return nvt_loop_exec(q, &sqe, NULL, 0, &cqe);
}

/* CC for enable: NVM command set, 4 KiB pages, round robin, 64/16-byte entries. */
#define NVT_LOOP_CC_ENABLE	((6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT) | 1u)

int nvt_loop_ctrl_connect(struct nvt_target *tgt, const char *subnqn, const char *hostnqn,
			  unsigned int nr_io, uint16_t depth, uint32_t kato_ms,
			  struct nvt_loop_ctrl *ctrl)
{
	return nvt_loop_ctrl_connect_port(tgt, NULL, subnqn, hostnqn, nr_io, depth, kato_ms, ctrl);
}

int nvt_loop_ctrl_connect_port(struct nvt_target *tgt, struct nvt_port *port, const char *subnqn,
			       const char *hostnqn, unsigned int nr_io, uint16_t depth,
			       uint32_t kato_ms, struct nvt_loop_ctrl *ctrl)
{
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint64_t csts = 0;
	int ret;

	memset(ctrl, 0, sizeof(*ctrl));
	if (nr_io > NVT_MAX_IO_QUEUES)
		return -EINVAL;
	ret = nvt_loop_queue_create(tgt, 0, NVT_AQ_DEPTH, &ctrl->admin);
	if (ret)
		return ret;
	ctrl->admin->sq.port = port;
	ret = nvt_loop_connect_queue(ctrl->admin, 0, NVT_AQ_DEPTH - 1, subnqn, hostnqn,
				     0xffff, kato_ms, &cqe);
	if (ret)
		goto out_disconnect;
	ctrl->cntlid = (uint16_t)le32toh(cqe.result.u32);

	ret = nvt_loop_prop_set(ctrl->admin, NVT_PROP_CC, NVT_LOOP_CC_ENABLE);
	if (!ret)
		ret = nvt_loop_prop_get(ctrl->admin, NVT_PROP_CSTS, false, &csts);
	if (!ret && !(csts & NVT_CSTS_RDY))
		ret = -EIO;
	if (ret)
		goto out_disconnect;

	if (nr_io) {
		memset(&sqe, 0, sizeof(sqe));
		sqe.common.opcode = nvme_admin_set_features;
		sqe.common.flags = NVT_SQE_PSDT_SGL;
		sqe.common.cdw10 = htole32(NVME_FEAT_FID_NUM_QUEUES);
		sqe.common.cdw11 = htole32((nr_io - 1) | (nr_io - 1) << 16);
		ret = nvt_loop_exec(ctrl->admin, &sqe, NULL, 0, &cqe);
		if (ret)
			goto out_disconnect;
	}
	for (unsigned int i = 0; i < nr_io; i++) {
		ret = nvt_loop_queue_create(tgt, (uint16_t)(i + 1), depth, &ctrl->io[i]);
		if (ret)
			goto out_disconnect;
		ctrl->nr_io++;
		ctrl->io[i]->sq.port = port;
		ret = nvt_loop_connect_queue(ctrl->io[i], (uint16_t)(i + 1), depth - 1,
					     subnqn, hostnqn, ctrl->cntlid, 0, &cqe);
		if (ret)
			goto out_disconnect;
	}
	return 0;

out_disconnect:
	for (unsigned int i = 0; i < ctrl->nr_io; i++)
		nvt_loop_queue_destroy(ctrl->io[i]);
	nvt_loop_queue_destroy(ctrl->admin);
	memset(ctrl, 0, sizeof(*ctrl));
	return ret;
}

void nvt_loop_ctrl_disconnect(struct nvt_loop_ctrl *ctrl)
{
	uint64_t cc = 0;

	/* What a Linux host does on `nvme disconnect`: CC.SHN, then drop queues. */
	if (ctrl->admin && nvt_loop_queue_live(ctrl->admin) &&
	    !nvt_loop_prop_get(ctrl->admin, NVT_PROP_CC, false, &cc))
		nvt_loop_prop_set(ctrl->admin, NVT_PROP_CC,
				  cc | (NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT));
	for (unsigned int i = 0; i < ctrl->nr_io; i++)
		nvt_loop_queue_destroy(ctrl->io[i]);
	nvt_loop_queue_destroy(ctrl->admin);
	memset(ctrl, 0, sizeof(*ctrl));
}
