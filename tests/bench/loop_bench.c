/* SPDX-License-Identifier: BSD-3-Clause */
/* Loop transport on one core: 4K random read and write IOPS per core of the ram backend with PI off and in each PI mode (ratios to PI off and to the bare copy(+CRC) ceiling), and of the file backend on tmpfs against fio on the same file (ratio per core). */
#include <inttypes.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <endian.h>

#include "nvt/crc.h"
#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"
#include "nvt/pi.h"
#include "nvt/stats.h"

#define BENCH_NQN	"nqn.2026-11.io.nvt:bench"
#define BENCH_HOST	"nqn.2014-08.org.nvmexpress:uuid:bench"
#define BENCH_LBAS	4096u		/* 16 MiB of 4 KiB blocks: PI buffers for each fit in memory */
#define BENCH_DEPTH	32
#define PRCHK_ALL	(NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG | NVT_PI_CHECK_REFTAG)
#define BENCH_ROUNDS	8		/* each number is the best of this many rounds over all rows */
#define BENCH_AIM_IOPS	2e6		/* issue 12: PI off, per core */

/* nsid 1: no PI; 2: 4096+8 Type 1 (16-bit guard); 3: 4096+16 Type 1 (64-bit guard). */
static const struct bench_mode {
	const char *name;
	uint32_t nsid;
	uint8_t prinfo;
} modes[] = {
	{ "PI off", 1, 0 },
	{ "Type 1 PRACT=1 (insert/strip)", 2, NVT_PI_PRACT | PRCHK_ALL },
	{ "Type 1 PRACT=0, all checks", 2, PRCHK_ALL },
	{ "Type 1 64-bit guard PRACT=1", 3, NVT_PI_PRACT | PRCHK_ALL },
	{ "Type 1 64-bit guard PRACT=0", 3, PRCHK_ALL },
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned int failures;

static void bench_done(void *arg, const struct nvt_cqe *cqe)
{
	if (cqe->status)
		failures++;
}

/* CPU seconds this thread has run: a neighbour taking the core costs us nothing here. */
static double thread_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The host's buffers: one per slot in flight, 4 KiB (+ metadata), reused, so hot in cache in every mode. */
static uint8_t bench_slot[BENCH_DEPTH][4096 + 16] __attribute__((aligned(64)));

/*
 * Extended-LBA writes (PRACT=0): each slot holds a block with valid PI for
 * LBA 0; per command the host sets the ref tag to the LBA it targets (the
 * guard does not cover it), so the data is as hot as with PI off.
 */
static void bench_set_reftag(uint8_t *tuple, bool crc64, uint64_t lba)
{
	if (crc64) {
		uint64_t be = htobe64(lba << 16);	/* 48 bits, big-endian */

		memcpy(tuple + offsetof(struct nvt_pi64, reftag), &be, 6);
	} else {
		uint32_t be = htobe32((uint32_t)lba);

		memcpy(tuple + offsetof(struct nvt_pi16, reftag), &be, 4);
	}
}

static inline uint64_t bench_rnd(uint64_t *rnd)
{
	*rnd ^= *rnd << 13;
	*rnd ^= *rnd >> 7;
	*rnd ^= *rnd << 17;
	return *rnd % BENCH_LBAS;
}

/*
 * Keep BENCH_DEPTH commands in flight for @secs; ram completes inline, so
 * this measures the CPU cost of the core path. Return: commands per second
 * of this thread's CPU time.
 */
static double bench_run(struct nvt_loop_queue *q, const struct bench_mode *m, uint8_t opcode,
			const struct nvt_ns *n, size_t blk, double secs)
{
	static uint64_t rnd = 88172645463325252ull, done;
	bool ext_write = opcode == nvme_cmd_write && blk > 4096;
	double best = 0;
	struct nvt_sqe sqe;

	{
		uint64_t ops = 0, end = now_ns() + (uint64_t)(secs * 1e9);
		double cpu0 = thread_secs(), cpu;

		while (now_ns() < end) {
			for (int batch = 0; batch < 1024; batch++, done++, ops++) {
				uint64_t lba = bench_rnd(&rnd);
				uint8_t *buf = bench_slot[done % BENCH_DEPTH];
				struct iovec iov = { buf, blk };

				nvt_host_sqe_rw(&sqe, opcode, m->nsid, lba, 1);
				sqe.rw.control = htole16((uint16_t)m->prinfo << 10);
				sqe.rw.reftag = htole32((uint32_t)lba);
				sqe.rw.appmask = 0;
				if (ext_write)
					bench_set_reftag(buf + 4096, n->pi.guard == NVT_PI_GUARD_CRC64, lba);
				if (nvt_loop_submit(q, &sqe, &iov, 1, bench_done, NULL))
					abort();
			}
		}
		cpu = thread_secs() - cpu0;
		if (cpu > 0 && ops / cpu > best)
			best = ops / cpu;
	}
	return best;
}

/* What the ceiling rows do per command besides the random LBA: none, CRC-16 or CRC-64. */
enum bench_ceil { CEIL_MEMCPY, CEIL_CRC16, CEIL_CRC64 };

static volatile uint64_t bench_sink;

/*
 * The ceiling: the same loop shape (random LBA over the same 16 MiB, the
 * same hot slots) doing only what a command must do to the bytes: copy
 * 4 KiB between a slot and the store, with the guard fused into the copy
 * where nvtd fuses it. Return: copies per CPU second.
 */
static double bench_ceiling(uint8_t *store, enum bench_ceil what, bool write, double secs)
{
	static uint64_t rnd = 88172645463325252ull, done;
	uint64_t acc = 0;
	double best = 0;

	{
		uint64_t ops = 0, end = now_ns() + (uint64_t)(secs * 1e9);
		double cpu0 = thread_secs(), cpu;

		while (now_ns() < end) {
			for (int batch = 0; batch < 1024; batch++, done++, ops++) {
				uint8_t *blk = store + bench_rnd(&rnd) * 4096;
				uint8_t *slot = bench_slot[done % BENCH_DEPTH];
				uint8_t *dst = write ? blk : slot;
				const uint8_t *src = write ? slot : blk;

				if (what == CEIL_MEMCPY)
					memcpy(dst, src, 4096);
				else if (what == CEIL_CRC16)
					acc += nvt_crc16_t10dif_copy(0, dst, src, 4096);
				else
					acc += nvt_crc64_nvme_copy(0, dst, src, 4096);
				__asm__ volatile("" : : "r"(dst) : "memory");
			}
		}
		cpu = thread_secs() - cpu0;
		if (cpu > 0 && ops / cpu > best)
			best = ops / cpu;
	}
	bench_sink += acc;
	return best;
}

/* CPU seconds (user + system) this process has used. */
static double cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static unsigned int outstanding;

static void bench_async_done(void *arg, const struct nvt_cqe *cqe)
{
	outstanding--;
	if (cqe->status)
		failures++;
}

/*
 * An asynchronous backend: BENCH_DEPTH commands kept in flight, the queue's
 * poll group driven in between. Return: IOPS; *per_core: IOPS per CPU second.
 */
static double bench_async(struct nvt_loop_queue *q, uint32_t nsid, uint8_t opcode, double secs,
			  double *per_core)
{
	static uint8_t buf[BENCH_DEPTH][4096] __attribute__((aligned(4096)));
	uint64_t done = 0, start = now_ns(), end = start + (uint64_t)(secs * 1e9);
	uint64_t rnd = 88172645463325252ull;
	double cpu0 = cpu_secs(), wall;
	struct nvt_sqe sqe;

	while (now_ns() < end) {
		/* Bounded: a backend completing in place never lets outstanding reach the depth. */
		for (int batch = 0; batch < 1024 && outstanding < BENCH_DEPTH; batch++) {
			struct iovec iov = { buf[done % BENCH_DEPTH], 4096 };

			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			nvt_host_sqe_rw(&sqe, opcode, nsid, rnd % BENCH_LBAS, 1);
			outstanding++;
			if (nvt_loop_submit(q, &sqe, &iov, 1, bench_async_done, NULL))
				abort();
			done++;
		}
		if (outstanding)
			nvt_loop_queue_poll(q, 1000);
	}
	while (outstanding)
		nvt_loop_queue_poll(q, 1000);
	wall = (double)(now_ns() - start) / 1e9;
	*per_core = (double)done / (cpu_secs() - cpu0);
	return (double)done / wall;
}

/*
 * fio on the same file, the same way (io_uring, O_DIRECT, 4 KiB random,
 * QD32, one job): its IOPS and IOPS per CPU second. Return: false if fio is
 * not there or said nothing we understand.
 */
static bool fio_run(const char *path, const char *rw, double secs, double *iops, double *per_core)
{
	char cmd[512], line[8192];
	double usr = 0, sys = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "fio --name=b --filename=%s --ioengine=io_uring --direct=1 --rw=%s --bs=4k "
		 "--iodepth=%d --numjobs=1 --size=%u --time_based --runtime=%.0f "
		 "--output-format=terse --terse-version=3 2>/dev/null",
		 path, rw, BENCH_DEPTH, BENCH_LBAS * 4096u, secs < 1 ? 1 : secs);
	f = popen(cmd, "r");
	if (!f)
		return false;
	*iops = 0;
	while (fgets(line, sizeof(line), f)) {
		/* Terse v3: field 8 read IOPS, 49 write IOPS, 88 usr%, 89 sys%. */
		char *save = NULL, *tok = strtok_r(line, ";", &save);

		for (int i = 1; tok; i++, tok = strtok_r(NULL, ";", &save)) {
			if ((i == 8 || i == 49) && atof(tok) > 0)
				*iops = atof(tok);
			else if (i == 88)
				usr = atof(tok);
			else if (i == 89)
				sys = atof(tok);
		}
	}
	pclose(f);
	if (*iops <= 0 || usr + sys <= 0)
		return false;
	*per_core = *iops / ((usr + sys) / 100.0);
	return true;
}

/* The file backend on tmpfs, next to ram, with fio on the same file as the ceiling. */
static int bench_file(double secs)
{
	char dir[] = "/dev/shm/nvt-bench-XXXXXX", path[64];
	struct nvt_ns_cfg ns[2];
	struct nvt_subsys_cfg subsys = { .nqn = BENCH_NQN, .allow_any_host = true,
					  .serial = "BENCH", .model = "nvt bench",
					  .namespaces = ns, .nr_namespaces = 2 };
	struct nvt_config cfg = { .subsystems = &subsys, .nr_subsystems = 1 };
	static const struct { const char *name; uint8_t opcode; const char *fio; } ops[] = {
		{ "write", nvme_cmd_write, "randwrite" }, { "read", nvme_cmd_read, "randread" },
	};
	struct nvt_loop_ctrl ctrl;
	struct nvt_target *tgt;
	int ret = 0;

	if (!mkdtemp(dir)) {
		printf("file backend: no /dev/shm, skipped\n");
		return 0;
	}
	snprintf(path, sizeof(path), "%s/data", dir);
	memset(ns, 0, sizeof(ns));
	for (int i = 0; i < 2; i++) {
		ns[i].nsid = (uint32_t)i + 1;
		strcpy(ns[i].backend, i ? "file" : "ram");
		ns[i].size = (uint64_t)BENCH_LBAS * 4096;
		ns[i].block_size = 4096;
		ns[i].uuid[0] = ns[i].nguid[0] = (uint8_t)(i + 1);
		strcpy(ns[i].pi.guard, "crc16");
		strcpy(ns[i].pi.location, "last");
	}
	ns[1].settings[0] = (struct nvt_ns_setting){ .name = "path", .str = path, .set = true };
	ns[1].nr_settings = 1;
	if (nvt_target_create(&cfg, &tgt) ||
	    nvt_loop_ctrl_connect(tgt, BENCH_NQN, BENCH_HOST, 1, BENCH_DEPTH + 1, 0, &ctrl)) {
		fprintf(stderr, "loop_bench: file backend setup failed\n");
		rmdir(dir);
		return 1;
	}
	printf("\nfile backend on tmpfs (%s), 4 KiB random I/O over %u blocks, QD%d, 1 thread, %.1f s each\n",
	       path, BENCH_LBAS, BENCH_DEPTH, secs);
	printf("%-8s %12s %14s %12s %14s %12s %14s %9s\n", "", "ram IOPS", "ram IOPS/core",
	       "file IOPS", "file IOPS/core", "fio IOPS", "fio IOPS/core", "file/fio");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		double ram, ram_core, file, file_core, fio = 0, fio_core = 0;
		bool have_fio;

		/* Every block written once first, so reads read real blocks. */
		bench_async(ctrl.io[0], 2, nvme_cmd_write, secs / 4, &file_core);
		ram = bench_async(ctrl.io[0], 1, ops[i].opcode, secs, &ram_core);
		file = bench_async(ctrl.io[0], 2, ops[i].opcode, secs, &file_core);
		have_fio = fio_run(path, ops[i].fio, secs, &fio, &fio_core);
		if (have_fio)
			printf("%-8s %12.0f %14.0f %12.0f %14.0f %12.0f %14.0f %8.2fx\n", ops[i].name,
			       ram, ram_core, file, file_core, fio, fio_core, file_core / fio_core);
		else
			printf("%-8s %12.0f %14.0f %12.0f %14.0f %12s %14s %9s\n", ops[i].name, ram,
			       ram_core, file, file_core, "-", "-", "no fio");
	}
	nvt_loop_ctrl_disconnect(&ctrl);
	nvt_target_destroy(tgt);
	unlink(path);
	rmdir(dir);
	return ret;
}

/*
 * The slots for mode @m on @n: extended-LBA writes (PRACT=0) need blocks
 * with valid PI in the slots (ref tags are set per command). Return: the
 * transfer length per command.
 */
static size_t bench_prep(const struct nvt_ns *n, const struct bench_mode *m)
{
	bool ext = n->md_size && !(m->prinfo & NVT_PI_PRACT);
	size_t blk = 4096 + (ext ? n->md_size : 0);
	struct nvt_pi_ctx ctx;
	struct iovec iov;

	if (!ext)
		return blk;
	for (int k = 0; k < BENCH_DEPTH; k++) {
		memset(bench_slot[k], 0x5a + k, sizeof(bench_slot[k]));
		iov = (struct iovec){ bench_slot[k], blk };
		nvt_pi_ctx_init(&ctx, &n->pi, 0, PRCHK_ALL, 0, 0, 0);
		nvt_pi_generate_ext(&ctx, &iov, 1, 1);
	}
	return blk;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	/* "loop_bench SECS file": the file backend part only (for profiling it). */
	bool file_only = argc > 2 && !strcmp(argv[2], "file");
	/* "loop_bench SECS N": ram mode N only, no ceilings, no file backend (for perf). */
	int only = argc > 2 && !file_only ? atoi(argv[2]) : -1;
	static const struct { uint8_t type; const char *guard; uint16_t ms; } fmt[] = {
		{ 0, "crc16", 0 }, { 1, "crc16", 8 }, { 1, "crc64", 16 },
	};
	struct nvt_ns_cfg ns[3];
	struct nvt_subsys_cfg subsys = { .nqn = BENCH_NQN, .allow_any_host = true,
					  .serial = "BENCH", .model = "nvt bench",
					  .namespaces = ns, .nr_namespaces = 3 };
	struct nvt_config cfg = { .subsystems = &subsys, .nr_subsystems = 1 };
	struct nvt_subsys *s;
	static const char *const lim_names[] = {
		"ceiling: memcpy", "ceiling: memcpy+CRC16 (fused)", "ceiling: memcpy+CRC64 (fused)",
	};
	struct nvt_loop_ctrl ctrl;
	struct nvt_target *tgt;
	double base[2] = { 0, 0 }, lim[3][2], res[sizeof(modes) / sizeof(modes[0])][2];
	double nostat[2] = { 0, 0 };	/* PI off with statistics off: what counting costs */
	size_t nmodes;
	uint8_t *store;

	memset(ns, 0, sizeof(ns));
	for (int i = 0; i < 3; i++) {
		ns[i].nsid = (uint32_t)i + 1;
		strcpy(ns[i].backend, "ram");
		ns[i].size = (uint64_t)BENCH_LBAS * 4096;
		ns[i].block_size = 4096;
		ns[i].uuid[0] = ns[i].nguid[0] = (uint8_t)(i + 1);
		ns[i].pi.type = fmt[i].type;
		strcpy(ns[i].pi.guard, fmt[i].guard);
		strcpy(ns[i].pi.location, "last");
		ns[i].pi.metadata_size = fmt[i].ms;
	}
	nvt_log_set_level(NVT_LOG_ERR);
	if (file_only)
		return bench_file(secs) || failures;
	if (nvt_target_create(&cfg, &tgt) ||
	    nvt_loop_ctrl_connect(tgt, BENCH_NQN, BENCH_HOST, 1, BENCH_DEPTH, 0, &ctrl)) {
		fprintf(stderr, "loop_bench: setup failed\n");
		return 1;
	}
	s = nvt_target_find_subsys(tgt, BENCH_NQN);
	store = aligned_alloc(4096, (size_t)BENCH_LBAS * 4096);
	if (!store)
		return 1;
	memset(store, 0x5a, (size_t)BENCH_LBAS * 4096);
	nmodes = sizeof(modes) / sizeof(modes[0]);
	memset(lim, 0, sizeof(lim));
	memset(res, 0, sizeof(res));
	/* Write every block of every namespace once, so reads check real PI. */
	for (size_t i = 0; i < nmodes; i++)
		if (only < 0 || (size_t)only == i)
			bench_run(ctrl.io[0], &modes[i], nvme_cmd_write, s->ns[modes[i].nsid],
				  bench_prep(s->ns[modes[i].nsid], &modes[i]), secs / 4);
	/*
	 * Rounds over every row, best of each: the rows share whatever else
	 * runs on this box at the time, and a row's best round is the one
	 * that had the core most to itself.
	 */
	for (int round = 0; round < BENCH_ROUNDS; round++) {
		double t = secs / BENCH_ROUNDS;

		for (int c = 0; c < 3 && only < 0; c++)
			for (int dir = 0; dir < 2; dir++) {
				double v = bench_ceiling(store, (enum bench_ceil)c, !dir, t / 2);

				lim[c][dir] = v > lim[c][dir] ? v : lim[c][dir];
			}
		for (size_t i = 0; i < nmodes; i++) {
			const struct nvt_ns *n = s->ns[modes[i].nsid];
			size_t blk;
			double v;

			if (only >= 0 && (size_t)only != i)
				continue;
			blk = bench_prep(n, &modes[i]);
			v = bench_run(ctrl.io[0], &modes[i], nvme_cmd_write, n, blk, t);
			res[i][0] = v > res[i][0] ? v : res[i][0];
			v = bench_run(ctrl.io[0], &modes[i], nvme_cmd_read, n, blk, t);
			res[i][1] = v > res[i][1] ? v : res[i][1];
			if (i)
				continue;
			/* Right after the same row with counting on, so both see the same box. */
			atomic_store(&nvt_stats_enabled, false);
			v = bench_run(ctrl.io[0], &modes[0], nvme_cmd_write, n, blk, t);
			nostat[0] = v > nostat[0] ? v : nostat[0];
			v = bench_run(ctrl.io[0], &modes[0], nvme_cmd_read, n, blk, t);
			nostat[1] = v > nostat[1] ? v : nostat[1];
			atomic_store(&nvt_stats_enabled, true);
		}
	}
	free(store);
	for (int c = 0; c < 3; c++)
		for (int dir = 0; dir < 2; dir++)
			lim[c][dir] = lim[c][dir] ? lim[c][dir] : 1;
	for (size_t i = 0; i < nmodes; i++)
		for (int dir = 0; dir < 2; dir++)
			res[i][dir] = res[i][dir] ? res[i][dir] : 1;
	base[0] = res[0][0];
	base[1] = res[0][1];
	printf("loop transport + ram backend (completes in place), 4 KiB random I/O over %u blocks, QD%d, 1 core, %.1f s each\n",
	       BENCH_LBAS, BENCH_DEPTH, secs);
	printf("IOPS per CPU second of the thread, best of %d rounds over all rows; crc16 %s, crc64 %s\n",
	       BENCH_ROUNDS, nvt_crc16_impl_name(), nvt_crc64_impl_name());
	printf("ceiling = the same loop doing only the 4 KiB copy between a hot slot and the store (+ the fused guard)\n");
	printf("%-32s %10s %6s %6s %6s %10s %6s %6s %6s\n", "mode", "write/core", "ns/IO", "x off",
	       "x ceil", "read/core", "ns/IO", "x off", "x ceil");
	for (int c = 0; c < 3; c++)
		printf("%-32s %10.0f %6.0f %6s %6s %10.0f %6.0f\n", lim_names[c], lim[c][0],
		       1e9 / lim[c][0], "", "", lim[c][1], 1e9 / lim[c][1]);
	for (size_t i = 0; i < nmodes; i++) {
		const struct nvt_ns *n = s->ns[modes[i].nsid];
		int c = !n->pi.type ? CEIL_MEMCPY : n->pi.guard == NVT_PI_GUARD_CRC64 ? CEIL_CRC64 : CEIL_CRC16;
		double w = res[i][0], r = res[i][1];

		printf("%-32s %10.0f %6.0f %5.2fx %5.2fx %10.0f %6.0f %5.2fx %5.2fx\n", modes[i].name, w,
		       1e9 / w, w / base[0], w / lim[c][0], r, 1e9 / r, r / base[1], r / lim[c][1]);
	}
	printf("PI off per core: %.2fM write / %.2fM read IOPS against the aim of %.0fM: %s\n",
	       base[0] / 1e6, base[1] / 1e6, BENCH_AIM_IOPS / 1e6,
	       base[0] >= BENCH_AIM_IOPS && base[1] >= BENCH_AIM_IOPS ? "met" : "missed");
	if (nostat[0] && nostat[1])
		printf("statistics (counters in 2 sets per I/O, poll group clock): PI off %.0f write / %.0f read IOPS/core with, %.0f / %.0f without: %.1f%% / %.1f%% cost\n",
		       base[0], base[1], nostat[0], nostat[1], 100.0 * (1 - base[0] / nostat[0]),
		       100.0 * (1 - base[1] / nostat[1]));
	/* Where each command's time goes: the bytes (the ceiling), the core path (PI off minus memcpy), the PI walk's own. */
	printf("ns per I/O, write / read: copy(+guard) | core path | PI walk beyond both\n");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const struct nvt_ns *n = s->ns[modes[i].nsid];
		int c = !n->pi.type ? CEIL_MEMCPY : n->pi.guard == NVT_PI_GUARD_CRC64 ? CEIL_CRC64 : CEIL_CRC16;
		double cw = 1e9 / lim[c][0], cr = 1e9 / lim[c][1];
		double pw = 1e9 / base[0] - 1e9 / lim[0][0], pr = 1e9 / base[1] - 1e9 / lim[0][1];

		printf("%-32s %5.0f %5.0f %5.0f   / %5.0f %5.0f %5.0f\n", modes[i].name, cw, pw,
		       1e9 / res[i][0] - cw - pw, cr, pr, 1e9 / res[i][1] - cr - pr);
	}
	nvt_loop_ctrl_disconnect(&ctrl);
	nvt_target_destroy(tgt);
	if (only < 0 && bench_file(secs))
		return 1;
	if (failures) {
		fprintf(stderr, "loop_bench: %u commands failed\n", failures);
		return 1;
	}
	return 0;
}
