/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-scsi queues of a vhost-user connection: requests on the I/O poll groups, TMFs and AN on the control queue, held event buffers. */
#define NVT_LOG_PREFIX "vhost: "
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/target.h"
#include "nvt/util.h"
#include "vhost_int.h"

#define NVT_VSCSI_CTL_VQ	0
#define NVT_VSCSI_EVENT_VQ	1
#define NVT_VSCSI_REQ_VQ0	2

/*
 * Requests that may hold a LUN pointer, by epoch and poll group slot, for
 * every controller at once (EXTENDED COPY may name another controller's
 * LUNs): a LUN removed live is freed only once the epoch it was
 * unpublished in has emptied. Each group writes its own line.
 */
static struct nvt_vscsi_readers {
	_Atomic unsigned long n;
} __attribute__((aligned(64))) nvt_vscsi_readers[2][NVT_MAX_PG_SLOTS + 1];
static _Atomic unsigned int nvt_vscsi_epoch;

/*
 * Count a request in before it loads any LUN pointer. Both sequentially
 * consistent with the removal's NULL store and epoch flip: a request
 * whose load saw the LUN counted before the flip, in the epoch the
 * removal then waits out; one counted after the flip loads NULL.
 */
static uint16_t nvt_vscsi_lun_enter(const struct nvt_poll_group *pg)
{
	int slot = pg ? nvt_poll_group_slot(pg) : -1;
	unsigned int i = slot >= 0 && slot < NVT_MAX_PG_SLOTS ? (unsigned int)slot : NVT_MAX_PG_SLOTS;
	unsigned int e = atomic_load(&nvt_vscsi_epoch) & 1;

	atomic_fetch_add(&nvt_vscsi_readers[e][i].n, 1);
	return (uint16_t)(e << 15 | i);
}

/* Done with every LUN pointer the request read (release: its last use comes first). */
static void nvt_vscsi_lun_leave(uint16_t reader)
{
	atomic_fetch_sub_explicit(&nvt_vscsi_readers[reader >> 15][reader & 0x7fff].n, 1,
				  memory_order_release);
}

bool nvt_vscsi_luns_drain(uint64_t timeout_ns)
{
	unsigned int e = atomic_fetch_xor(&nvt_vscsi_epoch, 1) & 1;
	uint64_t waited = 0;

	for (unsigned int i = 0; i <= NVT_MAX_PG_SLOTS; i++)
		while (atomic_load_explicit(&nvt_vscsi_readers[e][i].n, memory_order_acquire)) {
			/* Counted in sleeps: the control path only, and 10 s need no precision. */
			if (waited > timeout_ns)
				return false;
			usleep(100);
			waited += 100000;
		}
	return true;
}

int nvt_vscsi_lun_decode(const uint8_t lun[8])
{
	/* Flat addressing as virtio_scsi_init_hdr() writes it: 1, target, 0x40 | lun >> 8, lun & 0xff. */
	if (lun[0] != 1 || lun[1] != 0)
		return -1;
	return ((lun[2] << 8) | lun[3]) & 0x3fff;
}

int nvt_vscsi_parse(const struct iovec *iov, unsigned int nr_out, unsigned int nr_in, bool pi,
		    struct nvt_vscsi_parsed *p)
{
	size_t out = nvt_iov_len(iov, nr_out), in = nvt_iov_len(iov + nr_out, nr_in);
	size_t hdr = pi ? sizeof(struct nvt_vscsi_cmd_req_pi) : sizeof(struct nvt_vscsi_cmd_req);

	memset(p, 0, sizeof(*p));
	p->resp_room = in;
	/* By bytes: a driver may split the header over descriptors or share one with data. */
	if (out < hdr)
		return -EINVAL;
	if (pi) {
		struct nvt_vscsi_cmd_req_pi h;

		nvt_iov_copy(iov, nr_out, 0, &h, sizeof(h), false);
		memcpy(p->lun, h.lun, 8);
		p->tag = le64toh(h.tag);
		memcpy(p->cdb, h.cdb, sizeof(p->cdb));
		p->pi_out = le32toh(h.pi_bytesout);
		p->pi_in = le32toh(h.pi_bytesin);
	} else {
		struct nvt_vscsi_cmd_req h;

		nvt_iov_copy(iov, nr_out, 0, &h, sizeof(h), false);
		memcpy(p->lun, h.lun, 8);
		p->tag = le64toh(h.tag);
		memcpy(p->cdb, h.cdb, sizeof(p->cdb));
	}
	if (in < sizeof(struct nvt_vscsi_cmd_resp))
		return -EINVAL;
	in -= sizeof(struct nvt_vscsi_cmd_resp);
	out -= hdr;
	/* The PI bytes come first, then the data, in each direction (as the kernel's vhost-scsi splits them). */
	if (p->pi_out > out || p->pi_in > in)
		return -EINVAL;
	p->data_out = out - p->pi_out;
	p->data_in = in - p->pi_in;
	/* VIRTIO_SCSI_F_INOUT is never offered: one direction per request. */
	if ((p->data_out || p->pi_out) && (p->data_in || p->pi_in))
		return -EINVAL;
	if (p->data_out > UINT32_MAX || p->data_in > UINT32_MAX)
		return -EINVAL;
	/* The used length (response + PI + data written) is 32 bits: it must not wrap. */
	if (sizeof(struct nvt_vscsi_cmd_resp) + (uint64_t)p->pi_in + p->data_in > UINT32_MAX)
		return -EINVAL;
	return 0;
}

/* Complete @head of @vq: one used element, and an interrupt now or at the end of the batch. */
static void nvt_vscsi_push(struct nvt_vhost_vq *vq, uint16_t head, uint32_t len)
{
	nvt_vring_push(&vq->vr, head, len);
	if (vq->in_batch)
		vq->need_notify = true;
	else
		nvt_vring_notify(&vq->vr);
}

/* After the batch: a stale kick event of this batch must still find @vq, which the main loop may free once told. */
static void nvt_vscsi_drained_fn(struct nvt_pg_deferred *d)
{
	struct nvt_vhost_vq *vq = container_of(d, struct nvt_vhost_vq, drained_d);

	nvt_poll_group_send(vq->conn->ctrl->tgt->pg, &vq->drained_msg);
}

/* One in-flight request (or held TMF) of @vq is gone: a stop waiting for it may now report. */
static void nvt_vscsi_put(struct nvt_vhost_vq *vq)
{
	vq->inflight--;
	if (!vq->inflight && vq->stopping) {
		vq->stopping = false;
		nvt_poll_group_defer(vq->pg, &vq->drained_d);
	}
}

/* A request answered without the SCSI layer: a bare response. */
static void nvt_vscsi_respond(struct nvt_vhost_vq *vq, uint16_t head, const struct iovec *in,
			      unsigned int nr_in, uint8_t response)
{
	struct nvt_vscsi_cmd_resp resp = { .response = response };

	if (nvt_iov_len(in, nr_in) < sizeof(resp)) {
		nvt_vscsi_push(vq, head, 0);
		return;
	}
	nvt_iov_copy(in, nr_in, 0, &resp, sizeof(resp), true);
	nvt_vscsi_push(vq, head, sizeof(resp));
}

static void nvt_vscsi_task_done(struct nvt_scsi_task *t)
{
	struct nvt_vhost_req *r = container_of(t, struct nvt_vhost_req, task);
	struct nvt_vhost_vq *vq = r->vq;
	struct nvt_vscsi_cmd_resp resp = {
		.sense_len = htole32(t->sense_len < NVT_SCSI_SENSE_MAX ? t->sense_len : NVT_SCSI_SENSE_MAX),
		.resid = htole32(t->resid),
		.status = t->status,
		.response = NVT_VSCSI_S_OK,
	};
	uint32_t len = r->in_written;

	memcpy(resp.sense, t->sense, le32toh(resp.sense_len));
	nvt_iov_copy(r->raw + r->nr_out, r->nr_in, 0, &resp, sizeof(resp), true);
	if (!t->to_dev && t->data_len)
		len -= t->resid < t->data_len ? t->resid : t->data_len;
	r->busy = false;
	nvt_vscsi_lun_leave(r->lun_reader);
	nvt_vscsi_push(vq, r->head, len);
	/* Release: a TMF that sees the slot idle answers after this response is in the used ring. */
	atomic_store_explicit(&r->seq, 0, memory_order_release);
	nvt_vscsi_put(vq);
}

/* A popped request of request queue @vq, its buffers in @iov. */
static void nvt_vscsi_req(struct nvt_vhost_vq *vq, uint16_t head, const struct iovec *iov,
			  unsigned int nr_out, unsigned int nr_in)
{
	struct nvt_vhost_ctrl *c = vq->conn->ctrl;
	struct nvt_vhost_req *r = &vq->reqs[head];
	struct nvt_scsi_task *t = &r->task;
	bool pi = atomic_load_explicit(&vq->conn->pi, memory_order_relaxed);
	size_t hdr = pi ? sizeof(struct nvt_vscsi_cmd_req_pi) : sizeof(struct nvt_vscsi_cmd_req);
	size_t resp = sizeof(struct nvt_vscsi_cmd_resp);
	struct nvt_vscsi_parsed p;
	uint64_t seq;
	int id;

	if (r->busy) {
		/* The driver made a head available twice: the ring is beyond repair until reset. */
		nvt_warn("%s: queue %u: descriptor %u made available while in flight; queue stopped",
			 c->dev.name, vq->idx, head);
		nvt_vring_break(&vq->vr);
		return;
	}
	if (nvt_vscsi_parse(iov, nr_out, nr_in, pi, &p)) {
		nvt_warn_ratelimited("%s: queue %u: malformed request (%u readable, %u writable buffers)",
				     c->dev.name, vq->idx, nr_out, nr_in);
		nvt_vscsi_respond(vq, head, iov + nr_out, nr_in, NVT_VSCSI_S_FAILURE);
		return;
	}
	id = nvt_vscsi_lun_decode(p.lun);
	if (id < 0) {
		nvt_vscsi_respond(vq, head, iov + nr_out, nr_in, NVT_VSCSI_S_BAD_TARGET);
		return;
	}
	memcpy(r->raw, iov, (nr_out + nr_in) * sizeof(*iov));
	r->nr_out = nr_out;
	r->nr_in = nr_in;
	t->dev = &c->dev;
	/* A LUN removed live reads NULL: answered as any unknown LUN (ILLEGAL REQUEST, 25h/00h). */
	r->lun_reader = nvt_vscsi_lun_enter(vq->pg);
	t->lun = atomic_load(&c->by_id[id]);
	t->queue = &vq->sq;
	memcpy(t->cdb, p.cdb, sizeof(t->cdb));
	t->to_dev = p.data_out || p.pi_out;
	if (t->to_dev) {
		t->data_cnt = nvt_iov_slice(r->raw, nr_out, hdr + p.pi_out, p.data_out, r->data,
					    NVT_VHOST_SEGS);
		t->data_len = (uint32_t)p.data_out;
		t->pi_cnt = nvt_iov_slice(r->raw, nr_out, hdr, p.pi_out, r->pi, NVT_VHOST_PI_SEGS);
		t->pi_len = p.pi_out;
	} else {
		t->data_cnt = nvt_iov_slice(r->raw + nr_out, nr_in, resp + p.pi_in, p.data_in,
					    r->data, NVT_VHOST_SEGS);
		t->data_len = (uint32_t)p.data_in;
		t->pi_cnt = nvt_iov_slice(r->raw + nr_out, nr_in, resp, p.pi_in, r->pi,
					  NVT_VHOST_PI_SEGS);
		t->pi_len = p.pi_in;
	}
	if (nvt_iov_len(r->pi, t->pi_cnt) != t->pi_len) {
		nvt_warn_ratelimited("%s: queue %u: PI buffer in more than %u pieces",
				     c->dev.name, vq->idx, NVT_VHOST_PI_SEGS);
		nvt_vscsi_lun_leave(r->lun_reader);
		nvt_vscsi_respond(vq, head, iov + nr_out, nr_in, NVT_VSCSI_S_FAILURE);
		return;
	}
	t->data_iov = r->data;
	t->pi_iov = t->pi_len ? r->pi : NULL;
	t->done = nvt_vscsi_task_done;
	t->status = NVT_SCSI_GOOD;
	t->sense_len = 0;
	t->resid = 0;
	r->in_written = (uint32_t)(resp + p.pi_in + p.data_in);
	r->busy = true;
	vq->inflight++;
	seq = atomic_load_explicit(&vq->popped, memory_order_relaxed) + 1;
	/* The slot's number first: a TMF that sees @popped at @seq also sees the slot busy. */
	atomic_store_explicit(&r->seq, seq, memory_order_relaxed);
	atomic_store_explicit(&vq->popped, seq, memory_order_release);
	nvt_scsi_exec(t);	/* may complete before it returns */
}

/*
 * Has every request popped before @tmf arrived completed? By slot, not by
 * count: a later request that completes first must not stand in for an
 * older one still in flight.
 */
static bool nvt_vscsi_tmf_ready(const struct nvt_vhost_conn *conn, const struct nvt_vhost_ctl_req *tmf)
{
	for (unsigned int i = 0; i < NVT_VHOST_MAX_REQ_QUEUES; i++) {
		const struct nvt_vhost_vq *q = conn->vqs[NVT_VSCSI_REQ_VQ0 + i];

		if (!q || !q->reqs || !tmf->wait_for[i])
			continue;
		for (unsigned int s = 0; s < q->nr_slots; s++) {
			/* Acquire: pairs with the completion's release of the slot. */
			uint64_t seq = atomic_load_explicit(&q->reqs[s].seq, memory_order_acquire);

			if (seq && seq <= tmf->wait_for[i])
				return false;
		}
	}
	return true;
}

static void nvt_vscsi_tmf_answer(struct nvt_vhost_vq *vq, struct nvt_vhost_ctl_req *tmf, uint8_t response)
{
	nvt_iov_copy(tmf->raw + tmf->nr_out, tmf->nr_in, 0, &response, 1, true);
	tmf->busy = false;
	nvt_vscsi_push(vq, tmf->head, 1);
}

/* Re-check the held TMFs every millisecond while there are any (0: stop). */
static void nvt_vscsi_tmf_timer_set(struct nvt_vhost_vq *vq, bool on)
{
	struct itimerspec its = { .it_interval = { 0, on ? 1000000 : 0 }, .it_value = { 0, on ? 1000000 : 0 } };

	timerfd_settime(vq->tmf_timer.fd, 0, &its, NULL);
}

/*
 * The control queue's timer: answers the held TMFs whose tasks are done.
 * The namespace layer cannot cancel a bio, so aborting a task or
 * resetting a LUN means letting what is in flight finish; the guest waits
 * for the answer without a timeout, so one is always sent. A timer on the
 * main loop rather than a signal from every completion: TMFs are rare,
 * and the I/O path stays free of shared stores.
 */
static void nvt_vscsi_tmf_tick(struct nvt_pg_watch *w)
{
	struct nvt_vhost_vq *vq = container_of(w, struct nvt_vhost_vq, tmf_timer);
	struct nvt_vhost_ctl_req **pp = &vq->tmf_wait;
	bool any = false;
	uint64_t n;

	if (read(w->fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a stale event of this batch */
	}

	while (*pp) {
		struct nvt_vhost_ctl_req *tmf = *pp;

		if (!nvt_vscsi_tmf_ready(vq->conn, tmf)) {
			pp = &tmf->next;
			continue;
		}
		*pp = tmf->next;
		vq->in_batch = true;
		nvt_vscsi_tmf_answer(vq, tmf, NVT_VSCSI_S_FUNCTION_COMPLETE);
		vq->in_batch = false;
		any = true;
		nvt_vscsi_put(vq);
	}
	if (any)
		nvt_vring_notify(&vq->vr);
	if (!vq->tmf_wait)
		nvt_vscsi_tmf_timer_set(vq, false);
}

/* A popped control-queue request. */
static void nvt_vscsi_ctl(struct nvt_vhost_vq *vq, uint16_t head, const struct iovec *iov,
			  unsigned int nr_out, unsigned int nr_in)
{
	struct nvt_vhost_ctl_req *cr = &vq->ctl[head];
	struct nvt_vscsi_ctrl_tmf_req tmf;
	struct nvt_vscsi_ctrl_an_req an;
	uint32_t type;

	if (cr->busy || nr_out + nr_in > NVT_ARRAY_SIZE(cr->raw)) {
		if (cr->busy) {
			nvt_warn("%s: control queue: descriptor %u made available while in flight",
				 vq->conn->ctrl->dev.name, head);
			nvt_vring_break(&vq->vr);
		} else {
			nvt_vscsi_push(vq, head, 0);
		}
		return;
	}
	memcpy(cr->raw, iov, (nr_out + nr_in) * sizeof(*iov));
	cr->nr_out = nr_out;
	cr->nr_in = nr_in;
	cr->head = head;
	if (nvt_iov_copy(iov, nr_out, 0, &type, sizeof(type), false) != sizeof(type))
		goto out_bad;
	switch (le32toh(type)) {
	case NVT_VSCSI_T_TMF:
		if (nvt_iov_copy(iov, nr_out, 0, &tmf, sizeof(tmf), false) != sizeof(tmf) ||
		    nvt_iov_len(iov + nr_out, nr_in) < 1)
			goto out_bad;
		if (nvt_vscsi_lun_decode(tmf.lun) < 0) {
			nvt_vscsi_tmf_answer(vq, cr, NVT_VSCSI_S_BAD_TARGET);
			return;
		}
		switch (le32toh(tmf.subtype)) {
		case NVT_VSCSI_T_TMF_ABORT_TASK:
		case NVT_VSCSI_T_TMF_ABORT_TASK_SET:
		case NVT_VSCSI_T_TMF_CLEAR_TASK_SET:
		case NVT_VSCSI_T_TMF_I_T_NEXUS_RESET:
		case NVT_VSCSI_T_TMF_LOGICAL_UNIT_RESET:
			break;
		case NVT_VSCSI_T_TMF_QUERY_TASK:
		case NVT_VSCSI_T_TMF_QUERY_TASK_SET:
			nvt_vscsi_tmf_answer(vq, cr, NVT_VSCSI_S_FUNCTION_COMPLETE);
			return;
		default:
			nvt_vscsi_tmf_answer(vq, cr, NVT_VSCSI_S_FUNCTION_REJECTED);
			return;
		}
		for (unsigned int i = 0; i < NVT_VHOST_MAX_REQ_QUEUES; i++) {
			const struct nvt_vhost_vq *q = vq->conn->vqs[NVT_VSCSI_REQ_VQ0 + i];

			cr->wait_for[i] = q ? atomic_load_explicit(&q->popped, memory_order_acquire) : 0;
		}
		if (nvt_vscsi_tmf_ready(vq->conn, cr)) {
			nvt_vscsi_tmf_answer(vq, cr, NVT_VSCSI_S_FUNCTION_COMPLETE);
			return;
		}
		cr->busy = true;
		cr->next = vq->tmf_wait;
		if (!vq->tmf_wait)
			nvt_vscsi_tmf_timer_set(vq, true);
		vq->tmf_wait = cr;
		vq->inflight++;
		return;
	case NVT_VSCSI_T_AN_QUERY:
	case NVT_VSCSI_T_AN_SUBSCRIBE: {
		struct nvt_vscsi_ctrl_an_resp ar = { .event_actual = 0, .response = NVT_VSCSI_S_OK };

		if (nvt_iov_copy(iov, nr_out, 0, &an, sizeof(an), false) != sizeof(an) ||
		    nvt_iov_len(iov + nr_out, nr_in) < sizeof(ar))
			goto out_bad;
		/* No asynchronous notification is supported: none requested is granted. */
		nvt_iov_copy(iov + nr_out, nr_in, 0, &ar, sizeof(ar), true);
		nvt_vscsi_push(vq, head, sizeof(ar));
		return;
	}
	default:
		break;
	}
out_bad:
	nvt_warn_ratelimited("%s: control queue: malformed request", vq->conn->ctrl->dev.name);
	nvt_vscsi_push(vq, head, 0);
}

/*
 * Write one event into the next buffer the driver posted on the event
 * queue. Return: false if there was none (or it was unusable: pushed back
 * empty), and the event is lost.
 */
static bool nvt_vscsi_event_put(struct nvt_vhost_vq *vq, uint32_t event, int lun, uint32_t reason)
{
	struct nvt_vscsi_event ev = { .event = htole32(event), .reason = htole32(reason) };
	struct iovec iov[8];
	unsigned int nr_out, nr_in;
	uint16_t head;
	int ret = nvt_vring_pop(&vq->vr, &head, iov, NVT_ARRAY_SIZE(iov), &nr_out, &nr_in);

	if (ret == NVT_VRING_EMPTY || ret == -EIO)
		return false;
	if (ret < 0 || nvt_iov_len(iov + nr_out, nr_in) < sizeof(ev)) {
		nvt_warn_ratelimited("%s: event queue: unusable buffer at %u", vq->conn->ctrl->dev.name,
				     head);
		nvt_vring_push(&vq->vr, head, 0);
		return false;
	}
	if (lun >= 0) {
		/*
		 * As REPORT LUNS lists it (peripheral below 256, flat above), not
		 * as requests address it: Linux 6.1's virtscsi_handle_transport_reset()
		 * takes (lun[2] << 8) | lun[3] unmasked, so a flat 0x40 below 256
		 * would make it scan LUN 16384 + n.
		 */
		ev.lun[0] = 1;
		if (lun >= 256)
			ev.lun[2] = (uint8_t)(0x40 | lun >> 8);
		ev.lun[3] = (uint8_t)lun;
	}
	nvt_iov_copy(iov + nr_out, nr_in, 0, &ev, sizeof(ev), true);
	nvt_vring_push(&vq->vr, head, sizeof(ev));
	return true;
}

void nvt_vscsi_event_flush(struct nvt_vhost_ctrl *c)
{
	struct nvt_vhost_lun_event ev[NVT_VHOST_EVENTS_MAX];
	struct nvt_vhost_conn *conn = c->conn;
	struct nvt_vhost_vq *vq = conn ? conn->vqs[NVT_VSCSI_EVENT_VQ] : NULL;
	unsigned int n;
	bool sent = false, overflow;

	pthread_mutex_lock(&c->ev_lock);
	n = c->nr_ev;
	memcpy(ev, c->ev, n * sizeof(ev[0]));
	overflow = c->ev_overflow;
	c->nr_ev = 0;
	c->ev_overflow = false;
	pthread_mutex_unlock(&c->ev_lock);
	/*
	 * No connection, or one that has not started its event queue: the
	 * guest scans the bus when its driver comes up and finds the LUNs
	 * as they are then. Without HOTPLUG the driver posts no buffers and
	 * sees changes only when it rescans.
	 */
	if (!conn || !(conn->features & NVT_VIRTIO_SCSI_F_HOTPLUG) || !vq || !vq->running ||
	    vq->vr.broken || !atomic_load_explicit(&vq->enabled, memory_order_relaxed))
		return;
	if (overflow)
		conn->events_missed = true;
	for (unsigned int i = 0; i < n; i++) {
		uint32_t flag = conn->events_missed ? NVT_VSCSI_T_EVENTS_MISSED : 0;

		if (!nvt_vscsi_event_put(vq, NVT_VSCSI_T_TRANSPORT_RESET | flag, ev[i].lun,
					 ev[i].reason)) {
			/* virtio 1.1 5.6.6: no buffer, so the next event says some were missed. */
			conn->events_missed = true;
			continue;
		}
		conn->events_missed = false;
		sent = true;
	}
	/* Missed ones and no event left to carry the flag: on its own, in the next buffer. */
	if (conn->events_missed &&
	    nvt_vscsi_event_put(vq, NVT_VSCSI_T_NO_EVENT | NVT_VSCSI_T_EVENTS_MISSED, -1, 0)) {
		conn->events_missed = false;
		sent = true;
	}
	if (sent)
		nvt_vring_notify(&vq->vr);
}

/* Is the slot of @head in flight (a request, or a TMF held)? */
static bool nvt_vscsi_head_busy(const struct nvt_vhost_vq *vq, uint16_t head)
{
	if (head >= vq->nr_slots)
		return false;
	return vq->idx == NVT_VSCSI_CTL_VQ ? vq->ctl[head].busy : vq->reqs[head].busy;
}

/*
 * Pop and serve what the driver made available, one interrupt for the
 * batch. At most a ring's worth per call: a guest that refills as fast as
 * we serve would otherwise hold the poll group (its other queues, or the
 * main loop for the control queue) forever. What is left is picked up
 * after the thread's other events, by kicking ourselves.
 */
static void nvt_vscsi_process(struct nvt_vhost_vq *vq)
{
	struct iovec iov[NVT_VHOST_SEGS];
	unsigned int budget = vq->vr.num;

	if (!vq->running || !atomic_load_explicit(&vq->enabled, memory_order_relaxed))
		return;
	if (vq->idx == NVT_VSCSI_EVENT_VQ) {
		/* Buffers stay held for events; a new one may carry a missed-events flag. */
		nvt_vscsi_event_flush(vq->conn->ctrl);
		return;
	}
	vq->in_batch = true;
	/* The driver's kicks would only wake us again for what this loop pops anyway. */
	nvt_vring_kicks_off(&vq->vr);
	for (;;) {
		unsigned int nr_out, nr_in;
		uint16_t head;
		int ret;

		if (!budget--) {
			uint64_t one = 1;

			/* Kicks stay off: this kick of our own brings us back after the thread's other events. */
			if (write(vq->kick_watch.fd, &one, sizeof(one)) < 0) {
				/* EAGAIN (non-blocking eventfd): a kick is pending anyway. */
			}
			break;
		}
		ret = nvt_vring_pop(&vq->vr, &head, iov, NVT_VHOST_SEGS, &nr_out, &nr_in);
		if (ret == NVT_VRING_EMPTY) {
			if (!nvt_vring_kicks_on(&vq->vr))
				break;
			nvt_vring_kicks_off(&vq->vr);
			continue;
		}
		if (ret == -EIO) {
			nvt_warn_ratelimited("%s: queue %u: available ring corrupt; queue stopped until reset",
					     vq->conn->ctrl->dev.name, vq->idx);
			break;
		}
		if (ret < 0) {
			nvt_warn_ratelimited("%s: queue %u: bad descriptor chain at %u: %s",
					     vq->conn->ctrl->dev.name, vq->idx, head, strerror(-ret));
			/* A head still in flight must not be pushed twice: that is a broken ring. */
			if (nvt_vscsi_head_busy(vq, head)) {
				nvt_vring_break(&vq->vr);
				break;
			}
			nvt_vscsi_push(vq, head, 0);
			continue;
		}
		if (vq->idx == NVT_VSCSI_CTL_VQ)
			nvt_vscsi_ctl(vq, head, iov, nr_out, nr_in);
		else
			nvt_vscsi_req(vq, head, iov, nr_out, nr_in);
		if (vq->vr.broken)
			break;
	}
	vq->in_batch = false;
	if (vq->need_notify) {
		vq->need_notify = false;
		nvt_vring_notify(&vq->vr);
	}
}

static void nvt_vscsi_kick(struct nvt_pg_watch *w)
{
	struct nvt_vhost_vq *vq = container_of(w, struct nvt_vhost_vq, kick_watch);
	uint64_t n;

	if (read(w->fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another kick was already consumed; pop anyway. */
	}
	nvt_vscsi_process(vq);
}

static void nvt_vscsi_start_fn(struct nvt_pg_msg *m)
{
	struct nvt_vhost_vq *vq = container_of(m, struct nvt_vhost_vq, start_msg);

	atomic_store(&vq->start_queued, false);
	if (!vq->running) {
		vq->kick_watch.fd = vq->kick_fd;
		vq->kick_watch.fn = nvt_vscsi_kick;
		if (nvt_poll_group_add(vq->pg, &vq->kick_watch)) {
			nvt_err("%s: queue %u: cannot watch its kick fd", vq->conn->ctrl->dev.name,
				vq->idx);
			return;
		}
		vq->running = true;
	}
	nvt_vscsi_process(vq);
}

static void nvt_vscsi_stop_fn(struct nvt_pg_msg *m)
{
	struct nvt_vhost_vq *vq = container_of(m, struct nvt_vhost_vq, stop_msg);

	if (vq->running) {
		nvt_poll_group_del(vq->pg, &vq->kick_watch);
		vq->running = false;
	}
	if (vq->inflight) {
		vq->stopping = true;	/* the last completion reports */
		return;
	}
	nvt_poll_group_defer(vq->pg, &vq->drained_d);
}

int nvt_vscsi_vq_prepare(struct nvt_vhost_vq *vq)
{
	vq->start_msg.fn = nvt_vscsi_start_fn;
	vq->stop_msg.fn = nvt_vscsi_stop_fn;
	vq->drained_msg.fn = nvt_vhost_vq_drained;
	vq->drained_d.fn = nvt_vscsi_drained_fn;
	if (vq->idx == NVT_VSCSI_CTL_VQ) {
		if (vq->nr_slots != vq->num) {
			free(vq->ctl);
			vq->nr_slots = 0;
			vq->ctl = calloc(vq->num, sizeof(*vq->ctl));
			if (!vq->ctl)
				return -ENOMEM;
			vq->nr_slots = vq->num;
		}
		if (!vq->tmf_timer_on) {
			vq->tmf_timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
			vq->tmf_timer.fn = nvt_vscsi_tmf_tick;
			if (vq->tmf_timer.fd < 0)
				return -errno;
			if (nvt_poll_group_add(vq->pg, &vq->tmf_timer)) {
				close(vq->tmf_timer.fd);
				return -ENOMEM;
			}
			vq->tmf_timer_on = true;
		}
		return 0;
	}
	if (vq->idx == NVT_VSCSI_EVENT_VQ)
		return 0;
	if (!vq->sq_init) {
		int ret = nvt_scsi_queue_init(&vq->sq, vq->pg);

		if (ret)
			return ret;
		vq->sq_init = true;
	}
	if (vq->nr_slots != vq->num) {
		free(vq->reqs);
		vq->nr_slots = 0;
		vq->reqs = calloc(vq->num, sizeof(*vq->reqs));
		if (!vq->reqs)
			return -ENOMEM;
		for (unsigned int i = 0; i < vq->num; i++) {
			vq->reqs[i].vq = vq;
			vq->reqs[i].head = (uint16_t)i;
		}
		vq->nr_slots = vq->num;
	}
	return 0;
}

void nvt_vscsi_vq_free(struct nvt_vhost_vq *vq)
{
	if (vq->tmf_timer_on) {
		nvt_poll_group_del(vq->pg, &vq->tmf_timer);
		close(vq->tmf_timer.fd);
		vq->tmf_timer_on = false;
	}
	if (vq->sq_init) {
		nvt_scsi_queue_fini(&vq->sq);
		vq->sq_init = false;
	}
	free(vq->reqs);
	free(vq->ctl);
	vq->reqs = NULL;
	vq->ctl = NULL;
	vq->nr_slots = 0;
}

void nvt_vscsi_vq_start(struct nvt_vhost_vq *vq)
{
	/* One start message in flight at a time; it reads the state when it runs. */
	if (!atomic_exchange(&vq->start_queued, true))
		nvt_poll_group_send(vq->pg, &vq->start_msg);
}

void nvt_vscsi_vq_stop(struct nvt_vhost_vq *vq)
{
	nvt_poll_group_send(vq->pg, &vq->stop_msg);
}
