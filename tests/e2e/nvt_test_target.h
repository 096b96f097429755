/* SPDX-License-Identifier: BSD-3-Clause */
/* Builds small targets in memory for end-to-end tests (no config file needed), on the ram backend or, with NVT_TEST_BACKEND=file, on files. */
#ifndef NVT_TEST_TARGET_H
#define NVT_TEST_TARGET_H

#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nvt/config.h"
#include "nvt/target.h"

#define TEST_NQN	"nqn.2026-11.io.nvt:test0"
#define TEST_NQN_RO	"nqn.2026-11.io.nvt:restricted"
#define TEST_HOST	"nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define TEST_HOST_OK	"nqn.2014-08.org.nvmexpress:uuid:allowed"
#define TEST_NS_SIZE	(8u << 20)

/*
 * @ns is served by @backend, with none of its settings given yet: one slot
 * per setting the backend declares, in its table's order, as
 * target/config.c leaves them.
 */
static inline void nvt_test_ns_backend(struct nvt_ns_cfg *ns, const char *backend)
{
	const struct nvt_backend_ops *be = nvt_backend_find(backend);
	unsigned int n = 0;

	snprintf(ns->backend, sizeof(ns->backend), "%s", backend);
	for (const struct nvt_be_setting *d = be ? be->settings : NULL;
	     d && d->name && n < NVT_NS_SETTINGS_MAX; d++, n++)
		ns->settings[n] = (struct nvt_ns_setting){ .name = d->name };
	ns->nr_settings = n;
}

static inline struct nvt_ns_setting *nvt_test_ns_slot(struct nvt_ns_cfg *ns, const char *name)
{
	for (unsigned int i = 0; i < ns->nr_settings && i < NVT_NS_SETTINGS_MAX; i++)
		if (ns->settings[i].name && !strcmp(ns->settings[i].name, name))
			return &ns->settings[i];
	return NULL;
}

/* Give PATH setting @name (a copy of @path, as the loader keeps one). Return: 0 or -ENOENT (not the backend's). */
static inline int nvt_test_ns_set_path(struct nvt_ns_cfg *ns, const char *name, const char *path)
{
	struct nvt_ns_setting *s = nvt_test_ns_slot(ns, name);

	if (!s)
		return -ENOENT;
	free(s->str);
	s->str = strdup(path);
	s->set = true;
	return 0;
}

/* Give BOOL setting @name. Return: 0 or -ENOENT. */
static inline int nvt_test_ns_set_bool(struct nvt_ns_cfg *ns, const char *name, bool b)
{
	struct nvt_ns_setting *s = nvt_test_ns_slot(ns, name);

	if (!s)
		return -ENOENT;
	s->b = b;
	s->set = true;
	return 0;
}

/* Free what the setters copied (nvt_config_free() does this for a loaded config). */
static inline void nvt_test_ns_cfg_fini(struct nvt_ns_cfg *ns)
{
	for (unsigned int i = 0; i < NVT_NS_SETTINGS_MAX; i++) {
		free(ns->settings[i].str);
		ns->settings[i].str = NULL;
	}
}

/*
 * NVT_TEST_BACKEND=file: the namespaces of nvt_test_config() live in files
 * of a fresh directory under /dev/shm. nvt_test_config_free() removes them
 * at once: a target already holds them open, and nothing is left behind
 * however the test ends.
 */
static char nvt_test_file_dir[64];

static inline bool nvt_test_backend_file(void)
{
	const char *b = getenv("NVT_TEST_BACKEND");

	return b && !strcmp(b, "file");
}

/* Tests of the file backend need io_uring: without it (seccomp, a kernel without it) they exit 77, skipped. */
static inline void nvt_test_need_io_uring(void)
{
	struct io_uring_params p;
	long fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 1, &p);
	if (fd < 0) {
		fprintf(stderr, "skipped: no io_uring here (io_uring_setup: %s)\n", strerror(errno));
		exit(77);
	}
	close((int)fd);
}

static inline void nvt_test_ns_in_file(struct nvt_ns_cfg *ns)
{
	char path[128];

	if (!nvt_test_file_dir[0]) {
		strcpy(nvt_test_file_dir, "/dev/shm/nvt-test.XXXXXX");
		if (!mkdtemp(nvt_test_file_dir)) {
			nvt_test_file_dir[0] = 0;
			return;	/* the target then fails to open the namespace */
		}
	}
	nvt_test_ns_backend(ns, "file");
	snprintf(path, sizeof(path), "%s/ns%u", nvt_test_file_dir, ns->nsid);
	nvt_test_ns_set_path(ns, "path", path);
}

/*
 * Two subsystems: TEST_NQN (any host; nsid 1: 8 MiB of 512-byte blocks,
 * nsid 3: 8 MiB of 4 KiB blocks) and TEST_NQN_RO (only TEST_HOST_OK);
 * two RDMA listeners for the discovery log.
 */
static inline void nvt_test_config(struct nvt_config *cfg)
{
	struct nvt_subsys_cfg *s;

	memset(cfg, 0, sizeof(*cfg));
	cfg->discovery = true;
	cfg->nr_listeners = 2;
	cfg->listeners = calloc(2, sizeof(*cfg->listeners));
	strcpy(cfg->listeners[0].transport, "rdma");
	strcpy(cfg->listeners[0].address, "192.0.2.1");
	cfg->listeners[0].family = 2;	/* AF_INET */
	cfg->listeners[0].port = 4420;
	strcpy(cfg->listeners[1].transport, "rdma");
	strcpy(cfg->listeners[1].address, "fd00::1");
	cfg->listeners[1].family = 10;	/* AF_INET6 */
	cfg->listeners[1].port = 4421;

	cfg->nr_subsystems = 2;
	cfg->subsystems = calloc(2, sizeof(*cfg->subsystems));
	s = &cfg->subsystems[0];
	strcpy(s->nqn, TEST_NQN);
	strcpy(s->serial, "NVT0000TEST");
	strcpy(s->model, "nvt test");
	s->allow_any_host = true;
	s->nr_namespaces = 2;
	s->namespaces = calloc(2, sizeof(*s->namespaces));
	s->namespaces[0].nsid = 1;
	strcpy(s->namespaces[0].backend, "ram");
	s->namespaces[0].size = TEST_NS_SIZE;
	s->namespaces[0].block_size = 512;
	memset(s->namespaces[0].uuid, 0x11, 16);
	memset(s->namespaces[0].nguid, 0x22, 16);
	s->namespaces[1].nsid = 3;
	strcpy(s->namespaces[1].backend, "ram");
	s->namespaces[1].size = TEST_NS_SIZE;
	s->namespaces[1].block_size = 4096;
	if (nvt_test_backend_file()) {
		nvt_test_need_io_uring();
		for (unsigned int i = 0; i < s->nr_namespaces; i++)
			nvt_test_ns_in_file(&s->namespaces[i]);
	}

	s = &cfg->subsystems[1];
	strcpy(s->nqn, TEST_NQN_RO);
	strcpy(s->serial, "NVT0000RO");
	strcpy(s->model, "nvt test");
	s->nr_hosts = 1;
	s->hosts = calloc(1, sizeof(*s->hosts));
	strcpy(s->hosts[0], TEST_HOST_OK);
}

/* Also removes the files of NVT_TEST_BACKEND=file (a target made from @cfg keeps them open). */
static inline void nvt_test_config_free(struct nvt_config *cfg)
{
	for (unsigned int i = 0; i < cfg->nr_subsystems; i++) {
		for (unsigned int j = 0; j < cfg->subsystems[i].nr_namespaces; j++) {
			struct nvt_ns_cfg *ns = &cfg->subsystems[i].namespaces[j];
			const char *path = nvt_ns_cfg_path(ns, "path");

			if (nvt_test_file_dir[0] && path &&
			    !strncmp(path, nvt_test_file_dir, strlen(nvt_test_file_dir))) {
				char resv[160];

				unlink(path);
				/* Reservations a test left persisted beside it (PTPL). */
				snprintf(resv, sizeof(resv), "%s.nvt-resv", path);
				unlink(resv);
			}
			nvt_test_ns_cfg_fini(ns);
		}
		free(cfg->subsystems[i].namespaces);
		free(cfg->subsystems[i].hosts);
	}
	if (nvt_test_file_dir[0]) {
		rmdir(nvt_test_file_dir);
		nvt_test_file_dir[0] = 0;
	}
	free(cfg->subsystems);
	free(cfg->listeners);
	memset(cfg, 0, sizeof(*cfg));
}

static inline struct nvt_target *nvt_test_target_create(void)
{
	struct nvt_config cfg;
	struct nvt_target *tgt = NULL;

	nvt_test_config(&cfg);
	if (nvt_target_create(&cfg, &tgt))
		tgt = NULL;
	nvt_test_config_free(&cfg);
	return tgt;
}

#endif /* NVT_TEST_TARGET_H */
