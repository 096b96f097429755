/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for backend/nvme.c: format translation, PRINFO mapping, SQE fill and capability detection from Identify pages recorded from QEMU's NVMe. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/*
 * The seam: SQEs come from a fake SQ, so the split, park, completion and
 * probe paths run on fake CQEs (fake_complete()) with no device.
 */
struct nvt_nvme_chan;
struct io_uring_sqe;
static struct io_uring_sqe *fake_get_sqe(struct nvt_nvme_chan *c);
static unsigned int fake_sq_space(struct nvt_nvme_chan *c);
#define NVT_NVME_GET_SQE(c)	fake_get_sqe(c)
#define NVT_NVME_SQ_SPACE(c)	fake_sq_space(c)

/* The statics: parse, staging, PRINFO, SQE fill, issue and completion. */
#include "../../backend/nvme.c"
#include "../../backend/uring_ring.c"

#define FAKE_SQ	NVT_NVME_SQ_ENTRIES
static _Alignas(64) uint8_t fake_sqes[FAKE_SQ][NVT_URING_SQE128_SIZE];
static unsigned int fake_head, fake_tail, fake_limit = FAKE_SQ;

static struct io_uring_sqe *fake_get_sqe(struct nvt_nvme_chan *c)
{
	(void)c;
	if (fake_tail - fake_head >= fake_limit)
		return NULL;
	return (struct io_uring_sqe *)(void *)fake_sqes[fake_tail++ % FAKE_SQ];
}

static unsigned int fake_sq_space(struct nvt_nvme_chan *c)
{
	(void)c;
	return fake_limit - (fake_tail - fake_head);
}

static void fake_reset(unsigned int limit)
{
	fake_head = fake_tail = 0;
	fake_limit = limit;
}

/* The oldest fake SQE not yet completed (the next CQE's). */
static struct nvme_uring_cmd *fake_peek(struct io_uring_sqe **sqe)
{
	assert_true(fake_head != fake_tail);
	*sqe = (struct io_uring_sqe *)(void *)fake_sqes[fake_head % FAKE_SQ];
	return (struct nvme_uring_cmd *)(void *)(*sqe)->cmd;
}

/* The oldest SQE completes with cqe->res @res, then the next round (as nvt_uring_ring_event()). */
static void fake_complete(struct nvt_nvme_chan *c, int res)
{
	struct io_uring_sqe *sqe;

	fake_peek(&sqe);
	fake_head++;
	nvt_nvme_complete(&c->ring, (struct nvt_nvme_op *)(uintptr_t)sqe->user_data, res);
	nvt_nvme_resume(&c->ring);
}

/* What the namespace layer saw: nvt_bio_backend_done() calls. */
static unsigned int done_calls;
static int done_err;
static struct nvt_bio *done_bio;
/* A completion callback that submits again (as the layer's waiters do): @done_resubmit on @done_chan, once. */
static struct nvt_bio *done_resubmit;
static struct nvt_nvme_chan *done_chan;
static unsigned int done_late;		/* done calls for @done_resubmit */
static struct nvt_bio *done_late_bio;


void nvt_bio_backend_done(struct nvt_bio *bio, int err)
{
	done_calls++;
	done_err = err;
	done_bio = bio;
	if (bio == done_late_bio)
		done_late++;
	if (done_resubmit && bio != done_resubmit) {
		struct nvt_bio *r = done_resubmit;

		done_resubmit = NULL;
		nvt_nvme_submit(r, done_chan);
	}
}

/* ---- recorded Identify pages (tests/unit/data, from the nvtd-nvme rig scenario) ---- */

static void load(const char *name, void *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", NVT_TEST_DATA_DIR, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);
}

struct pages {
	struct nvme_id_ctrl ctrl;
	struct nvme_id_ns ns;
	struct nvme_nvm_id_ns nvm;
};

static void load_ns(struct pages *p, unsigned int i)
{
	char name[64];

	load("qemu-id-ctrl.bin", &p->ctrl, sizeof(p->ctrl));
	snprintf(name, sizeof(name), "qemu-id-ns%u.bin", i);
	load(name, &p->ns, sizeof(p->ns));
	snprintf(name, sizeof(name), "qemu-nvm-id-ns%u.bin", i);
	load(name, &p->nvm, sizeof(p->nvm));
}

static int parse(const struct pages *p, struct nvt_nvme_info *info, char *why)
{
	return nvt_nvme_parse(&p->ctrl, &p->ns,
			      le32toh(p->ctrl.ctratt) & NVME_CTRL_CTRATT_ELBAS ? &p->nvm : NULL, 1,
			      info, why, 160);
}

/* What rig-notes/QEMU-NVME-PI.md measured, read back from the pages the rig recorded. */
static void test_qemu_caps(void **state)
{
	static const struct { uint32_t lbs; uint16_t ms; bool ext; uint8_t pif; bool first; } want[] = {
		{ 512, 8, false, 0, false },
		{ 512, 8, true, 0, false },
		{ 4096, 16, false, 2, false },
		{ 4096, 64, false, 0, true },
		{ 4096, 64, false, 0, false },
	};
	struct nvt_nvme_info info;
	struct pages p;
	char why[160] = "";

	(void)state;
	for (unsigned int i = 0; i < 5; i++) {
		load_ns(&p, i + 1);
		assert_int_equal(parse(&p, &info, why), 0);
		assert_int_equal(info.lbs, want[i].lbs);
		assert_int_equal(info.ms, want[i].ms);
		assert_int_equal(info.ext, want[i].ext);
		assert_int_equal(info.pif, want[i].pif);
		assert_int_equal(info.pi_first, want[i].first);
		assert_int_equal(info.pi_type, 1);
		assert_int_equal(info.sts, 0);
		/* QEMU: the 64 MiB image holds whole blocks with their metadata. */
		assert_int_equal(info.nsze, (64u << 20) / (info.lbs + info.ms));
		/* The controller: MDTS 7 (512 KiB), ONCS 0x15d, OCFS 3, a volatile cache. */
		assert_int_equal(info.max_xfer, 512u << 10);
		assert_int_equal(info.oncs, 0x15d);
		assert_int_equal(info.ocfs, 0x3);
		assert_true(info.vwc);
		assert_int_equal(info.mssrl, 128);
		assert_int_equal(info.mcl, 128);
		assert_int_equal(info.msrc, 127);
		/* And nvtd's PI code takes the format. */
		struct nvt_pi_format f = nvt_nvme_pi_format(&info);

		assert_int_equal(nvt_pi_format_validate(&f), 0);
		assert_int_equal(f.guard, want[i].pif == 2 ? NVT_PI_GUARD_CRC64 : NVT_PI_GUARD_CRC16);
	}
}

/* Formats nvtd cannot serve are refused, saying why. */
static void test_refusals(void **state)
{
	struct nvt_nvme_info info;
	struct pages p, q;
	char why[160];
	unsigned int fi;

	(void)state;
	load_ns(&p, 3);		/* 4096+16, 64-bit guard */
	fi = nvt_nvme_flbas_index(p.ns.flbas);

	q = p;
	q.nvm.elbaf[fi] = htole32(1u << 7);	/* PIF 1: 32-bit guard */
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "32-bit guard"));

	q = p;
	q.nvm.elbaf[fi] = htole32(2u << 7 | 8);	/* storage tags */
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "storage tag"));

	q = p;
	q.ns.lbaf[fi].ms = htole16(128);
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "128 bytes of metadata"));

	q = p;
	q.ns.lbaf[fi].ds = 13;
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "8192-byte blocks"));

	q = p;
	q.ns.lbaf[fi].ms = htole16(8);		/* 64-bit guard PI needs 16 bytes */
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "the tuple is 16"));

	q = p;
	q.ns.flbas = 0xf;			/* past NLBAF */
	q.ns.nlbaf = 7;
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "FLBAS names LBA format 15, past the 8 it lists"));

	q = p;
	q.ns.nsze = 0;
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "no blocks (NSZE 0)"));

	q = p;
	q.ns.dps = 4;				/* PI type 4 does not exist */
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "names no PI type"));

	/* ELBAS set but CNS 05h failed: the guard size is unknown, so refused (not read as CRC16). */
	q = p;
	assert_true(le32toh(q.ctrl.ctratt) & NVME_CTRL_CTRATT_ELBAS);
	assert_int_equal(nvt_nvme_parse(&q.ctrl, &q.ns, NULL, 1, &info, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "CNS 05h) failed"));
	/* Without ELBAS the 16b guard is all there is: the same page reads as CRC16. */
	q.ctrl.ctratt &= htole32(~(uint32_t)NVME_CTRL_CTRATT_ELBAS);
	assert_int_equal(nvt_nvme_parse(&q.ctrl, &q.ns, NULL, 1, &info, why, sizeof(why)), 0);
	assert_int_equal(info.pif, 0);
}

/* ---- extended <-> separate through the staging buffer ---- */

struct fmtcase {
	uint32_t lbs;
	uint16_t ms;
	bool first;
};

static const struct fmtcase fmts[] = {
	{ 512, 8, false }, { 512, 16, false }, { 512, 16, true }, { 4096, 8, false },
	{ 4096, 16, false }, { 4096, 16, true }, { 4096, 64, false }, { 4096, 64, true },
};

/* @n pieces of irregular sizes over @buf (what a front's SGL may look like). */
static unsigned int chop(uint8_t *buf, size_t len, struct iovec *iov, unsigned int n)
{
	size_t at = 0;
	unsigned int i;

	for (i = 0; i < n - 1 && at < len; i++) {
		size_t l = (len - at) / 3 + 1 + i % 5;

		if (l > len - at)
			l = len - at;
		iov[i] = (struct iovec){ buf + at, l };
		at += l;
	}
	iov[i++] = (struct iovec){ buf + at, len - at };
	return i;
}

static void check_format(const struct fmtcase *fc, bool ext, unsigned int pieces)
{
	enum { NLB = 8, OFF = 3, N = 4 };
	struct nvt_nvme_info info = { .lbs = fc->lbs, .ms = fc->ms, .ext = ext, .pi_type = 1 };
	struct nvt_ns ns = { .block_size = fc->lbs, .md_size = fc->ms };
	size_t dlen = (size_t)NLB * fc->lbs, mlen = (size_t)NLB * fc->ms;
	uint8_t *data = malloc(dlen), *md = malloc(mlen), *data2 = calloc(1, dlen),
		*md2 = calloc(1, mlen), *stage = malloc((size_t)N * (fc->lbs + fc->ms) + (size_t)N * fc->ms);
	struct iovec div[40], miv[40], div2[40], miv2[40];
	struct nvt_bio bio = { .op = NVT_BIO_WRITE, .nlb = NLB };
	struct nvt_nvme_op op = { .bio = &bio, .off = OFF, .nlb = N, .data = stage };
	struct nvt_pi_ctx ctx;
	struct nvt_pi_err err;
	struct iovec e, d, m;

	info.pif = fc->ms >= 16 && !fc->first && fc->lbs == 4096 && fc->ms == 16 ? 2 : 0;
	ns.pi = nvt_nvme_pi_format(&info);
	ns.pi.pi_first = fc->first;
	assert_int_equal(nvt_pi_format_validate(&ns.pi), 0);
	op.md = stage + (size_t)N * nvt_nvme_ext_bs(&info);
	for (size_t i = 0; i < dlen; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	memset(md, 0x5a, mlen);
	/* Real PI in the separate metadata: where it sits is the format's business. */
	d = (struct iovec){ data, dlen };
	m = (struct iovec){ md, mlen };
	nvt_pi_ctx_init(&ctx, &ns.pi, 100, NVT_PI_CHECK_MASK | NVT_PI_PRACT, 100, 0x1234, 0xffff);
	assert_int_equal(nvt_pi_generate(&ctx, &d, 1, &m, 1, NLB), 0);

	bio.iov = div;
	bio.iov_cnt = chop(data, dlen, div, pieces);
	bio.md_iov = miv;
	bio.md_iov_cnt = chop(md, mlen, miv, pieces);
	assert_int_equal(nvt_nvme_stage(&ns, &info, &op, false), 0);
	if (ext) {
		/* Block OFF+i: its data then its metadata, and its PI checks out in place. */
		for (unsigned int i = 0; i < N; i++) {
			uint8_t *b = stage + (size_t)i * (fc->lbs + fc->ms);

			assert_memory_equal(b, data + (size_t)(OFF + i) * fc->lbs, fc->lbs);
			assert_memory_equal(b + fc->lbs, md + (size_t)(OFF + i) * fc->ms, fc->ms);
		}
		e = (struct iovec){ stage, (size_t)N * (fc->lbs + fc->ms) };
		nvt_pi_ctx_advance(&ctx, OFF);
		assert_int_equal(nvt_pi_verify_ext(&ctx, &e, 1, N, &err), 0);
		/* A flipped data bit is the guard's to catch, at the right block. */
		stage[(size_t)2 * (fc->lbs + fc->ms) + 5] ^= 1;
		assert_int_equal(nvt_pi_verify_ext(&ctx, &e, 1, N, &err), -EILSEQ);
		assert_int_equal(err.type, NVT_PI_ERR_GUARD);
		assert_int_equal(err.lba, 100 + OFF + 2);
		stage[(size_t)2 * (fc->lbs + fc->ms) + 5] ^= 1;
	} else {
		assert_memory_equal(stage, data + (size_t)OFF * fc->lbs, (size_t)N * fc->lbs);
		assert_memory_equal(op.md, md + (size_t)OFF * fc->ms, (size_t)N * fc->ms);
	}
	/* And back: a read of the same staged blocks lands where they came from. */
	bio.op = NVT_BIO_READ;
	bio.iov = div2;
	bio.iov_cnt = chop(data2, dlen, div2, pieces);
	bio.md_iov = miv2;
	bio.md_iov_cnt = chop(md2, mlen, miv2, pieces);
	assert_int_equal(nvt_nvme_stage(&ns, &info, &op, true), 0);
	assert_memory_equal(data2 + (size_t)OFF * fc->lbs, data + (size_t)OFF * fc->lbs,
			    (size_t)N * fc->lbs);
	assert_memory_equal(md2 + (size_t)OFF * fc->ms, md + (size_t)OFF * fc->ms,
			    (size_t)N * fc->ms);
	/* Nothing outside the command's blocks was touched. */
	assert_int_equal(data2[0], 0);
	assert_int_equal(data2[dlen - 1], 0);
	/* A bio whose buffers are shorter than it says is refused, not overrun. */
	bio.iov_cnt = 1;
	div2[0].iov_len = (size_t)(OFF + 1) * fc->lbs;
	assert_int_equal(nvt_nvme_stage(&ns, &info, &op, true), -EINVAL);
	free(data);
	free(md);
	free(data2);
	free(md2);
	free(stage);
}

static void test_translation(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		check_format(&fmts[i], true, 1);
		check_format(&fmts[i], true, 7);
		check_format(&fmts[i], true, 40);	/* more pieces than one slice takes: block by block */
		check_format(&fmts[i], false, 1);
		check_format(&fmts[i], false, 40);
	}
}

/* ---- PRINFO ---- */

static void test_prinfo(void **state)
{
	struct nvt_pi_format t1 = { .type = NVT_PI_TYPE1, .block_size = 512, .md_size = 8 };
	struct nvt_pi_format t3 = { .type = NVT_PI_TYPE3, .block_size = 512, .md_size = 8 };
	struct nvt_pi_format g64 = { .type = NVT_PI_TYPE2, .guard = NVT_PI_GUARD_CRC64,
				     .block_size = 4096, .md_size = 16 };
	struct nvt_pi_format none = { .block_size = 512, .md_size = 8 };
	struct nvt_bio bio = { .op = NVT_BIO_WRITE, .slba = 50, .nlb = 64 };
	struct nvt_nvme_prinfo p;

	(void)state;
	/* Write, PRACT=1: nvtd inserted valid PI; the device checks all of it. */
	nvt_pi_ctx_init(&bio.pi, &t1, 50, NVT_PI_PRACT, 50, 0xab, 0xff);
	p = nvt_nvme_prinfo(&bio, &t1, 10);
	assert_int_equal(p.prinfo, NVT_PI_CHECK_MASK);
	assert_int_equal(p.ref_tag, 60);		/* Type 1: moved with the command's first block */
	assert_int_equal(p.app_tag, 0xab);
	assert_int_equal(p.app_mask, 0xff);
	/* Write, PRACT=0: the host's own PRCHK, no more (PRCHK=0 stores unchecked). */
	nvt_pi_ctx_init(&bio.pi, &t1, 50, NVT_PI_CHECK_GUARD, 50, 0, 0);
	assert_int_equal(nvt_nvme_prinfo(&bio, &t1, 0).prinfo, NVT_PI_CHECK_GUARD);
	nvt_pi_ctx_init(&bio.pi, &t1, 50, 0, 50, 0, 0);
	assert_int_equal(nvt_nvme_prinfo(&bio, &t1, 0).prinfo, 0);
	/* Type 3: never the ref tag; the tag is opaque and not moved. */
	nvt_pi_ctx_init(&bio.pi, &t3, 50, NVT_PI_PRACT | NVT_PI_CHECK_MASK, 0x77, 0, 0);
	p = nvt_nvme_prinfo(&bio, &t3, 10);
	assert_int_equal(p.prinfo, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG);
	assert_int_equal(p.ref_tag, 0x77);
	/* Reads: only where the layer asks stored PI checked, and then the host's own PRCHK. */
	bio.op = NVT_BIO_READ;
	nvt_pi_ctx_init(&bio.pi, &t1, 50, NVT_PI_CHECK_REFTAG, 50, 0, 0);
	assert_int_equal(nvt_nvme_prinfo(&bio, &t1, 0).prinfo, 0);
	bio.flags = NVT_BIO_PI_CHECK_READ;
	assert_int_equal(nvt_nvme_prinfo(&bio, &t1, 0).prinfo, NVT_PI_CHECK_REFTAG);
	/*
	 * PRACT=1 reads too: Type 2 PRCHK=0 with an ILBRT the host never
	 * checks must not become a ref tag check (84h); Type 1 with the guard
	 * only must not check a ref tag != SLBA.
	 */
	nvt_pi_ctx_init(&bio.pi, &g64, 50, NVT_PI_PRACT, 0x1234, 0, 0);
	assert_int_equal(nvt_nvme_prinfo(&bio, &g64, 0).prinfo, 0);
	nvt_pi_ctx_init(&bio.pi, &t1, 50, NVT_PI_PRACT | NVT_PI_CHECK_GUARD, 7, 0, 0);
	assert_int_equal(nvt_nvme_prinfo(&bio, &t1, 0).prinfo, NVT_PI_CHECK_GUARD);
	nvt_pi_ctx_init(&bio.pi, &t1, 50, NVT_PI_PRACT | NVT_PI_CHECK_MASK, 50, 0, 0);
	assert_int_equal(nvt_nvme_prinfo(&bio, &t1, 0).prinfo, NVT_PI_CHECK_MASK);
	/* Verify and Compare read stored blocks: the same rule. */
	bio.op = NVT_BIO_VERIFY;
	nvt_pi_ctx_init(&bio.pi, &t3, 50, NVT_PI_CHECK_MASK, 0, 0, 0);
	assert_int_equal(nvt_nvme_prinfo(&bio, &t3, 0).prinfo, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG);
	bio.op = NVT_BIO_READ;
	/* 64b guard: a 48-bit ref tag, wrapping at 48 bits. */
	nvt_pi_ctx_init(&bio.pi, &g64, 0, NVT_PI_CHECK_MASK, 0xfffffffffffeull, 0, 0);
	p = nvt_nvme_prinfo(&bio, &g64, 3);
	assert_int_equal(p.ref_tag, 1);
	/* No PI, or the layer's own I/O without a context: nothing checked. */
	assert_int_equal(nvt_nvme_prinfo(&bio, &none, 0).prinfo, 0);
	memset(&bio.pi, 0, sizeof(bio.pi));
	assert_int_equal(nvt_nvme_prinfo(&bio, &t1, 0).prinfo, 0);
}

/* The SQE as the kernel reads it: opcode, fields, PRINFO bits 29:26, EILBRT split, metadata. */
static void test_sqe_fill(void **state)
{
	struct nvt_pi_format g64 = { .type = NVT_PI_TYPE1, .guard = NVT_PI_GUARD_CRC64,
				     .block_size = 4096, .md_size = 16 };
	struct nvt_nvme_ns n = { .fd = 7, .info = { .nsid = 3, .lbs = 4096, .ms = 16 } };
	struct nvt_ns ns = { .pi = g64, .block_size = 4096, .md_size = 16 };
	struct nvt_nvme_chan c = { .ns = &ns, .n = &n };
	struct io_uring_params params = { .flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32 };
	struct nvt_bio bio = { .op = NVT_BIO_WRITE, .slba = 0x123456789ull, .nlb = 16,
			       .flags = NVT_BIO_FUA };
	uint8_t data[64], md[64];
	struct nvt_nvme_op op = { .bio = &bio, .off = 4, .nlb = 2, .opcode = NVT_NVME_OP_WRITE,
				  .data = data, .md = md, .buf_index = 5 };
	struct io_uring_sqe *sqe;
	struct nvme_uring_cmd *cmd;

	(void)state;
	if (io_uring_queue_init_params(4, &c.ring.uring, &params)) {
		print_message("no SQE128/CQE32 rings here (Linux < 5.19): skipped\n");
		skip();
	}
	nvt_pi_ctx_init(&bio.pi, &g64, bio.slba, NVT_PI_PRACT | NVT_PI_CHECK_MASK,
			bio.slba, 0x1111, 0xf0f0);
	c.ring.fixed_bufs = true;
	sqe = io_uring_get_sqe(&c.ring.uring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(sqe->opcode, IORING_OP_URING_CMD);
	assert_int_equal(sqe->cmd_op, NVME_URING_CMD_IO);
	assert_int_equal(sqe->fd, 7);
	assert_int_equal(sqe->uring_cmd_flags, IORING_URING_CMD_FIXED);
	assert_int_equal(sqe->buf_index, 5);
	assert_int_equal(cmd->opcode, 0x01);
	assert_int_equal(cmd->flags, 0);		/* 6.1 refuses any flag (no fused pairs) */
	assert_int_equal(cmd->nsid, 3);
	assert_int_equal(cmd->cdw10, 0x2345678d);	/* SLBA + 4, low half */
	assert_int_equal(cmd->cdw11, 0x1);
	/* NLB 0-based, PRINFO = PRCHK 7 with PRACT 0, FUA. */
	assert_int_equal(cmd->cdw12, (2u - 1) | 7u << 26 | 1u << 30);
	assert_int_equal(cmd->cdw14, (uint32_t)(bio.slba + 4));
	assert_int_equal(cmd->cdw3, (uint32_t)((bio.slba + 4) >> 32) & 0xffff);
	assert_int_equal(cmd->cdw15, 0x1111u | 0xf0f0u << 16);
	assert_int_equal(cmd->addr, (uintptr_t)data);
	assert_int_equal(cmd->data_len, 2 * 4096);
	assert_int_equal(cmd->metadata, (uintptr_t)md);
	assert_int_equal(cmd->metadata_len, 2 * 16);
	assert_int_equal(cmd->timeout_ms, NVT_NVME_TIMEOUT_MS);
	assert_ptr_equal(io_uring_cqe_get_data((struct io_uring_cqe *)(void *)&sqe->user_data), &op);

	/* Extended LBAs: one buffer of data and metadata, no metadata pointer. */
	n.info.ext = true;
	sqe = io_uring_get_sqe(&c.ring.uring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->data_len, 2 * (4096 + 16));
	assert_int_equal(cmd->metadata, 0);
	assert_int_equal(cmd->metadata_len, 0);
	io_uring_queue_exit(&c.ring.uring);
}

/* Native commands' SQEs: Write Zeroes (DEAC), Copy format 0, Deallocate (Write Zeroes with DEAC), as the device reads them. */
static void test_sqe_native(void **state)
{
	struct nvt_nvme_ns n = { .fd = 7, .info = { .nsid = 6, .lbs = 4096 }, .cmd_blocks = 32,
				 .wz_blocks = 65536 };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c = { .ns = &ns, .n = &n };
	struct io_uring_params params = { .flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32 };
	struct nvt_bio wz = { .op = NVT_BIO_WRITE_ZEROES, .slba = 0x100000010ull, .nlb = 65536 + 5,
			      .flags = NVT_BIO_DEAC };
	struct nvt_bio cp = { .op = NVT_BIO_COPY, .slba = 900, .nlb = 100, .copy_src = 0x123456 };
	struct nvt_bio dsm = { .op = NVT_BIO_DEALLOCATE, .slba = 77, .nlb = 3000 };
	uint8_t buf[64];
	struct nvt_nvme_op op = { .data = buf, .md = buf + 32 };
	struct io_uring_sqe *sqe;
	struct nvme_uring_cmd *cmd;
	uint64_t v64;
	uint16_t v16;

	(void)state;
	if (io_uring_queue_init_params(4, &c.ring.uring, &params)) {
		print_message("no SQE128/CQE32 rings here (Linux < 5.19): skipped\n");
		skip();
	}
	/* Write Zeroes: 16-bit NLB, so 65541 blocks are two commands; the second starts 65536 in. */
	assert_int_equal(nvt_nvme_op_blocks(&c, &wz, 0), 65536);
	assert_int_equal(nvt_nvme_op_blocks(&c, &wz, 65536), 5);
	op.bio = &wz;
	op.opcode = NVT_NVME_OP_WZ;
	op.off = 65536;
	op.nlb = 5;
	sqe = io_uring_get_sqe(&c.ring.uring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->opcode, 0x08);
	assert_int_equal(cmd->cdw10, 0x00010010);
	assert_int_equal(cmd->cdw11, 1);
	assert_int_equal(cmd->cdw12, 4u | 1u << 25);
	assert_int_equal(cmd->data_len, 0);
	assert_int_equal(sqe->uring_cmd_flags, 0);	/* no buffer, so no fixed one */
	/* FUA on Write Zeroes: CDW12 bit 30, as on Write. */
	wz.flags |= NVT_BIO_FUA;
	sqe = io_uring_get_sqe(&c.ring.uring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->cdw12, 4u | 1u << 25 | 1u << 30);
	wz.flags &= ~NVT_BIO_FUA;

	/* Copy: one format-0 descriptor, the destination in CDW10/11, everything else 0. */
	assert_int_equal(nvt_nvme_op_blocks(&c, &cp, 0), 0);	/* one command, no span of its own */
	op.bio = &cp;
	op.opcode = NVT_NVME_OP_COPY;
	op.off = 0;
	op.nlb = 0;
	memset(buf, 0xee, sizeof(buf));
	sqe = io_uring_get_sqe(&c.ring.uring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->opcode, 0x19);
	assert_int_equal(cmd->cdw10, 900);
	assert_int_equal(cmd->cdw11, 0);
	assert_int_equal(cmd->cdw12, 0);
	assert_int_equal(cmd->data_len, 32);
	memcpy(&v64, buf + 8, 8);
	memcpy(&v16, buf + 16, 2);
	assert_int_equal(le64toh(v64), 0x123456);
	assert_int_equal(le16toh(v16), 99);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[31], 0);
	assert_int_equal(buf[32], 0xee);	/* 32 bytes, no more */

	/* Deallocate: a Write Zeroes with DEAC (reads back zeroes whatever DSM would do). */
	op.bio = &dsm;
	op.opcode = nvt_nvme_opcode(dsm.op);
	op.off = 0;
	op.nlb = 3000;
	sqe = io_uring_get_sqe(&c.ring.uring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->opcode, 0x08);
	assert_int_equal(cmd->cdw10, 77);
	assert_int_equal(cmd->cdw12, 2999u | 1u << 25);
	assert_int_equal(cmd->data_len, 0);
	io_uring_queue_exit(&c.ring.uring);
}

static void test_status(void **state)
{
	(void)state;
	/* The device's status goes back as it came: SCT/SC and DNR; More and CRD are not the host's. */
	assert_int_equal(nvt_nvme_status_of(0x282), 0x282);
	assert_int_equal(nvt_nvme_status_of(0x4181), 0x4181);
	assert_int_equal(nvt_nvme_status_of(0x2284), 0x284);
	assert_int_equal(nvt_nvme_status_of(0x1806), 0x6);
}

/* -errno from the kernel: a device gone is Namespace Not Ready (DNR), said once; a timeout is Aborted By Host. */
static void test_errno(void **state)
{
	struct nvt_nvme_ns n = { .fd = -1, .path = "/dev/ng9n9" };
	struct nvt_ns ns = { .nsid = 4 };
	struct nvt_nvme_chan c = { .ns = &ns, .n = &n };
	struct nvt_bio bio = { .op = NVT_BIO_READ, .slba = 10, .nlb = 1 };

	(void)state;
	assert_int_equal(nvt_nvme_errno(&c, &bio, 10, -ENODEV), 0);
	assert_int_equal(bio.status, NVT_BIO_DEVICE);
	assert_int_equal(bio.dev_status, 0x82 | 0x4000);
	assert_int_equal(bio.err_lba, 10);
	assert_true(atomic_load(&n.gone_logged));
	bio.status = NVT_BIO_OK;
	assert_int_equal(nvt_nvme_errno(&c, &bio, 11, -ENXIO), 0);
	assert_int_equal(bio.dev_status, 0x4082);
	bio.status = NVT_BIO_OK;
	assert_int_equal(nvt_nvme_errno(&c, &bio, 12, -ETIMEDOUT), 0);
	assert_int_equal(bio.dev_status, 0x371);	/* no DNR: a host may retry */
	bio.status = NVT_BIO_OK;
	/* Anything else: the layer's errno mapping (media error for -EIO). */
	assert_int_equal(nvt_nvme_errno(&c, &bio, 12, -EIO), -EIO);
	assert_int_equal(bio.status, NVT_BIO_OK);
}

/* A device PI error over 8 blocks: the unchecked re-read and nvtd's check name the block. */
static void test_probe_lba(void **state)
{
	enum { NLB = 8, BAD = 5 };
	struct nvt_pi_format f = { .type = NVT_PI_TYPE1, .block_size = 512, .md_size = 8 };
	struct nvt_nvme_ns n = { .info = { .lbs = 512, .ms = 8, .pi_type = 1 } };
	struct nvt_ns ns = { .pi = f, .block_size = 512, .md_size = 8 };
	struct nvt_nvme_chan c = { .ns = &ns, .n = &n };
	struct nvt_bio bio = { .op = NVT_BIO_READ, .slba = 4000, .nlb = 64,
			       .flags = NVT_BIO_PI_CHECK_READ };
	static uint8_t data[NLB * 520], md[NLB * 8];
	struct nvt_nvme_op op = { .bio = &bio, .off = 16, .nlb = NLB, .opcode = NVT_NVME_OP_READ,
				  .data = data, .md = md, .probe_status = 0x282 };
	struct iovec d = { data, NLB * 512 }, m = { md, sizeof(md) };
	struct nvt_pi_ctx gen;

	(void)state;
	memset(data, 0x3c, sizeof(data));
	nvt_pi_ctx_init(&gen, &f, 4016, NVT_PI_PRACT, 4016, 0, 0);
	assert_int_equal(nvt_pi_generate(&gen, &d, 1, &m, 1, NLB), 0);
	data[BAD * 512 + 100] ^= 4;
	nvt_pi_ctx_init(&bio.pi, &f, 4000, NVT_PI_PRACT, 4000, 0, 0);
	assert_int_equal(nvt_nvme_probe_lba(&c, &op), 4016 + BAD);
	assert_int_equal(op.probe_status, 0);
	/* Nothing nvtd can see wrong: the command's first LBA. */
	data[BAD * 512 + 100] ^= 4;
	assert_int_equal(nvt_nvme_probe_lba(&c, &op), 4016);
	/* Extended LBAs: the same over the interleaved buffer. */
	n.info.ext = true;
	{
		struct iovec e = { data, sizeof(data) };

		nvt_pi_ctx_init(&gen, &f, 4016, NVT_PI_PRACT, 4016, 0, 0);
		assert_int_equal(nvt_pi_generate_ext(&gen, &e, 1, NLB), 0);
		data[2 * 520 + 7] ^= 1;
		assert_int_equal(nvt_nvme_probe_lba(&c, &op), 4018);
	}
}

/* ---- issue, park, complete: the fake SQ ---- */

/* A channel as chan_create() makes it, without a ring: ops over @stage, a registered file. */
static void fake_chan(struct nvt_nvme_chan *c, struct nvt_ns *ns, struct nvt_nvme_ns *n,
		      uint8_t **stage)
{
	size_t per = (size_t)n->cmd_blocks * (nvt_nvme_ext_bs(&n->info) + n->info.ms);

	memset(c, 0, sizeof(*c));
	c->ns = ns;
	c->n = n;
	c->parked_tail = &c->parked;
	c->ring.fixed_files = true;
	*stage = calloc(NVT_NVME_SQ_ENTRIES, per);
	assert_non_null(*stage);
	for (int i = NVT_NVME_SQ_ENTRIES - 1; i >= 0; i--) {
		c->ops[i].buf_index = (uint16_t)i;
		c->ops[i].data = *stage + (size_t)i * per;
		c->ops[i].md = c->ops[i].data + (size_t)n->cmd_blocks * nvt_nvme_ext_bs(&n->info);
		nvt_nvme_op_free(c, &c->ops[i]);
	}
	c->ring.poller_on = true;	/* no poll group here */
	done_calls = 0;
	done_err = 0;
	done_bio = NULL;
}

static uint64_t cmd_slba(const struct nvme_uring_cmd *cmd)
{
	return cmd->cdw10 | (uint64_t)cmd->cdw11 << 32;
}

/*
 * An 8 MiB PRACT=1 write on extended 4096+8 (Type 1): 31 blocks a command,
 * 67 commands, more than the ring: 64 go out, the rest as ops come back,
 * in order; one completion, after the last. The review's case that failed
 * with Internal Error.
 */
static void test_waves(void **state)
{
	enum { NLB = 2048 };
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096, .ms = 8, .ext = true,
						    .pi_type = 1 } };
	struct nvt_ns ns = { .block_size = 4096, .md_size = 8, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c;
	uint8_t *stage, *data = malloc((size_t)NLB * 4096), md[NLB * 8];
	struct iovec d = { data, (size_t)NLB * 4096 }, m = { md, sizeof(md) };
	struct nvt_bio bio = { .op = NVT_BIO_WRITE, .slba = 1000, .nlb = NLB, .iov = &d,
			       .iov_cnt = 1, .md_iov = &m, .md_iov_cnt = 1 };
	struct io_uring_sqe *sqe;
	struct nvme_uring_cmd *cmd;
	uint64_t want = 1000;
	unsigned int cmds = 0;

	(void)state;
	assert_non_null(data);
	ns.pi = nvt_nvme_pi_format(&n.info);
	assert_int_equal(nvt_nvme_limits(&n), 0);
	assert_int_equal(n.cmd_blocks, 31);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(FAKE_SQ);
	for (size_t i = 0; i < (size_t)NLB * 4096; i++)
		data[i] = (uint8_t)(i * 7 / 4096);
	nvt_pi_ctx_init(&bio.pi, &ns.pi, 1000, NVT_PI_PRACT, 1000, 0x11, 0xffff);
	assert_int_equal(nvt_pi_generate(&bio.pi, &d, 1, &m, 1, NLB), 0);

	nvt_nvme_submit(&bio, &c);
	assert_int_equal(fake_tail, NVT_NVME_BIO_OPS_MAX);	/* one bio's share of the ring */
	assert_true(bio.be_priv.parked);
	assert_int_equal(c.nr_parked, 1);
	while (fake_head != fake_tail) {
		cmd = fake_peek(&sqe);
		assert_int_equal(done_calls, 0);
		assert_int_equal(cmd->opcode, NVT_NVME_OP_WRITE);
		assert_int_equal(cmd_slba(cmd), want);
		/* The registered file: index 0 with IOSQE_FIXED_FILE, not the fd. */
		assert_true(sqe->flags & IOSQE_FIXED_FILE);
		assert_int_equal(sqe->fd, 0);
		/* nvtd inserted the PI: the device checks all of it, tags moved to the command. */
		assert_int_equal(cmd->cdw12 >> 26 & 0xf, NVT_PI_CHECK_MASK);
		assert_int_equal(cmd->cdw14, (uint32_t)want);
		assert_int_equal(cmd->data_len, (cmd->cdw12 & 0xffff) * 4104u + 4104u);
		/* The staged block is the bio's, its PI after it. */
		assert_memory_equal((uint8_t *)(uintptr_t)cmd->addr, data + (want - 1000) * 4096, 4096);
		assert_memory_equal((uint8_t *)(uintptr_t)cmd->addr + 4096, md + (want - 1000) * 8, 8);
		want += (cmd->cdw12 & 0xffff) + 1;
		cmds++;
		fake_complete(&c, 0);
	}
	assert_int_equal(cmds, 67);
	assert_int_equal(want, 1000 + NLB);
	assert_int_equal(done_calls, 1);
	assert_ptr_equal(done_bio, &bio);
	assert_int_equal(done_err, 0);
	assert_int_equal(bio.status, NVT_BIO_OK);
	assert_null(c.parked);
	assert_int_equal(c.nr_free_ops, NVT_NVME_SQ_ENTRIES);
	free(stage);
	free(data);
}

/*
 * MDTS 16 KiB on 4096-byte blocks, a 2 MiB read: 128 commands of 4 blocks
 * through a small SQ (8 SQEs), a second bio parks behind the first and
 * gets its command in the next round (round-robin), not after the big one
 * is all out; both complete.
 */
static void test_park_fifo(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096, .max_xfer = 16384 } };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c;
	uint8_t *stage, *data = malloc(2u << 20), small[4096];
	struct iovec d = { data, 2u << 20 }, s1 = { small, sizeof(small) };
	struct nvt_bio big = { .op = NVT_BIO_READ, .slba = 0, .nlb = 512, .iov = &d, .iov_cnt = 1 };
	struct nvt_bio little = { .op = NVT_BIO_READ, .slba = 9000, .nlb = 1, .iov = &s1,
				  .iov_cnt = 1 };
	struct io_uring_sqe *sqe;
	struct nvme_uring_cmd *cmd;
	unsigned int cmds = 0;
	bool is_little;

	(void)state;
	assert_non_null(data);
	assert_int_equal(nvt_nvme_limits(&n), 0);
	assert_int_equal(n.cmd_blocks, 4);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(8);
	nvt_nvme_submit(&big, &c);
	nvt_nvme_submit(&little, &c);
	assert_true(little.be_priv.parked);		/* the SQ is full */
	assert_int_equal(little.be_priv.next_off, 0);
	while (fake_head != fake_tail) {
		cmd = fake_peek(&sqe);
		/* Staged read data: block LBA's first byte is its LBA's low byte. */
		memset((uint8_t *)(uintptr_t)cmd->addr, 0, cmd->data_len);
		for (uint32_t i = 0; i <= (cmd->cdw12 & 0xffff); i++)
			((uint8_t *)(uintptr_t)cmd->addr)[i * 4096] = (uint8_t)(cmd_slba(cmd) + i);
		is_little = cmd_slba(cmd) == 9000;
		if (is_little)
			assert_true(cmds <= 9);	/* within the first round of completions */
		cmds++;
		fake_complete(&c, 0);
		if (is_little) {
			assert_int_equal(done_calls, 1);	/* the little one, done at once */
			assert_ptr_equal(done_bio, &little);
		}
	}
	assert_int_equal(cmds, 129);
	assert_int_equal(done_calls, 2);
	assert_ptr_equal(done_bio, &big);
	for (unsigned int i = 0; i < 512; i++)
		assert_int_equal(data[(size_t)i * 4096], (uint8_t)i);
	assert_int_equal(small[0], (uint8_t)9000);
	free(stage);
	free(data);
}

/*
 * A piece fails mid-split: nothing more is issued, the bio completes when
 * its commands out have, with the first failure (a device status stays
 * though a later piece says -EIO; an -errno stays though a later piece
 * has a device status).
 */
static void test_error_mid_split(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096, .max_xfer = 16384 } };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[12 * 4096];
	struct iovec d = { data, sizeof(data) };
	struct nvt_bio bio = { .op = NVT_BIO_READ, .slba = 100, .nlb = 12, .iov = &d, .iov_cnt = 1 };

	(void)state;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(2);
	nvt_nvme_submit(&bio, &c);			/* 3 commands, 2 fit */
	assert_int_equal(fake_tail, 2);
	fake_complete(&c, 0x4281);			/* Unrecovered Read Error, DNR */
	assert_int_equal(fake_tail, 2);		/* the third never goes out */
	assert_false(bio.be_priv.parked);
	assert_int_equal(done_calls, 0);
	fake_complete(&c, -EIO);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_err, 0);
	assert_int_equal(bio.status, NVT_BIO_DEVICE);
	assert_int_equal(bio.dev_status, 0x4281);
	assert_int_equal(bio.err_lba, 100);
	assert_int_equal(c.nr_free_ops, NVT_NVME_SQ_ENTRIES);

	/* The other way round: the -errno first. */
	free(stage);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(8);
	bio.status = NVT_BIO_OK;
	nvt_nvme_submit(&bio, &c);
	fake_complete(&c, -EIO);
	fake_complete(&c, 0x4281);
	fake_complete(&c, 0);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_err, -EIO);
	assert_int_equal(bio.status, NVT_BIO_OK);
	free(stage);
}

/* A checked read's 82h over 8 blocks: the unchecked re-read goes out, then the bio fails with the bad block's LBA. */
static void test_probe_resubmit(void **state)
{
	enum { NLB = 8, BAD = 5 };
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 512, .ms = 8, .pi_type = 1 } };
	struct nvt_ns ns = { .block_size = 512, .md_size = 8, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[NLB * 512], md[NLB * 8];
	struct iovec d = { data, sizeof(data) }, m = { md, sizeof(md) };
	struct nvt_bio bio = { .op = NVT_BIO_READ, .slba = 300, .nlb = NLB, .iov = &d, .iov_cnt = 1,
			       .md_iov = &m, .md_iov_cnt = 1, .flags = NVT_BIO_PI_CHECK_READ };
	struct io_uring_sqe *sqe;
	struct nvme_uring_cmd *cmd;
	struct nvt_pi_ctx gen;
	struct iovec sd, sm;

	(void)state;
	ns.pi = nvt_nvme_pi_format(&n.info);
	assert_int_equal(nvt_nvme_limits(&n), 0);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(FAKE_SQ);
	nvt_pi_ctx_init(&bio.pi, &ns.pi, 300, NVT_PI_CHECK_MASK, 300, 0, 0);
	nvt_nvme_submit(&bio, &c);
	cmd = fake_peek(&sqe);
	assert_int_equal(cmd->cdw12 >> 26 & 0xf, NVT_PI_CHECK_MASK);
	fake_complete(&c, 0x282);
	assert_int_equal(done_calls, 0);
	assert_int_equal(fake_tail, 2);		/* the probe */
	cmd = fake_peek(&sqe);
	assert_int_equal(cmd->cdw12 >> 26 & 0xf, 0);	/* unchecked */
	assert_int_equal(cmd_slba(cmd), 300);
	/* The stored blocks, one with a bad guard. */
	sd = (struct iovec){ (void *)(uintptr_t)cmd->addr, sizeof(data) };
	sm = (struct iovec){ (void *)(uintptr_t)cmd->metadata, sizeof(md) };
	memset(sd.iov_base, 0x5a, sd.iov_len);
	nvt_pi_ctx_init(&gen, &ns.pi, 300, NVT_PI_PRACT, 300, 0, 0);
	assert_int_equal(nvt_pi_generate(&gen, &sd, 1, &sm, 1, NLB), 0);
	((uint8_t *)sd.iov_base)[BAD * 512 + 3] ^= 0x10;
	fake_complete(&c, 0);
	assert_int_equal(done_calls, 1);
	assert_int_equal(bio.status, NVT_BIO_DEVICE);
	assert_int_equal(bio.dev_status, 0x282);
	assert_int_equal(bio.err_lba, 300 + BAD);
	assert_int_equal(c.nr_free_ops, NVT_NVME_SQ_ENTRIES);
	free(stage);
}

/*
 * What goes to the device natively and what the layer emulates:
 * Deallocate as Write Zeroes with DEAC split by WZSL; Compare staged like a
 * write; Verify only with ONCS bit 7; nothing with metadata.
 */
static void test_native_ops(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096, .wz_max = 8192,
						    .oncs = NVT_NVME_ONCS_WZ | NVT_NVME_ONCS_COMPARE,
						    .dlfeat = 0x09 } };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[3 * 4096];
	struct iovec d = { data, sizeof(data) };
	struct nvt_bio de = { .op = NVT_BIO_DEALLOCATE, .slba = 40, .nlb = 5 };
	struct nvt_bio cmp = { .op = NVT_BIO_COMPARE, .slba = 7, .nlb = 3, .iov = &d, .iov_cnt = 1 };
	struct nvt_bio ver = { .op = NVT_BIO_VERIFY, .slba = 7, .nlb = 3 };
	struct io_uring_sqe *sqe;
	struct nvme_uring_cmd *cmd;
	struct nvme_id_ctrl_nvm nc = { .wzsl = 1, .vsl = 2 };

	(void)state;
	/* CNS 06h: WZSL/VSL in 4 KiB units as powers of two; none: no limit. */
	nvt_nvme_parse_nvm_ctrl(&nc, &n.info);
	assert_int_equal(n.info.wz_max, 8192);
	assert_int_equal(n.info.verify_max, 16384);
	nvt_nvme_parse_nvm_ctrl(NULL, &n.info);
	assert_int_equal(n.info.wz_max, 0);
	/* No WZSL: MDTS bounds Write Zeroes (Linux's max_zeroes_sectors); neither: the 16-bit NLB. */
	n.info.max_xfer = 16384;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	assert_int_equal(n.wz_blocks, 4);
	n.info.max_xfer = 0;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	assert_int_equal(n.wz_blocks, 65536);
	n.info.wz_max = 8192;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	assert_int_equal(n.wz_blocks, 2);
	assert_int_equal(n.verify_blocks, 65536);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(FAKE_SQ);

	/*
	 * Deallocate as Write Zeroes + DEAC only with DLFEAT 001b and bit 3:
	 * else the device would write zeroes over the range, or not
	 * deallocate; the layer emulates it.
	 */
	static const uint8_t not_native[] = { 0x00, 0x01, 0x08, 0x0a, 0x0b, 0x02 };
	for (size_t i = 0; i < sizeof(not_native); i++) {
		n.info.dlfeat = not_native[i];
		assert_int_equal(nvt_nvme_check(&c, &de), -EOPNOTSUPP);
	}
	n.info.dlfeat = 0x19;			/* bit 4 (guard field) does not matter */
	assert_int_equal(nvt_nvme_check(&c, &de), 0);
	n.info.dlfeat = 0x09;
	assert_int_equal(nvt_nvme_check(&c, &de), 0);
	n.info.oncs &= ~NVT_NVME_ONCS_WZ;	/* DLFEAT alone is not Write Zeroes */
	assert_int_equal(nvt_nvme_check(&c, &de), -EOPNOTSUPP);
	n.info.oncs |= NVT_NVME_ONCS_WZ;

	nvt_nvme_submit(&de, &c);
	assert_int_equal(fake_tail, 3);		/* 2 + 2 + 1 blocks */
	for (uint64_t lba = 40; fake_head != fake_tail;) {
		cmd = fake_peek(&sqe);
		assert_int_equal(cmd->opcode, NVT_NVME_OP_WZ);
		assert_int_equal(cmd_slba(cmd), lba);
		assert_true(cmd->cdw12 & NVT_NVME_WZ_DEAC);
		lba += (cmd->cdw12 & 0xffff) + 1;
		fake_complete(&c, 0);
	}
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_err, 0);

	memset(data, 0xc3, sizeof(data));
	nvt_nvme_submit(&cmp, &c);
	cmd = fake_peek(&sqe);
	assert_int_equal(cmd->opcode, NVT_NVME_OP_COMPARE);
	assert_int_equal(cmd->data_len, sizeof(data));
	assert_memory_equal((void *)(uintptr_t)cmd->addr, data, sizeof(data));
	fake_complete(&c, NVT_NVME_SC_COMPARE);	/* the layer then finds the byte itself */
	assert_int_equal(done_calls, 2);
	assert_int_equal(cmp.status, NVT_BIO_DEVICE);
	assert_int_equal(cmp.dev_status, 0x285);

	nvt_nvme_submit(&ver, &c);		/* no ONCS bit 7 (QEMU 7.2): the layer's */
	assert_int_equal(done_calls, 3);
	assert_int_equal(done_err, -EOPNOTSUPP);
	n.info.oncs |= NVT_NVME_ONCS_VERIFY;
	nvt_nvme_submit(&ver, &c);
	cmd = fake_peek(&sqe);
	assert_int_equal(cmd->opcode, NVT_NVME_OP_VERIFY);
	assert_int_equal(cmd->data_len, 0);
	assert_int_equal(cmd->addr, 0);
	assert_int_equal(cmd->cdw12, 2);
	fake_complete(&c, 0);
	assert_int_equal(done_calls, 4);
	assert_int_equal(done_err, 0);

	/* With metadata: Write Zeroes, Deallocate and Compare are the layer's. */
	ns.md_size = 8;
	n.info.ms = 8;
	nvt_nvme_submit(&de, &c);
	assert_int_equal(done_err, -EOPNOTSUPP);
	nvt_nvme_submit(&cmp, &c);
	assert_int_equal(done_err, -EOPNOTSUPP);
	/* A WZSL under one block turns native Write Zeroes off. */
	n.info.ms = 0;
	n.info.wz_max = 2048;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	assert_false(n.info.oncs & NVT_NVME_ONCS_WZ);
	free(stage);
}

/*
 * A command the kernel timed out: as -ETIMEDOUT (or -EINTR) the bio ends
 * with Command Aborted By Host (371h, no DNR); as the controller's own
 * 371h it goes back unchanged. Either way once, and the op is free again.
 */
static void test_timeout_cqe(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .path = "/dev/ng9n1", .info = { .nsid = 1, .lbs = 4096 } };
	struct nvt_ns ns = { .nsid = 1, .block_size = 4096, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[4096];
	struct iovec d = { data, sizeof(data) };
	struct nvt_bio bio = { .op = NVT_BIO_READ, .slba = 77, .nlb = 1, .iov = &d, .iov_cnt = 1 };
	int res[] = { -ETIMEDOUT, -EINTR, 0x371 };

	(void)state;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	fake_chan(&c, &ns, &n, &stage);
	for (unsigned int i = 0; i < 3; i++) {
		fake_reset(FAKE_SQ);
		done_calls = 0;
		bio.status = NVT_BIO_OK;
		nvt_nvme_submit(&bio, &c);
		fake_complete(&c, res[i]);
		assert_int_equal(done_calls, 1);
		assert_int_equal(done_err, 0);
		assert_int_equal(bio.status, NVT_BIO_DEVICE);
		assert_int_equal(bio.dev_status, 0x371);
		assert_int_equal(bio.err_lba, 77);
		assert_int_equal(c.nr_free_ops, NVT_NVME_SQ_ENTRIES);
	}
	assert_true(atomic_load(&n.timeout_logged));
	free(stage);
}

/* A channel going away: a bio still parked fails as Aborted, once (no command was out). */
static void test_drain_parked(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096 } };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1u << 20 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[4096];
	struct iovec d = { data, sizeof(data) };
	struct nvt_bio bio = { .op = NVT_BIO_READ, .slba = 5, .nlb = 1, .iov = &d, .iov_cnt = 1 };

	(void)state;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(0);				/* no SQE free: it parks */
	nvt_nvme_submit(&bio, &c);
	assert_true(bio.be_priv.parked);
	assert_int_equal(done_calls, 0);
	assert_true(nvt_nvme_drain(&c));
	assert_int_equal(done_calls, 1);
	assert_int_equal(bio.status, NVT_BIO_ABORTED);
	assert_int_equal(bio.err_lba, 5);
	assert_null(c.parked);
	assert_ptr_equal(c.parked_tail, &c.parked);
	free(stage);
}

/*
 * The reviewer's case: a channel going away while a bio has 64 commands out
 * and another is parked; the parked one's abort makes the layer submit
 * again. That bio fails at once as Aborted (it used to be linked behind the
 * finished one and never complete), the big one when its commands are in.
 */
static void test_drain_resubmit(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096, .oncs = NVT_NVME_ONCS_WZ } };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1ull << 32 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[4096];
	struct iovec d = { data, sizeof(data) };
	struct nvt_bio big = { .op = NVT_BIO_WRITE_ZEROES, .slba = 0, .nlb = 65536u * 70 };
	struct nvt_bio p2 = { .op = NVT_BIO_READ, .slba = 1, .nlb = 1, .iov = &d, .iov_cnt = 1 };
	struct nvt_bio late = { .op = NVT_BIO_WRITE_ZEROES, .slba = 0, .nlb = 65536u * 100 };
	struct io_uring_sqe *sqe;

	(void)state;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(NVT_NVME_BIO_OPS_MAX);	/* the big one fills the SQ: p2 parks */
	nvt_nvme_submit(&big, &c);
	nvt_nvme_submit(&p2, &c);
	assert_true(big.be_priv.parked);
	assert_true(p2.be_priv.parked);
	done_resubmit = &late;
	done_chan = &c;
	done_late_bio = &late;
	done_late = 0;
	nvt_nvme_drain_begin(&c);
	assert_null(done_resubmit);			/* p2's abort did submit */
	assert_int_equal(done_late, 1);			/* and that failed at once */
	assert_int_equal(late.status, NVT_BIO_ABORTED);
	assert_false(late.be_priv.parked);
	assert_null(c.parked);
	assert_int_equal(p2.status, NVT_BIO_ABORTED);
	assert_int_equal(big.status, NVT_BIO_ABORTED);
	/* The reap loop: the big one's commands come in; it finishes after its last. */
	while (fake_head != fake_tail) {
		assert_ptr_not_equal(done_bio, &big);
		fake_peek(&sqe);
		fake_head++;
		nvt_nvme_complete(&c.ring, (struct nvt_nvme_op *)(uintptr_t)sqe->user_data, 0);
	}
	assert_ptr_equal(done_bio, &big);
	assert_int_equal(done_calls, 3);
	assert_int_equal(c.nr_free_ops, NVT_NVME_SQ_ENTRIES);
	assert_null(c.parked);
	done_late_bio = NULL;
	free(stage);
}

/*
 * Head-of-line: one Deallocate range of 2^32-1 blocks is 65536 Write Zeroes
 * commands; a 1-block read submitted after it goes out within the first
 * round of completions and completes long before the Deallocate does.
 */
static void test_no_hol(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096, .oncs = NVT_NVME_ONCS_WZ,
						    .dlfeat = 0x09 } };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1ull << 32 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[4096];
	struct iovec d = { data, sizeof(data) };
	struct nvt_bio de = { .op = NVT_BIO_DEALLOCATE, .slba = 0, .nlb = 0xffffffffu };
	struct nvt_bio rd = { .op = NVT_BIO_READ, .slba = 5, .nlb = 1, .iov = &d, .iov_cnt = 1 };
	struct io_uring_sqe *sqe;
	struct nvme_uring_cmd *cmd;
	unsigned long cmds = 0, rd_at = 0, rd_done_at = 0;

	(void)state;
	assert_int_equal(nvt_nvme_limits(&n), 0);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(FAKE_SQ);
	assert_int_equal(nvt_nvme_check(&c, &de), 0);
	nvt_nvme_submit(&de, &c);
	nvt_nvme_submit(&rd, &c);
	while (fake_head != fake_tail) {
		cmd = fake_peek(&sqe);
		if (cmd->opcode == NVT_NVME_OP_READ)
			rd_at = cmds;
		cmds++;
		fake_complete(&c, 0);
		if (!rd_done_at && done_bio == &rd)
			rd_done_at = cmds;
	}
	assert_int_equal(cmds, 65537);
	assert_true(rd_done_at > 0);
	assert_true(rd_at <= NVT_NVME_BIO_OPS_MAX);	/* out with the Deallocate's first wave */
	assert_true(rd_done_at <= NVT_NVME_BIO_OPS_MAX + 1);
	assert_ptr_equal(done_bio, &de);		/* the Deallocate last */
	assert_int_equal(done_calls, 2);
	assert_int_equal(c.nr_free_ops, NVT_NVME_SQ_ENTRIES);
	free(stage);
}

/*
 * The drain gave up (commands never came back): each bio with commands out
 * fails as Aborted exactly once, its ops forget it, and the drain waits
 * long enough for the kernel's abort and reset.
 */
static void test_drain_abandon(void **state)
{
	struct nvt_nvme_ns n = { .fd = 9, .info = { .nsid = 1, .lbs = 4096, .oncs = NVT_NVME_ONCS_WZ } };
	struct nvt_ns ns = { .block_size = 4096, .nblocks = 1ull << 32 };
	struct nvt_nvme_chan c;
	uint8_t *stage, data[4096];
	struct iovec d = { data, sizeof(data) };
	struct nvt_bio big = { .op = NVT_BIO_WRITE_ZEROES, .slba = 0, .nlb = 65536u * 70 };
	struct nvt_bio rd = { .op = NVT_BIO_READ, .slba = 3, .nlb = 1, .iov = &d, .iov_cnt = 1 };

	(void)state;
	assert_true(NVT_NVME_DRAIN_MS >= 2 * NVT_NVME_TIMEOUT_MS + 30000);
	assert_int_equal(nvt_nvme_limits(&n), 0);
	fake_chan(&c, &ns, &n, &stage);
	fake_reset(FAKE_SQ);
	nvt_nvme_submit(&big, &c);
	nvt_nvme_submit(&rd, &c);
	assert_int_equal(rd.be_priv.pending, 1);
	nvt_nvme_drain_begin(&c);		/* big was parked: failed, its commands still out */
	assert_int_equal(done_calls, 0);
	nvt_nvme_abandon(&c);
	assert_int_equal(done_calls, 2);	/* each once, though big had 16 commands out */
	assert_int_equal(big.status, NVT_BIO_ABORTED);
	assert_int_equal(rd.status, NVT_BIO_ABORTED);
	assert_int_equal(rd.err_lba, 3);
	for (unsigned int i = 0; i < NVT_NVME_SQ_ENTRIES; i++)
		assert_null(c.ops[i].bio);
	assert_true(c.nr_free_ops < NVT_NVME_SQ_ENTRIES);	/* the ops stay out: never reused */
	free(stage);
}

/* Command limits and Identify values nvtd refuses. */
static void test_limits_refusals(void **state)
{
	struct nvt_nvme_ns n = { .info = { .lbs = 4096, .ms = 8, .ext = true, .max_xfer = 2048 } };
	struct nvt_nvme_info info;
	struct pages p, q;
	char why[160];

	(void)state;
	/* MDTS under one block: refused at open. */
	assert_int_equal(nvt_nvme_limits(&n), -EINVAL);
	/* FLBAS: bits 3:0 low, bits 6:5 high, bit 4 (MSET) not part of it. */
	assert_int_equal(nvt_nvme_flbas_index(0x03), 3);
	assert_int_equal(nvt_nvme_flbas_index(0x13), 3);
	assert_int_equal(nvt_nvme_flbas_index(0x20 | 0x05), 0x15);
	assert_int_equal(nvt_nvme_flbas_index(0x7f), 0x3f);
	/* NSZE from the device that no byte count holds. */
	load_ns(&p, 3);
	q = p;
	q.ns.nsze = htole64(UINT64_MAX / 4096);
	assert_int_equal(parse(&q, &info, why), -EINVAL);
	assert_non_null(strstr(why, "more bytes than 64 bits count"));
	q.ns.nsze = htole64(UINT64_MAX / (4096 + 16));
	assert_int_equal(parse(&q, &info, why), 0);
}

/* ---- nvt_nvme_check_cfg's messages, from stderr ---- */

static int cap_fd = -1;
static FILE *cap_file;

static void capture_begin(void)
{
	fflush(stderr);
	cap_file = tmpfile();
	assert_non_null(cap_file);
	cap_fd = dup(2);
	dup2(fileno(cap_file), 2);
}

/* What was logged since capture_begin(), in @buf. */
static void capture_end(char *buf, size_t size)
{
	size_t n;

	fflush(stderr);
	dup2(cap_fd, 2);
	close(cap_fd);
	rewind(cap_file);
	n = fread(buf, 1, size - 1, cap_file);
	buf[n] = '\0';
	fclose(cap_file);
}

/* A config that disagrees with the device: each key named at its own line, saying what the device has. */
static void test_check_cfg(void **state)
{
	struct nvt_pi_format dev = { .type = NVT_PI_TYPE1, .guard = NVT_PI_GUARD_CRC64,
				     .block_size = 4096, .md_size = 16 };
	struct nvt_pi_format nopi = { .block_size = 512, .md_size = 8 };
	struct nvt_ns_cfg cfg = { .file = "t.cfg", .line = 3, .block_size = 512,
				  .block_size_line = 4, .pi_line = 5, .pi_type_line = 5,
				  .pi_guard_line = 6, .pi_loc_line = 7, .pi_md_size_line = 8,
				  .given = NVT_NS_GIVEN_BLOCK_SIZE | NVT_NS_GIVEN_PI_TYPE |
					   NVT_NS_GIVEN_PI_GUARD | NVT_NS_GIVEN_PI_LOC |
					   NVT_NS_GIVEN_PI_MD_SIZE };
	struct nvt_nvme_ns n = { 0 };
	char out[2048];

	(void)state;
	cfg.pi = (struct nvt_pi_cfg){ .type = 2, .guard = "crc16", .location = "first",
				      .metadata_size = 8 };
	capture_begin();
	assert_int_equal(nvt_nvme_check_cfg(&cfg, &n, &dev), -EINVAL);
	capture_end(out, sizeof(out));
	assert_non_null(strstr(out, "t.cfg:4: block_size: 512, but the device has 4096+16-byte blocks, PI type 1 (crc64 guard, last)"));
	assert_non_null(strstr(out, "t.cfg:5: pi.type: 2, but"));
	assert_non_null(strstr(out, "t.cfg:6: pi.guard: \"crc16\", but"));
	assert_non_null(strstr(out, "t.cfg:7: pi.location: \"first\", but"));
	assert_non_null(strstr(out, "t.cfg:8: pi.metadata_size: 8, but"));
	/* All agreeing: nothing said. */
	cfg.block_size = 4096;
	cfg.pi = (struct nvt_pi_cfg){ .type = 1, .guard = "crc64", .location = "last",
				      .metadata_size = 16 };
	capture_begin();
	assert_int_equal(nvt_nvme_check_cfg(&cfg, &n, &dev), 0);
	capture_end(out, sizeof(out));
	assert_string_equal(out, "");
	/* A guard for a device without PI: refused at its line, not ignored. */
	cfg.given = NVT_NS_GIVEN_PI_GUARD;
	capture_begin();
	assert_int_equal(nvt_nvme_check_cfg(&cfg, &n, &nopi), -EINVAL);
	capture_end(out, sizeof(out));
	assert_non_null(strstr(out, "t.cfg:6: pi.guard: given, but the device has 512+8-byte blocks, no PI"));
	cfg.given = NVT_NS_GIVEN_PI_LOC;
	capture_begin();
	assert_int_equal(nvt_nvme_check_cfg(&cfg, &n, &nopi), -EINVAL);
	capture_end(out, sizeof(out));
	assert_non_null(strstr(out, "t.cfg:7: pi.location: given"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_caps),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_translation),
		cmocka_unit_test(test_prinfo),
		cmocka_unit_test(test_sqe_fill),
		cmocka_unit_test(test_sqe_native),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_errno),
		cmocka_unit_test(test_probe_lba),
		cmocka_unit_test(test_waves),
		cmocka_unit_test(test_park_fifo),
		cmocka_unit_test(test_error_mid_split),
		cmocka_unit_test(test_probe_resubmit),
		cmocka_unit_test(test_native_ops),
		cmocka_unit_test(test_timeout_cqe),
		cmocka_unit_test(test_drain_parked),
		cmocka_unit_test(test_drain_resubmit),
		cmocka_unit_test(test_no_hol),
		cmocka_unit_test(test_drain_abandon),
		cmocka_unit_test(test_limits_refusals),
		cmocka_unit_test(test_check_cfg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
