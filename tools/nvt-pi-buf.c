/* SPDX-License-Identifier: BSD-3-Clause */
/* nvt-pi-buf: write an extended-LBA buffer (data + PI per block) to stdout, correct or deliberately wrong, for io-passthru drills. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/pi.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nvt-pi-buf --lba N [--nlb K] [--bs 512|4096] [--ms BYTES] [--type 1|2|3]\n"
		"                  [--guard crc16|crc64] [--first] [--apptag X] [--reftag X]\n"
		"                  [--seed S] [--corrupt guard|apptag|reftag] > buffer\n"
		"Writes K blocks of (bs + ms) bytes: pseudo-random data (from --seed) and the\n"
		"protection information a PI-capable host would send for LBA N onwards\n"
		"(ref tag = --reftag, default the LBA). --corrupt spoils one field of block 0.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lba", required_argument, NULL, 'l' }, { "nlb", required_argument, NULL, 'n' },
		{ "bs", required_argument, NULL, 'b' }, { "ms", required_argument, NULL, 'm' },
		{ "type", required_argument, NULL, 't' }, { "guard", required_argument, NULL, 'g' },
		{ "first", no_argument, NULL, 'f' }, { "apptag", required_argument, NULL, 'a' },
		{ "reftag", required_argument, NULL, 'r' }, { "seed", required_argument, NULL, 's' },
		{ "corrupt", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct nvt_pi_format fmt = { .type = NVT_PI_TYPE1, .guard = NVT_PI_GUARD_CRC16,
				     .block_size = 512 };
	unsigned long long lba = ~0ull, reftag = ~0ull, seed = 1;
	unsigned int nlb = 1, apptag = 0, ms = 0;
	const char *corrupt = NULL;
	struct nvt_pi_ctx ctx;
	struct iovec iov;
	size_t blk, pi_off;
	uint8_t *buf;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': lba = strtoull(optarg, NULL, 0); break;
		case 'n': nlb = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'b': fmt.block_size = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'm': ms = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 't': fmt.type = (enum nvt_pi_type)strtoul(optarg, NULL, 0); break;
		case 'g': fmt.guard = strcmp(optarg, "crc64") ? NVT_PI_GUARD_CRC16 : NVT_PI_GUARD_CRC64; break;
		case 'f': fmt.pi_first = true; break;
		case 'a': apptag = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'r': reftag = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'c': corrupt = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	fmt.md_size = (uint16_t)(ms ? ms : nvt_pi_size(fmt.guard));
	if (lba == ~0ull || !nlb || nlb > 4096 || nvt_pi_format_validate(&fmt)) {
		usage(stderr);
		return 2;
	}
	blk = fmt.block_size + fmt.md_size;
	buf = calloc(nlb, blk);
	if (!buf)
		return 1;
	for (size_t i = 0; i < blk * nlb; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(seed >> 56);
	}
	nvt_pi_ctx_init(&ctx, &fmt, lba, NVT_PI_CHECK_MASK, reftag == ~0ull ? lba : reftag,
			(uint16_t)apptag, 0xffff);
	iov = (struct iovec){ buf, blk * nlb };
	if (nvt_pi_generate_ext(&ctx, &iov, 1, nlb))
		return 1;
	/* Tuple of block 0: guard, app tag, ref tag, in that order. */
	pi_off = fmt.block_size + (fmt.pi_first ? 0 : fmt.md_size - nvt_pi_size(fmt.guard));
	if (corrupt && !strcmp(corrupt, "guard"))
		buf[pi_off] ^= 0x01;
	else if (corrupt && !strcmp(corrupt, "apptag"))
		buf[pi_off + (fmt.guard == NVT_PI_GUARD_CRC64 ? 8 : 2)] ^= 0x01;
	else if (corrupt && !strcmp(corrupt, "reftag"))
		buf[pi_off + nvt_pi_size(fmt.guard) - 1] ^= 0x01;
	else if (corrupt) {
		usage(stderr);
		return 2;
	}
	if (fwrite(buf, blk, nlb, stdout) != nlb)
		return 1;
	free(buf);
	return 0;
}
