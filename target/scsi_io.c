/* SPDX-License-Identifier: BSD-3-Clause */
/* The SCSI block commands over the namespace layer: READ/WRITE with T10 PI in its three shapes, VERIFY, SYNCHRONIZE CACHE, WRITE SAME, UNMAP, COMPARE AND WRITE. */
#define NVT_LOG_PREFIX "scsi: "
#include <errno.h>
#include <string.h>

#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/stats.h"
#include "nvt/util.h"
#include "scsi_internal.h"

#define NVT_SCSI_PI_SIZE	8u	/* the one tuple SCSI carries */
#define NVT_SCSI_MAX_PAYLOAD_SEGS	16u	/* WRITE SAME: pieces of the one payload block */

/* ---- status ---- */

/*
 * A local device's own NVMe status as sense, after the NVM Express SCSI
 * Translation Reference (§6): media and PI errors keep their LBA.
 */
static void nvt_scsi_device_failed(struct nvt_scsi_task *t, const struct nvt_bio *bio)
{
	unsigned int sct = (bio->dev_status >> 8) & 0x7, sc = bio->dev_status & 0xff;

	nvt_warn_ratelimited("%s LUN %u (nsid %u): the device failed the command with status "
			     "%#x at LBA %llu", t->dev ? t->dev->name : "?", t->lun->lun,
			     bio->ns->nsid, bio->dev_status, (unsigned long long)bio->err_lba);
	if (sct == 2) {		/* media and data integrity errors */
		switch (sc) {
		case 0x80:
			nvt_scsi_fail(t, NVT_SK_MEDIUM_ERROR, NVT_ASC_WRITE_ERROR, true, bio->err_lba);
			return;
		case 0x81:
		case 0x87:	/* deallocated or unwritten block */
			nvt_scsi_fail(t, NVT_SK_MEDIUM_ERROR, NVT_ASC_UNRECOVERED_READ, true,
				      bio->err_lba);
			return;
		case 0x82:
			nvt_scsi_fail(t, NVT_SK_ABORTED_COMMAND, NVT_ASC_GUARD_CHECK, true, bio->err_lba);
			return;
		case 0x83:
			nvt_scsi_fail(t, NVT_SK_ABORTED_COMMAND, NVT_ASC_APPTAG_CHECK, true, bio->err_lba);
			return;
		case 0x84:
			nvt_scsi_fail(t, NVT_SK_ABORTED_COMMAND, NVT_ASC_REFTAG_CHECK, true, bio->err_lba);
			return;
		case 0x85:
			nvt_scsi_fail_simple(t, NVT_SK_MISCOMPARE, NVT_ASC_MISCOMPARE);
			return;
		}
	} else if (sct == 0) {	/* generic */
		switch (sc) {
		case 0x02:
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_FIELD_CDB);
			return;
		case 0x80:
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_LBA_RANGE);
			return;
		case 0x82:	/* namespace not ready: the device went away */
			nvt_scsi_fail_simple(t, NVT_SK_NOT_READY, NVT_ASC_LUN_NOT_READY);
			return;
		case 0x07:	/* command abort requested (a timeout) */
			nvt_scsi_fail_simple(t, NVT_SK_ABORTED_COMMAND, NVT_ASC_NONE);
			return;
		}
	}
	nvt_scsi_fail_simple(t, NVT_SK_HARDWARE_ERROR, NVT_ASC_INTERNAL_FAILURE);
}

void nvt_scsi_bio_failed(struct nvt_scsi_task *t, const struct nvt_bio *bio, uint64_t cmp_base)
{
	static const char *const what[] = { "?", "guard", "app tag", "ref tag" };
	static const uint16_t asc[] = { NVT_ASC_GUARD_CHECK, NVT_ASC_GUARD_CHECK, NVT_ASC_APPTAG_CHECK,
					NVT_ASC_REFTAG_CHECK };
	unsigned int type;

	if (bio->status && !t->cmd.stat_status)
		t->cmd.stat_status = nvt_bio_nvme_status(bio);
	switch (bio->status) {
	case NVT_BIO_OK:
		return;
	case NVT_BIO_MEDIA_READ:
		nvt_scsi_fail(t, NVT_SK_MEDIUM_ERROR, NVT_ASC_UNRECOVERED_READ, true, bio->err_lba);
		return;
	case NVT_BIO_MEDIA_WRITE:
		nvt_scsi_fail(t, NVT_SK_MEDIUM_ERROR, NVT_ASC_WRITE_ERROR, true, bio->err_lba);
		return;
	case NVT_BIO_PI:
		type = bio->pi_err.type <= NVT_PI_ERR_REFTAG ? bio->pi_err.type : 0;
		nvt_warn_ratelimited("%s LUN %u (nsid %u): %s check failed at LBA %llu (%s: expected %#llx, found %#llx)",
				     t->dev ? t->dev->name : "?", t->lun->lun, bio->ns->nsid,
				     what[type], (unsigned long long)bio->pi_err.lba,
				     bio->op == NVT_BIO_WRITE ? "from guest" : "stored",
				     (unsigned long long)bio->pi_err.expected,
				     (unsigned long long)bio->pi_err.actual);
		/* SBC-4 4.22.5 and LIO: ABORTED COMMAND, which sd turns into EILSEQ without a retry. */
		nvt_scsi_fail(t, NVT_SK_ABORTED_COMMAND, asc[type], true, bio->pi_err.lba);
		return;
	case NVT_BIO_MISCOMPARE:
		nvt_scsi_fail(t, NVT_SK_MISCOMPARE, NVT_ASC_MISCOMPARE, true,
			      cmp_base + (bio->err_lba - bio->slba) * bio->ns->block_size + bio->err_off);
		return;
	case NVT_BIO_NOSPC:
		nvt_scsi_fail_simple(t, NVT_SK_DATA_PROTECT, NVT_ASC_SPACE_ALLOC_FAILED);
		return;
	case NVT_BIO_LBA_RANGE:
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_LBA_RANGE);
		return;
	case NVT_BIO_UNSUPPORTED:
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_OPCODE);
		return;
	case NVT_BIO_ABORTED:
		nvt_scsi_fail_simple(t, NVT_SK_ABORTED_COMMAND, NVT_ASC_NONE);
		return;
	case NVT_BIO_DEVICE:
		nvt_scsi_device_failed(t, bio);
		return;
	case NVT_BIO_RESV_CONFLICT:
		/* A status, not sense (SPC-4 5.14.1): nothing was done. */
		t->status = NVT_SCSI_RESERVATION_CONFLICT;
		return;
	case NVT_BIO_INTERNAL:
	default:
		nvt_scsi_fail_simple(t, NVT_SK_HARDWARE_ERROR, NVT_ASC_INTERNAL_FAILURE);
		return;
	}
}

/* ---- NVMe reservations ---- */

/*
 * Does the namespace's reservation deny @t's @bio? The guest is the I_T
 * nexus of its vhost controller (nvt_scsi_nexus()): a registrant when it
 * registered through PERSISTENT RESERVE OUT, else held to what an
 * unregistered host may do (Write Exclusive: read; Exclusive Access:
 * nothing), whoever holds the reservation, NVMe host or other guest.
 */
static bool nvt_scsi_resv_denies(const struct nvt_scsi_task *t, const struct nvt_bio *bio)
{
	return nvt_bio_resv_denied(bio, nvt_scsi_nexus(t));
}

/* ---- steps: a command as bios one after the other ---- */

static void nvt_scsi_finish(struct nvt_scsi_task *t)
{
	if (t->cmd.holds_copy_buf)
		nvt_scsi_copy_buf_put(t);
	if (t->status == NVT_SCSI_GOOD)
		t->resid = t->cmd.xfer < t->data_len ? t->data_len - t->cmd.xfer : 0;
	else
		t->resid = t->data_len;
	nvt_scsi_complete(t);
}

static void nvt_scsi_step_done(struct nvt_bio *bio)
{
	struct nvt_scsi_task *t = container_of(bio, struct nvt_scsi_task, bio);

	t->cmd.bio_done = true;
	if (t->cmd.in_submit)
		return;		/* inline: the loop in nvt_scsi_steps() goes on, no recursion */
	if (!t->cmd.absorb(t)) {
		nvt_scsi_finish(t);
		return;
	}
	nvt_scsi_steps(t);
}

void nvt_scsi_steps(struct nvt_scsi_task *t)
{
	for (;;) {
		if (t->status != NVT_SCSI_GOOD || !t->cmd.next(t)) {
			nvt_scsi_finish(t);
			return;
		}
		if (nvt_scsi_resv_denies(t, &t->bio)) {
			t->status = NVT_SCSI_RESERVATION_CONFLICT;
			nvt_scsi_finish(t);
			return;
		}
		t->cmd.bio_done = false;
		t->cmd.in_submit = true;
		nvt_ns_submit(&t->bio);
		t->cmd.in_submit = false;
		if (!t->cmd.bio_done)
			return;
		if (!t->cmd.absorb(t)) {
			nvt_scsi_finish(t);
			return;
		}
	}
}

bool nvt_scsi_bio_init(struct nvt_scsi_task *t, struct nvt_ns *ns, enum nvt_bio_op op, uint64_t lba,
		       uint32_t nlb)
{
	struct nvt_bio *bio = &t->bio;

	memset(bio, 0, offsetof(struct nvt_bio, ns_priv));
	bio->op = op;
	bio->ns = ns;
	bio->chan = nvt_ns_chan_get(ns, t->queue->pg);
	bio->slba = lba;
	bio->nlb = nlb;
	bio->done = nvt_scsi_step_done;
	/* Checked again as admitted: a PREEMPT AND ABORT's fence may come in between. */
	bio->resv_host = nvt_scsi_nexus(t);
	if (!bio->chan) {
		nvt_scsi_fail_simple(t, NVT_SK_HARDWARE_ERROR, NVT_ASC_INTERNAL_FAILURE);
		return false;
	}
	return true;
}

/* The common absorb: a failed bio becomes sense; a good one moves the command on by its chunk. */
static bool nvt_scsi_absorb_chunk(struct nvt_scsi_task *t)
{
	if (t->bio.status) {
		nvt_scsi_bio_failed(t, &t->bio, 0);
		return false;
	}
	t->cmd.pos += t->cmd.chunk;
	return true;
}

/* ---- shared checks ---- */

static bool nvt_scsi_check_range(struct nvt_scsi_task *t, uint64_t lba, uint64_t nlb)
{
	uint64_t n = t->lun->ns->nblocks;

	if (lba > n || nlb > n - lba) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_LBA_RANGE);
		return false;
	}
	return true;
}

/* The buffers do not match what the CDB moves. */
static void nvt_scsi_bad_buffers(struct nvt_scsi_task *t)
{
	nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_IU_FIELD);
}

/*
 * What a PROTECT field (RDPROTECT, WRPROTECT, VRPROTECT) asks, SBC-4
 * tables 5.x: the checks, or -1 for a reserved value. PROTECT 0 on a read
 * still checks what is stored (then strips it). The app tag is checked
 * only where the CDB gives one (ATO=1: the guest owns it): @tags.
 */
static int nvt_scsi_protect_checks(const struct nvt_scsi_lun *lun, uint8_t protect, bool read,
				   bool tags)
{
	static const int8_t tab[8] = {
		NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG | NVT_PI_CHECK_APPTAG,
		NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG | NVT_PI_CHECK_APPTAG,
		NVT_PI_CHECK_REFTAG | NVT_PI_CHECK_APPTAG,
		0,
		NVT_PI_CHECK_GUARD,
		NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG | NVT_PI_CHECK_APPTAG,
		-1,
		-1,
	};
	int c = tab[protect & 7];

	if (c < 0)
		return c;
	if (!protect && !read)
		return 0;	/* nothing came with the data: we generate */
	if (!tags)
		c &= ~NVT_PI_CHECK_APPTAG;
	/* Type 2 without the 32-byte CDB: no expected initial tag to check against. */
	if (lun->ns->pi.type == NVT_PI_TYPE2 && !tags)
		c &= ~NVT_PI_CHECK_REFTAG;
	return c;
}

/*
 * PROTECT against the LUN: not offered without PI (INVALID FIELD), on a
 * Type 2 LUN only in 32-byte CDBs (SBC-4 4.22.2.4: INVALID COMMAND
 * OPERATION CODE). Return: false if @t failed.
 */
static bool nvt_scsi_protect_ok(struct nvt_scsi_task *t, uint8_t protect, uint16_t byte, bool cdb32)
{
	if (!protect)
		return true;
	if (!t->lun->pi) {
		nvt_scsi_bad_field(t, true, byte, 7);
		return false;
	}
	if (t->lun->ns->pi.type == NVT_PI_TYPE2 && !cdb32) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_OPCODE);
		return false;
	}
	return true;
}

/*
 * PI context for blocks [lba + off, ...) of the command: tags advance with
 * the blocks (Type 3: opaque, fixed). nvt_pi_ctx_init() cuts the ref tag
 * to the guard's width: 32 bits where the LUN shows 8-byte PI, 48 on a
 * 64-bit-guard namespace, whose tags an NVMe host and the scrub check.
 */
static void nvt_scsi_pi_ctx(struct nvt_scsi_task *t, struct nvt_pi_ctx *ctx, uint32_t off,
			    uint8_t prinfo)
{
	const struct nvt_ns *ns = t->bio.ns;
	uint64_t ref = ns->pi.type == NVT_PI_TYPE3 ? t->cmd.ref_tag : t->cmd.ref_tag + off;

	nvt_pi_ctx_init(ctx, &ns->pi, t->cmd.lba + off, prinfo, ref, t->cmd.app_tag,
			t->cmd.app_mask);
}

/* The expected initial ref tag when the CDB gives none: Type 1 (and 2) the LBA (masked later); Type 3 zero. */
static uint64_t nvt_scsi_default_ref(const struct nvt_scsi_lun *lun, uint64_t lba)
{
	return lun->ns->pi.type == NVT_PI_TYPE3 ? 0 : lba;
}

/*
 * The data of blocks [off / unit, + *n) as exact iovecs for a bio (a
 * backend must not see more than the bio moves): the guest's own array when
 * it is exactly that, else a slice into work_iov, fewer blocks (*n) when
 * the slice runs out of iovecs first. Return: false if @t failed.
 */
static bool nvt_scsi_data_slice(struct nvt_scsi_task *t, uint64_t off, uint32_t unit, uint32_t *n)
{
	uint64_t want = (uint64_t)*n * unit;
	size_t got;

	if (!off && want == t->data_len) {
		t->cmd.iov = t->data_iov;
		t->cmd.iov_cnt = t->data_cnt;
		return true;
	}
	t->cmd.iov = t->work_iov;
	t->cmd.iov_cnt = nvt_iov_slice(t->data_iov, t->data_cnt, off, want, t->work_iov,
				       NVT_SCSI_WORK_IOV);
	got = nvt_iov_len(t->work_iov, t->cmd.iov_cnt);
	if (got == want)
		return true;
	/* More segments than work_iov holds: the whole blocks it covers, the rest next step. */
	*n = (uint32_t)(got / unit);
	if (!*n) {
		nvt_scsi_bad_buffers(t);
		return false;
	}
	t->cmd.iov_cnt = nvt_iov_slice(t->data_iov, t->data_cnt, off, (uint64_t)*n * unit,
				       t->work_iov, NVT_SCSI_WORK_IOV);
	return true;
}

/* The same for the PI buffer of blocks [pos, + *n): the guest's array, or a slice into work_iov2. */
static bool nvt_scsi_pi_slice(struct nvt_scsi_task *t, uint32_t *n)
{
	uint64_t off = (uint64_t)t->cmd.pos * NVT_SCSI_PI_SIZE, want = (uint64_t)*n * NVT_SCSI_PI_SIZE;
	size_t got;

	if (!off && want == t->pi_len) {
		t->cmd.md_iov = t->pi_iov;
		t->cmd.md_iov_cnt = t->pi_cnt;
		return true;
	}
	t->cmd.md_iov = t->work_iov2;
	t->cmd.md_iov_cnt = nvt_iov_slice(t->pi_iov, t->pi_cnt, off, want, t->work_iov2,
					  NVT_SCSI_WORK_IOV);
	got = nvt_iov_len(t->work_iov2, t->cmd.md_iov_cnt);
	if (got == want)
		return true;
	*n = (uint32_t)(got / NVT_SCSI_PI_SIZE);
	if (!*n) {
		nvt_scsi_bad_buffers(t);
		return false;
	}
	t->cmd.md_iov_cnt = nvt_iov_slice(t->pi_iov, t->pi_cnt, off, (uint64_t)*n * NVT_SCSI_PI_SIZE,
					  t->work_iov2, NVT_SCSI_WORK_IOV);
	return true;
}

/* ---- READ and WRITE ---- */

/*
 * Two ways a read or write runs:
 * - one bio over the guest's buffers: no metadata, or the guest's own PI
 *   (its PI buffer as md_iov, or interleaved: NVT_BIO_EXT);
 * - chunks of at most md_buf's worth of metadata, the layer inserting
 *   (write) or checking and stripping (read) the PI there: PROTECT 0 on a
 *   PI LUN, PROTECT set without PI in the buffer, metadata the guest does
 *   not see (a LUN served without PI).
 */
static bool nvt_scsi_rw_next(struct nvt_scsi_task *t)
{
	struct nvt_ns *ns = t->lun->ns;
	bool write = t->to_dev, direct = t->cmd.ext || !ns->md_size || t->cmd.protect;
	uint32_t unit = ns->block_size + (t->cmd.ext ? ns->md_size : 0);
	uint32_t left = t->cmd.nlb - t->cmd.pos, n, max;
	struct nvt_bio *bio = &t->bio;
	uint8_t prinfo = t->cmd.checks;

	if (!left)
		return false;
	/* The guest's PI in its own buffer only with PROTECT and a PI buffer or interleaved data. */
	if (t->cmd.protect && !t->cmd.ext && !(t->pi_iov && t->pi_len))
		direct = false;
	max = direct ? left : NVT_SCSI_MD_BUF / ns->md_size;
	n = left < max ? left : max;
	if (!nvt_scsi_data_slice(t, (uint64_t)t->cmd.pos * unit, unit, &n))
		return false;
	if (direct && ns->md_size && !t->cmd.ext) {
		uint32_t m = n;

		/* Shape 1: the virtio PI buffer, 8 bytes per block, is the metadata. */
		if (!nvt_scsi_pi_slice(t, &m))
			return false;
		if (m < n) {
			n = m;
			if (!nvt_scsi_data_slice(t, (uint64_t)t->cmd.pos * unit, unit, &n))
				return false;
		}
	}
	if (!nvt_scsi_bio_init(t, ns, write ? NVT_BIO_WRITE : NVT_BIO_READ, t->cmd.lba + t->cmd.pos, n))
		return false;
	t->cmd.chunk = n;
	bio->iov = t->cmd.iov;
	bio->iov_cnt = t->cmd.iov_cnt;
	if (t->cmd.ext)
		bio->flags |= NVT_BIO_EXT;
	if (write && t->cmd.fua)
		bio->flags |= NVT_BIO_FUA;
	if (!write && ns->pi.type)
		bio->flags |= NVT_BIO_PI_CHECK_READ;
	if (direct && ns->md_size && !t->cmd.ext) {
		bio->md_iov = t->cmd.md_iov;
		bio->md_iov_cnt = t->cmd.md_iov_cnt;
	} else if (!direct) {
		t->md_iov = (struct iovec){ t->md_buf, (size_t)n * ns->md_size };
		bio->md_iov = &t->md_iov;
		bio->md_iov_cnt = 1;
		/* Metadata the guest does not see starts as zeroes; PI in it is ours. */
		if (write)
			memset(t->md_buf, 0, t->md_iov.iov_len);
		if (ns->pi.type)
			prinfo |= NVT_PI_PRACT;
	}
	nvt_scsi_pi_ctx(t, &bio->pi, t->cmd.pos, prinfo);
	return true;
}

/* Decode any READ/WRITE CDB. Return: false if @t failed. */
static bool nvt_scsi_rw_decode(struct nvt_scsi_task *t, bool *write, bool *tags, uint16_t *pbyte)
{
	const uint8_t *c = t->cdb;
	struct nvt_scsi_cmd *cmd = &t->cmd;

	*tags = false;
	*pbyte = 1;
	switch (c[0]) {
	case 0x08:
	case 0x0a:
		cmd->lba = nvt_get_be24(c + 1) & 0x1fffff;
		cmd->nlb = c[4] ? c[4] : 256;
		break;
	case 0x28:
	case 0x2a:
		cmd->lba = nvt_get_be32(c + 2);
		cmd->nlb = nvt_get_be16(c + 7);
		break;
	case 0xa8:
	case 0xaa:
		cmd->lba = nvt_get_be32(c + 2);
		cmd->nlb = nvt_get_be32(c + 6);
		break;
	case 0x88:
	case 0x8a:
		cmd->lba = nvt_get_be64(c + 2);
		cmd->nlb = nvt_get_be32(c + 10);
		break;
	case 0x7f: {
		uint16_t sa = nvt_get_be16(c + 8);

		/* SBC-4 5.15, 5.40: the 32-byte forms exist for Type 2 LUNs only. */
		if (!t->lun->pi || t->lun->ns->pi.type != NVT_PI_TYPE2) {
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_OPCODE);
			return false;
		}
		if (c[7] != 0x18) {
			nvt_scsi_bad_field(t, true, 7, -1);
			return false;
		}
		if (sa != 0x0009 && sa != 0x000b) {
			nvt_scsi_bad_field(t, true, 8, -1);
			return false;
		}
		*write = sa == 0x000b;
		*tags = true;
		*pbyte = 10;
		cmd->protect = c[10] >> 5;
		cmd->fua = c[10] & 0x08;
		cmd->lba = nvt_get_be64(c + 12);
		cmd->ref_tag = nvt_get_be32(c + 20);
		cmd->app_tag = nvt_get_be16(c + 24);
		cmd->app_mask = nvt_get_be16(c + 26);
		cmd->nlb = nvt_get_be32(c + 28);
		return true;
	}
	default:
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_OPCODE);
		return false;
	}
	*write = c[0] == 0x0a || c[0] == 0x2a || c[0] == 0xaa || c[0] == 0x8a;
	if (c[0] != 0x08 && c[0] != 0x0a) {
		cmd->protect = c[1] >> 5;
		cmd->fua = c[1] & 0x08;
	}
	cmd->ref_tag = nvt_scsi_default_ref(t->lun, cmd->lba);
	return true;
}

void nvt_scsi_exec_rw(struct nvt_scsi_task *t)
{
	struct nvt_scsi_cmd *cmd = &t->cmd;
	struct nvt_scsi_lun *lun = t->lun;
	struct nvt_ns *ns = lun->ns;
	bool write, tags;
	uint16_t pbyte;
	uint64_t need;
	int checks;

	if (!nvt_scsi_rw_decode(t, &write, &tags, &pbyte) ||
	    !nvt_scsi_protect_ok(t, cmd->protect, pbyte, tags))
		goto out;
	checks = nvt_scsi_protect_checks(lun, cmd->protect, !write, tags);
	if (checks < 0) {
		nvt_scsi_bad_field(t, true, pbyte, 7);
		goto out;
	}
	cmd->checks = (uint8_t)checks;
	if ((uint64_t)cmd->nlb << ns->lba_shift > NVT_SCSI_MAX_XFER_BYTES) {
		/* The field pointer names TRANSFER LENGTH where each CDB size has it. */
		static const uint8_t at[] = { [0x08] = 4, [0x0a] = 4, [0x28] = 7, [0x2a] = 7,
					      [0x7f] = 28, [0x88] = 10, [0x8a] = 10, [0xa8] = 6,
					      [0xaa] = 6 };

		nvt_scsi_bad_field(t, true, at[t->cdb[0]], -1);
		goto out;
	}
	if (!nvt_scsi_check_range(t, cmd->lba, cmd->nlb))
		goto out;
	if (!cmd->nlb)
		goto out;	/* SBC-4: a transfer length of 0 is not an error */
	/* Shape 3: PROTECT set, no PI buffer, and room for data and PI interleaved (SG_IO). */
	cmd->ext = cmd->protect && !(t->pi_iov && t->pi_len) &&
		   t->data_len >= (uint64_t)cmd->nlb * (ns->block_size + ns->md_size);
	need = (uint64_t)cmd->nlb * (ns->block_size + (cmd->ext ? ns->md_size : 0));
	if (t->data_len < need || t->to_dev != write ||
	    (cmd->protect && t->pi_iov && t->pi_len &&
	     t->pi_len < (uint64_t)cmd->nlb * NVT_SCSI_PI_SIZE)) {
		nvt_scsi_bad_buffers(t);
		goto out;
	}
	cmd->xfer = (uint32_t)need;
	cmd->next = nvt_scsi_rw_next;
	cmd->absorb = nvt_scsi_absorb_chunk;
	nvt_scsi_steps(t);
	return;
out:
	nvt_scsi_finish(t);
}

/* ---- VERIFY ---- */

static bool nvt_scsi_verify_next(struct nvt_scsi_task *t)
{
	struct nvt_ns *ns = t->lun->ns;
	bool compare = t->cmd.xfer;
	struct nvt_bio *bio = &t->bio;
	uint32_t unit = ns->block_size + (t->cmd.ext ? ns->md_size : 0);

	if (t->cmd.pos)
		return false;
	if (!nvt_scsi_bio_init(t, ns, compare ? NVT_BIO_COMPARE : NVT_BIO_VERIFY, t->cmd.lba,
			       t->cmd.nlb))
		return false;
	t->cmd.chunk = t->cmd.nlb;
	if (ns->pi.type)
		bio->flags |= NVT_BIO_PI_CHECK_READ;
	if (compare) {
		uint32_t n = t->cmd.nlb;

		if (!nvt_scsi_data_slice(t, 0, unit, &n))
			return false;
		if (n != t->cmd.nlb) {
			nvt_scsi_bad_buffers(t);
			return false;
		}
		bio->iov = t->cmd.iov;
		bio->iov_cnt = t->cmd.iov_cnt;
		if (t->cmd.ext)
			bio->flags |= NVT_BIO_EXT;
	}
	nvt_scsi_pi_ctx(t, &bio->pi, 0, t->cmd.checks);
	return true;
}

static bool nvt_scsi_verify_absorb(struct nvt_scsi_task *t)
{
	struct nvt_ns *ns = t->lun->ns;

	if (t->bio.status == NVT_BIO_MISCOMPARE) {
		/* INFORMATION: the byte offset in the data-out buffer (with PI, of the extended LBAs). */
		uint64_t blk = t->bio.err_lba - t->bio.slba;
		uint32_t unit = ns->block_size + (t->cmd.ext ? ns->md_size : 0);

		nvt_scsi_fail(t, NVT_SK_MISCOMPARE, NVT_ASC_MISCOMPARE, true,
			      blk * unit + t->bio.err_off);
		return false;
	}
	return nvt_scsi_absorb_chunk(t);
}

void nvt_scsi_exec_verify(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	struct nvt_scsi_cmd *cmd = &t->cmd;
	struct nvt_ns *ns = t->lun->ns;
	uint8_t bytchk = (c[1] >> 1) & 3;
	int checks;

	cmd->protect = c[1] >> 5;
	if (c[0] == 0x2f) {
		cmd->lba = nvt_get_be32(c + 2);
		cmd->nlb = nvt_get_be16(c + 7);
	} else {
		cmd->lba = nvt_get_be64(c + 2);
		cmd->nlb = nvt_get_be32(c + 10);
	}
	cmd->ref_tag = nvt_scsi_default_ref(t->lun, cmd->lba);
	if (!nvt_scsi_protect_ok(t, cmd->protect, 1, false))
		goto out;
	checks = nvt_scsi_protect_checks(t->lun, cmd->protect, true, false);
	if (checks < 0) {
		nvt_scsi_bad_field(t, true, 1, 7);
		goto out;
	}
	/* BYTCHK 01b compares with the data-out buffer; 11b (one block for all) we do not offer. */
	if (bytchk > 1) {
		nvt_scsi_bad_field(t, true, 1, 2);
		goto out;
	}
	cmd->checks = (uint8_t)checks;
	if (!nvt_scsi_check_range(t, cmd->lba, cmd->nlb) || !cmd->nlb)
		goto out;
	if (bytchk) {
		uint64_t need;

		if ((uint64_t)cmd->nlb << ns->lba_shift > NVT_SCSI_MAX_XFER_BYTES) {
			nvt_scsi_bad_field(t, true, c[0] == 0x2f ? 7 : 10, -1);
			goto out;
		}
		cmd->ext = cmd->protect &&
			   t->data_len >= (uint64_t)cmd->nlb * (ns->block_size + ns->md_size);
		need = (uint64_t)cmd->nlb * (ns->block_size + (cmd->ext ? ns->md_size : 0));
		if (!t->to_dev || t->data_len < need) {
			nvt_scsi_bad_buffers(t);
			goto out;
		}
		cmd->xfer = (uint32_t)need;
	}
	cmd->next = nvt_scsi_verify_next;
	cmd->absorb = nvt_scsi_verify_absorb;
	nvt_scsi_steps(t);
	return;
out:
	nvt_scsi_finish(t);
}

/* ---- SYNCHRONIZE CACHE ---- */

static bool nvt_scsi_sync_next(struct nvt_scsi_task *t)
{
	if (t->cmd.pos)
		return false;
	t->cmd.chunk = 1;
	return nvt_scsi_bio_init(t, t->lun->ns, NVT_BIO_FLUSH, 0, 0);
}

void nvt_scsi_exec_sync(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint64_t lba = c[0] == 0x35 ? nvt_get_be32(c + 2) : nvt_get_be64(c + 2);
	uint32_t nlb = c[0] == 0x35 ? nvt_get_be16(c + 7) : nvt_get_be32(c + 10);

	/* The whole cache is flushed whatever the range; the range is still checked (SBC-4 5.26). */
	if (!nvt_scsi_check_range(t, lba, nlb)) {
		nvt_scsi_finish(t);
		return;
	}
	t->cmd.next = nvt_scsi_sync_next;
	t->cmd.absorb = nvt_scsi_absorb_chunk;
	nvt_scsi_steps(t);
}

/* ---- WRITE SAME ---- */

static const uint8_t nvt_scsi_zeroes[4096];

static bool nvt_scsi_iov_is_zero(const struct iovec *iov, unsigned int cnt, uint64_t off, size_t len)
{
	while (len) {
		size_t n = len < sizeof(nvt_scsi_zeroes) ? len : sizeof(nvt_scsi_zeroes);

		if (nvt_iov_diff(iov, cnt, off, nvt_scsi_zeroes, n) != SIZE_MAX)
			return false;
		off += n;
		len -= n;
	}
	return true;
}

/* The one range of a WRITE SAME that deallocates. */
static int nvt_scsi_ws_range(struct nvt_bio *bio, unsigned int i, struct nvt_bio_range *r)
{
	struct nvt_scsi_task *t = container_of(bio, struct nvt_scsi_task, bio);

	if (i)
		return -EINVAL;
	*r = (struct nvt_bio_range){ .slba = t->cmd.lba, .nlb = t->cmd.nlb };
	return 0;
}

/*
 * A zero payload: one bio (deallocate, or write zeroes with PI the layer
 * generates). Any other: chunks of writes whose iovecs all point at the
 * payload block, PI per block into md_buf (work_iov2 holds the payload's
 * own segments, t->cmd.xfer of them).
 */
static bool nvt_scsi_ws_next(struct nvt_scsi_task *t)
{
	struct nvt_ns *ns = t->lun->ns;
	struct nvt_bio *bio = &t->bio;
	uint32_t left = t->cmd.nlb - t->cmd.pos, n, max, segs = t->cmd.payload_segs;
	uint8_t prinfo = ns->pi.type ? NVT_PI_PRACT : 0;

	if (!left)
		return false;
	if (!segs) {
		if (!nvt_scsi_bio_init(t, ns, t->cmd.unmap ? NVT_BIO_DEALLOCATE : NVT_BIO_WRITE_ZEROES,
				       t->cmd.lba, t->cmd.nlb))
			return false;
		t->cmd.chunk = t->cmd.nlb;
		if (t->cmd.unmap) {
			bio->nr_ranges = 1;
			bio->get_range = nvt_scsi_ws_range;
		}
		nvt_scsi_pi_ctx(t, &bio->pi, 0, prinfo);
		return true;
	}
	max = NVT_SCSI_WORK_IOV / segs;
	if (ns->md_size && max > NVT_SCSI_MD_BUF / ns->md_size)
		max = NVT_SCSI_MD_BUF / ns->md_size;
	n = left < max ? left : max;
	if (!nvt_scsi_bio_init(t, ns, NVT_BIO_WRITE, t->cmd.lba + t->cmd.pos, n))
		return false;
	t->cmd.chunk = n;
	for (uint32_t i = 0; i < n; i++)
		memcpy(&t->work_iov[i * segs], t->work_iov2, segs * sizeof(struct iovec));
	bio->iov = t->work_iov;
	bio->iov_cnt = n * segs;
	if (ns->md_size) {
		t->md_iov = (struct iovec){ t->md_buf, (size_t)n * ns->md_size };
		memset(t->md_buf, 0, t->md_iov.iov_len);
		bio->md_iov = &t->md_iov;
		bio->md_iov_cnt = 1;
	}
	nvt_scsi_pi_ctx(t, &bio->pi, t->cmd.pos, prinfo);
	return true;
}

/*
 * A payload sent with PI (WRPROTECT != 0): check it; its app tag is what
 * every block gets, and on Type 3 (the ref tag is the application
 * client's too) its ref tag.
 */
static bool nvt_scsi_ws_payload_pi(struct nvt_scsi_task *t, int checks)
{
	struct nvt_ns *ns = t->lun->ns;
	struct iovec pi_iov[NVT_SCSI_WORK_IOV];
	unsigned int pi_cnt;
	struct nvt_pi_ctx ctx;
	struct nvt_pi_err err;
	uint8_t tuple[NVT_SCSI_PI_SIZE];

	if (t->pi_iov && t->pi_len)
		pi_cnt = nvt_iov_slice(t->pi_iov, t->pi_cnt, 0, NVT_SCSI_PI_SIZE, pi_iov,
				       NVT_SCSI_WORK_IOV);
	else
		pi_cnt = nvt_iov_slice(t->data_iov, t->data_cnt, ns->block_size, NVT_SCSI_PI_SIZE,
				       pi_iov, NVT_SCSI_WORK_IOV);
	if (nvt_iov_copy(pi_iov, pi_cnt, 0, tuple, sizeof(tuple), false) != sizeof(tuple)) {
		nvt_scsi_bad_buffers(t);
		return false;
	}
	nvt_pi_ctx_init(&ctx, &ns->pi, t->cmd.lba, (uint8_t)checks, t->cmd.ref_tag, 0, 0);
	if (nvt_pi_verify(&ctx, t->work_iov2, t->cmd.payload_segs, pi_iov, pi_cnt, 1, &err) == -EILSEQ) {
		t->bio.ns = ns;
		t->bio.op = NVT_BIO_WRITE;
		t->bio.status = NVT_BIO_PI;
		t->bio.pi_err = err;
		nvt_scsi_bio_failed(t, &t->bio, 0);
		return false;
	}
	t->cmd.app_tag = nvt_get_be16(tuple + 2);
	if (ns->pi.type == NVT_PI_TYPE3)
		t->cmd.ref_tag = nvt_get_be32(tuple + 4);
	return true;
}

void nvt_scsi_exec_write_same(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	struct nvt_scsi_cmd *cmd = &t->cmd;
	struct nvt_scsi_lun *lun = t->lun;
	struct nvt_ns *ns = lun->ns;
	bool ws16 = c[0] == 0x93, ndob = ws16 && (c[1] & 0x01);
	int checks;

	cmd->protect = c[1] >> 5;
	cmd->unmap = c[1] & 0x08;
	cmd->lba = ws16 ? nvt_get_be64(c + 2) : nvt_get_be32(c + 2);
	cmd->nlb = ws16 ? nvt_get_be32(c + 10) : nvt_get_be16(c + 7);
	cmd->ref_tag = nvt_scsi_default_ref(lun, cmd->lba);
	/* ANCHOR, PBDATA, LBDATA: not offered. */
	if (c[1] & 0x16) {
		nvt_scsi_bad_field(t, true, 1, c[1] & 0x10 ? 4 : c[1] & 0x04 ? 2 : 1);
		goto out;
	}
	if (!nvt_scsi_protect_ok(t, cmd->protect, 1, false))
		goto out;
	checks = nvt_scsi_protect_checks(lun, cmd->protect, false, false);
	if (checks < 0 || (ndob && cmd->protect)) {
		nvt_scsi_bad_field(t, true, 1, 7);
		goto out;
	}
	/* WSNZ: 0 blocks is refused, as is more than MAXIMUM WRITE SAME LENGTH. */
	if (!cmd->nlb || cmd->nlb > NVT_SCSI_MAX_WS) {
		nvt_scsi_bad_field(t, true, ws16 ? 10 : 7, -1);
		goto out;
	}
	if (!nvt_scsi_check_range(t, cmd->lba, cmd->nlb))
		goto out;
	if (!ndob) {
		bool sep = cmd->protect && t->pi_iov && t->pi_len;
		uint64_t need = ns->block_size + (cmd->protect && !sep ? NVT_SCSI_PI_SIZE : 0);
		unsigned int segs;

		if (!t->to_dev || t->data_len < need || (sep && t->pi_len < NVT_SCSI_PI_SIZE)) {
			nvt_scsi_bad_buffers(t);
			goto out;
		}
		cmd->xfer = (uint32_t)need;
		segs = nvt_iov_slice(t->data_iov, t->data_cnt, 0, ns->block_size, t->work_iov2,
				     NVT_SCSI_MAX_PAYLOAD_SEGS);
		if (nvt_iov_len(t->work_iov2, segs) != ns->block_size) {
			nvt_scsi_bad_buffers(t);
			goto out;
		}
		cmd->payload_segs = (uint8_t)segs;
		if (cmd->protect && !nvt_scsi_ws_payload_pi(t, checks))
			goto out;
		/* Zeroes (with no tag of the guest's to keep) need no payload at all. */
		if (nvt_scsi_iov_is_zero(t->work_iov2, segs, 0, ns->block_size) && !cmd->app_tag &&
		    cmd->ref_tag == nvt_scsi_default_ref(lun, cmd->lba))
			cmd->payload_segs = 0;
		else
			cmd->unmap = false;	/* SBC-4 5.48: unmap only where it reads back the same */
	}
	cmd->next = nvt_scsi_ws_next;
	cmd->absorb = nvt_scsi_absorb_chunk;
	nvt_scsi_steps(t);
	return;
out:
	nvt_scsi_finish(t);
}

/* ---- UNMAP ---- */

/* Descriptor @i of the guest's parameter list, checked again: the guest may have changed it. */
static int nvt_scsi_unmap_range(struct nvt_bio *bio, unsigned int i, struct nvt_bio_range *r)
{
	struct nvt_scsi_task *t = container_of(bio, struct nvt_scsi_task, bio);
	uint8_t d[16];
	uint64_t n = t->lun->ns->nblocks;

	if (nvt_scsi_data_out(t, 8 + (uint64_t)i * 16, d, sizeof(d)) != sizeof(d))
		return -EINVAL;
	r->slba = nvt_get_be64(d);
	r->nlb = nvt_get_be32(d + 8);
	if (r->slba > n || r->nlb > n - r->slba)
		return -EINVAL;
	if (!r->nlb)
		r->slba = 0;
	return 0;
}

static bool nvt_scsi_unmap_next(struct nvt_scsi_task *t)
{
	if (t->cmd.pos)
		return false;
	if (!nvt_scsi_bio_init(t, t->lun->ns, NVT_BIO_DEALLOCATE, 0, 0))
		return false;
	t->cmd.chunk = 1;
	t->bio.nr_ranges = t->cmd.nlb;
	t->bio.get_range = nvt_scsi_unmap_range;
	return true;
}

void nvt_scsi_exec_unmap(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint32_t plen = nvt_get_be16(c + 7), n;
	uint64_t total = 0, nb = t->lun->ns->nblocks;
	uint8_t hdr[8];

	if (c[1] & 0x01) {
		nvt_scsi_bad_field(t, true, 1, 0);	/* ANCHOR */
		goto out;
	}
	if (!plen)
		goto out;
	if (plen > t->data_len || !t->to_dev)
		plen = t->to_dev ? t->data_len : 0;
	if (plen < 8 || nvt_scsi_data_out(t, 0, hdr, 8) != 8) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PARAM_LIST_LENGTH);
		goto out;
	}
	n = nvt_get_be16(hdr + 2);
	if (n > plen - 8)
		n = plen - 8;
	n /= 16;
	if (n > NVT_SCSI_MAX_UNMAP_DESC) {
		nvt_scsi_bad_field(t, false, 2, -1);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint8_t d[16];
		uint64_t lba;
		uint32_t cnt;

		nvt_scsi_data_out(t, 8 + (uint64_t)i * 16, d, sizeof(d));
		lba = nvt_get_be64(d);
		cnt = nvt_get_be32(d + 8);
		if (lba > nb || cnt > nb - lba) {
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_LBA_RANGE);
			goto out;
		}
		total += cnt;
	}
	if (total > NVT_SCSI_MAX_UNMAP) {
		nvt_scsi_bad_field(t, false, 8, -1);
		goto out;
	}
	if (!n)
		goto out;
	t->cmd.nlb = n;		/* the descriptor count, for unmap_next */
	t->cmd.xfer = plen;
	t->cmd.next = nvt_scsi_unmap_next;
	t->cmd.absorb = nvt_scsi_absorb_chunk;
	nvt_scsi_steps(t);
	return;
out:
	nvt_scsi_finish(t);
}

/* ---- COMPARE AND WRITE ---- */

static void nvt_scsi_caw_done(struct nvt_caw *caw)
{
	struct nvt_scsi_task *t = container_of(caw, struct nvt_scsi_task, caw);

	if (t->bio.status)
		nvt_scsi_bio_failed(t, &t->bio, 0);
	else if (t->bio2.status)
		nvt_scsi_bio_failed(t, &t->bio2, 0);
	nvt_scsi_finish(t);
}

static void nvt_scsi_caw_bio_done(struct nvt_bio *bio)
{
	(void)bio;	/* the pair ends in nvt_scsi_caw_done() */
}

void nvt_scsi_exec_caw(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	struct nvt_scsi_cmd *cmd = &t->cmd;
	struct nvt_ns *ns = t->lun->ns;
	struct nvt_bio *cmp = &t->bio, *wr = &t->bio2;
	size_t half;

	cmd->protect = c[1] >> 5;
	cmd->fua = c[1] & 0x08;
	cmd->lba = nvt_get_be64(c + 2);
	cmd->nlb = c[13];
	cmd->ref_tag = nvt_scsi_default_ref(t->lun, cmd->lba);
	/* The guest's PI with the pair (WRPROTECT != 0) is not offered: ours is generated. */
	if (cmd->protect) {
		nvt_scsi_bad_field(t, true, 1, 7);
		goto out;
	}
	if (cmd->nlb > nvt_scsi_max_caw(t->lun)) {
		nvt_scsi_bad_field(t, true, 13, -1);
		goto out;
	}
	if (!nvt_scsi_check_range(t, cmd->lba, cmd->nlb) || !cmd->nlb)
		goto out;
	half = (size_t)cmd->nlb << ns->lba_shift;
	if (!t->to_dev || t->data_len < 2 * half) {
		nvt_scsi_bad_buffers(t);
		goto out;
	}
	cmd->xfer = (uint32_t)(2 * half);
	if (!nvt_scsi_bio_init(t, ns, NVT_BIO_COMPARE, cmd->lba, cmd->nlb))
		goto out;
	cmp->done = nvt_scsi_caw_bio_done;
	cmp->iov = t->work_iov;
	cmp->iov_cnt = nvt_iov_slice(t->data_iov, t->data_cnt, 0, half, t->work_iov,
				     NVT_SCSI_WORK_IOV);
	if (ns->pi.type)
		cmp->flags |= NVT_BIO_PI_CHECK_READ;
	nvt_scsi_pi_ctx(t, &cmp->pi, 0, (uint8_t)nvt_scsi_protect_checks(t->lun, 0, true, false));
	memset(wr, 0, offsetof(struct nvt_bio, ns_priv));
	wr->op = NVT_BIO_WRITE;
	wr->ns = ns;
	wr->chan = cmp->chan;
	wr->slba = cmd->lba;
	wr->nlb = cmd->nlb;
	wr->done = nvt_scsi_caw_bio_done;
	wr->resv_host = nvt_scsi_nexus(t);
	wr->flags = cmd->fua ? NVT_BIO_FUA : 0;
	wr->iov = t->work_iov2;
	wr->iov_cnt = nvt_iov_slice(t->data_iov, t->data_cnt, half, half, t->work_iov2,
				    NVT_SCSI_WORK_IOV);
	if (nvt_iov_len(cmp->iov, cmp->iov_cnt) != half || nvt_iov_len(wr->iov, wr->iov_cnt) != half) {
		nvt_scsi_bad_buffers(t);
		goto out;
	}
	if (ns->md_size) {
		t->md_iov = (struct iovec){ t->md_buf, (size_t)cmd->nlb * ns->md_size };
		memset(t->md_buf, 0, t->md_iov.iov_len);
		wr->md_iov = &t->md_iov;
		wr->md_iov_cnt = 1;
	}
	nvt_pi_ctx_init(&wr->pi, &ns->pi, cmd->lba, ns->pi.type ? NVT_PI_PRACT : 0, cmd->ref_tag, 0, 0);
	if (nvt_scsi_resv_denies(t, wr) || nvt_scsi_resv_denies(t, cmp)) {
		t->status = NVT_SCSI_RESERVATION_CONFLICT;
		goto out;
	}
	t->caw.compare = cmp;
	t->caw.write = wr;
	t->caw.done = nvt_scsi_caw_done;
	nvt_ns_caw(&t->caw);
	return;
out:
	nvt_scsi_finish(t);
}
