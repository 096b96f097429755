/* SPDX-License-Identifier: BSD-3-Clause */
/* SCSI third-party copy: EXTENDED COPY (LID1, block -> block between the device's LUNs, or any registered ones where the device opted in) and RECEIVE COPY RESULTS. */
#define NVT_LOG_PREFIX "scsi: "
#include <errno.h>
#include <string.h>

#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/util.h"
#include "scsi_internal.h"

#define NVT_SCSI_CSCD_LEN	32u	/* an identification CSCD descriptor (E4h) */
#define NVT_SCSI_SEG_LEN	28u	/* a block -> block segment descriptor (02h) */

/* ---- the queue's copy buffer: one task at a time, the others wait in order ---- */

/* Return: true if @t holds it now; false: @t waits and its steps start when it is handed on. */
static bool nvt_scsi_copy_buf_get(struct nvt_scsi_task *t)
{
	struct nvt_scsi_queue *q = t->queue;

	if (!q->copy_owner) {
		q->copy_owner = t;
		t->cmd.holds_copy_buf = true;
		return true;
	}
	t->next = NULL;
	if (q->copy_wait_tail)
		q->copy_wait_tail->next = t;
	else
		q->copy_wait = t;
	q->copy_wait_tail = t;
	return false;
}

static void nvt_scsi_copy_buf_resume(struct nvt_pg_deferred *d)
{
	nvt_scsi_steps(container_of(d, struct nvt_scsi_task, cmd.defer));
}

void nvt_scsi_copy_buf_put(struct nvt_scsi_task *t)
{
	struct nvt_scsi_queue *q = t->queue;
	struct nvt_scsi_task *next = q->copy_wait;

	t->cmd.holds_copy_buf = false;
	q->copy_owner = NULL;
	if (!next)
		return;
	q->copy_wait = next->next;
	if (!q->copy_wait)
		q->copy_wait_tail = NULL;
	next->next = NULL;
	q->copy_owner = next;
	next->cmd.holds_copy_buf = true;
	/* Not from here: a queue of waiters completing inline would recurse once per waiter. */
	next->cmd.defer.fn = nvt_scsi_copy_buf_resume;
	nvt_poll_group_defer(q->pg, &next->cmd.defer);
}

/* ---- results kept for RECEIVE COPY RESULTS ---- */

static void nvt_scsi_copy_record(struct nvt_scsi_task *t, uint32_t status)
{
	struct nvt_scsi_lun_priv *p = t->lun->priv;

	if (!t->cmd.list_held)
		return;
	atomic_store(&p->copy_status, status);
	atomic_store(&p->copy_segs, t->cmd.seg);
	atomic_store(&p->copy_bytes, t->cmd.xbytes);
	atomic_store(&p->copy_list_id, 0x100u | t->cmd.list_id);
}

/* ---- running the segments ---- */

/* The source range of a copy within one namespace: the current segment's. */
static int nvt_scsi_xcopy_range(struct nvt_bio *bio, unsigned int i, struct nvt_bio_range *r)
{
	struct nvt_scsi_task *t = container_of(bio, struct nvt_scsi_task, bio);

	if (i)
		return -EINVAL;
	*r = t->cmd.range;
	return 0;
}

/* What a source's stored PI is checked with, and the tag its first block should carry. */
static uint8_t nvt_scsi_src_checks(const struct nvt_ns *ns)
{
	if (!ns->pi.type)
		return 0;
	/* Type 2 tags are the writer's: without its CDB, only the guard is known. */
	return NVT_PI_CHECK_GUARD | (ns->pi.type == NVT_PI_TYPE1 ? NVT_PI_CHECK_REFTAG : 0);
}

static bool nvt_scsi_xcopy_next(struct nvt_scsi_task *t)
{
	struct nvt_scsi_cmd *cmd = &t->cmd;
	struct nvt_scsi_xseg *s;
	struct nvt_bio *bio = &t->bio;
	struct nvt_ns *src, *dst;
	uint32_t left, n, per, md;
	uint8_t *buf = t->queue->copy_buf;

	while (cmd->seg < cmd->nr_seg && !cmd->segs[cmd->seg].nlb)
		cmd->seg++;
	if (cmd->seg >= cmd->nr_seg) {
		nvt_scsi_copy_record(t, 1);
		return false;
	}
	s = &cmd->segs[cmd->seg];
	src = s->src->ns;
	dst = s->dst->ns;
	if (src == dst) {
		/* One namespace: the layer's Copy, which regenerates the PI for the destination's LBAs. */
		if (!nvt_scsi_bio_init(t, dst, NVT_BIO_COPY, s->dst_lba, s->nlb))
			return false;
		cmd->chunk = s->nlb;
		cmd->range = (struct nvt_bio_range){ .slba = s->src_lba, .nlb = s->nlb,
						     .eilbrt = s->src_lba };
		bio->nr_ranges = 1;
		bio->get_range = nvt_scsi_xcopy_range;
		bio->src_prinfo = nvt_scsi_src_checks(src);
		bio->flags |= NVT_BIO_PI_CHECK_READ;
		nvt_pi_ctx_init(&bio->pi, &dst->pi, s->dst_lba, dst->pi.type ? NVT_PI_PRACT : 0,
				dst->pi.type == NVT_PI_TYPE3 ? 0 : s->dst_lba, 0, 0);
		return true;
	}
	/* Two namespaces: read into the queue's copy buffer, then write from it. */
	md = src->md_size > dst->md_size ? src->md_size : dst->md_size;
	per = NVT_SCSI_COPY_BUF / (src->block_size + md);
	left = s->nlb - cmd->pos;
	n = left < per ? left : per;
	if (!cmd->xwrite) {
		if (!nvt_scsi_bio_init(t, src, NVT_BIO_READ, s->src_lba + cmd->pos, n))
			return false;
		cmd->chunk = n;
		if (src->pi.type)
			bio->flags |= NVT_BIO_PI_CHECK_READ;
		nvt_pi_ctx_init(&bio->pi, &src->pi, s->src_lba + cmd->pos, nvt_scsi_src_checks(src),
				s->src_lba + cmd->pos, 0, 0);
	} else {
		if (!nvt_scsi_bio_init(t, dst, NVT_BIO_WRITE, s->dst_lba + cmd->pos, n))
			return false;
		if (dst->md_size)
			memset(buf + (size_t)n * dst->block_size, 0, (size_t)n * dst->md_size);
		nvt_pi_ctx_init(&bio->pi, &dst->pi, s->dst_lba + cmd->pos,
				dst->pi.type ? NVT_PI_PRACT : 0,
				dst->pi.type == NVT_PI_TYPE3 ? 0 : s->dst_lba + cmd->pos,
				0, 0);
	}
	t->work_iov[0] = (struct iovec){ buf, (size_t)n * bio->ns->block_size };
	bio->iov = t->work_iov;
	bio->iov_cnt = 1;
	if (bio->ns->md_size) {
		t->md_iov = (struct iovec){ buf + (size_t)n * bio->ns->block_size,
					    (size_t)n * bio->ns->md_size };
		bio->md_iov = &t->md_iov;
		bio->md_iov_cnt = 1;
	}
	return true;
}

static bool nvt_scsi_xcopy_absorb(struct nvt_scsi_task *t)
{
	struct nvt_scsi_cmd *cmd = &t->cmd;
	struct nvt_scsi_xseg *s = &cmd->segs[cmd->seg];

	if (t->bio.status) {
		nvt_scsi_bio_failed(t, &t->bio, 0);
		nvt_scsi_copy_record(t, 2);
		return false;
	}
	if (s->src->ns == s->dst->ns) {
		cmd->xbytes += (uint64_t)s->nlb * s->dst->ns->block_size;
		cmd->seg++;
		return true;
	}
	if (!cmd->xwrite) {
		cmd->xwrite = true;
		return true;
	}
	cmd->xwrite = false;
	cmd->pos += cmd->chunk;
	cmd->xbytes += (uint64_t)cmd->chunk * s->dst->ns->block_size;
	if (cmd->pos >= s->nlb) {
		cmd->pos = 0;
		cmd->seg++;
	}
	return true;
}

/* ---- EXTENDED COPY (LID1), SPC-4 6.4 ---- */

/* The LUN of @t's own device (or @t's LUN, without a device) with designator @naa, or NULL. */
static struct nvt_scsi_lun *nvt_scsi_dev_lun_by_naa(const struct nvt_scsi_task *t, const uint8_t *naa)
{
	const struct nvt_scsi_dev *dev = t->dev;

	if (!memcmp(t->lun->naa, naa, sizeof(t->lun->naa)))
		return t->lun;
	for (unsigned int i = 0; dev && i < dev->nr_luns && i < NVT_SCSI_MAX_LUNS; i++)
		if (dev->luns[i] && !memcmp(dev->luns[i]->naa, naa, sizeof(dev->luns[i]->naa)))
			return dev->luns[i];
	return NULL;
}

/* CSCD descriptor @d (E4h) -> the LUN it names. Return: false if @t failed. */
static bool nvt_scsi_cscd(struct nvt_scsi_task *t, const uint8_t *d, uint32_t off,
			  struct nvt_scsi_lun **out)
{
	struct nvt_scsi_lun *l;
	uint32_t bs;

	if (d[0] != 0xe4) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_UNSUPPORTED_CSCD);
		return false;
	}
	/* A block device (type 0), not NUL; named by a binary NAA designator of its LU (as LIO). */
	if ((d[1] & 0x3f) != 0) {
		nvt_scsi_bad_field(t, false, (uint16_t)(off + 1), -1);
		return false;
	}
	if ((d[4] & 0x0f) != 0x01 || (d[5] & 0x30) != 0 || (d[5] & 0x0f) != 0x03 || d[7] != 16 ||
	    (d[8] >> 4) != 6) {
		nvt_scsi_bad_field(t, false, (uint16_t)(off + 4), -1);
		return false;
	}
	/*
	 * The guest's own device's LUNs only, unless the device opted in: a
	 * designator is derived from public data, and naming another guest's
	 * LUN would read or overwrite that guest's disk.
	 */
	l = nvt_scsi_dev_lun_by_naa(t, d + 8);
	if (!l && t->dev && t->dev->copy_between)
		l = nvt_scsi_lun_by_naa(d + 8);
	if (!l || !nvt_ns_chan_get(l->ns, t->queue->pg)) {
		nvt_scsi_fail_simple(t, NVT_SK_COPY_ABORTED, NVT_ASC_COPY_TARGET_UNREACHABLE);
		return false;
	}
	bs = nvt_get_be24(d + 29);
	if (bs && bs != l->ns->block_size) {
		nvt_scsi_bad_field(t, false, (uint16_t)(off + 29), -1);
		return false;
	}
	*out = l;
	return true;
}

void nvt_scsi_exec_xcopy(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	struct nvt_scsi_cmd *cmd = &t->cmd;
	struct nvt_scsi_lun *cscd[NVT_SCSI_XCOPY_CSCDS];
	uint32_t plen = nvt_get_be32(c + 10), cscd_len, seg_len, ncscd, off;
	uint8_t hdr[16], d[NVT_SCSI_CSCD_LEN];
	bool cross = false;

	if (c[1] & 0x1f) {
		nvt_scsi_bad_field(t, true, 1, 4);	/* LID4 and the rest: not offered */
		goto out;
	}
	if (!plen)
		goto out;
	if (plen < sizeof(hdr) || !t->to_dev || t->data_len < plen ||
	    nvt_scsi_data_out(t, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PARAM_LIST_LENGTH);
		goto out;
	}
	cmd->list_id = hdr[0];
	/* LIST ID USAGE 11b: no list id, nothing held (SNLID); the others hold our results. */
	cmd->list_held = ((hdr[1] >> 3) & 3) != 3;
	if (!cmd->list_held && hdr[0]) {
		nvt_scsi_bad_field(t, false, 0, -1);
		goto out;
	}
	cscd_len = nvt_get_be16(hdr + 2);
	seg_len = nvt_get_be32(hdr + 8);
	if (nvt_get_be32(hdr + 12)) {
		nvt_scsi_bad_field(t, false, 12, -1);	/* inline data: not offered */
		goto out;
	}
	if ((uint64_t)cscd_len + seg_len > NVT_SCSI_XCOPY_MAX_LIST) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PARAM_LIST_LENGTH);
		goto out;
	}
	if (sizeof(hdr) + cscd_len + seg_len > plen) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PARAM_LIST_LENGTH);
		goto out;
	}
	if (cscd_len % NVT_SCSI_CSCD_LEN) {
		nvt_scsi_bad_field(t, false, 2, -1);
		goto out;
	}
	ncscd = cscd_len / NVT_SCSI_CSCD_LEN;
	if (ncscd > NVT_SCSI_XCOPY_CSCDS) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_TOO_MANY_CSCDS);
		goto out;
	}
	for (uint32_t i = 0; i < ncscd; i++) {
		off = (uint32_t)sizeof(hdr) + i * NVT_SCSI_CSCD_LEN;
		nvt_scsi_data_out(t, off, d, sizeof(d));
		if (!nvt_scsi_cscd(t, d, off, &cscd[i]))
			goto out;
	}
	/* Segment descriptors: copied out of guest memory once, checked, kept decoded. */
	off = (uint32_t)sizeof(hdr) + cscd_len;
	for (uint32_t end = off + seg_len; off < end;) {
		struct nvt_scsi_xseg *s;
		uint16_t si, di;

		if (end - off < 4 || nvt_scsi_data_out(t, off, d, 4) != 4) {
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PARAM_LIST_LENGTH);
			goto out;
		}
		if (d[0] != 0x02) {
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_UNSUPPORTED_SEG);
			goto out;
		}
		if (nvt_get_be16(d + 2) != NVT_SCSI_SEG_LEN - 4 || end - off < NVT_SCSI_SEG_LEN) {
			nvt_scsi_bad_field(t, false, (uint16_t)(off + 2), -1);
			goto out;
		}
		if (cmd->nr_seg >= NVT_SCSI_XCOPY_SEGS) {
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_TOO_MANY_SEGS);
			goto out;
		}
		nvt_scsi_data_out(t, off, d, NVT_SCSI_SEG_LEN);
		si = nvt_get_be16(d + 4);
		di = nvt_get_be16(d + 6);
		if (si >= ncscd || di >= ncscd) {
			nvt_scsi_bad_field(t, false, (uint16_t)(off + (si >= ncscd ? 4 : 6)), -1);
			goto out;
		}
		s = &cmd->segs[cmd->nr_seg];
		s->src = cscd[si];
		s->dst = cscd[di];
		s->nlb = nvt_get_be16(d + 10);
		s->src_lba = nvt_get_be64(d + 12);
		s->dst_lba = nvt_get_be64(d + 20);
		/* Blocks move one for one: the two ends must have one block size (DC then changes nothing). */
		if (s->src->ns->block_size != s->dst->ns->block_size) {
			nvt_scsi_bad_field(t, false, (uint16_t)(off + 6), -1);
			goto out;
		}
		if (s->src_lba > s->src->ns->nblocks || s->nlb > s->src->ns->nblocks - s->src_lba ||
		    s->dst_lba > s->dst->ns->nblocks || s->nlb > s->dst->ns->nblocks - s->dst_lba) {
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_LBA_RANGE);
			goto out;
		}
		cross |= s->src->ns != s->dst->ns && s->nlb;
		cmd->nr_seg++;
		off += NVT_SCSI_SEG_LEN;
	}
	cmd->xfer = plen;
	cmd->next = nvt_scsi_xcopy_next;
	cmd->absorb = nvt_scsi_xcopy_absorb;
	nvt_scsi_copy_record(t, 0);
	if (cross && !nvt_scsi_copy_buf_get(t))
		return;		/* nvt_scsi_copy_buf_put() starts it */
	nvt_scsi_steps(t);
	return;
out:
	t->resid = t->data_len;
	nvt_scsi_complete(t);
}

/* ---- RECEIVE COPY RESULTS (LID1), SPC-4 6.18 ---- */

void nvt_scsi_exec_copy_results(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	struct nvt_scsi_lun_priv *p = t->lun->priv;
	uint32_t alloc = nvt_get_be32(c + 10);
	uint8_t b[48] = { 0 };

	switch (c[1] & 0x1f) {
	case 0x00: {
		/* COPY STATUS of a held list id: what ran last on this LUN. */
		uint32_t id = atomic_load(&p->copy_list_id);
		uint64_t bytes = atomic_load(&p->copy_bytes);

		if (!(id & 0x100) || (id & 0xff) != c[2]) {
			nvt_scsi_bad_field(t, true, 2, -1);
			break;
		}
		nvt_put_be32(b, 8);
		b[4] = (uint8_t)atomic_load(&p->copy_status);
		nvt_put_be16(b + 5, (uint16_t)atomic_load(&p->copy_segs));
		/* Transfer count in bytes, or KiB when it does not fit 32 bits. */
		if (bytes > UINT32_MAX) {
			b[7] = 0x01;
			bytes >>= 10;
		}
		nvt_put_be32(b + 8, bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes);
		nvt_scsi_data_in(t, b, 12, alloc);
		break;
	}
	case 0x03:
		/* OPERATING PARAMETERS: what sg_xcopy sizes its lists and segments by. */
		nvt_put_be32(b, 42);
		b[4] = 0x01;					/* SNLID */
		nvt_put_be16(b + 8, NVT_SCSI_XCOPY_CSCDS);
		nvt_put_be16(b + 10, NVT_SCSI_XCOPY_SEGS);
		nvt_put_be32(b + 12, NVT_SCSI_XCOPY_MAX_LIST);
		nvt_put_be32(b + 16, 0xffffu * t->lun->ns->block_size);	/* a segment's 16-bit count */
		nvt_put_be16(b + 34, 1);
		b[36] = 1;
		b[37] = t->lun->ns->lba_shift;
		b[43] = 2;
		b[44] = 0x02;
		b[45] = 0xe4;
		nvt_scsi_data_in(t, b, 46, alloc);
		break;
	default:
		nvt_scsi_bad_field(t, true, 1, 4);
		break;
	}
	nvt_scsi_complete(t);
}
