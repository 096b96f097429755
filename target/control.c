/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtd's control socket (nvtctl): status, scrub, fault injection; one line in, a few lines out, on the main loop. */
#define NVT_LOG_PREFIX "control: "
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvt/control.h"
#include "nvt/log.h"
#include "nvt/util.h"

struct nvt_control {
	struct nvt_target *tgt;
	struct nvt_pg_watch watch;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(int fd, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) < 0)
		return;	/* the client went away; nothing to tell it */
}

static int count_ctrls(struct nvt_subsys *s)
{
	int n = 0;

	pthread_mutex_lock(&s->tgt->lock);
	for (struct nvt_ctrl *c = s->ctrls; c; c = c->next)
		n++;
	pthread_mutex_unlock(&s->tgt->lock);
	return n;
}

static void cmd_status(struct nvt_control *c, int fd)
{
	for (unsigned int i = 0; i < c->tgt->nr_subsys; i++) {
		struct nvt_subsys *s = c->tgt->subsys[i];

		reply(fd, "subsystem %s: %u namespace(s), %d controller(s)", s->nqn, s->nr_ns,
		      count_ctrls(s));
	}
	reply(fd, "ok");
}

static struct nvt_ns *find_ns(struct nvt_control *c, int fd, const char *nqn, const char *nsid_s)
{
	struct nvt_subsys *s = nqn ? nvt_target_find_subsys(c->tgt, nqn) : NULL;
	unsigned long nsid = nsid_s ? strtoul(nsid_s, NULL, 0) : 0;

	if (!s || s->type != NVT_SUBSYS_NVM) {
		reply(fd, "error: no subsystem %s", nqn ? nqn : "(none given)");
		return NULL;
	}
	if (!nsid || nsid > NVT_MAX_NSID || !s->ns[nsid]) {
		reply(fd, "error: %s has no namespace %s", s->nqn, nsid_s ? nsid_s : "(none given)");
		return NULL;
	}
	return s->ns[nsid];
}

static const char *const pi_err_names[] = { "?", "guard", "app tag", "ref tag" };

static void scrub_bad(uint64_t lba, const struct nvt_pi_err *err, void *arg)
{
	reply(*(int *)arg, "bad LBA %" PRIu64 ": %s check: expected %#" PRIx64 ", found %#" PRIx64,
	      lba, pi_err_names[err->type], err->expected, err->actual);
}

static void cmd_scrub(struct nvt_control *c, int fd, char **argv, int argc)
{
	struct nvt_ns *ns = find_ns(c, fd, argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL);
	uint64_t bad = 0;
	int ret;

	if (!ns)
		return;
	ret = nvt_ns_scrub(ns, scrub_bad, &fd, &bad);
	if (ret == -ENODATA) {
		reply(fd, "error: nsid %u has no protection information to check", ns->nsid);
		return;
	}
	if (ret) {
		reply(fd, "error: scrub: %s", strerror(-ret));
		return;
	}
	if (bad)
		nvt_warn("%s nsid %u: scrub found %" PRIu64 " bad block(s)", ns->subsys->nqn,
			 ns->nsid, bad);
	reply(fd, "ok: scrubbed %" PRIu64 " blocks of %s nsid %u, %" PRIu64 " bad", ns->nblocks,
	      ns->subsys->nqn, ns->nsid, bad);
}

static void cmd_inject(struct nvt_control *c, int fd, char **argv, int argc)
{
	struct nvt_ns *ns;
	unsigned long long lba;
	unsigned long bit;
	bool md;
	int ret;

	if (argc != 6 || (strcmp(argv[4], "data") && strcmp(argv[4], "metadata"))) {
		reply(fd, "error: usage: inject NQN NSID LBA data|metadata BIT");
		return;
	}
	ns = find_ns(c, fd, argv[1], argv[2]);
	if (!ns)
		return;
	lba = strtoull(argv[3], NULL, 0);
	bit = strtoul(argv[5], NULL, 0);
	md = !strcmp(argv[4], "metadata");
	ret = nvt_ns_inject(ns, lba, md, (uint32_t)bit);
	if (ret) {
		reply(fd, "error: inject: %s", strerror(-ret));
		return;
	}
	nvt_warn("%s nsid %u: fault injected: bit %lu of LBA %llu's %s flipped", ns->subsys->nqn,
		 ns->nsid, bit, lba, md ? "metadata" : "data");
	reply(fd, "ok: flipped bit %lu of LBA %llu's %s", bit, lba, md ? "metadata" : "data");
}

static void nvt_control_serve(struct nvt_control *c, int fd)
{
	struct timeval tv = { .tv_sec = 1 };
	char line[512], *argv[8], *save = NULL;
	size_t len = 0;
	int argc = 0;

	/* A client gets a second to say what it wants: the main loop is waiting. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
		ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	line[len] = '\0';
	for (char *tok = strtok_r(line, " \t\r\n", &save); tok && argc < 8;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		argv[argc++] = tok;
	if (!argc)
		reply(fd, "error: empty command; try: status, scrub NQN NSID, inject ...");
	else if (!strcmp(argv[0], "status"))
		cmd_status(c, fd);
	else if (!strcmp(argv[0], "scrub"))
		cmd_scrub(c, fd, argv, argc);
	else if (!strcmp(argv[0], "inject"))
		cmd_inject(c, fd, argv, argc);
	else
		reply(fd, "error: unknown command '%s'", argv[0]);
}

static void nvt_control_ready(struct nvt_pg_watch *w)
{
	struct nvt_control *c = container_of(w, struct nvt_control, watch);
	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	nvt_control_serve(c, fd);
	close(fd);
}

int nvt_control_create(struct nvt_target *tgt, const char *path, struct nvt_control **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct nvt_control *c;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->tgt = tgt;
	nvt_strscpy(c->path, path, sizeof(c->path));
	nvt_strscpy(sa.sun_path, path, sizeof(sa.sun_path));
	c->watch.fn = nvt_control_ready;
	c->watch.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->watch.fd < 0)
		goto out_errno;
	/* A socket left by a nvtd that did not stop cleanly would block bind(). */
	unlink(path);
	if (bind(c->watch.fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0600) ||
	    listen(c->watch.fd, 8))
		goto out_errno;
	ret = nvt_poll_group_add(tgt->pg, &c->watch);
	if (ret)
		goto out_close;
	*out = c;
	return 0;

out_errno:
	ret = -errno;
out_close:
	if (c->watch.fd >= 0)
		close(c->watch.fd);
	free(c);
	return ret;
}

void nvt_control_destroy(struct nvt_control *c)
{
	if (!c)
		return;
	nvt_poll_group_del(c->tgt->pg, &c->watch);
	close(c->watch.fd);
	unlink(c->path);
	free(c);
}
