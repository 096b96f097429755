/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz harness for the vhost-user protocol server: an input is a stream of messages from a hostile QEMU (headers, payloads, memfd and eventfd fds) over the real socket. */
#include "fuzz_vhost.h"

/*
 * The program (past its end it reads as zeroes), up to MAX_OPS of, op byte % 8:
 *   0..3 MSG      request (< C0h: one we serve, else C0h + any id 0..63), flags choice,
 *                 payload mode, payload
 *   4    PUMP     rounds of the poll group
 *   5    POKE     bytes into guest RAM at an offset, then a kick of a queue
 *   6    RECONNECT QEMU goes away and comes back (a fresh connection)
 *   7    START    the standard start sequence (features, table, rings 0, 2, 3)
 * MSG payload mode % 4: 0 raw (a size, then that many bytes, and 0..9
 * eventfds), otherwise the request's own layout with addresses made from
 * offsets into guest RAM (SET_MEM_TABLE regions, SET_VRING_ADDR) and the
 * fds it takes. Invariants, each an abort: every reply has flags 0x5 and
 * an 8-byte payload; the connection is freed once QEMU goes; no fd is
 * left open after the input; and the sanitizers.
 */

#define MAX_OPS	160

static const uint32_t reqs[] = {
	NVT_VHOST_GET_FEATURES, NVT_VHOST_SET_FEATURES, NVT_VHOST_SET_OWNER, NVT_VHOST_RESET_OWNER,
	NVT_VHOST_SET_MEM_TABLE, NVT_VHOST_SET_VRING_NUM, NVT_VHOST_SET_VRING_ADDR,
	NVT_VHOST_SET_VRING_BASE, NVT_VHOST_GET_VRING_BASE, NVT_VHOST_SET_VRING_KICK,
	NVT_VHOST_SET_VRING_CALL, NVT_VHOST_SET_VRING_ERR, NVT_VHOST_GET_PROTOCOL_FEATURES,
	NVT_VHOST_SET_PROTOCOL_FEATURES, NVT_VHOST_GET_QUEUE_NUM, NVT_VHOST_SET_VRING_ENABLE,
	NVT_VHOST_RESET_DEVICE,
};

struct run {
	struct nvt_fuzz_input in;
	struct vf *f;
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

static void bytes(struct run *r, void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = u8(r);
}

/* A ring index: mostly the ones a guest uses, sometimes any (past the last is checked). */
static uint32_t vq_index(struct run *r)
{
	uint8_t b = u8(r);

	return b < 0xf0 ? b % 5 : u8(r);
}

/* A user address: mostly inside our mapping of guest RAM at a 16-byte step, sometimes raw. */
static uint64_t addr(struct run *r)
{
	uint16_t o = u16(r);

	if (o >= 0xfff0)
		return u64(r);
	return vf_uva(r->f, (uint64_t)(o % (VF_G_SIZE / 16)) * 16);
}

static void close_fds(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		close(fds[i]);
}

static void op_msg(struct run *r)
{
	struct vf *f = r->f;
	uint8_t rb = u8(r), fb = u8(r), mode = u8(r);
	uint32_t req = rb < 0xc0 ? reqs[rb % NVT_ARRAY_SIZE(reqs)] : (uint32_t)(rb - 0xc0);
	uint32_t flags = NVT_VHOST_FLAG_VERSION;
	uint8_t p[512];
	uint32_t size = 0;
	int fds[16];
	unsigned int nr_fds = 0;

	memset(p, 0, sizeof(p));
	if (fb & 1)
		flags |= NVT_VHOST_FLAG_NEED_REPLY;
	if (fb & 0x80)
		flags = (uint32_t)fb << 24 | fb;	/* anything, version and reply bits included */
	if (mode % 4 == 0) {
		size = u16(r) % 300;
		bytes(r, p, size);
		nr_fds = u8(r) % 10;
		for (unsigned int i = 0; i < nr_fds; i++) {
			fds[i] = (fb & 2) ? dup(f->memfd) : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			nvt_fuzz_check(fds[i] >= 0, "fd");
		}
		vf_send(f, req, flags, p, size, fds, nr_fds);
		close_fds(fds, nr_fds);
		return;
	}
	switch (req) {
	case NVT_VHOST_SET_FEATURES:
	case NVT_VHOST_SET_PROTOCOL_FEATURES: {
		/* Mostly what Linux or a firmware acks, with a few bits flipped. */
		uint64_t v = mode & 4 ? VF_LINUX_FEATURES : NVT_VIRTIO_F_VERSION_1 | NVT_VHOST_F_PROTOCOL_FEATURES;

		if (req == NVT_VHOST_SET_PROTOCOL_FEATURES)
			v = NVT_VHOST_PF_MQ | NVT_VHOST_PF_REPLY_ACK | NVT_VHOST_PF_RESET_DEVICE;
		v ^= (uint64_t)(mode & 8 ? 1 : 0) << (u8(r) % 64);
		if (mode & 16)
			v = u64(r);
		memcpy(p, &v, 8);
		size = 8;
		break;
	}
	case NVT_VHOST_SET_MEM_TABLE: {
		uint32_t n = 1 + u8(r) % NVT_VHOST_MAX_REGIONS;
		struct nvt_vhost_mem_region_wire w;

		memcpy(p, &n, 4);
		for (uint32_t i = 0; i < n; i++) {
			uint8_t kind = u8(r);

			if (kind < 0x10) {
				bytes(r, &w, sizeof(w));
			} else {
				/* Pages of the memfd: gpa, size and offset in 4 KiB units. */
				uint64_t off = (uint64_t)(u8(r) % 256) << 12;

				w.guest_phys_addr = (uint64_t)u16(r) << 12;
				if (kind & 1)
					w.guest_phys_addr += VF_G_HIGH;
				w.memory_size = (uint64_t)(1 + u8(r)) << 12;
				w.mmap_offset = off;
				w.userspace_addr = vf_uva(f, off);
			}
			memcpy(p + 8 + 32 * i, &w, sizeof(w));
			fds[nr_fds++] = dup(f->memfd);
		}
		size = 8 + 32 * n;
		break;
	}
	case NVT_VHOST_SET_VRING_ADDR: {
		struct nvt_vhost_vring_addr_wire a = { .index = vq_index(r) };

		a.desc = addr(r);
		a.used = addr(r);
		a.avail = addr(r);
		if (mode & 4)
			a.flags = u32(r);
		memcpy(p, &a, sizeof(a));
		size = sizeof(a);
		break;
	}
	case NVT_VHOST_SET_VRING_NUM:
	case NVT_VHOST_SET_VRING_BASE:
	case NVT_VHOST_GET_VRING_BASE:
	case NVT_VHOST_SET_VRING_ENABLE: {
		uint32_t st[2] = { vq_index(r), 0 };

		st[1] = mode & 4 ? u32(r) : (req == NVT_VHOST_SET_VRING_NUM ? 1u << (u8(r) % 12) : u8(r) % 2);
		memcpy(p, st, 8);
		size = 8;
		break;
	}
	case NVT_VHOST_SET_VRING_KICK:
	case NVT_VHOST_SET_VRING_CALL:
	case NVT_VHOST_SET_VRING_ERR: {
		uint64_t v = vq_index(r) & NVT_VHOST_VRING_IDX_MASK;

		if (mode & 4)
			v |= NVT_VHOST_VRING_NOFD;
		if (mode & 8)
			v |= (uint64_t)u8(r) << 9;
		memcpy(p, &v, 8);
		size = 8;
		if (!(v & NVT_VHOST_VRING_NOFD) || (mode & 16)) {
			/* A kick fd we keep, to kick with; a memfd now and then (not pollable). */
			fds[nr_fds] = mode & 32 ? dup(f->memfd) : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			nvt_fuzz_check(fds[nr_fds] >= 0, "fd");
			nr_fds++;
		}
		if (nr_fds && req == NVT_VHOST_SET_VRING_KICK && !(v & ~NVT_VHOST_VRING_IDX_MASK) &&
		    (v & NVT_VHOST_VRING_IDX_MASK) < NVT_VHOST_MAX_VQS) {
			int *mine = &f->kick[v & NVT_VHOST_VRING_IDX_MASK];

			if (*mine >= 0)
				close(*mine);
			*mine = dup(fds[0]);
		}
		break;
	}
	default:
		/* No payload; sometimes one anyway. */
		if (mode & 4) {
			size = 8;
			bytes(r, p, 8);
		}
		break;
	}
	vf_send(f, req, flags, p, size, fds, nr_fds);
	close_fds(fds, nr_fds);
}

/* QEMU 7.2 starting Linux: features, the table, rings 0, 2 and 3, enable, call fds. */
static void op_start(struct run *r)
{
	struct vf *f = r->f;
	uint16_t num = (uint16_t)(1u << (1 + u8(r) % 8));

	vf_set_u64(f, NVT_VHOST_SET_FEATURES, VF_LINUX_FEATURES);
	vf_set_mem_table(f, true);
	vf_ring_setup(f, 0, num, 0x10000);
	vf_ring_setup(f, 2, num, 0x20000);
	vf_ring_setup(f, 3, num, 0x30000);
	for (unsigned int i = 0; i < 4; i++)
		vf_set_state(f, NVT_VHOST_SET_VRING_ENABLE, i, 1);
	for (unsigned int i = 0; i < 4; i++)
		vf_set_vring_fd(f, NVT_VHOST_SET_VRING_CALL, i);
}

static void op_poke(struct run *r)
{
	struct vf *f = r->f;
	uint32_t off = (uint32_t)u16(r) * 16 % VF_G_SIZE;
	uint8_t len = u8(r);
	uint64_t one = 1;
	uint32_t q;

	for (unsigned int i = 0; i < len && off + i < VF_G_SIZE; i++)
		f->mem[off + i] = u8(r);
	q = vq_index(r) % NVT_VHOST_MAX_VQS;	/* after the bytes, as the seeds have it */
	if (f->kick[q] >= 0 && write(f->kick[q], &one, 8) != 8) {
		/* a memfd as kick fd: writes land in it, nothing is kicked */
	}
	vf_pump(f, 4);
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

	r.f = vf_create();
	for (unsigned int ops = 0; r.in.i < r.in.n && ops < MAX_OPS; ops++) {
		switch (u8(&r) % 8) {
		case 4:
			vf_pump(r.f, 1 + u8(&r) % 16);
			break;
		case 5:
			op_poke(&r);
			break;
		case 6:
			vf_disconnect(r.f);
			vf_connect(r.f);
			break;
		case 7:
			op_start(&r);
			break;
		default:
			op_msg(&r);
			break;
		}
	}
	vf_pump(r.f, 8);	/* what is still due: a GET_VRING_BASE waiting for its ring to drain */
	vf_destroy(r.f);
	return 0;
}
