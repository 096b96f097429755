/* SPDX-License-Identifier: BSD-3-Clause */
/* The "file" backend: a regular file or block device through one io_uring per poll group, per-block metadata in a sidecar file. */
/*
 * No NVT_LOG_PREFIX: every line this file logs is about one namespace's
 * configuration and starts with where it is, "file:line: setting: ".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "nvt/backend.h"
#include "nvt/bio.h"
#include "nvt/config.h"
#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/util.h"

#include "uring_ring.h"

#define NVT_URING_SQ_ENTRIES	128		/* per channel; the CQ gets twice as many */
#define NVT_URING_BOUNCE_NR	4		/* O_DIRECT staging buffers per channel */
#define NVT_URING_BOUNCE_SIZE	(64u << 10)	/* each; a bigger bio goes through in pieces */
#define NVT_URING_FILL_SIZE	(64u << 10)	/* metadata fill (zeroes, ones) per SQE */
#define NVT_URING_OP_IOV	8		/* iovecs an op rebuilds for the rest of a short transfer */
#define NVT_URING_WHERE		(PATH_MAX + 64)	/* "file:line: setting" */

/*
 * The ring size channels are created with. A variable so the unit test
 * (which includes this file) can make a ring far smaller than its queue depth.
 */
static unsigned int nvt_uring_sq_entries = NVT_URING_SQ_ENTRIES;

/* fallocate() modes a Write Zeroes or Deallocate may use (bit per mode in fa_bad). */
#define NVT_URING_FA_ZERO	(1u << 0)	/* FALLOC_FL_ZERO_RANGE: zeroes, space kept */
#define NVT_URING_FA_PUNCH	(1u << 1)	/* FALLOC_FL_PUNCH_HOLE: zeroes, space given back */

/*
 * Files held by some namespace, so that two never share one (their writes
 * would land on each other's blocks). Open and close are control path: a
 * mutex and a list do.
 */
struct nvt_uring_claim {
	struct nvt_uring_claim *next;
	dev_t dev;			/* st_dev; a block device: its st_rdev */
	ino_t ino;			/* st_ino; a block device: 0 */
	uint32_t nsid;			/* the holder, for the refusal message */
	int line;
	bool held;
};

static pthread_mutex_t nvt_uring_claims_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nvt_uring_claim *nvt_uring_claims;

/* One namespace's store: shared by its channels, read-only after open(). */
struct nvt_uring_ns {
	int fd;				/* the data: a regular file or a block device */
	int md_fd;			/* the metadata sidecar; -1 without metadata */
	bool blkdev;
	bool direct;			/* fd is O_DIRECT: buffers must be aligned as below */
	uint32_t mem_align;		/* O_DIRECT: buffer address alignment */
	uint32_t len_align;		/* O_DIRECT: segment length alignment (logical block) */
	uint8_t *zeroes, *ones;		/* metadata fill, NVT_URING_FILL_SIZE each */
	struct nvt_uring_claim data_claim, md_claim;
};

/*
 * One SQE's worth of work, kept until its CQE: a bio has one per file it
 * touches. Preallocated per channel, one per CQ entry, so the CQ cannot
 * overflow; a short transfer or a fallback mode reuses the same op.
 */
struct nvt_uring_op {
	struct nvt_uring_op *next;	/* free list, or waiting for an SQE */
	struct nvt_bio *bio;
	uint8_t opcode;			/* IORING_OP_READV, _WRITEV, _FSYNC, _FALLOCATE */
	uint8_t file;			/* 0: data, 1: sidecar (the registered file index) */
	bool exact;			/* src is exactly len bytes: handed to the kernel as is */
	bool want_bounce;		/* plan: needs a bounce buffer (unaligned for O_DIRECT) */
	int rw_flags;			/* RWF_DSYNC for FUA writes */
	int fa_mode, fa_next;		/* FALLOCATE: the mode, and the one to try if refused */
	uint64_t off, len, done;	/* bytes at off, and how many are done (short transfers) */
	const struct iovec *src;	/* READV/WRITEV: the bio's iovecs, or NULL with ... */
	unsigned int src_cnt;
	const uint8_t *fill;		/* ... a pattern written over and over (metadata) */
	uint8_t *bounce;		/* aligned staging buffer for O_DIRECT, or NULL */
	struct iovec iov[NVT_URING_OP_IOV];	/* what the SQE points at when not src */
};

/* The namespace on one poll group. Only that group's thread touches it after creation. */
struct nvt_uring_chan {
	struct nvt_uring_ring ring;	/* fixed_files: data file 0, sidecar 1; fixed_bufs:
					 * bounce_mem is buffer 0, staging by READ/WRITE_FIXED */
	struct nvt_ns *ns;
	struct nvt_uring_ns *u;
	char name[24];			/* "nsid N": the ring's log lines */
	struct nvt_uring_op *ops;	/* nr_ops, one per CQ entry */
	unsigned int nr_ops;
	struct nvt_uring_op *free_ops;
	unsigned int nr_free_ops;
	struct nvt_uring_op *sqe_wait, **sqe_wait_tail;	/* ops whose next SQE met a full SQ */
	struct nvt_bio *parked, **parked_tail;		/* bios waiting for ring space, FIFO */
	uint8_t *bounce_mem;
	uint8_t *bounce_free[NVT_URING_BOUNCE_NR];
	unsigned int nr_bounce_free;
	unsigned int fa_bad;		/* NVT_URING_FA_* the file refused (EOPNOTSUPP) */
	bool no_copy;			/* copy_file_range() refused once: the layer copies */
	/* What happened, for tests and debugging. */
	uint64_t nr_bounced, nr_parked, nr_short;
};

/* "file:line: setting" for messages about @setting of @cfg: its own line if given. */
static const char *nvt_uring_where(char *buf, size_t size, const struct nvt_ns_cfg *cfg,
				   const char *setting)
{
	const struct nvt_ns_setting *s = nvt_ns_cfg_setting(cfg, setting);

	snprintf(buf, size, "%s:%d: %s", cfg->file ? cfg->file : "(config)",
		 s && s->line ? s->line : cfg->line, setting);
	return buf;
}

/* ---- claims ---- */

static void nvt_uring_key(const struct stat *st, dev_t *dev, ino_t *ino)
{
	if (S_ISBLK(st->st_mode)) {
		/* Two device nodes of one disk are one disk. */
		*dev = st->st_rdev;
		*ino = 0;
	} else {
		*dev = st->st_dev;
		*ino = st->st_ino;
	}
}

static struct nvt_uring_claim *nvt_uring_claim_find(dev_t dev, ino_t ino)
{
	for (struct nvt_uring_claim *c = nvt_uring_claims; c; c = c->next)
		if (c->dev == dev && c->ino == ino)
			return c;
	return NULL;
}

/*
 * Take @st's file for @cl; false (and who holds it in @holder) if it is
 * taken. With @cl NULL only ask: before opening, where a held block device
 * would say only EBUSY.
 */
static bool nvt_uring_claim(struct nvt_uring_claim *cl, const struct stat *st,
			    uint32_t nsid, int line, struct nvt_uring_claim *holder)
{
	struct nvt_uring_claim *other;
	dev_t dev;
	ino_t ino;

	nvt_uring_key(st, &dev, &ino);
	pthread_mutex_lock(&nvt_uring_claims_lock);
	other = nvt_uring_claim_find(dev, ino);
	if (other)
		*holder = *other;
	else if (cl) {
		*cl = (struct nvt_uring_claim){ .next = nvt_uring_claims, .dev = dev, .ino = ino,
						.nsid = nsid, .line = line, .held = true };
		nvt_uring_claims = cl;
	}
	pthread_mutex_unlock(&nvt_uring_claims_lock);
	return !other;
}

static void nvt_uring_unclaim(struct nvt_uring_claim *cl)
{
	if (!cl->held)
		return;
	pthread_mutex_lock(&nvt_uring_claims_lock);
	for (struct nvt_uring_claim **p = &nvt_uring_claims; *p; p = &(*p)->next) {
		if (*p == cl) {
			*p = cl->next;
			break;
		}
	}
	pthread_mutex_unlock(&nvt_uring_claims_lock);
	cl->held = false;
}

/* ---- the I/O path ---- */

static struct nvt_uring_op *nvt_uring_op_alloc(struct nvt_uring_chan *c)
{
	struct nvt_uring_op *op = c->free_ops;

	c->free_ops = op->next;
	c->nr_free_ops--;
	return op;
}

static void nvt_uring_op_free(struct nvt_uring_chan *c, struct nvt_uring_op *op)
{
	if (op->bounce)
		c->bounce_free[c->nr_bounce_free++] = op->bounce;
	op->bounce = NULL;
	op->bio = NULL;
	op->next = c->free_ops;
	c->free_ops = op;
	c->nr_free_ops++;
}

/* Fill @sqe for the next step of @op. */
static void nvt_uring_op_prep(struct nvt_uring_chan *c, struct nvt_uring_op *op,
			      struct io_uring_sqe *sqe)
{
	int fd = c->ring.fixed_files ? op->file : op->file ? c->u->md_fd : c->u->fd;
	uint64_t rest = op->len - op->done;
	const struct iovec *iov = op->iov;
	unsigned int cnt = 1;

	switch (op->opcode) {
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
		if (op->bounce) {
			size_t n = rest < NVT_URING_BOUNCE_SIZE ? (size_t)rest : NVT_URING_BOUNCE_SIZE;

			if (op->opcode == IORING_OP_WRITEV)
				nvt_iov_copy(op->src, op->src_cnt, op->done, op->bounce, n, false);
			op->iov[0] = (struct iovec){ op->bounce, n };
		} else if (op->fill) {
			size_t n = rest < NVT_URING_FILL_SIZE ? (size_t)rest : NVT_URING_FILL_SIZE;

			op->iov[0] = (struct iovec){ (void *)op->fill, n };
		} else if (!op->done && op->exact) {
			/* The common case: the bio's own iovecs, nothing copied. */
			iov = op->src;
			cnt = op->src_cnt;
		} else {
			cnt = nvt_iov_slice(op->src, op->src_cnt, op->done, rest,
						  op->iov, NVT_URING_OP_IOV);
		}
		if (op->bounce && c->ring.fixed_bufs) {
			/* Our own staging memory, pinned once: no page walk per transfer. */
			if (op->opcode == IORING_OP_READV)
				io_uring_prep_read_fixed(sqe, fd, op->iov[0].iov_base,
							 (unsigned int)op->iov[0].iov_len,
							 op->off + op->done, 0);
			else
				io_uring_prep_write_fixed(sqe, fd, op->iov[0].iov_base,
							  (unsigned int)op->iov[0].iov_len,
							  op->off + op->done, 0);
			sqe->rw_flags = op->rw_flags;
		} else if (op->opcode == IORING_OP_READV) {
			io_uring_prep_readv(sqe, fd, iov, cnt, op->off + op->done);
		} else {
			io_uring_prep_writev2(sqe, fd, iov, cnt, op->off + op->done, op->rw_flags);
		}
		break;
	case IORING_OP_FSYNC:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case IORING_OP_FALLOCATE:
		io_uring_prep_fallocate(sqe, fd, op->fa_mode, (off_t)op->off, (off_t)op->len);
		break;
	}
	if (c->ring.fixed_files)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, op);
}

/* Queue @op's next SQE; with the SQ full it waits (in order) for the poller's submit. */
static void nvt_uring_op_queue(struct nvt_uring_chan *c, struct nvt_uring_op *op)
{
	struct io_uring_sqe *sqe = c->sqe_wait ? NULL : io_uring_get_sqe(&c->ring.uring);

	if (!sqe) {
		op->next = NULL;
		*c->sqe_wait_tail = op;
		c->sqe_wait_tail = &op->next;
		return;
	}
	nvt_uring_op_prep(c, op, sqe);
}

/* A read or write of @len bytes at @off over @iov: checked and sized, not yet queued. */
static int nvt_uring_plan_rw(struct nvt_uring_chan *c, struct nvt_uring_op *op, bool write,
			     unsigned int file, uint64_t off, uint64_t len,
			     const struct iovec *iov, unsigned int cnt, bool fua)
{
	bool direct = !file && c->u->direct;
	uint64_t sum = 0;

	*op = (struct nvt_uring_op){
		.opcode = write ? IORING_OP_WRITEV : IORING_OP_READV,
		.file = (uint8_t)file,
		.rw_flags = write && fua ? RWF_DSYNC : 0,
		.off = off,
		.len = len,
		.src = iov,
		.src_cnt = cnt,
	};
	bool trimmed = false;
	unsigned int i;

	/* Only the iovecs that hold the len bytes (a front's buffers may be bigger). */
	for (i = 0; i < cnt && sum < len; i++) {
		uint64_t l = iov[i].iov_len;

		if (l > len - sum) {
			l = len - sum;
			trimmed = true;
		}
		sum += l;
		/* O_DIRECT takes only aligned segments; anything else is staged. */
		if (direct && ((uintptr_t)iov[i].iov_base % c->u->mem_align ||
			       l % c->u->len_align))
			op->want_bounce = true;
	}
	if (sum < len)
		return -EINVAL;
	op->src_cnt = i;
	op->exact = !trimmed && i <= IOV_MAX;
	return 0;
}

/* Write @len bytes of @fill at @off of the sidecar. */
static void nvt_uring_plan_fill(struct nvt_uring_op *op, uint64_t off, uint64_t len,
				const uint8_t *fill)
{
	*op = (struct nvt_uring_op){ .opcode = IORING_OP_WRITEV, .file = 1, .off = off,
				     .len = len, .fill = fill };
}

/*
 * fallocate() over the data. @first is tried, then @second (0: none) if the
 * file refuses the first; a mode this channel has seen refused is skipped.
 */
static int nvt_uring_plan_falloc(struct nvt_uring_chan *c, struct nvt_uring_op *op,
				 uint64_t off, uint64_t len, unsigned int first, unsigned int second)
{
	unsigned int modes[2] = { first, second };
	int mode[2], n = 0;

	for (int i = 0; i < 2; i++)
		if (modes[i] && !(c->fa_bad & modes[i]))
			mode[n++] = (modes[i] == NVT_URING_FA_ZERO ? FALLOC_FL_ZERO_RANGE
								   : FALLOC_FL_PUNCH_HOLE) |
				    FALLOC_FL_KEEP_SIZE;
	if (!n)
		return -EOPNOTSUPP;
	*op = (struct nvt_uring_op){ .opcode = IORING_OP_FALLOCATE, .file = 0, .off = off,
				     .len = len, .fa_mode = mode[0], .fa_next = n > 1 ? mode[1] : 0 };
	return 0;
}

/*
 * The ops @bio needs, in @plan (at most two: the data file and the sidecar).
 * Return: 0 (*n may be 0: nothing to do) or -errno to complete it with.
 */
static int nvt_uring_plan(struct nvt_uring_chan *c, struct nvt_bio *bio,
			  struct nvt_uring_op plan[2], unsigned int *n)
{
	struct nvt_ns *ns = c->ns;
	struct nvt_uring_ns *u = c->u;
	uint64_t off = bio->slba << ns->lba_shift, len = (uint64_t)bio->nlb << ns->lba_shift;
	uint64_t md_off = bio->slba * ns->md_size, md_len = (uint64_t)bio->nlb * ns->md_size;
	bool md = u->md_fd >= 0;
	int ret;

	*n = 0;
	switch (bio->op) {
	case NVT_BIO_READ:
	case NVT_BIO_WRITE:
		if (!bio->nlb)
			return 0;
		ret = nvt_uring_plan_rw(c, &plan[(*n)++], bio->op == NVT_BIO_WRITE, 0, off, len,
					bio->iov, bio->iov_cnt, bio->flags & NVT_BIO_FUA);
		if (ret)
			return ret;
		/* Without md_iov the caller wants the data only (the metadata stays as it is). */
		if (md && bio->md_iov)
			ret = nvt_uring_plan_rw(c, &plan[(*n)++], bio->op == NVT_BIO_WRITE, 1,
						md_off, md_len, bio->md_iov, bio->md_iov_cnt,
						bio->flags & NVT_BIO_FUA);
		return ret;

	case NVT_BIO_FLUSH:
		plan[(*n)++] = (struct nvt_uring_op){ .opcode = IORING_OP_FSYNC, .file = 0 };
		if (md)
			plan[(*n)++] = (struct nvt_uring_op){ .opcode = IORING_OP_FSYNC, .file = 1 };
		return 0;

	case NVT_BIO_WRITE_ZEROES:
		if (!bio->nlb)
			return 0;
		/*
		 * ZERO_RANGE keeps the space. On a block device it is BLKZEROOUT
		 * (blkdev_fallocate() issues the same zeroout), and through the
		 * ring it runs on an io-wq worker, where the ioctl would block this
		 * poll group. PUNCH_HOLE reads back as zeroes too: first when the
		 * host allowed deallocation; on a file also when ZERO_RANGE is
		 * refused (tmpfs), as a file created sparse never promised its
		 * space anyway.
		 */
		if (bio->flags & NVT_BIO_DEAC)
			ret = nvt_uring_plan_falloc(c, &plan[(*n)++], off, len, NVT_URING_FA_PUNCH,
						    NVT_URING_FA_ZERO);
		else
			ret = nvt_uring_plan_falloc(c, &plan[(*n)++], off, len, NVT_URING_FA_ZERO,
						    u->blkdev ? 0 : NVT_URING_FA_PUNCH);
		if (ret || !md)
			return ret;
		/* The metadata: what the layer generated (PI for the zeroes), else zeroes. */
		if (bio->md_iov)
			return nvt_uring_plan_rw(c, &plan[(*n)++], true, 1, md_off, md_len,
						 bio->md_iov, bio->md_iov_cnt, false);
		nvt_uring_plan_fill(&plan[(*n)++], md_off, md_len, u->zeroes);
		return 0;

	case NVT_BIO_DEALLOCATE:
		if (!bio->nlb)
			return 0;
		/*
		 * Reads must give zeroes afterwards. On a block device PUNCH_HOLE
		 * is a zeroout that may unmap (refused where the device cannot),
		 * not BLKDISCARD, after which blocks may read back as anything.
		 */
		ret = nvt_uring_plan_falloc(c, &plan[(*n)++], off, len, NVT_URING_FA_PUNCH,
					    NVT_URING_FA_ZERO);
		if (ret || !md)
			return ret;
		/* Escape PI (all ones) on a PI namespace, as after a Format. */
		nvt_uring_plan_fill(&plan[(*n)++], md_off, md_len,
				    ns->pi.type ? u->ones : u->zeroes);
		return 0;

	default:
		return -EOPNOTSUPP;
	}
}

/*
 * Start @bio if the ring has room for all of it. Return: -EAGAIN (nothing
 * done: park it), or 0 (queued, or completed already).
 */
static int nvt_uring_start(struct nvt_uring_chan *c, struct nvt_bio *bio)
{
	struct nvt_uring_op plan[2];
	unsigned int n, bounces = 0;
	int ret;

	ret = nvt_uring_plan(c, bio, plan, &n);
	if (ret || !n) {
		nvt_bio_backend_done(bio, ret);
		return 0;
	}
	for (unsigned int i = 0; i < n; i++)
		bounces += plan[i].want_bounce;
	if (c->nr_free_ops < n || io_uring_sq_space_left(&c->ring.uring) < n || c->sqe_wait ||
	    c->nr_bounce_free < bounces)
		return -EAGAIN;
	bio->be_priv.pending = n;
	bio->be_priv.err = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct nvt_uring_op *op = nvt_uring_op_alloc(c);

		*op = plan[i];
		op->bio = bio;
		if (op->want_bounce) {
			op->bounce = c->bounce_free[--c->nr_bounce_free];
			c->nr_bounced++;
		}
		nvt_uring_op_queue(c, op);
	}
	return 0;
}

static void nvt_uring_park(struct nvt_uring_chan *c, struct nvt_bio *bio)
{
	bio->be_priv.next = NULL;
	*c->parked_tail = bio;
	c->parked_tail = &bio->be_priv.next;
	c->nr_parked++;
}

/*
 * After a reap: ops waiting for an SQE first (they hold CQ slots already),
 * then parked bios in order. Return: whether any still wait.
 */
static bool nvt_uring_resume(struct nvt_uring_ring *r)
{
	struct nvt_uring_chan *c = container_of(r, struct nvt_uring_chan, ring);

	while (c->sqe_wait) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring.uring);
		struct nvt_uring_op *op = c->sqe_wait;

		if (!sqe)
			return true;
		c->sqe_wait = op->next;
		if (!c->sqe_wait)
			c->sqe_wait_tail = &c->sqe_wait;
		nvt_uring_op_prep(c, op, sqe);
	}
	while (c->parked) {
		struct nvt_bio *bio = c->parked;

		c->parked = bio->be_priv.next;
		if (!c->parked)
			c->parked_tail = &c->parked;
		if (nvt_uring_start(c, bio) == -EAGAIN) {
			/* Back at the head: it keeps its turn. */
			bio->be_priv.next = c->parked;
			if (!c->parked)
				c->parked_tail = &bio->be_priv.next;
			c->parked = bio;
			return true;
		}
	}
	return c->parked || c->sqe_wait;
}

/* One CQE for @data, an op of @r's channel: finish it, or queue its next step. */
static void nvt_uring_op_complete(struct nvt_uring_ring *r, void *data, int res)
{
	struct nvt_uring_chan *c = container_of(r, struct nvt_uring_chan, ring);
	struct nvt_uring_op *op = data;
	struct nvt_bio *bio = op->bio;
	int err = 0;

	switch (op->opcode) {
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
		if (res == -EAGAIN || res == -EINTR) {
			nvt_uring_op_queue(c, op);
			return;
		}
		if (res < 0) {
			err = res;
			break;
		}
		if (!res) {
			/* Past the end of the file (it shrank behind us), or no progress. */
			err = -EIO;
			break;
		}
		if (op->bounce && op->opcode == IORING_OP_READV)
			nvt_iov_copy(op->src, op->src_cnt, op->done, op->bounce,
					   (size_t)res, true);
		op->done += (uint64_t)res;
		if (op->done < op->len) {
			/* Short (or the next piece of a staged or filled one): the rest goes again. */
			if (!op->bounce && !op->fill)
				c->nr_short++;
			nvt_uring_op_queue(c, op);
			return;
		}
		break;
	case IORING_OP_FALLOCATE:
		if (res == -EOPNOTSUPP) {
			/* Remembered: the next bio of this channel does not ask again. */
			c->fa_bad |= (op->fa_mode & FALLOC_FL_ZERO_RANGE) ? NVT_URING_FA_ZERO
									  : NVT_URING_FA_PUNCH;
			if (op->fa_next) {
				op->fa_mode = op->fa_next;
				op->fa_next = 0;
				nvt_uring_op_queue(c, op);
				return;
			}
		}
		err = res < 0 ? res : 0;
		break;
	default:
		err = res < 0 ? res : 0;
		break;
	}
	nvt_uring_op_free(c, op);
	if (err && !bio->be_priv.err)
		bio->be_priv.err = err;
	if (!--bio->be_priv.pending)
		nvt_bio_backend_done(bio, bio->be_priv.err);
}

static const struct nvt_uring_ring_ops nvt_uring_ring_ops = {
	.complete = nvt_uring_op_complete,
	.resume = nvt_uring_resume,
};

/*
 * copy_file_range() is synchronous: a Copy holds this poll group for as
 * long as the kernel takes (next to nothing for a reflink on XFS or btrfs,
 * a byte copy elsewhere). Acceptable for now: liburing 2.3 has no copy op
 * to take it off the thread. EXDEV, EINVAL, EOPNOTSUPP: the kernel will
 * not do it here, and the layer copies over READ and WRITE instead.
 */
static int nvt_uring_cfr(int fd, uint64_t src, uint64_t dst, uint64_t len)
{
	loff_t in = (loff_t)src, out = (loff_t)dst;

	while (len) {
		ssize_t n = copy_file_range(fd, &in, fd, &out, (size_t)len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
			    errno == ENOSYS)
				return -EOPNOTSUPP;
			return -errno;
		}
		if (!n)
			return -EIO;	/* past the end of the file */
		len -= (uint64_t)n;
	}
	return 0;
}

static int nvt_uring_copy(struct nvt_uring_chan *c, struct nvt_bio *bio)
{
	struct nvt_ns *ns = c->ns;
	uint64_t src = bio->copy_src, dst = bio->slba, nlb = bio->nlb;
	int ret;

	if (!nlb)
		return 0;
	if (src >= ns->nblocks || nlb > ns->nblocks - src)
		return -ERANGE;
	/* One file: copy_file_range() refuses overlap, and the layer copies overlap-safe. */
	if (c->no_copy || (src < dst + nlb && dst < src + nlb))
		return -EOPNOTSUPP;
	ret = nvt_uring_cfr(c->u->fd, src << ns->lba_shift, dst << ns->lba_shift,
			    nlb << ns->lba_shift);
	if (!ret && c->u->md_fd >= 0)
		ret = nvt_uring_cfr(c->u->md_fd, src * ns->md_size, dst * ns->md_size,
				    nlb * ns->md_size);
	if (ret == -EOPNOTSUPP)
		c->no_copy = true;
	return ret;
}

static void nvt_uring_submit(struct nvt_bio *bio, void *chan)
{
	struct nvt_uring_chan *c = chan;
	struct nvt_ns *ns = c->ns;

	nvt_uring_ring_poller_on(&c->ring);
	bio->be_priv = (struct nvt_bio_be){ 0 };
	/* The layer hands a backend separate metadata only. */
	if (bio->flags & NVT_BIO_EXT) {
		nvt_bio_backend_done(bio, -EINVAL);
		return;
	}
	if (bio->op != NVT_BIO_FLUSH &&
	    (bio->slba >= ns->nblocks || bio->nlb > ns->nblocks - bio->slba)) {
		nvt_bio_backend_done(bio, -ERANGE);
		return;
	}
	if (bio->op == NVT_BIO_COPY) {
		nvt_bio_backend_done(bio, nvt_uring_copy(c, bio));
		return;
	}
	/* Behind bios already waiting, so none overtakes another. */
	if (c->parked || nvt_uring_start(c, bio) == -EAGAIN)
		nvt_uring_park(c, bio);
}

/* ---- channels ---- */

#define NVT_URING_DRAIN_MS	30000	/* a file's I/O; a block device's gives up well before */

/*
 * Before the ring and its staging buffers go: what is waiting is started
 * and every op out is reaped (the kernel reads and writes the bounce
 * buffers until its CQE), at most NVT_URING_DRAIN_MS; the bios complete
 * as they would have. Return: false if some never came back (the ring
 * and the memory it may still use must then stay).
 */
static bool nvt_uring_drain(struct nvt_uring_chan *c)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };
	unsigned int waited = 0;

	while (c->nr_free_ops < c->nr_ops || c->parked) {
		struct io_uring_cqe *cqe;

		if (nvt_uring_ring_reap(&c->ring)) {
			nvt_uring_resume(&c->ring);
			continue;
		}
		nvt_uring_resume(&c->ring);
		if (io_uring_sq_ready(&c->ring.uring) && io_uring_submit(&c->ring.uring) > 0)
			continue;
		if (waited >= NVT_URING_DRAIN_MS)
			return false;
		io_uring_wait_cqe_timeout(&c->ring.uring, &cqe, &ts);
		waited += 100;
	}
	return true;
}

static void nvt_uring_chan_destroy(struct nvt_ns *ns, void *chan)
{
	struct nvt_uring_chan *c = chan;
	bool drained = true;

	if (!c)
		return;
	if (c->ring.ring_ok && c->ops)
		drained = nvt_uring_drain(c);
	nvt_uring_ring_destroy(&c->ring, drained);
	if (!drained) {
		nvt_err("nsid %u: %u file ops never completed in %u ms: the ring and its buffers are left allocated",
			ns->nsid, c->nr_ops - c->nr_free_ops, NVT_URING_DRAIN_MS);
		return;
	}
	free(c->bounce_mem);
	free(c->ops);
	free(c);
}

static int nvt_uring_chan_create(struct nvt_ns *ns, struct nvt_poll_group *pg, void **chan)
{
	struct nvt_uring_ns *u = ns->be_priv;
	/*
	 * COOP_TASKRUN: completions from io-wq workers (all of them on tmpfs)
	 * do not IPI this thread; they run at its next kernel entry, which the
	 * poll group's epoll_wait is. Measured (loop_bench, tmpfs): about 2.5x
	 * the IOPS of the default. Kernels before 5.19 refuse it: then without.
	 */
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
				     .cq_entries = 2 * nvt_uring_sq_entries };
	struct nvt_uring_chan *c;
	int files[2] = { u->fd, u->md_fd };
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ns = ns;
	c->u = u;
	c->sqe_wait_tail = &c->sqe_wait;
	c->parked_tail = &c->parked;
	snprintf(c->name, sizeof(c->name), "nsid %u", ns->nsid);
	ret = nvt_uring_ring_create(&c->ring, nvt_uring_sq_entries, &p, &nvt_uring_ring_ops, pg,
				    c->name);
	if (ret)
		goto out_destroy;
	/* One op per CQ entry: however the kernel completes them, the CQ never overflows. */
	c->nr_ops = p.cq_entries;
	c->ops = calloc(c->nr_ops, sizeof(*c->ops));
	if (!c->ops)
		goto out_nomem;
	for (unsigned int i = 0; i < c->nr_ops; i++)
		nvt_uring_op_free(c, &c->ops[i]);
	if (u->direct) {
		size_t align = u->mem_align > 4096 ? u->mem_align : 4096;

		if (posix_memalign((void **)&c->bounce_mem, align,
				   NVT_URING_BOUNCE_NR * NVT_URING_BOUNCE_SIZE))
			goto out_nomem;
		for (unsigned int i = 0; i < NVT_URING_BOUNCE_NR; i++)
			c->bounce_free[c->nr_bounce_free++] = c->bounce_mem +
							       i * NVT_URING_BOUNCE_SIZE;
		{
			struct iovec all = { c->bounce_mem, NVT_URING_BOUNCE_NR * NVT_URING_BOUNCE_SIZE };

			nvt_uring_ring_register_bufs(&c->ring, &all, 1);
		}
	}
	nvt_uring_ring_register_files(&c->ring, files, u->md_fd >= 0 ? 2 : 1);
	ret = nvt_uring_ring_enable(&c->ring);
	if (ret)
		goto out_destroy;
	*chan = c;
	return 0;

out_nomem:
	ret = -ENOMEM;
out_destroy:
	nvt_uring_chan_destroy(ns, c);
	return ret;
}

/* ---- open and close (control path) ---- */

/* Whole-buffer pread/pwrite. Return: 0 or -errno (-EIO past the end). */
static int nvt_uring_pio(int fd, void *buf, size_t len, uint64_t off, bool write)
{
	uint8_t *b = buf;

	while (len) {
		ssize_t n = write ? pwrite(fd, b, len, (off_t)off) : pread(fd, b, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!n)
			return -EIO;
		b += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void nvt_uring_close(struct nvt_ns *ns)
{
	struct nvt_uring_ns *u = ns->be_priv;

	if (!u)
		return;
	nvt_uring_unclaim(&u->data_claim);
	nvt_uring_unclaim(&u->md_claim);
	if (u->fd >= 0)
		close(u->fd);
	if (u->md_fd >= 0)
		close(u->md_fd);
	free(u->zeroes);
	free(u->ones);
	free(u);
	ns->be_priv = NULL;
}

/* A new regular file of @bytes, sparse (or filled with @fill >= 0). Return: 0 or -errno. */
static int nvt_uring_create(const char *where, const char *path, uint64_t bytes, int fill)
{
	int fd, ret = 0;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		nvt_err("%s: %s: cannot create: %s%s", where, path, strerror(-ret),
			ret == -ENOENT ? " (its directory does not exist)" : "");
		return ret;
	}
	if (ftruncate(fd, (off_t)bytes)) {
		ret = -errno;
		nvt_err("%s: %s: cannot make it %" PRIu64 " bytes: %s", where, path, bytes,
			strerror(-ret));
		goto out_unlink;
	}
	if (fill >= 0) {
		size_t chunk = 1u << 20;
		uint8_t *buf = malloc(chunk);

		if (!buf) {
			ret = -ENOMEM;
			goto out_unlink;
		}
		memset(buf, fill, chunk);
		for (uint64_t off = 0; off < bytes && !ret; off += chunk)
			ret = nvt_uring_pio(fd, buf, bytes - off < chunk ? (size_t)(bytes - off) : chunk,
					    off, true);
		free(buf);
		/* A crash must not leave holes (zero PI, failing reads) behind. */
		if (!ret && fdatasync(fd))
			ret = -errno;
		if (ret) {
			nvt_err("%s: %s: cannot fill it: %s", where, path, strerror(-ret));
			goto out_unlink;
		}
	}
	close(fd);
	return 0;

out_unlink:
	close(fd);
	unlink(path);
	return ret;
}

static int nvt_uring_refuse_shared(const char *where, const char *path,
				   const struct nvt_uring_claim *holder)
{
	nvt_err("%s: %s: already used by nsid %u (line %d): a file backs one namespace only",
		where, path, holder->nsid, holder->line);
	return -EBUSY;
}

/*
 * O_DIRECT, as far as this file takes it: the alignment it wants, checked
 * with one direct read. Where it does not, buffered I/O (one info line).
 */
static void nvt_uring_dio_setup(struct nvt_ns *ns, struct nvt_uring_ns *u, const char *where,
				const char *path, uint32_t lbs)
{
	char why[96] = "";
	void *buf = NULL;

	u->mem_align = u->len_align = lbs ? lbs : ns->block_size;
#ifdef STATX_DIOALIGN
	{
		struct statx stx;

		if (!statx(u->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) &&
		    (stx.stx_mask & STATX_DIOALIGN)) {
			if (!stx.stx_dio_offset_align) {
				snprintf(why, sizeof(why), "the filesystem has no direct I/O for it");
			} else if (stx.stx_dio_offset_align > ns->block_size) {
				snprintf(why, sizeof(why),
					 "direct I/O needs %u-byte blocks, more than block_size",
					 stx.stx_dio_offset_align);
			} else {
				u->mem_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
				u->len_align = stx.stx_dio_offset_align;
			}
		}
	}
#endif
	if (!*why) {
		int ret = -ENOMEM;

		if (!posix_memalign(&buf, 4096, ns->block_size))
			ret = nvt_uring_pio(u->fd, buf, ns->block_size, 0, false);
		if (ret)
			snprintf(why, sizeof(why), "a direct read failed: %s", strerror(-ret));
		free(buf);
	}
	if (!*why)
		return;
	u->direct = false;
	fcntl(u->fd, F_SETFL, fcntl(u->fd, F_GETFL) & ~O_DIRECT);
	nvt_info("%s: %s: no O_DIRECT (%s): buffered I/O through the page cache", where, path,
		 why);
}

static int nvt_uring_open_blkdev(struct nvt_ns *ns, struct nvt_uring_ns *u,
				 const struct nvt_ns_cfg *cfg, const char *path, bool direct)
{
	char where[NVT_URING_WHERE], wsize[NVT_URING_WHERE];
	uint64_t bytes;
	int lbs, ret;

	nvt_uring_where(where, sizeof(where), cfg, "path");
	/* O_EXCL on a block device: refused while it is mounted or held by anyone else. */
	u->fd = open(path, O_RDWR | O_CLOEXEC | O_EXCL | (direct ? O_DIRECT : 0));
	if (u->fd < 0) {
		ret = -errno;
		nvt_err("%s: %s: cannot open: %s%s", where, path, strerror(-ret),
			ret == -EBUSY ? " (in use: mounted, or held by another program)" : "");
		return ret;
	}
	u->blkdev = true;
	u->direct = direct;
	if (ioctl(u->fd, BLKGETSIZE64, &bytes) || ioctl(u->fd, BLKSSZGET, &lbs)) {
		ret = -errno;
		nvt_err("%s: %s: cannot read its size: %s", where, path, strerror(-ret));
		return ret;
	}
	if ((uint32_t)lbs > ns->block_size) {
		nvt_err("%s: %u is smaller than the %d-byte logical blocks of %s",
			nvt_uring_where(wsize, sizeof(wsize), cfg, "block_size"), ns->block_size,
			lbs, path);
		return -EINVAL;
	}
	nvt_uring_where(wsize, sizeof(wsize), cfg, "size");
	if (!ns->nblocks) {
		if (!bytes || bytes % ns->block_size) {
			nvt_err("%s: %s is %" PRIu64 " bytes, not a multiple of block_size %u",
				wsize, path, bytes, ns->block_size);
			return -EINVAL;
		}
		ns->nblocks = bytes >> ns->lba_shift;
	} else if (bytes != ns->nblocks << ns->lba_shift) {
		nvt_err("%s: %" PRIu64 " does not match the %" PRIu64 " bytes of %s (leave size out to take the device's)",
			wsize, ns->nblocks << ns->lba_shift, bytes, path);
		return -EINVAL;
	}
	if (u->direct)
		nvt_uring_dio_setup(ns, u, where, path, (uint32_t)lbs);
	return 0;
}

static int nvt_uring_open_file(struct nvt_ns *ns, struct nvt_uring_ns *u,
			       const struct nvt_ns_cfg *cfg, const char *path, bool direct)
{
	char where[NVT_URING_WHERE], wsize[NVT_URING_WHERE];
	struct stat st;
	int ret;

	nvt_uring_where(where, sizeof(where), cfg, "path");
	u->fd = open(path, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (u->fd < 0 && direct && errno == EINVAL) {
		/* The filesystem refuses O_DIRECT at open (tmpfs before Linux 6.6): buffered. */
		u->fd = open(path, O_RDWR | O_CLOEXEC);
		if (u->fd >= 0)
			nvt_info("%s: %s: no O_DIRECT (the filesystem refuses it): buffered I/O through the page cache",
				 where, path);
		direct = false;
	}
	if (u->fd < 0) {
		ret = -errno;
		nvt_err("%s: %s: cannot open: %s", where, path, strerror(-ret));
		return ret;
	}
	u->direct = direct;
	if (fstat(u->fd, &st)) {
		ret = -errno;
		nvt_err("%s: %s: %s", where, path, strerror(-ret));
		return ret;
	}
	nvt_uring_where(wsize, sizeof(wsize), cfg, "size");
	if (!ns->nblocks) {
		if (!st.st_size || st.st_size % ns->block_size) {
			nvt_err("%s: %s is %" PRIu64 " bytes, not a multiple of block_size %u",
				wsize, path, (uint64_t)st.st_size, ns->block_size);
			return -EINVAL;
		}
		ns->nblocks = (uint64_t)st.st_size >> ns->lba_shift;
	} else if ((uint64_t)st.st_size != ns->nblocks << ns->lba_shift) {
		nvt_err("%s: %" PRIu64 " does not match the %" PRIu64 " bytes of %s (leave size out to take the file's)",
			wsize, ns->nblocks << ns->lba_shift, (uint64_t)st.st_size, path);
		return -EINVAL;
	}
	if (u->direct)
		nvt_uring_dio_setup(ns, u, where, path, 0);
	return 0;
}

/* The data file or device. Return: 0 or -errno; *@created if this made the file. */
static int nvt_uring_open_data(struct nvt_ns *ns, struct nvt_uring_ns *u,
			       const struct nvt_ns_cfg *cfg, const char *path, bool *created)
{
	bool direct = nvt_ns_cfg_bool(cfg, "direct", true);
	char where[NVT_URING_WHERE];
	struct nvt_uring_claim holder;
	struct stat st;
	int ret;

	nvt_uring_where(where, sizeof(where), cfg, "path");
	if (stat(path, &st)) {
		ret = -errno;
		if (ret != -ENOENT) {
			nvt_err("%s: %s: %s", where, path, strerror(-ret));
			return ret;
		}
		if (!ns->nblocks) {
			nvt_err("%s: %s does not exist, and without size it cannot be created",
				where, path);
			return ret;
		}
		ret = nvt_uring_create(where, path, ns->nblocks << ns->lba_shift, -1);
		if (ret)
			return ret;
		*created = true;
		if (stat(path, &st)) {
			ret = -errno;
			nvt_err("%s: %s: %s", where, path, strerror(-ret));
			return ret;
		}
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		nvt_err("%s: %s is neither a regular file nor a block device", where, path);
		return -EINVAL;
	}
	if (!nvt_uring_claim(NULL, &st, 0, 0, &holder))
		return nvt_uring_refuse_shared(where, path, &holder);
	ret = S_ISBLK(st.st_mode) ? nvt_uring_open_blkdev(ns, u, cfg, path, direct)
				  : nvt_uring_open_file(ns, u, cfg, path, direct);
	if (ret)
		return ret;
	/* Claim what was opened, which no rename since the stat can change. */
	if (fstat(u->fd, &st)) {
		ret = -errno;
		nvt_err("%s: %s: %s", where, path, strerror(-ret));
		return ret;
	}
	if (!nvt_uring_claim(&u->data_claim, &st, ns->nsid, cfg->line, &holder))
		return nvt_uring_refuse_shared(where, path, &holder);
	return 0;
}

/* The metadata sidecar, nblocks * md_size bytes. Return: 0 or -errno. */
static int nvt_uring_open_md(struct nvt_ns *ns, struct nvt_uring_ns *u,
			     const struct nvt_ns_cfg *cfg, const char *path, bool *created)
{
	uint64_t bytes = ns->nblocks * ns->md_size;
	char where[NVT_URING_WHERE];
	struct nvt_uring_claim holder;
	struct stat st;
	int ret;

	nvt_uring_where(where, sizeof(where), cfg, "metadata_path");
	if (!ns->md_size) {
		if (path) {
			nvt_err("%s: the namespace has no metadata (no pi, no pi.metadata_size) to keep in %s",
				where, path);
			return -EINVAL;
		}
		return 0;
	}
	if (!path) {
		nvt_err("%s: missing: the namespace has %u bytes of metadata per block%s, kept in a sidecar file",
			where, ns->md_size, ns->pi.type ? " (PI)" : "");
		return -EINVAL;
	}
	if (stat(path, &st)) {
		ret = -errno;
		if (ret != -ENOENT) {
			nvt_err("%s: %s: %s", where, path, strerror(-ret));
			return ret;
		}
		/* Never-written blocks carry the escape PI, as after a Format: reads check nothing. */
		ret = nvt_uring_create(where, path, bytes, ns->pi.type ? 0xff : -1);
		if (ret)
			return ret;
		*created = true;
		if (stat(path, &st)) {
			ret = -errno;
			nvt_err("%s: %s: %s", where, path, strerror(-ret));
			return ret;
		}
	}
	if (!S_ISREG(st.st_mode)) {
		nvt_err("%s: %s is not a regular file", where, path);
		return -EINVAL;
	}
	if (!nvt_uring_claim(NULL, &st, 0, 0, &holder))
		return nvt_uring_refuse_shared(where, path, &holder);
	/* Buffered: metadata runs are a few bytes per block, never aligned for O_DIRECT. */
	u->md_fd = open(path, O_RDWR | O_CLOEXEC);
	if (u->md_fd < 0 || fstat(u->md_fd, &st)) {
		ret = -errno;
		nvt_err("%s: %s: cannot open: %s", where, path, strerror(-ret));
		return ret;
	}
	if ((uint64_t)st.st_size != bytes) {
		nvt_err("%s: %s is %" PRIu64 " bytes, not %" PRIu64 " (%" PRIu64 " blocks, %u bytes of metadata each)",
			where, path, (uint64_t)st.st_size, bytes, ns->nblocks, ns->md_size);
		return -EINVAL;
	}
	if (!nvt_uring_claim(&u->md_claim, &st, ns->nsid, cfg->line, &holder))
		return nvt_uring_refuse_shared(where, path, &holder);
	u->zeroes = calloc(1, NVT_URING_FILL_SIZE);
	u->ones = malloc(NVT_URING_FILL_SIZE);
	if (!u->zeroes || !u->ones)
		return -ENOMEM;
	memset(u->ones, 0xff, NVT_URING_FILL_SIZE);
	return 0;
}

static int nvt_uring_open(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg)
{
	const char *path = nvt_ns_cfg_path(cfg, "path");
	const char *md_path = nvt_ns_cfg_path(cfg, "metadata_path");
	bool created = false, md_created = false;
	char where[NVT_URING_WHERE];
	struct nvt_uring_ns *u;
	int ret;

	if (!path) {
		nvt_err("%s: missing (required)", nvt_uring_where(where, sizeof(where), cfg, "path"));
		return -EINVAL;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->fd = u->md_fd = -1;
	ns->be_priv = u;
	ret = nvt_uring_open_data(ns, u, cfg, path, &created);
	if (ret)
		goto out_unlink;
	ret = nvt_uring_open_md(ns, u, cfg, md_path, &md_created);
	if (ret)
		goto out_unlink;
	return 0;

out_unlink:
	/* Nothing this open made is left behind. */
	if (md_created)
		unlink(md_path);
	if (created)
		unlink(path);
	nvt_uring_close(ns);
	return ret;
}

/* One block and its metadata, synchronously: scrub and fault injection. */
static int nvt_uring_block_io(struct nvt_ns *ns, uint64_t lba, void *data, void *md, bool write)
{
	struct nvt_uring_ns *u = ns->be_priv;
	void *buf = data, *staged = NULL;
	int ret;

	if (lba >= ns->nblocks)
		return -ERANGE;
	if (u->direct && (uintptr_t)data % u->mem_align) {
		if (posix_memalign(&staged, u->mem_align > 4096 ? u->mem_align : 4096,
				   ns->block_size))
			return -ENOMEM;
		buf = staged;
		if (write)
			memcpy(buf, data, ns->block_size);
	}
	ret = nvt_uring_pio(u->fd, buf, ns->block_size, lba << ns->lba_shift, write);
	if (!ret && staged && !write)
		memcpy(data, staged, ns->block_size);
	free(staged);
	if (!ret && md && u->md_fd >= 0)
		ret = nvt_uring_pio(u->md_fd, md, ns->md_size, lba * ns->md_size, write);
	return ret;
}

/*
 * Follow the file or device: the size asked for (or, with none, the
 * store's own) if it is larger. A regular file is extended (sparse) to a
 * size asked for; a device must have grown already. Never a shrink: the
 * hosts' data past the new end, and commands in flight that address it.
 */
static int nvt_uring_resize(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg, bool apply,
			    uint64_t *nblocks, char *why, size_t why_len)
{
	struct nvt_uring_ns *u = ns->be_priv;
	uint64_t cur = ns->nblocks, bytes, want;
	struct stat st;

	*nblocks = cur;
	if (u->blkdev ? ioctl(u->fd, BLKGETSIZE64, &bytes) : fstat(u->fd, &st)) {
		int err = errno;

		snprintf(why, why_len, "cannot read the store's size: %s", strerror(err));
		return -err;
	}
	if (!u->blkdev)
		bytes = (uint64_t)st.st_size;
	want = cfg->size ? cfg->size : bytes;
	if (want % ns->block_size) {
		snprintf(why, why_len, "%" PRIu64 " bytes is not a multiple of block_size %u", want,
			 ns->block_size);
		return -EINVAL;
	}
	if (want >> ns->lba_shift < cur) {
		snprintf(why, why_len, "a namespace cannot shrink live (%" PRIu64 " to %" PRIu64
			 " blocks): hosts may hold data past the new end", cur, want >> ns->lba_shift);
		return -EINVAL;
	}
	if (want >> ns->lba_shift == cur)
		return 0;
	if (u->md_fd >= 0) {
		snprintf(why, why_len, "a namespace with a metadata sidecar cannot grow live");
		return -EOPNOTSUPP;
	}
	if (bytes > want || (u->blkdev && bytes != want)) {
		snprintf(why, why_len, "%" PRIu64 " does not match the %" PRIu64 " bytes of the %s "
			 "(leave size out to take its size)", want, bytes, u->blkdev ? "device" : "file");
		return -EINVAL;
	}
	if (apply && bytes < want && ftruncate(u->fd, (off_t)want)) {
		int err = errno;

		snprintf(why, why_len, "cannot extend the file: %s", strerror(err));
		return -err;
	}
	*nblocks = want >> ns->lba_shift;
	return 0;
}

static const struct nvt_be_setting nvt_uring_settings[] = {
	{ "path", NVT_BE_SET_PATH, true,
	  "the regular file (created sparse at size if missing) or block device holding the blocks",
	  false },
	{ "metadata_path", NVT_BE_SET_PATH, false,
	  "sidecar file of per-block metadata (PI); required when the namespace has metadata",
	  true },
	{ "direct", NVT_BE_SET_BOOL, false,
	  "O_DIRECT where the filesystem takes it (the default); false: always the page cache",
	  false },
	{ .name = NULL },
};

const struct nvt_backend_ops nvt_uring_backend_ops = {
	.name = "file",
	.flags = NVT_BE_METADATA | NVT_BE_VOLATILE | NVT_BE_WRITE_ZEROES | NVT_BE_DEALLOCATE |
		 NVT_BE_COPY | NVT_BE_OWN_SIZE,
	.settings = nvt_uring_settings,
	.open = nvt_uring_open,
	.close = nvt_uring_close,
	.chan_create = nvt_uring_chan_create,
	.chan_destroy = nvt_uring_chan_destroy,
	.resize = nvt_uring_resize,
	.submit = nvt_uring_submit,
	.map = NULL,
	.block_io = nvt_uring_block_io,
};
