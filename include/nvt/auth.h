/* SPDX-License-Identifier: BSD-3-Clause */
/* DH-HMAC-CHAP in-band authentication (NVMe 2.0 §8.13): secrets, the computations, and the per-queue exchange. */
#ifndef NVT_AUTH_H
#define NVT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvt/config.h"

struct nvt_sq;
struct nvt_subsys;
struct nvt_subsys_cfg;

/* Message and identifier values of NVMe 2.0 §8.13.5 (Linux's and libnvme's names). */
#define NVT_AUTH_SECP			0xe9	/* NVMe in-band authentication protocol */
#define NVT_AUTH_SPSP			0x01	/* SPSP0 and SPSP1 */
#define NVT_AUTH_COMMON_MSG		0x00	/* AUTH_Negotiate, _Failure1/2 */
#define NVT_AUTH_DHCHAP_MSG		0x01	/* the DH-HMAC-CHAP messages */
#define NVT_AUTH_MSG_NEGOTIATE		0x00
#define NVT_AUTH_MSG_CHALLENGE		0x01
#define NVT_AUTH_MSG_REPLY		0x02
#define NVT_AUTH_MSG_SUCCESS1		0x03
#define NVT_AUTH_MSG_SUCCESS2		0x04
#define NVT_AUTH_MSG_FAILURE2		0xf0
#define NVT_AUTH_MSG_FAILURE1		0xf1
#define NVT_AUTH_ID_DHCHAP		0x01	/* protocol descriptor AUTHID */

#define NVT_AUTH_HASH_SHA256		0x01
#define NVT_AUTH_HASH_SHA384		0x02
#define NVT_AUTH_HASH_SHA512		0x03
#define NVT_AUTH_DHGROUP_NULL		0x00
#define NVT_AUTH_DHGROUP_2048		0x01
#define NVT_AUTH_DHGROUP_8192		0x05

/* _Failure1 reason code explanations (REXPL). */
#define NVT_AUTH_FAIL_REASON		0x01	/* RCODE: authentication failure */
#define NVT_AUTH_FAIL_FAILED		0x01	/* the response did not match */
#define NVT_AUTH_FAIL_NOT_USABLE	0x02	/* no usable protocol */
#define NVT_AUTH_FAIL_CONCAT_MISMATCH	0x03	/* secure channel concatenation asked for */
#define NVT_AUTH_FAIL_HASH_UNUSABLE	0x04
#define NVT_AUTH_FAIL_DHGROUP_UNUSABLE	0x05
#define NVT_AUTH_FAIL_INCORRECT_PAYLOAD	0x06
#define NVT_AUTH_FAIL_INCORRECT_MESSAGE	0x07

#define NVT_CONNECT_AUTHREQ_ATR		(1u << 17)	/* Connect DW0: authentication transaction required */
#define NVT_AUTH_HASH_MAX		64	/* SHA-512 */
#define NVT_AUTH_DH_MAX			1024	/* ffdhe8192 public value, bytes */
#define NVT_AUTH_MSG_MAX		(16 + 2 * NVT_AUTH_HASH_MAX + NVT_AUTH_DH_MAX)

/** struct nvt_dhchap_key - a secret "DHHC-1:hh:base64(key || crc32):" decoded. */
struct nvt_dhchap_key {
	uint8_t key[64];
	size_t len;			/* 32, 48 or 64 */
	uint8_t hash;			/* 0: used as is; 1..3: transformed with SHA-256/384/512 */
};

/**
 * nvt_dhchap_parse_secret() - decode @s into @out.
 * Return: NULL, or why @s is not a secret (never quoting it).
 */
const char *nvt_dhchap_parse_secret(const char *s, struct nvt_dhchap_key *out);

/** nvt_dhchap_hash_len() - digest bytes of hash id @hash (1..3), 0 if unknown. */
size_t nvt_dhchap_hash_len(uint8_t hash);

/**
 * nvt_dhchap_transform() - the key transformation of NVMe 2.0 §8.13.5.7:
 * HMAC(hash of the secret, key, @nqn || "NVMe-over-Fabrics"), or the key
 * itself for hash 0. @out holds 64 bytes; *@out_len is set.
 * Return: 0 or -EINVAL.
 */
int nvt_dhchap_transform(const struct nvt_dhchap_key *k, const char *nqn, uint8_t *out,
			 size_t *out_len);

/**
 * nvt_dhchap_response() - the DH-HMAC-CHAP response HMAC(@hash, @key,
 * @chal || LE32(@seq) || LE16(@tid) || @sc_c || @role || @nqn1 || 00h || @nqn2)
 * with @role "HostHost" (host's) or "Controller" (controller's).
 * Return: 0 or -EINVAL.
 */
int nvt_dhchap_response(uint8_t hash, const uint8_t *key, size_t key_len, const uint8_t *chal,
			uint32_t seq, uint16_t tid, uint8_t sc_c, const char *role,
			const char *nqn1, const char *nqn2, uint8_t *out);

/** nvt_dhchap_augment() - the augmented challenge HMAC(@hash, H(@skey), @chal). Return: 0 or -EINVAL. */
int nvt_dhchap_augment(uint8_t hash, const uint8_t *skey, size_t skey_len, const uint8_t *chal,
		       uint8_t *out);

/** nvt_dh_len() - public value and shared secret bytes of FFDHE group @dhgid (1..5), 0 if unknown. */
size_t nvt_dh_len(uint8_t dhgid);

struct nvt_dh;

/** nvt_dh_new() - a fresh key pair in FFDHE group @dhgid (RFC 7919), or NULL. */
struct nvt_dh *nvt_dh_new(uint8_t dhgid);

/** nvt_dh_public() - our public value, big-endian, padded to nvt_dh_len(). Return: 0 or -EINVAL. */
int nvt_dh_public(struct nvt_dh *dh, uint8_t *out, size_t len);

/**
 * nvt_dh_derive() - the shared secret with @peer (nvt_dh_len() bytes each),
 * padded to the group size as the spec's g^xy mod p. Return: 0 or -EINVAL
 * (the peer value is not in the group).
 */
int nvt_dh_derive(struct nvt_dh *dh, const uint8_t *peer, size_t peer_len, uint8_t *out,
		  size_t len);

void nvt_dh_free(struct nvt_dh *dh);

/** struct nvt_auth_host - one host's keys, as the subsystem was configured (fixed while it lives). */
struct nvt_auth_host {
	char nqn[NVT_NQN_MAX + 1];
	struct nvt_dhchap_key key;	/* the host's secret: it proves the host */
	struct nvt_dhchap_key ctrl_key;	/* the controller's secret; len 0: unidirectional only */
};

/** struct nvt_auth_subsys - a subsystem's keys and policy. */
struct nvt_auth_subsys {
	struct nvt_auth_host *hosts;
	unsigned int nr_hosts;
	bool require;			/* hosts without a key are refused */
};

/**
 * nvt_auth_subsys_create() - the keys of @cfg (already validated by the
 * loader), or NULL when it names none and does not require authentication.
 * Return: 0 or -ENOMEM / -EINVAL.
 */
int nvt_auth_subsys_create(const struct nvt_subsys_cfg *cfg, struct nvt_auth_subsys **out);
void nvt_auth_subsys_free(struct nvt_auth_subsys *as);

/** nvt_auth_find_host() - @hostnqn's keys in @as, or NULL. */
const struct nvt_auth_host *nvt_auth_find_host(const struct nvt_auth_subsys *as,
					       const char *hostnqn);

/**
 * nvt_auth_sq_start() - queue @sq must authenticate as @host before other
 * commands run (Connect sets ATR). Control of the queue's own thread.
 * Return: 0 or -ENOMEM.
 */
int nvt_auth_sq_start(struct nvt_sq *sq, const struct nvt_auth_host *host);

/** nvt_auth_sq_free() - the queue's exchange state goes (queue teardown). */
void nvt_auth_sq_free(struct nvt_sq *sq);

/**
 * nvt_auth_send() - an AUTH_Send payload of @len bytes from the host.
 * Protocol errors move the exchange to _Failure1 (the command succeeds, the
 * next Receive returns it); a command-level problem returns a status.
 */
uint16_t nvt_auth_send(struct nvt_sq *sq, const uint8_t *buf, size_t len);

/**
 * nvt_auth_recv() - the message the host asked for with AUTH_Receive, in
 * @buf (@len bytes, the allocation length); *@out_len bytes are set.
 * Return: an NVMe status.
 */
uint16_t nvt_auth_recv(struct nvt_sq *sq, uint8_t *buf, size_t len, size_t *out_len);

#endif /* NVT_AUTH_H */
