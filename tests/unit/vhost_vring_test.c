/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for vhost guest memory (regions, offsets, holes, overflow, region ends) and split-ring chain walking (loops, out of region, indirect tables), pop and push. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvt/log.h"
#include "../../transport/vhost/vhost_int.h"

/*
 * Guest memory: one 1 MiB memfd in three regions, as QEMU hands out RAM
 * split around holes:
 *   r0 gpa 0x00000-0x3ffff  file offset 0
 *   r1 gpa 0x40000-0x7ffff  file offset 256K (adjacent to r0 in gpa)
 *   hole 0x80000-0xfffff
 *   r2 gpa 0x100000-0x13ffff file offset 512K
 */
#define MEM_SIZE	(1u << 20)
#define R_SIZE		0x40000u
#define UVA0		0x7f0000000000ull

struct fix {
	int fd;
	uint8_t *file;		/* the test's own view of the memfd */
	struct nvt_vhost_mem mem;
	struct nvt_vring vr;
};

static struct nvt_vhost_msg mem_msg(int fd)
{
	struct nvt_vhost_msg m;
	static const uint64_t gpa[3] = { 0, 0x40000, 0x100000 };

	memset(&m, 0, sizeof(m));
	m.request = NVT_VHOST_SET_MEM_TABLE;
	m.flags = NVT_VHOST_FLAG_VERSION;
	m.size = 8 + 3 * 32;
	m.payload.mem.nregions = 3;
	for (int i = 0; i < 3; i++) {
		m.payload.mem.regions[i] = (struct nvt_vhost_mem_region_wire){
			.guest_phys_addr = gpa[i], .memory_size = R_SIZE,
			.userspace_addr = UVA0 + (uint64_t)i * 0x1000000, .mmap_offset = (uint64_t)i * R_SIZE,
		};
		m.fds[i] = fd;
	}
	m.nr_fds = 3;
	return m;
}

/* The test's pointer to guest-physical @gpa (r0/r1/r2 only). */
static void *g(struct fix *f, uint64_t gpa)
{
	return f->file + (gpa < 0x80000 ? gpa : gpa - 0x100000 + 2 * R_SIZE);
}

/* Does our pointer @p (the library's mapping) show the byte at file offset @off? */
static bool same(struct fix *f, const void *p, size_t off)
{
	volatile uint8_t *q = (volatile uint8_t *)p;

	f->file[off] = 0x5a;
	if (*q != 0x5a)
		return false;
	f->file[off] = 0xa5;
	return *q == 0xa5;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct nvt_vhost_msg m;

	f->fd = memfd_create("guest", MFD_ALLOW_SEALING);
	assert_true(f->fd >= 0);
	assert_int_equal(ftruncate(f->fd, MEM_SIZE), 0);
	/* As QEMU 7.2's memory-backend-memfd (seal=on): it cannot shrink under our mappings. */
	assert_int_equal(fcntl(f->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	f->file = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	assert_true(f->file != MAP_FAILED);
	m = mem_msg(f->fd);
	assert_int_equal(nvt_vhost_mem_map(&f->mem, &m), 0);
	/* A ring of 8 in r0: descriptors at 0x1000, avail at 0x2000, used at 0x3000. */
	f->vr.num = 8;
	f->vr.mem = &f->mem;
	f->vr.desc = g(f, 0x1000);
	f->vr.avail = g(f, 0x2000);
	f->vr.used = g(f, 0x3000);
	f->vr.call_fd = -1;
	f->vr.err_fd = -1;
	atomic_init(&f->vr.next_call_fd, NVT_VRING_CALL_SAME);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	nvt_vhost_mem_unmap(&f->mem);
	munmap(f->file, MEM_SIZE);
	close(f->fd);
	free(f);
	return 0;
}

static void test_translate(void **state)
{
	struct fix *f = *state;
	uint8_t *p;

	/* The same bytes through our mapping and the region's, offsets included. */
	p = nvt_vhost_gpa_to_va(&f->mem, 0x40010, 16);
	assert_non_null(p);
	p[0] = 0xab;
	assert_int_equal(f->file[R_SIZE + 0x10], 0xab);
	p = nvt_vhost_gpa_to_va(&f->mem, 0x100000 + 5, 1);
	p[0] = 0xcd;
	assert_int_equal(f->file[2 * R_SIZE + 5], 0xcd);
	/* QEMU's user addresses of the same byte. */
	assert_true(same(f, nvt_vhost_uva_to_va(&f->mem, UVA0 + 0x1000000 + 0x10, 16), R_SIZE + 0x10));
	assert_true(same(f, nvt_vhost_uva_to_va(&f->mem, UVA0 + 0x2000000 + 5, 1), 2 * R_SIZE + 5));
	/* The last byte of a region, and one past it. */
	assert_non_null(nvt_vhost_gpa_to_va(&f->mem, 0x13ffff, 1));
	assert_null(nvt_vhost_gpa_to_va(&f->mem, 0x13ffff, 2));
	assert_null(nvt_vhost_gpa_to_va(&f->mem, 0x140000, 1));
	/* Holes, zero lengths and wrap-around. */
	assert_null(nvt_vhost_gpa_to_va(&f->mem, 0x90000, 1));
	assert_null(nvt_vhost_gpa_to_va(&f->mem, 0x1000, 0));
	assert_null(nvt_vhost_gpa_to_va(&f->mem, UINT64_MAX - 4, 16));
	assert_null(nvt_vhost_gpa_to_va(&f->mem, 0x10, UINT64_MAX));
	assert_null(nvt_vhost_uva_to_va(&f->mem, UVA0 + R_SIZE - 8, 16));	/* past r0's end in uva */
	assert_null(nvt_vhost_uva_to_va(&f->mem, UVA0 - 1, 2));
	assert_null(nvt_vhost_uva_to_va(&f->mem, UINT64_MAX, 2));
}

static void test_translate_iov(void **state)
{
	struct fix *f = *state;
	struct iovec iov[4];

	/* Across r0 -> r1, adjacent in guest-physical space: two pieces. */
	assert_int_equal(nvt_vhost_gpa_to_iov(&f->mem, 0x3fff0, 0x20, iov, 4), 2);
	assert_true(same(f, iov[0].iov_base, 0x3fff0));
	assert_int_equal(iov[0].iov_len, 0x10);
	assert_true(same(f, iov[1].iov_base, R_SIZE));
	assert_int_equal(iov[1].iov_len, 0x10);
	/* One-region translation refuses the same range. */
	assert_null(nvt_vhost_gpa_to_va(&f->mem, 0x3fff0, 0x20));
	/* Across r1's end into the hole. */
	assert_int_equal(nvt_vhost_gpa_to_iov(&f->mem, 0x7fff0, 0x20, iov, 4), -EFAULT);
	/* Not enough room for the pieces. */
	assert_int_equal(nvt_vhost_gpa_to_iov(&f->mem, 0x3fff0, 0x20, iov, 1), -E2BIG);
	assert_int_equal(nvt_vhost_gpa_to_iov(&f->mem, UINT64_MAX - 1, 4, iov, 4), -EFAULT);
	assert_int_equal(nvt_vhost_gpa_to_iov(&f->mem, 0x1000, 0, iov, 4), -EFAULT);
}

static void test_map_rejects(void **state)
{
	struct fix *f = *state;
	struct nvt_vhost_mem mem;
	struct nvt_vhost_msg m;

	/* Overlapping guest-physical ranges. */
	m = mem_msg(f->fd);
	m.payload.mem.regions[1].guest_phys_addr = 0x3f000;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	assert_int_equal(mem.nr, 0);
	/* Empty region, wrapping ranges, offset + size wrapping. */
	m = mem_msg(f->fd);
	m.payload.mem.regions[2].memory_size = 0;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	m = mem_msg(f->fd);
	m.payload.mem.regions[2].guest_phys_addr = UINT64_MAX - 0x100;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	m = mem_msg(f->fd);
	m.payload.mem.regions[1].userspace_addr = UINT64_MAX - 0x100;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	m = mem_msg(f->fd);
	m.payload.mem.regions[0].mmap_offset = UINT64_MAX - 0x100;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	/* Fewer fds than regions. */
	m = mem_msg(f->fd);
	m.nr_fds = 2;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	/* An fd that cannot be mapped. */
	m = mem_msg(f->fd);
	m.fds[1] = -1;
	assert_true(nvt_vhost_mem_map(&mem, &m) < 0);
	assert_int_equal(mem.nr, 0);
}

/*
 * A region its fd does not cover would SIGBUS the daemon on first touch
 * (the reviewer's sigbus.c): a short sealed memfd, an unsealed memfd and a
 * plain file (both could shrink later) are refused before anything is mapped.
 */
static void test_map_unsafe_fd(void **state)
{
	struct nvt_vhost_msg m;
	struct nvt_vhost_mem mem;
	char path[] = "/tmp/nvt-vring-test.XXXXXX";
	int fd;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.payload.mem.nregions = 1;
	m.payload.mem.regions[0] = (struct nvt_vhost_mem_region_wire){ 0, 1 << 20, UVA0, 0 };
	m.nr_fds = 1;

	/* Sealed, but 4 KiB where QEMU claims 1 MiB. */
	fd = memfd_create("short", MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	m.fds[0] = fd;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	assert_int_equal(mem.nr, 0);
	/* The offset counts too: 1 MiB of file, the region ends 4 KiB beyond it. */
	close(fd);
	fd = memfd_create("offset", MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	m.fds[0] = fd;
	m.payload.mem.regions[0].mmap_offset = 4096;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EINVAL);
	m.payload.mem.regions[0].mmap_offset = 0;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), 0);
	nvt_vhost_mem_unmap(&mem);
	close(fd);

	/* Big enough, not sealed: a later ftruncate would fault our accesses. */
	fd = memfd_create("unsealed", 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	m.fds[0] = fd;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EPERM);
	close(fd);
	/* A plain file (memory-backend-file) cannot be sealed. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	m.fds[0] = fd;
	assert_int_equal(nvt_vhost_mem_map(&mem, &m), -EPERM);
	assert_int_equal(mem.nr, 0);
	close(fd);
}

static void set_desc(struct fix *f, struct nvt_vring_desc *t, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	(void)f;
	t[i] = (struct nvt_vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void test_walk_direct(void **state)
{
	struct fix *f = *state;
	struct nvt_vring_desc *d = f->vr.desc;
	struct iovec iov[8];
	unsigned int out, in;

	set_desc(f, d, 0, 0x10000, 51, NVT_VRING_DESC_F_NEXT, 5);
	set_desc(f, d, 5, 0x3fff0, 0x20, NVT_VRING_DESC_F_NEXT, 2);	/* splits in two */
	set_desc(f, d, 2, 0x100000, 108, NVT_VRING_DESC_F_WRITE, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 8, &out, &in), 0);
	assert_int_equal(out, 3);
	assert_int_equal(in, 1);
	assert_true(same(f, iov[0].iov_base, 0x10000));
	assert_int_equal(iov[3].iov_len, 108);
	/* The same chain with room for fewer buffers. */
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 3, &out, &in), -E2BIG);
	/* Readable after writable. */
	set_desc(f, d, 2, 0x100000, 108, NVT_VRING_DESC_F_WRITE | NVT_VRING_DESC_F_NEXT, 3);
	set_desc(f, d, 3, 0x20000, 16, 0, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 8, &out, &in), -EINVAL);
	/* Out of guest memory: a hole, a region's end. */
	set_desc(f, d, 3, 0x90000, 16, NVT_VRING_DESC_F_WRITE, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 8, &out, &in), -EFAULT);
	set_desc(f, d, 3, 0x13fff0, 0x20, NVT_VRING_DESC_F_WRITE, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 8, &out, &in), -EFAULT);
	/* next beyond the table, a head beyond it. */
	set_desc(f, d, 3, 0x20000, 16, NVT_VRING_DESC_F_WRITE | NVT_VRING_DESC_F_NEXT, 8);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 8, &out, &in), -EINVAL);
	assert_int_equal(nvt_vring_walk(&f->vr, 8, iov, 8, &out, &in), -EINVAL);
}

static void test_walk_loop(void **state)
{
	struct fix *f = *state;
	struct nvt_vring_desc *d = f->vr.desc;
	struct iovec iov[64];
	unsigned int out, in;

	/* 0 -> 1 -> 0: a loop. */
	set_desc(f, d, 0, 0x10000, 16, NVT_VRING_DESC_F_NEXT, 1);
	set_desc(f, d, 1, 0x10010, 16, NVT_VRING_DESC_F_NEXT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -ELOOP);
	/* A self-loop of zero-length descriptors (which add no buffers). */
	set_desc(f, d, 4, 0x10000, 0, NVT_VRING_DESC_F_NEXT, 4);
	assert_int_equal(nvt_vring_walk(&f->vr, 4, iov, 64, &out, &in), -ELOOP);
	/* Every entry once is the longest chain there is. */
	for (unsigned int i = 0; i < 8; i++)
		set_desc(f, d, i, 0x10000 + i * 16, 16, i < 7 ? NVT_VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), 0);
	assert_int_equal(out, 8);
	/* The last one pointing back: longer than the ring. */
	set_desc(f, d, 7, 0x10070, 16, NVT_VRING_DESC_F_NEXT, 3);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -ELOOP);
}

static void test_walk_indirect(void **state)
{
	struct fix *f = *state;
	struct nvt_vring_desc *d = f->vr.desc;
	struct nvt_vring_desc *t = g(f, 0x50000);	/* the indirect table, in r1 */
	struct iovec iov[64];
	unsigned int out, in;

	set_desc(f, t, 0, 0x10000, 59, NVT_VRING_DESC_F_NEXT, 1);
	set_desc(f, t, 1, 0x11000, 4096, NVT_VRING_DESC_F_NEXT, 2);
	set_desc(f, t, 2, 0x12000, 108, NVT_VRING_DESC_F_WRITE, 0);
	set_desc(f, d, 0, 0x50000, 3 * 16, NVT_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), 0);
	assert_int_equal(out, 2);
	assert_int_equal(in, 1);
	assert_int_equal(iov[1].iov_len, 4096);
	/* Direct buffers, then the table as the chain's last. */
	set_desc(f, d, 1, 0x13000, 8, NVT_VRING_DESC_F_NEXT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 1, iov, 64, &out, &in), 0);
	assert_int_equal(out, 3);
	/* Lengths that are not whole descriptors, or none. */
	set_desc(f, d, 0, 0x50000, 3 * 16 + 1, NVT_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -EINVAL);
	set_desc(f, d, 0, 0x50000, 0, NVT_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -EINVAL);
	/* A table in a hole, or crossing into one. */
	set_desc(f, d, 0, 0x90000, 48, NVT_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -EFAULT);
	set_desc(f, d, 0, 0x7fff0, 48, NVT_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -EFAULT);
	/* INDIRECT with NEXT. */
	set_desc(f, d, 0, 0x50000, 48, NVT_VRING_DESC_F_INDIRECT | NVT_VRING_DESC_F_NEXT, 1);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -EINVAL);
	/* Nested: an indirect descriptor inside the table. */
	set_desc(f, d, 0, 0x50000, 48, NVT_VRING_DESC_F_INDIRECT, 0);
	set_desc(f, t, 2, 0x50000, 48, NVT_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -EINVAL);
	/* A loop inside the table; next beyond the table's end. */
	set_desc(f, t, 2, 0x12000, 108, NVT_VRING_DESC_F_WRITE | NVT_VRING_DESC_F_NEXT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -ELOOP);
	set_desc(f, t, 2, 0x12000, 108, NVT_VRING_DESC_F_WRITE | NVT_VRING_DESC_F_NEXT, 3);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 64, &out, &in), -EINVAL);
}

/*
 * An indirect table at an odd guest address (the reviewer's misalign.c):
 * walked like any other, no misaligned access (the sanitized build aborts on one).
 */
static void test_walk_misaligned_table(void **state)
{
	struct fix *f = *state;
	struct nvt_vring_desc t[2] = {
		{ 0x10000, 51, NVT_VRING_DESC_F_NEXT, 1 },
		{ 0x12000, 108, NVT_VRING_DESC_F_WRITE, 0 },
	};
	struct iovec iov[8];
	unsigned int out, in;

	memcpy(g(f, 0x5003), t, sizeof(t));
	set_desc(f, f->vr.desc, 0, 0x5003, sizeof(t), NVT_VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(nvt_vring_walk(&f->vr, 0, iov, 8, &out, &in), 0);
	assert_int_equal(out, 1);
	assert_int_equal(in, 1);
	assert_int_equal(iov[0].iov_len, 51);
	assert_int_equal(iov[1].iov_len, 108);
	assert_true(same(f, iov[1].iov_base, 0x12000));
}

static void test_pop_push(void **state)
{
	struct fix *f = *state;
	struct nvt_vring_desc *d = f->vr.desc;
	struct iovec iov[8];
	unsigned int out, in;
	uint16_t head;
	uint64_t n;
	int efd = eventfd(0, EFD_NONBLOCK);

	f->vr.call_fd = efd;
	f->vr.last_avail = 65534;	/* indexes wrap at 2^16 */
	f->vr.used_idx = 65534;
	f->vr.avail->idx = 65534;
	assert_int_equal(nvt_vring_pop(&f->vr, &head, iov, 8, &out, &in), NVT_VRING_EMPTY);
	set_desc(f, d, 6, 0x10000, 51, NVT_VRING_DESC_F_NEXT, 7);
	set_desc(f, d, 7, 0x11000, 108, NVT_VRING_DESC_F_WRITE, 0);
	f->vr.avail->ring[65534 % 8] = 6;
	f->vr.avail->ring[65535 % 8] = 6;
	f->vr.avail->idx = 0;	/* two entries, across the wrap */
	assert_int_equal(nvt_vring_pop(&f->vr, &head, iov, 8, &out, &in), NVT_VRING_CHAIN);
	assert_int_equal(head, 6);
	assert_int_equal(out, 1);
	assert_int_equal(in, 1);
	nvt_vring_push(&f->vr, head, 108);
	assert_int_equal(f->vr.used->idx, 65535);
	assert_int_equal(f->vr.used->ring[65534 % 8].id, 6);
	assert_int_equal(f->vr.used->ring[65534 % 8].len, 108);
	nvt_vring_notify(&f->vr);
	assert_int_equal(read(efd, &n, 8), 8);
	/* The driver asked for no interrupts. */
	f->vr.avail->flags = NVT_VRING_AVAIL_F_NO_INTERRUPT;
	nvt_vring_notify(&f->vr);
	assert_int_equal(read(efd, &n, 8), -1);
	f->vr.avail->flags = 0;
	/* A bad chain is popped, and its head is the caller's to push. */
	set_desc(f, d, 6, 0x90000, 51, 0, 0);
	assert_int_equal(nvt_vring_pop(&f->vr, &head, iov, 8, &out, &in), -EFAULT);
	assert_int_equal(head, 6);
	assert_int_equal(f->vr.last_avail, 0);
	/* An avail index more than a ring ahead, then a head beyond the table: the ring is broken. */
	f->vr.avail->idx = 9;
	assert_int_equal(nvt_vring_pop(&f->vr, &head, iov, 8, &out, &in), -EIO);
	assert_true(f->vr.broken);
	f->vr.broken = false;
	f->vr.avail->idx = 1;
	f->vr.avail->ring[0] = 8;
	assert_int_equal(nvt_vring_pop(&f->vr, &head, iov, 8, &out, &in), -EIO);
	assert_int_equal(nvt_vring_pop(&f->vr, &head, iov, 8, &out, &in), -EIO);
	close(efd);
}

/*
 * A pipe nobody reads as QEMU's "call eventfd" blocked the ring's thread in
 * write() (the reviewer's pipehang.c): only an eventfd is taken, made
 * non-blocking, and even a full counter does not block a notify.
 */
static void test_call_fd_kind(void **state)
{
	struct fix *f = *state;
	uint64_t full = 0xfffffffffffffffeull, n;
	int p[2], efd = eventfd(0, 0);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(nvt_vhost_eventfd_prepare(p[1]), -EBADF);
	assert_int_equal(nvt_vhost_eventfd_prepare(p[0]), -EBADF);
	assert_int_equal(nvt_vhost_eventfd_prepare(f->fd), -EBADF);	/* a memfd */
	assert_true(nvt_vhost_eventfd_prepare(-1) < 0);
	assert_int_equal(nvt_vhost_eventfd_prepare(efd), 0);
	assert_true(fcntl(efd, F_GETFL) & O_NONBLOCK);

	/* The counter at its maximum: a blocking write would wait for a read forever. */
	assert_int_equal(write(efd, &full, 8), 8);
	f->vr.call_fd = efd;
	for (int i = 0; i < 1000; i++)
		nvt_vring_notify(&f->vr);
	assert_int_equal(read(efd, &n, 8), 8);
	assert_true(n == full);
	nvt_vring_notify(&f->vr);
	assert_int_equal(read(efd, &n, 8), 8);
	assert_int_equal(n, 1);
	f->vr.call_fd = -1;
	close(efd);
	close(p[0]);
	close(p[1]);
}

/* A call fd replaced while the ring runs: the ring's thread switches at its next notify and closes the old one. */
static void test_call_handover(void **state)
{
	struct fix *f = *state;
	int a = eventfd(0, EFD_NONBLOCK), b = eventfd(0, EFD_NONBLOCK), c = eventfd(0, EFD_NONBLOCK);
	uint64_t n;

	f->vr.call_fd = a;
	nvt_vring_set_call(&f->vr, b);
	nvt_vring_set_call(&f->vr, c);	/* b was never adopted: closed at once */
	assert_int_equal(fcntl(b, F_GETFD), -1);
	assert_int_equal(f->vr.call_fd, a);
	nvt_vring_notify(&f->vr);
	assert_int_equal(fcntl(a, F_GETFD), -1);
	assert_int_equal(read(c, &n, 8), 8);
	/* None (the driver polls): no more interrupts; the stopped ring hands back -1. */
	nvt_vring_set_call(&f->vr, -1);
	nvt_vring_notify(&f->vr);
	assert_int_equal(fcntl(c, F_GETFD), -1);
	assert_int_equal(nvt_vring_take_call(&f->vr), -1);
	b = eventfd(0, EFD_NONBLOCK);
	nvt_vring_set_call(&f->vr, b);
	assert_int_equal(nvt_vring_take_call(&f->vr), b);
	assert_int_equal(f->vr.call_fd, -1);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_translate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_translate_iov, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_rejects, setup, teardown),
		cmocka_unit_test(test_map_unsafe_fd),
		cmocka_unit_test_setup_teardown(test_walk_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_misaligned_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pop_push, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_handover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_fd_kind, setup, teardown),
	};

	nvt_log_set_level(NVT_LOG_OFF);	/* the unmappable region is refused on purpose */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
