/* SPDX-License-Identifier: BSD-3-Clause */
/* The namespace layer over a fake asynchronous backend: late and out-of-order completions, emulated commands, the range lock's parked waiters, compare-and-write. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/bio.h"
#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/util.h"

#define NBLK	2048
#define BS	512
#define MS	8
#define MAXHELD	64

/* A backend that keeps blocks in memory and completes only when told to (or inline). */
struct fake {
	uint8_t data[NBLK * BS];
	uint8_t md[NBLK * MS];
	bool hold;
	struct nvt_bio *held[MAXHELD];
	unsigned int nr_held;
	unsigned int max_held;		/* most held at once */
	bool native;			/* Compare and Verify natively, a device's way (fake_native_ops) */
	unsigned int nr_log;
	enum nvt_bio_op log_op[256];
	uint64_t log_lba[256];
};

static struct fake fake;

static void fake_do(struct nvt_bio *bio)
{
	uint8_t *d = fake.data + bio->slba * BS, *m = fake.md + bio->slba * MS;

	switch (bio->op) {
	case NVT_BIO_READ:
	case NVT_BIO_WRITE:
		nvt_iov_copy(bio->iov, bio->iov_cnt, 0, d, (size_t)bio->nlb * BS, bio->op == NVT_BIO_READ);
		if (bio->md_iov_cnt)
			nvt_iov_copy(bio->md_iov, bio->md_iov_cnt, 0, m, (size_t)bio->nlb * MS,
				     bio->op == NVT_BIO_READ);
		nvt_bio_backend_done(bio, 0);
		return;
	case NVT_BIO_FLUSH:
		nvt_bio_backend_done(bio, 0);
		return;
	case NVT_BIO_COMPARE:
		/* As a device: says "differs" (285h), not where; the PI context came along. */
		if (fake.native) {
			uint8_t b[BS], mb[MS];

			assert_non_null(bio->pi.fmt);
			for (uint32_t i = 0; i < bio->nlb; i++) {
				nvt_iov_copy(bio->iov, bio->iov_cnt, (size_t)i * BS, b, BS, false);
				nvt_iov_copy(bio->md_iov, bio->md_iov_cnt, (size_t)i * MS, mb, MS, false);
				if (memcmp(b, d + (size_t)i * BS, BS) || memcmp(mb, m + (size_t)i * MS, MS)) {
					nvt_bio_device_fail(bio, 0x285, bio->slba);
					break;
				}
			}
			nvt_bio_backend_done(bio, 0);
			return;
		}
		nvt_bio_backend_done(bio, -EOPNOTSUPP);
		return;
	case NVT_BIO_VERIFY:
		if (fake.native) {
			assert_non_null(bio->pi.fmt);
			assert_true(bio->flags & NVT_BIO_PI_CHECK_READ);
			nvt_bio_backend_done(bio, 0);
			return;
		}
		nvt_bio_backend_done(bio, -EOPNOTSUPP);
		return;
	default:
		/* Advertises nothing native: the layer must not hand it anything else. */
		nvt_bio_backend_done(bio, -EOPNOTSUPP);
		return;
	}
}

static void fake_submit(struct nvt_bio *bio, void *chan)
{
	if (fake.nr_log < 256) {
		fake.log_op[fake.nr_log] = bio->op;
		fake.log_lba[fake.nr_log++] = bio->slba;
	}
	if (!fake.hold) {
		fake_do(bio);
		return;
	}
	assert_true(fake.nr_held < MAXHELD);
	fake.held[fake.nr_held++] = bio;
	if (fake.nr_held > fake.max_held)
		fake.max_held = fake.nr_held;
}

/* Complete held bio @i (order of submission), now. */
static void fake_release(unsigned int i)
{
	struct nvt_bio *bio;

	assert_true(i < fake.nr_held);
	bio = fake.held[i];
	memmove(&fake.held[i], &fake.held[i + 1], (fake.nr_held - i - 1) * sizeof(fake.held[0]));
	fake.nr_held--;
	fake_do(bio);
}

/* Complete everything held, newest first, until nothing more arrives. */
static void fake_release_all_reversed(void)
{
	while (fake.nr_held)
		fake_release(fake.nr_held - 1);
}

static const struct nvt_backend_ops fake_ops = {
	.name = "fake",
	.flags = NVT_BE_METADATA,
	.submit = fake_submit,
};

static const struct nvt_backend_ops fake_native_ops = {
	.name = "fake-native",
	.flags = NVT_BE_METADATA | NVT_BE_COMPARE | NVT_BE_VERIFY,
	.submit = fake_submit,
};

struct env {
	struct nvt_ns ns;
	struct nvt_poll_group *pg[2];
	struct nvt_ns_chan *chan[2];
};

struct rec {
	struct nvt_bio bio;
	struct iovec iov, md_iov;
	unsigned int done;
};

static void rec_done(struct nvt_bio *bio)
{
	struct rec *r = (struct rec *)bio;

	r->done++;
}

static void pump(struct env *e)
{
	for (int round = 0; round < 8; round++)
		for (int i = 0; i < 2; i++)
			nvt_poll_group_poll(e->pg[i], 0);
}

static int setup_pi(void **state, enum nvt_pi_type type)
{
	struct env *e = calloc(1, sizeof(*e));

	memset(&fake, 0, sizeof(fake));
	memset(fake.md, 0xff, sizeof(fake.md));	/* never written: the escape PI */
	e->ns.nsid = 1;
	e->ns.be = &fake_ops;
	e->ns.nblocks = NBLK;
	e->ns.block_size = BS;
	e->ns.lba_shift = 9;
	e->ns.md_size = MS;
	e->ns.pi = (struct nvt_pi_format){ .type = type, .guard = NVT_PI_GUARD_CRC16,
					   .block_size = BS, .md_size = MS };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(nvt_poll_group_create(&e->pg[i]), 0);
		nvt_poll_group_set_slot(e->pg[i], i);
		assert_int_equal(nvt_ns_chan_create(&e->ns, e->pg[i]), 0);
		e->chan[i] = nvt_ns_chan_get(&e->ns, e->pg[i]);
		assert_non_null(e->chan[i]);
	}
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_pi(state, NVT_PI_TYPE1);
}

static int teardown(void **state)
{
	struct env *e = *state;

	for (int i = 0; i < 2; i++) {
		nvt_ns_chan_destroy(&e->ns, e->pg[i]);
		nvt_poll_group_destroy(e->pg[i]);
	}
	free(e);
	return 0;
}

/* A bio on channel @c: data @buf (extended LBAs if @ext), PI from PRINFO @prinfo with ILBRT = slba. */
static void rec_init(struct env *e, struct rec *r, int c, enum nvt_bio_op op, uint64_t slba,
		     uint32_t nlb, void *buf, void *md, bool ext, uint8_t prinfo)
{
	memset(r, 0, sizeof(*r));
	r->bio.op = op;
	r->bio.ns = &e->ns;
	r->bio.chan = e->chan[c];
	r->bio.slba = slba;
	r->bio.nlb = nlb;
	r->bio.done = rec_done;
	if (ext)
		r->bio.flags |= NVT_BIO_EXT;
	if (op != NVT_BIO_WRITE && op != NVT_BIO_WRITE_ZEROES)
		r->bio.flags |= NVT_BIO_PI_CHECK_READ;
	if (buf) {
		r->iov = (struct iovec){ buf, (size_t)nlb * (ext ? BS + MS : BS) };
		r->bio.iov = &r->iov;
		r->bio.iov_cnt = 1;
	}
	if (md) {
		r->md_iov = (struct iovec){ md, (size_t)nlb * MS };
		r->bio.md_iov = &r->md_iov;
		r->bio.md_iov_cnt = 1;
	}
	nvt_pi_ctx_init(&r->bio.pi, &e->ns.pi, slba, prinfo, slba, 0, 0);
}

#define PRACT_ALL	(NVT_PI_PRACT | NVT_PI_CHECK_MASK)

/* Writes held by the device complete in any order, later: each exactly once, data where it belongs. */
static void test_out_of_order(void **state)
{
	struct env *e = *state;
	static uint8_t buf[8][4 * BS], md[8][4 * MS], back[4 * BS], bmd[4 * MS];
	struct rec w[8], r;

	fake.hold = true;
	for (int i = 0; i < 8; i++) {
		memset(buf[i], 'a' + i, sizeof(buf[i]));
		rec_init(e, &w[i], i % 2, NVT_BIO_WRITE, (uint64_t)i * 8, 4, buf[i], md[i], false,
			 PRACT_ALL);
		nvt_ns_submit(&w[i].bio);
		assert_int_equal(w[i].done, 0);
	}
	assert_int_equal(fake.nr_held, 8);
	fake_release(3);
	assert_int_equal(w[3].done, 1);
	fake_release_all_reversed();
	fake.hold = false;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(w[i].done, 1);
		assert_int_equal(w[i].bio.status, NVT_BIO_OK);
		rec_init(e, &r, 0, NVT_BIO_READ, (uint64_t)i * 8, 4, back, bmd, false, PRACT_ALL);
		nvt_ns_submit(&r.bio);
		assert_int_equal(r.done, 1);
		assert_int_equal(r.bio.status, NVT_BIO_OK);
		assert_memory_equal(back, buf[i], sizeof(back));
	}
}

/* Fill an extended-LBA buffer of @nlb blocks of byte @v with valid Type 1 PI for @slba. */
static void ext_fill(struct env *e, uint8_t *ext, uint64_t slba, uint32_t nlb, uint8_t v)
{
	struct nvt_pi_ctx ctx;
	struct iovec io = { ext, (size_t)nlb * (BS + MS) };

	for (uint32_t i = 0; i < nlb; i++)
		memset(ext + i * (BS + MS), v + (uint8_t)i, BS);
	nvt_pi_ctx_init(&ctx, &e->ns.pi, slba, NVT_PI_PRACT, slba, 0, 0);
	assert_int_equal(nvt_pi_generate_ext(&ctx, &io, 1, nlb), 0);
}

/*
 * Extended LBAs to a backend that stores metadata apart, then Compare,
 * Verify, Copy and Write Zeroes, all emulated in several chunks, with every
 * chunk completing late: the results are what a real device gives.
 */
static void test_emulated_late(void **state)
{
	struct env *e = *state;
	enum { N = 600 };	/* three chunks of 256 blocks */
	static uint8_t ext[N * (BS + MS)], back[N * (BS + MS)];
	struct rec r;

	fake.hold = true;
	ext_fill(e, ext, 100, N, 1);
	rec_init(e, &r, 0, NVT_BIO_WRITE, 100, N, ext, NULL, true, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	assert_int_equal(fake.nr_held, 1);
	fake_release_all_reversed();
	assert_int_equal(r.done, 1);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	/* One chunk at a time, each as long as a bounce buffer: 256 + 256 + 88 blocks. */
	assert_int_equal(fake.max_held, 1);
	assert_int_equal(fake.nr_log, 3);
	assert_int_equal(fake.log_lba[2], 100 + 512);

	/* Read back as extended LBAs: the PI checked on the way. */
	rec_init(e, &r, 1, NVT_BIO_READ, 100, N, back, NULL, true, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	while (!r.done)
		fake_release_all_reversed();
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	assert_memory_equal(back, ext, sizeof(ext));

	/* Compare: equal, then one byte off in the last chunk. */
	rec_init(e, &r, 0, NVT_BIO_COMPARE, 100, N, ext, NULL, true, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	while (!r.done)
		fake_release_all_reversed();
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	ext[550 * (BS + MS) + 7] ^= 1;
	rec_init(e, &r, 0, NVT_BIO_COMPARE, 100, N, ext, NULL, true, 0);
	nvt_ns_submit(&r.bio);
	while (!r.done)
		fake_release_all_reversed();
	assert_int_equal(r.bio.status, NVT_BIO_MISCOMPARE);
	assert_int_equal(r.bio.err_lba, 650);
	ext[550 * (BS + MS) + 7] ^= 1;

	/* Verify finds a block corrupted at rest, with its LBA. */
	fake.data[(100 + 420) * BS + 3] ^= 0x40;
	rec_init(e, &r, 1, NVT_BIO_VERIFY, 100, N, NULL, NULL, false, NVT_PI_CHECK_GUARD);
	nvt_ns_submit(&r.bio);
	while (!r.done)
		fake_release_all_reversed();
	assert_int_equal(r.bio.status, NVT_BIO_PI);
	assert_int_equal(r.bio.pi_err.type, NVT_PI_ERR_GUARD);
	assert_int_equal(r.bio.err_lba, 520);
	fake.data[(100 + 420) * BS + 3] ^= 0x40;

	/* Write Zeroes with PRACT=1: zeroes that verify. */
	rec_init(e, &r, 0, NVT_BIO_WRITE_ZEROES, 1000, N, NULL, NULL, false, PRACT_ALL);
	nvt_ns_submit(&r.bio);
	while (!r.done)
		fake_release_all_reversed();
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	rec_init(e, &r, 0, NVT_BIO_VERIFY, 1000, N, NULL, NULL, false, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	while (!r.done)
		fake_release_all_reversed();
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	for (int i = 0; i < N * BS; i++)
		if (fake.data[1000 * BS + i])
			fail_msg("byte %d of the zeroed range is not zero", i);
	fake.hold = false;
}

/*
 * A backend with native Compare and Verify gets them (with the PI context);
 * a device's Compare Failure (285h) makes the layer compare that chunk
 * itself: the host hears Miscompare with the block, not a bare 285h.
 */
static void test_native_compare_verify(void **state)
{
	struct env *e = *state;
	enum { N = 300 };	/* two chunks */
	static uint8_t ext[N * (BS + MS)];
	struct rec r;
	unsigned int cmp = 0, rd = 0, ver = 0;

	ext_fill(e, ext, 100, N, 1);
	rec_init(e, &r, 0, NVT_BIO_WRITE, 100, N, ext, NULL, true, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	e->ns.be = &fake_native_ops;
	fake.native = true;

	fake.nr_log = 0;
	rec_init(e, &r, 0, NVT_BIO_COMPARE, 100, N, ext, NULL, true, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	for (unsigned int i = 0; i < fake.nr_log; i++)
		cmp += fake.log_op[i] == NVT_BIO_COMPARE, rd += fake.log_op[i] == NVT_BIO_READ;
	assert_int_equal(cmp, 2);		/* one per chunk, by the "device" */
	assert_int_equal(rd, 0);

	ext[290 * (BS + MS) + 9] ^= 2;	/* in the second chunk */
	fake.nr_log = 0;
	cmp = rd = 0;
	rec_init(e, &r, 0, NVT_BIO_COMPARE, 100, N, ext, NULL, true, 0);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.bio.status, NVT_BIO_MISCOMPARE);
	assert_int_equal(r.bio.err_lba, 390);
	for (unsigned int i = 0; i < fake.nr_log; i++)
		cmp += fake.log_op[i] == NVT_BIO_COMPARE, rd += fake.log_op[i] == NVT_BIO_READ;
	assert_int_equal(cmp, 2);
	assert_int_equal(rd, 1);		/* the layer's own look at the chunk that differed */
	ext[290 * (BS + MS) + 9] ^= 2;

	fake.nr_log = 0;
	rec_init(e, &r, 1, NVT_BIO_VERIFY, 100, N, NULL, NULL, false, NVT_PI_CHECK_GUARD);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	for (unsigned int i = 0; i < fake.nr_log; i++)
		ver += fake.log_op[i] == NVT_BIO_VERIFY, rd += fake.log_op[i] == NVT_BIO_READ;
	assert_int_equal(ver, 1);		/* the whole range: the backend splits it */
	assert_int_equal(rd, 1);
	fake.native = false;
	e->ns.be = &fake_ops;
}

/* Copy ranges for rec-based copies. */
static struct nvt_bio_range copy_ranges[4];

static int get_range(struct nvt_bio *bio, unsigned int i, struct nvt_bio_range *r)
{
	if (i >= 4)
		return -EINVAL;
	*r = copy_ranges[i];
	return 0;
}

/* A Copy whose destination starts inside its source (memmove semantics), in chunks, late. */
static void test_copy_overlap(void **state)
{
	struct env *e = *state;
	enum { N = 520 };
	static uint8_t ext[N * (BS + MS)];
	struct rec r;

	ext_fill(e, ext, 0, N, 10);
	rec_init(e, &r, 0, NVT_BIO_WRITE, 0, N, ext, NULL, true, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);

	fake.hold = true;
	copy_ranges[0] = (struct nvt_bio_range){ .slba = 0, .nlb = N, .eilbrt = 0 };
	/* Destination 100: overlaps the source; PRACT=1 writes the destination's own tags. */
	rec_init(e, &r, 1, NVT_BIO_COPY, 100, N, NULL, NULL, false, PRACT_ALL);
	r.bio.nr_ranges = 1;
	r.bio.get_range = get_range;
	r.bio.src_prinfo = NVT_PI_CHECK_MASK;
	nvt_ns_submit(&r.bio);
	while (!r.done)
		fake_release_all_reversed();
	fake.hold = false;
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	for (uint32_t i = 0; i < N; i++)
		if (fake.data[(100 + i) * BS] != (uint8_t)(10 + i))
			fail_msg("block %u of the copy holds %u", 100 + i, fake.data[(100 + i) * BS]);
	/* Every destination block verifies with its own LBA's tag. */
	rec_init(e, &r, 0, NVT_BIO_VERIFY, 100, N, NULL, NULL, false, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
}

/*
 * Copy with NVT_BIO_COPY_TAGS (the SCSI front, ATO=1): each block keeps its
 * guard and app tag, the ref tag becomes its new LBA's. Without the flag
 * (NVMe, PRINFOW.PRACT=1) the destination gets the command's LBAT.
 */
static void test_copy_keeps_tags(void **state)
{
	struct env *e = *state;
	enum { N = 300 };	/* two chunks */
	static uint8_t ext[N * (BS + MS)];
	struct nvt_pi_ctx ctx;
	struct rec r;

	for (uint32_t i = 0; i < N; i++) {
		struct iovec io = { ext + i * (BS + MS), BS + MS };

		memset(ext + i * (BS + MS), 3 + (uint8_t)i, BS);
		nvt_pi_ctx_init(&ctx, &e->ns.pi, i, NVT_PI_PRACT, i, (uint16_t)(0x4200 + i), 0);
		assert_int_equal(nvt_pi_generate_ext(&ctx, &io, 1, 1), 0);
	}
	rec_init(e, &r, 0, NVT_BIO_WRITE, 0, N, ext, NULL, true, NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);

	copy_ranges[0] = (struct nvt_bio_range){ .slba = 0, .nlb = N, .eilbrt = 0 };
	rec_init(e, &r, 1, NVT_BIO_COPY, 1000, N, NULL, NULL, false, NVT_PI_PRACT);
	r.bio.flags |= NVT_BIO_COPY_TAGS;
	r.bio.nr_ranges = 1;
	r.bio.get_range = get_range;
	r.bio.src_prinfo = NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG;
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	for (uint32_t i = 0; i < N; i++) {
		const uint8_t *m = fake.md + (1000 + i) * MS;

		assert_int_equal(m[2] << 8 | m[3], 0x4200 + i);
		assert_int_equal((uint32_t)m[4] << 24 | m[5] << 16 | m[6] << 8 | m[7], 1000 + i);
	}
	rec_init(e, &r, 0, NVT_BIO_VERIFY, 1000, N, NULL, NULL, false,
		 NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);

	/* NVMe's Copy with PRACT=1: the command's LBAT on every destination block, as before. */
	rec_init(e, &r, 1, NVT_BIO_COPY, 1500, N, NULL, NULL, false, NVT_PI_PRACT);
	nvt_pi_ctx_init(&r.bio.pi, &e->ns.pi, 1500, NVT_PI_PRACT, 1500, 0x0055, 0);
	r.bio.nr_ranges = 1;
	r.bio.get_range = get_range;
	r.bio.src_prinfo = NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG;
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	for (uint32_t i = 0; i < N; i += 37)
		assert_int_equal(fake.md[(1500 + i) * MS + 2] << 8 | fake.md[(1500 + i) * MS + 3], 0x0055);
}

/* More emulated commands than bounce buffers: they wait their turn, none fails. */
static void test_bounce_exhaustion(void **state)
{
	struct env *e = *state;
	struct rec r[10];

	fake.hold = true;
	for (int i = 0; i < 10; i++) {
		rec_init(e, &r[i], 0, NVT_BIO_VERIFY, (uint64_t)i * 100, 10, NULL, NULL, false, 0);
		nvt_ns_submit(&r[i].bio);
	}
	assert_int_equal(fake.nr_held, 4);
	while (fake.nr_held)
		fake_release(0);
	fake.hold = false;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(r[i].done, 1);
		assert_int_equal(r[i].bio.status, NVT_BIO_OK);
	}
	assert_int_equal(fake.max_held, 4);
}

struct caw_rec {
	struct nvt_caw caw;
	struct rec cmp, wr;
	unsigned int done;
};

static void caw_done(struct nvt_caw *caw)
{
	((struct caw_rec *)caw)->done++;
}

static void caw_init(struct env *e, struct caw_rec *c, int chan, uint64_t slba, uint32_t nlb,
		     uint8_t *cmp, uint8_t *wr, uint8_t *wr_md)
{
	memset(c, 0, sizeof(*c));
	rec_init(e, &c->cmp, chan, NVT_BIO_COMPARE, slba, nlb, cmp, NULL, false, 0);
	rec_init(e, &c->wr, chan, NVT_BIO_WRITE, slba, nlb, wr, wr_md, false, PRACT_ALL);
	c->caw = (struct nvt_caw){ .compare = &c->cmp.bio, .write = &c->wr.bio, .done = caw_done };
}

static void write_sync(struct env *e, uint64_t slba, uint32_t nlb, uint8_t v)
{
	static uint8_t buf[64 * BS], md[64 * MS];
	struct rec r;
	bool hold = fake.hold;

	fake.hold = false;
	memset(buf, v, (size_t)nlb * BS);
	rec_init(e, &r, 0, NVT_BIO_WRITE, slba, nlb, buf, md, false, PRACT_ALL);
	nvt_ns_submit(&r.bio);
	assert_int_equal(r.bio.status, NVT_BIO_OK);
	fake.hold = hold;
}

/*
 * The range lock: a compare-and-write waits (parked) for overlapping I/O
 * already in flight on another channel, overlapping I/O arriving meanwhile
 * parks and then runs in arrival order, non-overlapping I/O never waits.
 */
static void test_range_lock(void **state)
{
	struct env *e = *state;
	static uint8_t old[10 * BS], neu[10 * BS], nmd[10 * MS], buf[5][BS], bmd[5][MS], far[BS], fmd[MS];
	struct rec inflight, parked[5], other;
	struct caw_rec c;

	write_sync(e, 10, 10, 'o');
	memset(old, 'o', sizeof(old));
	memset(neu, 'n', sizeof(neu));

	fake.hold = true;
	/* A write on channel 1 overlapping [10, 20), held by the device. */
	rec_init(e, &inflight, 1, NVT_BIO_WRITE, 15, 1, buf[0], bmd[0], false, PRACT_ALL);
	memset(buf[0], 'o', BS);
	nvt_ns_submit(&inflight.bio);
	assert_int_equal(fake.nr_held, 1);

	caw_init(e, &c, 0, 10, 10, old, neu, nmd);
	nvt_ns_caw(&c.caw);
	pump(e);
	/* Not granted: nothing of it reached the device. */
	assert_int_equal(fake.nr_held, 1);
	assert_int_equal(c.done, 0);

	/* Overlapping I/O on either channel parks; far-away I/O goes straight on. */
	for (int i = 0; i < 5; i++) {
		rec_init(e, &parked[i], i % 2, NVT_BIO_READ, 11 + (uint64_t)i, 1, buf[i], bmd[i], false,
			 0);
		nvt_ns_submit(&parked[i].bio);
	}
	rec_init(e, &other, 1, NVT_BIO_WRITE, 500, 1, far, fmd, false, PRACT_ALL);
	nvt_ns_submit(&other.bio);
	assert_int_equal(fake.nr_held, 2);
	fake_release(1);
	assert_int_equal(other.done, 1);

	/* The in-flight write drains: the holder is granted and runs. */
	fake.nr_log = 0;
	fake_release(0);
	assert_int_equal(inflight.done, 1);
	pump(e);
	while (!c.done) {
		assert_true(fake.nr_held > 0);
		fake_release(0);
		pump(e);
	}
	assert_int_equal(c.cmp.bio.status, NVT_BIO_OK);
	assert_int_equal(c.wr.bio.status, NVT_BIO_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(parked[i].done, 0);
	/* Released: the parked reads go to the device now, each channel in arrival order. */
	pump(e);
	assert_int_equal(fake.nr_held, 5);
	{
		uint64_t last[2] = { 0, 0 };

		for (unsigned int i = 0; i < fake.nr_held; i++) {
			struct nvt_bio *b = fake.held[i];
			int ch = b->chan == e->chan[1];

			assert_true(b->slba > last[ch]);
			last[ch] = b->slba;
		}
	}
	fake_release_all_reversed();
	fake.hold = false;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(parked[i].done, 1);
		assert_int_equal(parked[i].bio.status, NVT_BIO_OK);
		/* They read what the compare-and-write wrote. */
		assert_int_equal(buf[i][0], 'n');
	}
}

/* ---- fences ---- */

struct fence_rec {
	struct nvt_ns_fence f;
	unsigned int done;
};

static void fence_done(struct nvt_ns_fence *f)
{
	container_of(f, struct fence_rec, f)->done++;
}

/*
 * A fence waits for every bio in flight on every channel when it began
 * (held by the device), and for an earlier compare-and-write; bios that
 * come meanwhile park and run once it is over; with nothing in flight it
 * is over before nvt_ns_fence() returns. A Flush neither waits nor holds it.
 */
static void test_fence(void **state)
{
	struct env *e = *state;
	static uint8_t buf[4][BS], bmd[4][MS], old[2 * BS], neu[2 * BS], nmd[2 * MS];
	struct rec w[2], late, fl;
	struct fence_rec f = { .done = 0 }, f2 = { .done = 0 };
	struct caw_rec c;

	nvt_ns_fence(&f.f, e->chan[0], fence_done);
	assert_int_equal(f.done, 1);
	assert_int_equal(atomic_load(&e->ns.range_lock.nr), 0);

	write_sync(e, 700, 2, 'o');
	memset(old, 'o', sizeof(old));
	memset(neu, 'n', sizeof(neu));
	fake.hold = true;
	/* In flight on both channels, far apart: one span holds nothing up but the fence. */
	rec_init(e, &w[0], 0, NVT_BIO_WRITE, 3, 1, buf[0], bmd[0], false, PRACT_ALL);
	rec_init(e, &w[1], 1, NVT_BIO_WRITE, 1900, 1, buf[1], bmd[1], false, PRACT_ALL);
	nvt_ns_submit(&w[0].bio);
	nvt_ns_submit(&w[1].bio);
	/* A compare-and-write on channel 1, granted (nothing overlaps) and held at its compare. */
	caw_init(e, &c, 1, 700, 2, old, neu, nmd);
	nvt_ns_caw(&c.caw);
	pump(e);
	assert_int_equal(fake.nr_held, 3);

	f.done = 0;
	nvt_ns_fence(&f.f, e->chan[0], fence_done);
	pump(e);
	assert_int_equal(f.done, 0);
	/* Came after: parks (nothing reaches the device); a Flush goes by. */
	rec_init(e, &late, 1, NVT_BIO_WRITE, 1000, 1, buf[2], bmd[2], false, PRACT_ALL);
	nvt_ns_submit(&late.bio);
	rec_init(e, &fl, 0, NVT_BIO_FLUSH, 0, 0, NULL, NULL, false, 0);
	nvt_ns_submit(&fl.bio);
	assert_int_equal(fake.nr_held, 4);
	fake_release(3);
	assert_int_equal(fl.done, 1);

	fake_release(1);		/* channel 1's write */
	pump(e);
	assert_int_equal(f.done, 0);
	fake_release(0);		/* channel 0's write */
	pump(e);
	assert_int_equal(f.done, 0);	/* the compare-and-write still holds its range */
	while (!c.done) {
		assert_int_equal(late.done, 0);
		assert_true(fake.nr_held > 0);
		assert_ptr_not_equal(fake.held[0], &late.bio);
		fake_release(0);
		pump(e);
	}
	assert_int_equal(c.wr.bio.status, NVT_BIO_OK);
	pump(e);
	assert_int_equal(f.done, 1);
	assert_int_equal(w[0].done + w[1].done, 2);
	/* Over: the parked write went to the device, and a second fence waits for it alone. */
	assert_int_equal(fake.nr_held, 1);
	assert_ptr_equal(fake.held[0], &late.bio);
	nvt_ns_fence(&f2.f, e->chan[1], fence_done);
	pump(e);
	assert_int_equal(f2.done, 0);
	fake_release(0);
	pump(e);
	assert_int_equal(late.done, 1);
	assert_int_equal(f2.done, 1);
	fake.hold = false;
	assert_int_equal(atomic_load(&e->ns.range_lock.nr), 0);
	assert_true(nvt_ns_chans_idle(&e->ns));
}

#define HOST_A	((const uint8_t *)"host-a-identity!")
#define HOST_B	((const uint8_t *)"host-b-identity!")

/*
 * Preempt and Abort as the reservation does it: B (a registrant, Write
 * Exclusive Registrants Only) has a write in flight and another parked
 * behind a lock; A preempts B, then fences. The fence waits for the
 * write admitted before; the parked one is admitted after, checked
 * against the new state, and denied: nothing of it reaches the device.
 * With no reservation held the layer checks nothing (one word, zero).
 */
static void test_fence_reservation(void **state)
{
	struct env *e = *state;
	static uint8_t buf[3][BS], bmd[3][MS], old[BS], neu[BS], nmd[MS];
	struct nvt_resv_events ev = { .nr = 0 };
	struct rec w, parked, after;
	struct fence_rec f = { .done = 0 };
	struct caw_rec c;

	e->ns.resv.admit = &e->ns.range_lock.nr;
	assert_int_equal(nvt_resv_register(&e->ns.resv, HOST_A, 0, 0, 0xa, &ev), NVT_ST_OK);
	assert_int_equal(nvt_resv_register(&e->ns.resv, HOST_B, 0, 0, 0xb, &ev), NVT_ST_OK);
	assert_int_equal(atomic_load(&e->ns.range_lock.nr), 0);
	assert_int_equal(nvt_resv_acquire(&e->ns.resv, HOST_A, NVME_RESERVATION_RTYPE_WERO << 8, 0xa,
					  0, &ev), NVT_ST_OK);
	assert_int_equal(atomic_load(&e->ns.range_lock.nr), NVT_RANGE_RESV);

	write_sync(e, 40, 1, 'o');
	memset(old, 'o', sizeof(old));
	memset(neu, 'n', sizeof(neu));
	fake.hold = true;
	rec_init(e, &w, 1, NVT_BIO_WRITE, 30, 1, buf[0], bmd[0], false, PRACT_ALL);
	w.bio.resv_host = HOST_B;
	nvt_ns_submit(&w.bio);
	/* A's compare-and-write holds block 40; B's write there parks behind it. */
	caw_init(e, &c, 0, 40, 1, old, neu, nmd);
	c.cmp.bio.resv_host = c.wr.bio.resv_host = HOST_A;
	nvt_ns_caw(&c.caw);
	pump(e);				/* granted once channel 1 reported (nothing there overlaps) */
	rec_init(e, &parked, 1, NVT_BIO_WRITE, 40, 1, buf[1], bmd[1], false, PRACT_ALL);
	parked.bio.resv_host = HOST_B;
	nvt_ns_submit(&parked.bio);
	assert_int_equal(fake.nr_held, 2);	/* B's first write, A's compare */

	/* A preempts B (B's key) and fences. */
	assert_int_equal(nvt_resv_acquire(&e->ns.resv, HOST_A,
					  NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT |
					  NVME_RESERVATION_RTYPE_WERO << 8, 0xa, 0xb, &ev), NVT_ST_OK);
	nvt_ns_fence(&f.f, e->chan[0], fence_done);
	pump(e);
	while (!c.done) {
		assert_int_equal(f.done, 0);
		assert_ptr_not_equal(fake.held[fake.nr_held - 1], &parked.bio);
		fake_release(fake.nr_held - 1);	/* A's compare, then its write */
		pump(e);
	}
	assert_int_equal(c.wr.bio.status, NVT_BIO_OK);
	pump(e);
	assert_int_equal(f.done, 0);		/* B's first write is still in flight */
	assert_int_equal(parked.done, 0);
	fake_release(0);
	pump(e);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.bio.status, NVT_BIO_OK);	/* admitted before the change: it finished */
	assert_int_equal(f.done, 1);
	/* Admitted after: denied, and the device never saw it. */
	assert_int_equal(parked.done, 1);
	assert_int_equal(parked.bio.status, NVT_BIO_RESV_CONFLICT);
	assert_int_equal(fake.nr_held, 0);
	/* A new one from B too; A's own goes on. */
	rec_init(e, &after, 1, NVT_BIO_DEALLOCATE, 0, 0, NULL, NULL, false, 0);
	after.bio.resv_host = HOST_B;
	nvt_ns_submit(&after.bio);
	assert_int_equal(after.bio.status, NVT_BIO_RESV_CONFLICT);
	rec_init(e, &after, 1, NVT_BIO_READ, 40, 1, buf[2], bmd[2], false, 0);
	after.bio.resv_host = HOST_A;
	nvt_ns_submit(&after.bio);
	assert_int_equal(fake.nr_held, 1);
	fake_release(0);
	assert_int_equal(after.bio.status, NVT_BIO_OK);
	assert_int_equal(buf[2][0], 'n');
	fake.hold = false;

	/* Released: no reservation, the word is zero again and nothing is checked. */
	assert_int_equal(nvt_resv_release(&e->ns.resv, HOST_A, NVME_RESERVATION_RTYPE_WERO << 8,
					  0xa, &ev), NVT_ST_OK);
	assert_int_equal(atomic_load(&e->ns.range_lock.nr), 0);
	rec_init(e, &after, 1, NVT_BIO_WRITE, 30, 1, buf[2], bmd[2], false, PRACT_ALL);
	after.bio.resv_host = HOST_B;
	nvt_ns_submit(&after.bio);
	assert_int_equal(after.bio.status, NVT_BIO_OK);
}

/* A failed compare writes nothing; two overlapping holders run one after the other. */
static void test_caw_machine(void **state)
{
	struct env *e = *state;
	static uint8_t cmp[4 * BS], wr[4 * BS], wmd[4 * MS], cmp2[4 * BS], wr2[4 * BS], wmd2[4 * MS];
	struct caw_rec a, b;

	write_sync(e, 40, 4, 'x');
	memset(cmp, 'y', sizeof(cmp));
	memset(wr, 'z', sizeof(wr));
	caw_init(e, &a, 0, 40, 4, cmp, wr, wmd);
	nvt_ns_caw(&a.caw);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.cmp.bio.status, NVT_BIO_MISCOMPARE);
	assert_int_equal(a.cmp.bio.err_lba, 40);
	assert_int_equal(a.wr.bio.status, NVT_BIO_ABORTED);
	assert_int_equal(fake.data[40 * BS], 'x');

	/* x -> y by one holder on channel 0, y -> z by one on channel 1: the second waits. */
	fake.hold = true;
	memset(cmp, 'x', sizeof(cmp));
	memset(wr, 'y', sizeof(wr));
	memset(cmp2, 'y', sizeof(cmp2));
	memset(wr2, 'z', sizeof(wr2));
	caw_init(e, &a, 0, 40, 4, cmp, wr, wmd);
	caw_init(e, &b, 1, 42, 4, cmp2, wr2, wmd2);
	b.cmp.bio.slba = b.wr.bio.slba = 40;
	nvt_ns_caw(&a.caw);
	nvt_ns_caw(&b.caw);
	pump(e);
	assert_int_equal(fake.nr_held, 1);	/* a's compare read; b waits for a */
	while (!a.done || !b.done) {
		if (fake.nr_held)
			fake_release(0);
		pump(e);
	}
	fake.hold = false;
	assert_int_equal(a.cmp.bio.status, NVT_BIO_OK);
	assert_int_equal(b.cmp.bio.status, NVT_BIO_OK);
	assert_int_equal(b.wr.bio.status, NVT_BIO_OK);
	assert_int_equal(fake.data[40 * BS], 'z');
}

/*
 * Commands waiting for a bounce buffer stay on the in-flight list: a plain
 * read completing between two of them must not unlink or reorder either
 * list (each waiter runs once, every one completes).
 */
static void test_bounce_wait_and_inflight(void **state)
{
	struct env *e = *state;
	static uint8_t rb[BS], rmd[MS];
	struct rec v[6], r;

	fake.hold = true;
	for (int i = 0; i < 5; i++) {
		rec_init(e, &v[i], 0, NVT_BIO_VERIFY, (uint64_t)i * 100, 10, NULL, NULL, false, 0);
		nvt_ns_submit(&v[i].bio);
	}
	rec_init(e, &r, 0, NVT_BIO_READ, 1000, 1, rb, rmd, false, 0);
	nvt_ns_submit(&r.bio);
	rec_init(e, &v[5], 0, NVT_BIO_VERIFY, 500, 10, NULL, NULL, false, 0);
	nvt_ns_submit(&v[5].bio);
	assert_int_equal(fake.nr_held, 5);	/* 4 verify chunks + the read */
	fake_release(4);			/* the plain read completes first */
	assert_int_equal(r.done, 1);
	while (fake.nr_held)
		fake_release(0);
	fake.hold = false;
	for (int i = 0; i < 6; i++) {
		assert_int_equal(v[i].done, 1);
		assert_int_equal(v[i].bio.status, NVT_BIO_OK);
	}
}

/* A drain sees every bio in flight, those waiting for a bounce buffer in between included. */
static void test_drain_sees_bounce_waiters(void **state)
{
	struct env *e = *state;
	static uint8_t ext[10 * (BS + MS)], old[10 * BS], neu[10 * BS], nmd[10 * MS];
	struct rec w, v[4];
	struct caw_rec c;

	write_sync(e, 10, 10, 'o');
	memset(old, 'o', sizeof(old));
	memset(neu, 'n', sizeof(neu));
	fake.hold = true;
	/* An extended-LBA write over [10, 20): emulated, holds a bounce buffer, in flight. */
	ext_fill(e, ext, 10, 10, 'w');
	rec_init(e, &w, 0, NVT_BIO_WRITE, 10, 10, ext, NULL, true, NVT_PI_CHECK_MASK);
	nvt_ns_submit(&w.bio);
	for (int i = 0; i < 4; i++) {
		/* The fourth, far away, waits for a bounce buffer. */
		rec_init(e, &v[i], 0, NVT_BIO_VERIFY, 500 + (uint64_t)i * 100, 10, NULL, NULL, false, 0);
		nvt_ns_submit(&v[i].bio);
	}
	assert_int_equal(fake.nr_held, 4);
	caw_init(e, &c, 1, 10, 10, old, neu, nmd);
	nvt_ns_caw(&c.caw);
	pump(e);
	/* The compare-and-write waits for the write on [10, 20): nothing of it reached the device. */
	assert_int_equal(fake.nr_held, 4);
	assert_int_equal(c.done, 0);
	while (fake.nr_held || !c.done) {
		if (fake.nr_held)
			fake_release(0);
		pump(e);
	}
	fake.hold = false;
	assert_int_equal(w.bio.status, NVT_BIO_OK);
	/* It compared against what the write stored: 'w' data, not 'o': a miscompare. */
	assert_int_equal(c.cmp.bio.status, NVT_BIO_MISCOMPARE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emulated_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_native_compare_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_keeps_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caw_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_wait_and_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_sees_bounce_waiters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_reservation, setup, teardown),
	};

	nvt_log_set_level(NVT_LOG_OFF);
	return cmocka_run_group_tests_name("ns_io", tests, NULL, NULL);
}
