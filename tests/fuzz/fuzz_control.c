/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz harness for the control socket's request executor: well-formed replies, one line per request, and exactly the bit an "ok" inject names flipped, nothing else touched. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nvt/control.h"
#include "nvt/log.h"
#include "nvt/target.h"

#define CTL_NQN		"nqn.2026-11.io.nvt:fuzz"
#define CTL_MAX_INPUT	4096

/* nsid 1: 16 blocks of 512+8 with PI type 1; nsid 2: 4 blocks of 4096, no metadata. */
static const struct { uint32_t nsid, bs, blocks; uint8_t pi; } ctl_ns[] = {
	{ 1, 512, 16, 1 },
	{ 2, 4096, 4, 0 },
};
#define CTL_NR_NS	(sizeof(ctl_ns) / sizeof(ctl_ns[0]))

static struct nvt_target *ctl_target(void)
{
	struct nvt_ns_cfg ns[CTL_NR_NS];
	struct nvt_subsys_cfg ss = { .nqn = CTL_NQN, .serial = "FUZZ", .model = "nvt fuzz",
				     .allow_any_host = true, .namespaces = ns,
				     .nr_namespaces = CTL_NR_NS };
	struct nvt_config cfg = { .subsystems = &ss, .nr_subsystems = 1, .discovery = true };
	struct nvt_target *tgt;

	memset(ns, 0, sizeof(ns));
	for (unsigned int i = 0; i < CTL_NR_NS; i++) {
		ns[i].nsid = ctl_ns[i].nsid;
		strcpy(ns[i].backend, "ram");
		ns[i].block_size = ctl_ns[i].bs;
		ns[i].size = (uint64_t)ctl_ns[i].bs * ctl_ns[i].blocks;
		ns[i].uuid[0] = ns[i].nguid[0] = (uint8_t)(i + 1);
		if (ctl_ns[i].pi) {
			ns[i].pi.type = ctl_ns[i].pi;
			strcpy(ns[i].pi.guard, "crc16");
			strcpy(ns[i].pi.location, "last");
			ns[i].pi.metadata_size = 8;
		}
	}
	nvt_fuzz_check(!nvt_target_create(&cfg, &tgt), "cannot build the target");
	return tgt;
}

/* Every byte of a namespace, data then metadata, to see what a request changed. */
struct snapshot {
	uint8_t *bytes;
	size_t len;
};

static void snap(struct nvt_ns *ns, struct snapshot *s)
{
	size_t per = ns->block_size + ns->md_size;

	s->len = per * ns->nblocks;
	s->bytes = malloc(s->len);
	nvt_fuzz_check(s->bytes, "malloc");
	for (uint64_t lba = 0; lba < ns->nblocks; lba++) {
		void *md, *data = ns->be->map(ns, lba, &md);

		memcpy(s->bytes + lba * per, data, ns->block_size);
		if (ns->md_size)
			memcpy(s->bytes + lba * per + ns->block_size, md, ns->md_size);
	}
}

struct reply {
	char buf[8192];
	size_t len;
	unsigned int lines;
	bool ended;		/* a line starting "ok" or "error:" came */
};

/* The lines a reply may carry before its final ok/error line: status, scrub, stats records, reload. */
static bool reply_line_known(const char *line)
{
	static const char *const prefixes[] = {
		"subsystem ", "bad LBA ", "subsys ", "ns ", "queue ", " host ", " io ", " err ",
		" hist ", "note: ", "changed: ", "ana group ",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(line, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static void emit(void *arg, const char *line, size_t len)
{
	struct reply *r = arg;

	nvt_fuzz_check(len > 0 && line[len - 1] == '\n', "reply line without its newline");
	nvt_fuzz_check(len <= NVT_CONTROL_LINE_MAX + 1, "reply line of %zu bytes", len);
	nvt_fuzz_check(!memchr(line, '\n', len - 1), "a newline inside a reply line");
	nvt_fuzz_check(!memchr(line, '\0', len), "a NUL in a reply line");
	nvt_fuzz_check(!r->ended, "a line after the final ok/error line: %.*s", (int)len, line);
	if (!strncmp(line, "ok", 2) || !strncmp(line, "error:", 6))
		r->ended = true;
	else
		nvt_fuzz_check(reply_line_known(line), "unexpected reply line: %.*s", (int)len, line);
	if (r->len + len < sizeof(r->buf)) {
		memcpy(r->buf + r->len, line, len);
		r->len += len;
		r->buf[r->len] = '\0';
	}
	r->lines++;
}

/* After one request: only an "ok: flipped" reply may change a namespace, by exactly its bit. */
static void check_effect(struct nvt_target *tgt, const struct reply *r, struct snapshot *before)
{
	struct nvt_subsys *s = nvt_target_find_subsys(tgt, CTL_NQN);
	const char *last = r->buf;
	uint64_t bit = 0, lba = 0;
	char what[16] = "";
	bool flipped;

	for (const char *p = r->buf; (p = strchr(p, '\n')) && p[1]; p++)
		last = p + 1;
	flipped = sscanf(last, "ok: flipped bit %" SCNu64 " of LBA %" SCNu64 "'s %15[a-z]",
			 &bit, &lba, what) == 3;
	for (unsigned int i = 0; i < CTL_NR_NS; i++) {
		struct nvt_ns *ns = s->ns[ctl_ns[i].nsid];
		size_t per = ns->block_size + ns->md_size, diffs = 0, at = 0;
		struct snapshot now;
		bool changed;

		snap(ns, &now);
		/* memcmp first: the byte loop below is slow under coverage instrumentation. */
		changed = memcmp(now.bytes, before[i].bytes, now.len) != 0;
		for (size_t k = 0; changed && k < now.len; k++) {
			uint8_t x = now.bytes[k] ^ before[i].bytes[k];

			if (!x)
				continue;
			diffs += (size_t)__builtin_popcount(x);
			at = k * 8 + (size_t)__builtin_ctz(x);
		}
		free(before[i].bytes);
		before[i] = now;
		if (!diffs)
			continue;
		/* Which namespace did the request name? The one that changed must be it. */
		nvt_fuzz_check(flipped, "nsid %u changed by a request that said: %s", ns->nsid, last);
		nvt_fuzz_check(diffs == 1, "nsid %u: %zu bits changed for one inject", ns->nsid, diffs);
		nvt_fuzz_check(lba < ns->nblocks, "flipped LBA %" PRIu64 " of %" PRIu64, lba,
			       ns->nblocks);
		if (!strcmp(what, "metadata")) {
			nvt_fuzz_check(bit < 8u * ns->md_size, "metadata bit %" PRIu64, bit);
			bit += 8u * ns->block_size;
		} else {
			nvt_fuzz_check(bit < 8u * ns->block_size, "data bit %" PRIu64, bit);
		}
		nvt_fuzz_check(at == lba * per * 8 + bit,
			       "reply \"%s\" but bit %zu of nsid %u's snapshot changed", last, at,
			       ns->nsid);
		flipped = false;	/* one namespace per request */
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	nvt_log_set_level(NVT_LOG_OFF);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *req = (const char *)data;
	struct snapshot before[CTL_NR_NS];
	struct nvt_target *tgt, *twin;
	struct nvt_subsys *s, *ts;
	size_t off = 0;

	if (size > CTL_MAX_INPUT)
		return 0;
	nvt_log_set_level(NVT_LOG_OFF);
	tgt = ctl_target();
	twin = ctl_target();
	s = nvt_target_find_subsys(tgt, CTL_NQN);
	ts = nvt_target_find_subsys(twin, CTL_NQN);
	for (unsigned int i = 0; i < CTL_NR_NS; i++)
		snap(s->ns[ctl_ns[i].nsid], &before[i]);
	/*
	 * Every line of the input is a request of its own (so an inject can be
	 * followed by a scrub), and each is handed all the bytes from its
	 * start to the end. Its twin target gets the same line cut after its
	 * newline: the two must answer and act alike, or bytes after the
	 * first line were taken as part of the request.
	 */
	for (;;) {
		const char *nl = size > off ? memchr(req + off, '\n', size - off) : NULL;
		size_t line = nl ? (size_t)(nl - req) + 1 - off : size - off;
		struct reply r = { .len = 0 }, t = { .len = 0 };

		nvt_control_execute(tgt, req + off, size - off, emit, &r);
		nvt_fuzz_check(r.ended, "reply without a final ok/error line: %s", r.buf);
		check_effect(tgt, &r, before);
		nvt_control_execute(twin, req + off, line, emit, &t);
		nvt_fuzz_check(r.len == t.len && !memcmp(r.buf, t.buf, r.len),
			       "the bytes after the first line changed the reply:\n%s\nvs. the line alone:\n%s",
			       r.buf, t.buf);
		for (unsigned int i = 0; i < CTL_NR_NS; i++) {
			struct snapshot other;

			snap(ts->ns[ctl_ns[i].nsid], &other);
			nvt_fuzz_check(!memcmp(other.bytes, before[i].bytes, other.len),
				       "the bytes after the first line changed what nsid %u holds",
				       ctl_ns[i].nsid);
			free(other.bytes);
		}
		if (!nl || (size_t)(nl - req) + 1 >= size)
			break;
		off = (size_t)(nl - req) + 1;
	}
	for (unsigned int i = 0; i < CTL_NR_NS; i++)
		free(before[i].bytes);
	nvt_target_destroy(twin);
	nvt_target_destroy(tgt);
	return 0;
}
