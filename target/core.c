/* SPDX-License-Identifier: BSD-3-Clause */
/* Request life cycle: init -> parse -> execute -> the one completion funnel, the error log, data copy helpers. */
#define NVT_LOG_PREFIX "core: "
#include <errno.h>
#include <string.h>
#include <time.h>

#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/target.h"
#include "ns_internal.h"

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

/*
 * May a command other than Connect run on @sq now? Checked at parse time and
 * again right before execute: host data may arrive (RDMA READ) in between,
 * and a Disconnect, a controller reset (CC.EN=0) or a teardown on another
 * command may have changed the answer meanwhile.
 */
static uint16_t nvt_sq_state_check(struct nvt_req *req)
{
	struct nvt_sq *sq = req->sq;

	/* NVMe-oF 1.1 §3.3: only Connect is allowed before a queue is connected. */
	if (sq->state != NVT_SQ_LIVE || !sq->ctrl) {
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_CMD_SEQ;
	}
	if (req->cmd->common.opcode != NVT_OPC_FABRICS &&
	    !(atomic_load_explicit(&sq->ctrl->csts, memory_order_relaxed) & NVT_CSTS_RDY)) {
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_CMD_SEQ;
	}
	/* NVMe 2.0 §8.13: until the queue authenticates, only fabrics commands run. */
	if (sq->auth && !sq->auth_ok && req->cmd->common.opcode != NVT_OPC_FABRICS) {
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_AUTH_REQUIRED;
	}
	return NVT_ST_OK;
}

static uint16_t nvt_parse_cmd(struct nvt_req *req)
{
	struct nvt_sq *sq = req->sq;
	uint16_t status;

	if (req->cmd->common.opcode == NVT_OPC_FABRICS &&
	    req->cmd->fabrics.fctype == NVT_FCTYPE_CONNECT)
		return nvt_parse_connect_cmd(req);
	status = nvt_sq_state_check(req);
	if (status)
		return status;
	if (req->cmd->common.opcode == NVT_OPC_FABRICS)
		return nvt_parse_fabrics_cmd(req);
	/* NVMe-oF 1.1 §3.2: fabrics carries data only by SGL, metadata in the data. */
	if ((req->cmd->common.flags & NVT_SQE_PSDT_MASK) != NVT_SQE_PSDT_SGL) {
		req->error_loc = offsetof(struct nvt_sqe_common, flags);
		return NVT_ST_INVALID_FIELD;
	}
	if (sq->qid == 0) {
		/* Fused operations are NVM I/O commands only (NVMe 2.0 §3.4.2). */
		if (req->cmd->common.flags & NVT_SQE_FUSE_MASK) {
			req->error_loc = offsetof(struct nvt_sqe_common, flags);
			return NVT_ST_INVALID_FIELD;
		}
		if (sq->ctrl->subsys->type == NVT_SUBSYS_DISCOVERY)
			return nvt_parse_discovery_cmd(req);
		return nvt_parse_admin_cmd(req);
	}
	return nvt_parse_io_cmd(req);
}

/*
 * A fused Compare that will never run with its Write fails: now if it is
 * already waiting, or when it executes. Either way exactly once.
 */
void nvt_fused_abort(struct nvt_req *req, uint16_t status)
{
	if (req->sq->fused_first == req)
		req->sq->fused_first = NULL;
	if (req->fused_peer) {
		req->fused_peer->fused_peer = NULL;
		req->fused_peer = NULL;
	}
	if (req->flags & NVT_REQ_FUSED_READY) {
		req->flags &= ~NVT_REQ_FUSED_READY;
		nvt_req_complete(req, status);
		return;
	}
	req->flags |= NVT_REQ_FUSED_ORPHAN;
	req->fused_status = status;
}

/*
 * NVMe 2.0 §3.4.2: the second half of a fused operation is the very next
 * command on the same SQ. Decided here, for every command of every kind,
 * before anything else can refuse it: whatever comes after a fused first
 * half that is not its second half leaves that first half missing its
 * partner; a second half with no first half before it is missing one.
 */
static uint16_t nvt_fused_adjacency(struct nvt_req *req)
{
	struct nvt_sq *sq = req->sq;
	struct nvt_req *first = sq->fused_first;
	uint8_t fuse = req->cmd->common.opcode == NVT_OPC_FABRICS ? 0 :
		       req->cmd->common.flags & NVT_SQE_FUSE_MASK;

	if (first) {
		sq->fused_first = NULL;
		/* 0Ah: the next SQE is not the other command of a supported pair. */
		if (fuse != NVT_FUSE_SECOND || req->cmd->common.opcode != nvme_cmd_write) {
			nvt_fused_abort(first, NVME_SC_FUSED_MISSING);
			return NVT_ST_OK;
		}
		/* Paired now; a failure of either half from here fails the other. */
		first->fused_peer = req;
		req->fused_peer = first;
		return NVT_ST_OK;
	}
	if (fuse == NVT_FUSE_SECOND) {
		req->error_loc = offsetof(struct nvt_sqe_common, flags);
		return NVME_SC_FUSED_MISSING;
	}
	return NVT_ST_OK;
}

bool nvt_req_init(struct nvt_req *req, struct nvt_sq *sq,
		  const struct nvt_transport_ops *ops)
{
	uint16_t status;

	/* Nothing of the slot's previous command may leak into this one. */
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
	req->fused_status = NVT_ST_OK;
	req->error_loc = NVT_NO_ERROR_LOC;
	req->error_slba = 0;
	req->bio.op = NVT_BIO_READ;
	req->bio.flags = 0;
	req->cqe->result.u64 = 0;

	/* I/O queues count every command; the admin queue's held AERs would only skew them. */
	if (sq->qid && nvt_stats_on()) {
		req->stat_t0 = sq->pg ? nvt_poll_group_now_ns(sq->pg) : nvt_now_ns();
		req->flags |= NVT_REQ_STAT_SQ;
		nvt_stats_start(&sq->stats);
	}
	/*
	 * Counted before parse looks a namespace up, until it completes: a
	 * removal waits for it. Not a held AER (it would keep a removal
	 * waiting for ever) nor a Fabrics command (Connect: no subsystem yet).
	 */
	if (sq->ctrl && sq->ctrl->subsys && req->cmd->common.opcode != NVT_OPC_FABRICS &&
	    (sq->qid || req->cmd->common.opcode != nvme_admin_async_event))
		nvt_req_ns_enter(req, sq->ctrl->subsys);
	status = nvt_fused_adjacency(req);
	if (!status)
		status = nvt_parse_cmd(req);
	if (status) {
		nvt_req_complete(req, status);
		return false;
	}
	if (req->ns && (req->flags & NVT_REQ_STAT_SQ)) {
		struct nvt_ns_chan *chan = nvt_ns_chan_get(req->ns, sq->pg);

		if (chan) {
			req->flags |= NVT_REQ_STAT_NS;
			req->stat_chan = chan;
			nvt_stats_start(&chan->stats);
		}
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
	uint16_t status;

	/* Parse-time state checks may be stale after a data transfer. */
	if (req->cmd->common.opcode != NVT_OPC_FABRICS ||
	    req->cmd->fabrics.fctype != NVT_FCTYPE_CONNECT) {
		status = nvt_sq_state_check(req);
		if (status) {
			nvt_req_complete(req, status);
			return;
		}
	}
	/* PI scratch: the transport's own (md_iov set), or the slot's md_buf. */
	if (req->md_len && !req->md_iov) {
		if (req->md_len > req->md_buf_len) {
			nvt_err("qid %u: %u bytes of PI scratch needed, the slot has %u",
				req->sq->qid, req->md_len, req->md_buf_len);
			nvt_req_complete(req, NVT_ST_INTERNAL);
			return;
		}
		req->md_buf_iov.iov_base = req->md_buf;
		req->md_buf_iov.iov_len = req->md_len;
		req->md_iov = &req->md_buf_iov;
		req->md_iov_cnt = 1;
	}
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
	struct nvme_error_log_page e;
	uint64_t count;

	if (!ctrl || req->error_loc == NVT_NO_ERROR_LOC)
		return;
	/* A ring: a slot per failure, the newest count wins the slot. */
	count = atomic_fetch_add(&ctrl->err_count, 1) + 1;
	memset(&e, 0, sizeof(e));
	e.error_count = htole64(count);
	e.sqid = htole16(req->sq->qid);
	e.cmdid = req->cmd->common.cid;
	e.status_field = htole16((uint16_t)(status << 1));
	e.parm_error_location = htole16(req->error_loc);
	e.lba = htole64(req->error_slba);
	e.nsid = req->cmd->common.nsid;
	/* Held for one 64-byte copy; only failing commands get here. */
	while (atomic_flag_test_and_set_explicit(&ctrl->errlog_lock, memory_order_acquire))
		;
	ctrl->errlog[(count - 1) % NVT_ERRLOG_ENTRIES] = e;
	atomic_flag_clear_explicit(&ctrl->errlog_lock, memory_order_release);
}

void nvt_errlog_copy(struct nvt_ctrl *ctrl, unsigned int i, struct nvme_error_log_page *out)
{
	while (atomic_flag_test_and_set_explicit(&ctrl->errlog_lock, memory_order_acquire))
		;
	*out = ctrl->errlog[i];
	atomic_flag_clear_explicit(&ctrl->errlog_lock, memory_order_release);
}

/*
 * Count a finished I/O-queue command in its queue's set and, if it named a
 * namespace, that namespace's channel on this poll group: both are this
 * thread's, so plain relaxed stores do.
 */
static void nvt_req_count(struct nvt_req *req, uint16_t status)
{
	struct nvt_sq *sq = req->sq;
	enum nvt_stat_kind kind = NVT_STAT_OTHER;
	uint64_t bytes = 0, lat = (sq->pg ? nvt_poll_group_now_ns(sq->pg) : nvt_now_ns()) - req->stat_t0;
	struct nvt_ns_chan *chan;

	if (req->cmd->common.opcode == nvme_cmd_read)
		kind = NVT_STAT_READ;
	else if (req->cmd->common.opcode == nvme_cmd_write)
		kind = NVT_STAT_WRITE;
	/* Data units as SMART counts them: blocks without their metadata. */
	if (kind != NVT_STAT_OTHER && !status && req->ns)
		bytes = (uint64_t)req->bio.nlb << req->ns->lba_shift;
	nvt_stats_done(&sq->stats, kind, bytes, status & ~NVT_SC_DNR, lat, true);
	if (!req->ns)
		return;
	/* Refused before it was counted in (say, a bad LBA range): look the channel up. */
	chan = req->flags & NVT_REQ_STAT_NS ? req->stat_chan : nvt_ns_chan_get(req->ns, sq->pg);
	if (chan)
		nvt_stats_done(&chan->stats, kind, bytes, status & ~NVT_SC_DNR, lat,
			       req->flags & NVT_REQ_STAT_NS);
}

void nvt_req_complete(struct nvt_req *req, uint16_t status)
{
	struct nvt_sq *sq = req->sq;
	struct nvt_cqe *cqe = req->cqe;

	if (req->flags & NVT_REQ_COMPLETED) {
		nvt_err("qid %u cid %u completed twice", sq->qid, req->cmd->common.cid);
		return;
	}
	if (sq->fused_first == req)
		sq->fused_first = NULL;
	req->flags |= NVT_REQ_COMPLETED;
	/* A half that ends on its own (refused, failed transfer) fails its partner. */
	if (req->fused_peer) {
		struct nvt_req *peer = req->fused_peer;

		peer->fused_peer = NULL;
		req->fused_peer = NULL;
		nvt_fused_abort(peer, NVME_SC_FUSED_FAIL);
	}
	if (status)
		nvt_record_error(req, status);
	if (req->flags & NVT_REQ_STAT_SQ)
		nvt_req_count(req, status);
	/* The last look at req->ns: a removal waiting for it may free it now. */
	if (req->flags & NVT_REQ_NS_READER)
		nvt_req_ns_leave(req);

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

/* [off, off + len) inside what the host's SGL describes? */
static bool nvt_req_span_ok(const struct nvt_req *req, size_t off, size_t len)
{
	return off + len >= off && off + len <= req->transfer_len;
}

bool nvt_req_equal(struct nvt_req *req, size_t off, const void *buf, size_t len)
{
	return nvt_req_span_ok(req, off, len) &&
	       nvt_iov_diff(req->iov, req->iov_cnt, off, buf, len) == SIZE_MAX;
}

uint16_t nvt_req_copy_to(struct nvt_req *req, size_t off, const void *buf, size_t len)
{
	if (!nvt_req_span_ok(req, off, len))
		return NVT_ST_DATA_XFER;
	return nvt_iov_copy(req->iov, req->iov_cnt, off, (void *)buf, len, true) == len ?
	       NVT_ST_OK : NVT_ST_DATA_XFER;
}

uint16_t nvt_req_copy_from(struct nvt_req *req, size_t off, void *buf, size_t len)
{
	if (!nvt_req_span_ok(req, off, len))
		return NVT_ST_DATA_XFER;
	return nvt_iov_copy(req->iov, req->iov_cnt, off, buf, len, false) == len ?
	       NVT_ST_OK : NVT_ST_DATA_XFER;
}

uint16_t nvt_req_zero(struct nvt_req *req, size_t off, size_t len)
{
	if (!nvt_req_span_ok(req, off, len))
		return NVT_ST_DATA_XFER;
	return nvt_iov_copy(req->iov, req->iov_cnt, off, NULL, len, true) == len ?
	       NVT_ST_OK : NVT_ST_DATA_XFER;
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
