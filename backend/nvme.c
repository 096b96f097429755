/* SPDX-License-Identifier: BSD-3-Clause */
/* The "nvme" backend: a local NVMe namespace through io_uring passthrough (/dev/ngXnY), its metadata and PI passed down to the device. */
/*
 * PI policy. The namespace layer (target/ns_io.c) has already inserted PI
 * (host PRACT=1) or checked the host's PI (PRACT=0) before a write reaches
 * this file, and checks (and strips, PRACT=1) what a read returns. So nvtd
 * always moves the metadata itself and never sends PRACT=1 on a Read or
 * Write: the device sees PRACT=0 with
 *  - writes: every check the type allows when nvtd inserted the PI (it is
 *    all valid), else the host's own PRCHK: a PRACT=0 PRCHK=0 write means
 *    "store unchecked" and keeps that meaning (NVMe 2.0 NVM §5.2.1);
 *  - reads: the bio's own PRCHK, PRACT=1 or not (a PRACT=1 read asks for
 *    its PRCHK checks too, NVM §5.2.1.2; asking for more fails legal
 *    commands: a Type 2 ILBRT the host never checks, 84h); nothing for the
 *    layer's own unchecked reads;
 *  - ref/app tags and the app mask from the bio's PI context, moved to
 *    each command's first block.
 * A device status (PI errors 82h..84h included) goes back to the host
 * unchanged through NVT_BIO_DEVICE.
 *
 * No NVT_LOG_PREFIX: open()'s lines are about one namespace's config and
 * start with "file:line: setting: "; I/O-path lines name the device.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libnvme.h>

#include "nvt/backend.h"
#include "nvt/bio.h"
#include "nvt/config.h"
#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/nvme_uring.h"
#include "nvt/pi.h"
#include "nvt/poll_group.h"
#include "nvt/util.h"
#include "nvt/wire.h"

#include "uring_ring.h"

#define NVT_NVME_SQ_ENTRIES	64		/* per channel; also the commands in flight */
#define NVT_NVME_STAGE_MAX	(128u << 10)	/* data bytes one command moves at most (and its staging buffer) */
#define NVT_NVME_MD_STAGE_MAX	(NVT_NVME_STAGE_MAX / 512 * NVT_MAX_METADATA)
#define NVT_NVME_BIO_OPS_MAX	16		/* commands one bio has out at most: a huge one cannot hold the ring */
#define NVT_NVME_TIMEOUT_MS	30000		/* the kernel's default io_timeout, but ours to say */
#define NVT_NVME_WHERE		(PATH_MAX + 64)

/* NVMe opcodes and fields this file sends (NVM Command Set 1.0). */
#define NVT_NVME_OP_FLUSH	0x00
#define NVT_NVME_OP_WRITE	0x01
#define NVT_NVME_OP_READ	0x02
#define NVT_NVME_OP_COMPARE	0x05
#define NVT_NVME_OP_WZ		0x08
#define NVT_NVME_OP_VERIFY	0x0c
#define NVT_NVME_OP_COPY	0x19
#define NVT_NVME_ONCS_COMPARE	(1u << 0)
#define NVT_NVME_ONCS_WZ	(1u << 3)
#define NVT_NVME_ONCS_VERIFY	(1u << 7)
#define NVT_NVME_ONCS_COPY	(1u << 8)
#define NVT_NVME_OCFS_FMT0	(1u << 0)	/* copy descriptor format 0 (16b guard / no PI) */
#define NVT_NVME_WZ_DEAC	(1u << 25)	/* CDW12: deallocate allowed */
#define NVT_NVME_DLFEAT_READ_MASK 0x7u	/* DLFEAT 2:0: what a deallocated block reads as */
#define NVT_NVME_DLFEAT_ZEROES	0x1u	/* ... all zeroes */
#define NVT_NVME_DLFEAT_WZ_DEAC	(1u << 3)	/* Write Zeroes supports DEAC */
#define NVT_NVME_NLB_MAX	65536u		/* NLB is 16 bits, 0-based (Write Zeroes, Verify, Compare) */
#define NVT_NVME_SC_COMPARE	0x285		/* Compare Failure (SCT 2) */
/*
 * chan_destroy waits this long for commands out: the kernel's timeout, its
 * abort and then a controller reset (another timeout) and some margin.
 */
#define NVT_NVME_DRAIN_MS	(2 * NVT_NVME_TIMEOUT_MS + 30000)

/* ---- what the device is: parsed from Identify, pure (the unit test feeds it recorded pages) ---- */

/* One namespace's format and the controller's limits, as Identify gave them. */
struct nvt_nvme_info {
	uint32_t nsid;
	uint64_t nsze;			/* blocks */
	uint32_t lbs;			/* data bytes per block */
	uint16_t ms;			/* metadata bytes per block */
	bool ext;			/* FLBAS.MSET: metadata interleaved with data (extended LBA) */
	uint8_t lbaf;			/* the LBA format in use */
	uint8_t pi_type;		/* DPS 2:0 */
	bool pi_first;			/* DPS bit 3 */
	uint8_t pif;			/* ELBAF.PIF: 0 16b guard, 1 32b, 2 64b */
	uint8_t sts;			/* ELBAF.STS: storage tag bits */
	uint32_t max_xfer;		/* MDTS in bytes (4 KiB MPSMIN assumed); 0: no limit */
	uint32_t wz_max, verify_max;	/* WZSL, VSL (CNS 06h) in bytes, as MDTS; 0: no limit */
	uint16_t oncs, ocfs;
	uint16_t mssrl;
	uint32_t mcl;
	uint8_t msrc;			/* 0-based */
	bool vwc;
	uint8_t dlfeat;			/* bits 2:0 = 001b: deallocated blocks read as zeroes */
};

/* NVMe 2.0 §4.1.5.1 (FLBAS): bits 3:0 and 6:5 name the LBA format; bit 4 is MSET. */
static unsigned int nvt_nvme_flbas_index(uint8_t flbas)
{
	return (flbas & 0xfu) | ((unsigned int)(flbas >> 5) & 3u) << 4;
}

/**
 * nvt_nvme_parse() - the format and limits of a namespace from its Identify
 * pages. @nvm is the NVM Command Set Identify Namespace (CNS 05h), or NULL
 * where the controller has no extended LBA formats (CTRATT.ELBAS clear: 16b
 * guard) or it failed (refused for a PI namespace with ELBAS set).
 * Return: 0, or -EINVAL with why nvtd cannot serve it in @why.
 */
static int nvt_nvme_parse(const struct nvme_id_ctrl *ctrl, const struct nvme_id_ns *id,
			  const struct nvme_nvm_id_ns *nvm, uint32_t nsid,
			  struct nvt_nvme_info *info, char *why, size_t why_len)
{
	unsigned int fi = nvt_nvme_flbas_index(id->flbas);
	bool elbas = le32toh(ctrl->ctratt) & NVME_CTRL_CTRATT_ELBAS;
	unsigned int pi_size;

	*info = (struct nvt_nvme_info){ .nsid = nsid };
	if (fi > id->nlbaf || fi >= 64) {
		snprintf(why, why_len, "FLBAS names LBA format %u, past the %u it lists", fi,
			 id->nlbaf + 1u);
		return -EINVAL;
	}
	info->lbaf = (uint8_t)fi;
	info->nsze = le64toh(id->nsze);
	info->ext = id->flbas & 0x10;
	info->ms = le16toh(id->lbaf[fi].ms);
	info->pi_type = id->dps & 7;
	info->pi_first = id->dps & 8;
	if (nvm) {
		uint32_t elbaf = le32toh(nvm->elbaf[fi]);

		info->sts = elbaf & 0x7f;
		info->pif = (elbaf >> 7) & 3;
	}
	info->oncs = le16toh(ctrl->oncs);
	info->ocfs = le16toh(ctrl->ocfs);
	info->vwc = ctrl->vwc & 1;
	info->dlfeat = id->dlfeat;
	info->mssrl = le16toh(id->mssrl);
	info->mcl = le32toh(id->mcl);
	info->msrc = id->msrc;
	info->max_xfer = ctrl->mdts && ctrl->mdts < 20 ? 4096u << ctrl->mdts : 0;
	if (id->lbaf[fi].ds < 9 || id->lbaf[fi].ds > 12) {
		snprintf(why, why_len, "%s-byte blocks (LBA format %u): nvtd serves 512..4096",
			 id->lbaf[fi].ds < 32 ? "2^ds" : "?", fi);
		if (id->lbaf[fi].ds < 32)
			snprintf(why, why_len, "%u-byte blocks (LBA format %u): nvtd serves 512..4096",
				 1u << id->lbaf[fi].ds, fi);
		return -EINVAL;
	}
	info->lbs = 1u << id->lbaf[fi].ds;
	if (!info->nsze) {
		snprintf(why, why_len, "the namespace has no blocks (NSZE 0)");
		return -EINVAL;
	}
	/* Its size in bytes (metadata included) must be a number: NSZE comes from the device. */
	if (info->nsze > UINT64_MAX / (info->lbs + info->ms)) {
		snprintf(why, why_len, "NSZE %" PRIu64 " blocks of %u+%u bytes is more bytes than 64 bits count",
			 info->nsze, info->lbs, info->ms);
		return -EINVAL;
	}
	if (info->ms > NVT_MAX_METADATA) {
		snprintf(why, why_len, "%u bytes of metadata per block: nvtd keeps at most %u",
			 info->ms, NVT_MAX_METADATA);
		return -EINVAL;
	}
	if (info->pi_type > 3) {
		snprintf(why, why_len, "DPS %#x names no PI type", id->dps);
		return -EINVAL;
	}
	if (!info->pi_type)
		return 0;
	/* With ELBAS the guard size is in CNS 05h only: guessing 16 bits would fail every check. */
	if (elbas && !nvm) {
		snprintf(why, why_len, "PI type %u, but the NVM Identify Namespace (CNS 05h) failed: the guard size (16 or 64 bits) is unknown",
			 info->pi_type);
		return -EINVAL;
	}
	if (info->pif == 1 || info->pif == 3) {
		snprintf(why, why_len, "PI with a %s guard (PIF %u): nvtd has 16- and 64-bit guards",
			 info->pif == 1 ? "32-bit" : "reserved", info->pif);
		return -EINVAL;
	}
	if (info->sts) {
		snprintf(why, why_len, "PI with %u storage tag bits (STS): nvtd has none", info->sts);
		return -EINVAL;
	}
	pi_size = info->pif == 2 ? 16 : 8;
	if (info->ms < pi_size) {
		snprintf(why, why_len, "PI type %u in %u bytes of metadata (the tuple is %u)",
			 info->pi_type, info->ms, pi_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * The NVM Command Set Identify Controller (CNS 06h): WZSL and VSL, in
 * units of 4 KiB (MPSMIN assumed) as a power of two, as MDTS; 0: no limit.
 * @nvm NULL: the controller has no such page (before NVMe 2.0): no limits.
 */
static void nvt_nvme_parse_nvm_ctrl(const struct nvme_id_ctrl_nvm *nvm, struct nvt_nvme_info *info)
{
	info->wz_max = nvm && nvm->wzsl && nvm->wzsl < 20 ? 4096u << nvm->wzsl : 0;
	info->verify_max = nvm && nvm->vsl && nvm->vsl < 20 ? 4096u << nvm->vsl : 0;
}

/* The namespace's format as nvtd's PI code sees it. */
static struct nvt_pi_format nvt_nvme_pi_format(const struct nvt_nvme_info *info)
{
	return (struct nvt_pi_format){
		.type = (enum nvt_pi_type)info->pi_type,
		.guard = info->pif == 2 ? NVT_PI_GUARD_CRC64 : NVT_PI_GUARD_CRC16,
		.pi_first = info->pi_first,
		.block_size = info->lbs,
		.md_size = info->ms,
	};
}

/* PRCHK bits a namespace of @type can check at all: no ref tag for Type 3 (NVM §5.2.1.1). */
static uint8_t nvt_nvme_prchk_all(enum nvt_pi_type type)
{
	if (!type)
		return 0;
	return type == NVT_PI_TYPE3 ? NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG : NVT_PI_CHECK_MASK;
}

/* The device's fields of one Read/Write: PRINFO (PRACT always 0, see the top), tags, mask. */
struct nvt_nvme_prinfo {
	uint8_t prinfo;
	uint64_t ref_tag;	/* ILBRT/EILBRT of the command's first block */
	uint16_t app_tag, app_mask;
};

/**
 * nvt_nvme_prinfo() - what the device is told to check for blocks
 * [@off, @off + n) of @bio, by the policy at the top of this file.
 */
static struct nvt_nvme_prinfo nvt_nvme_prinfo(const struct nvt_bio *bio,
					      const struct nvt_pi_format *fmt, uint64_t off)
{
	struct nvt_nvme_prinfo p = { 0 };
	struct nvt_pi_ctx ctx;

	if (!fmt->type || !bio->pi.fmt)
		return p;	/* no PI, or the layer's own I/O without a context: unchecked */
	ctx = bio->pi;
	nvt_pi_ctx_advance(&ctx, off);
	if (bio->op == NVT_BIO_WRITE)
		p.prinfo = ctx.pract ? nvt_nvme_prchk_all(fmt->type) : (uint8_t)ctx.check;
	else if (bio->flags & NVT_BIO_PI_CHECK_READ)
		p.prinfo = (uint8_t)ctx.check;	/* read, verify, compare: the host's checks */
	p.prinfo &= nvt_nvme_prchk_all(fmt->type);
	p.ref_tag = ctx.ref_tag;
	p.app_tag = ctx.app_tag;
	p.app_mask = ctx.app_mask;
	return p;
}

/*
 * A device's cqe->res as a bio's end: @st (> 0, SCT/SC with DNR kept) is
 * the device's NVMe status. Returned for the unit test.
 */
static uint16_t nvt_nvme_status_of(int res)
{
	return (uint16_t)((unsigned int)res & (NVT_NVME_STATUS_SC_MASK | NVT_NVME_STATUS_DNR));
}

/* ---- the namespace and its channels ---- */

/* Devices held by some namespace: two never share one. Control path: a mutex and a list. */
struct nvt_nvme_claim {
	struct nvt_nvme_claim *next;
	dev_t rdev;
	uint32_t nsid;
	int line;
};

static pthread_mutex_t nvt_nvme_claims_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nvt_nvme_claim *nvt_nvme_claims;

struct nvt_nvme_ns {
	int fd;				/* /dev/ngXnY */
	char path[PATH_MAX];
	struct nvt_nvme_info info;
	uint32_t cmd_blocks;		/* blocks one command moves at most (staging, MDTS) */
	uint32_t wz_blocks;		/* one Write Zeroes at most (NLB, WZSL) */
	uint32_t verify_blocks;		/* one Verify at most (NLB, VSL) */
	struct nvt_nvme_claim claim;
	bool claimed;
	atomic_bool gone_logged;	/* the device disappeared: said once */
	atomic_bool timeout_logged;
};

/* One command in flight: a piece of a bio of at most cmd_blocks blocks, staged. */
struct nvt_nvme_op {
	struct nvt_nvme_op *next;	/* free list */
	struct nvt_bio *bio;
	uint64_t off;			/* first block, from bio->slba */
	uint32_t nlb;
	uint8_t opcode;
	uint16_t buf_index;		/* its staging buffers, registered buffer @buf_index */
	uint8_t *data;			/* NVT_NVME_STAGE_MAX (+ md for extended LBAs) */
	uint8_t *md;			/* separate metadata, NVT_NVME_MD_STAGE_MAX */
	uint16_t probe_status;		/* a re-read with checks off, finding the LBA of this PI error */
};

struct nvt_nvme_chan {
	struct nvt_uring_ring ring;	/* fixed_files: the device is file 0; fixed_bufs: op i's data is buffer i */
	struct nvt_ns *ns;
	struct nvt_nvme_ns *n;
	bool dying;			/* chan_destroy began: a bio submitted now fails at once (nothing parks) */
	struct nvt_nvme_op ops[NVT_NVME_SQ_ENTRIES];
	struct nvt_nvme_op *free_ops;
	unsigned int nr_free_ops;
	uint8_t *stage_mem;
	size_t stage_per;		/* bytes of one op's staging (data + md) */
	struct nvt_bio *parked, **parked_tail;	/* bios waiting for ops, served round-robin */
	unsigned int nr_waiting;		/* on the parked list */
	uint64_t nr_cmds, nr_parked;
};

/* Bytes one block takes in a command's data buffer. */
static uint32_t nvt_nvme_ext_bs(const struct nvt_nvme_info *info)
{
	return info->lbs + (info->ext ? info->ms : 0);
}

/* ---- the I/O path ---- */

/*
 * Where SQEs come from: the ring. The unit test defines these before it
 * includes this file, to run the split, park and completion logic on fake
 * SQEs and CQEs.
 */
#ifndef NVT_NVME_GET_SQE
#define NVT_NVME_GET_SQE(c)	io_uring_get_sqe(&(c)->ring.uring)
#define NVT_NVME_SQ_SPACE(c)	io_uring_sq_space_left(&(c)->ring.uring)
#endif

/*
 * Stage @op's blocks [op->off, +nlb) between the bio and the staging
 * buffers: a write's out of the bio (@in false), a read's back into it
 * (@in true). Extended LBAs are joined from (split into) the bio's data and
 * metadata, separate ones copied. Return: 0 or -EINVAL (the bio's buffers
 * are shorter than it says).
 */
static int nvt_nvme_stage(const struct nvt_ns *ns, const struct nvt_nvme_info *info,
			  struct nvt_nvme_op *op, bool in)
{
	struct nvt_bio *bio = op->bio;
	size_t dlen = (size_t)op->nlb * info->lbs, mlen = (size_t)op->nlb * info->ms;
	uint64_t doff = op->off * info->lbs, moff = op->off * info->ms;
	struct iovec d[16], m[16], e = { op->data, (size_t)op->nlb * nvt_nvme_ext_bs(info) };
	unsigned int dc, mc;

	if (!info->ext || !info->ms) {
		if (nvt_iov_copy(bio->iov, bio->iov_cnt, doff, op->data, dlen, in) != dlen)
			return -EINVAL;
		if (mlen && nvt_iov_copy(bio->md_iov, bio->md_iov_cnt, moff, op->md, mlen, in) != mlen)
			return -EINVAL;
		return 0;
	}
	dc = nvt_iov_slice(bio->iov, bio->iov_cnt, doff, dlen, d, 16);
	mc = nvt_iov_slice(bio->md_iov, bio->md_iov_cnt, moff, mlen, m, 16);
	if (nvt_iov_len(d, dc) == dlen && nvt_iov_len(m, mc) == mlen)
		return in ? nvt_pi_split(&ns->pi, &e, 1, d, dc, m, mc, op->nlb)
			  : nvt_pi_join(&ns->pi, d, dc, m, mc, &e, 1, op->nlb);
	/* More than 16 pieces in one command's span: block by block, never allocating. */
	for (uint32_t i = 0; i < op->nlb; i++) {
		uint8_t *b = op->data + (size_t)i * nvt_nvme_ext_bs(info);

		if (nvt_iov_copy(bio->iov, bio->iov_cnt, doff + (uint64_t)i * info->lbs, b,
				 info->lbs, in) != info->lbs ||
		    nvt_iov_copy(bio->md_iov, bio->md_iov_cnt, moff + (uint64_t)i * info->ms,
				 b + info->lbs, info->ms, in) != info->ms)
			return -EINVAL;
	}
	return 0;
}

/* Fill @sqe for @op. */
static void nvt_nvme_prep(struct nvt_nvme_chan *c, struct nvt_nvme_op *op, struct io_uring_sqe *sqe)
{
	const struct nvt_nvme_info *info = &c->n->info;
	struct nvme_uring_cmd *cmd = nvt_uring_prep_nvme(sqe, c->ring.fixed_files ? 0 : c->n->fd,
							 NVME_URING_CMD_IO);
	uint64_t slba = op->bio->slba + op->off;

	if (c->ring.fixed_files)
		sqe->flags |= IOSQE_FIXED_FILE;
	cmd->opcode = op->opcode;
	cmd->nsid = info->nsid;
	cmd->timeout_ms = NVT_NVME_TIMEOUT_MS;
	if (op->opcode == NVT_NVME_OP_WZ) {
		/*
		 * No data; zeroes of [slba + off, +nlb). Only namespaces without
		 * metadata get here. A Deallocate is a Write Zeroes with DEAC: it
		 * reads back zeroes whatever the device does with DSM's hint.
		 */
		cmd->cdw10 = (uint32_t)slba;
		cmd->cdw11 = (uint32_t)(slba >> 32);
		cmd->cdw12 = (op->nlb - 1) |
			     (op->bio->flags & NVT_BIO_DEAC || op->bio->op == NVT_BIO_DEALLOCATE ?
			      NVT_NVME_WZ_DEAC : 0);
		/* FUA: the zeroes are durable before the completion, as for a Write. */
		if (op->bio->flags & NVT_BIO_FUA)
			cmd->cdw12 |= 1u << 30;
	} else if (op->opcode == NVT_NVME_OP_COPY) {
		/* One source range, descriptor format 0 (32 bytes): SLBA at 8, NLB (0-based) at 16. */
		uint8_t *r = op->data;
		uint64_t src = htole64(op->bio->copy_src);
		uint16_t nlb = htole16((uint16_t)(op->bio->nlb - 1));

		memset(r, 0, 32);
		memcpy(r + 8, &src, 8);
		memcpy(r + 16, &nlb, 2);
		cmd->addr = (uintptr_t)r;
		cmd->data_len = 32;
		cmd->cdw10 = (uint32_t)op->bio->slba;
		cmd->cdw11 = (uint32_t)(op->bio->slba >> 32);
		cmd->cdw12 = 0;		/* NR 0 (one range), format 0, PRINFOR/W 0: no PI here */
		if (c->ring.fixed_bufs)
			nvt_uring_sqe_fixed_buf(sqe, op->buf_index);
	} else if (op->opcode != NVT_NVME_OP_FLUSH) {
		struct nvt_nvme_prinfo p = nvt_nvme_prinfo(op->bio, &c->ns->pi, op->off);

		if (op->probe_status)
			p.prinfo = 0;	/* the stored blocks as they are: nvtd finds the bad one */

		/* Verify moves no data; Read, Write and Compare the staged blocks. */
		if (op->opcode != NVT_NVME_OP_VERIFY) {
			cmd->addr = (uintptr_t)op->data;
			cmd->data_len = op->nlb * nvt_nvme_ext_bs(info);
		}
		if (info->ms && !info->ext && op->opcode != NVT_NVME_OP_VERIFY) {
			cmd->metadata = (uintptr_t)op->md;
			cmd->metadata_len = op->nlb * info->ms;
		}
		cmd->cdw10 = (uint32_t)slba;
		cmd->cdw11 = (uint32_t)(slba >> 32);
		cmd->cdw12 = (op->nlb - 1) | (uint32_t)p.prinfo << 26;
		if (op->opcode == NVT_NVME_OP_WRITE && (op->bio->flags & NVT_BIO_FUA))
			cmd->cdw12 |= 1u << 30;
		/* 64b guard: the 48-bit EILBRT is CDW3 15:0 then CDW14 (NVM §5.2.1.3). */
		cmd->cdw14 = (uint32_t)p.ref_tag;
		if (c->ns->pi.guard == NVT_PI_GUARD_CRC64)
			cmd->cdw3 = (uint32_t)(p.ref_tag >> 32) & 0xffffu;
		cmd->cdw15 = p.app_tag | (uint32_t)p.app_mask << 16;
		if (c->ring.fixed_bufs && op->opcode != NVT_NVME_OP_VERIFY)
			nvt_uring_sqe_fixed_buf(sqe, op->buf_index);
	}
	io_uring_sqe_set_data(sqe, op);
	c->nr_cmds++;
}

static void nvt_nvme_op_free(struct nvt_nvme_chan *c, struct nvt_nvme_op *op)
{
	op->bio = NULL;
	op->next = c->free_ops;
	c->free_ops = op;
	c->nr_free_ops++;
}

/* Blocks one command of @bio moves at most; 0: one command without an LBA span of its own. */
static uint32_t nvt_nvme_op_max(const struct nvt_nvme_chan *c, const struct nvt_bio *bio)
{
	switch (bio->op) {
	case NVT_BIO_FLUSH:
	case NVT_BIO_COPY:
		return 0;
	case NVT_BIO_WRITE_ZEROES:
	case NVT_BIO_DEALLOCATE:
		return c->n->wz_blocks;
	case NVT_BIO_VERIFY:
		return c->n->verify_blocks;
	default:
		return c->n->cmd_blocks;
	}
}

/* Blocks of @bio's command starting @off blocks in (0: a command without an LBA span of its own). */
static uint32_t nvt_nvme_op_blocks(const struct nvt_nvme_chan *c, const struct nvt_bio *bio,
				   uint64_t off)
{
	uint64_t left = bio->nlb - off;
	uint32_t max = nvt_nvme_op_max(c, bio);

	return !max ? 0 : left < max ? (uint32_t)left : max;
}

/* Everything of @bio is handed to commands (an unspanned one counts as one block). */
static bool nvt_nvme_all_issued(const struct nvt_nvme_chan *c, const struct nvt_bio *bio)
{
	return bio->be_priv.next_off >= (nvt_nvme_op_max(c, bio) ? bio->nlb : 1);
}

static bool nvt_nvme_failed(const struct nvt_bio *bio)
{
	return bio->status || bio->be_priv.err;
}

/* @bio failed with -errno @err, unless it had already failed: the first failure is the bio's. */
static void nvt_nvme_fail_errno(struct nvt_bio *bio, int err)
{
	if (!nvt_nvme_failed(bio))
		bio->be_priv.err = err;
}

/* The device's status @st at @lba, unless the bio had already failed. */
static void nvt_nvme_fail_status(struct nvt_bio *bio, uint16_t st, uint64_t lba)
{
	if (!nvt_nvme_failed(bio))
		nvt_bio_device_fail(bio, st, lba);
}

static uint8_t nvt_nvme_opcode(enum nvt_bio_op op)
{
	switch (op) {
	case NVT_BIO_FLUSH:
		return NVT_NVME_OP_FLUSH;
	case NVT_BIO_WRITE:
		return NVT_NVME_OP_WRITE;
	case NVT_BIO_WRITE_ZEROES:
	case NVT_BIO_DEALLOCATE:
		return NVT_NVME_OP_WZ;
	case NVT_BIO_COMPARE:
		return NVT_NVME_OP_COMPARE;
	case NVT_BIO_VERIFY:
		return NVT_NVME_OP_VERIFY;
	case NVT_BIO_COPY:
		return NVT_NVME_OP_COPY;
	default:
		return NVT_NVME_OP_READ;
	}
}

/*
 * Hand @bio's next commands to the ring, as many as free ops and SQEs
 * allow: a bio bigger than the ring goes in waves, the rest when earlier
 * commands complete (nvt_nvme_resume()). Staged first, SQEs after each: an
 * op is taken only with an SQE there for it; at most @max now, and no bio
 * has more than NVT_NVME_BIO_OPS_MAX out (one huge Deallocate or Write
 * Zeroes of 65536 commands must not keep a 1-block read waiting for all
 * its waves: the others get ops too). A write whose buffers are
 * short fails the bio; its commands already out still complete.
 * Return: commands issued.
 */
static unsigned int nvt_nvme_issue(struct nvt_nvme_chan *c, struct nvt_bio *bio,
				   unsigned int max)
{
	unsigned int done = 0;

	while (done < max && !nvt_nvme_failed(bio) && !nvt_nvme_all_issued(c, bio) && c->free_ops &&
	       bio->be_priv.pending < NVT_NVME_BIO_OPS_MAX && NVT_NVME_SQ_SPACE(c)) {
		struct nvt_nvme_op *op = c->free_ops;

		c->free_ops = op->next;
		c->nr_free_ops--;
		op->bio = bio;
		op->off = bio->be_priv.next_off;
		op->probe_status = 0;
		op->nlb = nvt_nvme_op_blocks(c, bio, op->off);
		op->opcode = nvt_nvme_opcode(bio->op);
		bio->be_priv.next_off += op->nlb ? op->nlb : 1;
		if ((op->opcode == NVT_NVME_OP_WRITE || op->opcode == NVT_NVME_OP_COMPARE) &&
		    nvt_nvme_stage(c->ns, &c->n->info, op, false)) {
			nvt_nvme_op_free(c, op);
			nvt_nvme_fail_errno(bio, -EINVAL);
			break;
		}
		bio->be_priv.pending++;
		nvt_nvme_prep(c, op, NVT_NVME_GET_SQE(c));
		done++;
	}
	return done;
}

/* @bio has nothing in flight and will issue nothing more: done. */
static bool nvt_nvme_finished(const struct nvt_nvme_chan *c, const struct nvt_bio *bio)
{
	return !bio->be_priv.pending && (nvt_nvme_failed(bio) || nvt_nvme_all_issued(c, bio));
}

/* @bio to the parked list's tail. */
static void nvt_nvme_link(struct nvt_nvme_chan *c, struct nvt_bio *bio)
{
	bio->be_priv.next = NULL;
	bio->be_priv.parked = true;
	*c->parked_tail = bio;
	c->parked_tail = &bio->be_priv.next;
	c->nr_waiting++;
}

/* The parked list's head, off it. */
static struct nvt_bio *nvt_nvme_unlink(struct nvt_nvme_chan *c)
{
	struct nvt_bio *bio = c->parked;

	c->parked = bio->be_priv.next;
	if (!c->parked)
		c->parked_tail = &c->parked;
	bio->be_priv.parked = false;
	c->nr_waiting--;
	return bio;
}

static void nvt_nvme_park(struct nvt_nvme_chan *c, struct nvt_bio *bio)
{
	nvt_nvme_link(c, bio);
	c->nr_parked++;
}

/*
 * The parked bios, round-robin: each in turn gets one next command and goes
 * to the tail, so freed ops are shared (a small read behind a huge
 * Deallocate gets one at the next completion, not after its last wave).
 * The walk ends when a whole round issued nothing (out of ops or SQEs, or
 * all at their NVT_NVME_BIO_OPS_MAX). A parked bio all issued or failed
 * meanwhile leaves here, finished if nothing of it is out. Return: whether
 * bios are still parked.
 */
static bool nvt_nvme_resume(struct nvt_uring_ring *r)
{
	struct nvt_nvme_chan *c = container_of(r, struct nvt_nvme_chan, ring);
	unsigned int idle = 0;

	while (c->parked && idle < c->nr_waiting) {
		struct nvt_bio *bio = nvt_nvme_unlink(c);
		unsigned int issued = nvt_nvme_issue(c, bio, 1);

		if (nvt_nvme_failed(bio) || nvt_nvme_all_issued(c, bio)) {
			if (nvt_nvme_finished(c, bio))
				nvt_bio_backend_done(bio, bio->be_priv.err);
			continue;
		}
		nvt_nvme_link(c, bio);
		idle = issued ? 0 : idle + 1;
	}
	return c->parked;
}

/*
 * A command ended with -errno @res: what the host hears. A device that went
 * away (hot removal, controller dead) is Namespace Not Ready with DNR (it
 * will not come back by retrying), said once; a
 * timed-out or cancelled command is Command Aborted By Host, which a host
 * may retry; anything else goes through the layer's errno mapping.
 */
static int nvt_nvme_errno(struct nvt_nvme_chan *c, struct nvt_bio *bio, uint64_t lba, int res)
{
	struct nvt_nvme_ns *n = c->n;

	switch (-res) {
	case ENODEV:
	case ENXIO:
	case ESHUTDOWN:
	case ENOLINK:
	case EBADF:
		if (!atomic_exchange(&n->gone_logged, true))
			nvt_err("%s (nsid %u): the device is gone (%s): I/O fails with Namespace Not Ready",
				n->path, c->ns->nsid, strerror(-res));
		nvt_nvme_fail_status(bio, NVT_STATUS(NVME_SCT_GENERIC, NVME_SC_NS_NOT_READY) | NVT_SC_DNR,
				     lba);
		return 0;
	case ETIMEDOUT:
	case EINTR:
	case ECANCELED:
		if (!atomic_exchange(&n->timeout_logged, true))
			nvt_warn("%s (nsid %u): a command at LBA %" PRIu64 " timed out or was cancelled (%s, limit %u ms): Command Aborted By Host",
				 n->path, c->ns->nsid, lba, strerror(-res), NVT_NVME_TIMEOUT_MS);
		nvt_nvme_fail_status(bio, NVT_STATUS(NVME_SCT_PATH, NVME_SC_CMD_ABORTED_BY_HOST), lba);
		return 0;
	default:
		return res;
	}
}

/* An end-to-end check error (SCT 2, SC 82h..84h): the device says which check, not which block. */
static bool nvt_nvme_is_pi_status(uint16_t st)
{
	st &= NVT_NVME_STATUS_SC_MASK;
	return st >= 0x282 && st <= 0x284;
}

/*
 * The LBA of a read's PI error: the probe re-read @op's blocks with
 * checks off; nvtd's own check of them names the first bad one. Return:
 * that LBA, or the command's first if nvtd finds none (a check the device
 * does differently).
 */
static uint64_t nvt_nvme_probe_lba(struct nvt_nvme_chan *c, struct nvt_nvme_op *op)
{
	const struct nvt_nvme_info *info = &c->n->info;
	struct nvt_nvme_prinfo p;
	struct nvt_pi_ctx ctx = op->bio->pi;
	struct nvt_pi_err err;
	struct iovec d = { op->data, (size_t)op->nlb * nvt_nvme_ext_bs(info) };
	struct iovec m = { op->md, (size_t)op->nlb * info->ms };
	int ret;

	op->probe_status = 0;
	p = nvt_nvme_prinfo(op->bio, &c->ns->pi, op->off);
	nvt_pi_ctx_advance(&ctx, op->off);
	/* What the device was asked to check, all of it where nvtd strips. */
	ctx.check = p.prinfo ? p.prinfo : nvt_nvme_prchk_all(c->ns->pi.type);
	if (info->ext)
		ret = nvt_pi_verify_ext(&ctx, &d, 1, op->nlb, &err);
	else
		ret = nvt_pi_verify(&ctx, &d, 1, &m, 1, op->nlb, &err);
	return ret == -EILSEQ ? err.lba : op->bio->slba + op->off;
}

/*
 * One command, @data (an op of @r's channel), ended with cqe->res @res.
 * The bio completes when its last command does and nothing more is to be
 * issued; its next wave goes out from nvt_nvme_resume().
 */
static void nvt_nvme_complete(struct nvt_uring_ring *r, void *data, int res)
{
	struct nvt_nvme_chan *c = container_of(r, struct nvt_nvme_chan, ring);
	struct nvt_nvme_op *op = data;
	struct nvt_bio *bio = op->bio;
	uint64_t lba = bio->slba + op->off;
	int err = 0;

	if (op->probe_status) {
		uint16_t st = op->probe_status;

		/* The probe's own failure leaves the command's first LBA: the status is what matters. */
		nvt_nvme_fail_status(bio, st, res ? lba : nvt_nvme_probe_lba(c, op));
	} else if (res > 0) {
		uint16_t st = nvt_nvme_status_of(res);
		struct io_uring_sqe *sqe;

		/*
		 * A read's PI error over several blocks: which one? The same
		 * blocks again, unchecked, and nvtd's check says (the host's
		 * error log gets the LBA). At most one SQE per op is ever out, so
		 * one is free here.
		 */
		if (op->opcode == NVT_NVME_OP_READ && op->nlb > 1 && bio->pi.fmt &&
		    !nvt_nvme_failed(bio) && nvt_nvme_is_pi_status(st) &&
		    NVT_NVME_SQ_SPACE(c) && (sqe = NVT_NVME_GET_SQE(c))) {
			op->probe_status = st;
			nvt_nvme_prep(c, op, sqe);
			return;
		}
		/* The device's own status, unchanged: the first failing piece's is the bio's. */
		nvt_nvme_fail_status(bio, st, lba);
	} else if (res < 0) {
		err = nvt_nvme_errno(c, bio, lba, res);
	} else if (op->opcode == NVT_NVME_OP_READ && nvt_nvme_stage(c->ns, &c->n->info, op, true)) {
		err = -EINVAL;
	}
	nvt_nvme_op_free(c, op);
	if (err)
		nvt_nvme_fail_errno(bio, err);
	bio->be_priv.pending--;
	/* A parked bio is finished by nvt_nvme_resume(), which holds it. */
	if (!bio->be_priv.parked && nvt_nvme_finished(c, bio))
		nvt_bio_backend_done(bio, bio->be_priv.err);
}

static const struct nvt_uring_ring_ops nvt_nvme_ring_ops = {
	.complete = nvt_nvme_complete,
	.resume = nvt_nvme_resume,
};

/*
 * Whether @bio can go to the device as it is: 0, -EOPNOTSUPP (the layer
 * does it over Read and Write), -EINVAL (buffers the contract does not
 * allow) or -ERANGE.
 */
/*
 * A Deallocate may go as Write Zeroes with DEAC: only where the device
 * deallocates on it (DLFEAT bit 3) and deallocated blocks read as zeroes
 * (001b). Otherwise the controller "shall write" zeroes, a full-range
 * physical write; then the layer's emulation keeps what nvtd advertises.
 */
static bool nvt_nvme_dealloc_native(const struct nvt_nvme_info *in)
{
	return (in->oncs & NVT_NVME_ONCS_WZ) && (in->dlfeat & NVT_NVME_DLFEAT_WZ_DEAC) &&
	       (in->dlfeat & NVT_NVME_DLFEAT_READ_MASK) == NVT_NVME_DLFEAT_ZEROES;
}

static int nvt_nvme_check(const struct nvt_nvme_chan *c, const struct nvt_bio *bio)
{
	const struct nvt_nvme_info *in = &c->n->info;
	const struct nvt_ns *ns = c->ns;
	uint64_t src = bio->copy_src, dst = bio->slba, nlb = bio->nlb;

	switch (bio->op) {
	case NVT_BIO_READ:
	case NVT_BIO_WRITE:
		/* The layer hands separate metadata, all of it: the device needs every byte. */
		if ((bio->flags & NVT_BIO_EXT) || (ns->md_size && !bio->md_iov))
			return -EINVAL;
		break;
	case NVT_BIO_FLUSH:
		return 0;
	case NVT_BIO_WRITE_ZEROES:
	case NVT_BIO_DEALLOCATE:
		/*
		 * Native only without metadata: what a device leaves in the
		 * metadata is not nvtd's contract (zeroes, the escape PI, or the
		 * layer's PI), and QEMU 7.2 keeps the old PI on a PRACT=0 Write
		 * Zeroes. A Deallocate is a Write Zeroes with DEAC, not DSM: DSM
		 * is a hint a device may ignore (QEMU discard=ignore, ranges
		 * below an SSD's granule), and hosts are told deallocated blocks
		 * read as zeroes (DLFEAT). And only where that is a real
		 * deallocation (nvt_nvme_dealloc_native()).
		 */
		if (!(in->oncs & NVT_NVME_ONCS_WZ) || ns->md_size || bio->md_iov ||
		    (bio->op == NVT_BIO_DEALLOCATE && !nvt_nvme_dealloc_native(in)))
			return -EOPNOTSUPP;
		break;
	case NVT_BIO_COMPARE:
		/*
		 * Native without metadata only: what a device compares of the
		 * metadata (PI or not, PRACT) is not nvtd's contract; the layer
		 * checks the PI and compares itself there.
		 */
		if (!(in->oncs & NVT_NVME_ONCS_COMPARE) || ns->md_size || (bio->flags & NVT_BIO_EXT))
			return -EOPNOTSUPP;
		break;
	case NVT_BIO_VERIFY:
		if (!(in->oncs & NVT_NVME_ONCS_VERIFY))
			return -EOPNOTSUPP;
		break;
	case NVT_BIO_COPY:
		/*
		 * The layer hands Copy only without PI, one range at a time. Native
		 * where the device has Copy with format 0 and the range is within
		 * its limits (MSSRL, MCL; 0 is no limit) and does not overlap its
		 * destination; the layer copies the rest.
		 */
		if (!(in->oncs & NVT_NVME_ONCS_COPY) || !(in->ocfs & NVT_NVME_OCFS_FMT0) ||
		    ns->pi.type || !nlb || nlb > NVT_NVME_NLB_MAX || (in->mssrl && nlb > in->mssrl) ||
		    (in->mcl && nlb > in->mcl) || (src < dst + nlb && dst < src + nlb))
			return -EOPNOTSUPP;
		if (src >= ns->nblocks || nlb > ns->nblocks - src)
			return -ERANGE;
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (bio->slba >= ns->nblocks || bio->nlb > ns->nblocks - bio->slba)
		return -ERANGE;
	return 0;
}

static void nvt_nvme_submit(struct nvt_bio *bio, void *chan)
{
	struct nvt_nvme_chan *c = chan;
	int ret;

	nvt_uring_ring_poller_on(&c->ring);
	bio->be_priv = (struct nvt_bio_be){ 0 };
	if (c->dying) {
		/* A completion's callback submitting while the channel drains: it would park forever. */
		bio->status = NVT_BIO_ABORTED;
		bio->err_lba = bio->slba;
		nvt_bio_backend_done(bio, 0);
		return;
	}
	ret = nvt_nvme_check(c, bio);
	if (ret || (bio->op != NVT_BIO_FLUSH && !bio->nlb) ||
	    (bio->op == NVT_BIO_FLUSH && !c->n->info.vwc)) {
		/* Refused, nothing to move, or nothing volatile to flush. */
		nvt_bio_backend_done(bio, ret);
		return;
	}
	/* Bios already waiting: in their round, at once if ops are free. */
	if (c->parked) {
		nvt_nvme_park(c, bio);
		if (c->free_ops)
			nvt_nvme_resume(&c->ring);
		return;
	}
	nvt_nvme_issue(c, bio, UINT_MAX);
	if (nvt_nvme_finished(c, bio)) {
		nvt_bio_backend_done(bio, bio->be_priv.err);	/* failed before a command went out */
		return;
	}
	if (!nvt_nvme_failed(bio) && !nvt_nvme_all_issued(c, bio))
		nvt_nvme_park(c, bio);
}

/* ---- channels ---- */

/*
 * The parked bios fail as Aborted. The list is detached first: an abort's
 * completion may make the layer submit again, and that must not be linked
 * into a bio already finished.
 */
static void nvt_nvme_abort_parked(struct nvt_nvme_chan *c)
{
	struct nvt_bio *list = c->parked;

	c->parked = NULL;
	c->parked_tail = &c->parked;
	c->nr_waiting = 0;
	while (list) {
		struct nvt_bio *bio = list;

		list = bio->be_priv.next;
		bio->be_priv.parked = false;
		if (!bio->status) {
			bio->status = NVT_BIO_ABORTED;
			bio->err_lba = bio->slba;
		}
		if (!bio->be_priv.pending)
			nvt_bio_backend_done(bio, 0);
		/* else: failed now, its last command's completion finishes it */
	}
}

/*
 * The drain gave up: each bio with commands still out fails as Aborted,
 * once, and its ops forget it (a late CQE must not touch a bio the layer
 * has reused). The ops, their staging and the ring stay allocated, never
 * reused: the kernel may still write into them.
 */
static void nvt_nvme_abandon(struct nvt_nvme_chan *c)
{
	for (unsigned int i = 0; i < NVT_NVME_SQ_ENTRIES; i++) {
		struct nvt_bio *bio = c->ops[i].bio;

		if (!bio)
			continue;
		for (unsigned int j = i; j < NVT_NVME_SQ_ENTRIES; j++)
			if (c->ops[j].bio == bio)
				c->ops[j].bio = NULL;
		bio->be_priv.pending = 0;
		if (!nvt_nvme_failed(bio)) {
			bio->status = NVT_BIO_ABORTED;
			bio->err_lba = bio->slba;
		}
		nvt_bio_backend_done(bio, bio->be_priv.err);
	}
}

/* The channel starts going away: from now on nothing parks, what is parked fails. */
static void nvt_nvme_drain_begin(struct nvt_nvme_chan *c)
{
	c->dying = true;
	nvt_nvme_abort_parked(c);
}

/*
 * Before the ring and its buffers go: bios still parked fail as Aborted,
 * and every command out is reaped (the kernel writes into the staging
 * buffers until it completes), at most NVT_NVME_DRAIN_MS. Return: false if
 * some never came back (their bios then failed as Aborted, and the ring
 * and staging memory must stay).
 */
static bool nvt_nvme_drain(struct nvt_nvme_chan *c)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };
	unsigned int waited = 0;

	nvt_nvme_drain_begin(c);
	while (c->nr_free_ops < NVT_NVME_SQ_ENTRIES) {
		struct io_uring_cqe *cqe;

		if (io_uring_sq_ready(&c->ring.uring))
			io_uring_submit(&c->ring.uring);
		if (nvt_uring_ring_reap(&c->ring))
			continue;
		if (waited >= NVT_NVME_DRAIN_MS) {
			nvt_nvme_abandon(c);
			return false;
		}
		io_uring_wait_cqe_timeout(&c->ring.uring, &cqe, &ts);
		waited += 100;
	}
	nvt_nvme_abort_parked(c);	/* none can have parked since (dying), but none may stay */
	return true;
}

static void nvt_nvme_chan_destroy(struct nvt_ns *ns, void *chan)
{
	struct nvt_nvme_chan *c = chan;
	bool drained = true;

	(void)ns;
	if (!c)
		return;
	if (c->ring.ring_ok && c->stage_mem)
		drained = nvt_nvme_drain(c);
	/*
	 * Not drained: unregistering with commands in flight may block, and
	 * the ring must outlive them; it, its fd and the buffers are leaked.
	 */
	nvt_uring_ring_destroy(&c->ring, drained);
	if (!drained) {
		nvt_err("%s (nsid %u): %u commands never completed in %u ms: their bios failed as Aborted; the ring, its fd and the buffers are left allocated",
			c->n->path, c->ns->nsid, NVT_NVME_SQ_ENTRIES - c->nr_free_ops, NVT_NVME_DRAIN_MS);
		return;
	}
	free(c->stage_mem);
	free(c);
}

static int nvt_nvme_chan_create(struct nvt_ns *ns, struct nvt_poll_group *pg, void **chan)
{
	struct nvt_nvme_ns *n = ns->be_priv;
	struct io_uring_params p = { .flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32 |
					      IORING_SETUP_COOP_TASKRUN };
	struct iovec bufs[NVT_NVME_SQ_ENTRIES];
	struct nvt_nvme_chan *c;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ns = ns;
	c->n = n;
	c->parked_tail = &c->parked;
	ret = nvt_uring_ring_create(&c->ring, NVT_NVME_SQ_ENTRIES, &p, &nvt_nvme_ring_ops, pg,
				    n->path);
	if (ret) {
		nvt_err("%s: io_uring with 128-byte SQEs and 32-byte CQEs: %s (passthrough needs Linux >= 5.19)",
			n->path, strerror(-ret));
		goto out_destroy;
	}
	/* Staging per op: the data (extended: with metadata) then separate metadata. */
	c->stage_per = (size_t)n->cmd_blocks * nvt_nvme_ext_bs(&n->info) +
		       (size_t)n->cmd_blocks * n->info.ms;
	c->stage_per = (c->stage_per + 4095) & ~(size_t)4095;
	if (posix_memalign((void **)&c->stage_mem, 4096, c->stage_per * NVT_NVME_SQ_ENTRIES)) {
		ret = -ENOMEM;
		goto out_destroy;
	}
	for (int i = NVT_NVME_SQ_ENTRIES - 1; i >= 0; i--) {
		struct nvt_nvme_op *op = &c->ops[i];

		op->buf_index = (uint16_t)i;
		op->data = c->stage_mem + (size_t)i * c->stage_per;
		op->md = op->data + (size_t)n->cmd_blocks * nvt_nvme_ext_bs(&n->info);
		bufs[i] = (struct iovec){ op->data, (size_t)n->cmd_blocks * nvt_nvme_ext_bs(&n->info) };
		nvt_nvme_op_free(c, op);
	}
	nvt_uring_ring_register_bufs(&c->ring, bufs, NVT_NVME_SQ_ENTRIES);
	nvt_uring_ring_register_files(&c->ring, &n->fd, 1);
	ret = nvt_uring_ring_enable(&c->ring);
	if (ret)
		goto out_destroy;
	*chan = c;
	return 0;

out_destroy:
	nvt_nvme_chan_destroy(ns, c);
	return ret;
}

/* ---- open and close (control path) ---- */

/* "file:line: setting" for @setting of @cfg; @line if non-zero, else the setting's or the namespace's. */
static const char *nvt_nvme_where(char *buf, size_t size, const struct nvt_ns_cfg *cfg,
				  const char *setting, int line)
{
	const struct nvt_ns_setting *s = nvt_ns_cfg_setting(cfg, setting);

	if (!line)
		line = s && s->line ? s->line : cfg->line;
	snprintf(buf, size, "%s:%d: %s", cfg->file ? cfg->file : "(config)", line, setting);
	return buf;
}

/*
 * /dev/nvmeXnY -> /dev/ngXnY: the generic char device of the same
 * namespace, which sysfs lists under /sys/class/nvme-generic. Checked by
 * comparing the namespace ids both report. Return: 0 or -errno.
 */
static int nvt_nvme_resolve(const char *where, const char *path, char *out, size_t out_len)
{
	const char *base = strrchr(path, '/');
	char sys[PATH_MAX + 64], real[PATH_MAX];
	int bfd, cfd, ret = 0;
	uint32_t a = 0, b = 0;

	base = base ? base + 1 : path;
	if (realpath(path, real))
		base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	if (strncmp(base, "nvme", 4)) {
		nvt_err("%s: %s is a block device but not an NVMe namespace (nvmeXnY)", where, path);
		return -EINVAL;
	}
	snprintf(sys, sizeof(sys), "/sys/class/nvme-generic/ng%s", base + 4);
	if (access(sys, F_OK)) {
		nvt_err("%s: %s: no generic char device %s (Linux >= 5.13 makes /dev/ngXnY)", where,
			path, sys);
		return -ENOENT;
	}
	snprintf(out, out_len, "/dev/ng%s", base + 4);
	bfd = open(path, O_RDONLY | O_CLOEXEC);
	cfd = open(out, O_RDONLY | O_CLOEXEC);
	if (bfd < 0 || cfd < 0) {
		ret = -errno;
		nvt_err("%s: %s: cannot open %s: %s", where, path, bfd < 0 ? path : out,
			strerror(errno));
	} else if (nvme_get_nsid(bfd, &a) || nvme_get_nsid(cfd, &b) || a != b) {
		nvt_err("%s: %s and %s are not the same namespace (nsid %u, %u)", where, path, out,
			a, b);
		ret = -EINVAL;
	}
	if (bfd >= 0)
		close(bfd);
	if (cfd >= 0)
		close(cfd);
	return ret;
}

/* Identify through libnvme (admin passthrough on the char device). Return: 0 or -errno. */
static int nvt_nvme_identify(const char *where, struct nvt_nvme_ns *n, char *why, size_t why_len)
{
	struct nvme_id_ctrl ctrl;
	struct nvme_id_ns id;
	struct nvme_nvm_id_ns nvm;
	struct nvme_id_ctrl_nvm nvm_ctrl;
	bool have_nvm = false, have_nvm_ctrl;
	uint32_t nsid;
	int ret;

	if (nvme_get_nsid(n->fd, &nsid)) {
		ret = -errno;
		nvt_err("%s: %s: which namespace: %s", where, n->path, strerror(errno));
		return ret;
	}
	ret = nvme_identify_ctrl(n->fd, &ctrl);
	if (!ret)
		ret = nvme_identify_ns(n->fd, nsid, &id);
	if (ret) {
		nvt_err("%s: %s: Identify failed: %s", where, n->path,
			ret < 0 ? strerror(errno) : "the device returned an error status");
		return ret < 0 ? -errno : -EIO;
	}
	if (le32toh(ctrl.ctratt) & NVME_CTRL_CTRATT_ELBAS) {
		memset(&nvm, 0, sizeof(nvm));
		have_nvm = !nvme_identify_ns_csi(n->fd, nsid, 0, NVME_CSI_NVM, &nvm);
	}
	ret = nvt_nvme_parse(&ctrl, &id, have_nvm ? &nvm : NULL, nsid, &n->info, why, why_len);
	if (ret)
		return ret;
	/* WZSL and VSL; a controller before NVMe 2.0 has no such page and no such limits. */
	memset(&nvm_ctrl, 0, sizeof(nvm_ctrl));
	have_nvm_ctrl = !nvme_nvm_identify_ctrl(n->fd, &nvm_ctrl);
	nvt_nvme_parse_nvm_ctrl(have_nvm_ctrl ? &nvm_ctrl : NULL, &n->info);
	return 0;
}

/*
 * The config's block_size and pi, where the file gave them, against the
 * device's format. Return: 0 or -EINVAL (each difference logged).
 */
static int nvt_nvme_check_cfg(const struct nvt_ns_cfg *cfg, const struct nvt_nvme_ns *n,
			      const struct nvt_pi_format *dev)
{
	const char *guard = dev->guard == NVT_PI_GUARD_CRC64 ? "crc64" : "crc16";
	const char *loc = dev->pi_first ? "first" : "last";
	char where[NVT_NVME_WHERE], has[96];
	int bad = 0;

	(void)n;

	if (dev->type)
		snprintf(has, sizeof(has), "the device has %u+%u-byte blocks, PI type %u (%s guard, %s)",
			 dev->block_size, dev->md_size, dev->type, guard, loc);
	else
		snprintf(has, sizeof(has), "the device has %u+%u-byte blocks, no PI",
			 dev->block_size, dev->md_size);
	if ((cfg->given & NVT_NS_GIVEN_BLOCK_SIZE) && cfg->block_size != dev->block_size) {
		nvt_err("%s: %u, but %s", nvt_nvme_where(where, sizeof(where), cfg, "block_size",
							 cfg->block_size_line),
			cfg->block_size, has);
		bad = 1;
	}
	if ((cfg->given & NVT_NS_GIVEN_PI_TYPE) && cfg->pi.type != dev->type) {
		nvt_err("%s: %u, but %s", nvt_nvme_where(where, sizeof(where), cfg, "pi.type",
							 cfg->pi_type_line),
			cfg->pi.type, has);
		bad = 1;
	}
	/* A guard or location for a device without PI says the file expects PI it will not get. */
	if (!dev->type && (cfg->given & (NVT_NS_GIVEN_PI_GUARD | NVT_NS_GIVEN_PI_LOC))) {
		bool g = cfg->given & NVT_NS_GIVEN_PI_GUARD;

		nvt_err("%s: given, but %s", nvt_nvme_where(where, sizeof(where), cfg,
							  g ? "pi.guard" : "pi.location",
							  g ? cfg->pi_guard_line : cfg->pi_loc_line),
			has);
		bad = 1;
	}
	if (dev->type && (cfg->given & NVT_NS_GIVEN_PI_GUARD) && strcmp(cfg->pi.guard, guard)) {
		nvt_err("%s: \"%s\", but %s", nvt_nvme_where(where, sizeof(where), cfg, "pi.guard",
							     cfg->pi_guard_line),
			cfg->pi.guard, has);
		bad = 1;
	}
	if (dev->type && (cfg->given & NVT_NS_GIVEN_PI_LOC) && strcmp(cfg->pi.location, loc)) {
		nvt_err("%s: \"%s\", but %s", nvt_nvme_where(where, sizeof(where), cfg, "pi.location",
							     cfg->pi_loc_line),
			cfg->pi.location, has);
		bad = 1;
	}
	if ((cfg->given & NVT_NS_GIVEN_PI_MD_SIZE) && cfg->pi.metadata_size != dev->md_size) {
		nvt_err("%s: %u, but %s", nvt_nvme_where(where, sizeof(where), cfg,
							 "pi.metadata_size", cfg->pi_md_size_line),
			cfg->pi.metadata_size, has);
		bad = 1;
	}
	return bad ? -EINVAL : 0;
}

static void nvt_nvme_unclaim(struct nvt_nvme_ns *n)
{
	if (!n->claimed)
		return;
	pthread_mutex_lock(&nvt_nvme_claims_lock);
	for (struct nvt_nvme_claim **p = &nvt_nvme_claims; *p; p = &(*p)->next)
		if (*p == &n->claim) {
			*p = n->claim.next;
			break;
		}
	pthread_mutex_unlock(&nvt_nvme_claims_lock);
	n->claimed = false;
}

/* Take the device for @ns; false (holder in @holder) if another namespace has it. */
static bool nvt_nvme_claim(struct nvt_nvme_ns *n, dev_t rdev, uint32_t nsid, int line,
			   struct nvt_nvme_claim *holder)
{
	bool ok = true;

	pthread_mutex_lock(&nvt_nvme_claims_lock);
	for (struct nvt_nvme_claim *c = nvt_nvme_claims; c; c = c->next)
		if (c->rdev == rdev) {
			*holder = *c;
			ok = false;
		}
	if (ok) {
		n->claim = (struct nvt_nvme_claim){ .next = nvt_nvme_claims, .rdev = rdev,
						    .nsid = nsid, .line = line };
		nvt_nvme_claims = &n->claim;
		n->claimed = true;
	}
	pthread_mutex_unlock(&nvt_nvme_claims_lock);
	return ok;
}

static void nvt_nvme_close(struct nvt_ns *ns)
{
	struct nvt_nvme_ns *n = ns->be_priv;

	if (!n)
		return;
	nvt_nvme_unclaim(n);
	if (n->fd >= 0)
		close(n->fd);
	free(n);
	ns->be_priv = NULL;
}

static int nvt_nvme_block_io(struct nvt_ns *ns, uint64_t lba, void *data, void *md, bool write);

/*
 * Blocks one command moves at most: Read/Write/Compare by what staging
 * holds and MDTS allows (metadata included when interleaved); Write Zeroes
 * (and Deallocate through it) by NLB and WZSL; Verify by NLB and VSL. A
 * limit under one block turns that command off (the layer emulates it).
 * Return: 0, or -EINVAL if not even one block fits a Read.
 */
static int nvt_nvme_limits(struct nvt_nvme_ns *n)
{
	struct nvt_nvme_info *info = &n->info;
	uint32_t max = NVT_NVME_STAGE_MAX, wz;

	if (info->max_xfer && info->max_xfer < max)
		max = info->max_xfer;
	n->cmd_blocks = max / nvt_nvme_ext_bs(info);
	/* Without WZSL (no CNS 06h, or 0) MDTS bounds Write Zeroes too, as Linux does. */
	wz = info->wz_max ? info->wz_max : info->max_xfer;
	n->wz_blocks = wz ? wz / info->lbs : NVT_NVME_NLB_MAX;
	n->wz_blocks = n->wz_blocks < NVT_NVME_NLB_MAX ? n->wz_blocks : NVT_NVME_NLB_MAX;
	if (!n->wz_blocks)
		info->oncs &= (uint16_t)~NVT_NVME_ONCS_WZ;
	n->verify_blocks = info->verify_max ? info->verify_max / info->lbs : NVT_NVME_NLB_MAX;
	n->verify_blocks = n->verify_blocks < NVT_NVME_NLB_MAX ? n->verify_blocks : NVT_NVME_NLB_MAX;
	if (!n->verify_blocks)
		info->oncs &= (uint16_t)~NVT_NVME_ONCS_VERIFY;
	/* Compare is staged like a write, NLB 16 bits. */
	if (n->cmd_blocks > NVT_NVME_NLB_MAX)
		n->cmd_blocks = NVT_NVME_NLB_MAX;
	return n->cmd_blocks ? 0 : -EINVAL;
}

/*
 * Separate metadata moves only where the kernel has an integrity profile
 * for the namespace (bio_integrity_map_user); without one every I/O would
 * fail with -EINVAL. One block read at open says. Return: 0 or that -errno.
 */
static int nvt_nvme_probe_md(struct nvt_ns *ns, struct nvt_nvme_ns *n)
{
	uint8_t data[4096], md[NVT_MAX_METADATA];
	int ret;

	if (!n->info.ms || n->info.ext)
		return 0;
	ret = nvt_nvme_block_io(ns, 0, data, md, false);
	/* A device status (a media error at LBA 0, say) is not what this asks. */
	return ret == -EIO ? 0 : ret;
}

static int nvt_nvme_open(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg)
{
	const char *path = nvt_ns_cfg_path(cfg, "device");
	char where[NVT_NVME_WHERE], why[160] = "";
	struct nvt_nvme_claim holder;
	struct nvt_pi_format fmt;
	struct nvt_nvme_ns *n;
	struct stat st;
	int ret;

	nvt_nvme_where(where, sizeof(where), cfg, "device", 0);
	if (!path) {
		nvt_err("%s: missing (required)", where);
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->fd = -1;
	ns->be_priv = n;
	if (stat(path, &st)) {
		ret = -errno;
		nvt_err("%s: %s: %s", where, path, strerror(errno));
		goto out_close;
	}
	if (S_ISBLK(st.st_mode)) {
		ret = nvt_nvme_resolve(where, path, n->path, sizeof(n->path));
		if (ret)
			goto out_close;
		if (stat(n->path, &st)) {
			ret = -errno;
			nvt_err("%s: %s: %s", where, n->path, strerror(errno));
			goto out_close;
		}
	} else {
		nvt_strscpy(n->path, path, sizeof(n->path));
	}
	if (!S_ISCHR(st.st_mode)) {
		nvt_err("%s: %s is not an NVMe generic char device (/dev/ngXnY) or namespace block device",
			where, path);
		ret = -EINVAL;
		goto out_close;
	}
	if (!nvt_nvme_claim(n, st.st_rdev, ns->nsid, cfg->line, &holder)) {
		nvt_err("%s: %s: already used by nsid %u (line %d): a device backs one namespace only",
			where, n->path, holder.nsid, holder.line);
		ret = -EBUSY;
		goto out_close;
	}
	n->fd = open(n->path, O_RDWR | O_CLOEXEC);
	if (n->fd < 0) {
		ret = -errno;
		nvt_err("%s: %s: cannot open: %s%s", where, n->path, strerror(errno),
			errno == EACCES ? " (passthrough needs root or CAP_SYS_ADMIN)" : "");
		goto out_close;
	}
	ret = nvt_nvme_identify(where, n, why, sizeof(why));
	if (ret) {
		if (*why)
			nvt_err("%s: %s: nvtd cannot serve this format: %s", where, n->path, why);
		goto out_close;
	}
	fmt = nvt_nvme_pi_format(&n->info);
	if (nvt_pi_format_validate(&fmt)) {
		nvt_err("%s: %s: nvtd cannot serve this format (%u+%u, PI type %u)", where, n->path,
			fmt.block_size, fmt.md_size, fmt.type);
		ret = -EINVAL;
		goto out_close;
	}
	ret = nvt_nvme_check_cfg(cfg, n, &fmt);
	if (ret)
		goto out_close;
	if (ns->nblocks && ns->nblocks * ns->block_size != n->info.nsze * n->info.lbs) {
		nvt_err("%s: %" PRIu64 " does not match the %" PRIu64 " bytes of %s (leave size out to take the device's)",
			nvt_nvme_where(where, sizeof(where), cfg, "size", 0),
			ns->nblocks * ns->block_size, n->info.nsze * n->info.lbs, n->path);
		ret = -EINVAL;
		goto out_close;
	}
	/* The namespace takes the device's format. */
	ns->block_size = n->info.lbs;
	ns->lba_shift = (uint8_t)__builtin_ctz(n->info.lbs);
	ns->md_size = n->info.ms;
	ns->pi = fmt;
	ns->nblocks = n->info.nsze;
	/* Where copies go to the device (no PI, format 0), hosts are told its limits. */
	if ((n->info.oncs & NVT_NVME_ONCS_COPY) && (n->info.ocfs & NVT_NVME_OCFS_FMT0) &&
	    !ns->pi.type) {
		ns->cap_mssrl = n->info.mssrl;
		ns->cap_mcl = n->info.mcl;
		ns->cap_msrc_nr = (uint16_t)(n->info.msrc + 1u);
	}
	if (nvt_nvme_limits(n)) {
		nvt_err("%s: %s: MDTS (%u bytes) is smaller than one block", where, n->path,
			n->info.max_xfer);
		ret = -EINVAL;
		goto out_close;
	}
	ret = nvt_nvme_probe_md(ns, n);
	if (ret) {
		nvt_err("%s: %s: a 1-block read with separate metadata failed (%s): the kernel has no integrity profile for %s (metadata without PI, or CONFIG_BLK_DEV_INTEGRITY off), so passthrough cannot move its metadata",
			where, n->path, strerror(-ret), n->path);
		goto out_close;
	}
	nvt_info("%s: %s: nsid %u, %" PRIu64 " blocks of %u+%u bytes (%s metadata), PI type %u%s, mdts %u bytes, wzsl %u, vsl %u, oncs %#x, vwc %u",
		 where, n->path, n->info.nsid, n->info.nsze, n->info.lbs, n->info.ms,
		 n->info.ext ? "extended" : "separate", n->info.pi_type,
		 n->info.pi_type ? (n->info.pif == 2 ? " crc64" : " crc16") : "", n->info.max_xfer,
		 n->info.wz_max, n->info.verify_max, n->info.oncs, n->info.vwc);
	nvt_info("%s: %s: Deallocate %s (DLFEAT %#x)", where, n->path,
		 nvt_nvme_dealloc_native(&n->info) && !ns->md_size ?
		 "as Write Zeroes with DEAC (deallocated blocks read as zeroes)" :
		 "by the namespace layer (Write Zeroes would write, or has no DEAC)",
		 n->info.dlfeat);
	return 0;

out_close:
	nvt_nvme_close(ns);
	return ret;
}

/* One block and its metadata, synchronously (scrub, fault injection): an ioctl, PRCHK 0. */
static int nvt_nvme_block_io(struct nvt_ns *ns, uint64_t lba, void *data, void *md, bool write)
{
	struct nvt_nvme_ns *n = ns->be_priv;
	const struct nvt_nvme_info *info = &n->info;
	uint32_t bs = nvt_nvme_ext_bs(info);
	uint8_t buf[4096 + NVT_MAX_METADATA], mbuf[NVT_MAX_METADATA] = { 0 };
	struct nvme_passthru_cmd64 cmd = { 0 };
	int ret;

	if (lba >= ns->nblocks)
		return -ERANGE;
	if (write) {
		memcpy(buf, data, info->lbs);
		if (info->ext)
			memcpy(buf + info->lbs, md ? md : mbuf, info->ms);
		else if (md)
			memcpy(mbuf, md, info->ms);
	}
	cmd.opcode = write ? NVT_NVME_OP_WRITE : NVT_NVME_OP_READ;
	cmd.nsid = info->nsid;
	cmd.addr = (uintptr_t)buf;
	cmd.data_len = bs;
	if (info->ms && !info->ext) {
		cmd.metadata = (uintptr_t)mbuf;
		cmd.metadata_len = info->ms;
	}
	cmd.cdw10 = (uint32_t)lba;
	cmd.cdw11 = (uint32_t)(lba >> 32);
	ret = ioctl(n->fd, NVME_IOCTL_IO64_CMD, &cmd);
	if (ret < 0)
		return -errno;
	if (ret > 0)
		return -EIO;
	if (!write) {
		memcpy(data, buf, info->lbs);
		if (md)
			memcpy(md, info->ext ? buf + info->lbs : mbuf, info->ms);
	}
	return 0;
}

static const struct nvt_be_setting nvt_nvme_settings[] = {
	{ "device", NVT_BE_SET_PATH, true,
	  "the NVMe namespace: /dev/ngXnY, or /dev/nvmeXnY (its generic char device is used)",
	  false },
	{ .name = NULL },
};

const struct nvt_backend_ops nvt_nvme_backend_ops = {
	.name = "nvme",
	.flags = NVT_BE_METADATA | NVT_BE_VOLATILE | NVT_BE_WRITE_ZEROES | NVT_BE_DEALLOCATE |
		 NVT_BE_COPY | NVT_BE_OWN_SIZE | NVT_BE_OWN_FORMAT | NVT_BE_COMPARE | NVT_BE_VERIFY,
	.settings = nvt_nvme_settings,
	.open = nvt_nvme_open,
	.close = nvt_nvme_close,
	.chan_create = nvt_nvme_chan_create,
	.chan_destroy = nvt_nvme_chan_destroy,
	.submit = nvt_nvme_submit,
	.map = NULL,
	.block_io = nvt_nvme_block_io,
};
