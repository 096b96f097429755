/* SPDX-License-Identifier: BSD-3-Clause */
/* sd_notify(3)'s wire protocol, ours: a datagram of VAR=value lines to the AF_UNIX socket in $NOTIFY_SOCKET. */
#define NVT_LOG_PREFIX "notify: "
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvt/log.h"
#include "nvt/notify.h"

/* Set once by nvt_notify_init(), before any thread runs; read-only afterwards. */
static struct sockaddr_un nvt_notify_addr;
static socklen_t nvt_notify_addr_len;	/* 0: no service manager to tell */

int nvt_notify_init(void)
{
	const char *env = getenv("NOTIFY_SOCKET");
	size_t len;

	nvt_notify_addr_len = 0;
	if (!env)
		return 0;
	len = strlen(env);
	/*
	 * systemd hands out an absolute path or an abstract name written with
	 * a leading '@' (sd_notify(3)); both must fit sun_path. Anything else
	 * (a relative path, "vsock:" of newer managers) is not ours to guess.
	 */
	if ((env[0] != '/' && env[0] != '@') || len < 2 ||
	    len > sizeof(nvt_notify_addr.sun_path) - 1) {
		nvt_warn("NOTIFY_SOCKET '%.*s' is not a unix socket path or @name: "
			 "not telling the service manager anything", 64, env);
		unsetenv("NOTIFY_SOCKET");
		return -EINVAL;
	}
	memset(&nvt_notify_addr, 0, sizeof(nvt_notify_addr));
	nvt_notify_addr.sun_family = AF_UNIX;
	memcpy(nvt_notify_addr.sun_path, env, len);
	if (env[0] == '@')
		nvt_notify_addr.sun_path[0] = '\0';	/* abstract: the name is the bytes, no NUL */
	/* A path is NUL-terminated inside sun_path; an abstract name is exactly len bytes. */
	nvt_notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
					  (env[0] == '/'));
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

int nvt_notify(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	ssize_t n;
	int fd, len, ret = 0;

	if (!nvt_notify_addr_len)
		return 0;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0)
		return -EINVAL;
	if ((size_t)len >= sizeof(msg))
		len = sizeof(msg) - 1;	/* a STATUS= cut short is still a valid message */
	/* A socket per message, as sd_notify does: a handful in nvtd's life. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT,
		   (const struct sockaddr *)&nvt_notify_addr, nvt_notify_addr_len);
	if (n < 0)
		ret = -errno;
	else if (n != len)
		ret = -EMSGSIZE;
	close(fd);
	return ret;
}
