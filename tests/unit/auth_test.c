/* SPDX-License-Identifier: BSD-3-Clause */
/* DH-HMAC-CHAP computations (target/auth.c) against values computed independently: libnvme's key transformation, OpenSSL one-shot HMACs, a bitwise CRC-32. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <nvme/linux.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "nvt/auth.h"
#include "../nvt_test_dhchap.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0c468c4d-a385-47e0-8299-6e95051277db"
#define SUBNQN	"nqn.2026-01.io.nvt:auth"

static void test_crc_reference(void **state)
{
	(void)state;
	/* The CRC-32 check value: the reference itself is right. */
	assert_int_equal(nvt_test_crc32((const uint8_t *)"123456789", 9), 0xcbf43926u);
}

static void test_parse_secret(void **state)
{
	static const size_t lens[] = { 32, 48, 64 };
	struct nvt_dhchap_key k;
	uint8_t key[64];
	char s[160];

	(void)state;
	for (int hash = 0; hash <= 3; hash++) {
		for (unsigned int i = 0; i < 3; i++) {
			nvt_test_fill(key, lens[i], (uint8_t)(hash * 16 + i));
			nvt_test_make_secret(s, sizeof(s), hash, key, lens[i], 0);
			assert_null(nvt_dhchap_parse_secret(s, &k));
			assert_int_equal(k.len, lens[i]);
			assert_int_equal(k.hash, hash);
			assert_memory_equal(k.key, key, lens[i]);
		}
	}
	/* A flipped CRC bit, a flipped key character, the wrong hash, shapes. */
	nvt_test_fill(key, 32, 1);
	nvt_test_make_secret(s, sizeof(s), 1, key, 32, 1);
	assert_non_null(nvt_dhchap_parse_secret(s, &k));
	nvt_test_make_secret(s, sizeof(s), 1, key, 32, 0);
	s[12] = s[12] == 'A' ? 'B' : 'A';
	assert_non_null(nvt_dhchap_parse_secret(s, &k));
	nvt_test_make_secret(s, sizeof(s), 1, key, 32, 0);
	s[8] = '4';
	assert_non_null(nvt_dhchap_parse_secret(s, &k));
	nvt_test_make_secret(s, sizeof(s), 1, key, 32, 0);
	s[strlen(s) - 1] = 0;
	assert_non_null(nvt_dhchap_parse_secret(s, &k));
	nvt_test_make_secret(s, sizeof(s), 1, key, 32, 0);
	s[20] = '*';
	assert_non_null(nvt_dhchap_parse_secret(s, &k));
	nvt_test_make_secret(s, sizeof(s), 1, key, 16, 0);
	assert_non_null(nvt_dhchap_parse_secret(s, &k));
	assert_non_null(nvt_dhchap_parse_secret("DHHC-2:01:AAAA:", &k));
	assert_non_null(nvt_dhchap_parse_secret("", &k));
	/* The key itself never comes back in a message. */
	nvt_test_make_secret(s, sizeof(s), 1, key, 32, 1);
	assert_null(strstr(nvt_dhchap_parse_secret(s, &k), s + 10));
}

/* Our transformation against libnvme's nvme_gen_dhchap_key (its own OpenSSL HMAC). */
static void test_transform_vs_libnvme(void **state)
{
	static const size_t lens[] = { 32, 48, 64 };
	struct nvt_dhchap_key k = { 0 };
	uint8_t ours[64], theirs[64];
	unsigned int checked = 0;
	size_t n;

	(void)state;
	for (int hash = 1; hash <= 3; hash++) {
		for (unsigned int i = 0; i < 3; i++) {
			nvt_test_fill(k.key, lens[i], (uint8_t)(hash + i));
			k.len = lens[i];
			k.hash = (uint8_t)hash;
			assert_int_equal(nvt_dhchap_transform(&k, HOSTNQN, ours, &n), 0);
			assert_int_equal(n, nvt_dhchap_hash_len((uint8_t)hash));
			/* libnvme takes one length for the secret and its output: equal lengths only. */
			if (lens[i] != n)
				continue;
			assert_int_equal(nvme_gen_dhchap_key((char *)HOSTNQN, (enum nvme_hmac_alg)hash,
							     (unsigned int)n, k.key, theirs), 0);
			checked++;
			assert_memory_equal(ours, theirs, n);
		}
	}
	assert_int_equal(checked, 3);
	/* Hash 00: the key is used as it is. */
	k.hash = 0;
	k.len = 48;
	assert_int_equal(nvt_dhchap_transform(&k, HOSTNQN, ours, &n), 0);
	assert_int_equal(n, 48);
	assert_memory_equal(ours, k.key, 48);
}

static const EVP_MD *md_of(uint8_t hash)
{
	return hash == 1 ? EVP_sha256() : hash == 2 ? EVP_sha384() : EVP_sha512();
}

/* The response, as NVMe 2.0 §8.13.5.5 lays out the HMAC's input, built in one buffer. */
static void test_response(void **state)
{
	uint8_t key[64], chal[64], ours[64], want[64], in[600];
	unsigned int wl = 0;

	(void)state;
	nvt_test_fill(key, sizeof(key), 9);
	nvt_test_fill(chal, sizeof(chal), 77);
	for (uint8_t hash = 1; hash <= 3; hash++) {
		size_t hl = nvt_dhchap_hash_len(hash), n = 0;

		memcpy(in, chal, hl);
		n = hl;
		memcpy(in + n, "\x78\x56\x34\x12", 4);	/* seq 12345678h, little-endian */
		n += 4;
		memcpy(in + n, "\x02\x01", 2);		/* tid 0102h */
		n += 2;
		in[n++] = 0;				/* SC_C */
		memcpy(in + n, "HostHost", 8);
		n += 8;
		memcpy(in + n, HOSTNQN, strlen(HOSTNQN));
		n += strlen(HOSTNQN);
		in[n++] = 0;
		memcpy(in + n, SUBNQN, strlen(SUBNQN));
		n += strlen(SUBNQN);
		assert_non_null(HMAC(md_of(hash), key, (int)hl, in, n, want, &wl));
		assert_int_equal(nvt_dhchap_response(hash, key, hl, chal, 0x12345678, 0x0102, 0,
						     "HostHost", HOSTNQN, SUBNQN, ours), 0);
		assert_int_equal(wl, hl);
		assert_memory_equal(ours, want, hl);
		/* Any input changed: another value. */
		assert_int_equal(nvt_dhchap_response(hash, key, hl, chal, 0x12345679, 0x0102, 0,
						     "HostHost", HOSTNQN, SUBNQN, ours), 0);
		assert_memory_not_equal(ours, want, hl);
	}
	assert_int_not_equal(nvt_dhchap_response(4, key, 32, chal, 1, 1, 0, "HostHost", HOSTNQN,
						 SUBNQN, ours), 0);
}

static void test_augment(void **state)
{
	uint8_t skey[256], chal[64], hk[64], want[64], ours[64];
	unsigned int wl = 0, hkl = 0;

	(void)state;
	nvt_test_fill(skey, sizeof(skey), 3);
	nvt_test_fill(chal, sizeof(chal), 5);
	for (uint8_t hash = 1; hash <= 3; hash++) {
		size_t hl = nvt_dhchap_hash_len(hash);

		assert_int_equal(EVP_Digest(skey, sizeof(skey), hk, &hkl, md_of(hash), NULL), 1);
		assert_non_null(HMAC(md_of(hash), hk, (int)hkl, chal, hl, want, &wl));
		assert_int_equal(nvt_dhchap_augment(hash, skey, sizeof(skey), chal, ours), 0);
		assert_memory_equal(ours, want, hl);
	}
}

/* Two parties of each FFDHE group agree; values outside the group are refused. */
static void test_dh(void **state)
{
	(void)state;
	for (uint8_t g = 1; g <= 5; g++) {
		size_t len = nvt_dh_len(g);
		struct nvt_dh *a = nvt_dh_new(g), *b = nvt_dh_new(g);
		uint8_t pa[1024], pb[1024], sa[1024], sb[1024], bad[1024];

		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(nvt_dh_public(a, pa, len), 0);
		assert_int_equal(nvt_dh_public(b, pb, len), 0);
		assert_memory_not_equal(pa, pb, len);
		assert_int_equal(nvt_dh_derive(a, pb, len, sa, len), 0);
		assert_int_equal(nvt_dh_derive(b, pa, len, sb, len), 0);
		assert_memory_equal(sa, sb, len);
		memset(bad, 0, len);
		bad[len - 1] = 1;	/* y = 1 */
		assert_int_not_equal(nvt_dh_derive(a, bad, len, sa, len), 0);
		assert_int_not_equal(nvt_dh_derive(a, pb, len - 1, sa, len), 0);
		nvt_dh_free(a);
		nvt_dh_free(b);
	}
	assert_null(nvt_dh_new(0));
	assert_null(nvt_dh_new(6));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_reference),
		cmocka_unit_test(test_parse_secret),
		cmocka_unit_test(test_transform_vs_libnvme),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_augment),
		cmocka_unit_test(test_dh),
	};

	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
