/* SPDX-License-Identifier: BSD-3-Clause */
/* NVMe reservations: Register/Acquire/Release/Report on one namespace's state, and the lock-free access check of every I/O command. */
#define NVT_LOG_PREFIX "resv: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvt/log.h"
#include "nvt/range_lock.h"
#include "nvt/resv.h"

void nvt_resv_init(struct nvt_resv *r)
{
	memset(r, 0, sizeof(*r));
	atomic_flag_clear(&r->flag);
	atomic_flag_clear(&r->save_flag);
}

/* The holding registrant's index, or -1 (none, or an all-registrants type). */
static int nvt_resv_holder(struct nvt_resv *r)
{
	return atomic_load_explicit(&r->holder, memory_order_relaxed) - 1;
}

static void nvt_hostid_split(const uint8_t hostid[16], uint64_t out[2])
{
	memcpy(&out[0], hostid, 8);
	memcpy(&out[1], hostid + 8, 8);
}

static bool nvt_resv_type_valid(uint8_t t)
{
	return t >= NVME_RESERVATION_RTYPE_WE && t <= NVME_RESERVATION_RTYPE_EAAR;
}

/* Types in which every registrant holds the reservation. */
/* Registrant index of @id, or -1. Readers and writers alike (atomic loads). */
static int nvt_resv_find(struct nvt_resv *r, const uint64_t id[2])
{
	for (int i = 0; i < NVT_RESV_MAX_REGS; i++)
		if (atomic_load_explicit(&r->reg[i].used, memory_order_relaxed) &&
		    atomic_load_explicit(&r->reg[i].hostid[0], memory_order_relaxed) == id[0] &&
		    atomic_load_explicit(&r->reg[i].hostid[1], memory_order_relaxed) == id[1])
			return i;
	return -1;
}

/* The decision, from one consistent view. */
static uint16_t nvt_resv_decide(struct nvt_resv *r, const uint64_t id[2], uint8_t t,
				enum nvt_resv_access acc)
{
	int holder = nvt_resv_holder(r);
	bool registrant;

	if (!t || acc == NVT_RESV_OTHER)
		return NVT_ST_OK;
	if (holder >= 0 &&
	    atomic_load_explicit(&r->reg[holder].hostid[0], memory_order_relaxed) == id[0] &&
	    atomic_load_explicit(&r->reg[holder].hostid[1], memory_order_relaxed) == id[1])
		return NVT_ST_OK;
	switch (t) {
	case NVME_RESERVATION_RTYPE_WE:
		return acc == NVT_RESV_WRITE ? NVT_ST_RESV_CONFLICT : NVT_ST_OK;
	case NVME_RESERVATION_RTYPE_EA:
		return NVT_ST_RESV_CONFLICT;
	default:
		break;
	}
	/* Registrants only / all registrants: a registrant may; others as WE / EA. */
	registrant = nvt_resv_find(r, id) >= 0;
	if (registrant)
		return NVT_ST_OK;
	if (t == NVME_RESERVATION_RTYPE_WERO || t == NVME_RESERVATION_RTYPE_WEAR)
		return acc == NVT_RESV_WRITE ? NVT_ST_RESV_CONFLICT : NVT_ST_OK;
	return NVT_ST_RESV_CONFLICT;
}

uint16_t nvt_resv_check(struct nvt_resv *r, const uint8_t hostid[16], enum nvt_resv_access acc)
{
	uint64_t id[2];
	uint16_t st;
	uint32_t s;

	/* The common case: nothing held, one load. A reservation acquired after it is after this command. */
	if (!atomic_load_explicit(&r->rtype, memory_order_relaxed))
		return NVT_ST_OK;
	nvt_hostid_split(hostid, id);
	for (;;) {
		s = atomic_load_explicit(&r->seq, memory_order_acquire);
		if (s & 1)
			continue;	/* a change of tens of instructions in progress */
		st = nvt_resv_decide(r, id, atomic_load_explicit(&r->rtype, memory_order_relaxed), acc);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&r->seq, memory_order_relaxed) == s)
			return st;
	}
}

/* Writers: one at a time, readers told by the odd sequence count. */
static void nvt_resv_lock(struct nvt_resv *r)
{
	while (atomic_flag_test_and_set_explicit(&r->flag, memory_order_acquire))
		;
	atomic_store_explicit(&r->seq, atomic_load_explicit(&r->seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void nvt_resv_unlock(struct nvt_resv *r)
{
	atomic_store_explicit(&r->seq, atomic_load_explicit(&r->seq, memory_order_relaxed) + 1,
			      memory_order_release);
	atomic_flag_clear_explicit(&r->flag, memory_order_release);
}

static void nvt_resv_event(struct nvt_resv_events *ev, const struct nvt_resv_reg *reg, uint8_t type)
{
	if (!ev || ev->nr >= sizeof(ev->ev) / sizeof(ev->ev[0]))
		return;
	ev->ev[ev->nr].hostid[0] = atomic_load_explicit(&reg->hostid[0], memory_order_relaxed);
	ev->ev[ev->nr].hostid[1] = atomic_load_explicit(&reg->hostid[1], memory_order_relaxed);
	ev->ev[ev->nr].type = type;
	ev->nr++;
}

/* "Reservation released" to every registrant but @except (registrants-only and all-registrants types). */
static void nvt_resv_tell_released(struct nvt_resv *r, int except, struct nvt_resv_events *ev)
{
	for (int i = 0; i < NVT_RESV_MAX_REGS; i++)
		if (i != except && atomic_load_explicit(&r->reg[i].used, memory_order_relaxed))
			nvt_resv_event(ev, &r->reg[i], NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
}

/* The admission word follows the type: bios are checked as they are admitted while one is held. */
static void nvt_resv_admit_update(struct nvt_resv *r, uint8_t t)
{
	if (!r->admit)
		return;
	if (t)
		atomic_fetch_or(r->admit, NVT_RANGE_RESV);
	else
		atomic_fetch_and(r->admit, ~NVT_RANGE_RESV);
}

static void nvt_resv_set(struct nvt_resv *r, uint8_t t, int holder)
{
	atomic_store_explicit(&r->holder, (int16_t)(t && !nvt_resv_all_regs(t) ? holder + 1 : 0),
			      memory_order_relaxed);
	atomic_store_explicit(&r->rtype, t, memory_order_relaxed);
	nvt_resv_admit_update(r, t);
}

static bool nvt_resv_any_registrant(struct nvt_resv *r)
{
	for (int i = 0; i < NVT_RESV_MAX_REGS; i++)
		if (atomic_load_explicit(&r->reg[i].used, memory_order_relaxed))
			return true;
	return false;
}

/* Registrant @i goes; the reservation follows the rules of its type. */
static void nvt_resv_drop(struct nvt_resv *r, int i, struct nvt_resv_events *ev)
{
	uint8_t t = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	bool was_holder = nvt_resv_holder(r) == i;

	atomic_store_explicit(&r->reg[i].used, false, memory_order_relaxed);
	atomic_store_explicit(&r->reg[i].hostid[0], 0, memory_order_relaxed);
	atomic_store_explicit(&r->reg[i].hostid[1], 0, memory_order_relaxed);
	r->reg[i].rkey = 0;
	if (nvt_resv_all_regs(t)) {
		/* Held by all registrants: it ends with the last of them. */
		if (!nvt_resv_any_registrant(r))
			nvt_resv_set(r, 0, -1);
		return;
	}
	if (!was_holder)
		return;
	nvt_resv_set(r, 0, -1);
	if (t == NVME_RESERVATION_RTYPE_WERO || t == NVME_RESERVATION_RTYPE_EARO)
		nvt_resv_tell_released(r, i, ev);
}

static int nvt_resv_slot_free(struct nvt_resv *r)
{
	for (int i = 0; i < NVT_RESV_MAX_REGS; i++)
		if (!atomic_load_explicit(&r->reg[i].used, memory_order_relaxed))
			return i;
	return -1;
}

static uint16_t nvt_resv_do_register(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			   uint64_t crkey, uint64_t nrkey, struct nvt_resv_events *ev)
{
	uint8_t action = cdw10 & 7, cptpl = (uint8_t)(cdw10 >> 30);
	bool iekey = cdw10 & (1u << 3);
	uint16_t st = NVT_ST_OK;
	uint64_t id[2];
	int i;

	/* Persist Through Power Loss only where the state can be kept (RESCAP bit 0); 01b is reserved. */
	if (action > NVME_RESERVATION_RREGA_REPLACE_KEY || cptpl == 1 ||
	    (cptpl == NVME_RESERVATION_CPTPL_PERSIST && !r->ptpl_path))
		return NVT_ST_INVALID_FIELD;
	nvt_hostid_split(hostid, id);
	nvt_resv_lock(r);
	i = nvt_resv_find(r, id);
	switch (action) {
	case NVME_RESERVATION_RREGA_REGISTER_KEY:
		if (i >= 0) {
			/* Registering again with the same key is a no-op; another key is a conflict. */
			st = r->reg[i].rkey == nrkey ? NVT_ST_OK : NVT_ST_RESV_CONFLICT;
			break;
		}
		i = nvt_resv_slot_free(r);
		if (i < 0) {
			nvt_warn_ratelimited("more than %u registrants on a namespace", NVT_RESV_MAX_REGS);
			st = NVT_ST_INTERNAL;
			break;
		}
		r->reg[i].rkey = nrkey;
		atomic_store_explicit(&r->reg[i].hostid[0], id[0], memory_order_relaxed);
		atomic_store_explicit(&r->reg[i].hostid[1], id[1], memory_order_relaxed);
		atomic_store_explicit(&r->reg[i].used, true, memory_order_relaxed);
		break;
	case NVME_RESERVATION_RREGA_UNREGISTER_KEY:
		if (i < 0 || (!iekey && r->reg[i].rkey != crkey)) {
			st = NVT_ST_RESV_CONFLICT;
			break;
		}
		nvt_resv_drop(r, i, ev);
		break;
	default:	/* replace */
		if (i < 0 || (!iekey && r->reg[i].rkey != crkey)) {
			st = NVT_ST_RESV_CONFLICT;
			break;
		}
		r->reg[i].rkey = nrkey;
		break;
	}
	if (!st) {
		if (cptpl == NVME_RESERVATION_CPTPL_CLEAR)
			r->ptpl = false;
		else if (cptpl == NVME_RESERVATION_CPTPL_PERSIST)
			r->ptpl = true;
		r->gen++;
	}
	nvt_resv_unlock(r);
	return st;
}

/*
 * Unregister the registrants whose key is @prkey (every one if !@match_key),
 * @self among them only if @with_self. Return: how many matched.
 */
static unsigned int nvt_resv_preempt_regs(struct nvt_resv *r, int self, bool with_self, bool match_key,
					  uint64_t prkey, struct nvt_resv_events *ev)
{
	unsigned int n = 0;

	for (int i = 0; i < NVT_RESV_MAX_REGS; i++) {
		if (!atomic_load_explicit(&r->reg[i].used, memory_order_relaxed) ||
		    (match_key && r->reg[i].rkey != prkey) || (i == self && !with_self))
			continue;
		n++;
		if (i == self) {
			/* Preempting one's own key: its registration goes too, untold. */
			nvt_resv_drop(r, i, NULL);
			continue;
		}
		nvt_resv_event(ev, &r->reg[i], NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
		nvt_resv_drop(r, i, NULL);
	}
	return n;
}

static uint16_t nvt_resv_preempt(struct nvt_resv *r, int self, uint8_t t, uint64_t prkey,
				 struct nvt_resv_events *ev)
{
	uint8_t held = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	int holder = nvt_resv_holder(r);

	if (!held || (nvt_resv_all_regs(held) && prkey))
		return nvt_resv_preempt_regs(r, self, true, true, prkey, ev) ? NVT_ST_OK :
		       NVT_ST_RESV_CONFLICT;
	if (nvt_resv_all_regs(held)) {
		/* Key 0 against an all-registrants reservation: take it, everyone else goes. */
		nvt_resv_set(r, t, self);
		nvt_resv_preempt_regs(r, self, false, false, 0, ev);
		return NVT_ST_OK;
	}
	if (holder == self && prkey == r->reg[self].rkey) {
		/* The holder changes the type of its own reservation (its own key). */
		nvt_resv_set(r, t, self);
		if (t != held)
			nvt_resv_tell_released(r, self, ev);
		return NVT_ST_OK;
	}
	if (prkey == r->reg[holder].rkey) {
		/* The holder preempted: the reservation is ours first, then its key's registrants go. */
		nvt_resv_set(r, t, self);
		nvt_resv_preempt_regs(r, self, false, true, prkey, ev);
		if (t != held)
			nvt_resv_tell_released(r, self, ev);
		return NVT_ST_OK;
	}
	if (!prkey)
		return NVT_ST_INVALID_FIELD;
	return nvt_resv_preempt_regs(r, self, true, true, prkey, ev) ? NVT_ST_OK : NVT_ST_RESV_CONFLICT;
}

/* Lock @r; the caller's registrant index if its current key is @crkey, else -1 (Reservation Conflict). */
static int nvt_resv_lock_self(struct nvt_resv *r, const uint8_t hostid[16], uint64_t crkey)
{
	uint64_t id[2];
	int self;

	nvt_hostid_split(hostid, id);
	nvt_resv_lock(r);
	self = nvt_resv_find(r, id);
	return self >= 0 && r->reg[self].rkey == crkey ? self : -1;
}

static uint16_t nvt_resv_do_acquire(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			  uint64_t crkey, uint64_t prkey, struct nvt_resv_events *ev)
{
	uint8_t action = cdw10 & 7, t = (uint8_t)(cdw10 >> 8);
	uint16_t st = NVT_ST_OK;
	int self;

	/* IEKEY means nothing to Acquire since NVMe 1.3: refused, as the kernel target does. */
	if ((cdw10 & (1u << 3)) || !nvt_resv_type_valid(t) ||
	    action > NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT)
		return NVT_ST_INVALID_FIELD;
	self = nvt_resv_lock_self(r, hostid, crkey);
	if (self < 0) {
		st = NVT_ST_RESV_CONFLICT;
	} else if (action == NVME_RESERVATION_RACQA_ACQUIRE) {
		uint8_t held = atomic_load_explicit(&r->rtype, memory_order_relaxed);
		int holder = nvt_resv_holder(r);
		bool mine = held && (holder == self || nvt_resv_all_regs(held));

		if (!held)
			nvt_resv_set(r, t, self);
		else if (!mine || held != t)
			st = NVT_ST_RESV_CONFLICT;
	} else {
		/*
		 * Preempt and Abort changes the state as Preempt does; its caller
		 * then completes it only after nvt_ns_fence(): every command the
		 * namespace admitted before the change (any host's: which host a
		 * bio in flight belongs to is no channel's business, and waiting
		 * for a few more commands costs less than tracking hosts on the
		 * I/O path) has finished, so none of the preempted hosts' writes
		 * lands after the Acquire completes. Commands admitted later are
		 * checked against the new state. Aborting them sooner is not done:
		 * backends finish everything, and the wait is for those.
		 */
		st = nvt_resv_preempt(r, self, t, prkey, ev);
		if (!st)
			r->gen++;
	}
	nvt_resv_unlock(r);
	return st;
}

static uint16_t nvt_resv_do_release(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			  uint64_t crkey, struct nvt_resv_events *ev)
{
	uint8_t action = cdw10 & 7, t = (uint8_t)(cdw10 >> 8);
	uint16_t st = NVT_ST_OK;
	int self;

	if ((cdw10 & (1u << 3)) || action > NVME_RESERVATION_RRELA_CLEAR)
		return NVT_ST_INVALID_FIELD;
	self = nvt_resv_lock_self(r, hostid, crkey);
	if (self < 0) {
		st = NVT_ST_RESV_CONFLICT;
	} else if (action == NVME_RESERVATION_RRELA_RELEASE) {
		uint8_t held = atomic_load_explicit(&r->rtype, memory_order_relaxed);
		int holder = nvt_resv_holder(r);

		if (!held || (holder != self && !nvt_resv_all_regs(held)))
			;	/* not the holder: nothing to release, success */
		else if (held != t)
			st = NVT_ST_INVALID_FIELD;
		else {
			nvt_resv_set(r, 0, -1);
			if (held != NVME_RESERVATION_RTYPE_WE && held != NVME_RESERVATION_RTYPE_EA)
				nvt_resv_tell_released(r, self, ev);
		}
	} else {
		/* Clear: the reservation and every registration, the others told they were preempted. */
		nvt_resv_set(r, 0, -1);
		for (int i = 0; i < NVT_RESV_MAX_REGS; i++) {
			if (!atomic_load_explicit(&r->reg[i].used, memory_order_relaxed))
				continue;
			if (i != self)
				nvt_resv_event(ev, &r->reg[i], NVME_RESV_NOTIFY_RNLPT_RESERVATION_PREEMPTED);
			nvt_resv_drop(r, i, NULL);
		}
		r->gen++;
	}
	nvt_resv_unlock(r);
	return st;
}

bool nvt_resv_key(struct nvt_resv *r, const uint8_t hostid[16], uint64_t *key)
{
	uint64_t id[2];
	int i;

	nvt_hostid_split(hostid, id);
	nvt_resv_lock(r);
	i = nvt_resv_find(r, id);
	if (i >= 0)
		*key = r->reg[i].rkey;
	nvt_resv_unlock(r);
	return i >= 0;
}

/* ---- Persist Through Power Loss ---- */

/* What the file holds: the state as one consistent copy. */
struct nvt_resv_image {
	bool ptpl;
	uint32_t gen;
	uint8_t rtype;
	int16_t holder;
	struct {
		bool used;
		uint64_t hostid[2], rkey;
	} reg[NVT_RESV_MAX_REGS];
};

static void nvt_resv_snapshot(struct nvt_resv *r, struct nvt_resv_image *im)
{
	nvt_resv_lock(r);
	im->ptpl = r->ptpl;
	im->gen = r->gen;
	im->rtype = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	im->holder = atomic_load_explicit(&r->holder, memory_order_relaxed);
	for (int i = 0; i < NVT_RESV_MAX_REGS; i++) {
		im->reg[i].used = atomic_load_explicit(&r->reg[i].used, memory_order_relaxed);
		im->reg[i].hostid[0] = atomic_load_explicit(&r->reg[i].hostid[0], memory_order_relaxed);
		im->reg[i].hostid[1] = atomic_load_explicit(&r->reg[i].hostid[1], memory_order_relaxed);
		im->reg[i].rkey = r->reg[i].rkey;
	}
	nvt_resv_unlock(r);
}

/* The directory entry of @path made durable: a rename or unlink is not until its directory is synced. */
static int nvt_resv_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096] = ".";
	int fd, ret = 0;

	if (slash == path) {
		strcpy(dir, "/");
	} else if (slash) {
		if ((size_t)(slash - path) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * @im to the state file (PTPL on), durable before this returns: a
 * temporary file written and synced, renamed over the old one, the
 * directory synced. PTPL off: the file goes, the directory synced (a
 * restart then forgets, as the host asked).
 * Return: 0 or -errno.
 */
static int nvt_resv_write(struct nvt_resv *r, const struct nvt_resv_image *im)
{
	char tmp[4096];
	FILE *f;
	int fd, ret = 0;

	if (!im->ptpl) {
		if (r->ptpl_saved && unlink(r->ptpl_path) && errno != ENOENT)
			return -errno;
		/* Not synced, a crash could bring the old state back at the next start. */
		if (r->ptpl_saved && (ret = nvt_resv_sync_dir(r->ptpl_path)))
			return ret;
		r->ptpl_saved = false;
		return 0;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", r->ptpl_path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		unlink(tmp);
		return ret;
	}
	fprintf(f, "nvt-reservations 1\ngen %" PRIu32 "\nrtype %u\nholder %d\n", im->gen,
		im->rtype, im->holder);
	for (int i = 0; i < NVT_RESV_MAX_REGS; i++)
		if (im->reg[i].used)
			fprintf(f, "reg %d %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\n", i,
				im->reg[i].hostid[0], im->reg[i].hostid[1], im->reg[i].rkey);
	if (fflush(f) || fsync(fd))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, r->ptpl_path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return ret;
	}
	r->ptpl_saved = true;
	return nvt_resv_sync_dir(r->ptpl_path);
}

static void nvt_resv_save_lock(struct nvt_resv *r)
{
	while (atomic_flag_test_and_set_explicit(&r->save_flag, memory_order_acquire))
		;
}

/*
 * A change (status @st) is over: with persistence, the new state goes to
 * the file before the command completes. The write runs outside the
 * state's flag, so I/O checks never wait for it; other Reservation
 * commands on this namespace wait on save_flag meanwhile.
 */
static uint16_t nvt_resv_save_unlock(struct nvt_resv *r, uint16_t st)
{
	struct nvt_resv_image im;
	int ret;

	if (!st && r->ptpl_path) {
		nvt_resv_snapshot(r, &im);
		ret = nvt_resv_write(r, &im);
		if (ret) {
			nvt_warn_ratelimited("%s: cannot keep the reservation state: %s", r->ptpl_path,
					    strerror(-ret));
			st = NVT_ST_INTERNAL;
		}
	}
	atomic_flag_clear_explicit(&r->save_flag, memory_order_release);
	return st;
}

uint16_t nvt_resv_register(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			   uint64_t crkey, uint64_t nrkey, struct nvt_resv_events *ev)
{
	nvt_resv_save_lock(r);
	return nvt_resv_save_unlock(r, nvt_resv_do_register(r, hostid, cdw10, crkey, nrkey, ev));
}

uint16_t nvt_resv_acquire(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			  uint64_t crkey, uint64_t prkey, struct nvt_resv_events *ev)
{
	nvt_resv_save_lock(r);
	return nvt_resv_save_unlock(r, nvt_resv_do_acquire(r, hostid, cdw10, crkey, prkey, ev));
}

uint16_t nvt_resv_release(struct nvt_resv *r, const uint8_t hostid[16], uint32_t cdw10,
			  uint64_t crkey, struct nvt_resv_events *ev)
{
	nvt_resv_save_lock(r);
	return nvt_resv_save_unlock(r, nvt_resv_do_release(r, hostid, cdw10, crkey, ev));
}

bool nvt_resv_ptpl(struct nvt_resv *r)
{
	bool on;

	nvt_resv_lock(r);
	on = r->ptpl;
	nvt_resv_unlock(r);
	return on;
}

uint16_t nvt_resv_set_ptpl(struct nvt_resv *r, bool on)
{
	if (on && !r->ptpl_path)
		return NVT_ST_INVALID_FIELD;
	nvt_resv_save_lock(r);
	nvt_resv_lock(r);
	r->ptpl = on;
	nvt_resv_unlock(r);
	return nvt_resv_save_unlock(r, NVT_ST_OK);
}

/* Line @ln of @path is not what nvtd writes. */
static int nvt_resv_bad(const char *path, unsigned int ln, FILE *f)
{
	nvt_err("%s:%u: not a reservation state nvtd wrote: the namespace is not opened", path, ln);
	if (f)
		fclose(f);
	return -EINVAL;
}

int nvt_resv_persist_open(struct nvt_resv *r, const char *path)
{
	struct nvt_resv_image im;
	unsigned int ln = 0, v, t;
	char line[160];
	bool head = false;
	FILE *f;
	int h, i;

	r->ptpl_path = strdup(path);
	if (!r->ptpl_path)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	memset(&im, 0, sizeof(im));
	im.ptpl = true;
	while (fgets(line, sizeof(line), f)) {
		uint64_t a, b, k;
		char end;

		ln++;
		if (!strchr(line, '\n'))
			return nvt_resv_bad(path, ln, f);
		if (!head) {
			if (sscanf(line, "nvt-reservations %u %c", &v, &end) != 1 || v != 1)
				return nvt_resv_bad(path, ln, f);
			head = true;
		} else if (sscanf(line, "gen %" SCNu32 " %c", &im.gen, &end) == 1) {
		} else if (sscanf(line, "rtype %u %c", &t, &end) == 1) {
			if (t && !nvt_resv_type_valid((uint8_t)t))
				return nvt_resv_bad(path, ln, f);
			im.rtype = (uint8_t)t;
		} else if (sscanf(line, "holder %d %c", &h, &end) == 1) {
			if (h < 0 || h > NVT_RESV_MAX_REGS)
				return nvt_resv_bad(path, ln, f);
			im.holder = (int16_t)h;
		} else if (sscanf(line, "reg %d %" SCNx64 " %" SCNx64 " %" SCNx64 " %c", &i, &a, &b, &k,
				  &end) == 4) {
			if (i < 0 || i >= NVT_RESV_MAX_REGS || im.reg[i].used || (!a && !b))
				return nvt_resv_bad(path, ln, f);
			im.reg[i].used = true;
			im.reg[i].hostid[0] = a;
			im.reg[i].hostid[1] = b;
			im.reg[i].rkey = k;
		} else {
			return nvt_resv_bad(path, ln, f);
		}
	}
	if (ferror(f) || !head)
		return nvt_resv_bad(path, ln, f);
	fclose(f);
	/* A holder that is not a registrant, or one where the type has none, is not ours either. */
	if ((im.holder && (!im.rtype || nvt_resv_all_regs(im.rtype) || !im.reg[im.holder - 1].used)) ||
	    (im.rtype && !im.holder && !nvt_resv_all_regs(im.rtype)))
		return nvt_resv_bad(path, ln, NULL);
	r->ptpl = true;
	r->ptpl_saved = true;
	r->gen = im.gen;
	for (i = 0; i < NVT_RESV_MAX_REGS; i++) {
		atomic_store(&r->reg[i].used, im.reg[i].used);
		atomic_store(&r->reg[i].hostid[0], im.reg[i].hostid[0]);
		atomic_store(&r->reg[i].hostid[1], im.reg[i].hostid[1]);
		r->reg[i].rkey = im.reg[i].rkey;
	}
	atomic_store(&r->holder, im.holder);
	atomic_store(&r->rtype, im.rtype);
	nvt_resv_admit_update(r, im.rtype);
	nvt_info("%s: reservations restored (type %u, generation %" PRIu32 ")", path, im.rtype,
		 im.gen);
	return 0;
}

void nvt_resv_fini(struct nvt_resv *r)
{
	free(r->ptpl_path);
	r->ptpl_path = NULL;
}

uint16_t nvt_resv_report(struct nvt_resv *r, bool eds, void *buf, size_t len)
{
	struct nvme_resv_status *hdr = buf;
	struct nvme_registered_ctrl_ext *e;
	uint16_t nr = 0;
	uint8_t t;
	int holder;

	if (!eds)
		return NVT_ST_HOSTID_FORMAT;
	if (len < sizeof(*hdr))	/* the 64-byte extended header */
		return NVT_ST_INVALID_FIELD;
	memset(buf, 0, len);
	e = hdr->regctl_eds;
	nvt_resv_lock(r);
	t = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	holder = nvt_resv_holder(r);
	hdr->gen = htole32(r->gen);
	hdr->rtype = t;
	hdr->ptpls = r->ptpl;
	for (int i = 0; i < NVT_RESV_MAX_REGS; i++) {
		uint64_t id[2];

		if (!atomic_load_explicit(&r->reg[i].used, memory_order_relaxed))
			continue;
		nr++;
		if ((size_t)((uint8_t *)(e + 1) - (uint8_t *)buf) > len)
			continue;	/* counted, not listed: the host asked for less */
		e->cntlid = htole16(0xffff);
		e->rcsts = t && (i == holder || nvt_resv_all_regs(t));
		e->rkey = htole64(r->reg[i].rkey);
		id[0] = atomic_load_explicit(&r->reg[i].hostid[0], memory_order_relaxed);
		id[1] = atomic_load_explicit(&r->reg[i].hostid[1], memory_order_relaxed);
		memcpy(e->hostid, id, 16);
		e++;
	}
	nvt_resv_unlock(r);
	hdr->regctl[0] = (uint8_t)nr;
	hdr->regctl[1] = (uint8_t)(nr >> 8);
	return NVT_ST_OK;
}
