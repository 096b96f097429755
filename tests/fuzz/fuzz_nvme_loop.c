/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz harness for the NVMe command path over the loop transport: an input is a program of queue, Connect, command and clock operations, checked against a shadow of one namespace. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"
#include "nvt/target.h"
#include "nvt/util.h"

/*
 * The program (every read past the end gives 0, so any input is one):
 *   op byte % 10:
 *   0 QUEUE      slot, qid choice, depth        a transport connection
 *   1 CONNECT    slot, choices, mutations       Fabrics Connect with its 1024 bytes
 *   2 DESTROY    slot                           the host drops the connection
 *   3, 4, 9 SUBMIT slot, template, fields, data one SQE with a data buffer
 *                                               (templates: enum tmpl; T_RESV the
 *                                               Reservation commands)
 *   5 HOLD                                      the next command stops after parse,
 *                                               where RDMA would READ its data
 *   6 TIME       step                           keep-alive check at a synthetic now
 *   7 BRINGUP    slot, subsystem, kato          admin queue + enable + one I/O queue
 *   8 RELEASE    which                          a held command's data arrives
 * The invariants, each an abort: one completion per command, with its CID
 * and SQID, none while held, none after its queue is gone; nothing
 * outstanding but a held command, an AER, or a fused half waiting for its
 * partner, and the transport's count agrees; nothing outstanding after a
 * queue is destroyed; reads and compares of subsystem A nsid 1 agree with a
 * shadow of every successful write; the target logs no error; and at the
 * end a fresh controller connects, answers Identify and reads the shadow back.
 */

#define SUB_A		"nqn.2026-11.io.nvt:fuzz-a"
#define SUB_B		"nqn.2026-11.io.nvt:fuzz-b"
#define HOST		"nqn.2014-08.org.nvmexpress:uuid:fuzz-host"
#define HOST_OK		"nqn.2014-08.org.nvmexpress:uuid:fuzz-allowed"

#define NR_SLOTS	8
#define MAX_OPS		256
#define MAX_CMDS	1024
#define SHADOW_BS	512
#define SHADOW_BLOCKS	128	/* A nsid 1: 64 KiB of 512-byte blocks, no metadata */
#define MAX_BUF		(NVT_LOOP_MAX_DATA + 4096)
#define BRINGUP_AQ_DEPTH	8	/* room for the AERs (4) and a few more */

enum { SUBSYS_NONE = -1, SUBSYS_A, SUBSYS_B, SUBSYS_DISC };

/* Subsystem A: nsid 1 shadowed; 2, 3, 4 with PI in three layouts. B: one namespace, one host. */
static const struct ns_fmt {
	uint32_t nsid, bs, blocks;
	uint8_t pi;
	const char *guard, *loc;
	uint16_t ms;
} fmts_a[] = {
	{ 1, SHADOW_BS, SHADOW_BLOCKS, 0, "", "", 0 },
	{ 2, 512, 64, 1, "crc16", "last", 8 },
	{ 3, 4096, 16, 2, "crc64", "last", 16 },
	{ 4, 512, 64, 1, "crc16", "first", 16 },
}, fmts_b[] = {
	{ 1, 4096, 16, 0, "", "", 0 },
};

struct slot {
	struct nvt_loop_queue *q;
	uint16_t qid, depth, next_cid;
	int subsys;			/* of the controller it connected to */
	int last;			/* cmd index of the latest command the queue took, or -1 */
};

struct cmd {
	int slot;
	uint16_t cid, qid;
	int subsys;
	struct nvt_sqe sqe;
	uint8_t *buf;
	size_t len;
	struct nvt_loop_held *held;	/* stopped between parse and execute */
	bool submitted, done;
	uint16_t status;
	uint32_t result;
};

struct fuzz {
	struct nvt_fuzz_input in;	/* the program being run */
	struct nvt_target *tgt;
	struct slot slots[NR_SLOTS];
	struct cmd cmds[MAX_CMDS];
	unsigned int nr_cmds;
	uint16_t cntlids[4];		/* from admin Connects: for I/O Connects */
	unsigned int nr_cntlids;
	uint64_t now_ns;
	bool hold_next;			/* HOLD: the next command stops before execute */
	uint8_t shadow[SHADOW_BLOCKS * SHADOW_BS];
};

static struct fuzz *F;		/* the run in progress, for the log hook */
static bool trace;		/* NVT_FUZZ_TRACE=1: print every completion (reading a reproducer) */

/* ---- input ---- */

static uint8_t u8(struct fuzz *f)
{
	return nvt_fuzz_u8(&f->in);
}

static uint16_t u16(struct fuzz *f)
{
	return nvt_fuzz_u16(&f->in);
}

static uint32_t u32(struct fuzz *f)
{
	return nvt_fuzz_u32(&f->in);
}

static uint64_t u64(struct fuzz *f)
{
	return (uint64_t)u32(f) | (uint64_t)u32(f) << 32;
}

/* Made-up data: one seed byte and a cheap PRNG, a word at a time (big buffers, small inputs). */
static void fill(struct fuzz *f, uint8_t *buf, size_t len)
{
	uint64_t x;
	size_t i;

	if (!len)
		return;
	x = u8(f) + 1ull;
	for (i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	if (i < len)
		memcpy(buf + i, &x, len - i);
}

/* ---- the target ---- */

/*
 * Every error the target logs is a bug under this harness: double
 * completion, a queue freed with commands outstanding. The harness links
 * with -Wl,--wrap=nvt_log, and the level lets only errors through.
 */
void __wrap_nvt_log(enum nvt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void __wrap_nvt_log(enum nvt_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nvt_fuzz_check(level > NVT_LOG_ERR, "the target logged an error: %s", msg);
}

static void ns_cfgs(struct nvt_ns_cfg *ns, const struct ns_fmt *fmts, unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++) {
		memset(&ns[i], 0, sizeof(ns[i]));
		ns[i].nsid = fmts[i].nsid;
		strcpy(ns[i].backend, "ram");
		ns[i].block_size = fmts[i].bs;
		ns[i].size = (uint64_t)fmts[i].bs * fmts[i].blocks;
		ns[i].uuid[0] = ns[i].nguid[0] = (uint8_t)(i + 1);
		ns[i].uuid[1] = ns[i].nguid[1] = (uint8_t)nr;
		if (fmts[i].pi) {
			ns[i].pi.type = fmts[i].pi;
			strcpy(ns[i].pi.guard, fmts[i].guard);
			strcpy(ns[i].pi.location, fmts[i].loc);
			ns[i].pi.metadata_size = fmts[i].ms;
		}
	}
}

static struct nvt_target *target_create(void)
{
	struct nvt_ns_cfg ns_a[NVT_ARRAY_SIZE(fmts_a)], ns_b[NVT_ARRAY_SIZE(fmts_b)];
	char hosts[1][NVT_NQN_MAX + 1] = { HOST_OK };
	struct nvt_subsys_cfg ss[2] = {
		{ .nqn = SUB_A, .serial = "FUZZA", .model = "nvt fuzz", .allow_any_host = true,
		  .namespaces = ns_a, .nr_namespaces = NVT_ARRAY_SIZE(fmts_a) },
		{ .nqn = SUB_B, .serial = "FUZZB", .model = "nvt fuzz", .hosts = hosts,
		  .nr_hosts = 1, .namespaces = ns_b, .nr_namespaces = NVT_ARRAY_SIZE(fmts_b) },
	};
	struct nvt_listener_cfg l = { .transport = "rdma", .address = "192.0.2.1", .family = 2,
				      .port = 4420 };
	struct nvt_config cfg = { .discovery = true, .listeners = &l, .nr_listeners = 1,
				  .subsystems = ss, .nr_subsystems = 2 };
	struct nvt_target *tgt;

	ns_cfgs(ns_a, fmts_a, NVT_ARRAY_SIZE(fmts_a));
	ns_cfgs(ns_b, fmts_b, NVT_ARRAY_SIZE(fmts_b));
	nvt_fuzz_check(!nvt_target_create(&cfg, &tgt), "cannot build the target");
	return tgt;
}

/* ---- what a command moves ---- */

static const struct ns_fmt *fmt_of(const struct cmd *c, uint32_t nsid)
{
	const struct ns_fmt *fmts = c->subsys == SUBSYS_B ? fmts_b : fmts_a;
	size_t nr = c->subsys == SUBSYS_B ? NVT_ARRAY_SIZE(fmts_b) : NVT_ARRAY_SIZE(fmts_a);

	for (size_t i = 0; i < nr; i++)
		if (fmts[i].nsid == nsid)
			return &fmts[i];
	return NULL;
}

/* What a correct host would transfer for a block command (PRACT=1 with a tuple-sized md: no md). */
static size_t rw_len(const struct ns_fmt *fm, uint32_t nlb, uint8_t prinfo)
{
	size_t pisize = fm && !strcmp(fm->guard, "crc64") ? 16 : 8;

	if (!fm)
		return (size_t)nlb * 512;
	if (fm->ms && !((prinfo & 8) && fm->ms == pisize))
		return (size_t)nlb * (fm->bs + fm->ms);
	return (size_t)nlb * fm->bs;
}

/*
 * A success means the host's SGL described exactly what the command moves
 * (or more, for the two commands that allow it): a length that wrapped or
 * was computed from the wrong fields shows up here.
 */
static void check_len(const struct cmd *c)
{
	const struct nvt_sqe_common *sc = &c->sqe.common;
	uint64_t want;

	if (c->status)
		return;
	if (sc->opcode == NVT_OPC_FABRICS) {
		if (c->sqe.fabrics.fctype == NVT_FCTYPE_CONNECT)
			nvt_fuzz_check(c->len == sizeof(struct nvmf_connect_data),
				       "Connect succeeded with %zu bytes of data", c->len);
		return;
	}
	if (!c->qid) {
		if (c->subsys == SUBSYS_NONE)
			return;
		if (sc->opcode == nvme_admin_identify) {
			nvt_fuzz_check(c->len == 4096, "Identify succeeded into %zu bytes", c->len);
		} else if (sc->opcode == nvme_admin_get_log_page) {
			want = (((uint64_t)(le32toh(sc->cdw11) & 0xffff) << 16 |
				 le32toh(sc->cdw10) >> 16) + 1) * 4;
			nvt_fuzz_check(c->len == want,
				       "Get Log Page of %" PRIu64 " bytes succeeded into %zu", want,
				       c->len);
		}
		return;
	}
	switch (sc->opcode) {
	case nvme_cmd_read:
	case nvme_cmd_write:
	case nvme_cmd_compare: {
		const struct ns_fmt *fm = fmt_of(c, le32toh(sc->nsid));
		uint8_t prinfo = (le16toh(c->sqe.rw.control) >> 10) & 0xf;

		if (!fm || c->subsys == SUBSYS_NONE || c->subsys == SUBSYS_DISC)
			return;
		want = rw_len(fm, (uint32_t)le16toh(c->sqe.rw.nlb) + 1, prinfo);
		nvt_fuzz_check(c->len == want,
			       "opcode %#x of %" PRIu64 " bytes on nsid %u succeeded with %zu",
			       sc->opcode, want, le32toh(sc->nsid), c->len);
		return;
	}
	case nvme_cmd_dsm:
		want = ((le32toh(sc->cdw10) & 0xff) + 1) * 16ull;
		nvt_fuzz_check(c->len >= want, "DSM of %" PRIu64 " bytes of ranges succeeded with %zu",
			       want, c->len);
		return;
	default:
		return;
	}
}

/* ---- the shadow of subsystem A nsid 1 ---- */

static bool shadowed(const struct cmd *c)
{
	return c->subsys == SUBSYS_A && c->qid && le32toh(c->sqe.common.nsid) == 1;
}

static uint64_t c_slba(const struct cmd *c)
{
	return le64toh(c->sqe.rw.slba);
}

static uint32_t c_nlb(const struct cmd *c)
{
	return (uint32_t)le16toh(c->sqe.rw.nlb) + 1;
}

/* A successful command moved exactly these blocks; the parser checked the range. */
static uint8_t *shadow_at(struct fuzz *f, uint64_t slba, uint64_t nlb)
{
	nvt_fuzz_check(slba < SHADOW_BLOCKS && nlb <= SHADOW_BLOCKS - slba,
		       "success outside the namespace: LBA %" PRIu64 " + %" PRIu64, slba, nlb);
	return f->shadow + slba * SHADOW_BS;
}

static void model(struct fuzz *f, struct cmd *c)
{
	uint8_t opc = c->sqe.common.opcode, fmt;
	uint32_t cdw12 = le32toh(c->sqe.common.cdw12), nr;
	uint64_t dlba;
	size_t len;

	if (!shadowed(c) || c->sqe.common.opcode == NVT_OPC_FABRICS)
		return;
	len = (size_t)c_nlb(c) * SHADOW_BS;
	switch (opc) {
	case nvme_cmd_read:
		if (c->status)
			return;
		nvt_fuzz_check(c->len >= len, "read of %zu bytes into %zu", len, c->len);
		nvt_fuzz_check(!memcmp(c->buf, shadow_at(f, c_slba(c), c_nlb(c)), len),
			       "read of LBA %" PRIu64 "+%u differs from what was written",
			       c_slba(c), c_nlb(c));
		return;
	case nvme_cmd_compare:
		/* NVM 1.0 §3.2.1: 85h exactly when the data differs. */
		if (c->status && (c->status & 0x7ff) != 0x285)
			return;
		nvt_fuzz_check(c->len >= len, "compare of %zu bytes with %zu", len, c->len);
		nvt_fuzz_check(!memcmp(c->buf, shadow_at(f, c_slba(c), c_nlb(c)), len) == !c->status,
			       "compare of LBA %" PRIu64 "+%u said %#x against the shadow",
			       c_slba(c), c_nlb(c), c->status);
		return;
	case nvme_cmd_write:
		if (!c->status)
			memcpy(shadow_at(f, c_slba(c), c_nlb(c)), c->buf, len);
		return;
	case nvme_cmd_write_zeroes:
		if (!c->status)
			memset(shadow_at(f, c_slba(c), c_nlb(c)), 0, len);
		return;
	case nvme_cmd_dsm:
		if (c->status || !(le32toh(c->sqe.common.cdw11) & NVME_DSMGMT_AD))
			return;
		nr = (le32toh(c->sqe.common.cdw10) & 0xff) + 1;
		for (unsigned int i = 0; i < nr; i++) {
			struct nvme_dsm_range r;

			memcpy(&r, c->buf + i * sizeof(r), sizeof(r));
			/* DLFEAT 001b without PI: deallocated blocks read as zeroes. */
			memset(shadow_at(f, le64toh(r.slba), le32toh(r.nlb)), 0,
			       (size_t)le32toh(r.nlb) * SHADOW_BS);
		}
		return;
	case nvme_cmd_copy:
		if (c->status)
			return;
		nr = (cdw12 & 0xff) + 1;
		fmt = (cdw12 >> 8) & 0xf;
		dlba = (uint64_t)le32toh(c->sqe.common.cdw11) << 32 | le32toh(c->sqe.common.cdw10);
		/* The ranges in order, each a memmove (what the README promises). */
		for (unsigned int i = 0; i < nr; i++) {
			size_t dsz = fmt ? sizeof(struct nvt_copy_desc1) : sizeof(struct nvt_copy_desc0);
			struct nvt_copy_desc0 d;
			uint32_t nlb;

			memcpy(&d, c->buf + i * dsz, sizeof(d.rsvd0) + sizeof(d.slba) + sizeof(d.nlb));
			nlb = (uint32_t)le16toh(d.nlb) + 1;
			memmove(shadow_at(f, dlba, nlb), shadow_at(f, le64toh(d.slba), nlb),
				(size_t)nlb * SHADOW_BS);
			dlba += nlb;
		}
		return;
	default:
		return;
	}
}

/* ---- commands ---- */

static int subsys_of(const char *nqn);

/*
 * A Connect that succeeded (now, or when released) binds its queue to the
 * subsystem its data named; an admin queue's brings a controller id.
 */
static void connected(struct fuzz *f, const struct cmd *c)
{
	struct slot *sl;

	if (c->status || c->slot < 0 || c->sqe.common.opcode != NVT_OPC_FABRICS ||
	    c->sqe.fabrics.fctype != NVT_FCTYPE_CONNECT || c->len < sizeof(struct nvmf_connect_data))
		return;
	sl = &f->slots[c->slot];
	sl->subsys = subsys_of((const char *)c->buf + offsetof(struct nvmf_connect_data, subsysnqn));
	if (!sl->qid)
		f->cntlids[f->nr_cntlids++ % 4] = (uint16_t)c->result;
}

static void on_done(void *arg, const struct nvt_cqe *cqe)
{
	struct cmd *c = arg;
	struct fuzz *f = F;

	nvt_fuzz_check(c->submitted, "completion of a command never submitted");
	nvt_fuzz_check(!c->done, "qid %u cid %u completed twice", c->qid, c->cid);
	nvt_fuzz_check(cqe->cid == c->cid, "qid %u: completion carries cid %u, not %u", c->qid,
		       cqe->cid, c->cid);
	nvt_fuzz_check(le16toh(cqe->sqid) == c->qid, "completion for sqid %u on qid %u",
		       le16toh(cqe->sqid), c->qid);
	c->done = true;
	c->status = (uint16_t)(le16toh(cqe->status) >> 1);
	c->result = le32toh(cqe->result.u32);
	if (trace)
		fprintf(stderr, "trace: qid %u cid %u opcode %#x%s nsid %u len %zu -> status %#x\n",
			c->qid, c->cid, c->sqe.common.opcode,
			c->sqe.common.opcode == NVT_OPC_FABRICS ? " (fabrics)" : "",
			le32toh(c->sqe.common.nsid), c->len, c->status);
	nvt_fuzz_check(!c->held, "qid %u cid %u completed while held before execute", c->qid,
		       c->cid);
	check_len(c);
	connected(f, c);
	model(f, c);
	/* Freed now: a target that touches the data after completing is caught by ASan. */
	free(c->buf);
	c->buf = NULL;
}

/* Cut @c's buffer into @parts iovecs at fuzzed points. */
static unsigned int split(struct fuzz *f, struct cmd *c, struct iovec *iov, unsigned int parts)
{
	size_t off = 0;
	unsigned int n = 0;

	if (!c->buf)
		return 0;
	for (unsigned int i = 0; i + 1 < parts && off < c->len; i++) {
		size_t piece = u16(f) % (c->len - off + 1);

		iov[n++] = (struct iovec){ c->buf + off, piece };
		off += piece;
	}
	iov[n++] = (struct iovec){ c->buf + off, c->len - off };
	return n;
}

/*
 * May @c be outstanding now? A held command (not executed yet), an AER, a
 * fused half whose partner is held, or a fused Compare that is the latest
 * command of its queue (NVMe 2.0 §3.4.2: the next one settles it).
 */
static bool may_wait(struct fuzz *f, const struct cmd *c, bool slot_has_held)
{
	uint8_t fuse = c->sqe.common.opcode == NVT_OPC_FABRICS ? 0 :
		       c->sqe.common.flags & NVT_SQE_FUSE_MASK;

	if (c->held)
		return true;
	if (!c->qid && c->sqe.common.opcode == nvme_admin_async_event)
		return true;
	if (!c->qid || !fuse)
		return false;
	if (slot_has_held)
		return true;
	return fuse == NVT_FUSE_FIRST && c->sqe.common.opcode == nvme_cmd_compare &&
	       f->slots[c->slot].last == c - f->cmds;
}

/* Every command of slot @s is done or may wait, and the transport counts the same. */
static void slot_check(struct fuzz *f, int s)
{
	struct slot *sl = &f->slots[s];
	unsigned int outstanding = 0;
	bool has_held = false;

	for (unsigned int i = 0; i < f->nr_cmds; i++)
		if (f->cmds[i].slot == s && f->cmds[i].submitted && f->cmds[i].held)
			has_held = true;
	for (unsigned int i = 0; i < f->nr_cmds; i++) {
		struct cmd *c = &f->cmds[i];

		if (c->slot != s || !c->submitted || c->done)
			continue;
		outstanding++;
		nvt_fuzz_check(may_wait(f, c, has_held),
			       "qid %u cid %u (opcode %#x flags %#x) neither completed nor held",
			       c->qid, c->cid, c->sqe.common.opcode, c->sqe.common.flags);
	}
	if (sl->q)
		nvt_fuzz_check(nvt_loop_queue_outstanding(sl->q) == outstanding,
			       "qid %u: the transport counts %u outstanding, the host %u", sl->qid,
			       nvt_loop_queue_outstanding(sl->q), outstanding);
}

/*
 * Submit @sqe with a @len-byte buffer: the first @dlen bytes from @data,
 * the rest made up. @parts > NVT_LOOP_MAX_IOV asks for too many iovecs.
 * Return: the command, or NULL if the transport refused it.
 */
static struct cmd *submit(struct fuzz *f, int s, const struct nvt_sqe *sqe, size_t len,
			  const void *data, size_t dlen, unsigned int parts)
{
	struct slot *sl = &f->slots[s];
	struct iovec iov[NVT_LOOP_MAX_IOV + 1];
	struct nvt_loop_held *h = NULL;
	bool hold = f->hold_next;
	unsigned int iovcnt;
	struct cmd *c;
	int ret;

	f->hold_next = false;
	if (!sl->q || f->nr_cmds == MAX_CMDS)
		return NULL;
	c = &f->cmds[f->nr_cmds++];
	memset(c, 0, sizeof(*c));
	c->slot = s;
	c->sqe = *sqe;
	c->cid = sqe->common.cid;
	c->qid = sl->qid;
	c->subsys = sl->subsys;
	if (len) {
		c->buf = malloc(len);
		nvt_fuzz_check(c->buf, "malloc %zu", len);
		c->len = len;
		if (dlen > len)
			dlen = len;
		if (dlen)
			memcpy(c->buf, data, dlen);
		fill(f, c->buf + dlen, len - dlen);
	}
	if (parts > NVT_LOOP_MAX_IOV) {
		iovcnt = NVT_LOOP_MAX_IOV + 1;
		for (unsigned int i = 0; i < iovcnt; i++)
			iov[i] = (struct iovec){ c->buf, i ? 0 : c->len };
	} else {
		iovcnt = split(f, c, iov, parts);
	}
	c->submitted = true;
	if (hold)
		ret = nvt_loop_submit_held(sl->q, &c->sqe, iov, iovcnt, on_done, c, &h);
	else
		ret = nvt_loop_submit(sl->q, &c->sqe, iov, iovcnt, on_done, c);
	if (ret) {
		nvt_fuzz_check(ret == -EBUSY || ret == -ENOTCONN || ret == -EINVAL,
			       "nvt_loop_submit: %d", ret);
		nvt_fuzz_check(!c->done, "refused (%d) and completed", ret);
		if (trace)
			fprintf(stderr, "trace: qid %u opcode %#x refused: %d\n", c->qid,
				c->sqe.common.opcode, ret);
		c->submitted = false;
		free(c->buf);
		c->buf = NULL;
		return NULL;
	}
	sl->last = (int)(c - f->cmds);
	if (hold && h) {
		nvt_fuzz_check(!c->done, "qid %u cid %u: held, yet completed", c->qid, c->cid);
		c->held = h;
		if (trace)
			fprintf(stderr, "trace: qid %u cid %u opcode %#x held\n", c->qid, c->cid,
				c->sqe.common.opcode);
	} else if (hold) {
		nvt_fuzz_check(c->done, "qid %u cid %u: refused at parse, not completed", c->qid,
			       c->cid);
	}
	slot_check(f, s);
	return c;
}

/* RELEASE: a held command's data has arrived. */
static void release(struct fuzz *f, struct cmd *c)
{
	struct nvt_loop_held *h = c->held;

	c->held = NULL;
	nvt_loop_release(h);
	slot_check(f, c->slot);
}

static void op_release(struct fuzz *f)
{
	unsigned int nr = 0, k = u8(f);

	for (unsigned int i = 0; i < f->nr_cmds; i++)
		nr += f->cmds[i].held != NULL;
	for (unsigned int i = 0; nr && i < f->nr_cmds; i++) {
		if (f->cmds[i].held && !(k-- % nr)) {
			release(f, &f->cmds[i]);
			return;
		}
	}
}

static void slot_destroy(struct fuzz *f, int s)
{
	struct slot *sl = &f->slots[s];

	if (!sl->q)
		return;
	/* A transport finishes (or flushes) its data transfers before it frees a queue. */
	for (unsigned int i = 0; i < f->nr_cmds; i++)
		if (f->cmds[i].slot == s && f->cmds[i].held)
			release(f, &f->cmds[i]);
	nvt_loop_queue_destroy(sl->q);
	sl->q = NULL;
	/* Held AERs and a waiting fused half come back during the destroy. */
	for (unsigned int i = 0; i < f->nr_cmds; i++)
		nvt_fuzz_check(f->cmds[i].slot != s || !f->cmds[i].submitted || f->cmds[i].done,
			       "qid %u destroyed with cid %u (opcode %#x) outstanding", sl->qid,
			       f->cmds[i].cid, f->cmds[i].sqe.common.opcode);
	for (unsigned int i = 0; i < f->nr_cmds; i++)
		if (f->cmds[i].slot == s)
			f->cmds[i].slot = -1;	/* the slot may take a new queue */
}

static void slot_create(struct fuzz *f, int s, uint16_t qid, uint16_t depth)
{
	struct slot *sl = &f->slots[s];
	int ret;

	slot_destroy(f, s);
	ret = nvt_loop_queue_create(f->tgt, qid, depth, &sl->q);
	nvt_fuzz_check(!ret || ret == -EINVAL, "nvt_loop_queue_create: %d", ret);
	if (ret)
		sl->q = NULL;
	sl->qid = qid;
	sl->depth = depth;
	sl->subsys = SUBSYS_NONE;
	sl->last = -1;
}

/* ---- Connect ---- */

static const char *const subnqns[] = { SUB_A, SUB_B, NVT_DISCOVERY_NQN };
static const char *const hostnqns[] = { HOST, HOST_OK, "nqn.2014-08.org.nvmexpress:uuid:other" };

static int subsys_of(const char *nqn)
{
	for (int i = 0; i < (int)NVT_ARRAY_SIZE(subnqns); i++)
		if (!strncmp(nqn, subnqns[i], NVME_NQN_LENGTH))
			return i;
	return SUBSYS_NONE;
}

/* One of @known, or raw bytes (maybe without a NUL in all 256). */
static void nqn_field(struct fuzz *f, char *dst, const char *const *known, uint8_t choice)
{
	if (choice < 3) {
		nvt_strscpy(dst, known[choice], NVME_NQN_LENGTH);
		return;
	}
	for (size_t i = 0, n = u8(f) + (choice & 1 ? 0 : 200u); i < n && i < NVME_NQN_LENGTH; i++)
		dst[i] = (char)u8(f);
}

/*
 * CONNECT: a good Connect for the slot (subsystem, host and KATO chosen),
 * then byte mutations of the SQE and the data; or, one time in four, one
 * built from fuzzed fields, lengths and iovecs.
 */
static void op_connect(struct fuzz *f)
{
	static const uint32_t katos[] = { 0, 1, 1000, 5000 };
	uint8_t s = u8(f) % NR_SLOTS, ch = u8(f), kch = u8(f), nr_mut = u8(f) % 5;
	struct slot *sl = &f->slots[s];
	struct nvmf_connect_data d;
	struct nvt_sqe sqe;
	uint32_t kato = kch < 252 ? katos[kch % 4] * (kch / 4 % 4 + 1u) : u32(f);
	size_t len = sizeof(d);
	const char *host;

	if (!sl->q)
		return;
	memset(&sqe, 0, sizeof(sqe));
	memset(&d, 0, sizeof(d));
	sqe.connect.opcode = NVT_OPC_FABRICS;
	sqe.connect.fctype = NVT_FCTYPE_CONNECT;
	sqe.connect.cid = sl->next_cid++;
	sqe.connect.qid = htole16(sl->qid);
	sqe.connect.sqsize = htole16((uint16_t)(sl->depth - 1));
	sqe.connect.kato = htole32(kato);
	host = hostnqns[(ch >> 2) % 3];
	/* A host id derived from the NQN, as nvme-cli derives one from the machine. */
	for (size_t i = 0; host[i]; i++)
		d.hostid[i % 16] ^= (uint8_t)host[i];
	d.cntlid = htole16(sl->qid && f->nr_cntlids ? f->cntlids[(f->nr_cntlids - 1) % 4] :
						      0xffff);
	if ((ch & 0xc0) != 0xc0) {
		nvt_strscpy(d.subsysnqn, subnqns[(ch & 3) % 3], sizeof(d.subsysnqn));
		nvt_strscpy(d.hostnqn, host, sizeof(d.hostnqn));
		for (unsigned int i = 0; i < nr_mut; i++) {
			uint16_t off = u16(f) % (uint16_t)(sizeof(sqe) + sizeof(d));

			if (off < sizeof(sqe))
				((uint8_t *)&sqe)[off] = u8(f);
			else
				((uint8_t *)&d)[off - sizeof(sqe)] = u8(f);
		}
		submit(f, s, &sqe, len, &d, sizeof(d), 1);
		return;
	}
	if (ch & 0x20)
		sqe.connect.recfmt = htole16(u16(f));
	if (ch & 0x10)
		sqe.connect.qid = htole16(u16(f));
	if (ch & 0x08)
		sqe.connect.sqsize = htole16(u16(f));
	sqe.connect.cattr = u8(f);
	if (u8(f) >= 128 || !f->nr_cntlids)
		d.cntlid = htole16(u16(f));
	else
		d.cntlid = htole16(f->cntlids[u8(f) % 4]);
	nqn_field(f, d.subsysnqn, subnqns, u8(f) % 5);
	nqn_field(f, d.hostnqn, hostnqns, u8(f) % 5);
	if (ch & 0x04)
		len = u16(f) % 2048;
	submit(f, s, &sqe, len, &d, sizeof(d), 1 + (ch & 1));
}

/* ---- other commands ---- */

enum tmpl {
	T_READ, T_WRITE, T_COMPARE, T_WRITE_ZEROES, T_DSM, T_VERIFY, T_COPY, T_FLUSH,
	T_IDENTIFY, T_GET_LOG, T_SET_FEAT, T_GET_FEAT, T_KEEP_ALIVE, T_AER, T_PROP_GET,
	T_PROP_SET, T_DISCONNECT, T_FUSED_PAIR, T_FUSED_FIRST, T_FUSED_SECOND, T_ABORT,
	T_RAW, T_FABRICS_OTHER, T_ENABLE, T_RESV, NR_TMPL
};

static uint32_t pick_nsid(struct fuzz *f)
{
	static const uint32_t nsids[] = { 1, 1, 1, 2, 3, 4, 0xffffffff, 0 };
	uint8_t b = u8(f);

	return b < 248 ? nsids[b % 8] : u32(f);
}

/* A block command's range and PI fields; returns the expected data length. */
static size_t block_fields(struct fuzz *f, struct nvt_sqe *sqe, struct cmd *probe, uint8_t opc)
{
	uint32_t nsid = pick_nsid(f);
	const struct ns_fmt *fm = fmt_of(probe, nsid);
	uint32_t blocks = fm ? fm->blocks : 16;
	uint8_t sb = u8(f), lb = u8(f), cb = u8(f), tb = u8(f);
	uint64_t slba = sb < 232 ? sb % (blocks + 2) : u64(f);
	uint32_t nlb = lb < 240 ? 1u + lb % 8u : 1u + u16(f);
	uint8_t prinfo = cb & 0x10 ? cb & 0xf : 0;

	nvt_host_sqe_rw(sqe, opc, nsid, slba, nlb);
	sqe->rw.control = htole16((uint16_t)(prinfo << 10 | (cb & 0x20 ? NVME_IO_FUA : 0) |
					     (cb & 0x40 ? 1u << 9 : 0)));
	/* Tags a host would send (the LBA's low bits; Type 1 checks them), or any. */
	sqe->rw.reftag = htole32(tb < 224 ? (uint32_t)slba : u32(f));
	sqe->rw.cdw3 = htole32(tb < 240 ? 0 : u32(f));
	sqe->rw.apptag = htole16(cb & 0x80 ? 0xffff : tb % 4);
	sqe->rw.appmask = htole16(tb & 4 ? 0 : 0xffff);
	return rw_len(fm, nlb, prinfo);
}

/*
 * SUBMIT: a template for the opcode (biased to the interesting ones),
 * fields mostly in range, byte mutations now and then, a data buffer of
 * the right length or a wrong one, in one to four iovecs (or seventeen).
 */
static void op_submit(struct fuzz *f)
{
	static const uint8_t cnss[] = { 0, 1, 2, 3, 5, 6, 8, 0x10 };
	static const uint8_t lids[] = { 1, 2, 3, 4, 5, 0x70, 0x80, 0x0c };
	static const uint8_t fids[] = { 1, 2, 4, 5, 6, 7, 0x0a, 0x0b, 0x0f, 0x16, 0x81, 0x80 };
	static const uint32_t props[] = { NVT_PROP_CAP, NVT_PROP_VS, NVT_PROP_CC, NVT_PROP_CSTS,
					  NVT_PROP_NSSR, 0x18 };
	uint8_t s = u8(f) % NR_SLOTS, t = u8(f) % NR_TMPL, db, pb, mb;
	struct slot *sl = &f->slots[s];
	struct cmd probe = { .subsys = sl->subsys, .qid = sl->qid };
	struct nvt_sqe sqe;
	uint8_t pre[1024];
	size_t want = 0, len, pre_len = 0;
	unsigned int parts;
	uint32_t nr;

	if (!sl->q)
		return;
	memset(&sqe, 0, sizeof(sqe));
	switch (t) {
	case T_READ:
	case T_VERIFY:
	case T_WRITE_ZEROES:
	case T_FLUSH:
		want = block_fields(f, &sqe, &probe, t == T_READ ? nvme_cmd_read :
						     t == T_VERIFY ? nvme_cmd_verify :
						     t == T_FLUSH ? nvme_cmd_flush :
						     nvme_cmd_write_zeroes);
		if (t != T_READ)
			want = 0;
		break;
	case T_WRITE:
	case T_COMPARE:
	case T_FUSED_FIRST:
	case T_FUSED_SECOND:
		want = block_fields(f, &sqe, &probe, t == T_WRITE || t == T_FUSED_SECOND ?
						     nvme_cmd_write : nvme_cmd_compare);
		if (t == T_FUSED_FIRST)
			sqe.common.flags |= NVT_FUSE_FIRST;
		if (t == T_FUSED_SECOND)
			sqe.common.flags |= NVT_FUSE_SECOND;
		break;
	case T_FUSED_PAIR: {
		struct nvt_sqe second;
		struct cmd *c;
		uint8_t same;

		want = block_fields(f, &sqe, &probe, nvme_cmd_compare);
		same = u8(f);
		sqe.common.flags |= NVT_FUSE_FIRST;
		sqe.common.cid = sl->next_cid++;
		second = sqe;
		second.common.opcode = nvme_cmd_write;
		second.common.flags = NVT_SQE_PSDT_SGL | NVT_FUSE_SECOND;
		second.common.cid = sl->next_cid++;
		/* Half the time the Compare matches what is stored. */
		probe.sqe = sqe;
		if ((same & 1) && shadowed(&probe) && c_slba(&probe) < SHADOW_BLOCKS &&
		    c_nlb(&probe) <= SHADOW_BLOCKS - c_slba(&probe))
			c = submit(f, s, &sqe, want, f->shadow + c_slba(&probe) * SHADOW_BS,
				   (size_t)c_nlb(&probe) * SHADOW_BS, 1);
		else
			c = submit(f, s, &sqe, want, NULL, 0, 1);
		if (c || !(same & 2))
			submit(f, s, &second, want, NULL, 0, 1 + (same >> 6));
		return;
	}
	case T_DSM:
		nvt_host_sqe_init(&sqe, nvme_cmd_dsm, pick_nsid(f));
		nr = 1 + u8(f) % 4;
		sqe.common.cdw10 = htole32(nr - 1);
		sqe.common.cdw11 = htole32(u8(f) & 7);
		for (unsigned int i = 0; i < nr; i++) {
			struct nvme_dsm_range r = { .cattr = 0, .nlb = htole32(u8(f) % 9),
						    .slba = htole64(u8(f) % (SHADOW_BLOCKS + 2)) };

			memcpy(pre + i * sizeof(r), &r, sizeof(r));
		}
		want = pre_len = nr * sizeof(struct nvme_dsm_range);
		break;
	case T_COPY: {
		uint8_t fb = u8(f), pr = u8(f);
		uint32_t nsid = pick_nsid(f), fmt;
		const struct ns_fmt *fm = fmt_of(&probe, nsid);
		uint32_t blocks = fm ? fm->blocks : 16;
		size_t dsz;

		fmt = fb >= 250 ? fb % 16 : fm && !strcmp(fm->guard, "crc64") ? 1 : 0;
		dsz = fmt ? sizeof(struct nvt_copy_desc1) : sizeof(struct nvt_copy_desc0);
		nr = 1 + fb % 3;
		nvt_host_sqe_init(&sqe, nvme_cmd_copy, nsid);
		sqe.common.cdw10 = htole32(u8(f) % (blocks + 1));
		sqe.common.cdw12 = htole32((nr - 1) | fmt << 8 | (pr & 0xfu) << 12 |
					   (uint32_t)(pr >> 4) << 26);
		memset(pre, 0, sizeof(pre));
		for (unsigned int i = 0; i < nr; i++) {
			struct nvt_copy_desc0 d = { .slba = htole64(u8(f) % blocks),
						    .nlb = htole16(u8(f) % 8) };

			memcpy(pre + i * dsz, &d, sizeof(d.rsvd0) + sizeof(d.slba) + sizeof(d.nlb));
		}
		want = pre_len = nr * dsz;
		break;
	}
	case T_IDENTIFY:
		nvt_host_sqe_identify(&sqe, cnss[u8(f) % 8], pick_nsid(f), u8(f) & 3);
		want = 4096;
		break;
	case T_GET_LOG: {
		uint8_t lb = u8(f), ob = u8(f), nb = u8(f);
		uint32_t loglen = 4u * (1 + nb % 256);

		nvt_host_sqe_get_log(&sqe, lb < 248 ? lids[lb % 8] : lb, loglen,
				     ob < 240 ? 4u * (ob % 8) : u64(f), lb & 1);
		/* NUMD is 32 bits of dwords: near 2^32 the byte count needs 35 bits. */
		if (nb == 255) {
			uint32_t numd = u32(f);

			sqe.common.cdw10 = htole32((le32toh(sqe.common.cdw10) & 0xffff) | numd << 16);
			sqe.common.cdw11 = htole32(numd >> 16);
		}
		want = loglen;
		break;
	}
	case T_SET_FEAT:
	case T_GET_FEAT: {
		uint8_t fid = fids[u8(f) % NVT_ARRAY_SIZE(fids)];

		nvt_host_sqe_features(&sqe, t == T_SET_FEAT, fid, u32(f));
		sqe.common.cdw10 |= htole32((uint32_t)(u8(f) & 7) << 8);
		want = fid == 0x16 ? 512 : fid == 0x81 ? 16 : 0;
		break;
	}
	case T_KEEP_ALIVE:
		nvt_host_sqe_init(&sqe, nvme_admin_keep_alive, 0);
		break;
	case T_AER:
		nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
		break;
	case T_ABORT:
		nvt_host_sqe_init(&sqe, nvme_admin_abort_cmd, 0);
		sqe.common.cdw10 = htole32(u32(f));
		break;
	case T_PROP_GET:
	case T_PROP_SET:
	case T_ENABLE:
	case T_DISCONNECT:
	case T_FABRICS_OTHER:
		sqe.fabrics.opcode = NVT_OPC_FABRICS;
		sqe.fabrics.fctype = t == T_PROP_GET ? NVT_FCTYPE_PROP_GET :
				     t == T_DISCONNECT ? NVT_FCTYPE_DISCONNECT :
				     t == T_FABRICS_OTHER ? u8(f) : NVT_FCTYPE_PROP_SET;
		sqe.prop.attrib = u8(f) & 1;
		sqe.prop.offset = htole32(t == T_ENABLE ? NVT_PROP_CC : props[u8(f) % 6]);
		/* CC: enable as Linux does, shut down, disable, or anything. */
		if (t == T_ENABLE)
			sqe.prop.value = htole64((6u << NVME_CC_IOSQES_SHIFT) |
						 (4u << NVME_CC_IOCQES_SHIFT) | 1u);
		else if (t == T_PROP_SET || t == T_FABRICS_OTHER)
			sqe.prop.value = htole64(u64(f));
		break;
	case T_RESV: {
		/*
		 * Reservation Register/Acquire/Release/Report: keys from a set of
		 * three, so a later command names an earlier one's; actions, IEKEY,
		 * types and CPTPL mostly in range.
		 */
		static const uint8_t ops[] = { nvme_cmd_resv_register, nvme_cmd_resv_acquire,
					       nvme_cmd_resv_release, nvme_cmd_resv_report };
		static const uint64_t keys[] = { 0, 0x1111, 0x2222 };
		uint8_t ob = u8(f), kb = u8(f), ab = u8(f), tb = u8(f);
		uint64_t k[2] = { htole64(keys[kb % 3]), htole64(keys[(kb >> 2) % 3]) };

		nvt_host_sqe_init(&sqe, ops[ob % 4], pick_nsid(f));
		if (ops[ob % 4] == nvme_cmd_resv_report) {
			sqe.common.cdw10 = htole32(ab % 64);
			sqe.common.cdw11 = htole32(tb & 1);
			want = (ab % 64 + 1) * 4u;
			break;
		}
		sqe.common.cdw10 = htole32((ab & 0xf) | (uint32_t)(tb % 8) << 8 |
					   (uint32_t)(ab >> 6) << 30);
		want = pre_len = ops[ob % 4] == nvme_cmd_resv_release ? 8 : 16;
		memcpy(pre, k, sizeof(k));
		break;
	}
	case T_RAW:
	default:
		for (unsigned int i = 0; i < sizeof(sqe); i++)
			((uint8_t *)&sqe)[i] = u8(f);
		break;
	}
	if (t != T_RAW)
		sqe.common.cid = sl->next_cid++;
	/* Now and then FUSE bits on any command, or a few bytes of the SQE changed. */
	mb = u8(f);
	if (mb >= 192)
		for (unsigned int i = 0; i < 1u + mb % 4; i++)
			((uint8_t *)&sqe)[u8(f) % sizeof(sqe)] = u8(f);
	else if ((mb & 0x30) == 0x30)
		sqe.common.flags = (uint8_t)((sqe.common.flags & ~NVT_SQE_FUSE_MASK) | (mb & 3));
	db = u8(f);
	switch (db % 8) {
	case 0:
		len = 0;
		break;
	case 6:
		len = u16(f) % 8192;
		break;
	case 7:
		len = db == 255 ? MAX_BUF : want + (size_t)(u8(f) % 17) - 8;
		if (len > MAX_BUF)
			len = 0;
		break;
	default:
		len = want;
		break;
	}
	/* A longer command is refused by its NLB against MDTS before any data moves. */
	if (len > MAX_BUF)
		len = MAX_BUF;
	pb = u8(f);
	parts = pb == 255 ? NVT_LOOP_MAX_IOV + 1 : pb < 192 ? 1 : 2u + pb % 4;
	probe.sqe = sqe;
	/* A Compare that matches: the stored blocks as data. */
	if (!pre_len && sqe.common.opcode == nvme_cmd_compare && (db & 0x40) && shadowed(&probe) &&
	    c_slba(&probe) < SHADOW_BLOCKS && c_nlb(&probe) <= SHADOW_BLOCKS - c_slba(&probe))
		submit(f, s, &sqe, len, f->shadow + c_slba(&probe) * SHADOW_BS,
		       (size_t)c_nlb(&probe) * SHADOW_BS, parts);
	else
		submit(f, s, &sqe, len, pre, pre_len, parts);
}

/* QUEUE: a new transport connection in a slot (the old one, if any, dropped first). */
static void op_queue(struct fuzz *f)
{
	uint8_t b = u8(f), d = u8(f);
	static const uint16_t qids[] = { 0, 1, 2, 3 };
	uint16_t qid = (b >> 3) % 5 < 4 ? qids[(b >> 3) % 5] : u16(f);
	/* Shallow mostly: each slot costs the loop transport 4 KiB of PI scratch. */
	uint16_t depth = d < 240 ? 2 + d % 15 : d < 250 ? 2 + d % 63 : u16(f);

	slot_create(f, b % NR_SLOTS, qid, depth);
}

/* TIME: the clock moves (0 to 20 s, or anything) and keep-alive is checked. */
static void op_time(struct fuzz *f)
{
	uint8_t b = u8(f);
	uint64_t ms = b < 200 ? b * 100ull : u32(f);

	f->now_ns += ms * 1000000ull;
	nvt_target_check_keep_alive(f->tgt, f->now_ns);
	for (int s = 0; s < NR_SLOTS; s++)
		slot_check(f, s);
}

/* BRINGUP: what `nvme connect` does, through the same checked path: a shortcut to I/O. */
static void op_bringup(struct fuzz *f)
{
	static const uint32_t katos[] = { 0, 1000, 5000, 120000 };
	uint8_t s = u8(f) % (NR_SLOTS - 1), ch = u8(f), nr_io = 1 + u8(f) % 4, d = u8(f);
	struct slot *admin = &f->slots[s], *io = &f->slots[s + 1];
	const char *host = hostnqns[(ch >> 2) % 3];
	struct nvmf_connect_data dd;
	struct nvt_sqe sqe;
	struct cmd *c;

	slot_create(f, s, 0, BRINGUP_AQ_DEPTH);
	memset(&sqe, 0, sizeof(sqe));
	memset(&dd, 0, sizeof(dd));
	sqe.connect.opcode = NVT_OPC_FABRICS;
	sqe.connect.fctype = NVT_FCTYPE_CONNECT;
	sqe.connect.cid = admin->next_cid++;
	sqe.connect.sqsize = htole16(BRINGUP_AQ_DEPTH - 1);
	sqe.connect.kato = htole32(katos[(ch >> 4) % 4]);
	dd.cntlid = htole16(0xffff);
	nvt_strscpy(dd.subsysnqn, subnqns[(ch & 3) % 3], sizeof(dd.subsysnqn));
	nvt_strscpy(dd.hostnqn, host, sizeof(dd.hostnqn));
	c = submit(f, s, &sqe, sizeof(dd), &dd, sizeof(dd), 1);
	if (!c || !c->done || c->status)
		return;
	dd.cntlid = htole16((uint16_t)c->result);

	memset(&sqe, 0, sizeof(sqe));
	sqe.prop.opcode = NVT_OPC_FABRICS;
	sqe.prop.fctype = NVT_FCTYPE_PROP_SET;
	sqe.prop.cid = admin->next_cid++;
	sqe.prop.offset = htole32(NVT_PROP_CC);
	sqe.prop.value = htole64((6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT) | 1u);
	submit(f, s, &sqe, 0, NULL, 0, 1);
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_NUM_QUEUES,
			      (nr_io - 1u) | (nr_io - 1u) << 16);
	sqe.common.cid = admin->next_cid++;
	submit(f, s, &sqe, 0, NULL, 0, 1);

	slot_create(f, s + 1, (uint16_t)(1 + d % nr_io), (uint16_t)(2 + d % 16));
	memset(&sqe, 0, sizeof(sqe));
	sqe.connect.opcode = NVT_OPC_FABRICS;
	sqe.connect.fctype = NVT_FCTYPE_CONNECT;
	sqe.connect.cid = io->next_cid++;
	sqe.connect.qid = htole16(io->qid);
	sqe.connect.sqsize = htole16((uint16_t)(io->depth - 1));
	submit(f, s + 1, &sqe, sizeof(dd), &dd, sizeof(dd), 1);
}

/* ---- the end: nothing left over, and a new host still gets service ---- */

static void final_checks(struct fuzz *f)
{
	struct nvt_loop_ctrl ctrl;
	struct nvme_id_ctrl id;
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint8_t *back;
	int ret;

	for (int s = 0; s < NR_SLOTS; s++)
		slot_destroy(f, s);
	for (unsigned int i = 0; i < f->nr_cmds; i++)
		nvt_fuzz_check(!f->cmds[i].submitted || f->cmds[i].done,
			       "cid %u on qid %u never completed", f->cmds[i].cid, f->cmds[i].qid);
	ret = nvt_loop_ctrl_connect(f->tgt, SUB_A, HOST, 1, 4, 0, &ctrl);
	nvt_fuzz_check(!ret, "a fresh controller cannot connect after the program: %d", ret);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	ret = nvt_loop_exec(ctrl.admin, &sqe, &id, sizeof(id), &cqe);
	nvt_fuzz_check(!ret, "Identify on a fresh controller: %#x", ret);
	nvt_fuzz_check(!strncmp(id.subnqn, SUB_A, sizeof(id.subnqn)), "Identify: subnqn %.32s",
		       id.subnqn);
	/* A reservation the program left may keep this host out: the read-back checks data. */
	nvt_resv_init(&nvt_target_find_subsys(f->tgt, SUB_A)->ns[1]->resv);
	back = malloc(sizeof(f->shadow));
	nvt_fuzz_check(back, "malloc");
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, SHADOW_BLOCKS);
	ret = nvt_loop_exec(ctrl.io[0], &sqe, back, sizeof(f->shadow), &cqe);
	nvt_fuzz_check(!ret, "reading nsid 1 back: %#x", ret);
	nvt_fuzz_check(!memcmp(back, f->shadow, sizeof(f->shadow)),
		       "nsid 1 at the end differs from every successful write");
	free(back);
	nvt_loop_ctrl_disconnect(&ctrl);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Errors only: each one reaches __wrap_nvt_log and is a finding. */
	nvt_log_set_level(NVT_LOG_ERR);
	trace = getenv("NVT_FUZZ_TRACE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz *f = calloc(1, sizeof(*f));

	nvt_fuzz_check(f, "calloc");
	nvt_log_set_level(NVT_LOG_ERR);
	F = f;
	f->in.p = data;
	f->in.n = size;
	f->tgt = target_create();
	f->now_ns = nvt_now_ns();
	for (int s = 0; s < NR_SLOTS; s++)
		f->slots[s].last = -1;
	for (unsigned int ops = 0; f->in.i < f->in.n && ops < MAX_OPS; ops++) {
		if (trace)
			fprintf(stderr, "trace: op %u at byte %zu: %u\n", ops, f->in.i, f->in.p[f->in.i] % 10);
		switch (u8(f) % 10) {
		case 0:
			op_queue(f);
			break;
		case 1:
			op_connect(f);
			break;
		case 2:
			slot_destroy(f, u8(f) % NR_SLOTS);
			break;
		case 5:
			f->hold_next = true;
			break;
		case 6:
			op_time(f);
			break;
		case 7:
			op_bringup(f);
			break;
		case 8:
			op_release(f);
			break;
		default:
			op_submit(f);
			break;
		}
	}
	final_checks(f);
	nvt_target_destroy(f->tgt);
	F = NULL;
	free(f);
	return 0;
}
