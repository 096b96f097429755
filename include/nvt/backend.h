/* SPDX-License-Identifier: BSD-3-Clause */
/* The backends nvt ships, and test hooks into them. */
#ifndef NVT_BACKEND_H
#define NVT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "nvt/bio.h"

/* Data in one anonymous mapping, metadata (when the format has it) in another. */
extern const struct nvt_backend_ops nvt_ram_backend_ops;

/*
 * "file": a regular file or a block device through one io_uring per poll
 * group (O_DIRECT where it works); metadata in a sidecar file.
 */
extern const struct nvt_backend_ops nvt_uring_backend_ops;

/*
 * "nvme": a local NVMe namespace through io_uring passthrough on its
 * generic char device; its format (metadata, PI) is the device's.
 */
extern const struct nvt_backend_ops nvt_nvme_backend_ops;

/**
 * nvt_ram_block() - where block @lba's data (and metadata, if @md) lives in
 * a ram namespace; for fault injection and scrub. Return: NULL if out of range.
 */
void *nvt_ram_block(struct nvt_ns *ns, uint64_t lba, void **md);

#endif /* NVT_BACKEND_H */
