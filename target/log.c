/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging to stderr with level tags and per-site rate limits. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "nvt/log.h"

enum nvt_log_level nvt_log_level_current = NVT_LOG_INFO;

static const char *const nvt_log_names[] = {
	[NVT_LOG_ERR] = "error",
	[NVT_LOG_WARN] = "warn",
	[NVT_LOG_INFO] = "info",
	[NVT_LOG_DEBUG] = "debug",
};

int nvt_log_level_parse(const char *name)
{
	for (unsigned int i = 0; i < sizeof(nvt_log_names) / sizeof(nvt_log_names[0]); i++)
		if (!strcmp(name, nvt_log_names[i]))
			return (int)i;
	return -EINVAL;
}

const char *nvt_log_level_name(enum nvt_log_level level)
{
	if ((unsigned int)level >= sizeof(nvt_log_names) / sizeof(nvt_log_names[0]))
		return "?";
	return nvt_log_names[level];
}

void nvt_log_set_level(enum nvt_log_level level)
{
	nvt_log_level_current = level;
}

void nvt_log(enum nvt_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	/* Format first, then write once, so lines from poll groups never interleave. */
	n = snprintf(line, sizeof(line), "nvtd %s: ", nvt_log_level_name(level));
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	fputs(line, stderr);
}

bool nvt_ratelimit_ok(struct nvt_ratelimit *rl)
{
	struct timespec ts;
	uint64_t now, start;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	start = atomic_load_explicit(&rl->window_start_ns, memory_order_relaxed);
	/* One thread opens the next window; the others count in the current one. */
	if (now - start >= 1000000000ull &&
	    atomic_compare_exchange_strong(&rl->window_start_ns, &start, now)) {
		uint32_t suppressed = atomic_exchange(&rl->suppressed, 0);

		if (suppressed)
			nvt_log(NVT_LOG_WARN, "%u similar messages suppressed", suppressed);
		atomic_store(&rl->printed, 0);
	}
	if (atomic_fetch_add(&rl->printed, 1) < 10)
		return true;
	atomic_fetch_add(&rl->suppressed, 1);
	return false;
}
