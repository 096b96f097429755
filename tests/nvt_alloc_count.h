/* SPDX-License-Identifier: BSD-3-Clause */
/* Counts every allocation the program makes, for tests that prove the I/O path makes none: link with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign. */
#ifndef NVT_ALLOC_COUNT_H
#define NVT_ALLOC_COUNT_H

#include <stdatomic.h>
#include <stddef.h>

/* The linker sends nvt's (and the test's) calls here instead of to libc. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t size);

/* Atomic: a test may set things up on its own thread while a poll group allocates. */
static _Atomic unsigned long nr_allocs;

void *__wrap_malloc(size_t size)
{
	nr_allocs++;
	return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	nr_allocs++;
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	nr_allocs++;
	return __real_realloc(p, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
	nr_allocs++;
	return __real_posix_memalign(p, align, size);
}

#endif /* NVT_ALLOC_COUNT_H */
