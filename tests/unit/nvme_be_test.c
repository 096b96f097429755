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

#include <cmocka.h>

/* The statics: parse, staging, PRINFO, SQE fill. */
#include "../../backend/nvme.c"

/* The namespace layer owns this; no test here completes a bio through it. */
void nvt_bio_backend_done(struct nvt_bio *bio, int err)
{
	(void)bio;
	(void)err;
	fail_msg("no bio completes in this test");
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

	q = p;
	q.ns.nsze = 0;
	assert_int_equal(parse(&q, &info, why), -EINVAL);

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
	assert_int_equal(nvt_nvme_stage_out(&ns, &info, &op), 0);
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
	assert_int_equal(nvt_nvme_stage_in(&ns, &info, &op), 0);
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
	assert_int_equal(nvt_nvme_stage_in(&ns, &info, &op), -EINVAL);
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
	if (io_uring_queue_init_params(4, &c.ring, &params)) {
		print_message("no SQE128/CQE32 rings here (Linux < 5.19): skipped\n");
		skip();
	}
	nvt_pi_ctx_init(&bio.pi, &g64, bio.slba, NVT_PI_PRACT | NVT_PI_CHECK_MASK,
			bio.slba, 0x1111, 0xf0f0);
	c.fixed_bufs = true;
	sqe = io_uring_get_sqe(&c.ring);
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
	sqe = io_uring_get_sqe(&c.ring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->data_len, 2 * (4096 + 16));
	assert_int_equal(cmd->metadata, 0);
	assert_int_equal(cmd->metadata_len, 0);
	io_uring_queue_exit(&c.ring);
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
	if (io_uring_queue_init_params(4, &c.ring, &params)) {
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
	sqe = io_uring_get_sqe(&c.ring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->opcode, 0x08);
	assert_int_equal(cmd->cdw10, 0x00010010);
	assert_int_equal(cmd->cdw11, 1);
	assert_int_equal(cmd->cdw12, 4u | 1u << 25);
	assert_int_equal(cmd->data_len, 0);
	assert_int_equal(sqe->uring_cmd_flags, 0);	/* no buffer, so no fixed one */

	/* Copy: one format-0 descriptor, the destination in CDW10/11, everything else 0. */
	assert_int_equal(nvt_nvme_op_blocks(&c, &cp, 0), 0);	/* one command, no span of its own */
	op.bio = &cp;
	op.opcode = NVT_NVME_OP_COPY;
	op.off = 0;
	op.nlb = 0;
	memset(buf, 0xee, sizeof(buf));
	sqe = io_uring_get_sqe(&c.ring);
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
	sqe = io_uring_get_sqe(&c.ring);
	nvt_nvme_prep(&c, &op, sqe);
	cmd = (struct nvme_uring_cmd *)(void *)sqe->cmd;
	assert_int_equal(cmd->opcode, 0x08);
	assert_int_equal(cmd->cdw10, 77);
	assert_int_equal(cmd->cdw12, 2999u | 1u << 25);
	assert_int_equal(cmd->data_len, 0);
	io_uring_queue_exit(&c.ring);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
