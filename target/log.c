/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging to stderr with level tags (or journald's syslog priorities) and per-site rate limits. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* RFC 5424 severities, which journald reads from a "<N>" at the start of a line. */
static const int nvt_log_syslog_prio[] = {
	[NVT_LOG_ERR] = 3,
	[NVT_LOG_WARN] = 4,
	[NVT_LOG_INFO] = 6,
	[NVT_LOG_DEBUG] = 7,
};

/* Set once by nvt_log_init() before threads exist. */
static bool nvt_log_journal;

/* "DEV:INO" in decimal, as systemd writes $JOURNAL_STREAM; nothing else is accepted. */
static bool nvt_log_parse_stream(const char *s, unsigned long long *dev, unsigned long long *ino)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*dev = strtoull(s, &end, 10);
	if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	*ino = strtoull(end + 1, &end, 10);
	return !errno && !*end;
}

void nvt_log_init(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/*
	 * The variable alone is not enough: it is inherited by anything
	 * started from a service, whose stderr may since have been pointed
	 * at a file or a terminal (systemd.exec(5), sd_journal_stream_fd(3)).
	 */
	nvt_log_journal = env && nvt_log_parse_stream(env, &dev, &ino) &&
			  !fstat(STDERR_FILENO, &st) &&
			  (unsigned long long)st.st_dev == dev &&
			  (unsigned long long)st.st_ino == ino;
}

/* A nvt_log_stream(): the priority to put before each line, and where a line starts. */
struct nvt_log_cookie {
	int prio;
	bool at_line_start;
};

static ssize_t nvt_log_cookie_write(void *arg, const char *buf, size_t size)
{
	struct nvt_log_cookie *c = arg;
	size_t done = 0;

	while (done < size) {
		const char *nl = memchr(buf + done, '\n', size - done);
		size_t len = nl ? (size_t)(nl - (buf + done)) + 1 : size - done;

		if (c->at_line_start)
			fprintf(stderr, "<%d>", c->prio);
		if (fwrite(buf + done, 1, len, stderr) != len)
			return done ? (ssize_t)done : -1;
		c->at_line_start = nl != NULL;
		done += len;
	}
	return (ssize_t)size;
}

static int nvt_log_cookie_close(void *arg)
{
	free(arg);
	return 0;
}

FILE *nvt_log_stream(enum nvt_log_level level)
{
	static const cookie_io_functions_t fns = {
		.write = nvt_log_cookie_write,
		.close = nvt_log_cookie_close,
	};
	struct nvt_log_cookie *c;
	FILE *f;

	if (!nvt_log_journal || (unsigned int)level >= sizeof(nvt_log_syslog_prio) / sizeof(int))
		return stderr;
	c = malloc(sizeof(*c));
	if (!c)
		return stderr;
	c->prio = nvt_log_syslog_prio[level];
	c->at_line_start = true;
	f = fopencookie(c, "w", fns);
	if (!f) {
		free(c);
		return stderr;
	}
	/* A line at a time, so they interleave with nvt_log()'s as they were printed. */
	setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

void nvt_log_stream_close(FILE *f)
{
	if (f && f != stderr)
		fclose(f);
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
	/* journald names the unit and the pid itself; the priority replaces the level word. */
	if (nvt_log_journal && (unsigned int)level < sizeof(nvt_log_syslog_prio) / sizeof(int))
		n = snprintf(line, sizeof(line), "<%d>", nvt_log_syslog_prio[level]);
	else
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
