/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtd's control socket, the server side of tools/nvtctl. */
#ifndef NVT_CONTROL_H
#define NVT_CONTROL_H

#include "nvt/poll_group.h"
#include "nvt/target.h"

struct nvt_control;

/**
 * nvt_control_create() - listen on unix socket @path (mode 0600) from
 * @tgt's main loop. Commands, one line each: "status", "scrub NQN NSID",
 * "inject NQN NSID LBA data|metadata BIT". Replies end with a line that
 * starts with "ok" or "error:".
 * Return: 0 or -errno.
 */
int nvt_control_create(struct nvt_target *tgt, const char *path, struct nvt_control **out);

/** nvt_control_destroy() - stop listening and remove the socket file. */
void nvt_control_destroy(struct nvt_control *c);

#endif /* NVT_CONTROL_H */
