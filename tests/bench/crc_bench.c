/* SPDX-License-Identifier: BSD-3-Clause */
/* Prints hot-cache GB/s of every CRC-16/T10-DIF and CRC-64/NVMe path this CPU runs, plain and fused with a copy, against memcpy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvt/crc.h"

#define NVT_BENCH_NS	50000000ull	/* per timed run */
#define NVT_BENCH_REPS	10		/* best of: on a shared 2-core box most runs share a core */

static volatile uint64_t nvt_bench_sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t run_crc16(const uint8_t *buf, size_t len, unsigned int iters)
{
	uint64_t acc = 0;

	for (unsigned int i = 0; i < iters; i++)
		acc ^= nvt_crc16_t10dif(0, buf, len);
	return acc;
}

/* Destination of the copies: as large as the largest size. */
static uint8_t *copy_dst;

static uint64_t run_memcpy(const uint8_t *buf, size_t len, unsigned int iters)
{
	for (unsigned int i = 0; i < iters; i++) {
		memcpy(copy_dst, buf, len);
		__asm__ volatile("" : : "r"(copy_dst) : "memory");
	}
	return copy_dst[len - 1];
}

static uint64_t run_crc16_copy(const uint8_t *buf, size_t len, unsigned int iters)
{
	uint64_t acc = 0;

	for (unsigned int i = 0; i < iters; i++)
		acc ^= nvt_crc16_t10dif_copy(0, copy_dst, buf, len);
	return acc;
}

static uint64_t run_crc64_copy(const uint8_t *buf, size_t len, unsigned int iters)
{
	uint64_t acc = 0;

	for (unsigned int i = 0; i < iters; i++)
		acc ^= nvt_crc64_nvme_copy(0, copy_dst, buf, len);
	return acc;
}

static uint64_t run_crc64(const uint8_t *buf, size_t len, unsigned int iters)
{
	uint64_t acc = 0;

	/* Independent calls, like one guard per logical block. */
	for (unsigned int i = 0; i < iters; i++)
		acc ^= nvt_crc64_nvme(0, buf, len);
	return acc;
}

/* Best GB/s (10^9 bytes/s) of NVT_BENCH_REPS timed runs of about NVT_BENCH_NS each. */
static double measure(uint64_t (*run)(const uint8_t *, size_t, unsigned int),
		      const uint8_t *buf, size_t len)
{
	unsigned int iters = 16;
	double best = 0;
	uint64_t t0, dt;

	/* Warm caches and size the batch so one timed run lasts about NVT_BENCH_NS. */
	for (;;) {
		t0 = now_ns();
		nvt_bench_sink ^= run(buf, len, iters);
		dt = now_ns() - t0;
		if (dt >= NVT_BENCH_NS / 8)
			break;
		iters *= 2;
	}
	iters = (unsigned int)((double)iters * NVT_BENCH_NS / (double)dt) + 1;

	for (int rep = 0; rep < NVT_BENCH_REPS; rep++) {
		double gbs;

		t0 = now_ns();
		nvt_bench_sink ^= run(buf, len, iters);
		dt = now_ns() - t0;
		gbs = (double)len * iters / (double)dt;
		if (gbs > best)
			best = gbs;
	}
	return best;
}

int main(void)
{
	static const size_t sizes[] = { 4096, 65536 };
	const char *best;
	uint8_t *buf;

	buf = aligned_alloc(64, 65536);
	if (!buf)
		return 1;
	srand(1);
	for (size_t i = 0; i < 65536; i++)
		buf[i] = (uint8_t)rand();

	copy_dst = aligned_alloc(64, 65536);
	if (!copy_dst)
		return 1;
	best = nvt_crc64_impl_name();
	printf("crc64 default impl: %s; crc16 default impl: %s\n", best, nvt_crc16_impl_name());
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		printf("memcpy %zuB: %.1f GB/s\n", sizes[s], measure(run_memcpy, buf, sizes[s]));

	for (size_t i = 0; i < 2; i++) {
		static const char *const crc16_names[] = { "isa-l", "vpclmul512" };

		if (nvt_crc16_force_impl(crc16_names[i])) {
			printf("crc16 %s: not supported on this CPU\n", crc16_names[i]);
			continue;
		}
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			printf("crc16 %s %zuB: %.1f GB/s, fused with a copy %.1f GB/s\n", crc16_names[i],
			       sizes[s], measure(run_crc16, buf, sizes[s]),
			       measure(run_crc16_copy, buf, sizes[s]));
	}
	nvt_crc16_force_impl(NULL);

	for (const char *const *name = nvt_crc64_impl_names(); *name; name++) {
		if (nvt_crc64_force_impl(*name)) {
			printf("crc64 %s: not supported on this CPU\n", *name);
			continue;
		}
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			printf("crc64 %s %zuB: %.1f GB/s, with a copy %.1f GB/s\n", *name, sizes[s],
			       measure(run_crc64, buf, sizes[s]), measure(run_crc64_copy, buf, sizes[s]));
	}
	nvt_crc64_force_impl(NULL);
	free(copy_dst);
	free(buf);
	return 0;
}
