/*-------------------------------------------------------------------------
 *
 * backend_state.c
 *		Read every backend's status from shared memory, once per call.
 *
 * pg_stat_activity goes through pgstat_read_current_status(), which copies
 * every slot in full (query text included) into a snapshot kept for the
 * rest of the transaction, and then looks each backend's PGPROC up with a
 * linear search of the proc array.  We attach to the same shared array and
 * copy only the fields the calling view asks for, and find the PGPROC of a
 * backend through its status slot in O(1) (compat.h).
 *
 * Concurrency: PgBackendStatus slots are read with the st_changecount
 * protocol of backend_status.h (no lock; retry while a writer is active).
 * PGPROC fields (xid, xmin, wait_event_info, statusFlags) are read without
 * a lock, exactly as pg_stat_activity does: each is a single aligned word,
 * so a value may be stale but never torn.  A PGPROC is used only when its
 * pid still matches the status slot, so a slot reused by a new backend in
 * between is never mixed up with the old one.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "compat.h"
#include "observe/backend_state.h"

/* core's status array, attached to by name on first use */
static PgBackendStatus *cw_status_array = NULL;

/*
 * The array a reading fills is kept from call to call.  At 2,000 backends it
 * is over half a megabyte, and allocating it afresh each time cost more (in
 * page faults, as malloc grew and trimmed the heap) than reading the
 * backends did.  One reading at a time owns it, until cw_release_backends();
 * a reading that finds it owned (a view queried from a trigger fired inside
 * an action function, say) allocates its own.  The end of the transaction
 * releases it too, so that an error cannot keep it owned.
 */
static CwBackend *cw_kept_array = NULL;
static bool cw_kept_array_owned = false;
static bool cw_xact_callback_registered = false;

static void cw_attach_status_array(void);
static CwBackend *cw_take_backend_array(CwBackendSet *set, int nslots);
static void cw_release_at_xact_end(XactEvent event, void *arg);
static bool cw_copy_status_slot(volatile PgBackendStatus *slot, CwBackend *be,
								int flags, char *query_buf);
static void cw_finish_backend(int slot_index, CwBackend *be, int flags,
							  char *query_buf);
static void cw_read_proc(int slot_index, CwBackend *be);
static void cw_build_pid_index(CwBackendSet *set);
static bool cw_caller_sees_role(Oid roleid);
static const NameData *cw_cached_name(CwNameCache *cache, Oid oid,
									  bool is_database);

/*
 * Attach to the "Backend Status Array" core created at start-up.
 *
 * ShmemInitStruct() finds the existing struct by name, and refuses with an
 * error if the size we expect differs from what core allocated, so a layout
 * change in a future minor release cannot make us read garbage.
 */
static void
cw_attach_status_array(void)
{
	bool		found;
	Size		size;
	PgBackendStatus *array;

	if (cw_status_array != NULL)
		return;

	size = mul_size(sizeof(PgBackendStatus), CW_NUM_STATUS_SLOTS);
	array = (PgBackendStatus *) ShmemInitStruct("Backend Status Array",
												size, &found);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("backend status array not found in shared memory")));
	cw_status_array = array;
}

static void
cw_release_at_xact_end(XactEvent event, void *arg)
{
	cw_kept_array_owned = false;
}

static CwBackend *
cw_take_backend_array(CwBackendSet *set, int nslots)
{
	if (cw_kept_array_owned)
		return palloc(sizeof(CwBackend) * nslots);

	if (!cw_xact_callback_registered)
	{
		RegisterXactCallback(cw_release_at_xact_end, NULL);
		cw_xact_callback_registered = true;
	}
	/* the number of slots is fixed for the life of the server */
	if (cw_kept_array == NULL)
		cw_kept_array = MemoryContextAlloc(TopMemoryContext,
										   sizeof(CwBackend) * nslots);
	cw_kept_array_owned = true;
	set->uses_kept_array = true;
	return cw_kept_array;
}

/* The caller is done with the set (its result rows hold copies) */
void
cw_release_backends(CwBackendSet *set)
{
	if (set->uses_kept_array)
	{
		cw_kept_array_owned = false;
		set->uses_kept_array = false;
		set->backends = NULL;
		set->nbackends = 0;
	}
}

/*
 * Read the status of every backend.
 *
 * The result lives in CurrentMemoryContext, but for the array of backends
 * (see cw_take_backend_array): call cw_release_backends() when done.  Ages
 * are measured against one clock reading taken after all slots were read,
 * so that no age is negative.
 */
CwBackendSet *
cw_read_backends(int flags)
{
	CwBackendSet *set;
	int			nslots = CW_NUM_STATUS_SLOTS;
	char	   *query_buf = NULL;
	int			i;

	cw_attach_status_array();

	set = palloc0(sizeof(CwBackendSet));
	set->backends = cw_take_backend_array(set, nslots);
	if (flags & (CW_READ_QUERY | CW_READ_QUERY_IN_XACT))
		query_buf = palloc(pgstat_track_activity_query_size);

	for (i = 0; i < nslots; i++)
	{
		CwBackend  *be = &set->backends[set->nbackends];

		/* unused slots are the common case on a large server: skip cheaply */
		if (cw_status_array[i].st_procpid == 0)
			continue;
		if (!cw_copy_status_slot(&cw_status_array[i], be, flags, query_buf))
			continue;

		cw_finish_backend(i, be, flags, query_buf);
		set->nbackends++;
	}

	set->now = GetCurrentTimestamp();
	set->age_base = GetStableLatestTransactionId();

	cw_build_pid_index(set);
	return set;
}

/*
 * Re-read one backend's live status by pid: the re-check right before a
 * signal.  slot_hint, if not -1, is where the backend was last seen; it is
 * tried first, so a re-check costs one slot instead of a scan.  Returns
 * false if no backend has that pid.
 */
bool
cw_read_one_backend(int pid, int slot_hint, int flags, CwBackend *be)
{
	char	   *query_buf = NULL;
	int			nslots = CW_NUM_STATUS_SLOTS;
	int			i;

	cw_attach_status_array();
	if (flags & (CW_READ_QUERY | CW_READ_QUERY_IN_XACT))
		query_buf = palloc(pgstat_track_activity_query_size);

	for (i = -1; i < nslots; i++)
	{
		int			slot = (i < 0) ? slot_hint : i;

		if (slot < 0 || slot >= nslots || (i >= 0 && i == slot_hint))
			continue;
		/* a cheap unlocked look at the pid before the full protocol */
		if (cw_status_array[slot].st_procpid != pid)
			continue;
		if (!cw_copy_status_slot(&cw_status_array[slot], be, flags, query_buf) ||
			be->pid != pid)
			continue;
		cw_finish_backend(slot, be, flags, query_buf);
		return true;
	}
	return false;
}

/* Fill in what the status slot does not hold */
static void
cw_finish_backend(int slot_index, CwBackend *be, int flags, char *query_buf)
{
	be->slot = slot_index;
	be->visible = cw_caller_sees_role(be->userid);
	be->query = be->have_query ? pgstat_clip_activity(query_buf) : NULL;
	be->have_proc = false;
	be->xid = InvalidTransactionId;
	be->xmin = InvalidTransactionId;
	be->wait_event_info = 0;
	be->status_flags = 0;
	be->proc_roleid = InvalidOid;
	be->blocked_by = NIL;
	be->blocking = NIL;
	be->locks_held = 0;
	if (flags & CW_READ_PROC)
		cw_read_proc(slot_index, be);
}

/*
 * Copy one status slot with the changecount protocol.  Returns false for an
 * unused slot or one the caller filtered out.
 */
static bool
cw_copy_status_slot(volatile PgBackendStatus *slot, CwBackend *be, int flags,
					char *query_buf)
{
	for (;;)
	{
		int			before_changecount;
		int			after_changecount;
		bool		wanted;

		pgstat_begin_read_activity(slot, before_changecount);

		be->pid = slot->st_procpid;
		be->backend_type = slot->st_backendType;
		wanted = be->pid != 0 &&
			(!(flags & CW_READ_CLIENTS_ONLY) || be->backend_type == B_BACKEND);
		if (wanted)
		{
			be->datid = slot->st_databaseid;
			be->userid = slot->st_userid;
			be->state = slot->st_state;
			be->backend_start = slot->st_proc_start_timestamp;
			be->xact_start = slot->st_xact_start_timestamp;
			be->query_start = slot->st_activity_start_timestamp;
			be->state_change = slot->st_state_start_timestamp;
			memcpy(&be->client_addr, (char *) &slot->st_clientaddr,
				   sizeof(SockAddr));
			strlcpy(be->application_name, (char *) slot->st_appname,
					NAMEDATALEN);

			/*
			 * Query text is the costliest field: copy it only for the
			 * sessions the caller may return.  A session in a transaction
			 * may be idle in it with xact_start already cleared (an exiting
			 * backend aborts its transaction before it reports anything
			 * else), so the state counts as much as the timestamp.
			 */
			be->have_query = query_buf != NULL &&
				((flags & CW_READ_QUERY) ||
				 be->xact_start != 0 ||
				 be->state == STATE_IDLEINTRANSACTION ||
				 be->state == STATE_IDLEINTRANSACTION_ABORTED);
			if (be->have_query)
				strlcpy(query_buf, (char *) slot->st_activity_raw,
						pgstat_track_activity_query_size);
		}

		pgstat_end_read_activity(slot, after_changecount);

		if (pgstat_read_activity_complete(before_changecount,
										  after_changecount))
			return wanted;

		/* a writer was active; make sure we can be interrupted if it spins */
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Fetch the PGPROC fields of a backend, found through its status slot.
 */
static void
cw_read_proc(int slot_index, CwBackend *be)
{
	PGPROC	   *proc = cw_proc_of_status_slot(slot_index, be->pid);

	if (proc == NULL || proc->pid != be->pid)
		return;

	cw_proc_xids(proc, &be->xid, &be->xmin, &be->status_flags);
	be->wait_event_info = *((volatile uint32 *) &proc->wait_event_info);
	be->proc_roleid = proc->roleId;
	be->have_proc = true;
}

/* Index the set by pid, for the lock graph and for lookups */
static void
cw_build_pid_index(CwBackendSet *set)
{
	int			size = 16;
	int			i;

	while (size < set->nbackends * 2)
		size *= 2;
	set->pid_index_size = size;
	set->pid_index = palloc(sizeof(int) * size);
	memset(set->pid_index, -1, sizeof(int) * size);

	for (i = 0; i < set->nbackends; i++)
	{
		uint32		h = (uint32) set->backends[i].pid & (size - 1);

		while (set->pid_index[h] >= 0)
			h = (h + 1) & (size - 1);
		set->pid_index[h] = i;
	}
}

CwBackend *
cw_backend_by_pid(CwBackendSet *set, int pid)
{
	uint32		mask = set->pid_index_size - 1;
	uint32		h = (uint32) pid & mask;

	while (set->pid_index[h] >= 0)
	{
		CwBackend  *be = &set->backends[set->pid_index[h]];

		if (be->pid == pid)
			return be;
		h = (h + 1) & mask;
	}
	return NULL;
}

/*
 * pg_stat_activity's rule (HAS_PGSTAT_PERMISSIONS in pgstatfuncs.c): the
 * details of a session are shown to roles that have the privileges of its
 * role, or pg_read_all_stats (how membership in that one counts changed in
 * 15: compat.h).  has_privs_of_role() follows inherited membership only,
 * and caches the caller's memberships.
 */
static bool
cw_caller_sees_role(Oid roleid)
{
	Oid			me = GetUserId();

	return cw_has_read_all_stats(me) || has_privs_of_role(me, roleid);
}

bool
cw_is_client_backend(const CwBackend *be)
{
	return be->backend_type == B_BACKEND;
}

/*
 * The transaction ID with which a backend holds back the xmin horizon: the
 * older of its xid and its xmin.  Backends running VACUUM or logical
 * decoding are skipped by ComputeXidHorizons() for the data horizon (the
 * latter holds the catalogs through its slot instead), and so here.
 */
TransactionId
cw_backend_horizon_xid(const CwBackend *be)
{
	TransactionId xmin;

	if (!be->have_proc)
		return InvalidTransactionId;

	if (be->status_flags & (PROC_IN_VACUUM | PROC_IN_LOGICAL_DECODING))
		return InvalidTransactionId;

	xmin = be->xmin;

	if (!TransactionIdIsValid(be->xid))
		return xmin;
	if (!TransactionIdIsValid(xmin))
		return be->xid;
	return TransactionIdPrecedes(be->xid, xmin) ? be->xid : xmin;
}

bool
cw_waits_on_lock(const CwBackend *be)
{
	return be->have_proc &&
		(be->wait_event_info & 0xFF000000) == PG_WAIT_LOCK;
}

bool
cw_is_idle_in_transaction(const CwBackend *be)
{
	return be->state == STATE_IDLEINTRANSACTION ||
		be->state == STATE_IDLEINTRANSACTION_ABORTED;
}

/*
 * age(xid) against the age base of a reading: false for an invalid xid;
 * permanent xids are infinitely old.
 */
bool
cw_xid_age(TransactionId age_base, TransactionId xid, int32 *age)
{
	if (!TransactionIdIsValid(xid))
		return false;
	if (!TransactionIdIsNormal(xid))
		*age = PG_INT32_MAX;
	else
		*age = (int32) (age_base - xid);
	return true;
}

/*
 * Look a name up through a per-call memo: a server has few databases and
 * login roles compared to its backends.
 */
static const NameData *
cw_cached_name(CwNameCache *cache, Oid oid, bool is_database)
{
	NameData   *name = NULL;
	char	   *str;
	int			i;

	if (!OidIsValid(oid))
		return NULL;

	for (i = 0; i < cache->nentries; i++)
	{
		if (cache->oids[i] == oid)
			return cache->names[i];
	}

	str = is_database ? get_database_name(oid) : GetUserNameFromId(oid, true);
	if (str != NULL)
	{
		name = palloc(sizeof(NameData));
		namestrcpy(name, str);
		pfree(str);
	}

	if (cache->nentries < CW_NAME_CACHE_SIZE)
	{
		cache->oids[cache->nentries] = oid;
		cache->names[cache->nentries] = name;
		cache->nentries++;
	}
	return name;
}

/* The database's name, or NULL if it has none (any more) */
const NameData *
cw_database_name(CwNames *names, Oid dbid)
{
	return cw_cached_name(&names->databases, dbid, true);
}

const NameData *
cw_role_name(CwNames *names, Oid roleid)
{
	return cw_cached_name(&names->roles, roleid, false);
}

/* The state names of pg_stat_activity; NULL for STATE_UNDEFINED */
const char *
cw_state_name(BackendState state)
{
	switch (state)
	{
		case STATE_IDLE:
			return "idle";
		case STATE_RUNNING:
			return "active";
		case STATE_IDLEINTRANSACTION:
			return "idle in transaction";
		case STATE_FASTPATH:
			return "fastpath function call";
		case STATE_IDLEINTRANSACTION_ABORTED:
			return "idle in transaction (aborted)";
		case STATE_DISABLED:
			return "disabled";
#ifdef CW_HAVE_STATE_STARTING
		case STATE_STARTING:
			return "starting";
#endif
		case STATE_UNDEFINED:
			break;
	}
	return NULL;
}
