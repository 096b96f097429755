/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user-scsi front end to end, in process: the test plays QEMU 7.2 (memfd guest memory, its own split rings, the real socket) against the real SCSI layer on RAM namespaces. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvt/backend.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/target.h"
#include "nvt/util.h"
#include "nvt/vhost.h"
#include "nvt/host.h"
#include "nvt_test_loop.h"
#include "../nvt_alloc_count.h"
#include "../../transport/vhost/vhost_int.h"

/*
 * ---- LUN 0's namespace, made slow on demand (as slow_e2e_test.c) ----
 * With slow.delay_ms 0 every bio goes straight to the ram store; otherwise
 * it is held that long on its channel's timer, so a request is really in
 * flight while the test sends QEMU's next messages.
 */
#define SLOW_MAX	64

struct slow_chan {
	int tfd;
	struct nvt_poll_group *pg;
	struct nvt_pg_watch watch;
	struct nvt_bio *q[SLOW_MAX];	/* FIFO: one delay for all */
	uint64_t due[SLOW_MAX];
	unsigned int head, n;
};

static struct {
	_Atomic unsigned int delay_ms;
	_Atomic uint64_t submitted, completed;
} slow;

static void slow_arm(struct slow_chan *c)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (c->n) {
		its.it_value.tv_sec = (time_t)(c->due[c->head] / 1000000000ull);
		its.it_value.tv_nsec = (long)(c->due[c->head] % 1000000000ull);
	}
	assert_int_equal(timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL), 0);
}

static void slow_fire(struct nvt_pg_watch *w)
{
	struct slow_chan *c = container_of(w, struct slow_chan, watch);
	uint64_t ticks;

	if (read(c->tfd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN: a stale event */
	}
	while (c->n && c->due[c->head] <= nvt_now_ns()) {
		struct nvt_bio *bio = c->q[c->head];

		c->head = (c->head + 1) % SLOW_MAX;
		c->n--;
		slow.completed++;
		nvt_ram_backend_ops.submit(bio, NULL);
	}
	slow_arm(c);
}

static void slow_submit(struct nvt_bio *bio, void *chan)
{
	struct slow_chan *c = chan;
	unsigned int delay = slow.delay_ms;

	slow.submitted++;
	if (!delay) {
		slow.completed++;
		nvt_ram_backend_ops.submit(bio, NULL);
		return;
	}
	assert_true(c->n < SLOW_MAX);
	c->q[(c->head + c->n) % SLOW_MAX] = bio;
	c->due[(c->head + c->n) % SLOW_MAX] = nvt_now_ns() + delay * 1000000ull;
	if (c->n++ == 0)
		slow_arm(c);
}

static int slow_chan_create(struct nvt_ns *ns, struct nvt_poll_group *pg, void **chan)
{
	struct slow_chan *c = calloc(1, sizeof(*c));

	(void)ns;
	assert_non_null(c);
	c->pg = pg;
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	assert_true(c->tfd >= 0);
	c->watch = (struct nvt_pg_watch){ .fd = c->tfd, .fn = slow_fire };
	assert_int_equal(nvt_poll_group_add(pg, &c->watch), 0);
	*chan = c;
	return 0;
}

static void slow_chan_destroy(struct nvt_ns *ns, void *chan)
{
	struct slow_chan *c = chan;

	(void)ns;
	assert_int_equal(c->n, 0);
	nvt_poll_group_del(c->pg, &c->watch);
	close(c->tfd);
	free(c);
}

static void slow_close(struct nvt_ns *ns)
{
	nvt_ram_backend_ops.close(ns);
}

static const struct nvt_backend_ops slow_ops = {
	.name = "slow",
	.flags = NVT_BE_METADATA | NVT_BE_VOLATILE | NVT_BE_WRITE_ZEROES | NVT_BE_DEALLOCATE |
		 NVT_BE_COPY,
	.close = slow_close,
	.chan_create = slow_chan_create,
	.chan_destroy = slow_chan_destroy,
	.submit = slow_submit,
};

/* ---- the QEMU side ---- */

/*
 * Guest RAM as QEMU hands it over: one memfd, two regions split at a
 * hole (gpa 0 .. 2 MiB at file offset 0, gpa 4 GiB .. +2 MiB at offset
 * 2 MiB). QEMU's user address of a byte is where this test mapped it.
 */
#define G_SIZE		(4u << 20)
#define G_HALF		(2u << 20)
#define G_HIGH		0x100000000ull
#define NUM		16
#define NVQS		4	/* control, event, 2 request queues */
#define WAIT_MS		5000

struct gvq {
	bool active;
	uint64_t ring_gpa;		/* descriptors; avail at +0x400, used at +0x800 */
	struct nvt_vring_desc *desc;
	struct nvt_vring_avail *avail;
	struct nvt_vring_used *used;
	uint16_t last_used;
	int kick, call;
};

struct guest {
	int memfd;
	uint8_t *mem;
	int sock;
	struct gvq vq[NVQS];
	uint64_t next_buf;		/* bump allocator for buffers, gpa */
	uint64_t buf_lo, buf_hi;	/* its area; 0: the whole high region */
};

struct fix {
	struct nvt_target *tgt;
	struct nvt_vhost_ctrl *ctrl;
	char path[108];
	struct guest g;
};

static void *gpa(struct guest *g, uint64_t a)
{
	if (a >= G_HIGH)
		return g->mem + G_HALF + (a - G_HIGH);
	return g->mem + a;
}

static uint64_t uva(struct guest *g, uint64_t a)
{
	return (uint64_t)(uintptr_t)gpa(g, a);
}

/* Buffers live in the high region, from 4 GiB up; wraps around (requests are short-lived). */
static uint64_t galloc(struct guest *g, uint32_t len)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;	/* a driver thread per queue */
	uint64_t a;

	pthread_mutex_lock(&lock);
	if (g->next_buf + len > (g->buf_hi ? g->buf_hi : G_HIGH + G_HALF))
		g->next_buf = g->buf_lo ? g->buf_lo : G_HIGH;
	a = g->next_buf;
	g->next_buf += (len + 63) & ~63u;
	pthread_mutex_unlock(&lock);
	return a;
}

static void send_msg(struct guest *g, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		     const int *fds, unsigned int nr_fds)
{
	struct { uint32_t req, flags, size; uint8_t p[NVT_VHOST_MSG_MAX]; } __attribute__((packed)) m;
	char cbuf[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { &m, 12 + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	m.req = req;
	m.flags = 1 | flags;
	m.size = size;
	if (size)
		memcpy(m.p, payload, size);
	if (nr_fds) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nr_fds);
	}
	assert_int_equal(sendmsg(g->sock, &mh, MSG_NOSIGNAL), (ssize_t)(12 + size));
}

/* A reply to @req: flags exactly 0x5, as QEMU insists. Return: its payload size. */
static uint32_t recv_reply(struct guest *g, uint32_t req, void *payload, uint32_t max)
{
	uint32_t h[3];
	struct pollfd p = { g->sock, POLLIN, 0 };

	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(recv(g->sock, h, 12, MSG_WAITALL), 12);
	assert_int_equal(h[0], req);
	assert_int_equal(h[1], 0x5);
	assert_true(h[2] <= max);
	if (h[2])
		assert_int_equal(recv(g->sock, payload, h[2], MSG_WAITALL), (ssize_t)h[2]);
	return h[2];
}

static uint64_t get_u64(struct guest *g, uint32_t req)
{
	uint64_t v = 0;

	send_msg(g, req, 0, NULL, 0, NULL, 0);
	assert_int_equal(recv_reply(g, req, &v, 8), 8);
	return v;
}

static void set_u64(struct guest *g, uint32_t req, uint64_t v)
{
	send_msg(g, req, 0, &v, 8, NULL, 0);
}

static void set_state(struct guest *g, uint32_t req, uint32_t idx, uint32_t num)
{
	uint32_t st[2] = { idx, num };

	send_msg(g, req, 0, st, 8, NULL, 0);
}

static void set_vring_fd(struct guest *g, uint32_t req, unsigned int idx, int fd)
{
	uint64_t v = idx;

	send_msg(g, req, 0, &v, 8, &fd, 1);
}

static void guest_connect(struct fix *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strcpy(sa.sun_path, f->path);
	f->g.sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->g.sock >= 0);
	assert_int_equal(connect(f->g.sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/*
 * Connect and send GET_FEATURES, once: QEMU 7.2 does not retry, so the
 * server must take a new connection at once, even while the previous one
 * still drains. Return: the features.
 */
static uint64_t guest_connect_first(struct fix *f)
{
	guest_connect(f);
	return get_u64(&f->g, NVT_VHOST_GET_FEATURES);
}

/* A. realize: what QEMU sends when the device is created, before the guest runs. */
static void guest_realize(struct fix *f)
{
	struct guest *g = &f->g;
	uint64_t feat, pf;

	feat = guest_connect_first(f);
	assert_true(feat & NVT_VHOST_F_PROTOCOL_FEATURES);
	assert_true(feat & NVT_VIRTIO_F_INDIRECT_DESC);
	assert_true(feat & NVT_VIRTIO_F_EVENT_IDX);
	pf = get_u64(g, NVT_VHOST_GET_PROTOCOL_FEATURES);
	assert_true(pf & NVT_VHOST_PF_MQ);
	assert_true(pf & NVT_VHOST_PF_REPLY_ACK);
	set_u64(g, NVT_VHOST_SET_PROTOCOL_FEATURES, pf & (NVT_VHOST_PF_MQ | NVT_VHOST_PF_REPLY_ACK));
	assert_true(get_u64(g, NVT_VHOST_GET_QUEUE_NUM) >= NVQS);
	send_msg(g, NVT_VHOST_SET_OWNER, 0, NULL, 0, NULL, 0);
	assert_int_equal(get_u64(g, NVT_VHOST_GET_FEATURES), feat);
	for (unsigned int i = 0; i < NVQS; i++) {
		int masked = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		set_vring_fd(g, NVT_VHOST_SET_VRING_CALL, i, masked);
		set_vring_fd(g, NVT_VHOST_SET_VRING_ERR, i, masked);
		close(masked);
	}
}

static void set_mem_table(struct guest *g)
{
	struct {
		uint32_t n, pad;
		struct nvt_vhost_mem_region_wire r[2];
	} mt = { 2, 0, {
		{ 0, G_HALF, uva(g, 0), 0 },
		{ G_HIGH, G_HALF, uva(g, G_HIGH), G_HALF },
	} };
	int fds[2] = { g->memfd, g->memfd };
	uint64_t ack = 1;

	send_msg(g, NVT_VHOST_SET_MEM_TABLE, NVT_VHOST_FLAG_NEED_REPLY, &mt, sizeof(mt), fds, 2);
	assert_int_equal(recv_reply(g, NVT_VHOST_SET_MEM_TABLE, &ack, 8), 8);
	assert_int_equal(ack, 0);
}

/*
 * B. start: SET_FEATURES twice, the memory table, then each ring the
 * driver set up (@active), ENABLE for all, the real call fds for all.
 * Rings are fresh (a reset guest), at @ring_base + 0x1000 * i, low region.
 */
static void guest_start(struct fix *f, uint64_t features, unsigned int active, uint64_t ring_base)
{
	struct guest *g = &f->g;

	set_u64(g, NVT_VHOST_SET_FEATURES, features);
	set_u64(g, NVT_VHOST_SET_FEATURES, features);
	set_mem_table(g);
	for (unsigned int i = 0; i < NVQS; i++) {
		struct gvq *q = &g->vq[i];
		struct nvt_vhost_vring_addr_wire a;

		q->active = active & (1u << i);
		if (!q->active)
			continue;
		q->ring_gpa = ring_base + 0x1000ull * i;
		q->desc = gpa(g, q->ring_gpa);
		q->avail = gpa(g, q->ring_gpa + 0x400);
		q->used = gpa(g, q->ring_gpa + 0x800);
		memset(q->desc, 0, 0x1000);
		q->last_used = 0;
		set_state(g, NVT_VHOST_SET_VRING_NUM, i, NUM);
		set_state(g, NVT_VHOST_SET_VRING_BASE, i, 0);
		a = (struct nvt_vhost_vring_addr_wire){ .index = i, .desc = uva(g, q->ring_gpa),
			.used = uva(g, q->ring_gpa + 0x800), .avail = uva(g, q->ring_gpa + 0x400) };
		send_msg(g, NVT_VHOST_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
		q->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		set_vring_fd(g, NVT_VHOST_SET_VRING_KICK, i, q->kick);
	}
	for (unsigned int i = 0; i < NVQS; i++)
		set_state(g, NVT_VHOST_SET_VRING_ENABLE, i, 1);
	for (unsigned int i = 0; i < NVQS; i++) {
		g->vq[i].call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		set_vring_fd(g, NVT_VHOST_SET_VRING_CALL, i, g->vq[i].call);
	}
}

/* A ring was broken on purpose: its base is not its avail index. */
static bool stop_lenient;

/* D. stop: ENABLE 0 for all, GET_VRING_BASE for each started ring. */
static void guest_stop(struct fix *f)
{
	struct guest *g = &f->g;

	for (unsigned int i = 0; i < NVQS; i++)
		set_state(g, NVT_VHOST_SET_VRING_ENABLE, i, 0);
	for (unsigned int i = 0; i < NVQS; i++) {
		struct gvq *q = &g->vq[i];
		uint32_t st[2] = { 0, 0 };

		if (!q->active)
			continue;
		set_state(g, NVT_VHOST_GET_VRING_BASE, i, 0);
		assert_int_equal(recv_reply(g, NVT_VHOST_GET_VRING_BASE, st, 8), 8);
		assert_int_equal(st[0], i);
		/* Every request made available was popped and completed. */
		if (!stop_lenient) {
			assert_int_equal((uint16_t)st[1], q->avail->idx);
			assert_int_equal(q->used->idx, q->avail->idx);
		}
		assert_int_equal((uint16_t)st[1], q->used->idx);
		close(q->kick);
		q->active = false;
	}
	for (unsigned int i = 0; i < NVQS; i++) {
		if (g->vq[i].call >= 0)
			close(g->vq[i].call);
		g->vq[i].call = -1;
	}
}

static void guest_close(struct fix *f)
{
	struct guest *g = &f->g;

	for (unsigned int i = 0; i < NVQS; i++) {
		if (g->vq[i].active)
			close(g->vq[i].kick);
		if (g->vq[i].call >= 0)
			close(g->vq[i].call);
		g->vq[i].active = false;
		g->vq[i].call = -1;
	}
	close(g->sock);
	g->sock = -1;
}

static void make_avail(struct gvq *q, uint16_t head)
{
	uint64_t one = 1;

	q->avail->ring[q->avail->idx % NUM] = head;
	__atomic_store_n(&q->avail->idx, (uint16_t)(q->avail->idx + 1), __ATOMIC_RELEASE);
	assert_int_equal(write(q->kick, &one, 8), 8);
}

/* Wait for the next used element of @q. Return: false on timeout. */
static bool wait_used(struct gvq *q, struct nvt_vring_used_elem *e)
{
	for (int waited = 0; waited < WAIT_MS; waited += 10) {
		if (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used) {
			*e = q->used->ring[q->last_used % NUM];
			q->last_used++;
			return true;
		}
		struct pollfd p = { q->call, POLLIN, 0 };
		uint64_t n;

		if (poll(&p, 1, 10) == 1 && read(q->call, &n, 8) < 0) {
			/* someone else drained it */
		}
	}
	return false;
}

/* One SCSI command as Linux's virtio_scsi builds it. */
struct cmd {
	uint8_t target;
	uint16_t lun;
	uint8_t cdb[32];
	const void *out;	/* data-out */
	uint32_t out_len;
	uint32_t in_len;	/* data-in */
	bool pi_hdr;		/* virtio_scsi_cmd_req_pi (T10_PI negotiated) */
	bool indirect;
	/* Results. */
	struct nvt_vscsi_cmd_resp resp;
	uint8_t *in;		/* the data-in buffer, in guest memory */
	uint64_t resp_gpa;
	uint32_t used_len;
};

/* Descriptors 0..3 of an idle ring, or an indirect table; returns the head. */
static uint16_t build(struct guest *g, struct gvq *q, struct cmd *c)
{
	struct nvt_vscsi_cmd_req_pi hp = { .lun = { 1, c->target, (uint8_t)(0x40 | (c->lun >> 8)), (uint8_t)c->lun } };
	struct nvt_vscsi_cmd_req h = { .lun = { 1, c->target, (uint8_t)(0x40 | (c->lun >> 8)), (uint8_t)c->lun } };
	uint64_t ha = galloc(g, 64), ra = galloc(g, 108), da = 0, ta;
	struct nvt_vring_desc d[4], *t;
	unsigned int n = 0;

	memcpy(hp.cdb, c->cdb, 32);
	memcpy(h.cdb, c->cdb, 32);
	if (c->pi_hdr)
		memcpy(gpa(g, ha), &hp, sizeof(hp));
	else
		memcpy(gpa(g, ha), &h, sizeof(h));
	d[n++] = (struct nvt_vring_desc){ ha, c->pi_hdr ? 59 : 51, NVT_VRING_DESC_F_NEXT, 0 };
	if (c->out_len) {
		da = galloc(g, c->out_len);
		memcpy(gpa(g, da), c->out, c->out_len);
		d[n++] = (struct nvt_vring_desc){ da, c->out_len, NVT_VRING_DESC_F_NEXT, 0 };
	}
	memset(gpa(g, ra), 0xee, 108);
	d[n++] = (struct nvt_vring_desc){ ra, 108, NVT_VRING_DESC_F_WRITE, 0 };
	if (c->in_len) {
		da = galloc(g, c->in_len);
		memset(gpa(g, da), 0xdd, c->in_len);
		d[n - 1].flags |= NVT_VRING_DESC_F_NEXT;
		d[n++] = (struct nvt_vring_desc){ da, c->in_len, NVT_VRING_DESC_F_WRITE, 0 };
	}
	c->in = c->in_len ? gpa(g, da) : NULL;
	c->resp_gpa = ra;
	for (unsigned int i = 0; i + 1 < n; i++)
		d[i].next = (uint16_t)(i + 1);
	if (!c->indirect) {
		memcpy(q->desc, d, n * sizeof(d[0]));
		return 0;
	}
	ta = galloc(g, sizeof(d));
	t = gpa(g, ta);
	memcpy(t, d, n * sizeof(d[0]));
	q->desc[0] = (struct nvt_vring_desc){ ta, (uint32_t)(n * sizeof(d[0])), NVT_VRING_DESC_F_INDIRECT, 0 };
	return 0;
}

/* Run @c on request queue @qi (2 or 3) and wait for it. Return: false on timeout. */
static bool run(struct fix *f, unsigned int qi, struct cmd *c)
{
	struct gvq *q = &f->g.vq[qi];
	struct nvt_vring_used_elem e;
	uint16_t head = build(&f->g, q, c);

	make_avail(q, head);
	if (!wait_used(q, &e))
		return false;
	assert_int_equal(e.id, head);
	c->used_len = e.len;
	memcpy(&c->resp, gpa(&f->g, c->resp_gpa), sizeof(c->resp));
	return true;
}

static void cdb_rw10(struct cmd *c, uint8_t op, uint32_t lba, uint16_t nlb)
{
	memset(c->cdb, 0, sizeof(c->cdb));
	c->cdb[0] = op;
	c->cdb[2] = (uint8_t)(lba >> 24);
	c->cdb[3] = (uint8_t)(lba >> 16);
	c->cdb[4] = (uint8_t)(lba >> 8);
	c->cdb[5] = (uint8_t)lba;
	c->cdb[7] = (uint8_t)(nlb >> 8);
	c->cdb[8] = (uint8_t)nlb;
}

/* READ(10) of LBA 0 on LUN 0 through request queue 2 (with the PI header): it must succeed. */
static void read_block0_ok(struct fix *f)
{
	struct cmd c;

	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x28, 0, 1);
	c.in_len = 512;
	c.pi_hdr = true;
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
}

/* ---- fixture: the target with two I/O poll groups and a vhost controller ---- */

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct nvt_vhost_lun_cfg luns[2] = {
		{ .lun = 0, .subsystem = TEST_NQN, .nsid = 1, .line = 10 },
		{ .lun = 1, .subsystem = TEST_NQN, .nsid = 3, .line = 11 },
	};
	struct nvt_vhost_cfg cfg = { .luns = luns, .nr_luns = 2, .line = 9 };
	struct nvt_target *tgt;

	nvt_log_set_level(getenv("NVT_TEST_LOG") ? NVT_LOG_DEBUG : NVT_LOG_ERR);
	tgt = f->tgt = nvt_test_target_create();
	assert_non_null(tgt);
	/* Before any channel exists: every channel of nsid 1 is a slow one. */
	{
		struct nvt_ns *ns = nvt_target_find_subsys(tgt, TEST_NQN)->ns[1];

		assert_ptr_equal(ns->be, &nvt_ram_backend_ops);
		ns->be = &slow_ops;
		slow.delay_ms = 0;
	}
	assert_int_equal(nvt_poll_group_create(&tgt->pg), 0);
	assert_int_equal(nvt_target_attach_pg(tgt, tgt->pg), 0);
	assert_int_equal(nvt_target_start_io_pgs(tgt, 2), 0);
	snprintf(f->path, sizeof(f->path), "/tmp/nvt-vhost-test.%d", (int)getpid());
	strcpy(cfg.socket, f->path);
	assert_int_equal(nvt_vhost_ctrl_create(tgt, &cfg, &f->ctrl), 0);
	assert_int_equal(nvt_poll_group_start(tgt->pg, "vhost-main"), 0);

	f->g.memfd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(f->g.memfd, G_SIZE), 0);
	/* QEMU 7.2's memory-backend-memfd seals by default; nvtd refuses a memfd that could shrink. */
	assert_int_equal(fcntl(f->g.memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	f->g.mem = mmap(NULL, G_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->g.memfd, 0);
	assert_true(f->g.mem != MAP_FAILED);
	f->g.next_buf = G_HIGH;
	f->g.sock = -1;
	for (unsigned int i = 0; i < NVQS; i++)
		f->g.vq[i].call = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	struct nvt_target *tgt = f->tgt;

	if (f->g.sock >= 0)
		guest_close(f);
	/* nvt_vhost_ctrl_destroy() drives the main loop itself. */
	nvt_poll_group_stop(tgt->pg);
	nvt_vhost_ctrl_destroy(f->ctrl);
	assert_int_equal(access(f->path, F_OK), -1);
	nvt_target_stop(tgt);
	nvt_target_stop_io_pgs(tgt);
	nvt_target_detach_pg(tgt, tgt->pg);
	nvt_poll_group_destroy(tgt->pg);
	tgt->pg = NULL;
	nvt_target_destroy(tgt);
	munmap(f->g.mem, G_SIZE);
	close(f->g.memfd);
	free(f);
	return 0;
}

#define LINUX_FEATURES	(NVT_VIRTIO_F_VERSION_1 | NVT_VHOST_F_PROTOCOL_FEATURES | NVT_VIRTIO_SCSI_F_T10_PI | \
			 NVT_VIRTIO_F_INDIRECT_DESC | (1ull << 2) /* CHANGE, never offered */)
#define BIOS_FEATURES	(NVT_VIRTIO_F_VERSION_1 | NVT_VHOST_F_PROTOCOL_FEATURES)

static void inquiry(struct cmd *c, uint8_t target, uint16_t lun, bool pi_hdr)
{
	memset(c, 0, sizeof(*c));
	c->target = target;
	c->lun = lun;
	c->cdb[0] = 0x12;
	c->cdb[4] = 96;
	c->in_len = 96;
	c->pi_hdr = pi_hdr;
}

static void test_socket_mode(void **state)
{
	struct fix *f = *state;
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	FILE *out;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* What nvtctl status shows before any guest came. */
	out = open_memstream(&text, &len);
	nvt_vhost_ctrl_status(f->ctrl, out);
	fclose(out);
	assert_non_null(strstr(text, "no guest"));
	assert_non_null(strstr(text, "LUN 0: " TEST_NQN " nsid 1"));
	assert_non_null(strstr(text, "LUN 1: " TEST_NQN " nsid 3"));
	free(text);
}

/* Config errors: a LUN naming no namespace, an owner that does not exist; nothing is left behind. */
static void test_config_errors(void **state)
{
	struct fix *f = *state;
	struct nvt_vhost_lun_cfg lun = { .lun = 0, .subsystem = TEST_NQN, .nsid = 2, .line = 20 };
	struct nvt_vhost_cfg cfg = { .luns = &lun, .nr_luns = 1, .line = 19 };
	struct nvt_vhost_ctrl *c = NULL;

	snprintf(cfg.socket, sizeof(cfg.socket), "/tmp/nvt-vhost-bad.%d", (int)getpid());
	nvt_log_set_level(NVT_LOG_OFF);
	assert_int_equal(nvt_vhost_ctrl_create(f->tgt, &cfg, &c), -ENOENT);
	lun.nsid = 1;
	strcpy(lun.subsystem, "nqn.2026-11.io.nvt:nothere");
	assert_int_equal(nvt_vhost_ctrl_create(f->tgt, &cfg, &c), -ENOENT);
	strcpy(lun.subsystem, TEST_NQN);
	strcpy(cfg.owner, "nvt-no-such-user");
	assert_int_equal(nvt_vhost_ctrl_create(f->tgt, &cfg, &c), -ENOENT);
	nvt_log_set_level(NVT_LOG_ERR);
	assert_null(c);
	assert_int_equal(access(cfg.socket, F_OK), -1);
}

/* Make @c available on request queue @qi with LUN 0 slow, and wait until the backend holds it. */
static void start_slow(struct fix *f, unsigned int qi, struct cmd *c, unsigned int delay_ms)
{
	uint64_t before = slow.submitted;

	slow.delay_ms = delay_ms;
	make_avail(&f->g.vq[qi], build(&f->g, &f->g.vq[qi], c));
	for (int i = 0; i < 500 && slow.submitted == before; i++)
		usleep(2000);
	assert_true(slow.submitted > before);
	assert_true(slow.completed < slow.submitted);	/* really in flight */
}

/* QEMU resends the memory table while the rings run (the guest's RAM map changed): I/O goes on. */
static void test_mem_table_resent(void **state)
{
	struct fix *f = *state;
	uint8_t wbuf[2048];
	struct cmd c;
	uint64_t ack = 1;

	for (unsigned int i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 13);
	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x2a, 7, 4);
	c.out = wbuf;
	c.out_len = sizeof(wbuf);
	c.pi_hdr = true;
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	/*
	 * The table again (every mapping, so the rings, move in nvtd) while a
	 * second write is held by the backend: acknowledged once it is done,
	 * its completion written through the old mapping, the rings then go on.
	 */
	cdb_rw10(&c, 0x2a, 11, 4);
	start_slow(f, 2, &c, 200);
	set_mem_table(&f->g);
	assert_int_equal(slow.completed, slow.submitted);
	assert_int_equal(f->g.vq[2].used->idx, f->g.vq[2].avail->idx);
	{
		struct nvt_vring_used_elem e;

		assert_true(wait_used(&f->g.vq[2], &e));
		assert_int_equal(e.len, 108);
	}
	slow.delay_ms = 0;
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x28, 11, 4);
	c.in_len = sizeof(wbuf);
	c.pi_hdr = true;
	assert_true(run(f, 2, &c));
	assert_memory_equal(c.in, wbuf, sizeof(wbuf));
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x28, 7, 4);
	c.in_len = sizeof(wbuf);
	c.pi_hdr = true;
	assert_true(run(f, 3, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_memory_equal(c.in, wbuf, sizeof(wbuf));
	assert_true(run(f, 2, &c));
	assert_memory_equal(c.in, wbuf, sizeof(wbuf));
	/* Stop, then RESET_DEVICE (offered), acknowledged. */
	guest_stop(f);
	send_msg(&f->g, NVT_VHOST_RESET_DEVICE, NVT_VHOST_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
	assert_int_equal(recv_reply(&f->g, NVT_VHOST_RESET_DEVICE, &ack, 8), 8);
	assert_int_equal(ack, 0);
	/* And a start after it works. */
	guest_start(f, LINUX_FEATURES, 0xf, 0x20000);
	assert_true(run(f, 3, &c));
	assert_memory_equal(c.in, wbuf, sizeof(wbuf));
	guest_close(f);
}

/* Firmware (one queue, no PI), stop, Linux (PI, both queues): data through both. */
/*
 * One namespace through both fronts at once: what an NVMe-oF host (the loop
 * transport) writes, the guest reads, and the other way round.
 */
static void test_both_fronts(void **state)
{
	struct fix *f = *state;
	uint8_t nbuf[4096], gbuf[4096];
	struct iovec iov = { nbuf, sizeof(nbuf) };
	struct nvt_loop_ctrl host;
	struct done d = { 0 };
	struct nvt_sqe sqe;
	struct cmd c;

	struct nvt_ns *ns = nvt_target_find_subsys(f->tgt, TEST_NQN)->ns[1];
	struct nvt_io_stats_snap before, after;

	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, TEST_NQN, TEST_HOST, 1, 16, 0, &host), 0);
	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x20000);
	nvt_stats_ns_snap(ns, &before);

	for (unsigned int i = 0; i < sizeof(nbuf); i++)
		nbuf[i] = (uint8_t)(i * 13 + 1);
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 200, 8);
	assert_int_equal(nvt_test_submit(host.io[0], &sqe, &iov, 1, nvt_test_on_done, &d), 0);
	assert_true(nvt_test_wait(host.io[0], &d));
	assert_int_equal(nvt_test_status(&d), 0);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x28, 200, 8);
	c.in_len = sizeof(nbuf);
	c.pi_hdr = true;
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_memory_equal(c.in, nbuf, sizeof(nbuf));

	for (unsigned int i = 0; i < sizeof(gbuf); i++)
		gbuf[i] = (uint8_t)(i * 5 + 9);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x2a, 300, 8);
	c.out = gbuf;
	c.out_len = sizeof(gbuf);
	c.pi_hdr = true;
	assert_true(run(f, 3, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	memset(nbuf, 0, sizeof(nbuf));
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 300, 8);
	d.count = 0;
	assert_int_equal(nvt_test_submit(host.io[0], &sqe, &iov, 1, nvt_test_on_done, &d), 0);
	assert_true(nvt_test_wait(host.io[0], &d));
	assert_int_equal(nvt_test_status(&d), 0);
	assert_memory_equal(nbuf, gbuf, sizeof(gbuf));
	/* Both fronts count into the namespace's one set: a read and a write each, 4 KiB each. */
	nvt_stats_ns_snap(ns, &after);
	assert_int_equal(after.cmds[NVT_STAT_READ] - before.cmds[NVT_STAT_READ], 2);
	assert_int_equal(after.cmds[NVT_STAT_WRITE] - before.cmds[NVT_STAT_WRITE], 2);
	assert_int_equal(after.bytes_read - before.bytes_read, 2 * 4096);
	assert_int_equal(after.bytes_written - before.bytes_written, 2 * 4096);
	assert_int_equal(nvt_stats_media_errors(&after), nvt_stats_media_errors(&before));
	assert_int_equal(after.qd, 0);

	guest_stop(f);
	guest_close(f);
	nvt_loop_ctrl_disconnect(&host);
}

static void test_bios_then_linux(void **state)
{
	struct fix *f = *state;
	uint8_t wbuf[4096];
	struct cmd c;

	guest_realize(f);
	/* SeaBIOS: only request queue 0 (vq 2), 51-byte headers. */
	guest_start(f, BIOS_FEATURES, 1u << 2, 0x10000);
	inquiry(&c, 0, 0, false);
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.response, NVT_VSCSI_S_OK);
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_int_equal(c.in[0] & 0x1f, 0);	/* direct-access block device */
	/* Target 1 is absent: the scan moves on. */
	inquiry(&c, 1, 0, false);
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.response, NVT_VSCSI_S_BAD_TARGET);
	guest_stop(f);

	/* Linux: fresh rings elsewhere, T10_PI headers on every queue. */
	guest_start(f, LINUX_FEATURES, 0xf, 0x20000);
	memset(&c, 0, sizeof(c));
	c.cdb[0] = 0x25;	/* READ CAPACITY(10) */
	c.in_len = 8;
	c.pi_hdr = true;
	assert_true(run(f, 3, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_int_equal(be32toh(*(uint32_t *)c.in), TEST_NS_SIZE / 512 - 1);
	assert_int_equal(be32toh(*(uint32_t *)(c.in + 4)), 512);
	/* LUN 1 is the 4 KiB-block namespace. */
	c.lun = 1;
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_int_equal(be32toh(*(uint32_t *)(c.in + 4)), 4096);

	/* WRITE(10) 8 blocks on queue 2 (indirect), READ(10) them back on queue 3. */
	for (unsigned int i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 7 + 3);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x2a, 40, 8);
	c.out = wbuf;
	c.out_len = sizeof(wbuf);
	c.pi_hdr = true;
	c.indirect = true;
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.response, NVT_VSCSI_S_OK);
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x28, 40, 8);
	c.in_len = sizeof(wbuf);
	c.pi_hdr = true;
	assert_true(run(f, 3, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_int_equal(le32toh(c.resp.resid), 0);
	assert_memory_equal(c.in, wbuf, sizeof(wbuf));
	assert_int_equal(c.used_len, 108 + sizeof(wbuf));
	/* A guest reset: stop, start again, the data is still there. */
	guest_stop(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	assert_true(run(f, 2, &c));
	assert_memory_equal(c.in, wbuf, sizeof(wbuf));
	guest_stop(f);
	guest_close(f);
}

/* Run @c on queue @qi as run() does, but leave its call eventfd alone (wait_used() drains it). */
static bool run_quiet(struct fix *f, unsigned int qi, struct cmd *c)
{
	struct gvq *q = &f->g.vq[qi];

	make_avail(q, build(&f->g, q, c));
	for (int waited = 0; waited < WAIT_MS; waited++) {
		if (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used) {
			q->last_used++;
			memcpy(&c->resp, gpa(&f->g, c->resp_gpa), sizeof(c->resp));
			return true;
		}
		usleep(1000);
	}
	return false;
}

/* Was @q's call eventfd signalled within @ms? Drains it. */
static bool called(struct gvq *q, int ms)
{
	struct pollfd p = { q->call, POLLIN, 0 };
	uint64_t n;

	if (poll(&p, 1, ms) != 1)
		return false;
	assert_int_equal(read(q->call, &n, 8), 8);
	return true;
}

/*
 * Notification suppression: without EVENT_IDX the queue asks for kicks
 * again (used->flags 0) before it sleeps; with it, nvtd publishes its avail
 * index (avail_event) and interrupts only when used->idx passes the
 * driver's used_event.
 */
static void test_notify_suppression(void **state)
{
	struct fix *f = *state;
	struct gvq *q = &f->g.vq[2];
	uint16_t *used_event, *avail_event;
	struct cmd c;

	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	/* A round trip: the server has taken the call fds sent without a reply. */
	get_u64(&f->g, NVT_VHOST_GET_FEATURES);
	inquiry(&c, 0, 0, true);
	assert_true(run_quiet(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_true(called(q, WAIT_MS));
	assert_int_equal(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE), 0);
	guest_stop(f);

	guest_start(f, LINUX_FEATURES | NVT_VIRTIO_F_EVENT_IDX, 0xf, 0x20000);
	get_u64(&f->g, NVT_VHOST_GET_FEATURES);
	used_event = &q->avail->ring[NUM];
	avail_event = (uint16_t *)&q->used->ring[NUM];
	/* The first completion always interrupts: nothing was signalled yet. */
	*used_event = 100;
	assert_true(run_quiet(f, 2, &c));
	assert_true(called(q, WAIT_MS));
	assert_int_equal(*avail_event, q->avail->idx);
	/* The driver wants to hear only at used index 100: no interrupt for index 2. */
	assert_true(run_quiet(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_false(called(q, 100));
	assert_int_equal(*avail_event, q->avail->idx);
	/* It wants to hear of the next one (index 2 -> 3): an interrupt. */
	*used_event = q->used->idx;
	assert_true(run_quiet(f, 2, &c));
	assert_true(called(q, WAIT_MS));
	assert_int_equal(*avail_event, q->avail->idx);
	guest_stop(f);
	guest_close(f);
}

/* Malformed rings fail the request, the queue keeps serving the next one. */
static void test_malformed_rings(void **state)
{
	struct fix *f = *state;
	struct gvq *q = &f->g.vq[2];
	struct nvt_vring_used_elem e;
	struct cmd c;

	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	/* A loop: 0 -> 1 -> 0. */
	q->desc[0] = (struct nvt_vring_desc){ G_HIGH, 59, NVT_VRING_DESC_F_NEXT, 1 };
	q->desc[1] = (struct nvt_vring_desc){ G_HIGH + 64, 16, NVT_VRING_DESC_F_NEXT, 0 };
	make_avail(q, 0);
	assert_true(wait_used(q, &e));
	assert_int_equal(e.id, 0);
	assert_int_equal(e.len, 0);
	/* A buffer in the hole between the regions, and one past the end of memory. */
	q->desc[0] = (struct nvt_vring_desc){ G_HALF + 4096, 59, NVT_VRING_DESC_F_NEXT, 1 };
	q->desc[1] = (struct nvt_vring_desc){ G_HIGH, 108, NVT_VRING_DESC_F_WRITE, 0 };
	make_avail(q, 0);
	assert_true(wait_used(q, &e));
	assert_int_equal(e.len, 0);
	q->desc[0] = (struct nvt_vring_desc){ G_HIGH + G_HALF - 16, 59, NVT_VRING_DESC_F_NEXT, 1 };
	make_avail(q, 0);
	assert_true(wait_used(q, &e));
	assert_int_equal(e.len, 0);
	/* A header too short for virtio_scsi_cmd_req_pi: a FAILURE response. */
	inquiry(&c, 0, 0, false);
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.response, NVT_VSCSI_S_FAILURE);
	/* Still serving. */
	inquiry(&c, 0, 0, true);
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	/* A head beyond the ring: that queue stops (the device needs a reset), the other serves on. */
	q->avail->ring[q->avail->idx % NUM] = NUM + 3;
	q->avail->idx++;
	assert_true(write(q->kick, &(uint64_t){ 1 }, 8) == 8);
	inquiry(&c, 0, 0, true);
	assert_true(run(f, 3, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	/* Stop still answers, with what was consumed before the bad entry. */
	stop_lenient = true;
	guest_stop(f);
	stop_lenient = false;
	guest_start(f, LINUX_FEATURES, 0xf, 0x20000);
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	guest_close(f);
}

/*
 * Entries of /proc/self/fd, or mappings of the guest's memfd in
 * /proc/self/maps (not all: the sanitizers map memory of their own).
 */
static unsigned int count_proc(const char *what)
{
	char cmd[64], line[512];
	unsigned int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), strcmp(what, "fd") ? "grep guest-ram /proc/%d/%s" : "ls /proc/%d/%s",
		 (int)getpid(), what);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		n++;
	pclose(p);
	return n;
}

/* Wait until the fds and mappings are back to @fds and @maps (the drained connection is freed). */
static void wait_released(unsigned int fds, unsigned int maps)
{
	for (int i = 0; i < 500; i++) {
		if (count_proc("fd") == fds && count_proc("maps") == maps)
			return;
		usleep(10000);
	}
	assert_int_equal(count_proc("fd"), fds);
	assert_int_equal(count_proc("maps"), maps);
}

/* QEMU goes away with requests in flight; the next QEMU gets in and reads the data. */
static void test_close_mid_io(void **state)
{
	struct fix *f = *state;
	struct gvq *q = &f->g.vq[2];
	uint8_t wbuf[4096];
	struct cmd c;
	int second;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char b;

	unsigned int fds0, maps0;

	for (unsigned int i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i ^ 0x5c);
	fds0 = count_proc("fd");
	maps0 = count_proc("maps");
	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	assert_true(count_proc("maps") > maps0);
	/* A second QEMU is turned away while the first is attached. */
	strcpy(sa.sun_path, f->path);
	second = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(second, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(recv(second, &b, 1, 0), 0);
	close(second);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x2a, 100, 8);
	c.out = wbuf;
	c.out_len = sizeof(wbuf);
	c.pi_hdr = true;
	assert_true(run(f, 2, &c));
	/* Eight more writes made available, then QEMU is gone without waiting. */
	for (unsigned int i = 0; i < 8; i++) {
		uint16_t head = (uint16_t)(i * 2);

		q->desc[head] = (struct nvt_vring_desc){ G_HIGH, 59 + 4096, NVT_VRING_DESC_F_NEXT,
							 (uint16_t)(head + 1) };
		q->desc[head + 1] = (struct nvt_vring_desc){ G_HIGH + 8192, 108, NVT_VRING_DESC_F_WRITE, 0 };
		q->avail->ring[q->avail->idx % NUM] = head;
		q->avail->idx++;
	}
	cdb_rw10(&c, 0x2a, 200, 8);
	memcpy(gpa(&f->g, G_HIGH), &(struct nvt_vscsi_cmd_req_pi){ .lun = { 1, 0, 0x40, 0 } }, 59);
	memcpy((uint8_t *)gpa(&f->g, G_HIGH) + 27, c.cdb, 32);
	slow.delay_ms = 300;
	{
		uint64_t before = slow.submitted;

		assert_true(write(q->kick, &(uint64_t){ 1 }, 8) == 8);
		for (int i = 0; i < 500 && slow.submitted - before < 8; i++)
			usleep(2000);
		/* All eight are with the backend, none done, when QEMU goes. */
		assert_int_equal(slow.submitted - before, 8);
		assert_true(slow.completed < slow.submitted);
	}
	guest_close(f);
	slow.delay_ms = 0;

	/* The next QEMU, on the same socket, at once: the old connection drains on its own. */
	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x20000);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x28, 100, 8);
	c.in_len = sizeof(wbuf);
	c.pi_hdr = true;
	assert_true(run(f, 3, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_memory_equal(c.in, wbuf, sizeof(wbuf));
	guest_stop(f);
	guest_close(f);
	/* Both connections' fds (socket, memfd, kick, call, err) and guest mappings are gone. */
	wait_released(fds0, maps0);
}

/*
 * QEMU with more vCPUs than nvtd has request queues: CALL and ERR for
 * every vq at realize, and a ring set up beyond the limit. The connection
 * stays; that ring is not started, its err fd is signalled, the others serve.
 */
static void test_many_queues(void **state)
{
	struct fix *f = *state;
	struct guest *g = &f->g;
	const unsigned int big = NVT_VHOST_MAX_VQS + 4;
	uint64_t ring = 0x30000, n;
	struct nvt_vhost_vring_addr_wire a = { .index = big, .desc = uva(g, ring),
		.used = uva(g, ring + 0x800), .avail = uva(g, ring + 0x400) };
	int err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct pollfd p = { err, POLLIN, 0 };
	uint32_t st[2] = { 0, 0 };

	guest_realize(f);
	for (unsigned int i = NVQS; i < 200; i++) {
		set_vring_fd(g, NVT_VHOST_SET_VRING_CALL, i, err);
		set_vring_fd(g, NVT_VHOST_SET_VRING_ERR, i, err);
	}
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	memset(gpa(g, ring), 0, 0x1000);
	set_state(g, NVT_VHOST_SET_VRING_NUM, big, NUM);
	set_state(g, NVT_VHOST_SET_VRING_BASE, big, 0);
	send_msg(g, NVT_VHOST_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
	set_vring_fd(g, NVT_VHOST_SET_VRING_KICK, big, kick);
	set_state(g, NVT_VHOST_SET_VRING_ENABLE, big, 1);
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(read(err, &n, 8), 8);
	read_block0_ok(f);
	set_state(g, NVT_VHOST_GET_VRING_BASE, big, 0);
	assert_int_equal(recv_reply(g, NVT_VHOST_GET_VRING_BASE, st, 8), 8);
	assert_int_equal(st[0], big);
	assert_int_equal(st[1], 0);
	guest_stop(f);
	guest_close(f);
	close(err);
	close(kick);
}

/* Send @len bytes of @buf, with @fd (if >= 0) attached to the first. */
static void send_piece(int sock, const void *buf, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
	usleep(2000);
}

/* Messages in pieces (the fd with the first byte) are put together; the rings then serve. */
static void test_split_messages(void **state)
{
	struct fix *f = *state;
	struct {
		uint32_t req, flags, size;
		uint64_t u64;
	} __attribute__((packed)) m = { NVT_VHOST_SET_VRING_ERR, 1 | NVT_VHOST_FLAG_NEED_REPLY, 8, 1 };
	const uint8_t *b = (const uint8_t *)&m;
	int err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t ack = 1;

	guest_realize(f);
	send_piece(f->g.sock, b, 1, err);
	send_piece(f->g.sock, b + 1, 10, -1);
	send_piece(f->g.sock, b + 11, 4, -1);
	send_piece(f->g.sock, b + 15, 5, -1);
	assert_int_equal(recv_reply(&f->g, NVT_VHOST_SET_VRING_ERR, &ack, 8), 8);
	assert_int_equal(ack, 0);
	close(err);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	read_block0_ok(f);
	guest_stop(f);
	guest_close(f);
}

/* A ring's kick before the first memory table (a front end free to order it so): the table starts it. */
static void test_kick_before_mem_table(void **state)
{
	struct fix *f = *state;
	struct guest *g = &f->g;
	struct gvq *q = &g->vq[2];
	struct nvt_vhost_vring_addr_wire a;

	guest_realize(f);
	set_u64(g, NVT_VHOST_SET_FEATURES, LINUX_FEATURES);
	q->active = true;
	q->ring_gpa = 0x10000 + 0x2000;
	q->desc = gpa(g, q->ring_gpa);
	q->avail = gpa(g, q->ring_gpa + 0x400);
	q->used = gpa(g, q->ring_gpa + 0x800);
	memset(q->desc, 0, 0x1000);
	q->last_used = 0;
	set_state(g, NVT_VHOST_SET_VRING_NUM, 2, NUM);
	set_state(g, NVT_VHOST_SET_VRING_BASE, 2, 0);
	a = (struct nvt_vhost_vring_addr_wire){ .index = 2, .desc = uva(g, q->ring_gpa),
		.used = uva(g, q->ring_gpa + 0x800), .avail = uva(g, q->ring_gpa + 0x400) };
	send_msg(g, NVT_VHOST_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
	q->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	set_vring_fd(g, NVT_VHOST_SET_VRING_KICK, 2, q->kick);
	set_mem_table(g);
	set_state(g, NVT_VHOST_SET_VRING_ENABLE, 2, 1);
	q->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	set_vring_fd(g, NVT_VHOST_SET_VRING_CALL, 2, q->call);
	read_block0_ok(f);
	guest_stop(f);
	guest_close(f);
}

/*
 * GET_VRING_BASE while a write is held by the backend: answered only once
 * it has completed into the used ring (guest_stop() checks used == avail
 * at the answer), not before.
 */
static void test_get_base_in_flight(void **state)
{
	struct fix *f = *state;
	uint8_t wbuf[4096];
	struct cmd c;
	uint64_t t0;

	memset(wbuf, 0x3c, sizeof(wbuf));
	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x2a, 40, 8);
	c.out = wbuf;
	c.out_len = sizeof(wbuf);
	c.pi_hdr = true;
	t0 = nvt_now_ns();
	start_slow(f, 2, &c, 300);
	guest_stop(f);
	assert_int_equal(slow.completed, slow.submitted);
	assert_true(nvt_now_ns() - t0 >= 250000000ull);
	slow.delay_ms = 0;
	guest_close(f);
}

/* A bad message closes the connection; the socket takes the next one. */
static void test_bad_message(void **state)
{
	struct fix *f = *state;
	char b;

	guest_connect(f);
	/* SET_FEATURES with a 4-byte payload. */
	send_msg(&f->g, NVT_VHOST_SET_FEATURES, 0, "abcd", 4, NULL, 0);
	assert_int_equal(recv(f->g.sock, &b, 1, 0), 0);
	close(f->g.sock);
	/* A request we do not serve (GET_CONFIG). */
	guest_connect(f);
	send_msg(&f->g, 24, 0, NULL, 0, NULL, 0);
	assert_int_equal(recv(f->g.sock, &b, 1, 0), 0);
	close(f->g.sock);
	/* A memory table whose fds are missing. */
	guest_connect(f);
	{
		struct { uint32_t n, pad; struct nvt_vhost_mem_region_wire r; } mt = { 1, 0, { 0, G_HALF, 0, 0 } };

		send_msg(&f->g, NVT_VHOST_SET_MEM_TABLE, 0, &mt, sizeof(mt), NULL, 0);
	}
	assert_int_equal(recv(f->g.sock, &b, 1, 0), 0);
	close(f->g.sock);
	/* A vring index beyond the queues QEMU could have. */
	guest_connect(f);
	set_state(&f->g, NVT_VHOST_SET_VRING_NUM, NVT_VHOST_VQ_LIMIT, 16);
	assert_int_equal(recv(f->g.sock, &b, 1, 0), 0);
	close(f->g.sock);
	/* More fds than any message carries. */
	guest_connect(f);
	{
		int fds[9];

		for (int i = 0; i < 9; i++)
			fds[i] = f->g.memfd;
		send_msg(&f->g, NVT_VHOST_GET_FEATURES, 0, NULL, 0, fds, 9);
	}
	assert_int_equal(recv(f->g.sock, &b, 1, 0), 0);
	close(f->g.sock);
	/* A header announcing a payload larger than any request's. */
	guest_connect(f);
	{
		uint32_t h[3] = { NVT_VHOST_SET_MEM_TABLE, 1, 1u << 20 };

		assert_int_equal(send(f->g.sock, h, 12, MSG_NOSIGNAL), 12);
	}
	assert_int_equal(recv(f->g.sock, &b, 1, 0), 0);
	close(f->g.sock);
	/*
	 * Half a header, then nothing: the connection waits for the rest,
	 * the main loop does not. A second QEMU meanwhile is turned away at
	 * once (it was accepted only after a 2 s stall while the main loop sat
	 * in a blocking read); the rest of the header, late, is served.
	 */
	guest_connect(f);
	assert_int_equal(send(f->g.sock, "\x01\x00\x00", 3, MSG_NOSIGNAL), 3);
	usleep(50000);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int second = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct pollfd p = { second, POLLIN, 0 };
		uint32_t h[3];
		uint64_t v;

		strcpy(sa.sun_path, f->path);
		assert_int_equal(connect(second, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(poll(&p, 1, 300), 1);
		assert_int_equal(recv(second, &b, 1, 0), 0);
		close(second);
		/* The header's other 9 bytes: GET_FEATURES (request 1), version 1, no payload. */
		h[0] = NVT_VHOST_GET_FEATURES;
		h[1] = 1;
		h[2] = 0;
		assert_int_equal(send(f->g.sock, (uint8_t *)h + 3, 9, MSG_NOSIGNAL), 9);
		assert_int_equal(recv_reply(&f->g, NVT_VHOST_GET_FEATURES, &v, 8), 8);
		assert_true(v & NVT_VHOST_F_PROTOCOL_FEATURES);
	}
	close(f->g.sock);
	f->g.sock = -1;
	/* And the next, well-behaved QEMU works. */
	guest_realize(f);
	guest_close(f);
}

/* Once the rings run, requests allocate nothing: slots, iovecs and tasks were made at start. */
static void test_no_alloc(void **state)
{
	struct fix *f = *state;
	uint8_t wbuf[4096];
	unsigned long before;
	struct cmd c;

#ifdef __SANITIZE_THREAD__
	/* The shared counter is a plain one, bumped by every thread: a race by design. */
	(void)f;
	(void)wbuf;
	(void)before;
	(void)c;
	skip();
#endif
	memset(wbuf, 0x3c, sizeof(wbuf));
	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	/* One of each first: whatever is made lazily on a first use is not the I/O path's. */
	for (unsigned int q = 2; q < 4; q++) {
		memset(&c, 0, sizeof(c));
		cdb_rw10(&c, 0x2a, 64, 8);
		c.out = wbuf;
		c.out_len = sizeof(wbuf);
		c.pi_hdr = true;
		assert_true(run(f, q, &c));
		memset(&c, 0, sizeof(c));
		cdb_rw10(&c, 0x28, 64, 8);
		c.in_len = sizeof(wbuf);
		c.pi_hdr = true;
		assert_true(run(f, q, &c));
	}
	before = __atomic_load_n(&nr_allocs, __ATOMIC_RELAXED);
	assert_true(before > 0);	/* the counter sees the target's own start-up */
	for (unsigned int i = 0; i < 64; i++) {
		unsigned int q = 2 + (i & 1);

		memset(&c, 0, sizeof(c));
		cdb_rw10(&c, i & 2 ? 0x28 : 0x2a, 64 + i * 8, 8);
		if (i & 2) {
			c.in_len = sizeof(wbuf);
		} else {
			c.out = wbuf;
			c.out_len = sizeof(wbuf);
		}
		c.pi_hdr = true;
		c.indirect = i & 4;
		assert_true(run(f, q, &c));
		assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	}
	assert_int_equal(__atomic_load_n(&nr_allocs, __ATOMIC_RELAXED), before);
	guest_stop(f);
	guest_close(f);
}

/* A LUN reset on the control queue is answered; AN queries too. */
static void test_control_queue(void **state)
{
	struct fix *f = *state;
	struct gvq *q = &f->g.vq[0];
	struct nvt_vscsi_ctrl_tmf_req tmf = { .type = 0, .subtype = NVT_VSCSI_T_TMF_LOGICAL_UNIT_RESET,
					      .lun = { 1, 0, 0x40, 0 } };
	struct nvt_vscsi_ctrl_an_req an = { .type = NVT_VSCSI_T_AN_QUERY, .lun = { 1, 0, 0x40, 0 } };
	struct nvt_vring_used_elem e;
	uint8_t *r = gpa(&f->g, G_HIGH + 4096);

	guest_realize(f);
	guest_start(f, LINUX_FEATURES, 0xf, 0x10000);
	memcpy(gpa(&f->g, G_HIGH), &tmf, sizeof(tmf));
	*r = 0xff;
	q->desc[0] = (struct nvt_vring_desc){ G_HIGH, sizeof(tmf), NVT_VRING_DESC_F_NEXT, 1 };
	q->desc[1] = (struct nvt_vring_desc){ G_HIGH + 4096, 1, NVT_VRING_DESC_F_WRITE, 0 };
	make_avail(q, 0);
	assert_true(wait_used(q, &e));
	assert_int_equal(e.len, 1);
	assert_int_equal(*r, NVT_VSCSI_S_FUNCTION_COMPLETE);
	memcpy(gpa(&f->g, G_HIGH), &an, sizeof(an));
	q->desc[0].len = sizeof(an);
	q->desc[1].len = 5;
	memset(r, 0xff, 5);
	make_avail(q, 0);
	assert_true(wait_used(q, &e));
	assert_int_equal(e.len, 5);
	assert_int_equal(r[4], NVT_VSCSI_S_OK);
	guest_stop(f);
	guest_close(f);
}

/* ---- LUNs added and removed live ---- */

/* A driver thread: READ(10)s of LUN 0 on request queue 3 until told to stop; none may fail. */
struct lun0_io {
	struct fix *f;
	struct guest g;		/* f->g with a buffer area of its own: the two drivers never share one */
	atomic_bool stop;
	atomic_uint ok, failed;
};

static void *lun0_worker(void *arg)
{
	struct lun0_io *io = arg;
	struct gvq *q = &io->f->g.vq[3];

	while (!atomic_load(&io->stop)) {
		struct nvt_vring_used_elem e;
		struct cmd c;
		uint64_t one = 1;

		memset(&c, 0, sizeof(c));
		cdb_rw10(&c, 0x28, 8, 1);
		c.in_len = 512;
		c.pi_hdr = true;
		build(&io->g, q, &c);
		q->avail->ring[q->avail->idx % NUM] = 0;
		__atomic_store_n(&q->avail->idx, (uint16_t)(q->avail->idx + 1), __ATOMIC_RELEASE);
		if (write(q->kick, &one, 8) != 8 || !wait_used(q, &e)) {
			atomic_fetch_add(&io->failed, 1);
			break;
		}
		memcpy(&c.resp, gpa(&io->g, c.resp_gpa), sizeof(c.resp));
		if (c.resp.response == NVT_VSCSI_S_OK && c.resp.status == NVT_SCSI_GOOD)
			atomic_fetch_add(&io->ok, 1);
		else
			atomic_fetch_add(&io->failed, 1);
	}
	return NULL;
}

/* The main loop has taken every LUN event queued (and found a buffer for it or not). */
static void events_taken(struct fix *f)
{
	for (int i = 0; i < WAIT_MS; i++) {
		unsigned int n;

		pthread_mutex_lock(&f->ctrl->ev_lock);
		n = f->ctrl->nr_ev;
		pthread_mutex_unlock(&f->ctrl->ev_lock);
		if (!n && !atomic_load(&f->ctrl->ev_queued))
			return;
		usleep(1000);
	}
	fail_msg("the main loop never took the LUN events");
}

/* Post one 16-byte event buffer as descriptor @d of the event queue. */
static struct nvt_vscsi_event *post_event_buf(struct fix *f, uint16_t d)
{
	struct gvq *q = &f->g.vq[1];
	uint64_t a = 0x40000 + 64ull * d;	/* low region, away from the rings */
	struct nvt_vscsi_event *ev = gpa(&f->g, a);

	memset(ev, 0xee, sizeof(*ev));
	q->desc[d] = (struct nvt_vring_desc){ a, sizeof(*ev), NVT_VRING_DESC_F_WRITE, 0 };
	make_avail(q, d);
	return ev;
}

/* The next event the device wrote: its buffer @ev, of descriptor @d. */
static void expect_event(struct fix *f, uint16_t d, const struct nvt_vscsi_event *ev,
			 uint32_t event, int lun, uint32_t reason)
{
	struct nvt_vring_used_elem e;

	assert_true(wait_used(&f->g.vq[1], &e));
	assert_int_equal(e.id, d);
	assert_int_equal(e.len, sizeof(*ev));
	assert_int_equal(le32toh(ev->event), event);
	assert_int_equal(le32toh(ev->reason), reason);
	if (lun >= 0) {
		/* Linux passes (lun[2] << 8) | lun[3] to scsi_add_device() as is: REPORT LUNS' form. */
		assert_int_equal(ev->lun[0], 1);
		assert_int_equal(ev->lun[1], 0);
		assert_int_equal((ev->lun[2] << 8) | ev->lun[3], lun < 256 ? lun : 0x4000 | lun);
		for (int i = 4; i < 8; i++)
			assert_int_equal(ev->lun[i], 0);
	}
}

static void tur(struct cmd *c, uint16_t lun)
{
	memset(c, 0, sizeof(*c));
	c->lun = lun;
	c->pi_hdr = true;
}

/* Fixed or descriptor sense: key and ASC/ASCQ. */
static void expect_sense(const struct cmd *c, uint8_t key, uint8_t asc, uint8_t ascq)
{
	const uint8_t *s = c->resp.sense;

	assert_int_equal(c->resp.response, NVT_VSCSI_S_OK);
	assert_int_equal(c->resp.status, NVT_SCSI_CHECK_CONDITION);
	if ((s[0] & 0x7f) == 0x72) {
		assert_int_equal(s[1] & 0x0f, key);
		assert_int_equal(s[2], asc);
		assert_int_equal(s[3], ascq);
	} else {
		assert_int_equal(s[0] & 0x7f, 0x70);
		assert_int_equal(s[2] & 0x0f, key);
		assert_int_equal(s[12], asc);
		assert_int_equal(s[13], ascq);
	}
}

/* REPORT LUNS on queue 2: how many LUNs, and is @lun among them? */
static unsigned int report_luns(struct fix *f, uint16_t lun, bool *found)
{
	struct cmd c;
	uint32_t n;

	memset(&c, 0, sizeof(c));
	c.cdb[0] = 0xa0;
	c.cdb[9] = 0x80;	/* allocation length 128 */
	c.in_len = 128;
	c.pi_hdr = true;
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	n = (uint32_t)c.in[0] << 24 | (uint32_t)c.in[1] << 16 | (uint32_t)c.in[2] << 8 | c.in[3];
	*found = false;
	for (uint32_t i = 0; i < n / 8; i++)
		*found |= (((c.in[8 + 8 * i] & 0x3f) << 8) | c.in[9 + 8 * i]) == lun;
	return n / 8;
}

/* LUN @lun answers as one that does not exist, and REPORT LUNS lists @nr others. */
static void lun_absent(struct fix *f, uint16_t lun, unsigned int nr)
{
	struct cmd c;
	bool found;

	tur(&c, lun);
	assert_true(run(f, 2, &c));
	expect_sense(&c, 0x05, 0x25, 0x00);
	assert_int_equal(report_luns(f, lun, &found), nr);
	assert_false(found);
}

/*
 * A LUN added to a running controller raises RESCAN on the event queue and
 * answers at once; removed, REMOVED, and its commands fail as an unknown
 * LUN's; with no buffer posted the event is lost and the next buffer says
 * so; I/O on LUN 0 from another queue never fails meanwhile.
 */
static void test_lun_hotplug(void **state)
{
	struct fix *f = *state;
	struct nvt_vhost_lun_cfg lc = { .lun = 5, .subsystem = TEST_NQN, .nsid = 3, .line = 12 };
	struct lun0_io io = { .f = f };
	struct nvt_vscsi_event *ev;
	pthread_t th;
	struct cmd c;
	bool found;
	uint64_t feat;

	guest_realize(f);
	feat = get_u64(&f->g, NVT_VHOST_GET_FEATURES);
	assert_true(feat & NVT_VIRTIO_SCSI_F_HOTPLUG);
	guest_start(f, LINUX_FEATURES | NVT_VIRTIO_SCSI_F_HOTPLUG, 0xf, 0x10000);
	/* Buffers: the main thread below G_HIGH + 1 MiB, the LUN 0 driver above. */
	f->g.buf_lo = G_HIGH;
	f->g.buf_hi = G_HIGH + G_HALF / 2;
	f->g.next_buf = G_HIGH;
	io.g = f->g;
	io.g.buf_lo = io.g.next_buf = G_HIGH + G_HALF / 2;
	io.g.buf_hi = G_HIGH + G_HALF;
	atomic_init(&io.stop, false);
	atomic_init(&io.ok, 0);
	atomic_init(&io.failed, 0);
	assert_int_equal(pthread_create(&th, NULL, lun0_worker, &io), 0);

	/* Unknown before: LOGICAL UNIT NOT SUPPORTED. */
	lun_absent(f, 5, 2);

	ev = post_event_buf(f, 0);
	assert_int_equal(nvt_vhost_ctrl_lun_add(f->ctrl, &lc), 0);
	assert_int_equal(nvt_vhost_ctrl_lun_add(f->ctrl, &lc), -EEXIST);
	expect_event(f, 0, ev, NVT_VSCSI_T_TRANSPORT_RESET, 5, NVT_VSCSI_EVT_RESET_RESCAN);
	tur(&c, 5);
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	assert_int_equal(report_luns(f, 5, &found), 3);
	assert_true(found);

	/* Removed with no event buffer posted: the event is lost... */
	assert_int_equal(nvt_vhost_ctrl_lun_remove(f->ctrl, 5), 0);
	events_taken(f);
	assert_int_equal(nvt_vhost_ctrl_lun_remove(f->ctrl, 5), -ENOENT);
	lun_absent(f, 5, 2);
	/* ... and the next buffer posted says events were missed (the driver rescans). */
	ev = post_event_buf(f, 1);
	expect_event(f, 1, ev, NVT_VSCSI_T_NO_EVENT | NVT_VSCSI_T_EVENTS_MISSED, -1, 0);

	/* Added back and removed again, buffers posted each time: no flag now. */
	ev = post_event_buf(f, 2);
	assert_int_equal(nvt_vhost_ctrl_lun_add(f->ctrl, &lc), 0);
	expect_event(f, 2, ev, NVT_VSCSI_T_TRANSPORT_RESET, 5, NVT_VSCSI_EVT_RESET_RESCAN);
	ev = post_event_buf(f, 3);
	assert_int_equal(nvt_vhost_ctrl_lun_remove(f->ctrl, 5), 0);
	expect_event(f, 3, ev, NVT_VSCSI_T_TRANSPORT_RESET, 5, NVT_VSCSI_EVT_RESET_REMOVED);

	/* Two lost in a row: one flag, in the next buffer; the one after it stays free. */
	assert_int_equal(nvt_vhost_ctrl_lun_add(f->ctrl, &lc), 0);
	assert_int_equal(nvt_vhost_ctrl_lun_remove(f->ctrl, 5), 0);
	events_taken(f);	/* the main loop found no buffer */
	ev = post_event_buf(f, 4);
	expect_event(f, 4, ev, NVT_VSCSI_T_NO_EVENT | NVT_VSCSI_T_EVENTS_MISSED, -1, 0);
	ev = post_event_buf(f, 5);
	usleep(20000);
	assert_int_equal(f->g.vq[1].used->idx, f->g.vq[1].last_used);
	/* Held until the next change, which it then carries unflagged. */
	assert_int_equal(nvt_vhost_ctrl_lun_add(f->ctrl, &lc), 0);
	expect_event(f, 5, ev, NVT_VSCSI_T_TRANSPORT_RESET, 5, NVT_VSCSI_EVT_RESET_RESCAN);

	/* Above 255: flat space, as REPORT LUNS lists it. */
	ev = post_event_buf(f, 6);
	lc.lun = 300;
	assert_int_equal(nvt_vhost_ctrl_lun_add(f->ctrl, &lc), 0);
	expect_event(f, 6, ev, NVT_VSCSI_T_TRANSPORT_RESET, 300, NVT_VSCSI_EVT_RESET_RESCAN);
	tur(&c, 300);
	assert_true(run(f, 2, &c));
	assert_int_equal(c.resp.status, NVT_SCSI_GOOD);

	atomic_store(&io.stop, true);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&io.failed), 0);
	assert_true(atomic_load(&io.ok) > 0);

	/* A removal waits for the command in flight on the LUN; that command completes. */
	memset(&c, 0, sizeof(c));
	cdb_rw10(&c, 0x28, 0, 1);
	c.in_len = 512;
	c.pi_hdr = true;
	start_slow(f, 2, &c, 300);
	{
		uint64_t t0 = nvt_now_ns();
		struct nvt_vring_used_elem e;

		assert_int_equal(nvt_vhost_ctrl_lun_remove(f->ctrl, 0), 0);
		assert_true(nvt_now_ns() - t0 >= 100ull * 1000 * 1000);
		assert_true(wait_used(&f->g.vq[2], &e));
		memcpy(&c.resp, gpa(&f->g, c.resp_gpa), sizeof(c.resp));
		assert_int_equal(c.resp.status, NVT_SCSI_GOOD);
	}
	slow.delay_ms = 0;
	tur(&c, 0);
	assert_true(run(f, 2, &c));
	expect_sense(&c, 0x05, 0x25, 0x00);
	guest_stop(f);
	guest_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_table_resent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bios_then_linux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_fronts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_mid_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_base_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kick_before_mem_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_suppression, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_alloc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lun_hotplug, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
