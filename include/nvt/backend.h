/* SPDX-License-Identifier: BSD-3-Clause */
/* The backends nvt ships, and test hooks into them. */
#ifndef NVT_BACKEND_H
#define NVT_BACKEND_H

#include <stdbool.h>
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

/*
 * In-place I/O on a ram namespace without metadata, for a front end that
 * moves the host's data by DMA straight into or out of the namespace's
 * memory (RDMA zero copy).
 *
 * nvt_ram_region() gives the data mapping; the front end registers it for
 * DMA and attaches a struct nvt_ram_user, whose release() the namespace's
 * close calls (control thread, nothing in flight) before the memory goes:
 * the registration must end there. A READ or WRITE bio flagged
 * NVT_BIO_IN_PLACE whose one iovec is exactly its own blocks' memory moves
 * nothing in the backend (bios overlapping it on its channel wait): it is
 * handed to the in-place handler (nvt_ram_set_in_place()) on its poll
 * group's thread once the namespace layer runs it, that is once it holds
 * its range (a compare-and-write on the range waits for it, and it for
 * one), and stays in flight until the front end has moved the data and
 * calls nvt_bio_backend_done(bio, err).
 */
struct nvt_ram_user {
	void (*release)(struct nvt_ram_user *u);
	struct nvt_ram_user *next;		/* the namespace's; written by ram.c only */
};

/**
 * nvt_ram_region() - @ns's data mapping, to register for DMA: from this call
 * on its pages stay the ones a registration pins (deallocation zeroes them
 * instead of giving them back). Return: false if @ns is not a ram namespace
 * without metadata.
 */
bool nvt_ram_region(struct nvt_ns *ns, void **base, size_t *len);

/** nvt_ram_attach() - @u's release() runs when @ns closes. Any thread; lock free. */
void nvt_ram_attach(struct nvt_ns *ns, struct nvt_ram_user *u);

/** nvt_ram_set_in_place() - the handler of in-place bios (above), process-wide; NULL: none (they fail). */
void nvt_ram_set_in_place(void (*held)(struct nvt_bio *bio));

#endif /* NVT_BACKEND_H */
