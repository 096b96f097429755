/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz harness for the config loader: any file is either a valid config that survives a print/load round trip, or errors of the documented form. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "nvt/config.h"
#include "nvt/log.h"

/* Config files are small; libconfig's parser is recursive, so bound the input. */
#define FUZZ_CONFIG_MAX		(64u << 10)

/*
 * libconfig 1.5 (Debian 12) leaks a string token discarded while recovering
 * from a syntax error (hyperrealm/libconfig#142, fixed in 1.7.3 by PR #155).
 * nvtd exits on a bad config, so it costs nothing there; not our finding.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	nvt_log_set_level(NVT_LOG_OFF);
	/* The loader takes a path: /proc/self/fd/N names a file that lives in memory. */
	memfd = memfd_create("nvt-fuzz-config", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	return 0;
}

static void set_file(const void *data, size_t size)
{
	nvt_fuzz_check(!ftruncate(memfd, 0), "ftruncate: %s", strerror(errno));
	nvt_fuzz_check(pwrite(memfd, data, size, 0) == (ssize_t)size, "pwrite: %s",
		       strerror(errno));
}

/*
 * One error line: "FILE:LINE: SETTING: MESSAGE" or "FILE: MESSAGE", where
 * SETTING is a path such as subsystems.[0].nqn or "syntax".
 */
static bool error_line_ok(const char *line, size_t len)
{
	size_t flen = strlen(memfd_path), i;

	if (len <= flen + 2 || memcmp(line, memfd_path, flen) || line[flen] != ':')
		return false;
	i = flen + 1;
	if (line[i] == ' ')
		return len > i + 1;		/* FILE: MESSAGE */
	if (line[i] < '0' || line[i] > '9')
		return false;
	while (i < len && line[i] >= '0' && line[i] <= '9')
		i++;
	if (i + 1 >= len || line[i] != ':' || line[i + 1] != ' ')
		return false;
	i += 2;
	/* SETTING: no spaces, at least one character, then ": " and a message. */
	{
		size_t start = i;

		while (i < len && line[i] != ':' && line[i] != ' ')
			i++;
		if (i == start || i + 2 >= len || line[i] != ':' || line[i + 1] != ' ')
			return false;
	}
	return true;
}

static void check_errors(const char *buf, size_t len, int ret)
{
	size_t lines = 0;

	for (size_t off = 0; off < len;) {
		const char *nl = memchr(buf + off, '\n', len - off);

		nvt_fuzz_check(nl, "error output ends without a newline: %.*s", (int)(len - off),
			       buf + off);
		nvt_fuzz_check(error_line_ok(buf + off, (size_t)(nl - (buf + off))),
			       "error line not \"file:line: setting: message\" or \"file: message\": %.*s",
			       (int)(nl - (buf + off)), buf + off);
		nvt_fuzz_check(!memchr(buf + off, '\0', (size_t)(nl - (buf + off))),
			       "NUL in an error line");
		lines++;
		off = (size_t)(nl - buf) + 1;
	}
	nvt_fuzz_check(ret == 0 || ret == -EINVAL || ret == -ENOMEM || ret == -EFBIG,
		       "nvt_config_load returned %d", ret);
	nvt_fuzz_check(ret ? lines > 0 : lines == 0, "returned %d with %zu error line(s)", ret,
		       lines);
}

/* Load the memfd; errors are collected into *errs. */
static int load(struct nvt_config *cfg, char **errs, size_t *errs_len)
{
	FILE *errf = open_memstream(errs, errs_len);
	int ret;

	nvt_fuzz_check(errf, "open_memstream");
	ret = nvt_config_load(memfd_path, cfg, errf);
	fclose(errf);
	return ret;
}

static char *print(const struct nvt_config *cfg, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	nvt_fuzz_check(f, "open_memstream");
	nvt_config_print(cfg, f);
	fclose(f);
	return text;
}

/* The first line of a printed config names the file it came from: skip it. */
static size_t first_line_len(const char *s)
{
	return strcspn(s, "\n") + (s[strcspn(s, "\n")] ? 1 : 0);
}

/*
 * Secrets are never printed: a host whose keys were left out carries a
 * comment saying so, which the reloaded config (without the keys) does not
 * print again. Cut those comments before comparing. (That no key text is
 * printed is not an invariant here: the fuzzer copies a key into an NQN or
 * a model, which is printed; nvtd_check_config and config_test check it.)
 */
static void strip_secret_notes(char *s)
{
	static const char note[] = " # dhchap_key", tail[] = "given, not shown";
	size_t r = 0, w = 0;

	while (s[r]) {
		size_t eol = r + strcspn(s + r, "\n");

		/* The note ends its line; the same words inside a string (a serial, a model) do not. */
		if (!strncmp(s + r, note, sizeof(note) - 1) && eol - r >= sizeof(tail) - 1 &&
		    !strncmp(s + eol - (sizeof(tail) - 1), tail, sizeof(tail) - 1)) {
			r = eol;
			continue;
		}
		s[w++] = s[r++];
	}
	s[w] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvt_config cfg, again;
	char *errs = NULL, *text, *text2;
	size_t errs_len = 0, len, len2;
	int ret;

	if (memfd < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size > FUZZ_CONFIG_MAX)
		return 0;
	set_file(data, size);
	ret = load(&cfg, &errs, &errs_len);
	check_errors(errs, errs_len, ret);
	free(errs);
	if (ret) {
		/* Zeroed on failure: freeing it again must be harmless. */
		nvt_config_free(&cfg);
		return 0;
	}
	/* `nvtd --check-config` prints a complete config: it must load as the same one. */
	text = print(&cfg, &len);
	set_file(text, len);
	errs = NULL;
	ret = load(&again, &errs, &errs_len);
	nvt_fuzz_check(!ret, "the printed config does not load: %.*s\n--- printed:\n%s",
		       (int)errs_len, errs, text);
	free(errs);
	text2 = print(&again, &len2);
	strip_secret_notes(text);
	nvt_fuzz_check(!strcmp(text + first_line_len(text), text2 + first_line_len(text2)),
		       "print/load/print differs:\n--- first:\n%s\n--- second:\n%s", text, text2);
	free(text);
	free(text2);
	nvt_config_free(&again);
	nvt_config_free(&cfg);
	return 0;
}
