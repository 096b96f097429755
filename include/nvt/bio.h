/* SPDX-License-Identifier: BSD-3-Clause */
/* One block-I/O request that every front end (NVMe, later SCSI) hands the namespace layer, and the asynchronous backend contract under it. */
#ifndef NVT_BIO_H
#define NVT_BIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvt/pi.h"
#include "nvt/range_lock.h"
#include "nvt/resv.h"

struct nvt_ns;
struct nvt_ns_cfg;
struct nvt_subsys;
struct nvt_ns_chan;
struct nvt_poll_group;
struct nvt_bounce;

/*
 * What a front end asks of a namespace. The namespace layer (target/ns_io.c)
 * runs every op; a backend is handed only the ops it advertises natively
 * (NVT_BE_*) plus READ, WRITE and FLUSH, always with data and metadata in
 * separate buffers.
 */
enum nvt_bio_op {
	NVT_BIO_READ,		/* blocks -> iov (and md_iov) */
	NVT_BIO_WRITE,		/* iov (and md_iov) -> blocks */
	NVT_BIO_FLUSH,		/* completed writes become durable */
	NVT_BIO_WRITE_ZEROES,	/* zero the range; PI generated when pi.pract */
	NVT_BIO_DEALLOCATE,	/* the ranges read back as zeroes (escape PI) from now on */
	NVT_BIO_COMPARE,	/* stored blocks (PI checked first) == iov? */
	NVT_BIO_VERIFY,		/* stored blocks readable, their PI as pi asks */
	NVT_BIO_COPY,		/* the ranges, in order, to slba onwards */
};

/* How a bio ended; each front end maps it to its own status (NVMe status, SCSI sense). */
enum nvt_bio_status {
	NVT_BIO_OK = 0,
	NVT_BIO_MEDIA_READ,	/* unrecovered read error at err_lba */
	NVT_BIO_MEDIA_WRITE,	/* write fault at err_lba */
	NVT_BIO_PI,		/* a PI check failed: pi_err (err_lba = pi_err.lba) */
	NVT_BIO_MISCOMPARE,	/* compare: the first differing block is err_lba */
	NVT_BIO_NOSPC,		/* the store behind a thin namespace is full */
	NVT_BIO_LBA_RANGE,	/* outside the namespace (the front checks; a backend may still say) */
	NVT_BIO_UNSUPPORTED,	/* the backend cannot do this op */
	NVT_BIO_ABORTED,	/* the namespace or queue went away first */
	NVT_BIO_INTERNAL,	/* a bug or a resource we lack */
	NVT_BIO_DEVICE,		/* a device's own NVMe status (dev_status), returned unchanged */
	NVT_BIO_RESV_CONFLICT,	/* resv_host may not do this now (the namespace's reservation): nothing done */
};

/* Per-bio flags (set by the front end). */
#define NVT_BIO_FUA		(1u << 0)	/* write: durable before completion */
#define NVT_BIO_EXT		(1u << 1)	/* iov holds extended LBAs: each block's data then its metadata */
#define NVT_BIO_DEAC		(1u << 2)	/* write zeroes: deallocating is allowed */
#define NVT_BIO_PI_CHECK_READ	(1u << 3)	/* read/compare/verify/copy sources: check stored PI as pi asks */
#define NVT_BIO_COPY_TAGS	(1u << 4)	/* copy: keep the sources' guards and app tags, ref tags from pi (SCSI, ATO=1) */
/*
 * Read/write whose one iovec is its own blocks' memory (ram zero copy,
 * backend.h): the front end's DMA moves the data while it is in flight, so
 * every bio overlapping it on its channel waits until it is done (a read
 * would see a torn block, a write be torn by it: AWUN is one block).
 */
#define NVT_BIO_IN_PLACE	(1u << 5)
/* Set by the namespace layer on the bios it hands a backend. */
#define NVT_BIO_LOCK_OWNER	(1u << 8)	/* issued under the range lock by its holder: never parks on it */

/* A range of a Copy (source) or Deallocate, as the front decoded it. */
struct nvt_bio_range {
	uint64_t slba;
	uint32_t nlb;		/* 1-based */
	uint64_t eilbrt;	/* copy: the source's expected initial ref tag */
	uint16_t elbat, elbatm;	/* copy: the source's app tag and mask */
};

/* The namespace layer's per-bio state (opaque to fronts and backends). */
struct nvt_bio_ns {
	struct nvt_bio *next, *prev;	/* in the channel's in-flight list, or its parked list */
	struct nvt_bio *wait_next;	/* waiting for a bounce buffer (while in flight: its own link) */
	void (*resume)(struct nvt_bio *bio);	/* parked: how to go on when woken */
	void (*be_done)(struct nvt_bio *bio);	/* handed to a backend: what its completion runs */
	uint64_t seq;			/* channel-local start order, for lock drains */
	uint64_t lo, hi;		/* span held against the range lock: [lo, hi) */
	uint32_t range;			/* copy/deallocate: range being worked on */
	uint64_t pos;			/* emulation: blocks of the current range done */
	uint64_t dst;			/* copy: destination of the current range */
	struct nvt_bio_range cur;	/* copy/deallocate: the current range */
	struct nvt_bounce *bounce;	/* emulation: the channel's buffer in use */
	struct nvt_caw *caw;		/* the compare-and-write this bio is half of */
	uint32_t chunk;			/* emulation: blocks in the chunk in flight */
	uint32_t state;			/* emulation: the chunk's phase */
	bool gated;			/* in the channel's in-flight list */
	bool submitting;		/* emulation: inside the child's submit() */
	bool child_done;		/* emulation: the child completed (maybe inline) */
	bool native_failed;		/* the backend refused the native op: emulate it */
};

/* The backend's per-bio state: what it needs to finish a bio later. */
struct nvt_bio_be {
	struct nvt_bio *next;		/* e.g. waiting for ring space */
	uint32_t pending;		/* sub-operations outstanding */
	int err;			/* the first of them that failed, -errno */
	uint64_t next_off;		/* a bio split into commands: the next one's start, from slba */
	bool parked;			/* on the backend's wait list (its next commands wait for room) */
};

/**
 * struct nvt_bio - one block I/O. Embedded in the front's request (NVMe
 * request, SCSI task), which is preallocated per queue: the I/O path
 * allocates nothing. Owned by the namespace layer from nvt_ns_submit() until
 * @done runs, on the poll group of @chan, exactly once.
 */
struct nvt_bio {
	enum nvt_bio_op op;
	uint32_t flags;			/* NVT_BIO_* */
	struct nvt_ns *ns;
	struct nvt_ns_chan *chan;	/* the namespace on the submitting poll group */
	uint64_t slba;
	uint32_t nlb;			/* blocks; copy: total over the ranges */
	struct iovec *iov;		/* data (extended LBAs with NVT_BIO_EXT) */
	unsigned int iov_cnt;
	struct iovec *md_iov;		/* separate metadata, nlb * md_size bytes, if the ns has any */
	unsigned int md_iov_cnt;
	struct nvt_pi_ctx pi;		/* the command's PI (copy: the destination's) */
	uint8_t src_prinfo;		/* copy: PRINFO the sources are checked with */
	uint64_t copy_src;		/* COPY handed to a backend: one range, copy_src.. -> slba.. */
	unsigned int nr_ranges;		/* copy, deallocate */
	/* Range @i of a copy or deallocate, fetched on demand (the front keeps them). Return: 0 or -EINVAL. */
	int (*get_range)(struct nvt_bio *bio, unsigned int i, struct nvt_bio_range *r);
	void (*done)(struct nvt_bio *bio);
	/*
	 * The host the namespace's reservation knows this bio's front by (the
	 * Connect's 16-byte HOSTID); NULL: not checked here. Checked as the
	 * bio is admitted (after a range lock it parked behind let it go), so
	 * a bio admitted after a fence began sees the state the fence
	 * follows; denied: NVT_BIO_RESV_CONFLICT.
	 */
	const uint8_t *resv_host;

	/* Results, valid in @done. */
	enum nvt_bio_status status;
	uint64_t err_lba;
	uint16_t dev_status;		/* NVT_BIO_DEVICE: SCT << 8 | SC, with DNR (0x4000) as the device set it */
	uint32_t err_off;		/* miscompare: first differing byte in block err_lba (its metadata after block_size) */
	struct nvt_pi_err pi_err;

	struct nvt_bio_ns ns_priv;
	struct nvt_bio_be be_priv;
};

/* ---- the backend contract ---- */

/* Backend capability flags. */
#define NVT_BE_METADATA		(1u << 0)	/* stores per-block metadata */
#define NVT_BE_VOLATILE		(1u << 1)	/* has a volatile write cache: Flush matters (VWC) */
/*
 * Ops a backend may do natively. What it is handed then:
 * WRITE_ZEROES: zero the data of [slba, slba + nlb); the metadata becomes
 *   md_iov's bytes where md_iov is set (the layer generated the PI), else
 *   zeroes. DEALLOCATE: one range, [slba, slba + nlb), reads back as zeroes
 *   with all-ones metadata (the escape PI) on a PI namespace, zero metadata
 *   otherwise. COPY: one range [copy_src, +nlb) -> [slba, +nlb), data and
 *   metadata. Any of them may complete with -EOPNOTSUPP (say, overlapping
 *   ranges the kernel refuses): the layer then does that bio itself over
 *   READ and WRITE.
 */
#define NVT_BE_WRITE_ZEROES	(1u << 2)
#define NVT_BE_DEALLOCATE	(1u << 3)
#define NVT_BE_COPY		(1u << 4)
/* The store has a size of its own (a file, a block device): the config may leave size out. */
#define NVT_BE_OWN_SIZE		(1u << 5)
/*
 * The store has a block format of its own (an NVMe namespace): open() sets
 * block_size, md_size and pi from it; the config's block_size and pi are
 * optional, and where given (nvt_ns_cfg.given) must agree.
 */
#define NVT_BE_OWN_FORMAT	(1u << 6)
/*
 * More ops a backend may do natively, each one range [slba, slba + nlb):
 * COMPARE: iov (and md_iov) against the stored blocks, their PI checked
 *   first as pi and NVT_BIO_PI_CHECK_READ say; a mismatch may come back as
 *   NVT_BIO_MISCOMPARE or as the device status 285h (Compare Failure): the
 *   layer then compares that chunk itself, which names the block.
 * VERIFY: the stored blocks are readable, their PI checked as for a read.
 * Either may complete with -EOPNOTSUPP: the layer emulates it.
 */
#define NVT_BE_COMPARE		(1u << 7)
#define NVT_BE_VERIFY		(1u << 8)

/*
 * A setting a backend accepts in a namespace's config group: the loader
 * reads this table, so a backend's settings live with the backend.
 */
enum nvt_be_setting_type {
	NVT_BE_SET_PATH,	/* a string of at most PATH_MAX - 1 bytes */
	NVT_BE_SET_BOOL,
};

struct nvt_be_setting {
	const char *name;
	enum nvt_be_setting_type type;
	bool required;
	const char *help;	/* one line for --check-config and the README */
	bool with_metadata;	/* required when the namespace has metadata (a sidecar for it) */
};

/**
 * struct nvt_backend_ops - where a namespace's blocks live. Asynchronous by
 * contract: submit() returns at once and the bio completes through
 * nvt_bio_backend_done(), inline or later, on the poll group of the channel
 * it was submitted on.
 */
struct nvt_backend_ops {
	const char *name;			/* config name: "ram", "file" */
	unsigned int flags;			/* NVT_BE_* */
	const struct nvt_be_setting *settings;	/* NULL-name terminated; NULL: none */
	/*
	 * Open the store: ns->nblocks, block_size, md_size and pi are set from
	 * the config (a backend whose store has a size of its own checks it;
	 * with size 0 under NVT_BE_OWN_SIZE, open() sets ns->nblocks).
	 * Problems are logged as "file:line: setting: message" (cfg->file,
	 * cfg->line). Return: 0 or -errno.
	 */
	int (*open)(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg);
	void (*close)(struct nvt_ns *ns);	/* release everything open() took */
	/* The namespace on one poll group: rings, buffers, counters. NULL: nothing per group. Return: 0 or -errno. */
	int (*chan_create)(struct nvt_ns *ns, struct nvt_poll_group *pg, void **chan);
	void (*chan_destroy)(struct nvt_ns *ns, void *chan);	/* nothing in flight; never from its own callbacks */
	void (*submit)(struct nvt_bio *bio, void *chan);
	/* Memory backends: where block @lba's data (and metadata) lives; NULL if not. */
	void *(*map)(struct nvt_ns *ns, uint64_t lba, void **md);
	/*
	 * Control path, any backend: read or write one whole block and its
	 * metadata synchronously (scrub of stores without map, fault injection).
	 * Return: 0 or -errno.
	 */
	int (*block_io)(struct nvt_ns *ns, uint64_t lba, void *data, void *md, bool write);
	/*
	 * Optional, control path: the size @cfg asks for (0: the store's own),
	 * in blocks, into *@nblocks; with @apply the store is grown to it first,
	 * never moving memory or data I/O uses. ns->nblocks is the caller's to
	 * publish. Return: 0 (*@nblocks may be the current size: nothing to
	 * do), or -errno with the reason in @why (a shrink, a store that
	 * cannot grow).
	 */
	int (*resize)(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg, bool apply,
		      uint64_t *nblocks, char *why, size_t why_len);
};

/**
 * struct nvt_ns - one namespace; immutable once published but for nblocks
 * (which only grows, atomically), so the I/O path reads it without locks.
 */
struct nvt_ns {
	struct nvt_subsys *subsys;
	uint32_t nsid;
	const struct nvt_backend_ops *be;
	void *be_priv;
	/* Grows on a live resize (never shrinks): atomic, as the I/O path checks against it. */
	_Atomic uint64_t nblocks;
	uint32_t block_size;
	uint8_t lba_shift;
	uint16_t md_size;			/* metadata bytes per block the backend stores */
	struct nvt_pi_format pi;		/* type NONE: no PI (metadata, if any, is opaque) */
	struct nvt_range_lock range_lock;	/* compare-and-write vs. all other I/O */
	struct nvt_ns_chan *_Atomic chans[NVT_MAX_PG_SLOTS];	/* by poll group slot; set on the control path */
	_Atomic unsigned int nr_chans;		/* high-water mark of @chans: broadcasts look no further */
	_Atomic unsigned int nr_scrubs;		/* control workers scrubbing it (under tgt->lock): removal refused */
	uint8_t uuid[16];
	uint8_t nguid[16];
	/*
	 * Copy limits the backend's store imposes on what it does natively,
	 * set in open(); 0: none (nvtd's own, NVT_COPY_*). Identify advertises
	 * the smaller, so a host's copies fit the device (larger ones are
	 * still done, by the layer).
	 */
	uint16_t cap_mssrl;
	uint32_t cap_mcl;
	uint16_t cap_msrc_nr;		/* source ranges per command (MSRC + 1) */
	/* Registrants and the reservation; changed and checked on I/O threads (resv.h). All zero: none. */
	struct nvt_resv resv;
};

/**
 * nvt_bio_device_fail() - @bio failed with a device's own NVMe status
 * @status (SCT << 8 | SC, DNR kept) at @lba: the front returns it
 * unchanged. The first failure of a bio is the one reported. A backend
 * then completes it with nvt_bio_backend_done(bio, 0).
 */
static inline void nvt_bio_device_fail(struct nvt_bio *bio, uint16_t status, uint64_t lba)
{
	if (bio->status)
		return;
	bio->status = NVT_BIO_DEVICE;
	bio->dev_status = status;
	bio->err_lba = lba;
}

/** nvt_backend_find() - the backend ops registered under @name, or NULL. */
const struct nvt_backend_ops *nvt_backend_find(const char *name);

/** nvt_backend_get() - the @i-th registered backend (0, 1, ...), or NULL past the last: for listing them. */
const struct nvt_backend_ops *nvt_backend_get(unsigned int i);

/**
 * nvt_bio_backend_done() - the backend is done with @bio: 0 or -errno
 * (-EIO, -ENOSPC, ...). Any thread context of the bio's poll group, inline
 * in submit() included.
 */
void nvt_bio_backend_done(struct nvt_bio *bio, int err);

/* ---- the namespace layer, for front ends ---- */

/**
 * nvt_ns_submit() - run @bio on its namespace. Returns at once; @bio->done
 * runs exactly once, possibly before this returns. The front has checked
 * the range against the namespace and sized the buffers.
 */
void nvt_ns_submit(struct nvt_bio *bio);

/**
 * struct nvt_caw - Compare-and-Write, atomic against every other I/O on its
 * range: the range is locked, the stored blocks compared with @compare's
 * data, @write runs only if they matched, then the range is released and
 * @done runs once. Embedded in the front's state (the NVMe fused pair's
 * first request; later a SCSI task).
 */
struct nvt_caw {
	struct nvt_bio *compare;		/* op COMPARE */
	struct nvt_bio *write;			/* op WRITE, same range */
	void (*done)(struct nvt_caw *caw);	/* compare->status, write->status are final */
	/* The namespace layer's. */
	struct nvt_range_hold hold;
	uint32_t state;
};

/** nvt_ns_caw() - run @caw (both bios on the same channel). Returns at once. */
void nvt_ns_caw(struct nvt_caw *caw);

/**
 * nvt_bio_resv_denied() - does the namespace's reservation deny host
 * @hostid what @bio does (its op's access groups; Copy needs both)?
 * Lock-free; what the layer checks at admission for bio->resv_host.
 */
bool nvt_bio_resv_denied(const struct nvt_bio *bio, const uint8_t hostid[16]);

/**
 * struct nvt_ns_fence - a wait for what a namespace already admitted: see
 * nvt_ns_fence(). Embedded in the front's request; the layer's but @done.
 */
struct nvt_ns_fence {
	struct nvt_range_hold hold;
	void (*done)(struct nvt_ns_fence *f);
};

/**
 * nvt_ns_fence() - run @done once every bio admitted on @chan's namespace
 * before this call, on any channel, has finished (and every compare-and-
 * write holding or waiting for a range lock). The reservation fences with
 * it (Preempt and Abort): change the state first, then fence; bios
 * admitted after the change are checked against the new state
 * (bio->resv_host). Bios that come meanwhile wait, parked, and are
 * admitted when it is over; a Flush (no blocks) neither waits nor is
 * waited for. @done runs on @chan's poll group, possibly before this
 * returns (nothing in flight); the namespace cannot be removed before
 * (its channels are not idle until then). Any poll group's thread.
 * @f: the caller's, untouched until @done.
 */
void nvt_ns_fence(struct nvt_ns_fence *f, struct nvt_ns_chan *chan,
		  void (*done)(struct nvt_ns_fence *f));

/**
 * nvt_ns_chan_get() - @ns on poll group @pg, for bio->chan; NULL if @pg was
 * never attached (nvt_target_attach_pg, nvt_ns_chan_create).
 */
struct nvt_ns_chan *nvt_ns_chan_get(struct nvt_ns *ns, struct nvt_poll_group *pg);

/**
 * nvt_ns_chan_create() - give @ns a channel on @pg (slot nvt_poll_group_slot(pg)):
 * the backend's channel and the layer's bounce buffers. Control path. Return: 0 or -errno.
 */
int nvt_ns_chan_create(struct nvt_ns *ns, struct nvt_poll_group *pg);

/** nvt_ns_chans_idle() - no bio in flight or parked, no range lock message queued, on any channel of @ns. */
bool nvt_ns_chans_idle(struct nvt_ns *ns);

/**
 * nvt_ns_chans_free() - free every channel of an unpublished, idle @ns by
 * slot (their poll groups may be gone); backends without per-thread state only.
 */
void nvt_ns_chans_free(struct nvt_ns *ns);

/** nvt_ns_chan_destroy() - undo nvt_ns_chan_create(); nothing in flight on it. */
void nvt_ns_chan_destroy(struct nvt_ns *ns, struct nvt_poll_group *pg);

#endif /* NVT_BIO_H */
