/* SPDX-License-Identifier: BSD-3-Clause */
/* The control socket's parser and its non-blocking clients: one line per request, 64-bit number checks, big replies to slow readers, clients that leave. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "nvt/control.h"
#include "nvt/log.h"
#include "nvt/poll_group.h"
#include "nvt/target.h"

#define CTL_NQN		"nqn.2026-11.io.nvt:ctl"
#define SMALL_BLOCKS	16384		/* nsid 1: a reply bigger than a socket buffer */
#define BIG_BLOCKS	131072		/* nsid 2: a reply past the 4 MiB cap (~50 bytes a line) */

struct fixture {
	struct nvt_target *tgt;
	struct nvt_control *ctl;
	char dir[64];
	char path[96];
};

/* Every block's app tag no longer FFFFh: the scrub reports each one. */
static void break_all(struct nvt_subsys *s, uint32_t nsid)
{
	for (uint64_t lba = 0; lba < s->ns[nsid]->nblocks; lba++)
		assert_int_equal(nvt_ns_inject(s->ns[nsid], lba, true, 16), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvt_ns_cfg ns[3];
	struct nvt_subsys_cfg ss = { .nqn = CTL_NQN, .serial = "CTL", .model = "nvt ctl",
				     .allow_any_host = true, .namespaces = ns, .nr_namespaces = 3 };
	struct nvt_config cfg = { .subsystems = &ss, .nr_subsystems = 1 };
	static const uint64_t blocks[3] = { SMALL_BLOCKS, BIG_BLOCKS, 8 };

	nvt_log_set_level(NVT_LOG_OFF);
	memset(ns, 0, sizeof(ns));
	for (int i = 0; i < 3; i++) {
		ns[i].nsid = (uint32_t)i + 1;
		strcpy(ns[i].backend, "ram");
		ns[i].block_size = 512;
		ns[i].size = blocks[i] * 512;
		ns[i].uuid[0] = ns[i].nguid[0] = (uint8_t)(i + 1);
		if (i < 2) {
			ns[i].pi.type = 1;
			strcpy(ns[i].pi.guard, "crc16");
			strcpy(ns[i].pi.location, "last");
			ns[i].pi.metadata_size = 8;
		}
	}
	assert_int_equal(nvt_target_create(&cfg, &f->tgt), 0);
	assert_int_equal(nvt_poll_group_create(&f->tgt->pg), 0);
	strcpy(f->dir, "/tmp/nvt-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	assert_int_equal(nvt_control_create(f->tgt, f->path, &f->ctl), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nvt_control_destroy(f->ctl);
	assert_int_equal(access(f->path, F_OK), -1);
	rmdir(f->dir);
	nvt_poll_group_destroy(f->tgt->pg);
	f->tgt->pg = NULL;
	nvt_target_destroy(f->tgt);
	free(f);
	return 0;
}

/* ---- nvt_control_execute() on buffers ---- */

struct capture {
	char buf[8192];
	size_t len;
	unsigned int lines;
};

static void capture_emit(void *arg, const char *line, size_t len)
{
	struct capture *c = arg;

	assert_true(len > 0 && line[len - 1] == '\n');
	assert_true(len <= NVT_CONTROL_LINE_MAX + 1);
	if (c->len + len < sizeof(c->buf)) {
		memcpy(c->buf + c->len, line, len);
		c->len += len;
		c->buf[c->len] = '\0';
	}
	c->lines++;
}

/* Run @req (@len bytes, -1: strlen) and return its last reply line, without the newline. */
static const char *run(struct fixture *f, const char *req, ssize_t len, struct capture *c)
{
	char *last;

	memset(c, 0, sizeof(*c));
	nvt_control_execute(f->tgt, req, len < 0 ? strlen(req) : (size_t)len, capture_emit, c);
	assert_true(c->lines > 0);
	c->buf[c->len - 1] = '\0';
	last = strrchr(c->buf, '\n');
	return last ? last + 1 : c->buf;
}

static void test_first_line_only(void **state)
{
	struct fixture *f = *state;
	struct capture c;

	assert_string_equal(run(f, "scrub " CTL_NQN "\n1\n", -1, &c),
			    "error: usage: scrub NQN NSID");
	assert_string_equal(run(f, "status\ninject " CTL_NQN " 3 0 data 0\n", -1, &c), "ok");
	assert_string_equal(run(f, "status\r\n", -1, &c), "ok");
	assert_string_equal(run(f, "status", -1, &c), "ok");
	assert_string_equal(run(f, "status\0\n", 8, &c),
			    "error: control character 0 at byte 6 of the request");
	assert_string_equal(run(f, "sta\033tus\n", -1, &c),
			    "error: control character 0x1b at byte 3 of the request");
	assert_string_equal(run(f, "", 0, &c),
			    "error: empty command; try: status, scrub NQN NSID, inject ...");
	assert_string_equal(run(f, "\n", -1, &c),
			    "error: empty command; try: status, scrub NQN NSID, inject ...");
	assert_string_equal(run(f, "a b c d e f g h i\n", -1, &c),
			    "error: more than 8 words in the request");
}

static void test_long_request(void **state)
{
	struct fixture *f = *state;
	char req[NVT_CONTROL_LINE_MAX + 2];
	struct capture c;

	memset(req, ' ', sizeof(req));
	memcpy(req, "status", 6);
	req[NVT_CONTROL_LINE_MAX] = '\n';
	assert_string_equal(run(f, req, NVT_CONTROL_LINE_MAX + 1, &c), "ok");
	req[NVT_CONTROL_LINE_MAX] = ' ';
	req[NVT_CONTROL_LINE_MAX + 1] = '\n';
	assert_string_equal(run(f, req, sizeof(req), &c), "error: request longer than 511 bytes");
}

static void test_numbers(void **state)
{
	static const char *const junk[] = { "-1", "+1", "1x", "x1", "0x", "0x0x1", "1.0",
					     "\xef\xbc\x91" /* fullwidth 1 */, "0b1", "1e3" };
	struct fixture *f = *state;
	struct nvt_subsys *s = nvt_target_find_subsys(f->tgt, CTL_NQN);
	uint8_t *data, *md;
	struct capture c;

	data = s->ns[3]->be->map(s->ns[3], 0, (void **)&md);
	/* 2^32 used to pass the range check and then flip bit 0. */
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0 data 4294967296", -1, &c),
			    "error: BIT 4294967296 is out of range (0..4095)");
	assert_int_equal(data[0], 0);
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0 data 0x1000", -1, &c),
			    "error: BIT 0x1000 is out of range (0..4095)");
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0 data 18446744073709551616", -1, &c),
			    "error: BIT 18446744073709551616 is out of range (0..4095)");
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0 data 0xffffffffffffffff", -1, &c),
			    "error: BIT 0xffffffffffffffff is out of range (0..4095)");
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0 data 4095", -1, &c),
			    "ok: flipped bit 4095 of LBA 0's data");
	assert_int_equal(data[511], 0x80);
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0x0 data 0XFFF", -1, &c),
			    "ok: flipped bit 4095 of LBA 0's data");
	assert_int_equal(data[511], 0);
	assert_string_equal(run(f, "inject " CTL_NQN " 3 8 data 0", -1, &c),
			    "error: LBA 8 is out of range (0..7)");
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0 metadata 0", -1, &c),
			    "error: nsid 3 has no metadata");
	assert_string_equal(run(f, "inject " CTL_NQN " 1 0 metadata 64", -1, &c),
			    "error: BIT 64 is out of range (0..63)");
	assert_string_equal(run(f, "inject " CTL_NQN " 3 0 dta 0", -1, &c),
			    "error: usage: inject NQN NSID LBA data|metadata BIT");
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		char req[128], want[128];

		snprintf(req, sizeof(req), "scrub %s %s", CTL_NQN, junk[i]);
		snprintf(want, sizeof(want),
			 "error: NSID '%s' is not a number (decimal, or hex after 0x)", junk[i]);
		assert_string_equal(run(f, req, -1, &c), want);
		snprintf(req, sizeof(req), "inject %s 3 %s data 0", CTL_NQN, junk[i]);
		snprintf(want, sizeof(want),
			 "error: LBA '%s' is not a number (decimal, or hex after 0x)", junk[i]);
		assert_string_equal(run(f, req, -1, &c), want);
		snprintf(req, sizeof(req), "inject %s 3 0 data %s", CTL_NQN, junk[i]);
		snprintf(want, sizeof(want),
			 "error: BIT '%s' is not a number (decimal, or hex after 0x)", junk[i]);
		assert_string_equal(run(f, req, -1, &c), want);
	}
	assert_string_equal(run(f, "scrub " CTL_NQN " 0", -1, &c),
			    "error: NSID 0 is out of range (1..1024)");
	assert_string_equal(run(f, "scrub " CTL_NQN " 4294967297", -1, &c),
			    "error: NSID 4294967297 is out of range (1..1024)");
	assert_string_equal(run(f, "scrub " CTL_NQN " 1025", -1, &c),
			    "error: NSID 1025 is out of range (1..1024)");
	assert_string_equal(run(f, "scrub " CTL_NQN " 4", -1, &c),
			    "error: " CTL_NQN " has no namespace 4");
	assert_string_equal(run(f, "scrub " CTL_NQN " 1 1", -1, &c),
			    "error: usage: scrub NQN NSID");
	assert_string_equal(run(f, "status 1", -1, &c), "error: usage: status");
	assert_string_equal(run(f, "scrub " NVT_DISCOVERY_NQN " 1", -1, &c),
			    "error: no subsystem " NVT_DISCOVERY_NQN);
}

/* ---- the socket ---- */

static int client(struct fixture *f, const char *req)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (req)
		assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	return fd;
}

/* Run the main loop's callbacks; each call must come back at once. */
static void pump(struct fixture *f, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = nvt_now_ns();

		/* 1 ms: a scrub runs on a thread of its own and its reply comes when it is done. */
		assert_true(nvt_poll_group_poll(f->tgt->pg, 1) >= 0);
		assert_true(nvt_now_ns() - t0 < 500000000ull);
	}
}

/* Read the whole reply, driving the loop between reads. Return: its length. */
static size_t drain(struct fixture *f, int fd, char **out)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);

	for (int idle = 0; idle < 20000;) {
		ssize_t n;

		if (len + 4096 > cap)
			buf = realloc(buf, cap *= 2);
		n = read(fd, buf + len, 4096);
		if (n == 0)
			break;
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			pump(f, 1);
			idle++;
			continue;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return len;
}

static unsigned int count_lines(const char *buf, const char *prefix)
{
	unsigned int n = 0;

	for (const char *p = buf; *p; p = strchr(p, '\n') + 1) {
		if (!strncmp(p, prefix, strlen(prefix)))
			n++;
		if (!strchr(p, '\n'))
			break;
	}
	return n;
}

static const char *last_line(char *buf, size_t len)
{
	char *p;

	assert_true(len > 0 && buf[len - 1] == '\n');
	buf[len - 1] = '\0';
	p = strrchr(buf, '\n');
	return p ? p + 1 : buf;
}

static void test_big_reply_slow_reader(void **state)
{
	struct fixture *f = *state;
	char *buf, want[128];
	size_t len;
	int fd;

	break_all(nvt_target_find_subsys(f->tgt, CTL_NQN), 1);
	fd = client(f, "scrub " CTL_NQN " 1\n");
	/* ~1.2 MB of reply, a socket buffer takes ~200 KB: the loop must go on. */
	pump(f, 10);
	len = drain(f, fd, &buf);
	assert_int_equal(count_lines(buf, "bad LBA "), SMALL_BLOCKS);
	snprintf(want, sizeof(want), "ok: scrubbed %u blocks of %s nsid 1, %u bad", SMALL_BLOCKS,
		 CTL_NQN, SMALL_BLOCKS);
	assert_string_equal(last_line(buf, len), want);
	free(buf);
	close(fd);
}

static void test_reply_cap(void **state)
{
	struct fixture *f = *state;
	char *buf;
	size_t len;
	int fd;

	break_all(nvt_target_find_subsys(f->tgt, CTL_NQN), 2);
	fd = client(f, "scrub " CTL_NQN " 2\n");
	pump(f, 1);
	len = drain(f, fd, &buf);
	assert_true(len <= (4u << 20) + 96);
	assert_non_null(strstr(last_line(buf, len), "error: reply too long, "));
	assert_true(count_lines(buf, "bad LBA ") > 70000);
	assert_int_equal(count_lines(buf, "ok"), 0);
	free(buf);
	close(fd);
}

static void test_interleaved_clients(void **state)
{
	struct fixture *f = *state;
	int a = client(f, "sta"), b = client(f, "status\n"), c = client(f, NULL);
	char *buf;
	size_t len;

	pump(f, 3);
	len = drain(f, b, &buf);
	assert_string_equal(last_line(buf, len), "ok");
	free(buf);
	assert_int_equal(send(a, "tus", 3, MSG_NOSIGNAL), 3);
	shutdown(a, SHUT_WR);	/* the last line may come without its newline */
	len = drain(f, a, &buf);
	assert_string_equal(last_line(buf, len), "ok");
	free(buf);
	/* c never said anything and is still connected: nothing for it yet. */
	assert_int_equal(read(c, &(char){ 0 }, 1), -1);
	assert_int_equal(errno, EAGAIN);
	close(a);
	close(b);
	close(c);
	pump(f, 2);
}

static void test_clients_leave(void **state)
{
	struct fixture *f = *state;

	break_all(nvt_target_find_subsys(f->tgt, CTL_NQN), 1);
	for (int i = 0; i < 4; i++) {
		/* Gone before the reply (which would SIGPIPE this process), gone mid-reply,
		 * gone mid-request, gone without a word. */
		int fd = client(f, i == 2 ? "scr" : i == 3 ? NULL : "scrub " CTL_NQN " 1\n");
		char b[1000];

		if (i == 1) {
			uint64_t end = nvt_now_ns() + 10000000000ull;
			ssize_t n = -1;

			/* The scrub runs on a thread of its own: its reply comes when it is done. */
			while (n <= 0 && nvt_now_ns() < end) {
				pump(f, 1);
				n = read(fd, b, sizeof(b));
			}
			if (n <= 0)
				fail_msg("no reply: read %zd, %s", n, strerror(errno));
		}
		close(fd);
		pump(f, 3);
	}
	{
		int fd = client(f, "status\n");
		char *buf;
		size_t len;

		pump(f, 1);
		len = drain(f, fd, &buf);
		assert_string_equal(last_line(buf, len), "ok");
		free(buf);
		close(fd);
	}
}

static void test_too_many_clients(void **state)
{
	struct fixture *f = *state;
	int fds[17];
	char *buf;
	size_t len;

	for (int i = 0; i < 16; i++) {
		fds[i] = client(f, NULL);
		pump(f, 1);
	}
	fds[16] = client(f, NULL);
	len = drain(f, fds[16], &buf);
	assert_string_equal(last_line(buf, len), "error: too many control clients; try again");
	free(buf);
	for (int i = 0; i < 17; i++)
		close(fds[i]);
	pump(f, 2);
	fds[0] = client(f, "status\n");
	len = drain(f, fds[0], &buf);
	assert_string_equal(last_line(buf, len), "ok");
	free(buf);
	close(fds[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_line_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_reply_slow_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clients_leave, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
