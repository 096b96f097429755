/* SPDX-License-Identifier: BSD-3-Clause */
/* Inside the SCSI command layer: sense building, big-endian fields, limits, and what scsi.c, scsi_io.c and scsi_xcopy.c share. */
#ifndef NVT_SCSI_INTERNAL_H
#define NVT_SCSI_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvt/scsi.h"

/* Sense keys (SPC-4 table 49). */
#define NVT_SK_NO_SENSE		0x0
#define NVT_SK_NOT_READY	0x2
#define NVT_SK_MEDIUM_ERROR	0x3
#define NVT_SK_HARDWARE_ERROR	0x4
#define NVT_SK_ILLEGAL_REQUEST	0x5
#define NVT_SK_DATA_PROTECT	0x7
#define NVT_SK_COPY_ABORTED	0xa
#define NVT_SK_ABORTED_COMMAND	0xb
#define NVT_SK_MISCOMPARE	0xe

/* Additional sense codes (ASC << 8 | ASCQ) the layer reports. */
#define NVT_ASC_NONE			0x0000
#define NVT_ASC_LUN_NOT_READY		0x0400
#define NVT_ASC_WRITE_ERROR		0x0c00
#define NVT_ASC_COPY_TARGET_UNREACHABLE	0x0d02
#define NVT_ASC_IU_FIELD		0x0e03	/* INVALID FIELD IN COMMAND INFORMATION UNIT: buffers vs CDB */
#define NVT_ASC_GUARD_CHECK		0x1001
#define NVT_ASC_APPTAG_CHECK		0x1002
#define NVT_ASC_REFTAG_CHECK		0x1003
#define NVT_ASC_UNRECOVERED_READ	0x1100
#define NVT_ASC_PARAM_LIST_LENGTH	0x1a00
#define NVT_ASC_MISCOMPARE		0x1d00
#define NVT_ASC_INVALID_OPCODE		0x2000
#define NVT_ASC_LBA_RANGE		0x2100
#define NVT_ASC_INVALID_FIELD_CDB	0x2400
#define NVT_ASC_LUN_NOT_SUPPORTED	0x2500
#define NVT_ASC_INVALID_FIELD_PARAM	0x2600
#define NVT_ASC_INVALID_PR_RELEASE	0x2604	/* INVALID RELEASE OF PERSISTENT RESERVATION */
#define NVT_ASC_TOO_MANY_CSCDS		0x2606
#define NVT_ASC_UNSUPPORTED_CSCD	0x2607
#define NVT_ASC_TOO_MANY_SEGS		0x2608
#define NVT_ASC_UNSUPPORTED_SEG		0x2609
#define NVT_ASC_SPACE_ALLOC_FAILED	0x2707
#define NVT_ASC_SAVING_NOT_SUPPORTED	0x3900
#define NVT_ASC_INTERNAL_FAILURE	0x4400
#define NVT_ASC_PR_RESOURCES		0x5504	/* INSUFFICIENT REGISTRATION RESOURCES */

/* Limits the layer advertises (VPD B0h, third-party copy) and enforces. */
#define NVT_SCSI_MAX_XFER_BYTES	(8u << 20)	/* one READ/WRITE */
#define NVT_SCSI_MAX_CAW	255u		/* MAXIMUM COMPARE AND WRITE LENGTH: a byte (less with big metadata) */
#define NVT_SCSI_MAX_WS		(1u << 22)	/* MAXIMUM WRITE SAME LENGTH, blocks */
#define NVT_SCSI_MAX_UNMAP	(1u << 22)	/* MAXIMUM UNMAP LBA COUNT */
#define NVT_SCSI_MAX_UNMAP_DESC	256u		/* MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT */
#define NVT_SCSI_XCOPY_MAX_LIST	1024u		/* MAXIMUM DESCRIPTOR LIST LENGTH */

/* EXTENDED COPY results kept per LUN (RECEIVE COPY RESULTS, copy status). */
struct nvt_scsi_lun_priv {
	/* Written by whichever queue ran the copy, read by any: each field on its own. */
	_Atomic uint32_t copy_list_id;		/* bit 8: a held result exists */
	_Atomic uint32_t copy_status;		/* 0 in progress, 1 done, 2 done with errors */
	_Atomic uint32_t copy_segs;		/* segments processed */
	_Atomic uint64_t copy_bytes;
};

static inline uint16_t nvt_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t nvt_get_be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t nvt_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t nvt_get_be64(const uint8_t *p)
{
	return (uint64_t)nvt_get_be32(p) << 32 | nvt_get_be32(p + 4);
}

static inline void nvt_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nvt_put_be32(uint8_t *p, uint32_t v)
{
	nvt_put_be16(p, (uint16_t)(v >> 16));
	nvt_put_be16(p + 2, (uint16_t)v);
}

static inline void nvt_put_be64(uint8_t *p, uint64_t v)
{
	nvt_put_be32(p, (uint32_t)(v >> 32));
	nvt_put_be32(p + 4, (uint32_t)v);
}

/* scsi.c */

/*
 * MAXIMUM COMPARE AND WRITE LENGTH of @lun: the write half's metadata is
 * built in md_buf in one piece, so at most what md_buf holds of it.
 */
static inline uint32_t nvt_scsi_max_caw(const struct nvt_scsi_lun *lun)
{
	uint32_t md = lun->ns->md_size;

	return md && NVT_SCSI_MD_BUF / md < NVT_SCSI_MAX_CAW ? NVT_SCSI_MD_BUF / md : NVT_SCSI_MAX_CAW;
}

/**
 * nvt_scsi_fail() - end @t with CHECK CONDITION: fixed-format sense with
 * sense key @key, @asc_ascq, and INFORMATION = @info if @info_valid and it
 * fits 32 bits (else VALID 0: D_SENSE is 0). Does not complete @t.
 */
void nvt_scsi_fail(struct nvt_scsi_task *t, uint8_t key, uint16_t asc_ascq, bool info_valid,
		   uint64_t info);

/** nvt_scsi_fail_simple() - nvt_scsi_fail() without INFORMATION. */
void nvt_scsi_fail_simple(struct nvt_scsi_task *t, uint8_t key, uint16_t asc_ascq);

/**
 * nvt_scsi_bad_field() - ILLEGAL REQUEST, INVALID FIELD IN CDB (or IN
 * PARAMETER LIST when !@cdb), with the sense-key-specific field pointer to
 * byte @byte (bit @bit, or -1 for the whole byte).
 */
void nvt_scsi_bad_field(struct nvt_scsi_task *t, bool cdb, uint16_t byte, int bit);

/** nvt_scsi_complete() - hand @t back to its front. */
void nvt_scsi_complete(struct nvt_scsi_task *t);

/**
 * nvt_scsi_data_in() - return @len bytes of @buf as the data-in buffer,
 * at most @alloc (the CDB's allocation length) and the buffer's own size;
 * sets resid. Return: bytes copied.
 */
uint32_t nvt_scsi_data_in(struct nvt_scsi_task *t, const void *buf, uint32_t len, uint32_t alloc);

/**
 * nvt_scsi_data_out() - copy @len bytes of the data-out buffer from @off
 * into @buf. Return: bytes copied (fewer if the buffer is shorter or the
 * command has no data-out).
 */
uint32_t nvt_scsi_data_out(const struct nvt_scsi_task *t, uint64_t off, void *buf, uint32_t len);

/** nvt_scsi_lun_by_naa() - the registered LUN with designator @naa (16 bytes), of any device, or NULL. */
struct nvt_scsi_lun *nvt_scsi_lun_by_naa(const uint8_t *naa);

/* scsi_io.c */

/**
 * nvt_scsi_bio_failed() - @t's sense for @bio's failure (nvt_bio_status
 * -> sense key, ASC, INFORMATION); @cmp_base: byte offset of the bio's
 * first block in the compared data, for MISCOMPARE.
 */
void nvt_scsi_bio_failed(struct nvt_scsi_task *t, const struct nvt_bio *bio, uint64_t cmp_base);

/** nvt_scsi_steps() - run @t's steps (t->cmd.next / absorb) until one is in flight or all are done. */
void nvt_scsi_steps(struct nvt_scsi_task *t);

/** nvt_scsi_bio_init() - @t->bio for @op on @ns from @t's queue, completion into the step loop. Return: false if @ns has no channel there. */
bool nvt_scsi_bio_init(struct nvt_scsi_task *t, struct nvt_ns *ns, enum nvt_bio_op op, uint64_t lba,
		       uint32_t nlb);

/* Block commands: each parses its CDB and completes @t. */
void nvt_scsi_exec_rw(struct nvt_scsi_task *t);
void nvt_scsi_exec_verify(struct nvt_scsi_task *t);
void nvt_scsi_exec_sync(struct nvt_scsi_task *t);
void nvt_scsi_exec_write_same(struct nvt_scsi_task *t);
void nvt_scsi_exec_unmap(struct nvt_scsi_task *t);
void nvt_scsi_exec_caw(struct nvt_scsi_task *t);

/* scsi_xcopy.c */
void nvt_scsi_exec_xcopy(struct nvt_scsi_task *t);
void nvt_scsi_exec_copy_results(struct nvt_scsi_task *t);

/* scsi_pr.c: PERSISTENT RESERVE IN / OUT; each completes @t. */
void nvt_scsi_exec_pr_in(struct nvt_scsi_task *t);
void nvt_scsi_exec_pr_out(struct nvt_scsi_task *t);

/** nvt_scsi_nexus() - @t's I_T nexus as an NVMe host identifier (its device's, nvt_scsi_dev_hostid()). */
const uint8_t *nvt_scsi_nexus(const struct nvt_scsi_task *t);

/** nvt_scsi_copy_buf_put() - @t is done with its queue's copy_buf: the next waiter starts. */
void nvt_scsi_copy_buf_put(struct nvt_scsi_task *t);

#endif /* NVT_SCSI_INTERNAL_H */
