/* SPDX-License-Identifier: BSD-3-Clause */
/* Protection information end to end over the loop transport: formats, PRACT=1 insert/strip, PRACT=0 checks before storing, corruption at rest. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nvt/backend.h"
#include "nvt/crc.h"
#include "nvt/host.h"
#include "nvt/log.h"
#include "nvt/loop.h"
#include "nvt/pi.h"
#include "nvt_test_loop.h"

#define PI_NQN	"nqn.2026-11.io.nvt:pi"
#define PI_HOST	"nqn.2014-08.org.nvmexpress:uuid:pi-host"
#define NS_SIZE	(1u << 20)

/* nsid 1: 512+8 Type 1; 2: 4096+16 Type 2 64-bit guard; 3: 512+8 Type 3; 4: 512+16 Type 1, PI first. */
static const struct nvt_test_fmt fmts[] = {
	{ 512, 1, "crc16", "last", 8 },
	{ 4096, 2, "crc64", "last", 16 },
	{ 512, 3, "crc16", "last", 8 },
	{ 512, 1, "crc16", "first", 16 },
};

static int setup(void **state)
{
	*state = nvt_test_fixture_connect(nvt_test_target_ram(PI_NQN, fmts, 4, NS_SIZE), PI_NQN,
					  PI_HOST, 1, 32, 0);
	return 0;
}

/* Distinct bytes in every block (a short-period pattern would hide misplaced blocks). */
static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		buf[i] = (uint8_t)seed;
	}
}

static int run(struct fixture *f, struct nvt_sqe *sqe, void *buf, size_t len)
{
	return nvt_test_exec(f->ctrl.io[0], sqe, buf, len, NULL);
}

#define PRCHK_ALL	(NVT_PI_CHECK_GUARD | NVT_PI_CHECK_APPTAG | NVT_PI_CHECK_REFTAG)

/* An extended-LBA buffer with correct PI for @nlb blocks from @slba (what a PI-capable host sends). */
static uint8_t *ext_buf(struct fixture *f, uint32_t nsid, uint64_t slba, uint32_t nlb,
			uint16_t apptag, uint8_t fill)
{
	const struct nvt_ns *ns = f->subsys->ns[nsid];
	size_t blk = ns->block_size + ns->md_size;
	uint8_t *buf = malloc(blk * nlb);
	struct nvt_pi_ctx ctx;
	struct iovec iov = { buf, blk * nlb };

	fill_random(buf, blk * nlb, fill + 1u);
	nvt_pi_ctx_init(&ctx, &ns->pi, slba, PRCHK_ALL, slba, apptag, 0xffff);
	assert_int_equal(nvt_pi_generate_ext(&ctx, &iov, 1, nlb), 0);
	return buf;
}

static uint64_t last_error_lba(struct fixture *f, uint16_t *status)
{
	struct nvme_error_log_page e;
	struct nvt_sqe sqe;

	nvt_host_sqe_get_log(&sqe, NVME_LOG_LID_ERROR, sizeof(e), 0, false);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &e, sizeof(e), &(struct nvt_cqe){ 0 }), 0);
	*status = (uint16_t)(le16toh(e.status_field) >> 1);
	return le64toh(e.lba);
}

static void test_identify_formats(void **state)
{
	struct fixture *f = *state;
	struct nvme_id_ctrl ctrl;
	struct nvme_id_ns id;
	struct nvme_nvm_id_ns nvm;
	struct nvt_sqe sqe;
	uint8_t behavior[512] = { [2] = 1 };	/* LBAFEE */

	nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CTRL, 0, 0);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &ctrl, sizeof(ctrl), &(struct nvt_cqe){ 0 }), 0);
	assert_true(le32toh(ctrl.ctratt) & NVME_CTRL_CTRATT_ELBAS);

	for (uint32_t nsid = 1; nsid <= 4; nsid++) {
		nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_NS, nsid, 0);
		assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &id, sizeof(id), &(struct nvt_cqe){ 0 }), 0);
		/* A Linux host needs the extended-LBA bit on fabrics (HOST-CONTRACT §3.1). */
		assert_true(id.flbas & NVME_NS_FLBAS_META_EXT);
		assert_int_equal(le16toh(id.lbaf[0].ms), fmts[nsid - 1].md_size);
		assert_int_equal(1u << id.lbaf[0].ds, fmts[nsid - 1].block_size);
		assert_int_equal(id.mc, NVME_NS_MC_EXTENDED);
		assert_int_equal(id.dps & NVME_NS_DPS_PI_MASK, fmts[nsid - 1].pi_type);
		assert_int_equal(!!(id.dps & NVME_NS_DPS_PI_FIRST),
				 !strcmp(fmts[nsid - 1].location, "first"));
		assert_true(id.dpc & (1u << (fmts[nsid - 1].pi_type - 1)));
		assert_int_equal(le64toh(id.nsze), NS_SIZE / fmts[nsid - 1].block_size);

		nvt_host_sqe_identify(&sqe, NVME_IDENTIFY_CNS_CSI_NS, nsid, NVME_CSI_NVM);
		assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, &nvm, sizeof(nvm), &(struct nvt_cqe){ 0 }), 0);
		assert_int_equal((le32toh(nvm.elbaf[0]) >> 7) & 3,
				 strcmp(fmts[nsid - 1].guard, "crc64") ? 0 : 2);
	}
	/* Host Behavior with LBAFEE, as a host that sees ELBAS sends it, and read back. */
	nvt_host_sqe_features(&sqe, true, NVME_FEAT_FID_HOST_BEHAVIOR, 0);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, behavior, sizeof(behavior), &(struct nvt_cqe){ 0 }), 0);
	memset(behavior, 0, sizeof(behavior));
	nvt_host_sqe_features(&sqe, false, NVME_FEAT_FID_HOST_BEHAVIOR, 0);
	assert_int_equal(nvt_loop_exec(f->ctrl.admin, &sqe, behavior, sizeof(behavior), &(struct nvt_cqe){ 0 }), 0);
	assert_int_equal(behavior[2], 1);
}

/* PRACT=1 (what Linux sends over rxe): data only on the wire; PI inserted, then checked and stripped. */
static void test_pract1_insert_and_strip(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8 * 512], back[8 * 512], ext[8 * 520];
	struct nvt_sqe sqe;

	fill_random(data, sizeof(data), 31);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 40, 8, NVT_PI_PRACT | PRCHK_ALL, 40, 0x1234, 0xffff);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), 0);
	/* Data only comes back with PRACT=1... */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 40, 8, NVT_PI_PRACT | PRCHK_ALL, 40, 0x1234, 0xffff);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));
	/* ...and data + the PI the target generated with PRACT=0. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 40, 8, PRCHK_ALL, 40, 0x1234, 0xffff);
	assert_int_equal(run(f, &sqe, ext, sizeof(ext)), 0);
	for (int b = 0; b < 8; b++) {
		struct nvt_pi16 pi;

		memcpy(&pi, ext + b * 520 + 512, 8);
		assert_memory_equal(ext + b * 520, data + b * 512, 512);
		assert_int_equal(be16toh(pi.guard), nvt_crc16_t10dif(0, data + b * 512, 512));
		assert_int_equal(be16toh(pi.apptag), 0x1234);
		assert_int_equal(be32toh(pi.reftag), 40 + b);
	}
	/* The wire length is data only: an extended-length buffer is refused. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 40, 8, NVT_PI_PRACT | PRCHK_ALL, 40, 0, 0);
	assert_int_equal(run(f, &sqe, ext, sizeof(ext)), NVME_SC_SGL_INVALID_DATA);
}

/* PRACT=0: the host's PI is checked before anything is stored. */
static void test_pract0_checks_before_storing(void **state)
{
	struct fixture *f = *state;
	const uint64_t lba = 100;
	uint8_t *good = ext_buf(f, 1, lba, 4, 0xbeef, 1);
	uint8_t *bad = ext_buf(f, 1, lba, 4, 0xbeef, 2);
	uint8_t back[4 * 520];
	struct nvt_sqe sqe;
	uint16_t status;

	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, lba, 4, PRCHK_ALL, lba, 0xbeef, 0xffff);
	assert_int_equal(run(f, &sqe, good, 4 * 520), 0);

	/* Guard: one data bit flipped in flight, block 2. */
	bad[2 * 520 + 17] ^= 0x10;
	assert_int_equal(run(f, &sqe, bad, 4 * 520), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	assert_int_equal(last_error_lba(f, &status), lba + 2);
	assert_int_equal(status & ~NVT_SC_DNR, NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	/* Blocks 0 and 1 passed, but the write failed: not even they were stored. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, lba, 4, PRCHK_ALL, lba, 0xbeef, 0xffff);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, good, sizeof(back));
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, lba, 4, PRCHK_ALL, lba, 0xbeef, 0xffff);
	bad[2 * 520 + 17] ^= 0x10;
	/* App tag: the command expects 0xcafe under a full mask. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, lba, 4, PRCHK_ALL, lba, 0xcafe, 0xffff);
	assert_int_equal(run(f, &sqe, bad, 4 * 520), NVT_ST_PI_APPTAG & ~NVT_SC_DNR);
	/* ...but a mask that ignores the differing bits passes the app tag check. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, lba, 4, NVT_PI_CHECK_APPTAG, lba, 0xbeee, 0xfff0);
	assert_int_equal(run(f, &sqe, bad, 4 * 520), 0);
	/* Put the good data back, then a misdirected write: right data and PI for
	 * LBA 100, sent to LBA 200. Type 1 catches it by the reference tag. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, lba, 4, PRCHK_ALL, lba, 0xbeef, 0xffff);
	assert_int_equal(run(f, &sqe, good, 4 * 520), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 200, 4, PRCHK_ALL, 200, 0xbeef, 0xffff);
	assert_int_equal(run(f, &sqe, good, 4 * 520), NVT_ST_PI_REFTAG & ~NVT_SC_DNR);
	assert_int_equal(last_error_lba(f, &status), 200);

	/* Nothing of the failed writes reached the medium. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, lba, 4, PRCHK_ALL, lba, 0xbeef, 0xffff);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, good, sizeof(back));
	free(good);
	free(bad);
}

static void test_type2_crc64_and_type3(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = ext_buf(f, 2, 5, 3, 7, 3);
	uint8_t *t3 = ext_buf(f, 3, 9, 2, 7, 4);
	uint8_t data[3 * 4096], back[3 * 4096];
	struct nvt_sqe sqe;

	/* Type 2, 64-bit guard: ref tags start at EILBRT (here the LBA) and increment. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 2, 5, 3, PRCHK_ALL, 5, 7, 0xffff);
	assert_int_equal(run(f, &sqe, buf, 3 * 4112), 0);
	buf[4112 + 4096 + 12] ^= 1;	/* block 1's ref tag (bytes 10..15 of the tuple) */
	assert_int_equal(run(f, &sqe, buf, 3 * 4112), NVT_ST_PI_REFTAG & ~NVT_SC_DNR);
	buf[4112 + 17] ^= 1;		/* and block 1's data: the guard is checked first */
	assert_int_equal(run(f, &sqe, buf, 3 * 4112), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	/* PRACT=1 on the 64-bit guard namespace: data only, 48-bit ref tags. */
	memset(data, 0x5a, sizeof(data));
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 2, 0, 3, NVT_PI_PRACT | PRCHK_ALL, 0x123456789aull, 0, 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 2, 0, 3, NVT_PI_PRACT | PRCHK_ALL, 0x123456789aull, 0, 0);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 2, 0, 3, NVT_PI_PRACT | PRCHK_ALL, 0x123456789bull, 0, 0);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), NVT_ST_PI_REFTAG & ~NVT_SC_DNR);

	/* Type 3: the reference tag is the application's; a different one is no error. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 3, 9, 2, PRCHK_ALL, 9, 7, 0xffff);
	assert_int_equal(run(f, &sqe, t3, 2 * 520), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 3, 50, 2, PRCHK_ALL, 50, 7, 0xffff);
	assert_int_equal(run(f, &sqe, t3, 2 * 520), 0);
	free(buf);
	free(t3);
}

static void test_escape_disables_checks(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = ext_buf(f, 1, 300, 1, 0xffff, 5);
	struct nvt_sqe sqe;

	/* App tag FFFFh (Type 1): no check at all on that block, even a bad guard. */
	buf[3] ^= 0xff;
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 300, 1, PRCHK_ALL, 300, 0, 0);
	assert_int_equal(run(f, &sqe, buf, 520), 0);
	free(buf);
}

static uint64_t scrub_lbas[8];
static enum nvt_pi_err_type scrub_errs[8];
static unsigned int scrub_hits;

static void scrub_bad(uint64_t lba, const struct nvt_pi_err *err, void *arg)
{
	if (scrub_hits < 8) {
		scrub_lbas[scrub_hits] = lba;
		scrub_errs[scrub_hits] = err->type;
	}
	scrub_hits++;
}

/* A flip in stored data or PI is reported on read with its LBA, never served. */
static void test_corruption_at_rest(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns = f->subsys->ns[1];
	uint8_t data[4 * 512], back[4 * 512];
	struct nvt_sqe sqe;
	uint8_t *blk, *md;
	uint16_t status;
	uint64_t nr_bad;

	memset(data, 0xa5, sizeof(data));
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 60, 4, NVT_PI_PRACT | PRCHK_ALL, 60, 0, 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), 0);

	blk = nvt_ram_block(ns, 62, (void **)&md);
	assert_non_null(blk);
	blk[100] ^= 0x04;
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 60, 4, NVT_PI_PRACT | PRCHK_ALL, 60, 0, 0);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	assert_int_equal(last_error_lba(f, &status), 62);
	blk[100] ^= 0x04;
	/* The stored reference tag (last 4 bytes of the tuple) of block 63. */
	nvt_ram_block(ns, 63, (void **)&md);
	md[7] ^= 0x01;
	assert_int_equal(run(f, &sqe, back, sizeof(back)), NVT_ST_PI_REFTAG & ~NVT_SC_DNR);
	assert_int_equal(last_error_lba(f, &status), 63);
	md[7] ^= 0x01;
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));

	/* Scrub walks every block and names exactly the damaged ones. */
	scrub_hits = 0;
	assert_int_equal(nvt_ns_scrub(ns, scrub_bad, NULL, &nr_bad), 0);
	assert_int_equal(nr_bad, 0);
	assert_int_equal(nvt_ns_inject(ns, 61, false, 4000), 0);
	assert_int_equal(nvt_ns_inject(ns, 63, true, 60), 0);	/* a ref tag bit */
	assert_int_equal(nvt_ns_scrub(ns, scrub_bad, NULL, &nr_bad), 0);
	assert_int_equal(nr_bad, 2);
	assert_int_equal(scrub_lbas[0], 61);
	assert_int_equal(scrub_errs[0], NVT_PI_ERR_GUARD);
	assert_int_equal(scrub_lbas[1], 63);
	assert_int_equal(scrub_errs[1], NVT_PI_ERR_REFTAG);
	assert_int_equal(nvt_ns_inject(ns, ns->nblocks, false, 0), -ERANGE);
	assert_int_equal(nvt_ns_inject(ns, 0, true, 64), -EINVAL);
}

/*
 * The 64-bit guard at rest (4096+16 Type 2): a flipped stored bit is found by
 * the read that strips PI (PRACT=1, data only) and by the one that passes it
 * on (PRACT=0, extended LBAs), each naming the block; intact, both deliver
 * exactly what was written.
 */
static void test_crc64_at_rest(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns = f->subsys->ns[2];
	const size_t blk = 4096 + 16;
	uint8_t *good = ext_buf(f, 2, 30, 3, 0x77, 9);
	uint8_t *back = malloc(3 * blk), *data = malloc(3 * 4096), *stored;
	struct nvt_sqe sqe;
	uint16_t status;
	void *md;

	assert_non_null(back);
	assert_non_null(data);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 2, 30, 3, PRCHK_ALL, 30, 0x77, 0xffff);
	assert_int_equal(run(f, &sqe, good, 3 * blk), 0);
	stored = nvt_ram_block(ns, 31, &md);
	assert_non_null(stored);
	stored[4095] ^= 0x20;
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 2, 30, 3, NVT_PI_PRACT | PRCHK_ALL, 30, 0x77, 0xffff);
	assert_int_equal(run(f, &sqe, data, 3 * 4096), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	assert_int_equal(last_error_lba(f, &status), 31);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 2, 30, 3, PRCHK_ALL, 30, 0x77, 0xffff);
	assert_int_equal(run(f, &sqe, back, 3 * blk), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	assert_int_equal(last_error_lba(f, &status), 31);
	stored[4095] ^= 0x20;
	assert_int_equal(run(f, &sqe, back, 3 * blk), 0);
	assert_memory_equal(back, good, 3 * blk);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 2, 30, 3, NVT_PI_PRACT | PRCHK_ALL, 30, 0x77, 0xffff);
	assert_int_equal(run(f, &sqe, data, 3 * 4096), 0);
	for (int b = 0; b < 3; b++)
		assert_memory_equal(data + b * 4096, good + b * blk, 4096);
	free(data);
	free(back);
	free(good);
}

/* 512+16 with PI first: metadata travels even with PRACT=1; the host's extra bytes are kept. */
static void test_large_metadata_pi_first(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = ext_buf(f, 4, 8, 2, 9, 6), back[2 * 528];
	struct nvt_sqe sqe;

	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 4, 8, 2, PRCHK_ALL, 8, 9, 0xffff);
	assert_int_equal(run(f, &sqe, buf, 2 * 528), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 4, 8, 2, NVT_PI_PRACT | PRCHK_ALL, 8, 9, 0xffff);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, buf, sizeof(back));
	/* PI first: a flipped byte after the tuple is not covered by the guard. */
	buf[512 + 12] ^= 1;
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 4, 8, 2, PRCHK_ALL, 8, 9, 0xffff);
	assert_int_equal(run(f, &sqe, buf, 2 * 528), 0);
	free(buf);
}

static int dsm(struct fixture *f, uint32_t nsid, const uint64_t (*r)[2], unsigned int n, bool ad)
{
	struct nvme_dsm_range ranges[256];
	struct nvt_sqe sqe;
	size_t len = nvt_host_sqe_dsm(&sqe, nsid, ranges, r, n, ad);

	return run(f, &sqe, ranges, len);
}

/* Write Zeroes, DSM deallocate, Compare, Verify keep PI consistent, and fail with the right status. */
static void test_zeroes_dsm_compare_verify(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns = f->subsys->ns[1];
	uint8_t data[16 * 512], back[16 * 512], zero[16 * 512] = { 0 };
	struct nvt_sqe sqe;
	uint64_t nr_bad;
	uint16_t status;

	fill_random(data, sizeof(data), 13);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 500, 16, NVT_PI_PRACT | PRCHK_ALL, 500, 0, 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), 0);

	/* Compare: equal, then one byte off (85h), then a stored flip (the PI check comes first). */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_compare, 1, 500, 16, NVT_PI_PRACT | PRCHK_ALL, 500, 0, 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), 0);
	data[3000] ^= 1;
	assert_int_equal(run(f, &sqe, data, sizeof(data)),
			 NVT_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED));
	data[3000] ^= 1;
	assert_int_equal(nvt_ns_inject(ns, 505, false, 7), 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	/* Verify: no data moves, the stored PI is checked; the failing LBA is logged. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_verify, 1, 500, 16, PRCHK_ALL, 500, 0, 0);
	assert_int_equal(run(f, &sqe, NULL, 0), NVT_ST_PI_GUARD & ~NVT_SC_DNR);
	assert_int_equal(last_error_lba(f, &status), 505);
	assert_int_equal(nvt_ns_inject(ns, 505, false, 7), 0);
	assert_int_equal(run(f, &sqe, NULL, 0), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_verify, 1, ns->nblocks - 1, 2, 0, 0, 0, 0);
	assert_int_equal(run(f, &sqe, NULL, 0), NVME_SC_LBA_RANGE);

	/* Write Zeroes with PRACT=1: zeroes with valid PI, read back through every check. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, 1, 504, 8, NVT_PI_PRACT | PRCHK_ALL, 504, 0x77, 0);
	assert_int_equal(run(f, &sqe, NULL, 0), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 500, 16, NVT_PI_PRACT | NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG,
	   500, 0, 0);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, data, 4 * 512);
	assert_memory_equal(back + 4 * 512, zero, 8 * 512);
	assert_memory_equal(back + 12 * 512, data + 12 * 512, 4 * 512);
	/* Write Zeroes past the end; and one as large as the whole namespace. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, 1, ns->nblocks - 4, 8, NVT_PI_PRACT, 0, 0, 0);
	assert_int_equal(run(f, &sqe, NULL, 0), NVME_SC_LBA_RANGE);

	/* DSM deallocate: the ranges read as zeroes and check clean (escape PI). */
	assert_int_equal(dsm(f, 1, (const uint64_t[][2]){ { 500, 2 }, { 514, 2 } }, 2, true), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 500, 16, NVT_PI_PRACT | PRCHK_ALL, 500, 0, 0);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, zero, 2 * 512);
	assert_memory_equal(back + 2 * 512, data + 2 * 512, 2 * 512);
	assert_memory_equal(back + 14 * 512, zero, 2 * 512);
	/* A bad range among good ones: nothing is deallocated. */
	assert_int_equal(dsm(f, 1, (const uint64_t[][2]){ { 502, 1 }, { ns->nblocks, 1 } }, 2, true),
			 NVME_SC_LBA_RANGE);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 502, 1, NVT_PI_PRACT, 502, 0, 0);
	assert_int_equal(run(f, &sqe, back, 512), 0);
	assert_memory_equal(back, data + 2 * 512, 512);
	/* Attributes without AD are hints: accepted, nothing changes. */
	assert_int_equal(dsm(f, 1, (const uint64_t[][2]){ { 502, 1 } }, 1, false), 0);
	/* All 256 ranges at once. */
	{
		uint64_t many[256][2];

		for (int i = 0; i < 256; i++) {
			many[i][0] = 1000 + (uint64_t)i * 4;
			many[i][1] = 2;
		}
		assert_int_equal(dsm(f, 1, (const uint64_t(*)[2])many, 256, true), 0);
	}
	/* Whatever was zeroed, deallocated or written here, scrub finds nothing wrong. */
	assert_int_equal(nvt_ns_scrub(ns, NULL, NULL, &nr_bad), 0);
	assert_int_equal(nr_bad, 0);
	/* A whole-namespace Write Zeroes (2048 blocks, more than any I/O buffer). */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, 1, 0, (uint32_t)ns->nblocks, NVT_PI_PRACT, 0, 0, 0);
	assert_int_equal(run(f, &sqe, NULL, 0), 0);
	assert_int_equal(nvt_ns_scrub(ns, NULL, NULL, &nr_bad), 0);
	assert_int_equal(nr_bad, 0);
}

/* Copy with format-0 descriptors {slba, nlb, eilbrt} to @sdlba; PRINFOR/PRINFOW, destination tags. */
static int copy0(struct fixture *f, uint32_t nsid, const uint64_t (*r)[3], unsigned int n,
		 uint64_t sdlba, uint8_t prinfor, uint8_t prinfow, uint32_t dref)
{
	struct nvt_copy_desc0 d[8];
	struct nvt_sqe sqe;

	memset(d, 0, sizeof(d));
	for (unsigned int i = 0; i < n; i++) {
		d[i].slba = htole64(r[i][0]);
		d[i].nlb = htole16((uint16_t)(r[i][1] - 1));
		d[i].eilbrt = htole32((uint32_t)r[i][2]);
	}
	nvt_host_sqe_init(&sqe, nvme_cmd_copy, nsid);
	sqe.common.cdw10 = htole32((uint32_t)sdlba);
	sqe.common.cdw11 = htole32((uint32_t)(sdlba >> 32));
	sqe.common.cdw12 = htole32((n - 1) | (uint32_t)prinfor << 12 | (uint32_t)prinfow << 26);
	sqe.common.cdw14 = htole32(dref);
	return run(f, &sqe, d, n * sizeof(d[0]));
}

static void test_copy(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns = f->subsys->ns[1];
	uint8_t data[16 * 512], back[16 * 512];
	struct nvt_sqe sqe;
	uint64_t nr_bad;

	fill_random(data, sizeof(data), 29);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 600, 16, NVT_PI_PRACT | PRCHK_ALL, 600, 0, 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), 0);

	/* Three ranges, sources checked with their own ref tags, new PI for the destination. */
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 600, 4, 600 }, { 608, 4, 608 },
							  { 604, 2, 604 } }, 3, 700,
			       NVT_PI_CHECK_GUARD | NVT_PI_CHECK_REFTAG, NVT_PI_PRACT | PRCHK_ALL, 700),
			 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 700, 10, NVT_PI_PRACT | PRCHK_ALL, 700, 0, 0);
	assert_int_equal(run(f, &sqe, back, 10 * 512), 0);
	assert_memory_equal(back, data, 4 * 512);
	assert_memory_equal(back + 4 * 512, data + 8 * 512, 4 * 512);
	assert_memory_equal(back + 8 * 512, data + 4 * 512, 2 * 512);
	/*
	 * A Type 1 source whose checked EILBRT is not its LBA: Invalid
	 * Protection Information, as a Read's ILBRT (and QEMU's Copy), nothing
	 * copied; unchecked, the LBA is the tag and the copy goes through.
	 */
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 600, 4, 601 } }, 1, 800,
			       NVT_PI_CHECK_REFTAG, NVT_PI_PRACT, 800), NVT_ST_INVALID_PI & ~NVT_SC_DNR);
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 600, 4, 601 } }, 1, 800,
			       NVT_PI_CHECK_GUARD, NVT_PI_PRACT, 800), 0);
	/* Keeping the source PI (PRACT=0) at another LBA is a misdirected write for Type 1. */
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 600, 4, 600 } }, 1, 800, 0,
			       NVT_PI_CHECK_REFTAG, 800), NVT_ST_PI_REFTAG & ~NVT_SC_DNR);
	/* Overlapping source and destination: the result is the source as it was. */
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 600, 8, 600 } }, 1, 604, PRCHK_ALL & ~NVT_PI_CHECK_APPTAG,
			       NVT_PI_PRACT | PRCHK_ALL, 604), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 604, 8, NVT_PI_PRACT | PRCHK_ALL, 604, 0, 0);
	assert_int_equal(run(f, &sqe, back, 8 * 512), 0);
	assert_memory_equal(back, data, 8 * 512);
	/* Across the namespace end: a source, or the destination. */
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { ns->nblocks - 2, 4, 0 } }, 1, 0, 0,
			       NVT_PI_PRACT, 0), NVME_SC_LBA_RANGE);
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 600, 4, 600 } }, 1, ns->nblocks - 2,
			       0, NVT_PI_PRACT, 0), NVME_SC_LBA_RANGE);
	/* Descriptor format 1 (48-bit tags) on a 16-bit guard namespace. */
	nvt_host_sqe_init(&sqe, nvme_cmd_copy, 1);
	sqe.common.cdw12 = htole32(1u << 8);
	assert_int_equal(run(f, &sqe, back, 40), NVME_SC_INVALID_FIELD);
	/* Many ranges at once: 8 single blocks gathered to one place. */
	{
		uint64_t many[8][3];

		for (int i = 0; i < 8; i++) {
			many[i][0] = 615 - (uint64_t)i;
			many[i][1] = 1;
			many[i][2] = 615 - (uint64_t)i;
		}
		assert_int_equal(copy0(f, 1, (const uint64_t(*)[3])many, 8, 900, NVT_PI_CHECK_GUARD,
				       NVT_PI_PRACT | PRCHK_ALL, 900), 0);
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 900, 8, NVT_PI_PRACT | PRCHK_ALL, 900, 0, 0);
		assert_int_equal(run(f, &sqe, back, 8 * 512), 0);
		/* LBA 608 comes last; it holds what the overlapping copy put there (old 604). */
		assert_memory_equal(back + 7 * 512, data + 4 * 512, 512);
		assert_memory_equal(back, data + 15 * 512, 512);		/* LBA 615 first */
	}
	assert_int_equal(nvt_ns_scrub(ns, NULL, NULL, &nr_bad), 0);
	assert_int_equal(nr_bad, 0);
}

/*
 * Type 1 ILBRT (NVM Command Set 1.0 §5.2.1.3, and what QEMU's NVMe does):
 * with the ref tag check on, an ILBRT that is not the SLBA's low bits is
 * Invalid Protection Information (SCT 1h / SC 81h); with it off, PRACT=1
 * still stores the LBA's tags, so scrub and later checked reads agree.
 */
static void test_type1_ilbrt(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns = f->subsys->ns[1];
	uint8_t data[4 * 512], back[4 * 512];
	struct nvt_sqe sqe;
	uint64_t nr_bad = 99;

	fill_random(data, sizeof(data), 41);
	/* Checked and wrong: refused before anything is stored. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 300, 4, NVT_PI_PRACT | PRCHK_ALL, 7, 0, 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), NVT_ST_INVALID_PI & ~NVT_SC_DNR);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 300, 4, NVT_PI_PRACT | NVT_PI_CHECK_REFTAG, 301, 0, 0);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), NVT_ST_INVALID_PI & ~NVT_SC_DNR);
	/* Unchecked and wrong: accepted, but the stored tags are the LBAs'. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 300, 4, NVT_PI_PRACT | NVT_PI_CHECK_GUARD, 0xabcdef, 0, 0);
	assert_int_equal(run(f, &sqe, data, sizeof(data)), 0);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_read, 1, 300, 4, NVT_PI_PRACT | PRCHK_ALL, 300, 0, 0);
	assert_int_equal(run(f, &sqe, back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));
	assert_int_equal(nvt_ns_scrub(ns, NULL, NULL, &nr_bad), 0);
	assert_int_equal(nr_bad, 0);
	/* Write Zeroes and a Copy destination follow the same rule. */
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write_zeroes, 1, 310, 2, NVT_PI_PRACT | PRCHK_ALL, 5, 0, 0);
	assert_int_equal(run(f, &sqe, NULL, 0), NVT_ST_INVALID_PI & ~NVT_SC_DNR);
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 300, 4, 300 } }, 1, 320,
			       NVT_PI_CHECK_REFTAG, NVT_PI_PRACT | NVT_PI_CHECK_REFTAG, 321),
			 NVT_ST_INVALID_PI & ~NVT_SC_DNR);
	assert_int_equal(copy0(f, 1, (const uint64_t[][3]){ { 300, 4, 300 } }, 1, 320,
			       NVT_PI_CHECK_REFTAG, NVT_PI_PRACT, 12345), 0);
	assert_int_equal(nvt_ns_scrub(ns, NULL, NULL, &nr_bad), 0);
	assert_int_equal(nr_bad, 0);
}

#ifndef __SANITIZE_THREAD__
struct scrub_writer {
	struct fixture *f;
	atomic_bool stop;
	unsigned int writes;
};

/* PRACT=1 writes of changing data over nsid 1's first 64 blocks until told to stop. */
static void *scrub_writer_run(void *arg)
{
	struct scrub_writer *w = arg;
	static uint8_t buf[64 * 512];
	struct nvt_sqe sqe;
	struct nvt_cqe cqe;

	for (unsigned int i = 0; !atomic_load(&w->stop); i++) {
		uint64_t slba = (i * 8) % 64;

		fill_random(buf, 8 * 512, i + 7);
		nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, slba, 8, NVT_PI_PRACT | PRCHK_ALL, slba, 0,
				   0xffff);
		if (!nvt_loop_exec(w->f->ctrl.io[0], &sqe, buf, 8 * 512, &cqe))
			w->writes++;
	}
	return NULL;
}

static void count_bad(uint64_t lba, const struct nvt_pi_err *err, void *arg)
{
	(void)lba;
	(void)err;
	(*(unsigned int *)arg)++;
}

/*
 * A scrub while a host rewrites the blocks it reads: a block caught between
 * its data and its PI being stored is not corruption. Real damage (a bit
 * flipped at rest) is still found with writes running.
 */
static void test_scrub_under_writes(void **state)
{
	struct fixture *f = *state;
	struct nvt_ns *ns = f->subsys->ns[1];
	struct scrub_writer w = { .f = f };
	unsigned int false_bad = 0, scrubs = 0;
	uint64_t nr_bad;
	static uint8_t blk[8 * 512];
	struct nvt_sqe sqe;
	pthread_t t;

	/* Blocks 1000..1007 written once (never-written blocks carry the escape tuple: not judged). */
	fill_random(blk, sizeof(blk), 99);
	nvt_host_sqe_rw_pi(&sqe, nvme_cmd_write, 1, 1000, 8, NVT_PI_PRACT | PRCHK_ALL, 1000, 0, 0xffff);
	assert_int_equal(run(f, &sqe, blk, sizeof(blk)), 0);
	assert_int_equal(pthread_create(&t, NULL, scrub_writer_run, &w), 0);
	/* The first 64 blocks are rewritten all along; each scrub also reads the other 1984. */
	while (scrubs < 1500 || w.writes < 300) {
		assert_int_equal(nvt_ns_scrub(ns, count_bad, &false_bad, &nr_bad), 0);
		scrubs++;
	}
	/* A flip at rest, past the rewritten range: found exactly, writes still running. */
	assert_int_equal(nvt_ns_inject(ns, 1000, false, 3), 0);
	assert_int_equal(nvt_ns_scrub(ns, NULL, NULL, &nr_bad), 0);
	atomic_store(&w.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(false_bad, 0);
	assert_int_equal(nr_bad, 1);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify_formats, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_pract1_insert_and_strip, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_pract0_checks_before_storing, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_type2_crc64_and_type3, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_escape_disables_checks, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_corruption_at_rest, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_crc64_at_rest, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_large_metadata_pi_first, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_zeroes_dsm_compare_verify, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, nvt_test_teardown),
		cmocka_unit_test_setup_teardown(test_type1_ilbrt, setup, nvt_test_teardown),
#ifndef __SANITIZE_THREAD__
		cmocka_unit_test_setup_teardown(test_scrub_under_writes, setup, nvt_test_teardown),
#endif
	};

	nvt_log_set_level(NVT_LOG_OFF);
	return cmocka_run_group_tests_name("pi_e2e", tests, NULL, NULL);
}
