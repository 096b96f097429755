/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for target/config.c: good and bad files, exact messages, round trips, fuzz. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvt/config.h"
#include "nvt/log.h"

#ifndef NVT_TEST_DATA_DIR
#error "build with -DNVT_TEST_DATA_DIR=\"<source>/tests/unit/config\""
#endif
#ifndef NVT_CONF_DIR
#error "build with -DNVT_CONF_DIR=\"<source>/conf\""
#endif

#define EXAMPLE		NVT_CONF_DIR "/nvt-example.cfg"
#define FILE_EXAMPLE	NVT_CONF_DIR "/file.cfg"
#define VHOST_EXAMPLE	NVT_CONF_DIR "/vhost.cfg"
#define DATA(name)	NVT_TEST_DATA_DIR "/" name

/*
 * libconfig 1.5 leaks the text of a string token that triggers a syntax
 * error (hyperrealm/libconfig#142, fixed upstream by PR #155 in 2019, after
 * Debian 12's 1.5). The fuzz test hits it; our own allocations never have a
 * libconfig frame, so this hides nothing of ours. Only LeakSanitizer calls it.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

static char tmpdir[] = "/tmp/nvt-config-test.XXXXXX";
static unsigned int tmp_seq;

/* Load @path; return what it printed on the error stream (caller frees). */
static int load(const char *path, struct nvt_config *cfg, char **err)
{
	size_t len;
	FILE *f = open_memstream(err, &len);
	int ret;

	assert_non_null(f);
	ret = nvt_config_load(path, cfg, f);
	fclose(f);
	return ret;
}

/* Write @text to a fresh file under tmpdir; the name goes to @path. */
static void write_tmp(char *path, size_t size, const char *text, size_t len)
{
	FILE *f;

	snprintf(path, size, "%s/t%u.cfg", tmpdir, tmp_seq++);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int load_text(const char *text, struct nvt_config *cfg, char **err, char *path,
		     size_t size)
{
	int ret;

	write_tmp(path, size, text, strlen(text));
	ret = load(path, cfg, err);
	unlink(path);
	return ret;
}

static int group_setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	return rmdir(tmpdir);
}

static void uuid_str(const uint8_t id[16], char out[37])
{
	static const int dash[] = { 4, 6, 8, 10 };
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		for (int d = 0; d < 4; d++)
			if (i == dash[d])
				out[o++] = '-';
		o += (size_t)sprintf(out + o, "%02x", id[i]);
	}
	out[o] = '\0';
}

static void assert_all_zero(const void *p, size_t n)
{
	static const uint8_t zero[sizeof(struct nvt_config)];

	assert_true(n <= sizeof(zero));
	assert_memory_equal(p, zero, n);
}

/* The two configs describe the same target, field by field (paths aside). */
static void assert_same_config(const struct nvt_config *a, const struct nvt_config *b)
{
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->discovery, b->discovery);
	assert_int_equal(a->nr_listeners, b->nr_listeners);
	for (unsigned int i = 0; i < a->nr_listeners; i++) {
		const struct nvt_listener_cfg *x = &a->listeners[i], *y = &b->listeners[i];

		assert_string_equal(x->transport, y->transport);
		assert_string_equal(x->address, y->address);
		assert_int_equal(x->family, y->family);
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->max_io_size, y->max_io_size);
	}
	assert_int_equal(a->nr_subsystems, b->nr_subsystems);
	for (unsigned int i = 0; i < a->nr_subsystems; i++) {
		const struct nvt_subsys_cfg *x = &a->subsystems[i], *y = &b->subsystems[i];

		assert_string_equal(x->nqn, y->nqn);
		assert_string_equal(x->serial, y->serial);
		assert_string_equal(x->model, y->model);
		assert_int_equal(x->allow_any_host, y->allow_any_host);
		assert_int_equal(x->nr_hosts, y->nr_hosts);
		for (unsigned int h = 0; h < x->nr_hosts; h++)
			assert_string_equal(x->hosts[h], y->hosts[h]);
		assert_int_equal(x->nr_namespaces, y->nr_namespaces);
		for (unsigned int n = 0; n < x->nr_namespaces; n++) {
			const struct nvt_ns_cfg *p = &x->namespaces[n], *q = &y->namespaces[n];

			assert_int_equal(p->nsid, q->nsid);
			assert_string_equal(p->backend, q->backend);
			assert_int_equal(p->size, q->size);
			assert_int_equal(p->block_size, q->block_size);
			assert_memory_equal(p->uuid, q->uuid, 16);
			assert_memory_equal(p->nguid, q->nguid, 16);
			assert_int_equal(p->nr_settings, q->nr_settings);
			for (unsigned int k = 0; k < p->nr_settings; k++) {
				const struct nvt_ns_setting *v = &p->settings[k];
				const struct nvt_ns_setting *w = &q->settings[k];

				assert_string_equal(v->name, w->name);
				assert_int_equal(v->set, w->set);
				assert_int_equal(v->b, w->b);
				assert_true(!v->str == !w->str);
				if (v->str)
					assert_string_equal(v->str, w->str);
			}
		}
	}
}

static void test_example(void **state)
{
	struct nvt_config cfg;
	const struct nvt_subsys_cfg *ss;
	char *err;

	assert_int_equal(load(EXAMPLE, &cfg, &err), 0);
	assert_string_equal(err, "");
	free(err);

	assert_string_equal(cfg.path, EXAMPLE);
	assert_int_equal(cfg.log_level, NVT_LOG_INFO);
	assert_true(cfg.discovery);
	assert_int_equal(cfg.nr_listeners, 1);
	assert_string_equal(cfg.listeners[0].transport, "rdma");
	assert_string_equal(cfg.listeners[0].address, "0.0.0.0");
	assert_int_equal(cfg.listeners[0].family, AF_INET);
	assert_int_equal(cfg.listeners[0].port, 4420);
	assert_int_equal(cfg.listeners[0].max_io_size, NVT_MAX_IO_SIZE_DEFAULT);

	assert_int_equal(cfg.nr_subsystems, 1);
	ss = &cfg.subsystems[0];
	assert_string_equal(ss->nqn, "nqn.2026-11.io.nvt:ram0");
	assert_true(ss->allow_any_host);
	assert_int_equal(ss->nr_hosts, 0);
	assert_string_equal(ss->model, "nvt");
	assert_int_equal(strlen(ss->serial), 20);
	assert_int_equal(strspn(ss->serial, "0123456789ABCDEF"), 20);
	assert_int_equal(ss->nr_namespaces, 2);
	assert_int_equal(ss->namespaces[0].nsid, 1);
	assert_string_equal(ss->namespaces[0].backend, "ram");
	assert_int_equal(ss->namespaces[0].size, 256ull << 20);
	assert_int_equal(ss->namespaces[0].block_size, 512);
	assert_int_equal(ss->namespaces[1].nsid, 2);
	assert_int_equal(ss->namespaces[1].size, 64ull << 20);
	assert_int_equal(ss->namespaces[1].block_size, 4096);
	assert_true(ss->namespaces[0].line > ss->line);
	assert_true(ss->namespaces[1].line > ss->namespaces[0].line);
	nvt_config_free(&cfg);
}

static void test_minimal(void **state)
{
	struct nvt_config cfg;
	const struct nvt_ns_cfg *ns;
	char *err;

	assert_int_equal(load(DATA("minimal.cfg"), &cfg, &err), 0);
	assert_string_equal(err, "");
	free(err);
	assert_int_equal(cfg.log_level, NVT_LOG_INFO);
	assert_true(cfg.discovery);
	assert_int_equal(cfg.nr_listeners, 0);
	assert_null(cfg.listeners);
	assert_int_equal(cfg.nr_subsystems, 1);
	assert_string_equal(cfg.subsystems[0].model, "nvt");
	assert_false(cfg.subsystems[0].allow_any_host);
	assert_int_equal(cfg.subsystems[0].nr_hosts, 0);
	assert_int_equal(cfg.subsystems[0].line, 2);
	ns = &cfg.subsystems[0].namespaces[0];
	assert_int_equal(ns->size, 1048576);
	assert_int_equal(ns->block_size, 512);
	assert_int_equal(ns->line, 4);
	nvt_config_free(&cfg);
}

/* A hosts entry may be a group with DH-HMAC-CHAP secrets; secrets never appear in errors or the print. */
static void test_host_auth(void **state)
{
	static const char ok[] =
		"subsystems = ( { nqn = \"nqn.2026-01.io.nvt:a\"; require_authentication = true;\n"
		"  hosts = ( \"nqn.2026-01.io.nvt:plain\",\n"
		"    { nqn = \"nqn.2026-01.io.nvt:h1\";\n"
		/* 32 zero bytes and their CRC-32 (Python: base64(bytes(32) + zlib.crc32 LE)) */
		"      dhchap_key = \"DHHC-1:01:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACtVQoZ:\"; },\n"
		"    { nqn = \"nqn.2026-01.io.nvt:h2\"; dhchap_key = \"DHHC-1:00:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACtVQoZ:\";\n"
		"      dhchap_ctrl_key = \"DHHC-1:01:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACtVQoZ:\"; } ); } );\n";
	static const char bad[] =
		"subsystems = ( { nqn = \"nqn.2026-01.io.nvt:a\";\n"
		"  hosts = ( { nqn = \"nqn.2026-01.io.nvt:h1\";\n"
		"      dhchap_key = \"DHHC-1:01:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACtVQoa:\"; },\n"
		"    { nqn = \"nqn.2026-01.io.nvt:h2\"; dhchap_ctrl_key = \"DHHC-1:01:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACtVQoZ:\"; },\n"
		"    { nqn = \"nqn.2026-01.io.nvt:h3\"; dhchap_key = \"DHHC-1:07:secretsecret:\"; } ); } );\n";
	struct nvt_config cfg;
	const struct nvt_subsys_cfg *ss;
	char *err, *text, path[256];
	size_t len;
	FILE *f;

	(void)state;
	assert_int_equal(load_text(ok, &cfg, &err, path, sizeof(path)), 0);
	assert_string_equal(err, "");
	free(err);
	ss = &cfg.subsystems[0];
	assert_true(ss->require_authentication);
	assert_int_equal(ss->nr_hosts, 3);
	assert_string_equal(ss->hosts[0], "nqn.2026-01.io.nvt:plain");
	assert_string_equal(ss->hosts[2], "nqn.2026-01.io.nvt:h2");
	assert_non_null(ss->host_auth);
	assert_string_equal(ss->host_auth[0].dhchap_key, "");
	assert_int_equal(strncmp(ss->host_auth[1].dhchap_key, "DHHC-1:01:", 10), 0);
	assert_int_equal(strncmp(ss->host_auth[2].dhchap_ctrl_key, "DHHC-1:01:", 10), 0);
	assert_int_equal(ss->host_auth[2].line, 5);
	f = open_memstream(&text, &len);
	nvt_config_print(&cfg, f);
	fclose(f);
	assert_null(strstr(text, "DHHC"));
	assert_null(strstr(text, "AAAAAAAA"));
	assert_non_null(strstr(text, "\"nqn.2026-01.io.nvt:h1\", # dhchap_key given, not shown"));
	assert_non_null(strstr(text, "require_authentication = true"));
	free(text);
	nvt_config_free(&cfg);

	assert_int_equal(load_text(bad, &cfg, &err, path, sizeof(path)), -EINVAL);
	assert_non_null(strstr(err, "hosts[0].dhchap_key: CRC-32 mismatch"));
	assert_non_null(strstr(err, "hosts[1].dhchap_key: missing (required)"));
	assert_non_null(strstr(err, "hosts[2].dhchap_key: the hash indicator"));
	assert_null(strstr(err, "AAAAAAAA"));
	assert_null(strstr(err, "secretsecret"));
	free(err);
}

static void test_full(void **state)
{
	static const uint8_t uuid[16] = { 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
					  0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0 };
	static const uint8_t nguid[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
					   0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	struct nvt_config cfg;
	const struct nvt_subsys_cfg *ss;
	char *err;

	assert_int_equal(load(DATA("full.cfg"), &cfg, &err), 0);
	assert_string_equal(err, "");
	free(err);
	assert_int_equal(cfg.log_level, NVT_LOG_DEBUG);
	assert_false(cfg.discovery);
	assert_int_equal(cfg.nr_listeners, 3);
	assert_int_equal(cfg.listeners[0].family, AF_INET);
	/* IPv6 comes back in its one canonical spelling. */
	assert_string_equal(cfg.listeners[1].address, "2001:db8::1");
	assert_int_equal(cfg.listeners[1].family, AF_INET6);
	assert_int_equal(cfg.listeners[1].port, 4421);
	assert_int_equal(cfg.listeners[1].line, 7);
	assert_int_equal(cfg.listeners[0].max_io_size, 4u << 20);
	assert_int_equal(cfg.listeners[1].max_io_size, 65536);
	assert_int_equal(cfg.listeners[2].max_io_size, NVT_MAX_IO_SIZE_MAX);

	assert_int_equal(cfg.nr_subsystems, 2);
	ss = &cfg.subsystems[0];
	assert_string_equal(ss->serial, "SN-0001");
	assert_string_equal(ss->model, "nvt \"test\" model");
	assert_false(ss->allow_any_host);
	assert_int_equal(ss->nr_hosts, 2);
	assert_string_equal(ss->hosts[1],
			    "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001");
	assert_int_equal(ss->max_controllers, 16);
	assert_int_equal(ss->max_io_queues, 4);
	assert_int_equal(cfg.max_controllers_per_host, 8);
	assert_int_equal(ss->nr_namespaces, 2);
	assert_int_equal(ss->namespaces[0].nsid, 7);
	assert_int_equal(ss->namespaces[0].size, 6ull << 30);
	assert_int_equal(ss->namespaces[0].block_size, 4096);
	assert_memory_equal(ss->namespaces[0].uuid, uuid, 16);
	assert_memory_equal(ss->namespaces[0].nguid, nguid, 16);
	assert_int_equal(ss->namespaces[1].nsid, NVT_MAX_NSID);
	assert_int_equal(ss->namespaces[1].size, 3072);

	ss = &cfg.subsystems[1];
	assert_int_equal(ss->max_controllers, NVT_DEFAULT_CTRLS_PER_SUBSYS);
	assert_int_equal(ss->max_io_queues, NVT_MAX_IO_QUEUES_LIMIT);
	assert_true(ss->allow_any_host);
	assert_int_equal(ss->nr_hosts, 0);
	assert_int_equal(ss->nr_namespaces, 0);
	nvt_config_free(&cfg);
}

static void test_empty(void **state)
{
	struct nvt_config cfg;
	char path[256], *err;

	assert_int_equal(load(DATA("empty.cfg"), &cfg, &err), 0);
	free(err);
	assert_int_equal(cfg.nr_listeners, 0);
	assert_int_equal(cfg.nr_subsystems, 0);
	nvt_config_free(&cfg);

	assert_int_equal(load_text("", &cfg, &err, path, sizeof(path)), 0);
	assert_string_equal(err, "");
	free(err);
	assert_true(cfg.discovery);
	nvt_config_free(&cfg);
}

/* load -> print -> load gives the same config, and printing is a fixed point. */
static void round_trip(const char *path)
{
	struct nvt_config a, b;
	char *text, *text2, *err, tmp[256];
	size_t len, len2;
	FILE *f;

	assert_int_equal(load(path, &a, &err), 0);
	free(err);
	f = open_memstream(&text, &len);
	nvt_config_print(&a, f);
	fclose(f);

	write_tmp(tmp, sizeof(tmp), text, len);
	assert_int_equal(load(tmp, &b, &err), 0);
	assert_string_equal(err, "");
	free(err);
	unlink(tmp);
	assert_same_config(&a, &b);

	f = open_memstream(&text2, &len2);
	nvt_config_print(&b, f);
	fclose(f);
	/* Only the first line, naming the source file, may differ. */
	assert_string_equal(strchr(text, '\n'), strchr(text2, '\n'));

	free(text);
	free(text2);
	nvt_config_free(&a);
	nvt_config_free(&b);
}

static void test_round_trip(void **state)
{
	round_trip(EXAMPLE);
	round_trip(DATA("minimal.cfg"));
	round_trip(DATA("full.cfg"));
	round_trip(DATA("empty.cfg"));
	round_trip(FILE_EXAMPLE);
	round_trip(VHOST_EXAMPLE);
}

static void test_print_spells_out_defaults(void **state)
{
	struct nvt_config cfg;
	char *text, *err;
	size_t len;
	FILE *f;

	assert_int_equal(load(DATA("minimal.cfg"), &cfg, &err), 0);
	free(err);
	f = open_memstream(&text, &len);
	nvt_config_print(&cfg, f);
	fclose(f);
	assert_non_null(strstr(text, "\nlog_level = \"info\";\n"));
	assert_non_null(strstr(text, "\ndiscovery = true;\n"));
	assert_non_null(strstr(text, "\nlisteners = ( );\n"));
	assert_non_null(strstr(text, "\t\tmodel = \"nvt\";\n"));
	assert_non_null(strstr(text, "\t\tallow_any_host = false;\n"));
	assert_non_null(strstr(text, "\t\thosts = [ ];\n"));
	assert_non_null(strstr(text, "\t\t\t\tblock_size = 512;\n"));
	assert_non_null(strstr(text, "\t\t\t\tuuid = \""));
	assert_non_null(strstr(text, "\t\t\t\tnguid = \""));
	free(text);
	nvt_config_free(&cfg);
}

/* Derived ids: the same every run, different per nsid and per nqn, RFC-shaped. */
static void test_stable_ids(void **state)
{
	static const char fmt_a[] =
		"subsystems = ( { nqn = \"nqn.2026-11.io.nvt:a\"; namespaces = (\n"
		"{ nsid = 1; backend = \"ram\"; size = 4096; },\n"
		"{ nsid = 2; backend = \"ram\"; size = 4096; } ); } );\n";
	static const char fmt_b[] =
		"subsystems = ( { nqn = \"nqn.2026-11.io.nvt:b\"; namespaces = (\n"
		"{ nsid = 1; backend = \"ram\"; size = 4096; } ); } );\n";
	struct nvt_config a, a2, b, ex;
	const struct nvt_ns_cfg *a1, *a2n, *b1;
	char path[256], *err, s[37];

	assert_int_equal(load_text(fmt_a, &a, &err, path, sizeof(path)), 0);
	free(err);
	assert_int_equal(load_text(fmt_a, &a2, &err, path, sizeof(path)), 0);
	free(err);
	assert_int_equal(load_text(fmt_b, &b, &err, path, sizeof(path)), 0);
	free(err);
	a1 = &a.subsystems[0].namespaces[0];
	a2n = &a.subsystems[0].namespaces[1];
	b1 = &b.subsystems[0].namespaces[0];

	assert_memory_equal(a1->uuid, a2.subsystems[0].namespaces[0].uuid, 16);
	assert_memory_equal(a1->nguid, a2.subsystems[0].namespaces[0].nguid, 16);
	assert_string_equal(a.subsystems[0].serial, a2.subsystems[0].serial);

	assert_memory_not_equal(a1->uuid, a2n->uuid, 16);
	assert_memory_not_equal(a1->nguid, a2n->nguid, 16);
	assert_memory_not_equal(a1->uuid, b1->uuid, 16);
	assert_memory_not_equal(a1->nguid, b1->nguid, 16);
	assert_memory_not_equal(a1->uuid, a1->nguid, 16);
	assert_string_not_equal(a.subsystems[0].serial, b.subsystems[0].serial);

	/* RFC 9562: version 8 (custom) in the high nibble of byte 6, variant 10xx in byte 8. */
	assert_int_equal(a1->uuid[6] >> 4, 8);
	assert_int_equal(a1->uuid[8] >> 6, 2);

	/*
	 * Pinned: hosts remember namespace ids, so a change in the derivation
	 * would look to them like a different disk after an upgrade.
	 */
	assert_int_equal(load(EXAMPLE, &ex, &err), 0);
	free(err);
	uuid_str(ex.subsystems[0].namespaces[0].uuid, s);
	assert_string_equal(s, "11fed1f8-80fd-80bd-8237-afe46076de2d");
	assert_string_equal(ex.subsystems[0].serial, "072ABF69074B7952E24D");

	nvt_config_free(&a);
	nvt_config_free(&a2);
	nvt_config_free(&b);
	nvt_config_free(&ex);
}

static void test_sizes(void **state)
{
	static const struct {
		const char *size;
		uint64_t bytes;
	} cases[] = {
		{ "4096", 4096 },
		{ "\"4096\"", 4096 },
		{ "\"1k\"", 1024 },
		{ "\"1K\"", 1024 },
		{ "\"64M\"", 64ull << 20 },
		{ "\"1G\"", 1ull << 30 },
		{ "\"2t\"", 2ull << 40 },
		{ "4294967296L", 4ull << 30 },
		{ "0x100000", 1ull << 20 },
		/* The most that still prints back as an "L" integer. */
		{ "\"8388607T\"", 8388607ull << 40 },
	};
	char text[512], path[256], *err;
	struct nvt_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "subsystems = ( { nqn = \"nqn.2026-11.io.nvt:s\"; namespaces = ( {\n"
			 "nsid = 1; backend = \"ram\"; size = %s; } ); } );\n", cases[i].size);
		assert_int_equal(load_text(text, &cfg, &err, path, sizeof(path)), 0);
		assert_string_equal(err, "");
		free(err);
		assert_int_equal(cfg.subsystems[0].namespaces[0].size, cases[i].bytes);
		nvt_config_free(&cfg);
	}
}

/* A rejected file and the exact lines it must print, without the "<dir>/<file>:" prefix. */
struct bad_case {
	const char *file;
	const char *expect;
};

static const struct bad_case bad_cases[] = {
	{ "syntax.cfg", "3: syntax: syntax error\n" },
	{ "unknown_top.cfg", "3: listners: unknown setting\n" },
	{ "unknown_ns.cfg", "7: subsystems[0].namespaces[0].colour: unknown setting\n" },
	{ "wrong_type.cfg", "4: listeners[0].port: expected an integer, not a string\n" },
	{ "bad_pi.cfg",
	  "4: subsystems[0].namespaces[0].pi.metadata_size: 8 bytes cannot hold the 16-byte crc64 PI\n"
	  "5: subsystems[0].namespaces[1].pi.type: 5 is out of range 0..3\n"
	  "6: subsystems[0].namespaces[2].pi.location: unknown location \"middle\" (known: last, first)\n"
	  "7: subsystems[0].namespaces[3].pi: expected a group { ... }, not an integer\n" },
	{ "dup_nsid.cfg",
	  "6: subsystems[0].namespaces[2].nsid: duplicate nsid 1 (first at line 4)\n" },
	{ "dup_nqn.cfg", "5: subsystems[2].nqn: duplicate subsystem NQN (first at line 2)\n" },
	{ "size_zero.cfg",
	  "6: subsystems[0].namespaces[0].size: must be greater than 0 (got 0)\n" },
	{ "size_unaligned.cfg",
	  "6: subsystems[0].namespaces[0].size: 6144 is not a multiple of block_size 4096\n" },
	{ "bad_block_size.cfg",
	  "7: subsystems[0].namespaces[0].block_size: must be 512 or 4096 (got 1024)\n" },
	{ "bad_nqn.cfg",
	  "2: subsystems[0].nqn: not an NQN (must start with \"nqn.\"): "
	  "\"iqn.2026-11.io.nvt:ram0\"\n" },
	{ "bad_address.cfg",
	  "3: listeners[1].address: not an IPv4 or IPv6 address: \"192.0.2.300\"\n" },
	{ "unknown_backend.cfg",
	  "5: subsystems[0].namespaces[0].backend: unknown backend \"tape\" (known: ram, file, nvme)\n" },
	{ "dup_uuid.cfg",
	  "13: subsystems[1].namespaces[0].uuid: duplicate uuid (first at line 6)\n" },
	{ "dup_listener.cfg",
	  "3: listeners[1]: duplicate transport, address and port (first at line 2)\n" },
	{ "dup_host.cfg", "6: subsystems[0].hosts[1]: duplicate host NQN (first at line 4)\n" },
	{ "discovery_nqn.cfg",
	  "2: subsystems[0].nqn: reserved for the discovery subsystem (see the discovery "
	  "setting): \"nqn.2014-08.org.nvmexpress.discovery\"\n" },
	{ "big_int.cfg",
	  "4: syntax: integer 4294967808 is out of range (a 64-bit integer needs the L suffix)\n" },
	{ "include.cfg", "2: syntax: @include and other directives are not supported\n" },
	{ "missing.cfg",
	  "1: listeners[0].transport: missing (required)\n"
	  "4: subsystems[0].namespaces[0].backend: missing (required)\n"
	  "4: subsystems[0].namespaces[0].size: missing (required)\n" },
	{ "many.cfg",
	  "2: log_level: unknown log level \"verbose\" (known: error, warn, info, debug)\n"
	  "4: listeners[0].transport: unknown transport \"tcp\" (known: rdma)\n"
	  "4: listeners[0].port: 70000 is out of range 1..65535\n"
	  "8: subsystems[0].serial: too long: 28 bytes, at most 20\n"
	  "10: subsystems[0].namespaces[0].nsid: 0 is out of range 1..1024\n"
	  "10: subsystems[0].namespaces[0].size: must be greater than 0 (got -4096)\n"
	  "11: subsystems[0].namespaces[1].size: expected bytes with an optional K, M, G or T "
	  "suffix: \"1.5G\"\n"
	  "11: subsystems[0].namespaces[1].nguid: expected 32 hex digits: \"xyz\"\n"
	  "13: subsystems[0].colour: unknown setting\n" },
};

/* Prefix every line of @expect with "<path>:". */
static char *with_path(const char *path, const char *expect)
{
	char *out;
	size_t len;
	FILE *f = open_memstream(&out, &len);

	for (const char *l = expect; *l; ) {
		const char *nl = strchr(l, '\n');

		fprintf(f, "%s:%.*s\n", path, (int)(nl - l), l);
		l = nl + 1;
	}
	fclose(f);
	return out;
}

/* A listener's max_io_size: an integer or a size string, a power of two in 4K..8M. */
static void test_max_io_size(void **state)
{
	static const struct {
		const char *value;
		uint64_t bytes;
	} cases[] = {
		{ "4096", 4096 },
		{ "\"4K\"", 4096 },
		{ "\"256k\"", 256u << 10 },
		{ "\"1M\"", 1u << 20 },
		{ "1048576", 1u << 20 },
		{ "\"8M\"", 8u << 20 },
	};
	char text[256], path[256], *err, *out;
	struct nvt_config cfg;
	size_t len;
	FILE *f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "listeners = ( { transport = \"rdma\"; max_io_size = %s; } );\n",
			 cases[i].value);
		assert_int_equal(load_text(text, &cfg, &err, path, sizeof(path)), 0);
		assert_string_equal(err, "");
		free(err);
		assert_int_equal(cfg.listeners[0].max_io_size, cases[i].bytes);
		nvt_config_free(&cfg);
	}
	/* Not given: 1 MiB, and --check-config spells it out. */
	assert_int_equal(load_text("listeners = ( { transport = \"rdma\"; } );\n", &cfg, &err,
				   path, sizeof(path)), 0);
	free(err);
	assert_int_equal(cfg.listeners[0].max_io_size, 1u << 20);
	f = open_memstream(&out, &len);
	nvt_config_print(&cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "max_io_size = 1048576;\t# 1M\n"));
	free(out);
	nvt_config_free(&cfg);
}

/* A listener's batch_posts: true unless set false; anything but a boolean is refused at its line. */
static void test_batch_posts(void **state)
{
	char path[256], *err;
	struct nvt_config cfg;

	assert_int_equal(load_text("listeners = ( { transport = \"rdma\"; },\n"
				   "  { transport = \"rdma\"; port = 4421; batch_posts = false; } );\n",
				   &cfg, &err, path, sizeof(path)), 0);
	assert_string_equal(err, "");
	free(err);
	assert_true(cfg.listeners[0].batch_posts);
	assert_false(cfg.listeners[1].batch_posts);
	nvt_config_free(&cfg);
	assert_int_equal(load_text("listeners = ( { transport = \"rdma\"; },\n"
				   "  { transport = \"rdma\"; port = 4421; batch_posts = \"off\"; } );\n",
				   &cfg, &err, path, sizeof(path)), -EINVAL);
	assert_non_null(strstr(err, ":2: listeners[1].batch_posts: expected true or false, not a string\n"));
	assert_non_null(strstr(err, path));
	free(err);
}

/* ANA: a listener's group (default 1), group states by id; bad ids, states and duplicates named at their line. */
static void test_ana(void **state)
{
	static const struct {
		const char *text;
		const char *expect;	/* after "<file>:" */
	} bad[] = {
		{ "listeners = ( { transport = \"rdma\"; ana_group = 0; } );\n",
		  "1: listeners[0].ana_group: 0 is out of range 1..32\n" },
		{ "listeners = ( { transport = \"rdma\"; ana_group = 33; } );\n",
		  "1: listeners[0].ana_group: 33 is out of range 1..32\n" },
		{ "ana_groups = ( { state = \"optimized\"; } );\n",
		  "1: ana_groups[0].id: missing (required)\n" },
		{ "ana_groups = (\n { id = 2; state = \"sideways\"; } );\n",
		  "2: ana_groups[0].state:" },
		{ "ana_groups = ( { id = 2; },\n { id = 2; state = \"inaccessible\"; } );\n",
		  "2: ana_groups[1].id:" },
	};
	char path[256], *err, *out;
	struct nvt_config cfg;
	size_t len;
	FILE *f;

	assert_int_equal(load_text("listeners = ( { transport = \"rdma\"; },\n"
				   "  { transport = \"rdma\"; port = 4421; ana_group = 2; } );\n"
				   "ana_groups = ( { id = 2; state = \"non-optimized\"; }, { id = 3; } );\n",
				   &cfg, &err, path, sizeof(path)), 0);
	assert_string_equal(err, "");
	free(err);
	assert_int_equal(cfg.listeners[0].ana_group, 1);
	assert_int_equal(cfg.listeners[1].ana_group, 2);
	assert_int_equal(cfg.nr_ana_groups, 2);
	assert_int_equal(cfg.ana_groups[0].id, 2);
	assert_string_equal(cfg.ana_groups[0].state, "non-optimized");
	assert_string_equal(cfg.ana_groups[1].state, "optimized");
	f = open_memstream(&out, &len);
	nvt_config_print(&cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "ana_group = 2;"));
	assert_non_null(strstr(out, "state = \"non-optimized\";"));
	free(out);
	nvt_config_free(&cfg);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(load_text(bad[i].text, &cfg, &err, path, sizeof(path)), -EINVAL);
		if (!strstr(err, bad[i].expect))
			fail_msg("case %zu: got %s", i, err);
		free(err);
	}
}

static void test_bad_file(void **state)
{
	const struct bad_case *c = *state;
	struct nvt_config cfg;
	char path[512], *err, *expect;

	snprintf(path, sizeof(path), "%s/%s", NVT_TEST_DATA_DIR, c->file);
	memset(&cfg, 0xa5, sizeof(cfg));
	assert_int_equal(load(path, &cfg, &err), -EINVAL);
	expect = with_path(path, c->expect);
	assert_string_equal(err, expect);
	/* Nothing is half accepted: the cfg comes back zeroed. */
	assert_all_zero(&cfg, sizeof(cfg));
	free(expect);
	free(err);

	/* A NULL stream is allowed and changes nothing but the printing. */
	assert_int_equal(nvt_config_load(path, &cfg, NULL), -EINVAL);
}

static void test_bad_inline(void **state)
{
	static const struct {
		const char *text;
		const char *expect;	/* after "<file>:" */
	} cases[] = {
		{ "discovery = 1;\n", "1: discovery: expected true or false, not an integer\n" },
		{ "log_level = 3;\n", "1: log_level: expected a string, not an integer\n" },
		{ "listeners = { };\n", "1: listeners: expected a list ( ... ), not a group\n" },
		{ "listeners = ( 5 );\n",
		  "1: listeners[0]: expected a group { ... }, not an integer\n" },
		{ "listeners = ( { transport = \"rdma\"; port = 0; } );\n",
		  "1: listeners[0].port: 0 is out of range 1..65535\n" },
		{ "listeners = ( { transport = \"rdma\"; max_io_size = \"3M\"; } );\n",
		  "1: listeners[0].max_io_size: must be a power of two (got 3145728)\n" },
		{ "listeners = ( { transport = \"rdma\"; max_io_size = 2048; } );\n",
		  "1: listeners[0].max_io_size: must be 4K..8M (got 2048)\n" },
		{ "listeners = ( { transport = \"rdma\"; max_io_size = \"16M\"; } );\n",
		  "1: listeners[0].max_io_size: must be 4K..8M (got 16777216)\n" },
		{ "listeners = ( { transport = \"rdma\"; max_io_size = 0; } );\n",
		  "1: listeners[0].max_io_size: must be greater than 0 (got 0)\n" },
		{ "listeners = ( { transport = \"rdma\"; max_io_size = \"1MB\"; } );\n",
		  "1: listeners[0].max_io_size: expected bytes with an optional K, M, G or T suffix:"
		  " \"1MB\"\n" },
		{ "listeners = ( { transport = \"rdma\"; max_io_size = true; } );\n",
		  "1: listeners[0].max_io_size: expected an integer or a size string like \"64M\","
		  " not a boolean\n" },
		{ "listeners = ( { transport = \"rdma\"; batch_posts = 1; } );\n",
		  "1: listeners[0].batch_posts: expected true or false, not an integer\n" },
		{ "listeners = ( { transport = \"rdma\"; batch_posts = \"no\"; } );\n",
		  "1: listeners[0].batch_posts: expected true or false, not a string\n" },
		{ "listeners = ( { transport = \"rdma\"; address = \"fe80::1%eth0\"; } );\n",
		  "1: listeners[0].address: not an IPv4 or IPv6 address: \"fe80::1%eth0\"\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; serial = \"\\x01\"; } );\n",
		  "1: subsystems[0].serial: must be printable ASCII: \"\\x01\"\n" },
		{ "max_controllers_per_host = 0;\n",
		  "1: max_controllers_per_host: 0 is out of range 1..65519\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; max_controllers = 65520; } );\n",
		  "1: subsystems[0].max_controllers: 65520 is out of range 1..65519\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; max_io_queues = 129; } );\n",
		  "1: subsystems[0].max_io_queues: 129 is out of range 1..128\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; model = \"\"; } );\n",
		  "1: subsystems[0].model: may not be empty: \"\"\n" },
		{ "subsystems = ( { nqn = \"nqn.a b\"; } );\n",
		  "1: subsystems[0].nqn: an NQN may not contain spaces or control characters: "
		  "\"nqn.a b\"\n" },
		{ "subsystems = ( { nqn = \"nqn.\\xc0\\xaf\"; } );\n",
		  "1: subsystems[0].nqn: not valid UTF-8: \"nqn.\\xc0\\xaf\"\n" },
		{ "subsystems = ( { nqn = \"nqn.\"; } );\n",
		  "1: subsystems[0].nqn: not an NQN (must start with \"nqn.\"): \"nqn.\"\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; hosts = [ \"h\" ]; } );\n",
		  "1: subsystems[0].hosts[0]: not an NQN (must start with \"nqn.\"): \"h\"\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; hosts = ( 1 ); } );\n",
		  "1: subsystems[0].hosts[0]: expected a string, not an integer\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\";"
		  " size = 4096; uuid = \"00000000-0000-0000-0000-000000000000\"; } ); } );\n",
		  "1: subsystems[0].namespaces[0].uuid: may not be all zeros\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\";"
		  " size = 4096; uuid = \"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"; } ); } );\n",
		  "1: subsystems[0].namespaces[0].uuid: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
		  " (hex): \"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\";"
		  " size = 4096; nguid = \"00112233445566778899aabbccddeeff\"; },\n"
		  "{ nsid = 2; backend = \"ram\"; size = 4096;"
		  " nguid = \"00112233445566778899AABBCCDDEEFF\"; } ); } );\n",
		  "2: subsystems[0].namespaces[1].nguid: duplicate nguid (first at line 1)\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\";"
		  " size = \"20000000T\"; } ); } );\n",
		  "1: subsystems[0].namespaces[0].size: too large: \"20000000T\"\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\";"
		  " size = 1.5; } ); } );\n",
		  "1: subsystems[0].namespaces[0].size: expected an integer or a size string like"
		  " \"64M\", not a float\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1025; backend = \"ram\";"
		  " size = 4096; } ); } );\n",
		  "1: subsystems[0].namespaces[0].nsid: 1025 is out of range 1..1024\n" },
		/* Backend settings: only the namespace's backend's, each of its type. */
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\";"
		  " size = 4096; path = \"/tmp/x\"; } ); } );\n",
		  "1: subsystems[0].namespaces[0].path: not a setting of backend \"ram\" (it belongs to: file)\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = (\n{ nsid = 1;\nbackend = \"file\";"
		  " metadata_path = \"/tmp/m\"; } ); } );\n",
		  "2: subsystems[0].namespaces[0].path: missing (required for backend \"file\")\n" },
		/* Metadata lives in the sidecar: a PI namespace without one is refused here already. */
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = (\n{ nsid = 1; backend = \"file\";"
		  " path = \"/tmp/x\";\npi = { type = 1; }; } ); } );\n",
		  "2: subsystems[0].namespaces[0].metadata_path: missing (required: the namespace's"
		  " metadata (pi) is kept there)\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"file\";\n"
		  "path = \"/tmp/x\";\n\ncolour = \"blue\"; } ); } );\n",
		  "4: subsystems[0].namespaces[0].colour: unknown setting\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"file\";"
		  " path = 5; } ); } );\n",
		  "1: subsystems[0].namespaces[0].path: expected a string, not an integer\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"file\";"
		  " path = \"\"; } ); } );\n",
		  "1: subsystems[0].namespaces[0].path: may not be empty\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"file\";"
		  " path = \"/x\"; direct = \"yes\"; } ); } );\n",
		  "1: subsystems[0].namespaces[0].direct: expected true or false, not a string\n" },
		/* An unknown backend: its settings are not judged, size is still required. */
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"tape\";"
		  " path = \"/x\"; } ); } );\n",
		  "1: subsystems[0].namespaces[0].backend: unknown backend \"tape\" (known: ram, file, nvme)\n"
		  "1: subsystems[0].namespaces[0].size: missing (required)\n" },
		{ "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\";"
		  " } ); } );\n",
		  "1: subsystems[0].namespaces[0].size: missing (required)\n" },
		{ "x = 99999999999999999999L;\n",
		  "1: syntax: integer 99999999999999999999L is out of range\n" },
		{ "x = 0x80000000;\n",
		  "1: syntax: integer 0x80000000 is out of range (a 64-bit integer needs the L suffix)\n" },
		{ "x = \"a\\x00b\";\n", "1: syntax: \\x00 in a string\n" },
		{ "a = 1;\nb = (\n", "3: syntax: syntax error\n" },
	};
	struct nvt_config cfg;
	char path[256], *err, *expect;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load_text(cases[i].text, &cfg, &err, path, sizeof(path)), -EINVAL);
		expect = with_path(path, cases[i].expect);
		assert_string_equal(err, expect);
		free(expect);
		free(err);
	}
}

/* The file backend's own settings: taken from its table, stored by name, printed back. */
static void test_file_backend(void **state)
{
	static const char text[] =
		"subsystems = ( { nqn = \"nqn.2026-11.io.nvt:f\"; namespaces = (\n"
		"{ nsid = 1; backend = \"file\";\n"
		"  path = \"/srv/nvt/a.img\";\n"
		"  metadata_path = \"/srv/nvt/a \\\"md\\\"\";\n"
		"  size = \"1M\"; pi = { type = 1; }; },\n"
		"{ path = \"/dev/vdb\"; backend = \"file\"; nsid = 2; direct = false; },\n"
		"{ nsid = 3; backend = \"ram\"; size = 4096; } ); } );\n";
	struct nvt_config cfg;
	const struct nvt_ns_cfg *a, *b, *r;
	const struct nvt_ns_setting *v;
	char path[256], *err, *out;
	size_t len;
	FILE *f;

	write_tmp(path, sizeof(path), text, strlen(text));
	assert_int_equal(load(path, &cfg, &err), 0);
	assert_string_equal(err, "");
	free(err);
	a = &cfg.subsystems[0].namespaces[0];
	b = &cfg.subsystems[0].namespaces[1];
	r = &cfg.subsystems[0].namespaces[2];

	assert_string_equal(nvt_ns_cfg_path(a, "path"), "/srv/nvt/a.img");
	assert_string_equal(nvt_ns_cfg_path(a, "metadata_path"), "/srv/nvt/a \"md\"");
	assert_true(nvt_ns_cfg_bool(a, "direct", true));	/* not given: the default */
	assert_null(nvt_ns_cfg_setting(a, "direct"));
	v = nvt_ns_cfg_setting(a, "path");
	assert_non_null(v);
	assert_int_equal(v->line, 3);
	assert_int_equal(nvt_ns_cfg_setting(a, "metadata_path")->line, 4);
	assert_int_equal(a->line, 2);
	/* The file the messages name is the config's own copy of the path. */
	assert_ptr_equal(a->file, cfg.path);
	assert_int_equal(a->size, 1u << 20);

	/* size left out: the store's own; backend named after its settings. */
	assert_string_equal(nvt_ns_cfg_path(b, "path"), "/dev/vdb");
	assert_null(nvt_ns_cfg_path(b, "metadata_path"));
	assert_false(nvt_ns_cfg_bool(b, "direct", true));
	assert_int_equal(b->size, 0);

	/* ram declares nothing. */
	assert_int_equal(r->nr_settings, 0);
	assert_null(nvt_ns_cfg_path(r, "path"));

	f = open_memstream(&out, &len);
	nvt_config_print(&cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "\t\t\t\tpath = \"/srv/nvt/a.img\";\n"));
	assert_non_null(strstr(out, "\t\t\t\tmetadata_path = \"/srv/nvt/a \\\"md\\\"\";\n"));
	assert_non_null(strstr(out, "\t\t\t\tdirect = false;\n"));
	/* An unset size is not printed as 0 (which would not load). */
	assert_null(strstr(out, "\tsize = 0;"));
	free(out);
	nvt_config_free(&cfg);

	round_trip(path);
	unlink(path);
}

/* nvme: the device's format; the file may give block_size and pi.*, and the loader says which and where. */
static void test_nvme_backend(void **state)
{
	static const char text[] =
		"subsystems = ( { nqn = \"nqn.2026-12.io.nvt:n\"; namespaces = (\n"
		"{ nsid = 1; backend = \"nvme\"; device = \"/dev/ng0n1\"; },\n"
		"{ nsid = 2; backend = \"nvme\"; device = \"/dev/nvme0n2\";\n"
		"  block_size = 4096;\n"
		"  pi = { type = 1;\n"
		"    guard = \"crc64\"; }; } ); } );\n";
	struct nvt_config cfg;
	const struct nvt_ns_cfg *a, *b;
	char path[256], *err, *out;
	size_t len;
	FILE *f;

	(void)state;
	write_tmp(path, sizeof(path), text, strlen(text));
	assert_int_equal(load(path, &cfg, &err), 0);
	assert_string_equal(err, "");
	free(err);
	a = &cfg.subsystems[0].namespaces[0];
	b = &cfg.subsystems[0].namespaces[1];
	assert_string_equal(nvt_ns_cfg_path(a, "device"), "/dev/ng0n1");
	assert_int_equal(a->size, 0);		/* no size needed: the device's */
	assert_int_equal(a->given, 0);
	assert_int_equal(a->block_size_line, 0);
	assert_int_equal(b->given, NVT_NS_GIVEN_BLOCK_SIZE | NVT_NS_GIVEN_PI_TYPE |
				   NVT_NS_GIVEN_PI_GUARD);
	assert_int_equal(b->block_size_line, 4);
	assert_int_equal(b->pi_line, 5);
	/* Each key's own line, for messages about it. */
	assert_int_equal(b->pi_type_line, 5);
	assert_int_equal(b->pi_guard_line, 6);
	assert_int_equal(b->pi_loc_line, 0);
	/* Printed, only what was given: the defaults would disagree with a 4096+16 device. */
	f = open_memstream(&out, &len);
	nvt_config_print(&cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "block_size = 4096;"));
	assert_null(strstr(out, "block_size = 512;"));
	assert_non_null(strstr(out, "guard = \"crc64\";"));
	assert_null(strstr(out, "location"));
	assert_null(strstr(out, "metadata_size"));
	free(out);
	nvt_config_free(&cfg);
	round_trip(path);
	unlink(path);

	/* device is required. */
	{
		static const char bad[] =
			"subsystems = ( { nqn = \"nqn.2026-12.io.nvt:n\"; namespaces = (\n"
			"{ nsid = 1; backend = \"nvme\"; } ); } );\n";

		write_tmp(path, sizeof(path), bad, strlen(bad));
		assert_int_equal(load(path, &cfg, &err), -EINVAL);
		assert_non_null(strstr(err, ":2: subsystems[0].namespaces[0].device: missing (required for backend \"nvme\")"));
		free(err);
		unlink(path);
	}
}

/* vhost controllers: LUNs name configured namespaces; every mistake has its line. */
static void test_vhost(void **state)
{
	static const char good[] =
		"vhost = ( { socket = \"/run/nvt/vhost.0\"; owner = \"root\"; group = \"root\";\n"
		"  luns = ( { lun = 0; subsystem = \"nqn.2026-11.io.nvt:v\"; nsid = 2; },\n"
		"           { lun = 16383; subsystem = \"nqn.2026-11.io.nvt:v\"; nsid = 1; } ); },\n"
		"  { socket = \"/run/nvt/vhost.1\"; copy_between_controllers = true;\n"
		"    luns = ( { lun = 3; subsystem = \"nqn.2026-11.io.nvt:v\"; nsid = 2; } ); } );\n"
		"subsystems = ( { nqn = \"nqn.2026-11.io.nvt:v\"; namespaces = (\n"
		"  { nsid = 1; backend = \"ram\"; size = \"1M\"; },\n"
		"  { nsid = 2; backend = \"ram\"; size = \"1M\"; } ); } );\n";
	static const struct {
		const char *text;
		const char *expect;	/* after "<file>:" */
	} bad[] = {
		{ "vhost = ( { luns = ( ); } );\n", "1: vhost[0].socket: missing (required)\n" },
		{ "vhost = ( { socket = \"vhost.0\"; } );\n",
		  "1: vhost[0].socket: must be an absolute path: \"vhost.0\"\n" },
		{ "vhost = ( { socket = \"/a\"; owner = \"no-such-user-nvt\"; } );\n",
		  "1: vhost[0].owner: no such user: \"no-such-user-nvt\"\n" },
		{ "vhost = ( { socket = \"/a\"; group = \"no-such-group-nvt\"; } );\n",
		  "1: vhost[0].group: no such group: \"no-such-group-nvt\"\n" },
		{ "vhost = ( { socket = \"/a\"; }, { socket = \"/a\"; } );\n",
		  "1: vhost[1].socket: duplicate vhost socket (first at line 1)\n" },
		{ "control_socket = \"/a\";\nvhost = ( { socket = \"/a\"; } );\n",
		  "2: vhost[0].socket: is the control_socket too\n" },
		{ "vhost = ( { socket = \"/a\"; luns = ( { lun = 16384; subsystem = \"nqn.x\"; nsid = 1; } ); } );\n"
		  "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\"; size = 4096; } ); } );\n",
		  "1: vhost[0].luns[0].lun: 16384 is out of range 0..16383\n" },
		{ "vhost = ( { socket = \"/a\"; luns = ( { lun = 1; subsystem = \"nqn.y\"; nsid = 1; } ); } );\n",
		  "1: vhost[0].luns[0].subsystem: no such subsystem: \"nqn.y\"\n" },
		{ "vhost = ( { socket = \"/a\"; luns = ( { lun = 1; subsystem = \"nqn.x\"; nsid = 2; } ); } );\n"
		  "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\"; size = 4096; } ); } );\n",
		  "1: vhost[0].luns[0].nsid: subsystem \"nqn.x\" has no namespace 2\n" },
		{ "vhost = ( { socket = \"/a\"; luns = (\n { lun = 1; subsystem = \"nqn.x\"; nsid = 1; },\n"
		  " { lun = 1; subsystem = \"nqn.x\"; nsid = 1; } ); } );\n"
		  "subsystems = ( { nqn = \"nqn.x\"; namespaces = ( { nsid = 1; backend = \"ram\"; size = 4096; } ); } );\n",
		  "3: vhost[0].luns[1].lun: duplicate lun (first at line 2)\n"
		  "3: vhost[0].luns[1]: namespace 1 of \"nqn.x\" is already lun 1 of this controller\n" },
		{ "vhost = ( { socket = \"/a\"; luns = ( { lun = 1; nsid = 1; } ); } );\n",
		  "1: vhost[0].luns[0].subsystem: missing (required)\n" },
		{ "vhost = ( { socket = \"/a\"; colour = 1; } );\n", "1: vhost[0].colour: unknown setting\n" },
		{ "vhost = ( { socket = \"/a\"; copy_between_controllers = 1; } );\n",
		  "1: vhost[0].copy_between_controllers: expected true or false, not an integer\n" },
	};
	struct nvt_config cfg;
	char path[256], *err, *out, *expect;
	size_t len;
	FILE *f;

	write_tmp(path, sizeof(path), good, strlen(good));
	assert_int_equal(load(path, &cfg, &err), 0);
	assert_string_equal(err, "");
	free(err);
	assert_int_equal(cfg.nr_vhosts, 2);
	assert_string_equal(cfg.vhosts[0].socket, "/run/nvt/vhost.0");
	assert_string_equal(cfg.vhosts[0].owner, "root");
	assert_int_equal(cfg.vhosts[0].nr_luns, 2);
	assert_int_equal(cfg.vhosts[0].luns[1].lun, 16383);
	assert_int_equal(cfg.vhosts[0].luns[1].nsid, 1);
	assert_int_equal(cfg.vhosts[0].luns[1].line, 3);
	assert_string_equal(cfg.vhosts[1].owner, "");
	assert_false(cfg.vhosts[0].copy_between_controllers);	/* the default: own LUNs only */
	assert_true(cfg.vhosts[1].copy_between_controllers);
	assert_int_equal(cfg.vhosts[1].luns[0].lun, 3);
	assert_int_equal(cfg.vhosts[1].line, 4);
	f = open_memstream(&out, &len);
	nvt_config_print(&cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "\t\tsocket = \"/run/nvt/vhost.1\";\n"));
	assert_non_null(strstr(out, "\t\t\t\tlun = 16383;\n"));
	free(out);
	nvt_config_free(&cfg);
	round_trip(path);
	unlink(path);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_tmp(path, sizeof(path), bad[i].text, strlen(bad[i].text));
		assert_int_equal(load(path, &cfg, &err), -EINVAL);
		expect = with_path(path, bad[i].expect);
		assert_string_equal(err, expect);
		assert_all_zero(&cfg, sizeof(cfg));
		free(expect);
		free(err);
		unlink(path);
	}
}

/* Numbers that look big but are fine must not trip the overflow scan. */
static void test_not_overflow(void **state)
{
	static const char text[] =
		"# 99999999999999999999 in a comment\n"
		"/* 99999999999999999999\n 99999999999999999999 */\n"
		"// 99999999999999999999\n"
		"subsystems = ( { nqn = \"nqn.2026-11.io.nvt:99999999999999999999\";\n"
		"model = \"\\\" 99999999999999999999\"; namespaces = ( { nsid = 1; backend = \"ram\";\n"
		"size = 9223372036854775296L; } ); } );\n";
	struct nvt_config cfg;
	char path[256], *err;

	assert_int_equal(load_text(text, &cfg, &err, path, sizeof(path)), 0);
	assert_string_equal(err, "");
	free(err);
	assert_int_equal(cfg.subsystems[0].namespaces[0].size, 9223372036854775296ull);
	nvt_config_free(&cfg);
}

static void test_unreadable(void **state)
{
	struct nvt_config cfg;
	char *err;

	memset(&cfg, 0xa5, sizeof(cfg));
	assert_int_equal(load(DATA("does-not-exist.cfg"), &cfg, &err), -ENOENT);
	assert_string_equal(err, DATA("does-not-exist.cfg") ": cannot read: No such file or directory\n");
	assert_all_zero(&cfg, sizeof(cfg));
	free(err);

	assert_int_equal(load(NVT_TEST_DATA_DIR, &cfg, &err), -EISDIR);
	assert_string_equal(err, NVT_TEST_DATA_DIR ": cannot read: Is a directory\n");
	free(err);
}

static void test_free_is_safe(void **state)
{
	struct nvt_config cfg = { 0 };
	char *err;

	nvt_config_free(&cfg);
	nvt_config_free(NULL);
	assert_int_equal(load(DATA("full.cfg"), &cfg, &err), 0);
	free(err);
	nvt_config_free(&cfg);
	assert_all_zero(&cfg, sizeof(cfg));
	nvt_config_free(&cfg);	/* twice is fine: free leaves it zeroed */
}

/* Feed broken variants of good files; nothing may crash or leak, and bad means -EINVAL. */
static void fuzz_one(const char *text, size_t len)
{
	struct nvt_config cfg;
	char path[256];
	int ret;

	write_tmp(path, sizeof(path), text, len);
	ret = nvt_config_load(path, &cfg, NULL);
	unlink(path);
	assert_true(ret == 0 || ret == -EINVAL);
	if (!ret) {
		char *out;
		size_t n;
		FILE *f = open_memstream(&out, &n);

		nvt_config_print(&cfg, f);
		fclose(f);
		free(out);
	}
	nvt_config_free(&cfg);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

static void test_fuzz(void **state)
{
	static const char junk[] = "\0\xff\xc3\"\\{}()[];,=:@#/*-+Lx9.\n";
	const char *seeds[] = { EXAMPLE, DATA("full.cfg"), DATA("many.cfg"), FILE_EXAMPLE, VHOST_EXAMPLE };
	uint32_t rng = 12345;
	size_t len;

	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		char *text = slurp(seeds[s], &len), *copy = malloc(len + 1);

		assert_non_null(copy);
		/* Every truncation. */
		for (size_t cut = 0; cut < len; cut += 7)
			fuzz_one(text, cut);
		/* Random byte replacements, insertions of syntax characters, and deletions. */
		for (int iter = 0; iter < 600; iter++) {
			size_t n = len;

			memcpy(copy, text, len);
			for (int k = 0; k < 4; k++) {
				size_t at;

				rng = rng * 1103515245u + 12345u;
				at = (rng >> 8) % n;
				if ((rng & 3) == 0)
					copy[at] = (char)(rng >> 16);
				else if ((rng & 3) == 1)
					copy[at] = junk[(rng >> 16) % (sizeof(junk) - 1)];
				else if ((rng & 3) == 2 && n > 1)
					memmove(copy + at, copy + at + 1, --n - at);
				else
					copy[at] = (char)('0' + (rng >> 16) % 10);
			}
			fuzz_one(copy, n);
		}
		free(copy);
		free(text);
	}
}

static void test_extremes(void **state)
{
	size_t big = 200000;
	char *text = malloc(big + 64);
	struct nvt_config cfg;
	char path[256], *err;
	size_t n;

	assert_non_null(text);

	/* Nesting deeper than libconfig's parser stack. */
	n = (size_t)sprintf(text, "subsystems = ");
	for (size_t i = 0; i < 30000; i++)
		text[n++] = '(';
	for (size_t i = 0; i < 30000; i++)
		text[n++] = ')';
	strcpy(text + n, ";\n");
	assert_int_equal(load_text(text, &cfg, &err, path, sizeof(path)), -EINVAL);
	assert_non_null(strstr(err, ": syntax: "));
	free(err);

	/* Nesting libconfig accepts: we never recurse into it. */
	n = (size_t)sprintf(text, "subsystems = (");
	for (size_t i = 0; i < 2000; i++)
		text[n++] = '(';
	for (size_t i = 0; i < 2000; i++)
		text[n++] = ')';
	strcpy(text + n, ");\n");
	assert_int_equal(load_text(text, &cfg, &err, path, sizeof(path)), -EINVAL);
	assert_non_null(strstr(err, "subsystems[0]: expected a group { ... }, not a list\n"));
	free(err);

	/* A very long string value and a very long setting name. */
	n = (size_t)sprintf(text, "subsystems = ( { nqn = \"nqn.");
	memset(text + n, 'a', 100000);
	n += 100000;
	n += (size_t)sprintf(text + n, "\"; } );\nz");
	memset(text + n, 'z', 50000);
	strcpy(text + n + 50000, " = 1;\n");
	assert_int_equal(load_text(text, &cfg, &err, path, sizeof(path)), -EINVAL);
	assert_non_null(strstr(err, ":1: subsystems[0].nqn: too long: 100004 bytes, at most 223\n"));
	assert_non_null(strstr(err, ":2: zzzz"));
	free(err);

	/* NUL bytes are refused, not silently cut at. */
	write_tmp(path, sizeof(path), "a = 1;\nb = \"x\0y\";\n", 18);
	assert_int_equal(load(path, &cfg, &err), -EINVAL);
	unlink(path);
	assert_non_null(strstr(err, ":2: syntax: NUL byte in the file\n"));
	free(err);

	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_host_auth),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_print_spells_out_defaults),
		cmocka_unit_test(test_stable_ids),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_max_io_size),
		cmocka_unit_test(test_batch_posts),
		cmocka_unit_test(test_ana),
		cmocka_unit_test(test_bad_inline),
		cmocka_unit_test(test_file_backend),
		cmocka_unit_test(test_nvme_backend),
		cmocka_unit_test(test_vhost),
		cmocka_unit_test(test_not_overflow),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_free_is_safe),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_extremes),
	};
	enum { NR_GOOD = sizeof(tests) / sizeof(tests[0]),
	       NR_BAD = sizeof(bad_cases) / sizeof(bad_cases[0]) };
	struct CMUnitTest all[NR_GOOD + NR_BAD];

	memcpy(all, tests, sizeof(tests));
	/* One named test per rejected fixture, so a failure says which file. */
	for (size_t i = 0; i < NR_BAD; i++)
		all[NR_GOOD + i] = (struct CMUnitTest){
			.name = bad_cases[i].file,
			.test_func = test_bad_file,
			.initial_state = (void *)&bad_cases[i],
		};
	return cmocka_run_group_tests_name("config", all, group_setup, group_teardown);
}
