/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz harness for the SCSI command layer: CDBs with fuzzer-shaped data and PI iovecs straight into nvt_scsi_exec() on RAM namespaces of every PI format. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nvt/backend.h"
#include "nvt/config.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/scsi.h"
#include "nvt/util.h"

/*
 * The input (past its end it reads as zeroes):
 *   byte 0, 1     the formats of LUN 0 and LUN 1 (index into fmts[])
 *   then up to MAX_OPS operations, op byte % 4:
 *     0, 1, 2 EXEC  slot, lun, cdb length + bytes, flags, data length,
 *                   data pieces, PI length and pieces, data-out bytes
 *     3 WAIT        run the poll group until every task has completed
 * flags: bit 0 data-out, bit 1 data length x 64, bit 2 a PI buffer,
 * bit 3 wait for this task at once, bit 4 data-out bytes from the input
 * (else a pattern), bit 5 an empty iovec between the pieces.
 * Every buffer piece is its own allocation, so ASan sees a write one byte
 * past any of them. The invariants, each an abort: done() once per task,
 * never for an idle slot; sense no longer than its buffer and present on
 * CHECK CONDITION; resid within the data length; every task completes.
 */

#define NR_SLOTS	4
#define MAX_OPS		48
#define MAX_PIECES	8
#define MAX_DATA	(1u << 20)
#define NS_BYTES	(256u << 10)	/* per namespace: 512 blocks of 512, 64 of 4096 */

static const struct fmt {
	enum nvt_pi_type type;
	enum nvt_pi_guard guard;
	uint32_t bs;
	uint16_t md;
} fmts[] = {
	{ NVT_PI_NONE, NVT_PI_GUARD_CRC16, 512, 0 },
	{ NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, 512, 8 },
	{ NVT_PI_TYPE2, NVT_PI_GUARD_CRC16, 512, 8 },
	{ NVT_PI_TYPE3, NVT_PI_GUARD_CRC16, 512, 8 },
	{ NVT_PI_TYPE1, NVT_PI_GUARD_CRC64, 512, 16 },
	{ NVT_PI_NONE, NVT_PI_GUARD_CRC16, 512, 8 },	/* opaque metadata */
	{ NVT_PI_TYPE1, NVT_PI_GUARD_CRC16, 4096, 8 },
	{ NVT_PI_NONE, NVT_PI_GUARD_CRC16, 4096, 0 },
};

struct slot {
	struct nvt_scsi_task *t;
	bool busy;
	unsigned int nr_bufs;
	void *bufs[2 * MAX_PIECES + 2];
	struct iovec data[MAX_PIECES + 1], pi[MAX_PIECES + 1];
};

struct env {
	struct nvt_fuzz_input in;
	struct nvt_poll_group *pg;
	struct nvt_ns ns[2];
	struct nvt_scsi_lun lun[2];
	struct nvt_scsi_dev dev;
	struct nvt_scsi_queue q;
	struct slot slots[NR_SLOTS];
	unsigned int busy;
};

static bool trace;

static uint8_t u8(struct env *e)
{
	return nvt_fuzz_u8(&e->in);
}

static uint16_t u16(struct env *e)
{
	return nvt_fuzz_u16(&e->in);
}

static void ns_open(struct env *e, int i, const struct fmt *f)
{
	struct nvt_ns *ns = &e->ns[i];
	struct nvt_ns_cfg cfg;
	int ret;

	memset(&cfg, 0, sizeof(cfg));
	ns->nsid = (uint32_t)i + 1;
	ns->be = &nvt_ram_backend_ops;
	ns->nblocks = NS_BYTES / f->bs;
	ns->block_size = f->bs;
	ns->lba_shift = f->bs == 4096 ? 12 : 9;
	ns->md_size = f->md;
	ns->pi = (struct nvt_pi_format){ .type = f->type, .guard = f->guard, .block_size = f->bs,
					 .md_size = f->md };
	for (int b = 0; b < 16; b++)
		ns->nguid[b] = (uint8_t)(0x10 * (i + 1) + b);
	ret = ns->be->open(ns, &cfg);
	nvt_fuzz_check(!ret, "ram open: %d", ret);
	ret = nvt_ns_chan_create(ns, e->pg);
	nvt_fuzz_check(!ret, "channel: %d", ret);
	ret = nvt_scsi_lun_init(&e->lun[i], ns, (uint16_t)i);
	nvt_fuzz_check(!ret, "lun init: %d", ret);
	ret = nvt_scsi_register_lun(&e->lun[i]);
	nvt_fuzz_check(!ret, "register: %d", ret);
	e->dev.luns[i] = &e->lun[i];
}

static struct env *env_create(const uint8_t *data, size_t size)
{
	struct env *e = calloc(1, sizeof(*e));
	int ret;

	nvt_fuzz_check(e, "calloc");
	e->in.p = data;
	e->in.n = size;
	ret = nvt_poll_group_create(&e->pg);
	nvt_fuzz_check(!ret, "poll group: %d", ret);
	nvt_poll_group_set_slot(e->pg, 0);
	ns_open(e, 0, &fmts[u8(e) % NVT_ARRAY_SIZE(fmts)]);
	ns_open(e, 1, &fmts[u8(e) % NVT_ARRAY_SIZE(fmts)]);
	e->dev.nr_luns = 2;
	strcpy(e->dev.name, "fuzz");
	ret = nvt_scsi_queue_init(&e->q, e->pg);
	nvt_fuzz_check(!ret, "queue init: %d", ret);
	for (int s = 0; s < NR_SLOTS; s++) {
		e->slots[s].t = calloc(1, sizeof(struct nvt_scsi_task));
		nvt_fuzz_check(e->slots[s].t, "calloc");
	}
	return e;
}

static void slot_free_bufs(struct slot *s)
{
	for (unsigned int i = 0; i < s->nr_bufs; i++)
		free(s->bufs[i]);
	s->nr_bufs = 0;
}

static void env_destroy(struct env *e)
{
	for (int i = 0; i < 2; i++) {
		nvt_scsi_unregister_lun(&e->lun[i]);
		nvt_scsi_lun_fini(&e->lun[i]);
		nvt_ns_chan_destroy(&e->ns[i], e->pg);
		e->ns[i].be->close(&e->ns[i]);
	}
	nvt_scsi_queue_fini(&e->q);
	nvt_poll_group_destroy(e->pg);
	for (int s = 0; s < NR_SLOTS; s++) {
		slot_free_bufs(&e->slots[s]);
		free(e->slots[s].t);
	}
	free(e);
}

static struct env *E;	/* for done(): the task's slot */

static void task_done(struct nvt_scsi_task *t)
{
	struct slot *s = NULL;

	for (int i = 0; i < NR_SLOTS; i++)
		if (E->slots[i].t == t)
			s = &E->slots[i];
	nvt_fuzz_check(s, "done() for a task nobody submitted");
	nvt_fuzz_check(s->busy, "done() twice for one task (cdb %02x)", t->cdb[0]);
	nvt_fuzz_check(t->sense_len <= NVT_SCSI_SENSE_MAX, "sense_len %u", t->sense_len);
	nvt_fuzz_check(t->status != NVT_SCSI_CHECK_CONDITION || t->sense_len > 0,
		       "CHECK CONDITION without sense (cdb %02x)", t->cdb[0]);
	nvt_fuzz_check(t->resid <= t->data_len, "resid %u > data length %u (cdb %02x)", t->resid,
		       t->data_len, t->cdb[0]);
	if (trace)
		fprintf(stderr, "trace: done cdb %02x status %#x sense %02x/%02x/%02x resid %u\n",
			t->cdb[0], t->status, t->sense[2] & 0xf, t->sense[12], t->sense[13], t->resid);
	s->busy = false;
	E->busy--;
}

/* Run the poll group until every task is done; one that never is, is a finding. */
static void wait_all(struct env *e)
{
	for (int i = 0; i < 100000 && e->busy; i++)
		nvt_poll_group_poll(e->pg, 0);
	nvt_fuzz_check(!e->busy, "%u tasks never completed", e->busy);
}

/* @len bytes cut into @nr pieces at input-chosen points, each its own allocation. */
static unsigned int cut(struct env *e, struct slot *s, struct iovec *iov, uint32_t len,
			unsigned int nr, bool empty, bool fill, uint8_t pattern)
{
	unsigned int n = 0;
	uint32_t left = len;

	for (unsigned int i = 0; i < nr && (left || !i); i++) {
		uint32_t piece = i + 1 == nr ? left : (uint32_t)(((uint64_t)left * u8(e)) / 255);
		uint8_t *b;

		if (empty && i == 1)
			iov[n++] = (struct iovec){ NULL, 0 };
		b = malloc(piece ? piece : 1);
		nvt_fuzz_check(b, "malloc %u", piece);
		s->bufs[s->nr_bufs++] = b;
		for (uint32_t k = 0; k < piece; k++)
			b[k] = fill && e->in.i < e->in.n ? u8(e) : (uint8_t)(pattern + k * 7);
		iov[n++] = (struct iovec){ b, piece };
		left -= piece;
	}
	return n;
}

static void op_exec(struct env *e)
{
	struct slot *s = &e->slots[u8(e) % NR_SLOTS];
	struct nvt_scsi_task *t = s->t;
	uint8_t lun = u8(e) % 3, cdb_len = u8(e) % (NVT_SCSI_CDB_MAX + 1), flags;
	uint32_t len, pi_len = 0;
	unsigned int pieces, pi_pieces = 0;

	if (s->busy)
		wait_all(e);
	slot_free_bufs(s);
	memset(t, 0, sizeof(*t));
	for (unsigned int i = 0; i < cdb_len; i++)
		t->cdb[i] = u8(e);
	flags = u8(e);
	len = u16(e);
	if (flags & 2)
		len *= 16;
	if (len > MAX_DATA)
		len = MAX_DATA;
	pieces = 1 + u8(e) % MAX_PIECES;
	if (flags & 4) {
		pi_len = u16(e) % 8192;
		pi_pieces = 1 + u8(e) % MAX_PIECES;
	}
	t->dev = &e->dev;
	t->lun = lun < 2 ? &e->lun[lun] : NULL;
	t->queue = &e->q;
	t->to_dev = flags & 1;
	t->data_iov = s->data;
	t->data_len = len;
	t->data_cnt = len ? cut(e, s, s->data, len, pieces, flags & 32, t->to_dev && (flags & 16), 0x5a) : 0;
	if (pi_len) {
		t->pi_iov = s->pi;
		t->pi_len = pi_len;
		t->pi_cnt = cut(e, s, s->pi, pi_len, pi_pieces, false, t->to_dev && (flags & 16), 0);
	}
	t->done = task_done;
	if (trace)
		fprintf(stderr, "trace: exec lun %u cdb %02x %s len %u pi %u\n", lun, t->cdb[0],
			t->to_dev ? "out" : "in", len, pi_len);
	s->busy = true;
	e->busy++;
	nvt_scsi_exec(t);	/* may complete inline */
	if (flags & 8)
		wait_all(e);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	trace = getenv("NVT_FUZZ_TRACE") != NULL;
	/* Guest-caused warnings are expected by the thousand; the invariants and sanitizers judge. */
	nvt_log_set_level(trace ? NVT_LOG_DEBUG : NVT_LOG_OFF);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env *e = env_create(data, size);

	E = e;
	for (unsigned int ops = 0; e->in.i < e->in.n && ops < MAX_OPS; ops++) {
		if (u8(e) % 4 == 3)
			wait_all(e);
		else
			op_exec(e);
	}
	wait_all(e);
	env_destroy(e);
	E = NULL;
	return 0;
}
