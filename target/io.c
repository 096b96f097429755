/* SPDX-License-Identifier: BSD-3-Clause */
/* I/O command parsing: namespace, bounds, lengths, and the hand-off to the namespace's backend. */
#define NVT_LOG_PREFIX "io: "
#include <errno.h>

#include "nvt/log.h"
#include "nvt/target.h"

uint16_t nvt_req_pi_failed(struct nvt_req *req, const struct nvt_pi_err *err)
{
	static const char *const what[] = { "?", "guard", "app tag", "ref tag" };
	static const uint16_t loc[] = {
		0, offsetof(struct nvt_sqe_rw, slba), offsetof(struct nvt_sqe_rw, apptag),
		offsetof(struct nvt_sqe_rw, reftag),
	};

	req->error_slba = err->lba;
	req->error_loc = loc[err->type];
	nvt_warn_ratelimited("%s nsid %u: %s check failed at LBA %llu (%s %s: expected %#llx, found %#llx)",
			     req->ns->subsys->nqn, req->ns->nsid, what[err->type],
			     (unsigned long long)err->lba,
			     req->io.op == NVT_IO_READ ? "read" : "write",
			     req->io.op == NVT_IO_READ ? "stored" : "from host",
			     (unsigned long long)err->expected, (unsigned long long)err->actual);
	return nvt_pi_err_to_status(err);
}

uint16_t nvt_pi_read_check(struct nvt_req *req)
{
	struct nvt_pi_err err;
	int ret;

	/* Every read re-checks what is stored: corruption at rest is reported, not served. */
	if (req->io.md_interleaved)
		ret = nvt_pi_verify_ext(&req->pi, req->iov, req->iov_cnt, req->io.nlb, &err);
	else
		ret = nvt_pi_verify(&req->pi, req->iov, req->iov_cnt, req->md_iov,
				    req->md_iov_cnt, req->io.nlb, &err);
	if (ret == -EILSEQ)
		return nvt_req_pi_failed(req, &err);
	return ret ? NVT_ST_INTERNAL : NVT_ST_OK;
}

/* PI pre-step of a write: insert (PRACT=1) or check the host's (PRACT=0) before storing. */
static uint16_t nvt_pi_write_prep(struct nvt_req *req)
{
	struct nvt_pi_err err;
	int ret;

	if (!req->io.md_interleaved)
		return nvt_pi_generate(&req->pi, req->iov, req->iov_cnt, req->md_iov,
				       req->md_iov_cnt, req->io.nlb) ? NVT_ST_INTERNAL : NVT_ST_OK;
	ret = nvt_pi_verify_ext(&req->pi, req->iov, req->iov_cnt, req->io.nlb, &err);
	if (ret == -EILSEQ)
		return nvt_req_pi_failed(req, &err);
	if (ret)
		return NVT_ST_INTERNAL;
	/* PRACT=1 with metadata larger than the tuple: the host's metadata, our PI. */
	if (req->pi.pract &&
	    nvt_pi_generate_ext(&req->pi, req->iov, req->iov_cnt, req->io.nlb))
		return NVT_ST_INTERNAL;
	return NVT_ST_OK;
}

static void nvt_execute_rw(struct nvt_req *req)
{
	struct nvt_sq *sq = req->sq;
	uint64_t units = (uint64_t)req->io.nlb << (req->ns->lba_shift - 9);

	if (req->ns->pi.type && req->io.op == NVT_IO_WRITE) {
		uint16_t status = nvt_pi_write_prep(req);

		if (status) {
			nvt_req_complete(req, status);
			return;
		}
	}
	/* Counted by the queue's own thread: no shared counters on the I/O path. */
	if (req->io.op == NVT_IO_READ) {
		nvt_stat_add(&sq->nr_reads, 1);
		nvt_stat_add(&sq->blocks_read, units);
	} else {
		nvt_stat_add(&sq->nr_writes, 1);
		nvt_stat_add(&sq->blocks_written, units);
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

/* SLBA + NLB inside the namespace, with overflow in mind. */
static uint16_t nvt_check_range(struct nvt_req *req, uint64_t slba, uint64_t nlb)
{
	if (slba >= req->ns->nblocks || nlb > req->ns->nblocks - slba) {
		req->error_loc = offsetof(struct nvt_sqe_rw, slba);
		req->error_slba = slba;
		return NVT_ST_LBA_RANGE;
	}
	return NVT_ST_OK;
}

static void nvt_execute_backend(struct nvt_req *req)
{
	req->ns->be->submit(req);
}

/*
 * The fields every block command of the read/write layout shares: the range
 * (checked against the namespace), req->io, and the PI context from PRINFO,
 * the tags and, for the 64-bit guard, the upper ref tag bits in CDW3.
 */
static uint16_t nvt_parse_block_cmd(struct nvt_req *req, enum nvt_io_op op)
{
	struct nvt_sqe_rw *rw = &req->cmd->rw;
	struct nvt_ns *ns = req->ns;
	uint64_t slba = le64toh(rw->slba), eilbrt = le32toh(rw->reftag);
	uint32_t nlb = (uint32_t)le16toh(rw->nlb) + 1;
	uint16_t control = le16toh(rw->control);
	uint16_t status;

	status = nvt_check_range(req, slba, nlb);
	if (status)
		return status;
	if (ns->pi.guard == NVT_PI_GUARD_CRC64)
		eilbrt |= (uint64_t)(le32toh(rw->cdw3) & 0xffff) << 32;
	if (!nvt_pi_ilbrt_ok(&ns->pi, slba, NVT_PI_PRINFO(control), eilbrt)) {
		req->error_loc = offsetof(struct nvt_sqe_rw, reftag);
		return NVT_ST_INVALID_PI;
	}
	/* Type 1 tags are the LBA's, whatever an unchecked ILBRT says. */
	if (ns->pi.type == NVT_PI_TYPE1)
		eilbrt = slba;
	nvt_pi_ctx_init(&req->pi, &ns->pi, slba, NVT_PI_PRINFO(control), eilbrt,
			le16toh(rw->apptag), le16toh(rw->appmask));
	req->io = (struct nvt_io){
		.op = op, .slba = slba, .nlb = nlb, .fua = control & NVME_IO_FUA,
		/* Write Zeroes DEAC: CDW12 bit 25, bit 9 of the control half. */
		.deac = op == NVT_IO_WRITE_ZEROES && (control & (1u << 9)),
	};
	return NVT_ST_OK;
}

/* Write Zeroes, Verify: a range and PI parameters, no data on the wire. */
static uint16_t nvt_parse_range_only(struct nvt_req *req, enum nvt_io_op op)
{
	uint16_t status = nvt_parse_block_cmd(req, op);

	if (status)
		return status;
	req->data_len = 0;
	req->execute = nvt_execute_backend;
	return NVT_ST_OK;
}

/* Dataset Management: deallocate the listed ranges; other attributes are hints we ignore. */
static void nvt_execute_dsm(struct nvt_req *req)
{
	struct nvme_dsm_range ranges[NVME_DSM_MAX_RANGES];
	uint16_t status;

	if (!(le32toh(req->cmd->common.cdw11) & NVME_DSMGMT_AD)) {
		nvt_req_complete(req, NVT_ST_OK);
		return;
	}
	status = nvt_req_copy_from(req, 0, ranges, req->data_len);
	for (unsigned int i = 0; i < req->io.nr_ranges && !status; i++)
		status = nvt_check_range(req, le64toh(ranges[i].slba), le32toh(ranges[i].nlb));
	if (status) {
		nvt_req_complete(req, status);
		return;
	}
	req->ns->be->submit(req);
}

static uint16_t nvt_parse_dsm(struct nvt_req *req)
{
	uint32_t nr = (le32toh(req->cmd->common.cdw10) & 0xff) + 1;

	req->io = (struct nvt_io){ .op = NVT_IO_DEALLOCATE, .nr_ranges = (uint16_t)nr };
	req->data_len = nr * (uint32_t)sizeof(struct nvme_dsm_range);
	/* Linux hosts describe a whole page for a few ranges, as nvmet allows. */
	req->flags |= NVT_REQ_XFER_LONGER_OK;
	req->execute = nvt_execute_dsm;
	return NVT_ST_OK;
}

uint16_t nvt_copy_range_get(struct nvt_req *req, unsigned int i, struct nvt_copy_range *r)
{
	uint16_t status;

	if (req->io.copy_fmt == 0) {
		struct nvt_copy_desc0 d;

		status = nvt_req_copy_from(req, (size_t)i * sizeof(d), &d, sizeof(d));
		r->slba = le64toh(d.slba);
		r->nlb = (uint32_t)le16toh(d.nlb) + 1;
		r->eilbrt = le32toh(d.eilbrt);
		r->elbat = le16toh(d.elbat);
		r->elbatm = le16toh(d.elbatm);
	} else {
		struct nvt_copy_desc1 d;

		status = nvt_req_copy_from(req, (size_t)i * sizeof(d), &d, sizeof(d));
		r->slba = le64toh(d.slba);
		r->nlb = (uint32_t)le16toh(d.nlb) + 1;
		r->eilbrt = 0;
		for (int b = 5; b >= 0; b--)
			r->eilbrt = r->eilbrt << 8 | d.elbt[b];
		r->elbat = le16toh(d.elbat);
		r->elbatm = le16toh(d.elbatm);
	}
	return status;
}

/* Every source range and the destination inside the namespace, within MSSRL and MCL. */
static void nvt_execute_copy(struct nvt_req *req)
{
	struct nvt_copy_range r;
	uint64_t total = 0;
	uint16_t status = NVT_ST_OK;

	for (unsigned int i = 0; i < req->io.nr_ranges && !status; i++) {
		status = nvt_copy_range_get(req, i, &r);
		if (!status)
			status = nvt_check_range(req, r.slba, r.nlb);

		if (!status && r.nlb > NVT_COPY_MSSRL) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			status = NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CMD_SIZE_LIMIT_EXCEEDED) |
				 NVT_SC_DNR;
		}
		total += r.nlb;
	}
	if (!status && total > NVT_COPY_MCL) {
		req->error_loc = offsetof(struct nvt_sqe_common, dptr);
		status = NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CMD_SIZE_LIMIT_EXCEEDED) |
			 NVT_SC_DNR;
	}
	if (!status)
		status = nvt_check_range(req, req->io.slba, total);
	if (status) {
		nvt_req_complete(req, status);
		return;
	}
	req->io.nlb = (uint32_t)total;
	req->ns->be->submit(req);
}

/* Copy (19h), NVM Command Set 1.0 §3.3.1: many source ranges to one destination. */
static uint16_t nvt_parse_copy(struct nvt_req *req)
{
	struct nvt_sqe_common *c = &req->cmd->common;
	struct nvt_ns *ns = req->ns;
	uint32_t cdw12 = le32toh(c->cdw12), cdw15 = le32toh(c->cdw15);
	uint64_t sdlba = (uint64_t)le32toh(c->cdw11) << 32 | le32toh(c->cdw10);
	uint64_t eilbrt = le32toh(c->cdw14);
	uint32_t nr = (cdw12 & 0xff) + 1, fmt = (cdw12 >> 8) & 0xf;

	/* The descriptor format must carry the namespace's kind of reference tag. */
	if (fmt > 1 || (ns->pi.type && (fmt == 1) != (ns->pi.guard == NVT_PI_GUARD_CRC64))) {
		req->error_loc = offsetof(struct nvt_sqe_common, cdw12);
		return NVT_ST_INVALID_FIELD;
	}
	if (ns->pi.guard == NVT_PI_GUARD_CRC64)
		eilbrt |= (uint64_t)(le32toh(c->cdw3) & 0xffff) << 32;
	if (!nvt_pi_ilbrt_ok(&ns->pi, sdlba, (uint8_t)((cdw12 >> 26) & 0xf), eilbrt)) {
		req->error_loc = offsetof(struct nvt_sqe_common, cdw14);
		return NVT_ST_INVALID_PI;
	}
	if (ns->pi.type == NVT_PI_TYPE1)
		eilbrt = sdlba;
	/* req->pi describes the destination writes (PRINFOW, CDW14, CDW15). */
	nvt_pi_ctx_init(&req->pi, &ns->pi, sdlba, (uint8_t)((cdw12 >> 26) & 0xf), eilbrt,
			(uint16_t)cdw15, (uint16_t)(cdw15 >> 16));
	req->io = (struct nvt_io){
		.op = NVT_IO_COPY, .slba = sdlba, .nr_ranges = (uint16_t)nr,
		.copy_fmt = (uint8_t)fmt, .prinfor = (uint8_t)((cdw12 >> 12) & 0xf),
		.fua = cdw12 & (1u << 30),
	};
	req->data_len = nr * (uint32_t)(fmt ? sizeof(struct nvt_copy_desc1) :
					      sizeof(struct nvt_copy_desc0));
	req->flags |= NVT_REQ_XFER_LONGER_OK;
	req->execute = nvt_execute_copy;
	return NVT_ST_OK;
}

static uint16_t nvt_parse_rw(struct nvt_req *req, enum nvt_io_op op)
{
	struct nvt_ns *ns = req->ns;
	uint16_t status = nvt_parse_block_cmd(req, op);
	uint32_t nlb;
	uint64_t len;

	if (status)
		return status;
	nlb = req->io.nlb;
	req->io.md_interleaved = ns->md_size && nvt_pi_md_on_wire(&req->pi);
	len = (uint64_t)nlb << ns->lba_shift;
	if (req->io.md_interleaved)
		len += (uint64_t)nlb * ns->md_size;
	if (len > nvt_sq_max_data_len(req->sq)) {
		req->error_loc = offsetof(struct nvt_sqe_rw, nlb);
		return NVT_ST_INVALID_FIELD;
	}
	req->data_len = (uint32_t)len;
	req->md_iov = NULL;
	req->md_iov_cnt = 0;
	/* PRACT=1, tuple-sized metadata: the host moves data only; PI lives in scratch. */
	if (ns->md_size && !req->io.md_interleaved)
		req->md_len = nlb * ns->md_size;
	if (op == NVT_IO_READ && ns->pi.type)
		req->flags |= NVT_REQ_PI_READ;
	req->execute = op == NVT_IO_COMPARE ? nvt_execute_backend : nvt_execute_rw;
	return NVT_ST_OK;
}

/*
 * Fused Compare and Write (NVMe 2.0 §3.4.2): both halves are here, the
 * range is held against every other command on it, the compare decides
 * whether the write happens, then both complete. Backends complete these
 * in place (ram), so the range is held only for the memcmp and memcpy.
 */
static void nvt_fused_run(struct nvt_req *first, struct nvt_req *second)
{
	struct nvt_ns *ns = first->ns;
	int slot;

	first->flags &= ~NVT_REQ_FUSED_READY;
	second->flags &= ~NVT_REQ_FUSED_READY;
	first->fused_status = second->fused_status = NVT_ST_INTERNAL;
	slot = nvt_range_excl_lock(&ns->range_lock, first->io.slba, first->io.nlb);
	first->flags |= NVT_REQ_FUSED_HOLD;
	ns->be->submit(first);
	if (!first->fused_status) {
		second->flags |= NVT_REQ_FUSED_HOLD;
		nvt_execute_rw(second);
	} else {
		second->fused_status = NVME_SC_FUSED_FAIL;
	}
	nvt_range_excl_unlock(&ns->range_lock, slot);
	/* Held completions that did not happen in place would be lost: none do yet. */
	first->flags &= ~NVT_REQ_FUSED_HOLD;
	second->flags &= ~NVT_REQ_FUSED_HOLD;
	first->fused_peer = second->fused_peer = NULL;
	nvt_req_complete(first, first->fused_status);
	nvt_req_complete(second, second->fused_status);
}

static void nvt_execute_fused_first(struct nvt_req *req)
{
	if (req->flags & NVT_REQ_FUSED_ORPHAN) {
		nvt_req_complete(req, req->fused_status);
		return;
	}
	if (req->fused_peer && (req->fused_peer->flags & NVT_REQ_FUSED_READY)) {
		nvt_fused_run(req, req->fused_peer);
		return;
	}
	req->flags |= NVT_REQ_FUSED_READY;
}

static void nvt_execute_fused_second(struct nvt_req *req)
{
	struct nvt_req *first = req->fused_peer;

	if (req->flags & NVT_REQ_FUSED_ORPHAN) {
		nvt_req_complete(req, req->fused_status);
		return;
	}
	if (!first) {
		nvt_req_complete(req, NVME_SC_FUSED_FAIL);
		return;
	}
	if (first->flags & NVT_REQ_FUSED_READY) {
		nvt_fused_run(first, req);
		return;
	}
	req->flags |= NVT_REQ_FUSED_READY;
}

/*
 * FUSE bits of an I/O command. Adjacency (the Write is the very next
 * command on this SQ) was settled by nvt_req_init(): a second half arrives
 * here already paired with its first in req->fused_peer, and any failure
 * from here on fails both through the completion funnel.
 */
static uint16_t nvt_parse_fused(struct nvt_req *req, uint8_t fuse)
{
	struct nvt_req *first = req->fused_peer;
	uint8_t opcode = req->cmd->common.opcode;
	uint16_t status;

	if (fuse == NVT_FUSE_FIRST) {
		if (opcode != nvme_cmd_compare)
			goto invalid;
		status = nvt_parse_rw(req, NVT_IO_COMPARE);
		if (status)
			return status;
		if (req->io.nlb > NVT_ACWU) {
			req->error_loc = offsetof(struct nvt_sqe_rw, nlb);
			return NVT_ST_INVALID_FIELD;
		}
		req->flags |= NVT_REQ_FUSED_FIRST;
		req->execute = nvt_execute_fused_first;
		req->sq->fused_first = req;
		return NVT_ST_OK;
	}
	if (fuse != NVT_FUSE_SECOND || !first || opcode != nvme_cmd_write)
		goto invalid;
	status = nvt_parse_rw(req, NVT_IO_WRITE);
	if (status)
		return status;
	/* Both halves name the same blocks (NVMe 2.0 §3.4.2). */
	if (req->ns != first->ns || req->io.slba != first->io.slba || req->io.nlb != first->io.nlb) {
		req->error_loc = offsetof(struct nvt_sqe_rw, slba);
		return NVT_ST_INVALID_FIELD;
	}
	req->flags |= NVT_REQ_FUSED_SECOND;
	req->execute = nvt_execute_fused_second;
	return NVT_ST_OK;

invalid:
	req->error_loc = offsetof(struct nvt_sqe_common, flags);
	return NVT_ST_INVALID_FIELD;
}

uint16_t nvt_parse_io_cmd(struct nvt_req *req)
{
	struct nvt_subsys *subsys = req->sq->ctrl->subsys;
	uint8_t opcode = req->cmd->common.opcode;
	uint32_t nsid = le32toh(req->cmd->common.nsid);

	uint8_t fuse = req->cmd->common.flags & NVT_SQE_FUSE_MASK;

	if (opcode == nvme_cmd_flush && nsid == 0xffffffff && !fuse) {
		req->execute = nvt_execute_flush_all;
		return NVT_ST_OK;
	}
	switch (opcode) {
	case nvme_cmd_flush:
	case nvme_cmd_write:
	case nvme_cmd_read:
	case nvme_cmd_write_zeroes:
	case nvme_cmd_dsm:
	case nvme_cmd_compare:
	case nvme_cmd_verify:
	case nvme_cmd_copy:
		break;
	default:
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_INVALID_OPCODE;
	}
	if (nsid == 0 || nsid > NVT_MAX_NSID || !subsys->ns[nsid]) {
		req->error_loc = offsetof(struct nvt_sqe_common, nsid);
		return NVT_ST_INVALID_NS;
	}
	req->ns = subsys->ns[nsid];
	if (fuse)
		return nvt_parse_fused(req, fuse);

	switch (opcode) {
	case nvme_cmd_flush:
		req->io = (struct nvt_io){ .op = NVT_IO_FLUSH };
		req->execute = nvt_execute_flush;
		return NVT_ST_OK;
	case nvme_cmd_write:
		return nvt_parse_rw(req, NVT_IO_WRITE);
	case nvme_cmd_write_zeroes:
		return nvt_parse_range_only(req, NVT_IO_WRITE_ZEROES);
	case nvme_cmd_verify:
		return nvt_parse_range_only(req, NVT_IO_VERIFY);
	case nvme_cmd_dsm:
		return nvt_parse_dsm(req);
	case nvme_cmd_compare:
		return nvt_parse_rw(req, NVT_IO_COMPARE);
	case nvme_cmd_copy:
		return nvt_parse_copy(req);
	default:
		return nvt_parse_rw(req, NVT_IO_READ);
	}
}
