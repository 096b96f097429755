/* SPDX-License-Identifier: BSD-3-Clause */
/* The in-process loop transport (host <-> target without a fabric) and the host-side helpers tests and tools use. */
#ifndef NVT_LOOP_H
#define NVT_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvt/target.h"

#define NVT_LOOP_MAX_IOV	16		/* data segments per command */
#define NVT_LOOP_MAX_DATA	(128u * 1024)	/* MDTS of the loop transport, as RDMA's */

extern const struct nvt_transport_ops nvt_loop_transport_ops;

struct nvt_loop_queue;

/** Called once per submitted command with its completion (possibly before submit returns). */
typedef void (*nvt_loop_done_fn)(void *arg, const struct nvt_cqe *cqe);

/**
 * nvt_loop_queue_create() - a new queue, as if a host had opened a transport
 * connection for queue @qid with @depth slots. It still needs a Connect.
 * Return: 0 or -errno.
 */
int nvt_loop_queue_create(struct nvt_target *tgt, uint16_t qid, uint16_t depth,
			  struct nvt_loop_queue **out);

/**
 * nvt_loop_queue_destroy() - the host drops the connection: the queue's
 * commands still in a backend complete first (its poll group is driven
 * until they have), then it is freed.
 */
void nvt_loop_queue_destroy(struct nvt_loop_queue *q);

/** nvt_loop_queue_outstanding() - commands submitted and not yet completed. */
unsigned int nvt_loop_queue_outstanding(const struct nvt_loop_queue *q);

/*
 * Backends complete on the poll group of the queue a command came in on,
 * and a compare-and-write may wait for I/O of another queue to drain. So a
 * thread driving several loop queues keeps polling all of them while any
 * waits (nvt_loop_exec() and nvt_loop_queue_destroy() drive only their
 * own), and every loop queue is destroyed before its target.
 */

/**
 * nvt_loop_queue_poll() - run the queue's poll group once (up to @timeout_ms):
 * where an asynchronous backend's completions arrive. Return: as
 * nvt_poll_group_poll(); 0 for the admin queue.
 */
int nvt_loop_queue_poll(struct nvt_loop_queue *q, int timeout_ms);

/** nvt_loop_queue_live() - false once the target tore the queue down (e.g. keep-alive). */
bool nvt_loop_queue_live(const struct nvt_loop_queue *q);

/**
 * nvt_loop_submit() - submit @sqe with @iov as its data (used in place, not
 * copied). @done runs when the command completes.
 * Return: 0; -EBUSY when every slot is in use; -ENOTCONN when the queue is dead;
 * -EINVAL for more than NVT_LOOP_MAX_IOV segments.
 */
int nvt_loop_submit(struct nvt_loop_queue *q, const struct nvt_sqe *sqe,
		    const struct iovec *iov, unsigned int iovcnt,
		    nvt_loop_done_fn done, void *arg);

/* A command stopped between parse and execute (see nvt_loop_submit_held()). */
struct nvt_loop_held;

/**
 * nvt_loop_submit_held() - as nvt_loop_submit(), but the command stops where
 * an RDMA transport would fetch the host's data: parsed, not yet executed,
 * until nvt_loop_release(). Tests use it to put other commands in between.
 * @held: the stopped command, or NULL if it was refused (and completed) at parse.
 * Return: as nvt_loop_submit().
 */
int nvt_loop_submit_held(struct nvt_loop_queue *q, const struct nvt_sqe *sqe,
			 const struct iovec *iov, unsigned int iovcnt,
			 nvt_loop_done_fn done, void *arg, struct nvt_loop_held **held);

/**
 * nvt_loop_release() - the held command's data has "arrived": execute it.
 * It must be released before its queue is destroyed.
 */
void nvt_loop_release(struct nvt_loop_held *held);

/**
 * nvt_loop_exec() - submit and wait: the synchronous form for tests and tools.
 * @buf/@len is the command's data (NULL/0 for none).
 * Return: the NVMe status (0 = success), or -errno if it could not be submitted.
 */
int nvt_loop_exec(struct nvt_loop_queue *q, const struct nvt_sqe *sqe, void *buf,
		  size_t len, struct nvt_cqe *cqe);

/* A connected controller as a host sees it. */
struct nvt_loop_ctrl {
	struct nvt_loop_queue *admin;
	struct nvt_loop_queue *io[NVT_MAX_IO_QUEUES];
	unsigned int nr_io;
	uint16_t cntlid;
};

/**
 * nvt_loop_connect_queue() - send a Fabrics Connect on @q.
 * @cntlid: 0xffff for an admin queue, the controller's id for an I/O queue.
 * Return: NVMe status or -errno; the CQE (with the controller id) in @cqe.
 */
int nvt_loop_connect_queue(struct nvt_loop_queue *q, uint16_t qid, uint16_t sqsize,
			   const char *subnqn, const char *hostnqn, uint16_t cntlid,
			   uint32_t kato_ms, struct nvt_cqe *cqe);

/** nvt_loop_prop_get() / nvt_loop_prop_set() - Property Get/Set. Return: status or -errno. */
int nvt_loop_prop_get(struct nvt_loop_queue *q, uint32_t offset, bool is8, uint64_t *val);
int nvt_loop_prop_set(struct nvt_loop_queue *q, uint32_t offset, uint64_t val);

/**
 * nvt_loop_ctrl_connect() - what `nvme connect` does: admin queue Connect,
 * enable (CC.EN, wait CSTS.RDY), Set Features Number of Queues, then @nr_io
 * I/O queue Connects of @depth entries.
 * Return: 0, an NVMe status (> 0) of the step that failed, or -errno.
 */
int nvt_loop_ctrl_connect(struct nvt_target *tgt, const char *subnqn, const char *hostnqn,
			  unsigned int nr_io, uint16_t depth, uint32_t kato_ms,
			  struct nvt_loop_ctrl *ctrl);

/**
 * nvt_loop_ctrl_connect_port() - nvt_loop_ctrl_connect() as if the host came
 * in through listener @port (its ANA group, its max_io_size); NULL: none.
 */
int nvt_loop_ctrl_connect_port(struct nvt_target *tgt, struct nvt_port *port, const char *subnqn,
			       const char *hostnqn, unsigned int nr_io, uint16_t depth,
			       uint32_t kato_ms, struct nvt_loop_ctrl *ctrl);

/** nvt_loop_ctrl_disconnect() - orderly shutdown (CC.SHN), then drop every queue. */
void nvt_loop_ctrl_disconnect(struct nvt_loop_ctrl *ctrl);

#endif /* NVT_LOOP_H */
