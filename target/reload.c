/* SPDX-License-Identifier: BSD-3-Clause */
/* Live reconfiguration: re-read the configuration file, refuse what cannot change live, apply the rest (nvtctl reload, SIGHUP). */
#define NVT_LOG_PREFIX "reload: "
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/bio.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/target.h"
#include "nvt/util.h"

/* What one reload found: refusals (any one cancels it) and the changes to apply. */
struct nvt_reload {
	struct nvt_target *tgt;
	const char *file;
	FILE *out;			/* the requester's; NULL: the log only */
	unsigned int nr_refused;
	unsigned int nr_changes;
};

static void nvt_reload_refuse(struct nvt_reload *r, int line, const char *setting,
			      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A change that cannot be made live: "file:line: setting: message", to both sides. */
static void nvt_reload_refuse(struct nvt_reload *r, int line, const char *setting,
			      const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->nr_refused++;
	nvt_err("%s:%d: %s: %s", r->file, line, setting, msg);
	if (r->out)
		fprintf(r->out, "%s:%d: %s: %s\n", r->file, line, setting, msg);
}

static void nvt_reload_note(struct nvt_reload *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One change applied, for the reply and the log. */
static void nvt_reload_note(struct nvt_reload *r, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->nr_changes++;
	nvt_info("%s", msg);
	if (r->out)
		fprintf(r->out, "changed: %s\n", msg);
}

static bool nvt_listener_same(const struct nvt_listener_cfg *a, const struct nvt_listener_cfg *b)
{
	return !strcmp(a->transport, b->transport) && !strcmp(a->address, b->address) &&
	       a->port == b->port && a->max_io_size == b->max_io_size &&
	       a->batch_posts == b->batch_posts && a->ana_group == b->ana_group;
}

static const struct nvt_subsys_cfg *nvt_cfg_find_subsys(const struct nvt_config *cfg,
							const char *nqn)
{
	for (unsigned int i = 0; i < cfg->nr_subsystems; i++)
		if (!strcmp(cfg->subsystems[i].nqn, nqn))
			return &cfg->subsystems[i];
	return NULL;
}

static const struct nvt_ns_cfg *nvt_cfg_find_ns(const struct nvt_subsys_cfg *s, uint32_t nsid)
{
	for (unsigned int i = 0; i < s->nr_namespaces; i++)
		if (s->namespaces[i].nsid == nsid)
			return &s->namespaces[i];
	return NULL;
}

static bool nvt_cfg_has_host(const struct nvt_subsys_cfg *s, const char *hostnqn)
{
	for (unsigned int i = 0; i < s->nr_hosts; i++)
		if (!strcmp(s->hosts[i], hostnqn))
			return true;
	return false;
}

static bool nvt_setting_same(const struct nvt_ns_setting *a, const struct nvt_ns_setting *b)
{
	if (a->set != b->set)
		return false;
	if (!a->set)
		return true;
	if ((a->str == NULL) != (b->str == NULL))
		return false;
	return a->b == b->b && (!a->str || !strcmp(a->str, b->str));
}

/*
 * A size asked for, or a store that grew under an unchanged file: what its
 * backend can do live (grow, not shrink), asked of the namespace running.
 */
static void nvt_reload_check_resize(struct nvt_reload *r, const char *nqn,
				    const struct nvt_ns_cfg *o, const struct nvt_ns_cfg *n)
{
	struct nvt_subsys *subsys = nvt_target_find_subsys(r->tgt, nqn);
	struct nvt_ns *ns = subsys && n->nsid && n->nsid <= NVT_MAX_NSID ? subsys->ns[n->nsid] : NULL;
	char why[256] = "";
	uint64_t nb;

	if (!ns)
		return;
	if (!ns->be->resize) {
		if (o->size != n->size)
			nvt_reload_refuse(r, n->line, "size", "%s nsid %u: a %s namespace cannot be "
					  "resized live (remove it, reload, add it back)", nqn, n->nsid,
					  ns->be->name);
		return;
	}
	if (ns->be->resize(ns, n, false, &nb, why, sizeof(why)))
		nvt_reload_refuse(r, n->line, "size", "%s nsid %u: cannot resize live: %s", nqn,
				  n->nsid, why);
}

/* A namespace present in both: everything about it but its size is fixed while it runs. */
static void nvt_reload_check_ns(struct nvt_reload *r, const char *nqn, const struct nvt_ns_cfg *o,
				const struct nvt_ns_cfg *n)
{
	if (strcmp(o->backend, n->backend)) {
		nvt_reload_refuse(r, n->line, "backend", "%s nsid %u: cannot change live "
				  "(%s to %s): remove the namespace, reload, add it back", nqn,
				  n->nsid, o->backend, n->backend);
		return;
	}
	if (o->block_size != n->block_size)
		nvt_reload_refuse(r, n->block_size_line ? n->block_size_line : n->line,
				  "block_size", "%s nsid %u: a namespace's block size cannot change "
				  "live (%u to %u)", nqn, n->nsid, o->block_size, n->block_size);
	if (memcmp(&o->pi, &n->pi, sizeof(o->pi)))
		nvt_reload_refuse(r, n->pi_line ? n->pi_line : n->line, "pi",
				  "%s nsid %u: a namespace's protection information format "
				  "cannot change live", nqn, n->nsid);
	nvt_reload_check_resize(r, nqn, o, n);
	if (memcmp(o->uuid, n->uuid, sizeof(o->uuid)) || memcmp(o->nguid, n->nguid, sizeof(o->nguid)))
		nvt_reload_refuse(r, n->line, "uuid", "%s nsid %u: a namespace's identifiers "
				  "cannot change live", nqn, n->nsid);
	for (unsigned int i = 0; i < n->nr_settings && i < NVT_NS_SETTINGS_MAX; i++) {
		const struct nvt_ns_setting *ns = &n->settings[i];

		if (i < o->nr_settings && nvt_setting_same(&o->settings[i], ns))
			continue;
		nvt_reload_refuse(r, ns->line ? ns->line : n->line, ns->name ? ns->name : "backend",
				  "%s nsid %u: a namespace's backend settings cannot change live",
				  nqn, n->nsid);
	}
}

/* @nqn's DH-HMAC-CHAP secrets in @ss, or NULL when it has none. */
static const struct nvt_host_auth_cfg *nvt_cfg_host_auth(const struct nvt_subsys_cfg *ss,
							 const char *nqn)
{
	for (unsigned int i = 0; ss->host_auth && i < ss->nr_hosts; i++)
		if (ss->host_auth[i].dhchap_key[0] && !strcmp(ss->hosts[i], nqn))
			return &ss->host_auth[i];
	return NULL;
}

static bool nvt_host_auth_same(const struct nvt_host_auth_cfg *a, const struct nvt_host_auth_cfg *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a->dhchap_key, b->dhchap_key) &&
	       !strcmp(a->dhchap_ctrl_key, b->dhchap_ctrl_key);
}

/* Authentication settings are fixed while the subsystem runs (its queues hold the keys). */
static void nvt_reload_check_auth(struct nvt_reload *r, const struct nvt_subsys_cfg *o,
				  const struct nvt_subsys_cfg *n)
{
	if (o->require_authentication != n->require_authentication)
		nvt_reload_refuse(r, n->line, "require_authentication", "%s: cannot change live yet",
				  n->nqn);
	for (unsigned int i = 0; i < n->nr_hosts; i++) {
		const struct nvt_host_auth_cfg *na = nvt_cfg_host_auth(n, n->hosts[i]);

		if (!nvt_host_auth_same(nvt_cfg_host_auth(o, n->hosts[i]), na))
			nvt_reload_refuse(r, na ? na->line : n->line, "dhchap_key",
					  "%s: host %s: keys cannot change live yet", n->nqn,
					  n->hosts[i]);
	}
	for (unsigned int i = 0; i < o->nr_hosts; i++)
		if (nvt_cfg_host_auth(o, o->hosts[i]) && !nvt_cfg_host_auth(n, o->hosts[i]))
			nvt_reload_refuse(r, n->line, "dhchap_key",
					  "%s: host %s: keys cannot change live yet", n->nqn,
					  o->hosts[i]);
}

/* A subsystem present in both. */
static void nvt_reload_check_subsys(struct nvt_reload *r, const struct nvt_subsys_cfg *o,
				    const struct nvt_subsys_cfg *n)
{
	if (strcmp(o->serial, n->serial))
		nvt_reload_refuse(r, n->line, "serial", "%s: a subsystem's serial number cannot "
				  "change live (hosts identify it by it)", n->nqn);
	if (strcmp(o->model, n->model))
		nvt_reload_refuse(r, n->line, "model", "%s: a subsystem's model cannot change live",
				  n->nqn);
	if (o->max_io_queues != n->max_io_queues)
		nvt_reload_refuse(r, n->line, "max_io_queues", "%s: cannot change live "
				  "(controllers were told at connect time)", n->nqn);
	nvt_reload_check_auth(r, o, n);
	for (unsigned int i = 0; i < n->nr_namespaces; i++) {
		const struct nvt_ns_cfg *nn = &n->namespaces[i], *on = nvt_cfg_find_ns(o, nn->nsid);

		/* Added: every backend can (channels are made on each group's thread). */
		if (on)
			nvt_reload_check_ns(r, n->nqn, on, nn);
	}
	/*
	 * Removed namespaces: every backend can go (channels dropped on each
	 * group's thread); a namespace a vhost LUN serves too: the new file
	 * passed the loader, so no LUN of it names the namespace, and the LUN
	 * goes first (nvt_reload_apply()).
	 */
}

/* A global setting's line; one the new file leaves out is blamed on its first line. */
static int nvt_reload_top_line(int line)
{
	return line ? line : 1;
}

/* A subsystem only the running file has; @o's line, as the new file has none for it. */
static void nvt_reload_check_subsys_removed(struct nvt_reload *r, const struct nvt_config *o,
					    const struct nvt_config *n,
					    const struct nvt_subsys_cfg *os)
{
	for (unsigned int v = 0; v < o->nr_vhosts; v++)
		for (unsigned int l = 0; l < o->vhosts[v].nr_luns; l++) {
			const struct nvt_vhost_lun_cfg *lc = &o->vhosts[v].luns[l];
			int line = nvt_reload_top_line(n->subsystems_line);

			if (strcmp(lc->subsystem, os->nqn))
				continue;
			for (unsigned int k = 0; k < n->nr_vhosts; k++)
				if (!strcmp(n->vhosts[k].socket, o->vhosts[v].socket))
					line = n->vhosts[k].line;
			nvt_reload_refuse(r, line, "subsystems", "%s: cannot be removed live: vhost "
					  "controller %s serves its nsid %u as LUN %u (a guest has it; "
					  "restart nvtd)", os->nqn, o->vhosts[v].socket, lc->nsid, lc->lun);
			return;
		}
	/* Any backend: its namespaces' channels are dropped on each group's thread. */
}

/* LUN @id of vhost controller @v, or NULL. */
static const struct nvt_vhost_lun_cfg *nvt_cfg_find_lun(const struct nvt_vhost_cfg *v, uint16_t id)
{
	for (unsigned int i = 0; i < v->nr_luns; i++)
		if (v->luns[i].lun == id)
			return &v->luns[i];
	return NULL;
}

/* Does @b serve, as LUN @a->lun, what @a serves? */
static bool nvt_lun_kept(const struct nvt_vhost_lun_cfg *a, const struct nvt_vhost_cfg *b)
{
	const struct nvt_vhost_lun_cfg *l = nvt_cfg_find_lun(b, a->lun);

	return l && l->nsid == a->nsid && !strcmp(l->subsystem, a->subsystem);
}

static bool nvt_luns_differ(const struct nvt_vhost_cfg *a, const struct nvt_vhost_cfg *b)
{
	if (a->nr_luns != b->nr_luns)
		return true;
	for (unsigned int i = 0; i < a->nr_luns; i++)
		if (!nvt_lun_kept(&a->luns[i], b))
			return true;
	return false;
}

/* Same transport, address and port: the same listener (its other settings may differ). */
static bool nvt_listener_key_same(const struct nvt_listener_cfg *a, const struct nvt_listener_cfg *b)
{
	return !strcmp(a->transport, b->transport) && !strcmp(a->address, b->address) &&
	       a->port == b->port;
}

/* @l's listener in @cfg (by transport, address and port), or NULL. */
static const struct nvt_listener_cfg *nvt_cfg_find_listener(const struct nvt_config *cfg,
							    const struct nvt_listener_cfg *l)
{
	for (unsigned int i = 0; i < cfg->nr_listeners; i++)
		if (nvt_listener_key_same(&cfg->listeners[i], l))
			return &cfg->listeners[i];
	return NULL;
}

static uint64_t nvt_listener_max_io(const struct nvt_listener_cfg *l)
{
	return l->max_io_size ? l->max_io_size : NVT_MAX_IO_SIZE_DEFAULT;
}

static unsigned int nvt_cfg_nr_rdma_listeners(const struct nvt_config *cfg)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < cfg->nr_listeners; i++)
		n += !strcmp(cfg->listeners[i].transport, "rdma");
	return n;
}

/*
 * Listeners added or removed: what the running target can take. A changed
 * one (same address, other settings) is refused: removing it first would
 * drop its hosts for a setting, and adding first cannot bind its address.
 */
static void nvt_reload_check_listeners(struct nvt_reload *r, struct nvt_target *tgt,
				       const struct nvt_config *o, const struct nvt_config *n)
{
	int top = nvt_reload_top_line(n->listeners_line);
	unsigned int added = 0, removed = 0;
	uint64_t largest = 0;

	for (unsigned int i = 0; i < o->nr_listeners; i++)
		if (!strcmp(o->listeners[i].transport, "rdma") &&
		    largest < nvt_listener_max_io(&o->listeners[i]))
			largest = nvt_listener_max_io(&o->listeners[i]);
	for (unsigned int i = 0; i < n->nr_listeners; i++) {
		const struct nvt_listener_cfg *nl = &n->listeners[i];
		const struct nvt_listener_cfg *ol = nvt_cfg_find_listener(o, nl);

		if (ol) {
			if (!nvt_listener_same(ol, nl))
				nvt_reload_refuse(r, nl->line, "listeners", "%s %s:%u: a listener's "
						  "settings cannot change live (remove it, reload, add it "
						  "back, reload)", nl->transport, nl->address, nl->port);
			continue;
		}
		added++;
		/* Each poll group's data pool was sized for the largest command at its making. */
		if (!strcmp(nl->transport, "rdma") && largest && nvt_listener_max_io(nl) > largest)
			nvt_reload_refuse(r, nl->line, "max_io_size", "%s:%u: larger than any running "
					  "RDMA listener's (%llu): the data pools are sized for those "
					  "(restart nvtd)", nl->address, nl->port,
					  (unsigned long long)largest);
	}
	for (unsigned int i = 0; i < o->nr_listeners; i++)
		removed += !nvt_cfg_find_listener(n, &o->listeners[i]);
	if (!added && !removed)
		return;
	if (!tgt->reload_listener) {
		nvt_reload_refuse(r, top, "listeners", "no transport front runs here to add or "
				  "remove listeners live");
		return;
	}
	if (tgt->nr_ports + added > NVT_MAX_PORTS)
		nvt_reload_refuse(r, top, "listeners", "%u listeners were configured in this run of "
				  "nvtd already (their slots are never reused): restart it to add more",
				  NVT_MAX_PORTS);
	if (removed && tgt->nr_port_removals)
		nvt_reload_refuse(r, top, "listeners", "a listener removal is still under way: "
				  "reload again in a moment");
	/* The RDMA devices and their pools go with the last RDMA listener: not under running I/O threads. */
	if (nvt_cfg_nr_rdma_listeners(o) && !nvt_cfg_nr_rdma_listeners(n))
		nvt_reload_refuse(r, top, "listeners", "the last RDMA listener cannot be removed "
				  "live (restart nvtd)");
}

/* Everything the new file says that cannot be made live: counted in r->nr_refused. */
static void nvt_reload_check(struct nvt_reload *r, struct nvt_target *tgt,
			     const struct nvt_config *o, const struct nvt_config *n)
{
	if (o->threads != n->threads)
		nvt_reload_refuse(r, nvt_reload_top_line(n->threads_line), "threads",
				  "the number of I/O threads cannot change live (%u to %u%s)",
				  o->threads, n->threads, n->threads_line ? "" : ", left out: the default");
	if (strcmp(o->control_socket, n->control_socket))
		nvt_reload_refuse(r, nvt_reload_top_line(n->control_socket_line), "control_socket",
				  "cannot change live (\"%s\" to \"%s\"%s)", o->control_socket,
				  n->control_socket, n->control_socket_line ? "" : ", left out: none");
	if (o->discovery != n->discovery)
		nvt_reload_refuse(r, nvt_reload_top_line(n->discovery_line), "discovery",
				  "serving discovery or not cannot change live (%s to %s%s)",
				  o->discovery ? "true" : "false", n->discovery ? "true" : "false",
				  n->discovery_line ? "" : ", left out: the default");
	nvt_reload_check_listeners(r, tgt, o, n);
	if (o->nr_vhosts != n->nr_vhosts)
		nvt_reload_refuse(r, 0, "vhost", "adding or removing vhost controllers live is "
				  "not supported yet");
	for (unsigned int i = 0; i < n->nr_vhosts && i < o->nr_vhosts; i++) {
		const struct nvt_vhost_cfg *a = &o->vhosts[i], *b = &n->vhosts[i];

		/* Its LUNs may change (nvt_reload_apply_luns()), the controller itself not. */
		if (strcmp(a->socket, b->socket) || strcmp(a->owner, b->owner) ||
		    strcmp(a->group, b->group) ||
		    a->copy_between_controllers != b->copy_between_controllers)
			nvt_reload_refuse(r, b->line, "vhost", "%s: a vhost controller's socket, "
					  "owner, group and copy_between_controllers cannot change live",
					  b->socket);
		else if (!tgt->vhost_reload_lun && nvt_luns_differ(a, b))
			nvt_reload_refuse(r, b->line, "luns", "%s: no vhost front runs to change "
					  "its LUNs", b->socket);
	}
	for (unsigned int i = 0; i < n->nr_subsystems; i++) {
		const struct nvt_subsys_cfg *ns = &n->subsystems[i];
		const struct nvt_subsys_cfg *os = nvt_cfg_find_subsys(o, ns->nqn);

		/* One only the new file has: any backend (channels made on each group's thread). */
		if (os)
			nvt_reload_check_subsys(r, os, ns);
	}
	for (unsigned int i = 0; i < o->nr_subsystems; i++)
		if (!nvt_cfg_find_subsys(n, o->subsystems[i].nqn))
			nvt_reload_check_subsys_removed(r, o, n, &o->subsystems[i]);
}

/* The first live controller of @subsys its host may no longer hold, referenced; tgt->lock held. */
static struct nvt_ctrl *nvt_reload_next_evicted(struct nvt_subsys *subsys)
{
	for (struct nvt_ctrl *c = subsys->ctrls; c; c = c->next) {
		if (atomic_load(&c->dead) || nvt_subsys_host_allowed_locked(subsys, c->hostnqn))
			continue;
		atomic_fetch_add(&c->refs, 1);
		return c;
	}
	return NULL;
}

/* A copy of @n's allow-list for the subsystem to own; NULL with *@ok false: no memory. */
static char (*nvt_reload_copy_hosts(const struct nvt_subsys_cfg *n, bool *ok))[NVT_NQN_MAX + 1]
{
	char (*hosts)[NVT_NQN_MAX + 1] = NULL;

	*ok = true;
	if (!n->nr_hosts)
		return NULL;
	hosts = calloc(n->nr_hosts, sizeof(*hosts));
	if (!hosts) {
		*ok = false;
		return NULL;
	}
	memcpy(hosts, n->hosts, n->nr_hosts * sizeof(*hosts));
	return hosts;
}

/*
 * A subsystem's allow-list, its copy made beforehand: swapped under the
 * target lock (Connect checks it there too, so no controller of a removed
 * host can slip in after), then the controllers of hosts no longer allowed
 * are torn down.
 */
static void nvt_reload_apply_hosts(struct nvt_reload *r, struct nvt_subsys *subsys,
				   const struct nvt_subsys_cfg *o, const struct nvt_subsys_cfg *n,
				   char (*hosts)[NVT_NQN_MAX + 1])
{
	struct nvt_target *tgt = subsys->tgt;
	char (*old)[NVT_NQN_MAX + 1];
	struct nvt_ctrl *ctrl;

	pthread_mutex_lock(&tgt->lock);
	old = subsys->hosts;
	subsys->hosts = hosts;
	subsys->nr_hosts = n->nr_hosts;
	subsys->allow_any_host = n->allow_any_host;
	subsys->max_ctrls = n->max_controllers ? n->max_controllers : NVT_DEFAULT_CTRLS_PER_SUBSYS;
	pthread_mutex_unlock(&tgt->lock);
	free(old);

	if (o->allow_any_host != n->allow_any_host)
		nvt_reload_note(r, "%s: allow_any_host %s", n->nqn,
				n->allow_any_host ? "true" : "false");
	if (o->max_controllers != n->max_controllers)
		nvt_reload_note(r, "%s: max_controllers %u (live controllers beyond it stay)",
				n->nqn, n->max_controllers);
	for (unsigned int i = 0; i < n->nr_hosts; i++)
		if (!nvt_cfg_has_host(o, n->hosts[i]))
			nvt_reload_note(r, "%s: host %s allowed", n->nqn, n->hosts[i]);
	for (unsigned int i = 0; i < o->nr_hosts; i++)
		if (!nvt_cfg_has_host(n, o->hosts[i]))
			nvt_reload_note(r, "%s: host %s no longer allowed", n->nqn, o->hosts[i]);

	for (;;) {
		pthread_mutex_lock(&tgt->lock);
		ctrl = nvt_reload_next_evicted(subsys);
		pthread_mutex_unlock(&tgt->lock);
		if (!ctrl)
			break;
		nvt_reload_note(r, "%s: controller %u of %s torn down", n->nqn, ctrl->cntlid,
				ctrl->hostnqn);
		nvt_ctrl_fatal(ctrl, "host removed from the allow-list");
		nvt_ctrl_put(ctrl);
	}
}

static bool nvt_hosts_differ(const struct nvt_subsys_cfg *o, const struct nvt_subsys_cfg *n)
{
	if (o->allow_any_host != n->allow_any_host || o->nr_hosts != n->nr_hosts ||
	    o->max_controllers != n->max_controllers)
		return true;
	for (unsigned int i = 0; i < n->nr_hosts; i++)
		if (!nvt_cfg_has_host(o, n->hosts[i]))
			return true;
	return false;
}

/* A namespace kept: grown if its file (or size) says so. Return: 0 or -errno (refused, said). */
static int nvt_reload_apply_resize(struct nvt_reload *r, struct nvt_subsys *subsys,
				   const struct nvt_ns_cfg *nc)
{
	char why[256] = "";
	uint64_t old = 0;
	int ret = nvt_subsys_resize_ns(subsys, nc, &old, why, sizeof(why));

	if (ret < 0) {
		nvt_reload_refuse(r, nc->line, "size", "%s nsid %u: cannot resize: %s", subsys->nqn,
				  nc->nsid, why[0] ? why : strerror(-ret));
		return ret;
	}
	if (ret)
		nvt_reload_note(r, "%s: nsid %u resized (%llu to %llu blocks of %u bytes)",
				subsys->nqn, nc->nsid, (unsigned long long)old,
				(unsigned long long)subsys->ns[nc->nsid]->nblocks, nc->block_size);
	return 0;
}

/*
 * Subsystems only one side has. The new ones are all built (namespaces
 * opened) before any is published or any old one removed, so a failure
 * to build changes nothing here; removals before publications, so a host
 * moving its controllers over finds the old gone. A subsystem already
 * published or gone (a reload that failed after it) is skipped.
 * Return: 0 or -errno (refused and reported).
 */
static int nvt_reload_apply_subsystems(struct nvt_reload *r, struct nvt_target *tgt,
				       const struct nvt_config *o, const struct nvt_config *n)
{
	struct nvt_subsys **added;
	bool changed = false;
	int ret = 0;

	added = calloc(n->nr_subsystems ? n->nr_subsystems : 1, sizeof(*added));
	if (!added)
		return -ENOMEM;
	for (unsigned int i = 0; i < n->nr_subsystems && !ret; i++) {
		const struct nvt_subsys_cfg *ns = &n->subsystems[i];

		if (nvt_cfg_find_subsys(o, ns->nqn) || nvt_target_find_subsys(tgt, ns->nqn))
			continue;
		ret = nvt_subsys_prepare(tgt, ns, &added[i]);
		if (ret)
			nvt_reload_refuse(r, ns->line, "subsystems", "%s: cannot be built: %s",
					  ns->nqn, strerror(-ret));
	}
	for (unsigned int i = 0; i < o->nr_subsystems && !ret; i++) {
		const struct nvt_subsys_cfg *os = &o->subsystems[i];
		struct nvt_subsys *subsys;
		unsigned int nr_ctrls;

		if (nvt_cfg_find_subsys(n, os->nqn))
			continue;
		subsys = nvt_target_find_subsys(tgt, os->nqn);
		if (!subsys)
			continue;
		pthread_mutex_lock(&tgt->lock);
		nr_ctrls = subsys->nr_ctrls;
		pthread_mutex_unlock(&tgt->lock);
		ret = nvt_target_remove_subsys(tgt, subsys);
		if (ret) {
			nvt_reload_refuse(r, nvt_reload_top_line(n->subsystems_line), "subsystems",
					  "%s (line %d of the running file): cannot be removed now: %s",
					  os->nqn, os->line, ret == -EBUSY ? "a scrub is running on one of its namespaces "
					  "(try again when it is done)" : strerror(-ret));
			break;
		}
		changed = true;
		nvt_reload_note(r, "%s: subsystem removed (%u controller(s) torn down)", os->nqn,
				nr_ctrls);
	}
	for (unsigned int i = 0; i < n->nr_subsystems; i++) {
		int err;

		if (!added[i])
			continue;
		err = ret ? ret : nvt_target_publish_subsys(tgt, added[i]);
		if (err) {
			if (!ret)
				nvt_reload_refuse(r, n->subsystems[i].line, "subsystems",
						  "%s: cannot be published: %s", added[i]->nqn,
						  strerror(-err));
			ret = err;
			nvt_subsys_put(added[i]);
			continue;
		}
		changed = true;
		nvt_reload_note(r, "%s: subsystem added (%u namespace(s))", n->subsystems[i].nqn,
				n->subsystems[i].nr_namespaces);
	}
	free(added);
	/* Discovery controllers re-read log 70h: records came or went. */
	if (changed)
		nvt_discovery_changed(tgt);
	return ret;
}

/*
 * The vhost LUNs of @from that @to does not serve the same way: removed
 * (@add false, from the old file) or added (@add true, from the new one).
 * A LUN whose namespace changed is both. Return: 0 or -errno (an add
 * failed: refused, with what came before it staying).
 */
static int nvt_reload_apply_luns(struct nvt_reload *r, struct nvt_target *tgt,
				 const struct nvt_config *from, const struct nvt_config *to, bool add)
{
	for (unsigned int i = 0; i < from->nr_vhosts && i < to->nr_vhosts; i++) {
		const struct nvt_vhost_cfg *v = &from->vhosts[i];

		for (unsigned int l = 0; l < v->nr_luns; l++) {
			const struct nvt_vhost_lun_cfg *lc = &v->luns[l];
			int ret;

			if (nvt_lun_kept(lc, &to->vhosts[i]))
				continue;
			ret = tgt->vhost_reload_lun(tgt, v->socket, lc, add);
			if (ret == (add ? -EEXIST : -ENOENT))
				continue;	/* done by a reload that failed later on */
			if (ret) {
				nvt_reload_refuse(r, lc->line, "luns", "%s: LUN %u: cannot be %s: %s",
						  v->socket, lc->lun, add ? "added" : "removed",
						  strerror(-ret));
				return ret;
			}
			if (add)
				nvt_reload_note(r, "vhost %s: LUN %u added (%s nsid %u)", v->socket,
						lc->lun, lc->subsystem, lc->nsid);
			else
				nvt_reload_note(r, "vhost %s: LUN %u removed", v->socket, lc->lun);
		}
	}
	return 0;
}

/* An ANA group moved by the reload (nvt_target_ana_reload's report). */
static void nvt_reload_ana_note(void *arg, uint32_t grpid, const char *state, int told)
{
	nvt_reload_note(arg, "ana group %u %s, %d controller(s) notified", grpid, state, told);
}

/*
 * Everything but the listeners: only what nvt_reload_check() let through
 * differs. Whatever can fail (memory) is done first, so a failure changes
 * nothing. Return: 0 or -errno.
 */
static int nvt_reload_apply_rest(struct nvt_reload *r, struct nvt_target *tgt,
				 const struct nvt_config *o, const struct nvt_config *n)
{
	char (**hosts)[NVT_NQN_MAX + 1];
	bool disc_changed = false, ok = true;
	int sret;

	hosts = calloc(n->nr_subsystems ? n->nr_subsystems : 1, sizeof(*hosts));
	if (!hosts)
		return -ENOMEM;
	for (unsigned int i = 0; i < n->nr_subsystems && ok; i++)
		hosts[i] = nvt_reload_copy_hosts(&n->subsystems[i], &ok);
	if (!ok) {
		for (unsigned int i = 0; i < n->nr_subsystems; i++)
			free(hosts[i]);
		free(hosts);
		return -ENOMEM;
	}

	/*
	 * vhost LUNs removed before the namespaces they served: the guest is
	 * told and their commands drained first.
	 */
	if (tgt->vhost_reload_lun && nvt_reload_apply_luns(r, tgt, o, n, false)) {
		for (unsigned int i = 0; i < n->nr_subsystems; i++)
			free(hosts[i]);
		free(hosts);
		return -EIO;
	}
	/*
	 * Removed namespaces before anything else: the only refusal left here
	 * (a scrub running on it) then changes nothing but earlier removals.
	 */
	for (unsigned int i = 0; i < o->nr_subsystems; i++) {
		const struct nvt_subsys_cfg *os = &o->subsystems[i];
		const struct nvt_subsys_cfg *ns = nvt_cfg_find_subsys(n, os->nqn);
		struct nvt_subsys *subsys = nvt_target_find_subsys(tgt, os->nqn);

		for (unsigned int k = 0; ns && subsys && k < os->nr_namespaces; k++) {
			const struct nvt_ns_cfg *oc = &os->namespaces[k];
			int ret;

			if (nvt_cfg_find_ns(ns, oc->nsid))
				continue;
			ret = nvt_subsys_remove_ns(subsys, oc->nsid);
			if (ret == -ENOENT)
				continue;	/* removed by a reload that failed later on */
			if (ret) {
				for (unsigned int m = 0; m < n->nr_subsystems; m++)
					free(hosts[m]);
				free(hosts);
				nvt_reload_refuse(r, ns->line, "namespaces", "%s nsid %u: cannot be "
						  "removed now: %s", os->nqn, oc->nsid, ret == -EBUSY ?
						  "a scrub is running on it (try again when it is done)" :
						  strerror(-ret));
				return ret;
			}
			nvt_reload_note(r, "%s: nsid %u removed", os->nqn, oc->nsid);
		}
	}
	/*
	 * Namespaces first: opening a backend can fail (memory), and then what
	 * was added before it stays (the reply says so) and nothing else is
	 * applied; a later reload finds those already there and goes on.
	 */
	for (unsigned int i = 0; i < n->nr_subsystems; i++) {
		const struct nvt_subsys_cfg *ns = &n->subsystems[i];
		const struct nvt_subsys_cfg *os = nvt_cfg_find_subsys(o, ns->nqn);
		struct nvt_subsys *subsys = nvt_target_find_subsys(tgt, ns->nqn);

		for (unsigned int k = 0; os && subsys && k < ns->nr_namespaces; k++) {
			const struct nvt_ns_cfg *nc = &ns->namespaces[k];
			int ret;

			if (nvt_cfg_find_ns(os, nc->nsid)) {
				ret = nvt_reload_apply_resize(r, subsys, nc);
				if (ret) {
					for (unsigned int m = 0; m < n->nr_subsystems; m++)
						free(hosts[m]);
					free(hosts);
					return ret;
				}
				continue;
			}
			ret = nvt_subsys_add_ns(subsys, nc);
			if (ret == -EEXIST)
				continue;	/* added by a reload that failed later on */
			if (ret) {
				for (unsigned int m = 0; m < n->nr_subsystems; m++)
					free(hosts[m]);
				free(hosts);
				nvt_reload_refuse(r, nc->line, "namespaces", "%s nsid %u: cannot open: %s",
						  ns->nqn, nc->nsid, strerror(-ret));
				return ret;
			}
			nvt_reload_note(r, "%s: nsid %u added (%s, %llu blocks of %u bytes)", ns->nqn,
					nc->nsid, nc->backend,
					(unsigned long long)subsys->ns[nc->nsid]->nblocks,
					nc->block_size);
		}
	}
	sret = nvt_reload_apply_subsystems(r, tgt, o, n);
	if (sret) {
		for (unsigned int i = 0; i < n->nr_subsystems; i++)
			free(hosts[i]);
		free(hosts);
		return sret;
	}
	/* LUNs added once the namespaces they serve exist. */
	if (tgt->vhost_reload_lun) {
		int ret = nvt_reload_apply_luns(r, tgt, n, o, true);

		if (ret) {
			for (unsigned int m = 0; m < n->nr_subsystems; m++)
				free(hosts[m]);
			free(hosts);
			return ret;
		}
	}
	if (o->log_level != n->log_level) {
		nvt_log_set_level((enum nvt_log_level)n->log_level);
		nvt_reload_note(r, "log_level %s", nvt_log_level_name((enum nvt_log_level)n->log_level));
	}
	if (o->max_controllers_per_host != n->max_controllers_per_host) {
		pthread_mutex_lock(&tgt->lock);
		tgt->max_ctrls_per_host = n->max_controllers_per_host ? n->max_controllers_per_host :
					  NVT_DEFAULT_CTRLS_PER_HOST;
		pthread_mutex_unlock(&tgt->lock);
		nvt_reload_note(r, "max_controllers_per_host %u", n->max_controllers_per_host);
	}
	nvt_target_ana_reload(tgt, o, n, nvt_reload_ana_note, r);
	for (unsigned int i = 0; i < n->nr_subsystems; i++) {
		const struct nvt_subsys_cfg *ns = &n->subsystems[i];
		const struct nvt_subsys_cfg *os = nvt_cfg_find_subsys(o, ns->nqn);
		struct nvt_subsys *subsys = nvt_target_find_subsys(tgt, ns->nqn);

		if (!os || !subsys || !nvt_hosts_differ(os, ns))
			continue;
		nvt_reload_apply_hosts(r, subsys, os, ns, hosts[i]);
		hosts[i] = NULL;	/* the subsystem's now */
		disc_changed = true;
	}
	for (unsigned int i = 0; i < n->nr_subsystems; i++)
		free(hosts[i]);
	free(hosts);
	/* Who may see which subsystem changed: discovery controllers re-read log 70h. */
	if (disc_changed)
		nvt_discovery_changed(tgt);
	return 0;
}

/* The configured port of listener @l, or NULL; main loop (the only one that changes them). */
static struct nvt_port *nvt_target_find_port(struct nvt_target *tgt,
					     const struct nvt_listener_cfg *l)
{
	for (unsigned int i = 0; i < tgt->nr_ports; i++)
		if (tgt->ports[i].used && nvt_listener_key_same(&tgt->ports[i].cfg, l))
			return &tgt->ports[i];
	return NULL;
}

/* A listener's removal, run once the main loop's batch is done (see nvt_reload_remove_listeners()). */
struct nvt_port_removal {
	struct nvt_pg_deferred d;
	struct nvt_target *tgt;
	struct nvt_port *port;
};

static void nvt_port_removal_run(struct nvt_pg_deferred *d)
{
	struct nvt_port_removal *pr = container_of(d, struct nvt_port_removal, d);
	struct nvt_port *port = pr->port;

	nvt_info("listener %s %s:%u: stopping; the hosts that came in through it are disconnected",
		 port->cfg.transport, port->cfg.address, port->cfg.port);
	pr->tgt->reload_listener(pr->tgt, port, false);
	pr->tgt->nr_port_removals--;
	free(pr);
}

/*
 * Listeners only the new file has, made to listen into fresh slots before
 * anything else changes; one that cannot (its address taken, not on this
 * machine) stops those added before it, so a failure changes nothing.
 * Return: 0 or -errno (refused and reported).
 */
static int nvt_reload_add_listeners(struct nvt_reload *r, struct nvt_target *tgt,
				    const struct nvt_config *n)
{
	unsigned int first = tgt->nr_ports;

	for (unsigned int i = 0; i < n->nr_listeners; i++) {
		const struct nvt_listener_cfg *nl = &n->listeners[i];
		struct nvt_port *port;
		int ret;

		/* Running already (the running file's, or added by a reload that failed later on). */
		if (nvt_target_find_port(tgt, nl))
			continue;
		port = &tgt->ports[tgt->nr_ports];
		*port = (struct nvt_port){ .tgt = tgt, .portid = (uint16_t)(tgt->nr_ports + 1),
					   .cfg = *nl };
		ret = tgt->reload_listener(tgt, port, true);
		if (ret && ret != -ENODEV) {
			nvt_reload_refuse(r, nl->line, "listeners", "%s %s:%u: cannot listen: %s",
					  nl->transport, nl->address, nl->port, strerror(-ret));
			*port = (struct nvt_port){ 0 };
			/* No host reached those yet: nothing polled the main loop since they listen. */
			for (unsigned int k = first; k < tgt->nr_ports; k++) {
				pthread_mutex_lock(&tgt->lock);
				tgt->ports[k].used = false;
				pthread_mutex_unlock(&tgt->lock);
				tgt->reload_listener(tgt, &tgt->ports[k], false);
			}
			return ret;
		}
		/* Under the lock: discovery walks the ports there, from the table's end. */
		pthread_mutex_lock(&tgt->lock);
		port->used = true;
		tgt->nr_ports++;
		pthread_mutex_unlock(&tgt->lock);
	}
	for (unsigned int k = first; k < tgt->nr_ports; k++) {
		const struct nvt_port *port = &tgt->ports[k];

		nvt_reload_note(r, "listener %s %s:%u added%s", port->cfg.transport,
				port->cfg.address, port->cfg.port,
				port->listening ? "" : " (not listening: see the log)");
	}
	return 0;
}

/* Port @k runs a listener @n does not have (the running file's, or one a failed reload added). */
static bool nvt_port_goes(const struct nvt_target *tgt, unsigned int k, const struct nvt_config *n)
{
	return tgt->ports[k].used && !nvt_cfg_find_listener(n, &tgt->ports[k].cfg);
}

/* Do the listeners running (the ports) differ from @n's? */
static bool nvt_listeners_differ(struct nvt_target *tgt, const struct nvt_config *n)
{
	for (unsigned int k = 0; k < tgt->nr_ports; k++)
		if (nvt_port_goes(tgt, k, n))
			return true;
	for (unsigned int i = 0; i < n->nr_listeners; i++)
		if (!nvt_target_find_port(tgt, &n->listeners[i]))
			return true;
	return false;
}

/*
 * Ports @n has no listener for (among the first @nr_old, those before the
 * additions): out of the ports (discovery stops listing them) now, stopped
 * once the main loop's batch is done (this runs inside one, which may hold
 * events for the listener's own watches; the transport's stop polls the
 * loop while its hosts leave). The ports, not the running file, say what
 * runs: a listener a failed reload added goes when a later file drops it.
 * @jobs, one per port that goes, were allocated beforehand; those used are
 * taken.
 */
static void nvt_reload_remove_listeners(struct nvt_reload *r, struct nvt_target *tgt,
					const struct nvt_config *n, unsigned int nr_old,
					struct nvt_port_removal **jobs)
{
	for (unsigned int k = 0; k < nr_old; k++) {
		struct nvt_port *port = &tgt->ports[k];

		if (!nvt_port_goes(tgt, k, n))
			continue;
		pthread_mutex_lock(&tgt->lock);
		port->used = false;
		pthread_mutex_unlock(&tgt->lock);
		nvt_reload_note(r, "listener %s %s:%u removed (its hosts are disconnected)",
				port->cfg.transport, port->cfg.address, port->cfg.port);
		jobs[k]->tgt = tgt;
		jobs[k]->port = port;
		jobs[k]->d.fn = nvt_port_removal_run;
		tgt->nr_port_removals++;
		if (tgt->pg)
			nvt_poll_group_defer(tgt->pg, &jobs[k]->d);
		else
			nvt_port_removal_run(&jobs[k]->d);	/* no main loop: nothing in a batch */
		jobs[k] = NULL;
	}
}

/*
 * Make @n run: listeners added first (their failure changes nothing), then
 * the rest, then listeners removed (nothing after can fail). Return: 0 or
 * -errno.
 */
static int nvt_reload_apply(struct nvt_reload *r, struct nvt_target *tgt,
			    const struct nvt_config *o, const struct nvt_config *n)
{
	bool listeners = nvt_listeners_differ(tgt, n);
	unsigned int nr_old = tgt->nr_ports;
	struct nvt_port_removal **jobs;
	int ret;

	jobs = calloc(nr_old ? nr_old : 1, sizeof(*jobs));
	if (!jobs)
		return -ENOMEM;
	for (unsigned int k = 0; k < nr_old; k++) {
		if (!nvt_port_goes(tgt, k, n))
			continue;
		jobs[k] = calloc(1, sizeof(*jobs[k]));
		if (!jobs[k]) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = listeners ? nvt_reload_add_listeners(r, tgt, n) : 0;
	if (ret)
		goto out;
	ret = nvt_reload_apply_rest(r, tgt, o, n);
	if (!ret && listeners)
		nvt_reload_remove_listeners(r, tgt, n, nr_old, jobs);
	/* Records came or went (those added stay if the rest failed): discovery controllers re-read log 70h. */
	if (listeners)
		nvt_discovery_changed(tgt);
out:
	for (unsigned int k = 0; k < nr_old; k++)
		free(jobs[k]);
	free(jobs);
	return ret;
}

int nvt_target_reload(struct nvt_target *tgt, struct nvt_config *running, FILE *out)
{
	struct nvt_reload r = { .tgt = tgt, .file = running->path ? running->path : "?", .out = out };
	struct nvt_config n;
	char *errs = NULL;
	size_t errs_len = 0;
	FILE *errf;
	int ret;

	if (!running->path)
		return -ENOENT;
	errf = open_memstream(&errs, &errs_len);
	if (!errf)
		return -ENOMEM;
	ret = nvt_config_load(running->path, &n, errf);
	fclose(errf);
	if (ret) {
		/* The parser's own "file:line: setting: message" lines, logged and replied. */
		for (char *save, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			nvt_err("%s", l);
			if (out)
				fprintf(out, "%s\n", l);
		}
		free(errs);
		nvt_err("%s: not reloaded, nothing changed", r.file);
		return ret;
	}
	free(errs);
	nvt_reload_check(&r, tgt, running, &n);
	if (r.nr_refused) {
		nvt_err("%s: not reloaded (%u setting(s) cannot change live), nothing changed",
			r.file, r.nr_refused);
		nvt_config_free(&n);
		return -EINVAL;
	}
	ret = nvt_reload_apply(&r, tgt, running, &n);
	if (ret) {
		nvt_err("%s: reload stopped: %s (changes listed before it stay)", r.file, strerror(-ret));
		nvt_config_free(&n);
		return ret;
	}
	nvt_info("%s: reloaded, %u change(s)", r.file, r.nr_changes);
	nvt_config_free(running);
	*running = n;
	return (int)r.nr_changes;
}
