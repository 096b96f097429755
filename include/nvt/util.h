/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers every folder uses: container_of, array sizes, bounded string copies. */
#ifndef NVT_UTIL_H
#define NVT_UTIL_H

#include <stddef.h>
#include <string.h>

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define NVT_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Copy at most @size - 1 bytes and always NUL-terminate (strncpy does neither well). */
static inline void nvt_strscpy(char *dst, const char *src, size_t size)
{
	size_t n = 0;

	/* A byte loop: the source may be shorter than @size, never longer. */
	while (n + 1 < size && src[n]) {
		dst[n] = src[n];
		n++;
	}
	dst[n] = '\0';
}

#endif /* NVT_UTIL_H */
