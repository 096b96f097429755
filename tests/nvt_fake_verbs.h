/* SPDX-License-Identifier: BSD-3-Clause */
/* What the RDMA transport's fake HCAs (tests/unit/rdma_queue_test.c, tests/fuzz/fuzz_rdma.c) share: buffer ownership under ASan and the verbs calls both fake alike. */
#ifndef NVT_FAKE_VERBS_H
#define NVT_FAKE_VERBS_H

#include <infiniband/verbs.h>

/*
 * What the HCA owns, nobody else may touch: a posted receive buffer (a
 * queue's or a shared receive queue's), the local side of an RDMA READ or
 * WRITE, a response under SEND. Under ASan a fake poisons those regions
 * until the HCA gives them back, so any read or write of them fails.
 * gcc says __SANITIZE_ADDRESS__, clang 14 only __has_feature.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NVT_FAKE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(NVT_FAKE_ASAN)
#include <sanitizer/asan_interface.h>
#define HCA_TAKES(p, n)	ASAN_POISON_MEMORY_REGION((p), (n))
#define HCA_GIVES(p, n)	ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HCA_TAKES(p, n)	((void)(p), (void)(n))
#define HCA_GIVES(p, n)	((void)(p), (void)(n))
#endif

/*
 * The test program's definitions win over libibverbs' for our objects:
 * the fakes' CQs, MRs and SRQs are plain structs, there is nothing to free.
 */
int ibv_destroy_cq(struct ibv_cq *cq)
{
	return 0;
}

int ibv_dereg_mr(struct ibv_mr *mr)
{
	return 0;
}

int ibv_destroy_srq(struct ibv_srq *srq)
{
	return 0;
}

#endif /* NVT_FAKE_VERBS_H */
