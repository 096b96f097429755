/* SPDX-License-Identifier: BSD-3-Clause */
/* SCSI PERSISTENT RESERVE IN/OUT (SPC-4 5.12, 6.16, 6.17) on the namespace's NVMe reservation state, a vhost controller being one I_T nexus. */
#define NVT_LOG_PREFIX "scsi: "
#include <string.h>

#include "nvt/log.h"
#include "nvt/resv.h"
#include "nvt/target.h"
#include "nvt/util.h"
#include "scsi_internal.h"

/* PERSISTENT RESERVE OUT service actions (SPC-4 table 169). */
enum {
	NVT_PR_REGISTER		= 0x00,
	NVT_PR_RESERVE		= 0x01,
	NVT_PR_RELEASE		= 0x02,
	NVT_PR_CLEAR		= 0x03,
	NVT_PR_PREEMPT		= 0x04,
	NVT_PR_PREEMPT_ABORT	= 0x05,
	NVT_PR_REGISTER_IGNORE	= 0x06,
};

/* PERSISTENT RESERVE IN service actions (SPC-4 table 160). */
enum {
	NVT_PR_READ_KEYS	= 0x00,
	NVT_PR_READ_RESERVATION	= 0x01,
	NVT_PR_REPORT_CAPS	= 0x02,
};

#define NVT_PR_PLIST_LEN	24u	/* the basic parameter list: SPEC_I_PT and REGISTER AND MOVE are not offered */
#define NVT_PR_SPEC_I_PT	0x08	/* parameter list byte 20 */
#define NVT_PR_ALL_TG_PT	0x04
#define NVT_PR_APTPL		0x01

/* SCSI persistent reservation TYPE -> NVMe RTYPE: 1 WE, 3 EA, 5 WE-RO, 6 EA-RO, 7 WE-AR, 8 EA-AR; 0: not a type. */
static const uint8_t nvt_pr_to_nvme[16] = {
	[1] = NVME_RESERVATION_RTYPE_WE,   [3] = NVME_RESERVATION_RTYPE_EA,
	[5] = NVME_RESERVATION_RTYPE_WERO, [6] = NVME_RESERVATION_RTYPE_EARO,
	[7] = NVME_RESERVATION_RTYPE_WEAR, [8] = NVME_RESERVATION_RTYPE_EAAR,
};

static const uint8_t nvt_pr_from_nvme[7] = { 0, 1, 3, 5, 6, 7, 8 };

void nvt_scsi_dev_hostid(struct nvt_scsi_dev *dev, const char *socket)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a 64 */

	for (const char *p = socket; p && *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	memcpy(dev->hostid, NVT_RESV_NEXUS_PREFIX, 8);
	nvt_put_be64(dev->hostid + 8, h);
	/*
	 * UUID variant bits 111b (RFC 9562 §4.1: reserved for future
	 * definition): no UUID generator emits them, and NVMe hosts send
	 * UUIDs (nvme-cli's hostid, the kernel's uuid_gen, SPDK).
	 */
	dev->hostid[8] |= 0xe0;
}

const uint8_t *nvt_scsi_nexus(const struct nvt_scsi_task *t)
{
	/* A task without a device (not from the vhost front): the nexus of an unnamed controller. */
	static const uint8_t no_dev[16] = { 'n', 'v', 't', '-', 's', 'c', 's', 'i', 0xe0 };

	return t->dev ? t->dev->hostid : no_dev;
}

/* The state as NVMe Reservation Report shows it: header and every registrant (what io.c's Report sizes too). */
struct nvt_pr_view {
	union {
		struct nvme_resv_status hdr;
		uint8_t raw[sizeof(struct nvme_resv_status) +
			    NVT_RESV_MAX_REGS * sizeof(struct nvme_registered_ctrl_ext)];
	};
	unsigned int nr;
};

/* Registrant @i of @v (the extended entries follow the 64-byte header). */
static const struct nvme_registered_ctrl_ext *nvt_pr_reg(const struct nvt_pr_view *v, unsigned int i)
{
	return (const struct nvme_registered_ctrl_ext *)(v->raw + sizeof(struct nvme_resv_status)) + i;
}

static void nvt_pr_view(struct nvt_resv *r, struct nvt_pr_view *v)
{
	uint16_t st = nvt_resv_report(r, true, v->raw, sizeof(v->raw));

	(void)st;	/* eds and a buffer past the header: always OK */
	v->nr = (unsigned int)(v->hdr.regctl[0] | v->hdr.regctl[1] << 8);
	if (v->nr > NVT_RESV_MAX_REGS)
		v->nr = NVT_RESV_MAX_REGS;
}

/* ---- PERSISTENT RESERVE IN ---- */

static void nvt_pr_read_keys(struct nvt_scsi_task *t, const struct nvt_pr_view *v, uint32_t alloc)
{
	uint8_t b[8 + 8 * NVT_RESV_MAX_REGS];

	nvt_put_be32(b, le32toh(v->hdr.gen));
	nvt_put_be32(b + 4, 8 * v->nr);
	for (unsigned int i = 0; i < v->nr; i++)
		nvt_put_be64(b + 8 + 8 * i, le64toh(nvt_pr_reg(v, i)->rkey));
	nvt_scsi_data_in(t, b, 8 + 8 * v->nr, alloc);
}

static void nvt_pr_read_reservation(struct nvt_scsi_task *t, const struct nvt_pr_view *v,
				    uint32_t alloc)
{
	uint8_t b[24] = { 0 };
	uint8_t rtype = v->hdr.rtype;

	nvt_put_be32(b, le32toh(v->hdr.gen));
	if (rtype && rtype < NVT_ARRAY_SIZE(nvt_pr_from_nvme)) {
		nvt_put_be32(b + 4, 16);
		/* An all-registrants reservation has no one holder: its key reads 0 (SPC-4 6.16.3). */
		if (!nvt_resv_all_regs(rtype))
			for (unsigned int i = 0; i < v->nr; i++)
				if (nvt_pr_reg(v, i)->rcsts & 1)
					nvt_put_be64(b + 8, le64toh(nvt_pr_reg(v, i)->rkey));
		b[21] = nvt_pr_from_nvme[rtype];	/* scope 0: LU_SCOPE */
	}
	nvt_scsi_data_in(t, b, rtype ? 24 : 8, alloc);
}

static void nvt_pr_report_caps(struct nvt_scsi_task *t, uint32_t alloc)
{
	struct nvt_resv *r = &t->lun->ns->resv;
	uint8_t b[8] = { 0 };

	nvt_put_be16(b, sizeof(b));
	/* CRH 0 (no RESERVE(6)/RELEASE(6)), SIP_C 0, ATP_C 0: not offered; PTPL_C where the state can persist. */
	b[2] = r->ptpl_path ? 0x01 : 0;
	b[3] = 0x80 | (nvt_resv_ptpl(r) ? 0x01 : 0);	/* TMV, PTPL_A */
	b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;	/* WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX */
	b[5] = 0x01;					/* EX_AC_AR */
	nvt_scsi_data_in(t, b, sizeof(b), alloc);
}

void nvt_scsi_exec_pr_in(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint32_t alloc = nvt_get_be16(c + 7);
	struct nvt_pr_view v;

	switch (c[1] & 0x1f) {
	case NVT_PR_READ_KEYS:
		nvt_pr_view(&t->lun->ns->resv, &v);
		nvt_pr_read_keys(t, &v, alloc);
		break;
	case NVT_PR_READ_RESERVATION:
		nvt_pr_view(&t->lun->ns->resv, &v);
		nvt_pr_read_reservation(t, &v, alloc);
		break;
	case NVT_PR_REPORT_CAPS:
		nvt_pr_report_caps(t, alloc);
		break;
	default:
		/* READ FULL STATUS among them: no TransportID names an NVMe host or a vhost controller. */
		nvt_scsi_bad_field(t, true, 1, 4);
		break;
	}
	nvt_scsi_complete(t);
}

/* ---- PERSISTENT RESERVE OUT ---- */

/* PREEMPT AND ABORT: what the namespace admitted before the change is done; now @t completes. */
static void nvt_scsi_pr_fenced(struct nvt_ns_fence *f)
{
	nvt_scsi_complete(container_of(f, struct nvt_scsi_task, fence));
}

/*
 * PREEMPT AND ABORT, its state changed: completes only once every command
 * the namespace admitted before (any nexus's or host's) has finished, so
 * none of the preempted ones' writes lands after it (nvt_ns_fence(), as
 * NVMe's Preempt and Abort); later ones meet the new state at admission.
 */
static void nvt_scsi_pr_abort_wait(struct nvt_scsi_task *t)
{
	struct nvt_ns_chan *chan = nvt_ns_chan_get(t->lun->ns, t->queue->pg);

	if (!chan) {
		/* A queue's poll group always has the channel: a bug, said so rather than unfenced. */
		nvt_err("PREEMPT AND ABORT: no channel to fence on");
		nvt_scsi_fail_simple(t, NVT_SK_HARDWARE_ERROR, NVT_ASC_INTERNAL_FAILURE);
		nvt_scsi_complete(t);
		return;
	}
	nvt_ns_fence(&t->fence, chan, nvt_scsi_pr_fenced);
}

/* @st (nvt_resv_*) of service action @sa as SCSI status and sense. */
static void nvt_pr_status(struct nvt_scsi_task *t, uint8_t sa, uint16_t st, bool registered_after)
{
	switch (st) {
	case NVT_ST_OK:
		t->resid = t->data_len > NVT_PR_PLIST_LEN ? t->data_len - NVT_PR_PLIST_LEN : 0;
		return;
	case NVT_ST_RESV_CONFLICT:
		t->status = NVT_SCSI_RESERVATION_CONFLICT;
		return;
	case NVT_ST_INVALID_FIELD:
		if (sa == NVT_PR_RELEASE)	/* the holder named another type */
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_PR_RELEASE);
		else	/* a zero SERVICE ACTION RESERVATION KEY that the state changed under */
			nvt_scsi_bad_field(t, false, 8, -1);
		return;
	case NVT_ST_INTERNAL:
		/* Not registered after a REGISTER: every slot was taken (resv.c logs it). */
		if ((sa == NVT_PR_REGISTER || sa == NVT_PR_REGISTER_IGNORE) && !registered_after)
			nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PR_RESOURCES);
		else	/* the PTPL file was not written (logged) */
			nvt_scsi_fail_simple(t, NVT_SK_HARDWARE_ERROR, NVT_ASC_INTERNAL_FAILURE);
		return;
	default:
		nvt_scsi_fail_simple(t, NVT_SK_HARDWARE_ERROR, NVT_ASC_INTERNAL_FAILURE);
		return;
	}
}

/*
 * REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4 5.12.7) as NVMe
 * Register, Unregister or Replace. The nexus's registration is looked up
 * first; a change racing this one (another queue of the same guest) is
 * caught by the NVMe action's own key check: RESERVATION CONFLICT.
 */
static uint16_t nvt_pr_register(struct nvt_scsi_task *t, uint8_t sa, uint64_t key, uint64_t sakey,
				uint32_t cptpl, struct nvt_resv_events *ev, bool *registered_after)
{
	struct nvt_resv *r = &t->lun->ns->resv;
	const uint8_t *id = nvt_scsi_nexus(t);
	bool ignore = sa == NVT_PR_REGISTER_IGNORE;
	uint32_t cdw10 = cptpl << 30 | (ignore ? 1u << 3 : 0);
	uint64_t cur;
	uint16_t st;

	if (!nvt_resv_key(r, id, &cur)) {
		if (!ignore && key)
			return NVT_ST_RESV_CONFLICT;
		if (!sakey)
			return NVT_ST_OK;	/* unregistered, unregistering: nothing (no new generation) */
		st = nvt_resv_register(r, id, cdw10 | NVME_RESERVATION_RREGA_REGISTER_KEY, 0, sakey, ev);
	} else {
		if (!ignore && key != cur)
			return NVT_ST_RESV_CONFLICT;
		cdw10 |= sakey ? NVME_RESERVATION_RREGA_REPLACE_KEY : NVME_RESERVATION_RREGA_UNREGISTER_KEY;
		st = nvt_resv_register(r, id, cdw10, key, sakey, ev);
	}
	*registered_after = nvt_resv_key(r, id, &cur);
	return st;
}

void nvt_scsi_exec_pr_out(struct nvt_scsi_task *t)
{
	const uint8_t *c = t->cdb;
	struct nvt_ns *ns = t->lun->ns;
	struct nvt_resv *r = &ns->resv;
	const uint8_t *id = nvt_scsi_nexus(t);
	uint8_t sa = c[1] & 0x1f, scope = c[2] >> 4, type = c[2] & 0x0f, rtype, p[NVT_PR_PLIST_LEN];
	uint32_t plen = nvt_get_be32(c + 5), cptpl = NVME_RESERVATION_CPTPL_NO_CHANGE;
	struct nvt_resv_events ev = { .nr = 0 };
	bool registered_after = true;
	uint64_t key, sakey;
	uint16_t st;

	/* REGISTER AND MOVE (07h), REPLACE LOST RESERVATION (08h) and the reserved ones: not offered. */
	if (sa > NVT_PR_REGISTER_IGNORE) {
		nvt_scsi_bad_field(t, true, 1, 4);
		goto out;
	}
	/* Scope and type matter to these; RELEASE with other ones is an invalid release below. */
	rtype = scope ? 0 : nvt_pr_to_nvme[type];
	if ((sa == NVT_PR_RESERVE || sa == NVT_PR_PREEMPT || sa == NVT_PR_PREEMPT_ABORT) && !rtype) {
		nvt_scsi_bad_field(t, true, 2, scope ? 7 : 3);
		goto out;
	}
	if (plen < NVT_PR_PLIST_LEN) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PARAM_LIST_LENGTH);
		goto out;
	}
	if (nvt_scsi_data_out(t, 0, p, sizeof(p)) != sizeof(p)) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_IU_FIELD);	/* data-out short of the list */
		goto out;
	}
	if (p[20] & (NVT_PR_SPEC_I_PT | NVT_PR_ALL_TG_PT)) {
		nvt_scsi_bad_field(t, false, 20, p[20] & NVT_PR_SPEC_I_PT ? 3 : 2);
		goto out;
	}
	/* Without SPEC_I_PT the list is exactly 24 bytes (SPC-4 6.17.3). */
	if (plen != NVT_PR_PLIST_LEN) {
		nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_PARAM_LIST_LENGTH);
		goto out;
	}
	key = nvt_get_be64(p);
	sakey = nvt_get_be64(p + 8);
	if (sa == NVT_PR_REGISTER || sa == NVT_PR_REGISTER_IGNORE) {
		/* APTPL is read by these two only: the namespace's PTPL, which only some can keep. */
		if (p[20] & NVT_PR_APTPL) {
			if (!r->ptpl_path) {
				nvt_scsi_bad_field(t, false, 20, 0);
				goto out;
			}
			cptpl = NVME_RESERVATION_CPTPL_PERSIST;
		} else {
			cptpl = NVME_RESERVATION_CPTPL_CLEAR;
		}
	}
	switch (sa) {
	case NVT_PR_REGISTER:
	case NVT_PR_REGISTER_IGNORE:
		st = nvt_pr_register(t, sa, key, sakey, cptpl, &ev, &registered_after);
		break;
	case NVT_PR_RESERVE:
		st = nvt_resv_acquire(r, id, NVME_RESERVATION_RACQA_ACQUIRE | (uint32_t)rtype << 8, key,
				      0, &ev);
		break;
	case NVT_PR_RELEASE:
		st = nvt_resv_release(r, id, NVME_RESERVATION_RRELA_RELEASE | (uint32_t)rtype << 8, key,
				      &ev);
		break;
	case NVT_PR_CLEAR:
		st = nvt_resv_release(r, id, NVME_RESERVATION_RRELA_CLEAR, key, &ev);
		break;
	default: {	/* PREEMPT, PREEMPT AND ABORT */
		uint8_t held = atomic_load_explicit(&r->rtype, memory_order_relaxed);

		/* A zero key preempts only an all-registrants reservation (SPC-4 5.12.11.4). */
		if (!sakey && !nvt_resv_all_regs(held)) {
			nvt_scsi_bad_field(t, false, 8, -1);
			goto out;
		}
		st = nvt_resv_acquire(r, id,
				      (sa == NVT_PR_PREEMPT ? NVME_RESERVATION_RACQA_PREEMPT :
				       NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT) | (uint32_t)rtype << 8,
				      key, sakey, &ev);
		break;
	}
	}
	nvt_pr_status(t, sa, st, registered_after);
	/* Queued for the NVMe hosts before the guest hears it is done, as io.c does. */
	if (ns->subsys)
		nvt_resv_notify(ns, &ev);
	if (sa == NVT_PR_PREEMPT_ABORT && !st) {
		nvt_scsi_pr_abort_wait(t);
		return;
	}
out:
	nvt_scsi_complete(t);
}
