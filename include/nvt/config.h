/* SPDX-License-Identifier: BSD-3-Clause */
/* The plain configuration the daemon runs from; target/config.c is its only producer. */
#ifndef NVT_CONFIG_H
#define NVT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NVT_NQN_MAX		223	/* NVMe 2.0 §4.5: NQNs are at most 223 bytes */
#define NVT_SERIAL_MAX		20
#define NVT_MODEL_MAX		40
#define NVT_ADDR_MAX		63
#define NVT_DISCOVERY_NQN	"nqn.2014-08.org.nvmexpress.discovery"
#define NVT_DEFAULT_PORT	4420

struct nvt_listener_cfg {
	char transport[16];		/* "rdma" */
	char address[NVT_ADDR_MAX + 1];	/* IPv4 or IPv6 literal; "0.0.0.0"/"::" = all */
	int family;			/* AF_INET or AF_INET6, from address */
	uint16_t port;			/* default 4420 */
	uint64_t max_io_size;		/* largest data transfer (MDTS); 0 = the default */
	bool batch_posts;		/* RDMA: one doorbell per queue per loop iteration (default true) */
	bool zero_copy;			/* RDMA: writes to ram namespaces straight into their memory (default true) */
	uint32_t ana_group;		/* ANA group of every namespace seen through it (default 1) */
	int line;			/* where it was defined, for later messages */
};

/*
 * A listener's max_io_size: a power of two (MDTS is one, in 4 KiB pages).
 * 1 MiB by default, as the Linux target; at most 8 MiB because one keyed
 * SGL descriptor describes at most 16 MiB - 1 bytes (a 24-bit length).
 */
#define NVT_MAX_IO_SIZE_DEFAULT	(1u << 20)
#define NVT_MAX_IO_SIZE_MIN	4096u
#define NVT_MAX_IO_SIZE_MAX	(8u << 20)

/* Protection information format of a namespace (T10 DIF / NVMe PI). */
struct nvt_pi_cfg {
	uint8_t type;			/* 0 = none, 1, 2 or 3 */
	char guard[8];			/* "crc16" (8-byte PI) or "crc64" (16-byte PI) */
	char location[8];		/* "last" or "first" 8/16 bytes of the metadata */
	uint16_t metadata_size;		/* bytes per block; default the PI size (0 without PI) */
};

#define NVT_MAX_METADATA	64	/* per block; what QEMU's NVMe also offers at most */

/*
 * One setting a backend declares (struct nvt_be_setting in bio.h), as a
 * namespace's group gave it. The loader keeps one per declared setting, in
 * the backend's order, given or not.
 */
struct nvt_ns_setting {
	const char *name;		/* the backend table's string; NULL: slot unused */
	char *str;			/* NVT_BE_SET_PATH: the value (the loader's copy) */
	bool b;				/* NVT_BE_SET_BOOL: the value */
	bool set;			/* given in the file */
	int line;			/* where it was given (0 if not) */
};

#define NVT_NS_SETTINGS_MAX	8	/* settings one backend may declare */

/* nvt_ns_cfg.given: for a backend with a format of its own (NVT_BE_OWN_FORMAT) to compare. */
#define NVT_NS_GIVEN_BLOCK_SIZE	(1u << 0)
#define NVT_NS_GIVEN_PI_TYPE	(1u << 1)
#define NVT_NS_GIVEN_PI_GUARD	(1u << 2)
#define NVT_NS_GIVEN_PI_LOC	(1u << 3)
#define NVT_NS_GIVEN_PI_MD_SIZE	(1u << 4)

struct nvt_ns_cfg {
	uint32_t nsid;			/* 1..NVT_MAX_NSID, unique in its subsystem */
	char backend[16];		/* "ram", "file" */
	uint64_t size;			/* bytes, a multiple of block_size; 0: the store's own (file) */
	uint32_t block_size;		/* 512 or 4096 */
	uint8_t uuid[16];		/* configured, or derived stably from nqn + nsid */
	uint8_t nguid[16];		/* configured, or derived stably from nqn + nsid */
	struct nvt_pi_cfg pi;
	unsigned int given;		/* NVT_NS_GIVEN_*: format settings the file gave (the rest are defaults) */
	int block_size_line, pi_line;	/* where block_size and the pi group were given (0 if not) */
	/* Where each pi key was given (0 if not): a message names the key's own line. */
	int pi_type_line, pi_guard_line, pi_loc_line, pi_md_size_line;
	struct nvt_ns_setting settings[NVT_NS_SETTINGS_MAX];	/* the backend's own */
	unsigned int nr_settings;
	const char *file;		/* the config file (nvt_config.path), for messages; may be NULL */
	int line;
};

/**
 * nvt_ns_cfg_setting() - the backend setting @name of a namespace, if the
 * file gave it.
 * @cfg: the namespace.
 * @name: as the backend's settings table spells it.
 *
 * Return: the setting, or NULL if it was not given.
 */
static inline const struct nvt_ns_setting *nvt_ns_cfg_setting(const struct nvt_ns_cfg *cfg,
							       const char *name)
{
	for (unsigned int i = 0; i < cfg->nr_settings && i < NVT_NS_SETTINGS_MAX; i++) {
		const struct nvt_ns_setting *s = &cfg->settings[i];

		if (s->set && s->name && !strcmp(s->name, name))
			return s;
	}
	return NULL;
}

/** nvt_ns_cfg_path() - the value of PATH setting @name, or NULL if not given. */
static inline const char *nvt_ns_cfg_path(const struct nvt_ns_cfg *cfg, const char *name)
{
	const struct nvt_ns_setting *s = nvt_ns_cfg_setting(cfg, name);

	return s ? s->str : NULL;
}

/** nvt_ns_cfg_bool() - the value of BOOL setting @name, or @def if not given. */
static inline bool nvt_ns_cfg_bool(const struct nvt_ns_cfg *cfg, const char *name, bool def)
{
	const struct nvt_ns_setting *s = nvt_ns_cfg_setting(cfg, name);

	return s ? s->b : def;
}

#define NVT_CNTLID_COUNT		0xffef	/* controller ids 1..FFEFh (NVMe-oF: FFF0h.. reserved) */
#define NVT_DEFAULT_CTRLS_PER_SUBSYS	256
#define NVT_DEFAULT_CTRLS_PER_HOST	64
#define NVT_MAX_IO_QUEUES_LIMIT		128	/* I/O queues a controller may have at most */

#define NVT_DHCHAP_SECRET_MAX	112	/* "DHHC-1:03:" + base64 of 64 + 4 bytes + ":" */

/* A host's DH-HMAC-CHAP secrets (a `hosts` entry given as a group), as `nvme gen-dhchap-key` writes them. */
struct nvt_host_auth_cfg {
	char dhchap_key[NVT_DHCHAP_SECRET_MAX + 1];	/* the host's; "" = none */
	char dhchap_ctrl_key[NVT_DHCHAP_SECRET_MAX + 1]; /* the controller's (bidirectional); "" = none */
	int line;					/* where the group was given */
};

struct nvt_subsys_cfg {
	char nqn[NVT_NQN_MAX + 1];
	char serial[NVT_SERIAL_MAX + 1];	/* default: derived from the nqn */
	char model[NVT_MODEL_MAX + 1];		/* default: "nvt" */
	bool allow_any_host;			/* default false */
	char (*hosts)[NVT_NQN_MAX + 1];		/* host NQNs allowed to connect */
	unsigned int nr_hosts;
	struct nvt_host_auth_cfg *host_auth;	/* parallel to @hosts (same index); NULL: no host has keys */
	bool require_authentication;		/* hosts without a dhchap_key are refused; default false */
	uint32_t max_controllers;		/* live controllers at once; default 256 */
	uint32_t max_io_queues;			/* per controller; default 128 */
	struct nvt_ns_cfg *namespaces;
	unsigned int nr_namespaces;
	int line;
};

/* One LUN of a vhost-user-scsi controller: a namespace configured in a subsystem. */
struct nvt_vhost_lun_cfg {
	uint16_t lun;				/* 0..NVT_VHOST_MAX_LUN */
	char subsystem[NVT_NQN_MAX + 1];	/* NQN of the subsystem holding the namespace */
	uint32_t nsid;
	int line;
};

#define NVT_VHOST_MAX_LUN	16383	/* virtio-scsi flat addressing: 14 bits */
#define NVT_VHOST_SOCKET_MAX	107	/* sun_path less its NUL */

/* One vhost-user-scsi controller: a unix socket QEMU's vhost-user-scsi-pci attaches to. */
struct nvt_vhost_cfg {
	char socket[NVT_VHOST_SOCKET_MAX + 1];	/* created mode 0600 */
	char owner[64];				/* user the socket is chown()ed to; "" = nvtd's */
	char group[64];				/* group; "" = nvtd's */
	bool copy_between_controllers;		/* EXTENDED COPY may name other controllers' LUNs; default false */
	struct nvt_vhost_lun_cfg *luns;
	unsigned int nr_luns;
	int line;
};

/*
 * ANA groups (NVMe 2.0 §8.1.1): ids 1..NVT_ANA_GRPMAX. A listener's group
 * decides the ANA state its controllers report for every namespace.
 */
#define NVT_ANA_GRPMAX		32

/** nvt_ana_state_name() - the config and nvtctl name of NVME_ANA_STATE_* @state; NULL if none. */
const char *nvt_ana_state_name(unsigned int state);

/** nvt_ana_state_choice() - the @i-th state name (config choices); NULL past the last. */
const char *nvt_ana_state_choice(unsigned int i);

/** nvt_ana_state_parse() - the NVME_ANA_STATE_* named @name; 0 if it names none. */
uint8_t nvt_ana_state_parse(const char *name);

/* One `ana_groups` entry: a group's state at start-up (groups not listed are optimized). */
struct nvt_ana_group_cfg {
	uint32_t id;				/* 1..NVT_ANA_GRPMAX */
	char state[16];				/* nvt_ana_state_name() of an NVME_ANA_STATE_* */
	int line;
};

struct nvt_config {
	char *path;				/* the file it came from */
	int log_level;				/* enum nvt_log_level; default info */
	bool discovery;				/* serve the discovery subsystem; default true */
	uint32_t threads;			/* I/O poll groups; 0 = one per online CPU */
	char control_socket[108];		/* unix socket for nvtctl; "" = none */
	uint32_t max_controllers_per_host;	/* per host NQN over all subsystems; default 64 */
	struct nvt_listener_cfg *listeners;
	unsigned int nr_listeners;
	struct nvt_subsys_cfg *subsystems;
	unsigned int nr_subsystems;
	struct nvt_vhost_cfg *vhosts;
	unsigned int nr_vhosts;
	struct nvt_ana_group_cfg *ana_groups;
	unsigned int nr_ana_groups;
	/* Where each top-level setting is (0: left out), for a reload's refusals. */
	int threads_line, control_socket_line, discovery_line;
	int listeners_line, subsystems_line, vhost_line;
};

#define NVT_MAX_NSID		1024	/* per subsystem; keeps the nsid -> ns table flat */

/**
 * nvt_config_load() - parse and validate a configuration file.
 * @path: the file.
 * @cfg: filled on success; zeroed on failure.
 * @errf: every problem is printed here as "file:line: setting: message\n".
 *
 * Nothing is partially accepted: unknown settings, wrong types, out-of-range
 * values and duplicates are all errors, and every error found is printed.
 * Return: 0, or -EINVAL (bad content) / -errno (cannot read the file).
 */
int nvt_config_load(const char *path, struct nvt_config *cfg, FILE *errf);

/** nvt_config_free() - release what nvt_config_load() allocated; safe on a zeroed cfg. */
void nvt_config_free(struct nvt_config *cfg);

/**
 * nvt_config_print() - write @cfg back as a complete libconfig file, every
 * default and derived value spelled out (what `nvtd --check-config` shows).
 */
void nvt_config_print(const struct nvt_config *cfg, FILE *out);

#endif /* NVT_CONFIG_H */
