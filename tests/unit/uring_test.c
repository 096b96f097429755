/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for backend/uring.c: the file backend driven directly on a real poll group, on tmpfs, an ext4 image and a loop device. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* The statics: the ring size knob, the channel's counters, the ring's poller. */
#include "../../backend/uring.c"
#include "../../backend/uring_ring.c"

/*
 * The namespace layer (target/ns_io.c) owns nvt_bio_backend_done(); this
 * test links none of the target core, so here it records the result and
 * completes the bio, as the layer would.
 */
struct tbio {
	struct nvt_bio bio;
	int err;
	unsigned int calls;
	struct iovec iov[4], md_iov[2];
};

static unsigned int nr_done;

#include "../nvt_alloc_count.h"

void nvt_bio_backend_done(struct nvt_bio *bio, int err)
{
	struct tbio *t = container_of(bio, struct tbio, bio);

	t->err = err;
	t->calls++;
	bio->done(bio);
}

static void tbio_done(struct nvt_bio *bio)
{
	nr_done++;
}

/* Where the files live: each test runs once per place. */
struct place {
	const char *name;
	char dir[256];
	bool ok;
	char why[160];
};

static char base_dir[] = "/tmp/nvt-uring-test.XXXXXX";
static struct place shm = { .name = "tmpfs" };
static struct place ext4 = { .name = "ext4 image" };
static char ext4_img[PATH_MAX];
static bool ext4_mounted;

/* A namespace on the file backend with one channel on the fixture's poll group. */
struct tns {
	struct nvt_ns ns;
	struct nvt_ns_cfg cfg;
	char path[PATH_MAX], md_path[PATH_MAX];
	struct nvt_uring_chan *chan;
};

struct fx {
	struct place *place;
	struct nvt_poll_group *pg;
};

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->place = *state;
	nvt_uring_sq_entries = NVT_URING_SQ_ENTRIES;
	if (nvt_poll_group_create(&fx->pg)) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;

	nvt_poll_group_destroy(fx->pg);
	free(fx);
	return 0;
}

static struct fx *fx_get(void **state)
{
	struct fx *fx = *state;

	if (!fx->place->ok) {
		print_message("skipped on %s: %s\n", fx->place->name, fx->place->why);
		skip();
	}
	return fx;
}

/* The config a namespace would get from the loader: path, metadata_path, direct. */
static void tns_cfg(struct tns *t, const char *path, const char *md_path, uint64_t size,
		    uint32_t bs, uint16_t md_size, int pi_type)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->path, sizeof(t->path), "%s", path);
	t->cfg.nsid = 1;
	t->cfg.size = size;
	t->cfg.block_size = bs;
	t->cfg.file = "uring_test.cfg";
	t->cfg.line = 10;
	t->cfg.settings[0] = (struct nvt_ns_setting){ .name = "path", .str = t->path,
						      .set = true, .line = 11 };
	t->cfg.settings[1] = (struct nvt_ns_setting){ .name = "metadata_path", .line = 12 };
	t->cfg.settings[2] = (struct nvt_ns_setting){ .name = "direct" };
	t->cfg.nr_settings = 3;
	if (md_path) {
		snprintf(t->md_path, sizeof(t->md_path), "%s", md_path);
		t->cfg.settings[1].str = t->md_path;
		t->cfg.settings[1].set = true;
	}
	t->ns.nsid = 1;
	t->ns.be = &nvt_uring_backend_ops;
	t->ns.block_size = bs;
	t->ns.lba_shift = (uint8_t)__builtin_ctz(bs);
	t->ns.nblocks = size / bs;
	t->ns.md_size = md_size;
	t->ns.pi = (struct nvt_pi_format){ .type = (enum nvt_pi_type)pi_type,
					   .guard = NVT_PI_GUARD_CRC16,
					   .block_size = bs, .md_size = md_size };
}

static int tns_open(struct tns *t)
{
	return nvt_uring_backend_ops.open(&t->ns, &t->cfg);
}

static void tns_chan(struct tns *t, struct fx *fx)
{
	void *chan;

	assert_int_equal(nvt_uring_backend_ops.chan_create(&t->ns, fx->pg, &chan), 0);
	t->chan = chan;
}

/* A fresh namespace in the place's directory: files @name.img and @name.md. */
static void tns_new(struct tns *t, struct fx *fx, const char *name, uint64_t size, uint32_t bs,
		    uint16_t md_size, int pi_type)
{
	char path[PATH_MAX], md[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s.img", fx->place->dir, name);
	snprintf(md, sizeof(md), "%s/%s.md", fx->place->dir, name);
	unlink(path);
	unlink(md);
	tns_cfg(t, path, md_size ? md : NULL, size, bs, md_size, pi_type);
	assert_int_equal(tns_open(t), 0);
	tns_chan(t, fx);
}

static void tns_free(struct tns *t, bool remove)
{
	if (t->chan)
		nvt_uring_backend_ops.chan_destroy(&t->ns, t->chan);
	t->chan = NULL;
	nvt_uring_backend_ops.close(&t->ns);
	if (remove) {
		unlink(t->path);
		if (t->md_path[0])
			unlink(t->md_path);
	}
}

static void tbio_init(struct tbio *b, struct tns *t, enum nvt_bio_op op, uint64_t slba,
		      uint32_t nlb, void *data, void *md)
{
	memset(b, 0, sizeof(*b));
	b->err = 1;
	b->bio.op = op;
	b->bio.ns = &t->ns;
	b->bio.slba = slba;
	b->bio.nlb = nlb;
	b->bio.done = tbio_done;
	if (data) {
		b->iov[0] = (struct iovec){ data, (size_t)nlb << t->ns.lba_shift };
		b->bio.iov = b->iov;
		b->bio.iov_cnt = 1;
	}
	if (md) {
		b->md_iov[0] = (struct iovec){ md, (size_t)nlb * t->ns.md_size };
		b->bio.md_iov = b->md_iov;
		b->bio.md_iov_cnt = 1;
	}
}

static void submit(struct tns *t, struct tbio *b)
{
	nvt_uring_backend_ops.submit(&b->bio, t->chan);
}

/* Poll until @want bios completed since @start; never more than 30 s. */
static void run_until(struct fx *fx, unsigned int start, unsigned int want)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (nr_done - start < want) {
		assert_true(nvt_poll_group_poll(fx->pg, 1000) >= 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_true(t1.tv_sec - t0.tv_sec < 30);
	}
	assert_int_equal(nr_done - start, want);
}

/* Submit one bio, wait for it. Return: its result. */
static int run1(struct fx *fx, struct tns *t, struct tbio *b)
{
	unsigned int start = nr_done;

	submit(t, b);
	run_until(fx, start, 1);
	assert_int_equal(b->calls, 1);
	return b->err;
}

static int io(struct fx *fx, struct tns *t, enum nvt_bio_op op, uint64_t slba, uint32_t nlb,
	      void *data, void *md, uint32_t flags)
{
	struct tbio b;

	tbio_init(&b, t, op, slba, nlb, data, md);
	b.bio.flags = flags;
	return run1(fx, t, &b);
}

static void fill(void *p, size_t len, unsigned int seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static bool all_bytes(const void *p, size_t len, uint8_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != v)
			return false;
	return true;
}

static void *aligned(size_t len)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, 4096, len), 0);
	return p;
}

/* What the files hold, read behind the backend's back. */
static void peek(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* ---- the tests ---- */

/* Data and sidecar metadata written, read back, and where they should be in the files. */
static void test_rw_round_trip(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = aligned(8 * 512), *r = aligned(8 * 512), w_md[64], r_md[64], peek_buf[8 * 512];
	struct tbio b;

	tns_new(&t, fx, "rw", 1 << 20, 512, 8, 1);
	print_message("%s: O_DIRECT %s (mem %u, len %u)\n", fx->place->name,
		      t.chan->u->direct ? "on" : "off", t.chan->u->mem_align, t.chan->u->len_align);
	fill(w, 8 * 512, 1);
	fill(w_md, 64, 2);
	/* Three iovecs, one of them splitting a block. */
	tbio_init(&b, &t, NVT_BIO_WRITE, 3, 8, NULL, w_md);
	b.iov[0] = (struct iovec){ w, 1024 };
	b.iov[1] = (struct iovec){ w + 1024, 2048 };
	b.iov[2] = (struct iovec){ w + 3072, 1024 };
	b.bio.iov = b.iov;
	b.bio.iov_cnt = 3;
	assert_int_equal(run1(fx, &t, &b), 0);

	memset(r, 0, 8 * 512);
	memset(r_md, 0, sizeof(r_md));
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 3, 8, r, r_md, 0), 0);
	assert_memory_equal(r, w, 8 * 512);
	assert_memory_equal(r_md, w_md, 64);

	peek(t.path, 3 * 512, peek_buf, 8 * 512);
	assert_memory_equal(peek_buf, w, 8 * 512);
	peek(t.md_path, 3 * 8, peek_buf, 64);
	assert_memory_equal(peek_buf, w_md, 64);
	/* Never written: a PI namespace's new sidecar holds the escape PI. */
	peek(t.md_path, 0, peek_buf, 24);
	assert_true(all_bytes(peek_buf, 24, 0xff));

	/* Data only (md_iov NULL): the metadata stays. */
	fill(w, 512, 3);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 3, 1, w, NULL, 0), 0);
	peek(t.md_path, 3 * 8, peek_buf, 8);
	assert_memory_equal(peek_buf, w_md, 8);

	/* Iovecs holding more than the blocks: only what is needed is used, in rounds if many. */
	{
		uint8_t *big = aligned(24 * 512), *back = aligned(12 * 1024);
		struct iovec many[24];

		fill(big, 24 * 512, 30);
		for (unsigned int i = 0; i < 24; i++)
			many[i] = (struct iovec){ big + i * 512, 512 };
		tbio_init(&b, &t, NVT_BIO_WRITE, 100, 20, NULL, NULL);
		b.bio.iov = many;
		b.bio.iov_cnt = 24;
		assert_int_equal(run1(fx, &t, &b), 0);
		/* 512 + 10 x 1024 bytes for 20 blocks: the last one cut, 11 > NVT_URING_OP_IOV. */
		many[0] = (struct iovec){ back, 512 };
		for (unsigned int i = 1; i < 12; i++)
			many[i] = (struct iovec){ back + 512 + (i - 1) * 1024, 1024 };
		memset(back, 0, 12 * 1024);
		tbio_init(&b, &t, NVT_BIO_READ, 100, 20, NULL, NULL);
		b.bio.iov = many;
		b.bio.iov_cnt = 12;
		assert_int_equal(run1(fx, &t, &b), 0);
		assert_memory_equal(back, big, 20 * 512);
		assert_true(all_bytes(back + 20 * 512, 12 * 1024 - 20 * 512, 0));
		free(big);
		free(back);
	}

	/* Out of range, and the last block. */
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 2047, 2, r, r_md, 0), -ERANGE);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 2047, 1, r, r_md, 0), 0);
	/* An iovec shorter than the blocks. */
	tbio_init(&b, &t, NVT_BIO_READ, 0, 2, r, NULL);
	b.iov[0].iov_len = 512;
	assert_int_equal(run1(fx, &t, &b), -EINVAL);
	/* Extended LBAs never reach a backend. */
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 0, 1, r, NULL, NVT_BIO_EXT), -EINVAL);
	/* Nothing to do is done at once. */
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 0, 0, NULL, NULL, 0), 0);

	/* Idle: the poller lets the loop sleep. */
	assert_int_equal(nvt_uring_ring_poll(&t.chan->ring.poller), 0);
	tns_free(&t, true);
	free(w);
	free(r);
}

/* The file shrank behind our back: a read across its end comes back short, then -EIO. */
static void test_short_read(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *r = aligned(8 * 512);

	tns_new(&t, fx, "short", 1 << 20, 512, 0, 0);
	assert_int_equal(truncate(t.path, (1 << 20) - 2 * 512), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 2040, 8, r, NULL, 0), -EIO);
	assert_int_equal(t.chan->nr_short, 1);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 2030, 8, r, NULL, 0), 0);
	tns_free(&t, true);
	free(r);
}

/* 4096-byte blocks and a file without metadata. */
static void test_rw_4k_no_md(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = aligned(16 * 4096), *r = aligned(16 * 4096);

	tns_new(&t, fx, "rw4k", 4 << 20, 4096, 0, 0);
	assert_int_equal(t.chan->u->md_fd, -1);
	fill(w, 16 * 4096, 4);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 1000, 16, w, NULL, 0), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 1000, 16, r, NULL, 0), 0);
	assert_memory_equal(r, w, 16 * 4096);
	/* Flush: one fsync, no sidecar. */
	assert_int_equal(io(fx, &t, NVT_BIO_FLUSH, 0, 0, NULL, NULL, 0), 0);
	tns_free(&t, true);
	free(w);
	free(r);
}

static void test_fua_and_flush(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = aligned(4 * 512), *r = aligned(4 * 512), md[32], r_md[32];

	tns_new(&t, fx, "fua", 1 << 20, 512, 8, 0);
	fill(w, 4 * 512, 5);
	fill(md, sizeof(md), 6);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 10, 4, w, md, NVT_BIO_FUA), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_FLUSH, 0, 0, NULL, NULL, 0), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 10, 4, r, r_md, 0), 0);
	assert_memory_equal(r, w, 4 * 512);
	assert_memory_equal(r_md, md, sizeof(md));
	tns_free(&t, true);
	free(w);
	free(r);
}

static void test_write_zeroes(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = aligned(64 * 512), *r = aligned(64 * 512), md[64 * 8], r_md[64 * 8];
	uint8_t gen[16 * 8];

	tns_new(&t, fx, "wz", 1 << 20, 512, 8, 1);
	fill(w, 64 * 512, 7);
	fill(md, sizeof(md), 8);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 100, 64, w, md, 0), 0);

	/* Without md_iov: zeroes, zero metadata. */
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE_ZEROES, 104, 8, NULL, NULL, 0), 0);
	/* With md_iov (the PI the layer generated): zeroes, that metadata. */
	fill(gen, sizeof(gen), 9);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE_ZEROES, 120, 16, NULL, gen, 0), 0);
	/* Deallocation allowed: the same result. */
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE_ZEROES, 140, 4, NULL, NULL, NVT_BIO_DEAC), 0);
	print_message("%s: fallocate modes refused: %s%s\n", fx->place->name,
		      t.chan->fa_bad & NVT_URING_FA_ZERO ? "ZERO_RANGE " : "",
		      t.chan->fa_bad & NVT_URING_FA_PUNCH ? "PUNCH_HOLE" : "");

	assert_int_equal(io(fx, &t, NVT_BIO_READ, 100, 64, r, r_md, 0), 0);
	for (unsigned int i = 0; i < 64; i++) {
		unsigned int lba = 100 + i;
		bool z = (lba >= 104 && lba < 112) || (lba >= 120 && lba < 136) ||
			 (lba >= 140 && lba < 144);

		if (z)
			assert_true(all_bytes(r + i * 512, 512, 0));
		else
			assert_memory_equal(r + i * 512, w + i * 512, 512);
		if (lba >= 120 && lba < 136)
			assert_memory_equal(r_md + i * 8, gen + (lba - 120) * 8, 8);
		else if (z)
			assert_true(all_bytes(r_md + i * 8, 8, 0));
		else
			assert_memory_equal(r_md + i * 8, md + i * 8, 8);
	}
	/* Once refused, a mode is not asked again: still the same answers. */
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE_ZEROES, 104, 8, NULL, NULL, 0), 0);
	tns_free(&t, true);
	free(w);
	free(r);
}

/* Deallocated blocks read back as zeroes; metadata all ones with PI, zero without. */
static void test_deallocate(void **state)
{
	struct fx *fx = fx_get(state);
	uint8_t *w = aligned(32 * 4096), *r = aligned(32 * 4096), md[32 * 16], r_md[32 * 16];

	for (int pi = 0; pi <= 1; pi++) {
		struct tns t;

		tns_new(&t, fx, pi ? "deal-pi" : "deal", 1 << 20, 4096, 16, pi);
		fill(w, 32 * 4096, 10);
		fill(md, sizeof(md), 11);
		assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 0, 32, w, md, 0), 0);
		/* A range that is not filesystem-block aligned at either end in bytes of md. */
		assert_int_equal(io(fx, &t, NVT_BIO_DEALLOCATE, 3, 20, NULL, NULL, 0), 0);
		assert_int_equal(io(fx, &t, NVT_BIO_READ, 0, 32, r, r_md, 0), 0);
		for (unsigned int i = 0; i < 32; i++) {
			if (i >= 3 && i < 23) {
				assert_true(all_bytes(r + i * 4096, 4096, 0));
				assert_true(all_bytes(r_md + i * 16, 16, pi ? 0xff : 0));
			} else {
				assert_memory_equal(r + i * 4096, w + i * 4096, 4096);
				assert_memory_equal(r_md + i * 16, md + i * 16, 16);
			}
		}
		tns_free(&t, true);
	}
	free(w);
	free(r);
}

static void test_copy(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = aligned(16 * 512), *r = aligned(16 * 512), md[16 * 8], r_md[16 * 8];
	struct tbio b;
	int ret;

	tns_new(&t, fx, "copy", 1 << 20, 512, 8, 0);
	fill(w, 16 * 512, 12);
	fill(md, sizeof(md), 13);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 50, 16, w, md, 0), 0);

	tbio_init(&b, &t, NVT_BIO_COPY, 500, 16, NULL, NULL);
	b.bio.copy_src = 50;
	ret = run1(fx, &t, &b);
	if (ret == -EOPNOTSUPP) {
		print_message("%s: copy_file_range refused here (the layer copies)\n",
			      fx->place->name);
	} else {
		assert_int_equal(ret, 0);
		assert_int_equal(io(fx, &t, NVT_BIO_READ, 500, 16, r, r_md, 0), 0);
		assert_memory_equal(r, w, 16 * 512);
		assert_memory_equal(r_md, md, sizeof(md));
	}
	/* Overlapping ranges in the one file: the layer's job. */
	tbio_init(&b, &t, NVT_BIO_COPY, 55, 16, NULL, NULL);
	b.bio.copy_src = 50;
	assert_int_equal(run1(fx, &t, &b), -EOPNOTSUPP);
	tbio_init(&b, &t, NVT_BIO_COPY, 45, 16, NULL, NULL);
	b.bio.copy_src = 50;
	assert_int_equal(run1(fx, &t, &b), -EOPNOTSUPP);
	/* A source past the end. */
	tbio_init(&b, &t, NVT_BIO_COPY, 0, 16, NULL, NULL);
	b.bio.copy_src = 2040;
	assert_int_equal(run1(fx, &t, &b), -ERANGE);
	/* The source is untouched. */
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 50, 16, r, r_md, 0), 0);
	assert_memory_equal(r, w, 16 * 512);
	tns_free(&t, true);
	free(w);
	free(r);
}

/* Buffers O_DIRECT cannot take go through the channel's bounce buffers, in pieces if big. */
static void test_unaligned(void **state)
{
	enum { NR = 12, BIG = 300 * 1024 / 512 };	/* more than bounce buffers; bigger than one */
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = malloc(BIG * 512 + 1), *r = malloc(BIG * 512 + 3);
	uint8_t *wb = malloc(NR * 512 + 1), *rb = malloc(NR * 512 + 1);
	struct tbio b[NR];
	unsigned int start;

	tns_new(&t, fx, "unal", 1 << 20, 512, 0, 0);
	fill(w + 1, BIG * 512, 14);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 7, BIG, w + 1, NULL, 0), 0);
	memset(r, 0, BIG * 512 + 3);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 7, BIG, r + 3, NULL, 0), 0);
	assert_memory_equal(r + 3, w + 1, BIG * 512);
	print_message("%s: %" PRIu64 " bios bounced\n", fx->place->name, t.chan->nr_bounced);
	if (t.chan->u->direct) {
		assert_int_equal(t.chan->nr_bounced, 2);
		/* Staged through registered buffers (READ/WRITE_FIXED), as root may pin them. */
		assert_true(t.chan->ring.fixed_bufs);
	}

	/* More unaligned bios at once than bounce buffers: the rest wait, none fails. */
	fill(wb + 1, NR * 512, 15);
	start = nr_done;
	for (unsigned int i = 0; i < NR; i++) {
		tbio_init(&b[i], &t, NVT_BIO_WRITE, 900 + i, 1, wb + 1 + i * 512, NULL);
		submit(&t, &b[i]);
	}
	run_until(fx, start, NR);
	for (unsigned int i = 0; i < NR; i++)
		assert_int_equal(b[i].err, 0);
	if (t.chan->u->direct)
		assert_true(t.chan->nr_parked > 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 900, NR, rb + 1, NULL, 0), 0);
	assert_memory_equal(rb + 1, wb + 1, NR * 512);
	assert_int_equal(t.chan->nr_bounce_free, t.chan->u->direct ? NVT_URING_BOUNCE_NR : 0);
	tns_free(&t, true);
	free(w);
	free(r);
	free(wb);
	free(rb);
}

/*
 * A channel destroyed with bios out (a namespace removed live, a thread
 * stopping): what it holds is finished first, every bio completes as it
 * would have, and only then do the ring and its staging buffers go (the
 * kernel reads and writes the bounce buffers until its CQE).
 */
static void test_destroy_in_flight(void **state)
{
	enum { NR = 12 };	/* more than bounce buffers: some wait */
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *wb = malloc(NR * 4096 + 1), *rb = malloc(NR * 4096 + 1);
	struct tbio b[NR];
	unsigned int start;

	tns_new(&t, fx, "dying", 1 << 20, 512, 0, 0);
	fill(wb + 1, NR * 4096, 16);
	start = nr_done;
	for (unsigned int i = 0; i < NR; i++) {
		tbio_init(&b[i], &t, NVT_BIO_WRITE, 64 + i * 8, 8, wb + 1 + i * 4096, NULL);
		submit(&t, &b[i]);
	}
	/* Never polled: submitted, parked or in the kernel when the channel goes. */
	nvt_uring_backend_ops.chan_destroy(&t.ns, t.chan);
	t.chan = NULL;
	assert_int_equal(nr_done - start, NR);
	for (unsigned int i = 0; i < NR; i++) {
		assert_int_equal(b[i].calls, 1);
		assert_int_equal(b[i].err, 0);
	}
	/* And it reached the file. */
	tns_chan(&t, fx);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 64, NR * 8, rb + 1, NULL, 0), 0);
	assert_memory_equal(rb + 1, wb + 1, NR * 4096);
	tns_free(&t, true);
	free(wb);
	free(rb);
}

/* A 4-entry ring under 64 bios at once (data and metadata each): all complete, in order parked. */
static void test_small_ring(void **state)
{
	enum { NR = 64 };
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = aligned(NR * 4096), *r = aligned(NR * 4096), md[NR * 8], r_md[NR * 8];
	struct tbio *b = calloc(NR, sizeof(*b));
	unsigned int start;

	nvt_uring_sq_entries = 4;
	tns_new(&t, fx, "small", 1 << 20, 4096, 8, 0);
	assert_int_equal(t.chan->ring.uring.sq.ring_entries, 4);
	assert_true(t.chan->nr_ops <= 8);
	fill(w, NR * 4096, 16);
	fill(md, sizeof(md), 17);
	start = nr_done;
	for (unsigned int i = 0; i < NR; i++) {
		/* Every other one scattered over the namespace, FUA on some. */
		tbio_init(&b[i], &t, NVT_BIO_WRITE, (i * 37) % 256, 1, w + i * 4096, md + i * 8);
		b[i].bio.flags = i % 5 ? 0 : NVT_BIO_FUA;
		submit(&t, &b[i]);
	}
	/* Nothing is failed for want of ring space: it waits. */
	assert_true(t.chan->nr_parked >= NR - 2);
	run_until(fx, start, NR);
	for (unsigned int i = 0; i < NR; i++) {
		assert_int_equal(b[i].err, 0);
		assert_int_equal(b[i].calls, 1);
	}
	/* Reads the same way, then a flush behind them. */
	start = nr_done;
	for (unsigned int i = 0; i < NR; i++) {
		tbio_init(&b[i], &t, NVT_BIO_READ, (i * 37) % 256, 1, r + i * 4096, r_md + i * 8);
		submit(&t, &b[i]);
	}
	run_until(fx, start, NR);
	for (unsigned int i = 0; i < NR; i++)
		assert_int_equal(b[i].err, 0);
	assert_memory_equal(r, w, NR * 4096);
	assert_memory_equal(r_md, md, sizeof(md));
	assert_int_equal(io(fx, &t, NVT_BIO_FLUSH, 0, 0, NULL, NULL, 0), 0);
	assert_int_equal(t.chan->nr_free_ops, t.chan->nr_ops);
	assert_null(t.chan->parked);
	print_message("%s: 4-entry ring: %" PRIu64 " parked, %" PRIu64 " submit calls\n",
		      fx->place->name, t.chan->nr_parked, t.chan->ring.nr_submits);
	tns_free(&t, true);
	free(b);
	free(w);
	free(r);
}

/* Every op, aligned and staged, parked behind a small ring: the I/O path allocates nothing. */
static void test_no_alloc(void **state)
{
	enum { BATCH = 24, ROUNDS = 200 };
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *buf = aligned(BATCH * 2 * 4096 + 64), md[BATCH * 2 * 16];
	struct tbio b[BATCH];
	unsigned long before;

	nvt_uring_sq_entries = 8;
	tns_new(&t, fx, "noalloc", 1 << 20, 4096, 16, 1);
	fill(buf, BATCH * 2 * 4096, 23);
	/* The poller is added on the first submit: not an allocation, but do it before counting. */
	assert_int_equal(io(fx, &t, NVT_BIO_FLUSH, 0, 0, NULL, NULL, 0), 0);
	before = nr_allocs;
	for (unsigned int round = 0; round < ROUNDS; round++) {
		unsigned int start = nr_done;

		for (unsigned int i = 0; i < BATCH; i++) {
			static const enum nvt_bio_op ops[] = {
				NVT_BIO_WRITE, NVT_BIO_READ, NVT_BIO_WRITE, NVT_BIO_READ,
				NVT_BIO_WRITE_ZEROES, NVT_BIO_DEALLOCATE, NVT_BIO_FLUSH, NVT_BIO_COPY,
			};
			enum nvt_bio_op op = ops[(i + round) % 8];
			uint64_t lba = (round * 7 + i * 3) % 200;
			/* Every third data buffer is off alignment: bounced. */
			uint8_t *data = buf + i * 2 * 4096 + (i % 3 ? 0 : 1);
			bool io_op = op == NVT_BIO_READ || op == NVT_BIO_WRITE;

			tbio_init(&b[i], &t, op, op == NVT_BIO_FLUSH ? 0 : lba,
				  op == NVT_BIO_FLUSH ? 0 : 2, io_op ? data : NULL,
				  io_op || (op == NVT_BIO_WRITE_ZEROES && i % 2) ? md + i * 32 : NULL);
			b[i].bio.copy_src = 220;
			submit(&t, &b[i]);
		}
		run_until(fx, start, BATCH);
		for (unsigned int i = 0; i < BATCH; i++)
			if (b[i].err && !(b[i].bio.op == NVT_BIO_COPY && b[i].err == -EOPNOTSUPP))
				fail_msg("round %u bio %u (op %d): %d", round, i, b[i].bio.op, b[i].err);
	}
	assert_int_equal(nr_allocs - before, 0);
	assert_true(t.chan->nr_parked > 0);
	tns_free(&t, true);
	free(buf);
}

/* The control path's one block: from unaligned buffers too, seen by the I/O path. */
static void test_block_io(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = malloc(513), *r = malloc(513), *ar = aligned(512), md[8], r_md[8];

	tns_new(&t, fx, "blk", 1 << 20, 512, 8, 1);
	fill(w + 1, 512, 18);
	fill(md, 8, 19);
	assert_int_equal(nvt_uring_backend_ops.block_io(&t.ns, 77, w + 1, md, true), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 77, 1, ar, r_md, 0), 0);
	assert_memory_equal(ar, w + 1, 512);
	assert_memory_equal(r_md, md, 8);
	memset(r, 0, 513);
	assert_int_equal(nvt_uring_backend_ops.block_io(&t.ns, 77, r + 1, r_md, false), 0);
	assert_memory_equal(r + 1, w + 1, 512);
	/* Data only. */
	assert_int_equal(nvt_uring_backend_ops.block_io(&t.ns, 78, r + 1, NULL, false), 0);
	assert_int_equal(nvt_uring_backend_ops.block_io(&t.ns, 2048, r + 1, NULL, false), -ERANGE);
	tns_free(&t, true);
	free(w);
	free(r);
	free(ar);
}

/* stderr of an open() call, for checking its lines. */
static char captured[8192];

static int open_captured(struct tns *t)
{
	char tmpl[] = "/tmp/nvt-uring-log.XXXXXX";
	int fd = mkstemp(tmpl), saved, ret;
	ssize_t n;

	assert_true(fd >= 0);
	unlink(tmpl);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	ret = tns_open(t);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, captured, sizeof(captured) - 1, 0);
	captured[n > 0 ? n : 0] = '\0';
	close(fd);
	return ret;
}

static void expect_log(const char *what)
{
	if (!strstr(captured, what))
		fail_msg("expected \"%s\" in:\n%s", what, captured);
}

static void make_file(const char *path, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void test_open_errors(void **state)
{
	struct fx *fx = fx_get(state);
	const char *d = fx->place->dir;
	char p[PATH_MAX], q[PATH_MAX];
	struct tns t, t2;
	struct stat st;

	/* A missing directory. */
	snprintf(p, sizeof(p), "%s/no/such/dir/x.img", d);
	tns_cfg(&t, p, NULL, 1 << 20, 512, 0, 0);
	assert_int_equal(open_captured(&t), -ENOENT);
	expect_log("uring_test.cfg:11: path: ");
	expect_log("cannot create: No such file or directory (its directory does not exist)");

	/* Missing and no size to create it at. */
	snprintf(p, sizeof(p), "%s/nosize.img", d);
	unlink(p);
	tns_cfg(&t, p, NULL, 0, 512, 0, 0);
	assert_int_equal(open_captured(&t), -ENOENT);
	expect_log("without size it cannot be created");

	/* An existing file of another size. */
	snprintf(p, sizeof(p), "%s/mismatch.img", d);
	make_file(p, 1 << 20);
	tns_cfg(&t, p, NULL, 2 << 20, 512, 0, 0);
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("uring_test.cfg:10: size: 2097152 does not match the 1048576 bytes of");
	/* ... taken as it is without size. */
	tns_cfg(&t, p, NULL, 0, 4096, 0, 0);
	assert_int_equal(open_captured(&t), 0);
	assert_int_equal(t.ns.nblocks, 256);
	nvt_uring_backend_ops.close(&t.ns);
	unlink(p);

	/* Not a multiple of the block size. */
	snprintf(p, sizeof(p), "%s/odd.img", d);
	make_file(p, 1001 * 512);
	tns_cfg(&t, p, NULL, 0, 4096, 0, 0);
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("size: ");
	expect_log("is 512512 bytes, not a multiple of block_size 4096");
	unlink(p);

	/* A directory. */
	tns_cfg(&t, d, NULL, 0, 512, 0, 0);
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("is neither a regular file nor a block device");

	/* Permission denied: as nobody, in a directory only its owner may enter. */
	snprintf(p, sizeof(p), "%s/private", d);
	assert_int_equal(mkdir(p, 0700) == 0 || errno == EEXIST, 1);
	if (geteuid() == 0 && chown(p, 0, 0) == 0) {
		pid_t pid = fork();
		int status;

		assert_true(pid >= 0);
		if (!pid) {
			snprintf(q, sizeof(q), "%s/private/x.img", d);
			tns_cfg(&t, q, NULL, 1 << 20, 512, 0, 0);
			if (setgid(65534) || setuid(65534))
				_exit(2);
			_exit(open_captured(&t) == -EACCES && strstr(captured, "Permission denied")
			      ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	rmdir(p);

	/* The same file for two namespaces, also under another name. */
	snprintf(p, sizeof(p), "%s/twice.img", d);
	snprintf(q, sizeof(q), "%s/twice-link.img", d);
	unlink(p);
	unlink(q);
	tns_cfg(&t, p, NULL, 1 << 20, 512, 0, 0);
	assert_int_equal(tns_open(&t), 0);
	assert_int_equal(link(p, q), 0);
	tns_cfg(&t2, q, NULL, 1 << 20, 512, 0, 0);
	t2.ns.nsid = 2;
	t2.cfg.line = 20;
	assert_int_equal(open_captured(&t2), -EBUSY);
	expect_log("already used by nsid 1 (line 10)");
	/* As the sidecar of another. */
	{
		char other[PATH_MAX];

		snprintf(other, sizeof(other), "%s/other.img", d);
		unlink(other);
		tns_cfg(&t2, other, p, 1 << 20, 512, 8, 0);
	}
	assert_int_equal(open_captured(&t2), -EBUSY);
	expect_log("uring_test.cfg:12: metadata_path: ");
	/* Nothing this failed open made is left behind. */
	assert_int_equal(stat(t2.path, &st), -1);
	nvt_uring_backend_ops.close(&t.ns);
	/* Released: now it opens. */
	tns_cfg(&t2, q, NULL, 1 << 20, 512, 0, 0);
	assert_int_equal(tns_open(&t2), 0);
	nvt_uring_backend_ops.close(&t2.ns);
	unlink(p);
	unlink(q);

	/* PI without a sidecar, and metadata without PI: the line is named. */
	snprintf(p, sizeof(p), "%s/pi.img", d);
	unlink(p);
	tns_cfg(&t, p, NULL, 1 << 20, 512, 8, 1);
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("uring_test.cfg:10: metadata_path: missing: the namespace has 8 bytes of metadata per block (PI)");
	assert_int_equal(stat(p, &st), -1);	/* the data file it created is gone again */
	tns_cfg(&t, p, NULL, 1 << 20, 512, 16, 0);
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("metadata_path: missing");

	/* A sidecar for a namespace without metadata. */
	snprintf(q, sizeof(q), "%s/pi.md", d);
	tns_cfg(&t, p, q, 1 << 20, 512, 0, 0);
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("no metadata");

	/* An existing sidecar of the wrong size. */
	make_file(q, 100);
	tns_cfg(&t, p, q, 1 << 20, 512, 8, 1);
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("is 100 bytes, not 16384 (2048 blocks, 8 bytes of metadata each)");
	/* An existing sidecar is used as it is (not refilled). */
	make_file(q, 2048 * 8);
	assert_int_equal(tns_open(&t), 0);
	{
		uint8_t buf[8];

		peek(q, 0, buf, 8);
		assert_true(all_bytes(buf, 8, 0));
	}
	nvt_uring_backend_ops.close(&t.ns);
	unlink(p);
	unlink(q);
	/* path missing from the settings. */
	tns_cfg(&t, p, NULL, 1 << 20, 512, 0, 0);
	t.cfg.settings[0].set = false;
	assert_int_equal(open_captured(&t), -EINVAL);
	expect_log("uring_test.cfg:10: path: missing");
}

/* direct = false: the page cache always; no bounce buffers at all. */
static void test_buffered(void **state)
{
	struct fx *fx = fx_get(state);
	struct tns t;
	uint8_t *w = malloc(4 * 512 + 1), *r = malloc(4 * 512 + 1);
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/buf.img", fx->place->dir);
	unlink(p);
	tns_cfg(&t, p, NULL, 1 << 20, 512, 0, 0);
	t.cfg.settings[2].set = true;
	t.cfg.settings[2].b = false;
	assert_int_equal(tns_open(&t), 0);
	assert_false(((struct nvt_uring_ns *)t.ns.be_priv)->direct);
	tns_chan(&t, fx);
	assert_null(t.chan->bounce_mem);
	fill(w + 1, 4 * 512, 20);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 0, 4, w + 1, NULL, 0), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 0, 4, r + 1, NULL, 0), 0);
	assert_memory_equal(r + 1, w + 1, 4 * 512);
	assert_int_equal(t.chan->nr_bounced, 0);
	tns_free(&t, true);
	free(w);
	free(r);
}

static int run(const char *cmd);

/* ---- block devices (a loop device over a file) ---- */

static char loop_dev[64], loop_file[PATH_MAX];
static bool loop_attached;	/* for the cleanup after a failed test */

static bool loop_attach(unsigned int sector_size)
{
	char cmd[PATH_MAX + 128];
	FILE *f;

	snprintf(loop_file, sizeof(loop_file), "%s/loop-backing.img", base_dir);
	make_file(loop_file, 4 << 20);
	snprintf(cmd, sizeof(cmd), "losetup --find --show --sector-size %u %s 2>/dev/null",
		 sector_size, loop_file);
	f = popen(cmd, "r");
	if (!f)
		return false;
	if (!fgets(loop_dev, sizeof(loop_dev), f))
		loop_dev[0] = '\0';
	pclose(f);
	loop_dev[strcspn(loop_dev, "\n")] = '\0';
	loop_attached = loop_dev[0] == '/';
	return loop_attached;
}

static void loop_detach(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "losetup -d %s", loop_dev);
	if (system(cmd))
		print_message("could not detach %s\n", loop_dev);
	loop_attached = false;
	unlink(loop_file);
}

static void test_blkdev(void **state)
{
	struct fx *fx = *state;
	uint8_t *w = aligned(64 * 512), *r = aligned(64 * 512), md[64 * 8], r_md[64 * 8];
	char md_path[PATH_MAX];
	struct tns t, t2;
	int fd;

	if (!loop_attach(512)) {
		print_message("skipped: no loop device (losetup failed; needs root)\n");
		skip();
	}
	snprintf(md_path, sizeof(md_path), "%s/loop.md", base_dir);
	unlink(md_path);
	/* size left out: the device's own. */
	tns_cfg(&t, loop_dev, md_path, 0, 512, 8, 1);
	assert_int_equal(tns_open(&t), 0);
	assert_int_equal(t.ns.nblocks, (4 << 20) / 512);
	tns_chan(&t, fx);
	assert_true(t.chan->u->blkdev);
	print_message("%s: O_DIRECT %s\n", loop_dev, t.chan->u->direct ? "on" : "off");

	fill(w, 64 * 512, 21);
	fill(md, sizeof(md), 22);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 1, 64, w, md, NVT_BIO_FUA), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 1, 64, r, r_md, 0), 0);
	assert_memory_equal(r, w, 64 * 512);
	assert_memory_equal(r_md, md, sizeof(md));
	assert_int_equal(io(fx, &t, NVT_BIO_FLUSH, 0, 0, NULL, NULL, 0), 0);
	/* Zeroout and deallocate through fallocate() on the device. */
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE_ZEROES, 5, 4, NULL, NULL, 0), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_DEALLOCATE, 20, 8, NULL, NULL, 0), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 1, 64, r, r_md, 0), 0);
	for (unsigned int i = 0; i < 64; i++) {
		unsigned int lba = 1 + i;

		if (lba >= 5 && lba < 9) {
			assert_true(all_bytes(r + i * 512, 512, 0));
			assert_true(all_bytes(r_md + i * 8, 8, 0));
		} else if (lba >= 20 && lba < 28) {
			assert_true(all_bytes(r + i * 512, 512, 0));
			assert_true(all_bytes(r_md + i * 8, 8, 0xff));
		} else {
			assert_memory_equal(r + i * 512, w + i * 512, 512);
		}
	}
	/* copy_file_range() does not do block devices: the layer copies. */
	{
		struct tbio b;

		tbio_init(&b, &t, NVT_BIO_COPY, 100, 4, NULL, NULL);
		b.bio.copy_src = 1;
		assert_int_equal(run1(fx, &t, &b), -EOPNOTSUPP);
	}

	/* The same device again: refused by name, not just EBUSY. */
	tns_cfg(&t2, loop_dev, NULL, 0, 512, 0, 0);
	t2.ns.nsid = 2;
	assert_int_equal(open_captured(&t2), -EBUSY);
	expect_log("already used by nsid 1");
	tns_free(&t, false);

	/* A size that does not match the device. */
	tns_cfg(&t2, loop_dev, NULL, 1 << 20, 512, 0, 0);
	assert_int_equal(open_captured(&t2), -EINVAL);
	expect_log("size: 1048576 does not match the 4194304 bytes of");

	/* Held by someone else (O_EXCL): in use. */
	fd = open(loop_dev, O_RDONLY | O_EXCL);
	assert_true(fd >= 0);
	tns_cfg(&t2, loop_dev, NULL, 0, 512, 0, 0);
	assert_int_equal(open_captured(&t2), -EBUSY);
	expect_log("in use");
	close(fd);
	loop_detach();
	unlink(md_path);

	/* Logical blocks bigger than block_size. */
	if (loop_attach(4096)) {
		tns_cfg(&t2, loop_dev, NULL, 0, 512, 0, 0);
		assert_int_equal(open_captured(&t2), -EINVAL);
		expect_log("block_size: 512 is smaller than the 4096-byte logical blocks of");
		tns_cfg(&t2, loop_dev, NULL, 0, 4096, 0, 0);
		assert_int_equal(tns_open(&t2), 0);
		nvt_uring_backend_ops.close(&t2.ns);
		loop_detach();
	}
	free(w);
	free(r);
}

/*
 * A filesystem on 4 KiB logical blocks under a 512-byte namespace: O_DIRECT
 * cannot do one block, so the file is used buffered, and says so once.
 */
static void test_dio_fallback(void **state)
{
	struct fx *fx = *state;
	char dir[PATH_MAX], cmd[3 * PATH_MAX], p[PATH_MAX + 16];
	uint8_t *w = aligned(4 * 512), *r = aligned(4 * 512);
	struct tns t;

	if (!loop_attach(4096)) {
		print_message("skipped: no loop device (losetup failed; needs root)\n");
		skip();
	}
	snprintf(dir, sizeof(dir), "%s/ext4-4k", base_dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && mkfs.ext4 -q -F %s >/dev/null 2>&1 && mount %s %s",
		 dir, loop_dev, loop_dev, dir);
	if (run(cmd)) {
		loop_detach();
		print_message("skipped: mkfs.ext4 or mount failed on %s\n", loop_dev);
		skip();
	}
	snprintf(p, sizeof(p), "%s/x.img", dir);
	tns_cfg(&t, p, NULL, 1 << 20, 512, 0, 0);
	assert_int_equal(open_captured(&t), 0);
	expect_log("uring_test.cfg:11: path: ");
	expect_log("no O_DIRECT (direct I/O needs 4096-byte blocks, more than block_size)");
	tns_chan(&t, fx);
	assert_false(t.chan->u->direct);
	fill(w, 4 * 512, 24);
	assert_int_equal(io(fx, &t, NVT_BIO_WRITE, 1, 4, w, NULL, 0), 0);
	assert_int_equal(io(fx, &t, NVT_BIO_READ, 1, 4, r, NULL, 0), 0);
	assert_memory_equal(r, w, 4 * 512);
	tns_free(&t, true);
	snprintf(cmd, sizeof(cmd), "umount %s", dir);
	assert_int_equal(run(cmd), 0);
	loop_detach();
	free(w);
	free(r);
}

/* ---- places ---- */

static int run(const char *cmd)
{
	int ret = system(cmd);

	return ret == -1 || !WIFEXITED(ret) ? -1 : WEXITSTATUS(ret);
}

static void places_setup(void)
{
	char cmd[3 * PATH_MAX];

	snprintf(shm.dir, sizeof(shm.dir), "%s/shm", base_dir);
	/* /dev/shm is tmpfs on every Linux this runs on; a tmpfs of our own otherwise. */
	snprintf(cmd, sizeof(cmd), "mkdir -p /dev/shm/nvt-uring-test-%d", (int)getpid());
	if (!run(cmd)) {
		snprintf(shm.dir, sizeof(shm.dir), "/dev/shm/nvt-uring-test-%d", (int)getpid());
		shm.ok = true;
	} else {
		snprintf(shm.why, sizeof(shm.why), "no /dev/shm");
	}

	snprintf(ext4.dir, sizeof(ext4.dir), "%s/ext4", base_dir);
	snprintf(ext4_img, sizeof(ext4_img), "%s/ext4.img", base_dir);
	make_file(ext4_img, 64 << 20);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && mkfs.ext4 -q -F %s >/dev/null 2>&1", ext4.dir,
		 ext4_img);
	if (run(cmd)) {
		snprintf(ext4.why, sizeof(ext4.why), "mkfs.ext4 failed or is missing");
		return;
	}
	snprintf(cmd, sizeof(cmd), "mount -o loop %s %s 2>/dev/null", ext4_img, ext4.dir);
	if (run(cmd)) {
		snprintf(ext4.why, sizeof(ext4.why), "mount -o loop failed (needs root and loop devices)");
		return;
	}
	ext4_mounted = true;
	ext4.ok = true;
}

static void places_teardown(void)
{
	char cmd[3 * PATH_MAX];

	if (shm.ok) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", shm.dir);
		run(cmd);
	}
	/* What a failed test may have left: its mount, its loop device. */
	snprintf(cmd, sizeof(cmd), "umount %s/ext4-4k 2>/dev/null", base_dir);
	run(cmd);
	if (loop_attached)
		loop_detach();
	if (ext4_mounted) {
		snprintf(cmd, sizeof(cmd), "umount %s", ext4.dir);
		if (run(cmd))
			fprintf(stderr, "uring_test: could not unmount %s\n", ext4.dir);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base_dir);
	run(cmd);
}

#define PLACE_TESTS(p)								\
	cmocka_unit_test_prestate_setup_teardown(test_rw_round_trip, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_rw_4k_no_md, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_short_read, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_fua_and_flush, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_write_zeroes, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_deallocate, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_copy, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_unaligned, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_small_ring, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_destroy_in_flight, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_no_alloc, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_block_io, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_open_errors, fx_setup, fx_teardown, p), \
	cmocka_unit_test_prestate_setup_teardown(test_buffered, fx_setup, fx_teardown, p)

int main(void)
{
	const struct CMUnitTest on_shm[] = { PLACE_TESTS(&shm) };
	const struct CMUnitTest on_ext4[] = { PLACE_TESTS(&ext4) };
	const struct CMUnitTest on_blkdev[] = {
		cmocka_unit_test_prestate_setup_teardown(test_blkdev, fx_setup, fx_teardown, &shm),
		cmocka_unit_test_prestate_setup_teardown(test_dio_fallback, fx_setup, fx_teardown, &shm),
	};
	struct io_uring probe;
	int ret = 0;

	/* CTest's SKIP_RETURN_CODE: a kernel without io_uring (or with it disabled). */
	if (io_uring_queue_init(2, &probe, 0)) {
		fprintf(stderr, "uring_test: skipped: io_uring is not available here\n");
		return 77;
	}
	io_uring_queue_exit(&probe);
	if (!mkdtemp(base_dir))
		return 1;
	places_setup();
	if (!ext4.ok)
		fprintf(stderr, "uring_test: the ext4 image tests are skipped: %s\n", ext4.why);
	ret |= cmocka_run_group_tests_name("uring on tmpfs", on_shm, NULL, NULL);
	ret |= cmocka_run_group_tests_name("uring on an ext4 image", on_ext4, NULL, NULL);
	ret |= cmocka_run_group_tests_name("uring on a block device", on_blkdev, NULL, NULL);
	places_teardown();
	return ret ? 1 : 0;
}
