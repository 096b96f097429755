/* SPDX-License-Identifier: BSD-3-Clause */
/* Reads, validates and prints the daemon's configuration file (libconfig syntax). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* vasprintf() */
#endif
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

#include "nvt/backend.h"
#include "nvt/auth.h"
#include "nvt/config.h"
#include "nvt/log.h"

/* A file bigger than this is a mistake, not a configuration. */
#define MAX_FILE_BYTES		(16u << 20)
/* Longest setting path we print: subsystems[N].namespaces[N].nguid and friends. */
#define PATH_LEN		128

/* One error, kept until the end so they come out in file order. */
struct msg {
	unsigned int line;
	unsigned int seq;
	char *text;
};

struct ctx {
	const char *file;
	const char *cfg_path;		/* the config's own copy of the path: outlives the load */
	struct msg *msgs;
	size_t nr_msgs, cap_msgs;
	unsigned int nr_errors;
	bool nomem;
};

static void vreport(struct ctx *ctx, unsigned int line, const char *path,
		    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void vreport(struct ctx *ctx, unsigned int line, const char *path,
		    const char *fmt, va_list ap)
{
	char *body, *text;

	ctx->nr_errors++;
	if (vasprintf(&body, fmt, ap) < 0) {
		ctx->nomem = true;
		return;
	}
	if (asprintf(&text, "%s:%u: %s: %s", ctx->file, line, path, body) < 0) {
		free(body);
		ctx->nomem = true;
		return;
	}
	free(body);
	if (ctx->nr_msgs == ctx->cap_msgs) {
		size_t cap = ctx->cap_msgs ? 2 * ctx->cap_msgs : 16;
		struct msg *m = realloc(ctx->msgs, cap * sizeof(*m));

		if (!m) {
			free(text);
			ctx->nomem = true;
			return;
		}
		ctx->msgs = m;
		ctx->cap_msgs = cap;
	}
	ctx->msgs[ctx->nr_msgs] = (struct msg){ line, (unsigned int)ctx->nr_msgs, text };
	ctx->nr_msgs++;
}

static void report(struct ctx *ctx, unsigned int line, const char *path,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(struct ctx *ctx, unsigned int line, const char *path,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, line, path, fmt, ap);
	va_end(ap);
}

/* Errors about one setting: its line comes from libconfig. */
static void report_at(struct ctx *ctx, const config_setting_t *s, const char *path,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report_at(struct ctx *ctx, const config_setting_t *s, const char *path,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, config_setting_source_line(s), path, fmt, ap);
	va_end(ap);
}

static int msg_cmp(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void flush_msgs(struct ctx *ctx, FILE *errf)
{
	if (ctx->nr_msgs)
		qsort(ctx->msgs, ctx->nr_msgs, sizeof(*ctx->msgs), msg_cmp);
	for (size_t i = 0; i < ctx->nr_msgs; i++) {
		if (errf)
			fprintf(errf, "%s\n", ctx->msgs[i].text);
		free(ctx->msgs[i].text);
	}
	if (ctx->nomem && errf)
		fprintf(errf, "%s: out of memory while reporting errors\n", ctx->file);
	free(ctx->msgs);
	ctx->msgs = NULL;
	ctx->nr_msgs = ctx->cap_msgs = 0;
}

/* A user string made safe for an error line: escaped and cut short. */
static const char *shown(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 8 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (*s)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o] = '\0';
	return buf;
}

static void join(char *buf, const char *prefix, const char *key)
{
	if (snprintf(buf, PATH_LEN, "%s%s%s", prefix, *prefix ? "." : "", key) >= PATH_LEN)
		strcpy(buf + PATH_LEN - 4, "...");
}

static void join_idx(char *buf, const char *prefix, unsigned int i)
{
	if (snprintf(buf, PATH_LEN, "%s[%u]", prefix, i) >= PATH_LEN)
		strcpy(buf + PATH_LEN - 4, "...");
}

/*
 * Stable ids. Two FNV-1a 64 passes with different offset bases, each
 * finished with murmur3's fmix64 so that inputs differing in one bit (nsid 1
 * vs 2) differ in about half the output bits. Bytes are fed in a fixed order
 * so every build on every host derives the same ids from the same file.
 */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

static void hash128(const char *tag, const char *nqn, uint32_t nsid, uint8_t out[16])
{
	uint8_t le[4] = { (uint8_t)nsid, (uint8_t)(nsid >> 8),
			  (uint8_t)(nsid >> 16), (uint8_t)(nsid >> 24) };
	uint64_t h[2] = { 0xcbf29ce484222325ull, 0x6c62272e07bb0142ull };

	for (int k = 0; k < 2; k++) {
		/* The NULs keep ("ab", "c") and ("a", "bc") apart. */
		h[k] = fnv1a(h[k], tag, strlen(tag) + 1);
		h[k] = fnv1a(h[k], nqn, strlen(nqn) + 1);
		h[k] = fnv1a(h[k], le, sizeof(le));
	}
	h[0] = fmix64(h[0] ^ (h[1] << 29 | h[1] >> 35));
	h[1] = fmix64(h[1] + h[0]);
	for (int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(h[0] >> (56 - 8 * i));
		out[8 + i] = (uint8_t)(h[1] >> (56 - 8 * i));
	}
}

static bool all_zero(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

static void derive_uuid(const char *nqn, uint32_t nsid, uint8_t uuid[16])
{
	hash128("uuid", nqn, nsid, uuid);
	/* RFC 9562 (which obsoletes RFC 4122) §5.8: version 8 is the custom, non-random kind. */
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x80);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);	/* the RFC 4122 variant */
}

static void derive_nguid(const char *nqn, uint32_t nsid, uint8_t nguid[16])
{
	hash128("nguid", nqn, nsid, nguid);
	/* All zeros would mean "no NGUID"; a 2^-128 chance, but cheap to rule out. */
	if (all_zero(nguid))
		nguid[15] = 1;
}

static void derive_serial(const char *nqn, char serial[NVT_SERIAL_MAX + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t h[16];

	hash128("serial", nqn, 0, h);
	for (int i = 0; i < NVT_SERIAL_MAX / 2; i++) {
		serial[2 * i] = hex[h[i] >> 4];
		serial[2 * i + 1] = hex[h[i] & 15];
	}
	serial[NVT_SERIAL_MAX] = '\0';
}

/* Value checks for string settings: NULL if fine, else why not. */

static const char *check_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned int n, cp;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0)
			n = 1, cp = *p & 0x1f;
		else if ((*p & 0xf0) == 0xe0)
			n = 2, cp = *p & 0x0f;
		else if ((*p & 0xf8) == 0xf0)
			n = 3, cp = *p & 0x07;
		else
			return "not valid UTF-8";
		p++;
		for (unsigned int i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return "not valid UTF-8";
			cp = cp << 6 | (*p & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return "not valid UTF-8";
	}
	return NULL;
}

/*
 * NVMe 2.0 §4.5 wants "nqn.yyyy-mm.<reverse domain>:<name>" or the uuid form,
 * in UTF-8. Only the "nqn." prefix is enforced: a stricter check would turn
 * away hosts whose NQNs merely look odd, and the target gains nothing by it.
 */
static const char *check_nqn(const char *s)
{
	if (strncmp(s, "nqn.", 4) || !s[4])
		return "not an NQN (must start with \"nqn.\")";
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return "an NQN may not contain spaces or control characters";
	return check_utf8(s);
}

static const char *check_subsys_nqn(const char *s)
{
	if (!strcmp(s, NVT_DISCOVERY_NQN))
		return "reserved for the discovery subsystem (see the discovery setting)";
	return check_nqn(s);
}

/* Identify Controller's SN and MN fields are space-padded printable ASCII. */
static const char *check_ascii(const char *s)
{
	if (!*s)
		return "may not be empty";
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return "must be printable ASCII";
	return NULL;
}

static const char *check_address(const char *s)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1)
		return NULL;
	return "not an IPv4 or IPv6 address";
}

static const char *check_socket_path(const char *s)
{
	if (*s && *s != '/')
		return "must be an absolute path";
	return NULL;
}

static const char *check_vhost_socket(const char *s)
{
	return *s == '/' ? NULL : "must be an absolute path";
}

/* Checked when the file is read, so --check-config finds a user that is not there. */
static const char *check_user(const char *s)
{
	return !*s || getpwnam(s) ? NULL : "no such user";
}

static const char *check_group(const char *s)
{
	return !*s || getgrnam(s) ? NULL : "no such group";
}

static const char *check_block_size(uint64_t v)
{
	return v == 512 || v == 4096 ? NULL : "must be 512 or 4096";
}

/* MDTS is a power of two in 4 KiB pages; see NVT_MAX_IO_SIZE_MAX for the top. */
static const char *check_max_io_size(uint64_t v)
{
	if (v < NVT_MAX_IO_SIZE_MIN || v > NVT_MAX_IO_SIZE_MAX)
		return "must be 4K..8M";
	return v & (v - 1) ? "must be a power of two" : NULL;
}

/*
 * The descriptor tables. Each section of the file is one table; parsing,
 * defaults, unknown-key detection and printing are all driven from it.
 */
enum ftype {
	FT_BOOL,	/* bool */
	FT_UINT,	/* unsigned integer of ->width bytes in [min, max] */
	FT_STR,		/* char[->width], NUL-terminated */
	FT_LEVEL,	/* int: enum nvt_log_level, by name */
	FT_SIZE,	/* uint64_t bytes: an integer or "64M"; ->def, ->check_num */
	FT_UUID,	/* uint8_t[16] from "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
	FT_NGUID,	/* uint8_t[16] from 32 hex digits */
	FT_LIST,	/* a list, handled by ->parse_list / ->print_list */
	FT_GROUP,	/* a nested group { ... } described by ->sub */
	FT_EXTRA,	/* no key: settings the table lacks go to ->parse_extra (a backend's own) */
};

struct field {
	const char *key;
	enum ftype type;
	bool required;
	int64_t min, max;			/* FT_UINT bounds */
	uint64_t def;				/* FT_BOOL, FT_UINT, FT_LEVEL default */
	const char *def_str;			/* FT_STR default */
	size_t offset, width;			/* where in the struct, how big */
	const char *const *choices;		/* FT_STR: the only values accepted */
	const char *(*choice)(unsigned int i);	/* FT_STR: the same from a registry; NULL past the last */
	bool omit_zero;				/* FT_SIZE: 0 (unset) is not printed */
	const char *(*check)(const char *s);	/* FT_STR: why @s is bad, or NULL */
	const char *(*check_num)(uint64_t v);	/* FT_UINT, FT_SIZE: why @v is bad, or NULL */
	void (*parse_list)(struct ctx *ctx, const config_setting_t *list,
			   void *obj, const char *path);
	void (*print_list)(FILE *out, const void *obj, int depth);
	const struct field *sub;		/* FT_GROUP: its fields */
	size_t nr_sub;
	/* FT_EXTRA: take setting @s the table does not name; false: it is unknown. */
	bool (*parse_extra)(struct ctx *ctx, const config_setting_t *s, void *obj,
			    const char *path);
	void (*print_extra)(FILE *out, const void *obj, int depth);
};

#define AT(type, member)	.offset = offsetof(type, member), \
				.width = sizeof(((type *)0)->member)
#define NR(table)		(sizeof(table) / sizeof((table)[0]))
#define BIT(i)			(1u << (i))

static const char *const transports[] = { "rdma", NULL };
static const char *const pi_guards[] = { "crc16", "crc64", NULL };
static const char *const pi_locations[] = { "last", "first", NULL };

static void parse_listeners(struct ctx *ctx, const config_setting_t *list, void *obj,
			    const char *path);
static void parse_subsystems(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path);
static void parse_hosts(struct ctx *ctx, const config_setting_t *list, void *obj,
			const char *path);
static void parse_namespaces(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path);
static void parse_vhosts(struct ctx *ctx, const config_setting_t *list, void *obj,
			 const char *path);
static void parse_vhost_luns(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path);
static void print_listeners(FILE *out, const void *obj, int depth);
static void parse_ana_groups(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path);
static void print_ana_groups(FILE *out, const void *obj, int depth);
static void print_vhosts(FILE *out, const void *obj, int depth);
static void print_vhost_luns(FILE *out, const void *obj, int depth);
static void print_subsystems(FILE *out, const void *obj, int depth);
static void print_hosts(FILE *out, const void *obj, int depth);
static void print_namespaces(FILE *out, const void *obj, int depth);
static bool parse_be_setting(struct ctx *ctx, const config_setting_t *s, void *obj,
			     const char *path);
static void print_be_settings(FILE *out, const void *obj, int depth);

/* The backends the registry knows, as FT_STR choices. */
static const char *backend_choice(unsigned int i)
{
	const struct nvt_backend_ops *be = nvt_backend_get(i);

	return be ? be->name : NULL;
}

enum { TOP_LOG_LEVEL, TOP_DISCOVERY, TOP_THREADS, TOP_CONTROL, TOP_MAX_PER_HOST,
       TOP_LISTENERS, TOP_ANA_GROUPS, TOP_SUBSYSTEMS, TOP_VHOST };

static const struct field top_fields[] = {
	[TOP_LOG_LEVEL] = { "log_level", FT_LEVEL, .def = NVT_LOG_INFO,
			    AT(struct nvt_config, log_level) },
	[TOP_DISCOVERY] = { "discovery", FT_BOOL, .def = true,
			    AT(struct nvt_config, discovery) },
	/* 0: one I/O poll group per online CPU, decided at start-up. */
	[TOP_THREADS] = { "threads", FT_UINT, .min = 0, .max = 256, .def = 0,
			  AT(struct nvt_config, threads) },
	/* nvtctl's way in: scrub, fault injection, status. Empty: no socket. */
	[TOP_CONTROL] = { "control_socket", FT_STR, .def_str = "", .check = check_socket_path,
			  AT(struct nvt_config, control_socket) },
	/* One host NQN cannot take every controller slot of the target. */
	[TOP_MAX_PER_HOST] = { "max_controllers_per_host", FT_UINT, .min = 1, .max = NVT_CNTLID_COUNT,
			       .def = NVT_DEFAULT_CTRLS_PER_HOST,
			       AT(struct nvt_config, max_controllers_per_host) },
	[TOP_LISTENERS] = { "listeners", FT_LIST, .parse_list = parse_listeners,
			    .print_list = print_listeners },
	/* ANA group states at start-up; groups not listed are optimized. */
	[TOP_ANA_GROUPS] = { "ana_groups", FT_LIST, .parse_list = parse_ana_groups,
			     .print_list = print_ana_groups },
	[TOP_SUBSYSTEMS] = { "subsystems", FT_LIST, .parse_list = parse_subsystems,
			     .print_list = print_subsystems },
	/* vhost-user-scsi controllers for KVM guests; after subsystems, whose namespaces they name. */
	[TOP_VHOST] = { "vhost", FT_LIST, .parse_list = parse_vhosts, .print_list = print_vhosts },
};

enum { LIS_TRANSPORT, LIS_ADDRESS, LIS_PORT, LIS_MAX_IO_SIZE, LIS_BATCH_POSTS, LIS_ZERO_COPY,
       LIS_ANA_GROUP };

static const struct field listener_fields[] = {
	[LIS_TRANSPORT] = { "transport", FT_STR, .required = true, .choices = transports,
			    AT(struct nvt_listener_cfg, transport) },
	[LIS_ADDRESS] = { "address", FT_STR, .def_str = "0.0.0.0", .check = check_address,
			  AT(struct nvt_listener_cfg, address) },
	[LIS_PORT] = { "port", FT_UINT, .min = 1, .max = 65535, .def = NVT_DEFAULT_PORT,
		       AT(struct nvt_listener_cfg, port) },
	/* What Identify reports as MDTS for controllers reached through this listener. */
	[LIS_MAX_IO_SIZE] = { "max_io_size", FT_SIZE, .def = NVT_MAX_IO_SIZE_DEFAULT,
			      .check_num = check_max_io_size,
			      AT(struct nvt_listener_cfg, max_io_size) },
	/*
	 * RDMA: the work requests a queue produces in one loop iteration leave
	 * in one post (one system call on soft-RoCE); false posts each at once,
	 * for loads where latency counts more than CPU per I/O.
	 */
	[LIS_BATCH_POSTS] = { "batch_posts", FT_BOOL, .def = true,
			      AT(struct nvt_listener_cfg, batch_posts) },
	/*
	 * RDMA: writes to ram namespaces without metadata land in their memory
	 * by RDMA READ. The first write to each namespace on each device and
	 * poll group asks the main loop to register (pin) all of its memory
	 * there, which makes the namespace fully resident; writes copy until
	 * that is done. false: nothing is pinned.
	 */
	[LIS_ZERO_COPY] = { "zero_copy", FT_BOOL, .def = true,
			    AT(struct nvt_listener_cfg, zero_copy) },
	/* Every namespace seen through this listener is in this ANA group, in its state. */
	[LIS_ANA_GROUP] = { "ana_group", FT_UINT, .min = 1, .max = NVT_ANA_GRPMAX, .def = 1,
			    AT(struct nvt_listener_cfg, ana_group) },
};

enum { ANA_ID, ANA_STATE };

static const struct field ana_group_fields[] = {
	[ANA_ID] = { "id", FT_UINT, .required = true, .min = 1, .max = NVT_ANA_GRPMAX,
		     AT(struct nvt_ana_group_cfg, id) },
	[ANA_STATE] = { "state", FT_STR, .def_str = "optimized", .choice = nvt_ana_state_choice,
			AT(struct nvt_ana_group_cfg, state) },
};

enum { SS_NQN, SS_SERIAL, SS_MODEL, SS_ALLOW_ANY, SS_HOSTS, SS_REQUIRE_AUTH, SS_MAX_CTRLS,
       SS_MAX_IOQ, SS_NAMESPACES };

static const struct field subsys_fields[] = {
	[SS_NQN] = { "nqn", FT_STR, .required = true, .check = check_subsys_nqn,
		     AT(struct nvt_subsys_cfg, nqn) },
	/* The default is derived from the nqn once it is known. */
	[SS_SERIAL] = { "serial", FT_STR, .check = check_ascii,
			AT(struct nvt_subsys_cfg, serial) },
	[SS_MODEL] = { "model", FT_STR, .def_str = "nvt", .check = check_ascii,
		       AT(struct nvt_subsys_cfg, model) },
	[SS_ALLOW_ANY] = { "allow_any_host", FT_BOOL, .def = false,
			   AT(struct nvt_subsys_cfg, allow_any_host) },
	[SS_HOSTS] = { "hosts", FT_LIST, .parse_list = parse_hosts,
		       .print_list = print_hosts },
	/* Connect refuses hosts that have no dhchap_key here (DH-HMAC-CHAP, NVMe 2.0 §8.13). */
	[SS_REQUIRE_AUTH] = { "require_authentication", FT_BOOL, .def = false,
			      AT(struct nvt_subsys_cfg, require_authentication) },
	[SS_MAX_CTRLS] = { "max_controllers", FT_UINT, .min = 1, .max = NVT_CNTLID_COUNT,
			   .def = NVT_DEFAULT_CTRLS_PER_SUBSYS,
			   AT(struct nvt_subsys_cfg, max_controllers) },
	[SS_MAX_IOQ] = { "max_io_queues", FT_UINT, .min = 1, .max = NVT_MAX_IO_QUEUES_LIMIT,
			 .def = NVT_MAX_IO_QUEUES_LIMIT, AT(struct nvt_subsys_cfg, max_io_queues) },
	[SS_NAMESPACES] = { "namespaces", FT_LIST, .parse_list = parse_namespaces,
			    .print_list = print_namespaces },
};

enum { VH_SOCKET, VH_OWNER, VH_GROUP, VH_COPY_BETWEEN, VH_LUNS };

static const struct field vhost_fields[] = {
	[VH_SOCKET] = { "socket", FT_STR, .required = true, .check = check_vhost_socket,
			AT(struct nvt_vhost_cfg, socket) },
	/* Who may connect besides root: the user QEMU runs as (libvirt: libvirt-qemu). */
	[VH_OWNER] = { "owner", FT_STR, .def_str = "", .check = check_user,
		       AT(struct nvt_vhost_cfg, owner) },
	[VH_GROUP] = { "group", FT_STR, .def_str = "", .check = check_group,
		       AT(struct nvt_vhost_cfg, group) },
	/*
	 * A guest's EXTENDED COPY reaches only its own controller's LUNs unless
	 * the admin says these guests may trust each other: NAA designators are
	 * derived from public data, so they are no secret.
	 */
	[VH_COPY_BETWEEN] = { "copy_between_controllers", FT_BOOL, .def = false,
			      AT(struct nvt_vhost_cfg, copy_between_controllers) },
	[VH_LUNS] = { "luns", FT_LIST, .parse_list = parse_vhost_luns,
		      .print_list = print_vhost_luns },
};

enum { VL_LUN, VL_SUBSYS, VL_NSID };

static const struct field vhost_lun_fields[] = {
	[VL_LUN] = { "lun", FT_UINT, .required = true, .min = 0, .max = NVT_VHOST_MAX_LUN,
		     AT(struct nvt_vhost_lun_cfg, lun) },
	[VL_SUBSYS] = { "subsystem", FT_STR, .required = true, .check = check_subsys_nqn,
			AT(struct nvt_vhost_lun_cfg, subsystem) },
	[VL_NSID] = { "nsid", FT_UINT, .required = true, .min = 1, .max = NVT_MAX_NSID,
		      AT(struct nvt_vhost_lun_cfg, nsid) },
};

enum { PI_TYPE, PI_GUARD, PI_LOCATION, PI_MD_SIZE };

static const struct field pi_fields[] = {
	[PI_TYPE] = { "type", FT_UINT, .min = 0, .max = 3, .def = 0, AT(struct nvt_pi_cfg, type) },
	[PI_GUARD] = { "guard", FT_STR, .def_str = "crc16", .choices = pi_guards,
		       AT(struct nvt_pi_cfg, guard) },
	[PI_LOCATION] = { "location", FT_STR, .def_str = "last", .choices = pi_locations,
			  AT(struct nvt_pi_cfg, location) },
	/* 0 here means "the PI size"; settled once type and guard are known. */
	[PI_MD_SIZE] = { "metadata_size", FT_UINT, .min = 0, .max = NVT_MAX_METADATA,
			 .def = 0, AT(struct nvt_pi_cfg, metadata_size) },
};

enum { NS_NSID, NS_BACKEND, NS_BE, NS_SIZE, NS_BLOCK_SIZE, NS_UUID, NS_NGUID, NS_PI };

static const struct field ns_fields[] = {
	[NS_NSID] = { "nsid", FT_UINT, .required = true, .min = 1, .max = NVT_MAX_NSID,
		      AT(struct nvt_ns_cfg, nsid) },
	[NS_BACKEND] = { "backend", FT_STR, .required = true, .choice = backend_choice,
			 AT(struct nvt_ns_cfg, backend) },
	/* Whatever the backend declares (path, ...), from its settings table. */
	[NS_BE] = { NULL, FT_EXTRA, .parse_extra = parse_be_setting,
		    .print_extra = print_be_settings },
	/* Required unless the backend's store has a size of its own (checked per backend). */
	[NS_SIZE] = { "size", FT_SIZE, .omit_zero = true, AT(struct nvt_ns_cfg, size) },
	[NS_BLOCK_SIZE] = { "block_size", FT_UINT, .min = 512, .max = 4096, .def = 512,
			    .check_num = check_block_size,
			    AT(struct nvt_ns_cfg, block_size) },
	/* Absent ids stay zero here and are derived once the subsystem nqn is known. */
	[NS_UUID] = { "uuid", FT_UUID, AT(struct nvt_ns_cfg, uuid) },
	[NS_NGUID] = { "nguid", FT_NGUID, AT(struct nvt_ns_cfg, nguid) },
	[NS_PI] = { "pi", FT_GROUP, .sub = pi_fields, .nr_sub = NR(pi_fields),
		    AT(struct nvt_ns_cfg, pi) },
};

static void store_uint(void *p, size_t width, uint64_t v)
{
	switch (width) {
	case 1: *(uint8_t *)p = (uint8_t)v; break;
	case 2: *(uint16_t *)p = (uint16_t)v; break;
	case 4: *(uint32_t *)p = (uint32_t)v; break;
	default: *(uint64_t *)p = v; break;
	}
}

static uint64_t load_uint(const void *p, size_t width)
{
	switch (width) {
	case 1: return *(const uint8_t *)p;
	case 2: return *(const uint16_t *)p;
	case 4: return *(const uint32_t *)p;
	default: return *(const uint64_t *)p;
	}
}

static void set_defaults(const struct field *f, size_t nr, void *obj)
{
	for (; nr--; f++) {
		char *p = (char *)obj + f->offset;

		switch (f->type) {
		case FT_BOOL:
			*(bool *)p = f->def;
			break;
		case FT_UINT:
			store_uint(p, f->width, f->def);
			break;
		case FT_LEVEL:
			*(int *)p = (int)f->def;
			break;
		case FT_SIZE:
			*(uint64_t *)p = f->def;
			break;
		case FT_STR:
			if (f->def_str)
				snprintf(p, f->width, "%s", f->def_str);
			break;
		case FT_GROUP:
			set_defaults(f->sub, f->nr_sub, p);
			break;
		default:
			break;
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 32 hex digits, with dashes exactly where @dashes says (a uuid) or nowhere. */
static bool parse_id(const char *s, bool dashes, uint8_t out[16])
{
	for (int i = 0; i < 16; i++) {
		int hi, lo;

		if (dashes && (i == 4 || i == 6 || i == 8 || i == 10) && *s++ != '-')
			return false;
		hi = hexval(s[0]);
		lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return !*s;
}

/* "12345", "64M", "1g": binary units, exact, > 0; 0 and a reason on failure. */
static uint64_t parse_size(const char *s, const char **why)
{
	static const char units[] = "KMGT";
	uint64_t v = 0;
	unsigned int shift = 0;
	const char *p = s;

	*why = "expected bytes with an optional K, M, G or T suffix";
	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10) {
			*why = "too large";
			return 0;
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		const char *u = *p >= 'a' ? strchr(units, *p - 'a' + 'A') : strchr(units, *p);

		if (!u || p[1])
			return 0;
		shift = 10 * (unsigned int)(u - units + 1);
	}
	/* Beyond INT64_MAX nvt_config_print() could not write it back as an integer. */
	if (v > (uint64_t)INT64_MAX >> shift) {
		*why = "too large";
		return 0;
	}
	*why = "must be greater than 0";
	return v << shift;
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "nothing";
	}
}

/* Parse one setting into @obj; false if it was rejected (already reported). */
static uint32_t parse_group(struct ctx *ctx, const config_setting_t *group,
			    const struct field *fields, size_t nr, void *obj,
			    const char *path);

static bool parse_field(struct ctx *ctx, const struct field *f, const config_setting_t *s,
			void *obj, const char *path)
{
	char *p = (char *)obj + f->offset;
	int type = config_setting_type(s);
	bool is_int = type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
	char buf[80];
	const char *str = type == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
	const char *why;
	long long v;

	switch (f->type) {
	case FT_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			goto wrong_type;
		*(bool *)p = config_setting_get_bool(s);
		return true;

	case FT_UINT:
		if (!is_int)
			goto wrong_type;
		v = config_setting_get_int64(s);
		if (v < f->min || v > f->max) {
			report_at(ctx, s, path, "%lld is out of range %" PRId64 "..%" PRId64,
				  v, f->min, f->max);
			return false;
		}
		if (f->check_num && (why = f->check_num((uint64_t)v))) {
			report_at(ctx, s, path, "%s (got %lld)", why, v);
			return false;
		}
		store_uint(p, f->width, (uint64_t)v);
		return true;

	case FT_LEVEL:
		if (!str)
			goto wrong_type;
		v = nvt_log_level_parse(str);
		if (v < 0) {
			report_at(ctx, s, path,
				  "unknown log level \"%s\" (known: error, warn, info, debug)",
				  shown(buf, sizeof(buf), str));
			return false;
		}
		*(int *)p = (int)v;
		return true;

	case FT_STR:
		if (!str)
			goto wrong_type;
		if (strlen(str) >= f->width) {
			report_at(ctx, s, path, "too long: %zu bytes, at most %zu",
				  strlen(str), f->width - 1);
			return false;
		}
		if (f->choices || f->choice) {
			char known[64] = "";
			bool found = false;
			const char *c;

			for (unsigned int i = 0; (c = f->choices ? f->choices[i] : f->choice(i)); i++) {
				found |= !strcmp(c, str);
				snprintf(known + strlen(known), sizeof(known) - strlen(known),
					 "%s%s", i ? ", " : "", c);
			}
			if (!found) {
				report_at(ctx, s, path, "unknown %s \"%s\" (known: %s)", f->key,
					  shown(buf, sizeof(buf), str), known);
				return false;
			}
		}
		if (f->check && (why = f->check(str))) {
			report_at(ctx, s, path, "%s: \"%s\"", why, shown(buf, sizeof(buf), str));
			return false;
		}
		memcpy(p, str, strlen(str) + 1);
		return true;

	case FT_SIZE:
		if (is_int) {
			v = config_setting_get_int64(s);
			if (v <= 0) {
				report_at(ctx, s, path, "must be greater than 0 (got %lld)", v);
				return false;
			}
			*(uint64_t *)p = (uint64_t)v;
		} else if (!str) {
			report_at(ctx, s, path,
				  "expected an integer or a size string like \"64M\", not %s",
				  type_name(type));
			return false;
		} else {
			*(uint64_t *)p = parse_size(str, &why);
			if (!*(uint64_t *)p) {
				report_at(ctx, s, path, "%s: \"%s\"", why,
					  shown(buf, sizeof(buf), str));
				return false;
			}
		}
		if (f->check_num && (why = f->check_num(*(uint64_t *)p))) {
			report_at(ctx, s, path, "%s (got %" PRIu64 ")", why, *(uint64_t *)p);
			return false;
		}
		return true;

	case FT_UUID:
	case FT_NGUID:
		if (!str)
			goto wrong_type;
		if (!parse_id(str, f->type == FT_UUID, (uint8_t *)p)) {
			report_at(ctx, s, path, "expected %s: \"%s\"",
				  f->type == FT_UUID ? "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex)"
						     : "32 hex digits",
				  shown(buf, sizeof(buf), str));
			return false;
		}
		if (all_zero((const uint8_t *)p)) {
			/* To NVMe an all-zero NGUID or UUID means "this namespace has none". */
			report_at(ctx, s, path, "may not be all zeros");
			return false;
		}
		return true;

	case FT_LIST:
		/* An empty [] is an array to libconfig; accept it as an empty list. */
		if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
			report_at(ctx, s, path, "expected a list ( ... ), not %s", type_name(type));
			return false;
		}
		f->parse_list(ctx, s, obj, path);
		return true;

	case FT_GROUP:
		if (type != CONFIG_TYPE_GROUP) {
			report_at(ctx, s, path, "expected a group { ... }, not %s", type_name(type));
			return false;
		}
		parse_group(ctx, s, f->sub, f->nr_sub, p, path);
		return true;

	case FT_EXTRA:
		break;
	}
	return false;

wrong_type:
	report_at(ctx, s, path, "expected %s, not %s",
		  f->type == FT_BOOL ? "true or false" :
		  f->type == FT_UINT ? "an integer" : "a string",
		  type_name(type));
	return false;
}

/*
 * Fill @obj from @group as @fields describe it.
 * Return: a bit per field that was given and accepted.
 */
static uint32_t parse_group(struct ctx *ctx, const config_setting_t *group,
			    const struct field *fields, size_t nr, void *obj,
			    const char *path)
{
	uint32_t given = 0, ok = 0;
	char sub[PATH_LEN];

	set_defaults(fields, nr, obj);
	if (config_setting_type(group) != CONFIG_TYPE_GROUP) {
		report_at(ctx, group, path, "expected a group { ... }, not %s",
			  type_name(config_setting_type(group)));
		return 0;
	}
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned int)i);
		size_t k;

		join(sub, path, config_setting_name(s));
		for (k = 0; k < nr && (!fields[k].key ||
				       strcmp(fields[k].key, config_setting_name(s))); k++)
			;
		if (k == nr) {
			const struct field *x = fields;

			while (x < fields + nr && x->type != FT_EXTRA)
				x++;
			if (x == fields + nr || !x->parse_extra(ctx, s, obj, sub))
				report_at(ctx, s, sub, "unknown setting");
			continue;
		}
		/* libconfig refuses duplicate names, so each key is seen once. */
		given |= BIT(k);
		if (parse_field(ctx, &fields[k], s, obj, sub))
			ok |= BIT(k);
		else	/* a rejected value reads as unset, not as its default */
			memset((char *)obj + fields[k].offset, 0, fields[k].width);
	}
	for (size_t k = 0; k < nr; k++) {
		if (fields[k].required && !(given & BIT(k))) {
			join(sub, path, fields[k].key);
			report_at(ctx, group, sub, "missing (required)");
		}
	}
	return ok;
}

/* Duplicate detection by sorting, so a huge generated file stays O(n log n). */
struct dup {
	const void *key;
	size_t len;
	unsigned int order;		/* definition order: the first is not reported */
	unsigned int line;
	char path[PATH_LEN];
};

static int dup_cmp(const void *a, const void *b)
{
	const struct dup *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void report_dups(struct ctx *ctx, struct dup *d, size_t n, const char *what)
{
	size_t first = 0;

	qsort(d, n, sizeof(*d), dup_cmp);
	for (size_t i = 1; i < n; i++) {
		if (d[i].len != d[first].len || memcmp(d[i].key, d[first].key, d[i].len)) {
			first = i;
			continue;
		}
		report(ctx, d[i].line, d[i].path, "duplicate %s (first at line %u)",
		       what, d[first].line);
	}
}

static const config_setting_t *member(const config_setting_t *s, const char *key)
{
	return s && config_setting_is_group(s) ? config_setting_get_member(s, key) : NULL;
}

/* Where to point at a value: its own line if the file has it, else its group's. */
static unsigned int line_of(const config_setting_t *group, const char *key)
{
	const config_setting_t *s = member(group, key);

	if (!group)
		return 0;
	return config_setting_source_line(s ? s : group);
}

/* Where a top-level setting is, 0 if the file leaves it out. */
static int top_line(const config_setting_t *root, const char *key)
{
	const config_setting_t *s = member(root, key);

	return s ? config_setting_source_line(s) : 0;
}

/* Lines of the global settings, for a reload's refusals (the fields keep no line of their own). */
static void keep_top_lines(struct nvt_config *cfg, const config_setting_t *root)
{
	cfg->threads_line = top_line(root, "threads");
	cfg->control_socket_line = top_line(root, "control_socket");
	cfg->discovery_line = top_line(root, "discovery");
	cfg->listeners_line = top_line(root, "listeners");
	cfg->subsystems_line = top_line(root, "subsystems");
	cfg->vhost_line = top_line(root, "vhost");
}

/* The address family, and the one spelling of the address, so duplicates compare equal. */
struct listener_key {
	char transport[16];
	int family;
	unsigned char addr[16];
	uint16_t port;
};

static void parse_listeners(struct ctx *ctx, const config_setting_t *list, void *obj,
			    const char *path)
{
	struct nvt_config *cfg = obj;
	unsigned int n = (unsigned int)config_setting_length(list);
	struct listener_key *keys;
	struct dup *dups;
	size_t nr_dups = 0;

	if (!n)
		return;
	cfg->listeners = calloc(n, sizeof(*cfg->listeners));
	keys = calloc(n, sizeof(*keys));
	dups = calloc(n, sizeof(*dups));
	if (!cfg->listeners || !keys || !dups) {
		ctx->nomem = true;
		goto out_free;
	}
	cfg->nr_listeners = n;
	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		struct nvt_listener_cfg *l = &cfg->listeners[i];
		struct listener_key *k = &keys[i];
		char p[PATH_LEN];
		uint32_t ok;

		join_idx(p, path, i);
		ok = parse_group(ctx, e, listener_fields, NR(listener_fields), l, p);
		l->line = config_setting_source_line(e);
		if (inet_pton(AF_INET, l->address, k->addr) == 1)
			l->family = AF_INET;
		else if (inet_pton(AF_INET6, l->address, k->addr) == 1)
			l->family = AF_INET6;
		if (!(ok & BIT(LIS_TRANSPORT)) || !l->family)
			continue;
		inet_ntop(l->family, k->addr, l->address, sizeof(l->address));
		memcpy(k->transport, l->transport, sizeof(k->transport));
		k->family = l->family;
		k->port = l->port;
		dups[nr_dups] = (struct dup){ .key = k, .len = sizeof(*k), .order = i,
					      .line = (unsigned int)l->line };
		memcpy(dups[nr_dups].path, p, sizeof(p));
		nr_dups++;
	}
	report_dups(ctx, dups, nr_dups, "transport, address and port");
out_free:
	free(keys);
	free(dups);
}

/* A `hosts` entry given as a group: the NQN and the host's DH-HMAC-CHAP secrets. */
struct host_group {
	char nqn[NVT_NQN_MAX + 1];
	struct nvt_host_auth_cfg auth;
};

enum { HOST_NQN, HOST_KEY, HOST_CTRL_KEY };

static const struct field host_fields[] = {
	[HOST_NQN] = { "nqn", FT_STR, .required = true, .check = check_nqn,
		       AT(struct host_group, nqn) },
	/* Secrets are checked by parse_host_group, whose messages never quote them. */
	[HOST_KEY] = { "dhchap_key", FT_STR, .required = true, .def_str = "",
		       AT(struct host_group, auth.dhchap_key) },
	[HOST_CTRL_KEY] = { "dhchap_ctrl_key", FT_STR, .def_str = "",
			    AT(struct host_group, auth.dhchap_ctrl_key) },
};

/* Parse one group element of `hosts` into @nqn and ss->host_auth[@i]; false if rejected. */
static bool parse_host_group(struct ctx *ctx, const config_setting_t *e, struct nvt_subsys_cfg *ss,
			     unsigned int i, const char *path)
{
	struct host_group g;
	struct nvt_dhchap_key k;
	const char *why;
	char sub[PATH_LEN];
	uint32_t ok;
	bool good = true;

	memset(&g, 0, sizeof(g));
	ok = parse_group(ctx, e, host_fields, NR(host_fields), &g, path);
	if (!(ok & BIT(HOST_NQN)))
		good = false;
	for (unsigned int f = HOST_KEY; f <= HOST_CTRL_KEY; f++) {
		const char *v = f == HOST_KEY ? g.auth.dhchap_key : g.auth.dhchap_ctrl_key;

		if (!(ok & BIT(f)) || !v[0])
			continue;
		why = nvt_dhchap_parse_secret(v, &k);
		OPENSSL_cleanse(&k, sizeof(k));
		if (why) {
			join(sub, path, host_fields[f].key);
			report_at(ctx, member(e, host_fields[f].key), sub, "%s", why);
			good = false;
		}
	}
	if (good && !(ok & BIT(HOST_KEY))) {
		good = false;
	} else if (good && !g.auth.dhchap_key[0] && g.auth.dhchap_ctrl_key[0]) {
		join(sub, path, "dhchap_ctrl_key");
		report_at(ctx, e, sub, "needs a dhchap_key (the controller proves itself only to a host that proved itself)");
		good = false;
	}
	if (good) {
		memcpy(ss->hosts[i], g.nqn, sizeof(g.nqn));
		ss->host_auth[i] = g.auth;
		ss->host_auth[i].line = config_setting_source_line(e);
	}
	OPENSSL_cleanse(&g, sizeof(g));
	return good;
}

static void parse_hosts(struct ctx *ctx, const config_setting_t *list, void *obj,
			const char *path)
{
	/* Each element is parsed as if it were a setting of its own. */
	static const struct field host = { "hosts", FT_STR, .check = check_nqn,
					   .width = NVT_NQN_MAX + 1 };
	struct nvt_subsys_cfg *ss = obj;
	unsigned int n = (unsigned int)config_setting_length(list);
	struct dup *dups;
	size_t nr_dups = 0;

	if (!n)
		return;
	ss->hosts = calloc(n, sizeof(*ss->hosts));
	dups = calloc(n, sizeof(*dups));
	if (!ss->hosts || !dups) {
		ctx->nomem = true;
		goto out_free;
	}
	ss->nr_hosts = n;
	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		char p[PATH_LEN];

		join_idx(p, path, i);
		if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
			if (!ss->host_auth) {
				ss->host_auth = calloc(n, sizeof(*ss->host_auth));
				if (!ss->host_auth) {
					ctx->nomem = true;
					goto out_free;
				}
			}
			if (!parse_host_group(ctx, e, ss, i, p))
				continue;
		} else if (!parse_field(ctx, &host, e, ss->hosts[i], p)) {
			continue;
		}
		dups[nr_dups] = (struct dup){ .key = ss->hosts[i], .len = strlen(ss->hosts[i]),
					      .order = i, .line = config_setting_source_line(e) };
		memcpy(dups[nr_dups].path, p, sizeof(p));
		nr_dups++;
	}
	report_dups(ctx, dups, nr_dups, "host NQN");
out_free:
	free(dups);
}

/* PI settings that depend on each other: metadata holds the PI tuple. */
static void check_pi(struct ctx *ctx, const config_setting_t *ns_group, struct nvt_ns_cfg *ns,
		     const char *path)
{
	const config_setting_t *g = member(ns_group, "pi");
	unsigned int pi_size = strcmp(ns->pi.guard, "crc64") ? 8 : 16;
	char pi_path[PATH_LEN], sub[PATH_LEN];

	if (!ns->pi.type)
		return;
	if (!ns->pi.metadata_size) {
		ns->pi.metadata_size = (uint16_t)pi_size;
	} else if (ns->pi.metadata_size < pi_size) {
		join(pi_path, path, "pi");
		join(sub, pi_path, "metadata_size");
		report(ctx, g ? line_of(g, "metadata_size") : line_of(ns_group, "pi"), sub,
		       "%u bytes cannot hold the %u-byte %s PI", ns->pi.metadata_size, pi_size,
		       ns->pi.guard);
	}
}

/* Which format settings the file gave: a backend with a format of its own compares those only. */
static void note_given(const config_setting_t *ns_group, struct nvt_ns_cfg *ns)
{
	const config_setting_t *g = member(ns_group, "pi");
	const struct { const char *key; unsigned int bit; int *line; } pi_keys[] = {
		{ "type", NVT_NS_GIVEN_PI_TYPE, &ns->pi_type_line },
		{ "guard", NVT_NS_GIVEN_PI_GUARD, &ns->pi_guard_line },
		{ "location", NVT_NS_GIVEN_PI_LOC, &ns->pi_loc_line },
		{ "metadata_size", NVT_NS_GIVEN_PI_MD_SIZE, &ns->pi_md_size_line },
	};

	if (member(ns_group, "block_size")) {
		ns->given |= NVT_NS_GIVEN_BLOCK_SIZE;
		ns->block_size_line = (int)line_of(ns_group, "block_size");
	}
	if (!g)
		return;
	ns->pi_line = (int)config_setting_source_line(g);
	for (size_t i = 0; i < NR(pi_keys); i++)
		if (member(g, pi_keys[i].key)) {
			ns->given |= pi_keys[i].bit;
			*pi_keys[i].line = (int)line_of(g, pi_keys[i].key);
		}
}

/* The backends that declare setting @name, as "ram, file"; "" if none does. */
static void be_owners(const char *name, char *buf, size_t size)
{
	const struct nvt_backend_ops *be;

	buf[0] = '\0';
	for (unsigned int i = 0; (be = nvt_backend_get(i)); i++)
		for (const struct nvt_be_setting *d = be->settings; d && d->name; d++)
			if (!strcmp(d->name, name))
				snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
					 *buf ? ", " : "", be->name);
}

/*
 * A namespace setting ns_fields does not name: one of its backend's own
 * (struct nvt_be_setting), stored in ns->settings at the table's index.
 * Return: false if no backend knows it (the caller says "unknown setting").
 */
static bool parse_be_setting(struct ctx *ctx, const config_setting_t *s, void *obj,
			     const char *path)
{
	struct nvt_ns_cfg *ns = obj;
	const char *name = config_setting_name(s);
	/* The file may name the backend after its settings: look it up directly. */
	const config_setting_t *bs = member(config_setting_parent(s), "backend");
	const char *bname = bs ? config_setting_get_string(bs) : NULL;
	const struct nvt_backend_ops *be = bname ? nvt_backend_find(bname) : NULL;
	const struct nvt_be_setting *d = NULL;
	int type = config_setting_type(s);
	struct nvt_ns_setting *v;
	char owners[64], buf[80];
	const char *str;
	unsigned int k = 0;

	for (d = be ? be->settings : NULL; d && d->name && strcmp(d->name, name); d++, k++)
		;
	if (!d || !d->name || k >= NVT_NS_SETTINGS_MAX) {
		be_owners(name, owners, sizeof(owners));
		if (!*owners)
			return false;
		/* Without a known backend its settings cannot be judged (it is reported itself). */
		if (be)
			report_at(ctx, s, path, "not a setting of backend \"%s\" (it belongs to: %s)",
				  be->name, owners);
		return true;
	}
	v = &ns->settings[k];
	switch (d->type) {
	case NVT_BE_SET_PATH:
		if (type != CONFIG_TYPE_STRING) {
			report_at(ctx, s, path, "expected a string, not %s", type_name(type));
			return true;
		}
		str = config_setting_get_string(s);
		if (!*str) {
			report_at(ctx, s, path, "may not be empty");
			return true;
		}
		if (strlen(str) >= PATH_MAX) {
			report_at(ctx, s, path, "too long: %zu bytes, at most %d: \"%s\"",
				  strlen(str), PATH_MAX - 1, shown(buf, sizeof(buf), str));
			return true;
		}
		v->str = strdup(str);
		if (!v->str) {
			ctx->nomem = true;
			return true;
		}
		break;
	case NVT_BE_SET_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			report_at(ctx, s, path, "expected true or false, not %s", type_name(type));
			return true;
		}
		v->b = config_setting_get_bool(s);
		break;
	}
	v->set = true;
	v->line = config_setting_source_line(s);
	return true;
}

/*
 * After the group: name every setting slot of the backend, and require what
 * it requires. size is required unless the store has a size of its own.
 */
static void check_be_settings(struct ctx *ctx, const config_setting_t *ns_group,
			      struct nvt_ns_cfg *ns, const char *path)
{
	const struct nvt_backend_ops *be = ns->backend[0] ? nvt_backend_find(ns->backend) : NULL;
	char sub[PATH_LEN];
	unsigned int n = 0;

	ns->file = ctx->cfg_path;
	for (const struct nvt_be_setting *d = be ? be->settings : NULL;
	     d && d->name && n < NVT_NS_SETTINGS_MAX; d++, n++) {
		ns->settings[n].name = d->name;
		if (d->required && !ns->settings[n].set && !member(ns_group, d->name)) {
			join(sub, path, d->name);
			report_at(ctx, ns_group, sub, "missing (required for backend \"%s\")",
				  be->name);
		} else if (d->with_metadata && (ns->pi.type || ns->pi.metadata_size) &&
			   !ns->settings[n].set && !member(ns_group, d->name)) {
			join(sub, path, d->name);
			report_at(ctx, ns_group, sub,
				  "missing (required: the namespace's metadata (pi) is kept there)");
		}
	}
	ns->nr_settings = n;
	/* An unknown backend: as strict as the strictest. */
	if ((!be || !(be->flags & NVT_BE_OWN_SIZE)) && !member(ns_group, "size")) {
		join(sub, path, "size");
		report_at(ctx, ns_group, sub, "missing (required)");
	}
}

static void parse_namespaces(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path)
{
	struct nvt_subsys_cfg *ss = obj;
	unsigned int n = (unsigned int)config_setting_length(list);
	/* nsid -> line of its first use; nsids are small, so a table does. */
	unsigned int first[NVT_MAX_NSID + 1] = { 0 };

	if (!n)
		return;
	ss->namespaces = calloc(n, sizeof(*ss->namespaces));
	if (!ss->namespaces) {
		ctx->nomem = true;
		return;
	}
	ss->nr_namespaces = n;
	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		struct nvt_ns_cfg *ns = &ss->namespaces[i];
		char p[PATH_LEN], sub[PATH_LEN];

		join_idx(p, path, i);
		parse_group(ctx, e, ns_fields, NR(ns_fields), ns, p);
		ns->line = config_setting_source_line(e);
		check_be_settings(ctx, e, ns, p);
		if (ns->nsid && first[ns->nsid]) {
			join(sub, p, "nsid");
			report(ctx, line_of(e, "nsid"), sub, "duplicate nsid %u (first at line %u)",
			       ns->nsid, first[ns->nsid]);
			ns->nsid = 0;	/* or its derived ids would clash too */
		} else if (ns->nsid) {
			first[ns->nsid] = line_of(e, "nsid");
		}
		check_pi(ctx, e, ns, p);
		note_given(e, ns);
		/* A rejected size or block_size is 0 by now: nothing to compare. */
		if (ns->size && ns->block_size && ns->size % ns->block_size) {
			join(sub, p, "size");
			report(ctx, line_of(e, "size"), sub,
			       "%" PRIu64 " is not a multiple of block_size %u",
			       ns->size, ns->block_size);
		}
	}
}

static void parse_subsystems(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path)
{
	struct nvt_config *cfg = obj;
	unsigned int n = (unsigned int)config_setting_length(list);
	struct dup *dups;
	size_t nr_dups = 0;

	if (!n)
		return;
	cfg->subsystems = calloc(n, sizeof(*cfg->subsystems));
	dups = calloc(n, sizeof(*dups));
	if (!cfg->subsystems || !dups) {
		ctx->nomem = true;
		goto out_free;
	}
	cfg->nr_subsystems = n;
	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		struct nvt_subsys_cfg *ss = &cfg->subsystems[i];
		char p[PATH_LEN];
		uint32_t ok;

		join_idx(p, path, i);
		ok = parse_group(ctx, e, subsys_fields, NR(subsys_fields), ss, p);
		ss->line = config_setting_source_line(e);
		/* Without a good nqn there is nothing stable to derive ids from. */
		if (!(ok & BIT(SS_NQN)))
			continue;
		if (!(ok & BIT(SS_SERIAL)))
			derive_serial(ss->nqn, ss->serial);
		for (unsigned int j = 0; j < ss->nr_namespaces; j++) {
			struct nvt_ns_cfg *ns = &ss->namespaces[j];

			if (!ns->nsid)
				continue;
			if (all_zero(ns->uuid))
				derive_uuid(ss->nqn, ns->nsid, ns->uuid);
			if (all_zero(ns->nguid))
				derive_nguid(ss->nqn, ns->nsid, ns->nguid);
		}
		dups[nr_dups] = (struct dup){ .key = ss->nqn, .len = strlen(ss->nqn),
					      .order = i, .line = line_of(e, "nqn") };
		join(dups[nr_dups].path, p, "nqn");
		nr_dups++;
	}
	report_dups(ctx, dups, nr_dups, "subsystem NQN");
out_free:
	free(dups);
}

/* A list of groups whose @key must be unique: how to parse one element and find its key. */
struct keyed_list {
	const struct field *fields;
	size_t nr, size;		/* fields; bytes of one element */
	size_t line_off;		/* where the element keeps its line (an int) */
	unsigned int key_bit;		/* the key field's index in @fields */
	const char *key, *what;		/* its name; what a duplicate is called */
	const void *(*key_of)(const void *elem, size_t *len);
};

/* Parse @list as @k says into a new array (NULL if empty); duplicates of the key are reported. */
static void *parse_keyed_list(struct ctx *ctx, const config_setting_t *list, const char *path,
			      const struct keyed_list *k, unsigned int *count)
{
	unsigned int n = (unsigned int)config_setting_length(list);
	char *arr;
	struct dup *dups;
	size_t nr_dups = 0;

	*count = 0;
	if (!n)
		return NULL;
	arr = calloc(n, k->size);
	dups = calloc(n, sizeof(*dups));
	if (!arr || !dups) {
		ctx->nomem = true;
		free(dups);
		return arr;	/* freed by nvt_config_free() with *count 0 */
	}
	*count = n;
	for (unsigned int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		char *elem = arr + i * k->size, p[PATH_LEN];
		size_t len;
		const void *key;
		uint32_t ok;

		join_idx(p, path, i);
		ok = parse_group(ctx, e, k->fields, k->nr, elem, p);
		*(int *)(elem + k->line_off) = config_setting_source_line(e);
		if (!(ok & BIT(k->key_bit)))
			continue;
		key = k->key_of(elem, &len);
		dups[nr_dups] = (struct dup){ .key = key, .len = len, .order = i,
					      .line = line_of(e, k->key) };
		join(dups[nr_dups].path, p, k->key);
		nr_dups++;
	}
	report_dups(ctx, dups, nr_dups, k->what);
	free(dups);
	return arr;
}

static const void *vhost_lun_key(const void *elem, size_t *len)
{
	const struct nvt_vhost_lun_cfg *l = elem;

	*len = sizeof(l->lun);
	return &l->lun;
}

static const void *vhost_socket_key(const void *elem, size_t *len)
{
	const struct nvt_vhost_cfg *vh = elem;

	*len = strlen(vh->socket);
	return vh->socket;
}

static void parse_vhost_luns(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path)
{
	static const struct keyed_list k = {
		vhost_lun_fields, NR(vhost_lun_fields), sizeof(struct nvt_vhost_lun_cfg),
		offsetof(struct nvt_vhost_lun_cfg, line), VL_LUN, "lun", "lun", vhost_lun_key,
	};
	struct nvt_vhost_cfg *vh = obj;

	vh->luns = parse_keyed_list(ctx, list, path, &k, &vh->nr_luns);
}

static const void *ana_group_key(const void *elem, size_t *len)
{
	const struct nvt_ana_group_cfg *g = elem;

	*len = sizeof(g->id);
	return &g->id;
}

static void parse_ana_groups(struct ctx *ctx, const config_setting_t *list, void *obj,
			     const char *path)
{
	static const struct keyed_list k = {
		ana_group_fields, NR(ana_group_fields), sizeof(struct nvt_ana_group_cfg),
		offsetof(struct nvt_ana_group_cfg, line), ANA_ID, "id", "ANA group id",
		ana_group_key,
	};
	struct nvt_config *cfg = obj;

	cfg->ana_groups = parse_keyed_list(ctx, list, path, &k, &cfg->nr_ana_groups);
}

static void parse_vhosts(struct ctx *ctx, const config_setting_t *list, void *obj,
			 const char *path)
{
	static const struct keyed_list k = {
		vhost_fields, NR(vhost_fields), sizeof(struct nvt_vhost_cfg),
		offsetof(struct nvt_vhost_cfg, line), VH_SOCKET, "socket", "vhost socket",
		vhost_socket_key,
	};
	struct nvt_config *cfg = obj;

	cfg->vhosts = parse_keyed_list(ctx, list, path, &k, &cfg->nr_vhosts);
}

/*
 * Once the whole file is read (vhost may come before subsystems): every LUN
 * names a configured namespace, at most once per controller, and no vhost
 * socket is the control socket.
 */
static void check_vhost_refs(struct ctx *ctx, const struct nvt_config *cfg,
			     const config_setting_t *root)
{
	const config_setting_t *vhosts = member(root, "vhost");

	for (unsigned int i = 0; i < cfg->nr_vhosts && vhosts; i++) {
		const struct nvt_vhost_cfg *vh = &cfg->vhosts[i];
		const config_setting_t *ve = config_setting_get_elem(vhosts, i);
		const config_setting_t *luns = member(ve, "luns");
		char p[PATH_LEN], nqn[NVT_NQN_MAX + 16];

		if (vh->socket[0] && !strcmp(vh->socket, cfg->control_socket)) {
			snprintf(p, sizeof(p), "vhost[%u].socket", i);
			report(ctx, line_of(ve, "socket"), p, "is the control_socket too");
		}
		for (unsigned int j = 0; j < vh->nr_luns && luns; j++) {
			const struct nvt_vhost_lun_cfg *l = &vh->luns[j];
			const config_setting_t *le = config_setting_get_elem(luns, j);
			const struct nvt_subsys_cfg *ss = NULL;
			bool found = false;

			if (!l->subsystem[0] || !l->nsid)
				continue;	/* already reported */
			for (unsigned int k = 0; k < cfg->nr_subsystems && !ss; k++)
				if (!strcmp(cfg->subsystems[k].nqn, l->subsystem))
					ss = &cfg->subsystems[k];
			for (unsigned int k = 0; ss && k < ss->nr_namespaces; k++)
				found |= ss->namespaces[k].nsid == l->nsid;
			if (!ss) {
				snprintf(p, sizeof(p), "vhost[%u].luns[%u].subsystem", i, j);
				report(ctx, line_of(le, "subsystem"), p, "no such subsystem: \"%s\"",
				       shown(nqn, sizeof(nqn), l->subsystem));
				continue;
			}
			if (!found) {
				snprintf(p, sizeof(p), "vhost[%u].luns[%u].nsid", i, j);
				report(ctx, line_of(le, "nsid"), p, "subsystem \"%s\" has no namespace %u",
				       shown(nqn, sizeof(nqn), l->subsystem), l->nsid);
				continue;
			}
			for (unsigned int k = 0; k < j; k++) {
				if (vh->luns[k].nsid != l->nsid ||
				    strcmp(vh->luns[k].subsystem, l->subsystem))
					continue;
				snprintf(p, sizeof(p), "vhost[%u].luns[%u]", i, j);
				report(ctx, (unsigned int)l->line, p,
				       "namespace %u of \"%s\" is already lun %u of this controller",
				       l->nsid, shown(nqn, sizeof(nqn), l->subsystem), vh->luns[k].lun);
				break;
			}
		}
	}
}

/* UUID and NGUID name a namespace globally, so no two in the file may match. */
static void check_ids(struct ctx *ctx, const struct nvt_config *cfg,
		      const config_setting_t *root)
{
	const config_setting_t *subsystems = member(root, "subsystems");
	size_t total = 0;
	struct dup *dups;

	for (unsigned int i = 0; i < cfg->nr_subsystems; i++)
		total += cfg->subsystems[i].nr_namespaces;
	if (!total || !subsystems)
		return;
	dups = calloc(total, sizeof(*dups));
	if (!dups) {
		ctx->nomem = true;
		return;
	}
	for (int id = 0; id < 2; id++) {
		const char *key = id ? "nguid" : "uuid";
		size_t n = 0;

		for (unsigned int i = 0; i < cfg->nr_subsystems; i++) {
			const struct nvt_subsys_cfg *ss = &cfg->subsystems[i];
			const config_setting_t *nss = member(config_setting_get_elem(subsystems, i),
							     "namespaces");

			for (unsigned int j = 0; j < ss->nr_namespaces && nss; j++) {
				const struct nvt_ns_cfg *ns = &ss->namespaces[j];
				const uint8_t *v = id ? ns->nguid : ns->uuid;
				const config_setting_t *e = config_setting_get_elem(nss, j);
				char p[PATH_LEN];

				if (all_zero(v))
					continue;
				snprintf(p, sizeof(p), "subsystems[%u].namespaces[%u]", i, j);
				dups[n] = (struct dup){ .key = v, .len = 16, .order = (unsigned int)n,
							.line = line_of(e, key) };
				join(dups[n].path, p, key);
				n++;
			}
		}
		report_dups(ctx, dups, n, key);
	}
	free(dups);
}

/* A digit, or a sign or a dot before one: where libconfig's number tokens start. */
static bool starts_number(const char *s, size_t n)
{
	size_t k = 0;

	if (k < n && (s[k] == '-' || s[k] == '+'))
		k++;
	if (k < n && s[k] == '.')
		k++;
	return k < n && s[k] >= '0' && s[k] <= '9';
}

/* Will libconfig 1.5 read the number token @s (@n bytes) as what it says? */
static bool number_fits(const char *s, size_t n)
{
	bool neg = s[0] == '-', is64 = false, hex;
	size_t sign = s[0] == '-' || s[0] == '+';
	unsigned long long v, max;
	char tok[32], *stop;

	hex = n > sign + 1 && s[sign] == '0' && (s[sign + 1] == 'x' || s[sign + 1] == 'X');
	/* Floats, and signed hex (a syntax error), are libconfig's to judge. */
	if (hex ? sign : memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n))
		return true;
	if (n > 1 && s[n - 1] == 'L') {
		is64 = true;
		n -= n > 2 && s[n - 2] == 'L' ? 2 : 1;
	}
	if (n >= sizeof(tok))
		return false;	/* 30 digits is more than 64 bits */
	memcpy(tok, s, n);
	tok[n] = '\0';
	errno = 0;
	v = strtoull(tok + sign + 2 * hex, &stop, hex ? 16 : 10);
	if (*stop || stop == tok + sign + 2 * hex)
		return true;	/* not a number after all: a syntax error */
	max = is64 ? INT64_MAX : INT32_MAX;
	return errno != ERANGE && v <= max + (neg && !hex);
}

/*
 * libconfig 1.5 reads a plain integer with atoi(): 4294967808 silently
 * becomes 512, and an "L" integer past 2^63 saturates. It also follows
 * @include to any file, and a NUL byte cuts a string short. So walk the
 * text the way its lexer does first, and refuse all of these with a line
 * number. Return: false if the text must not be handed to libconfig.
 */
static bool scan_text(struct ctx *ctx, const char *buf, size_t len)
{
	const char *nul = memchr(buf, '\0', len);
	unsigned int line = 1;
	bool parse = true;
	size_t i = 0;

	if (nul) {
		for (const char *p = buf; p < nul; p++)
			line += *p == '\n';
		report(ctx, line, "syntax", "NUL byte in the file");
		return false;
	}
#define AHEAD(k)	(i + (k) < len ? buf[i + (k)] : '\0')
	while (i < len) {
		char c = buf[i];

		if (c == '\n') {
			line++, i++;
		} else if (c == '#' || (c == '/' && AHEAD(1) == '/')) {
			while (i < len && buf[i] != '\n')
				i++;
		} else if (c == '/' && AHEAD(1) == '*') {
			for (i += 2; i < len && !(buf[i] == '*' && AHEAD(1) == '/'); i++)
				line += buf[i] == '\n';
			i += 2;
		} else if (c == '"') {
			for (i++; i < len && buf[i] != '"'; i++) {
				line += buf[i] == '\n';
				if (buf[i] != '\\')
					continue;
				if (AHEAD(1) == 'x' && AHEAD(2) == '0' && AHEAD(3) == '0') {
					report(ctx, line, "syntax", "\\x00 in a string");
					parse = false;
				}
				i++;
				line += i < len && buf[i] == '\n';
			}
			i++;
		} else if (c == '@') {
			report(ctx, line, "syntax",
			       "@include and other directives are not supported");
			parse = false;
			i++;
		} else if (isalpha((unsigned char)c) || c == '*') {
			/* A name: the digits in "ns1" are not a number. */
			while (i < len && (isalnum((unsigned char)buf[i]) || buf[i] == '-' ||
					   buf[i] == '_' || buf[i] == '*'))
				i++;
		} else if (starts_number(buf + i, len - i)) {
			size_t start = i++;

			/* Up to the first character no number token can hold. */
			while (i < len && (isalnum((unsigned char)buf[i]) || buf[i] == '.' ||
					   ((buf[i] == '+' || buf[i] == '-') &&
					    (buf[i - 1] == 'e' || buf[i - 1] == 'E'))))
				i++;
			if (!number_fits(buf + start, i - start)) {
				report(ctx, line, "syntax", "integer %.*s is out of range%s",
				       (int)(i - start > 40 ? 40 : i - start), buf + start,
				       buf[i - 1] == 'L' ? ""
							 : " (a 64-bit integer needs the L suffix)");
				parse = false;
			}
		} else {
			i++;
		}
	}
#undef AHEAD
	return parse;
}

/* The whole file in memory, NUL-terminated; -errno on failure. */
static int read_file(const char *path, char **bufp, size_t *lenp)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int err = 0;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st))
		err = errno;
	else if (S_ISDIR(st.st_mode))
		err = EISDIR;
	while (!err) {
		if (cap - len < 4096) {
			char *nbuf;

			cap = cap ? 2 * cap : 8192;
			if (cap > MAX_FILE_BYTES + 8192) {
				err = EFBIG;
				break;
			}
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				err = ENOMEM;
				break;
			}
			buf = nbuf;
		}
		len += fread(buf + len, 1, cap - len - 1, f);
		if (ferror(f))
			err = EIO;
		else if (feof(f))
			break;
	}
	fclose(f);
	if (err) {
		free(buf);
		return -err;
	}
	if (!buf && !(buf = calloc(1, 1)))
		return -ENOMEM;
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

int nvt_config_load(const char *path, struct nvt_config *cfg, FILE *errf)
{
	struct ctx ctx = { .file = path };
	config_t lc;
	char *text = NULL;
	size_t len = 0;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	ret = read_file(path, &text, &len);
	if (ret) {
		if (errf)
			fprintf(errf, "%s: cannot read: %s\n", path, strerror(-ret));
		return ret;
	}
	if (!scan_text(&ctx, text, len)) {
		free(text);
		flush_msgs(&ctx, errf);
		return -EINVAL;
	}
	config_init(&lc);
	if (!config_read_string(&lc, text)) {
		report(&ctx, (unsigned int)config_error_line(&lc), "syntax", "%s",
		       config_error_text(&lc));
		goto out_destroy;
	}
	cfg->path = strdup(path);
	if (!cfg->path)
		ctx.nomem = true;
	ctx.cfg_path = cfg->path;
	parse_group(&ctx, config_root_setting(&lc), top_fields, NR(top_fields), cfg, "");
	keep_top_lines(cfg, config_root_setting(&lc));
	check_ids(&ctx, cfg, config_root_setting(&lc));
	check_vhost_refs(&ctx, cfg, config_root_setting(&lc));

out_destroy:
	config_destroy(&lc);
	free(text);
	ret = ctx.nomem ? -ENOMEM : ctx.nr_errors ? -EINVAL : 0;
	if (ctx.nomem && !ctx.nr_errors && errf)
		fprintf(errf, "%s: out of memory\n", path);
	flush_msgs(&ctx, errf);
	if (ret)
		nvt_config_free(cfg);
	return ret;
}

void nvt_config_free(struct nvt_config *cfg)
{
	if (!cfg)
		return;
	for (unsigned int i = 0; i < cfg->nr_subsystems && cfg->subsystems; i++) {
		struct nvt_subsys_cfg *ss = &cfg->subsystems[i];

		for (unsigned int j = 0; j < ss->nr_namespaces && ss->namespaces; j++)
			for (unsigned int k = 0; k < NVT_NS_SETTINGS_MAX; k++)
				free(ss->namespaces[j].settings[k].str);
		free(ss->hosts);
		if (ss->host_auth)
			OPENSSL_cleanse(ss->host_auth, ss->nr_hosts * sizeof(*ss->host_auth));
		free(ss->host_auth);
		free(ss->namespaces);
	}
	free(cfg->subsystems);
	for (unsigned int i = 0; i < cfg->nr_vhosts && cfg->vhosts; i++)
		free(cfg->vhosts[i].luns);
	free(cfg->vhosts);
	free(cfg->listeners);
	free(cfg->ana_groups);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

/* Printing: the same tables, every value spelled out, in a form load reads back. */

static void print_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);	/* UTF-8 passes through as is */
	}
	fputc('"', out);
}

static void print_id(FILE *out, const uint8_t id[16], bool dashes)
{
	fputc('"', out);
	for (int i = 0; i < 16; i++) {
		if (dashes && (i == 4 || i == 6 || i == 8 || i == 10))
			fputc('-', out);
		fprintf(out, "%02x", id[i]);
	}
	fputc('"', out);
}

static void print_size(FILE *out, uint64_t v)
{
	static const char units[] = "KMGT";
	int u = -1;

	/* libconfig 1.5 reads plain integers as 32 bits; bigger ones need the L. */
	fprintf(out, "%" PRIu64 "%s;", v, v > INT32_MAX ? "L" : "");
	while (u < 3 && v >= 1024 && !(v % 1024))
		v /= 1024, u++;
	if (u >= 0)
		fprintf(out, "\t# %" PRIu64 "%c", v, units[u]);
}

static void tabs(FILE *out, int depth)
{
	while (depth-- > 0)
		fputc('\t', out);
}

static void print_group(FILE *out, const struct field *fields, size_t nr, const void *obj,
			int depth)
{
	for (const struct field *f = fields; f < fields + nr; f++) {
		const char *p = (const char *)obj + f->offset;

		if (f->type == FT_EXTRA) {
			f->print_extra(out, obj, depth);
			continue;
		}
		if (f->omit_zero && !*(const uint64_t *)p)
			continue;
		tabs(out, depth);
		fprintf(out, "%s = ", f->key);
		switch (f->type) {
		case FT_BOOL:
			fputs(*(const bool *)p ? "true;" : "false;", out);
			break;
		case FT_UINT:
			fprintf(out, "%" PRIu64 ";", load_uint(p, f->width));
			break;
		case FT_LEVEL:
			fprintf(out, "\"%s\";", nvt_log_level_name(*(const int *)p));
			break;
		case FT_STR:
			print_string(out, p);
			fputc(';', out);
			break;
		case FT_SIZE:
			print_size(out, *(const uint64_t *)p);
			break;
		case FT_UUID:
		case FT_NGUID:
			print_id(out, (const uint8_t *)p, f->type == FT_UUID);
			fputc(';', out);
			break;
		case FT_LIST:
			f->print_list(out, obj, depth);
			fputc(';', out);
			break;
		case FT_GROUP:
			fputs("{\n", out);
			print_group(out, f->sub, f->nr_sub, p, depth + 1);
			tabs(out, depth);
			fputs("};", out);
			break;
		case FT_EXTRA:
			break;
		}
		fputc('\n', out);
	}
}

/* "( { ... }, { ... } )" for a list of @n structs of @size bytes. */
static void print_list_of(FILE *out, const struct field *fields, size_t nr,
			  const void *base, size_t size, unsigned int n, int depth)
{
	if (!n) {
		fputs("( )", out);
		return;
	}
	fputs("(\n", out);
	for (unsigned int i = 0; i < n; i++) {
		tabs(out, depth + 1);
		fputs("{\n", out);
		print_group(out, fields, nr, (const char *)base + i * size, depth + 2);
		tabs(out, depth + 1);
		fputs(i + 1 < n ? "},\n" : "}\n", out);
	}
	tabs(out, depth);
	fputc(')', out);
}

static void print_listeners(FILE *out, const void *obj, int depth)
{
	const struct nvt_config *cfg = obj;

	print_list_of(out, listener_fields, NR(listener_fields), cfg->listeners,
		      sizeof(*cfg->listeners), cfg->nr_listeners, depth);
}

static void print_ana_groups(FILE *out, const void *obj, int depth)
{
	const struct nvt_config *cfg = obj;

	print_list_of(out, ana_group_fields, NR(ana_group_fields), cfg->ana_groups,
		      sizeof(*cfg->ana_groups), cfg->nr_ana_groups, depth);
}

static void print_subsystems(FILE *out, const void *obj, int depth)
{
	const struct nvt_config *cfg = obj;

	print_list_of(out, subsys_fields, NR(subsys_fields), cfg->subsystems,
		      sizeof(*cfg->subsystems), cfg->nr_subsystems, depth);
}

static void print_vhosts(FILE *out, const void *obj, int depth)
{
	const struct nvt_config *cfg = obj;

	print_list_of(out, vhost_fields, NR(vhost_fields), cfg->vhosts, sizeof(*cfg->vhosts),
		      cfg->nr_vhosts, depth);
}

static void print_vhost_luns(FILE *out, const void *obj, int depth)
{
	const struct nvt_vhost_cfg *vh = obj;

	print_list_of(out, vhost_lun_fields, NR(vhost_lun_fields), vh->luns, sizeof(*vh->luns),
		      vh->nr_luns, depth);
}

/*
 * @ns's fields as printed: all of them, except that a backend with a format
 * of its own (NVT_BE_OWN_FORMAT) gets only the block_size and pi.* the file
 * gave, so that the printed file loads to the same namespace on the same device.
 */
static size_t ns_print_fields(const struct nvt_ns_cfg *ns, struct field *out,
			      struct field *pi_out)
{
	static const unsigned int pi_bit[] = {
		[PI_TYPE] = NVT_NS_GIVEN_PI_TYPE, [PI_GUARD] = NVT_NS_GIVEN_PI_GUARD,
		[PI_LOCATION] = NVT_NS_GIVEN_PI_LOC, [PI_MD_SIZE] = NVT_NS_GIVEN_PI_MD_SIZE,
	};
	const struct nvt_backend_ops *be = nvt_backend_find(ns->backend);
	size_t n = 0, npi = 0;

	if (!be || !(be->flags & NVT_BE_OWN_FORMAT)) {
		memcpy(out, ns_fields, sizeof(ns_fields));
		return NR(ns_fields);
	}
	for (size_t i = 0; i < NR(pi_fields); i++)
		if (ns->given & pi_bit[i])
			pi_out[npi++] = pi_fields[i];
	for (size_t i = 0; i < NR(ns_fields); i++) {
		if (i == NS_BLOCK_SIZE && !(ns->given & NVT_NS_GIVEN_BLOCK_SIZE))
			continue;
		if (i == NS_PI && !npi)
			continue;
		out[n] = ns_fields[i];
		if (i == NS_PI) {
			out[n].sub = pi_out;
			out[n].nr_sub = npi;
		}
		n++;
	}
	return n;
}

static void print_namespaces(FILE *out, const void *obj, int depth)
{
	const struct nvt_subsys_cfg *ss = obj;
	struct field fields[NR(ns_fields)], pi[NR(pi_fields)];

	if (!ss->nr_namespaces) {
		fputs("( )", out);
		return;
	}
	fputs("(\n", out);
	for (unsigned int i = 0; i < ss->nr_namespaces; i++) {
		size_t n = ns_print_fields(&ss->namespaces[i], fields, pi);

		tabs(out, depth + 1);
		fputs("{\n", out);
		print_group(out, fields, n, &ss->namespaces[i], depth + 2);
		tabs(out, depth + 1);
		fputs(i + 1 < ss->nr_namespaces ? "},\n" : "}\n", out);
	}
	tabs(out, depth);
	fputc(')', out);
}

/* A namespace's backend settings, those the file gave, in the backend's order. */
static void print_be_settings(FILE *out, const void *obj, int depth)
{
	const struct nvt_ns_cfg *ns = obj;

	for (unsigned int i = 0; i < ns->nr_settings && i < NVT_NS_SETTINGS_MAX; i++) {
		const struct nvt_ns_setting *v = &ns->settings[i];

		if (!v->set || !v->name)
			continue;
		tabs(out, depth);
		fprintf(out, "%s = ", v->name);
		if (v->str)
			print_string(out, v->str);
		else
			fputs(v->b ? "true" : "false", out);
		fputs(";\n", out);
	}
}

static void print_hosts(FILE *out, const void *obj, int depth)
{
	const struct nvt_subsys_cfg *ss = obj;

	if (!ss->nr_hosts) {
		fputs("[ ]", out);
		return;
	}
	fputs("[\n", out);
	for (unsigned int i = 0; i < ss->nr_hosts; i++) {
		const struct nvt_host_auth_cfg *a = ss->host_auth ? &ss->host_auth[i] : NULL;

		tabs(out, depth + 1);
		print_string(out, ss->hosts[i]);
		fputs(i + 1 < ss->nr_hosts ? "," : "", out);
		/* Secrets are never shown: the output stays a valid file, the keys left out. */
		if (a && a->dhchap_key[0])
			fprintf(out, " # dhchap_key%s given, not shown",
				a->dhchap_ctrl_key[0] ? " and dhchap_ctrl_key" : "");
		fputc('\n', out);
	}
	tabs(out, depth);
	fputc(']', out);
}

void nvt_config_print(const struct nvt_config *cfg, FILE *out)
{
	char buf[PATH_LEN];

	/* A newline in the path must not end the comment. */
	fprintf(out, "# nvt configuration from %s, every default spelled out\n",
		shown(buf, sizeof(buf), cfg->path ? cfg->path : "(memory)"));
	print_group(out, top_fields, NR(top_fields), cfg, 0);
}
