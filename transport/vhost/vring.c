/* SPDX-License-Identifier: BSD-3-Clause */
/* Guest memory of a vhost-user connection (regions, both address translations) and the split virtqueue walked over it. */
#define NVT_LOG_PREFIX "vhost: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvt/log.h"
#include "vhost_int.h"

/* [a, a + len) does not wrap: len >= 1 and the last byte is representable. */
static bool nvt_range_ok(uint64_t a, uint64_t len)
{
	return len && a + (len - 1) >= a;
}

/*
 * Touching a mapping past the end of its file raises SIGBUS, which would
 * take the whole daemon down: the fd must cover the region now, and must
 * not be able to shrink later. Only a memfd sealed against shrinking
 * (QEMU 7.2's memory-backend-memfd, seal=on by default, also with
 * hugetlb=on) promises that; a plain file (memory-backend-file) can be
 * truncated by anyone who may write it, so it is refused rather than
 * trusted with a signal handler on every guest access.
 */
static int nvt_vhost_region_fd_ok(int fd, uint32_t i, const struct nvt_vhost_mem_region_wire *w)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st))
		return -errno;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		nvt_warn("guest memory region %u is not sealed against shrinking (use memory-backend-memfd with seal=on): refused",
			 i);
		return -EPERM;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size < w->mmap_offset + w->memory_size) {
		nvt_warn("guest memory region %u (%llu bytes at offset %llu) is larger than its file (%lld bytes): refused",
			 i, (unsigned long long)w->memory_size, (unsigned long long)w->mmap_offset,
			 (long long)st.st_size);
		return -EINVAL;
	}
	return 0;
}

int nvt_vhost_mem_map(struct nvt_vhost_mem *mem, const struct nvt_vhost_msg *m)
{
	uint32_t n = m->payload.mem.nregions;

	memset(mem, 0, sizeof(*mem));
	if (!n || n > NVT_VHOST_MAX_REGIONS || n != m->nr_fds)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		const struct nvt_vhost_mem_region_wire *w = &m->payload.mem.regions[i];

		/* The mapping spans offset + size: neither the three ranges nor that sum may wrap. */
		if (!nvt_range_ok(w->guest_phys_addr, w->memory_size) ||
		    !nvt_range_ok(w->userspace_addr, w->memory_size) ||
		    w->mmap_offset > UINT64_MAX - w->memory_size ||
		    w->mmap_offset + w->memory_size > (uint64_t)SIZE_MAX)
			goto out_unmap;
		for (uint32_t j = 0; j < i; j++) {
			const struct nvt_vhost_mem_region_wire *o = &m->payload.mem.regions[j];

			/* Inclusive ends: neither range wraps, as checked above. */
			if (w->guest_phys_addr <= o->guest_phys_addr + (o->memory_size - 1) &&
			    o->guest_phys_addr <= w->guest_phys_addr + (w->memory_size - 1))
				goto out_unmap;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct nvt_vhost_mem_region_wire *w = &m->payload.mem.regions[i];
		struct nvt_vhost_region *r = &mem->r[i];
		size_t len = (size_t)(w->mmap_offset + w->memory_size);
		int ret = nvt_vhost_region_fd_ok(m->fds[i], i, w);
		void *p;

		if (ret) {
			nvt_vhost_mem_unmap(mem);
			return ret;
		}
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			       m->fds[i], 0);
		if (p == MAP_FAILED) {
			int err = -errno;

			nvt_warn("cannot map guest memory region %u (%llu bytes at offset %llu): %s",
				 i, (unsigned long long)w->memory_size,
				 (unsigned long long)w->mmap_offset, strerror(-err));
			nvt_vhost_mem_unmap(mem);
			return err;
		}
		*r = (struct nvt_vhost_region){
			.gpa = w->guest_phys_addr, .size = w->memory_size, .uva = w->userspace_addr,
			.mmap_offset = w->mmap_offset, .map = p, .map_len = len,
			.host = (uint8_t *)p + w->mmap_offset,
		};
		mem->nr = i + 1;
	}
	return 0;

out_unmap:
	nvt_vhost_mem_unmap(mem);
	return -EINVAL;
}

void nvt_vhost_mem_unmap(struct nvt_vhost_mem *mem)
{
	for (unsigned int i = 0; i < mem->nr; i++)
		munmap(mem->r[i].map, mem->r[i].map_len);
	memset(mem, 0, sizeof(*mem));
}

void *nvt_vhost_uva_to_va(const struct nvt_vhost_mem *mem, uint64_t uva, uint64_t len)
{
	if (!nvt_range_ok(uva, len))
		return NULL;
	for (unsigned int i = 0; i < mem->nr; i++) {
		const struct nvt_vhost_region *r = &mem->r[i];

		if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva))
			return r->host + (uva - r->uva);
	}
	return NULL;
}

/* The region holding guest-physical @gpa, or NULL. */
static const struct nvt_vhost_region *nvt_vhost_gpa_region(const struct nvt_vhost_mem *mem,
							   uint64_t gpa)
{
	for (unsigned int i = 0; i < mem->nr; i++)
		if (gpa >= mem->r[i].gpa && gpa - mem->r[i].gpa < mem->r[i].size)
			return &mem->r[i];
	return NULL;
}

void *nvt_vhost_gpa_to_va(const struct nvt_vhost_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct nvt_vhost_region *r;

	if (!nvt_range_ok(gpa, len))
		return NULL;
	r = nvt_vhost_gpa_region(mem, gpa);
	if (!r || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

int nvt_vhost_gpa_to_iov(const struct nvt_vhost_mem *mem, uint64_t gpa, uint64_t len,
			 struct iovec *iov, unsigned int max)
{
	unsigned int n = 0;

	if (!nvt_range_ok(gpa, len))
		return -EFAULT;
	/* Guest RAM may be split into regions that touch in guest-physical space: follow them. */
	while (len) {
		const struct nvt_vhost_region *r = nvt_vhost_gpa_region(mem, gpa);
		uint64_t in, room;

		if (!r)
			return -EFAULT;
		if (n == max)
			return -E2BIG;
		in = gpa - r->gpa;
		room = r->size - in;
		if (room > len)
			room = len;
		iov[n].iov_base = r->host + in;
		iov[n].iov_len = (size_t)room;
		n++;
		gpa += room;
		len -= room;
	}
	return (int)n;
}

/*
 * The guest may rewrite a descriptor while we read it: copy it once and
 * use only the copy, so every check holds for what is then used. By
 * memcpy: an indirect table may sit at any guest address, and a
 * misaligned struct access is undefined (UBSan aborts on it).
 */
static void nvt_vring_read_desc(const void *d, struct nvt_vring_desc *out)
{
	memcpy(out, d, sizeof(*out));
}

int nvt_vring_walk(const struct nvt_vring *vr, uint16_t head, struct iovec *iov, unsigned int max,
		   unsigned int *nr_out, unsigned int *nr_in)
{
	const struct nvt_vring_desc *table = vr->desc;
	unsigned int size = vr->num, seen = 0, n = 0, in = 0;
	bool indirect = false;
	uint32_t i = head;

	if (i >= size)
		return -EINVAL;
	for (;;) {
		struct nvt_vring_desc d;
		int ret;

		/* A chain visits each entry of its table at most once: more is a loop. */
		if (++seen > size)
			return -ELOOP;
		nvt_vring_read_desc((const uint8_t *)table + (size_t)i * sizeof(d), &d);
		if (d.flags & NVT_VRING_DESC_F_INDIRECT) {
			if (indirect || (d.flags & NVT_VRING_DESC_F_NEXT))
				return -EINVAL;	/* nested, or not the chain's last */
			if (!d.len || d.len % sizeof(struct nvt_vring_desc) ||
			    d.len / sizeof(struct nvt_vring_desc) > NVT_VHOST_MAX_RING)
				return -EINVAL;
			table = nvt_vhost_gpa_to_va(vr->mem, d.addr, d.len);
			if (!table)
				return -EFAULT;
			size = d.len / sizeof(struct nvt_vring_desc);
			indirect = true;
			seen = 0;
			i = 0;
			continue;
		}
		if (d.len) {
			ret = nvt_vhost_gpa_to_iov(vr->mem, d.addr, d.len, iov + n, max - n);
			if (ret < 0)
				return ret;
			if (d.flags & NVT_VRING_DESC_F_WRITE)
				in += (unsigned int)ret;
			else if (in)
				return -EINVAL;	/* readable after writable */
			n += (unsigned int)ret;
		}
		if (!(d.flags & NVT_VRING_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= size)
			return -EINVAL;
	}
	*nr_out = n - in;
	*nr_in = in;
	return 0;
}

int nvt_vring_pop(struct nvt_vring *vr, uint16_t *head, struct iovec *iov, unsigned int max,
		  unsigned int *nr_out, unsigned int *nr_in)
{
	uint16_t avail_idx, h;

	if (vr->broken)
		return -EIO;
	/* Acquire: the ring entries the driver wrote before bumping idx are visible. */
	avail_idx = __atomic_load_n(&vr->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vr->last_avail)
		return NVT_VRING_EMPTY;
	if ((uint16_t)(avail_idx - vr->last_avail) > vr->num) {
		nvt_vring_break(vr);
		return -EIO;
	}
	h = __atomic_load_n(&vr->avail->ring[vr->last_avail % vr->num], __ATOMIC_RELAXED);
	if (h >= vr->num) {
		nvt_vring_break(vr);
		return -EIO;
	}
	vr->last_avail++;
	*head = h;
	return nvt_vring_walk(vr, h, iov, max, nr_out, nr_in) ?: NVT_VRING_CHAIN;
}

/* The event-idx fields, after each ring (mapped with them when vr->event_idx). */
static uint16_t *nvt_vring_avail_event(const struct nvt_vring *vr)
{
	return (uint16_t *)&vr->used->ring[vr->num];
}

static uint16_t *nvt_vring_used_event(const struct nvt_vring *vr)
{
	return &vr->avail->ring[vr->num];
}

void nvt_vring_kicks_off(struct nvt_vring *vr)
{
	/* With event idx the avail_event we last published stays behind: the driver has passed it. */
	if (!vr->event_idx)
		__atomic_store_n(&vr->used->flags, NVT_VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}

bool nvt_vring_kicks_on(struct nvt_vring *vr)
{
	if (vr->broken)
		return false;
	/*
	 * Our store must be visible before we read avail->idx, as the
	 * driver's idx store is before its flags (or avail_event) read: one
	 * of us sees the other, so a chain never has neither a kick nor a look.
	 */
	if (vr->event_idx)
		__atomic_exchange_n(nvt_vring_avail_event(vr), vr->last_avail, __ATOMIC_SEQ_CST);
	else
		__atomic_exchange_n(&vr->used->flags, 0, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&vr->avail->idx, __ATOMIC_SEQ_CST) != vr->last_avail;
}

/* Did used->idx, moving from @old to @new, pass the driver's @event (virtio 1.1 2.6.7.2)? */
static bool nvt_vring_need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void nvt_vring_break(struct nvt_vring *vr)
{
	uint64_t one = 1;

	if (vr->broken)
		return;
	vr->broken = true;
	if (vr->err_fd >= 0 && write(vr->err_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN (non-blocking eventfd): QEMU has been told already. */
	}
}

void nvt_vring_push(struct nvt_vring *vr, uint16_t head, uint32_t len)
{
	struct nvt_vring_used_elem *e = &vr->used->ring[vr->used_idx % vr->num];

	e->id = head;
	e->len = len;
	vr->used_idx++;
	/* Release: the element and the buffers it names are written before idx says so. */
	__atomic_store_n(&vr->used->idx, vr->used_idx, __ATOMIC_RELEASE);
}

int nvt_vhost_eventfd_prepare(int fd)
{
	char path[32], link[32];
	ssize_t n;
	int fl;

	/* An eventfd is the one kind of fd whose write cannot wait on a reader. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	if (strcmp(link, "anon_inode:[eventfd]"))
		return -EBADF;
	/* Even one blocks when its counter is full: a write must never hang the ring's thread. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	return 0;
}

/* The ring's thread: a newer call fd waits in @next_call_fd; the old one is ours to close. */
static void nvt_vring_adopt_call(struct nvt_vring *vr)
{
	int fd;

	if (atomic_load_explicit(&vr->next_call_fd, memory_order_relaxed) == NVT_VRING_CALL_SAME)
		return;
	/* Acquire: pairs with nvt_vring_set_call()'s release, the fd is fully ours. */
	fd = atomic_exchange_explicit(&vr->next_call_fd, NVT_VRING_CALL_SAME, memory_order_acquire);
	if (fd == NVT_VRING_CALL_SAME)
		return;
	if (vr->call_fd >= 0)
		close(vr->call_fd);
	vr->call_fd = fd;
}

void nvt_vring_set_call(struct nvt_vring *vr, int fd)
{
	int old = atomic_exchange_explicit(&vr->next_call_fd, fd, memory_order_release);

	/* One the ring never adopted: nobody else holds it. */
	if (old >= 0)
		close(old);
}

int nvt_vring_take_call(struct nvt_vring *vr)
{
	int fd;

	nvt_vring_adopt_call(vr);
	fd = vr->call_fd;
	vr->call_fd = -1;
	return fd;
}

void nvt_vring_notify(struct nvt_vring *vr)
{
	uint64_t one = 1;
	int fd;

	nvt_vring_adopt_call(vr);

	/*
	 * Our used->idx store must be visible before we read the driver's
	 * flags, or we could miss its request for an interrupt: a full
	 * barrier. Rewriting idx with a sequentially consistent exchange is
	 * one (an xchg, as cheap as mfence) that ThreadSanitizer also models.
	 */
	__atomic_exchange_n(&vr->used->idx, vr->used_idx, __ATOMIC_SEQ_CST);
	if (vr->event_idx) {
		uint16_t old = vr->signalled_used;
		bool valid = vr->signalled_valid;

		vr->signalled_used = vr->used_idx;
		vr->signalled_valid = true;
		if (valid && !nvt_vring_need_event(__atomic_load_n(nvt_vring_used_event(vr),
								   __ATOMIC_SEQ_CST),
						   vr->used_idx, old))
			return;
	} else if (__atomic_load_n(&vr->avail->flags, __ATOMIC_SEQ_CST) &
		   NVT_VRING_AVAIL_F_NO_INTERRUPT) {
		return;
	}
	fd = vr->call_fd;
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the interrupt is pending anyway. */
	}
}
