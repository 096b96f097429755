/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz harness for the virtio-scsi request path: a started vhost-user-scsi device whose guest writes fuzzer-made descriptors, avail rings, request headers, CDBs and data into memfd RAM and kicks. */
#include <endian.h>

#include "fuzz_vhost.h"

/*
 * Setup (from the first byte): QEMU 7.2's realize and start of a Linux
 * guest, T10 PI negotiated or not, rings 0 (control), 2 and 3 of one size.
 * Then up to MAX_OPS operations, op byte % 8:
 *   0, 1, 2 REQ   a request the way Linux's virtio_scsi builds one (header,
 *                 PI, data, response; pieces, indirect table, any LUN and
 *                 CDB), or a TMF / AN request on the control queue
 *   3 DESC        a raw descriptor
 *   4 AVAIL       a raw avail entry or index, then a kick
 *   5 PUMP        rounds of the poll group
 *   6 CTRL        QEMU acts mid-I/O: a new memory table, ENABLE 0/1, a
 *                 stop (GET_VRING_BASE) and restart, RESET_DEVICE and a
 *                 fresh start, a new call fd
 *   7 POKE        bytes into guest RAM (a header rewritten after the kick)
 * At the end every ring is stopped with GET_VRING_BASE. Invariants, each an
 * abort: used ids name a descriptor of the ring; a ring that is not broken
 * has completed everything it popped when it stops (base == used idx);
 * every stop is answered; the connection is freed when QEMU goes; no fd is
 * left open; and the sanitizers.
 */

#define MAX_OPS		96
#define RING_GPA(q)	(0x10000ull * ((q) + 1))	/* low region */
#define BUF_BASE	VF_G_HIGH			/* buffers: the high region */

static const unsigned int qs[3] = { 0, 2, 3 };

struct gq {
	uint16_t num;
	struct nvt_vring_desc *desc;
	struct nvt_vring_avail *avail;
	struct nvt_vring_used *used;
	uint16_t next_desc;		/* where the next request's chain starts */
	uint16_t seen_used;
};

struct run {
	struct nvt_fuzz_input in;
	struct vf *f;
	bool pi;
	uint16_t num;
	struct gq q[4];
	uint64_t next_buf;
};

static uint8_t u8(struct run *r)
{
	return nvt_fuzz_u8(&r->in);
}

static uint16_t u16(struct run *r)
{
	return nvt_fuzz_u16(&r->in);
}

static uint32_t u32(struct run *r)
{
	return nvt_fuzz_u32(&r->in);
}

static uint64_t u64(struct run *r)
{
	return u32(r) | (uint64_t)u32(r) << 32;
}

/* @len bytes of guest buffer in the high region (wraps: requests are short-lived). */
static uint64_t galloc(struct run *r, uint32_t len)
{
	uint64_t a;

	if (len > VF_G_HALF)
		len = VF_G_HALF;
	if (r->next_buf + len > BUF_BASE + VF_G_HALF)
		r->next_buf = BUF_BASE;
	a = r->next_buf;
	r->next_buf += (len + 15) & ~15u;
	return a;
}

static void ring_map(struct run *r, unsigned int q)
{
	struct gq *g = &r->q[q];
	uint64_t d = RING_GPA(q), a = d + NVT_VRING_DESC_SIZE(r->num);
	uint64_t u = (a + NVT_VRING_AVAIL_SIZE(r->num, 1) + 3) & ~3ull;

	g->num = r->num;
	g->desc = vf_gpa(r->f, d, 1);
	g->avail = vf_gpa(r->f, a, 1);
	g->used = vf_gpa(r->f, u, 1);
	g->next_desc = 0;
	g->seen_used = 0;
}

static void start(struct run *r)
{
	struct vf *f = r->f;

	vf_set_u64(f, NVT_VHOST_SET_FEATURES,
		   r->pi ? VF_LINUX_FEATURES : VF_LINUX_FEATURES & ~NVT_VIRTIO_SCSI_F_T10_PI);
	vf_set_u64(f, NVT_VHOST_SET_FEATURES,
		   r->pi ? VF_LINUX_FEATURES : VF_LINUX_FEATURES & ~NVT_VIRTIO_SCSI_F_T10_PI);
	vf_set_mem_table(f, true);
	for (unsigned int i = 0; i < 3; i++) {
		vf_ring_setup(f, qs[i], r->num, RING_GPA(qs[i]));
		ring_map(r, qs[i]);
	}
	for (unsigned int i = 0; i < 4; i++)
		vf_set_state(f, NVT_VHOST_SET_VRING_ENABLE, i, 1);
	for (unsigned int i = 0; i < 4; i++)
		vf_set_vring_fd(f, NVT_VHOST_SET_VRING_CALL, i);
}

static void kick(struct run *r, unsigned int q)
{
	uint64_t one = 1;

	if (r->f->kick[q] >= 0 && write(r->f->kick[q], &one, 8) != 8)
		nvt_fuzz_check(0, "kick");
	vf_pump(r->f, 3);
}

static void publish(struct run *r, unsigned int q, uint16_t head)
{
	struct gq *g = &r->q[q];
	uint16_t idx = g->avail->idx;

	g->avail->ring[idx % g->num] = head;
	__atomic_store_n(&g->avail->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static void fill(struct run *r, uint64_t gpa, uint32_t len, bool from_input, uint8_t pat)
{
	uint8_t *p = vf_gpa(r->f, gpa, len);

	if (!p)
		return;
	for (uint32_t i = 0; i < len; i++)
		p[i] = from_input && r->in.i < r->in.n ? u8(r) : (uint8_t)(pat + i);
}

/* Descriptors for [gpa, gpa + len) in @pieces parts, into @d from @n; returns the new count. */
static unsigned int pieces(struct run *r, struct nvt_vring_desc *d, unsigned int n, unsigned int max,
			   uint64_t gpa, uint32_t len, unsigned int parts, uint16_t flags)
{
	uint32_t left = len;

	for (unsigned int i = 0; i < parts && n < max && (left || !i); i++) {
		uint32_t piece = i + 1 == parts ? left : (uint32_t)(((uint64_t)left * u8(r)) / 255);

		d[n++] = (struct nvt_vring_desc){ gpa, piece, flags, 0 };
		gpa += piece;
		left -= piece;
	}
	return n;
}

#define MAX_CHAIN	40

static void op_req(struct run *r)
{
	unsigned int q = qs[u8(r) % 3];
	struct gq *g = &r->q[q];
	uint8_t fl = u8(r), fl2 = u8(r);
	struct nvt_vring_desc d[MAX_CHAIN];
	unsigned int n = 0;
	uint16_t head;

	if (!g->num)
		return;
	if (q == 0) {
		/* Control queue: TMF (24 bytes out, 1 in) or AN (16 out, 5 in), lengths off at times. */
		uint32_t out_len = fl & 1 ? 16 : 24, in_len = fl & 1 ? 5 : 1;
		uint64_t oa, ia;
		uint8_t req[24];

		if (fl & 2)
			out_len = u8(r) % 32;
		if (fl & 4)
			in_len = u8(r) % 8;
		memset(req, 0, sizeof(req));
		req[0] = fl & 1 ? (uint8_t)(1 + (fl2 & 1)) : 0;	/* AN_QUERY / AN_SUBSCRIBE, or TMF */
		req[4] = u8(r) % 9;				/* TMF subtype */
		req[8] = 1;					/* lun: 1, target 0, 0x40 | hi, lo */
		req[10] = 0x40;
		req[11] = fl2 & 2 ? 5 : 0;
		if (fl & 8)
			for (unsigned int i = 0; i < 24; i++)
				req[i] = u8(r);
		oa = galloc(r, 32);
		ia = galloc(r, 8);
		memcpy(vf_gpa(r->f, oa, 24), req, 24);
		memset(vf_gpa(r->f, ia, 8), 0xee, 8);
		d[n++] = (struct nvt_vring_desc){ oa, out_len, 0, 0 };
		d[n++] = (struct nvt_vring_desc){ ia, in_len, NVT_VRING_DESC_F_WRITE, 0 };
	} else {
		/* A SCSI command: header, PI out, data out | response, PI in, data in. */
		bool pi_hdr = fl & 1 ? !r->pi : r->pi, to_dev = fl & 2;
		uint32_t hdr = pi_hdr ? sizeof(struct nvt_vscsi_cmd_req_pi) : sizeof(struct nvt_vscsi_cmd_req);
		uint8_t cdb_len = u8(r) % (NVT_SCSI_CDB_MAX + 1);
		uint32_t len = u16(r), pi_len = fl & 4 ? u16(r) % 4096 : 0, resp = 108;
		unsigned int parts = 1 + u8(r) % 8;
		struct nvt_vscsi_cmd_req_pi h;
		uint64_t ha, da, pa, ra;

		memset(&h, 0, sizeof(h));
		h.lun[0] = 1;
		h.lun[2] = 0x40;
		h.lun[3] = (uint8_t)(fl2 & 3) == 3 ? 5 : fl2 & 3;	/* LUN 0, 1, 2 (none), 5 */
		if (fl2 & 4)
			for (unsigned int i = 0; i < 8; i++)
				h.lun[i] = u8(r);
		h.tag = htole64(u16(r));
		for (unsigned int i = 0; i < cdb_len; i++)
			h.cdb[i] = u8(r);
		if (fl2 & 8)
			len *= 16;
		if (fl2 & 16)
			resp = u8(r) % 128;
		if (pi_hdr) {
			if (to_dev)
				h.pi_bytesout = htole32(pi_len);
			else
				h.pi_bytesin = htole32(pi_len);
			if (fl2 & 32) {
				h.pi_bytesout = htole32(u32(r));
				h.pi_bytesin = htole32(u32(r));
			}
		} else {
			pi_len = 0;
		}
		ha = galloc(r, 64);
		if (pi_hdr)
			memcpy(vf_gpa(r->f, ha, sizeof(h)), &h, sizeof(h));
		else {
			struct nvt_vscsi_cmd_req s;

			memcpy(s.lun, h.lun, 8);
			s.tag = h.tag;
			s.task_attr = s.prio = s.crn = 0;
			memcpy(s.cdb, h.cdb, sizeof(s.cdb));
			memcpy(vf_gpa(r->f, ha, sizeof(s)), &s, sizeof(s));
		}
		ra = galloc(r, resp);
		pa = pi_len ? galloc(r, pi_len) : 0;
		da = len ? galloc(r, len) : 0;
		if (len > VF_G_HALF)
			len = VF_G_HALF;
		/* The header split in two descriptors now and then: parsing goes by bytes. */
		if (fl & 8) {
			d[n++] = (struct nvt_vring_desc){ ha, 20, 0, 0 };
			d[n++] = (struct nvt_vring_desc){ ha + 20, hdr - 20, 0, 0 };
		} else {
			d[n++] = (struct nvt_vring_desc){ ha, hdr, 0, 0 };
		}
		if (to_dev) {
			if (pi_len) {
				fill(r, pa, pi_len, fl & 16, 0);
				n = pieces(r, d, n, MAX_CHAIN, pa, pi_len, parts, 0);
			}
			if (len) {
				fill(r, da, len, fl & 16, 0x5a);
				n = pieces(r, d, n, MAX_CHAIN, da, len, parts, 0);
			}
		}
		memset(vf_gpa(r->f, ra, resp) ?: r->f->mem, 0xee, resp);
		if (n < MAX_CHAIN)
			d[n++] = (struct nvt_vring_desc){ ra, resp, NVT_VRING_DESC_F_WRITE, 0 };
		if (!to_dev) {
			if (pi_len)
				n = pieces(r, d, n, MAX_CHAIN, pa, pi_len, parts, NVT_VRING_DESC_F_WRITE);
			if (len)
				n = pieces(r, d, n, MAX_CHAIN, da, len, parts, NVT_VRING_DESC_F_WRITE);
		}
	}
	for (unsigned int i = 0; i + 1 < n; i++)
		d[i].flags |= NVT_VRING_DESC_F_NEXT;
	head = g->next_desc % g->num;
	if ((fl & 32) || n > g->num) {
		/* An indirect table in guest RAM: one ring descriptor. */
		uint64_t ta = galloc(r, n * 16);

		for (unsigned int i = 0; i + 1 < n; i++)
			d[i].next = (uint16_t)(i + 1);
		memcpy(vf_gpa(r->f, ta, n * 16), d, n * 16);
		g->desc[head] = (struct nvt_vring_desc){ ta, n * 16, NVT_VRING_DESC_F_INDIRECT, 0 };
		g->next_desc = (uint16_t)(head + 1);
	} else {
		for (unsigned int i = 0; i < n; i++) {
			uint16_t at = (uint16_t)((head + i) % g->num);

			d[i].next = (uint16_t)((at + 1) % g->num);
			g->desc[at] = d[i];
		}
		g->next_desc = (uint16_t)(head + n);
	}
	publish(r, q, head);
	if (!(fl & 64))
		kick(r, q);	/* else batched with the next one */
}

static void op_desc(struct run *r)
{
	unsigned int q = qs[u8(r) % 3];
	struct gq *g = &r->q[q];
	struct nvt_vring_desc d;
	uint16_t o = u16(r);

	if (!g->num)
		return;
	d.addr = o >= 0xff00 ? u64(r) : BUF_BASE + (uint64_t)o * 16;
	d.len = u8(r) & 1 ? u32(r) : u16(r);
	d.flags = u8(r) & 7;
	d.next = u16(r);
	g->desc[u8(r) % g->num] = d;
}

static void op_avail(struct run *r)
{
	unsigned int q = qs[u8(r) % 3];
	struct gq *g = &r->q[q];
	uint8_t what = u8(r);

	if (!g->num)
		return;
	if (what & 1)
		g->avail->idx = (uint16_t)(g->avail->idx + u8(r));
	else
		publish(r, q, what & 2 ? u16(r) : u8(r) % g->num);
	if (what & 4)
		g->avail->flags = u8(r) & 1;
	kick(r, q);
}

/* Stop ring @q with GET_VRING_BASE; check what it reports. Return: its base. */
static uint16_t stop_ring(struct run *r, unsigned int q)
{
	struct vf *f = r->f;
	struct nvt_vhost_vq *vq = f->ctrl->conn ? f->ctrl->conn->vqs[q] : NULL;
	unsigned int before = f->base_replies;
	bool broken = vq && vq->vr.broken;
	bool started = vq && vq->started;

	vf_set_state(f, NVT_VHOST_GET_VRING_BASE, q, 0);
	for (int i = 0; i < 20000 && f->base_replies == before && f->sock >= 0 && f->ctrl->conn; i++)
		vf_pump(f, 1);
	if (f->sock < 0 || !f->ctrl->conn)
		return 0;
	nvt_fuzz_check(f->base_replies == before + 1, "GET_VRING_BASE of ring %u: %u answers", q,
		       f->base_replies - before);
	nvt_fuzz_check((uint32_t)f->base_reply == q, "GET_VRING_BASE answered for ring %u, not %u",
		       (uint32_t)f->base_reply, q);
	if (started && !broken && r->q[q].num)
		nvt_fuzz_check((uint16_t)(f->base_reply >> 32) == r->q[q].used->idx,
			       "ring %u stopped at %u with %u completed", q,
			       (unsigned int)(uint16_t)(f->base_reply >> 32), r->q[q].used->idx);
	return (uint16_t)(f->base_reply >> 32);
}

/* Used elements name descriptors of the ring. */
static void check_used(struct run *r)
{
	for (unsigned int i = 0; i < 3; i++) {
		struct gq *g = &r->q[qs[i]];

		if (!g->num)
			continue;
		while (g->seen_used != g->used->idx) {
			const struct nvt_vring_used_elem *e = &g->used->ring[g->seen_used % g->num];

			nvt_fuzz_check(e->id < g->num, "ring %u: used id %u of %u", qs[i], e->id, g->num);
			g->seen_used++;
		}
	}
}

static void op_ctrl(struct run *r)
{
	struct vf *f = r->f;
	uint8_t what = u8(r) % 6;
	unsigned int q = qs[u8(r) % 3];

	switch (what) {
	case 0:
		vf_set_mem_table(f, u8(r) & 1);
		break;
	case 1:
		vf_set_state(f, NVT_VHOST_SET_VRING_ENABLE, q, u8(r) & 1);
		break;
	case 2: {
		/* A stop and a restart where it left off (what QEMU does around a migration). */
		uint16_t base = stop_ring(r, q);
		struct nvt_vhost_vring_addr_wire w;
		uint64_t a = RING_GPA(q) + NVT_VRING_DESC_SIZE(r->num);

		w = (struct nvt_vhost_vring_addr_wire){ .index = q, .desc = vf_uva(f, RING_GPA(q)),
			.used = vf_uva(f, (a + NVT_VRING_AVAIL_SIZE(r->num, 1) + 3) & ~3ull),
			.avail = vf_uva(f, a) };
		vf_set_state(f, NVT_VHOST_SET_VRING_NUM, q, r->num);
		vf_set_state(f, NVT_VHOST_SET_VRING_BASE, q, base);
		vf_send(f, NVT_VHOST_SET_VRING_ADDR, NVT_VHOST_FLAG_VERSION, &w, sizeof(w), NULL, 0);
		vf_set_vring_fd(f, NVT_VHOST_SET_VRING_KICK, q);
		break;
	}
	case 3:
		for (unsigned int i = 0; i < 3; i++)
			stop_ring(r, qs[i]);
		vf_send(f, NVT_VHOST_RESET_DEVICE, NVT_VHOST_FLAG_VERSION | NVT_VHOST_FLAG_NEED_REPLY,
			NULL, 0, NULL, 0);
		start(r);
		break;
	case 4:
		vf_set_vring_fd(f, NVT_VHOST_SET_VRING_CALL, q);
		break;
	default:
		/* RESET_DEVICE with rings running: it must wait for them. */
		vf_send(f, NVT_VHOST_RESET_DEVICE, NVT_VHOST_FLAG_VERSION | NVT_VHOST_FLAG_NEED_REPLY,
			NULL, 0, NULL, 0);
		vf_pump(f, 8);
		start(r);
		break;
	}
}

static void op_poke(struct run *r)
{
	uint64_t gpa = BUF_BASE + (uint64_t)u16(r) * 8;
	uint8_t len = u8(r);
	uint8_t *p = vf_gpa(r->f, gpa, len);

	if (p)
		for (unsigned int i = 0; i < len; i++)
			p[i] = u8(r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = { .in = { data, size, 0 } };
	uint8_t b;

	r.f = vf_create();
	b = u8(&r);
	r.pi = b & 1;
	r.num = (uint16_t)(1u << (1 + (b >> 1) % 7));	/* 2 .. 128 */
	r.next_buf = BUF_BASE;
	vf_realize(r.f, 4);
	start(&r);
	for (unsigned int ops = 0; r.in.i < r.in.n && ops < MAX_OPS; ops++) {
		switch (u8(&r) % 8) {
		case 3:
			op_desc(&r);
			break;
		case 4:
			op_avail(&r);
			break;
		case 5:
			vf_pump(r.f, 1 + u8(&r) % 16);
			break;
		case 6:
			op_ctrl(&r);
			break;
		case 7:
			op_poke(&r);
			break;
		default:
			op_req(&r);
			break;
		}
		check_used(&r);
	}
	vf_pump(r.f, 16);
	check_used(&r);
	for (unsigned int i = 0; i < 3; i++)
		stop_ring(&r, qs[i]);
	vf_destroy(r.f);
	return 0;
}
