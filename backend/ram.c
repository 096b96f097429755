/* SPDX-License-Identifier: BSD-3-Clause */
/* The ramdisk backend: block data in one mapping, per-block metadata in a separate one. */
#define NVT_LOG_PREFIX "ram: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nvt/backend.h"
#include "nvt/log.h"

struct nvt_ram {
	uint8_t *data;
	size_t data_len;
	uint8_t *md;		/* NULL when the format has no metadata */
	size_t md_len;
};

static void *nvt_ram_map(size_t len)
{
	/* Untouched pages cost nothing, so a large namespace starts instantly. */
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void nvt_ram_close(struct nvt_ns *ns)
{
	struct nvt_ram *ram = ns->be_priv;

	if (!ram)
		return;
	if (ram->data)
		munmap(ram->data, ram->data_len);
	if (ram->md)
		munmap(ram->md, ram->md_len);
	free(ram);
	ns->be_priv = NULL;
}

static int nvt_ram_open(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg)
{
	struct nvt_ram *ram;

	ram = calloc(1, sizeof(*ram));
	if (!ram)
		return -ENOMEM;
	ns->be_priv = ram;
	ram->data_len = (size_t)ns->nblocks << ns->lba_shift;
	ram->data = nvt_ram_map(ram->data_len);
	if (!ram->data)
		goto out_close;
	if (ns->md_size) {
		ram->md_len = (size_t)ns->nblocks * ns->md_size;
		ram->md = nvt_ram_map(ram->md_len);
		if (!ram->md)
			goto out_close;
		/*
		 * As after an NVMe Format: a block never written carries the escape
		 * PI (app tag FFFFh, ref tag all ones), so reading it checks nothing
		 * instead of failing (NVM Command Set 1.0 §5.2.1.4).
		 */
		if (ns->pi.type)
			memset(ram->md, 0xff, ram->md_len);
	}
	return 0;

out_close:
	nvt_ram_close(ns);
	return -ENOMEM;
}

void *nvt_ram_block(struct nvt_ns *ns, uint64_t lba, void **md)
{
	struct nvt_ram *ram = ns->be_priv;

	if (ns->be != &nvt_ram_backend_ops || lba >= ns->nblocks)
		return NULL;
	if (md)
		*md = ram->md ? ram->md + lba * ns->md_size : NULL;
	return ram->data + (lba << ns->lba_shift);
}

/* Copy metadata between the request's md iovecs and the metadata area. */
static uint16_t nvt_ram_md_copy(struct nvt_req *req, uint8_t *md, size_t len, bool to_req)
{
	size_t done = 0;

	for (unsigned int i = 0; i < req->md_iov_cnt && done < len; i++) {
		size_t n = req->md_iov[i].iov_len;

		if (n > len - done)
			n = len - done;
		if (to_req)
			memcpy(req->md_iov[i].iov_base, md + done, n);
		else
			memcpy(md + done, req->md_iov[i].iov_base, n);
		done += n;
	}
	return done == len ? NVT_ST_OK : NVT_ST_DATA_XFER;
}

/* Extended-LBA layout: each block's data then its metadata, back to back in req->iov. */
static uint16_t nvt_ram_rw_interleaved(struct nvt_req *req, struct nvt_ram *ram, bool read)
{
	struct nvt_ns *ns = req->ns;
	size_t bs = ns->block_size, ms = ns->md_size, off = 0;
	uint16_t status = NVT_ST_OK;

	for (uint32_t i = 0; i < req->io.nlb && !status; i++, off += bs + ms) {
		uint64_t lba = req->io.slba + i;
		uint8_t *data = ram->data + (lba << ns->lba_shift);
		uint8_t *md = ram->md + lba * ms;

		if (read) {
			status = nvt_req_copy_to(req, off, data, bs);
			if (!status)
				status = nvt_req_copy_to(req, off + bs, md, ms);
		} else {
			status = nvt_req_copy_from(req, off, data, bs);
			if (!status)
				status = nvt_req_copy_from(req, off + bs, md, ms);
		}
	}
	return status;
}

/* Zero [off, off + len) of the data; whole pages go back to the kernel (they read as zero). */
static void nvt_ram_zero(struct nvt_ram *ram, size_t off, size_t len, bool release)
{
	size_t page = 4096, start = (off + page - 1) & ~(page - 1), end = (off + len) & ~(page - 1);

	if (release && start < end &&
	    !madvise(ram->data + start, end - start, MADV_DONTNEED)) {
		memset(ram->data + off, 0, start - off);
		memset(ram->data + end, 0, off + len - end);
		return;
	}
	memset(ram->data + off, 0, len);
}

/* The stored PI of [slba, slba + nlb) as the command's PI context asks. */
static uint16_t nvt_ram_check_pi(struct nvt_req *req, struct nvt_ram *ram, uint64_t slba,
				 uint32_t nlb)
{
	struct nvt_ns *ns = req->ns;
	struct iovec d, m;
	struct nvt_pi_err err;
	int ret;

	/* No PI, no metadata area: nothing to check and no pointer to form. */
	if (!ns->pi.type || !ram->md)
		return NVT_ST_OK;
	d = (struct iovec){ ram->data + (slba << ns->lba_shift), (size_t)nlb << ns->lba_shift };
	m = (struct iovec){ ram->md + slba * ns->md_size, (size_t)nlb * ns->md_size };
	ret = nvt_pi_verify(&req->pi, &d, 1, &m, 1, nlb, &err);
	if (ret == -EILSEQ)
		return nvt_req_pi_failed(req, &err);
	return ret ? NVT_ST_INTERNAL : NVT_ST_OK;
}

static uint16_t nvt_ram_write_zeroes(struct nvt_req *req, struct nvt_ram *ram)
{
	struct nvt_ns *ns = req->ns;
	size_t off = (size_t)req->io.slba << ns->lba_shift, len = (size_t)req->io.nlb << ns->lba_shift;
	uint8_t *md = ram->md ? ram->md + req->io.slba * ns->md_size : NULL;
	size_t md_len = (size_t)req->io.nlb * ns->md_size;

	nvt_ram_zero(ram, off, len, req->io.deac);
	if (!md)
		return NVT_ST_OK;
	memset(md, 0, md_len);
	/* PRACT=1: the zeroed blocks get valid PI (guard of zeroes, tags per type). */
	if (ns->pi.type && req->pi.pract) {
		struct iovec d = { ram->data + off, len }, m = { md, md_len };

		if (nvt_pi_generate(&req->pi, &d, 1, &m, 1, req->io.nlb))
			return NVT_ST_INTERNAL;
	}
	return NVT_ST_OK;
}

static uint16_t nvt_ram_deallocate(struct nvt_req *req, struct nvt_ram *ram)
{
	struct nvme_dsm_range ranges[NVME_DSM_MAX_RANGES];
	struct nvt_ns *ns = req->ns;
	uint16_t status;

	/* The core validated every range already. */
	status = nvt_req_copy_from(req, 0, ranges, (size_t)req->io.nr_ranges * sizeof(ranges[0]));
	for (unsigned int i = 0; i < req->io.nr_ranges && !status; i++) {
		uint64_t slba = le64toh(ranges[i].slba);
		uint32_t nlb = le32toh(ranges[i].nlb);

		nvt_range_io_begin(&ns->range_lock, slba, nlb);
		nvt_ram_zero(ram, (size_t)slba << ns->lba_shift, (size_t)nlb << ns->lba_shift, true);
		/* Deallocated blocks read as zeroes with the escape PI, as never-written ones. */
		if (ram->md)
			memset(ram->md + slba * ns->md_size, ns->pi.type ? 0xff : 0,
			       (size_t)nlb * ns->md_size);
		nvt_range_io_end(&ns->range_lock);
	}
	return status;
}

static uint16_t nvt_ram_compare(struct nvt_req *req, struct nvt_ram *ram)
{
	struct nvt_ns *ns = req->ns;
	size_t bs = ns->block_size, ms = ns->md_size;
	uint16_t status;
	bool same = true;

	/* NVMe 2.0 §3.2.1: the stored blocks' PI is checked first, as for a read. */
	status = nvt_ram_check_pi(req, ram, req->io.slba, req->io.nlb);
	if (status)
		return status;
	if (req->io.md_interleaved) {
		for (uint32_t i = 0; i < req->io.nlb && same; i++) {
			uint64_t lba = req->io.slba + i;

			same = nvt_req_equal(req, i * (bs + ms), ram->data + (lba << ns->lba_shift), bs) &&
			       nvt_req_equal(req, i * (bs + ms) + bs, ram->md + lba * ms, ms);
		}
	} else {
		same = nvt_req_equal(req, 0, ram->data + (req->io.slba << ns->lba_shift),
				     (size_t)req->io.nlb << ns->lba_shift);
	}
	return same ? NVT_ST_OK : NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED) | NVT_SC_DNR;
}

/* One Copy source range to @dlba: checks first, then the move, then new PI if asked. */
static uint16_t nvt_ram_copy_range(struct nvt_req *req, struct nvt_ram *ram,
				   const struct nvt_copy_range *r, uint64_t dlba)
{
	struct nvt_ns *ns = req->ns;
	size_t ms = ns->md_size, len = (size_t)r->nlb << ns->lba_shift;
	struct iovec sd = { ram->data + (r->slba << ns->lba_shift), len };
	struct iovec sm = { ram->md ? ram->md + r->slba * ms : NULL, r->nlb * ms };
	struct iovec dd = { ram->data + (dlba << ns->lba_shift), len };
	struct iovec dm = { ram->md ? ram->md + dlba * ms : NULL, r->nlb * ms };
	uint64_t ref_mask = ns->pi.guard == NVT_PI_GUARD_CRC64 ? 0xffffffffffffull : 0xffffffffull;
	struct nvt_pi_ctx rctx, wctx = req->pi;
	struct nvt_pi_err err;

	if (ns->pi.type) {
		nvt_pi_ctx_init(&rctx, &ns->pi, r->slba, req->io.prinfor & NVT_PI_CHECK_MASK,
				r->eilbrt, r->elbat, r->elbatm);
		if (nvt_pi_verify(&rctx, &sd, 1, &sm, 1, r->nlb, &err) == -EILSEQ)
			return nvt_req_pi_failed(req, &err);
		/* Destination tags continue across ranges (Types 1 and 2). */
		wctx.slba = dlba;
		if (ns->pi.type != NVT_PI_TYPE3)
			wctx.ref_tag = (req->pi.ref_tag + (dlba - req->io.slba)) & ref_mask;
		if (!wctx.pract && nvt_pi_verify(&wctx, &sd, 1, &sm, 1, r->nlb, &err) == -EILSEQ)
			return nvt_req_pi_failed(req, &err);
	}
	memmove(dd.iov_base, sd.iov_base, len);
	if (ram->md)
		memmove(dm.iov_base, sm.iov_base, r->nlb * ms);
	if (ns->pi.type && wctx.pract && nvt_pi_generate(&wctx, &dd, 1, &dm, 1, r->nlb))
		return NVT_ST_INTERNAL;
	return NVT_ST_OK;
}

/*
 * Copy: the ranges in order, each as memmove (so a range may overlap the
 * destination), the sources' PI checked as PRINFOR and their own tags say,
 * the destination's PI generated (PRINFOW.PRACT) or checked against the
 * destination's tags before it is stored.
 */
static uint16_t nvt_ram_copy(struct nvt_req *req, struct nvt_ram *ram)
{
	struct nvt_ns *ns = req->ns;
	uint64_t dlba = req->io.slba;
	struct nvt_copy_range r;
	uint16_t status = NVT_ST_OK;

	for (unsigned int i = 0; i < req->io.nr_ranges && !status; i++) {
		uint64_t lo, hi;

		status = nvt_copy_range_get(req, i, &r);
		if (status)
			break;
		/* Source and destination, held as one span against a fused compare-and-write. */
		lo = r.slba < dlba ? r.slba : dlba;
		hi = r.slba + r.nlb > dlba + r.nlb ? r.slba + r.nlb : dlba + r.nlb;
		nvt_range_io_begin(&ns->range_lock, lo, hi - lo);
		status = nvt_ram_copy_range(req, ram, &r, dlba);
		nvt_range_io_end(&ns->range_lock);
		dlba += r.nlb;
	}
	return status;
}

static void nvt_ram_submit(struct nvt_req *req)
{
	struct nvt_ns *ns = req->ns;
	struct nvt_ram *ram = ns->be_priv;
	size_t off = (size_t)req->io.slba << ns->lba_shift;
	size_t len = (size_t)req->io.nlb << ns->lba_shift;
	uint8_t *md = ram->md ? ram->md + req->io.slba * ns->md_size : NULL;
	size_t md_len = (size_t)req->io.nlb * ns->md_size;
	uint16_t status = NVT_ST_OK;

	/* Blocks touched in place: no fused compare-and-write may hold them meanwhile. */
	bool span = req->io.op != NVT_IO_FLUSH && req->io.op != NVT_IO_DEALLOCATE &&
		    req->io.op != NVT_IO_COPY;

	if (span)
		nvt_range_io_begin(&ns->range_lock, req->io.slba, req->io.nlb);
	if (req->io.md_interleaved && ram->md &&
	    (req->io.op == NVT_IO_READ || req->io.op == NVT_IO_WRITE)) {
		status = nvt_ram_rw_interleaved(req, ram, req->io.op == NVT_IO_READ);
		goto out;
	}
	switch (req->io.op) {
	case NVT_IO_READ:
		status = nvt_req_copy_to(req, 0, ram->data + off, len);
		if (!status && md && req->md_iov_cnt)
			status = nvt_ram_md_copy(req, md, md_len, true);
		break;
	case NVT_IO_WRITE:
		status = nvt_req_copy_from(req, 0, ram->data + off, len);
		if (!status && md && req->md_iov_cnt)
			status = nvt_ram_md_copy(req, md, md_len, false);
		break;
	case NVT_IO_FLUSH:
		/* RAM is the medium: a completed write is already there. */
		break;
	case NVT_IO_WRITE_ZEROES:
		status = nvt_ram_write_zeroes(req, ram);
		break;
	case NVT_IO_DEALLOCATE:
		status = nvt_ram_deallocate(req, ram);
		break;
	case NVT_IO_COMPARE:
		status = nvt_ram_compare(req, ram);
		break;
	case NVT_IO_COPY:
		status = nvt_ram_copy(req, ram);
		break;
	case NVT_IO_VERIFY:
		/* Memory is always readable; what can be wrong is the PI. */
		status = ram->md ? nvt_ram_check_pi(req, ram, req->io.slba, req->io.nlb) : NVT_ST_OK;
		break;
	}
out:
	if (span)
		nvt_range_io_end(&ns->range_lock);
	nvt_req_complete(req, status);
}

const struct nvt_backend_ops nvt_ram_backend_ops = {
	.name = "ram",
	.flags = NVT_BE_METADATA,
	.open = nvt_ram_open,
	.close = nvt_ram_close,
	.submit = nvt_ram_submit,
	.block = nvt_ram_block,
};
