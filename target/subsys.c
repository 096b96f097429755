/* SPDX-License-Identifier: BSD-3-Clause */
/* The target's subsystems, namespaces and ports, built from a validated config; host access checks. */
#define NVT_LOG_PREFIX "subsys: "
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvt/auth.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/util.h"
#include "nvt/target.h"

static void nvt_ns_destroy(struct nvt_ns *ns)
{
	if (!ns)
		return;
	if (ns->be && ns->be->close)
		ns->be->close(ns);
	nvt_resv_fini(&ns->resv);
	free(ns);
}

/*
 * Reservations persist (PTPL) on a namespace in a regular file, in a file
 * beside it: "PATH.nvt-resv". Others (ram is gone at a restart anyway; an
 * nvme or block device has no directory of its own) cannot set PTPL.
 */
static int nvt_ns_resv_open(struct nvt_ns *ns, const struct nvt_ns_cfg *cfg)
{
	const char *path = strcmp(cfg->backend, "file") ? NULL : nvt_ns_cfg_path(cfg, "path");
	char state[4096];
	struct stat st;

	if (!path || stat(path, &st) || !S_ISREG(st.st_mode))
		return 0;
	if ((size_t)snprintf(state, sizeof(state), "%s.nvt-resv", path) >= sizeof(state))
		return 0;
	return nvt_resv_persist_open(&ns->resv, state);
}

/* A namespace opened, not yet published. */
static int nvt_ns_open(struct nvt_subsys *subsys, const struct nvt_ns_cfg *cfg, struct nvt_ns **out)
{
	struct nvt_ns *ns;
	int ret;

	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->subsys = subsys;
	ns->nsid = cfg->nsid;
	/* A held reservation makes the layer check bios as it admits them (resv.h). */
	ns->resv.admit = &ns->range_lock.nr;
	ns->block_size = cfg->block_size;
	ns->lba_shift = (uint8_t)__builtin_ctz(cfg->block_size);
	ns->nblocks = cfg->size >> ns->lba_shift;
	memcpy(ns->uuid, cfg->uuid, sizeof(ns->uuid));
	memcpy(ns->nguid, cfg->nguid, sizeof(ns->nguid));
	ns->md_size = cfg->pi.metadata_size;
	ns->pi = (struct nvt_pi_format){
		.type = (enum nvt_pi_type)cfg->pi.type,
		.guard = strcmp(cfg->pi.guard, "crc64") ? NVT_PI_GUARD_CRC16 : NVT_PI_GUARD_CRC64,
		.pi_first = !strcmp(cfg->pi.location, "first"),
		.block_size = cfg->block_size,
		.md_size = cfg->pi.metadata_size,
	};
	if (nvt_pi_format_validate(&ns->pi)) {
		nvt_err("%s: nsid %u: invalid protection information format", subsys->nqn,
			cfg->nsid);
		free(ns);
		return -EINVAL;
	}
	ns->be = nvt_backend_find(cfg->backend);
	if (!ns->be) {
		nvt_err("%s: nsid %u: no backend '%s'", subsys->nqn, cfg->nsid, cfg->backend);
		free(ns);
		return -ENOENT;
	}
	ret = ns->be->open(ns, cfg);
	if (ret) {
		nvt_err("%s: nsid %u: backend %s: %s", subsys->nqn, cfg->nsid,
			cfg->backend, strerror(-ret));
		ns->be = NULL;
		free(ns);
		return ret;
	}
	/* A store with a format of its own set it in open(): the rest of nvtd trusts it only validated. */
	if ((ns->be->flags & NVT_BE_OWN_FORMAT) &&
	    (nvt_pi_format_validate(&ns->pi) || ns->pi.block_size != ns->block_size ||
	     ns->pi.md_size != ns->md_size || ns->block_size != 1u << ns->lba_shift)) {
		nvt_err("%s: nsid %u: backend %s gave an invalid block format", subsys->nqn,
			cfg->nsid, cfg->backend);
		ns->be->close(ns);
		free(ns);
		return -EINVAL;
	}
	ret = nvt_ns_resv_open(ns, cfg);
	if (ret) {
		ns->be->close(ns);
		nvt_resv_fini(&ns->resv);
		free(ns);
		return ret;
	}
	*out = ns;
	return 0;
}

static void nvt_ns_log(const struct nvt_ns *ns)
{
	const struct nvt_subsys *subsys = ns->subsys;

	if (ns->pi.type)
		nvt_info("%s: nsid %u: %s, %llu blocks of %u+%u bytes, PI type %u (%s guard, %s)",
			 subsys->nqn, ns->nsid, ns->be->name, (unsigned long long)ns->nblocks,
			 ns->block_size, ns->md_size, ns->pi.type,
			 ns->pi.guard == NVT_PI_GUARD_CRC64 ? "crc64" : "crc16",
			 ns->pi.pi_first ? "first" : "last");
	else
		nvt_info("%s: nsid %u: %s, %llu blocks of %u+%u bytes, no PI", subsys->nqn,
			 ns->nsid, ns->be->name, (unsigned long long)ns->nblocks, ns->block_size,
			 ns->md_size);
}

static int nvt_ns_create(struct nvt_subsys *subsys, const struct nvt_ns_cfg *cfg)
{
	struct nvt_ns *ns;
	int ret = nvt_ns_open(subsys, cfg, &ns);

	if (ret)
		return ret;
	subsys->ns[ns->nsid] = ns;
	subsys->nr_ns++;
	nvt_ns_log(ns);
	return 0;
}

static void nvt_subsys_destroy(struct nvt_subsys *subsys)
{
	if (!subsys)
		return;
	for (uint32_t nsid = 1; nsid <= NVT_MAX_NSID; nsid++)
		nvt_ns_destroy(subsys->ns[nsid]);
	free(subsys->hosts);
	nvt_auth_subsys_free(subsys->auth);
	free(subsys);
}

static struct nvt_subsys *nvt_subsys_alloc(struct nvt_target *tgt, enum nvt_subsys_type type,
					   const char *nqn)
{
	struct nvt_subsys *subsys = calloc(1, sizeof(*subsys));

	if (!subsys)
		return NULL;
	subsys->tgt = tgt;
	subsys->type = type;
	atomic_init(&subsys->refs, 1);	/* the table's, or the preparer's */
	subsys->next_cntlid = NVT_CNTLID_MIN;
	nvt_strscpy(subsys->nqn, nqn, sizeof(subsys->nqn));
	return subsys;
}

static int nvt_subsys_create(struct nvt_target *tgt, const struct nvt_subsys_cfg *cfg,
			     struct nvt_subsys **out)
{
	struct nvt_subsys *subsys;
	int ret;

	subsys = nvt_subsys_alloc(tgt, NVT_SUBSYS_NVM, cfg->nqn);
	if (!subsys)
		return -ENOMEM;
	nvt_strscpy(subsys->serial, cfg->serial, sizeof(subsys->serial));
	nvt_strscpy(subsys->model, cfg->model, sizeof(subsys->model));
	subsys->allow_any_host = cfg->allow_any_host;
	/* Zero (a config built in code, not parsed) means the default. */
	subsys->max_ctrls = cfg->max_controllers ? cfg->max_controllers :
			    NVT_DEFAULT_CTRLS_PER_SUBSYS;
	subsys->max_io_queues = (uint16_t)(cfg->max_io_queues ? cfg->max_io_queues :
					   NVT_MAX_IO_QUEUES);
	if (cfg->nr_hosts) {
		subsys->hosts = calloc(cfg->nr_hosts, sizeof(*subsys->hosts));
		if (!subsys->hosts) {
			ret = -ENOMEM;
			goto out_destroy;
		}
		memcpy(subsys->hosts, cfg->hosts, cfg->nr_hosts * sizeof(*subsys->hosts));
		subsys->nr_hosts = cfg->nr_hosts;
	}
	ret = nvt_auth_subsys_create(cfg, &subsys->auth);
	if (ret)
		goto out_destroy;
	for (unsigned int i = 0; i < cfg->nr_namespaces; i++) {
		ret = nvt_ns_create(subsys, &cfg->namespaces[i]);
		if (ret)
			goto out_destroy;
	}
	*out = subsys;
	return 0;

out_destroy:
	nvt_subsys_destroy(subsys);
	return ret;
}

int nvt_target_create(const struct nvt_config *cfg, struct nvt_target **out)
{
	struct nvt_target *tgt;
	int ret = -ENOMEM;

	tgt = calloc(1, sizeof(*tgt));
	if (!tgt)
		return -ENOMEM;
	pthread_mutex_init(&tgt->lock, NULL);
	pthread_mutex_init(&tgt->ns_lock, NULL);
	atomic_init(&tgt->disc_genctr, 0);
	tgt->max_ctrls_per_host = cfg->max_controllers_per_host ? cfg->max_controllers_per_host :
				  NVT_DEFAULT_CTRLS_PER_HOST;

	if (cfg->nr_subsystems) {
		tgt->subsys = calloc(cfg->nr_subsystems, sizeof(*tgt->subsys));
		if (!tgt->subsys)
			goto out_destroy;
	}
	for (unsigned int i = 0; i < cfg->nr_subsystems; i++) {
		ret = nvt_subsys_create(tgt, &cfg->subsystems[i], &tgt->subsys[i]);
		if (ret)
			goto out_destroy;
		tgt->nr_subsys++;
	}
	if (cfg->discovery) {
		ret = -ENOMEM;
		tgt->discovery = nvt_subsys_alloc(tgt, NVT_SUBSYS_DISCOVERY, NVT_DISCOVERY_NQN);
		if (!tgt->discovery)
			goto out_destroy;
		nvt_strscpy(tgt->discovery->model, "nvt discovery", sizeof(tgt->discovery->model));
		tgt->discovery->allow_any_host = true;
		tgt->discovery->max_ctrls = NVT_DEFAULT_CTRLS_PER_SUBSYS;
	}
	if (cfg->nr_listeners > NVT_MAX_PORTS) {
		nvt_err("more than %u listeners", NVT_MAX_PORTS);
		ret = -EINVAL;
		goto out_destroy;
	}
	/* Every slot now: a reload adds listeners into free ones, and none ever moves. */
	ret = -ENOMEM;
	tgt->ports = calloc(NVT_MAX_PORTS, sizeof(*tgt->ports));
	if (!tgt->ports)
		goto out_destroy;
	for (unsigned int i = 0; i < cfg->nr_listeners; i++) {
		struct nvt_port *port = &tgt->ports[i];

		port->tgt = tgt;
		port->portid = (uint16_t)(i + 1);
		port->cfg = cfg->listeners[i];
		port->used = true;
		tgt->nr_ports++;
	}
	nvt_target_ana_init(tgt, cfg);
	*out = tgt;
	return 0;

out_destroy:
	nvt_target_destroy(tgt);
	return ret;
}

/* Tear down every live controller of @subsys, saying @why (shutdown, the subsystem removed). */
static void nvt_subsys_kill_ctrls(struct nvt_subsys *subsys, const char *why)
{
	for (;;) {
		struct nvt_ctrl *ctrl;

		pthread_mutex_lock(&subsys->tgt->lock);
		ctrl = subsys->ctrls;
		if (ctrl)
			atomic_fetch_add(&ctrl->refs, 1);
		pthread_mutex_unlock(&subsys->tgt->lock);
		if (!ctrl)
			return;
		/* It leaves the list here; its queues go with the transport's teardown. */
		nvt_ctrl_fatal(ctrl, why);
		nvt_ctrl_put(ctrl);
	}
}

void nvt_target_stop(struct nvt_target *tgt)
{
	for (unsigned int i = 0; i < tgt->nr_subsys; i++)
		nvt_subsys_kill_ctrls(tgt->subsys[i], "target shutting down");
	if (tgt->discovery)
		nvt_subsys_kill_ctrls(tgt->discovery, "target shutting down");
}

void nvt_target_destroy(struct nvt_target *tgt)
{
	if (!tgt)
		return;
	nvt_target_stop(tgt);
	/* Groups still attached (their owner is going too): their channels go first. */
	for (unsigned int i = 0; i < tgt->nr_pg_slots; i++) {
		struct nvt_poll_group *pg = tgt->pg_slots[i];

		if (!pg)
			continue;
		/* A loop queue outliving its target (loop.h says it must not): say so, once. */
		if (tgt->pg_owned[i] && !tgt->pg_spare[i])
			nvt_err("target destroyed with a loop queue still using poll group %u", i);
		nvt_target_detach_pg(tgt, pg);
		if (tgt->pg_owned[i])
			nvt_poll_group_destroy(pg);
		tgt->pg_owned[i] = tgt->pg_spare[i] = false;
	}
	for (unsigned int i = 0; i < tgt->nr_subsys; i++)
		nvt_subsys_put(tgt->subsys[i]);
	if (tgt->discovery)
		nvt_subsys_put(tgt->discovery);
	free(tgt->subsys);
	free(tgt->ports);
	pthread_mutex_destroy(&tgt->ns_lock);
	pthread_mutex_destroy(&tgt->lock);
	free(tgt);
}

/*
 * @fn on every namespace of every subsystem in the table; tgt->lock held
 * (its callers hold tgt->ns_lock too), so no reload adds or removes a
 * subsystem or a namespace meanwhile, and one published later made its
 * channels for every group already in pg_slots (nvt_target_publish_subsys()).
 */
static int nvt_target_for_each_ns(struct nvt_target *tgt, struct nvt_poll_group *pg,
				  int (*fn)(struct nvt_ns *ns, struct nvt_poll_group *pg))
{
	int ret = 0;

	for (unsigned int i = 0; i < tgt->nr_subsys && !ret; i++)
		for (uint32_t nsid = 1; nsid <= NVT_MAX_NSID && !ret; nsid++)
			if (tgt->subsys[i]->ns[nsid])
				ret = fn(tgt->subsys[i]->ns[nsid], pg);
	return ret;
}

/* A poll group attached while a reload added a namespace may find its channel made already. */
static int nvt_ns_chan_ensure(struct nvt_ns *ns, struct nvt_poll_group *pg)
{
	return nvt_ns_chan_get(ns, pg) ? 0 : nvt_ns_chan_create(ns, pg);
}

static int nvt_ns_chan_drop(struct nvt_ns *ns, struct nvt_poll_group *pg)
{
	nvt_ns_chan_destroy(ns, pg);
	return 0;
}

int nvt_target_attach_pg(struct nvt_target *tgt, struct nvt_poll_group *pg)
{
	int slot = -1, ret;

	pthread_mutex_lock(&tgt->lock);
	for (int i = 0; i < NVT_MAX_PG_SLOTS && slot < 0; i++)
		if (!tgt->pg_slots[i])
			slot = i;
	if (slot >= 0) {
		tgt->pg_slots[slot] = pg;
		if (tgt->nr_pg_slots < (unsigned int)slot + 1)
			tgt->nr_pg_slots = (unsigned int)slot + 1;
	}
	pthread_mutex_unlock(&tgt->lock);
	if (slot < 0) {
		nvt_err("more than %u poll groups serve I/O", NVT_MAX_PG_SLOTS);
		return -ENOSPC;
	}
	nvt_poll_group_set_slot(pg, slot);
	/* Not running yet (nobody else polls it): its channels are made here. */
	pthread_mutex_lock(&tgt->ns_lock);
	pthread_mutex_lock(&tgt->lock);
	ret = nvt_target_for_each_ns(tgt, pg, nvt_ns_chan_ensure);
	pthread_mutex_unlock(&tgt->lock);
	pthread_mutex_unlock(&tgt->ns_lock);
	if (ret) {
		nvt_err("cannot give namespaces a channel on a poll group: %s", strerror(-ret));
		nvt_target_detach_pg(tgt, pg);
	}
	return ret;
}

void nvt_target_detach_pg(struct nvt_target *tgt, struct nvt_poll_group *pg)
{
	int slot = nvt_poll_group_slot(pg);

	if (slot < 0)
		return;
	/* Stopped or idle (its owner is done with it): its channels go here. */
	pthread_mutex_lock(&tgt->ns_lock);
	pthread_mutex_lock(&tgt->lock);
	nvt_target_for_each_ns(tgt, pg, nvt_ns_chan_drop);
	tgt->pg_slots[slot] = NULL;
	pthread_mutex_unlock(&tgt->lock);
	pthread_mutex_unlock(&tgt->ns_lock);
	nvt_poll_group_set_slot(pg, -1);
}

int nvt_target_get_pg(struct nvt_target *tgt, struct nvt_poll_group **out)
{
	struct nvt_poll_group *pg = NULL;
	int ret;

	pthread_mutex_lock(&tgt->lock);
	for (unsigned int i = 0; i < tgt->nr_pg_slots && !pg; i++) {
		if (tgt->pg_spare[i]) {
			tgt->pg_spare[i] = false;
			pg = tgt->pg_slots[i];
		}
	}
	pthread_mutex_unlock(&tgt->lock);
	if (pg) {
		*out = pg;
		return 0;
	}
	ret = nvt_poll_group_create(&pg);
	if (ret)
		return ret;
	ret = nvt_target_attach_pg(tgt, pg);
	if (ret) {
		nvt_poll_group_destroy(pg);
		return ret;
	}
	pthread_mutex_lock(&tgt->lock);
	tgt->pg_owned[nvt_poll_group_slot(pg)] = true;
	pthread_mutex_unlock(&tgt->lock);
	*out = pg;
	return 0;
}

void nvt_target_put_pg(struct nvt_target *tgt, struct nvt_poll_group *pg)
{
	/* Work queued for it meanwhile (a drain request racing the last bio) runs now. */
	nvt_poll_group_poll(pg, 0);
	pthread_mutex_lock(&tgt->lock);
	tgt->pg_spare[nvt_poll_group_slot(pg)] = true;
	pthread_mutex_unlock(&tgt->lock);
}

struct nvt_poll_group *nvt_target_io_pg(const struct nvt_target *tgt, uint16_t qid)
{
	if (!qid || !tgt->nr_io_pgs)
		return tgt->pg;
	return tgt->io_pgs[(qid - 1u) % tgt->nr_io_pgs];
}

/* tgt->lock held. */
static struct nvt_subsys *nvt_target_find_subsys_locked(struct nvt_target *tgt, const char *nqn)
{
	if (tgt->discovery && !strcmp(nqn, NVT_DISCOVERY_NQN))
		return tgt->discovery;
	for (unsigned int i = 0; i < tgt->nr_subsys; i++)
		if (!strcmp(tgt->subsys[i]->nqn, nqn))
			return tgt->subsys[i];
	return NULL;
}

struct nvt_subsys *nvt_target_find_subsys(struct nvt_target *tgt, const char *nqn)
{
	return tgt ? nvt_target_find_subsys_locked(tgt, nqn) : NULL;
}

struct nvt_subsys *nvt_target_get_subsys(struct nvt_target *tgt, const char *nqn)
{
	struct nvt_subsys *s;

	if (!tgt)
		return NULL;
	pthread_mutex_lock(&tgt->lock);
	s = nvt_target_find_subsys_locked(tgt, nqn);
	if (s)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&tgt->lock);
	return s;
}

void nvt_subsys_put(struct nvt_subsys *subsys)
{
	if (atomic_fetch_sub(&subsys->refs, 1) == 1)
		nvt_subsys_destroy(subsys);
}

int nvt_subsys_prepare(struct nvt_target *tgt, const struct nvt_subsys_cfg *cfg,
		       struct nvt_subsys **out)
{
	return nvt_subsys_create(tgt, cfg, out);
}

static int nvt_ns_chans_apply(struct nvt_ns *ns, bool create);

/*
 * Drop the channels nvt_target_publish_subsys() made for @subsys's
 * namespaces up to @last (it included); tgt->ns_lock held. Return: 0, or
 * -ETIMEDOUT: a group did not answer, and @subsys must never be freed.
 */
static int nvt_subsys_chans_drop(struct nvt_subsys *subsys, uint32_t last)
{
	int ret = 0;

	for (uint32_t nsid = 1; nsid <= last; nsid++)
		if (subsys->ns[nsid] && nvt_ns_chans_apply(subsys->ns[nsid], false) == -ETIMEDOUT)
			ret = -ETIMEDOUT;
	return ret;
}

int nvt_target_publish_subsys(struct nvt_target *tgt, struct nvt_subsys *subsys)
{
	struct nvt_subsys **table, **old;
	uint32_t nsid;
	int ret = 0;

	/*
	 * Under tgt->ns_lock no poll group attaches or detaches: each running
	 * one makes its channels on its own thread (a file or nvme namespace's
	 * ring joins that thread's loop), as a namespace added live does; one
	 * attached after takes the table with @subsys in it and makes its own.
	 */
	pthread_mutex_lock(&tgt->ns_lock);
	pthread_mutex_lock(&tgt->lock);
	if (nvt_target_find_subsys_locked(tgt, subsys->nqn))
		ret = -EEXIST;
	pthread_mutex_unlock(&tgt->lock);
	table = ret ? NULL : calloc(tgt->nr_subsys + 1, sizeof(*table));
	if (!ret && !table)
		ret = -ENOMEM;
	for (nsid = 1; nsid <= NVT_MAX_NSID && !ret; nsid++)
		if (subsys->ns[nsid])
			ret = nvt_ns_chans_apply(subsys->ns[nsid], true);
	if (ret) {
		/* Never published: no I/O reached these channels. */
		if (ret == -ETIMEDOUT || (table && nvt_subsys_chans_drop(subsys, nsid - 1)))
			atomic_fetch_add(&subsys->refs, 1);	/* a late answer touches it */
		pthread_mutex_unlock(&tgt->ns_lock);
		free(table);
		return ret;
	}
	pthread_mutex_lock(&tgt->lock);
	if (tgt->nr_subsys)
		memcpy(table, tgt->subsys, tgt->nr_subsys * sizeof(*table));
	table[tgt->nr_subsys] = subsys;
	old = tgt->subsys;
	tgt->subsys = table;
	tgt->nr_subsys++;
	pthread_mutex_unlock(&tgt->lock);
	pthread_mutex_unlock(&tgt->ns_lock);
	/* Every reader of the table holds the lock, or is this thread (the main loop). */
	free(old);
	nvt_info("%s: published (%u namespace(s))", subsys->nqn, subsys->nr_ns);
	return 0;
}

static int nvt_subsys_remove_ns_locked(struct nvt_subsys *subsys, uint32_t nsid);

int nvt_target_remove_subsys(struct nvt_target *tgt, struct nvt_subsys *subsys)
{
	unsigned int i;

	/*
	 * tgt->ns_lock from unpublishing to the last namespace gone: no poll
	 * group attaches or detaches in between, so every channel of its
	 * namespaces (file and nvme rings included) is dropped on the thread
	 * that polls it, none left behind on a group that came or went.
	 */
	pthread_mutex_lock(&tgt->ns_lock);
	pthread_mutex_lock(&tgt->lock);
	/* A scrub takes its namespace under this lock: none can start once it is unpublished. */
	for (uint32_t nsid = 1; nsid <= NVT_MAX_NSID; nsid++)
		if (subsys->ns[nsid] && atomic_load(&subsys->ns[nsid]->nr_scrubs)) {
			pthread_mutex_unlock(&tgt->lock);
			pthread_mutex_unlock(&tgt->ns_lock);
			return -EBUSY;
		}
	for (i = 0; i < tgt->nr_subsys && tgt->subsys[i] != subsys; i++)
		;
	if (i == tgt->nr_subsys) {
		pthread_mutex_unlock(&tgt->lock);
		pthread_mutex_unlock(&tgt->ns_lock);
		return -ENOENT;
	}
	/* In place: the table only shrinks here, and its readers hold the lock. */
	memmove(&tgt->subsys[i], &tgt->subsys[i + 1], (tgt->nr_subsys - i - 1) * sizeof(*tgt->subsys));
	tgt->nr_subsys--;
	/* nvt_ctrl_create() checks this under the lock: a Connect that found it before fails now. */
	subsys->removed = true;
	pthread_mutex_unlock(&tgt->lock);
	nvt_info("%s: unpublished, tearing down its controllers", subsys->nqn);

	nvt_subsys_kill_ctrls(subsys, "subsystem removed");
	/* What the controllers' queues still run is waited out namespace by namespace. */
	for (uint32_t nsid = 1; nsid <= NVT_MAX_NSID; nsid++) {
		int ret;

		if (!subsys->ns[nsid])
			continue;
		ret = nvt_subsys_remove_ns_locked(subsys, nsid);
		if (ret)
			nvt_err("%s: nsid %u: not removed (%s): left to the subsystem's last reference",
				subsys->nqn, nsid, strerror(-ret));
	}
	pthread_mutex_unlock(&tgt->ns_lock);
	/* The table's: the last controller freed (maybe later, on its queue's thread) frees it. */
	nvt_subsys_put(subsys);
	return 0;
}

bool nvt_subsys_host_allowed(const struct nvt_subsys *subsys, const char *hostnqn)
{
	bool ok;

	pthread_mutex_lock(&subsys->tgt->lock);
	ok = nvt_subsys_host_allowed_locked(subsys, hostnqn);
	pthread_mutex_unlock(&subsys->tgt->lock);
	return ok;
}

bool nvt_subsys_host_allowed_locked(const struct nvt_subsys *subsys, const char *hostnqn)
{
	if (subsys->allow_any_host)
		return true;
	for (unsigned int i = 0; i < subsys->nr_hosts; i++)
		if (!strcmp(subsys->hosts[i], hostnqn))
			return true;
	return false;
}

void nvt_subsys_for_each_ctrl(struct nvt_subsys *subsys,
			      void (*fn)(struct nvt_ctrl *ctrl, void *arg), void *arg)
{
	struct nvt_ctrl **ctrls = NULL;
	unsigned int n = 0, cap = 0;

	/* Take references under the lock, call outside it: @fn may complete requests. */
	pthread_mutex_lock(&subsys->tgt->lock);
	for (struct nvt_ctrl *c = subsys->ctrls; c; c = c->next)
		cap++;
	ctrls = cap ? calloc(cap, sizeof(*ctrls)) : NULL;
	for (struct nvt_ctrl *c = subsys->ctrls; c && ctrls; c = c->next) {
		atomic_fetch_add(&c->refs, 1);
		ctrls[n++] = c;
	}
	pthread_mutex_unlock(&subsys->tgt->lock);
	for (unsigned int i = 0; i < n; i++) {
		fn(ctrls[i], arg);
		nvt_ctrl_put(ctrls[i]);
	}
	free(ctrls);
}

static void nvt_ctrl_ns_changed(struct nvt_ctrl *c, void *arg)
{
	uint32_t nsid = *(uint32_t *)arg;

	pthread_mutex_lock(&c->lock);
	if (c->nr_changed_ns < NVT_MAX_CHANGED_NS)
		c->changed_ns[c->nr_changed_ns++] = nsid;
	else
		c->nr_changed_ns = NVT_MAX_CHANGED_NS + 1;
	pthread_mutex_unlock(&c->lock);
	nvt_ctrl_raise_aen(c, NVT_AEN_NS_CHANGED);
}

/* Channel work for one poll group: on its own thread (by message) or, when nobody else polls it, here. */
struct nvt_ns_chan_job {
	struct nvt_pg_msg msg;
	struct nvt_ns *ns;
	struct nvt_poll_group *pg;
	bool create, sent;
	int ret;
	atomic_bool done;
};

static void nvt_ns_chan_job_run(struct nvt_pg_msg *m)
{
	struct nvt_ns_chan_job *j = container_of(m, struct nvt_ns_chan_job, msg);

	if (j->create)
		j->ret = nvt_ns_chan_create(j->ns, j->pg);
	else
		nvt_ns_chan_destroy(j->ns, j->pg);
	/* Release: the waiter reads j->ret, and frees the job, after it. */
	atomic_store_explicit(&j->done, true, memory_order_release);
}

/*
 * Does another thread poll slot @i's group, so that its channels (backend
 * rings, their pollers and watches) may only change on that thread? A
 * started group does, and so does a loop queue's while the queue is in use
 * (its submitter drives it). tgt->lock held.
 */
static bool nvt_pg_polled_elsewhere(const struct nvt_target *tgt, unsigned int i)
{
	return nvt_poll_group_running(tgt->pg_slots[i]) || (tgt->pg_owned[i] && !tgt->pg_spare[i]);
}

#define NVT_NS_CHAN_WAIT_NS	(10ull * 1000 * 1000 * 1000)	/* a poll group answers in microseconds */

/*
 * Make (@create) or destroy @ns's channel on every attached poll group,
 * each on the thread that polls it; tgt->ns_lock held, so none attaches or
 * detaches meanwhile. Return: 0, the first create's -errno, or -ETIMEDOUT:
 * a group did not answer within NVT_NS_CHAN_WAIT_NS, and its job (and @ns,
 * which it will touch when it runs) must never be freed.
 */
static int nvt_ns_chans_apply(struct nvt_ns *ns, bool create)
{
	struct nvt_target *tgt = ns->subsys->tgt;
	uint64_t deadline = nvt_now_ns() + NVT_NS_CHAN_WAIT_NS;
	struct nvt_ns_chan_job *jobs;
	unsigned int n;
	int ret = 0;

	jobs = calloc(NVT_MAX_PG_SLOTS, sizeof(*jobs));
	if (!jobs)
		return -ENOMEM;
	pthread_mutex_lock(&tgt->lock);
	n = tgt->nr_pg_slots;
	for (unsigned int i = 0; i < n; i++) {
		struct nvt_ns_chan_job *j = &jobs[i];

		if (!tgt->pg_slots[i])
			continue;
		*j = (struct nvt_ns_chan_job){ .msg.fn = nvt_ns_chan_job_run, .ns = ns,
					       .pg = tgt->pg_slots[i], .create = create };
		atomic_init(&j->done, false);
		/* The layer's own channel state is made ready before publication, from any thread. */
		j->sent = (create ? !!ns->be->chan_create : !!ns->be->chan_destroy) &&
			  nvt_pg_polled_elsewhere(tgt, i);
		if (j->sent)
			nvt_poll_group_send(j->pg, &j->msg);
		else
			nvt_ns_chan_job_run(&j->msg);	/* nobody polls it, and none can take it now */
	}
	pthread_mutex_unlock(&tgt->lock);
	for (unsigned int i = 0; i < n; i++) {
		struct nvt_ns_chan_job *j = &jobs[i];

		while (j->sent && !atomic_load_explicit(&j->done, memory_order_acquire)) {
			if (nvt_now_ns() > deadline) {
				nvt_err("%s: nsid %u: poll group %u did not answer in %llu s", ns->subsys->nqn,
					ns->nsid, i, NVT_NS_CHAN_WAIT_NS / 1000000000ull);
				return -ETIMEDOUT;	/* @jobs leaked: a message in it is queued */
			}
			/* A loop queue put back meanwhile polls no more: run its message here. */
			pthread_mutex_lock(&tgt->lock);
			if (tgt->pg_slots[i] == j->pg && !nvt_pg_polled_elsewhere(tgt, i))
				nvt_poll_group_run_pending(j->pg);
			pthread_mutex_unlock(&tgt->lock);
			if (!atomic_load_explicit(&j->done, memory_order_acquire))
				usleep(50);
		}
		if (j->ret && !ret)
			ret = j->ret;
	}
	free(jobs);
	return ret;
}

/*
 * tgt->ns_lock held. Channels first, each made by the thread that polls
 * its group (a backend's rings join that thread's loop), then published.
 */
static int nvt_subsys_add_ns_locked(struct nvt_subsys *subsys, const struct nvt_ns_cfg *cfg)
{
	struct nvt_target *tgt = subsys->tgt;
	struct nvt_ns *ns;
	int ret;

	if (subsys->ns[cfg->nsid])
		return -EEXIST;
	ret = nvt_ns_open(subsys, cfg, &ns);
	if (ret)
		return ret;
	ret = nvt_ns_chans_apply(ns, true);
	if (ret == -ETIMEDOUT)
		return ret;	/* @ns stays allocated: a late answer touches it */
	if (ret) {
		/* Never published: no I/O reached these channels. */
		if (nvt_ns_chans_apply(ns, false) != -ETIMEDOUT)
			nvt_ns_destroy(ns);
		return ret;
	}
	pthread_mutex_lock(&tgt->lock);
	/* Release: a poll group that finds ns finds its channel and its backend state. */
	atomic_store_explicit(&subsys->ns[ns->nsid], ns, memory_order_release);
	subsys->nr_ns++;
	pthread_mutex_unlock(&tgt->lock);
	nvt_ns_log(ns);
	nvt_subsys_ns_changed(subsys, ns->nsid);
	return 0;
}

int nvt_subsys_add_ns(struct nvt_subsys *subsys, const struct nvt_ns_cfg *cfg)
{
	int ret;

	if (subsys->type != NVT_SUBSYS_NVM || !cfg->nsid || cfg->nsid > NVT_MAX_NSID)
		return -EINVAL;
	pthread_mutex_lock(&subsys->tgt->ns_lock);
	ret = nvt_subsys_add_ns_locked(subsys, cfg);
	pthread_mutex_unlock(&subsys->tgt->ns_lock);
	return ret;
}

void nvt_req_ns_enter(struct nvt_req *req, struct nvt_subsys *subsys)
{
	int slot = req->sq->pg ? nvt_poll_group_slot(req->sq->pg) : -1;
	unsigned int i = slot >= 0 && slot < NVT_MAX_PG_SLOTS ? (unsigned int)slot : NVT_MAX_PG_SLOTS;
	unsigned int e = atomic_load(&subsys->ns_epoch) & 1;

	/* Sequentially consistent, as the namespace loads after it: see nvt_subsys_remove_ns(). */
	atomic_fetch_add(&subsys->ns_readers[e][i].n, 1);
	req->ns_reader = (uint16_t)(e << 15 | i);
	req->ns_subsys = subsys;
	req->flags |= NVT_REQ_NS_READER;
}

void nvt_req_ns_leave(struct nvt_req *req)
{
	struct nvt_subsys *subsys = req->ns_subsys;
	unsigned int e = req->ns_reader >> 15, i = req->ns_reader & 0x7fff;

	req->flags &= ~NVT_REQ_NS_READER;
	atomic_fetch_sub_explicit(&subsys->ns_readers[e][i].n, 1, memory_order_release);
}

/* Up to @deadline_ns: every reader of epoch @e gone? */
static bool nvt_subsys_readers_gone(struct nvt_subsys *subsys, unsigned int e, uint64_t deadline_ns)
{
	for (unsigned int i = 0; i <= NVT_MAX_PG_SLOTS; i++)
		while (atomic_load_explicit(&subsys->ns_readers[e][i].n, memory_order_acquire)) {
			if (nvt_now_ns() > deadline_ns)
				return false;
			usleep(100);
		}
	return true;
}

#define NVT_NS_REMOVE_WAIT_NS	(10ull * 1000 * 1000 * 1000)	/* commands finish long before */

/* tgt->ns_lock held. */
static int nvt_subsys_remove_ns_locked(struct nvt_subsys *subsys, uint32_t nsid)
{
	struct nvt_target *tgt = subsys->tgt;
	uint64_t deadline = nvt_now_ns() + NVT_NS_REMOVE_WAIT_NS;
	struct nvt_ns *ns;
	unsigned int e;

	/* Under the lock: a scrub takes its namespace there. */
	pthread_mutex_lock(&tgt->lock);
	ns = subsys->ns[nsid];
	if (!ns || atomic_load(&ns->nr_scrubs)) {
		pthread_mutex_unlock(&tgt->lock);
		return !ns ? -ENOENT : -EBUSY;
	}
	atomic_store(&subsys->ns[nsid], NULL);
	subsys->nr_ns--;
	pthread_mutex_unlock(&tgt->lock);
	nvt_info("%s: nsid %u: unpublished, waiting for the commands holding it", subsys->nqn, nsid);
	nvt_subsys_ns_changed(subsys, nsid);

	/*
	 * A request that read the pointer counted itself first, in the epoch
	 * it read then: both sequentially consistent, so if its load saw the
	 * namespace, its count came before the NULL store above, and so
	 * before the flip below; it counts in the old epoch, whose counters
	 * are read after. Requests counted later see NULL (Invalid Namespace)
	 * and, in the new epoch, cannot keep this waiting.
	 */
	e = atomic_fetch_xor(&subsys->ns_epoch, 1) & 1;
	if (!nvt_subsys_readers_gone(subsys, e, deadline))
		goto out_leak;
	/* Range lock messages still queued for its channels (their requests are done). */
	while (!nvt_ns_chans_idle(ns)) {
		if (nvt_now_ns() > deadline)
			goto out_leak;
		usleep(100);
	}
	/* Each channel on its own thread: its ring's poller and watch are that loop's. */
	if (nvt_ns_chans_apply(ns, false))
		goto out_leak;
	nvt_ns_chans_free(ns);	/* none is left: every attached group dropped its own */
	nvt_ns_destroy(ns);
	return 0;

out_leak:
	/* Never freed under a command: its memory stays, unreachable, until nvtd exits. */
	nvt_err("%s: nsid %u: commands or poll groups still hold it after %llu s: left allocated",
		subsys->nqn, nsid, NVT_NS_REMOVE_WAIT_NS / 1000000000ull);
	return 0;
}

int nvt_subsys_remove_ns(struct nvt_subsys *subsys, uint32_t nsid)
{
	int ret;

	if (subsys->type != NVT_SUBSYS_NVM || !nsid || nsid > NVT_MAX_NSID)
		return -EINVAL;
	pthread_mutex_lock(&subsys->tgt->ns_lock);
	ret = nvt_subsys_remove_ns_locked(subsys, nsid);
	pthread_mutex_unlock(&subsys->tgt->ns_lock);
	return ret;
}

int nvt_subsys_resize_ns(struct nvt_subsys *subsys, const struct nvt_ns_cfg *cfg,
			 uint64_t *old_nblocks, char *why, size_t why_len)
{
	struct nvt_target *tgt = subsys->tgt;
	struct nvt_ns *ns;
	uint64_t nb;
	int ret;

	if (subsys->type != NVT_SUBSYS_NVM || !cfg->nsid || cfg->nsid > NVT_MAX_NSID)
		return -EINVAL;
	/* Against a removal of the same namespace, which frees it. */
	pthread_mutex_lock(&tgt->ns_lock);
	ns = subsys->ns[cfg->nsid];
	if (!ns || !ns->be->resize) {
		pthread_mutex_unlock(&tgt->ns_lock);
		return 0;	/* nvt_reload_check_ns() refused a size change of these */
	}
	*old_nblocks = ns->nblocks;
	ret = ns->be->resize(ns, cfg, true, &nb, why, why_len);
	if (ret || nb == *old_nblocks) {
		pthread_mutex_unlock(&tgt->ns_lock);
		return ret;
	}
	/*
	 * The store has grown first: a command that reads the new size finds
	 * the blocks there. Commands checked against the old one stay within it.
	 */
	atomic_store(&ns->nblocks, nb);
	pthread_mutex_unlock(&tgt->ns_lock);
	nvt_info("%s: nsid %u: resized from %llu to %llu blocks", subsys->nqn, cfg->nsid,
		 (unsigned long long)*old_nblocks, (unsigned long long)nb);
	nvt_subsys_ns_changed(subsys, cfg->nsid);
	return 1;
}

void nvt_subsys_ns_changed(struct nvt_subsys *subsys, uint32_t nsid)
{
	nvt_subsys_for_each_ctrl(subsys, nvt_ctrl_ns_changed, &nsid);
}

int nvt_target_start_io_pgs(struct nvt_target *tgt, unsigned int threads)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int ret;

	if (!threads)
		threads = cpus > 0 ? (unsigned int)cpus : 1;
	tgt->io_pgs = calloc(threads, sizeof(*tgt->io_pgs));
	if (!tgt->io_pgs)
		return -ENOMEM;
	for (unsigned int i = 0; i < threads; i++) {
		char name[24];	/* the kernel keeps 15 characters */

		ret = nvt_poll_group_create(&tgt->io_pgs[i]);
		if (ret)
			return ret;
		tgt->nr_io_pgs++;
		/* Namespace channels (backend rings) before the thread runs. */
		ret = nvt_target_attach_pg(tgt, tgt->io_pgs[i]);
		if (!ret) {
			snprintf(name, sizeof(name), "nvt-io%u", i);
			ret = nvt_poll_group_start(tgt->io_pgs[i], name);
		}
		if (ret) {
			/* Not attached or not running: undone here, not by the stop. */
			nvt_target_detach_pg(tgt, tgt->io_pgs[i]);
			nvt_poll_group_destroy(tgt->io_pgs[i]);
			tgt->nr_io_pgs--;
			return ret;
		}
	}
	nvt_info("%u I/O poll group(s)", threads);
	return 0;
}

void nvt_target_stop_io_pgs(struct nvt_target *tgt)
{
	for (unsigned int i = 0; i < tgt->nr_io_pgs; i++) {
		nvt_poll_group_stop(tgt->io_pgs[i]);
		nvt_target_detach_pg(tgt, tgt->io_pgs[i]);
		nvt_poll_group_destroy(tgt->io_pgs[i]);
	}
	free(tgt->io_pgs);
	tgt->io_pgs = NULL;
	tgt->nr_io_pgs = 0;
}
