/* SPDX-License-Identifier: BSD-3-Clause */
/* The RDMA transport's internal types: queues, request slots and their state machine, CM parameters. */
#ifndef NVT_RDMA_INTERNAL_H
#define NVT_RDMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvt/target.h"
#include "nvt/poll_group.h"

#define NVT_RDMA_MAX_QUEUE_SIZE	128		/* what a 6.1 Linux host asks for at most */
#define NVT_RDMA_MAX_DATA	(128u * 1024)	/* MDTS */
#define NVT_RDMA_ICDATA		8192		/* in-capsule data per I/O capsule */
#define NVT_RDMA_CAPSULE	(sizeof(struct nvt_sqe) + NVT_RDMA_ICDATA)

/* Reject statuses (NVMe-oF 1.1 §7.3.2, Figure 54). */
enum nvt_rdma_cm_sts {
	NVT_RDMA_CM_INVALID_LEN		= 0x01,	/* private data too short */
	NVT_RDMA_CM_INVALID_RECFMT	= 0x02,	/* unknown record format */
	NVT_RDMA_CM_INVALID_QID		= 0x03,	/* queue id out of range */
	NVT_RDMA_CM_INVALID_HSQSIZE	= 0x04,	/* bad submission queue size */
	NVT_RDMA_CM_INVALID_HRQSIZE	= 0x05,	/* bad receive queue size */
	NVT_RDMA_CM_NO_RSC		= 0x06,	/* out of resources */
	NVT_RDMA_CM_INVALID_IRD		= 0x07,	/* bad IRD */
	NVT_RDMA_CM_INVALID_ORD		= 0x08,	/* bad ORD */
};

/* What a valid connect request asks for. */
struct nvt_rdma_cm_params {
	uint16_t qid;
	uint32_t sq_size;	/* entries, 1-based */
	uint32_t recv_depth;	/* RECVs to post: HRQSIZE */
	uint16_t cntlid;	/* FFFFh when the host did not say */
};

/**
 * nvt_rdma_parse_cm_req() - validate the private data of a CONNECT_REQUEST.
 * Return: 0, or the NVT_RDMA_CM_* status to reject it with.
 */
int nvt_rdma_parse_cm_req(const void *pdata, size_t len, struct nvt_rdma_cm_params *out);

/* The kind of work request a completion belongs to (wr_id points at one). */
enum nvt_rdma_wr_type {
	NVT_RDMA_WR_RECV,	/* a capsule arrived */
	NVT_RDMA_WR_READ,	/* host data fetched (RDMA READ) */
	NVT_RDMA_WR_WRITE,	/* read data pushed (RDMA WRITE, unsignaled) */
	NVT_RDMA_WR_SEND,	/* the response went out */
};

struct nvt_rdma_wr {
	enum nvt_rdma_wr_type type;
};

/* Request slot states; one transition function checks every move. */
enum nvt_rdma_req_state {
	NVT_RDMA_REQ_FREE = 0,		/* on the free list */
	NVT_RDMA_REQ_NEW,		/* a capsule is attached; not parsed yet */
	NVT_RDMA_REQ_XFER_H2C,		/* RDMA READ of host data in flight */
	NVT_RDMA_REQ_EXECUTING,		/* in the core or a backend */
	NVT_RDMA_REQ_COMPLETING,	/* response (and read data) posted; waiting for the SEND */
};

struct nvt_rdma_queue;

/* One capsule buffer with its RECV. */
struct nvt_rdma_recv {
	struct nvt_rdma_wr wr;
	struct nvt_rdma_queue *queue;
	uint8_t *buf;			/* NVT_RDMA_CAPSULE bytes */
	struct nvt_rdma_recv *next;	/* parked before ESTABLISHED */
	uint32_t byte_len;
};

/* One request slot: its response, its data buffer, its work requests. */
struct nvt_rdma_req {
	struct nvt_rdma_wr data_wr;	/* READ or WRITE */
	struct nvt_rdma_wr send_wr;
	enum nvt_rdma_req_state state;
	struct nvt_rdma_queue *queue;
	struct nvt_rdma_recv *recv;	/* the capsule, reposted when the response goes */
	struct nvt_rdma_req *next_free;
	struct nvt_cqe *cqe;		/* in the queue's registered response array */
	uint8_t *data;			/* NVT_RDMA_MAX_DATA bytes, registered */
	uint8_t *md_buf;		/* PI scratch: NVT_MD_BUF_LEN(NVT_RDMA_MAX_DATA) bytes */
	struct iovec iov;
	uint64_t remote_addr;		/* keyed SGL */
	uint32_t rkey;
	bool in_capsule;
	bool invalidate;		/* the host let us invalidate rkey (keyed subtype Fh) */
	struct nvt_req req;
};

/**
 * nvt_rdma_req_set_state() - the one place a slot changes state.
 * Return: 0, or -EINVAL for a move the machine does not allow (logged).
 */
int nvt_rdma_req_set_state(struct nvt_rdma_req *r, enum nvt_rdma_req_state next);

/** nvt_rdma_req_state_name() - for logs. */
const char *nvt_rdma_req_state_name(enum nvt_rdma_req_state s);

/**
 * nvt_rdma_map_sgl() - turn the SQE's SGL into the slot's data buffer:
 * keyed (RDMA READ/WRITE later) or in-capsule. Sets req.transfer_len.
 * Return: NVMe status.
 */
uint16_t nvt_rdma_map_sgl(struct nvt_rdma_req *r, uint32_t icdata_len, bool io_queue);

#endif /* NVT_RDMA_INTERNAL_H */
