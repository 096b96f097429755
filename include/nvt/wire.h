/* SPDX-License-Identifier: BSD-3-Clause */
/* Wire formats libnvme's <nvme/types.h> lacks: SQE, CQE, SGL descriptors, Fabrics commands, PI tuples, RDMA CM private data. */
#ifndef NVT_WIRE_H
#define NVT_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <endian.h>
#include <nvme/types.h>

/*
 * Status values travel as the kernel and libnvme lay them out:
 * SC in bits 7:0, SCT in bits 10:8, DNR 0x4000. The CQE carries them shifted
 * left by one (bit 0 is the phase tag, unused on fabrics).
 */
#define NVT_STATUS(sct, sc)	((uint16_t)(((sct) << NVME_SCT_SHIFT) | (sc)))
#define NVT_SC_DNR		((uint16_t)NVME_SC_DNR)
#define NVT_STATUS_SCT(s)	(((s) >> NVME_SCT_SHIFT) & NVME_SCT_MASK)
#define NVT_STATUS_SC(s)	((s) & NVME_SC_MASK)

/* The generic and command-specific statuses nvt returns, with DNR set where a retry cannot help. */
#define NVT_ST_OK		0
#define NVT_ST_INVALID_OPCODE	(NVME_SC_INVALID_OPCODE | NVT_SC_DNR)
#define NVT_ST_INVALID_FIELD	(NVME_SC_INVALID_FIELD | NVT_SC_DNR)
#define NVT_ST_DATA_XFER	(NVME_SC_DATA_XFER_ERROR)
#define NVT_ST_INTERNAL		(NVME_SC_INTERNAL | NVT_SC_DNR)
#define NVT_ST_ABORT_REQ	(NVME_SC_ABORT_REQ)
#define NVT_ST_ABORT_SQ		(NVME_SC_ABORT_QUEUE)
#define NVT_ST_INVALID_NS	(NVME_SC_INVALID_NS | NVT_SC_DNR)
#define NVT_ST_CMD_SEQ		(NVME_SC_CMD_SEQ_ERROR | NVT_SC_DNR)
#define NVT_ST_SGL_INVALID_DATA	(NVME_SC_SGL_INVALID_DATA | NVT_SC_DNR)
#define NVT_ST_SGL_INVALID_TYPE	(NVME_SC_SGL_INVALID_TYPE | NVT_SC_DNR)
#define NVT_ST_SGL_INVALID_OFF	(NVME_SC_SGL_INVALID_OFFSET | NVT_SC_DNR)
#define NVT_ST_LBA_RANGE	(NVME_SC_LBA_RANGE | NVT_SC_DNR)
#define NVT_ST_CAP_EXCEEDED	(NVME_SC_CAP_EXCEEDED | NVT_SC_DNR)
#define NVT_ST_INVALID_LOG_PAGE	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_INVALID_LOG_PAGE) | NVT_SC_DNR)
#define NVT_ST_QID_INVALID	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID) | NVT_SC_DNR)
#define NVT_ST_QUEUE_SIZE	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_QUEUE_SIZE) | NVT_SC_DNR)
#define NVT_ST_ASYNC_LIMIT	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ASYNC_LIMIT) | NVT_SC_DNR)
#define NVT_ST_FEAT_NOT_SAVEABLE (NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_FEATURE_NOT_SAVEABLE) | NVT_SC_DNR)
#define NVT_ST_CONNECT_FORMAT	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_FORMAT) | NVT_SC_DNR)
#define NVT_ST_CONNECT_BUSY	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_CTRL_BUSY))
#define NVT_ST_CONNECT_INVALID_PARAM (NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAM) | NVT_SC_DNR)
#define NVT_ST_CONNECT_INVALID_HOST (NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_CONNECT_INVALID_HOST) | NVT_SC_DNR)
#define NVT_ST_AUTH_REQUIRED	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_AUTH_REQUIRED) | NVT_SC_DNR)
#define NVT_ST_INVALID_ATTR	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_BAD_ATTRIBUTES) | NVT_SC_DNR)
#define NVT_ST_KAT_EXPIRED	(NVME_SC_KAT_EXPIRED | NVT_SC_DNR)

/* Fabrics command opcode (NVMe-oF 1.1 §3.1) and its fctype values. */
#define NVT_OPC_FABRICS		0x7f
enum nvt_fctype {
	NVT_FCTYPE_PROP_SET	= 0x00,	/* Property Set */
	NVT_FCTYPE_CONNECT	= 0x01,	/* Connect */
	NVT_FCTYPE_PROP_GET	= 0x04,	/* Property Get */
	NVT_FCTYPE_AUTH_SEND	= 0x05,	/* Authentication Send */
	NVT_FCTYPE_AUTH_RECV	= 0x06,	/* Authentication Receive */
	NVT_FCTYPE_DISCONNECT	= 0x08,	/* Disconnect */
};

/* SGL descriptor types (NVMe 1.4 §4.4) in the high nibble of the identifier byte. */
enum nvt_sgl_type {
	NVT_SGL_DATA_BLOCK	= 0x0,	/* address + length in host memory (offset on fabrics) */
	NVT_SGL_BIT_BUCKET	= 0x1,	/* discard */
	NVT_SGL_SEGMENT		= 0x2,	/* points to more descriptors */
	NVT_SGL_LAST_SEGMENT	= 0x3,	/* points to the last descriptors */
	NVT_SGL_KEYED_DATA	= 0x4,	/* address + 24-bit length + 32-bit key (RDMA) */
	NVT_SGL_TRANSPORT_DATA	= 0x5,	/* transport specific */
};

enum nvt_sgl_subtype {
	NVT_SGL_SUB_ADDRESS	= 0x0,	/* address is a memory address */
	NVT_SGL_SUB_OFFSET	= 0x1,	/* address is an offset into the in-capsule data */
	NVT_SGL_SUB_INVALIDATE	= 0xf,	/* keyed: the target may invalidate the key */
};

/* One SGL descriptor, 16 bytes; the keyed form packs a 24-bit length and a 32-bit key. */
struct nvt_sgl_desc {
	uint64_t addr;
	union {
		struct {
			uint32_t length;
			uint8_t rsvd[3];
			uint8_t type;	/* type << 4 | subtype */
		} unkeyed;
		struct {
			uint8_t length[3];
			uint8_t key[4];
			uint8_t type;
		} keyed;
	};
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_sgl_desc) == 16, "SGL descriptor is 16 bytes");

/* The common 64-byte submission queue entry, with the layouts nvt parses. */
struct nvt_sqe_common {
	uint8_t opcode;
	uint8_t flags;		/* FUSE bits 1:0, PSDT bits 7:6 */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	struct nvt_sgl_desc dptr;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
} __attribute__((packed));

/* Read, Write, Compare, Write Zeroes, Verify: NVMe 2.0 NVM Command Set §3.2. */
struct nvt_sqe_rw {
	uint8_t opcode;
	uint8_t flags;
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;		/* 64-bit ref tag: upper bits */
	uint32_t cdw3;
	uint64_t mptr;
	struct nvt_sgl_desc dptr;
	uint64_t slba;
	uint16_t nlb;		/* 0-based */
	uint16_t control;	/* LR 15, FUA 14, PRINFO 13:10, DEAC 9 (write zeroes) */
	uint32_t dsmgmt;
	uint32_t reftag;	/* EILBRT low 32 bits */
	uint16_t apptag;	/* ELBAT */
	uint16_t appmask;	/* ELBATM */
} __attribute__((packed));

/* Fabrics commands share opcode 7Fh; fctype sits where nsid would be. NVMe-oF 1.1 §3.3. */
struct nvt_sqe_fabrics {
	uint8_t opcode;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvt_sgl_desc dptr;
	uint8_t spec[24];
} __attribute__((packed));

struct nvt_sqe_connect {
	uint8_t opcode;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvt_sgl_desc dptr;
	uint16_t recfmt;
	uint16_t qid;
	uint16_t sqsize;	/* 0-based */
	uint8_t cattr;		/* bit 2: disable SQ flow control */
	uint8_t rsvd3;
	uint32_t kato;		/* ms */
	uint8_t rsvd4[12];
} __attribute__((packed));

struct nvt_sqe_prop {
	uint8_t opcode;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvt_sgl_desc dptr;
	uint8_t attrib;		/* bits 2:0: 0 = 4 bytes, 1 = 8 bytes */
	uint8_t rsvd3[3];
	uint32_t offset;
	uint64_t value;		/* Property Set only */
	uint8_t rsvd4[8];
} __attribute__((packed));

#define NVT_CONNECT_CATTR_DISABLE_SQFLOW	(1u << 2)

struct nvt_sqe {
	union {
		struct nvt_sqe_common common;
		struct nvt_sqe_rw rw;
		struct nvt_sqe_fabrics fabrics;
		struct nvt_sqe_connect connect;
		struct nvt_sqe_prop prop;
	};
};
_Static_assert(sizeof(struct nvt_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvt_sqe_rw) == 64, "rw SQE is 64 bytes");
_Static_assert(sizeof(struct nvt_sqe_connect) == 64, "connect SQE is 64 bytes");
_Static_assert(sizeof(struct nvt_sqe_prop) == 64, "property SQE is 64 bytes");
_Static_assert(offsetof(struct nvt_sqe_common, dptr) == 24, "dptr at byte 24");
_Static_assert(offsetof(struct nvt_sqe_common, cdw10) == 40, "cdw10 at byte 40");
_Static_assert(sizeof(struct nvmf_connect_data) == 1024, "connect data is 1024 bytes");

#define NVT_SQE_FUSE_MASK	0x03
#define NVT_FUSE_FIRST		0x01	/* first half of a fused operation */
#define NVT_FUSE_SECOND		0x02	/* second half: the very next command on the SQ */
#define NVT_SQE_PSDT_MASK	0xc0
#define NVT_SQE_PSDT_SGL	0x40	/* SGL, metadata buffer contiguous; the only one fabrics allows */

/* The 16-byte completion queue entry. */
struct nvt_cqe {
	union {
		uint64_t u64;
		uint32_t u32;
	} result;		/* DW0 (and DW1) */
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;	/* status << 1 | phase */
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_cqe) == 16, "CQE is 16 bytes");

/* Controller properties (registers) reachable by Property Get/Set on fabrics. */
enum nvt_prop_offset {
	NVT_PROP_CAP	= 0x00,	/* 8 bytes */
	NVT_PROP_VS	= 0x08,
	NVT_PROP_CC	= 0x14,
	NVT_PROP_CSTS	= 0x1c,
	NVT_PROP_NSSR	= 0x20,
};

/*
 * Copy source range descriptors, as NVM Command Set 1.0 Figures 41/42 lay
 * them out (libnvme 1.3 swaps ELBAT and ELBATM): format 0 for the 16-bit
 * guard, format 1 (48-bit reference tag in the low bits of ELBT) for the 64-bit one.
 */
struct nvt_copy_desc0 {
	uint8_t rsvd0[8];
	uint64_t slba;
	uint16_t nlb;		/* 0-based */
	uint8_t rsvd18[6];
	uint32_t eilbrt;
	uint16_t elbat;
	uint16_t elbatm;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_copy_desc0) == 32, "copy descriptor format 0 is 32 bytes");

struct nvt_copy_desc1 {
	uint8_t rsvd0[8];
	uint64_t slba;
	uint16_t nlb;		/* 0-based */
	uint8_t rsvd18[8];
	uint8_t elbt[10];	/* little endian; storage tag size 0: all reference tag */
	uint16_t elbat;
	uint16_t elbatm;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_copy_desc1) == 40, "copy descriptor format 1 is 40 bytes");

#define NVT_COPY_MAX_RANGES	256		/* NR is 8 bits, 0-based: MSRC = 255 */
#define NVT_COPY_MSSRL		65535u		/* blocks per source range */
#define NVT_COPY_MCL		(1u << 20)	/* blocks per command */

/* CSTS bits (libnvme offers only shift/mask pairs). */
#define NVT_CSTS_RDY		(1u << 0)
#define NVT_CSTS_CFS		(1u << 1)
#define NVT_CSTS_SHST_CMPLT	(2u << 2)
#define NVT_CSTS_SHST_MASK	(3u << 2)

/* PI tuple with the 16-bit CRC guard: 8 bytes, big-endian on the wire and at rest. */
struct nvt_pi16 {
	uint16_t guard;
	uint16_t apptag;
	uint32_t reftag;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_pi16) == 8, "16-bit guard PI is 8 bytes");

/* PI tuple with the 64-bit CRC guard and a 48-bit reference tag (storage tag size 0): 16 bytes. */
struct nvt_pi64 {
	uint64_t guard;
	uint16_t apptag;
	uint8_t reftag[6];
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_pi64) == 16, "64-bit guard PI is 16 bytes");

/* NVMe-oF RDMA CM private data (NVMe-oF 1.1 §7.3.1): request, accept, reject. */
struct nvt_rdma_cm_req {
	uint16_t recfmt;
	uint16_t qid;
	uint16_t hrqsize;
	uint16_t hsqsize;	/* 0-based */
	uint16_t cntlid;
	uint8_t rsvd[22];
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_rdma_cm_req) == 32, "CM request private data is 32 bytes");

struct nvt_rdma_cm_rep {
	uint16_t recfmt;
	uint16_t crqsize;
	uint8_t rsvd[28];
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_rdma_cm_rep) == 32, "CM accept private data is 32 bytes");

struct nvt_rdma_cm_rej {
	uint16_t recfmt;
	uint16_t sts;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_rdma_cm_rej) == 4, "CM reject private data is 4 bytes");

/* ---- protection information failures as NVMe statuses ---- */
struct nvt_pi_err;

/* The statuses PI failures complete with: SCT 2h (media and data integrity), DNR. */
#define NVT_ST_PI_GUARD		(NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_GUARD_CHECK) | NVT_SC_DNR)
#define NVT_ST_PI_APPTAG	(NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_APPTAG_CHECK) | NVT_SC_DNR)
#define NVT_ST_PI_REFTAG	(NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_REFTAG_CHECK) | NVT_SC_DNR)
/* A command whose PI fields contradict the format: SCT 1h, SC 81h. */
#define NVT_ST_INVALID_PI	(NVT_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_INVALID_PI) | NVT_SC_DNR)

/**
 * nvt_pi_err_to_status() - the one converter from a PI failure to an NVMe
 * status (STYLE rule 5).
 * @err: filled by a verify function that returned -EILSEQ.
 *
 * DNR is set: the same data fails the same way on a retry. (Linux nvmet and
 * QEMU leave DNR clear, so a Linux host retries up to nvme_max_retries
 * times before reporting EILSEQ; with DNR it reports at once.) The caller
 * also records err->lba in req->error_slba.
 *
 * Return: NVT_ST_PI_GUARD (4282h), NVT_ST_PI_APPTAG (4283h),
 * NVT_ST_PI_REFTAG (4284h), or NVT_ST_INTERNAL for NVT_PI_ERR_NONE.
 */
uint16_t nvt_pi_err_to_status(const struct nvt_pi_err *err);

#endif /* NVT_WIRE_H */
