/* SPDX-License-Identifier: BSD-3-Clause */
/* Scrub (check the stored PI of every block of a namespace) and fault injection (flip a stored bit), for memory backends. */
#include <errno.h>

#include "nvt/target.h"

int nvt_ns_scrub(struct nvt_ns *ns, void (*bad)(uint64_t lba, const struct nvt_pi_err *err, void *arg),
		 void *arg, uint64_t *nr_bad)
{
	struct nvt_pi_ctx ctx;
	struct nvt_pi_err err;
	uint64_t n = 0;

	if (!ns->be->block)
		return -EOPNOTSUPP;
	if (!ns->pi.type)
		return -ENODATA;
	for (uint64_t lba = 0; lba < ns->nblocks; lba++) {
		void *md, *data = ns->be->block(ns, lba, &md);
		struct iovec d = { data, ns->block_size }, m = { md, ns->md_size };
		/*
		 * What is known without the host: the guard always, and for Type 1
		 * the reference tag (the LBA's low bits, as hosts write it). Type 2
		 * tags and application tags are the host's and cannot be judged.
		 */
		uint32_t check = NVT_PI_CHECK_GUARD |
				 (ns->pi.type == NVT_PI_TYPE1 ? NVT_PI_CHECK_REFTAG : 0);

		nvt_pi_ctx_init(&ctx, &ns->pi, lba, (uint8_t)check, lba, 0, 0);
		if (nvt_pi_verify(&ctx, &d, 1, &m, 1, 1, &err) == -EILSEQ) {
			n++;
			if (bad)
				bad(lba, &err, arg);
		}
	}
	*nr_bad = n;
	return 0;
}

int nvt_ns_inject(struct nvt_ns *ns, uint64_t lba, bool in_metadata, uint32_t bit)
{
	void *md, *data;

	if (!ns->be->block)
		return -EOPNOTSUPP;
	if (lba >= ns->nblocks)
		return -ERANGE;
	if (bit >= 8u * (in_metadata ? ns->md_size : ns->block_size))
		return -EINVAL;
	data = ns->be->block(ns, lba, &md);
	((uint8_t *)(in_metadata ? md : data))[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	return 0;
}
