/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtd's control socket, the server side of tools/nvtctl, and its request executor. */
#ifndef NVT_CONTROL_H
#define NVT_CONTROL_H

#include <stddef.h>

#include "nvt/poll_group.h"
#include "nvt/target.h"

/* The longest request line, without its newline; longer ones are refused. */
#define NVT_CONTROL_LINE_MAX	511

struct nvt_control;

/** Receives one reply line, @len bytes including its final '\n'. */
typedef void (*nvt_control_emit_fn)(void *arg, const char *line, size_t len);

/**
 * nvt_control_execute() - run one control request against @tgt: the socket
 * calls it with the bytes a client sent, the fuzz harness with its input.
 * @req: the request, not NUL-terminated; only its first line (up to the
 * first '\n', or all @len bytes if there is none) is read.
 * @emit: called for every reply line; the last one starts with "ok" or
 * "error:". Lines are at most NVT_CONTROL_LINE_MAX + 1 bytes.
 *
 * Numbers are decimal or 0x-prefixed hex, range-checked on 64 bits; a
 * command with too few or too many words, or a line with control
 * characters, gets a usage error and does nothing.
 */
void nvt_control_execute(struct nvt_target *tgt, const char *req, size_t len,
			 nvt_control_emit_fn emit, void *arg);

/**
 * nvt_control_create() - listen on unix socket @path (mode 0600) from
 * @tgt's main loop. Commands, one line each: "status", "scrub NQN NSID",
 * "inject NQN NSID LBA data|metadata BIT", "reload". Replies end with a line that
 * starts with "ok" or "error:". Clients are served without blocking the
 * loop; one that has not sent its line, or stops reading its reply, for
 * 5 seconds is dropped.
 * Return: 0 or -errno.
 */
int nvt_control_create(struct nvt_target *tgt, const char *path, struct nvt_control **out);

/** nvt_control_destroy() - stop listening, drop clients and remove the socket file. */
void nvt_control_destroy(struct nvt_control *c);

#endif /* NVT_CONTROL_H */
