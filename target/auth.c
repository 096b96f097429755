/* SPDX-License-Identifier: BSD-3-Clause */
/* DH-HMAC-CHAP (NVMe 2.0 §8.13): secrets, key transformation, responses and FFDHE through OpenSSL, and the controller's side of the exchange per queue. */
#define NVT_LOG_PREFIX "auth: "
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "nvt/auth.h"
#include "nvt/log.h"
#include "nvt/target.h"

static const char *nvt_dhchap_digest(uint8_t hash)
{
	switch (hash) {
	case NVT_AUTH_HASH_SHA256: return "SHA256";
	case NVT_AUTH_HASH_SHA384: return "SHA384";
	case NVT_AUTH_HASH_SHA512: return "SHA512";
	default: return NULL;
	}
}

size_t nvt_dhchap_hash_len(uint8_t hash)
{
	switch (hash) {
	case NVT_AUTH_HASH_SHA256: return 32;
	case NVT_AUTH_HASH_SHA384: return 48;
	case NVT_AUTH_HASH_SHA512: return 64;
	default: return 0;
	}
}

const char *nvt_dhchap_parse_secret(const char *s, struct nvt_dhchap_key *out)
{
	uint8_t buf[80];
	size_t n, pad = 0;
	uint32_t crc;
	int hash, dec;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "DHHC-1:", 7))
		return "not a DH-HMAC-CHAP secret (must start with \"DHHC-1:\")";
	s += 7;
	if (s[0] != '0' || s[1] < '0' || s[1] > '3' || s[2] != ':')
		return "the hash indicator must be 00, 01, 02 or 03";
	hash = s[1] - '0';
	s += 3;
	n = strlen(s);
	/* The base64 of 32, 48 or 64 key bytes and 4 CRC bytes, then ':'. */
	if (n < 2 || s[n - 1] != ':')
		return "must end with ':'";
	n--;
	if (n != 48 && n != 72 && n != 92)
		return "the key must be 32, 48 or 64 bytes (base64 with its CRC-32)";
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	dec = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	if (dec < 0 || (size_t)dec < pad + 4)
		return "not valid base64";
	n = (size_t)dec - pad - 4;
	if (n != 32 && n != 48 && n != 64)
		return "the key must be 32, 48 or 64 bytes (base64 with its CRC-32)";
	/* The CRC-32 of the key (IEEE, as gzip's), little-endian after it. */
	crc = crc32_gzip_refl(0, buf, n);
	if (crc != ((uint32_t)buf[n] | (uint32_t)buf[n + 1] << 8 | (uint32_t)buf[n + 2] << 16 |
		    (uint32_t)buf[n + 3] << 24)) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return "CRC-32 mismatch (mistyped secret?)";
	}
	memcpy(out->key, buf, n);
	out->len = n;
	out->hash = (uint8_t)hash;
	OPENSSL_cleanse(buf, sizeof(buf));
	return NULL;
}

/* One HMAC over several pieces; every computation here is one of these. */
struct nvt_piece {
	const void *p;
	size_t len;
};

static int nvt_hmac(uint8_t hash, const uint8_t *key, size_t key_len,
		    const struct nvt_piece *pieces, unsigned int nr, uint8_t *out)
{
	const char *md = nvt_dhchap_digest(hash);
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	int ret = -EINVAL;

	if (!md)
		return -EINVAL;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		return -EINVAL;
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key, key_len, params))
		goto out;
	for (unsigned int i = 0; i < nr; i++)
		if (pieces[i].len && !EVP_MAC_update(ctx, pieces[i].p, pieces[i].len))
			goto out;
	if (!EVP_MAC_final(ctx, out, &outl, NVT_AUTH_HASH_MAX) || outl != nvt_dhchap_hash_len(hash))
		goto out;
	ret = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ret;
}

int nvt_dhchap_transform(const struct nvt_dhchap_key *k, const char *nqn, uint8_t *out,
			 size_t *out_len)
{
	const struct nvt_piece p[] = { { nqn, strlen(nqn) }, { "NVMe-over-Fabrics", 17 } };

	if (!k->hash) {
		memcpy(out, k->key, k->len);
		*out_len = k->len;
		return 0;
	}
	*out_len = nvt_dhchap_hash_len(k->hash);
	return nvt_hmac(k->hash, k->key, k->len, p, 2, out);
}

int nvt_dhchap_response(uint8_t hash, const uint8_t *key, size_t key_len, const uint8_t *chal,
			uint32_t seq, uint16_t tid, uint8_t sc_c, const char *role,
			const char *nqn1, const char *nqn2, uint8_t *out)
{
	uint8_t le_seq[4], le_tid[2], zero = 0;
	const struct nvt_piece p[] = {
		{ chal, nvt_dhchap_hash_len(hash) }, { le_seq, 4 }, { le_tid, 2 }, { &sc_c, 1 },
		{ role, strlen(role) }, { nqn1, strlen(nqn1) }, { &zero, 1 }, { nqn2, strlen(nqn2) },
	};

	le_seq[0] = (uint8_t)seq;
	le_seq[1] = (uint8_t)(seq >> 8);
	le_seq[2] = (uint8_t)(seq >> 16);
	le_seq[3] = (uint8_t)(seq >> 24);
	le_tid[0] = (uint8_t)tid;
	le_tid[1] = (uint8_t)(tid >> 8);
	return nvt_hmac(hash, key, key_len, p, sizeof(p) / sizeof(p[0]), out);
}

int nvt_dhchap_augment(uint8_t hash, const uint8_t *skey, size_t skey_len, const uint8_t *chal,
		       uint8_t *out)
{
	const char *md = nvt_dhchap_digest(hash);
	uint8_t hk[NVT_AUTH_HASH_MAX];
	unsigned int hkl = 0;
	const struct nvt_piece p[] = { { chal, nvt_dhchap_hash_len(hash) } };
	int ret;

	if (!md || !EVP_Digest(skey, skey_len, hk, &hkl, EVP_get_digestbyname(md), NULL))
		return -EINVAL;
	ret = nvt_hmac(hash, hk, hkl, p, 1, out);
	OPENSSL_cleanse(hk, sizeof(hk));
	return ret;
}

static const char *nvt_dh_group_name(uint8_t dhgid)
{
	static const char *const names[] = { NULL, "ffdhe2048", "ffdhe3072", "ffdhe4096",
					     "ffdhe6144", "ffdhe8192" };

	return dhgid < sizeof(names) / sizeof(names[0]) ? names[dhgid] : NULL;
}

size_t nvt_dh_len(uint8_t dhgid)
{
	static const size_t lens[] = { 0, 256, 384, 512, 768, 1024 };

	return dhgid < sizeof(lens) / sizeof(lens[0]) ? lens[dhgid] : 0;
}

struct nvt_dh {
	EVP_PKEY *key;
	uint8_t dhgid;
};

struct nvt_dh *nvt_dh_new(uint8_t dhgid)
{
	const char *name = nvt_dh_group_name(dhgid);
	struct nvt_dh *dh;
	EVP_PKEY_CTX *ctx;

	if (!name)
		return NULL;
	dh = calloc(1, sizeof(*dh));
	if (!dh)
		return NULL;
	dh->dhgid = dhgid;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_group_name(ctx, name) <= 0 ||
	    EVP_PKEY_generate(ctx, &dh->key) <= 0) {
		EVP_PKEY_CTX_free(ctx);
		free(dh);
		return NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return dh;
}

int nvt_dh_public(struct nvt_dh *dh, uint8_t *out, size_t len)
{
	BIGNUM *pub = NULL;
	int ret = -EINVAL;

	if (len != nvt_dh_len(dh->dhgid) ||
	    !EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY, &pub))
		return -EINVAL;
	if (BN_bn2binpad(pub, out, (int)len) == (int)len)
		ret = 0;
	BN_free(pub);
	return ret;
}

int nvt_dh_derive(struct nvt_dh *dh, const uint8_t *peer, size_t peer_len, uint8_t *out,
		  size_t len)
{
	size_t glen = nvt_dh_len(dh->dhgid);
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL, *dctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *pub = NULL;
	size_t outl = len;
	int ret = -EINVAL;

	if (peer_len != glen || len != glen)
		return -EINVAL;
	pub = BN_bin2bn(peer, (int)peer_len, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!pub || !bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     nvt_dh_group_name(dh->dhgid), 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, pub))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (!params || !pctx || EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	dctx = EVP_PKEY_CTX_new(dh->key, NULL);
	/* Padded to the modulus size, and the peer's value checked (1 < y < p-1, in the subgroup). */
	if (!dctx || EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_CTX_set_dh_pad(dctx, 1) <= 0 ||
	    EVP_PKEY_derive_set_peer_ex(dctx, pkey, 1) <= 0 ||
	    EVP_PKEY_derive(dctx, out, &outl) <= 0 || outl != glen)
		goto out;
	ret = 0;
out:
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pkey);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(pub);
	return ret;
}

void nvt_dh_free(struct nvt_dh *dh)
{
	if (!dh)
		return;
	EVP_PKEY_free(dh->key);
	free(dh);
}

/* ---- subsystem keys ---- */

int nvt_auth_subsys_create(const struct nvt_subsys_cfg *cfg, struct nvt_auth_subsys **out)
{
	struct nvt_auth_subsys *as;
	unsigned int n = 0;

	*out = NULL;
	for (unsigned int i = 0; cfg->host_auth && i < cfg->nr_hosts; i++)
		n += cfg->host_auth[i].dhchap_key[0] != 0;
	if (!n && !cfg->require_authentication)
		return 0;
	as = calloc(1, sizeof(*as));
	if (!as)
		return -ENOMEM;
	as->require = cfg->require_authentication;
	if (n) {
		as->hosts = calloc(n, sizeof(*as->hosts));
		if (!as->hosts) {
			free(as);
			return -ENOMEM;
		}
	}
	for (unsigned int i = 0; cfg->host_auth && i < cfg->nr_hosts; i++) {
		const struct nvt_host_auth_cfg *h = &cfg->host_auth[i];
		struct nvt_auth_host *ah;

		if (!h->dhchap_key[0])
			continue;
		ah = &as->hosts[as->nr_hosts++];
		snprintf(ah->nqn, sizeof(ah->nqn), "%s", cfg->hosts[i]);
		if (nvt_dhchap_parse_secret(h->dhchap_key, &ah->key) ||
		    (h->dhchap_ctrl_key[0] &&
		     nvt_dhchap_parse_secret(h->dhchap_ctrl_key, &ah->ctrl_key))) {
			nvt_auth_subsys_free(as);
			return -EINVAL;
		}
	}
	*out = as;
	return 0;
}

void nvt_auth_subsys_free(struct nvt_auth_subsys *as)
{
	if (!as)
		return;
	if (as->hosts)
		OPENSSL_cleanse(as->hosts, as->nr_hosts * sizeof(*as->hosts));
	free(as->hosts);
	free(as);
}

const struct nvt_auth_host *nvt_auth_find_host(const struct nvt_auth_subsys *as,
					       const char *hostnqn)
{
	for (unsigned int i = 0; as && i < as->nr_hosts; i++)
		if (!strcmp(as->hosts[i].nqn, hostnqn))
			return &as->hosts[i];
	return NULL;
}

/* ---- the controller's side of the exchange, one per queue ---- */

/* What the queue waits for next. */
enum nvt_auth_step {
	NVT_AUTH_WAIT_NEGOTIATE,	/* AUTH_Send: AUTH_Negotiate */
	NVT_AUTH_WAIT_RECV_CHALLENGE,	/* AUTH_Receive: our DH-HMAC-CHAP_Challenge */
	NVT_AUTH_WAIT_REPLY,		/* AUTH_Send: the host's _Reply */
	NVT_AUTH_WAIT_RECV_SUCCESS1,	/* AUTH_Receive: our _Success1 */
	NVT_AUTH_WAIT_SUCCESS2,		/* AUTH_Send: the host's _Success2 (bidirectional) */
	NVT_AUTH_WAIT_RECV_FAILURE1,	/* AUTH_Receive: our _Failure1 */
	NVT_AUTH_DONE,			/* authenticated; a new AUTH_Negotiate re-authenticates */
	NVT_AUTH_FAILED,		/* refused: the queue runs nothing but Disconnect */
};

struct nvt_auth_sq {
	const struct nvt_auth_host *host;
	enum nvt_auth_step step;
	uint8_t fail;			/* REXPL of the pending _Failure1 */
	uint16_t tid;
	uint8_t hash, dhgid;
	size_t hl;
	uint32_t s1, s2;
	bool c2_valid;
	uint8_t c1[NVT_AUTH_HASH_MAX], c2[NVT_AUTH_HASH_MAX];
	struct nvt_dh *dh;
	uint8_t skey[NVT_AUTH_DH_MAX];
	size_t skey_len;
};

int nvt_auth_sq_start(struct nvt_sq *sq, const struct nvt_auth_host *host)
{
	struct nvt_auth_sq *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->host = host;
	a->step = NVT_AUTH_WAIT_NEGOTIATE;
	sq->auth = a;
	sq->auth_ok = false;
	return 0;
}

static void nvt_auth_reset(struct nvt_auth_sq *a)
{
	nvt_dh_free(a->dh);
	a->dh = NULL;
	OPENSSL_cleanse(a->skey, sizeof(a->skey));
	OPENSSL_cleanse(a->c1, sizeof(a->c1));
	OPENSSL_cleanse(a->c2, sizeof(a->c2));
	a->skey_len = 0;
	a->c2_valid = false;
}

void nvt_auth_sq_free(struct nvt_sq *sq)
{
	if (!sq->auth)
		return;
	nvt_auth_reset(sq->auth);
	free(sq->auth);
	sq->auth = NULL;
}

static const char *nvt_auth_fail_name(uint8_t why)
{
	switch (why) {
	case NVT_AUTH_FAIL_FAILED: return "the response did not match the key";
	case NVT_AUTH_FAIL_NOT_USABLE: return "no DH-HMAC-CHAP protocol offered";
	case NVT_AUTH_FAIL_CONCAT_MISMATCH: return "secure channel concatenation asked for";
	case NVT_AUTH_FAIL_HASH_UNUSABLE: return "no usable hash";
	case NVT_AUTH_FAIL_DHGROUP_UNUSABLE: return "no usable DH group";
	case NVT_AUTH_FAIL_INCORRECT_PAYLOAD: return "malformed message";
	default: return "message out of order or of another transaction";
	}
}

/* The exchange fails: _Failure1 goes out on the next AUTH_Receive. Logged here, once. */
static void nvt_auth_fail(struct nvt_sq *sq, uint8_t why)
{
	struct nvt_auth_sq *a = sq->auth;

	nvt_warn_ratelimited("host %s ctrl %u qid %u: authentication failed: %s", a->host->nqn,
			     sq->ctrl ? sq->ctrl->cntlid : 0, sq->qid, nvt_auth_fail_name(why));
	nvt_auth_reset(a);
	a->fail = why;
	a->step = NVT_AUTH_WAIT_RECV_FAILURE1;
	sq->auth_ok = false;
}

/* The strongest hash the host offers. */
static uint8_t nvt_auth_pick_hash(const uint8_t *ids, unsigned int n)
{
	uint8_t best = 0;

	for (unsigned int i = 0; i < n; i++)
		if (nvt_dhchap_hash_len(ids[i]) && ids[i] > best)
			best = ids[i];
	return best;
}

/*
 * The cheapest FFDHE group the host offers (Linux offers all of them: every
 * queue pays one modular exponentiation each way), else null DH; 0xff: none.
 */
static uint8_t nvt_auth_pick_dhgroup(const uint8_t *ids, unsigned int n)
{
	uint8_t best = 0xff;
	bool null = false;

	for (unsigned int i = 0; i < n; i++) {
		if (ids[i] == NVT_AUTH_DHGROUP_NULL)
			null = true;
		else if (nvt_dh_len(ids[i]) && ids[i] < best)
			best = ids[i];
	}
	return best != 0xff ? best : null ? NVT_AUTH_DHGROUP_NULL : 0xff;
}

static void nvt_auth_negotiate(struct nvt_sq *sq, const uint8_t *m, size_t len)
{
	struct nvt_auth_sq *a = sq->auth;
	const uint8_t *d = NULL;
	unsigned int napd;

	a->tid = le16toh(*(const uint16_t *)(m + 4));
	if (m[6] != 0) {		/* SC_C: no secure channel (TLS) here */
		nvt_auth_fail(sq, NVT_AUTH_FAIL_CONCAT_MISMATCH);
		return;
	}
	napd = m[7];
	if (!napd || len < 8 + (size_t)napd * 64) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_PAYLOAD);
		return;
	}
	for (unsigned int i = 0; i < napd && !d; i++)
		if (m[8 + i * 64] == NVT_AUTH_ID_DHCHAP)
			d = m + 8 + i * 64;
	if (!d) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_NOT_USABLE);
		return;
	}
	/* HALEN and DHLEN count identifiers in two 30-byte halves of IDLIST. */
	if (d[2] > 30 || d[3] > 30) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_PAYLOAD);
		return;
	}
	a->hash = nvt_auth_pick_hash(d + 4, d[2]);
	if (!a->hash) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_HASH_UNUSABLE);
		return;
	}
	a->dhgid = nvt_auth_pick_dhgroup(d + 4 + 30, d[3]);
	if (a->dhgid == 0xff) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_DHGROUP_UNUSABLE);
		return;
	}
	a->hl = nvt_dhchap_hash_len(a->hash);
	a->step = NVT_AUTH_WAIT_RECV_CHALLENGE;
}

static void nvt_auth_reply(struct nvt_sq *sq, const uint8_t *m, size_t len)
{
	struct nvt_auth_sq *a = sq->auth;
	const struct nvt_ctrl *ctrl = sq->ctrl;
	uint8_t key[NVT_AUTH_HASH_MAX], chal[NVT_AUTH_HASH_MAX], want[NVT_AUTH_HASH_MAX];
	size_t key_len, dhvlen;
	bool ok;

	if (m[0] != NVT_AUTH_DHCHAP_MSG || le16toh(*(const uint16_t *)(m + 4)) != a->tid) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_MESSAGE);
		return;
	}
	if (len < 16 || m[6] != a->hl) {
		nvt_auth_fail(sq, len < 16 ? NVT_AUTH_FAIL_INCORRECT_PAYLOAD :
				  NVT_AUTH_FAIL_HASH_UNUSABLE);
		return;
	}
	dhvlen = le16toh(*(const uint16_t *)(m + 10));
	if (dhvlen != nvt_dh_len(a->dhgid) || len < 16 + 2 * a->hl + dhvlen) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_PAYLOAD);
		return;
	}
	if (a->dh && nvt_dh_derive(a->dh, m + 16 + 2 * a->hl, dhvlen, a->skey, dhvlen)) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_PAYLOAD);
		return;
	}
	a->skey_len = a->dh ? dhvlen : 0;
	memcpy(chal, a->c1, a->hl);
	ok = !nvt_dhchap_transform(&a->host->key, ctrl->hostnqn, key, &key_len) &&
	     (!a->dh || !nvt_dhchap_augment(a->hash, a->skey, a->skey_len, a->c1, chal)) &&
	     !nvt_dhchap_response(a->hash, key, key_len, chal, a->s1, a->tid, 0, "HostHost",
				  ctrl->hostnqn, ctrl->subsys->nqn, want) &&
	     !CRYPTO_memcmp(want, m + 16, a->hl);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_FAILED);
		return;
	}
	/* CVALID: the host challenges us back; only a controller key answers it. */
	a->c2_valid = m[8] & 1;
	if (a->c2_valid) {
		if (!a->host->ctrl_key.len) {
			nvt_auth_fail(sq, NVT_AUTH_FAIL_FAILED);
			return;
		}
		memcpy(a->c2, m + 16 + a->hl, a->hl);
		a->s2 = le32toh(*(const uint32_t *)(m + 12));
	}
	a->step = NVT_AUTH_WAIT_RECV_SUCCESS1;
}

uint16_t nvt_auth_send(struct nvt_sq *sq, const uint8_t *m, size_t len)
{
	struct nvt_auth_sq *a = sq->auth;

	if (!a)
		return NVT_ST_CMD_SEQ;
	/*
	 * _Failure2 ends an exchange either side gave up: after our _Failure1
	 * too, which Linux answers with one before it drops the queue (an
	 * error here would leave its connect waiting).
	 */
	if (len >= 8 && m[0] == NVT_AUTH_COMMON_MSG && m[1] == NVT_AUTH_MSG_FAILURE2 &&
	    a->step == NVT_AUTH_FAILED)
		return NVT_ST_OK;
	if (a->step == NVT_AUTH_FAILED)
		return NVT_ST_CMD_SEQ;
	if (len < 8) {
		nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_PAYLOAD);
		return NVT_ST_OK;
	}
	if (m[0] == NVT_AUTH_COMMON_MSG && m[1] == NVT_AUTH_MSG_FAILURE2) {
		/* The host gave up (our _Success1 did not convince it). */
		nvt_warn_ratelimited("host %s qid %u: the host refused the controller's response",
				     a->host->nqn, sq->qid);
		nvt_auth_reset(a);
		a->step = NVT_AUTH_FAILED;
		sq->auth_ok = false;
		return NVT_ST_OK;
	}
	if (m[0] == NVT_AUTH_COMMON_MSG && m[1] == NVT_AUTH_MSG_NEGOTIATE &&
	    (a->step == NVT_AUTH_WAIT_NEGOTIATE || a->step == NVT_AUTH_DONE)) {
		/* From DONE: re-authentication; the queue stays usable until it fails. */
		nvt_auth_reset(a);
		nvt_auth_negotiate(sq, m, len);
		return NVT_ST_OK;
	}
	if (m[1] == NVT_AUTH_MSG_REPLY && a->step == NVT_AUTH_WAIT_REPLY) {
		nvt_auth_reply(sq, m, len);
		return NVT_ST_OK;
	}
	if (m[0] == NVT_AUTH_DHCHAP_MSG && m[1] == NVT_AUTH_MSG_SUCCESS2 &&
	    a->step == NVT_AUTH_WAIT_SUCCESS2 && le16toh(*(const uint16_t *)(m + 4)) == a->tid) {
		nvt_auth_reset(a);
		a->step = NVT_AUTH_DONE;
		sq->auth_ok = true;
		return NVT_ST_OK;
	}
	nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_MESSAGE);
	return NVT_ST_OK;
}

static void nvt_auth_hdr(uint8_t *buf, uint8_t type, uint8_t id, uint16_t tid)
{
	buf[0] = type;
	buf[1] = id;
	buf[4] = (uint8_t)tid;
	buf[5] = (uint8_t)(tid >> 8);
}

static void nvt_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A fresh sequence number: never 0 (the host's S2 of 0 means no controller challenge). */
static uint32_t nvt_auth_seqnum(void)
{
	uint32_t s = 0;

	while (!s)
		if (RAND_bytes((unsigned char *)&s, sizeof(s)) != 1)
			return 1;
	return s;
}

static uint16_t nvt_auth_challenge(struct nvt_sq *sq, uint8_t *buf, size_t len, size_t *out_len)
{
	struct nvt_auth_sq *a = sq->auth;
	size_t dhvlen = nvt_dh_len(a->dhgid), need = 16 + a->hl + dhvlen;

	if (len < need)
		return NVT_ST_INVALID_FIELD;
	if (RAND_bytes(a->c1, (int)a->hl) != 1)
		return NVT_ST_INTERNAL;
	if (dhvlen) {
		a->dh = nvt_dh_new(a->dhgid);
		if (!a->dh || nvt_dh_public(a->dh, buf + 16 + a->hl, dhvlen))
			return NVT_ST_INTERNAL;
	}
	a->s1 = nvt_auth_seqnum();
	nvt_auth_hdr(buf, NVT_AUTH_DHCHAP_MSG, NVT_AUTH_MSG_CHALLENGE, a->tid);
	buf[6] = (uint8_t)a->hl;
	buf[8] = a->hash;
	buf[9] = a->dhgid;
	buf[10] = (uint8_t)dhvlen;
	buf[11] = (uint8_t)(dhvlen >> 8);
	nvt_put_le32(buf + 12, a->s1);
	memcpy(buf + 16, a->c1, a->hl);
	*out_len = need;
	a->step = NVT_AUTH_WAIT_REPLY;
	return NVT_ST_OK;
}

static uint16_t nvt_auth_success1(struct nvt_sq *sq, uint8_t *buf, size_t len, size_t *out_len)
{
	struct nvt_auth_sq *a = sq->auth;
	const struct nvt_ctrl *ctrl = sq->ctrl;
	uint8_t key[NVT_AUTH_HASH_MAX], chal[NVT_AUTH_HASH_MAX];
	size_t key_len;
	bool ok;

	if (len < 16 + a->hl)
		return NVT_ST_INVALID_FIELD;
	nvt_auth_hdr(buf, NVT_AUTH_DHCHAP_MSG, NVT_AUTH_MSG_SUCCESS1, a->tid);
	buf[6] = (uint8_t)a->hl;
	if (a->c2_valid) {
		/* The controller's key is transformed with the subsystem NQN. */
		memcpy(chal, a->c2, a->hl);
		ok = !nvt_dhchap_transform(&a->host->ctrl_key, ctrl->subsys->nqn, key, &key_len) &&
		     (!a->dh || !nvt_dhchap_augment(a->hash, a->skey, a->skey_len, a->c2, chal)) &&
		     !nvt_dhchap_response(a->hash, key, key_len, chal, a->s2, a->tid, 0,
					  "Controller", ctrl->subsys->nqn, ctrl->hostnqn,
					  buf + 16);
		OPENSSL_cleanse(key, sizeof(key));
		if (!ok)
			return NVT_ST_INTERNAL;
		buf[8] = 1;	/* RVALID */
	}
	*out_len = 16 + a->hl;
	if (a->c2_valid) {
		a->step = NVT_AUTH_WAIT_SUCCESS2;
	} else {
		nvt_auth_reset(a);
		a->step = NVT_AUTH_DONE;
		sq->auth_ok = true;
	}
	return NVT_ST_OK;
}

uint16_t nvt_auth_recv(struct nvt_sq *sq, uint8_t *buf, size_t len, size_t *out_len)
{
	struct nvt_auth_sq *a = sq->auth;

	*out_len = 0;
	if (!a || a->step == NVT_AUTH_FAILED)
		return NVT_ST_CMD_SEQ;
	memset(buf, 0, len);
	switch (a->step) {
	case NVT_AUTH_WAIT_RECV_CHALLENGE:
		return nvt_auth_challenge(sq, buf, len, out_len);
	case NVT_AUTH_WAIT_RECV_SUCCESS1:
		return nvt_auth_success1(sq, buf, len, out_len);
	case NVT_AUTH_WAIT_RECV_FAILURE1:
		break;
	default:
		/* A Receive where a Send was due: the exchange is out of order. */
		nvt_auth_fail(sq, NVT_AUTH_FAIL_INCORRECT_MESSAGE);
		break;
	}
	if (len < 8)
		return NVT_ST_INVALID_FIELD;
	nvt_auth_hdr(buf, NVT_AUTH_COMMON_MSG, NVT_AUTH_MSG_FAILURE1, a->tid);
	buf[6] = NVT_AUTH_FAIL_REASON;
	buf[7] = a->fail;
	*out_len = 8;
	a->step = NVT_AUTH_FAILED;
	return NVT_ST_OK;
}
