/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for the virtio-scsi queues: header layouts with and without PI parsed by bytes, LUN addressing, and requests, TMFs and stops through a fake SCSI layer. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvt/log.h"
#include "nvt/target.h"
#include "../../transport/vhost/vhost_int.h"

/* ---- the fake SCSI layer: records the task, completes it inline or holds it ---- */

static struct nvt_scsi_task *last_task;
static struct nvt_scsi_task *held[8];
static unsigned int nr_held;
static bool hold_tasks;
static struct nvt_vhost_vq *refill_vq;	/* a guest that makes head 0 available again at every command */
static unsigned int nr_exec, nr_drained;

void nvt_scsi_exec(struct nvt_scsi_task *t)
{
	nr_exec++;
	last_task = t;
	if (refill_vq) {
		struct nvt_vring_avail *a = refill_vq->vr.avail;

		a->ring[a->idx % refill_vq->vr.num] = 0;
		__atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
	}
	if (hold_tasks) {
		held[nr_held++] = t;
		return;
	}
	t->status = NVT_SCSI_CHECK_CONDITION;
	t->sense[0] = 0x70;
	t->sense[2] = 0x05;
	t->sense_len = 18;
	t->resid = t->to_dev ? 0 : 512;
	t->done(t);
}

int nvt_scsi_queue_init(struct nvt_scsi_queue *q, struct nvt_poll_group *pg)
{
	q->pg = pg;
	return 0;
}

void nvt_scsi_queue_fini(struct nvt_scsi_queue *q)
{
	q->pg = NULL;
}

void nvt_vhost_vq_drained(struct nvt_pg_msg *m)
{
	(void)m;
	nr_drained++;
}

/* ---- parsing ---- */

static void test_layouts(void **state)
{
	(void)state;
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_req, tag), 8);
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_req, cdb), 19);
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_req_pi, pi_bytesout), 19);
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_req_pi, pi_bytesin), 23);
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_req_pi, cdb), 27);
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_resp, status), 10);
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_resp, response), 11);
	assert_int_equal(offsetof(struct nvt_vscsi_cmd_resp, sense), 12);
}

static void test_lun_decode(void **state)
{
	uint8_t lun[8] = { 1, 0, 0x40, 0 };

	(void)state;
	assert_int_equal(nvt_vscsi_lun_decode(lun), 0);
	lun[2] = 0x40 | 0x3f;
	lun[3] = 0xff;
	assert_int_equal(nvt_vscsi_lun_decode(lun), 16383);
	lun[2] = 0x41;
	lun[3] = 0x02;
	assert_int_equal(nvt_vscsi_lun_decode(lun), 0x102);
	lun[1] = 1;	/* target 1: absent */
	assert_int_equal(nvt_vscsi_lun_decode(lun), -1);
	lun[1] = 0;
	lun[0] = 0;
	assert_int_equal(nvt_vscsi_lun_decode(lun), -1);
}

/* A PI write: header, 16 PI bytes and 4 KiB data, split at odd places over five buffers. */
static void test_parse_pi_split(void **state)
{
	struct nvt_vscsi_cmd_req_pi h = { .lun = { 1, 0, 0x40, 3 }, .tag = htole64(77),
					  .pi_bytesout = htole32(16), .cdb = { 0x2a } };
	uint8_t out[59 + 16 + 4096], resp[108];
	struct iovec iov[6] = {
		{ out, 10 }, { out + 10, 60 }, { out + 70, 100 }, { out + 170, 4001 },
		{ out + 4171, sizeof(out) - 4171 }, { resp, sizeof(resp) },
	};
	struct nvt_vscsi_parsed p;

	(void)state;
	memcpy(out, &h, sizeof(h));
	assert_int_equal(nvt_vscsi_parse(iov, 5, 1, true, &p), 0);
	assert_int_equal(p.tag, 77);
	assert_int_equal(p.cdb[0], 0x2a);
	assert_int_equal(p.lun[3], 3);
	assert_int_equal(p.pi_out, 16);
	assert_int_equal(p.data_out, 4096);
	assert_int_equal(p.data_in, 0);
	/* The same bytes read without PI: a 51-byte header, the rest is data. */
	assert_int_equal(nvt_vscsi_parse(iov, 5, 1, false, &p), 0);
	assert_int_equal(p.pi_out, 0);
	assert_int_equal(p.data_out, sizeof(out) - 51);
	/* PI beyond what follows the header. */
	h.pi_bytesout = htole32(4113);
	memcpy(out, &h, sizeof(h));
	assert_int_equal(nvt_vscsi_parse(iov, 5, 1, true, &p), -EINVAL);
	h.pi_bytesout = htole32(4112);
	memcpy(out, &h, sizeof(h));
	assert_int_equal(nvt_vscsi_parse(iov, 5, 1, true, &p), 0);
	assert_int_equal(p.data_out, 0);
}

static void test_parse_read(void **state)
{
	struct nvt_vscsi_cmd_req_pi h = { .lun = { 1, 0, 0x40, 0 }, .pi_bytesin = htole32(8),
					  .cdb = { 0x28 } };
	uint8_t in[108 + 8 + 512];
	struct iovec iov[3] = { { &h, sizeof(h) }, { in, 100 }, { in + 100, sizeof(in) - 100 } };
	struct nvt_vscsi_parsed p;

	(void)state;
	assert_int_equal(nvt_vscsi_parse(iov, 1, 2, true, &p), 0);
	assert_int_equal(p.pi_in, 8);
	assert_int_equal(p.data_in, 512);
	assert_int_equal(p.resp_room, sizeof(in));
	/* PI in beyond the writable bytes. */
	h.pi_bytesin = htole32(521);
	assert_int_equal(nvt_vscsi_parse(iov, 1, 2, true, &p), -EINVAL);
	/* Short header, short response, both directions. */
	h.pi_bytesin = 0;
	iov[0].iov_len = 58;
	assert_int_equal(nvt_vscsi_parse(iov, 1, 2, true, &p), -EINVAL);
	iov[0].iov_len = sizeof(h);
	iov[1].iov_len = 107;
	assert_int_equal(nvt_vscsi_parse(iov, 1, 1, true, &p), -EINVAL);
	{
		uint8_t both[59 + 512];
		struct iovec iov2[2] = { { both, sizeof(both) }, { in, sizeof(in) } };

		memcpy(both, &h, sizeof(h));
		assert_int_equal(nvt_vscsi_parse(iov2, 1, 1, true, &p), -EINVAL);
	}
}

/* ---- requests through a queue on a real poll group, guest memory in a memfd ---- */

#define MEM	(1u << 20)
#define NUM	8

struct qfix {
	struct nvt_target tgt;
	struct nvt_vhost_ctrl *ctrl;
	struct nvt_vhost_conn conn;
	struct nvt_vhost_vq *vq;
	struct nvt_vhost_vq *ctlq;
	struct nvt_scsi_lun lun;
	int fd;
	uint8_t *g;
};

/* Does the library's pointer @p show the guest byte at @gpa? */
static bool same(struct qfix *f, const void *p, size_t gpa)
{
	volatile uint8_t *q = (volatile uint8_t *)p;

	f->g[gpa] = 0x5a;
	if (*q != 0x5a)
		return false;
	f->g[gpa] = 0xa5;
	return *q == 0xa5;
}

static int qsetup(void **state)
{
	struct qfix *f = calloc(1, sizeof(*f));
	struct nvt_vhost_msg m;

	memset(&m, 0, sizeof(m));
	assert_int_equal(nvt_poll_group_create(&f->tgt.pg), 0);
	f->ctrl = calloc(1, sizeof(*f->ctrl));
	f->ctrl->tgt = &f->tgt;
	f->ctrl->by_id[5] = &f->lun;
	f->conn.ctrl = f->ctrl;
	f->fd = memfd_create("guest", MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(f->fd, MEM), 0);
	assert_int_equal(fcntl(f->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	f->g = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	m.payload.mem.nregions = 1;
	m.payload.mem.regions[0] = (struct nvt_vhost_mem_region_wire){ .memory_size = MEM };
	m.fds[0] = f->fd;
	m.nr_fds = 1;
	assert_int_equal(nvt_vhost_mem_map(&f->conn.mem, &m), 0);
	for (unsigned int i = 0; i < 3; i += 2) {
		struct nvt_vhost_vq *vq = calloc(1, sizeof(*vq));

		vq->conn = &f->conn;
		vq->idx = i;
		vq->pg = f->tgt.pg;
		vq->num = NUM;
		vq->kick_fd = eventfd(0, EFD_NONBLOCK);
		vq->vr.num = NUM;
		vq->vr.mem = &f->conn.mem;
		/* Rings at 0x1000 (control) and 0x4000 (requests). */
		vq->vr.desc = (void *)(f->g + 0x1000 + i * 0x1800);
		vq->vr.avail = (void *)(f->g + 0x1000 + i * 0x1800 + 0x400);
		vq->vr.used = (void *)(f->g + 0x1000 + i * 0x1800 + 0x800);
		vq->vr.call_fd = -1;
		vq->vr.err_fd = -1;
		atomic_init(&vq->vr.next_call_fd, NVT_VRING_CALL_SAME);
		atomic_init(&vq->enabled, true);
		assert_int_equal(nvt_vscsi_vq_prepare(vq), 0);
		f->conn.vqs[i] = vq;
	}
	f->ctlq = f->conn.vqs[0];
	f->vq = f->conn.vqs[2];
	nvt_vscsi_vq_start(f->ctlq);
	nvt_vscsi_vq_start(f->vq);
	nvt_poll_group_run_pending(f->tgt.pg);
	nr_exec = nr_drained = nr_held = 0;
	hold_tasks = false;
	refill_vq = NULL;
	*state = f;
	return 0;
}

static int qteardown(void **state)
{
	struct qfix *f = *state;

	for (unsigned int i = 0; i < 3; i += 2) {
		if (f->conn.vqs[i]->running)
			nvt_poll_group_del(f->tgt.pg, &f->conn.vqs[i]->kick_watch);
		close(f->conn.vqs[i]->kick_fd);
		nvt_vscsi_vq_free(f->conn.vqs[i]);
		free(f->conn.vqs[i]);
	}
	nvt_vhost_mem_unmap(&f->conn.mem);
	munmap(f->g, MEM);
	close(f->fd);
	nvt_poll_group_destroy(f->tgt.pg);
	free(f->ctrl);
	free(f);
	return 0;
}

static void desc(struct nvt_vhost_vq *vq, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	vq->vr.desc[i] = (struct nvt_vring_desc){ addr, len, flags, next };
}

/* What a kick does: pop and serve what is available. */
static void process(struct qfix *f, struct nvt_vhost_vq *vq)
{
	nvt_vscsi_vq_start(vq);
	nvt_poll_group_run_pending(f->tgt.pg);
}

static void make_avail(struct nvt_vhost_vq *vq, uint16_t head)
{
	vq->vr.avail->ring[vq->vr.avail->idx % NUM] = head;
	vq->vr.avail->idx++;
}

/* A PI read of LUN 5: header, then response + 8 PI bytes + 512 data in one writable buffer. */
static void test_queue_read_pi(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req_pi h = { .lun = { 1, 0, 0x40, 5 }, .pi_bytesin = htole32(8),
					  .cdb = { 0x28, 0, 0, 0, 0, 9 } };
	struct nvt_vscsi_cmd_resp *r = (void *)(f->g + 0x20000);

	atomic_store(&f->conn.pi, true);
	memcpy(f->g + 0x10000, &h, sizeof(h));
	memset(r, 0xee, sizeof(*r));
	desc(f->vq, 3, 0x10000, sizeof(h), NVT_VRING_DESC_F_NEXT, 4);
	desc(f->vq, 4, 0x20000, 108 + 8 + 512, NVT_VRING_DESC_F_WRITE, 0);
	make_avail(f->vq, 3);
	process(f, f->vq);
	assert_int_equal(nr_exec, 1);
	assert_ptr_equal(last_task->lun, &f->lun);
	assert_false(last_task->to_dev);
	assert_int_equal(last_task->cdb[5], 9);
	assert_int_equal(last_task->pi_len, 8);
	assert_true(same(f, last_task->pi_iov[0].iov_base, 0x20000 + 108));
	assert_int_equal(last_task->data_len, 512);
	assert_true(same(f, last_task->data_iov[0].iov_base, 0x20000 + 116));
	/* The fake answered CHECK CONDITION with 18 bytes of sense and the whole read as residual. */
	assert_int_equal(f->vq->vr.used->idx, 1);
	assert_int_equal(f->vq->vr.used->ring[0].id, 3);
	assert_int_equal(f->vq->vr.used->ring[0].len, 108 + 8);
	assert_int_equal(r->response, NVT_VSCSI_S_OK);
	assert_int_equal(r->status, NVT_SCSI_CHECK_CONDITION);
	assert_int_equal(le32toh(r->sense_len), 18);
	assert_int_equal(le32toh(r->resid), 512);
	assert_int_equal(r->sense[2], 5);
	assert_int_equal(f->vq->inflight, 0);
}

/* A PI write as Linux sends one: the PI in many pieces (one per integrity vector), then the data in many. */
static void test_queue_write_pi_many_pieces(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req_pi h = { .lun = { 1, 0, 0x40, 5 }, .pi_bytesout = htole32(67 * 8),
					  .cdb = { 0x2a } };
	struct nvt_vring_desc *t = (void *)(f->g + 0x40000);	/* indirect table */
	unsigned int n = 0;

	atomic_store(&f->conn.pi, true);
	memcpy(f->g + 0x10000, &h, sizeof(h));
	t[n++] = (struct nvt_vring_desc){ 0x10000, sizeof(h), NVT_VRING_DESC_F_NEXT, 0 };
	for (unsigned int i = 0; i < 67; i++)
		t[n++] = (struct nvt_vring_desc){ 0x50000 + i * 64, 8, NVT_VRING_DESC_F_NEXT, 0 };
	for (unsigned int i = 0; i < 67; i++)
		t[n++] = (struct nvt_vring_desc){ 0x60000 + i * 1024, 512, NVT_VRING_DESC_F_NEXT, 0 };
	t[n++] = (struct nvt_vring_desc){ 0x20000, 108, NVT_VRING_DESC_F_WRITE, 0 };
	for (unsigned int i = 0; i + 1 < n; i++)
		t[i].next = (uint16_t)(i + 1);
	desc(f->vq, 2, 0x40000, n * 16, NVT_VRING_DESC_F_INDIRECT, 0);
	make_avail(f->vq, 2);
	process(f, f->vq);
	assert_int_equal(nr_exec, 1);
	assert_true(last_task->to_dev);
	assert_int_equal(last_task->pi_len, 67 * 8);
	assert_int_equal(last_task->pi_cnt, 67);
	assert_int_equal(last_task->data_len, 67 * 512);
	assert_int_equal(last_task->data_cnt, 67);
	assert_true(same(f, last_task->data_iov[66].iov_base, 0x60000 + 66 * 1024));
	assert_true(same(f, last_task->pi_iov[0].iov_base, 0x50000));
}

/* Target 1 is absent: BAD_TARGET without the SCSI layer; a short header fails the request. */
static void test_queue_bad_target_and_short(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req h = { .lun = { 1, 1, 0x40, 0 }, .cdb = { 0x12 } };
	struct nvt_vscsi_cmd_resp *r = (void *)(f->g + 0x20000);

	memcpy(f->g + 0x10000, &h, sizeof(h));
	desc(f->vq, 0, 0x10000, sizeof(h), NVT_VRING_DESC_F_NEXT, 1);
	desc(f->vq, 1, 0x20000, 108, NVT_VRING_DESC_F_WRITE, 0);
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(nr_exec, 0);
	assert_int_equal(r->response, NVT_VSCSI_S_BAD_TARGET);
	desc(f->vq, 0, 0x10000, 50, NVT_VRING_DESC_F_NEXT, 1);
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(nr_exec, 0);
	assert_int_equal(r->response, NVT_VSCSI_S_FAILURE);
	/* A chain into a hole of guest memory: pushed back empty. */
	desc(f->vq, 0, MEM, 51, NVT_VRING_DESC_F_NEXT, 1);
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(f->vq->vr.used->idx, 3);
	assert_int_equal(f->vq->vr.used->ring[2].len, 0);
}

/* A one-block WRITE(10) from @h, held by the fake layer: its data out at 0x10000, its response at 0x20000. */
static void post_held_write(struct qfix *f, const struct nvt_vscsi_cmd_req *h)
{
	memcpy(f->g + 0x10000, h, sizeof(*h));
	desc(f->vq, 0, 0x10000, sizeof(*h) + 512, NVT_VRING_DESC_F_NEXT, 1);
	desc(f->vq, 1, 0x20000, 108, NVT_VRING_DESC_F_WRITE, 0);
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(nr_held, 1);
}

#define TMF_RESP 0x31000	/* where post_tmf() has the one-byte response written */

/* @tmf on the control queue; its response byte is set to FFh first, to see it written. */
static void post_tmf(struct qfix *f, const struct nvt_vscsi_ctrl_tmf_req *tmf)
{
	memcpy(f->g + 0x30000, tmf, sizeof(*tmf));
	f->g[TMF_RESP] = 0xff;
	desc(f->ctlq, 2, 0x30000, sizeof(*tmf), NVT_VRING_DESC_F_NEXT, 3);
	desc(f->ctlq, 3, TMF_RESP, 1, NVT_VRING_DESC_F_WRITE, 0);
	make_avail(f->ctlq, 2);
	process(f, f->ctlq);
}

/* A LUN reset is answered only once the request it covers has completed; a stop waits likewise. */
static void test_tmf_waits(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req h = { .lun = { 1, 0, 0x40, 5 }, .cdb = { 0x2a } };
	struct nvt_vscsi_ctrl_tmf_req tmf = { .type = NVT_VSCSI_T_TMF,
					      .subtype = NVT_VSCSI_T_TMF_LOGICAL_UNIT_RESET,
					      .lun = { 1, 0, 0x40, 5 } };
	uint8_t *tmf_resp = f->g + TMF_RESP;

	hold_tasks = true;
	post_held_write(f, &h);
	assert_true(held[0]->to_dev);
	assert_int_equal(held[0]->data_len, 512);

	post_tmf(f, &tmf);
	nvt_poll_group_poll(f->tgt.pg, 0);
	assert_int_equal(f->ctlq->vr.used->idx, 0);
	assert_int_equal(*tmf_resp, 0xff);

	/* Stop the request queue: nothing drains while the write is held. */
	nvt_vscsi_vq_stop(f->vq);
	nvt_poll_group_poll(f->tgt.pg, 0);
	nvt_poll_group_poll(f->tgt.pg, 0);
	assert_int_equal(nr_drained, 0);

	held[0]->status = NVT_SCSI_GOOD;
	held[0]->resid = 0;
	held[0]->done(held[0]);
	assert_int_equal(f->vq->vr.used->idx, 1);
	assert_int_equal(f->vq->vr.used->ring[0].len, 108);
	/* The deferred drained message, then the TMF timer (1 ms). */
	for (int i = 0; i < 100 && (nr_drained < 1 || f->ctlq->vr.used->idx < 1); i++)
		nvt_poll_group_poll(f->tgt.pg, 10);
	assert_int_equal(nr_drained, 1);
	assert_int_equal(f->ctlq->vr.used->idx, 1);
	assert_int_equal(*tmf_resp, NVT_VSCSI_S_FUNCTION_COMPLETE);
}

/* A head made available twice while in flight breaks the queue instead of reusing the slot. */
static void test_duplicate_head(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req h = { .lun = { 1, 0, 0x40, 5 }, .cdb = { 0x28 } };

	hold_tasks = true;
	memcpy(f->g + 0x10000, &h, sizeof(h));
	desc(f->vq, 0, 0x10000, sizeof(h), NVT_VRING_DESC_F_NEXT, 1);
	desc(f->vq, 1, 0x20000, 108 + 512, NVT_VRING_DESC_F_WRITE, 0);
	make_avail(f->vq, 0);
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(nr_exec, 1);
	assert_true(f->vq->vr.broken);
	held[0]->done(held[0]);
	assert_int_equal(f->vq->vr.used->idx, 1);
}

/*
 * The reviewer's tmf.c: an abort covers task A, still in flight; a later
 * request popped after the TMF completes at once. The TMF must still wait
 * for A (a count of completions let the later one pay for it).
 */
static void test_tmf_later_completion(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req h = { .lun = { 1, 0, 0x40, 5 }, .cdb = { 0x2a } };
	struct nvt_vscsi_cmd_req tur = { .lun = { 1, 0, 0x40, 5 }, .cdb = { 0x00 } };
	struct nvt_vscsi_ctrl_tmf_req tmf = { .type = NVT_VSCSI_T_TMF,
					      .subtype = NVT_VSCSI_T_TMF_ABORT_TASK,
					      .lun = { 1, 0, 0x40, 5 } };
	uint8_t *tmf_resp = f->g + TMF_RESP;

	hold_tasks = true;
	post_held_write(f, &h);

	post_tmf(f, &tmf);
	assert_int_equal(f->ctlq->vr.used->idx, 0);

	/* The later request completes inline; the TMF timer runs a few times. */
	hold_tasks = false;
	memcpy(f->g + 0x12000, &tur, sizeof(tur));
	desc(f->vq, 4, 0x12000, sizeof(tur), NVT_VRING_DESC_F_NEXT, 5);
	desc(f->vq, 5, 0x22000, 108, NVT_VRING_DESC_F_WRITE, 0);
	make_avail(f->vq, 4);
	process(f, f->vq);
	assert_int_equal(f->vq->vr.used->idx, 1);
	for (int i = 0; i < 10; i++)
		nvt_poll_group_poll(f->tgt.pg, 3);
	assert_int_equal(f->ctlq->vr.used->idx, 0);
	assert_int_equal(*tmf_resp, 0xff);

	/* A completes: now the TMF is answered. */
	held[0]->done(held[0]);
	for (int i = 0; i < 100 && f->ctlq->vr.used->idx < 1; i++)
		nvt_poll_group_poll(f->tgt.pg, 10);
	assert_int_equal(f->ctlq->vr.used->idx, 1);
	assert_int_equal(*tmf_resp, NVT_VSCSI_S_FUNCTION_COMPLETE);
}

static unsigned int other_served;

/* Another watch of the poll group (an NVMe-oF queue, the control socket). */
static void other_fn(struct nvt_pg_watch *w)
{
	uint64_t n;

	assert_int_equal(read(w->fd, &n, sizeof(n)), 8);
	other_served++;
}

/*
 * The reviewer's starve.c: a guest refilling the ring as fast as we serve
 * it kept one kick inside the pop loop for good. Now a callback pops at
 * most a ring's worth and kicks itself, and another watch of the same poll
 * group is served between batches while the guest keeps going.
 */
static void test_pop_budget(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req h = { .lun = { 1, 0, 0x40, 5 }, .cdb = { 0x00 } };
	struct nvt_pg_watch other = { .fn = other_fn };
	unsigned int polls;
	uint64_t one = 1;

	memcpy(f->g + 0x10000, &h, sizeof(h));
	desc(f->vq, 0, 0x10000, sizeof(h), NVT_VRING_DESC_F_NEXT, 1);
	desc(f->vq, 1, 0x20000, 108, NVT_VRING_DESC_F_WRITE, 0);
	refill_vq = f->vq;
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(nr_exec, NUM);
	assert_int_equal(f->vq->vr.used->idx, NUM);
	/* More is available: the queue kicked itself. */
	assert_int_equal(f->vq->vr.avail->idx, NUM + 1);

	other.fd = eventfd(0, EFD_NONBLOCK);
	other_served = 0;
	assert_int_equal(nvt_poll_group_add(f->tgt.pg, &other), 0);
	for (int round = 0; round < 5; round++) {
		unsigned int before = nr_exec;

		assert_int_equal(write(other.fd, &one, 8), 8);
		for (polls = 0; polls < 10 && other_served == (unsigned int)round; polls++)
			nvt_poll_group_poll(f->tgt.pg, 100);
		assert_int_equal(other_served, round + 1);
		/* The guest's queue moved on too, a batch at a time. */
		assert_true(nr_exec > before);
	}
	refill_vq = NULL;
	for (int i = 0; i < 20; i++)
		nvt_poll_group_poll(f->tgt.pg, 0);
	assert_int_equal(f->vq->vr.used->idx, f->vq->vr.avail->idx);
	nvt_poll_group_del(f->tgt.pg, &other);
	close(other.fd);
}

/* Writable buffers summing to more than 4 GiB: the 32-bit used length would wrap, so the request is refused. */
static void test_parse_used_len_wrap(void **state)
{
	struct nvt_vscsi_cmd_req h = { .lun = { 1, 0, 0x40, 0 }, .cdb = { 0x28 } };
	struct iovec iov[3] = { { &h, sizeof(h) }, { NULL, 0x80000000u }, { NULL, 0x80000000u - 50 } };
	struct nvt_vscsi_parsed p;

	(void)state;
	/* 2^32 + 50 writable bytes: the data alone (less the response) fits 32 bits, the used length does not. */
	iov[2].iov_len = 0x80000000u + 50;
	assert_int_equal(nvt_vscsi_parse(iov, 1, 2, false, &p), -EINVAL);
	/* Exactly UINT32_MAX written in all is fine. */
	iov[2].iov_len = 0x7fffffffu;
	assert_int_equal(nvt_vscsi_parse(iov, 1, 2, false, &p), 0);
	assert_int_equal(p.data_in, 0xffffffffull - 108);
}

/*
 * Head 0 is in flight when the driver makes it available again with a
 * chain into a hole: it is not pushed a second time (the guest would see
 * one request completed twice); the ring breaks, QEMU hears of it on the
 * err fd, and the request in flight is still answered.
 */
static void test_bad_chain_in_flight(void **state)
{
	struct qfix *f = *state;
	struct nvt_vscsi_cmd_req h = { .lun = { 1, 0, 0x40, 5 }, .cdb = { 0x28 } };
	int err = eventfd(0, EFD_NONBLOCK);
	uint64_t n;

	f->vq->vr.err_fd = err;
	hold_tasks = true;
	memcpy(f->g + 0x10000, &h, sizeof(h));
	desc(f->vq, 0, 0x10000, sizeof(h), NVT_VRING_DESC_F_NEXT, 1);
	desc(f->vq, 1, 0x20000, 108 + 512, NVT_VRING_DESC_F_WRITE, 0);
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(nr_held, 1);
	assert_int_equal(read(err, &n, 8), -1);	/* nothing wrong yet */

	desc(f->vq, 0, MEM, 51, 0, 0);		/* a hole */
	make_avail(f->vq, 0);
	process(f, f->vq);
	assert_int_equal(f->vq->vr.used->idx, 0);
	assert_true(f->vq->vr.broken);
	assert_int_equal(read(err, &n, 8), 8);
	held[0]->done(held[0]);
	assert_int_equal(f->vq->vr.used->idx, 1);
	assert_int_equal(f->vq->vr.used->ring[0].id, 0);
	f->vq->vr.err_fd = -1;
	close(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_lun_decode),
		cmocka_unit_test(test_parse_pi_split),
		cmocka_unit_test(test_parse_read),
		cmocka_unit_test(test_parse_used_len_wrap),
		cmocka_unit_test_setup_teardown(test_queue_read_pi, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(test_queue_write_pi_many_pieces, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(test_queue_bad_target_and_short, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(test_tmf_waits, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(test_duplicate_head, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(test_tmf_later_completion, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(test_pop_budget, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(test_bad_chain_in_flight, qsetup, qteardown),
	};

	nvt_log_set_level(NVT_LOG_OFF);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
