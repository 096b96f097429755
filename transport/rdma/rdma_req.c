/* SPDX-License-Identifier: BSD-3-Clause */
/* The RDMA request slot state machine and SGL mapping: pure logic, no verbs, so unit tests drive every move. */
#define NVT_LOG_PREFIX "rdma: "
#include <errno.h>

#include "nvt/log.h"
#include "rdma_internal.h"

static const char *const nvt_rdma_state_names[] = {
	[NVT_RDMA_REQ_FREE] = "FREE",
	[NVT_RDMA_REQ_NEW] = "NEW",
	[NVT_RDMA_REQ_XFER_H2C] = "XFER_H2C",
	[NVT_RDMA_REQ_EXECUTING] = "EXECUTING",
	[NVT_RDMA_REQ_COMPLETING] = "COMPLETING",
};

const char *nvt_rdma_req_state_name(enum nvt_rdma_req_state s)
{
	if ((unsigned int)s >= sizeof(nvt_rdma_state_names) / sizeof(nvt_rdma_state_names[0]))
		return "?";
	return nvt_rdma_state_names[s];
}

/*
 * Allowed moves. Every state may fall back to FREE: a queue that is going
 * away returns slots without sending anything.
 *   FREE -> NEW                 a capsule arrived
 *   NEW -> XFER_H2C             write with keyed data: RDMA READ posted
 *   NEW -> EXECUTING            no data, in-capsule data, or a read
 *   NEW -> COMPLETING           failed in parse: the response goes at once
 *   XFER_H2C -> EXECUTING       READ done
 *   EXECUTING -> COMPLETING     response (and read data) posted
 *   * -> FREE                   SEND done, or the queue is dying
 */
int nvt_rdma_req_set_state(struct nvt_rdma_req *r, enum nvt_rdma_req_state next)
{
	enum nvt_rdma_req_state cur = r->state;
	bool ok;

	switch (next) {
	case NVT_RDMA_REQ_FREE:
		ok = cur != NVT_RDMA_REQ_FREE;
		break;
	case NVT_RDMA_REQ_NEW:
		ok = cur == NVT_RDMA_REQ_FREE;
		break;
	case NVT_RDMA_REQ_XFER_H2C:
		ok = cur == NVT_RDMA_REQ_NEW;
		break;
	case NVT_RDMA_REQ_EXECUTING:
		ok = cur == NVT_RDMA_REQ_NEW || cur == NVT_RDMA_REQ_XFER_H2C;
		break;
	case NVT_RDMA_REQ_COMPLETING:
		ok = cur == NVT_RDMA_REQ_NEW || cur == NVT_RDMA_REQ_EXECUTING;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok) {
		nvt_err("request slot: bad transition %s -> %s", nvt_rdma_req_state_name(cur),
			nvt_rdma_req_state_name(next));
		return -EINVAL;
	}
	r->state = next;
	return 0;
}

uint16_t nvt_rdma_map_sgl(struct nvt_rdma_req *r, uint32_t icdata_len, bool io_queue)
{
	struct nvt_req *req = &r->req;
	struct nvt_sgl_desc *sgl = &req->cmd->common.dptr;
	uint8_t type = sgl->keyed.type >> 4, subtype = sgl->keyed.type & 0xf;
	uint64_t addr = le64toh(sgl->addr);
	uint32_t len;

	r->in_capsule = false;
	r->invalidate = false;
	r->iov.iov_base = r->data;
	r->iov.iov_len = 0;
	req->iov = &r->iov;
	req->iov_cnt = 1;
	req->transfer_len = 0;

	switch (type) {
	case NVT_SGL_KEYED_DATA:
		if (subtype != NVT_SGL_SUB_ADDRESS && subtype != NVT_SGL_SUB_INVALIDATE)
			goto bad_type;
		len = sgl->keyed.length[0] | (uint32_t)sgl->keyed.length[1] << 8 |
		      (uint32_t)sgl->keyed.length[2] << 16;
		/* NVMe 2.0 §5.17.2.1 (MDTS): a larger transfer is an invalid field. */
		if (len > NVT_RDMA_MAX_DATA) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			return NVT_ST_INVALID_FIELD;
		}
		r->remote_addr = addr;
		r->rkey = (uint32_t)sgl->keyed.key[0] | (uint32_t)sgl->keyed.key[1] << 8 |
			  (uint32_t)sgl->keyed.key[2] << 16 | (uint32_t)sgl->keyed.key[3] << 24;
		r->invalidate = subtype == NVT_SGL_SUB_INVALIDATE;
		r->iov.iov_len = len;
		req->transfer_len = len;
		return NVT_ST_OK;
	case NVT_SGL_DATA_BLOCK:
		if (subtype != NVT_SGL_SUB_OFFSET)
			goto bad_type;
		len = le32toh(sgl->unkeyed.length);
		/* In-capsule data: host-to-controller only, I/O queues only, inside what arrived. */
		if (!io_queue || !nvt_req_is_write(req)) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			return NVT_ST_INVALID_FIELD;
		}
		if (addr > icdata_len || len > icdata_len - addr ||
		    sizeof(struct nvt_sqe) + addr + len > r->recv->byte_len) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			return NVT_ST_SGL_INVALID_OFF;
		}
		r->in_capsule = true;
		r->iov.iov_base = r->recv->buf + sizeof(struct nvt_sqe) + addr;
		r->iov.iov_len = len;
		req->transfer_len = len;
		return NVT_ST_OK;
	default:
		break;
	}
bad_type:
	req->error_loc = offsetof(struct nvt_sqe_common, dptr);
	return NVT_ST_SGL_INVALID_TYPE;
}
