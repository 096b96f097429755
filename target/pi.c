/* SPDX-License-Identifier: BSD-3-Clause */
/* Protection information: generate and check PI tuples over iovecs, and move blocks between extended-LBA and separate metadata. */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nvt/crc.h"
#include "nvt/pi.h"
#include "nvt/wire.h"

#define NVT_PI_REF32_MASK	0xffffffffull		/* 16b guard: 32-bit ref tag */
#define NVT_PI_REF48_MASK	0xffffffffffffull	/* 64b guard, STS 0: 48-bit ref tag */
#define NVT_PI_APP_ESCAPE	0xffff			/* app tag that turns checking off */
#define NVT_PI_MAX_SIZE		sizeof(struct nvt_pi64)

/* Tuple field offsets come from the wire structs, so the layout lives in one place. */
#define NVT_PI16_APP		offsetof(struct nvt_pi16, apptag)
#define NVT_PI16_REF		offsetof(struct nvt_pi16, reftag)
#define NVT_PI64_APP		offsetof(struct nvt_pi64, apptag)
#define NVT_PI64_REF		offsetof(struct nvt_pi64, reftag)

/* What one pass does to each block. */
enum nvt_pi_op {
	NVT_PI_OP_GENERATE,	/* compute the guard, write the tuple into the metadata */
	NVT_PI_OP_VERIFY,	/* read the tuple and check it (the pass may also copy) */
	NVT_PI_OP_COPY,		/* copy only: split or join without checks */
};

/* A read/write position in an iovec array. */
struct nvt_pi_cur {
	const struct iovec *iov;	/* current element */
	size_t off;			/* bytes of it already consumed */
};

/* One block's shape: data, then metadata = pre | tuple | post. */
struct nvt_pi_layout {
	size_t bs;			/* data bytes */
	size_t pre;			/* metadata before the tuple: covered by the guard */
	size_t pi;			/* tuple bytes; 0 without PI (then pre = md_size) */
	size_t post;			/* metadata after the tuple: not covered */
	enum nvt_pi_guard guard;
};

unsigned int nvt_pi_size(enum nvt_pi_guard guard)
{
	return guard == NVT_PI_GUARD_CRC64 ? sizeof(struct nvt_pi64) : sizeof(struct nvt_pi16);
}

int nvt_pi_format_validate(const struct nvt_pi_format *fmt)
{
	uint32_t bs = fmt->block_size;

	if (fmt->type > NVT_PI_TYPE3)
		return -EINVAL;
	if (fmt->guard != NVT_PI_GUARD_CRC16 && fmt->guard != NVT_PI_GUARD_CRC64)
		return -EINVAL;
	/* LBADS: a power of two, at least 2^9; the config narrows it further. */
	if (bs < 512 || bs > 65536 || (bs & (bs - 1)))
		return -EINVAL;
	if (fmt->type != NVT_PI_NONE && fmt->md_size < nvt_pi_size(fmt->guard))
		return -EINVAL;
	return 0;
}

static uint64_t nvt_pi_ref_mask(enum nvt_pi_guard guard)
{
	return guard == NVT_PI_GUARD_CRC64 ? NVT_PI_REF48_MASK : NVT_PI_REF32_MASK;
}

void nvt_pi_ctx_init(struct nvt_pi_ctx *ctx, const struct nvt_pi_format *fmt, uint64_t slba,
		     uint8_t prinfo, uint64_t eilbrt, uint16_t apptag, uint16_t appmask)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->fmt = fmt;
	ctx->slba = slba;
	ctx->app_tag = apptag;
	ctx->app_mask = appmask;
	ctx->ref_tag = eilbrt & nvt_pi_ref_mask(fmt->guard);
	/* Without PI the PRINFO field means nothing. */
	if (fmt->type == NVT_PI_NONE)
		return;
	ctx->check = prinfo & NVT_PI_CHECK_MASK;
	/* Type 3 ref tags are opaque: the controller "should not compare" them. */
	if (fmt->type == NVT_PI_TYPE3)
		ctx->check &= ~NVT_PI_CHECK_REFTAG;
	ctx->pract = prinfo & NVT_PI_PRACT;
}

bool nvt_pi_ilbrt_ok(const struct nvt_pi_format *fmt, uint64_t slba, uint8_t prinfo,
		     uint64_t eilbrt)
{
	uint64_t mask = nvt_pi_ref_mask(fmt->guard);

	if (fmt->type != NVT_PI_TYPE1 || !(prinfo & NVT_PI_CHECK_REFTAG))
		return true;
	return (eilbrt & mask) == (slba & mask);
}

bool nvt_pi_md_on_wire(const struct nvt_pi_ctx *ctx)
{
	const struct nvt_pi_format *fmt = ctx->fmt;

	if (!fmt->md_size)
		return false;
	if (fmt->type == NVT_PI_NONE)
		return true;
	/* PRACT=1 with PI-only metadata: the controller inserts on write and strips on read. */
	return !(ctx->pract && fmt->md_size == nvt_pi_size(fmt->guard));
}

uint16_t nvt_pi_err_to_status(const struct nvt_pi_err *err)
{
	switch (err->type) {
	case NVT_PI_ERR_GUARD:
		return NVT_ST_PI_GUARD;
	case NVT_PI_ERR_APPTAG:
		return NVT_ST_PI_APPTAG;
	case NVT_PI_ERR_REFTAG:
		return NVT_ST_PI_REFTAG;
	default:
		return NVT_ST_INTERNAL;
	}
}

/* ---- byte order: tuples are big-endian and may sit at any alignment ---- */

static inline uint16_t nvt_pi_get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static inline uint32_t nvt_pi_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static inline uint64_t nvt_pi_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static inline uint64_t nvt_pi_get48(const uint8_t *p)
{
	return (uint64_t)nvt_pi_get16(p) << 32 | nvt_pi_get32(p + 2);
}

static inline void nvt_pi_put16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void nvt_pi_put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void nvt_pi_put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

static inline void nvt_pi_put48(uint8_t *p, uint64_t v)
{
	nvt_pi_put16(p, (uint16_t)(v >> 32));
	nvt_pi_put32(p + 2, (uint32_t)v);
}

/* ---- guards ---- */

/* Both CRCs chain with the previous result as seed and start from 0 (see crc.h). */
static inline uint64_t nvt_pi_crc(enum nvt_pi_guard guard, uint64_t crc, const void *p, size_t len)
{
	if (guard == NVT_PI_GUARD_CRC16)
		return nvt_crc16_t10dif((uint16_t)crc, p, len);
	return nvt_crc64_nvme(crc, p, len);
}

/*
 * Copy @len bytes and fold them into the guard. The CRC is taken of the
 * bytes as written, so what is checked is what gets stored: both fused
 * routines sum the very registers they store. An in-place split moves data
 * backwards over itself: memmove, then the CRC of the destination.
 */
static inline uint64_t nvt_pi_crc_copy(enum nvt_pi_guard guard, uint64_t crc, uint8_t *dst,
				       const uint8_t *src, size_t len)
{
	uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;

	if (d + len <= s || s + len <= d) {
		if (guard == NVT_PI_GUARD_CRC16)
			return nvt_crc16_t10dif_copy((uint16_t)crc, dst, src, len);
		return nvt_crc64_nvme_copy(crc, dst, src, len);
	}
	memmove(dst, src, len);
	return nvt_pi_crc(guard, crc, dst, len);
}

/* ---- iovec cursors ---- */

static inline void nvt_pi_cur_init(struct nvt_pi_cur *c, const struct iovec *iov)
{
	c->iov = iov;
	c->off = 0;
}

/*
 * The next byte and how many follow it in the same element. Only called
 * while bytes remain, which the entry points checked against the total
 * length, so skipping spent (or empty) elements cannot run off the array.
 */
static inline uint8_t *nvt_pi_cur_peek(struct nvt_pi_cur *c, size_t *avail)
{
	while (c->off >= c->iov->iov_len) {
		c->iov++;
		c->off = 0;
	}
	*avail = c->iov->iov_len - c->off;
	return (uint8_t *)c->iov->iov_base + c->off;
}

/* Consume @len bytes of @in, folding them into *@crc unless it is NULL. */
static inline void nvt_pi_feed(struct nvt_pi_cur *in, size_t len, enum nvt_pi_guard guard,
			       uint64_t *crc)
{
	while (len) {
		size_t avail, n;
		const uint8_t *p = nvt_pi_cur_peek(in, &avail);

		n = len < avail ? len : avail;
		if (crc)
			*crc = nvt_pi_crc(guard, *crc, p, n);
		in->off += n;
		len -= n;
	}
}

/* Copy @len bytes from @in to @out, folding them into *@crc unless it is NULL. */
static inline void nvt_pi_copy(struct nvt_pi_cur *in, struct nvt_pi_cur *out, size_t len,
			       enum nvt_pi_guard guard, uint64_t *crc)
{
	while (len) {
		size_t in_avail, out_avail, n;
		const uint8_t *s = nvt_pi_cur_peek(in, &in_avail);
		uint8_t *d = nvt_pi_cur_peek(out, &out_avail);

		n = len < in_avail ? len : in_avail;
		n = n < out_avail ? n : out_avail;
		if (crc)
			*crc = nvt_pi_crc_copy(guard, *crc, d, s, n);
		else
			memmove(d, s, n);
		in->off += n;
		out->off += n;
		len -= n;
	}
}

/* Feed or copy, depending on whether the pass has a destination. */
static inline void nvt_pi_move(struct nvt_pi_cur *in, struct nvt_pi_cur *out, size_t len,
			       enum nvt_pi_guard guard, uint64_t *crc)
{
	if (out)
		nvt_pi_copy(in, out, len, guard, crc);
	else
		nvt_pi_feed(in, len, guard, crc);
}

/*
 * Consume a @len-byte tuple from @c: a pointer into the buffer when it is
 * contiguous (the usual case), else gathered into @buf.
 */
static inline const uint8_t *nvt_pi_get_tuple(struct nvt_pi_cur *c, uint8_t *buf, size_t len)
{
	size_t avail, done = 0;
	const uint8_t *p = nvt_pi_cur_peek(c, &avail);

	if (avail >= len) {
		c->off += len;
		return p;
	}
	while (done < len) {
		size_t n;

		p = nvt_pi_cur_peek(c, &avail);
		n = len - done < avail ? len - done : avail;
		memcpy(buf + done, p, n);
		c->off += n;
		done += n;
	}
	return buf;
}

/* Write @len bytes from @src at @c, scattering them if the tuple straddles elements. */
static inline void nvt_pi_put_tuple(struct nvt_pi_cur *c, const uint8_t *src, size_t len)
{
	while (len) {
		size_t avail, n;
		uint8_t *p = nvt_pi_cur_peek(c, &avail);

		n = len < avail ? len : avail;
		memcpy(p, src, n);
		c->off += n;
		src += n;
		len -= n;
	}
}

/* ---- tuples ---- */

static inline void nvt_pi_layout_init(struct nvt_pi_layout *l, const struct nvt_pi_format *fmt)
{
	l->bs = fmt->block_size;
	l->guard = fmt->guard;
	l->pi = fmt->type == NVT_PI_NONE ? 0 : nvt_pi_size(fmt->guard);
	/*
	 * NVM Command Set 1.0 §5.2: with the tuple in the last bytes of the
	 * metadata the guard covers the data and the metadata before it; with
	 * the tuple first it covers the data only.
	 */
	if (fmt->pi_first && l->pi) {
		l->pre = 0;
		l->post = fmt->md_size - l->pi;
	} else {
		l->pre = fmt->md_size - l->pi;
		l->post = 0;
	}
}

/* The tuple nvt_pi_generate() writes for block @i. */
static inline void nvt_pi_build(const struct nvt_pi_ctx *ctx, const struct nvt_pi_layout *l,
				uint64_t crc, uint32_t i, uint8_t *t)
{
	/* Type 3 stores the command's ref tag unchanged on every block, as QEMU and SPDK do. */
	uint64_t ref = ctx->ref_tag + (ctx->fmt->type == NVT_PI_TYPE3 ? 0 : i);

	if (l->guard == NVT_PI_GUARD_CRC16) {
		nvt_pi_put16(t, (uint16_t)crc);
		nvt_pi_put16(t + NVT_PI16_APP, ctx->app_tag);
		nvt_pi_put32(t + NVT_PI16_REF, (uint32_t)ref);
	} else {
		nvt_pi_put64(t, crc);
		nvt_pi_put16(t + NVT_PI64_APP, ctx->app_tag);
		nvt_pi_put48(t + NVT_PI64_REF, ref & NVT_PI_REF48_MASK);
	}
}

static int nvt_pi_fail(const struct nvt_pi_ctx *ctx, struct nvt_pi_err *err,
		       enum nvt_pi_err_type type, uint64_t expected, uint64_t actual, uint32_t i)
{
	if (err) {
		err->type = type;
		err->expected = expected;
		err->actual = actual;
		err->offset = i;
		err->lba = ctx->slba + i;
	}
	return -EILSEQ;
}

/* Check block @i's tuple @t against the context; @crc is valid only when the guard is checked. */
static inline int nvt_pi_check(const struct nvt_pi_ctx *ctx, const struct nvt_pi_layout *l,
			       const uint8_t *t, uint64_t crc, uint32_t i, struct nvt_pi_err *err)
{
	uint64_t guard, ref, mask, expected;
	uint16_t app;

	if (l->guard == NVT_PI_GUARD_CRC16) {
		guard = nvt_pi_get16(t);
		app = nvt_pi_get16(t + NVT_PI16_APP);
		ref = nvt_pi_get32(t + NVT_PI16_REF);
		mask = NVT_PI_REF32_MASK;
	} else {
		guard = nvt_pi_get64(t);
		app = nvt_pi_get16(t + NVT_PI64_APP);
		ref = nvt_pi_get48(t + NVT_PI64_REF);
		mask = NVT_PI_REF48_MASK;
	}

	/*
	 * Escapes (NVM Command Set 1.0 §5.2): Type 1/2 skip every check of a
	 * block whose app tag is FFFFh; Type 3 needs the ref tag all ones too.
	 */
	if (app == NVT_PI_APP_ESCAPE && (ctx->fmt->type != NVT_PI_TYPE3 || ref == mask))
		return 0;

	/* Guard, app tag, ref tag: SPDK's order, so the same block fails the same way. */
	if ((ctx->check & NVT_PI_CHECK_GUARD) && guard != crc)
		return nvt_pi_fail(ctx, err, NVT_PI_ERR_GUARD, crc, guard, i);
	if ((ctx->check & NVT_PI_CHECK_APPTAG) && ((app ^ ctx->app_tag) & ctx->app_mask))
		return nvt_pi_fail(ctx, err, NVT_PI_ERR_APPTAG, ctx->app_tag & ctx->app_mask,
				   app & ctx->app_mask, i);
	if (ctx->check & NVT_PI_CHECK_REFTAG) {
		expected = (ctx->ref_tag + i) & mask;
		if (ref != expected)
			return nvt_pi_fail(ctx, err, NVT_PI_ERR_REFTAG, expected, ref, i);
	}
	return 0;
}

/*
 * The one block walk behind every entry point. Data comes from @din and
 * metadata from @min; they are the same cursor for an extended-LBA source.
 * @dout/@mout, when set, receive copies (the same cursor for an
 * extended-LBA destination). Always inlined so that each entry point gets
 * a loop specialised for its @op and its NULL destinations.
 */
static inline __attribute__((always_inline)) int
nvt_pi_run(const struct nvt_pi_format *fmt, const struct nvt_pi_ctx *ctx, enum nvt_pi_op op,
	   struct nvt_pi_cur *din, struct nvt_pi_cur *min,
	   struct nvt_pi_cur *dout, struct nvt_pi_cur *mout, uint32_t nlb, struct nvt_pi_err *err)
{
	struct nvt_pi_layout l;
	bool want_crc, check;
	uint8_t buf[2 * NVT_PI_MAX_SIZE];	/* a tuple; generate-while-copying: and the skipped one */

	nvt_pi_layout_init(&l, fmt);
	want_crc = l.pi && (op == NVT_PI_OP_GENERATE ||
			    (op == NVT_PI_OP_VERIFY && (ctx->check & NVT_PI_CHECK_GUARD)));
	check = l.pi && op == NVT_PI_OP_VERIFY && ctx->check;

	for (uint32_t i = 0; i < nlb; i++) {
		uint64_t crc = 0;
		uint64_t *crcp = want_crc ? &crc : NULL;
		const uint8_t *t;
		int ret;

		nvt_pi_move(din, dout, l.bs, l.guard, crcp);
		nvt_pi_move(min, mout, l.pre, l.guard, crcp);
		if (!l.pi)
			continue;
		if (op == NVT_PI_OP_GENERATE) {
			nvt_pi_build(ctx, &l, crc, i, buf);
			/* Copying: the source's tuple bytes are skipped, ours land in the copy. */
			if (mout) {
				nvt_pi_get_tuple(min, buf + l.pi, l.pi);
				nvt_pi_put_tuple(mout, buf, l.pi);
			} else {
				nvt_pi_put_tuple(min, buf, l.pi);
			}
		} else {
			t = nvt_pi_get_tuple(min, buf, l.pi);
			if (mout)
				nvt_pi_put_tuple(mout, t, l.pi);
			if (check) {
				ret = nvt_pi_check(ctx, &l, t, crc, i, err);
				if (ret)
					return ret;
			}
		}
		nvt_pi_move(min, mout, l.post, l.guard, NULL);
	}
	return 0;
}

/* Do @cnt elements hold @nlb blocks of @per_block bytes? A NULL array holds nothing. */
static bool nvt_pi_holds(const struct iovec *iov, unsigned int cnt, uint32_t nlb, size_t per_block)
{
	uint64_t need = (uint64_t)nlb * per_block, have = 0;

	if (!iov)
		cnt = 0;
	for (unsigned int k = 0; k < cnt && have < need; k++)
		have += iov[k].iov_len;
	return have >= need;
}

/* Per-block byte counts of the three views. */
#define NVT_PI_DATA(fmt)	((size_t)(fmt)->block_size)
#define NVT_PI_MD(fmt)		((size_t)(fmt)->md_size)
#define NVT_PI_EXT(fmt)		((size_t)(fmt)->block_size + (fmt)->md_size)

int nvt_pi_generate(const struct nvt_pi_ctx *ctx, const struct iovec *data, unsigned int data_cnt,
		    const struct iovec *md, unsigned int md_cnt, uint32_t nlb)
{
	struct nvt_pi_cur d, m;

	if (!nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(ctx->fmt)))
		return -EINVAL;
	if (ctx->fmt->type == NVT_PI_NONE)
		return 0;
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	return nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_GENERATE, &d, &m, NULL, NULL, nlb, NULL);
}

int nvt_pi_generate_ext(const struct nvt_pi_ctx *ctx, const struct iovec *ext, unsigned int cnt,
			uint32_t nlb)
{
	struct nvt_pi_cur e;

	if (!nvt_pi_holds(ext, cnt, nlb, NVT_PI_EXT(ctx->fmt)))
		return -EINVAL;
	if (ctx->fmt->type == NVT_PI_NONE)
		return 0;
	nvt_pi_cur_init(&e, ext);
	return nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_GENERATE, &e, &e, NULL, NULL, nlb, NULL);
}

int nvt_pi_generate_copy(const struct nvt_pi_ctx *ctx, const struct iovec *data,
			 unsigned int data_cnt, const struct iovec *md, unsigned int md_cnt,
			 const struct iovec *dst, unsigned int dst_cnt,
			 const struct iovec *dst_md, unsigned int dst_md_cnt, uint32_t nlb)
{
	struct nvt_pi_cur d, m, od, om;

	if (!nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(ctx->fmt)) ||
	    !nvt_pi_holds(dst, dst_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    !nvt_pi_holds(dst_md, dst_md_cnt, nlb, NVT_PI_MD(ctx->fmt)))
		return -EINVAL;
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	nvt_pi_cur_init(&od, dst);
	nvt_pi_cur_init(&om, dst_md);
	if (ctx->fmt->type == NVT_PI_NONE)
		return nvt_pi_run(ctx->fmt, NULL, NVT_PI_OP_COPY, &d, &m, &od, &om, nlb, NULL);
	return nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_GENERATE, &d, &m, &od, &om, nlb, NULL);
}

int nvt_pi_verify_copy(const struct nvt_pi_ctx *ctx, const struct iovec *data,
		       unsigned int data_cnt, const struct iovec *md, unsigned int md_cnt,
		       const struct iovec *dst, unsigned int dst_cnt,
		       const struct iovec *dst_md, unsigned int dst_md_cnt, uint32_t nlb,
		       struct nvt_pi_err *err)
{
	struct nvt_pi_cur d, m, od, om;
	bool with_md = dst_md && dst_md_cnt;

	if (!nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(ctx->fmt)) ||
	    !nvt_pi_holds(dst, dst_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    (with_md && !nvt_pi_holds(dst_md, dst_md_cnt, nlb, NVT_PI_MD(ctx->fmt))))
		return -EINVAL;
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	nvt_pi_cur_init(&od, dst);
	nvt_pi_cur_init(&om, dst_md);
	/* Specialised walks: with or without a metadata copy, with or without checks. */
	if (ctx->fmt->type == NVT_PI_NONE || !ctx->check)
		return with_md ? nvt_pi_run(ctx->fmt, NULL, NVT_PI_OP_COPY, &d, &m, &od, &om, nlb, NULL) :
				 nvt_pi_run(ctx->fmt, NULL, NVT_PI_OP_COPY, &d, &m, &od, NULL, nlb, NULL);
	return with_md ? nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_VERIFY, &d, &m, &od, &om, nlb, err) :
			 nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_VERIFY, &d, &m, &od, NULL, nlb, err);
}

int nvt_pi_verify(const struct nvt_pi_ctx *ctx, const struct iovec *data, unsigned int data_cnt,
		  const struct iovec *md, unsigned int md_cnt, uint32_t nlb, struct nvt_pi_err *err)
{
	struct nvt_pi_cur d, m;

	if (!nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(ctx->fmt)))
		return -EINVAL;
	/* Nothing to look at: PRCHK 0 (or Type 3 with only the ref tag asked) is a no-op. */
	if (ctx->fmt->type == NVT_PI_NONE || !ctx->check)
		return 0;
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	return nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_VERIFY, &d, &m, NULL, NULL, nlb, err);
}

int nvt_pi_verify_ext(const struct nvt_pi_ctx *ctx, const struct iovec *ext, unsigned int cnt,
		      uint32_t nlb, struct nvt_pi_err *err)
{
	struct nvt_pi_cur e;

	if (!nvt_pi_holds(ext, cnt, nlb, NVT_PI_EXT(ctx->fmt)))
		return -EINVAL;
	if (ctx->fmt->type == NVT_PI_NONE || !ctx->check)
		return 0;
	nvt_pi_cur_init(&e, ext);
	return nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_VERIFY, &e, &e, NULL, NULL, nlb, err);
}

int nvt_pi_split(const struct nvt_pi_format *fmt, const struct iovec *ext, unsigned int ext_cnt,
		 const struct iovec *data, unsigned int data_cnt,
		 const struct iovec *md, unsigned int md_cnt, uint32_t nlb)
{
	struct nvt_pi_cur e, d, m;

	if (!nvt_pi_holds(ext, ext_cnt, nlb, NVT_PI_EXT(fmt)) ||
	    !nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(fmt)))
		return -EINVAL;
	nvt_pi_cur_init(&e, ext);
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	return nvt_pi_run(fmt, NULL, NVT_PI_OP_COPY, &e, &e, &d, &m, nlb, NULL);
}

int nvt_pi_join(const struct nvt_pi_format *fmt, const struct iovec *data, unsigned int data_cnt,
		const struct iovec *md, unsigned int md_cnt,
		const struct iovec *ext, unsigned int ext_cnt, uint32_t nlb)
{
	struct nvt_pi_cur e, d, m;

	if (!nvt_pi_holds(ext, ext_cnt, nlb, NVT_PI_EXT(fmt)) ||
	    !nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(fmt)))
		return -EINVAL;
	nvt_pi_cur_init(&e, ext);
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	return nvt_pi_run(fmt, NULL, NVT_PI_OP_COPY, &d, &m, &e, &e, nlb, NULL);
}

int nvt_pi_verify_split(const struct nvt_pi_ctx *ctx, const struct iovec *ext, unsigned int ext_cnt,
			const struct iovec *data, unsigned int data_cnt,
			const struct iovec *md, unsigned int md_cnt, uint32_t nlb,
			struct nvt_pi_err *err)
{
	struct nvt_pi_cur e, d, m;

	if (!nvt_pi_holds(ext, ext_cnt, nlb, NVT_PI_EXT(ctx->fmt)) ||
	    !nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(ctx->fmt)))
		return -EINVAL;
	nvt_pi_cur_init(&e, ext);
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	if (ctx->fmt->type == NVT_PI_NONE || !ctx->check)
		return nvt_pi_run(ctx->fmt, NULL, NVT_PI_OP_COPY, &e, &e, &d, &m, nlb, NULL);
	return nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_VERIFY, &e, &e, &d, &m, nlb, err);
}

int nvt_pi_verify_join(const struct nvt_pi_ctx *ctx,
		       const struct iovec *data, unsigned int data_cnt,
		       const struct iovec *md, unsigned int md_cnt,
		       const struct iovec *ext, unsigned int ext_cnt, uint32_t nlb,
		       struct nvt_pi_err *err)
{
	struct nvt_pi_cur e, d, m;

	if (!nvt_pi_holds(ext, ext_cnt, nlb, NVT_PI_EXT(ctx->fmt)) ||
	    !nvt_pi_holds(data, data_cnt, nlb, NVT_PI_DATA(ctx->fmt)) ||
	    !nvt_pi_holds(md, md_cnt, nlb, NVT_PI_MD(ctx->fmt)))
		return -EINVAL;
	nvt_pi_cur_init(&e, ext);
	nvt_pi_cur_init(&d, data);
	nvt_pi_cur_init(&m, md);
	if (ctx->fmt->type == NVT_PI_NONE || !ctx->check)
		return nvt_pi_run(ctx->fmt, NULL, NVT_PI_OP_COPY, &d, &m, &e, &e, nlb, NULL);
	return nvt_pi_run(ctx->fmt, ctx, NVT_PI_OP_VERIFY, &d, &m, &e, &e, nlb, err);
}

void nvt_pi_ctx_advance(struct nvt_pi_ctx *ctx, uint64_t off)
{
	uint64_t mask = ctx->fmt->guard == NVT_PI_GUARD_CRC64 ? 0xffffffffffffull : 0xffffffffull;

	ctx->slba += off;
	if (ctx->fmt->type == NVT_PI_TYPE1 || ctx->fmt->type == NVT_PI_TYPE2)
		ctx->ref_tag = (ctx->ref_tag + off) & mask;
}

void nvt_pi_retag(const struct nvt_pi_ctx *ctx, void *md, uint32_t nlb)
{
	const struct nvt_pi_format *fmt = ctx->fmt;
	struct nvt_pi_layout l;
	uint8_t *t = md;

	if (fmt->type != NVT_PI_TYPE1 && fmt->type != NVT_PI_TYPE2)
		return;
	nvt_pi_layout_init(&l, fmt);
	for (uint32_t i = 0; i < nlb; i++, t += fmt->md_size) {
		uint64_t ref = ctx->ref_tag + i;

		if (l.guard == NVT_PI_GUARD_CRC16)
			nvt_pi_put32(t + l.pre + NVT_PI16_REF, (uint32_t)ref);
		else
			nvt_pi_put48(t + l.pre + NVT_PI64_REF, ref & NVT_PI_REF48_MASK);
	}
}

void nvt_pi_copy_tags(const struct nvt_pi_format *src_fmt, const void *src,
		      const struct nvt_pi_format *dst_fmt, void *dst, uint32_t nlb)
{
	bool ref = src_fmt->type == NVT_PI_TYPE3 && dst_fmt->type == NVT_PI_TYPE3;
	struct nvt_pi_layout ls, ld;
	const uint8_t *s = src;
	uint8_t *d = dst;

	if (src_fmt->type == NVT_PI_NONE || dst_fmt->type == NVT_PI_NONE)
		return;
	nvt_pi_layout_init(&ls, src_fmt);
	nvt_pi_layout_init(&ld, dst_fmt);
	for (uint32_t i = 0; i < nlb; i++, s += src_fmt->md_size, d += dst_fmt->md_size) {
		const uint8_t *st = s + ls.pre;
		uint8_t *dt = d + ld.pre;
		bool s16 = ls.guard == NVT_PI_GUARD_CRC16, d16 = ld.guard == NVT_PI_GUARD_CRC16;
		uint16_t app = nvt_pi_get16(st + (s16 ? NVT_PI16_APP : NVT_PI64_APP));
		uint64_t r = s16 ? nvt_pi_get32(st + NVT_PI16_REF) : nvt_pi_get48(st + NVT_PI64_REF);

		nvt_pi_put16(dt + (d16 ? NVT_PI16_APP : NVT_PI64_APP), app);
		if (!ref)
			continue;
		if (d16)
			nvt_pi_put32(dt + NVT_PI16_REF, (uint32_t)r);
		else
			nvt_pi_put48(dt + NVT_PI64_REF, r & NVT_PI_REF48_MASK);
	}
}
