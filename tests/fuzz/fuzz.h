/* SPDX-License-Identifier: BSD-3-Clause */
/* What every fuzz harness defines and may use: the libFuzzer entry points, an invariant check that aborts, an input reader. */
#ifndef NVT_FUZZ_H
#define NVT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called once per input by libFuzzer, or by replay_main.c for each corpus file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Called once before the first input; optional (weak), replay_main.c calls it too. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/*
 * An invariant the code under test broke: say which and abort, so libFuzzer
 * saves the input and the replay test fails (assert() would vanish with NDEBUG).
 */
#define nvt_fuzz_check(cond, ...)						\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: invariant broken: %s: ",	\
				__FILE__, __LINE__, #cond);			\
			fprintf(stderr, __VA_ARGS__);				\
			fputc('\n', stderr);					\
			abort();						\
		}								\
	} while (0)

/* One input, read front to back by the program harnesses; past its end it reads as zeroes. */
struct nvt_fuzz_input {
	const uint8_t *p;
	size_t n, i;
};

static inline uint8_t nvt_fuzz_u8(struct nvt_fuzz_input *in)
{
	return in->i < in->n ? in->p[in->i++] : 0;
}

static inline uint16_t nvt_fuzz_u16(struct nvt_fuzz_input *in)
{
	return (uint16_t)(nvt_fuzz_u8(in) | nvt_fuzz_u8(in) << 8);
}

static inline uint32_t nvt_fuzz_u32(struct nvt_fuzz_input *in)
{
	return (uint32_t)nvt_fuzz_u16(in) | (uint32_t)nvt_fuzz_u16(in) << 16;
}

#endif /* NVT_FUZZ_H */
