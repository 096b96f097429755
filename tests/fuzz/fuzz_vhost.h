/* SPDX-License-Identifier: BSD-3-Clause */
/* What the two vhost-user harnesses share: a target with RAM LUNs behind a real vhost-user-scsi socket, the QEMU end of it, memfd guest RAM, one poll group run by hand. */
#ifndef NVT_FUZZ_VHOST_H
#define NVT_FUZZ_VHOST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "nvt/config.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/target.h"
#include "nvt/util.h"
#include "nvt/vhost.h"
#include "../../transport/vhost/vhost_int.h"

/*
 * Guest RAM: one memfd of G_SIZE bytes. The standard table has two
 * regions with a hole between them, as QEMU's PC machine has below and
 * above 4 GiB: gpa 0 .. G_HALF at file offset 0, gpa G_HIGH .. + G_HALF
 * at offset G_HALF. QEMU's user address of a byte is where we mapped it.
 * No I/O poll groups: every queue runs on the target's main poll group,
 * which the harness runs itself (no threads: an input replays exactly).
 */
#define VF_G_SIZE	(1u << 20)
#define VF_G_HALF	(VF_G_SIZE / 2)
#define VF_G_HIGH	0x100000000ull
#define VF_NQN		"nqn.2026-11.io.nvt:fuzz-vhost"
#define VF_NS_BYTES	(256u << 10)
#define VF_LINUX_FEATURES	(NVT_VIRTIO_F_VERSION_1 | NVT_VHOST_F_PROTOCOL_FEATURES | \
				 NVT_VIRTIO_SCSI_F_T10_PI | NVT_VIRTIO_F_INDIRECT_DESC)

struct vf {
	struct nvt_target *tgt;
	struct nvt_vhost_ctrl *ctrl;
	char path[108];
	int sock;			/* QEMU's end; -1: closed */
	int memfd;
	uint8_t *mem;
	int kick[NVT_VHOST_MAX_VQS];	/* our copies of the kick fds we sent; -1: none */
	int call[NVT_VHOST_MAX_VQS];	/* and of the call fds */
	uint8_t rbuf[64];		/* a reply being read */
	size_t rlen;
	unsigned int replies;
	unsigned int base_replies;	/* GET_VRING_BASE replies, and the last one's payload */
	uint64_t base_reply;
	int fds_before;
	bool trace;
};

static inline int vf_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	nvt_fuzz_check(d, "opendir /proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static inline uint64_t vf_uva(const struct vf *f, uint64_t file_off)
{
	return (uint64_t)(uintptr_t)f->mem + file_off;
}

/* Our pointer to guest-physical @a of the standard table (NULL outside it). */
static inline void *vf_gpa(const struct vf *f, uint64_t a, uint64_t len)
{
	if (a < VF_G_HALF && len <= VF_G_HALF - a)
		return f->mem + a;
	if (a >= VF_G_HIGH && a - VF_G_HIGH < VF_G_HALF && len <= VF_G_HALF - (a - VF_G_HIGH))
		return f->mem + VF_G_HALF + (a - VF_G_HIGH);
	return NULL;
}

static inline void vf_ns(struct nvt_ns_cfg *ns, uint32_t nsid, uint32_t bs, uint8_t pi)
{
	memset(ns, 0, sizeof(*ns));
	ns->nsid = nsid;
	strcpy(ns->backend, "ram");
	ns->block_size = bs;
	ns->size = VF_NS_BYTES;
	ns->uuid[0] = ns->nguid[0] = (uint8_t)nsid;
	if (pi) {
		ns->pi.type = pi;
		strcpy(ns->pi.guard, "crc16");
		strcpy(ns->pi.location, "last");
		ns->pi.metadata_size = 8;
	}
}

/* Read what replies have come, each checked as QEMU checks them: flags exactly 0x5, an 8-byte payload. */
static inline void vf_drain(struct vf *f)
{
	for (;;) {
		ssize_t n;

		if (f->sock < 0)
			return;
		n = recv(f->sock, f->rbuf + f->rlen, 20 - f->rlen, MSG_DONTWAIT);
		if (n <= 0)
			return;
		f->rlen += (size_t)n;
		if (f->rlen >= 12) {
			uint32_t h[3];

			memcpy(h, f->rbuf, 12);
			nvt_fuzz_check(h[1] == (NVT_VHOST_FLAG_VERSION | NVT_VHOST_FLAG_REPLY),
				       "reply to %u has flags %#x", h[0], h[1]);
			nvt_fuzz_check(h[2] == 8, "reply to %u has a %u-byte payload", h[0], h[2]);
		}
		if (f->rlen == 20) {
			uint32_t req;

			memcpy(&req, f->rbuf, 4);
			if (req == NVT_VHOST_GET_VRING_BASE) {
				memcpy(&f->base_reply, f->rbuf + 12, 8);
				f->base_replies++;
			}
			f->replies++;
			f->rlen = 0;
		}
	}
}

/* One round of the poll group, then whatever it replied. */
static inline void vf_pump(struct vf *f, unsigned int rounds)
{
	for (unsigned int i = 0; i < rounds; i++) {
		nvt_poll_group_poll(f->tgt->pg, 0);
		vf_drain(f);
	}
}

static inline void vf_connect(struct vf *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strcpy(sa.sun_path, f->path);
	f->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	nvt_fuzz_check(f->sock >= 0, "socket");
	nvt_fuzz_check(!connect(f->sock, (struct sockaddr *)&sa, sizeof(sa)), "connect: %s",
		       strerror(errno));
	f->rlen = 0;
	for (int i = 0; i < 100 && !f->ctrl->conn; i++)
		nvt_poll_group_poll(f->tgt->pg, 0);
	nvt_fuzz_check(f->ctrl->conn, "the controller never took the connection");
}

/* QEMU goes away; the connection must be freed once its rings drain. */
static inline void vf_disconnect(struct vf *f)
{
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	for (int i = 0; i < 100000 && f->ctrl->conn; i++)
		nvt_poll_group_poll(f->tgt->pg, 0);
	nvt_fuzz_check(!f->ctrl->conn, "the connection was never freed after QEMU went away");
	nvt_poll_group_poll(f->tgt->pg, 0);	/* the deferred free */
	for (unsigned int i = 0; i < NVT_VHOST_MAX_VQS; i++) {
		if (f->kick[i] >= 0)
			close(f->kick[i]);
		if (f->call[i] >= 0)
			close(f->call[i]);
		f->kick[i] = f->call[i] = -1;
	}
}

static inline struct vf *vf_create(void)
{
	struct vf *f = calloc(1, sizeof(*f));
	struct nvt_ns_cfg ns[3];
	struct nvt_subsys_cfg ss = { .nqn = VF_NQN, .serial = "FUZZV", .model = "nvt fuzz",
				     .allow_any_host = true, .namespaces = ns, .nr_namespaces = 3 };
	struct nvt_config cfg = { .subsystems = &ss, .nr_subsystems = 1 };
	struct nvt_vhost_lun_cfg luns[3] = {
		{ .lun = 0, .subsystem = VF_NQN, .nsid = 1, .line = 1 },
		{ .lun = 1, .subsystem = VF_NQN, .nsid = 2, .line = 2 },
		{ .lun = 5, .subsystem = VF_NQN, .nsid = 3, .line = 3 },
	};
	struct nvt_vhost_cfg vc = { .luns = luns, .nr_luns = 3, .line = 1 };
	int ret;

	nvt_fuzz_check(f, "calloc");
	f->trace = getenv("NVT_FUZZ_TRACE") != NULL;
	nvt_log_set_level(f->trace ? NVT_LOG_DEBUG : NVT_LOG_OFF);
	f->fds_before = vf_count_fds();
	for (unsigned int i = 0; i < NVT_VHOST_MAX_VQS; i++)
		f->kick[i] = f->call[i] = -1;
	vf_ns(&ns[0], 1, 512, 0);
	vf_ns(&ns[1], 2, 512, 1);
	vf_ns(&ns[2], 3, 4096, 0);
	ret = nvt_target_create(&cfg, &f->tgt);
	nvt_fuzz_check(!ret, "target: %d", ret);
	ret = nvt_poll_group_create(&f->tgt->pg);
	nvt_fuzz_check(!ret, "poll group: %d", ret);
	ret = nvt_target_attach_pg(f->tgt, f->tgt->pg);
	nvt_fuzz_check(!ret, "attach: %d", ret);
	snprintf(f->path, sizeof(f->path), "/tmp/nvt-fuzz-vhost.%d", (int)getpid());
	strcpy(vc.socket, f->path);
	ret = nvt_vhost_ctrl_create(f->tgt, &vc, &f->ctrl);
	nvt_fuzz_check(!ret, "vhost controller: %d", ret);
	f->memfd = memfd_create("fuzz-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	nvt_fuzz_check(f->memfd >= 0 && !ftruncate(f->memfd, VF_G_SIZE), "memfd");
	/* As QEMU 7.2's memory-backend-memfd: nvtd refuses guest RAM that could shrink. */
	nvt_fuzz_check(!fcntl(f->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
		       "memfd seals");
	f->mem = mmap(NULL, VF_G_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	nvt_fuzz_check(f->mem != MAP_FAILED, "mmap");
	vf_connect(f);
	return f;
}

static inline void vf_destroy(struct vf *f)
{
	int fds;

	vf_disconnect(f);
	nvt_vhost_ctrl_destroy(f->ctrl);
	nvt_target_stop(f->tgt);
	nvt_target_detach_pg(f->tgt, f->tgt->pg);
	nvt_poll_group_destroy(f->tgt->pg);
	f->tgt->pg = NULL;
	nvt_target_destroy(f->tgt);
	munmap(f->mem, VF_G_SIZE);
	close(f->memfd);
	fds = vf_count_fds();
	nvt_fuzz_check(fds == f->fds_before, "%d fds open after the input, %d before", fds,
		       f->fds_before);
	free(f);
}

/* A whole message: header, @size payload bytes, @nr_fds fds. False: the server has closed. */
static inline bool vf_send(struct vf *f, uint32_t req, uint32_t flags, const void *payload,
			   uint32_t size, const int *fds, unsigned int nr_fds)
{
	struct {
		uint32_t req, flags, size;
		uint8_t p[512];
	} __attribute__((packed)) m;
	char cbuf[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { &m, 12 + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (f->sock < 0)
		return false;
	if (size > sizeof(m.p))
		size = sizeof(m.p);
	iov.iov_len = 12 + size;
	m.req = req;
	m.flags = flags;
	m.size = size;
	if (size)
		memcpy(m.p, payload, size);
	if (nr_fds) {
		struct cmsghdr *cm;

		if (nr_fds > 16)
			nr_fds = 16;
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nr_fds);
	}
	n = sendmsg(f->sock, &mh, MSG_NOSIGNAL);
	if (f->trace)
		fprintf(stderr, "trace: send %s (%u) flags %#x size %u fds %u: %zd\n",
			nvt_vhost_req_name(req), req, flags, size, nr_fds, n);
	/* The server processes it here, as it would the moment QEMU's write lands. */
	vf_pump(f, 2);
	return n == (ssize_t)(12 + size);
}

static inline void vf_set_u64(struct vf *f, uint32_t req, uint64_t v)
{
	vf_send(f, req, NVT_VHOST_FLAG_VERSION, &v, 8, NULL, 0);
}

static inline void vf_set_state(struct vf *f, uint32_t req, uint32_t idx, uint32_t num)
{
	uint32_t st[2] = { idx, num };

	vf_send(f, req, NVT_VHOST_FLAG_VERSION, st, 8, NULL, 0);
}

/* KICK or CALL for @idx with a fresh eventfd; we keep our copy to kick with or read. */
static inline void vf_set_vring_fd(struct vf *f, uint32_t req, unsigned int idx)
{
	uint64_t v = idx;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int *mine = req == NVT_VHOST_SET_VRING_KICK ? &f->kick[idx % NVT_VHOST_MAX_VQS] :
		    req == NVT_VHOST_SET_VRING_CALL ? &f->call[idx % NVT_VHOST_MAX_VQS] : NULL;

	nvt_fuzz_check(fd >= 0, "eventfd");
	vf_send(f, req, NVT_VHOST_FLAG_VERSION, &v, 8, &fd, 1);
	if (mine) {
		if (*mine >= 0)
			close(*mine);
		*mine = fd;
	} else {
		close(fd);
	}
}

/* The standard two-region table, fds dup()ed from the memfd; @ack: NEED_REPLY. */
static inline void vf_set_mem_table(struct vf *f, bool ack)
{
	struct {
		uint32_t n, pad;
		struct nvt_vhost_mem_region_wire r[2];
	} mt = { 2, 0, {
		{ 0, VF_G_HALF, vf_uva(f, 0), 0 },
		{ VF_G_HIGH, VF_G_HALF, vf_uva(f, VF_G_HALF), VF_G_HALF },
	} };
	int fds[2] = { f->memfd, f->memfd };

	vf_send(f, NVT_VHOST_SET_MEM_TABLE, NVT_VHOST_FLAG_VERSION | (ack ? NVT_VHOST_FLAG_NEED_REPLY : 0),
		&mt, sizeof(mt), fds, 2);
}

/* Ring @idx of @num entries, its three parts at guest-physical @ring_gpa (low region), reset to empty. */
static inline void vf_ring_setup(struct vf *f, unsigned int idx, uint16_t num, uint64_t ring_gpa)
{
	uint64_t d = ring_gpa, a = d + NVT_VRING_DESC_SIZE(num), u = (a + NVT_VRING_AVAIL_SIZE(num, 1) + 3) & ~3ull;
	struct nvt_vhost_vring_addr_wire w = { .index = idx, .desc = vf_uva(f, d), .used = vf_uva(f, u),
					       .avail = vf_uva(f, a) };

	memset(f->mem + d, 0, u + NVT_VRING_USED_SIZE(num, 1) - d);
	vf_set_state(f, NVT_VHOST_SET_VRING_NUM, idx, num);
	vf_set_state(f, NVT_VHOST_SET_VRING_BASE, idx, 0);
	vf_send(f, NVT_VHOST_SET_VRING_ADDR, NVT_VHOST_FLAG_VERSION, &w, sizeof(w), NULL, 0);
	vf_set_vring_fd(f, NVT_VHOST_SET_VRING_KICK, idx);
}

/* QEMU 7.2's realize: features, protocol features, queue count, owner, masked call and err fds. */
static inline void vf_realize(struct vf *f, unsigned int nvqs)
{
	uint64_t v = 0;

	vf_send(f, NVT_VHOST_GET_FEATURES, NVT_VHOST_FLAG_VERSION, NULL, 0, NULL, 0);
	vf_send(f, NVT_VHOST_GET_PROTOCOL_FEATURES, NVT_VHOST_FLAG_VERSION, NULL, 0, NULL, 0);
	v = NVT_VHOST_PF_MQ | NVT_VHOST_PF_REPLY_ACK;
	vf_set_u64(f, NVT_VHOST_SET_PROTOCOL_FEATURES, v);
	vf_send(f, NVT_VHOST_GET_QUEUE_NUM, NVT_VHOST_FLAG_VERSION, NULL, 0, NULL, 0);
	vf_send(f, NVT_VHOST_SET_OWNER, NVT_VHOST_FLAG_VERSION, NULL, 0, NULL, 0);
	vf_send(f, NVT_VHOST_GET_FEATURES, NVT_VHOST_FLAG_VERSION, NULL, 0, NULL, 0);
	for (unsigned int i = 0; i < nvqs; i++) {
		vf_set_vring_fd(f, NVT_VHOST_SET_VRING_CALL, i);
		vf_set_vring_fd(f, NVT_VHOST_SET_VRING_ERR, i);
	}
}

#endif /* NVT_FUZZ_VHOST_H */
