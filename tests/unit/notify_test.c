/* SPDX-License-Identifier: BSD-3-Clause */
/* The service-manager seams alone: NOTIFY_SOCKET addresses (path, abstract, refused) and the journald line prefix. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvt/log.h"
#include "nvt/notify.h"

/* A datagram socket where systemd's would be; @name starting with '@' is abstract. */
static int listen_at(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, strlen(name));
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		len++;
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[600];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_path_socket(void **state)
{
	char path[] = "/tmp/nvt-notify-XXXXXX";
	char sock[64];
	int fd;

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/notify", path);
	fd = listen_at(sock);
	setenv("NOTIFY_SOCKET", sock, 1);
	assert_int_equal(nvt_notify_init(), 0);
	/* Gone from the environment: nothing nvtd starts speaks for it. */
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(nvt_notify("READY=1\nSTATUS=serving %u", 3u), 0);
	expect_datagram(fd, "READY=1\nSTATUS=serving 3");
	close(fd);
	unlink(sock);
	rmdir(path);
}

static void test_abstract_socket(void **state)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@nvt-notify-unit-%d", (int)getpid());
	fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(nvt_notify_init(), 0);
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(nvt_notify("STOPPING=1"), 0);
	expect_datagram(fd, "STOPPING=1");
	close(fd);
}

/* A STATUS= longer than the message buffer is cut, still sent as one datagram. */
static void test_long_message_cut(void **state)
{
	char name[64], want[512];
	int fd;

	snprintf(name, sizeof(name), "@nvt-notify-long-%d", (int)getpid());
	fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(nvt_notify_init(), 0);
	assert_int_equal(nvt_notify("STATUS=%0600d", 0), 0);
	memset(want, '0', sizeof(want) - 1);
	memcpy(want, "STATUS=", 7);
	want[sizeof(want) - 1] = '\0';
	expect_datagram(fd, want);
	close(fd);
}

static void test_refused_addresses(void **state)
{
	char too_long[200];
	const char *bad[] = { "relative/sock", "@", "", too_long, "vsock:2:1234" };

	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[0] = '/';
	too_long[sizeof(too_long) - 1] = '\0';
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("NOTIFY_SOCKET", bad[i], 1);
		assert_int_equal(nvt_notify_init(), -EINVAL);
		assert_null(getenv("NOTIFY_SOCKET"));
		/* Off, not broken: later notifications are quietly nothing. */
		assert_int_equal(nvt_notify("READY=1"), 0);
	}
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(nvt_notify_init(), 0);
	assert_int_equal(nvt_notify("READY=1"), 0);
}

static void emit_log_lines(void)
{
	nvt_log(NVT_LOG_WARN, "disk %d is hot", 7);
	nvt_log(NVT_LOG_DEBUG, "tick");
}

/* What the config loader does: lines of its own, in pieces, through nvt_log_stream(). */
static void emit_loader_lines(void)
{
	FILE *f = nvt_log_stream(NVT_LOG_ERR);

	fprintf(f, "a.cfg:1: ");
	fprintf(f, "bogus: unknown setting\nb.cfg:2: threads: ");
	fprintf(f, "expected an integer\n");
	nvt_log_stream_close(f);
}

/*
 * Runs @emit with stderr on a fresh file and JOURNAL_STREAM from @stream
 * (NULL: that file's own DEV:INO), and returns what it wrote there.
 */
static void capture(const char *stream, void (*emit)(void), char *out, size_t size)
{
	char path[] = "/tmp/nvt-journal-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	char env[64];
	struct stat st;
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", stream ? stream : env, 1);
	fflush(stderr);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	nvt_log_init();
	emit();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	n = pread(fd, out, size - 1, 0);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
	unlink(path);
	unsetenv("JOURNAL_STREAM");
	nvt_log_init();
}

static void test_journal_prefix(void **state)
{
	char buf[256];

	capture(NULL, emit_log_lines, buf, sizeof(buf));
	assert_string_equal(buf, "<4>disk 7 is hot\n<7>tick\n");
	/* Each line once, however it was cut into writes. */
	capture(NULL, emit_loader_lines, buf, sizeof(buf));
	assert_string_equal(buf, "<3>a.cfg:1: bogus: unknown setting\n<3>b.cfg:2: threads: expected an integer\n");
}

/* Not journald's stream (another file, or a value that is not DEV:INO): the usual format. */
static void test_journal_mismatch(void **state)
{
	const char *other[] = { "1:1", "", "12", "12:", ":12", "x:1", "1:2x", "-1:2",
				"99999999999999999999999:1" };
	char buf[256];

	unsetenv("JOURNAL_STREAM");
	nvt_log_init();
	/* Not a copy: the loader's lines go to stderr itself, byte for byte. */
	assert_ptr_equal(nvt_log_stream(NVT_LOG_ERR), stderr);

	for (unsigned int i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		capture(other[i], emit_log_lines, buf, sizeof(buf));
		assert_string_equal(buf, "nvtd warn: disk 7 is hot\nnvtd debug: tick\n");
		capture(other[i], emit_loader_lines, buf, sizeof(buf));
		assert_string_equal(buf, "a.cfg:1: bogus: unknown setting\nb.cfg:2: threads: expected an integer\n");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_long_message_cut),
		cmocka_unit_test(test_refused_addresses),
		cmocka_unit_test(test_journal_prefix),
		cmocka_unit_test(test_journal_mismatch),
	};

	nvt_log_set_level(NVT_LOG_OFF);	/* the refused addresses warn; not on the test's stderr */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
