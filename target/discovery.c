/* SPDX-License-Identifier: BSD-3-Clause */
/* The discovery subsystem: its admin commands and log page 70h listing what each host may reach. */
#define NVT_LOG_PREFIX "discovery: "
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "nvt/log.h"
#include "nvt/util.h"
#include "nvt/target.h"

static void nvt_disc_entry(struct nvmf_disc_log_entry *e, const struct nvt_port *port,
			   const struct nvt_subsys *subsys)
{
	memset(e, 0, sizeof(*e));
	e->trtype = port->ops ? port->ops->trtype : NVMF_TRTYPE_RDMA;
	e->adrfam = port->cfg.family == AF_INET6 ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
	e->subtype = subsys->type == NVT_SUBSYS_DISCOVERY ? NVME_NQN_CURR : NVME_NQN_NVME;
	/* Hosts may turn off SQ flow control (libnvme then sets CATTR bit 2). */
	e->treq = NVMF_TREQ_NOT_SPECIFIED | NVMF_TREQ_DISABLE_SQFLOW;
	e->portid = htole16(port->portid);
	e->cntlid = htole16(0xffff);
	e->asqsz = htole16(NVT_AQ_DEPTH);
	snprintf(e->trsvcid, sizeof(e->trsvcid), "%u", port->cfg.port);
	nvt_strscpy(e->subnqn, subsys->nqn, sizeof(e->subnqn));
	nvt_strscpy(e->traddr, port->cfg.address, sizeof(e->traddr));
	e->tsas.rdma.qptype = NVMF_RDMA_QPTYPE_CONNECTED;
	e->tsas.rdma.prtype = NVMF_RDMA_PRTYPE_NOT_SPECIFIED;
	e->tsas.rdma.cms = NVMF_RDMA_CMS_RDMA_CM;
}

/* Visit every (port, subsystem) record @hostnqn may see; returns the count. tgt->lock held. */
static uint64_t nvt_disc_walk(struct nvt_target *tgt, const char *hostnqn,
			      struct nvt_log_writer *w)
{
	struct nvmf_disc_log_entry e;
	uint64_t n = 0;

	for (unsigned int p = 0; p < tgt->nr_ports; p++) {
		if (!tgt->ports[p].used)	/* removed by a reload: its slot stays */
			continue;
		for (unsigned int s = 0; s < tgt->nr_subsys; s++) {
			if (!nvt_subsys_host_allowed_locked(tgt->subsys[s], hostnqn))
				continue;
			n++;
			if (w) {
				nvt_disc_entry(&e, &tgt->ports[p], tgt->subsys[s]);
				nvt_log_write(w, &e, sizeof(e));
			}
		}
	}
	return n;
}

static void nvt_execute_get_disc_log(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	struct nvt_target *tgt = ctrl->subsys->tgt;
	struct nvmf_discovery_log hdr;
	struct nvt_log_writer w;
	uint8_t pad[1024 - sizeof(hdr)];

	/*
	 * A reload adds and removes subsystems and allow-list entries under
	 * the target lock, and bumps genctr after: one hold gives a count, the
	 * records and a genctr that agree (a change after it raises the AEN).
	 */
	memset(&hdr, 0, sizeof(hdr));
	memset(pad, 0, sizeof(pad));
	nvt_log_writer_init(&w, req);
	pthread_mutex_lock(&tgt->lock);
	hdr.genctr = htole64(atomic_load(&tgt->disc_genctr));
	hdr.numrec = htole64(nvt_disc_walk(tgt, ctrl->hostnqn, NULL));
	hdr.recfmt = 0;
	nvt_log_write(&w, &hdr, sizeof(hdr));
	nvt_log_write(&w, pad, sizeof(pad));
	nvt_disc_walk(tgt, ctrl->hostnqn, &w);
	pthread_mutex_unlock(&tgt->lock);
	if (!nvt_get_log_rae(req))
		nvt_ctrl_clear_aen(ctrl, NVT_AEN_DISC_CHANGED);
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

static void nvt_ctrl_disc_changed(struct nvt_ctrl *ctrl, void *arg)
{
	nvt_ctrl_raise_aen(ctrl, NVT_AEN_DISC_CHANGED);
}

void nvt_discovery_changed(struct nvt_target *tgt)
{
	atomic_fetch_add(&tgt->disc_genctr, 1);
	if (tgt->discovery)
		nvt_subsys_for_each_ctrl(tgt->discovery, nvt_ctrl_disc_changed, NULL);
}

uint16_t nvt_parse_discovery_cmd(struct nvt_req *req)
{
	uint32_t cdw10 = le32toh(req->cmd->common.cdw10);
	uint16_t status;

	switch (req->cmd->common.opcode) {
	case nvme_admin_get_log_page:
		if ((cdw10 & 0xff) != NVME_LOG_LID_DISCOVER) {
			req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
			return NVT_ST_INVALID_LOG_PAGE;
		}
		status = nvt_parse_get_log_len(req);
		if (status)
			return status;
		req->execute = nvt_execute_get_disc_log;
		return NVT_ST_OK;
	case nvme_admin_identify:
		req->data_len = NVME_IDENTIFY_DATA_SIZE;
		if ((cdw10 & 0xff) != NVME_IDENTIFY_CNS_CTRL) {
			req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
			return NVT_ST_INVALID_FIELD;
		}
		req->execute = nvt_execute_identify_ctrl;
		return NVT_ST_OK;
	case nvme_admin_get_features:
		return nvt_parse_get_features(req);
	case nvme_admin_set_features:
		return nvt_parse_set_features(req);
	case nvme_admin_keep_alive:
		req->execute = nvt_execute_keep_alive;
		return NVT_ST_OK;
	case nvme_admin_async_event:
		req->execute = nvt_execute_async_event;
		return NVT_ST_OK;
	default:
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_INVALID_OPCODE;
	}
}
