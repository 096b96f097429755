/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for the guard CRCs: check values, every CRC-16 and CRC-64 path (plain and fused with a copy) against a bit model, chaining. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvt/crc.h"

#define MAX_LEN		4160	/* 4 KiB block + 64 bytes of metadata, past every fold width */

/* Misalignments to try: none, odd, one short of each SIMD width. */
static const size_t offsets[] = { 0, 1, 3, 7, 8, 15, 31, 63 };

#define NOFFSETS	(sizeof(offsets) / sizeof(offsets[0]))

/* Deterministic so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rng() >> 32);
}

/* Bit-at-a-time models straight from the parameter sets; nothing shared with target/crc.c. */
static uint16_t ref_crc16_step(uint16_t crc, uint8_t byte)
{
	crc ^= (uint16_t)(byte << 8);
	for (int i = 0; i < 8; i++)
		crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x8BB7 : crc << 1);
	return crc;
}

static uint16_t ref_crc16(uint16_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = ref_crc16_step(crc, *p++);
	return crc;
}

/* Register form: no inversions, so a prefix's register is the next byte's input. */
static uint64_t ref_crc64_step(uint64_t reg, uint8_t byte)
{
	reg ^= byte;
	/* 0x9A6C9329AC4BC9B5 is 0xAD93D23594C93659 bit-reversed. */
	for (int i = 0; i < 8; i++)
		reg = (reg & 1) ? (reg >> 1) ^ 0x9A6C9329AC4BC9B5ull : reg >> 1;
	return reg;
}

static uint64_t ref_crc64(uint64_t seed, const uint8_t *p, size_t len)
{
	uint64_t reg = ~seed;

	while (len--)
		reg = ref_crc64_step(reg, *p++);
	return ~reg;
}

/* Calls @fn for every CRC-64 implementation this CPU runs, forced; returns how many ran. */
static int for_each_impl(void (*fn)(const char *name, void *arg), void *arg)
{
	int ran = 0;

	for (const char *const *name = nvt_crc64_impl_names(); *name; name++) {
		int rc = nvt_crc64_force_impl(*name);

		if (rc == -ENOTSUP)
			continue;
		assert_int_equal(rc, 0);
		assert_string_equal(nvt_crc64_impl_name(), *name);
		fn(*name, arg);
		ran++;
	}
	assert_int_equal(nvt_crc64_force_impl(NULL), 0);
	return ran;
}

static int restore_auto(void **state)
{
	return nvt_crc64_force_impl(NULL);
}

#define check_crc64(got, want, name, off, len)						\
	do {										\
		uint64_t got_ = (got), want_ = (want);					\
		if (got_ != want_) {							\
			print_error("%s: offset %zu len %zu: %#018" PRIx64		\
				    " != %#018" PRIx64 "\n", (name), (size_t)(off),	\
				    (size_t)(len), got_, want_);			\
			fail();								\
		}									\
	} while (0)

/* 4 KiB patterns of the NVMe spec's guard test cases. */
enum pattern { PAT_ZERO, PAT_FF, PAT_INC, PAT_DEC };

static void fill_pattern(uint8_t *p, enum pattern pat)
{
	for (size_t i = 0; i < 4096; i++) {
		switch (pat) {
		case PAT_ZERO:
			p[i] = 0;
			break;
		case PAT_FF:
			p[i] = 0xff;
			break;
		case PAT_INC:
			p[i] = (uint8_t)i;
			break;
		case PAT_DEC:
			p[i] = (uint8_t)(0xff - i);
			break;
		}
	}
}

static void test_crc16_check(void **state)
{
	static const uint16_t want[] = {
		[PAT_ZERO] = 0x0000, [PAT_FF] = 0x8B5D, [PAT_INC] = 0x8F6D, [PAT_DEC] = 0x0430,
	};
	uint8_t *buf = malloc(4096);

	assert_non_null(buf);
	assert_int_equal(nvt_crc16_t10dif(0, "123456789", 9), 0xD0DB);
	assert_int_equal(nvt_crc16_t10dif(0x1234, NULL, 0), 0x1234);
	for (int pat = PAT_ZERO; pat <= PAT_DEC; pat++) {
		fill_pattern(buf, (enum pattern)pat);
		assert_int_equal(nvt_crc16_t10dif(0, buf, 4096), want[pat]);
		assert_int_equal(ref_crc16(0, buf, 4096), want[pat]);
	}
	free(buf);
}

/* Both CRC-16 paths this CPU runs: isa-l, and our folding (512 bytes and more). */
static const char *const crc16_impls[] = { "isa-l", "vpclmul512" };

static void test_crc16_vs_ref(void **state)
{
	uint8_t *data = malloc(MAX_LEN);

	assert_non_null(data);
	for (size_t o = 0; o < 2 * NOFFSETS; o++) {
		const char *impl = crc16_impls[o / NOFFSETS];

		if (nvt_crc16_force_impl(impl) == -ENOTSUP) {
			print_message("crc16 %s: not on this CPU\n", impl);
			break;
		}
		assert_string_equal(nvt_crc16_impl_name(), impl);
		uint16_t seed = (uint16_t)rng();
		uint16_t want = seed;

		fill_random(data, MAX_LEN);
		for (size_t len = 0; len <= MAX_LEN; len++) {
			/* Data ends where the allocation ends: ASan flags any over-read. */
			uint8_t *buf = malloc(offsets[o % NOFFSETS] + len ? offsets[o % NOFFSETS] + len : 1);

			assert_non_null(buf);
			memcpy(buf + offsets[o % NOFFSETS], data, len);
			if (nvt_crc16_t10dif(seed, buf + offsets[o % NOFFSETS], len) != want) {
				print_error("%s: offset %zu len %zu\n", impl, offsets[o % NOFFSETS], len);
				fail();
			}
			free(buf);
			if (len < MAX_LEN)
				want = ref_crc16_step(want, data[len]);
		}
	}
	free(data);
	assert_int_equal(nvt_crc16_force_impl(NULL), 0);
}

/*
 * The fused copies: the destination gets exactly the source's bytes and no
 * more (it ends where its allocation ends), and the CRC is the model's, for
 * every length around the fold widths and both CRCs on every path.
 */
static void test_crc_copy(void **state)
{
	uint8_t *src = malloc(MAX_LEN);

	assert_non_null(src);
	fill_random(src, MAX_LEN);
	for (size_t k = 0; k < 2; k++) {
		if (nvt_crc16_force_impl(crc16_impls[k]) == -ENOTSUP)
			continue;
		for (size_t len = 0; len <= MAX_LEN; len += len < 1100 ? 1 : 61) {
			uint16_t seed = (uint16_t)rng();
			uint8_t *dst = malloc(len + 1);

			assert_non_null(dst);
			assert_int_equal(nvt_crc16_t10dif_copy(seed, dst + 1, src, len),
					 ref_crc16(seed, src, len));
			assert_memory_equal(dst + 1, src, len);
			free(dst);
		}
	}
	assert_int_equal(nvt_crc16_force_impl(NULL), 0);
	for (const char *const *name = nvt_crc64_impl_names(); *name; name++) {
		if (nvt_crc64_force_impl(*name) == -ENOTSUP)
			continue;
		for (size_t len = 0; len <= MAX_LEN; len += len < 1100 ? 1 : 61) {
			uint64_t seed = rng();
			uint8_t *dst = malloc(len + 3);

			assert_non_null(dst);
			check_crc64(nvt_crc64_nvme_copy(seed, dst + 3, src, len),
				    ref_crc64(seed, src, len), *name, 3, len);
			assert_memory_equal(dst + 3, src, len);
			free(dst);
		}
	}
	assert_int_equal(nvt_crc64_force_impl(NULL), 0);
	free(src);
}

static void test_crc16_chain(void **state)
{
	uint8_t buf[3000];

	fill_random(buf, sizeof(buf));
	for (size_t split = 0; split <= sizeof(buf); split += 7) {
		uint16_t a = nvt_crc16_t10dif(0, buf, split);

		assert_int_equal(nvt_crc16_t10dif(a, buf + split, sizeof(buf) - split),
				 nvt_crc16_t10dif(0, buf, sizeof(buf)));
	}
}

static void crc64_check_one(const char *name, void *arg)
{
	static const uint64_t want[] = {
		[PAT_ZERO] = 0x6482D367EB22B64Eull, [PAT_FF] = 0xC0DDBA7302ECA3ACull,
		[PAT_INC] = 0x3E729F5F6750449Cull, [PAT_DEC] = 0x9A2DF64B8E9E517Eull,
	};
	uint8_t *buf = arg;

	check_crc64(nvt_crc64_nvme(0, "123456789", 9), 0xAE8B14860A799888ull, name, 0, 9);
	check_crc64(nvt_crc64_nvme(0x0123456789abcdefull, NULL, 0), 0x0123456789abcdefull,
		    name, 0, 0);
	for (int pat = PAT_ZERO; pat <= PAT_DEC; pat++) {
		fill_pattern(buf, (enum pattern)pat);
		check_crc64(nvt_crc64_nvme(0, buf, 4096), want[pat], name, 0, 4096);
	}
}

static void test_crc64_check(void **state)
{
	uint8_t *buf = malloc(4096);

	assert_non_null(buf);
	assert_int_equal(ref_crc64(0, (const uint8_t *)"123456789", 9), 0xAE8B14860A799888ull);
	assert_true(for_each_impl(crc64_check_one, buf) >= 1);
	free(buf);
}

struct vs_ref_case {
	const uint8_t *buf;	/* @off bytes into a malloc() block that ends with the data */
	size_t off;
	size_t len;
	uint64_t seed;
	uint64_t want;
};

static void crc64_vs_ref_one(const char *name, void *arg)
{
	const struct vs_ref_case *c = arg;

	check_crc64(nvt_crc64_nvme(c->seed, c->buf, c->len), c->want, name, c->off, c->len);
}

static void test_crc64_vs_ref(void **state)
{
	uint8_t *data = malloc(MAX_LEN);

	assert_non_null(data);
	for (size_t o = 0; o < NOFFSETS; o++) {
		/* One model pass gives the CRC of every prefix of @data. */
		uint64_t seed = o ? rng() : 0;
		uint64_t reg = ~seed;

		fill_random(data, MAX_LEN);
		for (size_t len = 0; len <= MAX_LEN; len++) {
			uint8_t *alloc = malloc(offsets[o] + len ? offsets[o] + len : 1);
			struct vs_ref_case c = {
				.off = offsets[o], .len = len, .seed = seed, .want = ~reg,
			};

			assert_non_null(alloc);
			/* Data ends where the allocation ends, so ASan sees any over-read. */
			c.buf = alloc + offsets[o];
			memcpy(alloc + offsets[o], data, len);
			for_each_impl(crc64_vs_ref_one, &c);
			free(alloc);
			if (len < MAX_LEN)
				reg = ref_crc64_step(reg, data[len]);
		}
	}
	free(data);
}

static void crc64_large_one(const char *name, void *arg)
{
	const struct vs_ref_case *c = arg;

	check_crc64(nvt_crc64_nvme(c->seed, c->buf, c->len), c->want, name, 0, c->len);
}

/* Many rounds of every main loop, plus leftovers of each narrower width. */
static void test_crc64_large(void **state)
{
	static const size_t lens[] = { 65536, 65536 + 512 + 256 + 128 + 64 + 32 + 16 + 15, 1 << 20 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *buf = malloc(lens[i]);
		struct vs_ref_case c = { .buf = buf, .len = lens[i], .seed = rng() };

		assert_non_null(buf);
		fill_random(buf, lens[i]);
		c.want = ref_crc64(c.seed, buf, lens[i]);
		for_each_impl(crc64_large_one, &c);
		free(buf);
	}
}

struct chain_case {
	const uint8_t *buf;
	size_t len;
	uint64_t want;
};

static void crc64_chain_one(const char *name, void *arg)
{
	const struct chain_case *c = arg;

	/* Every two-way split, including the empty pieces at both ends. */
	for (size_t split = 0; split <= c->len; split++) {
		uint64_t a = nvt_crc64_nvme(0, c->buf, split);

		check_crc64(nvt_crc64_nvme(a, c->buf + split, c->len - split), c->want,
			    name, split, c->len);
	}
	/* Random splits into up to eight pieces. */
	for (int round = 0; round < 200; round++) {
		uint64_t crc = 0;
		size_t pos = 0;

		for (int piece = 0; piece < 7 && pos < c->len; piece++) {
			size_t n = (size_t)(rng() % (c->len - pos + 1));

			crc = nvt_crc64_nvme(crc, c->buf + pos, n);
			pos += n;
		}
		crc = nvt_crc64_nvme(crc, c->buf + pos, c->len - pos);
		check_crc64(crc, c->want, name, pos, c->len);
	}
}

static void test_crc64_chain(void **state)
{
	static uint8_t buf[1500];
	struct chain_case c = { .buf = buf, .len = sizeof(buf) };

	fill_random(buf, sizeof(buf));
	c.want = ref_crc64(0, buf, sizeof(buf));
	assert_true(for_each_impl(crc64_chain_one, &c) >= 1);
}

/* The register carried between calls means the same thing to every implementation. */
static void test_crc64_chain_mixed(void **state)
{
	static uint8_t buf[5000];
	const char *const *names = nvt_crc64_impl_names();
	uint64_t want;

	fill_random(buf, sizeof(buf));
	want = ref_crc64(0, buf, sizeof(buf));
	for (int round = 0; round < 500; round++) {
		uint64_t crc = 0;
		size_t pos = 0;

		while (pos < sizeof(buf)) {
			size_t n = (size_t)(rng() % 1200);
			size_t nnames = 0;

			while (names[nnames])
				nnames++;
			if (n > sizeof(buf) - pos)
				n = sizeof(buf) - pos;
			/* Unsupported names leave the previous choice, which is fine here. */
			nvt_crc64_force_impl(names[rng() % nnames]);
			crc = nvt_crc64_nvme(crc, buf + pos, n);
			pos += n;
		}
		check_crc64(crc, want, "mixed", 0, sizeof(buf));
	}
	assert_int_equal(nvt_crc64_force_impl(NULL), 0);
}

static void test_crc64_force_impl(void **state)
{
	const char *const *names = nvt_crc64_impl_names();
	const char *def = nvt_crc64_impl_name();
	const char *last_ok = NULL;

	assert_non_null(names[0]);
	assert_string_equal(names[0], "table");
	assert_int_equal(nvt_crc64_force_impl("table"), 0);
	assert_string_equal(nvt_crc64_impl_name(), "table");

	assert_int_equal(nvt_crc64_force_impl("no-such-impl"), -EINVAL);
	assert_int_equal(nvt_crc64_force_impl(""), -EINVAL);
	assert_string_equal(nvt_crc64_impl_name(), "table");

	for (size_t i = 0; names[i]; i++) {
		int rc = nvt_crc64_force_impl(names[i]);

		if (rc == -ENOTSUP) {
			/* A refused name keeps the previous choice. */
			assert_string_equal(nvt_crc64_impl_name(), last_ok);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(nvt_crc64_impl_name(), names[i]);
		last_ok = names[i];
	}
#if defined(__x86_64__)
	/* Where the x86 paths are built, availability must follow the CPU. */
	__builtin_cpu_init();
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(names[i], "pclmul"))
			assert_int_equal(nvt_crc64_force_impl("pclmul") == 0,
					 __builtin_cpu_supports("pclmul") &&
					 __builtin_cpu_supports("sse4.1"));
#endif

	/* The default is the fastest (last listed) usable one. */
	assert_int_equal(nvt_crc64_force_impl("auto"), 0);
	assert_string_equal(nvt_crc64_impl_name(), def);
	assert_string_equal(def, last_ok);
	assert_int_equal(nvt_crc64_force_impl("table"), 0);
	assert_int_equal(nvt_crc64_force_impl(NULL), 0);
	assert_string_equal(nvt_crc64_impl_name(), def);
	print_message("crc64 default implementation: %s\n", def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc16_check),
		cmocka_unit_test(test_crc16_vs_ref),
		cmocka_unit_test(test_crc16_chain),
		cmocka_unit_test(test_crc_copy),
		cmocka_unit_test_teardown(test_crc64_force_impl, restore_auto),
		cmocka_unit_test_teardown(test_crc64_check, restore_auto),
		cmocka_unit_test_teardown(test_crc64_vs_ref, restore_auto),
		cmocka_unit_test_teardown(test_crc64_large, restore_auto),
		cmocka_unit_test_teardown(test_crc64_chain, restore_auto),
		cmocka_unit_test_teardown(test_crc64_chain_mixed, restore_auto),
	};

	return cmocka_run_group_tests_name("crc", tests, NULL, NULL);
}
