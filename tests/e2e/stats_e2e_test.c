/* SPDX-License-Identifier: BSD-3-Clause */
/* Statistics end to end over the loop transport: reads, writes, an error and a PI error, then the namespace and queue counters, the control socket's stats records and SMART log 02h agree exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <endian.h>

#include "nvt/control.h"
#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"
#include "nvt/pi.h"
#include "nvt/stats.h"
#include "nvt/target.h"
#include "nvt_test_loop.h"

#define ST_NQN	"nqn.2026-11.io.nvt:stats"
#define ST_HOST	"nqn.2014-08.org.nvmexpress:uuid:stats-host"
#define PRCHK_ALL	(NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG | NVT_PI_CHECK_REFTAG)

/* nsid 1: 512+8 Type 1 PI; nsid 2: 4096, no PI. */
static const struct nvt_test_fmt fmts[] = {
	{ 512, 1, "crc16", "last", 8 },
	{ 4096, 0, NULL, NULL, 0 },
};

static int setup(void **state)
{
	*state = nvt_test_fixture_connect(nvt_test_target_ram(ST_NQN, fmts, 2, 1u << 20), ST_NQN,
					  ST_HOST, 1, 32, 0);
	return 0;
}

static int run(struct fixture *f, struct nvt_sqe *sqe, void *buf, size_t len)
{
	return nvt_test_exec(f->ctrl.io[0], sqe, buf, len, NULL);
}

static uint64_t le128_low(const uint8_t v[16])
{
	uint64_t r = 0;

	for (int i = 7; i >= 0; i--)
		r = r << 8 | v[i];
	for (int i = 8; i < 16; i++)
		assert_int_equal(v[i], 0);
	return r;
}

struct reply_buf {
	char text[65536];
	size_t len;
};

static void collect(void *arg, const char *line, size_t len)
{
	struct reply_buf *r = arg;

	assert_true(r->len + len < sizeof(r->text));
	memcpy(r->text + r->len, line, len);
	r->len += len;
	r->text[r->len] = '\0';
}

/* The " io ..." line after the record line @rec (e.g. "ns 1\n"). */
static const char *io_line_after(const struct reply_buf *r, const char *rec)
{
	const char *p = strstr(r->text, rec);

	assert_non_null(p);
	p = strchr(p + 1, '\n');	/* the end of the record line */
	assert_non_null(p);
	while (!strncmp(p + 1, " host ", 6))
		p = strchr(p + 1, '\n');
	assert_true(!strncmp(p + 1, " io ", 4));
	return p + 1;
}

static void test_counters_and_smart_agree(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[8 * 4096];
	struct nvt_io_stats_snap ns1, ns2, q;
	struct nvme_smart_log smart;
	struct nvt_reply_check { const char *rec, *io; } *c;
	struct reply_buf *r = calloc(1, sizeof(*r));
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint64_t hist = 0;
	char want[256];

	memset(buf, 0x5a, sizeof(buf));
	/* 5 writes and 3 reads of 8 blocks on nsid 1, the target inserting and stripping PI. */
	for (int i = 0; i < 5; i++) {
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, (uint64_t)i * 8, 8, NVT_PI_PRACT | PRCHK_ALL,
				   (uint32_t)i * 8, 0, 0);
		assert_int_equal(run(f, &sqe, buf, 8 * 512), 0);
	}
	for (int i = 0; i < 3; i++) {
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, (uint64_t)i * 8, 8, NVT_PI_PRACT | PRCHK_ALL,
				   (uint32_t)i * 8, 0, 0);
		assert_int_equal(run(f, &sqe, buf, 8 * 512), 0);
	}
	/* A PI error: a bit of block 3 flipped at rest, found by the next read's guard check. */
	assert_int_equal(nvt_ns_inject(f->subsys->ns[1], 3, false, 77), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 0, 8, NVT_PI_PRACT | PRCHK_ALL, 0, 0, 0);
	assert_int_equal(run(f, &sqe, buf, 8 * 512), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	/* An error: a read past the end of nsid 2 (256 blocks). */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 2, 255, 2);
	assert_int_equal(run(f, &sqe, buf, 2 * 4096), NVT_ST_LBA_RANGE & ~NVT_SC_DNR);
	/* 2 good writes, 1 good read of 4 KiB blocks, and a flush (other) on nsid 2. */
	for (int i = 0; i < 2; i++) {
		nvt_host_sqe_rw(&sqe, nvme_cmd_write, 2, (uint64_t)i, 1);
		assert_int_equal(run(f, &sqe, buf, 4096), 0);
	}
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 2, 0, 1);
	assert_int_equal(run(f, &sqe, buf, 4096), 0);
	nvt_host_sqe_init(&sqe, nvme_cmd_flush, 2);
	assert_int_equal(run(f, &sqe, NULL, 0), 0);

	/* The namespaces' sets, summed over poll groups. */
	nvt_stats_ns_snap(f->subsys->ns[1], &ns1);
	nvt_stats_ns_snap(f->subsys->ns[2], &ns2);
	assert_int_equal(ns1.cmds[NVT_STAT_WRITE], 5);
	assert_int_equal(ns1.cmds[NVT_STAT_READ], 4);
	assert_int_equal(ns1.cmds[NVT_STAT_OTHER], 0);
	assert_int_equal(ns1.bytes_written, 5 * 8 * 512);
	assert_int_equal(ns1.bytes_read, 3 * 8 * 512);	/* the failed read moved nothing */
	assert_int_equal(ns1.errors[NVT_STAT_ERR_PI_GUARD], 1);
	assert_int_equal(nvt_stats_media_errors(&ns1), 1);
	assert_int_equal(ns2.cmds[NVT_STAT_WRITE], 2);
	assert_int_equal(ns2.cmds[NVT_STAT_READ], 2);
	assert_int_equal(ns2.cmds[NVT_STAT_OTHER], 1);
	assert_int_equal(ns2.bytes_written, 2 * 4096);
	assert_int_equal(ns2.bytes_read, 4096);
	assert_int_equal(ns2.errors[NVT_STAT_ERR_LBA_RANGE], 1);
	assert_int_equal(nvt_stats_media_errors(&ns2), 0);
	for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
		if (e != NVT_STAT_ERR_PI_GUARD && e != NVT_STAT_ERR_LBA_RANGE)
			assert_int_equal(ns1.errors[e] + ns2.errors[e], 0);
	/* Nothing in flight now; one at a time before (nvt_loop_exec waits for each). */
	assert_int_equal(ns1.qd + ns2.qd, 0);
	assert_true(ns1.qd_max >= 1 && ns2.qd_max >= 1);
	for (unsigned int b = 0; b < NVT_HIST_BUCKETS; b++)
		hist += ns1.hist[b];
	assert_int_equal(hist, 9);

	/* The I/O queue's set: every command on it. */
	memset(&q, 0, sizeof(q));
	nvt_stats_snap_add(&q, &f->subsys->ctrls->sqs[1]->stats);
	assert_int_equal(q.cmds[NVT_STAT_WRITE], 7);
	assert_int_equal(q.cmds[NVT_STAT_READ], 6);
	assert_int_equal(q.cmds[NVT_STAT_OTHER], 2);	/* the queue's Fabrics Connect, the flush */
	assert_int_equal(q.errors[NVT_STAT_ERR_PI_GUARD], 1);
	assert_int_equal(q.errors[NVT_STAT_ERR_LBA_RANGE], 1);
	assert_int_equal(q.bytes_read, ns1.bytes_read + ns2.bytes_read);
	assert_int_equal(q.bytes_written, ns1.bytes_written + ns2.bytes_written);
	assert_int_equal(q.qd, 0);

	/* SMART log 02h: the subsystem's namespaces summed, exactly. */
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_SMART, sizeof(smart), 0, false);	/* NSID FFFFFFFFh */
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &smart, sizeof(smart), &cqe), 0);
	assert_int_equal(le128_low(smart.host_reads), ns1.cmds[NVT_STAT_READ] + ns2.cmds[NVT_STAT_READ]);
	assert_int_equal(le128_low(smart.host_writes), ns1.cmds[NVT_STAT_WRITE] + ns2.cmds[NVT_STAT_WRITE]);
	/* Thousands of 512-byte units, rounded up: 32 and 48 units. */
	assert_int_equal(le128_low(smart.data_units_read), 1);
	assert_int_equal(le128_low(smart.data_units_written), 1);
	assert_int_equal(le128_low(smart.media_errors), 1);

	/* The control socket's records say the same. */
	nvt_control_execute(f->tgt, "stats " ST_NQN, strlen("stats " ST_NQN), collect, r);
	assert_non_null(strstr(r->text, "subsys " ST_NQN "\n"));
	assert_true(r->len > 3 && !strcmp(r->text + r->len - 3, "ok\n"));
	static struct nvt_reply_check checks[3];

	checks[0].rec = "\nns 1\n";
	checks[1].rec = "\nns 2\n";
	checks[2].rec = "\nqueue ";
	for (int i = 0; i < 3; i++) {
		const struct nvt_io_stats_snap *s = i == 0 ? &ns1 : i == 1 ? &ns2 : &q;

		c = &checks[i];
		snprintf(want, sizeof(want), " io reads=%llu writes=%llu other=%llu bytes_read=%llu bytes_written=%llu qd=0 ",
			 (unsigned long long)s->cmds[NVT_STAT_READ], (unsigned long long)s->cmds[NVT_STAT_WRITE],
			 (unsigned long long)s->cmds[NVT_STAT_OTHER], (unsigned long long)s->bytes_read,
			 (unsigned long long)s->bytes_written);
		c->io = io_line_after(r, c->rec);
		assert_true(!strncmp(c->io, want, strlen(want)));
	}
	assert_non_null(strstr(r->text, "\n err pi_guard=1\n"));
	assert_non_null(strstr(r->text, "\n err lba_range=1\n"));
	assert_non_null(strstr(r->text, "\n host " ST_HOST "\n"));
	/* One namespace: no queues. Bad requests: errors. */
	r->len = 0;
	nvt_control_execute(f->tgt, "stats " ST_NQN " 2", strlen("stats " ST_NQN " 2"), collect, r);
	assert_null(strstr(r->text, "\nns 1\n"));
	assert_null(strstr(r->text, "queue "));
	assert_non_null(strstr(r->text, "\nns 2\n"));
	r->len = 0;
	nvt_control_execute(f->tgt, "stats " ST_NQN " 3", strlen("stats " ST_NQN " 3"), collect, r);
	assert_string_equal(r->text, "error: " ST_NQN " has no namespace 3\n");
	r->len = 0;
	nvt_control_execute(f->tgt, "stats a b c", strlen("stats a b c"), collect, r);
	assert_string_equal(r->text, "error: usage: stats [NQN [NSID]]\n");
	r->len = 0;
	nvt_control_execute(f->tgt, "stats nqn.none", strlen("stats nqn.none"), collect, r);
	assert_string_equal(r->text, "error: no subsystem nqn.none\n");
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counters_and_smart_agree, setup, nvt_test_teardown),
	};

	nvt_log_set_level(NVT_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
