/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtctl: talk to a running nvtd over its control socket (status, scrub, fault injection). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvtctl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nvtctl -s SOCKET status\n"
		"       nvtctl -s SOCKET scrub NQN NSID\n"
		"       nvtctl -s SOCKET inject NQN NSID LBA data|metadata BIT\n"
		"       nvtctl -s SOCKET reload\n"
		"       nvtctl -s SOCKET ana GROUP optimized|non-optimized|inaccessible|persistent-loss|change\n"
		"       nvtctl -s SOCKET stats [NQN [NSID]] [--json]\n"
		"       nvtctl -s SOCKET top [-d SECS] [-n ITERATIONS]\n"
		"SOCKET is nvtd's control_socket setting. Exit status: 0 if nvtd said ok,\n"
		"1 if it said error (or, for scrub, found bad blocks), 2 on usage or connection errors.\n");
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cmd[512], buf[4096], last[512] = "";
	size_t len = 0, last_len = 0, got = 0;
	int fd, i = 1, bad_seen = 0, send_err = 0;
	ssize_t n;

	if (argc > 2 && !strcmp(argv[1], "-s")) {
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
		i = 3;
	}
	if (!sa.sun_path[0] || i >= argc) {
		usage(stderr);
		return 2;
	}
	/* These two render nvtd's records themselves. */
	if (!strcmp(argv[i], "stats"))
		return nvtctl_stats_main(sa.sun_path, argc - i, argv + i);
	if (!strcmp(argv[i], "top"))
		return nvtctl_top_main(sa.sun_path, argc - i, argv + i);
	for (; i < argc; i++) {
		int w;

		/* nvtd reads one line: a newline inside an argument would cut the request. */
		if (strpbrk(argv[i], "\r\n")) {
			fprintf(stderr, "nvtctl: arguments must not contain line breaks\n");
			return 2;
		}
		w = snprintf(cmd + len, sizeof(cmd) - len, "%s%s", len ? " " : "", argv[i]);
		if (w < 0 || (size_t)w >= sizeof(cmd) - len - 1) {
			fprintf(stderr, "nvtctl: command too long\n");
			return 2;
		}
		len += (size_t)w;
	}
	cmd[len++] = '\n';
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "nvtctl: %s: %s\n", sa.sun_path, strerror(errno));
		return 2;
	}
	/* MSG_NOSIGNAL: nvtd may have hung up already (too many clients); its
	 * reply, if any, is still there to read. */
	if (send(fd, cmd, len, MSG_NOSIGNAL) != (ssize_t)len)
		send_err = errno ? errno : EIO;
	/* Echo the reply; remember its last line, which says ok or error. */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		fwrite(buf, 1, (size_t)n, stdout);
		got += (size_t)n;
		for (ssize_t k = 0; k < n; k++) {
			if (buf[k] == '\n') {
				last[last_len] = '\0';
				if (!strncmp(last, "bad LBA", 7))
					bad_seen = 1;
				last_len = 0;
				continue;
			}
			if (last_len < sizeof(last) - 1)
				last[last_len++] = buf[k];
		}
	}
	close(fd);
	if (send_err && !got) {
		fprintf(stderr, "nvtctl: send: %s\n", strerror(send_err));
		return 2;
	}
	if (strncmp(last, "ok", 2))
		return 1;
	return bad_seen;
}
