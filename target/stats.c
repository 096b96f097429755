/* SPDX-License-Identifier: BSD-3-Clause */
/* I/O statistics: recording on the owner thread, snapshots and percentiles for readers (nvtctl links this file too). */
#include <string.h>

#include "nvt/bio.h"
#include "nvt/stats.h"
#include "nvt/wire.h"
#include "ns_internal.h"

atomic_bool nvt_stats_enabled = true;

uint64_t nvt_hist_bucket_lo_us(unsigned int b)
{
	unsigned int k, sub;

	if (b < NVT_HIST_SUB)
		return b;
	if (b >= NVT_HIST_BUCKETS - 1)
		return 1ull << NVT_HIST_TOP_LOG2;
	k = (b - NVT_HIST_SUB) / NVT_HIST_SUB + NVT_HIST_SUB_BITS;
	sub = (b - NVT_HIST_SUB) % NVT_HIST_SUB;
	return (uint64_t)(NVT_HIST_SUB + sub) << (k - NVT_HIST_SUB_BITS);
}

uint64_t nvt_hist_bucket_hi_us(unsigned int b)
{
	if (b >= NVT_HIST_BUCKETS - 1)
		return UINT64_MAX;
	return nvt_hist_bucket_lo_us(b + 1);
}

uint64_t nvt_stats_percentile(const struct nvt_io_stats_snap *s, unsigned int permille)
{
	uint64_t total = 0, rank, seen = 0, v;

	for (unsigned int b = 0; b < NVT_HIST_BUCKETS; b++)
		total += s->hist[b];
	if (!total)
		return 0;
	/* The smallest count of commands that is at least permille/1000 of them (nearest rank). */
	rank = (total * permille + 999) / 1000;
	if (!rank)
		rank = 1;
	for (unsigned int b = 0; b < NVT_HIST_BUCKETS; b++) {
		seen += s->hist[b];
		if (seen < rank)
			continue;
		/* The bucket's upper edge: an estimate never below the true value. */
		v = nvt_hist_bucket_hi_us(b);
		if (v == UINT64_MAX || v * 1000 > s->lat_max_ns)
			return s->lat_max_ns;
		return v * 1000;
	}
	return s->lat_max_ns;
}

enum nvt_stat_err nvt_stats_err_of(uint16_t status)
{
	unsigned int sct = NVT_STATUS_SCT(status), sc = NVT_STATUS_SC(status);

	if (sct == NVME_SCT_CMD_SPECIFIC)
		return NVT_STAT_ERR_INVALID_FIELD;
	if (sct == NVME_SCT_MEDIA) {
		switch (sc) {
		case NVME_SC_WRITE_FAULT:
			return NVT_STAT_ERR_WRITE_FAULT;
		case NVME_SC_READ_ERROR:
			return NVT_STAT_ERR_READ_ERROR;
		case NVME_SC_GUARD_CHECK:
			return NVT_STAT_ERR_PI_GUARD;
		case NVME_SC_APPTAG_CHECK:
			return NVT_STAT_ERR_PI_APPTAG;
		case NVME_SC_REFTAG_CHECK:
			return NVT_STAT_ERR_PI_REFTAG;
		case NVME_SC_COMPARE_FAILED:
			return NVT_STAT_ERR_COMPARE;
		}
		return NVT_STAT_ERR_OTHER;
	}
	if (sct != NVME_SCT_GENERIC)
		return NVT_STAT_ERR_OTHER;
	switch (sc) {
	case NVME_SC_INVALID_OPCODE:
		return NVT_STAT_ERR_INVALID_OPCODE;
	case NVME_SC_INVALID_FIELD:
		return NVT_STAT_ERR_INVALID_FIELD;
	case NVME_SC_DATA_XFER_ERROR:
	case NVME_SC_SGL_INVALID_DATA:
	case NVME_SC_SGL_INVALID_METADATA:
	case NVME_SC_SGL_INVALID_TYPE:
	case NVME_SC_SGL_INVALID_OFFSET:
		return NVT_STAT_ERR_DATA_XFER;
	case NVME_SC_INTERNAL:
		return NVT_STAT_ERR_INTERNAL;
	case NVME_SC_ABORT_REQ:
	case NVME_SC_ABORT_QUEUE:
	case NVME_SC_FUSED_FAIL:
	case NVME_SC_FUSED_MISSING:
		return NVT_STAT_ERR_ABORTED;
	case NVME_SC_INVALID_NS:
		return NVT_STAT_ERR_INVALID_NS;
	case NVME_SC_CMD_SEQ_ERROR:
		return NVT_STAT_ERR_CMD_SEQ;
	case NVME_SC_LBA_RANGE:
		return NVT_STAT_ERR_LBA_RANGE;
	case NVME_SC_CAP_EXCEEDED:
		return NVT_STAT_ERR_CAP_EXCEEDED;
	}
	return NVT_STAT_ERR_OTHER;
}

static uint64_t ld(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void nvt_stats_snap_add(struct nvt_io_stats_snap *out, const struct nvt_io_stats *s)
{
	uint64_t max;

	for (unsigned int i = 0; i < NVT_STAT_KINDS; i++)
		out->cmds[i] += ld(&s->cmds[i]);
	out->bytes_read += ld(&s->bytes_read);
	out->bytes_written += ld(&s->bytes_written);
	for (unsigned int i = 0; i < NVT_STAT_ERRS; i++)
		out->errors[i] += ld(&s->errors[i]);
	for (unsigned int i = 0; i < NVT_HIST_BUCKETS; i++)
		out->hist[i] += ld(&s->hist[i]);
	out->lat_sum_ns += ld(&s->lat_sum_ns);
	max = ld(&s->lat_max_ns);
	if (max > out->lat_max_ns)
		out->lat_max_ns = max;
	out->qd += atomic_load_explicit(&s->qd, memory_order_relaxed);
	out->qd_max += atomic_load_explicit(&s->qd_max, memory_order_relaxed);
}

void nvt_stats_ns_snap(struct nvt_ns *ns, struct nvt_io_stats_snap *out)
{
	unsigned int n = atomic_load_explicit(&ns->nr_chans, memory_order_acquire);

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < n && i < NVT_MAX_PG_SLOTS; i++) {
		struct nvt_ns_chan *c = atomic_load_explicit(&ns->chans[i], memory_order_acquire);

		if (c)
			nvt_stats_snap_add(out, &c->stats);
	}
}

uint64_t nvt_stats_media_errors(const struct nvt_io_stats_snap *s)
{
	return s->errors[NVT_STAT_ERR_WRITE_FAULT] + s->errors[NVT_STAT_ERR_READ_ERROR] +
	       s->errors[NVT_STAT_ERR_PI_GUARD] + s->errors[NVT_STAT_ERR_PI_APPTAG] +
	       s->errors[NVT_STAT_ERR_PI_REFTAG];
}

const char *nvt_stat_err_name(enum nvt_stat_err e)
{
	static const char *const names[NVT_STAT_ERRS] = {
		[NVT_STAT_ERR_INVALID_OPCODE] = "invalid_opcode",
		[NVT_STAT_ERR_INVALID_FIELD] = "invalid_field",
		[NVT_STAT_ERR_DATA_XFER] = "data_transfer",
		[NVT_STAT_ERR_INTERNAL] = "internal",
		[NVT_STAT_ERR_ABORTED] = "aborted",
		[NVT_STAT_ERR_INVALID_NS] = "invalid_ns",
		[NVT_STAT_ERR_CMD_SEQ] = "cmd_sequence",
		[NVT_STAT_ERR_LBA_RANGE] = "lba_range",
		[NVT_STAT_ERR_CAP_EXCEEDED] = "capacity_exceeded",
		[NVT_STAT_ERR_WRITE_FAULT] = "write_fault",
		[NVT_STAT_ERR_READ_ERROR] = "read_error",
		[NVT_STAT_ERR_PI_GUARD] = "pi_guard",
		[NVT_STAT_ERR_PI_APPTAG] = "pi_app_tag",
		[NVT_STAT_ERR_PI_REFTAG] = "pi_ref_tag",
		[NVT_STAT_ERR_COMPARE] = "compare",
		[NVT_STAT_ERR_OTHER] = "other",
	};

	return (unsigned int)e < NVT_STAT_ERRS ? names[e] : "?";
}

uint16_t nvt_bio_nvme_status(const struct nvt_bio *bio)
{
	switch (bio->status) {
	case NVT_BIO_OK:
		return NVT_ST_OK;
	case NVT_BIO_MEDIA_READ:
		return NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_READ_ERROR);
	case NVT_BIO_MEDIA_WRITE:
		return NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT);
	case NVT_BIO_PI:
		return nvt_pi_err_to_status(&bio->pi_err);
	case NVT_BIO_MISCOMPARE:
		return NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED) | NVT_SC_DNR;
	case NVT_BIO_NOSPC:
		return NVT_ST_CAP_EXCEEDED;
	case NVT_BIO_LBA_RANGE:
		return NVT_ST_LBA_RANGE;
	case NVT_BIO_UNSUPPORTED:
		return NVT_ST_INVALID_OPCODE;
	case NVT_BIO_ABORTED:
		return NVT_ST_ABORT_SQ;
	case NVT_BIO_RESV_CONFLICT:
		return NVT_ST_RESV_CONFLICT;
	case NVT_BIO_DEVICE:
		/* A local device's own answer (PI errors included): the host hears it unchanged. */
		return bio->dev_status ? bio->dev_status : NVT_ST_INTERNAL;
	case NVT_BIO_INTERNAL:
	default:
		return NVT_ST_INTERNAL;
	}
}
