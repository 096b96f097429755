/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtctl stats and top: fetch nvtd's counter records, render them as a table or JSON, or as top-like interval rates. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nvt/stats.h"
#include "nvtctl.h"

#define NVTCTL_NQN_MAX	256

/* One counter set as nvtd reported it: a namespace or an I/O queue. */
struct nvtctl_set {
	bool is_queue;
	char nqn[NVTCTL_NQN_MAX];
	uint32_t nsid;
	unsigned int cntlid, qid;
	char host[NVTCTL_NQN_MAX];
	struct nvt_io_stats_snap s;
};

struct nvtctl_snap {
	struct nvtctl_set *sets;
	size_t nr, cap;
	char note[512];		/* nvtd left sets out */
	double t;		/* CLOCK_MONOTONIC seconds when fetched */
};

/* Send @cmd, read the whole reply into a NUL-terminated buffer. Return: 0 or -errno. */
static int nvtctl_fetch(const char *sock, const char *cmd, char **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 65536, n = strlen(cmd);
	char *buf = malloc(cap);
	ssize_t r;
	int fd;

	if (!buf)
		return -ENOMEM;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		free(buf);
		return -err;
	}
	if (send(fd, cmd, n, MSG_NOSIGNAL) != (ssize_t)n) {
		int err = errno ? errno : EIO;

		close(fd);
		free(buf);
		return -err;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				close(fd);
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static struct nvtctl_set *nvtctl_new_set(struct nvtctl_snap *sn, const char *nqn)
{
	struct nvtctl_set *set;

	if (sn->nr == sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 16;
		struct nvtctl_set *ns = realloc(sn->sets, cap * sizeof(*ns));

		if (!ns)
			return NULL;
		sn->sets = ns;
		sn->cap = cap;
	}
	set = &sn->sets[sn->nr++];
	memset(set, 0, sizeof(*set));
	snprintf(set->nqn, sizeof(set->nqn), "%s", nqn);
	return set;
}

static void nvtctl_parse_io(struct nvt_io_stats_snap *s, char *p)
{
	static const struct { const char *k; size_t off; } keys[] = {
		{ "reads", offsetof(struct nvt_io_stats_snap, cmds[NVT_STAT_READ]) },
		{ "writes", offsetof(struct nvt_io_stats_snap, cmds[NVT_STAT_WRITE]) },
		{ "other", offsetof(struct nvt_io_stats_snap, cmds[NVT_STAT_OTHER]) },
		{ "bytes_read", offsetof(struct nvt_io_stats_snap, bytes_read) },
		{ "bytes_written", offsetof(struct nvt_io_stats_snap, bytes_written) },
		{ "qd", offsetof(struct nvt_io_stats_snap, qd) },
		{ "qd_max", offsetof(struct nvt_io_stats_snap, qd_max) },
		{ "lat_sum_ns", offsetof(struct nvt_io_stats_snap, lat_sum_ns) },
		{ "lat_max_ns", offsetof(struct nvt_io_stats_snap, lat_max_ns) },
	};
	char *save = NULL;

	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq = '\0';
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strcmp(tok, keys[i].k))
				*(uint64_t *)((char *)s + keys[i].off) = strtoull(eq + 1, NULL, 10);
	}
}

static void nvtctl_parse_err(struct nvt_io_stats_snap *s, char *p)
{
	char *save = NULL;

	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq = '\0';
		for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
			if (!strcmp(tok, nvt_stat_err_name(e)))
				s->errors[e] += strtoull(eq + 1, NULL, 10);
	}
}

static void nvtctl_parse_hist(struct nvt_io_stats_snap *s, char *p)
{
	char *save = NULL;

	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *colon = strchr(tok, ':');
		unsigned long b;

		if (!colon)
			continue;
		b = strtoul(tok, NULL, 10);
		if (b < NVT_HIST_BUCKETS)
			s->hist[b] += strtoull(colon + 1, NULL, 10);
	}
}

/*
 * Parse nvtd's stats records. Return: 0, 1 if nvtd answered with an error
 * (printed to stderr), -errno.
 */
static int nvtctl_snapshot(const char *sock, const char *cmd, struct nvtctl_snap *sn)
{
	char *reply = NULL, *save = NULL, nqn[NVTCTL_NQN_MAX] = "", last[512] = "";
	struct nvtctl_set *cur = NULL;
	struct timespec ts;
	int ret = nvtctl_fetch(sock, cmd, &reply);

	if (ret)
		return ret;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sn->t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	sn->nr = 0;
	sn->note[0] = '\0';
	for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		snprintf(last, sizeof(last), "%s", line);
		if (!strncmp(line, "subsys ", 7)) {
			snprintf(nqn, sizeof(nqn), "%s", line + 7);
			cur = NULL;
		} else if (!strncmp(line, "ns ", 3)) {
			cur = nvtctl_new_set(sn, nqn);
			if (!cur)
				goto out_nomem;
			cur->nsid = (uint32_t)strtoul(line + 3, NULL, 10);
		} else if (!strncmp(line, "queue ", 6)) {
			cur = nvtctl_new_set(sn, nqn);
			if (!cur)
				goto out_nomem;
			cur->is_queue = true;
			sscanf(line + 6, "%u %u", &cur->cntlid, &cur->qid);
		} else if (!strncmp(line, "note: ", 6)) {
			snprintf(sn->note, sizeof(sn->note), "%s", line + 6);
		} else if (cur && !strncmp(line, " host ", 6)) {
			snprintf(cur->host, sizeof(cur->host), "%s", line + 6);
		} else if (cur && !strncmp(line, " io ", 4)) {
			nvtctl_parse_io(&cur->s, line + 4);
		} else if (cur && !strncmp(line, " err ", 5)) {
			nvtctl_parse_err(&cur->s, line + 5);
		} else if (cur && !strncmp(line, " hist ", 6)) {
			nvtctl_parse_hist(&cur->s, line + 6);
		}
	}
	free(reply);
	if (strncmp(last, "ok", 2)) {
		fprintf(stderr, "nvtctl: %s\n", last[0] ? last : "no reply");
		return 1;
	}
	return 0;
out_nomem:
	free(reply);
	return -ENOMEM;
}

static uint64_t nvtctl_errors(const struct nvt_io_stats_snap *s)
{
	uint64_t n = 0;

	for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
		n += s->errors[e];
	return n;
}

/* Latency in microseconds, as a table or JSON shows it. */
static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void nvtctl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void nvtctl_json_set(FILE *f, const struct nvtctl_set *set)
{
	const struct nvt_io_stats_snap *s = &set->s;
	uint64_t n = s->cmds[0] + s->cmds[1] + s->cmds[2];

	fprintf(f, "    {\"subsystem\": ");
	nvtctl_json_str(f, set->nqn);
	if (set->is_queue) {
		fprintf(f, ", \"cntlid\": %u, \"qid\": %u, \"host\": ", set->cntlid, set->qid);
		nvtctl_json_str(f, set->host);
	} else {
		fprintf(f, ", \"nsid\": %u", set->nsid);
	}
	fprintf(f, ",\n     \"reads\": %" PRIu64 ", \"writes\": %" PRIu64 ", \"other\": %" PRIu64
		", \"bytes_read\": %" PRIu64 ", \"bytes_written\": %" PRIu64
		", \"queue_depth\": %" PRIu64 ", \"queue_depth_max\": %" PRIu64 ",\n     \"errors\": {",
		s->cmds[NVT_STAT_READ], s->cmds[NVT_STAT_WRITE], s->cmds[NVT_STAT_OTHER],
		s->bytes_read, s->bytes_written, s->qd, s->qd_max);
	for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
		fprintf(f, "%s\"%s\": %" PRIu64, e ? ", " : "", nvt_stat_err_name(e), s->errors[e]);
	fprintf(f, "},\n     \"pi_errors\": {\"guard\": %" PRIu64 ", \"app_tag\": %" PRIu64
		", \"ref_tag\": %" PRIu64 "},\n",
		s->errors[NVT_STAT_ERR_PI_GUARD], s->errors[NVT_STAT_ERR_PI_APPTAG],
		s->errors[NVT_STAT_ERR_PI_REFTAG]);
	fprintf(f, "     \"latency_us\": {\"mean\": %.3f, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f"
		", \"p99.9\": %.3f, \"max\": %.3f}}",
		n ? us(s->lat_sum_ns) / (double)n : 0.0, us(nvt_stats_percentile(s, 500)),
		us(nvt_stats_percentile(s, 900)), us(nvt_stats_percentile(s, 990)),
		us(nvt_stats_percentile(s, 999)), us(s->lat_max_ns));
}

static void nvtctl_json(FILE *f, const struct nvtctl_snap *sn)
{
	bool first;

	fprintf(f, "{\n  \"namespaces\": [");
	first = true;
	for (size_t i = 0; i < sn->nr; i++)
		if (!sn->sets[i].is_queue) {
			fprintf(f, "%s\n", first ? "" : ",");
			nvtctl_json_set(f, &sn->sets[i]);
			first = false;
		}
	fprintf(f, "\n  ],\n  \"queues\": [");
	first = true;
	for (size_t i = 0; i < sn->nr; i++)
		if (sn->sets[i].is_queue) {
			fprintf(f, "%s\n", first ? "" : ",");
			nvtctl_json_set(f, &sn->sets[i]);
			first = false;
		}
	fprintf(f, "\n  ],\n  \"truncated\": %s\n}\n", sn->note[0] ? "true" : "false");
}

static void nvtctl_table_row(FILE *f, const char *who, const struct nvt_io_stats_snap *s)
{
	fprintf(f, "%-12s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %10.1f %10.1f %6" PRIu64
		" %4" PRIu64 "/%-4" PRIu64 " %8.0f %8.0f %8.0f %8.0f %9.0f\n",
		who, s->cmds[NVT_STAT_READ], s->cmds[NVT_STAT_WRITE], s->cmds[NVT_STAT_OTHER],
		(double)s->bytes_read / 1e6, (double)s->bytes_written / 1e6, nvtctl_errors(s), s->qd,
		s->qd_max, us(nvt_stats_percentile(s, 500)), us(nvt_stats_percentile(s, 900)),
		us(nvt_stats_percentile(s, 990)), us(nvt_stats_percentile(s, 999)),
		us(s->lat_max_ns));
	if (nvtctl_errors(s)) {
		fprintf(f, "%-12s errors:", "");
		for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
			if (s->errors[e])
				fprintf(f, " %s=%" PRIu64, nvt_stat_err_name(e), s->errors[e]);
		fputc('\n', f);
	}
}

static void nvtctl_table(FILE *f, const struct nvtctl_snap *sn)
{
	static const char hdr[] = "%-12s %10s %10s %8s %10s %10s %6s %9s %8s %8s %8s %8s %9s\n";
	const char *nqn = NULL;
	char who[64];

	for (size_t i = 0; i < sn->nr; i++) {
		const struct nvtctl_set *set = &sn->sets[i];

		if (!nqn || strcmp(nqn, set->nqn) || (set->is_queue && (!i || !sn->sets[i - 1].is_queue))) {
			nqn = set->nqn;
			fprintf(f, "%s%s %s\n", i ? "\n" : "", set->is_queue ? "queues of" : "subsystem", nqn);
			fprintf(f, hdr, set->is_queue ? "CNTLID:QID" : "NSID", "READS", "WRITES", "OTHER",
				"READ_MB", "WRITE_MB", "ERRORS", "QD/MAX", "P50_US", "P90_US", "P99_US",
				"P99.9_US", "MAX_US");
		}
		if (set->is_queue)
			snprintf(who, sizeof(who), "%u:%u", set->cntlid, set->qid);
		else
			snprintf(who, sizeof(who), "%u", set->nsid);
		nvtctl_table_row(f, who, &set->s);
		if (set->is_queue)
			fprintf(f, "%-12s host %s\n", "", set->host);
	}
	if (sn->note[0])
		fprintf(f, "note: %s\n", sn->note);
}

/* @b - @a, counter by counter (a set that restarted counts from zero). */
static void nvtctl_diff(struct nvt_io_stats_snap *d, const struct nvt_io_stats_snap *b,
			const struct nvt_io_stats_snap *a)
{
#define NVTCTL_SUB(x) ((b->x) >= (a ? (a->x) : 0) ? (b->x) - (a ? (a->x) : 0) : (b->x))
	for (unsigned int i = 0; i < NVT_STAT_KINDS; i++)
		d->cmds[i] = NVTCTL_SUB(cmds[i]);
	d->bytes_read = NVTCTL_SUB(bytes_read);
	d->bytes_written = NVTCTL_SUB(bytes_written);
	for (unsigned int i = 0; i < NVT_STAT_ERRS; i++)
		d->errors[i] = NVTCTL_SUB(errors[i]);
	for (unsigned int i = 0; i < NVT_HIST_BUCKETS; i++)
		d->hist[i] = NVTCTL_SUB(hist[i]);
	d->lat_sum_ns = NVTCTL_SUB(lat_sum_ns);
#undef NVTCTL_SUB
	/* The interval's own maximum is unknown: cap percentiles at the all-time one. */
	d->lat_max_ns = b->lat_max_ns;
	d->qd = b->qd;
	d->qd_max = b->qd_max;
}

static const struct nvtctl_set *nvtctl_find(const struct nvtctl_snap *sn, const struct nvtctl_set *k)
{
	for (size_t i = 0; i < sn->nr; i++)
		if (!sn->sets[i].is_queue && sn->sets[i].nsid == k->nsid && !strcmp(sn->sets[i].nqn, k->nqn))
			return &sn->sets[i];
	return NULL;
}

static void nvtctl_top_block(FILE *f, const struct nvtctl_snap *a, const struct nvtctl_snap *b,
			     bool tty)
{
	double dt = b->t - a->t > 1e-6 ? b->t - a->t : 1e-6;
	struct nvt_io_stats_snap d;
	time_t now = time(NULL);
	char when[32];

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	if (tty)
		fputs("\033[H\033[2J", f);	/* home, clear screen */
	fprintf(f, "nvtd at %s, last %.1f s\n", when, dt);
	fprintf(f, "%-40s %6s %10s %10s %9s %9s %7s %6s %9s\n", "SUBSYSTEM", "NSID", "R_IOPS", "W_IOPS",
		"R_MB/S", "W_MB/S", "ERR/S", "QD", "P99_US");
	for (size_t i = 0; i < b->nr; i++) {
		const struct nvtctl_set *set = &b->sets[i];
		const struct nvtctl_set *old;

		if (set->is_queue)
			continue;
		old = nvtctl_find(a, set);
		nvtctl_diff(&d, &set->s, old ? &old->s : NULL);
		fprintf(f, "%-40.40s %6u %10.0f %10.0f %9.2f %9.2f %7.0f %6" PRIu64 " %9.0f\n", set->nqn,
			set->nsid, (double)d.cmds[NVT_STAT_READ] / dt, (double)d.cmds[NVT_STAT_WRITE] / dt,
			(double)d.bytes_read / dt / 1e6, (double)d.bytes_written / dt / 1e6,
			(double)nvtctl_errors(&d) / dt, d.qd, us(nvt_stats_percentile(&d, 990)));
	}
	if (!tty)
		fputc('\n', f);
	fflush(f);
}

static int nvtctl_report(int ret)
{
	if (ret < 0) {
		fprintf(stderr, "nvtctl: %s\n", strerror(-ret));
		return 2;
	}
	return ret;
}

int nvtctl_stats_main(const char *sock, int argc, char **argv)
{
	char cmd[1024] = "stats";
	struct nvtctl_snap sn = { 0 };
	bool json = false;
	int nargs = 0, ret;
	size_t len = 5;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
			continue;
		}
		if (++nargs > 2 || strpbrk(argv[i], " \t\r\n") || len + strlen(argv[i]) + 3 > sizeof(cmd)) {
			fprintf(stderr, "usage: nvtctl -s SOCKET stats [NQN [NSID]] [--json]\n");
			return 2;
		}
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " %s", argv[i]);
	}
	snprintf(cmd + len, sizeof(cmd) - len, "\n");
	ret = nvtctl_snapshot(sock, cmd, &sn);
	if (!ret) {
		if (json)
			nvtctl_json(stdout, &sn);
		else
			nvtctl_table(stdout, &sn);
	}
	free(sn.sets);
	return nvtctl_report(ret);
}

int nvtctl_top_main(const char *sock, int argc, char **argv)
{
	struct nvtctl_snap a = { 0 }, b = { 0 }, t;
	double delay = 2.0;
	long iters = -1;
	bool tty = isatty(STDOUT_FILENO);
	int ret;

	for (int i = 1; i < argc; i++) {
		char *end = NULL;

		if (!strcmp(argv[i], "-d") && i + 1 < argc) {
			delay = strtod(argv[++i], &end);
			if (*end || !(delay >= 0.05 && delay <= 3600))
				goto usage;
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			iters = strtol(argv[++i], &end, 10);
			if (*end || iters < 1)
				goto usage;
		} else {
			goto usage;
		}
	}
	ret = nvtctl_snapshot(sock, "stats\n", &a);
	for (long n = 0; !ret && (iters < 0 || n < iters); n++) {
		struct timespec ts = { .tv_sec = (time_t)delay,
				       .tv_nsec = (long)((delay - floor(delay)) * 1e9) };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		ret = nvtctl_snapshot(sock, "stats\n", &b);
		if (ret)
			break;
		nvtctl_top_block(stdout, &a, &b, tty);
		t = a;
		a = b;
		b = t;
	}
	free(a.sets);
	free(b.sets);
	return nvtctl_report(ret);
usage:
	fprintf(stderr, "usage: nvtctl -s SOCKET top [-d SECS] [-n ITERATIONS]\n");
	return 2;
}
