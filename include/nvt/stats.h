/* SPDX-License-Identifier: BSD-3-Clause */
/* I/O statistics: per-queue and per-namespace counter sets (single writer, relaxed atomics) and their latency histogram. */
#ifndef NVT_STATS_H
#define NVT_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct nvt_bio;
struct nvt_ns;
struct nvt_target;

/*
 * Latency histogram, log-linear like HdrHistogram: values in microseconds;
 * below 2^NVT_HIST_SUB_BITS us one bucket per microsecond, above that each
 * power of two is split into NVT_HIST_SUB equal sub-buckets (so a bucket is
 * at most 1/8 = 12.5 % wide). The last bucket holds everything from
 * 2^NVT_HIST_TOP_LOG2 us (~16.8 s) up: it saturates, the exact maximum is
 * kept on its own.
 */
#define NVT_HIST_SUB_BITS	3
#define NVT_HIST_SUB		(1u << NVT_HIST_SUB_BITS)
#define NVT_HIST_TOP_LOG2	24
#define NVT_HIST_BUCKETS	(NVT_HIST_SUB + (NVT_HIST_TOP_LOG2 - NVT_HIST_SUB_BITS) * NVT_HIST_SUB + 1)

/* What a command was, for the counters. */
enum nvt_stat_kind {
	NVT_STAT_READ,		/* NVMe Read; SCSI READ(6/10/12/16) */
	NVT_STAT_WRITE,		/* NVMe Write; SCSI WRITE(6/10/12/16) */
	NVT_STAT_OTHER,		/* everything else */
	NVT_STAT_KINDS,
};

/* The statuses the target returns, each counted on its own; the rest is OTHER. */
enum nvt_stat_err {
	NVT_STAT_ERR_INVALID_OPCODE,	/* 0001h */
	NVT_STAT_ERR_INVALID_FIELD,	/* 0002h, and command-specific 01xxh */
	NVT_STAT_ERR_DATA_XFER,		/* 0004h, SGL errors 000Fh..0011h, 0016h */
	NVT_STAT_ERR_INTERNAL,		/* 0006h */
	NVT_STAT_ERR_ABORTED,		/* 0007h, 0008h */
	NVT_STAT_ERR_INVALID_NS,	/* 000Bh */
	NVT_STAT_ERR_CMD_SEQ,		/* 000Ch */
	NVT_STAT_ERR_LBA_RANGE,		/* 0080h */
	NVT_STAT_ERR_CAP_EXCEEDED,	/* 0081h */
	NVT_STAT_ERR_WRITE_FAULT,	/* 0280h */
	NVT_STAT_ERR_READ_ERROR,	/* 0281h */
	NVT_STAT_ERR_PI_GUARD,		/* 0282h */
	NVT_STAT_ERR_PI_APPTAG,		/* 0283h */
	NVT_STAT_ERR_PI_REFTAG,		/* 0284h */
	NVT_STAT_ERR_COMPARE,		/* 0285h */
	NVT_STAT_ERR_OTHER,		/* anything else */
	NVT_STAT_ERRS,
};

/**
 * struct nvt_io_stats - one counter set. Written by exactly one thread (the
 * poll group owning the queue or the namespace channel) with relaxed loads
 * and stores, no read-modify-write; read by any thread with relaxed loads.
 * A reader sees each counter whole, not all of them at one instant.
 */
struct nvt_io_stats {
	_Atomic uint64_t cmds[NVT_STAT_KINDS];
	_Atomic uint64_t bytes_read, bytes_written;	/* data only (no metadata), successful commands */
	_Atomic uint64_t errors[NVT_STAT_ERRS];
	_Atomic uint64_t hist[NVT_HIST_BUCKETS];	/* latency, arrival to completion */
	_Atomic uint64_t lat_sum_ns, lat_max_ns;
	_Atomic uint32_t qd, qd_max;			/* commands in flight now, at most */
};

/* A copy of one or the sum of several sets, made by a reader. */
struct nvt_io_stats_snap {
	uint64_t cmds[NVT_STAT_KINDS];
	uint64_t bytes_read, bytes_written;
	uint64_t errors[NVT_STAT_ERRS];
	uint64_t hist[NVT_HIST_BUCKETS];
	uint64_t lat_sum_ns, lat_max_ns;
	uint64_t qd, qd_max;	/* sums of the sets' (a namespace's over its poll groups) */
};

/*
 * Counting on (the default) or off: a knob for tests/bench/loop_bench to
 * measure what counting costs in the same run; nvtd never turns it off
 * (SMART log 02h reads these counters).
 */
extern atomic_bool nvt_stats_enabled;

static inline bool nvt_stats_on(void)
{
	return atomic_load_explicit(&nvt_stats_enabled, memory_order_relaxed);
}

/* A single writer's add: load, add, store (no locked instruction). */
static inline void nvt_stats_inc(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

/** nvt_hist_bucket() - the histogram bucket of a latency of @ns nanoseconds. */
static inline unsigned int nvt_hist_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned int k;

	if (us < NVT_HIST_SUB)
		return (unsigned int)us;
	k = 63u - (unsigned int)__builtin_clzll(us);	/* us in [2^k, 2^(k+1)) */
	if (k >= NVT_HIST_TOP_LOG2)
		return NVT_HIST_BUCKETS - 1;
	return NVT_HIST_SUB + (k - NVT_HIST_SUB_BITS) * NVT_HIST_SUB +
	       (unsigned int)((us >> (k - NVT_HIST_SUB_BITS)) & (NVT_HIST_SUB - 1));
}

/** nvt_hist_bucket_lo_us() - the smallest latency (us) bucket @b holds. */
uint64_t nvt_hist_bucket_lo_us(unsigned int b);

/** nvt_hist_bucket_hi_us() - one past the largest latency (us) bucket @b holds; UINT64_MAX for the last. */
uint64_t nvt_hist_bucket_hi_us(unsigned int b);

/**
 * nvt_stats_percentile() - the latency (ns) at or below which @permille of
 * 1000 of the commands in @s completed: the upper edge of the bucket the
 * rank falls in, never more than the recorded maximum. 0 with no commands.
 */
uint64_t nvt_stats_percentile(const struct nvt_io_stats_snap *s, unsigned int permille);

/** nvt_stats_err_of() - the counter an NVMe status (SCT << 8 | SC, DNR ignored) goes to. */
enum nvt_stat_err nvt_stats_err_of(uint16_t status);

/**
 * nvt_bio_nvme_status() - the one mapping of the namespace layer's answer
 * to an NVMe status (SCT << 8 | SC, DNR where it is final): what the NVMe
 * front answers and what the SCSI front counts its commands under.
 */
uint16_t nvt_bio_nvme_status(const struct nvt_bio *bio);

/*
 * The clock of latencies: the poll group's per-iteration time
 * (nvt_poll_group_now_ns), not a clock read per command. Two
 * clock_gettime() per I/O cost 16 % of the loop transport's 2.4M IOPS
 * per core (tests/bench/loop_bench); the cached time costs one read per
 * poll iteration, and a latency is then exact to within one iteration
 * (a command completing in the iteration it arrived in reads as 0).
 */

/** nvt_stats_start() - a command arrived on @s's owner: queue depth. Owner thread only. */
static inline void nvt_stats_start(struct nvt_io_stats *s)
{
	uint32_t qd = atomic_load_explicit(&s->qd, memory_order_relaxed) + 1;

	atomic_store_explicit(&s->qd, qd, memory_order_relaxed);
	if (qd > atomic_load_explicit(&s->qd_max, memory_order_relaxed))
		atomic_store_explicit(&s->qd_max, qd, memory_order_relaxed);
}

/**
 * nvt_stats_done() - a command ended: @kind, @bytes of data moved (0 if it
 * failed), its NVMe(-equivalent) @status, @lat_ns since arrival; @started:
 * nvt_stats_start() was called for it. Owner thread only; no allocation.
 */
static inline void nvt_stats_done(struct nvt_io_stats *s, enum nvt_stat_kind kind, uint64_t bytes,
		    uint16_t status, uint64_t lat_ns, bool started)
{
	nvt_stats_inc(&s->cmds[kind], 1);
	if (kind == NVT_STAT_READ)
		nvt_stats_inc(&s->bytes_read, bytes);
	else if (kind == NVT_STAT_WRITE)
		nvt_stats_inc(&s->bytes_written, bytes);
	if (status)
		nvt_stats_inc(&s->errors[nvt_stats_err_of(status)], 1);
	nvt_stats_inc(&s->hist[nvt_hist_bucket(lat_ns)], 1);
	nvt_stats_inc(&s->lat_sum_ns, lat_ns);
	if (lat_ns > atomic_load_explicit(&s->lat_max_ns, memory_order_relaxed))
		atomic_store_explicit(&s->lat_max_ns, lat_ns, memory_order_relaxed);
	if (started)
		atomic_store_explicit(&s->qd, atomic_load_explicit(&s->qd, memory_order_relaxed) - 1,
				      memory_order_relaxed);
}

/** nvt_stats_snap_add() - add @s (read with relaxed loads) into @out. Any thread. */
void nvt_stats_snap_add(struct nvt_io_stats_snap *out, const struct nvt_io_stats *s);

/** nvt_stats_ns_snap() - @ns summed over its poll groups' channels into @out (zeroed first). */
void nvt_stats_ns_snap(struct nvt_ns *ns, struct nvt_io_stats_snap *out);

/** nvt_stats_media_errors() - SMART's Media and Data Integrity Errors: read/write faults and PI errors. */
uint64_t nvt_stats_media_errors(const struct nvt_io_stats_snap *s);

/** nvt_stat_err_name() - a short name for counter @e ("lba_range"), for nvtctl. */
const char *nvt_stat_err_name(enum nvt_stat_err e);

#endif /* NVT_STATS_H */
