/* SPDX-License-Identifier: BSD-3-Clause */
/* What every fuzz harness defines and may use: the libFuzzer entry points and an invariant check that aborts. */
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

#endif /* NVT_FUZZ_H */
