/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC-16/T10-DIF and CRC-64/NVMe for protection information: own AVX-512 folding (fused with a copy where asked), isa-l and tables for the rest. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <isa-l/crc.h>

#include "nvt/crc.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define NVT_CRC64_X86 1
#else
#define NVT_CRC64_X86 0
#endif


/*
 * CRC-64/NVMe
 * ===========
 *
 * P(x) = x^64 + 0xAD93D23594C93659 (coefficients of x^63..x^0, MSB first).
 * The CRC is reflected: the first byte's least significant bit is the
 * message's highest-degree coefficient. Every 64-bit value below is stored
 * the same way, bit i holding the coefficient of x^(63-i), and a 128-bit
 * register holds bit i = x^(127-i). So a 16-byte little-endian load of the
 * message is a 128-bit polynomial with its high half H in the LOW qword and
 * its low half L in the high qword: S = H*x^64 + L.
 *
 * The register value (before the final inversion) is
 * (I*x^(8n) + M*x^64) mod P for an n-byte message M and initial value I;
 * since I is aligned with the first 64 message bits, the register is simply
 * xored into the first 8 bytes, as the table code does byte by byte.
 *
 * Folding. State S, followed D bits later by the next block N: what the
 * message contributes is S*x^D + N, and S*x^D = H*x^(64+D) + L*x^D, which is
 * congruent mod P to H*(x^(64+D) mod P) + L*(x^D mod P), a 127-bit value.
 * PCLMULQDQ on two reflected 64-bit operands A, B yields the 128-bit
 * reflected form of A*B*x (the product has degree 126 and lands one bit
 * low), so the constants carry one power of x less:
 *	k_H(D) = x^(D+63) mod P,   k_L(D) = x^(D-1) mod P,
 *	S' = clmul(H, k_H) ^ clmul(L, k_L) ^ N.
 * Each fold constant pair is a 128-bit vector {low: k_H, high: k_L}, so
 * selectors 0x00 and 0x11 pair H with k_H and L with k_L. Wider registers
 * fold each 128-bit lane independently with the same pair.
 *
 * Final reduction of the last 128-bit state S to the CRC = S*x^64 mod P:
 *	R = H*x^128 + L*x^64, with H*x^128 = clmul(H, x^127 mod P) (the
 *	fold-by-128 k_L) and L*x^64 being just L moved to the low qword.
 *	Barrett on R = RH*x^64 + RL (RH in the low qword): with
 *	mu = floor(x^128 / P), the quotient is Q = floor(RH*mu / x^64).
 *	Writing mu = x*mu1 + (mu mod x), the dropped constant term cannot
 *	reach x^64, so Q = floor(x*RH*mu1 / x^64) = low qword of
 *	clmul(RH, mu1) — the clmul's built-in factor x does the work.
 *	Then CRC = RL + (Q*P mod x^64); with P = x*P1 + 1,
 *	Q*P = clmul-form(Q*P1*x) + Q, whose low 64 coefficients are the
 *	high qword of clmul(Q, P1), xored with Q.
 *
 * All constants are computed at start-up from P by crc64_setup() (bitwise
 * polynomial arithmetic, below) rather than pasted in; for review, they are:
 *	D     k_H = x^(D+63)       k_L = x^(D-1)
 *	128   0xeadc41fd2ba3d420   0x21e9761e252621ac
 *	256   0xb0bc2e589204f500   0xe1e0bb9d45d7a44c
 *	512   0x0c32cdb31e18a84a   0x62242240ace5045a
 *	1024  0xa1ca681e733f9c40   0x5f852fb61e8d92dc
 *	2048  0x37ccd3e14069cabc   0xa043808c0f782663
 *	4096  0xd0b3aa0ed6d54ae0   0xc2409e2537aa5eb1
 *	mu1 = 0x27ecfa329aef9f77, P1 = 0x34d926535897936b (all reflected).
 * The unit tests check every implementation against a bitwise CRC, which
 * would catch a wrong constant at any length that uses it.
 */

#define NVT_CRC64_POLY		0xAD93D23594C93659ull	/* x^64 implied */
#define NVT_CRC16_MIN_FOLD	512	/* CRC-16 shorter than this: isa-l */

enum {
	NVT_FOLD_128,
	NVT_FOLD_256,
	NVT_FOLD_512,
	NVT_FOLD_1024,
	NVT_FOLD_2048,
	NVT_FOLD_4096,
	NVT_FOLD_N,
};

/* Written once by crc64_setup() before any implementation is published. */
static struct {
	uint64_t fold[NVT_FOLD_N][2] __attribute__((aligned(16)));
	uint64_t barrett[2] __attribute__((aligned(16)));	/* {mu1, P1} */
	uint64_t slice[8][256];
} nvt_crc64_k;

static uint64_t bitrev64(uint64_t v)
{
	uint64_t r = 0;

	for (int i = 0; i < 64; i++, v >>= 1)
		r = (r << 1) | (v & 1);
	return r;
}

/* x^k mod P, reflected: multiplying by x is one step of the reflected shift register. */
static uint64_t crc64_xpow_mod(unsigned int k)
{
	const uint64_t poly = bitrev64(NVT_CRC64_POLY);
	uint64_t r = 1ull << 63;	/* x^0 */

	while (k--)
		r = (r >> 1) ^ ((r & 1) ? poly : 0);
	return r;
}

/* floor(floor(x^128 / P) / x), reflected: long division, kept in the normal bit order. */
static uint64_t crc64_barrett_mu1(void)
{
	/*
	 * Only the quotient is wanted, and it depends on the remainder's
	 * coefficients x^127..x^64 alone, so the low half is never kept.
	 */
	uint64_t rem_hi = NVT_CRC64_POLY;	/* x^128 - x^64*P, over x^64 */
	uint64_t q = 0;				/* quotient bits x^63..x^0; x^64 is implied */

	for (int d = 127; d >= 64; d--) {
		/* Leading term x^d of the remainder is bit d-64 of rem_hi. */
		if (rem_hi >> (d - 64) & 1) {
			int s = d - 64;

			q |= 1ull << s;
			/* rem -= P * x^s, P = x^64 + poly; poly << s spills into the high half. */
			rem_hi ^= 1ull << s;
			if (s)
				rem_hi ^= NVT_CRC64_POLY >> (64 - s);
		}
	}
	/* mu = x^64 + q; mu1 = mu / x drops q's x^0 and keeps x^64 as x^63. */
	return bitrev64((1ull << 63) | (q >> 1));
}

static void crc64_setup(void)
{
	const uint64_t poly = bitrev64(NVT_CRC64_POLY);

	for (int i = 0; i < NVT_FOLD_N; i++) {
		unsigned int d = 128u << i;

		nvt_crc64_k.fold[i][0] = crc64_xpow_mod(d + 63);
		nvt_crc64_k.fold[i][1] = crc64_xpow_mod(d - 1);
	}
	nvt_crc64_k.barrett[0] = crc64_barrett_mu1();
	/* P1 = (P - 1) / x; reflected that is the polynomial shifted up with x^63 (from x^64) at bit 0. */
	nvt_crc64_k.barrett[1] = (poly << 1) | 1;

	/* slice[k][b]: the register after byte b followed by k zero bytes. */
	for (int b = 0; b < 256; b++) {
		uint64_t crc = (uint64_t)b;

		for (int j = 0; j < 8; j++)
			crc = (crc >> 1) ^ ((crc & 1) ? poly : 0);
		nvt_crc64_k.slice[0][b] = crc;
	}
	for (int k = 1; k < 8; k++)
		for (int b = 0; b < 256; b++) {
			uint64_t prev = nvt_crc64_k.slice[k - 1][b];

			nvt_crc64_k.slice[k][b] = (prev >> 8) ^ nvt_crc64_k.slice[0][prev & 0xff];
		}
}

/*
 * The implementations work on the raw register (~seed in, ~result out) so
 * they can hand a tail to each other without extra inversions.
 */

/* Portable slice-by-8: one 8-byte load and eight independent table lookups per step. */
static uint64_t crc64_table_raw(uint64_t crc, const uint8_t *p, size_t len)
{
	const uint64_t (*t)[256] = nvt_crc64_k.slice;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		crc ^= v;
		crc = t[7][crc & 0xff] ^ t[6][(crc >> 8) & 0xff] ^
		      t[5][(crc >> 16) & 0xff] ^ t[4][(crc >> 24) & 0xff] ^
		      t[3][(crc >> 32) & 0xff] ^ t[2][(crc >> 40) & 0xff] ^
		      t[1][(crc >> 48) & 0xff] ^ t[0][crc >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if NVT_CRC64_X86

/*
 * Function-level targets let this file build with plain -O2; each path
 * runs only after the CPU check in crc64_cpu_*() passed.
 */
#define NVT_TARGET_PCLMUL	__attribute__((target("pclmul,sse4.1")))
#define NVT_TARGET_VPCLMUL256	__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.1")))
#define NVT_TARGET_VPCLMUL512	__attribute__((target("avx512f,avx512bw,avx2,vpclmulqdq,pclmul,ssse3,sse4.1")))
#define NVT_INLINE		static inline __attribute__((always_inline))

NVT_INLINE NVT_TARGET_PCLMUL __m128i crc64_k128(int i)
{
	return _mm_load_si128((const __m128i *)nvt_crc64_k.fold[i]);
}

NVT_INLINE NVT_TARGET_PCLMUL __m128i crc64_load128(const uint8_t *p)
{
	return _mm_loadu_si128((const __m128i *)p);
}

/* S*x^D + N for one 128-bit lane; @k is the fold pair for D. */
NVT_INLINE NVT_TARGET_PCLMUL __m128i crc64_fold128(__m128i s, __m128i k, __m128i n)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(s, k, 0x00),
					   _mm_clmulepi64_si128(s, k, 0x11)), n);
}

/*
 * Fold the remaining whole 16-byte blocks into @s one at a time and reduce
 * @s to the 64-bit register (see the comment at the top); *@p and *@len
 * move past the blocks folded, leaving 0..15 bytes for the table.
 */
NVT_INLINE NVT_TARGET_PCLMUL uint64_t crc64_reduce128(__m128i s, const uint8_t **p, size_t *len)
{
	const __m128i k = crc64_k128(NVT_FOLD_128);
	const __m128i b = _mm_load_si128((const __m128i *)nvt_crc64_k.barrett);
	__m128i r, q, t;

	while (*len >= 16) {
		s = crc64_fold128(s, k, crc64_load128(*p));
		*p += 16;
		*len -= 16;
	}
	/* R = H*x^128 + L*x^64 == S*x^64 (mod P). */
	r = _mm_xor_si128(_mm_clmulepi64_si128(s, k, 0x10), _mm_srli_si128(s, 8));
	/* Q = low qword of clmul(RH, mu1); Q*P mod x^64 = high(clmul(Q, P1)) ^ Q. */
	q = _mm_clmulepi64_si128(r, b, 0x00);
	t = _mm_clmulepi64_si128(q, b, 0x10);
	return (uint64_t)_mm_extract_epi64(r, 1) ^ (uint64_t)_mm_cvtsi128_si64(q) ^
	       (uint64_t)_mm_extract_epi64(t, 1);
}

/* The same, then the last 0..15 bytes with the table. Inlined so wide paths keep VEX encoding. */
NVT_INLINE NVT_TARGET_PCLMUL uint64_t crc64_finish128(__m128i s, const uint8_t *p, size_t len)
{
	uint64_t crc = crc64_reduce128(s, &p, &len);

	return crc64_table_raw(crc, p, len);
}

/*
 * The wide paths' finish: the upper halves of the vector registers are
 * cleared before the scalar table code returns to SSE-compiled callers.
 * Without it the dirty upper state costs every later legacy-SSE
 * instruction (a struct copy, glibc) a merge: it was ~150 ns per 4 KiB I/O
 * on the CRC-64 paths, spread over the code after the CRC.
 */
NVT_INLINE NVT_TARGET_VPCLMUL256 uint64_t crc64_finish_wide(__m128i s, const uint8_t *p, size_t len)
{
	uint64_t crc = crc64_reduce128(s, &p, &len);

	_mm256_zeroupper();
	return crc64_table_raw(crc, p, len);
}

/* 8 independent 128-bit lanes (128 bytes a round) hide the multiply latency. */
NVT_TARGET_PCLMUL
static uint64_t crc64_pclmul_raw(uint64_t crc, const uint8_t *p, size_t len)
{
	__m128i x0, x1, x2, x3, x4, x5, x6, x7, k;

	if (len < 16)
		return crc64_table_raw(crc, p, len);
	if (len < 128) {
		x0 = _mm_xor_si128(crc64_load128(p), _mm_cvtsi64_si128((long long)crc));
		return crc64_finish128(x0, p + 16, len - 16);
	}

	x0 = _mm_xor_si128(crc64_load128(p), _mm_cvtsi64_si128((long long)crc));
	x1 = crc64_load128(p + 16);
	x2 = crc64_load128(p + 32);
	x3 = crc64_load128(p + 48);
	x4 = crc64_load128(p + 64);
	x5 = crc64_load128(p + 80);
	x6 = crc64_load128(p + 96);
	x7 = crc64_load128(p + 112);
	p += 128;
	len -= 128;

	k = crc64_k128(NVT_FOLD_1024);
	while (len >= 128) {
		x0 = crc64_fold128(x0, k, crc64_load128(p));
		x1 = crc64_fold128(x1, k, crc64_load128(p + 16));
		x2 = crc64_fold128(x2, k, crc64_load128(p + 32));
		x3 = crc64_fold128(x3, k, crc64_load128(p + 48));
		x4 = crc64_fold128(x4, k, crc64_load128(p + 64));
		x5 = crc64_fold128(x5, k, crc64_load128(p + 80));
		x6 = crc64_fold128(x6, k, crc64_load128(p + 96));
		x7 = crc64_fold128(x7, k, crc64_load128(p + 112));
		p += 128;
		len -= 128;
	}

	/* Halve the lanes three times: lane i is 64, then 32, then 16 bytes before its partner. */
	k = crc64_k128(NVT_FOLD_512);
	x4 = crc64_fold128(x0, k, x4);
	x5 = crc64_fold128(x1, k, x5);
	x6 = crc64_fold128(x2, k, x6);
	x7 = crc64_fold128(x3, k, x7);
	k = crc64_k128(NVT_FOLD_256);
	x6 = crc64_fold128(x4, k, x6);
	x7 = crc64_fold128(x5, k, x7);
	x7 = crc64_fold128(x6, crc64_k128(NVT_FOLD_128), x7);
	return crc64_finish128(x7, p, len);
}

NVT_INLINE NVT_TARGET_VPCLMUL256 __m256i crc64_k256(int i)
{
	return _mm256_broadcastsi128_si256(crc64_k128(i));
}

NVT_INLINE NVT_TARGET_VPCLMUL256 __m256i crc64_load256(const uint8_t *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

NVT_INLINE NVT_TARGET_VPCLMUL256 __m256i crc64_fold256(__m256i s, __m256i k, __m256i n)
{
	return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(s, k, 0x00),
						 _mm256_clmulepi64_epi128(s, k, 0x11)), n);
}

/* Two lanes of 256 bits: fold the low one across 128 bits into the high one. */
NVT_INLINE NVT_TARGET_VPCLMUL256 __m128i crc64_narrow256(__m256i y)
{
	return crc64_fold128(_mm256_castsi256_si128(y), crc64_k128(NVT_FOLD_128),
			     _mm256_extracti128_si256(y, 1));
}

/* VEX-encoded VPCLMULQDQ on ymm needs only AVX2-class state, so Zen 3 and Alder Lake get it too. */
NVT_TARGET_VPCLMUL256
static uint64_t crc64_vpclmul256_raw(uint64_t crc, const uint8_t *p, size_t len)
{
	__m256i y0, y1, y2, y3, y4, y5, y6, y7, k;

	if (len < 256)
		return crc64_pclmul_raw(crc, p, len);

	y0 = _mm256_xor_si256(crc64_load256(p), _mm256_set_epi64x(0, 0, 0, (long long)crc));
	y1 = crc64_load256(p + 32);
	y2 = crc64_load256(p + 64);
	y3 = crc64_load256(p + 96);
	y4 = crc64_load256(p + 128);
	y5 = crc64_load256(p + 160);
	y6 = crc64_load256(p + 192);
	y7 = crc64_load256(p + 224);
	p += 256;
	len -= 256;

	k = crc64_k256(NVT_FOLD_2048);
	while (len >= 256) {
		y0 = crc64_fold256(y0, k, crc64_load256(p));
		y1 = crc64_fold256(y1, k, crc64_load256(p + 32));
		y2 = crc64_fold256(y2, k, crc64_load256(p + 64));
		y3 = crc64_fold256(y3, k, crc64_load256(p + 96));
		y4 = crc64_fold256(y4, k, crc64_load256(p + 128));
		y5 = crc64_fold256(y5, k, crc64_load256(p + 160));
		y6 = crc64_fold256(y6, k, crc64_load256(p + 192));
		y7 = crc64_fold256(y7, k, crc64_load256(p + 224));
		p += 256;
		len -= 256;
	}

	k = crc64_k256(NVT_FOLD_1024);
	y4 = crc64_fold256(y0, k, y4);
	y5 = crc64_fold256(y1, k, y5);
	y6 = crc64_fold256(y2, k, y6);
	y7 = crc64_fold256(y3, k, y7);
	k = crc64_k256(NVT_FOLD_512);
	y6 = crc64_fold256(y4, k, y6);
	y7 = crc64_fold256(y5, k, y7);
	k = crc64_k256(NVT_FOLD_256);
	y7 = crc64_fold256(y6, k, y7);
	while (len >= 32) {
		y7 = crc64_fold256(y7, k, crc64_load256(p));
		p += 32;
		len -= 32;
	}
	return crc64_finish_wide(crc64_narrow256(y7), p, len);
}

NVT_INLINE NVT_TARGET_VPCLMUL512 __m512i crc64_k512(int i)
{
	return _mm512_broadcast_i32x4(crc64_k128(i));
}

NVT_INLINE NVT_TARGET_VPCLMUL512 __m512i crc64_load512(const uint8_t *p)
{
	return _mm512_loadu_si512(p);
}

NVT_INLINE NVT_TARGET_VPCLMUL512 __m512i crc64_fold512(__m512i s, __m512i k, __m512i n)
{
	/* 0x96 is a ^ b ^ c: one instruction for both xors. */
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(s, k, 0x00),
					 _mm512_clmulepi64_epi128(s, k, 0x11), n, 0x96);
}

/* Load 64 bytes and, when copying, store them to @d as loaded: the CRC is of the bytes stored. */
NVT_INLINE NVT_TARGET_VPCLMUL512 __m512i crc64_load512_to(const uint8_t *p, uint8_t *d)
{
	__m512i v = _mm512_loadu_si512(p);

	if (d)
		_mm512_storeu_si512(d, v);
	return v;
}

/*
 * The 512-bit fold, optionally copying what it reads to @dst (NULL: no
 * copy). Inlined into two callers so each gets a loop without the test.
 */
NVT_INLINE NVT_TARGET_VPCLMUL512 uint64_t crc64_vpclmul512_body(uint64_t crc, uint8_t *dst,
								 const uint8_t *p, size_t len)
{
	__m512i z0, z1, z2, z3, z4, z5, z6, z7, k;
	__m256i y;

	if (len < 512) {
		if (dst) {
			memcpy(dst, p, len);
			p = dst;	/* what is stored is what is summed */
		}
		return crc64_vpclmul256_raw(crc, p, len);
	}

#define NVT_D(off) (dst ? dst + (off) : NULL)
	z0 = _mm512_xor_si512(crc64_load512_to(p, NVT_D(0)),
			      _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, (long long)crc));
	z1 = crc64_load512_to(p + 64, NVT_D(64));
	z2 = crc64_load512_to(p + 128, NVT_D(128));
	z3 = crc64_load512_to(p + 192, NVT_D(192));
	z4 = crc64_load512_to(p + 256, NVT_D(256));
	z5 = crc64_load512_to(p + 320, NVT_D(320));
	z6 = crc64_load512_to(p + 384, NVT_D(384));
	z7 = crc64_load512_to(p + 448, NVT_D(448));
	p += 512;
	dst = NVT_D(512);
	len -= 512;

	k = crc64_k512(NVT_FOLD_4096);
	while (len >= 512) {
		z0 = crc64_fold512(z0, k, crc64_load512_to(p, NVT_D(0)));
		z1 = crc64_fold512(z1, k, crc64_load512_to(p + 64, NVT_D(64)));
		z2 = crc64_fold512(z2, k, crc64_load512_to(p + 128, NVT_D(128)));
		z3 = crc64_fold512(z3, k, crc64_load512_to(p + 192, NVT_D(192)));
		z4 = crc64_fold512(z4, k, crc64_load512_to(p + 256, NVT_D(256)));
		z5 = crc64_fold512(z5, k, crc64_load512_to(p + 320, NVT_D(320)));
		z6 = crc64_fold512(z6, k, crc64_load512_to(p + 384, NVT_D(384)));
		z7 = crc64_fold512(z7, k, crc64_load512_to(p + 448, NVT_D(448)));
		p += 512;
		dst = NVT_D(512);
		len -= 512;
	}

	k = crc64_k512(NVT_FOLD_2048);
	z4 = crc64_fold512(z0, k, z4);
	z5 = crc64_fold512(z1, k, z5);
	z6 = crc64_fold512(z2, k, z6);
	z7 = crc64_fold512(z3, k, z7);
	k = crc64_k512(NVT_FOLD_1024);
	z6 = crc64_fold512(z4, k, z6);
	z7 = crc64_fold512(z5, k, z7);
	k = crc64_k512(NVT_FOLD_512);
	z7 = crc64_fold512(z6, k, z7);
	while (len >= 64) {
		z7 = crc64_fold512(z7, k, crc64_load512_to(p, NVT_D(0)));
		p += 64;
		dst = NVT_D(64);
		len -= 64;
	}
#undef NVT_D
	if (dst) {
		memcpy(dst, p, len);
		p = dst;
	}
	/* 512 -> 256: the low half is 32 bytes before the high half. */
	y = crc64_fold256(_mm512_castsi512_si256(z7), crc64_k256(NVT_FOLD_256),
			  _mm512_extracti64x4_epi64(z7, 1));
	return crc64_finish_wide(crc64_narrow256(y), p, len);
}

NVT_TARGET_VPCLMUL512
static uint64_t crc64_vpclmul512_raw(uint64_t crc, const uint8_t *p, size_t len)
{
	return crc64_vpclmul512_body(crc, NULL, p, len);
}

NVT_TARGET_VPCLMUL512
static uint64_t crc64_vpclmul512_copy_raw(uint64_t crc, uint8_t *dst, const uint8_t *p, size_t len)
{
	return crc64_vpclmul512_body(crc, dst, p, len);
}

/*
 * CRC-16/T10-DIF by folding
 * =========================
 *
 * isa-l 2.30's crc16_t10dif() folds with VPCLMULQDQ, but its fused
 * crc16_t10dif_copy() is the 128-bit SSE routine, slower than a memcpy plus
 * the plain CRC; and a 4 KiB block pays isa-l's setup and final reduction
 * each time. So the block-sized case is ours, copy or not, with the same
 * eight 512-bit accumulators as CRC-64 above, and isa-l does what is left
 * (lengths under 512 bytes, tails under 16, CPUs without AVX-512).
 *
 * This CRC is not reflected: the first byte's most significant bit is the
 * highest coefficient. Each 16-byte lane is byte-reversed after the load, so
 * lane bit i holds the coefficient of x^i and S = H*x^64 + L with H the
 * high qword, the natural order; PCLMULQDQ then gives exact products. With
 * P = 0x18BB7 (degree 16) every x^k mod P has 16 bits, so
 *	S*x^D + N == clmul(H, x^(D+64) mod P) ^ clmul(L, x^D mod P) ^ N,
 * both products under 80 bits. Each fold pair is {low: x^D mod P,
 * high: x^(D+64) mod P}, so the same selectors (0x00, 0x11) as CRC-64 pair
 * L and H with their constants, and crc64_fold*() serve both CRCs.
 *
 * The CRC of message M (init 0) is M*x^16 mod P, and the seed is xored into
 * the first 16 bits. Final reduction of the last lane S:
 *	T = clmul(H, x^80 mod P) ^ L*x^16        (== S*x^16, under 80 bits)
 *	A = clmul(T >> 64, x^64 mod P) ^ (T mod x^64)   (under 64 bits)
 * then Barrett with mu = floor(x^64 / P) (49 bits):
 *	Q = floor(floor(A / x^16) * mu / x^48),  CRC = (A ^ clmul(Q, P)) mod x^16,
 * exact for deg A < 64 (the quotient map is linear over GF(2), and what
 * floor() drops from A1*mu sits below x^48). Constants come from P at
 * start-up; the unit tests check every length against a bitwise model.
 */
#define NVT_CRC16_POLY		0x18BB7u	/* with x^16 */

static struct {
	uint64_t fold[NVT_FOLD_N][2] __attribute__((aligned(16)));
	uint64_t red[2] __attribute__((aligned(16)));		/* {x^80 mod P, x^64 mod P} */
	uint64_t barrett[2] __attribute__((aligned(16)));	/* {mu, P} */
} nvt_crc16_k;

static uint64_t crc16_xpow_mod(unsigned int k)
{
	uint32_t r = 1;

	while (k--) {
		r <<= 1;
		if (r & 0x10000)
			r ^= NVT_CRC16_POLY;
	}
	return r;
}

static void crc16_setup(void)
{
	unsigned __int128 rem = (unsigned __int128)1 << 64;
	uint64_t q = 0;

	for (int i = 0; i < NVT_FOLD_N; i++) {
		unsigned int d = 128u << i;

		nvt_crc16_k.fold[i][0] = crc16_xpow_mod(d);
		nvt_crc16_k.fold[i][1] = crc16_xpow_mod(d + 64);
	}
	nvt_crc16_k.red[0] = crc16_xpow_mod(80);
	nvt_crc16_k.red[1] = crc16_xpow_mod(64);
	/* mu = floor(x^64 / P): long division, one quotient bit per degree 64..16. */
	for (int d = 64; d >= 16; d--) {
		if ((uint64_t)(rem >> d) & 1) {
			q |= 1ull << (d - 16);
			rem ^= (unsigned __int128)NVT_CRC16_POLY << (d - 16);
		}
	}
	nvt_crc16_k.barrett[0] = q;
	nvt_crc16_k.barrett[1] = NVT_CRC16_POLY;
}

NVT_INLINE NVT_TARGET_VPCLMUL512 __m128i crc16_k128(int i)
{
	return _mm_load_si128((const __m128i *)nvt_crc16_k.fold[i]);
}

NVT_INLINE NVT_TARGET_VPCLMUL512 __m512i crc16_k512(int i)
{
	return _mm512_broadcast_i32x4(crc16_k128(i));
}

/* Reverse the bytes of each 16-byte lane: the first byte becomes the top of its lane. */
NVT_INLINE NVT_TARGET_VPCLMUL512 __m128i crc16_bswap_mask(void)
{
	return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

NVT_INLINE NVT_TARGET_VPCLMUL512 __m512i crc16_load512(const uint8_t *p, uint8_t *d, __m512i bswap)
{
	return _mm512_shuffle_epi8(crc64_load512_to(p, d), bswap);
}

/* The last lane to the CRC (see above). */
NVT_INLINE NVT_TARGET_VPCLMUL512 uint16_t crc16_reduce128(__m128i s)
{
	const __m128i red = _mm_load_si128((const __m128i *)nvt_crc16_k.red);
	const __m128i bar = _mm_load_si128((const __m128i *)nvt_crc16_k.barrett);
	__m128i t, a, q;

	t = _mm_xor_si128(_mm_clmulepi64_si128(s, red, 0x01), _mm_slli_si128(_mm_move_epi64(s), 2));
	a = _mm_xor_si128(_mm_clmulepi64_si128(t, red, 0x11), _mm_move_epi64(t));
	q = _mm_clmulepi64_si128(_mm_srli_epi64(a, 16), bar, 0x00);
	q = _mm_srli_si128(q, 6);
	a = _mm_xor_si128(a, _mm_clmulepi64_si128(q, bar, 0x10));
	return (uint16_t)_mm_cvtsi128_si64(a);
}

/*
 * @len >= NVT_CRC16_MIN_FOLD. Folds whole 16-byte pieces, copying them to
 * @dst when set, and returns the CRC of those; *@done says how many bytes
 * that was (the caller finishes the rest with isa-l, seeded with it).
 */
NVT_INLINE NVT_TARGET_VPCLMUL512 uint16_t crc16_vpclmul512_body(uint16_t crc, uint8_t *dst,
								 const uint8_t *p, size_t len,
								 size_t *done)
{
	const __m512i bswap = _mm512_broadcast_i32x4(crc16_bswap_mask());
	const uint8_t *start = p;
	__m512i z0, z1, z2, z3, z4, z5, z6, z7, k;
	__m256i y;
	__m128i x;

#define NVT_D(off) (dst ? dst + (off) : NULL)
	/* The seed lands on the first 16 bits: the top of lane 0. */
	z0 = _mm512_xor_si512(crc16_load512(p, NVT_D(0), bswap),
			      _mm512_set_epi64(0, 0, 0, 0, 0, 0, (long long)((uint64_t)crc << 48), 0));
	z1 = crc16_load512(p + 64, NVT_D(64), bswap);
	z2 = crc16_load512(p + 128, NVT_D(128), bswap);
	z3 = crc16_load512(p + 192, NVT_D(192), bswap);
	z4 = crc16_load512(p + 256, NVT_D(256), bswap);
	z5 = crc16_load512(p + 320, NVT_D(320), bswap);
	z6 = crc16_load512(p + 384, NVT_D(384), bswap);
	z7 = crc16_load512(p + 448, NVT_D(448), bswap);
	p += 512;
	dst = NVT_D(512);
	len -= 512;

	k = crc16_k512(NVT_FOLD_4096);
	while (len >= 512) {
		z0 = crc64_fold512(z0, k, crc16_load512(p, NVT_D(0), bswap));
		z1 = crc64_fold512(z1, k, crc16_load512(p + 64, NVT_D(64), bswap));
		z2 = crc64_fold512(z2, k, crc16_load512(p + 128, NVT_D(128), bswap));
		z3 = crc64_fold512(z3, k, crc16_load512(p + 192, NVT_D(192), bswap));
		z4 = crc64_fold512(z4, k, crc16_load512(p + 256, NVT_D(256), bswap));
		z5 = crc64_fold512(z5, k, crc16_load512(p + 320, NVT_D(320), bswap));
		z6 = crc64_fold512(z6, k, crc16_load512(p + 384, NVT_D(384), bswap));
		z7 = crc64_fold512(z7, k, crc16_load512(p + 448, NVT_D(448), bswap));
		p += 512;
		dst = NVT_D(512);
		len -= 512;
	}

	k = crc16_k512(NVT_FOLD_2048);
	z4 = crc64_fold512(z0, k, z4);
	z5 = crc64_fold512(z1, k, z5);
	z6 = crc64_fold512(z2, k, z6);
	z7 = crc64_fold512(z3, k, z7);
	k = crc16_k512(NVT_FOLD_1024);
	z6 = crc64_fold512(z4, k, z6);
	z7 = crc64_fold512(z5, k, z7);
	k = crc16_k512(NVT_FOLD_512);
	z7 = crc64_fold512(z6, k, z7);
	while (len >= 64) {
		z7 = crc64_fold512(z7, k, crc16_load512(p, NVT_D(0), bswap));
		p += 64;
		dst = NVT_D(64);
		len -= 64;
	}
	/* 512 -> 256 -> 128: each low half comes 32, then 16 bytes before its partner. */
	y = crc64_fold256(_mm512_castsi512_si256(z7), _mm256_broadcastsi128_si256(crc16_k128(NVT_FOLD_256)),
			  _mm512_extracti64x4_epi64(z7, 1));
	x = crc64_fold128(_mm256_castsi256_si128(y), crc16_k128(NVT_FOLD_128),
			  _mm256_extracti128_si256(y, 1));
	while (len >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)p);

		if (dst)
			_mm_storeu_si128((__m128i *)dst, v);
		x = crc64_fold128(x, crc16_k128(NVT_FOLD_128), _mm_shuffle_epi8(v, crc16_bswap_mask()));
		p += 16;
		dst = NVT_D(16);
		len -= 16;
	}
#undef NVT_D
	*done = (size_t)(p - start);
	return crc16_reduce128(x);
}

NVT_TARGET_VPCLMUL512
static uint16_t crc16_vpclmul512(uint16_t crc, const uint8_t *p, size_t len, size_t *done)
{
	return crc16_vpclmul512_body(crc, NULL, p, len, done);
}

NVT_TARGET_VPCLMUL512
static uint16_t crc16_vpclmul512_copy(uint16_t crc, uint8_t *dst, const uint8_t *p, size_t len,
				      size_t *done)
{
	return crc16_vpclmul512_body(crc, dst, p, len, done);
}

static bool crc64_cpu_pclmul(void)
{
	return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

static bool crc64_cpu_vpclmul256(void)
{
	/* libgcc reports avx2 only when the OS saves ymm state (XCR0). */
	return crc64_cpu_pclmul() && __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("vpclmulqdq");
}

static bool crc64_cpu_vpclmul512(void)
{
	/* Likewise avx512f only with zmm/opmask state enabled. */
	return crc64_cpu_vpclmul256() && __builtin_cpu_supports("avx512f");
}

static bool crc16_cpu_vpclmul512(void)
{
	/* The lane shuffle on zmm is AVX-512BW. */
	return crc64_cpu_vpclmul512() && __builtin_cpu_supports("avx512bw");
}

#endif /* NVT_CRC64_X86 */

static bool crc64_cpu_any(void)
{
	return true;
}

struct nvt_crc64_impl {
	const char *name;
	uint64_t (*fn)(uint64_t crc, const uint8_t *p, size_t len);
	/* Copy and sum; NULL: memcpy, then fn over the copy while it is hot. */
	uint64_t (*copy)(uint64_t crc, uint8_t *dst, const uint8_t *p, size_t len);
	bool (*cpu_ok)(void);
};

/* Slowest first: start-up picks the last one the CPU can run. */
static const struct nvt_crc64_impl nvt_crc64_impls[] = {
	{ "table", crc64_table_raw, NULL, crc64_cpu_any },
#if NVT_CRC64_X86
	{ "pclmul", crc64_pclmul_raw, NULL, crc64_cpu_pclmul },
	{ "vpclmul256", crc64_vpclmul256_raw, NULL, crc64_cpu_vpclmul256 },
	{ "vpclmul512", crc64_vpclmul512_raw, crc64_vpclmul512_copy_raw, crc64_cpu_vpclmul512 },
#endif
};

#define NVT_CRC64_NIMPLS	(sizeof(nvt_crc64_impls) / sizeof(nvt_crc64_impls[0]))

static const char *const nvt_crc64_names[] = {
	"table",
#if NVT_CRC64_X86
	"pclmul",
	"vpclmul256",
	"vpclmul512",
#endif
	NULL,
};

_Static_assert(sizeof(nvt_crc64_names) / sizeof(nvt_crc64_names[0]) == NVT_CRC64_NIMPLS + 1,
	       "nvt_crc64_names must list nvt_crc64_impls");

static pthread_once_t nvt_crc64_once = PTHREAD_ONCE_INIT;
static const struct nvt_crc64_impl *nvt_crc64_best;
/* NULL until crc64_init() ran; readers load it with acquire so the tables are visible. */
static const struct nvt_crc64_impl *nvt_crc64_cur;

/* CRC-16: ours where the CPU runs it (1), else isa-l (0); set by crc64_init_once(). */
static int nvt_crc16_fast = -1;
static bool nvt_crc16_fast_ok;

static void crc64_init_once(void)
{
	crc64_setup();
#if NVT_CRC64_X86
	crc16_setup();
	__builtin_cpu_init();
	nvt_crc16_fast_ok = crc16_cpu_vpclmul512();
#endif
	__atomic_store_n(&nvt_crc16_fast, nvt_crc16_fast_ok, __ATOMIC_RELEASE);
	for (size_t i = 0; i < NVT_CRC64_NIMPLS; i++)
		if (nvt_crc64_impls[i].cpu_ok())
			nvt_crc64_best = &nvt_crc64_impls[i];
	__atomic_store_n(&nvt_crc64_cur, nvt_crc64_best, __ATOMIC_RELEASE);
}

static const struct nvt_crc64_impl *crc64_init(void)
{
	pthread_once(&nvt_crc64_once, crc64_init_once);
	return __atomic_load_n(&nvt_crc64_cur, __ATOMIC_ACQUIRE);
}

uint64_t nvt_crc64_nvme(uint64_t seed, const void *buf, size_t len)
{
	const struct nvt_crc64_impl *impl = __atomic_load_n(&nvt_crc64_cur, __ATOMIC_ACQUIRE);

	if (__builtin_expect(!impl, 0))
		impl = crc64_init();
	return ~impl->fn(~seed, buf, len);
}

uint64_t nvt_crc64_nvme_copy(uint64_t seed, void *dst, const void *src, size_t len)
{
	const struct nvt_crc64_impl *impl = __atomic_load_n(&nvt_crc64_cur, __ATOMIC_ACQUIRE);

	if (__builtin_expect(!impl, 0))
		impl = crc64_init();
	if (impl->copy)
		return ~impl->copy(~seed, dst, src, len);
	if (len)
		memcpy(dst, src, len);
	return ~impl->fn(~seed, dst, len);
}

static bool crc16_fast(size_t len)
{
	int fast = __atomic_load_n(&nvt_crc16_fast, __ATOMIC_ACQUIRE);

	if (__builtin_expect(fast < 0, 0)) {
		crc64_init();
		fast = __atomic_load_n(&nvt_crc16_fast, __ATOMIC_ACQUIRE);
	}
	return fast > 0 && len >= NVT_CRC16_MIN_FOLD;
}

uint16_t nvt_crc16_t10dif(uint16_t seed, const void *buf, size_t len)
{
	size_t done = 0;

	if (!len)
		return seed;
#if NVT_CRC64_X86
	if (crc16_fast(len))
		seed = crc16_vpclmul512(seed, buf, len, &done);
#endif
	/* CRC-16/T10-DIF has init 0 and no final xor, so isa-l's seed chains as is. */
	if (done == len)
		return seed;
	return crc16_t10dif(seed, (const uint8_t *)buf + done, len - done);
}

uint16_t nvt_crc16_t10dif_copy(uint16_t seed, void *dst, const void *src, size_t len)
{
	size_t done = 0;

	if (!len)
		return seed;
#if NVT_CRC64_X86
	if (crc16_fast(len))
		seed = crc16_vpclmul512_copy(seed, dst, src, len, &done);
#endif
	if (done == len)
		return seed;
	/* isa-l 2.30 declares @src non-const but only reads it. */
	return crc16_t10dif_copy(seed, (uint8_t *)dst + done, (uint8_t *)(uintptr_t)src + done,
				 len - done);
}

const char *nvt_crc16_impl_name(void)
{
	return crc16_fast(NVT_CRC16_MIN_FOLD) ? "vpclmul512" : "isa-l";
}

int nvt_crc16_force_impl(const char *name)
{
	crc64_init();
	if (!name || !strcmp(name, "auto") || !strcmp(name, "vpclmul512")) {
		if (name && !strcmp(name, "vpclmul512") && !nvt_crc16_fast_ok)
			return -ENOTSUP;
		__atomic_store_n(&nvt_crc16_fast, nvt_crc16_fast_ok, __ATOMIC_RELEASE);
		return 0;
	}
	if (strcmp(name, "isa-l"))
		return -EINVAL;
	__atomic_store_n(&nvt_crc16_fast, 0, __ATOMIC_RELEASE);
	return 0;
}

const char *nvt_crc64_impl_name(void)
{
	return crc64_init()->name;
}

const char *const *nvt_crc64_impl_names(void)
{
	return nvt_crc64_names;
}

int nvt_crc64_force_impl(const char *name)
{
	const struct nvt_crc64_impl *impl = NULL;

	crc64_init();
	if (!name || !strcmp(name, "auto")) {
		impl = nvt_crc64_best;
	} else {
		for (size_t i = 0; i < NVT_CRC64_NIMPLS; i++)
			if (!strcmp(name, nvt_crc64_impls[i].name))
				impl = &nvt_crc64_impls[i];
		if (!impl)
			return -EINVAL;
		if (!impl->cpu_ok())
			return -ENOTSUP;
	}
	__atomic_store_n(&nvt_crc64_cur, impl, __ATOMIC_RELEASE);
	return 0;
}
