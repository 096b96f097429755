/* SPDX-License-Identifier: BSD-3-Clause */
/* End to end over the loop transport: NVMe reservations between two controllers of two host identifiers. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "nvt/backend.h"
#include "nvt/host.h"
#include "nvt/loop.h"
#include "nvt/poll_group.h"
#include "nvt_test_loop.h"

#define HOST_B	"nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-2222-3333-4444-555555555555"

#define KEY_A	0x1111aaaa2222bbbbull
#define KEY_B	0x3333cccc4444ddddull

/* Host A is the fixture's controller; host B a second controller of the same subsystem. */
struct resv_fixture {
	struct fixture *f;
	struct nvt_loop_ctrl b;
};

static int setup(void **state)
{
	struct resv_fixture *rf = calloc(1, sizeof(*rf));

	assert_non_null(rf);
	rf->f = nvt_test_fixture_connect(nvt_test_target_create(), TEST_NQN, TEST_HOST, 2, 64, 0);
	assert_int_equal(nvt_loop_ctrl_connect(rf->f->tgt, TEST_NQN, HOST_B, 1, 64, 0, &rf->b), 0);
	*state = rf;
	return 0;
}

static int teardown(void **state)
{
	struct resv_fixture *rf = *state;

	nvt_loop_ctrl_disconnect(&rf->b);
	*state = rf->f;
	nvt_test_teardown(state);
	free(rf);
	return 0;
}

/* Reservation Register (action @rrega, CPTPL 0) with CRKEY/NRKEY. */
static int resv_register(struct nvt_loop_queue *q, uint8_t rrega, bool iekey, uint64_t crkey,
			 uint64_t nrkey)
{
	struct nvt_sqe sqe;
	uint64_t data[2] = { htole64(crkey), htole64(nrkey) };

	nvt_host_sqe_init(&sqe, nvme_cmd_resv_register, 1);
	sqe.common.cdw10 = htole32(rrega | (iekey ? 1u << 3 : 0));
	return nvt_test_exec(q, &sqe, data, sizeof(data), NULL);
}

static int resv_acquire(struct nvt_loop_queue *q, uint8_t racqa, uint8_t rtype, uint64_t crkey,
			uint64_t prkey)
{
	struct nvt_sqe sqe;
	uint64_t data[2] = { htole64(crkey), htole64(prkey) };

	nvt_host_sqe_init(&sqe, nvme_cmd_resv_acquire, 1);
	sqe.common.cdw10 = htole32(racqa | (uint32_t)rtype << 8);
	return nvt_test_exec(q, &sqe, data, sizeof(data), NULL);
}

static int resv_release(struct nvt_loop_queue *q, uint8_t rrela, uint8_t rtype, uint64_t crkey)
{
	struct nvt_sqe sqe;
	uint64_t data = htole64(crkey);

	nvt_host_sqe_init(&sqe, nvme_cmd_resv_release, 1);
	sqe.common.cdw10 = htole32(rrela | (uint32_t)rtype << 8);
	return nvt_test_exec(q, &sqe, &data, sizeof(data), NULL);
}

/* Reservation Report of @len bytes (a multiple of 4), extended structure if @eds. */
static int resv_report(struct nvt_loop_queue *q, bool eds, void *buf, size_t len)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_init(&sqe, nvme_cmd_resv_report, 1);
	sqe.common.cdw10 = htole32((uint32_t)(len / 4 - 1));
	sqe.common.cdw11 = htole32(eds ? 1 : 0);
	return nvt_test_exec(q, &sqe, buf, len, NULL);
}

static int io(struct nvt_loop_queue *q, uint8_t opcode)
{
	uint8_t buf[512] = { 0x5a };
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, opcode, 1, 8, 1);
	return nvt_test_exec(q, &sqe, buf, sizeof(buf), NULL);
}

static int flush(struct nvt_loop_queue *q)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_init(&sqe, nvme_cmd_flush, 1);
	return nvt_test_exec(q, &sqe, NULL, 0, NULL);
}

static int write_zeroes(struct nvt_loop_queue *q)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, nvme_cmd_write_zeroes, 1, 8, 1);
	return nvt_test_exec(q, &sqe, NULL, 0, NULL);
}

static void test_identify(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvme_id_ctrl idc;
	struct nvme_id_ns id;
	struct nvt_sqe sqe;

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(nvt_test_exec(rf->f->ctrl.admin, &sqe, &idc, sizeof(idc), NULL), 0);
	assert_true(le16toh(idc.oncs) & NVME_CTRL_ONCS_RESERVATIONS);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 1, 0);
	assert_int_equal(nvt_test_exec(rf->f->ctrl.admin, &sqe, &id, sizeof(id), NULL), 0);
	assert_int_equal(id.rescap, 0xfe);	/* six types and IEKEY, no PTPL */
	assert_true(id.nmic & NVME_NS_NMIC_SHARED);
}

static void test_write_exclusive(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvt_loop_queue *a = rf->f->ctrl.io[0], *b = rf->b.io[0];
	uint8_t rep[4096];
	struct nvme_resv_status *hdr = (void *)rep;
	struct nvme_registered_ctrl_ext *e = hdr->regctl_eds;
	uint8_t ida[16], idb[16];
	uint16_t nr;

	/* Both register; a second Register with another key is a conflict, with the same key a no-op. */
	assert_int_equal(resv_register(a, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_A), 0);
	assert_int_equal(resv_register(b, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_B), 0);
	assert_int_equal(resv_register(b, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_A),
			 NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(resv_register(b, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_B), 0);

	/* A acquires Write Exclusive with a wrong key: conflict; with its key: held. */
	assert_int_equal(resv_acquire(a, NVME_RESERVATION_RACQA_ACQUIRE, NVME_RESERVATION_RTYPE_WE,
				      KEY_B, 0), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(resv_acquire(a, NVME_RESERVATION_RACQA_ACQUIRE, NVME_RESERVATION_RTYPE_WE,
				      KEY_A, 0), 0);
	/* B's writes (every command of the write group) fail 83h, its read works; A writes. */
	assert_int_equal(io(b, nvme_cmd_write), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(write_zeroes(b), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(flush(b), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(io(b, nvme_cmd_read), 0);
	assert_int_equal(io(b, nvme_cmd_compare) == NVME_SC_RESERVATION_CONFLICT, false);
	assert_int_equal(io(a, nvme_cmd_write), 0);
	assert_int_equal(flush(a), 0);
	/* B may not acquire another type while A holds it. */
	assert_int_equal(resv_acquire(b, NVME_RESERVATION_RACQA_ACQUIRE, NVME_RESERVATION_RTYPE_EA,
				      KEY_B, 0), NVME_SC_RESERVATION_CONFLICT);

	/* Report: the compact structure is refused over fabrics; the extended one lists both. */
	assert_int_equal(resv_report(b, false, rep, sizeof(rep)), NVME_SC_HOSTID_FORMAT);
	memset(rep, 0xee, sizeof(rep));
	assert_int_equal(resv_report(b, true, rep, sizeof(rep)), 0);
	nr = (uint16_t)(hdr->regctl[0] | hdr->regctl[1] << 8);
	assert_int_equal(nr, 2);
	assert_int_equal(hdr->rtype, NVME_RESERVATION_RTYPE_WE);
	assert_int_equal(rep[sizeof(*hdr) + 2 * sizeof(*e)], 0);	/* zeroes past the list */
	for (int i = 0; i < 2; i++) {
		bool is_a = le64toh(e[i].rkey) == KEY_A;

		assert_true(is_a || le64toh(e[i].rkey) == KEY_B);
		assert_int_equal(e[i].rcsts, is_a ? 1 : 0);
		assert_int_equal(le16toh(e[i].cntlid), 0xffff);
		if (is_a)
			memcpy(ida, e[i].hostid, 16);
		else
			memcpy(idb, e[i].hostid, 16);
	}
	assert_memory_not_equal(ida, idb, 16);
	/* A short report: the header, one registrant listed, both counted. */
	memset(rep, 0xee, sizeof(rep));
	assert_int_equal(resv_report(a, true, rep, sizeof(*hdr) + sizeof(*e)), 0);
	assert_int_equal(hdr->regctl[0], 2);
	/* Below the header: Invalid Field. */
	assert_int_equal(resv_report(a, true, rep, 32), NVME_SC_INVALID_FIELD);

	/* B preempts A (A's key): B holds Write Exclusive, A is unregistered and may not write. */
	assert_int_equal(resv_acquire(b, NVME_RESERVATION_RACQA_PREEMPT, NVME_RESERVATION_RTYPE_WE,
				      KEY_B, KEY_A), 0);
	assert_int_equal(io(a, nvme_cmd_write), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(io(a, nvme_cmd_read), 0);
	assert_int_equal(io(b, nvme_cmd_write), 0);
	assert_int_equal(resv_report(a, true, rep, sizeof(rep)), 0);
	assert_int_equal(hdr->regctl[0], 1);
	assert_int_equal(le64toh(hdr->regctl_eds[0].rkey), KEY_B);
	assert_int_equal(hdr->regctl_eds[0].rcsts, 1);
	/* A, no longer registered, cannot release; B releases with the wrong type: Invalid Field. */
	assert_int_equal(resv_release(a, NVME_RESERVATION_RRELA_RELEASE, NVME_RESERVATION_RTYPE_WE,
				      KEY_A), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(resv_release(b, NVME_RESERVATION_RRELA_RELEASE, NVME_RESERVATION_RTYPE_EA,
				      KEY_B), NVME_SC_INVALID_FIELD);
	assert_int_equal(resv_release(b, NVME_RESERVATION_RRELA_RELEASE, NVME_RESERVATION_RTYPE_WE,
				      KEY_B), 0);
	assert_int_equal(io(a, nvme_cmd_write), 0);
	/* Clear: no registrant left. */
	assert_int_equal(resv_release(b, NVME_RESERVATION_RRELA_CLEAR, 0, KEY_B), 0);
	assert_int_equal(resv_report(a, true, rep, sizeof(rep)), 0);
	assert_int_equal(hdr->regctl[0], 0);
	assert_int_equal(hdr->rtype, 0);
}

static void test_exclusive_access(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvt_loop_queue *a = rf->f->ctrl.io[0], *a2 = rf->f->ctrl.io[1], *b = rf->b.io[0];

	assert_int_equal(resv_register(a, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_A), 0);
	assert_int_equal(resv_acquire(a, NVME_RESERVATION_RACQA_ACQUIRE, NVME_RESERVATION_RTYPE_EA,
				      KEY_A, 0), 0);
	/* Exclusive Access: B (not even registered) neither reads nor writes. */
	assert_int_equal(io(b, nvme_cmd_read), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(io(b, nvme_cmd_write), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(io(b, nvme_cmd_verify), NVME_SC_RESERVATION_CONFLICT);
	/* The holder is the host, not the queue: A's other queue reads and writes. */
	assert_int_equal(io(a2, nvme_cmd_read), 0);
	assert_int_equal(io(a2, nvme_cmd_write), 0);
	/* Reservation commands themselves are not restricted: B registers, then B's key replaced with IEKEY. */
	assert_int_equal(resv_register(b, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_B), 0);
	assert_int_equal(resv_register(b, NVME_RESERVATION_RREGA_REPLACE_KEY, true, 0, KEY_B + 1), 0);
	assert_int_equal(io(b, nvme_cmd_read), NVME_SC_RESERVATION_CONFLICT);
	/* A unregisters: the holder leaves, the reservation with it, B reads again. */
	assert_int_equal(resv_register(a, NVME_RESERVATION_RREGA_UNREGISTER_KEY, false, KEY_A, 0), 0);
	assert_int_equal(io(b, nvme_cmd_read), 0);
	assert_int_equal(io(b, nvme_cmd_write), 0);
}

static void test_bad_fields(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvt_loop_queue *a = rf->f->ctrl.io[0];
	struct nvt_sqe sqe;
	uint64_t data[2] = { 0, 0 };

	/* Reserved actions and types, PTPL asked for: Invalid Field. */
	assert_int_equal(resv_register(a, 7, false, 0, KEY_A), NVME_SC_INVALID_FIELD);
	nvt_host_sqe_init(&sqe, nvme_cmd_resv_register, 1);
	sqe.common.cdw10 = htole32(3u << 30);
	assert_int_equal(nvt_test_exec(a, &sqe, data, sizeof(data), NULL), NVME_SC_INVALID_FIELD);
	assert_int_equal(resv_register(a, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_A), 0);
	assert_int_equal(resv_acquire(a, NVME_RESERVATION_RACQA_ACQUIRE, 7, KEY_A, 0),
			 NVME_SC_INVALID_FIELD);
	assert_int_equal(resv_acquire(a, 3, NVME_RESERVATION_RTYPE_WE, KEY_A, 0),
			 NVME_SC_INVALID_FIELD);
	assert_int_equal(resv_release(a, 2, NVME_RESERVATION_RTYPE_WE, KEY_A), NVME_SC_INVALID_FIELD);
	/* A host data transfer of the wrong size: not the command's 16 bytes. */
	nvt_host_sqe_init(&sqe, nvme_cmd_resv_register, 1);
	assert_int_not_equal(nvt_test_exec(a, &sqe, data, 8, NULL), 0);
	/* An inactive namespace. */
	nvt_host_sqe_init(&sqe, nvme_cmd_resv_register, 2);
	assert_int_equal(nvt_test_exec(a, &sqe, data, sizeof(data), NULL), NVME_SC_INVALID_NS);
	/* A report larger than MDTS. */
	nvt_host_sqe_init(&sqe, nvme_cmd_resv_report, 1);
	sqe.common.cdw10 = htole32(0xffffffff);
	sqe.common.cdw11 = htole32(1);
	assert_int_equal(nvt_test_exec(a, &sqe, NULL, 0, NULL), NVME_SC_INVALID_FIELD);
}

/* Get Log Page 80h on @q (RAE clear): the oldest notification, or an empty page. */
static void resv_log(struct nvt_loop_queue *q, struct nvme_resv_notification_log *e)
{
	struct nvt_sqe sqe;

	memset(e, 0xee, sizeof(*e));
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_RESERVATION, sizeof(*e), 0, false);
	assert_int_equal(nvt_test_exec(q, &sqe, e, sizeof(*e), NULL), 0);
}

/* A preempts B's registration (B registered first): B is owed "registration preempted". */
static void preempt_b(struct resv_fixture *rf)
{
	struct nvt_loop_queue *a = rf->f->ctrl.io[0], *b = rf->b.io[0];

	assert_int_equal(resv_register(b, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_B), 0);
	assert_int_equal(resv_acquire(a, NVME_RESERVATION_RACQA_PREEMPT, NVME_RESERVATION_RTYPE_WE,
				      KEY_A, KEY_B), 0);
}

static void test_notifications(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvt_loop_queue *a = rf->f->ctrl.io[0];
	struct nvme_resv_notification_log e;
	static struct done aer, aer_a;	/* completed at teardown too (A's held AER) */
	struct nvt_sqe sqe;

	memset(&aer, 0, sizeof(aer));
	memset(&aer_a, 0, sizeof(aer_a));
	/* Both hosts hold an AER; only B's completes: the notification is B's. */
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	assert_int_equal(nvt_test_submit(rf->b.admin, &sqe, NULL, 0, nvt_test_on_done, &aer), 0);
	assert_int_equal(nvt_test_submit(rf->f->ctrl.admin, &sqe, NULL, 0, nvt_test_on_done, &aer_a), 0);
	assert_int_equal(resv_register(a, NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0, KEY_A), 0);
	preempt_b(rf);
	assert_true(nvt_test_wait(rf->b.admin, &aer));
	assert_int_equal(nvt_test_status(&aer), 0);
	/* I/O command specific (6h), information 00h, log page 80h. */
	assert_int_equal(le32toh(aer.cqe.result.u32), 0x00800006);
	assert_int_equal(aer_a.count, 0);
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 1);
	assert_int_equal(e.rnlpt, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	assert_int_equal(e.nalp, 0);
	assert_int_equal(le32toh(e.nsid), 1);
	/* Read: gone; an empty page is all zero. */
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 0);
	assert_int_equal(e.rnlpt, NVME_RESV_NOTIFY_RNLPT_EMPTY);
	resv_log(rf->f->ctrl.admin, &e);
	assert_int_equal(le64toh(e.lpc), 0);

	/* The AEN again after the log read cleared it; then a queue overflow: the oldest kept, the count shows the gap. */
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	assert_int_equal(nvt_test_submit(rf->b.admin, &sqe, NULL, 0, nvt_test_on_done, &aer), 0);
	for (int i = 0; i < NVT_RESV_LOG_ENTRIES + 4; i++)
		preempt_b(rf);
	assert_true(nvt_test_wait_n(rf->b.admin, &aer, 2));
	for (int i = 0; i < NVT_RESV_LOG_ENTRIES; i++) {
		resv_log(rf->b.admin, &e);
		assert_int_equal(le64toh(e.lpc), 2 + i);
		assert_int_equal(e.nalp, NVT_RESV_LOG_ENTRIES - 1 - i);
	}
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 0);
	preempt_b(rf);
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 2 + NVT_RESV_LOG_ENTRIES + 4);	/* 4 lost: a gap of 4 */
	assert_int_equal(aer_a.count, 0);
}

/* With a main loop (nvtd's): the I/O thread queues, the main loop's message logs. */
static void test_notifications_main_loop(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvme_resv_notification_log e;
	struct nvt_poll_group *pg;

	assert_int_equal(nvt_poll_group_create(&pg), 0);
	rf->f->tgt->pg = pg;
	assert_int_equal(resv_register(rf->f->ctrl.io[0], NVME_RESERVATION_RREGA_REGISTER_KEY, false,
				       0, KEY_A), 0);
	preempt_b(rf);
	preempt_b(rf);
	/* Not yet: the message waits for the main loop. */
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 0);
	nvt_poll_group_run_pending(pg);
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 1);
	assert_int_equal(e.nalp, 1);
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 2);
	/* Once delivered, the next change sends again. */
	preempt_b(rf);
	nvt_poll_group_run_pending(pg);
	resv_log(rf->b.admin, &e);
	assert_int_equal(le64toh(e.lpc), 3);
	rf->f->tgt->pg = NULL;
	nvt_poll_group_destroy(pg);
}

static int feature(struct nvt_loop_queue *q, bool set, uint8_t fid, uint32_t nsid, uint32_t cdw11,
		   uint32_t *result)
{
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	int st;

	nvt_host_sqe_features(&sqe, set, fid, cdw11);
	sqe.common.nsid = htole32(nsid);
	st = nvt_test_exec(q, &sqe, NULL, 0, &cqe);
	if (result)
		*result = le32toh(cqe.result.u32);
	return st;
}

/* Get Features @fid with SEL = supported capabilities: the capabilities (CQE DW0). */
static uint32_t feature_supported(struct nvt_loop_queue *q, uint8_t fid, uint32_t nsid)
{
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_host_sqe_features(&sqe, false, fid, 0);
	sqe.common.cdw10 = htole32(fid | NVME_GET_FEATURES_SEL_SUPPORTED << 8);
	sqe.common.nsid = htole32(nsid);
	assert_int_equal(nvt_test_exec(q, &sqe, NULL, 0, &cqe), 0);
	return le32toh(cqe.result.u32);
}

static void test_features(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvt_loop_queue *adm = rf->b.admin;
	struct nvme_resv_notification_log e;
	uint32_t v = 0xdead;

	assert_int_equal(resv_register(rf->f->ctrl.io[0], NVME_RESERVATION_RREGA_REGISTER_KEY, false,
				       0, KEY_A), 0);
	/* 82h: per namespace, default nothing masked. */
	assert_int_equal(feature(adm, false, NVME_FEAT_FID_RESV_MASK, 1, 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(feature(adm, true, NVME_FEAT_FID_RESV_MASK, 1, 1u << 1, NULL), 0);
	assert_int_equal(feature(adm, false, NVME_FEAT_FID_RESV_MASK, 1, 0, &v), 0);
	assert_int_equal(v, 1u << 1);
	/* Only bits 1..3; a namespace that does not exist; Get to every namespace. */
	assert_int_equal(feature(adm, true, NVME_FEAT_FID_RESV_MASK, 1, 1, NULL), NVME_SC_INVALID_FIELD);
	assert_int_equal(feature(adm, true, NVME_FEAT_FID_RESV_MASK, 2, 0, NULL), NVME_SC_INVALID_NS);
	assert_int_equal(feature(adm, false, NVME_FEAT_FID_RESV_MASK, 0xffffffff, 0, NULL),
			 NVME_SC_INVALID_NS);
	/* Masked "registration preempted": neither logged nor counted. */
	preempt_b(rf);
	resv_log(adm, &e);
	assert_int_equal(le64toh(e.lpc), 0);
	/* Set to every namespace: unmasked again, the next one is logged, count 1. */
	assert_int_equal(feature(adm, true, NVME_FEAT_FID_RESV_MASK, 0xffffffff, 0, NULL), 0);
	assert_int_equal(feature(adm, false, NVME_FEAT_FID_RESV_MASK, 1, 0, &v), 0);
	assert_int_equal(v, 0);
	preempt_b(rf);
	resv_log(adm, &e);
	assert_int_equal(le64toh(e.lpc), 1);
	/* The mask is per controller: A's is untouched. */
	assert_int_equal(feature(rf->f->ctrl.admin, true, NVME_FEAT_FID_RESV_MASK, 1, 0xe, NULL), 0);
	assert_int_equal(feature(adm, false, NVME_FEAT_FID_RESV_MASK, 1, 0, &v), 0);
	assert_int_equal(v, 0);

	/* 83h: PTPL off, and it cannot be turned on (no namespace persists yet). */
	assert_int_equal(feature(adm, false, NVME_FEAT_FID_RESV_PERSIST, 1, 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(feature(adm, true, NVME_FEAT_FID_RESV_PERSIST, 1, 1, NULL), NVME_SC_INVALID_FIELD);
	assert_int_equal(feature(adm, true, NVME_FEAT_FID_RESV_PERSIST, 1, 0, NULL), 0);
	assert_int_equal(feature(adm, true, NVME_FEAT_FID_RESV_PERSIST, 9, 0, NULL), NVME_SC_INVALID_NS);
	/* Supported capabilities: per namespace, changeable; PTPL not changeable on RAM. */
	assert_int_equal(feature_supported(adm, NVME_FEAT_FID_RESV_MASK, 1), 0x6);
	assert_int_equal(feature_supported(adm, NVME_FEAT_FID_RESV_PERSIST, 1), 0x2);
}

/* ---- Preempt and Abort: a write the backend holds ---- */

/*
 * Namespace 1's ram store behind a submit that keeps bios while @on, until
 * the test lets them go (on this thread, which drives every poll group).
 * Ram has no per-group channel, so its ops can be swapped with queues up.
 */
static struct {
	bool on;
	struct nvt_bio *bio[8];
	unsigned int n;
} held_be;

static void held_submit(struct nvt_bio *bio, void *chan)
{
	if (held_be.on) {
		assert_true(held_be.n < 8);
		held_be.bio[held_be.n++] = bio;
		return;
	}
	nvt_ram_backend_ops.submit(bio, chan);
}

static struct nvt_backend_ops held_ops;

/* Ram's store, every bio through held_submit() (no map: nothing goes around it). */
static struct nvt_ns *held_ns(struct resv_fixture *rf)
{
	struct nvt_ns *ns = nvt_target_find_subsys(rf->f->tgt, TEST_NQN)->ns[1];

	assert_ptr_equal(ns->be, &nvt_ram_backend_ops);
	held_ops = nvt_ram_backend_ops;
	held_ops.submit = held_submit;
	held_ops.map = NULL;
	memset(&held_be, 0, sizeof(held_be));
	ns->be = &held_ops;
	return ns;
}

/* The backend finishes what it holds, oldest first. */
static void held_release(void)
{
	held_be.on = false;
	for (unsigned int i = 0; i < held_be.n; i++)
		nvt_ram_backend_ops.submit(held_be.bio[i], NULL);
	held_be.n = 0;
}

/* Teardown of a test that held bios: a failed assertion left them there, the queues would wait. */
static int teardown_held(void **state)
{
	struct resv_fixture *rf = *state;

	struct nvt_ns *ns = nvt_target_find_subsys(rf->f->tgt, TEST_NQN)->ns[1];

	held_release();
	if (ns)
		ns->be = &nvt_ram_backend_ops;
	return teardown(state);
}

static void poll_both(struct resv_fixture *rf)
{
	for (int i = 0; i < 4; i++) {
		nvt_loop_queue_poll(rf->f->ctrl.io[0], 0);
		nvt_loop_queue_poll(rf->b.io[0], 0);
	}
}

/* What one preemption under a write needs to live while it runs. */
struct preempt_run {
	uint8_t buf[512];
	uint64_t key[2];
	struct iovec wiov, kiov;
	struct done wb, acq;
};

/*
 * B (a registrant under A's Write Exclusive Registrants Only) has a write
 * of @seed at LBA 8 in the backend; then A's Acquire @racqa preempts B's
 * key. Both submitted, polled until nothing more moves.
 */
static void preempt_under_write(struct resv_fixture *rf, struct preempt_run *p, uint8_t racqa,
				uint8_t seed)
{
	struct nvt_sqe sqe;

	memset(p, 0, sizeof(*p));
	memset(p->buf, seed, sizeof(p->buf));
	assert_int_equal(resv_register(rf->b.io[0], NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0,
				       KEY_B), 0);
	held_be.on = true;
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 8, 1);
	p->wiov = (struct iovec){ p->buf, sizeof(p->buf) };
	assert_int_equal(nvt_loop_submit(rf->b.io[0], &sqe, &p->wiov, 1, nvt_test_on_done, &p->wb), 0);
	assert_int_equal(held_be.n, 1);

	nvt_host_sqe_init(&sqe, nvme_cmd_resv_acquire, 1);
	sqe.common.cdw10 = htole32(racqa | (uint32_t)NVME_RESERVATION_RTYPE_WERO << 8);
	p->key[0] = htole64(KEY_A);
	p->key[1] = htole64(KEY_B);
	p->kiov = (struct iovec){ p->key, sizeof(p->key) };
	assert_int_equal(nvt_loop_submit(rf->f->ctrl.io[0], &sqe, &p->kiov, 1, nvt_test_on_done,
					 &p->acq), 0);
	poll_both(rf);
	assert_int_equal(p->wb.count, 0);
}

/* A registers and takes Write Exclusive Registrants Only. */
static void a_holds_wero(struct resv_fixture *rf)
{
	assert_int_equal(resv_register(rf->f->ctrl.io[0], NVME_RESERVATION_RREGA_REGISTER_KEY, false,
				       0, KEY_A), 0);
	assert_int_equal(resv_acquire(rf->f->ctrl.io[0], NVME_RESERVATION_RACQA_ACQUIRE,
				      NVME_RESERVATION_RTYPE_WERO, KEY_A, 0), 0);
}

static uint8_t read_lba8(struct resv_fixture *rf)
{
	uint8_t buf[512];
	struct nvt_sqe sqe;

	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 8, 1);
	assert_int_equal(nvt_test_exec(rf->f->ctrl.io[0], &sqe, buf, sizeof(buf), NULL), 0);
	return buf[0];
}

/*
 * A fences B off: A holds Write Exclusive Registrants Only, B (a
 * registrant) has a write in the backend, A preempts and aborts B. The
 * Acquire completes only after B's write did, and a write B sends after
 * it is refused. A plain Preempt does not wait: it completes with B's
 * write still in flight, which lands later.
 */
static void test_preempt_abort_waits(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvt_ns *ns = held_ns(rf);
	static struct preempt_run p;

	a_holds_wero(rf);

	preempt_under_write(rf, &p, NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT, 0xb1);
	assert_int_equal(p.acq.count, 0);	/* B's write is still in the backend */
	/* Already after the change: B is no registrant, its new write is refused. */
	assert_int_equal(io(rf->b.io[0], nvme_cmd_write), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(held_be.n, 1);
	held_release();
	assert_int_equal(p.wb.count, 1);
	assert_int_equal(nvt_test_status(&p.wb), 0);	/* admitted before: it finishes */
	assert_int_equal(p.acq.count, 0);	/* its grant is a message to A's poll group */
	assert_true(nvt_test_wait(rf->f->ctrl.io[0], &p.acq));
	assert_int_equal(nvt_test_status(&p.acq), 0);
	assert_int_equal(read_lba8(rf), 0xb1);

	/* Plain Preempt: done while B's write is still held; the write lands after. */
	preempt_under_write(rf, &p, NVME_RESERVATION_RACQA_PREEMPT, 0xb2);
	assert_int_equal(p.acq.count, 1);
	assert_int_equal(nvt_test_status(&p.acq), 0);
	assert_int_equal(held_be.n, 1);
	held_release();
	assert_int_equal(p.wb.count, 1);
	assert_int_equal(read_lba8(rf), 0xb2);
	ns->be = &nvt_ram_backend_ops;
}

/*
 * B's write passed its check, then waits for its data (where RDMA READs
 * it): A preempts and aborts B meanwhile, and the Acquire has nothing to
 * wait for. When the data arrives the write is admitted against the new
 * state: Reservation Conflict, nothing written.
 */
static void test_preempt_abort_data_in_flight(void **state)
{
	struct resv_fixture *rf = *state;
	struct nvt_loop_held *h;
	uint8_t buf[512];
	struct iovec iov = { buf, sizeof(buf) };
	struct nvt_sqe sqe;
	struct done wb = { .count = 0 };

	assert_int_equal(io(rf->f->ctrl.io[0], nvme_cmd_write), 0);	/* LBA 8: 0x5a */
	assert_int_equal(resv_register(rf->f->ctrl.io[0], NVME_RESERVATION_RREGA_REGISTER_KEY, false,
				       0, KEY_A), 0);
	assert_int_equal(resv_register(rf->b.io[0], NVME_RESERVATION_RREGA_REGISTER_KEY, false, 0,
				       KEY_B), 0);
	assert_int_equal(resv_acquire(rf->f->ctrl.io[0], NVME_RESERVATION_RACQA_ACQUIRE,
				      NVME_RESERVATION_RTYPE_WERO, KEY_A, 0), 0);
	memset(buf, 0xb3, sizeof(buf));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 8, 1);
	assert_int_equal(nvt_loop_submit_held(rf->b.io[0], &sqe, &iov, 1, nvt_test_on_done, &wb, &h), 0);
	assert_non_null(h);			/* parsed: B may write now */

	assert_int_equal(resv_acquire(rf->f->ctrl.io[0], NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT,
				      NVME_RESERVATION_RTYPE_WERO, KEY_A, KEY_B), 0);
	nvt_loop_release(h);
	assert_true(nvt_test_wait(rf->b.io[0], &wb));
	assert_int_equal(nvt_test_status(&wb), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(read_lba8(rf), 0x5a);
}

/* nvt_subsys_remove_ns() on its own thread, as a reload runs it. */
struct remover {
	struct nvt_subsys *subsys;
	int ret;
	_Atomic bool done;
};

static void *remover_run(void *arg)
{
	struct remover *r = arg;

	r->ret = nvt_subsys_remove_ns(r->subsys, 1);
	atomic_store(&r->done, true);
	return NULL;
}

/*
 * The namespace is removed while a Preempt and Abort waits for B's write:
 * the removal waits for both (this thread drives the queues meanwhile),
 * both complete, the namespace is freed (ASan: nothing leaks, nothing is
 * touched after), and the queues serve on (Invalid Namespace).
 */
static void test_preempt_abort_ns_removed(void **state)
{
	struct resv_fixture *rf = *state;
	struct remover r = { .subsys = nvt_target_find_subsys(rf->f->tgt, TEST_NQN) };
	static struct preempt_run p;
	uint64_t deadline;
	pthread_t t;

	held_ns(rf);
	a_holds_wero(rf);
	preempt_under_write(rf, &p, NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT, 0xb4);
	assert_int_equal(p.acq.count, 0);

	assert_int_equal(pthread_create(&t, NULL, remover_run, &r), 0);
	deadline = nvt_now_ns() + 50000000ull;
	while (nvt_now_ns() < deadline)
		poll_both(rf);
	assert_false(atomic_load(&r.done));	/* the Acquire and the write still hold it */
	assert_int_equal(p.acq.count, 0);
	held_release();
	deadline = nvt_now_ns() + NVT_TEST_WAIT_MS * 1000000ull;
	while (!atomic_load(&r.done) && nvt_now_ns() < deadline)
		poll_both(rf);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.ret, 0);
	assert_int_equal(p.wb.count, 1);
	assert_int_equal(nvt_test_status(&p.wb), 0);
	assert_int_equal(p.acq.count, 1);
	assert_int_equal(nvt_test_status(&p.acq), 0);
	assert_null(r.subsys->ns[1]);
	assert_int_equal(io(rf->b.io[0], nvme_cmd_read), NVME_SC_INVALID_NS);
}

/*
 * The target goes away while a Preempt and Abort waits: B's write has
 * finished, the Acquire's grant is still a message for A's poll group.
 * Teardown drives it: the Acquire completes, nothing hangs or leaks.
 */
static void test_preempt_abort_teardown(void **state)
{
	struct resv_fixture *rf = *state;
	static struct preempt_run p;

	held_ns(rf);
	a_holds_wero(rf);
	preempt_under_write(rf, &p, NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT, 0xb5);
	held_release();
	assert_int_equal(p.wb.count, 1);
	assert_int_equal(p.acq.count, 0);
	teardown(state);
	assert_int_equal(p.acq.count, 1);
	*state = NULL;
}

/*
 * Persist Through Power Loss on a namespace in a file: host A registers
 * with CPTPL=11b and takes Write Exclusive; the target goes away (nvtd
 * stopped) and a new one opens the same file: host B is still fenced off
 * writing, A still holds it. Identify says PTPL (RESCAP bit 0), Get
 * Features 83h says it is on.
 */
static void test_ptpl_across_restart(void **state)
{
	struct nvt_config cfg;
	struct nvt_target *tgt;
	struct fixture *f;
	struct nvt_loop_ctrl b;
	struct nvme_id_ns id;
	struct nvt_sqe sqe;
	uint64_t data[2] = { 0, htole64(KEY_A) };
	char state_file[160];
	uint32_t v = 0;

	(void)state;
	nvt_test_need_io_uring();
	nvt_test_config(&cfg);
	nvt_test_ns_in_file(&cfg.subsystems[0].namespaces[0]);
	snprintf(state_file, sizeof(state_file), "%s.nvt-resv",
		 nvt_ns_cfg_path(&cfg.subsystems[0].namespaces[0], "path"));
	assert_int_equal(nvt_target_create(&cfg, &tgt), 0);
	f = nvt_test_fixture_connect(tgt, TEST_NQN, TEST_HOST, 1, 64, 0);
	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, 1, 0);
	assert_int_equal(nvt_test_exec(f->ctrl.admin, &sqe, &id, sizeof(id), NULL), 0);
	assert_int_equal(id.rescap, 0xff);
	nvt_host_sqe_init(&sqe, nvme_cmd_resv_register, 1);
	sqe.common.cdw10 = htole32(NVME_RESERVATION_RREGA_REGISTER_KEY |
				   (uint32_t)NVME_RESERVATION_CPTPL_PERSIST << 30);
	assert_int_equal(nvt_test_exec(f->ctrl.io[0], &sqe, data, sizeof(data), NULL), 0);
	assert_int_equal(resv_acquire(f->ctrl.io[0], NVME_RESERVATION_RACQA_ACQUIRE,
				      NVME_RESERVATION_RTYPE_WE, KEY_A, 0), 0);
	assert_int_equal(feature(f->ctrl.admin, false, NVME_FEAT_FID_RESV_PERSIST, 1, 0, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(access(state_file, F_OK), 0);
	/* Here PTPL can be set: changeable as well as per namespace. */
	assert_int_equal(feature_supported(f->ctrl.admin, NVME_FEAT_FID_RESV_PERSIST, 1), 0x6);
	nvt_loop_ctrl_disconnect(&f->ctrl);
	nvt_target_destroy(f->tgt);
	free(f);

	assert_int_equal(nvt_target_create(&cfg, &tgt), 0);
	assert_int_equal(nvt_loop_ctrl_connect(tgt, TEST_NQN, HOST_B, 1, 64, 0, &b), 0);
	assert_int_equal(io(b.io[0], nvme_cmd_write), NVME_SC_RESERVATION_CONFLICT);
	assert_int_equal(io(b.io[0], nvme_cmd_read), 0);
	f = nvt_test_fixture_connect(tgt, TEST_NQN, TEST_HOST, 1, 64, 0);
	assert_int_equal(io(f->ctrl.io[0], nvme_cmd_write), 0);
	/* PTPL off again: the file goes, the next start forgets. */
	assert_int_equal(feature(f->ctrl.admin, true, NVME_FEAT_FID_RESV_PERSIST, 1, 0, NULL), 0);
	assert_int_equal(access(state_file, F_OK), -1);
	nvt_loop_ctrl_disconnect(&b);
	nvt_loop_ctrl_disconnect(&f->ctrl);
	nvt_target_destroy(f->tgt);
	free(f);
	nvt_test_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notifications_main_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_abort_waits, setup, teardown_held),
		cmocka_unit_test_setup_teardown(test_preempt_abort_data_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_abort_ns_removed, setup, teardown_held),
		cmocka_unit_test_setup_teardown(test_preempt_abort_teardown, setup, NULL),
		cmocka_unit_test(test_ptpl_across_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
