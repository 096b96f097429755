/* SPDX-License-Identifier: BSD-3-Clause */
/* Test-side DH-HMAC-CHAP secrets, made independently of target/auth.c: a bitwise CRC-32 and OpenSSL's base64. */
#ifndef NVT_TEST_DHCHAP_H
#define NVT_TEST_DHCHAP_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

/* The reflected IEEE CRC-32, bit by bit. */
static inline uint32_t nvt_test_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

/* A secret as nvme gen-dhchap-key writes it, DHHC-1:hh:base64(key || LE crc32 ^ @crc_xor):. */
static inline void nvt_test_make_secret(char *out, size_t out_len, int hash, const uint8_t *key,
					size_t len, uint32_t crc_xor)
{
	uint8_t buf[68];
	char b64[100];
	uint32_t crc = nvt_test_crc32(key, len) ^ crc_xor;

	memcpy(buf, key, len);
	buf[len] = (uint8_t)crc;
	buf[len + 1] = (uint8_t)(crc >> 8);
	buf[len + 2] = (uint8_t)(crc >> 16);
	buf[len + 3] = (uint8_t)(crc >> 24);
	EVP_EncodeBlock((unsigned char *)b64, buf, (int)len + 4);
	snprintf(out, out_len, "DHHC-1:%02d:%s:", hash, b64);
}

static inline void nvt_test_fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

#endif /* NVT_TEST_DHCHAP_H */
