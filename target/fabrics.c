/* SPDX-License-Identifier: BSD-3-Clause */
/* Fabrics commands: Connect (admin and I/O queues, host allow-list, authentication required), Property Get/Set, Authentication Send/Receive, Disconnect. */
#define NVT_LOG_PREFIX "fabrics: "
#include <string.h>

#include "nvt/auth.h"
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

/* The 24 command-specific bytes of Authentication Send / Receive (NVMe 2.0 §6.2, §6.3). */
struct nvt_auth_cmd_spec {
	uint8_t rsvd;
	uint8_t spsp0;
	uint8_t spsp1;
	uint8_t secp;
	uint32_t len;		/* Send: TL, transfer length; Receive: AL, allocation length */
	uint8_t rsvd2[16];
} __attribute__((packed));

static void nvt_execute_auth_send(struct nvt_req *req)
{
	uint8_t buf[NVT_AUTH_MSG_MAX];
	uint16_t status;

	status = nvt_req_copy_from(req, 0, buf, req->data_len);
	if (!status)
		status = nvt_auth_send(req->sq, buf, req->data_len);
	nvt_req_complete(req, status);
}

static void nvt_execute_auth_recv(struct nvt_req *req)
{
	uint8_t buf[NVT_AUTH_MSG_MAX];
	size_t n = 0;
	uint16_t status;

	status = nvt_auth_recv(req->sq, buf, req->data_len, &n);
	if (!status)
		status = nvt_req_copy_to(req, 0, buf, req->data_len);
	/*
	 * After a _Failure1 the queue stays, running nothing but fabrics
	 * commands: the host answers with _Failure2 and drops it (Linux waits
	 * for that _Failure2's completion, so tearing the controller down here
	 * hung its connect); one that does not loses it at keep-alive expiry.
	 */
	nvt_req_complete(req, status);
}

static uint16_t nvt_parse_auth_cmd(struct nvt_req *req, bool send)
{
	const struct nvt_auth_cmd_spec *c = (const void *)req->cmd->fabrics.spec;
	uint32_t len = le32toh(c->len);

	_Static_assert(sizeof(struct nvt_auth_cmd_spec) == 24, "auth command bytes 40..63");
	if (c->secp != NVT_AUTH_SECP) {
		req->error_loc = offsetof(struct nvt_sqe_fabrics, spec) + 3;
		return NVT_ST_INVALID_FIELD;
	}
	if (c->spsp0 != NVT_AUTH_SPSP || c->spsp1 != NVT_AUTH_SPSP) {
		req->error_loc = offsetof(struct nvt_sqe_fabrics, spec) + 1;
		return NVT_ST_INVALID_FIELD;
	}
	/* Every message fits the largest _Reply (ffdhe8192, SHA-512); a Receive may ask for more. */
	if (!len || (send && len > NVT_AUTH_MSG_MAX)) {
		req->error_loc = offsetof(struct nvt_sqe_fabrics, spec) + 4;
		return NVT_ST_INVALID_FIELD;
	}
	if (!req->sq->auth) {
		req->error_loc = offsetof(struct nvt_sqe_fabrics, fctype);
		return NVT_ST_CMD_SEQ;
	}
	req->data_len = len > NVT_AUTH_MSG_MAX ? NVT_AUTH_MSG_MAX : len;
	if (!send && len > NVT_AUTH_MSG_MAX)
		req->flags |= NVT_REQ_XFER_LONGER_OK;
	req->execute = send ? nvt_execute_auth_send : nvt_execute_auth_recv;
	return NVT_ST_OK;
}

uint16_t nvt_parse_fabrics_cmd(struct nvt_req *req)
{
	switch (req->cmd->fabrics.fctype) {
	case NVT_FCTYPE_AUTH_SEND:
		return nvt_parse_auth_cmd(req, true);
	case NVT_FCTYPE_AUTH_RECV:
		return nvt_parse_auth_cmd(req, false);
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
	const struct nvt_auth_host *auth_host;
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
	auth_host = nvt_auth_find_host(subsys->auth, d.hostnqn);
	if (!auth_host && subsys->auth && subsys->auth->require) {
		nvt_warn_ratelimited("host %.*s has no dhchap_key on %s, which requires authentication",
				     NVT_NQN_MAX, d.hostnqn, subsys->nqn);
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
		/* A guest's I_T nexus identity: a host sending it would hold the guest's registrations. */
		if (nvt_resv_hostid_is_nexus(d.hostid)) {
			nvt_warn_ratelimited("host %.*s: HOSTID is one nvtd gives its vhost controllers: "
					     "refused", NVT_NQN_MAX, d.hostnqn);
			req->cqe->result.u32 = htole32(IPO_DATA(hostid));
			status = NVT_ST_CONNECT_INVALID_PARAM;
			goto out;
		}
		status = nvt_ctrl_create(subsys, req, &d, le32toh(c->kato), &ctrl);
		if (status)
			goto out;
		/* The creation reference moves to the admin queue. */
		atomic_fetch_add(&ctrl->refs, 1);
		ctrl->auth_host = auth_host;
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

	/*
	 * Each queue authenticates on its own (NVMe 2.0 §8.13.1), as Linux
	 * does. The key table is fixed while the subsystem lives, so the
	 * lookup above stands for I/O queues too (same host NQN as the
	 * controller's, checked by nvt_ctrl_find_get).
	 */
	if (auth_host && nvt_auth_sq_start(sq, auth_host)) {
		status = NVT_ST_INTERNAL;
		goto out_put;
	}
	sq->size = sqsize + 1;
	sq->sqflow_disabled = c->cattr & NVT_CONNECT_CATTR_DISABLE_SQFLOW;
	status = nvt_ctrl_install_sq(ctrl, sq);
	if (status) {
		nvt_auth_sq_free(sq);
		req->cqe->result.u32 = htole32(IPO_SQE(qid));
		goto out_put;
	}
	req->cqe->result.u32 = htole32(ctrl->cntlid | (sq->auth ? NVT_CONNECT_AUTHREQ_ATR : 0));
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
