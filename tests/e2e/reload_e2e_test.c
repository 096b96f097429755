/* SPDX-License-Identifier: BSD-3-Clause */
/* Live reload over the loop transport: allow-list changes, ram and file namespaces added, removed and resized with controllers connected and I/O running on another thread, bad files and refused changes that leave everything as it was. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "nvt/host.h"
#include "nvt/loop.h"
#include "nvt_test_target.h"

#define HOST_A	"nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
#define HOST_B	"nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-0000-0000-000000000002"
#define HOST_C	"nqn.2014-08.org.nvmexpress:uuid:cccccccc-0000-0000-0000-000000000003"

static char cfg_path[64];
static char file_path[64];	/* the file namespaces' store */

/* The file as an admin would edit it; @extra goes inside the subsystem, @ns2 is nsid 2's line. */
static void write_cfg(const char *hosts, const char *any, const char *ns2, const char *extra)
{
	FILE *f = fopen(cfg_path, "w");

	assert_non_null(f);
	fprintf(f,
		"threads = 1;\n"
		"discovery = true;\n"
		"subsystems = ( {\n"
		"\tnqn = \"" TEST_NQN "\";\n"
		"\tallow_any_host = %s;\n"
		"\thosts = ( %s );\n"
		"%s"
		"\tnamespaces = (\n"
		"\t\t{ nsid = 1; backend = \"ram\"; size = \"8M\"; }\n"
		"\t\t%s\n"
		"\t);\n"
		"} );\n", any, hosts, extra, ns2);
	assert_int_equal(fclose(f), 0);
}

#define NS2_OK	", { nsid = 2; backend = \"ram\"; size = \"1M\"; }"
#define NS2_4K	", { nsid = 2; backend = \"ram\"; size = \"1M\"; block_size = 4096; }"
#define NS2_NS3	", { nsid = 2; backend = \"ram\"; size = \"1M\"; }, { nsid = 3; backend = \"ram\"; size = \"2M\"; }"
#define HOSTS_AB "\"" HOST_A "\", \"" HOST_B "\""
#define HOSTS_A	"\"" HOST_A "\""

/* Writes and reads on nsid 1 from a thread of its own until told to stop: none may fail. */
struct io_thread {
	struct nvt_loop_queue *q;
	atomic_bool stop;
	atomic_uint ok, failed;		/* written by the I/O thread, read by the test */
	pthread_t thread;
};

static void *io_worker(void *arg)
{
	struct io_thread *t = arg;
	uint8_t buf[8 * 512];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned int i = 0; !atomic_load(&t->stop); i++) {
		uint64_t slba = (i % 1024) * 8;

		nvt_host_sqe_rw(&sqe, (i & 1) ? nvme_cmd_read : nvme_cmd_write, 1, slba, 8);
		if (nvt_loop_exec(t->q, &sqe, buf, sizeof(buf), &cqe))
			t->failed++;
		else
			t->ok++;
	}
	return NULL;
}

struct env {
	struct nvt_config cfg;
	struct nvt_target *tgt;
	struct nvt_loop_ctrl a;
	struct io_thread io;
	char *out;
	size_t out_len;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	snprintf(cfg_path, sizeof(cfg_path), "/tmp/nvt-reload-XXXXXX");
	int fd = mkstemp(cfg_path);

	if (!e || fd < 0)
		return -1;
	close(fd);
	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	if (nvt_config_load(cfg_path, &e->cfg, stderr) || nvt_target_create(&e->cfg, &e->tgt))
		return -1;
	e->tgt->cfg = &e->cfg;
	/* A running I/O thread as in nvtd: a file namespace's ring there is made and freed by message. */
	if (nvt_target_start_io_pgs(e->tgt, 1))
		return -1;
	snprintf(file_path, sizeof(file_path), "/tmp/nvt-reload-file-%d", (int)getpid());
	unlink(file_path);
	if (nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_A, 2, 16, 0, &e->a))
		return -1;
	e->io.q = e->a.io[0];
	if (pthread_create(&e->io.thread, NULL, io_worker, &e->io))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	atomic_store(&e->io.stop, true);
	pthread_join(e->io.thread, NULL);
	/* The I/O on the untouched host never failed, whatever the reloads did. */
	assert_int_equal(atomic_load(&e->io.failed), 0);
	assert_true(atomic_load(&e->io.ok) > 0);
	nvt_loop_ctrl_disconnect(&e->a);
	nvt_target_stop_io_pgs(e->tgt);
	nvt_target_destroy(e->tgt);
	unlink(file_path);
	nvt_config_free(&e->cfg);
	free(e->out);
	unlink(cfg_path);
	free(e);
	return 0;
}

static int reload(struct env *e)
{
	FILE *f;
	int ret;

	free(e->out);
	e->out = NULL;
	f = open_memstream(&e->out, &e->out_len);
	assert_non_null(f);
	ret = nvt_target_reload(e->tgt, &e->cfg, f);
	fclose(f);
	return ret;
}

/* Some I/O done by the thread since the last look: it is running through the reload. */
static void io_progresses(struct env *e)
{
	unsigned int before = atomic_load(&e->io.ok);

	for (int i = 0; i < 5000 && atomic_load(&e->io.ok) == before; i++)
		usleep(1000);
	assert_true(atomic_load(&e->io.ok) > before);
}

static void test_host_removed_and_added(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl b, c;

	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_B, 1, 16, 0, &b), 0);
	assert_true(nvt_loop_queue_live(b.admin));
	io_progresses(e);

	write_cfg(HOSTS_A, "false", NS2_OK, "");
	assert_true(reload(e) >= 2);
	assert_non_null(strstr(e->out, "host " HOST_B " no longer allowed"));
	assert_non_null(strstr(e->out, "torn down"));
	/* B's controller is gone, and B cannot come back; A carries on. */
	assert_false(nvt_loop_queue_live(b.admin));
	nvt_loop_ctrl_disconnect(&b);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_B, 1, 16, 0, &b),
			 NVT_ST_CONNECT_INVALID_HOST);
	assert_true(nvt_loop_queue_live(e->a.admin));
	io_progresses(e);

	/* Nothing changed: nothing reported. */
	assert_int_equal(reload(e), 0);

	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "host " HOST_B " allowed"));
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_B, 1, 16, 0, &b), 0);
	nvt_loop_ctrl_disconnect(&b);

	/* allow_any_host: a host on no list gets in; back to false, it is torn down. */
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_C, 1, 16, 0, &c),
			 NVT_ST_CONNECT_INVALID_HOST);
	write_cfg(HOSTS_AB, "true", NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_C, 1, 16, 0, &c), 0);
	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	assert_true(reload(e) >= 2);
	assert_false(nvt_loop_queue_live(c.admin));
	nvt_loop_ctrl_disconnect(&c);
	io_progresses(e);
}

static void copy_cqe(void *arg, const struct nvt_cqe *cqe)
{
	*(struct nvt_cqe *)arg = *cqe;
}

/* Who may see the subsystem changed: a discovery controller's held AER completes, genctr moves. */
static void test_host_change_tells_discovery(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl d;
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint8_t hdr[20];
	uint64_t genctr, genctr2;

	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NVT_DISCOVERY_NQN, HOST_B, 0, 32, 0, &d), 0);
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_DISCOVER, sizeof(hdr), 0, false);
	assert_int_equal(nvt_loop_exec(d.admin, &sqe, hdr, sizeof(hdr), &cqe), 0);
	memcpy(&genctr, hdr, 8);
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	cqe.status = 0xffff;
	assert_int_equal(nvt_loop_submit(d.admin, &sqe, NULL, 0, copy_cqe, &cqe), 0);
	assert_int_equal(cqe.status, 0xffff);

	/* A refused reload tells nobody. */
	write_cfg(HOSTS_A, "false", NS2_4K, "");
	assert_int_equal(reload(e), -EINVAL);
	assert_int_equal(cqe.status, 0xffff);

	write_cfg(HOSTS_A, "false", NS2_OK, "");
	assert_true(reload(e) >= 1);
	assert_int_equal(cqe.status, 0);
	assert_int_equal(le32toh(cqe.result.u32),
			 NVME_AER_NOTICE | NVME_AER_NOTICE_DISC_CHANGED << 8 |
			 NVME_LOG_LID_DISCOVER << 16);
	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_DISCOVER, sizeof(hdr), 0, false);
	assert_int_equal(nvt_loop_exec(d.admin, &sqe, hdr, sizeof(hdr), &cqe), 0);
	memcpy(&genctr2, hdr, 8);
	assert_int_equal(le64toh(genctr2), le64toh(genctr) + 1);
	/* The discovery controller itself stays: any host may ask discovery. */
	assert_true(nvt_loop_queue_live(d.admin));
	nvt_loop_ctrl_disconnect(&d);
	io_progresses(e);
}

static void expect_changed_log(struct env *e, uint32_t nsid)
{
	uint32_t changed[1024];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_CHANGED_NS, sizeof(changed), 0, false);
	assert_int_equal(nvt_loop_exec(e->a.admin, &sqe, changed, sizeof(changed), &cqe), 0);
	assert_int_equal(le32toh(changed[0]), nsid);
	assert_int_equal(changed[1], 0);
}

static void arm_ns_aen(struct env *e, struct nvt_cqe *aen)
{
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	aen->status = 0xffff;
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_ASYNC_EVENT,
			      NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES);
	assert_int_equal(nvt_loop_exec(e->a.admin, &sqe, NULL, 0, &cqe), 0);
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	assert_int_equal(nvt_loop_submit(e->a.admin, &sqe, NULL, 0, copy_cqe, aen), 0);
	assert_int_equal(aen->status, 0xffff);
}

/*
 * nsid 3 added while nsid 1's I/O runs on another thread: the host is told
 * (AEN Namespace Attribute Changed, log 04h lists 3), Identify finds it and
 * I/O on it works at once, from a queue whose poll group existed before.
 */
static void test_ns_added(void **state)
{
	struct env *e = *state;
	uint8_t buf[4096], back[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe, aen;

	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 0, 8);
	assert_int_equal(nvt_loop_exec(e->a.io[1], &sqe, buf, sizeof(buf), &cqe) & 0xff,
			 NVME_SC_INVALID_NS);
	arm_ns_aen(e, &aen);

	write_cfg(HOSTS_AB, "false", NS2_NS3, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "nsid 3 added (ram, 4096 blocks of 512 bytes)"));
	assert_int_equal(aen.status, 0);
	assert_int_equal(le32toh(aen.result.u32), NVME_AER_NOTICE | NVME_LOG_LID_CHANGED_NS << 16);
	expect_changed_log(e, 3);
	assert_int_equal(e->tgt->subsys[0]->nr_ns, 3);

	memset(buf, 0xc3, sizeof(buf));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 3, 4000, 8);
	assert_int_equal(nvt_loop_exec(e->a.io[1], &sqe, buf, sizeof(buf), &cqe), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 4000, 8);
	assert_int_equal(nvt_loop_exec(e->a.io[1], &sqe, back, sizeof(back), &cqe), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	/* 2 MiB: block 4096 is past the end. */
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 4096, 1);
	assert_int_not_equal(nvt_loop_exec(e->a.io[1], &sqe, back, 512, &cqe), 0);
	/* Again: already there, nothing to do. */
	assert_int_equal(reload(e), 0);
	io_progresses(e);
}

/* I/O on nsid 2 from a thread of its own: each command succeeds or finds the namespace gone. */
struct ns2_thread {
	struct nvt_loop_queue *q;
	atomic_bool stop;
	atomic_uint ok, gone, other;
	uint32_t nsid;			/* 0: nsid 2 */
	pthread_t thread;
};

static void *ns2_worker(void *arg)
{
	struct ns2_thread *t = arg;
	uint8_t buf[8 * 512];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	memset(buf, 0xa5, sizeof(buf));
	for (unsigned int i = 0; !atomic_load(&t->stop); i++) {
		uint16_t st;

		nvt_host_sqe_rw(&sqe, (i & 1) ? nvme_cmd_read : nvme_cmd_write,
				t->nsid ? t->nsid : 2, (i % 256) * 8, 8);
		st = (uint16_t)nvt_loop_exec(t->q, &sqe, buf, sizeof(buf), &cqe);
		if (!st)
			atomic_fetch_add(&t->ok, 1);
		else if ((st & 0x7ff) == NVME_SC_INVALID_NS)
			atomic_fetch_add(&t->gone, 1);
		else
			atomic_fetch_add(&t->other, 1);
	}
	return NULL;
}

/* The worker running, some of its commands through. */
static void ns_worker_start(struct ns2_thread *t)
{
	assert_int_equal(pthread_create(&t->thread, NULL, ns2_worker, t), 0);
	for (int i = 0; i < 5000 && atomic_load(&t->ok) < 100; i++)
		usleep(1000);
	assert_true(atomic_load(&t->ok) >= 100);
}

/* After the removal: the worker saw it gone, and nothing but success or Invalid Namespace. */
static void ns_worker_stop_gone(struct ns2_thread *t)
{
	for (int i = 0; i < 5000 && atomic_load(&t->gone) == 0; i++)
		usleep(1000);
	atomic_store(&t->stop, true);
	pthread_join(t->thread, NULL);
	assert_true(atomic_load(&t->gone) > 0);
	assert_int_equal(atomic_load(&t->other), 0);
}

static void test_ns_removed_under_io(void **state)
{
	struct env *e = *state;
	struct ns2_thread t = { .q = e->a.io[1] };
	uint8_t buf[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe, aen;

	arm_ns_aen(e, &aen);
	ns_worker_start(&t);

	/* nsid 2 dropped from the file while both threads run. */
	write_cfg(HOSTS_AB, "false", "", "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "changed: " TEST_NQN ": nsid 2 removed"));
	assert_null(e->tgt->subsys[0]->ns[2]);
	assert_int_equal(e->tgt->subsys[0]->nr_ns, 1);
	ns_worker_stop_gone(&t);

	/* Told: the AEN, and log 04h lists nsid 2 alone. */
	assert_int_equal(aen.status, 0);
	assert_int_equal(le32toh(aen.result.u32), NVME_AER_NOTICE | NVME_LOG_LID_CHANGED_NS << 16);
	expect_changed_log(e, 2);
	/* Identify of an inactive nsid: zeroes (nsze 0). */
	nvt_host_sqe_init(&sqe, nvme_admin_identify, 2);
	sqe.common.cdw10 = htole32(NVME_IDENTIFY_CNS_NS);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(nvt_loop_exec(e->a.admin, &sqe, buf, sizeof(buf), &cqe), 0);
	assert_int_equal(buf[0] | buf[1] | buf[7], 0);

	/* The same nsid back: a fresh (zeroed) namespace that serves I/O. */
	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "nsid 2 added"));
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 2, 0, 8);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(nvt_loop_exec(e->a.io[1], &sqe, buf, sizeof(buf), &cqe), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	io_progresses(e);
}

/*
 * A loop queue is polled by whoever submits to it; while a reload changes
 * file namespaces (whose rings are made and dropped on each group's own
 * thread) an otherwise idle one is polled here, as nvtd's threads would be.
 */
struct poller {
	struct nvt_loop_queue *q;
	atomic_bool stop;
	pthread_t thread;
};

static void *poller_fn(void *arg)
{
	struct poller *p = arg;

	while (!atomic_load(&p->stop))
		nvt_loop_queue_poll(p->q, 1);
	return NULL;
}

static int reload_polled(struct env *e, struct nvt_loop_queue *idle)
{
	struct poller p = { .q = idle };
	int ret;

	assert_int_equal(pthread_create(&p.thread, NULL, poller_fn, &p), 0);
	ret = reload(e);
	atomic_store(&p.stop, true);
	pthread_join(p.thread, NULL);
	return ret;
}

/* nsid 3 on the file backend: @size as the file says it. */
static void write_cfg_file_ns(const char *size)
{
	char ns[256];

	snprintf(ns, sizeof(ns), NS2_OK ", { nsid = 3; backend = \"file\"; size = \"%s\"; "
		 "path = \"%s\"; direct = false; }", size, file_path);
	write_cfg(HOSTS_AB, "false", ns, "");
}

/* Identify Namespace: NSZE, NCAP and NUSE, which must agree. */
static uint64_t identify_nsze(struct env *e, uint32_t nsid)
{
	uint8_t id[4096];
	uint64_t v[3];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_host_sqe_init(&sqe, nvme_admin_identify, nsid);
	sqe.common.cdw10 = htole32(NVME_IDENTIFY_CNS_NS);
	assert_int_equal(nvt_loop_exec(e->a.admin, &sqe, id, sizeof(id), &cqe), 0);
	memcpy(v, id, sizeof(v));
	assert_true(v[0] == v[1] && v[1] == v[2]);
	return le64toh(v[0]);
}

static void rw_ok(struct nvt_loop_queue *q, uint32_t nsid, uint64_t slba, uint8_t fill)
{
	uint8_t buf[4096], back[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	memset(buf, fill, sizeof(buf));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, nsid, slba, 8);
	assert_int_equal(nvt_loop_exec(q, &sqe, buf, sizeof(buf), &cqe), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, nsid, slba, 8);
	assert_int_equal(nvt_loop_exec(q, &sqe, back, sizeof(back), &cqe), 0);
	assert_memory_equal(buf, back, sizeof(buf));
}

static void past_end(struct nvt_loop_queue *q, uint32_t nsid, uint64_t slba)
{
	uint8_t buf[512];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	nvt_host_sqe_rw(&sqe, nvme_cmd_read, nsid, slba, 1);
	assert_int_equal(nvt_loop_exec(q, &sqe, buf, sizeof(buf), &cqe) & 0xff, NVME_SC_LBA_RANGE);
}

/*
 * A file namespace added while nsid 1's I/O runs on another thread: its
 * rings are made on every poll group (the running I/O thread's by
 * message), then it is published and announced, and serves I/O from a
 * queue that existed before; then removed while a thread writes to it:
 * every command succeeds or finds it gone, and its rings go on their own
 * threads (ASan: nothing touched after it is freed).
 */
static void test_file_ns_added_and_removed(void **state)
{
	struct env *e = *state;
	struct ns2_thread t = { .q = e->a.io[1] };
	uint8_t buf[4096], back[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe, aen;
	struct nvt_ns *ns;

	arm_ns_aen(e, &aen);
	write_cfg_file_ns("4M");
	assert_int_equal(reload_polled(e, e->a.io[1]), 1);
	assert_non_null(strstr(e->out, "nsid 3 added (file, 8192 blocks of 512 bytes)"));
	assert_int_equal(aen.status, 0);
	expect_changed_log(e, 3);
	ns = e->tgt->subsys[0]->ns[3];
	assert_non_null(ns);
	/* A channel on every attached group, the running I/O thread's too. */
	assert_non_null(nvt_ns_chan_get(ns, e->tgt->io_pgs[0]));
	for (unsigned int i = 0; i < e->tgt->nr_pg_slots; i++)
		if (e->tgt->pg_slots[i])
			assert_non_null(nvt_ns_chan_get(ns, e->tgt->pg_slots[i]));

	rw_ok(e->a.io[1], 3, 8000, 0x3c);
	past_end(e->a.io[1], 3, 8192);
	io_progresses(e);

	/* Removed while a thread writes and reads it (the ns2 worker, on nsid 3). */
	arm_ns_aen(e, &aen);
	t.nsid = 3;
	ns_worker_start(&t);
	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	assert_int_equal(reload(e), 1);	/* io[1] is polled by the worker */
	assert_non_null(strstr(e->out, "changed: " TEST_NQN ": nsid 3 removed"));
	assert_null(e->tgt->subsys[0]->ns[3]);
	ns_worker_stop_gone(&t);
	assert_int_equal(aen.status, 0);
	expect_changed_log(e, 3);

	/* Back again over the same file: what was written is there. */
	write_cfg_file_ns("4M");
	assert_int_equal(reload_polled(e, e->a.io[1]), 1);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 3, 8000, 8);
	assert_int_equal(nvt_loop_exec(e->a.io[1], &sqe, back, sizeof(back), &cqe), 0);
	memset(buf, 0x3c, sizeof(buf));
	assert_memory_equal(buf, back, sizeof(buf));
	io_progresses(e);
}

/*
 * Resized live, nsid 1's I/O running throughout: a file namespace grown
 * by its size (the file is extended) and then by its file alone (size
 * left out, the file grown behind nvtd), a ram one grown in its reserved
 * range; each announced (AEN, log 04h) and seen in Identify, blocks past
 * the old end usable after and out of range before. Shrinks and a ram
 * growth past its reservation are refused with the reason, changing nothing.
 */
static void test_ns_resized(void **state)
{
	struct env *e = *state;
	struct nvt_cqe aen;
	struct stat st;
	char ns[512];

	arm_ns_aen(e, &aen);
	write_cfg_file_ns("4M");
	assert_int_equal(reload_polled(e, e->a.io[1]), 1);
	assert_int_equal(aen.status, 0);
	expect_changed_log(e, 3);	/* read: the next change raises a new event */
	rw_ok(e->a.io[1], 3, 8000, 0x11);
	past_end(e->a.io[1], 3, 8192);

	arm_ns_aen(e, &aen);
	write_cfg_file_ns("8M");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "changed: " TEST_NQN ": nsid 3 resized (8192 to 16384 blocks of 512 bytes)"));
	assert_int_equal(aen.status, 0);
	assert_int_equal(le32toh(aen.result.u32), NVME_AER_NOTICE | NVME_LOG_LID_CHANGED_NS << 16);
	expect_changed_log(e, 3);
	assert_int_equal(identify_nsze(e, 3), 16384);
	assert_int_equal(stat(file_path, &st), 0);
	assert_int_equal(st.st_size, 8 << 20);
	rw_ok(e->a.io[1], 3, 16000, 0x22);
	rw_ok(e->a.io[1], 3, 8000, 0x11);	/* the old blocks are where they were */
	past_end(e->a.io[1], 3, 16384);

	/* Shrinking: refused, with why; nothing changes. */
	write_cfg_file_ns("2M");
	assert_int_equal(reload(e), -EINVAL);
	assert_non_null(strstr(e->out, ": size: " TEST_NQN " nsid 3: cannot resize live: a namespace cannot shrink live"));
	assert_int_equal(identify_nsze(e, 3), 16384);

	/* Size left out: the namespace follows its file, grown behind nvtd. */
	assert_int_equal(truncate(file_path, 12 << 20), 0);
	snprintf(ns, sizeof(ns), NS2_OK ", { nsid = 3; backend = \"file\"; path = \"%s\"; "
		 "direct = false; }", file_path);
	write_cfg(HOSTS_AB, "false", ns, "");
	arm_ns_aen(e, &aen);
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "nsid 3 resized (16384 to 24576 blocks"));
	assert_int_equal(aen.status, 0);
	assert_int_equal(identify_nsze(e, 3), 24576);
	rw_ok(e->a.io[1], 3, 24000, 0x33);
	/* Again: nothing to do. */
	assert_int_equal(reload(e), 0);

	/* ram: nsid 2 from 1M to 2M, within what it reserved at open. */
	snprintf(ns, sizeof(ns), ", { nsid = 2; backend = \"ram\"; size = \"2M\"; }, { nsid = 3; "
		 "backend = \"file\"; path = \"%s\"; direct = false; }", file_path);
	write_cfg(HOSTS_AB, "false", ns, "");
	past_end(e->a.io[1], 2, 2048);
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "nsid 2 resized (2048 to 4096 blocks of 512 bytes)"));
	assert_int_equal(identify_nsze(e, 2), 4096);
	rw_ok(e->a.io[1], 2, 4000, 0x44);
	/* Past the reservation (16 times), and a shrink: refused. */
	snprintf(ns, sizeof(ns), ", { nsid = 2; backend = \"ram\"; size = \"32M\"; }, { nsid = 3; "
		 "backend = \"file\"; path = \"%s\"; direct = false; }", file_path);
	write_cfg(HOSTS_AB, "false", ns, "");
	assert_int_equal(reload(e), -EINVAL);
	assert_non_null(strstr(e->out, "restart nvtd for more"));
	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	assert_int_equal(reload(e), -EINVAL);
	assert_non_null(strstr(e->out, "cannot shrink live"));
	assert_null(strstr(e->out, "changed:"));
	assert_int_equal(identify_nsze(e, 2), 4096);
	io_progresses(e);
}

static void test_bad_line_changes_nothing(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl b;
	char want[128];

	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_B, 1, 16, 0, &b), 0);
	/* B taken off the list, and an unknown setting on line 7: none of it applies. */
	write_cfg(HOSTS_A, "false", NS2_OK, "\tbogus_setting = 1;\n");
	assert_int_equal(reload(e), -EINVAL);
	snprintf(want, sizeof(want), "%s:7:", cfg_path);
	assert_non_null(strstr(e->out, want));
	assert_non_null(strstr(e->out, "bogus_setting"));
	assert_null(strstr(e->out, "changed:"));
	assert_true(nvt_loop_queue_live(b.admin));
	/* The running config is still the old one: a later good reload diffs against it. */
	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	assert_int_equal(reload(e), 0);
	io_progresses(e);
	nvt_loop_ctrl_disconnect(&b);
}

static void test_refused_changes_apply_nothing(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl b;
	char want[128];

	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_B, 1, 16, 0, &b), 0);
	/* nsid 2's block size (line 9), with B's removal in the same file. */
	write_cfg(HOSTS_A, "false", NS2_4K, "");
	assert_int_equal(reload(e), -EINVAL);
	snprintf(want, sizeof(want), "%s:9: block_size: ", cfg_path);
	assert_non_null(strstr(e->out, want));
	assert_non_null(strstr(e->out, "cannot change live"));
	assert_null(strstr(e->out, "changed:"));
	assert_true(nvt_loop_queue_live(b.admin));
	assert_int_equal(e->tgt->subsys[0]->ns[2]->block_size, 512);

	/* A namespace dropped in a file with a refused change: it stays. */
	write_cfg(HOSTS_AB, "false", "", "\tserial = \"OTHER\";\n");
	assert_int_equal(reload(e), -EINVAL);
	assert_null(strstr(e->out, "changed:"));
	assert_non_null(e->tgt->subsys[0]->ns[2]);

	/* The serial number hosts know the subsystem by. */
	write_cfg(HOSTS_AB, "false", NS2_OK, "\tserial = \"OTHER\";\n");
	assert_int_equal(reload(e), -EINVAL);
	assert_non_null(strstr(e->out, "serial"));
	io_progresses(e);
	nvt_loop_ctrl_disconnect(&b);
}

/* ---- subsystems added and removed live (helper "fabric") ---- */

#define NQN2	"nqn.2026-12.io.nvt:fabric-two"
#define SUBSYS2	", {\n\tnqn = \"" NQN2 "\";\n\tallow_any_host = true;\n" \
		"\tnamespaces = ( { nsid = 1; backend = \"ram\"; size = \"1M\"; } );\n}"

/*
 * The setup's subsystem (hosts A and B, nsid 1, nsid 2 as @ns2), a listener
 * so discovery has records to show, and @more after it in the subsystems
 * list (each beginning with ", {").
 */
#define LISTENER1	"{ transport = \"rdma\"; address = \"192.0.2.1\"; port = 4420; }"

/* write_cfg_fabric() with @listeners (the list's inside) on line 3. */
static void write_cfg_listeners(const char *listeners, const char *ns2, const char *more)
{
	FILE *f = fopen(cfg_path, "w");

	assert_non_null(f);
	fprintf(f,
		"threads = 1;\n"
		"discovery = true;\n"
		"listeners = ( %s );\n"
		"subsystems = ( {\n"
		"\tnqn = \"" TEST_NQN "\";\n"
		"\tallow_any_host = false;\n"
		"\thosts = ( " HOSTS_AB " );\n"
		"\tnamespaces = (\n"
		"\t\t{ nsid = 1; backend = \"ram\"; size = \"8M\"; }\n"
		"\t\t%s\n"
		"\t);\n"
		"}%s );\n", listeners, ns2, more);
	assert_int_equal(fclose(f), 0);
}

static void write_cfg_fabric(const char *ns2, const char *more)
{
	write_cfg_listeners(LISTENER1, ns2, more);
}

/* The setup's target rebuilt from write_cfg_fabric(NS2_OK, @more): a listener, so discovery lists records. */
static void fabric_restart(struct env *e, const char *more)
{
	atomic_store(&e->io.stop, true);
	pthread_join(e->io.thread, NULL);
	assert_int_equal(atomic_load(&e->io.failed), 0);
	nvt_loop_ctrl_disconnect(&e->a);
	nvt_target_stop_io_pgs(e->tgt);
	nvt_target_destroy(e->tgt);
	nvt_config_free(&e->cfg);
	write_cfg_fabric(NS2_OK, more);
	assert_int_equal(nvt_config_load(cfg_path, &e->cfg, stderr), 0);
	assert_int_equal(nvt_target_create(&e->cfg, &e->tgt), 0);
	e->tgt->cfg = &e->cfg;
	/* A running I/O thread, as setup() has: what a reload changes is made there by message. */
	assert_int_equal(nvt_target_start_io_pgs(e->tgt, 1), 0);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, TEST_NQN, HOST_A, 2, 16, 0, &e->a), 0);
	e->io.q = e->a.io[0];
	atomic_store(&e->io.stop, false);
	assert_int_equal(pthread_create(&e->io.thread, NULL, io_worker, &e->io), 0);
}

/* Log 70h as a discovery controller reads it: the record count, and whether @nqn is listed. */
static uint64_t disc_records(struct nvt_loop_ctrl *d, const char *nqn, bool *listed)
{
	static uint8_t log[1024 * 4];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;
	uint64_t numrec;

	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_DISCOVER, sizeof(log), 0, false);
	assert_int_equal(nvt_loop_exec(d->admin, &sqe, log, sizeof(log), &cqe), 0);
	memcpy(&numrec, log + 8, 8);
	numrec = le64toh(numrec);
	assert_true(numrec <= 3);
	*listed = false;
	for (uint64_t i = 0; i < numrec; i++) {
		const struct nvmf_disc_log_entry *ent = (const void *)(log + 1024 * (i + 1));

		if (!strncmp(ent->subnqn, nqn, sizeof(ent->subnqn)))
			*listed = true;
	}
	return numrec;
}

/* A held AER on the discovery controller: @cqe->status 0xffff until it completes. */
static void disc_arm_aer(struct nvt_loop_ctrl *d, struct nvt_cqe *cqe)
{
	struct nvt_sqe sqe;

	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	cqe->status = 0xffff;
	assert_int_equal(nvt_loop_submit(d->admin, &sqe, NULL, 0, copy_cqe, cqe), 0);
	assert_int_equal(cqe->status, 0xffff);
}

static void assert_disc_aen(const struct nvt_cqe *cqe)
{
	assert_int_equal(cqe->status, 0);
	assert_int_equal(le32toh(cqe->result.u32),
			 NVME_AER_NOTICE | NVME_AER_NOTICE_DISC_CHANGED << 8 |
			 NVME_LOG_LID_DISCOVER << 16);
}

/*
 * A subsystem added live: discovery lists it (and says so by AEN), a host
 * connects and does I/O on it; removed live: its controller is torn down,
 * Connect fails, discovery drops it. nsid 1 of the first subsystem runs
 * I/O on another thread all along (teardown checks none failed).
 */
static void test_subsys_added_and_removed(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl d, b;
	uint8_t buf[4096], back[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe, aen;
	bool listed;

	fabric_restart(e, "");
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NVT_DISCOVERY_NQN, HOST_B, 0, 32, 0, &d), 0);
	assert_int_equal(disc_records(&d, NQN2, &listed), 1);
	assert_false(listed);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_B, 1, 16, 0, &b),
			 NVT_ST_CONNECT_INVALID_PARAM);
	disc_arm_aer(&d, &aen);

	write_cfg_fabric(NS2_OK, SUBSYS2);
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "changed: " NQN2 ": subsystem added (1 namespace(s))"));
	assert_disc_aen(&aen);
	assert_int_equal(disc_records(&d, NQN2, &listed), 2);
	assert_true(listed);
	io_progresses(e);

	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_B, 1, 16, 0, &b), 0);
	memset(buf, 0x3c, sizeof(buf));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 16, 8);
	assert_int_equal(nvt_loop_exec(b.io[0], &sqe, buf, sizeof(buf), &cqe), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 16, 8);
	assert_int_equal(nvt_loop_exec(b.io[0], &sqe, back, sizeof(back), &cqe), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	/* The same file again: nothing to do. */
	assert_int_equal(reload(e), 0);

	disc_arm_aer(&d, &aen);
	write_cfg_fabric(NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "changed: " NQN2 ": subsystem removed (1 controller(s) "
				       "torn down)"));
	assert_false(nvt_loop_queue_live(b.admin));
	assert_false(nvt_loop_queue_live(b.io[0]));
	assert_disc_aen(&aen);
	assert_int_equal(disc_records(&d, NQN2, &listed), 1);
	assert_false(listed);
	assert_null(nvt_target_find_subsys(e->tgt, NQN2));
	/* Its controller outlives it on the host side until the host lets go: then all is freed. */
	nvt_loop_ctrl_disconnect(&b);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_B, 1, 16, 0, &b),
			 NVT_ST_CONNECT_INVALID_PARAM);

	/* Back again: a fresh subsystem, zeroed, that serves I/O. */
	write_cfg_fabric(NS2_OK, SUBSYS2);
	assert_int_equal(reload(e), 1);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_B, 1, 16, 0, &b), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 16, 8);
	memset(back, 0xff, sizeof(back));
	assert_int_equal(nvt_loop_exec(b.io[0], &sqe, back, sizeof(back), &cqe), 0);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0);
	nvt_loop_ctrl_disconnect(&b);
	assert_true(nvt_loop_queue_live(d.admin));
	nvt_loop_ctrl_disconnect(&d);
	io_progresses(e);
}

/*
 * A subsystem removed while its controller holds an AER and has written
 * data: the AER ends (aborted), the queues are dead, and what is left is
 * freed when the host lets go (ASan: nothing touched after). Its queues are
 * not driven from another thread meanwhile: a loop queue is one thread's
 * (loop.h), and the transport's teardown runs on the reloading one.
 */
static void test_subsys_removed_with_commands_held(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl b;
	uint8_t buf[4096];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe, aer = { .status = 0xffff };

	fabric_restart(e, SUBSYS2);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_A, 1, 16, 0, &b), 0);
	memset(buf, 0x77, sizeof(buf));
	nvt_host_sqe_rw(&sqe, nvme_cmd_write, 1, 0, 8);
	assert_int_equal(nvt_loop_exec(b.io[0], &sqe, buf, sizeof(buf), &cqe), 0);
	nvt_host_sqe_init(&sqe, nvme_admin_async_event, 0);
	assert_int_equal(nvt_loop_submit(b.admin, &sqe, NULL, 0, copy_cqe, &aer), 0);
	assert_int_equal(aer.status, 0xffff);

	write_cfg_fabric(NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "subsystem removed (1 controller(s) torn down)"));
	/* Status field and phase bit: the status code sits above bit 0. */
	assert_int_equal((le16toh(aer.status) >> 1) & 0xff, NVME_SC_ABORT_QUEUE);
	assert_false(nvt_loop_queue_live(b.admin));
	assert_false(nvt_loop_queue_live(b.io[0]));
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 0, 8);
	assert_int_not_equal(nvt_loop_exec(b.io[0], &sqe, buf, sizeof(buf), &cqe), 0);
	nvt_loop_ctrl_disconnect(&b);
	io_progresses(e);
}

/* The daemon's listener hook played by the test: what it was asked, and an error to give. */
static struct {
	unsigned int added, removed;
	uint16_t fail_port;		/* a listen on this port fails with -EADDRINUSE */
} fake_listener;

static int fake_reload_listener(struct nvt_target *tgt, struct nvt_port *port, bool add)
{
	(void)tgt;
	if (!add) {
		fake_listener.removed++;
		port->listening = false;
		return 0;
	}
	if (port->cfg.port == fake_listener.fail_port)
		return -EADDRINUSE;
	fake_listener.added++;
	port->listening = true;
	return 0;
}

#define LISTENER2	"{ transport = \"rdma\"; address = \"192.0.2.2\"; port = 4421; }"
#define LISTENER3	"{ transport = \"rdma\"; address = \"192.0.2.3\"; port = 4422; }"

/*
 * Listeners added and removed live (the transport played by a hook, the
 * loop transport has no ports): discovery lists one record per listener
 * and subsystem, and says so by AEN each time; a listener whose settings
 * changed, one larger than the running pools allow, one that cannot
 * listen (with another added next to it) and the last one removed are
 * refused and change nothing. I/O runs on another thread all along.
 */
static void test_listeners_added_and_removed(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl d;
	struct nvt_port *p2;
	struct nvt_cqe aen;
	char want[256];
	bool listed;

	fabric_restart(e, "");
	memset(&fake_listener, 0, sizeof(fake_listener));
	e->tgt->reload_listener = fake_reload_listener;
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NVT_DISCOVERY_NQN, HOST_B, 0, 32, 0, &d), 0);
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 1);

	disc_arm_aer(&d, &aen);
	write_cfg_listeners(LISTENER1 ", " LISTENER2, NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "changed: listener rdma 192.0.2.2:4421 added\n"));
	assert_int_equal(fake_listener.added, 1);
	assert_disc_aen(&aen);
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 2);
	p2 = &e->tgt->ports[1];
	assert_true(p2->used && p2->listening);
	assert_int_equal(p2->portid, 2);
	/* The same file again: nothing to do. */
	assert_int_equal(reload(e), 0);

	/* Its settings changed: refused on its line, nothing changed. */
	write_cfg_listeners(LISTENER1 ", { transport = \"rdma\"; address = \"192.0.2.2\"; "
			    "port = 4421; batch_posts = false; }", NS2_OK, "");
	assert_int_equal(reload(e), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: listeners: rdma 192.0.2.2:4421: a listener's settings "
		 "cannot change live", cfg_path);
	assert_non_null(strstr(e->out, want));
	/* Larger commands than the running pools were sized for: refused. */
	write_cfg_listeners(LISTENER1 ", " LISTENER2 ", { transport = \"rdma\"; address = "
			    "\"192.0.2.3\"; port = 4422; max_io_size = \"2M\"; }", NS2_OK, "");
	assert_int_equal(reload(e), -EINVAL);
	assert_non_null(strstr(e->out, "max_io_size: 192.0.2.3:4422: larger than any running"));
	/* One cannot listen: the one added before it in the same reload is stopped again. */
	fake_listener.fail_port = 4422;
	write_cfg_listeners(LISTENER1 ", " LISTENER2 ", { transport = \"rdma\"; address = "
			    "\"192.0.2.4\"; port = 4423; }, " LISTENER3, NS2_OK, "");
	assert_int_equal(reload(e), -EADDRINUSE);
	assert_non_null(strstr(e->out, "rdma 192.0.2.3:4422: cannot listen: "));
	assert_null(strstr(e->out, "changed:"));
	assert_int_equal(fake_listener.added, 2);
	assert_int_equal(fake_listener.removed, 1);
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 2);
	fake_listener.fail_port = 0;

	/* Removed: out of discovery (AEN), stopped; its slot stays, never reused. */
	disc_arm_aer(&d, &aen);
	write_cfg_fabric(NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "changed: listener rdma 192.0.2.2:4421 removed"));
	assert_int_equal(fake_listener.removed, 2);
	assert_false(p2->used || p2->listening);
	assert_disc_aen(&aen);
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 1);
	/* Back: into a fresh slot. */
	write_cfg_listeners(LISTENER1 ", " LISTENER2, NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_true(nvt_target_find_subsys(e->tgt, TEST_NQN) != NULL);
	assert_true(e->tgt->ports[e->tgt->nr_ports - 1].used);
	assert_true(e->tgt->ports[e->tgt->nr_ports - 1].portid > 3);
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 2);

	/*
	 * Added by a reload that failed after it (a new subsystem's file that
	 * cannot open): it runs on, and the next file without it removes it.
	 */
	write_cfg_listeners(LISTENER1 ", " LISTENER2 ", " LISTENER3, NS2_OK,
			    ", {\n\tnqn = \"" NQN2 "\";\n\tallow_any_host = true;\n\tnamespaces = ( { "
			    "nsid = 1; backend = \"file\"; size = \"4M\"; path = \"/nonexistent/nvt/f\"; } );\n}");
	assert_true(reload(e) < 0);
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 3);
	write_cfg_listeners(LISTENER1 ", " LISTENER2, NS2_OK, "");
	assert_int_equal(reload(e), 1);
	assert_non_null(strstr(e->out, "changed: listener rdma 192.0.2.3:4422 removed"));
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 2);

	/* The last RDMA listener: refused. */
	write_cfg_listeners("", NS2_OK, "");
	assert_int_equal(reload(e), -EINVAL);
	assert_non_null(strstr(e->out, "the last RDMA listener cannot be removed live"));
	assert_int_equal(disc_records(&d, TEST_NQN, &listed), 2);
	nvt_loop_ctrl_disconnect(&d);
	io_progresses(e);
}

/* A second subsystem whose nsid 1 is on the file backend, over file_path. */
static void write_cfg_file_subsys(void)
{
	char more[512];

	snprintf(more, sizeof(more), ", {\n\tnqn = \"" NQN2 "\";\n\tallow_any_host = true;\n"
		 "\tnamespaces = ( { nsid = 1; backend = \"file\"; size = \"4M\"; path = \"%s\"; "
		 "direct = false; } );\n}", file_path);
	write_cfg_fabric(NS2_OK, more);
}

/* Does @ns have a channel on every attached poll group, the running I/O thread's too? */
static bool chans_everywhere(struct nvt_target *tgt, struct nvt_ns *ns)
{
	if (!nvt_ns_chan_get(ns, tgt->io_pgs[0]))
		return false;
	for (unsigned int i = 0; i < tgt->nr_pg_slots; i++)
		if (tgt->pg_slots[i] && !nvt_ns_chan_get(ns, tgt->pg_slots[i]))
			return false;
	return true;
}

/*
 * A subsystem on the file backend added live while the first one's I/O
 * runs on another thread: its rings are made on every poll group (the
 * running thread's by message) before it is published, a host connects
 * and does I/O on it; removed live, its rings go on their own threads
 * (ASan: nothing touched after); added back over the same file, what was
 * written is there.
 */
static void test_file_subsys_added_and_removed(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl b;
	uint8_t buf[4096], back[4096];
	struct nvt_subsys *s;
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	fabric_restart(e, "");
	write_cfg_file_subsys();
	assert_int_equal(reload_polled(e, e->a.io[1]), 1);
	assert_non_null(strstr(e->out, "changed: " NQN2 ": subsystem added (1 namespace(s))"));
	s = nvt_target_find_subsys(e->tgt, NQN2);
	assert_non_null(s);
	assert_non_null(s->ns[1]);
	assert_true(chans_everywhere(e->tgt, s->ns[1]));
	io_progresses(e);

	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_B, 1, 16, 0, &b), 0);
	rw_ok(b.io[0], 1, 8000, 0x5a);
	past_end(b.io[0], 1, 8192);
	nvt_loop_ctrl_disconnect(&b);

	write_cfg_fabric(NS2_OK, "");
	assert_int_equal(reload_polled(e, e->a.io[1]), 1);
	assert_non_null(strstr(e->out, "changed: " NQN2 ": subsystem removed"));
	assert_null(nvt_target_find_subsys(e->tgt, NQN2));
	io_progresses(e);

	write_cfg_file_subsys();
	assert_int_equal(reload_polled(e, e->a.io[1]), 1);
	s = nvt_target_find_subsys(e->tgt, NQN2);
	assert_non_null(s);
	assert_true(chans_everywhere(e->tgt, s->ns[1]));
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_B, 1, 16, 0, &b), 0);
	nvt_host_sqe_rw(&sqe, nvme_cmd_read, 1, 8000, 8);
	assert_int_equal(nvt_loop_exec(b.io[0], &sqe, back, sizeof(back), &cqe), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_memory_equal(buf, back, sizeof(buf));
	nvt_loop_ctrl_disconnect(&b);
	io_progresses(e);
}

/* A bad line, or a refused change, in a file that also adds or removes a subsystem: neither happens. */
static void test_subsys_bad_reload_changes_nothing(void **state)
{
	struct env *e = *state;
	struct nvt_loop_ctrl b;
	char want[256];

	fabric_restart(e, "");
	/* An added subsystem with an unknown setting: parse error, with its line. */
	write_cfg_fabric(NS2_OK, ", {\n\tnqn = \"" NQN2 "\";\n\tbogus = 1;\n}");
	assert_int_equal(reload(e), -EINVAL);
	snprintf(want, sizeof(want), "%s:14:", cfg_path);
	assert_non_null(strstr(e->out, want));
	assert_null(nvt_target_find_subsys(e->tgt, NQN2));

	/* Added next to a refused change (nsid 2's block size): nothing added. */
	write_cfg_fabric(NS2_4K, SUBSYS2);
	assert_int_equal(reload(e), -EINVAL);
	assert_null(strstr(e->out, "changed:"));
	assert_non_null(strstr(e->out, "block_size"));
	assert_null(strstr(e->out, "listeners"));
	assert_null(nvt_target_find_subsys(e->tgt, NQN2));

	/* Removal in a refused file: the subsystem and its controller stay. */
	write_cfg_fabric(NS2_OK, SUBSYS2);
	assert_int_equal(reload(e), 1);
	assert_int_equal(nvt_loop_ctrl_connect(e->tgt, NQN2, HOST_A, 1, 16, 0, &b), 0);
	write_cfg_fabric(NS2_4K, "");
	assert_int_equal(reload(e), -EINVAL);
	assert_null(strstr(e->out, "changed:"));
	assert_non_null(nvt_target_find_subsys(e->tgt, NQN2));
	assert_true(nvt_loop_queue_live(b.admin));
	nvt_loop_ctrl_disconnect(&b);
	io_progresses(e);
}

/* The setup's file with its first two lines (threads, discovery) replaced by @head. */
static void write_cfg_head(const char *head)
{
	char body[4096];
	size_t len;
	FILE *f;

	write_cfg(HOSTS_AB, "false", NS2_OK, "");
	f = fopen(cfg_path, "r");
	assert_non_null(f);
	len = fread(body, 1, sizeof(body) - 1, f);
	fclose(f);
	body[len] = 0;
	/* Past "threads = 1;\ndiscovery = true;\n". */
	const char *rest = strchr(strchr(body, '\n') + 1, '\n') + 1;

	f = fopen(cfg_path, "w");
	assert_non_null(f);
	fprintf(f, "%s%s", head, rest);
	assert_int_equal(fclose(f), 0);
}

/* Global settings that cannot change live are refused at their own line, not line 0. */
static void test_global_refusals_name_their_line(void **state)
{
	struct env *e = *state;
	char want[256];

	write_cfg_head("# two I/O threads now\n\ndiscovery = false;\nthreads = 2;\n"
		       "control_socket = \"/tmp/nvt-reload-other.sock\";\n");
	assert_int_equal(reload(e), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: discovery: ", cfg_path);
	assert_non_null(strstr(e->out, want));
	snprintf(want, sizeof(want), "%s:4: threads: the number of I/O threads cannot change live "
		 "(1 to 2)", cfg_path);
	assert_non_null(strstr(e->out, want));
	snprintf(want, sizeof(want), "%s:5: control_socket: ", cfg_path);
	assert_non_null(strstr(e->out, want));
	assert_null(strstr(e->out, ":0:"));
	/* Left out (the default, one per CPU): blamed on line 1, and says so. */
	write_cfg_head("discovery = true;\n");
	assert_int_equal(reload(e), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: threads: ", cfg_path);
	assert_non_null(strstr(e->out, want));
	assert_non_null(strstr(e->out, "left out"));
	io_progresses(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_removed_and_added, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_change_tells_discovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ns_added, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ns_removed_under_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_ns_added_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ns_resized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_line_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_changes_apply_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subsys_added_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subsys_removed_with_commands_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_subsys_added_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listeners_added_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subsys_bad_reload_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_global_refusals_name_their_line, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
