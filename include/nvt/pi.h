/* SPDX-License-Identifier: BSD-3-Clause */
/* Protection information (T10 DIF / NVMe end-to-end PI): per-command context, generate, verify, extended-LBA copies. */
#ifndef NVT_PI_H
#define NVT_PI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>


/*
 * Everything here is pure: no I/O, no allocation, no locks, no logging. It
 * runs on the I/O path over the request's iovecs, which may split blocks and
 * PI tuples at any byte. The model is SPDK's (spdk_dif_ctx_init() once, then
 * generate/verify) with NVMe semantics: NVM Command Set 1.0 §5.2 "End-to-end
 * Data Protection" (and T10 SBC-4's protection information model for the
 * 16b guard).
 */

/* PI type of a namespace: DPS bits 2:0 of Identify Namespace. */
enum nvt_pi_type {
	NVT_PI_NONE	= 0,	/* no protection information (metadata, if any, is opaque) */
	NVT_PI_TYPE1	= 1,	/* ref tag = ILBRT + block index, checked */
	NVT_PI_TYPE2	= 2,	/* ref tag = EILBRT + block index, checked */
	NVT_PI_TYPE3	= 3,	/* ref tag opaque: neither incremented nor checked */
};

/* Guard format: the LBA format's PIF (NVM Command Set 1.0 §5.2). */
enum nvt_pi_guard {
	NVT_PI_GUARD_CRC16,	/* 8 bytes: CRC-16/T10-DIF guard, 16b app tag, 32b ref tag */
	NVT_PI_GUARD_CRC64,	/* 16 bytes: CRC-64/NVMe guard, 16b app, 48b ref tag (STS 0) */
};

/**
 * struct nvt_pi_format - how one namespace lays out protection information;
 * built from its config, immutable afterwards.
 */
struct nvt_pi_format {
	enum nvt_pi_type type;		/* NONE: split/join still move opaque metadata */
	enum nvt_pi_guard guard;	/* tuple format; ignored for NVT_PI_NONE */
	bool pi_first;			/* tuple first in the metadata (DPS bit 3), else last */
	uint32_t block_size;		/* data bytes per block */
	uint16_t md_size;		/* metadata bytes per block; with PI >= nvt_pi_size() */
};

/* PRINFO (CDW12 bits 13:10 of Read/Write/Compare/Verify): PRCHK bits 2:0 and PRACT bit 3. */
#define NVT_PI_CHECK_REFTAG	(1u << 0)	/* PRCHK bit 0: reference tag */
#define NVT_PI_CHECK_APPTAG	(1u << 1)	/* PRCHK bit 1: application tag */
#define NVT_PI_CHECK_GUARD	(1u << 2)	/* PRCHK bit 2: guard */
#define NVT_PI_CHECK_MASK	0x7u
#define NVT_PI_PRACT		(1u << 3)	/* insert on write, strip on read */
/* PRINFO from the little-endian-decoded CDW12 "control" half (struct nvt_sqe_rw.control). */
#define NVT_PI_PRINFO(control)	((uint8_t)(((control) >> 10) & 0xf))

/**
 * struct nvt_pi_ctx - one command's PI parameters, built once by
 * nvt_pi_ctx_init() at parse time and read-only afterwards.
 */
struct nvt_pi_ctx {
	const struct nvt_pi_format *fmt;	/* the namespace's; outlives the command */
	uint32_t check;			/* NVT_PI_CHECK_* to apply; no REFTAG for Type 3 */
	bool pract;			/* PRINFO.PRACT */
	uint64_t ref_tag;		/* Type 1/2: first block's; Type 3: what generate stores */
	uint16_t app_tag;		/* ELBAT: written by generate, compared by verify */
	uint16_t app_mask;		/* ELBATM: bits of the app tag verify compares */
	uint64_t slba;			/* first LBA, for nvt_pi_err.lba */
};

/* What a failed check found wrong. */
enum nvt_pi_err_type {
	NVT_PI_ERR_NONE = 0,	/* no error recorded */
	NVT_PI_ERR_GUARD,	/* guard != CRC of the block: SC 82h */
	NVT_PI_ERR_APPTAG,	/* (app tag & mask) != (ELBAT & mask): SC 83h */
	NVT_PI_ERR_REFTAG,	/* ref tag != expected: SC 84h */
};

/**
 * struct nvt_pi_err - the first block that failed verification.
 */
struct nvt_pi_err {
	enum nvt_pi_err_type type;
	uint64_t expected;	/* guard: CRC computed; app tag: ELBAT & mask; ref tag: expected */
	uint64_t actual;	/* the same field as stored (app tag: masked) */
	uint64_t lba;		/* ctx->slba + offset: goes to req->error_slba */
	uint32_t offset;	/* block index within the command */
};

/**
 * nvt_pi_size() - bytes of one PI tuple with guard format @guard.
 * @guard: NVT_PI_GUARD_*.
 *
 * Return: 8 for CRC16, 16 for CRC64.
 */
unsigned int nvt_pi_size(enum nvt_pi_guard guard);

/**
 * nvt_pi_format_validate() - check a namespace's PI format before use.
 * @fmt: the format.
 *
 * Rejects an unknown type or guard, a block size that is not a power of two
 * in 512..65536 (the config narrows it to 512 or 4096), and, with PI, a
 * metadata size smaller than the tuple. Every other function trusts a
 * format that passed this.
 *
 * Return: 0 or -EINVAL.
 */
int nvt_pi_format_validate(const struct nvt_pi_format *fmt);

/**
 * nvt_pi_ilbrt_ok() - NVM Command Set 1.0 §5.2.1.3: for Type 1 with the
 * reference tag check on, ILBRT must be the SLBA's low 32 (48) bits.
 * Return: false if the command must fail with NVT_ST_INVALID_PI.
 */
bool nvt_pi_ilbrt_ok(const struct nvt_pi_format *fmt, uint64_t slba, uint8_t prinfo,
		     uint64_t eilbrt);

/**
 * nvt_pi_ctx_init() - build a command's PI context from its SQE fields.
 * @ctx: filled in.
 * @fmt: the namespace's validated format; referenced, not copied.
 * @slba: the command's SLBA.
 * @prinfo: PRINFO, 4 bits (NVT_PI_PRINFO(control)).
 * @eilbrt: ILBRT (CDW14) for the 16b guard; for the 64b guard the 48-bit
 *          EILBRT (CDW3 bits 15:0 : CDW14). Masked to 32 or 48 bits here.
 * @apptag: ELBAT (CDW15 bits 15:0).
 * @appmask: ELBATM (CDW15 bits 31:16).
 *
 * The expected ref tag of the first block is @eilbrt for both Type 1 and
 * Type 2. For Type 1 the parser passes the SLBA here (Type 1 tags are the
 * LBA's low bits, so what PRACT=1 inserts is what a later read or scrub
 * expects), after refusing an ILBRT that PRCHK asks to be checked and that
 * differs (nvt_pi_ilbrt_ok(); Invalid Protection Information, as QEMU's
 * NVMe does). Type 3 ref tags are not checked (NVM Command Set 1.0 §5.2: the
 * controller "should not compare" them), so NVT_PI_CHECK_REFTAG is dropped from
 * @ctx->check. Without PI (NVT_PI_NONE) PRINFO is ignored: no checks, no
 * PRACT.
 *
 * Return: nothing; cannot fail.
 */
void nvt_pi_ctx_init(struct nvt_pi_ctx *ctx, const struct nvt_pi_format *fmt, uint64_t slba,
		     uint8_t prinfo, uint64_t eilbrt, uint16_t apptag, uint16_t appmask);

/**
 * nvt_pi_md_on_wire() - does metadata travel with the data on the fabric?
 * @ctx: the command's context.
 *
 * NVM Command Set 1.0 §5.2: with PRACT=1 and metadata exactly the size
 * of the tuple, the host moves data only (the controller inserts or
 * strips the PI). In every other case a fabric carries an extended LBA,
 * block_size + md_size bytes per block (fabrics have no separate metadata
 * buffer; see HOST-CONTRACT §3.1). Use it to size the transfer.
 *
 * Return: true if the wire format is data + metadata interleaved.
 */
bool nvt_pi_md_on_wire(const struct nvt_pi_ctx *ctx);

/**
 * nvt_pi_generate() - write PI tuples for @nlb blocks (PRACT=1 write).
 * @ctx: the command's context.
 * @data: data, @nlb * block_size bytes (more is ignored).
 * @data_cnt: elements of @data.
 * @md: separate metadata, @nlb * md_size bytes; each block's tuple is
 *      written in place, the other metadata bytes are left alone.
 * @md_cnt: elements of @md.
 * @nlb: blocks.
 *
 * Guard over the data and, with PI last, over the metadata bytes before the
 * tuple (NVM Command Set 1.0 §5.2); app tag = ELBAT unmasked; ref tag =
 * ctx->ref_tag + block index for Type 1/2 (wrapping at 32/48 bits), and
 * ctx->ref_tag itself on every block for Type 3 (as QEMU and SPDK do; the
 * tag is opaque there). All three fields are written whatever PRCHK says.
 * With NVT_PI_NONE nothing is written.
 *
 * Return: 0, or -EINVAL if @data or @md is shorter than @nlb blocks
 * (then nothing was written).
 */
int nvt_pi_generate(const struct nvt_pi_ctx *ctx, const struct iovec *data, unsigned int data_cnt,
		    const struct iovec *md, unsigned int md_cnt, uint32_t nlb);

/**
 * nvt_pi_generate_ext() - nvt_pi_generate() over an extended-LBA buffer.
 * @ctx: the command's context.
 * @ext: @nlb * (block_size + md_size) bytes; tuples are written in place.
 * @cnt: elements of @ext.
 * @nlb: blocks.
 *
 * Return: 0 or -EINVAL (buffer too short; nothing written).
 */
int nvt_pi_generate_ext(const struct nvt_pi_ctx *ctx, const struct iovec *ext, unsigned int cnt,
			uint32_t nlb);

/**
 * nvt_pi_generate_copy() - nvt_pi_generate() while copying the blocks
 * (PRACT=1 write into a memory backend): one pass over the data.
 * @ctx: the command's context.
 * @data: source data, @nlb * block_size bytes.
 * @data_cnt: elements of @data.
 * @md: source metadata, @nlb * md_size bytes: the bytes around the tuple
 *      are copied (and, before a last tuple, guarded); its tuple bytes are
 *      not read for anything.
 * @md_cnt: elements of @md.
 * @dst: data destination, @nlb * block_size bytes; no overlap with a source.
 * @dst_cnt: elements of @dst.
 * @dst_md: metadata destination, @nlb * md_size bytes: the copy, with the
 *          generated tuples. No overlap with a source.
 * @dst_md_cnt: elements of @dst_md.
 * @nlb: blocks.
 *
 * The guard is computed over the bytes as they land in @dst. Without PI
 * (NVT_PI_NONE) it only copies.
 *
 * Return: 0 or -EINVAL (a buffer is too short; nothing was copied).
 */
int nvt_pi_generate_copy(const struct nvt_pi_ctx *ctx, const struct iovec *data,
			 unsigned int data_cnt, const struct iovec *md, unsigned int md_cnt,
			 const struct iovec *dst, unsigned int dst_cnt,
			 const struct iovec *dst_md, unsigned int dst_md_cnt, uint32_t nlb);

/**
 * nvt_pi_verify_copy() - nvt_pi_verify() while copying the blocks (read out
 * of a memory backend, PI stripped or passed on): one pass over the data.
 * @ctx: the command's context.
 * @data: source data (the stored blocks).
 * @data_cnt: elements of @data.
 * @md: source metadata.
 * @md_cnt: elements of @md.
 * @dst: data destination, @nlb * block_size bytes; no overlap with a source.
 * @dst_cnt: elements of @dst.
 * @dst_md: metadata destination, or NULL (or @dst_md_cnt 0) to drop the
 *          metadata after checking it (strip).
 * @dst_md_cnt: elements of @dst_md.
 * @nlb: blocks.
 * @err: on -EILSEQ, the first failing block.
 *
 * The guard is computed over the bytes as they land in @dst. On -EILSEQ the
 * destinations hold a partial copy.
 *
 * Return: 0, -EILSEQ (see @err) or -EINVAL (a buffer is too short; nothing
 * was copied).
 */
int nvt_pi_verify_copy(const struct nvt_pi_ctx *ctx, const struct iovec *data,
		       unsigned int data_cnt, const struct iovec *md, unsigned int md_cnt,
		       const struct iovec *dst, unsigned int dst_cnt,
		       const struct iovec *dst_md, unsigned int dst_md_cnt, uint32_t nlb,
		       struct nvt_pi_err *err);

/**
 * nvt_pi_verify() - check @nlb blocks held as data + separate metadata.
 * @ctx: the command's context; ctx->check says what to compare.
 * @data: data, @nlb * block_size bytes.
 * @data_cnt: elements of @data.
 * @md: metadata, @nlb * md_size bytes.
 * @md_cnt: elements of @md.
 * @nlb: blocks.
 * @err: on -EILSEQ, the first failing block; untouched otherwise.
 *
 * Per block, in this order (as SPDK): escape, guard, app tag, ref tag; the
 * first mismatch stops the walk. Escape (NVM Command Set 1.0 §5.2):
 * Type 1/2 skip a block whose app tag is FFFFh; Type 3 one whose app tag is
 * FFFFh and ref tag all ones (32 or 48 bits). Without PI or with no check
 * bits it only validates lengths.
 *
 * Return: 0; -EILSEQ if a check failed (see @err); -EINVAL if a buffer is
 * shorter than @nlb blocks.
 */
int nvt_pi_verify(const struct nvt_pi_ctx *ctx, const struct iovec *data, unsigned int data_cnt,
		  const struct iovec *md, unsigned int md_cnt, uint32_t nlb,
		  struct nvt_pi_err *err);

/**
 * nvt_pi_verify_ext() - nvt_pi_verify() over an extended-LBA buffer, the
 * fabric's wire format (PRACT=0).
 * @ctx: the command's context.
 * @ext: @nlb * (block_size + md_size) bytes.
 * @cnt: elements of @ext.
 * @nlb: blocks.
 * @err: on -EILSEQ, the first failing block.
 *
 * Return: 0, -EILSEQ (see @err) or -EINVAL (buffer too short).
 */
int nvt_pi_verify_ext(const struct nvt_pi_ctx *ctx, const struct iovec *ext, unsigned int cnt,
		      uint32_t nlb, struct nvt_pi_err *err);

/**
 * nvt_pi_split() - copy an extended-LBA buffer into data + separate metadata
 * (PRACT=0 write: wire -> backend), without checking anything.
 * @fmt: the namespace's format (any type; NVT_PI_NONE moves opaque metadata).
 * @ext: source, @nlb * (block_size + md_size) bytes.
 * @ext_cnt: elements of @ext.
 * @data: destination for the data, @nlb * block_size bytes. May be the very
 *        same memory as @ext: the data is then compacted in place toward the
 *        front (it only ever moves backwards, so nothing unread is
 *        overwritten). Any other overlap is undefined.
 * @data_cnt: elements of @data.
 * @md: destination for the metadata, @nlb * md_size bytes; must not
 *      overlap @ext.
 * @md_cnt: elements of @md.
 * @nlb: blocks.
 *
 * Return: 0 or -EINVAL (a buffer is too short; nothing was copied).
 */
int nvt_pi_split(const struct nvt_pi_format *fmt, const struct iovec *ext, unsigned int ext_cnt,
		 const struct iovec *data, unsigned int data_cnt,
		 const struct iovec *md, unsigned int md_cnt, uint32_t nlb);

/**
 * nvt_pi_join() - interleave data + separate metadata into an extended-LBA
 * buffer (read: backend -> wire), without checking anything.
 * @fmt: the namespace's format.
 * @data: source data, @nlb * block_size bytes.
 * @data_cnt: elements of @data.
 * @md: source metadata, @nlb * md_size bytes.
 * @md_cnt: elements of @md.
 * @ext: destination, @nlb * (block_size + md_size) bytes; must not overlap
 *       the sources.
 * @ext_cnt: elements of @ext.
 * @nlb: blocks.
 *
 * Return: 0 or -EINVAL (a buffer is too short; nothing was copied).
 */
int nvt_pi_join(const struct nvt_pi_format *fmt, const struct iovec *data, unsigned int data_cnt,
		const struct iovec *md, unsigned int md_cnt,
		const struct iovec *ext, unsigned int ext_cnt, uint32_t nlb);

/**
 * nvt_pi_verify_split() - nvt_pi_verify_ext() and nvt_pi_split() in one pass
 * (PRACT=0 write): each block is checked as it is copied, and the guard is
 * computed over the bytes as they land in @data (a fused copy+CRC for both
 * guards), so what is checked is what gets stored.
 * @ctx: the command's context.
 * @ext: source, as for nvt_pi_split().
 * @ext_cnt: elements of @ext.
 * @data: data destination, as for nvt_pi_split() (may compact @ext in place).
 * @data_cnt: elements of @data.
 * @md: metadata destination, as for nvt_pi_split().
 * @md_cnt: elements of @md.
 * @nlb: blocks.
 * @err: on -EILSEQ, the first failing block.
 *
 * On -EILSEQ the destinations (and, in place, @ext) hold a partial copy.
 *
 * Return: 0, -EILSEQ (see @err) or -EINVAL (a buffer is too short; nothing
 * was copied).
 */
int nvt_pi_verify_split(const struct nvt_pi_ctx *ctx, const struct iovec *ext, unsigned int ext_cnt,
			const struct iovec *data, unsigned int data_cnt,
			const struct iovec *md, unsigned int md_cnt, uint32_t nlb,
			struct nvt_pi_err *err);

/**
 * nvt_pi_verify_join() - nvt_pi_verify() and nvt_pi_join() in one pass
 * (PRACT=0 read, or PRACT=1 read with metadata larger than the tuple, which
 * NVMe passes to the host): stored PI is checked as it is copied to the wire.
 * @ctx: the command's context.
 * @data: source data.
 * @data_cnt: elements of @data.
 * @md: source metadata.
 * @md_cnt: elements of @md.
 * @ext: destination, as for nvt_pi_join().
 * @ext_cnt: elements of @ext.
 * @nlb: blocks.
 * @err: on -EILSEQ, the first failing block.
 *
 * On -EILSEQ @ext holds a partial copy.
 *
 * Return: 0, -EILSEQ (see @err) or -EINVAL (a buffer is too short; nothing
 * was copied).
 */
int nvt_pi_verify_join(const struct nvt_pi_ctx *ctx,
		       const struct iovec *data, unsigned int data_cnt,
		       const struct iovec *md, unsigned int md_cnt,
		       const struct iovec *ext, unsigned int ext_cnt, uint32_t nlb,
		       struct nvt_pi_err *err);

/**
 * nvt_pi_ctx_advance() - @ctx for the blocks from @off on: SLBA and the
 * expected ref tag (Types 1/2, wrapping at 32/48 bits) move with them.
 */
void nvt_pi_ctx_advance(struct nvt_pi_ctx *ctx, uint64_t off);

/**
 * nvt_pi_retag() - give copied blocks the ref tags of their new LBAs.
 * @ctx: the destination's context (its format, ref_tag of the first block).
 * @md: @nlb blocks' metadata, contiguous, in @ctx's format; changed in place.
 * @nlb: blocks.
 *
 * Type 1/2: each tuple's ref tag becomes ctx->ref_tag + block index
 * (wrapping at 32/48 bits); guard and app tag are kept (the guard does not
 * cover the ref tag), so the application client's app tags travel with a
 * copy (SBC-4: ATO=1). Type 3 ref tags are the application client's as
 * well: nothing changes. Without PI nothing is touched.
 */
void nvt_pi_retag(const struct nvt_pi_ctx *ctx, void *md, uint32_t nlb);

/**
 * nvt_pi_copy_tags() - the application client's tags of copied blocks into
 * tuples of another format.
 * @src_fmt: the source's format.
 * @src: @nlb blocks' metadata in @src_fmt, contiguous.
 * @dst_fmt: the destination's format.
 * @dst: @nlb blocks' metadata in @dst_fmt, contiguous, with valid tuples
 *       (nvt_pi_generate()); must not overlap @src.
 * @nlb: blocks.
 *
 * Each destination tuple takes its source tuple's app tag, and where both
 * are Type 3 its ref tag too (cut to the destination's width). Guards and
 * the ref tags of Type 1/2 stay the destination's. Nothing happens unless
 * both formats have PI.
 */
void nvt_pi_copy_tags(const struct nvt_pi_format *src_fmt, const void *src,
		      const struct nvt_pi_format *dst_fmt, void *dst, uint32_t nlb);

#endif /* NVT_PI_H */
