/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtd: load the configuration, build the target, serve until SIGTERM/SIGINT, tear everything down. */
#define NVT_LOG_PREFIX ""
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "nvt/config.h"
#include "nvt/control.h"
#include "nvt/log.h"
#include "nvt/notify.h"
#include "nvt/poll_group.h"
#include "nvt/target.h"
#include "nvt/transport.h"
#include "nvt/vhost.h"
#include "nvt/util.h"

/* Exit codes, documented in the README. */
enum {
	NVTD_EXIT_OK = 0,	/* clean shutdown, or a valid configuration */
	NVTD_EXIT_CONFIG = 1,	/* the configuration is invalid */
	NVTD_EXIT_USAGE = 2,	/* bad command line */
	NVTD_EXIT_START = 3,	/* could not start: a backend or listener failed */
};

#define NVTD_TICK_MS	100	/* keep-alive checks run this often */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nvtd -c FILE [--log-level LEVEL]   serve in the foreground\n"
		"       nvtd --check-config FILE          validate, print the normalised config\n"
		"       nvtd --version\n"
		"LEVEL is error, warn, info (default) or debug.\n");
}

/* What a host should dial: the address itself, unless it is a wildcard. */
static const char *nvtd_host_addr(const struct nvt_listener_cfg *cfg)
{
	if (!strcmp(cfg->address, "0.0.0.0") || !strcmp(cfg->address, "::"))
		return "<an address of this machine's RDMA interface>";
	return cfg->address;
}

/* One listener up: 0, -ENODEV (said why: configured, not listening) or -errno (said). */
static int nvtd_port_start(struct nvt_port *port)
{
	int ret;

	port->ops = nvt_transport_find(port->cfg.transport);
	if (!port->ops || !port->ops->listen) {
		nvt_warn("listener %s %s:%u: this build has no %s transport yet; "
			 "not listening", port->cfg.transport, port->cfg.address,
			 port->cfg.port, port->cfg.transport);
		return -ENODEV;
	}
	ret = port->ops->listen(port);
	if (ret == -ENODEV)
		return ret;	/* the transport said why, and how to fix it */
	if (ret) {
		nvt_err("listener %s %s:%u: %s", port->cfg.transport,
			port->cfg.address, port->cfg.port, strerror(-ret));
		return ret;
	}
	port->listening = true;
	nvt_info("listening on %s %s:%u; from a host: nvme discover -t %s -a %s -s %u",
		 port->cfg.transport, port->cfg.address, port->cfg.port,
		 port->cfg.transport, nvtd_host_addr(&port->cfg), port->cfg.port);
	return 0;
}

/*
 * Stopped before stop_listen() runs, which polls the main loop: a removal
 * queued there (a reload's) then finds it stopped and leaves it alone.
 */
static void nvtd_port_stop(struct nvt_port *port)
{
	if (!port->listening)
		return;
	port->listening = false;
	port->ops->stop_listen(port);
}

static int nvtd_start_listeners(struct nvt_target *tgt)
{
	for (unsigned int i = 0; i < tgt->nr_ports; i++) {
		int ret = nvtd_port_start(&tgt->ports[i]);

		if (ret && ret != -ENODEV)
			return ret;
	}
	return 0;
}

/* tgt->reload_listener: a listener added or removed by a reload (target/reload.c). */
static int nvtd_reload_listener(struct nvt_target *tgt, struct nvt_port *port, bool add)
{
	(void)tgt;
	if (add)
		return nvtd_port_start(port);
	nvtd_port_stop(port);
	return 0;
}

static unsigned int nvtd_nr_listening(const struct nvt_target *tgt)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < tgt->nr_ports; i++)
		n += tgt->ports[i].listening;
	return n;
}

static void nvtd_vhost_status(struct nvt_target *tgt, FILE *out)
{
	for (unsigned int i = 0; i < tgt->nr_vhosts; i++)
		nvt_vhost_ctrl_status(tgt->vhosts[i], out);
}

/* vhost-user-scsi sockets, after the I/O threads exist (their request queues run there). */
static int nvtd_start_vhosts(struct nvt_target *tgt, const struct nvt_config *cfg)
{
	if (!cfg->nr_vhosts)
		return 0;
	tgt->vhosts = calloc(cfg->nr_vhosts, sizeof(*tgt->vhosts));
	if (!tgt->vhosts)
		return -ENOMEM;
	tgt->front_status = nvtd_vhost_status;
	for (unsigned int i = 0; i < cfg->nr_vhosts; i++) {
		int ret = nvt_vhost_ctrl_create(tgt, &cfg->vhosts[i], &tgt->vhosts[i]);

		if (ret)
			return ret;	/* create said why, with the config line */
		tgt->nr_vhosts++;
		nvt_info("vhost-user-scsi on %s: %u LUN(s); from QEMU: -chardev socket,id=vus%u,"
			 "path=%s -device vhost-user-scsi-pci,chardev=vus%u", cfg->vhosts[i].socket,
			 cfg->vhosts[i].nr_luns, i, cfg->vhosts[i].socket, i);
	}
	return 0;
}

static void nvtd_stop_vhosts(struct nvt_target *tgt)
{
	for (unsigned int i = 0; i < tgt->nr_vhosts; i++)
		nvt_vhost_ctrl_destroy(tgt->vhosts[i]);
	free(tgt->vhosts);
	tgt->vhosts = NULL;
	tgt->nr_vhosts = 0;
	tgt->front_status = NULL;
}

static void nvtd_stop_listeners(struct nvt_target *tgt)
{
	for (unsigned int i = 0; i < tgt->nr_ports; i++)
		nvtd_port_stop(&tgt->ports[i]);
}

struct nvtd {
	struct nvt_target *tgt;
	struct nvt_pg_watch signal_watch;
	struct nvt_pg_watch tick_watch;
	bool stop;
};

static void nvtd_on_signal(struct nvt_pg_watch *w)
{
	struct nvtd *d = container_of(w, struct nvtd, signal_watch);
	struct signalfd_siginfo si;

	if (read(w->fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		int ret;

		/* Like nvtctl reload; what it found and did goes to the log. */
		nvt_info("SIGHUP: reloading %s", d->tgt->cfg ? d->tgt->cfg->path : "?");
		nvt_notify("RELOADING=1\nSTATUS=reloading");
		ret = d->tgt->cfg ? nvt_target_reload(d->tgt, d->tgt->cfg, NULL) : -ENOENT;
		if (ret < 0)
			nvt_notify("READY=1\nSTATUS=reload refused, nothing changed (see the log)");
		else
			nvt_notify("READY=1\nSTATUS=reloaded, %d change(s)", ret);
		return;
	}
	{
		nvt_info("%s: shutting down", strsignal((int)si.ssi_signo));
		/* Before the teardown, which can take long (the nvme backend reaps
		 * commands for up to 90 s): systemd then knows it is on its way. */
		nvt_notify("STOPPING=1\nSTATUS=%s: shutting down", strsignal((int)si.ssi_signo));
		d->stop = true;
	}
}

static void nvtd_on_tick(struct nvt_pg_watch *w)
{
	struct nvtd *d = container_of(w, struct nvtd, tick_watch);
	uint64_t ticks;

	if (read(w->fd, &ticks, sizeof(ticks)) == sizeof(ticks))
		nvt_target_check_keep_alive(d->tgt, nvt_now_ns());
}

/* The main loop: signals, the keep-alive tick, and every transport fd. */
static int nvtd_serve(struct nvtd *d)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = 0, .tv_nsec = NVTD_TICK_MS * 1000000L },
		.it_value = { .tv_sec = 0, .tv_nsec = NVTD_TICK_MS * 1000000L },
	};
	struct nvt_poll_group *pg = d->tgt->pg;
	sigset_t mask;
	int ret = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	d->signal_watch.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->signal_watch.fn = nvtd_on_signal;
	d->tick_watch.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->tick_watch.fn = nvtd_on_tick;
	if (d->signal_watch.fd < 0 || d->tick_watch.fd < 0) {
		ret = -errno;
		goto out_close;
	}
	timerfd_settime(d->tick_watch.fd, 0, &its, NULL);
	ret = nvt_poll_group_add(pg, &d->signal_watch);
	if (!ret)
		ret = nvt_poll_group_add(pg, &d->tick_watch);
	if (ret)
		goto out_close;

	nvt_info("ready: %u subsystem(s), %u listener(s)", d->tgt->nr_subsys, d->tgt->nr_ports);
	/*
	 * Every listener listens, every vhost socket exists and the control
	 * socket accepts by now, and the signal watch is in place: a unit
	 * ordered after nvtd.service finds everything it may connect to.
	 */
	nvt_notify("READY=1\nSTATUS=serving %u subsystem(s); %u of %u listener(s) up; "
		   "%u vhost controller(s)", d->tgt->nr_subsys, nvtd_nr_listening(d->tgt),
		   d->tgt->nr_ports, d->tgt->nr_vhosts);
	while (!d->stop) {
		ret = nvt_poll_group_poll(pg, -1);
		if (ret < 0)
			break;
		ret = 0;
	}
	nvt_poll_group_del(pg, &d->tick_watch);
	nvt_poll_group_del(pg, &d->signal_watch);
out_close:
	if (d->tick_watch.fd >= 0)
		close(d->tick_watch.fd);
	if (d->signal_watch.fd >= 0)
		close(d->signal_watch.fd);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *level_arg = NULL;
	struct nvt_config cfg;
	struct nvt_target *tgt;
	bool check_only = false;
	struct nvt_control *control = NULL;
	FILE *errf;
	sigset_t sigs;
	int opt, ret, status = NVTD_EXIT_OK;

	/* Both read the environment, before any thread exists. */
	nvt_log_init();
	nvt_notify_init();
	while ((opt = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			path = optarg;
			check_only = true;
			break;
		case 'l':
			level_arg = optarg;
			break;
		case 'V':
			printf("nvtd %s (transports:%s)\n", NVT_VERSION, nvt_transport_names());
			return NVTD_EXIT_OK;
		case 'h':
			usage(stdout);
			return NVTD_EXIT_OK;
		default:
			usage(stderr);
			return NVTD_EXIT_USAGE;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return NVTD_EXIT_USAGE;
	}
	if (level_arg && nvt_log_level_parse(level_arg) < 0) {
		fprintf(stderr, "nvtd: unknown log level '%s'\n", level_arg);
		return NVTD_EXIT_USAGE;
	}

	/* The loader's file:line errors are errors in the journal too, not the unit's default. */
	errf = nvt_log_stream(NVT_LOG_ERR);
	ret = nvt_config_load(path, &cfg, errf);
	nvt_log_stream_close(errf);
	if (ret)
		return NVTD_EXIT_CONFIG;
	if (check_only) {
		nvt_config_print(&cfg, stdout);
		nvt_config_free(&cfg);
		return NVTD_EXIT_OK;
	}
	/* The command line wins over the file. */
	nvt_log_set_level(level_arg ? (enum nvt_log_level)nvt_log_level_parse(level_arg) :
				      (enum nvt_log_level)cfg.log_level);

	nvt_notify("STATUS=starting from %s", path);
	ret = nvt_target_create(&cfg, &tgt);
	if (!ret)
		tgt->cfg = &cfg;	/* reload diffs against it and replaces it */
	if (ret) {
		nvt_err("cannot build the target from %s: %s", path, strerror(-ret));
		nvt_notify("STATUS=cannot build the target from %s: %s", path, strerror(-ret));
		nvt_config_free(&cfg);
		return NVTD_EXIT_START;
	}
	/* Blocked before any thread exists, so every thread inherits it and only
	 * the main loop's signalfd sees SIGTERM/SIGINT. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	ret = nvt_poll_group_create(&tgt->pg);
	if (ret) {
		nvt_err("cannot create the event loop: %s", strerror(-ret));
		status = NVTD_EXIT_START;
		goto out_destroy;
	}
	/* The main loop serves I/O queues too when there are no I/O threads. */
	ret = nvt_target_attach_pg(tgt, tgt->pg);
	if (!ret)
		ret = nvt_target_start_io_pgs(tgt, cfg.threads);
	if (!ret)
		ret = nvtd_start_listeners(tgt);
	tgt->reload_listener = nvtd_reload_listener;
	if (!ret)
		ret = nvtd_start_vhosts(tgt, &cfg);
	if (!ret && cfg.control_socket[0]) {
		ret = nvt_control_create(tgt, cfg.control_socket, &control);
		if (ret)
			nvt_err("control socket %s: %s", cfg.control_socket, strerror(-ret));
	}
	if (!ret) {
		struct nvtd d = { .tgt = tgt };

		ret = nvtd_serve(&d);
	}
	if (ret) {
		/* systemd shows the last STATUS= in "systemctl status". */
		nvt_notify("STOPPING=1\nSTATUS=failed: %s (see the log)", strerror(-ret));
		status = NVTD_EXIT_START;
	}
	/* Controllers first (hosts are told), then listeners drain their queues. */
	nvt_control_destroy(control);
	/* Guests' queues drain on the I/O threads, which still run. */
	nvtd_stop_vhosts(tgt);
	nvt_target_stop(tgt);
	nvtd_stop_listeners(tgt);
	nvt_target_stop_io_pgs(tgt);
	nvt_target_detach_pg(tgt, tgt->pg);
	nvt_poll_group_destroy(tgt->pg);
out_destroy:
	nvt_target_destroy(tgt);
	nvt_config_free(&cfg);
	nvt_info("stopped");
	return status;
}
