/* SPDX-License-Identifier: BSD-3-Clause */
/* The target core's objects and seams: target, port, subsystem, namespace, controller, queue, request, and the transport and backend ops tables. */
#ifndef NVT_TARGET_H
#define NVT_TARGET_H

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvt/bio.h"
#include "nvt/config.h"
#include "nvt/pi.h"
#include "nvt/range_lock.h"
#include "nvt/stats.h"
#include "nvt/wire.h"

struct nvt_req;
struct nvt_sq;
struct nvt_ctrl;
struct nvt_ns;
struct nvt_port;
struct nvt_target;
struct nvt_vhost_ctrl;
struct nvt_auth_sq;
struct nvt_auth_subsys;
struct nvt_auth_host;

#define NVT_VS			0x00020000u	/* NVMe 2.0 */
#define NVT_MAX_QUEUE_SIZE	1024		/* CAP.MQES + 1 */
#define NVT_AQ_DEPTH		32		/* the admin queue depth Linux hosts use */
#define NVT_MAX_IO_QUEUES	NVT_MAX_IO_QUEUES_LIMIT	/* per controller, at most */
#define NVT_AERL		4		/* async event requests held per controller */
#define NVT_ERRLOG_ENTRIES	64		/* error log page ring */
#define NVT_MAX_CHANGED_NS	1024		/* changed namespace list (log 04h) */
#define NVT_KAS_100MS		10		/* keep-alive granularity: 1 s */
#define NVT_NO_ERROR_LOC	0xffff
#define NVT_CNTLID_MIN		1
#define NVT_CNTLID_MAX		0xffef		/* NVMe-oF: FFF0h..FFFFh are reserved */
#define NVT_FW_REV		"0.1"
/* PI scratch per request: 16-byte tuples for every 512-byte block of the largest transfer. */
#define NVT_MD_BUF_LEN(max_data)	((max_data) / 512 * 16)

/* Transport capability flags. */
#define NVT_TR_KEYED_SGL	(1u << 0)	/* data by keyed SGL (RDMA) */
#define NVT_TR_INCAPSULE	(1u << 1)	/* in-capsule data with offset SGLs (SGLS.SAOS) */

/**
 * struct nvt_transport_ops - one transport (loop, rdma); the core calls only these.
 */
struct nvt_transport_ops {
	const char *name;			/* config name: "rdma", "loop" */
	uint8_t trtype;				/* NVMF_TRTYPE_* for discovery entries */
	unsigned int flags;			/* NVT_TR_* */
	uint32_t max_data_len;			/* largest data transfer: MDTS */
	uint32_t icdata_len;			/* in-capsule data bytes: IOCCSZ */
	uint16_t max_queue_size;		/* deepest queue it accepts: CAP.MQES + 1 */
	int (*listen)(struct nvt_port *port);	/* start accepting; -errno */
	void (*stop_listen)(struct nvt_port *port); /* stop accepting new hosts */
	void (*queue_response)(struct nvt_req *req); /* send the CQE (and read data); the only way out */
	void (*delete_ctrl)(struct nvt_ctrl *ctrl); /* tear down every queue of @ctrl (keep-alive expiry, shutdown) */
};

/* Per-request flags. */
#define NVT_REQ_COMPLETED	(1u << 0)	/* went through nvt_req_complete(); catches double completion */
#define NVT_REQ_XFER_LONGER_OK	(1u << 2)	/* the host may describe more data than is used (DSM: Linux sends a page) */
#define NVT_REQ_FUSED_FIRST	(1u << 3)	/* the Compare of a fused Compare and Write */
#define NVT_REQ_FUSED_SECOND	(1u << 4)	/* the Write of a fused Compare and Write */
#define NVT_REQ_FUSED_READY	(1u << 5)	/* executed: its data is here, waiting for its partner */
#define NVT_REQ_FUSED_ORPHAN	(1u << 6)	/* its partner never came or failed: complete with fused_status when executed */
#define NVT_REQ_STAT_SQ		(1u << 7)	/* counted in the queue's depth (nvt_req_init) */
#define NVT_REQ_STAT_NS		(1u << 8)	/* counted in its namespace channel's depth */
#define NVT_REQ_NS_READER	(1u << 9)	/* counted in its subsystem's namespace readers (nvt_req_init) */
#define NVT_ACWU		256		/* blocks a fused Compare and Write may cover */

/**
 * struct nvt_req - one command in flight. Embedded in the transport's
 * per-slot struct (preallocated per queue); the core never allocates one.
 */
struct nvt_req {
	struct nvt_sqe *cmd;			/* the SQE, in the transport's capsule buffer */
	struct nvt_cqe *cqe;			/* the response, in the transport's buffer */
	struct nvt_sq *sq;
	struct nvt_ns *ns;			/* set by parse for namespace commands */
	const struct nvt_transport_ops *ops;
	void (*execute)(struct nvt_req *req);	/* set by parse */
	struct iovec *iov;			/* data buffers, set by the transport */
	unsigned int iov_cnt;
	struct iovec *md_iov;			/* separate metadata, for backends that store it */
	unsigned int md_iov_cnt;
	void *md_buf;				/* per-slot scratch for PI the target inserts or strips */
	uint32_t md_buf_len;			/* NVT_MD_BUF_LEN, from the transport */
	struct iovec md_buf_iov;		/* md_iov points here when md_buf is used */
	uint32_t transfer_len;			/* bytes the host's SGL describes */
	uint32_t data_len;			/* bytes the command moves, set by parse */
	uint32_t md_len;			/* PI scratch the command needs (set by parse); the transport
						 * may point md_iov at that much before execute, else md_buf is used */
	uint32_t flags;				/* NVT_REQ_* */
	uint16_t error_loc;			/* offsetof() the failing SQE field, for log 01h */
	uint64_t error_slba;			/* the failing LBA, for log 01h */
	struct nvt_bio bio;			/* what a namespace command asks of the namespace layer */
	uint8_t copy_fmt;			/* copy: descriptor format 0 or 1 */
	bool dsm_deallocate;			/* DSM: AD set (other attributes are hints) */
	uint32_t flush_nsid;			/* flush to every namespace: the last nsid flushed */
	struct nvt_subsys *flush_subsys;	/* flush to every namespace: whose */
	struct nvt_req *fused_peer;		/* the other half of a fused pair */
	uint16_t fused_status;			/* a fused half's completion, decided by its partner */
	union {
		struct nvt_caw caw;		/* the first half of a fused pair runs the pair with it */
		struct nvt_ns_fence resv_fence;	/* Preempt and Abort waits with it */
	};
	uint64_t stat_t0;			/* arrival (poll group clock), for the latency histograms */
	struct nvt_ns_chan *stat_chan;		/* NVT_REQ_STAT_NS: the channel counted in */
	uint16_t ns_reader;			/* NVT_REQ_NS_READER: epoch << 15 | counter index */
	struct nvt_subsys *ns_subsys;		/* NVT_REQ_NS_READER: counted there (outlives its controller) */
};

/* Queue states. */
enum nvt_sq_state {
	NVT_SQ_CONNECTING = 0,	/* transport up, Fabrics Connect not yet done */
	NVT_SQ_LIVE,		/* installed in a controller */
	NVT_SQ_DISCONNECTED,	/* Disconnect command or controller gone */
};

/**
 * struct nvt_sq - the core's half of one queue pair; embedded in the
 * transport's queue and owned by exactly one thread.
 */
struct nvt_sq {
	struct nvt_target *tgt;
	struct nvt_ctrl *ctrl;			/* NULL until Connect succeeds */
	struct nvt_port *port;			/* where the host came in (NULL for loop) */
	const struct nvt_transport_ops *ops;
	enum nvt_sq_state state;
	uint16_t qid;
	uint16_t size;				/* entries (SQSIZE + 1) */
	uint16_t sqhd;
	bool sqflow_disabled;			/* CATTR: report SQHD FFFFh */
	struct nvt_poll_group *pg;		/* the thread the queue runs on: its namespace channels */
	struct nvt_req *fused_first;		/* a fused Compare waiting for its Write */
	struct nvt_auth_sq *auth;		/* DH-HMAC-CHAP exchange; NULL: the queue needs none */
	bool auth_ok;				/* authenticated (only read when @auth is set) */
	/* I/O queues: every command; written by this queue's thread only, read by the control thread. */
	struct nvt_io_stats stats;
};

enum nvt_subsys_type {
	NVT_SUBSYS_NVM,		/* serves namespaces */
	NVT_SUBSYS_DISCOVERY,	/* serves log page 70h */
};

struct nvt_subsys {
	struct nvt_target *tgt;
	enum nvt_subsys_type type;
	/*
	 * The target's table holds one, each controller one (creation to
	 * free), a Connect one while it runs: a subsystem a reload removed
	 * is freed by whoever lets go of it last.
	 */
	atomic_int refs;
	bool removed;				/* unpublished by a reload; under tgt->lock */
	char nqn[NVT_NQN_MAX + 1];
	char serial[NVT_SERIAL_MAX + 1];
	char model[NVT_MODEL_MAX + 1];
	bool allow_any_host;
	struct nvt_auth_subsys *auth;		/* host keys, fixed while it lives; NULL: none */
	char (*hosts)[NVT_NQN_MAX + 1];
	unsigned int nr_hosts;
	/*
	 * By nsid; NULL = inactive. A reload publishes new ones (with their
	 * channels made first) and unpublishes removed ones: a request may
	 * hold what it read here only while counted in @ns_readers
	 * (nvt_req_init to nvt_req_complete), which the removal waits out.
	 */
	struct nvt_ns *_Atomic ns[NVT_MAX_NSID + 1];
	/*
	 * Requests that may hold a namespace of this subsystem, by epoch and
	 * poll group slot (the last: queues without one). A removal flips the
	 * epoch after unpublishing, then waits for the old epoch's counters
	 * to reach 0: newer requests count in the other and cannot keep it
	 * waiting. A line each: every slot's thread writes its own.
	 */
	struct nvt_ns_readers {
		_Atomic unsigned long n;
	} __attribute__((aligned(64))) ns_readers[2][NVT_MAX_PG_SLOTS + 1];
	_Atomic unsigned int ns_epoch;
	uint32_t nr_ns;
	struct nvt_ctrl *ctrls;			/* list under tgt->lock */
	unsigned int nr_ctrls;			/* in @ctrls, under tgt->lock */
	unsigned int max_ctrls;			/* refuse Connects beyond this many */
	uint16_t max_io_queues;			/* per controller: CAP on qid */
	uint16_t next_cntlid;
	struct nvt_resv_notify resv_notify;	/* reservation events, I/O threads to the main loop */
};

/* Asynchronous event types held for delivery (bit per type in ctrl->aen_pending; bit i is row i of ctrl.c's nvt_aen_table). */
#define NVT_AEN_NS_CHANGED	(1u << 0)	/* notice 00h, log 04h */
#define NVT_AEN_DISC_CHANGED	(1u << 1)	/* notice F0h, log 70h */
#define NVT_AEN_RESV		(1u << 2)	/* I/O command specific, info 00h, log 80h */
#define NVT_AEN_ANA_CHANGED	(1u << 3)	/* notice 03h, log 0Ch */

#define NVT_RESV_LOG_ENTRIES	16		/* Reservation Notification log queue per controller */

/**
 * struct nvt_ctrl - one controller: created by an admin-queue Connect,
 * freed when its last queue and its subsystem reference are gone.
 */
struct nvt_ctrl {
	struct nvt_subsys *subsys;
	struct nvt_ctrl *next;			/* in subsys->ctrls */
	const struct nvt_transport_ops *ops;
	struct nvt_port *port;
	uint16_t cntlid;
	char hostnqn[NVT_NQN_MAX + 1];
	uint8_t hostid[16];
	const struct nvt_auth_host *auth_host;	/* its keys in subsys->auth; NULL: no authentication */
	atomic_int refs;			/* subsys list + each installed queue */
	atomic_bool dead;			/* keep-alive expired or being torn down */

	uint64_t cap;
	uint32_t cc;
	_Atomic uint32_t csts;			/* written by the admin queue's thread, read by I/O threads */

	uint32_t kato_ms;			/* 0: no keep-alive */
	atomic_uint_fast64_t ka_deadline_ns;

	struct nvt_sq *sqs[NVT_MAX_IO_QUEUES + 1];	/* by qid */
	uint16_t max_qid;

	uint32_t aen_enabled;			/* Set Features 0Bh */
	uint32_t aen_pending;			/* NVT_AEN_* waiting for an AER or a log read */
	uint32_t aen_masked;			/* NVT_AEN_* reported, not yet cleared by a log read */
	struct nvt_req *aer[NVT_AERL];		/* held Asynchronous Event Requests */
	unsigned int nr_aer;
	pthread_mutex_t lock;			/* control path: AERs, events, the sqs table */

	uint8_t host_behavior[512];		/* Set Features 16h, as the host sent it */

	/*
	 * Reservation Notification log (80h), under @lock: @resv_log_nr
	 * entries from @resv_log_head, the oldest first. @resv_lpc counts
	 * every notification, those lost to a full queue too: the host sees
	 * the gap in Log Page Count (NVMe 2.0, Reservation Notification log page).
	 */
	struct nvme_resv_notification_log resv_log[NVT_RESV_LOG_ENTRIES];
	unsigned int resv_log_head, resv_log_nr;
	uint64_t resv_lpc;
	uint8_t resv_mask[NVT_MAX_NSID + 1];	/* Set Features 82h by nsid: bit n masks log type n; under @lock */

	uint32_t changed_ns[NVT_MAX_CHANGED_NS];
	unsigned int nr_changed_ns;		/* > NVT_MAX_CHANGED_NS means overflow */

	/* Written by any queue's thread on a failed command, read by Get Log Page 01h. */
	struct nvme_error_log_page errlog[NVT_ERRLOG_ENTRIES];
	atomic_uint_fast64_t err_count;
	atomic_flag errlog_lock;		/* a 64-byte copy in or out; never a mutex on I/O threads */
};

/*
 * Listener slots of a target: its ports never move nor are reused while it
 * runs (a reload adds into a fresh slot), so the queues and controllers that
 * came in through a removed one keep a valid pointer until they are gone.
 */
#define NVT_MAX_PORTS	256

/* A listener: one configured address of one transport. */
struct nvt_port {
	struct nvt_target *tgt;
	uint16_t portid;
	struct nvt_listener_cfg cfg;
	const struct nvt_transport_ops *ops;
	void *priv;				/* the transport's listening state */
	bool listening;
	bool used;				/* configured (a reload clears it on removal), under tgt->lock */
};

/**
 * struct nvt_target - everything one nvtd serves. Control-path changes
 * (controllers coming and going) take @lock; the I/O path never does.
 */
struct nvt_target {
	pthread_mutex_t lock;
	/*
	 * Serialises namespaces added or removed with poll groups attached or
	 * detached (each makes or drops channels); taken before @lock, never
	 * on a poll group's thread, so it may be held while groups answer.
	 */
	pthread_mutex_t ns_lock;
	struct nvt_subsys **subsys;
	unsigned int nr_subsys;
	struct nvt_subsys *discovery;		/* NULL if not served */
	struct nvt_port *ports;			/* NVT_MAX_PORTS slots; skip those not used */
	unsigned int nr_ports;			/* slots taken, under @lock (the main loop adds) */
	atomic_uint_fast64_t disc_genctr;
	struct nvt_poll_group *pg;		/* main loop: CM events, admin queues, keep-alive */
	struct nvt_poll_group **io_pgs;		/* I/O poll groups, each on its own thread */
	unsigned int nr_io_pgs;
	unsigned int max_ctrls_per_host;	/* over every subsystem, under @lock */
	struct nvt_poll_group *pg_slots[NVT_MAX_PG_SLOTS];	/* groups serving I/O, under @lock */
	unsigned int nr_pg_slots;		/* high-water mark of @pg_slots */
	bool pg_owned[NVT_MAX_PG_SLOTS];	/* the target's own (loop queues'): freed with it */
	bool pg_spare[NVT_MAX_PG_SLOTS];	/* owned and unused: the next loop queue takes it */
	struct nvt_vhost_ctrl **vhosts;		/* vhost-user-scsi controllers (main loop's) */
	unsigned int nr_vhosts;
	/* `nvtctl status` lines of fronts built outside the core (vhost), main loop; NULL: none. */
	void (*front_status)(struct nvt_target *tgt, FILE *out);
	/*
	 * A reload's vhost LUN change, set by the vhost front (the core does
	 * not link it): LUN @lc of the controller on @socket added, or (!@add)
	 * removed. Control path. Return: 0 or -errno. NULL: no vhost front.
	 */
	int (*vhost_reload_lun)(struct nvt_target *tgt, const char *socket,
				const struct nvt_vhost_lun_cfg *lc, bool add);
	/*
	 * A reload's listener change, set by the daemon (the core does not
	 * link the transports): @port (its slot filled in) made to listen, or
	 * (!@add) stopped, its queues torn down. Main loop. Return: 0 or
	 * -errno (-ENODEV: configured, not listening, as at start). NULL: the
	 * listeners cannot change live.
	 */
	int (*reload_listener)(struct nvt_target *tgt, struct nvt_port *port, bool add);
	unsigned int nr_port_removals;		/* listener removals not yet run (main loop) */
	/* The configuration running (the daemon's), which a reload diffs against; NULL: no reload. */
	struct nvt_config *cfg;
	/*
	 * ANA state (NVME_ANA_STATE_*) of each group, by id; 0 reads as
	 * optimized. Written by the control path (nvt_target_set_ana_state),
	 * read with one relaxed load by the I/O path.
	 */
	_Atomic uint8_t ana_state[NVT_ANA_GRPMAX + 1];
	atomic_uint_fast64_t ana_chgcnt;	/* log 0Ch Change Count: state changes so far */
	atomic_uint_fast64_t ana_grp_chgcnt[NVT_ANA_GRPMAX + 1];	/* the count at each group's last change */
};

/* ---- target/ana.c ---- */

/** nvt_port_ana_group() - the ANA group of listener @port (1 if none is set or no port). */
static inline uint32_t nvt_port_ana_group(const struct nvt_port *port)
{
	return port && port->cfg.ana_group ? port->cfg.ana_group : 1;
}

/**
 * nvt_sq_ana_status() - the path status an I/O command on @sq fails with
 * under its listener's ANA state: 0 for optimized and non-optimized,
 * else Asymmetric Access Inaccessible / Persistent Loss / Transition
 * (NVMe 2.0 §8.1.1.2). One relaxed load: it is on the I/O path.
 */
uint16_t nvt_sq_ana_status_slow(const struct nvt_sq *sq, uint8_t state);
static inline uint16_t nvt_sq_ana_status(const struct nvt_sq *sq)
{
	uint8_t state;

	if (!sq->port)
		return 0;
	state = atomic_load_explicit(&sq->port->tgt->ana_state[nvt_port_ana_group(sq->port)],
				     memory_order_relaxed);
	if (__builtin_expect(state <= NVME_ANA_STATE_NONOPTIMIZED, 1))
		return 0;
	return nvt_sq_ana_status_slow(sq, state);
}

/**
 * nvt_target_ana_init() - set every group's state from @cfg's ana_groups
 * (the others optimized). Start-up, before any controller exists.
 */
void nvt_target_ana_init(struct nvt_target *tgt, const struct nvt_config *cfg);

/**
 * nvt_target_set_ana_state() - move ANA group @grpid to @state, count the
 * change and send the ANA change notice (AEN 03h) to every controller
 * that came in through a listener of that group. Control path.
 * Return: the number of controllers told, or -EINVAL (bad group or state).
 */
int nvt_target_set_ana_state(struct nvt_target *tgt, uint32_t grpid, uint8_t state);

/**
 * nvt_target_ana_reload() - a reload: every group whose ana_groups state
 * differs between @o and @n moves to the new one (nvt_target_set_ana_state);
 * groups the file did not change keep what nvtctl set. @note(@arg, group,
 * state name, controllers told) is called for each group moved.
 */
void nvt_target_ana_reload(struct nvt_target *tgt, const struct nvt_config *o,
			   const struct nvt_config *n,
			   void (*note)(void *arg, uint32_t grpid, const char *state, int told),
			   void *arg);

/** nvt_execute_get_log_ana() - Get Log Page 0Ch for the controller of @req. */
void nvt_execute_get_log_ana(struct nvt_req *req);

/**
 * nvt_sq_max_data_len() - the largest transfer a command on @sq may move
 * (MDTS): the listener's max_io_size where one is set, else the transport's.
 */
static inline uint32_t nvt_sq_max_data_len(const struct nvt_sq *sq)
{
	if (sq->port && sq->port->cfg.max_io_size)
		return (uint32_t)sq->port->cfg.max_io_size;
	return sq->ops->max_data_len;
}

/* ---- target/subsys.c ---- */

/**
 * nvt_target_create() - build subsystems, namespaces (opening their
 * backends) and ports from a validated config.
 * Return: 0 or -errno; on failure nothing is left allocated.
 */
int nvt_target_create(const struct nvt_config *cfg, struct nvt_target **out);

/**
 * nvt_target_stop() - tear down every controller (transports are told to
 * delete their queues). Listeners must drain before nvt_target_destroy().
 */
void nvt_target_stop(struct nvt_target *tgt);

/** nvt_target_destroy() - stop, close backends, free all. */
void nvt_target_destroy(struct nvt_target *tgt);

/**
 * nvt_target_io_pg() - the poll group I/O queue @qid runs on: I/O queues are
 * spread over the I/O poll groups by qid, so each controller's queues land
 * on different threads; the main loop when there are none.
 */
struct nvt_poll_group *nvt_target_io_pg(const struct nvt_target *tgt, uint16_t qid);

/**
 * nvt_target_attach_pg() - @pg will run I/O queues: every namespace gets a
 * channel on it (backend rings, bounce buffers). Control path, before any
 * queue of @pg runs I/O and before @pg's thread starts (or from it).
 * Return: 0 or -errno.
 */
int nvt_target_attach_pg(struct nvt_target *tgt, struct nvt_poll_group *pg);

/**
 * nvt_target_start_io_pgs() - @threads I/O poll groups (0: one per online
 * CPU), each attached and running on a thread of its own (tgt->io_pgs).
 * Return: 0 or -errno; the groups started so far stay for the stop.
 */
int nvt_target_start_io_pgs(struct nvt_target *tgt, unsigned int threads);

/** nvt_target_stop_io_pgs() - stop, detach and free the I/O poll groups; nothing in flight. */
void nvt_target_stop_io_pgs(struct nvt_target *tgt);

/**
 * nvt_target_detach_pg() - the channels of @pg go; nothing may be in flight
 * on them and no compare-and-write of another group may be in progress.
 */
void nvt_target_detach_pg(struct nvt_target *tgt, struct nvt_poll_group *pg);

/**
 * nvt_target_get_pg() - a poll group of the target's own for one in-process
 * queue (the loop transport): attached, reused after nvt_target_put_pg(),
 * freed with the target. Channels of a group stay put while the target
 * lives, so no other thread's compare-and-write can meet a freed one.
 * Return: 0 or -errno.
 */
int nvt_target_get_pg(struct nvt_target *tgt, struct nvt_poll_group **out);

/** nvt_target_put_pg() - the queue using @pg is gone (nothing in flight on it). */
void nvt_target_put_pg(struct nvt_target *tgt, struct nvt_poll_group *pg);

/**
 * nvt_target_find_subsys() - the subsystem named @nqn (discovery included),
 * or NULL. Not referenced: only with tgt->lock held, on the thread that runs
 * reloads (the main loop), or on a target no reload changes; others use
 * nvt_target_get_subsys().
 */
struct nvt_subsys *nvt_target_find_subsys(struct nvt_target *tgt, const char *nqn);

/** nvt_target_get_subsys() - nvt_target_find_subsys(), referenced (nvt_subsys_put()). */
struct nvt_subsys *nvt_target_get_subsys(struct nvt_target *tgt, const char *nqn);

/** nvt_subsys_put() - drop a reference; the last one frees the subsystem and what it still has. */
void nvt_subsys_put(struct nvt_subsys *subsys);

/**
 * nvt_subsys_prepare() - a subsystem built from @cfg, its namespaces open,
 * not published: nothing can reach it yet. nvt_subsys_put() discards it.
 * Return: 0 or -errno.
 */
int nvt_subsys_prepare(struct nvt_target *tgt, const struct nvt_subsys_cfg *cfg,
		       struct nvt_subsys **out);

/**
 * nvt_target_publish_subsys() - @subsys (prepared) gets its namespaces'
 * channels on every running poll group and joins the target's table, where
 * Connect, discovery and poll groups attached later find it; the table
 * takes the caller's reference. Return: 0 or -errno (nothing published).
 */
int nvt_target_publish_subsys(struct nvt_target *tgt, struct nvt_subsys *subsys);

/**
 * nvt_target_remove_subsys() - take @subsys out of the table (Connect fails,
 * discovery stops listing it), tear its controllers down, remove its
 * namespaces as nvt_subsys_remove_ns() does (waiting out the commands that
 * hold them), then drop the table's reference. Control path.
 * Return: 0, or -EBUSY (a scrub runs on one of its namespaces: nothing done).
 */
int nvt_target_remove_subsys(struct nvt_target *tgt, struct nvt_subsys *subsys);

/** nvt_subsys_host_allowed() - may @hostnqn connect to @subsys? Takes tgt->lock (a reload may change the list). */
bool nvt_subsys_host_allowed(const struct nvt_subsys *subsys, const char *hostnqn);

/** nvt_subsys_host_allowed_locked() - nvt_subsys_host_allowed() with tgt->lock held. */
bool nvt_subsys_host_allowed_locked(const struct nvt_subsys *subsys, const char *hostnqn);

/**
 * nvt_subsys_for_each_ctrl() - call @fn on every live controller of
 * @subsys, each held by a reference, without the target lock held.
 */
void nvt_subsys_for_each_ctrl(struct nvt_subsys *subsys,
			      void (*fn)(struct nvt_ctrl *ctrl, void *arg), void *arg);

/**
 * nvt_subsys_add_ns() - open a namespace live (reload): a channel on every
 * poll group serving I/O first (a backend's, chan_create, made on the
 * group's own thread by message where another thread polls it; all
 * awaited, at most 10 s), then published and announced (AEN, log 04h).
 * Control path (the main loop, whose own group is done in place, or the
 * control thread); an in-use loop queue must be polled meanwhile, as its
 * group answers only then. Return: 0 or -errno (nothing
 * changed; -ETIMEDOUT: a group did not answer, the namespace stays
 * allocated, unpublished).
 */
int nvt_subsys_add_ns(struct nvt_subsys *subsys, const struct nvt_ns_cfg *cfg);

/**
 * nvt_subsys_remove_ns() - remove a namespace live (reload), from the
 * control thread: unpublished (commands parsed after it fail with Invalid
 * Namespace), the AEN Namespace Attribute Changed and log 04h, then the
 * commands that may still hold it are waited out (a bounded wait: past
 * it the namespace is left allocated, never freed under them), then its
 * channels are dropped (each on its group's own thread) and its backend
 * closed, and it is freed.
 * Return: 0, -ENOENT (no such namespace), -EBUSY (a scrub runs on it).
 */
int nvt_subsys_remove_ns(struct nvt_subsys *subsys, uint32_t nsid);

/**
 * nvt_subsys_resize_ns() - grow a namespace live to what @cfg says (its
 * backend's resize), then publish the size and announce it (AEN, log 04h).
 * Commands past the old size fail with LBA Out Of Range until then.
 * Return: 1 (grown from *@old_nblocks), 0 (no change), or -errno with the
 * reason in @why.
 */
int nvt_subsys_resize_ns(struct nvt_subsys *subsys, const struct nvt_ns_cfg *cfg,
			 uint64_t *old_nblocks, char *why, size_t why_len);

/** nvt_req_ns_enter() / nvt_req_ns_leave() - count @req among its subsystem's namespace readers. */
void nvt_req_ns_enter(struct nvt_req *req, struct nvt_subsys *subsys);
void nvt_req_ns_leave(struct nvt_req *req);

/** nvt_subsys_ns_changed() - record that @nsid changed and raise the AEN on every controller. */
void nvt_subsys_ns_changed(struct nvt_subsys *subsys, uint32_t nsid);

/**
 * nvt_target_check_keep_alive() - tear down every controller whose keep-alive
 * deadline is before @now_ns. Called periodically by the daemon's loop.
 * Return: the number of controllers torn down.
 */
unsigned int nvt_target_check_keep_alive(struct nvt_target *tgt, uint64_t now_ns);

/* ---- target/reload.c ---- */

/**
 * nvt_target_reload() - re-read @running->path and make @tgt serve it.
 * Every error of the file, and every change that cannot be made live, is
 * logged and written to @out (NULL: log only) as "file:line: setting:
 * message", and then nothing is applied. Applied changes are written to
 * @out as "changed: ..." lines. Main loop (control path).
 * Return: the number of changes applied (@running is then the new file),
 * or -errno (-EINVAL: bad file or refused; nothing changed).
 */
int nvt_target_reload(struct nvt_target *tgt, struct nvt_config *running, FILE *out);

/* ---- target/scrub.c ---- */

/**
 * nvt_ns_scrub() - check the stored PI of every block of @ns: the guard, and
 * for Type 1 the reference tag. @bad is called for each failing block.
 * Reads each block through the backend (its memory, or block_io()) while
 * I/O goes on; a failing block is read again four times, 25 ms apart, and
 * is bad only if every read fails with the same bytes (a block caught
 * mid-rewrite is not).
 * Synchronous: the control socket runs it on a thread of its own.
 * Return: 0 (count in @nr_bad), -EOPNOTSUPP (backend has no direct access),
 * -ENODATA (no PI on @ns).
 */
int nvt_ns_scrub(struct nvt_ns *ns, void (*bad)(uint64_t lba, const struct nvt_pi_err *err, void *arg),
		 void *arg, uint64_t *nr_bad);

/**
 * nvt_ns_scrub_until() - nvt_ns_scrub() that gives up with -ECANCELED once
 * @cancel is set (looked at every 1024 blocks; NULL: never).
 */
int nvt_ns_scrub_until(struct nvt_ns *ns,
		       void (*bad)(uint64_t lba, const struct nvt_pi_err *err, void *arg),
		       void *arg, uint64_t *nr_bad, atomic_bool *cancel);

/**
 * nvt_ns_inject() - flip bit @bit of block @lba's data (or metadata), behind
 * every host's back: a drill for the PI checks. Return: 0 or -errno.
 */
int nvt_ns_inject(struct nvt_ns *ns, uint64_t lba, bool in_metadata, uint32_t bit);

/* ---- target/ctrl.c ---- */

/** nvt_ctrl_put() - drop a reference; the last one frees the controller. */
void nvt_ctrl_put(struct nvt_ctrl *ctrl);

/**
 * nvt_ctrl_fatal() - keep-alive expiry or target shutdown: mark @ctrl dead,
 * fail its held AERs once, unlink it from its subsystem and ask the
 * transport to delete its queues. Safe to call more than once.
 */
void nvt_ctrl_fatal(struct nvt_ctrl *ctrl, const char *why);

/**
 * nvt_sq_destroy() - the transport is done with @sq: uninstall it from its
 * controller and drop that reference. Outstanding requests must be complete.
 */
void nvt_sq_destroy(struct nvt_sq *sq);

/** nvt_sq_init() - prepare @sq (embedded in a transport queue) before Connect. */
void nvt_sq_init(struct nvt_sq *sq, struct nvt_target *tgt,
		 const struct nvt_transport_ops *ops, struct nvt_port *port,
		 struct nvt_poll_group *pg, uint16_t qid, uint16_t size);

/* ---- target/core.c ---- */

/**
 * nvt_stat_add() - add to a counter that only the calling thread writes and
 * other threads read: a relaxed load and store, no locked instruction.
 */
static inline void nvt_stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

/** nvt_errlog_copy() - a consistent copy of error log slot @i of @ctrl. */
void nvt_errlog_copy(struct nvt_ctrl *ctrl, unsigned int i, struct nvme_error_log_page *out);

/** nvt_now_ns() - CLOCK_MONOTONIC in nanoseconds. */
uint64_t nvt_now_ns(void);

/**
 * nvt_req_init() - start a request whose SQE is in req->cmd: reset it and
 * parse the command. On a bad command the request is completed right here.
 * Return: true if the transport should move data and call nvt_req_execute().
 */
bool nvt_req_init(struct nvt_req *req, struct nvt_sq *sq,
		  const struct nvt_transport_ops *ops);

/**
 * nvt_req_transfer_ok() - does the host's SGL fit the command: as long as
 * data_len, or longer where the command allows it? A transport fetching
 * host data reads data_len bytes when this says yes.
 */
bool nvt_req_transfer_ok(const struct nvt_req *req);

/**
 * nvt_req_execute() - check that the transfer the host described matches
 * the command, then run it. The request may complete before this returns:
 * the transport must not touch it afterwards.
 */
void nvt_req_execute(struct nvt_req *req);

/**
 * nvt_req_complete() - the one completion funnel: fill the CQE, record an
 * error log entry, hand the request to the transport's queue_response().
 */
void nvt_req_complete(struct nvt_req *req, uint16_t status);

/** nvt_req_is_write() - does the command move data from host to target? */
bool nvt_req_is_write(const struct nvt_req *req);

/** nvt_req_copy_to() - copy @len bytes into the request's data at @off. Return: status. */
uint16_t nvt_req_copy_to(struct nvt_req *req, size_t off, const void *buf, size_t len);

/** nvt_req_copy_from() - copy @len bytes out of the request's data at @off. Return: status. */
uint16_t nvt_req_copy_from(struct nvt_req *req, size_t off, void *buf, size_t len);

/** nvt_req_equal() - do @len bytes of the request's data at @off equal @buf? */
bool nvt_req_equal(struct nvt_req *req, size_t off, const void *buf, size_t len);

/** nvt_req_zero() - zero @len bytes of the request's data from @off. Return: status. */
uint16_t nvt_req_zero(struct nvt_req *req, size_t off, size_t len);


/* ---- parsers (fabrics.c, admin.c, discovery.c, io.c) ---- */
uint16_t nvt_parse_fabrics_cmd(struct nvt_req *req);
uint16_t nvt_parse_connect_cmd(struct nvt_req *req);
uint16_t nvt_parse_admin_cmd(struct nvt_req *req);
uint16_t nvt_parse_discovery_cmd(struct nvt_req *req);
uint16_t nvt_parse_io_cmd(struct nvt_req *req);

/**
 * nvt_req_pi_failed() - a PI check of @req failed: fill the error log fields
 * (LBA, SQE location), log one rate-limited line naming subsystem, nsid and
 * LBA. Return: the status to complete with (82h/83h/84h).
 */
uint16_t nvt_req_pi_failed(struct nvt_req *req, const struct nvt_pi_err *err);

/**
 * nvt_fused_abort() - half of a fused pair will never run with its partner:
 * complete it with @status now if it is waiting, or when it executes.
 */
void nvt_fused_abort(struct nvt_req *req, uint16_t status);


/* ---- shared by admin.c and discovery.c ---- */

/** nvt_execute_identify_ctrl() - Identify CNS 01h for either kind of controller. */
void nvt_execute_identify_ctrl(struct nvt_req *req);
uint16_t nvt_parse_get_features(struct nvt_req *req);
uint16_t nvt_parse_set_features(struct nvt_req *req);
void nvt_execute_get_features(struct nvt_req *req);
void nvt_execute_set_features(struct nvt_req *req);
void nvt_execute_keep_alive(struct nvt_req *req);
void nvt_execute_async_event(struct nvt_req *req);
/** nvt_parse_get_log_len() - NUMD and LPO of a Get Log Page, checked; sets data_len. Return: status. */
uint16_t nvt_parse_get_log_len(struct nvt_req *req);
uint64_t nvt_get_log_offset(const struct nvt_req *req);
/** nvt_get_log_rae() - a Get Log Page's Retain Asynchronous Event bit: set, the read leaves its AEN masked. */
bool nvt_get_log_rae(const struct nvt_req *req);

/**
 * struct nvt_log_writer - streams a log page into a request's data, keeping
 * only the part inside [offset, offset + data_len): log pages of any size are
 * built piece by piece without a buffer, and any offset/length is honoured.
 */
struct nvt_log_writer {
	struct nvt_req *req;
	uint64_t offset;	/* LPO */
	uint64_t pos;		/* bytes of the log produced so far */
	uint16_t status;
};

void nvt_log_writer_init(struct nvt_log_writer *w, struct nvt_req *req);
void nvt_log_write(struct nvt_log_writer *w, const void *buf, size_t len);
/** nvt_log_writer_finish() - zero-fill the rest of the transfer. Return: status. */
uint16_t nvt_log_writer_finish(struct nvt_log_writer *w);

/* ---- discovery.c ---- */
void nvt_discovery_changed(struct nvt_target *tgt);

/* ---- ctrl.c, for the parsers ---- */
uint16_t nvt_ctrl_create(struct nvt_subsys *subsys, struct nvt_req *req,
			 const struct nvmf_connect_data *d, uint32_t kato,
			 struct nvt_ctrl **out);
struct nvt_ctrl *nvt_ctrl_find_get(struct nvt_subsys *subsys, uint16_t cntlid,
				   const char *hostnqn);
uint16_t nvt_ctrl_install_sq(struct nvt_ctrl *ctrl, struct nvt_sq *sq);
void nvt_ctrl_uninstall_sq(struct nvt_ctrl *ctrl, struct nvt_sq *sq);

/**
 * nvt_ctrl_for_each_sq() - call @fn on every installed queue of @ctrl with
 * the controller's lock held: queues owned by other threads cannot go away
 * meanwhile, so @fn must not block or uninstall.
 */
void nvt_ctrl_for_each_sq(struct nvt_ctrl *ctrl, void (*fn)(struct nvt_sq *sq, void *arg),
			  void *arg);
uint16_t nvt_ctrl_prop_get(struct nvt_ctrl *ctrl, uint32_t offset, bool is8, uint64_t *val);
uint16_t nvt_ctrl_prop_set(struct nvt_ctrl *ctrl, uint32_t offset, bool is8, uint64_t val);
void nvt_ctrl_keep_alive(struct nvt_ctrl *ctrl);
void nvt_ctrl_raise_aen(struct nvt_ctrl *ctrl, uint32_t event);
void nvt_ctrl_clear_aen(struct nvt_ctrl *ctrl, uint32_t event);

/**
 * nvt_ctrl_resv_note() - log a Reservation Notification (@type, an
 * enum nvme_resv_notify_rnlpt) for namespace @nsid in @ctrl's log 80h and
 * raise its AEN, unless the host masked that type (Set Features 82h).
 * Control path: takes ctrl->lock.
 */
void nvt_ctrl_resv_note(struct nvt_ctrl *ctrl, uint32_t nsid, uint8_t type);

/* ---- resv_notify.c ---- */

/**
 * nvt_resv_notify() - tell the hosts in @ev that namespace @ns's
 * reservation changed. On an I/O thread: queued on the subsystem's
 * lock-free ring (a short atomic_flag, no mutex, no allocation) and
 * delivered to the controllers by a message to the main loop; where
 * there is no main loop (the loop transport's tests) delivered here.
 */
void nvt_resv_notify(struct nvt_ns *ns, const struct nvt_resv_events *ev);

#endif /* NVT_TARGET_H */
