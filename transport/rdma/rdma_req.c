/* SPDX-License-Identifier: BSD-3-Clause */
/* The RDMA request slot state machine, SGL mapping and the data chunk pool: pure logic, no verbs, so unit tests drive every move. */
#define NVT_LOG_PREFIX "rdma: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvt/log.h"
#include "rdma_internal.h"

static const char *const nvt_rdma_state_names[] = {
	[NVT_RDMA_REQ_FREE] = "FREE",
	[NVT_RDMA_REQ_NEW] = "NEW",
	[NVT_RDMA_REQ_NEED_BUFFER] = "NEED_BUFFER",
	[NVT_RDMA_REQ_XFER_H2C] = "XFER_H2C",
	[NVT_RDMA_REQ_EXECUTING] = "EXECUTING",
	[NVT_RDMA_REQ_COMPLETING] = "COMPLETING",
};

const char *nvt_rdma_req_state_name(enum nvt_rdma_req_state s)
{
	if ((unsigned int)s >= sizeof(nvt_rdma_state_names) / sizeof(nvt_rdma_state_names[0]))
		return "?";
	return nvt_rdma_state_names[s];
}

/*
 * Allowed moves. Every state may fall back to FREE: a queue that is going
 * away returns slots without sending anything.
 *   FREE -> NEW                 a capsule arrived
 *   NEW -> NEED_BUFFER          the pool is short (or others wait): in line
 *   NEW, NEED_BUFFER -> XFER_H2C     write with keyed data: RDMA READ posted
 *   NEW, NEED_BUFFER -> EXECUTING    no data, in-capsule data, or a read
 *   NEW -> COMPLETING           failed in parse: the response goes at once
 *   XFER_H2C -> EXECUTING       READ done
 *   EXECUTING -> COMPLETING     response (and read data) posted
 *   * -> FREE                   SEND done, or the queue is dying
 */
int nvt_rdma_req_set_state(struct nvt_rdma_req *r, enum nvt_rdma_req_state next)
{
	enum nvt_rdma_req_state cur = r->state;
	bool ok;

	switch (next) {
	case NVT_RDMA_REQ_FREE:
		ok = cur != NVT_RDMA_REQ_FREE;
		break;
	case NVT_RDMA_REQ_NEW:
		ok = cur == NVT_RDMA_REQ_FREE;
		break;
	case NVT_RDMA_REQ_NEED_BUFFER:
		ok = cur == NVT_RDMA_REQ_NEW;
		break;
	case NVT_RDMA_REQ_XFER_H2C:
		ok = cur == NVT_RDMA_REQ_NEW || cur == NVT_RDMA_REQ_NEED_BUFFER;
		break;
	case NVT_RDMA_REQ_EXECUTING:
		ok = cur == NVT_RDMA_REQ_NEW || cur == NVT_RDMA_REQ_NEED_BUFFER ||
		     cur == NVT_RDMA_REQ_XFER_H2C;
		break;
	case NVT_RDMA_REQ_COMPLETING:
		ok = cur == NVT_RDMA_REQ_NEW || cur == NVT_RDMA_REQ_EXECUTING;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok) {
		nvt_err("request slot: bad transition %s -> %s", nvt_rdma_req_state_name(cur),
			nvt_rdma_req_state_name(next));
		return -EINVAL;
	}
	r->state = next;
	return 0;
}


void nvt_rdma_req_reset(struct nvt_rdma_req *r)
{
	r->remote_addr = 0;
	r->rkey = 0;
	r->invalidate = false;
	r->in_capsule = false;
	r->h2c = false;
	r->c2h = false;
	r->md_len = 0;
	r->need = 0;
	r->data_wrs = 0;
	r->zc = false;
	r->zc_posted = false;
	r->zc_lkey = 0;
	r->icd_iov.iov_base = NULL;
	r->icd_iov.iov_len = 0;
	r->req.cmd = &r->sqe;
	r->req.cqe = r->cqe;
	r->req.iov = r->iov;
	r->req.iov_cnt = 0;
	r->req.transfer_len = 0;
	r->req.md_buf = r->md_scratch;
	r->req.md_buf_len = sizeof(r->md_scratch);
}

uint16_t nvt_rdma_map_sgl(struct nvt_rdma_req *r, uint32_t icdata_len, uint32_t max_len,
			  bool io_queue)
{
	struct nvt_req *req = &r->req;
	const struct nvt_sgl_desc *sgl = &req->cmd->common.dptr;
	uint8_t type = sgl->keyed.type >> 4, subtype = sgl->keyed.type & 0xf;
	uint64_t addr = le64toh(sgl->addr);
	uint32_t len, received;

	req->transfer_len = 0;
	switch (type) {
	case NVT_SGL_KEYED_DATA:
		if (subtype != NVT_SGL_SUB_ADDRESS && subtype != NVT_SGL_SUB_INVALIDATE)
			goto bad_type;
		/* 24 bits: at most 16 MiB - 1, no room to wrap. */
		len = sgl->keyed.length[0] | (uint32_t)sgl->keyed.length[1] << 8 |
		      (uint32_t)sgl->keyed.length[2] << 16;
		/* NVMe 2.0 §5.17.2.1 (MDTS): a larger transfer is an invalid field. */
		if (len > max_len) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			return NVT_ST_INVALID_FIELD;
		}
		/* The HCA checks remote_addr + len against the host's MR: a wrap fails there. */
		r->remote_addr = addr;
		r->rkey = (uint32_t)sgl->keyed.key[0] | (uint32_t)sgl->keyed.key[1] << 8 |
			  (uint32_t)sgl->keyed.key[2] << 16 | (uint32_t)sgl->keyed.key[3] << 24;
		r->invalidate = subtype == NVT_SGL_SUB_INVALIDATE;
		req->transfer_len = len;
		return NVT_ST_OK;
	case NVT_SGL_DATA_BLOCK:
		if (subtype != NVT_SGL_SUB_OFFSET)
			goto bad_type;
		len = le32toh(sgl->unkeyed.length);
		/* In-capsule data: host-to-controller only, I/O queues only, inside what arrived. */
		if (!io_queue || !nvt_req_is_write(req)) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			return NVT_ST_INVALID_FIELD;
		}
		/* A 64-bit offset and a 32-bit length: compared by differences, never summed. */
		received = r->recv->byte_len > sizeof(struct nvt_sqe) ?
			   r->recv->byte_len - (uint32_t)sizeof(struct nvt_sqe) : 0;
		if (received > icdata_len)
			received = icdata_len;
		if (addr > received || len > received - addr) {
			req->error_loc = offsetof(struct nvt_sqe_common, dptr);
			return NVT_ST_SGL_INVALID_OFF;
		}
		r->in_capsule = true;
		r->icd_iov.iov_base = r->recv->buf + sizeof(struct nvt_sqe) + addr;
		r->icd_iov.iov_len = len;
		req->iov = &r->icd_iov;
		req->iov_cnt = 1;
		req->transfer_len = len;
		return NVT_ST_OK;
	default:
		break;
	}
bad_type:
	req->error_loc = offsetof(struct nvt_sqe_common, dptr);
	return NVT_ST_SGL_INVALID_TYPE;
}

void nvt_rdma_req_plan(struct nvt_rdma_req *r)
{
	struct nvt_req *req = &r->req;
	uint64_t bytes = 0;

	r->h2c = false;
	r->c2h = false;
	r->md_len = 0;
	r->need = 0;
	/* nvt_req_execute() refuses a transfer that does not fit the command: nothing moves. */
	if (!nvt_req_transfer_ok(req))
		return;
	if (!r->in_capsule && req->data_len) {
		if (nvt_req_is_write(req))
			r->h2c = true;
		else
			r->c2h = true;
		bytes = req->data_len;
	}
	/* PI scratch the core needs (io.c) beyond the slot's own: in chunks behind the data. */
	if (req->md_len > sizeof(r->md_scratch)) {
		r->md_len = req->md_len;
		bytes += r->md_len;
	}
	r->need = nvt_rdma_chunks_for(bytes);
}

bool nvt_rdma_zc_write(struct nvt_rdma_req *r, uint8_t *base, size_t len)
{
	struct nvt_req *req = &r->req;
	const struct nvt_ns *ns = req->ns;
	uint64_t off;

	if (!r->h2c || r->in_capsule || r->md_len || !ns || !base ||
	    req->cmd->common.opcode != nvme_cmd_write ||
	    (req->cmd->common.flags & NVT_SQE_FUSE_MASK) || (req->flags & NVT_REQ_FUSED_SECOND) ||
	    req->bio.op != NVT_BIO_WRITE || (req->bio.flags & NVT_BIO_EXT) ||
	    ns->md_size || ns->pi.type || req->md_len)
		return false;
	/* Parse checked the range against the namespace; the memory is checked here all the same. */
	if (req->bio.slba >= (uint64_t)len >> ns->lba_shift)
		return false;
	off = req->bio.slba << ns->lba_shift;
	if (req->data_len != (uint64_t)req->bio.nlb << ns->lba_shift || req->data_len > len - off)
		return false;
	r->iov[0].iov_base = base + off;
	r->iov[0].iov_len = req->data_len;
	req->iov = r->iov;
	req->iov_cnt = 1;
	req->bio.flags |= NVT_BIO_IN_PLACE;	/* the READ lands over time: overlapping bios wait */
	r->zc = true;
	r->h2c = false;
	r->need = 0;
	return true;
}

/* [@off, @off + @len) of @r's chunks, as iovecs into @iov. Return: iovecs used. */
static unsigned int nvt_rdma_pieces(const struct nvt_rdma_req *r, const struct nvt_rdma_pool *p,
				    uint64_t off, uint64_t len, struct iovec *iov)
{
	unsigned int n = 0;

	while (len) {
		uint32_t in = (uint32_t)(off % NVT_RDMA_CHUNK);
		uint64_t piece = NVT_RDMA_CHUNK - in;

		if (piece > len)
			piece = len;
		iov[n].iov_base = p->base + (size_t)r->chunks[off / NVT_RDMA_CHUNK] * NVT_RDMA_CHUNK + in;
		iov[n].iov_len = (size_t)piece;
		n++;
		off += piece;
		len -= piece;
	}
	return n;
}

unsigned int nvt_rdma_req_layout(struct nvt_rdma_req *r, const struct nvt_rdma_pool *p)
{
	uint32_t data = r->h2c || r->c2h ? r->req.data_len : 0;
	unsigned int n = nvt_rdma_pieces(r, p, 0, data, r->iov);

	if (!r->in_capsule) {
		r->req.iov = r->iov;
		r->req.iov_cnt = n;
	}
	/* The core's PI scratch lives right behind the data (nvt_req_execute() uses md_iov). */
	if (r->md_len) {
		r->req.md_iov = r->iov + n;
		r->req.md_iov_cnt = nvt_rdma_pieces(r, p, data, r->md_len, r->iov + n);
	}
	return n;
}

int nvt_rdma_pool_init(struct nvt_rdma_pool *p, uint8_t *base, uint32_t nr_chunks)
{
	memset(p, 0, sizeof(*p));
	p->free = calloc(nr_chunks ? nr_chunks : 1, sizeof(*p->free));
	if (!p->free)
		return -ENOMEM;
	p->base = base;
	p->nr_chunks = nr_chunks;
	/* Chunk 0 on top: an idle target keeps touching the same few pages. */
	for (uint32_t i = 0; i < nr_chunks; i++)
		p->free[i] = nr_chunks - 1 - i;
	p->nr_free = nr_chunks;
	return 0;
}

void nvt_rdma_pool_fini(struct nvt_rdma_pool *p)
{
	free(p->free);
	p->free = NULL;
	p->nr_free = p->nr_chunks = 0;
}

bool nvt_rdma_pool_get(struct nvt_rdma_pool *p, uint32_t *ids, uint32_t n)
{
	if (n > p->nr_free)
		return false;
	for (uint32_t i = 0; i < n; i++)
		ids[i] = p->free[--p->nr_free];
	return true;
}

void nvt_rdma_pool_put(struct nvt_rdma_pool *p, const uint32_t *ids, uint32_t n)
{
	/* Reverse order: the next get hands out the same chunks in the same order. */
	for (uint32_t i = n; i-- > 0;) {
		if (p->nr_free >= p->nr_chunks || ids[i] >= p->nr_chunks) {
			nvt_err("data pool: chunk %u returned twice or foreign", ids[i]);
			continue;
		}
		p->free[p->nr_free++] = ids[i];
	}
}

uint32_t nvt_rdma_pool_cap(const struct nvt_rdma_pool *p, bool connected, uint32_t max_chunks)
{
	uint32_t m = p->max_cmd > max_chunks ? p->max_cmd : max_chunks;
	uint32_t unconnected = p->nr_queues > p->nr_connected ? p->nr_queues - p->nr_connected : 0;
	uint64_t reserved = (uint64_t)m + (uint64_t)unconnected * NVT_RDMA_CONNECT_CHUNKS;
	uint32_t share = 0;

	if (!connected)
		return NVT_RDMA_CONNECT_CHUNKS;
	if (p->nr_chunks > reserved)
		share = (uint32_t)((p->nr_chunks - reserved) / (p->nr_connected ? p->nr_connected : 1));
	return share > max_chunks ? share : max_chunks;
}
