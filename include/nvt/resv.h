/* SPDX-License-Identifier: BSD-3-Clause */
/* NVMe reservations of one namespace: registrants keyed by host identifier, the six types, the access check every I/O command passes. */
#ifndef NVT_RESV_H
#define NVT_RESV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nvt/poll_group.h"
#include "nvt/wire.h"

#define NVT_RESV_MAX_REGS	64	/* registrants per namespace; one more: Internal Error, logged */

/* Reservation Conflict (generic 83h) and Host Identifier Inconsistent Format (generic 18h). */
#define NVT_ST_RESV_CONFLICT	(NVME_SC_RESERVATION_CONFLICT | NVT_SC_DNR)
#define NVT_ST_HOSTID_FORMAT	(NVME_SC_HOSTID_FORMAT | NVT_SC_DNR)

/* What a command does to the media, as the reservation types tell them apart. */
enum nvt_resv_access {
	NVT_RESV_OTHER,		/* not restricted by any type (Reservation commands, Identify...) */
	NVT_RESV_READ,		/* Read, Compare, Verify, Copy's source reads: the read group */
	NVT_RESV_WRITE,		/* Write, Write Zeroes, DSM, Flush, Copy: the write group */
};

/* A registrant. The host identifier is read by every I/O thread's check: atomics. */
struct nvt_resv_reg {
	_Atomic uint64_t hostid[2];	/* the Connect's 128-bit HOSTID; both 0 and !used: free */
	_Atomic bool used;
	uint64_t rkey;			/* writers only */
};

/*
 * One namespace's reservation state. Changed by Reservation commands,
 * one at a time (the flag: tens of instructions, no I/O under it); read
 * by every I/O command's nvt_resv_check() without a lock: with no
 * reservation held that is one relaxed load; otherwise a sequence
 * count tells a reader that raced a change to look again. All zeroes
 * (a calloc'd namespace) is the initial state: nothing registered.
 */
struct nvt_resv {
	atomic_flag flag;
	_Atomic uint32_t seq;		/* odd while a change is being made */
	_Atomic uint8_t rtype;		/* enum nvme_resv_rtype; 0: none held */
	_Atomic int16_t holder;		/* registrant index + 1; 0 none (all-registrants types: every registrant) */
	uint32_t gen;			/* Reservation Report's generation: registrations and preemptions */
	bool ptpl;			/* Persist Through Power Loss state */
	/*
	 * The namespace layer's admission word (range_lock.nr): its
	 * NVT_RANGE_RESV bit is set while a reservation is held, so bios are
	 * checked as they are admitted. Set before the namespace is used;
	 * NULL (a state on its own): none.
	 */
	_Atomic unsigned int *admit;
	/*
	 * Persistence (file namespaces): where the state is kept while PTPL
	 * is on (NULL: PTPL cannot be set). Changes take save_flag around the
	 * change and the file's write, so writes land in the order of the
	 * changes; readers (nvt_resv_check()) never wait for a write.
	 */
	char *ptpl_path;
	bool ptpl_saved;		/* the file exists */
	atomic_flag save_flag;
	struct nvt_resv_reg reg[NVT_RESV_MAX_REGS];
};

/* Notifications a change owes other hosts: Reservation Notification log page types (01h..03h). */
struct nvt_resv_events {
	unsigned int nr;
	struct {
		uint64_t hostid[2];
		uint8_t type;		/* enum nvme_resv_notify_rnlpt */
	} ev[NVT_RESV_MAX_REGS + 1];
};

#define NVT_RESV_NOTIFY_RING	256	/* notifications in flight to the main loop, per subsystem */

/* One notification for the controllers of host @hostid. */
struct nvt_resv_note {
	uint64_t hostid[2];
	uint32_t nsid;
	uint8_t type;			/* enum nvme_resv_notify_rnlpt */
};

/*
 * A subsystem's notifications from I/O threads (producers, one at a time
 * under @lock: a 32-byte copy) to the main loop (the consumer, also under
 * @lock for its copy out). @queued: @msg is in flight; the consumer clears
 * it before draining, so a note pushed after the drain started sends again.
 */
struct nvt_resv_notify {
	atomic_flag lock;
	uint32_t head, tail;		/* under @lock */
	struct nvt_resv_note ring[NVT_RESV_NOTIFY_RING];
	_Atomic bool queued;
	_Atomic unsigned long lost;	/* ring full: notifications dropped */
	struct nvt_pg_msg msg;
};

/*
 * nvtd's own I_T nexuses (vhost controllers, PERSISTENT RESERVE) are known
 * to the reservation by host identifiers that start with these 8 bytes and
 * have byte 8's top three bits set (a variant RFC 9562 reserves: no UUID
 * has it). An NVMe Connect with such a HOSTID is refused, so no host can
 * claim a guest's registrations.
 */
#define NVT_RESV_NEXUS_PREFIX	"nvt-scsi"

static inline bool nvt_resv_hostid_is_nexus(const uint8_t hostid[16])
{
	return !memcmp(hostid, NVT_RESV_NEXUS_PREFIX, 8) && (hostid[8] & 0xe0) == 0xe0;
}

/* Is reservation type @t held by every registrant (WE-AR, EA-AR), not one holder? */
static inline bool nvt_resv_all_regs(uint8_t t)
{
	return t == NVME_RESERVATION_RTYPE_WEAR || t == NVME_RESERVATION_RTYPE_EAAR;
}

void nvt_resv_init(struct nvt_resv *r);

/**
 * nvt_resv_persist_open() - @r persists at @path while PTPL is on: the state
 * kept there (if the file exists) is loaded now. Control path, before the
 * namespace is published. Return: 0, -EINVAL for a file that is not a
 * state nvtd wrote (logged with its line: nothing is guessed, a fenced host
 * must stay fenced), other -errno.
 */
int nvt_resv_persist_open(struct nvt_resv *r, const char *path);

/** nvt_resv_fini() - what nvt_resv_persist_open() allocated. */
void nvt_resv_fini(struct nvt_resv *r);

/** nvt_resv_ptpl() - Get Features 83h: PTPL's state. */
bool nvt_resv_ptpl(struct nvt_resv *r);

/**
 * nvt_resv_set_ptpl() - Set Features 83h. Return: NVT_ST_OK,
 * NVT_ST_INVALID_FIELD (on where nothing can persist), NVT_ST_INTERNAL (the
 * file could not be written; logged).
 */
uint16_t nvt_resv_set_ptpl(struct nvt_resv *r, bool on);

/**
 * nvt_resv_check() - may host @hostid do @acc on the namespace now?
 * Return: NVT_ST_OK or NVT_ST_RESV_CONFLICT. Lock-free; allocation-free.
 */
uint16_t nvt_resv_check(struct nvt_resv *r, const uint8_t hostid[16], enum nvt_resv_access acc);

/**
 * nvt_resv_key() - is host @hostid a registrant of @r, and with which key
 * (SCSI PERSISTENT RESERVE OUT tells "registered nexus" commands from the
 * others)? Takes the state's flag, as writers do: keys are the writers'.
 * Return: true with *@key set, or false.
 */
bool nvt_resv_key(struct nvt_resv *r, const uint8_t hostid[16], uint64_t *key);

/*
 * The Reservation commands, from their CDW10 and data (keys already
 * little-endian decoded). Each returns an NVMe status; @ev collects what
 * other hosts must be told (the caller logs it to their controllers and
 * raises the AEN).
 */
uint16_t nvt_resv_register(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			   uint64_t crkey, uint64_t nrkey, struct nvt_resv_events *ev);
uint16_t nvt_resv_acquire(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			  uint64_t crkey, uint64_t prkey, struct nvt_resv_events *ev);
uint16_t nvt_resv_release(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			  uint64_t crkey, struct nvt_resv_events *ev);

/**
 * nvt_resv_report() - the Reservation Status data structure into @buf
 * (@len bytes, what the host's NUMD asked for; registrants that do not
 * fit are counted, not listed). Only the extended structure (@eds): over
 * fabrics host identifiers are 128-bit. Registrants' CNTLID is FFFFh
 * (dynamic controllers: a host's registration is not one controller's).
 * Return: NVT_ST_OK, NVT_ST_HOSTID_FORMAT (!eds), NVT_ST_INVALID_FIELD
 * (@len below the 64-byte header).
 */
uint16_t nvt_resv_report(struct nvt_resv *r, bool eds, void *buf, size_t len);

#endif /* NVT_RESV_H */
