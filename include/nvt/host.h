/* SPDX-License-Identifier: BSD-3-Clause */
/* Host-side SQE builders for tests, tools and benchmarks (what nvme-cli would put on the wire). */
#ifndef NVT_HOST_H
#define NVT_HOST_H

#include <string.h>

#include "nvt/wire.h"

static inline void nvt_host_sqe_init(struct nvt_sqe *sqe, uint8_t opcode, uint32_t nsid)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->common.opcode = opcode;
	sqe->common.flags = NVT_SQE_PSDT_SGL;
	sqe->common.nsid = htole32(nsid);
}

static inline void nvt_host_sqe_identify(struct nvt_sqe *sqe, uint8_t cns, uint32_t nsid,
					 uint8_t csi)
{
	nvt_host_sqe_init(sqe, nvme_admin_identify, nsid);
	sqe->common.cdw10 = htole32(cns);
	sqe->common.cdw11 = htole32((uint32_t)csi << 24);
}

/* @len bytes (a multiple of 4) of log @lid from byte @offset; @rae keeps events asserted. */
static inline void nvt_host_sqe_get_log(struct nvt_sqe *sqe, uint8_t lid, uint32_t len,
					uint64_t offset, bool rae)
{
	uint32_t numd = len / 4 - 1;

	nvt_host_sqe_init(sqe, nvme_admin_get_log_page, 0xffffffff);
	sqe->common.cdw10 = htole32(lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16);
	sqe->common.cdw11 = htole32(numd >> 16);
	sqe->common.cdw12 = htole32((uint32_t)offset);
	sqe->common.cdw13 = htole32((uint32_t)(offset >> 32));
}

static inline void nvt_host_sqe_features(struct nvt_sqe *sqe, bool set, uint8_t fid,
					 uint32_t cdw11)
{
	nvt_host_sqe_init(sqe, set ? nvme_admin_set_features : nvme_admin_get_features, 0);
	sqe->common.cdw10 = htole32(fid);
	sqe->common.cdw11 = htole32(cdw11);
}

/* Read/Write/Compare...: @nlb is the 1-based block count. */
static inline void nvt_host_sqe_rw(struct nvt_sqe *sqe, uint8_t opcode, uint32_t nsid,
				   uint64_t slba, uint32_t nlb)
{
	nvt_host_sqe_init(sqe, opcode, nsid);
	sqe->rw.slba = htole64(slba);
	sqe->rw.nlb = htole16((uint16_t)(nlb - 1));
}

/*
 * Read/Write/Compare/Verify/Write Zeroes with PRINFO (4 bits) and the tag
 * fields a host sets: ILBRT (for the 64-bit guard its upper 16 bits in
 * CDW3), ELBAT and ELBATM.
 */
static inline void nvt_host_sqe_rw_pi(struct nvt_sqe *sqe, uint8_t opcode, uint32_t nsid,
				      uint64_t slba, uint32_t nlb, uint8_t prinfo, uint64_t reftag,
				      uint16_t apptag, uint16_t appmask)
{
	nvt_host_sqe_rw(sqe, opcode, nsid, slba, nlb);
	sqe->rw.control = htole16((uint16_t)prinfo << 10);
	sqe->rw.reftag = htole32((uint32_t)reftag);
	sqe->rw.cdw3 = htole32((uint32_t)(reftag >> 32) & 0xffff);
	sqe->rw.apptag = htole16(apptag);
	sqe->rw.appmask = htole16(appmask);
}

/*
 * Dataset Management of @n ranges, @r[i] = { SLBA, NLB }, written into
 * @ranges (the command's data); @ad: deallocate, else only an access hint.
 * Return: the data length.
 */
static inline size_t nvt_host_sqe_dsm(struct nvt_sqe *sqe, uint32_t nsid,
				      struct nvme_dsm_range *ranges, const uint64_t (*r)[2],
				      unsigned int n, bool ad)
{
	memset(ranges, 0, n * sizeof(*ranges));
	for (unsigned int i = 0; i < n; i++) {
		ranges[i].slba = htole64(r[i][0]);
		ranges[i].nlb = htole32((uint32_t)r[i][1]);
	}
	nvt_host_sqe_init(sqe, nvme_cmd_dsm, nsid);
	sqe->common.cdw10 = htole32(n - 1);
	sqe->common.cdw11 = htole32(ad ? NVME_DSMGMT_AD : NVME_DSMGMT_IDR);
	return n * sizeof(*ranges);
}

#endif /* NVT_HOST_H */
