/* SPDX-License-Identifier: BSD-3-Clause */
/* vhost-user message checks: what each request's payload size, fd count and vring index must be, before anything acts on it. */
#include <errno.h>

#include "vhost_int.h"

const char *nvt_vhost_req_name(uint32_t request)
{
	switch (request) {
	case NVT_VHOST_GET_FEATURES:		return "GET_FEATURES";
	case NVT_VHOST_SET_FEATURES:		return "SET_FEATURES";
	case NVT_VHOST_SET_OWNER:		return "SET_OWNER";
	case NVT_VHOST_RESET_OWNER:		return "RESET_OWNER";
	case NVT_VHOST_SET_MEM_TABLE:		return "SET_MEM_TABLE";
	case NVT_VHOST_SET_VRING_NUM:		return "SET_VRING_NUM";
	case NVT_VHOST_SET_VRING_ADDR:		return "SET_VRING_ADDR";
	case NVT_VHOST_SET_VRING_BASE:		return "SET_VRING_BASE";
	case NVT_VHOST_GET_VRING_BASE:		return "GET_VRING_BASE";
	case NVT_VHOST_SET_VRING_KICK:		return "SET_VRING_KICK";
	case NVT_VHOST_SET_VRING_CALL:		return "SET_VRING_CALL";
	case NVT_VHOST_SET_VRING_ERR:		return "SET_VRING_ERR";
	case NVT_VHOST_GET_PROTOCOL_FEATURES:	return "GET_PROTOCOL_FEATURES";
	case NVT_VHOST_SET_PROTOCOL_FEATURES:	return "SET_PROTOCOL_FEATURES";
	case NVT_VHOST_GET_QUEUE_NUM:		return "GET_QUEUE_NUM";
	case NVT_VHOST_SET_VRING_ENABLE:	return "SET_VRING_ENABLE";
	case NVT_VHOST_RESET_DEVICE:		return "RESET_DEVICE";
	default:				return "unknown";
	}
}

/* @m's payload is exactly @size bytes and came with @fds fds. */
static int nvt_vhost_expect(const struct nvt_vhost_msg *m, uint32_t size, unsigned int fds)
{
	return m->size == size && m->nr_fds == fds ? 0 : -EPROTO;
}

int nvt_vhost_msg_check(const struct nvt_vhost_msg *m)
{
	uint32_t n;

	/* Version 1, and never a reply: the front end sends requests only. */
	if ((m->flags & NVT_VHOST_FLAG_VERSION_MASK) != NVT_VHOST_FLAG_VERSION ||
	    (m->flags & NVT_VHOST_FLAG_REPLY) || m->size > NVT_VHOST_MSG_MAX ||
	    m->nr_fds > NVT_VHOST_MAX_REGIONS)
		return -EPROTO;
	switch (m->request) {
	case NVT_VHOST_GET_FEATURES:
	case NVT_VHOST_SET_OWNER:
	case NVT_VHOST_RESET_OWNER:
	case NVT_VHOST_GET_PROTOCOL_FEATURES:
	case NVT_VHOST_GET_QUEUE_NUM:
	case NVT_VHOST_RESET_DEVICE:
		return nvt_vhost_expect(m, 0, 0);
	case NVT_VHOST_SET_FEATURES:
	case NVT_VHOST_SET_PROTOCOL_FEATURES:
		return nvt_vhost_expect(m, 8, 0);
	case NVT_VHOST_SET_MEM_TABLE:
		if (m->size < 8)
			return -EPROTO;
		n = m->payload.mem.nregions;
		if (!n || n > NVT_VHOST_MAX_REGIONS)
			return -EPROTO;
		return nvt_vhost_expect(m, 8 + n * (uint32_t)sizeof(struct nvt_vhost_mem_region_wire), n);
	case NVT_VHOST_SET_VRING_NUM:
	case NVT_VHOST_SET_VRING_BASE:
	case NVT_VHOST_GET_VRING_BASE:
	case NVT_VHOST_SET_VRING_ENABLE:
		if (nvt_vhost_expect(m, 8, 0) || m->payload.state.index >= NVT_VHOST_VQ_LIMIT)
			return -EPROTO;
		return 0;
	case NVT_VHOST_SET_VRING_ADDR:
		if (nvt_vhost_expect(m, sizeof(struct nvt_vhost_vring_addr_wire), 0) ||
		    m->payload.addr.index >= NVT_VHOST_VQ_LIMIT)
			return -EPROTO;
		return 0;
	case NVT_VHOST_SET_VRING_KICK:
	case NVT_VHOST_SET_VRING_CALL:
	case NVT_VHOST_SET_VRING_ERR:
		if (m->size != 8)
			return -EPROTO;
		/* Bits 0-7 the index, bit 8 "no fd"; nothing else. */
		if (m->payload.u64 & ~(uint64_t)(NVT_VHOST_VRING_IDX_MASK | NVT_VHOST_VRING_NOFD))
			return -EPROTO;
		return nvt_vhost_expect(m, 8, m->payload.u64 & NVT_VHOST_VRING_NOFD ? 0 : 1);
	default:
		return -EOPNOTSUPP;
	}
}
