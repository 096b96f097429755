/* SPDX-License-Identifier: BSD-3-Clause */
/* Controllers: creation with dynamic IDs, queues, CC/CSTS properties, keep-alive, asynchronous events, teardown. */
#define NVT_LOG_PREFIX "ctrl: "
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/auth.h"
#include "nvt/log.h"
#include "nvt/util.h"
#include "nvt/target.h"

/* CAP (NVMe 2.0 §3.1.4.1): MQES, CQR, TO = 7.5 s, CSS = NVM, MPSMIN = MPSMAX = 4 KiB. */
static uint64_t nvt_ctrl_cap(const struct nvt_transport_ops *ops)
{
	return (uint64_t)(ops->max_queue_size - 1) |	/* MQES, 0-based, per transport */
	       (1ull << 16) |				/* CQR: contiguous queues */
	       (15ull << 24) |				/* TO, 500 ms units */
	       (1ull << 37);				/* CSS: NVM command set */
}

static uint16_t nvt_alloc_cntlid(struct nvt_subsys *subsys)
{
	/* Dynamic controller model: any unused ID; wrap around, skip live ones. */
	for (unsigned int tries = 0; tries < NVT_CNTLID_MAX; tries++) {
		uint16_t id = subsys->next_cntlid;
		bool used = false;

		subsys->next_cntlid = id >= NVT_CNTLID_MAX ? NVT_CNTLID_MIN : id + 1;
		for (struct nvt_ctrl *c = subsys->ctrls; c; c = c->next)
			if (c->cntlid == id)
				used = true;
		if (!used)
			return id;
	}
	return 0;
}

/* Controllers @hostnqn holds over every subsystem; tgt->lock held. */
static unsigned int nvt_host_nr_ctrls(struct nvt_target *tgt, const char *hostnqn)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i <= tgt->nr_subsys; i++) {
		struct nvt_subsys *s = i < tgt->nr_subsys ? tgt->subsys[i] : tgt->discovery;

		for (struct nvt_ctrl *c = s ? s->ctrls : NULL; c; c = c->next)
			if (!strcmp(c->hostnqn, hostnqn))
				n++;
	}
	return n;
}

uint16_t nvt_ctrl_create(struct nvt_subsys *subsys, struct nvt_req *req,
			 const struct nvmf_connect_data *d, uint32_t kato,
			 struct nvt_ctrl **out)
{
	struct nvt_target *tgt = subsys->tgt;
	struct nvt_ctrl *ctrl;

	ctrl = calloc(1, sizeof(*ctrl));
	if (!ctrl)
		return NVT_ST_INTERNAL;
	ctrl->subsys = subsys;
	ctrl->ops = req->ops;
	ctrl->port = req->sq->port;
	nvt_strscpy(ctrl->hostnqn, d->hostnqn, sizeof(ctrl->hostnqn));
	memcpy(ctrl->hostid, d->hostid, sizeof(ctrl->hostid));
	atomic_init(&ctrl->refs, 1);	/* the subsystem's list */
	atomic_init(&ctrl->dead, false);
	atomic_init(&ctrl->err_count, 0);
	atomic_flag_clear(&ctrl->errlog_lock);
	ctrl->cap = nvt_ctrl_cap(ctrl->ops);
	ctrl->max_qid = subsys->type == NVT_SUBSYS_DISCOVERY ? 0 : subsys->max_io_queues;
	/* Discovery controllers announce log changes by default; I/O ones wait for 0Bh. */
	ctrl->aen_enabled = subsys->type == NVT_SUBSYS_DISCOVERY ? NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE : 0;
	ctrl->kato_ms = kato;
	atomic_init(&ctrl->ka_deadline_ns, 0);
	nvt_ctrl_keep_alive(ctrl);
	pthread_mutex_init(&ctrl->lock, NULL);

	pthread_mutex_lock(&tgt->lock);
	/* A reload removed the subsystem since the Connect found it: as if never there. */
	if (subsys->removed) {
		pthread_mutex_unlock(&tgt->lock);
		pthread_mutex_destroy(&ctrl->lock);
		free(ctrl);
		/* IATTR 1 (the Connect data), its subsysnqn: as fabrics.c says a missing one. */
		req->cqe->result.u32 = htole32((1u << 16) |
					       (uint32_t)offsetof(struct nvmf_connect_data, subsysnqn));
		return NVT_ST_CONNECT_INVALID_PARAM;
	}
	/* Again under the lock: a reload may have taken the host off the list since. */
	if (!nvt_subsys_host_allowed_locked(subsys, ctrl->hostnqn)) {
		pthread_mutex_unlock(&tgt->lock);
		pthread_mutex_destroy(&ctrl->lock);
		free(ctrl);
		return NVT_ST_CONNECT_INVALID_HOST;
	}
	/* Hostile-host limits: one host or one subsystem cannot take every controller. */
	if (subsys->nr_ctrls >= subsys->max_ctrls) {
		pthread_mutex_unlock(&tgt->lock);
		nvt_warn_ratelimited("%s: refusing a controller for %s: the subsystem has its %u",
				     subsys->nqn, ctrl->hostnqn, subsys->max_ctrls);
		goto out_busy;
	}
	if (nvt_host_nr_ctrls(tgt, ctrl->hostnqn) >= tgt->max_ctrls_per_host) {
		pthread_mutex_unlock(&tgt->lock);
		nvt_warn_ratelimited("%s: refusing a controller for %s: the host has its %u",
				     subsys->nqn, ctrl->hostnqn, tgt->max_ctrls_per_host);
		goto out_busy;
	}
	ctrl->cntlid = nvt_alloc_cntlid(subsys);
	if (!ctrl->cntlid) {
		pthread_mutex_unlock(&tgt->lock);
		goto out_busy;
	}
	ctrl->next = subsys->ctrls;
	subsys->ctrls = ctrl;
	subsys->nr_ctrls++;
	/* Until it is freed: its queues reach the subsystem through it. */
	atomic_fetch_add(&subsys->refs, 1);
	pthread_mutex_unlock(&tgt->lock);

	nvt_info("%s: controller %u created for %s (kato %u ms)", subsys->nqn,
		 ctrl->cntlid, ctrl->hostnqn, kato);
	*out = ctrl;
	return NVT_ST_OK;

out_busy:
	pthread_mutex_destroy(&ctrl->lock);
	free(ctrl);
	return NVT_ST_CONNECT_BUSY;
}

struct nvt_ctrl *nvt_ctrl_find_get(struct nvt_subsys *subsys, uint16_t cntlid,
				   const char *hostnqn)
{
	struct nvt_ctrl *found = NULL;

	pthread_mutex_lock(&subsys->tgt->lock);
	for (struct nvt_ctrl *c = subsys->ctrls; c; c = c->next) {
		if (c->cntlid != cntlid || atomic_load(&c->dead))
			continue;
		/* NVMe-oF 1.1 §3.3: an I/O queue joins a controller of the same host only. */
		if (strcmp(c->hostnqn, hostnqn))
			break;
		atomic_fetch_add(&c->refs, 1);
		found = c;
		break;
	}
	pthread_mutex_unlock(&subsys->tgt->lock);
	return found;
}

uint16_t nvt_ctrl_install_sq(struct nvt_ctrl *ctrl, struct nvt_sq *sq)
{
	uint16_t status = NVT_ST_OK;

	/* The caller holds a reference for the queue; it becomes the queue's. */
	pthread_mutex_lock(&ctrl->lock);
	/*
	 * A controller being torn down takes no new queues (its deleter ran
	 * under this lock); a queue joins one controller, once: a second
	 * Connect that raced the first on the same queue fails here.
	 */
	if (atomic_load(&ctrl->dead) || sq->qid > ctrl->max_qid || ctrl->sqs[sq->qid] ||
	    sq->ctrl || sq->state != NVT_SQ_CONNECTING) {
		status = NVT_ST_CONNECT_INVALID_PARAM;
	} else {
		ctrl->sqs[sq->qid] = sq;
		sq->ctrl = ctrl;
		sq->state = NVT_SQ_LIVE;
	}
	pthread_mutex_unlock(&ctrl->lock);
	return status;
}

void nvt_ctrl_uninstall_sq(struct nvt_ctrl *ctrl, struct nvt_sq *sq)
{
	pthread_mutex_lock(&ctrl->lock);
	if (ctrl->sqs[sq->qid] == sq)
		ctrl->sqs[sq->qid] = NULL;
	sq->ctrl = NULL;
	sq->state = NVT_SQ_DISCONNECTED;
	pthread_mutex_unlock(&ctrl->lock);
}

void nvt_ctrl_for_each_sq(struct nvt_ctrl *ctrl, void (*fn)(struct nvt_sq *sq, void *arg),
			  void *arg)
{
	pthread_mutex_lock(&ctrl->lock);
	for (unsigned int qid = 0; qid <= ctrl->max_qid; qid++)
		if (ctrl->sqs[qid])
			fn(ctrl->sqs[qid], arg);
	pthread_mutex_unlock(&ctrl->lock);
}

void nvt_sq_init(struct nvt_sq *sq, struct nvt_target *tgt,
		 const struct nvt_transport_ops *ops, struct nvt_port *port,
		 struct nvt_poll_group *pg, uint16_t qid, uint16_t size)
{
	memset(sq, 0, sizeof(*sq));
	sq->tgt = tgt;
	sq->pg = pg;
	sq->ops = ops;
	sq->port = port;
	sq->qid = qid;
	sq->size = size;
	sq->state = NVT_SQ_CONNECTING;
}

static void nvt_ctrl_free(struct nvt_ctrl *ctrl)
{
	struct nvt_subsys *subsys = ctrl->subsys;

	nvt_info("%s: controller %u freed", subsys->nqn, ctrl->cntlid);
	pthread_mutex_destroy(&ctrl->lock);
	free(ctrl);
	nvt_subsys_put(subsys);
}

void nvt_ctrl_put(struct nvt_ctrl *ctrl)
{
	if (atomic_fetch_sub(&ctrl->refs, 1) == 1)
		nvt_ctrl_free(ctrl);
}

void nvt_sq_destroy(struct nvt_sq *sq)
{
	struct nvt_ctrl *ctrl = sq->ctrl;

	sq->state = NVT_SQ_DISCONNECTED;
	/* A fused Compare still waiting for its Write gets none now. */
	if (sq->fused_first)
		nvt_fused_abort(sq->fused_first, NVT_ST_ABORT_SQ);
	nvt_auth_sq_free(sq);
	if (!ctrl)
		return;
	nvt_ctrl_uninstall_sq(ctrl, sq);
	/* Losing the admin queue ends the controller (NVMe-oF 1.1 §3.4). */
	if (sq->qid == 0)
		nvt_ctrl_fatal(ctrl, "admin queue gone");
	nvt_ctrl_put(ctrl);
}

static void nvt_ctrl_unlink(struct nvt_ctrl *ctrl)
{
	struct nvt_subsys *subsys = ctrl->subsys;
	bool was_linked = false;

	pthread_mutex_lock(&subsys->tgt->lock);
	for (struct nvt_ctrl **pp = &subsys->ctrls; *pp; pp = &(*pp)->next) {
		if (*pp == ctrl) {
			*pp = ctrl->next;
			subsys->nr_ctrls--;
			was_linked = true;
			break;
		}
	}
	pthread_mutex_unlock(&subsys->tgt->lock);
	if (was_linked)
		nvt_ctrl_put(ctrl);
}

/* Complete every held AER with @status; each exactly once. */
static void nvt_ctrl_fail_aers(struct nvt_ctrl *ctrl, uint16_t status)
{
	for (;;) {
		struct nvt_req *req = NULL;

		pthread_mutex_lock(&ctrl->lock);
		if (ctrl->nr_aer)
			req = ctrl->aer[--ctrl->nr_aer];
		pthread_mutex_unlock(&ctrl->lock);
		if (!req)
			break;
		nvt_req_complete(req, status);
	}
}

void nvt_ctrl_fatal(struct nvt_ctrl *ctrl, const char *why)
{
	if (atomic_exchange(&ctrl->dead, true))
		return;
	nvt_info("%s: controller %u (%s): %s, tearing down", ctrl->subsys->nqn,
		 ctrl->cntlid, ctrl->hostnqn, why);
	ctrl->csts |= NVT_CSTS_CFS;
	/* Hold a reference across the transport's teardown, which drops queue refs. */
	atomic_fetch_add(&ctrl->refs, 1);
	nvt_ctrl_fail_aers(ctrl, NVT_ST_ABORT_SQ);
	nvt_ctrl_unlink(ctrl);
	if (ctrl->ops->delete_ctrl)
		ctrl->ops->delete_ctrl(ctrl);
	nvt_ctrl_put(ctrl);
}

void nvt_ctrl_keep_alive(struct nvt_ctrl *ctrl)
{
	uint64_t deadline = 0;

	/*
	 * KATO plus the granularity we report (KAS, 1 s): hosts send Keep Alive
	 * at KATO/2, and a slow host or network should not cost a controller.
	 */
	if (ctrl->kato_ms)
		deadline = nvt_now_ns() +
			   ((uint64_t)ctrl->kato_ms + NVT_KAS_100MS * 100u) * 1000000ull;
	atomic_store(&ctrl->ka_deadline_ns, deadline);
}

unsigned int nvt_target_check_keep_alive(struct nvt_target *tgt, uint64_t now_ns)
{
	unsigned int torn_down = 0;

	for (;;) {
		struct nvt_ctrl *expired = NULL;

		pthread_mutex_lock(&tgt->lock);
		for (unsigned int i = 0; i < tgt->nr_subsys + 1 && !expired; i++) {
			struct nvt_subsys *s = i < tgt->nr_subsys ? tgt->subsys[i] : tgt->discovery;

			for (struct nvt_ctrl *c = s ? s->ctrls : NULL; c; c = c->next) {
				uint64_t d = atomic_load(&c->ka_deadline_ns);

				if (d && d < now_ns && !atomic_load(&c->dead)) {
					expired = c;
					atomic_fetch_add(&c->refs, 1);
					break;
				}
			}
		}
		pthread_mutex_unlock(&tgt->lock);
		if (!expired)
			break;
		nvt_ctrl_fatal(expired, "keep-alive timeout");
		nvt_ctrl_put(expired);
		torn_down++;
	}
	return torn_down;
}

/* NVMe 2.0 §3.1.4.5: the controller checks CC when EN goes to 1. */
static bool nvt_cc_valid(uint32_t cc)
{
	return NVME_GET(cc, CC_IOSQES) == 6 && NVME_GET(cc, CC_IOCQES) == 4 &&
	       NVME_GET(cc, CC_MPS) == 0 && NVME_GET(cc, CC_AMS) == 0 &&
	       NVME_GET(cc, CC_CSS) == 0;
}

static void nvt_ctrl_update_cc(struct nvt_ctrl *ctrl, uint32_t new_cc)
{
	uint32_t old = ctrl->cc;

	ctrl->cc = new_cc;
	if (NVME_GET(new_cc, CC_EN) && !NVME_GET(old, CC_EN)) {
		if (nvt_cc_valid(new_cc))
			ctrl->csts |= NVT_CSTS_RDY;
		else
			ctrl->csts |= NVT_CSTS_CFS;
	}
	if (!NVME_GET(new_cc, CC_EN) && NVME_GET(old, CC_EN))
		ctrl->csts &= ~(uint32_t)(NVT_CSTS_RDY | NVT_CSTS_CFS);
	if (NVME_GET(new_cc, CC_SHN) && !NVME_GET(old, CC_SHN)) {
		/* Nothing is cached: shutdown completes at once. */
		ctrl->csts = (ctrl->csts & ~NVT_CSTS_SHST_MASK) | NVT_CSTS_SHST_CMPLT;
	}
	if (!NVME_GET(new_cc, CC_SHN) && NVME_GET(old, CC_SHN))
		ctrl->csts &= ~NVT_CSTS_SHST_MASK;
}

uint16_t nvt_ctrl_prop_get(struct nvt_ctrl *ctrl, uint32_t offset, bool is8, uint64_t *val)
{
	switch (offset) {
	case NVT_PROP_CAP:
		if (!is8)
			return NVT_ST_INVALID_FIELD;
		*val = ctrl->cap;
		return NVT_ST_OK;
	case NVT_PROP_VS:
		*val = NVT_VS;
		break;
	case NVT_PROP_CC:
		*val = ctrl->cc;
		break;
	case NVT_PROP_CSTS:
		*val = ctrl->csts;
		break;
	default:
		return NVT_ST_INVALID_FIELD;
	}
	return is8 ? NVT_ST_INVALID_FIELD : NVT_ST_OK;
}

uint16_t nvt_ctrl_prop_set(struct nvt_ctrl *ctrl, uint32_t offset, bool is8, uint64_t val)
{
	if (offset != NVT_PROP_CC || is8)
		return NVT_ST_INVALID_FIELD;
	nvt_ctrl_update_cc(ctrl, (uint32_t)val);
	return NVT_ST_OK;
}

/*
 * Each NVT_AEN_* bit (in order): its AER completion dword 0 (NVMe 2.0
 * Figure 150) and its AEN Configuration bit; 0: not governed by AEN
 * Configuration (reservation notifications: Set Features 82h masks them).
 */
static const struct {
	uint32_t result;
	uint32_t cfg_bit;
} nvt_aen_table[] = {
	{ NVME_AER_NOTICE | (NVME_AER_NOTICE_NS_CHANGED << 8) | ((uint32_t)NVME_LOG_LID_CHANGED_NS << 16),
	  NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES },
	{ NVME_AER_NOTICE | (NVME_AER_NOTICE_DISC_CHANGED << 8) | ((uint32_t)NVME_LOG_LID_DISCOVER << 16),
	  NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE },
	{ NVME_AER_CSS | (0u << 8) | ((uint32_t)NVME_LOG_LID_RESERVATION << 16), 0 },
	{ NVME_AER_NOTICE | (NVME_AER_NOTICE_ANA << 8) | ((uint32_t)NVME_LOG_LID_ANA << 16),
	  NVME_FEATURE_AENCFG_NOTICE_ANA_CHANGE },
};

/* Deliver pending, enabled, unmasked events to held AERs. */
static void nvt_ctrl_deliver_aens(struct nvt_ctrl *ctrl)
{
	for (;;) {
		struct nvt_req *req = NULL;
		uint32_t event = 0, result = 0;

		pthread_mutex_lock(&ctrl->lock);
		for (unsigned int i = 0; i < NVT_ARRAY_SIZE(nvt_aen_table); i++) {
			uint32_t e = 1u << i;

			if ((ctrl->aen_pending & e) && !(ctrl->aen_masked & e) &&
			    (!nvt_aen_table[i].cfg_bit || (ctrl->aen_enabled & nvt_aen_table[i].cfg_bit))) {
				event = e;
				result = nvt_aen_table[i].result;
				break;
			}
		}
		if (event && ctrl->nr_aer) {
			req = ctrl->aer[--ctrl->nr_aer];
			ctrl->aen_pending &= ~event;
			/* Masked until the host reads the log page (RAE=0). */
			ctrl->aen_masked |= event;
		}
		pthread_mutex_unlock(&ctrl->lock);
		if (!req)
			return;
		req->cqe->result.u32 = htole32(result);
		nvt_req_complete(req, NVT_ST_OK);
	}
}

void nvt_ctrl_raise_aen(struct nvt_ctrl *ctrl, uint32_t event)
{
	pthread_mutex_lock(&ctrl->lock);
	ctrl->aen_pending |= event;
	pthread_mutex_unlock(&ctrl->lock);
	nvt_ctrl_deliver_aens(ctrl);
}

void nvt_ctrl_resv_note(struct nvt_ctrl *ctrl, uint32_t nsid, uint8_t type)
{
	struct nvme_resv_notification_log *e;

	pthread_mutex_lock(&ctrl->lock);
	/* A masked type is neither logged nor counted (NVMe 2.0 §8.19, Reservation Notification Mask). */
	if (nsid > NVT_MAX_NSID || (ctrl->resv_mask[nsid] & (1u << type))) {
		pthread_mutex_unlock(&ctrl->lock);
		return;
	}
	/* Log Page Count: 0 means empty, so it wraps to 1. */
	if (++ctrl->resv_lpc == 0)
		ctrl->resv_lpc = 1;
	if (ctrl->resv_log_nr < NVT_RESV_LOG_ENTRIES) {
		e = &ctrl->resv_log[(ctrl->resv_log_head + ctrl->resv_log_nr) % NVT_RESV_LOG_ENTRIES];
		memset(e, 0, sizeof(*e));
		e->lpc = htole64(ctrl->resv_lpc);
		e->rnlpt = type;
		e->nsid = htole32(nsid);
		ctrl->resv_log_nr++;
	}
	pthread_mutex_unlock(&ctrl->lock);
	nvt_ctrl_raise_aen(ctrl, NVT_AEN_RESV);
}

void nvt_ctrl_clear_aen(struct nvt_ctrl *ctrl, uint32_t event)
{
	pthread_mutex_lock(&ctrl->lock);
	ctrl->aen_masked &= ~event;
	pthread_mutex_unlock(&ctrl->lock);
	nvt_ctrl_deliver_aens(ctrl);
}

void nvt_execute_async_event(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;

	pthread_mutex_lock(&ctrl->lock);
	if (ctrl->nr_aer >= NVT_AERL) {
		pthread_mutex_unlock(&ctrl->lock);
		nvt_req_complete(req, NVT_ST_ASYNC_LIMIT);
		return;
	}
	ctrl->aer[ctrl->nr_aer++] = req;
	pthread_mutex_unlock(&ctrl->lock);
	/* Held until an event; an already pending one goes out now. */
	nvt_ctrl_deliver_aens(ctrl);
}

void nvt_execute_keep_alive(struct nvt_req *req)
{
	nvt_ctrl_keep_alive(req->sq->ctrl);
	nvt_req_complete(req, NVT_ST_OK);
}
