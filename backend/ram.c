/* SPDX-License-Identifier: BSD-3-Clause */
/* The ramdisk backend: block data in one mapping, per-block metadata in a separate one. */
#define NVT_LOG_PREFIX "ram: "
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nvt/backend.h"
#include "nvt/iov.h"
#include "nvt/log.h"

struct nvt_ram {
	uint8_t *data;
	size_t data_len;
	uint8_t *md;		/* NULL when the format has no metadata */
	size_t md_len;
	/* Front ends with the data registered for DMA (nvt_ram_attach()): told at close. */
	struct nvt_ram_user *_Atomic users;
};

static void (*_Atomic nvt_ram_in_place)(struct nvt_bio *bio);

static void *nvt_ram_map(size_t len)
{
	/* Untouched pages cost nothing, so a large namespace starts instantly. */
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
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
		munmap(ram->data, ram->data_len);
	if (ram->md)
		munmap(ram->md, ram->md_len);
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
	ram->data = nvt_ram_map(ram->data_len);
	if (!ram->data)
		goto out_close;
	if (ns->md_size) {
		ram->md_len = (size_t)ns->nblocks * ns->md_size;
		ram->md = nvt_ram_map(ram->md_len);
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
	return (bio->op == NVT_BIO_READ || bio->op == NVT_BIO_WRITE) && !ram->md &&
	       bio->iov_cnt == 1 && bio->iov[0].iov_base == ram->data + off &&
	       bio->iov[0].iov_len == len;
}

/* Zero [off, off + len) of the data; whole pages go back to the kernel (they read as zero). */
static void nvt_ram_zero(struct nvt_ram *ram, size_t off, size_t len, bool release)
{
	size_t page = 4096, start = (off + page - 1) & ~(page - 1), end = (off + len) & ~(page - 1);

	if (release && start < end &&
	    !madvise(ram->data + start, end - start, MADV_DONTNEED)) {
		memset(ram->data + off, 0, start - off);
		memset(ram->data + end, 0, off + len - end);
		return;
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

const struct nvt_backend_ops nvt_ram_backend_ops = {
	.name = "ram",
	.flags = NVT_BE_METADATA | NVT_BE_WRITE_ZEROES | NVT_BE_DEALLOCATE | NVT_BE_COPY,
	.open = nvt_ram_open,
	.close = nvt_ram_close,
	.submit = nvt_ram_submit,
	.map = nvt_ram_block,
	.block_io = nvt_ram_block_io,
};
