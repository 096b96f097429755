/* SPDX-License-Identifier: BSD-3-Clause */
/* The SCSI command layer (SPC-4 / SBC-4 over the namespace layer): what a SCSI front (vhost-user-scsi) hands one command to. */
#ifndef NVT_SCSI_H
#define NVT_SCSI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvt/bio.h"
#include "nvt/poll_group.h"

struct nvt_poll_group;

#define NVT_SCSI_CDB_MAX	32	/* virtio-scsi cdb_size */
#define NVT_SCSI_SENSE_MAX	96	/* virtio-scsi sense_size */
#define NVT_SCSI_MAX_LUNS	256	/* LUNs per SCSI device (vhost controller) */
#define NVT_SCSI_WORK_IOV	136	/* the layer's own iovecs per task (seg_max 126 + slicing) */

/* SAM-5 status codes. */
#define NVT_SCSI_GOOD			0x00
#define NVT_SCSI_CHECK_CONDITION	0x02
#define NVT_SCSI_BUSY			0x08
#define NVT_SCSI_RESERVATION_CONFLICT	0x18
#define NVT_SCSI_TASK_SET_FULL		0x28

/**
 * struct nvt_scsi_lun - one logical unit: a namespace seen through SCSI.
 * Built on the control path by nvt_scsi_lun_init(), read-only afterwards.
 */
struct nvt_scsi_lun {
	struct nvt_ns *ns;
	uint16_t lun;			/* 0..16383 */
	bool pi;			/* T10 PI offered (PROT_EN): a CRC16-guard namespace with 8-byte metadata */
	uint8_t naa[16];		/* VPD 83h NAA 6 designator, derived from the namespace's NGUID: stable */
	char serial[33];		/* VPD 80h */
	/* The layer's own (third-party copy results, counters). */
	void *priv;
};

/**
 * struct nvt_scsi_dev - one SCSI target device (a vhost controller): its
 * LUNs, for REPORT LUNS and addressing. Control path builds it.
 */
struct nvt_scsi_dev {
	/*
	 * Sorted by lun id at start-up; a LUN added live takes the first free
	 * slot, one removed leaves NULL. Set on the control path, read
	 * lock-free by the queues (the front drains readers before freeing).
	 */
	struct nvt_scsi_lun *_Atomic luns[NVT_SCSI_MAX_LUNS];
	_Atomic unsigned int nr_luns;			/* slots in use are below it */
	bool copy_between;				/* EXTENDED COPY may name other devices' LUNs (config opt-in) */
	uint8_t hostid[16];				/* its I_T nexus as an NVMe host identifier: nvt_scsi_dev_hostid() */
	char name[64];					/* for log lines: the socket path */
};

/**
 * struct nvt_scsi_queue - per request queue state of the layer (one
 * poll group): buffers the commands that need one share (EXTENDED COPY
 * between namespaces). Preallocated by nvt_scsi_queue_init().
 */
struct nvt_scsi_queue {
	struct nvt_poll_group *pg;
	void *copy_buf;			/* EXTENDED COPY staging, NVT_SCSI_COPY_BUF bytes */
	struct nvt_scsi_task *copy_owner;	/* the task using copy_buf, or NULL */
	struct nvt_scsi_task *copy_wait;	/* tasks waiting for it, FIFO through task->next */
	struct nvt_scsi_task *copy_wait_tail;
};

#define NVT_SCSI_COPY_BUF	(1u << 20)	/* EXTENDED COPY moves at most this much per step */

#define NVT_SCSI_MD_BUF		4096	/* PI the layer inserts or strips, per chunk of a command */
#define NVT_SCSI_XCOPY_CSCDS	4	/* EXTENDED COPY: CSCD descriptors per list */
#define NVT_SCSI_XCOPY_SEGS	4	/* EXTENDED COPY: segment descriptors per list */

/* One EXTENDED COPY block -> block segment, decoded and checked. */
struct nvt_scsi_xseg {
	struct nvt_scsi_lun *src, *dst;
	uint64_t src_lba, dst_lba;
	uint32_t nlb;
};

struct nvt_scsi_task;

/*
 * The layer's decoded command and its progress (private to target/scsi*.c).
 * Commands that run as several bios one after the other (PI inserted or
 * stripped through md_buf, WRITE SAME, copies) are steps: @next builds the
 * next bio (false: no more), @absorb takes its result (false: failed).
 */
struct nvt_scsi_cmd {
	bool (*next)(struct nvt_scsi_task *t);
	bool (*absorb)(struct nvt_scsi_task *t);
	bool in_submit;			/* inside nvt_ns_submit(): an inline completion returns to the loop */
	bool bio_done;
	bool fua;
	bool ext;			/* data holds extended LBAs (PI interleaved) */
	bool unmap;			/* WRITE SAME: deallocate */
	bool holds_copy_buf;
	uint8_t payload_segs;		/* WRITE SAME: segments of the payload block (in work_iov2); 0: zeroes */
	uint8_t protect;		/* RDPROTECT / WRPROTECT / VRPROTECT */
	uint8_t checks;			/* NVT_PI_CHECK_* the bios apply */
	uint16_t app_tag, app_mask;
	uint64_t ref_tag;		/* expected initial ref tag of @lba (48 bits on a 64-bit-guard namespace) */
	uint64_t lba;
	uint32_t nlb;
	uint32_t pos;			/* blocks done */
	uint32_t chunk;			/* blocks of the bio in flight */
	uint32_t xfer;			/* data bytes the command moves (resid = data_len - xfer) */
	struct iovec *iov;		/* the data of the bio being built: data_iov itself or work_iov */
	unsigned int iov_cnt;
	struct iovec *md_iov;		/* its PI buffer (shape 1): pi_iov itself or work_iov2 */
	unsigned int md_iov_cnt;
	struct nvt_pg_deferred defer;	/* handed the copy buffer: starts after the current batch */
	/* EXTENDED COPY */
	uint8_t list_id;
	bool list_held;
	uint8_t nr_seg, seg;
	bool xwrite;			/* between namespaces: the write leg is in flight */
	uint64_t xbytes;		/* bytes copied so far */
	struct nvt_bio_range range;	/* copy within one namespace: its one range */
	struct nvt_scsi_xseg segs[NVT_SCSI_XCOPY_SEGS];
	/* Statistics (kept out of the memset above: set right after it). */
	uint64_t stat_t0;		/* arrival, nvt_now_ns() */
	uint16_t stat_status;		/* the first failed bio's NVMe-equivalent status; 0: none */
	bool stat_started;		/* counted in the LUN's namespace channel's depth */
	bool stat_counted;		/* statistics were on at arrival: count it at completion */
};

/**
 * struct nvt_scsi_task - one SCSI command. Embedded in the front's
 * preallocated per-queue request slot: the I/O path allocates nothing.
 */
struct nvt_scsi_task {
	/* Set by the front before nvt_scsi_exec(). */
	struct nvt_scsi_dev *dev;
	struct nvt_scsi_lun *lun;	/* NULL: no such LUN (the layer answers as SPC-4 says) */
	struct nvt_scsi_queue *queue;
	uint8_t cdb[NVT_SCSI_CDB_MAX];
	struct iovec *data_iov;		/* data-out (to_dev) or data-in buffers */
	unsigned int data_cnt;
	uint32_t data_len;		/* bytes in data_iov */
	bool to_dev;			/* data-out (write); false: data-in (or none) */
	struct iovec *pi_iov;		/* virtio T10 PI buffer (pi_bytesout/in); NULL or empty: none */
	unsigned int pi_cnt;
	uint32_t pi_len;
	void (*done)(struct nvt_scsi_task *t);

	/* Results, valid in @done. */
	uint8_t status;			/* NVT_SCSI_* */
	uint8_t sense[NVT_SCSI_SENSE_MAX];
	uint32_t sense_len;
	uint32_t resid;			/* data bytes not transferred */

	/* The layer's. */
	struct nvt_scsi_task *next;
	struct nvt_bio bio;
	struct nvt_bio bio2;		/* compare-and-write's write half; copy's second leg */
	union {
		struct nvt_caw caw;		/* COMPARE AND WRITE */
		struct nvt_ns_fence fence;	/* PREEMPT AND ABORT's wait */
	};
	struct iovec work_iov[NVT_SCSI_WORK_IOV];
	struct iovec work_iov2[NVT_SCSI_WORK_IOV];
	struct iovec md_iov;
	uint8_t md_buf[NVT_SCSI_MD_BUF];
	struct nvt_scsi_cmd cmd;
};

/**
 * nvt_scsi_lun_init() - @lun serves @ns as LUN @id. Logs once when a PI
 * namespace cannot be offered as T10 PI (64-bit guard, metadata other
 * than 8 bytes) and is served without it. Return: 0, or -EINVAL for an id
 * past 16383 or more metadata per block than NVT_SCSI_MD_BUF, or -ENOMEM.
 */
int nvt_scsi_lun_init(struct nvt_scsi_lun *lun, struct nvt_ns *ns, uint16_t id);

/** nvt_scsi_lun_fini() - release what nvt_scsi_lun_init() took. */
void nvt_scsi_lun_fini(struct nvt_scsi_lun *lun);

/**
 * nvt_scsi_register_lun() - make @lun a copy target for EXTENDED COPY from
 * the devices that opted in to copies between devices (copy_between; found
 * by its NAA designator). Control path, before I/O starts;
 * nvt_scsi_unregister_lun() undoes it.
 */
int nvt_scsi_register_lun(struct nvt_scsi_lun *lun);
void nvt_scsi_unregister_lun(struct nvt_scsi_lun *lun);

/**
 * nvt_scsi_dev_hostid() - @dev's I_T nexus for reservations (PERSISTENT
 * RESERVE, and the NVMe hosts' reservations it is held to): a 16-byte host
 * identifier, "nvt-scsi" then a 64-bit hash of @socket with the top three
 * bits set (a UUID's reserved variant: never an NVMe host's UUID HOSTID).
 * Deterministic: the same socket is the same nexus after a restart, which
 * Persist Through Power Loss needs; two sockets are two nexuses.
 */
void nvt_scsi_dev_hostid(struct nvt_scsi_dev *dev, const char *socket);

/** nvt_scsi_queue_init() - a request queue on @pg. Return: 0 or -ENOMEM. */
int nvt_scsi_queue_init(struct nvt_scsi_queue *q, struct nvt_poll_group *pg);
void nvt_scsi_queue_fini(struct nvt_scsi_queue *q);

/**
 * nvt_scsi_exec() - run @t. Returns at once; @t->done runs exactly once on
 * @t->queue's poll group, possibly before this returns.
 */
void nvt_scsi_exec(struct nvt_scsi_task *t);

#endif /* NVT_SCSI_H */
