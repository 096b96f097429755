/* SPDX-License-Identifier: BSD-3-Clause */
/* Request life cycle: init -> parse -> execute -> the one completion funnel, the error log, data copy helpers. */
#define NVT_LOG_PREFIX "core: "
#include <errno.h>
#include <string.h>
#include <time.h>

#include "nvt/log.h"
#include "nvt/target.h"

uint64_t nvt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool nvt_req_is_write(const struct nvt_req *req)
{
	/* NVMe: opcode bit 0 = host to controller; fabrics encodes it in fctype. */
	if (req->cmd->common.opcode == NVT_OPC_FABRICS)
		return req->cmd->fabrics.fctype & 1;
	return req->cmd->common.opcode & 1;
}

static uint16_t nvt_parse_cmd(struct nvt_req *req)
{
	struct nvt_sq *sq = req->sq;

	if (req->cmd->common.opcode == NVT_OPC_FABRICS) {
		if (req->cmd->fabrics.fctype == NVT_FCTYPE_CONNECT)
			return nvt_parse_connect_cmd(req);
		if (sq->state != NVT_SQ_LIVE)
			goto not_connected;
		return nvt_parse_fabrics_cmd(req);
	}
	if (sq->state != NVT_SQ_LIVE)
		goto not_connected;
	/* NVMe-oF 1.1 §3.2: fabrics carries data only by SGL, metadata in the data. */
	if ((req->cmd->common.flags & NVT_SQE_PSDT_MASK) != NVT_SQE_PSDT_SGL) {
		req->error_loc = offsetof(struct nvt_sqe_common, flags);
		return NVT_ST_INVALID_FIELD;
	}
	if (!(sq->ctrl->csts & NVT_CSTS_RDY)) {
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_CMD_SEQ;
	}
	if (sq->qid == 0) {
		if (sq->ctrl->subsys->type == NVT_SUBSYS_DISCOVERY)
			return nvt_parse_discovery_cmd(req);
		return nvt_parse_admin_cmd(req);
	}
	return nvt_parse_io_cmd(req);

not_connected:
	/* NVMe-oF 1.1 §3.3: only Connect is allowed before a queue is connected. */
	req->error_loc = offsetof(struct nvt_sqe_common, opcode);
	return NVT_ST_CMD_SEQ;
}

bool nvt_req_init(struct nvt_req *req, struct nvt_sq *sq,
		  const struct nvt_transport_ops *ops)
{
	uint16_t status;

	req->sq = sq;
	req->ops = ops;
	req->ns = NULL;
	req->execute = NULL;
	req->md_iov = NULL;
	req->md_iov_cnt = 0;
	req->data_len = 0;
	req->md_len = 0;
	req->flags = 0;
	req->fused_peer = NULL;
	req->error_loc = NVT_NO_ERROR_LOC;
	req->error_slba = 0;
	req->cqe->result.u64 = 0;

	status = nvt_parse_cmd(req);
	if (status) {
		nvt_req_complete(req, status);
		return false;
	}
	return true;
}

bool nvt_req_transfer_ok(const struct nvt_req *req)
{
	if (req->flags & NVT_REQ_XFER_LONGER_OK)
		return req->transfer_len >= req->data_len;
	return req->transfer_len == req->data_len;
}

void nvt_req_execute(struct nvt_req *req)
{
	/* The host's SGL must describe what the command moves (nvmet is as strict). */
	if (!nvt_req_transfer_ok(req)) {
		nvt_warn_ratelimited("qid %u opcode %#x: the host's SGL holds %u bytes, the command moves %u",
				     req->sq->qid, req->cmd->common.opcode, req->transfer_len,
				     req->data_len);
		req->error_loc = offsetof(struct nvt_sqe_common, dptr);
		nvt_req_complete(req, NVT_ST_SGL_INVALID_DATA);
		return;
	}
	req->execute(req);
}

/* Error log page entry for a failed command (NVMe 2.0 §5.16.1.2). */
static void nvt_record_error(struct nvt_req *req, uint16_t status)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	struct nvme_error_log_page *e;
	uint64_t count;

	if (!ctrl || req->error_loc == NVT_NO_ERROR_LOC)
		return;
	/* A lock-free ring: a slot per failure, newest count wins on read. */
	count = atomic_fetch_add(&ctrl->err_count, 1) + 1;
	e = &ctrl->errlog[(count - 1) % NVT_ERRLOG_ENTRIES];
	memset(e, 0, sizeof(*e));
	e->error_count = htole64(count);
	e->sqid = htole16(req->sq->qid);
	e->cmdid = req->cmd->common.cid;
	e->status_field = htole16((uint16_t)(status << 1));
	e->parm_error_location = htole16(req->error_loc);
	e->lba = htole64(req->error_slba);
	e->nsid = req->cmd->common.nsid;
}

void nvt_req_complete(struct nvt_req *req, uint16_t status)
{
	struct nvt_sq *sq = req->sq;
	struct nvt_cqe *cqe = req->cqe;

	if (req->flags & NVT_REQ_COMPLETED) {
		nvt_err("qid %u cid %u completed twice", sq->qid, req->cmd->common.cid);
		return;
	}
	/* Half of a fused pair inside its critical section: the result waits. */
	if (req->flags & NVT_REQ_FUSED_HOLD) {
		req->flags &= ~NVT_REQ_FUSED_HOLD;
		req->fused_status = status;
		return;
	}
	if ((req->flags & NVT_REQ_FUSED_FIRST) && sq->fused_first == req)
		sq->fused_first = NULL;
	if (req->fused_peer) {
		struct nvt_req *peer = req->fused_peer;

		peer->fused_peer = NULL;
		req->fused_peer = NULL;
		/* A partner already waiting for this one will never be joined now. */
		if (peer->flags & NVT_REQ_FUSED_READY)
			nvt_req_complete(peer, NVME_SC_FUSED_FAIL);
	}
	req->flags |= NVT_REQ_COMPLETED;
	/* PI post-step of a read: what the backend returned is checked before the host sees it. */
	if ((req->flags & NVT_REQ_PI_READ) && !status)
		status = nvt_pi_read_check(req);
	if (status)
		nvt_record_error(req, status);

	if (sq->sqflow_disabled) {
		cqe->sqhd = 0xffff;
	} else {
		sq->sqhd = sq->size ? (uint16_t)((sq->sqhd + 1) % sq->size) : 0;
		cqe->sqhd = htole16(sq->sqhd);
	}
	cqe->sqid = htole16(sq->qid);
	cqe->cid = req->cmd->common.cid;
	cqe->status = htole16((uint16_t)(status << 1));
	req->ops->queue_response(req);
}

uint16_t nvt_errno_to_status(struct nvt_req *req, int err)
{
	switch (-err) {
	case 0:
		return NVT_ST_OK;
	case ENOSPC:
		req->error_loc = offsetof(struct nvt_sqe_rw, nlb);
		return NVT_ST_CAP_EXCEEDED;
	case EREMOTEIO:
	case ERANGE:
		req->error_loc = offsetof(struct nvt_sqe_rw, slba);
		return NVT_ST_LBA_RANGE;
	case EOPNOTSUPP:
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_INVALID_OPCODE;
	case EINVAL:
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		return NVT_ST_INVALID_FIELD;
	case EIO:
	case ENODATA:
		return NVME_SC_READ_ERROR | (NVME_SCT_MEDIA << NVME_SCT_SHIFT);
	default:
		return NVT_ST_INTERNAL;
	}
}

/* Walk the request's iovecs from byte @off, calling @fn on each overlapping piece. */
static uint16_t nvt_req_iov_walk(struct nvt_req *req, size_t off, size_t len,
				 void (*fn)(void *iov_base, size_t done, size_t n, void *arg),
				 void *arg)
{
	size_t done = 0;

	if (off + len < off || off + len > req->transfer_len)
		return NVT_ST_DATA_XFER;
	for (unsigned int i = 0; i < req->iov_cnt && done < len; i++) {
		struct iovec *v = &req->iov[i];
		size_t n;

		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		n = v->iov_len - off;
		if (n > len - done)
			n = len - done;
		fn((char *)v->iov_base + off, done, n, arg);
		done += n;
		off = 0;
	}
	return done == len ? NVT_ST_OK : NVT_ST_DATA_XFER;
}

static void copy_to_iov(void *base, size_t done, size_t n, void *arg)
{
	memcpy(base, (const char *)arg + done, n);
}

static void copy_from_iov(void *base, size_t done, size_t n, void *arg)
{
	memcpy((char *)arg + done, base, n);
}

static void zero_iov(void *base, size_t done, size_t n, void *arg)
{
	memset(base, 0, n);
}

struct nvt_cmp {
	const uint8_t *buf;
	bool equal;
};

static void cmp_iov(void *base, size_t done, size_t n, void *arg)
{
	struct nvt_cmp *c = arg;

	if (c->equal && memcmp(base, c->buf + done, n))
		c->equal = false;
}

bool nvt_req_equal(struct nvt_req *req, size_t off, const void *buf, size_t len)
{
	struct nvt_cmp c = { .buf = buf, .equal = true };

	return !nvt_req_iov_walk(req, off, len, cmp_iov, &c) && c.equal;
}

uint16_t nvt_req_copy_to(struct nvt_req *req, size_t off, const void *buf, size_t len)
{
	return nvt_req_iov_walk(req, off, len, copy_to_iov, (void *)buf);
}

uint16_t nvt_req_copy_from(struct nvt_req *req, size_t off, void *buf, size_t len)
{
	return nvt_req_iov_walk(req, off, len, copy_from_iov, buf);
}

uint16_t nvt_req_zero(struct nvt_req *req, size_t off, size_t len)
{
	return nvt_req_iov_walk(req, off, len, zero_iov, NULL);
}

void nvt_log_writer_init(struct nvt_log_writer *w, struct nvt_req *req)
{
	w->req = req;
	w->offset = nvt_get_log_offset(req);
	w->pos = 0;
	w->status = NVT_ST_OK;
}

void nvt_log_write(struct nvt_log_writer *w, const void *buf, size_t len)
{
	uint64_t start = w->pos, end = w->pos + len;
	uint64_t want_end = w->offset + w->req->data_len;
	uint64_t from, to;

	w->pos = end;
	if (w->status || end <= w->offset || start >= want_end)
		return;
	from = start > w->offset ? start : w->offset;
	to = end < want_end ? end : want_end;
	w->status = nvt_req_copy_to(w->req, from - w->offset,
				    (const char *)buf + (from - start), to - from);
}

uint16_t nvt_log_writer_finish(struct nvt_log_writer *w)
{
	uint64_t produced;

	if (w->status)
		return w->status;
	/* NVMe 2.0 §5.16: an offset past the end of the log is an invalid field. */
	if (w->offset > w->pos) {
		w->req->error_loc = offsetof(struct nvt_sqe_common, cdw12);
		return NVT_ST_INVALID_FIELD;
	}
	produced = w->pos - w->offset;
	if (produced < w->req->data_len)
		return nvt_req_zero(w->req, produced, w->req->data_len - produced);
	return NVT_ST_OK;
}
