/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzzes the controller's DH-HMAC-CHAP exchange (target/auth.c) with a hostile host's AUTH_Send payloads and AUTH_Receive lengths. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/auth.h"
#include "nvt/log.h"
#include "nvt/target.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	nvt_log_set_level(NVT_LOG_ERR);	/* the warnings of every refused message would drown the run */
	return 0;
}

/*
 * Input: operations until it ends. Byte 0 of each: 0 = raw AUTH_Send
 * (u16 length, then that many bytes), 1 = AUTH_Receive (u16 allocation
 * length), 2 = a well-formed AUTH_Negotiate offering the next hash and DH
 * ids (so the fuzzer reaches the challenge and the reply quickly), 3 = a
 * _Reply shaped for the negotiated hash and group with fuzzed contents.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvt_fuzz_input in = { .p = data, .n = size };
	static struct nvt_auth_host host = { .nqn = "nqn.2014-08.org.nvmexpress:uuid:fuzz",
					     .key = { .len = 32, .hash = 1 },
					     .ctrl_key = { .len = 48, .hash = 2 } };
	static struct nvt_subsys subsys = { .nqn = "nqn.2026-01.io.nvt:fuzz" };
	static struct nvt_ctrl ctrl = { .subsys = &subsys, .cntlid = 1,
					.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:fuzz" };
	static uint8_t buf[NVT_AUTH_MSG_MAX + 64], out[NVT_AUTH_MSG_MAX + 64];
	struct nvt_sq sq = { .ctrl = &ctrl, .qid = nvt_fuzz_u8(&in) & 1 };
	uint8_t hl = 32, dhgid = 0, tid = 0;
	unsigned int ops = 0;

	nvt_fuzz_check(nvt_auth_sq_start(&sq, &host) == 0, "no memory");
	while (in.i < in.n && ops++ < 64) {
		uint8_t op = nvt_fuzz_u8(&in) & 3;
		size_t len = (size_t)nvt_fuzz_u8(&in) | (size_t)nvt_fuzz_u8(&in) << 8, n = 0;
		uint16_t st;

		len %= sizeof(buf) + 1;
		memset(buf, 0, sizeof(buf));
		switch (op) {
		case 0:
			for (size_t i = 0; i < len; i++)
				buf[i] = nvt_fuzz_u8(&in);
			if (len <= NVT_AUTH_MSG_MAX)
				(void)nvt_auth_send(&sq, buf, len);
			break;
		case 1:
			if (len > NVT_AUTH_MSG_MAX)
				len = NVT_AUTH_MSG_MAX;
			memset(out, 0xa5, sizeof(out));
			st = nvt_auth_recv(&sq, out, len, &n);
			nvt_fuzz_check(n <= len, "%zu bytes out of %zu", n, len);
			nvt_fuzz_check(out[len] == 0xa5, "wrote past the allocation length");
			if (!st && n >= 16 && out[1] == NVT_AUTH_MSG_CHALLENGE) {
				hl = out[6];
				dhgid = out[9];
			}
			if (!st && n == 8 && out[1] == NVT_AUTH_MSG_FAILURE1)
				nvt_fuzz_check(!sq.auth_ok, "refused yet authenticated");
			break;
		case 2:
			buf[1] = NVT_AUTH_MSG_NEGOTIATE;
			buf[4] = tid = nvt_fuzz_u8(&in);
			buf[7] = 1;
			buf[8] = NVT_AUTH_ID_DHCHAP;
			buf[10] = 1;
			buf[11] = 1;
			buf[12] = nvt_fuzz_u8(&in) % 5;
			buf[12 + 30] = nvt_fuzz_u8(&in) % 7;
			(void)nvt_auth_send(&sq, buf, 72);
			break;
		default: {
			size_t dhv = nvt_dh_len(dhgid), need = 16 + 2 * (size_t)hl + dhv;

			if (need > NVT_AUTH_MSG_MAX)
				break;
			buf[0] = NVT_AUTH_DHCHAP_MSG;
			buf[1] = NVT_AUTH_MSG_REPLY;
			buf[4] = tid;
			buf[6] = hl;
			buf[8] = nvt_fuzz_u8(&in) & 1;
			buf[10] = (uint8_t)dhv;
			buf[11] = (uint8_t)(dhv >> 8);
			for (size_t i = 16; i < need && in.i < in.n; i++)
				buf[i] = nvt_fuzz_u8(&in);
			(void)nvt_auth_send(&sq, buf, need - (len & 1));
			break;
		}
		}
	}
	nvt_auth_sq_free(&sq);
	return 0;
}
