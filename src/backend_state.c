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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/int128.h"
#include "common/ip.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "backend_state.h"
#include "compat.h"
#include "lock_graph.h"

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
static bool cw_client_addr_is_ip(const SockAddr *addr);

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

	if (flags & CW_READ_BLOCKERS)
		flags |= CW_READ_PROC;

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

	if (flags & CW_READ_BLOCKERS)
		cw_fill_blockers(set);

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

void
cw_identity_datums(CwBackendSet *set, const CwBackend *be, Datum *values,
				   bool *nulls)
{
	const char *state = cw_state_name(be->state);

	values[0] = Int32GetDatum(be->pid);
	nulls[0] = false;
	values[2] = cw_database_name(set, be->datid, &nulls[2]);
	values[3] = cw_role_name(set, be->userid, &nulls[3]);
	values[4] = CStringGetTextDatum(be->application_name);
	nulls[4] = false;
	if (!be->visible)
	{
		nulls[1] = nulls[5] = nulls[6] = true;
		return;
	}
	values[1] = TimestampTzGetDatum(be->backend_start);
	nulls[1] = (be->backend_start == 0);
	values[5] = cw_client_host_datum(&be->client_addr, &nulls[5]);
	values[6] = state ? CStringGetTextDatum(state) : (Datum) 0;
	nulls[6] = (state == NULL);
}

/* The query text, NULL where the reading did not copy it */
Datum
cw_query_datum(const CwBackend *be, bool *isnull)
{
	*isnull = !be->have_query;
	return be->have_query ? CStringGetTextDatum(be->query) : (Datum) 0;
}

/*
 * Look a name up through a per-call memo: a server has few databases and
 * login roles compared to its backends.
 */
static Datum
cw_cached_name(CwNameCache *cache, Oid oid, bool is_database, bool *isnull)
{
	NameData   *name = NULL;
	char	   *str;
	int			i;

	if (!OidIsValid(oid))
	{
		*isnull = true;
		return (Datum) 0;
	}

	for (i = 0; i < cache->nentries; i++)
	{
		if (cache->oids[i] == oid)
		{
			name = cache->names[i];
			*isnull = (name == NULL);
			return PointerGetDatum(name);
		}
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

	*isnull = (name == NULL);
	return PointerGetDatum(name);
}

Datum
cw_database_name(CwBackendSet *set, Oid dbid, bool *isnull)
{
	return cw_cached_name(&set->databases, dbid, true, isnull);
}

Datum
cw_role_name(CwBackendSet *set, Oid roleid, bool *isnull)
{
	return cw_cached_name(&set->roles, roleid, false, isnull);
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

static bool
cw_client_addr_is_ip(const SockAddr *addr)
{
	return addr->addr.ss_family == AF_INET ||
		addr->addr.ss_family == AF_INET6;
}

/*
 * client_addr and client_port as pg_stat_activity shows them: NULL and NULL
 * when unknown, NULL and -1 for a Unix socket.
 */
void
cw_client_addr_datums(const SockAddr *addr, Datum *host, bool *host_null,
					  Datum *port, bool *port_null)
{
	*host_null = true;
	*port_null = true;

	if (cw_client_addr_is_ip(addr))
	{
		char		remote_host[NI_MAXHOST];
		char		remote_port[NI_MAXSERV];

		remote_host[0] = '\0';
		remote_port[0] = '\0';
		if (pg_getnameinfo_all(&addr->addr, addr->salen,
							   remote_host, sizeof(remote_host),
							   remote_port, sizeof(remote_port),
							   NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		{
			clean_ipv6_addr(addr->addr.ss_family, remote_host);
			*host = DirectFunctionCall1(inet_in, CStringGetDatum(remote_host));
			*host_null = false;
			*port = Int32GetDatum(atoi(remote_port));
			*port_null = false;
		}
	}
	else if (addr->addr.ss_family == AF_UNIX)
	{
		*port = Int32GetDatum(-1);
		*port_null = false;
	}
}

Datum
cw_client_host_datum(const SockAddr *addr, bool *isnull)
{
	Datum		host = (Datum) 0;
	Datum		port;
	bool		port_null;

	cw_client_addr_datums(addr, &host, isnull, &port, &port_null);
	return host;
}

/* now - since, as the interval timestamptz subtraction gives; NULL if unset */
Datum
cw_age_datum(TimestampTz now, TimestampTz since, bool *isnull)
{
	*isnull = (since == 0);
	if (*isnull)
		return (Datum) 0;
	return DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(now),
							   TimestampTzGetDatum(since));
}

int64
cw_age_usecs(TimestampTz now, TimestampTz since)
{
	return (since == 0) ? 0 : now - since;
}

/*
 * A duration as [D days ]HH:MM:SS.mmm, whatever the session's IntervalStyle:
 * it goes into audit reasons that are compared and grepped.
 */
char *
cw_format_duration(int64 usecs)
{
	int64		days = usecs / USECS_PER_DAY;
	int64		rest = usecs % USECS_PER_DAY;
	int			hours = (int) (rest / USECS_PER_HOUR);
	int			minutes = (int) ((rest % USECS_PER_HOUR) / USECS_PER_MINUTE);
	int			seconds = (int) ((rest % USECS_PER_MINUTE) / USECS_PER_SEC);
	int			millis = (int) ((rest % USECS_PER_SEC) / 1000);

	if (days > 0)
		return psprintf(INT64_FORMAT " days %02d:%02d:%02d.%03d",
						days, hours, minutes, seconds, millis);
	return psprintf("%02d:%02d:%02d.%03d", hours, minutes, seconds, millis);
}

/*
 * An interval as microseconds, for comparison with an age: the span interval
 * comparison itself uses (months as 30 days, computed in 128 bits), clamped
 * to the int64 range.  Clamping the span, rather than any of its parts,
 * keeps the order: '178000000 years -1 day' is far beyond every age, never
 * below it.
 */
int64
cw_interval_usecs(const Interval *interval)
{
	INT128		span = int64_to_int128(interval->time);

	int128_add_int64_mul_int64(&span, (int64) interval->day, USECS_PER_DAY);
	int128_add_int64_mul_int64(&span,
							   (int64) interval->month * DAYS_PER_MONTH,
							   USECS_PER_DAY);
	if (int128_compare(span, int64_to_int128(PG_INT64_MAX)) > 0)
		return PG_INT64_MAX;
	if (int128_compare(span, int64_to_int128(PG_INT64_MIN)) < 0)
		return PG_INT64_MIN;
	return int128_to_int64(span);
}

/* age(xid): permanent xids are infinitely old */
Datum
cw_xid_age_datum(CwBackendSet *set, TransactionId xid, bool *isnull)
{
	*isnull = !TransactionIdIsValid(xid);
	if (*isnull)
		return (Datum) 0;
	if (!TransactionIdIsNormal(xid))
		return Int32GetDatum(PG_INT32_MAX);
	return Int32GetDatum((int32) (set->age_base - xid));
}

Datum
cw_pid_array_datum(List *pids)
{
	int			n = list_length(pids);
	Datum	   *elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, pids)
		elems[i++] = Int32GetDatum(lfirst_int(lc));

	return PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32),
										   true, TYPALIGN_INT));
}
