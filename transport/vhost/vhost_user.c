/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user protocol server of a vhost-user-scsi controller: its socket, QEMU's messages, ring setup and teardown on the main loop. */
#define NVT_LOG_PREFIX "vhost: "
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvt/log.h"
#include "nvt/target.h"
#include "nvt/util.h"
#include "vhost_int.h"

/* A handler's answer besides 0 / -errno: the reply comes later, from nvt_vhost_vq_drained(). */
#define NVT_VHOST_ASYNC	1

static void nvt_vhost_conn_close(struct nvt_vhost_conn *conn);

static void nvt_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- framing ---- */

/* Forget a partly received message and close the fds that came with it. */
static void nvt_vhost_rx_reset(struct nvt_vhost_conn *conn)
{
	for (unsigned int i = 0; i < conn->rx_nr_fds; i++)
		close(conn->rx_fds[i]);
	conn->rx_nr_fds = 0;
	conn->rx_len = 0;
	conn->rx_bad = false;
}

/* Keep the fds of one recvmsg() with the message they came with; beyond a message's worth is bad. */
static void nvt_vhost_rx_fds(struct nvt_vhost_conn *conn, struct msghdr *mh)
{
	if (mh->msg_flags & MSG_CTRUNC)
		conn->rx_bad = true;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t nfd;
		int fds[NVT_VHOST_MAX_REGIONS + 1];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfd > NVT_ARRAY_SIZE(fds))
			nfd = NVT_ARRAY_SIZE(fds);
		memcpy(fds, CMSG_DATA(cm), nfd * sizeof(int));
		for (size_t i = 0; i < nfd; i++) {
			if (conn->rx_nr_fds < NVT_VHOST_MAX_REGIONS) {
				conn->rx_fds[conn->rx_nr_fds++] = fds[i];
			} else {
				close(fds[i]);
				conn->rx_bad = true;
			}
		}
	}
}

/*
 * Receive what the socket has of the next message, without waiting: the
 * header, then exactly its payload (never into the next message), each
 * read taking the fds that came with it. Return: 0 (@m is whole),
 * -EAGAIN (not yet), -ECONNRESET (QEMU went away), -EPROTO (too many fds,
 * truncated control data, payload too large). On -EPROTO @m has the
 * header and the fds, for the log and for the caller to close.
 */
static int nvt_vhost_recv(struct nvt_vhost_conn *conn, struct nvt_vhost_msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * NVT_VHOST_MAX_REGIONS)];
	uint32_t size = 0;

	m->nr_fds = 0;
	for (;;) {
		uint32_t want;
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n;

		if (conn->rx_len >= NVT_VHOST_HDR_SIZE) {
			memcpy(&size, conn->rx + 8, sizeof(size));
			if (size > NVT_VHOST_MSG_MAX)
				break;
			want = NVT_VHOST_HDR_SIZE + size;
		} else {
			want = NVT_VHOST_HDR_SIZE;
		}
		if (conn->rx_len == want)
			break;
		iov = (struct iovec){ conn->rx + conn->rx_len, want - conn->rx_len };
		n = recvmsg(conn->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -ECONNRESET;
		nvt_vhost_rx_fds(conn, &mh);
		conn->rx_len += (uint32_t)n;
	}
	memcpy(&m->request, conn->rx, 4);
	memcpy(&m->flags, conn->rx + 4, 4);
	m->size = size;
	memcpy(m->fds, conn->rx_fds, conn->rx_nr_fds * sizeof(int));
	m->nr_fds = conn->rx_nr_fds;
	conn->rx_nr_fds = 0;
	if (conn->rx_bad || size > NVT_VHOST_MSG_MAX) {
		conn->rx_len = 0;
		conn->rx_bad = false;
		return -EPROTO;
	}
	memcpy(&m->payload, conn->rx + NVT_VHOST_HDR_SIZE, size);
	conn->rx_len = 0;
	return 0;
}

/* A reply: the request's id, flags exactly version 1 + REPLY (QEMU rejects anything else). */
static int nvt_vhost_reply(struct nvt_vhost_conn *conn, uint32_t request, const void *payload,
			   uint32_t size)
{
	struct {
		uint32_t request, flags, size;
		uint8_t payload[sizeof(struct nvt_vhost_vring_addr_wire)];
	} __attribute__((packed)) r = { request, NVT_VHOST_FLAG_VERSION | NVT_VHOST_FLAG_REPLY, size, { 0 } };
	size_t len = NVT_VHOST_HDR_SIZE + size;

	memcpy(r.payload, payload, size);
	/*
	 * Never waits: QEMU reads each reply before its next request, so the
	 * socket buffer has room unless the peer stopped reading; such a
	 * peer is cut off rather than let it hold the main loop.
	 */
	if (send(conn->fd, &r, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len) {
		nvt_warn("%s: cannot reply to %s", conn->ctrl->dev.name, nvt_vhost_req_name(request));
		return -EIO;
	}
	return 0;
}

static int nvt_vhost_reply_u64(struct nvt_vhost_conn *conn, uint32_t request, uint64_t v)
{
	return nvt_vhost_reply(conn, request, &v, sizeof(v));
}

static bool nvt_vhost_wants_ack(const struct nvt_vhost_conn *conn, const struct nvt_vhost_msg *m)
{
	return (conn->protocol_features & NVT_VHOST_PF_REPLY_ACK) && (m->flags & NVT_VHOST_FLAG_NEED_REPLY);
}

/* ---- queues ---- */

static struct nvt_vhost_vq *nvt_vhost_vq_get(struct nvt_vhost_conn *conn, unsigned int idx)
{
	struct nvt_vhost_vq *vq = conn->vqs[idx];
	struct nvt_target *tgt = conn->ctrl->tgt;

	if (vq)
		return vq;
	vq = calloc(1, sizeof(*vq));
	if (!vq)
		return NULL;
	vq->conn = conn;
	vq->idx = idx;
	/* Request queue r runs where NVMe I/O queue r + 1 would: spread over the I/O threads. */
	vq->pg = idx < 2 ? tgt->pg : nvt_target_io_pg(tgt, (uint16_t)(idx - 1));
	vq->kick_fd = vq->err_fd = -1;
	vq->vr.call_fd = -1;
	vq->vr.err_fd = -1;
	atomic_init(&vq->vr.next_call_fd, NVT_VRING_CALL_SAME);
	atomic_init(&vq->enabled, false);
	atomic_init(&vq->start_queued, false);
	atomic_init(&vq->popped, 0);
	conn->vqs[idx] = vq;
	return vq;
}

/* Point the ring at guest memory from its QEMU addresses. Return: 0 or -EFAULT. */
static int nvt_vhost_vq_map(struct nvt_vhost_conn *conn, struct nvt_vhost_vq *vq)
{
	struct nvt_vring *vr = &vq->vr;

	if (vq->desc_uva % 16 || vq->avail_uva % 2 || vq->used_uva % 4)
		return -EFAULT;
	vr->mem = &conn->mem;
	vr->num = vq->num;
	vr->event_idx = conn->features & NVT_VIRTIO_F_EVENT_IDX;
	vr->signalled_valid = false;
	vr->desc = nvt_vhost_uva_to_va(&conn->mem, vq->desc_uva, NVT_VRING_DESC_SIZE(vq->num));
	vr->avail = nvt_vhost_uva_to_va(&conn->mem, vq->avail_uva,
					NVT_VRING_AVAIL_SIZE(vq->num, vr->event_idx));
	vr->used = nvt_vhost_uva_to_va(&conn->mem, vq->used_uva,
				       NVT_VRING_USED_SIZE(vq->num, vr->event_idx));
	return vr->desc && vr->avail && vr->used ? 0 : -EFAULT;
}

/* The ring starts once it has its kick fd, its size, its addresses and memory to live in. */
static int nvt_vhost_vq_try_start(struct nvt_vhost_conn *conn, struct nvt_vhost_vq *vq)
{
	int ret;

	if (vq->started || vq->kick_fd < 0 || !vq->addr_set || !vq->num || !conn->mem.nr)
		return 0;
	if (vq->idx >= NVT_VHOST_MAX_VQS) {
		uint64_t one = 1;

		/*
		 * Setting it up was fine, serving it is not: slots for every queue
		 * QEMU may have would cost gigabytes. The guest sees an error on
		 * the ring (QEMU 7.2 logs err_fd) rather than a closed connection.
		 */
		nvt_warn("%s: queue %u not started: nvtd serves %u request queues (set num_queues=%u or fewer on the vhost-user-scsi device)",
			 conn->ctrl->dev.name, vq->idx, NVT_VHOST_MAX_REQ_QUEUES, NVT_VHOST_MAX_REQ_QUEUES);
		if (vq->err_fd >= 0 && write(vq->err_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: already signalled */
		}
		return 0;
	}
	ret = nvt_vhost_vq_map(conn, vq);
	if (ret) {
		nvt_warn("%s: queue %u: ring addresses outside guest memory or misaligned",
			 conn->ctrl->dev.name, vq->idx);
		return ret;
	}
	ret = nvt_vscsi_vq_prepare(vq);
	if (ret) {
		nvt_err("%s: queue %u: no memory for %u request slots", conn->ctrl->dev.name,
			vq->idx, vq->num);
		return ret;
	}
	vq->vr.last_avail = vq->base;
	vq->vr.used_idx = __atomic_load_n(&vq->vr.used->idx, __ATOMIC_ACQUIRE);
	vq->vr.broken = false;
	/* The ring's thread signals its own copy: SET_VRING_ERR may replace vq->err_fd meanwhile. */
	nvt_close_fd(&vq->vr.err_fd);
	if (vq->err_fd >= 0)
		vq->vr.err_fd = fcntl(vq->err_fd, F_DUPFD_CLOEXEC, 0);
	vq->started = true;
	/* Without PROTOCOL_FEATURES there is no SET_VRING_ENABLE: rings start enabled. */
	if (!(conn->features & NVT_VHOST_F_PROTOCOL_FEATURES))
		atomic_store(&vq->enabled, true);
	nvt_vscsi_vq_start(vq);
	return 0;
}

/* After a new memory table: start every ring that has all it needs. Return: 0 or -EFAULT. */
static int nvt_vhost_start_ready(struct nvt_vhost_conn *conn)
{
	int ret = 0;

	for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++)
		if (conn->vqs[i] && nvt_vhost_vq_try_start(conn, conn->vqs[i]))
			ret = -EFAULT;
	return ret;
}

static void nvt_vhost_vq_stop(struct nvt_vhost_conn *conn, struct nvt_vhost_vq *vq)
{
	if (!vq->started || vq->stop_sent)
		return;
	vq->stop_sent = true;
	conn->waiting++;
	nvt_vscsi_vq_stop(vq);
}

/* After a stop has drained: GET_VRING_BASE semantics, the fds go as libvhost-user's do. */
static void nvt_vhost_vq_stopped(struct nvt_vhost_vq *vq)
{
	int fd = nvt_vring_take_call(&vq->vr);

	vq->started = false;
	vq->base = vq->vr.last_avail;
	nvt_close_fd(&vq->kick_fd);
	nvt_close_fd(&vq->vr.err_fd);
	nvt_close_fd(&fd);
}

/* Stop every started ring. Return: how many stops are now outstanding. */
static unsigned int nvt_vhost_stop_all(struct nvt_vhost_conn *conn)
{
	for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++)
		if (conn->vqs[i])
			nvt_vhost_vq_stop(conn, conn->vqs[i]);
	return conn->waiting;
}

static void nvt_vhost_resume(struct nvt_vhost_conn *conn)
{
	conn->pending = NVT_VHOST_PEND_NONE;
	if (!conn->watched && !nvt_poll_group_add(conn->ctrl->tgt->pg, &conn->watch))
		conn->watched = true;
}

/* Wait for the stops in flight before reading the next message. */
static void nvt_vhost_suspend(struct nvt_vhost_conn *conn, enum nvt_vhost_pending what)
{
	conn->pending = what;
	if (conn->watched) {
		nvt_poll_group_del(conn->ctrl->tgt->pg, &conn->watch);
		conn->watched = false;
	}
}

static void nvt_vhost_swap_mem(struct nvt_vhost_conn *conn)
{
	nvt_vhost_mem_unmap(&conn->mem);
	conn->mem = conn->new_mem;
	memset(&conn->new_mem, 0, sizeof(conn->new_mem));
}

static void nvt_vhost_reset_state(struct nvt_vhost_conn *conn)
{
	conn->features = 0;
	atomic_store(&conn->pi, false);
	for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++) {
		struct nvt_vhost_vq *vq = conn->vqs[i];

		if (!vq)
			continue;
		vq->num = 0;
		vq->base = 0;
		vq->addr_set = false;
		atomic_store(&vq->enabled, false);
	}
}

void nvt_vhost_vq_drained(struct nvt_pg_msg *m)
{
	struct nvt_vhost_vq *vq = container_of(m, struct nvt_vhost_vq, drained_msg);
	struct nvt_vhost_conn *conn = vq->conn;
	int ret = 0;

	vq->stop_sent = false;
	if (--conn->waiting)
		return;
	switch (conn->pending) {
	case NVT_VHOST_PEND_GET_BASE: {
		struct nvt_vhost_vq *q = conn->vqs[conn->pending_vq];
		struct { uint32_t index, num; } st = { q->idx, 0 };

		nvt_vhost_vq_stopped(q);
		st.num = q->base;
		if (nvt_vhost_reply(conn, NVT_VHOST_GET_VRING_BASE, &st, sizeof(st)))
			goto out_close;
		break;
	}
	case NVT_VHOST_PEND_MEM_TABLE:
		/* Every ring is quiet: nothing points into the old mappings any more. */
		nvt_vhost_swap_mem(conn);
		for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++) {
			struct nvt_vhost_vq *q = conn->vqs[i];

			if (q && q->started) {
				q->base = q->vr.last_avail;
				q->started = false;
			}
		}
		ret = nvt_vhost_start_ready(conn);
		if (conn->pending_ack && nvt_vhost_reply_u64(conn, NVT_VHOST_SET_MEM_TABLE, ret ? 1 : 0))
			goto out_close;
		if (ret)
			goto out_close;
		break;
	case NVT_VHOST_PEND_RESET:
		for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++)
			if (conn->vqs[i] && conn->vqs[i]->started)
				nvt_vhost_vq_stopped(conn->vqs[i]);
		nvt_vhost_reset_state(conn);
		if (conn->pending_ack && nvt_vhost_reply_u64(conn, NVT_VHOST_RESET_DEVICE, 0))
			goto out_close;
		break;
	case NVT_VHOST_PEND_CLOSE:
		/* Every ring is stopped for good: nothing is left to stop. */
		for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++)
			if (conn->vqs[i])
				conn->vqs[i]->started = false;
		nvt_vhost_conn_close(conn);
		return;
	case NVT_VHOST_PEND_NONE:
		break;
	}
	nvt_vhost_resume(conn);
	return;

out_close:
	conn->pending = NVT_VHOST_PEND_NONE;
	nvt_vhost_conn_close(conn);
}

/* ---- requests ---- */

static int nvt_vhost_set_mem_table(struct nvt_vhost_conn *conn, struct nvt_vhost_msg *m)
{
	int ret = nvt_vhost_mem_map(&conn->new_mem, m);

	/* The mappings hold the memory: the fds are closed by the caller. */
	if (ret)
		return ret;
	if (nvt_vhost_stop_all(conn)) {
		/* QEMU resends the table while running when the guest's memory map changes. */
		conn->pending_ack = nvt_vhost_wants_ack(conn, m);
		nvt_vhost_suspend(conn, NVT_VHOST_PEND_MEM_TABLE);
		return NVT_VHOST_ASYNC;
	}
	nvt_vhost_swap_mem(conn);
	/* A ring whose kick came before the first table starts now. */
	return nvt_vhost_start_ready(conn);
}

static int nvt_vhost_set_call(struct nvt_vhost_conn *conn, struct nvt_vhost_vq *vq, int fd)
{
	(void)conn;
	if (!vq->started) {
		int old = nvt_vring_take_call(&vq->vr);

		nvt_close_fd(&old);
		vq->vr.call_fd = fd;
		return 0;
	}
	/* The ring's thread may be signalling the old fd right now: it switches itself. */
	nvt_vring_set_call(&vq->vr, fd);
	return 0;
}

/* A SET_VRING_KICK/CALL/ERR fd must be an eventfd (made non-blocking): 0 or -EBADF, logged. */
static int nvt_vhost_eventfd_check(struct nvt_vhost_conn *conn, const struct nvt_vhost_msg *m)
{
	if (!nvt_vhost_eventfd_prepare(m->fds[0]))
		return 0;
	nvt_warn("%s: %s for queue %u: the fd is not an eventfd", conn->ctrl->dev.name,
		 nvt_vhost_req_name(m->request), (unsigned int)(m->payload.u64 & NVT_VHOST_VRING_IDX_MASK));
	return -EBADF;
}

/* Act on a checked message. Return: 0, NVT_VHOST_ASYNC, or -errno (the request failed). */
static int nvt_vhost_handle(struct nvt_vhost_conn *conn, struct nvt_vhost_msg *m)
{
	struct nvt_vhost_ctrl *c = conn->ctrl;
	struct nvt_vhost_vq *vq = NULL;
	unsigned int idx;
	uint64_t v;

	switch (m->request) {
	case NVT_VHOST_SET_VRING_NUM:
	case NVT_VHOST_SET_VRING_BASE:
	case NVT_VHOST_GET_VRING_BASE:
	case NVT_VHOST_SET_VRING_ENABLE:
		idx = m->payload.state.index;
		break;
	case NVT_VHOST_SET_VRING_ADDR:
		idx = m->payload.addr.index;
		break;
	case NVT_VHOST_SET_VRING_KICK:
	case NVT_VHOST_SET_VRING_CALL:
	case NVT_VHOST_SET_VRING_ERR:
		idx = (unsigned int)(m->payload.u64 & NVT_VHOST_VRING_IDX_MASK);
		break;
	default:
		idx = UINT32_MAX;
		break;
	}
	if (idx != UINT32_MAX) {
		vq = nvt_vhost_vq_get(conn, idx);
		if (!vq)
			return -ENOMEM;
	}

	switch (m->request) {
	case NVT_VHOST_GET_FEATURES:
		return nvt_vhost_reply_u64(conn, m->request, NVT_VHOST_FEATURES);
	case NVT_VHOST_SET_FEATURES:
		v = m->payload.u64;
		/*
		 * QEMU passes on bits we never offered (VERSION_1, CHANGE, T10_PI as
		 * its t10_pi property says): accept them; refuse only ring layouts
		 * we cannot serve.
		 */
		if (v & NVT_VIRTIO_F_RING_PACKED) {
			nvt_warn("%s: features %#llx ask for a ring layout not offered", c->dev.name,
				 (unsigned long long)v);
			return -EINVAL;
		}
		if (v != conn->features)
			nvt_info("%s: guest features %#llx, T10 PI %s", c->dev.name,
				 (unsigned long long)v, v & NVT_VIRTIO_SCSI_F_T10_PI ? "on" : "off");
		conn->features = v;
		atomic_store(&conn->pi, !!(v & NVT_VIRTIO_SCSI_F_T10_PI));
		return 0;
	case NVT_VHOST_SET_OWNER:
	case NVT_VHOST_RESET_OWNER:
		return 0;
	case NVT_VHOST_SET_MEM_TABLE:
		return nvt_vhost_set_mem_table(conn, m);
	case NVT_VHOST_SET_VRING_NUM:
		v = m->payload.state.num;
		if (vq->started)
			return -EBUSY;
		/* QEMU's VIRTQUEUE_MAX_SIZE; a power of two as split rings require. */
		if (!v || v > 1024 || (v & (v - 1)))
			return -EINVAL;
		vq->num = (uint16_t)v;
		return 0;
	case NVT_VHOST_SET_VRING_ADDR:
		if (vq->started)
			return -EBUSY;
		vq->desc_uva = m->payload.addr.desc;
		vq->avail_uva = m->payload.addr.avail;
		vq->used_uva = m->payload.addr.used;
		vq->addr_set = true;
		return 0;
	case NVT_VHOST_SET_VRING_BASE:
		if (vq->started)
			return -EBUSY;
		if (m->payload.state.num > UINT16_MAX)
			return -EINVAL;
		vq->base = (uint16_t)m->payload.state.num;
		return 0;
	case NVT_VHOST_GET_VRING_BASE:
		if (!vq->started) {
			struct { uint32_t index, num; } st = { vq->idx, vq->base };

			return nvt_vhost_reply(conn, m->request, &st, sizeof(st));
		}
		/* Answered once every request popped from the ring is in its used ring. */
		conn->pending_vq = vq->idx;
		nvt_vhost_vq_stop(conn, vq);
		nvt_vhost_suspend(conn, NVT_VHOST_PEND_GET_BASE);
		return NVT_VHOST_ASYNC;
	case NVT_VHOST_SET_VRING_KICK:
		/* NOFD asks us to poll the ring: not supported. */
		if ((m->payload.u64 & NVT_VHOST_VRING_NOFD) || vq->started)
			return -EINVAL;
		if (nvt_vhost_eventfd_check(conn, m))
			return -EBADF;
		nvt_close_fd(&vq->kick_fd);
		vq->kick_fd = m->fds[0];
		m->fds[0] = -1;
		return nvt_vhost_vq_try_start(conn, vq);
	case NVT_VHOST_SET_VRING_CALL: {
		int fd = -1, ret;

		if (!(m->payload.u64 & NVT_VHOST_VRING_NOFD)) {
			if (nvt_vhost_eventfd_check(conn, m))
				return -EBADF;
			fd = m->fds[0];
			m->fds[0] = -1;
		}
		ret = nvt_vhost_set_call(conn, vq, fd);
		if (ret)
			close(fd);
		return ret;
	}
	case NVT_VHOST_SET_VRING_ERR:
		if (!(m->payload.u64 & NVT_VHOST_VRING_NOFD) && nvt_vhost_eventfd_check(conn, m))
			return -EBADF;
		nvt_close_fd(&vq->err_fd);
		if (!(m->payload.u64 & NVT_VHOST_VRING_NOFD)) {
			vq->err_fd = m->fds[0];
			m->fds[0] = -1;
		}
		return 0;
	case NVT_VHOST_GET_PROTOCOL_FEATURES:
		return nvt_vhost_reply_u64(conn, m->request, NVT_VHOST_PROTOCOL_FEATURES);
	case NVT_VHOST_SET_PROTOCOL_FEATURES:
		conn->protocol_features = m->payload.u64 & NVT_VHOST_PROTOCOL_FEATURES;
		return 0;
	case NVT_VHOST_GET_QUEUE_NUM:
		return nvt_vhost_reply_u64(conn, m->request, NVT_VHOST_MAX_VQS);
	case NVT_VHOST_SET_VRING_ENABLE:
		if (m->payload.state.num > 1)
			return -EINVAL;
		atomic_store(&vq->enabled, m->payload.state.num == 1);
		if (vq->started && m->payload.state.num)
			nvt_vscsi_vq_start(vq);	/* kicks may have come while disabled */
		return 0;
	case NVT_VHOST_RESET_DEVICE:
		if (nvt_vhost_stop_all(conn)) {
			conn->pending_ack = nvt_vhost_wants_ack(conn, m);
			nvt_vhost_suspend(conn, NVT_VHOST_PEND_RESET);
			return NVT_VHOST_ASYNC;
		}
		nvt_vhost_reset_state(conn);
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

/* Requests that answer with data of their own get no REPLY_ACK on top. */
static bool nvt_vhost_has_reply(uint32_t request)
{
	return request == NVT_VHOST_GET_FEATURES || request == NVT_VHOST_GET_PROTOCOL_FEATURES ||
	       request == NVT_VHOST_GET_QUEUE_NUM || request == NVT_VHOST_GET_VRING_BASE;
}

static void nvt_vhost_conn_readable(struct nvt_pg_watch *w)
{
	struct nvt_vhost_conn *conn = container_of(w, struct nvt_vhost_conn, watch);
	const char *name = conn->ctrl->dev.name;
	struct nvt_vhost_msg m;
	int ret;

	if (conn->pending != NVT_VHOST_PEND_NONE)
		return;	/* a stale event of this batch */
	ret = nvt_vhost_recv(conn, &m);
	if (ret == -EAGAIN)
		return;
	if (ret == -ECONNRESET) {
		nvt_info("%s: guest disconnected", name);
		goto out_close;
	}
	if (!ret)
		ret = nvt_vhost_msg_check(&m);
	if (ret) {
		nvt_warn("%s: bad vhost-user message (request %u %s, flags %#x, size %u, %u fds): closing the connection",
			 name, m.request, nvt_vhost_req_name(m.request), m.flags, m.size, m.nr_fds);
		goto out_close;
	}
	nvt_dbg("%s: %s", name, nvt_vhost_req_name(m.request));
	ret = nvt_vhost_handle(conn, &m);
	for (unsigned int i = 0; i < m.nr_fds; i++)
		if (m.fds[i] >= 0)
			close(m.fds[i]);
	m.nr_fds = 0;
	if (ret == NVT_VHOST_ASYNC)
		return;
	if (ret < 0)
		nvt_warn("%s: %s failed: %s", name, nvt_vhost_req_name(m.request), strerror(-ret));
	if (!nvt_vhost_has_reply(m.request) && nvt_vhost_wants_ack(conn, &m)) {
		if (nvt_vhost_reply_u64(conn, m.request, ret ? 1 : 0))
			goto out_close;
		return;
	}
	/* A failure QEMU cannot be told of leaves it believing something untrue: end the session. */
	if (ret < 0)
		goto out_close;
	return;

out_close:
	for (unsigned int i = 0; i < m.nr_fds; i++)
		if (m.fds[i] >= 0)
			close(m.fds[i]);
	nvt_vhost_conn_close(conn);
}

/* ---- connections ---- */

static void nvt_vhost_conn_free_fn(struct nvt_pg_deferred *d)
{
	struct nvt_vhost_conn *conn = container_of(d, struct nvt_vhost_conn, free_d);
	struct nvt_vhost_conn **pp = &conn->ctrl->draining;

	while (*pp && *pp != conn)
		pp = &(*pp)->next_draining;
	if (*pp)
		*pp = conn->next_draining;

	for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++) {
		struct nvt_vhost_vq *vq = conn->vqs[i];
		int fd;

		if (!vq)
			continue;
		fd = nvt_vring_take_call(&vq->vr);
		nvt_close_fd(&fd);
		nvt_close_fd(&vq->kick_fd);
		nvt_close_fd(&vq->err_fd);
		nvt_close_fd(&vq->vr.err_fd);
		nvt_vscsi_vq_free(vq);
		free(vq);
	}
	nvt_vhost_mem_unmap(&conn->mem);
	nvt_vhost_mem_unmap(&conn->new_mem);
	free(conn);
}

/*
 * Drop the connection: stop the rings, and once what they hold has
 * drained (the poll groups complete it into guest memory, still mapped),
 * free everything. The socket closes and the controller lets go of the
 * connection at once: QEMU 7.2 does not retry, so the next one must be
 * taken now; the old one's rings, mappings and fds are its own, on the
 * draining list until freed.
 */
static void nvt_vhost_conn_close(struct nvt_vhost_conn *conn)
{
	struct nvt_vhost_ctrl *c = conn->ctrl;

	if (conn->watched) {
		nvt_poll_group_del(c->tgt->pg, &conn->watch);
		conn->watched = false;
	}
	nvt_close_fd(&conn->fd);
	nvt_vhost_rx_reset(conn);
	conn->pending = NVT_VHOST_PEND_CLOSE;
	if (c->conn == conn)
		c->conn = NULL;
	if (!conn->draining) {
		conn->draining = true;
		conn->next_draining = c->draining;
		c->draining = conn;
	}
	if (nvt_vhost_stop_all(conn))
		return;	/* nvt_vhost_vq_drained() comes back here */
	conn->free_d.fn = nvt_vhost_conn_free_fn;
	nvt_poll_group_defer(c->tgt->pg, &conn->free_d);
}

static void nvt_vhost_accept(struct nvt_pg_watch *w)
{
	struct nvt_vhost_ctrl *c = container_of(w, struct nvt_vhost_ctrl, listen);
	struct nvt_vhost_conn *conn;
	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (c->conn) {
		/* One QEMU per controller: a second would fight the first over the rings. */
		c->nr_refused++;
		nvt_warn_ratelimited("%s: refused a second connection while a guest is attached",
				     c->dev.name);
		close(fd);
		return;
	}
	conn = calloc(1, sizeof(*conn));
	if (!conn) {
		close(fd);
		return;
	}
	conn->ctrl = c;
	conn->fd = fd;
	atomic_init(&conn->pi, false);
	conn->watch.fd = fd;
	conn->watch.fn = nvt_vhost_conn_readable;
	if (nvt_poll_group_add(c->tgt->pg, &conn->watch)) {
		close(fd);
		free(conn);
		return;
	}
	conn->watched = true;
	c->conn = conn;
	c->nr_conns++;
	nvt_info("%s: guest connected", c->dev.name);
}

/* ---- controllers ---- */

static int nvt_vhost_chown(const struct nvt_vhost_cfg *cfg)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (cfg->owner[0]) {
		struct passwd *pw = getpwnam(cfg->owner);

		if (!pw) {
			nvt_err("line %d: vhost socket owner \"%s\": no such user", cfg->line, cfg->owner);
			return -ENOENT;
		}
		uid = pw->pw_uid;
	}
	if (cfg->group[0]) {
		struct group *gr = getgrnam(cfg->group);

		if (!gr) {
			nvt_err("line %d: vhost socket group \"%s\": no such group", cfg->line, cfg->group);
			return -ENOENT;
		}
		gid = gr->gr_gid;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(cfg->socket, uid, gid)) {
		int err = -errno;

		nvt_err("line %d: chown %s: %s", cfg->line, cfg->socket, strerror(-err));
		return err;
	}
	return 0;
}

static int nvt_vhost_listen(struct nvt_vhost_ctrl *c)
{
	const struct nvt_vhost_cfg *cfg = &c->cfg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (strlen(cfg->socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, cfg->socket);
	/* A socket left by an earlier nvtd is ours to replace; anything else is not. */
	if (!lstat(cfg->socket, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			nvt_err("line %d: %s exists and is not a socket", cfg->line, cfg->socket);
			return -EEXIST;
		}
		unlink(cfg->socket);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out_errno;
	/* Before listen(): nobody can connect while the mode is still the umask's. */
	if (chmod(cfg->socket, 0600))
		goto out_unlink;
	ret = nvt_vhost_chown(cfg);
	if (ret)
		goto out_unlink_ret;
	if (listen(fd, 4))
		goto out_unlink;
	c->listen.fd = fd;
	c->listen.fn = nvt_vhost_accept;
	ret = nvt_poll_group_add(c->tgt->pg, &c->listen);
	if (ret)
		goto out_unlink_ret;
	return 0;

out_unlink:
	ret = -errno;
out_unlink_ret:
	unlink(cfg->socket);
	close(fd);
	return ret;
out_errno:
	ret = -errno;
	close(fd);
	return ret;
}

static void nvt_vhost_luns_fini(struct nvt_vhost_ctrl *c)
{
	for (unsigned int i = 0; i < c->dev.nr_luns; i++) {
		struct nvt_scsi_lun *lun = c->dev.luns[i];

		if (!lun)
			continue;	/* removed live */
		nvt_scsi_unregister_lun(lun);
		nvt_scsi_lun_fini(lun);
		free(lun);
		c->dev.luns[i] = NULL;
	}
	c->dev.nr_luns = 0;
}

/* A LUN of @lc's namespace, set up and in the copy registry; not yet in the controller's tables. */
static int nvt_vhost_lun_make(struct nvt_vhost_ctrl *c, const struct nvt_vhost_lun_cfg *lc,
			      struct nvt_scsi_lun **out)
{
	struct nvt_subsys *s = nvt_target_find_subsys(c->tgt, lc->subsystem);
	struct nvt_ns *ns = s && lc->nsid <= NVT_MAX_NSID ? atomic_load(&s->ns[lc->nsid]) : NULL;
	struct nvt_scsi_lun *lun;
	int ret;

	if (!ns) {
		nvt_err("line %d: LUN %u: no namespace %u in subsystem %s", lc->line, lc->lun,
			lc->nsid, lc->subsystem);
		return -ENOENT;
	}
	if (lc->lun > NVT_VHOST_MAX_LUN)
		return -EINVAL;
	if (atomic_load(&c->by_id[lc->lun]))
		return -EEXIST;	/* at start-up an error; live, a reload that failed later on */
	lun = calloc(1, sizeof(*lun));
	if (!lun)
		return -ENOMEM;
	ret = nvt_scsi_lun_init(lun, ns, lc->lun);
	if (ret) {
		free(lun);
		nvt_err("line %d: LUN %u: %s", lc->line, lc->lun, strerror(-ret));
		return ret;
	}
	ret = nvt_scsi_register_lun(lun);
	if (ret) {
		nvt_scsi_lun_fini(lun);
		free(lun);
		return ret;
	}
	*out = lun;
	return 0;
}

static int nvt_vhost_luns_init(struct nvt_vhost_ctrl *c, const struct nvt_vhost_cfg *cfg)
{
	for (unsigned int i = 0; i < cfg->nr_luns; i++) {
		const struct nvt_vhost_lun_cfg *lc = &cfg->luns[i];
		struct nvt_scsi_lun *lun;
		unsigned int pos;
		int ret;

		if (lc->lun > NVT_VHOST_MAX_LUN || c->by_id[lc->lun] ||
		    c->dev.nr_luns == NVT_SCSI_MAX_LUNS) {
			nvt_err("line %d: LUN %u: out of range, used twice or one too many", lc->line,
				lc->lun);
			return -EINVAL;
		}
		ret = nvt_vhost_lun_make(c, lc, &lun);
		if (ret)
			return ret;
		/* REPORT LUNS lists them in order. */
		for (pos = c->dev.nr_luns; pos && c->dev.luns[pos - 1]->lun > lun->lun; pos--)
			c->dev.luns[pos] = c->dev.luns[pos - 1];
		c->dev.luns[pos] = lun;
		c->dev.nr_luns++;
		c->by_id[lc->lun] = lun;
	}
	return 0;
}

/* Main loop: the LUN events a reload queued go to the guest. */
static void nvt_vhost_ev_fn(struct nvt_pg_msg *m)
{
	struct nvt_vhost_ctrl *c = container_of(m, struct nvt_vhost_ctrl, ev_msg);

	/* Cleared first: an event queued from here on sends the message again. */
	atomic_store(&c->ev_queued, false);
	nvt_vscsi_event_flush(c);
}

/* Tell the guest (from any thread): queued, then handed to the event queue on the main loop. */
static void nvt_vhost_lun_event(struct nvt_vhost_ctrl *c, uint16_t lun, uint32_t reason)
{
	pthread_mutex_lock(&c->ev_lock);
	if (c->nr_ev < NVT_VHOST_EVENTS_MAX)
		c->ev[c->nr_ev++] = (struct nvt_vhost_lun_event){ .lun = lun, .reason = reason };
	else
		c->ev_overflow = true;
	pthread_mutex_unlock(&c->ev_lock);
	if (!atomic_exchange(&c->ev_queued, true))
		nvt_poll_group_send(c->tgt->pg, &c->ev_msg);
}

int nvt_vhost_ctrl_lun_add(struct nvt_vhost_ctrl *c, const struct nvt_vhost_lun_cfg *lc)
{
	struct nvt_scsi_lun *lun;
	unsigned int slot, nr = c->dev.nr_luns;
	int ret;

	for (slot = 0; slot < nr && c->dev.luns[slot]; slot++)
		;
	if (slot == NVT_SCSI_MAX_LUNS)
		return -ENOSPC;
	ret = nvt_vhost_lun_make(c, lc, &lun);
	if (ret)
		return ret;
	/* Fully set up before either table shows it (release stores). */
	atomic_store_explicit(&c->dev.luns[slot], lun, memory_order_release);
	if (slot == nr)
		atomic_store_explicit(&c->dev.nr_luns, nr + 1, memory_order_release);
	atomic_store_explicit(&c->by_id[lc->lun], lun, memory_order_release);
	nvt_info("%s: LUN %u added (%s nsid %u)", c->dev.name, lc->lun, lc->subsystem, lc->nsid);
	nvt_vhost_lun_event(c, lc->lun, NVT_VSCSI_EVT_RESET_RESCAN);
	return 0;
}

#define NVT_VHOST_LUN_DRAIN_NS	(10ull * 1000 * 1000 * 1000)	/* commands finish long before */

int nvt_vhost_ctrl_lun_remove(struct nvt_vhost_ctrl *c, uint16_t id)
{
	struct nvt_scsi_lun *lun = id <= NVT_VHOST_MAX_LUN ? atomic_load(&c->by_id[id]) : NULL;

	if (!lun)
		return -ENOENT;
	/* Unpublished everywhere a request may find it; later requests answer LUN NOT SUPPORTED. */
	atomic_store(&c->by_id[id], NULL);
	for (unsigned int i = 0; i < c->dev.nr_luns; i++)
		if (atomic_load(&c->dev.luns[i]) == lun)
			atomic_store(&c->dev.luns[i], NULL);
	nvt_scsi_unregister_lun(lun);
	nvt_vhost_lun_event(c, id, NVT_VSCSI_EVT_RESET_REMOVED);
	if (!nvt_vscsi_luns_drain(NVT_VHOST_LUN_DRAIN_NS)) {
		/* Never freed under a command: it stays, unreachable, until nvtd exits. */
		nvt_err("%s: LUN %u: commands still hold it after %llu s: left allocated",
			c->dev.name, id, NVT_VHOST_LUN_DRAIN_NS / 1000000000ull);
		return 0;
	}
	nvt_scsi_lun_fini(lun);
	free(lun);
	nvt_info("%s: LUN %u removed", c->dev.name, id);
	return 0;
}

struct nvt_vhost_ctrl *nvt_vhost_ctrl_find(struct nvt_target *tgt, const char *socket)
{
	for (unsigned int i = 0; i < tgt->nr_vhosts; i++)
		if (tgt->vhosts[i] && !strcmp(tgt->vhosts[i]->cfg.socket, socket))
			return tgt->vhosts[i];
	return NULL;
}

/* The reload's way in (nvt_target's hook: the core does not link the front). */
static int nvt_vhost_reload_lun(struct nvt_target *tgt, const char *socket,
				const struct nvt_vhost_lun_cfg *lc, bool add)
{
	struct nvt_vhost_ctrl *c = nvt_vhost_ctrl_find(tgt, socket);

	if (!c)
		return -ENODEV;
	return add ? nvt_vhost_ctrl_lun_add(c, lc) : nvt_vhost_ctrl_lun_remove(c, lc->lun);
}

int nvt_vhost_ctrl_create(struct nvt_target *tgt, const struct nvt_vhost_cfg *cfg,
			  struct nvt_vhost_ctrl **out)
{
	struct nvt_vhost_ctrl *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->tgt = tgt;
	c->cfg = *cfg;
	c->cfg.luns = NULL;
	c->cfg.nr_luns = 0;
	c->listen.fd = -1;
	snprintf(c->dev.name, sizeof(c->dev.name), "%.63s", cfg->socket);
	c->dev.copy_between = cfg->copy_between_controllers;
	nvt_scsi_dev_hostid(&c->dev, cfg->socket);
	pthread_mutex_init(&c->ev_lock, NULL);
	atomic_init(&c->ev_queued, false);
	c->ev_msg.fn = nvt_vhost_ev_fn;
	tgt->vhost_reload_lun = nvt_vhost_reload_lun;
	ret = nvt_vhost_luns_init(c, cfg);
	if (ret)
		goto out_free_luns;
	ret = nvt_vhost_listen(c);
	if (ret) {
		nvt_err("line %d: cannot listen on %s: %s", cfg->line, cfg->socket, strerror(-ret));
		goto out_free_luns;
	}
	nvt_info("%s: vhost-user-scsi controller with %u LUNs", c->dev.name, c->dev.nr_luns);
	*out = c;
	return 0;

out_free_luns:
	nvt_vhost_luns_fini(c);
	pthread_mutex_destroy(&c->ev_lock);
	free(c);
	return ret;
}

void nvt_vhost_ctrl_destroy(struct nvt_vhost_ctrl *c)
{
	if (!c)
		return;
	if (c->listen.fd >= 0) {
		nvt_poll_group_del(c->tgt->pg, &c->listen);
		close(c->listen.fd);
		unlink(c->cfg.socket);
	}
	/*
	 * Called on the main loop's thread with its loop not running: drive it
	 * until the rings have drained and the connection is freed.
	 */
	if (c->conn)
		nvt_vhost_conn_close(c->conn);
	while (c->draining || atomic_load(&c->ev_queued))
		nvt_poll_group_poll(c->tgt->pg, 10);
	nvt_poll_group_poll(c->tgt->pg, 0);	/* the deferred free */
	nvt_vhost_luns_fini(c);
	pthread_mutex_destroy(&c->ev_lock);
	free(c);
}

void nvt_vhost_ctrl_status(const struct nvt_vhost_ctrl *c, FILE *out)
{
	const struct nvt_vhost_conn *conn = c->conn;
	unsigned int started = 0;

	fprintf(out, "vhost %s: %s", c->cfg.socket, conn ? "guest connected" : "no guest");
	if (conn) {
		for (unsigned int i = 0; i < NVT_VHOST_VQ_LIMIT; i++)
			started += conn->vqs[i] && conn->vqs[i]->started;
		fprintf(out, ", features %#llx, T10 PI %s, %u queues running",
			(unsigned long long)conn->features, atomic_load(&conn->pi) ? "on" : "off", started);
	}
	fprintf(out, ", %llu connections, %llu refused\n", (unsigned long long)c->nr_conns,
		(unsigned long long)c->nr_refused);
	for (unsigned int i = 0; i < c->dev.nr_luns; i++) {
		const struct nvt_scsi_lun *l = c->dev.luns[i];

		if (!l)
			continue;
		fprintf(out, "  LUN %u: %s nsid %u%s\n", l->lun, l->ns->subsys ? l->ns->subsys->nqn : "?",
			l->ns->nsid, l->pi ? ", T10 PI" : "");
	}
}
