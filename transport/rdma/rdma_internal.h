/* SPDX-License-Identifier: BSD-3-Clause */
/* The RDMA transport's internal types: queues, request slots and their state machine, the data buffer pool, CM parameters. */
#ifndef NVT_RDMA_INTERNAL_H
#define NVT_RDMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <infiniband/verbs.h>

#include "nvt/target.h"
#include "nvt/poll_group.h"

#define NVT_RDMA_MAX_QUEUE_SIZE	128		/* what a 6.1 Linux host asks for at most */
#define NVT_RDMA_ICDATA		8192		/* in-capsule data per I/O capsule */
#define NVT_RDMA_CAPSULE	(sizeof(struct nvt_sqe) + NVT_RDMA_ICDATA)

/*
 * Data buffers come from a pool of fixed-size chunks, one pool per (RDMA
 * device, poll group), registered once. 32 KiB because: a 1 MiB transfer
 * (the default MDTS) is 32 chunks, one RDMA READ or WRITE with one SGE per
 * chunk on rxe (max_sge 32), two on mlx5 (30); the PI scratch of a 1 MiB
 * transfer (NVT_MD_BUF_LEN: 32 KiB) fits one chunk; and a 4 KiB command,
 * the common case, strands at most 28 KiB, so the default pool still holds
 * 2048 commands in flight per poll group: 16 queues 125 each under the
 * per-queue cap (nvt_rdma_pool_cap() below), nearly 16 full 128-deep queues.
 */
#define NVT_RDMA_CHUNK		(32u * 1024)
#define NVT_RDMA_POOL_SIZE	(64u << 20)	/* per (device, poll group) serving I/O queues */
#define NVT_RDMA_ADMIN_POOL_SIZE (4u << 20)	/* the main loop's, when only admin queues live there */
#define NVT_RDMA_MAX_SGE	32		/* SGEs per READ/WRITE WR at most; the device may allow fewer */
/* Per-slot PI scratch: enough for in-capsule data; bigger transfers take chunks for it. */
#define NVT_RDMA_MD_SCRATCH	NVT_MD_BUF_LEN(NVT_RDMA_ICDATA)

/* A queue not yet Fabrics-connected runs only Connect: its 1 KiB of data is one chunk. */
#define NVT_RDMA_CONNECT_CHUNKS	1

/* Chunks that hold @bytes. */
static inline uint32_t nvt_rdma_chunks_for(uint64_t bytes)
{
	return (uint32_t)((bytes + NVT_RDMA_CHUNK - 1) / NVT_RDMA_CHUNK);
}

/* Chunks the largest command may take: its data, then its PI scratch. */
static inline uint32_t nvt_rdma_max_chunks(uint32_t max_io)
{
	return nvt_rdma_chunks_for((uint64_t)max_io + NVT_MD_BUF_LEN(max_io));
}

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
	NVT_RDMA_WR_READ,	/* host data fetched: the signaled last READ of a chain */
	NVT_RDMA_WR_CHAIN,	/* an unsignaled READ ahead of the last, or any WRITE: seen only in error */
	NVT_RDMA_WR_SEND,	/* the response went out, and the read data WRITEs chained ahead of it */
};

struct nvt_rdma_wr {
	enum nvt_rdma_wr_type type;
};

/* Request slot states; one transition function checks every move. */
enum nvt_rdma_req_state {
	NVT_RDMA_REQ_FREE = 0,		/* on the free list */
	NVT_RDMA_REQ_NEW,		/* a capsule is attached; not parsed yet */
	NVT_RDMA_REQ_NEED_BUFFER,	/* parsed; waiting for data chunks, in the pool's line or at its queue's cap */
	NVT_RDMA_REQ_XFER_H2C,		/* RDMA READ of host data in flight */
	NVT_RDMA_REQ_EXECUTING,		/* in the core or a backend */
	NVT_RDMA_REQ_COMPLETING,	/* response (and read data) posted; waiting for the SEND */
};

struct nvt_rdma_queue;
struct nvt_rdma_req;
struct nvt_rdma_dev;

/*
 * The registered data buffer chunks of one (device, poll group). Only that
 * poll group's thread touches the free stack, the wait list and the counts.
 */
struct nvt_rdma_pool {
	uint8_t *base;			/* nr_chunks * NVT_RDMA_CHUNK bytes */
	uint32_t lkey;			/* of the one MR over all of it */
	uint32_t nr_chunks;
	uint32_t nr_free;		/* free[0, nr_free) */
	uint32_t *free;			/* a stack: the chunk freed last is the warmest */
	struct nvt_rdma_req *wait_head;	/* NEED_BUFFER requests within their queue's cap, oldest first */
	struct nvt_rdma_req *wait_tail;
	uint32_t nr_waiting;
	uint64_t nr_waits;		/* requests that ever had to wait for the pool: backpressure */
	uint64_t nr_capped;		/* requests that ever waited at their own queue's cap */
	uint32_t max_cmd;		/* chunks of the largest command of any listener (0: unknown) */
	uint32_t nr_queues;		/* queues past ESTABLISHED that use the pool */
	uint32_t nr_connected;		/* of those, Fabrics-connected */
	bool resuming;			/* nvt_rdma_pool_resume() is on the stack */
};

/**
 * nvt_rdma_pool_init() - a pool over @nr_chunks chunks at @base, all free.
 * Return: 0 or -ENOMEM.
 */
int nvt_rdma_pool_init(struct nvt_rdma_pool *p, uint8_t *base, uint32_t nr_chunks);

/** nvt_rdma_pool_fini() - free the free stack; @base belongs to the caller. */
void nvt_rdma_pool_fini(struct nvt_rdma_pool *p);

/** nvt_rdma_pool_get() - take @n chunks into @ids, all or none. Return: false if short. */
bool nvt_rdma_pool_get(struct nvt_rdma_pool *p, uint32_t *ids, uint32_t n);

/** nvt_rdma_pool_put() - give back the @n chunks in @ids. */
void nvt_rdma_pool_put(struct nvt_rdma_pool *p, const uint32_t *ids, uint32_t n);

/*
 * How many chunks one queue may hold. A host that stops reposting RECVs
 * stalls our SENDs for good (RNR retries are endless), and every READ and
 * WRITE posted behind them on that QP with them: its commands keep their
 * chunks until the send-stall timeout drops the queue. Uncapped, that is
 * up to its depth x max_io_size (128 x 1 MiB) of a pool every queue of the
 * poll group shares, and the others wait in NEED_BUFFER meanwhile.
 *
 * The rule, with P the pool's chunks, M its largest command (data and PI
 * scratch, of any listener), N its Fabrics-connected queues and U its
 * queues that are not (yet):
 *   - a queue that is not Fabrics-connected holds at most
 *     NVT_RDMA_CONNECT_CHUNKS (1): it can run nothing but Connect;
 *   - a connected one at most cap = max(M, (P - M - U) / N).
 * A queue counts what it holds plus what it waits for in the pool's line;
 * a request that would take it past its cap waits on its own queue's list,
 * in order, and joins the pool's line only when its queue has room again:
 * the pool's line never holds a request that cannot be served once chunks
 * are there, so a stuck queue blocks nobody but itself. One exception: the
 * Write of a fused Compare and Write is not capped (its Compare holds
 * chunks until the Write has run), so a queue may go past its cap by its
 * fused Writes, no more than its cap again (each matches a Compare that
 * was within it).
 *
 * While (P - M - U) / N >= M, all caps together are at most P - M, so a
 * queue within its cap always finds its chunks free at once: nobody ever
 * waits for another queue's chunks, and M stay free for a queue that comes
 * up while the others still hold what a larger share let them take.
 * Defaults (1 MiB max_io_size: M = 33; a 64 MiB pool: P = 2048; U = 0):
 * one queue 2015 chunks, two 1007, 16 queues 125 each (125 4 KiB commands
 * in flight, nearly a full 128-deep queue), 61 queues 33. Past 61 every
 * queue keeps M, one largest command or 33 small ones, and the caps may
 * add up to more than P: queues may wait their turn, first come first
 * served, behind each other, but one that is stuck pins at most M chunks
 * and only until the send-stall timeout.
 */

/**
 * nvt_rdma_pool_cap() - the most chunks a queue of @p may hold (see above).
 * @connected: its Fabrics Connect is done
 * @max_chunks: its own largest command, which it may always have
 */
uint32_t nvt_rdma_pool_cap(const struct nvt_rdma_pool *p, bool connected, uint32_t max_chunks);

/* One capsule buffer with its RECV. */
/*
 * One capsule buffer with its RECV: a queue's own, or one of its (device,
 * poll group)'s shared receive queue, which any of its queues may get.
 */
struct nvt_rdma_recv {
	struct nvt_rdma_wr wr;
	struct nvt_rdma_queue *queue;	/* its own queue's; NULL for a shared one */
	struct nvt_rdma_dev *srq_dev;	/* a shared one's (device, poll group); NULL otherwise */
	uint8_t *buf;			/* NVT_RDMA_CAPSULE bytes */
	struct nvt_rdma_recv *next;	/* parked: before ESTABLISHED, no free slot, or its queue not yet known */
	uint32_t byte_len;
	uint32_t qp_num;		/* a shared one: the QP it arrived on */
	struct ibv_recv_wr rwr;		/* its own storage: it may wait to be posted */
	struct ibv_sge sge;
};

/*
 * One request slot: its response, its work requests, and while a command
 * owns it, that command's own copy of the SQE and its data chunks.
 */
struct nvt_rdma_req {
	struct nvt_rdma_wr data_wr;	/* the last READ or WRITE of a chain */
	struct nvt_rdma_wr chain_wr;	/* the others */
	struct nvt_rdma_wr send_wr;
	enum nvt_rdma_req_state state;
	struct nvt_rdma_queue *queue;
	struct nvt_rdma_recv *recv;	/* the capsule, reposted when the response goes */
	struct nvt_rdma_req *next;	/* on the free list, the pool's wait list or its queue's capped list */
	struct nvt_cqe *cqe;		/* in the queue's registered response array */
	uint32_t *chunks;		/* room for the queue's max_chunks ids */
	struct iovec *iov;		/* room for max_chunks + 1: data pieces, then PI pieces */
	/*
	 * The command itself, copied out of the capsule when it arrives: the
	 * capsule buffer goes back to the HCA with the response, and nothing
	 * may be decided from memory the HCA owns.
	 */
	struct nvt_sqe sqe;
	/* Per command; all reset when a capsule is attached. */
	uint64_t remote_addr;		/* keyed SGL */
	uint32_t rkey;
	bool invalidate;		/* the host let us invalidate rkey (keyed subtype Fh) */
	bool in_capsule;		/* data in the capsule: icd_iov */
	bool h2c;			/* host data to fetch by RDMA READ */
	bool c2h;			/* data to push by RDMA WRITE with the response */
	uint32_t md_len;		/* PI scratch taken from the chunks (0: md_scratch or none) */
	uint32_t need;			/* chunks the command needs */
	uint32_t nr_chunks;		/* chunks it holds */
	uint32_t data_wrs;		/* WRs of its READ chain, or of the WRITE chain ahead of its SEND */
	/*
	 * Zero copy (nvt_rdma_zc_write()): the host's data is fetched straight
	 * into the ram namespace's memory, by an RDMA READ posted once the
	 * backend holds the bio (EXECUTING), with zc_lkey over that memory.
	 */
	bool zc;
	bool zc_posted;			/* that READ is the HCA's: its completion ends the bio */
	uint32_t zc_lkey;
	struct iovec icd_iov;
	uint8_t md_scratch[NVT_RDMA_MD_SCRATCH];
	struct nvt_req req;
};

/**
 * nvt_rdma_req_set_state() - the one place a slot changes state.
 * Return: 0, or -EINVAL for a move the machine does not allow (logged).
 */
int nvt_rdma_req_set_state(struct nvt_rdma_req *r, enum nvt_rdma_req_state next);

/** nvt_rdma_req_state_name() - for logs. */
const char *nvt_rdma_req_state_name(enum nvt_rdma_req_state s);

/** nvt_rdma_req_active() - between arrival and response: the host counts it as outstanding. */
static inline bool nvt_rdma_req_active(enum nvt_rdma_req_state s)
{
	return s != NVT_RDMA_REQ_FREE && s != NVT_RDMA_REQ_COMPLETING;
}

/**
 * nvt_rdma_req_reset() - forget everything of the slot's previous command
 * (SGL, invalidation, data layout) before a new one is parsed: a command
 * refused at parse must be answered as itself.
 */
void nvt_rdma_req_reset(struct nvt_rdma_req *r);

/**
 * nvt_rdma_map_sgl() - read the SQE's SGL: keyed (RDMA READ/WRITE later,
 * at most @max_len bytes) or in-capsule (inside the @icdata_len bytes that
 * can follow the SQE, and inside what arrived). Sets req.transfer_len.
 * Return: NVMe status.
 */
uint16_t nvt_rdma_map_sgl(struct nvt_rdma_req *r, uint32_t icdata_len, uint32_t max_len,
			  bool io_queue);

/**
 * nvt_rdma_req_plan() - after parse: what the command moves and how many
 * chunks it needs (r->h2c, r->c2h, r->md_len, r->need). Data in the capsule,
 * no data, or a transfer the core will refuse take none; PI scratch larger
 * than the slot's own is placed behind the data.
 */
void nvt_rdma_req_plan(struct nvt_rdma_req *r);

/**
 * nvt_rdma_req_layout() - describe the chunks @r holds as its data iovecs
 * (req.iov, data_len bytes) and, when r->md_len, its PI scratch behind them
 * (req.md_iov). Return: the number of data iovecs.
 */
unsigned int nvt_rdma_req_layout(struct nvt_rdma_req *r, const struct nvt_rdma_pool *p);

/**
 * nvt_rdma_zc_write() - after nvt_rdma_req_plan(): may @r's data go
 * straight from the host into its namespace's memory, @base (@len bytes,
 * nvt_ram_region())? Only a plain Write with keyed data: nothing to do to
 * the data on the way (no metadata, so no PI step), not half of a fused
 * Compare and Write (which stages its data to compare first), the blocks
 * inside @base. If so, points r->iov (one piece) at the blocks and
 * returns true: the caller then fetches no chunks (r->h2c, r->need 0).
 */
bool nvt_rdma_zc_write(struct nvt_rdma_req *r, uint8_t *base, size_t len);

#endif /* NVT_RDMA_INTERNAL_H */
