/* SPDX-License-Identifier: BSD-3-Clause */
/* What liburing 2.3 lacks for NVMe passthrough (IORING_OP_URING_CMD on /dev/ngXnY): the SQE fill, the CQE32 result, with size checks. */
#ifndef NVT_NVME_URING_H
#define NVT_NVME_URING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/nvme_ioctl.h>
#include <liburing.h>

/*
 * Linux 6.1 (drivers/nvme/host/ioctl.c, io_uring/uring_cmd.c) takes an
 * NVMe command through io_uring only on a ring set up with both
 * IORING_SETUP_SQE128 and IORING_SETUP_CQE32: the 72-byte struct
 * nvme_uring_cmd lives in the SQE's 80-byte cmd area, and the completion's
 * DW0/DW1 in big_cqe[0]. liburing 2.3 has the ring flags but no prep
 * helper (io_uring_prep_uring_cmd came in 2025), so these fill by hand.
 */
#define NVT_URING_CMD_PDU	80	/* sqe->cmd bytes in SQE128 mode (uring_cmd_pdu_size(1)) */
#define NVT_URING_SQE128_SIZE	128
#define NVT_URING_CQE32_SIZE	32

_Static_assert(sizeof(struct nvme_uring_cmd) == 72, "struct nvme_uring_cmd is 72 bytes (uapi)");
_Static_assert(sizeof(struct nvme_uring_cmd) <= NVT_URING_CMD_PDU,
	       "struct nvme_uring_cmd fits the SQE128 command area");
_Static_assert(sizeof(struct io_uring_sqe) == 64, "a plain SQE is 64 bytes; SQE128 doubles it");
_Static_assert(offsetof(struct io_uring_sqe, cmd) == 48, "sqe->cmd starts at byte 48");
_Static_assert(48 + NVT_URING_CMD_PDU == NVT_URING_SQE128_SIZE, "cmd runs to the end of a 128-byte SQE");
_Static_assert(sizeof(struct io_uring_cqe) == 16, "a plain CQE is 16 bytes; CQE32 adds big_cqe[2]");
_Static_assert(offsetof(struct nvme_uring_cmd, timeout_ms) == 64, "timeout_ms at byte 64 (uapi)");

/* sqe->uring_cmd_flags: the data buffer is registered buffer sqe->buf_index (in liburing 2.3's io_uring.h too). */
#ifndef IORING_URING_CMD_FIXED
#define IORING_URING_CMD_FIXED	(1U << 0)
#endif

/**
 * nvt_uring_prep_nvme() - make @sqe (of an SQE128 ring) an NVMe I/O command
 * on @fd and return its command area to fill.
 * @sqe: from io_uring_get_sqe() on an SQE128 ring.
 * @fd: the /dev/ngXnY descriptor (or its fixed-file index with IOSQE_FIXED_FILE).
 * @cmd_op: NVME_URING_CMD_IO or NVME_URING_CMD_IO_VEC.
 *
 * All 128 bytes are zeroed first: cmd_op shares a union with the 64-bit
 * off, whose upper half (__pad1) 6.1 requires to be 0, and the kernel
 * reads every reserved field of the command.
 *
 * Return: the zeroed struct nvme_uring_cmd inside @sqe.
 */
static inline struct nvme_uring_cmd *nvt_uring_prep_nvme(struct io_uring_sqe *sqe, int fd,
							 uint32_t cmd_op)
{
	void *raw = sqe;

	/* sizeof(*sqe) is 64: hide the 128-byte reach from -Warray-bounds. */
	__asm__("" : "+r"(raw));
	memset(raw, 0, NVT_URING_SQE128_SIZE);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = cmd_op;
	return (struct nvme_uring_cmd *)(void *)sqe->cmd;
}

/**
 * nvt_uring_sqe_fixed_buf() - the command's data buffer is registered buffer @index.
 * Only NVME_URING_CMD_IO honours it (not _VEC); the metadata is bounced regardless.
 */
static inline void nvt_uring_sqe_fixed_buf(struct io_uring_sqe *sqe, uint16_t index)
{
	sqe->uring_cmd_flags |= IORING_URING_CMD_FIXED;
	sqe->buf_index = index;
}

/** nvt_uring_cqe_result() - completion DW0/DW1 of an NVMe command (CQE32 ring). */
static inline uint64_t nvt_uring_cqe_result(const struct io_uring_cqe *cqe)
{
	return cqe->big_cqe[0];
}

/*
 * cqe->res of a passthrough command: < 0 is -errno (the command never
 * reached the device, or was cancelled); > 0 is the 15-bit NVMe status
 * field (SCT << 8 | SC, plus CRD 0x1800, More 0x2000, DNR 0x4000).
 */
#define NVT_NVME_STATUS_SC_MASK	0x7ff	/* SCT and SC */
#define NVT_NVME_STATUS_DNR	0x4000

#endif /* NVT_NVME_URING_H */
