/* SPDX-License-Identifier: BSD-3-Clause */
/* Walks over scattered buffers (iovecs): copy, compare, slice. The one set the core, the namespace layer and the backends use. */
#ifndef NVT_IOV_H
#define NVT_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/**
 * nvt_iov_copy() - copy @len bytes between the flat buffer @buf and @iov,
 * starting @off bytes into @iov: into @iov if @to_iov (zeroes if @buf is
 * NULL), else out of it.
 * Return: the bytes copied (less than @len if @iov ends first).
 */
size_t nvt_iov_copy(const struct iovec *iov, unsigned int cnt, uint64_t off, void *buf, size_t len,
		    bool to_iov);

/**
 * nvt_iov_diff() - compare @len bytes of @iov from @off with @buf.
 * Return: the offset (from @off) of the first byte that differs, SIZE_MAX if
 * none does; where @iov ends if it ends first.
 */
size_t nvt_iov_diff(const struct iovec *iov, unsigned int cnt, uint64_t off, const void *buf,
		    size_t len);

/**
 * nvt_iov_slice() - at most @max iovecs in @out covering at most @len bytes
 * of @iov from @off on (fewer when @iov ends, or @max is reached).
 * Return: how many; nvt_iov_len() of them says how much they cover.
 */
unsigned int nvt_iov_slice(const struct iovec *iov, unsigned int cnt, uint64_t off, uint64_t len,
			   struct iovec *out, unsigned int max);

/** nvt_iov_len() - the bytes @iov holds. */
size_t nvt_iov_len(const struct iovec *iov, unsigned int cnt);

#endif /* NVT_IOV_H */
