/* SPDX-License-Identifier: BSD-3-Clause */
/* Asymmetric namespace access: group states per listener, the ANA log page (0Ch) and its change notice. */
#define NVT_LOG_PREFIX "ana: "
#include <errno.h>
#include <string.h>

#include "nvt/log.h"
#include "nvt/util.h"
#include "nvt/target.h"

/* Names in config files and nvtctl, by NVME_ANA_STATE_*. */
static const struct {
	uint8_t state;
	const char *name;
} nvt_ana_states[] = {
	{ NVME_ANA_STATE_OPTIMIZED, "optimized" },
	{ NVME_ANA_STATE_NONOPTIMIZED, "non-optimized" },
	{ NVME_ANA_STATE_INACCESSIBLE, "inaccessible" },
	{ NVME_ANA_STATE_PERSISTENT_LOSS, "persistent-loss" },
	{ NVME_ANA_STATE_CHANGE, "change" },
};

const char *nvt_ana_state_name(unsigned int state)
{
	for (size_t i = 0; i < NVT_ARRAY_SIZE(nvt_ana_states); i++)
		if (nvt_ana_states[i].state == state)
			return nvt_ana_states[i].name;
	return NULL;
}

const char *nvt_ana_state_choice(unsigned int i)
{
	return i < NVT_ARRAY_SIZE(nvt_ana_states) ? nvt_ana_states[i].name : NULL;
}

uint8_t nvt_ana_state_parse(const char *name)
{
	for (size_t i = 0; i < NVT_ARRAY_SIZE(nvt_ana_states); i++)
		if (!strcmp(nvt_ana_states[i].name, name))
			return nvt_ana_states[i].state;
	return 0;
}

/* A group's state; a group never set reads as optimized. */
static uint8_t nvt_ana_group_state(const struct nvt_target *tgt, uint32_t grpid)
{
	uint8_t state = atomic_load_explicit(&tgt->ana_state[grpid], memory_order_relaxed);

	return state ? state : NVME_ANA_STATE_OPTIMIZED;
}

uint16_t nvt_sq_ana_status_slow(const struct nvt_sq *sq, uint8_t state)
{
	uint16_t sc;

	/* NVMe 2.0 §8.1.1.2: no DNR, so the host retries on another path. */
	switch (state) {
	case NVME_ANA_STATE_INACCESSIBLE:
		sc = NVME_SC_ANA_INACCESSIBLE;
		break;
	case NVME_ANA_STATE_PERSISTENT_LOSS:
		sc = NVME_SC_ANA_PERSISTENT_LOSS;
		break;
	case NVME_ANA_STATE_CHANGE:
		sc = NVME_SC_ANA_TRANSITION;
		break;
	default:
		return 0;
	}
	nvt_warn_ratelimited("ctrl %u qid %u: I/O refused: ANA group %u is %s",
			     sq->ctrl ? sq->ctrl->cntlid : 0, sq->qid,
			     nvt_port_ana_group(sq->port), nvt_ana_state_name(state));
	return NVT_STATUS(NVME_SCT_PATH, sc);
}

/* The state @cfg gives group @grpid: optimized unless ana_groups says otherwise. */
static uint8_t nvt_cfg_ana_state(const struct nvt_config *cfg, uint32_t grpid)
{
	uint8_t state = 0;

	/* Ids are unique (a keyed list), states one of the names (config.c checks). */
	for (unsigned int i = 0; i < cfg->nr_ana_groups && !state; i++)
		if (cfg->ana_groups[i].id == grpid)
			state = nvt_ana_state_parse(cfg->ana_groups[i].state);
	return state ? state : NVME_ANA_STATE_OPTIMIZED;
}

void nvt_target_ana_init(struct nvt_target *tgt, const struct nvt_config *cfg)
{
	for (uint32_t g = 0; g <= NVT_ANA_GRPMAX; g++)
		atomic_store(&tgt->ana_state[g], nvt_cfg_ana_state(cfg, g));
}

/* The group that changed, and how many of its controllers were told. */
struct nvt_ana_change {
	uint32_t grpid;
	int told;
};

static void nvt_ctrl_ana_changed(struct nvt_ctrl *ctrl, void *arg)
{
	struct nvt_ana_change *c = arg;

	if (nvt_port_ana_group(ctrl->port) != c->grpid)
		return;
	c->told++;
	nvt_ctrl_raise_aen(ctrl, NVT_AEN_ANA_CHANGED);
}

int nvt_target_set_ana_state(struct nvt_target *tgt, uint32_t grpid, uint8_t state)
{
	struct nvt_ana_change c = { .grpid = grpid, .told = 0 };
	uint64_t cnt;

	if (grpid < 1 || grpid > NVT_ANA_GRPMAX || !nvt_ana_state_name(state))
		return -EINVAL;
	if (nvt_ana_group_state(tgt, grpid) == state)
		return 0;
	atomic_store(&tgt->ana_state[grpid], state);
	/* NVMe 2.0 §5.16.1.12: the Change Count wraps from FFFF...h to 1, never 0. */
	cnt = atomic_fetch_add(&tgt->ana_chgcnt, 1) + 1;
	if (!cnt)
		cnt = atomic_fetch_add(&tgt->ana_chgcnt, 1) + 1;
	atomic_store(&tgt->ana_grp_chgcnt[grpid], cnt);
	nvt_info("group %u now %s", grpid, nvt_ana_state_name(state));
	for (unsigned int i = 0; i < tgt->nr_subsys; i++)
		if (tgt->subsys[i]->type == NVT_SUBSYS_NVM)
			nvt_subsys_for_each_ctrl(tgt->subsys[i], nvt_ctrl_ana_changed, &c);
	return c.told;
}

void nvt_execute_get_log_ana(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	struct nvt_target *tgt = ctrl->subsys->tgt;
	uint32_t grpid = nvt_port_ana_group(ctrl->port);
	/* LSP bit 0, RGO: descriptors without their NSID lists. */
	bool rgo = (le32toh(req->cmd->common.cdw10) >> 8) & 1;
	struct nvme_ana_log hdr;
	struct nvme_ana_group_desc desc;
	struct nvt_log_writer w;
	uint32_t nnsids = 0;

	/*
	 * One descriptor: every namespace of the subsystem is in the group
	 * of the listener this controller came in on, in that group's state.
	 */
	for (uint32_t nsid = 1; nsid <= NVT_MAX_NSID; nsid++)
		if (ctrl->subsys->ns[nsid])
			nnsids++;
	memset(&hdr, 0, sizeof(hdr));
	hdr.chgcnt = htole64(atomic_load(&tgt->ana_chgcnt));
	hdr.ngrps = htole16(1);
	memset(&desc, 0, sizeof(desc));
	desc.grpid = htole32(grpid);
	desc.nnsids = htole32(rgo ? 0 : nnsids);
	desc.chgcnt = htole64(atomic_load(&tgt->ana_grp_chgcnt[grpid]));
	desc.state = nvt_ana_group_state(tgt, grpid);
	nvt_log_writer_init(&w, req);
	nvt_log_write(&w, &hdr, sizeof(hdr));
	nvt_log_write(&w, &desc, sizeof(desc));
	/* A namespace added meanwhile may be missing from the count: never list more than it says. */
	for (uint32_t nsid = 1; !rgo && nnsids && nsid <= NVT_MAX_NSID; nsid++) {
		if (ctrl->subsys->ns[nsid]) {
			uint32_t v = htole32(nsid);

			nvt_log_write(&w, &v, sizeof(v));
			nnsids--;
		}
	}
	/* Short of the count (a namespace removed meanwhile): NSID 0 pads, which hosts skip. */
	while (!rgo && nnsids--) {
		uint32_t v = 0;

		nvt_log_write(&w, &v, sizeof(v));
	}
	if (!nvt_get_log_rae(req))
		nvt_ctrl_clear_aen(ctrl, NVT_AEN_ANA_CHANGED);
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

void nvt_target_ana_reload(struct nvt_target *tgt, const struct nvt_config *o,
			   const struct nvt_config *n,
			   void (*note)(void *arg, uint32_t grpid, const char *state, int told),
			   void *arg)
{
	for (uint32_t g = 1; g <= NVT_ANA_GRPMAX; g++) {
		uint8_t state = nvt_cfg_ana_state(n, g);
		int told;

		if (state == nvt_cfg_ana_state(o, g))
			continue;
		told = nvt_target_set_ana_state(tgt, g, state);
		if (told >= 0)
			note(arg, g, nvt_ana_state_name(state), told);
	}
}
