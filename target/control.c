/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtd's control socket (nvtctl): status, scrub, fault injection, reload; one line in, a few lines out, on the main loop without ever blocking it. */
#define NVT_LOG_PREFIX "control: "
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvt/control.h"
#include "nvt/log.h"
#include "nvt/stats.h"
#include "nvt/util.h"

#define NVT_CONTROL_MAX_ARGS	8		/* inject takes the most: 6 */
#define NVT_CONTROL_MAX_CLIENTS	16		/* more at once are turned away */
#define NVT_CONTROL_TIMEOUT_NS	(5ull * 1000000000ull) /* to send a request, and per reply write */
#define NVT_CONTROL_TICK_MS	250		/* how often deadlines are checked while clients exist */
#define NVT_CONTROL_REPLY_MAX	(4u << 20)	/* reply bytes buffered per client (a scrub lists bad LBAs) */

/* ---- the request: parsed and executed on a buffer, whoever read it ---- */

struct nvt_control_out {
	struct nvt_target *tgt;
	nvt_control_emit_fn emit;
	void *arg;
	atomic_bool *cancel;		/* slow commands give up when it is set */
};

static void reply(struct nvt_control_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct nvt_control_out *o, const char *fmt, ...)
{
	char line[NVT_CONTROL_LINE_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* Cut long lines (an echoed NQN) rather than split them: one line each. */
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	o->emit(o->arg, line, (size_t)n);
}

/*
 * A number as the protocol takes it: decimal, or hex after "0x", and nothing
 * around it. strtoull() would take "-1" (as ULLONG_MAX), " 1", "1junk" and
 * "0x0x1", so the digits are checked here. Return: 0, -EINVAL or -ERANGE.
 */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned int base = 10;
	uint64_t v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!(*p >= '0' && *p <= '9') &&
		    !(base == 16 && ((*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'))))
			return -EINVAL;
	for (; *s; s++) {
		unsigned int d = *s <= '9' ? (unsigned int)(*s - '0') :
				 (unsigned int)((*s | 0x20) - 'a' + 10);

		/* v * base + d > max, without computing it */
		if (d > max || v > (max - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* parse_u64(), with the error line a user can act on. Return: true if @out is set. */
static bool parse_arg(struct nvt_control_out *o, const char *what, const char *s, uint64_t min,
		      uint64_t max, uint64_t *out)
{
	int ret = parse_u64(s, max, out);

	if (ret == -EINVAL) {
		reply(o, "error: %s '%s' is not a number (decimal, or hex after 0x)", what, s);
		return false;
	}
	if (ret || *out < min) {
		reply(o, "error: %s %s is out of range (%" PRIu64 "..%" PRIu64 ")", what, s, min,
		      max);
		return false;
	}
	return true;
}

static int count_ctrls(struct nvt_subsys *s)
{
	int n = 0;

	pthread_mutex_lock(&s->tgt->lock);
	for (struct nvt_ctrl *c = s->ctrls; c; c = c->next)
		n++;
	pthread_mutex_unlock(&s->tgt->lock);
	return n;
}

static void cmd_status(struct nvt_control_out *o, char **argv)
{
	for (unsigned int i = 0; i < o->tgt->nr_subsys; i++) {
		struct nvt_subsys *s = o->tgt->subsys[i];

		reply(o, "subsystem %s: %u namespace(s), %d controller(s)", s->nqn, s->nr_ns,
		      count_ctrls(s));
	}
	if (o->tgt->front_status) {
		char *text = NULL, *line, *save;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		if (f) {
			o->tgt->front_status(o->tgt, f);
			fclose(f);
			for (line = strtok_r(text, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				reply(o, "%s", line);
			free(text);
		}
	}
	reply(o, "ok");
}

static struct nvt_ns *find_ns(struct nvt_control_out *o, const char *nqn, const char *nsid_s)
{
	struct nvt_subsys *s = nvt_target_find_subsys(o->tgt, nqn);
	uint64_t nsid;

	if (!s || s->type != NVT_SUBSYS_NVM) {
		reply(o, "error: no subsystem %s", nqn);
		return NULL;
	}
	if (!parse_arg(o, "NSID", nsid_s, 1, NVT_MAX_NSID, &nsid))
		return NULL;
	if (!s->ns[nsid]) {
		reply(o, "error: %s has no namespace %s", s->nqn, nsid_s);
		return NULL;
	}
	return s->ns[nsid];
}

static const char *const pi_err_names[] = { "?", "guard", "app tag", "ref tag" };

static void scrub_bad(uint64_t lba, const struct nvt_pi_err *err, void *arg)
{
	unsigned int type = (unsigned int)err->type;

	reply(arg, "bad LBA %" PRIu64 ": %s check: expected %#" PRIx64 ", found %#" PRIx64,
	      lba, pi_err_names[type < NVT_ARRAY_SIZE(pi_err_names) ? type : 0],
	      err->expected, err->actual);
}

static void cmd_scrub_ns(struct nvt_control_out *o, struct nvt_ns *ns);

static void cmd_scrub(struct nvt_control_out *o, char **argv)
{
	struct nvt_ns *ns;

	/* On a worker thread: taken under the lock a removal unpublishes under, which then refuses. */
	pthread_mutex_lock(&o->tgt->lock);
	ns = find_ns(o, argv[1], argv[2]);
	if (ns)
		atomic_fetch_add(&ns->nr_scrubs, 1);
	pthread_mutex_unlock(&o->tgt->lock);
	if (!ns)
		return;
	cmd_scrub_ns(o, ns);
	atomic_fetch_sub(&ns->nr_scrubs, 1);	/* its last look at @ns */
}

static void cmd_scrub_ns(struct nvt_control_out *o, struct nvt_ns *ns)
{
	uint64_t bad = 0;
	int ret;

	ret = nvt_ns_scrub_until(ns, scrub_bad, o, &bad, o->cancel);
	if (ret == -ENODATA) {
		reply(o, "error: nsid %u has no protection information to check", ns->nsid);
		return;
	}
	if (ret == -ECANCELED) {
		reply(o, "error: scrub stopped: nvtd is shutting down");
		return;
	}
	if (ret) {
		reply(o, "error: scrub: %s", strerror(-ret));
		return;
	}
	if (bad)
		nvt_warn("%s nsid %u: scrub found %" PRIu64 " bad block(s)", ns->subsys->nqn,
			 ns->nsid, bad);
	reply(o, "ok: scrubbed %" PRIu64 " blocks of %s nsid %u, %" PRIu64 " bad", ns->nblocks,
	      ns->subsys->nqn, ns->nsid, bad);
}

static void cmd_inject(struct nvt_control_out *o, char **argv)
{
	bool md = !strcmp(argv[4], "metadata");
	uint64_t lba, bit, bits;
	struct nvt_ns *ns;
	int ret;

	if (!md && strcmp(argv[4], "data")) {
		reply(o, "error: usage: inject NQN NSID LBA data|metadata BIT");
		return;
	}
	ns = find_ns(o, argv[1], argv[2]);
	if (!ns)
		return;
	if (!parse_arg(o, "LBA", argv[3], 0, ns->nblocks - 1, &lba))
		return;
	bits = 8ull * (md ? ns->md_size : ns->block_size);
	if (!bits) {
		reply(o, "error: nsid %u has no metadata", ns->nsid);
		return;
	}
	/* The range is checked on 64 bits: 2^32 must not wrap around to bit 0. */
	if (!parse_arg(o, "BIT", argv[5], 0, bits - 1, &bit))
		return;
	ret = nvt_ns_inject(ns, lba, md, (uint32_t)bit);
	if (ret) {
		reply(o, "error: inject: %s", strerror(-ret));
		return;
	}
	nvt_warn("%s nsid %u: fault injected: bit %" PRIu64 " of LBA %" PRIu64 "'s %s flipped",
		 ns->subsys->nqn, ns->nsid, bit, lba, md ? "metadata" : "data");
	reply(o, "ok: flipped bit %" PRIu64 " of LBA %" PRIu64 "'s %s", bit, lba,
	      md ? "metadata" : "data");
}

/* Re-read the configuration file and apply what changed (target/reload.c). */
static void cmd_reload(struct nvt_control_out *o, char **argv)
{
	char *text = NULL, *line, *save;
	size_t len = 0;
	FILE *f;
	int ret;

	(void)argv;
	if (!o->tgt->cfg) {
		reply(o, "error: this nvtd has no configuration file to reload");
		return;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		reply(o, "error: %s", strerror(ENOMEM));
		return;
	}
	ret = nvt_target_reload(o->tgt, o->tgt->cfg, f);
	fclose(f);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		reply(o, "%s", line);
	free(text);
	if (ret < 0)
		reply(o, "error: not reloaded, nothing changed (%s)",
		      ret == -EINVAL ? "see above" : strerror(-ret));
	else
		reply(o, "ok: reloaded, %d change(s)", ret);
}

/*
 * ---- stats [NQN [NSID]]: counters as records nvtctl renders ----
 *
 * "subsys NQN", then per namespace "ns NSID" and per I/O queue
 * "queue CNTLID QID" + " host HOSTNQN", each followed by " io k=v ...",
 * " err name=n ..." and " hist bucket:n ..." (non-zero ones only, split
 * over lines that stay far below NVT_CONTROL_LINE_MAX). A set's worst
 * case is ~5 KiB, so at most NVT_STATS_MAX_SETS sets go into one reply
 * (2.6 MiB, under NVT_CONTROL_REPLY_MAX); past that a "note:" line says
 * how many were left out and how to ask for fewer.
 */
#define NVT_STATS_MAX_SETS	512
#define NVT_STATS_CHUNK		400

struct nvt_stats_walk {
	struct nvt_control_out *o;
	unsigned int sets, skipped;
};

/* Tokens into lines of at most NVT_STATS_CHUNK bytes, each starting with @prefix. */
struct nvt_stats_line {
	char buf[NVT_STATS_CHUNK + 64];
	size_t len, prefix_len;
	bool any;
};

static void stats_line_init(struct nvt_stats_line *l, const char *prefix)
{
	l->len = l->prefix_len = (size_t)snprintf(l->buf, sizeof(l->buf), "%s", prefix);
	l->any = false;
}

static void stats_line_flush(struct nvt_control_out *o, struct nvt_stats_line *l)
{
	if (l->any)
		reply(o, "%.*s", (int)l->len, l->buf);
	l->len = l->prefix_len;
	l->any = false;
}

static void stats_line_add(struct nvt_control_out *o, struct nvt_stats_line *l, const char *key,
			   uint64_t v, char sep)
{
	char tok[64];
	int n = snprintf(tok, sizeof(tok), " %s%c%" PRIu64, key, sep, v);

	if (l->len + (size_t)n > NVT_STATS_CHUNK)
		stats_line_flush(o, l);
	memcpy(l->buf + l->len, tok, (size_t)n);
	l->len += (size_t)n;
	l->any = true;
}

static void stats_emit_set(struct nvt_control_out *o, const struct nvt_io_stats_snap *s)
{
	struct nvt_stats_line l;
	char key[16];

	reply(o, " io reads=%" PRIu64 " writes=%" PRIu64 " other=%" PRIu64 " bytes_read=%" PRIu64
	      " bytes_written=%" PRIu64 " qd=%" PRIu64 " qd_max=%" PRIu64 " lat_sum_ns=%" PRIu64
	      " lat_max_ns=%" PRIu64,
	      s->cmds[NVT_STAT_READ], s->cmds[NVT_STAT_WRITE], s->cmds[NVT_STAT_OTHER],
	      s->bytes_read, s->bytes_written, s->qd, s->qd_max, s->lat_sum_ns, s->lat_max_ns);
	stats_line_init(&l, " err");
	for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
		if (s->errors[e])
			stats_line_add(o, &l, nvt_stat_err_name(e), s->errors[e], '=');
	stats_line_flush(o, &l);
	stats_line_init(&l, " hist");
	for (unsigned int b = 0; b < NVT_HIST_BUCKETS; b++)
		if (s->hist[b]) {
			snprintf(key, sizeof(key), "%u", b);
			stats_line_add(o, &l, key, s->hist[b], ':');
		}
	stats_line_flush(o, &l);
}

static bool stats_room(struct nvt_stats_walk *w)
{
	if (w->sets >= NVT_STATS_MAX_SETS) {
		w->skipped++;
		return false;
	}
	w->sets++;
	return true;
}

static void stats_sq(struct nvt_sq *sq, void *arg)
{
	struct nvt_stats_walk *w = arg;
	struct nvt_io_stats_snap snap;
	char host[NVT_NQN_MAX + 1];
	size_t i;

	if (!sq->qid || !stats_room(w))
		return;
	memset(&snap, 0, sizeof(snap));
	nvt_stats_snap_add(&snap, &sq->stats);
	/* The host chose its NQN: only printable words reach a line-based reply. */
	for (i = 0; i < NVT_NQN_MAX && sq->ctrl->hostnqn[i]; i++) {
		unsigned char ch = (unsigned char)sq->ctrl->hostnqn[i];

		host[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	host[i] = '\0';
	reply(w->o, "queue %u %u", sq->ctrl->cntlid, sq->qid);
	reply(w->o, " host %s", host);
	stats_emit_set(w->o, &snap);
}

static void stats_ctrl(struct nvt_ctrl *ctrl, void *arg)
{
	nvt_ctrl_for_each_sq(ctrl, stats_sq, arg);
}

static void stats_ns(struct nvt_stats_walk *w, struct nvt_ns *ns)
{
	struct nvt_io_stats_snap snap;

	if (!stats_room(w))
		return;
	nvt_stats_ns_snap(ns, &snap);
	reply(w->o, "ns %u", ns->nsid);
	stats_emit_set(w->o, &snap);
}

static void cmd_stats(struct nvt_control_out *o, char **argv)
{
	struct nvt_stats_walk w = { .o = o };
	struct nvt_subsys *only = NULL;
	struct nvt_ns *only_ns = NULL;

	if (argv[1] && argv[2] && argv[3]) {
		reply(o, "error: usage: stats [NQN [NSID]]");
		return;
	}
	if (argv[1] && argv[2]) {
		only_ns = find_ns(o, argv[1], argv[2]);
		if (!only_ns)
			return;
		only = only_ns->subsys;
	} else if (argv[1]) {
		only = nvt_target_find_subsys(o->tgt, argv[1]);
		if (!only || only->type != NVT_SUBSYS_NVM) {
			reply(o, "error: no subsystem %s", argv[1]);
			return;
		}
	}
	/* Namespaces first, all of them, then queues: the cap cuts queues first. */
	for (unsigned int i = 0; i < o->tgt->nr_subsys; i++) {
		struct nvt_subsys *s = o->tgt->subsys[i];

		if (s->type != NVT_SUBSYS_NVM || (only && s != only))
			continue;
		reply(o, "subsys %s", s->nqn);
		if (only_ns) {
			stats_ns(&w, only_ns);
			continue;
		}
		for (uint32_t nsid = 1; nsid <= NVT_MAX_NSID; nsid++)
			if (s->ns[nsid])
				stats_ns(&w, s->ns[nsid]);
	}
	if (!only_ns)
		for (unsigned int i = 0; i < o->tgt->nr_subsys; i++) {
			struct nvt_subsys *s = o->tgt->subsys[i];

			if (s->type != NVT_SUBSYS_NVM || (only && s != only))
				continue;
			reply(o, "subsys %s", s->nqn);
			nvt_subsys_for_each_ctrl(s, stats_ctrl, &w);
		}
	if (w.skipped)
		reply(o, "note: %u namespace/queue set(s) left out (at most %u per reply); ask for one subsystem or namespace",
		      w.skipped, NVT_STATS_MAX_SETS);
	reply(o, "ok");
}

/* ana GROUP STATE: move an ANA group; its controllers get the ANA change notice. */
static void cmd_ana(struct nvt_control_out *o, char **argv)
{
	uint8_t state = nvt_ana_state_parse(argv[2]);
	uint64_t grpid;
	int told;

	if (!parse_arg(o, "ANA group", argv[1], 1, NVT_ANA_GRPMAX, &grpid))
		return;
	if (!state) {
		reply(o, "error: unknown ANA state '%s' (optimized, non-optimized, inaccessible, persistent-loss, change)",
		      argv[2]);
		return;
	}
	told = nvt_target_set_ana_state(o->tgt, (uint32_t)grpid, state);
	if (told < 0) {
		reply(o, "error: ANA group %s: %s", argv[1], strerror(-told));
		return;
	}
	reply(o, "ana group %" PRIu64 ": %s, %d controller(s) notified", grpid,
	      nvt_ana_state_name(state), told);
	reply(o, "ok");
}

/* The commands; argument counts are exact, so trailing junk is an error, not ignored. */
static const struct nvt_control_cmd {
	const char *name;
	int argc;				/* including the name; 0: any, the handler checks (argv ends with NULL) */
	const char *usage;
	void (*fn)(struct nvt_control_out *o, char **argv);
	bool slow;				/* reads a whole namespace: runs on a thread of its own */
} nvt_control_cmds[] = {
	{ "status", 1, "status", cmd_status, false },
	{ "scrub", 3, "scrub NQN NSID", cmd_scrub, true },
	{ "inject", 6, "inject NQN NSID LBA data|metadata BIT", cmd_inject, false },
	{ "reload", 1, "reload", cmd_reload, false },
	{ "stats", 0, "stats [NQN [NSID]]", cmd_stats, false },
	{ "ana", 3, "ana GROUP optimized|non-optimized|inaccessible|persistent-loss|change", cmd_ana, false },
};

/* Is the request's first word a slow command? */
static bool nvt_control_is_slow(const char *req, size_t len)
{
	size_t n = 0;

	while (n < len && req[n] != ' ' && req[n] != '\t' && req[n] != '\n' && req[n] != '\r')
		n++;
	for (size_t i = 0; i < NVT_ARRAY_SIZE(nvt_control_cmds); i++)
		if (nvt_control_cmds[i].slow && strlen(nvt_control_cmds[i].name) == n &&
		    !memcmp(nvt_control_cmds[i].name, req, n))
			return true;
	return false;
}

static void nvt_control_run(struct nvt_target *tgt, const char *req, size_t len,
			    nvt_control_emit_fn emit, void *arg, atomic_bool *cancel);

void nvt_control_execute(struct nvt_target *tgt, const char *req, size_t len,
			 nvt_control_emit_fn emit, void *arg)
{
	nvt_control_run(tgt, req, len, emit, arg, NULL);
}

static void nvt_control_run(struct nvt_target *tgt, const char *req, size_t len,
			    nvt_control_emit_fn emit, void *arg, atomic_bool *cancel)
{
	struct nvt_control_out o = { .tgt = tgt, .emit = emit, .arg = arg, .cancel = cancel };
	char line[NVT_CONTROL_LINE_MAX + 1], *argv[NVT_CONTROL_MAX_ARGS + 1], *save = NULL, *tok;
	const char *nl = len ? memchr(req, '\n', len) : NULL;
	size_t n = nl ? (size_t)(nl - req) : len;
	int argc = 0;

	/* A request is its first line; whatever follows is not looked at. */
	if (n > NVT_CONTROL_LINE_MAX) {
		reply(&o, "error: request longer than %d bytes", NVT_CONTROL_LINE_MAX);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)req[i];

		/* A NUL would end the line early; others would end up in replies and logs. */
		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f) {
			reply(&o, "error: control character %#x at byte %zu of the request", ch, i);
			return;
		}
	}
	if (n)
		memcpy(line, req, n);
	line[n] = '\0';
	for (tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
		if (argc == NVT_CONTROL_MAX_ARGS) {
			reply(&o, "error: more than %d words in the request", NVT_CONTROL_MAX_ARGS);
			return;
		}
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	if (!argc) {
		reply(&o, "error: empty command; try: status, scrub NQN NSID, inject ...");
		return;
	}
	for (size_t i = 0; i < NVT_ARRAY_SIZE(nvt_control_cmds); i++) {
		const struct nvt_control_cmd *cmd = &nvt_control_cmds[i];

		if (strcmp(argv[0], cmd->name))
			continue;
		if (cmd->argc && argc != cmd->argc)
			reply(&o, "error: usage: %s", cmd->usage);
		else
			cmd->fn(&o, argv);
		return;
	}
	reply(&o, "error: unknown command '%s'", argv[0]);
}

/* ---- the socket: non-blocking clients multiplexed on an epoll fd of our own ---- */

/*
 * One connected nvtctl. It sends one line and reads the reply; a slow or
 * silent one only holds its slot until its deadline, never the main loop.
 */
struct nvt_control_client {
	struct nvt_control_client *next;
	struct nvt_control *ctl;
	int fd;
	bool replying;				/* the request ran (or runs); @out is being sent */
	bool working;				/* a worker thread runs the request and owns @out */
	pthread_t worker;
	struct nvt_control_client *done_next;	/* in ctl->work_done, under ctl->work_lock */
	uint64_t deadline_ns;
	size_t in_len;
	char in[NVT_CONTROL_LINE_MAX + 1];	/* a byte more than a line: enough to see it is too long */
	char *out;
	size_t out_len, out_off, out_cap;
	size_t dropped;				/* reply lines beyond NVT_CONTROL_REPLY_MAX */
};

struct nvt_control {
	struct nvt_target *tgt;
	struct nvt_pg_watch watch;		/* our own epoll fd, itself watched by the main loop */
	int listen_fd;
	int timer_fd;				/* ticks while clients exist: deadlines */
	struct nvt_control_client *clients;
	struct nvt_control_client *closed;	/* freed after the batch that closed them */
	unsigned int nr_clients;
	int work_fd;				/* eventfd: a worker finished */
	pthread_mutex_t work_lock;		/* control path only: the finished list */
	struct nvt_control_client *work_done;
	atomic_bool stopping;			/* workers give up */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void nvt_control_arm_timer(struct nvt_control *c, bool on)
{
	struct itimerspec its = { 0 };

	if (on) {
		its.it_interval.tv_nsec = NVT_CONTROL_TICK_MS * 1000000L;
		its.it_value = its.it_interval;
	}
	timerfd_settime(c->timer_fd, 0, &its, NULL);
}

static void nvt_control_client_close(struct nvt_control *c, struct nvt_control_client *cl)
{
	struct nvt_control_client **pp = &c->clients;

	while (*pp != cl)
		pp = &(*pp)->next;
	*pp = cl->next;
	epoll_ctl(c->watch.fd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1;
	/* A later event of this batch may still point here. */
	cl->next = c->closed;
	c->closed = cl;
	if (!--c->nr_clients)
		nvt_control_arm_timer(c, false);
}

/* Queue @len bytes of reply. Return: false if out of memory. */
static bool nvt_control_client_append(struct nvt_control_client *cl, const char *buf, size_t len)
{
	if (cl->out_len + len > cl->out_cap) {
		size_t cap = cl->out_cap ? cl->out_cap : 4096;
		char *p;

		while (cap < cl->out_len + len)
			cap *= 2;
		p = realloc(cl->out, cap);
		if (!p)
			return false;
		cl->out = p;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, buf, len);
	cl->out_len += len;
	return true;
}

static void nvt_control_client_emit(void *arg, const char *line, size_t len)
{
	struct nvt_control_client *cl = arg;

	if (cl->out_len + len > NVT_CONTROL_REPLY_MAX ||
	    !nvt_control_client_append(cl, line, len))
		cl->dropped++;
}

/* Send what the socket takes now; the rest when it says it is writable. */
static void nvt_control_client_flush(struct nvt_control *c, struct nvt_control_client *cl)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = cl };

	while (cl->out_off < cl->out_len) {
		/* MSG_NOSIGNAL: a client gone before its reply must not SIGPIPE nvtd. */
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			epoll_ctl(c->watch.fd, EPOLL_CTL_MOD, cl->fd, &ev);
			return;
		}
		if (n <= 0)
			break;		/* the client went away; nothing to tell it */
		cl->out_off += (size_t)n;
		cl->deadline_ns = nvt_now_ns() + NVT_CONTROL_TIMEOUT_NS;
	}
	nvt_control_client_close(c, cl);
}

/* The reply is complete: the cap note if lines were left out, then send it. */
static void nvt_control_client_reply(struct nvt_control *c, struct nvt_control_client *cl)
{
	char msg[96];

	if (cl->dropped) {
		/* Past the cap on purpose: the client must learn the reply is incomplete
		 * (its last line, ok or error, is among those left out). */
		int n = snprintf(msg, sizeof(msg),
				 "error: reply too long, %zu line(s) left out\n", cl->dropped);

		nvt_control_client_append(cl, msg, (size_t)n);
	}
	cl->deadline_ns = nvt_now_ns() + NVT_CONTROL_TIMEOUT_NS;
	nvt_control_client_flush(c, cl);
}

/* A slow request on its own thread: the main loop (admin queues, keep-alive) goes on meanwhile. */
static void *nvt_control_worker(void *arg)
{
	struct nvt_control_client *cl = arg;
	struct nvt_control *c = cl->ctl;
	uint64_t one = 1;

	nvt_control_run(c->tgt, cl->in, cl->in_len, nvt_control_client_emit, cl, &c->stopping);
	pthread_mutex_lock(&c->work_lock);
	cl->done_next = c->work_done;
	c->work_done = cl;
	pthread_mutex_unlock(&c->work_lock);
	if (write(c->work_fd, &one, sizeof(one)) < 0) {
		/* cannot overflow in practice; the list is looked at anyway */
	}
	return NULL;
}

/* Main loop: replies of finished workers go out. */
static void nvt_control_work_done(struct nvt_control *c)
{
	struct nvt_control_client *cl;
	uint64_t n;

	if (read(c->work_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: taken by an earlier event */
	}
	pthread_mutex_lock(&c->work_lock);
	cl = c->work_done;
	c->work_done = NULL;
	pthread_mutex_unlock(&c->work_lock);
	while (cl) {
		struct nvt_control_client *next = cl->done_next;

		pthread_join(cl->worker, NULL);
		cl->working = false;
		nvt_control_client_reply(c, cl);
		cl = next;
	}
}

static void nvt_control_client_run(struct nvt_control *c, struct nvt_control_client *cl)
{
	cl->replying = true;
	if (nvt_control_is_slow(cl->in, cl->in_len)) {
		struct epoll_event none = { .events = 0, .data.ptr = cl };

		cl->ctl = c;
		cl->working = true;
		/* Not watched meanwhile: a client that hangs up or says more would keep us spinning. */
		epoll_ctl(c->watch.fd, EPOLL_CTL_MOD, cl->fd, &none);
		if (!pthread_create(&cl->worker, NULL, nvt_control_worker, cl))
			return;
		cl->working = false;
		nvt_warn("cannot start a thread for a control request; running it here");
	}
	nvt_control_execute(c->tgt, cl->in, cl->in_len, nvt_control_client_emit, cl);
	nvt_control_client_reply(c, cl);
}

static void nvt_control_client_input(struct nvt_control *c, struct nvt_control_client *cl)
{
	for (;;) {
		ssize_t n = read(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;		/* more later, or the deadline */
		if (n < 0 || (n == 0 && !cl->in_len)) {
			nvt_control_client_close(c, cl);	/* gone without a request */
			return;
		}
		cl->in_len += (size_t)n;
		/* A line, a full buffer (too long: said so) or EOF after a last unterminated line. */
		if (!n || memchr(cl->in + cl->in_len - (size_t)n, '\n', (size_t)n) ||
		    cl->in_len == sizeof(cl->in)) {
			nvt_control_client_run(c, cl);
			return;
		}
	}
}

static void nvt_control_accept(struct nvt_control *c)
{
	static const char busy[] = "error: too many control clients; try again\n";

	for (;;) {
		struct nvt_control_client *cl;
		struct epoll_event ev = { .events = EPOLLIN };
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;		/* EAGAIN: all taken; anything else: try on the next event */
		cl = c->nr_clients < NVT_CONTROL_MAX_CLIENTS ? calloc(1, sizeof(*cl)) : NULL;
		if (!cl) {
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* it will see the connection close instead */
			}
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->deadline_ns = nvt_now_ns() + NVT_CONTROL_TIMEOUT_NS;
		ev.data.ptr = cl;
		if (epoll_ctl(c->watch.fd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = c->clients;
		c->clients = cl;
		if (!c->nr_clients++)
			nvt_control_arm_timer(c, true);
	}
}

static void nvt_control_expire(struct nvt_control *c)
{
	uint64_t now = nvt_now_ns(), ticks;
	struct nvt_control_client *cl, *next;

	if (read(c->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN: a tick raced with disarming; the check below is harmless */
	}
	for (cl = c->clients; cl; cl = next) {
		next = cl->next;
		/* A request still running has no deadline: its reply is not late yet. */
		if (cl->working || now < cl->deadline_ns)
			continue;
		nvt_warn("client too slow (%s); dropped",
			 cl->replying ? "not reading its reply" : "no complete request");
		nvt_control_client_close(c, cl);
	}
}

static void nvt_control_ready(struct nvt_pg_watch *w)
{
	struct nvt_control *c = container_of(w, struct nvt_control, watch);
	struct epoll_event ev[NVT_CONTROL_MAX_CLIENTS + 2];
	int n = epoll_wait(w->fd, ev, (int)NVT_ARRAY_SIZE(ev), 0);

	for (int i = 0; i < n; i++) {
		struct nvt_control_client *cl = ev[i].data.ptr;

		if (ev[i].data.ptr == &c->listen_fd)
			nvt_control_accept(c);
		else if (ev[i].data.ptr == &c->timer_fd)
			nvt_control_expire(c);
		else if (ev[i].data.ptr == &c->work_fd)
			nvt_control_work_done(c);
		else if (cl->fd < 0 || cl->working)
			continue;	/* closed earlier in this batch, or its worker owns it */
		else if (cl->replying)
			nvt_control_client_flush(c, cl);
		else
			nvt_control_client_input(c, cl);
	}
	while (c->closed) {
		struct nvt_control_client *cl = c->closed;

		c->closed = cl->next;
		free(cl->out);
		free(cl);
	}
}

int nvt_control_create(struct nvt_target *tgt, const char *path, struct nvt_control **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event lev = { .events = EPOLLIN }, tev = { .events = EPOLLIN };
	struct epoll_event wev = { .events = EPOLLIN };
	struct nvt_control *c;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->tgt = tgt;
	c->listen_fd = c->timer_fd = -1;
	pthread_mutex_init(&c->work_lock, NULL);
	atomic_init(&c->stopping, false);
	c->work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->work_fd < 0) {
		ret = -errno;
		pthread_mutex_destroy(&c->work_lock);
		free(c);
		return ret;
	}
	nvt_strscpy(c->path, path, sizeof(c->path));
	nvt_strscpy(sa.sun_path, path, sizeof(sa.sun_path));
	c->watch.fn = nvt_control_ready;
	/* Our own epoll fd, readable when any of ours is: clients need EPOLLOUT too. */
	c->watch.fd = epoll_create1(EPOLL_CLOEXEC);
	if (c->watch.fd < 0)
		goto out_errno;
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->timer_fd < 0)
		goto out_errno;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0)
		goto out_errno;
	/* A socket left by a nvtd that did not stop cleanly would block bind(). */
	unlink(path);
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out_errno;
	lev.data.ptr = &c->listen_fd;
	tev.data.ptr = &c->timer_fd;
	wev.data.ptr = &c->work_fd;
	if (chmod(path, 0600) || listen(c->listen_fd, 8) ||
	    epoll_ctl(c->watch.fd, EPOLL_CTL_ADD, c->listen_fd, &lev) ||
	    epoll_ctl(c->watch.fd, EPOLL_CTL_ADD, c->timer_fd, &tev) ||
	    epoll_ctl(c->watch.fd, EPOLL_CTL_ADD, c->work_fd, &wev))
		goto out_unlink_errno;
	ret = nvt_poll_group_add(tgt->pg, &c->watch);
	if (ret)
		goto out_unlink;
	*out = c;
	return 0;

out_unlink_errno:
	ret = -errno;
out_unlink:
	unlink(path);
	goto out_close;
out_errno:
	ret = -errno;
out_close:
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	if (c->watch.fd >= 0)
		close(c->watch.fd);
	close(c->work_fd);
	pthread_mutex_destroy(&c->work_lock);
	free(c);
	return ret;
}

void nvt_control_destroy(struct nvt_control *c)
{
	if (!c)
		return;
	nvt_poll_group_del(c->tgt->pg, &c->watch);
	/* Running requests give up (a scrub within 1024 blocks) and are waited for. */
	atomic_store(&c->stopping, true);
	for (struct nvt_control_client *cl = c->clients; cl; cl = cl->next) {
		if (cl->working) {
			pthread_join(cl->worker, NULL);
			cl->working = false;
		}
	}
	while (c->clients)
		nvt_control_client_close(c, c->clients);
	while (c->closed) {
		struct nvt_control_client *cl = c->closed;

		c->closed = cl->next;
		free(cl->out);
		free(cl);
	}
	close(c->listen_fd);
	close(c->timer_fd);
	close(c->watch.fd);
	close(c->work_fd);
	pthread_mutex_destroy(&c->work_lock);
	unlink(c->path);
	free(c);
}
