/* SPDX-License-Identifier: BSD-3-Clause */
/* Prints ns per 4 KiB block and GB/s of PI generate and verify (crc16/crc64, contiguous and split iovecs), fused with a split or followed by one, against the bare CRC. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvt/crc.h"
#include "nvt/pi.h"

#define NVT_BENCH_NS	50000000ull	/* per timed run */
#define NVT_BENCH_REPS	10		/* best of: on a shared box most runs share a core */
#define NVT_BENCH_BS	4096
#define NVT_BENCH_NLB	32		/* 128 KiB per call, about one MDTS */
#define NVT_BENCH_DATA_PIECE	1500	/* split case: every block straddles elements */
#define NVT_BENCH_MD_PIECE	5	/* split case: most tuples straddle elements */
#define NVT_BENCH_MAX_IOV	1024

static volatile uint64_t nvt_bench_sink;

/* One configuration under test; run() does one call over NVT_BENCH_NLB blocks. */
struct bench {
	struct nvt_pi_format fmt;
	struct nvt_pi_ctx ctx;
	struct iovec data[NVT_BENCH_MAX_IOV], md[NVT_BENCH_MAX_IOV], ext[NVT_BENCH_MAX_IOV];
	struct iovec dst_data[NVT_BENCH_MAX_IOV];
	unsigned int data_cnt, md_cnt, ext_cnt, dst_data_cnt;
	struct iovec md_out;
	int (*run)(struct bench *b);
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Describe @len bytes at @buf as pieces of @piece bytes (0: one element). */
static unsigned int cut(struct iovec *iov, uint8_t *buf, size_t len, size_t piece)
{
	unsigned int cnt = 0;

	if (!piece)
		piece = len;
	for (size_t off = 0; off < len; off += piece) {
		iov[cnt].iov_base = buf + off;
		iov[cnt].iov_len = len - off < piece ? len - off : piece;
		cnt++;
	}
	return cnt;
}

static int run_generate(struct bench *b)
{
	return nvt_pi_generate(&b->ctx, b->data, b->data_cnt, b->md, b->md_cnt, NVT_BENCH_NLB);
}

static int run_verify(struct bench *b)
{
	struct nvt_pi_err err;

	return nvt_pi_verify(&b->ctx, b->data, b->data_cnt, b->md, b->md_cnt, NVT_BENCH_NLB, &err);
}

static int run_verify_split(struct bench *b)
{
	struct nvt_pi_err err;

	return nvt_pi_verify_split(&b->ctx, b->ext, b->ext_cnt, b->dst_data, b->dst_data_cnt,
				   &b->md_out, 1, NVT_BENCH_NLB, &err);
}

/* What a PRACT=0 write into a memory backend does (a failed write stores nothing): check, then split. */
static int run_verify_then_split(struct bench *b)
{
	struct nvt_pi_err err;
	int ret = nvt_pi_verify_ext(&b->ctx, b->ext, b->ext_cnt, NVT_BENCH_NLB, &err);

	return ret ? ret : nvt_pi_split(&b->fmt, b->ext, b->ext_cnt, b->dst_data, b->dst_data_cnt,
					&b->md_out, 1, NVT_BENCH_NLB);
}

/* Best ns per call of NVT_BENCH_REPS timed runs of about NVT_BENCH_NS each. */
static double measure(struct bench *b)
{
	unsigned int iters = 4;
	double best = 0;
	uint64_t t0, dt;

	/* Warm caches and size the batch so one timed run lasts about NVT_BENCH_NS. */
	for (;;) {
		t0 = now_ns();
		for (unsigned int i = 0; i < iters; i++)
			nvt_bench_sink += (uint64_t)b->run(b);
		dt = now_ns() - t0;
		if (dt >= NVT_BENCH_NS / 8)
			break;
		iters *= 2;
	}
	iters = (unsigned int)((double)iters * NVT_BENCH_NS / (double)dt) + 1;

	for (int rep = 0; rep < NVT_BENCH_REPS; rep++) {
		double ns;

		t0 = now_ns();
		for (unsigned int i = 0; i < iters; i++)
			nvt_bench_sink += (uint64_t)b->run(b);
		dt = now_ns() - t0;
		ns = (double)dt / iters;
		if (!best || ns < best)
			best = ns;
	}
	return best;
}

/* The floor: one bare CRC per 4 KiB block. */
static const uint8_t *crc_buf;
static enum nvt_pi_guard crc_guard;

static int run_crc(struct bench *b)
{
	uint64_t acc = 0;

	for (unsigned int i = 0; i < NVT_BENCH_NLB; i++) {
		const uint8_t *p = crc_buf + (size_t)i * NVT_BENCH_BS;

		acc ^= crc_guard == NVT_PI_GUARD_CRC16 ? nvt_crc16_t10dif(0, p, NVT_BENCH_BS) :
							  nvt_crc64_nvme(0, p, NVT_BENCH_BS);
	}
	return (int)(acc & 1);
}

static void report(const char *op, const char *guard, const char *layout, double ns_call,
		   double base)
{
	double ns_blk = ns_call / NVT_BENCH_NLB;

	printf("%-12s %-6s %-11s %8.1f %8.2f", op, guard, layout, ns_blk, NVT_BENCH_BS / ns_blk);
	if (base)
		printf("   %5.2fx", ns_blk / base);
	printf("\n");
}

int main(void)
{
	static const struct {
		const char *name;
		enum nvt_pi_guard guard;
	} guards[] = { { "crc16", NVT_PI_GUARD_CRC16 }, { "crc64", NVT_PI_GUARD_CRC64 } };
	size_t dlen = (size_t)NVT_BENCH_NLB * NVT_BENCH_BS;
	uint8_t *data, *md, *ext, *dst, *md_out;
	struct bench *b;

	data = aligned_alloc(64, dlen);
	dst = aligned_alloc(64, dlen);
	ext = aligned_alloc(64, dlen + NVT_BENCH_NLB * 16);
	md = aligned_alloc(64, NVT_BENCH_NLB * 16);
	md_out = aligned_alloc(64, NVT_BENCH_NLB * 16);
	b = calloc(1, sizeof(*b));
	if (!data || !dst || !ext || !md || !md_out || !b)
		return 1;
	srand(1);
	for (size_t i = 0; i < dlen; i++)
		data[i] = (uint8_t)rand();
	crc_buf = data;

	printf("%u x %u-byte blocks per call, PI-only metadata (PI last); crc64 impl %s\n",
	       NVT_BENCH_NLB, NVT_BENCH_BS, nvt_crc64_impl_name());
	printf("split: data in %u-byte, metadata in %u-byte elements; x = ns over the bare CRC\n",
	       NVT_BENCH_DATA_PIECE, NVT_BENCH_MD_PIECE);
	printf("%-12s %-6s %-11s %8s %8s   %s\n", "op", "guard", "iovecs", "ns/block", "GB/s",
	       "vs crc");

	for (unsigned int g = 0; g < 2; g++) {
		uint16_t ms = (uint16_t)nvt_pi_size(guards[g].guard);
		double base;

		b->fmt = (struct nvt_pi_format){
			.type = NVT_PI_TYPE1, .guard = guards[g].guard, .pi_first = false,
			.block_size = NVT_BENCH_BS, .md_size = ms,
		};
		if (nvt_pi_format_validate(&b->fmt))
			return 1;
		nvt_pi_ctx_init(&b->ctx, &b->fmt, 0, NVT_PI_CHECK_MASK, 0, 0, 0xffff);

		crc_guard = guards[g].guard;
		b->run = run_crc;
		base = measure(b) / NVT_BENCH_NLB;
		report("crc only", guards[g].name, "contiguous", base * NVT_BENCH_NLB, 0);

		for (int split = 0; split < 2; split++) {
			const char *layout = split ? "split" : "contiguous";
			size_t dp = split ? NVT_BENCH_DATA_PIECE : 0;
			size_t mp = split ? NVT_BENCH_MD_PIECE : 0;
			struct iovec whole;

			b->data_cnt = cut(b->data, data, dlen, dp);
			b->md_cnt = cut(b->md, md, (size_t)NVT_BENCH_NLB * ms, mp);

			b->run = run_generate;
			report("generate", guards[g].name, layout, measure(b), base);
			b->run = run_verify;
			if (b->run(b))
				return 1;	/* generate's output must verify */
			report("verify", guards[g].name, layout, measure(b), base);

			/* PRACT=0 write: wire (extended LBA) -> backend data + metadata. */
			whole.iov_base = ext;
			whole.iov_len = dlen + (size_t)NVT_BENCH_NLB * ms;
			if (nvt_pi_join(&b->fmt, b->data, b->data_cnt, b->md, b->md_cnt, &whole, 1,
					NVT_BENCH_NLB))
				return 1;
			b->ext_cnt = cut(b->ext, ext, whole.iov_len, dp);
			b->dst_data_cnt = cut(b->dst_data, dst, dlen, 0);
			b->md_out.iov_base = md_out;
			b->md_out.iov_len = (size_t)NVT_BENCH_NLB * ms;
			b->run = run_verify_split;
			if (b->run(b))
				return 1;
			report("verify_split", guards[g].name, layout, measure(b), base);
			b->run = run_verify_then_split;
			report("verify,split", guards[g].name, layout, measure(b), base);
		}
	}
	free(b);
	free(md_out);
	free(md);
	free(ext);
	free(dst);
	free(data);
	return 0;
}
