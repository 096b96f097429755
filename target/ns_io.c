/* SPDX-License-Identifier: BSD-3-Clause */
/* The namespace layer: PI steps, commands emulated over read/write in bounded chunks, compare-and-write, per-poll-group channels. */
#define NVT_LOG_PREFIX "ns: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/util.h"
#include "ns_internal.h"

#define NVT_NS_DEV_COMPARE_FAILURE 0x285	/* a device's dev_status Compare Failure (SCT 2h, SC 85h) */
#define NVT_NS_MAX_IOV	320	/* segments of a slice of the front's buffer (8 MiB in 32 KiB chunks, and some) */
/* ---- results ---- */

static enum nvt_bio_status nvt_bio_errno_status(const struct nvt_bio *bio, int err)
{
	switch (-err) {
	case 0:
		return NVT_BIO_OK;
	case EIO:
	case ENODATA:
	case EBADMSG:
		return bio->op == NVT_BIO_READ || bio->op == NVT_BIO_VERIFY ||
		       bio->op == NVT_BIO_COMPARE ? NVT_BIO_MEDIA_READ : NVT_BIO_MEDIA_WRITE;
	case ENOSPC:
	case EDQUOT:
		return NVT_BIO_NOSPC;
	case ERANGE:
		return NVT_BIO_LBA_RANGE;
	case EOPNOTSUPP:
		return NVT_BIO_UNSUPPORTED;
	default:
		return NVT_BIO_INTERNAL;
	}
}

static void nvt_bio_fail(struct nvt_bio *bio, enum nvt_bio_status st, uint64_t lba)
{
	if (bio->status)
		return;		/* the first failure is the one reported */
	bio->status = st;
	bio->err_lba = lba;
}

static void nvt_bio_pi_fail(struct nvt_bio *bio, const struct nvt_pi_err *err)
{
	if (bio->status)
		return;
	bio->status = NVT_BIO_PI;
	bio->pi_err = *err;
	bio->err_lba = err->lba;
}

/* A PI walk's return: 0, or the bio failed (PI mismatch, or buffers that do not fit). */
static int nvt_pi_result(struct nvt_bio *bio, int ret, const struct nvt_pi_err *err)
{
	if (ret == -EILSEQ)
		nvt_bio_pi_fail(bio, err);
	else if (ret)
		nvt_bio_fail(bio, NVT_BIO_INTERNAL, bio->slba);
	return ret;
}

void nvt_bio_backend_done(struct nvt_bio *bio, int err)
{
	if (err)
		nvt_bio_fail(bio, nvt_bio_errno_status(bio, err), bio->slba);
	bio->ns_priv.be_done(bio);
}

/* ---- bounce buffers ---- */

static bool nvt_bounce_get(struct nvt_bio *bio)
{
	struct nvt_ns_chan *chan = bio->chan;
	struct nvt_bounce *b = chan->bounce_free;

	if (!b) {
		/*
		 * Parked in order; a finishing emulated command hands its buffer
		 * on. A link of its own: the bio stays on the in-flight list.
		 */
		bio->ns_priv.wait_next = NULL;
		if (chan->bounce_wait_tail)
			chan->bounce_wait_tail->ns_priv.wait_next = bio;
		else
			chan->bounce_wait_head = bio;
		chan->bounce_wait_tail = bio;
		return false;
	}
	chan->bounce_free = b->next;
	b->parent = bio;
	bio->ns_priv.bounce = b;
	return true;
}

static void nvt_bounce_put(struct nvt_bio *bio)
{
	struct nvt_ns_chan *chan = bio->chan;
	struct nvt_bounce *b = bio->ns_priv.bounce;
	struct nvt_bio *next;

	if (!b)
		return;
	bio->ns_priv.bounce = NULL;
	b->parent = NULL;
	b->next = chan->bounce_free;
	chan->bounce_free = b;
	next = chan->bounce_wait_head;
	if (!next)
		return;
	chan->bounce_wait_head = next->ns_priv.wait_next;
	if (!chan->bounce_wait_head)
		chan->bounce_wait_tail = NULL;
	next->ns_priv.wait_next = NULL;
	next->ns_priv.resume(next);
}

/* ---- completion ---- */

static void nvt_caw_step(struct nvt_caw *caw, struct nvt_bio *bio);

/* The one way a bio ends: its buffer and its place in flight go back, then its owner hears. */
static void nvt_ns_finish(struct nvt_bio *bio)
{
	nvt_bounce_put(bio);
	nvt_ns_ungate(bio);
	if (bio->ns_priv.caw)
		nvt_caw_step(bio->ns_priv.caw, bio);
	else
		bio->done(bio);
}

/* ---- read and write ---- */

static uint32_t nvt_ext_size(const struct nvt_ns *ns)
{
	return ns->block_size + ns->md_size;
}

/* PI pre-step of a write whose buffer is the front's own: insert (PRACT=1) or check (PRACT=0). */
static int nvt_write_pi_prep(struct nvt_bio *bio)
{
	struct nvt_pi_err err;
	int ret;

	if (!bio->ns->pi.type)
		return 0;
	if (!(bio->flags & NVT_BIO_EXT)) {
		if (bio->pi.pract)
			return nvt_pi_result(bio, nvt_pi_generate(&bio->pi, bio->iov, bio->iov_cnt,
								 bio->md_iov, bio->md_iov_cnt, bio->nlb),
					     NULL);
		/* The host's own PI in a separate buffer (SCSI's T10 PI buffer): checked, kept. */
		ret = nvt_pi_verify(&bio->pi, bio->iov, bio->iov_cnt, bio->md_iov, bio->md_iov_cnt,
				    bio->nlb, &err);
		return nvt_pi_result(bio, ret, &err);
	}
	ret = nvt_pi_verify_ext(&bio->pi, bio->iov, bio->iov_cnt, bio->nlb, &err);
	if (nvt_pi_result(bio, ret, &err))
		return ret;
	/* PRACT=1 with metadata larger than the tuple: the host's metadata, our PI. */
	if (bio->pi.pract)
		return nvt_pi_result(bio, nvt_pi_generate_ext(&bio->pi, bio->iov, bio->iov_cnt,
							      bio->nlb), NULL);
	return 0;
}

static void nvt_rw_be_done(struct nvt_bio *bio)
{
	struct nvt_pi_err err;

	/* Every read re-checks what is stored: corruption at rest is reported, not served. */
	if (!bio->status && bio->op == NVT_BIO_READ && bio->ns->pi.type &&
	    (bio->flags & NVT_BIO_PI_CHECK_READ))
		nvt_pi_result(bio, nvt_pi_verify(&bio->pi, bio->iov, bio->iov_cnt, bio->md_iov,
						 bio->md_iov_cnt, bio->nlb, &err), &err);
	nvt_ns_finish(bio);
}

/*
 * A PRACT=0 write of extended LBAs into a memory backend: every block is
 * checked before any is stored, then split into place. Why not check while
 * copying, as everything else here does: the README promises (and
 * pi_e2e_test holds us to it) that a write failing its PI check changes
 * nothing. NVMe asks that much of a failed write no larger than AWUPF
 * (NVMe 1.4 §6.4.2, AWUPF/NAWUPF: if such a write "fails due to a power
 * failure or other error condition, then subsequent read commands for the
 * logical blocks associated with the write command shall return" all old
 * data or all new data; larger writes get "no guarantee"), and nvtd leaves
 * AWUPF 0h: one block. Checked while copying, a guard mismatch is found
 * only after that block's bytes are in place: torn (new data, old tuple),
 * and visible to the next read as stored. The range lock hides them only
 * while the command runs, not after it failed, and undoing would need the
 * old bytes, another pass. So two walks, but only the first reads the
 * host's bytes from memory; the split reads them from this core's cache,
 * where the check left them. The price is one CRC-only pass: ~45-70 ns
 * per 4 KiB in loop_bench, ~0.85x of PI off where the other modes are ~1x.
 */
static int nvt_write_checked_split(struct nvt_bio *bio, struct iovec *d, struct iovec *m)
{
	struct nvt_ns *ns = bio->ns;
	struct nvt_pi_err err;
	int ret;

	if (ns->pi.type && bio->pi.check) {
		ret = nvt_pi_verify_ext(&bio->pi, bio->iov, bio->iov_cnt, bio->nlb, &err);
		if (nvt_pi_result(bio, ret, &err))
			return ret;
	}
	ret = nvt_pi_split(&ns->pi, bio->iov, bio->iov_cnt, d, 1, m, 1, bio->nlb);
	/*
	 * PRACT=1 with metadata larger than the tuple: the host's metadata, our
	 * PI, generated over the blocks just stored (still in cache). A rare
	 * format; the host's buffer is left as it came.
	 */
	if (!ret && ns->pi.type && bio->pi.pract)
		ret = nvt_pi_generate(&bio->pi, d, 1, m, 1, bio->nlb);
	return nvt_pi_result(bio, ret, NULL);
}

/*
 * Reads and writes on a memory backend (->map) with metadata: the PI step
 * rides on the copy into or out of its memory, one pass over the data, the
 * guard summed over the bytes as they land. Reads: stored PI checked while
 * joined to the wire (extended LBAs) or copied to the host's data (and
 * metadata) buffers, PRACT=1 stripping it. Writes: PRACT=1 generates while
 * copying; PRACT=0 see nvt_write_checked_split(). A failed read leaves a
 * partial copy in the host's buffer, which the failed command's status
 * tells it not to use.
 */
static void nvt_rw_mapped(struct nvt_bio *bio)
{
	struct nvt_ns *ns = bio->ns;
	void *md, *data = ns->be->map(ns, bio->slba, &md);
	struct iovec d = { data, (size_t)bio->nlb << ns->lba_shift };
	struct iovec m = { md, (size_t)bio->nlb * ns->md_size };
	bool ext = bio->flags & NVT_BIO_EXT;
	struct nvt_pi_err err;
	int ret;

	if (!data || !md) {
		nvt_bio_fail(bio, NVT_BIO_INTERNAL, bio->slba);
	} else if (bio->op == NVT_BIO_WRITE && ext) {
		nvt_write_checked_split(bio, &d, &m);
	} else if (bio->op == NVT_BIO_WRITE) {
		/* Host's data + separate metadata (PRACT=1: PI-sized scratch; SCSI: its PI buffer). */
		if (bio->pi.pract) {
			ret = nvt_pi_generate_copy(&bio->pi, bio->iov, bio->iov_cnt, bio->md_iov,
						   bio->md_iov_cnt, &d, 1, &m, 1, bio->nlb);
			nvt_pi_result(bio, ret, NULL);
		} else {
			/* The host's own PI: checked first, for the reason above, then copied. */
			struct nvt_pi_ctx copy = bio->pi;

			copy.check = 0;
			ret = nvt_pi_verify(&bio->pi, bio->iov, bio->iov_cnt, bio->md_iov,
					    bio->md_iov_cnt, bio->nlb, &err);
			if (!nvt_pi_result(bio, ret, &err))
				nvt_pi_result(bio, nvt_pi_verify_copy(&copy, bio->iov, bio->iov_cnt,
								      bio->md_iov, bio->md_iov_cnt,
								      &d, 1, &m, 1, bio->nlb, NULL),
					      NULL);
		}
	} else {
		/* Every read re-checks what is stored: corruption at rest is reported, not served. */
		struct nvt_pi_ctx nocheck;
		const struct nvt_pi_ctx *ctx = &bio->pi;

		if (!(bio->flags & NVT_BIO_PI_CHECK_READ) || !ns->pi.type) {
			nocheck = bio->pi;
			nocheck.fmt = &ns->pi;
			nocheck.check = 0;
			ctx = &nocheck;
		}
		if (ext)
			ret = nvt_pi_verify_join(ctx, &d, 1, &m, 1, bio->iov, bio->iov_cnt, bio->nlb,
						 &err);
		else
			ret = nvt_pi_verify_copy(ctx, &d, 1, &m, 1, bio->iov, bio->iov_cnt,
						 bio->md_iov, bio->md_iov_cnt, bio->nlb, &err);
		nvt_pi_result(bio, ret, &err);
	}
	nvt_ns_finish(bio);
}

static void nvt_emul_begin(struct nvt_bio *bio);

static void nvt_rw_run(struct nvt_bio *bio)
{
	struct nvt_ns *ns = bio->ns;

	/*
	 * Memory backends: the PI step and the copy are one walk. Writes
	 * without a metadata buffer to take tuples from go to the backend.
	 */
	if (ns->be->map && ns->md_size &&
	    ((bio->flags & NVT_BIO_EXT) ||
	     (ns->pi.type && (bio->op == NVT_BIO_READ || bio->md_iov_cnt)))) {
		nvt_rw_mapped(bio);
		return;
	}
	if (bio->flags & NVT_BIO_EXT) {
		/* The backend takes data and metadata apart: chunks through a bounce buffer. */
		if (bio->op == NVT_BIO_WRITE && nvt_write_pi_prep(bio)) {
			nvt_ns_finish(bio);
			return;
		}
		nvt_emul_begin(bio);
		return;
	}
	if (bio->op == NVT_BIO_WRITE && nvt_write_pi_prep(bio)) {
		nvt_ns_finish(bio);
		return;
	}
	bio->ns_priv.be_done = nvt_rw_be_done;
	ns->be->submit(bio, bio->chan->be_chan);
}

/* ---- emulated commands: chunk by chunk through the channel's bounce buffer ---- */

/*
 * One engine for everything done over READ and WRITE: Compare, Verify,
 * Write Zeroes, Deallocate and Copy where the backend does not do them,
 * and extended-LBA reads and writes for backends that store metadata
 * apart. The bio works through "ranges" (its own one, or those of a Copy
 * or Deallocate) in chunks of at most NVT_NS_BOUNCE_DATA bytes; each chunk
 * is one child bio to the backend (two for a Copy: read, then write).
 * Chunks that complete inline are looped over, not recursed into.
 */
enum nvt_emul_phase {
	NVT_EMUL_READ,		/* the chunk's stored blocks into the bounce buffer */
	NVT_EMUL_WRITE,		/* the bounce buffer to the chunk's blocks */
	NVT_EMUL_NATIVE,	/* the whole range by the backend's own op */
};

static bool nvt_emul_native(const struct nvt_bio *bio)
{
	const struct nvt_ns *ns = bio->ns;
	unsigned int f = ns->be->flags;

	if (bio->ns_priv.native_failed)
		return false;
	switch (bio->op) {
	case NVT_BIO_WRITE_ZEROES:
		return f & NVT_BE_WRITE_ZEROES;
	case NVT_BIO_DEALLOCATE:
		return f & NVT_BE_DEALLOCATE;
	case NVT_BIO_COPY:
		/* The sources' and destination's PI need checks and new tags: ours. */
		return (f & NVT_BE_COPY) && !ns->pi.type;
	case NVT_BIO_COMPARE:
		/* The chunk is split from the front's extended blocks, as a write's. */
		return (f & NVT_BE_COMPARE) && (!ns->md_size || (bio->flags & NVT_BIO_EXT));
	case NVT_BIO_VERIFY:
		return f & NVT_BE_VERIFY;
	default:
		return false;
	}
}

/* Load range @i (@bio's own for single-range ops). Return: false if the bio failed. */
static bool nvt_emul_load(struct nvt_bio *bio, unsigned int i)
{
	struct nvt_bio_ns *st = &bio->ns_priv;

	st->range = i;
	st->pos = 0;
	if (bio->op != NVT_BIO_COPY && bio->op != NVT_BIO_DEALLOCATE) {
		st->cur = (struct nvt_bio_range){ .slba = bio->slba, .nlb = bio->nlb };
		return true;
	}
	if (bio->get_range(bio, i, &st->cur)) {
		nvt_bio_fail(bio, NVT_BIO_INTERNAL, bio->slba);
		return false;
	}
	return true;
}

static unsigned int nvt_emul_nr_ranges(const struct nvt_bio *bio)
{
	return bio->op == NVT_BIO_COPY || bio->op == NVT_BIO_DEALLOCATE ? bio->nr_ranges : 1;
}

/* A Copy range whose destination starts inside its source: copied from the end backwards. */
static bool nvt_copy_backwards(const struct nvt_bio *bio)
{
	const struct nvt_bio_ns *st = &bio->ns_priv;

	return bio->op == NVT_BIO_COPY && st->dst > st->cur.slba &&
	       st->dst < st->cur.slba + st->cur.nlb;
}

/* Blocks [*off, *off + n) of the current range the next chunk covers. */
static uint32_t nvt_emul_chunk(const struct nvt_bio *bio, uint64_t *off)
{
	const struct nvt_bio_ns *st = &bio->ns_priv;
	uint64_t left = st->cur.nlb - st->pos;
	uint32_t max = NVT_NS_BOUNCE_DATA >> bio->ns->lba_shift;
	uint32_t n = left < max ? (uint32_t)left : max;

	*off = nvt_copy_backwards(bio) ? st->cur.nlb - st->pos - n : st->pos;
	return n;
}

static void nvt_emul_child(struct nvt_bio *p, enum nvt_bio_op op, uint64_t slba, uint32_t n,
			   bool with_md)
{
	struct nvt_bounce *b = p->ns_priv.bounce;
	struct nvt_bio *c = &b->child;
	struct nvt_ns *ns = p->ns;

	memset(c, 0, sizeof(*c));
	c->op = op;
	c->ns = ns;
	c->chan = p->chan;
	c->slba = slba;
	c->nlb = n;
	c->flags = p->flags & (NVT_BIO_FUA | NVT_BIO_DEAC);
	b->data_iov = (struct iovec){ b->data, (size_t)n << ns->lba_shift };
	b->md_iov = (struct iovec){ b->md, (size_t)n * ns->md_size };
	c->iov = &b->data_iov;
	c->iov_cnt = 1;
	if (ns->md_size && with_md) {
		c->md_iov = &b->md_iov;
		c->md_iov_cnt = 1;
	}
	/*
	 * A chunk of the front's own read or write keeps its PI context, moved
	 * to the chunk: a backend that passes PI down (nvme) lets the device
	 * check it too. The layer's other children carry none: unchecked.
	 */
	if (ns->pi.type && p->pi.fmt &&
	    (p->op == NVT_BIO_READ || p->op == NVT_BIO_WRITE ||
	     (op == p->op && (op == NVT_BIO_COMPARE || op == NVT_BIO_VERIFY)))) {
		c->pi = p->pi;
		nvt_pi_ctx_advance(&c->pi, slba - p->slba);
		c->flags |= p->flags & NVT_BIO_PI_CHECK_READ;
	}
}

/* PI context of the current chunk, from @base advanced to block @off of the command. */
static struct nvt_pi_ctx nvt_ctx_at(const struct nvt_pi_ctx *base, uint64_t off)
{
	struct nvt_pi_ctx c = *base;

	nvt_pi_ctx_advance(&c, off);
	return c;
}

/* Offset (in blocks) of chunk block 0 from the command's first block, for its PI context and buffer. */
static uint64_t nvt_emul_cmd_off(const struct nvt_bio *p, uint64_t off)
{
	return p->op == NVT_BIO_COPY ? p->ns_priv.dst - p->slba + off : off;
}

/* Fill the bounce buffer for a write of @n blocks at range offset @off. Return: false if the bio failed. */
static bool nvt_emul_fill(struct nvt_bio *p, uint64_t off, uint32_t n)
{
	struct nvt_ns *ns = p->ns;
	struct nvt_bounce *b = p->ns_priv.bounce;
	struct iovec d = { b->data, (size_t)n << ns->lba_shift }, m = { b->md, (size_t)n * ns->md_size };
	struct iovec slice[NVT_NS_MAX_IOV];
	struct nvt_pi_ctx ctx;
	struct nvt_pi_err err;
	unsigned int cnt;

	switch (p->op) {
	case NVT_BIO_WRITE:
	case NVT_BIO_COMPARE:
		/* Extended LBAs from the front, PI already checked or inserted: split. */
		cnt = nvt_iov_slice(p->iov, p->iov_cnt, off * nvt_ext_size(ns),
				    (size_t)n * nvt_ext_size(ns), slice, NVT_NS_MAX_IOV);
		if (nvt_iov_len(slice, cnt) != (size_t)n * nvt_ext_size(ns)) {
			nvt_bio_fail(p, NVT_BIO_INTERNAL, p->slba + off);
			return false;
		}
		return !nvt_pi_result(p, nvt_pi_split(&ns->pi, slice, cnt, &d, 1, &m, 1, n), NULL);
	case NVT_BIO_WRITE_ZEROES:
		memset(b->data, 0, d.iov_len);
		memset(b->md, 0, m.iov_len);
		/* PRACT=1: the zeroed blocks get valid PI (guard of zeroes, tags per type). */
		if (ns->pi.type && p->pi.pract) {
			ctx = nvt_ctx_at(&p->pi, off);
			return !nvt_pi_result(p, nvt_pi_generate(&ctx, &d, 1, &m, 1, n), NULL);
		}
		return true;
	case NVT_BIO_DEALLOCATE:
		/* Deallocated blocks read as zeroes with the escape PI, as never-written ones. */
		memset(b->data, 0, d.iov_len);
		memset(b->md, ns->pi.type ? 0xff : 0, m.iov_len);
		return true;
	case NVT_BIO_COPY:
		/* The bounce buffer holds the source chunk: the destination's PI, inserted or checked. */
		if (!ns->pi.type)
			return true;
		ctx = nvt_ctx_at(&p->pi, nvt_emul_cmd_off(p, off));
		/* SCSI: the app tags are the application client's and move with the blocks. */
		if (p->flags & NVT_BIO_COPY_TAGS) {
			nvt_pi_retag(&ctx, b->md, n);
			return true;
		}
		if (ctx.pract)
			return !nvt_pi_result(p, nvt_pi_generate(&ctx, &d, 1, &m, 1, n), NULL);
		return !nvt_pi_result(p, nvt_pi_verify(&ctx, &d, 1, &m, 1, n, &err), &err);
	default:
		nvt_bio_fail(p, NVT_BIO_INTERNAL, p->slba);
		return false;
	}
}

/* What a chunk just read means for the command. Return: false if the bio failed. */
static bool nvt_emul_use_read(struct nvt_bio *p, uint64_t off, uint32_t n)
{
	struct nvt_ns *ns = p->ns;
	struct nvt_bounce *b = p->ns_priv.bounce;
	struct iovec d = { b->data, (size_t)n << ns->lba_shift }, m = { b->md, (size_t)n * ns->md_size };
	struct iovec slice[NVT_NS_MAX_IOV];
	bool check = ns->pi.type && (p->flags & NVT_BIO_PI_CHECK_READ);
	struct nvt_pi_ctx ctx;
	struct nvt_pi_err err;
	unsigned int cnt;

	switch (p->op) {
	case NVT_BIO_READ:
		cnt = nvt_iov_slice(p->iov, p->iov_cnt, off * nvt_ext_size(ns),
				    (size_t)n * nvt_ext_size(ns), slice, NVT_NS_MAX_IOV);
		if (nvt_iov_len(slice, cnt) != (size_t)n * nvt_ext_size(ns)) {
			nvt_bio_fail(p, NVT_BIO_INTERNAL, p->slba + off);
			return false;
		}
		ctx = nvt_ctx_at(&p->pi, off);
		if (check)
			return !nvt_pi_result(p, nvt_pi_verify_join(&ctx, &d, 1, &m, 1, slice, cnt, n,
								    &err), &err);
		return !nvt_pi_result(p, nvt_pi_join(&ns->pi, &d, 1, &m, 1, slice, cnt, n), NULL);
	case NVT_BIO_VERIFY:
	case NVT_BIO_COMPARE:
		/* NVMe 2.0 §3.2.1: the stored blocks' PI is checked first, as for a read. */
		if (check) {
			ctx = nvt_ctx_at(&p->pi, off);
			if (nvt_pi_result(p, nvt_pi_verify(&ctx, &d, 1, &m, 1, n, &err), &err))
				return false;
		}
		if (p->op == NVT_BIO_VERIFY)
			return true;
		for (uint32_t i = 0; i < n; i++) {
			size_t bs = ns->block_size, ms = ns->md_size;
			bool ext = p->flags & NVT_BIO_EXT;
			size_t at = (off + i) * (ext ? bs + ms : bs);
			size_t x = nvt_iov_diff(p->iov, p->iov_cnt, at, b->data + i * bs, bs);

			if (x == SIZE_MAX && ext && ms) {
				x = nvt_iov_diff(p->iov, p->iov_cnt, at + bs, b->md + i * ms, ms);
				if (x != SIZE_MAX)
					x += bs;
			}
			if (x != SIZE_MAX) {
				nvt_bio_fail(p, NVT_BIO_MISCOMPARE, p->slba + off + i);
				p->err_off = (uint32_t)x;
				return false;
			}
		}
		return true;
	case NVT_BIO_COPY:
		/* The source's own PI, as PRINFOR and its range's tags say. */
		if (ns->pi.type) {
			nvt_pi_ctx_init(&ctx, &ns->pi, p->ns_priv.cur.slba,
					p->src_prinfo & NVT_PI_CHECK_MASK, p->ns_priv.cur.eilbrt,
					p->ns_priv.cur.elbat, p->ns_priv.cur.elbatm);
			nvt_pi_ctx_advance(&ctx, off);
			return !nvt_pi_result(p, nvt_pi_verify(&ctx, &d, 1, &m, 1, n, &err), &err);
		}
		return true;
	default:
		nvt_bio_fail(p, NVT_BIO_INTERNAL, p->slba);
		return false;
	}
}

/* The next child to send, set up in the bounce buffer. Return: false when the bio is over. */
static bool nvt_emul_next(struct nvt_bio *p)
{
	struct nvt_bio_ns *st = &p->ns_priv;
	uint64_t off;
	uint32_t n;

	while (st->pos >= st->cur.nlb) {
		if (p->op == NVT_BIO_COPY)
			st->dst += st->cur.nlb;
		if (st->range + 1 >= nvt_emul_nr_ranges(p) || !nvt_emul_load(p, st->range + 1))
			return false;
	}
	if (nvt_emul_native(p)) {
		st->chunk = (uint32_t)(st->cur.nlb - st->pos);
		st->state = NVT_EMUL_NATIVE;
		switch (p->op) {
		case NVT_BIO_COPY:
			nvt_emul_child(p, NVT_BIO_COPY, st->dst, st->chunk, false);
			st->bounce->child.copy_src = st->cur.slba;
			break;
		case NVT_BIO_WRITE_ZEROES:
			/* Zeroes with fresh PI: the layer's tags, the backend's zeroing, chunk by chunk. */
			if (p->ns->pi.type && p->pi.pract) {
				n = nvt_emul_chunk(p, &off);
				st->chunk = n;
				nvt_emul_child(p, NVT_BIO_WRITE_ZEROES, st->cur.slba + off, n, true);
				if (!nvt_emul_fill(p, off, n))
					return false;
				break;
			}
			nvt_emul_child(p, NVT_BIO_WRITE_ZEROES, st->cur.slba + st->pos, st->chunk, false);
			break;
		case NVT_BIO_COMPARE:
			/* The front's blocks of one chunk, data and metadata apart, as a write's. */
			n = nvt_emul_chunk(p, &off);
			st->chunk = n;
			nvt_emul_child(p, NVT_BIO_COMPARE, st->cur.slba + off, n, true);
			return nvt_emul_fill(p, off, n);
		default:
			nvt_emul_child(p, p->op, st->cur.slba + st->pos, st->chunk, false);
			break;
		}
		return true;
	}
	n = nvt_emul_chunk(p, &off);
	st->chunk = n;
	switch (p->op) {
	case NVT_BIO_WRITE:
	case NVT_BIO_WRITE_ZEROES:
	case NVT_BIO_DEALLOCATE:
		st->state = NVT_EMUL_WRITE;
		nvt_emul_child(p, NVT_BIO_WRITE, st->cur.slba + off, n, true);
		return nvt_emul_fill(p, off, n);
	case NVT_BIO_COPY:
		if (st->state == NVT_EMUL_READ) {
			nvt_emul_child(p, NVT_BIO_READ, st->cur.slba + off, n, true);
			return true;
		}
		nvt_emul_child(p, NVT_BIO_WRITE, st->dst + off, n, true);
		return nvt_emul_fill(p, off, n);
	default:
		st->state = NVT_EMUL_READ;
		nvt_emul_child(p, NVT_BIO_READ, st->cur.slba + off, n, true);
		return true;
	}
}

/* The child came back. Return: false when the bio is over (failed). */
static bool nvt_emul_absorb(struct nvt_bio *p)
{
	struct nvt_bio_ns *st = &p->ns_priv;
	struct nvt_bio *c = &st->bounce->child;
	uint64_t off;

	if (st->state == NVT_EMUL_NATIVE &&
	    (c->status == NVT_BIO_UNSUPPORTED ||
	     (p->op == NVT_BIO_COMPARE &&
	      (c->status == NVT_BIO_MISCOMPARE ||
	       (c->status == NVT_BIO_DEVICE && (c->dev_status & 0x7ff) == NVT_NS_DEV_COMPARE_FAILURE))))) {
		/*
		 * The backend declined this one (say, overlapping copy ranges), or
		 * a device's Compare says "differs" but not where: the layer does
		 * it itself from here, which names the block (and the byte).
		 */
		st->native_failed = true;
		st->state = NVT_EMUL_READ;
		return true;
	}
	if (c->status) {
		nvt_bio_fail(p, c->status, c->err_lba);
		if (c->status == NVT_BIO_PI)
			p->pi_err = c->pi_err;
		if (c->status == NVT_BIO_DEVICE)
			p->dev_status = c->dev_status;
		return false;
	}
	if (st->state == NVT_EMUL_NATIVE) {
		st->pos += st->chunk;
		return true;
	}
	nvt_emul_chunk(p, &off);
	if (st->state == NVT_EMUL_READ) {
		if (!nvt_emul_use_read(p, off, st->chunk))
			return false;
		if (p->op == NVT_BIO_COPY) {
			st->state = NVT_EMUL_WRITE;
			return true;
		}
	} else if (p->op == NVT_BIO_COPY) {
		st->state = NVT_EMUL_READ;
	}
	st->pos += st->chunk;
	return true;
}

static void nvt_emul_run(struct nvt_bio *p);

static void nvt_emul_child_done(struct nvt_bio *c)
{
	struct nvt_bounce *b = container_of(c, struct nvt_bounce, child);
	struct nvt_bio *p = b->parent;

	p->ns_priv.child_done = true;
	if (p->ns_priv.submitting)
		return;		/* inline: the loop in nvt_emul_run() goes on */
	if (!nvt_emul_absorb(p)) {
		nvt_ns_finish(p);
		return;
	}
	nvt_emul_run(p);
}

static void nvt_emul_run(struct nvt_bio *p)
{
	struct nvt_bio_ns *st = &p->ns_priv;

	for (;;) {
		struct nvt_bio *c;

		if (p->status || !nvt_emul_next(p)) {
			nvt_ns_finish(p);
			return;
		}
		c = &st->bounce->child;
		c->ns_priv.be_done = nvt_emul_child_done;
		st->child_done = false;
		st->submitting = true;
		p->ns->be->submit(c, p->chan->be_chan);
		st->submitting = false;
		if (!st->child_done)
			return;		/* completes later, on this poll group */
		if (!nvt_emul_absorb(p)) {
			nvt_ns_finish(p);
			return;
		}
	}
}

/* With the range held (gated): take a bounce buffer (or wait for one), then work. */
static void nvt_emul_begin(struct nvt_bio *bio)
{
	bio->ns_priv.resume = nvt_emul_begin;
	if (!nvt_bounce_get(bio))
		return;
	bio->ns_priv.dst = bio->slba;
	bio->ns_priv.state = NVT_EMUL_READ;
	if (!nvt_emul_load(bio, 0)) {
		nvt_ns_finish(bio);
		return;
	}
	nvt_emul_run(bio);
}

/* ---- entry ---- */

/* The blocks @bio touches, as one span: a Copy's or Deallocate's hull. Return: false if it failed. */
static bool nvt_ns_span(struct nvt_bio *bio, uint64_t *lo, uint64_t *hi)
{
	struct nvt_bio_range r;
	uint64_t dst = bio->slba;

	*lo = bio->slba;
	*hi = bio->slba + bio->nlb;
	if (bio->op == NVT_BIO_FLUSH) {
		*lo = *hi = 0;
		return true;
	}
	if (bio->op != NVT_BIO_COPY && bio->op != NVT_BIO_DEALLOCATE)
		return true;
	*lo = UINT64_MAX;
	*hi = 0;
	for (unsigned int i = 0; i < bio->nr_ranges; i++) {
		if (bio->get_range(bio, i, &r))
			return false;
		if (r.slba < *lo)
			*lo = r.slba;
		if (r.slba + r.nlb > *hi)
			*hi = r.slba + r.nlb;
		if (bio->op == NVT_BIO_COPY)
			dst += r.nlb;
	}
	if (bio->op == NVT_BIO_COPY && dst > bio->slba) {
		if (bio->slba < *lo)
			*lo = bio->slba;
		if (dst > *hi)
			*hi = dst;
	}
	if (*lo > *hi)
		*lo = *hi = 0;
	return true;
}

static void nvt_flush_be_done(struct nvt_bio *bio)
{
	nvt_ns_finish(bio);
}

/* Gate, then run: also where a bio parked behind a range lock comes back. */
static void nvt_ns_run(struct nvt_bio *bio)
{
	uint64_t lo, hi;

	bio->ns_priv.resume = nvt_ns_run;
	if (!nvt_ns_span(bio, &lo, &hi)) {
		nvt_bio_fail(bio, NVT_BIO_INTERNAL, bio->slba);
		nvt_ns_finish(bio);
		return;
	}
	/* Every command gates once, before it takes a bounce buffer: parked bios hold none. */
	if (!nvt_ns_gate(bio, lo, hi))
		return;
	/* Admitted but denied by the reservation: nothing done. */
	if (bio->status) {
		nvt_ns_finish(bio);
		return;
	}
	switch (bio->op) {
	case NVT_BIO_READ:
	case NVT_BIO_WRITE:
		nvt_rw_run(bio);
		return;
	case NVT_BIO_FLUSH:
		bio->ns_priv.be_done = nvt_flush_be_done;
		bio->ns->be->submit(bio, bio->chan->be_chan);
		return;
	default:
		nvt_emul_begin(bio);
		return;
	}
}

static void nvt_ns_start(struct nvt_bio *bio, struct nvt_caw *caw)
{
	bio->status = NVT_BIO_OK;
	bio->err_lba = 0;
	bio->dev_status = 0;
	bio->err_off = 0;
	memset(&bio->pi_err, 0, sizeof(bio->pi_err));
	memset(&bio->ns_priv, 0, sizeof(bio->ns_priv));
	memset(&bio->be_priv, 0, sizeof(bio->be_priv));
	bio->ns_priv.caw = caw;
	if (caw)
		bio->flags |= NVT_BIO_LOCK_OWNER;
	else
		bio->flags &= ~NVT_BIO_LOCK_OWNER;
	if (!bio->chan) {
		nvt_bio_fail(bio, NVT_BIO_INTERNAL, bio->slba);
		nvt_ns_finish(bio);
		return;
	}
	nvt_ns_run(bio);
}

void nvt_ns_submit(struct nvt_bio *bio)
{
	nvt_ns_start(bio, NULL);
}

/* ---- compare-and-write ---- */

enum nvt_caw_state {
	NVT_CAW_LOCKING,
	NVT_CAW_COMPARING,
	NVT_CAW_WRITING,
	NVT_CAW_DONE,
};

static void nvt_caw_granted(struct nvt_range_hold *h);

void nvt_ns_caw(struct nvt_caw *caw)
{
	caw->state = NVT_CAW_LOCKING;
	caw->compare->status = caw->write->status = NVT_BIO_OK;
	if (!caw->compare->chan || caw->write->chan != caw->compare->chan) {
		caw->compare->status = caw->write->status = NVT_BIO_INTERNAL;
		caw->state = NVT_CAW_DONE;
		caw->done(caw);
		return;
	}
	caw->hold = (struct nvt_range_hold){
		.chan = caw->compare->chan,
		.lo = caw->compare->slba,
		.hi = caw->compare->slba + caw->compare->nlb,
		.granted = nvt_caw_granted,
	};
	nvt_range_lock_acquire(&caw->hold);
}

/* The range is held: compare, then write. */
static void nvt_caw_granted(struct nvt_range_hold *h)
{
	struct nvt_caw *caw = container_of(h, struct nvt_caw, hold);

	caw->state = NVT_CAW_COMPARING;
	nvt_ns_start(caw->compare, caw);
}

static void nvt_caw_step(struct nvt_caw *caw, struct nvt_bio *bio)
{
	if (bio == caw->compare && caw->state == NVT_CAW_COMPARING) {
		if (!bio->status) {
			caw->state = NVT_CAW_WRITING;
			nvt_ns_start(caw->write, caw);
			return;
		}
		/* No write after a failed compare: the write half reports the pair failed. */
		caw->write->status = NVT_BIO_ABORTED;
	}
	caw->compare->ns_priv.caw = caw->write->ns_priv.caw = NULL;
	caw->state = NVT_CAW_DONE;
	nvt_range_lock_release(&caw->hold);
	caw->done(caw);
}

/* ---- fences ---- */

/*
 * A fence is a range lock over the whole namespace: granted once every
 * earlier holder has released and every bio admitted before it, on every
 * channel, has finished. Then it lets go at once: bios that parked
 * meanwhile are admitted (and checked) now.
 */
static void nvt_fence_granted(struct nvt_range_hold *h)
{
	struct nvt_ns_fence *f = container_of(h, struct nvt_ns_fence, hold);

	nvt_range_lock_release(h);
	f->done(f);
}

void nvt_ns_fence(struct nvt_ns_fence *f, struct nvt_ns_chan *chan,
		  void (*done)(struct nvt_ns_fence *f))
{
	f->done = done;
	f->hold = (struct nvt_range_hold){
		.chan = chan, .lo = 0, .hi = UINT64_MAX, .granted = nvt_fence_granted,
	};
	nvt_range_lock_acquire(&f->hold);
}

/* ---- channels ---- */

struct nvt_ns_chan *nvt_ns_chan_get(struct nvt_ns *ns, struct nvt_poll_group *pg)
{
	int slot = pg ? nvt_poll_group_slot(pg) : -1;

	if (slot < 0 || slot >= NVT_MAX_PG_SLOTS)
		return NULL;
	return atomic_load_explicit(&ns->chans[slot], memory_order_acquire);
}

int nvt_ns_chan_create(struct nvt_ns *ns, struct nvt_poll_group *pg)
{
	int slot = nvt_poll_group_slot(pg), ret;
	struct nvt_ns_chan *chan;
	uint8_t *mem;
	size_t per = NVT_NS_BOUNCE_DATA + NVT_NS_BOUNCE_MD;

	if (slot < 0 || slot >= NVT_MAX_PG_SLOTS || atomic_load(&ns->chans[slot]))
		return -EINVAL;
	chan = calloc(1, sizeof(*chan));
	if (!chan)
		return -ENOMEM;
	chan->ns = ns;
	chan->pg = pg;
	nvt_range_chan_init(chan);
	/* Page-aligned: what a backend doing O_DIRECT needs, so it never bounces ours again. */
	if (posix_memalign(&chan->bounce_mem, 4096, per * NVT_NS_BOUNCES)) {
		free(chan);
		return -ENOMEM;
	}
	mem = chan->bounce_mem;
	for (int i = NVT_NS_BOUNCES - 1; i >= 0; i--) {
		struct nvt_bounce *b = &chan->bounces[i];

		b->data = mem + (size_t)i * per;
		b->md = b->data + NVT_NS_BOUNCE_DATA;
		b->next = chan->bounce_free;
		chan->bounce_free = b;
	}
	if (ns->be->chan_create) {
		ret = ns->be->chan_create(ns, pg, &chan->be_chan);
		if (ret) {
			free(chan->bounce_mem);
			free(chan);
			return ret;
		}
	}
	atomic_store_explicit(&ns->chans[slot], chan, memory_order_release);
	/* An atomic max: channels of loop queues are made by several threads at once. */
	for (unsigned int cur = atomic_load(&ns->nr_chans);
	     cur < (unsigned int)slot + 1 &&
	     !atomic_compare_exchange_weak(&ns->nr_chans, &cur, (unsigned int)slot + 1);)
		;
	return 0;
}

void nvt_ns_chan_destroy(struct nvt_ns *ns, struct nvt_poll_group *pg)
{
	int slot = nvt_poll_group_slot(pg);
	struct nvt_ns_chan *chan;

	if (slot < 0 || slot >= NVT_MAX_PG_SLOTS)
		return;
	chan = atomic_exchange(&ns->chans[slot], NULL);
	if (!chan)
		return;
	if (atomic_load(&chan->inflight) || atomic_load(&chan->nr_parked))
		nvt_err("nsid %u: channel destroyed with %u bios in flight, %u parked", ns->nsid,
			atomic_load(&chan->inflight), atomic_load(&chan->nr_parked));
	if (ns->be->chan_destroy)
		ns->be->chan_destroy(ns, chan->be_chan);
	free(chan->bounce_mem);
	free(chan);
}

bool nvt_ns_chans_idle(struct nvt_ns *ns)
{
	unsigned int n = atomic_load(&ns->nr_chans);

	for (unsigned int i = 0; i < n && i < NVT_MAX_PG_SLOTS; i++) {
		struct nvt_ns_chan *c = atomic_load(&ns->chans[i]);

		if (c && (atomic_load(&c->inflight) || atomic_load(&c->nr_parked) ||
			  atomic_load(&c->drain_pending) || atomic_load(&c->wake_pending)))
			return false;
	}
	return true;
}

void nvt_ns_chans_free(struct nvt_ns *ns)
{
	unsigned int n = atomic_load(&ns->nr_chans);

	for (unsigned int i = 0; i < n && i < NVT_MAX_PG_SLOTS; i++) {
		struct nvt_ns_chan *c = atomic_exchange(&ns->chans[i], NULL);

		if (!c)
			continue;
		if (ns->be->chan_destroy)
			ns->be->chan_destroy(ns, c->be_chan);
		free(c->bounce_mem);
		free(c);
	}
}
