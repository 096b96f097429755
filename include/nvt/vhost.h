/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user-scsi front: unix sockets QEMU's vhost-user-scsi-pci attaches to, serving LUNs of the target's namespaces. */
#ifndef NVT_VHOST_H
#define NVT_VHOST_H

#include <stdint.h>
#include <stdio.h>

#include "nvt/config.h"

struct nvt_target;
struct nvt_vhost_ctrl;

/**
 * nvt_vhost_ctrl_create() - listen on @cfg->socket (mode 0600, then
 * chown to owner/group) and serve its LUNs, which name namespaces of
 * @tgt. The protocol runs on @tgt->pg (the main loop); request queues on
 * the target's I/O poll groups. Return: 0 or -errno (logged with the
 * config line).
 */
int nvt_vhost_ctrl_create(struct nvt_target *tgt, const struct nvt_vhost_cfg *cfg,
			  struct nvt_vhost_ctrl **out);

/**
 * nvt_vhost_ctrl_destroy() - drop the guest's connection (I/O drained first),
 * unlink the socket, free. Call it on the main loop's thread with that loop
 * not running (it drives @tgt->pg itself) and the I/O poll groups still
 * running: their rings drain there.
 */
void nvt_vhost_ctrl_destroy(struct nvt_vhost_ctrl *c);

/**
 * nvt_vhost_ctrl_lun_add() - serve @lc's namespace as a new LUN of @c, live:
 * published to the request queues, and a guest whose driver negotiated
 * VIRTIO_SCSI_F_HOTPLUG is sent a transport-reset RESCAN event for it.
 * Control path, any thread. Return: 0, -EEXIST (the LUN id is taken),
 * -ENOENT (no such namespace), -ENOSPC, -ENOMEM.
 */
int nvt_vhost_ctrl_lun_add(struct nvt_vhost_ctrl *c, const struct nvt_vhost_lun_cfg *lc);

/**
 * nvt_vhost_ctrl_lun_remove() - LUN @lun of @c goes, live: unpublished
 * (later commands to it: CHECK CONDITION, ILLEGAL REQUEST, LOGICAL UNIT
 * NOT SUPPORTED), the guest sent a REMOVED event, then the commands that
 * may hold it are waited out (at most 10 s; past that it stays allocated)
 * and it is freed; its namespace is untouched. Control path, not on an I/O
 * poll group. Return: 0 or -ENOENT.
 */
int nvt_vhost_ctrl_lun_remove(struct nvt_vhost_ctrl *c, uint16_t lun);

/** nvt_vhost_ctrl_find() - the controller of @tgt->vhosts listening on @socket, or NULL. */
struct nvt_vhost_ctrl *nvt_vhost_ctrl_find(struct nvt_target *tgt, const char *socket);

/** nvt_vhost_ctrl_status() - one paragraph for `nvtctl status`: socket, connection state, queues, LUNs. */
void nvt_vhost_ctrl_status(const struct nvt_vhost_ctrl *c, FILE *out);

#endif /* NVT_VHOST_H */
