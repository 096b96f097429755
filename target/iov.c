/* SPDX-License-Identifier: BSD-3-Clause */
/* Walks over scattered buffers (iovecs): copy, compare, slice (see include/nvt/iov.h). */
#include <string.h>

#include "nvt/iov.h"

size_t nvt_iov_copy(const struct iovec *iov, unsigned int cnt, uint64_t off, void *buf, size_t len,
		    bool to_iov)
{
	uint8_t *b = buf;
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		uint8_t *p;
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		p = (uint8_t *)iov[i].iov_base + off;
		n = iov[i].iov_len - (size_t)off;
		if (n > len - done)
			n = len - done;
		if (!to_iov)
			memcpy(b + done, p, n);
		else if (b)
			memcpy(p, b + done, n);
		else
			memset(p, 0, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t nvt_iov_diff(const struct iovec *iov, unsigned int cnt, uint64_t off, const void *buf,
		    size_t len)
{
	const uint8_t *b = buf;
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		const uint8_t *p;
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		p = (const uint8_t *)iov[i].iov_base + off;
		n = iov[i].iov_len - (size_t)off;
		if (n > len - done)
			n = len - done;
		if (memcmp(p, b + done, n)) {
			for (size_t k = 0; k < n; k++)
				if (p[k] != b[done + k])
					return done + k;
		}
		done += n;
		off = 0;
	}
	return done == len ? SIZE_MAX : done;
}

unsigned int nvt_iov_slice(const struct iovec *iov, unsigned int cnt, uint64_t off, uint64_t len,
			   struct iovec *out, unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < cnt && len && n < max; i++) {
		size_t l;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		l = iov[i].iov_len - (size_t)off;
		if (l > len)
			l = (size_t)len;
		out[n++] = (struct iovec){ (uint8_t *)iov[i].iov_base + off, l };
		len -= l;
		off = 0;
	}
	return n;
}

size_t nvt_iov_len(const struct iovec *iov, unsigned int cnt)
{
	size_t len = 0;

	for (unsigned int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	return len;
}
