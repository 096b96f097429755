/* SPDX-License-Identifier: BSD-3-Clause */
/* The ramdisk backend: block data in one mapping, per-block metadata in a separate one. */
#define NVT_LOG_PREFIX "ram: "
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nvt/backend.h"
#include "nvt/config.h"
#include "nvt/iov.h"
#include "nvt/log.h"

struct nvt_ram {
	uint8_t *data;
	size_t data_len;	/* accessible; data_res is reserved for growth */
	uint8_t *md;		/* NULL when the format has no metadata */
	size_t md_len;
	size_t data_res, md_res;	/* reserved address range of each */
	/* Front ends with the data registered for DMA (nvt_ram_attach()): told at close. */
	struct nvt_ram_user *_Atomic users;
	/*
	 * A registration pins the pages it finds; a page given back to the
	 * kernel (MADV_DONTNEED) after that is replaced in our mapping by a
	 * fresh one while the registration keeps the old: DMA into it would be
	 * lost. So once nvt_ram_region() has been asked, pages are zeroed, not
	 * given back; releasing counts zeroing that may be giving some back.
	 */
	atomic_bool pinned;
	atomic_uint releasing;
};

static void (*_Atomic nvt_ram_in_place)(struct nvt_bio *bio);

/*
 * A live resize may grow a namespace this many times over: that much
 * address space is reserved at open (no memory, no commit charge) and
 * made accessible as it grows, so the mapping I/O uses never moves.
 */
#define NVT_RAM_GROW	16

/*
 * @len accessible at the start of a reservation of NVT_RAM_GROW times it,
 * or of @len alone where the address space has no room for that (*@res
 * says which).
 */
static void *nvt_ram_map(size_t len, size_t *res)
{
	void *p = MAP_FAILED;

	*res = len <= SIZE_MAX / NVT_RAM_GROW ? len * NVT_RAM_GROW : len;
	/* Untouched pages cost nothing, so a large namespace starts instantly. */
	for (;;) {
		p = mmap(NULL, *res, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED || *res == len)
			break;
		*res = len;
	}
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p, len, PROT_READ | PROT_WRITE)) {
		munmap(p, *res);
		return NULL;
	}
	return p;
}

static void nvt_ram_close(struct nvt_ns *ns)
{
	struct nvt_ram *ram = ns->be_priv;

	if (!ram)
		return;
	/* Registrations end before the pages go: one left would pin them, or a later mapping's. */
	for (struct nvt_ram_user *u = atomic_exchange(&ram->users, NULL), *next; u; u = next) {
		next = u->next;
		u->release(u);
	}
	if (ram->data)
		munmap(ram->data, ram->data_res);
	if (ram->md)
		munmap(ram->md, ram->md_res);
	free(ram);
	ns->be_priv = NULL;
}

static int nvt_ram_open(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg)
{
	struct nvt_ram *ram;

	ram = calloc(1, sizeof(*ram));
	if (!ram)
		return -ENOMEM;
	ns->be_priv = ram;
	ram->data_len = (size_t)ns->nblocks << ns->lba_shift;
	ram->data = nvt_ram_map(ram->data_len, &ram->data_res);
	if (!ram->data)
		goto out_close;
	if (ns->md_size) {
		ram->md_len = (size_t)ns->nblocks * ns->md_size;
		ram->md = nvt_ram_map(ram->md_len, &ram->md_res);
		if (!ram->md)
			goto out_close;
		/*
		 * As after an NVMe Format: a block never written carries the escape
		 * PI (app tag FFFFh, ref tag all ones), so reading it checks nothing
		 * instead of failing (NVM Command Set 1.0 §5.2.1.4).
		 */
		if (ns->pi.type)
			memset(ram->md, 0xff, ram->md_len);
	}
	return 0;

out_close:
	nvt_ram_close(ns);
	return -ENOMEM;
}

void *nvt_ram_block(struct nvt_ns *ns, uint64_t lba, void **md)
{
	struct nvt_ram *ram = ns->be_priv;

	if (ns->be != &nvt_ram_backend_ops || lba >= ns->nblocks)
		return NULL;
	if (md)
		*md = ram->md ? ram->md + lba * ns->md_size : NULL;
	return ram->data + (lba << ns->lba_shift);
}

bool nvt_ram_region(struct nvt_ns *ns, void **base, size_t *len)
{
	struct nvt_ram *ram = ns->be_priv;

	if (ns->be != &nvt_ram_backend_ops || !ram || !ram->data || ns->md_size)
		return false;
	/* Dekker with nvt_ram_zero(): it sees pinned, or we wait for its release to be over. */
	atomic_store(&ram->pinned, true);
	while (atomic_load(&ram->releasing))
		sched_yield();
	*base = ram->data;
	*len = ram->data_len;
	return true;
}

void nvt_ram_attach(struct nvt_ns *ns, struct nvt_ram_user *u)
{
	struct nvt_ram *ram = ns->be_priv;
	struct nvt_ram_user *head = atomic_load(&ram->users);

	do {
		u->next = head;
	} while (!atomic_compare_exchange_weak(&ram->users, &head, u));
}

void nvt_ram_set_in_place(void (*held)(struct nvt_bio *bio))
{
	atomic_store(&nvt_ram_in_place, held);
}

/* A read or write whose one buffer is its own blocks: the front end moves the data (see backend.h). */
static bool nvt_ram_is_in_place(const struct nvt_bio *bio, const struct nvt_ram *ram, size_t off,
				size_t len)
{
	return (bio->flags & NVT_BIO_IN_PLACE) &&
	       (bio->op == NVT_BIO_READ || bio->op == NVT_BIO_WRITE) && !ram->md &&
	       bio->iov_cnt == 1 && bio->iov[0].iov_base == ram->data + off &&
	       bio->iov[0].iov_len == len;
}

/* Zero [off, off + len) of the data; whole pages go back to the kernel (they read as zero). */
static void nvt_ram_zero(struct nvt_ram *ram, size_t off, size_t len, bool release)
{
	size_t page = 4096, start = (off + page - 1) & ~(page - 1), end = (off + len) & ~(page - 1);

	if (release && start < end) {
		bool released;

		atomic_fetch_add(&ram->releasing, 1);
		released = !atomic_load(&ram->pinned) &&
			   !madvise(ram->data + start, end - start, MADV_DONTNEED);
		atomic_fetch_sub(&ram->releasing, 1);
		if (released) {
			memset(ram->data + off, 0, start - off);
			memset(ram->data + end, 0, off + len - end);
			return;
		}
	}
	memset(ram->data + off, 0, len);
}

/* The primitives: data and metadata in separate buffers, always; complete in place. */
static int nvt_ram_do(struct nvt_bio *bio, struct nvt_ram *ram)
{
	struct nvt_ns *ns = bio->ns;
	size_t off = (size_t)bio->slba << ns->lba_shift, len = (size_t)bio->nlb << ns->lba_shift;
	uint8_t *md = ram->md ? ram->md + bio->slba * ns->md_size : NULL;
	size_t md_len = (size_t)bio->nlb * ns->md_size;
	bool read = bio->op == NVT_BIO_READ;

	if (bio->slba > ns->nblocks || bio->nlb > ns->nblocks - bio->slba)
		return -ERANGE;
	switch (bio->op) {
	case NVT_BIO_READ:
	case NVT_BIO_WRITE:
		if (nvt_iov_copy(bio->iov, bio->iov_cnt, 0, ram->data + off, len, read) != len)
			return -EINVAL;
		if (md && bio->md_iov_cnt &&
		    nvt_iov_copy(bio->md_iov, bio->md_iov_cnt, 0, md, md_len, read) != md_len)
			return -EINVAL;
		return 0;
	case NVT_BIO_FLUSH:
		/* RAM is the medium: a completed write is already there. */
		return 0;
	case NVT_BIO_WRITE_ZEROES:
	case NVT_BIO_DEALLOCATE:
		nvt_ram_zero(ram, off, len, bio->op == NVT_BIO_DEALLOCATE || (bio->flags & NVT_BIO_DEAC));
		if (!md)
			return 0;
		if (bio->op == NVT_BIO_WRITE_ZEROES && bio->md_iov_cnt)
			return nvt_iov_copy(bio->md_iov, bio->md_iov_cnt, 0, md, md_len, false) == md_len ?
			       0 : -EINVAL;
		/* Deallocated blocks read as never-written ones: the escape PI. */
		memset(md, bio->op == NVT_BIO_DEALLOCATE && ns->pi.type ? 0xff : 0, md_len);
		return 0;
	case NVT_BIO_COPY:
		if (bio->copy_src > ns->nblocks || bio->nlb > ns->nblocks - bio->copy_src)
			return -ERANGE;
		/* memmove: a source may overlap its destination. */
		memmove(ram->data + off, ram->data + ((size_t)bio->copy_src << ns->lba_shift), len);
		if (md)
			memmove(md, ram->md + bio->copy_src * ns->md_size, md_len);
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static void nvt_ram_submit(struct nvt_bio *bio, void *chan)
{
	struct nvt_ram *ram = bio->ns->be_priv;
	struct nvt_ns *ns = bio->ns;

	if (bio->slba <= ns->nblocks && bio->nlb <= ns->nblocks - bio->slba &&
	    nvt_ram_is_in_place(bio, ram, (size_t)bio->slba << ns->lba_shift,
				(size_t)bio->nlb << ns->lba_shift)) {
		void (*held)(struct nvt_bio *bio) = atomic_load(&nvt_ram_in_place);

		/* The front end completes it once its DMA is done; copying onto itself would be a no-op. */
		if (held)
			held(bio);
		else
			nvt_bio_backend_done(bio, -EINVAL);
		return;
	}
	nvt_bio_backend_done(bio, nvt_ram_do(bio, ram));
}

static int nvt_ram_block_io(struct nvt_ns *ns, uint64_t lba, void *data, void *md, bool write)
{
	void *bmd, *blk = nvt_ram_block(ns, lba, &bmd);

	if (!blk)
		return -ERANGE;
	if (write) {
		memcpy(blk, data, ns->block_size);
		if (md && bmd)
			memcpy(bmd, md, ns->md_size);
	} else {
		memcpy(data, blk, ns->block_size);
		if (md && bmd)
			memcpy(md, bmd, ns->md_size);
	}
	return 0;
}

/*
 * Grow within the reservation made at open: more of it made accessible,
 * nothing moved (I/O keeps using the same addresses); never shrink.
 */
static int nvt_ram_resize(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg, bool apply,
			  uint64_t *nblocks, char *why, size_t why_len)
{
	struct nvt_ram *ram = ns->be_priv;
	uint64_t cur = ns->nblocks, nb = cfg->size >> ns->lba_shift;
	size_t data_len, md_len;

	*nblocks = cur;
	if (nb < cur) {
		snprintf(why, why_len, "a namespace cannot shrink live (%llu to %llu blocks): hosts "
			 "may hold data past the new end", (unsigned long long)cur,
			 (unsigned long long)nb);
		return -EINVAL;
	}
	if (nb == cur)
		return 0;
	if (nb > ram->data_res >> ns->lba_shift ||
	    (ram->md && nb > ram->md_res / ns->md_size)) {
		snprintf(why, why_len, "a ram namespace grows live to %u times its size at start at "
			 "most (%zu bytes): restart nvtd for more", NVT_RAM_GROW, ram->data_res);
		return -ENOSPC;
	}
	*nblocks = nb;
	if (!apply)
		return 0;
	data_len = (size_t)nb << ns->lba_shift;
	md_len = (size_t)nb * ns->md_size;
	if (mprotect(ram->data, data_len, PROT_READ | PROT_WRITE) ||
	    (ram->md && mprotect(ram->md, md_len, PROT_READ | PROT_WRITE))) {
		snprintf(why, why_len, "mprotect: %s", strerror(errno));
		*nblocks = cur;
		return -ENOMEM;
	}
	/* As at open: blocks never written carry the escape PI. */
	if (ram->md && ns->pi.type)
		memset(ram->md + ram->md_len, 0xff, md_len - ram->md_len);
	ram->data_len = data_len;
	ram->md_len = md_len;
	return 0;
}

const struct nvt_backend_ops nvt_ram_backend_ops = {
	.name = "ram",
	.flags = NVT_BE_METADATA | NVT_BE_WRITE_ZEROES | NVT_BE_DEALLOCATE | NVT_BE_COPY,
	.open = nvt_ram_open,
	.close = nvt_ram_close,
	.submit = nvt_ram_submit,
	.map = nvt_ram_block,
	.block_io = nvt_ram_block_io,
	.resize = nvt_ram_resize,
};
