/* SPDX-License-Identifier: BSD-3-Clause */
/* The one logging interface: levels, a per-file prefix, debug flags, data-path rate limits. */
#ifndef NVT_LOG_H
#define NVT_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum nvt_log_level {
	NVT_LOG_OFF	= -1,	/* nothing at all: for tests that provoke errors on purpose */
	NVT_LOG_ERR	= 0,	/* something failed; the daemon keeps serving */
	NVT_LOG_WARN	= 1,	/* a peer or a file did something wrong */
	NVT_LOG_INFO	= 2,	/* lifecycle: listeners, controllers, shutdown */
	NVT_LOG_DEBUG	= 3,	/* per-command tracing; never on by default */
};

extern enum nvt_log_level nvt_log_level_current;

/**
 * nvt_log_level_parse() - map "error", "warn", "info", "debug" to a level.
 * Return: the level, or -EINVAL for an unknown name.
 */
int nvt_log_level_parse(const char *name);

/** nvt_log_level_name() - the name nvt_log_level_parse() accepts for @level. */
const char *nvt_log_level_name(enum nvt_log_level level);

/** nvt_log_set_level() - messages above @level are dropped. */
void nvt_log_set_level(enum nvt_log_level level);

/**
 * nvt_log_init() - choose how lines are tagged: with a syslog priority
 * ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug) when stderr is
 * journald's stream, i.e. $JOURNAL_STREAM names stderr's device and inode
 * (systemd.exec(5)); otherwise "nvtd LEVEL: " as always. Call it once,
 * before any thread logs; without it lines keep the plain format.
 */
void nvt_log_init(void);

/**
 * nvt_log_stream() - a FILE for code that prints whole lines of its own to
 * stderr (the configuration loader's "file:line: setting: message"): on
 * journald's stream every line gets @level's "<N>" priority, elsewhere it is
 * stderr itself and the lines are unchanged.
 * Return: the stream (stderr if one cannot be made); give it back with
 * nvt_log_stream_close().
 */
FILE *nvt_log_stream(enum nvt_log_level level);

/** nvt_log_stream_close() - flush and release what nvt_log_stream() returned. */
void nvt_log_stream_close(FILE *f);

/** nvt_log() - print one line to stderr with a level tag; use the macros below. */
void nvt_log(enum nvt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Per-message token bucket so a flood of bad commands costs one line per second. */
struct nvt_ratelimit {
	_Atomic uint64_t window_start_ns;	/* sites are shared by every poll group */
	_Atomic uint32_t printed;
	_Atomic uint32_t suppressed;
};

/** nvt_ratelimit_ok() - true if a message may be printed now (10 per second per site). */
bool nvt_ratelimit_ok(struct nvt_ratelimit *rl);

#ifndef NVT_LOG_PREFIX
#define NVT_LOG_PREFIX ""
#endif

#define nvt_log_at(level, fmt, ...)						\
	do {									\
		if ((level) <= nvt_log_level_current)				\
			nvt_log((level), NVT_LOG_PREFIX fmt, ##__VA_ARGS__);	\
	} while (0)

#define nvt_err(fmt, ...)	nvt_log_at(NVT_LOG_ERR, fmt, ##__VA_ARGS__)
#define nvt_warn(fmt, ...)	nvt_log_at(NVT_LOG_WARN, fmt, ##__VA_ARGS__)
#define nvt_info(fmt, ...)	nvt_log_at(NVT_LOG_INFO, fmt, ##__VA_ARGS__)
#define nvt_dbg(fmt, ...)	nvt_log_at(NVT_LOG_DEBUG, fmt, ##__VA_ARGS__)

/* One rate-limited site: each expansion owns its own bucket. */
#define nvt_warn_ratelimited(fmt, ...)						\
	do {									\
		static struct nvt_ratelimit _rl;				\
		if (NVT_LOG_WARN <= nvt_log_level_current &&			\
		    nvt_ratelimit_ok(&_rl))					\
			nvt_log(NVT_LOG_WARN, NVT_LOG_PREFIX fmt, ##__VA_ARGS__); \
	} while (0)

#endif /* NVT_LOG_H */
