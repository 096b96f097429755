/* SPDX-License-Identifier: BSD-3-Clause */
/* Admin commands of an I/O controller: Identify, Get Log Page, Set/Get Features, Keep Alive, AER, Abort. */
#define NVT_LOG_PREFIX "admin: "
#include <string.h>

#include "nvt/log.h"
#include "nvt/util.h"
#include "nvt/target.h"

/* Copy a string into a space-padded, not NUL-terminated identify field. */
static void nvt_copy_padded(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len);

	memcpy(dst, src, n);
	memset(dst + n, ' ', len - n);
}

static uint8_t nvt_mdts(uint32_t max_data_len)
{
	uint8_t mdts = 0;

	/* MDTS is a power of two in units of CAP.MPSMIN (4 KiB). */
	while ((4096u << (mdts + 1)) <= max_data_len && mdts < 255)
		mdts++;
	return max_data_len ? mdts : 0;
}

static uint16_t nvt_max_nsid(const struct nvt_subsys *subsys)
{
	return NVT_MAX_NSID;
}

/* NVMe 2.0 §8.1.1: ANA reporting; each listener is one ANA group, states per listener. */
static void nvt_identify_ctrl_ana(struct nvme_id_ctrl *id)
{
	id->cmic |= NVME_CTRL_CMIC_MULTI_ANA_REPORTING;
	id->anatt = 10;			/* seconds a Change state may last: hosts time out after */
	id->anacap = NVME_CTRL_ANACAP_OPT | NVME_CTRL_ANACAP_NON_OPT |
		     NVME_CTRL_ANACAP_INACCESSIBLE | NVME_CTRL_ANACAP_PERSISTENT_LOSS |
		     NVME_CTRL_ANACAP_CHANGE;
	id->anagrpmax = htole32(NVT_ANA_GRPMAX);
	id->nanagrpid = htole32(NVT_ANA_GRPMAX);
}

void nvt_execute_identify_ctrl(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	struct nvt_subsys *subsys = ctrl->subsys;
	const struct nvt_transport_ops *ops = ctrl->ops;
	bool discovery = subsys->type == NVT_SUBSYS_DISCOVERY;
	struct nvme_id_ctrl id;
	uint32_t sgls;

	memset(&id, 0, sizeof(id));
	nvt_copy_padded(id.sn, sizeof(id.sn), subsys->serial);
	nvt_copy_padded(id.mn, sizeof(id.mn), subsys->model);
	nvt_copy_padded(id.fr, sizeof(id.fr), NVT_FW_REV);
	id.rab = 6;
	/* Any number of hosts may hold controllers on one subsystem. */
	id.cmic = discovery ? 0 : NVME_CTRL_CMIC_MULTI_CTRL | NVME_CTRL_CMIC_MULTI_PORT;
	if (!discovery)
		nvt_identify_ctrl_ana(&id);
	/* The listener the admin queue came in on decides (I/O queues of one controller share it). */
	id.mdts = nvt_mdts(nvt_sq_max_data_len(req->sq));
	id.cntlid = htole16(ctrl->cntlid);
	id.ver = htole32(NVT_VS);
	id.oaes = htole32(discovery ? NVME_CTRL_OAES_DL : NVME_CTRL_OAES_NA | NVME_CTRL_OAES_ANA);
	/* ELBAS: hosts read each namespace's guard format from Identify CNS 05h. */
	id.ctratt = htole32(NVME_CTRL_CTRATT_128_ID | (discovery ? 0 : NVME_CTRL_CTRATT_ELBAS));
	id.cntrltype = discovery ? NVME_CTRL_CNTRLTYPE_DISCOVERY : NVME_CTRL_CNTRLTYPE_IO;
	id.acl = 3;
	id.aerl = NVT_AERL - 1;
	id.frmw = 0x3;			/* slot 1 read-only, one slot */
	id.lpa = NVME_CTRL_LPA_CMD_EFFECTS | NVME_CTRL_LPA_EXTENDED;
	id.elpe = NVT_ERRLOG_ENTRIES - 1;
	id.kas = htole16(NVT_KAS_100MS);
	id.sqes = 0x66;
	id.cqes = 0x44;
	id.maxcmd = htole16(ops->max_queue_size);
	id.nn = htole32(discovery ? 0 : nvt_max_nsid(subsys));
	id.mnan = id.nn;
	if (!discovery) {
		/* Volatile write cache, and Flush to NSID FFFFFFFFh supported. */
		id.vwc = NVME_CTRL_VWC_PRESENT | NVME_CTRL_VWC_FLUSH;
		id.oncs = htole16(NVME_CTRL_ONCS_COMPARE | NVME_CTRL_ONCS_DSM |
				  NVME_CTRL_ONCS_WRITE_ZEROES | NVME_CTRL_ONCS_VERIFY |
				  NVME_CTRL_ONCS_COPY | NVME_CTRL_ONCS_RESERVATIONS);
		id.ocfs = htole16(0x3);		/* copy descriptor formats 0 and 1 */
		id.fuses = htole16(1);		/* Compare and Write */
		id.acwu = htole16(NVT_ACWU - 1);
	}
	sgls = 1;			/* SGLs supported, no alignment rule */
	if (ops->flags & NVT_TR_KEYED_SGL)
		sgls |= NVME_CTRL_SGLS_KEYED;
	if (ops->flags & NVT_TR_INCAPSULE)
		sgls |= NVME_CTRL_SGLS_OFFSET;
	id.sgls = htole32(sgls);
	nvt_strscpy(id.subnqn, subsys->nqn, sizeof(id.subnqn));
	/* NVMe-oF 1.1 §4.1: capsule sizes in 16-byte units, SQE included. */
	id.ioccsz = htole32((uint32_t)(sizeof(struct nvt_sqe) + ops->icdata_len) / 16);
	id.iorcsz = htole32(sizeof(struct nvt_cqe) / 16);
	id.icdoff = 0;
	id.msdbd = 1;
	id.psd[0].mp = htole16(0x9c4);	/* 25 W: a number hosts display, nothing more */

	nvt_req_complete(req, nvt_req_copy_to(req, 0, &id, sizeof(id)));
}

/*
 * RESCAP: the six reservation types resv.c implements, and IEKEY as NVMe
 * 1.3 defines it; PTPL where @ns keeps its state in a file.
 */
static uint8_t nvt_identify_rescap(const struct nvt_ns *ns)
{
	return NVME_NS_RESCAP_WE | NVME_NS_RESCAP_EA | NVME_NS_RESCAP_WERO |
	       NVME_NS_RESCAP_EARO | NVME_NS_RESCAP_WEAR | NVME_NS_RESCAP_EAAR |
	       NVME_NS_RESCAP_IEK_13 | (ns->resv.ptpl_path ? NVME_NS_RESCAP_PTPL : 0);
}

static void nvt_fill_id_ns(const struct nvt_ns *ns, struct nvme_id_ns *id)
{
	id->nsze = htole64(ns->nblocks);
	id->ncap = htole64(ns->nblocks);
	id->nuse = htole64(ns->nblocks);
	id->nlbaf = 0;
	id->flbas = 0;
	id->lbaf[0].ds = ns->lba_shift;
	id->lbaf[0].ms = htole16(ns->md_size);
	if (ns->md_size) {
		/* Fabrics carry metadata only inside the data: extended LBAs (HOST-CONTRACT §3.1). */
		id->flbas |= NVME_NS_FLBAS_META_EXT;
		id->mc = NVME_NS_MC_EXTENDED;
	}
	if (ns->pi.type) {
		id->dpc = (uint8_t)(1u << (ns->pi.type - 1)) |
			  (ns->pi.pi_first ? NVME_NS_DPC_PI_FIRST : NVME_NS_DPC_PI_LAST);
		id->dps = ns->pi.type | (ns->pi.pi_first ? NVME_NS_DPS_PI_FIRST : 0);
	}
	/* Shared: other controllers of the subsystem see the same namespace. */
	id->nmic = NVME_NS_NMIC_SHARED;
	id->rescap = nvt_identify_rescap(ns);
	/*
	 * DLFEAT: Write Zeroes may deallocate (bit 3); deallocated blocks read as
	 * zeroes (001b), except that with PI their tuple is the escape one, which
	 * DLFEAT cannot express: then "not reported" (000b).
	 */
	id->dlfeat = (1u << 3) | (ns->pi.type ? 0 : 1);
	id->mssrl = htole16(ns->cap_mssrl && ns->cap_mssrl < NVT_COPY_MSSRL ? ns->cap_mssrl
									  : NVT_COPY_MSSRL);
	id->mcl = htole32(ns->cap_mcl && ns->cap_mcl < NVT_COPY_MCL ? ns->cap_mcl : NVT_COPY_MCL);
	id->msrc = (uint8_t)((ns->cap_msrc_nr && ns->cap_msrc_nr < NVT_COPY_MAX_RANGES
				      ? ns->cap_msrc_nr : NVT_COPY_MAX_RANGES) - 1);
	memcpy(id->nguid, ns->nguid, sizeof(id->nguid));
}

static void nvt_execute_identify_ns(struct nvt_req *req)
{
	struct nvme_id_ns id;

	memset(&id, 0, sizeof(id));
	/* NVMe 2.0 §5.17.2.1: an inactive, valid NSID returns zeroes. */
	if (req->ns) {
		nvt_fill_id_ns(req->ns, &id);
		/* The group of the listener this controller came in on: ANA state is per path. */
		id.anagrpid = htole32(nvt_port_ana_group(req->sq->ctrl->port));
	}
	nvt_req_complete(req, nvt_req_copy_to(req, 0, &id, sizeof(id)));
}

static void nvt_execute_identify_active_ns(struct nvt_req *req)
{
	struct nvt_subsys *subsys = req->sq->ctrl->subsys;
	uint32_t start = le32toh(req->cmd->common.nsid);
	uint32_t list[1024];
	unsigned int n = 0;

	memset(list, 0, sizeof(list));
	for (uint32_t nsid = start + 1; nsid <= NVT_MAX_NSID && n < 1024; nsid++)
		if (subsys->ns[nsid])
			list[n++] = htole32(nsid);
	nvt_req_complete(req, nvt_req_copy_to(req, 0, list, sizeof(list)));
}

static void nvt_execute_identify_desclist(struct nvt_req *req)
{
	const struct nvt_ns *ns = req->ns;
	uint8_t buf[NVME_IDENTIFY_DATA_SIZE];
	size_t off = 0;

	memset(buf, 0, sizeof(buf));
	buf[off] = NVME_NIDT_NGUID;
	buf[off + 1] = NVME_NIDT_NGUID_LEN;
	memcpy(&buf[off + 4], ns->nguid, 16);
	off += 4 + 16;
	buf[off] = NVME_NIDT_UUID;
	buf[off + 1] = NVME_NIDT_UUID_LEN;
	memcpy(&buf[off + 4], ns->uuid, 16);
	off += 4 + 16;
	buf[off] = NVME_NIDT_CSI;
	buf[off + 1] = NVME_NIDT_CSI_LEN;
	buf[off + 4] = NVME_CSI_NVM;
	nvt_req_complete(req, nvt_req_copy_to(req, 0, buf, sizeof(buf)));
}

static void nvt_execute_identify_zero(struct nvt_req *req)
{
	/* CNS 06h for the NVM command set: no limits of its own. */
	nvt_req_complete(req, nvt_req_zero(req, 0, NVME_IDENTIFY_DATA_SIZE));
}

/* CNS 05h, NVM command set: the extended LBA format says which guard the PI carries. */
static void nvt_execute_identify_nvm_ns(struct nvt_req *req)
{
	struct nvme_nvm_id_ns id;

	memset(&id, 0, sizeof(id));
	/* PIF (bits 8:7): 0 = 16-bit guard, 2 = 64-bit guard; storage tag size 0. */
	if (req->ns->pi.type && req->ns->pi.guard == NVT_PI_GUARD_CRC64)
		id.elbaf[0] = htole32(2u << 7);
	nvt_req_complete(req, nvt_req_copy_to(req, 0, &id, sizeof(id)));
}

static void nvt_execute_identify_cs_indep(struct nvt_req *req)
{
	struct nvme_id_independent_id_ns id;

	memset(&id, 0, sizeof(id));
	if (req->ns) {
		id.nmic = NVME_NS_NMIC_SHARED;
		id.rescap = nvt_identify_rescap(req->ns);
		id.anagrpid = htole32(nvt_port_ana_group(req->sq->ctrl->port));
		id.nstat = 1;	/* NRDY: hosts ignore a namespace that is not ready */
	}
	nvt_req_complete(req, nvt_req_copy_to(req, 0, &id, sizeof(id)));
}

/* Look up the namespace of an Identify; inactive-but-valid is allowed when @allow_inactive. */
static uint16_t nvt_identify_find_ns(struct nvt_req *req, bool allow_inactive)
{
	struct nvt_subsys *subsys = req->sq->ctrl->subsys;
	uint32_t nsid = le32toh(req->cmd->common.nsid);

	if (nsid == 0 || nsid > nvt_max_nsid(subsys)) {
		req->error_loc = offsetof(struct nvt_sqe_common, nsid);
		return NVT_ST_INVALID_NS;
	}
	req->ns = subsys->ns[nsid];
	if (!req->ns && !allow_inactive) {
		req->error_loc = offsetof(struct nvt_sqe_common, nsid);
		return NVT_ST_INVALID_NS;
	}
	return NVT_ST_OK;
}

static uint16_t nvt_parse_identify(struct nvt_req *req)
{
	uint32_t cdw10 = le32toh(req->cmd->common.cdw10);
	uint8_t cns = cdw10 & 0xff;
	uint8_t csi = (le32toh(req->cmd->common.cdw11) >> 24) & 0xff;
	uint16_t status = NVT_ST_OK;

	req->data_len = NVME_IDENTIFY_DATA_SIZE;
	switch (cns) {
	case NVME_IDENTIFY_CNS_NS:
		status = nvt_identify_find_ns(req, true);
		req->execute = nvt_execute_identify_ns;
		break;
	case NVME_IDENTIFY_CNS_CTRL:
		req->execute = nvt_execute_identify_ctrl;
		break;
	case NVME_IDENTIFY_CNS_NS_ACTIVE_LIST:
		if (le32toh(req->cmd->common.nsid) >= 0xfffffffe) {
			req->error_loc = offsetof(struct nvt_sqe_common, nsid);
			return NVT_ST_INVALID_NS;
		}
		req->execute = nvt_execute_identify_active_ns;
		break;
	case NVME_IDENTIFY_CNS_NS_DESC_LIST:
		status = nvt_identify_find_ns(req, false);
		req->execute = nvt_execute_identify_desclist;
		break;
	case NVME_IDENTIFY_CNS_CSI_NS:
		if (csi != NVME_CSI_NVM)
			goto bad_csi;
		status = nvt_identify_find_ns(req, false);
		req->execute = nvt_execute_identify_nvm_ns;
		break;
	case NVME_IDENTIFY_CNS_CSI_CTRL:
		if (csi != NVME_CSI_NVM)
			goto bad_csi;
		req->execute = nvt_execute_identify_zero;
		break;
	case NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS:
		status = nvt_identify_find_ns(req, true);
		req->execute = nvt_execute_identify_cs_indep;
		break;
	default:
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		return NVT_ST_INVALID_FIELD;
	}
	return status;

bad_csi:
	req->error_loc = offsetof(struct nvt_sqe_common, cdw11);
	return NVT_ST_INVALID_FIELD;
}

/* ---- Get Log Page ---- */

uint16_t nvt_parse_get_log_len(struct nvt_req *req)
{
	uint64_t numdl = le32toh(req->cmd->common.cdw10) >> 16;
	uint64_t numdu = le32toh(req->cmd->common.cdw11) & 0xffff;
	/* NUMD is 0-based and 32 bits wide: the byte count needs 35 bits. */
	uint64_t len = ((numdu << 16 | numdl) + 1) * 4;
	uint64_t offset = nvt_get_log_offset(req);

	/* NVMe 2.0 §5.16: more than MDTS, or an offset that wraps, is an invalid field. */
	if (len > nvt_sq_max_data_len(req->sq)) {
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		return NVT_ST_INVALID_FIELD;
	}
	if ((offset & 3) || offset > UINT64_MAX - len) {
		req->error_loc = offsetof(struct nvt_sqe_common, cdw12);
		return NVT_ST_INVALID_FIELD;
	}
	req->data_len = (uint32_t)len;
	return NVT_ST_OK;
}

uint64_t nvt_get_log_offset(const struct nvt_req *req)
{
	return (uint64_t)le32toh(req->cmd->common.cdw13) << 32 |
	       le32toh(req->cmd->common.cdw12);
}

bool nvt_get_log_rae(const struct nvt_req *req)
{
	return le32toh(req->cmd->common.cdw10) & (1u << 15);
}

static void nvt_execute_get_log_error(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	uint64_t count = atomic_load(&ctrl->err_count);
	struct nvt_log_writer w;

	nvt_log_writer_init(&w, req);
	/* Newest first; slots never written read back as zeroes. */
	for (unsigned int i = 0; i < NVT_ERRLOG_ENTRIES; i++) {
		struct nvme_error_log_page e = { 0 };

		if (i < count)
			nvt_errlog_copy(ctrl, (unsigned int)((count - 1 - i) % NVT_ERRLOG_ENTRIES), &e);
		nvt_log_write(&w, &e, sizeof(e));
	}
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

/* Data units are thousands of 512-byte units, rounded up (NVMe 2.0 §5.16.1.3). */
static void nvt_put_le128(uint8_t dst[16], uint64_t v)
{
	memset(dst, 0, 16);
	for (int i = 0; i < 8; i++)
		dst[i] = (uint8_t)(v >> (8 * i));
}

static void nvt_execute_get_log_smart(struct nvt_req *req)
{
	struct nvt_subsys *subsys = req->sq->ctrl->subsys;
	struct nvme_smart_log log;
	struct nvt_io_stats_snap sum, one;
	struct nvt_log_writer w;

	/*
	 * LPA bit 0 is clear (no per-namespace SMART), so any NSID gets the
	 * whole subsystem, as nvmet sums its namespaces: the per-namespace
	 * counters of every poll group, NVMe and SCSI (vhost) commands alike,
	 * so the numbers outlive queues and controllers. Each counter has one
	 * writer thread and is read whole; the sum is a snapshot, which is all
	 * SMART promises, and exact once I/O is quiet.
	 */
	memset(&sum, 0, sizeof(sum));
	for (uint32_t nsid = 1; nsid <= NVT_MAX_NSID; nsid++) {
		struct nvt_ns *ns = subsys->ns[nsid];

		if (!ns)
			continue;
		nvt_stats_ns_snap(ns, &one);
		sum.cmds[NVT_STAT_READ] += one.cmds[NVT_STAT_READ];
		sum.cmds[NVT_STAT_WRITE] += one.cmds[NVT_STAT_WRITE];
		sum.bytes_read += one.bytes_read;
		sum.bytes_written += one.bytes_written;
		for (unsigned int e = 0; e < NVT_STAT_ERRS; e++)
			sum.errors[e] += one.errors[e];
	}
	memset(&log, 0, sizeof(log));
	log.temperature[0] = (uint8_t)(298 & 0xff);	/* 25 C in Kelvin */
	log.temperature[1] = (uint8_t)(298 >> 8);
	log.avail_spare = 100;
	log.spare_thresh = 10;
	nvt_put_le128(log.data_units_read, (sum.bytes_read / 512 + 999) / 1000);
	nvt_put_le128(log.data_units_written, (sum.bytes_written / 512 + 999) / 1000);
	nvt_put_le128(log.host_reads, sum.cmds[NVT_STAT_READ]);
	nvt_put_le128(log.host_writes, sum.cmds[NVT_STAT_WRITE]);
	nvt_put_le128(log.media_errors, nvt_stats_media_errors(&sum));
	nvt_log_writer_init(&w, req);
	nvt_log_write(&w, &log, sizeof(log));
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

static void nvt_execute_get_log_fw_slot(struct nvt_req *req)
{
	struct nvme_firmware_slot log;
	struct nvt_log_writer w;

	memset(&log, 0, sizeof(log));
	log.afi = 1;
	nvt_copy_padded(log.frs[0], sizeof(log.frs[0]), NVT_FW_REV);
	nvt_log_writer_init(&w, req);
	nvt_log_write(&w, &log, sizeof(log));
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

static void nvt_execute_get_log_changed_ns(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	uint32_t list[NVT_MAX_CHANGED_NS];
	struct nvt_log_writer w;

	memset(list, 0, sizeof(list));
	pthread_mutex_lock(&ctrl->lock);
	if (ctrl->nr_changed_ns > NVT_MAX_CHANGED_NS)
		list[0] = htole32(0xffffffff);	/* overflow: rescan everything */
	else
		for (unsigned int i = 0; i < ctrl->nr_changed_ns; i++)
			list[i] = htole32(ctrl->changed_ns[i]);
	ctrl->nr_changed_ns = 0;
	pthread_mutex_unlock(&ctrl->lock);

	nvt_log_writer_init(&w, req);
	nvt_log_write(&w, list, sizeof(list));
	if (!nvt_get_log_rae(req))
		nvt_ctrl_clear_aen(ctrl, NVT_AEN_NS_CHANGED);
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

/* Admin and I/O opcodes this controller supports, for log 05h. */
static const uint8_t nvt_admin_opcodes[] = {
	nvme_admin_get_log_page, nvme_admin_identify, nvme_admin_abort_cmd,
	nvme_admin_set_features, nvme_admin_get_features, nvme_admin_async_event,
	nvme_admin_keep_alive, NVT_OPC_FABRICS,
};
static const uint8_t nvt_io_opcodes[] = {
	nvme_cmd_flush, nvme_cmd_write, nvme_cmd_read, nvme_cmd_compare,
	nvme_cmd_write_zeroes, nvme_cmd_dsm, nvme_cmd_verify, nvme_cmd_copy,
	nvme_cmd_resv_register, nvme_cmd_resv_report, nvme_cmd_resv_acquire, nvme_cmd_resv_release,
};

static void nvt_execute_get_log_effects(struct nvt_req *req)
{
	struct nvme_cmd_effects_log log;
	struct nvt_log_writer w;

	memset(&log, 0, sizeof(log));
	for (size_t i = 0; i < sizeof(nvt_admin_opcodes); i++)
		log.acs[nvt_admin_opcodes[i]] = htole32(NVME_CMD_EFFECTS_CSUPP);
	for (size_t i = 0; i < sizeof(nvt_io_opcodes); i++)
		log.iocs[nvt_io_opcodes[i]] = htole32(NVME_CMD_EFFECTS_CSUPP);
	/* These change logical block content. */
	log.iocs[nvme_cmd_write] |= htole32(NVME_CMD_EFFECTS_LBCC);
	log.iocs[nvme_cmd_write_zeroes] |= htole32(NVME_CMD_EFFECTS_LBCC);
	log.iocs[nvme_cmd_dsm] |= htole32(NVME_CMD_EFFECTS_LBCC);
	log.iocs[nvme_cmd_copy] |= htole32(NVME_CMD_EFFECTS_LBCC);
	nvt_log_writer_init(&w, req);
	nvt_log_write(&w, &log, sizeof(log));
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

/*
 * Reservation Notification (80h): the oldest entry, removed by the read
 * (RAE clear also clears the AEN); NALP says how many more wait. Empty:
 * all zero (Log Page Count 0).
 */
static void nvt_execute_get_log_resv(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	struct nvme_resv_notification_log e;
	struct nvt_log_writer w;

	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&ctrl->lock);
	if (ctrl->resv_log_nr) {
		e = ctrl->resv_log[ctrl->resv_log_head];
		ctrl->resv_log_head = (ctrl->resv_log_head + 1) % NVT_RESV_LOG_ENTRIES;
		ctrl->resv_log_nr--;
		e.nalp = (uint8_t)(ctrl->resv_log_nr > 255 ? 255 : ctrl->resv_log_nr);
	}
	pthread_mutex_unlock(&ctrl->lock);
	if (!nvt_get_log_rae(req))
		nvt_ctrl_clear_aen(ctrl, NVT_AEN_RESV);
	nvt_log_writer_init(&w, req);
	nvt_log_write(&w, &e, sizeof(e));
	nvt_req_complete(req, nvt_log_writer_finish(&w));
}

static uint16_t nvt_parse_get_log_page(struct nvt_req *req)
{
	uint8_t lid = le32toh(req->cmd->common.cdw10) & 0xff;

	uint16_t status = nvt_parse_get_log_len(req);

	if (status)
		return status;
	switch (lid) {
	case NVME_LOG_LID_ERROR:
		req->execute = nvt_execute_get_log_error;
		return NVT_ST_OK;
	case NVME_LOG_LID_SMART:
		req->execute = nvt_execute_get_log_smart;
		return NVT_ST_OK;
	case NVME_LOG_LID_FW_SLOT:
		req->execute = nvt_execute_get_log_fw_slot;
		return NVT_ST_OK;
	case NVME_LOG_LID_CHANGED_NS:
		req->execute = nvt_execute_get_log_changed_ns;
		return NVT_ST_OK;
	case NVME_LOG_LID_CMD_EFFECTS:
		req->execute = nvt_execute_get_log_effects;
		return NVT_ST_OK;
	case NVME_LOG_LID_RESERVATION:
		req->execute = nvt_execute_get_log_resv;
		return NVT_ST_OK;
	case NVME_LOG_LID_ANA:
		req->execute = nvt_execute_get_log_ana;
		return NVT_ST_OK;
	default:
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		return NVT_ST_INVALID_LOG_PAGE;
	}
}

/* ---- Features ---- */

static bool nvt_feature_is_resv(uint8_t fid)
{
	return fid == NVME_FEAT_FID_RESV_MASK || fid == NVME_FEAT_FID_RESV_PERSIST;
}

#define NVT_RESV_MASK_BITS	0xeu	/* REGPRE, RESREL, RESPRE (bits 1..3) */

/*
 * Get/Set Features 82h (Reservation Notification Mask, per namespace and
 * controller; Set to NSID FFFFFFFFh: every namespace) and 83h (Reservation
 * Persistence, per namespace: PTPL may be set only where the namespace can
 * persist reservations, those RESCAP.PTPL says).
 */
static void nvt_execute_resv_feature(struct nvt_req *req, bool set)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	struct nvt_subsys *subsys = ctrl->subsys;
	uint32_t cdw10 = le32toh(req->cmd->common.cdw10);
	uint32_t cdw11 = le32toh(req->cmd->common.cdw11);
	uint32_t nsid = le32toh(req->cmd->common.nsid);
	uint8_t fid = cdw10 & 0xff, sel = (cdw10 >> 8) & 0x7;
	uint16_t status = NVT_ST_OK;
	struct nvt_ns *ns;

	if (subsys->type == NVT_SUBSYS_DISCOVERY || (!set && sel > NVME_GET_FEATURES_SEL_SUPPORTED)) {
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		status = NVT_ST_INVALID_FIELD;
		goto out;
	}
	if (!set && sel == NVME_GET_FEATURES_SEL_SUPPORTED) {
		/*
		 * Per namespace (bit 1), changeable (bit 2): the mask always, PTPL
		 * where the namespace can persist (Set Features 83h takes it there).
		 */
		ns = nsid && nsid <= NVT_MAX_NSID ? subsys->ns[nsid] : NULL;
		req->cqe->result.u32 = htole32(fid == NVME_FEAT_FID_RESV_MASK ||
					       (ns && ns->resv.ptpl_path) ? 0x6 : 0x2);
		goto out;
	}
	if (set && fid == NVME_FEAT_FID_RESV_MASK && nsid == 0xffffffff) {
		if (cdw11 & ~NVT_RESV_MASK_BITS)
			goto bad_cdw11;
		pthread_mutex_lock(&ctrl->lock);
		memset(ctrl->resv_mask, (int)cdw11, sizeof(ctrl->resv_mask));
		pthread_mutex_unlock(&ctrl->lock);
		goto out;
	}
	ns = nsid && nsid <= NVT_MAX_NSID ? subsys->ns[nsid] : NULL;
	if (!ns) {
		req->error_loc = offsetof(struct nvt_sqe_common, nsid);
		status = NVT_ST_INVALID_NS;
		goto out;
	}
	if (fid == NVME_FEAT_FID_RESV_MASK) {
		if (set && (cdw11 & ~NVT_RESV_MASK_BITS))
			goto bad_cdw11;
		pthread_mutex_lock(&ctrl->lock);
		if (set)
			ctrl->resv_mask[nsid] = (uint8_t)cdw11;
		req->cqe->result.u32 = htole32(ctrl->resv_mask[nsid]);
		pthread_mutex_unlock(&ctrl->lock);
		goto out;
	}
	if (set) {
		/* PTPL (bit 0): only where the namespace keeps its state in a file. */
		if (cdw11 & ~1u)
			goto bad_cdw11;
		status = nvt_resv_set_ptpl(&ns->resv, cdw11 & 1);
		if (status == NVT_ST_INVALID_FIELD)
			goto bad_cdw11;
		goto out;
	}
	req->cqe->result.u32 = htole32(nvt_resv_ptpl(&ns->resv));
out:
	nvt_req_complete(req, status);
	return;
bad_cdw11:
	req->error_loc = offsetof(struct nvt_sqe_common, cdw11);
	nvt_req_complete(req, NVT_ST_INVALID_FIELD);
}

/* Feature values a controller keeps; they live in the controller's CC-era state. */
static uint32_t nvt_feat_nr_queues(const struct nvt_ctrl *ctrl)
{
	uint32_t n = ctrl->max_qid ? ctrl->max_qid - 1u : 0;

	return n | n << 16;
}

static uint16_t nvt_feature_get(struct nvt_req *req, uint8_t fid, uint32_t *val)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	bool discovery = ctrl->subsys->type == NVT_SUBSYS_DISCOVERY;

	switch (fid) {
	case NVME_FEAT_FID_ASYNC_EVENT:
		*val = ctrl->aen_enabled;
		return NVT_ST_OK;
	case NVME_FEAT_FID_KATO:
		*val = ctrl->kato_ms;
		return NVT_ST_OK;
	case NVME_FEAT_FID_HOST_ID:
		/* 128-bit host id travels as data (EXHID); handled by the caller. */
		return NVT_ST_OK;
	default:
		break;
	}
	if (discovery)
		goto bad;
	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
	case NVME_FEAT_FID_ERR_RECOVERY:
	case NVME_FEAT_FID_WRITE_ATOMIC:
		*val = 0;
		return NVT_ST_OK;
	case NVME_FEAT_FID_TEMP_THRESH:
		*val = 0x0157;		/* 343 K over-temperature threshold */
		return NVT_ST_OK;
	case NVME_FEAT_FID_VOLATILE_WC:
		*val = 1;		/* enabled, always */
		return NVT_ST_OK;
	case NVME_FEAT_FID_NUM_QUEUES:
		*val = nvt_feat_nr_queues(ctrl);
		return NVT_ST_OK;
	case NVME_FEAT_FID_HOST_BEHAVIOR:
		/* Its 512 bytes travel as data; handled by the caller. */
		return NVT_ST_OK;
	default:
		break;
	}
bad:
	req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
	return NVT_ST_INVALID_FIELD;
}

void nvt_execute_get_features(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	uint32_t cdw10 = le32toh(req->cmd->common.cdw10);
	uint8_t fid = cdw10 & 0xff, sel = (cdw10 >> 8) & 0x7;
	uint32_t val = 0;
	uint16_t status;

	if (nvt_feature_is_resv(fid)) {
		nvt_execute_resv_feature(req, false);
		return;
	}
	status = nvt_feature_get(req, fid, &val);
	if (status)
		goto out;
	if (sel == NVME_GET_FEATURES_SEL_SUPPORTED) {
		/* Changeable (bit 2), never saveable, never per namespace. */
		val = fid == NVME_FEAT_FID_ASYNC_EVENT || fid == NVME_FEAT_FID_KATO ||
		      fid == NVME_FEAT_FID_NUM_QUEUES ? 1u << 2 : 0;
	} else if (sel > NVME_GET_FEATURES_SEL_SUPPORTED) {
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		status = NVT_ST_INVALID_FIELD;
		goto out;
	} else if (fid == NVME_FEAT_FID_HOST_ID) {
		/* EXHID must be 1: we only hold 128-bit host ids. */
		if (!(le32toh(req->cmd->common.cdw11) & 1)) {
			req->error_loc = offsetof(struct nvt_sqe_common, cdw11);
			status = NVT_ST_INVALID_FIELD;
			goto out;
		}
		status = nvt_req_copy_to(req, 0, ctrl->hostid, sizeof(ctrl->hostid));
		goto out;
	} else if (fid == NVME_FEAT_FID_HOST_BEHAVIOR) {
		status = nvt_req_copy_to(req, 0, ctrl->host_behavior, sizeof(ctrl->host_behavior));
		goto out;
	}
	req->cqe->result.u32 = htole32(val);
out:
	nvt_req_complete(req, status);
}

void nvt_execute_set_features(struct nvt_req *req)
{
	struct nvt_ctrl *ctrl = req->sq->ctrl;
	uint32_t cdw10 = le32toh(req->cmd->common.cdw10);
	uint32_t cdw11 = le32toh(req->cmd->common.cdw11);
	uint8_t fid = cdw10 & 0xff;
	bool discovery = ctrl->subsys->type == NVT_SUBSYS_DISCOVERY;
	uint32_t supported_aen = discovery ? NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE :
					     NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES |
					     NVME_FEATURE_AENCFG_NOTICE_ANA_CHANGE;
	uint16_t status = NVT_ST_OK;

	if (cdw10 & (1u << 31)) {	/* SV: nothing persists across restarts */
		req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
		nvt_req_complete(req, NVT_ST_FEAT_NOT_SAVEABLE);
		return;
	}
	if (nvt_feature_is_resv(fid)) {
		nvt_execute_resv_feature(req, true);
		return;
	}
	switch (fid) {
	case NVME_FEAT_FID_ASYNC_EVENT:
		if (cdw11 & ~supported_aen) {
			req->error_loc = offsetof(struct nvt_sqe_common, cdw11);
			status = NVT_ST_INVALID_FIELD;
			break;
		}
		ctrl->aen_enabled = cdw11;
		req->cqe->result.u32 = htole32(cdw11);
		break;
	case NVME_FEAT_FID_KATO:
		ctrl->kato_ms = cdw11;
		nvt_ctrl_keep_alive(ctrl);
		break;
	case NVME_FEAT_FID_NUM_QUEUES:
		if (discovery)
			goto bad;
		/* FFFFh is reserved for both counts (NVMe 2.0 §5.27.1.5). */
		if ((cdw11 & 0xffff) == 0xffff || (cdw11 >> 16) == 0xffff) {
			req->error_loc = offsetof(struct nvt_sqe_common, cdw11);
			status = NVT_ST_INVALID_FIELD;
			break;
		}
		req->cqe->result.u32 = htole32(nvt_feat_nr_queues(ctrl));
		break;
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
	case NVME_FEAT_FID_TEMP_THRESH:
	case NVME_FEAT_FID_ERR_RECOVERY:
	case NVME_FEAT_FID_WRITE_ATOMIC:
		if (discovery)
			goto bad;
		/* Accepted and without effect: a RAM-speed target has no such knobs. */
		break;
	case NVME_FEAT_FID_VOLATILE_WC:
		if (discovery || !(cdw11 & 1))
			goto bad;	/* the cache cannot be turned off */
		break;
	case NVME_FEAT_FID_HOST_BEHAVIOR:
		if (discovery)
			goto bad;
		/* ACRE (byte 0), ETDAS (1), LBAFEE (2): kept for Get Features; LBAFEE
		 * is how a host says it understands the 64-bit guard formats. */
		status = nvt_req_copy_from(req, 0, ctrl->host_behavior, sizeof(ctrl->host_behavior));
		break;
	default:
		goto bad;
	}
	nvt_req_complete(req, status);
	return;
bad:
	req->error_loc = offsetof(struct nvt_sqe_common, cdw10);
	nvt_req_complete(req, NVT_ST_INVALID_FIELD);
}

uint16_t nvt_parse_get_features(struct nvt_req *req)
{
	uint32_t cdw10 = le32toh(req->cmd->common.cdw10);
	bool sel_supported = ((cdw10 >> 8) & 7) == NVME_GET_FEATURES_SEL_SUPPORTED;

	/* The 128-bit host identifier and Host Behavior come back as data. */
	if ((cdw10 & 0xff) == NVME_FEAT_FID_HOST_ID && !sel_supported)
		req->data_len = 16;
	if ((cdw10 & 0xff) == NVME_FEAT_FID_HOST_BEHAVIOR && !sel_supported)
		req->data_len = sizeof(req->sq->ctrl->host_behavior);
	req->execute = nvt_execute_get_features;
	return NVT_ST_OK;
}

uint16_t nvt_parse_set_features(struct nvt_req *req)
{
	if ((le32toh(req->cmd->common.cdw10) & 0xff) == NVME_FEAT_FID_HOST_BEHAVIOR)
		req->data_len = sizeof(req->sq->ctrl->host_behavior);
	req->execute = nvt_execute_set_features;
	return NVT_ST_OK;
}

static void nvt_execute_abort(struct nvt_req *req)
{
	/* Commands finish quickly; report "not aborted" (DW0 bit 0), as nvmet does. */
	req->cqe->result.u32 = htole32(1);
	nvt_req_complete(req, NVT_ST_OK);
}

uint16_t nvt_parse_admin_cmd(struct nvt_req *req)
{
	uint8_t opcode = req->cmd->common.opcode;

	switch (opcode) {
	case nvme_admin_identify:
		return nvt_parse_identify(req);
	case nvme_admin_get_log_page:
		return nvt_parse_get_log_page(req);
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
	case nvme_admin_abort_cmd:
		req->execute = nvt_execute_abort;
		return NVT_ST_OK;
	default:
		req->error_loc = offsetof(struct nvt_sqe_common, opcode);
		return NVT_ST_INVALID_OPCODE;
	}
}
