/* SPDX-License-Identifier: BSD-3-Clause */
/* Reservation notifications from the I/O thread that changed a reservation to the other hosts' controllers: a per-subsystem ring and a message to the main loop. */
#define NVT_LOG_PREFIX "resv: "
#include <string.h>

#include "nvt/log.h"
#include "nvt/target.h"
#include "nvt/util.h"

static void nvt_resv_notify_lock(struct nvt_resv_notify *rn)
{
	while (atomic_flag_test_and_set_explicit(&rn->lock, memory_order_acquire))
		;
}

static void nvt_resv_notify_unlock(struct nvt_resv_notify *rn)
{
	atomic_flag_clear_explicit(&rn->lock, memory_order_release);
}

/* The oldest note, if any. Return: true if @out holds one. */
static bool nvt_resv_notify_pop(struct nvt_resv_notify *rn, struct nvt_resv_note *out)
{
	bool got = false;

	nvt_resv_notify_lock(rn);
	if (rn->head != rn->tail) {
		*out = rn->ring[rn->head % NVT_RESV_NOTIFY_RING];
		rn->head++;
		got = true;
	}
	nvt_resv_notify_unlock(rn);
	return got;
}

static void nvt_resv_note_ctrl(struct nvt_ctrl *ctrl, void *arg)
{
	const struct nvt_resv_note *n = arg;
	uint64_t id[2];

	memcpy(id, ctrl->hostid, sizeof(id));
	/* Every controller of the host: a registration is the host's, not one controller's. */
	if (id[0] == n->hostid[0] && id[1] == n->hostid[1])
		nvt_ctrl_resv_note(ctrl, n->nsid, n->type);
}

/* Control path: every queued note to its host's controllers. */
static void nvt_resv_notify_drain(struct nvt_subsys *subsys)
{
	struct nvt_resv_note n;

	while (nvt_resv_notify_pop(&subsys->resv_notify, &n))
		nvt_subsys_for_each_ctrl(subsys, nvt_resv_note_ctrl, &n);
}

static void nvt_resv_notify_msg(struct nvt_pg_msg *m)
{
	struct nvt_subsys *subsys = container_of(m, struct nvt_subsys, resv_notify.msg);

	/* Cleared first: a note pushed from here on sends the message again. */
	atomic_store(&subsys->resv_notify.queued, false);
	nvt_resv_notify_drain(subsys);
	nvt_subsys_put(subsys);	/* taken when sent */
}

void nvt_resv_notify(struct nvt_ns *ns, const struct nvt_resv_events *ev)
{
	struct nvt_subsys *subsys = ns->subsys;
	struct nvt_resv_notify *rn = &subsys->resv_notify;
	struct nvt_poll_group *main_pg = subsys->tgt->pg;
	unsigned int lost = 0;

	if (!ev->nr)
		return;
	nvt_resv_notify_lock(rn);
	for (unsigned int i = 0; i < ev->nr; i++) {
		struct nvt_resv_note *n;

		if (rn->tail - rn->head >= NVT_RESV_NOTIFY_RING) {
			atomic_fetch_add_explicit(&rn->lost, 1, memory_order_relaxed);
			lost++;
			continue;
		}
		n = &rn->ring[rn->tail % NVT_RESV_NOTIFY_RING];
		n->hostid[0] = ev->ev[i].hostid[0];
		n->hostid[1] = ev->ev[i].hostid[1];
		n->nsid = ns->nsid;
		n->type = ev->ev[i].type;
		rn->tail++;
	}
	nvt_resv_notify_unlock(rn);
	if (lost)
		nvt_warn_ratelimited("%s nsid %u: %u reservation notifications lost (the main loop is behind)",
				     subsys->nqn, ns->nsid, lost);
	if (!main_pg) {
		/* No main loop: the one thread driving every queue delivers (loop transport tests). */
		nvt_resv_notify_drain(subsys);
		return;
	}
	/* A reservation change is rare: one shared counter for the message's subsystem reference. */
	if (!atomic_exchange(&rn->queued, true)) {
		atomic_fetch_add(&subsys->refs, 1);
		rn->msg.fn = nvt_resv_notify_msg;
		nvt_poll_group_send(main_pg, &rn->msg);
	}
}
