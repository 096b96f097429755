/* SPDX-License-Identifier: BSD-3-Clause */
/* The statistics' latency histogram (bucket edges, percentiles against a known distribution, saturation), status table and queue depth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/bio.h"
#include "nvt/stats.h"
#include "nvt/wire.h"

/* Every bucket's edges: contiguous, increasing, each edge mapping back to its bucket. */
static void test_bucket_edges(void **state)
{
	assert_int_equal(NVT_HIST_BUCKETS, 177);
	assert_int_equal(nvt_hist_bucket(0), 0);
	assert_int_equal(nvt_hist_bucket(999), 0);
	assert_int_equal(nvt_hist_bucket(1000), 1);
	assert_int_equal(nvt_hist_bucket(7999), 7);
	assert_int_equal(nvt_hist_bucket(8000), 8);
	assert_int_equal(nvt_hist_bucket(8999), 8);
	assert_int_equal(nvt_hist_bucket(9000), 9);
	assert_int_equal(nvt_hist_bucket(15999), 15);
	/* 16..31 us: 8 buckets of 2 us. */
	assert_int_equal(nvt_hist_bucket(16000), 16);
	assert_int_equal(nvt_hist_bucket(17999), 16);
	assert_int_equal(nvt_hist_bucket(18000), 17);
	assert_int_equal(nvt_hist_bucket(31999), 23);
	assert_int_equal(nvt_hist_bucket(32000), 24);
	assert_int_equal(nvt_hist_bucket_lo_us(0), 0);
	for (unsigned int b = 0; b + 1 < NVT_HIST_BUCKETS; b++) {
		uint64_t lo = nvt_hist_bucket_lo_us(b), hi = nvt_hist_bucket_hi_us(b);

		assert_true(hi > lo);
		assert_int_equal(hi, nvt_hist_bucket_lo_us(b + 1));
		assert_int_equal(nvt_hist_bucket(lo * 1000), b);
		assert_int_equal(nvt_hist_bucket(hi * 1000 - 1), b);
		/* Log-linear: no bucket wider than 1/8 of its start (past the 1 us ones). */
		if (lo >= NVT_HIST_SUB)
			assert_true((hi - lo) * NVT_HIST_SUB <= lo);
	}
	/* ~16.8 s and beyond: the last bucket. */
	assert_int_equal(nvt_hist_bucket_lo_us(NVT_HIST_BUCKETS - 1), 1ull << 24);
	assert_int_equal(nvt_hist_bucket(((1ull << 24) - 1) * 1000), NVT_HIST_BUCKETS - 2);
	assert_int_equal(nvt_hist_bucket((1ull << 24) * 1000), NVT_HIST_BUCKETS - 1);
	assert_int_equal(nvt_hist_bucket(UINT64_MAX), NVT_HIST_BUCKETS - 1);
	assert_true(nvt_hist_bucket_hi_us(NVT_HIST_BUCKETS - 1) == UINT64_MAX);
}

static void snap_of(const struct nvt_io_stats *s, struct nvt_io_stats_snap *out)
{
	memset(out, 0, sizeof(*out));
	nvt_stats_snap_add(out, s);
}

/* 1, 2, ..., 1000 us once each: the nearest-rank percentiles are known, and the estimate is its bucket's upper edge. */
static void test_percentiles_uniform(void **state)
{
	static struct nvt_io_stats s;
	struct nvt_io_stats_snap snap;

	memset(&s, 0, sizeof(s));
	for (uint64_t us = 1; us <= 1000; us++)
		nvt_stats_done(&s, NVT_STAT_READ, 4096, 0, us * 1000, false);
	snap_of(&s, &snap);
	assert_int_equal(snap.cmds[NVT_STAT_READ], 1000);
	assert_int_equal(snap.bytes_read, 1000 * 4096);
	assert_int_equal(snap.lat_max_ns, 1000000);
	assert_int_equal(snap.lat_sum_ns, 500500ull * 1000);
	/* p50: the 500th, 500 us, in [480, 512). */
	assert_int_equal(nvt_stats_percentile(&snap, 500), 512000);
	/* p90: 900 us, in [896, 960). */
	assert_int_equal(nvt_stats_percentile(&snap, 900), 960000);
	/* p99 (990 us) and p99.9 (999 us) sit in [960, 1024): capped at the true maximum. */
	assert_int_equal(nvt_stats_percentile(&snap, 990), 1000000);
	assert_int_equal(nvt_stats_percentile(&snap, 999), 1000000);
	assert_int_equal(nvt_stats_percentile(&snap, 1000), 1000000);
	/* p0.1: the first, 1 us, in [1, 2). */
	assert_int_equal(nvt_stats_percentile(&snap, 1), 2000);
	/* Never below the truth, never more than 12.5 % above it (past 8 us). */
	for (unsigned int pm = 10; pm <= 1000; pm += 10) {
		uint64_t truth = (uint64_t)pm * 1000, est = nvt_stats_percentile(&snap, pm);

		assert_true(est >= truth);
		assert_true(est * 8 <= truth * 9);
	}
}

/* Latencies past the top bucket saturate it; the maximum stays exact. */
static void test_saturation(void **state)
{
	static struct nvt_io_stats s;
	struct nvt_io_stats_snap snap;

	memset(&s, 0, sizeof(s));
	snap_of(&s, &snap);
	assert_int_equal(nvt_stats_percentile(&snap, 990), 0);
	for (int i = 0; i < 98; i++)
		nvt_stats_done(&s, NVT_STAT_WRITE, 512, 0, 5000, false);
	nvt_stats_done(&s, NVT_STAT_WRITE, 512, 0, 20ull * 1000000000, false);
	nvt_stats_done(&s, NVT_STAT_WRITE, 512, 0, 3600ull * 1000000000, false);
	snap_of(&s, &snap);
	assert_int_equal(snap.hist[NVT_HIST_BUCKETS - 1], 2);
	assert_int_equal(snap.hist[5], 98);
	assert_int_equal(nvt_stats_percentile(&snap, 980), 6000);
	assert_int_equal(nvt_stats_percentile(&snap, 990), 3600ull * 1000000000);
	assert_int_equal(snap.lat_max_ns, 3600ull * 1000000000);
	assert_int_equal(snap.bytes_written, 100 * 512);
}

static void test_status_table(void **state)
{
	static const struct { uint16_t st; enum nvt_stat_err e; } map[] = {
		{ NVT_ST_INVALID_OPCODE & ~NVT_SC_DNR, NVT_STAT_ERR_INVALID_OPCODE },
		{ NVT_ST_INVALID_FIELD & ~NVT_SC_DNR, NVT_STAT_ERR_INVALID_FIELD },
		{ NVT_ST_SGL_INVALID_DATA & ~NVT_SC_DNR, NVT_STAT_ERR_DATA_XFER },
		{ NVT_ST_INTERNAL & ~NVT_SC_DNR, NVT_STAT_ERR_INTERNAL },
		{ NVT_ST_ABORT_SQ, NVT_STAT_ERR_ABORTED },
		{ NVT_ST_INVALID_NS & ~NVT_SC_DNR, NVT_STAT_ERR_INVALID_NS },
		{ NVT_ST_CMD_SEQ & ~NVT_SC_DNR, NVT_STAT_ERR_CMD_SEQ },
		{ NVT_ST_LBA_RANGE & ~NVT_SC_DNR, NVT_STAT_ERR_LBA_RANGE },
		{ NVT_ST_CAP_EXCEEDED & ~NVT_SC_DNR, NVT_STAT_ERR_CAP_EXCEEDED },
		{ NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT), NVT_STAT_ERR_WRITE_FAULT },
		{ NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_READ_ERROR), NVT_STAT_ERR_READ_ERROR },
		{ NVT_ST_PI_GUARD & ~NVT_SC_DNR, NVT_STAT_ERR_PI_GUARD },
		{ NVT_ST_PI_APPTAG & ~NVT_SC_DNR, NVT_STAT_ERR_PI_APPTAG },
		{ NVT_ST_PI_REFTAG & ~NVT_SC_DNR, NVT_STAT_ERR_PI_REFTAG },
		{ NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED), NVT_STAT_ERR_COMPARE },
		{ NVT_STATUS(NVME_SCT_PATH, 0x00), NVT_STAT_ERR_OTHER },
		{ 0x7f, NVT_STAT_ERR_OTHER },
	};
	static struct nvt_io_stats s;
	struct nvt_io_stats_snap snap;
	struct nvt_bio bio;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		assert_int_equal(nvt_stats_err_of(map[i].st), map[i].e);
	for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
		assert_string_not_equal(nvt_stat_err_name(e), "?");
	/* The SCSI front's bios count under the status an NVMe host would get. */
	memset(&bio, 0, sizeof(bio));
	bio.status = NVT_BIO_PI;
	bio.pi_err.type = NVT_PI_ERR_REFTAG;
	assert_int_equal(nvt_stats_err_of(nvt_bio_nvme_status(&bio)), NVT_STAT_ERR_PI_REFTAG);
	bio.status = NVT_BIO_MEDIA_READ;
	assert_int_equal(nvt_stats_err_of(nvt_bio_nvme_status(&bio)), NVT_STAT_ERR_READ_ERROR);
	bio.status = NVT_BIO_NOSPC;
	assert_int_equal(nvt_stats_err_of(nvt_bio_nvme_status(&bio)), NVT_STAT_ERR_CAP_EXCEEDED);
	bio.status = NVT_BIO_MISCOMPARE;
	assert_int_equal(nvt_bio_nvme_status(&bio), NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED) | NVT_SC_DNR);

	/* Failed commands count as commands, move no bytes, and one error each; media ones for SMART. */
	memset(&s, 0, sizeof(s));
	nvt_stats_done(&s, NVT_STAT_READ, 0, NVT_ST_PI_GUARD & ~NVT_SC_DNR, 1000, false);
	nvt_stats_done(&s, NVT_STAT_WRITE, 0, NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT), 1000, false);
	nvt_stats_done(&s, NVT_STAT_OTHER, 0, NVT_ST_INVALID_FIELD & ~NVT_SC_DNR, 1000, false);
	snap_of(&s, &snap);
	assert_int_equal(snap.cmds[NVT_STAT_READ] + snap.cmds[NVT_STAT_WRITE] + snap.cmds[NVT_STAT_OTHER], 3);
	assert_int_equal(snap.errors[NVT_STAT_ERR_PI_GUARD], 1);
	assert_int_equal(nvt_stats_media_errors(&snap), 2);
}

static void test_queue_depth_and_sums(void **state)
{
	static struct nvt_io_stats a, b;
	struct nvt_io_stats_snap snap;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (int i = 0; i < 3; i++)
		nvt_stats_start(&a);
	nvt_stats_done(&a, NVT_STAT_READ, 512, 0, 1000, true);
	nvt_stats_done(&a, NVT_STAT_READ, 512, 0, 2000, true);
	nvt_stats_start(&b);
	nvt_stats_done(&b, NVT_STAT_WRITE, 1024, 0, 9000, true);
	/* Not started (refused before its queue counted it): depth untouched. */
	nvt_stats_done(&b, NVT_STAT_WRITE, 0, NVT_ST_LBA_RANGE & ~NVT_SC_DNR, 500, false);
	memset(&snap, 0, sizeof(snap));
	nvt_stats_snap_add(&snap, &a);
	nvt_stats_snap_add(&snap, &b);
	assert_int_equal(snap.qd, 1);
	assert_int_equal(snap.qd_max, 4);	/* 3 + 1: a namespace's sum over its poll groups */
	assert_int_equal(snap.cmds[NVT_STAT_READ], 2);
	assert_int_equal(snap.cmds[NVT_STAT_WRITE], 2);
	assert_int_equal(snap.bytes_read, 1024);
	assert_int_equal(snap.bytes_written, 1024);
	assert_int_equal(snap.lat_max_ns, 9000);
	assert_int_equal(snap.hist[0] + snap.hist[1] + snap.hist[2] + snap.hist[9], 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_percentiles_uniform),
		cmocka_unit_test(test_saturation),
		cmocka_unit_test(test_status_table),
		cmocka_unit_test(test_queue_depth_and_sums),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
