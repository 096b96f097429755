/* SPDX-License-Identifier: BSD-3-Clause */
/* Scrub (check the stored PI of every block of a namespace) and fault injection (flip a stored bit), on any backend. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvt/target.h"

/* Block @lba's data and metadata: in place for memory backends, else read into @data/@md. */
static int nvt_ns_block(struct nvt_ns *ns, uint64_t lba, uint8_t *data, uint8_t *md,
			uint8_t **dp, uint8_t **mp)
{
	void *m;

	if (ns->be->map) {
		*dp = ns->be->map(ns, lba, &m);
		*mp = m;
		return *dp ? 0 : -ERANGE;
	}
	if (!ns->be->block_io)
		return -EOPNOTSUPP;
	*dp = data;
	*mp = md;
	return ns->be->block_io(ns, lba, data, md, false);
}

int nvt_ns_scrub(struct nvt_ns *ns, void (*bad)(uint64_t lba, const struct nvt_pi_err *err, void *arg),
		 void *arg, uint64_t *nr_bad)
{
	return nvt_ns_scrub_until(ns, bad, arg, nr_bad, NULL);
}

/*
 * Hosts keep writing while a scrub reads, and no backend stores a block's
 * data and PI in one indivisible step: a read may catch a block half
 * rewritten, and the writer may even be descheduled there for a while on
 * a loaded machine. So a failing block is only a candidate: its copy is
 * kept, and every candidate of a batch is read again NVT_SCRUB_PASSES
 * times, NVT_SCRUB_RECHECK_NS apart. Bad means every read failed and all
 * were the same bytes; a block that reads good, or differently, is being
 * rewritten, and the host's write replaces whatever it held.
 */
#define NVT_SCRUB_RECHECK_NS	(25ull * 1000 * 1000)
#define NVT_SCRUB_PASSES	4		/* 100 ms of the same bytes */
#define NVT_SCRUB_BATCH_BYTES	(4u << 20)	/* candidates' copies held at once */
#define NVT_SCRUB_DROPPED	UINT64_MAX	/* a candidate found being rewritten */

struct nvt_scrub {
	struct nvt_ns *ns;
	void (*bad)(uint64_t lba, const struct nvt_pi_err *err, void *arg);
	void *arg;
	uint8_t *buf;			/* one block read through block_io(), then a re-read */
	uint8_t *copies;		/* nr candidates' data+metadata */
	uint64_t *lbas;
	struct nvt_pi_err *errs;	/* each candidate's latest failure */
	unsigned int nr, max;
	uint64_t last_ns;		/* when the newest candidate was read */
	uint64_t nr_bad;
};

/* Read block @lba into @dst (data then metadata) and check it. Return: 0 good, -EILSEQ bad, else -errno. */
static int nvt_scrub_read(struct nvt_scrub *sc, uint64_t lba, uint8_t *dst, struct nvt_pi_err *err)
{
	struct nvt_ns *ns = sc->ns;
	/*
	 * What is known without the host: the guard always, and for Type 1
	 * the reference tag (the LBA's low bits, as hosts write it). Type 2
	 * tags and application tags are the host's and cannot be judged.
	 */
	uint32_t check = NVT_PI_CHECK_GUARD | (ns->pi.type == NVT_PI_TYPE1 ? NVT_PI_CHECK_REFTAG : 0);
	uint8_t *data, *md;
	struct nvt_pi_ctx ctx;
	struct iovec d, m;
	int ret;

	ret = nvt_ns_block(ns, lba, sc->buf, sc->buf + ns->block_size, &data, &md);
	if (ret)
		return ret;
	/* One copy, checked: what is judged is what is compared with the next read. */
	memcpy(dst, data, ns->block_size);
	memcpy(dst + ns->block_size, md, ns->md_size);
	d = (struct iovec){ dst, ns->block_size };
	m = (struct iovec){ dst + ns->block_size, ns->md_size };
	nvt_pi_ctx_init(&ctx, &ns->pi, lba, (uint8_t)check, lba, 0, 0);
	return nvt_pi_verify(&ctx, &d, 1, &m, 1, 1, err);
}

/* Judge the batch's candidates (see above), reporting the bad in LBA order. Return: 0 or -errno. */
static int nvt_scrub_recheck(struct nvt_scrub *sc, atomic_bool *cancel)
{
	size_t blk = (size_t)sc->ns->block_size + sc->ns->md_size;
	uint8_t *again = sc->buf + blk;
	int ret = 0;

	for (unsigned int pass = 1; pass <= NVT_SCRUB_PASSES && !ret; pass++) {
		uint64_t due = sc->last_ns + pass * NVT_SCRUB_RECHECK_NS;

		while (nvt_now_ns() < due) {
			if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) {
				ret = -ECANCELED;
				goto out;
			}
			usleep(1000);
		}
		for (unsigned int i = 0; i < sc->nr && !ret; i++) {
			uint8_t *prev = sc->copies + i * blk;

			if (sc->lbas[i] == NVT_SCRUB_DROPPED)
				continue;
			ret = nvt_scrub_read(sc, sc->lbas[i], again, &sc->errs[i]);
			if (ret == -EILSEQ) {
				ret = 0;
				if (!memcmp(prev, again, blk))
					continue;	/* still the same bad bytes */
			} else if (ret) {
				goto out;
			}
			sc->lbas[i] = NVT_SCRUB_DROPPED;	/* good now, or changing: rewritten */
		}
	}
	for (unsigned int i = 0; i < sc->nr && !ret; i++) {
		if (sc->lbas[i] == NVT_SCRUB_DROPPED)
			continue;
		sc->nr_bad++;
		if (sc->bad)
			sc->bad(sc->lbas[i], &sc->errs[i], sc->arg);
	}
out:
	sc->nr = 0;
	return ret;
}

int nvt_ns_scrub_until(struct nvt_ns *ns,
		       void (*bad)(uint64_t lba, const struct nvt_pi_err *err, void *arg),
		       void *arg, uint64_t *nr_bad, atomic_bool *cancel)
{
	size_t blk = (size_t)ns->block_size + ns->md_size;
	struct nvt_scrub sc = { .ns = ns, .bad = bad, .arg = arg };
	struct nvt_pi_err err;
	int ret = 0;

	*nr_bad = 0;
	if (!ns->be->map && !ns->be->block_io)
		return -EOPNOTSUPP;
	if (!ns->pi.type)
		return -ENODATA;
	sc.max = NVT_SCRUB_BATCH_BYTES / blk ? NVT_SCRUB_BATCH_BYTES / (unsigned int)blk : 1;
	sc.buf = malloc(3 * blk);		/* block_io() target, the read under check, a re-read */
	sc.copies = malloc(sc.max * blk);
	sc.lbas = malloc(sc.max * sizeof(*sc.lbas));
	sc.errs = malloc(sc.max * sizeof(*sc.errs));
	if (!sc.buf || !sc.copies || !sc.lbas || !sc.errs) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint64_t lba = 0; lba < ns->nblocks && !ret; lba++) {
		if (cancel && !(lba & 1023) && atomic_load_explicit(cancel, memory_order_relaxed)) {
			ret = -ECANCELED;
			break;
		}
		ret = nvt_scrub_read(&sc, lba, sc.buf + 2 * blk, &err);
		if (ret != -EILSEQ)
			continue;
		ret = 0;
		sc.last_ns = nvt_now_ns();
		memcpy(sc.copies + sc.nr * blk, sc.buf + 2 * blk, blk);
		sc.errs[sc.nr] = err;
		sc.lbas[sc.nr++] = lba;
		if (sc.nr == sc.max)
			ret = nvt_scrub_recheck(&sc, cancel);
	}
	if (!ret && sc.nr)
		ret = nvt_scrub_recheck(&sc, cancel);
out:
	free(sc.buf);
	free(sc.copies);
	free(sc.lbas);
	free(sc.errs);
	*nr_bad = sc.nr_bad;
	return ret;
}

int nvt_ns_inject(struct nvt_ns *ns, uint64_t lba, bool in_metadata, uint32_t bit)
{
	uint8_t *buf, *data, *md;
	int ret;

	if (!ns->be->map && !ns->be->block_io)
		return -EOPNOTSUPP;
	if (lba >= ns->nblocks)
		return -ERANGE;
	if (bit >= 8u * (in_metadata ? ns->md_size : ns->block_size))
		return -EINVAL;
	buf = malloc((size_t)ns->block_size + ns->md_size);
	if (!buf)
		return -ENOMEM;
	ret = nvt_ns_block(ns, lba, buf, buf + ns->block_size, &data, &md);
	if (!ret) {
		(in_metadata ? md : data)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (!ns->be->map)
			ret = ns->be->block_io(ns, lba, data, md, true);
	}
	free(buf);
	return ret;
}
