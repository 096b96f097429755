/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtd: load the configuration, build the target, serve until SIGTERM/SIGINT, tear everything down. */
#define NVT_LOG_PREFIX ""
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "nvt/config.h"
#include "nvt/log.h"
#include "nvt/target.h"
#include "nvt/transport.h"

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

static int nvtd_start_listeners(struct nvt_target *tgt)
{
	for (unsigned int i = 0; i < tgt->nr_ports; i++) {
		struct nvt_port *port = &tgt->ports[i];
		int ret;

		port->ops = nvt_transport_find(port->cfg.transport);
		if (!port->ops || !port->ops->listen) {
			nvt_warn("listener %s %s:%u: this build has no %s transport yet; "
				 "not listening", port->cfg.transport, port->cfg.address,
				 port->cfg.port, port->cfg.transport);
			continue;
		}
		ret = port->ops->listen(port);
		if (ret) {
			nvt_err("listener %s %s:%u: %s", port->cfg.transport,
				port->cfg.address, port->cfg.port, strerror(-ret));
			return ret;
		}
		port->listening = true;
		nvt_info("listening on %s %s:%u", port->cfg.transport, port->cfg.address,
			 port->cfg.port);
	}
	return 0;
}

static void nvtd_stop_listeners(struct nvt_target *tgt)
{
	for (unsigned int i = 0; i < tgt->nr_ports; i++) {
		struct nvt_port *port = &tgt->ports[i];

		if (port->listening)
			port->ops->stop_listen(port);
		port->listening = false;
	}
}

/* The main loop: signals and the keep-alive tick; transports run their own poll groups. */
static int nvtd_serve(struct nvt_target *tgt)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = 0, .tv_nsec = NVTD_TICK_MS * 1000000L },
		.it_value = { .tv_sec = 0, .tv_nsec = NVTD_TICK_MS * 1000000L },
	};
	struct pollfd pfd[2];
	sigset_t mask;
	int sfd, tfd, ret = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return -errno;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd < 0) {
		ret = -errno;
		goto out_close_sfd;
	}
	timerfd_settime(tfd, 0, &its, NULL);
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = tfd, .events = POLLIN };

	nvt_info("ready: %u subsystem(s), %u listener(s)", tgt->nr_subsys, tgt->nr_ports);
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				nvt_info("%s: shutting down", strsignal((int)si.ssi_signo));
				break;
			}
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
				nvt_target_check_keep_alive(tgt, nvt_now_ns());
		}
	}
	close(tfd);
out_close_sfd:
	close(sfd);
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
	int opt, ret, status = NVTD_EXIT_OK;

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

	ret = nvt_config_load(path, &cfg, stderr);
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

	ret = nvt_target_create(&cfg, &tgt);
	if (ret) {
		nvt_err("cannot build the target from %s: %s", path, strerror(-ret));
		nvt_config_free(&cfg);
		return NVTD_EXIT_START;
	}
	ret = nvtd_start_listeners(tgt);
	if (!ret)
		ret = nvtd_serve(tgt);
	if (ret)
		status = NVTD_EXIT_START;
	nvtd_stop_listeners(tgt);
	nvt_target_destroy(tgt);
	nvt_config_free(&cfg);
	nvt_info("stopped");
	return status;
}
