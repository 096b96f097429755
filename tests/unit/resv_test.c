/* SPDX-License-Identifier: BSD-3-Clause */
/* Reservations of one namespace: register/replace/unregister, the six types' access table, acquire, preempt, release, clear, the notifications owed, the report, the registrant cap, and checks racing changes. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "nvt/range_lock.h"
#include "nvt/resv.h"

static const uint8_t HOST_A[16] = { 0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const uint8_t HOST_B[16] = { 0xb2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const uint8_t HOST_C[16] = { 0xc3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

#define REG(act, iekey)		((uint32_t)(act) | ((iekey) ? 1u << 3 : 0))
#define ACQ(act, t)		((uint32_t)(act) | (uint32_t)(t) << 8)
#define CPTPL(v)		((uint32_t)(v) << 30)

static uint8_t report_rtype(struct nvt_resv *r, uint16_t *nr)
{
	uint8_t buf[64 + 8 * 64];
	struct nvme_resv_status *h = (void *)buf;

	assert_int_equal(nvt_resv_report(r, true, buf, sizeof(buf)), NVT_ST_OK);
	*nr = (uint16_t)(h->regctl[0] | h->regctl[1] << 8);
	return h->rtype;
}

static void test_register(void **state)
{
	struct nvt_resv r;
	uint16_t nr;

	nvt_resv_init(&r);
	/* Nothing held: everyone may do anything. */
	assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_WRITE), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 3, NULL), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 2, NULL), NVT_ST_OK);
	assert_int_equal(r.gen, 3);
	/* Replace: the current key, or IEKEY. */
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(2, 0), 9, 5, NULL), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(2, 0), 2, 5, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(2, 1), 0, 6, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_C, REG(2, 1), 0, 6, NULL), NVT_ST_RESV_CONFLICT);
	/* Unregister with the wrong key fails; with the right one it goes. */
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(1, 0), 5, 0, NULL), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(1, 0), 6, 0, NULL), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 0);
	assert_int_equal(nr, 1);
	/* Reserved action, reserved CPTPL, and PTPL (no state file here) refused. */
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(3, 0), 0, 0, NULL), NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0) | CPTPL(1), 0, 1, NULL),
			 NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0) | CPTPL(3), 0, 1, NULL),
			 NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0) | CPTPL(2), 0, 1, NULL), NVT_ST_OK);
}

/*
 * For each type: A holds it, B is a registrant, C is not registered.
 * Expected: may B read, B write, C read, C write (A always may).
 */
static void test_access_table(void **state)
{
	static const struct { uint8_t t; bool br, bw, cr, cw; } rows[] = {
		{ NVME_RESERVATION_RTYPE_WE, true, false, true, false },
		{ NVME_RESERVATION_RTYPE_EA, false, false, false, false },
		{ NVME_RESERVATION_RTYPE_WERO, true, true, true, false },
		{ NVME_RESERVATION_RTYPE_EARO, true, true, false, false },
		{ NVME_RESERVATION_RTYPE_WEAR, true, true, true, false },
		{ NVME_RESERVATION_RTYPE_EAAR, true, true, false, false },
	};

	for (unsigned int i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct nvt_resv r;

		nvt_resv_init(&r);
		assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
		assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 2, NULL), NVT_ST_OK);
		assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, rows[i].t), 1, 0, NULL), NVT_ST_OK);
		assert_int_equal(nvt_resv_check(&r, HOST_A, NVT_RESV_WRITE), NVT_ST_OK);
		assert_int_equal(nvt_resv_check(&r, HOST_A, NVT_RESV_READ), NVT_ST_OK);
		assert_int_equal(nvt_resv_check(&r, HOST_B, NVT_RESV_READ) == NVT_ST_OK, rows[i].br);
		assert_int_equal(nvt_resv_check(&r, HOST_B, NVT_RESV_WRITE) == NVT_ST_OK, rows[i].bw);
		assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_READ) == NVT_ST_OK, rows[i].cr);
		assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_WRITE) == NVT_ST_OK, rows[i].cw);
		/* Commands outside both groups are never restricted. */
		assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_OTHER), NVT_ST_OK);
	}
}

static void test_acquire_release(void **state)
{
	struct nvt_resv r;
	struct nvt_resv_events ev = { 0 };
	uint16_t nr;

	nvt_resv_init(&r);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 2, NULL), NVT_ST_OK);
	/* Unregistered, wrong key, IEKEY, type 0 or 7. */
	assert_int_equal(nvt_resv_acquire(&r, HOST_C, ACQ(0, 1), 0, 0, NULL), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 1), 2, 0, NULL), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 1) | 1u << 3, 1, 0, NULL),
			 NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 0), 1, 0, NULL), NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 7), 1, 0, NULL), NVT_ST_INVALID_FIELD);
	/* A takes Write Exclusive - Registrants Only; the same again is fine, another type is not. */
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 3), 1, 0, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 3), 1, 0, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 1), 1, 0, NULL), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(0, 3), 2, 0, NULL), NVT_ST_RESV_CONFLICT);
	/* B releasing what it does not hold: success, nothing changes. */
	assert_int_equal(nvt_resv_release(&r, HOST_B, ACQ(0, 3), 2, NULL), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 3);
	/* A: the wrong type, then the right one; B is told the reservation was released. */
	assert_int_equal(nvt_resv_release(&r, HOST_A, ACQ(0, 1), 1, &ev), NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_release(&r, HOST_A, ACQ(0, 3), 1, &ev), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 0);
	assert_int_equal(ev.nr, 1);
	assert_memory_equal(ev.ev[0].hostid, HOST_B, 16);
	assert_int_equal(ev.ev[0].type, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
	/* Write Exclusive released: nobody else is told. */
	ev.nr = 0;
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 1), 1, 0, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_release(&r, HOST_A, ACQ(0, 1), 1, &ev), NVT_ST_OK);
	assert_int_equal(ev.nr, 0);
	/* A holder of registrants-only that unregisters releases it, and B is told. */
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 4), 1, 0, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(1, 0), 1, 0, &ev), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 0);
	assert_int_equal(nr, 1);
	assert_int_equal(ev.nr, 1);
	assert_int_equal(ev.ev[0].type, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
}

static void test_preempt(void **state)
{
	_Atomic unsigned int word = 0;
	struct nvt_resv r;
	struct nvt_resv_events ev = { 0 };
	uint32_t gen;
	uint16_t nr;

	nvt_resv_init(&r);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 2, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_C, REG(0, 0), 0, 3, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 2), 1, 0, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_check(&r, HOST_B, NVT_RESV_READ), NVT_ST_RESV_CONFLICT);
	gen = r.gen;
	/* B preempts A (A's key): B holds Exclusive Access now, A's registration is gone and A is told. */
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(1, 2), 2, 1, &ev), NVT_ST_OK);
	assert_int_equal(r.gen, gen + 1);
	assert_int_equal(nvt_resv_check(&r, HOST_B, NVT_RESV_WRITE), NVT_ST_OK);
	assert_int_equal(nvt_resv_check(&r, HOST_A, NVT_RESV_READ), NVT_ST_RESV_CONFLICT);
	assert_int_equal(report_rtype(&r, &nr), 2);
	assert_int_equal(nr, 2);
	assert_int_equal(ev.nr, 1);
	assert_memory_equal(ev.ev[0].hostid, HOST_A, 16);
	assert_int_equal(ev.ev[0].type, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	/* Preempting with key 0 against a single holder: Invalid Field; an unknown key: conflict. */
	assert_int_equal(nvt_resv_acquire(&r, HOST_C, ACQ(1, 2), 3, 0, NULL), NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_acquire(&r, HOST_C, ACQ(2, 2), 3, 77, NULL), NVT_ST_RESV_CONFLICT);
	/* The holder changes its own type by preempting: C, a registrant, is told it was released. */
	ev.nr = 0;
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(1, 1), 2, 2, &ev), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 1);
	assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_READ), NVT_ST_OK);
	assert_int_equal(ev.nr, 1);
	assert_memory_equal(ev.ev[0].hostid, HOST_C, 16);
	/* No reservation: preempt removes the registrants with that key. */
	assert_int_equal(nvt_resv_release(&r, HOST_B, ACQ(0, 1), 2, NULL), NVT_ST_OK);
	ev.nr = 0;
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(2, 1), 2, 3, &ev), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 0);
	assert_int_equal(nr, 1);
	assert_int_equal(ev.nr, 1);
	assert_memory_equal(ev.ev[0].hostid, HOST_C, 16);
	/*
	 * The holder preempts another registrant's key (a cluster fencing a
	 * node): that registrant goes and is told, the holder keeps its
	 * reservation and type. The admission word follows the type.
	 */
	r.admit = &word;
	assert_int_equal(nvt_resv_register(&r, HOST_C, REG(0, 0), 0, 3, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(0, 3), 2, 0, NULL), NVT_ST_OK);
	assert_int_equal(word, NVT_RANGE_RESV);
	assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_WRITE), NVT_ST_OK);
	ev.nr = 0;
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(2, 3), 2, 3, &ev), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 3);
	assert_int_equal(nr, 1);
	assert_int_equal(ev.nr, 1);
	assert_memory_equal(ev.ev[0].hostid, HOST_C, 16);
	assert_int_equal(ev.ev[0].type, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_WRITE), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_check(&r, HOST_B, NVT_RESV_WRITE), NVT_ST_OK);
	assert_int_equal(word, NVT_RANGE_RESV);
	assert_int_equal(nvt_resv_release(&r, HOST_B, ACQ(0, 3), 2, NULL), NVT_ST_OK);
	assert_int_equal(word, 0);
}

static void test_all_registrants(void **state)
{
	uint8_t buf[64 + 2 * 64];
	struct nvme_resv_status *h = (void *)buf;
	struct nvt_resv r;
	struct nvt_resv_events ev = { 0 };
	uint16_t nr;

	nvt_resv_init(&r);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 2, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 6), 1, 0, NULL), NVT_ST_OK);
	/* Every registrant holds it: B too (acquire again is fine, writes are). */
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(0, 6), 2, 0, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_check(&r, HOST_B, NVT_RESV_WRITE), NVT_ST_OK);
	assert_int_equal(nvt_resv_check(&r, HOST_C, NVT_RESV_READ), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_report(&r, true, buf, sizeof(buf)), NVT_ST_OK);
	assert_int_equal(h->regctl_eds[0].rcsts, 1);
	assert_int_equal(h->regctl_eds[1].rcsts, 1);
	assert_int_equal(le16toh(h->regctl_eds[0].cntlid), 0xffff);
	/* A leaves: it stays B's; B leaves: it ends. */
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(1, 0), 1, 0, NULL), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 6);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(1, 1), 0, 0, NULL), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 0);
	/* Preempt with key 0: the preempter takes it as a single holder, everyone else goes. */
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 2, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 5), 1, 0, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_B, ACQ(1, 1), 2, 0, &ev), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 1);
	assert_int_equal(nr, 1);
	assert_int_equal(nvt_resv_check(&r, HOST_A, NVT_RESV_WRITE), NVT_ST_RESV_CONFLICT);
	assert_int_equal(ev.nr, 1);
	assert_int_equal(ev.ev[0].type, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
}

static void test_clear_and_report(void **state)
{
	uint8_t buf[64 + 64];
	struct nvme_resv_status *h = (void *)buf;
	struct nvt_resv r;
	struct nvt_resv_events ev = { 0 };
	uint16_t nr;

	nvt_resv_init(&r);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 0x1111, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 0x2222, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 1), 0x1111, 0, NULL), NVT_ST_OK);
	/* The basic structure (8-byte host identifiers) does not exist over fabrics. */
	assert_int_equal(nvt_resv_report(&r, false, buf, sizeof(buf)), NVT_ST_HOSTID_FORMAT);
	assert_int_equal(nvt_resv_report(&r, true, buf, 63), NVT_ST_INVALID_FIELD);
	/* Room for one registrant: both counted, the first listed. */
	assert_int_equal(nvt_resv_report(&r, true, buf, sizeof(buf)), NVT_ST_OK);
	assert_int_equal(h->regctl[0], 2);
	assert_int_equal(h->rtype, 1);
	assert_int_equal(le32toh(h->gen), 2);
	assert_int_equal(le64toh(h->regctl_eds[0].rkey), 0x1111);
	assert_memory_equal(h->regctl_eds[0].hostid, HOST_A, 16);
	assert_int_equal(h->regctl_eds[0].rcsts, 1);
	/* Clear needs a registrant's key; then nothing is left and B is told. */
	assert_int_equal(nvt_resv_release(&r, HOST_C, 1, 0, &ev), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_release(&r, HOST_B, 1, 0x2222, &ev), NVT_ST_OK);
	assert_int_equal(report_rtype(&r, &nr), 0);
	assert_int_equal(nr, 0);
	assert_int_equal(ev.nr, 1);
	assert_memory_equal(ev.ev[0].hostid, HOST_A, 16);
	assert_int_equal(ev.ev[0].type, NVME_RESV_NOTIFY_RNLPT_RESERVATION_PREEMPTED);
}

static void test_registrant_cap(void **state)
{
	struct nvt_resv r;
	uint8_t id[16] = { 0 };

	nvt_resv_init(&r);
	for (unsigned int i = 0; i < NVT_RESV_MAX_REGS; i++) {
		id[0] = (uint8_t)i;
		assert_int_equal(nvt_resv_register(&r, id, 0, 0, i + 1, NULL), NVT_ST_OK);
	}
	id[0] = 0xff;
	assert_int_equal(nvt_resv_register(&r, id, 0, 0, 1, NULL), NVT_ST_INTERNAL);
	/* One leaves: room again. */
	id[0] = 5;
	assert_int_equal(nvt_resv_register(&r, id, REG(1, 0), 6, 0, NULL), NVT_ST_OK);
	id[0] = 0xff;
	assert_int_equal(nvt_resv_register(&r, id, 0, 0, 1, NULL), NVT_ST_OK);
}

struct racer {
	struct nvt_resv *r;
	_Atomic bool stop;
	_Atomic unsigned long checks;
	unsigned long wrong;
};

/* B is a registrant: under WERO it may always write, whatever A does meanwhile. */
static void *race_checks(void *arg)
{
	struct racer *x = arg;

	while (!atomic_load(&x->stop)) {
		if (nvt_resv_check(x->r, HOST_B, NVT_RESV_WRITE) != NVT_ST_OK)
			x->wrong++;
		x->checks++;
	}
	return NULL;
}

/* Checks on another thread while the holder acquires, changes and releases: never a wrong answer. */
static void test_checks_race_changes(void **state)
{
	struct nvt_resv r;
	struct racer x = { .r = &r };
	pthread_t t;

	nvt_resv_init(&r);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 1, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0), 0, 2, NULL), NVT_ST_OK);
	assert_int_equal(pthread_create(&t, NULL, race_checks, &x), 0);
	/* Until the other thread has checked often enough to meet changes (it may start late). */
	for (int i = 0; i < 20000 || atomic_load(&x.checks) < 20000; i++) {
		assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, 3), 1, 0, NULL), NVT_ST_OK);
		assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(1, 5), 1, 1, NULL), NVT_ST_OK);
		assert_int_equal(nvt_resv_release(&r, HOST_A, ACQ(0, 5), 1, NULL), NVT_ST_OK);
	}
	atomic_store(&x.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(x.checks > 0);
	assert_int_equal(x.wrong, 0);
}

/* A fresh directory for state files. */
static void state_dir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/nvt-resv-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

/*
 * Persist Through Power Loss: with PTPL set (Register CPTPL=11b) every
 * change is in the state file before the command returns, and a namespace
 * opened on it (nvtd restarted) has the same registrants, keys, holder and
 * type, so the fenced host stays fenced; PTPL cleared removes the file.
 * Without a path PTPL is refused; a file nvtd did not write fails the open.
 */
static void test_persist_through_power_loss(void **state)
{
	struct nvt_resv r, back;
	char dir[64], path[128], cmd[160];
	uint16_t nr;
	FILE *f;

	(void)state;
	state_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/ns.nvt-resv", dir);
	nvt_resv_init(&r);
	assert_int_equal(nvt_resv_set_ptpl(&r, true), NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0) | CPTPL(3), 0, 1, NULL),
			 NVT_ST_INVALID_FIELD);
	assert_int_equal(nvt_resv_persist_open(&r, path), 0);	/* no file yet: nothing kept */
	assert_false(nvt_resv_ptpl(&r));
	assert_int_equal(nvt_resv_register(&r, HOST_A, REG(0, 0), 0, 0x1111, NULL), NVT_ST_OK);
	assert_int_equal(access(path, F_OK), -1);		/* PTPL off: no file */
	assert_int_equal(nvt_resv_register(&r, HOST_B, REG(0, 0) | CPTPL(3), 0, 0x2222, NULL),
			 NVT_ST_OK);
	assert_true(nvt_resv_ptpl(&r));
	assert_int_equal(nvt_resv_acquire(&r, HOST_A, ACQ(0, NVME_RESERVATION_RTYPE_WE), 0x1111, 0,
					  NULL), NVT_ST_OK);
	assert_int_equal(access(path, F_OK), 0);

	nvt_resv_init(&back);
	assert_int_equal(nvt_resv_persist_open(&back, path), 0);
	assert_true(nvt_resv_ptpl(&back));
	assert_int_equal(report_rtype(&back, &nr), NVME_RESERVATION_RTYPE_WE);
	assert_int_equal(nr, 2);
	assert_int_equal(back.gen, r.gen);
	assert_int_equal(nvt_resv_check(&back, HOST_B, NVT_RESV_WRITE), NVT_ST_RESV_CONFLICT);
	assert_int_equal(nvt_resv_check(&back, HOST_B, NVT_RESV_READ), NVT_ST_OK);
	assert_int_equal(nvt_resv_check(&back, HOST_A, NVT_RESV_WRITE), NVT_ST_OK);
	/* The keys came back too: B preempts A with A's key. */
	assert_int_equal(nvt_resv_acquire(&back, HOST_B, ACQ(1, NVME_RESERVATION_RTYPE_EA), 0x2222,
					  0x1111, NULL), NVT_ST_OK);
	assert_int_equal(nvt_resv_check(&back, HOST_A, NVT_RESV_READ), NVT_ST_RESV_CONFLICT);
	/* PTPL cleared: the file goes, a restart forgets. */
	assert_int_equal(nvt_resv_set_ptpl(&back, false), NVT_ST_OK);
	assert_int_equal(access(path, F_OK), -1);
	nvt_resv_fini(&back);
	nvt_resv_fini(&r);

	/* Files nvtd did not write: a bad header, a holder who is not registered, a bad type. */
	static const char *const bad[] = {
		"nvt-reservations 2\n",
		"nvt-reservations 1\ngen 1\nrtype 1\nholder 3\nreg 0 00000000000000a1 0000000000000001 0000000000000001\n",
		"nvt-reservations 1\nrtype 9\n",
		"nvt-reservations 1\nreg 0 1 2 3\nreg 0 1 2 3\n",
		"garbage",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		nvt_resv_init(&back);
		assert_int_equal(nvt_resv_persist_open(&back, path), -EINVAL);
		nvt_resv_fini(&back);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_access_table),
		cmocka_unit_test(test_acquire_release),
		cmocka_unit_test(test_preempt),
		cmocka_unit_test(test_all_registrants),
		cmocka_unit_test(test_clear_and_report),
		cmocka_unit_test(test_registrant_cap),
		cmocka_unit_test(test_checks_race_changes),
		cmocka_unit_test(test_persist_through_power_loss),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
