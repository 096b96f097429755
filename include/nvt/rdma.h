/* SPDX-License-Identifier: BSD-3-Clause */
/* The NVMe-oF RDMA transport's ops table (rdma-core: librdmacm + libibverbs). */
#ifndef NVT_RDMA_H
#define NVT_RDMA_H

#include "nvt/target.h"

extern const struct nvt_transport_ops nvt_rdma_transport_ops;

#endif /* NVT_RDMA_H */
