/* SPDX-License-Identifier: BSD-3-Clause */
/* The NVMe-oF RDMA transport: listeners, CM events, one RC QP per NVMe queue, capsules in, data and responses out. */
#define NVT_LOG_PREFIX "rdma: "
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "nvt/backend.h"
#include "nvt/log.h"
#include "nvt/rdma.h"
#include "nvt/util.h"
#include "rdma_internal.h"

#define NVT_RDMA_BACKLOG	128
#define NVT_RDMA_CQ_BATCH	32
#define NVT_RDMA_CQ_BATCHES	4	/* per loop iteration: then the flusher posts what they produced */
/*
 * One CQ per (device, poll group), shared by its queues. It must never
 * overflow (an overrun CQ moves every QP on it to the error state): every
 * send and receive WR of every QP on it can complete at once, flushed ones
 * too, so each QP reserves recv_depth + max_send_wr entries and a queue
 * that would take the sum past the CQ's size is refused (NO_RSC) rather
 * than the CQ resized: ibv_resize_cq under the owner's ibv_poll_cq is not
 * safe on every provider, and the main loop is where queues are made.
 * So the CQ is made as large as any poll group can need from the start:
 * the device's max_cqe, up to NVT_RDMA_CQ_ENTRIES_MAX (131072: 1024 per
 * queue for NVT_MAX_IO_QUEUES queues, i.e. 341 queues of depth 128 at
 * 1 MiB with 3 WRs a slot, 102 at 8 MiB; 8 MiB of 64-byte CQEs on mlx5,
 * whose max_cqe is 4M-1). A fixed 16384 held only 41-62 queues of depth
 * 128 (12 at 8 MiB), and one queue over fails a Linux host's whole
 * controller, which retries for ever. NVT_RDMA_CQ_ENTRIES is what is asked
 * for where the device reports no max_cqe.
 */
#define NVT_RDMA_CQ_ENTRIES	16384
#define NVT_RDMA_CQ_ENTRIES_MAX	131072
/*
 * Capsule buffers of the shared receive queue of one (device, poll group):
 * 8 KiB + 64 B each, registered once. Every queue on it draws from them;
 * a buffer goes back as soon as its command no longer needs it (at parse
 * without in-capsule data, nvt_rdma_handle_capsule()). Should a burst of
 * many queues drain it, a capsule finds no RECV: the HCA answers RNR NAK
 * and the host retries after our QP's min_rnr_timer (the host accepts
 * with rnr_retry_count 7: for ever), a stall, never a loss. That timer is
 * what the NAK tells the host to wait; the kernel CM's RTR attributes
 * leave it 0 for RC, which encodes 655.36 ms, so each queue sets
 * NVT_RDMA_MIN_RNR_TIMER itself once ESTABLISHED (RTS -> RTS allows
 * IBV_QP_MIN_RNR_TIMER, ibv_modify_qp(3)). 512 (4 MiB) for an I/O poll
 * group, 4 full 128-deep queues; 128 (1 MiB) for the main loop's admin
 * queues. Fewer where the device's max_srq_wr is.
 */
#define NVT_RDMA_SRQ_DEPTH	512
#define NVT_RDMA_ADMIN_SRQ_DEPTH 128
/*
 * RNR NAK timer code (IB spec 9.7.5.2.8): 12 = 0.64 ms. Buffers come back
 * within one poll-group iteration (microseconds; a loaded TCG VM takes
 * about a millisecond), so a shorter wait would only multiply the retries
 * a dry SRQ costs the wire, and a longer one the stall.
 */
#define NVT_RDMA_MIN_RNR_TIMER	12
#define NVT_RDMA_QP_HASH	64	/* qp_num -> queue buckets of a (device, poll group) */
#define NVT_RDMA_DRAIN_MS	2000	/* flush completions of a dying QP arrive well within this */
#define NVT_RDMA_STOP_MS	5000	/* how long shutdown waits for hosts to let go */
#define NVT_RDMA_CONNECT_MS	10000	/* an accepted queue must be Fabrics-connected by then */
#define NVT_RDMA_TICK_MS	1000	/* how often the main loop looks for queues that are not */
/*
 * A send queue with work outstanding that completes none of it for this
 * long belongs to a host that stopped taking our SENDs (RNR retries are
 * endless) or answering our READs: the queue is dropped, and what it held
 * of the pool comes back. Hosts ACK in microseconds; 30 s is far beyond
 * any retry a live link does.
 */
#define NVT_RDMA_SEND_STALL_MS	30000
/*
 * Queues of one listener accepted and not yet Fabrics-connected, at most;
 * beyond, CONNECT_REQUESTs are rejected (NO_RSC). Each costs a QP and up to
 * ~1.2 MiB (see Memory below) for as long as NVT_RDMA_CONNECT_MS x 2. A
 * Linux host CM-connects all its I/O queues before it sends the first
 * Fabrics Connect on any of them, so the cap must take one host's full set
 * (NVT_MAX_IO_QUEUES plus its admin queue): at most ~155 MiB per listener
 * at the default max_io_size. Such queues hold one chunk each at most
 * (NVT_RDMA_CONNECT_CHUNKS).
 */
#define NVT_RDMA_MAX_PENDING	(NVT_MAX_IO_QUEUES + 1)
/*
 * Zero-copy writes register a ram namespace's whole data mapping, which
 * pins (and so populates) every page of it: larger namespaces, sparse
 * ones above all, keep copying through the pool.
 */
#define NVT_RDMA_ZC_MAX_BYTES	(1ull << 30)
_Static_assert(sizeof(struct nvmf_connect_data) <= NVT_RDMA_CONNECT_CHUNKS * NVT_RDMA_CHUNK,
	       "a Connect's data fits what a queue not yet connected may hold");

/*
 * Memory. A queue of depth D (D RECVs, D request slots) owns no data
 * buffers: D capsule buffers of 8 KiB + 64 B and D 16-byte responses
 * (registered), and D slots of 664 B plus, each, max_chunks + 1 iovecs and
 * max_chunks chunk ids (max_chunks = 33 at the default max_io_size of
 * 1 MiB: 676 B), its own WRs (wrs_per_slot x 128 B: 256 B on rxe) and
 * SGEs ((max_chunks + 2) x 16 B: 560 B), and a RECV WR + SGE per capsule
 * buffer (48 B). D = 128 at 1 MiB: 1.3 MiB per queue (at 8 MiB: 2 MiB);
 * an admin queue (D = 32): 0.3 MiB. On a shared receive queue (the
 * device has SRQs) it has no capsule buffers of its own: 0.27 MiB at
 * D = 128 and 1 MiB, the (device, poll group) holding NVT_RDMA_SRQ_DEPTH
 * of them for all its queues (4 MiB; 1 MiB for the main loop's). It has
 * no CQ or completion channel of its own either: one per (device, poll
 * group), up to NVT_RDMA_CQ_ENTRIES_MAX (8 MiB). It was 17.5 MiB and 4.4 MiB with a
 * 128 KiB data buffer and PI scratch per slot. Data and PI scratch come
 * from one registered pool per (RDMA device, poll group) that has queues,
 * made with its first queue and kept until the last listener stops (or
 * its device goes, nvt_rdma_devs_removed()):
 * NVT_RDMA_POOL_SIZE (64 MiB) for an I/O poll group, NVT_RDMA_ADMIN_POOL_SIZE
 * (4 MiB) for the main loop's admin queues, each at least the largest
 * command of any listener. No queue holds more of its pool than its cap
 * (nvt_rdma_pool_cap(), rdma_internal.h): one whose host stalls cannot
 * starve the others, and the send-stall timeout gives its share back.
 */

enum nvt_rdma_queue_state {
	NVT_RDMA_Q_CONNECTING,		/* accepted, waiting for ESTABLISHED; capsules are parked */
	NVT_RDMA_Q_LIVE,		/* serving */
	NVT_RDMA_Q_DISCONNECTING,	/* disconnect asked for; waiting for the CM event */
	NVT_RDMA_Q_DEAD,		/* verbs resources gone; memory freed after this batch */
};

/*
 * One ram namespace's data memory registered with a device's PD, for
 * zero-copy writes; made by the main loop when the first write to it on
 * that (device, poll group) asks (nvt_rdma_zc_mr_get()). It ends
 * (deregistered) with the namespace's close or the device's end,
 * whichever comes first; the memory goes with the last of the two
 * references (both may run at once on different threads).
 */
struct nvt_rdma_zc_mr {
	struct nvt_ram_user user;		/* the namespace's close: release() */
	struct nvt_rdma_zc_mr *next;		/* in dev->zc_mrs (owner), or dev->zc_made until the owner links it */
	struct nvt_ns *ns;
	struct ibv_mr *mr;			/* NULL: not registered, the namespace copies */
	atomic_bool dead;			/* deregistered; never matched again */
	atomic_uint refs;			/* the device's list, the namespace's */
};

/*
 * One RDMA device as one poll group uses it: the protection domain and
 * the registered data pool its queues share. librdmacm hands every cm_id
 * on a device the same ibv_context, which is the key. Created and
 * destroyed on the main loop; the pool is then its poll group's alone.
 */
struct nvt_rdma_dev {
	struct nvt_rdma_dev *next;		/* in nvt_rdma_devs */
	struct ibv_context *verbs;
	struct nvt_poll_group *pg;
	struct ibv_pd *pd;
	struct ibv_mr *mr;			/* over all of pool.base */
	unsigned int refs;			/* queues using it; main loop only */
	bool removed;				/* DEVICE_REMOVAL: freed with its last queue */
	struct nvt_rdma_pool pool;
	/* Batched posting; owner only. */
	struct nvt_rdma_queue *dirty;		/* queues with WRs to post this iteration */
	struct nvt_pg_flusher flusher;		/* posts them at the end of the iteration */
	/* The CQ and completion channel all its queues' QPs share (none in unit tests). */
	struct ibv_comp_channel *channel;
	struct ibv_cq *cq;
	uint32_t cq_entries;			/* what cq holds */
	uint32_t cq_reserved;			/* main loop: its QPs' send and receive WRs */
	bool cq_full_warned;			/* main loop: a queue was refused for want of room */
	/* Adaptive polling of the CQ, for all its queues at once; owner only. */
	struct nvt_pg_watch cq_watch;		/* the channel: a completion after the CQ was armed */
	struct nvt_pg_poller poller;		/* polls while busy */
	unsigned int nr_polled;			/* LIVE queues: the watch and poller run while > 0 */
	bool busy;				/* polling: the CQ is not armed */
	bool watching;				/* cq_watch is in the poll group: it may sleep */
	uint64_t idle_until;			/* busy until then unless completions come */
	/*
	 * The shared receive queue and its capsule buffers (srq NULL: each
	 * queue has its own receive queue and buffers). Capsules find their
	 * queue by wc->qp_num in qp_hash, which the owner fills when the main
	 * loop tells it of an accepted queue; one that lands before (between
	 * rdma_accept and that message) waits on the orphan list, in order.
	 */
	struct ibv_srq *srq;
	struct ibv_mr *srq_mr;
	uint8_t *srq_bufs;
	struct nvt_rdma_recv *srq_recvs;
	uint32_t srq_depth;
	struct ibv_recv_wr *srq_head, *srq_tail;	/* owner: to repost at the end of the iteration */
	struct nvt_rdma_queue *qp_hash[NVT_RDMA_QP_HASH];	/* owner */
	struct nvt_rdma_recv *orphan_head, *orphan_tail;	/* owner */
	unsigned int nr_orphans;
	struct nvt_rdma_zc_mr *zc_mrs;		/* owner; the main loop at free */
	/*
	 * Registrations for zero copy are made on the main loop (pinning up
	 * to 1 GiB takes a while, and allocates): the owner asks for one
	 * namespace at a time, and writes copy until it is there.
	 */
	struct nvt_target *tgt;
	struct nvt_pg_msg zc_req_msg;
	struct nvt_ns *zc_req_ns;		/* owner writes, then sends; only compared until found published */
	uint32_t zc_req_nsid;
	atomic_bool zc_req_pending;		/* a request is with the main loop */
	struct nvt_rdma_zc_mr *_Atomic zc_made;	/* main loop -> owner: made while pending, linked by the owner */
	bool zc_free_deferred;			/* main loop: freed when the request is back */
};

/* Main loop only. */
static struct nvt_rdma_dev *nvt_rdma_devs;
static unsigned int nvt_rdma_nr_ports;		/* listening; the devices go with the last */

struct nvt_rdma_port;

struct nvt_rdma_queue {
	struct nvt_sq sq;
	struct nvt_rdma_port *rport;
	struct nvt_rdma_queue *next;		/* in rport->queues */
	enum nvt_rdma_queue_state state;
	struct rdma_cm_id *cm_id;
	struct nvt_rdma_dev *dev;		/* its PD and data pool (none in unit tests) */
	struct nvt_rdma_pool *pool;		/* shared with the poll group's other queues */
	struct ibv_mr *recv_mr, *cqe_mr;	/* recv_mr: none with a shared receive queue */
	uint8_t *recv_bufs;			/* and no recv_bufs, recvs */
	struct nvt_cqe *cqes;
	struct nvt_rdma_recv *recvs;
	uint32_t recv_depth;
	struct nvt_rdma_req *reqs;
	uint32_t nr_reqs;
	struct nvt_rdma_req *free_reqs;
	uint32_t *chunk_ids;			/* nr_reqs x max_chunks, the slots' r->chunks */
	struct iovec *iovs;			/* nr_reqs x (max_chunks + 1), the slots' r->iov */
	struct nvt_rdma_recv *parked_head, *parked_tail;
	unsigned int nr_parked;			/* capsules waiting for ESTABLISHED or a free slot */
	unsigned int nr_active;			/* slots the host counts as outstanding (not answered) */
	uint32_t max_io;			/* the listener's max_io_size */
	uint32_t max_chunks;			/* per command: data and PI scratch */
	uint32_t sge_rd, sge_wr;		/* SGEs per RDMA READ / WRITE WR */
	uint32_t wrs_per_slot;			/* a READ chain, or a WRITE chain and the SEND */
	uint32_t max_send_wr;			/* nr_reqs x wrs_per_slot: the QP's send queue */
	/*
	 * Each slot's own WRs and SGEs (wrs_per_slot; max_chunks + 2: its data
	 * pieces, then its CQE), and each capsule buffer's RECV: with batching
	 * several chains wait at once to be posted, so none may share storage.
	 */
	struct ibv_send_wr *slot_wrs;
	struct ibv_sge *slot_sges;
	bool srq;				/* its RECVs are dev->srq's */
	uint32_t qp_num;
	bool qp_known;				/* in dev->qp_hash; owner only */
	struct nvt_rdma_queue *qp_next;		/* in its bucket */
	struct nvt_pg_msg known_msg;		/* main -> owner: accepted, its qp_num */
	/* Batched posting (batch): built during an iteration, posted at its end; owner only. */
	bool batch;				/* the listener's batch_posts (and a device to flush on) */
	bool zero_copy;				/* the listener's zero_copy */
	bool dirty;				/* on dev->dirty */
	struct nvt_rdma_queue *dirty_next;
	struct ibv_send_wr *send_head, *send_tail;	/* counted in sq_used already */
	struct ibv_recv_wr *recv_head, *recv_tail;
	unsigned int posted_recvs;		/* RECVs the HCA holds */
	unsigned int posted_sends;		/* signaled send-queue WRs not yet completed */
	unsigned int sq_used;			/* send-queue WRs, signaled or not, not yet retired */
	/* Its share of the pool (nvt_rdma_pool_cap()); owner only. */
	uint32_t chunks_held;			/* by its slots */
	uint32_t chunks_queued;			/* needed by its requests in the pool's line */
	struct nvt_rdma_req *capped_head;	/* NEED_BUFFER at its cap, oldest first */
	struct nvt_rdma_req *capped_tail;
	bool pool_counted;			/* in pool->nr_queues */
	bool pool_connected;			/* in pool->nr_connected */
	bool disconnect_sent;
	bool send_with_inv;			/* the device really implements SEND_WITH_INV */
	struct nvt_poll_group *pg;		/* owns the CQ, the request slots and the pool */
	struct ibv_cq *cq;			/* dev->cq: shared, not the queue's */
	uint32_t cq_share;			/* its entries of dev->cq_reserved; main loop only */
	bool cq_polled;				/* counted in dev->nr_polled; owner only */
	atomic_bool connected;			/* Fabrics Connect done: owner sets, main loop reads */
	char hostnqn[NVT_NQN_MAX + 1];		/* for logs: written once before connected is set */
	/* Signaled send-queue WRs ever posted and completed: owner writes, the stall check reads. */
	_Atomic uint64_t sends_posted, sends_done;
	/* Hand-offs between the main loop (CM, cm_id, memory) and the owner. */
	bool teardown_forwarded;		/* main loop only */
	uint64_t accepted_ns;			/* main loop only */
	bool connect_late;			/* main loop only: asked to leave for want of Connect */
	bool pending;				/* main loop only: counted in rport->nr_pending */
	uint64_t stall_done;			/* main loop only: sends_done at the last look */
	uint64_t stall_since;			/* main loop only: first look that saw it stuck */
	bool stall_seen;			/* main loop only: stall_since is set */
	struct nvt_pg_msg established_msg;	/* main -> owner */
	struct nvt_pg_msg teardown_msg;		/* main -> owner */
	struct nvt_pg_deferred gone_work;	/* owner, after its batch */
	unsigned int nr_executing;		/* teardown: commands a backend still holds */
	bool late_queued;			/* gone_work is queued (it runs once at a time) */
	struct nvt_pg_msg gone_msg;		/* owner -> main */
};

struct nvt_rdma_port {
	struct nvt_port *port;
	struct rdma_event_channel *channel;
	struct rdma_cm_id *listen_id;
	struct nvt_pg_watch cm_watch;
	struct nvt_pg_watch tick_watch;		/* NVT_RDMA_TICK_MS timerfd */
	struct nvt_rdma_queue *queues;
	unsigned int nr_queues;
	unsigned int nr_pending;		/* queues not yet seen Fabrics-connected */
};

static void nvt_rdma_queue_response(struct nvt_req *req);
static void nvt_rdma_delete_ctrl(struct nvt_ctrl *ctrl);
static int nvt_rdma_listen(struct nvt_port *port);
static void nvt_rdma_stop_listen(struct nvt_port *port);

const struct nvt_transport_ops nvt_rdma_transport_ops = {
	.name = "rdma",
	.trtype = NVMF_TRTYPE_RDMA,
	.flags = NVT_TR_KEYED_SGL | NVT_TR_INCAPSULE,
	.max_data_len = NVT_MAX_IO_SIZE_DEFAULT,
	.icdata_len = NVT_RDMA_ICDATA,
	.max_queue_size = NVT_RDMA_MAX_QUEUE_SIZE,
	.listen = nvt_rdma_listen,
	.stop_listen = nvt_rdma_stop_listen,
	.queue_response = nvt_rdma_queue_response,
	.delete_ctrl = nvt_rdma_delete_ctrl,
};

static int nvt_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The listener's max_io_size; in-memory configs (tests) may leave it 0. */
static uint32_t nvt_rdma_port_max_io(const struct nvt_port *port)
{
	uint64_t v = port->cfg.max_io_size;

	if (!v)
		return NVT_MAX_IO_SIZE_DEFAULT;
	if (v < NVT_MAX_IO_SIZE_MIN)
		return NVT_MAX_IO_SIZE_MIN;
	return v > NVT_MAX_IO_SIZE_MAX ? NVT_MAX_IO_SIZE_MAX : (uint32_t)v;
}

/*
 * Work request budget of a queue, from its max_io and the device's SGE
 * limits: every slot may have its READ chain, or its WRITE chain and its
 * SEND, in the send queue at once, and the send queue is sized for all
 * slots doing so. A slot posts only within its own budget, so the send
 * queue cannot overflow whatever the host does (a host that stops
 * completing our SENDs stalls its own slots, then its own capsules).
 * Return: 0, or -EINVAL if the device has no SGE to give.
 */
static int nvt_rdma_queue_size(struct nvt_rdma_queue *q, int max_sge, int max_sge_rd)
{
	uint32_t pieces = nvt_rdma_chunks_for(q->max_io), wrs_rd, wrs_wr;

	if (max_sge < 1)
		return -EINVAL;
	q->max_chunks = nvt_rdma_max_chunks(q->max_io);
	q->sge_wr = (uint32_t)max_sge < NVT_RDMA_MAX_SGE ? (uint32_t)max_sge : NVT_RDMA_MAX_SGE;
	/* Some devices (iWARP) read into fewer SGEs than they send from. */
	q->sge_rd = max_sge_rd > 0 && (uint32_t)max_sge_rd < q->sge_wr ? (uint32_t)max_sge_rd :
									 q->sge_wr;
	wrs_rd = (pieces + q->sge_rd - 1) / q->sge_rd;
	wrs_wr = (pieces + q->sge_wr - 1) / q->sge_wr;
	/* The WRITE chain of read data is posted with the SEND of its response. */
	q->wrs_per_slot = wrs_rd > wrs_wr + 1 ? wrs_rd : wrs_wr + 1;
	q->max_send_wr = q->nr_reqs * q->wrs_per_slot;
	return 0;
}

/* ---- posting work requests ---- */

/*
 * The owner is the only writer of the send counters: a plain load and a
 * store publish them (no locked add on the I/O path). Release, so that the
 * stall check, which reads sends_done first, never sees more completed
 * than posted.
 */
static void nvt_rdma_publish_sends(_Atomic uint64_t *counter, unsigned int n)
{
	if (n)
		atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
				      memory_order_release);
}

/* One signaled send-queue WR completed (or flushed). */
static void nvt_rdma_send_done(struct nvt_rdma_queue *q)
{
	q->posted_sends--;
	nvt_rdma_publish_sends(&q->sends_done, 1);
}

/* The RECV of capsule buffer @rv, in its own storage (it may wait to be posted). */
static struct ibv_recv_wr *nvt_rdma_recv_wr(struct ibv_mr *mr, struct nvt_rdma_recv *rv)
{
	struct ibv_recv_wr *wr = &rv->rwr;
	struct ibv_sge *sge = &rv->sge;

	sge->addr = (uintptr_t)rv->buf;
	sge->length = NVT_RDMA_CAPSULE;
	sge->lkey = mr->lkey;
	wr->wr_id = (uintptr_t)&rv->wr;
	wr->sg_list = sge;
	wr->num_sge = 1;
	wr->next = NULL;
	return wr;
}

/* Post @first and the RECVs chained to it. Return: 0 or -errno (those before the bad one are posted). */
static int nvt_rdma_post_recvs(struct nvt_rdma_queue *q, struct ibv_recv_wr *first)
{
	struct ibv_recv_wr *bad = NULL;
	int ret;

	/* ibv_post_recv returns a positive errno; a provider may leave @bad unset: none posted. */
	ret = ibv_post_recv(q->cm_id->qp, first, &bad);
	if (ret && !bad)
		bad = first;
	for (struct ibv_recv_wr *wr = first; wr && (!ret || wr != bad); wr = wr->next)
		q->posted_recvs++;
	return -ret;
}

/* Post one RECV now. */
static int nvt_rdma_post_recv(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	return nvt_rdma_post_recvs(q, nvt_rdma_recv_wr(q->recv_mr, rv));
}

/*
 * Post @first and the shared-queue RECVs chained to it. Those not posted
 * (from the one the provider refused on) are not lost: the SRQ outlives
 * any queue, so they wait at the head of the (device, poll group)'s
 * pending list for its next flush. Return: 0 or -errno.
 */
static int nvt_rdma_post_srq_recvs(struct nvt_rdma_dev *d, struct ibv_recv_wr *first)
{
	struct ibv_recv_wr *bad = NULL, *last;
	int ret;

	/* ibv_post_srq_recv returns a positive errno; a provider may leave @bad unset: none posted. */
	ret = ibv_post_srq_recv(d->srq, first, &bad);
	if (!ret)
		return 0;
	if (!bad)
		bad = first;
	for (last = bad; last->next; last = last->next)
		;
	last->next = d->srq_head;
	if (!d->srq_head)
		d->srq_tail = last;
	d->srq_head = bad;
	return -ret;
}

/*
 * A shared capsule buffer goes back to the shared receive queue: at once,
 * or with the iteration's others (@batch). It belongs to no queue, so a
 * queue that is going away gives back what it held too.
 */
static void nvt_rdma_srq_repost(struct nvt_rdma_dev *d, struct nvt_rdma_recv *rv, bool batch)
{
	struct ibv_recv_wr *wr = nvt_rdma_recv_wr(d->srq_mr, rv);
	int ret;

	rv->next = NULL;
	if (!batch) {
		ret = nvt_rdma_post_srq_recvs(d, wr);
		if (ret) {
			nvt_warn_ratelimited("%s: cannot repost a shared RECV: %s",
					     ibv_get_device_name(d->verbs->device), strerror(-ret));
			/* It waits on the pending list: tried again at the end of the iteration. */
			nvt_poll_group_add_flusher(d->pg, &d->flusher);
		}
		return;
	}
	if (d->srq_tail)
		d->srq_tail->next = wr;
	else
		d->srq_head = wr;
	d->srq_tail = wr;
	nvt_poll_group_add_flusher(d->pg, &d->flusher);
}

/* @q lets go of capsule buffer @rv unused: a shared one goes back; its own stays with the QP. */
static void nvt_rdma_recv_drop(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	if (rv->srq_dev)
		nvt_rdma_srq_repost(rv->srq_dev, rv, q->batch);
}

/* @q has WRs to post at the end of this iteration. */
static void nvt_rdma_queue_dirty(struct nvt_rdma_queue *q)
{
	if (q->dirty)
		return;
	q->dirty = true;
	q->dirty_next = q->dev->dirty;
	q->dev->dirty = q;
	nvt_poll_group_add_flusher(q->pg, &q->dev->flusher);
}

/* Give capsule buffer @rv back to the HCA: now, or with the iteration's other RECVs. */
static int nvt_rdma_queue_recv(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	struct ibv_recv_wr *wr;

	if (rv->srq_dev) {
		nvt_rdma_srq_repost(rv->srq_dev, rv, q->batch);
		return 0;
	}
	if (!q->batch)
		return nvt_rdma_post_recv(q, rv);
	wr = nvt_rdma_recv_wr(q->recv_mr, rv);
	if (q->recv_tail)
		q->recv_tail->next = wr;
	else
		q->recv_head = wr;
	q->recv_tail = wr;
	nvt_rdma_queue_dirty(q);
	return 0;
}

/*
 * Post a chain of @n send-queue WRs. The queue's budget makes room certain
 * (nvt_rdma_queue_size()); the check keeps that promise instead of relying
 * on the provider to refuse an overflow. Return: 0, or -errno with @posted
 * the WRs that made it in anyway: what those point at is the HCA's until
 * they complete or the QP is destroyed.
 */
static int nvt_rdma_post_send(struct nvt_rdma_queue *q, struct ibv_send_wr *first,
			      unsigned int n, unsigned int *posted)
{
	struct ibv_send_wr *bad = NULL;
	unsigned int signaled = 0;
	int ret;

	*posted = 0;
	if (q->sq_used + n > q->max_send_wr) {
		nvt_warn_ratelimited("qid %u: send queue full (%u + %u of %u WRs): refusing to post",
				     q->sq.qid, q->sq_used, n, q->max_send_wr);
		return -ENOSPC;
	}
	/* ibv_post_send returns a positive errno; @bad is the first WR not posted (unset: none). */
	ret = ibv_post_send(q->cm_id->qp, first, &bad);
	if (ret && !bad)
		bad = first;
	for (struct ibv_send_wr *wr = first; wr && (!ret || wr != bad); wr = wr->next) {
		(*posted)++;
		q->sq_used++;
		if (wr->send_flags & IBV_SEND_SIGNALED)
			signaled++;
	}
	q->posted_sends += signaled;
	nvt_rdma_publish_sends(&q->sends_posted, signaled);
	return -ret;
}

/* Slot @r's own WRs (wrs_per_slot) and SGEs (max_chunks + 2). */
static struct ibv_send_wr *nvt_rdma_slot_wrs(const struct nvt_rdma_queue *q,
					     const struct nvt_rdma_req *r)
{
	return q->slot_wrs + (size_t)(r - q->reqs) * q->wrs_per_slot;
}

static struct ibv_sge *nvt_rdma_slot_sges(const struct nvt_rdma_queue *q,
					  const struct nvt_rdma_req *r)
{
	return q->slot_sges + (size_t)(r - q->reqs) * (q->max_chunks + 2);
}

/*
 * Build the READ or WRITE chain of @r's data into its own WRs: one SGE per
 * chunk piece, as many per WR as the device takes, the host's range cut
 * in order. Of a READ chain only the last WR is signaled: send-queue
 * completions come in order, so its completion retires the ones before
 * it. A WRITE chain is not signaled at all: the SEND of the response
 * chained behind it retires it (and gives its chunks back), one
 * completion per command. Return: WRs built.
 */
static unsigned int nvt_rdma_build_data(struct nvt_rdma_queue *q, struct nvt_rdma_req *r,
					enum ibv_wr_opcode opcode)
{
	unsigned int per = opcode == IBV_WR_RDMA_READ ? q->sge_rd : q->sge_wr;
	unsigned int nr_sge = r->req.iov_cnt, n = 0;
	struct ibv_send_wr *wrs = nvt_rdma_slot_wrs(q, r);
	struct ibv_sge *sges = nvt_rdma_slot_sges(q, r);
	uint64_t remote = r->remote_addr;

	/* Only commands with data get here; a chain of nothing has no last WR to signal. */
	if (!nr_sge)
		return 0;
	for (unsigned int i = 0; i < nr_sge; i++) {
		sges[i].addr = (uintptr_t)r->iov[i].iov_base;
		sges[i].length = (uint32_t)r->iov[i].iov_len;
		sges[i].lkey = r->zc ? r->zc_lkey : q->pool->lkey;
	}
	for (unsigned int i = 0; i < nr_sge; i += per, n++) {
		struct ibv_send_wr *wr = &wrs[n];
		unsigned int k = nr_sge - i < per ? nr_sge - i : per;

		memset(wr, 0, sizeof(*wr));
		wr->wr_id = (uintptr_t)&r->chain_wr;
		wr->sg_list = &sges[i];
		wr->num_sge = (int)k;
		wr->opcode = opcode;
		wr->wr.rdma.remote_addr = remote;
		wr->wr.rdma.rkey = r->rkey;
		for (unsigned int j = 0; j < k; j++)
			remote += sges[i + j].length;
		if (n)
			wrs[n - 1].next = wr;
	}
	if (opcode == IBV_WR_RDMA_READ) {
		wrs[n - 1].wr_id = (uintptr_t)&r->data_wr;
		wrs[n - 1].send_flags = IBV_SEND_SIGNALED;
		r->data_wr.type = NVT_RDMA_WR_READ;
	}
	r->chain_wr.type = NVT_RDMA_WR_CHAIN;
	r->data_wrs = n;
	return n;
}

/* The slot a send-queue WR belongs to. */
static struct nvt_rdma_req *nvt_rdma_wr_req(uint64_t wr_id)
{
	struct nvt_rdma_wr *wr = (struct nvt_rdma_wr *)(uintptr_t)wr_id;

	switch (wr->type) {
	case NVT_RDMA_WR_SEND:
		return container_of(wr, struct nvt_rdma_req, send_wr);
	case NVT_RDMA_WR_CHAIN:
		return container_of(wr, struct nvt_rdma_req, chain_wr);
	default:
		return container_of(wr, struct nvt_rdma_req, data_wr);
	}
}

/* ---- request slots ---- */

/* Every slot move: the machine's check, and the count of commands the host has outstanding. */
static void nvt_rdma_req_move(struct nvt_rdma_req *r, enum nvt_rdma_req_state next)
{
	struct nvt_rdma_queue *q = r->queue;
	bool was = nvt_rdma_req_active(r->state);

	if (nvt_rdma_req_set_state(r, next))
		return;
	if (was && !nvt_rdma_req_active(next))
		q->nr_active--;
	else if (!was && nvt_rdma_req_active(next))
		q->nr_active++;
}

/* The command's chunks go back: only once the HCA is done with them. */
static void nvt_rdma_req_release(struct nvt_rdma_req *r)
{
	struct nvt_rdma_queue *q = r->queue;

	if (!r->nr_chunks)
		return;
	nvt_rdma_pool_put(q->pool, r->chunks, r->nr_chunks);
	q->chunks_held -= r->nr_chunks;
	r->nr_chunks = 0;
}

/* The command takes the chunks it needs. Return: false if the pool is short. */
static bool nvt_rdma_req_take(struct nvt_rdma_req *r)
{
	struct nvt_rdma_queue *q = r->queue;

	if (!nvt_rdma_pool_get(q->pool, r->chunks, r->need))
		return false;
	r->nr_chunks = r->need;
	q->chunks_held += r->need;
	return true;
}

/* The slot goes back to the free list, and what it held with it. */
static void nvt_rdma_req_put(struct nvt_rdma_req *r)
{
	struct nvt_rdma_queue *q = r->queue;

	nvt_rdma_req_release(r);
	nvt_rdma_req_move(r, NVT_RDMA_REQ_FREE);
	/* Still held only when no response reposted it: a shared one must go back. */
	if (r->recv)
		nvt_rdma_recv_drop(q, r->recv);
	r->recv = NULL;
	r->next = q->free_reqs;
	q->free_reqs = r;
}

static struct nvt_poll_group *nvt_rdma_main_pg(const struct nvt_rdma_queue *q)
{
	return q->rport->port->tgt->pg;
}

/* Ask the host to go away; teardown follows on the DISCONNECTED event. Owner thread only. */
static void nvt_rdma_queue_disconnect(struct nvt_rdma_queue *q)
{
	if (q->state == NVT_RDMA_Q_DEAD || q->disconnect_sent)
		return;
	q->disconnect_sent = true;
	q->state = NVT_RDMA_Q_DISCONNECTING;
	/* rdma_disconnect also moves the QP to the error state: posted work flushes. */
	rdma_disconnect(q->cm_id);
}

/*
 * A parsed command its queue will not run (the queue is going away, or the
 * host's data never came). It still leaves through the completion funnel:
 * the core must let go of it too, or a fused partner already executed
 * would wait for it for ever, its slot and chunks with it, past the
 * queue's memory. The queue is not LIVE (made so here if need be), so
 * queue_response sends nothing and returns the slot.
 */
static void nvt_rdma_req_drop(struct nvt_rdma_req *r, uint16_t status)
{
	nvt_rdma_queue_disconnect(r->queue);
	nvt_req_complete(&r->req, status);
}

/*
 * Send slot @r's chain of @n WRs (its own storage): now, or appended to
 * the queue's chain that goes out in one post at the end of the iteration.
 * Either way it is counted in sq_used from here, so the budget check is
 * the same. Return: as nvt_rdma_post_send(); a queued chain is 0.
 */
static int nvt_rdma_queue_send(struct nvt_rdma_queue *q, struct nvt_rdma_req *r, unsigned int n,
			       unsigned int *posted)
{
	struct ibv_send_wr *first = nvt_rdma_slot_wrs(q, r), *last = &first[n - 1];

	if (!q->batch)
		return nvt_rdma_post_send(q, first, n, posted);
	*posted = 0;
	if (q->sq_used + n > q->max_send_wr) {
		nvt_warn_ratelimited("qid %u: send queue full (%u + %u of %u WRs): refusing to post",
				     q->sq.qid, q->sq_used, n, q->max_send_wr);
		return -ENOSPC;
	}
	last->next = NULL;
	if (q->send_tail)
		q->send_tail->next = first;
	else
		q->send_head = first;
	q->send_tail = last;
	q->sq_used += n;
	nvt_rdma_queue_dirty(q);
	return 0;
}

static void nvt_rdma_pool_resume(struct nvt_rdma_pool *pool);
static void nvt_rdma_zc_done(struct nvt_rdma_req *r, bool ok);

/*
 * A batched post stopped at @bad: it and the WRs behind it never reached
 * the HCA. They leave sq_used; a slot none of whose WRs made it goes back
 * as if its own post had failed (a READ's command fails, a response's slot
 * is returned); one cut in the middle waits for the QP to go, since the
 * HCA has the first part. The queue is disconnected first, so what the
 * core completes meanwhile sends nothing.
 */
static void nvt_rdma_queue_unposted(struct nvt_rdma_queue *q, struct ibv_send_wr *bad)
{
	nvt_rdma_queue_disconnect(q);
	for (struct ibv_send_wr *wr = bad, *next; wr; wr = next) {
		struct nvt_rdma_req *r = nvt_rdma_wr_req(wr->wr_id);
		struct ibv_send_wr *chain = nvt_rdma_slot_wrs(q, r);
		unsigned int len = r->data_wrs + (r->state == NVT_RDMA_REQ_COMPLETING);
		unsigned int at = (unsigned int)(wr - chain);

		next = chain[len - 1].next;	/* the slot is reused below */
		q->sq_used -= len - at;
		if (at)
			continue;
		if (r->state == NVT_RDMA_REQ_XFER_H2C)
			nvt_rdma_req_drop(r, NVT_ST_DATA_XFER);
		else if (r->zc_posted)
			nvt_rdma_zc_done(r, false);	/* the core still has it: it fails */
		else
			nvt_rdma_req_put(r);
	}
}

/*
 * End of the iteration: @q's RECVs go back in one post, then its send
 * chains in one (one system call on rxe, whatever the length): RECVs
 * first, so that a host answered by these SENDs finds room for its next
 * capsule.
 */
static void nvt_rdma_queue_flush(struct nvt_rdma_queue *q)
{
	struct ibv_recv_wr *rfirst = q->recv_head;
	struct ibv_send_wr *first = q->send_head, *bad = NULL;
	unsigned int signaled = 0;
	int ret;

	q->recv_head = q->recv_tail = NULL;
	q->send_head = q->send_tail = NULL;
	if (rfirst) {
		ret = nvt_rdma_post_recvs(q, rfirst);
		if (ret) {
			nvt_warn_ratelimited("qid %u: cannot repost RECVs: %s", q->sq.qid,
					     strerror(-ret));
			nvt_rdma_queue_disconnect(q);
		}
	}
	if (!first)
		return;
	/* ibv_post_send returns a positive errno; @bad is the first WR not posted (unset: none). */
	ret = ibv_post_send(q->cm_id->qp, first, &bad);
	if (ret && !bad)
		bad = first;
	for (struct ibv_send_wr *wr = first; wr && (!ret || wr != bad); wr = wr->next)
		signaled += !!(wr->send_flags & IBV_SEND_SIGNALED);
	q->posted_sends += signaled;
	nvt_rdma_publish_sends(&q->sends_posted, signaled);
	if (!ret)
		return;
	nvt_warn_ratelimited("qid %u: cannot post %s: %s", q->sq.qid,
			     bad == first ? "a batch of work requests" : "the rest of a batch",
			     strerror(ret));
	nvt_rdma_queue_unposted(q, bad);
	if (q->pool->wait_head)
		nvt_rdma_pool_resume(q->pool);
}

/* The flusher of a (device, poll group): every queue that has work posts it. */
static void nvt_rdma_dev_flush(struct nvt_pg_flusher *fl)
{
	struct nvt_rdma_dev *d = container_of(fl, struct nvt_rdma_dev, flusher);
	struct nvt_rdma_queue *q;

	/* Shared RECVs first, as a queue's own: room for the capsules these responses let come. */
	if (d->srq_head) {
		struct ibv_recv_wr *first = d->srq_head;
		int ret;

		d->srq_head = d->srq_tail = NULL;
		ret = nvt_rdma_post_srq_recvs(d, first);
		if (ret)
			nvt_warn_ratelimited("%s: cannot repost shared RECVs: %s",
					     ibv_get_device_name(d->verbs->device), strerror(-ret));
	}
	/* A queue a failed post puts back on the list (a command resumed) is taken again. */
	while ((q = d->dirty)) {
		d->dirty = q->dirty_next;
		q->dirty = false;
		nvt_rdma_queue_flush(q);
	}
}

/* Teardown: what @q has not posted yet never will be; its slots are reclaimed with the rest. */
static void nvt_rdma_queue_undirty(struct nvt_rdma_queue *q)
{
	q->recv_head = q->recv_tail = NULL;
	q->send_head = q->send_tail = NULL;
	if (!q->dirty)
		return;
	for (struct nvt_rdma_queue **pp = &q->dev->dirty; *pp; pp = &(*pp)->dirty_next) {
		if (*pp == q) {
			*pp = q->dirty_next;
			break;
		}
	}
	q->dirty = false;
}

/* A parsed command holding the chunks it needs: fetch the host's data, or run it. */
static void nvt_rdma_req_go(struct nvt_rdma_req *r)
{
	struct nvt_rdma_queue *q = r->queue;
	unsigned int n, posted = 0;
	int ret;

	if (r->nr_chunks)
		nvt_rdma_req_layout(r, q->pool);
	if (!r->h2c) {
		nvt_rdma_req_move(r, NVT_RDMA_REQ_EXECUTING);
		nvt_req_execute(&r->req);
		return;
	}
	nvt_rdma_req_move(r, NVT_RDMA_REQ_XFER_H2C);
	n = nvt_rdma_build_data(q, r, IBV_WR_RDMA_READ);
	ret = n ? nvt_rdma_queue_send(q, r, n, &posted) : -EINVAL;
	if (!ret)
		return;
	nvt_warn_ratelimited("qid %u: cannot post RDMA READ: %s", q->sq.qid, strerror(-ret));
	/* What did get posted may still write into the chunks: then the slot waits for the QP to go. */
	if (!posted)
		nvt_rdma_req_drop(r, NVT_ST_DATA_XFER);
	else
		nvt_rdma_queue_disconnect(q);
}

/* How many chunks @q may hold now (nvt_rdma_pool_cap()). */
static uint32_t nvt_rdma_queue_cap(const struct nvt_rdma_queue *q)
{
	return nvt_rdma_pool_cap(q->pool, q->pool_connected, q->max_chunks);
}

/* ---- zero-copy writes ---- */

/* One of the two owners of @e lets go: the first deregisters, the last frees. */
static void nvt_rdma_zc_mr_end(struct nvt_rdma_zc_mr *e)
{
	if (!atomic_exchange(&e->dead, true) && e->mr)
		ibv_dereg_mr(e->mr);
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		free(e);
}

/* The namespace closes (control thread): none of its commands is left, none of its transfers. */
static void nvt_rdma_zc_mr_release(struct nvt_ram_user *u)
{
	nvt_rdma_zc_mr_end(container_of(u, struct nvt_rdma_zc_mr, user));
}

/* Owner (or the device's end): what the main loop made (dev->zc_made) onto dev->zc_mrs. */
static void nvt_rdma_zc_link_made(struct nvt_rdma_dev *d)
{
	for (struct nvt_rdma_zc_mr *e = atomic_exchange(&d->zc_made, NULL), *next; e; e = next) {
		next = e->next;
		e->next = d->zc_mrs;
		d->zc_mrs = e;
	}
}

/* Main loop: is @ns (nsid @nsid) published in some subsystem of @tgt? Compares pointers only. */
static bool nvt_rdma_ns_published(struct nvt_target *tgt, const struct nvt_ns *ns, uint32_t nsid)
{
	bool found = false;

	if (!nsid || nsid > NVT_MAX_NSID)
		return false;
	pthread_mutex_lock(&tgt->lock);
	for (unsigned int i = 0; i < tgt->nr_subsys && !found; i++)
		found = atomic_load(&tgt->subsys[i]->ns[nsid]) == ns;
	pthread_mutex_unlock(&tgt->lock);
	return found;
}

static void nvt_rdma_dev_free(struct nvt_rdma_dev *d);

/*
 * Main loop: register the namespace @d's owner asked for. It may have
 * been removed since (a reload runs here too, so it is either still
 * published and open, or gone): then nothing is made, and the pointer is
 * never dereferenced. A failure is remembered as an entry without MR, so
 * the namespace copies from then on without asking again.
 */
static void nvt_rdma_zc_req_fn(struct nvt_pg_msg *m)
{
	struct nvt_rdma_dev *d = container_of(m, struct nvt_rdma_dev, zc_req_msg);
	struct nvt_ns *ns = d->zc_req_ns;
	struct nvt_rdma_zc_mr *e;
	void *base;
	size_t len;

	if (d->zc_free_deferred) {
		atomic_store(&d->zc_req_pending, false);
		nvt_rdma_dev_free(d);
		return;
	}
	if (nvt_rdma_ns_published(d->tgt, ns, d->zc_req_nsid) && nvt_ram_region(ns, &base, &len) &&
	    (e = calloc(1, sizeof(*e)))) {
		e->ns = ns;
		e->user.release = nvt_rdma_zc_mr_release;
		atomic_init(&e->refs, 2);
		atomic_init(&e->dead, false);
		if (len <= NVT_RDMA_ZC_MAX_BYTES)
			e->mr = ibv_reg_mr(d->pd, base, len, IBV_ACCESS_LOCAL_WRITE);
		if (e->mr)
			nvt_info("%s nsid %u: %zu MiB registered on %s for zero-copy writes",
				 ns->subsys->nqn, ns->nsid, len >> 20,
				 ibv_get_device_name(d->verbs->device));
		else
			nvt_info("%s nsid %u: writes copy through the data pool (%s)", ns->subsys->nqn,
				 ns->nsid, len > NVT_RDMA_ZC_MAX_BYTES ? "larger than 1 GiB" :
				 "cannot register its memory");
		nvt_ram_attach(ns, &e->user);
		e->next = atomic_load(&d->zc_made);
		atomic_store(&d->zc_made, e);
	}
	/* Release: the owner that sees the request over sees what it made. */
	atomic_store(&d->zc_req_pending, false);
}

/*
 * Owner: the lkey over @ns's memory on @d. The first write to a namespace
 * asks the main loop to register it and copies; later ones find it.
 * Return: NULL if @ns is not a ram namespace without metadata, or its
 * memory is not (yet, or cannot be) registered.
 */
static struct nvt_rdma_zc_mr *nvt_rdma_zc_mr_get(struct nvt_rdma_dev *d, struct nvt_ns *ns)
{
	struct nvt_rdma_zc_mr *e, **pp = &d->zc_mrs;

	if (ns->be != &nvt_ram_backend_ops || ns->md_size)
		return NULL;
	/* A request is out: nothing new to link yet, and no second one. */
	if (atomic_load(&d->zc_req_pending))
		return NULL;
	nvt_rdma_zc_link_made(d);
	while ((e = *pp)) {
		/* Its namespace closed: the pointer may be a new namespace's already. */
		if (atomic_load(&e->dead)) {
			*pp = e->next;
			nvt_rdma_zc_mr_end(e);
			continue;
		}
		if (e->ns == ns)
			return e->mr ? e : NULL;
		pp = &e->next;
	}
	if (!d->tgt)
		return NULL;
	d->zc_req_ns = ns;
	d->zc_req_nsid = ns->nsid;
	d->zc_req_msg.fn = nvt_rdma_zc_req_fn;
	atomic_store(&d->zc_req_pending, true);
	nvt_poll_group_send(d->tgt->pg, &d->zc_req_msg);
	return NULL;
}

/*
 * Planned with host data to fetch: may it go straight into its ram
 * namespace's memory (nvt_rdma_zc_write())? Then it needs no chunks and
 * runs first; the backend hands it to nvt_rdma_zc_held() once it holds
 * its range, and the READ goes there.
 */
static void nvt_rdma_zc_try(struct nvt_rdma_queue *q, struct nvt_rdma_req *r)
{
	struct nvt_rdma_zc_mr *e;

	if (!q->zero_copy || !r->h2c || !q->dev || !q->dev->pd || !r->req.ns)
		return;
	e = nvt_rdma_zc_mr_get(q->dev, r->req.ns);
	if (e && nvt_rdma_zc_write(r, e->mr->addr, e->mr->length))
		r->zc_lkey = e->mr->lkey;
}

/*
 * The ram backend holds zero-copy write @bio (backend.h): its range is
 * ours, the host's data may land. A READ that fails part-way leaves part
 * of the new data in the blocks and the rest as it was: the write fails
 * (as Write Fault; the queue is disconnected, so the host mostly sees the
 * connection go), which NVMe allows for a failed write, whose blocks are
 * then undefined until rewritten.
 */
static void nvt_rdma_zc_held(struct nvt_bio *bio)
{
	struct nvt_req *req = container_of(bio, struct nvt_req, bio);
	struct nvt_rdma_req *r = container_of(req, struct nvt_rdma_req, req);
	struct nvt_rdma_queue *q = r->queue;
	unsigned int n, posted = 0;
	int ret;

	/* A queue that went while the bio waited for its range: nothing is fetched. */
	if (q->state != NVT_RDMA_Q_LIVE || !r->zc || r->zc_posted ||
	    r->state != NVT_RDMA_REQ_EXECUTING) {
		nvt_bio_backend_done(bio, -EIO);
		return;
	}
	n = nvt_rdma_build_data(q, r, IBV_WR_RDMA_READ);
	ret = n ? nvt_rdma_queue_send(q, r, n, &posted) : -EINVAL;
	if (!ret) {
		r->zc_posted = true;
		return;
	}
	nvt_warn_ratelimited("qid %u: cannot post RDMA READ: %s", q->sq.qid, strerror(-ret));
	nvt_rdma_queue_disconnect(q);
	/* What did get posted still writes into the blocks: its completion (a flush) ends the bio. */
	if (posted)
		r->zc_posted = true;
	else
		nvt_bio_backend_done(bio, -EIO);
}

/* The READ of zero-copy write @r is over (or never will be): the backend lets go of the bio. */
static void nvt_rdma_zc_done(struct nvt_rdma_req *r, bool ok)
{
	r->zc_posted = false;
	nvt_bio_backend_done(&r->req.bio, ok ? 0 : -EIO);
}

/* @r joins the pool's line; what it needs counts against its queue's cap from now on. */
static void nvt_rdma_pool_enqueue(struct nvt_rdma_pool *pool, struct nvt_rdma_req *r)
{
	r->next = NULL;
	if (pool->wait_tail)
		pool->wait_tail->next = r;
	else
		pool->wait_head = r;
	pool->wait_tail = r;
	pool->nr_waiting++;
	r->queue->chunks_queued += r->need;
}

/* Parsed: take the chunks it needs, or wait for them: at its queue's cap, or in the pool's line. */
static void nvt_rdma_req_start(struct nvt_rdma_req *r)
{
	struct nvt_rdma_queue *q = r->queue;
	struct nvt_rdma_pool *pool = q->pool;
	uint32_t cap;

	nvt_rdma_req_plan(r);
	nvt_rdma_zc_try(q, r);
	if (!r->need) {
		nvt_rdma_req_go(r);
		return;
	}
	cap = nvt_rdma_queue_cap(q);
	/*
	 * Pools hold the largest command of every listener, and a queue's cap
	 * its own (before Connect, a Connect's): this is a bug, not a host.
	 */
	if (r->need > q->max_chunks || r->need > pool->nr_chunks || r->need > cap) {
		nvt_warn_ratelimited("qid %u: a command needs %u data chunks, more than there are",
				     q->sq.qid, r->need);
		nvt_rdma_req_move(r, NVT_RDMA_REQ_EXECUTING);
		nvt_req_complete(&r->req, NVT_ST_INTERNAL);
		return;
	}
	/*
	 * Past its cap it waits behind its own queue's earlier commands, not in
	 * the pool's line: a queue whose host stalls holds up only itself. A
	 * fused Write is not capped: its Compare, executed, holds its chunks
	 * until the Write has run, so waiting for them would wait for ever.
	 */
	if (!(r->req.flags & NVT_REQ_FUSED_SECOND) &&
	    (q->capped_head || q->chunks_held + q->chunks_queued + r->need > cap)) {
		nvt_rdma_req_move(r, NVT_RDMA_REQ_NEED_BUFFER);
		r->next = NULL;
		if (q->capped_tail)
			q->capped_tail->next = r;
		else
			q->capped_head = r;
		q->capped_tail = r;
		pool->nr_capped++;
		return;
	}
	/* First come, first served: none overtakes a command already waiting, however small. */
	if (!pool->wait_head && nvt_rdma_req_take(r)) {
		nvt_rdma_req_go(r);
		return;
	}
	nvt_rdma_req_move(r, NVT_RDMA_REQ_NEED_BUFFER);
	nvt_rdma_pool_enqueue(pool, r);
	pool->nr_waits++;
}

/*
 * Chunks came back: start the waiting commands, oldest first, while the
 * oldest fits; one whose queue is going away leaves the line without
 * chunks. Runs only where no command of the pool is half-way through a
 * move (completion handlers, teardown), never from queue_response, which
 * runs inside the core.
 */
static void nvt_rdma_pool_resume(struct nvt_rdma_pool *pool)
{
	struct nvt_rdma_req *r;

	if (pool->resuming)
		return;
	pool->resuming = true;
	while ((r = pool->wait_head) &&
	       (r->queue->state != NVT_RDMA_Q_LIVE || r->need <= pool->nr_free)) {
		pool->wait_head = r->next;
		if (!pool->wait_head)
			pool->wait_tail = NULL;
		pool->nr_waiting--;
		r->next = NULL;
		r->queue->chunks_queued -= r->need;
		if (r->queue->state != NVT_RDMA_Q_LIVE) {
			nvt_rdma_req_drop(r, NVT_ST_ABORT_SQ);
			continue;
		}
		nvt_rdma_req_take(r);
		nvt_rdma_req_go(r);
	}
	pool->resuming = false;
}

/*
 * Some of @q's own chunks came back: its commands waiting at its cap join
 * the pool's line, oldest first, while they fit under it again. Where
 * nvt_rdma_pool_resume() may run, and followed by it.
 */
static void nvt_rdma_queue_uncap(struct nvt_rdma_queue *q)
{
	uint32_t cap = nvt_rdma_queue_cap(q);
	struct nvt_rdma_req *r;

	while (q->state == NVT_RDMA_Q_LIVE && (r = q->capped_head) &&
	       q->chunks_held + q->chunks_queued + r->need <= cap) {
		q->capped_head = r->next;
		if (!q->capped_head)
			q->capped_tail = NULL;
		nvt_rdma_pool_enqueue(q->pool, r);
	}
}

/*
 * Teardown: the queue's waiting commands leave the pool's line and its
 * own; they hold nothing the HCA has. Collected first, then dropped:
 * returning a slot reuses its ->next, and a drop completes nothing else
 * of the list (a fused partner that is waiting too is only marked).
 */
static void nvt_rdma_queue_unwait(struct nvt_rdma_queue *q)
{
	struct nvt_rdma_pool *pool = q->pool;
	struct nvt_rdma_req **pp = &pool->wait_head, *prev = NULL, *list, *r;

	list = q->capped_head;
	q->capped_head = q->capped_tail = NULL;
	while ((r = *pp)) {
		if (r->queue != q) {
			prev = r;
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (pool->wait_tail == r)
			pool->wait_tail = prev;
		pool->nr_waiting--;
		q->chunks_queued -= r->need;
		r->next = list;
		list = r;
	}
	while ((r = list)) {
		list = r->next;
		nvt_rdma_req_drop(r, NVT_ST_ABORT_SQ);
	}
}

/* Its first response after its Fabrics Connect: its full share of the pool; the main loop is told. */
static void nvt_rdma_queue_connected(struct nvt_rdma_queue *q)
{
	_Static_assert(sizeof(q->hostnqn) == sizeof(q->sq.ctrl->hostnqn), "host NQN sizes");

	if (q->sq.ctrl) {
		memcpy(q->hostnqn, q->sq.ctrl->hostnqn, sizeof(q->hostnqn));
		q->hostnqn[sizeof(q->hostnqn) - 1] = '\0';
	}
	q->pool_connected = true;
	if (q->pool_counted)
		q->pool->nr_connected++;
	atomic_store_explicit(&q->connected, true, memory_order_release);
}

static void nvt_rdma_queue_response(struct nvt_req *req)
{
	struct nvt_rdma_req *r = container_of(req, struct nvt_rdma_req, req);
	struct nvt_rdma_queue *q = r->queue;
	struct ibv_sge *cqe_sge;
	struct ibv_send_wr *send;
	unsigned int n = 0, posted = 0;
	bool write_data;
	int ret;

	/*
	 * A queue that is going away sends nothing: the slot is simply
	 * returned. Its verbs objects may be gone already (a command dropped
	 * after the QP): nothing of them is looked at before this.
	 */
	if (q->state != NVT_RDMA_Q_LIVE) {
		bool was_executing = r->state == NVT_RDMA_REQ_EXECUTING;
		bool had_chunks = r->nr_chunks > 0;

		nvt_rdma_req_put(r);
		/*
		 * A command a backend held at teardown: its chunks may let other
		 * queues' commands go, and the last one lets this queue go. Both
		 * after the batch (not inside the core), in one job queued once.
		 */
		if (q->state == NVT_RDMA_Q_DEAD && was_executing) {
			if (q->nr_executing)
				q->nr_executing--;
			if (!q->late_queued &&
			    ((had_chunks && q->pool->wait_head) || !q->nr_executing)) {
				q->late_queued = true;
				nvt_poll_group_defer(q->pg, &q->gone_work);
			}
		}
		return;
	}
	if (!q->pool_connected && q->sq.state == NVT_SQ_LIVE)
		nvt_rdma_queue_connected(q);
	/*
	 * Decided from the slot alone: the capsule goes back to the HCA next,
	 * and a new one may land in it at once. Host data is consumed by now,
	 * so a command that sends none back returns its chunks already.
	 */
	write_data = r->c2h && !le16toh(r->cqe->status);
	if (!write_data)
		nvt_rdma_req_release(r);
	/* A shared buffer may have gone back at parse already (nvt_rdma_handle_capsule()). */
	ret = r->recv ? nvt_rdma_queue_recv(q, r->recv) : 0;
	r->recv = NULL;
	if (ret) {
		nvt_warn_ratelimited("qid %u: cannot repost a RECV: %s", q->sq.qid, strerror(-ret));
		nvt_rdma_req_put(r);
		nvt_rdma_queue_disconnect(q);
		return;
	}

	cqe_sge = &nvt_rdma_slot_sges(q, r)[q->max_chunks + 1];
	cqe_sge->addr = (uintptr_t)r->cqe;
	cqe_sge->length = sizeof(*r->cqe);
	cqe_sge->lkey = q->cqe_mr->lkey;
	/* Read data goes out ahead of the CQE on the same send queue. */
	r->data_wrs = 0;
	if (write_data)
		n = nvt_rdma_build_data(q, r, IBV_WR_RDMA_WRITE);
	send = &nvt_rdma_slot_wrs(q, r)[n];
	memset(send, 0, sizeof(*send));
	send->wr_id = (uintptr_t)&r->send_wr;
	send->sg_list = cqe_sge;
	send->num_sge = 1;
	send->opcode = IBV_WR_SEND;
	send->send_flags = IBV_SEND_SIGNALED;
	/* Saves the host its own LOCAL_INV; optional, so only where it works. */
	if (r->invalidate && q->send_with_inv) {
		send->opcode = IBV_WR_SEND_WITH_INV;
		send->invalidate_rkey = r->rkey;
	}
	if (n)
		send[-1].next = send;
	r->send_wr.type = NVT_RDMA_WR_SEND;
	nvt_rdma_req_move(r, NVT_RDMA_REQ_COMPLETING);
	ret = nvt_rdma_queue_send(q, r, n + 1, &posted);
	if (!ret)
		return;
	nvt_warn_ratelimited("qid %u: cannot post the response: %s", q->sq.qid, strerror(-ret));
	/* A WRITE that made it in still reads the chunks: then the slot waits for the QP to go. */
	if (!posted)
		nvt_rdma_req_put(r);
	nvt_rdma_queue_disconnect(q);
}

/* ---- capsules ---- */

/* A capsule waits: before ESTABLISHED, or for a free slot. In arrival order. */
static void nvt_rdma_queue_park(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	rv->next = NULL;
	if (q->parked_tail)
		q->parked_tail->next = rv;
	else
		q->parked_head = rv;
	q->parked_tail = rv;
	q->nr_parked++;
}

/*
 * In-capsule data (a write of up to NVT_RDMA_ICDATA) moves from its shared
 * capsule buffer into a chunk of the pool, so the buffer can go back at
 * once: held until the response, 4 KiB writes a slow backend keeps would
 * hold one each, 128 per queue, and four such queues would empty a
 * 512-deep SRQ for every host of the poll group. The pool is the resource
 * built for holding data with a per-queue cap (nvt_rdma_pool_cap()), and
 * the command would take the same chunk had the host sent it keyed; the
 * copy (~0.2 us for 4 KiB) is far below a command's cost on the wire. It
 * takes a chunk only where one is free now, within the queue's cap and
 * with nobody in the pool's line (it never waits, and never overtakes);
 * otherwise the command reads its data in place, holding the buffer until
 * the response, as before. Return: whether the buffer is free to go back.
 */
static bool nvt_rdma_icdata_out(struct nvt_rdma_queue *q, struct nvt_rdma_req *r)
{
	struct nvt_rdma_pool *pool = q->pool;
	uint8_t *dst;

	if (!r->icd_iov.iov_len)
		return true;
	/* Only a command that takes no chunks of its own (PI scratch does): r->chunks is free. */
	nvt_rdma_req_plan(r);
	if (r->need || r->icd_iov.iov_len > NVT_RDMA_CHUNK || pool->wait_head || q->capped_head ||
	    q->chunks_held + q->chunks_queued + 1 > nvt_rdma_queue_cap(q) ||
	    !nvt_rdma_pool_get(pool, r->chunks, 1))
		return false;
	r->nr_chunks = 1;
	q->chunks_held++;
	dst = pool->base + (size_t)r->chunks[0] * NVT_RDMA_CHUNK;
	memcpy(dst, r->icd_iov.iov_base, r->icd_iov.iov_len);
	r->icd_iov.iov_base = dst;
	return true;
}

/* Give the capsule in @rv a slot and start its command. Return: false if no slot is free. */
static bool nvt_rdma_handle_capsule(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	struct nvt_rdma_req *r;
	uint16_t status;

	if (rv->byte_len < sizeof(struct nvt_sqe)) {
		nvt_warn_ratelimited("qid %u: %u-byte capsule is shorter than an SQE", q->sq.qid,
				     rv->byte_len);
		if (nvt_rdma_queue_recv(q, rv))
			nvt_rdma_queue_disconnect(q);
		return true;
	}
	r = q->free_reqs;
	if (!r)
		return false;
	q->free_reqs = r->next;
	r->next = NULL;
	/* Nothing of the slot's previous command survives into this one. */
	nvt_rdma_req_reset(r);
	memcpy(&r->sqe, rv->buf, sizeof(r->sqe));
	r->recv = rv;
	nvt_rdma_req_move(r, NVT_RDMA_REQ_NEW);

	if (!nvt_req_init(&r->req, &q->sq, &nvt_rdma_transport_ops))
		return true;	/* completed with an error: the response is on its way */
	status = nvt_rdma_map_sgl(r, NVT_RDMA_ICDATA, q->max_io, q->sq.qid != 0);
	if (status) {
		nvt_rdma_req_move(r, NVT_RDMA_REQ_EXECUTING);
		nvt_req_complete(&r->req, status);
		return true;
	}
	/*
	 * A shared capsule buffer is every queue's: once the SQE is copied
	 * (r->sqe) a command without in-capsule data needs nothing of it, so
	 * it goes back now rather than with the response. Otherwise an AER or
	 * a command a slow backend holds would keep it for as long, and a few
	 * hosts' outstanding AERs would empty the admin SRQ for every host.
	 * In-capsule data is moved out of it first (nvt_rdma_icdata_out()).
	 */
	if (rv->srq_dev && (!r->in_capsule || nvt_rdma_icdata_out(q, r))) {
		r->recv = NULL;
		nvt_rdma_srq_repost(rv->srq_dev, rv, q->batch);
	}
	nvt_rdma_req_start(r);
	return true;
}

/* Capsules parked for want of a slot (or ESTABLISHED) get one, in order. */
static void nvt_rdma_queue_run_parked(struct nvt_rdma_queue *q)
{
	while (q->state == NVT_RDMA_Q_LIVE && q->parked_head && q->free_reqs) {
		struct nvt_rdma_recv *rv = q->parked_head;

		q->parked_head = rv->next;
		if (!q->parked_head)
			q->parked_tail = NULL;
		q->nr_parked--;
		nvt_rdma_handle_capsule(q, rv);
	}
}

static void nvt_rdma_queue_capsule(struct nvt_rdma_queue *q, struct nvt_rdma_recv *rv)
{
	if (q->state != NVT_RDMA_Q_CONNECTING && q->state != NVT_RDMA_Q_LIVE) {
		nvt_rdma_recv_drop(q, rv);	/* going away: its own buffer goes with the QP */
		return;
	}
	/*
	 * The host may have at most its SQ size of commands unanswered; we
	 * count a command answered when its response is posted, before the
	 * host can know it, so this never fires on a host that keeps the rule.
	 */
	if (q->nr_active + q->nr_parked >= q->sq.size) {
		nvt_warn_ratelimited("qid %u: host overran its %u-entry queue", q->sq.qid,
				     q->sq.size);
		nvt_rdma_recv_drop(q, rv);
		nvt_rdma_queue_disconnect(q);
		return;
	}
	/*
	 * Responses cannot go out before ESTABLISHED. A capsule that finds every
	 * slot still waiting for its SEND completion (the host saw the response,
	 * we have not seen the ACK yet) waits for the next one.
	 */
	if (q->state == NVT_RDMA_Q_CONNECTING || q->parked_head || !nvt_rdma_handle_capsule(q, rv))
		nvt_rdma_queue_park(q, rv);
}

static void nvt_rdma_handle_wc(struct nvt_rdma_queue *q, struct ibv_wc *wc)
{
	struct nvt_rdma_wr *wr = (struct nvt_rdma_wr *)(uintptr_t)wc->wr_id;
	struct nvt_rdma_recv *rv;
	struct nvt_rdma_req *r;

	/*
	 * A completion of a QP destroyed already (left in the shared CQ, see
	 * nvt_rdma_queue_teardown()): its slots are reclaimed, its memory is
	 * still there until the CQ has been drained of it.
	 */
	if (q->state == NVT_RDMA_Q_DEAD) {
		if (wr->type == NVT_RDMA_WR_RECV)
			nvt_rdma_recv_drop(q, container_of(wr, struct nvt_rdma_recv, wr));
		return;
	}
	if (wc->status != IBV_WC_SUCCESS && wc->status != IBV_WC_WR_FLUSH_ERR)
		nvt_warn_ratelimited("qid %u: work completion error: %s", q->sq.qid,
				     ibv_wc_status_str(wc->status));

	switch (wr->type) {
	case NVT_RDMA_WR_RECV:
		rv = container_of(wr, struct nvt_rdma_recv, wr);
		if (!rv->srq_dev)
			q->posted_recvs--;
		if (wc->status != IBV_WC_SUCCESS) {
			nvt_rdma_recv_drop(q, rv);
			nvt_rdma_queue_disconnect(q);
			return;
		}
		rv->byte_len = wc->byte_len;
		nvt_rdma_queue_capsule(q, rv);
		break;
	case NVT_RDMA_WR_READ:
		r = container_of(wr, struct nvt_rdma_req, data_wr);
		nvt_rdma_send_done(q);
		q->sq_used -= r->data_wrs;
		if (r->zc) {
			if (wc->status != IBV_WC_SUCCESS)
				nvt_rdma_queue_disconnect(q);
			nvt_rdma_zc_done(r, wc->status == IBV_WC_SUCCESS && q->state == NVT_RDMA_Q_LIVE);
			break;
		}
		/* The data never came, or the queue is going: it fails, a fused partner with it. */
		if (wc->status != IBV_WC_SUCCESS || q->state != NVT_RDMA_Q_LIVE) {
			nvt_rdma_req_drop(r, wc->status == IBV_WC_SUCCESS ? NVT_ST_ABORT_SQ :
									NVT_ST_DATA_XFER);
			break;
		}
		nvt_rdma_req_move(r, NVT_RDMA_REQ_EXECUTING);
		nvt_req_execute(&r->req);
		break;
	case NVT_RDMA_WR_CHAIN:
		/* Unsignaled: seen only when it failed; the signaled WR behind it reports too. */
		nvt_rdma_queue_disconnect(q);
		break;
	case NVT_RDMA_WR_SEND:
		/* The WRITEs of read data ahead of it are done (or flushed) too: their chunks come back. */
		r = container_of(wr, struct nvt_rdma_req, send_wr);
		nvt_rdma_send_done(q);
		q->sq_used -= r->data_wrs + 1;
		nvt_rdma_req_put(r);
		if (wc->status != IBV_WC_SUCCESS)
			nvt_rdma_queue_disconnect(q);
		else
			nvt_rdma_queue_run_parked(q);
		break;
	}
	/* Its own chunks may be back (its capped commands move up), or others' (the line moves). */
	if (q->capped_head)
		nvt_rdma_queue_uncap(q);
	if (q->pool->wait_head)
		nvt_rdma_pool_resume(q->pool);
}

/* Owner: the queue of QP @qp_num on @d's shared receive queue, or NULL if not known (yet). */
static struct nvt_rdma_queue *nvt_rdma_qp_find(const struct nvt_rdma_dev *d, uint32_t qp_num)
{
	struct nvt_rdma_queue *q = d->qp_hash[qp_num % NVT_RDMA_QP_HASH];

	while (q && q->qp_num != qp_num)
		q = q->qp_next;
	return q;
}

/*
 * The queue a completion belongs to: its slot's or its own RECV's (wr_id,
 * never the QP), a shared RECV's by the QP it came in on. A capsule for a
 * queue the owner does not know yet waits on the orphan list (NULL).
 */
static struct nvt_rdma_queue *nvt_rdma_wc_queue(const struct ibv_wc *wc)
{
	struct nvt_rdma_wr *wr = (struct nvt_rdma_wr *)(uintptr_t)wc->wr_id;
	struct nvt_rdma_recv *rv;
	struct nvt_rdma_dev *d;
	struct nvt_rdma_queue *q;

	if (wr->type != NVT_RDMA_WR_RECV)
		return nvt_rdma_wr_req(wc->wr_id)->queue;
	rv = container_of(wr, struct nvt_rdma_recv, wr);
	d = rv->srq_dev;
	if (!d)
		return rv->queue;
	q = nvt_rdma_qp_find(d, wc->qp_num);
	if (q)
		return q;
	if (wc->status != IBV_WC_SUCCESS) {
		nvt_rdma_srq_repost(d, rv, true);
		return NULL;
	}
	/* Between rdma_accept and the owner hearing of the queue: it waits, in order. */
	rv->byte_len = wc->byte_len;
	rv->qp_num = wc->qp_num;
	rv->next = NULL;
	if (d->orphan_tail)
		d->orphan_tail->next = rv;
	else
		d->orphan_head = rv;
	d->orphan_tail = rv;
	d->nr_orphans++;
	return NULL;
}

/* Owner: capsules that came for @q before it was known reach it, in arrival order. */
static void nvt_rdma_queue_adopt_orphans(struct nvt_rdma_queue *q)
{
	struct nvt_rdma_dev *d = q->dev;
	struct nvt_rdma_recv **pp = &d->orphan_head, *prev = NULL, *rv, *list = NULL, **tail = &list;

	while ((rv = *pp)) {
		if (rv->qp_num != q->qp_num) {
			prev = rv;
			pp = &rv->next;
			continue;
		}
		*pp = rv->next;
		if (d->orphan_tail == rv)
			d->orphan_tail = prev;
		d->nr_orphans--;
		rv->next = NULL;
		*tail = rv;
		tail = &rv->next;
	}
	while ((rv = list)) {
		list = rv->next;
		nvt_rdma_queue_capsule(q, rv);
	}
}

/* Owner: @q's capsules on the shared receive queue find it from now on. */
static void nvt_rdma_queue_known(struct nvt_rdma_queue *q)
{
	struct nvt_rdma_queue **b;

	if (!q->srq || q->qp_known || q->state == NVT_RDMA_Q_DEAD)
		return;
	b = &q->dev->qp_hash[q->qp_num % NVT_RDMA_QP_HASH];
	q->qp_next = *b;
	*b = q;
	q->qp_known = true;
	if (q->dev->orphan_head)
		nvt_rdma_queue_adopt_orphans(q);
}

static void nvt_rdma_queue_known_msg(struct nvt_pg_msg *m)
{
	nvt_rdma_queue_known(container_of(m, struct nvt_rdma_queue, known_msg));
}

/* Owner, teardown: @q's QP is gone and the CQ drained of it: its number may be reused. */
static void nvt_rdma_queue_forget_qp(struct nvt_rdma_queue *q)
{
	if (!q->qp_known)
		return;
	for (struct nvt_rdma_queue **pp = &q->dev->qp_hash[q->qp_num % NVT_RDMA_QP_HASH]; *pp;
	     pp = &(*pp)->qp_next) {
		if (*pp == q) {
			*pp = q->qp_next;
			break;
		}
	}
	q->qp_known = false;
}

/*
 * Reap up to @batches batches of @cq, each completion to its own queue.
 * Return: completions handled.
 */
static unsigned int nvt_rdma_reap_cq(struct ibv_cq *cq, unsigned int batches)
{
	struct ibv_wc wc[NVT_RDMA_CQ_BATCH];
	unsigned int total = 0;
	int n;

	do {
		n = ibv_poll_cq(cq, NVT_RDMA_CQ_BATCH, wc);
		for (int i = 0; i < n; i++) {
			struct nvt_rdma_queue *q = nvt_rdma_wc_queue(&wc[i]);

			if (q)
				nvt_rdma_handle_wc(q, &wc[i]);
		}
		total += n > 0 ? (unsigned int)n : 0;
	} while (n == NVT_RDMA_CQ_BATCH && --batches);
	return total;
}

/* Reap everything @q's (shared) CQ holds, for whichever queue. Return: completions handled. */
static unsigned int nvt_rdma_poll_cq(struct nvt_rdma_queue *q)
{
	return nvt_rdma_reap_cq(q->cq, UINT32_MAX);
}

#define NVT_RDMA_SPIN_IDLE_NS	(50 * 1000)	/* keep polling this long after the last completion */

/*
 * The poll group's poller for the CQ of one device: while completions come
 * (and for NVT_RDMA_SPIN_IDLE_NS after the last) it polls on every loop
 * iteration and reports busy, so the loop does not sleep; polling costs no
 * system call, sleeping costs several (re-arm, epoll_wait, the channel's
 * read). Then it arms the CQ, polls once more to close the race with a
 * completion that came before the arming, and lets the loop sleep on the
 * channel. One poller for all queues of the poll group on the device: no
 * queue holds the loop while the others wait.
 */
static int nvt_rdma_dev_poll(struct nvt_pg_poller *p)
{
	struct nvt_rdma_dev *d = container_of(p, struct nvt_rdma_dev, poller);
	uint64_t now;
	int ret;

	if (!d->busy)
		return 0;
	if (nvt_rdma_reap_cq(d->cq, NVT_RDMA_CQ_BATCHES)) {
		d->idle_until = nvt_now_ns() + NVT_RDMA_SPIN_IDLE_NS;
		return 1;
	}
	now = nvt_now_ns();
	if (now < d->idle_until || !d->watching)
		return 1;	/* no channel watch: nothing would wake it, it never sleeps */
	/* ibv_req_notify_cq returns a positive errno. Unarmed, the event would never come. */
	ret = ibv_req_notify_cq(d->cq, 0);
	if (ret) {
		nvt_warn_ratelimited("%s: cannot arm the completion queue (%s): polling on",
				     ibv_get_device_name(d->verbs->device), strerror(ret));
		d->idle_until = now + NVT_RDMA_SPIN_IDLE_NS;
		return 1;
	}
	if (nvt_rdma_reap_cq(d->cq, NVT_RDMA_CQ_BATCHES)) {
		/* Armed already: the event that comes as well finds us busy, harmless. */
		d->idle_until = now + NVT_RDMA_SPIN_IDLE_NS;
		return 1;
	}
	d->busy = false;
	return 0;
}

/* The channel says a completion came after the CQ was armed: poll again. */
static void nvt_rdma_dev_cq_ready(struct nvt_pg_watch *w)
{
	struct nvt_rdma_dev *d = container_of(w, struct nvt_rdma_dev, cq_watch);
	struct ibv_cq *cq;
	void *ctx;

	/* Non-blocking; at most one event per arming, so each is acked at once. */
	if (ibv_get_cq_event(d->channel, &cq, &ctx) == 0)
		ibv_ack_cq_events(cq, 1);
	if (!d->nr_polled)
		return;		/* stale: its last queue went earlier in this batch */
	d->busy = true;
	d->idle_until = nvt_now_ns() + NVT_RDMA_SPIN_IDLE_NS;
}

/*
 * Owner: @q is LIVE: the device's CQ is polled for it (the first such
 * queue starts the watch and the poller; the owner thread is the only one
 * that may). Completions that came earlier wait in the CQ, the channel's
 * event with them: the first poll takes them. Devices of unit tests have
 * no channel: the tests hand completions in themselves.
 */
static void nvt_rdma_dev_poll_start(struct nvt_rdma_queue *q)
{
	struct nvt_rdma_dev *d = q->dev;

	if (!d || !d->channel || q->cq_polled)
		return;
	q->cq_polled = true;
	if (d->nr_polled++)
		return;
	d->cq_watch.fd = d->channel->fd;
	d->cq_watch.fn = nvt_rdma_dev_cq_ready;
	d->watching = !nvt_poll_group_add(q->pg, &d->cq_watch);
	if (!d->watching)
		nvt_err("%s: cannot watch the completion channel: polling only, never asleep",
			ibv_get_device_name(d->verbs->device));
	d->poller.fn = nvt_rdma_dev_poll;
	nvt_poll_group_add_poller(q->pg, &d->poller);
	d->busy = true;
	d->idle_until = nvt_now_ns() + NVT_RDMA_SPIN_IDLE_NS;
}

/* Owner: @q is going; with the last one the poller and the watch stop (the watch stays callable). */
static void nvt_rdma_dev_poll_stop(struct nvt_rdma_queue *q)
{
	struct nvt_rdma_dev *d = q->dev;

	if (!q->cq_polled)
		return;
	q->cq_polled = false;
	if (--d->nr_polled)
		return;
	nvt_poll_group_del_poller(q->pg, &d->poller);
	if (d->watching)
		nvt_poll_group_del(q->pg, &d->cq_watch);
	d->watching = false;
	d->busy = false;
}

/* ---- per (device, poll group) state ---- */

/* Chunks of the largest command any RDMA listener allows: M of nvt_rdma_pool_cap(). */
static uint32_t nvt_rdma_largest_cmd(const struct nvt_target *tgt)
{
	uint32_t m = 0;

	for (unsigned int i = 0; i < tgt->nr_ports; i++) {
		uint32_t need = nvt_rdma_max_chunks(nvt_rdma_port_max_io(&tgt->ports[i]));

		if (!tgt->ports[i].used || strcmp(tgt->ports[i].cfg.transport, "rdma"))
			continue;
		if (m < need)
			m = need;
	}
	return m;
}

/*
 * Chunks of the pool for @pg: the main loop serves only admin queues when
 * I/O poll groups exist, and needs less. Never fewer than the largest
 * command any listener allows, which would otherwise wait forever.
 */
static uint32_t nvt_rdma_pool_chunks(const struct nvt_target *tgt, const struct nvt_poll_group *pg)
{
	uint32_t nr = (pg == tgt->pg && tgt->nr_io_pgs ? NVT_RDMA_ADMIN_POOL_SIZE :
							  NVT_RDMA_POOL_SIZE) / NVT_RDMA_CHUNK;
	uint32_t need = nvt_rdma_largest_cmd(tgt);

	return nr < need ? need : nr;
}

static void nvt_rdma_dev_free(struct nvt_rdma_dev *d)
{
	/* A registration request is still queued for the main loop: it frees us when it runs. */
	if (atomic_load(&d->zc_req_pending)) {
		d->zc_free_deferred = true;
		return;
	}
	nvt_rdma_zc_link_made(d);	/* ended with the others below */
	/* No QP is on the CQ or the SRQ any more, and the owner stopped polling with its last queue. */
	if (d->srq)
		ibv_destroy_srq(d->srq);
	if (d->srq_mr)
		ibv_dereg_mr(d->srq_mr);
	free(d->srq_bufs);
	free(d->srq_recvs);
	if (d->cq)
		ibv_destroy_cq(d->cq);
	if (d->channel)
		ibv_destroy_comp_channel(d->channel);
	if (d->mr)
		ibv_dereg_mr(d->mr);
	while (d->zc_mrs) {
		struct nvt_rdma_zc_mr *e = d->zc_mrs;

		d->zc_mrs = e->next;
		nvt_rdma_zc_mr_end(e);
	}
	if (d->pd)
		ibv_dealloc_pd(d->pd);
	free(d->pool.base);
	nvt_rdma_pool_fini(&d->pool);
	free(d);
}

/* Capsule buffers and RECVs of a shared receive queue of @depth (memory only). Return: 0 or -ENOMEM. */
static int nvt_rdma_srq_alloc(struct nvt_rdma_dev *d, uint32_t depth)
{
	/* aligned_alloc wants a multiple of the alignment. */
	d->srq_bufs = aligned_alloc(4096, ((size_t)depth * NVT_RDMA_CAPSULE + 4095) & ~(size_t)4095);
	d->srq_recvs = calloc(depth, sizeof(*d->srq_recvs));
	if (!d->srq_bufs || !d->srq_recvs)
		return -ENOMEM;
	d->srq_depth = depth;
	for (uint32_t i = 0; i < depth; i++) {
		d->srq_recvs[i].wr.type = NVT_RDMA_WR_RECV;
		d->srq_recvs[i].srq_dev = d;
		d->srq_recvs[i].buf = d->srq_bufs + (size_t)i * NVT_RDMA_CAPSULE;
	}
	return 0;
}

/* Every capsule buffer of @d's shared receive queue to the HCA, in one post. Return: 0 or -errno. */
static int nvt_rdma_srq_post_all(struct nvt_rdma_dev *d)
{
	int ret;

	for (uint32_t i = 0; i < d->srq_depth; i++) {
		struct ibv_recv_wr *wr = nvt_rdma_recv_wr(d->srq_mr, &d->srq_recvs[i]);

		if (i)
			d->srq_recvs[i - 1].rwr.next = wr;
	}
	ret = d->srq_depth ? nvt_rdma_post_srq_recvs(d, &d->srq_recvs[0].rwr) : 0;
	/* The SRQ is given up then (no queue uses it yet): nothing of it may wait to be posted. */
	if (ret)
		d->srq_head = d->srq_tail = NULL;
	return ret;
}

/* Is another (device, poll group) of @verbs there already (then it logged the device's SRQ story)? */
static bool nvt_rdma_dev_seen(const struct ibv_context *verbs)
{
	for (const struct nvt_rdma_dev *o = nvt_rdma_devs; o; o = o->next)
		if (o->verbs == verbs)
			return true;
	return false;
}

/*
 * Main loop: the shared receive queue of @d with its @depth capsule
 * buffers, all posted. A device without one (max_srq 0), or one that will
 * not make it, leaves d->srq NULL: its queues keep their own receive
 * queues and buffers (logged once per device).
 */
static void nvt_rdma_dev_create_srq(struct nvt_rdma_dev *d, uint32_t depth,
				    const struct ibv_device_attr *attr)
{
	struct ibv_srq_init_attr init;
	const char *why;
	bool seen = nvt_rdma_dev_seen(d->verbs);

	if (attr->max_srq <= 0 || attr->max_srq_wr <= 0) {
		why = "the device has none (max_srq 0)";
		goto out_fallback;
	}
	if ((uint32_t)attr->max_srq_wr < depth)
		depth = (uint32_t)attr->max_srq_wr;
	/* Its RECVs complete on the shared CQ too: room for all of them. */
	if (depth > d->cq_entries / 2)
		depth = d->cq_entries / 2;
	why = "out of memory";
	if (nvt_rdma_srq_alloc(d, depth))
		goto out_free;
	why = "cannot register its buffers";
	d->srq_mr = ibv_reg_mr(d->pd, d->srq_bufs, (size_t)depth * NVT_RDMA_CAPSULE,
			       IBV_ACCESS_LOCAL_WRITE);
	if (!d->srq_mr)
		goto out_free;
	memset(&init, 0, sizeof(init));
	init.attr.max_wr = depth;
	init.attr.max_sge = 1;
	why = "ibv_create_srq failed";
	d->srq = ibv_create_srq(d->pd, &init);
	if (!d->srq)
		goto out_free;
	why = "cannot post its RECVs";
	if (nvt_rdma_srq_post_all(d))
		goto out_free;
	d->cq_reserved += depth;
	nvt_info("%s: shared receive queue of %u capsule buffers registered for a poll group",
		 ibv_get_device_name(d->verbs->device), depth);
	return;

out_free:
	if (d->srq)
		ibv_destroy_srq(d->srq);
	if (d->srq_mr)
		ibv_dereg_mr(d->srq_mr);
	free(d->srq_bufs);
	free(d->srq_recvs);
	d->srq = NULL;
	d->srq_mr = NULL;
	d->srq_bufs = NULL;
	d->srq_recvs = NULL;
	d->srq_depth = 0;
out_fallback:
	if (!seen)
		nvt_info("%s: no shared receive queue (%s): each queue has its own receive buffers",
			 ibv_get_device_name(d->verbs->device), why);
}

/* Entries of a (device, poll group)'s CQ: see NVT_RDMA_CQ_ENTRIES_MAX. */
static uint32_t nvt_rdma_cq_entries(const struct ibv_device_attr *attr)
{
	if (attr->max_cqe <= 0)
		return NVT_RDMA_CQ_ENTRIES;
	return (uint32_t)attr->max_cqe < NVT_RDMA_CQ_ENTRIES_MAX ? (uint32_t)attr->max_cqe :
								      NVT_RDMA_CQ_ENTRIES_MAX;
}

/*
 * Main loop: the CQ and completion channel of @d, armed; its owner starts
 * polling it with its first LIVE queue. Return: 0 or -errno.
 */
static int nvt_rdma_dev_create_cq(struct nvt_rdma_dev *d)
{
	struct ibv_device_attr attr;
	int ret;

	if (ibv_query_device(d->verbs, &attr))
		return errno ? -errno : -EIO;
	d->cq_entries = nvt_rdma_cq_entries(&attr);
	nvt_info("%s: a completion queue of %u entries for a poll group (max_cqe %d)",
		 ibv_get_device_name(d->verbs->device), d->cq_entries, attr.max_cqe);
	d->channel = ibv_create_comp_channel(d->verbs);
	if (!d->channel)
		return errno ? -errno : -ENOMEM;
	ret = nvt_set_nonblock(d->channel->fd);
	if (ret)
		return ret;
	d->cq = ibv_create_cq(d->verbs, (int)d->cq_entries, d, d->channel, 0);
	if (!d->cq)
		return errno ? -errno : -ENOMEM;
	ret = ibv_req_notify_cq(d->cq, 0);
	return -ret;
}

/*
 * Main loop: the PD and data pool of (@verbs, @pg), made with the first
 * queue that needs them, before that queue is handed to @pg. Return: 0 or -errno.
 */
static int nvt_rdma_dev_find_get(struct ibv_context *verbs, struct nvt_poll_group *pg,
				 struct nvt_target *tgt, struct nvt_rdma_dev **out)
{
	struct nvt_rdma_dev *d;
	uint32_t nr;
	size_t bytes;
	uint8_t *base;
	int ret;

	for (d = nvt_rdma_devs; d; d = d->next) {
		if (d->verbs == verbs && d->pg == pg && !d->removed) {
			d->refs++;
			*out = d;
			return 0;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	nr = nvt_rdma_pool_chunks(tgt, pg);
	bytes = (size_t)nr * NVT_RDMA_CHUNK;
	base = aligned_alloc(4096, bytes);
	if (!base) {
		free(d);
		return -ENOMEM;
	}
	ret = nvt_rdma_pool_init(&d->pool, base, nr);
	if (ret) {
		free(base);
		free(d);
		return ret;
	}
	d->verbs = verbs;
	d->pg = pg;
	d->tgt = tgt;
	d->flusher.fn = nvt_rdma_dev_flush;
	d->pd = ibv_alloc_pd(verbs);
	if (!d->pd)
		goto out_free;
	/* Local access only: we are always the one doing the RDMA READ or WRITE. */
	d->mr = ibv_reg_mr(d->pd, base, bytes, IBV_ACCESS_LOCAL_WRITE);
	if (!d->mr)
		goto out_free;
	d->pool.lkey = d->mr->lkey;
	d->pool.max_cmd = nvt_rdma_largest_cmd(tgt);
	ret = nvt_rdma_dev_create_cq(d);
	if (ret)
		goto out_free_ret;
	{
		struct ibv_device_attr attr;

		if (!ibv_query_device(verbs, &attr))
			nvt_rdma_dev_create_srq(d, pg == tgt->pg && tgt->nr_io_pgs ?
						   NVT_RDMA_ADMIN_SRQ_DEPTH : NVT_RDMA_SRQ_DEPTH,
						&attr);
	}
	d->refs = 1;
	d->next = nvt_rdma_devs;
	nvt_rdma_devs = d;
	nvt_info("%s: %zu MiB of data buffers registered for a poll group",
		 ibv_get_device_name(verbs->device), bytes >> 20);
	*out = d;
	return 0;

out_free:
	ret = errno ? -errno : -ENOMEM;
out_free_ret:
	nvt_rdma_dev_free(d);
	return ret;
}

/* Main loop: unlink and free @d, which no queue uses. */
static void nvt_rdma_dev_unlink_free(struct nvt_rdma_dev *d)
{
	for (struct nvt_rdma_dev **pp = &nvt_rdma_devs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	nvt_rdma_dev_free(d);
}

/* Main loop: a queue lets go of its pool; a removed device's goes with its last queue. */
static void nvt_rdma_dev_put(struct nvt_rdma_dev *d)
{
	if (--d->refs || !d->removed)
		return;
	nvt_rdma_dev_unlink_free(d);
}

/*
 * Main loop: the device behind @verbs is being removed. Its PDs and pools
 * must go before the last cm_id on it does: librdmacm closes a removed
 * device's context with that id, and what is left on a closed context can
 * no longer be freed. Pools no queue uses go now, the others with their
 * last queue (nvt_rdma_queue_gone() puts them before it destroys the
 * cm_id); none is handed to a new queue.
 */
static void nvt_rdma_devs_removed(struct ibv_context *verbs)
{
	struct nvt_rdma_dev *d = nvt_rdma_devs, *next;

	for (; d; d = next) {
		next = d->next;
		if (d->verbs != verbs)
			continue;
		d->removed = true;
		if (!d->refs)
			nvt_rdma_dev_unlink_free(d);
	}
}

/* Main loop: the last listener is gone; so are the queues, unless some host hung on. */
static void nvt_rdma_devs_destroy(void)
{
	struct nvt_rdma_dev **pp = &nvt_rdma_devs;

	while (*pp) {
		struct nvt_rdma_dev *d = *pp;

		if (d->refs) {
			nvt_err("%u queue(s) still use a data pool: it stays", d->refs);
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		nvt_rdma_dev_free(d);
	}
}

/* ---- queue life cycle ---- */

static void nvt_rdma_queue_free(struct nvt_rdma_queue *q)
{
	free(q->reqs);
	free(q->recvs);
	free(q->recv_bufs);
	free(q->cqes);
	free(q->chunk_ids);
	free(q->iovs);
	free(q->slot_wrs);
	free(q->slot_sges);
	free(q);
}

/* Release verbs resources (reverse order of creation); accepts partial queues. */
static void nvt_rdma_queue_destroy_verbs(struct nvt_rdma_queue *q)
{
	if (q->cm_id && q->cm_id->qp)
		rdma_destroy_qp(q->cm_id);
	if (q->cqe_mr)
		ibv_dereg_mr(q->cqe_mr);
	if (q->recv_mr)
		ibv_dereg_mr(q->recv_mr);
	q->cqe_mr = q->recv_mr = NULL;
}

/*
 * The QP is in the error state. Reap flush completions until every posted
 * signaled send-queue WR is back (bounded): those hold request slots and
 * chunks. Then the CQ once more whatever is left to wait for: capsules
 * that landed in shared buffers before the error and are not reaped yet
 * are the SRQ's buffers, and a provider that cleans a destroyed QP's CQEs
 * out of its CQ (mlx5: __mlx5_cq_clean() frees their SRQ WQEs) would lose
 * them for good, the SRQ one buffer smaller each time; reaped here, they
 * reach this queue (not DEAD yet) and go back. A queue's own RECVs go
 * with its QP (rxe does not flush them on error anyway). The CQ is
 * shared: the other queues' completions reaped meanwhile go to them, and
 * the poll group's flusher posts what they produced, as the poll loop's
 * would, rather than after the up to NVT_RDMA_DRAIN_MS this may take.
 */
static void nvt_rdma_queue_drain(struct nvt_rdma_queue *q)
{
	uint64_t deadline = nvt_now_ns() + NVT_RDMA_DRAIN_MS * 1000000ull;

	while (q->posted_sends && nvt_now_ns() < deadline) {
		unsigned int n = nvt_rdma_reap_cq(q->cq, 1);

		if (n)
			nvt_poll_group_run_flushers(q->pg);
		else
			usleep(1000);
	}
	if (q->cq && nvt_rdma_poll_cq(q))
		nvt_poll_group_run_flushers(q->pg);
	if (q->posted_sends)
		nvt_warn("qid %u: %u sends never flushed", q->sq.qid, q->posted_sends);
}

/*
 * The QP is destroyed: nothing of the queue is the HCA's any more, so every
 * slot the transport still holds (work that never flushed, a chain posted in
 * part) goes back with its chunks: answered ones straight away, one whose
 * data never came through the completion funnel (which may complete a
 * fused partner of it in the core as well). Slots in the core or a backend
 * are left to complete through queue_response; counted after the others
 * are back, so that partners freed by them are not.
 */
static void nvt_rdma_queue_reclaim(struct nvt_rdma_queue *q)
{
	unsigned int busy = 0;

	/* With the QP went whatever never completed. */
	q->sq_used = 0;
	q->posted_sends = 0;
	atomic_store_explicit(&q->sends_done, atomic_load_explicit(&q->sends_posted,
								   memory_order_relaxed),
			      memory_order_release);
	for (uint32_t i = 0; i < q->nr_reqs; i++) {
		struct nvt_rdma_req *r = &q->reqs[i];

		if (r->state == NVT_RDMA_REQ_XFER_H2C)
			nvt_rdma_req_drop(r, NVT_ST_ABORT_SQ);
		else if (r->zc_posted)
			nvt_rdma_zc_done(r, false);	/* its READ went with the QP */
		else if (r->state != NVT_RDMA_REQ_FREE && r->state != NVT_RDMA_REQ_EXECUTING)
			nvt_rdma_req_put(r);
	}
	for (uint32_t i = 0; i < q->nr_reqs; i++)
		busy += q->reqs[i].state == NVT_RDMA_REQ_EXECUTING;
	/* A backend still holds them: the queue's memory waits for their completions. */
	q->nr_executing = busy;
	if (busy)
		nvt_dbg("qid %u: %u command(s) still executing at teardown", q->sq.qid, busy);
}

static void nvt_rdma_queue_unlink(struct nvt_rdma_queue *q)
{
	for (struct nvt_rdma_queue **pp = &q->rport->queues; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			q->rport->nr_queues--;
			if (q->pending)
				q->rport->nr_pending--;
			q->pending = false;
			return;
		}
	}
}

/*
 * Main loop: the owner is done with the queue; the cm_id and the memory go.
 * Its pool first: destroying the cm_id may close a removed device's context.
 */
static void nvt_rdma_queue_gone(struct nvt_rdma_queue *q)
{
	if (q->dev) {
		q->dev->cq_reserved -= q->cq_share;
		nvt_rdma_dev_put(q->dev);
	}
	q->dev = NULL;
	rdma_destroy_id(q->cm_id);
	q->cm_id = NULL;
	nvt_rdma_queue_unlink(q);
	nvt_rdma_queue_free(q);
}

static void nvt_rdma_queue_gone_msg(struct nvt_pg_msg *m)
{
	nvt_rdma_queue_gone(container_of(m, struct nvt_rdma_queue, gone_msg));
}

/* Owner, after the batch in which the queue died: stale events for it have run. */
static void nvt_rdma_queue_gone_deferred(struct nvt_pg_deferred *d)
{
	struct nvt_rdma_queue *q = container_of(d, struct nvt_rdma_queue, gone_work);

	q->late_queued = false;
	/* Chunks that came back from commands a backend still held: the line moves. */
	if (q->pool->wait_head)
		nvt_rdma_pool_resume(q->pool);
	if (q->nr_executing)
		return;		/* the last one queues this again */
	if (q->pg == nvt_rdma_main_pg(q)) {
		nvt_rdma_queue_gone(q);
		return;
	}
	q->gone_msg.fn = nvt_rdma_queue_gone_msg;
	nvt_poll_group_send(nvt_rdma_main_pg(q), &q->gone_msg);
}

/*
 * The end of a queue, on its owner's thread: QP to error, the core lets go
 * of it (losing the admin queue ends the controller), commands waiting for
 * chunks or a slot dropped, flushed work is reaped, verbs resources
 * released, what the QP still held reclaimed, and other queues waiting for
 * chunks resumed; then the main loop destroys the cm_id and frees the memory.
 */
static void nvt_rdma_queue_teardown(struct nvt_rdma_queue *q)
{
	if (q->state == NVT_RDMA_Q_DEAD)
		return;
	nvt_dbg("qid %u: teardown", q->sq.qid);
	if (!q->disconnect_sent) {
		q->disconnect_sent = true;
		rdma_disconnect(q->cm_id);
	}
	/*
	 * Everything posted flushes now, whoever is at the other end: on iWARP
	 * rdma_disconnect only drains the send queue, and the drain below
	 * would hold this poll group for NVT_RDMA_DRAIN_MS.
	 */
	if (q->cm_id->qp) {
		struct ibv_qp_attr err = { .qp_state = IBV_QPS_ERR };

		ibv_modify_qp(q->cm_id->qp, &err, IBV_QP_STATE);
	}
	q->state = NVT_RDMA_Q_DISCONNECTING;
	nvt_sq_destroy(&q->sq);
	nvt_rdma_queue_unwait(q);
	/* It takes no more chunks: the others' shares grow. */
	if (q->pool_counted) {
		q->pool->nr_queues--;
		if (q->pool_connected)
			q->pool->nr_connected--;
		q->pool_counted = false;
	}
	/* Parked capsules are never run; shared buffers among them go back. */
	while (q->parked_head) {
		struct nvt_rdma_recv *rv = q->parked_head;

		q->parked_head = rv->next;
		nvt_rdma_recv_drop(q, rv);
	}
	q->parked_head = q->parked_tail = NULL;
	q->nr_parked = 0;
	nvt_rdma_queue_undirty(q);
	nvt_rdma_queue_drain(q);
	q->state = NVT_RDMA_Q_DEAD;
	nvt_rdma_dev_poll_stop(q);
	/*
	 * Its QP number is forgotten before the QP goes: once destroyed the
	 * number may come back at once with a new QP of the main loop's, whose
	 * first capsule (its Connect) must wait as an orphan for its own queue,
	 * not reach this dead one and be dropped (the host's connect would
	 * time out).
	 */
	nvt_rdma_queue_forget_qp(q);
	nvt_rdma_queue_destroy_verbs(q);
	/*
	 * Completions of the QP may still sit in the shared CQ, their wr_ids
	 * pointing into this queue: a provider need not remove them when the
	 * QP goes. rdma-core's mlx5 does (mlx5_destroy_qp() cleans the QP's
	 * CQEs out of its CQs, __mlx5_cq_clean()); rxe does not
	 * (rxe_destroy_qp() only destroys the kernel object, and the CQ ring
	 * is shared memory the kernel wrote before). Once the QP is destroyed
	 * no new one can come (rxe stops the QP's tasks first), so one pass
	 * over the CQ now takes every one left: the DEAD queue ignores its
	 * send completions, the others get theirs, and the memory can go
	 * afterwards.
	 */
	if (q->cq)
		nvt_rdma_poll_cq(q);
	nvt_rdma_queue_reclaim(q);
	if (q->pool->wait_head)
		nvt_rdma_pool_resume(q->pool);
	q->gone_work.fn = nvt_rdma_queue_gone_deferred;
	/* A zero-copy write failed in reclaim may have queued it already. */
	if (!q->nr_executing && !q->late_queued) {
		q->late_queued = true;
		nvt_poll_group_defer(q->pg, &q->gone_work);
	}
}

static void nvt_rdma_queue_teardown_msg(struct nvt_pg_msg *m)
{
	nvt_rdma_queue_teardown(container_of(m, struct nvt_rdma_queue, teardown_msg));
}

/* Main loop: hand the teardown to the queue's owner, once. */
static void nvt_rdma_queue_forward_teardown(struct nvt_rdma_queue *q)
{
	if (q->teardown_forwarded)
		return;
	q->teardown_forwarded = true;
	if (q->pg == nvt_rdma_main_pg(q)) {
		nvt_rdma_queue_teardown(q);
		return;
	}
	q->teardown_msg.fn = nvt_rdma_queue_teardown_msg;
	nvt_poll_group_send(q->pg, &q->teardown_msg);
}

/*
 * Main loop: ask the host to drop a queue that may belong to another
 * thread. Only the cm_id is touched: the owner cannot destroy the QP
 * meanwhile, because its teardown starts only when this loop forwards it.
 * The DISCONNECTED event brings the teardown.
 */
static void nvt_rdma_queue_request_disconnect(struct nvt_rdma_queue *q)
{
	if (q->teardown_forwarded)
		return;
	if (q->pg == nvt_rdma_main_pg(q))
		nvt_rdma_queue_disconnect(q);
	else
		rdma_disconnect(q->cm_id);
}

static void nvt_rdma_disconnect_sq(struct nvt_sq *sq, void *arg)
{
	nvt_rdma_queue_request_disconnect(container_of(sq, struct nvt_rdma_queue, sq));
}

static void nvt_rdma_delete_ctrl(struct nvt_ctrl *ctrl)
{
	nvt_ctrl_for_each_sq(ctrl, nvt_rdma_disconnect_sq, NULL);
}

/* Memory only, sized by nvt_rdma_queue_size(): everything the queue will ever use. */
static int nvt_rdma_queue_alloc_buffers(struct nvt_rdma_queue *q)
{
	size_t per_iov = (size_t)q->max_chunks + 1;

	/* With a shared receive queue, capsule buffers are its. */
	uint32_t own_recvs = q->srq ? 0 : q->recv_depth;

	q->recvs = calloc(own_recvs ? own_recvs : 1, sizeof(*q->recvs));
	q->reqs = calloc(q->nr_reqs, sizeof(*q->reqs));
	q->recv_bufs = calloc(own_recvs ? own_recvs : 1, NVT_RDMA_CAPSULE);
	q->cqes = calloc(q->nr_reqs, sizeof(*q->cqes));
	q->chunk_ids = calloc((size_t)q->nr_reqs * q->max_chunks, sizeof(*q->chunk_ids));
	q->iovs = calloc((size_t)q->nr_reqs * per_iov, sizeof(*q->iovs));
	q->slot_wrs = calloc((size_t)q->nr_reqs * q->wrs_per_slot, sizeof(*q->slot_wrs));
	q->slot_sges = calloc((size_t)q->nr_reqs * (q->max_chunks + 2), sizeof(*q->slot_sges));
	if (!q->recvs || !q->reqs || !q->recv_bufs || !q->cqes || !q->chunk_ids || !q->iovs ||
	    !q->slot_wrs || !q->slot_sges)
		return -ENOMEM;
	for (uint32_t i = 0; i < own_recvs; i++) {
		q->recvs[i].wr.type = NVT_RDMA_WR_RECV;
		q->recvs[i].queue = q;
		q->recvs[i].buf = q->recv_bufs + (size_t)i * NVT_RDMA_CAPSULE;
	}
	for (uint32_t i = q->nr_reqs; i-- > 0;) {
		struct nvt_rdma_req *r = &q->reqs[i];

		r->queue = q;
		r->cqe = &q->cqes[i];
		r->chunks = q->chunk_ids + (size_t)i * q->max_chunks;
		r->iov = q->iovs + (size_t)i * per_iov;
		r->state = NVT_RDMA_REQ_FREE;
		r->next = q->free_reqs;
		q->free_reqs = r;
	}
	return 0;
}

static int nvt_rdma_queue_create_verbs(struct nvt_rdma_queue *q)
{
	struct nvt_rdma_dev *d = q->dev;
	struct ibv_pd *pd = d->pd;
	struct ibv_qp_init_attr qp_attr;
	int ret;

	/*
	 * Room in the shared CQ for a completion of every WR: flushed ones
	 * complete even unsignaled. With a shared receive queue its RECVs are
	 * counted once, for the device (nvt_rdma_dev_create_srq()).
	 */
	q->cq_share = q->max_send_wr + (q->srq ? 0 : q->recv_depth);
	if (d->cq_reserved + q->cq_share > d->cq_entries) {
		/* Once per device and poll group: every queue after it is refused alike. */
		if (!d->cq_full_warned)
			nvt_warn("%s: qid %u refused (NO_RSC): the poll group's CQ of %u entries "
				 "(the device's max_cqe allows no more) has %u taken, it needs %u",
				 ibv_get_device_name(d->verbs->device), q->sq.qid, d->cq_entries,
				 d->cq_reserved, q->cq_share);
		d->cq_full_warned = true;
		q->cq_share = 0;
		return -ENOSPC;
	}
	d->cq_reserved += q->cq_share;
	q->cq = d->cq;

	if (!q->srq) {
		q->recv_mr = ibv_reg_mr(pd, q->recv_bufs, (size_t)q->recv_depth * NVT_RDMA_CAPSULE,
					IBV_ACCESS_LOCAL_WRITE);
		if (!q->recv_mr)
			return errno ? -errno : -ENOMEM;
	}
	q->cqe_mr = ibv_reg_mr(pd, q->cqes, q->nr_reqs * sizeof(*q->cqes), 0);
	if (!q->cqe_mr)
		return errno ? -errno : -ENOMEM;

	memset(&qp_attr, 0, sizeof(qp_attr));
	qp_attr.qp_context = q;
	qp_attr.send_cq = q->cq;
	qp_attr.recv_cq = q->cq;
	qp_attr.qp_type = IBV_QPT_RC;
	qp_attr.cap.max_send_wr = q->max_send_wr;
	qp_attr.cap.max_send_sge = q->sge_wr;
	if (q->srq) {
		qp_attr.srq = d->srq;
	} else {
		qp_attr.cap.max_recv_wr = q->recv_depth;
		qp_attr.cap.max_recv_sge = 1;
	}
	if (rdma_create_qp(q->cm_id, pd, &qp_attr))
		return -errno;
	q->qp_num = q->cm_id->qp->qp_num;
	for (uint32_t i = 0; i < (q->srq ? 0 : q->recv_depth); i++) {
		ret = nvt_rdma_post_recv(q, &q->recvs[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Soft-RoCE reports MEM_MGT_EXTENSIONS but does not carry SEND_WITH_INV
 * correctly; it and other software devices show vendor id 0 or FFFFFFh
 * (HOST-CONTRACT §4, SPDK's workaround). The host invalidates by itself then.
 */
static bool nvt_rdma_send_with_inv_works(const struct ibv_device_attr *dev)
{
	return (dev->device_cap_flags & IBV_DEVICE_MEM_MGT_EXTENSIONS) &&
	       dev->vendor_id != 0 && dev->vendor_id != 0xffffff;
}

static void nvt_rdma_reject(struct rdma_cm_id *id, uint16_t sts)
{
	struct nvt_rdma_cm_rej rej = { .recfmt = 0, .sts = htole16(sts) };

	rdma_reject(id, &rej, sizeof(rej));
}

/* Does the device carry the queue's send queue and completion queue? Return: 0 or -EINVAL. */
static int nvt_rdma_queue_fits(const struct nvt_rdma_queue *q, const struct ibv_device_attr *dev)
{
	if (q->max_send_wr > (uint32_t)dev->max_qp_wr || q->recv_depth > (uint32_t)dev->max_qp_wr ||
	    q->recv_depth + q->max_send_wr > (uint32_t)dev->max_cqe ||
	    q->recv_depth + q->max_send_wr > NVT_RDMA_CQ_ENTRIES_MAX) {
		nvt_warn_ratelimited("qid %u: the device cannot hold %u send WRs (max_qp_wr %d, max_cqe %d)",
				     q->sq.qid, q->max_send_wr, dev->max_qp_wr, dev->max_cqe);
		return -EINVAL;
	}
	return 0;
}

/* Main loop: queues Fabrics-connected since the last look stop counting as pending. */
static void nvt_rdma_port_count_pending(struct nvt_rdma_port *rp)
{
	for (struct nvt_rdma_queue *q = rp->queues; q; q = q->next) {
		if (q->pending && atomic_load_explicit(&q->connected, memory_order_acquire)) {
			q->pending = false;
			rp->nr_pending--;
		}
	}
}

/*
 * Main loop: may one more queue that is not Fabrics-connected be accepted
 * (NVT_RDMA_MAX_PENDING)? The count is brought up to date only when it
 * says no, so a flood costs a walk of the list per request, and a host's
 * burst of CONNECT_REQUESTs none.
 */
static bool nvt_rdma_port_may_accept(struct nvt_rdma_port *rp)
{
	if (rp->nr_pending < NVT_RDMA_MAX_PENDING)
		return true;
	nvt_rdma_port_count_pending(rp);
	if (rp->nr_pending < NVT_RDMA_MAX_PENDING)
		return true;
	nvt_warn_ratelimited("listener %s:%u: %u queues accepted and not yet Fabrics-connected: rejecting a connect request",
			     rp->port->cfg.address, rp->port->cfg.port, rp->nr_pending);
	return false;
}

/* CONNECT_REQUEST: validate, build the queue, accept. Return: true if @id must be destroyed. */
static bool nvt_rdma_handle_connect(struct nvt_rdma_port *rp, struct rdma_cm_event *ev)
{
	struct rdma_cm_id *id = ev->id;
	struct nvt_rdma_cm_params params;
	struct nvt_rdma_cm_rep rep;
	struct rdma_conn_param accept;
	struct ibv_device_attr dev;
	struct nvt_rdma_queue *q;
	int sts, ret;

	sts = nvt_rdma_parse_cm_req(ev->param.conn.private_data,
				    ev->param.conn.private_data_len, &params);
	if (sts) {
		nvt_warn_ratelimited("rejecting a connect request: private data status %d", sts);
		nvt_rdma_reject(id, (uint16_t)sts);
		return true;
	}
	if (!nvt_rdma_port_may_accept(rp)) {
		nvt_rdma_reject(id, NVT_RDMA_CM_NO_RSC);
		return true;
	}
	if (ibv_query_device(id->verbs, &dev)) {
		nvt_warn_ratelimited("rejecting a connect request: cannot query the device: %s",
				     strerror(errno));
		nvt_rdma_reject(id, NVT_RDMA_CM_NO_RSC);
		return true;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		nvt_warn_ratelimited("rejecting a connect request: out of memory");
		nvt_rdma_reject(id, NVT_RDMA_CM_NO_RSC);
		return true;
	}
	q->rport = rp;
	q->cm_id = id;
	q->state = NVT_RDMA_Q_CONNECTING;
	q->recv_depth = params.recv_depth;
	q->nr_reqs = params.recv_depth;
	q->max_io = nvt_rdma_port_max_io(rp->port);
	q->pg = nvt_target_io_pg(rp->port->tgt, params.qid);
	q->send_with_inv = nvt_rdma_send_with_inv_works(&dev);
	q->batch = rp->port->cfg.batch_posts;
	q->zero_copy = rp->port->cfg.zero_copy;
	q->accepted_ns = nvt_now_ns();
	atomic_init(&q->connected, false);
	id->context = q;
	nvt_sq_init(&q->sq, rp->port->tgt, &nvt_rdma_transport_ops, rp->port, q->pg, params.qid,
		    (uint16_t)params.sq_size);

	ret = nvt_rdma_queue_size(q, dev.max_sge, dev.max_sge_rd);
	if (!ret)
		ret = nvt_rdma_queue_fits(q, &dev);
	if (!ret)
		ret = nvt_rdma_dev_find_get(id->verbs, q->pg, rp->port->tgt, &q->dev);
	if (!ret) {
		q->pool = &q->dev->pool;
		q->srq = q->dev->srq != NULL;
		ret = nvt_rdma_queue_alloc_buffers(q);
	}
	if (!ret)
		ret = nvt_rdma_queue_create_verbs(q);
	if (ret) {
		nvt_warn_ratelimited("qid %u: cannot create the queue: %s", params.qid,
				     strerror(-ret));
		goto out_reject;
	}

	memset(&rep, 0, sizeof(rep));
	rep.crqsize = htole16((uint16_t)q->recv_depth);
	memset(&accept, 0, sizeof(accept));
	accept.private_data = &rep;
	accept.private_data_len = sizeof(rep);
	accept.rnr_retry_count = 7;
	accept.flow_control = 1;
	/* Our RDMA READs are bounded by what the host lets us have outstanding. */
	accept.initiator_depth = ev->param.conn.initiator_depth < dev.max_qp_init_rd_atom ?
				 ev->param.conn.initiator_depth : (uint8_t)dev.max_qp_init_rd_atom;
	accept.responder_resources = ev->param.conn.responder_resources < dev.max_qp_rd_atom ?
				     ev->param.conn.responder_resources : (uint8_t)dev.max_qp_rd_atom;
	if (rdma_accept(id, &accept)) {
		nvt_warn_ratelimited("qid %u: rdma_accept: %s", params.qid, strerror(errno));
		goto out_destroy;
	}
	q->next = rp->queues;
	rp->queues = q;
	rp->nr_queues++;
	q->pending = true;
	rp->nr_pending++;
	/*
	 * From here the host may send capsules; on a shared receive queue they
	 * wait (orphans) until the owner knows the queue by its QP number.
	 * Sent before anything else of the queue can be (ESTABLISHED,
	 * teardown): messages run in order.
	 */
	if (q->srq) {
		q->known_msg.fn = nvt_rdma_queue_known_msg;
		if (q->pg == nvt_rdma_main_pg(q))
			nvt_rdma_queue_known(q);
		else
			nvt_poll_group_send(q->pg, &q->known_msg);
	}
	nvt_dbg("qid %u: accepted, sq %u, recv %u, %u SGEs per WR, %u send WRs", params.qid,
		params.sq_size, q->recv_depth, q->sge_wr, q->max_send_wr);
	return false;

out_reject:
	nvt_rdma_reject(id, NVT_RDMA_CM_NO_RSC);
out_destroy:
	/*
	 * The QP never left INIT/RTR for the host's side: its RECVs do not
	 * complete when it is destroyed (no flush outside the error state), so
	 * the shared CQ holds nothing of this queue.
	 */
	q->state = NVT_RDMA_Q_DEAD;
	nvt_rdma_queue_destroy_verbs(q);
	id->context = NULL;
	if (q->dev) {
		q->dev->cq_reserved -= q->cq_share;
		nvt_rdma_dev_put(q->dev);
	}
	nvt_rdma_queue_free(q);
	return true;
}

static void nvt_rdma_queue_established_msg(struct nvt_pg_msg *m);

/* Main loop: ESTABLISHED reaches the queue's owner. */
static void nvt_rdma_queue_forward_established(struct nvt_rdma_queue *q)
{
	if (q->teardown_forwarded)
		return;
	q->established_msg.fn = nvt_rdma_queue_established_msg;
	if (q->pg == nvt_rdma_main_pg(q))
		q->established_msg.fn(&q->established_msg);
	else
		nvt_poll_group_send(q->pg, &q->established_msg);
}

/*
 * Owner, at ESTABLISHED (the QP is in RTS): the RNR timer our NAKs tell
 * the host, instead of the CM's 655 ms (see NVT_RDMA_SRQ_DEPTH). A device
 * that refuses keeps serving with the long one: logged once.
 */
static void nvt_rdma_queue_set_rnr_timer(struct nvt_rdma_queue *q)
{
	static atomic_bool warned;
	struct ibv_qp_attr attr = { .min_rnr_timer = NVT_RDMA_MIN_RNR_TIMER };
	int ret;

	if (!q->cm_id || !q->cm_id->qp)
		return;
	/* ibv_modify_qp returns a positive errno. */
	ret = ibv_modify_qp(q->cm_id->qp, &attr, IBV_QP_MIN_RNR_TIMER);
	if (ret && !atomic_exchange(&warned, true))
		nvt_warn("qid %u: cannot set the RNR NAK timer (%s): a host finding no RECV waits 655 ms",
			 q->sq.qid, strerror(ret));
}

static void nvt_rdma_queue_established(struct nvt_rdma_queue *q)
{
	if (q->state != NVT_RDMA_Q_CONNECTING)
		return;
	q->state = NVT_RDMA_Q_LIVE;
	nvt_rdma_queue_set_rnr_timer(q);
	nvt_rdma_dev_poll_start(q);
	/* From now on it may take chunks: it has a share of the pool. */
	if (!q->pool_counted) {
		q->pool_counted = true;
		q->pool->nr_queues++;
	}
	nvt_rdma_queue_run_parked(q);
}

static void nvt_rdma_queue_established_msg(struct nvt_pg_msg *m)
{
	nvt_rdma_queue_established(container_of(m, struct nvt_rdma_queue, established_msg));
}

/*
 * Main loop: a host that opened a queue but never sent a Fabrics Connect on
 * it holds a QP, its buffers and a slot of ours for nothing. It is asked to
 * leave NVT_RDMA_CONNECT_MS after we accepted, and torn down without it
 * after twice that. Return: the queues asked or torn down now.
 */
static unsigned int nvt_rdma_port_check_connects(struct nvt_rdma_port *rp, uint64_t now)
{
	const uint64_t limit = NVT_RDMA_CONNECT_MS * 1000000ull;
	unsigned int n = 0;

	for (struct nvt_rdma_queue *q = rp->queues, *next; q; q = next) {
		uint64_t age = now - q->accepted_ns;

		next = q->next;
		if (q->teardown_forwarded || atomic_load_explicit(&q->connected, memory_order_relaxed) ||
		    now < q->accepted_ns || age < limit)
			continue;
		if (!q->connect_late) {
			q->connect_late = true;
			nvt_warn_ratelimited("listener %s:%u qid %u: no Fabrics Connect %u s after the connection: dropping it",
					     rp->port->cfg.address, rp->port->cfg.port, q->sq.qid,
					     NVT_RDMA_CONNECT_MS / 1000);
			nvt_rdma_queue_request_disconnect(q);
			n++;
		} else if (age >= 2 * limit) {
			nvt_warn_ratelimited("listener %s:%u qid %u: host did not let go: tearing the queue down",
					     rp->port->cfg.address, rp->port->cfg.port, q->sq.qid);
			nvt_rdma_queue_forward_teardown(q);
			n++;
		}
	}
	return n;
}

/*
 * Main loop: a queue whose send queue has signaled work outstanding and
 * has completed none of it since the first look that saw so, for
 * NVT_RDMA_SEND_STALL_MS, is dropped: disconnected and torn down without
 * waiting for the host. Send queues complete in order, so this is its
 * oldest outstanding WR not completing for that long (give or take a
 * tick, never less). The owner publishes two counters (sends_posted,
 * sends_done); all the time keeping is here, none on the I/O path.
 * Return: the queues dropped now.
 */
static unsigned int nvt_rdma_port_check_stalls(struct nvt_rdma_port *rp, uint64_t now)
{
	const uint64_t limit = NVT_RDMA_SEND_STALL_MS * 1000000ull;
	unsigned int n = 0;

	for (struct nvt_rdma_queue *q = rp->queues, *next; q; q = next) {
		uint64_t done, posted;
		const char *host;

		next = q->next;
		if (q->teardown_forwarded)
			continue;
		/* done first: its release store follows every post it counts. */
		done = atomic_load_explicit(&q->sends_done, memory_order_acquire);
		posted = atomic_load_explicit(&q->sends_posted, memory_order_relaxed);
		if (posted == done || done != q->stall_done) {
			/* Idle, or it moved since the last look. */
			q->stall_done = done;
			q->stall_seen = false;
			continue;
		}
		if (!q->stall_seen) {
			q->stall_seen = true;
			q->stall_since = now;
			continue;
		}
		if (now < q->stall_since || now - q->stall_since < limit)
			continue;
		host = atomic_load_explicit(&q->connected, memory_order_acquire) ? q->hostnqn :
										  "(not connected)";
		nvt_warn_ratelimited("listener %s:%u qid %u host %s: %llu send WRs outstanding, none completed for %u s: dropping the queue",
				     rp->port->cfg.address, rp->port->cfg.port, q->sq.qid, host,
				     (unsigned long long)(posted - done), NVT_RDMA_SEND_STALL_MS / 1000);
		nvt_rdma_queue_forward_teardown(q);
		n++;
	}
	return n;
}

static void nvt_rdma_port_tick(struct nvt_pg_watch *w)
{
	struct nvt_rdma_port *rp = container_of(w, struct nvt_rdma_port, tick_watch);
	uint64_t ticks, now;

	if (read(w->fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	now = nvt_now_ns();
	nvt_rdma_port_count_pending(rp);
	nvt_rdma_port_check_connects(rp, now);
	nvt_rdma_port_check_stalls(rp, now);
}

static void nvt_rdma_cm_ready(struct nvt_pg_watch *w)
{
	struct nvt_rdma_port *rp = container_of(w, struct nvt_rdma_port, cm_watch);
	struct rdma_cm_event *ev;

	while (rdma_get_cm_event(rp->channel, &ev) == 0) {
		struct nvt_rdma_queue *q = ev->id != rp->listen_id ? ev->id->context : NULL;
		struct nvt_rdma_queue *teardown = NULL;
		struct rdma_cm_id *destroy = NULL;

		nvt_dbg("cm event %s", rdma_event_str(ev->event));
		switch (ev->event) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			if (nvt_rdma_handle_connect(rp, ev))
				destroy = ev->id;
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			if (q)
				nvt_rdma_queue_forward_established(q);
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_REJECTED:
			if (ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL && ev->id->verbs)
				nvt_rdma_devs_removed(ev->id->verbs);
			if (q)
				teardown = q;
			else if (ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL) {
				nvt_err("listener %s:%u: RDMA device removed",
					rp->port->cfg.address, rp->port->cfg.port);
			}
			break;
		default:
			break;
		}
		/* Every event is acknowledged before its id may be destroyed. */
		rdma_ack_cm_event(ev);
		if (destroy)
			rdma_destroy_id(destroy);
		if (teardown)
			nvt_rdma_queue_forward_teardown(teardown);
	}
}

/* ---- listeners ---- */

static int nvt_rdma_sockaddr(const struct nvt_listener_cfg *cfg, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (cfg->family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(cfg->port);
		return inet_pton(AF_INET6, cfg->address, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	in->sin_family = AF_INET;
	in->sin_port = htons(cfg->port);
	return inet_pton(AF_INET, cfg->address, &in->sin_addr) == 1 ? 0 : -EINVAL;
}

static void nvt_rdma_port_free(struct nvt_rdma_port *rp)
{
	if (rp->tick_watch.fn)
		nvt_poll_group_del(rp->port->tgt->pg, &rp->tick_watch);
	if (rp->tick_watch.fd >= 0)
		close(rp->tick_watch.fd);
	if (rp->cm_watch.fn)
		nvt_poll_group_del(rp->port->tgt->pg, &rp->cm_watch);
	if (rp->listen_id)
		rdma_destroy_id(rp->listen_id);
	if (rp->channel)
		rdma_destroy_event_channel(rp->channel);
	free(rp);
}

static bool nvt_rdma_have_device(void)
{
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);

	if (list)
		ibv_free_device_list(list);
	return n > 0;
}

/* The main loop's look at queues that never got a Fabrics Connect. Return: 0 or -errno. */
static int nvt_rdma_port_start_tick(struct nvt_rdma_port *rp)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = NVT_RDMA_TICK_MS / 1000,
				 .tv_nsec = (NVT_RDMA_TICK_MS % 1000) * 1000000L },
		.it_value = { .tv_sec = NVT_RDMA_TICK_MS / 1000,
			      .tv_nsec = (NVT_RDMA_TICK_MS % 1000) * 1000000L },
	};
	int ret;

	rp->tick_watch.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (rp->tick_watch.fd < 0)
		return -errno;
	if (timerfd_settime(rp->tick_watch.fd, 0, &its, NULL))
		return -errno;
	rp->tick_watch.fn = nvt_rdma_port_tick;
	ret = nvt_poll_group_add(rp->port->tgt->pg, &rp->tick_watch);
	if (ret)
		rp->tick_watch.fn = NULL;
	return ret;
}

static int nvt_rdma_listen(struct nvt_port *port)
{
	struct sockaddr_storage ss;
	struct nvt_rdma_port *rp;
	int ret;

	nvt_ram_set_in_place(nvt_rdma_zc_held);
	if (!nvt_rdma_have_device()) {
		nvt_warn("listener %s:%u: this machine has no RDMA device; for soft-RoCE on a "
			 "NIC: modprobe rdma_rxe && rdma link add rxe0 type rxe netdev <ifname>",
			 port->cfg.address, port->cfg.port);
		return -ENODEV;
	}
	ret = nvt_rdma_sockaddr(&port->cfg, &ss);
	if (ret)
		return ret;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->port = port;
	rp->tick_watch.fd = -1;
	rp->channel = rdma_create_event_channel();
	if (!rp->channel) {
		ret = -errno;
		goto out_free;
	}
	ret = nvt_set_nonblock(rp->channel->fd);
	if (ret)
		goto out_free;
	if (rdma_create_id(rp->channel, &rp->listen_id, rp, RDMA_PS_TCP)) {
		ret = -errno;
		goto out_free;
	}
	if (rdma_bind_addr(rp->listen_id, (struct sockaddr *)&ss) ||
	    rdma_listen(rp->listen_id, NVT_RDMA_BACKLOG)) {
		ret = -errno;
		goto out_free;
	}
	rp->cm_watch.fd = rp->channel->fd;
	rp->cm_watch.fn = nvt_rdma_cm_ready;
	ret = nvt_poll_group_add(port->tgt->pg, &rp->cm_watch);
	if (ret) {
		rp->cm_watch.fn = NULL;
		goto out_free;
	}
	ret = nvt_rdma_port_start_tick(rp);
	if (ret)
		goto out_free;
	port->priv = rp;
	nvt_rdma_nr_ports++;
	return 0;

out_free:
	nvt_rdma_port_free(rp);
	return ret;
}

/* Main loop: run events and messages until the port has no queues, or time is up. */
static void nvt_rdma_port_wait_queues(struct nvt_rdma_port *rp, unsigned int ms)
{
	uint64_t deadline = nvt_now_ns() + ms * 1000000ull;

	while (rp->nr_queues && nvt_now_ns() < deadline)
		nvt_poll_group_poll(rp->port->tgt->pg, 100);
}

static void nvt_rdma_stop_listen(struct nvt_port *port)
{
	struct nvt_rdma_port *rp = port->priv;

	if (!rp)
		return;
	/* No new hosts; ask the connected ones to leave and wait for them. */
	rdma_destroy_id(rp->listen_id);
	rp->listen_id = NULL;
	for (struct nvt_rdma_queue *q = rp->queues; q; q = q->next)
		nvt_rdma_queue_request_disconnect(q);
	nvt_rdma_port_wait_queues(rp, NVT_RDMA_STOP_MS);
	/* Hosts that never answered: tear their queues down without them. */
	for (struct nvt_rdma_queue *q = rp->queues; q; q = q->next) {
		nvt_warn("qid %u: host did not disconnect in time", q->sq.qid);
		nvt_rdma_queue_forward_teardown(q);
	}
	nvt_rdma_port_wait_queues(rp, NVT_RDMA_DRAIN_MS);
	if (rp->nr_queues) {
		/* Their memory stays: freeing it under a stuck owner would be worse. */
		nvt_err("%u queue(s) still busy at shutdown", rp->nr_queues);
	} else {
		nvt_rdma_port_free(rp);
		port->priv = NULL;
	}
	/* The data pools outlive single queues (registering 64 MiB is not free); they go last. */
	if (!--nvt_rdma_nr_ports)
		nvt_rdma_devs_destroy();
}
