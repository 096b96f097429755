/* SPDX-License-Identifier: BSD-3-Clause */
/* Inside the vhost-user-scsi front: wire layouts, guest memory, split rings and the connection state its three files share. */
#ifndef NVT_VHOST_INT_H
#define NVT_VHOST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvt/poll_group.h"
#include "nvt/scsi.h"
#include "nvt/vhost.h"

/* ---- vhost-user wire (docs/interop/vhost-user.rst) ---- */

enum nvt_vhost_request {
	NVT_VHOST_GET_FEATURES		= 1,
	NVT_VHOST_SET_FEATURES		= 2,
	NVT_VHOST_SET_OWNER		= 3,
	NVT_VHOST_RESET_OWNER		= 4,
	NVT_VHOST_SET_MEM_TABLE		= 5,
	NVT_VHOST_SET_VRING_NUM		= 8,
	NVT_VHOST_SET_VRING_ADDR	= 9,
	NVT_VHOST_SET_VRING_BASE	= 10,
	NVT_VHOST_GET_VRING_BASE	= 11,
	NVT_VHOST_SET_VRING_KICK	= 12,
	NVT_VHOST_SET_VRING_CALL	= 13,
	NVT_VHOST_SET_VRING_ERR		= 14,
	NVT_VHOST_GET_PROTOCOL_FEATURES	= 15,
	NVT_VHOST_SET_PROTOCOL_FEATURES	= 16,
	NVT_VHOST_GET_QUEUE_NUM		= 17,
	NVT_VHOST_SET_VRING_ENABLE	= 18,
	NVT_VHOST_RESET_DEVICE		= 34,
};

#define NVT_VHOST_HDR_SIZE		12
#define NVT_VHOST_FLAG_VERSION		0x1u
#define NVT_VHOST_FLAG_VERSION_MASK	0x3u
#define NVT_VHOST_FLAG_REPLY		0x4u
#define NVT_VHOST_FLAG_NEED_REPLY	0x8u
#define NVT_VHOST_VRING_IDX_MASK	0xffu
#define NVT_VHOST_VRING_NOFD		0x100u

/* Protocol features. */
#define NVT_VHOST_PF_MQ			(1ull << 0)
#define NVT_VHOST_PF_REPLY_ACK		(1ull << 3)
#define NVT_VHOST_PF_RESET_DEVICE	(1ull << 13)
#define NVT_VHOST_PROTOCOL_FEATURES	(NVT_VHOST_PF_MQ | NVT_VHOST_PF_REPLY_ACK | NVT_VHOST_PF_RESET_DEVICE)

/* Virtio feature bits. */
#define NVT_VIRTIO_SCSI_F_HOTPLUG	(1ull << 1)
#define NVT_VIRTIO_SCSI_F_T10_PI	(1ull << 3)
#define NVT_VIRTIO_F_INDIRECT_DESC	(1ull << 28)
#define NVT_VIRTIO_F_EVENT_IDX		(1ull << 29)
#define NVT_VHOST_F_PROTOCOL_FEATURES	(1ull << 30)
#define NVT_VIRTIO_F_VERSION_1		(1ull << 32)
#define NVT_VIRTIO_F_RING_PACKED	(1ull << 34)
/*
 * EVENT_IDX: measured to help under TCG (the README's benchmark). HOTPLUG:
 * LUNs added or removed by a reload reach the guest as events (QEMU 7.2
 * passes the bit through only if we offer it). No NOTIFY_ON_EMPTY, no
 * packed ring.
 */
#define NVT_VHOST_FEATURES		(NVT_VIRTIO_F_VERSION_1 | NVT_VIRTIO_F_INDIRECT_DESC | \
					 NVT_VIRTIO_F_EVENT_IDX | NVT_VHOST_F_PROTOCOL_FEATURES | \
					 NVT_VIRTIO_SCSI_F_T10_PI | NVT_VIRTIO_SCSI_F_HOTPLUG)

#define NVT_VHOST_MAX_REGIONS		8	/* VHOST_MEMORY_BASELINE_NREGIONS */
#define NVT_VHOST_MAX_REQ_QUEUES	64
#define NVT_VHOST_MAX_VQS		(2 + NVT_VHOST_MAX_REQ_QUEUES)	/* control, event, requests we serve */
/*
 * The vring indices QEMU may set up: VIRTIO_QUEUE_MAX (a vhost-user-scsi
 * num_queues defaults to the vCPU count, up to 1022). Setup messages for
 * any of them are taken; a ring beyond NVT_VHOST_MAX_VQS is never started.
 */
#define NVT_VHOST_VQ_LIMIT		1024
#define NVT_VHOST_MAX_RING		32768
#define NVT_VHOST_MSG_MAX		(8 + NVT_VHOST_MAX_REGIONS * 32)	/* the largest payload we take */

struct nvt_vhost_mem_region_wire {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};
_Static_assert(sizeof(struct nvt_vhost_mem_region_wire) == 32, "vhost-user memory region");

struct nvt_vhost_vring_addr_wire {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;		/* the spec's order: used before avail */
	uint64_t avail;
	uint64_t log;
};
_Static_assert(sizeof(struct nvt_vhost_vring_addr_wire) == 40, "vhost-user vring address");

/* One received message: header, payload, the fds that came with it. */
struct nvt_vhost_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct {
			uint32_t index;
			uint32_t num;
		} state;
		struct nvt_vhost_vring_addr_wire addr;
		struct {
			uint32_t nregions;
			uint32_t padding;
			struct nvt_vhost_mem_region_wire regions[NVT_VHOST_MAX_REGIONS];
		} mem;
		uint8_t bytes[NVT_VHOST_MSG_MAX];
	} payload;
	int fds[NVT_VHOST_MAX_REGIONS];
	unsigned int nr_fds;
};

/**
 * nvt_vhost_msg_check() - is @m well formed for its request: version,
 * payload size, fd count, vring index? Pure: the unit tests' seam.
 * Return: 0, -EPROTO (malformed), -EOPNOTSUPP (a request we do not serve).
 */
int nvt_vhost_msg_check(const struct nvt_vhost_msg *m);

/** nvt_vhost_req_name() - for log lines. */
const char *nvt_vhost_req_name(uint32_t request);

/* ---- guest memory ---- */

struct nvt_vhost_region {
	uint64_t gpa;		/* guest-physical start */
	uint64_t size;
	uint64_t uva;		/* QEMU's address of the same first byte */
	uint64_t mmap_offset;
	void *map;		/* our mmap of the fd, from offset 0 */
	size_t map_len;		/* mmap_offset + size */
	uint8_t *host;		/* map + mmap_offset: the region's first byte here */
};

struct nvt_vhost_mem {
	unsigned int nr;
	struct nvt_vhost_region r[NVT_VHOST_MAX_REGIONS];
};

/**
 * nvt_vhost_mem_map() - map the regions of a SET_MEM_TABLE message into
 * @mem (empty on entry). Every region is checked: size non-zero, no
 * overflow of gpa + size, uva + size, offset + size; no two overlap in
 * guest-physical space; each fd must cover its region and be sealed
 * against shrinking (F_SEAL_SHRINK), or a later access could SIGBUS. The
 * fds are not consumed. Return: 0 or -errno (-EPERM: not sealed).
 */
int nvt_vhost_mem_map(struct nvt_vhost_mem *mem, const struct nvt_vhost_msg *m);

/** nvt_vhost_mem_unmap() - unmap every region; @mem is empty afterwards. */
void nvt_vhost_mem_unmap(struct nvt_vhost_mem *mem);

/**
 * nvt_vhost_uva_to_va() - QEMU's user address @uva (ring addresses) to
 * ours; the whole [@uva, @uva + @len) must lie in one region. NULL if not.
 */
void *nvt_vhost_uva_to_va(const struct nvt_vhost_mem *mem, uint64_t uva, uint64_t len);

/** nvt_vhost_gpa_to_va() - a guest-physical range inside one region (indirect tables); NULL if not. */
void *nvt_vhost_gpa_to_va(const struct nvt_vhost_mem *mem, uint64_t gpa, uint64_t len);

/**
 * nvt_vhost_gpa_to_iov() - a guest-physical buffer as iovecs, split where
 * it crosses from one region into the next one adjacent in guest-physical
 * space. Return: iovecs written, -EFAULT (outside guest memory, a hole, an
 * overflow), -E2BIG (more than @max).
 */
int nvt_vhost_gpa_to_iov(const struct nvt_vhost_mem *mem, uint64_t gpa, uint64_t len,
			 struct iovec *iov, unsigned int max);

/* ---- split virtqueue (virtio 1.1 section 2.6) ---- */

struct nvt_vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct nvt_vring_desc) == 16, "split ring descriptor");

#define NVT_VRING_DESC_F_NEXT		1
#define NVT_VRING_DESC_F_WRITE		2
#define NVT_VRING_DESC_F_INDIRECT	4
#define NVT_VRING_AVAIL_F_NO_INTERRUPT	1
#define NVT_VRING_USED_F_NO_NOTIFY	1

struct nvt_vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct nvt_vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct nvt_vring_used {
	uint16_t flags;
	uint16_t idx;
	struct nvt_vring_used_elem ring[];
};

/* Sizes of the three areas for @num entries; @ev: with the event-idx field after each ring. */
#define NVT_VRING_DESC_SIZE(num)	(16ull * (num))
#define NVT_VRING_AVAIL_SIZE(num, ev)	(4ull + 2ull * (num) + ((ev) ? 2 : 0))
#define NVT_VRING_USED_SIZE(num, ev)	(4ull + 8ull * (num) + ((ev) ? 2 : 0))

/**
 * struct nvt_vring - one split ring as the device side sees it: our
 * pointers into guest memory and our two indexes. Written by the control
 * path while the ring is stopped, by the ring's poll group while it runs.
 */
struct nvt_vring {
	uint16_t num;
	struct nvt_vring_desc *desc;
	struct nvt_vring_avail *avail;
	struct nvt_vring_used *used;
	uint16_t last_avail;		/* next avail entry to pop */
	uint16_t used_idx;		/* our copy of used->idx */
	int call_fd;			/* -1: the driver polls; the ring's thread's while it runs */
	_Atomic int next_call_fd;	/* a call fd sent while running, adopted at the next notify */
	const struct nvt_vhost_mem *mem;
	bool broken;			/* the avail ring made no sense: nothing more is popped */
	/*
	 * VIRTIO_RING_F_EVENT_IDX, as the ring was mapped (its areas then
	 * include used_event and avail_event): the driver kicks only when it
	 * passes the avail index we last published, we interrupt only when
	 * used->idx passes the one it asked for.
	 */
	bool event_idx;
	bool signalled_valid;		/* @signalled_used is one we notified at */
	uint16_t signalled_used;
	int err_fd;			/* the ring's own dup of QEMU's err eventfd while running, or -1 */
};

/* Results of nvt_vring_pop() besides a chain. */
#define NVT_VRING_EMPTY		0
#define NVT_VRING_CHAIN		1

/**
 * nvt_vring_pop() - the next available chain: its readable buffers first
 * (@nr_out), then its writable ones (@nr_in), in @iov. Indirect tables are
 * followed (not nested); loops, chains longer than their table, buffers
 * outside guest memory, readable after writable and bad tables fail.
 * Return: NVT_VRING_CHAIN, NVT_VRING_EMPTY, -EIO (the ring itself is bad:
 * @vr is broken, nothing can be pushed), or another -errno for a bad chain
 * whose @head the caller must still push (with length 0).
 */
int nvt_vring_pop(struct nvt_vring *vr, uint16_t *head, struct iovec *iov, unsigned int max,
		  unsigned int *nr_out, unsigned int *nr_in);

/**
 * nvt_vring_walk() - nvt_vring_pop()'s chain walk alone, from @head
 * (unit tests). Return: 0 or -errno.
 */
int nvt_vring_walk(const struct nvt_vring *vr, uint16_t head, struct iovec *iov, unsigned int max,
		   unsigned int *nr_out, unsigned int *nr_in);

/**
 * nvt_vring_kicks_off() - while the ring's thread drains the avail ring,
 * the driver need not kick (VRING_USED_F_NO_NOTIFY): a hint, it may kick.
 */
void nvt_vring_kicks_off(struct nvt_vring *vr);

/**
 * nvt_vring_kicks_on() - before sleeping: ask for kicks again, then look
 * once more. Return: true if chains became available meanwhile (the
 * driver may have seen kicks off and not kicked): pop them first.
 */
bool nvt_vring_kicks_on(struct nvt_vring *vr);

/**
 * nvt_vring_break() - the driver broke the ring: pop nothing more until it
 * is set up again, and tell QEMU through @err_fd (QEMU 7.2 reports "vhost
 * vring error"), so the guest is not left waiting on a silent device.
 */
void nvt_vring_break(struct nvt_vring *vr);

/** nvt_vring_push() - @head is done, @len bytes written into its buffers; publishes used->idx. */
void nvt_vring_push(struct nvt_vring *vr, uint16_t head, uint32_t len);

#define NVT_VRING_CALL_SAME	(-2)	/* next_call_fd: no change pending */

/**
 * nvt_vring_notify() - signal the call eventfd unless the driver asked for
 * no interrupts; first adopt a call fd handed over by nvt_vring_set_call().
 */
void nvt_vring_notify(struct nvt_vring *vr);

/**
 * nvt_vring_set_call() - from the control path, give a running ring call fd
 * @fd (-1: none): its thread closes the old one when it adopts @fd, so it
 * never signals a closed or reused number.
 */
void nvt_vring_set_call(struct nvt_vring *vr, int fd);

/**
 * nvt_vhost_eventfd_prepare() - is @fd (a kick, call or err fd from QEMU)
 * an eventfd? Made non-blocking if so: a pipe or socket, or a full
 * eventfd counter, would block the thread that signals it.
 * Return: 0, -EBADF (not an eventfd) or -errno.
 */
int nvt_vhost_eventfd_prepare(int fd);

/** nvt_vring_take_call() - the ring has stopped: adopt what is pending and return the call fd (the caller's now). */
int nvt_vring_take_call(struct nvt_vring *vr);

/* ---- virtio-scsi wire (virtio 1.1 section 5.6) ---- */

struct nvt_vscsi_cmd_req {
	uint8_t lun[8];
	uint64_t tag;
	uint8_t task_attr;
	uint8_t prio;
	uint8_t crn;
	uint8_t cdb[NVT_SCSI_CDB_MAX];
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_vscsi_cmd_req) == 51, "virtio_scsi_cmd_req");

struct nvt_vscsi_cmd_req_pi {
	uint8_t lun[8];
	uint64_t tag;
	uint8_t task_attr;
	uint8_t prio;
	uint8_t crn;
	uint32_t pi_bytesout;
	uint32_t pi_bytesin;
	uint8_t cdb[NVT_SCSI_CDB_MAX];
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_vscsi_cmd_req_pi) == 59, "virtio_scsi_cmd_req_pi");

struct nvt_vscsi_cmd_resp {
	uint32_t sense_len;
	uint32_t resid;
	uint16_t status_qualifier;
	uint8_t status;
	uint8_t response;
	uint8_t sense[NVT_SCSI_SENSE_MAX];
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_vscsi_cmd_resp) == 108, "virtio_scsi_cmd_resp");

struct nvt_vscsi_ctrl_tmf_req {
	uint32_t type;
	uint32_t subtype;
	uint8_t lun[8];
	uint64_t tag;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_vscsi_ctrl_tmf_req) == 24, "virtio_scsi_ctrl_tmf_req");

struct nvt_vscsi_ctrl_an_req {
	uint32_t type;
	uint8_t lun[8];
	uint32_t event_requested;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_vscsi_ctrl_an_req) == 16, "virtio_scsi_ctrl_an_req");

struct nvt_vscsi_ctrl_an_resp {
	uint32_t event_actual;
	uint8_t response;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_vscsi_ctrl_an_resp) == 5, "virtio_scsi_ctrl_an_resp");

/* An event-queue buffer's content (virtio 1.1 5.6.6.3). */
struct nvt_vscsi_event {
	uint32_t event;
	uint8_t lun[8];
	uint32_t reason;
} __attribute__((packed));
_Static_assert(sizeof(struct nvt_vscsi_event) == 16, "virtio_scsi_event");

#define NVT_VSCSI_T_NO_EVENT		0
#define NVT_VSCSI_T_TRANSPORT_RESET	1
#define NVT_VSCSI_T_EVENTS_MISSED	0x80000000u
#define NVT_VSCSI_EVT_RESET_RESCAN	1
#define NVT_VSCSI_EVT_RESET_REMOVED	2

/* Response codes. */
#define NVT_VSCSI_S_OK			0
#define NVT_VSCSI_S_OVERRUN		1
#define NVT_VSCSI_S_BAD_TARGET		3
#define NVT_VSCSI_S_FAILURE		9
#define NVT_VSCSI_S_FUNCTION_SUCCEEDED	10
#define NVT_VSCSI_S_FUNCTION_REJECTED	11
#define NVT_VSCSI_S_INCORRECT_LUN	12
#define NVT_VSCSI_S_FUNCTION_COMPLETE	0

/* Control queue request types and TMF subtypes. */
#define NVT_VSCSI_T_TMF			0
#define NVT_VSCSI_T_AN_QUERY		1
#define NVT_VSCSI_T_AN_SUBSCRIBE	2
#define NVT_VSCSI_T_TMF_ABORT_TASK		0
#define NVT_VSCSI_T_TMF_ABORT_TASK_SET		1
#define NVT_VSCSI_T_TMF_CLEAR_ACA		2
#define NVT_VSCSI_T_TMF_CLEAR_TASK_SET		3
#define NVT_VSCSI_T_TMF_I_T_NEXUS_RESET		4
#define NVT_VSCSI_T_TMF_LOGICAL_UNIT_RESET	5
#define NVT_VSCSI_T_TMF_QUERY_TASK		6
#define NVT_VSCSI_T_TMF_QUERY_TASK_SET		7

/**
 * struct nvt_vscsi_parsed - one request as nvt_vscsi_parse() found it in a
 * chain's buffers, by byte counts (descriptor boundaries mean nothing).
 */
struct nvt_vscsi_parsed {
	uint8_t lun[8];
	uint64_t tag;
	uint8_t cdb[NVT_SCSI_CDB_MAX];
	uint32_t pi_out, pi_in;		/* PI bytes in front of the data */
	uint64_t data_out, data_in;	/* data bytes after header and PI */
	uint64_t resp_room;		/* writable bytes in all */
};

/**
 * nvt_vscsi_parse() - read a request header (virtio_scsi_cmd_req, or
 * _req_pi if @pi) out of the readable buffers and size the parts.
 * Return: 0, or -EINVAL (header or response buffer too short, PI bytes
 * beyond the buffers, data in both directions).
 */
int nvt_vscsi_parse(const struct iovec *iov, unsigned int nr_out, unsigned int nr_in, bool pi,
		    struct nvt_vscsi_parsed *p);

/**
 * nvt_vscsi_lun_decode() - the LUN of a virtio-scsi address: -1 for a bad
 * target (lun[0] != 1 or target lun[1] != 0), else 0..16383.
 */
int nvt_vscsi_lun_decode(const uint8_t lun[8]);

/* ---- the connection and its queues ---- */

/*
 * Buffers per request: seg_max (126) of data, as many again of PI (Linux
 * sets no integrity segment limit of its own: one per integrity vector),
 * header, response, and room for region splits.
 */
#define NVT_VHOST_SEGS		264
#define NVT_VHOST_PI_SEGS	132

struct nvt_vhost_vq;

/* One request slot of a request queue, indexed by its chain's head. */
struct nvt_vhost_req {
	struct nvt_vhost_vq *vq;
	uint16_t head;
	bool busy;
	_Atomic uint64_t seq;		/* its queue's pop number while in flight, 0 idle: what TMFs wait on */
	uint16_t lun_reader;		/* where it counts in the LUN readers: epoch << 15 | slot */
	unsigned int nr_out, nr_in;
	uint32_t in_written;		/* response + PI in + data in bytes, for the used length */
	struct iovec raw[NVT_VHOST_SEGS];
	struct iovec data[NVT_VHOST_SEGS];
	struct iovec pi[NVT_VHOST_PI_SEGS];
	struct nvt_scsi_task task;
};

/* One control-queue request: a TMF waits here for the tasks it covers. */
struct nvt_vhost_ctl_req {
	struct nvt_vhost_ctl_req *next;
	uint16_t head;
	bool busy;
	unsigned int nr_out, nr_in;
	struct iovec raw[8];
	uint64_t wait_for[NVT_VHOST_MAX_REQ_QUEUES];	/* pop number of each request queue at the TMF */
};

/**
 * struct nvt_vhost_vq - one virtqueue. Main-loop fields are the vhost-user
 * state; the ring and the slots belong to @pg while @running.
 */
struct nvt_vhost_vq {
	struct nvt_vhost_conn *conn;
	unsigned int idx;
	struct nvt_poll_group *pg;	/* control and event queues: the main loop */

	/* Main loop. */
	uint16_t num;
	uint16_t base;
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	int kick_fd, err_fd;
	bool started;			/* kick received, not yet stopped by GET_VRING_BASE */
	atomic_bool enabled;		/* SET_VRING_ENABLE */
	atomic_bool start_queued;
	struct nvt_scsi_queue sq;
	bool sq_init;

	/* The poll group's while running. */
	struct nvt_vring vr;
	struct nvt_pg_watch kick_watch;
	bool running;
	bool stopping;
	bool in_batch, need_notify;
	unsigned int inflight;
	struct nvt_vhost_req *reqs;		/* request queues: @nr_slots of them */
	struct nvt_vhost_ctl_req *ctl;		/* control queue */
	unsigned int nr_slots;
	struct nvt_vhost_ctl_req *tmf_wait;	/* control queue: TMFs not yet answered */
	struct nvt_pg_watch tmf_timer;		/* control queue: re-checks held TMFs while there are any */
	bool tmf_timer_on;
	_Atomic uint64_t popped;		/* request queues: the last pop number, for TMFs on the main loop */

	struct nvt_pg_msg start_msg, stop_msg, drained_msg;
	struct nvt_pg_deferred drained_d;
	bool stop_sent;			/* main loop: a stop is out, drained_msg not yet back */
};

enum nvt_vhost_pending {
	NVT_VHOST_PEND_NONE = 0,	/* reading messages */
	NVT_VHOST_PEND_GET_BASE,	/* GET_VRING_BASE waits for the ring to drain */
	NVT_VHOST_PEND_MEM_TABLE,	/* a new memory table waits for every ring to pause */
	NVT_VHOST_PEND_RESET,		/* RESET_DEVICE waits for every ring to stop */
	NVT_VHOST_PEND_CLOSE,		/* the connection goes once every ring has drained */
};

/* One QEMU connection: everything it set up, freed when it goes. */
struct nvt_vhost_conn {
	struct nvt_vhost_ctrl *ctrl;
	struct nvt_pg_watch watch;
	bool watched;
	uint64_t features;
	uint64_t protocol_features;
	atomic_bool pi;			/* T10_PI acked: headers are _req_pi */
	struct nvt_vhost_mem mem;
	struct nvt_vhost_mem new_mem;	/* PEND_MEM_TABLE */
	bool new_mem_ack;
	struct nvt_vhost_vq *vqs[NVT_VHOST_VQ_LIMIT];
	enum nvt_vhost_pending pending;
	unsigned int pending_vq;
	unsigned int waiting;		/* rings yet to report drained */
	bool pending_ack;		/* the pending request wants a REPLY_ACK */
	int fd;				/* non-blocking: a slow or stalled QEMU never holds the main loop */
	/* The message being received, as far as it has come; its fds came with its first bytes. */
	uint8_t rx[NVT_VHOST_HDR_SIZE + NVT_VHOST_MSG_MAX];
	uint32_t rx_len;
	int rx_fds[NVT_VHOST_MAX_REGIONS];
	unsigned int rx_nr_fds;
	bool rx_bad;			/* too many fds, or truncated control data */
	bool events_missed;		/* an event found no buffer: the next one says so */
	struct nvt_pg_deferred free_d;
	struct nvt_vhost_conn *next_draining;	/* on ctrl->draining once closed, until freed */
	bool draining;
};

/* A LUN change the guest is yet to be told of (RESCAN or REMOVED). */
struct nvt_vhost_lun_event {
	uint16_t lun;
	uint32_t reason;
};

#define NVT_VHOST_EVENTS_MAX	32	/* queued for the main loop; beyond: events missed */

struct nvt_vhost_ctrl {
	struct nvt_target *tgt;
	struct nvt_vhost_cfg cfg;	/* luns not kept */
	struct nvt_scsi_dev dev;
	/* Set on the control path (release), read by the request queues (seq_cst, see nvt_vscsi_lun_enter()). */
	struct nvt_scsi_lun *_Atomic by_id[NVT_VHOST_MAX_LUN + 1];
	/* LUN events from the reload's thread to the main loop, which owns the event queue. */
	pthread_mutex_t ev_lock;
	struct nvt_vhost_lun_event ev[NVT_VHOST_EVENTS_MAX];
	unsigned int nr_ev;
	bool ev_overflow;
	atomic_bool ev_queued;
	struct nvt_pg_msg ev_msg;
	struct nvt_pg_watch listen;
	struct nvt_vhost_conn *conn;	/* NULL: no guest */
	struct nvt_vhost_conn *draining;	/* closed connections whose rings still drain */
	uint64_t nr_conns;
	uint64_t nr_refused;
};

/* virtio_scsi.c, for vhost_user.c (main loop). */
int nvt_vscsi_vq_prepare(struct nvt_vhost_vq *vq);	/* slots for vq->num; 0 or -errno */
void nvt_vscsi_vq_free(struct nvt_vhost_vq *vq);	/* drop slots and the SCSI queue */
void nvt_vscsi_vq_start(struct nvt_vhost_vq *vq);	/* (re)arm on vq->pg: pop what is there */
void nvt_vscsi_vq_stop(struct nvt_vhost_vq *vq);	/* stop popping; drained_msg once idle */

/*
 * nvt_vscsi_event_flush() - main loop: hand the controller's queued LUN
 * events (and a missed-events flag) to the guest's event queue buffers,
 * if a started connection negotiated HOTPLUG. Also run on an event-queue
 * kick: a buffer posted after events were missed carries the flag.
 */
void nvt_vscsi_event_flush(struct nvt_vhost_ctrl *c);

/*
 * nvt_vscsi_luns_drain() - after a LUN was unpublished (by_id, the
 * device's table, the copy registry): wait until every request that may
 * have read it has completed, at most @timeout_ns. Return: true if so.
 */
bool nvt_vscsi_luns_drain(uint64_t timeout_ns);

/* vhost_user.c, for virtio_scsi.c: @vq's ring has drained (runs on the main loop). */
void nvt_vhost_vq_drained(struct nvt_pg_msg *m);

#endif /* NVT_VHOST_INT_H */
