/* SPDX-License-Identifier: BSD-3-Clause */
/* The SCSI command layer: LUNs and queues, sense data, dispatch, and the commands that describe the device (INQUIRY, VPD, READ CAPACITY, MODE SENSE, RSOC, REPORT LUNS). */
#define NVT_LOG_PREFIX "scsi: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/util.h"
#include "ns_internal.h"
#include "nvt/target.h"
#include "scsi_internal.h"

/* ---- sense data ---- */

void nvt_scsi_fail(struct nvt_scsi_task *t, uint8_t key, uint16_t asc_ascq, bool info_valid,
		   uint64_t info)
{
	uint8_t *s = t->sense;

	t->status = NVT_SCSI_CHECK_CONDITION;
	memset(s, 0, NVT_SCSI_SENSE_MAX);
	/*
	 * Fixed format (SPC-4 4.5.3): the control page says D_SENSE 0 and
	 * there is no MODE SELECT to change it. An INFORMATION value that
	 * does not fit its 32 bits is left out: VALID 0 (SPC-4 4.5.3).
	 */
	if (info > UINT32_MAX)
		info_valid = false;
	s[0] = 0x70 | (info_valid ? 0x80 : 0);
	s[2] = key;
	if (info_valid)
		nvt_put_be32(s + 3, (uint32_t)info);
	s[7] = 10;
	s[12] = (uint8_t)(asc_ascq >> 8);
	s[13] = (uint8_t)asc_ascq;
	t->sense_len = 18;
}

void nvt_scsi_fail_simple(struct nvt_scsi_task *t, uint8_t key, uint16_t asc_ascq)
{
	nvt_scsi_fail(t, key, asc_ascq, false, 0);
}

void nvt_scsi_bad_field(struct nvt_scsi_task *t, bool cdb, uint16_t byte, int bit)
{
	uint8_t *s = t->sense;

	nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST,
			     cdb ? NVT_ASC_INVALID_FIELD_CDB : NVT_ASC_INVALID_FIELD_PARAM);
	/* Sense-key specific field pointer (SPC-4 4.5.2.4.2): SKSV, C/D, BPV, bit, byte. */
	s[15] = 0x80 | (cdb ? 0x40 : 0) | (bit >= 0 ? 0x08 | (bit & 7) : 0);
	nvt_put_be16(s + 16, byte);
}

/* SCSI READ / WRITE opcodes, 6 to 16 bytes: the rest counts as other. */
static enum nvt_stat_kind nvt_scsi_stat_kind(uint8_t op)
{
	switch (op) {
	case 0x08: case 0x28: case 0xa8: case 0x88:
		return NVT_STAT_READ;
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:
		return NVT_STAT_WRITE;
	}
	return NVT_STAT_OTHER;
}

/*
 * Guests' commands count into the same per-namespace sets as NVMe hosts'
 * (the channel of the LUN's namespace on this queue's poll group, this
 * thread's): a failure counts under the NVMe status an NVMe host would
 * have got for the same bio result, other CHECK CONDITIONs as "other".
 */
static void nvt_scsi_count(struct nvt_scsi_task *t)
{
	struct nvt_ns *ns = t->lun->ns;
	struct nvt_ns_chan *chan = nvt_ns_chan_get(ns, t->queue->pg);
	enum nvt_stat_kind kind = nvt_scsi_stat_kind(t->cdb[0]);
	uint16_t status = 0;
	uint64_t bytes = 0;

	if (!chan)
		return;
	if (t->status != NVT_SCSI_GOOD)
		status = t->cmd.stat_status ? t->cmd.stat_status & ~NVT_SC_DNR :
			 NVT_STATUS(NVME_SCT_VS, 0xff);
	else if (kind != NVT_STAT_OTHER)
		bytes = (uint64_t)t->cmd.nlb << ns->lba_shift;
	nvt_stats_done(&chan->stats, kind, bytes, status, nvt_poll_group_now_ns(t->queue->pg) - t->cmd.stat_t0,
		       t->cmd.stat_started);
}

void nvt_scsi_complete(struct nvt_scsi_task *t)
{
	if (t->lun && t->cmd.stat_counted)
		nvt_scsi_count(t);
	t->done(t);
}

/* ---- buffers ---- */

uint32_t nvt_scsi_data_in(struct nvt_scsi_task *t, const void *buf, uint32_t len, uint32_t alloc)
{
	uint32_t n = len < alloc ? len : alloc;

	if (t->to_dev || !t->data_cnt) {
		t->resid = t->data_len;
		return 0;
	}
	if (n > t->data_len)
		n = t->data_len;
	n = (uint32_t)nvt_iov_copy(t->data_iov, t->data_cnt, 0, (void *)buf, n, true);
	t->resid = t->data_len - n;
	return n;
}

uint32_t nvt_scsi_data_out(const struct nvt_scsi_task *t, uint64_t off, void *buf, uint32_t len)
{
	if (!t->to_dev || off >= t->data_len)
		return 0;
	if (len > t->data_len - off)
		len = (uint32_t)(t->data_len - off);
	return (uint32_t)nvt_iov_copy(t->data_iov, t->data_cnt, off, buf, len, false);
}

/* ---- LUNs, the copy registry, queues ---- */

#define NVT_SCSI_REG_MAX	1024

/* LUNs EXTENDED COPY may name, from any device: slots set on the control path, read lock-free. */
static struct nvt_scsi_lun *_Atomic nvt_scsi_registry[NVT_SCSI_REG_MAX];

int nvt_scsi_lun_init(struct nvt_scsi_lun *lun, struct nvt_ns *ns, uint16_t id)
{
	static const char hex[] = "0123456789abcdef";
	struct nvt_scsi_lun_priv *priv;

	if (id > 16383)
		return -EINVAL;
	/* The layer inserts and strips metadata in md_buf chunks: at least one block's must fit. */
	if (ns->md_size > NVT_SCSI_MD_BUF) {
		nvt_err("nsid %u as LUN %u: %u-byte metadata per block, more than the SCSI layer's %u",
			ns->nsid, id, ns->md_size, NVT_SCSI_MD_BUF);
		return -EINVAL;
	}
	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	memset(lun, 0, sizeof(*lun));
	lun->ns = ns;
	lun->lun = id;
	lun->priv = priv;
	/* What sd can take: 8-byte tuples with the CRC16 guard (NOTES §2.1). */
	lun->pi = ns->pi.type != NVT_PI_NONE && ns->pi.guard == NVT_PI_GUARD_CRC16 && ns->md_size == 8;
	if (ns->pi.type != NVT_PI_NONE && !lun->pi)
		nvt_info("nsid %u as LUN %u: served without T10 PI (%s guard, %u-byte metadata; a SCSI guest takes 8-byte CRC16 tuples); its PI is kept by the target",
			 ns->nsid, id, ns->pi.guard == NVT_PI_GUARD_CRC64 ? "64-bit" : "16-bit",
			 ns->md_size);
	/* NAA 6 (IEEE Registered Extended): the 4-bit NAA, then the NGUID's first 124 bits. Stable. */
	lun->naa[0] = 0x60 | ns->nguid[0] >> 4;
	for (int i = 1; i < 16; i++)
		lun->naa[i] = (uint8_t)(ns->nguid[i - 1] << 4 | ns->nguid[i] >> 4);
	for (int i = 0; i < 16; i++) {
		lun->serial[2 * i] = hex[ns->nguid[i] >> 4];
		lun->serial[2 * i + 1] = hex[ns->nguid[i] & 0xf];
	}
	lun->serial[32] = '\0';
	return 0;
}

void nvt_scsi_lun_fini(struct nvt_scsi_lun *lun)
{
	nvt_scsi_unregister_lun(lun);
	free(lun->priv);
	lun->priv = NULL;
}

int nvt_scsi_register_lun(struct nvt_scsi_lun *lun)
{
	for (int i = 0; i < NVT_SCSI_REG_MAX; i++) {
		struct nvt_scsi_lun *cur = NULL;

		if (atomic_load(&nvt_scsi_registry[i]) == lun)
			return 0;
		if (atomic_compare_exchange_strong(&nvt_scsi_registry[i], &cur, lun))
			return 0;
	}
	return -ENOSPC;
}

void nvt_scsi_unregister_lun(struct nvt_scsi_lun *lun)
{
	for (int i = 0; i < NVT_SCSI_REG_MAX; i++) {
		struct nvt_scsi_lun *cur = lun;

		atomic_compare_exchange_strong(&nvt_scsi_registry[i], &cur, NULL);
	}
}

struct nvt_scsi_lun *nvt_scsi_lun_by_naa(const uint8_t *naa)
{
	for (int i = 0; i < NVT_SCSI_REG_MAX; i++) {
		struct nvt_scsi_lun *l = atomic_load_explicit(&nvt_scsi_registry[i],
							      memory_order_acquire);

		if (l && !memcmp(l->naa, naa, sizeof(l->naa)))
			return l;
	}
	return NULL;
}

int nvt_scsi_queue_init(struct nvt_scsi_queue *q, struct nvt_poll_group *pg)
{
	memset(q, 0, sizeof(*q));
	q->pg = pg;
	if (posix_memalign(&q->copy_buf, 4096, NVT_SCSI_COPY_BUF))
		return -ENOMEM;
	return 0;
}

void nvt_scsi_queue_fini(struct nvt_scsi_queue *q)
{
	free(q->copy_buf);
	q->copy_buf = NULL;
}

/* ---- INQUIRY and VPD ---- */

static void nvt_scsi_std_inquiry(struct nvt_scsi_task *t, uint32_t alloc)
{
	uint8_t b[66] = { 0 };

	if (!t->lun)
		b[0] = 0x7f;		/* SPC-4 6.6.2: qualifier 011b, type 1Fh: no LU here */
	b[2] = 0x06;			/* SPC-4 */
	b[3] = 0x12;			/* HISUP, response data format 2 */
	b[4] = sizeof(b) - 5;
	b[5] = 0x08 | (t->lun && t->lun->pi ? 0x01 : 0);	/* 3PC, PROTECT */
	b[7] = 0x02;			/* CMDQUE */
	memcpy(b + 8, "NVT     ", 8);
	memcpy(b + 16, "nvt namespace   ", 16);
	memcpy(b + 32, "0001", 4);
	/* Version descriptors: SAM-5, SPC-4, SBC-3. */
	nvt_put_be16(b + 58, 0x00a0);
	nvt_put_be16(b + 60, 0x0460);
	nvt_put_be16(b + 62, 0x04c0);
	nvt_scsi_data_in(t, b, sizeof(b), alloc);
}

static const uint8_t nvt_scsi_vpd_pages[] = { 0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2 };

/* VPD 8Fh, third-party copy (SPC-4 7.8.17): what sg_vpd -p tpc decodes. */
static uint32_t nvt_scsi_vpd_tpc(const struct nvt_scsi_lun *lun, uint8_t *b)
{
	uint8_t *d = b + 4;

	/* Supported Commands: EXTENDED COPY (LID1), RECEIVE COPY RESULTS 00h and 03h. */
	nvt_put_be16(d, 0x0001);
	nvt_put_be16(d + 2, 8);
	d[4] = 7;
	d[5] = 0x83;
	d[6] = 1;
	d[7] = 0x00;
	d[8] = 0x84;
	d[9] = 2;
	d[10] = 0x00;
	d[11] = 0x03;
	d += 12;
	/* Parameter Data. */
	nvt_put_be16(d, 0x0004);
	nvt_put_be16(d + 2, 0x1c);
	nvt_put_be16(d + 8, NVT_SCSI_XCOPY_CSCDS);
	nvt_put_be16(d + 10, NVT_SCSI_XCOPY_SEGS);
	nvt_put_be32(d + 12, NVT_SCSI_XCOPY_MAX_LIST);
	d += 32;
	/* Supported Descriptors: block -> block (02h), identification CSCD (E4h). */
	nvt_put_be16(d, 0x0008);
	nvt_put_be16(d + 2, 4);
	d[4] = 2;
	d[5] = 0x02;
	d[6] = 0xe4;
	d += 8;
	/* Supported CSCD IDs: none beyond the list's own. */
	nvt_put_be16(d, 0x000c);
	nvt_put_be16(d + 2, 4);
	d += 8;
	/* General Copy Operations. */
	nvt_put_be16(d, 0x8001);
	nvt_put_be16(d + 2, 0x20);
	nvt_put_be32(d + 4, 1);
	nvt_put_be32(d + 8, 1);
	nvt_put_be32(d + 12, 0xffffu * lun->ns->block_size);
	d[16] = lun->ns->lba_shift;
	d += 36;
	return (uint32_t)(d - b);
}

static void nvt_scsi_vpd(struct nvt_scsi_task *t, uint8_t page, uint32_t alloc)
{
	struct nvt_scsi_lun *lun = t->lun;
	struct nvt_ns *ns = lun->ns;
	uint8_t b[256] = { 0 };
	uint32_t len;

	b[1] = page;
	switch (page) {
	case 0x00:
		memcpy(b + 4, nvt_scsi_vpd_pages, sizeof(nvt_scsi_vpd_pages));
		len = 4 + sizeof(nvt_scsi_vpd_pages);
		break;
	case 0x80:
		memcpy(b + 4, lun->serial, 32);
		len = 4 + 32;
		break;
	case 0x83:
		/* One designator: NAA 6, binary, associated with the LU (what sg_xcopy and LIO use). */
		b[4] = 0x01;
		b[5] = 0x03;
		b[7] = 16;
		memcpy(b + 8, lun->naa, 16);
		len = 8 + 16;
		break;
	case 0x86:
		if (lun->pi) {
			/* SPT: the one type the namespace is formatted with; GRD_CHK, APP_CHK, REF_CHK. */
			static const uint8_t spt[] = { 0, 0x0, 0x2, 0x4 };

			b[4] = (uint8_t)(spt[ns->pi.type] << 3) | 0x04 | 0x02 |
			       (ns->pi.type != NVT_PI_TYPE3 ? 0x01 : 0);
		}
		b[5] = 0x01;		/* SIMPSUP */
		len = 64;
		break;
	case 0x8f:
		len = nvt_scsi_vpd_tpc(lun, b);
		break;
	case 0xb0: {
		uint32_t max_xfer = NVT_SCSI_MAX_XFER_BYTES >> ns->lba_shift;
		uint32_t gran = ns->block_size < 4096 ? 4096 / ns->block_size : 1;

		b[4] = 0x01;		/* WSNZ: WRITE SAME of 0 blocks is refused */
		b[5] = (uint8_t)nvt_scsi_max_caw(lun);
		nvt_put_be16(b + 6, (uint16_t)gran);
		nvt_put_be32(b + 8, max_xfer);
		nvt_put_be32(b + 12, max_xfer);
		nvt_put_be32(b + 20, NVT_SCSI_MAX_UNMAP);
		nvt_put_be32(b + 24, NVT_SCSI_MAX_UNMAP_DESC);
		nvt_put_be32(b + 28, gran);
		nvt_put_be32(b + 32, 0x80000000u);	/* UGAVALID, alignment 0 */
		nvt_put_be64(b + 36, NVT_SCSI_MAX_WS);
		len = 64;
		break;
	}
	case 0xb1:
		nvt_put_be16(b + 4, 1);		/* non-rotating medium */
		len = 64;
		break;
	case 0xb2:
		/* LBPU, LBPWS, LBPWS10, LBPRZ 001b; thin provisioned. */
		b[5] = 0x80 | 0x40 | 0x20 | 0x04;
		b[6] = 0x02;
		len = 8;
		break;
	default:
		nvt_scsi_bad_field(t, true, 2, -1);
		return;
	}
	nvt_put_be16(b + 2, (uint16_t)(len - 4));
	nvt_scsi_data_in(t, b, len, alloc);
}

static void nvt_scsi_inquiry(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint32_t alloc = nvt_get_be16(c + 3);

	if (c[1] & 0xfe) {
		nvt_scsi_bad_field(t, true, 1, c[1] & 0x02 ? 1 : -1);
		return;
	}
	if (!(c[1] & 0x01)) {
		if (c[2]) {
			nvt_scsi_bad_field(t, true, 2, -1);
			return;
		}
		nvt_scsi_std_inquiry(t, alloc);
		return;
	}
	if (!t->lun) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_LUN_NOT_SUPPORTED);
		return;
	}
	nvt_scsi_vpd(t, c[2], alloc);
}

/* ---- READ CAPACITY, MODE SENSE ---- */

static void nvt_scsi_read_capacity10(struct nvt_scsi_task *t)
{
	struct nvt_ns *ns = t->lun->ns;
	uint8_t b[8];
	uint64_t last = ns->nblocks - 1;

	nvt_put_be32(b, last > UINT32_MAX ? UINT32_MAX : (uint32_t)last);
	nvt_put_be32(b + 4, ns->block_size);
	nvt_scsi_data_in(t, b, sizeof(b), sizeof(b));
}

static void nvt_scsi_read_capacity16(struct nvt_scsi_task *t)
{
	struct nvt_scsi_lun *lun = t->lun;
	struct nvt_ns *ns = lun->ns;
	uint8_t b[32] = { 0 };

	nvt_put_be64(b, ns->nblocks - 1);
	nvt_put_be32(b + 8, ns->block_size);
	if (lun->pi)
		b[12] = (uint8_t)((ns->pi.type - 1) << 1) | 0x01;	/* P_TYPE, PROT_EN */
	b[14] = 0x80 | 0x40;	/* LBPME, LBPRZ: unmapped blocks read as zeroes */
	nvt_scsi_data_in(t, b, sizeof(b), nvt_get_be32(t->cdb + 10));
}

/* Mode page @code into @p (current values, or the changeable mask: none are). Return: its length. */
static uint32_t nvt_scsi_mode_page(const struct nvt_scsi_lun *lun, uint8_t code, bool changeable,
				   uint8_t *p)
{
	switch (code) {
	case 0x08:
		/* Caching (SBC-4 6.5.5): WCE where the backend has a volatile cache. */
		p[0] = 0x08;
		p[1] = 0x12;
		if (!changeable && (lun->ns->be->flags & NVT_BE_VOLATILE))
			p[2] = 0x04;
		return 20;
	case 0x0a:
		/* Control (SPC-4 7.5.8): unrestricted reordering, ATO (the guest owns app tags). */
		p[0] = 0x0a;
		p[1] = 0x0a;
		if (!changeable) {
			p[3] = 0x10;
			p[5] = 0x80;
			nvt_put_be16(p + 8, 0xffff);	/* busy timeout: unlimited */
		}
		return 12;
	default:
		return 0;
	}
}

static void nvt_scsi_mode_sense(struct nvt_scsi_task *t, bool ten)
{
	const uint8_t *c = t->cdb;
	struct nvt_ns *ns = t->lun->ns;
	uint8_t b[128] = { 0 };
	uint8_t pc = c[2] >> 6, page = c[2] & 0x3f, sub = c[3];
	bool dbd = c[1] & 0x08, llbaa = ten && (c[1] & 0x10);
	uint32_t hdr = ten ? 8 : 4, len, bdl = dbd ? 0 : llbaa ? 16 : 8;
	uint32_t alloc = ten ? nvt_get_be16(c + 7) : c[4];

	if (pc == 3) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	if (sub && !(sub == 0xff && page == 0x3f)) {
		nvt_scsi_bad_field(t, true, 3, -1);
		return;
	}
	len = hdr;
	if (bdl == 8) {
		uint64_t n = ns->nblocks;

		nvt_put_be32(b + len, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
		nvt_put_be32(b + len + 4, ns->block_size & 0xffffff);
	} else if (bdl == 16) {
		nvt_put_be64(b + len, ns->nblocks);
		nvt_put_be32(b + len + 12, ns->block_size);
	}
	len += bdl;
	if (page == 0x3f) {
		len += nvt_scsi_mode_page(t->lun, 0x08, pc == 1, b + len);
		len += nvt_scsi_mode_page(t->lun, 0x0a, pc == 1, b + len);
	} else {
		uint32_t n = nvt_scsi_mode_page(t->lun, page, pc == 1, b + len);

		if (!n) {
			nvt_scsi_bad_field(t, true, 2, 5);
			return;
		}
		len += n;
	}
	/* Header: mode data length, medium type 0, DPOFUA, block descriptor length. */
	if (ten) {
		nvt_put_be16(b, (uint16_t)(len - 2));
		b[3] = 0x10;
		b[4] = llbaa ? 0x01 : 0;
		nvt_put_be16(b + 6, (uint16_t)bdl);
	} else {
		b[0] = (uint8_t)(len - 1);
		b[2] = 0x10;
		b[3] = (uint8_t)bdl;
	}
	nvt_scsi_data_in(t, b, len, alloc);
}

/* ---- REPORT SUPPORTED OPERATION CODES ---- */

struct nvt_scsi_opinfo {
	uint8_t op;
	bool has_sa;
	uint16_t sa;
	uint8_t len;
	bool type2_only;		/* the 32-byte CDBs */
	uint8_t usage[32];		/* CDB USAGE DATA: the bits the layer reads */
};

/*
 * CDB USAGE DATA of the usual shapes: the opcode, the flag bits of byte 1
 * the layer reads, then every byte of the LBA and the length (the group
 * number byte of 10-byte CDBs is not read).
 */
#define NVT_USAGE_LBA10(op, b1) { op, b1, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff }
#define NVT_USAGE_LBA12(op, b1) { op, b1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }
#define NVT_USAGE_LBA16(op, b1) \
	{ op, b1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }
/* 16-byte service action CDBs: byte 2 as given, the allocation length in bytes 10-13. */
#define NVT_USAGE_SA16(op, b2) { op, 0x1f, b2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff }
/* PERSISTENT RESERVE IN: service action, allocation length; OUT: service action, scope and type, parameter list length. */
#define NVT_USAGE_PRIN { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff }
#define NVT_USAGE_PROUT { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff }
/* The 32-byte READ/WRITE(32) (Type 2 only): flags, the LBA, the tags and their masks, the length. */
#define NVT_USAGE_RW32 \
	{ 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xf8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, \
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }

static const struct nvt_scsi_opinfo nvt_scsi_ops[] = {
	{ 0x00, false, 0, 6, false, { 0x00 } },
	{ 0x03, false, 0, 6, false, { 0x03, 0x01, 0, 0, 0xff } },
	{ 0x08, false, 0, 6, false, { 0x08, 0x1f, 0xff, 0xff, 0xff } },
	{ 0x0a, false, 0, 6, false, { 0x0a, 0x1f, 0xff, 0xff, 0xff } },
	{ 0x12, false, 0, 6, false, { 0x12, 0x01, 0xff, 0xff, 0xff } },
	{ 0x1a, false, 0, 6, false, { 0x1a, 0x08, 0xff, 0xff, 0xff } },
	{ 0x1b, false, 0, 6, false, { 0x1b, 0x01, 0, 0x0f, 0xf7 } },
	{ 0x25, false, 0, 10, false, { 0x25 } },
	{ 0x28, false, 0, 10, false, NVT_USAGE_LBA10(0x28, 0xf8) },
	{ 0x2a, false, 0, 10, false, NVT_USAGE_LBA10(0x2a, 0xf8) },
	{ 0x2f, false, 0, 10, false, NVT_USAGE_LBA10(0x2f, 0xf6) },
	{ 0x35, false, 0, 10, false, NVT_USAGE_LBA10(0x35, 0x02) },
	{ 0x41, false, 0, 10, false, NVT_USAGE_LBA10(0x41, 0xe8) },
	{ 0x42, false, 0, 10, false, { 0x42, 0, 0, 0, 0, 0, 0, 0xff, 0xff } },
	{ 0x5a, false, 0, 10, false, { 0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff } },
	{ 0x5e, true, 0x00, 10, false, NVT_USAGE_PRIN },
	{ 0x5e, true, 0x01, 10, false, NVT_USAGE_PRIN },
	{ 0x5e, true, 0x02, 10, false, NVT_USAGE_PRIN },
	{ 0x5f, true, 0x00, 10, false, NVT_USAGE_PROUT },
	{ 0x5f, true, 0x01, 10, false, NVT_USAGE_PROUT },
	{ 0x5f, true, 0x02, 10, false, NVT_USAGE_PROUT },
	{ 0x5f, true, 0x03, 10, false, NVT_USAGE_PROUT },
	{ 0x5f, true, 0x04, 10, false, NVT_USAGE_PROUT },
	{ 0x5f, true, 0x05, 10, false, NVT_USAGE_PROUT },
	{ 0x5f, true, 0x06, 10, false, NVT_USAGE_PROUT },
	{ 0x7f, true, 0x0009, 32, true, NVT_USAGE_RW32 },
	{ 0x7f, true, 0x000b, 32, true, NVT_USAGE_RW32 },
	{ 0x83, true, 0x00, 16, false, NVT_USAGE_SA16(0x83, 0) },
	{ 0x84, true, 0x00, 16, false, NVT_USAGE_SA16(0x84, 0xff) },
	{ 0x84, true, 0x03, 16, false, NVT_USAGE_SA16(0x84, 0xff) },
	{ 0x88, false, 0, 16, false, NVT_USAGE_LBA16(0x88, 0xf8) },
	{ 0x89, false, 0, 16, false,
	  { 0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff } },
	{ 0x8a, false, 0, 16, false, NVT_USAGE_LBA16(0x8a, 0xf8) },
	{ 0x8f, false, 0, 16, false, NVT_USAGE_LBA16(0x8f, 0xf6) },
	{ 0x91, false, 0, 16, false, NVT_USAGE_LBA16(0x91, 0x02) },
	{ 0x93, false, 0, 16, false, NVT_USAGE_LBA16(0x93, 0xe9) },
	{ 0x9e, true, 0x10, 16, false, NVT_USAGE_SA16(0x9e, 0) },
	{ 0xa0, false, 0, 12, false, { 0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff } },
	{ 0xa3, true, 0x0c, 12, false, { 0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
	{ 0xa8, false, 0, 12, false, NVT_USAGE_LBA12(0xa8, 0xf8) },
	{ 0xaa, false, 0, 12, false, NVT_USAGE_LBA12(0xaa, 0xf8) },
};

static bool nvt_scsi_op_offered(const struct nvt_scsi_lun *lun, const struct nvt_scsi_opinfo *o)
{
	return !o->type2_only || (lun->pi && lun->ns->pi.type == NVT_PI_TYPE2);
}

static void nvt_scsi_rsoc(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint8_t opt = c[2] & 0x07, op = c[3];
	bool rctd = c[2] & 0x80;	/* with command timeouts descriptors (all zero: none known) */
	uint16_t sa = nvt_get_be16(c + 4);
	uint32_t alloc = nvt_get_be32(c + 6), len = 0;
	uint8_t b[20 * NVT_ARRAY_SIZE(nvt_scsi_ops) + 4];
	bool op_has_sa = false;

	memset(b, 0, sizeof(b));
	if (opt == 0) {
		len = 4;
		for (size_t i = 0; i < NVT_ARRAY_SIZE(nvt_scsi_ops); i++) {
			const struct nvt_scsi_opinfo *o = &nvt_scsi_ops[i];

			if (!nvt_scsi_op_offered(t->lun, o))
				continue;
			b[len] = o->op;
			nvt_put_be16(b + len + 2, o->sa);
			b[len + 5] = (o->has_sa ? 0x01 : 0) | (rctd ? 0x02 : 0);	/* SERVACTV, CTDP */
			nvt_put_be16(b + len + 6, o->len);
			len += 8;
			if (rctd) {
				nvt_put_be16(b + len, 0x0a);
				len += 12;
			}
		}
		nvt_put_be32(b, len - 4);
		nvt_scsi_data_in(t, b, len, alloc);
		return;
	}
	if (opt > 3) {
		nvt_scsi_bad_field(t, true, 2, 0);
		return;
	}
	for (size_t i = 0; i < NVT_ARRAY_SIZE(nvt_scsi_ops); i++)
		if (nvt_scsi_ops[i].op == op && nvt_scsi_ops[i].has_sa)
			op_has_sa = true;
	/* SPC-4 6.35.1: option 1 names an opcode without service actions, option 2 one with. */
	if ((opt == 1 && op_has_sa) || (opt == 2 && !op_has_sa)) {
		nvt_scsi_bad_field(t, true, 3, -1);
		return;
	}
	b[1] = 0x01;	/* SUPPORT: not supported */
	len = 4;
	for (size_t i = 0; i < NVT_ARRAY_SIZE(nvt_scsi_ops); i++) {
		const struct nvt_scsi_opinfo *o = &nvt_scsi_ops[i];

		if (o->op != op || (o->has_sa && o->sa != sa) || !nvt_scsi_op_offered(t->lun, o))
			continue;
		b[1] = 0x03 | (rctd ? 0x80 : 0);	/* SUPPORT: as the standard says; CTDP */
		nvt_put_be16(b + 2, o->len);
		memcpy(b + 4, o->usage, o->len);
		len = 4u + o->len;
		if (rctd) {
			nvt_put_be16(b + len, 0x0a);
			len += 12;
		}
		break;
	}
	nvt_scsi_data_in(t, b, len, alloc);
}

/* ---- REPORT LUNS, REQUEST SENSE ---- */

static void nvt_scsi_report_luns(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint32_t alloc = nvt_get_be32(c + 6), n = 0;
	uint8_t b[8 + 8 * NVT_SCSI_MAX_LUNS];

	if (c[2] > 2 && c[2] != 0x10 && c[2] != 0x11 && c[2] != 0x12) {
		nvt_scsi_bad_field(t, true, 2, -1);
		return;
	}
	if (alloc < 16) {
		nvt_scsi_bad_field(t, true, 6, -1);
		return;
	}
	memset(b, 0, sizeof(b));
	/* SELECT REPORT 01h: well-known LUNs only, of which we have none. */
	for (unsigned int i = 0; c[2] != 0x01 && t->dev && i < t->dev->nr_luns &&
			 i < NVT_SCSI_MAX_LUNS; i++) {
		const struct nvt_scsi_lun *l = t->dev->luns[i];
		uint8_t *e = b + 8 + 8 * n;

		if (!l)
			continue;
		/* As QEMU's SCSI bus: peripheral addressing below 256, flat space above. */
		if (l->lun < 256) {
			e[1] = (uint8_t)l->lun;
		} else {
			e[0] = 0x40 | (uint8_t)(l->lun >> 8);
			e[1] = (uint8_t)l->lun;
		}
		n++;
	}
	nvt_put_be32(b, n * 8);
	nvt_scsi_data_in(t, b, 8 + n * 8, alloc);
}

static void nvt_scsi_request_sense(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	bool desc = c[1] & 0x01;
	uint16_t code = t->lun ? NVT_ASC_NONE : NVT_ASC_LUN_NOT_SUPPORTED;
	uint8_t key = t->lun ? NVT_SK_NO_SENSE : NVT_SK_ILLEGAL_REQUEST;
	uint8_t b[18] = { 0 };

	/* Sense travels with each command (autosense): nothing is ever pending. */
	if (desc) {
		b[0] = 0x72;
		b[1] = key;
		b[2] = (uint8_t)(code >> 8);
		b[3] = (uint8_t)code;
		nvt_scsi_data_in(t, b, 8, c[4]);
		return;
	}
	b[0] = 0x70;
	b[2] = key;
	b[7] = 10;
	b[12] = (uint8_t)(code >> 8);
	b[13] = (uint8_t)code;
	nvt_scsi_data_in(t, b, sizeof(b), c[4]);
}

/* ---- dispatch ---- */

static void nvt_scsi_invalid_opcode(struct nvt_scsi_task *t)
{
	nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_OPCODE);
}

void nvt_scsi_exec(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;

	t->status = NVT_SCSI_GOOD;
	t->sense_len = 0;
	t->resid = t->data_len;
	memset(&t->cmd, 0, offsetof(struct nvt_scsi_cmd, segs));
	t->cmd.stat_t0 = nvt_poll_group_now_ns(t->queue->pg);
	t->cmd.stat_status = 0;
	t->cmd.stat_started = false;
	t->cmd.stat_counted = t->lun && nvt_stats_on();
	if (t->cmd.stat_counted) {
		struct nvt_ns_chan *chan = nvt_ns_chan_get(t->lun->ns, t->queue->pg);

		if (chan) {
			t->cmd.stat_started = true;
			nvt_stats_start(&chan->stats);
		}
	}
	/* SPC-4 4.6.2.7: without a LU, INQUIRY, REPORT LUNS and REQUEST SENSE still answer. */
	if (!t->lun) {
		switch (c[0]) {
		case 0x12:
			nvt_scsi_inquiry(t);
			break;
		case 0xa0:
			nvt_scsi_report_luns(t);
			break;
		case 0x03:
			nvt_scsi_request_sense(t);
			break;
		default:
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_LUN_NOT_SUPPORTED);
			break;
		}
		nvt_scsi_complete(t);
		return;
	}
	switch (c[0]) {
	case 0x00:	/* TEST UNIT READY */
	case 0x1b:	/* START STOP UNIT: a namespace is always spinning */
		break;
	case 0x03:
		nvt_scsi_request_sense(t);
		break;
	case 0x12:
		nvt_scsi_inquiry(t);
		break;
	case 0x1a:
		nvt_scsi_mode_sense(t, false);
		break;
	case 0x5a:
		nvt_scsi_mode_sense(t, true);
		break;
	case 0x25:
		nvt_scsi_read_capacity10(t);
		break;
	case 0x9e:
		if ((c[1] & 0x1f) != 0x10) {
			nvt_scsi_bad_field(t, true, 1, 4);
			break;
		}
		nvt_scsi_read_capacity16(t);
		break;
	case 0xa0:
		nvt_scsi_report_luns(t);
		break;
	case 0xa3:
		if ((c[1] & 0x1f) != 0x0c) {
			nvt_scsi_bad_field(t, true, 1, 4);
			break;
		}
		nvt_scsi_rsoc(t);
		break;
	case 0x08: case 0x0a: case 0x28: case 0x2a: case 0xa8: case 0xaa: case 0x88: case 0x8a:
	case 0x7f:
		nvt_scsi_exec_rw(t);
		return;
	case 0x2f: case 0x8f:
		nvt_scsi_exec_verify(t);
		return;
	case 0x35: case 0x91:
		nvt_scsi_exec_sync(t);
		return;
	case 0x41: case 0x93:
		nvt_scsi_exec_write_same(t);
		return;
	case 0x42:
		nvt_scsi_exec_unmap(t);
		return;
	case 0x89:
		nvt_scsi_exec_caw(t);
		return;
	case 0x83:
		nvt_scsi_exec_xcopy(t);
		return;
	case 0x84:
		nvt_scsi_exec_copy_results(t);
		return;
	case 0x5e:
		nvt_scsi_exec_pr_in(t);
		return;
	case 0x5f:
		nvt_scsi_exec_pr_out(t);
		return;
	default:
		nvt_scsi_invalid_opcode(t);
		break;
	}
	nvt_scsi_complete(t);
}
