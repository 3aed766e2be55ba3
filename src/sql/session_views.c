/*-------------------------------------------------------------------------
 *
 * session_views.c
 *		SQL-callable functions behind the per-session views: sessions,
 *		idle_in_transaction, long_transactions and connection_summary.
 *
 * Each function takes one reading of backend state (observe/), asking only
 * for what its columns need, and applies pg_stat_activity's
 * visibility rule to every column: a session the caller may not see shows
 * only what pg_stat_activity shows everybody, and sessions whose state is
 * hidden are never selected by state.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "datums.h"
#include "observe/backend_state.h"
#include "observe/durations.h"
#include "observe/lock_graph.h"
#include "observe/xmin_horizon.h"
#include "pg_connwatch.h"
#include "sql/srf.h"

#define CW_SESSIONS_COLS				24
#define CW_IDLE_IN_TRANSACTION_COLS		18
#define CW_LONG_TRANSACTIONS_COLS		15
#define CW_CONNECTION_SUMMARY_COLS		14

/* Grouping key of connection_summary; zeroed before filling (hashed as bytes) */
typedef struct CwSummaryKey
{
	Oid			datid;
	Oid			userid;
	bool		visible;
	sa_family_t family;
	uint8		addr[16];
	char		application_name[NAMEDATALEN];
} CwSummaryKey;

typedef struct CwSummaryGroup
{
	CwSummaryKey key;			/* must be first */
	SockAddr	client_addr;	/* one member's address, for display */
	int			total;
	int			active;
	int			idle;
	int			idle_in_transaction;
	int			idle_in_transaction_aborted;
	int			other;
	int			insufficient_privilege;
	int			waiting;
	TimestampTz oldest_xact_start;
	TimestampTz longest_idle_since;
} CwSummaryGroup;

PG_FUNCTION_INFO_V1(cw_sessions);
PG_FUNCTION_INFO_V1(cw_idle_in_transaction);
PG_FUNCTION_INFO_V1(cw_long_transactions);
PG_FUNCTION_INFO_V1(cw_connection_summary);

static Datum cw_backend_type_datum(const CwBackend *be);
static void cw_summary_key(const CwBackend *be, CwSummaryKey *key);

static Datum
cw_backend_type_datum(const CwBackend *be)
{
	if (be->backend_type == B_BG_WORKER)
	{
		const char *bgw_type = GetBackgroundWorkerTypeByPid(be->pid);

		if (bgw_type != NULL)
			return CStringGetTextDatum(bgw_type);
	}
	return CStringGetTextDatum(GetBackendTypeDesc(be->backend_type));
}

/*
 * connwatch.sessions(): one row per backend process, like pg_stat_activity.
 */
Datum
cw_sessions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = cw_begin_srf(fcinfo, CW_SESSIONS_COLS);
	CwBackendSet *set;
	int			i;

	set = cw_read_backends(CW_READ_QUERY | CW_READ_PROC);
	cw_fill_blockers(set);

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		Datum		values[CW_SESSIONS_COLS] = {0};
		bool		nulls[CW_SESSIONS_COLS] = {0};
		int			col;

		/* shown to everybody, as in pg_stat_activity */
		values[0] = Int32GetDatum(be->pid);
		values[2] = ObjectIdGetDatum(be->datid);
		nulls[2] = !OidIsValid(be->datid);
		values[3] = cw_database_datum(&set->names, be->datid, &nulls[3]);
		values[4] = ObjectIdGetDatum(be->userid);
		nulls[4] = !OidIsValid(be->userid);
		values[5] = cw_role_datum(&set->names, be->userid, &nulls[5]);
		values[6] = CStringGetTextDatum(be->application_name);
		values[16] = TransactionIdGetDatum(be->xid);
		nulls[16] = !TransactionIdIsValid(be->xid);
		values[17] = TransactionIdGetDatum(be->xmin);
		nulls[17] = !TransactionIdIsValid(be->xmin);
		values[18] = cw_xid_age_datum(set->age_base, be->xmin, &nulls[18]);

		if (!be->visible)
		{
			for (col = 0; col < CW_SESSIONS_COLS; col++)
				if (col != 0 && (col < 2 || col > 6) && (col < 16 || col > 18))
					nulls[col] = true;
			nulls[23] = false;
			values[23] = CStringGetTextDatum("<insufficient privilege>");
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
								 values, nulls);
			continue;
		}

		values[1] = cw_backend_type_datum(be);
		cw_client_addr_datums(&be->client_addr, &values[7], &nulls[7],
							  &values[8], &nulls[8]);
		values[9] = TimestampTzGetDatum(be->backend_start);
		nulls[9] = (be->backend_start == 0);

		/* core does not keep a walsender's transaction start up to date */
		if (be->backend_type == B_WAL_SENDER)
			nulls[10] = nulls[20] = true;
		else
		{
			values[10] = TimestampTzGetDatum(be->xact_start);
			nulls[10] = (be->xact_start == 0);
			values[20] = cw_age_datum(set->now, be->xact_start, &nulls[20]);
		}
		values[11] = TimestampTzGetDatum(be->query_start);
		nulls[11] = (be->query_start == 0);
		values[12] = TimestampTzGetDatum(be->state_change);
		nulls[12] = (be->state_change == 0);

		values[13] = cw_state_datum(be->state, &nulls[13]);

		nulls[14] = nulls[15] = true;
		if (be->have_proc)
		{
			const char *wait_event_type = pgstat_get_wait_event_type(be->wait_event_info);
			const char *wait_event = pgstat_get_wait_event(be->wait_event_info);

			if (wait_event_type != NULL)
			{
				values[14] = CStringGetTextDatum(wait_event_type);
				nulls[14] = false;
			}
			if (wait_event != NULL)
			{
				values[15] = CStringGetTextDatum(wait_event);
				nulls[15] = false;
			}
		}

		values[19] = cw_age_datum(set->now, be->backend_start, &nulls[19]);
		values[21] = cw_age_datum(set->now, be->state_change, &nulls[21]);
		values[22] = cw_pid_array_datum(be->blocked_by);
		values[23] = cw_query_datum(be, &nulls[23]);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	cw_release_backends(set);
	return (Datum) 0;
}

/*
 * connwatch.idle_in_transaction(): client backends idle inside a
 * transaction.  Idle time is measured from state_change: a transaction
 * that has been open for an hour may have gone idle a second ago.
 */
Datum
cw_idle_in_transaction(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = cw_begin_srf(fcinfo, CW_IDLE_IN_TRANSACTION_COLS);
	CwBackendSet *set;
	TransactionId oldest_holder;
	bool		any = false;
	int			i;

	set = cw_read_backends(CW_READ_QUERY_IN_XACT | CW_READ_PROC);

	for (i = 0; i < set->nbackends && !any; i++)
		any = set->backends[i].visible &&
			cw_is_client_backend(&set->backends[i]) &&
			cw_is_idle_in_transaction(&set->backends[i]);
	if (!any)
	{
		cw_release_backends(set);
		return (Datum) 0;
	}

	/* the expensive parts, only when there is something to report */
	cw_fill_blockers(set);
	cw_fill_lock_counts(set);
	oldest_holder = cw_oldest_horizon_holder(set);

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		Datum		values[CW_IDLE_IN_TRANSACTION_COLS] = {0};
		bool		nulls[CW_IDLE_IN_TRANSACTION_COLS] = {0};
		TransactionId horizon_xid;

		if (!be->visible || !cw_is_client_backend(be) ||
			!cw_is_idle_in_transaction(be))
			continue;

		horizon_xid = cw_backend_horizon_xid(be);

		cw_identity_datums(&set->names, be, values, nulls);
		values[7] = TimestampTzGetDatum(be->state_change);
		nulls[7] = (be->state_change == 0);
		values[8] = cw_age_datum(set->now, be->state_change, &nulls[8]);
		values[9] = TimestampTzGetDatum(be->xact_start);
		nulls[9] = (be->xact_start == 0);
		values[10] = cw_age_datum(set->now, be->xact_start, &nulls[10]);
		values[11] = TransactionIdGetDatum(be->xid);
		nulls[11] = !TransactionIdIsValid(be->xid);
		values[12] = TransactionIdGetDatum(be->xmin);
		nulls[12] = !TransactionIdIsValid(be->xmin);
		values[13] = cw_xid_age_datum(set->age_base, horizon_xid, &nulls[13]);
		values[14] = BoolGetDatum(TransactionIdIsValid(horizon_xid) &&
								  TransactionIdEquals(horizon_xid, oldest_holder));
		values[15] = Int32GetDatum(be->locks_held);
		values[16] = cw_pid_array_datum(be->blocking);
		values[17] = cw_query_datum(be, &nulls[17]);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	cw_release_backends(set);
	return (Datum) 0;
}

/*
 * connwatch.long_transactions([older_than interval]): client backends whose
 * transaction is older than older_than, or than
 * connwatch.long_transaction_threshold when called without an argument.
 */
Datum
cw_long_transactions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	CwBackendSet *set;
	int64		threshold_usecs;
	bool		any = false;
	int			i;

	if (PG_NARGS() == 0)
		threshold_usecs = (int64) cw_long_transaction_threshold_ms * 1000;
	else
		threshold_usecs = cw_older_than_arg(fcinfo, 0);

	rsinfo = cw_begin_srf(fcinfo, CW_LONG_TRANSACTIONS_COLS);
	set = cw_read_backends(CW_READ_QUERY_IN_XACT | CW_READ_PROC);

	for (i = 0; i < set->nbackends && !any; i++)
	{
		CwBackend  *be = &set->backends[i];

		any = be->visible && cw_is_client_backend(be) && be->xact_start != 0 &&
			cw_age_usecs(set->now, be->xact_start) > threshold_usecs;
	}
	if (!any)
	{
		cw_release_backends(set);
		return (Datum) 0;
	}

	cw_fill_blockers(set);

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		Datum		values[CW_LONG_TRANSACTIONS_COLS] = {0};
		bool		nulls[CW_LONG_TRANSACTIONS_COLS] = {0};

		if (!be->visible || !cw_is_client_backend(be) || be->xact_start == 0 ||
			cw_age_usecs(set->now, be->xact_start) <= threshold_usecs)
			continue;

		cw_identity_datums(&set->names, be, values, nulls);
		values[7] = TimestampTzGetDatum(be->xact_start);
		values[8] = cw_age_datum(set->now, be->xact_start, &nulls[8]);
		values[9] = cw_age_datum(set->now, be->state_change, &nulls[9]);
		values[10] = TransactionIdGetDatum(be->xid);
		nulls[10] = !TransactionIdIsValid(be->xid);
		values[11] = TransactionIdGetDatum(be->xmin);
		nulls[11] = !TransactionIdIsValid(be->xmin);
		values[12] = cw_xid_age_datum(set->age_base, cw_backend_horizon_xid(be), &nulls[12]);
		values[13] = cw_pid_array_datum(be->blocking);
		values[14] = cw_query_datum(be, &nulls[14]);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	cw_release_backends(set);
	return (Datum) 0;
}

/*
 * Hash of a grouping key.  Hashing all of its bytes would spend most of the
 * view's time on the zero padding of application_name.
 */
static uint32
cw_summary_key_hash(const void *key, Size keysize)
{
	const CwSummaryKey *k = key;
	uint32		h;

	h = hash_bytes_uint32(k->datid);
	h = hash_combine(h, hash_bytes_uint32(k->userid));
	h = hash_combine(h, hash_bytes((const unsigned char *) k->application_name,
								   strlen(k->application_name)));
	if (k->family != 0)
		h = hash_combine(h, hash_bytes(k->addr, sizeof(k->addr)));
	return h;
}

/* Zero the key, then fill it: it is compared as raw bytes */
static void
cw_summary_key(const CwBackend *be, CwSummaryKey *key)
{
	memset(key, 0, sizeof(CwSummaryKey));
	key->datid = be->datid;
	key->userid = be->userid;
	key->visible = be->visible;
	strlcpy(key->application_name, be->application_name, NAMEDATALEN);

	if (!be->visible)
		return;

	key->family = be->client_addr.addr.ss_family;
	if (key->family == AF_INET)
		memcpy(key->addr, &((const struct sockaddr_in *) &be->client_addr.addr)->sin_addr,
			   sizeof(struct in_addr));
	else if (key->family == AF_INET6)
		memcpy(key->addr, &((const struct sockaddr_in6 *) &be->client_addr.addr)->sin6_addr,
			   sizeof(struct in6_addr));
}

/*
 * connwatch.connection_summary(): client backends grouped by database,
 * role, application and client address, with a count per state.
 */
Datum
cw_connection_summary(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = cw_begin_srf(fcinfo, CW_CONNECTION_SUMMARY_COLS);
	CwBackendSet *set;
	HASHCTL		hash_ctl;
	HTAB	   *groups;
	HASH_SEQ_STATUS scan;
	CwSummaryGroup *group;
	int			i;

	set = cw_read_backends(CW_READ_CLIENTS_ONLY | CW_READ_PROC);

	hash_ctl.keysize = sizeof(CwSummaryKey);
	hash_ctl.entrysize = sizeof(CwSummaryGroup);
	hash_ctl.hash = cw_summary_key_hash;
	hash_ctl.match = memcmp;
	hash_ctl.hcxt = CurrentMemoryContext;
	groups = hash_create("pg_connwatch summary groups", 64, &hash_ctl,
						 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		CwSummaryKey key;
		bool		found;

		cw_summary_key(be, &key);
		group = hash_search(groups, &key, HASH_ENTER, &found);
		if (!found)
		{
			memset((char *) group + sizeof(CwSummaryKey), 0,
				   sizeof(CwSummaryGroup) - sizeof(CwSummaryKey));
			group->client_addr = be->client_addr;
		}

		group->total++;
		if (!be->visible)
		{
			group->insufficient_privilege++;
			continue;
		}

		switch (be->state)
		{
			case STATE_RUNNING:
				group->active++;
				break;
			case STATE_IDLE:
				group->idle++;
				break;
			case STATE_IDLEINTRANSACTION:
				group->idle_in_transaction++;
				break;
			case STATE_IDLEINTRANSACTION_ABORTED:
				group->idle_in_transaction_aborted++;
				break;
			default:
				group->other++;
				break;
		}
		if (cw_waits_on_lock(be))
			group->waiting++;
		if (be->xact_start != 0 &&
			(group->oldest_xact_start == 0 || be->xact_start < group->oldest_xact_start))
			group->oldest_xact_start = be->xact_start;
		if (cw_is_idle_in_transaction(be) && be->state_change != 0 &&
			(group->longest_idle_since == 0 || be->state_change < group->longest_idle_since))
			group->longest_idle_since = be->state_change;
	}

	hash_seq_init(&scan, groups);
	while ((group = hash_seq_search(&scan)) != NULL)
	{
		Datum		values[CW_CONNECTION_SUMMARY_COLS] = {0};
		bool		nulls[CW_CONNECTION_SUMMARY_COLS] = {0};
		values[0] = cw_database_datum(&set->names, group->key.datid, &nulls[0]);
		values[1] = cw_role_datum(&set->names, group->key.userid, &nulls[1]);
		values[2] = CStringGetTextDatum(group->key.application_name);
		nulls[3] = true;
		if (group->key.visible)
			values[3] = cw_client_host_datum(&group->client_addr, &nulls[3]);
		values[4] = Int32GetDatum(group->total);
		values[5] = Int32GetDatum(group->active);
		values[6] = Int32GetDatum(group->idle);
		values[7] = Int32GetDatum(group->idle_in_transaction);
		values[8] = Int32GetDatum(group->idle_in_transaction_aborted);
		values[9] = Int32GetDatum(group->other);
		values[10] = Int32GetDatum(group->insufficient_privilege);
		values[11] = Int32GetDatum(group->waiting);
		values[12] = cw_age_datum(set->now, group->oldest_xact_start, &nulls[12]);
		values[13] = cw_age_datum(set->now, group->longest_idle_since, &nulls[13]);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	cw_release_backends(set);
	return (Datum) 0;
}
