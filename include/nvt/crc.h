/* SPDX-License-Identifier: BSD-3-Clause */
/* Guard checksums for NVMe end-to-end protection information: CRC-16/T10-DIF and CRC-64/NVMe. */
#ifndef NVT_CRC_H
#define NVT_CRC_H

#include <stddef.h>
#include <stdint.h>

/**
 * nvt_crc16_t10dif() - CRC-16/T10-DIF of @len bytes at @buf (16b guard).
 * @seed: 0 to start; to continue over a split buffer pass the previous result.
 * @buf: data; may be NULL when @len is 0.
 * @len: number of bytes.
 *
 * Polynomial 0x8BB7, MSB first, initial value 0, no final xor, so
 * nvt_crc16_t10dif(0, "123456789", 9) == 0xD0DB and, for a buffer A||B,
 * nvt_crc16_t10dif(nvt_crc16_t10dif(0, A, a), B, b) equals the CRC of A||B.
 *
 * Return: the CRC.
 */
uint16_t nvt_crc16_t10dif(uint16_t seed, const void *buf, size_t len);

/**
 * nvt_crc16_t10dif_copy() - copy @len bytes from @src to @dst and return
 * their CRC-16/T10-DIF in one pass; seeds as above. The CRC is of the bytes
 * as stored. @dst and @src must not overlap.
 */
uint16_t nvt_crc16_t10dif_copy(uint16_t seed, void *dst, const void *src, size_t len);

/**
 * nvt_crc16_impl_name() - what computes CRC-16 of 512 bytes and more now:
 * "vpclmul512" (our AVX-512 folding, fused with the copy) or "isa-l".
 *
 * Return: a static string naming it.
 */
const char *nvt_crc16_impl_name(void);

/**
 * nvt_crc16_force_impl() - make CRC-16 use "isa-l" or "vpclmul512"; NULL
 * or "auto" for the fastest this CPU runs. For tests and benchmarks; safe
 * while other threads compute CRCs (both give the same results).
 *
 * Return: 0, -EINVAL for an unknown name, -ENOTSUP if this CPU cannot.
 */
int nvt_crc16_force_impl(const char *name);

/**
 * nvt_crc64_nvme() - CRC-64/NVMe ("Rocksoft") of @len bytes at @buf (64b guard).
 * @seed: 0 to start; to continue over a split buffer pass the previous result.
 * @buf: data; may be NULL when @len is 0.
 * @len: number of bytes.
 *
 * Polynomial 0xAD93D23594C93659, reflected in and out, initial value and
 * final xor all ones. Both are applied inside (the register starts at ~@seed
 * and the result is inverted), so a seed of 0 means "start" and the result
 * of one call is the seed of the next:
 * nvt_crc64_nvme(0, "123456789", 9) == 0xAE8B14860A799888, and
 * nvt_crc64_nvme(nvt_crc64_nvme(0, A, a), B, b) equals the CRC of A||B.
 * The fastest implementation this CPU supports is chosen on the first call.
 *
 * Return: the CRC.
 */
uint64_t nvt_crc64_nvme(uint64_t seed, const void *buf, size_t len);

/**
 * nvt_crc64_nvme_copy() - copy @len bytes from @src to @dst and return their
 * CRC-64/NVMe, seeded as nvt_crc64_nvme(). One pass where the implementation
 * fuses them (vpclmul512), else memcpy and the CRC of the copy while it is
 * in cache. The CRC is of the bytes as stored. No overlap.
 *
 * Return: the CRC.
 */
uint64_t nvt_crc64_nvme_copy(uint64_t seed, void *dst, const void *src, size_t len);

/**
 * nvt_crc64_impl_name() - the implementation nvt_crc64_nvme() uses now.
 *
 * One of "table" (portable slice-by-8), "pclmul" (128-bit folding with
 * PCLMULQDQ), "vpclmul256" (256-bit folding, AVX2 + VPCLMULQDQ) or
 * "vpclmul512" (512-bit folding, AVX-512F + VPCLMULQDQ).
 *
 * Return: a static string naming it.
 */
const char *nvt_crc64_impl_name(void);

/**
 * nvt_crc64_impl_names() - every implementation built into this binary.
 *
 * Includes those this CPU cannot run; nvt_crc64_force_impl() tells which.
 *
 * Return: a NULL-terminated static array of names, fastest last.
 */
const char *const *nvt_crc64_impl_names(void);

/**
 * nvt_crc64_force_impl() - make nvt_crc64_nvme() use one implementation.
 * @name: a name from nvt_crc64_impl_names(), or NULL or "auto" for the
 *        fastest one this CPU supports (the default).
 *
 * For tests and benchmarks. Safe to call while other threads compute CRCs:
 * they see either the old or the new implementation, and all give the same
 * results.
 *
 * Return: 0 on success, -EINVAL for an unknown name, -ENOTSUP if this CPU
 * (or this build) cannot run it; on error the current choice is kept.
 */
int nvt_crc64_force_impl(const char *name);

#endif /* NVT_CRC_H */
