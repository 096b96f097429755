/* SPDX-License-Identifier: BSD-3-Clause */
/* The NVMe I/O command front: parse, bounds, lengths, the bio handed to the namespace layer, and its answer as an NVMe status. */
#define NVT_LOG_PREFIX "io: "
#include <errno.h>
#include <string.h>

#include "nvt/log.h"
#include "nvt/stats.h"
#include "nvt/target.h"
#include "nvt/util.h"

uint16_t nvt_req_pi_failed(struct nvt_req *req, const struct nvt_pi_err *err)
{
	static const char *const what[] = { "?", "guard", "app tag", "ref tag" };
	static const uint16_t loc[] = {
		0, offsetof(struct nvt_sqe_rw, slba), offsetof(struct nvt_sqe_rw, apptag),
		offsetof(struct nvt_sqe_rw, reftag),
	};
	bool stored = req->bio.op != NVT_BIO_WRITE;

	req->error_slba = err->lba;
	req->error_loc = loc[err->type];
	nvt_warn_ratelimited("%s nsid %u: %s check failed at LBA %llu (%s %s: expected %#llx, found %#llx)",
			     req->ns->subsys->nqn, req->ns->nsid, what[err->type],
			     (unsigned long long)err->lba, stored ? "stored" : "from host",
			     stored ? "block" : "data",
			     (unsigned long long)err->expected, (unsigned long long)err->actual);
	return nvt_pi_err_to_status(err);
}

/* How the namespace layer's answer reads to an NVMe host, with its error log fields. */
static uint16_t nvt_io_status(struct nvt_req *req)
{
	struct nvt_bio *bio = &req->bio;

	switch (bio->status) {
	case NVT_BIO_OK:
		return NVT_ST_OK;
	case NVT_BIO_PI:
		return nvt_req_pi_failed(req, &bio->pi_err);	/* logs it, error location by kind */
	case NVT_BIO_DEVICE:
		nvt_warn_ratelimited("%s nsid %u: device status %#x at LBA %llu",
				     req->ns->subsys->nqn, req->ns->nsid, bio->dev_status,
				     (unsigned long long)bio->err_lba);
		break;
	default:
		break;
	}
	req->error_slba = bio->err_lba;
	req->error_loc = bio->status == NVT_BIO_UNSUPPORTED || bio->status == NVT_BIO_RESV_CONFLICT ?
			 offsetof(struct nvt_sqe_common, opcode) : offsetof(struct nvt_sqe_rw, slba);
	return nvt_bio_nvme_status(bio);
}

static void nvt_io_bio_done(struct nvt_bio *bio)
{
	struct nvt_req *req = container_of(bio, struct nvt_req, bio);

	nvt_req_complete(req, nvt_io_status(req));
}

/* The buffers the transport set up, and where completion goes: the rest was set by parse. */
static void nvt_io_bio_prepare(struct nvt_req *req)
{
	struct nvt_bio *bio = &req->bio;

	bio->ns = req->ns;
	bio->chan = nvt_ns_chan_get(req->ns, req->sq->pg);
	bio->iov = req->iov;
	bio->iov_cnt = req->iov_cnt;
	bio->md_iov = req->md_iov;
	bio->md_iov_cnt = req->md_iov_cnt;
	bio->done = nvt_io_bio_done;
	/* Checked at parse, and again as admitted: a fence may have come in between (RDMA READ). */
	bio->resv_host = req->sq->ctrl->hostid;
}

static void nvt_execute_ns(struct nvt_req *req)
{
	nvt_io_bio_prepare(req);
	nvt_ns_submit(&req->bio);
}

/*
 * Flush to NSID FFFFFFFFh: every namespace with a volatile write cache, one
 * after the other through the request's one bio.
 */
static void nvt_flush_all_next(struct nvt_req *req);

static void nvt_flush_all_done(struct nvt_bio *bio)
{
	struct nvt_req *req = container_of(bio, struct nvt_req, bio);

	if (bio->status) {
		nvt_req_complete(req, nvt_io_status(req));
		return;
	}
	nvt_flush_all_next(req);
}

static void nvt_flush_all_next(struct nvt_req *req)
{
	struct nvt_subsys *subsys = req->flush_subsys;

	while (++req->flush_nsid <= NVT_MAX_NSID) {
		struct nvt_ns *ns = subsys->ns[req->flush_nsid];

		/* A namespace reserved against this host's writes is not its to flush. */
		if (!ns || !(ns->be->flags & NVT_BE_VOLATILE) ||
		    nvt_resv_check(&ns->resv, req->sq->ctrl->hostid, NVT_RESV_WRITE))
			continue;
		req->ns = ns;
		nvt_io_bio_prepare(req);
		req->bio.done = nvt_flush_all_done;
		nvt_ns_submit(&req->bio);
		return;
	}
	nvt_req_complete(req, NVT_ST_OK);
}

static void nvt_execute_flush_all(struct nvt_req *req)
{
	req->flush_nsid = 0;
	nvt_flush_all_next(req);
}

static void nvt_io_bio_init(struct nvt_req *req, enum nvt_bio_op op, uint64_t slba, uint32_t nlb,
			    uint32_t flags)
{
	struct nvt_bio *bio = &req->bio;

	bio->op = op;
	bio->slba = slba;
	bio->nlb = nlb;
	bio->flags = flags;
	bio->nr_ranges = 0;
	bio->get_range = NULL;
	bio->src_prinfo = 0;
	bio->copy_src = 0;
	memset(&bio->pi, 0, sizeof(bio->pi));
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

/*
 * The fields every block command of the read/write layout shares: the range
 * (checked against the namespace), the bio, and the PI context from PRINFO,
 * the tags and, for the 64-bit guard, the upper ref tag bits in CDW3.
 */
static uint16_t nvt_parse_block_cmd(struct nvt_req *req, enum nvt_bio_op op)
{
	struct nvt_sqe_rw *rw = &req->cmd->rw;
	struct nvt_ns *ns = req->ns;
	uint64_t slba = le64toh(rw->slba), eilbrt = le32toh(rw->reftag);
	uint32_t nlb = (uint32_t)le16toh(rw->nlb) + 1;
	uint16_t control = le16toh(rw->control);
	uint32_t flags = 0;
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
	if (control & NVME_IO_FUA)
		flags |= NVT_BIO_FUA;
	/* Write Zeroes DEAC: CDW12 bit 25, bit 9 of the control half. */
	if (op == NVT_BIO_WRITE_ZEROES && (control & (1u << 9)))
		flags |= NVT_BIO_DEAC;
	/* Whatever reads stored blocks checks their PI as PRCHK asks. */
	if (ns->pi.type && op != NVT_BIO_WRITE && op != NVT_BIO_WRITE_ZEROES)
		flags |= NVT_BIO_PI_CHECK_READ;
	nvt_io_bio_init(req, op, slba, nlb, flags);
	nvt_pi_ctx_init(&req->bio.pi, &ns->pi, slba, NVT_PI_PRINFO(control), eilbrt,
			le16toh(rw->apptag), le16toh(rw->appmask));
	return NVT_ST_OK;
}

/* Write Zeroes, Verify: a range and PI parameters, no data on the wire. */
static uint16_t nvt_parse_range_only(struct nvt_req *req, enum nvt_bio_op op)
{
	uint16_t status = nvt_parse_block_cmd(req, op);

	if (status)
		return status;
	req->data_len = 0;
	req->execute = nvt_execute_ns;
	return NVT_ST_OK;
}

/* DSM range @i, from the host's data (validated at execute). */
static int nvt_dsm_get_range(struct nvt_bio *bio, unsigned int i, struct nvt_bio_range *r)
{
	struct nvt_req *req = container_of(bio, struct nvt_req, bio);
	struct nvme_dsm_range d;

	if (nvt_req_copy_from(req, (size_t)i * sizeof(d), &d, sizeof(d)))
		return -EINVAL;
	*r = (struct nvt_bio_range){ .slba = le64toh(d.slba), .nlb = le32toh(d.nlb) };
	return 0;
}

/* Dataset Management: deallocate the listed ranges; other attributes are hints we ignore. */
static void nvt_execute_dsm(struct nvt_req *req)
{
	struct nvt_bio_range r;
	uint16_t status = NVT_ST_OK;

	if (!req->dsm_deallocate) {
		nvt_req_complete(req, NVT_ST_OK);
		return;
	}
	for (unsigned int i = 0; i < req->bio.nr_ranges && !status; i++) {
		status = nvt_dsm_get_range(&req->bio, i, &r) ? NVT_ST_DATA_XFER : NVT_ST_OK;
		if (!status)
			status = nvt_check_range(req, r.slba, r.nlb);
	}
	if (status) {
		nvt_req_complete(req, status);
		return;
	}
	nvt_execute_ns(req);
}

static uint16_t nvt_parse_dsm(struct nvt_req *req)
{
	uint32_t nr = (le32toh(req->cmd->common.cdw10) & 0xff) + 1;

	nvt_io_bio_init(req, NVT_BIO_DEALLOCATE, 0, 0, 0);
	req->bio.nr_ranges = nr;
	req->bio.get_range = nvt_dsm_get_range;
	req->dsm_deallocate = le32toh(req->cmd->common.cdw11) & NVME_DSMGMT_AD;
	req->data_len = nr * (uint32_t)sizeof(struct nvme_dsm_range);
	/* Linux hosts describe a whole page for a few ranges, as nvmet allows. */
	req->flags |= NVT_REQ_XFER_LONGER_OK;
	req->execute = nvt_execute_dsm;
	return NVT_ST_OK;
}

/* Copy source range @i, decoded from either descriptor format in the host's data. */
static int nvt_copy_get_range(struct nvt_bio *bio, unsigned int i, struct nvt_bio_range *r)
{
	struct nvt_req *req = container_of(bio, struct nvt_req, bio);

	if (req->copy_fmt == 0) {
		struct nvt_copy_desc0 d;

		if (nvt_req_copy_from(req, (size_t)i * sizeof(d), &d, sizeof(d)))
			return -EINVAL;
		r->slba = le64toh(d.slba);
		r->nlb = (uint32_t)le16toh(d.nlb) + 1;
		r->eilbrt = le32toh(d.eilbrt);
		r->elbat = le16toh(d.elbat);
		r->elbatm = le16toh(d.elbatm);
	} else {
		struct nvt_copy_desc1 d;

		if (nvt_req_copy_from(req, (size_t)i * sizeof(d), &d, sizeof(d)))
			return -EINVAL;
		r->slba = le64toh(d.slba);
		r->nlb = (uint32_t)le16toh(d.nlb) + 1;
		r->eilbrt = 0;
		for (int b = 5; b >= 0; b--)
			r->eilbrt = r->eilbrt << 8 | d.elbt[b];
		r->elbat = le16toh(d.elbat);
		r->elbatm = le16toh(d.elbatm);
	}
	/*
	 * Type 1 tags are the LBA's, as for Read: an EILBRT PRINFOR checks must
	 * be the source's LBA (Invalid Protection Information otherwise, as QEMU
	 * does), and is the LBA whatever an unchecked one says.
	 */
	if (req->ns->pi.type == NVT_PI_TYPE1) {
		if (!nvt_pi_ilbrt_ok(&req->ns->pi, r->slba, req->bio.src_prinfo, r->eilbrt))
			return -EPROTO;
		r->eilbrt = r->slba;
	}
	return 0;
}

/* Every source range and the destination inside the namespace, within MSSRL and MCL. */
static void nvt_execute_copy(struct nvt_req *req)
{
	struct nvt_bio_range r;
	uint64_t total = 0;
	uint16_t status = NVT_ST_OK;

	for (unsigned int i = 0; i < req->bio.nr_ranges && !status; i++) {
		int ret = nvt_copy_get_range(&req->bio, i, &r);

		if (ret == -EPROTO) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			req->error_slba = r.slba;
			status = NVT_ST_INVALID_PI;
			break;
		}
		status = ret ? NVT_ST_DATA_XFER : NVT_ST_OK;
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
		status = nvt_check_range(req, req->bio.slba, total);
	if (status) {
		nvt_req_complete(req, status);
		return;
	}
	req->bio.nlb = (uint32_t)total;
	nvt_execute_ns(req);
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
	nvt_io_bio_init(req, NVT_BIO_COPY, sdlba, 0, (cdw12 & (1u << 30)) ? NVT_BIO_FUA : 0);
	/* The bio's PI context describes the destination writes (PRINFOW, CDW14, CDW15). */
	nvt_pi_ctx_init(&req->bio.pi, &ns->pi, sdlba, (uint8_t)((cdw12 >> 26) & 0xf), eilbrt,
			(uint16_t)cdw15, (uint16_t)(cdw15 >> 16));
	req->bio.nr_ranges = nr;
	req->bio.get_range = nvt_copy_get_range;
	req->bio.src_prinfo = (uint8_t)((cdw12 >> 12) & 0xf);
	req->copy_fmt = (uint8_t)fmt;
	req->data_len = nr * (uint32_t)(fmt ? sizeof(struct nvt_copy_desc1) :
					      sizeof(struct nvt_copy_desc0));
	req->flags |= NVT_REQ_XFER_LONGER_OK;
	req->execute = nvt_execute_copy;
	return NVT_ST_OK;
}

static uint16_t nvt_parse_rw(struct nvt_req *req, enum nvt_bio_op op)
{
	struct nvt_ns *ns = req->ns;
	uint16_t status = nvt_parse_block_cmd(req, op);
	bool ext;
	uint32_t nlb;
	uint64_t len;

	if (status)
		return status;
	nlb = req->bio.nlb;
	ext = ns->md_size && nvt_pi_md_on_wire(&req->bio.pi);
	if (ext)
		req->bio.flags |= NVT_BIO_EXT;
	len = (uint64_t)nlb << ns->lba_shift;
	if (ext)
		len += (uint64_t)nlb * ns->md_size;
	if (len > nvt_sq_max_data_len(req->sq)) {
		req->error_loc = offsetof(struct nvt_sqe_rw, nlb);
		return NVT_ST_INVALID_FIELD;
	}
	req->data_len = (uint32_t)len;
	req->md_iov = NULL;
	req->md_iov_cnt = 0;
	/* PRACT=1, tuple-sized metadata: the host moves data only; PI lives in scratch. */
	if (ns->md_size && !ext && op != NVT_BIO_COMPARE)
		req->md_len = nlb * ns->md_size;
	req->execute = nvt_execute_ns;
	return NVT_ST_OK;
}

/*
 * Fused Compare and Write (NVMe 2.0 §3.4.2): both halves are here; the
 * namespace layer's compare-and-write holds the range against every other
 * command on it, compares, writes only on a match, and then both complete.
 */
static void nvt_fused_done(struct nvt_caw *caw)
{
	struct nvt_req *first = container_of(caw, struct nvt_req, caw);
	struct nvt_req *second = container_of(caw->write, struct nvt_req, bio);
	uint16_t st1 = nvt_io_status(first);
	uint16_t st2 = second->bio.status == NVT_BIO_ABORTED ? NVME_SC_FUSED_FAIL :
		       nvt_io_status(second);

	/* Decided together: neither completion may abort the other. */
	first->fused_peer = second->fused_peer = NULL;
	nvt_req_complete(first, st1);
	nvt_req_complete(second, st2);
}

static void nvt_fused_run(struct nvt_req *first, struct nvt_req *second)
{
	first->flags &= ~NVT_REQ_FUSED_READY;
	second->flags &= ~NVT_REQ_FUSED_READY;
	nvt_io_bio_prepare(first);
	nvt_io_bio_prepare(second);
	first->caw = (struct nvt_caw){
		.compare = &first->bio, .write = &second->bio, .done = nvt_fused_done,
	};
	nvt_ns_caw(&first->caw);
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
		status = nvt_parse_rw(req, NVT_BIO_COMPARE);
		if (status)
			return status;
		if (req->bio.nlb > NVT_ACWU) {
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
	status = nvt_parse_rw(req, NVT_BIO_WRITE);
	if (status)
		return status;
	/* Both halves name the same blocks (NVMe 2.0 §3.4.2). */
	if (req->ns != first->ns || req->bio.slba != first->bio.slba ||
	    req->bio.nlb != first->bio.nlb) {
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

/* Preempt and Abort: what the namespace admitted before the change is done; now it completes. */
static void nvt_resv_fenced(struct nvt_ns_fence *f)
{
	struct nvt_req *req = container_of(f, struct nvt_req, resv_fence);

	nvt_req_complete(req, NVT_ST_OK);
}

/*
 * Reservation Register / Acquire / Release / Report (NVMe 2.0 §7.2..7.5):
 * the namespace's state (resv.c), the host named by its Connect's host
 * identifier. They run here, on the queue's thread: a change holds the
 * state's flag for tens of instructions, never a mutex. A Preempt and
 * Abort completes once the namespace's earlier commands have finished
 * (nvt_ns_fence()), parked meanwhile, never spinning.
 */
static void nvt_execute_resv(struct nvt_req *req)
{
	struct nvt_sqe_common *c = &req->cmd->common;
	struct nvt_resv *r = &req->ns->resv;
	const uint8_t *hostid = req->sq->ctrl->hostid;
	uint32_t cdw10 = le32toh(c->cdw10);
	struct nvt_resv_events ev = { .nr = 0 };
	uint64_t key[2] = { 0, 0 };
	uint16_t st;

	if (c->opcode == nvme_cmd_resv_report) {
		/* Header and every registrant fit; a longer request reads zeroes past them. */
		uint8_t buf[sizeof(struct nvme_resv_status) +
			    NVT_RESV_MAX_REGS * sizeof(struct nvme_registered_ctrl_ext)];
		size_t len = req->data_len < sizeof(buf) ? req->data_len : sizeof(buf);

		st = nvt_resv_report(r, le32toh(c->cdw11) & 1, buf, len);
		if (st == NVT_ST_INVALID_FIELD)
			req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		else if (st)
			req->error_loc = offsetof(struct nvt_sqe_common, cdw11);
		if (!st)
			st = nvt_req_copy_to(req, 0, buf, len);
		if (!st && req->data_len > len)
			st = nvt_req_zero(req, len, req->data_len - len);
		nvt_req_complete(req, st);
		return;
	}
	st = nvt_req_copy_from(req, 0, key, req->data_len);
	if (st) {
		nvt_req_complete(req, st);
		return;
	}
	switch (c->opcode) {
	case nvme_cmd_resv_register:
		st = nvt_resv_register(r, hostid, cdw10, le64toh(key[0]), le64toh(key[1]), &ev);
		break;
	case nvme_cmd_resv_acquire:
		st = nvt_resv_acquire(r, hostid, cdw10, le64toh(key[0]), le64toh(key[1]), &ev);
		break;
	default:
		st = nvt_resv_release(r, hostid, cdw10, le64toh(key[0]), &ev);
		break;
	}
	if (st == NVT_ST_INVALID_FIELD)
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
	/* Queued for the other hosts before this host hears its command is done. */
	nvt_resv_notify(req->ns, &ev);
	if (!st && c->opcode == nvme_cmd_resv_acquire &&
	    (cdw10 & 7) == NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT) {
		struct nvt_ns_chan *chan = nvt_ns_chan_get(req->ns, req->sq->pg);

		if (chan) {
			nvt_ns_fence(&req->resv_fence, chan, nvt_resv_fenced);
			return;
		}
		/* An I/O queue's group always has the channel: a bug, said so rather than unfenced. */
		nvt_err("%s nsid %u: no channel to fence Preempt and Abort on", req->ns->subsys->nqn,
			req->ns->nsid);
		st = NVT_ST_INTERNAL;
	}
	nvt_req_complete(req, st);
}

static uint16_t nvt_parse_resv(struct nvt_req *req)
{
	uint8_t opcode = req->cmd->common.opcode;

	switch (opcode) {
	case nvme_cmd_resv_register:
	case nvme_cmd_resv_acquire:
		req->data_len = 16;	/* CRKEY, then NRKEY or PRKEY */
		break;
	case nvme_cmd_resv_release:
		req->data_len = 8;	/* CRKEY */
		break;
	default: {
		/* Report: NUMD is 0's based, in dwords. */
		uint64_t len = ((uint64_t)le32toh(req->cmd->common.cdw10) + 1) * 4;

		if (len > nvt_sq_max_data_len(req->sq)) {
			req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
			return NVT_ST_INVALID_FIELD;
		}
		req->data_len = (uint32_t)len;
		break;
	}
	}
	req->execute = nvt_execute_resv;
	return NVT_ST_OK;
}

/* Which reservation access group @opcode belongs to (NVMe 2.0 §8.19). */
static enum nvt_resv_access nvt_resv_access_of(uint8_t opcode)
{
	switch (opcode) {
	case nvme_cmd_read:
	case nvme_cmd_compare:
	case nvme_cmd_verify:
		return NVT_RESV_READ;
	case nvme_cmd_write:
	case nvme_cmd_write_zeroes:
	case nvme_cmd_dsm:
	case nvme_cmd_flush:
	case nvme_cmd_copy:
		return NVT_RESV_WRITE;
	default:
		return NVT_RESV_OTHER;
	}
}

/*
 * Reservation Conflict for a command the namespace's reservation denies
 * this host. Copy writes its destination and reads its sources, both of
 * this namespace: it needs both groups. Not logged: a conflict is the
 * reservation doing its job, the host's cluster software expects it.
 */
static uint16_t nvt_resv_access_check(struct nvt_req *req, uint8_t opcode)
{
	enum nvt_resv_access acc = nvt_resv_access_of(opcode);
	const uint8_t *hostid = req->sq->ctrl->hostid;
	uint16_t st;

	if (acc == NVT_RESV_OTHER)
		return NVT_ST_OK;
	st = nvt_resv_check(&req->ns->resv, hostid, acc);
	if (!st && opcode == nvme_cmd_copy)
		st = nvt_resv_check(&req->ns->resv, hostid, NVT_RESV_READ);
	if (st)
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
	return st;
}

uint16_t nvt_parse_io_cmd(struct nvt_req *req)
{
	struct nvt_subsys *subsys = req->sq->ctrl->subsys;
	uint8_t opcode = req->cmd->common.opcode;
	uint32_t nsid = le32toh(req->cmd->common.nsid);

	uint8_t fuse = req->cmd->common.flags & NVT_SQE_FUSE_MASK;
	uint16_t status;

	if (opcode == nvme_cmd_flush && nsid == 0xffffffff && !fuse) {
		/* Every namespace is in the path's one group: the same ANA answer as for one. */
		status = nvt_sq_ana_status(req->sq);
		if (status)
			return status;
		nvt_io_bio_init(req, NVT_BIO_FLUSH, 0, 0, 0);
		req->flush_subsys = subsys;
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
	case nvme_cmd_resv_register:
	case nvme_cmd_resv_report:
	case nvme_cmd_resv_acquire:
	case nvme_cmd_resv_release:
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
	/*
	 * Before a fused pair is formed: both halves fail the same way. The
	 * path first: a host told 302h fails over, where a reservation
	 * conflict would be the same on every path.
	 */
	status = nvt_sq_ana_status(req->sq);
	if (!status)
		status = nvt_resv_access_check(req, opcode);
	if (status)
		return status;
	if (fuse)
		return nvt_parse_fused(req, fuse);

	switch (opcode) {
	case nvme_cmd_flush:
		nvt_io_bio_init(req, NVT_BIO_FLUSH, 0, 0, 0);
		req->execute = nvt_execute_ns;
		return NVT_ST_OK;
	case nvme_cmd_write:
		return nvt_parse_rw(req, NVT_BIO_WRITE);
	case nvme_cmd_write_zeroes:
		return nvt_parse_range_only(req, NVT_BIO_WRITE_ZEROES);
	case nvme_cmd_verify:
		return nvt_parse_range_only(req, NVT_BIO_VERIFY);
	case nvme_cmd_dsm:
		return nvt_parse_dsm(req);
	case nvme_cmd_compare:
		return nvt_parse_rw(req, NVT_BIO_COMPARE);
	case nvme_cmd_copy:
		return nvt_parse_copy(req);
	case nvme_cmd_resv_register:
	case nvme_cmd_resv_report:
	case nvme_cmd_resv_acquire:
	case nvme_cmd_resv_release:
		return nvt_parse_resv(req);
	default:
		return nvt_parse_rw(req, NVT_BIO_READ);
	}
}
