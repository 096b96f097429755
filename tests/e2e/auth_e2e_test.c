/* SPDX-License-Identifier: BSD-3-Clause */
/* DH-HMAC-CHAP over the loop transport: the test plays the host (OpenSSL HMACs, libnvme's key transformation) through success, bidirectional, re-authentication, I/O queues and every failure step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/linux.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nvt/auth.h"
#include "nvt/host.h"
#include "nvt/loop.h"
#include "nvt/target.h"
#include "../nvt_test_dhchap.h"
#include "nvt_test_loop.h"

#define A_NQN	"nqn.2026-12.io.nvt:auth"
#define HOST_A	"nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
#define HOST_B	"nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-0000-0000-000000000002"
#define HOST_N	"nqn.2014-08.org.nvmexpress:uuid:nnnnnnnn-0000-0000-0000-00000000000n"

/* Host A: a SHA-256-transformed 32-byte key and a controller key; host B: an untransformed 48-byte one. */
static uint8_t key_a[32], ctrl_key_a[32], key_b[48];

static struct nvt_target *auth_target(bool require)
{
	struct nvt_ns_cfg ns = { .nsid = 1, .backend = "ram", .size = 1 << 20, .block_size = 512 };
	char hosts[3][NVT_NQN_MAX + 1] = { HOST_A, HOST_B, HOST_N };
	struct nvt_host_auth_cfg auth[3];
	struct nvt_subsys_cfg ss = { .serial = "A", .model = "nvt auth", .hosts = hosts,
				     .nr_hosts = 3, .host_auth = auth,
				     .require_authentication = require, .namespaces = &ns,
				     .nr_namespaces = 1 };
	struct nvt_config cfg = { .subsystems = &ss, .nr_subsystems = 1 };
	struct nvt_target *tgt = NULL;

	memset(auth, 0, sizeof(auth));
	nvt_test_fill(key_a, sizeof(key_a), 1);
	nvt_test_fill(ctrl_key_a, sizeof(ctrl_key_a), 2);
	nvt_test_fill(key_b, sizeof(key_b), 3);
	nvt_test_make_secret(auth[0].dhchap_key, sizeof(auth[0].dhchap_key), 1, key_a, 32, 0);
	nvt_test_make_secret(auth[0].dhchap_ctrl_key, sizeof(auth[0].dhchap_ctrl_key), 1,
			     ctrl_key_a, 32, 0);
	nvt_test_make_secret(auth[1].dhchap_key, sizeof(auth[1].dhchap_key), 0, key_b, 48, 0);
	snprintf(ss.nqn, sizeof(ss.nqn), "%s", A_NQN);
	assert_int_equal(nvt_target_create(&cfg, &tgt), 0);
	return tgt;
}

/* The host's side of one queue. */
struct host {
	struct nvt_loop_queue *q;
	const char *nqn;
	uint16_t qid, cntlid, tid;
	uint8_t hash, dhgid;
	size_t hl;
	uint8_t c1[64], c2[64];
	uint32_t s1, s2;
	struct nvt_dh *dh;
	uint8_t skey[1024];
	size_t skey_len;
	uint8_t last_reply[1200];	/* for the replay test */
	size_t last_reply_len;
};

static int auth_cmd(struct nvt_loop_queue *q, bool send, void *buf, uint32_t len, uint8_t secp)
{
	struct nvt_sqe sqe = { 0 };

	sqe.fabrics.opcode = NVT_OPC_FABRICS;
	sqe.fabrics.fctype = send ? NVT_FCTYPE_AUTH_SEND : NVT_FCTYPE_AUTH_RECV;
	sqe.fabrics.spec[1] = NVT_AUTH_SPSP;
	sqe.fabrics.spec[2] = NVT_AUTH_SPSP;
	sqe.fabrics.spec[3] = secp;
	sqe.fabrics.spec[4] = (uint8_t)len;
	sqe.fabrics.spec[5] = (uint8_t)(len >> 8);
	return nvt_test_exec(q, &sqe, buf, len, NULL);
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static const EVP_MD *md_of(uint8_t hash)
{
	return hash == 1 ? EVP_sha256() : hash == 2 ? EVP_sha384() : EVP_sha512();
}

/* A secret's transformed key (libnvme's nvme_gen_dhchap_key; hash 0: the key itself). */
static size_t host_key(int hash, const uint8_t *key, size_t len, const char *nqn, uint8_t *out)
{
	uint8_t k[64];

	if (!hash) {
		memcpy(out, key, len);
		return len;
	}
	memcpy(k, key, len);
	assert_int_equal(nvme_gen_dhchap_key((char *)nqn, (enum nvme_hmac_alg)hash,
					     (unsigned int)len, k, out), 0);
	return len;
}

/* HMAC(key, chal' || seq || tid || 0 || role || nqn1 || 0 || nqn2) in one buffer; chal' augmented with DH. */
static void host_response(const struct host *h, const uint8_t *key, size_t key_len,
			  const uint8_t *chal, uint32_t seq, const char *role, const char *nqn1,
			  const char *nqn2, uint8_t *out)
{
	uint8_t in[700], aug[64], hk[64];
	unsigned int l = 0, hkl = 0;
	size_t n = 0;

	if (h->skey_len) {
		assert_int_equal(EVP_Digest(h->skey, h->skey_len, hk, &hkl, md_of(h->hash), NULL), 1);
		assert_non_null(HMAC(md_of(h->hash), hk, (int)hkl, chal, h->hl, aug, &l));
		chal = aug;
	}
	memcpy(in, chal, h->hl);
	n = h->hl;
	in[n++] = (uint8_t)seq;
	in[n++] = (uint8_t)(seq >> 8);
	in[n++] = (uint8_t)(seq >> 16);
	in[n++] = (uint8_t)(seq >> 24);
	put16(in + n, h->tid);
	n += 2;
	in[n++] = 0;
	memcpy(in + n, role, strlen(role));
	n += strlen(role);
	memcpy(in + n, nqn1, strlen(nqn1));
	n += strlen(nqn1);
	in[n++] = 0;
	memcpy(in + n, nqn2, strlen(nqn2));
	n += strlen(nqn2);
	assert_non_null(HMAC(md_of(h->hash), key, (int)key_len, in, n, out, &l));
	assert_int_equal(l, h->hl);
}

/* Connect @h->q as queue @qid; the CQE must ask for authentication (ATR). */
static void host_connect(struct nvt_target *tgt, struct host *h, const char *nqn, uint16_t qid,
			 uint16_t cntlid)
{
	struct nvt_cqe cqe;

	memset(h, 0, sizeof(*h));
	h->nqn = nqn;
	h->qid = qid;
	assert_int_equal(nvt_loop_queue_create(tgt, qid, 32, &h->q), 0);
	assert_int_equal(nvt_loop_connect_queue(h->q, qid, 31, A_NQN, nqn, cntlid, 0, &cqe), 0);
	assert_true(le32toh(cqe.result.u32) & NVT_CONNECT_AUTHREQ_ATR);
	h->cntlid = (uint16_t)le32toh(cqe.result.u32);
}

/* AUTH_Negotiate offering @hashes and @groups (NULL: SHA-256/384/512, null and all FFDHE). */
static int host_negotiate(struct host *h, uint16_t tid, const uint8_t *hashes, unsigned int nh,
			  const uint8_t *groups, unsigned int ng)
{
	static const uint8_t all_h[] = { 1, 2, 3 }, all_g[] = { 0, 1, 2, 3, 4, 5 };
	uint8_t m[8 + 64] = { 0 };

	if (!hashes) {
		hashes = all_h;
		nh = 3;
	}
	if (!groups) {
		groups = all_g;
		ng = 6;
	}
	h->tid = tid;
	m[0] = NVT_AUTH_COMMON_MSG;
	m[1] = NVT_AUTH_MSG_NEGOTIATE;
	put16(m + 4, tid);
	m[7] = 1;			/* NAPD */
	m[8] = NVT_AUTH_ID_DHCHAP;
	m[10] = (uint8_t)nh;
	m[11] = (uint8_t)ng;
	memcpy(m + 12, hashes, nh);
	memcpy(m + 12 + 30, groups, ng);
	return auth_cmd(h->q, true, m, sizeof(m), NVT_AUTH_SECP);
}

/* AUTH_Receive of the challenge; fills @h. Return: the message type received. */
static uint8_t host_challenge(struct host *h, uint8_t *m)
{
	size_t dhvlen;

	memset(m, 0xaa, 1200);
	assert_int_equal(auth_cmd(h->q, false, m, 1200, NVT_AUTH_SECP), 0);
	if (m[1] != NVT_AUTH_MSG_CHALLENGE)
		return m[1];
	assert_int_equal(m[0], NVT_AUTH_DHCHAP_MSG);
	assert_int_equal(rd16(m + 4), h->tid);
	h->hash = m[8];
	h->dhgid = m[9];
	h->hl = m[6];
	assert_int_equal(h->hl, nvt_dhchap_hash_len(h->hash));
	h->s1 = rd32(m + 12);
	memcpy(h->c1, m + 16, h->hl);
	dhvlen = rd16(m + 10);
	assert_int_equal(dhvlen, nvt_dh_len(h->dhgid));
	nvt_dh_free(h->dh);
	h->dh = NULL;
	h->skey_len = 0;
	if (dhvlen) {
		h->dh = nvt_dh_new(h->dhgid);
		assert_non_null(h->dh);
		assert_int_equal(nvt_dh_derive(h->dh, m + 16 + h->hl, dhvlen, h->skey, dhvlen), 0);
		h->skey_len = dhvlen;
	}
	return m[1];
}

/* The _Reply with the response from @key (@hash of the secret), challenging back if @bidir. */
static int host_reply(struct host *h, int khash, const uint8_t *key, size_t klen, bool bidir,
		      size_t truncate)
{
	uint8_t m[1200] = { 0 }, tk[64];
	size_t tkl = host_key(khash, key, klen, h->nqn, tk), dhvlen = h->skey_len;
	size_t len = 16 + 2 * h->hl + dhvlen;

	m[0] = NVT_AUTH_DHCHAP_MSG;
	m[1] = NVT_AUTH_MSG_REPLY;
	put16(m + 4, h->tid);
	m[6] = (uint8_t)h->hl;
	put16(m + 10, (uint16_t)dhvlen);
	host_response(h, tk, tkl, h->c1, h->s1, "HostHost", h->nqn, A_NQN, m + 16);
	if (bidir) {
		m[8] = 1;
		h->s2 = 0x5eed0001u + h->tid;
		m[12] = (uint8_t)h->s2;
		m[13] = (uint8_t)(h->s2 >> 8);
		m[14] = (uint8_t)(h->s2 >> 16);
		m[15] = (uint8_t)(h->s2 >> 24);
		nvt_test_fill(h->c2, h->hl, (uint8_t)(h->tid + 40));
		memcpy(m + 16 + h->hl, h->c2, h->hl);
	}
	if (dhvlen)
		assert_int_equal(nvt_dh_public(h->dh, m + 16 + 2 * h->hl, dhvlen), 0);
	memcpy(h->last_reply, m, len);
	h->last_reply_len = len;
	return auth_cmd(h->q, true, m, (uint32_t)(len - truncate), NVT_AUTH_SECP);
}

/* AUTH_Receive after the reply: _Success1 (checked, and _Success2 sent if @bidir) or _Failure1's REXPL. */
static int host_finish(struct host *h, bool bidir)
{
	uint8_t m[1200], tk[64], want[64];

	assert_int_equal(auth_cmd(h->q, false, m, sizeof(m), NVT_AUTH_SECP), 0);
	if (m[1] == NVT_AUTH_MSG_FAILURE1) {
		assert_int_equal(m[0], NVT_AUTH_COMMON_MSG);
		assert_int_equal(m[6], NVT_AUTH_FAIL_REASON);
		return -m[7];
	}
	assert_int_equal(m[1], NVT_AUTH_MSG_SUCCESS1);
	assert_int_equal(m[6], h->hl);
	assert_int_equal(m[8], bidir);
	if (bidir) {
		/* The controller's key is transformed with the subsystem NQN. */
		size_t tkl = host_key(1, ctrl_key_a, 32, A_NQN, tk);

		host_response(h, tk, tkl, h->c2, h->s2, "Controller", A_NQN, h->nqn, want);
		assert_memory_equal(m + 16, want, h->hl);
		memset(m, 0, 16);
		m[0] = NVT_AUTH_DHCHAP_MSG;
		m[1] = NVT_AUTH_MSG_SUCCESS2;
		put16(m + 4, h->tid);
		assert_int_equal(auth_cmd(h->q, true, m, 16, NVT_AUTH_SECP), 0);
	}
	return 0;
}

/* One whole exchange with host A's keys. Return: 0 or -REXPL. */
static int host_auth_a(struct host *h, uint16_t tid, bool bidir, const uint8_t *groups,
		       unsigned int ng)
{
	uint8_t m[1200];

	assert_int_equal(host_negotiate(h, tid, NULL, 0, groups, ng), 0);
	if (host_challenge(h, m) != NVT_AUTH_MSG_CHALLENGE)
		return -m[7];
	assert_int_equal(host_reply(h, 1, key_a, 32, bidir, 0), 0);
	return host_finish(h, bidir);
}

static int identify(struct nvt_loop_queue *q)
{
	struct nvt_sqe sqe = { 0 };
	uint8_t buf[4096];

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	return nvt_test_exec(q, &sqe, buf, sizeof(buf), NULL);
}

static int read1(struct nvt_loop_queue *q)
{
	struct nvt_sqe sqe = { 0 };
	uint8_t buf[512];

	nvt_host_sqe_init(&sqe, nvme_cmd_read, 1);
	return nvt_test_exec(q, &sqe, buf, sizeof(buf), NULL);
}

static void enable(struct nvt_loop_queue *q)
{
	uint64_t csts = 0;

	assert_int_equal(nvt_loop_prop_set(q, NVME_REG_CC, 1u | (6u << 16) | (4u << 20)),
			 0);
	for (int i = 0; i < 1000 && !(csts & NVT_CSTS_RDY); i++)
		assert_int_equal(nvt_loop_prop_get(q, NVME_REG_CSTS, false, &csts), 0);
	assert_true(csts & NVT_CSTS_RDY);
}

static void host_drop(struct host *h)
{
	nvt_dh_free(h->dh);
	h->dh = NULL;
	nvt_loop_queue_destroy(h->q);
}

#define ST_AUTH_REQUIRED	(NVT_ST_AUTH_REQUIRED & ~NVT_SC_DNR)

/* Unidirectional, null DH only: nothing but fabrics commands before, everything after. */
static void test_success_null_dh(void **state)
{
	static const uint8_t null_only[] = { 0 };
	struct nvt_target *tgt = auth_target(false);
	struct host h;

	(void)state;
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	enable(h.q);
	assert_int_equal(identify(h.q), ST_AUTH_REQUIRED);
	assert_int_equal(host_auth_a(&h, 1, false, null_only, 1), 0);
	assert_int_equal(h.dhgid, 0);
	assert_int_equal(h.hash, NVT_AUTH_HASH_SHA512);	/* the strongest offered */
	assert_int_equal(identify(h.q), 0);
	host_drop(&h);
	nvt_target_destroy(tgt);
}

/* Bidirectional over FFDHE, an I/O queue authenticating on its own, then re-authentication. */
static void test_success_bidir_io_reauth(void **state)
{
	static const uint8_t g3072[] = { 2 }, g8192[] = { 5 };
	struct nvt_target *tgt = auth_target(true);
	struct host a, io;

	(void)state;
	host_connect(tgt, &a, HOST_A, 0, 0xffff);
	assert_int_equal(host_auth_a(&a, 7, true, NULL, 0), 0);
	assert_int_equal(a.dhgid, 1);	/* all offered: the cheapest FFDHE group */
	enable(a.q);
	assert_int_equal(identify(a.q), 0);

	host_connect(tgt, &io, HOST_A, 1, a.cntlid);
	assert_int_equal(read1(io.q), ST_AUTH_REQUIRED);
	assert_int_equal(host_auth_a(&io, 8, true, g3072, 1), 0);
	assert_int_equal(io.dhgid, 2);
	assert_int_equal(read1(io.q), 0);

	/* Re-authentication on the host's request; the queue stays usable. */
	assert_int_equal(host_auth_a(&a, 9, false, g8192, 1), 0);
	assert_int_equal(a.dhgid, 5);
	assert_int_equal(identify(a.q), 0);
	host_drop(&io);
	host_drop(&a);
	nvt_target_destroy(tgt);
}

/* Host B (untransformed 48-byte key) while host A fails: other hosts are unaffected. */
static void test_wrong_key_other_host_fine(void **state)
{
	struct nvt_target *tgt = auth_target(false);
	struct host a, b;
	uint8_t m[1200], wrong[32];

	(void)state;
	host_connect(tgt, &a, HOST_A, 0, 0xffff);
	enable(a.q);
	assert_int_equal(host_negotiate(&a, 3, NULL, 0, NULL, 0), 0);
	assert_int_equal(host_challenge(&a, m), NVT_AUTH_MSG_CHALLENGE);
	memcpy(wrong, key_a, 32);
	wrong[5] ^= 1;
	assert_int_equal(host_reply(&a, 1, wrong, 32, false, 0), 0);
	assert_int_equal(host_finish(&a, false), -NVT_AUTH_FAIL_FAILED);
	/* The controller is gone with its admin queue's refusal. */
	assert_int_not_equal(identify(a.q), 0);

	host_connect(tgt, &b, HOST_B, 0, 0xffff);
	enable(b.q);
	assert_int_equal(host_negotiate(&b, 1, NULL, 0, NULL, 0), 0);
	assert_int_equal(host_challenge(&b, m), NVT_AUTH_MSG_CHALLENGE);
	assert_int_equal(host_reply(&b, 0, key_b, 48, false, 0), 0);
	assert_int_equal(host_finish(&b, false), 0);
	assert_int_equal(identify(b.q), 0);
	host_drop(&a);
	host_drop(&b);
	nvt_target_destroy(tgt);
}

/* A fresh queue of host A offering @hashes/@groups is refused at the challenge with @why. */
static void negotiate_refused(struct nvt_target *tgt, const uint8_t *hashes, unsigned int nh,
			      const uint8_t *groups, unsigned int ng, uint8_t why)
{
	uint8_t m[1200];
	struct host h;

	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	assert_int_equal(host_negotiate(&h, 1, hashes, nh, groups, ng), 0);
	assert_int_equal(host_challenge(&h, m), NVT_AUTH_MSG_FAILURE1);
	assert_int_equal(m[7], why);
	host_drop(&h);
}

/* Negotiation failures: no usable hash, no usable DH group, a truncated AUTH_Negotiate. */
static void test_negotiate_failures(void **state)
{
	static const uint8_t bad_hash[] = { 7 }, bad_group[] = { 9 };
	struct nvt_target *tgt = auth_target(false);
	uint8_t m[1200] = { 0 };
	struct host h;

	(void)state;
	negotiate_refused(tgt, bad_hash, 1, NULL, 0, NVT_AUTH_FAIL_HASH_UNUSABLE);
	negotiate_refused(tgt, NULL, 0, bad_group, 1, NVT_AUTH_FAIL_DHGROUP_UNUSABLE);
	/* No protocol descriptor after the header. */
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	m[1] = NVT_AUTH_MSG_NEGOTIATE;
	m[7] = 1;
	assert_int_equal(auth_cmd(h.q, true, m, 8, NVT_AUTH_SECP), 0);
	assert_int_equal(host_challenge(&h, m), NVT_AUTH_MSG_FAILURE1);
	assert_int_equal(m[7], NVT_AUTH_FAIL_INCORRECT_PAYLOAD);
	host_drop(&h);
	nvt_target_destroy(tgt);
}

/* Reply failures: another transaction id, truncated, out of order, replayed. */
static void test_reply_failures(void **state)
{
	struct nvt_target *tgt = auth_target(false);
	uint8_t m[1200];
	struct host h;

	(void)state;
	/* The reply carries another transaction's id. */
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	assert_int_equal(host_negotiate(&h, 4, NULL, 0, NULL, 0), 0);
	assert_int_equal(host_challenge(&h, m), NVT_AUTH_MSG_CHALLENGE);
	h.tid = 5;
	assert_int_equal(host_reply(&h, 1, key_a, 32, false, 0), 0);
	assert_int_equal(host_finish(&h, false), -NVT_AUTH_FAIL_INCORRECT_MESSAGE);
	host_drop(&h);

	/* Truncated: one byte of the DH value missing. */
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	assert_int_equal(host_negotiate(&h, 4, NULL, 0, NULL, 0), 0);
	assert_int_equal(host_challenge(&h, m), NVT_AUTH_MSG_CHALLENGE);
	assert_int_equal(host_reply(&h, 1, key_a, 32, false, 1), 0);
	assert_int_equal(host_finish(&h, false), -NVT_AUTH_FAIL_INCORRECT_PAYLOAD);
	host_drop(&h);

	/* Out of order: a reply before any challenge, and a Receive where a Send was due. */
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	h.hl = 32;
	h.hash = NVT_AUTH_HASH_SHA256;
	assert_int_equal(host_reply(&h, 1, key_a, 32, false, 0), 0);
	assert_int_equal(host_finish(&h, false), -NVT_AUTH_FAIL_INCORRECT_MESSAGE);
	/* After _Failure1 the queue is done with authentication. */
	assert_int_not_equal(host_negotiate(&h, 1, NULL, 0, NULL, 0), 0);
	host_drop(&h);
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	assert_int_equal(host_finish(&h, false), -NVT_AUTH_FAIL_INCORRECT_MESSAGE);
	host_drop(&h);

	/* Replayed: a good reply from one transaction sent again in the next (same tid). */
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	assert_int_equal(host_auth_a(&h, 6, false, NULL, 0), 0);
	enable(h.q);
	assert_int_equal(host_negotiate(&h, 6, NULL, 0, NULL, 0), 0);
	assert_int_equal(host_challenge(&h, m), NVT_AUTH_MSG_CHALLENGE);
	memcpy(m, h.last_reply, h.last_reply_len);
	assert_int_equal(auth_cmd(h.q, true, m, (uint32_t)h.last_reply_len, NVT_AUTH_SECP), 0);
	assert_int_equal(host_finish(&h, false), -NVT_AUTH_FAIL_FAILED);
	host_drop(&h);
	nvt_target_destroy(tgt);
}

/* Command-level checks: SECP, and authentication required of hosts without keys. */
static void test_command_and_connect(void **state)
{
	struct nvt_target *tgt = auth_target(true);
	struct nvt_loop_queue *q;
	struct nvt_cqe cqe;
	uint8_t m[72] = { 0 };
	struct host h;

	(void)state;
	host_connect(tgt, &h, HOST_A, 0, 0xffff);
	assert_int_equal(auth_cmd(h.q, true, m, sizeof(m), 0xea),
			 NVT_ST_INVALID_FIELD & ~NVT_SC_DNR);
	assert_int_equal(auth_cmd(h.q, false, m, 0, NVT_AUTH_SECP),
			 NVT_ST_INVALID_FIELD & ~NVT_SC_DNR);
	host_drop(&h);

	/* A listed host without a key, on a subsystem that requires authentication. */
	assert_int_equal(nvt_loop_queue_create(tgt, 0, 32, &q), 0);
	assert_int_equal(nvt_loop_connect_queue(q, 0, 31, A_NQN, HOST_N, 0xffff, 0, &cqe),
			 NVT_ST_CONNECT_INVALID_HOST);
	nvt_loop_queue_destroy(q);
	nvt_target_destroy(tgt);

	/* Without require_authentication it connects, and is not asked to authenticate. */
	tgt = auth_target(false);
	assert_int_equal(nvt_loop_queue_create(tgt, 0, 32, &q), 0);
	assert_int_equal(nvt_loop_connect_queue(q, 0, 31, A_NQN, HOST_N, 0xffff, 0, &cqe), 0);
	assert_false(le32toh(cqe.result.u32) & NVT_CONNECT_AUTHREQ_ATR);
	enable(q);
	assert_int_equal(identify(q), 0);
	/* No exchange on a queue that needs none. */
	assert_int_equal(auth_cmd(q, false, m, sizeof(m), NVT_AUTH_SECP),
			 NVT_ST_CMD_SEQ & ~NVT_SC_DNR);
	nvt_loop_queue_destroy(q);
	nvt_target_destroy(tgt);
}

/* Keys are fixed while nvtd runs: a reload that changes one is refused, naming the line, quoting no secret. */
static void test_reload_refuses_key_change(void **state)
{
	char path[] = "/tmp/nvt-auth-reload.XXXXXX", k1[128], k2[128], want[160];
	struct nvt_config cfg;
	struct nvt_target *tgt = NULL;
	char *out = NULL;
	size_t out_len;
	FILE *f;
	int fd;

	(void)state;
	nvt_test_fill(key_a, 32, 1);
	nvt_test_make_secret(k1, sizeof(k1), 1, key_a, 32, 0);
	nvt_test_fill(key_a, 32, 9);
	nvt_test_make_secret(k2, sizeof(k2), 1, key_a, 32, 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	for (int round = 0; round < 2; round++) {
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "subsystems = ( { nqn = \"" A_NQN "\";\n"
			   "  hosts = ( { nqn = \"" HOST_A "\";\n"
			   "    dhchap_key = \"%s\"; } );\n"
			   "  namespaces = ( { nsid = 1; backend = \"ram\"; size = \"1M\"; } ); } );\n",
			round ? k2 : k1);
		assert_int_equal(fclose(f), 0);
		if (round)
			break;
		assert_int_equal(nvt_config_load(path, &cfg, stderr), 0);
		assert_int_equal(nvt_target_create(&cfg, &tgt), 0);
	}
	f = open_memstream(&out, &out_len);
	assert_int_equal(nvt_target_reload(tgt, &cfg, f), -EINVAL);
	fclose(f);
	snprintf(want, sizeof(want), "%s:2: dhchap_key: ", path);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "keys cannot change live yet"));
	assert_null(strstr(out, "DHHC"));
	free(out);
	nvt_target_destroy(tgt);
	nvt_config_free(&cfg);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_null_dh),
		cmocka_unit_test(test_success_bidir_io_reauth),
		cmocka_unit_test(test_wrong_key_other_host_fine),
		cmocka_unit_test(test_negotiate_failures),
		cmocka_unit_test(test_reply_failures),
		cmocka_unit_test(test_command_and_connect),
		cmocka_unit_test(test_reload_refuses_key_change),
	};

	return cmocka_run_group_tests_name("auth_e2e", tests, NULL, NULL);
}
