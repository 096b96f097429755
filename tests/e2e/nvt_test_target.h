/* SPDX-License-Identifier: BSD-3-Clause */
/* Builds small targets in memory for end-to-end tests (no config file needed). */
#ifndef NVT_TEST_TARGET_H
#define NVT_TEST_TARGET_H

#include <stdlib.h>
#include <string.h>

#include "nvt/config.h"
#include "nvt/target.h"

#define TEST_NQN	"nqn.2026-11.io.nvt:test0"
#define TEST_NQN_RO	"nqn.2026-11.io.nvt:restricted"
#define TEST_HOST	"nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define TEST_HOST_OK	"nqn.2014-08.org.nvmexpress:uuid:allowed"
#define TEST_NS_SIZE	(8u << 20)

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

	s = &cfg->subsystems[1];
	strcpy(s->nqn, TEST_NQN_RO);
	strcpy(s->serial, "NVT0000RO");
	strcpy(s->model, "nvt test");
	s->nr_hosts = 1;
	s->hosts = calloc(1, sizeof(*s->hosts));
	strcpy(s->hosts[0], TEST_HOST_OK);
}

static inline void nvt_test_config_free(struct nvt_config *cfg)
{
	for (unsigned int i = 0; i < cfg->nr_subsystems; i++) {
		free(cfg->subsystems[i].namespaces);
		free(cfg->subsystems[i].hosts);
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
