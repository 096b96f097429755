/* SPDX-License-Identifier: BSD-3-Clause */
/* Loop transport + ram backend, one core: 4K random read and write IOPS and ns per I/O through the whole core path. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"

#define BENCH_NQN	"nqn.2026-11.io.nvt:bench"
#define BENCH_HOST	"nqn.2014-08.org.nvmexpress:uuid:bench"
#define BENCH_SIZE	(256ull << 20)
#define BENCH_DEPTH	32

struct bench_io {
	uint8_t buf[4096];
	struct iovec iov;
	struct nvt_sqe sqe;
	bool busy;
	unsigned int failures;
};

static void bench_done(void *arg, const struct nvt_cqe *cqe)
{
	struct bench_io *io = arg;

	io->busy = false;
	if (cqe->status)
		io->failures++;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Keep BENCH_DEPTH commands in flight for @secs; ram completes inline, so this is CPU cost. */
static double bench_run(struct nvt_loop_queue *q, uint8_t opcode, double secs, unsigned int *fail)
{
	static struct bench_io ios[BENCH_DEPTH];
	uint64_t nblocks = BENCH_SIZE / 4096, done = 0, start, end, rnd = 88172645463325252ull;

	start = now_ns();
	end = start + (uint64_t)(secs * 1e9);
	while (now_ns() < end) {
		for (int batch = 0; batch < 1024; batch++) {
			struct bench_io *io = &ios[done % BENCH_DEPTH];

			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			nvt_host_sqe_rw(&io->sqe, opcode, 1, rnd % nblocks, 1);
			io->iov.iov_base = io->buf;
			io->iov.iov_len = sizeof(io->buf);
			io->busy = true;
			if (nvt_loop_submit(q, &io->sqe, &io->iov, 1, bench_done, io))
				abort();
			done++;
		}
	}
	for (int i = 0; i < BENCH_DEPTH; i++)
		*fail += ios[i].failures;
	return (double)done / ((double)(now_ns() - start) / 1e9);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	struct nvt_subsys_cfg subsys = { .nqn = BENCH_NQN, .allow_any_host = true,
					  .serial = "BENCH", .model = "nvt bench" };
	struct nvt_ns_cfg ns = { .nsid = 1, .backend = "ram", .size = BENCH_SIZE,
				 .block_size = 4096 };
	struct nvt_config cfg = { .subsystems = &subsys, .nr_subsystems = 1 };
	struct nvt_loop_ctrl ctrl;
	struct nvt_target *tgt;
	unsigned int fail = 0;
	double read_iops, write_iops;

	subsys.namespaces = &ns;
	subsys.nr_namespaces = 1;
	nvt_log_set_level(NVT_LOG_ERR);
	if (nvt_target_create(&cfg, &tgt) ||
	    nvt_loop_ctrl_connect(tgt, BENCH_NQN, BENCH_HOST, 1, BENCH_DEPTH, 0, &ctrl)) {
		fprintf(stderr, "loop_bench: setup failed\n");
		return 1;
	}
	/* Touch every block once so page faults stay out of the measurement. */
	bench_run(ctrl.io[0], nvme_cmd_write, secs / 2, &fail);
	write_iops = bench_run(ctrl.io[0], nvme_cmd_write, secs, &fail);
	read_iops = bench_run(ctrl.io[0], nvme_cmd_read, secs, &fail);
	printf("loop+ram 4K randwrite, 1 core, QD%d: %.0f IOPS, %.0f ns/IO\n", BENCH_DEPTH,
	       write_iops, 1e9 / write_iops);
	printf("loop+ram 4K randread,  1 core, QD%d: %.0f IOPS, %.0f ns/IO\n", BENCH_DEPTH,
	       read_iops, 1e9 / read_iops);
	nvt_loop_ctrl_disconnect(&ctrl);
	nvt_target_destroy(tgt);
	if (fail) {
		fprintf(stderr, "loop_bench: %u commands failed\n", fail);
		return 1;
	}
	return 0;
}
