/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for the vhost-user message checks: every request's payload size, fd count, vring index and flags. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../transport/vhost/vhost_int.h"

static struct nvt_vhost_msg msg(uint32_t request, uint32_t size, unsigned int nr_fds)
{
	struct nvt_vhost_msg m;

	memset(&m, 0, sizeof(m));
	m.request = request;
	m.flags = NVT_VHOST_FLAG_VERSION;
	m.size = size;
	m.nr_fds = nr_fds;
	return m;
}

/* Requests without a payload take none, and no fds. */
static void test_no_payload(void **state)
{
	static const uint32_t reqs[] = {
		NVT_VHOST_GET_FEATURES, NVT_VHOST_SET_OWNER, NVT_VHOST_RESET_OWNER,
		NVT_VHOST_GET_PROTOCOL_FEATURES, NVT_VHOST_GET_QUEUE_NUM, NVT_VHOST_RESET_DEVICE,
	};
	struct nvt_vhost_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		m = msg(reqs[i], 0, 0);
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		m = msg(reqs[i], 8, 0);
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m = msg(reqs[i], 0, 1);
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	}
}

static void test_u64_payload(void **state)
{
	static const uint32_t reqs[] = { NVT_VHOST_SET_FEATURES, NVT_VHOST_SET_PROTOCOL_FEATURES };
	struct nvt_vhost_msg m;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		m = msg(reqs[i], 8, 0);
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		for (uint32_t sz = 0; sz < 16; sz++) {
			if (sz == 8)
				continue;
			m = msg(reqs[i], sz, 0);
			assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		}
		m = msg(reqs[i], 8, 1);
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	}
}

/* Version 1 only, and a request never has the REPLY bit; NEED_REPLY is fine. */
static void test_flags(void **state)
{
	struct nvt_vhost_msg m = msg(NVT_VHOST_GET_FEATURES, 0, 0);

	(void)state;
	m.flags = 0;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	m.flags = 2;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	m.flags = NVT_VHOST_FLAG_VERSION | NVT_VHOST_FLAG_REPLY;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	m.flags = NVT_VHOST_FLAG_VERSION | NVT_VHOST_FLAG_NEED_REPLY;
	assert_int_equal(nvt_vhost_msg_check(&m), 0);
}

static void test_mem_table(void **state)
{
	struct nvt_vhost_msg m;

	(void)state;
	for (uint32_t n = 1; n <= NVT_VHOST_MAX_REGIONS; n++) {
		m = msg(NVT_VHOST_SET_MEM_TABLE, 8 + 32 * n, n);
		m.payload.mem.nregions = n;
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		/* One fd short, one too many, a size that does not match the count. */
		m.nr_fds = n - 1;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m.nr_fds = n + 1;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m.nr_fds = n;
		m.size = 8 + 32 * n - 1;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m.size = 8 + 32 * (n + 1);
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	}
	m = msg(NVT_VHOST_SET_MEM_TABLE, 8, 0);
	m.payload.mem.nregions = 0;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	m = msg(NVT_VHOST_SET_MEM_TABLE, 8 + 32 * 9, 8);
	m.payload.mem.nregions = 9;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	m = msg(NVT_VHOST_SET_MEM_TABLE, 4, 0);
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	/* A size beyond the largest payload is refused before anything reads it. */
	m = msg(NVT_VHOST_SET_MEM_TABLE, NVT_VHOST_MSG_MAX + 1, 1);
	m.payload.mem.nregions = 1;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
}

static void test_vring_state(void **state)
{
	static const uint32_t reqs[] = {
		NVT_VHOST_SET_VRING_NUM, NVT_VHOST_SET_VRING_BASE, NVT_VHOST_GET_VRING_BASE,
		NVT_VHOST_SET_VRING_ENABLE,
	};
	struct nvt_vhost_msg m;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		m = msg(reqs[i], 8, 0);
		/* Beyond the queues nvtd serves, within what QEMU may set up (more than 64 vCPUs). */
		m.payload.state.index = NVT_VHOST_MAX_VQS;
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		m.payload.state.index = NVT_VHOST_VQ_LIMIT - 1;
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		m.payload.state.index = NVT_VHOST_VQ_LIMIT;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m.payload.state.index = 0;
		m.size = 4;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m.size = 8;
		m.nr_fds = 1;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	}
}

static void test_vring_addr(void **state)
{
	struct nvt_vhost_msg m = msg(NVT_VHOST_SET_VRING_ADDR, 40, 0);

	(void)state;
	assert_int_equal(nvt_vhost_msg_check(&m), 0);
	m.payload.addr.index = 200;
	assert_int_equal(nvt_vhost_msg_check(&m), 0);
	m.payload.addr.index = NVT_VHOST_VQ_LIMIT;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	m.payload.addr.index = 0;
	m.size = 32;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	m.size = 48;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
}

/* KICK / CALL / ERR: one fd unless NOFD; index in bits 0-7, nothing above bit 8. */
static void test_vring_fd(void **state)
{
	static const uint32_t reqs[] = {
		NVT_VHOST_SET_VRING_KICK, NVT_VHOST_SET_VRING_CALL, NVT_VHOST_SET_VRING_ERR,
	};
	struct nvt_vhost_msg m;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		m = msg(reqs[i], 8, 1);
		m.payload.u64 = 3;
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		m.nr_fds = 0;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m.payload.u64 = 3 | NVT_VHOST_VRING_NOFD;
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		m.nr_fds = 1;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		m.payload.u64 = 3 | (1ull << 9);
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
		/* QEMU sends CALL and ERR for every vq at realize, 66 and beyond too. */
		m.payload.u64 = NVT_VHOST_MAX_VQS;
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		m.payload.u64 = NVT_VHOST_VRING_IDX_MASK;
		assert_int_equal(nvt_vhost_msg_check(&m), 0);
		m.payload.u64 = 3;
		m.size = 4;
		assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
	}
}

/* Requests we do not serve are told apart from malformed ones. */
static void test_unsupported(void **state)
{
	static const uint32_t reqs[] = { 0, 6, 7, 19, 21, 24, 25, 31, 36, 37, 40, 1000 };
	struct nvt_vhost_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		m = msg(reqs[i], 0, 0);
		assert_int_equal(nvt_vhost_msg_check(&m), -EOPNOTSUPP);
	}
	m = msg(1000, 0, 0);
	m.flags = 0;
	assert_int_equal(nvt_vhost_msg_check(&m), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_payload),
		cmocka_unit_test(test_u64_payload),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_mem_table),
		cmocka_unit_test(test_vring_state),
		cmocka_unit_test(test_vring_addr),
		cmocka_unit_test(test_vring_fd),
		cmocka_unit_test(test_unsupported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
