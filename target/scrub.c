/* SPDX-License-Identifier: BSD-3-Clause */
/* Scrub (check the stored PI of every block of a namespace) and fault injection (flip a stored bit), on any backend. */
#include <errno.h>
#include <stdlib.h>

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

int nvt_ns_scrub_until(struct nvt_ns *ns,
		       void (*bad)(uint64_t lba, const struct nvt_pi_err *err, void *arg),
		       void *arg, uint64_t *nr_bad, atomic_bool *cancel)
{
	struct nvt_pi_ctx ctx;
	struct nvt_pi_err err;
	uint8_t *buf, *data, *md;
	uint64_t n = 0;
	int ret = 0;

	if (!ns->be->map && !ns->be->block_io)
		return -EOPNOTSUPP;
	if (!ns->pi.type)
		return -ENODATA;
	buf = malloc((size_t)ns->block_size + ns->md_size);
	if (!buf)
		return -ENOMEM;
	for (uint64_t lba = 0; lba < ns->nblocks && !ret; lba++) {
		struct iovec d, m;
		/*
		 * What is known without the host: the guard always, and for Type 1
		 * the reference tag (the LBA's low bits, as hosts write it). Type 2
		 * tags and application tags are the host's and cannot be judged.
		 */
		uint32_t check = NVT_PI_CHECK_GUARD |
				 (ns->pi.type == NVT_PI_TYPE1 ? NVT_PI_CHECK_REFTAG : 0);

		if (cancel && !(lba & 1023) && atomic_load_explicit(cancel, memory_order_relaxed)) {
			ret = -ECANCELED;
			break;
		}
		ret = nvt_ns_block(ns, lba, buf, buf + ns->block_size, &data, &md);
		if (ret)
			break;
		d = (struct iovec){ data, ns->block_size };
		m = (struct iovec){ md, ns->md_size };
		nvt_pi_ctx_init(&ctx, &ns->pi, lba, (uint8_t)check, lba, 0, 0);
		if (nvt_pi_verify(&ctx, &d, 1, &m, 1, 1, &err) == -EILSEQ) {
			n++;
			if (bad)
				bad(lba, &err, arg);
		}
	}
	free(buf);
	*nr_bad = n;
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
