/* SPDX-License-Identifier: BSD-3-Clause */
/* The SCSI command layer over the real namespace layer on RAM namespaces: every CDB's field checks and sense, the pages sd reads, T10 PI in its three shapes, WRITE SAME, UNMAP, COMPARE AND WRITE, EXTENDED COPY. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "nvt/backend.h"
#include "nvt/config.h"
#include "nvt/crc.h"
#include "nvt/poll_group.h"
#include "nvt/scsi.h"
#include "nvt/target.h"
#include "../../target/scsi_internal.h"
#include "../nvt_alloc_count.h"

#define NBLK	4096u
#define BS	512u
#define PIS	8u
static uint64_t g_nblk = NBLK;	/* blocks of the namespaces the next setup opens */

struct env {
	struct nvt_poll_group *pg;
	struct nvt_ns ns[2];
	struct nvt_scsi_lun lun[2];
	struct nvt_scsi_dev dev;
	struct nvt_scsi_dev *as;	/* the controller (I_T nexus) commands come from; NULL: dev */
	struct nvt_scsi_queue q;
	struct nvt_scsi_task *t;
	struct iovec iov[4], pi_iov;
	unsigned int done;
	enum nvt_pi_type type;
};

static unsigned int nr_done;

static void count_done(struct nvt_scsi_task *t)
{
	(void)t;
	nr_done++;
}

static void ns_open(struct env *e, int i, enum nvt_pi_type type, enum nvt_pi_guard guard,
		    uint16_t md)
{
	struct nvt_ns *ns = &e->ns[i];
	struct nvt_ns_cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	ns->nsid = (uint32_t)i + 1;
	ns->be = &nvt_ram_backend_ops;
	ns->nblocks = g_nblk;
	ns->block_size = BS;
	ns->lba_shift = 9;
	ns->md_size = md;
	ns->pi = (struct nvt_pi_format){ .type = type, .guard = guard, .block_size = BS,
					 .md_size = md };
	for (int b = 0; b < 16; b++)
		ns->nguid[b] = (uint8_t)(0x10 * (i + 1) + b);
	assert_int_equal(ns->be->open(ns, &cfg), 0);
	assert_int_equal(nvt_ns_chan_create(ns, e->pg), 0);
	assert_int_equal(nvt_scsi_lun_init(&e->lun[i], ns, (uint16_t)i), 0);
	assert_int_equal(nvt_scsi_register_lun(&e->lun[i]), 0);
	e->dev.luns[i] = &e->lun[i];
}

static int setup_fmt(void **state, enum nvt_pi_type type, enum nvt_pi_guard guard, uint16_t md)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	assert_int_equal(nvt_poll_group_create(&e->pg), 0);
	nvt_poll_group_set_slot(e->pg, 0);
	e->type = type;
	ns_open(e, 0, type, guard, md);
	ns_open(e, 1, type, guard, md);
	e->dev.nr_luns = 2;
	strcpy(e->dev.name, "test");
	nvt_scsi_dev_hostid(&e->dev, "/run/test/vhost.0");
	assert_int_equal(nvt_scsi_queue_init(&e->q, e->pg), 0);
	e->t = calloc(1, sizeof(*e->t));
	assert_non_null(e->t);
	*state = e;
	return 0;
}

static int setup_none(void **state) { return setup_fmt(state, NVT_PI_NONE, NVT_PI_GUARD_CRC16, 0); }
static int setup_t1(void **state) { return setup_fmt(state, NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, 8); }
static int setup_t2(void **state) { return setup_fmt(state, NVT_PI_TYPE2, NVT_PI_GUARD_CRC16, 8); }
static int setup_t3(void **state) { return setup_fmt(state, NVT_PI_TYPE3, NVT_PI_GUARD_CRC16, 8); }
/* LUN 0 Type 1 with 8-byte PI; LUN 1 reopened with another format. */
static int setup_two_fmts(void **state, enum nvt_pi_type type1, enum nvt_pi_guard guard1,
			  uint16_t md1)
{
	struct env *e;

	setup_fmt(state, NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, 8);
	e = *state;
	nvt_scsi_lun_fini(&e->lun[1]);
	nvt_ns_chan_destroy(&e->ns[1], e->pg);
	e->ns[1].be->close(&e->ns[1]);
	memset(&e->ns[1], 0, sizeof(e->ns[1]));
	ns_open(e, 1, type1, guard1, md1);
	return 0;
}

/* LUN 1 without PI: copies across formats. */
static int setup_mixed(void **state) { return setup_two_fmts(state, NVT_PI_NONE, NVT_PI_GUARD_CRC16, 0); }

static int setup_opaque(void **state) { return setup_fmt(state, NVT_PI_NONE, NVT_PI_GUARD_CRC16, 8); }

static int setup_crc64(void **state) { return setup_fmt(state, NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, 16); }

/* LUN 0 Type 1 with 8-byte PI (shown to the guest), LUN 1 Type 1 with the 64-bit guard (served without). */
static int setup_cross_fmt(void **state)
{
	return setup_two_fmts(state, NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, 16);
}

/* 64 bytes of metadata per block: md_buf holds 64 blocks' worth, not 255 (opaque, and PI the guest does not see). */
static int setup_md64(void **state) { return setup_fmt(state, NVT_PI_NONE, NVT_PI_GUARD_CRC16, 64); }
static int setup_t1md64(void **state) { return setup_fmt(state, NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, 64); }

/*
 * Past LBA 2^32 on 64-bit-guard Type 1 namespaces (48-bit ref tags), as
 * the RAM backend maps them lazily: opened without PI (which would fill
 * 64 GiB of metadata with the escape), then made Type 1 (zeroed PI).
 */
#define BIG_NBLK	((1ull << 32) + 64)
static int setup_crc64_big(void **state)
{
	struct env *e;

	g_nblk = BIG_NBLK;
	setup_fmt(state, NVT_PI_NONE, NVT_PI_GUARD_CRC64, 16);
	g_nblk = NBLK;
	e = *state;
	for (int i = 0; i < 2; i++) {
		nvt_scsi_lun_fini(&e->lun[i]);
		e->ns[i].pi.type = NVT_PI_TYPE1;
		assert_int_equal(nvt_scsi_lun_init(&e->lun[i], &e->ns[i], (uint16_t)i), 0);
		assert_int_equal(nvt_scsi_register_lun(&e->lun[i]), 0);
	}
	e->type = NVT_PI_TYPE1;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	for (int i = 0; i < 2; i++) {
		nvt_scsi_lun_fini(&e->lun[i]);
		nvt_ns_chan_destroy(&e->ns[i], e->pg);
		e->ns[i].be->close(&e->ns[i]);
	}
	nvt_scsi_queue_fini(&e->q);
	nvt_poll_group_destroy(e->pg);
	free(e->t);
	free(e);
	return 0;
}

/*
 * Run one command on LUN @l (-1: none there). @buf/@len: the data buffer
 * (@out: data-out), split in two iovecs at @len / 3 so no walk relies on
 * one segment; @pi/@pi_len: the virtio PI buffer. Return: the status.
 */
static uint8_t run_pi(struct env *e, int l, const uint8_t *cdb, size_t cdb_len, bool out, void *buf,
		      uint32_t len, void *pi, uint32_t pi_len)
{
	struct nvt_scsi_task *t = e->t;
	unsigned int before = nr_done;

	memset(t->cdb, 0, sizeof(t->cdb));
	memcpy(t->cdb, cdb, cdb_len);
	t->dev = e->as ? e->as : &e->dev;
	t->lun = l < 0 ? NULL : &e->lun[l];
	t->queue = &e->q;
	e->iov[0] = (struct iovec){ buf, len / 3 };
	e->iov[1] = (struct iovec){ (uint8_t *)buf + len / 3, len - len / 3 };
	t->data_iov = e->iov;
	t->data_cnt = buf ? 2 : 0;
	t->data_len = buf ? len : 0;
	t->to_dev = out;
	e->pi_iov = (struct iovec){ pi, pi_len };
	t->pi_iov = pi ? &e->pi_iov : NULL;
	t->pi_cnt = pi ? 1 : 0;
	t->pi_len = pi ? pi_len : 0;
	t->done = count_done;
	nvt_scsi_exec(t);
	for (int i = 0; i < 16 && nr_done == before; i++)
		nvt_poll_group_poll(e->pg, 0);
	assert_int_equal(nr_done, before + 1);
	return t->status;
}

static uint8_t run(struct env *e, int l, const uint8_t *cdb, size_t cdb_len, bool out, void *buf,
		   uint32_t len)
{
	return run_pi(e, l, cdb, cdb_len, out, buf, len, NULL, 0);
}

/* The sense key, ASC and ASCQ of the last command, from either format. */
static void assert_sense(struct env *e, uint8_t key, uint8_t asc, uint8_t ascq)
{
	const uint8_t *s = e->t->sense;

	assert_int_equal(e->t->status, NVT_SCSI_CHECK_CONDITION);
	if ((s[0] & 0x7f) == 0x72) {
		assert_int_equal(s[1] & 0xf, key);
		assert_int_equal(s[2], asc);
		assert_int_equal(s[3], ascq);
		return;
	}
	assert_int_equal(s[0] & 0x7f, 0x70);
	assert_int_equal(s[2] & 0xf, key);
	assert_int_equal(s[12], asc);
	assert_int_equal(s[13], ascq);
}

/* INFORMATION of the last sense (fixed: VALID set; descriptor: the information descriptor). */
static uint64_t sense_info(struct env *e)
{
	const uint8_t *s = e->t->sense;
	uint64_t v = 0;

	if ((s[0] & 0x7f) == 0x72) {
		assert_int_equal(s[8], 0x00);
		assert_true(s[10] & 0x80);
		for (int i = 0; i < 8; i++)
			v = v << 8 | s[12 + i];
		return v;
	}
	assert_true(s[0] & 0x80);
	for (int i = 0; i < 4; i++)
		v = v << 8 | s[3 + i];
	return v;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v) { put_be16(p, (uint16_t)(v >> 16)); put_be16(p + 2, (uint16_t)v); }
static void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

static void cdb10(uint8_t *c, uint8_t op, uint8_t b1, uint32_t lba, uint16_t nlb)
{
	memset(c, 0, 10);
	c[0] = op;
	c[1] = b1;
	put_be32(c + 2, lba);
	put_be16(c + 7, nlb);
}

static void cdb16(uint8_t *c, uint8_t op, uint8_t b1, uint64_t lba, uint32_t nlb)
{
	memset(c, 0, 16);
	c[0] = op;
	c[1] = b1;
	put_be64(c + 2, lba);
	put_be32(c + 10, nlb);
}

static void fill(uint8_t *b, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* A good T10 PI tuple for block @data at @lba (ref tag @ref, app tag @app). */
static void tuple(uint8_t *p, const uint8_t *data, uint32_t ref, uint16_t app)
{
	put_be16(p, nvt_crc16_t10dif(0, data, BS));
	put_be16(p + 2, app);
	put_be32(p + 4, ref);
}

/* The stored tuple of @lba on namespace @i (RAM: straight from its memory). */
static const uint8_t *stored_md(struct env *e, int i, uint64_t lba, const uint8_t **data)
{
	void *md;
	void *d = nvt_ram_block(&e->ns[i], lba, &md);

	assert_non_null(d);
	if (data)
		*data = d;
	return md;
}

/*
 * Blocks [lba, +n) of namespace @i pass the checks an NVMe host reading
 * them with PRCHK guard + ref tag (ILBRT = SLBA) applies, in the
 * namespace's own format (also what the scrub does).
 */
static void assert_nvme_pi(struct env *e, int i, uint64_t lba, uint32_t n)
{
	struct nvt_pi_ctx ctx;
	struct nvt_pi_err err;
	void *md;
	uint8_t *d = nvt_ram_block(&e->ns[i], lba, &md);
	struct iovec di = { d, (size_t)n * BS }, mi = { md, (size_t)n * e->ns[i].md_size };

	nvt_pi_ctx_init(&ctx, &e->ns[i].pi, lba, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG, lba, 0, 0);
	assert_int_equal(nvt_pi_verify(&ctx, &di, 1, &mi, 1, n, &err), 0);
}

/* ---- the device's description ---- */

static void test_inquiry(void **state)
{
	struct env *e = *state;
	uint8_t c[6] = { 0x12, 0, 0, 0, 255, 0 }, b[256];
	bool pi = e->type != NVT_PI_NONE;

	memset(b, 0xaa, sizeof(b));
	assert_int_equal(run(e, 0, c, 6, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[0], 0x00);		/* direct access block device */
	assert_int_equal(b[2], 0x06);		/* VERSION: SPC-4, so sd does RSOC, RC16, VPD */
	assert_int_equal(b[3] & 0x0f, 0x02);
	assert_int_equal(b[5] & 0x01, pi);	/* PROTECT */
	assert_true(b[5] & 0x08);		/* 3PC */
	assert_true(b[7] & 0x02);		/* CMDQUE */
	assert_int_equal(e->t->resid, sizeof(b) - (b[4] + 5u));
	/* Allocation length shorter than the data: truncated, the rest of the buffer resid. */
	c[4] = 5;
	memset(b, 0xaa, sizeof(b));
	assert_int_equal(run(e, 0, c, 6, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[5], 0xaa);
	assert_int_equal(e->t->resid, sizeof(b) - 5);
	/* No LU: qualifier 011b, type 1Fh, still GOOD; other commands LOGICAL UNIT NOT SUPPORTED. */
	c[4] = 36;
	assert_int_equal(run(e, -1, c, 6, false, b, 36), NVT_SCSI_GOOD);
	assert_int_equal(b[0], 0x7f);
	{
		uint8_t tur[6] = { 0 };

		run(e, -1, tur, 6, false, NULL, 0);
		assert_sense(e, 5, 0x25, 0);
		assert_int_equal(run(e, 0, tur, 6, false, NULL, 0), NVT_SCSI_GOOD);
	}
	/* EVPD 0 with a page code, CMDDT: INVALID FIELD IN CDB with the field pointer. */
	c[2] = 0x80;
	run(e, 0, c, 6, false, b, 36);
	assert_sense(e, 5, 0x24, 0);
	assert_int_equal(e->t->sense[15] & 0xc0, 0xc0);	/* SKSV, C/D = CDB */
	assert_int_equal(be16(e->t->sense + 16), 2);
	c[1] = 0x02;
	c[2] = 0;
	run(e, 0, c, 6, false, b, 36);
	assert_sense(e, 5, 0x24, 0);
}

static void vpd(struct env *e, uint8_t page, uint8_t *b, uint16_t len)
{
	uint8_t c[6] = { 0x12, 0x01, page, (uint8_t)(len >> 8), (uint8_t)len, 0 };

	memset(b, 0xaa, len);
	assert_int_equal(run(e, 0, c, 6, false, b, len), NVT_SCSI_GOOD);
	assert_int_equal(b[1], page);
}

static void test_vpd(void **state)
{
	struct env *e = *state;
	uint8_t b[512], naa[16];
	static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2 };
	uint8_t c[6] = { 0x12, 0x01, 0x99, 0, 255, 0 };

	vpd(e, 0x00, b, 255);
	assert_int_equal(be16(b + 2), sizeof(pages));
	assert_memory_equal(b + 4, pages, sizeof(pages));
	vpd(e, 0x80, b, 255);
	assert_int_equal(be16(b + 2), 32);
	assert_memory_equal(b + 4, e->lun[0].serial, 32);
	/* 83h: one NAA 6 designator, binary, LU association, 16 bytes; from the NGUID, so stable. */
	vpd(e, 0x83, b, 255);
	assert_int_equal(b[4] & 0x0f, 0x01);
	assert_int_equal(b[5], 0x03);
	assert_int_equal(b[7], 16);
	assert_int_equal(b[8] >> 4, 6);
	memcpy(naa, b + 8, 16);
	nvt_scsi_unregister_lun(&e->lun[0]);
	nvt_scsi_lun_fini(&e->lun[0]);
	assert_int_equal(nvt_scsi_lun_init(&e->lun[0], &e->ns[0], 0), 0);
	assert_int_equal(nvt_scsi_register_lun(&e->lun[0]), 0);
	vpd(e, 0x83, b, 255);
	assert_memory_equal(b + 8, naa, 16);
	vpd(e, 0x83, b, 255);
	assert_memory_not_equal(e->lun[1].naa, naa, 16);
	/* 86h: SPT for the type, GRD_CHK, REF_CHK (not Type 3). */
	vpd(e, 0x86, b, 255);
	assert_int_equal(be16(b + 2), 60);
	if (e->type == NVT_PI_TYPE1)
		assert_int_equal(b[4], 0x07);
	else if (e->type == NVT_PI_TYPE2)
		assert_int_equal(b[4], 0x17);
	else if (e->type == NVT_PI_TYPE3)
		assert_int_equal(b[4], 0x26);
	else
		assert_int_equal(b[4], 0);
	/* B0h: the limits sd reads (page length 3Ch, so the unmap and write same fields count). */
	vpd(e, 0xb0, b, 255);
	assert_int_equal(be16(b + 2), 0x3c);
	assert_int_equal(b[4] & 1, 1);				/* WSNZ */
	assert_int_equal(b[5], 255);				/* MAXIMUM COMPARE AND WRITE LENGTH */
	assert_int_equal(be32(b + 8), (8u << 20) / BS);		/* maximum transfer length */
	assert_int_not_equal(be32(b + 20), 0);			/* maximum unmap LBA count */
	assert_int_not_equal(be32(b + 24), 0);			/* ... descriptor count */
	assert_int_equal(be32(b + 28), 8);			/* optimal unmap granularity: 4 KiB */
	assert_int_equal(be64(b + 36), 1u << 22);		/* MAXIMUM WRITE SAME LENGTH */
	vpd(e, 0xb1, b, 255);
	assert_int_equal(be16(b + 4), 1);
	/* B2h: LBPU, LBPWS, LBPWS10, LBPRZ: sd then picks UNMAP and WS16+UNMAP for zeroing. */
	vpd(e, 0xb2, b, 255);
	assert_int_equal(b[5] & 0xe0, 0xe0);
	assert_int_equal((b[5] >> 2) & 7, 1);
	/* 8Fh: the descriptors sg_vpd decodes, and the block -> block and E4h codes. */
	vpd(e, 0x8f, b, 255);
	assert_int_equal(be16(b + 4), 0x0001);
	assert_int_equal(b[4 + 12 + 32 + 4], 2);
	assert_int_equal(b[4 + 12 + 32 + 5], 0x02);
	assert_int_equal(b[4 + 12 + 32 + 6], 0xe4);
	assert_int_equal(be16(b + 2) + 4u, 4 + 12 + 32 + 8 + 8 + 36);
	run(e, 0, c, 6, false, b, 255);
	assert_sense(e, 5, 0x24, 0);
}

static void test_read_capacity(void **state)
{
	struct env *e = *state;
	uint8_t c[16] = { 0x9e, 0x10 }, b[32];
	uint8_t c10[10] = { 0x25 };

	put_be32(c + 10, 32);
	assert_int_equal(run(e, 0, c, 16, false, b, 32), NVT_SCSI_GOOD);
	assert_int_equal(be64(b), NBLK - 1);
	assert_int_equal(be32(b + 8), BS);
	if (e->type) {
		assert_int_equal(b[12] & 1, 1);				/* PROT_EN */
		assert_int_equal((b[12] >> 1) & 7, e->type - 1);	/* P_TYPE */
	} else {
		assert_int_equal(b[12], 0);
	}
	assert_int_equal(b[14] & 0xc0, 0xc0);				/* LBPME, LBPRZ */
	/* Allocation length 12: the rest is resid. */
	put_be32(c + 10, 12);
	assert_int_equal(run(e, 0, c, 16, false, b, 32), NVT_SCSI_GOOD);
	assert_int_equal(e->t->resid, 20);
	/* Another service action of 9Eh: INVALID FIELD IN CDB. */
	c[1] = 0x11;
	run(e, 0, c, 16, false, b, 32);
	assert_sense(e, 5, 0x24, 0);
	assert_int_equal(run(e, 0, c10, 10, false, b, 8), NVT_SCSI_GOOD);
	assert_int_equal(be32(b), NBLK - 1);
	assert_int_equal(be32(b + 4), BS);
}

static void test_crc64_served_without_pi(void **state)
{
	struct env *e = *state;
	uint8_t c[16] = { 0x9e, 0x10 }, b[64], inq[6] = { 0x12, 0, 0, 0, 36, 0 };
	uint8_t w[10], data[4 * BS], back[4 * BS];

	assert_false(e->lun[0].pi);
	put_be32(c + 10, 32);
	assert_int_equal(run(e, 0, c, 16, false, b, 32), NVT_SCSI_GOOD);
	assert_int_equal(b[12] & 1, 0);
	assert_int_equal(run(e, 0, inq, 6, false, b, 36), NVT_SCSI_GOOD);
	assert_int_equal(b[5] & 1, 0);
	/* Data round-trips; the namespace's own PI is generated (an NVMe host reads it checked). */
	fill(data, sizeof(data), 3);
	cdb10(w, 0x2a, 0, 100, 4);
	assert_int_equal(run(e, 0, w, 10, true, data, sizeof(data)), NVT_SCSI_GOOD);
	cdb10(w, 0x28, 0, 100, 4);
	assert_int_equal(run(e, 0, w, 10, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(data, back, sizeof(data));
	assert_int_not_equal(be16(stored_md(e, 0, 100, NULL) + 2), 0xffff);
	assert_nvme_pi(e, 0, 100, 4);
	/* PROTECT on a LUN without PI: INVALID FIELD IN CDB. */
	cdb10(w, 0x28, 0x20, 100, 4);
	run(e, 0, w, 10, false, back, sizeof(back));
	assert_sense(e, 5, 0x24, 0);
}

static void test_mode_sense(void **state)
{
	struct env *e = *state;
	uint8_t c6[6] = { 0x1a, 0, 0x3f, 0, 255, 0 }, c10[10] = { 0x5a, 0x08, 0x0a }, b[256];
	uint32_t off;

	assert_int_equal(run(e, 0, c6, 6, false, b, 255), NVT_SCSI_GOOD);
	assert_int_equal(b[3], 8);			/* one block descriptor */
	assert_int_equal(be32(b + 4 + 4) & 0xffffff, BS);
	off = 4 + 8;
	assert_int_equal(b[off], 0x08);		/* caching */
	assert_int_equal(b[off + 1], 0x12);
	off += 20;
	assert_int_equal(b[off], 0x0a);		/* control */
	assert_int_equal(b[off + 5] & 0x80, 0x80);	/* ATO */
	assert_int_equal(b[0] + 1u, off + 12);
	put_be16(c10 + 7, 255);
	assert_int_equal(run(e, 0, c10, 10, false, b, 255), NVT_SCSI_GOOD);
	assert_int_equal(be16(b + 6), 0);		/* DBD */
	assert_int_equal(b[8], 0x0a);
	assert_int_equal(b[8 + 5] & 0x80, 0x80);
	/* Saved values: SAVING PARAMETERS NOT SUPPORTED; an unknown page: INVALID FIELD. */
	c6[2] = 0xc8;
	run(e, 0, c6, 6, false, b, 255);
	assert_sense(e, 5, 0x39, 0);
	c6[2] = 0x19;
	run(e, 0, c6, 6, false, b, 255);
	assert_sense(e, 5, 0x24, 0);
}

static void test_rsoc(void **state)
{
	struct env *e = *state;
	uint8_t c[12] = { 0xa3, 0x0c, 0x01, 0x93 }, b[1024];

	/* What sd asks (sd_read_write_same): WRITE SAME(16) and (10), INQUIRY, option 1. */
	put_be32(c + 6, 512);
	assert_int_equal(run(e, 0, c, 12, false, b, 512), NVT_SCSI_GOOD);
	assert_int_equal(b[1] & 3, 3);
	assert_int_equal(be16(b + 2), 16);
	assert_int_equal(b[4], 0x93);
	c[3] = 0x41;
	assert_int_equal(run(e, 0, c, 12, false, b, 512), NVT_SCSI_GOOD);
	assert_int_equal(b[1] & 3, 3);
	c[3] = 0x12;
	assert_int_equal(run(e, 0, c, 12, false, b, 512), NVT_SCSI_GOOD);
	assert_int_equal(b[1] & 3, 3);
	c[3] = 0x55;	/* MODE SELECT(10): not supported */
	assert_int_equal(run(e, 0, c, 12, false, b, 512), NVT_SCSI_GOOD);
	assert_int_equal(b[1] & 7, 1);
	/* Option 1 for an opcode with service actions: INVALID FIELD IN CDB. */
	c[3] = 0x9e;
	run(e, 0, c, 12, false, b, 512);
	assert_sense(e, 5, 0x24, 0);
	/* Option 3: opcode and service action. */
	c[2] = 3;
	put_be16(c + 4, 0x10);
	assert_int_equal(run(e, 0, c, 12, false, b, 512), NVT_SCSI_GOOD);
	assert_int_equal(b[1] & 3, 3);
	/* RCTD: a command timeouts descriptor after the usage data (CTDP). */
	c[2] = 0x83;
	assert_int_equal(run(e, 0, c, 12, false, b, 512), NVT_SCSI_GOOD);
	assert_int_equal(b[1], 0x83);
	assert_int_equal(be16(b + 4 + 16), 0x0a);
	assert_int_equal(e->t->resid, 512 - (4 + 16 + 12));
	/* Option 0: every command, 8 bytes each; READ(32) only on a Type 2 LUN. */
	c[2] = 0;
	assert_int_equal(run(e, 0, c, 12, false, b, 1024), NVT_SCSI_GOOD);
	{
		uint32_t len = be32(b);
		bool has32 = false, has28 = false;

		assert_int_equal(len % 8, 0);
		for (uint32_t i = 4; i < 4 + len; i += 8) {
			has32 |= b[i] == 0x7f;
			has28 |= b[i] == 0x28;
		}
		assert_true(has28);
		assert_int_equal(has32, e->type == NVT_PI_TYPE2);
	}
}

static void test_report_luns_tur_sense(void **state)
{
	struct env *e = *state;
	uint8_t c[12] = { 0xa0 }, b[64], rs[6] = { 0x03, 0, 0, 0, 18, 0 };

	put_be32(c + 6, sizeof(b));
	assert_int_equal(run(e, 0, c, 12, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(be32(b), 16);
	assert_int_equal(be64(b + 8), 0);
	assert_int_equal(be64(b + 16), 1ull << 48);
	/* Also without a LU at the address the guest asks. */
	assert_int_equal(run(e, -1, c, 12, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(be32(b), 16);
	/* Allocation length below 16: INVALID FIELD IN CDB. */
	put_be32(c + 6, 8);
	run(e, 0, c, 12, false, b, sizeof(b));
	assert_sense(e, 5, 0x24, 0);
	c[2] = 0x07;
	put_be32(c + 6, 64);
	run(e, 0, c, 12, false, b, sizeof(b));
	assert_sense(e, 5, 0x24, 0);
	/* REQUEST SENSE: no sense pending; without a LU: LOGICAL UNIT NOT SUPPORTED as data. */
	assert_int_equal(run(e, 0, rs, 6, false, b, 18), NVT_SCSI_GOOD);
	assert_int_equal(b[0], 0x70);
	assert_int_equal(b[2], 0);
	assert_int_equal(run(e, -1, rs, 6, false, b, 18), NVT_SCSI_GOOD);
	assert_int_equal(b[12], 0x25);
	rs[1] = 1;
	assert_int_equal(run(e, 0, rs, 6, false, b, 18), NVT_SCSI_GOOD);
	assert_int_equal(b[0], 0x72);
	/* START STOP UNIT: GOOD. An unknown opcode: INVALID COMMAND OPERATION CODE. */
	{
		uint8_t ssu[6] = { 0x1b, 0, 0, 0, 1, 0 }, bad[6] = { 0x15 };

		assert_int_equal(run(e, 0, ssu, 6, false, NULL, 0), NVT_SCSI_GOOD);
		run(e, 0, bad, 6, false, b, 18);
		assert_sense(e, 5, 0x20, 0);
	}
}

/* ---- READ and WRITE ---- */

static void test_rw_plain(void **state)
{
	struct env *e = *state;
	uint8_t c[16], data[16 * BS], back[16 * BS + 64];

	/* Every size of CDB writes and reads back the same bytes. */
	fill(data, sizeof(data), 1);
	cdb10(c, 0x2a, 0x08, 10, 16);	/* FUA */
	assert_int_equal(run(e, 0, c, 10, true, data, sizeof(data)), NVT_SCSI_GOOD);
	assert_int_equal(e->t->resid, 0);
	cdb16(c, 0x88, 0, 10, 16);
	memset(back, 0, sizeof(back));
	assert_int_equal(run(e, 0, c, 16, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(data, back, sizeof(data));
	assert_int_equal(e->t->resid, 64);		/* oversized buffer: resid, not an error */
	{
		uint8_t c6[6] = { 0x08, 0, 0, 12, 2, 0 }, c12[12] = { 0xa8 };

		assert_int_equal(run(e, 0, c6, 6, false, back, 2 * BS), NVT_SCSI_GOOD);
		assert_memory_equal(data + 2 * BS, back, 2 * BS);
		put_be32(c12 + 2, 11);
		put_be32(c12 + 6, 3);
		assert_int_equal(run(e, 0, c12, 12, false, back, 3 * BS), NVT_SCSI_GOOD);
		assert_memory_equal(data + BS, back, 3 * BS);
		/* WRITE(6) of 256 blocks (length 0). */
		c6[0] = 0x0a;
		c6[4] = 0;
		{
			uint8_t *big = calloc(256, BS);

			assert_int_equal(run(e, 0, c6, 6, true, big, 256 * BS), NVT_SCSI_GOOD);
			free(big);
		}
	}
	/* Out of range (and overflowing): LBA OUT OF RANGE; nothing written. */
	{
		uint8_t zero[BS] = { 0 }, md_before[64];
		const uint8_t *d, *m = stored_md(e, 0, NBLK - 1, &d);
		size_t ms = e->ns[0].md_size;

		if (ms)
			memcpy(md_before, m, ms);
		cdb16(c, 0x8a, 0, NBLK - 1, 2);
		run(e, 0, c, 16, true, data, 2 * BS);
		assert_sense(e, 5, 0x21, 0);
		cdb16(c, 0x8a, 0, UINT64_MAX, 2);
		run(e, 0, c, 16, true, data, 2 * BS);
		assert_sense(e, 5, 0x21, 0);
		assert_memory_equal(d, zero, BS);
		if (ms)
			assert_memory_equal(m, md_before, ms);
	}
	cdb16(c, 0x88, 0, NBLK, 0);
	assert_int_equal(run(e, 0, c, 16, false, NULL, 0), NVT_SCSI_GOOD);	/* 0 blocks */
	/* A buffer shorter than the CDB moves, or the wrong direction: INVALID FIELD IN COMMAND IU. */
	cdb10(c, 0x2a, 0, 0, 4);
	run(e, 0, c, 10, true, data, 4 * BS - 1);
	assert_sense(e, 5, 0x0e, 0x03);
	assert_int_equal(e->t->resid, 4 * BS - 1);
	run(e, 0, c, 10, false, data, 4 * BS);
	assert_sense(e, 5, 0x0e, 0x03);
	/* More than the maximum transfer length: INVALID FIELD IN CDB, pointing at TRANSFER LENGTH. */
	cdb16(c, 0x88, 0, 0, (8u << 20) / BS + 1);
	run(e, 0, c, 16, false, back, sizeof(back));
	assert_sense(e, 5, 0x24, 0);
	assert_int_equal(be16(e->t->sense + 16), 10);
	c[0] = 0x8a;
	run(e, 0, c, 16, true, back, sizeof(back));
	assert_sense(e, 5, 0x24, 0);
	assert_int_equal(be16(e->t->sense + 16), 10);
	{
		uint8_t c12[12] = { 0xa8 };

		put_be32(c12 + 6, (8u << 20) / BS + 1);
		run(e, 0, c12, 12, false, back, sizeof(back));
		assert_sense(e, 5, 0x24, 0);
		assert_int_equal(be16(e->t->sense + 16), 6);
		c12[0] = 0xaa;
		run(e, 0, c12, 12, true, back, sizeof(back));
		assert_sense(e, 5, 0x24, 0);
		assert_int_equal(be16(e->t->sense + 16), 6);
	}
	/* RDPROTECT 110b: reserved (or, without PI, not offered). */
	cdb10(c, 0x28, 0xc0, 0, 1);
	run(e, 0, c, 10, false, back, BS);
	assert_sense(e, 5, 0x24, 0);
	/* READ(32) anywhere but a Type 2 LUN: INVALID COMMAND OPERATION CODE. */
	if (e->type != NVT_PI_TYPE2) {
		uint8_t c32[32] = { 0x7f };

		c32[7] = 0x18;
		put_be16(c32 + 8, 0x0009);
		run(e, 0, c32, 32, false, back, BS);
		assert_sense(e, 5, 0x20, 0);
	}
	/* SYNCHRONIZE CACHE: GOOD in range, LBA OUT OF RANGE outside. */
	cdb10(c, 0x35, 0, 0, 0);
	assert_int_equal(run(e, 0, c, 10, false, NULL, 0), NVT_SCSI_GOOD);
	cdb16(c, 0x91, 0, NBLK + 1, 0);
	run(e, 0, c, 16, false, NULL, 0);
	assert_sense(e, 5, 0x21, 0);
}


/* ---- T10 PI ---- */

#define T2_OFF	0x1000u		/* Type 2 tests: the CDB's expected initial LBRT is not the LBA */

/* A READ/WRITE of LUN 0 with PROTECT @prot: 10-byte, or 32-byte on Type 2 (@app/@mask there). */
static size_t rw_cdb(struct env *e, uint8_t *c, bool write, uint64_t lba, uint32_t nlb, uint8_t prot,
		     uint16_t app, uint16_t mask)
{
	if (e->type != NVT_PI_TYPE2 || !prot) {
		cdb10(c, write ? 0x2a : 0x28, (uint8_t)(prot << 5), (uint32_t)lba, (uint16_t)nlb);
		return 10;
	}
	memset(c, 0, 32);
	c[0] = 0x7f;
	c[7] = 0x18;
	put_be16(c + 8, write ? 0x000b : 0x0009);
	c[10] = (uint8_t)(prot << 5);
	put_be64(c + 12, lba);
	put_be32(c + 20, (uint32_t)lba + T2_OFF);
	put_be16(c + 24, app);
	put_be16(c + 26, mask);
	put_be32(c + 28, nlb);
	return 32;
}

/* The ref tag the guest puts in block @lba (what the CDB's type expects). */
static uint32_t ref_of(struct env *e, uint64_t lba)
{
	return e->type == NVT_PI_TYPE2 ? (uint32_t)lba + T2_OFF : e->type == NVT_PI_TYPE3 ? 0x5555 :
	       (uint32_t)lba;
}

static void test_pi_separate(void **state)
{
	struct env *e = *state;
	uint8_t c[32], data[4 * BS], back[4 * BS], pi[4 * PIS], piback[4 * PIS];
	const uint64_t lba = 40;
	size_t n;

	fill(data, sizeof(data), 9);
	for (int i = 0; i < 4; i++)
		tuple(pi + i * PIS, data + i * BS, ref_of(e, lba + i), 0x1234);
	/* Shape 1: the virtio PI buffer, checked and kept as the guest sent it (its app tag too). */
	n = rw_cdb(e, c, true, lba, 4, 1, 0, 0);
	assert_int_equal(run_pi(e, 0, c, n, true, data, sizeof(data), pi, sizeof(pi)), NVT_SCSI_GOOD);
	assert_memory_equal(stored_md(e, 0, lba + 3, NULL), pi + 3 * PIS, PIS);
	n = rw_cdb(e, c, false, lba, 4, 1, 0, 0);
	assert_int_equal(run_pi(e, 0, c, n, false, back, sizeof(back), piback, sizeof(piback)),
			 NVT_SCSI_GOOD);
	assert_memory_equal(back, data, sizeof(data));
	assert_memory_equal(piback, pi, sizeof(pi));
	/* A bad guard in block 2: ABORTED COMMAND 10h/01h, INFORMATION its LBA, nothing stored. */
	memcpy(back, data, sizeof(data));
	back[2 * BS + 9] ^= 0x20;
	n = rw_cdb(e, c, true, lba, 4, 1, 0, 0);
	run_pi(e, 0, c, n, true, back, sizeof(back), pi, sizeof(pi));
	assert_sense(e, 0xb, 0x10, 0x01);
	assert_int_equal(sense_info(e), lba + 2);
	{
		const uint8_t *d;

		stored_md(e, 0, lba + 2, &d);
		assert_memory_equal(d, data + 2 * BS, BS);
	}
	/* A bad ref tag in block 1: 10h/03h (Type 3 does not check ref tags). */
	put_be32(pi + PIS + 4, 0xdead);
	n = rw_cdb(e, c, true, lba, 4, 1, 0, 0);
	if (e->type == NVT_PI_TYPE3) {
		assert_int_equal(run_pi(e, 0, c, n, true, data, sizeof(data), pi, sizeof(pi)),
				 NVT_SCSI_GOOD);
	} else {
		run_pi(e, 0, c, n, true, data, sizeof(data), pi, sizeof(pi));
		assert_sense(e, 0xb, 0x10, 0x03);
		assert_int_equal(sense_info(e), lba + 1);
	}
	put_be32(pi + PIS + 4, ref_of(e, lba + 1));
	assert_int_equal(run_pi(e, 0, c, n, true, data, sizeof(data), pi, sizeof(pi)), NVT_SCSI_GOOD);
	/* WRPROTECT 011b: nothing checked, the PI stored as sent. */
	put_be16(pi, 0xbeef);
	n = rw_cdb(e, c, true, lba, 4, 3, 0, 0);
	assert_int_equal(run_pi(e, 0, c, n, true, data, sizeof(data), pi, sizeof(pi)), NVT_SCSI_GOOD);
	/* ... and a checked read of it fails on the guard: stored corruption is reported, not served. */
	n = rw_cdb(e, c, false, lba, 4, 1, 0, 0);
	run_pi(e, 0, c, n, false, back, sizeof(back), piback, sizeof(piback));
	assert_sense(e, 0xb, 0x10, 0x01);
	assert_int_equal(sense_info(e), lba);
	/* A PI buffer shorter than 8 bytes a block: INVALID FIELD IN COMMAND IU. */
	run_pi(e, 0, c, n, false, back, sizeof(back), piback, sizeof(piback) - 1);
	assert_sense(e, 5, 0x0e, 0x03);
	if (e->type == NVT_PI_TYPE2) {
		/* The 32-byte CDB's app tag is checked under its mask: 10h/02h. */
		tuple(pi, data, ref_of(e, lba), 0x1234);
		n = rw_cdb(e, c, true, lba, 4, 1, 0, 0);
		assert_int_equal(run_pi(e, 0, c, n, true, data, sizeof(data), pi, sizeof(pi)),
				 NVT_SCSI_GOOD);
		n = rw_cdb(e, c, false, lba, 4, 1, 0x1234, 0xffff);
		assert_int_equal(run_pi(e, 0, c, n, false, back, sizeof(back), piback,
					sizeof(piback)), NVT_SCSI_GOOD);
		n = rw_cdb(e, c, false, lba, 4, 1, 0x4321, 0xff00);
		run_pi(e, 0, c, n, false, back, sizeof(back), piback, sizeof(piback));
		assert_sense(e, 0xb, 0x10, 0x02);
		assert_int_equal(sense_info(e), lba);
		/* PROTECT in a 10-byte CDB on Type 2: INVALID COMMAND OPERATION CODE. */
		cdb10(c, 0x28, 0x20, (uint32_t)lba, 4);
		run_pi(e, 0, c, 10, false, back, sizeof(back), piback, sizeof(piback));
		assert_sense(e, 5, 0x20, 0);
	}
}

static void test_pi_interleaved(void **state)
{
	struct env *e = *state;
	uint8_t c[32], ext[3 * (BS + PIS)], back[3 * (BS + PIS)];
	const uint64_t lba = 70;
	size_t n;

	/* Shape 3 (SG_IO): no PI buffer, data and PI interleaved, told apart by the length. */
	for (int i = 0; i < 3; i++) {
		uint8_t *b = ext + i * (BS + PIS);

		fill(b, BS, (uint8_t)(i + 40));
		tuple(b + BS, b, ref_of(e, lba + i), 0x0042);
	}
	n = rw_cdb(e, c, true, lba, 3, 1, 0, 0);
	assert_int_equal(run(e, 0, c, n, true, ext, sizeof(ext)), NVT_SCSI_GOOD);
	assert_int_equal(e->t->resid, 0);
	assert_memory_equal(stored_md(e, 0, lba + 1, NULL), ext + (BS + PIS) + BS, PIS);
	n = rw_cdb(e, c, false, lba, 3, 1, 0, 0);
	assert_int_equal(run(e, 0, c, n, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, ext, sizeof(ext));
	/* A bad guard in the third block. */
	ext[2 * (BS + PIS) + 5] ^= 0x40;
	n = rw_cdb(e, c, true, lba, 3, 1, 0, 0);
	run(e, 0, c, n, true, ext, sizeof(ext));
	assert_sense(e, 0xb, 0x10, 0x01);
	assert_int_equal(sense_info(e), lba + 2);
}

static void test_pi_insert_strip(void **state)
{
	struct env *e = *state;
	uint8_t c[32], data[700 * BS / 100], back[sizeof(data)];
	uint8_t *big = malloc(600 * BS), *bigback = malloc(600 * BS);
	const uint64_t lba = 200;
	size_t n;

	/* Shape 2: PROTECT set, data-only length: inserted on write, checked and stripped on read. */
	fill(data, sizeof(data), 5);
	n = rw_cdb(e, c, true, lba, 7, 1, 0, 0);
	assert_int_equal(run(e, 0, c, n, true, data, sizeof(data)), NVT_SCSI_GOOD);
	for (int i = 0; i < 7; i++) {
		const uint8_t *d, *m = stored_md(e, 0, lba + i, &d);

		assert_int_equal(be16(m), nvt_crc16_t10dif(0, data + i * BS, BS));
		if (e->type == NVT_PI_TYPE2)
			assert_int_equal(be32(m + 4), lba + i + T2_OFF);
		else if (e->type == NVT_PI_TYPE1)
			assert_int_equal(be32(m + 4), lba + i);
	}
	n = rw_cdb(e, c, false, lba, 7, 1, 0, 0);
	assert_int_equal(run(e, 0, c, n, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, data, sizeof(data));
	/* PROTECT 0 on a PI LUN: the same, in chunks of md_buf (600 blocks > 512 tuples). */
	fill(big, 600 * BS, 11);
	cdb10(c, 0x2a, 0, 1000, 600);
	assert_int_equal(run(e, 0, c, 10, true, big, 600 * BS), NVT_SCSI_GOOD);
	assert_int_equal(be16(stored_md(e, 0, 1599, NULL)), nvt_crc16_t10dif(0, big + 599 * BS, BS));
	if (e->type != NVT_PI_TYPE3)
		assert_int_equal(be32(stored_md(e, 0, 1599, NULL) + 4), 1599);
	cdb10(c, 0x28, 0, 1000, 600);
	assert_int_equal(run(e, 0, c, 10, false, bigback, 600 * BS), NVT_SCSI_GOOD);
	assert_memory_equal(big, bigback, 600 * BS);
	/* Corruption at rest in block 1555 fails the read there: 10h/01h, INFORMATION 1555. */
	{
		const uint8_t *d;

		stored_md(e, 0, 1555, &d);
		((uint8_t *)d)[17] ^= 1;
	}
	run(e, 0, c, 10, false, bigback, 600 * BS);
	assert_sense(e, 0xb, 0x10, 0x01);
	assert_int_equal(sense_info(e), 1555);
	/* RDPROTECT 011b reads it without checking. */
	n = rw_cdb(e, c, false, 1555, 1, 3, 0, 0);
	assert_int_equal(run(e, 0, c, n, false, bigback, BS), NVT_SCSI_GOOD);
	/* VERIFY finds it too; BYTCHK 1 compares and gives the first differing byte. */
	cdb10(c, 0x2f, 0, 1550, 10);
	run(e, 0, c, 10, false, NULL, 0);
	assert_sense(e, 0xb, 0x10, 0x01);
	assert_int_equal(sense_info(e), 1555);
	cdb10(c, 0x2f, 0x02, 1000, 4);
	assert_int_equal(run(e, 0, c, 10, true, big, 4 * BS), NVT_SCSI_GOOD);
	big[1000] ^= 0x80;
	run(e, 0, c, 10, true, big, 4 * BS);
	assert_sense(e, 0xe, 0x1d, 0);
	assert_int_equal(sense_info(e), 1000);
	cdb10(c, 0x2f, 0x06, 1000, 4);
	run(e, 0, c, 10, true, big, 4 * BS);
	assert_sense(e, 5, 0x24, 0);
	free(big);
	free(bigback);
}

static void test_sense_descriptor(void **state)
{
	struct env *e = *state;

	/* INFORMATION past 32 bits: still fixed format (D_SENSE 0), VALID 0, no INFORMATION. */
	nvt_scsi_fail(e->t, 0xb, 0x1001, true, 0x123456789ull);
	assert_sense(e, 0xb, 0x10, 0x01);
	assert_int_equal(e->t->sense[0], 0x70);
	assert_int_equal(e->t->sense_len, 18);
	assert_int_equal(be32(e->t->sense + 3), 0);
	nvt_scsi_fail(e->t, 0xb, 0x1003, true, 77);
	assert_int_equal(e->t->sense[0], 0xf0);
	assert_int_equal(e->t->sense_len, 18);
	assert_int_equal(sense_info(e), 77);
}

/* ---- WRITE SAME, UNMAP, COMPARE AND WRITE ---- */

static void test_write_same(void **state)
{
	struct env *e = *state;
	uint8_t c[16], blk[BS + PIS], back[BS];
	const uint64_t lba = 300;
	const uint32_t nlb = 700;	/* more than one chunk of iovecs and of tuples */

	fill(blk, BS, 33);
	cdb16(c, 0x93, 0, lba, nlb);
	assert_int_equal(run(e, 0, c, 16, true, blk, BS), NVT_SCSI_GOOD);
	for (uint32_t i = 0; i < nlb; i += 99) {
		const uint8_t *d, *m = stored_md(e, 0, lba + i, &d);

		assert_memory_equal(d, blk, BS);
		if (e->lun[0].pi) {
			assert_int_equal(be16(m), nvt_crc16_t10dif(0, blk, BS));
			assert_int_equal(be32(m + 4), e->type == NVT_PI_TYPE3 ? 0 : lba + i);
		}
	}
	/* Read back checked through the layer (PROTECT 0: checked and stripped). */
	cdb10(c, 0x28, 0, (uint32_t)(lba + nlb - 1), 1);
	assert_int_equal(run(e, 0, c, 10, false, back, BS), NVT_SCSI_GOOD);
	assert_memory_equal(back, blk, BS);
	/* UNMAP bit with zeroes: deallocated, reads zeroes (LBPRZ), escape PI at rest. */
	memset(blk, 0, sizeof(blk));
	cdb16(c, 0x93, 0x08, lba, 16);
	assert_int_equal(run(e, 0, c, 16, true, blk, BS), NVT_SCSI_GOOD);
	if (e->lun[0].pi)
		assert_int_equal(be16(stored_md(e, 0, lba + 3, NULL) + 2), 0xffff);
	cdb10(c, 0x28, 0, (uint32_t)lba + 3, 1);
	assert_int_equal(run(e, 0, c, 10, false, back, BS), NVT_SCSI_GOOD);
	assert_memory_equal(back, blk, BS);
	/* WRITE SAME(10) of zeroes without UNMAP: written zeroes, with valid PI. */
	cdb10(c, 0x41, 0, (uint32_t)lba + 20, 8);
	assert_int_equal(run(e, 0, c, 10, true, blk, BS), NVT_SCSI_GOOD);
	if (e->lun[0].pi) {
		assert_int_equal(be16(stored_md(e, 0, lba + 21, NULL)), nvt_crc16_t10dif(0, blk, BS));
		assert_int_not_equal(be16(stored_md(e, 0, lba + 21, NULL) + 2), 0xffff);
	}
	/* NDOB: no data-out at all; the blocks (which held the pattern) read back as zeroes. */
	cdb16(c, 0x93, 0x01, lba + 40, 4);
	assert_int_equal(run(e, 0, c, 16, false, NULL, 0), NVT_SCSI_GOOD);
	for (uint32_t i = 0; i < 4; i++) {
		const uint8_t *d;

		stored_md(e, 0, lba + 40 + i, &d);
		assert_memory_equal(d, blk, BS);	/* blk is zeroes here */
		cdb10(c, 0x28, 0, (uint32_t)(lba + 40 + i), 1);
		assert_int_equal(run(e, 0, c, 10, false, back, BS), NVT_SCSI_GOOD);
		assert_memory_equal(back, blk, BS);
	}
	if (e->lun[0].pi)
		assert_int_equal(be16(stored_md(e, 0, lba + 41, NULL)), nvt_crc16_t10dif(0, blk, BS));
	/* Field checks: 0 blocks (WSNZ), too many, ANCHOR, range, short payload. */
	cdb16(c, 0x93, 0, lba, 0);
	run(e, 0, c, 16, true, blk, BS);
	assert_sense(e, 5, 0x24, 0);
	cdb16(c, 0x93, 0, 0, (1u << 22) + 1);
	run(e, 0, c, 16, true, blk, BS);
	assert_sense(e, 5, 0x24, 0);
	cdb16(c, 0x93, 0x10, lba, 1);
	run(e, 0, c, 16, true, blk, BS);
	assert_sense(e, 5, 0x24, 0);
	cdb16(c, 0x93, 0, NBLK - 2, 3);
	run(e, 0, c, 16, true, blk, BS);
	assert_sense(e, 5, 0x21, 0);
	cdb16(c, 0x93, 0, lba, 2);
	run(e, 0, c, 16, true, blk, BS - 1);
	assert_sense(e, 5, 0x0e, 0x03);
	if (e->lun[0].pi && e->type == NVT_PI_TYPE1) {
		/* WRPROTECT 001b: the payload's PI checked; its app tag goes to every block. */
		fill(blk, BS, 90);
		tuple(blk + BS, blk, (uint32_t)lba, 0x0077);
		cdb16(c, 0x93, 0x20, lba, 5);
		assert_int_equal(run(e, 0, c, 16, true, blk, BS + PIS), NVT_SCSI_GOOD);
		assert_int_equal(be16(stored_md(e, 0, lba + 4, NULL) + 2), 0x0077);
		assert_int_equal(be32(stored_md(e, 0, lba + 4, NULL) + 4), lba + 4);
		blk[3] ^= 1;
		run(e, 0, c, 16, true, blk, BS + PIS);
		assert_sense(e, 0xb, 0x10, 0x01);
		assert_int_equal(sense_info(e), lba);
	}
	if (e->lun[0].pi && e->type == NVT_PI_TYPE3) {
		/* Type 3, WRPROTECT 001b: both tags are the application client's; every block keeps them. */
		fill(blk, BS, 5);
		tuple(blk + BS, blk, 0x5555, 0x77);
		cdb16(c, 0x93, 0x20, lba, 3);
		assert_int_equal(run(e, 0, c, 16, true, blk, BS + PIS), NVT_SCSI_GOOD);
		for (uint32_t i = 0; i < 3; i++) {
			assert_int_equal(be16(stored_md(e, 0, lba + i, NULL) + 2), 0x77);
			assert_int_equal(be32(stored_md(e, 0, lba + i, NULL) + 4), 0x5555);
		}
		/* A zero payload with a ref tag of its own is written, not deallocated. */
		memset(blk, 0, BS);
		tuple(blk + BS, blk, 0x6666, 0);
		cdb16(c, 0x93, 0x28, lba, 2);
		assert_int_equal(run(e, 0, c, 16, true, blk, BS + PIS), NVT_SCSI_GOOD);
		assert_int_equal(be32(stored_md(e, 0, lba + 1, NULL) + 4), 0x6666);
		assert_int_equal(be16(stored_md(e, 0, lba + 1, NULL) + 2), 0);
	}
}

static void test_unmap(void **state)
{
	struct env *e = *state;
	uint8_t c[10] = { 0x42 }, p[8 + 2 * 16], data[8 * BS], back[8 * BS], zero[8 * BS];

	memset(zero, 0, sizeof(zero));
	fill(data, sizeof(data), 4);
	cdb10(c, 0x2a, 0, 100, 8);
	assert_int_equal(run(e, 0, c, 10, true, data, sizeof(data)), NVT_SCSI_GOOD);
	cdb10(c, 0x2a, 0, 500, 8);
	assert_int_equal(run(e, 0, c, 10, true, data, sizeof(data)), NVT_SCSI_GOOD);
	/* What sd sends: one descriptor in a 24-byte list; here two. */
	memset(p, 0, sizeof(p));
	put_be16(p, sizeof(p) - 2);
	put_be16(p + 2, 32);
	put_be64(p + 8, 100);
	put_be32(p + 16, 8);
	put_be64(p + 24, 502);
	put_be32(p + 32, 2);
	memset(c, 0, sizeof(c));
	c[0] = 0x42;
	put_be16(c + 7, sizeof(p));
	assert_int_equal(run(e, 0, c, 10, true, p, sizeof(p)), NVT_SCSI_GOOD);
	cdb10(c, 0x28, 0, 100, 8);
	assert_int_equal(run(e, 0, c, 10, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, zero, sizeof(zero));
	cdb10(c, 0x28, 0, 500, 8);
	assert_int_equal(run(e, 0, c, 10, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, data, 2 * BS);
	assert_memory_equal(back + 2 * BS, zero, 2 * BS);
	assert_memory_equal(back + 4 * BS, data + 4 * BS, 4 * BS);
	/* A descriptor past the end: LBA OUT OF RANGE, nothing unmapped. */
	put_be64(p + 24, NBLK - 1);
	memset(c, 0, sizeof(c));
	c[0] = 0x42;
	put_be16(c + 7, sizeof(p));
	run(e, 0, c, 10, true, p, sizeof(p));
	assert_sense(e, 5, 0x21, 0);
	/* A list shorter than its header: PARAMETER LIST LENGTH ERROR; ANCHOR: INVALID FIELD. */
	put_be16(c + 7, 6);
	run(e, 0, c, 10, true, p, sizeof(p));
	assert_sense(e, 5, 0x1a, 0);
	c[1] = 1;
	put_be16(c + 7, sizeof(p));
	run(e, 0, c, 10, true, p, sizeof(p));
	assert_sense(e, 5, 0x24, 0);
	c[1] = 0;
	put_be16(c + 7, 0);
	assert_int_equal(run(e, 0, c, 10, true, NULL, 0), NVT_SCSI_GOOD);
}

/*
 * NVMe reservations reach the guest: with an NVMe host holding Write
 * Exclusive, a guest (never a registrant) reads but its WRITE, WRITE SAME
 * and COMPARE AND WRITE end in RESERVATION CONFLICT with nothing written;
 * Exclusive Access stops its reads too; released, it writes again.
 */
static void test_nvme_reservations(void **state)
{
	static const uint8_t host[16] = { 0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	struct env *e = *state;
	struct nvt_resv *r = &e->ns[0].resv;
	uint8_t c[16], a[2 * BS], b[2 * BS], caw[4 * BS], back[2 * BS];

	fill(a, sizeof(a), 3);
	fill(b, sizeof(b), 4);
	cdb10(c, 0x2a, 0, 40, 2);
	assert_int_equal(run(e, 0, c, 10, true, a, sizeof(a)), NVT_SCSI_GOOD);
	assert_int_equal(nvt_resv_register(r, host, 0, 0, 0x77, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(r, host, (uint32_t)NVME_RESERVATION_RTYPE_WE << 8, 0x77, 0,
					  NULL), NVT_ST_OK);
	cdb10(c, 0x2a, 0, 40, 2);
	assert_int_equal(run(e, 0, c, 10, true, b, sizeof(b)), NVT_SCSI_RESERVATION_CONFLICT);
	memset(c, 0, 16);
	c[0] = 0x93;				/* WRITE SAME(16) */
	put_be64(c + 2, 40);
	put_be32(c + 10, 2);
	assert_int_equal(run(e, 0, c, 16, true, b, BS), NVT_SCSI_RESERVATION_CONFLICT);
	memcpy(caw, a, sizeof(a));
	memcpy(caw + sizeof(a), b, sizeof(b));
	memset(c, 0, 16);
	c[0] = 0x89;				/* COMPARE AND WRITE */
	put_be64(c + 2, 40);
	c[13] = 2;
	assert_int_equal(run(e, 0, c, 16, true, caw, sizeof(caw)), NVT_SCSI_RESERVATION_CONFLICT);
	cdb10(c, 0x28, 0, 40, 2);
	assert_int_equal(run(e, 0, c, 10, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, a, sizeof(a));	/* nothing of the guest's landed */
	/* Exclusive Access (the holder changes its type): reads stop too. */
	assert_int_equal(nvt_resv_acquire(r, host, 1u | (uint32_t)NVME_RESERVATION_RTYPE_EA << 8,
					  0x77, 0x77, NULL), NVT_ST_OK);
	assert_int_equal(run(e, 0, c, 10, false, back, sizeof(back)), NVT_SCSI_RESERVATION_CONFLICT);
	/* The other namespace is not reserved. */
	assert_int_equal(run(e, 1, c, 10, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_int_equal(nvt_resv_release(r, host, (uint32_t)NVME_RESERVATION_RTYPE_EA << 8, 0x77, NULL),
			 NVT_ST_OK);
	cdb10(c, 0x2a, 0, 40, 2);
	assert_int_equal(run(e, 0, c, 10, true, b, sizeof(b)), NVT_SCSI_GOOD);
}

/* ---- PERSISTENT RESERVE ---- */

/* A second vhost controller: another I_T nexus onto the same LUNs. */
static void pr_dev2(struct env *e, struct nvt_scsi_dev *d2)
{
	memset(d2, 0, sizeof(*d2));
	for (int i = 0; i < 2; i++)
		d2->luns[i] = &e->lun[i];
	d2->nr_luns = 2;
	strcpy(d2->name, "test2");
	nvt_scsi_dev_hostid(d2, "/run/test/vhost.1");
}

/* PERSISTENT RESERVE OUT @sa, LU scope, SCSI type @type, from controller @as (NULL: e->dev); @plen/@len: list length and data-out bytes. */
static uint8_t pr_out_len(struct env *e, struct nvt_scsi_dev *as, uint8_t sa, uint8_t type,
			  uint64_t key, uint64_t sakey, uint8_t b20, uint32_t plen, uint32_t len)
{
	uint8_t c[10] = { 0x5f, sa, type }, p[32] = { 0 };
	uint8_t st;

	put_be32(c + 5, plen);
	put_be64(p, key);
	put_be64(p + 8, sakey);
	p[20] = b20;
	e->as = as;
	st = run(e, 0, c, sizeof(c), true, p, len);
	e->as = NULL;
	return st;
}

static uint8_t pr_out(struct env *e, struct nvt_scsi_dev *as, uint8_t sa, uint8_t type, uint64_t key,
		      uint64_t sakey)
{
	return pr_out_len(e, as, sa, type, key, sakey, 0, 24, 24);
}

/* PERSISTENT RESERVE IN @sa with allocation length @alloc into @buf (@len bytes). */
static uint8_t pr_in(struct env *e, uint8_t sa, uint16_t alloc, void *buf, uint32_t len)
{
	uint8_t c[10] = { 0x5e, sa };

	put_be16(c + 7, alloc);
	return run(e, 0, c, sizeof(c), false, buf, len);
}

/* READ KEYS: the generation; the keys into @keys (at most 8). Return: how many. */
static unsigned int pr_keys(struct env *e, uint32_t *gen, uint64_t *keys)
{
	uint8_t b[8 + 8 * 8];
	unsigned int n;

	memset(b, 0xee, sizeof(b));
	assert_int_equal(pr_in(e, 0x00, sizeof(b), b, sizeof(b)), NVT_SCSI_GOOD);
	*gen = be32(b);
	n = be32(b + 4) / 8;
	assert_true(n <= 8);
	for (unsigned int i = 0; i < n; i++)
		keys[i] = be64(b + 8 + 8 * i);
	return n;
}

/* READ RESERVATION: the SCSI type held (0: none) and the key shown. */
static uint8_t pr_held(struct env *e, uint64_t *key)
{
	uint8_t b[24];

	memset(b, 0xee, sizeof(b));
	assert_int_equal(pr_in(e, 0x01, sizeof(b), b, sizeof(b)), NVT_SCSI_GOOD);
	if (!be32(b + 4))
		return 0;
	assert_int_equal(be32(b + 4), 16);
	assert_int_equal(b[21] >> 4, 0);	/* LU_SCOPE */
	*key = be64(b + 8);
	return b[21] & 0xf;
}

static uint8_t pr_write(struct env *e, struct nvt_scsi_dev *as, bool write)
{
	uint8_t c[10], d[BS];
	uint8_t st;

	fill(d, sizeof(d), 9);
	cdb10(c, write ? 0x2a : 0x28, 0, 60, 1);
	e->as = as;
	st = run(e, 0, c, 10, write, d, sizeof(d));
	e->as = NULL;
	return st;
}

/*
 * Two controllers (two I_T nexuses) through REGISTER, RESERVE, RELEASE,
 * PREEMPT, CLEAR and REGISTER AND IGNORE EXISTING KEY, as SPC-4 5.12
 * says: key mismatches are RESERVATION CONFLICT; Write Exclusive held by
 * one stops the other's writes, not its reads; the holder's release with
 * another type is an invalid release; the generation counts registrations.
 */
static void test_pr_sequence(void **state)
{
	struct env *e = *state;
	struct nvt_scsi_dev d2;
	uint64_t keys[8], k;
	uint32_t gen;

	pr_dev2(e, &d2);
	assert_int_equal(pr_keys(e, &gen, keys), 0);
	assert_int_equal(gen, 0);
	assert_int_equal(pr_held(e, &k), 0);
	/* REGISTER from an unregistered nexus: RESERVATION KEY must be 0. */
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0x5, 0xa), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0, 0), NVT_SCSI_GOOD);	/* nothing to do */
	assert_int_equal(pr_keys(e, &gen, keys), 0);
	assert_int_equal(gen, 0);
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0, 0xa), NVT_SCSI_GOOD);
	assert_int_equal(pr_keys(e, &gen, keys), 1);
	assert_int_equal(gen, 1);
	assert_int_equal(keys[0], 0xa);
	/* Registered: a wrong RESERVATION KEY is a conflict, nothing changes. */
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0xb, 0xc), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_keys(e, &gen, keys), 1);
	assert_int_equal(keys[0], 0xa);
	assert_int_equal(pr_out(e, &d2, 0x00, 0, 0, 0xb), NVT_SCSI_GOOD);
	assert_int_equal(pr_keys(e, &gen, keys), 2);
	assert_int_equal(gen, 2);
	/* RESERVE needs one's own key; WRITE EXCLUSIVE by the first controller. */
	assert_int_equal(pr_out(e, NULL, 0x01, 1, 0xb, 0), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_out(e, NULL, 0x01, 1, 0xa, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_held(e, &k), 1);
	assert_int_equal(k, 0xa);
	assert_int_equal(pr_keys(e, &gen, keys), 2);
	assert_int_equal(gen, 2);		/* RESERVE is no new generation */
	assert_int_equal(pr_write(e, &d2, true), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_write(e, &d2, false), NVT_SCSI_GOOD);
	assert_int_equal(pr_write(e, NULL, true), NVT_SCSI_GOOD);
	/* The other one cannot reserve; the holder again with its type: GOOD; another type: conflict. */
	assert_int_equal(pr_out(e, &d2, 0x01, 1, 0xb, 0), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_out(e, NULL, 0x01, 1, 0xa, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_out(e, NULL, 0x01, 3, 0xa, 0), NVT_SCSI_RESERVATION_CONFLICT);
	/* RELEASE: the holder with another type is an invalid release; a non-holder's is GOOD and a no-op. */
	pr_out(e, NULL, 0x02, 3, 0xa, 0);
	assert_sense(e, 0x5, 0x26, 0x04);
	assert_int_equal(pr_out(e, &d2, 0x02, 1, 0xb, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_held(e, &k), 1);
	assert_int_equal(pr_out(e, NULL, 0x02, 1, 0xb, 0), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_out(e, NULL, 0x02, 1, 0xa, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_held(e, &k), 0);
	assert_int_equal(pr_write(e, &d2, true), NVT_SCSI_GOOD);
	/* PREEMPT: the second takes the first's EXCLUSIVE ACCESS as WRITE EXCLUSIVE; the first is unregistered. */
	assert_int_equal(pr_out(e, NULL, 0x01, 3, 0xa, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_write(e, &d2, false), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_out(e, &d2, 0x04, 1, 0xa, 0xa), NVT_SCSI_RESERVATION_CONFLICT);	/* its key is 0xb */
	pr_out(e, &d2, 0x04, 1, 0xb, 0);	/* a zero key preempts only all-registrants types */
	assert_sense(e, 0x5, 0x26, 0x00);
	assert_int_equal(pr_out(e, &d2, 0x04, 1, 0xb, 0xa), NVT_SCSI_GOOD);
	assert_int_equal(pr_held(e, &k), 1);
	assert_int_equal(k, 0xb);
	assert_int_equal(pr_keys(e, &gen, keys), 1);
	assert_int_equal(keys[0], 0xb);
	assert_int_equal(gen, 3);
	assert_int_equal(pr_write(e, NULL, true), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_write(e, NULL, false), NVT_SCSI_GOOD);
	/* REGISTER AND IGNORE EXISTING KEY: any RESERVATION KEY; registered, it replaces. */
	assert_int_equal(pr_out(e, NULL, 0x06, 0, 0x1234, 0x5), NVT_SCSI_GOOD);
	assert_int_equal(pr_out(e, NULL, 0x06, 0, 0x9999, 0x6), NVT_SCSI_GOOD);
	assert_int_equal(pr_keys(e, &gen, keys), 2);
	assert_true((keys[0] == 0x6 && keys[1] == 0xb) || (keys[0] == 0xb && keys[1] == 0x6));
	/* REGISTER with service action key 0: unregistered. */
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0x6, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_keys(e, &gen, keys), 1);
	/* PREEMPT AND ABORT acts as PREEMPT on the state. */
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0, 0x7), NVT_SCSI_GOOD);
	assert_int_equal(pr_out(e, NULL, 0x05, 3, 0x7, 0xb), NVT_SCSI_GOOD);
	assert_int_equal(pr_held(e, &k), 3);
	assert_int_equal(k, 0x7);
	assert_int_equal(pr_write(e, &d2, false), NVT_SCSI_RESERVATION_CONFLICT);
	/* CLEAR: needs a registered key; then nothing is left, a new generation. */
	assert_int_equal(pr_out(e, &d2, 0x03, 0, 0xb, 0), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_out(e, NULL, 0x03, 0, 0x7, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_keys(e, &gen, keys), 0);
	assert_int_equal(gen, 9);
	assert_int_equal(pr_held(e, &k), 0);
	assert_int_equal(pr_write(e, &d2, true), NVT_SCSI_GOOD);
}

/* An all-registrants reservation: every registrant writes, READ RESERVATION shows key 0, a zero key preempts it. */
static void test_pr_all_registrants(void **state)
{
	struct env *e = *state;
	struct nvt_scsi_dev d2, d3;
	uint64_t k = 1;

	pr_dev2(e, &d2);
	pr_dev2(e, &d3);
	nvt_scsi_dev_hostid(&d3, "/run/test/vhost.2");
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0, 0x1), NVT_SCSI_GOOD);
	assert_int_equal(pr_out(e, &d2, 0x00, 0, 0, 0x2), NVT_SCSI_GOOD);
	assert_int_equal(pr_out(e, NULL, 0x01, 7, 0x1, 0), NVT_SCSI_GOOD);	/* WE-AR */
	assert_int_equal(pr_held(e, &k), 7);
	assert_int_equal(k, 0);
	assert_int_equal(pr_write(e, &d2, true), NVT_SCSI_GOOD);
	assert_int_equal(pr_write(e, &d3, true), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_write(e, &d3, false), NVT_SCSI_GOOD);
	/* The second preempts with key 0: EA-RO for it alone, the first unregistered. */
	assert_int_equal(pr_out(e, &d2, 0x04, 6, 0x2, 0), NVT_SCSI_GOOD);
	assert_int_equal(pr_held(e, &k), 6);
	assert_int_equal(k, 0x2);
	assert_int_equal(pr_write(e, NULL, false), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(pr_write(e, &d2, true), NVT_SCSI_GOOD);
}

/* Bad CDBs, parameter lists and buffers: the right sense, nothing changed, nothing overrun. */
static void test_pr_bad_fields(void **state)
{
	struct env *e = *state;
	uint8_t c[10] = { 0x5f }, b[64];
	uint64_t keys[8];
	uint32_t gen;

	/* Parameter list length other than 24: PARAMETER LIST LENGTH ERROR. */
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0, 23, 24);
	assert_sense(e, 0x5, 0x1a, 0x00);
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0, 25, 32);
	assert_sense(e, 0x5, 0x1a, 0x00);
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0, 0, 0);
	assert_sense(e, 0x5, 0x1a, 0x00);
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0, 0xffffffffu, 24);
	assert_sense(e, 0x5, 0x1a, 0x00);
	/* Less data-out than the list length says. */
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0, 24, 16);
	assert_sense(e, 0x5, 0x0e, 0x03);
	put_be32(c + 5, 24);
	run(e, 0, c, sizeof(c), false, b, 24);		/* a data-in buffer instead */
	assert_sense(e, 0x5, 0x0e, 0x03);
	/* SPEC_I_PT, ALL_TG_PT: not offered; APTPL where the namespace cannot persist. */
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0x08, 24, 24);
	assert_sense(e, 0x5, 0x26, 0x00);
	assert_int_equal(e->t->sense[15], 0x80 | 0x08 | 3);
	assert_int_equal(be16(e->t->sense + 16), 20);
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0x04, 24, 24);
	assert_sense(e, 0x5, 0x26, 0x00);
	pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0x01, 24, 24);
	assert_sense(e, 0x5, 0x26, 0x00);
	/* REGISTER AND MOVE, REPLACE LOST RESERVATION, reserved service actions. */
	for (uint8_t sa = 0x07; sa <= 0x1f; sa += 0x0c) {
		pr_out(e, NULL, sa, 1, 0, 0xa);
		assert_sense(e, 0x5, 0x24, 0x00);
		assert_int_equal(be16(e->t->sense + 16), 1);
	}
	assert_int_equal(pr_keys(e, &gen, keys), 0);	/* none of them registered */
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0, 0xa), NVT_SCSI_GOOD);
	/* Types 0, 2, 4 and past 8, and scopes but LU, for RESERVE and PREEMPT: INVALID FIELD IN CDB. */
	static const uint8_t bad[] = { 0x00, 0x02, 0x04, 0x09, 0x0f, 0x11, 0x21 };
	for (size_t i = 0; i < sizeof(bad); i++) {
		pr_out(e, NULL, 0x01, bad[i], 0xa, 0);
		assert_sense(e, 0x5, 0x24, 0x00);
		assert_int_equal(be16(e->t->sense + 16), 2);
		pr_out(e, NULL, 0x04, bad[i], 0xa, 0xa);
		assert_sense(e, 0x5, 0x24, 0x00);
	}
	/* PR IN: READ FULL STATUS and reserved service actions are refused. */
	pr_in(e, 0x03, sizeof(b), b, sizeof(b));
	assert_sense(e, 0x5, 0x24, 0x00);
	pr_in(e, 0x1f, sizeof(b), b, sizeof(b));
	assert_sense(e, 0x5, 0x24, 0x00);
}

/* ALLOCATION LENGTH truncates (the lengths still say the whole), never past the buffer; REPORT CAPABILITIES. */
static void test_pr_alloc_len(void **state)
{
	struct env *e = *state;
	struct nvt_scsi_dev d2;
	uint8_t b[64];

	pr_dev2(e, &d2);
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0, 0x1111), NVT_SCSI_GOOD);
	assert_int_equal(pr_out(e, &d2, 0x00, 0, 0, 0x2222), NVT_SCSI_GOOD);
	memset(b, 0xee, sizeof(b));
	assert_int_equal(pr_in(e, 0x00, 12, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(be32(b + 4), 16);		/* the whole list's length */
	assert_int_equal(b[12], 0xee);			/* not one byte past ALLOCATION LENGTH */
	assert_int_equal(e->t->resid, sizeof(b) - 12);
	/* A huge ALLOCATION LENGTH into a 10-byte buffer: 10 bytes. */
	memset(b, 0xee, sizeof(b));
	assert_int_equal(pr_in(e, 0x00, 0xffff, b, 10), NVT_SCSI_GOOD);
	assert_int_equal(e->t->resid, 0);
	assert_int_equal(b[10], 0xee);
	assert_int_equal(pr_in(e, 0x00, 0, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(e->t->resid, sizeof(b));
	/* READ RESERVATION without one: 8 bytes. */
	memset(b, 0xee, sizeof(b));
	assert_int_equal(pr_in(e, 0x01, sizeof(b), b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(be32(b), 2);
	assert_int_equal(be32(b + 4), 0);
	assert_int_equal(e->t->resid, sizeof(b) - 8);
	/* REPORT CAPABILITIES: length 8, no SIP_C / ATP_C / PTPL_C on RAM, TMV, the six types. */
	memset(b, 0xee, sizeof(b));
	assert_int_equal(pr_in(e, 0x02, sizeof(b), b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(be16(b), 8);
	assert_int_equal(b[2], 0x00);
	assert_int_equal(b[3], 0x80);
	assert_int_equal(b[4], 0xea);
	assert_int_equal(b[5], 0x01);
	assert_int_equal(b[8], 0xee);
	/* REPORT SUPPORTED OPERATION CODES lists both, one service action at a time. */
	uint8_t c[12] = { 0xa3, 0x0c, 0x02, 0x5f, 0x00, 0x01 };

	put_be32(c + 6, sizeof(b));
	assert_int_equal(run(e, 0, c, sizeof(c), false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[1] & 0x07, 0x03);
	assert_int_equal(be16(b + 2), 10);
	assert_int_equal(b[4], 0x5f);
	assert_int_equal(b[6], 0xff);
	c[3] = 0x5e;
	c[5] = 0x03;		/* READ FULL STATUS: not supported */
	assert_int_equal(run(e, 0, c, sizeof(c), false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[1] & 0x07, 0x01);
}

/* Record what nvt_resv_notify() queues: the subsystem of LUN 0's namespace, its main loop the test's. */
struct pr_subsys {
	struct nvt_target tgt;
	struct nvt_subsys subsys;
};

static struct pr_subsys *pr_subsys_attach(struct env *e)
{
	struct pr_subsys *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	pthread_mutex_init(&s->tgt.lock, NULL);
	s->tgt.pg = e->pg;
	s->subsys.tgt = &s->tgt;
	atomic_init(&s->subsys.refs, 1);
	strcpy(s->subsys.nqn, "nqn.test");
	e->ns[0].subsys = &s->subsys;
	return s;
}

/*
 * One state: an NVMe host's registration is in the guest's READ KEYS, the
 * guest's in NVMe Reservation Report under its controller's host
 * identifier; the guest's reservation stops the NVMe host's writes; its
 * PREEMPT of the NVMe host's key queues REGISTRATION PREEMPTED for that
 * host on the subsystem's notification ring, as an NVMe Preempt does.
 */
static void test_pr_nvme_hosts(void **state)
{
	static const uint8_t host[16] = { 0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	struct env *e = *state;
	struct nvt_resv *r = &e->ns[0].resv;
	uint8_t rep[sizeof(struct nvme_resv_status) + 4 * sizeof(struct nvme_registered_ctrl_ext)];
	const struct nvme_registered_ctrl_ext *reg =
		(const void *)(rep + sizeof(struct nvme_resv_status));
	struct nvt_resv_notify *rn;
	struct pr_subsys *s = pr_subsys_attach(e);
	uint64_t keys[8], k, id[2];
	uint32_t gen;

	rn = &s->subsys.resv_notify;
	assert_int_equal(nvt_resv_register(r, host, 0, 0, 0x77, NULL), NVT_ST_OK);
	assert_int_equal(pr_keys(e, &gen, keys), 1);
	assert_int_equal(keys[0], 0x77);
	assert_int_equal(gen, 1);
	assert_int_equal(pr_out(e, NULL, 0x00, 0, 0, 0x10), NVT_SCSI_GOOD);
	assert_int_equal(nvt_resv_report(r, true, rep, sizeof(rep)), NVT_ST_OK);
	assert_int_equal(rep[5], 2);
	assert_memory_equal(reg[1].hostid, e->dev.hostid, 16);
	assert_int_equal(le64toh(reg[1].rkey), 0x10);
	assert_int_equal(le32toh(((struct nvme_resv_status *)rep)->gen), 2);
	/* The guest's Exclusive Access: the NVMe host (a registrant) may neither write nor read. */
	assert_int_equal(pr_out(e, NULL, 0x01, 3, 0x10, 0), NVT_SCSI_GOOD);
	assert_int_equal(nvt_resv_report(r, true, rep, sizeof(rep)), NVT_ST_OK);
	assert_int_equal(rep[4], NVME_RESERVATION_RTYPE_EA);
	assert_int_equal(reg[1].rcsts & 1, 1);
	assert_int_equal(nvt_resv_check(r, host, NVT_RESV_WRITE), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_check(r, host, NVT_RESV_READ), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_check(r, e->dev.hostid, NVT_RESV_WRITE), NVT_ST_OK);
	/* Released; the NVMe host takes Write Exclusive: the guest, a registrant, is still no writer. */
	assert_int_equal(pr_out(e, NULL, 0x02, 3, 0x10, 0), NVT_SCSI_GOOD);
	assert_int_equal(nvt_resv_acquire(r, host, (uint32_t)NVME_RESERVATION_RTYPE_WE << 8, 0x77, 0,
					  NULL), NVT_ST_OK);
	assert_int_equal(pr_held(e, &k), 1);
	assert_int_equal(k, 0x77);
	assert_int_equal(pr_write(e, NULL, true), NVT_SCSI_RESERVATION_CONFLICT);
	assert_int_equal(rn->tail - rn->head, 0);
	/* The guest preempts the NVMe host: the reservation is the guest's, that host is told. */
	assert_int_equal(pr_out(e, NULL, 0x04, 3, 0x10, 0x77), NVT_SCSI_GOOD);
	assert_int_equal(pr_held(e, &k), 3);
	assert_int_equal(k, 0x10);
	assert_int_equal(rn->tail - rn->head, 1);
	memcpy(id, host, 16);
	assert_int_equal(rn->ring[rn->head].hostid[0], id[0]);
	assert_int_equal(rn->ring[rn->head].hostid[1], id[1]);
	assert_int_equal(rn->ring[rn->head].type, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	assert_int_equal(rn->ring[rn->head].nsid, 1);
	assert_true(atomic_load(&rn->queued));
	/* The main loop (here the test's) drains it: no controllers, nothing left. */
	for (int i = 0; i < 4 && atomic_load(&rn->queued); i++)
		nvt_poll_group_poll(e->pg, 0);
	assert_false(atomic_load(&rn->queued));
	assert_int_equal(rn->tail - rn->head, 0);
	assert_int_equal(atomic_load(&s->subsys.refs), 1);
	/* The NVMe host is gone from READ KEYS; an NVMe reservation reads back as SCSI. */
	assert_int_equal(pr_keys(e, &gen, keys), 1);
	assert_int_equal(keys[0], 0x10);
	assert_int_equal(pr_out(e, NULL, 0x02, 3, 0x10, 0), NVT_SCSI_GOOD);
	assert_int_equal(nvt_resv_register(r, host, 0, 0, 0x88, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(r, host, (uint32_t)NVME_RESERVATION_RTYPE_WERO << 8, 0x88, 0,
					  NULL), NVT_ST_OK);
	assert_int_equal(pr_held(e, &k), 5);
	assert_int_equal(k, 0x88);
	/* A registrant of WE-RO: the guest writes. */
	assert_int_equal(pr_write(e, NULL, true), NVT_SCSI_GOOD);
	e->ns[0].subsys = NULL;
	pthread_mutex_destroy(&s->tgt.lock);
	free(s);
}

/* A controller's nexus: "nvt-scsi", a reserved UUID variant, the same for the same socket, another for another. */
static void test_pr_nexus_id(void **state)
{
	struct nvt_scsi_dev a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	nvt_scsi_dev_hostid(&a, "/run/nvt/vhost.0");
	nvt_scsi_dev_hostid(&b, "/run/nvt/vhost.0");
	assert_memory_equal(a.hostid, b.hostid, 16);
	assert_memory_equal(a.hostid, "nvt-scsi", 8);
	assert_int_equal(a.hostid[8] & 0xe0, 0xe0);
	nvt_scsi_dev_hostid(&b, "/run/nvt/vhost.1");
	assert_memory_not_equal(a.hostid, b.hostid, 16);
}

/* APTPL where the namespace can persist: PTPL on, the file written; APTPL 0 on a later REGISTER turns it off. */
static void test_pr_aptpl(void **state)
{
	struct env *e = *state;
	struct nvt_resv *r = &e->ns[0].resv;
	char dir[] = "/tmp/scsi-pr-XXXXXX", path[64];
	uint8_t b[8];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ns.nvt-resv", dir);
	assert_int_equal(nvt_resv_persist_open(r, path), 0);
	assert_int_equal(pr_in(e, 0x02, sizeof(b), b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[2], 0x01);			/* PTPL_C */
	assert_int_equal(b[3], 0x80);
	assert_int_equal(pr_out_len(e, NULL, 0x00, 0, 0, 0xa, 0x01, 24, 24), NVT_SCSI_GOOD);
	assert_true(nvt_resv_ptpl(r));
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(pr_in(e, 0x02, sizeof(b), b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[3], 0x81);			/* PTPL_A */
	assert_int_equal(pr_out(e, NULL, 0x06, 0, 0, 0xb), NVT_SCSI_GOOD);
	assert_false(nvt_resv_ptpl(r));
	assert_int_equal(access(path, F_OK), -1);
	nvt_resv_fini(r);
	rmdir(dir);
}

static void test_caw(void **state)
{
	struct env *e = *state;
	uint8_t c[16], a[2 * BS], b[2 * BS], buf[4 * BS], back[2 * BS];
	const uint64_t lba = 20;

	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	cdb10(c, 0x2a, 0, (uint32_t)lba, 2);
	assert_int_equal(run(e, 0, c, 10, true, a, sizeof(a)), NVT_SCSI_GOOD);
	/* Match: the write half lands (with fresh PI). */
	memcpy(buf, a, sizeof(a));
	memcpy(buf + sizeof(a), b, sizeof(b));
	memset(c, 0, 16);
	c[0] = 0x89;
	put_be64(c + 2, lba);
	c[13] = 2;
	assert_int_equal(run(e, 0, c, 16, true, buf, sizeof(buf)), NVT_SCSI_GOOD);
	cdb10(c + 0, 0x28, 0, (uint32_t)lba, 2);
	assert_int_equal(run(e, 0, c, 10, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, b, sizeof(b));
	/* Miscompare: MISCOMPARE 1Dh, INFORMATION = the first differing byte's offset; nothing written. */
	memcpy(buf, b, sizeof(b));
	buf[BS + 188] ^= 0x10;
	memcpy(buf + sizeof(b), a, sizeof(a));
	memset(c, 0, 16);
	c[0] = 0x89;
	put_be64(c + 2, lba);
	c[13] = 2;
	run(e, 0, c, 16, true, buf, sizeof(buf));
	assert_sense(e, 0xe, 0x1d, 0);
	assert_int_equal(sense_info(e), BS + 188);
	cdb10(c, 0x28, 0, (uint32_t)lba, 2);
	assert_int_equal(run(e, 0, c, 10, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, b, sizeof(b));
	/* Field checks: WRPROTECT, short buffer, range; 0 blocks is GOOD. */
	memset(c, 0, 16);
	c[0] = 0x89;
	c[1] = 0x20;
	put_be64(c + 2, lba);
	c[13] = 2;
	run(e, 0, c, 16, true, buf, sizeof(buf));
	assert_sense(e, 5, 0x24, 0);
	c[1] = 0;
	run(e, 0, c, 16, true, buf, sizeof(buf) - 1);
	assert_sense(e, 5, 0x0e, 0x03);
	put_be64(c + 2, NBLK - 1);
	run(e, 0, c, 16, true, buf, sizeof(buf));
	assert_sense(e, 5, 0x21, 0);
	c[13] = 0;
	put_be64(c + 2, lba);
	assert_int_equal(run(e, 0, c, 16, true, NULL, 0), NVT_SCSI_GOOD);
}

/* ---- EXTENDED COPY ---- */

/* An E4h CSCD descriptor naming LUN @l by its NAA designator, as sg_xcopy builds it. */
static void cscd(struct env *e, uint8_t *d, int l)
{
	memset(d, 0, 32);
	d[0] = 0xe4;
	d[4] = 0x01;
	d[5] = 0x03;
	d[7] = 16;
	memcpy(d + 8, e->lun[l].naa, 16);
	d[29] = 0;
	d[30] = BS >> 8;
	d[31] = BS & 0xff;
}

static void seg(uint8_t *d, uint16_t si, uint16_t di, uint16_t nlb, uint64_t src, uint64_t dst)
{
	memset(d, 0, 28);
	d[0] = 0x02;
	put_be16(d + 2, 0x18);
	put_be16(d + 4, si);
	put_be16(d + 6, di);
	put_be16(d + 10, nlb);
	put_be64(d + 12, src);
	put_be64(d + 20, dst);
}

/* A list: CSCDs 0 -> LUN @a, 1 -> LUN @b, then @nseg segments from @segs; list id @id held. Return: its length. */
static uint32_t xlist(struct env *e, uint8_t *p, int a, int b, const uint8_t *segs, int nseg, uint8_t id)
{
	memset(p, 0, 16);
	p[0] = id;
	put_be16(p + 2, 64);
	put_be32(p + 8, 28u * (uint32_t)nseg);
	cscd(e, p + 16, a);
	cscd(e, p + 48, b);
	memcpy(p + 80, segs, 28u * (uint32_t)nseg);
	return 80 + 28u * (uint32_t)nseg;
}

static uint8_t xcopy(struct env *e, uint8_t *p, uint32_t len)
{
	uint8_t c[16] = { 0x83 };

	put_be32(c + 10, len);
	return run(e, 0, c, 16, true, p, len);
}

/* LUN @l's blocks [lba, +n) read back with PROTECT 0 (checked where it has PI) equal @want. */
static void assert_blocks(struct env *e, int l, uint64_t lba, uint32_t n, const uint8_t *want)
{
	uint8_t *back = malloc((size_t)n * BS), c[16];

	cdb16(c, 0x88, 0, lba, n);
	assert_int_equal(run(e, l, c, 16, false, back, n * BS), NVT_SCSI_GOOD);
	assert_memory_equal(back, want, (size_t)n * BS);
	free(back);
}

static void test_xcopy(void **state)
{
	struct env *e = *state;
	uint8_t p[256], sg[2 * 28], c[16], b[64];
	uint32_t n = 3000, len;
	uint8_t *data = malloc((size_t)n * BS);

	fill(data, (size_t)n * BS, 61);
	cdb16(c, 0x8a, 0, 10, n);
	assert_int_equal(run(e, 0, c, 16, true, data, n * BS), NVT_SCSI_GOOD);
	/* RECEIVE COPY RESULTS, operating parameters: what sg_xcopy needs first (E4h listed). */
	memset(c, 0, 16);
	c[0] = 0x84;
	c[1] = 0x03;
	put_be32(c + 10, sizeof(b));
	assert_int_equal(run(e, 0, c, 16, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(be32(b), 42);
	assert_int_equal(b[4] & 1, 1);
	assert_int_not_equal(be16(b + 8), 0);
	assert_int_not_equal(be16(b + 10), 0);
	assert_int_equal(be32(b + 16), 0xffffu * BS);
	assert_int_equal(b[43], 2);
	assert_int_equal(b[44], 0x02);
	assert_int_equal(b[45], 0xe4);
	/* Within LUN 0 (the layer's Copy), and LUN 0 -> LUN 1 through the copy buffer (3000 blocks: 3 steps). */
	seg(sg, 0, 0, 100, 10, 3500);
	seg(sg + 28, 0, 1, (uint16_t)n, 10, 700);
	len = xlist(e, p, 0, 1, sg, 2, 7);
	assert_int_equal(xcopy(e, p, len), NVT_SCSI_GOOD);
	assert_blocks(e, 0, 3500, 100, data);
	assert_blocks(e, 1, 700, n, data);
	if (e->lun[0].pi && (e->type == NVT_PI_TYPE1 || e->type == NVT_PI_TYPE2)) {
		/* The destination's PI is its own LBAs', not the source's. */
		assert_int_equal(be32(stored_md(e, 0, 3599, NULL) + 4), 3599);
		if (e->lun[1].pi)
			assert_int_equal(be32(stored_md(e, 1, 700 + n - 1, NULL) + 4), 700 + n - 1);
	}
	if (e->lun[1].pi)
		assert_int_equal(be16(stored_md(e, 1, 1234, NULL)),
				 nvt_crc16_t10dif(0, data + (1234 - 700) * BS, BS));
	/* Copy status of list 7: done, two segments, every byte. */
	memset(c, 0, 16);
	c[0] = 0x84;
	c[2] = 7;
	put_be32(c + 10, sizeof(b));
	assert_int_equal(run(e, 0, c, 16, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[4], 1);
	assert_int_equal(be16(b + 5), 2);
	assert_int_equal(be32(b + 8), (100 + n) * BS);
	c[2] = 8;
	run(e, 0, c, 16, false, b, sizeof(b));
	assert_sense(e, 5, 0x24, 0);
	/* Back the other way, onto LBAs of LUN 0 that held other data: PI for those LBAs. */
	seg(sg, 1, 0, 50, 700, 2000);
	len = xlist(e, p, 0, 1, sg, 1, 7);
	assert_int_equal(xcopy(e, p, len), NVT_SCSI_GOOD);
	assert_blocks(e, 0, 2000, 50, data);
	if (e->lun[0].pi && (e->type == NVT_PI_TYPE1 || e->type == NVT_PI_TYPE2))
		assert_int_equal(be32(stored_md(e, 0, 2049, NULL) + 4), 2049);
	/* Stored corruption at the source fails the copy there. */
	if (e->ns[0].pi.type) {
		const uint8_t *d;

		stored_md(e, 0, 15, &d);
		((uint8_t *)d)[3] ^= 1;
		seg(sg, 0, 1, 10, 10, 0);
		len = xlist(e, p, 0, 1, sg, 1, 9);
		xcopy(e, p, len);
		assert_sense(e, 0xb, 0x10, 0x01);
		assert_int_equal(sense_info(e), 15);
		((uint8_t *)d)[3] ^= 1;
	}
	/* A designator nobody registered: COPY ABORTED, 0Dh/02h. */
	seg(sg, 0, 1, 1, 0, 0);
	len = xlist(e, p, 0, 1, sg, 1, 1);
	p[48 + 20] ^= 0xff;
	xcopy(e, p, len);
	assert_sense(e, 0xa, 0x0d, 0x02);
	/* Other segment types, too many segments, ranges, short lists, LID4. */
	len = xlist(e, p, 0, 1, sg, 1, 1);
	p[80] = 0x0a;
	xcopy(e, p, len);
	assert_sense(e, 5, 0x26, 0x09);
	{
		uint8_t many[5 * 28];

		for (int i = 0; i < 5; i++)
			seg(many + 28 * i, 0, 1, 1, 0, 0);
		len = xlist(e, p, 0, 1, many, 5, 1);
		xcopy(e, p, len);
		assert_sense(e, 5, 0x26, 0x08);
	}
	seg(sg, 0, 1, 2, NBLK - 1, 0);
	len = xlist(e, p, 0, 1, sg, 1, 1);
	xcopy(e, p, len);
	assert_sense(e, 5, 0x21, 0);
	seg(sg, 0, 2, 1, 0, 0);
	len = xlist(e, p, 0, 1, sg, 1, 1);
	xcopy(e, p, len);
	assert_sense(e, 5, 0x26, 0);
	seg(sg, 0, 1, 1, 0, 0);
	len = xlist(e, p, 0, 1, sg, 1, 1);
	xcopy(e, p, len - 1);
	assert_sense(e, 5, 0x1a, 0);
	memset(c, 0, 16);
	c[0] = 0x83;
	c[1] = 0x01;
	put_be32(c + 10, len);
	run(e, 0, c, 16, true, p, len);
	assert_sense(e, 5, 0x24, 0);
	free(data);
}

/* A copy between namespaces waits for the queue's copy buffer, in order, and runs when it is handed on. */
static void test_xcopy_waits_for_buffer(void **state)
{
	struct env *e = *state;
	struct nvt_scsi_task *other = calloc(1, sizeof(*other));
	uint8_t p[256], sg[28], c[16] = { 0x83 }, data[4 * BS];
	struct nvt_scsi_task *t = e->t;
	unsigned int before;
	uint32_t len;

	fill(data, sizeof(data), 8);
	cdb10(c, 0x2a, 0, 0, 4);
	assert_int_equal(run(e, 0, c, 10, true, data, sizeof(data)), NVT_SCSI_GOOD);
	seg(sg, 0, 1, 4, 0, 100);
	len = xlist(e, p, 0, 1, sg, 1, 3);
	other->queue = &e->q;
	other->cmd.holds_copy_buf = true;
	e->q.copy_owner = other;
	memset(c, 0, sizeof(c));
	c[0] = 0x83;
	put_be32(c + 10, len);
	memcpy(t->cdb, c, 16);
	t->dev = &e->dev;
	t->lun = &e->lun[0];
	t->queue = &e->q;
	e->iov[0] = (struct iovec){ p, len };
	t->data_iov = e->iov;
	t->data_cnt = 1;
	t->data_len = len;
	t->to_dev = true;
	t->pi_iov = NULL;
	t->pi_len = 0;
	t->done = count_done;
	before = nr_done;
	nvt_scsi_exec(t);
	assert_int_equal(nr_done, before);		/* parked behind the owner */
	assert_ptr_equal(e->q.copy_wait, t);
	nvt_scsi_copy_buf_put(other);
	assert_ptr_equal(e->q.copy_owner, t);		/* handed on in order ... */
	assert_int_equal(nr_done, before);		/* ... and started after this batch */
	nvt_poll_group_poll(e->pg, 0);
	assert_int_equal(nr_done, before + 1);
	assert_int_equal(t->status, NVT_SCSI_GOOD);
	assert_null(e->q.copy_owner);
	assert_null(e->q.copy_wait);
	assert_blocks(e, 1, 100, 4, data);
	free(other);
}

/*
 * COMPARE AND WRITE's length against the metadata: VPD B0h says what fits
 * the layer's md_buf; that much works, one more is INVALID FIELD IN CDB
 * (NoLB 255 with 64-byte metadata once wrote past md_buf into the task).
 */
static void test_caw_max_len(void **state)
{
	struct env *e = *state;
	uint8_t c[16] = { 0x89 }, b[64];
	uint32_t max, want = e->ns[0].md_size ? 4096u / e->ns[0].md_size : 255;
	uint8_t *buf, *back;

	if (want > 255)
		want = 255;
	vpd(e, 0xb0, b, sizeof(b));
	max = b[5];
	assert_int_equal(max, want);
	buf = calloc(2, 256 * BS);
	back = malloc(256 * BS);
	/* The whole maximum: zeroes compare equal to never-written blocks, then the pattern lands. */
	fill(buf + (size_t)max * BS, (size_t)max * BS, 12);
	put_be64(c + 2, 100);
	c[13] = (uint8_t)max;
	assert_int_equal(run(e, 0, c, 16, true, buf, 2 * max * BS), NVT_SCSI_GOOD);
	assert_blocks(e, 0, 100, max, buf + (size_t)max * BS);
	if (e->ns[0].pi.type) {
		struct nvt_pi_ctx ctx;
		struct nvt_pi_err err;
		void *md;
		uint8_t *d = nvt_ram_block(&e->ns[0], 100, &md);
		struct iovec di = { d, (size_t)max * BS }, mi = { md, (size_t)max * e->ns[0].md_size };

		/* What an NVMe host reading those blocks checks. */
		nvt_pi_ctx_init(&ctx, &e->ns[0].pi, 100, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG, 100,
				0, 0);
		assert_int_equal(nvt_pi_verify(&ctx, &di, 1, &mi, 1, max, &err), 0);
	}
	if (max < 255) {
		memcpy(back, buf + (size_t)max * BS, (size_t)max * BS);
		memset(buf, 0, 2 * 256 * BS);
		c[13] = (uint8_t)(max + 1);
		run(e, 0, c, 16, true, buf, 2 * (max + 1) * BS);
		assert_sense(e, 5, 0x24, 0);
		assert_int_equal(be16(e->t->sense + 16), 13);
		c[13] = 255;
		run(e, 0, c, 16, true, buf, 2 * 255 * BS);
		assert_sense(e, 5, 0x24, 0);
		assert_blocks(e, 0, 100, max, back);	/* nothing written */
	}
	free(buf);
	free(back);
}

/* Metadata larger than md_buf: the LUN is refused (rw_next would build bios of 0 blocks). */
static void test_lun_md_too_big(void **state)
{
	struct nvt_ns ns;
	struct nvt_scsi_lun lun;

	(void)state;
	memset(&ns, 0, sizeof(ns));
	ns.block_size = BS;
	ns.lba_shift = 9;
	ns.nblocks = NBLK;
	ns.md_size = 4096 + 8;
	assert_int_equal(nvt_scsi_lun_init(&lun, &ns, 0), -EINVAL);
	ns.md_size = 4096;
	assert_int_equal(nvt_scsi_lun_init(&lun, &ns, 0), 0);
	nvt_scsi_lun_fini(&lun);
}

/*
 * Past LBA 2^32 on a 64-bit-guard namespace: what every command stores
 * carries the 48-bit ref tag an NVMe host (and the scrub) expects, and
 * what an NVMe host wrote there reads back through SCSI.
 */
static void test_past_2_32(void **state)
{
	struct env *e = *state;
	const uint64_t L = (1ull << 32) + 5;
	uint8_t c[16], data[4 * BS], back[4 * BS], buf[2 * BS], p[256], sg[2 * 28];
	struct nvt_pi_ctx ctx;
	void *md;
	uint8_t *d;
	uint32_t len;

	fill(data, sizeof(data), 7);
	/* WRITE(16): PI generated by the layer for LBAs past 2^32. */
	cdb16(c, 0x8a, 0, L, 4);
	assert_int_equal(run(e, 0, c, 16, true, data, sizeof(data)), NVT_SCSI_GOOD);
	assert_nvme_pi(e, 0, L, 4);
	cdb16(c, 0x88, 0, L, 4);
	assert_int_equal(run(e, 0, c, 16, false, back, sizeof(back)), NVT_SCSI_GOOD);
	assert_memory_equal(back, data, sizeof(data));
	/* A block an NVMe host wrote (ref tag = its 48-bit LBA), read through SCSI: checked, GOOD. */
	d = nvt_ram_block(&e->ns[0], L + 10, &md);
	memcpy(d, data, BS);
	{
		struct iovec di = { d, BS }, mi = { md, 16 };

		nvt_pi_ctx_init(&ctx, &e->ns[0].pi, L + 10, NVT_PI_PRACT, L + 10, 0, 0);
		assert_int_equal(nvt_pi_generate(&ctx, &di, 1, &mi, 1, 1), 0);
	}
	cdb16(c, 0x88, 0, L + 10, 1);
	assert_int_equal(run(e, 0, c, 16, false, back, BS), NVT_SCSI_GOOD);
	assert_memory_equal(back, data, BS);
	/* WRITE SAME and COMPARE AND WRITE there. */
	cdb16(c, 0x93, 0, L + 20, 4);
	assert_int_equal(run(e, 0, c, 16, true, data, BS), NVT_SCSI_GOOD);
	assert_nvme_pi(e, 0, L + 20, 4);
	memcpy(buf, data, BS);
	memcpy(buf + BS, data + BS, BS);
	memset(c, 0, 16);
	c[0] = 0x89;
	put_be64(c + 2, L + 21);
	c[13] = 1;
	assert_int_equal(run(e, 0, c, 16, true, buf, sizeof(buf)), NVT_SCSI_GOOD);
	assert_nvme_pi(e, 0, L + 20, 4);
	/* EXTENDED COPY within the namespace and to the other one, both past 2^32. */
	seg(sg, 0, 0, 4, L, L + 30);
	seg(sg + 28, 0, 1, 4, L, L + 40);
	len = xlist(e, p, 0, 1, sg, 2, 5);
	assert_int_equal(xcopy(e, p, len), NVT_SCSI_GOOD);
	assert_nvme_pi(e, 0, L + 30, 4);
	assert_nvme_pi(e, 1, L + 40, 4);
	assert_blocks(e, 1, L + 40, 4, data);
	/* A corrupted block past 2^32 fails the read: ABORTED COMMAND, guard. */
	d = nvt_ram_block(&e->ns[0], L + 2, NULL);
	d[7] ^= 1;
	cdb16(c, 0x88, 0, L, 4);
	run(e, 0, c, 16, false, back, sizeof(back));
	assert_sense(e, 0xb, 0x10, 0x01);
	/* Fixed format as D_SENSE 0 says: the LBA does not fit INFORMATION, so VALID 0. */
	assert_int_equal(e->t->sense[0], 0x70);
	assert_int_equal(be32(e->t->sense + 3), 0);
	/* Below 2^32 on the same LUN: VALID, INFORMATION = the LBA. */
	d[7] ^= 1;
	d = nvt_ram_block(&e->ns[0], 77, NULL);
	cdb16(c, 0x8a, 0, 76, 2);
	assert_int_equal(run(e, 0, c, 16, true, data, 2 * BS), NVT_SCSI_GOOD);
	d[7] ^= 1;
	cdb16(c, 0x88, 0, 76, 2);
	run(e, 0, c, 16, false, back, 2 * BS);
	assert_sense(e, 0xb, 0x10, 0x01);
	assert_int_equal(e->t->sense[0], 0xf0);
	assert_int_equal(sense_info(e), 77);
}

/*
 * EXTENDED COPY across controllers: a guest may name only its own
 * controller's LUNs (designators are derived from public data), unless its
 * controller opted in with copy_between_controllers.
 */
static void test_xcopy_other_controller(void **state)
{
	struct env *e = *state;
	uint8_t p[256], sg[28], c[16], data[4 * BS], other[4 * BS], zero[4 * BS];
	uint32_t len;

	fill(data, sizeof(data), 21);
	fill(other, sizeof(other), 22);
	memset(zero, 0, sizeof(zero));
	cdb10(c, 0x2a, 0, 10, 4);
	assert_int_equal(run(e, 0, c, 10, true, data, sizeof(data)), NVT_SCSI_GOOD);
	assert_int_equal(run(e, 1, c, 10, true, other, sizeof(other)), NVT_SCSI_GOOD);
	/* LUN 1 belongs to another controller from now on. */
	e->dev.luns[1] = NULL;
	e->dev.nr_luns = 1;
	/* Writing the other guest's disk: COPY ABORTED, unreachable target; nothing written. */
	seg(sg, 0, 1, 4, 10, 10);
	len = xlist(e, p, 0, 1, sg, 1, 2);
	xcopy(e, p, len);
	assert_sense(e, 0xa, 0x0d, 0x02);
	assert_blocks(e, 1, 10, 4, other);
	/* Reading it into our own LUN: the same. */
	seg(sg, 1, 0, 4, 10, 100);
	len = xlist(e, p, 0, 1, sg, 1, 2);
	xcopy(e, p, len);
	assert_sense(e, 0xa, 0x0d, 0x02);
	assert_blocks(e, 0, 100, 4, zero);
	/* Our own LUNs still copy. */
	seg(sg, 0, 0, 4, 10, 200);
	len = xlist(e, p, 0, 0, sg, 1, 2);
	assert_int_equal(xcopy(e, p, len), NVT_SCSI_GOOD);
	assert_blocks(e, 0, 200, 4, data);
	/* The controller opted in: other controllers' registered LUNs are reachable. */
	e->dev.copy_between = true;
	seg(sg, 1, 0, 4, 10, 100);
	len = xlist(e, p, 0, 1, sg, 1, 2);
	assert_int_equal(xcopy(e, p, len), NVT_SCSI_GOOD);
	assert_blocks(e, 0, 100, 4, other);
}

/*
 * EXTENDED COPY keeps the guest's app tags (ATO=1: the application
 * client's), and on Type 3 its ref tags; Type 1/2 ref tags become the
 * destination's LBAs. Within a namespace, between two of one format, and
 * into a 64-bit-guard namespace (fresh PI there, the app tags carried).
 */
static void test_xcopy_app_tags(void **state)
{
	struct env *e = *state;
	uint8_t c[32], data[4 * BS], pi[4 * PIS], p[256], sg[2 * 28];
	const uint64_t lba = 40;
	uint32_t len;
	size_t n;

	fill(data, sizeof(data), 9);
	for (int i = 0; i < 4; i++)
		tuple(pi + i * PIS, data + i * BS, ref_of(e, lba + (uint64_t)i), (uint16_t)(0x1230 + i));
	n = rw_cdb(e, c, true, lba, 4, 1, 0, 0);
	assert_int_equal(run_pi(e, 0, c, n, true, data, sizeof(data), pi, sizeof(pi)), NVT_SCSI_GOOD);
	seg(sg, 0, 0, 4, lba, 3000);
	seg(sg + 28, 0, 1, 4, lba, 3000);
	len = xlist(e, p, 0, 1, sg, 2, 4);
	assert_int_equal(xcopy(e, p, len), NVT_SCSI_GOOD);
	for (int l = 0; l < 2; l++) {
		const struct nvt_ns *ns = &e->ns[l];
		size_t at = ns->pi.guard == NVT_PI_GUARD_CRC64 ? 8 : 2;

		for (uint32_t i = 0; i < 4; i++) {
			const uint8_t *m = stored_md(e, l, 3000 + i, NULL);

			assert_int_equal(be16(m + at), 0x1230 + i);
			if (ns->pi.type == NVT_PI_TYPE3 && e->lun[l].pi)
				assert_int_equal(be32(m + 4), 0x5555);
		}
		if (ns->pi.type != NVT_PI_TYPE3)
			assert_nvme_pi(e, l, 3000, 4);
		assert_blocks(e, l, 3000, 4, data);
	}
	/* The guest reads its own tuples back, app tags and all. */
	if (e->lun[1].pi) {
		uint8_t back[4 * BS], piback[4 * PIS];

		n = rw_cdb(e, c, false, 3000, 4, 1, 0, 0);
		if (e->type == NVT_PI_TYPE2)
			put_be32(c + 20, 3000);	/* the copy's ref tags are the destination's LBAs */
		assert_int_equal(run_pi(e, 1, c, n, false, back, sizeof(back), piback, sizeof(piback)),
				 NVT_SCSI_GOOD);
		for (uint32_t i = 0; i < 4; i++)
			assert_int_equal(be16(piback + i * PIS + 2), 0x1230 + i);
	}
}

/*
 * RECEIVE COPY RESULTS after a failed copy: a list refused while parsed,
 * and one whose bio cannot be built when it starts, both report "done with
 * errors" (02h) for their list id, never "in progress" forever.
 */
static void test_xcopy_results_on_failure(void **state)
{
	struct env *e = *state;
	uint8_t p[256], sg[28], c[16], b[16];
	struct nvt_scsi_task *t = e->t, *other = calloc(1, sizeof(*other));
	unsigned int before;
	uint32_t len;

	/* Parsing: an unsupported segment type in list 9. */
	seg(sg, 0, 1, 1, 0, 0);
	len = xlist(e, p, 0, 1, sg, 1, 9);
	p[80] = 0x0a;
	xcopy(e, p, len);
	assert_sense(e, 5, 0x26, 0x09);
	memset(c, 0, 16);
	c[0] = 0x84;
	c[2] = 9;
	put_be32(c + 10, sizeof(b));
	assert_int_equal(run(e, 0, c, 16, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[4], 2);
	assert_int_equal(be16(b + 5), 0);
	/* Running: list 11 waits for the copy buffer; meanwhile LUN 1 leaves this poll group. */
	len = xlist(e, p, 0, 1, sg, 1, 11);
	other->queue = &e->q;
	other->cmd.holds_copy_buf = true;
	e->q.copy_owner = other;
	memset(c, 0, 16);
	c[0] = 0x83;
	put_be32(c + 10, len);
	memcpy(t->cdb, c, 16);
	t->dev = &e->dev;
	t->lun = &e->lun[0];
	t->queue = &e->q;
	e->iov[0] = (struct iovec){ p, len };
	t->data_iov = e->iov;
	t->data_cnt = 1;
	t->data_len = len;
	t->to_dev = true;
	t->pi_iov = NULL;
	t->pi_len = 0;
	t->done = count_done;
	before = nr_done;
	nvt_scsi_exec(t);
	assert_int_equal(nr_done, before);
	nvt_ns_chan_destroy(&e->ns[1], e->pg);
	nvt_scsi_copy_buf_put(other);
	nvt_poll_group_poll(e->pg, 0);
	assert_int_equal(nr_done, before + 1);
	assert_sense(e, 4, 0x44, 0);
	assert_int_equal(nvt_ns_chan_create(&e->ns[1], e->pg), 0);
	memset(c, 0, 16);
	c[0] = 0x84;
	c[2] = 11;
	put_be32(c + 10, sizeof(b));
	assert_int_equal(run(e, 0, c, 16, false, b, sizeof(b)), NVT_SCSI_GOOD);
	assert_int_equal(b[4], 2);
	free(other);
}

/* ---- the I/O path allocates nothing ---- */

static void test_no_alloc(void **state)
{
	struct env *e = *state;
	static uint8_t data[64 * BS], pi[64 * PIS], ext[8 * (BS + PIS)], p[256], sg[28], caw[4 * BS];
	uint8_t c[16];
	unsigned long before;
	uint32_t len;

	fill(data, sizeof(data), 2);
	for (int i = 0; i < 64; i++)
		tuple(pi + i * PIS, data + i * BS, 100 + (uint32_t)i, 0);
	for (int i = 0; i < 8; i++) {
		memcpy(ext + i * (BS + PIS), data + i * BS, BS);
		tuple(ext + i * (BS + PIS) + BS, data + i * BS, 300 + (uint32_t)i, 0);
	}
	seg(sg, 0, 1, 64, 100, 100);
	len = xlist(e, p, 0, 1, sg, 1, 1);
	assert_true(nr_allocs > 0);	/* the wrappers count: setup allocated */
	before = nr_allocs;
	cdb10(c, 0x2a, 0x20, 100, 64);
	assert_int_equal(run_pi(e, 0, c, 10, true, data, sizeof(data), pi, sizeof(pi)), NVT_SCSI_GOOD);
	cdb10(c, 0x28, 0x20, 100, 64);
	assert_int_equal(run_pi(e, 0, c, 10, false, data, sizeof(data), pi, sizeof(pi)), NVT_SCSI_GOOD);
	cdb10(c, 0x2a, 0x20, 300, 8);
	assert_int_equal(run(e, 0, c, 10, true, ext, sizeof(ext)), NVT_SCSI_GOOD);
	cdb10(c, 0x28, 0, 100, 64);
	assert_int_equal(run(e, 0, c, 10, false, data, sizeof(data)), NVT_SCSI_GOOD);
	cdb16(c, 0x93, 0, 1000, 1000);
	assert_int_equal(run(e, 0, c, 16, true, data, BS), NVT_SCSI_GOOD);
	cdb16(c, 0x93, 0x08, 1000, 10);
	memset(caw, 0, sizeof(caw));
	assert_int_equal(run(e, 0, c, 16, true, caw, BS), NVT_SCSI_GOOD);
	memset(c, 0, 16);
	c[0] = 0x89;
	put_be64(c + 2, 1000);
	c[13] = 2;
	assert_int_equal(run(e, 0, c, 16, true, caw, sizeof(caw)), NVT_SCSI_GOOD);
	assert_int_equal(xcopy(e, p, len), NVT_SCSI_GOOD);
	cdb10(c, 0x2f, 0, 0, 100);
	assert_int_equal(run(e, 0, c, 10, false, NULL, 0), NVT_SCSI_GOOD);
	assert_int_equal(nr_allocs, before);
}

/* Buffers in many small pieces (more than the layer's own iovec array): the command goes in steps. */
static void test_many_segments(void **state)
{
	struct env *e = *state;
	static uint8_t data[64 * BS + 128], back[64 * BS + 128], pi[64 * PIS], piback[64 * PIS];
	static struct iovec iov[264], piov[64 * PIS];
	struct nvt_scsi_task *t = e->t;
	uint8_t c[10];

	fill(data, sizeof(data), 12);
	for (int i = 0; i < 64; i++)
		tuple(pi + i * PIS, data + i * BS, 500 + (uint32_t)i, 0);
	for (int round = 0; round < 4; round++) {
		bool write = !(round & 1), sep = round >= 2 && e->type == NVT_PI_TYPE1;
		uint8_t *buf = write ? data : back;
		unsigned int before = nr_done;

		/* 128-byte pieces, plus 128 bytes more than the CDB moves: sliced, never the whole array. */
		for (int i = 0; i < 264; i++)
			iov[i] = (struct iovec){ buf + i * 128, 128 };
		cdb10(c, write ? 0x2a : 0x28, sep ? 0x20 : 0, 500, 64);
		memset(t->cdb, 0, sizeof(t->cdb));
		memcpy(t->cdb, c, 10);
		t->dev = &e->dev;
		t->lun = &e->lun[0];
		t->queue = &e->q;
		t->data_iov = iov;
		t->data_cnt = 257;
		t->data_len = 257 * 128;
		t->to_dev = write;
		/* The PI buffer in 1-byte pieces: fewer blocks per step than the data's slice allows. */
		for (unsigned int i = 0; i < 64 * PIS; i++)
			piov[i] = (struct iovec){ (write ? pi : piback) + i, 1 };
		t->pi_iov = sep ? piov : NULL;
		t->pi_cnt = sep ? 64 * PIS : 0;
		t->pi_len = sep ? sizeof(pi) : 0;
		t->done = count_done;
		nvt_scsi_exec(t);
		assert_int_equal(nr_done, before + 1);
		assert_int_equal(t->status, NVT_SCSI_GOOD);
		assert_int_equal(t->resid, 128);
		if (!write) {
			assert_memory_equal(back, data, 64 * BS);
			if (sep)
				assert_memory_equal(piback, pi, sizeof(pi));
		}
	}
}

/* Every way a bio ends, as the guest reads it. */
static void test_status_mapping(void **state)
{
	struct env *e = *state;
	static const struct {
		enum nvt_bio_status st;
		uint8_t key, asc, ascq;
		bool info;
	} map[] = {
		{ NVT_BIO_MEDIA_READ, 0x3, 0x11, 0x00, true },
		{ NVT_BIO_MEDIA_WRITE, 0x3, 0x0c, 0x00, true },
		{ NVT_BIO_NOSPC, 0x7, 0x27, 0x07, false },
		{ NVT_BIO_LBA_RANGE, 0x5, 0x21, 0x00, false },
		{ NVT_BIO_UNSUPPORTED, 0x5, 0x20, 0x00, false },
		{ NVT_BIO_ABORTED, 0xb, 0x00, 0x00, false },
		{ NVT_BIO_INTERNAL, 0x4, 0x44, 0x00, false },
	};
	struct nvt_bio bio;

	e->t->lun = &e->lun[0];
	e->t->dev = &e->dev;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		memset(&bio, 0, sizeof(bio));
		bio.ns = &e->ns[0];
		bio.status = map[i].st;
		bio.slba = 10;
		bio.err_lba = 17;
		nvt_scsi_bio_failed(e->t, &bio, 0);
		assert_sense(e, map[i].key, map[i].asc, map[i].ascq);
		if (map[i].info)
			assert_int_equal(sense_info(e), 17);
		else
			assert_false(e->t->sense[0] & 0x80);
	}
	/* PI: ASCQ by the field that failed, INFORMATION the LBA (VALID 0 past 32 bits). */
	for (int type = NVT_PI_ERR_GUARD; type <= NVT_PI_ERR_REFTAG; type++) {
		memset(&bio, 0, sizeof(bio));
		bio.ns = &e->ns[0];
		bio.op = NVT_BIO_READ;
		bio.status = NVT_BIO_PI;
		bio.pi_err.type = (enum nvt_pi_err_type)type;
		bio.pi_err.lba = 1ull << 33;
		nvt_scsi_bio_failed(e->t, &bio, 0);
		assert_sense(e, 0xb, 0x10, (uint8_t)type);
		assert_int_equal(e->t->sense[0], 0x70);
		bio.pi_err.lba = 1234;
		nvt_scsi_bio_failed(e->t, &bio, 0);
		assert_sense(e, 0xb, 0x10, (uint8_t)type);
		assert_int_equal(sense_info(e), 1234);
	}
	/* Miscompare: block offset * block size + byte, from the compared data's start. */
	memset(&bio, 0, sizeof(bio));
	bio.ns = &e->ns[0];
	bio.status = NVT_BIO_MISCOMPARE;
	bio.slba = 10;
	bio.err_lba = 12;
	bio.err_off = 5;
	nvt_scsi_bio_failed(e->t, &bio, 0);
	assert_sense(e, 0xe, 0x1d, 0);
	assert_int_equal(sense_info(e), 2 * BS + 5);

	/* A local NVMe device's own status (nvme backend), DNR or not. */
	static const struct {
		uint16_t dev;
		uint8_t key, asc, ascq;
		bool info;
	} dev[] = {
		{ 0x282, 0xb, 0x10, 0x01, true },
		{ 0x4283, 0xb, 0x10, 0x02, true },
		{ 0x284, 0xb, 0x10, 0x03, true },
		{ 0x281, 0x3, 0x11, 0x00, true },
		{ 0x280, 0x3, 0x0c, 0x00, true },
		{ 0x285, 0xe, 0x1d, 0x00, false },
		{ 0x4082, 0x2, 0x04, 0x00, false },
		{ 0x4002, 0x5, 0x24, 0x00, false },
		{ 0x0006, 0x4, 0x44, 0x00, false },
		{ 0x0307, 0x4, 0x44, 0x00, false },
	};
	for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) {
		memset(&bio, 0, sizeof(bio));
		bio.ns = &e->ns[0];
		bio.status = NVT_BIO_DEVICE;
		bio.dev_status = dev[i].dev;
		bio.err_lba = 4242;
		nvt_scsi_bio_failed(e->t, &bio, 0);
		assert_sense(e, dev[i].key, dev[i].asc, dev[i].ascq);
		if (dev[i].info)
			assert_int_equal(sense_info(e), 4242);
		else
			assert_false(e->t->sense[0] & 0x80);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inquiry, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_inquiry, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_vpd, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_vpd, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_vpd, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_vpd, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_read_capacity, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_read_capacity, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_read_capacity, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_read_capacity, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_crc64_served_without_pi, setup_crc64, teardown),
		cmocka_unit_test_setup_teardown(test_mode_sense, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_rsoc, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_rsoc, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_report_luns_tur_sense, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_rw_plain, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_rw_plain, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_rw_plain, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_pi_separate, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_pi_separate, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_pi_separate, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_pi_interleaved, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_pi_interleaved, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_pi_interleaved, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_pi_insert_strip, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_pi_insert_strip, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_pi_insert_strip, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_sense_descriptor, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_status_mapping, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_crc64, teardown),
		cmocka_unit_test_setup_teardown(test_caw, setup_crc64, teardown),
		cmocka_unit_test_setup_teardown(test_unmap, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_unmap, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_nvme_reservations, setup_mixed, teardown),
		cmocka_unit_test_setup_teardown(test_pr_sequence, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_pr_all_registrants, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_pr_bad_fields, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_pr_alloc_len, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_pr_nvme_hosts, setup_none, teardown),
		cmocka_unit_test(test_pr_nexus_id),
		cmocka_unit_test_setup_teardown(test_pr_aptpl, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_caw, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_caw, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_mixed, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_waits_for_buffer, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_no_alloc, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_many_segments, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_many_segments, setup_t1, teardown),
		/* Metadata without PI: chunked through md_buf, the guest never sees it. */
		cmocka_unit_test_setup_teardown(test_rw_plain, setup_opaque, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_opaque, teardown),
		cmocka_unit_test_setup_teardown(test_unmap, setup_opaque, teardown),
		cmocka_unit_test_setup_teardown(test_caw, setup_opaque, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_opaque, teardown),
		cmocka_unit_test_setup_teardown(test_rw_plain, setup_crc64, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_crc64, teardown),
		cmocka_unit_test_setup_teardown(test_caw_max_len, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_caw_max_len, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_caw_max_len, setup_md64, teardown),
		cmocka_unit_test_setup_teardown(test_caw_max_len, setup_t1md64, teardown),
		cmocka_unit_test_setup_teardown(test_rw_plain, setup_md64, teardown),
		cmocka_unit_test_setup_teardown(test_rw_plain, setup_t1md64, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_md64, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup_t1md64, teardown),
		cmocka_unit_test_setup_teardown(test_caw, setup_md64, teardown),
		cmocka_unit_test_setup_teardown(test_caw, setup_t1md64, teardown),
		cmocka_unit_test(test_lun_md_too_big),
		cmocka_unit_test_setup_teardown(test_xcopy_results_on_failure, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_app_tags, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_app_tags, setup_t2, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_app_tags, setup_t3, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_app_tags, setup_cross_fmt, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup_cross_fmt, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_other_controller, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_other_controller, setup_t1, teardown),
		cmocka_unit_test_setup_teardown(test_past_2_32, setup_crc64_big, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
