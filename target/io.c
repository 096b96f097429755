/* SPDX-License-Identifier: BSD-3-Clause */
/* I/O command parsing: namespace, bounds, lengths, and the hand-off to the namespace's backend. */
#define NVT_LOG_PREFIX "io: "
#include "nvt/log.h"
#include "nvt/target.h"

static void nvt_execute_rw(struct nvt_req *req)
{
	struct nvt_sq *sq = req->sq;
	uint64_t units = (uint64_t)req->io.nlb << (req->ns->lba_shift - 9);

	/* Counted by the queue's own thread: no shared counters on the I/O path. */
	if (req->io.op == NVT_IO_READ) {
		sq->nr_reads++;
		sq->blocks_read += units;
	} else {
		sq->nr_writes++;
		sq->blocks_written += units;
	}
	req->ns->be->submit(req);
}

static void nvt_execute_flush(struct nvt_req *req)
{
	req->ns->be->submit(req);
}

/*
 * Flush to NSID FFFFFFFFh. Every backend so far (ram) completes a write only
 * once it is in the medium, so there is nothing to flush; a backend with a
 * volatile cache (NVT_BE_VOLATILE) brings a per-namespace fan-out with it.
 */
static void nvt_execute_flush_all(struct nvt_req *req)
{
	nvt_req_complete(req, NVT_ST_OK);
}

static uint16_t nvt_parse_rw(struct nvt_req *req, enum nvt_io_op op)
{
	struct nvt_sqe_rw *rw = &req->cmd->rw;
	struct nvt_ns *ns = req->ns;
	uint64_t slba = le64toh(rw->slba);
	uint32_t nlb = (uint32_t)le16toh(rw->nlb) + 1;
	uint64_t len;

	if (slba >= ns->nblocks || nlb > ns->nblocks - slba) {
		req->error_loc = offsetof(struct nvt_sqe_rw, slba);
		req->error_slba = slba;
		return NVT_ST_LBA_RANGE;
	}
	len = (uint64_t)nlb << ns->lba_shift;
	if (len > req->ops->max_data_len) {
		req->error_loc = offsetof(struct nvt_sqe_rw, nlb);
		return NVT_ST_INVALID_FIELD;
	}
	req->io.op = op;
	req->io.slba = slba;
	req->io.nlb = nlb;
	req->io.fua = le16toh(rw->control) & NVME_IO_FUA;
	req->data_len = (uint32_t)len;
	req->execute = nvt_execute_rw;
	return NVT_ST_OK;
}

uint16_t nvt_parse_io_cmd(struct nvt_req *req)
{
	struct nvt_subsys *subsys = req->sq->ctrl->subsys;
	uint8_t opcode = req->cmd->common.opcode;
	uint32_t nsid = le32toh(req->cmd->common.nsid);

	/* Fused operations arrive with Compare and Write support. */
	if (req->cmd->common.flags & NVT_SQE_FUSE_MASK) {
		req->error_loc = offsetof(struct nvt_sqe_common, flags);
		return NVT_ST_INVALID_FIELD;
	}
	if (opcode == nvme_cmd_flush && nsid == 0xffffffff) {
		req->execute = nvt_execute_flush_all;
		return NVT_ST_OK;
	}
	if (opcode != nvme_cmd_flush && opcode != nvme_cmd_write && opcode != nvme_cmd_read) {
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_INVALID_OPCODE;
	}
	if (nsid == 0 || nsid > NVT_MAX_NSID || !subsys->ns[nsid]) {
		req->error_loc = offsetof(struct nvt_sqe_common, nsid);
		return NVT_ST_INVALID_NS;
	}
	req->ns = subsys->ns[nsid];

	switch (opcode) {
	case nvme_cmd_flush:
		req->io.op = NVT_IO_FLUSH;
		req->io.slba = 0;
		req->io.nlb = 0;
		req->execute = nvt_execute_flush;
		return NVT_ST_OK;
	case nvme_cmd_write:
		return nvt_parse_rw(req, NVT_IO_WRITE);
	default:
		return nvt_parse_rw(req, NVT_IO_READ);
	}
}
