/* SPDX-License-Identifier: BSD-3-Clause */
/* NVMe-oF RDMA CM private data: parse and validate a host's connect request, build the accept and reject replies. */
#include <string.h>

#include "rdma_internal.h"

int nvt_rdma_parse_cm_req(const void *pdata, size_t len, struct nvt_rdma_cm_params *out)
{
	struct nvt_rdma_cm_req req;
	uint16_t max_qsize;

	/* NVMe-oF 1.1 §7.3.1: recfmt, qid, hrqsize, hsqsize are mandatory (8 bytes). */
	if (!pdata || len < offsetof(struct nvt_rdma_cm_req, cntlid))
		return NVT_RDMA_CM_INVALID_LEN;
	memset(&req, 0, sizeof(req));
	memcpy(&req, pdata, len < sizeof(req) ? len : sizeof(req));
	if (le16toh(req.recfmt) != 0)
		return NVT_RDMA_CM_INVALID_RECFMT;

	out->qid = le16toh(req.qid);
	if (out->qid > NVT_MAX_IO_QUEUES)
		return NVT_RDMA_CM_INVALID_QID;
	max_qsize = out->qid ? NVT_RDMA_MAX_QUEUE_SIZE : NVT_AQ_DEPTH;
	/* HSQSIZE is 0-based; a queue needs at least two entries. */
	out->sq_size = (uint32_t)le16toh(req.hsqsize) + 1;
	if (out->sq_size < 2 || out->sq_size > max_qsize)
		return NVT_RDMA_CM_INVALID_HSQSIZE;
	/* Every command of the SQ may be in flight, so as many RECVs as that. */
	out->recv_depth = le16toh(req.hrqsize);
	if (out->recv_depth < out->sq_size || out->recv_depth > max_qsize)
		return NVT_RDMA_CM_INVALID_HRQSIZE;
	out->cntlid = len >= offsetof(struct nvt_rdma_cm_req, rsvd) ? le16toh(req.cntlid) : 0xffff;
	return 0;
}
