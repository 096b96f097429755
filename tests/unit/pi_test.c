/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for protection information: known answers, every format x PRCHK, errors, escapes, split iovecs, extended LBAs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <isa-l/crc.h>

#include "nvt/crc.h"
#include "nvt/pi.h"
#include "nvt/wire.h"

#define MAX_BS		4096
#define MAX_MD		64
#define MAX_NLB		8
#define MAX_IOV		128
#define MAX_BUF		(MAX_NLB * (MAX_BS + MAX_MD))

/* Deterministic so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rng() >> 32);
}

static struct nvt_pi_format mkfmt(enum nvt_pi_type type, enum nvt_pi_guard guard, bool first,
				  uint32_t bs, uint16_t md)
{
	struct nvt_pi_format f = {
		.type = type, .guard = guard, .pi_first = first, .block_size = bs, .md_size = md,
	};

	return f;
}

/* ---- an independent model of the tuple, straight from the spec text ---- */

static size_t model_pi_len(const struct nvt_pi_format *f)
{
	return f->type == NVT_PI_NONE ? 0 : f->guard == NVT_PI_GUARD_CRC64 ? 16 : 8;
}

/* Offset of the tuple in a block's metadata: first bytes, or last bytes. */
static size_t model_pi_off(const struct nvt_pi_format *f)
{
	return f->pi_first ? 0 : f->md_size - model_pi_len(f);
}

static uint64_t model_ref_mask(const struct nvt_pi_format *f)
{
	return f->guard == NVT_PI_GUARD_CRC64 ? 0xffffffffffffull : 0xffffffffull;
}

/* Guard over the block's data and, with PI last, the metadata bytes before the tuple. */
static uint64_t model_guard(const struct nvt_pi_format *f, const uint8_t *blk, const uint8_t *md)
{
	static uint8_t tmp[MAX_BS + MAX_MD];
	size_t n = f->block_size + model_pi_off(f);

	memcpy(tmp, blk, f->block_size);
	memcpy(tmp + f->block_size, md, model_pi_off(f));
	if (f->guard == NVT_PI_GUARD_CRC16)
		return crc16_t10dif(0, tmp, n);	/* isa-l directly, one call */
	return nvt_crc64_nvme(0, tmp, n);
}

static void model_put_be(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int k = 0; k < bytes; k++)
		p[k] = (uint8_t)(v >> (8 * (bytes - 1 - k)));
}

static uint64_t model_get_be(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int k = 0; k < bytes; k++)
		v = v << 8 | p[k];
	return v;
}

/* Where each tuple field sits: 16b guard 2|2|4, 64b guard 8|2|6. */
static unsigned int model_guard_len(const struct nvt_pi_format *f)
{
	return f->guard == NVT_PI_GUARD_CRC64 ? 8 : 2;
}

static unsigned int model_ref_len(const struct nvt_pi_format *f)
{
	return f->guard == NVT_PI_GUARD_CRC64 ? 6 : 4;
}

static uint16_t model_app(const struct nvt_pi_format *f, const uint8_t *md_blk)
{
	return (uint16_t)model_get_be(md_blk + model_pi_off(f) + model_guard_len(f), 2);
}

static uint64_t model_ref(const struct nvt_pi_format *f, const uint8_t *md_blk)
{
	return model_get_be(md_blk + model_pi_off(f) + model_guard_len(f) + 2, model_ref_len(f));
}

static uint64_t model_stored_guard(const struct nvt_pi_format *f, const uint8_t *md_blk)
{
	return model_get_be(md_blk + model_pi_off(f), model_guard_len(f));
}

static void model_set_app(const struct nvt_pi_format *f, uint8_t *md_blk, uint16_t app)
{
	model_put_be(md_blk + model_pi_off(f) + model_guard_len(f), app, 2);
}

static void model_set_ref(const struct nvt_pi_format *f, uint8_t *md_blk, uint64_t ref)
{
	model_put_be(md_blk + model_pi_off(f) + model_guard_len(f) + 2, ref, model_ref_len(f));
}

static void model_set_guard(const struct nvt_pi_format *f, uint8_t *md_blk, uint64_t guard)
{
	model_put_be(md_blk + model_pi_off(f), guard, model_guard_len(f));
}

/* PRACT=1 write: what every block's tuple must become; other metadata bytes stay. */
static void model_generate(const struct nvt_pi_format *f, const uint8_t *data, uint8_t *md,
			   uint32_t nlb, uint64_t eilbrt, uint16_t app)
{
	for (uint32_t i = 0; i < nlb; i++) {
		const uint8_t *blk = data + (size_t)i * f->block_size;
		uint8_t *m = md + (size_t)i * f->md_size;
		uint64_t ref = f->type == NVT_PI_TYPE3 ? eilbrt : eilbrt + i;

		model_set_guard(f, m, model_guard(f, blk, m));
		model_set_app(f, m, app);
		model_set_ref(f, m, ref & model_ref_mask(f));
	}
}

static void model_join(const struct nvt_pi_format *f, const uint8_t *data, const uint8_t *md,
		       uint8_t *ext, uint32_t nlb)
{
	size_t bs = f->block_size, ms = f->md_size;

	for (uint32_t i = 0; i < nlb; i++) {
		memcpy(ext + i * (bs + ms), data + i * bs, bs);
		memcpy(ext + i * (bs + ms) + bs, md + i * ms, ms);
	}
}

static struct iovec one(void *p, size_t len)
{
	struct iovec v = { .iov_base = p, .iov_len = len };

	return v;
}

/* ---- scatter lists: every piece a separate allocation, so ASan sees any overrun ---- */

struct sg {
	struct iovec iov[MAX_IOV];
	unsigned int cnt;
	size_t len;
};

/* Cut @len bytes of @src at the ascending offsets @cuts; a repeated cut makes an empty element. */
static void sg_build(struct sg *sg, const uint8_t *src, size_t len, const size_t *cuts,
		     unsigned int ncuts)
{
	size_t start = 0;

	sg->cnt = 0;
	sg->len = len;
	for (unsigned int k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t n = end - start;

		assert_true(end >= start && end <= len && sg->cnt < MAX_IOV);
		sg->iov[sg->cnt].iov_len = n;
		sg->iov[sg->cnt].iov_base = n ? malloc(n) : NULL;
		if (n)
			memcpy(sg->iov[sg->cnt].iov_base, src + start, n);
		sg->cnt++;
		start = end;
	}
}

/* Random cuts, about @pieces of them, with an occasional empty element. */
static void sg_random(struct sg *sg, const uint8_t *src, size_t len, unsigned int pieces)
{
	size_t cuts[MAX_IOV - 1];
	unsigned int n = pieces < MAX_IOV - 1 ? pieces : MAX_IOV - 1;

	for (unsigned int k = 0; k < n; k++)
		cuts[k] = len ? rng() % (len + 1) : 0;
	/* Insertion sort: n is small. */
	for (unsigned int k = 1; k < n; k++)
		for (unsigned int j = k; j && cuts[j - 1] > cuts[j]; j--) {
			size_t t = cuts[j];

			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
	sg_build(sg, src, len, cuts, n);
}

static void sg_gather(const struct sg *sg, uint8_t *dst)
{
	for (unsigned int k = 0; k < sg->cnt; k++) {
		if (sg->iov[k].iov_len)
			memcpy(dst, sg->iov[k].iov_base, sg->iov[k].iov_len);
		dst += sg->iov[k].iov_len;
	}
}

static void sg_free(struct sg *sg)
{
	for (unsigned int k = 0; k < sg->cnt; k++)
		free(sg->iov[k].iov_base);
	sg->cnt = 0;
}

static void assert_err(const struct nvt_pi_err *e, enum nvt_pi_err_type type, uint64_t expected,
		       uint64_t actual, uint64_t lba, uint32_t offset)
{
	assert_int_equal(e->type, type);
	assert_int_equal(e->expected, expected);
	assert_int_equal(e->actual, actual);
	assert_int_equal(e->lba, lba);
	assert_int_equal(e->offset, offset);
}

/* Buffers shared by the tests; static so that big blocks stay off the stack. */
static uint8_t g_data[MAX_NLB * MAX_BS], g_md[MAX_NLB * MAX_MD], g_ext[MAX_BUF];
static uint8_t g_data2[MAX_NLB * MAX_BS], g_md2[MAX_NLB * MAX_MD], g_ext2[MAX_BUF];
static uint8_t g_exp_md[MAX_NLB * MAX_MD];

/* ---- basic API ---- */

static void test_pi_size(void **state)
{
	assert_int_equal(nvt_pi_size(NVT_PI_GUARD_CRC16), 8);
	assert_int_equal(nvt_pi_size(NVT_PI_GUARD_CRC64), 16);
}

static void test_format_validate(void **state)
{
	struct nvt_pi_format f;

	f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8);
	assert_int_equal(nvt_pi_format_validate(&f), 0);
	f = mkfmt(NVT_PI_TYPE3, NVT_PI_GUARD_CRC64, true, 4096, 64);
	assert_int_equal(nvt_pi_format_validate(&f), 0);
	f = mkfmt(NVT_PI_TYPE2, NVT_PI_GUARD_CRC64, false, 4096, 16);
	assert_int_equal(nvt_pi_format_validate(&f), 0);
	/* Metadata without PI, and no metadata at all. */
	f = mkfmt(NVT_PI_NONE, NVT_PI_GUARD_CRC16, false, 512, 0);
	assert_int_equal(nvt_pi_format_validate(&f), 0);
	f = mkfmt(NVT_PI_NONE, NVT_PI_GUARD_CRC64, false, 4096, 4);
	assert_int_equal(nvt_pi_format_validate(&f), 0);

	/* Metadata too small for the tuple. */
	f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 7);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, false, 512, 8);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	f = mkfmt(NVT_PI_TYPE3, NVT_PI_GUARD_CRC16, true, 4096, 0);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	/* Bad block sizes. */
	f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 0, 8);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 256, 8);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 520, 8);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 131072, 8);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	/* Unknown type and guard. */
	f = mkfmt((enum nvt_pi_type)4, NVT_PI_GUARD_CRC16, false, 512, 8);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
	f = mkfmt(NVT_PI_TYPE1, (enum nvt_pi_guard)2, false, 512, 16);
	assert_int_equal(nvt_pi_format_validate(&f), -EINVAL);
}

static void test_ctx_init(void **state)
{
	struct nvt_pi_format f16 = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_format f64 = mkfmt(NVT_PI_TYPE2, NVT_PI_GUARD_CRC64, false, 4096, 16);
	struct nvt_pi_format f3 = mkfmt(NVT_PI_TYPE3, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_format fn = mkfmt(NVT_PI_NONE, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_ctx c;

	/* PRINFO bit 3 PRACT, bit 2 guard, bit 1 app, bit 0 ref; ref tag cut to 32 bits. */
	nvt_pi_ctx_init(&c, &f16, 77, 0xf, 0x123456789ull, 0xbeef, 0xff00);
	assert_ptr_equal(c.fmt, &f16);
	assert_int_equal(c.check, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG | NVT_PI_CHECK_REFTAG);
	assert_true(c.pract);
	assert_int_equal(c.ref_tag, 0x23456789);
	assert_int_equal(c.app_tag, 0xbeef);
	assert_int_equal(c.app_mask, 0xff00);
	assert_int_equal(c.slba, 77);

	nvt_pi_ctx_init(&c, &f16, 0, 0x5, 0, 0, 0);
	assert_int_equal(c.check, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG);
	assert_false(c.pract);

	/* 64b guard: 48-bit ref tag. */
	nvt_pi_ctx_init(&c, &f64, 0, 0x1, 0xffff123456789abcull, 0, 0);
	assert_int_equal(c.ref_tag, 0x123456789abcull);
	assert_int_equal(c.check, NVT_PI_CHECK_REFTAG);

	/* Type 3 never checks the ref tag. */
	nvt_pi_ctx_init(&c, &f3, 0, 0x7, 5, 0, 0);
	assert_int_equal(c.check, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG);
	assert_int_equal(c.ref_tag, 5);

	/* No PI: PRINFO is ignored. */
	nvt_pi_ctx_init(&c, &fn, 0, 0xf, 5, 0, 0);
	assert_int_equal(c.check, 0);
	assert_false(c.pract);

	/* Macro: PRINFO sits in bits 13:10 of the control half-word. */
	assert_int_equal(NVT_PI_PRINFO(0x3c00), 0xf);
	assert_int_equal(NVT_PI_PRINFO(0x4000 | 0x2000 | 0x0400),
			 NVT_PI_PRACT | NVT_PI_CHECK_REFTAG);
}

static void test_md_on_wire(void **state)
{
	struct nvt_pi_format f8 = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_format f16 = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 16);
	struct nvt_pi_format g16 = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, true, 4096, 16);
	struct nvt_pi_format none0 = mkfmt(NVT_PI_NONE, NVT_PI_GUARD_CRC16, false, 512, 0);
	struct nvt_pi_format none8 = mkfmt(NVT_PI_NONE, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_ctx c;

	nvt_pi_ctx_init(&c, &f8, 0, NVT_PI_PRACT | 7, 0, 0, 0);
	assert_false(nvt_pi_md_on_wire(&c));	/* insert/strip: data only */
	nvt_pi_ctx_init(&c, &f8, 0, 7, 0, 0, 0);
	assert_true(nvt_pi_md_on_wire(&c));
	nvt_pi_ctx_init(&c, &f16, 0, NVT_PI_PRACT, 0, 0, 0);
	assert_true(nvt_pi_md_on_wire(&c));	/* metadata larger than PI is passed */
	nvt_pi_ctx_init(&c, &g16, 0, NVT_PI_PRACT, 0, 0, 0);
	assert_false(nvt_pi_md_on_wire(&c));
	nvt_pi_ctx_init(&c, &none0, 0, NVT_PI_PRACT, 0, 0, 0);
	assert_false(nvt_pi_md_on_wire(&c));
	nvt_pi_ctx_init(&c, &none8, 0, NVT_PI_PRACT, 0, 0, 0);
	assert_true(nvt_pi_md_on_wire(&c));
}

static void test_err_to_status(void **state)
{
	struct nvt_pi_err e = { .type = NVT_PI_ERR_GUARD };

	assert_int_equal(nvt_pi_err_to_status(&e), 0x4282);
	assert_int_equal(NVT_STATUS_SCT(nvt_pi_err_to_status(&e)), 2);
	assert_int_equal(NVT_STATUS_SC(nvt_pi_err_to_status(&e)), 0x82);
	e.type = NVT_PI_ERR_APPTAG;
	assert_int_equal(nvt_pi_err_to_status(&e), 0x4283);
	e.type = NVT_PI_ERR_REFTAG;
	assert_int_equal(nvt_pi_err_to_status(&e), 0x4284);
	assert_true(nvt_pi_err_to_status(&e) & NVT_SC_DNR);
	e.type = NVT_PI_ERR_NONE;
	assert_int_equal(nvt_pi_err_to_status(&e), NVT_ST_INTERNAL);
}

/* ---- known answers ---- */

static void test_kat_crc16(void **state)
{
	static uint8_t zero[512], inc[512];

	for (size_t i = 0; i < sizeof(inc); i++)
		inc[i] = (uint8_t)i;
	/* Init 0, no final xor: zeroes give 0. Values from a bitwise model (poly 0x8BB7). */
	assert_int_equal(crc16_t10dif(0, zero, sizeof(zero)), 0x0000);
	assert_int_equal(nvt_crc16_t10dif(0, zero, sizeof(zero)),
			 crc16_t10dif(0, zero, sizeof(zero)));
	assert_int_equal(crc16_t10dif(0, inc, sizeof(inc)), 0x4f10);
	assert_int_equal(nvt_crc16_t10dif(0, inc, sizeof(inc)), crc16_t10dif(0, inc, sizeof(inc)));
	assert_int_equal(nvt_crc16_t10dif(0, "123456789", 9), 0xd0db);
	/* Chaining in pieces, as pi.c does over split iovecs. */
	{
		uint16_t crc = nvt_crc16_t10dif(0, inc, 3);

		crc = nvt_crc16_t10dif(crc, inc + 3, 200);
		assert_int_equal(nvt_crc16_t10dif(crc, inc + 203, 309), 0x4f10);
	}
	/* The fused copy pi.c uses for verify-and-split. */
	{
		static uint8_t dst[512];

		assert_int_equal(crc16_t10dif_copy(0, dst, inc, sizeof(inc)), 0x4f10);
		assert_memory_equal(dst, inc, sizeof(inc));
	}
}

/* 512 bytes 0..255 twice, Type 1, LBA 0x12345678, app tag BEEFh: the tuple byte for byte. */
static void test_kat_tuple16(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_format f16 = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 16);
	static const uint8_t want[8] = { 0x4f, 0x10, 0xbe, 0xef, 0x12, 0x34, 0x56, 0x78 };
	/* PI last in 16 bytes of metadata: guard also covers 8 bytes of A5h before it. */
	static const uint8_t want16[16] = {
		0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
		0xe8, 0x76, 0xbe, 0xef, 0x12, 0x34, 0x56, 0x78,
	};
	uint8_t md[16];
	struct iovec d, m;
	struct nvt_pi_ctx c;

	for (size_t i = 0; i < 512; i++)
		g_data[i] = (uint8_t)i;
	d = one(g_data, 512);

	memset(md, 0, sizeof(md));
	m = one(md, 8);
	nvt_pi_ctx_init(&c, &f, 0x12345678, 0, 0x12345678, 0xbeef, 0);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, 1), 0);
	assert_memory_equal(md, want, 8);

	memset(md, 0xa5, sizeof(md));
	m = one(md, 16);
	nvt_pi_ctx_init(&c, &f16, 0x12345678, 0, 0x12345678, 0xbeef, 0);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, 1), 0);
	assert_memory_equal(md, want16, 16);
}

/* 4096 zero bytes: CRC-64/NVMe 6482D367EB22B64Eh (the value Linux's crc64-rocksoft tests use). */
static void test_kat_tuple64(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, false, 4096, 16);
	struct nvt_pi_format f32 = mkfmt(NVT_PI_TYPE2, NVT_PI_GUARD_CRC64, false, 4096, 32);
	static const uint8_t want[16] = {
		0x64, 0x82, 0xd3, 0x67, 0xeb, 0x22, 0xb6, 0x4e,
		0x00, 0x01, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78,
	};
	static const uint8_t want32[16] = {
		0x75, 0xf0, 0x1c, 0x15, 0x82, 0x6e, 0x3d, 0x7c,
		0xca, 0xfe, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45,
	};
	uint8_t md[32];
	struct iovec d, m;
	struct nvt_pi_ctx c;

	memset(g_data, 0, 4096);
	d = one(g_data, 4096);
	memset(md, 0, sizeof(md));
	m = one(md, 16);
	nvt_pi_ctx_init(&c, &f, 0x12345678, 0, 0x12345678, 0x0001, 0);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, 1), 0);
	assert_memory_equal(md, want, 16);

	/* 0..255 repeated, 16 bytes of A5h metadata before the tuple, 48-bit EILBRT. */
	for (size_t i = 0; i < 4096; i++)
		g_data[i] = (uint8_t)i;
	memset(md, 0xa5, sizeof(md));
	m = one(md, 32);
	nvt_pi_ctx_init(&c, &f32, 0, 0, 0xabcdef012345ull, 0xcafe, 0);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, 1), 0);
	assert_memory_equal(md + 16, want32, 16);
}

/* ---- every format x PRCHK: round trip, then each corruption through every verify path ---- */

static const struct {
	enum nvt_pi_guard guard;
	uint16_t md[3];
} md_sizes[] = {
	{ NVT_PI_GUARD_CRC16, { 8, 16, 64 } },
	{ NVT_PI_GUARD_CRC64, { 16, 32, 64 } },
};

/* Run all four verify paths over (data, md) and expect @want_ret and @want (when it fails). */
static void verify_all(const struct nvt_pi_ctx *c, const uint8_t *data, const uint8_t *md,
		       uint32_t nlb, int want_ret, const struct nvt_pi_err *want)
{
	const struct nvt_pi_format *f = c->fmt;
	size_t dlen = (size_t)nlb * f->block_size, mlen = (size_t)nlb * f->md_size;
	size_t elen = dlen + mlen;
	struct iovec d = one((void *)data, dlen), m = one((void *)md, mlen);
	struct iovec e = one(g_ext, elen), d2 = one(g_data2, dlen), m2 = one(g_md2, mlen);
	struct iovec e2 = one(g_ext2, elen);
	struct nvt_pi_err err;
	int ret;

	model_join(f, data, md, g_ext, nlb);

	memset(&err, 0, sizeof(err));
	ret = nvt_pi_verify(c, &d, 1, &m, 1, nlb, &err);
	assert_int_equal(ret, want_ret);
	if (ret)
		assert_err(&err, want->type, want->expected, want->actual, want->lba, want->offset);

	memset(&err, 0, sizeof(err));
	ret = nvt_pi_verify_ext(c, &e, 1, nlb, &err);
	assert_int_equal(ret, want_ret);
	if (ret)
		assert_err(&err, want->type, want->expected, want->actual, want->lba, want->offset);

	memset(&err, 0, sizeof(err));
	ret = nvt_pi_verify_split(c, &e, 1, &d2, 1, &m2, 1, nlb, &err);
	assert_int_equal(ret, want_ret);
	if (ret) {
		assert_err(&err, want->type, want->expected, want->actual, want->lba, want->offset);
	} else {
		assert_memory_equal(g_data2, data, dlen);
		assert_memory_equal(g_md2, md, mlen);
	}

	memset(&err, 0, sizeof(err));
	ret = nvt_pi_verify_join(c, &d, 1, &m, 1, &e2, 1, nlb, &err);
	assert_int_equal(ret, want_ret);
	if (ret)
		assert_err(&err, want->type, want->expected, want->actual, want->lba, want->offset);
	else
		assert_memory_equal(g_ext2, g_ext, elen);

	/* Separate metadata out of a memory backend: copied along, then dropped (strip). */
	for (int strip = 0; strip < 2; strip++) {
		memset(g_data2, 0, dlen);
		memset(g_md2, 0, mlen);
		memset(&err, 0, sizeof(err));
		ret = nvt_pi_verify_copy(c, &d, 1, &m, 1, &d2, 1, strip ? NULL : &m2,
					 strip ? 0 : 1, nlb, &err);
		assert_int_equal(ret, want_ret);
		if (ret) {
			assert_err(&err, want->type, want->expected, want->actual, want->lba,
				   want->offset);
			continue;
		}
		assert_memory_equal(g_data2, data, dlen);
		if (!strip)
			assert_memory_equal(g_md2, md, mlen);
		else
			for (size_t i = 0; i < mlen; i++)
				assert_int_equal(g_md2[i], 0);
	}
}

static void matrix_one(const struct nvt_pi_format *f, uint8_t prchk, bool pract)
{
	uint32_t nlb = f->block_size == 512 ? 5 : 3;
	uint32_t k = nlb - 2;		/* the corrupted block: not the first */
	uint64_t slba = 0x1000 + (rng() & 0xfff);
	uint64_t eilbrt = f->type == NVT_PI_TYPE2 ? 0xa5000000ull + (rng() & 0xffff) : slba;
	uint16_t app = 0x1234;
	size_t dlen = (size_t)nlb * f->block_size, mlen = (size_t)nlb * f->md_size;
	static uint8_t data[MAX_NLB * MAX_BS], md[MAX_NLB * MAX_MD];
	struct iovec d = one(g_data, dlen), m = one(g_md, mlen);
	struct nvt_pi_err want = { 0 };
	struct nvt_pi_ctx c;
	uint64_t ref_mask = model_ref_mask(f);

	fill_random(g_data, dlen);
	fill_random(g_md, mlen);	/* pre/post metadata bytes are not zero */
	memcpy(g_exp_md, g_md, mlen);
	model_generate(f, g_data, g_exp_md, nlb, eilbrt, app);

	nvt_pi_ctx_init(&c, f, slba, (uint8_t)(prchk | (pract ? NVT_PI_PRACT : 0)), eilbrt, app,
			0xffff);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, nlb), 0);
	assert_memory_equal(g_md, g_exp_md, mlen);

	/* Generated while copied: the same tuples, the source's own tuple bytes ignored. */
	{
		struct iovec ms = one(md, mlen), d2 = one(g_data2, dlen), m2 = one(g_md2, mlen);

		memcpy(md, g_md, mlen);
		for (uint32_t i = 0; i < nlb; i++)
			for (size_t j = 0; j < model_pi_len(f); j++)
				md[(size_t)i * f->md_size + model_pi_off(f) + j] ^= 0x5a;
		memset(g_data2, 0, dlen);
		memset(g_md2, 0, mlen);
		assert_int_equal(nvt_pi_generate_copy(&c, &d, 1, &ms, 1, &d2, 1, &m2, 1, nlb), 0);
		assert_memory_equal(g_data2, g_data, dlen);
		assert_memory_equal(g_md2, g_exp_md, mlen);
		/* A destination too short: -EINVAL, nothing copied. */
		m2.iov_len--;
		memset(g_data2, 0, dlen);
		assert_int_equal(nvt_pi_generate_copy(&c, &d, 1, &ms, 1, &d2, 1, &m2, 1, nlb),
				 -EINVAL);
		assert_int_equal(g_data2[0], 0);
	}

	/* Intact: every path passes and copies faithfully. */
	verify_all(&c, g_data, g_md, nlb, 0, NULL);

	want.lba = slba + k;
	want.offset = k;

	/* One data bit of block k. */
	memcpy(data, g_data, dlen);
	memcpy(md, g_md, mlen);
	data[(size_t)k * f->block_size + 100] ^= 0x10;
	want.type = NVT_PI_ERR_GUARD;
	want.expected = model_guard(f, data + (size_t)k * f->block_size,
				    md + (size_t)k * f->md_size);
	want.actual = model_stored_guard(f, md + (size_t)k * f->md_size);
	verify_all(&c, data, md, nlb, (prchk & NVT_PI_CHECK_GUARD) ? -EILSEQ : 0, &want);

	/* The stored guard's most significant byte (all 64 bits of a CRC-64 guard count). */
	memcpy(data, g_data, dlen);
	memcpy(md, g_md, mlen);
	want.expected = model_stored_guard(f, md + (size_t)k * f->md_size);
	md[(size_t)k * f->md_size + model_pi_off(f)] ^= 0x80;
	want.actual = model_stored_guard(f, md + (size_t)k * f->md_size);
	verify_all(&c, data, md, nlb, (prchk & NVT_PI_CHECK_GUARD) ? -EILSEQ : 0, &want);

	/* Metadata around the tuple: covered before it (PI last), not after it (PI first). */
	if (f->md_size > model_pi_len(f)) {
		memcpy(data, g_data, dlen);
		memcpy(md, g_md, mlen);
		if (f->pi_first) {
			md[(size_t)k * f->md_size + f->md_size - 1] ^= 1;
			verify_all(&c, data, md, nlb, 0, NULL);
		} else {
			md[(size_t)k * f->md_size] ^= 1;
			want.expected = model_guard(f, data + (size_t)k * f->block_size,
						    md + (size_t)k * f->md_size);
			want.actual = model_stored_guard(f, md + (size_t)k * f->md_size);
			verify_all(&c, data, md, nlb, (prchk & NVT_PI_CHECK_GUARD) ? -EILSEQ : 0,
				   &want);
		}
	}

	/* App tag. */
	memcpy(data, g_data, dlen);
	memcpy(md, g_md, mlen);
	model_set_app(f, md + (size_t)k * f->md_size, app ^ 0x0100);
	want.type = NVT_PI_ERR_APPTAG;
	want.expected = app;
	want.actual = app ^ 0x0100;
	verify_all(&c, data, md, nlb, (prchk & NVT_PI_CHECK_APPTAG) ? -EILSEQ : 0, &want);

	/* Ref tag: never checked for Type 3. */
	memcpy(data, g_data, dlen);
	memcpy(md, g_md, mlen);
	model_set_ref(f, md + (size_t)k * f->md_size, (eilbrt + k + 0x10) & ref_mask);
	want.type = NVT_PI_ERR_REFTAG;
	want.expected = (eilbrt + k) & ref_mask;
	want.actual = (eilbrt + k + 0x10) & ref_mask;
	verify_all(&c, data, md, nlb,
		   (prchk & NVT_PI_CHECK_REFTAG) && f->type != NVT_PI_TYPE3 ? -EILSEQ : 0, &want);
}

/* Type (3) x guard (2) x metadata size (3) x PI first/last (2) x block size (2) x PRCHK (8). */
static void test_matrix(void **state)
{
	static const uint32_t block_sizes[] = { 512, 4096 };

	for (unsigned int n = 0; n < 3 * 2 * 3 * 2 * 2 * 8; n++) {
		unsigned int v = n;
		uint8_t prchk = v % 8;
		uint32_t bs = block_sizes[(v /= 8) % 2];
		bool first = (v /= 2) % 2;
		unsigned int size = (v /= 2) % 3;
		unsigned int g = (v /= 3) % 2;
		enum nvt_pi_type type = (enum nvt_pi_type)(NVT_PI_TYPE1 + (v / 2) % 3);
		struct nvt_pi_format f = mkfmt(type, md_sizes[g].guard, first, bs,
					       md_sizes[g].md[size]);

		assert_int_equal(nvt_pi_format_validate(&f), 0);
		/* PRACT changes nothing for generate/verify; alternate it anyway. */
		matrix_one(&f, prchk, n & 1);
	}
}

/* ---- error details ---- */

/* Set up nlb blocks of Type @type PI at slba 100 in g_data/g_md; returns the context. */
static void setup_blocks(struct nvt_pi_ctx *c, const struct nvt_pi_format *f, uint32_t nlb,
			 uint8_t prinfo, uint64_t eilbrt, uint16_t app, uint16_t mask)
{
	struct iovec d = one(g_data, (size_t)nlb * f->block_size);
	struct iovec m = one(g_md, (size_t)nlb * f->md_size);

	fill_random(g_data, d.iov_len);
	fill_random(g_md, m.iov_len);
	nvt_pi_ctx_init(c, f, 100, prinfo, eilbrt, app, mask);
	assert_int_equal(nvt_pi_generate(c, &d, 1, &m, 1, nlb), 0);
}

static int verify_sep(const struct nvt_pi_ctx *c, uint32_t nlb, struct nvt_pi_err *err)
{
	struct iovec d = one(g_data, (size_t)nlb * c->fmt->block_size);
	struct iovec m = one(g_md, (size_t)nlb * c->fmt->md_size);

	memset(err, 0, sizeof(*err));
	return nvt_pi_verify(c, &d, 1, &m, 1, nlb, err);
}

static void test_error_order(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;
	uint8_t *m1 = g_md + 8, *m3 = g_md + 24;
	uint64_t guard;

	/* Guard, app and ref tag all wrong in block 1: the guard is reported. */
	setup_blocks(&c, &f, 4, 7, 100, 0x1111, 0xffff);
	guard = model_stored_guard(&f, m1);
	model_set_guard(&f, m1, guard ^ 0xffff);
	model_set_app(&f, m1, 0x2222);
	model_set_ref(&f, m1, 5);
	assert_int_equal(verify_sep(&c, 4, &err), -EILSEQ);
	assert_err(&err, NVT_PI_ERR_GUARD, guard, guard ^ 0xffff, 101, 1);

	/* App and ref tag wrong: the app tag. */
	model_set_guard(&f, m1, guard);
	assert_int_equal(verify_sep(&c, 4, &err), -EILSEQ);
	assert_err(&err, NVT_PI_ERR_APPTAG, 0x1111, 0x2222, 101, 1);

	/* Only the ref tag. */
	model_set_app(&f, m1, 0x1111);
	assert_int_equal(verify_sep(&c, 4, &err), -EILSEQ);
	assert_err(&err, NVT_PI_ERR_REFTAG, 101, 5, 101, 1);

	/* A later block's guard error does not hide an earlier ref tag error. */
	model_set_guard(&f, m3, model_stored_guard(&f, m3) ^ 1);
	assert_int_equal(verify_sep(&c, 4, &err), -EILSEQ);
	assert_int_equal(err.type, NVT_PI_ERR_REFTAG);
	assert_int_equal(err.lba, 101);

	/* Fix block 1: block 3's guard. */
	model_set_ref(&f, m1, 101);
	assert_int_equal(verify_sep(&c, 4, &err), -EILSEQ);
	assert_int_equal(err.type, NVT_PI_ERR_GUARD);
	assert_int_equal(err.lba, 103);
	assert_int_equal(err.offset, 3);

	/* err may be NULL. */
	{
		struct iovec d = one(g_data, 4 * 512), m = one(g_md, 4 * 8);

		assert_int_equal(nvt_pi_verify(&c, &d, 1, &m, 1, 4, NULL), -EILSEQ);
	}
}

static void test_escape_type12(void **state)
{
	static const enum nvt_pi_guard guards[] = { NVT_PI_GUARD_CRC16, NVT_PI_GUARD_CRC64 };

	for (unsigned int g = 0; g < 2; g++)
		for (int type = NVT_PI_TYPE1; type <= NVT_PI_TYPE2; type++) {
			struct nvt_pi_format f = mkfmt((enum nvt_pi_type)type, guards[g], false,
						       512, 16);
			struct nvt_pi_ctx c;
			struct nvt_pi_err err;
			uint8_t *m2 = g_md + 2 * 16;

			setup_blocks(&c, &f, 4, 7, 100, 0x0042, 0xffff);
			/* App tag FFFFh: garbage guard and ref tag pass, and so does bad data. */
			model_set_app(&f, m2, 0xffff);
			model_set_guard(&f, m2, 0x5a5a);
			model_set_ref(&f, m2, 0x77);
			g_data[2 * 512] ^= 0xff;
			assert_int_equal(verify_sep(&c, 4, &err), 0);

			/* FFFEh is no escape: the guard fails first. */
			model_set_app(&f, m2, 0xfffe);
			assert_int_equal(verify_sep(&c, 4, &err), -EILSEQ);
			assert_int_equal(err.type, NVT_PI_ERR_GUARD);
			assert_int_equal(err.lba, 102);
		}
}

static void test_escape_type3(void **state)
{
	static const enum nvt_pi_guard guards[] = { NVT_PI_GUARD_CRC16, NVT_PI_GUARD_CRC64 };

	for (unsigned int g = 0; g < 2; g++) {
		struct nvt_pi_format f = mkfmt(NVT_PI_TYPE3, guards[g], true, 4096, 16);
		uint64_t ones = model_ref_mask(&f);
		struct nvt_pi_ctx c;
		struct nvt_pi_err err;
		uint8_t *m1 = g_md + 16;

		setup_blocks(&c, &f, 3, 7, 0x99, 0x0042, 0xffff);
		g_data[4096 + 7] ^= 1;		/* block 1's guard is now wrong */

		/* App tag FFFFh alone does not escape Type 3. */
		model_set_app(&f, m1, 0xffff);
		assert_int_equal(verify_sep(&c, 3, &err), -EILSEQ);
		assert_int_equal(err.type, NVT_PI_ERR_GUARD);
		assert_int_equal(err.lba, 101);

		/* Ref tag all ones alone does not either. */
		model_set_app(&f, m1, 0x0042);
		model_set_ref(&f, m1, ones);
		assert_int_equal(verify_sep(&c, 3, &err), -EILSEQ);
		assert_int_equal(err.type, NVT_PI_ERR_GUARD);

		/* Both: the block is not checked. */
		model_set_app(&f, m1, 0xffff);
		assert_int_equal(verify_sep(&c, 3, &err), 0);

		/* With the 64b guard, 32 one bits in a 48-bit ref tag are not all ones. */
		if (guards[g] == NVT_PI_GUARD_CRC64) {
			model_set_ref(&f, m1, 0xffffffffull);
			assert_int_equal(verify_sep(&c, 3, &err), -EILSEQ);
		}
	}
}

static void test_type2_incrementing(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE2, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_format f64 = mkfmt(NVT_PI_TYPE2, NVT_PI_GUARD_CRC64, true, 512, 16);
	struct nvt_pi_ctx c, c2;
	struct nvt_pi_err err;

	/* EILBRT has nothing to do with the LBA for Type 2. */
	setup_blocks(&c, &f, 6, 7, 0xabc00000, 7, 0xffff);
	for (uint32_t i = 0; i < 6; i++) {
		assert_int_equal(model_ref(&f, g_md + i * 8), 0xabc00000 + i);
		assert_int_equal(model_app(&f, g_md + i * 8), 7);
	}
	assert_int_equal(verify_sep(&c, 6, &err), 0);

	/* A read with another EILBRT fails at the first block. */
	nvt_pi_ctx_init(&c2, &f, 100, 7, 0xabc00001, 7, 0xffff);
	assert_int_equal(verify_sep(&c2, 6, &err), -EILSEQ);
	assert_err(&err, NVT_PI_ERR_REFTAG, 0xabc00001, 0xabc00000, 100, 0);

	/* Reading from the middle with the matching EILBRT works. */
	{
		struct iovec d = one(g_data + 2 * 512, 4 * 512), m = one(g_md + 2 * 8, 4 * 8);

		nvt_pi_ctx_init(&c2, &f, 102, 7, 0xabc00002, 7, 0xffff);
		assert_int_equal(nvt_pi_verify(&c2, &d, 1, &m, 1, 4, &err), 0);
	}

	setup_blocks(&c, &f64, 4, 7, 0x0000fedcba987654ull, 7, 0xffff);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(model_ref(&f64, g_md + i * 16), 0xfedcba987654ull + i);
	assert_int_equal(verify_sep(&c, 4, &err), 0);
}

static void test_type3_generate(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE3, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	/* The command's ref tag is stored unchanged on every block. */
	setup_blocks(&c, &f, 4, 0, 0x5555, 9, 0xffff);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(model_ref(&f, g_md + i * 8), 0x5555);
	/* And any ref tag passes, whatever PRCHK asks. */
	nvt_pi_ctx_init(&c, &f, 100, 7, 0x1234, 9, 0xffff);
	model_set_ref(&f, g_md + 8, 0xdeadbeef);
	assert_int_equal(verify_sep(&c, 4, &err), 0);
}

static void test_reftag_wrap(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_format f64 = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, false, 512, 16);
	static const uint64_t want16[4] = { 0xfffffffe, 0xffffffff, 0, 1 };
	static const uint64_t want64[4] = { 0xfffffffffffeull, 0xffffffffffffull, 0, 1 };
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	setup_blocks(&c, &f, 4, 7, 0x3fffffffeull, 0, 0);	/* upper bits dropped */
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(model_ref(&f, g_md + i * 8), want16[i]);
	assert_int_equal(verify_sep(&c, 4, &err), 0);

	setup_blocks(&c, &f64, 4, 7, 0xfffffffffffeull, 0, 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(model_ref(&f64, g_md + i * 16), want64[i]);
	assert_int_equal(verify_sep(&c, 4, &err), 0);
}

/* Right data and PI, but written for LBA 100 and read back as LBA 200. */
static void test_misdirected_write(void **state)
{
	static const enum nvt_pi_guard guards[] = { NVT_PI_GUARD_CRC16, NVT_PI_GUARD_CRC64 };

	for (unsigned int g = 0; g < 2; g++)
		for (int type = NVT_PI_TYPE1; type <= NVT_PI_TYPE3; type++) {
			struct nvt_pi_format f = mkfmt((enum nvt_pi_type)type, guards[g], false,
						       4096, nvt_pi_size(guards[g]));
			struct iovec d = one(g_data, 2 * 4096), m = one(g_md, 2 * f.md_size);
			struct nvt_pi_ctx wr, rd;
			struct nvt_pi_err err;
			int ret;

			fill_random(g_data, 2 * 4096);
			nvt_pi_ctx_init(&wr, &f, 100, NVT_PI_PRACT, 100, 0, 0);
			assert_int_equal(nvt_pi_generate(&wr, &d, 1, &m, 1, 2), 0);

			nvt_pi_ctx_init(&rd, &f, 200, NVT_PI_PRACT | 7, 200, 0, 0xffff);
			memset(&err, 0, sizeof(err));
			ret = nvt_pi_verify(&rd, &d, 1, &m, 1, 2, &err);
			if (type == NVT_PI_TYPE3) {
				assert_int_equal(ret, 0);
			} else {
				assert_int_equal(ret, -EILSEQ);
				assert_err(&err, NVT_PI_ERR_REFTAG, 200, 100, 200, 0);
				assert_int_equal(nvt_pi_err_to_status(&err), 0x4284);
			}
		}
}

static void test_apptag_mask(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, true, 512, 16);
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	setup_blocks(&c, &f, 2, 7, 100, 0x12ab, 0xffff);

	/* Only the masked bits are compared. */
	nvt_pi_ctx_init(&c, &f, 100, NVT_PI_CHECK_APPTAG, 100, 0x12cd, 0xff00);
	assert_int_equal(verify_sep(&c, 2, &err), 0);
	nvt_pi_ctx_init(&c, &f, 100, NVT_PI_CHECK_APPTAG, 100, 0x13ab, 0xff00);
	assert_int_equal(verify_sep(&c, 2, &err), -EILSEQ);
	assert_err(&err, NVT_PI_ERR_APPTAG, 0x1300, 0x1200, 100, 0);
	/* Mask 0: nothing compared. */
	nvt_pi_ctx_init(&c, &f, 100, NVT_PI_CHECK_APPTAG, 100, 0x0000, 0x0000);
	assert_int_equal(verify_sep(&c, 2, &err), 0);
	/* A single bit. */
	nvt_pi_ctx_init(&c, &f, 100, NVT_PI_CHECK_APPTAG, 100, 0x12aa, 0x0001);
	assert_int_equal(verify_sep(&c, 2, &err), -EILSEQ);
	assert_err(&err, NVT_PI_ERR_APPTAG, 0x0000, 0x0001, 100, 0);
}

/* Generate writes every field whatever PRCHK says; PRCHK 0 then checks nothing. */
static void test_prchk_zero(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, false, 512, 16);
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	setup_blocks(&c, &f, 3, 0, 100, 0xabcd, 0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(model_ref(&f, g_md + i * 16), 100 + i);
		assert_int_equal(model_app(&f, g_md + i * 16), 0xabcd);
		assert_int_equal(model_stored_guard(&f, g_md + i * 16),
				 model_guard(&f, g_data + i * 512, g_md + i * 16));
	}
	fill_random(g_md, 3 * 16);
	assert_int_equal(verify_sep(&c, 3, &err), 0);
}

/* ---- split iovecs: any cut gives the contiguous result ---- */

/* Generate and verify over @sd/@sm cut from g_data/g_md and compare with the contiguous run. */
static void check_scattered(const struct nvt_pi_ctx *c, uint32_t nlb, const struct sg *sd,
			    const struct sg *sm)
{
	const struct nvt_pi_format *f = c->fmt;
	size_t dlen = (size_t)nlb * f->block_size, mlen = (size_t)nlb * f->md_size;
	struct iovec d = one(g_data, dlen), m = one(g_md, mlen);
	struct nvt_pi_err e1, e2;
	int r1, r2;

	/* Generate: same bytes out. */
	assert_int_equal(nvt_pi_generate(c, &d, 1, &m, 1, nlb), 0);
	assert_int_equal(nvt_pi_generate(c, sd->iov, sd->cnt, sm->iov, sm->cnt, nlb), 0);
	sg_gather(sm, g_md2);
	assert_memory_equal(g_md2, g_md, mlen);

	/* Verify: same verdict intact, then with block 1's data, app tag or ref tag broken. */
	for (int round = 0; round < 4; round++) {
		uint8_t *t1 = g_md + f->md_size + model_pi_off(f) + model_guard_len(f);
		int want = round ? -EILSEQ : 0;

		if (round == 1) {
			g_data[f->block_size + f->block_size / 2] ^= 4;
		} else if (round == 2) {
			g_data[f->block_size + f->block_size / 2] ^= 4;
			t1[0] ^= 0x40;		/* app tag high byte: never FFFFh here */
		} else if (round == 3) {
			t1[0] ^= 0x40;
			t1[2 + 1] ^= 0x40;	/* ref tag */
			if (f->type == NVT_PI_TYPE3)
				want = 0;
		}
		memset(&e1, 0, sizeof(e1));
		memset(&e2, 0, sizeof(e2));
		r1 = nvt_pi_verify(c, &d, 1, &m, 1, nlb, &e1);
		/* Rebuild the scattered copies from the (maybe corrupted) contiguous ones. */
		for (unsigned int k = 0, off = 0; k < sd->cnt; off += sd->iov[k].iov_len, k++)
			if (sd->iov[k].iov_len)
				memcpy(sd->iov[k].iov_base, g_data + off, sd->iov[k].iov_len);
		for (unsigned int k = 0, off = 0; k < sm->cnt; off += sm->iov[k].iov_len, k++)
			if (sm->iov[k].iov_len)
				memcpy(sm->iov[k].iov_base, g_md + off, sm->iov[k].iov_len);
		r2 = nvt_pi_verify(c, sd->iov, sd->cnt, sm->iov, sm->cnt, nlb, &e2);
		assert_int_equal(r1, want);
		assert_int_equal(r2, r1);
		assert_memory_equal(&e1, &e2, sizeof(e1));
	}
}

static void test_split_iovecs_awkward(void **state)
{
	/* Block 1 (4096 B) across three elements, its 8-byte tuple split 3+5; empty elements. */
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 4096, 8);
	static const size_t dcuts[] = { 4096 + 1000, 4096 + 1000, 4096 + 3001, 3 * 4096 - 1 };
	static const size_t mcuts[] = { 0, 8 + 3, 16, 16, 17, 18, 19, 20, 21, 22, 23 };
	/* 64b guard, PI last in 32 bytes: cut inside the guard, the app tag and the ref tag. */
	struct nvt_pi_format f64 = mkfmt(NVT_PI_TYPE2, NVT_PI_GUARD_CRC64, false, 512, 32);
	static const size_t dcuts64[] = { 1, 2, 511, 513, 1024, 1535 };
	static const size_t mcuts64[] = { 5, 16 + 3, 32 + 16 + 5, 32 + 16 + 9, 64 + 16 + 12, 95 };
	struct nvt_pi_ctx c;
	struct sg sd, sm;

	fill_random(g_data, 3 * 4096);
	fill_random(g_md, 3 * 8);
	nvt_pi_ctx_init(&c, &f, 50, 7, 50, 0x77, 0xffff);
	sg_build(&sd, g_data, 3 * 4096, dcuts, 4);
	sg_build(&sm, g_md, 3 * 8, mcuts, 11);
	check_scattered(&c, 3, &sd, &sm);
	sg_free(&sd);
	sg_free(&sm);

	fill_random(g_data, 3 * 512);
	fill_random(g_md, 3 * 32);
	nvt_pi_ctx_init(&c, &f64, 50, 7, 0x123456789abcull, 0x77, 0xffff);
	sg_build(&sd, g_data, 3 * 512, dcuts64, 6);
	sg_build(&sm, g_md, 3 * 32, mcuts64, 6);
	check_scattered(&c, 3, &sd, &sm);
	sg_free(&sd);
	sg_free(&sm);
}

static void test_split_iovecs_random(void **state)
{
	static const uint32_t block_sizes[] = { 512, 4096 };

	for (unsigned int iter = 0; iter < 200; iter++) {
		unsigned int g = iter & 1;
		struct nvt_pi_format f = mkfmt((enum nvt_pi_type)(1 + iter % 3), md_sizes[g].guard,
					       (iter >> 1) & 1, block_sizes[(iter >> 2) & 1],
					       md_sizes[g].md[(iter >> 3) % 3]);
		/* At least 2: check_scattered() breaks block 1. */
		uint32_t nlb = 2 + (uint32_t)(rng() % (MAX_NLB - 1));
		size_t dlen = (size_t)nlb * f.block_size, mlen = (size_t)nlb * f.md_size;
		struct nvt_pi_ctx c;
		struct sg sd, sm;

		fill_random(g_data, dlen);
		fill_random(g_md, mlen);
		nvt_pi_ctx_init(&c, &f, rng() & 0xffffff, 7, rng(), (uint16_t)(rng() & 0x7fff),
				0xffff);
		sg_random(&sd, g_data, dlen, 1 + (unsigned int)(rng() % 40));
		sg_random(&sm, g_md, mlen, 1 + (unsigned int)(rng() % 40));
		check_scattered(&c, nlb, &sd, &sm);
		sg_free(&sd);
		sg_free(&sm);
	}
}

/* One byte per element: the worst case for the cursor code. */
static void test_split_iovecs_bytewise(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, true, 512, 32);
	size_t cuts[MAX_IOV - 1];
	struct nvt_pi_ctx c;
	struct sg sd, sm;

	/* Metadata: 64 bytes in single-byte elements (plus a tail). */
	for (unsigned int k = 0; k < 63; k++)
		cuts[k] = k + 1;
	fill_random(g_data, 2 * 512);
	fill_random(g_md, 2 * 32);
	nvt_pi_ctx_init(&c, &f, 9, 7, 9, 1, 0xffff);
	sg_random(&sd, g_data, 2 * 512, 100);
	sg_build(&sm, g_md, 2 * 32, cuts, 63);
	check_scattered(&c, 2, &sd, &sm);
	sg_free(&sd);
	sg_free(&sm);
}

/* ---- extended LBA: verify, split, join, generate, in place ---- */

static void sg_zero(const struct sg *sg)
{
	for (unsigned int k = 0; k < sg->cnt; k++)
		if (sg->iov[k].iov_len)
			memset(sg->iov[k].iov_base, 0, sg->iov[k].iov_len);
}

static unsigned int some_pieces(void)
{
	return 1 + (unsigned int)(rng() % 30);
}

/* One random format and length through every extended-LBA path, scattered both sides. */
static void ext_one(const struct nvt_pi_format *f)
{
	uint32_t nlb = 1 + (uint32_t)(rng() % MAX_NLB);
	uint32_t last = nlb - 1;
	size_t dlen = (size_t)nlb * f->block_size, mlen = (size_t)nlb * f->md_size;
	size_t elen = dlen + mlen;
	struct iovec d = one(g_data, dlen), m = one(g_md, mlen);
	struct iovec d2 = one(g_data2, dlen), m2 = one(g_md2, mlen), e2 = one(g_ext2, elen);
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;
	struct sg se, sd, sm;
	size_t at;

	fill_random(g_data, dlen);
	fill_random(g_md, mlen);
	nvt_pi_ctx_init(&c, f, 1000, 7, 1000, 3, 0xffff);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, nlb), 0);
	model_join(f, g_data, g_md, g_ext, nlb);

	/* join into a scattered ext gives the model's interleaving, and it verifies. */
	sg_random(&se, g_ext, elen, some_pieces());
	sg_zero(&se);
	assert_int_equal(nvt_pi_join(f, &d, 1, &m, 1, se.iov, se.cnt, nlb), 0);
	sg_gather(&se, g_ext2);
	assert_memory_equal(g_ext2, g_ext, elen);
	assert_int_equal(nvt_pi_verify_ext(&c, se.iov, se.cnt, nlb, &err), 0);

	/* split the scattered ext into scattered data + metadata: the originals. */
	sg_random(&sd, g_data, dlen, some_pieces());
	sg_random(&sm, g_md, mlen, some_pieces());
	sg_zero(&sd);
	sg_zero(&sm);
	assert_int_equal(nvt_pi_split(f, se.iov, se.cnt, sd.iov, sd.cnt, sm.iov, sm.cnt, nlb), 0);
	sg_gather(&sd, g_data2);
	sg_gather(&sm, g_md2);
	assert_memory_equal(g_data2, g_data, dlen);
	assert_memory_equal(g_md2, g_md, mlen);

	/* Scattered sources and destinations through the copying walks of memory backends. */
	{
		struct sg od, om;

		sg_random(&od, g_data2, dlen, some_pieces());
		sg_random(&om, g_md2, mlen, some_pieces());
		sg_zero(&od);
		sg_zero(&om);
		assert_int_equal(nvt_pi_verify_copy(&c, sd.iov, sd.cnt, sm.iov, sm.cnt, od.iov, od.cnt,
						    om.iov, om.cnt, nlb, &err), 0);
		sg_gather(&od, g_ext2);
		assert_memory_equal(g_ext2, g_data, dlen);
		sg_gather(&om, g_ext2);
		assert_memory_equal(g_ext2, g_md, mlen);
		sg_zero(&od);
		sg_zero(&om);
		assert_int_equal(nvt_pi_generate_copy(&c, sd.iov, sd.cnt, sm.iov, sm.cnt, od.iov,
						      od.cnt, om.iov, om.cnt, nlb), 0);
		sg_gather(&od, g_ext2);
		assert_memory_equal(g_ext2, g_data, dlen);
		sg_gather(&om, g_ext2);
		assert_memory_equal(g_ext2, g_md, mlen);
		sg_free(&od);
		sg_free(&om);
	}

	/* The same with verification fused in, both ways. */
	memset(g_data2, 0, dlen);
	memset(g_md2, 0, mlen);
	assert_int_equal(nvt_pi_verify_split(&c, se.iov, se.cnt, &d2, 1, &m2, 1, nlb, &err), 0);
	assert_memory_equal(g_data2, g_data, dlen);
	assert_memory_equal(g_md2, g_md, mlen);
	memset(g_ext2, 0, elen);
	assert_int_equal(nvt_pi_verify_join(&c, sd.iov, sd.cnt, sm.iov, sm.cnt, &e2, 1, nlb, &err),
			 0);
	assert_memory_equal(g_ext2, g_ext, elen);
	sg_free(&se);
	sg_free(&sd);
	sg_free(&sm);

	if (f->type != NVT_PI_TYPE1 && f->type != NVT_PI_TYPE2)
		return;

	/* The ref tag's last byte in the last block, through the scattered ext paths. */
	at = (size_t)last * (f->block_size + f->md_size) + f->block_size + model_pi_off(f) +
	     model_guard_len(f) + 2 + model_ref_len(f) - 1;
	g_ext[at] ^= 0x80;
	sg_random(&se, g_ext, elen, some_pieces());
	memset(&err, 0, sizeof(err));
	assert_int_equal(nvt_pi_verify_ext(&c, se.iov, se.cnt, nlb, &err), -EILSEQ);
	assert_err(&err, NVT_PI_ERR_REFTAG, 1000 + last, (1000 + last) ^ 0x80, 1000 + last, last);
	memset(&err, 0, sizeof(err));
	assert_int_equal(nvt_pi_verify_split(&c, se.iov, se.cnt, &d2, 1, &m2, 1, nlb, &err),
			 -EILSEQ);
	assert_err(&err, NVT_PI_ERR_REFTAG, 1000 + last, (1000 + last) ^ 0x80, 1000 + last, last);
	sg_free(&se);
}

static void test_ext_split_join(void **state)
{
	static const uint32_t block_sizes[] = { 512, 4096 };

	for (unsigned int iter = 0; iter < 64; iter++) {
		unsigned int g = iter & 1;
		/* Type NONE too: split/join move opaque metadata (8 bytes without PI). */
		enum nvt_pi_type type = (enum nvt_pi_type)(iter % 4);
		uint16_t ms = type == NVT_PI_NONE ? 8 : md_sizes[g].md[iter % 3];
		struct nvt_pi_format f = mkfmt(type, md_sizes[g].guard, (iter >> 2) & 1,
					       block_sizes[(iter >> 3) & 1], ms);

		ext_one(&f);
	}
}

/* generate_ext on an interleaved buffer == generate on separate buffers, then join. */
static void test_generate_ext(void **state)
{
	static const enum nvt_pi_guard guards[] = { NVT_PI_GUARD_CRC16, NVT_PI_GUARD_CRC64 };

	for (unsigned int n = 0; n < 4; n++) {
		struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, guards[n & 1], n & 2, 512, 64);
		uint32_t nlb = 4;
		size_t dlen = nlb * 512, mlen = nlb * 64;
		struct iovec d = one(g_data, dlen), m = one(g_md, mlen);
		struct nvt_pi_ctx c;
		struct sg se;

		fill_random(g_data, dlen);
		fill_random(g_md, mlen);
		model_join(&f, g_data, g_md, g_ext2, nlb);	/* before PI */
		nvt_pi_ctx_init(&c, &f, 7, NVT_PI_PRACT, 7, 0x5150, 0);
		assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, nlb), 0);
		model_join(&f, g_data, g_md, g_ext, nlb);

		sg_random(&se, g_ext2, dlen + mlen, 25);
		assert_int_equal(nvt_pi_generate_ext(&c, se.iov, se.cnt, nlb), 0);
		sg_gather(&se, g_ext2);
		assert_memory_equal(g_ext2, g_ext, dlen + mlen);
		sg_free(&se);
	}
}

/* Split @cnt elements of @ext into themselves (data) and g_md2 (metadata). */
static int split_self(const struct nvt_pi_ctx *c, bool fused, const struct iovec *ext,
		      unsigned int cnt, uint32_t nlb)
{
	struct iovec m2 = one(g_md2, (size_t)nlb * c->fmt->md_size);
	struct nvt_pi_err err;

	memset(g_md2, 0, m2.iov_len);
	if (fused)
		return nvt_pi_verify_split(c, ext, cnt, ext, cnt, &m2, 1, nlb, &err);
	return nvt_pi_split(c->fmt, ext, cnt, ext, cnt, &m2, 1, nlb);
}

/* PRACT=0 write into the same buffer: data compacted toward the front, metadata pulled out. */
static void test_split_in_place(void **state)
{
	static const enum nvt_pi_guard guards[] = { NVT_PI_GUARD_CRC16, NVT_PI_GUARD_CRC64 };

	for (unsigned int n = 0; n < 8; n++) {
		enum nvt_pi_guard guard = guards[n & 1];
		uint32_t bs = n & 2 ? 4096 : 512;
		bool fused = n & 4;
		struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, guard, false, bs, nvt_pi_size(guard));
		uint32_t nlb = MAX_NLB;
		size_t dlen = (size_t)nlb * bs, mlen = (size_t)nlb * f.md_size;
		struct iovec d = one(g_data, dlen), m = one(g_md, mlen);
		struct iovec e = one(g_ext, dlen + mlen);
		struct nvt_pi_ctx c;
		struct sg se;

		fill_random(g_data, dlen);
		nvt_pi_ctx_init(&c, &f, 3, 7, 3, 0, 0xffff);
		assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, nlb), 0);

		/* One contiguous buffer. */
		model_join(&f, g_data, g_md, g_ext, nlb);
		assert_int_equal(split_self(&c, fused, &e, 1, nlb), 0);
		assert_memory_equal(g_ext, g_data, dlen);
		assert_memory_equal(g_md2, g_md, mlen);

		/* A scattered one: the same elements are source and data destination. */
		model_join(&f, g_data, g_md, g_ext, nlb);
		sg_random(&se, g_ext, dlen + mlen, 20);
		assert_int_equal(split_self(&c, fused, se.iov, se.cnt, nlb), 0);
		sg_gather(&se, g_ext2);
		assert_memory_equal(g_ext2, g_data, dlen);
		assert_memory_equal(g_md2, g_md, mlen);
		sg_free(&se);
	}
}

/* ---- edges ---- */

static void test_short_buffers(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct iovec d = one(g_data, 4 * 512), m = one(g_md, 4 * 8);
	struct iovec dshort = one(g_data, 4 * 512 - 1), mshort = one(g_md, 4 * 8 - 1);
	struct iovec eshort = one(g_ext, 4 * 520 - 1), e = one(g_ext, 4 * 520);
	struct iovec two[2] = { one(g_data, 2 * 512), one(g_data + 2 * 512, 2 * 512) };
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	nvt_pi_ctx_init(&c, &f, 0, 7, 0, 0, 0xffff);
	memset(g_md, 0xee, 4 * 8);
	assert_int_equal(nvt_pi_generate(&c, &dshort, 1, &m, 1, 4), -EINVAL);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &mshort, 1, 4), -EINVAL);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, NULL, 0, 4), -EINVAL);
	assert_int_equal(nvt_pi_generate(&c, NULL, 3, &m, 1, 4), -EINVAL);	/* NULL holds nothing */
	assert_int_equal(nvt_pi_generate(&c, two, 1, &m, 1, 4), -EINVAL);	/* counts too */
	for (unsigned int i = 0; i < 4 * 8; i++)
		assert_int_equal(g_md[i], 0xee);	/* nothing written */
	assert_int_equal(nvt_pi_generate(&c, two, 2, &m, 1, 4), 0);

	assert_int_equal(nvt_pi_verify(&c, &dshort, 1, &m, 1, 4, &err), -EINVAL);
	assert_int_equal(nvt_pi_verify(&c, &d, 1, &mshort, 1, 4, &err), -EINVAL);
	assert_int_equal(nvt_pi_verify_ext(&c, &eshort, 1, 4, &err), -EINVAL);
	assert_int_equal(nvt_pi_generate_ext(&c, &eshort, 1, 4), -EINVAL);
	assert_int_equal(nvt_pi_split(&f, &eshort, 1, &d, 1, &m, 1, 4), -EINVAL);
	assert_int_equal(nvt_pi_split(&f, &e, 1, &dshort, 1, &m, 1, 4), -EINVAL);
	assert_int_equal(nvt_pi_join(&f, &d, 1, &m, 1, &eshort, 1, 4), -EINVAL);
	assert_int_equal(nvt_pi_verify_split(&c, &e, 1, &d, 1, &mshort, 1, 4, &err), -EINVAL);
	assert_int_equal(nvt_pi_verify_join(&c, &dshort, 1, &m, 1, &e, 1, 4, &err), -EINVAL);
	/* Longer buffers are fine: only nlb blocks are touched. */
	assert_int_equal(nvt_pi_verify(&c, &d, 1, &m, 1, 3, &err), 0);
}

static void test_nlb_zero(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_TYPE2, NVT_PI_GUARD_CRC64, false, 4096, 16);
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	nvt_pi_ctx_init(&c, &f, 0, 7, 0, 0, 0xffff);
	assert_int_equal(nvt_pi_generate(&c, NULL, 0, NULL, 0, 0), 0);
	assert_int_equal(nvt_pi_verify(&c, NULL, 0, NULL, 0, 0, &err), 0);
	assert_int_equal(nvt_pi_verify_ext(&c, NULL, 0, 0, &err), 0);
	assert_int_equal(nvt_pi_generate_ext(&c, NULL, 0, 0), 0);
	assert_int_equal(nvt_pi_split(&f, NULL, 0, NULL, 0, NULL, 0, 0), 0);
	assert_int_equal(nvt_pi_join(&f, NULL, 0, NULL, 0, NULL, 0, 0), 0);
	assert_int_equal(nvt_pi_verify_split(&c, NULL, 0, NULL, 0, NULL, 0, 0, &err), 0);
	assert_int_equal(nvt_pi_verify_join(&c, NULL, 0, NULL, 0, NULL, 0, 0, &err), 0);
}

static void test_type_none(void **state)
{
	struct nvt_pi_format f = mkfmt(NVT_PI_NONE, NVT_PI_GUARD_CRC16, false, 512, 8);
	struct nvt_pi_format f0 = mkfmt(NVT_PI_NONE, NVT_PI_GUARD_CRC16, false, 512, 0);
	struct iovec d = one(g_data, 2 * 512), m = one(g_md, 2 * 8), e = one(g_ext, 2 * 520);
	struct iovec d2 = one(g_data2, 2 * 512);
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	fill_random(g_data, 2 * 512);
	memset(g_md, 0x3c, 2 * 8);
	nvt_pi_ctx_init(&c, &f, 0, NVT_PI_PRACT | 7, 0, 0, 0xffff);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, 2), 0);
	for (unsigned int i = 0; i < 16; i++)
		assert_int_equal(g_md[i], 0x3c);	/* opaque metadata untouched */
	assert_int_equal(nvt_pi_verify(&c, &d, 1, &m, 1, 2, &err), 0);
	assert_int_equal(nvt_pi_verify_join(&c, &d, 1, &m, 1, &e, 1, 2, &err), 0);
	assert_memory_equal(g_ext, g_data, 512);
	assert_memory_equal(g_ext + 512, g_md, 8);
	assert_memory_equal(g_ext + 520, g_data + 512, 512);

	/* No metadata at all: split and join are plain copies; md may be absent. */
	nvt_pi_ctx_init(&c, &f0, 0, 7, 0, 0, 0);
	assert_int_equal(nvt_pi_verify_split(&c, &d, 1, &d2, 1, NULL, 0, 2, &err), 0);
	assert_memory_equal(g_data2, g_data, 2 * 512);
	assert_int_equal(nvt_pi_generate(&c, &d, 1, NULL, 0, 2), 0);
}

/*
 * Copied blocks: nvt_pi_retag() gives Type 1/2 tuples their new LBAs' ref
 * tags and keeps guard and app tag (so they still verify, app tag checked);
 * nvt_pi_copy_tags() carries app tags (Type 3 to Type 3: ref tags too)
 * into tuples of another format.
 */
static void test_retag_and_copy_tags(void **state)
{
	static const struct nvt_pi_format fmts[] = {
		{ NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, false, 512, 8 },
		{ NVT_PI_TYPE2, NVT_PI_GUARD_CRC64, true, 512, 64 },
		{ NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, false, 512, 32 },
		{ NVT_PI_TYPE3, NVT_PI_GUARD_CRC16, true, 512, 16 },
		{ NVT_PI_TYPE3, NVT_PI_GUARD_CRC64, false, 512, 16 },
	};
	static uint8_t data[4 * 512], md[4 * MAX_MD], md2[4 * MAX_MD];
	struct iovec d = { data, sizeof(data) };
	struct nvt_pi_ctx c;
	struct nvt_pi_err err;

	(void)state;
	fill_random(data, sizeof(data));
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		const struct nvt_pi_format *fmt = &fmts[f];
		struct iovec m = { md, 4u * fmt->md_size };
		const uint64_t big = (1ull << 32) + 9;	/* 48-bit tags survive on the 64-bit guard */
		uint64_t to = fmt->guard == NVT_PI_GUARD_CRC64 ? big : 9;

		memset(md, 0, sizeof(md));
		nvt_pi_ctx_init(&c, fmt, 100, NVT_PI_PRACT, 100, 0x1234, 0);
		assert_int_equal(nvt_pi_generate(&c, &d, 1, &m, 1, 4), 0);
		nvt_pi_ctx_init(&c, fmt, to, NVT_PI_CHECK_MASK, to, 0x1234, 0xffff);
		nvt_pi_retag(&c, md, 4);
		/* Type 1/2 now verify at the new LBAs with the app tag kept; Type 3 tags unchanged. */
		if (fmt->type != NVT_PI_TYPE3) {
			assert_int_equal(nvt_pi_verify(&c, &d, 1, &m, 1, 4, &err), 0);
		} else {
			nvt_pi_ctx_init(&c, fmt, to, NVT_PI_CHECK_MASK, 100, 0x1234, 0xffff);
			assert_int_equal(nvt_pi_verify(&c, &d, 1, &m, 1, 4, &err), 0);
		}
		/* Into every other format: fresh PI there, the app tags (and Type 3 ref tags) carried. */
		for (size_t g = 0; g < sizeof(fmts) / sizeof(fmts[0]); g++) {
			const struct nvt_pi_format *dst = &fmts[g];
			struct iovec m2 = { md2, 4u * dst->md_size };
			bool t3 = fmt->type == NVT_PI_TYPE3 && dst->type == NVT_PI_TYPE3;

			memset(md2, 0, sizeof(md2));
			nvt_pi_ctx_init(&c, dst, 50, NVT_PI_PRACT, t3 ? 7 : 50, 0, 0);
			assert_int_equal(nvt_pi_generate(&c, &d, 1, &m2, 1, 4), 0);
			nvt_pi_copy_tags(fmt, md, dst, md2, 4);
			nvt_pi_ctx_init(&c, dst, 50, NVT_PI_CHECK_MASK, 50, 0x1234, 0xffff);
			assert_int_equal(nvt_pi_verify(&c, &d, 1, &m2, 1, 4, &err), 0);
			if (t3) {
				size_t at = dst->pi_first ? 0 : dst->md_size - nvt_pi_size(dst->guard);
				const uint8_t *r = md2 + dst->md_size + at +
						   (dst->guard == NVT_PI_GUARD_CRC16 ? 4 : 10);

				assert_int_equal(r[dst->guard == NVT_PI_GUARD_CRC16 ? 3 : 5], 100);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pi_size),
		cmocka_unit_test(test_format_validate),
		cmocka_unit_test(test_ctx_init),
		cmocka_unit_test(test_md_on_wire),
		cmocka_unit_test(test_err_to_status),
		cmocka_unit_test(test_kat_crc16),
		cmocka_unit_test(test_kat_tuple16),
		cmocka_unit_test(test_kat_tuple64),
		cmocka_unit_test(test_matrix),
		cmocka_unit_test(test_error_order),
		cmocka_unit_test(test_escape_type12),
		cmocka_unit_test(test_escape_type3),
		cmocka_unit_test(test_type2_incrementing),
		cmocka_unit_test(test_type3_generate),
		cmocka_unit_test(test_reftag_wrap),
		cmocka_unit_test(test_misdirected_write),
		cmocka_unit_test(test_apptag_mask),
		cmocka_unit_test(test_prchk_zero),
		cmocka_unit_test(test_split_iovecs_awkward),
		cmocka_unit_test(test_split_iovecs_random),
		cmocka_unit_test(test_split_iovecs_bytewise),
		cmocka_unit_test(test_ext_split_join),
		cmocka_unit_test(test_generate_ext),
		cmocka_unit_test(test_split_in_place),
		cmocka_unit_test(test_short_buffers),
		cmocka_unit_test(test_nlb_zero),
		cmocka_unit_test(test_type_none),
		cmocka_unit_test(test_retag_and_copy_tags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
