/* SPDX-License-Identifier: BSD-3-Clause */
/* Loop transport on one core: 4K random read and write IOPS of the ram backend with PI off and in each PI mode (ratio to PI off), and of the file backend on tmpfs against fio on the same file (ratio per core). */
#include <inttypes.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"
#include "nvt/pi.h"

#define BENCH_NQN	"nqn.2026-11.io.nvt:bench"
#define BENCH_HOST	"nqn.2014-08.org.nvmexpress:uuid:bench"
#define BENCH_LBAS	4096u		/* 16 MiB of 4 KiB blocks: PI buffers for each fit in memory */
#define BENCH_DEPTH	32
#define PRCHK_ALL	(NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG | NVT_PI_CHECK_REFTAG)

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

/*
 * Keep BENCH_DEPTH commands in flight for @secs; ram completes inline, so
 * this measures the CPU cost of the core path. Extended-LBA writes come from
 * @ext, prepared with correct PI per LBA (the host's work, not timed).
 */
static double bench_run(struct nvt_loop_queue *q, const struct bench_mode *m, uint8_t opcode,
			uint8_t *ext, size_t blk, double secs)
{
	static uint8_t rbuf[BENCH_DEPTH][4096 + 16];
	uint64_t done = 0, start = now_ns(), end = start + (uint64_t)(secs * 1e9);
	uint64_t rnd = 88172645463325252ull;
	struct nvt_sqe sqe;

	while (now_ns() < end) {
		for (int batch = 0; batch < 1024; batch++, done++) {
			uint64_t lba;
			struct iovec iov;

			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			lba = rnd % BENCH_LBAS;
			nvt_host_sqe_rw(&sqe, opcode, m->nsid, lba, 1);
			sqe.rw.control = htole16((uint16_t)m->prinfo << 10);
			sqe.rw.reftag = htole32((uint32_t)lba);
			sqe.rw.appmask = 0;
			iov.iov_base = opcode == nvme_cmd_write && ext ? ext + lba * blk :
								  rbuf[done % BENCH_DEPTH];
			iov.iov_len = blk;
			if (nvt_loop_submit(q, &sqe, &iov, 1, bench_done, NULL))
				abort();
		}
	}
	return (double)done / ((double)(now_ns() - start) / 1e9);
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

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	/* "loop_bench SECS file": the file backend part only (for profiling it). */
	bool file_only = argc > 2 && !strcmp(argv[2], "file");
	static const struct { uint8_t type; const char *guard; uint16_t ms; } fmt[] = {
		{ 0, "crc16", 0 }, { 1, "crc16", 8 }, { 1, "crc64", 16 },
	};
	struct nvt_ns_cfg ns[3];
	struct nvt_subsys_cfg subsys = { .nqn = BENCH_NQN, .allow_any_host = true,
					  .serial = "BENCH", .model = "nvt bench",
					  .namespaces = ns, .nr_namespaces = 3 };
	struct nvt_config cfg = { .subsystems = &subsys, .nr_subsystems = 1 };
	struct nvt_subsys *s;
	struct nvt_loop_ctrl ctrl;
	struct nvt_target *tgt;
	double base[2] = { 0, 0 };

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
	printf("loop transport + ram backend (completes in place), 4 KiB random I/O over %u blocks, QD%d, 1 core, %.1f s each\n",
	       BENCH_LBAS, BENCH_DEPTH, secs);
	printf("%-32s %10s %8s %10s %8s\n", "mode", "write IOPS", "ns/IO", "read IOPS", "ns/IO");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const struct bench_mode *m = &modes[i];
		const struct nvt_ns *n = s->ns[m->nsid];
		bool ext = n->md_size && !(m->prinfo & NVT_PI_PRACT);
		size_t blk = 4096 + (ext ? n->md_size : 0);
		uint8_t *wbuf = NULL;
		double w, r;

		if (ext) {
			struct nvt_pi_ctx ctx;
			struct iovec iov;

			wbuf = malloc((size_t)BENCH_LBAS * blk);
			memset(wbuf, 0x5a, (size_t)BENCH_LBAS * blk);
			for (uint64_t lba = 0; lba < BENCH_LBAS; lba++) {
				iov = (struct iovec){ wbuf + lba * blk, blk };
				nvt_pi_ctx_init(&ctx, &n->pi, lba, PRCHK_ALL, lba, 0, 0);
				nvt_pi_generate_ext(&ctx, &iov, 1, 1);
			}
		}
		/* Warm up (and write every block once, so reads check real PI). */
		bench_run(ctrl.io[0], m, nvme_cmd_write, wbuf, blk, secs / 4);
		w = bench_run(ctrl.io[0], m, nvme_cmd_write, wbuf, blk, secs);
		r = bench_run(ctrl.io[0], m, nvme_cmd_read, NULL, blk, secs);
		if (i == 0) {
			base[0] = w;
			base[1] = r;
		}
		printf("%-32s %10.0f %8.0f %10.0f %8.0f   (%.2fx / %.2fx of PI off)\n", m->name,
		       w, 1e9 / w, r, 1e9 / r, w / base[0], r / base[1]);
		free(wbuf);
	}
	nvt_loop_ctrl_disconnect(&ctrl);
	nvt_target_destroy(tgt);
	if (bench_file(secs))
		return 1;
	if (failures) {
		fprintf(stderr, "loop_bench: %u commands failed\n", failures);
		return 1;
	}
	return 0;
}
