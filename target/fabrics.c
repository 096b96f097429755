/* SPDX-License-Identifier: BSD-3-Clause */
/* Fabrics commands: Connect (admin and I/O queues, host allow-list), Property Get/Set, Disconnect. */
#define NVT_LOG_PREFIX "fabrics: "
#include <string.h>

#include "nvt/log.h"
#include "nvt/target.h"

/* NVMe-oF 1.1 §3.3.1: where a bad Connect parameter sits (IATTR bit 16 = in the data). */
#define IPO_SQE(field)		((uint32_t)offsetof(struct nvt_sqe_connect, field))
#define IPO_DATA(field)		((1u << 16) | (uint32_t)offsetof(struct nvmf_connect_data, field))

static void nvt_execute_prop_get(struct nvt_req *req)
{
	struct nvt_sqe_prop *c = &req->cmd->prop;
	uint64_t val = 0;
	uint16_t status;

	status = nvt_ctrl_prop_get(req->sq->ctrl, le32toh(c->offset), c->attrib & 1, &val);
	if (status)
		req->error_loc = offsetof(struct nvt_sqe_prop, offset);
	req->cqe->result.u64 = htole64(val);
	nvt_req_complete(req, status);
}

static void nvt_execute_prop_set(struct nvt_req *req)
{
	struct nvt_sqe_prop *c = &req->cmd->prop;
	uint16_t status;

	status = nvt_ctrl_prop_set(req->sq->ctrl, le32toh(c->offset), c->attrib & 1,
				   le64toh(c->value));
	if (status)
		req->error_loc = offsetof(struct nvt_sqe_prop, offset);
	nvt_req_complete(req, status);
}

static void nvt_execute_disconnect(struct nvt_req *req)
{
	struct nvt_sq *sq = req->sq;
	struct nvt_ctrl *ctrl = sq->ctrl;

	/* NVMe-oF 1.1 §3.4: the queue is gone once this completes; the
	 * transport connection stays until the host drops it. */
	nvt_req_complete(req, NVT_ST_OK);
	nvt_ctrl_uninstall_sq(ctrl, sq);
	nvt_ctrl_put(ctrl);
}

uint16_t nvt_parse_fabrics_cmd(struct nvt_req *req)
{
	switch (req->cmd->fabrics.fctype) {
	case NVT_FCTYPE_PROP_GET:
		if (req->sq->qid)
			break;
		req->execute = nvt_execute_prop_get;
		return NVT_ST_OK;
	case NVT_FCTYPE_PROP_SET:
		if (req->sq->qid)
			break;
		req->execute = nvt_execute_prop_set;
		return NVT_ST_OK;
	case NVT_FCTYPE_DISCONNECT:
		if (!req->sq->qid) {
			req->error_loc = offsetof(struct nvt_sqe_fabrics, fctype);
			return NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_DISCONNECT_INVALID_QTYPE) |
			       NVT_SC_DNR;
		}
		req->execute = nvt_execute_disconnect;
		return NVT_ST_OK;
	default:
		break;
	}
	req->error_loc = offsetof(struct nvt_sqe_fabrics, fctype);
	return NVT_ST_INVALID_OPCODE;
}

/* A string field of the connect data must be NUL-terminated inside its 256 bytes. */
static bool nvt_connect_str_ok(const char *s)
{
	size_t n = strnlen(s, NVME_NQN_LENGTH);

	return n > 0 && n <= NVT_NQN_MAX;
}

static void nvt_execute_connect(struct nvt_req *req)
{
	struct nvt_sqe_connect *c = &req->cmd->connect;
	struct nvt_sq *sq = req->sq;
	struct nvmf_connect_data d;
	struct nvt_subsys *subsys = NULL;
	struct nvt_ctrl *ctrl = NULL;
	uint16_t qid = le16toh(c->qid), sqsize = le16toh(c->sqsize);
	uint16_t status;

	/*
	 * Checked again now, not only at parse: the Connect data came by RDMA
	 * READ, and another Connect on this queue may have finished meanwhile.
	 */
	if (sq->state != NVT_SQ_CONNECTING || sq->ctrl) {
		req->error_loc = offsetof(struct nvt_sqe_connect, fctype);
		status = NVT_ST_CMD_SEQ;
		goto out;
	}
	status = nvt_req_copy_from(req, 0, &d, sizeof(d));
	if (status)
		goto out;

	if (!nvt_connect_str_ok(d.subsysnqn) || !nvt_connect_str_ok(d.hostnqn)) {
		req->cqe->result.u32 = htole32(nvt_connect_str_ok(d.subsysnqn) ?
					       IPO_DATA(hostnqn) : IPO_DATA(subsysnqn));
		status = NVT_ST_CONNECT_INVALID_PARAM;
		goto out;
	}
	/* Referenced until the Connect is done: a reload may remove it meanwhile. */
	subsys = nvt_target_get_subsys(sq->tgt, d.subsysnqn);
	if (!subsys) {
		nvt_warn_ratelimited("host %.*s: no subsystem %.*s", NVT_NQN_MAX, d.hostnqn,
				     NVT_NQN_MAX, d.subsysnqn);
		req->cqe->result.u32 = htole32(IPO_DATA(subsysnqn));
		status = NVT_ST_CONNECT_INVALID_PARAM;
		goto out;
	}
	if (!nvt_subsys_host_allowed(subsys, d.hostnqn)) {
		nvt_warn_ratelimited("host %.*s not allowed on %s", NVT_NQN_MAX, d.hostnqn,
				     subsys->nqn);
		status = NVT_ST_CONNECT_INVALID_HOST;
		goto out;
	}

	if (qid == 0) {
		/* Dynamic controller model: the host asks for FFFFh. */
		if (le16toh(d.cntlid) != 0xffff) {
			req->cqe->result.u32 = htole32(IPO_DATA(cntlid));
			status = NVT_ST_CONNECT_INVALID_PARAM;
			goto out;
		}
		status = nvt_ctrl_create(subsys, req, &d, le32toh(c->kato), &ctrl);
		if (status)
			goto out;
		/* The creation reference moves to the admin queue. */
		atomic_fetch_add(&ctrl->refs, 1);
	} else {
		ctrl = nvt_ctrl_find_get(subsys, le16toh(d.cntlid), d.hostnqn);
		if (!ctrl) {
			req->cqe->result.u32 = htole32(IPO_DATA(cntlid));
			status = NVT_ST_CONNECT_INVALID_PARAM;
			goto out;
		}
		if (!(ctrl->csts & NVT_CSTS_RDY)) {
			status = NVT_ST_CMD_SEQ;
			goto out_put;
		}
		if (qid > ctrl->max_qid) {
			req->cqe->result.u32 = htole32(IPO_SQE(qid));
			status = NVT_ST_CONNECT_INVALID_PARAM;
			goto out_put;
		}
	}

	sq->size = sqsize + 1;
	sq->sqflow_disabled = c->cattr & NVT_CONNECT_CATTR_DISABLE_SQFLOW;
	status = nvt_ctrl_install_sq(ctrl, sq);
	if (status) {
		req->cqe->result.u32 = htole32(IPO_SQE(qid));
		goto out_put;
	}
	req->cqe->result.u32 = htole32(ctrl->cntlid);
	nvt_dbg("%s: ctrl %u qid %u connected, size %u", subsys->nqn, ctrl->cntlid,
		qid, sq->size);
	nvt_req_complete(req, NVT_ST_OK);
	nvt_subsys_put(subsys);
	return;

out_put:
	if (qid == 0)
		nvt_ctrl_fatal(ctrl, "admin queue connect failed");
	nvt_ctrl_put(ctrl);
out:
	nvt_req_complete(req, status);
	if (subsys)
		nvt_subsys_put(subsys);
}

uint16_t nvt_parse_connect_cmd(struct nvt_req *req)
{
	struct nvt_sqe_connect *c = &req->cmd->connect;
	uint16_t qid = le16toh(c->qid), sqsize = le16toh(c->sqsize);

	if (req->sq->state != NVT_SQ_CONNECTING) {
		req->error_loc = offsetof(struct nvt_sqe_connect, fctype);
		return NVT_ST_CMD_SEQ;
	}
	if (le16toh(c->recfmt) != 0) {
		req->error_loc = offsetof(struct nvt_sqe_connect, recfmt);
		return NVT_ST_CONNECT_FORMAT;
	}
	/* The transport already fixed the queue's qid and depth when it accepted. */
	if (qid != req->sq->qid) {
		req->cqe->result.u32 = htole32(IPO_SQE(qid));
		return NVT_ST_CONNECT_INVALID_PARAM;
	}
	if (sqsize == 0 || sqsize >= req->ops->max_queue_size ||
	    (req->sq->size && sqsize + 1u > req->sq->size)) {
		req->cqe->result.u32 = htole32(IPO_SQE(sqsize));
		return NVT_ST_CONNECT_INVALID_PARAM;
	}
	req->data_len = sizeof(struct nvmf_connect_data);
	req->execute = nvt_execute_connect;
	return NVT_ST_OK;
}
