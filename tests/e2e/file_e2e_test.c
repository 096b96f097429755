/* SPDX-License-Identifier: BSD-3-Clause */
/* The "file" backend (io_uring, metadata in a sidecar) end to end over the loop transport, on tmpfs and on ext4 and XFS images: every command, PI at rest, restarts, a full ring. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "nvt/backend.h"
#include "nvt/crc.h"
#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/pi.h"
#include "nvt_test_caw.h"
#include "nvt_test_loop.h"

#define FILE_NQN	"nqn.2026-11.io.nvt:file"
#define FILE_HOST	"nqn.2014-08.org.nvmexpress:uuid:file-host"
#define QD		128
#define RING_SQES	128	/* NVT_URING_SQ_ENTRIES: what one channel's ring holds */
#define PRCHK_ALL	(NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG | NVT_PI_CHECK_REFTAG)
#define NR_NS		6

/*
 * The namespaces every test gets, each in files of its own: two without
 * metadata (nsid 2 with direct = false), and PI Types 1, 2, 3 with either
 * guard.
 */
static const struct nsfmt {
	uint32_t bs;
	uint32_t size;
	uint8_t type;
	const char *guard;
	uint16_t ms;
} fmts[NR_NS + 1] = {
	[1] = { 512, 4u << 20, 0, "crc16", 0 },
	[2] = { 4096, 4u << 20, 0, "crc16", 0 },
	[3] = { 512, 1u << 20, 1, "crc16", 8 },
	[4] = { 4096, 1u << 20, 2, "crc64", 16 },
	[5] = { 512, 1u << 20, 3, "crc16", 8 },
	[6] = { 4096, 1u << 20, 1, "crc64", 16 },
};

/* ---- the filesystems: tmpfs, and ext4 / XFS images loop-mounted in a private mount namespace ---- */

enum fs_kind { FS_TMPFS, FS_EXT4, FS_XFS, FS_NR };

static const char *const fs_names[FS_NR] = { "tmpfs", "ext4", "xfs" };

struct fs_env {
	enum fs_kind kind;
	char base[64];		/* mkdtemp: the image and its mount point */
	char img[128];
	char dir[128];		/* where the tests' files go */
	bool mounted;
	char skip[512];		/* why this filesystem's cases are skipped; "" = they run */
};

static struct fs_env fs;
static char mntns_err[128];	/* why there is no private mount namespace; "" = there is */

/*
 * Mounts live in a mount namespace of this process alone: nobody else sees
 * them, and the kernel takes them down (and frees the loop device) however
 * the process ends, a crash included.
 */
static void private_mount_ns(void)
{
	if (unshare(CLONE_NEWNS)) {
		snprintf(mntns_err, sizeof(mntns_err), "unshare(CLONE_NEWNS): %s (needs root)",
			 strerror(errno));
		return;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		snprintf(mntns_err, sizeof(mntns_err), "making / private: %s", strerror(errno));
}

/* Run @cmd through the shell; on failure its first output line goes to @why. Return: true if it succeeded. */
static bool sh(const char *cmd, char *why, size_t len)
{
	char full[1024], line[160], first[160] = "";
	FILE *p;
	int st;

	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	p = popen(full, "r");
	if (!p) {
		snprintf(why, len, "%s: %s", cmd, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), p))
		if (!first[0])
			snprintf(first, sizeof(first), "%s", line);
	st = pclose(p);
	if (st == 0)
		return true;
	first[strcspn(first, "\n")] = 0;
	snprintf(why, len, "`%s` failed (status %d): %s", cmd, st, first);
	return false;
}

static int fs_setup(void **state)
{
	/* XFS refuses filesystems under 300 MB; both images are sparse. */
	const char *mkfs = fs.kind == FS_EXT4 ? "mkfs.ext4 -q -F -E nodiscard" : "mkfs.xfs -q -f -K";
	uint64_t img_size = fs.kind == FS_EXT4 ? 256ull << 20 : 512ull << 20;
	char cmd[512], mnt[128];
	int fd;

	fs.mounted = false;
	fs.skip[0] = fs.base[0] = fs.img[0] = 0;
	if (fs.kind == FS_TMPFS) {
		snprintf(fs.dir, sizeof(fs.dir), "/dev/shm/nvt-file-e2e.XXXXXX");
		if (!mkdtemp(fs.dir))
			snprintf(fs.skip, sizeof(fs.skip), "mkdtemp %s: %s", fs.dir, strerror(errno));
		else
			print_message("[ FS       ] tmpfs at %s\n", fs.dir);
		return 0;
	}
	if (mntns_err[0]) {
		snprintf(fs.skip, sizeof(fs.skip), "cannot mount: %s", mntns_err);
		return 0;
	}
	if (fs.kind == FS_XFS && system("command -v mkfs.xfs >/dev/null 2>&1")) {
		snprintf(fs.skip, sizeof(fs.skip), "no mkfs.xfs (xfsprogs not installed)");
		return 0;
	}
	snprintf(fs.base, sizeof(fs.base), "/tmp/nvt-file-e2e.XXXXXX");
	if (!mkdtemp(fs.base)) {
		snprintf(fs.skip, sizeof(fs.skip), "mkdtemp %s: %s", fs.base, strerror(errno));
		fs.base[0] = 0;
		return 0;
	}
	snprintf(fs.img, sizeof(fs.img), "%s/img", fs.base);
	snprintf(mnt, sizeof(mnt), "%s/mnt", fs.base);
	fd = open(fs.img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)img_size)) {
		snprintf(fs.skip, sizeof(fs.skip), "sparse image %s: %s", fs.img, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s %s", mkfs, fs.img);
	if (!sh(cmd, fs.skip, sizeof(fs.skip)))
		return 0;
	if (mkdir(mnt, 0700)) {
		snprintf(fs.skip, sizeof(fs.skip), "mkdir %s: %s", mnt, strerror(errno));
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "mount -o loop %s %s", fs.img, mnt);
	if (!sh(cmd, fs.skip, sizeof(fs.skip)))
		return 0;
	fs.mounted = true;
	snprintf(fs.dir, sizeof(fs.dir), "%s", mnt);
	/* The loop device holds the image open: nothing of it outlives the mount. */
	unlink(fs.img);
	print_message("[ FS       ] %s on a %llu MiB loop image at %s\n", fs_names[fs.kind],
		      (unsigned long long)(img_size >> 20), fs.dir);
	return 0;
}

static int fs_teardown(void **state)
{
	char mnt[128];

	if (fs.kind == FS_TMPFS) {
		if (!fs.skip[0] && rmdir(fs.dir))
			fprintf(stderr, "file_e2e: rmdir %s: %s\n", fs.dir, strerror(errno));
		return 0;
	}
	if (!fs.base[0])
		return 0;
	snprintf(mnt, sizeof(mnt), "%s/mnt", fs.base);
	if (fs.mounted && umount2(mnt, 0) && umount2(mnt, MNT_DETACH))
		fprintf(stderr, "file_e2e: umount %s: %s\n", mnt, strerror(errno));
	fs.mounted = false;
	rmdir(mnt);
	unlink(fs.img);
	rmdir(fs.base);
	return 0;
}

#define NEED_FS()								\
	do {									\
		if (fs.skip[0]) {						\
			print_message("[  SKIP    ] %s: %s\n", fs_names[fs.kind], fs.skip); \
			skip();							\
		}								\
	} while (0)

/* ---- a target over files ---- */

struct ffix {
	struct nvt_target *tgt;
	struct nvt_loop_ctrl ctrl;
	struct nvt_subsys *subsys;
	struct nvt_config cfg;
	struct nvt_subsys_cfg ss;
	struct nvt_ns_cfg ns[NR_NS];
	char data[NR_NS + 1][160];
	char md[NR_NS + 1][160];
};

static void target_up(struct ffix *f)
{
	assert_int_equal(nvt_target_create(&f->cfg, &f->tgt), 0);
	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, FILE_NQN, FILE_HOST, 2, QD, 0, &f->ctrl), 0);
	f->subsys = nvt_target_find_subsys(f->tgt, FILE_NQN);
	assert_non_null(f->subsys);
	for (uint32_t nsid = 1; nsid <= NR_NS; nsid++)
		assert_ptr_equal(f->subsys->ns[nsid]->be, &nvt_uring_backend_ops);
}

static void target_down(struct ffix *f)
{
	if (!f->tgt)
		return;
	nvt_loop_ctrl_disconnect(&f->ctrl);
	nvt_target_destroy(f->tgt);
	f->tgt = NULL;
}

static int setup(void **state)
{
	static unsigned int seq;
	struct ffix *f = calloc(1, sizeof(*f));

	*state = f;
	if (fs.skip[0])
		return 0;
	seq++;
	for (uint32_t nsid = 1; nsid <= NR_NS; nsid++) {
		const struct nsfmt *m = &fmts[nsid];
		struct nvt_ns_cfg *ns = &f->ns[nsid - 1];

		ns->nsid = nsid;
		ns->size = m->size;
		ns->block_size = m->bs;
		ns->uuid[0] = ns->nguid[0] = (uint8_t)nsid;
		ns->pi.type = m->type;
		strcpy(ns->pi.guard, m->guard);
		strcpy(ns->pi.location, "last");
		ns->pi.metadata_size = m->ms;
		/* As target/config.c stores `backend = "file"; path = ...; metadata_path = ...;`. */
		nvt_test_ns_backend(ns, "file");
		snprintf(f->data[nsid], sizeof(f->data[nsid]), "%s/t%u-ns%u.data", fs.dir, seq, nsid);
		assert_int_equal(nvt_test_ns_set_path(ns, "path", f->data[nsid]), 0);
		/* One namespace through the page cache: both of the backend's I/O paths run. */
		if (nsid == 2)
			assert_int_equal(nvt_test_ns_set_bool(ns, "direct", false), 0);
		if (m->ms) {
			snprintf(f->md[nsid], sizeof(f->md[nsid]), "%s/t%u-ns%u.md", fs.dir, seq, nsid);
			assert_int_equal(nvt_test_ns_set_path(ns, "metadata_path", f->md[nsid]), 0);
		}
	}
	strcpy(f->ss.nqn, FILE_NQN);
	strcpy(f->ss.serial, "FILE");
	strcpy(f->ss.model, "nvt file");
	f->ss.allow_any_host = true;
	f->ss.namespaces = f->ns;
	f->ss.nr_namespaces = NR_NS;
	f->cfg.subsystems = &f->ss;
	f->cfg.nr_subsystems = 1;
	target_up(f);
	return 0;
}

static int teardown(void **state)
{
	struct ffix *f = *state;

	target_down(f);
	for (uint32_t nsid = 1; nsid <= NR_NS; nsid++) {
		if (f->data[nsid][0])
			unlink(f->data[nsid]);
		if (f->md[nsid][0])
			unlink(f->md[nsid]);
		nvt_test_ns_cfg_fini(&f->ns[nsid - 1]);
	}
	free(f);
	return 0;
}

/* ---- helpers ---- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_random(void *buf, size_t len, uint64_t seed)
{
	uint8_t *b = buf;

	seed |= 1;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rnd(&seed);
}

static int run(struct nvt_loop_queue *q, struct nvt_sqe *sqe, void *buf, size_t len)
{
	struct nvt_cqe cqe;
	int ret = nvt_loop_exec(q, sqe, buf, len, &cqe);

	return ret < 0 ? ret : ret & ~NVT_SC_DNR;
}

static struct nvt_ns *ns_of(struct ffix *f, uint32_t nsid)
{
	return f->subsys->ns[nsid];
}

/* Plain write or read of @nlb blocks from @slba, in MDTS-sized commands. */
static void plain_io(struct ffix *f, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
		     uint8_t *buf)
{
	uint32_t bs = fmts[nsid].bs, max = NVT_LOOP_MAX_DATA / bs;
	struct nvt_sqe sqe;

	for (uint32_t done = 0; done < nlb; ) {
		uint32_t n = nlb - done < max ? nlb - done : max;

		nvt_host_sqe_rw(&sqe, opc, nsid, slba + done, n);
		assert_int_equal(run(f->ctrl.io[0], &sqe, buf + (size_t)done * bs, (size_t)n * bs), 0);
		done += n;
	}
}

/* The newest error log entry: its LBA, and its status in @status. */
static uint64_t last_error_lba(struct ffix *f, uint16_t *status)
{
	struct nvme_error_log_page e;
	struct nvt_sqe sqe;

	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_ERROR, sizeof(e), 0, false);
	assert_int_equal(run(f->ctrl.admin, &sqe, &e, sizeof(e)), 0);
	*status = (uint16_t)((le16toh(e.status_field) >> 1) & ~NVT_SC_DNR);
	return le64toh(e.lba);
}

/* Flip bit 0 of byte @off of @path, behind the target's back. */
static void flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 1;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void read_file(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static int dsm(struct ffix *f, uint32_t nsid, const uint64_t (*r)[2], unsigned int n, bool ad)
{
	struct nvme_dsm_range ranges[16];
	struct nvt_sqe sqe;
	size_t len = nvt_host_sqe_dsm(&sqe, nsid, ranges, r, n, ad);

	return run(f->ctrl.io[0], &sqe, ranges, len);
}

/*
 * Copy of @n ranges {slba, nlb, eilbrt} to @sdlba in descriptor format
 * @fmt; PRINFOR/PRINFOW and the destination's ref tag @dref (48 bits with
 * the 64-bit guard).
 */
static int copy(struct ffix *f, uint32_t nsid, unsigned int fmt, const uint64_t (*r)[3],
		unsigned int n, uint64_t sdlba, uint8_t prinfor, uint8_t prinfow, uint64_t dref)
{
	union {
		struct nvt_copy_desc0 d0[8];
		struct nvt_copy_desc1 d1[8];
	} d;
	struct nvt_sqe sqe;

	memset(&d, 0, sizeof(d));
	for (unsigned int i = 0; i < n; i++) {
		if (fmt == 0) {
			d.d0[i].slba = htole64(r[i][0]);
			d.d0[i].nlb = htole16((uint16_t)(r[i][1] - 1));
			d.d0[i].eilbrt = htole32((uint32_t)r[i][2]);
		} else {
			d.d1[i].slba = htole64(r[i][0]);
			d.d1[i].nlb = htole16((uint16_t)(r[i][1] - 1));
			for (int b = 0; b < 6; b++)
				d.d1[i].elbt[b] = (uint8_t)(r[i][2] >> (8 * b));
		}
	}
	nvt_host_sqe_init(&sqe, nvme_cmd_copy, nsid);
	sqe.common.cdw3 = htole32((uint32_t)(dref >> 32) & 0xffff);
	sqe.common.cdw10 = htole32((uint32_t)sdlba);
	sqe.common.cdw11 = htole32((uint32_t)(sdlba >> 32));
	sqe.common.cdw12 = htole32((n - 1) | fmt << 8 | (uint32_t)prinfor << 12 |
				   (uint32_t)prinfow << 26);
	sqe.common.cdw14 = htole32((uint32_t)dref);
	return run(f->ctrl.io[0], &sqe, &d,
		   n * (fmt ? sizeof(struct nvt_copy_desc1) : sizeof(struct nvt_copy_desc0)));
}

/* Fused Compare (@cmp) and Write (@wr) of @nlb blocks at @slba, both waited for. */
static void caw(struct nvt_loop_queue *q, uint32_t nsid, uint64_t slba, uint32_t nlb, void *cmp,
		void *wr, size_t len, struct done *d1, struct done *d2)
{
	struct iovec i1 = { cmp, len }, i2 = { wr, len };
	struct nvt_sqe s1, s2;

	memset(d1, 0, sizeof(*d1));
	memset(d2, 0, sizeof(*d2));
	nvt_host_sqe_rw(&s1, nvme_cmd_compare, nsid, slba, nlb);
	s1.common.flags |= 1;
	nvt_host_sqe_rw(&s2, nvme_cmd_write, nsid, slba, nlb);
	s2.common.flags |= 2;
	assert_int_equal(nvt_loop_submit(q, &s1, &i1, 1, nvt_test_on_done, d1), 0);
	assert_int_equal(nvt_loop_submit(q, &s2, &i2, 1, nvt_test_on_done, d2), 0);
	assert_true(nvt_test_wait(q, d1));
	assert_true(nvt_test_wait(q, d2));
	assert_int_equal(d1->count, 1);
	assert_int_equal(d2->count, 1);
}

/* ---- whole namespace, mixed sizes, scattered iovecs, many commands in flight ---- */

struct cmd {
	struct iovec iov[NVT_LOOP_MAX_IOV];
	unsigned int cnt;
	uint64_t slba;
	uint32_t nlb;
	struct done d;
};

/*
 * Cut the namespace into commands of mixed sizes; each command's buffer is
 * up to 16 segments at scattered, mostly unaligned places of @arena (every
 * fourth one a single page-aligned segment: the zero-copy O_DIRECT path).
 * Return: how many commands.
 */
static unsigned int plan(uint32_t nsid, uint64_t seed, struct cmd *cmds, uint8_t *arena,
			 size_t arena_len)
{
	static const uint32_t sizes512[] = { 1, 8, 256, 3, 64, 255, 17, 128, 2, 200 };
	static const uint32_t sizes4k[] = { 1, 32, 3, 8, 31, 16, 2 };
	uint32_t bs = fmts[nsid].bs, nblocks = fmts[nsid].size / bs;
	const uint32_t *sizes = bs == 512 ? sizes512 : sizes4k;
	unsigned int nsizes = bs == 512 ? 10 : 7, n = 0;
	size_t pos = 0;

	for (uint64_t lba = 0; lba < nblocks; n++) {
		struct cmd *c = &cmds[n];
		uint32_t nlb = sizes[rnd(&seed) % nsizes];
		size_t len, left;

		if (nlb > nblocks - lba)
			nlb = (uint32_t)(nblocks - lba);
		len = (size_t)nlb * bs;
		memset(c, 0, sizeof(*c));
		c->slba = lba;
		c->nlb = nlb;
		if (n % 4 == 0) {
			pos = (pos + 4095) & ~(size_t)4095;
			c->iov[0] = (struct iovec){ arena + pos, len };
			c->cnt = 1;
			pos += len;
		} else {
			unsigned int segs = 1 + (unsigned int)(rnd(&seed) % NVT_LOOP_MAX_IOV);

			if (segs > len)
				segs = (unsigned int)len;
			left = len;
			for (unsigned int i = 0; i < segs; i++) {
				size_t l = i + 1 == segs ? left :
					   1 + rnd(&seed) % (2 * left / (segs - i) - 1);

				if (l > left - (segs - i - 1))
					l = left - (segs - i - 1);
				pos += rnd(&seed) % 64;
				c->iov[i] = (struct iovec){ arena + pos, l };
				pos += l;
				left -= l;
			}
			c->cnt = segs;
		}
		assert_true(pos <= arena_len);
		lba += nlb;
	}
	return n;
}

static void iov_copy(const struct cmd *c, uint8_t *img, uint32_t bs, bool to_iov)
{
	uint8_t *p = img + c->slba * bs;

	for (unsigned int i = 0; i < c->cnt; i++) {
		if (to_iov)
			memcpy(c->iov[i].iov_base, p, c->iov[i].iov_len);
		else
			memcpy(p, c->iov[i].iov_base, c->iov[i].iov_len);
		p += c->iov[i].iov_len;
	}
}

/* Submit every command of @cmds on the two I/O queues by turns, then wait for all. */
static void run_all(struct ffix *f, uint8_t opc, uint32_t nsid, struct cmd *cmds, unsigned int n)
{
	struct nvt_sqe sqe;

	for (unsigned int i = 0; i < n; i++) {
		nvt_host_sqe_rw(&sqe, opc, nsid, cmds[i].slba, cmds[i].nlb);
		assert_int_equal(nvt_test_submit(f->ctrl.io[i % 2], &sqe, cmds[i].iov, cmds[i].cnt,
						 nvt_test_on_done, &cmds[i].d), 0);
	}
	assert_true(nvt_test_drain(f->ctrl.io[0]));
	assert_true(nvt_test_drain(f->ctrl.io[1]));
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(cmds[i].d.count, 1);
		assert_int_equal(nvt_test_status(&cmds[i].d), 0);
	}
}

static void test_whole_namespace(void **state)
{
	struct ffix *f = *state;

	NEED_FS();
	for (uint32_t nsid = 1; nsid <= 2; nsid++) {
		uint32_t bs = fmts[nsid].bs, size = fmts[nsid].size, nblocks = size / bs;
		size_t arena_len = 2 * (size_t)size + (size_t)nblocks * (16 * 64 + 4096);
		struct cmd *cmds = calloc(nblocks, sizeof(*cmds));
		uint8_t *img = malloc(size), *back = malloc(size), *disk = malloc(size);
		uint8_t *arena = NULL;
		struct nvt_sqe sqe;
		unsigned int n;

		assert_int_equal(posix_memalign((void **)&arena, 4096, arena_len), 0);
		fill_random(img, size, 0x1234 + nsid);
		n = plan(nsid, 7 + nsid, cmds, arena, arena_len);
		for (unsigned int i = 0; i < n; i++)
			iov_copy(&cmds[i], img, bs, true);
		run_all(f, nvme_cmd_write, nsid, cmds, n);
		nvt_host_sqe_init(&sqe, nvme_cmd_flush, nsid);
		assert_int_equal(run(f->ctrl.io[1], &sqe, NULL, 0), 0);

		/* Read back cut differently, into other scattered segments. */
		memset(arena, 0xee, arena_len);
		memset(back, 0, size);
		n = plan(nsid, 99 + nsid, cmds, arena, arena_len);
		run_all(f, nvme_cmd_read, nsid, cmds, n);
		for (unsigned int i = 0; i < n; i++)
			iov_copy(&cmds[i], back, bs, false);
		assert_memory_equal(back, img, size);
		/* And it is in the file itself, block for block. */
		read_file(f->data[nsid], 0, disk, size);
		assert_memory_equal(disk, img, size);
		free(arena);
		free(disk);
		free(back);
		free(img);
		free(cmds);
	}
}

/* ---- every command of the command table, no PI ---- */

static void expect_blocks(struct ffix *f, uint32_t nsid, uint64_t slba, uint32_t nlb,
			  const uint8_t *want)
{
	uint32_t bs = fmts[nsid].bs;
	uint8_t *got = malloc((size_t)nlb * bs);

	plain_io(f, nvme_cmd_read, nsid, slba, nlb, got);
	assert_memory_equal(got, want, (size_t)nlb * bs);
	free(got);
}

static void test_command_table(void **state)
{
	struct ffix *f = *state;

	NEED_FS();
	for (uint32_t nsid = 1; nsid <= 2; nsid++) {
		uint32_t bs = fmts[nsid].bs, nblocks = fmts[nsid].size / bs;
		const uint32_t N = 256;		/* the pattern's blocks */
		uint8_t *p = malloc((size_t)N * bs), *want = malloc((size_t)N * bs);
		uint8_t *zero = calloc(N, bs), *q = malloc(4 * (size_t)bs), *r = malloc(4 * (size_t)bs);
		struct done d1, d2;
		struct nvt_sqe sqe;
		uint16_t status;

		/* Write, Read, Flush (this namespace, and all of them). */
		fill_random(p, (size_t)N * bs, 77 + nsid);
		plain_io(f, nvme_cmd_write, nsid, 0, N, p);
		expect_blocks(f, nsid, 0, N, p);
		nvt_host_sqe_init(&sqe, nvme_cmd_flush, nsid);
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), 0);
		nvt_host_sqe_init(&sqe, nvme_cmd_flush, 0xffffffff);
		assert_int_equal(run(f->ctrl.io[1], &sqe, NULL, 0), 0);
		memcpy(want, p, (size_t)N * bs);

		/* Write Zeroes without DEAC, then with it (CDW12 bit 25). */
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, nsid, 16, 8, 0, 0, 0, 0);
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), 0);
		memset(want + 16 * bs, 0, 8 * (size_t)bs);
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, nsid, 33, 7, 0, 0, 0, 0);
		sqe.rw.control |= htole16(1u << 9);
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), 0);
		memset(want + 33 * bs, 0, 7 * (size_t)bs);
		expect_blocks(f, nsid, 0, N, want);
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, nsid, nblocks - 2, 4, 0, 0, 0, 0);
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), NVME_SC_LBA_RANGE);

		/* DSM deallocate reads back zeroes; attributes without AD change nothing. */
		assert_int_equal(dsm(f, nsid, (const uint64_t[][2]){ { 48, 2 }, { 60, 3 } }, 2, true), 0);
		memset(want + 48 * bs, 0, 2 * (size_t)bs);
		memset(want + 60 * bs, 0, 3 * (size_t)bs);
		assert_int_equal(dsm(f, nsid, (const uint64_t[][2]){ { 0, 4 } }, 1, false), 0);
		expect_blocks(f, nsid, 0, N, want);

		/* Compare: equal; one byte off in block 69 (85h, that LBA in the error log). */
		nvt_host_sqe_rw(&sqe, nvme_cmd_compare, nsid, 64, 8);
		assert_int_equal(run(f->ctrl.io[0], &sqe, want + 64 * bs, 8 * (size_t)bs), 0);
		want[69 * bs + 11] ^= 0x40;
		assert_int_equal(run(f->ctrl.io[0], &sqe, want + 64 * bs, 8 * (size_t)bs),
				 NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED));
		assert_int_equal(NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED), 0x285);
		assert_int_equal(last_error_lba(f, &status), 69);
		assert_int_equal(status, 0x285);
		want[69 * bs + 11] ^= 0x40;
		nvt_host_sqe_rw(&sqe, nvme_cmd_compare, nsid, nblocks - 1, 2);
		assert_int_equal(run(f->ctrl.io[0], &sqe, want, 2 * (size_t)bs), NVME_SC_LBA_RANGE);

		/* Verify: readable; past the end. */
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_verify, nsid, 0, N, 0, 0, 0, 0);
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), 0);
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_verify, nsid, nblocks - 1, 2, 0, 0, 0, 0);
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), NVME_SC_LBA_RANGE);

		/* Copy, format 0: three ranges, the third overlapping the first's source. */
		assert_int_equal(copy(f, nsid, 0, (const uint64_t[][3]){ { 100, 4, 0 }, { 120, 4, 0 },
								 { 102, 4, 0 } }, 3, 200, 0, 0, 0), 0);
		memcpy(want + 200 * bs, want + 100 * bs, 4 * (size_t)bs);
		memcpy(want + 204 * bs, want + 120 * bs, 4 * (size_t)bs);
		memcpy(want + 208 * bs, want + 102 * bs, 4 * (size_t)bs);
		/* Format 1 (no PI: either format). */
		assert_int_equal(copy(f, nsid, 1, (const uint64_t[][3]){ { 130, 3, 0 }, { 140, 5, 0 } },
				      2, 220, 0, 0, 0), 0);
		memcpy(want + 220 * bs, want + 130 * bs, 3 * (size_t)bs);
		memcpy(want + 223 * bs, want + 140 * bs, 5 * (size_t)bs);
		expect_blocks(f, nsid, 0, N, want);
		/* A source overlapping its destination, either way: the source as it was. */
		assert_int_equal(copy(f, nsid, 0, (const uint64_t[][3]){ { 150, 16, 0 } }, 1, 154,
				      0, 0, 0), 0);
		memmove(want + 154 * bs, want + 150 * bs, 16 * (size_t)bs);
		assert_int_equal(copy(f, nsid, 1, (const uint64_t[][3]){ { 174, 16, 0 } }, 1, 170,
				      0, 0, 0), 0);
		memmove(want + 170 * bs, want + 174 * bs, 16 * (size_t)bs);
		expect_blocks(f, nsid, 0, N, want);
		assert_int_equal(copy(f, nsid, 0, (const uint64_t[][3]){ { nblocks - 2, 4, 0 } }, 1, 0,
				      0, 0, 0), NVME_SC_LBA_RANGE);
		assert_int_equal(copy(f, nsid, 0, (const uint64_t[][3]){ { 0, 4, 0 } }, 1, nblocks - 2,
				      0, 0, 0), NVME_SC_LBA_RANGE);

		/* Fused Compare and Write: a match writes; a mismatch writes nothing. */
		fill_random(q, 4 * (size_t)bs, 5);
		fill_random(r, 4 * (size_t)bs, 6);
		caw(f->ctrl.io[1], nsid, 240, 4, want + 240 * bs, q, 4 * (size_t)bs, &d1, &d2);
		assert_int_equal(nvt_test_status(&d1), 0);
		assert_int_equal(nvt_test_status(&d2), 0);
		memcpy(want + 240 * bs, q, 4 * (size_t)bs);
		caw(f->ctrl.io[1], nsid, 240, 4, p + 240 * bs, r, 4 * (size_t)bs, &d1, &d2);
		assert_int_equal(nvt_test_status(&d1), NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED));
		assert_int_equal(nvt_test_status(&d2), NVME_SC_FUSED_FAIL);
		expect_blocks(f, nsid, 0, N, want);

		/* Write Zeroes over the whole namespace (more than any buffer). */
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, nsid, 0, nblocks, 0, 0, 0, 0);
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), 0);
		expect_blocks(f, nsid, 0, N, zero);
		expect_blocks(f, nsid, nblocks - N, N, zero);
		free(r);
		free(q);
		free(zero);
		free(want);
		free(p);
	}
}

/* ---- protection information in the sidecar ---- */

static unsigned int pisz(uint32_t nsid)
{
	return strcmp(fmts[nsid].guard, "crc64") ? 8 : 16;
}

/*
 * The ref tag a host gives a command at @slba: Type 1 the LBA; Type 2 any
 * (ours: offset from the LBA, so commands over one range agree); Type 3 opaque.
 */
static uint64_t tag_of(uint32_t nsid, uint64_t slba)
{
	return fmts[nsid].type == 1 ? slba : 0x10000 + slba;
}

/* @nlb extended blocks at @slba with correct PI (what a PI-capable host sends, PRACT=0). */
static uint8_t *ext_buf(struct ffix *f, uint32_t nsid, uint64_t slba, uint32_t nlb, uint16_t apptag,
			uint64_t seed)
{
	const struct nvt_ns *ns = ns_of(f, nsid);
	size_t blk = ns->block_size + ns->md_size;
	uint8_t *buf = malloc(blk * nlb);
	struct iovec iov = { buf, blk * nlb };
	struct nvt_pi_ctx ctx;

	fill_random(buf, blk * nlb, seed);
	nvt_pi_ctx_init(&ctx, &ns->pi, slba, PRCHK_ALL, tag_of(nsid, slba), apptag, 0xffff);
	assert_int_equal(nvt_pi_generate_ext(&ctx, &iov, 1, nlb), 0);
	return buf;
}

static int pi_io(struct ffix *f, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
		 uint8_t prinfo, uint16_t apptag, uint16_t appmask, void *buf, size_t len)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_rw_pi(&sqe, opc, nsid, slba, nlb, prinfo, tag_of(nsid, slba), apptag, appmask);
	return run(f->ctrl.io[0], &sqe, buf, len);
}

static uint64_t scrub_lba[4];
static enum nvt_pi_err_type scrub_type[4];
static unsigned int scrub_n;

static void scrub_bad(uint64_t lba, const struct nvt_pi_err *err, void *arg)
{
	if (scrub_n < 4) {
		scrub_lba[scrub_n] = lba;
		scrub_type[scrub_n] = err->type;
	}
	scrub_n++;
}

/* nvt_ns_scrub() finds exactly one bad block, @lba, of kind @type (NONE: finds nothing). */
static void expect_scrub(struct ffix *f, uint32_t nsid, uint64_t lba, enum nvt_pi_err_type type)
{
	uint64_t nr_bad = 99;

	scrub_n = 0;
	assert_int_equal(nvt_ns_scrub(ns_of(f, nsid), scrub_bad, NULL, &nr_bad), 0);
	if (type == NVT_PI_ERR_NONE) {
		assert_int_equal(nr_bad, 0);
		return;
	}
	assert_int_equal(nr_bad, 1);
	assert_int_equal(scrub_lba[0], lba);
	assert_int_equal(scrub_type[0], type);
}

/* A read of [slba, slba + nlb) (PRACT=0, every check) fails with @st at @lba, as the error log says. */
static void expect_read_fails(struct ffix *f, uint32_t nsid, uint64_t slba, uint32_t nlb,
			      uint16_t apptag, int st, uint64_t lba)
{
	const struct nvt_ns *ns = ns_of(f, nsid);
	size_t len = (size_t)nlb * (ns->block_size + ns->md_size);
	uint8_t *buf = malloc(len);
	uint16_t status;

	assert_int_equal(pi_io(f, nvme_cmd_read, nsid, slba, nlb, PRCHK_ALL, apptag, 0xffff, buf, len),
			 st);
	assert_int_equal(last_error_lba(f, &status), lba);
	assert_int_equal(status, st);
	free(buf);
}

static void test_pi_sidecar(void **state)
{
	struct ffix *f = *state;

	NEED_FS();
	for (uint32_t nsid = 3; nsid <= NR_NS; nsid++) {
		struct nvt_ns *ns = ns_of(f, nsid);
		uint32_t bs = ns->block_size, ms = ns->md_size, ps = pisz(nsid);
		uint8_t type = fmts[nsid].type;
		size_t eb = bs + ms;
		uint8_t *d = malloc(8 * (size_t)bs), *back = malloc(8 * eb), *zero = calloc(8, bs);
		uint8_t *good = ext_buf(f, nsid, 32, 4, 0xbeef, 3 * nsid);
		uint8_t *bad = malloc(4 * eb), md[16];
		struct nvt_pi_ctx ctx;
		struct nvt_pi_err err;
		struct nvt_sqe sqe;
		struct iovec iov;
		uint16_t status;

		/* PRACT=1: data only on the wire, PI made here and stored in the sidecar. */
		fill_random(d, 8 * (size_t)bs, 11 * nsid);
		assert_int_equal(pi_io(f, nvme_cmd_write, nsid, 8, 8, NVT_PI_PRACT | PRCHK_ALL, 0x1234,
				       0xffff, d, 8 * (size_t)bs), 0);
		assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 8, 8, NVT_PI_PRACT | PRCHK_ALL, 0x1234,
				       0xffff, back, 8 * (size_t)bs), 0);
		assert_memory_equal(back, d, 8 * (size_t)bs);
		/* PRACT=0 gives the tuples back: right for the data, the tags, the type. */
		assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 8, 8, PRCHK_ALL, 0x1234, 0xffff, back,
				       8 * eb), 0);
		nvt_pi_ctx_init(&ctx, &ns->pi, 8, PRCHK_ALL, tag_of(nsid, 8), 0x1234, 0xffff);
		iov = (struct iovec){ back, 8 * eb };
		assert_int_equal(nvt_pi_verify_ext(&ctx, &iov, 1, 8, &err), 0);
		for (int b = 0; b < 8; b++)
			assert_memory_equal(back + b * eb, d + b * bs, bs);
		/* The sidecar holds block 9's tuple at 9 * metadata_size, guard first, big-endian. */
		read_file(f->md[nsid], 9 * (uint64_t)ms, md, ms);
		if (ps == 8) {
			uint16_t g = nvt_crc16_t10dif(0, d + bs, bs);

			assert_int_equal(md[ms - ps], g >> 8);
			assert_int_equal(md[ms - ps + 1], g & 0xff);
		} else {
			uint64_t g = nvt_crc64_nvme(0, d + bs, bs);

			for (int i = 0; i < 8; i++)
				assert_int_equal(md[ms - ps + i], (uint8_t)(g >> (56 - 8 * i)));
		}
		/* Compare with PI: the stored PI is checked, then the data compared. */
		assert_int_equal(pi_io(f, nvme_cmd_compare, nsid, 8, 8, NVT_PI_PRACT | PRCHK_ALL, 0x1234,
				       0xffff, d, 8 * (size_t)bs), 0);
		d[3 * bs + 1] ^= 1;
		assert_int_equal(pi_io(f, nvme_cmd_compare, nsid, 8, 8, NVT_PI_PRACT | PRCHK_ALL, 0x1234,
				       0xffff, d, 8 * (size_t)bs),
				 NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED));
		assert_int_equal(last_error_lba(f, &status), 11);
		d[3 * bs + 1] ^= 1;

		/* PRACT=0: the host's PI is stored as sent; a bad guard is refused, nothing stored. */
		assert_int_equal(pi_io(f, nvme_cmd_write, nsid, 32, 4, PRCHK_ALL, 0xbeef, 0xffff, good,
				       4 * eb), 0);
		memcpy(bad, good, 4 * eb);
		bad[2 * eb + 17] ^= 0x10;
		assert_int_equal(pi_io(f, nvme_cmd_write, nsid, 32, 4, PRCHK_ALL, 0xbeef, 0xffff, bad,
				       4 * eb), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
		assert_int_equal(last_error_lba(f, &status), 34);
		assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 32, 4, PRCHK_ALL, 0xbeef, 0xffff, back,
				       4 * eb), 0);
		assert_memory_equal(back, good, 4 * eb);
		expect_scrub(f, nsid, 0, NVT_PI_ERR_NONE);

		/* Behind nvtd's back: a data byte in the file (guard), caught by read, Verify and scrub. */
		flip_byte(f->data[nsid], 33 * (uint64_t)bs + 5);
		expect_read_fails(f, nsid, 32, 4, 0xbeef, NVT_ST_PI_GUARD & ~NVT_SC_DNR, 33);
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_verify, nsid, 32, 4, PRCHK_ALL, tag_of(nsid, 32), 0xbeef, 0xffff);
		assert_int_equal(run(f->ctrl.io[1], &sqe, NULL, 0), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
		assert_int_equal(last_error_lba(f, &status), 33);
		expect_scrub(f, nsid, 33, NVT_PI_ERR_GUARD);
		flip_byte(f->data[nsid], 33 * (uint64_t)bs + 5);
		expect_scrub(f, nsid, 0, NVT_PI_ERR_NONE);
		/* ...the guard in the sidecar... */
		flip_byte(f->md[nsid], 34 * (uint64_t)ms + (ms - ps));
		expect_read_fails(f, nsid, 32, 4, 0xbeef, NVT_ST_PI_GUARD & ~NVT_SC_DNR, 34);
		expect_scrub(f, nsid, 34, NVT_PI_ERR_GUARD);
		flip_byte(f->md[nsid], 34 * (uint64_t)ms + (ms - ps));
		/* ...and its ref tag (last byte of the tuple): Types 1 and 2 check it, Type 3 does not. */
		flip_byte(f->md[nsid], 35 * (uint64_t)ms + ms - 1);
		if (type == 3) {
			assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 32, 4, PRCHK_ALL, 0xbeef, 0xffff,
					       back, 4 * eb), 0);
		} else {
			expect_read_fails(f, nsid, 32, 4, 0xbeef, NVT_ST_PI_REFTAG & ~NVT_SC_DNR, 35);
			/* Scrub knows Type 1 tags (the LBA); Type 2 tags are the host's. */
			expect_scrub(f, nsid, 35, type == 1 ? NVT_PI_ERR_REFTAG : NVT_PI_ERR_NONE);
		}
		flip_byte(f->md[nsid], 35 * (uint64_t)ms + ms - 1);
		assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 32, 4, PRCHK_ALL, 0xbeef, 0xffff, back,
				       4 * eb), 0);
		assert_memory_equal(back, good, 4 * eb);

		/* nvt_ns_inject() on a file namespace: data, then metadata, each undone by a second flip. */
		assert_int_equal(nvt_ns_inject(ns, 33, false, 8 * 100 + 3), 0);
		expect_read_fails(f, nsid, 32, 4, 0xbeef, NVT_ST_PI_GUARD & ~NVT_SC_DNR, 33);
		assert_int_equal(nvt_ns_inject(ns, 33, false, 8 * 100 + 3), 0);
		assert_int_equal(nvt_ns_inject(ns, 34, true, 8 * (ms - ps) + 9), 0);
		expect_read_fails(f, nsid, 32, 4, 0xbeef, NVT_ST_PI_GUARD & ~NVT_SC_DNR, 34);
		expect_scrub(f, nsid, 34, NVT_PI_ERR_GUARD);
		assert_int_equal(nvt_ns_inject(ns, 34, true, 8 * (ms - ps) + 9), 0);
		assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 32, 4, PRCHK_ALL, 0xbeef, 0xffff, back,
				       4 * eb), 0);
		assert_memory_equal(back, good, 4 * eb);
		assert_int_equal(nvt_ns_inject(ns, ns->nblocks, false, 0), -ERANGE);
		assert_int_equal(nvt_ns_inject(ns, 0, true, 8 * ms), -EINVAL);

		/* Write Zeroes with PRACT=1 (with and without DEAC), DSM deallocate: zeroes that check clean. */
		assert_int_equal(pi_io(f, nvme_cmd_write_zeroes, nsid, 40, 4, NVT_PI_PRACT | PRCHK_ALL,
				       0x77, 0, NULL, 0), 0);
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, nsid, 44, 4, NVT_PI_PRACT | PRCHK_ALL, tag_of(nsid, 44),
		   0x77, 0);
		sqe.rw.control |= htole16(1u << 9);	/* DEAC */
		assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), 0);
		assert_int_equal(dsm(f, nsid, (const uint64_t[][2]){ { 9, 2 } }, 1, true), 0);
		assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 40, 8,
				       NVT_PI_PRACT | NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG, 0, 0,
				       back, 8 * (size_t)bs), 0);
		assert_memory_equal(back, zero, 8 * (size_t)bs);
		assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 8, 4, NVT_PI_PRACT | PRCHK_ALL, 0x1234,
				       0xffff, back, 4 * (size_t)bs), 0);
		assert_memory_equal(back, d, (size_t)bs);
		assert_memory_equal(back + bs, zero, 2 * (size_t)bs);
		assert_memory_equal(back + 3 * (size_t)bs, d + 3 * (size_t)bs, (size_t)bs);
		expect_scrub(f, nsid, 0, NVT_PI_ERR_NONE);

		/* Copy: sources checked with their tags, new PI for the destination (format by guard). */
		{
			unsigned int cf = ps == 16 ? 1 : 0;
			uint8_t prinfor = NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG;

			assert_int_equal(copy(f, nsid, cf, (const uint64_t[][3]){
						{ 12, 4, tag_of(nsid, 12) }, { 32, 4, tag_of(nsid, 32) } },
					      2, 100, prinfor, NVT_PI_PRACT | PRCHK_ALL,
					      tag_of(nsid, 100)), 0);
			assert_int_equal(pi_io(f, nvme_cmd_read, nsid, 100, 8,
					       NVT_PI_PRACT | NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG,
					       0, 0, back, 8 * (size_t)bs), 0);
			assert_memory_equal(back, d + 4 * (size_t)bs, 4 * (size_t)bs);
			for (int b = 0; b < 4; b++)
				assert_memory_equal(back + (4 + b) * (size_t)bs, good + b * eb, bs);
			/*
			 * A source checked against the wrong tag: Type 1, Invalid PI (the
			 * EILBRT must be its LBA, as for Read); Type 2, 84h; Type 3 has none.
			 */
			assert_int_equal(copy(f, nsid, cf, (const uint64_t[][3]){
						{ 12, 4, tag_of(nsid, 12) + 1 } }, 1, 120,
					      NVT_PI_CHECK_REFTAG, NVT_PI_PRACT, tag_of(nsid, 120)),
					 type == 3 ? 0 : type == 1 ? (NVT_ST_INVALID_PI & ~NVT_SC_DNR) :
					 (NVT_ST_PI_REFTAG & ~NVT_SC_DNR));
			/* The wrong descriptor format for the guard. */
			assert_int_equal(copy(f, nsid, !cf, (const uint64_t[][3]){ { 12, 4, 0 } }, 1, 120,
					      0, NVT_PI_PRACT, 0), NVME_SC_INVALID_FIELD);
		}
		expect_scrub(f, nsid, 0, NVT_PI_ERR_NONE);
		free(bad);
		free(good);
		free(zero);
		free(back);
		free(d);
	}
}

/* ---- data survives the target ---- */

static void test_restart(void **state)
{
	struct ffix *f = *state;
	const uint32_t n1 = fmts[1].size / 512, n3 = fmts[3].size / 512;
	uint8_t *a, *b, *back, *ext;
	struct nvt_sqe sqe;

	NEED_FS();
	a = malloc(fmts[1].size);
	b = malloc(fmts[3].size);
	back = malloc(fmts[1].size);
	ext = malloc(16 * (512 + 8));
	fill_random(a, fmts[1].size, 21);
	fill_random(b, fmts[3].size, 22);
	plain_io(f, nvme_cmd_write, 1, 0, n1, a);
	for (uint32_t lba = 0; lba < n3; lba += 256)
		assert_int_equal(pi_io(f, nvme_cmd_write, 3, lba, 256, NVT_PI_PRACT | PRCHK_ALL, 0x42,
				       0xffff, b + (size_t)lba * 512, 256 * 512), 0);
	nvt_host_sqe_init(&sqe, nvme_cmd_flush, 0xffffffff);
	assert_int_equal(run(f->ctrl.io[0], &sqe, NULL, 0), 0);

	/* A new target over the same files: everything is there, PI included. */
	target_down(f);
	target_up(f);
	assert_int_equal(ns_of(f, 1)->nblocks, n1);
	plain_io(f, nvme_cmd_read, 1, 0, n1, back);
	assert_memory_equal(back, a, fmts[1].size);
	for (uint32_t lba = 0; lba < n3; lba += 256) {
		assert_int_equal(pi_io(f, nvme_cmd_read, 3, lba, 256, NVT_PI_PRACT | PRCHK_ALL, 0x42,
				       0xffff, back, 256 * 512), 0);
		assert_memory_equal(back, b + (size_t)lba * 512, 256 * 512);
	}
	expect_scrub(f, 3, 0, NVT_PI_ERR_NONE);
	/* Never-written blocks of a restarted PI namespace still carry the escape PI. */
	assert_int_equal(pi_io(f, nvme_cmd_read, 5, 0, 16, PRCHK_ALL, 0, 0, ext, 16 * 520), 0);
	free(ext);
	free(back);
	free(b);
	free(a);
}

/* ---- fused Compare and Write under threads ---- */

#define CW_THREADS	3
#define CW_ROUNDS	500

static void test_caw_threads(void **state)
{
	struct ffix *f = *state;
	unsigned int swaps, writes;

	NEED_FS();
	nvt_test_cw_counter(f->tgt, f->ctrl.io[0], FILE_NQN, CW_THREADS, 2, CW_ROUNDS, &swaps,
			    &writes);
	/*
	 * A swap fails only when another thread's swap came between its read
	 * and its pair, and one swap can fail at most one round of each other
	 * thread: at least a third of all rounds swap.
	 */
	assert_true(swaps >= CW_ROUNDS);
	assert_int_equal(writes, 2 * CW_ROUNDS);
}

/* ---- a queue far deeper than the ring ---- */

#define DEEP		1024
#define DEEP_OUT	900

static void deep_burst(struct nvt_loop_queue *q, uint8_t opc, uint32_t nsid, uint32_t bs,
		       uint8_t prinfo, uint8_t *buf, struct done *d)
{
	struct nvt_sqe sqe;

	memset(d, 0, DEEP_OUT * sizeof(*d));
	for (unsigned int i = 0; i < DEEP_OUT; i++) {
		struct iovec iov = { buf + (size_t)i * bs, bs };

		nvt_host_sqe_rw_pi(&sqe, opc, nsid, i, 1, prinfo, tag_of(nsid, i), 0, 0);
		/* Never -EBUSY: the loop queue has the slots; the ring is what overflows. */
		assert_int_equal(nvt_loop_submit(q, &sqe, &iov, 1, nvt_test_on_done, &d[i]), 0);
	}
	assert_true(nvt_loop_queue_outstanding(q) > RING_SQES);
	assert_true(nvt_test_drain(q));
	for (unsigned int i = 0; i < DEEP_OUT; i++) {
		assert_int_equal(d[i].count, 1);
		assert_int_equal(nvt_test_status(&d[i]), 0);
	}
}

static void test_full_ring(void **state)
{
	struct ffix *f = *state;
	struct nvt_loop_ctrl deep;
	struct done *d;
	uint8_t *w, *r;

	NEED_FS();
	d = calloc(DEEP_OUT, sizeof(*d));
	w = malloc((size_t)DEEP_OUT * 4096);
	r = malloc((size_t)DEEP_OUT * 4096);
	assert_int_equal(nvt_loop_ctrl_connect(f->tgt, FILE_NQN, FILE_HOST, 1, DEEP, 0, &deep), 0);
	/* 4 KiB blocks, one SQE each: 900 bios on a 128-entry ring. */
	fill_random(w, (size_t)DEEP_OUT * 4096, 31);
	deep_burst(deep.io[0], nvme_cmd_write, 2, 4096, 0, w, d);
	memset(r, 0, (size_t)DEEP_OUT * 4096);
	deep_burst(deep.io[0], nvme_cmd_read, 2, 4096, 0, r, d);
	assert_memory_equal(r, w, (size_t)DEEP_OUT * 4096);
	/* With PI, two SQEs per bio (data, sidecar): 1800 for 256 ops' worth of CQ. */
	fill_random(w, (size_t)DEEP_OUT * 512, 32);
	deep_burst(deep.io[0], nvme_cmd_write, 3, 512, NVT_PI_PRACT | PRCHK_ALL, w, d);
	memset(r, 0, (size_t)DEEP_OUT * 512);
	deep_burst(deep.io[0], nvme_cmd_read, 3, 512,
		   NVT_PI_PRACT | NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG, r, d);
	assert_memory_equal(r, w, (size_t)DEEP_OUT * 512);
	expect_scrub(f, 3, 0, NVT_PI_ERR_NONE);
	nvt_loop_ctrl_disconnect(&deep);
	free(r);
	free(w);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_whole_namespace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pi_sidecar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caw_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_ring, setup, teardown),
	};
	static const char *const group[FS_NR] = { "file_e2e_tmpfs", "file_e2e_ext4", "file_e2e_xfs" };
	int failed = 0;

	/* Errors only (NVT_TEST_LOG_INFO=1: the backend's info lines too, O_DIRECT or not). */
	nvt_log_set_level(getenv("NVT_TEST_LOG_INFO") ? NVT_LOG_INFO : NVT_LOG_ERR);
	nvt_test_need_io_uring();
	private_mount_ns();
	for (int k = 0; k < FS_NR; k++) {
		fs.kind = (enum fs_kind)k;
		failed += cmocka_run_group_tests_name(group[k], tests, fs_setup, fs_teardown);
	}
	return failed;
}
